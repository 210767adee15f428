//! `hakoden run`: opens the store, provisions extensions, binds the sockets and runs the engine.
//!
//! This is the only place that reads the clock for the engine: one task owns the [`Engine`],
//! feeds it inbound messages, console questions and timer wake-ups, and carries out its outputs.

use crate::apps::voicemail::mailbox::{BoxNumber, GreetingKind, MessageId};
use crate::config::{Config, ExtensionConfig, PortRange};
use crate::console::{ConsoleCommand, ConsoleRequest};
use crate::engine::VoicemailOp;
use crate::engine::{Engine, EngineConfig, Output};
use crate::media::relay::RelayManager;
use crate::media::{MediaCommand, MediaEvent, RelayId};
use crate::sip::transport::{Inbound, SipSockets};
use crate::store::voicemail::{GreetingTake, Take, VoicemailStore};
use crate::store::{spawn_cdr_writer, spawn_queue_event_writer, CdrSink, QueueEventSink, Store};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio::sync::mpsc;

/// Messages waiting for the engine; beyond this UDP datagrams are dropped (overload) and TCP
/// readers wait (back-pressure).
const INBOX_CAPACITY: usize = 16_384;
/// Inputs handled per wake-up before outputs are flushed: keeps latency bounded under load.
const INPUTS_PER_WAKEUP: usize = 64;
/// Polls (5 ms apart) for the console socket before the box says it is ready: 2 s at most.
const CONSOLE_READY_POLLS: u32 = 400;
/// Console requests queued.
const CONSOLE_QUEUE: usize = 16;
/// Web questions to the engine queued; beyond it the dashboard shows no counts rather than wait.
const WEB_QUERY_QUEUE: usize = 16;
/// The number of demo extensions and the first number.
const DEMO_FIRST: u32 = 201;
const DEMO_COUNT: u32 = 10;

/// Everything `hakoden run` was told.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Data directory (store, console socket).
    pub data_dir: PathBuf,
    /// The parsed config file, if one was given.
    pub config: Option<Config>,
    /// The config file's text: the start-up precedence against the web's saved document
    /// compares its hash (`config::document`).
    pub config_text: Option<String>,
    /// `--sip-port`
    pub sip_port: Option<u16>,
    /// `--rtp-ports`
    pub rtp_ports: Option<PortRange>,
    /// `--bind`
    pub bind: Option<IpAddr>,
    /// `--https-port` (0 = web admin off)
    pub https_port: Option<u16>,
    /// `--http-port` (0 = no redirect listener)
    pub http_port: Option<u16>,
    /// `--watchdog DEVICE`: the hardware watchdog to pet (crate::watchdog).
    pub watchdog: Option<PathBuf>,
    /// `--allow-debug`: `debug hang LOOP` on the console.
    pub allow_debug: bool,
    /// `--boot-dir` + `--update-key` + `--board`: the A/B appliance (signed updates, trial
    /// health check); `None` on a developer's machine.
    pub appliance: Option<crate::update::Appliance>,
    /// The `--config` file: backups carry it, restores write it back.
    pub config_file: Option<PathBuf>,
}

/// Why the box could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// The console socket path inside a data directory.
pub fn console_socket(data_dir: &Path) -> PathBuf {
    data_dir.join("console.sock")
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        log::error!("no OS randomness; falling back to a time-derived seed");
        b.iter_mut().enumerate().for_each(|(i, x)| *x = (wall_ms() >> (i % 8)) as u8 ^ i as u8);
    }
    b
}

/// A SIP password for a demo extension: 12 characters without look-alikes (0/O, 1/l/I).
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_bytes::<12>().iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

#[allow(clippy::disallowed_methods)] // driver: reads the wall clock for the CDR anchor
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The `campaign` console commands on the runner.
fn campaign_console(
    campaigns: &mut crate::campaigns::CampaignRunner,
    cmd: crate::console::CampaignCommand,
    now_ms: u64,
) -> String {
    use crate::console::CampaignCommand;
    use std::fmt::Write as _;
    let _ = now_ms;
    match cmd {
        CampaignCommand::List => {
            let views = campaigns.views();
            let mut s = format!("{} campaign(s)\n", views.len());
            let _ = writeln!(
                s,
                "{:<4} {:<16} {:<5} {:<12} {:>7} {:>7} {:>6}",
                "id", "name", "on", "mode", "entries", "waiting", "active"
            );
            for v in views {
                let mode = match v.settings.pacing.mode {
                    crate::apps::campaign::pacing::DialMode::Preview => "preview",
                    crate::apps::campaign::pacing::DialMode::Progressive => "progressive",
                };
                let _ = writeln!(
                    s,
                    "{:04} {:<16} {:<5} {:<12} {:>7} {:>7} {:>6}",
                    v.settings.id,
                    v.settings.name,
                    if v.settings.enabled { "on" } else { "off" },
                    mode,
                    v.entries,
                    v.waiting,
                    v.active
                );
            }
            s
        }
        CampaignCommand::Show(name) => match campaigns.entries(&name) {
            None => format!("error: no campaign `{name}`"),
            Some(entries) => {
                let mut s = format!("campaign {name}: {} entr(ies)\n", entries.len());
                let _ = writeln!(
                    s,
                    "{:<6} {:<16} {:<16} {:<14} {:<9} {:>5} {:<6}",
                    "entry", "number", "name", "result", "status", "calls", "agent"
                );
                for e in entries {
                    let _ = writeln!(
                        s,
                        "{:<6} {:<16} {:<16} {:<14} {:<9} {:>5} {:<6}{}",
                        e.id,
                        e.number,
                        e.name,
                        crate::store::campaign::outcome_key(e.result),
                        crate::store::campaign::status_key(e.status),
                        e.calls,
                        e.agent.as_deref().unwrap_or("-"),
                        e.schedule_ms.map(|t| format!(" recall at {t} ms")).unwrap_or_default()
                    );
                }
                s
            }
        },
        CampaignCommand::Add { campaign, number, customer } => {
            match campaigns.add_entry(&campaign, &number, &customer, None, None) {
                Ok(id) => format!("campaign {campaign}: entry {id} added ({number})"),
                Err(e) => format!("error: {e}"),
            }
        }
        CampaignCommand::Result { campaign, entry, result } => {
            match campaigns.set_result(&campaign, entry, result) {
                Ok(()) => format!("campaign {campaign}: entry {entry} result {result}"),
                Err(e) => format!("error: {e}"),
            }
        }
    }
}

/// How often the campaign runner looks for dials to start (seed 002 §2.17's pacing works in
/// seconds; a customer's ring time is at least 5 s).
const CAMPAIGN_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// The wall clock in unix seconds (the nightly restart's local windows).
fn unix_s() -> i64 {
    i64::try_from(wall_ms() / 1000).unwrap_or(i64::MAX)
}

/// What the appliance commands need besides the engine.
struct SystemContext<'a> {
    platform: &'a crate::system::Platform,
    data_dir: &'a Path,
    started: Instant,
    /// Wakes the SNTP task after a settings change.
    ntp_kick: &'a std::sync::Arc<tokio::sync::Notify>,
}

/// `status`, `network`, `hostname`, `ntp`, `options-test`, `reboot`, `ssh key`: the engine's
/// counts are taken here, on its task; files, processes and the network run elsewhere and
/// answer `reply` themselves.
fn answer_system(
    engine: &Engine,
    sys: &SystemContext<'_>,
    cmd: ConsoleCommand,
    reply: tokio::sync::oneshot::Sender<String>,
    next_restart: Option<i64>,
    now: Instant,
) {
    use crate::system::{network, ssh};
    let data_dir = sys.data_dir.to_path_buf();
    let platform = sys.platform.clone();
    match cmd {
        ConsoleCommand::Status => {
            let trunks = engine.trunk_states();
            let registered = trunks
                .iter()
                .filter(|(_, st, _)| matches!(st, crate::apps::trunk::TrunkState::Registered { .. }))
                .count();
            let mut facts = crate::system::StatusFacts {
                version: crate::VERSION.to_string(),
                slot: platform.slot.clone(),
                uptime_s: now.saturating_duration_since(sys.started).as_secs(),
                registrations: engine.registrations(now).len(),
                calls: engine.calls(now).len(),
                trunks: (registered, trunks.len()),
                next_restart: next_restart
                    .map(|t| format!("unix {t} ({} s from now)", t.saturating_sub(unix_s()))),
                ..Default::default()
            };
            tokio::task::spawn_blocking(move || {
                facts.system_uptime_s = crate::system::system_uptime();
                facts.storage = crate::system::storage(&data_dir);
                facts.network =
                    network::load(&data_dir).map(|n| n.describe()).unwrap_or_else(|e| format!("error: {e}"));
                facts.addresses = crate::system::live_addresses();
                let _ = reply.send(crate::system::render_status(&facts));
            });
        }
        ConsoleCommand::NetworkShow => {
            tokio::task::spawn_blocking(move || {
                let text = match network::load(&data_dir) {
                    Ok(n) => {
                        let addrs = crate::system::live_addresses();
                        let addrs = if addrs.is_empty() { "none".to_string() } else { addrs.join(", ") };
                        let applied = if platform.appliance { "" } else { " (developer run: the host's)" };
                        format!(
                            "{}
addresses{applied}: {addrs}",
                            n.describe()
                        )
                    }
                    Err(e) => format!("error: {e}"),
                };
                let _ = reply.send(text);
            });
        }
        ConsoleCommand::NetworkSet(change) => {
            let kick = sys.ntp_kick.clone();
            tokio::task::spawn_blocking(move || {
                let text = network::load(&data_dir).and_then(|mut n| {
                    n.apply(change);
                    network::save(&data_dir, &n)?;
                    log::info!(
                        "network settings changed on the console: {}",
                        n.describe().replace('\n', "; ")
                    );
                    Ok(crate::system::apply_network(&platform, &data_dir, &n))
                });
                kick.notify_one();
                let _ = reply.send(text.unwrap_or_else(|e| format!("error: {e}")));
            });
        }
        ConsoleCommand::OptionsTest(target) => {
            tokio::spawn(async move {
                let _ = reply.send(crate::system::options::options_test(&target).await);
            });
        }
        ConsoleCommand::Reboot { confirmed: false } => {
            let calls = engine.calls(now).len();
            let text = if platform.appliance {
                format!("this restarts the box and ends {calls} active call(s); type `reboot now` to confirm")
            } else {
                "error: refused: this is not the appliance image (a developer run never reboots the host)"
                    .to_string()
            };
            let _ = reply.send(text);
        }
        ConsoleCommand::Reboot { confirmed: true } => {
            let text = match crate::system::request_reboot(&platform) {
                Ok(()) => "rebooting now".to_string(),
                Err(e) => format!("error: {e}"),
            };
            let _ = reply.send(text);
        }
        ConsoleCommand::SshKeyAdd(key) => {
            tokio::task::spawn_blocking(move || {
                let _ = reply.send(ssh::add(&data_dir, &key));
            });
        }
        ConsoleCommand::SshKeyList => {
            tokio::task::spawn_blocking(move || {
                let _ = reply.send(ssh::list(&data_dir));
            });
        }
        ConsoleCommand::SshKeyRemove(n) => {
            tokio::task::spawn_blocking(move || {
                let _ = reply.send(ssh::remove(&data_dir, n));
            });
        }
        _ => {
            let _ = reply.send("error: internal".to_string());
        }
    }
}

#[allow(clippy::disallowed_methods)] // driver: reads the clock for the engine
fn now() -> Instant {
    Instant::now()
}

/// Decides which extensions the box serves: the config file's (stored), else the stored ones,
/// else a fresh demo set 201-210 whose generated passwords are printed once.
fn provision(store: &Store, config: &Config) -> Result<Vec<ExtensionConfig>, StartError> {
    let err = |e: crate::store::StoreError| StartError(format!("store: {e}"));
    if !config.extensions.is_empty() {
        store.put_extensions(&config.extensions).map_err(err)?;
        return Ok(config.extensions.clone());
    }
    let stored = store.extensions().map_err(err)?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    let demo: Vec<ExtensionConfig> = (DEMO_FIRST..DEMO_FIRST + DEMO_COUNT)
        .map(|n| ExtensionConfig {
            number: n.to_string(),
            name: format!("Demo {n}"),
            password: generate_password(),
            call_waiting: true,
            record: Default::default(),
        })
        .collect();
    store.put_extensions(&demo).map_err(err)?;
    println!("First start: demo extensions created (shown again by `hakoden console show extensions`):");
    for e in &demo {
        println!("  extension {}  password {}", e.number, e.password);
    }
    Ok(demo)
}

/// `--sip-port`, `--rtp-ports`, `--bind`, `--https-port`, `--http-port` over the document's.
fn apply_overrides(config: &mut Config, opts: &RunOptions) {
    if let Some(p) = opts.sip_port {
        config.sip.port = p;
    }
    if let Some(r) = opts.rtp_ports {
        config.rtp.ports = r;
    }
    if let Some(b) = opts.bind {
        config.sip.bind = b;
    }
    if let Some(p) = opts.https_port {
        config.web.https_port = p;
    }
    if let Some(p) = opts.http_port {
        config.web.http_port = p;
    }
}

/// The engine's view of `config`; at start and for `Engine::reconfigure` (which keeps its own
/// `secret`, `wall_anchor` and `first_call_id`).
fn engine_config(
    config: &Config,
    advertise: IpAddr,
    secret: [u8; 32],
    wall_anchor: (Instant, u64),
    first_call_id: u64,
) -> EngineConfig {
    EngineConfig {
        realm: "hakoden".into(),
        sip_port: config.sip.port,
        advertise,
        ring_timeout: std::time::Duration::from_secs(u64::from(config.sip.ring_timeout_s)),
        trust_registered_source: config.sip.trust_registered_source,
        auth_algorithms: config.sip.auth_algorithms.clone(),
        secret,
        rtp_ports: config.rtp.ports,
        wall_anchor,
        first_call_id,
        media: config.media.clone(),
        rooms: config.conference.rooms.clone(),
        trunks: config.trunks.clone(),
        dialplan: config.dialplan.clone(),
        trunk_calls: config.trunk_calls.clone(),
        ivrs: config.ivrs.clone(),
        supervisors: config.supervisors.clone(),
        callcenter: config.callcenter.clone(),
        park: config.park.clone(),
    }
}

/// The voicemail policy, and the counts and greetings of every mailbox the engine has now.
fn set_voicemail(engine: &mut Engine, config: &Config, voicemail: &Voicemail) {
    engine.set_voicemail_policy(config.voicemail, config.notify.chat_rules.clone());
    for (box_no, counts) in voicemail.store.all_counts() {
        engine.set_voicemail_counts(now(), box_no, counts);
    }
    for (box_no, _) in engine.voicemail_boxes() {
        let greetings = voicemail.greetings(&box_no);
        if !greetings.is_empty() {
            engine.set_voicemail_greetings(box_no, greetings);
        }
    }
}

/// The address phones should use: the configured one, the bind address, or the first
/// non-loopback IPv4 interface address.
fn advertise_address(config: &Config) -> IpAddr {
    if let Some(a) = config.sip.advertise {
        return a;
    }
    if !config.sip.bind.is_unspecified() {
        return config.sip.bind;
    }
    if_addrs::get_if_addrs()
        .ok()
        .and_then(|ifs| {
            ifs.into_iter()
                .map(|i| i.ip())
                .find(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified())
        })
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Runs the box until SIGINT/SIGTERM.
pub async fn run(opts: RunOptions) -> Result<(), StartError> {
    let config_dir = opts.data_dir.join("config");
    let (mut doc_text, source) =
        crate::config::document::startup_text(&config_dir, opts.config_text.as_deref()).map_err(|e| {
            StartError(format!("cannot save the configuration in {}: {e}", config_dir.display()))
        })?;
    let mut config = match source {
        crate::config::document::StartupSource::Saved => {
            log::info!("configuration: the saved document {}", config_dir.display());
            crate::config::parse_str(&doc_text, crate::config::document::CURRENT_FILE)
                .map_err(|e| StartError(format!("configuration refused: {e}")))?
        }
        _ => opts.config.clone().unwrap_or_default(),
    };
    apply_overrides(&mut config, &opts);
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| StartError(format!("cannot create data directory {}: {e}", opts.data_dir.display())))?;
    let store = Store::open(&opts.data_dir.join("store"))
        .map_err(|e| StartError(format!("cannot open the store in {}: {e}", opts.data_dir.display())))?;
    let mut extensions = provision(&store, &config)?;
    // Stored or demo extensions are what the box serves: the web edits them in the document.
    if config.extensions.is_empty() {
        doc_text = crate::config::document::with_extensions(&doc_text, &extensions);
    }
    let first_call_id = store.last_call_id().map_err(|e| StartError(format!("store: {e}")))? + 1;
    let advertise = advertise_address(&config);
    let (inbox_tx, mut inbox) = mpsc::channel::<Inbound>(INBOX_CAPACITY);
    let sip_addr = SocketAddr::new(config.sip.bind, config.sip.port);
    let sockets = SipSockets::bind(sip_addr, inbox_tx)
        .await
        .map_err(|e| StartError(format!("cannot bind SIP on {sip_addr} (udp+tcp): {e}")))?;
    let (media_tx, mut media_rx) = mpsc::channel::<MediaEvent>(crate::media::relay::EVENT_QUEUE);
    let recordings_dir = opts.data_dir.join("recordings");
    let recordings = crate::store::recordings::RecordingStore::open(
        &recordings_dir,
        crate::store::recordings::RetentionPolicy {
            max_age_days: config.recording.retention_days,
            max_bytes: (config.recording.max_mib > 0)
                .then(|| config.recording.max_mib.saturating_mul(1 << 20)),
        },
    )
    .map_err(|e| StartError(format!("cannot create {}: {e}", recordings_dir.display())))?;
    crate::media::process::set_audio_files(
        opts.data_dir.join("audio"),
        config.media.music_on_hold_file.clone(),
    );
    let relay = RelayManager::with_media(config.sip.bind, Some(media_tx), Some(recordings_dir.clone()));
    spawn_retention(recordings.clone());
    let (cdr_sink, cdr_writer) = spawn_cdr_writer(store.clone());
    // The call-center event log: the only source of the queue and agent reports.
    let (event_sink, event_writer) = spawn_queue_event_writer(store.clone());
    // Outbound campaigns (issue 9): the call lists come back from the store.
    let (campaign_sink, campaign_writer) = crate::store::spawn_campaign_writer(store.clone());
    let stored_entries = match store.campaign_entries() {
        Ok((entries, bad)) => {
            for key in bad {
                log::warn!("campaign: stored entry {key} does not decode; skipped");
            }
            entries
        }
        Err(e) => {
            log::error!("campaign: the call lists cannot be read: {e}");
            Vec::new()
        }
    };
    let mut campaigns = crate::campaigns::CampaignRunner::new(config.campaigns.clone(), stored_entries);
    campaigns.set_custom_states(config.callcenter.custom_states.clone());
    let vm_dir = opts.data_dir.join("voicemail");
    let (vm_store, vm_report) = VoicemailStore::open(&store, &vm_dir, config.trunk_calls.time_rules.offset())
        .map_err(|e| StartError(format!("cannot open voicemail in {}: {e}", vm_dir.display())))?;
    if vm_report != Default::default() {
        log::warn!("voicemail: recovery after an unclean stop: {vm_report:?}");
    }
    let outbox_dir = opts.data_dir.join("outbox");
    let (notifier, mut delete_rx) =
        crate::notify::driver::Notifier::start(&outbox_dir, config.notify.clone())
            .map_err(|e| StartError(format!("cannot open the outbox in {}: {e}", outbox_dir.display())))?;
    let mut voicemail = Voicemail {
        store: vm_store,
        takes: HashMap::new(),
        greeting_takes: HashMap::new(),
        notify: NotifyWiring {
            notifier: notifier.clone(),
            offset: config.trunk_calls.time_rules.offset(),
            names: extensions
                .iter()
                .map(|e| (e.number.clone(), e.name.clone()))
                .chain(config.dialplan.ring_groups.iter().map(|g| (g.number.clone(), g.name.clone())))
                .collect(),
        },
    };
    let (console_tx, mut console_rx) = mpsc::channel::<ConsoleRequest>(CONSOLE_QUEUE);
    // Greeting uploads done off the engine's task: (box, the console's reply, its text).
    let (greeting_tx, mut greeting_rx) =
        mpsc::channel::<(BoxNumber, tokio::sync::oneshot::Sender<String>, String)>(CONSOLE_QUEUE);
    let socket_path = console_socket(&opts.data_dir);
    // A stale socket from a previous run must not pass for the new one below.
    let _ = std::fs::remove_file(&socket_path);
    {
        let path = socket_path.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::console::serve(path.clone(), console_tx).await {
                log::error!("console socket {} failed: {e}", path.display());
            }
        });
    }
    // "ready" promises a working console: wait (bounded) until the socket is listening.
    for _ in 0..CONSOLE_READY_POLLS {
        if std::os::unix::net::UnixStream::connect(&socket_path).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    // Both halves of the wall anchor are read together: the web admin starts between here and
    // the engine, and its start-up time must not shift every CDR and queue event.
    let start = now();
    let start_wall_ms = wall_ms();
    let (web_tx, mut web_rx) = mpsc::channel::<crate::web::WebQuery>(WEB_QUERY_QUEUE);
    let shown = if config.sip.bind.is_unspecified() { advertise } else { config.sip.bind };
    let web = crate::web::start(
        crate::web::WebOptions {
            bind: config.sip.bind,
            https_port: config.web.https_port,
            http_port: config.web.http_port,
            dir: opts.data_dir.join("web"),
            shown,
            recordings: recordings_dir.clone(),
            appliance: opts.appliance.clone(),
            config_file: opts.config_file.clone(),
        },
        &store,
        web_tx,
    )
    .await
    .map_err(|e| StartError(format!("web admin: {e}")))?;
    let engine_cfg =
        engine_config(&config, advertise, random_bytes::<32>(), (start, start_wall_ms), first_call_id);
    let mut engine = Engine::new(engine_cfg, &extensions);
    set_voicemail(&mut engine, &config, &voicemail);
    restore_forwards(&mut engine, &store, &extensions);
    engine.set_caller_names(web.caller_index().await);
    // `[block] file` / `[restrict] file`: read once at start, like `block import`.
    for (kind, file) in [
        (crate::engine::ListKind::Block, &config.trunk_calls.block.file),
        (crate::engine::ListKind::Restrict, &config.trunk_calls.restrict_file),
    ] {
        if let Some(file) = file {
            let path = opts.data_dir.join(file);
            log::info!("{}", import_list(&mut engine, kind, &path.display().to_string(), None));
        }
        // What console imports added before the last stop (see `save_list`).
        let saved = saved_list_path(&opts.data_dir, kind);
        if saved.is_file() {
            log::info!("{}", import_list(&mut engine, kind, &saved.display().to_string(), None));
        }
    }

    if let Some(pw) = web.initial_password() {
        println!(
            "First start: web admin user `{}`, password {pw} (change it at first login; `hakoden console web reset-admin` makes a new one)",
            crate::web::ADMIN_USER
        );
    }
    let heartbeats = crate::watchdog::Heartbeats::new(start, opts.allow_debug);
    spawn_heartbeat_probes(&heartbeats, &relay, &store);
    web.watch(heartbeats.clone());
    let watchdog = opts.watchdog.as_deref().and_then(|dev| {
        crate::watchdog::Watchdog::start(dev, heartbeats.clone())
            .map_err(|e| log::error!("watchdog: cannot open {}: {e}; running without it", dev.display()))
            .ok()
    });
    let mut beat_tick = tokio::time::interval(crate::watchdog::PROBE_INTERVAL);
    // After a busy stretch one wake-up is enough, not a burst of missed ticks.
    beat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut campaign_tick = tokio::time::interval(CAMPAIGN_TICK);
    campaign_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    println!(
        "hakoden: ready sip={} udp+tcp rtp={}-{} data={}{}",
        SocketAddr::new(shown, config.sip.port),
        config.rtp.ports.lo,
        config.rtp.ports.hi,
        opts.data_dir.display(),
        web.url().map(|u| format!(" web={u}")).unwrap_or_default()
    );
    if let Some(url) = web.url() {
        println!("Web admin: point a browser at {url} (self-signed certificate until one is uploaded).");
    }
    println!(
        "Point SIP phones at {shown}:{} (UDP or TCP), user = extension number, realm hakoden.",
        config.sip.port
    );
    println!("Technician console: hakoden console --data {}", opts.data_dir.display());
    log::info!("Hakoden {} started with {} extension(s)", crate::VERSION, extensions.len());
    if let Some(app) = opts.appliance.clone() {
        // A trial boot's health check and commit, or the report of a rollback (crate::update).
        let loopback = |bind: IpAddr| if bind.is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { bind };
        let sip = SocketAddr::new(loopback(config.sip.bind), config.sip.port);
        let web_addr = (config.web.https_port != 0)
            .then(|| SocketAddr::new(loopback(config.sip.bind), config.web.https_port));
        let store = store.clone();
        tokio::task::spawn_blocking(move || crate::update::after_start(&app, sip, web_addr, &store));
    }

    let platform = crate::system::Platform::detect();
    // Debian's busybox has no ntpd: the box keeps its own clock (appliance only).
    let ntp_kick = std::sync::Arc::new(tokio::sync::Notify::new());
    if platform.appliance {
        tokio::spawn(crate::system::keep_time(opts.data_dir.clone(), ntp_kick.clone()));
    }
    let mut nightly = config.system.restart.map(|plan| {
        let offset = config.trunk_calls.time_rules.offset().minutes();
        let n = crate::system::restart::NightlyRestart::new(plan, offset, unix_s());
        log::info!(
            "nightly restart: window {} (local), next at unix {}",
            plan.window_text(),
            n.next_restart(unix_s())
        );
        n
    });
    let mut shutdown = Box::pin(shutdown_signal());
    loop {
        let deadline = engine.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            // Wakes an idle engine loop so its heartbeat (below) keeps coming; the nightly
            // restart is judged on the same tick.
            _ = beat_tick.tick() => {
                trunk_alarms(&engine);
                use crate::system::restart::RestartAction;
                let action = nightly.as_mut().and_then(|n| n.poll(unix_s(), || engine.calls(now()).len()));
                match action {
                    Some(RestartAction::Announce(line)) => log::info!("{line}"),
                    Some(RestartAction::Restart { reason, .. }) => {
                        // A clean exit: init (hakoden-start's respawn) starts a fresh process.
                        log::warn!("{reason}");
                        println!("hakoden: {reason}");
                        break;
                    }
                    None => {}
                }
            }
            _ = campaign_tick.tick() => {
                let wall = wall_ms();
                let local = crate::apps::timerules::LocalTime::from_unix_ms(wall, config.trunk_calls.time_rules.offset());
                campaigns.tick(&mut engine, now(), wall, local.minute_of_day);
            }
            msg = inbox.recv() => {
                let Some(msg) = msg else { break };
                let t = now();
                engine.handle_datagram(t, msg.peer, &msg.data);
                // Take more of what is already waiting before flushing (bounded).
                for _ in 1..INPUTS_PER_WAKEUP {
                    match inbox.try_recv() {
                        Ok(m) => engine.handle_datagram(t, m.peer, &m.data),
                        Err(_) => break,
                    }
                }
            }
            req = console_rx.recv() => {
                if let Some(req) = req {
                    match req.command {
                        // Slow (file I/O and resampling): off the engine's task, answered there.
                        ConsoleCommand::AudioImport { path, name } => {
                            let dir = opts.data_dir.join("audio");
                            let max = config.media.max_audio_mib.saturating_mul(1 << 20);
                            tokio::task::spawn_blocking(move || {
                                let _ = req.reply.send(import_audio(&dir, &path, &name, max));
                            });
                        }
                        ConsoleCommand::ListImport { kind, path } => {
                            let reply = import_list(&mut engine, kind, &path, Some(&opts.data_dir));
                            let _ = req.reply.send(reply);
                        }
                        // Answered first: a hang of this loop happens at its next heartbeat.
                        ConsoleCommand::DebugHang(which) => {
                            let text = match heartbeats.hang(which) {
                                Ok(()) => format!("the {which} loop hangs now; the watchdog resets the box"),
                                Err(e) => format!("error: {e}"),
                            };
                            let _ = req.reply.send(text);
                        }
                        ConsoleCommand::ShowOutbox => {
                            let _ = req.reply.send(notifier.show());
                        }
                        ConsoleCommand::Supervise { mode, supervisor, agent } => {
                            let text = match engine.supervise(now(), mode, &supervisor, &agent) {
                                Ok(()) => format!("ringing {supervisor} to {mode:?} to {agent}"),
                                Err(e) => format!("error: {e} ({})", e.http_status()),
                            };
                            let _ = req.reply.send(text);
                        }
                        ConsoleCommand::Campaign(cmd) => {
                            let _ = req.reply.send(campaign_console(&mut campaigns, cmd, wall_ms()));
                        }
                        ConsoleCommand::Call { from, to } => {
                            let text = match engine.click_to_call(now(), &from, &to) {
                                Ok(id) => format!("call {id}: ringing {from}, then {to}"),
                                Err(e) => format!("error: {e}"),
                            };
                            let _ = req.reply.send(text);
                        }
                        ConsoleCommand::SuperviseStop(supervisor) => {
                            let text = if engine.stop_supervision(now(), &supervisor) {
                                format!("stopped {supervisor}'s supervision")
                            } else {
                                format!("error: {supervisor} is not supervising anyone")
                            };
                            let _ = req.reply.send(text);
                        }
                        ConsoleCommand::MailTest(to) => {
                            let smtp = notifier.config().smtp.clone();
                            tokio::spawn(async move {
                                let text = match smtp {
                                    None => "error: no [smtp] section in the configuration".to_string(),
                                    Some(smtp) => match crate::notify::smtp::send_test_mail(&smtp, &to).await {
                                        Ok(r) => format!("sent to {to}: {}", r.server_text),
                                        Err(e) => format!("error: {e}"),
                                    },
                                };
                                let _ = req.reply.send(text);
                            });
                        }
                        ConsoleCommand::Agent { ext, command } => {
                            let t = now();
                            let by = crate::apps::callcenter::Cause::Supervisor;
                            let reply = match engine.agent_command(t, &ext, command, by) {
                                Ok(state) => format!("agent {ext}: {} ({})", state.ja(), state.key()),
                                Err(e) => format!("error: agent {ext}: {e}"),
                            };
                            let _ = req.reply.send(reply);
                        }
                        ConsoleCommand::WebResetAdmin => {
                            let web = web.clone();
                            tokio::spawn(async move {
                                let _ = req.reply.send(web.reset_admin().await);
                            });
                        }
                        ConsoleCommand::WebCert { cert, key } => {
                            let web = web.clone();
                            tokio::spawn(async move {
                                let _ = req.reply.send(web.install_certificate(&cert, &key).await);
                            });
                        }
                        ConsoleCommand::AudioList => {
                            let _ = req.reply.send(list_audio(&opts.data_dir.join("audio")));
                        }
                        // Reads the event log (a report reads up to a year): off the engine's task.
                        cmd @ (ConsoleCommand::ShowEvents(_) | ConsoleCommand::Report { .. }) => {
                            let store = store.clone();
                            let names: HashMap<String, String> =
                                extensions.iter().map(|e| (e.number.clone(), e.name.clone())).collect();
                            let report_cfg = config.callcenter.report_config(config.trunk_calls.time_rules.offset());
                            tokio::task::spawn_blocking(move || {
                                let _ = req.reply.send(answer_callcenter(&store, cmd, report_cfg, &names));
                            });
                        }
                        // Conversion and fsyncs off the engine's task; the loop answers once the
                        // engine knows the new greeting (`greeting_rx` below).
                        ConsoleCommand::VoicemailGreeting { box_no, slot, file } => {
                            let owned = BoxNumber::parse(&box_no).filter(|b| engine.box_owner(b.as_str()).is_some());
                            let Some(b) = owned else {
                                let _ = req.reply.send(format!("error: {box_no} is not a mailbox (an extension or a ring group)"));
                                continue;
                            };
                            let files = voicemail.store.greeting_files();
                            let done = greeting_tx.clone();
                            tokio::task::spawn_blocking(move || {
                                let text = match &file {
                                    Some(f) => match files.put_file(&b, slot, std::path::Path::new(f)) {
                                        Ok(()) => format!("box {b}: {} greeting set from {f}", slot.name()),
                                        Err(e) => format!("error: {f} is not usable as a greeting: {e}"),
                                    },
                                    None => match files.delete(&b, slot) {
                                        Ok(()) => format!("box {b}: {} greeting removed", slot.name()),
                                        Err(e) => format!("error: {e}"),
                                    },
                                };
                                let _ = done.blocking_send((b, req.reply, text));
                            });
                        }
                        // Slot, archive and data-directory work: blocking file I/O off the engine's task.
                        cmd @ (ConsoleCommand::Update(_)
                        | ConsoleCommand::ShowFirmware
                        | ConsoleCommand::Backup(_)
                        | ConsoleCommand::Restore(_)
                        | ConsoleCommand::FactoryReset { .. }) => {
                            let (app, data, cfg) = (opts.appliance.clone(), opts.data_dir.clone(), opts.config_file.clone());
                            tokio::task::spawn_blocking(move || {
                                answer_update(cmd, app.as_ref(), &data, cfg.as_deref(), req.reply)
                            });
                        }
                        cmd @ (ConsoleCommand::Status
                        | ConsoleCommand::NetworkShow
                        | ConsoleCommand::NetworkSet(_)
                        | ConsoleCommand::OptionsTest(_)
                        | ConsoleCommand::Reboot { .. }
                        | ConsoleCommand::SshKeyAdd(_)
                        | ConsoleCommand::SshKeyList
                        | ConsoleCommand::SshKeyRemove(_)) => {
                            let next = nightly.as_ref().map(|n| n.next_restart(unix_s()));
                            let system = SystemContext {
                                platform: &platform,
                                data_dir: &opts.data_dir,
                                started: start,
                                ntp_kick: &ntp_kick,
                            };
                            answer_system(&engine, &system, cmd, req.reply, next, now());
                        }
                        command => {
                            let mut text = answer_console(&engine, &relay, &cdr_sink, &store, command.clone(), now());
                            if command == ConsoleCommand::ShowVersion {
                                let _ = write!(
                                    text,
                                    "\nrecordings: {} bytes written since start, in {}",
                                    recordings.bytes_written(),
                                    recordings.dir().display()
                                );
                            }
                            let _ = req.reply.send(text);
                        }
                    }
                }
            }
            q = web_rx.recv() => {
                match q {
                    Some(crate::web::WebQuery::ConfigDocument(reply)) => {
                        let _ = reply.send(crate::config::document::RunningDocument {
                            text: doc_text.clone(),
                            dir: config_dir.clone(),
                        });
                    }
                    Some(crate::web::WebQuery::Campaign { query, reply }) => {
                        let offset = config.trunk_calls.time_rules.offset();
                        let answer = crate::web::campaigns::answer(&mut campaigns, &mut engine, now(), wall_ms(), offset, query);
                        let _ = reply.send(answer);
                    }
                    Some(crate::web::WebQuery::Reconfigure { text, config: new, reply }) => {
                        let mut new = *new;
                        apply_overrides(&mut new, &opts);
                        let mut report = engine.reconfigure(
                            now(),
                            engine_config(&new, advertise_address(&new), [0; 32], (start, start_wall_ms), 0),
                            &new.extensions,
                        );
                        if new.sip.bind != config.sip.bind {
                            report.restart_required.push("sip.bind");
                        }
                        if new.notify != config.notify {
                            // The notifier's transports are built at start.
                            report.restart_required.push("smtp/chat");
                        }
                        if let Err(e) = store.put_extensions(&new.extensions) {
                            log::error!("store: the new extensions are not stored: {e}");
                        }
                        extensions = new.extensions.clone();
                        voicemail.notify.names = extensions
                            .iter()
                            .map(|e| (e.number.clone(), e.name.clone()))
                            .chain(new.dialplan.ring_groups.iter().map(|g| (g.number.clone(), g.name.clone())))
                            .collect();
                        crate::media::process::set_audio_files(
                            opts.data_dir.join("audio"),
                            new.media.music_on_hold_file.clone(),
                        );
                        set_voicemail(&mut engine, &new, &voicemail);
                        campaigns.reconfigure(new.campaigns.clone());
                        campaigns.set_custom_states(new.callcenter.custom_states.clone());
                        config = new;
                        doc_text = text;
                        let _ = reply.send(report);
                    }
                    Some(q) => {
                        let next = nightly.as_ref().map(|n| n.next_restart(unix_s()));
                        answer_web(&mut engine, &mut voicemail, q, now(), next);
                    }
                    None => {}
                }
            }
            ev = media_rx.recv() => {
                if let Some(ev) = ev {
                    if let MediaEvent::Recorded { bytes, .. } = &ev {
                        recordings.add_bytes_written(*bytes);
                    }
                    engine.handle_media_event(now(), ev);
                }
            }
            changed = greeting_rx.recv() => {
                if let Some((box_no, reply, text)) = changed {
                    engine.set_voicemail_greetings(box_no.clone(), voicemail.greetings(&box_no));
                    let _ = reply.send(text);
                }
            }
            vm = delete_rx.recv() => {
                // "Delete after e-mail": the same path as the owner menu's delete.
                let parsed = vm.and_then(|vm| Some((BoxNumber::parse(&vm.box_no)?, vm.message)));
                if let Some((box_no, id)) = parsed {
                    log::info!("voicemail: box {box_no}: message {id} deleted after its notifications");
                    voicemail.apply(&mut engine, VoicemailOp::Delete { box_no, id: MessageId(id) });
                }
            }
            _ = sleep_until(deadline) => engine.handle_timeout(now()),
        }
        flush(&mut engine, &sockets, &relay, &cdr_sink, &event_sink, &mut voicemail).await;
        persist_forwards(&mut engine, &store);
        web.monitor_changed(engine.monitor_generation());
        for ringing in engine.take_ringing() {
            web.ringing(ringing);
        }
        let originated = engine.take_originate_events();
        for ev in &originated {
            log::info!("call {}: originated call: {:?} ({:?})", ev.call, ev.step, ev.purpose);
        }
        campaigns.on_events(&mut engine, now(), wall_ms(), &originated);
        for rec in campaigns.take_changed() {
            campaign_sink.push(rec);
        }
        if !originated.is_empty() {
            // The runner's own calls (INVITEs, hang-ups) go out now, not at the next input.
            flush(&mut engine, &sockets, &relay, &cdr_sink, &event_sink, &mut voicemail).await;
        }
        heartbeats.beat(crate::watchdog::Loop::Sip, now());
    }
    log::info!("shutting down");
    // Take our registrations off the providers (best effort: no wait for the answers).
    engine.unregister_trunks(now());
    flush(&mut engine, &sockets, &relay, &cdr_sink, &event_sink, &mut voicemail).await;
    relay.close_all();
    drop(cdr_sink);
    drop(event_sink);
    drop(campaign_sink);
    drop(engine);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), cdr_writer).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), event_writer).await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), campaign_writer).await;
    let _ = std::fs::remove_file(&socket_path);
    if let Some(w) = watchdog {
        w.close();
    }
    Ok(())
}

/// The console's system commands (update, firmware status, backup, restore, factory reset);
/// blocking. An accepted update reboots the box once the answer is out.
fn answer_update(
    cmd: ConsoleCommand,
    app: Option<&crate::update::Appliance>,
    data_dir: &Path,
    config: Option<&Path>,
    reply: tokio::sync::oneshot::Sender<String>,
) {
    let text = match cmd {
        ConsoleCommand::Update(path) => match crate::update::console_update(app, &path) {
            Ok(text) => {
                let _ = reply.send(text);
                // The technician's client must get the answer before the box goes down.
                std::thread::sleep(std::time::Duration::from_secs(2));
                crate::update::reboot();
                return;
            }
            Err(e) => format!("error: {e}"),
        },
        ConsoleCommand::ShowFirmware => crate::update::console_status(app),
        ConsoleCommand::Backup(path) => crate::backup::console_backup(data_dir, config, &path),
        ConsoleCommand::Restore(path) => crate::backup::console_restore(data_dir, &path),
        ConsoleCommand::FactoryReset { confirmed } => {
            crate::backup::console_factory_reset(data_dir, confirmed)
        }
        _ => "error: internal".into(),
    };
    let _ = reply.send(text);
}

/// Beats for the loops that have no tick of their own: the media relays (their shared
/// manager answers) and the store (a read goes through). The engine loop beats itself.
fn spawn_heartbeat_probes(beats: &crate::watchdog::Heartbeats, relay: &RelayManager, store: &Store) {
    use crate::watchdog::{Loop, PROBE_INTERVAL};
    beats.register(Loop::Sip, now());
    beats.register(Loop::Media, now());
    beats.register(Loop::Store, now());
    {
        let (beats, relay) = (beats.clone(), relay.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            loop {
                tick.tick().await;
                let _ = relay.active();
                beats.beat(Loop::Media, now());
            }
        });
    }
    let (beats, store) = (beats.clone(), store.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROBE_INTERVAL);
        loop {
            tick.tick().await;
            let (b, s) = (beats.clone(), store.clone());
            // Off the runtime: a wedged store blocks this probe, never a worker thread.
            let probe = tokio::task::spawn_blocking(move || {
                if s.last_call_id().is_ok() {
                    b.beat(Loop::Store, now());
                }
            });
            let _ = probe.await;
        }
    });
}

/// `show events` and `report` over the call-center event log (blocking: runs on the pool).
fn answer_callcenter(
    store: &Store,
    cmd: ConsoleCommand,
    cfg: crate::apps::callcenter::ReportConfig,
    names: &HashMap<String, String>,
) -> String {
    match cmd {
        ConsoleCommand::ShowEvents(n) => match store.recent_queue_events(n) {
            Ok(page) if page.events.is_empty() && page.corrupt == 0 => "no call-center events stored".into(),
            Ok(page) => {
                let mut text: Vec<String> = page.events.iter().map(|e| e.to_json_line()).collect();
                if page.corrupt > 0 {
                    text.push(format!("({} corrupt entries skipped)", page.corrupt));
                }
                text.join("\n")
            }
            Err(e) => format!("error: {e}"),
        },
        ConsoleCommand::Report { query, csv } => {
            match store.queue_report(query, cfg, &|id| names.get(id).cloned()) {
                Ok((report, _)) if csv => report.to_csv(),
                Ok((report, corrupt)) if corrupt > 0 => {
                    format!("{}; {corrupt} corrupt entries skipped", report.to_text())
                }
                Ok((report, _)) => report.to_text(),
                Err(e) => format!("error: {e}"),
            }
        }
        _ => "error: internal".into(),
    }
}

/// Loads the runtime forwarding/DND state the dial plan stored (feature-code toggles).
fn restore_forwards(engine: &mut Engine, store: &Store, extensions: &[ExtensionConfig]) {
    for e in extensions {
        match store.meta_get(&Engine::persist_key(&e.number)) {
            Ok(Some(json)) => engine.restore_forwards(&e.number, &json),
            Ok(None) => {}
            Err(err) => log::warn!("forwarding state of {}: {err}", e.number),
        }
    }
}

/// Stores the dial plan's changed forwarding state. A toggle is a rare human action and one
/// small record: written (and synced) inline rather than through a task.
fn persist_forwards(engine: &mut Engine, store: &Store) {
    while let Some((key, json)) = engine.poll_persist() {
        if let Err(e) = store.meta_put(&key, &json) {
            log::warn!("cannot store the forwarding state {key}: {e}");
        }
    }
}

/// Most characters in an audio file's name.
const MAX_AUDIO_NAME: usize = 64;

/// `audio import FILE NAME`: reads a WAV on the box, converts it to 8 kHz 16-bit mono (or says
/// why not) and stores it as `DIR/NAME.wav`, atomically (temp file + rename).
fn import_audio(dir: &Path, path: &str, name: &str, max_bytes: u64) -> String {
    let bad_name = name.is_empty()
        || name.chars().count() > MAX_AUDIO_NAME
        || name.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        || name.starts_with('.');
    if bad_name {
        return format!(
            "error: `{name}` cannot name an audio file: 1-{MAX_AUDIO_NAME} characters, no `/`, `\\` or leading `.`"
        );
    }
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => return format!("error: cannot read {path}: {e}"),
    };
    if size > max_bytes {
        return format!(
            "error: the file is {:.1} MB; the limit is {:.1} MB ([media] max_audio_mib)",
            size as f64 / 1e6,
            max_bytes as f64 / 1e6
        );
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return format!("error: cannot read {path}: {e}"),
    };
    let pcm = match crate::media::audio::wav::import_admin_audio(&bytes, max_bytes as usize) {
        Ok(p) => p,
        Err(e) => return format!("error: {e}"),
    };
    let wav = crate::media::audio::wav::encode_pcm16_mono_8k(&pcm);
    if let Err(e) = std::fs::create_dir_all(dir) {
        return format!("error: cannot create {}: {e}", dir.display());
    }
    let target = dir.join(format!("{name}.wav"));
    let tmp = dir.join(format!(".{name}.wav.tmp"));
    let written = std::fs::write(&tmp, &wav).and_then(|()| std::fs::rename(&tmp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return format!("error: cannot store {}: {e}", target.display());
    }
    log::info!("audio file `{name}` imported from {path}: {} samples", pcm.len());
    format!(
        "stored `{name}`: {:.1} s of 8 kHz 16-bit mono audio, {} bytes",
        pcm.len() as f64 / 8000.0,
        wav.len()
    )
}

/// `audio list`.
fn list_audio(dir: &Path) -> String {
    let mut rows: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let stem = name.strip_suffix(".wav")?.to_string();
                    (!stem.starts_with('.')).then(|| (stem, e.metadata().map(|m| m.len()).unwrap_or(0)))
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort();
    let mut s = format!("{} audio file(s) in {}\n", rows.len(), dir.display());
    for (name, bytes) in rows {
        // 8 kHz 16-bit mono: 16,000 bytes per second after the 44-byte header.
        let _ =
            writeln!(s, "{name:<32} {:>7.1} s  {bytes} bytes", bytes.saturating_sub(44) as f64 / 16_000.0);
    }
    s.trim_end().to_string()
}

/// How often the recording retention runs.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Applies the recording retention at start and every hour, off the engine's task (it walks
/// the recordings directory).
/// Raises `trunk:<name>` for a trunk that failed or is down and clears it once it is
/// registered or up again (checked every watchdog tick; the states change far slower).
fn trunk_alarms(engine: &Engine) {
    use crate::apps::trunk::TrunkState;
    let alarms = crate::alarms::global();
    for (name, state, registrar) in engine.trunk_states() {
        let key = format!("trunk:{name}");
        match state {
            TrunkState::Failed { reason, .. } => alarms.raise(
                &key,
                crate::alarms::Severity::Critical,
                &format!("trunk {name} ({registrar}) failed: {reason}"),
            ),
            TrunkState::Down => alarms.raise(
                &key,
                crate::alarms::Severity::Critical,
                &format!("trunk {name} ({registrar}) is down"),
            ),
            TrunkState::Registered { .. } | TrunkState::Up => alarms.clear(&key),
            TrunkState::Registering | TrunkState::Unregistered => {}
        }
    }
}

fn spawn_retention(store: crate::store::recordings::RecordingStore) {
    tokio::spawn(async move {
        loop {
            let s = store.clone();
            let report = tokio::task::spawn_blocking(move || s.sweep(wall_ms())).await;
            let alarms = crate::alarms::global();
            match report {
                Ok(Err(e)) => {
                    log::warn!("recording retention failed: {e}");
                    alarms.raise(
                        "recording",
                        crate::alarms::Severity::Warning,
                        &format!("retention sweep failed: {e}"),
                    );
                }
                Ok(Ok(r)) if r.alarm => alarms.raise(
                    "storage",
                    crate::alarms::Severity::Warning,
                    &format!("data partition {} % full", r.partition_used_percent.unwrap_or(0)),
                ),
                Ok(Ok(_)) => alarms.clear("storage"),
                Err(_) => {}
            }
            tokio::time::sleep(RETENTION_SWEEP).await;
        }
    });
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

/// Carries out everything the engine asked for.
/// The voicemail store and the takes being recorded, by call.
struct Voicemail {
    store: VoicemailStore,
    takes: HashMap<u64, Take>,
    greeting_takes: HashMap<u64, GreetingTake>,
    notify: NotifyWiring,
}

/// What a saved message needs to be notified: the outbox, and who owns each box.
struct NotifyWiring {
    notifier: crate::notify::driver::Notifier,
    offset: crate::apps::timerules::UtcOffset,
    /// Box number → display name (extensions and ring groups).
    names: HashMap<String, String>,
}

impl NotifyWiring {
    /// Queues the notifications of a message just committed.
    /// A group (or queue) box mails every member with an address (`Engine::box_owner`).
    fn saved(
        &self,
        meta: &crate::apps::voicemail::mailbox::MessageMeta,
        wav: PathBuf,
        owner: Option<crate::engine::MailboxOwner>,
    ) {
        let box_no = meta.box_no.to_string();
        let members = match owner {
            Some(crate::engine::MailboxOwner::Extension(_)) | None => None,
            Some(o) => Some(o.extensions()),
        };
        let (to, delete_after) = self.notifier.config().mail_for(&box_no, members.as_deref());
        let has_chat = self.notifier.config().chat_rules.iter().any(|r| r.box_no == box_no);
        if to.is_empty() && !has_chat {
            return;
        }
        // Deleting without a mail sent would lose the message: only with at least one address.
        let delete_after = delete_after && !to.is_empty();
        let name = self.names.get(&box_no).cloned().unwrap_or_else(|| box_no.clone());
        self.notifier.queue_voicemail(meta.clone(), name, self.offset, wav, to, delete_after);
    }
}

impl Voicemail {
    /// The recorded greetings of a box with their files.
    fn greetings(&self, box_no: &crate::apps::voicemail::mailbox::BoxNumber) -> Vec<(GreetingKind, PathBuf)> {
        let set = self.store.greetings(box_no);
        GreetingKind::ALL
            .into_iter()
            .filter(|k| set.contains(*k))
            .map(|k| (k, self.store.greeting_path(box_no, k)))
            .collect()
    }

    /// Applies one of the engine's voicemail outputs and reports back.
    // The commit's fsyncs run on the engine's task: a message is saved once per call, and the
    // flash's fsync is a few ms (open problem: move it to spawn_blocking).
    fn apply(&mut self, engine: &mut Engine, op: VoicemailOp) {
        match op {
            VoicemailOp::BeginMessage { call, box_no, caller, caller_name, received_unix_ms } => {
                if let Some(old) = self.takes.remove(&call) {
                    self.store.discard(old);
                }
                match self.store.begin_message(&box_no, &caller, &caller_name, received_unix_ms) {
                    Ok(take) => {
                        let path = take.part_path().to_path_buf();
                        self.takes.insert(call, take);
                        engine.voicemail_take_ready(now(), call, Some(path));
                    }
                    Err(e) => {
                        log::warn!("voicemail: box {box_no}: cannot start a message: {e}");
                        crate::alarms::global().raise(
                            "voicemail",
                            crate::alarms::Severity::Critical,
                            &format!("box {box_no}: cannot start a message: {e}"),
                        );
                        engine.voicemail_take_ready(now(), call, None);
                    }
                }
            }
            VoicemailOp::SaveMessage { call, duration_ms } => {
                let Some(take) = self.takes.remove(&call) else { return };
                match self.store.commit_message(take, duration_ms) {
                    Ok(meta) => {
                        let owner = engine.box_owner(meta.box_no.as_str());
                        self.notify.saved(&meta, self.store.message_path(&meta), owner);
                        let counts = self.store.counts(&meta.box_no);
                        engine.set_voicemail_counts(now(), meta.box_no, counts);
                    }
                    Err(e) => {
                        log::warn!("voicemail: call {call}: the message was not stored: {e}");
                        crate::alarms::global().raise(
                            "voicemail",
                            crate::alarms::Severity::Critical,
                            &format!("call {call}: a message was not stored: {e}"),
                        );
                    }
                }
            }
            VoicemailOp::DiscardTake { call } => {
                if let Some(take) = self.takes.remove(&call) {
                    self.store.discard(take);
                }
                if let Some(take) = self.greeting_takes.remove(&call) {
                    self.store.discard_greeting(take);
                }
            }
            VoicemailOp::BeginGreeting { call, box_no, kind } => {
                if let Some(old) = self.greeting_takes.remove(&call) {
                    self.store.discard_greeting(old);
                }
                match self.store.begin_greeting(&box_no, kind) {
                    Ok(take) => {
                        let path = take.part_path().to_path_buf();
                        self.greeting_takes.insert(call, take);
                        engine.voicemail_take_ready(now(), call, Some(path));
                    }
                    Err(e) => {
                        log::warn!("voicemail: box {box_no}: cannot start a greeting: {e}");
                        engine.voicemail_take_ready(now(), call, None);
                    }
                }
            }
            VoicemailOp::SaveGreeting { call } => {
                let Some(take) = self.greeting_takes.remove(&call) else { return };
                let box_no = take.box_no().clone();
                if let Err(e) = self.store.commit_greeting(take) {
                    log::warn!("voicemail: call {call}: the greeting was not stored: {e}");
                }
                engine.set_voicemail_greetings(box_no.clone(), self.greetings(&box_no));
            }
            VoicemailOp::LoadBox { call, box_no } => {
                let messages = self
                    .store
                    .messages(&box_no)
                    .into_iter()
                    .map(|m| {
                        let path = self.store.message_path(&m);
                        (m, path)
                    })
                    .collect();
                engine.voicemail_box_loaded(now(), call, messages);
            }
            VoicemailOp::SetFolder { box_no, id, folder } => {
                if let Err(e) = self.store.set_folder(&box_no, id, folder) {
                    log::warn!("voicemail: box {box_no}: moving message {} failed: {e}", id.0);
                }
                engine.set_voicemail_counts(now(), box_no.clone(), self.store.counts(&box_no));
            }
            VoicemailOp::Delete { box_no, id } => {
                if let Err(e) = self.store.delete(&box_no, id) {
                    log::warn!("voicemail: box {box_no}: deleting message {} failed: {e}", id.0);
                }
                engine.set_voicemail_counts(now(), box_no.clone(), self.store.counts(&box_no));
            }
        }
    }
}

async fn flush(
    engine: &mut Engine,
    sockets: &SipSockets,
    relay: &RelayManager,
    cdr: &CdrSink,
    events: &QueueEventSink,
    voicemail: &mut Voicemail,
) {
    while let Some(out) = engine.poll_output() {
        match out {
            Output::Transmit { peer, data } => sockets.send(peer, data).await,
            Output::Media(cmd) => {
                let relay_id = cmd.relay();
                let opening = matches!(
                    cmd,
                    MediaCommand::Open { .. }
                        | MediaCommand::JoinRoom { .. }
                        | MediaCommand::JoinRoomMonitoring { .. }
                        | MediaCommand::MoveToRoom { .. }
                        | MediaCommand::MoveToRelay { .. }
                );
                if let Err(e) = relay.execute(cmd) {
                    log::warn!("relay {}: {e}", relay_id.0);
                    if opening {
                        engine.media_failed(relay_id, now());
                    }
                }
            }
            Output::Cdr(rec) => {
                cdr.push(*rec);
            }
            Output::Voicemail(op) => voicemail.apply(engine, op),
            // The event store glues on here (coordinator); until then the log keeps them.
            Output::QueueEvent(e) => {
                log::debug!("queue event: {}", e.to_json_line());
                // A full queue is counted and raised as an alarm by the sink itself.
                events.push(e);
            }
        }
    }
}

fn answer_console(
    engine: &Engine,
    relay: &RelayManager,
    cdr: &CdrSink,
    store: &Store,
    cmd: ConsoleCommand,
    now: Instant,
) -> String {
    let mut s = String::new();
    match cmd {
        ConsoleCommand::ShowRegistrations => {
            let regs = engine.registrations(now);
            let _ = writeln!(s, "{} registration(s)", regs.len());
            let _ =
                writeln!(s, "{:<8} {:<26} {:<44} {:>7}  user-agent", "ext", "source", "contact", "expires");
            for r in regs {
                let _ = writeln!(
                    s,
                    "{:<8} {:<26} {:<44} {:>6}s  {}",
                    r.extension,
                    r.peer.to_string(),
                    r.contact,
                    r.expires_in_s,
                    r.user_agent.unwrap_or_default()
                );
            }
        }
        ConsoleCommand::ShowCalls => {
            let calls = engine.calls(now);
            let _ = writeln!(s, "{} call(s) in progress", calls.len());
            let _ = writeln!(
                s,
                "{:<8} {:<8} {:<8} {:<9} {:>6} {:>6}  {:<13} caller",
                "id", "from", "to", "state", "age", "talk", "rtp a/b"
            );
            for c in calls {
                let stats = relay.stats(RelayId(c.id));
                let _ = writeln!(
                    s,
                    "{:<8} {:<8} {:<8} {:<9} {:>5}s {:>5}s  {:<13} {}{}{}{}",
                    c.id,
                    c.from,
                    c.to,
                    c.state,
                    c.age_s,
                    c.talk_s.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                    format!("{}/{}", c.rtp_ports.0, c.rtp_ports.1),
                    c.caller_peer,
                    stats
                        .map(|st| format!(" pkts a->{} b->{}", st.a_rx_packets, st.b_rx_packets))
                        .unwrap_or_default(),
                    if c.recording { " recording" } else { "" },
                    if c.digits.is_empty() { String::new() } else { format!(" dtmf={}", c.digits) }
                );
            }
        }
        ConsoleCommand::ShowExtensions => {
            let regs = engine.registrations(now);
            let _ =
                writeln!(s, "{:<8} {:<24} {:<16} {:<12} registered", "ext", "name", "password", "call-wait");
            for e in engine.extensions() {
                let n = regs.iter().filter(|r| r.extension == e.number).count();
                let _ = writeln!(
                    s,
                    "{:<8} {:<24} {:<16} {:<12} {}",
                    e.number,
                    e.name,
                    e.password,
                    if e.call_waiting { "on" } else { "off" },
                    if n > 0 { format!("yes ({n})") } else { "no".into() }
                );
            }
        }
        ConsoleCommand::ShowVersion => {
            let c = engine.counters();
            let (used, total) = engine.rtp_ports_in_use();
            let _ = writeln!(s, "Hakoden {}", crate::VERSION);
            let _ = writeln!(
                s,
                "requests {} responses {} parse-errors {} calls {} auth-failures {}",
                c.requests, c.responses, c.parse_errors, c.calls_started, c.auth_failures
            );
            let (calls, stx, ctx, purposes, timers) = engine.table_sizes();
            let _ = writeln!(
                s,
                "tables: calls {calls}, server transactions {stx}, client transactions {ctx}, \
                 pending {purposes}, timers {timers}"
            );
            let _ = writeln!(
                s,
                "rtp ports {used}/{total} in use, relays {}, cdr dropped {}",
                relay.active(),
                cdr.dropped()
            );
        }
        ConsoleCommand::LogTail(n) => {
            for line in crate::logger::tail(n) {
                let _ = writeln!(s, "{line}");
            }
        }
        ConsoleCommand::ShowCdr(n) | ConsoleCommand::ShowCdrDetail(n) => match store.recent_cdrs(n) {
            Ok(recs) => {
                let _ = writeln!(s, "{} stored call record(s), newest first", store.cdr_count().unwrap_or(0));
                let _ = writeln!(
                    s,
                    "{:<8} {:<8} {:<8} {:<10} {:>6} {:>8} {:>8}  {:<7} cause",
                    "id", "from", "to", "result", "status", "ring", "talk", "hangup"
                );
                for r in recs {
                    let _ = writeln!(
                        s,
                        "{:<8} {:<8} {:<8} {:<10} {:>6} {:>7}s {:>7}s  {:<7} {}",
                        r.call_id,
                        r.from,
                        r.to,
                        serde_json::to_string(&r.disposition)
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string(),
                        r.final_status,
                        r.ring_duration_ms / 1000,
                        r.talk_duration_ms / 1000,
                        serde_json::to_string(&r.hangup_side)
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string(),
                        r.cause
                    );
                    if r.trunk.is_some() || r.did.is_some() {
                        let (trunk, did) =
                            (r.trunk.as_deref().unwrap_or("-"), r.did.as_deref().unwrap_or("-"));
                        let _ = writeln!(s, "         trunk: {trunk}  did: {did}");
                    }
                    for path in &r.recordings {
                        let _ = writeln!(s, "         recording: {path}");
                    }
                    // Final view: who ended up talking to whom after transfers and park.
                    if !r.rewires.is_empty() {
                        let (a, b) = r.final_view();
                        let _ = writeln!(s, "         final: {a} <-> {b}");
                        for w in &r.rewires {
                            let _ = writeln!(
                                s,
                                "         {}: side {} {} -> {} at {}",
                                w.kind,
                                w.side,
                                w.replaced,
                                w.by,
                                crate::logger::utc_timestamp(w.at_ms)
                            );
                        }
                    }
                    if matches!(cmd, ConsoleCommand::ShowCdrDetail(_)) {
                        for l in &r.legs {
                            let _ = writeln!(
                                s,
                                "         leg {:<4} {:<24} {:>4} {:<10} {}s{}",
                                l.leg,
                                l.peer,
                                l.final_status,
                                serde_json::to_string(&l.disposition)
                                    .unwrap_or_default()
                                    .trim_matches('"')
                                    .to_string(),
                                l.end_ms.saturating_sub(l.answer_ms.unwrap_or(l.end_ms)) / 1000,
                                if l.answer_ms.is_some() { " talk" } else { "" }
                            );
                        }
                    }
                }
            }
            Err(e) => s = format!("error: cannot read call records: {e}"),
        },
        ConsoleCommand::ShowForwards => {
            let _ = writeln!(
                s,
                "{:<8} {:<12} {:<12} {:<16} {:<12} {:<4} {:<10} hot-desk",
                "ext", "always", "busy", "no-answer", "unregist.", "dnd", "pickup"
            );
            let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
            for f in engine.forwards() {
                let _ = writeln!(
                    s,
                    "{:<8} {:<12} {:<12} {:<16} {:<12} {:<4} {:<10} {}",
                    f.extension,
                    dash(&f.always),
                    dash(&f.busy),
                    f.no_answer.map(|(t, secs)| format!("{t} ({secs}s)")).unwrap_or_else(|| "-".into()),
                    dash(&f.unregistered),
                    if f.dnd { "on" } else { "off" },
                    dash(&f.pickup_group),
                    f.hot_desk_from.map(|p| format!("logged in from {p}")).unwrap_or_else(|| "-".into()),
                );
            }
            let groups = engine.ring_groups();
            let _ = writeln!(s, "{} ring group(s)", groups.len());
            for g in groups {
                let _ = writeln!(
                    s,
                    "{:<8} {:<20} {:<10} ring {}s{} members {} no-answer {}",
                    g.number,
                    g.name,
                    g.strategy.as_str(),
                    g.ring_s,
                    g.timeout_s.map(|t| format!(" total {t}s")).unwrap_or_default(),
                    g.members.join(","),
                    g.no_answer.unwrap_or_else(|| "480".into())
                );
            }
        }
        ConsoleCommand::ShowVoicemail => {
            let boxes = engine.voicemail_boxes();
            let _ = writeln!(s, "{} mailbox(es)", boxes.len());
            let _ = writeln!(s, "{:<10} {:>5} {:>5} {:>5}", "box", "new", "old", "work");
            for (b, c) in boxes {
                let _ = writeln!(s, "{:<10} {:>5} {:>5} {:>5}", b.as_str(), c.new, c.old, c.work);
            }
        }
        ConsoleCommand::ShowParked => {
            let parked = engine.parked(now);
            let _ = writeln!(s, "{} parked call(s)", parked.len());
            let _ = writeln!(s, "{:<8} {:<8} {:<10} {:<10} ringback in", "slot", "call", "parked", "parker");
            for p in parked {
                let _ = writeln!(
                    s,
                    "{:<8} {:<8} {:<10} {:<10} {} s",
                    p.slot, p.call, p.parked, p.parker, p.ringback_in_s
                );
            }
        }
        ConsoleCommand::ShowTrunks => {
            use crate::apps::trunk::TrunkState;
            let trunks = engine.trunk_states();
            let _ = writeln!(s, "{} trunk(s)", trunks.len());
            let _ = writeln!(s, "{:<16} {:<24} state", "name", "registrar");
            for (name, state, registrar) in trunks {
                let state = match state {
                    TrunkState::Unregistered => "unregistered".to_string(),
                    TrunkState::Registering => "registering".to_string(),
                    TrunkState::Registered { expires_at } => {
                        format!(
                            "registered (expires in {} s)",
                            expires_at.saturating_duration_since(now).as_secs()
                        )
                    }
                    TrunkState::Failed { reason, retry_at } => {
                        format!(
                            "failed: {reason} (retry in {} s)",
                            retry_at.saturating_duration_since(now).as_secs()
                        )
                    }
                    TrunkState::Up => "up".to_string(),
                    TrunkState::Down => "down".to_string(),
                };
                let _ = writeln!(s, "{name:<16} {:<24} {state}", registrar.to_string());
            }
        }
        ConsoleCommand::ShowDids => {
            let dids = engine.dids(now);
            let _ = writeln!(s, "{} DID(s)", dids.len());
            let _ = writeln!(s, "{:<16} {:<28} {:<20} calls", "did", "destination now", "rule");
            for d in dids {
                let limit = if d.max_channels == 0 { "-".to_string() } else { d.max_channels.to_string() };
                let rule = d.rule_now.unwrap_or_else(|| "(default)".into());
                let _ =
                    writeln!(s, "{:<16} {:<28} {rule:<20} {}/{limit}", d.number, d.destination_now, d.active);
            }
        }
        ConsoleCommand::ShowList(kind) => {
            let (entries, anonymous) = engine.list_entries(kind);
            let name = match kind {
                crate::engine::ListKind::Block => "block list",
                crate::engine::ListKind::Restrict => "restriction list",
            };
            let _ =
                writeln!(s, "{name}: {} entr{}", entries.len(), if entries.len() == 1 { "y" } else { "ies" });
            if kind == crate::engine::ListKind::Block {
                let _ = writeln!(s, "anonymous callers: {}", if anonymous { "rejected" } else { "accepted" });
            }
            for e in entries.iter().take(crate::console::MAX_CDR_SHOW) {
                let scope = e.caller_id.as_deref().map(|c| format!(" (caller ID {c})")).unwrap_or_default();
                let _ = writeln!(s, "{:<20} {}{scope}", e.pattern.to_string(), e.note);
            }
            if entries.len() > crate::console::MAX_CDR_SHOW {
                let _ = writeln!(s, "... {} more", entries.len() - crate::console::MAX_CDR_SHOW);
            }
        }
        ConsoleCommand::ShowQueues => {
            let queues = engine.queues(now);
            let _ = writeln!(s, "{} queue(s)", queues.len());
            let _ = writeln!(
                s,
                "{:<16} {:<8} {:>7} {:>8} {:>7}  strategy",
                "queue", "number", "waiting", "longest", "staffed"
            );
            for q in queues {
                let _ = writeln!(
                    s,
                    "{:<16} {:<8} {:>7} {:>7}s {:>3}/{:<3}  {}",
                    q.name,
                    q.number.unwrap_or_else(|| "-".into()),
                    q.waiting,
                    q.longest_wait_s,
                    q.staffed,
                    q.members,
                    q.strategy
                );
            }
        }
        ConsoleCommand::ShowAgents => {
            let agents = engine.agents(now);
            let _ = writeln!(s, "{} agent(s)", agents.len());
            let _ = writeln!(s, "{:<8} {:<28} {:>7}  queues (paused in brackets)", "agent", "state", "since");
            for a in agents {
                let name = a.label.clone().unwrap_or_else(|| a.state.ja().to_string());
                let queues: Vec<String> =
                    a.queues.iter().map(|(q, on)| if *on { q.clone() } else { format!("[{q}]") }).collect();
                let _ = writeln!(
                    s,
                    "{:<8} {:<28} {:>6}s  {}",
                    a.agent,
                    format!("{name} ({})", a.state.key()),
                    a.since_s,
                    queues.join(" ")
                );
            }
        }
        // Answered in the run loop (it changes the engine).
        ConsoleCommand::ListImport { .. } | ConsoleCommand::Agent { .. } => s = "error: internal".into(),
        ConsoleCommand::ShowSupervision => {
            let sessions = engine.supervisions(now);
            let _ = writeln!(s, "{} supervision session(s)", sessions.len());
            let _ = writeln!(
                s,
                "{:<10} {:<8} {:<8} {:<8} {:<9} {:>8} {:>6}",
                "supervisor", "agent", "mode", "state", "origin", "call", "age"
            );
            for v in sessions {
                let _ = writeln!(
                    s,
                    "{:<10} {:<8} {:<8} {:<8} {:<9} {:>8} {:>5}s",
                    v.supervisor,
                    v.agent,
                    format!("{:?}", v.mode).to_lowercase(),
                    v.state,
                    v.origin,
                    v.call,
                    v.age_s
                );
            }
        }
        ConsoleCommand::Supervise { .. }
        | ConsoleCommand::SuperviseStop(_)
        | ConsoleCommand::Call { .. }
        | ConsoleCommand::Campaign(_) => s = "error: internal".into(),
        ConsoleCommand::Help => s = crate::console::help_text(),
        ConsoleCommand::ShowAlarms => s = crate::alarms::global().show(),
        // Answered in the run loop (off the engine's task).
        ConsoleCommand::AudioImport { .. } | ConsoleCommand::AudioList => s = "error: internal".into(),
        // Answered in the run loop (the outbox task's state, the network).
        ConsoleCommand::ShowOutbox
        | ConsoleCommand::MailTest(_)
        | ConsoleCommand::VoicemailGreeting { .. }
        | ConsoleCommand::WebResetAdmin
        | ConsoleCommand::WebCert { .. } => s = "error: internal".into(),
        ConsoleCommand::ShowEvents(_) | ConsoleCommand::Report { .. } => s = "error: internal".into(),
        // Answered in the run loop (it owns the heartbeats).
        ConsoleCommand::DebugHang(_) => s = "error: internal".into(),
        // Answered in the run loop (`answer_system`, on the blocking pool).
        ConsoleCommand::Update(_)
        | ConsoleCommand::ShowFirmware
        | ConsoleCommand::Backup(_)
        | ConsoleCommand::Restore(_)
        | ConsoleCommand::FactoryReset { .. } => s = "error: internal".into(),
        // Answered by `answer_system`.
        ConsoleCommand::Status
        | ConsoleCommand::NetworkShow
        | ConsoleCommand::NetworkSet(_)
        | ConsoleCommand::OptionsTest(_)
        | ConsoleCommand::Reboot { .. }
        | ConsoleCommand::SshKeyAdd(_)
        | ConsoleCommand::SshKeyList
        | ConsoleCommand::SshKeyRemove(_) => s = "error: internal".into(),
    }
    s.trim_end().to_string()
}

/// Answers one web query with the engine calls the console uses (typed views, not text). A
/// dropped reply means the handler gave up (timeout); nothing to do then.
/// `next_restart`: unix seconds of the planned nightly restart, for the dashboard.
fn answer_web(
    engine: &mut Engine,
    voicemail: &mut Voicemail,
    q: crate::web::WebQuery,
    now: Instant,
    next_restart: Option<i64>,
) {
    use crate::web::WebQuery;
    match q {
        WebQuery::Status(reply) => {
            let _ = reply.send(crate::web::EngineStatus {
                registrations: engine.registrations(now).len(),
                active_calls: engine.calls(now).len(),
                next_restart,
            });
        }
        WebQuery::Queues(reply) => {
            let _ = reply.send(engine.queues(now));
        }
        WebQuery::Agents(reply) => {
            let _ = reply.send(engine.agents(now));
        }
        WebQuery::Agent { agent, command, by, reply } => {
            let result = engine.agent_command(now, &agent, command, by).and_then(|_| {
                engine
                    .agents(now)
                    .into_iter()
                    .find(|v| v.agent == agent)
                    .ok_or(crate::apps::callcenter::AgentError::UnknownAgent)
            });
            let _ = reply.send(result);
        }
        WebQuery::Supervisions(reply) => {
            let _ = reply.send(engine.supervisions(now));
        }
        WebQuery::Supervise { mode, supervisor, agent, reply } => {
            let _ = reply.send(engine.supervise(now, mode, &supervisor, &agent));
        }
        WebQuery::Originate { from, to, reply } => {
            let _ = reply.send(engine.click_to_call(now, &from, &to));
        }
        WebQuery::StopSupervision { supervisor, reply } => {
            let _ = reply.send(engine.stop_supervision(now, &supervisor));
        }
        WebQuery::Voicemail(reply) => {
            let boxes: Vec<_> = voicemail.store.all_counts().into_iter().map(|(b, _)| b).collect();
            let all = boxes
                .iter()
                .flat_map(|b| voicemail.store.messages(b))
                .map(|m| {
                    let path = voicemail.store.message_path(&m);
                    (m, path)
                })
                .collect();
            let _ = reply.send(all);
        }
        // As the phone menu's delete (`VoicemailOp::Delete`): the store, then the counts (MWI).
        WebQuery::VoicemailDelete { box_no, id, reply } => {
            let result = voicemail.store.delete(&box_no, id).map_err(|e| e.to_string());
            if let Err(e) = &result {
                crate::alarms::global().raise(
                    "voicemail",
                    crate::alarms::Severity::Critical,
                    &format!("box {box_no}: deleting message {} failed: {e}", id.0),
                );
            }
            engine.set_voicemail_counts(now, box_no.clone(), voicemail.store.counts(&box_no));
            let _ = reply.send(result);
        }
        WebQuery::Trunks(reply) => {
            let trunks = engine
                .trunk_states()
                .into_iter()
                .map(|(name, state, _)| crate::web::TrunkStatus::of(name, state, now))
                .collect();
            let _ = reply.send(trunks);
        }
        WebQuery::CallerNames(index) => engine.set_caller_names(*index),
        WebQuery::ListEntries { kind, reply } => {
            let _ = reply.send(engine.list_entries(kind));
        }
        WebQuery::ListChange { kind, change, reply } => {
            let outcome = match change {
                crate::web::ListChange::Add(entries) => engine.import_list(kind, entries).map(|_| true),
                crate::web::ListChange::Remove { pattern, caller_id } => {
                    Ok(engine.remove_list_entry(kind, &pattern, caller_id.as_deref()))
                }
            };
            let _ = reply.send((outcome, engine.list_entries(kind).0));
        }
        // Answered in the loop: they need the document and the daemon's copies.
        WebQuery::ConfigDocument(_) | WebQuery::Reconfigure { .. } | WebQuery::Campaign { .. } => {}
        WebQuery::Monitor { since, reply } => {
            let _ = reply.send(engine.monitor_snapshot(now, since));
        }
        WebQuery::ReportSetup(reply) => {
            let _ = reply.send(engine.report_setup());
        }
    }
}

/// `block import FILE` / `restrict import FILE` (and the `file` keys at start): CSV rows into a
/// list. Bad rows are reported with their line numbers; good rows are kept either way.
fn import_list(
    engine: &mut Engine,
    kind: crate::engine::ListKind,
    path: &str,
    save_in: Option<&Path>,
) -> String {
    use std::io::Read as _;
    let max = crate::apps::numbers::MAX_IMPORT_BYTES as u64;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(max + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return format!("error: cannot read {path}: {e}");
    }
    let import = match crate::apps::numbers::import_csv(&bytes) {
        Ok(i) => i,
        Err(e) => return format!("error: {path}: {e}"),
    };
    let mut s = String::new();
    let rows = import.entries.len();
    match engine.import_list(kind, import.entries) {
        Ok(total) => {
            let _ =
                writeln!(s, "{path}: {rows} row(s) imported ({:?}); the list holds {total}", import.encoding);
        }
        Err(e) => {
            let _ = writeln!(s, "error: {path}: {e}; rows up to the limit were imported");
        }
    }
    for e in &import.errors {
        let _ = writeln!(s, "line {}: {}", e.line, e.message);
    }
    if import.errors_omitted > 0 {
        let _ = writeln!(s, "... {} more bad line(s)", import.errors_omitted);
    }
    if let Some(dir) = save_in {
        if let Err(e) = save_list(engine, kind, dir) {
            let _ = writeln!(s, "error: the list could not be saved (it is lost at restart): {e}");
        }
    }
    s.trim_end().to_string()
}

/// Where a list is kept between starts once the console changed it.
pub(crate) fn saved_list_path(data_dir: &Path, kind: crate::engine::ListKind) -> PathBuf {
    let name = match kind {
        crate::engine::ListKind::Block => "block.csv",
        crate::engine::ListKind::Restrict => "restrict.csv",
    };
    data_dir.join("lists").join(name)
}

/// Writes a whole list as CSV (`number,note,caller_id`, the import format) next to the store,
/// through a temporary file so a crash never leaves half a list.
fn save_list(engine: &Engine, kind: crate::engine::ListKind, data_dir: &Path) -> std::io::Result<()> {
    let path = saved_list_path(data_dir, kind);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = crate::apps::numbers::export_csv(engine.list_entries(kind).0.iter());
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}
