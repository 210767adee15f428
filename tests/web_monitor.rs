//! The live monitor and the reports over real HTTPS against a running box: authentication and
//! permission of every route, the report limits as field errors, the CSV, and the Server-Sent
//! Events stream's delay after an agent state change (docs/PERFORMANCE.md has the figures).
mod common;

use common::web::{admin, create_user_with_extension, Web, GOOD, GOOD2};
use common::TestBox;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::BufRead;
use std::time::{Duration, Instant};

/// A queue whose members are extensions 201 and 202.
const CALLCENTER_TOML: &str =
    "[[queue]]\nname = \"support\"\nnumber = \"6000\"\nmembers = [\"201\", \"202\"]\n";

fn callcenter_box() -> TestBox {
    TestBox::start_with_config(
        &[("201", "secret201"), ("202", "secret202"), ("900", "secret900")],
        &[],
        CALLCENTER_TOML,
    )
}

const ROUTES: [&str; 5] = [
    "/api/v1/monitor",
    "/api/v1/monitor/events",
    "/api/v1/reports/groups?unit=day&periods=2026-11-01",
    "/api/v1/reports/operators?unit=day&periods=2026-11-01",
    "/api/v1/reports/groups/csv?unit=day&periods=2026-11-01",
];

/// Logs in a new user of `role` on extension `ext`.
fn user(tb: &TestBox, w: &Web, id: &str, role: &str, ext: &str) -> Web {
    create_user_with_extension(w, id, role, ext);
    let mut u = Web::new(tb);
    u.first_login(id, GOOD, GOOD2);
    u
}

fn today() -> String {
    // The box reports in its configured offset (JST by default); a date either side is fine
    // for an empty box, so the test's UTC date is enough.
    #[allow(clippy::disallowed_methods)] // test: reads the clock
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn monitor_and_reports_need_a_session_and_the_permission() {
    let tb = callcenter_box();
    let anon = Web::new(&tb);
    for p in ROUTES {
        let (s, v) = anon.get(p);
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{p}: {v}");
    }
    let w = admin(&tb);
    let op = user(&tb, &w, "op1", "agent", "201");
    for p in ROUTES {
        let (s, v) = op.get(p);
        assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{p}");
    }
    let sv = user(&tb, &w, "sv1", "supervisor", "900");
    let (s, v) = sv.get("/api/v1/monitor");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["groups"][0]["name"], "support");
    assert_eq!(v["overall"]["waiting"], 0);
    let exts: Vec<&str> =
        v["agents"].as_array().expect("agents").iter().filter_map(|a| a["ext"].as_str()).collect();
    assert_eq!(exts, ["201", "202"]);
    assert_eq!(v["agents"][0]["state"], "logged_out");
    let r = sv.send("GET", "/api/v1/monitor/events", None, false);
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    drop(r);
    // Unknown report kinds are 404, not a field error.
    assert_eq!(sv.get("/api/v1/reports/queues?unit=day&periods=2026-11-01").0, StatusCode::NOT_FOUND);
}

#[test]
fn report_limits_are_field_errors_and_the_csv_has_the_spec_header() {
    let tb = callcenter_box();
    let w = admin(&tb);
    let six = "2026-11-01,2026-11-02,2026-11-03,2026-11-04,2026-11-05,2026-11-06";
    let (s, v) = w.get(&format!("/api/v1/reports/groups?unit=day&periods={six}"));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["errors"]["periods"].as_str().is_some_and(|m| m.contains("at most 5")), "{v}");
    let eleven: Vec<String> = (0..11).map(|n| format!("g{n}")).collect();
    let (s, v) =
        w.get(&format!("/api/v1/reports/groups?unit=day&periods=2026-11-01&groups={}", eleven.join(",")));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["errors"]["groups"].as_str().is_some_and(|m| m.contains("at most 10")), "{v}");
    let agents: Vec<String> = (200..251).map(|n| n.to_string()).collect();
    let (s, v) =
        w.get(&format!("/api/v1/reports/operators?unit=day&periods=2026-11-01&agents={}", agents.join(",")));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["errors"]["agents"].as_str().is_some(), "{v}");
    let (s, v) = w.get("/api/v1/reports/groups?unit=fortnight&periods=2026-13-01&colour=red");
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let fields: Vec<&String> = v["errors"].as_object().expect("errors").keys().collect();
    assert_eq!(fields, ["query", "unit"], "{v}");
    let (s, v) = w.get("/api/v1/reports/groups?unit=hour&periods=2026-01-01..2026-03-31");
    assert_eq!((s, v["errors"]["periods"].is_string()), (StatusCode::UNPROCESSABLE_ENTITY, true), "{v}");

    let day = today();
    let q = format!("unit=day&periods={day},{day}&groups=support");
    let (s, v) = w.get(&format!("/api/v1/reports/groups?{q}"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["periods"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["header"][1], "電話グループ名");
    let r = w.send("GET", &format!("/api/v1/reports/groups/csv?{q}"), None, false);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().is_ok_and(|c| c.starts_with("text/csv")));
    let body = r.bytes().expect("csv");
    assert!(body.starts_with(b"\xef\xbb\xbf"), "UTF-8 byte-order mark");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let first = text.trim_start_matches('\u{feff}').lines().next().unwrap_or_default();
    assert!(first.starts_with("期間,電話グループ名,電話番号,着信数,発信数,応答数"), "{first}");
    assert_eq!(text.matches("期間,").count(), 1, "one header row for both periods");
    let (_, v) = w.get("/api/v1/audit?limit=20");
    assert!(
        v["entries"].as_array().expect("entries").iter().any(|e| e["action"] == "report.download"),
        "{v}"
    );
    let (s, v) = w.get(&format!("/api/v1/reports/operators?unit=weekday&periods={day}&agents=201"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["header"][2], "内線番号");
}

#[allow(clippy::disallowed_methods)] // test driver: measures the delay
fn now() -> Instant {
    Instant::now()
}

/// Reads the stream on a thread: (arrival, event name, data) per event.
fn sse_reader(r: reqwest::blocking::Response) -> std::sync::mpsc::Receiver<(Instant, String, Value)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut name = String::new();
        for line in std::io::BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if let Some(n) = line.strip_prefix("event: ").or_else(|| line.strip_prefix("event:")) {
                name = n.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
                let v = serde_json::from_str(d).unwrap_or(Value::Null);
                if tx.send((now(), name.clone(), v)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn state_of(v: &Value, ext: &str) -> Option<String> {
    v["agents"].as_array()?.iter().find(|a| a["ext"] == ext)?["state"].as_str().map(str::to_string)
}

#[test]
fn the_stream_delivers_an_agent_state_change_within_a_second() {
    let tb = callcenter_box();
    let w = admin(&tb);
    let rx = sse_reader(w.send("GET", "/api/v1/monitor/events", None, false));
    let (_, name, first) = rx.recv_timeout(Duration::from_secs(10)).expect("a first snapshot");
    assert_eq!(name, "snapshot");
    assert_eq!(state_of(&first, "201").as_deref(), Some("logged_out"), "{first}");
    let mut delays = Vec::new();
    for (n, state) in ["logged_in", "available", "short_break", "available", "logged_out"].iter().enumerate()
    {
        let sent = now();
        let (s, v) = w.call("PUT", "/api/v1/agents/201/state", Some(json!({ "state": state })));
        assert_eq!(s, StatusCode::OK, "{state}: {v}");
        let want = if *state == "logged_in" { "preparing" } else { state };
        let seen = loop {
            let (at, _, v) = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no snapshot after {state}"));
            if state_of(&v, "201").as_deref() == Some(want) {
                break at;
            }
        };
        delays.push(seen.duration_since(sent));
        eprintln!("change {n} ({state}): PUT sent -> snapshot read in {:?}", seen.duration_since(sent));
    }
    let worst = delays.iter().max().copied().unwrap_or_default();
    eprintln!("monitor stream delay over {} changes: worst {worst:?}", delays.len());
    // The claim is 1 s (docs/PERFORMANCE.md); a loaded CI machine gets a generous bound.
    assert!(worst < Duration::from_secs(5), "{delays:?}");
}

/// `POST /api/v1/calls` (the monitor's "call the agent", click-to-call): a session and CSRF,
/// field errors, only the user's own extension (an admin any), the engine's refusals as
/// statuses; then a real call: the supervisor's SIPp phone answers, the agent's rings.
#[test]
fn placing_a_call_needs_a_session_the_own_extension_and_a_phone() {
    let tb = callcenter_box();
    let anon = Web::new(&tb);
    let (s, _) = anon.call("POST", "/api/v1/calls", Some(json!({ "to": "201" })));
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let w = admin(&tb);
    let sv = user(&tb, &w, "sv1", "supervisor", "900");
    let no_csrf = sv.send("POST", "/api/v1/calls", Some(json!({ "to": "201" })), false);
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({ "to": "" }), "to"),
        (json!({ "to": "20x1" }), "to"),
        (json!({ "to": "1".repeat(25) }), "to"),
        (json!({ "to": "900" }), "to"),
        (json!({ "from": "9", "to": "201" }), "from"),
    ] {
        let (s, v) = sv.call("POST", "/api/v1/calls", Some(body.clone()));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(v["errors"][field].is_string(), "{body}: {v}");
    }
    let (s, v) = sv.call("POST", "/api/v1/calls", Some(json!({ "to": "201", "extra": 1 })));
    assert_eq!(s, StatusCode::BAD_REQUEST, "unknown fields are refused: {v}");
    let (s, v) = sv.call("POST", "/api/v1/calls", Some(json!({ "from": "202", "to": "201" })));
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    // 900's phone is not registered yet; 299 is nobody.
    let (s, v) = sv.call("POST", "/api/v1/calls", Some(json!({ "to": "201" })));
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("phone_unavailable")), "{v}");
    let (s, v) = sv.call("POST", "/api/v1/calls", Some(json!({ "to": "299" })));
    assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{v}");
    // An admin without an extension must name one.
    let (s, v) = w.call("POST", "/api/v1/calls", Some(json!({ "to": "201" })));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["errors"]["from"].is_string(), "{v}");

    // With phones: 900 answers (SIPp), then the box rings 201 (SIPp, answers too).
    let sup_port = tb.port();
    common::must_register(&tb, ("900", "secret900"), sup_port);
    let agent_port = tb.port();
    common::must_register(&tb, ("201", "secret201"), agent_port);
    let spawn = |port: u16| {
        let media = tb.port();
        common::Sipp::new("uas_answer.xml", &tb.scratch("sipp"))
            .local_port(port)
            .media_port(media)
            .key("rtpport", media)
            .timeout(Duration::from_secs(30))
            .spawn()
    };
    let _sup = spawn(sup_port);
    let _agent = spawn(agent_port);
    common::wait_udp_bound(sup_port);
    common::wait_udp_bound(agent_port);
    let (s, v) = sv.call("POST", "/api/v1/calls", Some(json!({ "to": "201" })));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str(), v["state"].as_str()),
        (Some("900"), Some("201"), Some("ringing"))
    );
    let calls = tb.console_until("show calls", Duration::from_secs(10), |o| o.contains("talking"));
    assert!(calls.contains("900") && calls.contains("201") && calls.contains("talking"), "{calls}");
    let (s, audit) = w.get("/api/v1/audit");
    assert_eq!(s, StatusCode::OK);
    assert!(audit.to_string().contains("call.place"), "{audit}");
}
