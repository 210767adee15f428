//! The phonebook part of `/api/v1/` (電話帳, issue 7): list and search, create, update,
//! delete, CSV import and export.
//!
//! Who sees what (`docs/web.md`): `phonebook_view` reads the shared book and keeps the user's
//! own personal entries (seed 004 §2.17: 個別電話帳, not shared, up to
//! [`MAX_PERSONAL_ENTRIES`]); `phonebook_edit` changes the shared book. Another user's personal
//! entry answers 404, as if it did not exist, so ids do not leak who has what.
//!
//! The book lives in RAM ([`Book`]) with the durable copy in `store::phonebook`; writers hold
//! the lock across the store write so RAM and flash never disagree. After every change the
//! caller-name index is rebuilt and sent to the engine ([`WebQuery::CallerNames`]), still
//! under the lock so two changes cannot reach the engine out of order.

use super::api::{ApiError, ApiResult, Authed, State, ENGINE_QUERY_TIMEOUT};
use super::auth::Permission;
use super::WebQuery;
use crate::apps::numbers::CsvEncoding;
use crate::apps::phonebook::{
    self, CallerIndex, ChosenEncoding, Entry, EntryFields, ExportEncoding, FieldError, Number, Search,
    MAX_IMPORT_BYTES, MAX_PERSONAL_ENTRIES, MAX_SHARED_ENTRIES,
};
use crate::store::phonebook::PhonebookStore;
use crate::store::{Store, StoreError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Entries one list answer holds at most: a page the browser renders at once; more is paged.
pub const MAX_PAGE: usize = 500;

/// Entries a list answer holds when the client does not say.
const DEFAULT_PAGE: usize = 100;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/phonebook", get(list).post(create)),
        (
            "/api/v1/phonebook/import",
            // The CSV upload's own limit replaces the global 64 KiB one.
            post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        ),
        ("/api/v1/phonebook/export", get(export)),
        ("/api/v1/phonebook/{id}", get(read).put(update).delete(remove)),
    ]
}

/// The phonebook as the running box sees it.
pub(super) struct Book {
    store: PhonebookStore,
    inner: tokio::sync::Mutex<Entries>,
}

struct Entries {
    by_id: BTreeMap<u64, Entry>,
    next_id: u64,
}

impl Entries {
    fn count(&self, owner: Option<&str>) -> usize {
        self.by_id.values().filter(|e| e.owner.as_deref() == owner).count()
    }
}

impl Book {
    /// Opens the keyspace and reads every entry (at start, before serving).
    pub(super) fn open(store: &Store) -> Result<Book, StoreError> {
        let store = PhonebookStore::open(store)?;
        let by_id = store.entries()?.into_iter().map(|e| (e.id, e)).collect();
        let next_id = store.next_id()?;
        Ok(Book { store, inner: tokio::sync::Mutex::new(Entries { by_id, next_id }) })
    }

    /// The caller-name index of the whole book; `extensions` maps web users to extensions.
    pub(super) async fn caller_index(&self, extensions: &HashMap<String, String>) -> CallerIndex {
        let inner = self.inner.lock().await;
        CallerIndex::build(inner.by_id.values(), |owner| extensions.get(owner).cloned())
    }
}

/// Which book a request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Scope {
    Shared,
    Personal,
}

fn scope_key(owner: Option<&str>) -> &'static str {
    if owner.is_some() {
        "personal"
    } else {
        "shared"
    }
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "id": e.id,
        "scope": scope_key(e.owner.as_deref()),
        "name": e.fields.name,
        "kana": e.fields.kana,
        "company": e.fields.company,
        "note": e.fields.note,
        "numbers": e.fields.numbers,
    })
}

fn field_errors(errors: &[FieldError]) -> ApiError {
    let map: BTreeMap<&str, &str> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
    ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, body: json!({ "errors": map }) }
}

fn one_field(field: &str, message: &str) -> ApiError {
    ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, body: json!({ "errors": { field: message } }) }
}

fn full(limit: usize) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        body: json!({ "error": "phonebook_full", "message": format!("the phonebook holds at most {limit} entries") }),
    }
}

/// The owner a scope means for this user, after the permission check.
fn owner_for(a: &Authed, scope: Scope, write: bool) -> Result<Option<String>, ApiError> {
    a.require(Permission::PhonebookView).or_else(|_| a.require(Permission::PhonebookEdit))?;
    match scope {
        Scope::Personal => Ok(Some(a.user.id.clone())),
        Scope::Shared if write => a.require(Permission::PhonebookEdit).map(|()| None),
        Scope::Shared => Ok(None),
    }
}

/// Whether `a` may read (and, with `write`, change) entry `e`.
fn may_touch(a: &Authed, e: &Entry, write: bool) -> Result<(), ApiError> {
    match &e.owner {
        // Someone else's personal entry does not exist for this user.
        Some(owner) if *owner != a.user.id => Err(ApiError::not_found()),
        Some(_) => owner_for(a, Scope::Personal, write).map(drop),
        None => owner_for(a, Scope::Shared, write).map(drop),
    }
}

/// Rebuilds the caller-name index and hands it to the engine. Called with the book locked.
async fn publish(st: &State, inner: &Entries) {
    let extensions = st.user_extensions().await;
    let index = CallerIndex::build(inner.by_id.values(), |owner| extensions.get(owner).cloned());
    let send = st.engine.send(WebQuery::CallerNames(Box::new(index)));
    match tokio::time::timeout(ENGINE_QUERY_TIMEOUT, send).await {
        Ok(Ok(())) => {}
        _ => log::warn!("web: phonebook changed but the engine did not take the new caller names"),
    }
}

/// Stores `put` and `delete` off the async workers, then applies them to RAM.
async fn commit(st: &State, inner: &mut Entries, put: Vec<Entry>, delete: Vec<u64>) -> Result<(), ApiError> {
    let store = st.phonebook.store.clone();
    let (put, delete) =
        tokio::task::spawn_blocking(move || store.write(&put, &delete).map(|()| (put, delete)))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|e| {
                log::error!("web: phonebook write failed: {e}");
                ApiError::internal()
            })?;
    for id in delete {
        inner.by_id.remove(&id);
    }
    for e in put {
        inner.next_id = inner.next_id.max(e.id.saturating_add(1));
        inner.by_id.insert(e.id, e);
    }
    publish(st, inner).await;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    q: Option<String>,
    scope: Option<Scope>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn list(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let Ok(Query(q)) = q else {
        return Err(one_field("query", "q, scope (shared|personal), offset, limit"));
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(one_field("limit", &format!("a count from 1 to {MAX_PAGE}")));
    }
    let search = Search::new(q.q.as_deref().unwrap_or_default());
    let inner = st.phonebook.inner.lock().await;
    let visible = inner.by_id.values().filter(|e| match (&e.owner, q.scope) {
        (Some(o), Some(Scope::Personal) | None) => *o == a.user.id,
        (None, Some(Scope::Shared) | None) => true,
        _ => false,
    });
    let mut total = 0usize;
    let mut page = Vec::new();
    let offset = q.offset.unwrap_or(0);
    for e in visible.filter(|e| search.matches(&e.fields)) {
        if total >= offset && page.len() < limit {
            page.push(entry_json(e));
        }
        total += 1;
    }
    let may_edit_shared = a.permissions.contains(&Permission::PhonebookEdit);
    Ok(Json(json!({ "entries": page, "total": total, "may_edit_shared": may_edit_shared })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    scope: Option<Scope>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kana: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    numbers: Vec<Number>,
}

impl EntryBody {
    fn fields(self) -> EntryFields {
        EntryFields {
            name: self.name,
            kana: self.kana,
            company: self.company,
            note: self.note,
            numbers: self.numbers,
        }
    }
}

async fn create(AxState(st): AxState<Arc<State>>, a: Authed, headers: HeaderMap, body: Bytes) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let b: EntryBody = super::api::parse(&headers, &body)?;
    let owner = owner_for(&a, b.scope.unwrap_or(Scope::Shared), true)?;
    let fields = phonebook::validate(&b.fields()).map_err(|e| field_errors(&e))?;
    let mut inner = st.phonebook.inner.lock().await;
    let limit = if owner.is_some() { MAX_PERSONAL_ENTRIES } else { MAX_SHARED_ENTRIES };
    if inner.count(owner.as_deref()) >= limit {
        return Err(full(limit));
    }
    let entry = Entry { id: inner.next_id, owner, fields };
    let body = entry_json(&entry);
    let detail = format!("{} {}", scope_key(entry.owner.as_deref()), entry.fields.name);
    let id = entry.id;
    commit(&st, &mut inner, vec![entry], Vec::new()).await?;
    drop(inner);
    st.record(a.audit("phonebook.create", &id.to_string(), detail)).await;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| ApiError::not_found())
}

async fn read(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let id = parse_id(&id)?;
    let inner = st.phonebook.inner.lock().await;
    let e = inner.by_id.get(&id).ok_or_else(ApiError::not_found)?;
    may_touch(&a, e, false)?;
    Ok(Json(entry_json(e)).into_response())
}

async fn update(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let id = parse_id(&id)?;
    let b: EntryBody = super::api::parse(&headers, &body)?;
    let mut inner = st.phonebook.inner.lock().await;
    let old = inner.by_id.get(&id).ok_or_else(ApiError::not_found)?;
    may_touch(&a, old, true)?;
    if b.scope.is_some_and(|s| (s == Scope::Personal) != old.owner.is_some()) {
        return Err(one_field("scope", "an entry cannot move between the shared and the personal book"));
    }
    let fields = phonebook::validate(&b.fields()).map_err(|e| field_errors(&e))?;
    let entry = Entry { id, owner: old.owner.clone(), fields };
    let body = entry_json(&entry);
    let detail = entry.fields.name.clone();
    commit(&st, &mut inner, vec![entry], Vec::new()).await?;
    drop(inner);
    st.record(a.audit("phonebook.update", &id.to_string(), detail)).await;
    Ok(Json(body).into_response())
}

async fn remove(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let id = parse_id(&id)?;
    let mut inner = st.phonebook.inner.lock().await;
    let old = inner.by_id.get(&id).ok_or_else(ApiError::not_found)?;
    may_touch(&a, old, true)?;
    let detail = old.fields.name.clone();
    commit(&st, &mut inner, Vec::new(), vec![id]).await?;
    drop(inner);
    st.record(a.audit("phonebook.delete", &id.to_string(), detail)).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    scope: Option<Scope>,
    encoding: Option<String>,
}

fn encoding_key(e: CsvEncoding) -> &'static str {
    match e {
        CsvEncoding::Utf8 => "utf-8",
        CsvEncoding::Utf8Bom => "utf-8-bom",
        CsvEncoding::Utf16 => "utf-16",
        CsvEncoding::ShiftJis => "shift_jis",
    }
}

/// `POST /phonebook/import`: the body is the CSV file itself (`text/csv`), so a browser sends
/// the picked file as it is. Valid rows are added, bad ones reported `{row, field, message}`.
async fn import(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let Ok(Query(q)) = q else {
        return Err(one_field("query", "scope (shared|personal), encoding (auto|utf-8|shift_jis)"));
    };
    let owner = owner_for(&a, q.scope.unwrap_or(Scope::Shared), true)?;
    let chosen = match q.encoding.as_deref() {
        None | Some("auto") => ChosenEncoding::Detect,
        Some("utf-8") => ChosenEncoding::Utf8,
        Some("shift_jis") => ChosenEncoding::ShiftJis,
        Some(_) => return Err(one_field("encoding", "auto, utf-8 or shift_jis")),
    };
    require_csv(&headers)?;
    let parsed = tokio::task::spawn_blocking(move || phonebook::import_csv(&body, chosen))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| one_field("file", &e.to_string()))?;
    let mut errors: Vec<Value> = parsed
        .errors
        .iter()
        .map(|e| json!({ "row": e.row, "field": e.field, "message": e.message }))
        .collect();
    let mut inner = st.phonebook.inner.lock().await;
    let limit = if owner.is_some() { MAX_PERSONAL_ENTRIES } else { MAX_SHARED_ENTRIES };
    let room = limit.saturating_sub(inner.count(owner.as_deref()));
    let mut put = Vec::new();
    let mut next = inner.next_id;
    let mut refused_full = 0usize;
    for (row, fields) in parsed.entries {
        if put.len() >= room {
            refused_full += 1;
            if errors.len() < phonebook::MAX_REPORTED_ROW_ERRORS {
                errors.push(json!({ "row": row, "field": "", "message": format!("the phonebook is full ({limit} entries)") }));
            }
            continue;
        }
        put.push(Entry { id: next, owner: owner.clone(), fields });
        next = next.saturating_add(1);
    }
    let imported = put.len();
    if imported > 0 {
        commit(&st, &mut inner, put, Vec::new()).await?;
    }
    drop(inner);
    let detail = format!(
        "{}: {imported} imported, {} rows refused",
        scope_key(owner.as_deref()),
        parsed.errors.len() + parsed.errors_omitted + refused_full
    );
    st.record(a.audit("phonebook.import", "", detail)).await;
    Ok(Json(json!({
        "imported": imported,
        "encoding": encoding_key(parsed.encoding),
        "errors": errors,
        "errors_omitted": parsed.errors_omitted,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    scope: Option<Scope>,
    encoding: Option<String>,
}

async fn export(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    owner_for(&a, Scope::Shared, false)?;
    let Ok(Query(q)) = q else {
        return Err(one_field("query", "scope (shared|personal), encoding (utf-8|shift_jis)"));
    };
    let owner = owner_for(&a, q.scope.unwrap_or(Scope::Shared), false)?;
    let (encoding, charset) = match q.encoding.as_deref() {
        None | Some("utf-8") => (ExportEncoding::Utf8Bom, "utf-8"),
        Some("shift_jis") => (ExportEncoding::ShiftJis, "shift_jis"),
        Some(_) => return Err(one_field("encoding", "utf-8 or shift_jis")),
    };
    let bytes = {
        let inner = st.phonebook.inner.lock().await;
        let chosen = inner.by_id.values().filter(|e| e.owner == owner).map(|e| &e.fields);
        phonebook::export_csv(chosen, encoding)
    };
    let name = format!("phonebook-{}.csv", scope_key(owner.as_deref()));
    Ok((
        [
            (header::CONTENT_TYPE, format!("text/csv; charset={charset}")),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response())
}

/// A CSV upload must say it is one: `text/csv`, or what spreadsheet programs and browsers send
/// for a `.csv` file (`text/plain`, `application/octet-stream`, `application/vnd.ms-excel`).
pub(super) fn require_csv(headers: &HeaderMap) -> Result<(), ApiError> {
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            ["text/csv", "text/plain", "application/octet-stream", "application/vnd.ms-excel"]
                .contains(&v.as_str())
        });
    if csv {
        return Ok(());
    }
    Err(ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        body: json!({ "error": "unsupported_media_type", "message": "send the CSV file as text/csv" }),
    })
}
