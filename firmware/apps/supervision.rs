//! Supervision (issue 6; seed 004 §2.5): a supervisor listens to, whispers to, or barges into
//! an agent's call.
//!
//! Started two ways:
//! - by dial code from the supervisor's phone: [`LISTEN_CODE`] (`995`), [`WHISPER_CODE`]
//!   (`994`) or [`BARGE_CODE`] (`996`) followed by the agent's extension ([`parse_dial_code`]);
//!   the supervisor is already on the line, so the session joins at once;
//! - by the API: the box first rings the supervisor's phone ([`SupervisionOutput::RingSupervisor`])
//!   and joins when it answers.
//!
//! During the session the supervisor's keys switch mode: `4` listen, `5` whisper, `6` barge.
//!
//! Contract (rule 2 of the style notes): [`SupervisionSession::start`] checks the permission and
//! the target and either refuses with a typed [`Refusal`] (nothing was done to anyone) or returns
//! a session. Feed it [`SupervisionSession::handle_supervisor_answered`],
//! [`SupervisionSession::handle_digit`], [`SupervisionSession::handle_supervisor_hangup`],
//! [`SupervisionSession::handle_target_call_ended`], [`SupervisionSession::stop`] and
//! [`SupervisionSession::handle_timeout`], each with `now`; after each call drain
//! [`SupervisionSession::poll_output`] until `None` and arm one timer at
//! [`SupervisionSession::poll_timeout`].
//!
//! The agent and the caller are never disturbed by a failure: every [`SupervisionOutput`]
//! concerns the supervisor's leg only (ring it, put it in the agent's room in a
//! [`MonitorMode`], change its mode, hang it up). There is no output that could hold, mute or
//! drop the agent's or the caller's leg, so no failure path can reach them.
//!
//! The public interface is: [`parse_dial_code`], [`SupervisionSession`], [`SupervisionOutput`],
//! [`SupervisionEvent`], [`EventKind`], [`EndReason`], [`Refusal`], [`Origin`], [`TargetState`],
//! [`SupervisorRoles`], [`Permission`], [`Scope`], and the codes and limits. Documentation:
//! `docs/supervision.md`.
use crate::media::audio::mixer::MonitorMode;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

/// Dial code to listen: `995` + extension.
pub const LISTEN_CODE: &str = "995";

/// Dial code to whisper to the agent: `994` + extension.
pub const WHISPER_CODE: &str = "994";

/// Dial code to barge into the call: `996` + extension.
pub const BARGE_CODE: &str = "996";

/// Longest extension accepted after a dial code. Extensions on the appliance are 2-6 digits;
/// 8 leaves room without letting a long external number pass as an extension.
pub const MAX_EXTENSION_DIGITS: usize = 8;

/// How long an API-started session rings the supervisor's phone before giving up: about six
/// rings, like an unanswered extension call.
pub const SUPERVISOR_RING_TIMEOUT: Duration = Duration::from_secs(30);

/// Most supervisors in [`SupervisorRoles`]: a call center has a few per team; the bound keeps
/// the table small on the appliance.
pub const MAX_SUPERVISORS: usize = 256;

/// Most agents in one supervisor's [`Scope::Agents`] (the spec's monitoring targets).
pub const MAX_SCOPE_AGENTS: usize = 1024;

/// Prompt the engine plays to the supervisor (only) before hanging up a dial-code request that
/// was refused.
pub const REFUSED_PROMPT: &str = "common.sorry_error";

/// Prompt for a refused request whose target is not in a call.
pub const TARGET_IDLE_PROMPT: &str = "call.is_not_available";

/// A supervision mode. Maps one-to-one onto the mixer's [`MonitorMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Hear agent and caller; nobody hears the supervisor (code `995`, key `4`).
    Listen,
    /// Hear both; only the agent hears the supervisor (code `994`, key `5`).
    Whisper,
    /// Hear both; both hear the supervisor (code `996`, key `6`).
    Barge,
}

impl Mode {
    /// The mixer's monitor mode for this supervision mode.
    pub fn monitor_mode(self) -> MonitorMode {
        match self {
            Mode::Listen => MonitorMode::Listen,
            Mode::Whisper => MonitorMode::Whisper,
            Mode::Barge => MonitorMode::Barge,
        }
    }

    /// The in-session key that switches to a mode (`4`, `5`, `6`).
    pub fn from_key(key: char) -> Option<Mode> {
        match key {
            '4' => Some(Mode::Listen),
            '5' => Some(Mode::Whisper),
            '6' => Some(Mode::Barge),
            _ => None,
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Splits a dialled string into a mode and the target extension: `995201` → (listen, `201`).
/// `None` when it is not a supervision code or the extension is not 1 to
/// [`MAX_EXTENSION_DIGITS`] digits.
pub fn parse_dial_code(dialled: &str) -> Option<(Mode, &str)> {
    let (mode, rest) = [(LISTEN_CODE, Mode::Listen), (WHISPER_CODE, Mode::Whisper), (BARGE_CODE, Mode::Barge)]
        .into_iter()
        .find_map(|(code, mode)| dialled.strip_prefix(code).map(|rest| (mode, rest)))?;
    let ok = !rest.is_empty() && rest.len() <= MAX_EXTENSION_DIGITS && rest.bytes().all(|b| b.is_ascii_digit());
    ok.then_some((mode, rest))
}

// ---------------------------------------------------------------------------------------------
// Permissions.

/// Which agents a supervisor may supervise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everyone.
    All,
    /// Only these agents (extensions): the spec's monitoring targets (seed 004 §2.3).
    Agents(BTreeSet<String>),
}

/// What one supervisor may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    modes: u8,
    scope: Scope,
}

impl Permission {
    /// May use `modes` on agents in `scope`. `None` if the scope is larger than
    /// [`MAX_SCOPE_AGENTS`].
    pub fn new(modes: &[Mode], scope: Scope) -> Option<Permission> {
        if let Scope::Agents(agents) = &scope {
            if agents.len() > MAX_SCOPE_AGENTS {
                return None;
            }
        }
        Some(Permission { modes: modes.iter().fold(0, |acc, m| acc | m.bit()), scope })
    }

    /// Whether the permission allows `mode`.
    pub fn allows(&self, mode: Mode) -> bool {
        self.modes & mode.bit() != 0
    }

    fn covers(&self, target: &str) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Agents(agents) => agents.contains(target),
        }
    }
}

/// The supervisor role set: who may supervise whom, in which modes. Users absent from it are
/// not supervisors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisorRoles {
    roles: BTreeMap<String, Permission>,
}

impl SupervisorRoles {
    /// No supervisors.
    pub fn new() -> SupervisorRoles {
        SupervisorRoles::default()
    }

    /// Gives `supervisor` (an extension or user name) a permission, replacing any earlier one.
    /// Refused (`false`) when the table already holds [`MAX_SUPERVISORS`] others.
    pub fn grant(&mut self, supervisor: &str, permission: Permission) -> bool {
        if !self.roles.contains_key(supervisor) && self.roles.len() >= MAX_SUPERVISORS {
            return false;
        }
        self.roles.insert(supervisor.to_string(), permission);
        true
    }

    /// Takes the role away.
    pub fn revoke(&mut self, supervisor: &str) {
        self.roles.remove(supervisor);
    }

    /// Checks that `supervisor` may use `mode` on `target`.
    pub fn check(&self, supervisor: &str, target: &str, mode: Mode) -> Result<(), Refusal> {
        let permission = self.roles.get(supervisor).ok_or(Refusal::NotASupervisor)?;
        if !permission.covers(target) {
            return Err(Refusal::OutOfScope);
        }
        if !permission.allows(mode) {
            return Err(Refusal::ModeNotAllowed(mode));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes.

/// Why a supervision request (or a mode switch) was refused. Nothing was done to any leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The requester has no supervisor role (HTTP 403).
    NotASupervisor,
    /// The target is not among the supervisor's monitoring targets (HTTP 403).
    OutOfScope,
    /// The supervisor's role does not include this mode (HTTP 403).
    ModeNotAllowed(Mode),
    /// No such extension or agent (HTTP 404).
    UnknownTarget,
    /// The target is not in a call: listen and whisper exist only during 通話中 (HTTP 409).
    TargetNotInCall,
    /// A supervisor cannot supervise their own call (HTTP 409).
    OwnCall,
}

impl Refusal {
    /// The HTTP status the API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            Refusal::NotASupervisor | Refusal::OutOfScope | Refusal::ModeNotAllowed(_) => 403,
            Refusal::UnknownTarget => 404,
            Refusal::TargetNotInCall | Refusal::OwnCall => 409,
        }
    }

    /// The prompt played to the supervisor's phone (only) when a dial code is refused.
    pub fn prompt(self) -> &'static str {
        match self {
            Refusal::TargetNotInCall => TARGET_IDLE_PROMPT,
            _ => REFUSED_PROMPT,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotASupervisor => write!(f, "not a supervisor"),
            Refusal::OutOfScope => write!(f, "the agent is not among this supervisor's monitoring targets"),
            Refusal::ModeNotAllowed(mode) => write!(f, "{mode:?} is not allowed for this supervisor"),
            Refusal::UnknownTarget => write!(f, "no such extension"),
            Refusal::TargetNotInCall => write!(f, "the agent is not in a call"),
            Refusal::OwnCall => write!(f, "a supervisor cannot supervise their own call"),
        }
    }
}

impl std::error::Error for Refusal {}

/// What the engine knows about the target when a request arrives or the supervisor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// No such extension.
    Unknown,
    /// Registered (or not) but in no answered call.
    NotInCall,
    /// In an answered call whose room the supervisor can join.
    InCall,
}

/// How the session was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A dial code from the supervisor's phone; the supervisor's leg is already answered.
    DialCode,
    /// The API; the box must ring the supervisor first.
    Api,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The supervisor hung up.
    SupervisorHungUp,
    /// The agent's call ended.
    TargetCallEnded,
    /// Stopped through the API.
    Stopped,
    /// The supervisor's phone did not answer within [`SUPERVISOR_RING_TIMEOUT`] (API only).
    SupervisorNoAnswer,
    /// The supervisor's phone could not be rung (busy, unregistered; API only).
    SupervisorUnreachable,
    /// The agent's call ended while the supervisor's phone was ringing (API only).
    TargetNotInCall,
}

/// What happened, for the call-center event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The supervisor joined the agent's call.
    Started {
        /// The first mode.
        mode: Mode,
    },
    /// The supervisor switched mode.
    Switched {
        /// The mode before.
        from: Mode,
        /// The mode after.
        to: Mode,
    },
    /// A mode switch was refused; the mode did not change.
    SwitchRefused {
        /// The mode asked for.
        mode: Mode,
        /// Why.
        reason: Refusal,
    },
    /// The session ended.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

/// One event-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionEvent {
    /// When it happened.
    pub at: Instant,
    /// The supervisor.
    pub supervisor: String,
    /// The supervised agent.
    pub target: String,
    /// What happened.
    pub kind: EventKind,
}

/// What the session asks the engine to do. Every variant acts on the supervisor's leg only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisionOutput {
    /// Ring the supervisor's phone (API start); report [`SupervisionSession::handle_supervisor_answered`]
    /// or [`SupervisionSession::handle_supervisor_unreachable`].
    RingSupervisor,
    /// Stop ringing the supervisor's phone.
    CancelRing,
    /// Put the supervisor's leg into the agent's room: `Mixer::monitor(supervisor, agent, mode)`.
    Join {
        /// The mixer mode.
        mode: MonitorMode,
    },
    /// Change the supervisor's mode: `Mixer::monitor(supervisor, agent, mode)` again.
    SetMode {
        /// The mixer mode.
        mode: MonitorMode,
    },
    /// Remove the supervisor's leg from the room (if joined) and hang it up.
    HangUpSupervisor,
    /// For the call-center event log.
    Event(SupervisionEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// API start: the supervisor's phone rings.
    Ringing { until: Instant },
    /// In the agent's room.
    Joined,
    Done,
}

/// One supervisor supervising one agent.
#[derive(Debug)]
pub struct SupervisionSession {
    supervisor: String,
    target: String,
    mode: Mode,
    state: State,
    out: VecDeque<SupervisionOutput>,
}

impl SupervisionSession {
    /// Checks a request and starts the session, or refuses it with nothing done to any leg.
    /// On a refused dial code the engine plays [`Refusal::prompt`] to the supervisor's call and
    /// hangs that call up; on a refused API request it answers [`Refusal::http_status`].
    pub fn start(
        now: Instant,
        origin: Origin,
        supervisor: &str,
        target: &str,
        mode: Mode,
        roles: &SupervisorRoles,
        target_state: TargetState,
    ) -> Result<SupervisionSession, Refusal> {
        roles.check(supervisor, target, mode)?;
        if supervisor == target {
            return Err(Refusal::OwnCall);
        }
        match target_state {
            TargetState::Unknown => return Err(Refusal::UnknownTarget),
            TargetState::NotInCall => return Err(Refusal::TargetNotInCall),
            TargetState::InCall => {}
        }
        let mut session = SupervisionSession {
            supervisor: supervisor.to_string(),
            target: target.to_string(),
            mode,
            state: State::Done,
            out: VecDeque::new(),
        };
        match origin {
            Origin::DialCode => session.join(now),
            Origin::Api => {
                session.state = State::Ringing { until: now + SUPERVISOR_RING_TIMEOUT };
                session.out.push_back(SupervisionOutput::RingSupervisor);
            }
        }
        Ok(session)
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &str {
        &self.supervisor
    }

    /// The supervised agent.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// True once the session has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<SupervisionOutput> {
        self.out.pop_front()
    }

    /// When to call [`SupervisionSession::handle_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Ringing { until } => Some(until),
            _ => None,
        }
    }

    /// The supervisor's phone answered (API start). The agent may have hung up meanwhile, so
    /// the engine passes the target's state again.
    pub fn handle_supervisor_answered(&mut self, now: Instant, target_state: TargetState) {
        if !matches!(self.state, State::Ringing { .. }) {
            return;
        }
        if target_state == TargetState::InCall {
            self.join(now);
        } else {
            self.end(now, EndReason::TargetNotInCall, SupervisionOutput::HangUpSupervisor);
        }
    }

    /// The supervisor's phone could not be rung (busy, unregistered, rejected).
    pub fn handle_supervisor_unreachable(&mut self, now: Instant) {
        if matches!(self.state, State::Ringing { .. }) {
            self.end(now, EndReason::SupervisorUnreachable, SupervisionOutput::CancelRing);
        }
    }

    /// The supervisor pressed a key; `4`, `5` and `6` switch mode, others are ignored (they
    /// never reach the agent or the caller). The role is checked again: a supervisor allowed to
    /// listen only cannot barge by pressing `6`.
    pub fn handle_digit(&mut self, now: Instant, key: char, roles: &SupervisorRoles) {
        let (State::Joined, Some(to)) = (self.state, Mode::from_key(key)) else { return };
        if to == self.mode {
            return;
        }
        if let Err(reason) = roles.check(&self.supervisor, &self.target, to) {
            self.event(now, EventKind::SwitchRefused { mode: to, reason });
            return;
        }
        let from = std::mem::replace(&mut self.mode, to);
        self.out.push_back(SupervisionOutput::SetMode { mode: to.monitor_mode() });
        self.event(now, EventKind::Switched { from, to });
    }

    /// The supervisor hung up (or their phone stopped ringing by itself).
    pub fn handle_supervisor_hangup(&mut self, now: Instant) {
        if self.state != State::Done {
            self.end(now, EndReason::SupervisorHungUp, SupervisionOutput::HangUpSupervisor);
        }
    }

    /// The agent's call ended: the supervisor's leg goes too.
    pub fn handle_target_call_ended(&mut self, now: Instant) {
        match self.state {
            State::Ringing { .. } => self.end(now, EndReason::TargetNotInCall, SupervisionOutput::CancelRing),
            State::Joined => self.end(now, EndReason::TargetCallEnded, SupervisionOutput::HangUpSupervisor),
            State::Done => {}
        }
    }

    /// Stop through the API.
    pub fn stop(&mut self, now: Instant) {
        match self.state {
            State::Ringing { .. } => self.end(now, EndReason::Stopped, SupervisionOutput::CancelRing),
            State::Joined => self.end(now, EndReason::Stopped, SupervisionOutput::HangUpSupervisor),
            State::Done => {}
        }
    }

    /// The ring timer fired. Idempotent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Ringing { until } = self.state {
            if until <= now {
                self.end(now, EndReason::SupervisorNoAnswer, SupervisionOutput::CancelRing);
            }
        }
    }

    fn join(&mut self, now: Instant) {
        self.state = State::Joined;
        self.out.push_back(SupervisionOutput::Join { mode: self.mode.monitor_mode() });
        self.event(now, EventKind::Started { mode: self.mode });
    }

    fn end(&mut self, now: Instant, reason: EndReason, action: SupervisionOutput) {
        self.state = State::Done;
        self.out.push_back(action);
        self.event(now, EventKind::Ended { reason });
    }

    fn event(&mut self, at: Instant, kind: EventKind) {
        self.out.push_back(SupervisionOutput::Event(SupervisionEvent {
            at,
            supervisor: self.supervisor.clone(),
            target: self.target.clone(),
            kind,
        }));
    }
}
