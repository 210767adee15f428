//! The system part of `/api/v1/`: firmware status and signed updates (issue 8). The page is
//! `web-ui/system.html`.
//!
//! Who may do what: `system_edit` (admins by default) for every route here; a firmware
//! upload reboots the box, so it is not a supervisor's right.
//!
//! The upload is the raw bundle (`Content-Type: application/octet-stream`), read with its own
//! limit (the inactive slot plus the bundle's header) instead of the global 64 KiB: 415 for
//! anything that is not a bundle, 413 past the limit, 400 with the reason for a bundle that
//! fails its checks (signature, board, digest), 409 while another update is pending, 503 off
//! the appliance. Verification runs before a byte is written (`crate::update`).

use super::api::{ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use crate::backup::{self, BackupError};
use crate::update::bundle::BundleError;
use crate::update::{Appliance, UpdateError};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Content types a firmware upload may carry; the bundle's own magic decides after that.
const BUNDLE_TYPES: &[&str] = &["application/octet-stream", "application/vnd.hakoden.bundle"];

/// Delay between answering an accepted update and rebooting: the answer must reach the
/// browser before the box goes down.
const REBOOT_DELAY: Duration = Duration::from_secs(2);

/// What the system routes work on, set once at start.
pub(super) struct System {
    appliance: Option<Appliance>,
    data_dir: PathBuf,
    config_file: Option<PathBuf>,
}

impl System {
    pub(super) fn new(
        appliance: Option<Appliance>,
        data_dir: PathBuf,
        config_file: Option<PathBuf>,
    ) -> System {
        System { appliance, data_dir, config_file }
    }
}

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        (
            "/api/v1/firmware",
            // The upload enforces its own, larger limit (see the module doc).
            get(firmware_status).post(upload_firmware).layer(DefaultBodyLimit::disable()),
        ),
        ("/api/v1/backup", get(download_backup)),
        (
            "/api/v1/restore",
            post(upload_restore).layer(DefaultBodyLimit::max(backup::MAX_BACKUP_BYTES as usize)),
        ),
    ]
}

#[derive(serde::Deserialize)]
struct BackupQuery {
    /// `1` or `true`: include call recordings.
    #[serde(default)]
    recordings: Option<String>,
}

async fn download_backup(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    axum::extract::Query(q): axum::extract::Query<BackupQuery>,
) -> ApiResult {
    a.require(Permission::SystemEdit)?;
    let sys = st.system.get().ok_or_else(ApiError::internal)?;
    let recordings = matches!(q.recordings.as_deref(), Some("1" | "true"));
    let (dir, cfg) = (sys.data_dir.clone(), sys.config_file.clone());
    let made = tokio::task::spawn_blocking(move || {
        backup::backup(&dir, cfg.as_deref(), recordings, super::wall_ms())
    })
    .await
    .map_err(|_| ApiError::internal())?;
    match made {
        Ok(bytes) => {
            let detail = format!("{} bytes, recordings {recordings}", bytes.len());
            st.record(a.audit("system.backup", "", detail)).await;
            let name = format!("hakoden-backup-{}.hkb", crate::VERSION);
            Ok((
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
                ],
                bytes,
            )
                .into_response())
        }
        Err(e @ BackupError::TooLarge(_)) => Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: json!({ "error": "too_large", "message": format!("{e}; try without recordings") }),
        }),
        Err(e) => {
            log::error!("backup: {e}");
            Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({ "error": "backup_failed", "message": e.to_string() }),
            })
        }
    }
}

async fn upload_restore(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::SystemEdit)?;
    let sys = st.system.get().ok_or_else(ApiError::internal)?;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ctype = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ctype != "application/octet-stream" || !backup::looks_like_backup(&body) {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: json!({ "error": "not_a_backup", "message": "upload a .hkb backup file as application/octet-stream" }),
        });
    }
    let dir = sys.data_dir.clone();
    let staged = tokio::task::spawn_blocking(move || backup::stage_restore(&dir, &body))
        .await
        .map_err(|_| ApiError::internal())?;
    match staged {
        Ok(m) => {
            let detail =
                format!("backup of {} with {} files, staged for the next start", m.version, m.files.len());
            st.record(a.audit("system.restore", &m.version, detail)).await;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "version": m.version, "files": m.files.len(), "created_ms": m.created_ms, "restart_required": true })),
            )
                .into_response())
        }
        Err(BackupError::Io(m)) => {
            log::error!("restore: {m}");
            Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({ "error": "write_failed", "message": m }),
            })
        }
        Err(e) => {
            st.record(a.audit("system.restore_refused", "", e.to_string())).await;
            Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                body: json!({ "error": "bad_backup", "message": e.to_string() }),
            })
        }
    }
}

fn appliance(st: &State) -> Result<Appliance, ApiError> {
    st.system.get().and_then(|s| s.appliance.clone()).ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: json!({ "error": "not_an_appliance", "message": "firmware updates need the A/B appliance image" }),
    })
}

async fn firmware_status(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::SystemEdit)?;
    let Some(app) = st.system.get().and_then(|s| s.appliance.clone()) else {
        return Ok(Json(json!({ "appliance": false, "version": crate::VERSION })).into_response());
    };
    let status = tokio::task::spawn_blocking(move || app.status()).await.map_err(|_| ApiError::internal())?;
    let slots: Vec<_> = status
        .slots
        .iter()
        .map(|(s, v)| json!({ "slot": s, "version": v, "running": *s == status.running }))
        .collect();
    Ok(Json(json!({
        "appliance": true,
        "version": status.version,
        "board": status.board,
        "running": status.running,
        "trial": status.trial,
        "committed": status.committed,
        "slots": slots,
        "last_update": status.last_update,
    }))
    .into_response())
}

fn bundle_error(e: &BundleError) -> ApiError {
    let (status, key) = match e {
        BundleError::NotABundle => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_a_bundle"),
        BundleError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        BundleError::BadSignature => (StatusCode::BAD_REQUEST, "bad_signature"),
        BundleError::WrongBoard { .. } => (StatusCode::BAD_REQUEST, "wrong_board"),
        BundleError::Truncated(_) => (StatusCode::BAD_REQUEST, "truncated"),
        BundleError::Corrupt | BundleError::TrailingData | BundleError::NotSquashfs => {
            (StatusCode::BAD_REQUEST, "corrupt")
        }
        BundleError::ManifestTooLarge(_) | BundleError::BadManifest(_) => {
            (StatusCode::BAD_REQUEST, "bad_manifest")
        }
    };
    ApiError { status, body: json!({ "error": key, "message": e.to_string() }) }
}

async fn upload_firmware(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    a.require(Permission::SystemEdit)?;
    let app = appliance(&st)?;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ctype = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !BUNDLE_TYPES.contains(&ctype.as_str()) {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: json!({ "error": "not_a_bundle", "message": "upload the .bundle file as application/octet-stream" }),
        });
    }
    let limit = usize::try_from(app.max_bundle_bytes()).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        body: json!({ "error": "too_large", "message": format!("a bundle for this box is at most {limit} bytes") }),
    })?;
    if !crate::update::bundle::looks_like_bundle(&bytes) {
        return Err(bundle_error(&BundleError::NotABundle));
    }
    let installer = app.clone();
    let outcome = tokio::task::spawn_blocking(move || installer.install(&bytes, super::wall_ms()))
        .await
        .map_err(|_| ApiError::internal())?;
    match outcome {
        Ok(rec) => {
            let detail = format!("{} to slot {} (from {})", rec.version, rec.to, rec.from);
            st.record(a.audit("firmware.update", &rec.version, detail)).await;
            tokio::spawn(async {
                tokio::time::sleep(REBOOT_DELAY).await;
                crate::update::reboot();
            });
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "version": rec.version, "slot": rec.to, "rebooting": true, "update": rec })),
            )
                .into_response())
        }
        Err(UpdateError::Bundle(e)) => {
            st.record(a.audit("firmware.refused", "", e.to_string())).await;
            Err(bundle_error(&e))
        }
        Err(UpdateError::Busy) => Err(ApiError {
            status: StatusCode::CONFLICT,
            body: json!({ "error": "busy", "message": UpdateError::Busy.to_string() }),
        }),
        Err(UpdateError::Io(m)) => {
            log::error!("update: {m}");
            st.record(a.audit("firmware.failed", "", m.clone())).await;
            Err(ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({ "error": "write_failed", "message": m }),
            })
        }
    }
}
