use super::*;
use crate::apps::callcenter::events::{Cause, OverflowReason};

/// 2026-11-22 00:00 JST (a Sunday) = 2026-11-21 15:00 UTC.
const T0: u64 = 1_795_273_200_000;
const S: u64 = 1000;
const MIN: u64 = 60 * S;
const H: u64 = 60 * MIN;

fn day(y: i32, m: u8, d: u8) -> Date {
    Date::new(y, m, d).unwrap()
}

fn ev(at_ms: u64, queue: Option<&str>, agent: Option<&str>, call: Option<u64>, kind: EventKind) -> Event {
    Event { at_ms, queue: queue.map(str::to_string), agent: agent.map(str::to_string), call, kind }
}

fn stats(units: &[Unit]) -> Stats {
    Stats::new(StatsConfig { offset: UtcOffset::JST, target_answer_ms: 50 * S, units: units.to_vec() })
}

fn total(s: &Stats, scope: Scope) -> Totals {
    s.get(Period::Total, &scope).cloned().unwrap_or_default()
}

fn q() -> Scope {
    Scope::Queue("q".into())
}

fn ag(id: &str) -> Scope {
    Scope::Agent(id.into())
}

fn state(at: u64, agent: &str, from: AgentState, to: AgentState) -> Event {
    ev(at, None, Some(agent), None, EventKind::StateChange { from, to, label: None, cause: Cause::Agent })
}

fn enter(at: u64, call: u64) -> Event {
    ev(at, Some("q"), None, Some(call), EventKind::Enter { caller: "03".into(), position: 1 })
}

fn ring(at: u64, agent: &str, call: u64) -> Event {
    ev(at, Some("q"), Some(agent), Some(call), EventKind::Ring { ring_limit_ms: 20 * S })
}

fn connect(at: u64, agent: &str, call: u64, wait_ms: u64, ring_ms: u64) -> Event {
    ev(at, Some("q"), Some(agent), Some(call), EventKind::Connect { wait_ms, ring_ms })
}

/// The queue scenario used by the call-outcome tests (all within one hour):
/// 1. answered after 30 s wait (5 s ring) — within the 50 s target;
/// 2. answered after 60 s wait (10 s ring) — beyond the target;
/// 3. rang, then the caller hung up after 40 s;
/// 4. hung up after 5 s without any ring (IVR-like drop, not a seed 004 abandon);
/// 5. rang (20 s, no answer), then the queue timed out at 300 s;
/// 6. overflowed.
fn outcome_events() -> Vec<Event> {
    vec![
        enter(T0, 1),
        ring(T0 + 25 * S, "201", 1),
        connect(T0 + 30 * S, "201", 1, 30 * S, 5 * S),
        enter(T0 + MIN, 2),
        ring(T0 + 110 * S, "202", 2),
        connect(T0 + 120 * S, "202", 2, 60 * S, 10 * S),
        enter(T0 + 2 * MIN, 3),
        ring(T0 + 130 * S, "203", 3),
        ev(T0 + 140 * S, Some("q"), Some("203"), Some(3), EventKind::RingStopped { ring_ms: 10 * S }),
        ev(
            T0 + 160 * S,
            Some("q"),
            None,
            Some(3),
            EventKind::Abandon { wait_ms: 40 * S, rang: true, position: 1 },
        ),
        enter(T0 + 3 * MIN, 4),
        ev(
            T0 + 185 * S,
            Some("q"),
            None,
            Some(4),
            EventKind::Abandon { wait_ms: 5 * S, rang: false, position: 1 },
        ),
        enter(T0 + 4 * MIN, 5),
        ring(T0 + 250 * S, "203", 5),
        ev(T0 + 270 * S, Some("q"), Some("203"), Some(5), EventKind::NoAnswer { ring_ms: 20 * S }),
        ev(
            T0 + 540 * S,
            Some("q"),
            None,
            Some(5),
            EventKind::Timeout { wait_ms: 300 * S, destination: None },
        ),
        ev(
            T0 + 10 * MIN,
            Some("q"),
            None,
            Some(6),
            EventKind::Overflow { reason: OverflowReason::QueueFull, destination: None },
        ),
    ]
}

// Tests for call outcomes.

#[test]
fn answer_rate_counts_only_calls_that_rang_an_agent() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&outcome_events());
    let t = total(&s, q());
    // incoming = answered 2 + rung hang-up 1 + rung timeout 1 = 4 (call 4 never rang, call 6
    // overflowed); 応答率 = 2 / 4 = 50.0 %.
    assert_eq!((t.incoming, t.answered), (4, 2));
    assert_eq!(t.answer_rate().seed004(), "50.0");
    // The overall row holds the same calls.
    assert_eq!(total(&s, Scope::Overall).answer_rate(), Ratio { num: 2, den: 4 });
}

#[test]
fn seed002_answer_rate_counts_every_call_that_reached_the_queue() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&outcome_events());
    let t = total(&s, q());
    // 破棄呼 2 (calls 3, 4), 制限時間 1, あふれ 1; 応答率 = 2 / (2 + 2 + 1 + 1) = 33.333 → 33.33.
    assert_eq!((t.hangups, t.timeouts, t.overflows), (2, 1, 1));
    assert_eq!(t.answer_rate_all().seed002(), "33.33");
}

#[test]
fn service_level_counts_answers_within_the_target_over_all_incoming() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&outcome_events());
    let t = total(&s, q());
    // Only call 1 waited ≤ 50 s; SL = 1 / 4 incoming = 25.0 %.
    assert_eq!(t.answered_within_target, 1);
    assert_eq!(t.service_level().seed004(), "25.0");
}

#[test]
fn a_wait_equal_to_the_target_is_within_it() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&[enter(T0, 1), ring(T0, "201", 1), connect(T0 + 50 * S, "201", 1, 50 * S, 50 * S)]);
    // 50 s ≤ 50 s → 1 / 1 = 100.0 %.
    assert_eq!(total(&s, q()).service_level().seed004(), "100.0");
}

#[test]
fn abandoned_and_abandon_time_include_rung_timeouts_only() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&outcome_events());
    let t = total(&s, q());
    // 放棄数 = call 3 (40 s) + call 5 (300 s) = 2; 合計放棄時間 = 340 s; 平均 = 170 s; max 300 s.
    assert_eq!(t.abandoned, 2);
    assert_eq!(t.abandon_ms, 340 * S);
    assert_eq!(t.avg_abandon_ms(), Some(170 * S));
    assert_eq!(t.max_abandon_ms, 300 * S);
}

#[test]
fn a_timeout_that_never_rang_an_agent_is_not_abandoned() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&[
        enter(T0, 1),
        ev(
            T0 + 300 * S,
            Some("q"),
            None,
            Some(1),
            EventKind::Timeout { wait_ms: 300 * S, destination: None },
        ),
    ]);
    let t = total(&s, q());
    // 制限時間 1 (seed 002), but 着信数 0 and 放棄数 0 (seed 004 counts only rung calls).
    assert_eq!((t.timeouts, t.incoming, t.abandoned), (1, 0, 0));
    assert_eq!(s.realtime(T0 + 301 * S).waiting, 0);
}

#[test]
fn answer_times_average_the_answered_calls() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&outcome_events());
    let t = total(&s, q());
    // 平均応答時間 = (30 + 60) / 2 = 45 s; max 60 s; 平均着信応答時間 = (5 + 10) / 2 = 7.5 s.
    assert_eq!(t.avg_answer_wait_ms(), Some(45 * S));
    assert_eq!(t.max_answer_wait_ms, 60 * S);
    assert_eq!(t.avg_answer_ring_ms(), Some(7_500));
    // 平均着信呼出時間 = all ring time (5 + 10 + 10 + 20 = 45 s) / 4 incoming = 11.25 s.
    assert_eq!(t.ring_in_ms, 45 * S);
    assert_eq!(t.avg_ring_in_ms(), Some(11_250));
}

#[test]
fn an_agent_counts_rings_and_unanswered_rings() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&outcome_events());
    let t = total(&s, ag("203"));
    // Agent 203 was rung twice (calls 3 and 5) and answered none: 着信無応答数 2, 応答率 0/2.
    assert_eq!((t.incoming, t.answered, t.no_answer), (2, 0, 2));
    assert_eq!(t.answer_rate().seed004(), "0.0");
    let t = total(&s, ag("201"));
    // Agent 201: rung once, answered once → 100.0 %.
    assert_eq!(t.answer_rate().seed004(), "100.0");
}

// Tests for talk, hold and after-call work.

/// Agent 201 answers an inbound call, holds twice (10 s + 20 s), talks 300 s in all, then 60 s
/// ACW. Then an outbound call: dial, 8 s ring, 120 s talk with one 30 s hold, 40 s ACW. Then a
/// failed dial with 25 s ring.
fn talk_events() -> Vec<Event> {
    let a = Some("201");
    vec![
        enter(T0, 1),
        ring(T0, "201", 1),
        connect(T0 + 5 * S, "201", 1, 5 * S, 5 * S),
        ev(T0 + 10 * S, Some("q"), a, Some(1), EventKind::Hold),
        ev(T0 + 20 * S, Some("q"), a, Some(1), EventKind::Unhold { hold_ms: 10 * S }),
        ev(T0 + 30 * S, Some("q"), a, Some(1), EventKind::Hold),
        ev(T0 + 50 * S, Some("q"), a, Some(1), EventKind::Unhold { hold_ms: 20 * S }),
        ev(
            T0 + 305 * S,
            Some("q"),
            a,
            Some(1),
            EventKind::Complete {
                direction: Direction::Inbound,
                talk_ms: 300 * S,
                hold_ms: 30 * S,
                holds: 2,
            },
        ),
        ev(
            T0 + 305 * S,
            None,
            a,
            None,
            EventKind::AcwStart { direction: Direction::Inbound, limit_ms: None },
        ),
        ev(T0 + 365 * S, None, a, None, EventKind::AcwEnd { direction: Direction::Inbound, acw_ms: 60 * S }),
        ev(T0 + 400 * S, None, a, Some(2), EventKind::Dial { number: "0311112222".into() }),
        ev(T0 + 408 * S, None, a, Some(2), EventKind::DialAnswered { ring_ms: 8 * S }),
        ev(T0 + 418 * S, None, a, Some(2), EventKind::Hold),
        ev(T0 + 448 * S, None, a, Some(2), EventKind::Unhold { hold_ms: 30 * S }),
        ev(
            T0 + 528 * S,
            None,
            a,
            Some(2),
            EventKind::Complete {
                direction: Direction::Outbound,
                talk_ms: 120 * S,
                hold_ms: 30 * S,
                holds: 1,
            },
        ),
        ev(T0 + 568 * S, None, a, None, EventKind::AcwEnd { direction: Direction::Outbound, acw_ms: 40 * S }),
        ev(T0 + 600 * S, None, a, Some(3), EventKind::Dial { number: "0311113333".into() }),
        ev(T0 + 625 * S, None, a, Some(3), EventKind::DialFailed { ring_ms: 25 * S }),
    ]
}

#[test]
fn talk_acw_and_aht_average_over_established_calls() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&talk_events());
    let t = total(&s, ag("201"));
    // Inbound: talk 300 s, ACW 60 s, 1 answered → avg talk 300 s, avg ACW 60 s, AHT 360 s.
    assert_eq!(t.avg_talk_ms(Direction::Inbound), Some(300 * S));
    assert_eq!(t.avg_acw_ms(Direction::Inbound), Some(60 * S));
    assert_eq!(t.aht_ms(Direction::Inbound), Some(360 * S));
    // Outbound: talk 120 s, ACW 40 s, 1 connected → AHT 160 s.
    assert_eq!(t.aht_ms(Direction::Outbound), Some(160 * S));
    assert_eq!(t.handling_ms(Direction::Outbound), 160 * S);
}

#[test]
fn hold_one_is_per_call_and_hold_two_is_per_hold() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&talk_events());
    let t = total(&s, ag("201"));
    // Inbound: 30 s hold in 2 holds on 1 call → ① 30 s, ② 15 s.
    assert_eq!(t.avg_hold_per_call_ms(Direction::Inbound), Some(30 * S));
    assert_eq!(t.avg_hold_per_hold_ms(Direction::Inbound), Some(15 * S));
    // Outbound: 30 s in 1 hold on 1 call → ① 30 s, ② 30 s.
    assert_eq!(t.avg_hold_per_call_ms(Direction::Outbound), Some(30 * S));
    assert_eq!(t.avg_hold_per_hold_ms(Direction::Outbound), Some(30 * S));
}

#[test]
fn outbound_counts_connect_rate_and_ring_time() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&talk_events());
    let t = total(&s, Scope::Overall);
    // 2 dials, 1 connected → 接続率 50.0 %; 平均発信呼出時間 = (8 + 25) / 2 = 16.5 s.
    assert_eq!((t.outgoing, t.connected), (2, 1));
    assert_eq!(t.connect_rate().seed004(), "50.0");
    assert_eq!(t.avg_ring_out_ms(), Some(16_500));
    // 通話数 = 1 answered + 1 connected = 2.
    assert_eq!(t.talk_count(), 2);
}

#[test]
fn inbound_acw_is_credited_to_the_queue_of_the_last_talk() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&talk_events());
    let t = total(&s, q());
    // The queue gets the inbound talk (300 s) and its ACW (60 s), never the outbound call.
    assert_eq!(t.talk_ms, [300 * S, 0]);
    assert_eq!(t.acw_ms, [60 * S, 0]);
    assert_eq!(t.aht_ms(Direction::Inbound), Some(360 * S));
}

#[test]
fn a_transfer_takes_its_holds_from_the_hold_events() {
    let a = Some("201");
    let mut s = stats(&[Unit::Total]);
    s.extend(&[
        enter(T0, 1),
        ring(T0, "201", 1),
        connect(T0 + 2 * S, "201", 1, 2 * S, 2 * S),
        ev(T0 + 10 * S, Some("q"), a, Some(1), EventKind::Hold),
        ev(T0 + 22 * S, Some("q"), a, Some(1), EventKind::Unhold { hold_ms: 12 * S }),
        ev(
            T0 + 62 * S,
            Some("q"),
            a,
            Some(1),
            EventKind::Transfer {
                target: "202".into(),
                direction: Direction::Inbound,
                talk_ms: 60 * S,
                hold_ms: 12 * S,
                holds: 1,
            },
        ),
    ]);
    let t = total(&s, ag("201"));
    // Talk 60 s inbound, 1 hold of 12 s, as the transfer event says.
    assert_eq!((t.talk_ms[0], t.holds[0], t.hold_ms[0]), (60 * S, 1, 12 * S));
}

// Tests for statuses, utilisation, occupancy and CPH.

/// Agent 201, one day (all times JST on 2026-11-22):
/// 09:00 login → 準備中 10 min → 受付可 (09:10) → 着信中 (10:00) 1 min → 通話中 (10:01) 9 min
/// → 後処理 (10:10) 5 min → 受付可 (10:15) → 昼休憩 (12:00) 1 h → 受付可 (13:00) → 小休憩 (14:00)
/// 15 min → 別作業 1 (14:15) 45 min → ログアウト (15:00).
fn day_events() -> Vec<Event> {
    use AgentState::*;
    let a = "201";
    let nine = T0 + 9 * H;
    vec![
        state(nine, a, LoggedOut, Preparing),
        state(nine + 10 * MIN, a, Preparing, Available),
        state(T0 + 10 * H, a, Available, Ringing),
        connect(T0 + 10 * H + MIN, a, 1, MIN, MIN),
        state(T0 + 10 * H + MIN, a, Ringing, Talking),
        state(T0 + 10 * H + 10 * MIN, a, Talking, AfterCallWork),
        state(T0 + 10 * H + 15 * MIN, a, AfterCallWork, Available),
        state(T0 + 12 * H, a, Available, LunchBreak),
        state(T0 + 13 * H, a, LunchBreak, Available),
        state(T0 + 14 * H, a, Available, ShortBreak),
        ev(
            T0 + 14 * H + 15 * MIN,
            None,
            Some(a),
            None,
            EventKind::StateChange {
                from: ShortBreak,
                to: OtherWork(1),
                label: Some("メール対応".into()),
                cause: Cause::Agent,
            },
        ),
        state(T0 + 15 * H, a, OtherWork(1), LoggedOut),
    ]
}

#[test]
fn status_totals_and_averages_follow_the_transitions() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&day_events());
    let t = total(&s, ag("201"));
    // 受付可: 09:10-10:00 (50 min) + 10:15-12:00 (105) + 13:00-14:00 (60) = 215 min in 3 entries
    // → average 71 min 40 s.
    assert_eq!(t.state_ms[state_slot(AgentState::Available).unwrap()], 215 * MIN);
    assert_eq!(t.avg_state_ms(AgentState::Available), Some(215 * MIN / 3));
    assert_eq!(t.avg_state_ms(AgentState::Talking), Some(9 * MIN));
    assert_eq!(t.avg_state_ms(AgentState::OtherWork(1)), Some(45 * MIN));
    // Login 09:00-15:00 = 6 h on 1 day.
    assert_eq!(t.login_ms(), 6 * H);
    assert_eq!(t.avg_login_ms(), Some(6 * H));
    // Share of 受付可 = 215 / 360 = 59.72 % → 59.7.
    assert_eq!(t.state_share(AgentState::Available).seed004(), "59.7");
    assert_eq!(s.custom_label(1), Some("メール対応"));
}

#[test]
fn utilisation_and_occupancy_follow_the_spec_formulas() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&day_events());
    let t = total(&s, ag("201"));
    // Working = 360 - 60 lunch = 300 min. Ring → ACW end = 1 + 9 + 5 = 15 min; 受付可 215.
    // 稼働率 = (15 + 215) / 300 = 76.67 % → 76.6; 占有率 = (9 + 5) / (15 + 215) = 6.087 % → 6.0.
    assert_eq!(t.working_ms(), 300 * MIN);
    assert_eq!(t.utilisation().seed004(), "76.6");
    assert_eq!(t.occupancy().seed004(), "6.0");
}

#[test]
fn calls_per_hour_divide_by_working_hours() {
    let mut s = stats(&[Unit::Total]);
    s.extend(&day_events());
    let t = total(&s, ag("201"));
    // 1 answered in 5 working hours = 0.2 CPH; 0 outbound.
    assert_eq!(t.cph(Direction::Inbound), "0.2");
    assert_eq!(t.cph(Direction::Outbound), "0.0");
    // 7 calls in 2 h = 3.5.
    let mut t2 = Totals { answered: 7, ..Totals::default() };
    t2.state_ms[state_slot(AgentState::Available).unwrap()] = 2 * H;
    assert_eq!(t2.cph_tenths(Direction::Inbound), Some(35));
}

#[test]
fn finish_closes_the_open_status_at_the_report_end() {
    use AgentState::*;
    let mut s = stats(&[Unit::Total]);
    s.push(&state(T0 + 9 * H, "201", LoggedOut, Available));
    s.finish(T0 + 9 * H + 30 * MIN);
    // Still available: 30 min so far; finishing again later adds only the new part.
    assert_eq!(total(&s, ag("201")).login_ms(), 30 * MIN);
    s.finish(T0 + 10 * H);
    assert_eq!(total(&s, ag("201")).login_ms(), H);
}

#[test]
fn an_interval_longer_than_a_month_is_clamped() {
    use AgentState::*;
    let mut s = stats(&[Unit::Total]);
    s.push(&state(T0, "201", LoggedOut, Available));
    s.push(&state(T0 + 40 * 24 * H, "201", Available, LoggedOut));
    assert_eq!(total(&s, ag("201")).login_ms(), MAX_STATE_INTERVAL_MS);
    assert_eq!(s.clamped(), 1);
}

// Tests for bucket boundaries.

#[test]
fn a_status_crossing_an_hour_is_split_between_the_hours() {
    use AgentState::*;
    let mut s = stats(&[Unit::Hour]);
    // 受付可 09:50 → 10:20 JST: 10 min in hour 9, 20 min in hour 10.
    s.push(&state(T0 + 9 * H + 50 * MIN, "201", LoggedOut, Available));
    s.push(&state(T0 + 10 * H + 20 * MIN, "201", Available, LoggedOut));
    let d = day(2026, 11, 22);
    let slot = state_slot(Available).unwrap();
    assert_eq!(s.get(Period::Hour(d, 9), &ag("201")).unwrap().state_ms[slot], 10 * MIN);
    assert_eq!(s.get(Period::Hour(d, 10), &ag("201")).unwrap().state_ms[slot], 20 * MIN);
}

#[test]
fn a_call_crossing_an_hour_counts_where_each_fact_settles() {
    let mut s = stats(&[Unit::Hour]);
    let d = day(2026, 11, 22);
    // Enter 09:59:30, answered 10:00:10, talk ends 10:05:10: the call is incoming and answered
    // in hour 10, nothing in hour 9.
    s.extend(&[
        enter(T0 + 9 * H + 59 * MIN + 30 * S, 1),
        ring(T0 + 9 * H + 59 * MIN + 50 * S, "201", 1),
        connect(T0 + 10 * H + 10 * S, "201", 1, 40 * S, 20 * S),
    ]);
    assert!(s.get(Period::Hour(d, 9), &q()).is_none());
    let t = s.get(Period::Hour(d, 10), &q()).unwrap();
    assert_eq!((t.incoming, t.answered), (1, 1));
    // The agent's ring, though, is counted in hour 9 where it started.
    assert_eq!(s.get(Period::Hour(d, 9), &ag("201")).unwrap().incoming, 1);
}

#[test]
fn local_midnight_not_utc_midnight_separates_days() {
    let mut s = stats(&[Unit::Day, Unit::Weekday]);
    // 23:59 JST Sunday 22nd (14:59 UTC) and 00:01 JST Monday 23rd (15:01 UTC, still the 22nd in
    // UTC): two local days.
    s.push(&ev(T0 + 24 * H - MIN, None, Some("201"), None, EventKind::Dial { number: "1".into() }));
    s.push(&ev(T0 + 24 * H + MIN, None, Some("201"), None, EventKind::Dial { number: "2".into() }));
    assert_eq!(s.get(Period::Day(day(2026, 11, 22)), &Scope::Overall).unwrap().outgoing, 1);
    assert_eq!(s.get(Period::Day(day(2026, 11, 23)), &Scope::Overall).unwrap().outgoing, 1);
    assert_eq!(s.get(Period::Weekday(6), &Scope::Overall).unwrap().outgoing, 1);
    assert_eq!(s.get(Period::Weekday(0), &Scope::Overall).unwrap().outgoing, 1);
    // 00:30 UTC on the 22nd is 09:30 JST on the 22nd, not the 21st.
    let mut s = stats(&[Unit::Day]);
    s.push(&ev(T0 + 9 * H + 30 * MIN, None, None, None, EventKind::Dial { number: "3".into() }));
    assert!(s.get(Period::Day(day(2026, 11, 22)), &Scope::Overall).is_some());
}

#[test]
fn a_status_across_local_midnight_counts_two_login_days_and_two_months() {
    use AgentState::*;
    let mut s = stats(&[Unit::Month, Unit::Total]);
    // 2026-11-30 23:00 JST → 2026-12-01 01:00 JST available: 1 h in November, 1 h in December.
    let nov30_23 = T0 + 8 * 24 * H + 23 * H;
    s.push(&state(nov30_23, "201", LoggedOut, Available));
    s.push(&state(nov30_23 + 2 * H, "201", Available, LoggedOut));
    assert_eq!(s.get(Period::Month(2026, 11), &ag("201")).unwrap().login_ms(), H);
    assert_eq!(s.get(Period::Month(2026, 12), &ag("201")).unwrap().login_ms(), H);
    let t = total(&s, ag("201"));
    // 2 h over 2 login days → average 1 h.
    assert_eq!((t.login_days, t.avg_login_ms()), (2, Some(H)));
}

#[test]
fn an_empty_period_has_no_bucket_and_empty_totals_show_zero_or_dash() {
    let s = stats(&[Unit::Hour, Unit::Total]);
    assert_eq!(s.buckets().count(), 0);
    let t = Totals::default();
    assert_eq!(t.answer_rate().seed004(), "0.0");
    assert_eq!(t.answer_rate_all().seed002(), "-");
    assert_eq!(t.service_level().tenths(), None);
    assert_eq!(t.aht_ms(Direction::Inbound), None);
    assert_eq!(t.avg_abandon_ms(), None);
    assert_eq!(t.cph(Direction::Inbound), "0.0");
    assert_eq!(t.utilisation().seed004(), "0.0");
    assert_eq!(s.realtime(T0), Realtime::default());
}

#[test]
fn hourly_buckets_add_up_to_the_day() {
    let mut s = stats(&[Unit::Hour, Unit::Day]);
    let mut events = outcome_events();
    // Shift the second half of the scenario by an hour so two hour buckets are used.
    for e in events.iter_mut().skip(6) {
        e.at_ms += H;
    }
    s.extend(&events);
    let d = day(2026, 11, 22);
    let mut sum = s.get(Period::Hour(d, 0), &q()).cloned().unwrap();
    sum.add(s.get(Period::Hour(d, 1), &q()).unwrap());
    let whole = s.get(Period::Day(d), &q()).unwrap();
    // Same figures as the single-hour scenario: 4 incoming, 2 answered, 2 abandoned, max 300 s.
    assert_eq!((sum.incoming, sum.answered, sum.abandoned, sum.max_abandon_ms), (4, 2, 2, 300 * S));
    assert_eq!(&sum, whole);
}

// Tests for rounding and formatting.

#[test]
fn percentages_truncate_to_the_spec_samples() {
    // Seed 004 samples: 6/31 = 19.35 → 19.3; 10/31 = 32.26 → 32.2; 19/49 = 38.78 → 38.7;
    // 41/115 = 35.65 → 35.6.
    assert_eq!(Ratio { num: 6, den: 31 }.seed004(), "19.3");
    assert_eq!(Ratio { num: 10, den: 31 }.seed004(), "32.2");
    assert_eq!(Ratio { num: 19, den: 49 }.seed004(), "38.7");
    assert_eq!(Ratio { num: 41, den: 115 }.seed004(), "35.6");
    // 2/3 = 66.666… → 66.6 (not 66.7) and 66.66 with two decimals; 1/1 → 100.0.
    assert_eq!(Ratio { num: 2, den: 3 }.seed004(), "66.6");
    assert_eq!(Ratio { num: 2, den: 3 }.seed002(), "66.66");
    assert_eq!(Ratio { num: 1, den: 1 }.seed002(), "100.00");
    assert_eq!(Ratio { num: 1, den: 200 }.seed002(), "0.50");
    // No overflow on huge sums.
    assert_eq!(Ratio { num: u64::MAX, den: u64::MAX }.seed004(), "100.0");
}

#[test]
fn durations_format_as_h_mm_ss() {
    // 3 h 27 min 23 s (the spec's 03:27:23 sample) and 296 h 33 min.
    assert_eq!(format_hms((3 * 3600 + 27 * 60 + 23) * S + 999), "3:27:23");
    assert_eq!(format_hms(296 * H + 33 * MIN), "296:33:00");
}

// Tests for real-time values and limits.

#[test]
fn realtime_shows_waiting_calls_and_the_longest_wait() {
    use AgentState::*;
    let mut s = stats(&[Unit::Total]);
    s.extend(&[
        state(T0, "201", LoggedOut, Available),
        state(T0, "202", LoggedOut, Available),
        enter(T0 + 10 * S, 1),
        enter(T0 + 20 * S, 2),
        ev(
            T0 + 25 * S,
            Some("other"),
            None,
            Some(3),
            EventKind::Enter { caller: String::new(), position: 1 },
        ),
        ring(T0 + 30 * S, "201", 1),
        state(T0 + 30 * S, "201", Available, Ringing),
    ]);
    assert_eq!(s.realtime(T0 + 32 * S).ringing, 1);
    s.extend(&[connect(T0 + 35 * S, "201", 1, 25 * S, 5 * S), state(T0 + 35 * S, "201", Ringing, Talking)]);
    let r = s.realtime(T0 + 60 * S);
    // Waiting: calls 2 (40 s) and 3 (35 s); agent 201 talks inbound, 202 available.
    assert_eq!((r.waiting, r.longest_wait_ms), (2, 40 * S));
    assert_eq!((r.in_call_in, r.in_call(), r.logged_in, r.available), (1, 1, 2, 1));
    let rq = s.realtime_queue(T0 + 60 * S, "q");
    assert_eq!(rq, QueueRealtime { waiting: 1, longest_wait_ms: 40 * S, in_call: 1 });
}

#[test]
fn buckets_stop_at_the_cap_and_count_what_was_dropped() {
    let mut s = stats(&[Unit::Total]);
    for i in 0..MAX_BUCKETS as u64 + 10 {
        let id = i.to_string();
        s.push(&ev(T0, None, Some(&id), None, EventKind::Dial { number: "1".into() }));
    }
    // Overall + MAX_BUCKETS - 1 agents fit; the other 11 agent updates were dropped.
    assert_eq!(s.buckets().count(), MAX_BUCKETS);
    assert_eq!(s.dropped(), 11);
    assert_eq!(total(&s, Scope::Overall).outgoing, MAX_BUCKETS as u64 + 10);
}

/// Throughput figure for the report: `cargo test --lib stats_pass_throughput -- --ignored
/// --nocapture`. 50 agents each handling a call every 5 minutes for 8 hours, every unit.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // measurement: reads the clock
fn stats_pass_throughput() {
    use AgentState::*;
    let mut events = Vec::new();
    let mut call = 0u64;
    for minute in 0..8 * 60u64 {
        for a in 0..50u64 {
            if (minute + a) % 5 != 0 {
                continue;
            }
            call += 1;
            let at = T0 + 9 * H + minute * MIN + a * S;
            let id = format!("{}", 200 + a);
            events.push(enter(at, call));
            events.push(ring(at, &id, call));
            events.push(state(at, &id, Available, Ringing));
            events.push(connect(at + 5 * S, &id, call, 5 * S, 5 * S));
            events.push(state(at + 5 * S, &id, Ringing, Talking));
            events.push(ev(
                at + 125 * S,
                Some("q"),
                Some(&id),
                Some(call),
                EventKind::Complete { direction: Direction::Inbound, talk_ms: 120 * S, hold_ms: 0, holds: 0 },
            ));
            events.push(state(at + 125 * S, &id, Talking, AfterCallWork));
            events.push(ev(
                at + 155 * S,
                None,
                Some(&id),
                None,
                EventKind::AcwEnd { direction: Direction::Inbound, acw_ms: 30 * S },
            ));
            events.push(state(at + 155 * S, &id, AfterCallWork, Available));
        }
    }
    let start = std::time::Instant::now();
    let mut s = stats(&[Unit::Hour, Unit::Day, Unit::Month, Unit::Weekday, Unit::Total]);
    s.extend(&events);
    let took = start.elapsed();
    println!(
        "{} events, {} buckets, {:?} ({:.0} events/s)",
        events.len(),
        s.buckets().count(),
        took,
        events.len() as f64 / took.as_secs_f64()
    );
    assert_eq!(total(&s, q()).answered, call);
}

// Tests for a pass that replays a warm-up before its period (reports).

#[test]
fn facts_before_count_from_are_not_counted_but_their_state_carries_over() {
    let mut s = stats(&[Unit::Total]);
    s.count_from(T0);
    s.extend(&[
        state(T0 - 2 * H, "201", AgentState::LoggedOut, AgentState::Available),
        enter(T0 - 10 * S, 1),
        ring(T0 - 5 * S, "201", 1),
        connect(T0 - S, "201", 1, 9 * S, 4 * S),
        enter(T0 + MIN, 2),
        ring(T0 + MIN + 2 * S, "201", 2),
        ev(
            T0 + 6 * MIN,
            Some("q"),
            None,
            Some(2),
            EventKind::Timeout { wait_ms: 5 * MIN, destination: None },
        ),
    ]);
    s.finish(T0 + H);
    let agent = total(&s, ag("201"));
    // The warm-up's answer is not in the period; the agent's status from before it is, from T0.
    assert_eq!(agent.answered, 0);
    assert_eq!(agent.state_ms[SLOT_AVAILABLE], H);
    assert_eq!(agent.login_days, 1);
    let queue = total(&s, q());
    assert_eq!((queue.incoming, queue.answered, queue.abandoned), (1, 0, 1));
}
