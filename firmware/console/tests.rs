use super::client::{decode_reply, request, ClientError};
use super::server::encode_reply;
use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

// Tests for the command language.

#[test]
fn full_and_abbreviated_commands_parse() {
    use ConsoleCommand::*;
    for (line, want) in [
        ("show registrations", ShowRegistrations),
        ("sh reg", ShowRegistrations),
        ("SHOW R", ShowRegistrations),
        ("show calls", ShowCalls),
        ("sh c", ShowCalls),
        ("  show   extensions  ", ShowExtensions),
        ("sh ext", ShowExtensions),
        ("show version", ShowVersion),
        ("sh ver", ShowVersion),
        ("log tail", LogTail(DEFAULT_LOG_TAIL)),
        ("log tail 7", LogTail(7)),
        ("lo t 2000", LogTail(2000)),
        ("help", Help),
        ("sh out", ShowOutbox),
        ("sh al", ShowAlarms),
        ("mail test Yamada@Example.jp", MailTest("Yamada@Example.jp".into())),
        ("h", Help),
        ("?", Help),
    ] {
        assert_eq!(parse_command(line), Ok(want), "{line}");
    }
}

#[test]
fn debug_hang_names_one_of_the_watchdog_loops() {
    use crate::watchdog::Loop;
    assert_eq!(parse_command("debug hang sip"), Ok(ConsoleCommand::DebugHang(Loop::Sip)));
    assert_eq!(parse_command("DEBUG HANG Store"), Ok(ConsoleCommand::DebugHang(Loop::Store)));
    let err = parse_command("debug hang engine").unwrap_err();
    assert!(err.contains("sip, media, store or web"), "{err}");
    assert!(parse_command("debug hang").is_err());
}

#[test]
fn show_events_takes_an_optional_bounded_count() {
    assert_eq!(parse_command("show events"), Ok(ConsoleCommand::ShowEvents(DEFAULT_EVENTS_SHOW)));
    assert_eq!(parse_command("sh ev 5"), Ok(ConsoleCommand::ShowEvents(5)));
    assert_eq!(parse_command("sh e"), Ok(ConsoleCommand::ShowExtensions));
    for bad in ["show events 0", "show events 501", "show events many", "show events 5 6"] {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn report_commands_parse_kind_unit_dates_and_csv() {
    use crate::apps::callcenter::{ReportKind, ReportQuery, Unit};
    use crate::apps::timerules::Date;
    let d = |s: &str| Date::parse(s).unwrap();
    let q = |kind, unit, from: &str, to: &str| ReportQuery::new(kind, unit, d(from), d(to)).unwrap();
    for (line, query, csv) in [
        (
            "report queue day 2026-11-01 2026-11-30",
            q(ReportKind::Queue, Unit::Day, "2026-11-01", "2026-11-30"),
            false,
        ),
        ("rep q h 2026-11-02", q(ReportKind::Queue, Unit::Hour, "2026-11-02", "2026-11-02"), false),
        (
            "REPORT agent month 2026-01-01 2026-12-31 CSV",
            q(ReportKind::Agent, Unit::Month, "2026-01-01", "2026-12-31"),
            true,
        ),
        (
            "rep a w 2026-11-01 2026-11-30 csv",
            q(ReportKind::Agent, Unit::Weekday, "2026-11-01", "2026-11-30"),
            true,
        ),
    ] {
        assert_eq!(parse_command(line), Ok(ConsoleCommand::Report { query, csv }), "{line}");
    }
}

#[test]
fn report_commands_refuse_bad_dates_ranges_and_words_with_the_usage() {
    for bad in [
        "report",
        "report queue",
        "report queue day",
        "report queue day 2026-11-31",
        "report queue day 2026/11/01",
        "report queue day 2026-11-30 2026-11-01",
        "report queue hour 2026-01-01 2026-03-01",
        "report queue year 2026-01-01",
        "report caller day 2026-01-01",
        "report queue day 2026-01-01 2026-01-02 pdf",
    ] {
        let e = parse_command(bad).unwrap_err();
        assert!(e.contains("usage: report"), "{bad}: {e}");
    }
}

#[test]
fn unknown_or_malformed_commands_are_refused_with_a_hint() {
    for line in ["", "   ", "frobnicate", "s reg", "show", "show bananas", "sh reg now", "log", "log head"] {
        let e = parse_command(line).unwrap_err();
        assert!(!e.is_empty(), "{line}");
    }
    assert!(parse_command("frobnicate").unwrap_err().contains("help"));
    assert!(parse_command("show").unwrap_err().contains("registrations"));
    for n in ["0", "2001", "-1", "many", "99999999999999999999999"] {
        let e = parse_command(&format!("log tail {n}")).unwrap_err();
        assert!(e.contains("2000"), "{e}");
    }
}

#[test]
fn agent_commands_parse_with_the_queue_in_its_own_case() {
    use crate::apps::callcenter::AgentState;
    use crate::engine::AgentCommand;
    let agent = |ext: &str, command| ConsoleCommand::Agent { ext: ext.into(), command };
    for (line, want) in [
        ("agent login 201", agent("201", AgentCommand::Login)),
        ("AG break 202", agent("202", AgentCommand::Select(AgentState::ShortBreak))),
        ("agent acw-end 201", agent("201", AgentCommand::EndAcw)),
        ("agent other 201 3", agent("201", AgentCommand::Select(AgentState::OtherWork(3)))),
        ("agent pause 201 Support", agent("201", AgentCommand::QueueAvailability("Support".into(), false))),
        ("agent resume 201 6000", agent("201", AgentCommand::QueueAvailability("6000".into(), true))),
        ("sh q", ConsoleCommand::ShowQueues),
        ("show agents", ConsoleCommand::ShowAgents),
    ] {
        assert_eq!(parse_command(line), Ok(want), "{line}");
    }
    for bad in
        ["agent", "agent login", "agent login abc", "agent other 201 7", "agent pause 201", "agent fly 201"]
    {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn help_lists_every_command() {
    let help = help_text();
    for word in [
        "show registrations",
        "show calls",
        "show extensions",
        "show version",
        "log tail",
        "web cert",
        "help",
    ] {
        assert!(help.contains(word), "{word}");
    }
}

#[test]
fn web_commands_parse_and_keep_the_case_of_paths() {
    assert_eq!(parse_command("web reset-admin"), Ok(ConsoleCommand::WebResetAdmin));
    assert_eq!(
        parse_command("web cert /tmp/Cert.pem /tmp/Key.pem"),
        Ok(ConsoleCommand::WebCert { cert: "/tmp/Cert.pem".into(), key: "/tmp/Key.pem".into() })
    );
    assert!(parse_command("web cert onlyone").is_err());
    assert!(parse_command("web").is_err());
}

// Tests for the framing.

#[test]
fn dot_stuffing_round_trips_every_line() {
    let reply = ".\n.hidden\n..two\nplain\n\n.";
    let wire = encode_reply(reply);
    assert_eq!(wire, "..\n..hidden\n...two\nplain\n\n..\n.\n");
    let lines = decode_reply(&wire).unwrap();
    assert_eq!(lines, [".", ".hidden", "..two", "plain", "", "."]);
    assert_eq!(encode_reply(""), ".\n");
    assert!(decode_reply("").unwrap_err_is_reply());
    assert!(decode_reply("half a reply\n").unwrap_err_is_reply());
}

trait ReplyErr {
    fn unwrap_err_is_reply(self) -> bool;
}

impl ReplyErr for Result<Vec<String>, ClientError> {
    fn unwrap_err_is_reply(self) -> bool {
        matches!(self, Err(ClientError::Reply(_)))
    }
}

// Tests over a real socket, with a fake state owner.

/// Starts `serve` at a fresh socket and a responder answering like a tiny daemon.
async fn start(dir: &Path) -> PathBuf {
    let path = dir.join("console.sock");
    let (tx, mut rx) = mpsc::channel::<ConsoleRequest>(4);
    tokio::spawn(serve(path.clone(), tx));
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let answer = match req.command {
                ConsoleCommand::ShowVersion => "hakoden test".to_string(),
                ConsoleCommand::LogTail(n) => {
                    (0..n).map(|i| format!(".line {i}")).collect::<Vec<_>>().join("\n")
                }
                ConsoleCommand::Help => help_text(),
                ConsoleCommand::ShowCdr(n) => format!("{n} records"),
                ConsoleCommand::ShowCdrDetail(n) => format!("{n} detailed records"),
                ConsoleCommand::ShowTrunks => "trunks".to_string(),
                ConsoleCommand::ShowForwards => "forwards".to_string(),
                ConsoleCommand::ShowDids
                | ConsoleCommand::ShowQueues
                | ConsoleCommand::ShowAgents
                | ConsoleCommand::Agent { .. }
                | ConsoleCommand::ShowList(_)
                | ConsoleCommand::ListImport { .. } => "lists".to_string(),
                ConsoleCommand::ShowParked => "parked".to_string(),
                ConsoleCommand::ShowVoicemail => "voicemail".to_string(),
                ConsoleCommand::WebResetAdmin | ConsoleCommand::WebCert { .. } => "web".to_string(),
                // Never answers: the server must time out on its own.
                ConsoleCommand::ShowCalls => {
                    std::mem::forget(req.reply);
                    continue;
                }
                ConsoleCommand::ShowRegistrations => {
                    drop(req.reply);
                    continue;
                }
                ConsoleCommand::ShowExtensions => "error: no extensions here".to_string(),
                ConsoleCommand::AudioImport { .. } | ConsoleCommand::AudioList => "audio".to_string(),
                ConsoleCommand::DebugHang(l) => format!("hang {l}"),
                ConsoleCommand::ShowEvents(_) | ConsoleCommand::Report { .. } => "callcenter".to_string(),
                ConsoleCommand::ShowOutbox | ConsoleCommand::MailTest(_) => "notify".to_string(),
                ConsoleCommand::ShowAlarms => crate::alarms::global().show(),
                ConsoleCommand::VoicemailGreeting { .. } => "greeting".to_string(),
                ConsoleCommand::ShowSupervision
                | ConsoleCommand::Supervise { .. }
                | ConsoleCommand::Call { .. }
                | ConsoleCommand::Campaign(_)
                | ConsoleCommand::SuperviseStop(_) => "supervision".to_string(),
                ConsoleCommand::Update(_)
                | ConsoleCommand::ShowFirmware
                | ConsoleCommand::Backup(_)
                | ConsoleCommand::Restore(_)
                | ConsoleCommand::FactoryReset { .. } => "system".to_string(),
                ConsoleCommand::Status
                | ConsoleCommand::NetworkShow
                | ConsoleCommand::NetworkSet(_)
                | ConsoleCommand::OptionsTest(_)
                | ConsoleCommand::Reboot { .. }
                | ConsoleCommand::SshKeyAdd(_)
                | ConsoleCommand::SshKeyList
                | ConsoleCommand::SshKeyRemove(_) => "system".to_string(),
            };
            let _ = req.reply.send(answer);
        }
    });
    wait_for(&path).await;
    path
}

async fn wait_for(path: &Path) {
    for _ in 0..200 {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("console socket never came up at {}", path.display());
}

async fn ask(path: &Path, line: &str) -> Result<Vec<String>, ClientError> {
    let (path, line) = (path.to_path_buf(), line.to_string());
    tokio::task::spawn_blocking(move || request(&path, &line)).await.unwrap()
}

async fn raw(path: &Path, bytes: &[u8]) -> String {
    let mut s = tokio::net::UnixStream::connect(path).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_command_goes_to_the_owner_and_its_answer_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path()).await;
    assert_eq!(ask(&path, "sh ver").await.unwrap(), ["hakoden test"]);
    assert_eq!(ask(&path, "log tail 3").await.unwrap(), [".line 0", ".line 1", ".line 2"]);
    assert_eq!(raw(&path, b"log tail 1\r\n").await, "..line 0\n.\n");
    assert_eq!(ask(&path, "help").await.unwrap().len(), help_text().lines().count());
}

#[tokio::test]
async fn bad_requests_get_an_error_reply() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path()).await;
    let reply = ask(&path, "frobnicate").await.unwrap();
    assert!(reply[0].starts_with("error: unknown command `frobnicate`"), "{reply:?}");
    let long = "x".repeat(MAX_LINE_BYTES + 10);
    let reply = raw(&path, format!("{long}\n").as_bytes()).await;
    assert!(reply.starts_with("error: command longer than"), "{reply}");
    assert!(reply.ends_with("\n.\n"));
    let reply = raw(&path, b"\xff\xfe\n").await;
    assert!(reply.starts_with("error: the command is not UTF-8"), "{reply}");
    // A line of exactly the limit is read whole (and then refused as unknown).
    let reply = raw(&path, format!("{}\n", "y".repeat(MAX_LINE_BYTES)).as_bytes()).await;
    assert!(reply.starts_with("error: unknown command"), "{reply}");
}

#[tokio::test]
async fn an_owner_that_drops_or_ignores_the_request_still_yields_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path()).await;
    let reply = ask(&path, "sh reg").await.unwrap();
    assert_eq!(reply, ["error: the box dropped the request"]);
    let reply = ask(&path, "sh calls").await.unwrap();
    assert!(reply[0].starts_with("error: the box did not answer"), "{reply:?}");
}

#[tokio::test]
async fn a_stopped_owner_means_shutting_down() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sock");
    let (tx, rx) = mpsc::channel::<ConsoleRequest>(1);
    drop(rx);
    tokio::spawn(serve(path.clone(), tx));
    wait_for(&path).await;
    assert_eq!(ask(&path, "sh ver").await.unwrap(), ["error: the box is shutting down"]);
}

#[tokio::test]
async fn the_socket_is_private_and_a_stale_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("console.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "stale socket file left behind");
    let path = start(dir.path()).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(ask(&path, "sh ver").await.unwrap(), ["hakoden test"]);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[tokio::test]
async fn serve_refuses_a_regular_file_and_a_live_socket() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let (tx, _rx) = mpsc::channel(1);
    assert!(serve(file.clone(), tx.clone()).await.is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let path = start(dir.path()).await;
    let e = serve(path.clone(), tx).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(ask(&path, "sh ver").await.unwrap(), ["hakoden test"]);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path()).await;
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(tokio::net::UnixStream::connect(&path).await.unwrap());
    }
    // Let the accept loop take all of them before the extra one.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = raw(&path, b"sh ver\n").await;
    assert!(reply.starts_with("error: the console is busy"), "{reply}");
    drop(idle);
    let mut answered = false;
    for _ in 0..100 {
        if ask(&path, "sh ver").await.unwrap() == ["hakoden test"] {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "slots never came back");
}

#[tokio::test]
async fn run_client_exit_codes_tell_ok_refused_and_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let path = start(dir.path()).await;
    let code = |cmd: &str, path: PathBuf| {
        let cmd = cmd.to_string();
        tokio::task::spawn_blocking(move || run_client(&path, Some(cmd)))
    };
    assert_eq!(code("sh ver", path.clone()).await.unwrap(), 0);
    assert_eq!(code("frobnicate", path.clone()).await.unwrap(), 1);
    assert_eq!(code("sh ext", path.clone()).await.unwrap(), 1);
    assert_eq!(code("sh ver", dir.path().join("nobody.sock")).await.unwrap(), 2);
}

#[test]
fn audio_commands_keep_the_case_of_paths_and_names() {
    assert_eq!(parse_command("audio list"), Ok(ConsoleCommand::AudioList));
    assert_eq!(
        parse_command("AUDIO import /tmp/Greeting.WAV 業務A Morning"),
        Ok(ConsoleCommand::AudioImport { path: "/tmp/Greeting.WAV".into(), name: "業務A Morning".into() })
    );
    assert!(parse_command("audio import /tmp/x.wav").is_err());
}

#[test]
fn list_commands_parse_and_keep_the_path_as_typed() {
    use crate::engine::ListKind;
    assert_eq!(parse_command("show dids"), Ok(ConsoleCommand::ShowDids));
    assert_eq!(parse_command("sh block"), Ok(ConsoleCommand::ShowList(ListKind::Block)));
    assert_eq!(parse_command("show restrict"), Ok(ConsoleCommand::ShowList(ListKind::Restrict)));
    assert_eq!(
        parse_command("block import /tmp/My Lists/ng.csv"),
        Ok(ConsoleCommand::ListImport { kind: ListKind::Block, path: "/tmp/My Lists/ng.csv".into() })
    );
    assert_eq!(
        parse_command("restrict import r.csv"),
        Ok(ConsoleCommand::ListImport { kind: ListKind::Restrict, path: "r.csv".into() })
    );
    assert!(parse_command("block import").is_err());
}

#[test]
fn voicemail_greeting_commands_name_a_box_a_slot_and_a_file_or_delete() {
    use crate::apps::voicemail::mailbox::GreetingKind;
    assert_eq!(
        parse_command("voicemail greeting 202 busy /tmp/My Greetings/Busy.WAV"),
        Ok(ConsoleCommand::VoicemailGreeting {
            box_no: "202".into(),
            slot: GreetingKind::Busy,
            file: Some("/tmp/My Greetings/Busy.WAV".into())
        })
    );
    assert_eq!(
        parse_command("vm gr 800 after_hours DELETE"),
        Ok(ConsoleCommand::VoicemailGreeting {
            box_no: "800".into(),
            slot: GreetingKind::AfterHours,
            file: None
        })
    );
    for bad in [
        "voicemail greeting",
        "voicemail greeting 202 busy",
        "vm greeting 202 lunch x.wav",
        "vm gr ab busy x.wav",
    ] {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn supervise_commands_parse_with_their_mode_and_extensions() {
    use crate::apps::supervision::Mode;
    let sup = |mode, s: &str, a: &str| ConsoleCommand::Supervise {
        mode,
        supervisor: s.to_string(),
        agent: a.to_string(),
    };
    for (line, want) in [
        ("supervise listen 900 201", sup(Mode::Listen, "900", "201")),
        ("sup w 900 201", sup(Mode::Whisper, "900", "201")),
        ("SUPERVISE BARGE 900 201", sup(Mode::Barge, "900", "201")),
        ("supervise stop 900", ConsoleCommand::SuperviseStop("900".into())),
        ("show supervision", ConsoleCommand::ShowSupervision),
        ("sh su", ConsoleCommand::ShowSupervision),
    ] {
        assert_eq!(parse_command(line), Ok(want), "{line}");
    }
    for line in ["supervise", "supervise listen 900", "supervise spy 900 201", "supervise listen 9x 201"] {
        assert!(parse_command(line).is_err(), "{line}");
    }
    assert!(help_text().contains("supervise stop"));
}

#[test]
fn call_takes_an_extension_and_a_number() {
    let call = |from: &str, to: &str| ConsoleCommand::Call { from: from.into(), to: to.into() };
    assert_eq!(parse_command("call 201 202"), Ok(call("201", "202")));
    assert_eq!(parse_command("call 201 +81312345678"), Ok(call("201", "+81312345678")));
    for line in
        ["call", "call 201", "call 201 2x2", "call 201 202 203", &format!("call 201 {}", "1".repeat(25))]
    {
        assert!(parse_command(line).is_err(), "{line}");
    }
    assert!(help_text().contains("call FROM TO"));
}

#[test]
fn system_commands_keep_the_path_case_and_ask_before_a_factory_reset() {
    assert_eq!(
        parse_command("update /tmp/Next.bundle"),
        Ok(ConsoleCommand::Update("/tmp/Next.bundle".into()))
    );
    assert_eq!(
        parse_command("backup /tmp/My Backup.hkb"),
        Ok(ConsoleCommand::Backup("/tmp/My Backup.hkb".into()))
    );
    assert_eq!(parse_command("restore /tmp/b.hkb"), Ok(ConsoleCommand::Restore("/tmp/b.hkb".into())));
    assert_eq!(parse_command("sh fir"), Ok(ConsoleCommand::ShowFirmware));
    assert_eq!(parse_command("factory-reset"), Ok(ConsoleCommand::FactoryReset { confirmed: false }));
    assert_eq!(parse_command("factory-reset confirm"), Ok(ConsoleCommand::FactoryReset { confirmed: true }));
    assert!(parse_command("update").is_err());
    assert!(parse_command("factory-reset now").is_err());
}

// The appliance commands (issue 8).

#[test]
fn status_logs_and_reboot_parse() {
    use ConsoleCommand::*;
    for (line, want) in [
        ("status", Status),
        ("st", Status),
        ("STATUS", Status),
        ("logs", LogTail(DEFAULT_LOG_TAIL)),
        ("logs 5", LogTail(5)),
        ("reboot", Reboot { confirmed: false }),
        ("reboot now", Reboot { confirmed: true }),
        ("network", NetworkShow),
        ("net show", NetworkShow),
        ("ssh key list", SshKeyList),
        ("ssh key remove 2", SshKeyRemove(2)),
    ] {
        assert_eq!(parse_command(line), Ok(want), "{line}");
    }
    for bad in ["logs 0", "logs many", "reboot please", "status now", "ssh key remove 0", "ssh key"] {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn network_settings_commands_parse_and_check_their_values() {
    use crate::system::network::NetworkChange;
    use ConsoleCommand::NetworkSet;
    assert_eq!(parse_command("network dhcp"), Ok(NetworkSet(NetworkChange::Dhcp)));
    assert_eq!(
        parse_command("network static 192.168.1.20/24 192.168.1.1 192.168.1.1 1.1.1.1"),
        Ok(NetworkSet(NetworkChange::Static {
            addr: "192.168.1.20".parse().unwrap(),
            prefix: 24,
            gateway: "192.168.1.1".parse().unwrap(),
            dns: vec!["192.168.1.1".parse().unwrap(), "1.1.1.1".parse().unwrap()],
        }))
    );
    assert_eq!(
        parse_command("hostname office-pbx"),
        Ok(NetworkSet(NetworkChange::Hostname("office-pbx".into())))
    );
    assert_eq!(
        parse_command("ntp ntp.nict.jp"),
        Ok(NetworkSet(NetworkChange::Ntp(vec!["ntp.nict.jp".into()])))
    );
    assert_eq!(parse_command("ntp off"), Ok(NetworkSet(NetworkChange::Ntp(vec![]))));
    for bad in [
        "network static 192.168.1.20 192.168.1.1",
        "network static 192.168.1.20/24",
        "network static 300.1.1.1/24 192.168.1.1",
        "network bogus",
        "hostname a;reboot",
        "hostname",
        "ntp",
        "ntp $(id)",
    ] {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn options_test_keeps_the_target_case_and_ssh_keys_keep_theirs() {
    assert_eq!(
        parse_command("options-test sip:Trunk@10.0.0.1:5062"),
        Ok(ConsoleCommand::OptionsTest("sip:Trunk@10.0.0.1:5062".into()))
    );
    assert!(parse_command("options-test").is_err());
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f Tech@Laptop";
    assert_eq!(parse_command(&format!("ssh key add {key}")), Ok(ConsoleCommand::SshKeyAdd(key.into())));
    assert!(parse_command("ssh key add ssh-ed25519 notakey").is_err());
}

#[test]
fn the_help_lists_the_appliance_commands() {
    let h = help_text();
    for c in [
        "status",
        "logs [N]",
        "network static",
        "hostname NAME",
        "ntp SERVER",
        "options-test",
        "ssh key add",
        "reboot",
    ] {
        assert!(h.contains(c), "{c}");
    }
}
