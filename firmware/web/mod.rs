//! The web admin: HTTPS server, JSON API, users, sessions and the embedded pages (issue 7).
//!
//! The public interface is: [`WebOptions`], [`start`], [`WebHandle`], [`WebQuery`],
//! [`EngineStatus`], [`TrunkStatus`], [`ROUTES`], the rooms [`auth`] (the sans-IO security core), [`tls`] (the
//! certificate) and [`password`], and the server limits re-exported from `server`.
//!
//! Layers:
//! - [`auth`]: roles, permissions, password policy, lockout and the session table; no I/O, no
//!   clock (every call takes `now`).
//! - `api`: the `/api/v1/` handlers. They check the session, the CSRF token and the
//!   permission, validate fields, write through `store::web` (the only code touching disk) and
//!   ask the engine through [`WebQuery`] (the web never touches engine state).
//! - `callcenter`, `media`: the queue/agent and the voicemail/recordings/alarms areas of the
//!   API, each with its own `routes()`.
//! - `crm`, `crm_live`: the CRM (customers, cases, FAQ, definitions, upload, statistics) and
//!   its live part (presence, chat, the screen pop's event stream), issue 9.
//! - `assets`: the embedded `web-ui/` files.
//! - `server`: the TCP/TLS accept loops with their timeouts and connection bound.
//!
//! Ports: HTTPS on `[web] https_port` (default 8443), plain HTTP on `[web] http_port` (default
//! 8080) answering 308 to the HTTPS URL; port 0 turns a listener off. Both bind the box's
//! `--bind` address. `docs/web.md` is the user-facing account; `docs/openapi.yaml` lists every
//! route of [`ROUTES`] (a unit test holds them together).

mod api;
mod assets;
pub mod auth;
mod callcenter;
mod calls;
pub mod campaigns;
mod crm;
mod crm_live;
mod history;
mod lists;
mod media;
mod monitor;
pub mod password;
mod phonebook;
mod reports;
mod server;
mod settings;
mod system;
pub mod tls;

pub use server::{CONNECTION_LIFETIME, HANDSHAKE_TIMEOUT, HEADER_TIMEOUT, MAX_CONNECTIONS, MAX_HEADER_BYTES};

use crate::apps::callcenter::{AgentError, Cause};
use crate::apps::supervision::Mode;
use crate::apps::voicemail::mailbox::{BoxNumber, MessageId, MessageMeta};
use crate::engine::{AgentCommand, AgentView, QueueView, SuperviseError, SupervisionView};
use crate::store::web::{AuditEntry, StoredUser, WebStore};
use crate::store::Store;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Largest request body: JSON forms and a PEM certificate upload fit in far less.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Time a handler gets before the client is answered 503: a slow store or a stuck engine
/// must not hold connections forever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Password hashes computed at once. Each takes ~19 MiB and a core for tens to hundreds of
/// milliseconds; two keep a login flood from starving calls on a two-core box.
pub const HASH_SLOTS: usize = 2;

/// Most web users: the same bound as extensions (`config::MAX_EXTENSIONS`), one user each.
pub const MAX_USERS: usize = 500;

/// Most roles: seed 002's sample lists a dozen; 50 leaves room without an unbounded list.
pub const MAX_ROLES: usize = 50;

/// The id of the seeded administrator.
pub const ADMIN_USER: &str = "admin";

/// Every route: (method, path as in `docs/openapi.yaml`). The router is built from the same
/// paths (see `api::router`), and a test checks each one is documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/password"),
    ("GET", "/api/v1/dashboard"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"),
    ("PUT", "/api/v1/users/{id}"),
    ("DELETE", "/api/v1/users/{id}"),
    ("GET", "/api/v1/roles"),
    ("PUT", "/api/v1/roles/{name}"),
    ("DELETE", "/api/v1/roles/{name}"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/{user}"),
    ("GET", "/api/v1/audit"),
    ("PUT", "/api/v1/certificate"),
    ("GET", "/api/v1/queues"),
    ("GET", "/api/v1/agents"),
    ("PUT", "/api/v1/agents/{ext}/state"),
    ("PUT", "/api/v1/agents/{ext}/queues/{queue}"),
    ("GET", "/api/v1/supervision"),
    ("POST", "/api/v1/supervision"),
    ("DELETE", "/api/v1/supervision/{supervisor}"),
    ("POST", "/api/v1/calls"),
    ("GET", "/api/v1/campaigns"),
    ("GET", "/api/v1/campaigns/{name}/entries"),
    ("POST", "/api/v1/campaigns/{name}/entries"),
    ("POST", "/api/v1/campaigns/{name}/entries/csv"),
    ("PUT", "/api/v1/campaigns/{name}/entries/{id}/result"),
    ("GET", "/api/v1/campaigns/{name}/stats"),
    ("GET", "/api/v1/recalls"),
    ("POST", "/api/v1/recalls/{name}/{id}/dial"),
    ("POST", "/api/v1/crm/customers/autodial"),
    ("GET", "/api/v1/crm/customers/{id}/autodial"),
    ("GET", "/api/v1/voicemail"),
    ("GET", "/api/v1/voicemail/{box}/{id}"),
    ("DELETE", "/api/v1/voicemail/{box}/{id}"),
    ("GET", "/api/v1/recordings"),
    ("GET", "/api/v1/recordings/zip"),
    ("GET", "/api/v1/recordings/{day}/{file}"),
    ("DELETE", "/api/v1/recordings/{day}/{file}"),
    ("GET", "/api/v1/alarms"),
    ("GET", "/api/v1/phonebook"),
    ("POST", "/api/v1/phonebook"),
    ("POST", "/api/v1/phonebook/import"),
    ("GET", "/api/v1/phonebook/export"),
    ("GET", "/api/v1/phonebook/{id}"),
    ("PUT", "/api/v1/phonebook/{id}"),
    ("DELETE", "/api/v1/phonebook/{id}"),
    ("GET", "/api/v1/lists/{kind}"),
    ("POST", "/api/v1/lists/{kind}"),
    ("POST", "/api/v1/lists/{kind}/import"),
    ("DELETE", "/api/v1/lists/{kind}/{number}"),
    ("GET", "/api/v1/history"),
    ("GET", "/api/v1/history/export"),
    ("GET", "/api/v1/config"),
    ("PUT", "/api/v1/config/{section}"),
    ("GET", "/api/v1/audio"),
    ("PUT", "/api/v1/audio/{name}"),
    ("DELETE", "/api/v1/audio/{name}"),
    ("GET", "/api/v1/monitor"),
    ("GET", "/api/v1/monitor/events"),
    ("GET", "/api/v1/reports/{kind}"),
    ("GET", "/api/v1/reports/{kind}/csv"),
    ("GET", "/api/v1/firmware"),
    ("POST", "/api/v1/firmware"),
    ("GET", "/api/v1/backup"),
    ("POST", "/api/v1/restore"),
    ("GET", "/api/v1/crm/customers"),
    ("POST", "/api/v1/crm/customers"),
    ("POST", "/api/v1/crm/customers/bulk"),
    ("GET", "/api/v1/crm/customers/export"),
    ("POST", "/api/v1/crm/customers/upload/preview"),
    ("POST", "/api/v1/crm/customers/upload"),
    ("GET", "/api/v1/crm/customers/{id}"),
    ("PUT", "/api/v1/crm/customers/{id}"),
    ("DELETE", "/api/v1/crm/customers/{id}"),
    ("GET", "/api/v1/crm/customers/{id}/calls"),
    ("GET", "/api/v1/crm/cases"),
    ("POST", "/api/v1/crm/cases"),
    ("POST", "/api/v1/crm/cases/bulk"),
    ("GET", "/api/v1/crm/cases/export"),
    ("GET", "/api/v1/crm/cases/{id}"),
    ("PUT", "/api/v1/crm/cases/{id}"),
    ("DELETE", "/api/v1/crm/cases/{id}"),
    ("POST", "/api/v1/crm/cases/{id}/step"),
    ("GET", "/api/v1/crm/faq"),
    ("POST", "/api/v1/crm/faq"),
    ("GET", "/api/v1/crm/faq/{id}"),
    ("PUT", "/api/v1/crm/faq/{id}"),
    ("DELETE", "/api/v1/crm/faq/{id}"),
    ("GET", "/api/v1/crm/tags"),
    ("PUT", "/api/v1/crm/tags/{name}"),
    ("DELETE", "/api/v1/crm/tags/{name}"),
    ("GET", "/api/v1/crm/formats"),
    ("PUT", "/api/v1/crm/formats/{name}"),
    ("DELETE", "/api/v1/crm/formats/{name}"),
    ("GET", "/api/v1/crm/fields"),
    ("PUT", "/api/v1/crm/fields/{category}/{name}"),
    ("DELETE", "/api/v1/crm/fields/{category}/{name}"),
    ("GET", "/api/v1/crm/steps"),
    ("PUT", "/api/v1/crm/steps/{name}"),
    ("DELETE", "/api/v1/crm/steps/{name}"),
    ("GET", "/api/v1/crm/workflows"),
    ("PUT", "/api/v1/crm/workflows/{name}"),
    ("DELETE", "/api/v1/crm/workflows/{name}"),
    ("GET", "/api/v1/crm/workflow-stats"),
    ("GET", "/api/v1/crm/workflow-stats/csv"),
    ("GET", "/api/v1/crm/screen-pop/stream"),
    ("GET", "/api/v1/presence"),
    ("GET", "/api/v1/chat"),
    ("POST", "/api/v1/chat"),
    ("POST", "/api/v1/chat/read"),
];

/// A question or command the web sends the engine's owner (the daemon), answered through the
/// sender with the same engine calls the console uses (typed views, not text).
#[derive(Debug)]
#[non_exhaustive]
pub enum WebQuery {
    /// Counts for the dashboard.
    Status(oneshot::Sender<EngineStatus>),
    /// Every queue (`Engine::queues`).
    Queues(oneshot::Sender<Vec<QueueView>>),
    /// Every agent (`Engine::agents`).
    Agents(oneshot::Sender<Vec<AgentView>>),
    /// An agent command (`Engine::agent_command`); the answer is the agent afterwards.
    Agent {
        /// The agent's extension.
        agent: String,
        /// What to do.
        command: AgentCommand,
        /// The agent itself (operator screen) or a supervisor, for the event log.
        by: Cause,
        /// The agent's view after the change, or why it was refused.
        reply: oneshot::Sender<Result<AgentView, AgentError>>,
    },
    /// The supervision sessions now (`Engine::supervisions`).
    Supervisions(oneshot::Sender<Vec<SupervisionView>>),
    /// Ring `supervisor`'s phone and join it to `agent`'s call (`Engine::supervise`).
    Supervise {
        /// Listen, whisper or barge.
        mode: Mode,
        /// The supervisor's extension (the phone the box rings).
        supervisor: String,
        /// The agent's extension.
        agent: String,
        /// Whether the box started ringing.
        reply: oneshot::Sender<Result<(), SuperviseError>>,
    },
    /// The box rings extension `from`, then dials `to` and bridges them
    /// (`Engine::click_to_call`); the call's id.
    Originate {
        /// The extension rung first.
        from: String,
        /// The extension or number dialled next.
        to: String,
        /// The call id, or why not.
        reply: oneshot::Sender<Result<u64, crate::engine::OriginateError>>,
    },
    /// A campaign question, answered on the engine's task by [`campaigns::answer`].
    Campaign {
        /// What is asked.
        query: campaigns::CampaignQuery,
        /// The answer.
        reply: oneshot::Sender<campaigns::CampaignAnswer>,
    },
    /// End `supervisor`'s session (`Engine::stop_supervision`); `false` when there is none.
    StopSupervision {
        /// The supervisor's extension.
        supervisor: String,
        /// Whether a session was stopped.
        reply: oneshot::Sender<bool>,
    },
    /// Every stored voicemail message with its audio file (the daemon's voicemail store).
    Voicemail(oneshot::Sender<Vec<(MessageMeta, PathBuf)>>),
    /// Delete a message the way the phone menu does (store, then MWI); `Ok(false)` when it
    /// was not there.
    VoicemailDelete {
        /// The box.
        box_no: BoxNumber,
        /// The message.
        id: MessageId,
        /// Whether it was deleted, or the store's error.
        reply: oneshot::Sender<Result<bool, String>>,
    },
    /// The trunks and their registration state (`Engine::trunk_states`).
    Trunks(oneshot::Sender<Vec<TrunkStatus>>),
    /// The phonebook changed: the engine's caller names from now on
    /// (`Engine::set_caller_names`). No answer: the engine only swaps its index.
    CallerNames(Box<crate::apps::phonebook::CallerIndex>),
    /// A block or restriction list and whether anonymous callers are rejected
    /// (`Engine::list_entries`).
    ListEntries {
        /// Which list.
        kind: crate::engine::ListKind,
        /// Its entries, and the anonymous flag (block list only).
        reply: oneshot::Sender<(Vec<crate::apps::numbers::ListEntry>, bool)>,
    },
    /// Add to or remove from a list, live, as the console's `block import` does
    /// (`Engine::import_list`, `Engine::remove_list_entry`).
    ListChange {
        /// Which list.
        kind: crate::engine::ListKind,
        /// What to do.
        change: ListChange,
        /// Whether anything changed (`Err` when the list filled up part way), and the list
        /// afterwards (the web saves it where the daemon reads it at start).
        reply: oneshot::Sender<(
            Result<bool, crate::apps::numbers::ListFull>,
            Vec<crate::apps::numbers::ListEntry>,
        )>,
    },
    /// The configuration document the box runs with, and where it is saved.
    ConfigDocument(oneshot::Sender<crate::config::document::RunningDocument>),
    /// Run with this validated document, already saved (`Engine::reconfigure`).
    Reconfigure {
        /// The document's TOML text.
        text: String,
        /// The document parsed.
        config: Box<crate::config::Config>,
        /// What changed live and what needs a restart.
        reply: oneshot::Sender<crate::engine::ReconfigureReport>,
    },
    /// The live monitor's view with the events after generation `since`
    /// (`Engine::monitor_snapshot`).
    Monitor {
        /// The generation the asker has seen (0: none).
        since: u64,
        /// The snapshot.
        reply: oneshot::Sender<crate::engine::MonitorSnapshot>,
    },
    /// What a report pass needs of the configuration (`Engine::report_setup`).
    ReportSetup(oneshot::Sender<crate::engine::ReportSetup>),
}

/// One trunk as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrunkStatus {
    /// The trunk's name.
    pub name: String,
    /// `registered`, `registering`, `unregistered`, `failed`, `up` or `down`.
    pub state: &'static str,
    /// Why it failed, or when the binding runs out, in words.
    pub detail: String,
    /// Whether calls can use it now (registered or up).
    pub usable: bool,
}

impl TrunkStatus {
    /// The dashboard's view of a trunk state at `now`.
    pub fn of(name: String, state: crate::apps::trunk::TrunkState, now: Instant) -> TrunkStatus {
        use crate::apps::trunk::TrunkState as S;
        let (key, detail) = match state {
            S::Unregistered => ("unregistered", String::new()),
            S::Registering => ("registering", String::new()),
            S::Registered { expires_at } => (
                "registered",
                format!("expires in {} s", expires_at.saturating_duration_since(now).as_secs()),
            ),
            S::Failed { reason, retry_at } => (
                "failed",
                format!("{reason}; retry in {} s", retry_at.saturating_duration_since(now).as_secs()),
            ),
            S::Up => ("up", String::new()),
            S::Down => ("down", String::new()),
        };
        TrunkStatus { name, state: key, detail, usable: matches!(key, "registered" | "up") }
    }
}

/// A change to a block or restriction list sent by the web ([`WebQuery::ListChange`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum ListChange {
    /// Add these entries (an entry already there is replaced).
    Add(Vec<crate::apps::numbers::ListEntry>),
    /// Remove the entry with this pattern and caller-ID scope.
    Remove {
        /// The number or prefix.
        pattern: crate::apps::numbers::Pattern,
        /// The caller-ID scope (restriction list), `None` for every caller.
        caller_id: Option<String>,
    },
}

/// What the dashboard shows of the engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EngineStatus {
    /// Phones registered now.
    pub registrations: usize,
    /// Calls in progress.
    pub active_calls: usize,
    /// Unix seconds of the planned nightly restart (`[system] restart_window`); `None`: none.
    pub next_restart: Option<i64>,
}

/// How `hakoden run` starts the web admin.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Address to bind (the box's `--bind`).
    pub bind: IpAddr,
    /// HTTPS port; 0 = off.
    pub https_port: u16,
    /// Plain-HTTP redirect port; 0 = off.
    pub http_port: u16,
    /// `<data>/web`: the certificate lives here.
    pub dir: PathBuf,
    /// The address shown in the admin URL (the SIP advertise address when bound to 0.0.0.0).
    pub shown: IpAddr,
    /// `<data>/recordings`: the call recordings (`store::recordings`), on the data partition.
    pub recordings: PathBuf,
    /// The A/B appliance behind the firmware page; `None` off the appliance (503 there).
    pub appliance: Option<crate::update::Appliance>,
    /// The `--config` file, carried by backups and written back by restores.
    pub config_file: Option<PathBuf>,
}

/// What the daemon keeps of the web admin: console actions and the ready line.
#[derive(Clone)]
pub struct WebHandle {
    state: Arc<api::State>,
    /// The HTTPS router (state applied), for the watchdog's in-process probe.
    app: axum::Router,
    monitor: Arc<monitor::Hub>,
    url: Option<String>,
    initial_password: Option<String>,
}

/// Reads the monotonic clock for the session table.
#[allow(clippy::disallowed_methods)] // driver: reads the clock
fn now() -> Instant {
    Instant::now()
}

/// Reads the wall clock for audit entries.
#[allow(clippy::disallowed_methods)] // driver: reads the wall clock
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn audit(who: &str, action: &str, target: &str, detail: String, peer: &str) -> AuditEntry {
    AuditEntry {
        at_ms: wall_ms(),
        who: who.into(),
        action: action.into(),
        target: target.into(),
        detail,
        peer: peer.into(),
    }
}

/// Opens users and the certificate, seeds the admin and the default roles on first start, and
/// binds and serves the listeners (before returning, so a ready box answers).
pub async fn start(
    opts: WebOptions,
    store: &Store,
    engine: mpsc::Sender<WebQuery>,
) -> Result<WebHandle, String> {
    let web = WebStore::open(store).map_err(|e| e.to_string())?;
    let (initial_password, store_copy) = {
        let web = web.clone();
        tokio::task::spawn_blocking(move || seed(&web).map(|p| (p, web)))
            .await
            .map_err(|e| e.to_string())??
    };
    let names = tls::default_names(opts.bind);
    let dir = opts.dir.clone();
    let (slot, made) = tokio::task::spawn_blocking(move || tls::CertSlot::load_or_create(&dir, &names))
        .await
        .map_err(|e| e.to_string())??;
    if made {
        let _ = web.audit(&audit("system", "certificate.generate", "", "self-signed".into(), ""));
    }
    let slot = Arc::new(slot);
    let engine_for_monitor = engine.clone();
    let media = media::Media::new(store.clone(), opts.recordings.clone());
    let state = api::State::new(store_copy, slot.clone(), engine, now(), media).map_err(|e| e.to_string())?;
    let _ = state.data_dir.set(opts.dir.parent().map(std::path::Path::to_path_buf).unwrap_or_default());
    let data_dir = opts.dir.parent().map(PathBuf::from).unwrap_or_else(|| opts.dir.clone());
    let _ = state.system.set(system::System::new(opts.appliance.clone(), data_dir, opts.config_file.clone()));
    let app = api::router(state.clone());
    let monitor = monitor::Hub::start(engine_for_monitor);
    let app =
        app.layer(axum::Extension(monitor.clone())).layer(axum::Extension(reports::Reports::new(store)));
    let probe_app = app.clone();
    let mut url = None;
    if opts.https_port != 0 {
        let addr = SocketAddr::new(opts.bind, opts.https_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot bind HTTPS on {addr}: {e}"))?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(opts.https_port);
        state.set_https_port(port);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(slot)?);
        tokio::spawn(server::serve(listener, Some(acceptor), app));
        url = Some(format!("https://{}/", SocketAddr::new(opts.shown, port)));
    }
    if opts.http_port != 0 {
        let addr = SocketAddr::new(opts.bind, opts.http_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot bind HTTP on {addr}: {e}"))?;
        tokio::spawn(server::serve(listener, None, api::redirect_router(state.clone())));
    }
    Ok(WebHandle { state, app: probe_app, monitor, url, initial_password })
}

/// First start: the default roles and the `admin` user with a generated password that must be
/// changed at first login. Returns that password (shown once).
fn seed(web: &WebStore) -> Result<Option<String>, String> {
    if web.roles().map_err(|e| e.to_string())?.is_empty() {
        for role in auth::default_roles() {
            web.put_role(&role, &audit("system", "role.create", &role.name, "default".into(), ""))
                .map_err(|e| e.to_string())?;
        }
    }
    if !web.users().map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let pw = password::generate();
    let user = StoredUser {
        id: ADMIN_USER.into(),
        name: "Administrator".into(),
        role: auth::ADMIN_ROLE.into(),
        extension: None,
        password_hash: password::hash(&pw)?,
        must_change_password: true,
        password_changed_ms: wall_ms(),
    };
    web.put_user(&user, &audit("system", "user.create", ADMIN_USER, "seeded at first start".into(), ""))
        .map_err(|e| e.to_string())?;
    Ok(Some(pw))
}

/// How long the watchdog's web probe waits for an answer or the users' lock: far above a
/// healthy answer (well under a millisecond) and far below the watchdog's stale limit (5 s).
pub const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One probe of the web loop: the router answers `GET /api/v1/health` in process (the
/// runtime runs web tasks, the middleware and the handlers answer) and the users' directory
/// lock, which every login and page takes, is free.
async fn probe(app: &axum::Router, st: &api::State) -> bool {
    let Ok(req) = axum::http::Request::get("/api/v1/health").body(axum::body::Body::empty()) else {
        return false;
    };
    let answered = tokio::time::timeout(PROBE_LIMIT, tower::ServiceExt::oneshot(app.clone(), req)).await;
    let ok = matches!(answered, Ok(Ok(ref r)) if r.status().is_success());
    ok && st.directory_free(PROBE_LIMIT).await
}

impl WebHandle {
    /// Registers the web server as the watchdog's `web` loop and probes it every
    /// [`crate::watchdog::PROBE_INTERVAL`]: the loop beats only while the probe (the router answers
    /// `GET /api/v1/health` in process, the users' lock is free) succeeds, so a
    /// wedged handler or lock stops the petting and the board resets.
    pub fn watch(&self, beats: crate::watchdog::Heartbeats) {
        use crate::watchdog::{Loop, PROBE_INTERVAL};
        beats.register(Loop::Web, now());
        let (app, state) = (self.app.clone(), self.state.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PROBE_INTERVAL);
            loop {
                tick.tick().await;
                if probe(&app, &state).await {
                    beats.beat(Loop::Web, now());
                }
            }
        });
    }

    /// `https://ADDR:PORT/`, or `None` when HTTPS is off.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The seeded admin's password, only on the start that created it.
    pub fn initial_password(&self) -> Option<&str> {
        self.initial_password.as_deref()
    }

    /// The caller-name index of the phonebook now, for the engine at start (later changes
    /// arrive as [`WebQuery::CallerNames`]).
    pub async fn caller_index(&self) -> crate::apps::phonebook::CallerIndex {
        let extensions = self.state.user_extensions().await;
        self.state.phonebook.caller_index(&extensions).await
    }

    /// The daemon's turn ended with the call-center event log at `generation`
    /// (`Engine::monitor_generation`): wakes the live monitor when it moved.
    pub fn monitor_changed(&self, generation: u64) {
        self.monitor.changed(generation);
    }

    /// A phone started ringing (the engine's [`crate::engine::Ringing`]): passed to the
    /// screen-pop streams of the CRM pages; nobody listening is fine.
    pub fn ringing(&self, ringing: crate::engine::Ringing) {
        let _ = self.state.ringing.send(ringing);
    }

    /// `web reset-admin`: a new generated password for `admin` (recreated with the admin role
    /// if it was deleted), unlocked, its session ended, to be changed at next login.
    pub async fn reset_admin(&self) -> String {
        match self.state.reset_admin().await {
            Ok(pw) => {
                format!("web user `{ADMIN_USER}`: new password {pw} (it must be changed at the next login)")
            }
            Err(e) => format!("error: {e}"),
        }
    }

    /// `web cert CERT KEY`: installs a PEM certificate chain and key read from files on the box.
    pub async fn install_certificate(&self, cert_path: &str, key_path: &str) -> String {
        let read = |p: &str| -> Result<String, String> {
            let meta = std::fs::metadata(p).map_err(|e| format!("cannot read {p}: {e}"))?;
            if meta.len() > tls::MAX_PEM_BYTES as u64 {
                return Err(format!("{p} is larger than {} bytes", tls::MAX_PEM_BYTES));
            }
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"))
        };
        let (cert, key) = match (read(cert_path), read(key_path)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => return format!("error: {e}"),
        };
        match self.state.install_certificate("console", "", cert, key).await {
            Ok(()) => "certificate installed; new connections use it".into(),
            Err(e) => format!("error: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_registered_or_answering_trunk_is_usable_on_the_dashboard() {
        use crate::apps::trunk::{FailReason, TrunkState};
        let now = Instant::now();
        let later = now + std::time::Duration::from_secs(60);
        let of = |s| TrunkStatus::of("t".into(), s, now);
        let registered = of(TrunkState::Registered { expires_at: later });
        assert_eq!((registered.state, registered.usable), ("registered", true));
        assert_eq!(registered.detail, "expires in 60 s");
        let failed = of(TrunkState::Failed { reason: FailReason::Timeout, retry_at: later });
        assert_eq!((failed.state, failed.usable), ("failed", false));
        assert!(failed.detail.contains("no response"), "{}", failed.detail);
        assert!(of(TrunkState::Up).usable);
        for s in [TrunkState::Down, TrunkState::Registering, TrunkState::Unregistered] {
            assert!(!of(s).usable);
        }
    }

    #[test]
    fn every_route_is_described_in_the_openapi_file() {
        let spec = include_str!("../../docs/openapi.yaml");
        for (method, path) in ROUTES {
            // Paths in the spec are relative to the `/api/v1` server URL.
            let rel = path.trim_start_matches("/api/v1");
            let at = spec
                .find(&format!("\n  {rel}:\n"))
                .unwrap_or_else(|| panic!("{path} missing in openapi.yaml"));
            let block_end = spec[at + 1..].find("\n  /").map_or(spec.len(), |e| at + 1 + e);
            let block = &spec[at..block_end];
            assert!(block.contains(&format!("\n    {}:", method.to_lowercase())), "{method} {path} missing");
        }
    }
}
