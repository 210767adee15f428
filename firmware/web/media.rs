//! Voicemail and call recordings in `/api/v1/` (issue 7; seed 001 call recording, seed 004
//! §2.18 voicemail): search, play (with `Range`), download, delete, and a day's recordings as
//! one zip.
//!
//! Who sees what (`docs/web.md`):
//! - `history_view` (admin, supervisor): every box and every recording; only they delete
//!   recordings;
//! - `media_own` (agent): the voicemail box of the extension bound to the user (and may delete
//!   its messages), and the recordings of calls that extension took part in (read only).
//!
//! Anything else is 404 (not 403), so a user cannot probe which messages exist.
//!
//! The engine owns voicemail state: listing and deleting ask the daemon through
//! [`WebQuery::Voicemail`] and [`WebQuery::VoicemailDelete`], which delete the way the phone
//! menu does and update MWI. Recordings are plain files under `<data>/recordings/YYYYMMDD/`
//! (`store::recordings`); who was on a call comes from its CDR. Audio is streamed from a
//! blocking reader in chunks of [`CHUNK_BYTES`]; nothing loads a whole file or a day in RAM.
//!
//! The zip is written here (about 100 lines) rather than with a crate: WAV does not compress,
//! so a stored zip is enough, and the crates that stream (`async_zip`) pull in a compression
//! stack the box never uses. It is a plain zip (no zip64): a day over [`MAX_ZIP_BYTES`] or
//! [`MAX_ZIP_ENTRIES`] is refused with a field error.

use super::api::{ApiError, ApiResult, Authed, State, ENGINE_QUERY_TIMEOUT};
use super::auth::Permission;
use super::WebQuery;
use crate::apps::voicemail::mailbox::{BoxNumber, Counts, Folder, MessageId, MessageMeta};
use crate::engine::cdr::CdrRecord;
use crate::store::Store;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// Bytes read and sent at a time: a few network packets' worth keeps syscalls few and RAM per
/// download small.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks queued between the file reader and the connection; with [`CHUNK_BYTES`] this bounds
/// a download's RAM to 256 KiB.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Most rows a search returns: a page of results, and a bound on the CDR look-ups per request.
pub const MAX_LISTED: usize = 500;

/// Most recording files a filtered search looks at (each costs a CDR read): twenty pages, so
/// a rare caller is still found among a month of a busy box's calls within a second or so.
pub const MAX_WALKED: usize = 20 * MAX_LISTED;

/// Most days a recordings search walks: a year (the retention limit is 30 days by default).
pub const MAX_SEARCH_DAYS: usize = 366;

/// Largest zip: the plain zip format counts offsets in 32 bits (no zip64 written).
pub const MAX_ZIP_BYTES: u64 = u32::MAX as u64;

/// Most files in one zip: the plain zip format counts entries in 16 bits.
pub const MAX_ZIP_ENTRIES: usize = u16::MAX as usize;

/// Longest search text (caller number fragment).
const MAX_QUERY_CHARS: usize = 32;

/// What the handlers need besides the shared state: the store (CDRs) and the recordings.
pub(super) struct Media {
    store: Store,
    recordings: PathBuf,
}

impl Media {
    pub(super) fn new(store: Store, recordings: PathBuf) -> Media {
        Media { store, recordings }
    }
}

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/voicemail", get(list_voicemail)),
        ("/api/v1/voicemail/{box}/{id}", get(voicemail_audio).delete(delete_voicemail)),
        ("/api/v1/recordings", get(list_recordings)),
        ("/api/v1/recordings/zip", get(zip_day)),
        ("/api/v1/recordings/{day}/{file}", get(recording_audio).delete(delete_recording)),
        ("/api/v1/alarms", get(list_alarms)),
    ]
}

/// What a user may see: everything, or one extension's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    All,
    Own(String),
}

fn scope(a: &Authed) -> Result<Scope, ApiError> {
    if a.permissions.contains(&Permission::HistoryView) {
        return Ok(Scope::All);
    }
    match (&a.user.extension, a.permissions.contains(&Permission::MediaOwn)) {
        (Some(ext), true) => Ok(Scope::Own(ext.clone())),
        _ => Err(ApiError::forbidden()),
    }
}

/// Sends one query to the engine's owner and waits (bounded) for the answer.
async fn ask<T>(st: &State, make: impl FnOnce(oneshot::Sender<T>) -> WebQuery) -> Result<T, ApiError> {
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine_busy");
    let (tx, rx) = oneshot::channel();
    let ask_and_wait = async {
        st.engine.send(make(tx)).await.map_err(|_| busy())?;
        rx.await.map_err(|_| busy())
    };
    tokio::time::timeout(ENGINE_QUERY_TIMEOUT, ask_and_wait).await.map_err(|_| busy())?
}

/// A `YYYY-MM-DD` date as `YYYYMMDD`, checked.
fn parse_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return None;
    }
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!("{}{}{}", s.get(0..4)?, s.get(5..7)?, s.get(8..10)?))
}

/// The search filters common to both lists, checked.
#[derive(Debug, Default)]
struct Filters {
    from: Option<String>,
    to: Option<String>,
    caller: Option<String>,
}

fn filters(q: &BTreeMap<String, String>, errors: &mut BTreeMap<&'static str, String>) -> Filters {
    let mut f = Filters::default();
    for (key, slot) in [("from", &mut f.from), ("to", &mut f.to)] {
        if let Some(v) = q.get(key).filter(|v| !v.is_empty()) {
            match parse_date(v) {
                Some(d) => *slot = Some(d),
                None => {
                    errors.insert(key, "a date YYYY-MM-DD".into());
                }
            }
        }
    }
    if let (Some(a), Some(b)) = (&f.from, &f.to) {
        if a > b {
            errors.insert("to", "not before from".into());
        }
    }
    if let Some(v) = q.get("caller").filter(|v| !v.is_empty()) {
        if v.chars().count() > MAX_QUERY_CHARS || !v.chars().all(|c| c.is_ascii_digit() || "+*#".contains(c))
        {
            errors.insert("caller", format!("digits, + * #, at most {MAX_QUERY_CHARS}"));
        } else {
            f.caller = Some(v.clone());
        }
    }
    f
}

fn unknown_keys(q: &BTreeMap<String, String>, known: &[&str], errors: &mut BTreeMap<&'static str, String>) {
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        errors.insert("query", format!("unknown parameter {k}; known: {}", known.join(", ")));
    }
}

impl Filters {
    fn day_in_range(&self, day: &str) -> bool {
        self.from.as_deref().is_none_or(|f| day >= f) && self.to.as_deref().is_none_or(|t| day <= t)
    }
}

fn folder_key(f: Folder) -> &'static str {
    match f {
        Folder::New => "new",
        Folder::Old => "old",
        Folder::Work => "work",
    }
}

fn message_json(m: &MessageMeta) -> Value {
    json!({
        "box": m.box_no.as_str(),
        "id": m.id.0,
        "caller": m.caller,
        "caller_name": m.caller_name,
        "received_ms": m.received_unix_ms,
        "duration_ms": m.duration_ms,
        "state": folder_key(m.folder),
        "url": format!("/api/v1/voicemail/{}/{}", m.box_no.as_str(), m.id.0),
    })
}

fn counts_json(c: Counts) -> Value {
    json!({ "new": c.new, "old": c.old, "work": c.work, "total": c.total() })
}

async fn list_voicemail(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let scope = scope(&a)?;
    let mut errors = BTreeMap::new();
    unknown_keys(&q, &["box", "from", "to", "caller", "state"], &mut errors);
    let f = filters(&q, &mut errors);
    let box_no = match q.get("box").filter(|v| !v.is_empty()) {
        Some(b) => match BoxNumber::parse(b) {
            Some(b) => Some(b),
            None => {
                errors.insert("box", "a box number (digits)".into());
                None
            }
        },
        None => None,
    };
    let state = match q.get("state").map(String::as_str).filter(|v| !v.is_empty()) {
        None | Some("all") => None,
        Some("new") => Some(Folder::New),
        Some("old") => Some(Folder::Old),
        Some("work") => Some(Folder::Work),
        Some(_) => {
            errors.insert("state", "one of all, new, old, work".into());
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let all = ask(&st, WebQuery::Voicemail).await?;
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut rows = Vec::new();
    for (m, _) in &all {
        if let Scope::Own(ext) = &scope {
            if m.box_no.as_str() != ext {
                continue;
            }
        }
        if box_no.as_ref().is_some_and(|b| *b != m.box_no) {
            continue;
        }
        counts.entry(m.box_no.as_str().to_string()).or_default().add(m.folder, 1);
        let day = crate::store::recordings::yyyymmdd(m.received_unix_ms);
        if !f.day_in_range(&day)
            || state.is_some_and(|s| s != m.folder)
            || f.caller.as_deref().is_some_and(|c| !m.caller.contains(c))
        {
            continue;
        }
        rows.push(m.clone());
    }
    // At most boxes x `MAX_MESSAGES_PER_BOX` rows: sorting all before cutting is bounded.
    rows.sort_by(|a, b| b.received_unix_ms.cmp(&a.received_unix_ms).then(b.id.cmp(&a.id)));
    rows.truncate(MAX_LISTED);
    let counts: BTreeMap<String, Value> = counts.into_iter().map(|(b, c)| (b, counts_json(c))).collect();
    let messages: Vec<Value> = rows.iter().map(message_json).collect();
    Ok(Json(json!({ "messages": messages, "counts": counts, "limit": MAX_LISTED })).into_response())
}

/// The message `box`/`id` the user may see, with its file.
async fn find_message(
    st: &State,
    a: &Authed,
    box_no: &str,
    id: &str,
) -> Result<(MessageMeta, PathBuf), ApiError> {
    let scope = scope(a)?;
    let (Some(box_no), Ok(id)) = (BoxNumber::parse(box_no), id.parse::<u64>()) else {
        return Err(ApiError::not_found());
    };
    if let Scope::Own(ext) = &scope {
        if box_no.as_str() != ext {
            return Err(ApiError::not_found());
        }
    }
    let all = ask(st, WebQuery::Voicemail).await?;
    all.into_iter().find(|(m, _)| m.box_no == box_no && m.id.0 == id).ok_or_else(ApiError::not_found)
}

async fn voicemail_audio(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((box_no, id)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let (meta, path) = find_message(&st, &a, &box_no, &id).await?;
    send_file(path, &headers, &meta.file, q.contains_key("download")).await
}

async fn delete_voicemail(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((box_no, id)): Path<(String, String)>,
) -> ApiResult {
    let (meta, _) = find_message(&st, &a, &box_no, &id).await?;
    let target = format!("{}/{}", meta.box_no.as_str(), meta.id.0);
    let (box_no, id) = (meta.box_no.clone(), MessageId(meta.id.0));
    let deleted = ask(&st, |reply| WebQuery::VoicemailDelete { box_no, id, reply }).await?;
    match deleted {
        Ok(true) => {
            st.record(a.audit("voicemail.delete", &target, format!("caller {}", meta.caller))).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Ok(false) => Err(ApiError::not_found()),
        Err(e) => {
            log::warn!("web: deleting voicemail {target} failed: {e}");
            Err(ApiError::internal())
        }
    }
}

/// A recording's id: `YYYYMMDD` and `call-<id>[-<n>].wav`, checked so a path can be joined.
fn recording_name(day: &str, file: &str) -> Option<u64> {
    if day.len() != 8 || !day.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let stem = file.strip_prefix("call-")?.strip_suffix(".wav")?;
    let (id, n) = match stem.split_once('-') {
        Some((id, n)) => (id, Some(n)),
        None => (stem, None),
    };
    let ok = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(id) || n.is_some_and(|n| !ok(n)) {
        return None;
    }
    id.parse().ok()
}

/// Whether extension `ext` was on the call: its caller, the number dialled, or a party a
/// transfer or park brought in or took out. Not matched (open problem, `docs/web.md`): a ring
/// group or queue member who answered a call to the group's number, as the CDR names only
/// the number; `history_view` users see those.
fn took_part(cdr: &CdrRecord, ext: &str) -> bool {
    cdr.from == ext || cdr.to == ext || cdr.rewires.iter().any(|r| r.replaced == ext || r.by == ext)
}

/// One recording found on disk.
#[derive(Debug, Clone)]
struct Found {
    day: String,
    file: String,
    path: PathBuf,
    bytes: u64,
    modified_ms: u64,
}

/// Recordings of the days in range, newest day first, at most `limit` (blocking).
fn walk_recordings(dir: &std::path::Path, f: &Filters, limit: usize) -> io::Result<Vec<Found>> {
    let mut days: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) && f.day_in_range(d))
        .collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.truncate(MAX_SEARCH_DAYS);
    let mut out = Vec::new();
    for day in days {
        let Ok(entries) = std::fs::read_dir(dir.join(&day)) else { continue };
        let mut files: Vec<Found> = entries
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                recording_name(&day, &file)?;
                let meta = e.metadata().ok()?;
                let modified_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                    .unwrap_or(0);
                Some(Found { day: day.clone(), file, path: e.path(), bytes: meta.len(), modified_ms })
            })
            .collect();
        files.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms).then(b.file.cmp(&a.file)));
        for found in files {
            if out.len() >= limit {
                return Ok(out);
            }
            out.push(found);
        }
    }
    Ok(out)
}

fn recording_json(r: &Found, cdr: Option<&CdrRecord>) -> Value {
    json!({
        "id": format!("{}/{}", r.day, r.file),
        "day": r.day,
        "file": r.file,
        "bytes": r.bytes,
        "modified_ms": r.modified_ms,
        "call_id": recording_name(&r.day, &r.file),
        "caller": cdr.map(|c| c.from.clone()),
        "callee": cdr.map(|c| c.to.clone()),
        "start_ms": cdr.map(|c| c.start_ms),
        "talk_ms": cdr.map(|c| c.talk_duration_ms),
        "trunk": cdr.and_then(|c| c.trunk.clone()),
        "url": format!("/api/v1/recordings/{}/{}", r.day, r.file),
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        log::error!("web: media task failed: {e}");
        ApiError::internal()
    })
}

async fn list_recordings(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let scope = scope(&a)?;
    let mut errors = BTreeMap::new();
    unknown_keys(&q, &["from", "to", "caller", "extension"], &mut errors);
    let f = filters(&q, &mut errors);
    let extension = q.get("extension").filter(|v| !v.is_empty()).cloned();
    if let Some(e) = &extension {
        if let Err(m) = super::api::check_extension(e) {
            errors.insert("extension", m);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let dir = st.media.recordings.clone();
    let store = st.media.store.clone();
    let rows = blocking(move || -> io::Result<Vec<Value>> {
        // Filtering needs the CDR, so walk more than a page when a filter is set.
        let filtered = f.caller.is_some() || extension.is_some() || scope != Scope::All;
        let walk_limit = if filtered { MAX_WALKED } else { MAX_LISTED };
        let mut out = Vec::new();
        for r in walk_recordings(&dir, &f, walk_limit)? {
            if out.len() >= MAX_LISTED {
                break;
            }
            let cdr = recording_name(&r.day, &r.file).and_then(|id| store.cdr(id).ok().flatten());
            let keep =
                match (&scope, cdr.as_ref()) {
                    (Scope::Own(ext), Some(c)) => took_part(c, ext),
                    (Scope::Own(_), None) => false,
                    (Scope::All, _) => true,
                } && f.caller.as_deref().is_none_or(|n| cdr.as_ref().is_some_and(|c| c.from.contains(n)))
                    && extension.as_deref().is_none_or(|e| cdr.as_ref().is_some_and(|c| took_part(c, e)));
            if keep {
                out.push(recording_json(&r, cdr.as_ref()));
            }
        }
        Ok(out)
    })
    .await?
    .map_err(|e| {
        log::warn!("web: listing recordings failed: {e}");
        crate::alarms::global().raise(
            "recording",
            crate::alarms::Severity::Warning,
            &format!("cannot list recordings: {e}"),
        );
        ApiError::internal()
    })?;
    Ok(Json(json!({ "recordings": rows, "limit": MAX_LISTED })).into_response())
}

/// The recording `day`/`file` the user may see.
async fn find_recording(st: &State, a: &Authed, day: &str, file: &str) -> Result<PathBuf, ApiError> {
    let scope = scope(a)?;
    let call_id = recording_name(day, file).ok_or_else(ApiError::not_found)?;
    let path = st.media.recordings.join(day).join(file);
    let store = st.media.store.clone();
    let (exists, cdr) = blocking(move || (path.is_file(), store.cdr(call_id).ok().flatten())).await?;
    let allowed = match &scope {
        Scope::All => true,
        Scope::Own(ext) => cdr.as_ref().is_some_and(|c| took_part(c, ext)),
    };
    if !exists || !allowed {
        return Err(ApiError::not_found());
    }
    Ok(st.media.recordings.join(day).join(file))
}

async fn recording_audio(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((day, file)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let path = find_recording(&st, &a, &day, &file).await?;
    send_file(path, &headers, &format!("{day}-{file}"), q.contains_key("download")).await
}

async fn delete_recording(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((day, file)): Path<(String, String)>,
) -> ApiResult {
    let path = find_recording(&st, &a, &day, &file).await?;
    a.require(Permission::HistoryView)?;
    match blocking(move || std::fs::remove_file(&path)).await? {
        Ok(()) => {
            st.record(a.audit("recording.delete", &format!("{day}/{file}"), String::new())).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ApiError::not_found()),
        Err(e) => {
            log::warn!("web: deleting recording {day}/{file} failed: {e}");
            crate::alarms::global().raise(
                "recording",
                crate::alarms::Severity::Warning,
                &format!("cannot delete recording {day}/{file}: {e}"),
            );
            Err(ApiError::internal())
        }
    }
}

/// Fill level of the filesystem holding `dir`: (total bytes, free bytes for us).
fn storage(dir: &std::path::Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some((st.f_blocks.saturating_mul(st.f_frsize), st.f_bavail.saturating_mul(st.f_frsize)))
}

/// Bytes this process caused to be written to the block device since start (`write_bytes`
/// of `/proc/self/io`): what the box costs the flash, whatever wrote it.
fn flash_written() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    text.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok())
}

/// The dashboard's trunks, storage and alarms (merged into `GET /dashboard` by `api`). A
/// storage level at or above `store::recordings::ALARM_USED_PERCENT` raises the `storage`
/// alarm here too, so the dashboard never shows a full disk without it.
pub(super) async fn dashboard_extra(st: &State) -> serde_json::Map<String, Value> {
    let trunks = ask(st, WebQuery::Trunks).await.ok();
    let dir = st.media.recordings.clone();
    let (space, written) = blocking(move || (storage(&dir), flash_written())).await.unwrap_or((None, None));
    let storage = space.map(|(total, free)| {
        let used = total.saturating_sub(free);
        let percent = if total == 0 { 0 } else { (u128::from(used) * 100 / u128::from(total)) as u64 };
        let alarms = crate::alarms::global();
        if percent >= u64::from(crate::store::recordings::ALARM_USED_PERCENT) {
            alarms.raise(
                "storage",
                crate::alarms::Severity::Warning,
                &format!("data partition {percent} % full"),
            );
        } else {
            alarms.clear("storage");
        }
        json!({ "total_bytes": total, "free_bytes": free, "used_percent": percent })
    });
    let mut m = serde_json::Map::new();
    m.insert("trunks".into(), json!(trunks));
    m.insert("storage".into(), json!(storage));
    m.insert("flash_written_bytes".into(), json!(written));
    m.insert("alarms".into(), json!(crate::alarms::global().list()));
    m
}

async fn list_alarms(a: Authed) -> ApiResult {
    a.require(Permission::DashboardView)?;
    Ok(Json(json!({ "alarms": crate::alarms::global().list() })).into_response())
}

// ---------------------------------------------------------------------------------------------
// Streaming files.

/// The chunks a blocking reader sends, as a body stream.
struct Chunks(mpsc::Receiver<io::Result<Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Runs `produce` on a blocking thread; what it sends is the body. It stops when the client
/// goes (the send fails).
fn stream_body(produce: impl FnOnce(&mpsc::Sender<io::Result<Bytes>>) + Send + 'static) -> Body {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || produce(&tx));
    Body::from_stream(Chunks(rx))
}

/// Sends `len` bytes of `file` from where it stands; false when the client went or reading
/// failed (the error is sent, which cuts the response).
fn pump(
    file: &mut impl Read,
    mut len: u64,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    mut seen: impl FnMut(&[u8]),
) -> bool {
    let mut buf = vec![0u8; CHUNK_BYTES];
    while len > 0 {
        let want = usize::try_from(len).unwrap_or(CHUNK_BYTES).min(CHUNK_BYTES);
        let Some(slot) = buf.get_mut(..want) else { return false };
        match file.read(slot) {
            Ok(0) => {
                let _ = tx.blocking_send(Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank")));
                return false;
            }
            Ok(n) => {
                let chunk = slot.get(..n).unwrap_or_default();
                seen(chunk);
                if tx.blocking_send(Ok(Bytes::copy_from_slice(chunk))).is_err() {
                    return false;
                }
                len -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return false;
            }
        }
    }
    true
}

/// One `Range: bytes=...` over a file of `len` bytes: `Ok(None)` = whole file (no header, or a
/// form we do not serve, such as several ranges: RFC 9110 §14.2 lets a server ignore it),
/// `Err(())` = unsatisfiable (416).
fn parse_range(h: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A WAV file as `audio/wav`, with `Range` and `Content-Length`; `download` asks the browser to
/// save it as `name`.
async fn send_file(path: PathBuf, headers: &HeaderMap, name: &str, download: bool) -> ApiResult {
    let p = path.clone();
    let len = match blocking(move || std::fs::metadata(&p)).await? {
        Ok(m) if m.is_file() => m.len(),
        _ => return Err(ApiError::not_found()),
    };
    let range = parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len);
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    let disposition = if download { "attachment" } else { "inline" };
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    resp_headers
        .insert(header::CONTENT_DISPOSITION, header_value(&format!("{disposition}; filename=\"{safe}\"")));
    let (status, start, count) = match range {
        Err(()) => {
            resp_headers.insert(header::CONTENT_RANGE, header_value(&format!("bytes */{len}")));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, resp_headers).into_response());
        }
        Ok(None) => (StatusCode::OK, 0, len),
        Ok(Some((a, b))) => {
            resp_headers.insert(header::CONTENT_RANGE, header_value(&format!("bytes {a}-{b}/{len}")));
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
    };
    resp_headers.insert(header::CONTENT_LENGTH, header_value(&count.to_string()));
    let body = stream_body(move |tx| {
        let opened = std::fs::File::open(&path).and_then(|mut f| f.seek(SeekFrom::Start(start)).map(|_| f));
        match opened {
            Ok(mut f) => {
                pump(&mut f, count, tx, |_| {});
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    Ok((status, resp_headers, body).into_response())
}

// ---------------------------------------------------------------------------------------------
// The day's zip.

async fn zip_day(
    AxState(st): AxState<Arc<State>>,
    method: axum::http::Method,
    a: Authed,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let scope = scope(&a)?;
    let mut errors = BTreeMap::new();
    unknown_keys(&q, &["date"], &mut errors);
    let day = q.get("date").and_then(|d| parse_date(d));
    if day.is_none() {
        errors.insert("date", "a date YYYY-MM-DD".into());
    }
    let Some(day) = day.filter(|_| errors.is_empty()) else { return Err(ApiError::fields(errors)) };
    let dir = st.media.recordings.clone();
    let store = st.media.store.clone();
    let f = Filters { from: Some(day.clone()), to: Some(day.clone()), caller: None };
    let files = blocking(move || -> io::Result<Vec<Found>> {
        let all = walk_recordings(&dir, &f, MAX_ZIP_ENTRIES + 1)?;
        Ok(all
            .into_iter()
            .filter(|r| match &scope {
                Scope::All => true,
                Scope::Own(ext) => recording_name(&r.day, &r.file)
                    .and_then(|id| store.cdr(id).ok().flatten())
                    .is_some_and(|c| took_part(&c, ext)),
            })
            .collect())
    })
    .await?
    .map_err(|e| {
        log::warn!("web: listing recordings failed: {e}");
        ApiError::internal()
    })?;
    let entries: Vec<zip::Entry> = files
        .iter()
        .map(|r| zip::Entry {
            name: format!("{}/{}", r.day, r.file),
            size: r.bytes,
            modified_ms: r.modified_ms,
        })
        .collect();
    let Some(total) = zip::total_size(&entries) else {
        let msg = format!(
            "more than {MAX_ZIP_ENTRIES} files or {MAX_ZIP_BYTES} bytes; download the files one by one"
        );
        return Err(ApiError::fields(BTreeMap::from([("date", msg)])));
    };
    // A HEAD (a client asking the size) downloads nothing: not audited.
    if method != axum::http::Method::HEAD {
        st.record(a.audit("recording.zip", &day, format!("{} file(s)", entries.len()))).await;
    }
    let paths: Vec<PathBuf> = files.into_iter().map(|r| r.path).collect();
    let body = stream_body(move |tx| zip::write(&entries, &paths, tx));
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(header::CONTENT_LENGTH, header_value(&total.to_string()));
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!("attachment; filename=\"recordings-{day}.zip\"")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok((StatusCode::OK, h, body).into_response())
}

/// A streaming writer of stored (uncompressed) zips: sizes are known up front (the files'
/// lengths), the CRC-32 follows each file in a data descriptor (general-purpose flag bit 3), so
/// each file is read once.
mod zip {
    use super::{io, mpsc, pump, Bytes, PathBuf};

    const LOCAL_SIG: u32 = 0x0403_4b50;
    const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
    const CENTRAL_SIG: u32 = 0x0201_4b50;
    const END_SIG: u32 = 0x0605_4b50;
    /// 2.0: the version that reads stored entries with a data descriptor.
    const VERSION: u16 = 20;
    /// Bit 3 (CRC in a data descriptor) and bit 11 (names are UTF-8).
    const FLAGS: u16 = 0x0008 | 0x0800;
    const LOCAL_FIXED: u64 = 30;
    const DESCRIPTOR: u64 = 16;
    const CENTRAL_FIXED: u64 = 46;
    const END: u64 = 22;

    /// One file of the zip.
    pub(super) struct Entry {
        pub(super) name: String,
        pub(super) size: u64,
        pub(super) modified_ms: u64,
    }

    /// The zip's exact size, or `None` when it needs zip64.
    pub(super) fn total_size(entries: &[Entry]) -> Option<u64> {
        if entries.len() > super::MAX_ZIP_ENTRIES {
            return None;
        }
        let mut total = END;
        for e in entries {
            let name = e.name.len() as u64;
            total = total.checked_add(LOCAL_FIXED + name + e.size + DESCRIPTOR + CENTRAL_FIXED + name)?;
        }
        (total <= super::MAX_ZIP_BYTES).then_some(total)
    }

    /// The byte-at-a-time table of CRC-32 (IEEE, reflected), built at compile time: a table
    /// step per byte instead of eight bit steps (bitwise, a debug build zipped 7 MB/s).
    const CRC_TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };

    /// CRC-32 (IEEE), the zip checksum, continued over `bytes`.
    pub(super) fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
        let mut c = !crc;
        for &b in bytes {
            // The index is one byte: always inside the 256-entry table.
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        !c
    }

    /// MS-DOS time and date (UTC) of a Unix time in ms.
    fn dos_time(unix_ms: u64) -> (u16, u16) {
        use crate::apps::timerules::{LocalTime, UtcOffset};
        let t = LocalTime::from_unix_ms(unix_ms, UtcOffset::UTC);
        let secs_of_day = (unix_ms / 1000) % 60;
        let time = (t.minute_of_day / 60) << 11 | (t.minute_of_day % 60) << 5 | (secs_of_day as u16 / 2);
        let year = u16::try_from(t.date.year.clamp(1980, 2107) - 1980).unwrap_or(0);
        let date = year << 9 | u16::from(t.date.month) << 5 | u16::from(t.date.day);
        (time, date)
    }

    fn u16le(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    fn u32le(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    /// Sizes and offsets below fit 32 bits: `total_size` checked the whole zip does.
    fn n32(v: u64) -> u32 {
        u32::try_from(v).unwrap_or(u32::MAX)
    }

    pub(super) fn local_header(e: &Entry) -> Vec<u8> {
        let (time, date) = dos_time(e.modified_ms);
        let mut h = Vec::with_capacity(LOCAL_FIXED as usize + e.name.len());
        u32le(&mut h, LOCAL_SIG);
        u16le(&mut h, VERSION);
        u16le(&mut h, FLAGS);
        u16le(&mut h, 0); // stored
        u16le(&mut h, time);
        u16le(&mut h, date);
        u32le(&mut h, 0); // CRC: in the descriptor
        u32le(&mut h, n32(e.size));
        u32le(&mut h, n32(e.size));
        u16le(&mut h, e.name.len() as u16);
        u16le(&mut h, 0);
        h.extend_from_slice(e.name.as_bytes());
        h
    }

    pub(super) fn descriptor(crc: u32, size: u64) -> Vec<u8> {
        let mut h = Vec::with_capacity(DESCRIPTOR as usize);
        u32le(&mut h, DESCRIPTOR_SIG);
        u32le(&mut h, crc);
        u32le(&mut h, n32(size));
        u32le(&mut h, n32(size));
        h
    }

    /// The central directory and its end record, for entries with these CRCs and offsets.
    pub(super) fn central(entries: &[Entry], crcs: &[u32], offsets: &[u64], cd_offset: u64) -> Vec<u8> {
        let mut h = Vec::new();
        for ((e, crc), off) in entries.iter().zip(crcs).zip(offsets) {
            let (time, date) = dos_time(e.modified_ms);
            u32le(&mut h, CENTRAL_SIG);
            u16le(&mut h, VERSION);
            u16le(&mut h, VERSION);
            u16le(&mut h, FLAGS);
            u16le(&mut h, 0);
            u16le(&mut h, time);
            u16le(&mut h, date);
            u32le(&mut h, *crc);
            u32le(&mut h, n32(e.size));
            u32le(&mut h, n32(e.size));
            u16le(&mut h, e.name.len() as u16);
            u16le(&mut h, 0); // extra
            u16le(&mut h, 0); // comment
            u16le(&mut h, 0); // disk
            u16le(&mut h, 0); // internal attributes
            u32le(&mut h, 0); // external attributes
            u32le(&mut h, n32(*off));
            h.extend_from_slice(e.name.as_bytes());
        }
        let cd_size = h.len() as u64;
        let n = u16::try_from(entries.len()).unwrap_or(u16::MAX);
        u32le(&mut h, END_SIG);
        u16le(&mut h, 0);
        u16le(&mut h, 0);
        u16le(&mut h, n);
        u16le(&mut h, n);
        u32le(&mut h, n32(cd_size));
        u32le(&mut h, n32(cd_offset));
        u16le(&mut h, 0);
        h
    }

    /// Writes the zip of `entries` (read from `paths`) to `tx`; stops at the first error (sent,
    /// which cuts the response: a client sees a broken download, not a wrong file).
    pub(super) fn write(entries: &[Entry], paths: &[PathBuf], tx: &mpsc::Sender<io::Result<Bytes>>) {
        let mut offset = 0u64;
        let mut crcs = Vec::with_capacity(entries.len());
        let mut offsets = Vec::with_capacity(entries.len());
        for (e, path) in entries.iter().zip(paths) {
            offsets.push(offset);
            let header = local_header(e);
            offset += header.len() as u64;
            if tx.blocking_send(Ok(Bytes::from(header))).is_err() {
                return;
            }
            let mut file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(err) => {
                    let _ = tx.blocking_send(Err(err));
                    return;
                }
            };
            let mut crc = 0u32;
            if !pump(&mut file, e.size, tx, |chunk| crc = crc32_update(crc, chunk)) {
                return;
            }
            offset += e.size;
            let d = descriptor(crc, e.size);
            offset += d.len() as u64;
            crcs.push(crc);
            if tx.blocking_send(Ok(Bytes::from(d))).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(Ok(Bytes::from(central(entries, &crcs, &offsets, offset))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_is_the_zip_checksum() {
        assert_eq!(zip::crc32_update(0, b"123456789"), 0xCBF4_3926);
        let split = zip::crc32_update(zip::crc32_update(0, b"12345"), b"6789");
        assert_eq!(split, 0xCBF4_3926, "chunked the same as whole");
    }

    #[test]
    fn a_streamed_zip_has_the_announced_size_and_opens() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.wav");
        std::fs::write(&a, b"RIFF....WAVEdata").unwrap();
        let b = dir.path().join("b.wav");
        std::fs::write(&b, vec![7u8; CHUNK_BYTES + 10]).unwrap();
        let entries = vec![
            zip::Entry { name: "20261122/call-1.wav".into(), size: 16, modified_ms: 1_795_305_600_000 },
            zip::Entry { name: "20261122/call-2.wav".into(), size: CHUNK_BYTES as u64 + 10, modified_ms: 0 },
        ];
        let total = zip::total_size(&entries).unwrap();
        let (tx, mut rx) = mpsc::channel(1024);
        zip::write(&entries, &[a, b], &tx);
        drop(tx);
        let mut out = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            out.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(out.len() as u64, total);
        assert_eq!(&out[..4], b"PK\x03\x04");
        assert_eq!(&out[out.len() - 22..out.len() - 18], b"PK\x05\x06");
        let path = dir.path().join("t.zip");
        std::fs::write(&path, &out).unwrap();
        if std::process::Command::new("unzip").arg("-v").output().is_ok() {
            let t = std::process::Command::new("unzip").arg("-t").arg(&path).output().unwrap();
            assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stdout));
        }
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(parse_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(parse_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=5-1"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=x-1"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None), "several ranges: whole file");
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
    }

    #[test]
    fn only_well_formed_recording_names_are_accepted() {
        assert_eq!(recording_name("20261122", "call-17.wav"), Some(17));
        assert_eq!(recording_name("20261122", "call-17-2.wav"), Some(17));
        assert_eq!(recording_name("20261122", "../x.wav"), None);
        assert_eq!(recording_name("2026112", "call-1.wav"), None);
        assert_eq!(recording_name("20261122", "call-.wav"), None);
        assert_eq!(recording_name("20261122", "call-1-.wav"), None);
        assert_eq!(recording_name("..", "call-1.wav"), None);
    }

    #[test]
    fn a_party_brought_in_by_a_transfer_took_part_in_the_call() {
        let cdr: CdrRecord = serde_json::from_value(json!({
            "call_id": 1, "from": "201", "to": "202", "start_ms": 0, "ring_ms": null, "answer_ms": null,
            "end_ms": 0, "disposition": "ANSWERED", "ring_duration_ms": 0, "talk_duration_ms": 0,
            "total_duration_ms": 0, "hangup_side": "caller", "cause": "BYE", "final_status": 200, "legs": [],
            "rewires": [{ "at_ms": 0, "kind": "blind transfer", "side": "b", "replaced": "202", "by": "205" }],
        }))
        .unwrap();
        for ext in ["201", "202", "205"] {
            assert!(took_part(&cdr, ext), "{ext}");
        }
        assert!(!took_part(&cdr, "203"));
    }

    #[test]
    fn dates_are_checked() {
        assert_eq!(parse_date("2026-11-22").as_deref(), Some("20261122"));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-1-01"), None);
        assert_eq!(parse_date("２０２６-11-22"), None);
    }
}
