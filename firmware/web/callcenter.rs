//! The call-center part of `/api/v1/`: queues, agent states and supervision (issues 6 and 7).
//!
//! The handlers never touch engine state: they validate, check the permission, send one
//! [`WebQuery`] to the daemon (which answers with the console's engine calls) and turn the
//! typed answer into JSON. Every change that happened is audited (`agent.state`,
//! `agent.queue`, `supervision.start`, `supervision.stop`).
//!
//! Who may do what (`docs/web.md`):
//! - `monitor_view`: read queues, agents and supervision sessions;
//! - `agent_state_edit`: change any agent; `agent_state_own`: only the extension bound to the
//!   user (and read only that agent when the user lacks `monitor_view`);
//! - `monitor_listen`: start and stop supervision, for the user's own extension (the phone the
//!   box rings), or for any supervisor extension when the user is an admin.

use super::api::{check_extension, parse, ApiError, ApiResult, Authed, State, ENGINE_QUERY_TIMEOUT};
use super::auth::{self, Permission};
use super::WebQuery;
use crate::apps::callcenter::agent::MAX_CUSTOM_STATES;
use crate::apps::callcenter::{AgentError, AgentState, Cause};
use crate::apps::supervision::{Mode, Refusal};
use crate::engine::{AgentCommand, AgentView, QueueView, SuperviseError, SupervisionView};
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, put, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![
        ("/api/v1/queues", get(list_queues)),
        ("/api/v1/agents", get(list_agents)),
        ("/api/v1/agents/{ext}/state", put(put_agent_state)),
        ("/api/v1/agents/{ext}/queues/{queue}", put(put_agent_queue)),
        ("/api/v1/supervision", get(list_supervision).post(start_supervision)),
        ("/api/v1/supervision/{supervisor}", axum::routing::delete(stop_supervision)),
    ]
}

/// Sends one query to the engine's owner and waits for the answer. A full channel or a slow
/// engine is 503: a state change may then still happen, and `GET /agents` tells.
pub(super) async fn ask<T>(
    st: &State,
    make: impl FnOnce(oneshot::Sender<T>) -> WebQuery,
) -> Result<T, ApiError> {
    let busy = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine_busy");
    let (tx, rx) = oneshot::channel();
    let ask_and_wait = async {
        st.engine.send(make(tx)).await.map_err(|_| busy())?;
        rx.await.map_err(|_| busy())
    };
    tokio::time::timeout(ENGINE_QUERY_TIMEOUT, ask_and_wait).await.map_err(|_| busy())?
}

fn queue_json(q: &QueueView) -> Value {
    json!({
        "name": q.name,
        "number": q.number,
        "strategy": q.strategy,
        "waiting": q.waiting,
        "longest_wait_s": q.longest_wait_s,
        "staffed": q.staffed,
        "members": q.members,
    })
}

fn agent_json(a: &AgentView) -> Value {
    let other = match a.state {
        AgentState::OtherWork(n) => Some(n),
        _ => None,
    };
    let queues: Vec<Value> = a.queues.iter().map(|(q, on)| json!({ "queue": q, "available": on })).collect();
    json!({
        "agent": a.agent,
        "state": a.state.key(),
        "label": a.label.clone().unwrap_or_else(|| a.state.ja().to_string()),
        "other": other,
        "since_s": a.since_s,
        "queues": queues,
    })
}

fn mode_key(m: Mode) -> &'static str {
    match m {
        Mode::Listen => "listen",
        Mode::Whisper => "whisper",
        Mode::Barge => "barge",
    }
}

fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "listen" => Some(Mode::Listen),
        "whisper" => Some(Mode::Whisper),
        "barge" => Some(Mode::Barge),
        _ => None,
    }
}

fn supervision_json(v: &SupervisionView) -> Value {
    json!({
        "supervisor": v.supervisor,
        "agent": v.agent,
        "mode": mode_key(v.mode),
        "state": v.state,
        // `dial code` on the console; one word in JSON.
        "origin": v.origin.replace(' ', "_"),
        "call": v.call,
        "age_s": v.age_s,
    })
}

/// An agent refusal: unknown agent or queue is 404, anything else 409, with the reason in
/// words either way.
fn agent_error(e: &AgentError) -> ApiError {
    let (status, key) = match e {
        AgentError::UnknownAgent | AgentError::UnknownQueue => (StatusCode::NOT_FOUND, "not_found"),
        _ => (StatusCode::CONFLICT, "refused"),
    };
    ApiError { status, body: json!({ "error": key, "message": e.to_string() }) }
}

/// A refused supervision: the engine's status (`SuperviseError::http_status`), a stable key
/// for programs and the reason in words.
fn supervise_error(e: SuperviseError) -> ApiError {
    let key = match e {
        SuperviseError::Refused(r) => match r {
            Refusal::NotASupervisor => "not_a_supervisor",
            Refusal::OutOfScope => "out_of_scope",
            Refusal::ModeNotAllowed(_) => "mode_not_allowed",
            Refusal::UnknownTarget => "unknown_agent",
            Refusal::TargetNotInCall => "agent_not_in_call",
            Refusal::OwnCall => "own_call",
        },
        SuperviseError::SupervisorUnreachable => "supervisor_unreachable",
        SuperviseError::AlreadySupervising => "already_supervising",
        SuperviseError::TooMany => "too_many_sessions",
    };
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::CONFLICT);
    ApiError { status, body: json!({ "error": key, "message": e.to_string() }) }
}

/// Whether the user may change agent `ext`, and as whom (for the event log).
fn agent_changer(a: &Authed, ext: &str) -> Result<Cause, ApiError> {
    let own = a.user.extension.as_deref() == Some(ext);
    if own
        && (a.permissions.contains(&Permission::AgentStateOwn)
            || a.permissions.contains(&Permission::AgentStateEdit))
    {
        Ok(Cause::Agent)
    } else if a.permissions.contains(&Permission::AgentStateEdit) {
        Ok(Cause::Supervisor)
    } else {
        Err(ApiError::forbidden())
    }
}

/// Whether the user may start or stop a session that rings `supervisor`'s phone: their own
/// extension, or any for an admin (who may have none).
fn may_supervise_as(a: &Authed, supervisor: &str) -> Result<(), ApiError> {
    a.require(Permission::MonitorListen)?;
    if a.user.role == auth::ADMIN_ROLE || a.user.extension.as_deref() == Some(supervisor) {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            body: json!({ "error": "forbidden", "message": "only your own extension's phone can be rung" }),
        })
    }
}

async fn list_queues(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::MonitorView)?;
    let queues = ask(&st, WebQuery::Queues).await?;
    let queues: Vec<Value> = queues.iter().map(queue_json).collect();
    Ok(Json(json!({ "queues": queues })).into_response())
}

async fn list_agents(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    // Without the monitor an agent still sees itself (the operator screen's status button).
    let only = if a.permissions.contains(&Permission::MonitorView) {
        None
    } else if a.permissions.contains(&Permission::AgentStateOwn) {
        Some(a.user.extension.clone().unwrap_or_default())
    } else {
        return Err(ApiError::forbidden());
    };
    let agents = ask(&st, WebQuery::Agents).await?;
    let agents: Vec<Value> =
        agents.iter().filter(|v| only.as_ref().is_none_or(|o| *o == v.agent)).map(agent_json).collect();
    Ok(Json(json!({ "agents": agents })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    #[serde(default)]
    state: String,
    /// Wider than the range so a wrong number is a field error, not a JSON error.
    other: Option<i64>,
}

/// The agent command a state body asks for, or the field errors.
fn state_command(b: &StateBody) -> Result<AgentCommand, ApiError> {
    let mut errors = BTreeMap::new();
    let cmd = match b.state.as_str() {
        "available" => Some(AgentCommand::Select(AgentState::Available)),
        "preparing" => Some(AgentCommand::Select(AgentState::Preparing)),
        "short_break" => Some(AgentCommand::Select(AgentState::ShortBreak)),
        "lunch_break" => Some(AgentCommand::Select(AgentState::LunchBreak)),
        "logged_out" => Some(AgentCommand::Logout),
        "logged_in" => Some(AgentCommand::Login),
        "other_work" => match b.other.and_then(|n| u8::try_from(n).ok()) {
            Some(n) if (1..=MAX_CUSTOM_STATES).contains(&usize::from(n)) => {
                Some(AgentCommand::Select(AgentState::OtherWork(n)))
            }
            _ => {
                errors.insert("other", format!("the other-work state, 1-{MAX_CUSTOM_STATES}"));
                None
            }
        },
        _ => {
            errors.insert(
                "state",
                "one of available, preparing, short_break, lunch_break, other_work, logged_out, logged_in"
                    .to_string(),
            );
            None
        }
    };
    if b.other.is_some() && b.state != "other_work" {
        errors.insert("other", "only with the state other_work".to_string());
    }
    match cmd {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(ApiError::fields(errors)),
    }
}

async fn change_agent(
    st: &State,
    a: &Authed,
    ext: String,
    command: AgentCommand,
    by: Cause,
    action: &str,
    detail: String,
) -> ApiResult {
    let agent = ext.clone();
    let view =
        ask(st, |reply| WebQuery::Agent { agent, command, by, reply }).await?.map_err(|e| agent_error(&e))?;
    st.record(a.audit(action, &ext, detail)).await;
    Ok(Json(agent_json(&view)).into_response())
}

async fn put_agent_state(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(ext): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let by = agent_changer(&a, &ext)?;
    if check_extension(&ext).is_err() {
        return Err(ApiError::not_found());
    }
    let b: StateBody = parse(&headers, &body)?;
    let command = state_command(&b)?;
    let detail = match b.other {
        Some(n) => format!("{} {n}", b.state),
        None => b.state.clone(),
    };
    change_agent(&st, &a, ext, command, by, "agent.state", detail).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueBody {
    available: Option<bool>,
}

async fn put_agent_queue(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path((ext, queue)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let by = agent_changer(&a, &ext)?;
    if check_extension(&ext).is_err() {
        return Err(ApiError::not_found());
    }
    let b: QueueBody = parse(&headers, &body)?;
    let Some(available) = b.available else {
        return Err(ApiError::fields(BTreeMap::from([("available", "required: true or false".to_string())])));
    };
    let detail = format!("{queue} {}", if available { "available" } else { "paused" });
    let command = AgentCommand::QueueAvailability(queue, available);
    change_agent(&st, &a, ext, command, by, "agent.queue", detail).await
}

async fn list_supervision(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::MonitorView)?;
    let sessions = ask(&st, WebQuery::Supervisions).await?;
    let sessions: Vec<Value> = sessions.iter().map(supervision_json).collect();
    Ok(Json(json!({ "sessions": sessions })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuperviseBody {
    #[serde(default)]
    mode: String,
    #[serde(default)]
    supervisor: String,
    #[serde(default)]
    agent: String,
}

/// The checked fields of a supervision request.
fn supervise_fields(b: &SuperviseBody) -> Result<Mode, ApiError> {
    let mut errors = BTreeMap::new();
    let mode = parse_mode(&b.mode);
    if mode.is_none() {
        errors.insert("mode", "one of listen, whisper, barge".to_string());
    }
    for (field, value) in [("supervisor", &b.supervisor), ("agent", &b.agent)] {
        if let Err(e) = check_extension(value) {
            errors.insert(field, format!("an extension: {e}"));
        }
    }
    match mode {
        Some(m) if errors.is_empty() => Ok(m),
        _ => Err(ApiError::fields(errors)),
    }
}

async fn start_supervision(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    a.require(Permission::MonitorListen)?;
    let b: SuperviseBody = parse(&headers, &body)?;
    let mode = supervise_fields(&b)?;
    may_supervise_as(&a, &b.supervisor)?;
    let (supervisor, agent) = (b.supervisor.clone(), b.agent.clone());
    ask(&st, |reply| WebQuery::Supervise { mode, supervisor, agent, reply })
        .await?
        .map_err(supervise_error)?;
    let detail = format!("{} by {}", mode_key(mode), b.supervisor);
    st.record(a.audit("supervision.start", &b.agent, detail)).await;
    let body =
        json!({ "supervisor": b.supervisor, "agent": b.agent, "mode": mode_key(mode), "state": "ringing" });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn stop_supervision(
    AxState(st): AxState<Arc<State>>,
    a: Authed,
    Path(supervisor): Path<String>,
) -> ApiResult {
    may_supervise_as(&a, &supervisor)?;
    if check_extension(&supervisor).is_err() {
        return Err(ApiError::not_found());
    }
    let who = supervisor.clone();
    if !ask(&st, |reply| WebQuery::StopSupervision { supervisor: who, reply }).await? {
        return Err(ApiError::not_found());
    }
    st.record(a.audit("supervision.stop", &supervisor, String::new())).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(state: &str, other: Option<i64>) -> StateBody {
        StateBody { state: state.into(), other }
    }

    fn field_errors(e: ApiError) -> Vec<String> {
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        e.body["errors"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn every_documented_state_maps_to_the_consoles_agent_command() {
        for (state, want) in [
            ("available", AgentCommand::Select(AgentState::Available)),
            ("preparing", AgentCommand::Select(AgentState::Preparing)),
            ("short_break", AgentCommand::Select(AgentState::ShortBreak)),
            ("lunch_break", AgentCommand::Select(AgentState::LunchBreak)),
            ("logged_out", AgentCommand::Logout),
            ("logged_in", AgentCommand::Login),
        ] {
            assert_eq!(state_command(&body(state, None)).ok(), Some(want), "{state}");
        }
        assert_eq!(
            state_command(&body("other_work", Some(6))).ok(),
            Some(AgentCommand::Select(AgentState::OtherWork(6)))
        );
    }

    #[test]
    fn other_work_needs_a_number_from_one_to_six_and_only_there() {
        for other in [None, Some(0), Some(7), Some(-1), Some(300)] {
            assert_eq!(field_errors(state_command(&body("other_work", other)).unwrap_err()), ["other"]);
        }
        assert_eq!(field_errors(state_command(&body("available", Some(1))).unwrap_err()), ["other"]);
        assert_eq!(field_errors(state_command(&body("talking", None)).unwrap_err()), ["state"]);
        assert_eq!(field_errors(state_command(&body("", Some(2))).unwrap_err()), ["other", "state"]);
    }

    #[test]
    fn a_supervision_request_names_a_mode_and_two_extensions() {
        let ok = SuperviseBody { mode: "whisper".into(), supervisor: "900".into(), agent: "201".into() };
        assert_eq!(supervise_fields(&ok).ok(), Some(Mode::Whisper));
        let bad = SuperviseBody { mode: "spy".into(), supervisor: "9x".into(), agent: "".into() };
        assert_eq!(field_errors(supervise_fields(&bad).unwrap_err()), ["agent", "mode", "supervisor"]);
    }

    #[test]
    fn supervision_refusals_keep_the_engines_status_and_say_why() {
        let e = supervise_error(SuperviseError::SupervisorUnreachable);
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.body["error"], "supervisor_unreachable");
        assert_eq!(e.body["message"], "the supervisor's phone is not registered");
        assert_eq!(supervise_error(SuperviseError::TooMany).status, StatusCode::SERVICE_UNAVAILABLE);
        let e = supervise_error(SuperviseError::Refused(Refusal::OutOfScope));
        assert_eq!((e.status, e.body["error"].as_str()), (StatusCode::FORBIDDEN, Some("out_of_scope")));
        let e = supervise_error(SuperviseError::Refused(Refusal::TargetNotInCall));
        assert_eq!((e.status, e.body["error"].as_str()), (StatusCode::CONFLICT, Some("agent_not_in_call")));
    }

    #[test]
    fn agent_refusals_are_409_with_the_reason_and_unknown_names_404() {
        let e = agent_error(&AgentError::IllegalTransition { from: AgentState::Talking, input: "select" });
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.body["message"].as_str().is_some_and(|m| m.contains("talking")), "{}", e.body);
        assert_eq!(agent_error(&AgentError::UnknownQueue).status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn an_agent_view_carries_key_label_and_queue_availability() {
        let v = AgentView {
            agent: "201".into(),
            state: AgentState::OtherWork(2),
            label: Some("研修".into()),
            since_s: 5,
            queues: vec![("support".into(), true), ("sales".into(), false)],
        };
        let j = agent_json(&v);
        assert_eq!(j["state"], "other_work");
        assert_eq!(j["other"], 2);
        assert_eq!(j["label"], "研修");
        assert_eq!(j["queues"][1], json!({ "queue": "sales", "available": false }));
        let plain = AgentView { state: AgentState::ShortBreak, label: None, ..v };
        assert_eq!(agent_json(&plain)["label"], "小休憩");
        assert_eq!(agent_json(&plain)["other"], Value::Null);
    }
}
