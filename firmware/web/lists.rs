//! The block list (着信拒否) and the outbound-restriction list (発信規制) in `/api/v1/`
//! (issue 7): list, add, delete and CSV import, applied live as the console's `block import`
//! and `restrict import` are.
//!
//! The lists live in the engine; the handlers ask it through [`WebQuery::ListEntries`] and
//! [`WebQuery::ListChange`]. After a change the whole list is saved where the daemon reads it
//! at start (`<data>/lists/block.csv`, `restrict.csv`, the console's file), written to a
//! temporary file, synced and renamed, so a crash never leaves half a list. Both need
//! `settings_edit` (the lists are PBX settings).

use super::api::{ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use super::callcenter::ask;
use super::{ListChange, WebQuery};
use crate::apps::numbers::{self, ListEntry, Pattern, MAX_IMPORT_BYTES};
use crate::engine::ListKind;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// Entries one list answer holds at most: the lists hold up to 100,000, more than a page
/// should carry; the rest is paged or searched.
pub const MAX_PAGE: usize = 1_000;

/// Entries a list answer holds when the client does not say.
const DEFAULT_PAGE: usize = 200;

/// Serialises web list changes with their saves, so two changes cannot write the file out of
/// order.
static SAVING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/lists/{kind}", get(list).post(add)),
        (
            "/api/v1/lists/{kind}/import",
            // The CSV upload's own limit (the console's) replaces the global 64 KiB one.
            post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        ),
        ("/api/v1/lists/{kind}/{number}", delete(remove)),
    ]
}

fn kind_of(s: &str) -> Result<ListKind, ApiError> {
    match s {
        "block" => Ok(ListKind::Block),
        "restrict" => Ok(ListKind::Restrict),
        _ => Err(ApiError::not_found()),
    }
}

fn kind_key(k: ListKind) -> &'static str {
    match k {
        ListKind::Block => "block",
        ListKind::Restrict => "restrict",
    }
}

fn entry_json(e: &ListEntry) -> Value {
    json!({ "number": e.pattern.to_string(), "note": e.note, "caller_id": e.caller_id })
}

fn one_field(field: &str, message: &str) -> ApiError {
    ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, body: json!({ "errors": { field: message } }) }
}

/// Saves `entries` where the daemon reads the list at start. A failure is logged and told:
/// the change is live but lost at restart.
async fn save(st: &State, kind: ListKind, entries: Vec<ListEntry>) -> Result<(), ApiError> {
    let Some(dir) = st.data_dir.get().cloned() else { return Ok(()) };
    let path = crate::daemon::saved_list_path(&dir, kind);
    let write = move || -> std::io::Result<()> {
        use std::io::Write as _;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("csv.web-tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(numbers::export_csv(entries.iter()).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    match tokio::task::spawn_blocking(write).await {
        Ok(Ok(())) => Ok(()),
        failed => {
            log::error!("web: the {} list could not be saved: {failed:?}", kind_key(kind));
            Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({ "error": "not_saved", "message": "the change is live but is lost at restart" }),
            })
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    q: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn list(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(kind): Path<String>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let kind = kind_of(&kind)?;
    let Ok(Query(q)) = q else { return Err(one_field("query", "q, offset, limit")) };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(one_field("limit", &format!("a count from 1 to {MAX_PAGE}")));
    }
    let (entries, reject_anonymous) = ask(&st, |reply| WebQuery::ListEntries { kind, reply }).await?;
    let needle: String =
        q.q.unwrap_or_default().chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    let matching: Vec<&ListEntry> = entries
        .iter()
        .filter(|e| needle.is_empty() || e.pattern.to_string().contains(&needle) || e.note.contains(&needle))
        .collect();
    let page: Vec<Value> =
        matching.iter().skip(q.offset.unwrap_or(0)).take(limit).map(|e| entry_json(e)).collect();
    Ok(Json(json!({
        "entries": page,
        "total": matching.len(),
        "reject_anonymous": (kind == ListKind::Block).then_some(reject_anonymous),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    #[serde(default)]
    number: String,
    #[serde(default)]
    note: String,
    caller_id: Option<String>,
}

async fn change(st: &State, kind: ListKind, change: ListChange) -> Result<(bool, bool, usize), ApiError> {
    // Held from the engine change to the file's rename, so the file ends as the last change.
    let _order = SAVING.lock().await;
    let (outcome, entries) = ask(st, |reply| WebQuery::ListChange { kind, change, reply }).await?;
    let total = entries.len();
    let (changed, full) = match outcome {
        Ok(changed) => (changed, false),
        Err(_) => (true, true),
    };
    if changed {
        save(st, kind, entries).await?;
    }
    Ok((changed, full, total))
}

async fn add(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let kind = kind_of(&kind)?;
    let b: AddBody = super::api::parse(&headers, &body)?;
    if kind == ListKind::Block && b.caller_id.as_deref().is_some_and(|c| !c.trim().is_empty()) {
        return Err(one_field("caller_id", "only the restriction list is scoped by caller ID"));
    }
    let entry = ListEntry::parse(&b.number, b.caller_id.as_deref(), &b.note).map_err(|e| {
        let field = match e {
            numbers::EntryError::CallerId(_) => "caller_id",
            numbers::EntryError::NoteTooLong => "note",
            _ => "number",
        };
        one_field(field, &e.to_string())
    })?;
    let shown = entry_json(&entry);
    let (_, full, _) = change(&st, kind, ListChange::Add(vec![entry])).await?;
    if full {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            body: json!({ "error": "list_full", "message": format!("the list holds at most {} entries", numbers::MAX_LIST_ENTRIES) }),
        });
    }
    st.record(a.audit(&format!("{}.add", kind_key(kind)), &shown["number"].to_string(), String::new())).await;
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveQuery {
    caller_id: Option<String>,
}

async fn remove(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((kind, number)): Path<(String, String)>,
    q: Result<Query<RemoveQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let kind = kind_of(&kind)?;
    let Ok(Query(q)) = q else { return Err(one_field("query", "caller_id")) };
    let entry = ListEntry::parse(&number, q.caller_id.as_deref(), "").map_err(|_| ApiError::not_found())?;
    let removed = ListChange::Remove { pattern: entry.pattern.clone(), caller_id: entry.caller_id.clone() };
    let (changed, _, _) = change(&st, kind, removed).await?;
    if !changed {
        return Err(ApiError::not_found());
    }
    let target = Pattern::to_string(&entry.pattern);
    st.record(a.audit(&format!("{}.delete", kind_key(kind)), &target, String::new())).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /lists/{kind}/import`: the body is the CSV file itself (`text/csv`), in the console's
/// format; good rows are added live, bad ones reported by line.
async fn import(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let kind = kind_of(&kind)?;
    super::phonebook::require_csv(&headers)?;
    let parsed = tokio::task::spawn_blocking(move || numbers::import_csv(&body))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| one_field("file", &e.to_string()))?;
    let rows = parsed.entries.len();
    let errors: Vec<Value> =
        parsed.errors.iter().map(|e| json!({ "row": e.line, "field": "", "message": e.message })).collect();
    let (_, full, total) = if rows > 0 {
        change(&st, kind, ListChange::Add(parsed.entries)).await?
    } else {
        (false, false, ask(&st, |reply| WebQuery::ListEntries { kind, reply }).await?.0.len())
    };
    let detail = format!(
        "{rows} rows, {} refused{}",
        parsed.errors.len() + parsed.errors_omitted,
        if full { ", list full" } else { "" }
    );
    st.record(a.audit(&format!("{}.import", kind_key(kind)), "", detail)).await;
    Ok(Json(json!({
        "imported": rows,
        "total": total,
        "full": full,
        "encoding": format!("{:?}", parsed.encoding),
        "errors": errors,
        "errors_omitted": parsed.errors_omitted,
    }))
    .into_response())
}
