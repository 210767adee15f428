//! SIP trunks to a provider, sans-IO: the registration client (outbound REGISTER with digest) and
//! the keepalive of IP-authenticated peers. See `docs/trunks.md`.
//!
//! The public interface is: [`TrunkConfig`], [`TrunkMode`], [`Trunk`], [`TrunkState`],
//! [`FailReason`], [`ConfigError`] and the timing constants.
//!
//! Contract (rule 2 of the style notes): feed [`Trunk::start`], [`Trunk::handle_timeout`],
//! [`Trunk::handle_response`] and [`Trunk::unregister`] with `now`; after each, drain
//! [`Trunk::poll_transmit`] until `None`, then arm a timer at [`Trunk::poll_timeout`].
//! The trunk keeps its own non-INVITE client transaction (RFC 3261 §17.1.2: Timer E
//! retransmission over UDP, Timer F timeout), one at a time.

pub(crate) mod digest;

use crate::sip::message::{parse_delta_seconds, Method, NameAddr, Response, Uri};
use crate::sip::transaction::{T1, T2, TIMEOUT_64T1};
use crate::sip::writer::{Writer, ALLOW, SERVER};
use crate::sip::Transport;
use digest::Challenge;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// First retry delay after a failure; doubles per consecutive failure.
pub const BACKOFF_MIN: Duration = Duration::from_secs(30);
/// Longest retry delay: a provider outage is noticed within 15 minutes of its end.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);
/// No response within this (64·T1, RFC 3261 Timer F) fails the request.
pub const REQUEST_TIMEOUT: Duration = TIMEOUT_64T1;
/// Consecutive unanswered OPTIONS before an IP-authenticated trunk is Down.
pub const MISSED_KEEPALIVES_DOWN: u32 = 3;
/// Shortest keepalive interval: a config typo (0, 1) must not flood the provider.
pub const MIN_KEEPALIVE: Duration = Duration::from_secs(5);
/// Shortest refresh interval: a registrar granting 1 s must not make us loop.
pub const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Longest expiry we honour; refreshing at least every 12 h notices a provider that lost state.
pub const MAX_EXPIRES_S: u32 = 86_400;
/// Challenges answered per registration attempt; a server issuing a new nonce on every try
/// must not keep us in a loop.
pub const MAX_AUTH_ROUNDS: u32 = 3;
/// Queued outgoing messages; one transaction is in flight at a time, so a few suffice.
const MAX_QUEUED: usize = 8;
/// Magic cookie of RFC 3261 §8.1.1.7 plus our mark.
const BRANCH_PREFIX: &str = "z9hG4bK-hkt";

/// How the provider knows us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkMode {
    /// We REGISTER with digest credentials.
    Register,
    /// The provider trusts our address; we only send OPTIONS keepalives.
    IpAuthenticated,
}

/// One trunk's configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// The name shown in the console and logs.
    pub name: String,
    /// Where requests go (the driver resolves names before building the trunk).
    pub registrar: SocketAddr,
    /// The provider's domain: Request-URI `sip:<domain>` and the host of our AOR.
    pub domain: String,
    /// The user part of our AOR (usually the account or main number).
    pub username: String,
    /// The digest username, when it differs from `username`.
    pub auth_username: Option<String>,
    /// The digest password.
    pub password: String,
    /// The expiry we ask for, in seconds.
    pub expires_s: u32,
    /// UDP or TCP.
    pub transport: Transport,
    /// Register or IP-authenticated.
    pub mode: TrunkMode,
    /// OPTIONS interval of an IP-authenticated trunk, in seconds.
    pub keepalive_s: u32,
}

impl fmt::Debug for TrunkConfig {
    // Never print the password (logs and console dumps).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("registrar", &self.registrar)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("password", &"<redacted>")
            .field("expires_s", &self.expires_s)
            .field("transport", &self.transport)
            .field("mode", &self.mode)
            .field("keepalive_s", &self.keepalive_s)
            .finish()
    }
}

/// A configuration the trunk cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// This field is empty or holds characters that cannot go into a SIP header.
    BadField(&'static str),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadField(name) => {
                write!(f, "trunk field `{name}` is empty or has invalid characters")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a registration failed (shown in the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// No final response within [`REQUEST_TIMEOUT`].
    Timeout,
    /// The provider rejected our credentials (same nonce challenged twice, not stale).
    WrongCredentials,
    /// A challenge we cannot answer (scheme, algorithm or qop), or too many challenge rounds.
    UnusableChallenge,
    /// 423 without a usable, larger Min-Expires.
    IntervalTooBrief,
    /// A 200 that granted no time.
    NothingGranted,
    /// Any other final status.
    Rejected(u16),
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Timeout => f.write_str("no response"),
            FailReason::WrongCredentials => f.write_str("wrong credentials"),
            FailReason::UnusableChallenge => f.write_str("unusable challenge"),
            FailReason::IntervalTooBrief => f.write_str("interval too brief"),
            FailReason::NothingGranted => f.write_str("registrar granted 0 s"),
            FailReason::Rejected(code) => write!(f, "rejected {code}"),
        }
    }
}

/// What the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkState {
    /// Not started, or unregistered on shutdown.
    Unregistered,
    /// First REGISTER (or a retry) in flight.
    Registering,
    /// The provider holds our binding until `expires_at`.
    Registered {
        /// When the binding runs out if not refreshed.
        expires_at: Instant,
    },
    /// The last attempt failed; the next one is at `retry_at`.
    Failed {
        /// Why.
        reason: FailReason,
        /// The next attempt.
        retry_at: Instant,
    },
    /// IP-authenticated: the last OPTIONS was answered.
    Up,
    /// IP-authenticated: not answered yet, or [`MISSED_KEEPALIVES_DOWN`] OPTIONS in a row missed.
    Down,
}

/// The timers (rule 4: timers are data).
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// RFC 3261 Timer E: retransmit the request over UDP.
    Retransmit = 0,
    /// RFC 3261 Timer F: give up on the request.
    Timeout = 1,
    /// The next REGISTER (refresh or retry) or the next OPTIONS.
    Next = 2,
}
const TIMER_COUNT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// REGISTER asking for this many seconds (0 = unregister).
    Register(u32),
    Options,
}

/// The one client transaction in flight.
#[derive(Debug)]
struct Pending {
    kind: Kind,
    cseq: u32,
    branch: String,
    bytes: Vec<u8>,
    /// Timer E interval.
    interval: Duration,
    /// The nonce the request carried credentials for, if any.
    nonce: Option<String>,
}

/// A trunk's registration / keepalive client. See the module doc for the contract.
#[derive(Debug)]
pub struct Trunk {
    cfg: TrunkConfig,
    local: String,
    secret: [u8; 32],
    counter: u64,
    call_id: String,
    from_tag: String,
    cseq: u32,
    state: TrunkState,
    pending: Option<Pending>,
    timers: [Option<Instant>; TIMER_COUNT],
    queue: VecDeque<(SocketAddr, Vec<u8>)>,
    /// The expiry to ask for (raised by 423).
    expires_s: u32,
    /// The challenge to answer pre-emptively on refreshes, with its nonce count.
    challenge: Option<(Challenge, bool, u32)>,
    /// Challenges answered in the current attempt.
    auth_rounds: u32,
    /// Consecutive failures (backoff exponent).
    failures: u32,
    /// Consecutive missed OPTIONS.
    missed: u32,
    /// Set by [`Trunk::unregister`]: nothing more is scheduled.
    shut_down: bool,
}

fn header_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'@' | b';' | b',' | b'\\'))
}

impl Trunk {
    /// A trunk that does nothing until [`Trunk::start`]. `local_contact` is our `host:port` as the
    /// provider reaches it (Via sent-by and Contact); `secret` keys tags, branches and cnonces.
    pub fn new(cfg: TrunkConfig, local_contact: &str, secret: [u8; 32]) -> Result<Trunk, ConfigError> {
        for (name, v) in
            [("name", &cfg.name), ("domain", &cfg.domain), ("local_contact", &local_contact.to_string())]
        {
            if !header_safe(v) {
                return Err(ConfigError::BadField(name));
            }
        }
        if cfg.mode == TrunkMode::Register {
            if !header_safe(&cfg.username) {
                return Err(ConfigError::BadField("username"));
            }
            if cfg.auth_username.as_deref().is_some_and(|u| !header_safe(u)) {
                return Err(ConfigError::BadField("auth_username"));
            }
            if cfg.expires_s == 0 {
                return Err(ConfigError::BadField("expires_s"));
            }
        }
        let expires_s = cfg.expires_s.min(MAX_EXPIRES_S);
        let mut t = Trunk {
            cfg,
            local: local_contact.to_string(),
            secret,
            counter: 0,
            call_id: String::new(),
            from_tag: String::new(),
            cseq: 0,
            state: TrunkState::Unregistered,
            pending: None,
            timers: [None; TIMER_COUNT],
            queue: VecDeque::new(),
            expires_s,
            challenge: None,
            auth_rounds: 0,
            failures: 0,
            missed: 0,
            shut_down: false,
        };
        t.call_id = format!("{}@hakoden", t.token());
        t.from_tag = t.token();
        Ok(t)
    }

    /// The configuration.
    pub fn config(&self) -> &TrunkConfig {
        &self.cfg
    }

    /// The state for the console.
    pub fn state(&self) -> TrunkState {
        self.state
    }

    /// The Call-ID of every request this trunk sends (the driver routes responses by it).
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Starts registering (or keepalives) now.
    pub fn start(&mut self, now: Instant) {
        if self.shut_down || self.timers[Timer::Next as usize].is_some() || self.pending.is_some() {
            return;
        }
        self.state = match self.cfg.mode {
            TrunkMode::Register => TrunkState::Registering,
            TrunkMode::IpAuthenticated => TrunkState::Down,
        };
        self.next_action(now);
    }

    /// Unregisters (REGISTER with Expires: 0) and schedules nothing more; on an IP-authenticated
    /// trunk it only stops the keepalives.
    pub fn unregister(&mut self, now: Instant) {
        let was_registered = matches!(self.state, TrunkState::Registered { .. } | TrunkState::Registering);
        self.shut_down = true;
        self.pending = None;
        self.timers = [None; TIMER_COUNT];
        self.state = TrunkState::Unregistered;
        if self.cfg.mode == TrunkMode::Register && was_registered {
            self.auth_rounds = 0;
            self.send(Kind::Register(0), now);
        }
    }

    /// The next message to send: `(destination, bytes)`.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.queue.pop_front()
    }

    /// When [`Trunk::handle_timeout`] wants to run next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// Runs every timer due at `now` (idempotent).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers[Timer::Timeout as usize].is_some_and(|t| t <= now) {
            self.timers[Timer::Timeout as usize] = None;
            self.timers[Timer::Retransmit as usize] = None;
            if let Some(p) = self.pending.take() {
                match p.kind {
                    // RFC 3261 §17.1.2.2: Timer F fires, the transaction is terminated (408 to the TU).
                    Kind::Register(0) => {}
                    Kind::Register(_) => self.fail(FailReason::Timeout, now, None),
                    Kind::Options => self.missed_keepalive(),
                }
            }
        }
        if self.timers[Timer::Retransmit as usize].is_some_and(|t| t <= now) {
            if let Some(p) = &mut self.pending {
                // Timer E doubles up to T2 (RFC 3261 §17.1.2.2).
                p.interval = (p.interval * 2).min(T2);
                self.timers[Timer::Retransmit as usize] = Some(now + p.interval);
                let bytes = p.bytes.clone();
                self.push(bytes);
            } else {
                self.timers[Timer::Retransmit as usize] = None;
            }
        }
        if self.timers[Timer::Next as usize].is_some_and(|t| t <= now) {
            self.timers[Timer::Next as usize] = None;
            if !self.shut_down {
                self.next_action(now);
            }
        }
    }

    /// Feeds a response; ones that are not for our request in flight are ignored.
    pub fn handle_response(&mut self, resp: &Response, now: Instant) {
        let c = &resp.common;
        let Some(p) = &self.pending else {
            return;
        };
        let method_ok = match p.kind {
            Kind::Register(_) => c.cseq.method == Method::Register,
            Kind::Options => c.cseq.method == Method::Options,
        };
        if c.call_id != self.call_id
            || c.cseq.seq != p.cseq
            || !method_ok
            || c.top_via().branch() != Some(&p.branch)
        {
            return;
        }
        if resp.code < 200 {
            // RFC 3261 §17.1.2.2: in Proceeding, retransmit at T2.
            if let Some(p) = &mut self.pending {
                p.interval = T2;
            }
            return;
        }
        let Some(p) = self.pending.take() else {
            return;
        };
        self.timers[Timer::Retransmit as usize] = None;
        self.timers[Timer::Timeout as usize] = None;
        match p.kind {
            Kind::Options => {
                // Any final answer, even 404/405, proves the peer is there.
                self.missed = 0;
                self.state = TrunkState::Up;
            }
            Kind::Register(asked) => self.register_answered(resp, asked, p.nonce, now),
        }
    }

    fn register_answered(&mut self, resp: &Response, asked: u32, nonce: Option<String>, now: Instant) {
        let unregistering = asked == 0;
        match resp.code {
            200..=299 => {
                if unregistering {
                    return;
                }
                let granted = self.granted_expires(resp, asked).min(MAX_EXPIRES_S);
                if granted == 0 {
                    return self.fail(FailReason::NothingGranted, now, None);
                }
                self.failures = 0;
                self.auth_rounds = 0;
                let life = Duration::from_secs(u64::from(granted));
                self.state = TrunkState::Registered { expires_at: now + life };
                self.timers[Timer::Next as usize] = Some(now + (life / 2).max(MIN_REFRESH));
            }
            401 | 407 => {
                let proxy = resp.code == 407;
                let name = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
                let challenge = resp
                    .common
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .find_map(|(_, v)| Challenge::parse(v));
                let Some(ch) = challenge else {
                    return self.fail_unless_unregistering(unregistering, FailReason::UnusableChallenge, now);
                };
                // RFC 3261 §22.2: a second challenge for the same nonce, not stale, means the
                // credentials are wrong; resending would only repeat the failure.
                if nonce.as_deref() == Some(ch.nonce.as_str()) && !ch.stale {
                    self.challenge = None;
                    return self.fail_unless_unregistering(unregistering, FailReason::WrongCredentials, now);
                }
                self.auth_rounds += 1;
                if self.auth_rounds > MAX_AUTH_ROUNDS {
                    return self.fail_unless_unregistering(unregistering, FailReason::UnusableChallenge, now);
                }
                self.challenge = Some((ch, proxy, 0));
                self.send(Kind::Register(asked), now);
            }
            423 if !unregistering => {
                // RFC 3261 §10.2.8: retry with at least Min-Expires.
                let min = resp.common.header("Min-Expires").and_then(parse_delta_seconds);
                match min {
                    Some(m) if m > self.expires_s && m <= MAX_EXPIRES_S => {
                        self.expires_s = m;
                        self.send(Kind::Register(m), now);
                    }
                    _ => self.fail(FailReason::IntervalTooBrief, now, None),
                }
            }
            code => {
                let retry_after = resp
                    .common
                    .header("Retry-After")
                    .and_then(|v| parse_delta_seconds(v.split(';').next().unwrap_or("")));
                self.fail_unless_unregistering_with(
                    unregistering,
                    FailReason::Rejected(code),
                    now,
                    retry_after,
                );
            }
        }
    }

    /// The expiry the registrar granted: our Contact's `expires` in the 200, else `Expires`,
    /// else what we asked (RFC 3261 §10.2.4).
    fn granted_expires(&self, resp: &Response, asked: u32) -> u32 {
        let ours = self.contact_uri();
        let ours = Uri::parse(&ours);
        let from_contact = resp
            .common
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Contact"))
            .flat_map(|(_, v)| crate::sip::message::split_unquoted(v, b','))
            .filter_map(NameAddr::parse)
            .find(|na| {
                ours.as_ref().is_some_and(|o| {
                    na.uri.user == o.user
                        && na.uri.host.eq_ignore_ascii_case(&o.host)
                        && na.uri.port == o.port
                })
            })
            .and_then(|na| na.param("expires").and_then(parse_delta_seconds));
        from_contact.or_else(|| resp.common.header("Expires").and_then(parse_delta_seconds)).unwrap_or(asked)
    }

    fn fail_unless_unregistering(&mut self, unregistering: bool, reason: FailReason, now: Instant) {
        self.fail_unless_unregistering_with(unregistering, reason, now, None);
    }

    fn fail_unless_unregistering_with(
        &mut self,
        unregistering: bool,
        reason: FailReason,
        now: Instant,
        after: Option<u32>,
    ) {
        if !unregistering {
            self.fail(reason, now, after);
        }
    }

    /// Failed, with the next attempt after the backoff (or the server's Retry-After, clamped).
    fn fail(&mut self, reason: FailReason, now: Instant, retry_after_s: Option<u32>) {
        self.failures = self.failures.saturating_add(1);
        self.auth_rounds = 0;
        let delay = retry_after_s
            .map(|s| Duration::from_secs(u64::from(s)).clamp(BACKOFF_MIN, BACKOFF_MAX))
            .unwrap_or_else(|| backoff(self.failures));
        let retry_at = now + delay;
        self.state = TrunkState::Failed { reason, retry_at };
        self.timers[Timer::Next as usize] = Some(retry_at);
    }

    fn missed_keepalive(&mut self) {
        self.missed = self.missed.saturating_add(1);
        if self.missed >= MISSED_KEEPALIVES_DOWN {
            self.state = TrunkState::Down;
        }
    }

    /// The Next timer fired (or start): refresh/retry the registration, or send the next OPTIONS.
    fn next_action(&mut self, now: Instant) {
        match self.cfg.mode {
            TrunkMode::Register => {
                if let TrunkState::Failed { .. } | TrunkState::Unregistered = self.state {
                    self.state = TrunkState::Registering;
                }
                self.auth_rounds = 0;
                self.send(Kind::Register(self.expires_s), now);
            }
            TrunkMode::IpAuthenticated => {
                if self.pending.take().is_some() {
                    self.missed_keepalive();
                }
                self.send(Kind::Options, now);
                let every = Duration::from_secs(u64::from(self.cfg.keepalive_s)).max(MIN_KEEPALIVE);
                self.timers[Timer::Next as usize] = Some(now + every);
            }
        }
    }

    fn token(&mut self) -> String {
        self.counter += 1;
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(self.cfg.name.as_bytes());
        h.update(self.counter.to_be_bytes());
        let d = h.finalize();
        digest::hex(d.get(..8).unwrap_or_default())
    }

    fn aor(&self) -> String {
        match self.cfg.mode {
            TrunkMode::Register => format!("sip:{}@{}", self.cfg.username, self.cfg.domain),
            TrunkMode::IpAuthenticated => format!("sip:hakoden@{}", self.local),
        }
    }

    fn contact_uri(&self) -> String {
        match self.cfg.transport {
            Transport::Udp => format!("sip:{}@{}", self.cfg.username, self.local),
            Transport::Tcp => format!("sip:{}@{};transport=tcp", self.cfg.username, self.local),
        }
    }

    /// Builds and queues a new request (new CSeq and branch, same Call-ID and From tag).
    fn send(&mut self, kind: Kind, now: Instant) {
        self.cseq = self.cseq.wrapping_add(1) & 0x7fff_ffff;
        let branch = format!("{BRANCH_PREFIX}{}", self.token());
        let uri = format!("sip:{}", self.cfg.domain);
        let method = match kind {
            Kind::Register(_) => "REGISTER",
            Kind::Options => "OPTIONS",
        };
        let to = match kind {
            Kind::Register(_) => self.aor(),
            Kind::Options => uri.clone(),
        };
        let mut w = Writer::request(method, &uri)
            .header(
                "Via",
                format_args!("SIP/2.0/{} {};branch={branch};rport", self.cfg.transport.as_str(), self.local),
            )
            .header("Max-Forwards", 70)
            .header("From", format_args!("<{}>;tag={}", self.aor(), self.from_tag))
            .header("To", format_args!("<{to}>"))
            .header("Call-ID", &self.call_id)
            .header("CSeq", format_args!("{} {method}", self.cseq));
        let mut nonce = None;
        if let Kind::Register(expires) = kind {
            w = w
                .header("Contact", format_args!("<{}>", self.contact_uri()))
                .header("Expires", expires)
                .header("Allow", ALLOW);
            let cnonce = self.token();
            if let Some((ch, proxy, nc)) = &mut self.challenge {
                *nc = nc.wrapping_add(1);
                let user = self.cfg.auth_username.as_deref().unwrap_or(&self.cfg.username);
                let value = ch.answer("REGISTER", &uri, user, &self.cfg.password, *nc, &cnonce);
                let name = if *proxy { "Proxy-Authorization" } else { "Authorization" };
                w = w.header(name, value);
                nonce = Some(ch.nonce.clone());
            }
        }
        let bytes = w.header("User-Agent", SERVER).finish();
        self.push(bytes.clone());
        if !self.cfg.transport.is_reliable() {
            self.timers[Timer::Retransmit as usize] = Some(now + T1);
        } else {
            self.timers[Timer::Retransmit as usize] = None;
        }
        self.timers[Timer::Timeout as usize] = Some(now + REQUEST_TIMEOUT);
        self.pending = Some(Pending { kind, cseq: self.cseq, branch, bytes, interval: T1, nonce });
    }

    fn push(&mut self, bytes: Vec<u8>) {
        if self.queue.len() >= MAX_QUEUED {
            // The driver is not draining; the oldest copy is the least useful.
            self.queue.pop_front();
        }
        self.queue.push_back((self.cfg.registrar, bytes));
    }
}

/// The retry delay after `failures` consecutive failures: 30 s, 60 s, ... capped at 15 min.
fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(1 << exp).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests;
