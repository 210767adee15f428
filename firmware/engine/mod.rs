//! The sans-IO PBX core: registrar, digest authentication and calls (a B2BUA), fed with
//! datagrams and `now`, answering with [`Output`]s.
//!
//! Contract (rules 2 and 3 of `notes/style-by-example.md`):
//! - inputs: [`Engine::handle_datagram`], [`Engine::handle_timeout`], [`Engine::media_failed`];
//! - after any input, drain [`Engine::poll_output`] until `None`, then sleep until
//!   [`Engine::poll_timeout`].
//!
//! The engine never reads the clock or touches a socket; a whole call runs in a unit test with a
//! virtual clock (`engine/tests.rs`).

mod call;
pub mod cdr;
pub mod dialplan;
mod features;
pub mod registrar;
// Live reconfiguration from the web admin (issue 7).
mod reconfigure;
// Message waiting: SUBSCRIBE / NOTIFY for voicemail boxes.
mod monitor;
mod mwi;
#[cfg(test)]
mod tests;

use crate::config::{ExtensionConfig, PortRange};
use crate::media::pool::PortPool;
use crate::media::{MediaCommand, RelayId};
use crate::sip::auth::{challenges, AuthGuard, Credentials, NonceSource, NonceState};
use crate::sip::message::{self, Message, Method, Request, Response};
use crate::sip::transaction::{
    ClientTransactions, ClientTxnId, RequestMatch, ResponseMatch, ServerTransactions, ServerTxnId,
};
use crate::sip::writer::{self, response_to, Writer};
use crate::sip::{Peer, Transport};
pub use call::originate::{
    is_dialable, OriginPurpose, OriginateError, OriginateEvent, OriginateRequest, OriginateStep, Party,
    ResultEntryConfig, Waiting, CLICK_TO_CALL_RING, MAX_DIAL_DIGITS, MAX_ORIGINATED,
};
pub use call::park::ParkedView;
pub use call::queue_call::{AgentCommand, AgentView, QueueView};
pub use call::supervise_call::{SuperviseError, SupervisionView, MAX_SESSIONS as MAX_SUPERVISION_SESSIONS};
pub use call::trunkcalls::{DidView, ListKind, MAX_AUTH_ROUNDS};
pub use call::voicemail_call::{MailboxOwner, VoicemailOp, VOICEMAIL_OWNER_CODE, VOICEMAIL_TARGET_PREFIX};
use call::{Call, Purpose};
use cdr::CdrRecord;
pub use monitor::{MonitorSnapshot, ReportSetup};
pub use reconfigure::ReconfigureReport;
use registrar::{RegisterError, Registrar, MIN_EXPIRES_S};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Most calls at once; a new INVITE beyond it gets 503 with Retry-After.
pub const MAX_CALLS: usize = 4096;
/// Pending outputs before the engine refuses new work (the driver drains after each input, so
/// this is only reached by a bug or a stalled driver).
pub const MAX_PENDING_OUTPUTS: usize = 65_536;
/// Every branch the box generates starts so (RFC 3261 magic cookie + our mark): responses to
/// anything else are not ours.
const BRANCH_PREFIX: &str = "z9hG4bK-hk";
/// How often lapsed registrations are swept.
const REGISTRAR_SWEEP: Duration = Duration::from_secs(30);

/// What the engine needs to know about its surroundings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The digest realm.
    pub realm: String,
    /// The SIP port written into Via and Contact.
    pub sip_port: u16,
    /// Address written into Via, Contact and SDP for peers that are not on loopback.
    pub advertise: IpAddr,
    /// How long a call may ring before the caller gets 408.
    pub ring_timeout: Duration,
    /// See [`crate::config::SipConfig::trust_registered_source`].
    pub trust_registered_source: bool,
    /// Digest algorithms offered in challenges, in order.
    pub auth_algorithms: Vec<crate::config::DigestAlgorithm>,
    /// Key of the stateless digest nonces (random per boot).
    pub secret: [u8; 32],
    /// The RTP port range of the relay.
    pub rtp_ports: PortRange,
    /// `now` at start, paired with the Unix time in ms at that instant (CDR timestamps).
    pub wall_anchor: (Instant, u64),
    /// The first box-wide call id to hand out (after the last one in the store).
    pub first_call_id: u64,
    /// Prompts language, music on hold, recording announcement.
    pub media: crate::config::MediaConfig,
    /// Numbers that dial into the box's conference rooms.
    pub rooms: Vec<String>,
    /// SIP trunks to register (issue 4).
    pub trunks: Vec<crate::apps::trunk::TrunkConfig>,
    /// Ring groups and per-extension forwarding, DND, pickup groups, hot-desk PINs (issue 4).
    pub dialplan: crate::config::DialplanConfig,
    /// DIDs, routes and lists of calls over the trunks (issue 4).
    pub trunk_calls: crate::config::TrunkCallsConfig,
    /// Call park slots and ringback.
    pub park: crate::config::ParkConfig,
    /// IVR menus (`[[ivr]]`, issue 6).
    pub ivrs: std::sync::Arc<crate::apps::ivr::Ivrs>,
    /// Who may listen, whisper and barge (`supervisor` on `[[extension]]`, issue 6).
    pub supervisors: crate::apps::supervision::SupervisorRoles,
    /// Call-center queues and agents (`[[queue]]`, `[acd]`, issue 6).
    pub callcenter: crate::config::CallCenterConfig,
}

impl EngineConfig {
    /// A complete configuration for tests, benchmarks and fuzzing: realm `hakoden`, port 5060,
    /// advertised 192.0.2.1 (TEST-NET-1, never contacted), MD5 challenges, RTP 40000-40199,
    /// rooms 9201-9203, no trunks. Override fields with struct update syntax.
    #[doc(hidden)]
    pub fn for_tests(now: Instant) -> EngineConfig {
        EngineConfig {
            realm: "hakoden".into(),
            sip_port: 5060,
            advertise: IpAddr::from([192, 0, 2, 1]),
            ring_timeout: Duration::from_secs(20),
            trust_registered_source: true,
            auth_algorithms: vec![crate::config::DigestAlgorithm::Md5],
            secret: [7; 32],
            rtp_ports: PortRange { lo: 40_000, hi: 40_199 },
            wall_anchor: (now, 1_700_000_000_000),
            first_call_id: 1,
            media: crate::config::MediaConfig::default(),
            rooms: crate::config::ConferenceConfig::default().rooms,
            trunks: Vec::new(),
            dialplan: crate::config::DialplanConfig::default(),
            trunk_calls: crate::config::TrunkCallsConfig::default(),
            park: crate::config::ParkConfig::default(),
            ivrs: Default::default(),
            supervisors: Default::default(),
            callcenter: Default::default(),
        }
    }
}

/// What the engine asks the drivers to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send SIP bytes.
    Transmit {
        /// Where to.
        peer: Peer,
        /// The message.
        data: Vec<u8>,
    },
    /// Drive the media relay.
    Media(MediaCommand),
    /// Store a finished call's record.
    Cdr(Box<CdrRecord>),
    /// Apply to the voicemail store (`voicemail_call.rs` says how).
    Voicemail(VoicemailOp),
    /// A call-center fact for the event log (`queue_call.rs`).
    QueueEvent(crate::apps::callcenter::Event),
}

/// A phone of an extension started ringing for a call: what the agent's screen pop needs
/// (issue 9). Collected by the engine, taken by the daemon with [`Engine::take_ringing`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ringing {
    /// Box-wide call id.
    pub call: u64,
    /// The extension whose phone rings.
    pub ext: String,
    /// The caller as the box knows it: an extension or an outside number.
    pub caller: String,
    /// The DID the caller dialled, for calls from a trunk.
    pub did: Option<String>,
}

/// Ringing events kept between two looks of the daemon (it looks after every input, so only a
/// stalled driver reaches it; the oldest are dropped).
pub const MAX_RINGING_BACKLOG: usize = 256;

/// A registration as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationView {
    /// The extension.
    pub extension: String,
    /// Contact URI.
    pub contact: String,
    /// Source the REGISTER came from.
    pub peer: Peer,
    /// Seconds left.
    pub expires_in_s: u64,
    /// User-Agent.
    pub user_agent: Option<String>,
}

/// A call as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallView {
    /// Box-wide call id.
    pub id: u64,
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// `ringing`, `answered`, `talking`, ...
    pub state: &'static str,
    /// Seconds since the INVITE.
    pub age_s: u64,
    /// Seconds since answer.
    pub talk_s: Option<u64>,
    /// The caller's phone.
    pub caller_peer: Peer,
    /// Relay ports (caller side, callee side).
    pub rtp_ports: (u16, u16),
    /// A recording is running.
    pub recording: bool,
    /// DTMF digits seen on the call (both sides), most recent last.
    pub digits: String,
}

/// Engine counters for the console and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages that failed to parse.
    pub parse_errors: u64,
    /// Requests received.
    pub requests: u64,
    /// Responses received.
    pub responses: u64,
    /// Calls started.
    pub calls_started: u64,
    /// Authentication failures (wrong credentials).
    pub auth_failures: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Call(u64),
    /// Transfer and park timers of a call.
    Rewire(u64),
    RegistrarSweep,
    /// The dial plan's step of a call ends (next member, forward, prompt guard).
    Dialplan(u64),
    /// A voicemail flow's timer (review timeout, recorder grace, length limit).
    Voicemail(u64),
    /// An IVR session's timer (no key, inter-digit, prompt guard).
    Ivr(u64),
    /// Message-waiting subscriptions expire.
    Mwi,
    /// A supervision session's timer (the supervisor's phone rings too long).
    Supervision(u64),
    /// The call center's ACD timer (ring time, queue timeout, announcements, ACW, logout).
    Queue,
}

/// The PBX core.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    extensions: HashMap<String, ExtensionConfig>,
    registrar: Registrar,
    nonces: NonceSource,
    guard: AuthGuard,
    /// Names of callers from the phonebook, put in the From of an INVITE to a phone.
    caller_names: crate::apps::phonebook::CallerIndex,
    /// Phones that started ringing since the daemon last looked (screen pop), bounded.
    ringing: VecDeque<Ringing>,
    server: ServerTransactions,
    client: ClientTransactions,
    /// Why each client transaction was started.
    purposes: HashMap<ClientTxnId, Purpose>,
    calls: HashMap<u64, Call>,
    /// (Call-ID, caller's tag) → call, for requests from the caller.
    a_index: HashMap<(String, String), u64>,
    /// Our Call-ID of a fork → (call, fork index), for requests from a callee.
    b_index: HashMap<String, (u64, usize)>,
    /// The INVITE server transaction → call, for CANCEL.
    invite_index: HashMap<ServerTxnId, u64>,
    /// Calls each extension is in (call waiting / busy).
    active_by_ext: HashMap<String, u32>,
    pool: PortPool,
    timers: BinaryHeap<Reverse<(Instant, TimerKey)>>,
    out: VecDeque<Output>,
    next_call_id: u64,
    next_token: u64,
    counters: Counters,
    sweep_armed: bool,
    /// Registration clients of the SIP trunks; their responses are routed by Call-ID.
    trunks: Vec<crate::apps::trunk::Trunk>,
    /// Ring groups, forwards, pickup, hot desking (`dialplan.rs`).
    dialplan: dialplan::Dialplan,
    /// Lists, routes and DID channel counts of calls over the trunks.
    trunk_calls: call::trunkcalls::TrunkCalls,
    /// Transfers and park (`transfer.rs`, `consult.rs`, `park.rs`: child modules of `call`).
    rewiring: call::transfer::Rewiring,
    /// Calls the box places itself (`originate.rs`).
    originations: call::originate::Originations,
    /// Calls leaving a message, and the mailbox counts (`voicemail_call.rs`).
    voicemail: call::voicemail_call::VoicemailCalls,
    /// Calls in an IVR menu (`ivr_call.rs`).
    ivr: call::ivr_call::IvrCalls,
    /// Message-waiting subscriptions (`mwi.rs`).
    mwi: mwi::Mwi,
    /// Supervisors listening, whispering, barging (`supervise_call.rs`).
    supervision: call::supervise_call::Supervisions,
    /// The call center: the ACD and the calls in its queues (`queue_call.rs`).
    queue: call::queue_call::QueueCalls,
}

/// The result of checking credentials.
enum AuthOutcome {
    /// Authenticated as this extension.
    Ok,
    /// Send a challenge (stale or first round).
    Challenge { stale: bool },
    /// Wrong credentials, or blocked.
    Forbidden,
}

impl Engine {
    /// Replaces the phonebook's caller names (at start and after every phonebook change); calls
    /// ringing from now on show them.
    pub fn set_caller_names(&mut self, index: crate::apps::phonebook::CallerIndex) {
        self.caller_names = index;
    }

    /// A new engine with the provisioned extensions.
    pub fn new(cfg: EngineConfig, extensions: &[ExtensionConfig]) -> Engine {
        let nonces = NonceSource::new(cfg.secret, cfg.wall_anchor.0);
        let pool = PortPool::new(cfg.rtp_ports);
        let next_call_id = cfg.first_call_id.max(1);
        let trunks = Self::build_trunks(&cfg);
        let cfg_host = cfg.advertise.to_string();
        let dialplan = dialplan::Dialplan::new(&cfg.dialplan);
        let trunk_calls = call::trunkcalls::TrunkCalls::new(&cfg.trunk_calls);
        let acd_cfg = cfg.callcenter.acd_config(cfg.trunk_calls.time_rules.offset());
        let queue = call::queue_call::QueueCalls::new(acd_cfg, cfg.wall_anchor.0, cfg.wall_anchor.1);
        Engine {
            extensions: extensions.iter().map(|e| (e.number.clone(), e.clone())).collect(),
            cfg,
            registrar: Registrar::default(),
            nonces,
            guard: AuthGuard::default(),
            caller_names: crate::apps::phonebook::CallerIndex::default(),
            ringing: VecDeque::new(),
            server: ServerTransactions::default(),
            client: ClientTransactions::default(),
            purposes: HashMap::new(),
            calls: HashMap::new(),
            a_index: HashMap::new(),
            b_index: HashMap::new(),
            invite_index: HashMap::new(),
            active_by_ext: HashMap::new(),
            pool,
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            next_call_id,
            next_token: 0,
            counters: Counters::default(),
            sweep_armed: false,
            trunks,
            dialplan,
            trunk_calls,
            rewiring: Default::default(),
            originations: Default::default(),
            voicemail: Default::default(),
            ivr: Default::default(),
            mwi: mwi::Mwi::new(&cfg_host),
            supervision: Default::default(),
            queue,
        }
    }

    /// The phones that started ringing since the last call, oldest first (screen pop).
    pub fn take_ringing(&mut self) -> Vec<Ringing> {
        self.ringing.drain(..).collect()
    }

    /// Notes that `ext`'s phone rings for call `id` (see [`Ringing`]).
    fn note_ringing(&mut self, id: u64, ext: &str, caller: &str) {
        if ext.is_empty() {
            return;
        }
        let did = self.calls.get(&id).and_then(|c| c.trunk.as_ref()).and_then(|t| t.did.clone());
        if self.ringing.len() >= MAX_RINGING_BACKLOG {
            self.ringing.pop_front();
        }
        self.ringing.push_back(Ringing { call: id, ext: ext.to_string(), caller: caller.to_string(), did });
    }

    fn build_trunks(cfg: &EngineConfig) -> Vec<crate::apps::trunk::Trunk> {
        let mut out = Vec::new();
        for t in &cfg.trunks {
            if let Some(mut trunk) = Self::build_trunk(cfg, t) {
                trunk.start(cfg.wall_anchor.0);
                out.push(trunk);
            }
        }
        out
    }

    /// One trunk's registration client (not started); `None` (logged) when it cannot be made.
    fn build_trunk(
        cfg: &EngineConfig,
        t: &crate::apps::trunk::TrunkConfig,
    ) -> Option<crate::apps::trunk::Trunk> {
        let ip = match t.registrar.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(v4),
            IpAddr::V6(v6) if v6.is_loopback() => IpAddr::V6(v6),
            _ => cfg.advertise,
        };
        let contact = match ip {
            IpAddr::V4(v4) => format!("{v4}:{}", cfg.sip_port),
            IpAddr::V6(v6) => format!("[{v6}]:{}", cfg.sip_port),
        };
        crate::apps::trunk::Trunk::new(t.clone(), &contact, cfg.secret)
            .map_err(|e| log::error!("trunk {}: not started: {e:?}", t.name))
            .ok()
    }

    /// Every trunk's name, state and registrar, for the console.
    pub fn trunk_states(&self) -> Vec<(String, crate::apps::trunk::TrunkState, std::net::SocketAddr)> {
        self.trunks.iter().map(|t| (t.config().name.clone(), t.state(), t.config().registrar)).collect()
    }

    /// Unregisters every trunk (shutdown); drain the outputs afterwards.
    pub fn unregister_trunks(&mut self, now: Instant) {
        for t in &mut self.trunks {
            t.unregister(now);
        }
        self.drain_trunks();
    }

    fn drain_trunks(&mut self) {
        let mut sends = Vec::new();
        for t in &mut self.trunks {
            let transport = t.config().transport;
            while let Some((addr, data)) = t.poll_transmit() {
                sends.push((Peer { transport, addr }, data));
            }
        }
        for (peer, data) in sends {
            self.transmit(peer, data);
        }
    }

    // ---- getters ------------------------------------------------------------------------

    /// Provisioned extensions, sorted by number.
    pub fn extensions(&self) -> Vec<ExtensionConfig> {
        let mut v: Vec<ExtensionConfig> = self.extensions.values().cloned().collect();
        v.sort_by(|a, b| a.number.cmp(&b.number));
        v
    }

    /// Live registrations.
    pub fn registrations(&self, now: Instant) -> Vec<RegistrationView> {
        self.registrar
            .all(now)
            .into_iter()
            .map(|(ext, b)| RegistrationView {
                extension: ext,
                contact: b.uri,
                peer: b.peer,
                expires_in_s: b.expires_at.saturating_duration_since(now).as_secs(),
                user_agent: b.user_agent,
            })
            .chain(self.hot_desk_registrations(now))
            .collect()
    }

    /// Calls in progress, oldest first.
    pub fn calls(&self, now: Instant) -> Vec<CallView> {
        let mut v: Vec<CallView> = self.calls.values().map(|c| c.view(now)).collect();
        for view in &mut v {
            self.originated_view(view);
        }
        v.sort_by_key(|c| c.id);
        v
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Sizes of the engine's tables (memory accounting for the console and benchmarks):
    /// (calls, server transactions, client transactions, pending client purposes, timers).
    pub fn table_sizes(&self) -> (usize, usize, usize, usize, usize) {
        (self.calls.len(), self.server.len(), self.client.len(), self.purposes.len(), self.timers.len())
    }

    /// RTP ports in use / total.
    pub fn rtp_ports_in_use(&self) -> (usize, usize) {
        (self.pool.in_use(), self.pool.capacity())
    }

    // ---- outputs and timers -----------------------------------------------------------------

    /// The next thing to do. Drain until `None` after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Engine::handle_timeout`] wants to be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.server.poll_timeout(),
            self.client.poll_timeout(),
            self.timers.peek().map(|Reverse((at, _))| *at),
        ]
        .into_iter()
        .chain(self.trunks.iter().map(|t| t.poll_timeout()))
        .flatten()
        .min()
    }

    fn transmit(&mut self, peer: Peer, data: Vec<u8>) {
        if self.out.len() < MAX_PENDING_OUTPUTS {
            self.out.push_back(Output::Transmit { peer, data });
        } else {
            log::error!("engine output queue full; dropping a message to {peer}");
        }
    }

    fn arm(&mut self, at: Instant, key: TimerKey) {
        self.timers.push(Reverse((at, key)));
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for t in &mut self.trunks {
            t.handle_timeout(now);
        }
        self.drain_trunks();
        let mut sends = Vec::new();
        self.server.handle_timeout(now, &mut sends);
        let mut timed_out = Vec::new();
        self.client.handle_timeout(now, &mut sends, &mut timed_out);
        for (peer, data) in sends {
            self.transmit(peer, data);
        }
        for t in timed_out {
            if let Some(purpose) = self.purposes.remove(&t.txn) {
                self.on_client_timeout(purpose, now);
            }
        }
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match key {
                TimerKey::Call(id) => self.on_call_timer(id, now),
                TimerKey::Dialplan(id) => self.on_dialplan_timer(id, now),
                TimerKey::Rewire(id) => self.on_rewire_timer(id, now),
                TimerKey::Voicemail(id) => self.on_voicemail_timer(id, now),
                TimerKey::Ivr(id) => self.on_ivr_timer(id, now),
                TimerKey::Mwi => self.on_mwi_timer(now),
                TimerKey::Supervision(id) => self.on_supervision_timer(id, now),
                TimerKey::Queue => self.on_queue_timer(now),
                TimerKey::RegistrarSweep => {
                    self.sweep_armed = false;
                    let n = self.registrar.sweep(now);
                    if n > 0 {
                        log::info!("{n} registration(s) expired");
                    }
                    self.arm_sweep(now);
                }
            }
        }
    }

    fn arm_sweep(&mut self, now: Instant) {
        if !self.sweep_armed && !self.registrar.all(now).is_empty() {
            self.sweep_armed = true;
            self.arm(now + REGISTRAR_SWEEP, TimerKey::RegistrarSweep);
        }
    }

    /// The relay could not open a call's sockets: end the call (503 to the caller).
    pub fn media_failed(&mut self, relay: RelayId, now: Instant) {
        let id = relay.0;
        if self.calls.contains_key(&id) {
            self.end_call(id, cdr::HangupSide::System, "media ports unavailable", 503, now);
        } else {
            self.supervision_media_failed(now, relay);
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    fn token(&mut self) -> String {
        // Unique per boot and unguessable enough for tags/branches: counter mixed with the secret.
        self.next_token += 1;
        let mut x = self.next_token ^ u64::from_le_bytes(self.cfg.secret[..8].try_into().unwrap_or([0; 8]));
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        format!("{:x}{:x}", self.next_token, x & 0xffff_ffff)
    }

    fn branch(&mut self) -> String {
        format!("{BRANCH_PREFIX}{}", self.token())
    }

    /// The address to advertise to this peer (loopback peers get loopback).
    fn local_ip_for(&self, peer: &Peer) -> IpAddr {
        match peer.addr.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(v4),
            IpAddr::V6(v6) if v6.is_loopback() => IpAddr::V6(v6),
            _ => self.cfg.advertise,
        }
    }

    fn host_for(&self, peer: &Peer) -> String {
        match self.local_ip_for(peer) {
            IpAddr::V4(v4) => format!("{v4}:{}", self.cfg.sip_port),
            IpAddr::V6(v6) => format!("[{v6}]:{}", self.cfg.sip_port),
        }
    }

    fn via_for(&self, peer: &Peer, branch: &str) -> String {
        format!("SIP/2.0/{} {};branch={branch};rport", peer.transport.as_str(), self.host_for(peer))
    }

    fn contact_for(&self, user: &str, peer: &Peer) -> String {
        let transport = if peer.transport == Transport::Tcp { ";transport=tcp" } else { "" };
        format!("<sip:{user}@{}{transport}>", self.host_for(peer))
    }

    fn wall_ms(&self, at: Instant) -> u64 {
        let (anchor, ms) = self.cfg.wall_anchor;
        ms + at.saturating_duration_since(anchor).as_millis() as u64
    }

    /// Answers a request through its server transaction.
    fn reply(&mut self, txn: ServerTxnId, code: u16, bytes: Vec<u8>, now: Instant) {
        if let Some((peer, data)) = self.server.respond(txn, code, bytes, now) {
            self.transmit(peer, data);
        }
    }

    /// Answers with a bare status (plus any extra headers).
    fn reply_status(
        &mut self,
        txn: ServerTxnId,
        req: &Request,
        peer: Peer,
        code: u16,
        extra: &[(&str, String)],
        now: Instant,
    ) {
        let tag = if code > 100 && req.common.to.tag().is_none() { Some(self.token()) } else { None };
        let mut w = response_to(&req.common, peer.addr, code, tag.as_deref());
        for (n, v) in extra {
            w = w.header(n, v);
        }
        self.reply(txn, code, w.finish(), now);
    }

    // ---- input ------------------------------------------------------------------------------

    /// A datagram (UDP) or one framed message (TCP) arrived from `peer`.
    pub fn handle_datagram(&mut self, now: Instant, peer: Peer, data: &[u8]) {
        // RFC 5626 §3.5.1 keep-alive: CRLFCRLF ping gets a CRLF pong on streams; ignored on UDP.
        if data.iter().all(|b| *b == b'\r' || *b == b'\n') {
            if peer.transport == Transport::Tcp && data.len() >= 4 {
                self.transmit(peer, b"\r\n".to_vec());
            }
            return;
        }
        match message::parse(data) {
            Ok(Message::Request(req)) => {
                self.counters.requests += 1;
                self.handle_request(now, peer, req);
            }
            Ok(Message::Response(resp)) => {
                self.counters.responses += 1;
                self.handle_response(now, peer, resp);
            }
            Err(fail) => {
                self.counters.parse_errors += 1;
                log::debug!("dropping/refusing unparsable message from {peer}: {}", fail.error);
                if let Some(ctx) = fail.reply.filter(|c| !c.is_ack) {
                    let data =
                        writer::response_from_context(&ctx, fail.error.status(), &fail.error.to_string());
                    // An answer copying huge headers would be a message we refuse ourselves.
                    if data.len() <= message::MAX_SIP_MESSAGE {
                        self.transmit(peer, data);
                    }
                }
            }
        }
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, req: Request) {
        let txn = match self.server.on_request(&req, peer, now) {
            RequestMatch::New(id) => id,
            RequestMatch::Retransmission(Some((p, data))) => return self.transmit(p, data),
            RequestMatch::Retransmission(None) | RequestMatch::AckAbsorbed => return,
            RequestMatch::ToDialog => return self.handle_ack(now, peer, &req),
            RequestMatch::Overloaded => {
                if req.method != Method::Ack {
                    let w = response_to(&req.common, peer.addr, 503, None).header("Retry-After", 5);
                    self.transmit(peer, w.finish());
                }
                return;
            }
        };
        // Checks every request gets, in RFC 3261 §8.2 order.
        if req.uri.scheme != "sip" && req.uri.scheme != "sips" {
            return self.reply_status(txn, &req, peer, 416, &[], now);
        }
        if !matches!(req.method, Method::Cancel) {
            let unsupported: Vec<&str> = req
                .common
                .header_list("Require")
                .into_iter()
                .chain(req.common.header_list("Proxy-Require"))
                .filter(|o| !o.eq_ignore_ascii_case("replaces"))
                .collect();
            if !unsupported.is_empty() {
                let list = unsupported.join(", ");
                return self.reply_status(txn, &req, peer, 420, &[("Unsupported", list)], now);
            }
        }
        if req.max_forwards == Some(0) && !matches!(req.method, Method::Register | Method::Options) {
            return self.reply_status(txn, &req, peer, 483, &[], now);
        }
        match req.method {
            Method::Register => self.handle_register(now, peer, txn, &req),
            Method::Options => {
                let extra = [
                    ("Allow", writer::ALLOW.to_string()),
                    ("Accept", "application/sdp".to_string()),
                    ("Supported", writer::SUPPORTED.to_string()),
                ];
                self.reply_status(txn, &req, peer, 200, &extra, now)
            }
            Method::Invite if req.common.to.tag().is_none() => self.handle_new_invite(now, peer, txn, req),
            Method::Cancel => self.handle_cancel(now, peer, txn, &req),
            Method::Invite | Method::Bye | Method::Info | Method::Update => {
                self.handle_in_dialog(now, peer, txn, req)
            }
            Method::Ack => {}
            Method::Refer if req.common.to.tag().is_some() => self.handle_refer(now, peer, txn, req),
            Method::Subscribe => self.handle_subscribe(now, peer, txn, &req),
            Method::Prack | Method::Notify | Method::Refer | Method::Message | Method::Publish => {
                self.reply_status(txn, &req, peer, 405, &[("Allow", writer::ALLOW.to_string())], now)
            }
            Method::Other(_) => {
                self.reply_status(txn, &req, peer, 501, &[("Allow", writer::ALLOW.to_string())], now)
            }
        }
    }

    // ---- authentication ---------------------------------------------------------------------

    /// Checks digest credentials of `req` for extension `ext`.
    fn authenticate(&mut self, now: Instant, peer: Peer, req: &Request, ext: &str) -> AuthOutcome {
        let ip = peer.addr.ip();
        if self.guard.is_blocked(ip, now) {
            return AuthOutcome::Forbidden;
        }
        let realm = self.cfg.realm.clone();
        let creds = ["Authorization", "Proxy-Authorization"]
            .iter()
            .flat_map(|h| req.common.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(h)))
            .filter_map(|(_, v)| Credentials::parse(v))
            .find(|c| c.realm == realm);
        let Some(creds) = creds else {
            return AuthOutcome::Challenge { stale: false };
        };
        let password = self.extensions.get(&creds.username).map(|e| e.password.clone());
        let verified = match &password {
            Some(p) if creds.username == ext => creds.verify(req.method.as_str(), p),
            _ => false,
        };
        if !verified {
            self.counters.auth_failures += 1;
            if self.guard.record_failure(ip, now) {
                log::warn!("ALARM: {ip} blocked for repeated SIP authentication failures");
            }
            log::info!("authentication failed for {} from {peer}", creds.username);
            return AuthOutcome::Forbidden;
        }
        match self.nonces.check(&creds.nonce, now, &realm) {
            NonceState::Fresh => {
                self.guard.record_success(ip);
                AuthOutcome::Ok
            }
            // The password was right but the nonce is old or from a previous boot.
            NonceState::Stale | NonceState::Invalid => AuthOutcome::Challenge { stale: true },
        }
    }

    fn challenge(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        stale: bool,
        proxy: bool,
    ) {
        let nonce = self.nonces.issue(now, &self.cfg.realm);
        let (code, header) = if proxy { (407, "Proxy-Authenticate") } else { (401, "WWW-Authenticate") };
        let values = challenges(&self.cfg.realm, &nonce, stale, &self.cfg.auth_algorithms);
        let extra: Vec<(&str, String)> = values.into_iter().map(|v| (header, v)).collect();
        self.reply_status(txn, req, peer, code, &extra, now);
    }

    // ---- REGISTER ---------------------------------------------------------------------------

    fn handle_register(&mut self, now: Instant, peer: Peer, txn: ServerTxnId, req: &Request) {
        let ext = req.common.to.uri.user_unescaped().unwrap_or_default();
        match self.authenticate(now, peer, req, &ext) {
            AuthOutcome::Ok => {}
            AuthOutcome::Challenge { stale } => return self.challenge(now, peer, txn, req, stale, false),
            AuthOutcome::Forbidden => return self.reply_status(txn, req, peer, 403, &[], now),
        }
        let before: Vec<String> = self.registrar.contacts(&ext, now).iter().map(|b| b.uri.clone()).collect();
        match self.registrar.apply(&ext, req, peer, now) {
            Ok(bindings) => {
                let extra: Vec<(&str, String)> = bindings
                    .iter()
                    .map(|b| {
                        let left = b.expires_at.saturating_duration_since(now).as_secs();
                        ("Contact", format!("<{}>;expires={left}", b.uri))
                    })
                    .collect();
                if bindings.is_empty() {
                    log::info!("{ext} unregistered from {peer}");
                } else {
                    log::info!("{ext} registered from {peer} ({} contact(s))", bindings.len());
                }
                self.reply_status(txn, req, peer, 200, &extra, now);
                self.arm_sweep(now);
                self.mwi_registered(now, &ext, &before);
            }
            Err(RegisterError::IntervalTooBrief) => {
                self.reply_status(txn, req, peer, 423, &[("Min-Expires", MIN_EXPIRES_S.to_string())], now)
            }
            Err(RegisterError::BadContact) => self.reply_status(txn, req, peer, 400, &[], now),
            Err(RegisterError::TooManyContacts) => self.reply_status(txn, req, peer, 403, &[], now),
        }
    }

    // ---- responses --------------------------------------------------------------------------

    fn handle_response(&mut self, now: Instant, peer: Peer, resp: Response) {
        // A trunk's registration traffic: routed by the trunk's Call-ID, from its registrar only.
        if let Some(t) = self
            .trunks
            .iter_mut()
            .find(|t| t.call_id() == resp.common.call_id && t.config().registrar == peer.addr)
        {
            t.handle_response(&resp, now);
            self.drain_trunks();
            return;
        }
        // RFC 3261 §18.1.2: a response whose top Via is not ours is discarded silently; answering
        // it (ACK/BYE) would let a spoofed datagram aim the box at a third party.
        let ours = resp.common.top_via().branch().is_some_and(|b| b.starts_with(BRANCH_PREFIX));
        if !ours {
            log::debug!("discarding a response to a request we did not send, from {peer}");
            return;
        }
        match self.client.on_response(&resp, now) {
            ResponseMatch::Deliver { txn, owner } => {
                let purpose = if resp.code >= 200
                    && !(resp.code < 300
                        && matches!(
                            self.purposes.get(&txn),
                            Some(Purpose::Fork { .. } | Purpose::Leg { .. } | Purpose::Supervise { .. })
                        )) {
                    self.purposes.remove(&txn)
                } else {
                    self.purposes.get(&txn).cloned()
                };
                // A non-2xx final to an INVITE is ACKed by the transaction (§17.1.1.3).
                if resp.code >= 300 && resp.common.cseq.method == Method::Invite {
                    if let Some(ack) = self.ack_for_failure(&resp, txn, &purpose) {
                        self.client.set_ack(txn, ack.clone());
                        self.transmit(peer, ack);
                    }
                }
                match purpose {
                    Some(p) => self.on_client_response(p, txn, owner, peer, &resp, now),
                    None if resp.code < 300
                        && resp.code >= 200
                        && resp.common.cseq.method == Method::Invite =>
                    {
                        self.ack_and_bye_orphan(now, peer, &resp)
                    }
                    None => {}
                }
            }
            ResponseMatch::Resend(p, data) => self.transmit(p, data),
            ResponseMatch::Absorbed => {
                // A 2xx retransmission for a call that is gone: ACK and BYE it so the phone stops.
                if (200..300).contains(&resp.code) && resp.common.cseq.method == Method::Invite {
                    self.ack_and_bye_orphan(now, peer, &resp);
                }
            }
        }
    }

    /// The ACK for a non-2xx final response to an INVITE we sent (RFC 3261 §17.1.1.3): same
    /// branch, Request-URI, From, Call-ID and CSeq number; To from the response.
    fn ack_for_failure(
        &self,
        resp: &Response,
        txn: ClientTxnId,
        purpose: &Option<Purpose>,
    ) -> Option<Vec<u8>> {
        // From the transaction's own request: the call may already be gone (CANCEL race).
        let _ = purpose;
        let request_uri = self.client.request_uri(txn)?;
        let via = resp.common.top_via();
        Some(
            Writer::request("ACK", &request_uri)
                .header("Via", &via.raw)
                .header("Max-Forwards", 70)
                .header("From", resp.common.header("From").unwrap_or_default())
                .header("To", resp.common.header("To").unwrap_or_default())
                .header("Call-ID", &resp.common.call_id)
                .header("CSeq", format_args!("{} ACK", resp.common.cseq.seq))
                .finish(),
        )
    }

    /// A 2xx arrived for an INVITE whose call already ended: complete and end that dialog.
    fn ack_and_bye_orphan(&mut self, now: Instant, peer: Peer, resp: &Response) {
        let target = message::NameAddr::parse(resp.common.header("Contact").unwrap_or_default())
            .map(|c| c.uri.raw)
            .unwrap_or_else(|| resp.common.to.uri.raw.clone());
        let from = resp.common.header("From").unwrap_or_default().to_string();
        let to = resp.common.header("To").unwrap_or_default().to_string();
        let branch = self.branch();
        let ack = Writer::request("ACK", &target)
            .header("Via", self.via_for(&peer, &branch))
            .header("Max-Forwards", 70)
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &resp.common.call_id)
            .header("CSeq", format_args!("{} ACK", resp.common.cseq.seq))
            .finish();
        self.transmit(peer, ack);
        let branch = self.branch();
        let bye = Writer::request("BYE", &target)
            .header("Via", self.via_for(&peer, &branch))
            .header("Max-Forwards", 70)
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &resp.common.call_id)
            .header("CSeq", format_args!("{} BYE", resp.common.cseq.seq.saturating_add(1)))
            .header("User-Agent", writer::SERVER)
            .finish();
        self.client.start(&branch, false, bye.clone(), peer, 0, now);
        self.transmit(peer, bye);
    }
}
