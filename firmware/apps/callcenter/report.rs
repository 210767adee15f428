//! Call-center reports (seed 004 §2.12-2.13, §4.3; seed 002 §4.2): one [`Stats`] pass over the
//! events of a local date range, turned into rows to print or a CSV to download.
//!
//! Pure like the rest of `apps`: [`ReportBuilder`] takes the events in log order from whoever
//! reads the log (the store's `queue_report`), and [`Report`] renders them. A report replays
//! [`REPORT_WARMUP_MS`] of events before its period so an agent logged in before the period
//! starts has a known status; those events set up state and are not counted
//! ([`Stats::count_from`]).
//!
//! Rows: one per period of the chosen [`Unit`] and per scope (全体 and each queue for a queue
//! report, each agent for an agent report), periods without events included as zero rows so a
//! spreadsheet graph has no gaps, then one 合計 row per scope. Columns follow the spec's CSV
//! samples; the console shows a few of them, the CSV all.
use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::agent::AgentState;
use super::events::{Direction, Event};
use super::stats::{format_hms, state_slot, BucketKey, Period, Scope, Stats, StatsConfig, Totals, Unit};
use crate::apps::timerules::{Date, LocalTime, UtcOffset};

/// Events replayed before the period to learn each agent's status at its start: a shift that
/// began the day before is covered, and the daily logout closes anything older.
pub const REPORT_WARMUP_MS: u64 = 24 * HOUR_MS;

/// Longest hourly report, in days: a month of hours is 744 periods per scope, which with the
/// overall row and ten queues stays under the statistics pass's bucket cap.
pub const MAX_HOURLY_REPORT_DAYS: u64 = 31;

/// Longest daily, monthly or weekday report, in days: a year and its month of comparison, the
/// most the event log's retention keeps at a typical load.
pub const MAX_REPORT_DAYS: u64 = 400;

/// Most rows a report renders. Filling empty periods multiplies periods by scopes; the cap
/// keeps a console reply or a CSV download to a few megabytes. Cut rows are counted.
pub const MAX_REPORT_ROWS: usize = 20_000;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The fixed statuses in the order of seed 004's operator CSV; custom states follow.
const STATUS_COLUMNS: [(AgentState, &str); 10] = [
    (AgentState::Preparing, "準備中"),
    (AgentState::Available, "受付可"),
    (AgentState::Ringing, "着信中"),
    (AgentState::Talking, "通話中"),
    (AgentState::AfterCallWork, "後処理"),
    (AgentState::Dialling, "発信中"),
    (AgentState::OnHold, "保留中"),
    (AgentState::InternalCall, "内線通話"),
    (AgentState::LunchBreak, "昼休憩"),
    (AgentState::ShortBreak, "小休憩"),
];

/// Which report (seed 004 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// 電話グループレポート: 全体 and each queue.
    Queue,
    /// オペレーターレポート (「全て」: call and status items): each agent.
    Agent,
}

/// Why a report query is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The last date is before the first.
    Reversed,
    /// The range is longer than the unit allows (days asked, days allowed).
    TooLong(u64, u64),
    /// [`Unit::Total`] is not a report unit (every report has its 合計 rows).
    Unit,
}

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportError::Reversed => write!(f, "the last date is before the first"),
            ReportError::TooLong(asked, max) => {
                write!(f, "{asked} days is too long for this unit (at most {max})")
            }
            ReportError::Unit => write!(f, "the unit must be hour, day, month or weekday"),
        }
    }
}

impl std::error::Error for ReportError {}

/// A report request: kind, unit and local dates (both included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    kind: ReportKind,
    unit: Unit,
    from: Date,
    to: Date,
}

impl ReportQuery {
    /// A checked query: `from ≤ to`, a report unit, and a span within [`MAX_HOURLY_REPORT_DAYS`]
    /// (hour) or [`MAX_REPORT_DAYS`].
    pub fn new(kind: ReportKind, unit: Unit, from: Date, to: Date) -> Result<ReportQuery, ReportError> {
        if unit == Unit::Total {
            return Err(ReportError::Unit);
        }
        if to < from {
            return Err(ReportError::Reversed);
        }
        // The offset does not change a span in whole days.
        let days = (to.midnight_unix_ms(UtcOffset::UTC) - from.midnight_unix_ms(UtcOffset::UTC)) / DAY_MS + 1;
        let max = if unit == Unit::Hour { MAX_HOURLY_REPORT_DAYS } else { MAX_REPORT_DAYS };
        if days > max {
            return Err(ReportError::TooLong(days, max));
        }
        Ok(ReportQuery { kind, unit, from, to })
    }

    /// Which report.
    pub fn kind(&self) -> ReportKind {
        self.kind
    }

    /// The unit of its periods.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// `[start, end)` in Unix ms: local midnight of the first date to local midnight after the
    /// last (a fixed offset has no DST, so a day is always 24 h).
    pub fn window_ms(&self, offset: UtcOffset) -> (u64, u64) {
        (self.from.midnight_unix_ms(offset), self.to.midnight_unix_ms(offset).saturating_add(DAY_MS))
    }

    /// Where the event scan starts: the window's start minus [`REPORT_WARMUP_MS`].
    pub fn scan_from_ms(&self, offset: UtcOffset) -> u64 {
        self.window_ms(offset).0.saturating_sub(REPORT_WARMUP_MS)
    }

    /// Every period of the range in order.
    fn periods(&self, offset: UtcOffset) -> Vec<Period> {
        let (start, end) = self.window_ms(offset);
        let days = (start..end).step_by(usize::try_from(DAY_MS).unwrap_or(usize::MAX));
        let dates = days.map(|ms| LocalTime::from_unix_ms(ms, offset).date);
        match self.unit {
            Unit::Hour => dates.flat_map(|d| (0..24).map(move |h| Period::Hour(d, h))).collect(),
            Unit::Day => dates.map(Period::Day).collect(),
            Unit::Month => {
                let mut months: Vec<Period> = dates.map(|d| Period::Month(d.year, d.month)).collect();
                months.dedup();
                months
            }
            Unit::Weekday => (0..7).map(Period::Weekday).collect(),
            Unit::Total => vec![Period::Total],
        }
    }
}

/// Settings of a report pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportConfig {
    /// Local time of the dates and buckets.
    pub offset: UtcOffset,
    /// 応答目標時間 (seed 004 §2.24), for the service level.
    pub target_answer_ms: u64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        let stats = StatsConfig::default();
        ReportConfig { offset: stats.offset, target_answer_ms: stats.target_answer_ms }
    }
}

/// Feeds one report's statistics pass; see the module doc.
#[derive(Debug)]
pub struct ReportBuilder {
    query: ReportQuery,
    offset: UtcOffset,
    stats: Stats,
    end_ms: u64,
    events: u64,
}

impl ReportBuilder {
    /// A pass for `query`; push the events from [`ReportQuery::scan_from_ms`] to the window's
    /// end, in log order.
    pub fn new(query: ReportQuery, cfg: ReportConfig) -> ReportBuilder {
        let mut stats = Stats::new(StatsConfig {
            offset: cfg.offset,
            target_answer_ms: cfg.target_answer_ms,
            units: vec![query.unit, Unit::Total],
        });
        let (start, end_ms) = query.window_ms(cfg.offset);
        stats.count_from(start);
        ReportBuilder { query, offset: cfg.offset, stats, end_ms, events: 0 }
    }

    /// Adds one event; events at or after the window's end are ignored.
    pub fn push(&mut self, e: &Event) {
        if e.at_ms < self.end_ms {
            self.stats.push(e);
            self.events += 1;
        }
    }

    /// The rows. `name` gives an agent's display name (`None`: the extension is shown, as the
    /// spec does for a user without a name).
    pub fn finish(mut self, name: &dyn Fn(&str) -> Option<String>) -> Report {
        self.stats.finish(self.end_ms);
        let kind = self.query.kind;
        let wanted = |s: &Scope| match kind {
            ReportKind::Queue => !matches!(s, Scope::Agent(_)),
            ReportKind::Agent => matches!(s, Scope::Agent(_)),
        };
        let mut scopes: BTreeSet<Scope> =
            self.stats.buckets().map(|(k, _)| k.scope.clone()).filter(wanted).collect();
        if kind == ReportKind::Queue {
            scopes.insert(Scope::Overall);
        }
        let custom = self.custom_columns();
        let mut report = Report {
            kind,
            header: header(kind, &custom),
            rows: Vec::new(),
            events: self.events,
            dropped: self.stats.dropped(),
            cut_rows: 0,
        };
        let mut periods = self.query.periods(self.offset);
        periods.push(Period::Total);
        let empty = Totals::default();
        for period in periods {
            for scope in &scopes {
                if report.rows.len() >= MAX_REPORT_ROWS {
                    report.cut_rows += 1;
                    continue;
                }
                let t = self.stats.get(period, scope).unwrap_or(&empty);
                let mut row = vec![period_label(period)];
                row.extend(scope_cells(scope, name));
                match kind {
                    ReportKind::Queue => queue_cells(t, &mut row),
                    ReportKind::Agent => agent_cells(t, &custom, &mut row),
                }
                report.rows.push(row);
            }
        }
        report
    }

    /// Custom other-work states worth a column: named in the log or with time in an agent row.
    fn custom_columns(&self) -> Vec<(AgentState, String)> {
        (1..=super::agent::MAX_CUSTOM_STATES)
            .filter_map(|n| u8::try_from(n).ok())
            .filter_map(|n| {
                let state = AgentState::OtherWork(n);
                let slot = state_slot(state)?;
                let used = self.stats.buckets().any(|(k, t): (&BucketKey, &Totals)| {
                    matches!(k.scope, Scope::Agent(_)) && t.state_ms.get(slot).is_some_and(|v| *v > 0)
                });
                let label = self.stats.custom_label(n).map(str::to_string);
                (used || label.is_some()).then(|| (state, label.unwrap_or_else(|| format!("別作業{n}"))))
            })
            .collect()
    }
}

/// A finished report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Which report.
    pub kind: ReportKind,
    /// Column names.
    pub header: Vec<String>,
    /// One row per period and scope, then the 合計 rows; cells in `header` order.
    pub rows: Vec<Vec<String>>,
    /// Events counted into the pass (warm-up included).
    pub events: u64,
    /// Updates the statistics pass refused at its bucket or tracking caps.
    pub dropped: u64,
    /// Rows cut at [`MAX_REPORT_ROWS`].
    pub cut_rows: u64,
}

/// Columns of the console view: the period, who, and the headline figures.
const QUEUE_TEXT_COLUMNS: [&str; 10] = [
    "期間",
    "電話グループ名",
    "着信数",
    "応答数",
    "放棄数",
    "応答率",
    "サービスレベル",
    "平均応答時間",
    "平均放棄時間",
    "平均処理時間(着)",
];
const AGENT_TEXT_COLUMNS: [&str; 13] = [
    "期間",
    "名前",
    "内線番号",
    "着信数",
    "応答数",
    "着信無応答数",
    "発信数",
    "接続数",
    "応答率",
    "稼働率",
    "占有率",
    "平均処理時間(着)",
    "ログイン時間合計",
];

impl Report {
    /// The spreadsheet form: UTF-8 with a byte-order mark (Excel reads Japanese headers right
    /// only with it), CRLF line ends (RFC 4180), fields quoted when needed. Text cells that a
    /// spreadsheet would run as a formula (`=`, `+`, `-`, `@`) get a leading `'`.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("\u{feff}");
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = line.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        out
    }

    /// The console form: the headline columns, aligned, then a note of what was read.
    pub fn to_text(&self) -> String {
        let names: &[&str] = match self.kind {
            ReportKind::Queue => &QUEUE_TEXT_COLUMNS,
            ReportKind::Agent => &AGENT_TEXT_COLUMNS,
        };
        let cols: Vec<usize> = names.iter().filter_map(|n| self.header.iter().position(|h| h == n)).collect();
        let pick = |line: &[String]| -> Vec<String> {
            cols.iter().map(|i| line.get(*i).cloned().unwrap_or_default()).collect()
        };
        let lines: Vec<Vec<String>> =
            std::iter::once(pick(&self.header)).chain(self.rows.iter().map(|r| pick(r))).collect();
        let widths: Vec<usize> = (0..cols.len())
            .map(|i| lines.iter().map(|l| l.get(i).map_or(0, |c| display_width(c))).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for line in &lines {
            let mut text = String::new();
            for (cell, w) in line.iter().zip(&widths) {
                let pad = w.saturating_sub(display_width(cell));
                let _ = write!(text, "{cell}{:pad$}  ", "");
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        let _ = write!(out, "{} events read", self.events);
        if self.dropped > 0 {
            let _ =
                write!(out, "; {} updates dropped at the statistics caps (narrow the range)", self.dropped);
        }
        if self.cut_rows > 0 {
            let _ = write!(out, "; {} rows cut at {MAX_REPORT_ROWS}", self.cut_rows);
        }
        out.push_str("; add `csv` for every column");
        out
    }
}

/// Terminal columns of a cell: CJK characters take two.
fn display_width(s: &str) -> usize {
    s.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum()
}

fn csv_cell(cell: &str) -> String {
    let guarded = if cell.starts_with(['=', '+', '-', '@']) && cell.parse::<f64>().is_err() {
        format!("'{cell}")
    } else {
        cell.to_string()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// Seed 004's CSV forms: `YYYY/M/D` for a day (sample `2023/6/16`), `YYYY/M` for a month.
fn period_label(p: Period) -> String {
    const WEEKDAYS: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];
    match p {
        Period::Hour(d, h) => format!("{}/{}/{} {h}:00", d.year, d.month, d.day),
        Period::Day(d) => format!("{}/{}/{}", d.year, d.month, d.day),
        Period::Month(y, m) => format!("{y}/{m}"),
        Period::Weekday(w) => WEEKDAYS.get(usize::from(w)).copied().unwrap_or("?").to_string(),
        Period::Total => "合計".to_string(),
    }
}

/// The two "who" cells: group name and number (`全体`, `summary` as in the spec's sample), or
/// agent name and extension.
fn scope_cells(scope: &Scope, name: &dyn Fn(&str) -> Option<String>) -> [String; 2] {
    match scope {
        Scope::Overall => ["全体".into(), "summary".into()],
        // Events name a queue, not its number.
        Scope::Queue(q) => [q.clone(), String::new()],
        Scope::Agent(a) => [name(a).filter(|n| !n.is_empty()).unwrap_or_else(|| a.clone()), a.clone()],
    }
}

fn header(kind: ReportKind, custom: &[(AgentState, String)]) -> Vec<String> {
    let mut h: Vec<String> = Vec::new();
    let mut add = |names: &[&str]| h.extend(names.iter().map(|s| (*s).to_string()));
    match kind {
        ReportKind::Queue => {
            add(&["期間", "電話グループ名", "電話番号"]);
            add(&[
                "着信数",
                "発信数",
                "応答数",
                "接続数",
                "保留数(着)",
                "保留数(発)",
                "通話数",
                "放棄数",
                "1時間あたりの処理数(CPH)(着)",
                "1時間あたりの処理数(CPH)(発)",
                "応答率",
                "接続率",
                "サービスレベル",
                "稼働率",
                "占有率",
            ]);
            add(&AVERAGES_AND_TOTALS_HEAD);
            add(&["平均放棄時間", "合計放棄時間"]);
            add(&[
                "平均応答時間",
                "最大応答時間",
                "最大放棄時間",
                "破棄呼",
                "あふれ",
                "制限時間",
                "応答率(全呼)",
            ]);
        }
        ReportKind::Agent => {
            add(&["期間", "名前", "内線番号"]);
            add(&[
                "着信数",
                "発信数",
                "応答数",
                "接続数",
                "保留数(着)",
                "保留数(発)",
                "着信無応答数",
                "1時間あたりの着信数",
                "1時間あたりの発信数",
                "応答率",
                "接続率",
                "稼働率",
                "占有率",
            ]);
            add(&AVERAGES_AND_TOTALS_HEAD);
            add(&["ログイン時間合計", "ログイン時間平均"]);
            for (_, label) in STATUS_COLUMNS {
                add(&[&format!("{label}合計"), &format!("{label}平均")]);
            }
            for (_, label) in custom {
                add(&[&format!("{label}合計"), &format!("{label}平均")]);
            }
        }
    }
    h
}

/// The shared time columns, in the order of seed 004 §2.12 / §2.13 (放棄 items are the queue
/// report's own and come after).
const AVERAGES_AND_TOTALS_HEAD: [&str; 24] = [
    "平均処理時間(着)",
    "平均処理時間(発)",
    "平均通話時間(着)",
    "平均通話時間(発)",
    "平均後処理時間(着)",
    "平均後処理時間(発)",
    "平均保留時間①(着)",
    "平均保留時間①(発)",
    "平均保留時間②(着)",
    "平均保留時間②(発)",
    "平均着信呼出時間",
    "平均着信応答時間",
    "平均発信呼出時間",
    "合計保留時間(着)",
    "合計保留時間(発)",
    "合計処理時間(着)",
    "合計処理時間(発)",
    "合計通話時間(着)",
    "合計通話時間(発)",
    "合計後処理時間(着)",
    "合計後処理時間(発)",
    "合計着信呼出時間",
    "合計着信応答時間",
    "合計発信呼出時間",
];

fn hms(ms: Option<u64>) -> String {
    format_hms(ms.unwrap_or(0))
}

fn averages_and_totals(t: &Totals, row: &mut Vec<String>) {
    use Direction::{Inbound as In, Outbound as Out};
    row.extend([
        hms(t.aht_ms(In)),
        hms(t.aht_ms(Out)),
        hms(t.avg_talk_ms(In)),
        hms(t.avg_talk_ms(Out)),
        hms(t.avg_acw_ms(In)),
        hms(t.avg_acw_ms(Out)),
        hms(t.avg_hold_per_call_ms(In)),
        hms(t.avg_hold_per_call_ms(Out)),
        hms(t.avg_hold_per_hold_ms(In)),
        hms(t.avg_hold_per_hold_ms(Out)),
        hms(t.avg_ring_in_ms()),
        hms(t.avg_answer_ring_ms()),
        hms(t.avg_ring_out_ms()),
        format_hms(t.hold_ms[0]),
        format_hms(t.hold_ms[1]),
        format_hms(t.handling_ms(In)),
        format_hms(t.handling_ms(Out)),
        format_hms(t.talk_ms[0]),
        format_hms(t.talk_ms[1]),
        format_hms(t.acw_ms[0]),
        format_hms(t.acw_ms[1]),
        format_hms(t.ring_in_ms),
        format_hms(t.answer_ring_ms),
        format_hms(t.ring_out_ms),
    ]);
}

fn queue_cells(t: &Totals, row: &mut Vec<String>) {
    use Direction::{Inbound as In, Outbound as Out};
    row.extend([
        t.incoming.to_string(),
        t.outgoing.to_string(),
        t.answered.to_string(),
        t.connected.to_string(),
        t.holds[0].to_string(),
        t.holds[1].to_string(),
        t.talk_count().to_string(),
        t.abandoned.to_string(),
        t.cph(In),
        t.cph(Out),
        t.answer_rate().seed004(),
        t.connect_rate().seed004(),
        t.service_level().seed004(),
        t.utilisation().seed004(),
        t.occupancy().seed004(),
    ]);
    averages_and_totals(t, row);
    row.extend([
        hms(t.avg_abandon_ms()),
        format_hms(t.abandon_ms),
        hms(t.avg_answer_wait_ms()),
        format_hms(t.max_answer_wait_ms),
        format_hms(t.max_abandon_ms),
        t.hangups.to_string(),
        t.overflows.to_string(),
        t.timeouts.to_string(),
        t.answer_rate_all().seed002(),
    ]);
}

fn agent_cells(t: &Totals, custom: &[(AgentState, String)], row: &mut Vec<String>) {
    use Direction::{Inbound as In, Outbound as Out};
    row.extend([
        t.incoming.to_string(),
        t.outgoing.to_string(),
        t.answered.to_string(),
        t.connected.to_string(),
        t.holds[0].to_string(),
        t.holds[1].to_string(),
        t.no_answer.to_string(),
        t.cph(In),
        t.cph(Out),
        t.answer_rate().seed004(),
        t.connect_rate().seed004(),
        t.utilisation().seed004(),
        t.occupancy().seed004(),
    ]);
    averages_and_totals(t, row);
    row.extend([format_hms(t.login_ms()), hms(t.avg_login_ms())]);
    let states = STATUS_COLUMNS.iter().map(|(s, _)| *s).chain(custom.iter().map(|(s, _)| *s));
    for state in states {
        let total = state_slot(state).and_then(|s| t.state_ms.get(s)).copied().unwrap_or(0);
        row.extend([format_hms(total), hms(t.avg_state_ms(state))]);
    }
}

#[cfg(test)]
mod tests;
