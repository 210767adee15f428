//! The call-history search (通話履歴, seed 004 §2.14, issue 7): CDRs turned into the screen's
//! rows, the filters, the sort and the CSV. Sans-IO: the web reads CDRs from the store and
//! hands them here.
//!
//! Row fields from a [`CdrRecord`]:
//! - 発信者番号 `caller`: the From user.
//! - 外線発信者番号 `external`: the outside number of a trunk call (the caller of an inbound
//!   call, the dialled number of an outbound one); empty for an internal call.
//! - 着信者番号 `called`: the DID of an inbound call, else the dialled number.
//! - 発信先 `destination`: where the call went, `DID -> 201` for an inbound call, with each
//!   transfer or park that replaced a party appended (`-> 203`).
//! - 制御 `kind`: incoming (trunk in), outgoing (trunk out), internal.
//! - 通話結果 `result`: answered, no_answer, busy, cancelled, failed.

use super::timerules::{LocalTime, UtcOffset};
use crate::engine::cdr::{CdrRecord, Disposition};
use serde::{Deserialize, Serialize};

/// Rows one page holds at most: seed 004 shows 「100 件表示」; 1,000 bounds the answer.
pub const MAX_PAGE: usize = 1_000;

/// Longest text in a number filter, in characters: numbers are under 32.
pub const MAX_FILTER_CHARS: usize = 32;

/// What a call was (制御).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// From a trunk (↓着信).
    Incoming,
    /// To a trunk (↑発信).
    Outgoing,
    /// Phone to phone (内線).
    Internal,
}

impl Kind {
    /// The screen's label.
    pub fn ja(self) -> &'static str {
        match self {
            Kind::Incoming => "着信",
            Kind::Outgoing => "発信",
            Kind::Internal => "内線",
        }
    }
}

/// How a call ended (通話結果).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 応答.
    Answered,
    /// 不在: rang until the timeout.
    NoAnswer,
    /// 話中.
    Busy,
    /// 放棄: the caller gave up.
    Cancelled,
    /// 失敗.
    Failed,
}

impl Outcome {
    /// The screen's label.
    pub fn ja(self) -> &'static str {
        match self {
            Outcome::Answered => "応答",
            Outcome::NoAnswer => "不在",
            Outcome::Busy => "話中",
            Outcome::Cancelled => "放棄",
            Outcome::Failed => "失敗",
        }
    }

    fn of(d: Disposition) -> Outcome {
        match d {
            Disposition::Answered => Outcome::Answered,
            Disposition::NoAnswer => Outcome::NoAnswer,
            Disposition::Busy => Outcome::Busy,
            Disposition::Cancelled => Outcome::Cancelled,
            Disposition::Failed => Outcome::Failed,
        }
    }
}

/// One row of the history screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The CDR's call id.
    pub call_id: u64,
    /// Start, Unix ms.
    pub start_ms: u64,
    /// 発信者番号.
    pub caller: String,
    /// 外線発信者番号.
    pub external: String,
    /// 着信者番号.
    pub called: String,
    /// 発信先.
    pub destination: String,
    /// 制御.
    pub kind: Kind,
    /// 通話結果.
    pub result: Outcome,
    /// 呼出時間, seconds.
    pub ring_s: u64,
    /// 通話時間, seconds.
    pub talk_s: u64,
    /// Recording files (relative paths).
    pub recordings: Vec<String>,
}

/// Turns a CDR into its row.
pub fn row(c: &CdrRecord) -> Row {
    let kind = match (&c.trunk, &c.did) {
        (Some(_), Some(_)) => Kind::Incoming,
        (Some(_), None) => Kind::Outgoing,
        (None, _) => Kind::Internal,
    };
    let (external, called) = match kind {
        Kind::Incoming => (c.from.clone(), c.did.clone().unwrap_or_else(|| c.to.clone())),
        Kind::Outgoing => (c.to.clone(), c.to.clone()),
        Kind::Internal => (String::new(), c.to.clone()),
    };
    let mut destination = c.to.clone();
    if let Some(did) = c.did.as_ref().filter(|d| **d != c.to) {
        destination = format!("{did} -> {}", c.to);
    }
    for r in &c.rewires {
        destination.push_str(&format!(" -> {}", r.by));
    }
    Row {
        call_id: c.call_id,
        start_ms: c.start_ms,
        caller: c.from.clone(),
        external,
        called,
        destination,
        kind,
        result: Outcome::of(c.disposition),
        ring_s: c.ring_duration_ms / 1000,
        talk_s: c.talk_duration_ms / 1000,
        recordings: c.recordings.clone(),
    }
}

/// How a number filter compares (前方一致, 部分一致, 後方一致, 完全一致).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// The field starts with the text.
    Prefix,
    /// The field contains the text.
    Contains,
    /// The field ends with the text.
    Suffix,
    /// The field is the text.
    Exact,
}

/// A filter on one number field; `not` (NOT検索) keeps the rows that do not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFilter {
    /// The text (at most [`MAX_FILTER_CHARS`]).
    pub text: String,
    /// How it compares.
    pub mode: Match,
    /// Negate.
    pub not: bool,
}

impl TextFilter {
    fn keeps(&self, field: &str) -> bool {
        let hit = match self.mode {
            Match::Prefix => field.starts_with(&self.text),
            Match::Contains => field.contains(&self.text),
            Match::Suffix => field.ends_with(&self.text),
            Match::Exact => field == self.text,
        };
        hit != self.not
    }
}

/// A set filter (制御, 通話結果): the row's value is in `any`, or not in it with `not`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFilter<T> {
    /// The values chosen.
    pub any: Vec<T>,
    /// Negate.
    pub not: bool,
}

impl<T: PartialEq> SetFilter<T> {
    fn keeps(&self, v: &T) -> bool {
        self.any.contains(v) != self.not
    }
}

/// The sort key (並び順).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// 通話日時 (the default).
    #[default]
    Time,
    /// 発信者番号.
    Caller,
    /// 外線発信者番号.
    External,
    /// 着信者番号.
    Called,
    /// 発信先.
    Destination,
    /// 通話時間.
    Talk,
    /// 制御.
    Kind,
    /// 通話結果.
    Result,
}

/// Every condition of a search; `None` fields do not filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// 発信者番号.
    pub caller: Option<TextFilter>,
    /// 外線発信者番号.
    pub external: Option<TextFilter>,
    /// 着信者番号.
    pub called: Option<TextFilter>,
    /// 発信先.
    pub destination: Option<TextFilter>,
    /// Talk time at least, seconds.
    pub talk_min_s: Option<u64>,
    /// Talk time at most, seconds.
    pub talk_max_s: Option<u64>,
    /// 制御.
    pub kinds: Option<SetFilter<Kind>>,
    /// 通話結果.
    pub results: Option<SetFilter<Outcome>>,
    /// Started at or after, Unix ms.
    pub from_ms: Option<u64>,
    /// Started at or before, Unix ms.
    pub to_ms: Option<u64>,
}

impl Filter {
    /// Whether the row passes every condition.
    pub fn keeps(&self, r: &Row) -> bool {
        let text = |f: &Option<TextFilter>, v: &str| f.as_ref().is_none_or(|f| f.keeps(v));
        text(&self.caller, &r.caller)
            && text(&self.external, &r.external)
            && text(&self.called, &r.called)
            && text(&self.destination, &r.destination)
            && self.talk_min_s.is_none_or(|m| r.talk_s >= m)
            && self.talk_max_s.is_none_or(|m| r.talk_s <= m)
            && self.kinds.as_ref().is_none_or(|k| k.keeps(&r.kind))
            && self.results.as_ref().is_none_or(|k| k.keeps(&r.result))
            && self.from_ms.is_none_or(|t| r.start_ms >= t)
            && self.to_ms.is_none_or(|t| r.start_ms <= t)
    }
}

/// Sorts rows by `key`; ties keep time order (newest first when `newest_first`), so pages are
/// stable.
pub fn sort(rows: &mut [Row], key: SortKey, newest_first: bool) {
    rows.sort_by(|a, b| {
        let by = match key {
            SortKey::Time => std::cmp::Ordering::Equal,
            SortKey::Caller => a.caller.cmp(&b.caller),
            SortKey::External => a.external.cmp(&b.external),
            SortKey::Called => a.called.cmp(&b.called),
            SortKey::Destination => a.destination.cmp(&b.destination),
            SortKey::Talk => a.talk_s.cmp(&b.talk_s),
            SortKey::Kind => a.kind.cmp(&b.kind),
            SortKey::Result => a.result.cmp(&b.result),
        };
        let time = (a.start_ms, a.call_id).cmp(&(b.start_ms, b.call_id));
        let ordered = by.then(time);
        if newest_first {
            ordered.reverse()
        } else {
            ordered
        }
    });
}

/// `YYYY-MM-DD HH:MM:SS` at `offset`.
pub fn format_time(unix_ms: u64, offset: UtcOffset) -> String {
    let t = LocalTime::from_unix_ms(unix_ms, offset);
    let secs = (unix_ms / 1000) % 60;
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{secs:02}",
        t.date.year,
        t.date.month,
        t.date.day,
        t.minute_of_day / 60,
        t.minute_of_day % 60
    )
}

/// `MM:SS` (minutes grow past 59 rather than wrap).
pub fn format_duration(secs: u64) -> String {
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

/// Appends one CSV cell, quoted when needed; a leading `=`, `+`, `-` or `@` is defused.
pub fn csv_cell(out: &mut String, cell: &str) {
    if cell.contains([',', '"', '\n', '\r']) || cell.starts_with(['=', '+', '-', '@']) {
        // A leading `=`/`+`/`-`/`@` would run as a formula in a spreadsheet.
        out.push('"');
        if cell.starts_with(['=', '+', '-', '@']) {
            out.push('\'');
        }
        out.push_str(&cell.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(cell);
    }
}

/// The rows as CSV with the screen's columns, UTF-8 with a BOM so Excel opens it.
pub fn export_csv<'a>(rows: impl Iterator<Item = &'a Row>, offset: UtcOffset) -> Vec<u8> {
    let mut text = String::from(
        "\u{FEFF}通話日時,発信者番号,外線発信者番号,着信者番号,制御,発信先,通話結果,呼出時間,通話時間,録音ファイル\r\n",
    );
    for r in rows {
        let cells = [
            format_time(r.start_ms, offset),
            r.caller.clone(),
            r.external.clone(),
            r.called.clone(),
            r.kind.ja().to_string(),
            r.destination.clone(),
            r.result.ja().to_string(),
            format_duration(r.ring_s),
            format_duration(r.talk_s),
            r.recordings.join(" "),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            csv_cell(&mut text, c);
        }
        text.push_str("\r\n");
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cdr::HangupSide;

    fn cdr(
        id: u64,
        from: &str,
        to: &str,
        talk_s: u64,
        d: Disposition,
        trunk: Option<&str>,
        did: Option<&str>,
    ) -> CdrRecord {
        CdrRecord {
            call_id: id,
            from: from.into(),
            to: to.into(),
            start_ms: 1_764_000_000_000 + id * 60_000,
            ring_ms: None,
            answer_ms: None,
            end_ms: 1_764_000_000_000 + id * 60_000 + talk_s * 1000,
            disposition: d,
            ring_duration_ms: 3_000,
            talk_duration_ms: talk_s * 1000,
            total_duration_ms: 3_000 + talk_s * 1000,
            hangup_side: HangupSide::Caller,
            cause: "BYE".into(),
            final_status: 200,
            legs: Vec::new(),
            recordings: Vec::new(),
            trunk: trunk.map(str::to_string),
            did: did.map(str::to_string),
            rewires: Vec::new(),
        }
    }

    fn rows() -> Vec<Row> {
        [
            cdr(1, "201", "202", 30, Disposition::Answered, None, None),
            cdr(2, "0611112222", "201", 0, Disposition::NoAnswer, Some("provider"), Some("0312345678")),
            cdr(3, "202", "0398765432", 125, Disposition::Answered, Some("provider"), None),
            cdr(4, "203", "201", 0, Disposition::Busy, None, None),
        ]
        .iter()
        .map(row)
        .collect()
    }

    fn ids(f: &Filter) -> Vec<u64> {
        rows().iter().filter(|r| f.keeps(r)).map(|r| r.call_id).collect()
    }

    fn text(t: &str, mode: Match, not: bool) -> Option<TextFilter> {
        Some(TextFilter { text: t.into(), mode, not })
    }

    #[test]
    fn a_cdr_becomes_the_screens_row() {
        let r = rows();
        let inbound =
            r.get(1).map(|r| (r.kind, r.external.as_str(), r.called.as_str(), r.destination.as_str()));
        assert_eq!(inbound, Some((Kind::Incoming, "0611112222", "0312345678", "0312345678 -> 201")));
        assert_eq!(r.get(2).map(|r| (r.kind, r.talk_s)), Some((Kind::Outgoing, 125)));
        assert_eq!(r.first().map(|r| (r.kind, r.external.as_str())), Some((Kind::Internal, "")));
    }

    #[test]
    fn each_text_mode_and_its_negation_filter_the_caller() {
        let f = |t, m, n| Filter { caller: text(t, m, n), ..Filter::default() };
        assert_eq!(ids(&f("20", Match::Prefix, false)), [1, 3, 4]);
        assert_eq!(ids(&f("1111", Match::Contains, false)), [2]);
        assert_eq!(ids(&f("2", Match::Suffix, false)), [2, 3]);
        assert_eq!(ids(&f("201", Match::Exact, false)), [1]);
        assert_eq!(ids(&f("201", Match::Exact, true)), [2, 3, 4]);
        let called = Filter { called: text("0312", Match::Prefix, false), ..Filter::default() };
        assert_eq!(ids(&called), [2]);
        let dest = Filter { destination: text("201", Match::Suffix, false), ..Filter::default() };
        assert_eq!(ids(&dest), [2, 4]);
    }

    #[test]
    fn talk_time_kind_result_and_date_ranges_combine() {
        let talk = Filter { talk_min_s: Some(10), talk_max_s: Some(60), ..Filter::default() };
        assert_eq!(ids(&talk), [1]);
        let kind =
            Filter { kinds: Some(SetFilter { any: vec![Kind::Internal], not: true }), ..Filter::default() };
        assert_eq!(ids(&kind), [2, 3]);
        let missed = Filter {
            results: Some(SetFilter { any: vec![Outcome::NoAnswer, Outcome::Busy], not: false }),
            ..Filter::default()
        };
        assert_eq!(ids(&missed), [2, 4]);
        let start = 1_764_000_000_000;
        let dates =
            Filter { from_ms: Some(start + 120_000), to_ms: Some(start + 180_000), ..Filter::default() };
        assert_eq!(ids(&dates), [2, 3]);
    }

    #[test]
    fn sorting_by_any_key_breaks_ties_by_time() {
        let mut r = rows();
        sort(&mut r, SortKey::Time, true);
        assert_eq!(r.iter().map(|r| r.call_id).collect::<Vec<_>>(), [4, 3, 2, 1]);
        sort(&mut r, SortKey::Talk, false);
        assert_eq!(r.iter().map(|r| r.call_id).collect::<Vec<_>>(), [2, 4, 1, 3]);
        sort(&mut r, SortKey::Called, false);
        assert_eq!(r.iter().map(|r| r.call_id).collect::<Vec<_>>(), [2, 3, 4, 1]);
    }

    #[test]
    fn csv_has_a_bom_the_screens_columns_and_jst_times() {
        let r = rows();
        let csv = export_csv(r.iter().take(1), UtcOffset::JST);
        let text = String::from_utf8(csv).unwrap_or_default();
        assert!(text.starts_with("\u{FEFF}通話日時,発信者番号,外線発信者番号,着信者番号,制御,発信先,通話結果,呼出時間,通話時間,録音ファイル\r\n"));
        // 1_764_000_060 s = 2025-11-24 16:01:00 UTC = 2025-11-25 01:01:00 JST.
        assert!(text.contains("2025-11-25 01:01:00,201,,202,内線,202,応答,00:03,00:30,"), "{text}");
        let mut cell = String::new();
        csv_cell(&mut cell, "=1+1");
        assert_eq!(cell, "\"'=1+1\"");
    }
}
