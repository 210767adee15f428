//! Virtual-clock scenarios for the ACD: time only moves when a test says so.
use std::time::{Duration, Instant};

use super::*;
use crate::apps::callcenter::queue::{DECLINES_BEFORE_PAUSE, MIN_DECLINE_BACKOFF};
use crate::apps::timerules::Destination;

/// 2026-11-20 00:00:00 JST as Unix ms: a fixed wall clock for the event timestamps.
const T0_UNIX_MS: u64 = 1_763_564_400_000;

struct Harness {
    acd: Acd,
    now: Instant,
    outputs: Vec<Output>,
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn agents(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{}", 200 + i)).collect()
}

fn queue(name: &str, strategy: Strategy, members: &[(&str, u8)]) -> QueueConfig {
    let mut q = QueueConfig::new(name);
    q.strategy = strategy;
    q.members = members.iter().map(|&(a, skill)| MemberConfig { agent: a.to_string(), skill }).collect();
    q
}

impl Harness {
    fn new(cfg: AcdConfig) -> Harness {
        let now = Instant::now();
        let acd = Acd::new(cfg, now, T0_UNIX_MS).unwrap();
        Harness { acd, now, outputs: Vec::new() }
    }

    fn one(n_agents: usize, q: QueueConfig) -> Harness {
        Harness::new(AcdConfig { agents: agents(n_agents), queues: vec![q], ..AcdConfig::default() })
    }

    fn drain(&mut self) {
        while let Some(o) = self.acd.poll_output() {
            self.outputs.push(o);
        }
    }

    /// Non-event outputs since the last call.
    fn take(&mut self) -> Vec<Output> {
        self.drain();
        std::mem::take(&mut self.outputs).into_iter().filter(|o| !matches!(o, Output::Event(_))).collect()
    }

    /// Moves the clock forward, firing every timer on the way in order.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.acd.poll_timeout().filter(|&t| t <= target) {
            self.now = t.max(self.now);
            self.acd.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    fn ready(&mut self, ids: &[&str]) {
        for id in ids {
            self.acd.login(self.now, id, Cause::Agent).unwrap();
            self.acd.set_state(self.now, id, AgentState::Available, Cause::Agent).unwrap();
        }
        self.take();
    }

    fn enter(&mut self, call: u64) {
        self.acd.caller_entered(self.now, call, "q", "0312345678").unwrap();
    }

    /// Agents rung, in order, since the last `take`.
    fn rung(&mut self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter_map(|o| match o {
                Output::Ring { agent, .. } => Some(agent),
                _ => None,
            })
            .collect()
    }

    /// Completes one call with `agent` talking `talk` seconds.
    fn handle(&mut self, call: u64, agent: &str, talk: u64) {
        self.acd.agent_answered(self.now, call, agent).unwrap();
        self.advance(secs(talk));
        self.acd.call_ended(self.now, agent).unwrap();
        self.take();
    }

    fn events(&self) -> Vec<EventKind> {
        self.acd.recent_events().iter().map(|e| e.kind.clone()).collect()
    }

    fn state(&self, a: &str) -> AgentState {
        self.acd.agent_state(a).unwrap()
    }
}

// Tests for the strategies.

#[test]
fn ring_all_rings_every_member_and_the_first_answer_stops_the_others() {
    let mut h = Harness::one(3, queue("q", Strategy::RingAll, &[("201", 1), ("202", 1), ("203", 1)]));
    h.ready(&["201", "202", "203"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201", "202", "203"]);
    h.acd.agent_answered(h.now, 1, "202").unwrap();
    let out = h.take();
    let stopped: Vec<_> = out.iter().filter(|o| matches!(o, Output::StopRinging { .. })).collect();
    assert_eq!(stopped.len(), 2);
    assert!(out.contains(&Output::Connect {
        call: 1,
        agent: "202".into(),
        whisper: None,
        caller_answered: true
    }));
    assert_eq!(h.state("201"), AgentState::Available);
    assert_eq!(h.state("202"), AgentState::Talking);
}

#[test]
fn longest_idle_offers_the_agent_whose_last_call_ended_longest_ago() {
    let mut h = Harness::one(3, queue("q", Strategy::LongestIdle, &[("201", 1), ("202", 1), ("203", 1)]));
    h.ready(&["201", "202", "203"]);
    for (call, expect) in [(1, "201"), (2, "202"), (3, "203"), (4, "201")] {
        h.enter(call);
        assert_eq!(h.rung(), vec![expect]);
        h.handle(call, expect, 10);
    }
}

#[test]
fn least_talk_time_offers_the_agent_with_the_least_total_talk() {
    let mut h = Harness::one(2, queue("q", Strategy::LeastTalkTime, &[("201", 1), ("202", 1)]));
    h.ready(&["201", "202"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.handle(1, "201", 100);
    h.enter(2);
    assert_eq!(h.rung(), vec!["202"]);
    h.handle(2, "202", 30);
    h.enter(3);
    assert_eq!(h.rung(), vec!["202"], "202 has 30 s against 201's 100 s");
}

#[test]
fn fewest_calls_offers_the_agent_who_answered_the_fewest() {
    let mut h = Harness::one(2, queue("q", Strategy::FewestCalls, &[("201", 1), ("202", 1)]));
    h.ready(&["201", "202"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.handle(1, "201", 1);
    h.enter(2);
    assert_eq!(h.rung(), vec!["202"]);
    h.handle(2, "202", 1);
    h.enter(3);
    assert_eq!(h.rung(), vec!["201"]);
}

#[test]
fn random_is_reproducible_for_a_seed_and_spreads_calls() {
    let run = |seed| {
        let mut h = Harness::new(AcdConfig {
            agents: agents(4),
            queues: vec![queue("q", Strategy::Random, &[("201", 1), ("202", 1), ("203", 1), ("204", 1)])],
            seed,
            ..AcdConfig::default()
        });
        h.ready(&["201", "202", "203", "204"]);
        let mut picks = Vec::new();
        for call in 0..40 {
            h.enter(call);
            let a = h.rung().remove(0);
            h.handle(call, &a, 1);
            picks.push(a);
        }
        picks
    };
    let a = run(7);
    assert_eq!(a, run(7));
    for id in ["201", "202", "203", "204"] {
        assert!(a.iter().any(|p| p == id), "{id} never picked");
    }
}

#[test]
fn round_robin_resumes_after_the_member_rung_last() {
    let mut h = Harness::one(3, queue("q", Strategy::RoundRobin, &[("201", 1), ("202", 1), ("203", 1)]));
    h.ready(&["201", "202", "203"]);
    let mut seen = Vec::new();
    for call in 1..=4 {
        h.enter(call);
        let a = h.rung().remove(0);
        h.handle(call, &a, 1);
        seen.push(a);
    }
    assert_eq!(seen, vec!["201", "202", "203", "201"]);
}

#[test]
fn linear_always_starts_with_the_first_free_member() {
    let mut h = Harness::one(3, queue("q", Strategy::Linear, &[("201", 1), ("202", 1), ("203", 1)]));
    h.ready(&["201", "202", "203"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.handle(1, "201", 1);
    h.enter(2);
    assert_eq!(h.rung(), vec!["201"]);
    h.enter(3);
    assert_eq!(h.rung(), vec!["202"]);
}

#[test]
fn a_higher_level_is_not_rung_while_a_lower_level_member_is_staffed() {
    let mut h = Harness::one(2, queue("q", Strategy::Linear, &[("201", 1), ("202", 2)]));
    h.ready(&["201", "202"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    h.enter(2);
    assert!(h.rung().is_empty(), "201 is busy but staffed: no fall-through to level 2");
    // 201 going on a break leaves level 1 unstaffed: now level 2 takes calls.
    h.acd.agent_hold(h.now, "201").unwrap();
    h.acd.call_ended(h.now, "201").unwrap();
    assert_eq!(h.rung(), vec!["201"], "the waiting call goes to 201 as soon as it is free");
    h.acd.agent_declined(h.now, 2, "201").unwrap();
    assert!(h.rung().is_empty(), "a declined call waits out its back-off, not level 2");
    h.acd.caller_hung_up(h.now, 2).unwrap();
    h.take();
    h.acd.set_state(h.now, "201", AgentState::ShortBreak, Cause::Agent).unwrap();
    h.enter(3);
    assert_eq!(h.rung(), vec!["202"]);
}

#[test]
fn skill_weighted_sends_more_calls_to_the_lower_level() {
    let mut h = Harness::one(2, queue("q", Strategy::SkillWeighted, &[("201", 1), ("202", 60)]));
    h.ready(&["201", "202"]);
    let mut count = [0u32; 2];
    for call in 0..50 {
        h.enter(call);
        let a = h.rung().remove(0);
        count[usize::from(a == "202")] += 1;
        h.handle(call, &a, 1);
    }
    assert!(count[0] > 2 * count[1] && count[1] > 0, "{count:?}");
}

#[test]
fn an_unanswered_agent_is_not_rung_again_before_the_others() {
    let mut h = Harness::one(2, queue("q", Strategy::Linear, &[("201", 1), ("202", 1)]));
    h.ready(&["201", "202"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.advance(secs(20));
    assert_eq!(h.rung(), vec!["202"]);
    assert!(h.events().contains(&EventKind::NoAnswer { ring_ms: 20_000 }));
    h.acd.agent_declined(h.now, 1, "202").unwrap();
    assert_eq!(h.rung(), vec!["201"], "everyone tried: the round starts again");
}

// Tests for declines.

#[test]
fn a_lone_agent_who_declines_is_not_offered_the_call_again_before_the_ring_time() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.acd.agent_declined(h.now, 1, "201").unwrap();
    assert!(h.rung().is_empty(), "a phone in DND must not be re-offered at network speed");
    assert_eq!(h.state("201"), AgentState::Available);
    h.advance(secs(19));
    assert!(h.rung().is_empty());
    h.advance(secs(1));
    assert_eq!(h.rung(), vec!["201"], "after one ring time the call is offered again");
}

#[test]
fn the_decline_back_off_is_never_shorter_than_its_minimum() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.ring_time = secs(1);
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.take();
    h.acd.agent_declined(h.now, 1, "201").unwrap();
    h.advance(MIN_DECLINE_BACKOFF - Duration::from_millis(1));
    assert!(h.rung().is_empty());
    h.advance(Duration::from_millis(1));
    assert_eq!(h.rung(), vec!["201"]);
}

#[test]
fn a_declined_call_goes_to_another_free_agent_at_once() {
    let mut h = Harness::one(2, queue("q", Strategy::Linear, &[("201", 1), ("202", 1)]));
    h.ready(&["201", "202"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.acd.agent_declined(h.now, 1, "201").unwrap();
    assert_eq!(h.rung(), vec!["202"]);
    h.enter(2);
    assert_eq!(h.rung(), vec!["201"], "the back-off is per call: 201 takes the next caller");
}

#[test]
fn repeated_declines_auto_pause_the_agent_like_a_no_answer() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.auto_pause = Some(secs(60));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    for n in 1..DECLINES_BEFORE_PAUSE {
        assert_eq!(h.rung(), vec!["201"], "offer {n}");
        h.acd.agent_declined(h.now, 1, "201").unwrap();
        assert_eq!(h.state("201"), AgentState::Available);
        h.advance(secs(20));
    }
    assert_eq!(h.rung(), vec!["201"]);
    h.acd.agent_declined(h.now, 1, "201").unwrap();
    assert_eq!(h.state("201"), AgentState::Preparing, "the third decline in a row pauses");
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::StateChange {
            from: AgentState::Ringing,
            to: AgentState::Preparing,
            cause: Cause::NoAnswer,
            ..
        }
    )));
    h.advance(secs(60));
    assert_eq!(h.state("201"), AgentState::Ringing, "released: offered again");
}

#[test]
fn an_answer_resets_the_run_of_declines() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.auto_pause = Some(secs(60));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    for call in 1..=2 {
        h.enter(call);
        h.take();
        for _ in 1..DECLINES_BEFORE_PAUSE {
            h.acd.agent_declined(h.now, call, "201").unwrap();
            h.advance(secs(20));
            h.take();
        }
        h.handle(call, "201", 5);
    }
    assert_eq!(h.state("201"), AgentState::Available);
}

#[test]
fn a_declining_agent_does_not_spin_the_timer() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.enter(1);
    h.take();
    let mut offers = 0;
    let end = h.now + secs(100);
    while h.now < end {
        if h.acd.agent_state("201") == Some(AgentState::Ringing) {
            offers += 1;
            h.acd.agent_declined(h.now, 1, "201").unwrap();
        }
        let next = h.acd.poll_timeout().expect("the queue timeout at least");
        assert!(next > h.now, "a timer in the past would spin the engine");
        h.advance(next - h.now);
        h.take();
    }
    assert_eq!(offers, 5, "one offer per ring time (20 s) in 100 s");
}

// Tests for queue limits, timeout and overflow.

#[test]
fn the_queue_timeout_routes_to_its_destination_or_busy() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.timeout_destination = Some(Destination::Voicemail("800".into()));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.advance(secs(299));
    assert!(!h.take().iter().any(|o| matches!(o, Output::Route { .. })));
    h.advance(secs(1));
    let out = h.take();
    assert!(out.contains(&Output::Route {
        call: 1,
        destination: Destination::Voicemail("800".into()),
        reason: RouteReason::Timeout
    }));
    assert_eq!(h.acd.waiting("q"), 0);
    assert_eq!(h.state("201"), AgentState::Available);
    assert!(h.events().iter().any(|e| matches!(e, EventKind::Timeout { wait_ms: 300_000, .. })));
}

#[test]
fn a_full_queue_overflows_and_unset_overflow_means_busy() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.max_waiting = 2;
    q.overflow = Some(Destination::Queue("backup".into()));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.enter(2);
    h.take();
    h.enter(3);
    let out = h.take();
    assert_eq!(
        out,
        vec![Output::Route {
            call: 3,
            destination: Destination::Queue("backup".into()),
            reason: RouteReason::Overflow(OverflowReason::QueueFull)
        }]
    );

    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.enter(1);
    assert_eq!(
        h.take(),
        vec![Output::RejectBusy { call: 1, reason: RouteReason::Overflow(OverflowReason::NoAgents) }]
    );
}

#[test]
fn max_waiting_zero_admits_only_calls_a_free_agent_can_take() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.max_waiting = 0;
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.enter(2);
    assert!(matches!(h.take().as_slice(), [Output::RejectBusy { call: 2, .. }]));
}

#[test]
fn ring_before_queue_rings_first_and_answers_the_caller_later() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.ring_before_queue = secs(10);
    q.greeting = Some("greeting.support".into());
    q.moh = Some("default".into());
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    let out = h.take();
    assert!(out.iter().any(|o| matches!(o, Output::Ring { .. })));
    assert!(!out.iter().any(|o| matches!(o, Output::Answer { .. })), "ringback only for 10 s");
    h.advance(secs(10));
    assert!(h.take().contains(&Output::Answer {
        call: 1,
        greeting: vec!["greeting.support".into()],
        moh: Some("default".into())
    }));
}

#[test]
fn a_call_answered_during_ring_before_queue_is_never_answered_by_the_box() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.ring_before_queue = secs(10);
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.advance(secs(3));
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    h.advance(secs(20));
    assert!(!h.take().iter().any(|o| matches!(o, Output::Answer { .. })));
}

#[test]
fn max_answered_holds_calls_back_while_the_limit_is_reached() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1), ("202", 1)]);
    q.max_answered = 1;
    let mut h = Harness::one(2, q);
    h.ready(&["201", "202"]);
    h.enter(1);
    assert_eq!(h.rung(), vec!["201"]);
    h.enter(2);
    assert!(h.rung().is_empty(), "one call ringing counts against the limit");
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    assert!(h.rung().is_empty(), "one call answered");
    h.acd.call_ended(h.now, "201").unwrap();
    assert_eq!(h.rung(), vec!["201"]);
}

#[test]
fn a_caller_who_hangs_up_is_logged_as_abandoned_with_the_ring_flag() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.enter(1);
    h.advance(secs(5));
    h.acd.caller_hung_up(h.now, 1).unwrap();
    assert!(h.take().contains(&Output::StopRinging { call: 1, agent: "201".into() }));
    assert!(h.events().contains(&EventKind::Abandon { wait_ms: 5000, rang: true, position: 1 }));
    assert_eq!(h.state("201"), AgentState::Available);
}

// Tests for auto-pause and after-call work.

#[test]
fn no_answer_auto_pauses_the_agent_until_the_release_time() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.auto_pause = Some(secs(60));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.take();
    h.advance(secs(20));
    assert_eq!(h.state("201"), AgentState::Preparing);
    assert!(h.rung().is_empty(), "a paused agent is not rung again");
    h.advance(secs(59));
    assert_eq!(h.state("201"), AgentState::Preparing);
    h.advance(secs(1));
    assert_eq!(h.rung(), vec!["201"], "released: the waiting call rings 201 again");
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::StateChange {
            from: AgentState::Preparing,
            to: AgentState::Available,
            cause: Cause::Timer,
            ..
        }
    )));
}

#[test]
fn an_auto_pause_of_zero_lasts_until_the_agent_clears_it() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.auto_pause = Some(Duration::ZERO);
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.take();
    h.advance(secs(200));
    assert_eq!(h.state("201"), AgentState::Preparing);
    h.acd.set_state(h.now, "201", AgentState::Available, Cause::Agent).unwrap();
    assert_eq!(h.rung(), vec!["201"]);
}

#[test]
fn after_call_work_with_a_duration_ends_by_itself() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.after_call_work = Some(secs(30));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.take();
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    h.advance(secs(60));
    h.acd.caller_hung_up(h.now, 1).unwrap();
    assert_eq!(h.state("201"), AgentState::AfterCallWork);
    h.enter(2);
    assert!(h.rung().is_empty(), "no external calls in 後処理");
    h.advance(secs(30));
    assert_eq!(h.rung(), vec!["201"], "ACW over: the waiting call rings 201 at once");
    assert_eq!(h.state("201"), AgentState::Ringing);
    let ev = h.events();
    assert!(ev.contains(&EventKind::AcwStart { direction: Direction::Inbound, limit_ms: Some(30_000) }));
    assert!(ev.contains(&EventKind::AcwEnd { direction: Direction::Inbound, acw_ms: 30_000 }));
    assert!(ev.contains(&EventKind::Complete {
        direction: Direction::Inbound,
        talk_ms: 60_000,
        hold_ms: 0,
        holds: 0
    }));
}

#[test]
fn after_call_work_of_zero_lasts_until_the_agent_clears_it() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.after_call_work = Some(Duration::ZERO);
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.handle(1, "201", 10);
    h.advance(secs(3600));
    assert_eq!(h.state("201"), AgentState::AfterCallWork);
    h.acd.set_state(h.now, "201", AgentState::Available, Cause::Agent).unwrap();
    assert_eq!(h.state("201"), AgentState::Available);
}

#[test]
fn after_call_work_events_name_the_call_and_the_queue() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.after_call_work = Some(secs(5));
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    h.acd.agent_hold(h.now, "201").unwrap();
    h.advance(secs(2));
    h.acd.call_transferred(h.now, "201", "202").unwrap();
    h.advance(secs(5));
    let acw: Vec<&Event> = h
        .acd
        .recent_events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::AcwStart { .. } | EventKind::AcwEnd { .. }))
        .collect();
    assert_eq!(acw.len(), 2);
    assert!(acw.iter().all(|e| e.call == Some(1) && e.queue.as_deref() == Some("q")));
    assert!(h.events().contains(&EventKind::Transfer {
        target: "202".into(),
        direction: Direction::Inbound,
        talk_ms: 2000,
        hold_ms: 2000,
        holds: 1
    }));
}

#[test]
fn hold_time_is_counted_inside_talk_time() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.enter(1);
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    h.advance(secs(10));
    h.acd.agent_hold(h.now, "201").unwrap();
    assert_eq!(h.state("201"), AgentState::OnHold);
    h.advance(secs(5));
    h.acd.agent_unhold(h.now, "201").unwrap();
    h.advance(secs(5));
    h.acd.call_ended(h.now, "201").unwrap();
    assert!(h.events().contains(&EventKind::Complete {
        direction: Direction::Inbound,
        talk_ms: 20_000,
        hold_ms: 5_000,
        holds: 1
    }));
}

// Tests for availability, daily logout and announcements.

#[test]
fn an_agent_paused_in_one_queue_is_still_offered_calls_of_another() {
    let cfg = AcdConfig {
        agents: agents(1),
        queues: vec![
            queue("q", Strategy::Linear, &[("201", 1)]),
            queue("r", Strategy::Linear, &[("201", 1)]),
        ],
        ..AcdConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.ready(&["201"]);
    h.acd.set_queue_availability(h.now, "201", Some("q"), false).unwrap();
    h.acd.caller_entered(h.now, 1, "q", "").unwrap();
    assert_eq!(
        h.take(),
        vec![Output::RejectBusy { call: 1, reason: RouteReason::Overflow(OverflowReason::NoAgents) }]
    );
    h.acd.caller_entered(h.now, 2, "r", "").unwrap();
    assert_eq!(h.rung(), vec!["201"]);
    assert!(h.acd.set_queue_availability(h.now, "201", Some("nope"), true).is_err());
}

#[test]
fn the_daily_logout_logs_out_idle_agents_and_busy_ones_after_their_call() {
    let cfg = AcdConfig {
        agents: agents(2),
        queues: vec![queue("q", Strategy::Linear, &[("201", 1), ("202", 1)])],
        daily_logout: Some((0, 30)),
        ..AcdConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.ready(&["201", "202"]);
    h.enter(1);
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    h.advance(secs(29 * 60 + 59));
    assert_eq!(h.state("202"), AgentState::Available);
    h.advance(secs(1));
    assert_eq!(h.state("202"), AgentState::LoggedOut);
    assert_eq!(h.state("201"), AgentState::Talking, "a call is never cut by the daily logout");
    h.acd.call_ended(h.now, "201").unwrap();
    assert_eq!(h.state("201"), AgentState::LoggedOut);
    let next = h.acd.poll_timeout().unwrap();
    assert_eq!(next.duration_since(h.now), secs(86_400), "the next logout is a day later");
}

#[test]
fn an_agent_ringing_at_the_daily_logout_is_logged_out_when_the_ring_ends() {
    let cfg = AcdConfig {
        agents: agents(1),
        queues: vec![queue("q", Strategy::Linear, &[("201", 1)])],
        daily_logout: Some((0, 1)),
        ..AcdConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.ready(&["201"]);
    h.advance(secs(50));
    h.enter(1);
    h.take();
    h.advance(secs(10));
    assert_eq!(h.state("201"), AgentState::Ringing);
    h.advance(secs(10));
    assert_eq!(h.state("201"), AgentState::LoggedOut);
    assert!(h.events().iter().any(|e| matches!(
        e,
        EventKind::StateChange { to: AgentState::LoggedOut, cause: Cause::DailyLogout, .. }
    )));
}

#[test]
fn an_agent_answering_during_ring_before_queue_tells_the_engine_to_answer_the_caller() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.ring_before_queue = secs(10);
    q.whisper = Some("whisper.support".into());
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    assert!(h.take().contains(&Output::Connect {
        call: 1,
        agent: "201".into(),
        whisper: Some("whisper.support".into()),
        caller_answered: false
    }));
}

#[test]
fn the_periodic_announcement_reads_position_and_expected_wait() {
    let mut q = queue("q", Strategy::Linear, &[("201", 1)]);
    q.periodic = Some(PeriodicAnnouncement {
        every: secs(30),
        prompt: Some("queue.continue_to_hold".into()),
        position: true,
        expected_wait: true,
    });
    q.lang = crate::media::prompts::Lang::En;
    let mut h = Harness::one(1, q);
    h.ready(&["201"]);
    h.enter(1);
    h.handle(1, "201", 120);
    h.enter(2);
    h.acd.agent_answered(h.now, 2, "201").unwrap();
    h.enter(3);
    h.enter(4);
    h.take();
    h.advance(secs(30));
    let announces: Vec<Vec<String>> = h
        .take()
        .into_iter()
        .filter_map(|o| match o {
            Output::Announce { call: 4, prompts } => Some(prompts),
            _ => None,
        })
        .collect();
    let p = announces.first().expect("caller 4 hears an announcement");
    assert_eq!(p.first().map(String::as_str), Some("queue.continue_to_hold"));
    assert!(p.contains(&"queue.position".to_string()));
    assert!(p.contains(&"queue.wait_time".to_string()));
    // Position 2 × 120 s average talk / 1 agent = 4 minutes.
    assert!(p.iter().any(|s| s.contains("four") || s.ends_with("4")), "{p:?}");
    h.advance(secs(30));
    assert!(h.take().iter().any(|o| matches!(o, Output::Announce { call: 4, .. })), "repeats every 30 s");
}

#[test]
fn every_logged_event_round_trips_through_a_json_line() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.enter(1);
    h.handle(1, "201", 5);
    for e in h.acd.recent_events().iter() {
        assert_eq!(Event::from_json_line(&e.to_json_line()).as_ref(), Ok(e));
        assert!(e.at_ms >= T0_UNIX_MS);
    }
    assert!(h.acd.recent_events().len() > 5);
}

#[test]
fn inputs_for_unknown_calls_and_agents_are_errors_not_panics() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    assert_eq!(h.acd.caller_hung_up(h.now, 9), Err(AcdError::UnknownCall));
    assert!(h.acd.agent_answered(h.now, 9, "999").is_err());
    assert_eq!(h.acd.caller_entered(h.now, 1, "nope", ""), Err(AcdError::UnknownQueue));
    assert_eq!(h.acd.call_ended(h.now, "201"), Err(AcdError::NoCall));
    h.ready(&["201"]);
    h.enter(1);
    assert_eq!(h.acd.caller_entered(h.now, 1, "q", ""), Err(AcdError::DuplicateCall));
}

#[test]
fn invalid_queue_settings_name_the_field() {
    let mut q = queue("q", Strategy::Linear, &[("299", 1)]);
    let err = Acd::new(
        AcdConfig { agents: agents(1), queues: vec![q.clone()], ..AcdConfig::default() },
        Instant::now(),
        0,
    );
    assert!(matches!(err, Err(AcdError::Invalid { ref field, .. }) if field == "queue[1].member[1]"));
    q.members.clear();
    q.ring_time = Duration::ZERO;
    let err =
        Acd::new(AcdConfig { agents: agents(1), queues: vec![q], ..AcdConfig::default() }, Instant::now(), 0);
    assert!(matches!(err, Err(AcdError::Invalid { ref field, .. }) if field == "queue[1].ring_time"));
}

#[test]
fn event_timestamps_follow_the_wall_clock_anchor() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.advance(secs(5));
    h.enter(1);
    let enter = h.acd.recent_events().iter().find(|e| matches!(e.kind, EventKind::Enter { .. })).cloned();
    assert_eq!(enter.map(|e| e.at_ms), Some(T0_UNIX_MS + 5000));
    // NTP stepped the clock back a second.
    h.acd.handle_wall_clock(h.now, T0_UNIX_MS + 4000);
    h.acd.caller_hung_up(h.now, 1).unwrap();
    let last = h.acd.recent_events().iter().last().map(|e| e.at_ms);
    assert_eq!(last, Some(T0_UNIX_MS + 4000));
}

#[test]
fn a_supervisor_cannot_log_out_or_pause_an_agent_on_a_call() {
    let mut h = Harness::one(1, queue("q", Strategy::Linear, &[("201", 1)]));
    h.ready(&["201"]);
    h.enter(1);
    h.acd.agent_answered(h.now, 1, "201").unwrap();
    assert!(matches!(
        h.acd.logout(h.now, "201", Cause::Supervisor),
        Err(AcdError::Agent(AgentError::IllegalTransition { from: AgentState::Talking, .. }))
    ));
    assert!(h.acd.set_state(h.now, "201", AgentState::LunchBreak, Cause::Supervisor).is_err());
    h.acd.call_ended(h.now, "201").unwrap();
    assert_eq!(h.acd.logout(h.now, "201", Cause::Supervisor), Ok(AgentState::LoggedOut));
}
