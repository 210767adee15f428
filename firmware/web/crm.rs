//! The CRM part of `/api/v1/` (issue 9; seed 002 §2.8, §2.15, §2.19, §2.22, §2.30-2.34):
//! customers `#C<n>`, cases `#T<n>`, FAQ, tags, business formats, custom fields, workflows and
//! steps, workflow statistics, the customer CSV upload and the CSV downloads.
//!
//! Who may do what (`docs/campaigns-crm.md`): `crm_view` reads everything; `crm_edit` changes
//! customers, cases and FAQ (agents have both); `crm_admin` changes the definitions (tags,
//! formats, fields, workflows, steps), uploads customers and reads workflow statistics
//! (supervisors and admins).
//!
//! The CRM lives in RAM ([`CrmArea`], loaded from `store::crm` at start) with the durable copy
//! in the store. Every change is applied to the sans-IO [`Crm`] (which checks it), then written
//! through [`CrmStore::write`] in one durable batch while the lock is held, and only then
//! acknowledged. When the write fails the RAM copy is reloaded from the store, so RAM never
//! holds what flash does not.

use super::api::{parse, ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use super::wall_ms;
use crate::apps::crm::export::{cases_csv, customers_csv, stats_csv, stats_rows};
use crate::apps::crm::model::{
    BusinessFormat, Case, Category, CustomField, Customer, Faq, FormatField, Stamp, StepButton, Tag,
    Workflow, WorkflowStep,
};
use crate::apps::crm::upload::{self, ColumnTarget, UploadError, UploadOptions, MAX_UPLOAD_BYTES};
use crate::apps::crm::{fields::FieldKind, CaseQuery, Crm, CustomerQuery, FieldError, Record, MAX_RESULTS};
use crate::apps::timerules::UtcOffset;
use crate::store::crm::CrmStore;
use crate::store::{Store, StoreError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rows a list answer holds when the client does not say (the manual's lists show 25).
const DEFAULT_PAGE: usize = 25;

/// Calls the customer page's call history shows at most (newest first).
pub const MAX_CUSTOMER_CALLS: usize = 100;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/crm/customers", get(list_customers).post(create_customer)),
        ("/api/v1/crm/customers/bulk", post(bulk_customers)),
        ("/api/v1/crm/customers/export", get(export_customers)),
        (
            "/api/v1/crm/customers/upload/preview",
            post(upload_preview).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        ),
        ("/api/v1/crm/customers/upload", post(upload_import).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES))),
        ("/api/v1/crm/customers/{id}", get(read_customer).put(update_customer).delete(delete_customer)),
        ("/api/v1/crm/customers/{id}/calls", get(customer_calls)),
        ("/api/v1/crm/cases", get(list_cases).post(create_case)),
        ("/api/v1/crm/cases/bulk", post(bulk_cases)),
        ("/api/v1/crm/cases/export", get(export_cases)),
        ("/api/v1/crm/cases/{id}", get(read_case).put(update_case).delete(delete_case)),
        ("/api/v1/crm/cases/{id}/step", post(press_step)),
        ("/api/v1/crm/faq", get(list_faq).post(create_faq)),
        ("/api/v1/crm/faq/{id}", get(read_faq).put(update_faq).delete(delete_faq)),
        ("/api/v1/crm/tags", get(list_tags)),
        ("/api/v1/crm/tags/{name}", put(put_tag).delete(delete_tag)),
        ("/api/v1/crm/formats", get(list_formats)),
        ("/api/v1/crm/formats/{name}", put(put_format).delete(delete_format)),
        ("/api/v1/crm/fields", get(list_fields)),
        ("/api/v1/crm/fields/{category}/{name}", put(put_field).delete(delete_field)),
        ("/api/v1/crm/steps", get(list_steps)),
        ("/api/v1/crm/steps/{name}", put(put_step).delete(delete_step)),
        ("/api/v1/crm/workflows", get(list_workflows)),
        ("/api/v1/crm/workflows/{name}", put(put_workflow).delete(delete_workflow)),
        ("/api/v1/crm/workflow-stats", get(workflow_stats)),
        ("/api/v1/crm/workflow-stats/csv", get(workflow_stats_csv)),
    ]
}

/// The CRM as the running box sees it.
pub(super) struct CrmArea {
    store: CrmStore,
    /// Shared so the CSV import can hold it on a blocking thread.
    pub(super) inner: Arc<tokio::sync::Mutex<Crm>>,
}

impl CrmArea {
    /// Opens the keyspace and reads the whole CRM (at start, before serving). Records that do
    /// not decode are logged by key and left out.
    pub(super) fn open(store: &Store) -> Result<CrmArea, StoreError> {
        let store = CrmStore::open(store)?;
        let (crm, bad) = store.load()?;
        for key in bad {
            log::error!("crm: stored record {key} does not decode; left out");
        }
        Ok(CrmArea { store, inner: Arc::new(tokio::sync::Mutex::new(crm)) })
    }
}

/// Writes `put` and `delete` durably; on failure reloads `crm` from the store (see the module
/// doc) and answers 500. The step times the change logged go in the same batch; the ones that
/// left the bounded log are deleted.
async fn commit(
    area: &CrmArea,
    crm: &mut Crm,
    mut put: Vec<Record>,
    mut delete: Vec<String>,
) -> Result<(), ApiError> {
    for t in crm.take_step_times() {
        if let Some(old) = t.seq.checked_sub(crate::apps::crm::MAX_STEP_LOG as u64) {
            delete.push(Record::step_time_key(old));
        }
        put.push(Record::StepTime(t));
    }
    if put.is_empty() && delete.is_empty() {
        return Ok(());
    }
    let store = area.store.clone();
    let next = crm.next_ids();
    let written = tokio::task::spawn_blocking(move || store.write(&put, &delete, next)).await;
    match written {
        Ok(Ok(())) => Ok(()),
        failed => {
            log::error!("crm: store write failed: {failed:?}");
            let store = area.store.clone();
            match tokio::task::spawn_blocking(move || store.load()).await {
                Ok(Ok((fresh, _))) => *crm = fresh,
                other => log::error!("crm: reload after a failed write failed too: {other:?}"),
            }
            Err(ApiError::internal())
        }
    }
}

fn stamp(a: &Authed) -> Stamp {
    Stamp { at_ms: wall_ms(), by: a.user.id.clone() }
}

/// 422 with each refused field; two messages for one field are joined.
fn field_errors(errors: &[FieldError]) -> ApiError {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for e in errors {
        map.entry(e.field.clone())
            .and_modify(|m| {
                m.push_str("; ");
                m.push_str(&e.message);
            })
            .or_insert_with(|| e.message.clone());
    }
    ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, body: json!({ "errors": map }) }
}

fn one_field(field: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        body: json!({ "errors": { field: message.into() } }),
    }
}

fn parse_id(id: &str) -> Result<u64, ApiError> {
    id.trim_start_matches(['#', 'C', 'T']).parse().map_err(|_| ApiError::not_found())
}

/// Whether `a` may see customer `c`: `crm_admin` sees every one; others only customers of
/// formats open to their extension (§2.23 CRM権限, [`Crm::may_use_format`]).
pub(super) fn visible(crm: &Crm, a: &Authed, c: &Customer) -> bool {
    a.permissions.contains(&Permission::CrmAdmin)
        || crm.may_use_format(c.format.as_deref(), a.user.extension.as_deref())
}

/// Refuses a format the user may not use (422 on `format`).
fn format_allowed(crm: &Crm, a: &Authed, format: Option<&str>) -> Result<(), ApiError> {
    let all = a.permissions.contains(&Permission::CrmAdmin);
    if all || crm.may_use_format(format, a.user.extension.as_deref()) {
        Ok(())
    } else {
        Err(one_field("format", "this business format is not open to your extension"))
    }
}

fn view(a: &Authed) -> Result<(), ApiError> {
    a.require(Permission::CrmView)
}

fn edit(a: &Authed) -> Result<(), ApiError> {
    a.require(Permission::CrmEdit)
}

fn admin(a: &Authed) -> Result<(), ApiError> {
    a.require(Permission::CrmAdmin)
}

type RawQuery = Result<Query<BTreeMap<String, String>>, axum::extract::rejection::QueryRejection>;

/// The query string as a map; refuses keys not in `known` (and not starting with a known
/// prefix ending in `.`).
fn query(q: RawQuery, known: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let Ok(Query(q)) = q else { return Err(one_field("query", "a malformed query string")) };
    for k in q.keys() {
        let ok = known.iter().any(|n| if n.ends_with('.') { k.starts_with(n) } else { k == n });
        if !ok {
            return Err(one_field(k, "unknown parameter"));
        }
    }
    Ok(q)
}

fn paging(q: &BTreeMap<String, String>) -> Result<(usize, usize), ApiError> {
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => v.parse().map_err(|_| one_field("offset", "a count"))?,
    };
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=MAX_RESULTS).contains(n))
            .ok_or_else(|| one_field("limit", format!("a count from 1 to {MAX_RESULTS}")))?,
    };
    Ok((offset, limit))
}

fn text(q: &BTreeMap<String, String>, k: &str) -> Option<String> {
    q.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn number(q: &BTreeMap<String, String>, k: &str) -> Result<Option<u64>, ApiError> {
    match text(q, k) {
        None => Ok(None),
        Some(v) => v.trim_start_matches(['#', 'C', 'T']).parse().map(Some).map_err(|_| one_field(k, "an id")),
    }
}

fn csv_response(name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}

// ----- customers -----

fn customer_json(c: &Customer) -> Value {
    let mut v = json!(c);
    if let Some(o) = v.as_object_mut() {
        o.insert("ref".into(), json!(format!("#C{}", c.id)));
    }
    v
}

const CUSTOMER_QUERY: [&str; 11] =
    ["id", "code", "name", "format", "phone", "tag", "note", "f.", "offset", "limit", "ids"];

fn customer_query(q: &BTreeMap<String, String>) -> Result<CustomerQuery, ApiError> {
    Ok(CustomerQuery {
        id: number(q, "id")?,
        code: text(q, "code"),
        name: text(q, "name"),
        format: text(q, "format"),
        phone: text(q, "phone"),
        tag: text(q, "tag"),
        note: text(q, "note"),
        fields: q
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("f.")?.to_string(), v.trim().to_string())))
            .filter(|(_, v)| !v.is_empty())
            .collect(),
    })
}

/// `ids=1,2,3`: the checked rows of a list (bulk edit, download), at most [`MAX_RESULTS`].
fn id_list(v: &str) -> Result<Vec<u64>, ApiError> {
    let ids: Result<Vec<u64>, _> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_start_matches(['#', 'C', 'T']).parse())
        .collect();
    let ids = ids.map_err(|_| one_field("ids", "a comma list of ids"))?;
    if ids.len() > MAX_RESULTS {
        return Err(one_field("ids", format!("at most {MAX_RESULTS} ids")));
    }
    Ok(ids)
}

async fn list_customers(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    view(&a)?;
    let q = query(q, &CUSTOMER_QUERY)?;
    let (offset, limit) = paging(&q)?;
    let search = customer_query(&q)?;
    let crm = st.crm.inner.lock().await;
    let found: Vec<&Customer> =
        crm.search_customers(&search).into_iter().filter(|c| visible(&crm, &a, c)).collect();
    let page: Vec<Value> = found.iter().skip(offset).take(limit).map(|c| customer_json(c)).collect();
    Ok(Json(json!({
        "customers": page,
        "total": found.len(),
        "capped": found.len() >= MAX_RESULTS,
        "may_edit": a.permissions.contains(&Permission::CrmEdit),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    phones: Vec<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    tags: Vec<String>,
}

impl CustomerBody {
    fn into_customer(self, id: u64) -> Customer {
        Customer {
            id,
            code: self.code,
            format: self.format.filter(|f| !f.trim().is_empty()),
            name: self.name,
            phones: self.phones,
            email: self.email,
            fields: self.fields,
            note: self.note,
            tags: self.tags,
            ..Customer::default()
        }
    }
}

async fn create_customer(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let b: CustomerBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    format_allowed(&crm, &a, b.format.as_deref())?;
    let id = crm.put_customer(b.into_customer(0), stamp(&a), false).map_err(|e| field_errors(&e))?;
    let c = crm.customer(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Customer(c.clone())], Vec::new()).await?;
    drop(crm);
    st.record(a.audit("crm.customer.create", &format!("#C{id}"), c.name.clone())).await;
    Ok((StatusCode::CREATED, Json(customer_json(&c))).into_response())
}

async fn read_customer(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    view(&a)?;
    let id = parse_id(&id)?;
    let crm = st.crm.inner.lock().await;
    let c = crm.customer(id).filter(|c| visible(&crm, &a, c)).ok_or_else(ApiError::not_found)?;
    let cases: Vec<Value> = crm.cases_of(id).into_iter().map(|k| case_json(&crm, k)).collect();
    let format = c.format.as_deref().and_then(|f| crm.format(f)).map(|f| json!(f));
    let mut v = customer_json(c);
    if let Some(o) = v.as_object_mut() {
        o.insert("cases".into(), json!(cases));
        o.insert("format_fields".into(), format.unwrap_or(Value::Null));
    }
    Ok(Json(v).into_response())
}

async fn update_customer(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let b: CustomerBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    if !crm.customer(id).is_some_and(|c| visible(&crm, &a, c)) {
        return Err(ApiError::not_found());
    }
    format_allowed(&crm, &a, b.format.as_deref())?;
    crm.put_customer(b.into_customer(id), stamp(&a), false).map_err(|e| field_errors(&e))?;
    let c = crm.customer(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Customer(c.clone())], Vec::new()).await?;
    drop(crm);
    st.record(a.audit("crm.customer.update", &format!("#C{id}"), c.name.clone())).await;
    Ok(Json(customer_json(&c)).into_response())
}

async fn delete_customer(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let mut crm = st.crm.inner.lock().await;
    let Some(c) = crm.customer(id).filter(|c| visible(&crm, &a, c)).cloned() else {
        return Err(ApiError::not_found());
    };
    let linked: Vec<u64> = crm.cases_of(id).iter().map(|k| k.id).collect();
    crm.delete_customer(id);
    // Its cases stay, unlinked: they are written back in the same batch.
    let unlinked: Vec<Record> =
        linked.iter().filter_map(|k| crm.case(*k).cloned()).map(Record::Case).collect();
    commit(&st.crm, &mut crm, unlinked, vec![Record::Customer(c.clone()).key()]).await?;
    drop(crm);
    st.record(a.audit("crm.customer.delete", &format!("#C{id}"), c.name)).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A bulk edit of checked customers (§2.8 一括編集): what to set on each. Unset parts are
/// left as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerBulk {
    ids: Vec<u64>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    add_tags: Vec<String>,
    #[serde(default)]
    remove_tags: Vec<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    note: Option<String>,
}

/// Each checked record that passes its checks is changed; the others are reported by id
/// with their field errors. All the changes are stored in one batch.
async fn bulk_customers(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let b: CustomerBulk = parse(&headers, &body)?;
    if b.ids.is_empty() || b.ids.len() > MAX_RESULTS {
        return Err(one_field("ids", format!("check 1 to {MAX_RESULTS} customers")));
    }
    let mut crm = st.crm.inner.lock().await;
    if let Some(f) = &b.format {
        format_allowed(&crm, &a, Some(f.as_str()).filter(|f| !f.trim().is_empty()))?;
    }
    let now = stamp(&a);
    let mut put = Vec::new();
    let mut errors = Vec::new();
    for id in &b.ids {
        let Some(mut c) = crm.customer(*id).filter(|c| visible(&crm, &a, c)).cloned() else {
            errors.push(json!({ "id": id, "errors": { "id": "no such customer" } }));
            continue;
        };
        if let Some(f) = &b.format {
            c.format = Some(f.clone()).filter(|f| !f.trim().is_empty());
        }
        c.tags.retain(|t| !b.remove_tags.contains(t));
        for t in &b.add_tags {
            if !c.tags.contains(t) {
                c.tags.push(t.clone());
            }
        }
        for (k, v) in &b.fields {
            c.fields.insert(k.clone(), v.clone());
        }
        if let Some(n) = &b.note {
            c.note = n.clone();
        }
        match crm.put_customer(c, now.clone(), true) {
            Ok(_) => put.extend(crm.customer(*id).cloned().map(Record::Customer)),
            Err(e) => {
                let map: BTreeMap<String, String> = e.into_iter().map(|e| (e.field, e.message)).collect();
                errors.push(json!({ "id": id, "errors": map }));
            }
        }
    }
    let updated = put.len();
    commit(&st.crm, &mut crm, put, Vec::new()).await?;
    drop(crm);
    st.record(a.audit("crm.customer.bulk", "", format!("{updated} updated, {} refused", errors.len()))).await;
    Ok(Json(json!({ "updated": updated, "errors": errors })).into_response())
}

async fn export_customers(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    view(&a)?;
    let q = query(q, &CUSTOMER_QUERY)?;
    let crm = st.crm.inner.lock().await;
    let chosen: Vec<&Customer> = match q.get("ids") {
        Some(ids) => id_list(ids)?.into_iter().filter_map(|id| crm.customer(id)).collect(),
        None => crm.search_customers(&customer_query(&q)?),
    };
    let chosen: Vec<&Customer> = chosen.into_iter().filter(|c| visible(&crm, &a, c)).collect();
    let bytes = customers_csv(&chosen, UtcOffset::JST);
    let n = chosen.len();
    drop(crm);
    st.record(a.audit("crm.customer.export", "", format!("{n} customers"))).await;
    Ok(csv_response("customers.csv", bytes))
}

/// The customer's calls: CDRs whose caller, outside number or called number is one of its
/// phone numbers, newest first, with their recordings (played through `/recordings`, which
/// checks its own permission).
async fn customer_calls(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    view(&a)?;
    let id = parse_id(&id)?;
    let keys: Vec<String> = {
        let crm = st.crm.inner.lock().await;
        let c = crm.customer(id).filter(|c| visible(&crm, &a, c)).ok_or_else(ApiError::not_found)?;
        c.phones.iter().map(|p| crate::apps::crm::fields::phone_key(p)).filter(|k| !k.is_empty()).collect()
    };
    if keys.is_empty() {
        return Ok(Json(json!({ "calls": [], "truncated": false })).into_response());
    }
    let store = st.store().clone();
    let read = move || -> Result<(Vec<Value>, bool), StoreError> {
        use crate::apps::crm::fields::phone_key;
        let cdrs = store.recent_cdrs(super::history::MAX_SCAN)?;
        let truncated = store.cdr_count()? > cdrs.len();
        let mut rows: Vec<_> = cdrs
            .iter()
            .map(crate::apps::history::row)
            .filter(|r| [&r.caller, &r.external, &r.called].iter().any(|n| keys.contains(&phone_key(n))))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.start_ms));
        rows.truncate(MAX_CUSTOMER_CALLS);
        let calls = rows
            .into_iter()
            .map(|r| {
                let urls: Vec<String> =
                    r.recordings.iter().map(|f| format!("/api/v1/recordings/{f}")).collect();
                let mut v = json!(r);
                if let Some(o) = v.as_object_mut() {
                    o.insert("recording_urls".into(), json!(urls));
                }
                v
            })
            .collect();
        Ok((calls, truncated))
    };
    let (calls, truncated) =
        tokio::task::spawn_blocking(read).await.map_err(|_| ApiError::internal())?.map_err(|e| {
            log::error!("crm: call history read failed: {e}");
            ApiError::internal()
        })?;
    Ok(Json(json!({ "calls": calls, "truncated": truncated })).into_response())
}

// ----- customer CSV upload (§2.22) -----

fn delimiter(q: &BTreeMap<String, String>) -> Result<char, ApiError> {
    match q.get("delimiter").map(String::as_str) {
        None | Some("comma") | Some(",") => Ok(','),
        Some("tab") | Some("\t") => Ok('\t'),
        Some("semicolon") | Some(";") => Ok(';'),
        Some("space") | Some(" ") => Ok(' '),
        Some("pipe") | Some("|") => Ok('|'),
        Some(_) => Err(one_field("delimiter", "comma, tab, semicolon, space or pipe")),
    }
}

fn flag(q: &BTreeMap<String, String>, k: &str) -> Result<bool, ApiError> {
    match q.get(k).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(one_field(k, "true or false")),
    }
}

fn upload_error(e: UploadError) -> ApiError {
    let field = match e {
        UploadError::BadMapping(_) | UploadError::TooManyColumns => "mapping",
        _ => "file",
    };
    one_field(field, e.to_string())
}

fn encoding_key(e: crate::apps::numbers::CsvEncoding) -> &'static str {
    use crate::apps::numbers::CsvEncoding as E;
    match e {
        E::Utf8 => "utf-8",
        E::Utf8Bom => "utf-8-bom",
        E::Utf16 => "utf-16",
        E::ShiftJis => "shift_jis",
    }
}

/// `POST /crm/customers/upload/preview?first_row_is_data=&delimiter=`: the body is the CSV
/// file. Answers the first rows and the targets the columns may be mapped to.
async fn upload_preview(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let q = query(q, &["first_row_is_data", "delimiter", "format"])?;
    let first = flag(&q, "first_row_is_data")?;
    let delim = delimiter(&q)?;
    super::phonebook::require_csv(&headers)?;
    let p = tokio::task::spawn_blocking(move || upload::preview(&body, first, delim))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(upload_error)?;
    let crm = st.crm.inner.lock().await;
    let mut targets = vec!["ignore", "name", "code", "phone", "email", "note"]
        .into_iter()
        .map(|t| json!({ "to": t }))
        .collect::<Vec<_>>();
    if let Some(f) = text(&q, "format").and_then(|f| crm.format(&f).cloned()) {
        targets.extend(f.fields.iter().map(|x| json!({ "to": "field", "field": x.name })));
    }
    targets.extend(
        crm.custom_fields()
            .iter()
            .filter(|c| c.category == Category::Customer)
            .map(|c| json!({ "to": "field", "field": c.name })),
    );
    Ok(Json(json!({
        "encoding": encoding_key(p.encoding),
        "columns": p.columns,
        "rows": p.rows,
        "targets": targets,
    }))
    .into_response())
}

/// `POST /crm/customers/upload?first_row_is_data=&delimiter=&allow_duplicate_phones=&tags=a,b
/// &format=&mapping=[...]`: the body is the CSV file; `mapping` is a JSON array with one
/// target per column (`{"to":"name"}`, `{"to":"field","field":"住所1"}`, `{"to":"ignore"}`).
async fn upload_import(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let q =
        query(q, &["first_row_is_data", "delimiter", "allow_duplicate_phones", "tags", "format", "mapping"])?;
    let mapping: Vec<ColumnTarget> = match q.get("mapping") {
        Some(m) => serde_json::from_str(m).map_err(|_| {
            one_field("mapping", "a JSON array of {\"to\":\"name|code|phone|email|note|ignore\"} or {\"to\":\"field\",\"field\":..}")
        })?,
        None => return Err(one_field("mapping", "required")),
    };
    let opts = UploadOptions {
        first_row_is_data: flag(&q, "first_row_is_data")?,
        delimiter: delimiter(&q)?,
        allow_duplicate_phones: flag(&q, "allow_duplicate_phones")?,
        tags: text(&q, "tags")
            .map(|t| t.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default(),
        format: text(&q, "format"),
        mapping,
    };
    super::phonebook::require_csv(&headers)?;
    // Import and store in one blocking job holding the lock: if the request is dropped (the
    // client leaves, the request timeout), the job still finishes, so RAM and the store agree.
    let mut crm = st.crm.inner.clone().lock_owned().await;
    // Options every row shares are checked once, not reported on every row.
    if let Some(t) = opts.tags.iter().find(|t| crm.tag(t).is_none()) {
        return Err(one_field("tags", format!("{t}: no such tag")));
    }
    if opts.format.as_deref().is_some_and(|f| crm.format(f).is_none()) {
        return Err(one_field("format", "no such business format"));
    }
    let now = stamp(&a);
    let store = st.crm.store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut stored = Vec::new();
        let report =
            upload::import(&mut crm, &body, &opts, &now, &mut |c| stored.push(Record::Customer(c.clone())))?;
        if stored.is_empty() {
            return Ok(Ok(report));
        }
        match store.write(&stored, &[], crm.next_ids()) {
            Ok(()) => Ok(Ok(report)),
            Err(e) => {
                log::error!("crm: upload not stored: {e}");
                match store.load() {
                    Ok((fresh, _)) => *crm = fresh,
                    Err(e) => log::error!("crm: reload after a failed write failed too: {e}"),
                }
                Ok(Err(ApiError::internal()))
            }
        }
    })
    .await
    .map_err(|_| ApiError::internal())?;
    let report = result.map_err(upload_error)??;
    let skipped: Vec<Value> = report
        .skipped
        .iter()
        .map(|r| {
            let map: BTreeMap<&str, &str> =
                r.errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
            json!({ "line": r.line, "errors": map })
        })
        .collect();
    let detail = format!(
        "{} imported, {} skipped",
        report.imported.len(),
        report.skipped.len() + report.skipped_omitted
    );
    st.record(a.audit("crm.customer.upload", "", detail)).await;
    Ok(Json(json!({
        "imported": report.imported.len(),
        "ids": report.imported.iter().take(MAX_RESULTS).collect::<Vec<_>>(),
        "skipped": skipped,
        "skipped_omitted": report.skipped_omitted,
    }))
    .into_response())
}

// ----- cases -----

fn case_json(crm: &Crm, k: &Case) -> Value {
    let mut v = json!(k);
    let buttons =
        k.step.as_ref().and_then(|(_, s)| crm.step(s)).map(|s| json!(s.buttons)).unwrap_or(json!([]));
    let customer_name = k.customer.and_then(|c| crm.customer(c)).map(|c| c.name.clone());
    if let Some(o) = v.as_object_mut() {
        o.insert("ref".into(), json!(format!("#T{}", k.id)));
        o.insert("customer_name".into(), json!(customer_name));
        o.insert("workflow".into(), json!(k.step.as_ref().map(|(w, _)| w)));
        o.insert("step_name".into(), json!(k.step.as_ref().map(|(_, s)| s)));
        o.insert("step_buttons".into(), buttons);
    }
    v
}

const CASE_QUERY: [&str; 11] =
    ["id", "title", "status", "customer", "owner", "tag", "workflow", "text", "offset", "limit", "ids"];

fn case_query(q: &BTreeMap<String, String>) -> Result<CaseQuery, ApiError> {
    Ok(CaseQuery {
        id: number(q, "id")?,
        title: text(q, "title"),
        status: text(q, "status"),
        customer: number(q, "customer")?,
        owner: text(q, "owner"),
        tag: text(q, "tag"),
        workflow: text(q, "workflow"),
        text: text(q, "text"),
    })
}

async fn list_cases(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    view(&a)?;
    let q = query(q, &CASE_QUERY)?;
    let (offset, limit) = paging(&q)?;
    let search = case_query(&q)?;
    let crm = st.crm.inner.lock().await;
    let found = crm.search_cases(&search);
    let page: Vec<Value> = found.iter().skip(offset).take(limit).map(|k| case_json(&crm, k)).collect();
    Ok(Json(json!({ "cases": page, "total": found.len(), "capped": found.len() >= MAX_RESULTS }))
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseBody {
    #[serde(default)]
    title: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    customer: Option<u64>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// The workflow: a new one starts at its first step; the same one keeps the step.
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    notes: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

impl CaseBody {
    fn into_case(self, id: u64, old_step: Option<&(String, String)>) -> Case {
        let step = match (self.workflow.filter(|w| !w.trim().is_empty()), old_step) {
            (Some(w), Some((ow, os))) if w == *ow => Some((w, os.clone())),
            (Some(w), _) => Some((w, String::new())),
            (None, _) => None,
        };
        Case {
            id,
            title: self.title,
            status: self.status,
            customer: self.customer,
            owner: self.owner.filter(|o| !o.trim().is_empty()),
            tags: self.tags,
            step,
            detail: self.detail,
            notes: self.notes,
            fields: self.fields,
            ..Case::default()
        }
    }
}

async fn create_case(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let b: CaseBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let id = crm.put_case(b.into_case(0, None), stamp(&a)).map_err(|e| field_errors(&e))?;
    let k = crm.case(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Case(k.clone())], Vec::new()).await?;
    let v = case_json(&crm, &k);
    drop(crm);
    st.record(a.audit("crm.case.create", &format!("#T{id}"), k.title)).await;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn read_case(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    view(&a)?;
    let id = parse_id(&id)?;
    let crm = st.crm.inner.lock().await;
    let k = crm.case(id).ok_or_else(ApiError::not_found)?;
    Ok(Json(case_json(&crm, k)).into_response())
}

async fn update_case(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let b: CaseBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let old_step = crm.case(id).ok_or_else(ApiError::not_found)?.step.clone();
    crm.put_case(b.into_case(id, old_step.as_ref()), stamp(&a)).map_err(|e| field_errors(&e))?;
    let k = crm.case(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Case(k.clone())], Vec::new()).await?;
    let v = case_json(&crm, &k);
    drop(crm);
    st.record(a.audit("crm.case.update", &format!("#T{id}"), k.title)).await;
    Ok(Json(v).into_response())
}

async fn delete_case(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let mut crm = st.crm.inner.lock().await;
    let k = crm.case(id).cloned().ok_or_else(ApiError::not_found)?;
    crm.delete_case(id);
    commit(&st.crm, &mut crm, Vec::new(), vec![Record::Case(k.clone()).key()]).await?;
    drop(crm);
    st.record(a.audit("crm.case.delete", &format!("#T{id}"), k.title)).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepBody {
    button: usize,
}

/// Presses a button of the case's current step (0-based): the case moves on.
async fn press_step(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let b: StepBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    if crm.case(id).is_none() {
        return Err(ApiError::not_found());
    }
    crm.press_step_button(id, b.button, stamp(&a)).map_err(|e| field_errors(&[e]))?;
    let k = crm.case(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Case(k.clone())], Vec::new()).await?;
    let v = case_json(&crm, &k);
    drop(crm);
    let to = k.step.as_ref().map(|(w, s)| format!("{w}-{s}")).unwrap_or_else(|| "end".into());
    st.record(a.audit("crm.case.step", &format!("#T{id}"), to)).await;
    Ok(Json(v).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseBulk {
    ids: Vec<u64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    add_tags: Vec<String>,
    #[serde(default)]
    remove_tags: Vec<String>,
}

async fn bulk_cases(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let b: CaseBulk = parse(&headers, &body)?;
    if b.ids.is_empty() || b.ids.len() > MAX_RESULTS {
        return Err(one_field("ids", format!("check 1 to {MAX_RESULTS} cases")));
    }
    let mut crm = st.crm.inner.lock().await;
    let now = stamp(&a);
    let (mut put, mut errors) = (Vec::new(), Vec::new());
    for id in &b.ids {
        let Some(mut k) = crm.case(*id).cloned() else {
            errors.push(json!({ "id": id, "errors": { "id": "no such case" } }));
            continue;
        };
        if let Some(s) = &b.status {
            k.status = s.clone();
        }
        if let Some(o) = &b.owner {
            k.owner = Some(o.clone()).filter(|o| !o.trim().is_empty());
        }
        k.tags.retain(|t| !b.remove_tags.contains(t));
        for t in &b.add_tags {
            if !k.tags.contains(t) {
                k.tags.push(t.clone());
            }
        }
        match crm.put_case(k, now.clone()) {
            Ok(_) => put.extend(crm.case(*id).cloned().map(Record::Case)),
            Err(e) => {
                let map: BTreeMap<String, String> = e.into_iter().map(|e| (e.field, e.message)).collect();
                errors.push(json!({ "id": id, "errors": map }));
            }
        }
    }
    let updated = put.len();
    commit(&st.crm, &mut crm, put, Vec::new()).await?;
    drop(crm);
    st.record(a.audit("crm.case.bulk", "", format!("{updated} updated, {} refused", errors.len()))).await;
    Ok(Json(json!({ "updated": updated, "errors": errors })).into_response())
}

async fn export_cases(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    view(&a)?;
    let q = query(q, &CASE_QUERY)?;
    let crm = st.crm.inner.lock().await;
    let chosen: Vec<&Case> = match q.get("ids") {
        Some(ids) => id_list(ids)?.into_iter().filter_map(|id| crm.case(id)).collect(),
        None => crm.search_cases(&case_query(&q)?),
    };
    let bytes = cases_csv(&chosen, UtcOffset::JST);
    let n = chosen.len();
    drop(crm);
    st.record(a.audit("crm.case.export", "", format!("{n} cases"))).await;
    Ok(csv_response("cases.csv", bytes))
}

// ----- FAQ -----

async fn list_faq(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    view(&a)?;
    let q = query(q, &["q"])?;
    let word = text(&q, "q").unwrap_or_default();
    let crm = st.crm.inner.lock().await;
    let found: Vec<Value> = crm.search_faq(&word).into_iter().map(|f| json!(f)).collect();
    Ok(Json(json!({ "faq": found })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqBody {
    #[serde(default)]
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    detail: String,
}

impl FaqBody {
    fn into_faq(self, id: u64) -> Faq {
        Faq { id, title: self.title, tags: self.tags, detail: self.detail, ..Faq::default() }
    }
}

async fn create_faq(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let b: FaqBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let id = crm.put_faq(b.into_faq(0), stamp(&a)).map_err(|e| field_errors(&e))?;
    let f = crm.faq(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Faq(f.clone())], Vec::new()).await?;
    drop(crm);
    st.record(a.audit("crm.faq.create", &id.to_string(), f.title.clone())).await;
    Ok((StatusCode::CREATED, Json(json!(f))).into_response())
}

async fn read_faq(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    view(&a)?;
    let id = parse_id(&id)?;
    let crm = st.crm.inner.lock().await;
    let f = crm.faq(id).ok_or_else(ApiError::not_found)?;
    Ok(Json(json!(f)).into_response())
}

async fn update_faq(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let b: FaqBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    if crm.faq(id).is_none() {
        return Err(ApiError::not_found());
    }
    crm.put_faq(b.into_faq(id), stamp(&a)).map_err(|e| field_errors(&e))?;
    let f = crm.faq(id).cloned().ok_or_else(ApiError::internal)?;
    commit(&st.crm, &mut crm, vec![Record::Faq(f.clone())], Vec::new()).await?;
    drop(crm);
    st.record(a.audit("crm.faq.update", &id.to_string(), f.title.clone())).await;
    Ok(Json(json!(f)).into_response())
}

async fn delete_faq(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    edit(&a)?;
    let id = parse_id(&id)?;
    let mut crm = st.crm.inner.lock().await;
    let f = crm.faq(id).cloned().ok_or_else(ApiError::not_found)?;
    crm.delete_faq(id);
    commit(&st.crm, &mut crm, Vec::new(), vec![Record::Faq(f.clone()).key()]).await?;
    drop(crm);
    st.record(a.audit("crm.faq.delete", &id.to_string(), f.title)).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- definitions: tags, formats, custom fields, steps, workflows -----

async fn list_tags(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    view(&a)?;
    let q = query(q, &["q"])?;
    let word = text(&q, "q").unwrap_or_default();
    let crm = st.crm.inner.lock().await;
    let tags: Vec<&Tag> = crm.tags().filter(|t| t.name.contains(&word) || t.detail.contains(&word)).collect();
    Ok(Json(json!({ "tags": tags })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagBody {
    #[serde(default)]
    fg: String,
    #[serde(default)]
    bg: String,
    #[serde(default)]
    detail: String,
}

/// Stores a definition `record` after `check` accepted it into `crm`; audits `action`.
async fn put_definition(
    st: &State,
    a: &Authed,
    mut crm: tokio::sync::MutexGuard<'_, Crm>,
    created: bool,
    record: Record,
    action: &str,
    name: &str,
) -> ApiResult {
    let body = match &record {
        Record::Tag(t) => json!(t),
        Record::Format(f) => json!(f),
        Record::Field(f) => json!(f),
        Record::Step(s) => json!(s),
        Record::Workflow(w) => json!(w),
        _ => Value::Null,
    };
    commit(&st.crm, &mut crm, vec![record], Vec::new()).await?;
    drop(crm);
    let verb = if created { "create" } else { "update" };
    st.record(a.audit(&format!("crm.{action}.{verb}"), name, String::new())).await;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(body)).into_response())
}

async fn delete_definition(
    st: &State,
    a: &Authed,
    mut crm: tokio::sync::MutexGuard<'_, Crm>,
    key: String,
    action: &str,
    name: &str,
) -> ApiResult {
    commit(&st.crm, &mut crm, Vec::new(), vec![key]).await?;
    drop(crm);
    st.record(a.audit(&format!("crm.{action}.delete"), name, String::new())).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A definition delete: `Ok(true)` deleted, `Ok(false)` absent (404), `Err` in use (409).
fn deleted(r: Result<bool, FieldError>) -> Result<(), ApiError> {
    match r {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => {
            Err(ApiError { status: StatusCode::CONFLICT, body: json!({ "errors": { e.field: e.message } }) })
        }
    }
}

async fn put_tag(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let b: TagBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let created = crm.tag(name.trim()).is_none();
    crm.put_tag(Tag { name: name.clone(), fg: b.fg, bg: b.bg, detail: b.detail })
        .map_err(|e| field_errors(&e))?;
    let t = crm.tag(name.trim()).cloned().ok_or_else(ApiError::internal)?;
    put_definition(&st, &a, crm, created, Record::Tag(t), "tag", &name).await
}

async fn delete_tag(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    admin(&a)?;
    let mut crm = st.crm.inner.lock().await;
    let t = crm.tag(&name).cloned().ok_or_else(ApiError::not_found)?;
    deleted(crm.delete_tag(&name))?;
    delete_definition(&st, &a, crm, Record::Tag(t).key(), "tag", &name).await
}

async fn list_formats(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    view(&a)?;
    let crm = st.crm.inner.lock().await;
    let formats: Vec<&BusinessFormat> = crm.formats().collect();
    Ok(Json(json!({ "formats": formats })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatBody {
    #[serde(default)]
    fields: Vec<FormatField>,
    #[serde(default)]
    agents: Vec<String>,
}

/// The extensions of the running configuration (a format's agents must be among them).
async fn extensions(st: &State) -> Result<Vec<String>, ApiError> {
    let doc: crate::config::document::RunningDocument =
        super::callcenter::ask(st, super::WebQuery::ConfigDocument).await?;
    let config = crate::config::parse_str(&doc.text, "running").map_err(|e| {
        log::error!("crm: the running configuration does not parse: {e}");
        ApiError::internal()
    })?;
    Ok(config.extensions.into_iter().map(|e| e.number).collect())
}

async fn put_format(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let b: FormatBody = parse(&headers, &body)?;
    let exts = if b.agents.is_empty() { Vec::new() } else { extensions(&st).await? };
    let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
    let mut crm = st.crm.inner.lock().await;
    let created = crm.format(name.trim()).is_none();
    let f = BusinessFormat { name: name.clone(), fields: b.fields, agents: b.agents };
    crm.put_format(f, &exts).map_err(|e| field_errors(&e))?;
    let f = crm.format(name.trim()).cloned().ok_or_else(ApiError::internal)?;
    put_definition(&st, &a, crm, created, Record::Format(f), "format", &name).await
}

async fn delete_format(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    admin(&a)?;
    let mut crm = st.crm.inner.lock().await;
    let f = crm.format(&name).cloned().ok_or_else(ApiError::not_found)?;
    deleted(crm.delete_format(&name))?;
    delete_definition(&st, &a, crm, Record::Format(f).key(), "format", &name).await
}

async fn list_fields(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    view(&a)?;
    let crm = st.crm.inner.lock().await;
    Ok(Json(json!({ "fields": crm.custom_fields() })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldBody {
    kind: FieldKind,
    #[serde(default)]
    choices: Vec<String>,
}

fn category(s: &str) -> Result<Category, ApiError> {
    match s {
        "customer" => Ok(Category::Customer),
        "case" => Ok(Category::Case),
        _ => Err(ApiError::not_found()),
    }
}

async fn put_field(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((cat, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let cat = category(&cat)?;
    let b: FieldBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let find =
        |crm: &Crm| crm.custom_fields().iter().find(|f| f.category == cat && f.name == name.trim()).cloned();
    let created = find(&crm).is_none();
    crm.put_custom_field(CustomField { name: name.clone(), category: cat, kind: b.kind, choices: b.choices })
        .map_err(|e| field_errors(&e))?;
    let f = find(&crm).ok_or_else(ApiError::internal)?;
    put_definition(&st, &a, crm, created, Record::Field(f), "field", &name).await
}

async fn delete_field(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((cat, name)): Path<(String, String)>,
) -> ApiResult {
    admin(&a)?;
    let cat = category(&cat)?;
    let mut crm = st.crm.inner.lock().await;
    let f = crm.custom_fields().iter().find(|f| f.category == cat && f.name == name).cloned();
    let f = f.ok_or_else(ApiError::not_found)?;
    crm.delete_custom_field(cat, &name);
    delete_definition(&st, &a, crm, Record::Field(f).key(), "field", &name).await
}

async fn list_steps(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    view(&a)?;
    let crm = st.crm.inner.lock().await;
    let steps: Vec<&WorkflowStep> = crm.steps().collect();
    Ok(Json(json!({ "steps": steps })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDefBody {
    #[serde(default)]
    detail: String,
    #[serde(default)]
    audio: Option<String>,
    #[serde(default)]
    color: String,
    #[serde(default)]
    buttons: Vec<StepButton>,
}

async fn put_step(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let b: StepDefBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let created = crm.step(name.trim()).is_none();
    let s = WorkflowStep {
        name: name.clone(),
        detail: b.detail,
        audio: b.audio,
        color: b.color,
        buttons: b.buttons,
    };
    crm.put_step(s).map_err(|e| field_errors(&e))?;
    let s = crm.step(name.trim()).cloned().ok_or_else(ApiError::internal)?;
    put_definition(&st, &a, crm, created, Record::Step(s), "step", &name).await
}

async fn delete_step(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    admin(&a)?;
    let mut crm = st.crm.inner.lock().await;
    let s = crm.step(&name).cloned().ok_or_else(ApiError::not_found)?;
    deleted(crm.delete_step(&name))?;
    delete_definition(&st, &a, crm, Record::Step(s).key(), "step", &name).await
}

async fn list_workflows(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    view(&a)?;
    let crm = st.crm.inner.lock().await;
    let w: Vec<&Workflow> = crm.workflows().collect();
    Ok(Json(json!({ "workflows": w })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowBody {
    #[serde(default)]
    first_step: String,
}

async fn put_workflow(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    admin(&a)?;
    let b: WorkflowBody = parse(&headers, &body)?;
    let mut crm = st.crm.inner.lock().await;
    let created = crm.workflow(name.trim()).is_none();
    crm.put_workflow(Workflow { name: name.clone(), first_step: b.first_step })
        .map_err(|e| field_errors(&e))?;
    let w = crm.workflow(name.trim()).cloned().ok_or_else(ApiError::internal)?;
    put_definition(&st, &a, crm, created, Record::Workflow(w), "workflow", &name).await
}

async fn delete_workflow(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    admin(&a)?;
    let mut crm = st.crm.inner.lock().await;
    let w = crm.workflow(&name).cloned().ok_or_else(ApiError::not_found)?;
    deleted(crm.delete_workflow(&name))?;
    delete_definition(&st, &a, crm, Record::Workflow(w).key(), "workflow", &name).await
}

// ----- workflow statistics (§2.15) -----

/// `workflow`, `from`, `to` (Unix ms; the page sends its day range). Default: everything.
fn stats_query(q: RawQuery) -> Result<(Option<String>, u64, u64), ApiError> {
    let q = query(q, &["workflow", "from", "to"])?;
    let from = number(&q, "from")?.unwrap_or(0);
    let to = number(&q, "to")?.unwrap_or(u64::MAX);
    if from > to {
        return Err(one_field("to", "after from"));
    }
    Ok((text(&q, "workflow"), from, to))
}

async fn workflow_stats(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    admin(&a)?;
    let (wf, from, to) = stats_query(q)?;
    let crm = st.crm.inner.lock().await;
    let rows = stats_rows(&crm.workflow_stats(from, to), wf.as_deref());
    Ok(Json(json!({ "rows": rows })).into_response())
}

async fn workflow_stats_csv(AxState(st): AxState<Arc<State>>, a: Authed, q: RawQuery) -> ApiResult {
    admin(&a)?;
    let (wf, from, to) = stats_query(q)?;
    let crm = st.crm.inner.lock().await;
    let rows = stats_rows(&crm.workflow_stats(from, to), wf.as_deref());
    Ok(csv_response("workflow-stats.csv", stats_csv(&rows)))
}
