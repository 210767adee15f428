//! The live part of the CRM pages (issue 9; seed 002 §2.6, §2.8 CRM自動検索, §2.27):
//! presence, chat and the screen pop.
//!
//! - `GET /api/v1/presence`: every queue (group) with its member agents and their states
//!   (`WebQuery::Queues` / `WebQuery::Agents`), and the web user bound to each extension.
//! - `GET /api/v1/chat?since=N`, `POST /api/v1/chat`, `POST /api/v1/chat/read`: chat to
//!   everyone, a group (queue) or one agent (extension), kept in RAM (`apps::crm::chat`, the
//!   newest 5,000 messages; a restart empties it). The page polls every few seconds (no
//!   stream: a chat line a few seconds late is fine and polling needs no connection per tab).
//!   Each message comes with `parts`: the text cut at its `#C<n>` / `#T<n>` references, each
//!   reference with the page link of its record.
//! - `GET /api/v1/crm/screen-pop/stream`: Server-Sent Events for the logged-in user's
//!   extension. When a phone of that extension starts ringing (the engine's
//!   [`crate::engine::Ringing`] on `State.ringing`), one `ringing` event carries the caller's
//!   number, the customers saved with it (`Crm::find_by_phone`, with their page links) and,
//!   for a call to a DID with `popup_url`, that URL with `@@@@` replaced by the caller's
//!   number. A stream ends after [`STREAM_LIFETIME`] (the browser reconnects, and so proves
//!   its session again); at most [`MAX_POP_STREAMS`] are open.

use super::api::{parse, ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use super::callcenter::ask;
use super::{wall_ms, WebQuery};
use crate::apps::crm::chat::{popup_url, Chat, ChatError, Message, Target};
use crate::apps::crm::refs::RefKind;
use crate::engine::Ringing;
use axum::body::Bytes;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Screen-pop streams open at once: one per logged-in agent tab; beyond it 503.
pub const MAX_POP_STREAMS: usize = 64;

/// How long one screen-pop stream lives before the browser must reconnect.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(120);

/// What the browser waits before reconnecting a stream that ended.
const RETRY_MS: u64 = 500;

/// Customers one screen pop lists at most (a number shared by many records).
pub const MAX_POP_CUSTOMERS: usize = 10;

/// Messages one chat answer holds at most (the newest).
pub const MAX_CHAT_PAGE: usize = 200;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/presence", get(presence)),
        ("/api/v1/chat", get(read_chat).post(post_chat)),
        ("/api/v1/chat/read", post(mark_read)),
        ("/api/v1/crm/screen-pop/stream", get(screen_pop)),
    ]
}

/// Chat and the screen-pop stream bound.
pub(super) struct Live {
    chat: std::sync::Mutex<Chat>,
    pop_streams: Arc<tokio::sync::Semaphore>,
}

impl Live {
    pub(super) fn new() -> Live {
        Live {
            chat: std::sync::Mutex::new(Chat::new()),
            pop_streams: Arc::new(tokio::sync::Semaphore::new(MAX_POP_STREAMS)),
        }
    }

    fn chat(&self) -> std::sync::MutexGuard<'_, Chat> {
        self.chat.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Who a user is in chat: the extension when bound (agents are addressed by extension),
/// else the login id.
fn chat_id(a: &Authed) -> String {
    a.user.extension.clone().unwrap_or_else(|| a.user.id.clone())
}

/// The page link of a record.
fn record_url(kind: RefKind, id: u64) -> String {
    match kind {
        RefKind::Customer => format!("crm.html#customer={id}"),
        RefKind::Case => format!("crm.html#case={id}"),
    }
}

/// The text cut at its references: `{text}` and `{ref, kind, id, url}` parts in order.
fn parts(m: &Message) -> Vec<Value> {
    let mut out = Vec::new();
    let mut at = 0;
    for r in &m.refs {
        if let (Some(before), Some(label)) = (m.text.get(at..r.start), m.text.get(r.start..r.end)) {
            if !before.is_empty() {
                out.push(json!({ "text": before }));
            }
            out.push(json!({ "ref": label, "kind": r.kind, "id": r.id, "url": record_url(r.kind, r.id) }));
            at = r.end;
        }
    }
    if let Some(rest) = m.text.get(at..).filter(|s| !s.is_empty()) {
        out.push(json!({ "text": rest }));
    }
    out
}

fn message_json(m: &Message) -> Value {
    json!({
        "seq": m.seq,
        "from": m.from,
        "to": m.to,
        "at_ms": m.at_ms,
        "text": m.text,
        "bold": m.bold,
        "red": m.red,
        "parts": parts(m),
    })
}

/// The queues `ext` is a member of (its chat groups); none when the engine does not answer.
async fn groups_of(st: &State, ext: Option<&str>) -> Vec<String> {
    let Some(ext) = ext else { return Vec::new() };
    match ask(st, WebQuery::Agents).await {
        Ok(agents) => agents
            .into_iter()
            .find(|v| v.agent == ext)
            .map(|v| v.queues.into_iter().map(|(q, _)| q).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn presence(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::ChatUse)?;
    let queues = ask(&st, WebQuery::Queues).await?;
    let agents = ask(&st, WebQuery::Agents).await?;
    let users: HashMap<String, String> =
        st.user_extensions().await.into_iter().map(|(u, e)| (e, u)).collect();
    let agent_json = |v: &crate::engine::AgentView, available: bool| {
        json!({
            "agent": v.agent,
            "user": users.get(&v.agent),
            "state": v.state.key(),
            "label": v.label.clone().unwrap_or_else(|| v.state.ja().to_string()),
            "since_s": v.since_s,
            "available": available,
        })
    };
    let groups: Vec<Value> = queues
        .iter()
        .map(|q| {
            let members: Vec<Value> = agents
                .iter()
                .filter_map(|v| v.queues.iter().find(|(n, _)| *n == q.name).map(|(_, on)| agent_json(v, *on)))
                .collect();
            json!({ "name": q.name, "number": q.number, "members": members })
        })
        .collect();
    let all: Vec<Value> = agents.iter().map(|v| agent_json(v, true)).collect();
    Ok(Json(json!({ "me": chat_id(&a), "groups": groups, "agents": all })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatQuery {
    since: Option<u64>,
}

async fn read_chat(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    q: Result<Query<ChatQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    a.require(Permission::ChatUse)?;
    let Ok(Query(q)) = q else {
        return Err(ApiError::fields(BTreeMap::from([("since", "a message number".to_string())])));
    };
    let me = chat_id(&a);
    let groups = groups_of(&st, a.user.extension.as_deref()).await;
    let chat = st.live.chat();
    let all = chat.messages_for(&me, &groups, q.since.unwrap_or(0));
    let skip = all.len().saturating_sub(MAX_CHAT_PAGE);
    let messages: Vec<Value> = all.iter().skip(skip).map(|m| message_json(m)).collect();
    let unread = chat.unread(&me, &groups);
    Ok(Json(json!({ "me": me, "groups": groups, "messages": messages, "unread": unread })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatBody {
    to: Target,
    text: String,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    red: bool,
}

async fn post_chat(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::ChatUse)?;
    let b: ChatBody = parse(&headers, &body)?;
    match &b.to {
        Target::Everyone => {}
        Target::Group(g) => {
            let queues = ask(&st, WebQuery::Queues).await?;
            if !queues.iter().any(|q| q.name == *g) {
                return Err(ApiError::fields(BTreeMap::from([("to", format!("{g}: no such group"))])));
            }
        }
        Target::Agent(x) => {
            let ok = !x.is_empty() && x.len() <= 32 && x.bytes().all(|c| c.is_ascii_alphanumeric());
            if !ok {
                return Err(ApiError::fields(BTreeMap::from([("to", "an extension".to_string())])));
            }
        }
    }
    let me = chat_id(&a);
    let posted = st.live.chat().post(&me, b.to, &b.text, b.bold, b.red, wall_ms()).map(message_json);
    match posted {
        Ok(v) => Ok((StatusCode::CREATED, Json(v)).into_response()),
        Err(e) => {
            let m = match e {
                ChatError::Empty => "required".to_string(),
                ChatError::TooLong => {
                    format!("at most {} characters", crate::apps::crm::chat::MAX_MESSAGE_CHARS)
                }
                ChatError::BadCharacter => "control characters are not allowed".to_string(),
            };
            Err(ApiError::fields(BTreeMap::from([("text", m)])))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    seq: u64,
}

async fn mark_read(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::ChatUse)?;
    let b: ReadBody = parse(&headers, &body)?;
    let me = chat_id(&a);
    st.live.chat().mark_read(&me, b.seq);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- screen pop -----

/// The pop-up URL of `did` in the running configuration, if it has one.
async fn did_popup(st: &State, did: &str) -> Option<String> {
    let doc: crate::config::document::RunningDocument = ask(st, WebQuery::ConfigDocument).await.ok()?;
    let config = crate::config::parse_str(&doc.text, "running").ok()?;
    config.popup_urls.get(did).cloned()
}

/// The event a ringing phone shows: caller, matching customers (only those of formats open
/// to the extension, unless `all`), pop-up URL.
pub(super) async fn pop_json(st: &State, r: &Ringing, all: bool) -> Value {
    let customers: Vec<Value> = {
        let crm = st.crm.inner.lock().await;
        crm.find_by_phone(&r.caller)
            .into_iter()
            .filter(|c| all || crm.may_use_format(c.format.as_deref(), Some(&r.ext)))
            .take(MAX_POP_CUSTOMERS)
            .map(|c| {
                json!({
                    "id": c.id,
                    "ref": format!("#C{}", c.id),
                    "name": c.name,
                    "code": c.code,
                    "tags": c.tags,
                    "url": record_url(RefKind::Customer, c.id),
                })
            })
            .collect()
    };
    let popup = match &r.did {
        Some(did) => did_popup(st, did).await.map(|t| popup_url(&t, &r.caller)),
        None => None,
    };
    json!({
        "call": r.call,
        "ext": r.ext,
        "caller": r.caller,
        "did": r.did,
        "customers": customers,
        "popup_url": popup,
    })
}

struct PopStream {
    st: Arc<State>,
    ext: String,
    /// The user sees every customer (`crm_admin`).
    all: bool,
    rx: broadcast::Receiver<Ringing>,
    #[allow(dead_code)] // held for the stream's life, never read
    permit: tokio::sync::OwnedSemaphorePermit,
    deadline: tokio::time::Instant,
    hello_sent: bool,
}

/// When a stream opened now ends.
#[allow(clippy::disallowed_methods)] // driver: reads the clock
fn stream_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + STREAM_LIFETIME
}

async fn next_pop(mut s: PopStream) -> Option<(Result<Event, std::convert::Infallible>, PopStream)> {
    if !s.hello_sent {
        s.hello_sent = true;
        // A named event so the page knows the stream is live (tests wait for it).
        let ev = Event::default().retry(Duration::from_millis(RETRY_MS)).event("ready").data(s.ext.clone());
        return Some((Ok(ev), s));
    }
    loop {
        match tokio::time::timeout_at(s.deadline, s.rx.recv()).await {
            Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            // Fell behind: the skipped phones rang long ago; go on with the next.
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Ok(r)) if r.ext == s.ext => {
                let v = pop_json(&s.st, &r, s.all).await;
                return Some((Ok(Event::default().event("ringing").data(v.to_string())), s));
            }
            Ok(Ok(_)) => continue,
        }
    }
}

async fn screen_pop(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::CrmView)?;
    let Some(ext) = a.user.extension.clone() else {
        return Err(ApiError::fields(BTreeMap::from([(
            "extension",
            "this user has no extension".to_string(),
        )])));
    };
    let Ok(permit) = st.live.pop_streams.clone().try_acquire_owned() else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"));
    };
    let rx = st.ringing.subscribe();
    let all = a.permissions.contains(&Permission::CrmAdmin);
    let state =
        PopStream { st: st.clone(), ext, all, rx, permit, deadline: stream_deadline(), hello_sent: false };
    let events = futures_util::stream::unfold(state, next_pop);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_cut_at_its_references_with_their_links() {
        let mut chat = Chat::new();
        let m =
            chat.post("201", Target::Everyone, "お客様 #C7 と #T12 です", false, false, 1).unwrap().clone();
        let p = parts(&m);
        assert_eq!(p.len(), 5);
        assert_eq!(p[0]["text"], "お客様 ");
        assert_eq!((p[1]["ref"].as_str(), p[1]["url"].as_str()), (Some("#C7"), Some("crm.html#customer=7")));
        assert_eq!(p[3]["url"], "crm.html#case=12");
        assert_eq!(p[4]["text"], " です");
        let plain = chat.post("201", Target::Everyone, "no refs", false, false, 2).unwrap().clone();
        assert_eq!(parts(&plain), vec![json!({ "text": "no refs" })]);
    }
}
