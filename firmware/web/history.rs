//! The call history in `/api/v1/` (通話履歴, seed 004 §2.14, issue 7): search over the CDR
//! store with the screen's filters, sort, normal and detailed view, paging, and CSV export.
//!
//! Needs `history_view`. The filters, rows and CSV are `apps::history` (sans-IO); this file
//! reads the newest [`MAX_SCAN`] CDRs from the store off the async workers and parses the
//! query.

use super::api::{ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use crate::apps::history::{
    self, Filter, Kind, Match, Outcome, Row, SetFilter, SortKey, TextFilter, MAX_FILTER_CHARS, MAX_PAGE,
};
use crate::apps::timerules::UtcOffset;
use crate::engine::cdr::CdrRecord;
use axum::extract::{Query, State as AxState};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// CDRs one search reads, newest first: 20,000 is about six weeks of a busy 20-seat office
/// (~500 calls a day) and ~15 MB of JSON to parse; older calls need a narrower export later.
/// The answer says `truncated` when the store holds more.
pub const MAX_SCAN: usize = 20_000;

/// Searches run at once: each parses up to [`MAX_SCAN`] CDRs (tens of MB at peak); more wait.
static SEARCHES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Rows a page holds when the client does not say (seed 004: 「100 件表示」).
const DEFAULT_PAGE: usize = 100;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![("/api/v1/history", get(search)), ("/api/v1/history/export", get(export))]
}

/// The query string: each number field as `<field>=text`, `<field>_match=prefix|contains|
/// suffix|exact` (default contains), `<field>_not=true`; `kind`/`result` as comma lists with
/// `kind_not`/`result_not`; `talk_min`/`talk_max` seconds; `from`/`to` Unix ms; `sort`,
/// `order=asc|desc`; `view=normal|detailed`; `offset`, `limit`; `tz` minutes east of UTC
/// for the CSV's times (default JST).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    caller: Option<String>,
    caller_match: Option<Match>,
    caller_not: Option<bool>,
    external: Option<String>,
    external_match: Option<Match>,
    external_not: Option<bool>,
    called: Option<String>,
    called_match: Option<Match>,
    called_not: Option<bool>,
    destination: Option<String>,
    destination_match: Option<Match>,
    destination_not: Option<bool>,
    talk_min: Option<u64>,
    talk_max: Option<u64>,
    kind: Option<String>,
    kind_not: Option<bool>,
    result: Option<String>,
    result_not: Option<bool>,
    from: Option<u64>,
    to: Option<u64>,
    sort: Option<SortKey>,
    order: Option<String>,
    view: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
    tz: Option<i32>,
}

fn set<T: for<'de> Deserialize<'de>>(
    errors: &mut BTreeMap<&'static str, String>,
    name: &'static str,
    list: Option<&str>,
    not: Option<bool>,
    allowed: &str,
) -> Option<SetFilter<T>> {
    let list = list.filter(|l| !l.is_empty())?;
    let mut any = Vec::new();
    for item in list.split(',') {
        match serde_json::from_value(Value::String(item.trim().to_string())) {
            Ok(v) => any.push(v),
            Err(_) => {
                errors.insert(name, format!("a comma list of {allowed}"));
                return None;
            }
        }
    }
    Some(SetFilter { any, not: not.unwrap_or(false) })
}

/// A parsed query: what to keep, how to order it, which page, how to show it.
struct Search {
    filter: Filter,
    key: SortKey,
    newest_first: bool,
    detailed: bool,
    offset: usize,
    limit: usize,
    tz: UtcOffset,
}

/// The filter and the paging of a query, or the field errors.
fn parse(q: &HistoryQuery) -> Result<Search, ApiError> {
    let mut errors = BTreeMap::new();
    let mut text = |name: &'static str, t: &Option<String>, m: Option<Match>, not: Option<bool>| {
        let t = t.as_deref().map(str::trim).filter(|t| !t.is_empty())?;
        if t.chars().count() > MAX_FILTER_CHARS {
            errors.insert(name, format!("at most {MAX_FILTER_CHARS} characters"));
            return None;
        }
        Some(TextFilter {
            text: t.to_string(),
            mode: m.unwrap_or(Match::Contains),
            not: not.unwrap_or(false),
        })
    };
    let mut filter = Filter {
        caller: text("caller", &q.caller, q.caller_match, q.caller_not),
        external: text("external", &q.external, q.external_match, q.external_not),
        called: text("called", &q.called, q.called_match, q.called_not),
        destination: text("destination", &q.destination, q.destination_match, q.destination_not),
        talk_min_s: q.talk_min,
        talk_max_s: q.talk_max,
        from_ms: q.from,
        to_ms: q.to,
        ..Filter::default()
    };
    filter.kinds =
        set::<Kind>(&mut errors, "kind", q.kind.as_deref(), q.kind_not, "incoming, outgoing, internal");
    filter.results = set::<Outcome>(
        &mut errors,
        "result",
        q.result.as_deref(),
        q.result_not,
        "answered, no_answer, busy, cancelled, failed",
    );
    if let (Some(a), Some(b)) = (q.talk_min, q.talk_max) {
        if a > b {
            errors.insert("talk_max", "at least talk_min".into());
        }
    }
    if let (Some(a), Some(b)) = (q.from, q.to) {
        if a > b {
            errors.insert("to", "after from".into());
        }
    }
    let newest_first = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => {
            errors.insert("order", "asc or desc".into());
            true
        }
    };
    let detailed = match q.view.as_deref() {
        None | Some("normal") => false,
        Some("detailed") => true,
        Some(_) => {
            errors.insert("view", "normal or detailed".into());
            false
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        errors.insert("limit", format!("a count from 1 to {MAX_PAGE}"));
    }
    let offset = match q.tz {
        None => Some(UtcOffset::JST),
        Some(m) => UtcOffset::from_minutes(m),
    };
    let Some(offset) = offset else {
        errors.insert("tz", "minutes east of UTC, -720 to 840".into());
        return Err(ApiError::fields(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    Ok(Search {
        filter,
        key: q.sort.unwrap_or_default(),
        newest_first,
        detailed,
        offset: q.offset.unwrap_or(0),
        limit,
        tz: offset,
    })
}

/// Reads the newest CDRs, keeps the matching ones and sorts them. Returns the rows with
/// their CDRs (for the detailed view) and whether older CDRs were not read.
async fn matching(
    st: &State,
    filter: Filter,
    key: SortKey,
    newest_first: bool,
) -> Result<(Vec<(Row, CdrRecord)>, bool), ApiError> {
    let _slot = SEARCHES.acquire().await.map_err(|_| ApiError::internal())?;
    let store = st.store().clone();
    let read = move || -> Result<(Vec<(Row, CdrRecord)>, bool), crate::store::StoreError> {
        let cdrs = store.recent_cdrs(MAX_SCAN)?;
        let truncated = store.cdr_count()? > cdrs.len();
        let mut rows: Vec<(Row, CdrRecord)> =
            cdrs.into_iter().map(|c| (history::row(&c), c)).filter(|(r, _)| filter.keeps(r)).collect();
        let mut only: Vec<Row> = rows.iter().map(|(r, _)| r.clone()).collect();
        history::sort(&mut only, key, newest_first);
        let mut by_id: std::collections::HashMap<u64, CdrRecord> =
            rows.drain(..).map(|(r, c)| (r.call_id, c)).collect();
        let sorted = only.into_iter().filter_map(|r| by_id.remove(&r.call_id).map(|c| (r, c))).collect();
        Ok((sorted, truncated))
    };
    tokio::task::spawn_blocking(read).await.map_err(|_| ApiError::internal())?.map_err(|e| {
        log::error!("web: history read failed: {e}");
        ApiError::internal()
    })
}

fn detail(c: &CdrRecord) -> Value {
    json!({ "legs": c.legs, "rewires": c.rewires, "cause": c.cause, "final_status": c.final_status,
            "hangup_side": c.hangup_side, "trunk": c.trunk, "did": c.did })
}

async fn search(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::HistoryView)?;
    let Ok(Query(q)) = q else {
        return Err(ApiError::fields(BTreeMap::from([(
            "query",
            "unknown parameter or bad value".to_string(),
        )])));
    };
    let Search { filter, key, newest_first, detailed, offset, limit, .. } = parse(&q)?;
    let (rows, truncated) = matching(&st, filter, key, newest_first).await?;
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(r, c)| {
            let mut v = json!(r);
            if detailed {
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("detail".into(), detail(c));
                }
            }
            v
        })
        .collect();
    Ok(Json(json!({ "rows": page, "total": rows.len(), "truncated": truncated })).into_response())
}

async fn export(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::HistoryView)?;
    let Ok(Query(q)) = q else {
        return Err(ApiError::fields(BTreeMap::from([(
            "query",
            "unknown parameter or bad value".to_string(),
        )])));
    };
    let Search { filter, key, newest_first, tz, .. } = parse(&q)?;
    let (rows, _) = matching(&st, filter, key, newest_first).await?;
    let csv = history::export_csv(rows.iter().map(|(r, _)| r), tz);
    st.record(a.audit("history.export", "", format!("{} rows", rows.len()))).await;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"history.csv\"".to_string()),
        ],
        csv,
    )
        .into_response())
}
