//! Agent states (seed 004 §2.8) and the one state machine that changes them.
//!
//! The eleven fixed states plus up to [`MAX_CUSTOM_STATES`] custom "other work" states. One
//! global state per agent (seed 004 has one status per operator); availability per queue
//! (seed 002 §2.4's group tags) is a separate per-queue pause kept by the ACD in
//! [`super::queue`]. An agent is offered a queue call only when its state is
//! [`AgentState::Available`] and it is not paused in that queue.
//!
//! Transitions are `match (state, input)` in [`Agent::apply`]; anything not listed is refused
//! with [`AgentError::IllegalTransition`]. Timed releases (ACW with a duration, no-answer
//! auto-pause with a release time) are deadlines on the agent that the ACD's `handle_timeout`
//! turns into [`AgentInput::AcwExpired`] / [`AgentInput::PauseExpired`].
//!
//! Proposed phone feature codes (documented in `docs/callcenter.md`, not wired):
//! `*40` login/logout toggle, `*41` available, `*42` short break, `*43` lunch break, `*44` end
//! after-call work (→ available), `*45`+N custom other-work state N (1..=6), `*46` preparing.
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Most custom "other work" states (seed 004 §2.23).
pub const MAX_CUSTOM_STATES: usize = 6;

/// Longest custom state name in characters; longer names break the operator phone layout
/// (seed 004 §2.23).
pub const MAX_CUSTOM_NAME_CHARS: usize = 15;

/// An agent's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// ログアウト: not logged in.
    LoggedOut,
    /// 準備中: logged in, not ready; also the no-answer auto-pause.
    Preparing,
    /// 受付可: can be offered queue calls.
    Available,
    /// 着信中: a queue call is ringing the agent's phone.
    Ringing,
    /// 通話中: talking.
    Talking,
    /// 発信中: an outbound call is ringing the far end.
    Dialling,
    /// 後処理: after-call work.
    AfterCallWork,
    /// 保留中: the call is on hold.
    OnHold,
    /// 内線通話: an internal (extension) call.
    InternalCall,
    /// 小休憩: short break.
    ShortBreak,
    /// 昼休憩: lunch break (excluded from working time).
    LunchBreak,
    /// 別作業: custom other-work state, 1-based index into [`StatusCatalog`].
    OtherWork(u8),
}

impl AgentState {
    /// The Japanese name shown on screens (fixed states; custom ones use the catalog name).
    pub fn ja(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "ログアウト",
            AgentState::Preparing => "準備中",
            AgentState::Available => "受付可",
            AgentState::Ringing => "着信中",
            AgentState::Talking => "通話中",
            AgentState::Dialling => "発信中",
            AgentState::AfterCallWork => "後処理",
            AgentState::OnHold => "保留中",
            AgentState::InternalCall => "内線通話",
            AgentState::ShortBreak => "小休憩",
            AgentState::LunchBreak => "昼休憩",
            AgentState::OtherWork(_) => "別作業",
        }
    }

    /// The English key (the event log's spelling; `other_work` for every custom state).
    pub fn key(self) -> &'static str {
        match self {
            AgentState::LoggedOut => "logged_out",
            AgentState::Preparing => "preparing",
            AgentState::Available => "available",
            AgentState::Ringing => "ringing",
            AgentState::Talking => "talking",
            AgentState::Dialling => "dialling",
            AgentState::AfterCallWork => "after_call_work",
            AgentState::OnHold => "on_hold",
            AgentState::InternalCall => "internal_call",
            AgentState::ShortBreak => "short_break",
            AgentState::LunchBreak => "lunch_break",
            AgentState::OtherWork(_) => "other_work",
        }
    }

    /// Whether the agent is busy with a call (the daily logout waits for these to end).
    pub fn on_call(self) -> bool {
        matches!(
            self,
            AgentState::Ringing
                | AgentState::Talking
                | AgentState::Dialling
                | AgentState::OnHold
                | AgentState::InternalCall
        )
    }

    /// Whether the agent is working the queues: logged in and not on a break, preparing or
    /// other work. The skill-level rule uses this (see `strategy.rs`).
    pub fn staffed(self) -> bool {
        matches!(self, AgentState::Available | AgentState::AfterCallWork) || self.on_call()
    }

    /// States an agent or supervisor may select by command.
    fn selectable(self) -> bool {
        matches!(
            self,
            AgentState::Preparing
                | AgentState::Available
                | AgentState::ShortBreak
                | AgentState::LunchBreak
                | AgentState::OtherWork(_)
        )
    }
}

/// The custom other-work states, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCatalog {
    custom: Vec<String>,
}

impl StatusCatalog {
    /// Checks the names: at most [`MAX_CUSTOM_STATES`], each 1..=[`MAX_CUSTOM_NAME_CHARS`]
    /// characters, no duplicates.
    pub fn new(names: &[&str]) -> Result<StatusCatalog, AgentError> {
        if names.len() > MAX_CUSTOM_STATES {
            return Err(AgentError::TooManyCustomStates);
        }
        let mut custom: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            let chars = name.trim().chars().count();
            if chars == 0 || chars > MAX_CUSTOM_NAME_CHARS {
                return Err(AgentError::BadCustomName { name: name.chars().take(32).collect() });
            }
            if custom.iter().any(|c| c == name.trim()) {
                return Err(AgentError::DuplicateCustomName { name: name.trim().to_string() });
            }
            custom.push(name.trim().to_string());
        }
        Ok(StatusCatalog { custom })
    }

    /// Name of custom state `n` (1-based).
    pub fn name(&self, n: u8) -> Option<&str> {
        self.custom.get(usize::from(n).checked_sub(1)?).map(String::as_str)
    }

    /// Number of custom states.
    pub fn len(&self) -> usize {
        self.custom.len()
    }

    /// Whether there are no custom states.
    pub fn is_empty(&self) -> bool {
        self.custom.is_empty()
    }
}

/// Why an agent operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// The input is not allowed in the agent's current state.
    IllegalTransition {
        /// Current state.
        from: AgentState,
        /// The refused input, by name.
        input: &'static str,
    },
    /// No such agent.
    UnknownAgent,
    /// No such queue, or the agent is not a member of it.
    UnknownQueue,
    /// The custom state index is not in the catalog.
    UnknownCustomState(u8),
    /// More than [`MAX_CUSTOM_STATES`] custom states.
    TooManyCustomStates,
    /// A custom state name is empty or longer than [`MAX_CUSTOM_NAME_CHARS`].
    BadCustomName {
        /// The name (shortened).
        name: String,
    },
    /// Two custom states share a name.
    DuplicateCustomName {
        /// The name.
        name: String,
    },
    /// The agent table is full.
    TooManyAgents,
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::IllegalTransition { from, input } => {
                write!(f, "not allowed while {} ({}): {input}", from.key(), from.ja())
            }
            AgentError::UnknownAgent => write!(f, "no such agent (not a member of any queue)"),
            AgentError::UnknownQueue => write!(f, "no such queue, or the agent is not a member of it"),
            AgentError::UnknownCustomState(n) => write!(f, "other-work state {n} is not configured"),
            AgentError::TooManyCustomStates => write!(f, "at most {MAX_CUSTOM_STATES} other-work states"),
            AgentError::BadCustomName { name } => {
                write!(f, "other-work state `{name}` must be 1-{MAX_CUSTOM_NAME_CHARS} characters")
            }
            AgentError::DuplicateCustomName { name } => {
                write!(f, "other-work state `{name}` is listed twice")
            }
            AgentError::TooManyAgents => write!(f, "too many agents"),
        }
    }
}

impl std::error::Error for AgentError {}

/// What happens to an agent; fed to [`Agent::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentInput {
    /// Login (feature code, API): → 準備中.
    Login,
    /// Logout by agent, supervisor or the daily logout.
    Logout,
    /// The agent or a supervisor selects a state.
    Select(AgentState),
    /// A queue call starts ringing the agent.
    Offered,
    /// Ringing ended without answer (no answer, decline, caller left, other agent answered).
    /// `pause_until`: `Some(None)` = auto-pause until cleared, `Some(Some(t))` = until `t`,
    /// `None` = back to available.
    RingEnded {
        /// The auto-pause to apply.
        pause_until: Option<Option<Instant>>,
    },
    /// The agent answered the ringing call.
    Answered,
    /// Hold pressed.
    Hold,
    /// Hold released.
    Unhold,
    /// The external call ended. `acw_until` as for `RingEnded`'s pause: `None` = no ACW.
    Hangup {
        /// The ACW to apply.
        acw_until: Option<Option<Instant>>,
    },
    /// The agent dials out.
    Dial,
    /// The far end answered.
    DialAnswered,
    /// The outbound attempt ended unanswered.
    DialFailed,
    /// An internal call started (only from available).
    InternalStart,
    /// The internal call ended.
    InternalEnd,
    /// The ACW duration elapsed.
    AcwExpired,
    /// The auto-pause release time came.
    PauseExpired,
}

impl AgentInput {
    fn name(self) -> &'static str {
        match self {
            AgentInput::Login => "login",
            AgentInput::Logout => "logout",
            AgentInput::Select(_) => "select",
            AgentInput::Offered => "offered",
            AgentInput::RingEnded { .. } => "ring_ended",
            AgentInput::Answered => "answered",
            AgentInput::Hold => "hold",
            AgentInput::Unhold => "unhold",
            AgentInput::Hangup { .. } => "hangup",
            AgentInput::Dial => "dial",
            AgentInput::DialAnswered => "dial_answered",
            AgentInput::DialFailed => "dial_failed",
            AgentInput::InternalStart => "internal_start",
            AgentInput::InternalEnd => "internal_end",
            AgentInput::AcwExpired => "acw_expired",
            AgentInput::PauseExpired => "pause_expired",
        }
    }
}

/// One agent's state and the counters the strategies read.
#[derive(Debug, Clone)]
pub struct Agent {
    id: String,
    state: AgentState,
    since: Instant,
    /// Release time of ACW (`AfterCallWork`) or of an auto-pause (`Preparing`).
    release_at: Option<Instant>,
    /// Set when the current `Preparing` is a no-answer auto-pause (only these auto-release).
    auto_paused: bool,
    /// Whether the call in progress is outbound (for ACW and report direction).
    outbound: bool,
    /// The daily logout came during a call: log out when it ends.
    logout_pending: bool,
    pub(crate) last_call_end: Option<Instant>,
    pub(crate) talk_total_ms: u64,
    pub(crate) calls_answered: u32,
}

impl Agent {
    /// A logged-out agent.
    pub fn new(id: &str, now: Instant) -> Agent {
        Agent {
            id: id.to_string(),
            state: AgentState::LoggedOut,
            since: now,
            release_at: None,
            auto_paused: false,
            outbound: false,
            logout_pending: false,
            last_call_end: None,
            talk_total_ms: 0,
            calls_answered: 0,
        }
    }

    /// The agent id (its extension).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Current state.
    pub fn state(&self) -> AgentState {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When ACW or the auto-pause ends by itself.
    pub fn release_at(&self) -> Option<Instant> {
        self.release_at
    }

    /// Whether the current call is outbound.
    pub fn outbound(&self) -> bool {
        self.outbound
    }

    pub(crate) fn set_logout_pending(&mut self) {
        self.logout_pending = true;
    }

    pub(crate) fn logout_pending(&self) -> bool {
        self.logout_pending
    }

    /// Applies one input; returns the new state, or refuses. `custom` bounds `OtherWork(n)`.
    pub fn apply(
        &mut self,
        input: AgentInput,
        now: Instant,
        custom: &StatusCatalog,
    ) -> Result<AgentState, AgentError> {
        use AgentState as S;
        let illegal = AgentError::IllegalTransition { from: self.state, input: input.name() };
        let mut release_at = None;
        let mut auto_paused = false;
        let next = match (self.state, input) {
            // Login lands in 準備中 (seed 004 §2.8: the screen right after login shows 準備中).
            (S::LoggedOut, AgentInput::Login) => S::Preparing,
            (_, AgentInput::Login) => return Err(illegal),
            // Logout from any state that holds no call; a supervisor's forced logout of an agent
            // on a call is refused so the caller is never cut off by a state change.
            (s, AgentInput::Logout) if s != S::LoggedOut && !s.on_call() => S::LoggedOut,
            (S::LoggedOut, AgentInput::Select(_)) => return Err(illegal),
            (s, AgentInput::Select(t)) if t.selectable() && (s.selectable() || s == S::AfterCallWork) => {
                if let S::OtherWork(n) = t {
                    if custom.name(n).is_none() {
                        return Err(AgentError::UnknownCustomState(n));
                    }
                }
                t
            }
            // 受付可 --external call offered--> 着信中.
            (S::Available, AgentInput::Offered) => S::Ringing,
            // 着信中 --not answered--> 受付可, or the queue's no-answer auto-pause (準備中).
            (S::Ringing, AgentInput::RingEnded { pause_until }) => match pause_until {
                None => S::Available,
                Some(until) => {
                    release_at = until;
                    auto_paused = true;
                    S::Preparing
                }
            },
            // 着信中 --answer--> 通話中; 発信中 --answered--> 通話中.
            (S::Ringing, AgentInput::Answered) => S::Talking,
            (S::Dialling, AgentInput::DialAnswered) => S::Talking,
            // 通話中 <--[保留] toggle--> 保留中.
            (S::Talking, AgentInput::Hold) => S::OnHold,
            (S::OnHold, AgentInput::Unhold) => S::Talking,
            // 通話中/保留中 --external call ends--> 後処理 (or 受付可 when the queue has no ACW).
            (S::Talking | S::OnHold, AgentInput::Hangup { acw_until }) => match acw_until {
                None => S::Available,
                Some(until) => {
                    release_at = until;
                    S::AfterCallWork
                }
            },
            // 受付可 --operator dials--> 発信中; the outbound attempt may fail.
            (S::Available | S::Preparing | S::AfterCallWork, AgentInput::Dial) => S::Dialling,
            (S::Dialling, AgentInput::DialFailed) => S::Available,
            // 受付可 --extension call--> 内線通話 --ends--> 受付可.
            (S::Available, AgentInput::InternalStart) => S::InternalCall,
            (S::InternalCall, AgentInput::InternalEnd) => S::Available,
            (S::AfterCallWork, AgentInput::AcwExpired) => S::Available,
            (S::Preparing, AgentInput::PauseExpired) if self.auto_paused => S::Available,
            _ => return Err(illegal),
        };
        match (self.state, next) {
            (S::Available, S::Dialling) | (S::Preparing, S::Dialling) | (S::AfterCallWork, S::Dialling) => {
                self.outbound = true
            }
            (S::Available, S::Ringing) => self.outbound = false,
            _ => {}
        }
        if matches!(self.state, S::Talking | S::OnHold) && !next.on_call() {
            self.last_call_end = Some(now);
        }
        if self.state == S::Ringing && next == S::Talking {
            self.calls_answered = self.calls_answered.saturating_add(1);
        }
        if next == S::LoggedOut {
            self.logout_pending = false;
        }
        self.state = next;
        self.since = now;
        self.release_at = release_at;
        self.auto_paused = auto_paused;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn agent() -> (Agent, Instant, StatusCatalog) {
        let t0 = Instant::now();
        let cat = StatusCatalog::new(&["メール対応", "研修"]).unwrap();
        let mut a = Agent::new("201", t0);
        a.apply(AgentInput::Login, t0, &cat).unwrap();
        (a, t0, cat)
    }

    #[test]
    fn login_lands_in_preparing_and_the_agent_selects_available() {
        let (mut a, t0, cat) = agent();
        assert_eq!(a.state(), AgentState::Preparing);
        assert_eq!(a.apply(AgentInput::Select(AgentState::Available), t0, &cat), Ok(AgentState::Available));
    }

    #[test]
    fn an_inbound_call_walks_ringing_talking_hold_and_after_call_work() {
        let (mut a, t0, cat) = agent();
        a.apply(AgentInput::Select(AgentState::Available), t0, &cat).unwrap();
        a.apply(AgentInput::Offered, t0, &cat).unwrap();
        a.apply(AgentInput::Answered, t0, &cat).unwrap();
        a.apply(AgentInput::Hold, t0, &cat).unwrap();
        a.apply(AgentInput::Unhold, t0, &cat).unwrap();
        let until = t0 + Duration::from_secs(30);
        assert_eq!(
            a.apply(AgentInput::Hangup { acw_until: Some(Some(until)) }, t0, &cat),
            Ok(AgentState::AfterCallWork)
        );
        assert_eq!(a.release_at(), Some(until));
        assert_eq!(a.apply(AgentInput::AcwExpired, until, &cat), Ok(AgentState::Available));
        assert_eq!(a.calls_answered, 1);
    }

    #[test]
    fn illegal_transitions_are_refused_with_the_state_and_input() {
        let (mut a, t0, cat) = agent();
        assert_eq!(
            a.apply(AgentInput::Offered, t0, &cat),
            Err(AgentError::IllegalTransition { from: AgentState::Preparing, input: "offered" })
        );
        assert!(a.apply(AgentInput::Select(AgentState::Talking), t0, &cat).is_err());
        assert!(a.apply(AgentInput::Login, t0, &cat).is_err());
        a.apply(AgentInput::Select(AgentState::Available), t0, &cat).unwrap();
        a.apply(AgentInput::Offered, t0, &cat).unwrap();
        // Nobody can put a ringing agent on a break or log it out mid-call.
        assert!(a.apply(AgentInput::Select(AgentState::ShortBreak), t0, &cat).is_err());
        assert!(a.apply(AgentInput::Logout, t0, &cat).is_err());
    }

    #[test]
    fn custom_states_are_validated_and_must_exist_to_be_selected() {
        let (mut a, t0, cat) = agent();
        assert_eq!(
            a.apply(AgentInput::Select(AgentState::OtherWork(2)), t0, &cat),
            Ok(AgentState::OtherWork(2))
        );
        assert_eq!(
            a.apply(AgentInput::Select(AgentState::OtherWork(3)), t0, &cat),
            Err(AgentError::UnknownCustomState(3))
        );
        assert_eq!(cat.name(1), Some("メール対応"));
        assert!(StatusCatalog::new(&["a", "b", "c", "d", "e", "f", "g"]).is_err());
        assert!(StatusCatalog::new(&["１２３４５６７８９０１２３４５"]).is_ok());
        assert!(StatusCatalog::new(&["１２３４５６７８９０１２３４５６"]).is_err());
        assert!(StatusCatalog::new(&[""]).is_err());
        assert!(StatusCatalog::new(&["x", "x"]).is_err());
    }

    #[test]
    fn only_an_auto_pause_releases_itself() {
        let (mut a, t0, cat) = agent();
        assert!(a.apply(AgentInput::PauseExpired, t0, &cat).is_err());
        a.apply(AgentInput::Select(AgentState::Available), t0, &cat).unwrap();
        a.apply(AgentInput::Offered, t0, &cat).unwrap();
        a.apply(AgentInput::RingEnded { pause_until: Some(None) }, t0, &cat).unwrap();
        assert_eq!(a.state(), AgentState::Preparing);
        assert_eq!(a.apply(AgentInput::PauseExpired, t0, &cat), Ok(AgentState::Available));
    }

    #[test]
    fn outbound_and_internal_calls_follow_the_seed_state_machine() {
        let (mut a, t0, cat) = agent();
        a.apply(AgentInput::Select(AgentState::Available), t0, &cat).unwrap();
        a.apply(AgentInput::Dial, t0, &cat).unwrap();
        assert!(a.outbound());
        a.apply(AgentInput::DialAnswered, t0, &cat).unwrap();
        a.apply(AgentInput::Hangup { acw_until: None }, t0, &cat).unwrap();
        a.apply(AgentInput::InternalStart, t0, &cat).unwrap();
        assert_eq!(a.apply(AgentInput::InternalEnd, t0, &cat), Ok(AgentState::Available));
    }
}
