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
    let (mode, rest) =
        [(LISTEN_CODE, Mode::Listen), (WHISPER_CODE, Mode::Whisper), (BARGE_CODE, Mode::Barge)]
            .into_iter()
            .find_map(|(code, mode)| dialled.strip_prefix(code).map(|rest| (mode, rest)))?;
    let ok =
        !rest.is_empty() && rest.len() <= MAX_EXTENSION_DIGITS && rest.bytes().all(|b| b.is_ascii_digit());
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
    Ringing {
        until: Instant,
    },
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

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_MODES: [Mode; 3] = [Mode::Listen, Mode::Whisper, Mode::Barge];

    /// `900` may do everything to everyone; `901` may only listen, and only to `201`.
    fn roles() -> SupervisorRoles {
        let mut roles = SupervisorRoles::new();
        assert!(roles.grant("900", Permission::new(&ALL_MODES, Scope::All).unwrap()));
        let only_201 = Scope::Agents(["201".to_string()].into_iter().collect());
        assert!(roles.grant("901", Permission::new(&[Mode::Listen], only_201).unwrap()));
        roles
    }

    fn drain(s: &mut SupervisionSession) -> Vec<SupervisionOutput> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    fn event(at: Instant, kind: EventKind) -> SupervisionOutput {
        SupervisionOutput::Event(SupervisionEvent {
            at,
            supervisor: "900".into(),
            target: "201".into(),
            kind,
        })
    }

    fn dial(t: Instant, dialled: &str) -> Result<SupervisionSession, Refusal> {
        let (mode, target) = parse_dial_code(dialled).unwrap();
        SupervisionSession::start(t, Origin::DialCode, "900", target, mode, &roles(), TargetState::InCall)
    }

    /// Every output acts on the supervisor's leg only; this is the whole vocabulary.
    fn touches_only_the_supervisor(o: &SupervisionOutput) -> bool {
        matches!(
            o,
            SupervisionOutput::RingSupervisor
                | SupervisionOutput::CancelRing
                | SupervisionOutput::Join { .. }
                | SupervisionOutput::SetMode { .. }
                | SupervisionOutput::HangUpSupervisor
                | SupervisionOutput::Event(_)
        )
    }

    // Tests for dial codes.

    #[test]
    fn each_dial_code_names_its_mode_and_extension() {
        assert_eq!(parse_dial_code("995201"), Some((Mode::Listen, "201")));
        assert_eq!(parse_dial_code("994201"), Some((Mode::Whisper, "201")));
        assert_eq!(parse_dial_code("996201"), Some((Mode::Barge, "201")));
    }

    #[test]
    fn a_code_without_a_valid_extension_is_not_a_supervision_code() {
        for dialled in ["995", "99520a", "993201", "201", "995123456789", "995*1", ""] {
            assert_eq!(parse_dial_code(dialled), None, "{dialled}");
        }
    }

    #[test]
    fn each_mode_maps_onto_the_mixer_monitor_mode() {
        assert_eq!(Mode::Listen.monitor_mode(), MonitorMode::Listen);
        assert_eq!(Mode::Whisper.monitor_mode(), MonitorMode::Whisper);
        assert_eq!(Mode::Barge.monitor_mode(), MonitorMode::Barge);
    }

    // Tests for starting.

    #[test]
    fn listen_code_joins_at_once_in_listen_mode() {
        let t = Instant::now();
        let mut s = dial(t, "995201").unwrap();
        assert_eq!(
            drain(&mut s),
            vec![
                SupervisionOutput::Join { mode: MonitorMode::Listen },
                event(t, EventKind::Started { mode: Mode::Listen })
            ]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn whisper_and_barge_codes_join_in_their_modes() {
        let t = Instant::now();
        for (code, mode) in [("994201", MonitorMode::Whisper), ("996201", MonitorMode::Barge)] {
            let mut s = dial(t, code).unwrap();
            assert_eq!(drain(&mut s).first(), Some(&SupervisionOutput::Join { mode }));
        }
    }

    #[test]
    fn api_start_rings_the_supervisor_then_joins_on_answer() {
        let t = Instant::now();
        let mut s = SupervisionSession::start(
            t,
            Origin::Api,
            "900",
            "201",
            Mode::Whisper,
            &roles(),
            TargetState::InCall,
        )
        .unwrap();
        assert_eq!(drain(&mut s), vec![SupervisionOutput::RingSupervisor]);
        assert_eq!(s.poll_timeout(), Some(t + SUPERVISOR_RING_TIMEOUT));
        let answered = t + Duration::from_secs(3);
        s.handle_supervisor_answered(answered, TargetState::InCall);
        assert_eq!(
            drain(&mut s),
            vec![
                SupervisionOutput::Join { mode: MonitorMode::Whisper },
                event(answered, EventKind::Started { mode: Mode::Whisper })
            ]
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn api_start_gives_up_when_the_supervisor_does_not_answer() {
        let t = Instant::now();
        let mut s = SupervisionSession::start(
            t,
            Origin::Api,
            "900",
            "201",
            Mode::Listen,
            &roles(),
            TargetState::InCall,
        )
        .unwrap();
        drain(&mut s);
        s.handle_timeout(t + SUPERVISOR_RING_TIMEOUT - Duration::from_millis(1));
        assert!(drain(&mut s).is_empty(), "an early timer does nothing");
        let due = t + SUPERVISOR_RING_TIMEOUT;
        s.handle_timeout(due);
        assert_eq!(
            drain(&mut s),
            vec![
                SupervisionOutput::CancelRing,
                event(due, EventKind::Ended { reason: EndReason::SupervisorNoAnswer })
            ]
        );
        s.handle_timeout(due);
        assert!(drain(&mut s).is_empty() && s.is_done());
    }

    #[test]
    fn api_start_hangs_up_the_supervisor_if_the_agent_call_ended_while_ringing() {
        let t = Instant::now();
        let mut s = SupervisionSession::start(
            t,
            Origin::Api,
            "900",
            "201",
            Mode::Listen,
            &roles(),
            TargetState::InCall,
        )
        .unwrap();
        drain(&mut s);
        s.handle_supervisor_answered(t, TargetState::NotInCall);
        assert_eq!(
            drain(&mut s),
            vec![
                SupervisionOutput::HangUpSupervisor,
                event(t, EventKind::Ended { reason: EndReason::TargetNotInCall })
            ]
        );
    }

    #[test]
    fn an_unreachable_supervisor_phone_ends_the_api_session() {
        let t = Instant::now();
        let mut s = SupervisionSession::start(
            t,
            Origin::Api,
            "900",
            "201",
            Mode::Listen,
            &roles(),
            TargetState::InCall,
        )
        .unwrap();
        drain(&mut s);
        s.handle_supervisor_unreachable(t);
        assert_eq!(
            drain(&mut s).last(),
            Some(&event(t, EventKind::Ended { reason: EndReason::SupervisorUnreachable }))
        );
        assert!(s.is_done());
    }

    // Tests for refusals.

    #[test]
    fn a_user_without_the_supervisor_role_is_refused() {
        let t = Instant::now();
        let r = SupervisionSession::start(
            t,
            Origin::DialCode,
            "202",
            "201",
            Mode::Listen,
            &roles(),
            TargetState::InCall,
        );
        assert_eq!(r.unwrap_err(), Refusal::NotASupervisor);
        assert_eq!(Refusal::NotASupervisor.http_status(), 403);
    }

    #[test]
    fn a_supervisor_is_refused_outside_their_scope_and_modes() {
        let t = Instant::now();
        let start = |target: &str, mode| {
            SupervisionSession::start(t, Origin::DialCode, "901", target, mode, &roles(), TargetState::InCall)
        };
        assert!(start("201", Mode::Listen).is_ok());
        assert_eq!(start("202", Mode::Listen).unwrap_err(), Refusal::OutOfScope);
        assert_eq!(start("201", Mode::Barge).unwrap_err(), Refusal::ModeNotAllowed(Mode::Barge));
    }

    #[test]
    fn an_idle_target_is_refused_with_a_clear_reason_and_prompt() {
        let t = Instant::now();
        let r = SupervisionSession::start(
            t,
            Origin::DialCode,
            "900",
            "201",
            Mode::Listen,
            &roles(),
            TargetState::NotInCall,
        );
        let refusal = r.unwrap_err();
        assert_eq!(refusal, Refusal::TargetNotInCall);
        assert_eq!(refusal.to_string(), "the agent is not in a call");
        assert_eq!(refusal.prompt(), TARGET_IDLE_PROMPT);
        assert_eq!(refusal.http_status(), 409);
    }

    #[test]
    fn an_unknown_target_and_the_supervisor_own_call_are_refused() {
        let t = Instant::now();
        let r = SupervisionSession::start(
            t,
            Origin::Api,
            "900",
            "777",
            Mode::Listen,
            &roles(),
            TargetState::Unknown,
        );
        assert_eq!(r.unwrap_err(), Refusal::UnknownTarget);
        let r = SupervisionSession::start(
            t,
            Origin::Api,
            "900",
            "900",
            Mode::Listen,
            &roles(),
            TargetState::InCall,
        );
        assert_eq!(r.unwrap_err(), Refusal::OwnCall);
    }

    #[test]
    fn the_role_table_is_bounded() {
        let mut roles = SupervisorRoles::new();
        let p = || Permission::new(&[Mode::Listen], Scope::All).unwrap();
        for i in 0..MAX_SUPERVISORS {
            assert!(roles.grant(&i.to_string(), p()));
        }
        assert!(!roles.grant("extra", p()));
        assert!(roles.grant("0", p()), "replacing an existing role still works");
        let too_many = Scope::Agents((0..=MAX_SCOPE_AGENTS).map(|i| i.to_string()).collect());
        assert!(Permission::new(&[Mode::Listen], too_many).is_none());
    }

    // Tests for the JOINED state.

    #[test]
    fn keys_4_5_6_switch_between_listen_whisper_and_barge() {
        let t = Instant::now();
        let roles = roles();
        let mut s = dial(t, "995201").unwrap();
        drain(&mut s);
        for (key, from, to) in [
            ('5', Mode::Listen, Mode::Whisper),
            ('6', Mode::Whisper, Mode::Barge),
            ('4', Mode::Barge, Mode::Listen),
        ] {
            s.handle_digit(t, key, &roles);
            assert_eq!(
                drain(&mut s),
                vec![
                    SupervisionOutput::SetMode { mode: to.monitor_mode() },
                    event(t, EventKind::Switched { from, to })
                ]
            );
            assert_eq!(s.mode(), to);
        }
    }

    #[test]
    fn the_current_mode_key_and_other_keys_do_nothing() {
        let t = Instant::now();
        let mut s = dial(t, "995201").unwrap();
        drain(&mut s);
        for key in ['4', '1', '#', '*', '9'] {
            s.handle_digit(t, key, &roles());
        }
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.mode(), Mode::Listen);
    }

    #[test]
    fn a_switch_to_a_mode_outside_the_role_is_refused_and_the_mode_stays() {
        let t = Instant::now();
        let mut s = SupervisionSession::start(
            t,
            Origin::DialCode,
            "901",
            "201",
            Mode::Listen,
            &roles(),
            TargetState::InCall,
        )
        .unwrap();
        drain(&mut s);
        s.handle_digit(t, '6', &roles());
        assert_eq!(
            drain(&mut s),
            vec![SupervisionOutput::Event(SupervisionEvent {
                at: t,
                supervisor: "901".into(),
                target: "201".into(),
                kind: EventKind::SwitchRefused {
                    mode: Mode::Barge,
                    reason: Refusal::ModeNotAllowed(Mode::Barge)
                }
            })]
        );
        assert_eq!(s.mode(), Mode::Listen);
    }

    #[test]
    fn the_agent_call_ending_hangs_up_only_the_supervisor() {
        let t = Instant::now();
        let mut s = dial(t, "996201").unwrap();
        drain(&mut s);
        let later = t + Duration::from_secs(60);
        s.handle_target_call_ended(later);
        assert_eq!(
            drain(&mut s),
            vec![
                SupervisionOutput::HangUpSupervisor,
                event(later, EventKind::Ended { reason: EndReason::TargetCallEnded })
            ]
        );
        s.handle_supervisor_hangup(later);
        s.handle_digit(later, '5', &roles());
        assert!(drain(&mut s).is_empty(), "a finished session says nothing more");
    }

    #[test]
    fn supervisor_hangup_and_api_stop_end_the_session() {
        let t = Instant::now();
        let mut s = dial(t, "995201").unwrap();
        drain(&mut s);
        s.handle_supervisor_hangup(t);
        assert_eq!(
            drain(&mut s).last(),
            Some(&event(t, EventKind::Ended { reason: EndReason::SupervisorHungUp }))
        );
        let mut s = dial(t, "995201").unwrap();
        drain(&mut s);
        s.stop(t);
        assert_eq!(
            drain(&mut s),
            vec![
                SupervisionOutput::HangUpSupervisor,
                event(t, EventKind::Ended { reason: EndReason::Stopped })
            ]
        );
    }

    #[test]
    fn no_path_emits_an_output_outside_the_supervisor_leg() {
        let t = Instant::now();
        let roles = roles();
        for origin in [Origin::DialCode, Origin::Api] {
            for finish in 0..4 {
                let mut s = SupervisionSession::start(
                    t,
                    origin,
                    "900",
                    "201",
                    Mode::Listen,
                    &roles,
                    TargetState::InCall,
                )
                .unwrap();
                let mut all = drain(&mut s);
                s.handle_supervisor_answered(t, TargetState::InCall);
                for key in ['5', '6', '4', '0'] {
                    s.handle_digit(t, key, &roles);
                }
                match finish {
                    0 => s.handle_supervisor_hangup(t),
                    1 => s.handle_target_call_ended(t),
                    2 => s.stop(t),
                    _ => s.handle_timeout(t + SUPERVISOR_RING_TIMEOUT),
                }
                all.extend(drain(&mut s));
                assert!(all.iter().all(touches_only_the_supervisor), "{all:?}");
            }
        }
    }
}
