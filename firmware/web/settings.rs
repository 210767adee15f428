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
//! Both need `settings_edit`; every save is audited (`config.update`, the section's name, never
//! its values).

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
