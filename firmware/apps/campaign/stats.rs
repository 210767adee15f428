//! Campaign statistics (seed 002 §2.12): per date, hour or agent, the records processed
//! (件数), the dial attempts for them (コール数) and the count or share of each final result.
//! Figures show each record's final result, bucketed by its last dial.

use super::dialer::Entry;
use super::results::{CustomResult, Outcome, SystemResult};
use crate::apps::timerules::{LocalTime, UtcOffset};
use std::collections::BTreeMap;

/// 区分: how rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// One row per local date.
    Date,
    /// One row per local hour of the day (0-23), over the whole range.
    Hour,
    /// One row per agent who last talked to the customer (`-` when none).
    Agent,
}

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `2026-11-22`, `09`, or the agent's extension.
    pub key: String,
    /// 件数: records with a final result in this row.
    pub records: u64,
    /// コール数: dial attempts of those records.
    pub calls: u64,
    /// Count per result, in [`Stats::columns`] order.
    pub counts: Vec<u64>,
}

/// The table.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Result columns: the campaign's results, then the system results except 発信待機中.
    pub columns: Vec<(Outcome, String)>,
    /// Rows in key order.
    pub rows: Vec<Row>,
}

/// Builds the statistics of `entries` whose last dial is in `[from_ms, to_ms)`.
pub fn campaign_stats(
    entries: &[Entry],
    custom: &[CustomResult],
    group: GroupBy,
    from_ms: u64,
    to_ms: u64,
    offset: UtcOffset,
) -> Stats {
    let mut columns: Vec<(Outcome, String)> =
        custom.iter().map(|r| (Outcome::Custom(r.number), r.text.clone())).collect();
    columns.extend(
        SystemResult::ALL
            .into_iter()
            .filter(|s| *s != SystemResult::Waiting)
            .map(|s| (Outcome::System(s), s.label_ja().to_string())),
    );
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for e in entries {
        let Some(at) = e.last_dialled_ms.filter(|t| (from_ms..to_ms).contains(t)) else { continue };
        let Some(col) = columns.iter().position(|(o, _)| *o == e.result) else { continue };
        let local = LocalTime::from_unix_ms(at, offset);
        let key = match group {
            GroupBy::Date => format!("{:04}-{:02}-{:02}", local.date.year, local.date.month, local.date.day),
            GroupBy::Hour => format!("{:02}", local.minute_of_day / 60),
            GroupBy::Agent => e.agent.clone().unwrap_or_else(|| "-".into()),
        };
        let row = rows.entry(key.clone()).or_insert_with(|| Row {
            key,
            records: 0,
            calls: 0,
            counts: vec![0; columns.len()],
        });
        row.records += 1;
        row.calls += u64::from(e.calls);
        if let Some(c) = row.counts.get_mut(col) {
            *c += 1;
        }
    }
    Stats { columns, rows: rows.into_values().collect() }
}

impl Stats {
    /// The table as CSV (UTF-8 with a BOM so spreadsheet programs read the Japanese headers);
    /// `percent` shows each result as a share of the row's records.
    pub fn to_csv(&self, percent: bool) -> String {
        let mut out = String::from("\u{feff}区分,件数,コール数");
        for (_, name) in &self.columns {
            out.push(',');
            out.push_str(&csv_field(name));
        }
        out.push_str("\r\n");
        for r in &self.rows {
            out.push_str(&format!("{},{},{}", csv_field(&r.key), r.records, r.calls));
            for c in &r.counts {
                if percent {
                    // Counts are far below 2^52, so the f64 division is exact enough.
                    let share = if r.records == 0 { 0.0 } else { *c as f64 * 100.0 / r.records as f64 };
                    out.push_str(&format!(",{share:.1}"));
                } else {
                    out.push_str(&format!(",{c}"));
                }
            }
            out.push_str("\r\n");
        }
        out
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::campaign::dialer::EntryStatus;

    fn entry(id: u64, at: u64, result: Outcome, calls: u32, agent: Option<&str>) -> Entry {
        Entry {
            id,
            customer: None,
            name: String::new(),
            number: "0311112222".into(),
            result,
            status: EntryStatus::Dialled,
            calls,
            last_dialled_ms: Some(at),
            schedule_ms: None,
            assignee: None,
            agent: agent.map(str::to_string),
        }
    }

    #[test]
    fn records_equal_the_sum_of_the_result_columns_and_calls_sum_the_attempts() {
        // 2026-11-22 00:00 JST = 2026-11-21 15:00 UTC.
        let day = crate::apps::timerules::Date::new(2026, 11, 22).unwrap().midnight_unix_ms(UtcOffset::JST);
        let custom = vec![CustomResult { number: 1, text: "受注".into() }];
        let h9 = day + 9 * 3_600_000;
        let entries = vec![
            entry(1, h9, Outcome::Custom(1), 1, Some("201")),
            entry(2, h9 + 60_000, Outcome::System(SystemResult::Busy), 3, None),
            entry(3, h9 + 3_600_000, Outcome::Custom(1), 2, Some("202")),
            entry(4, h9, Outcome::System(SystemResult::Waiting), 1, None),
            entry(5, day - 1, Outcome::Custom(1), 1, None),
        ];
        let s = campaign_stats(&entries, &custom, GroupBy::Hour, day, day + 86_400_000, UtcOffset::JST);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0].key, "09");
        assert_eq!((s.rows[0].records, s.rows[0].calls), (2, 4));
        for r in &s.rows {
            assert_eq!(r.records, r.counts.iter().sum::<u64>());
        }
        let csv = s.to_csv(true);
        assert!(csv.starts_with("\u{feff}区分,件数,コール数,受注,ビジー"));
        assert!(csv.contains("\r\n09,2,4,50.0,50.0"));
        let by_agent =
            campaign_stats(&entries, &custom, GroupBy::Agent, day, day + 86_400_000, UtcOffset::JST);
        let keys: Vec<&str> = by_agent.rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["-", "201", "202"]);
        let by_date = campaign_stats(&entries, &custom, GroupBy::Date, day, day + 86_400_000, UtcOffset::JST);
        assert_eq!(by_date.rows[0].key, "2026-11-22");
    }
}
