//! Outbound campaigns in the web admin (issue 9, seed 002 §2.7, §2.12, §2.17, §2.18): the
//! campaigns and their counts, the auto-dial list (add, CSV upload, results, recall, stop),
//! the statistics with CSV, and an agent's recall list with its manual dial.
//!
//! The campaigns themselves are `[[campaign]]` blocks of the configuration (edited with
//! `PUT /api/v1/config/campaign` like every section). The lists live in the campaign runner
//! on the engine's task: each handler sends one [`CampaignQuery`], answered there by
//! [`answer`].
//!
//! Who may (`docs/web.md`): `campaign_view` reads campaigns, lists and statistics, and lets
//! an agent enter results for the calls it talked on and use its own recall list;
//! `campaign_edit` adds entries, uploads lists, and enters any result.

use super::api::{parse, ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use super::callcenter::ask;
use super::WebQuery;
use crate::apps::campaign::dialer::{Entry, EntryId};
use crate::apps::campaign::pacing::DialMode;
use crate::apps::campaign::stats::{campaign_stats, GroupBy};
use crate::apps::timerules::{Date, UtcOffset};
use crate::campaigns::CampaignRunner;
use crate::engine::Engine;
use crate::store::campaign::{outcome_key, status_key};
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest list upload: 20,000 rows of number, name and assignee.
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024;
/// Row errors reported per upload; the rest are counted.
const MAX_ROW_ERRORS: usize = 100;
/// Longest recall the web books (the DTMF entry's limit too).
const MAX_RECALL_MINUTES: u64 = 365 * 24 * 60;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/campaigns", get(list)),
        ("/api/v1/campaigns/{name}/entries", get(entries).post(add_entry)),
        ("/api/v1/campaigns/{name}/entries/csv", post(upload)),
        ("/api/v1/campaigns/{name}/entries/{id}/result", put(set_result)),
        ("/api/v1/campaigns/{name}/stats", get(stats)),
        ("/api/v1/recalls", get(recalls)),
        ("/api/v1/crm/customers/autodial", post(register_customers)),
        ("/api/v1/crm/customers/{id}/autodial", get(customer_autodial)),
        ("/api/v1/recalls/{name}/{id}/dial", post(dial)),
    ]
}

/// What the web asks the campaign runner.
#[derive(Debug)]
pub enum CampaignQuery {
    /// Every campaign.
    List,
    /// One campaign's list, with its settings.
    Entries(String),
    /// Add entries; each row's outcome.
    Add(String, Vec<NewEntry>),
    /// A custom result, a recall `minutes` from now, or stop; only on `agent`'s entries
    /// when set.
    Result {
        /// The campaign.
        name: String,
        /// The entry.
        entry: EntryId,
        /// What to record.
        change: ResultChange,
        /// Only if this agent talked on the entry last.
        agent: Option<String>,
    },
    /// `agent`'s recall list.
    Recalls(String),
    /// Every campaign's entries for a CRM customer.
    Customer(u64),
    /// The assignee dials an entry of its recall list.
    Dial {
        /// The campaign.
        name: String,
        /// The entry.
        entry: EntryId,
        /// The agent (the user's extension).
        agent: String,
    },
}

/// A customer to add to a list.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The number to dial.
    pub number: String,
    /// The customer's name.
    pub name: String,
    /// The agent who dials it by hand (its recall list).
    pub assignee: Option<String>,
    /// 予約: dial at this local date and minute of the day.
    pub schedule: Option<(Date, u16)>,
    /// The CRM customer (`#C<n>`) it was registered from.
    pub customer: Option<u64>,
}

/// `YYYY-MM-DD HH:MM` (or with a `T`), local time.
fn parse_schedule(s: &str) -> Option<(Date, u16)> {
    let (d, t) = s.trim().split_once([' ', 'T'])?;
    Some((Date::parse(d)?, crate::apps::campaign::settings::parse_hhmm(t)?))
}

/// A result change from the list page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultChange {
    /// One of the campaign's results.
    Custom(u16),
    /// Dial again this long from now.
    Recall(Duration),
    /// 停止.
    Stop,
}

/// The runner's answer: JSON for the page, or a status and message.
pub type CampaignAnswer = Result<Value, (StatusCode, String)>;

fn entry_json(e: &Entry) -> Value {
    json!({
        "id": e.id,
        "customer": e.customer,
        "name": e.name,
        "number": e.number,
        "result": outcome_key(e.result),
        "status": status_key(e.status),
        "calls": e.calls,
        "last_dialled_ms": e.last_dialled_ms,
        "schedule_ms": e.schedule_ms,
        "assignee": e.assignee,
        "agent": e.agent,
    })
}

fn settings_json(s: &crate::apps::campaign::settings::CampaignSettings) -> Value {
    let results: Vec<Value> =
        s.results.iter().map(|r| json!({ "number": r.number, "text": r.text })).collect();
    let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    json!({
        "id": format!("{:04}", s.id),
        "name": s.name,
        "enabled": s.enabled,
        "mode": match s.pacing.mode { DialMode::Preview => "preview", DialMode::Progressive => "progressive" },
        "predictive": s.pacing.predictive,
        "dial_ratio": s.pacing.dial_ratio,
        "max_channels": s.pacing.max_channels,
        "caller_id": s.caller_id,
        "window": [hhmm(s.window.0), hhmm(s.window.1)],
        "result_by_dtmf": s.result_by_dtmf,
        "results": results,
        "agents": s.agents,
    })
}

/// Answers one query on the engine's task (the daemon calls it).
pub fn answer(
    runner: &mut CampaignRunner,
    engine: &mut Engine,
    now: Instant,
    now_ms: u64,
    offset: UtcOffset,
    q: CampaignQuery,
) -> CampaignAnswer {
    let minute_of_day = crate::apps::timerules::LocalTime::from_unix_ms(now_ms, offset).minute_of_day;
    let not_found = |name: &str| (StatusCode::NOT_FOUND, format!("no campaign `{name}`"));
    match q {
        CampaignQuery::List => {
            let list: Vec<Value> = runner
                .views()
                .iter()
                .map(|v| {
                    let mut j = settings_json(&v.settings);
                    j["entries"] = json!(v.entries);
                    j["waiting"] = json!(v.waiting);
                    j["active"] = json!(v.active);
                    j
                })
                .collect();
            Ok(json!({ "campaigns": list }))
        }
        CampaignQuery::Entries(name) => {
            let settings = runner.settings(&name).ok_or_else(|| not_found(&name))?.clone();
            let entries = runner.entries(&name).unwrap_or_default();
            let list: Vec<Value> = entries.iter().map(entry_json).collect();
            Ok(
                json!({ "campaign": settings_json(&settings), "entries": list, "utc_offset_minutes": offset.minutes() }),
            )
        }
        CampaignQuery::Add(name, rows) => {
            runner.settings(&name).ok_or_else(|| not_found(&name))?;
            let outcomes: Vec<Value> = rows
                .into_iter()
                .map(|row| {
                    let schedule_ms = row
                        .schedule
                        .map(|(d, m)| d.unix_ms_at_midnight(offset).saturating_add(u64::from(m) * 60_000));
                    match runner.add_customer_entry(
                        &name,
                        &row.number,
                        &row.name,
                        row.customer,
                        schedule_ms,
                        row.assignee,
                    ) {
                        Ok(id) => json!({ "id": id }),
                        Err(e) => json!({ "error": e }),
                    }
                })
                .collect();
            Ok(json!({ "rows": outcomes }))
        }
        CampaignQuery::Result { name, entry, change, agent } => {
            let entries = runner.entries(&name).ok_or_else(|| not_found(&name))?;
            let e = entries
                .iter()
                .find(|e| e.id == entry)
                .ok_or((StatusCode::NOT_FOUND, "no such entry".into()))?;
            if let Some(agent) = agent {
                if e.agent.as_deref() != Some(agent.as_str()) && e.assignee.as_deref() != Some(agent.as_str())
                {
                    return Err((StatusCode::FORBIDDEN, "not an entry of your calls".into()));
                }
            }
            let done = match change {
                ResultChange::Custom(n) => runner.set_result(&name, entry, n),
                ResultChange::Recall(d) => runner.book_recall(&name, entry, now_ms, d),
                ResultChange::Stop => runner.stop(&name, entry),
            };
            done.map_err(|m| (StatusCode::CONFLICT, m))?;
            let e = runner.entries(&name).unwrap_or_default().into_iter().find(|e| e.id == entry);
            Ok(e.map(|e| entry_json(&e)).unwrap_or(Value::Null))
        }
        CampaignQuery::Customer(id) => {
            let list: Vec<Value> = runner
                .customer_entries(id)
                .iter()
                .map(|(c, e)| {
                    let mut j = entry_json(e);
                    j["campaign"] = json!(c);
                    j
                })
                .collect();
            Ok(json!({ "entries": list }))
        }
        CampaignQuery::Recalls(agent) => {
            let list: Vec<Value> = runner
                .recalls(&agent)
                .iter()
                .map(|(c, e)| {
                    let mut j = entry_json(e);
                    j["campaign"] = json!(c);
                    j
                })
                .collect();
            Ok(json!({ "entries": list }))
        }
        CampaignQuery::Dial { name, entry, agent } => {
            runner.settings(&name).ok_or_else(|| not_found(&name))?;
            runner
                .manual_dial(engine, now, now_ms, minute_of_day, &name, entry, &agent)
                .map_err(|m| (StatusCode::CONFLICT, m))?;
            Ok(json!({ "state": "ringing", "agent": agent }))
        }
    }
}

async fn run(st: &State, q: CampaignQuery) -> ApiResult {
    match ask(st, |reply| WebQuery::Campaign { query: q, reply }).await? {
        Ok(v) => Ok(Json(v).into_response()),
        Err(e) => Err(refused(e)),
    }
}

/// The runner's refusal as an API error: its status, `refused` and the reason in words.
fn refused((status, message): (StatusCode, String)) -> ApiError {
    ApiError { status, body: json!({ "error": "refused", "message": message }) }
}

fn field(name: &str, message: impl Into<String>) -> ApiError {
    ApiError::fields(BTreeMap::from([(name, message.into())]))
}

async fn list(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::CampaignView)?;
    run(&st, CampaignQuery::List).await
}

async fn entries(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    a.require(Permission::CampaignView)?;
    run(&st, CampaignQuery::Entries(name)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    #[serde(default)]
    number: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    assignee: Option<String>,
    /// 予約: `YYYY-MM-DD HH:MM`, the box's local time.
    #[serde(default)]
    schedule: Option<String>,
}

async fn add_entry(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::CampaignEdit)?;
    let b: EntryBody = parse(&headers, &body)?;
    if b.name.chars().count() > 64 {
        return Err(field("name", "at most 64 characters"));
    }
    let assignee = b.assignee.filter(|s| !s.is_empty());
    if let Some(x) = &assignee {
        super::api::check_extension(x).map_err(|e| field("assignee", format!("an extension: {e}")))?;
    }
    let schedule = match b.schedule.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => Some(parse_schedule(s).ok_or_else(|| field("schedule", "YYYY-MM-DD HH:MM (local time)"))?),
    };
    let row = NewEntry { number: b.number.clone(), name: b.name.clone(), assignee, schedule, customer: None };
    let resp =
        ask(&st, |reply| WebQuery::Campaign { query: CampaignQuery::Add(name.clone(), vec![row]), reply })
            .await?;
    let v = resp.map_err(refused)?;
    let row = &v["rows"][0];
    if let Some(e) = row["error"].as_str() {
        return Err(field("number", e));
    }
    st.record(a.audit("campaign.entry.add", &name, b.number.clone())).await;
    Ok((StatusCode::CREATED, Json(json!({ "id": row["id"] }))).into_response())
}

/// `POST .../entries/csv`: the CSV file itself (UTF-8 or Shift_JIS):
/// `number,name[,assignee[,schedule]]` per line (schedule `YYYY-MM-DD HH:MM`), an optional
/// header line (its first cell is not a number). Bad rows are skipped
/// and reported with their line.
async fn upload(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::CampaignEdit)?;
    super::phonebook::require_csv(&headers)?;
    if body.len() > MAX_UPLOAD_BYTES {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: json!({ "error": "too_large", "message": format!("at most {MAX_UPLOAD_BYTES} bytes") }),
        });
    }
    let (text, _) = crate::apps::numbers::decode_csv(&body);
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut errors: Vec<Value> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_matches(|c: char| c == '\r' || c == '\u{FEFF}').trim();
        if line.is_empty() {
            continue;
        }
        let cells = match crate::apps::numbers::split_csv_cells(line) {
            Ok(c) => c,
            Err(e) => {
                errors.push(json!({ "line": i + 1, "message": e }));
                continue;
            }
        };
        let number = cells.first().map(|c| c.trim().to_string()).unwrap_or_default();
        if i == 0 && !number.trim_start_matches('+').starts_with(|c: char| c.is_ascii_digit()) {
            continue; // the header line
        }
        let customer = cells.get(1).map(|c| c.trim().to_string()).unwrap_or_default();
        let assignee = cells.get(2).map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        if customer.chars().count() > 64 {
            errors.push(json!({ "line": i + 1, "message": "name: at most 64 characters" }));
            continue;
        }
        if let Some(x) = &assignee {
            if let Err(e) = super::api::check_extension(x) {
                errors.push(json!({ "line": i + 1, "message": format!("assignee: {e}") }));
                continue;
            }
        }
        let schedule = match cells.get(3).map(|c| c.trim()).filter(|c| !c.is_empty()) {
            None => None,
            Some(s) => match parse_schedule(s) {
                Some(x) => Some(x),
                None => {
                    errors.push(json!({ "line": i + 1, "message": "schedule: YYYY-MM-DD HH:MM" }));
                    continue;
                }
            },
        };
        rows.push(NewEntry { number, name: customer, assignee, schedule, customer: None });
        lines.push(i + 1);
    }
    let resp =
        ask(&st, |reply| WebQuery::Campaign { query: CampaignQuery::Add(name.clone(), rows), reply }).await?;
    let v = resp.map_err(refused)?;
    let mut added = 0usize;
    for (row, line) in v["rows"].as_array().cloned().unwrap_or_default().iter().zip(lines) {
        match row["error"].as_str() {
            Some(e) => errors.push(json!({ "line": line, "message": e })),
            None => added += 1,
        }
    }
    let omitted = errors.len().saturating_sub(MAX_ROW_ERRORS);
    errors.truncate(MAX_ROW_ERRORS);
    st.record(a.audit("campaign.entry.upload", &name, format!("{added} added"))).await;
    Ok(Json(json!({ "added": added, "errors": errors, "errors_omitted": omitted })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultBody {
    result: Option<i64>,
    recall_minutes: Option<i64>,
    #[serde(default)]
    stop: bool,
}

async fn set_result(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((name, id)): Path<(String, EntryId)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::CampaignView)?;
    let b: ResultBody = parse(&headers, &body)?;
    let change = match (b.result, b.recall_minutes, b.stop) {
        (Some(n), None, false) => match u16::try_from(n) {
            Ok(n) if (1..=99).contains(&n) => ResultChange::Custom(n),
            _ => return Err(field("result", "one of the campaign's result numbers (1-99)")),
        },
        (None, Some(m), false) => match u64::try_from(m) {
            Ok(m) if (1..=MAX_RECALL_MINUTES).contains(&m) => {
                ResultChange::Recall(Duration::from_secs(m * 60))
            }
            _ => return Err(field("recall_minutes", format!("1-{MAX_RECALL_MINUTES} minutes"))),
        },
        (None, None, true) => ResultChange::Stop,
        _ => return Err(field("result", "exactly one of result, recall_minutes or stop")),
    };
    let agent = if a.permissions.contains(&Permission::CampaignEdit) {
        None
    } else {
        Some(a.user.extension.clone().ok_or_else(ApiError::forbidden)?)
    };
    let r = run(&st, CampaignQuery::Result { name: name.clone(), entry: id, change, agent }).await?;
    st.record(a.audit("campaign.entry.result", &name, format!("entry {id}: {change:?}"))).await;
    Ok(r)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    unit: Option<String>,
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    percent: bool,
    #[serde(default)]
    csv: bool,
}

async fn stats(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    q: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::CampaignView)?;
    let Ok(Query(q)) = q else {
        return Err(field("query", "unit (date|hour|agent), from, to (YYYY-MM-DD), percent, csv"));
    };
    let group = match q.unit.as_deref().unwrap_or("date") {
        "date" => GroupBy::Date,
        "hour" => GroupBy::Hour,
        "agent" => GroupBy::Agent,
        _ => return Err(field("unit", "date, hour or agent")),
    };
    let day = |s: &Option<String>, f: &str| -> Result<Option<Date>, ApiError> {
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(v) => Date::parse(v).map(Some).ok_or_else(|| field(f, "a date YYYY-MM-DD")),
        }
    };
    let (from, to) = (day(&q.from, "from")?, day(&q.to, "to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(field("to", "on or after from"));
        }
    }
    let v = ask(&st, |reply| WebQuery::Campaign { query: CampaignQuery::Entries(name.clone()), reply })
        .await?
        .map_err(refused)?;
    let offset = v["utc_offset_minutes"]
        .as_i64()
        .and_then(|m| i32::try_from(m).ok())
        .and_then(UtcOffset::from_minutes)
        .unwrap_or(UtcOffset::JST);
    let day_ms = |d: Date| d.unix_ms_at_midnight(offset);
    let from_ms = from.map_or(0, day_ms);
    let to_ms = to.map_or(u64::MAX, |d| day_ms(d).saturating_add(86_400_000));
    let entries: Vec<Entry> = serde_json::from_value::<Vec<Value>>(v["entries"].clone())
        .unwrap_or_default()
        .iter()
        .filter_map(entry_of_json)
        .collect();
    let custom: Vec<crate::apps::campaign::results::CustomResult> = v["campaign"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            Some(crate::apps::campaign::results::CustomResult {
                number: u16::try_from(r["number"].as_u64()?).ok()?,
                text: r["text"].as_str()?.to_string(),
            })
        })
        .collect();
    let table = campaign_stats(&entries, &custom, group, from_ms, to_ms, offset);
    if q.csv {
        let csv = table.to_csv(q.percent);
        let disposition =
            format!("attachment; filename=\"campaign-{}.csv\"", name.replace(['"', '/', '\\'], "_"));
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            csv,
        )
            .into_response());
    }
    let columns: Vec<Value> =
        table.columns.iter().map(|(o, label)| json!({ "key": outcome_key(*o), "label": label })).collect();
    let rows: Vec<Value> = table
        .rows
        .iter()
        .map(|r| json!({ "key": r.key, "records": r.records, "calls": r.calls, "counts": r.counts }))
        .collect();
    Ok(Json(json!({ "columns": columns, "rows": rows })).into_response())
}

/// An entry back from its JSON (the statistics read the list through the runner's answer).
fn entry_of_json(v: &Value) -> Option<Entry> {
    let rec = crate::store::campaign::EntryRecord {
        campaign: String::new(),
        id: v["id"].as_u64()?,
        customer: v["customer"].as_u64(),
        name: v["name"].as_str()?.to_string(),
        number: v["number"].as_str()?.to_string(),
        result: v["result"].as_str()?.to_string(),
        status: v["status"].as_str()?.to_string(),
        calls: u32::try_from(v["calls"].as_u64()?).ok()?,
        last_dialled_ms: v["last_dialled_ms"].as_u64(),
        schedule_ms: v["schedule_ms"].as_u64(),
        assignee: v["assignee"].as_str().map(str::to_string),
        agent: v["agent"].as_str().map(str::to_string),
    };
    rec.entry()
}

async fn recalls(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::CampaignView)?;
    let Some(ext) = a.user.extension.clone() else {
        return Err(field("extension", "your user has no extension"));
    };
    run(&st, CampaignQuery::Recalls(ext)).await
}

async fn dial(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((name, id)): Path<(String, EntryId)>,
) -> ApiResult {
    a.require(Permission::CampaignView)?;
    let Some(agent) = a.user.extension.clone() else {
        return Err(field("extension", "your user has no extension"));
    };
    let r = run(&st, CampaignQuery::Dial { name: name.clone(), entry: id, agent }).await?;
    st.record(a.audit("campaign.entry.dial", &name, format!("entry {id}"))).await;
    Ok(r)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    #[serde(default)]
    campaign: String,
    #[serde(default)]
    ids: Vec<u64>,
}

/// The number a customer is dialled at: its first phone with digits (separators dropped).
fn dial_number(phones: &[String]) -> Option<String> {
    phones.iter().find_map(|p| {
        let n: String = p.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        (n.trim_start_matches('+').len() >= 2).then_some(n)
    })
}

/// §2.8 一括して自動発信に登録: the checked customers (their first phone) into a campaign's
/// list, each linked to its `#C<n>`. Needs `campaign_edit` and `crm_view`; customers the user
/// may not see are reported like unknown ones.
async fn register_customers(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::CampaignEdit)?;
    a.require(Permission::CrmView)?;
    let b: RegisterBody = parse(&headers, &body)?;
    if b.campaign.trim().is_empty() {
        return Err(field("campaign", "a campaign's name"));
    }
    if b.ids.is_empty() || b.ids.len() > 1000 {
        return Err(field("ids", "check 1 to 1000 customers"));
    }
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    let mut errors: Vec<Value> = Vec::new();
    {
        let crm = st.crm.inner.lock().await;
        for id in &b.ids {
            let Some(c) = crm.customer(*id).filter(|c| super::crm::visible(&crm, &a, c)) else {
                errors.push(json!({ "id": id, "message": "no such customer" }));
                continue;
            };
            let Some(number) = dial_number(&c.phones) else {
                errors.push(json!({ "id": id, "message": "the customer has no phone number" }));
                continue;
            };
            rows.push(NewEntry {
                number,
                name: c.name.clone(),
                assignee: None,
                schedule: None,
                customer: Some(*id),
            });
            ids.push(*id);
        }
    }
    let campaign = b.campaign.clone();
    let v = ask(&st, |reply| WebQuery::Campaign { query: CampaignQuery::Add(campaign, rows), reply })
        .await?
        .map_err(refused)?;
    let mut added = 0usize;
    for (row, id) in v["rows"].as_array().cloned().unwrap_or_default().iter().zip(ids) {
        match row["error"].as_str() {
            Some(e) => errors.push(json!({ "id": id, "message": e })),
            None => added += 1,
        }
    }
    st.record(a.audit("campaign.entry.register", &b.campaign, format!("{added} customers"))).await;
    Ok(Json(json!({ "added": added, "errors": errors })).into_response())
}

/// A customer's auto-dial entries in every campaign (the customer page's 自動発信 tab).
async fn customer_autodial(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<u64>) -> ApiResult {
    a.require(Permission::CampaignView)?;
    a.require(Permission::CrmView)?;
    {
        let crm = st.crm.inner.lock().await;
        crm.customer(id).filter(|c| super::crm::visible(&crm, &a, c)).ok_or_else(ApiError::not_found)?;
    }
    run(&st, CampaignQuery::Customer(id)).await
}
