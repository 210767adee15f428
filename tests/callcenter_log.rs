//! The call-center event log seen from the technician console of a running box: events stored
//! before the box starts (as the daemon's writer would have) come back in `show events` and in
//! `report`, as a table and as CSV, and again after a kill -9 and restart.
mod common;

use common::TestBox;
use hakoden::apps::callcenter::{AgentState, Cause, Direction, Event, EventKind};
use hakoden::store::Store;
use std::path::Path;

/// 2026-11-22 00:00 JST.
const T0: u64 = 1_795_273_200_000;
const S: u64 = 1000;
const H: u64 = 3_600 * S;

fn ev(at_ms: u64, agent: Option<&str>, call: Option<u64>, kind: EventKind) -> Event {
    Event { at_ms, queue: Some("support".into()), agent: agent.map(str::to_string), call, kind }
}

fn state(at_ms: u64, from: AgentState, to: AgentState) -> Event {
    Event {
        at_ms,
        queue: None,
        agent: Some("201".into()),
        call: None,
        kind: EventKind::StateChange { from, to, label: None, cause: Cause::Agent },
    }
}

/// Agent 201 logged in 09:00-17:00 JST; one call answered after 9 s, one abandoned after 21 s.
fn events() -> Vec<Event> {
    vec![
        state(T0 + 9 * H, AgentState::LoggedOut, AgentState::Available),
        ev(T0 + 10 * H, None, Some(1), EventKind::Enter { caller: "0312345678".into(), position: 1 }),
        ev(T0 + 10 * H + 5 * S, Some("201"), Some(1), EventKind::Ring { ring_limit_ms: 20_000 }),
        ev(T0 + 10 * H + 9 * S, Some("201"), Some(1), EventKind::Connect { wait_ms: 9 * S, ring_ms: 4 * S }),
        ev(
            T0 + 10 * H + 129 * S,
            Some("201"),
            Some(1),
            EventKind::Complete { direction: Direction::Inbound, talk_ms: 120 * S, hold_ms: 0, holds: 0 },
        ),
        ev(T0 + 11 * H, None, Some(2), EventKind::Enter { caller: "0398765432".into(), position: 1 }),
        ev(T0 + 11 * H + S, Some("201"), Some(2), EventKind::Ring { ring_limit_ms: 20_000 }),
        ev(T0 + 11 * H + 20 * S, Some("201"), Some(2), EventKind::RingStopped { ring_ms: 19 * S }),
        ev(
            T0 + 11 * H + 21 * S,
            None,
            Some(2),
            EventKind::Abandon { wait_ms: 21 * S, rang: true, position: 1 },
        ),
        state(T0 + 17 * H, AgentState::Available, AgentState::LoggedOut),
    ]
}

fn seed(data: &Path) {
    let store = Store::open(&data.join("store")).expect("open the store to seed it");
    assert_eq!(store.append_queue_events(&events()).expect("seed events"), 10);
}

#[test]
fn stored_events_are_shown_and_reported_by_the_console_across_a_restart() {
    let mut tb = TestBox::start_seeded(&[("201", "secret-201")], &[], "", &seed);

    let shown = tb.console("show events 3");
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert!(lines[0].contains("\"event\":\"ring_stopped\""), "{shown}");
    assert!(lines[2].contains("\"event\":\"state_change\""), "{shown}");

    let table = tb.console("report queue day 2026-11-22");
    let row = table.lines().find(|l| l.starts_with("2026/11/22  全体")).unwrap_or_else(|| panic!("{table}"));
    // 着信 2, 応答 1, 放棄 1, 応答率 50.0 %, service level 50.0 %.
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.get(2..7), Some(&["2", "1", "1", "50.0", "50.0"][..]), "{table}");

    let csv = tb.console("report agent day 2026-11-21 2026-11-22 csv");
    assert!(csv.starts_with('\u{feff}'), "{csv}");
    let header = csv.lines().next().unwrap_or_default();
    assert!(header.contains("期間,名前,内線番号,着信数"), "{header}");
    // The agent's name comes from the box's extensions; login 8 h on the 22nd, none the 21st.
    let day = csv.lines().find(|l| l.starts_with("2026/11/22,")).unwrap_or_else(|| panic!("{csv}"));
    assert!(day.starts_with("2026/11/22,Test 201,201,2,0,1,"), "{day}");
    assert!(day.contains(",8:00:00,"), "{day}");
    assert!(csv.lines().any(|l| l.starts_with("2026/11/21,Test 201,201,0,")), "{csv}");

    tb.restart();
    assert_eq!(tb.console("report queue day 2026-11-22"), table);
}
