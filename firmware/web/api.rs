//! The `/api/v1/` handlers and the router (routes listed in [`super::ROUTES`]).
//!
//! Conventions (also in `docs/web.md`):
//! - Bodies are JSON and must say `Content-Type: application/json`; a cross-site form cannot
//!   send that without a CORS preflight, which the box never grants (login CSRF defence).
//! - The session is the `hakoden_session` cookie (HttpOnly, Secure, SameSite=Strict). Every
//!   request that changes state (POST/PUT/DELETE, but login) also carries the session's CSRF
//!   token in `X-CSRF-Token`, compared in constant time.
//! - 401 `{"error":"unauthenticated"}` without a live session, 403 `{"error":"forbidden"}`
//!   without the permission, 403 `{"error":"csrf"}` for a missing or wrong token, 403
//!   `{"error":"password_change_required"}` until a forced change is done, 422 `{"errors":
//!   {"field":"message"}}` for invalid fields, 400 `{"error":"bad_json","message":..}`.

use super::auth::{self, FailureOutcome, Gate, LoginCheck, Permission, Role};
use super::server::Peer;
use super::tls::{CertError, CertSlot};
use super::{audit, now, password, wall_ms, EngineStatus, WebQuery, MAX_ROLES, MAX_USERS};
use crate::store::web::{AuditEntry, StoredUser, WebStore, MAX_AUDIT_READ};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State as AxState};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "hakoden_session";

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Roles every box has; they cannot be deleted.
const BUILTIN_ROLES: [&str; 3] = [auth::ADMIN_ROLE, auth::SUPERVISOR_ROLE, auth::AGENT_ROLE];

/// Audit entries returned when the client does not ask for a count.
const DEFAULT_AUDIT_READ: usize = 100;

/// How long the dashboard waits for the engine's counts before showing none.
pub(super) const ENGINE_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Users and roles as the running box sees them; the store holds the durable copy. Writers
/// hold the lock across the store write so RAM and flash never disagree.
struct Directory {
    users: BTreeMap<String, StoredUser>,
    roles: BTreeMap<String, Role>,
}

impl Directory {
    fn find(&self, id: &str) -> Option<&StoredUser> {
        self.users.get(id).or_else(|| self.users.values().find(|u| u.id.eq_ignore_ascii_case(id)))
    }

    fn permissions(&self, user: &StoredUser) -> BTreeSet<Permission> {
        self.roles.get(&user.role).map(Role::effective).unwrap_or_default()
    }

    fn admins(&self) -> usize {
        self.users.values().filter(|u| u.role == auth::ADMIN_ROLE).count()
    }
}

/// Ringing events a screen-pop stream may fall behind before it skips the oldest.
pub(super) const RINGING_BACKLOG: usize = 64;

/// Shared state of the handlers.
pub(super) struct State {
    web: WebStore,
    gate: std::sync::Mutex<Gate>,
    dir: tokio::sync::Mutex<Directory>,
    certs: Arc<CertSlot>,
    hashes: Semaphore,
    dummy_hash: String,
    pub(super) engine: mpsc::Sender<WebQuery>,
    started: Instant,
    https_port: AtomicU16,
    pub(super) media: super::media::Media,
    pub(super) phonebook: super::phonebook::Book,
    /// The CRM (issue 9), loaded from its store at start.
    pub(super) crm: super::crm::CrmArea,
    /// Chat and the screen-pop streams (issue 9).
    pub(super) live: super::crm_live::Live,
    /// The box's data directory (set once at start), for files other parts read at start.
    pub(super) data_dir: std::sync::OnceLock<std::path::PathBuf>,
    pub(super) system: std::sync::OnceLock<super::system::System>,
    /// Phones starting to ring, from the daemon ([`super::WebHandle::ringing`]), for the
    /// screen pop (issue 9). A lagging receiver skips old ones.
    pub(super) ringing: tokio::sync::broadcast::Sender<crate::engine::Ringing>,
}

impl State {
    /// Whether the users' directory lock (taken by every login and page) comes free within
    /// `limit`: the watchdog's web probe (`WebHandle::watch`).
    pub(super) async fn directory_free(&self, limit: std::time::Duration) -> bool {
        tokio::time::timeout(limit, self.dir.lock()).await.is_ok()
    }

    pub(super) fn new(
        web: WebStore,
        certs: Arc<CertSlot>,
        engine: mpsc::Sender<WebQuery>,
        started: Instant,
        media: super::media::Media,
    ) -> Result<Arc<State>, crate::store::StoreError> {
        let users = web.users()?.into_iter().map(|u| (u.id.clone(), u)).collect();
        let roles = web.roles()?.into_iter().map(|r| (r.name.clone(), r)).collect();
        let phonebook = super::phonebook::Book::open(web.store())?;
        let crm = super::crm::CrmArea::open(web.store())?;
        Ok(Arc::new(State {
            web,
            gate: std::sync::Mutex::new(Gate::new()),
            dir: tokio::sync::Mutex::new(Directory { users, roles }),
            certs,
            hashes: Semaphore::new(super::HASH_SLOTS),
            dummy_hash: password::dummy_hash(),
            engine,
            started,
            https_port: AtomicU16::new(0),
            media,
            phonebook,
            crm,
            live: super::crm_live::Live::new(),
            data_dir: std::sync::OnceLock::new(),
            system: std::sync::OnceLock::new(),
            ringing: tokio::sync::broadcast::channel(RINGING_BACKLOG).0,
        }))
    }

    /// Each web user's extension, for areas keyed by user (the phonebook's caller names).
    pub(super) async fn user_extensions(&self) -> std::collections::HashMap<String, String> {
        let dir = self.dir.lock().await;
        dir.users.values().filter_map(|u| Some((u.id.clone(), u.extension.clone()?))).collect()
    }

    /// The database, for areas with their own keyspaces (call history).
    pub(super) fn store(&self) -> &crate::store::Store {
        self.web.store()
    }

    pub(super) fn set_https_port(&self, port: u16) {
        self.https_port.store(port, Ordering::Relaxed);
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs a durable store write off the async workers.
    async fn write<F>(&self, f: F) -> Result<(), ApiError>
    where
        F: FnOnce(&WebStore) -> Result<(), crate::store::StoreError> + Send + 'static,
    {
        let web = self.web.clone();
        match tokio::task::spawn_blocking(move || f(&web)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                log::error!("web: store write failed: {e}");
                Err(ApiError::internal())
            }
            Err(e) => {
                log::error!("web: store task failed: {e}");
                Err(ApiError::internal())
            }
        }
    }

    /// Hashes with a bounded number running at once.
    async fn hash(&self, pw: String) -> Result<String, ApiError> {
        let _slot = self.hashes.acquire().await.map_err(|_| ApiError::internal())?;
        tokio::task::spawn_blocking(move || password::hash(&pw))
            .await
            .map_err(|_| ApiError::internal())?
            .map_err(|e| {
                log::error!("web: hashing failed: {e}");
                ApiError::internal()
            })
    }

    async fn verify(&self, pw: String, phc: String) -> bool {
        let Ok(_slot) = self.hashes.acquire().await else { return false };
        tokio::task::spawn_blocking(move || password::verify(&pw, &phc)).await.unwrap_or(false)
    }

    pub(super) async fn record(&self, entry: AuditEntry) {
        if let Err(e) = self.write(move |w| w.audit(&entry)).await {
            log::warn!("web: audit entry not stored: {e:?}");
        }
    }

    pub(super) async fn reset_admin(&self) -> Result<String, String> {
        let pw = password::generate();
        let hash = self.hash(pw.clone()).await.map_err(|_| "cannot hash the password".to_string())?;
        let mut dir = self.dir.lock().await;
        let mut user = dir.users.get(super::ADMIN_USER).cloned().unwrap_or_else(|| StoredUser {
            id: super::ADMIN_USER.into(),
            name: "Administrator".into(),
            role: auth::ADMIN_ROLE.into(),
            extension: None,
            password_hash: String::new(),
            must_change_password: true,
            password_changed_ms: 0,
        });
        user.role = auth::ADMIN_ROLE.into();
        user.password_hash = hash;
        user.must_change_password = true;
        user.password_changed_ms = wall_ms();
        let entry = audit("console", "user.reset_admin", super::ADMIN_USER, String::new(), "");
        let stored = user.clone();
        self.write(move |w| w.put_user(&stored, &entry))
            .await
            .map_err(|_| "cannot store the user".to_string())?;
        dir.users.insert(user.id.clone(), user);
        let mut gate = self.gate();
        gate.unlock(super::ADMIN_USER);
        gate.logout_user(super::ADMIN_USER);
        Ok(pw)
    }

    pub(super) async fn install_certificate(
        &self,
        who: &str,
        peer: &str,
        cert: String,
        key: String,
    ) -> Result<(), CertError> {
        let certs = self.certs.clone();
        tokio::task::spawn_blocking(move || certs.replace(&cert, &key))
            .await
            .map_err(|e| CertError::Io(e.to_string()))??;
        self.record(audit(who, "certificate.install", "", String::new(), peer)).await;
        Ok(())
    }
}

/// An error answer. Every failure of a handler is one of these.
#[derive(Debug)]
pub(super) struct ApiError {
    pub(super) status: StatusCode,
    pub(super) body: serde_json::Value,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, error: &str) -> ApiError {
        ApiError { status, body: json!({ "error": error }) }
    }
    fn unauthenticated() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated")
    }
    pub(super) fn forbidden() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden")
    }
    pub(super) fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found")
    }
    pub(super) fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal")
    }
    pub(super) fn fields(errors: BTreeMap<&str, String>) -> ApiError {
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, body: json!({ "errors": errors }) }
    }
    fn field(name: &str, message: impl Into<String>) -> ApiError {
        ApiError::fields(BTreeMap::from([(name, message.into())]))
    }
    fn conflict(name: &str, message: &str) -> ApiError {
        ApiError { status: StatusCode::CONFLICT, body: json!({ "errors": { name: message } }) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

pub(super) type ApiResult = Result<Response, ApiError>;

/// Parses a JSON body; refuses other content types (see the module doc).
pub(super) fn parse<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: json!({ "error": "unsupported_media_type", "message": "send application/json" }),
        });
    }
    serde_json::from_slice(body).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({ "error": "bad_json", "message": e.to_string() }),
    })
}

fn peer_of(parts: &axum::http::Extensions) -> String {
    parts.get::<Peer>().map(|p| p.0.ip().to_string()).unwrap_or_default()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// A request from a live session whose CSRF token (for state changes) is right.
pub(super) struct Authed {
    token: String,
    session: auth::Session,
    pub(super) user: StoredUser,
    pub(super) permissions: BTreeSet<Permission>,
    peer: String,
}

impl Authed {
    pub(super) fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(&p) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
    pub(super) fn audit(&self, action: &str, target: &str, detail: String) -> AuditEntry {
        audit(&self.user.id, action, target, detail, &self.peer)
    }
}

/// Paths a user whose password must change may still use.
const CHANGE_PASSWORD_PATHS: [&str; 3] = ["/api/v1/me", "/api/v1/me/password", "/api/v1/logout"];

impl FromRequestParts<Arc<State>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<State>) -> Result<Self, Self::Rejection> {
        let token = cookie_token(&parts.headers).ok_or_else(ApiError::unauthenticated)?;
        let session = st.gate().session(&token, now()).ok_or_else(ApiError::unauthenticated)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        if !safe {
            let sent = parts.headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
            if !auth::constant_time_eq(sent, session.csrf.as_bytes()) {
                return Err(ApiError::new(StatusCode::FORBIDDEN, "csrf"));
            }
        }
        let dir = st.dir.lock().await;
        let Some(user) = dir.users.get(&session.user).cloned() else {
            // Deleted while logged in.
            st.gate().logout(&token);
            return Err(ApiError::unauthenticated());
        };
        if user.must_change_password && !CHANGE_PASSWORD_PATHS.contains(&parts.uri.path()) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "password_change_required"));
        }
        let permissions = dir.permissions(&user);
        Ok(Authed { token, session, user, permissions, peer: peer_of(&parts.extensions) })
    }
}

fn cookie(token: &str, max_age: Option<u32>) -> HeaderValue {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("hakoden_session=; Max-Age=0"))
}

/// The browser's view of a user.
#[derive(Serialize)]
struct UserView {
    id: String,
    name: String,
    role: String,
    extension: Option<String>,
    must_change_password: bool,
}

impl From<&StoredUser> for UserView {
    fn from(u: &StoredUser) -> UserView {
        UserView {
            id: u.id.clone(),
            name: u.name.clone(),
            role: u.role.clone(),
            extension: u.extension.clone(),
            must_change_password: u.must_change_password,
        }
    }
}

fn me_body(user: &StoredUser, permissions: &BTreeSet<Permission>, csrf: &str) -> serde_json::Value {
    json!({
        "user": UserView::from(user),
        "permissions": permissions,
        "csrf_token": csrf,
    })
}

// Handlers.

async fn health(AxState(st): AxState<Arc<State>>) -> Response {
    Json(json!({ "version": crate::VERSION, "uptime_s": now().saturating_duration_since(st.started).as_secs() }))
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

async fn login(
    AxState(st): AxState<Arc<State>>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: LoginBody = parse(&headers, &body)?;
    let peer = peer.map(|p| p.0 .0.ip().to_string()).unwrap_or_default();
    let mut errors = BTreeMap::new();
    if b.user.is_empty() || b.user.len() > *auth::USER_ID_CHARS.end() {
        errors.insert("user", "enter your user id".to_string());
    }
    if b.password.is_empty() || b.password.len() > 4 * auth::PASSWORD_CHARS.end() {
        errors.insert("password", "enter your password".to_string());
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if let LoginCheck::Locked(left) = st.gate().check_login(&b.user, now()) {
        let secs = left.as_secs().max(1);
        return Err(ApiError {
            status: StatusCode::LOCKED,
            body: json!({ "error": "locked", "retry_after_s": secs }),
        });
    }
    let found = st.dir.lock().await.find(&b.user).cloned();
    let phc = found.as_ref().map_or_else(|| st.dummy_hash.clone(), |u| u.password_hash.clone());
    let ok = st.verify(b.password, phc).await && found.is_some();
    let Some(user) = found.filter(|_| ok) else {
        let outcome = st.gate().record_failure(&b.user, now());
        if outcome == FailureOutcome::JustLocked {
            log::warn!("web: login id `{}` locked after {} failures", b.user, auth::MAX_FAILED_LOGINS);
            st.record(audit(
                &b.user,
                "login.locked",
                &b.user,
                format!("{} failures", auth::MAX_FAILED_LOGINS),
                &peer,
            ))
            .await;
        }
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "bad_credentials"));
    };
    let token = password::token().map_err(|_| ApiError::internal())?;
    let csrf = password::token().map_err(|_| ApiError::internal())?;
    let old = st.gate().login(&user.id, token.clone(), csrf.clone(), peer.clone(), now());
    let detail = if old.is_some() { "previous session ended".to_string() } else { String::new() };
    st.record(audit(&user.id, "login", &user.id, detail, &peer)).await;
    let permissions = st.dir.lock().await.permissions(&user);
    let mut resp = Json(me_body(&user, &permissions, &csrf)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie(&token, None));
    Ok(resp)
}

async fn logout(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    st.gate().logout(&a.token);
    st.record(a.audit("logout", &a.user.id, String::new())).await;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie("", Some(0)));
    Ok(resp)
}

async fn me(a: Authed) -> ApiResult {
    Ok(Json(me_body(&a.user, &a.permissions, &a.session.csrf)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

async fn change_password(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: PasswordBody = parse(&headers, &body)?;
    if let Err(e) = auth::check_password(&b.new_password) {
        return Err(ApiError::field("new_password", e.to_string()));
    }
    if b.new_password == b.current_password {
        return Err(ApiError::field("new_password", "must differ from the current password"));
    }
    if b.current_password.len() > 4 * auth::PASSWORD_CHARS.end()
        || !st.verify(b.current_password, a.user.password_hash.clone()).await
    {
        // Guessing through a stolen session counts like guessing at the login form.
        if st.gate().record_failure(&a.user.id, now()) == FailureOutcome::JustLocked {
            st.gate().logout(&a.token);
            st.record(a.audit("login.locked", &a.user.id, "wrong current passwords".into())).await;
        }
        return Err(ApiError::field("current_password", "wrong password"));
    }
    let hash = st.hash(b.new_password).await?;
    let mut dir = st.dir.lock().await;
    let mut user = dir.users.get(&a.user.id).cloned().ok_or_else(ApiError::unauthenticated)?;
    user.password_hash = hash;
    user.must_change_password = false;
    user.password_changed_ms = wall_ms();
    let entry = a.audit("password.change", &user.id, String::new());
    let stored = user.clone();
    st.write(move |w| w.put_user(&stored, &entry)).await?;
    let permissions = dir.permissions(&user);
    dir.users.insert(user.id.clone(), user.clone());
    Ok(Json(me_body(&user, &permissions, &a.session.csrf)).into_response())
}

async fn dashboard(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::DashboardView)?;
    let (tx, rx) = oneshot::channel();
    let status: Option<EngineStatus> = match st.engine.try_send(WebQuery::Status(tx)) {
        Ok(()) => tokio::time::timeout(ENGINE_QUERY_TIMEOUT, rx).await.ok().and_then(Result::ok),
        Err(_) => None,
    };
    let mut body = json!({
        "version": crate::VERSION,
        "uptime_s": now().saturating_duration_since(st.started).as_secs(),
        "registrations": status.map(|s| s.registrations),
        "active_calls": status.map(|s| s.active_calls),
        "next_restart": status.and_then(|s| s.next_restart),
    });
    if let Some(obj) = body.as_object_mut() {
        obj.extend(super::media::dashboard_extra(&st).await);
    }
    Ok(Json(body).into_response())
}

async fn list_users(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::UsersView)?;
    let dir = st.dir.lock().await;
    let mut users: Vec<UserView> = dir.users.values().map(UserView::from).collect();
    // Seed 004 §2.21: the list is sorted by extension number, users without one last.
    users.sort_by(|x, y| {
        let key = |u: &UserView| {
            (u.extension.is_none(), u.extension.as_ref().map(|e| (e.len(), e.clone())), u.id.clone())
        };
        key(x).cmp(&key(y))
    });
    Ok(Json(json!({ "users": users })).into_response())
}

async fn get_user(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::UsersView)?;
    let dir = st.dir.lock().await;
    let user = dir.users.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(Json(UserView::from(user)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    id: Option<String>,
    name: Option<String>,
    role: Option<String>,
    /// `null` or `""` unbinds the extension.
    #[serde(default, deserialize_with = "some_or_null")]
    extension: Option<Option<String>>,
    password: Option<String>,
}

/// Tells "field absent" (`None`) from "field null" (`Some(None)`).
fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Extension numbers as in the config: 2-8 digits.
pub(super) fn check_extension(e: &str) -> Result<(), String> {
    if (2..=8).contains(&e.len()) && e.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err("2-8 digits".into())
    }
}

fn validate_user_fields(b: &UserBody, dir: &Directory, errors: &mut BTreeMap<&'static str, String>) {
    if let Some(name) = &b.name {
        if let Err(e) = auth::check_name(name, auth::USER_NAME_CHARS) {
            errors.insert("name", e);
        }
    }
    if let Some(role) = &b.role {
        if !dir.roles.contains_key(role) {
            errors.insert("role", format!("no role `{role}`"));
        }
    }
    if let Some(Some(e)) = &b.extension {
        if !e.is_empty() {
            if let Err(m) = check_extension(e) {
                errors.insert("extension", m);
            }
        }
    }
    if let Some(p) = &b.password {
        if let Err(e) = auth::check_password(p) {
            errors.insert("password", e.to_string());
        }
    }
}

async fn create_user(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::UsersEdit)?;
    let b: UserBody = parse(&headers, &body)?;
    let mut errors = BTreeMap::new();
    {
        let dir = st.dir.lock().await;
        match &b.id {
            None => {
                errors.insert("id", "required".to_string());
            }
            Some(id) => {
                if let Err(e) = auth::check_user_id(id) {
                    errors.insert("id", e);
                } else if dir.find(id).is_some() {
                    return Err(ApiError::conflict("id", "a user with this id exists"));
                }
            }
        }
        for (field, present) in
            [("name", b.name.is_some()), ("role", b.role.is_some()), ("password", b.password.is_some())]
        {
            if !present {
                errors.insert(field, "required".to_string());
            }
        }
        validate_user_fields(&b, &dir, &mut errors);
        if dir.users.len() >= MAX_USERS {
            errors.insert("id", format!("the box holds at most {MAX_USERS} users"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let (Some(id), Some(name), Some(role), Some(pw)) = (b.id, b.name, b.role, b.password) else {
        return Err(ApiError::internal());
    };
    let hash = st.hash(pw).await?;
    let mut dir = st.dir.lock().await;
    if dir.find(&id).is_some() {
        return Err(ApiError::conflict("id", "a user with this id exists"));
    }
    let user = StoredUser {
        id: id.clone(),
        name,
        role: role.clone(),
        extension: b.extension.flatten().filter(|e| !e.is_empty()),
        password_hash: hash,
        // Someone else chose this password: the user picks their own at first login.
        must_change_password: true,
        password_changed_ms: wall_ms(),
    };
    let entry = a.audit("user.create", &id, format!("role={role}"));
    let stored = user.clone();
    st.write(move |w| w.put_user(&stored, &entry)).await?;
    dir.users.insert(id, user.clone());
    Ok((StatusCode::CREATED, Json(UserView::from(&user))).into_response())
}

async fn update_user(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::UsersEdit)?;
    let b: UserBody = parse(&headers, &body)?;
    let mut errors = BTreeMap::new();
    if b.id.as_ref().is_some_and(|i| *i != id) {
        errors.insert("id", "cannot be changed".to_string());
    }
    {
        let dir = st.dir.lock().await;
        let user = dir.users.get(&id).ok_or_else(ApiError::not_found)?;
        validate_user_fields(&b, &dir, &mut errors);
        let demoted = b.role.as_ref().is_some_and(|r| r != auth::ADMIN_ROLE) && user.role == auth::ADMIN_ROLE;
        if demoted && dir.admins() <= 1 {
            errors.insert("role", "the box needs at least one admin".to_string());
        }
        // Only an admin may make or change an admin.
        let touches_admin = user.role == auth::ADMIN_ROLE || b.role.as_deref() == Some(auth::ADMIN_ROLE);
        if touches_admin && a.user.role != auth::ADMIN_ROLE {
            return Err(ApiError::forbidden());
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let hash = match b.password.clone() {
        Some(pw) => Some(st.hash(pw).await?),
        None => None,
    };
    let mut dir = st.dir.lock().await;
    let mut user = dir.users.get(&id).cloned().ok_or_else(ApiError::not_found)?;
    let mut changed = Vec::new();
    if let Some(name) = b.name {
        if name != user.name {
            changed.push("name");
            user.name = name;
        }
    }
    if let Some(role) = b.role {
        if role != user.role {
            changed.push("role");
            user.role = role;
        }
    }
    if let Some(ext) = b.extension {
        let ext = ext.filter(|e| !e.is_empty());
        if ext != user.extension {
            changed.push("extension");
            user.extension = ext;
        }
    }
    if let Some(h) = hash {
        changed.push("password");
        user.password_hash = h;
        user.must_change_password = id != a.user.id;
        user.password_changed_ms = wall_ms();
    }
    let entry = a.audit("user.update", &id, changed.join(","));
    let stored = user.clone();
    st.write(move |w| w.put_user(&stored, &entry)).await?;
    dir.users.insert(id.clone(), user.clone());
    drop(dir);
    if changed.contains(&"password") && id != a.user.id {
        // The old password's session must not outlive it.
        st.gate().logout_user(&id);
    }
    Ok(Json(UserView::from(&user)).into_response())
}

async fn delete_user(AxState(st): AxState<Arc<State>>, a: Authed, Path(id): Path<String>) -> ApiResult {
    a.require(Permission::UsersEdit)?;
    let mut dir = st.dir.lock().await;
    let user = dir.users.get(&id).cloned().ok_or_else(ApiError::not_found)?;
    if id == a.user.id {
        return Err(ApiError::field("id", "you cannot delete yourself"));
    }
    if user.role == auth::ADMIN_ROLE {
        if a.user.role != auth::ADMIN_ROLE {
            return Err(ApiError::forbidden());
        }
        if dir.admins() <= 1 {
            return Err(ApiError::field("id", "the box needs at least one admin"));
        }
    }
    let entry = a.audit("user.delete", &id, String::new());
    let key = id.clone();
    st.write(move |w| w.delete_user(&key, &entry)).await?;
    dir.users.remove(&id);
    drop(dir);
    st.gate().logout_user(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_roles(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    if !a.permissions.contains(&Permission::UsersView) && !a.permissions.contains(&Permission::RolesEdit) {
        return Err(ApiError::forbidden());
    }
    let dir = st.dir.lock().await;
    let roles: Vec<serde_json::Value> = dir
        .roles
        .values()
        .map(|r| {
            let builtin = BUILTIN_ROLES.contains(&r.name.as_str());
            json!({
                "name": r.name,
                "permissions": r.effective(),
                "builtin": builtin,
                "editable": r.name != auth::ADMIN_ROLE,
                "users": dir.users.values().filter(|u| u.role == r.name).count(),
            })
        })
        .collect();
    Ok(Json(json!({ "roles": roles, "permissions": Permission::ALL })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    permissions: Vec<String>,
}

async fn put_role(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::RolesEdit)?;
    let b: RoleBody = parse(&headers, &body)?;
    let mut errors = BTreeMap::new();
    if let Err(e) = auth::check_name(&name, auth::ROLE_NAME_CHARS) {
        errors.insert("name", e);
    }
    if name == auth::ADMIN_ROLE {
        errors.insert("name", "the admin role always holds every permission".to_string());
    }
    let mut permissions = BTreeSet::new();
    for p in &b.permissions {
        match serde_json::from_value::<Permission>(json!(p)) {
            Ok(p) => {
                permissions.insert(p);
            }
            Err(_) => {
                errors.insert("permissions", format!("unknown permission `{p}`"));
            }
        }
    }
    let mut dir = st.dir.lock().await;
    let created = !dir.roles.contains_key(&name);
    if created && dir.roles.len() >= MAX_ROLES {
        errors.insert("name", format!("the box holds at most {MAX_ROLES} roles"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let role = Role { name: name.clone(), permissions };
    let detail = role
        .permissions
        .iter()
        .map(|p| json!(p).as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    let entry = a.audit(if created { "role.create" } else { "role.update" }, &name, detail.join(","));
    let stored = role.clone();
    st.write(move |w| w.put_role(&stored, &entry)).await?;
    dir.roles.insert(name, role.clone());
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "name": role.name, "permissions": role.permissions }))).into_response())
}

async fn delete_role(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    a.require(Permission::RolesEdit)?;
    let mut dir = st.dir.lock().await;
    if !dir.roles.contains_key(&name) {
        return Err(ApiError::not_found());
    }
    if BUILTIN_ROLES.contains(&name.as_str()) {
        return Err(ApiError::field("name", "a built-in role cannot be deleted"));
    }
    // Seed 004 moves the users to the first role in the list; that could be `admin`, so the box
    // refuses instead (docs/web.md).
    if dir.users.values().any(|u| u.role == name) {
        return Err(ApiError::conflict("name", "users hold this role; give them another role first"));
    }
    let entry = a.audit("role.delete", &name, String::new());
    let key = name.clone();
    st.write(move |w| w.delete_role(&key, &entry)).await?;
    dir.roles.remove(&name);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_sessions(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::SessionsView)?;
    let t = now();
    let sessions: Vec<serde_json::Value> = st
        .gate()
        .sessions(t)
        .into_iter()
        .map(|s| {
            json!({
                "user": s.user,
                "age_s": t.saturating_duration_since(s.created).as_secs(),
                "idle_s": t.saturating_duration_since(s.last_seen).as_secs(),
                "peer": s.peer,
                "current": s.csrf == a.session.csrf,
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

async fn force_logout(AxState(st): AxState<Arc<State>>, a: Authed, Path(user): Path<String>) -> ApiResult {
    a.require(Permission::SessionsLogout)?;
    let target_is_admin = st.dir.lock().await.users.get(&user).is_some_and(|u| u.role == auth::ADMIN_ROLE);
    if target_is_admin && a.user.role != auth::ADMIN_ROLE {
        return Err(ApiError::forbidden());
    }
    let ended = st.gate().logout_user(&user);
    if ended.is_none() {
        return Err(ApiError::not_found());
    }
    st.record(a.audit("session.force_logout", &user, String::new())).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn read_audit(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::AuditView)?;
    let limit = match q {
        Ok(Query(AuditQuery { limit: None })) => DEFAULT_AUDIT_READ,
        Ok(Query(AuditQuery { limit: Some(n) })) if (1..=MAX_AUDIT_READ).contains(&n) => n,
        _ => return Err(ApiError::field("limit", format!("a count from 1 to {MAX_AUDIT_READ}"))),
    };
    let web = st.web.clone();
    let (entries, skipped) = tokio::task::spawn_blocking(move || web.recent_audit(limit))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            log::error!("web: audit read failed: {e}");
            ApiError::internal()
        })?;
    Ok(Json(json!({ "entries": entries, "skipped": skipped })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertBody {
    #[serde(default)]
    cert_pem: String,
    #[serde(default)]
    key_pem: String,
}

async fn put_certificate(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let b: CertBody = parse(&headers, &body)?;
    match st.install_certificate(&a.user.id, &a.peer, b.cert_pem, b.key_pem).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(CertError::Certificate(m)) => Err(ApiError::field("cert_pem", m)),
        Err(CertError::Key(m)) => Err(ApiError::field("key_pem", m)),
        Err(CertError::Mismatch) => Err(ApiError::field("key_pem", "does not belong to the certificate")),
        Err(CertError::Io(m)) => {
            log::error!("web: certificate not stored: {m}");
            Err(ApiError::internal())
        }
    }
}

async fn api_not_found() -> ApiError {
    ApiError::not_found()
}

async fn asset(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    super::assets::respond(uri.path().trim_start_matches('/'), &headers)
}

/// Security headers on every answer; `no-store` on API answers (they hold personal data and
/// tokens); the request timeout.
async fn harden(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut resp = match tokio::time::timeout(super::REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout").into_response(),
    };
    let h = resp.headers_mut();
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The HTTPS router: [`super::ROUTES`], the pages, and the limits.
pub(super) fn router(st: Arc<State>) -> Router {
    use axum::routing::MethodRouter;
    let routes: Vec<(&str, MethodRouter<Arc<State>>)> = vec![
        ("/api/v1/health", get(health)),
        ("/api/v1/login", post(login)),
        ("/api/v1/logout", post(logout)),
        ("/api/v1/me", get(me)),
        ("/api/v1/me/password", post(change_password)),
        ("/api/v1/dashboard", get(dashboard)),
        ("/api/v1/users", get(list_users).post(create_user)),
        ("/api/v1/users/{id}", get(get_user).put(update_user).delete(delete_user)),
        ("/api/v1/roles", get(list_roles)),
        ("/api/v1/roles/{name}", put(put_role).delete(delete_role)),
        ("/api/v1/sessions", get(list_sessions)),
        ("/api/v1/sessions/{user}", axum::routing::delete(force_logout)),
        ("/api/v1/audit", get(read_audit)),
        ("/api/v1/certificate", put(put_certificate)),
    ];
    let routes: Vec<_> = routes.into_iter().chain(super::system::routes()).collect();
    let mut app = Router::new();
    for (path, r) in routes
        .into_iter()
        .chain(super::callcenter::routes())
        .chain(super::calls::routes())
        .chain(super::campaigns::routes())
        .chain(super::phonebook::routes())
        .chain(super::lists::routes())
        .chain(super::history::routes())
        .chain(super::media::routes())
        .chain(super::settings::routes())
        .chain(super::monitor::routes())
        .chain(super::reports::routes())
        .chain(super::crm::routes())
        .chain(super::crm_live::routes())
    {
        debug_assert!(super::ROUTES.iter().any(|(_, p)| *p == path), "{path} not in ROUTES");
        app = app.route(path, r);
    }
    app.route("/api/{*rest}", axum::routing::any(api_not_found))
        .fallback(get(asset))
        .layer(axum::extract::DefaultBodyLimit::max(super::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(harden))
        .with_state(st)
}

/// Where a plain-HTTP request is sent: the same host (when it looks like a host name or
/// address) on the HTTPS port, same path.
fn https_location(host: Option<&str>, path_and_query: &str, port: u16) -> String {
    let host = host.unwrap_or_default();
    // Strip a port: `[v6]:p`, `name:p`.
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().map(|h| format!("[{h}]")).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_string()
    };
    let sane = !bare.is_empty()
        && bare.len() <= 253
        && bare.chars().all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c));
    let bare = if sane { bare } else { "localhost".to_string() };
    let path = if path_and_query.starts_with('/') { path_and_query } else { "/" };
    if port == 443 {
        format!("https://{bare}{path}")
    } else {
        format!("https://{bare}:{port}{path}")
    }
}

/// The plain-HTTP router: everything answers 308 to HTTPS (308 keeps the method, so a form
/// post is not silently turned into a GET).
pub(super) fn redirect_router(st: Arc<State>) -> Router {
    Router::new().fallback(move |req: axum::extract::Request| {
        let st = st.clone();
        async move {
            let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
            let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let port = st.https_port.load(Ordering::Relaxed);
            let to = https_location(host, pq, port);
            match HeaderValue::from_str(&to) {
                Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_keeps_host_and_path_and_swaps_the_port() {
        assert_eq!(
            https_location(Some("pbx.local:8080"), "/users.html?x=1", 8443),
            "https://pbx.local:8443/users.html?x=1"
        );
        assert_eq!(https_location(Some("[::1]:8080"), "/", 8443), "https://[::1]:8443/");
        assert_eq!(https_location(Some("10.0.0.5"), "/", 443), "https://10.0.0.5/");
        assert_eq!(https_location(Some("evil.example/x@y"), "/", 8443), "https://localhost:8443/");
        assert_eq!(https_location(None, "/", 8443), "https://localhost:8443/");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; hakoden_session=abc; b=2"));
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookie_is_http_only_secure_and_strict() {
        let c = cookie("t", None);
        let s = c.to_str().unwrap();
        assert!(s.contains("HttpOnly") && s.contains("Secure") && s.contains("SameSite=Strict"));
    }

    #[test]
    fn a_body_must_be_declared_json() {
        let mut h = HeaderMap::new();
        let body = Bytes::from_static(b"{\"user\":\"a\",\"password\":\"b\"}");
        assert_eq!(parse::<LoginBody>(&h, &body).unwrap_err().status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert!(parse::<LoginBody>(&h, &body).is_ok());
        let bad = Bytes::from_static(b"{\"user\":1}");
        assert_eq!(parse::<LoginBody>(&h, &bad).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
