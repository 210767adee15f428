//! The technician console: a line protocol over a local Unix socket.
//!
//! The public interface is: [`ConsoleCommand`], [`parse_command`], [`help_text`],
//! [`ConsoleRequest`], [`serve`], [`run_client`], and the limits [`MAX_LINE_BYTES`],
//! [`MAX_CONNECTIONS`], [`DEFAULT_LOG_TAIL`], [`MAX_LOG_TAIL`], [`DEFAULT_EVENTS_SHOW`],
//! [`MAX_EVENTS_SHOW`].
//!
//! Layers:
//! - this file: the command language ([`parse_command`]), pure and unit-tested;
//! - `server`: [`serve`], the socket driver in `hakoden run`. It parses each request and hands
//!   a [`ConsoleRequest`] to whoever owns the state (the daemon), so the console never reads
//!   engine state itself;
//! - `client`: [`run_client`], the blocking client behind `hakoden console`.
//!
//! # Wire protocol
//!
//! One request per connection. The client sends one UTF-8 line (at most [`MAX_LINE_BYTES`]
//! bytes, `\n`-terminated; `\r\n` is accepted) and may then half-close its side. The server
//! answers with zero or more text lines,
//! then a line holding a single `.`, then closes. A reply line that itself starts with `.` is
//! sent with one more `.` in front (dot-stuffing, as in SMTP); the client removes it. A reply
//! whose first line starts with `error: ` is a refusal (unknown command, timeout, box busy).
//! After the terminator the server drains (briefly, boundedly) what the client still sends
//! before closing, because closing a Unix socket with unread input resets it and the client
//! would lose the reply.
//!
//! ```text
//! > sh ver
//! < hakoden 0.1.0 (abc1234)
//! < .
//! ```
//!
//! The socket is created with mode 0600: only the login that runs the firmware (the serial or
//! SSH technician login lands there) can use it.

mod client;
mod server;

pub use client::run_client;
pub use server::{serve, MAX_CONNECTIONS, MAX_LINE_BYTES};

use crate::system::network::NetworkChange;

/// `log tail` without a count.
pub const DEFAULT_LOG_TAIL: usize = 50;

/// Most call records `show cdr` prints.
pub const MAX_CDR_SHOW: usize = 500;

/// `show events` without a count.
pub const DEFAULT_EVENTS_SHOW: usize = 20;

/// Most call-center events `show events` prints: a technician's look at the log's tail, not
/// an export (reports and their CSV are for that).
pub const MAX_EVENTS_SHOW: usize = 500;

/// Largest `log tail` count: the whole RAM ring.
pub const MAX_LOG_TAIL: usize = crate::logger::RING_LINES;

/// What the technician asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleCommand {
    /// `update FILE`: verify a signed bundle on the box, write it to the inactive slot and
    /// reboot into it once (crate::update).
    Update(String),
    /// `show firmware`: slots, versions and the last update's outcome.
    ShowFirmware,
    /// `backup FILE`: configuration and data into one archive on the box (crate::backup).
    Backup(String),
    /// `restore FILE`: check an archive and apply it at the next start.
    Restore(String),
    /// `factory-reset` (asks) / `factory-reset confirm` (wipes the data at the next start).
    FactoryReset {
        /// Whether the technician confirmed.
        confirmed: bool,
    },
    /// `debug hang LOOP`: block a critical loop to prove the watchdog reset (needs
    /// `hakoden run --allow-debug`).
    DebugHang(crate::watchdog::Loop),
    /// `show registrations`: phones registered now.
    ShowRegistrations,
    /// `show calls`: calls in progress.
    ShowCalls,
    /// `show extensions`: provisioned extensions.
    ShowExtensions,
    /// `show version`: firmware version.
    ShowVersion,
    /// `show trunks`: SIP trunks and their registration state.
    ShowTrunks,
    /// `show forwards`: forwarding, do-not-disturb, pickup groups, hot desking and ring groups.
    ShowForwards,
    /// `show dids`: every DID and where a call goes now.
    ShowDids,
    /// `show block` / `show restrict`: a number list.
    ShowList(crate::engine::ListKind),
    /// `block import FILE` / `restrict import FILE`: CSV rows added to a list.
    ListImport {
        /// Which list.
        kind: crate::engine::ListKind,
        /// The CSV file on the box.
        path: String,
    },
    /// `show parked`: parked calls by slot.
    ShowParked,
    /// `show voicemail`: every mailbox with its new and old message counts.
    ShowVoicemail,
    /// `show cdr [N]`: the N most recent call records (default 20, max [`MAX_CDR_SHOW`]).
    ShowCdr(usize),
    /// `show cdr [N] detail`: the same records with every leg (the detailed view of transfers).
    ShowCdrDetail(usize),
    /// `audio import FILE NAME`: converts a WAV file on the box into a prompt file `NAME`
    /// (8 kHz 16-bit mono), stored on the data partition.
    AudioImport {
        /// The source file (case kept).
        path: String,
        /// The name admins will pick it by (case kept; may be Japanese).
        name: String,
    },
    /// `audio list`: the stored audio files.
    AudioList,
    /// `show events [N]`: the newest N call-center events as JSON lines, oldest of them first
    /// (default [`DEFAULT_EVENTS_SHOW`], max [`MAX_EVENTS_SHOW`]).
    ShowEvents(usize),
    /// `report queue|agent PERIOD FROM [TO] [csv]`: a call-center report over local dates.
    Report {
        /// Kind, unit and dates.
        query: crate::apps::callcenter::ReportQuery,
        /// Every column as CSV (UTF-8 with BOM) instead of the headline table.
        csv: bool,
    },
    /// `log tail [N]`: the last N lines of the RAM log.
    LogTail(usize),
    /// `show outbox`: voicemail notifications waiting or failed, with their last error.
    ShowOutbox,
    /// `show alarms`: active and recently cleared alarms (`crate::alarms`).
    ShowAlarms,
    /// `mail test ADDRESS`: a test mail through `[smtp]`, answered with the server's words.
    MailTest(String),
    /// `voicemail greeting BOX SLOT FILE` / `voicemail greeting BOX SLOT delete`: a box's
    /// greeting from a WAV on the box (8 kHz 16-bit mono as is, other WAVs converted), or its
    /// removal.
    VoicemailGreeting {
        /// The mailbox (digits).
        box_no: String,
        /// The slot.
        slot: crate::apps::voicemail::mailbox::GreetingKind,
        /// The WAV file (case kept); `None` deletes the slot's greeting.
        file: Option<String>,
    },
    /// `show supervision`: supervisors listening, whispering or barging now.
    ShowSupervision,
    /// `supervise listen|whisper|barge SUPERVISOR AGENT`: the box rings the supervisor's phone
    /// and joins it to the agent's call in that mode.
    Supervise {
        /// The mode to start in.
        mode: crate::apps::supervision::Mode,
        /// The supervisor's extension.
        supervisor: String,
        /// The agent's extension.
        agent: String,
    },
    /// `supervise stop SUPERVISOR`: ends that supervisor's session (their leg only).
    SuperviseStop(String),
    /// `campaign list|show NAME|add NAME NUMBER [CUSTOMER]|result NAME ENTRY N`: outbound
    /// campaigns (issue 9) and their call lists.
    Campaign(CampaignCommand),
    /// `call FROM TO`: the box rings extension FROM, then dials TO (an extension or an outside
    /// number, with FROM's outbound policy) and bridges them (click-to-call).
    Call {
        /// The extension rung first.
        from: String,
        /// The extension or number dialled once FROM answered.
        to: String,
    },
    /// `show queues`: every call-center queue with its waiting callers and staffed agents.
    ShowQueues,
    /// `show agents`: every agent with its state, since when, and its queues.
    ShowAgents,
    /// `agent ACTION EXT [..]`: a supervisor changes an agent's state (the agent API until the
    /// web UI exists).
    Agent {
        /// The agent (extension).
        ext: String,
        /// What to do.
        command: crate::engine::AgentCommand,
    },
    /// `web reset-admin`: a new password for the web user `admin`, to change at next login.
    WebResetAdmin,
    /// `web cert CERT KEY`: install a PEM certificate chain and key for the web admin.
    WebCert {
        /// The certificate chain file on the box (case kept).
        cert: String,
        /// The private key file on the box (case kept).
        key: String,
    },
    /// `status`: version, slot, uptime, registrations, calls, trunks, storage, network and
    /// the next nightly restart on one screen.
    Status,
    /// `network` / `network show`: the saved settings and the live addresses.
    NetworkShow,
    /// `network dhcp`, `network static ..`, `hostname NAME`, `ntp SERVER..|off`: saved to
    /// `<data>/network.conf` and applied on the appliance.
    NetworkSet(crate::system::network::NetworkChange),
    /// `options-test TARGET`: one SIP OPTIONS; the answer code and round-trip time.
    OptionsTest(String),
    /// `reboot` (asks for confirmation) / `reboot now`; refused off the appliance.
    Reboot {
        /// `reboot now`: the technician confirmed.
        confirmed: bool,
    },
    /// `ssh key add TYPE BASE64 [COMMENT]`: one more login key for `admin` (case kept).
    SshKeyAdd(String),
    /// `ssh key list`.
    SshKeyList,
    /// `ssh key remove N`: the N-th key as `ssh key list` numbers them.
    SshKeyRemove(usize),
    /// `help`: the command list ([`help_text`]).
    Help,
}

/// One parsed request for the state owner; it answers through `reply` with the reply text
/// (lines separated by `\n`; start it with `error: ` for a refusal).
#[derive(Debug)]
pub struct ConsoleRequest {
    /// The command.
    pub command: ConsoleCommand,
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<String>,
}

/// The answer to [`ConsoleCommand::Help`].
pub fn help_text() -> String {
    format!(
        "show registrations   phones registered now (sh reg)\n\
         show calls           calls in progress (sh c)\n\
         show extensions      provisioned extensions (sh ext)\n\
         show version         firmware version (sh ver)\n\
         show trunks          SIP trunks and their registration state (sh tr)\n\
         show forwards        forwarding, DND, pickup groups, hot desks, ring groups (sh fw)\n\
         show dids            DIDs and where a call goes now\n\
         show block           the inbound block list (着信拒否)\n\
         show restrict        the outbound restriction list (発信規制)\n\
         block import FILE    add CSV rows (number, note) to the block list\n\
         restrict import FILE add CSV rows (number, note, caller ID) to the restriction list\n\
         show parked          parked calls by slot (sh p)\n\
         show voicemail       mailboxes with new/old messages (sh vo)\n\
         show cdr [N]         the N most recent call records, default 20 (sh cdr 5)\n\
         show cdr [N] detail  the same with every leg: who was replaced by whom in transfers\n\
         show outbox          voicemail notifications waiting or failed, with their last error\n\
         show alarms          active and recently cleared alarms (trunks, storage, recording, notify)\n\
         show events [N]      the N newest call-center events as JSON lines, default {DEFAULT_EVENTS_SHOW}, max {MAX_EVENTS_SHOW}\n\
         report queue|agent hour|day|month|weekday FROM [TO] [csv]\n\
         \x20                    call-center report over local dates YYYY-MM-DD (TO included);\n\
         \x20                    csv prints every column for Excel (rep q day 2026-11-01 2026-11-30 csv)\n\
         show supervision     supervisors listening, whispering or barging now (sh su)\n\
         supervise listen|whisper|barge SUP AGENT  ring supervisor SUP, then join AGENT's call\n\
         supervise stop SUP   end SUP's supervision (the agent's call goes on)\n\
         call FROM TO         ring extension FROM, then dial TO (extension or number) and bridge\n\
         campaign list        outbound campaigns; campaign show NAME: its call list\n\
         campaign add NAME NUMBER [CUSTOMER]   add a customer to call\n\
         campaign result NAME ENTRY N          enter result N for an entry\n\
         show queues          call-center queues: waiting, longest wait, agents staffed (sh q)\n\
         show agents          agents: state (日本語 / key), since, queues (sh ag)\n\
         agent login|logout|available|break|lunch|preparing|acw-end EXT\n\
         \x20                    set an agent's state as a supervisor\n\
         agent other EXT N    other-work state N (1-6, [acd] other_work)\n\
         agent pause|resume EXT QUEUE  stop or restart one queue's calls for the agent\n\
         mail test ADDRESS    send a test mail through [smtp]; shows the server's answer\n\
         voicemail greeting BOX SLOT FILE|delete  set (WAV) or remove a box's greeting; SLOT is\n\
         \x20                    default, available, busy, dnd or after_hours\n\
         log tail [N]         last N log lines, default {DEFAULT_LOG_TAIL}, max {MAX_LOG_TAIL} (lo t 100)\n\
         audio list           stored audio files (prompts, greetings, music on hold)\n\
         audio import FILE NAME  convert a WAV on the box into audio file NAME\n\
         web reset-admin      new password for the web user admin (must be changed at login)\n\
         web cert CERT KEY    install a PEM certificate chain and key for the web admin\n\
         update FILE          install a signed firmware bundle: inactive slot, trial boot, commit\n\
         show firmware        slots, versions and the last update's outcome (sh fir)\n\
         backup FILE          configuration, store, voicemail and recordings into one file\n\
         restore FILE         check a backup and apply it at the next start (then reboot)\n\
         factory-reset        wipe data and settings back to defaults (asks for confirmation)\n\
         status               version, slot, uptime, phones, calls, trunks, storage, network (st)\n\
         logs [N]             same as log tail [N]\n\
         network              the saved network settings and the live addresses\n\
         network dhcp         get the address by DHCP\n\
         network static ADDR/PREFIX GATEWAY [DNS..]  a fixed IPv4 address\n\
         hostname NAME        the box's hostname\n\
         ntp SERVER..|off     set the time from these NTP servers, or not\n\
         options-test TARGET  send a SIP OPTIONS to HOST[:PORT] or a sip: URI, show the answer\n\
         ssh key add TYPE BASE64 [COMMENT]  allow an SSH login (user admin) with this key\n\
         ssh key list         the SSH login keys\n\
         ssh key remove N     remove key N (as listed)\n\
         reboot               restart the board (asks to confirm with `reboot now`)\n\
         debug hang LOOP      block sip, media, store or web to prove the watchdog reset\n\
         \x20                    (only on a box run with --allow-debug)\n\
         help                 this list\n\
         quit, exit           leave the console"
    )
}

/// Parses one console line. Words may be abbreviated (`sh reg`, `lo t 20`) and any case.
pub fn parse_command(line: &str) -> Result<ConsoleCommand, String> {
    let lower = line.trim().to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        [] => Err("empty command; type `help` for the list".into()),
        ["?"] => Ok(ConsoleCommand::Help),
        [w] if abbreviates(w, "help", 1) => Ok(ConsoleCommand::Help),
        [w, f] if abbreviates(w, "show", 2) && abbreviates(f, "firmware", 3) => {
            Ok(ConsoleCommand::ShowFirmware)
        }
        [w, _, ..] if *w == "update" || *w == "backup" || *w == "restore" => {
            // The path keeps its case and spaces: everything after the first word.
            let path = line
                .trim()
                .split_once(char::is_whitespace)
                .map(|(_, p)| p.trim().to_string())
                .unwrap_or_default();
            Ok(match *w {
                "update" => ConsoleCommand::Update(path),
                "backup" => ConsoleCommand::Backup(path),
                _ => ConsoleCommand::Restore(path),
            })
        }
        [w] if *w == "update" || *w == "backup" || *w == "restore" => Err(format!("usage: {w} FILE")),
        [w] if *w == "factory-reset" => Ok(ConsoleCommand::FactoryReset { confirmed: false }),
        [w, c] if *w == "factory-reset" && *c == "confirm" => {
            Ok(ConsoleCommand::FactoryReset { confirmed: true })
        }
        [w, rest @ ..] if abbreviates(w, "show", 2) => parse_show(rest),
        [w, rest @ ..] if abbreviates(w, "log", 2) => parse_log(rest),
        [w] if abbreviates(w, "status", 2) => Ok(ConsoleCommand::Status),
        [w] if *w == "logs" => Ok(ConsoleCommand::LogTail(DEFAULT_LOG_TAIL)),
        [w, n] if *w == "logs" => parse_log(&["tail", n]),
        [w, rest @ ..] if abbreviates(w, "network", 3) => parse_network(rest),
        [w, rest @ ..] if *w == "hostname" => match rest {
            [name] => crate::system::network::check_hostname(name)
                .map(|()| ConsoleCommand::NetworkSet(NetworkChange::Hostname((*name).to_string()))),
            _ => Err("usage: hostname NAME".into()),
        },
        [w, rest @ ..] if *w == "ntp" => NetworkChange::parse_ntp(rest).map(ConsoleCommand::NetworkSet),
        [w, rest @ ..] if *w == "options-test" => match rest {
            // The target keeps its case (a SIP user part may be case-sensitive).
            [_] => Ok(ConsoleCommand::OptionsTest(
                line.split_whitespace().nth(1).unwrap_or_default().to_string(),
            )),
            _ => Err("usage: options-test HOST[:PORT] | sip:[USER@]HOST[:PORT]".into()),
        },
        [w] if *w == "reboot" => Ok(ConsoleCommand::Reboot { confirmed: false }),
        [w, n] if *w == "reboot" && *n == "now" => Ok(ConsoleCommand::Reboot { confirmed: true }),
        [w, ..] if *w == "reboot" => Err("usage: reboot (then `reboot now` to confirm)".into()),
        [w, rest @ ..] if *w == "ssh" => parse_ssh(line.trim(), rest),
        [w, rest @ ..] if abbreviates(w, "agent", 2) => parse_agent(line.trim(), rest),
        [w, rest @ ..] if abbreviates(w, "audio", 2) => parse_audio(line.trim(), rest),
        [w, rest @ ..] if abbreviates(w, "report", 3) => parse_report(rest),
        [w, h, l] if *w == "debug" && *h == "hang" => crate::watchdog::Loop::parse(l)
            .map(ConsoleCommand::DebugHang)
            .ok_or_else(|| format!("`{l}` is not a loop: sip, media, store or web")),
        [w, g, ..] if (abbreviates(w, "voicemail", 2) || *w == "vm") && abbreviates(g, "greeting", 1) => {
            parse_greeting(line.trim())
        }
        [w, rest @ ..] if abbreviates(w, "supervise", 3) => parse_supervise(rest),
        [w, ..] if abbreviates(w, "campaign", 3) => parse_campaign(line.trim()),
        [w, rest @ ..] if *w == "call" => match rest {
            [from, to] if crate::engine::is_dialable(from) && crate::engine::is_dialable(to) => {
                Ok(ConsoleCommand::Call { from: (*from).to_string(), to: (*to).to_string() })
            }
            _ => Err("usage: call FROM TO (FROM an extension, TO an extension or a number)".into()),
        },
        [w, r] if *w == "web" && *r == "reset-admin" => Ok(ConsoleCommand::WebResetAdmin),
        [w, c, _, _] if *w == "web" && abbreviates(c, "cert", 1) => {
            // The paths keep their case.
            let original: Vec<&str> = line.split_whitespace().collect();
            match original.as_slice() {
                [_, _, cert, key] => Ok(ConsoleCommand::WebCert { cert: (*cert).into(), key: (*key).into() }),
                _ => Err("usage: web cert CERT KEY | web reset-admin".into()),
            }
        }
        [w, ..] if *w == "web" => Err("usage: web cert CERT KEY | web reset-admin".into()),
        [w, t, _] if abbreviates(w, "mail", 2) && abbreviates(t, "test", 1) => {
            // The address keeps its case (local parts may be case-sensitive).
            let to = line.split_whitespace().nth(2).unwrap_or_default().to_string();
            Ok(ConsoleCommand::MailTest(to))
        }
        [w, i, _, ..] if (*w == "block" || *w == "restrict") && abbreviates(i, "import", 1) => {
            let kind = if *w == "block" {
                crate::engine::ListKind::Block
            } else {
                crate::engine::ListKind::Restrict
            };
            // The path keeps its case and spaces: everything after the second word.
            let path =
                line.trim().splitn(3, char::is_whitespace).nth(2).unwrap_or_default().trim().to_string();
            Ok(ConsoleCommand::ListImport { kind, path })
        }
        _ => Err(format!("unknown command `{}`; type `help` for the list", line.trim())),
    }
}

/// The `campaign` console commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignCommand {
    /// Every campaign with its counts.
    List,
    /// One campaign's call list.
    Show(String),
    /// Add a customer to call.
    Add {
        /// The campaign.
        campaign: String,
        /// The number.
        number: String,
        /// The customer's name (may be empty).
        customer: String,
    },
    /// Enter a result for an entry.
    Result {
        /// The campaign.
        campaign: String,
        /// The entry id.
        entry: u64,
        /// The campaign's result number.
        result: u16,
    },
}

/// `campaign ...`; names and customer names keep their case (taken from `line`).
fn parse_campaign(line: &str) -> Result<ConsoleCommand, String> {
    const USAGE: &str =
        "usage: campaign list | campaign show NAME | campaign add NAME NUMBER [CUSTOMER] | campaign result NAME ENTRY N";
    let words: Vec<&str> = line.split_whitespace().collect();
    let cmd = match words.as_slice() {
        [_, w] if w.eq_ignore_ascii_case("list") => CampaignCommand::List,
        [_, w, name] if w.eq_ignore_ascii_case("show") => CampaignCommand::Show((*name).to_string()),
        [_, w, name, number, customer @ ..] if w.eq_ignore_ascii_case("add") => CampaignCommand::Add {
            campaign: (*name).to_string(),
            number: (*number).to_string(),
            customer: customer.join(" "),
        },
        [_, w, name, entry, n] if w.eq_ignore_ascii_case("result") => CampaignCommand::Result {
            campaign: (*name).to_string(),
            entry: entry.parse().map_err(|_| format!("`{entry}` is not an entry id; {USAGE}"))?,
            result: n.parse().map_err(|_| format!("`{n}` is not a result number; {USAGE}"))?,
        },
        _ => return Err(USAGE.into()),
    };
    Ok(ConsoleCommand::Campaign(cmd))
}

/// `agent ACTION EXT [N | QUEUE]`. The queue keeps its case (a name or its number).
fn parse_agent(line: &str, rest: &[&str]) -> Result<ConsoleCommand, String> {
    use crate::apps::callcenter::AgentState;
    use crate::engine::AgentCommand;
    const USAGE: &str = "usage: agent login|logout|available|break|lunch|preparing|acw-end EXT, \
                         agent other EXT N, agent pause|resume EXT QUEUE";
    let ext_ok = |e: &str| !e.is_empty() && e.len() <= 8 && e.bytes().all(|b| b.is_ascii_digit());
    let (action, ext, arg) = match rest {
        [a, e] => (*a, *e, None),
        [a, e, x] => (*a, *e, Some(*x)),
        _ => return Err(USAGE.into()),
    };
    if !ext_ok(ext) {
        return Err(format!("`{ext}` is not an extension number; {USAGE}"));
    }
    let command = match (action, arg) {
        ("login", None) => AgentCommand::Login,
        ("logout", None) => AgentCommand::Logout,
        ("available", None) => AgentCommand::Select(AgentState::Available),
        ("break", None) => AgentCommand::Select(AgentState::ShortBreak),
        ("lunch", None) => AgentCommand::Select(AgentState::LunchBreak),
        ("preparing", None) => AgentCommand::Select(AgentState::Preparing),
        ("acw-end", None) => AgentCommand::EndAcw,
        ("other", Some(n)) => match n.parse::<u8>() {
            Ok(n) if (1..=6).contains(&n) => AgentCommand::Select(AgentState::OtherWork(n)),
            _ => return Err(format!("`{n}` is not an other-work state 1-6")),
        },
        ("pause" | "resume", Some(_)) => {
            // The queue as typed (names keep their case).
            let queue = line.split_whitespace().nth(3).unwrap_or_default().to_string();
            AgentCommand::QueueAvailability(queue, action == "resume")
        }
        _ => return Err(USAGE.into()),
    };
    Ok(ConsoleCommand::Agent { ext: ext.to_string(), command })
}

/// `word` is `full` or a prefix of it at least `min` characters long.
fn abbreviates(word: &str, full: &str, min: usize) -> bool {
    word.len() >= min && full.starts_with(word)
}

fn cdr_count(n: &str) -> Result<usize, String> {
    match n.parse::<usize>() {
        Ok(n) if (1..=MAX_CDR_SHOW).contains(&n) => Ok(n),
        _ => Err(format!("`{n}` is not a record count from 1 to {MAX_CDR_SHOW}")),
    }
}

fn parse_show(rest: &[&str]) -> Result<ConsoleCommand, String> {
    const WHAT: &str =
        "registrations, calls, extensions, version, trunks, forwards, dids, block, restrict, parked, voicemail, outbox, events, supervision, queues, agents or cdr";
    match rest {
        [] => Err(format!("show what? {WHAT}")),
        [w] if *w == "cdr" || *w == "cdrs" => Ok(ConsoleCommand::ShowCdr(20)),
        [w, d] if (*w == "cdr" || *w == "cdrs") && abbreviates(d, "detail", 1) => {
            Ok(ConsoleCommand::ShowCdrDetail(20))
        }
        [w, n] if *w == "cdr" || *w == "cdrs" => cdr_count(n).map(ConsoleCommand::ShowCdr),
        [w, n, d] if (*w == "cdr" || *w == "cdrs") && abbreviates(d, "detail", 1) => {
            cdr_count(n).map(ConsoleCommand::ShowCdrDetail)
        }
        [w] if abbreviates(w, "events", 2) => Ok(ConsoleCommand::ShowEvents(DEFAULT_EVENTS_SHOW)),
        [w, n] if abbreviates(w, "events", 2) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_EVENTS_SHOW).contains(&n) => Ok(ConsoleCommand::ShowEvents(n)),
            _ => Err(format!("`{n}` is not an event count from 1 to {MAX_EVENTS_SHOW}")),
        },
        [w] if abbreviates(w, "registrations", 1) => Ok(ConsoleCommand::ShowRegistrations),
        [w] if abbreviates(w, "calls", 1) => Ok(ConsoleCommand::ShowCalls),
        [w] if abbreviates(w, "extensions", 1) => Ok(ConsoleCommand::ShowExtensions),
        [w] if abbreviates(w, "version", 1) => Ok(ConsoleCommand::ShowVersion),
        [w] if abbreviates(w, "trunks", 2) => Ok(ConsoleCommand::ShowTrunks),
        [w] if abbreviates(w, "forwards", 2) || *w == "fw" => Ok(ConsoleCommand::ShowForwards),
        [w] if abbreviates(w, "dids", 1) => Ok(ConsoleCommand::ShowDids),
        [w] if abbreviates(w, "block", 1) => Ok(ConsoleCommand::ShowList(crate::engine::ListKind::Block)),
        [w] if abbreviates(w, "restrict", 3) => {
            Ok(ConsoleCommand::ShowList(crate::engine::ListKind::Restrict))
        }
        [w] if abbreviates(w, "parked", 1) => Ok(ConsoleCommand::ShowParked),
        [w] if abbreviates(w, "outbox", 1) => Ok(ConsoleCommand::ShowOutbox),
        [w] if abbreviates(w, "alarms", 2) => Ok(ConsoleCommand::ShowAlarms),
        [w] if abbreviates(w, "supervision", 2) => Ok(ConsoleCommand::ShowSupervision),
        [w] if abbreviates(w, "voicemail", 2) || *w == "vm" => Ok(ConsoleCommand::ShowVoicemail),
        [w] if abbreviates(w, "queues", 1) => Ok(ConsoleCommand::ShowQueues),
        [w] if abbreviates(w, "agents", 2) => Ok(ConsoleCommand::ShowAgents),
        _ => Err(format!("cannot show `{}`; try {WHAT}", rest.join(" "))),
    }
}

/// `audio list` / `audio import FILE NAME`; FILE and NAME keep their case (taken from `line`).
fn parse_audio(line: &str, rest: &[&str]) -> Result<ConsoleCommand, String> {
    const USAGE: &str = "usage: audio list | audio import FILE NAME";
    match rest {
        [w] if abbreviates(w, "list", 1) => Ok(ConsoleCommand::AudioList),
        [w, ..] if abbreviates(w, "import", 1) => {
            let original: Vec<&str> = line.split_whitespace().collect();
            match original.as_slice() {
                [_, _, path, name @ ..] if !name.is_empty() => {
                    Ok(ConsoleCommand::AudioImport { path: (*path).to_string(), name: name.join(" ") })
                }
                _ => Err(USAGE.into()),
            }
        }
        _ => Err(USAGE.into()),
    }
}

/// `report queue|agent PERIOD FROM [TO] [csv]`; the line is already lower-case.
fn parse_report(rest: &[&str]) -> Result<ConsoleCommand, String> {
    use crate::apps::callcenter::{ReportKind, ReportQuery, Unit};
    use crate::apps::timerules::Date;
    const USAGE: &str = "usage: report queue|agent hour|day|month|weekday FROM [TO] [csv], dates YYYY-MM-DD";
    let (csv, rest) = match rest.split_last() {
        Some((last, front)) if *last == "csv" => (true, front),
        _ => (false, rest),
    };
    let (kind, unit, from, to) = match rest {
        [k, u, from] => (k, u, from, from),
        [k, u, from, to] => (k, u, from, to),
        _ => return Err(USAGE.into()),
    };
    let kind = if abbreviates(kind, "queue", 1) || abbreviates(kind, "group", 1) {
        ReportKind::Queue
    } else if abbreviates(kind, "agent", 1) || abbreviates(kind, "operator", 1) {
        ReportKind::Agent
    } else {
        return Err(format!("`{kind}` is not queue or agent; {USAGE}"));
    };
    let unit = match *unit {
        u if abbreviates(u, "hour", 1) => Unit::Hour,
        u if abbreviates(u, "day", 1) => Unit::Day,
        u if abbreviates(u, "month", 1) => Unit::Month,
        u if abbreviates(u, "weekday", 1) => Unit::Weekday,
        u => return Err(format!("`{u}` is not hour, day, month or weekday; {USAGE}")),
    };
    let date = |s: &str| Date::parse(s).ok_or_else(|| format!("`{s}` is not a date YYYY-MM-DD; {USAGE}"));
    let query = ReportQuery::new(kind, unit, date(from)?, date(to)?).map_err(|e| format!("{e}; {USAGE}"))?;
    Ok(ConsoleCommand::Report { query, csv })
}

/// The first word of `s` and what follows it.
fn next_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        // `find` returns a char boundary: the split cannot panic.
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

/// `voicemail greeting BOX SLOT FILE|delete`; FILE keeps its case and spaces.
fn parse_greeting(line: &str) -> Result<ConsoleCommand, String> {
    use crate::apps::voicemail::mailbox::GreetingKind;
    const USAGE: &str = "usage: voicemail greeting BOX SLOT FILE | voicemail greeting BOX SLOT delete \
                         (SLOT: default, available, busy, dnd, after_hours)";
    // The first two words are `voicemail greeting`; the fifth runs to the end of the line.
    let (_, rest) = next_word(line);
    let (_, rest) = next_word(rest);
    let (box_no, rest) = next_word(rest);
    let (slot, rest) = next_word(rest);
    let file = rest.trim();
    if box_no.is_empty() || slot.is_empty() || file.is_empty() {
        return Err(USAGE.into());
    }
    if crate::apps::voicemail::mailbox::BoxNumber::parse(box_no).is_none() {
        return Err(format!("`{box_no}` is not a mailbox number; {USAGE}"));
    }
    let Some(slot) = GreetingKind::from_name(&slot.to_lowercase()) else {
        return Err(format!("`{slot}` is not a greeting slot; {USAGE}"));
    };
    let file = (!file.eq_ignore_ascii_case("delete")).then(|| file.to_string());
    Ok(ConsoleCommand::VoicemailGreeting { box_no: box_no.to_string(), slot, file })
}

/// `supervise listen|whisper|barge SUPERVISOR AGENT` / `supervise stop SUPERVISOR`.
fn parse_supervise(rest: &[&str]) -> Result<ConsoleCommand, String> {
    use crate::apps::supervision::Mode;
    const USAGE: &str = "usage: supervise listen|whisper|barge SUPERVISOR AGENT | supervise stop SUPERVISOR";
    let extension = |e: &str| {
        let ok = !e.is_empty()
            && e.len() <= crate::apps::supervision::MAX_EXTENSION_DIGITS
            && e.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(e.to_string())
        } else {
            Err(format!("`{e}` is not an extension"))
        }
    };
    match rest {
        [w, sup] if abbreviates(w, "stop", 2) => Ok(ConsoleCommand::SuperviseStop(extension(sup)?)),
        [w, sup, agent] => {
            let mode = if abbreviates(w, "listen", 1) {
                Mode::Listen
            } else if abbreviates(w, "whisper", 1) {
                Mode::Whisper
            } else if abbreviates(w, "barge", 1) {
                Mode::Barge
            } else {
                return Err(USAGE.into());
            };
            Ok(ConsoleCommand::Supervise { mode, supervisor: extension(sup)?, agent: extension(agent)? })
        }
        _ => Err(USAGE.into()),
    }
}

/// `network [show]`, `network dhcp`, `network static ADDR/PREFIX GATEWAY [DNS..]`.
fn parse_network(rest: &[&str]) -> Result<ConsoleCommand, String> {
    const USAGE: &str = "usage: network | network dhcp | network static ADDR/PREFIX GATEWAY [DNS..]";
    match rest {
        [] => Ok(ConsoleCommand::NetworkShow),
        [w] if abbreviates(w, "show", 2) => Ok(ConsoleCommand::NetworkShow),
        [w] if *w == "dhcp" => Ok(ConsoleCommand::NetworkSet(NetworkChange::Dhcp)),
        [w, args @ ..] if abbreviates(w, "static", 2) => {
            NetworkChange::parse_static(args).map(ConsoleCommand::NetworkSet)
        }
        _ => Err(USAGE.into()),
    }
}

/// `ssh key add KEY` (KEY keeps its case: taken from `line`), `ssh key list`,
/// `ssh key remove N`.
fn parse_ssh(line: &str, rest: &[&str]) -> Result<ConsoleCommand, String> {
    const USAGE: &str = "usage: ssh key add TYPE BASE64 [COMMENT] | ssh key list | ssh key remove N";
    match rest {
        [k, l] if *k == "key" && abbreviates(l, "list", 1) => Ok(ConsoleCommand::SshKeyList),
        [k, r, n] if *k == "key" && abbreviates(r, "remove", 3) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=crate::system::ssh::MAX_KEYS).contains(n))
            .map(ConsoleCommand::SshKeyRemove)
            .ok_or_else(|| format!("`{n}` is not a key number; {USAGE}")),
        [k, a, _, ..] if *k == "key" && *a == "add" => {
            // Everything after `ssh key add`, case kept.
            let (_, after) = next_word(line);
            let (_, after) = next_word(after);
            let (_, key) = next_word(after);
            crate::system::ssh::check_key(key).map(ConsoleCommand::SshKeyAdd)
        }
        _ => Err(USAGE.into()),
    }
}

fn parse_log(rest: &[&str]) -> Result<ConsoleCommand, String> {
    let usage = || format!("usage: log tail [N], N from 1 to {MAX_LOG_TAIL}");
    match rest {
        [t] if abbreviates(t, "tail", 1) => Ok(ConsoleCommand::LogTail(DEFAULT_LOG_TAIL)),
        [t, n] if abbreviates(t, "tail", 1) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_LOG_TAIL).contains(&n) => Ok(ConsoleCommand::LogTail(n)),
            _ => Err(format!("`{n}` is not a line count; {}", usage())),
        },
        _ => Err(usage()),
    }
}

#[cfg(test)]
mod tests;
