use super::*;
use crate::apps::callcenter::{AgentState, Cause, Direction, EventKind, ReportKind, ReportQuery, Unit};
use crate::apps::timerules::{Date, UtcOffset};
use crate::store::MAX_CDRS;

/// 2026-11-22 00:00 JST.
const T0: u64 = 1_795_273_200_000;
const S: u64 = 1000;

fn ev(at_ms: u64, call: u64) -> Event {
    Event {
        at_ms,
        queue: Some("support".into()),
        agent: None,
        call: Some(call),
        kind: EventKind::Enter { caller: "0312345678".into(), position: 1 },
    }
}

fn calls(page: &EventPage) -> Vec<u64> {
    page.events.iter().filter_map(|e| e.call).collect()
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir).unwrap()
}

// Tests for keys.

#[test]
fn keys_sort_by_time_then_by_arrival() {
    let keys = [event_key(1, 5), event_key(1, 6), event_key(2, 0), event_key(256, 0), event_key(70_000, 1)];
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(split_key(&keys[3]), Some((256, 0)));
    assert_eq!(split_key(&[1, 2, 3]), None);
}

// Tests for appending and reading.

#[test]
fn a_time_range_returns_its_events_in_order_and_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Two events in one millisecond keep their order; the batch is not sorted by the caller.
    let events = vec![ev(T0 + 5, 3), ev(T0, 1), ev(T0 + 5, 4), ev(T0 + 2, 2), ev(T0 + 10, 5)];
    assert_eq!(store.append_queue_events(&events).unwrap(), 5);
    assert_eq!(store.queue_event_count(), 5);
    assert_eq!(calls(&store.queue_events_between(T0, T0 + 10, 100).unwrap()), vec![1, 2, 3, 4]);
    assert_eq!(calls(&store.queue_events_between(T0 + 3, T0 + 11, 100).unwrap()), vec![3, 4, 5]);
    assert_eq!(calls(&store.queue_events_between(T0, T0 + 11, 2).unwrap()), vec![1, 2]);
    assert!(store.queue_events_between(T0 + 10, T0, 100).unwrap().events.is_empty());
    assert_eq!(calls(&store.recent_queue_events(2).unwrap()), vec![4, 5]);
    let mut seen = Vec::new();
    assert_eq!(store.scan_queue_events(0, u64::MAX, |e| seen.extend(e.call)).unwrap(), 0);
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
}

#[test]
fn reopen_keeps_the_events_and_never_reuses_a_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.append_queue_events(&[ev(T0, 1), ev(T0, 2)]).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.queue_event_count(), 2);
    // Same millisecond after the restart: a new key, not an overwrite.
    store.append_queue_events(&[ev(T0, 3)]).unwrap();
    assert_eq!(calls(&store.queue_events_between(T0, T0 + 1, 10).unwrap()), vec![1, 2, 3]);
    assert_eq!(store.queue_event_count(), 3);
}

#[test]
fn a_missing_state_record_is_rebuilt_by_counting() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.append_queue_events(&[ev(T0, 1), ev(T0 + 1, 2), ev(T0 + 2, 3)]).unwrap();
        store.inner.meta.remove(STATE_KEY).unwrap();
        store.meta_put("unrelated", "x").unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.queue_event_count(), 3);
    store.append_queue_events(&[ev(T0 + 2, 4)]).unwrap();
    assert_eq!(calls(&store.recent_queue_events(10).unwrap()), vec![1, 2, 3, 4]);
}

#[test]
fn a_corrupt_entry_is_skipped_and_counted_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.append_queue_events(&[ev(T0, 1), ev(T0 + 3, 3)]).unwrap();
    store.put_raw_event(&event_key(T0 + 1, 900), b"{\"event\":\"nonsense\"}");
    store.put_raw_event(&event_key(T0 + 2, 901), &[0xff, 0xfe]);
    store.put_raw_event(&event_key(T0 + 2, 902), "x".repeat(MAX_EVENT_LINE_BYTES + 1).as_bytes());
    let page = store.queue_events_between(T0, T0 + 10, 100).unwrap();
    assert_eq!((calls(&page), page.corrupt), (vec![1, 3], 3));
    assert_eq!(store.recent_queue_events(10).unwrap().corrupt, 3);
    assert_eq!(store.scan_queue_events(T0, T0 + 10, |_| {}).unwrap(), 3);
    assert_eq!(store.queue_events_corrupt(), 9);
}

#[test]
fn an_event_too_long_to_read_back_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut big = ev(T0 + 1, 2);
    big.kind = EventKind::Dial { number: "9".repeat(MAX_EVENT_LINE_BYTES) };
    assert_eq!(store.append_queue_events(&[ev(T0, 1), big, ev(T0 + 2, 3)]).unwrap(), 2);
    assert_eq!(calls(&store.recent_queue_events(10).unwrap()), vec![1, 3]);
    assert_eq!(store.queue_event_count(), 2);
    assert_eq!(store.queue_events_corrupt(), 1);
}

// Tests for retention.

#[test]
fn beyond_the_cap_the_oldest_events_are_deleted_in_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_caps(dir.path(), MAX_CDRS, 4).unwrap();
    store.append_queue_events(&[ev(T0 + 10, 1), ev(T0 + 20, 2), ev(T0 + 30, 3)]).unwrap();
    store.append_queue_events(&[ev(T0 + 40, 4), ev(T0 + 50, 5)]).unwrap();
    assert_eq!(calls(&store.recent_queue_events(10).unwrap()), vec![2, 3, 4, 5]);
    assert_eq!(store.queue_event_count(), 4);
    // A clock stepped back: the batch's own events can be the oldest, and are then not written.
    store.append_queue_events(&[ev(T0 + 1, 6), ev(T0 + 60, 7)]).unwrap();
    assert_eq!(calls(&store.recent_queue_events(10).unwrap()), vec![3, 4, 5, 7]);
    drop(store);
    let store = Store::open_with_caps(dir.path(), MAX_CDRS, 4).unwrap();
    assert_eq!(store.queue_event_count(), 4);
}

// Tests for reports over the log.

fn shift(day_start: u64) -> Vec<Event> {
    let agent = |at: u64, kind: EventKind| Event {
        at_ms: at,
        queue: Some("support".into()),
        agent: Some("201".into()),
        call: Some(77),
        kind,
    };
    let state = |at: u64, from, to| Event {
        at_ms: at,
        queue: None,
        agent: Some("201".into()),
        call: None,
        kind: EventKind::StateChange { from, to, label: None, cause: Cause::Agent },
    };
    let h = 3_600 * S;
    vec![
        state(day_start + 9 * h, AgentState::LoggedOut, AgentState::Available),
        ev(day_start + 10 * h, 77),
        agent(day_start + 10 * h + 20 * S, EventKind::Ring { ring_limit_ms: 20 * S }),
        agent(day_start + 10 * h + 25 * S, EventKind::Connect { wait_ms: 25 * S, ring_ms: 5 * S }),
        agent(
            day_start + 10 * h + 145 * S,
            EventKind::Complete { direction: Direction::Inbound, talk_ms: 120 * S, hold_ms: 0, holds: 0 },
        ),
        state(day_start + 17 * h, AgentState::Available, AgentState::LoggedOut),
    ]
}

#[test]
fn a_report_reads_the_same_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let day = Date::new(2026, 11, 22).unwrap();
    let query = ReportQuery::new(ReportKind::Agent, Unit::Day, day, day).unwrap();
    let cfg = ReportConfig { offset: UtcOffset::JST, ..Default::default() };
    let name = |id: &str| (id == "201").then(|| "山田".to_string());
    let before = {
        let store = open(dir.path());
        store.append_queue_events(&shift(T0)).unwrap();
        store.queue_report(query, cfg, &name).unwrap()
    };
    let store = open(dir.path());
    let after = store.queue_report(query, cfg, &name).unwrap();
    assert_eq!(before, after);
    let (report, corrupt) = after;
    assert_eq!(corrupt, 0);
    // One day row and one 合計 row for the one agent.
    assert_eq!(report.rows.len(), 2);
    let col = |n: &str| report.header.iter().position(|h| h == n).unwrap();
    let row = &report.rows[0];
    assert_eq!((row[0].as_str(), row[1].as_str(), row[2].as_str()), ("2026/11/22", "山田", "201"));
    assert_eq!(row[col("応答数")], "1");
    assert_eq!(row[col("ログイン時間合計")], "8:00:00");
}

#[tokio::test]
async fn events_pushed_through_the_writer_are_stored_by_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (sink, writer) = super::super::spawn_queue_event_writer(store.clone());
    for e in shift(T0) {
        assert!(sink.push(e));
    }
    drop(sink);
    writer.await.unwrap();
    assert_eq!(store.queue_event_count(), 6);
    let (commits, bytes) = store.queue_event_write_stats();
    assert!(commits >= 1 && bytes > 6 * 16, "{commits} {bytes}");
}

/// Cost figures for docs/callcenter.md: `cargo test --lib --release -- --ignored
/// a_month_of_events_cost`. A month of a busy queue: 30 days × 5,000 events.
#[test]
#[ignore = "benchmark; run by hand"]
#[allow(clippy::disallowed_methods)] // benchmark: reads the clock
fn a_month_of_events_cost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let t = std::time::Instant::now();
    let mut batch = Vec::new();
    for d in 0..30u64 {
        for rep in 0..500u64 {
            for e in shift(T0 + d * 24 * 3_600 * S) {
                let mut e = e;
                e.at_ms += rep;
                batch.push(e);
            }
            if batch.len() >= 256 {
                store.append_queue_events(&batch).unwrap();
                batch.clear();
            }
        }
    }
    store.append_queue_events(&batch).unwrap();
    let append = t.elapsed();
    let (commits, bytes) = store.queue_event_write_stats();
    let n = store.queue_event_count();
    let from = Date::new(2026, 11, 22).unwrap();
    let to = Date::new(2026, 12, 21).unwrap();
    let t = std::time::Instant::now();
    let q = ReportQuery::new(ReportKind::Agent, Unit::Day, from, to).unwrap();
    let (report, _) = store.queue_report(q, ReportConfig::default(), &|_| None).unwrap();
    let report_time = t.elapsed();
    let t = std::time::Instant::now();
    drop(store);
    let store = open(dir.path());
    let reopen = t.elapsed();
    println!(
        "{n} events in {commits} commits, {append:?} ({} bytes/event logical); month report ({} rows, {} events read) {report_time:?}; reopen {reopen:?}",
        bytes / n as u64,
        report.rows.len(),
        report.events
    );
    assert_eq!(store.queue_event_count(), n);
}
