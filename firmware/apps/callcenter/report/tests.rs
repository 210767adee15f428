use super::*;
use crate::apps::callcenter::events::{Cause, EventKind};

/// 2026-11-22 00:00 JST (a Sunday).
const T0: u64 = 1_795_273_200_000;
const S: u64 = 1000;
const H: u64 = 3_600 * S;

fn day(d: u8) -> Date {
    Date::new(2026, 11, d).unwrap()
}

fn cfg() -> ReportConfig {
    ReportConfig { offset: UtcOffset::JST, target_answer_ms: 50 * S }
}

fn ev(at_ms: u64, queue: Option<&str>, agent: Option<&str>, call: Option<u64>, kind: EventKind) -> Event {
    Event { at_ms, queue: queue.map(str::to_string), agent: agent.map(str::to_string), call, kind }
}

/// One answered call and one abandoned call in queue `q` on the given local day, agent 201
/// logged in 09:00-17:00.
fn day_events(start: u64) -> Vec<Event> {
    let st = |at, from, to| {
        ev(at, None, Some("201"), None, EventKind::StateChange { from, to, label: None, cause: Cause::Agent })
    };
    vec![
        st(start + 9 * H, AgentState::LoggedOut, AgentState::Available),
        ev(start + 10 * H, Some("q"), None, Some(1), EventKind::Enter { caller: "03".into(), position: 1 }),
        ev(
            start + 10 * H + 5 * S,
            Some("q"),
            Some("201"),
            Some(1),
            EventKind::Ring { ring_limit_ms: 20 * S },
        ),
        ev(
            start + 10 * H + 9 * S,
            Some("q"),
            Some("201"),
            Some(1),
            EventKind::Connect { wait_ms: 9 * S, ring_ms: 4 * S },
        ),
        ev(start + 11 * H, Some("q"), None, Some(2), EventKind::Enter { caller: "04".into(), position: 1 }),
        ev(start + 11 * H + S, Some("q"), Some("201"), Some(2), EventKind::Ring { ring_limit_ms: 20 * S }),
        ev(
            start + 11 * H + 20 * S,
            Some("q"),
            Some("201"),
            Some(2),
            EventKind::RingStopped { ring_ms: 19 * S },
        ),
        ev(
            start + 11 * H + 21 * S,
            Some("q"),
            None,
            Some(2),
            EventKind::Abandon { wait_ms: 21 * S, rang: true, position: 1 },
        ),
        st(start + 17 * H, AgentState::Available, AgentState::LoggedOut),
    ]
}

fn run(query: ReportQuery, events: &[Event]) -> Report {
    let mut b = ReportBuilder::new(query, cfg());
    let from = query.scan_from_ms(UtcOffset::JST);
    for e in events.iter().filter(|e| e.at_ms >= from) {
        b.push(e);
    }
    b.finish(&|id| (id == "201").then(|| "山田 太郎".to_string()))
}

fn cell<'r>(r: &'r Report, row: usize, col: &str) -> &'r str {
    let i = r.header.iter().position(|h| h == col).unwrap_or_else(|| panic!("no column {col}"));
    &r.rows[row][i]
}

// Tests for queries.

#[test]
fn a_query_refuses_reversed_overlong_and_total_ranges() {
    assert_eq!(ReportQuery::new(ReportKind::Queue, Unit::Day, day(2), day(1)), Err(ReportError::Reversed));
    let jan = Date::new(2026, 1, 1).unwrap();
    let feb = Date::new(2026, 2, 1).unwrap();
    assert_eq!(ReportQuery::new(ReportKind::Queue, Unit::Hour, jan, feb), Err(ReportError::TooLong(32, 31)));
    assert!(ReportQuery::new(ReportKind::Queue, Unit::Day, jan, feb).is_ok());
    let next_year = Date::new(2027, 2, 5).unwrap();
    assert_eq!(
        ReportQuery::new(ReportKind::Queue, Unit::Day, jan, next_year),
        Err(ReportError::TooLong(401, 400))
    );
    assert_eq!(ReportQuery::new(ReportKind::Queue, Unit::Total, jan, jan), Err(ReportError::Unit));
}

#[test]
fn the_window_runs_from_local_midnight_to_the_midnight_after_the_last_day() {
    let q = ReportQuery::new(ReportKind::Queue, Unit::Day, day(22), day(23)).unwrap();
    assert_eq!(q.window_ms(UtcOffset::JST), (T0, T0 + 48 * H));
    assert_eq!(q.scan_from_ms(UtcOffset::JST), T0 - REPORT_WARMUP_MS);
}

// Tests for queue reports.

#[test]
fn a_daily_queue_report_has_zero_rows_for_quiet_days_and_a_total_per_scope() {
    let q = ReportQuery::new(ReportKind::Queue, Unit::Day, day(21), day(23)).unwrap();
    let r = run(q, &day_events(T0));
    // 3 days + 合計, each for 全体 and queue q.
    assert_eq!(r.rows.len(), 8);
    let who: Vec<(&str, &str)> = r.rows.iter().map(|row| (row[0].as_str(), row[1].as_str())).collect();
    assert_eq!(who[0], ("2026/11/21", "全体"));
    assert_eq!(who[1], ("2026/11/21", "q"));
    assert_eq!(who[6], ("合計", "全体"));
    assert_eq!(cell(&r, 0, "着信数"), "0");
    assert_eq!(cell(&r, 0, "応答率"), "0.0");
    assert_eq!(cell(&r, 3, "着信数"), "2");
    assert_eq!(cell(&r, 3, "応答数"), "1");
    assert_eq!(cell(&r, 3, "放棄数"), "1");
    assert_eq!(cell(&r, 3, "応答率"), "50.0");
    assert_eq!(cell(&r, 3, "サービスレベル"), "50.0");
    assert_eq!(cell(&r, 3, "平均応答時間"), "0:00:09");
    assert_eq!(cell(&r, 3, "平均放棄時間"), "0:00:21");
    assert_eq!(cell(&r, 2, "電話番号"), "summary");
    assert_eq!(cell(&r, 7, "応答数"), "1");
    assert!(r.rows.iter().all(|row| row.len() == r.header.len()));
}

#[test]
fn an_hourly_report_splits_the_day_into_24_local_hours() {
    let q = ReportQuery::new(ReportKind::Queue, Unit::Hour, day(22), day(22)).unwrap();
    let r = run(q, &day_events(T0));
    assert_eq!(r.rows.len(), 25 * 2);
    assert_eq!(r.rows[20][0], "2026/11/22 10:00");
    assert_eq!(cell(&r, 20, "応答数"), "1");
    assert_eq!(cell(&r, 22, "放棄数"), "1");
}

#[test]
fn events_outside_the_window_are_not_counted() {
    let mut events = day_events(T0 - 24 * H);
    events.extend(day_events(T0));
    events.extend(day_events(T0 + 24 * H));
    let q = ReportQuery::new(ReportKind::Queue, Unit::Weekday, day(22), day(22)).unwrap();
    let r = run(q, &events);
    // Sunday only; the total equals it.
    assert_eq!(r.rows[12][0], "日");
    assert_eq!(cell(&r, 12, "着信数"), "2");
    assert_eq!(cell(&r, 14, "着信数"), "2");
    assert_eq!(cell(&r, 0, "着信数"), "0");
}

// Tests for agent reports.

#[test]
fn an_agent_report_names_agents_and_counts_status_open_at_the_window_start() {
    // Logged in the evening before, still available at midnight: the warm-up knows it.
    let events = vec![
        ev(
            T0 - 2 * H,
            None,
            Some("201"),
            None,
            EventKind::StateChange {
                from: AgentState::LoggedOut,
                to: AgentState::Available,
                label: None,
                cause: Cause::Agent,
            },
        ),
        ev(
            T0 + H,
            None,
            Some("201"),
            None,
            EventKind::StateChange {
                from: AgentState::Available,
                to: AgentState::OtherWork(1),
                label: Some("メール対応".into()),
                cause: Cause::Agent,
            },
        ),
        ev(
            T0 + 2 * H,
            None,
            Some("202"),
            None,
            EventKind::StateChange {
                from: AgentState::LoggedOut,
                to: AgentState::Available,
                label: None,
                cause: Cause::Agent,
            },
        ),
    ];
    let q = ReportQuery::new(ReportKind::Agent, Unit::Month, day(22), day(22)).unwrap();
    let r = run(q, &events);
    assert_eq!(r.rows.len(), 4);
    assert_eq!(
        (r.rows[0][0].as_str(), r.rows[0][1].as_str(), r.rows[0][2].as_str()),
        ("2026/11", "山田 太郎", "201")
    );
    // No name: the extension stands in, as in the spec's sample.
    assert_eq!((r.rows[1][1].as_str(), r.rows[1][2].as_str()), ("202", "202"));
    assert_eq!(cell(&r, 0, "受付可合計"), "1:00:00");
    assert_eq!(cell(&r, 0, "メール対応合計"), "23:00:00");
    assert_eq!(cell(&r, 0, "ログイン時間合計"), "24:00:00");
    assert_eq!(cell(&r, 1, "受付可合計"), "22:00:00");
}

// Tests for rendering.

#[test]
fn csv_has_a_bom_crlf_lines_quoting_and_no_formulas() {
    let r = Report {
        kind: ReportKind::Agent,
        header: vec!["期間".into(), "名前".into(), "n".into()],
        rows: vec![
            vec!["2026/11/22".into(), "Sato, \"Ken\"".into(), "-1".into()],
            vec!["合計".into(), "=HYPERLINK(\"x\")".into(), "@a".into()],
        ],
        events: 0,
        dropped: 0,
        cut_rows: 0,
    };
    let csv = r.to_csv();
    assert!(csv.starts_with('\u{feff}'));
    assert_eq!(
        csv.trim_start_matches('\u{feff}'),
        "期間,名前,n\r\n2026/11/22,\"Sato, \"\"Ken\"\"\",-1\r\n合計,\"'=HYPERLINK(\"\"x\"\")\",'@a\r\n"
    );
}

#[test]
fn the_console_table_shows_the_headline_columns_aligned() {
    let q = ReportQuery::new(ReportKind::Queue, Unit::Day, day(22), day(22)).unwrap();
    let text = run(q, &day_events(T0)).to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("期間"), "{text}");
    assert!(lines[0].contains("応答率") && !lines[0].contains("合計通話時間"), "{text}");
    assert!(lines[1].starts_with("2026/11/22  全体"), "{text}");
    assert!(text.contains("events read"), "{text}");
}
