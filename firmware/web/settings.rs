//! The settings part of `/api/v1/` (issue 7): the configuration document, edited one section
//! at a time, applied to the running engine without a restart.
//!
//! - `GET /api/v1/config`: the whole document as JSON, secrets as `"********"`.
//! - `PUT /api/v1/config/{section}`: replaces one top-level key (`extension`, `trunk`, `did`,
//!   `ivr`, `ring_group`, `queue`, `acd`, `smtp`, `chat`…; `config::document::SECTIONS`). A
//!   secret sent back masked keeps its stored value; `null` removes the section. The server
//!   builds the whole new document, validates it with the same parser as `--config`
//!   (`config::parse_str`), saves it atomically (`<data>/config/current.toml`, the previous one
//!   as `previous.toml`) and asks the daemon to apply it (`WebQuery::Reconfigure`). A refused
//!   document answers 400 `{"error":"invalid","message":..,"fields":{"extension[1].number":..}}`
//!   with the parser's field path (1-based indices, as in the file).
//!
//! - `GET /api/v1/audio`, `PUT /api/v1/audio/{name}` (a WAV body, converted to 8 kHz 16-bit
//!   mono as the console's `audio import` does), `DELETE /api/v1/audio/{name}`: the admin audio
//!   files under `<data>/audio/` (music on hold, queue greetings, announcements).
//!
//! All need `settings_edit`; every save is audited (`config.update`, the section's name, never
//! its values; `audio.upload`, `audio.delete`).

use super::api::{parse, ApiError, ApiResult, Authed, State, ENGINE_QUERY_TIMEOUT};
use super::auth::Permission;
use super::WebQuery;
use crate::config::document::{self, RunningDocument, SectionError};
use crate::engine::ReconfigureReport;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, put, MethodRouter};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Largest section body: the whole config file's cap (`config` reads at most 1 MiB), since
/// the `extension` section of a full office (500 phones) is beyond the global 64 KiB.
pub(super) const MAX_SECTION_BYTES: usize = 1024 * 1024;

/// Largest audio upload: 10 MiB is about 11 minutes of 8 kHz 16-bit WAV, more than any prompt
/// or hold tune; the body is held in RAM while it is converted.
pub(super) const MAX_AUDIO_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// Longest audio file name in characters (as the console's `audio import`).
const MAX_AUDIO_NAME: usize = 64;

/// One edit at a time: two saves racing would each start from the same document and the
/// second would undo the first.
static EDIT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/config", get(get_config)),
        (
            "/api/v1/config/{section}",
            put(put_section).layer(axum::extract::DefaultBodyLimit::max(MAX_SECTION_BYTES)),
        ),
        ("/api/v1/audio", get(list_audio)),
        (
            "/api/v1/audio/{name}",
            put(put_audio)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_AUDIO_UPLOAD_BYTES))
                .delete(delete_audio),
        ),
    ]
}

/// Sends one query to the engine's owner and waits for the answer (503 when it does not come).
async fn ask<T>(st: &State, make: impl FnOnce(oneshot::Sender<T>) -> WebQuery) -> Result<T, ApiError> {
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine_busy");
    let (tx, rx) = oneshot::channel();
    let ask_and_wait = async {
        st.engine.send(make(tx)).await.map_err(|_| busy())?;
        rx.await.map_err(|_| busy())
    };
    tokio::time::timeout(ENGINE_QUERY_TIMEOUT, ask_and_wait).await.map_err(|_| busy())?
}

fn invalid(message: String, fields: serde_json::Map<String, Value>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: json!({ "error": "invalid", "message": message, "fields": fields }),
    }
}

async fn get_config(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let doc: RunningDocument = ask(&st, WebQuery::ConfigDocument).await?;
    let table = document::parse_table(&doc.text).map_err(|e| {
        log::error!("web: the running configuration is not TOML: {e}");
        ApiError::internal()
    })?;
    Ok(Json(document::to_json_masked(&table)).into_response())
}

/// The new document's text and parse, or the answer refusing it.
fn build(
    doc: &RunningDocument,
    section: &str,
    body: Value,
) -> Result<(String, crate::config::Config), ApiError> {
    let table = document::parse_table(&doc.text).map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: json!({ "error": "internal", "message": e }),
    })?;
    let new = document::replace_section(&table, section, body).map_err(|e| match e {
        SectionError::UnknownSection => ApiError::not_found(),
        SectionError::Stored(_) => ApiError::internal(),
        SectionError::NotToml(m) => {
            let mut fields = serde_json::Map::new();
            fields.insert(section.to_string(), Value::String(m.clone()));
            invalid(m, fields)
        }
    })?;
    let text = document::render(&new).map_err(|m| {
        let mut fields = serde_json::Map::new();
        fields.insert(section.to_string(), Value::String(m.clone()));
        invalid(m, fields)
    })?;
    match crate::config::parse_str(&text, "config") {
        Ok(config) => Ok((text, config)),
        Err(e) => {
            let mut fields = serde_json::Map::new();
            fields.insert(
                e.field.clone().unwrap_or_else(|| section.to_string()),
                Value::String(e.message.clone()),
            );
            Err(invalid(e.to_string(), fields))
        }
    }
}

fn report_json(r: &ReconfigureReport) -> Value {
    json!({
        "restart_required": !r.restart_required.is_empty(),
        "restart": r.restart_required,
        "registrations_dropped": r.registrations_dropped,
        "trunks_registering": r.trunks_registering,
        "trunks_removed": r.trunks_removed,
        "queues_deferred": r.queues_deferred,
    })
}

async fn put_section(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(section): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    if !document::SECTIONS.contains(&section.as_str()) {
        return Err(ApiError::not_found());
    }
    let value: Value = parse(&headers, &body)?;
    let _edit = EDIT.lock().await;
    let doc: RunningDocument = ask(&st, WebQuery::ConfigDocument).await?;
    let dir = doc.dir.clone();
    let sec = section.clone();
    let built = tokio::task::spawn_blocking(move || {
        let (text, config) = build(&doc, &sec, value)?;
        document::save(&dir, &text).map_err(|e| {
            log::error!("web: cannot save the configuration in {}: {e}", dir.display());
            ApiError::internal()
        })?;
        Ok::<_, ApiError>((text, config))
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let (text, config) = built;
    let config = Box::new(config);
    let report = ask(&st, |reply| WebQuery::Reconfigure { text, config, reply }).await?;
    let detail = if report.restart_required.is_empty() {
        "applied".to_string()
    } else {
        format!("saved; restart for {}", report.restart_required.join(", "))
    };
    st.record(a.audit("config.update", &section, detail)).await;
    Ok(Json(report_json(&report)).into_response())
}

/// `<data>/audio`, next to the configuration directory.
async fn audio_dir(st: &State) -> Result<std::path::PathBuf, ApiError> {
    let doc: RunningDocument = ask(st, WebQuery::ConfigDocument).await?;
    let data = doc.dir.parent().map(std::path::Path::to_path_buf).ok_or_else(ApiError::internal)?;
    Ok(data.join("audio"))
}

fn audio_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_AUDIO_NAME
        && !name.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        && !name.starts_with('.')
}

async fn list_audio(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let dir = audio_dir(&st).await?;
    let files = tokio::task::spawn_blocking(move || {
        let mut rows: Vec<(String, u64)> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let stem = name.strip_suffix(".wav")?.to_string();
                        (!stem.starts_with('.')).then(|| (stem, e.metadata().map(|m| m.len()).unwrap_or(0)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        rows.sort();
        rows
    })
    .await
    .map_err(|_| ApiError::internal())?;
    // 8 kHz 16-bit mono: 16,000 bytes a second after the 44-byte header.
    let files: Vec<Value> = files
        .iter()
        .map(|(n, b)| json!({ "name": n, "bytes": b, "seconds": b.saturating_sub(44) as f64 / 16_000.0 }))
        .collect();
    Ok(Json(json!({ "files": files })).into_response())
}

async fn put_audio(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    let wav = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| matches!(v.trim(), "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave"));
    if !wav {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: json!({ "error": "unsupported_media_type", "message": "send audio/wav" }),
        });
    }
    if !audio_name_ok(&name) {
        let mut fields = serde_json::Map::new();
        fields.insert(
            "name".into(),
            json!(format!("1-{MAX_AUDIO_NAME} characters, no `/`, `\\` or leading `.`")),
        );
        return Err(invalid("bad audio file name".into(), fields));
    }
    let dir = audio_dir(&st).await?;
    let stored = name.clone();
    let converted = tokio::task::spawn_blocking(move || {
        let pcm =
            crate::media::audio::wav::import_admin_audio(&body, MAX_AUDIO_UPLOAD_BYTES).map_err(|e| {
                let mut fields = serde_json::Map::new();
                fields.insert("file".into(), json!(e.to_string()));
                invalid(e.to_string(), fields)
            })?;
        let wav = crate::media::audio::wav::encode_pcm16_mono_8k(&pcm);
        std::fs::create_dir_all(&dir).map_err(|_| ApiError::internal())?;
        let target = dir.join(format!("{stored}.wav"));
        let tmp = dir.join(format!(".{stored}.wav.tmp"));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &wav).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            log::error!("web: cannot store {}: {e}", target.display());
            return Err(ApiError::internal());
        }
        Ok(pcm.len())
    })
    .await
    .map_err(|_| ApiError::internal())??;
    let seconds = converted as f64 / 8000.0;
    st.record(a.audit("audio.upload", &name, format!("{seconds:.1} s"))).await;
    Ok((StatusCode::CREATED, Json(json!({ "name": name, "seconds": seconds }))).into_response())
}

async fn delete_audio(AxState(st): AxState<Arc<State>>, a: Authed, Path(name): Path<String>) -> ApiResult {
    a.require(Permission::SettingsEdit)?;
    if !audio_name_ok(&name) {
        return Err(ApiError::not_found());
    }
    let dir = audio_dir(&st).await?;
    let path = dir.join(format!("{name}.wav"));
    match tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::not_found()),
        _ => return Err(ApiError::internal()),
    }
    st.record(a.audit("audio.delete", &name, String::new())).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
