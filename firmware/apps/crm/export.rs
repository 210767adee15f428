//! CSV downloads of the CRM (seed 002 §2.8 チェックした顧客/案件のダウンロード, §2.15
//! ワークフロー統計のダウンロード): UTF-8 with a BOM so Excel opens it, times in the given
//! offset, cells quoted and defused as the call history's CSV (`apps::history::csv_cell`).

use super::model::{Case, Customer};
use super::StepStats;
use crate::apps::history::{csv_cell, format_time};
use crate::apps::timerules::UtcOffset;

fn line(out: &mut String, cells: &[String]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(out, c);
    }
    out.push_str("\r\n");
}

/// The customers, one row each. The columns after the fixed ones are every field name any
/// of them carries (sorted), so a sheet of mixed formats keeps one column per field.
/// Phone numbers and tags are `;`-separated in their cell.
pub fn customers_csv(customers: &[&Customer], offset: UtcOffset) -> Vec<u8> {
    let mut names: Vec<&String> = customers.iter().flat_map(|c| c.fields.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = String::from("\u{FEFF}");
    let mut head: Vec<String> =
        ["ID", "顧客コード", "業務", "名称", "電話番号", "メール", "備考", "タグ", "登録", "更新"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    head.extend(names.iter().map(|n| n.to_string()));
    line(&mut out, &head);
    for c in customers {
        let mut cells = vec![
            format!("#C{}", c.id),
            c.code.clone(),
            c.format.clone().unwrap_or_default(),
            c.name.clone(),
            c.phones.join(";"),
            c.email.clone(),
            c.note.clone(),
            c.tags.join(";"),
            format_time(c.created.at_ms, offset),
            format_time(c.updated.at_ms, offset),
        ];
        cells.extend(names.iter().map(|n| c.fields.get(*n).cloned().unwrap_or_default()));
        line(&mut out, &cells);
    }
    out.into_bytes()
}

/// The cases, one row each (the list's columns plus detail and notes).
pub fn cases_csv(cases: &[&Case], offset: UtcOffset) -> Vec<u8> {
    let mut out = String::from("\u{FEFF}");
    let head: Vec<String> =
        ["ID", "題名", "顧客", "ステータス", "担当", "ワークフロー", "タグ", "詳細", "注記", "登録", "更新"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    line(&mut out, &head);
    for k in cases {
        let cells = vec![
            format!("#T{}", k.id),
            k.title.clone(),
            k.customer.map(|c| format!("#C{c}")).unwrap_or_default(),
            k.status.clone(),
            k.owner.clone().unwrap_or_default(),
            k.step.as_ref().map(|(w, s)| format!("{w}-{s}")).unwrap_or_default(),
            k.tags.join(";"),
            k.detail.clone(),
            k.notes.clone(),
            format_time(k.created.at_ms, offset),
            format_time(k.updated.at_ms, offset),
        ];
        line(&mut out, &cells);
    }
    out.into_bytes()
}

/// One row of the workflow statistics (§2.15), times in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatsRow {
    /// The workflow.
    pub workflow: String,
    /// The step; `None` on the 合計 (total) row.
    pub step: Option<String>,
    /// 件数.
    pub count: u64,
    /// 平均時間: total / count, rounded down (the manual's example).
    pub avg_s: u64,
    /// 最大時間.
    pub max_s: u64,
    /// 最小時間.
    pub min_s: u64,
    /// 時間合計.
    pub total_s: u64,
}

/// The rows of the statistics of `workflow` (every workflow when `None`): one per step, then
/// a 合計 row per workflow over its steps.
pub fn stats_rows(stats: &[StepStats], workflow: Option<&str>) -> Vec<StatsRow> {
    let mut out = Vec::new();
    let mut workflows: Vec<&String> = stats.iter().map(|s| &s.step.0).collect();
    workflows.dedup();
    for wf in workflows.into_iter().filter(|w| workflow.is_none_or(|x| x == w.as_str())) {
        let mut total = StatsRow {
            workflow: wf.clone(),
            step: None,
            count: 0,
            avg_s: 0,
            max_s: 0,
            min_s: u64::MAX,
            total_s: 0,
        };
        let mut total_ms = 0u64;
        for s in stats.iter().filter(|s| &s.step.0 == wf) {
            let row = StatsRow {
                workflow: wf.clone(),
                step: Some(s.step.1.clone()),
                count: s.passes,
                avg_s: s.total_ms.checked_div(s.passes).unwrap_or(0) / 1000,
                max_s: s.max_ms / 1000,
                min_s: s.min_ms / 1000,
                total_s: s.total_ms / 1000,
            };
            total.count += s.passes;
            total_ms = total_ms.saturating_add(s.total_ms);
            total.max_s = total.max_s.max(row.max_s);
            total.min_s = total.min_s.min(row.min_s);
            out.push(row);
        }
        total.total_s = total_ms / 1000;
        total.avg_s = total_ms.checked_div(total.count).unwrap_or(0) / 1000;
        if total.count == 0 {
            total.min_s = 0;
        }
        out.push(total);
    }
    out
}

/// The statistics as CSV (the screen's columns).
pub fn stats_csv(rows: &[StatsRow]) -> Vec<u8> {
    let mut out = String::from("\u{FEFF}");
    let head: Vec<String> =
        ["ワークフロー", "ステップ", "件数", "平均時間", "最大時間", "最小時間", "時間合計"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    line(&mut out, &head);
    for r in rows {
        let cells = vec![
            r.workflow.clone(),
            r.step.clone().unwrap_or_else(|| "合計".into()),
            r.count.to_string(),
            format!("{}s", r.avg_s),
            format!("{}s", r.max_s),
            format!("{}s", r.min_s),
            format!("{}s", r.total_s),
        ];
        line(&mut out, &cells);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::crm::model::Stamp;
    use std::collections::BTreeMap;

    #[test]
    fn the_customer_csv_has_a_bom_one_column_per_field_and_defused_cells() {
        let a = Customer {
            id: 7,
            name: "=HYPERLINK(\"x\")".into(),
            phones: vec!["03-1234-5678".into(), "090-1111-2222".into()],
            fields: BTreeMap::from([("住所".to_string(), "東京, 千代田".to_string())]),
            created: Stamp { at_ms: 0, by: "admin".into() },
            ..Customer::default()
        };
        let b = Customer {
            id: 8,
            name: "B".into(),
            fields: BTreeMap::from([("契約".to_string(), "契約中".to_string())]),
            ..Customer::default()
        };
        let csv = String::from_utf8(customers_csv(&[&a, &b], UtcOffset::JST)).unwrap();
        assert!(csv.starts_with("\u{FEFF}ID,顧客コード"));
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].ends_with(",住所,契約"));
        assert!(lines[1].starts_with("#C7,,,\"'=HYPERLINK(\"\"x\"\")\",03-1234-5678;090-1111-2222,"));
        assert!(lines[1].contains("1970-01-01 09:00:00"));
        assert!(lines[1].ends_with(",\"東京, 千代田\","));
        assert!(lines[2].ends_with(",,契約中"));
    }

    #[test]
    fn stats_rows_follow_the_manuals_example() {
        // The manual: STEP1 2 / 73 s / 145 s / 2 s / 147 s.
        let s = |step: &str, passes, total_ms, max_ms, min_ms| StepStats {
            step: ("TEST".into(), step.into()),
            passes,
            total_ms,
            max_ms,
            min_ms,
        };
        let rows =
            stats_rows(&[s("STEP1", 2, 147_000, 145_000, 2_000), s("STEP2", 4, 16_000, 6_000, 3_000)], None);
        assert_eq!(
            (rows[0].count, rows[0].avg_s, rows[0].max_s, rows[0].min_s, rows[0].total_s),
            (2, 73, 145, 2, 147)
        );
        let total = &rows[2];
        assert_eq!(total.step, None);
        assert_eq!((total.count, total.avg_s, total.max_s, total.min_s, total.total_s), (6, 27, 145, 2, 163));
        let csv = String::from_utf8(stats_csv(&rows)).unwrap();
        assert!(csv.contains("TEST,合計,6,27s,145s,2s,163s"));
        assert!(stats_rows(&rows_none(), Some("TEST")).is_empty());
    }

    fn rows_none() -> Vec<StepStats> {
        Vec::new()
    }
}
