//! The sans-IO ACD: queues, their waiting callers, and the agents who answer them.
//!
//! Contract (style rule 2): the engine calls the input methods (`caller_entered`,
//! `agent_answered`, ..., `handle_timeout`) with `now`, then drains [`Acd::poll_output`] until it
//! returns `None`, then arms one timer at [`Acd::poll_timeout`]. Poll order: outputs first, then
//! the timeout. Inputs never block and never read a clock. The wall clock (for event
//! timestamps and the daily logout) is `anchor_unix_ms + (now - anchor)`; the engine re-anchors
//! with [`Acd::handle_wall_clock`] when NTP steps the clock.
//!
//! A call's life: `caller_entered` → (overflow | admitted). Admitted calls ring agents chosen by
//! the queue's [`Strategy`] for `ring_time` each. Before `ring_before_queue` elapses the caller
//! hears ringback; after it the engine answers the caller ([`Output::Answer`]: greeting then
//! music on hold) and periodic announcements start. The first agent to answer gets
//! [`Output::Connect`] (with the agent-only whisper prompt); the others get
//! [`Output::StopRinging`]. At `timeout` from entry the call goes to the timeout destination.
//! The agent's call then runs through hold/unhold to hangup, which starts the queue's after-call
//! work.
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::agent::{Agent, AgentError, AgentInput, AgentState, StatusCatalog};
use super::events::{Cause, Direction, Event, EventKind, EventRing, OverflowReason};
use super::strategy::{choose, Candidate, Rng, Strategy, MAX_SKILL_LEVEL};
use crate::apps::timerules::{Destination, UtcOffset};
use crate::media::prompts::{sentence_queue_position, sentence_wait_time, Lang};

/// Most queues. A 50-seat center has a few dozen; the cap bounds per-input scans.
pub const MAX_QUEUES: usize = 64;

/// Most agents. Five times the 50-seat target; strategies scan members linearly.
pub const MAX_AGENTS: usize = 250;

/// Largest `max_waiting` accepted per queue. The spec's default is 99; beyond 999 callers a
/// queue is an outage, not a queue.
pub const MAX_WAITING_LIMIT: u32 = 999;

/// Most waiting calls the ACD tracks at once, across all queues (talking calls are bounded by
/// the agents). Bounds memory whatever the configuration; entries beyond it are answered busy.
pub const MAX_CALLS: usize = 4096;

/// Longest queue or agent name in bytes (they go into every event line).
pub const MAX_NAME_BYTES: usize = 64;

/// Longest ring time per agent; a longer one is a configuration mistake.
pub const MAX_RING_TIME: Duration = Duration::from_secs(600);

/// Shortest periodic announcement interval; shorter would talk over itself.
pub const MIN_ANNOUNCE_EVERY: Duration = Duration::from_secs(10);

/// Weight of the newest talk time in the running average used for expected wait (1/4).
const TALK_AVERAGE_NEW_PARTS: u64 = 1;
const TALK_AVERAGE_PARTS: u64 = 4;

const DAY_MS: i64 = 86_400_000;

/// Shortest time a declined call waits before it is offered to the same agent again. The
/// back-off is the queue's `ring_time` (a decline costs the agent what a no-answer costs), but
/// never less than this: a phone in DND answers 486 in milliseconds, and with a 1 s ring time
/// a lone agent would still be flooded with INVITEs.
pub const MIN_DECLINE_BACKOFF: Duration = Duration::from_secs(5);

/// Declines in a row (no answer in between, any call) after which the queue's no-answer
/// auto-pause applies to the agent as if it had let the call ring out: three is past a
/// deliberate "not this one" and into a phone that refuses everything (DND, wrong setting).
pub const DECLINES_BEFORE_PAUSE: u32 = 3;

/// The periodic in-queue announcement (呼中音声).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodicAnnouncement {
    /// Interval; the first plays this long after the caller is queued.
    pub every: Duration,
    /// An own prompt played first (e.g. `queue.continue_to_hold`).
    pub prompt: Option<String>,
    /// Read out the caller's position.
    pub position: bool,
    /// Read out the expected wait (only once a talk time has been seen).
    pub expected_wait: bool,
}

/// One member of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// Agent id.
    pub agent: String,
    /// Skill level, 1 (best) ..= [`MAX_SKILL_LEVEL`].
    pub skill: u8,
}

/// A queue's settings; [`QueueConfig::new`] gives the spec's defaults (seed 002 §2.24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Name (unique).
    pub name: String,
    /// Ringing strategy.
    pub strategy: Strategy,
    /// Members in linear order.
    pub members: Vec<MemberConfig>,
    /// Ring time per agent attempt (呼出時間, 20 s).
    pub ring_time: Duration,
    /// Ringing-only time before the caller is queued (待ち呼開始時間, 0 s).
    pub ring_before_queue: Duration,
    /// Most unanswered calls (最大待ち呼数, 99; 0 = no queue: only calls a free agent can take).
    pub max_waiting: u32,
    /// Most calls answered at once (最大同時応答数, 99).
    pub max_answered: u32,
    /// From entry to timeout (タイムアウト, 300 s; `None` = never).
    pub timeout: Option<Duration>,
    /// Overflow destination (`None` = busy).
    pub overflow: Option<Destination>,
    /// Timeout destination (`None` = busy).
    pub timeout_destination: Option<Destination>,
    /// Take calls when no member is staffed (`false`: overflow with `NoAgents`).
    pub join_when_empty: bool,
    /// Greeting prompt (応答音声).
    pub greeting: Option<String>,
    /// Periodic announcement (呼中音声).
    pub periodic: Option<PeriodicAnnouncement>,
    /// Music-on-hold class (保留音); `None` = the default.
    pub moh: Option<String>,
    /// Prompt played only to the agent on answer (着信判別音声).
    pub whisper: Option<String>,
    /// No-answer auto-pause (無応答自動停止): `None` = off, `Some(ZERO)` = until cleared.
    pub auto_pause: Option<Duration>,
    /// After-call work (ACW): `None` = off, `Some(ZERO)` = until the agent clears it.
    pub after_call_work: Option<Duration>,
    /// Language of the readouts.
    pub lang: Lang,
}

impl QueueConfig {
    /// A queue with the spec's defaults and no members.
    pub fn new(name: &str) -> QueueConfig {
        QueueConfig {
            name: name.to_string(),
            strategy: Strategy::RingAll,
            members: Vec::new(),
            ring_time: Duration::from_secs(20),
            ring_before_queue: Duration::ZERO,
            max_waiting: 99,
            max_answered: 99,
            timeout: Some(Duration::from_secs(300)),
            overflow: None,
            timeout_destination: None,
            join_when_empty: false,
            greeting: None,
            periodic: None,
            moh: None,
            whisper: None,
            auto_pause: None,
            after_call_work: None,
            lang: Lang::Ja,
        }
    }
}

/// The whole ACD's settings.
#[derive(Debug, Clone)]
pub struct AcdConfig {
    /// Agent ids (extensions).
    pub agents: Vec<String>,
    /// Queues.
    pub queues: Vec<QueueConfig>,
    /// Custom other-work state names (≤ 6, ≤ 15 characters).
    pub custom_states: Vec<String>,
    /// Daily automatic logout, local `(hour, minute)`.
    pub daily_logout: Option<(u8, u8)>,
    /// Offset of local time for the daily logout.
    pub utc_offset: UtcOffset,
    /// ACW after an agent's outbound call (`None` = off, `Some(ZERO)` = until cleared).
    pub outbound_acw: Option<Duration>,
    /// Seed of the random strategy.
    pub seed: u64,
    /// Capacity of the in-memory event ring.
    pub event_ring: usize,
}

impl Default for AcdConfig {
    fn default() -> Self {
        AcdConfig {
            agents: Vec::new(),
            queues: Vec::new(),
            custom_states: Vec::new(),
            daily_logout: None,
            utc_offset: UtcOffset::JST,
            outbound_acw: None,
            seed: 1,
            event_ring: super::events::DEFAULT_RING_CAPACITY,
        }
    }
}

/// Why a configuration or input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcdError {
    /// A setting is invalid; `field` names it (`queue[2].ring_time`).
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No such queue.
    UnknownQueue,
    /// No such call.
    UnknownCall,
    /// The call id is already in use.
    DuplicateCall,
    /// The input does not fit the call (e.g. an agent answers a call that is not ringing it).
    NotRinging,
    /// The agent has no call in progress.
    NoCall,
    /// An agent-level refusal.
    Agent(AgentError),
}

impl From<AgentError> for AcdError {
    fn from(e: AgentError) -> Self {
        AcdError::Agent(e)
    }
}

/// Why a call left the queue for a destination or busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteReason {
    /// Not admitted (see [`OverflowReason`]).
    Overflow(OverflowReason),
    /// The queue timeout expired.
    Timeout,
    /// The ACD's call table is full ([`MAX_CALLS`]).
    Overload,
}

/// What the engine must do. Drained with [`Acd::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Answer the caller, play `greeting` (may be empty), then music on hold of class `moh`.
    Answer {
        /// The caller's call.
        call: u64,
        /// Prompt ids to play first.
        greeting: Vec<String>,
        /// MOH class.
        moh: Option<String>,
    },
    /// Play prompts to the waiting caller over MOH, then resume MOH.
    Announce {
        /// The caller's call.
        call: u64,
        /// Prompt ids.
        prompts: Vec<String>,
    },
    /// Ring the agent's phone for this call for at most `ring_time`.
    Ring {
        /// The caller's call.
        call: u64,
        /// Agent id.
        agent: String,
        /// The ACD ends the attempt itself after this long.
        ring_time: Duration,
    },
    /// Stop ringing the agent.
    StopRinging {
        /// The caller's call.
        call: u64,
        /// Agent id.
        agent: String,
    },
    /// Bridge caller and agent, after playing `whisper` to the agent alone.
    Connect {
        /// The caller's call.
        call: u64,
        /// Agent id.
        agent: String,
        /// Agent-only prompt.
        whisper: Option<String>,
        /// Whether the box already answered the caller; `false` (answered during
        /// ring-before-queue) means the engine answers the caller now.
        caller_answered: bool,
    },
    /// Send the caller to a destination.
    Route {
        /// The caller's call.
        call: u64,
        /// Where.
        destination: Destination,
        /// Why.
        reason: RouteReason,
    },
    /// Answer the caller busy (486) or, once answered, play busy and hang up.
    RejectBusy {
        /// The caller's call.
        call: u64,
        /// Why.
        reason: RouteReason,
    },
    /// Append this to the event log (store) — also kept in [`Acd::recent_events`].
    Event(Event),
}

#[derive(Debug)]
struct Member {
    agent: usize,
    skill: u8,
    /// Paused in this queue only (seed 002 §2.4 group tag).
    paused: bool,
    offers: u64,
}

#[derive(Debug)]
struct Queue {
    cfg: QueueConfig,
    members: Vec<Member>,
    /// Waiting calls, oldest first.
    waiting: VecDeque<u64>,
    answered_now: u32,
    last_rung: Option<usize>,
    avg_talk_ms: Option<u64>,
}

#[derive(Debug)]
struct Waiting {
    queue: usize,
    entered: Instant,
    /// When the caller hears ringback no more and is queued (answered by the box).
    queue_at: Option<Instant>,
    queued: bool,
    timeout_at: Option<Instant>,
    next_announce: Option<Instant>,
    /// Agents ringing now, with their ring start.
    ringing: Vec<(usize, Instant)>,
    ring_deadline: Option<Instant>,
    tried: Vec<usize>,
    /// Agents who declined this call, and when it may be offered to them again.
    backoff: Vec<(usize, Instant)>,
    rang: bool,
}

impl Waiting {
    /// When the first decline back-off of this call ends.
    fn backoff_ends(&self) -> Option<Instant> {
        self.backoff.iter().map(|b| b.1).min()
    }
}

/// A call an agent is on.
#[derive(Debug)]
struct Talk {
    call: u64,
    queue: Option<usize>,
    direction: Direction,
    /// Ring start (outbound) or talk start.
    started: Instant,
    talk_start: Option<Instant>,
    hold_start: Option<Instant>,
    hold_ms: u64,
    holds: u32,
}

#[derive(Debug, Clone, Copy)]
struct AcwContext {
    start: Instant,
    direction: Direction,
    call: Option<u64>,
    queue: Option<usize>,
}

/// The ACD core. See the module doc for the contract.
#[derive(Debug)]
pub struct Acd {
    queues: Vec<Queue>,
    queue_ids: HashMap<String, usize>,
    agents: Vec<Agent>,
    agent_ids: HashMap<String, usize>,
    talks: Vec<Option<Talk>>,
    /// ACW start and direction per agent.
    /// ACW start, direction, call and queue per agent, so `acw_end` names the call.
    acw: Vec<Option<AcwContext>>,
    catalog: StatusCatalog,
    calls: HashMap<u64, Waiting>,
    out: VecDeque<Output>,
    ring: EventRing,
    anchor: (Instant, u64),
    rng: Rng,
    daily_logout: Option<(u8, u8)>,
    utc_offset: UtcOffset,
    next_logout: Option<Instant>,
    outbound_acw: Option<Duration>,
    scratch: Vec<usize>,
    /// Declines in a row per agent (reset by an answer or an auto-pause).
    declines: Vec<u32>,
}

fn invalid(field: String, reason: &'static str) -> AcdError {
    AcdError::Invalid { field, reason }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn since_ms(now: Instant, then: Instant) -> u64 {
    ms(now.saturating_duration_since(then))
}

fn dest_label(d: &Destination) -> String {
    let kind = match d {
        Destination::Extension(_) => "extension",
        Destination::Group(_) => "group",
        Destination::Queue(_) => "queue",
        Destination::Ivr(_) => "ivr",
        Destination::Announcement(_) => "announcement",
        Destination::Voicemail(_) => "voicemail",
        Destination::External(_) => "external",
        Destination::Hangup => return "hangup".to_string(),
    };
    format!("{kind}:{}", d.target().unwrap_or(""))
}

/// `Some(ZERO)` → until cleared (`Some(None)`); `Some(d)` → `Some(Some(now + d))`.
fn release(setting: Option<Duration>, now: Instant) -> Option<Option<Instant>> {
    setting.map(|d| if d.is_zero() { None } else { Some(now + d) })
}

fn check_name(field: String, name: &str) -> Result<(), AcdError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(invalid(field, "empty or longer than 64 bytes"));
    }
    Ok(())
}

impl Acd {
    /// An ACD without agents or queues (a box without a call center).
    pub fn empty(now: Instant, unix_ms: u64) -> Acd {
        Acd {
            queues: Vec::new(),
            queue_ids: HashMap::new(),
            agents: Vec::new(),
            agent_ids: HashMap::new(),
            talks: Vec::new(),
            acw: Vec::new(),
            catalog: StatusCatalog::default(),
            calls: HashMap::new(),
            out: VecDeque::new(),
            ring: EventRing::new(super::events::DEFAULT_RING_CAPACITY),
            anchor: (now, unix_ms),
            rng: Rng::new(1),
            daily_logout: None,
            utc_offset: UtcOffset::JST,
            next_logout: None,
            outbound_acw: None,
            scratch: Vec::new(),
            declines: Vec::new(),
        }
    }

    /// Builds the ACD from checked settings. `now`/`unix_ms` anchor the wall clock.
    pub fn new(cfg: AcdConfig, now: Instant, unix_ms: u64) -> Result<Acd, AcdError> {
        if cfg.agents.len() > MAX_AGENTS {
            return Err(invalid("agents".into(), "more than MAX_AGENTS"));
        }
        if cfg.queues.len() > MAX_QUEUES {
            return Err(invalid("queues".into(), "more than MAX_QUEUES"));
        }
        let names: Vec<&str> = cfg.custom_states.iter().map(String::as_str).collect();
        let catalog = StatusCatalog::new(&names)?;
        let mut agents = Vec::with_capacity(cfg.agents.len());
        let mut agent_ids = HashMap::new();
        for (i, id) in cfg.agents.iter().enumerate() {
            check_name(format!("agents[{}]", i + 1), id)?;
            if agent_ids.insert(id.clone(), i).is_some() {
                return Err(invalid(format!("agents[{}]", i + 1), "duplicate agent"));
            }
            agents.push(Agent::new(id, now));
        }
        if let Some((h, m)) = cfg.daily_logout {
            if h > 23 || m > 59 {
                return Err(invalid("daily_logout".into(), "not a time of day"));
            }
        }
        let mut queues = Vec::with_capacity(cfg.queues.len());
        let mut queue_ids = HashMap::new();
        for (qi, q) in cfg.queues.into_iter().enumerate() {
            let f = |name: &str| format!("queue[{}].{name}", qi + 1);
            check_name(f("name"), &q.name)?;
            if q.ring_time.is_zero() || q.ring_time > MAX_RING_TIME {
                return Err(invalid(f("ring_time"), "must be 1 s ..= 600 s"));
            }
            if q.max_waiting > MAX_WAITING_LIMIT {
                return Err(invalid(f("max_waiting"), "above MAX_WAITING_LIMIT"));
            }
            if q.max_answered == 0 {
                return Err(invalid(f("max_answered"), "must be at least 1"));
            }
            if q.periodic.as_ref().is_some_and(|p| p.every < MIN_ANNOUNCE_EVERY) {
                return Err(invalid(f("periodic.every"), "shorter than 10 s"));
            }
            let mut members: Vec<Member> = Vec::with_capacity(q.members.len());
            for (mi, m) in q.members.iter().enumerate() {
                let field = format!("queue[{}].member[{}]", qi + 1, mi + 1);
                let agent =
                    *agent_ids.get(&m.agent).ok_or_else(|| invalid(field.clone(), "unknown agent"))?;
                if m.skill == 0 || m.skill > MAX_SKILL_LEVEL {
                    return Err(invalid(field, "skill must be 1 ..= 99"));
                }
                if members.iter().any(|x| x.agent == agent) {
                    return Err(invalid(field, "agent listed twice"));
                }
                members.push(Member { agent, skill: m.skill, paused: false, offers: 0 });
            }
            if queue_ids.insert(q.name.clone(), qi).is_some() {
                return Err(invalid(f("name"), "duplicate queue"));
            }
            queues.push(Queue {
                cfg: q,
                members,
                waiting: VecDeque::new(),
                answered_now: 0,
                last_rung: None,
                avg_talk_ms: None,
            });
        }
        let n = agents.len();
        let mut acd = Acd {
            queues,
            queue_ids,
            agents,
            agent_ids,
            talks: (0..n).map(|_| None).collect(),
            acw: vec![None; n],
            catalog,
            calls: HashMap::new(),
            out: VecDeque::new(),
            ring: EventRing::new(cfg.event_ring),
            anchor: (now, unix_ms),
            rng: Rng::new(cfg.seed),
            daily_logout: cfg.daily_logout,
            utc_offset: cfg.utc_offset,
            next_logout: None,
            outbound_acw: cfg.outbound_acw,
            scratch: Vec::new(),
            declines: vec![0; n],
        };
        acd.schedule_logout(now);
        Ok(acd)
    }

    // -----------------------------------------------------------------------------------------
    // Polling.

    /// The next thing for the engine to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Acd::handle_timeout`] must be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self
            .calls
            .values()
            .flat_map(|c| [c.timeout_at, c.ring_deadline, c.next_announce, c.queue_at, c.backoff_ends()]);
        let agents = self.agents.iter().map(Agent::release_at);
        calls.chain(agents).chain([self.next_logout]).flatten().min()
    }

    /// Fires every timer due at `now`. Idempotent.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due: Vec<(Instant, u64)> = self
            .calls
            .iter()
            .filter_map(|(&id, c)| {
                [c.timeout_at, c.ring_deadline, c.next_announce, c.queue_at, c.backoff_ends()]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|t| (t, id))
            })
            .filter(|&(t, _)| t <= now)
            .collect();
        due.sort_unstable();
        for (_, id) in due {
            self.call_timers(now, id);
        }
        for a in 0..self.agents.len() {
            if self.agents.get(a).and_then(Agent::release_at).is_some_and(|t| t <= now) {
                let input = match self.agents.get(a).map(Agent::state) {
                    Some(AgentState::AfterCallWork) => AgentInput::AcwExpired,
                    _ => AgentInput::PauseExpired,
                };
                let _ = self.transition(now, a, input, Cause::Timer);
            }
        }
        if self.next_logout.is_some_and(|t| t <= now) {
            self.daily_logout_now(now);
        }
        self.dispatch(now);
    }

    /// Re-anchors the wall clock (NTP step); recomputes the daily logout.
    pub fn handle_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.anchor = (now, unix_ms);
        self.schedule_logout(now);
    }

    // -----------------------------------------------------------------------------------------
    // Caller inputs.

    /// A caller entered `queue`. Emits either admission outputs or overflow/busy.
    pub fn caller_entered(
        &mut self,
        now: Instant,
        call: u64,
        queue: &str,
        caller: &str,
    ) -> Result<(), AcdError> {
        let qi = *self.queue_ids.get(queue).ok_or(AcdError::UnknownQueue)?;
        if self.calls.contains_key(&call) || self.talks.iter().flatten().any(|t| t.call == call) {
            return Err(AcdError::DuplicateCall);
        }
        if self.calls.len() >= MAX_CALLS {
            self.out.push_back(Output::RejectBusy { call, reason: RouteReason::Overload });
            return Ok(());
        }
        let Some(q) = self.queues.get(qi) else { return Err(AcdError::UnknownQueue) };
        let staffed = q.members.iter().filter(|m| self.member_staffed(m)).count();
        let free = q.members.iter().filter(|m| self.member_free(m)).count();
        let unassigned =
            q.waiting.iter().filter(|id| self.calls.get(id).is_some_and(|c| c.ringing.is_empty())).count();
        let reason = if staffed == 0 && !q.cfg.join_when_empty {
            Some(OverflowReason::NoAgents)
        } else if q.waiting.len() >= q.cfg.max_waiting as usize && unassigned >= free {
            Some(OverflowReason::QueueFull)
        } else {
            None
        };
        if let Some(reason) = reason {
            let destination = q.cfg.overflow.clone();
            let label = destination.as_ref().map(dest_label);
            self.emit(now, Some(qi), None, Some(call), EventKind::Overflow { reason, destination: label });
            self.route(call, destination, RouteReason::Overflow(reason));
            return Ok(());
        }
        let timeout_at = q.cfg.timeout.map(|d| now + d);
        let rbq = q.cfg.ring_before_queue;
        let position = u32::try_from(q.waiting.len() + 1).unwrap_or(u32::MAX);
        let mut w = Waiting {
            queue: qi,
            entered: now,
            queue_at: Some(now + rbq),
            queued: false,
            timeout_at,
            next_announce: None,
            ringing: Vec::new(),
            ring_deadline: None,
            tried: Vec::new(),
            backoff: Vec::new(),
            rang: false,
        };
        if rbq.is_zero() {
            self.start_queued(now, call, &mut w);
        }
        if let Some(q) = self.queues.get_mut(qi) {
            q.waiting.push_back(call);
        }
        self.calls.insert(call, w);
        self.emit(now, Some(qi), None, Some(call), EventKind::Enter { caller: caller.to_string(), position });
        self.dispatch(now);
        Ok(())
    }

    /// The caller hung up: abandon if waiting, end of talk if connected.
    pub fn caller_hung_up(&mut self, now: Instant, call: u64) -> Result<(), AcdError> {
        if let Some(w) = self.calls.get(&call) {
            let qi = w.queue;
            let (wait_ms, rang) = (since_ms(now, w.entered), w.rang);
            let position = self.position(call).unwrap_or(0);
            self.emit(now, Some(qi), None, Some(call), EventKind::Abandon { wait_ms, rang, position });
            self.remove_waiting(now, call);
            self.dispatch(now);
            return Ok(());
        }
        let a = self
            .talks
            .iter()
            .position(|t| t.as_ref().is_some_and(|t| t.call == call))
            .ok_or(AcdError::UnknownCall)?;
        self.end_talk(now, a, None)
    }

    // -----------------------------------------------------------------------------------------
    // Agent call inputs.

    /// The agent answered a call ringing it.
    pub fn agent_answered(&mut self, now: Instant, call: u64, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let w = self.calls.get(&call).ok_or(AcdError::UnknownCall)?;
        let ring_start = w.ringing.iter().find(|r| r.0 == a).map(|r| r.1).ok_or(AcdError::NotRinging)?;
        let (qi, wait_ms, caller_answered) = (w.queue, since_ms(now, w.entered), w.queued);
        self.transition(now, a, AgentInput::Answered, Cause::Call)?;
        if let Some(d) = self.declines.get_mut(a) {
            *d = 0;
        }
        self.emit(
            now,
            Some(qi),
            Some(a),
            Some(call),
            EventKind::Connect { wait_ms, ring_ms: since_ms(now, ring_start) },
        );
        if let Some(w) = self.calls.get_mut(&call) {
            w.ringing.retain(|r| r.0 != a);
        }
        self.remove_waiting(now, call);
        if let Some(t) = self.talks.get_mut(a) {
            *t = Some(Talk {
                call,
                queue: Some(qi),
                direction: Direction::Inbound,
                started: now,
                talk_start: Some(now),
                hold_start: None,
                hold_ms: 0,
                holds: 0,
            });
        }
        let whisper = self.queues.get_mut(qi).and_then(|q| {
            q.answered_now = q.answered_now.saturating_add(1);
            q.cfg.whisper.clone()
        });
        self.out.push_back(Output::Connect { call, agent: agent.to_string(), whisper, caller_answered });
        self.dispatch(now);
        Ok(())
    }

    /// The agent rejected the ringing call (busy, DND, decline). The call is not offered to
    /// this agent again for the queue's `ring_time` (at least [`MIN_DECLINE_BACKOFF`]);
    /// the [`DECLINES_BEFORE_PAUSE`]th decline in a row counts as a no-answer for the
    /// queue's `auto_pause`.
    pub fn agent_declined(&mut self, now: Instant, call: u64, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let w = self.calls.get(&call).ok_or(AcdError::UnknownCall)?;
        let ring_start = w.ringing.iter().find(|r| r.0 == a).map(|r| r.1).ok_or(AcdError::NotRinging)?;
        let qi = w.queue;
        let (ring_time, auto_pause) =
            self.queues.get(qi).map_or((MIN_DECLINE_BACKOFF, None), |q| (q.cfg.ring_time, q.cfg.auto_pause));
        self.emit(
            now,
            Some(qi),
            Some(a),
            Some(call),
            EventKind::Decline { ring_ms: since_ms(now, ring_start) },
        );
        let declines = self.declines.get_mut(a).map_or(0, |d| {
            *d = d.saturating_add(1);
            *d
        });
        let (pause_until, cause) = match auto_pause {
            Some(p) if declines >= DECLINES_BEFORE_PAUSE => (release(Some(p), now), Cause::NoAnswer),
            _ => (None, Cause::Call),
        };
        if pause_until.is_some() {
            if let Some(d) = self.declines.get_mut(a) {
                *d = 0;
            }
        }
        self.transition(now, a, AgentInput::RingEnded { pause_until }, cause)?;
        self.after_call(now, a);
        if let Some(w) = self.calls.get_mut(&call) {
            w.ringing.retain(|r| r.0 != a);
            if w.ringing.is_empty() {
                w.ring_deadline = None;
            }
            w.backoff.retain(|b| b.0 != a);
            w.backoff.push((a, now + ring_time.max(MIN_DECLINE_BACKOFF)));
        }
        self.dispatch(now);
        Ok(())
    }

    /// The agent put the call on hold.
    pub fn agent_hold(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let (call, qi) = self.talk_of(a)?;
        self.transition(now, a, AgentInput::Hold, Cause::Call)?;
        if let Some(Some(t)) = self.talks.get_mut(a) {
            t.hold_start = Some(now);
            t.holds = t.holds.saturating_add(1);
        }
        self.emit(now, qi, Some(a), Some(call), EventKind::Hold);
        Ok(())
    }

    /// The agent took the call off hold.
    pub fn agent_unhold(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let (call, qi) = self.talk_of(a)?;
        self.transition(now, a, AgentInput::Unhold, Cause::Call)?;
        let mut hold_ms = 0;
        if let Some(Some(t)) = self.talks.get_mut(a) {
            hold_ms = t.hold_start.take().map_or(0, |s| since_ms(now, s));
            t.hold_ms = t.hold_ms.saturating_add(hold_ms);
        }
        self.emit(now, qi, Some(a), Some(call), EventKind::Unhold { hold_ms });
        Ok(())
    }

    /// The agent's side ended the connected call (or the far end of an outbound call hung up).
    pub fn call_ended(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        self.end_talk(now, a, None)
    }

    /// The agent transferred the call to `target`; talk ends for the agent.
    pub fn call_transferred(&mut self, now: Instant, agent: &str, target: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        self.end_talk(now, a, Some(target))
    }

    /// The agent started an outbound call `call` to `number`.
    pub fn agent_dial(&mut self, now: Instant, agent: &str, call: u64, number: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        self.transition(now, a, AgentInput::Dial, Cause::Call)?;
        if let Some(t) = self.talks.get_mut(a) {
            *t = Some(Talk {
                call,
                queue: None,
                direction: Direction::Outbound,
                started: now,
                talk_start: None,
                hold_start: None,
                hold_ms: 0,
                holds: 0,
            });
        }
        self.emit(now, None, Some(a), Some(call), EventKind::Dial { number: number.to_string() });
        Ok(())
    }

    /// The far end answered the agent's outbound call.
    pub fn agent_dial_answered(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let (call, _) = self.talk_of(a)?;
        self.transition(now, a, AgentInput::DialAnswered, Cause::Call)?;
        let mut ring_ms = 0;
        if let Some(Some(t)) = self.talks.get_mut(a) {
            ring_ms = since_ms(now, t.started);
            t.talk_start = Some(now);
        }
        self.emit(now, None, Some(a), Some(call), EventKind::DialAnswered { ring_ms });
        Ok(())
    }

    /// The outbound call ended unanswered.
    pub fn agent_dial_failed(&mut self, now: Instant, agent: &str) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let (call, _) = self.talk_of(a)?;
        self.transition(now, a, AgentInput::DialFailed, Cause::Call)?;
        let ring_ms = self.talks.get_mut(a).and_then(Option::take).map_or(0, |t| since_ms(now, t.started));
        self.emit(now, None, Some(a), Some(call), EventKind::DialFailed { ring_ms });
        self.after_call(now, a);
        self.dispatch(now);
        Ok(())
    }

    /// An internal call started (`true`) or ended (`false`) for the agent.
    pub fn agent_internal_call(&mut self, now: Instant, agent: &str, started: bool) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let input = if started { AgentInput::InternalStart } else { AgentInput::InternalEnd };
        self.transition(now, a, input, Cause::Call)?;
        if !started {
            self.after_call(now, a);
        }
        self.dispatch(now);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Agent and supervisor commands.

    /// Login.
    pub fn login(&mut self, now: Instant, agent: &str, by: Cause) -> Result<AgentState, AcdError> {
        let a = self.agent_index(agent)?;
        self.transition(now, a, AgentInput::Login, by)
    }

    /// Logout (refused while the agent is on a call).
    pub fn logout(&mut self, now: Instant, agent: &str, by: Cause) -> Result<AgentState, AcdError> {
        let a = self.agent_index(agent)?;
        self.transition(now, a, AgentInput::Logout, by)
    }

    /// The agent or a supervisor selects a state (available, preparing, breaks, other work,
    /// and from after-call work).
    pub fn set_state(
        &mut self,
        now: Instant,
        agent: &str,
        state: AgentState,
        by: Cause,
    ) -> Result<AgentState, AcdError> {
        let a = self.agent_index(agent)?;
        let s = self.transition(now, a, AgentInput::Select(state), by)?;
        self.dispatch(now);
        Ok(s)
    }

    /// Pauses (`available = false`) or resumes the agent in one queue, or in all of its queues
    /// when `queue` is `None` (seed 002 §2.4 white tag vs group tag).
    pub fn set_queue_availability(
        &mut self,
        now: Instant,
        agent: &str,
        queue: Option<&str>,
        available: bool,
    ) -> Result<(), AcdError> {
        let a = self.agent_index(agent)?;
        let only = match queue {
            Some(name) => Some(*self.queue_ids.get(name).ok_or(AcdError::UnknownQueue)?),
            None => None,
        };
        let mut found = false;
        for (qi, q) in self.queues.iter_mut().enumerate() {
            if only.is_some_and(|o| o != qi) {
                continue;
            }
            if let Some(m) = q.members.iter_mut().find(|m| m.agent == a) {
                m.paused = !available;
                found = true;
            }
        }
        if !found {
            return Err(AgentError::UnknownQueue.into());
        }
        self.dispatch(now);
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Getters.

    /// An agent's state.
    pub fn agent_state(&self, agent: &str) -> Option<AgentState> {
        self.agent_ids.get(agent).and_then(|&a| self.agents.get(a)).map(Agent::state)
    }

    /// Unanswered calls in a queue.
    pub fn waiting(&self, queue: &str) -> usize {
        self.queue_ids.get(queue).and_then(|&q| self.queues.get(q)).map_or(0, |q| q.waiting.len())
    }

    /// A queue's live status: (waiting calls, longest wait, staffed members).
    pub fn queue_status(&self, now: Instant, queue: &str) -> Option<(usize, Duration, usize)> {
        let q = self.queue_ids.get(queue).and_then(|&q| self.queues.get(q))?;
        let longest = q
            .waiting
            .iter()
            .filter_map(|c| self.calls.get(c))
            .map(|w| now.saturating_duration_since(w.entered))
            .max()
            .unwrap_or(Duration::ZERO);
        let staffed = q.members.iter().filter(|m| self.member_staffed(m)).count();
        Some((q.waiting.len(), longest, staffed))
    }

    /// Agent ids in configuration order.
    pub fn agent_ids(&self) -> Vec<String> {
        self.agents.iter().map(|a| a.id().to_string()).collect()
    }

    /// An agent's state and since when it holds it.
    pub fn agent_status(&self, agent: &str) -> Option<(AgentState, Instant)> {
        self.agent_ids.get(agent).and_then(|&a| self.agents.get(a)).map(|a| (a.state(), a.since()))
    }

    /// Whether the agent is paused in `queue`; `None` when it is not a member.
    pub fn member_paused(&self, agent: &str, queue: &str) -> Option<bool> {
        let a = *self.agent_ids.get(agent)?;
        let q = self.queue_ids.get(queue).and_then(|&q| self.queues.get(q))?;
        q.members.iter().find(|m| m.agent == a).map(|m| m.paused)
    }

    /// A waiting call's 1-based position.
    pub fn position(&self, call: u64) -> Option<u32> {
        let w = self.calls.get(&call)?;
        let q = self.queues.get(w.queue)?;
        q.waiting.iter().position(|&c| c == call).and_then(|p| u32::try_from(p + 1).ok())
    }

    /// The latest events.
    pub fn recent_events(&self) -> &EventRing {
        &self.ring
    }

    /// The custom state catalog.
    pub fn catalog(&self) -> &StatusCatalog {
        &self.catalog
    }

    // -----------------------------------------------------------------------------------------
    // Internals.

    fn agent_index(&self, agent: &str) -> Result<usize, AcdError> {
        self.agent_ids.get(agent).copied().ok_or(AgentError::UnknownAgent.into())
    }

    fn talk_of(&self, a: usize) -> Result<(u64, Option<usize>), AcdError> {
        self.talks.get(a).and_then(Option::as_ref).map(|t| (t.call, t.queue)).ok_or(AcdError::NoCall)
    }

    fn member_staffed(&self, m: &Member) -> bool {
        !m.paused && self.agents.get(m.agent).is_some_and(|a| a.state().staffed())
    }

    fn member_free(&self, m: &Member) -> bool {
        !m.paused && self.agents.get(m.agent).is_some_and(|a| a.state() == AgentState::Available)
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let (at, base) = self.anchor;
        match now.checked_duration_since(at) {
            Some(d) => base.saturating_add(ms(d)),
            None => base.saturating_sub(since_ms(at, now)),
        }
    }

    fn emit(
        &mut self,
        now: Instant,
        queue: Option<usize>,
        agent: Option<usize>,
        call: Option<u64>,
        kind: EventKind,
    ) {
        let event = Event {
            at_ms: self.unix_ms(now),
            queue: queue.and_then(|q| self.queues.get(q)).map(|q| q.cfg.name.clone()),
            agent: agent.and_then(|a| self.agents.get(a)).map(|a| a.id().to_string()),
            call,
            kind,
        };
        self.ring.push(event.clone());
        self.out.push_back(Output::Event(event));
    }

    /// Applies an agent input and logs the state change (and ACW start/end).
    fn transition(
        &mut self,
        now: Instant,
        a: usize,
        input: AgentInput,
        cause: Cause,
    ) -> Result<AgentState, AcdError> {
        let agent = self.agents.get_mut(a).ok_or(AcdError::Agent(AgentError::UnknownAgent))?;
        let from = agent.state();
        let to = agent.apply(input, now, &self.catalog)?;
        let limit_ms = agent.release_at().map(|t| since_ms(t, now));
        if from == AgentState::AfterCallWork && to != AgentState::AfterCallWork {
            if let Some(c) = self.acw.get_mut(a).and_then(Option::take) {
                let kind = EventKind::AcwEnd { direction: c.direction, acw_ms: since_ms(now, c.start) };
                self.emit(now, c.queue, Some(a), c.call, kind);
            }
        }
        let label = match to {
            AgentState::OtherWork(n) => self.catalog.name(n).map(str::to_string),
            _ => None,
        };
        self.emit(now, None, Some(a), None, EventKind::StateChange { from, to, label, cause });
        if to == AgentState::AfterCallWork && from != AgentState::AfterCallWork {
            let direction = self.agents.get(a).map_or(Direction::Inbound, |ag| {
                if ag.outbound() {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                }
            });
            // Called from `end_talk` before the talk is taken: it names the call.
            let talk = self.talks.get(a).and_then(Option::as_ref);
            let ctx = AcwContext {
                start: now,
                direction,
                call: talk.map(|t| t.call),
                queue: talk.and_then(|t| t.queue),
            };
            if let Some(slot) = self.acw.get_mut(a) {
                *slot = Some(ctx);
            }
            self.emit(now, ctx.queue, Some(a), ctx.call, EventKind::AcwStart { direction, limit_ms });
        }
        Ok(to)
    }

    /// Ends the agent's call: logs it, frees the queue slot, starts ACW.
    fn end_talk(&mut self, now: Instant, a: usize, transfer: Option<&str>) -> Result<(), AcdError> {
        let talk = self.talks.get(a).and_then(Option::as_ref).ok_or(AcdError::NoCall)?;
        let (call, qi, direction) = (talk.call, talk.queue, talk.direction);
        let state = self.agents.get(a).map(Agent::state);
        if state == Some(AgentState::Dialling) {
            return self.agent_dial_failed_index(now, a);
        }
        let acw_setting = match qi {
            Some(q) => self.queues.get(q).and_then(|q| q.cfg.after_call_work),
            None => self.outbound_acw,
        };
        let pending = self.agents.get(a).is_some_and(Agent::logout_pending);
        let acw_until = if pending { None } else { release(acw_setting, now) };
        self.transition(now, a, AgentInput::Hangup { acw_until }, Cause::Call)?;
        let Some(t) = self.talks.get_mut(a).and_then(Option::take) else { return Ok(()) };
        let open_hold = t.hold_start.map_or(0, |s| since_ms(now, s));
        let talk_ms = t.talk_start.map_or(0, |s| since_ms(now, s));
        let hold_ms = t.hold_ms.saturating_add(open_hold);
        let kind = match transfer {
            Some(target) => EventKind::Transfer {
                target: target.to_string(),
                direction,
                talk_ms,
                hold_ms,
                holds: t.holds,
            },
            None => EventKind::Complete { direction, talk_ms, hold_ms, holds: t.holds },
        };
        self.emit(now, qi, Some(a), Some(call), kind);
        if let Some(ag) = self.agents.get_mut(a) {
            ag.talk_total_ms = ag.talk_total_ms.saturating_add(talk_ms);
        }
        if let Some(q) = qi.and_then(|q| self.queues.get_mut(q)) {
            q.answered_now = q.answered_now.saturating_sub(1);
            let avg = q.avg_talk_ms.map_or(talk_ms, |avg| {
                (avg * (TALK_AVERAGE_PARTS - TALK_AVERAGE_NEW_PARTS) + talk_ms * TALK_AVERAGE_NEW_PARTS)
                    / TALK_AVERAGE_PARTS
            });
            q.avg_talk_ms = Some(avg);
        }
        self.after_call(now, a);
        self.dispatch(now);
        Ok(())
    }

    fn agent_dial_failed_index(&mut self, now: Instant, a: usize) -> Result<(), AcdError> {
        let id = self.agents.get(a).map(|g| g.id().to_string()).unwrap_or_default();
        self.agent_dial_failed(now, &id)
    }

    /// A call or a ring ended for the agent: honour a pending daily logout.
    fn after_call(&mut self, now: Instant, a: usize) {
        let idle = self.agents.get(a).is_some_and(|g| g.logout_pending() && !g.state().on_call());
        if idle {
            let _ = self.transition(now, a, AgentInput::Logout, Cause::DailyLogout);
        }
    }

    fn route(&mut self, call: u64, destination: Option<Destination>, reason: RouteReason) {
        self.out.push_back(match destination {
            Some(destination) => Output::Route { call, destination, reason },
            None => Output::RejectBusy { call, reason },
        });
    }

    /// The caller hears ringback no more: answer, greet, music on hold, announcements.
    fn start_queued(&mut self, now: Instant, call: u64, w: &mut Waiting) {
        let Some(q) = self.queues.get(w.queue) else { return };
        w.queued = true;
        w.queue_at = None;
        w.next_announce = q.cfg.periodic.as_ref().map(|p| now + p.every);
        let greeting = q.cfg.greeting.iter().cloned().collect();
        self.out.push_back(Output::Answer { call, greeting, moh: q.cfg.moh.clone() });
    }

    /// Removes a waiting call, stopping any ringing.
    fn remove_waiting(&mut self, now: Instant, call: u64) {
        let Some(w) = self.calls.remove(&call) else { return };
        if let Some(q) = self.queues.get_mut(w.queue) {
            q.waiting.retain(|&c| c != call);
        }
        for (a, started) in w.ringing {
            self.stop_ringing(now, call, w.queue, a, started, None);
        }
    }

    /// Ends one agent's ringing. `no_answer` carries the auto-pause for a ring timeout.
    fn stop_ringing(
        &mut self,
        now: Instant,
        call: u64,
        qi: usize,
        a: usize,
        started: Instant,
        no_answer: Option<Option<Option<Instant>>>,
    ) {
        let ring_ms = since_ms(now, started);
        let id = self.agents.get(a).map(|g| g.id().to_string()).unwrap_or_default();
        self.out.push_back(Output::StopRinging { call, agent: id });
        let (kind, pause_until, cause) = match no_answer {
            Some(pause) => (EventKind::NoAnswer { ring_ms }, pause, Cause::NoAnswer),
            None => (EventKind::RingStopped { ring_ms }, None, Cause::Call),
        };
        self.emit(now, Some(qi), Some(a), Some(call), kind);
        let _ = self.transition(now, a, AgentInput::RingEnded { pause_until }, cause);
        self.after_call(now, a);
    }

    fn call_timers(&mut self, now: Instant, call: u64) {
        if let Some(w) = self.calls.get_mut(&call) {
            // Expired back-offs go, or `poll_timeout` would keep returning the past.
            w.backoff.retain(|b| b.1 > now);
        }
        let Some(w) = self.calls.get(&call) else { return };
        let qi = w.queue;
        if w.timeout_at.is_some_and(|t| t <= now) {
            let wait_ms = since_ms(now, w.entered);
            let destination = self.queues.get(qi).and_then(|q| q.cfg.timeout_destination.clone());
            let label = destination.as_ref().map(dest_label);
            self.emit(now, Some(qi), None, Some(call), EventKind::Timeout { wait_ms, destination: label });
            self.remove_waiting(now, call);
            self.route(call, destination, RouteReason::Timeout);
            return;
        }
        if w.ring_deadline.is_some_and(|t| t <= now) {
            let ringing = self.calls.get_mut(&call).map(|w| {
                w.ring_deadline = None;
                std::mem::take(&mut w.ringing)
            });
            let pause = self.queues.get(qi).and_then(|q| q.cfg.auto_pause);
            for (a, started) in ringing.unwrap_or_default() {
                self.stop_ringing(now, call, qi, a, started, Some(release(pause, now)));
            }
        }
        let Some(mut w) = self.calls.remove(&call) else { return };
        if w.queue_at.is_some_and(|t| t <= now) {
            self.start_queued(now, call, &mut w);
        }
        if w.next_announce.is_some_and(|t| t <= now) {
            let every = self.queues.get(qi).and_then(|q| q.cfg.periodic.as_ref()).map(|p| p.every);
            w.next_announce = every.map(|e| now + e);
            self.calls.insert(call, w);
            self.announce(call);
        } else {
            self.calls.insert(call, w);
        }
    }

    /// The periodic announcement: own prompt, position, expected wait.
    fn announce(&mut self, call: u64) {
        let Some(w) = self.calls.get(&call) else { return };
        let Some(q) = self.queues.get(w.queue) else { return };
        let Some(p) = q.cfg.periodic.as_ref() else { return };
        let lang = q.cfg.lang;
        let position = self.position(call).unwrap_or(1);
        let mut prompts: Vec<String> = p.prompt.iter().cloned().collect();
        if p.position {
            prompts.extend(sentence_queue_position(position, lang).into_iter().map(str::to_string));
        }
        if p.expected_wait {
            if let Some(avg) = q.avg_talk_ms {
                let staffed = q.members.iter().filter(|m| self.member_staffed(m)).count().max(1) as u64;
                let wait_ms = avg.saturating_mul(u64::from(position)) / staffed;
                let minutes = u32::try_from(wait_ms / 60_000).unwrap_or(u32::MAX);
                prompts.extend(sentence_wait_time(minutes, lang).into_iter().map(str::to_string));
            }
        }
        if !prompts.is_empty() {
            self.out.push_back(Output::Announce { call, prompts });
        }
    }

    /// Offers waiting calls to free agents, oldest call first across all queues.
    fn dispatch(&mut self, now: Instant) {
        // Most inputs (answer, hold, hangup into ACW) leave nobody free: skip the scan.
        if !self.agents.iter().any(|a| a.state() == AgentState::Available) {
            return;
        }
        let mut order: Vec<(Instant, u64)> =
            self.calls.iter().filter(|(_, w)| w.ringing.is_empty()).map(|(&id, w)| (w.entered, id)).collect();
        if order.is_empty() {
            return;
        }
        order.sort_unstable();
        let mut exhausted = vec![false; self.queues.len()];
        for (_, call) in order {
            if exhausted.iter().all(|&e| e) {
                break;
            }
            let Some(w) = self.calls.get(&call) else { continue };
            let qi = w.queue;
            if exhausted.get(qi).copied().unwrap_or(true) {
                continue;
            }
            let Some(q) = self.queues.get(qi) else { continue };
            let ringing_calls =
                q.waiting.iter().filter(|c| self.calls.get(c).is_some_and(|w| !w.ringing.is_empty())).count();
            if q.answered_now as usize + ringing_calls >= q.cfg.max_answered as usize {
                if let Some(e) = exhausted.get_mut(qi) {
                    *e = true;
                }
                continue;
            }
            let cands: Vec<Candidate> = q
                .members
                .iter()
                .enumerate()
                .filter_map(|(mi, m)| {
                    let ag = self.agents.get(m.agent)?;
                    Some(Candidate {
                        member: mi,
                        skill: m.skill,
                        free: self.member_free(m)
                            && !w.backoff.iter().any(|&(b, until)| b == m.agent && until > now),
                        staffed: self.member_staffed(m),
                        tried: w.tried.contains(&m.agent),
                        last_call_end: ag.last_call_end,
                        talk_total_ms: ag.talk_total_ms,
                        calls: ag.calls_answered,
                        offers: m.offers,
                    })
                })
                .collect();
            let mut chosen = std::mem::take(&mut self.scratch);
            chosen.clear();
            choose(q.cfg.strategy, &cands, q.last_rung, &mut self.rng, &mut chosen);
            if chosen.is_empty() {
                if let Some(e) = exhausted.get_mut(qi) {
                    *e = true;
                }
                self.scratch = chosen;
                continue;
            }
            let ring_time = q.cfg.ring_time;
            for &mi in &chosen {
                self.ring_member(now, call, qi, mi, ring_time);
            }
            self.scratch = chosen;
        }
    }

    fn ring_member(&mut self, now: Instant, call: u64, qi: usize, mi: usize, ring_time: Duration) {
        let Some(q) = self.queues.get_mut(qi) else { return };
        let Some(m) = q.members.get_mut(mi) else { return };
        m.offers = m.offers.saturating_add(1);
        let a = m.agent;
        q.last_rung = Some(mi);
        if self.transition(now, a, AgentInput::Offered, Cause::Call).is_err() {
            return;
        }
        if let Some(w) = self.calls.get_mut(&call) {
            w.ringing.push((a, now));
            w.ring_deadline = Some(now + ring_time);
            w.rang = true;
            if !w.tried.contains(&a) {
                w.tried.push(a);
            }
        }
        self.emit(now, Some(qi), Some(a), Some(call), EventKind::Ring { ring_limit_ms: ms(ring_time) });
        let agent = self.agents.get(a).map(|g| g.id().to_string()).unwrap_or_default();
        self.out.push_back(Output::Ring { call, agent, ring_time });
    }

    /// The next local `hh:mm` after `now`.
    fn schedule_logout(&mut self, now: Instant) {
        self.next_logout = self.daily_logout.map(|(h, m)| {
            let local = i64::try_from(self.unix_ms(now)).unwrap_or(i64::MAX)
                + i64::from(self.utc_offset.minutes()) * 60_000;
            let target = (i64::from(h) * 60 + i64::from(m)) * 60_000;
            let mut delta = (target - local.rem_euclid(DAY_MS)).rem_euclid(DAY_MS);
            if delta == 0 {
                delta = DAY_MS;
            }
            now + Duration::from_millis(u64::try_from(delta).unwrap_or(0))
        });
    }

    /// Logs out everyone not on a call; those on a call are logged out when it ends.
    fn daily_logout_now(&mut self, now: Instant) {
        for a in 0..self.agents.len() {
            let Some(state) = self.agents.get(a).map(Agent::state) else { continue };
            if state == AgentState::LoggedOut {
                continue;
            }
            if state.on_call() {
                if let Some(ag) = self.agents.get_mut(a) {
                    ag.set_logout_pending();
                }
            } else {
                let _ = self.transition(now, a, AgentInput::Logout, Cause::DailyLogout);
            }
        }
        self.schedule_logout(now + Duration::from_secs(1));
    }
}
