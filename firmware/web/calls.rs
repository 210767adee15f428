//! `POST /api/v1/calls`: the box places a call for the user (click-to-call, and the live
//! monitor's "call the agent" button): it rings the user's own phone, then dials the number
//! and bridges the two (`engine/originate.rs`).
//!
//! Who may: any signed-in user, from the extension bound to the user; an admin from any
//! extension (an admin account often has no phone). The change is audited (`call.place`).

use super::api::{check_extension, parse, ApiError, ApiResult, Authed, State};
use super::auth;
use super::callcenter::ask;
use super::WebQuery;
use crate::engine::{is_dialable, OriginateError, MAX_DIAL_DIGITS};
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{post, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![("/api/v1/calls", post(place_call))]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallBody {
    /// The extension rung first; the user's own when absent.
    #[serde(default)]
    from: Option<String>,
    /// An extension or an outside number.
    #[serde(default)]
    to: String,
}

/// The engine's refusal as a status, a stable key and words.
fn originate_error(e: OriginateError) -> ApiError {
    let (status, key) = match e {
        OriginateError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        OriginateError::Unavailable => (StatusCode::CONFLICT, "phone_unavailable"),
        OriginateError::Refused(403) => (StatusCode::FORBIDDEN, "restricted"),
        OriginateError::Refused(_) => (StatusCode::CONFLICT, "no_route"),
        OriginateError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        OriginateError::Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
    };
    ApiError { status, body: json!({ "error": key, "message": e.to_string() }) }
}

async fn place_call(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: CallBody = parse(&headers, &body)?;
    let own = a.user.extension.clone();
    let from = b.from.clone().or_else(|| own.clone()).unwrap_or_default();
    let mut errors = BTreeMap::new();
    if from.is_empty() {
        errors.insert("from", "your user has no extension: name the extension to ring".to_string());
    } else if let Err(e) = check_extension(&from) {
        errors.insert("from", format!("an extension: {e}"));
    }
    if !is_dialable(&b.to) {
        errors.insert("to", format!("an extension or a number: digits, * or #, at most {MAX_DIAL_DIGITS}"));
    } else if b.to == from {
        errors.insert("to", "the number to call is the phone that rings first".to_string());
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    if a.user.role != auth::ADMIN_ROLE && own.as_deref() != Some(from.as_str()) {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            body: json!({ "error": "forbidden", "message": "only your own extension's phone can be rung" }),
        });
    }
    let (f, t) = (from.clone(), b.to.clone());
    let call =
        ask(&st, |reply| WebQuery::Originate { from: f, to: t, reply }).await?.map_err(originate_error)?;
    st.record(a.audit("call.place", &b.to, format!("ringing {from} first (call {call})"))).await;
    let body = json!({ "call": call, "from": from, "to": b.to, "state": "ringing" });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
