//! The queue/agent event log: the only source of call-center reports (seed 004 §4.3, seed 002
//! §4.2).
//!
//! Every fact a report needs is one [`Event`] with a Unix-millisecond timestamp, the queue, the
//! agent and the call it concerns. The store keeps them as JSON lines
//! ([`Event::to_json_line`] / [`Event::from_json_line`]); [`EventRing`] keeps the latest ones in
//! memory for real-time views. Durations that a report would otherwise have to pair up from two
//! events (wait, ring, talk, hold, ACW) are also carried on the closing event, so a statistics
//! pass can work line by line without a join.
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

use super::agent::AgentState;

/// Longest JSON line accepted by [`Event::from_json_line`]. A real line is under 400 bytes; the
/// cap keeps a corrupt store file from making one parse allocate without bound.
pub const MAX_EVENT_LINE_BYTES: usize = 4096;

/// Default capacity of the in-memory ring: 50 agents × ~40 events/hour × 5 hours of a shift.
pub const DEFAULT_RING_CAPACITY: usize = 10_000;

/// Largest ring accepted, so a configuration typo cannot take the appliance's RAM.
pub const MAX_RING_CAPACITY: usize = 200_000;

/// Direction of a call as the reports split it (着/発).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// An outside caller reached the agent through a queue.
    Inbound,
    /// The agent dialled an outside number.
    Outbound,
}

/// Why a call left the queue for its overflow destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowReason {
    /// No free agent and the waiting calls were at the maximum (seed 002 §2.24 迂回).
    QueueFull,
    /// No member of the queue was logged in (and the queue does not take calls then).
    NoAgents,
}

/// Who or what changed an agent's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The agent (phone feature code or operator screen).
    Agent,
    /// A supervisor through the API (e.g. forced logout).
    Supervisor,
    /// The call model (ringing, answer, hold, hangup).
    Call,
    /// A timer: ACW or auto-pause release.
    Timer,
    /// The no-answer auto-pause of a queue.
    NoAnswer,
    /// The daily automatic logout.
    DailyLogout,
}

/// What happened. Serialized with an `event` tag, e.g. `{"event":"connect",...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A caller entered the queue; `position` is 1-based.
    Enter {
        /// Caller number as presented (may be empty when withheld).
        caller: String,
        /// Position in the queue on entry.
        position: u32,
    },
    /// An agent's phone started ringing for the call (ring start, 着信呼出時間).
    Ring {
        /// How long the agent will be rung before it counts as no answer.
        ring_limit_ms: u64,
    },
    /// The agent was rung for the whole ring time and did not answer (着信無応答).
    NoAnswer {
        /// Ring start → ring end.
        ring_ms: u64,
    },
    /// The agent rejected the ringing call (拒否).
    Decline {
        /// Ring start → reject.
        ring_ms: u64,
    },
    /// Ringing stopped because another agent answered or the caller left.
    RingStopped {
        /// Ring start → stop.
        ring_ms: u64,
    },
    /// The agent answered: talk established (応答).
    Connect {
        /// Queue entry → answer (the service-level measure).
        wait_ms: u64,
        /// This agent's ring start → answer.
        ring_ms: u64,
    },
    /// The caller hung up before an agent answered (放棄 / 破棄呼).
    Abandon {
        /// Queue entry → hang-up.
        wait_ms: u64,
        /// Whether any agent had been rung: seed 004 counts only these as abandoned.
        rang: bool,
        /// Position in the queue when the caller left.
        position: u32,
    },
    /// The queue timeout expired (制限時間); the call went to `destination` (`None` = busy).
    Timeout {
        /// Queue entry → timeout.
        wait_ms: u64,
        /// The timeout destination, as `kind:target`.
        destination: Option<String>,
    },
    /// The call was not queued (あふれ); it went to `destination` (`None` = busy).
    Overflow {
        /// Why.
        reason: OverflowReason,
        /// The overflow destination, as `kind:target`.
        destination: Option<String>,
    },
    /// A connected call ended (talk end).
    Complete {
        /// Inbound (queue) or outbound (dialled by the agent).
        direction: Direction,
        /// Talk established → talk end, hold included (seed 004 §4.2).
        talk_ms: u64,
        /// Total hold time within the talk.
        hold_ms: u64,
        /// Number of holds.
        holds: u32,
    },
    /// The agent transferred the call away; talk ends for this agent.
    Transfer {
        /// Where to (extension or number).
        target: String,
        /// Inbound (queue) or outbound.
        direction: Direction,
        /// Talk established → transfer, hold included.
        talk_ms: u64,
        /// Total hold time within the talk (the consultation hold included).
        hold_ms: u64,
        /// Number of holds.
        holds: u32,
    },
    /// The agent put the call on hold.
    Hold,
    /// The agent took the call off hold.
    Unhold {
        /// Length of this hold.
        hold_ms: u64,
    },
    /// The agent started an outbound call (発信).
    Dial {
        /// The dialled number.
        number: String,
    },
    /// The far end of an outbound call answered (接続).
    DialAnswered {
        /// Outbound ring time.
        ring_ms: u64,
    },
    /// An outbound call ended without an answer.
    DialFailed {
        /// Outbound ring time.
        ring_ms: u64,
    },
    /// The agent's state changed. `label` names custom other-work states, so a later deleted
    /// status stays readable in old reports (seed 004 §2.23).
    StateChange {
        /// Previous state.
        from: AgentState,
        /// New state.
        to: AgentState,
        /// Name of `to` when it is a custom state.
        label: Option<String>,
        /// Who changed it.
        cause: Cause,
    },
    /// After-call work started.
    AcwStart {
        /// Direction of the call that ended.
        direction: Direction,
        /// Planned ACW length; `None` = until the agent clears it.
        limit_ms: Option<u64>,
    },
    /// After-call work ended.
    AcwEnd {
        /// Direction of the call that caused it.
        direction: Direction,
        /// ACW start → end (後処理時間).
        acw_ms: u64,
    },
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Wall clock, Unix milliseconds.
    pub at_ms: u64,
    /// Queue name, when the event concerns a queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Agent id (extension), when the event concerns an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Call id, when the event concerns a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Why a stored line could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventParseError {
    /// The line is longer than [`MAX_EVENT_LINE_BYTES`].
    TooLong,
    /// The line is not a valid event; serde's message.
    Invalid(String),
}

impl Event {
    /// One JSON object without a trailing newline.
    pub fn to_json_line(&self) -> String {
        // Serializing our own plain struct cannot fail; an empty object keeps the log readable
        // should serde ever disagree.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Reads one line written by [`Event::to_json_line`].
    pub fn from_json_line(line: &str) -> Result<Event, EventParseError> {
        if line.len() > MAX_EVENT_LINE_BYTES {
            return Err(EventParseError::TooLong);
        }
        serde_json::from_str(line.trim_end()).map_err(|e| EventParseError::Invalid(e.to_string()))
    }
}

/// The latest events, oldest evicted first, for real-time views.
#[derive(Debug)]
pub struct EventRing {
    buf: VecDeque<Event>,
    capacity: usize,
    evicted: u64,
}

impl EventRing {
    /// A ring holding at most `capacity` events (clamped to 1..=[`MAX_RING_CAPACITY`]).
    pub fn new(capacity: usize) -> EventRing {
        let capacity = capacity.clamp(1, MAX_RING_CAPACITY);
        EventRing { buf: VecDeque::with_capacity(capacity.min(1024)), capacity, evicted: 0 }
    }

    /// Appends, evicting the oldest event when full.
    pub fn push(&mut self, event: Event) {
        if self.buf.len() >= self.capacity {
            self.buf.pop_front();
            self.evicted += 1;
        }
        self.buf.push_back(event);
    }

    /// Events oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.buf.iter()
    }

    /// Events at or after `at_ms`.
    pub fn since(&self, at_ms: u64) -> impl Iterator<Item = &Event> {
        self.buf.iter().filter(move |e| e.at_ms >= at_ms)
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Events evicted since creation; a view that sees this grow knows it missed some.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

impl Default for EventRing {
    fn default() -> Self {
        EventRing::new(DEFAULT_RING_CAPACITY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: u64, kind: EventKind) -> Event {
        Event { at_ms, queue: Some("support".into()), agent: Some("201".into()), call: Some(7), kind }
    }

    #[test]
    fn every_event_kind_survives_a_json_line_round_trip() {
        let kinds = vec![
            EventKind::Enter { caller: "0312345678".into(), position: 1 },
            EventKind::Ring { ring_limit_ms: 20_000 },
            EventKind::NoAnswer { ring_ms: 20_000 },
            EventKind::Decline { ring_ms: 3 },
            EventKind::RingStopped { ring_ms: 4 },
            EventKind::Connect { wait_ms: 5, ring_ms: 6 },
            EventKind::Abandon { wait_ms: 7, rang: true, position: 2 },
            EventKind::Timeout { wait_ms: 300_000, destination: None },
            EventKind::Overflow { reason: OverflowReason::QueueFull, destination: Some("queue:b".into()) },
            EventKind::Complete { direction: Direction::Inbound, talk_ms: 9, hold_ms: 1, holds: 1 },
            EventKind::Transfer {
                target: "202".into(),
                direction: Direction::Inbound,
                talk_ms: 3,
                hold_ms: 1,
                holds: 1,
            },
            EventKind::Hold,
            EventKind::Unhold { hold_ms: 1 },
            EventKind::Dial { number: "0311112222".into() },
            EventKind::DialAnswered { ring_ms: 2 },
            EventKind::DialFailed { ring_ms: 2 },
            EventKind::StateChange {
                from: AgentState::Available,
                to: AgentState::OtherWork(2),
                label: Some("メール対応".into()),
                cause: Cause::Agent,
            },
            EventKind::AcwStart { direction: Direction::Inbound, limit_ms: None },
            EventKind::AcwEnd { direction: Direction::Outbound, acw_ms: 30_000 },
        ];
        for kind in kinds {
            let e = ev(1_700_000_000_000, kind);
            let line = e.to_json_line();
            assert!(!line.contains('\n'));
            assert_eq!(Event::from_json_line(&line), Ok(e));
        }
    }

    #[test]
    fn a_corrupt_or_oversized_line_is_an_error_not_a_panic() {
        assert!(matches!(Event::from_json_line("{\"event\":\"nope\"}"), Err(EventParseError::Invalid(_))));
        assert!(matches!(Event::from_json_line("garbage"), Err(EventParseError::Invalid(_))));
        let long = "x".repeat(MAX_EVENT_LINE_BYTES + 1);
        assert_eq!(Event::from_json_line(&long), Err(EventParseError::TooLong));
    }

    #[test]
    fn the_ring_evicts_the_oldest_and_counts_what_it_dropped() {
        let mut ring = EventRing::new(2);
        for t in 0..5 {
            ring.push(ev(t, EventKind::Hold));
        }
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.evicted(), 3);
        assert_eq!(ring.iter().map(|e| e.at_ms).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(ring.since(4).count(), 1);
    }
}
