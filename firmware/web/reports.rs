//! Reports (seed 004 §2.11-2.13, §4.3): the phone-group and operator reports over the
//! call-center event log, as JSON for the page's tables and charts and as the spec's CSV.
//!
//! `GET /api/v1/reports/{kind}` with `kind` = `groups` (電話グループレポート) or `operators`
//! (オペレーターレポート) and the query fields:
//! - `unit`: `month`, `day`, `hour` or `weekday` (集計単位);
//! - `periods`: up to [`MAX_PERIODS`] comma-separated `YYYY-MM-DD..YYYY-MM-DD` (or one date),
//!   the first being the report and the others its comparison periods;
//! - `groups` (phone-group report): up to [`MAX_GROUPS`] queue names; none = every queue;
//! - `agents` (operator report): up to [`MAX_AGENTS`] extensions; none = every agent.
//!
//! `.../csv` answers the same rows as `text/csv` (UTF-8 with BOM, CRLF; `Report::to_csv`), one
//! header row and the rows of every period in order. The passes read the store off the async
//! workers, one at a time ([`REPORT_SLOTS`]). Needs `reports_view`; a CSV download is audited
//! (`report.download`).

use super::api::{check_extension, ApiError, ApiResult, Authed, State, ENGINE_QUERY_TIMEOUT};
use super::auth::Permission;
use super::WebQuery;
use crate::apps::callcenter::report::{Report, ReportConfig, ReportKind, ReportQuery};
use crate::apps::callcenter::Unit;
use crate::apps::timerules::Date;
use crate::engine::ReportSetup;
use crate::store::Store;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::{Extension, Json};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{oneshot, Semaphore};

/// Periods of one request: the report and four comparison periods (seed 004 §2.12).
pub const MAX_PERIODS: usize = 5;

/// Phone groups of one phone-group report (seed 004 §2.12).
pub const MAX_GROUPS: usize = 10;

/// Operators of one operator report (seed 004 §2.13).
pub const MAX_AGENTS: usize = 50;

/// Report passes at once: a year's scan keeps a core busy for seconds on the appliance, and
/// calls need the other one.
pub const REPORT_SLOTS: usize = 1;

/// Longest query value accepted before parsing, so a huge query string costs no parse work.
const MAX_FIELD_CHARS: usize = 2048;

/// The report side of the web: the store to read and the pass limiter.
pub(super) struct Reports {
    store: Store,
    slots: Semaphore,
}

impl Reports {
    pub(super) fn new(store: &Store) -> Arc<Reports> {
        Arc::new(Reports { store: store.clone(), slots: Semaphore::new(REPORT_SLOTS) })
    }
}

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![("/api/v1/reports/{kind}", get(report_json)), ("/api/v1/reports/{kind}/csv", get(report_csv))]
}

/// A checked report request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    kind: ReportKind,
    queries: Vec<ReportQuery>,
    /// Rows kept: queue names or extensions; empty = all.
    only: Vec<String>,
}

fn parse_unit(s: &str) -> Option<Unit> {
    match s {
        "month" => Some(Unit::Month),
        "day" => Some(Unit::Day),
        "hour" => Some(Unit::Hour),
        "weekday" => Some(Unit::Weekday),
        _ => None,
    }
}

fn list(s: Option<&String>) -> Vec<String> {
    s.map(|s| s.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Checks the query fields against the kind and the configured queues; every bad field is
/// named with a message.
fn check(kind: ReportKind, q: &BTreeMap<String, String>, queues: &[String]) -> Result<Request, ApiError> {
    let mut errors: BTreeMap<&str, String> = BTreeMap::new();
    let (list_field, other_field) = match kind {
        ReportKind::Queue => ("groups", "agents"),
        ReportKind::Agent => ("agents", "groups"),
    };
    for (k, v) in q {
        if v.chars().count() > MAX_FIELD_CHARS {
            errors.insert("query", format!("{k} is longer than {MAX_FIELD_CHARS} characters"));
        } else if !["unit", "periods", list_field].contains(&k.as_str()) {
            let msg = if k == other_field { "not a field of this report" } else { "unknown field" };
            errors.insert(if k == other_field { other_field } else { "query" }, format!("{k}: {msg}"));
        }
    }
    let unit = q.get("unit").and_then(|u| parse_unit(u));
    if unit.is_none() {
        errors.insert("unit", "one of month, day, hour, weekday".into());
    }
    let periods = list(q.get("periods"));
    let mut queries = Vec::new();
    if periods.is_empty() {
        errors.insert("periods", "at least one period YYYY-MM-DD..YYYY-MM-DD".into());
    } else if periods.len() > MAX_PERIODS {
        errors.insert("periods", format!("at most {MAX_PERIODS} periods (the report and 4 to compare)"));
    } else if let Some(unit) = unit {
        for p in &periods {
            let (a, b) = p.split_once("..").unwrap_or((p, p));
            let (Some(from), Some(to)) = (Date::parse(a.trim()), Date::parse(b.trim())) else {
                errors.insert("periods", format!("`{p}` is not YYYY-MM-DD..YYYY-MM-DD"));
                break;
            };
            match ReportQuery::new(kind, unit, from, to) {
                Ok(query) => queries.push(query),
                Err(e) => {
                    errors.insert("periods", format!("{p}: {e}"));
                    break;
                }
            }
        }
    }
    let only = list(q.get(list_field));
    match kind {
        ReportKind::Queue if only.len() > MAX_GROUPS => {
            errors.insert("groups", format!("at most {MAX_GROUPS} phone groups"));
        }
        ReportKind::Queue => {
            if let Some(bad) = only.iter().find(|g| !queues.contains(g)) {
                errors.insert("groups", format!("`{bad}` is not a phone group"));
            }
        }
        ReportKind::Agent if only.len() > MAX_AGENTS => {
            errors.insert("agents", format!("at most {MAX_AGENTS} operators"));
        }
        ReportKind::Agent => {
            if let Some(bad) = only.iter().find(|a| check_extension(a).is_err()) {
                errors.insert("agents", format!("`{bad}` is not an extension"));
            }
        }
    }
    if errors.is_empty() {
        Ok(Request { kind, queries, only })
    } else {
        Err(ApiError::fields(errors))
    }
}

fn parse_kind(kind: &str) -> Result<ReportKind, ApiError> {
    match kind {
        "groups" => Ok(ReportKind::Queue),
        "operators" => Ok(ReportKind::Agent),
        _ => Err(ApiError::not_found()),
    }
}

/// The rows a request keeps: the 全体 rows and the chosen groups, or the chosen operators.
fn keep(req: &Request, row: &[String]) -> bool {
    if req.only.is_empty() {
        return true;
    }
    match req.kind {
        ReportKind::Queue => {
            row.get(2).is_some_and(|c| c == "summary") || row.get(1).is_some_and(|g| req.only.contains(g))
        }
        ReportKind::Agent => row.get(2).is_some_and(|e| req.only.contains(e)),
    }
}

/// Validates, then runs one pass per period off the async workers.
async fn run(
    st: &State,
    a: &Authed,
    reports: Option<Extension<Arc<Reports>>>,
    kind: &str,
    q: &BTreeMap<String, String>,
) -> Result<(Request, Vec<Report>, u64), ApiError> {
    a.require(Permission::ReportsView)?;
    let kind = parse_kind(kind)?;
    let Some(Extension(reports)) = reports else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "reports_off"));
    };
    let setup = report_setup(st).await?;
    let req = check(kind, q, &setup.queues)?;
    let _slot = reports.slots.acquire().await.map_err(|_| ApiError::internal())?;
    let (store, job) = (reports.store.clone(), req.clone());
    let passes = tokio::task::spawn_blocking(move || {
        let names: BTreeMap<String, String> = setup.names.into_iter().collect();
        let cfg = ReportConfig { offset: setup.offset, ..ReportConfig::default() };
        let mut out = Vec::new();
        let mut corrupt = 0;
        for query in &job.queries {
            let (mut report, bad) = store.queue_report(*query, cfg, &|id| names.get(id).cloned())?;
            report.rows.retain(|r| keep(&job, r));
            corrupt += bad;
            out.push(report);
        }
        Ok::<_, crate::store::StoreError>((out, corrupt))
    })
    .await;
    match passes {
        Ok(Ok((out, corrupt))) => Ok((req, out, corrupt)),
        Ok(Err(e)) => {
            log::error!("web: report failed: {e}");
            Err(ApiError::internal())
        }
        Err(e) => {
            log::error!("web: report task failed: {e}");
            Err(ApiError::internal())
        }
    }
}

async fn report_setup(st: &State) -> Result<ReportSetup, ApiError> {
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine_busy");
    let (reply, rx) = oneshot::channel();
    st.engine.send(WebQuery::ReportSetup(reply)).await.map_err(|_| busy())?;
    tokio::time::timeout(ENGINE_QUERY_TIMEOUT, rx).await.map_err(|_| busy())?.map_err(|_| busy())
}

async fn report_json(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    reports: Option<Extension<Arc<Reports>>>,
    Path(kind): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let (_, out, corrupt) = run(&st, &a, reports, &kind, &q).await?;
    let header = out.first().map(|r| r.header.clone()).unwrap_or_default();
    let periods: Vec<serde_json::Value> = out
        .iter()
        .map(|r| json!({ "header": r.header, "rows": r.rows, "events": r.events, "dropped": r.dropped, "cut_rows": r.cut_rows }))
        .collect();
    Ok(Json(json!({ "kind": kind, "header": header, "periods": periods, "corrupt": corrupt }))
        .into_response())
}

async fn report_csv(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    reports: Option<Extension<Arc<Reports>>>,
    Path(kind): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let (req, out, _) = run(&st, &a, reports, &kind, &q).await?;
    let Some(first) = out.first() else { return Err(ApiError::internal()) };
    // Comparison periods may add custom-state columns; the first period's header names them
    // all only when the sets agree, so each period keeps its own header row then.
    let same = out.iter().all(|r| r.header == first.header);
    let mut csv = String::new();
    for (i, r) in out.iter().enumerate() {
        let text = r.to_csv();
        let body = text.trim_start_matches('\u{feff}');
        if i == 0 {
            csv.push('\u{feff}');
            csv.push_str(body);
        } else if same {
            csv.push_str(body.split_once("\r\n").map_or("", |(_, rest)| rest));
        } else {
            csv.push_str(body);
        }
    }
    let detail = format!("{kind} {} period(s)", req.queries.len());
    st.record(a.audit("report.download", &kind, detail)).await;
    let file = format!("attachment; filename=\"hakoden-{kind}-report.csv\"");
    let mut resp = csv.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&file) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn fields(e: ApiError) -> Vec<String> {
        e.body["errors"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn a_report_takes_a_unit_and_up_to_five_periods() {
        let queues = vec!["support".to_string()];
        let ok = check(
            ReportKind::Queue,
            &q(&[("unit", "day"), ("periods", "2026-11-01..2026-11-22,2026-10-01")]),
            &queues,
        )
        .unwrap();
        assert_eq!(ok.queries.len(), 2);
        let six = "2026-11-01,2026-11-02,2026-11-03,2026-11-04,2026-11-05,2026-11-06";
        let e = check(ReportKind::Queue, &q(&[("unit", "day"), ("periods", six)]), &queues).unwrap_err();
        assert_eq!(fields(e), ["periods"]);
        let e = check(ReportKind::Queue, &q(&[("unit", "week"), ("periods", "")]), &queues).unwrap_err();
        assert_eq!(fields(e), ["periods", "unit"]);
        let e =
            check(ReportKind::Queue, &q(&[("unit", "hour"), ("periods", "2026-01-01..2026-03-01")]), &queues)
                .unwrap_err();
        assert_eq!(fields(e), ["periods"]);
    }

    #[test]
    fn groups_and_operators_are_bounded_and_checked() {
        let queues: Vec<String> = (0..11).map(|n| format!("q{n}")).collect();
        let eleven = queues.join(",");
        let base = [("unit", "month"), ("periods", "2026-11-01")];
        let with = |k: &'static str, v: &'static str| {
            let mut m = q(&base);
            m.insert(k.into(), v.into());
            m
        };
        let e = check(ReportKind::Queue, &with("groups", Box::leak(eleven.into_boxed_str())), &queues)
            .unwrap_err();
        assert_eq!(fields(e), ["groups"]);
        assert_eq!(
            fields(check(ReportKind::Queue, &with("groups", "nope"), &queues).unwrap_err()),
            ["groups"]
        );
        assert_eq!(
            fields(check(ReportKind::Queue, &with("agents", "201"), &queues).unwrap_err()),
            ["agents"]
        );
        let many: Vec<String> = (200..251).map(|n| n.to_string()).collect();
        let many = Box::leak(many.join(",").into_boxed_str());
        assert_eq!(fields(check(ReportKind::Agent, &with("agents", many), &queues).unwrap_err()), ["agents"]);
        assert!(check(ReportKind::Agent, &with("agents", "201,202"), &queues).is_ok());
        assert_eq!(fields(check(ReportKind::Agent, &with("colour", "x"), &queues).unwrap_err()), ["query"]);
    }

    #[test]
    fn a_group_report_keeps_the_overall_rows_and_the_chosen_groups() {
        let req = Request { kind: ReportKind::Queue, queries: vec![], only: vec!["sales".into()] };
        let row = |g: &str, n: &str| vec!["2026/11/1".to_string(), g.to_string(), n.to_string()];
        assert!(keep(&req, &row("全体", "summary")));
        assert!(keep(&req, &row("sales", "")));
        assert!(!keep(&req, &row("support", "")));
    }
}
