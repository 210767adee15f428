//! Voicemail, recordings, alarms and the dashboard additions of the web admin over real HTTPS
//! (issue 7, `firmware/web/media.rs`): authentication and validation of every endpoint; a
//! recorded call (baresip) is listed, plays with `Range`, downloads as a WAV and is in the
//! day's zip; an agent sees only its own; deleting a voicemail message lowers the box's count
//! (the engine's, which drives MWI); a trunk at a dead port is down and raises an alarm.
mod common;

use common::baresip::Phone;
use common::tones::{tone, write_wav};
use common::voicemail::{box_logged, context, leave_message, ACT_TIMEOUT, GREETING_TIMEOUT, SETUP_TIMEOUT};
use common::web::{admin, create_user_with_extension, Web, GOOD, GOOD2};
use common::{free_udp_port, require_tool, TestBox};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

const P201: (&str, &str) = ("201", "secret-201");
const P202: (&str, &str) = ("202", "secret-202");
const P203: (&str, &str) = ("203", "secret-203");

/// Every media route, with parameters that would reach the handler.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/voicemail"),
    ("GET", "/api/v1/voicemail/203/1"),
    ("DELETE", "/api/v1/voicemail/203/1"),
    ("GET", "/api/v1/recordings"),
    ("GET", "/api/v1/recordings/zip?date=2026-11-22"),
    ("GET", "/api/v1/recordings/20261122/call-1.wav"),
    ("DELETE", "/api/v1/recordings/20261122/call-1.wav"),
    ("GET", "/api/v1/alarms"),
];

/// Upper bound on a phone's life (`baresip -t`).
const PHONE_SECONDS: u32 = 40;
/// How long the recorded call talks.
const TALK: Duration = Duration::from_secs(2);
/// CDRs reach the store through a group commit, and recordings close after the BYE.
const SETTLE: Duration = Duration::from_secs(10);

/// Logs in a user created by the admin (first login changes the password).
fn login_as(tb: &TestBox, w: &Web, id: &str, role: &str, ext: &str) -> Web {
    create_user_with_extension(w, id, role, ext);
    let mut u = Web::new(tb);
    u.first_login(id, GOOD, GOOD2);
    u
}

/// Polls `GET path` until `done` holds for the body (bounded by [`SETTLE`]).
fn get_until(w: &Web, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let step = Duration::from_millis(200);
    let mut last = Value::Null;
    for _ in 0..SETTLE.as_millis() / step.as_millis() {
        let (s, v) = w.get(path);
        if s == StatusCode::OK && done(&v) {
            return v;
        }
        last = v;
        std::thread::sleep(step);
    }
    last
}

fn bytes(
    w: &Web,
    method: &str,
    path: &str,
    range: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = w.client.request(m, format!("{}{path}", w.base));
    if let Some(c) = &w.cookie {
        req = req.header("cookie", format!("hakoden_session={c}"));
    }
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let r = req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().map(|b| b.to_vec()).unwrap_or_default())
}

#[test]
fn every_media_endpoint_needs_a_session_and_checks_its_fields() {
    let tb = TestBox::start(&[P201, P202]);
    let anon = Web::new(&tb);
    for (m, p) in ROUTES {
        assert_eq!(anon.call(m, p, None).0, StatusCode::UNAUTHORIZED, "{m} {p}");
    }
    let w = admin(&tb);
    // A user without an extension and without history_view sees nothing.
    let (s, v) =
        w.call("PUT", "/api/v1/roles/nobody", Some(serde_json::json!({ "permissions": ["dashboard_view"] })));
    assert!(s.is_success(), "{s} {v}");
    create_user_with_extension(&w, "viewer", "nobody", "202");
    let mut viewer = Web::new(&tb);
    viewer.first_login("viewer", GOOD, GOOD2);
    for (m, p) in ROUTES.iter().filter(|(_, p)| !p.ends_with("alarms")) {
        assert_eq!(viewer.call(m, p, None).0, StatusCode::FORBIDDEN, "{m} {p}");
    }
    // Without the CSRF token a delete is refused before anything else.
    let r = w.send("DELETE", "/api/v1/voicemail/203/1", None, false);
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    for bad in [
        "/api/v1/voicemail?from=2026-13-01",
        "/api/v1/voicemail?from=2026-11-22&to=2026-11-01",
        "/api/v1/voicemail?state=unread",
        "/api/v1/voicemail?box=abc",
        "/api/v1/voicemail?caller=%3Cscript%3E",
        "/api/v1/voicemail?colour=red",
        "/api/v1/recordings?to=yesterday",
        "/api/v1/recordings?extension=x",
        "/api/v1/recordings/zip",
        "/api/v1/recordings/zip?date=22-11-2026",
    ] {
        let (s, v) = w.get(bad);
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert!(v["errors"].is_object(), "{bad}: {v}");
    }
    for missing in [
        "/api/v1/voicemail/203/1",
        "/api/v1/voicemail/203/x",
        "/api/v1/recordings/20261122/call-1.wav",
        "/api/v1/recordings/20261122/passwd",
        "/api/v1/recordings/..%2F..%2Fstore/call-1.wav",
    ] {
        assert_eq!(w.get(missing).0, StatusCode::NOT_FOUND, "{missing}");
    }
    // Empty results and an empty zip for a day without recordings.
    let (s, v) = w.get("/api/v1/voicemail");
    assert_eq!((s, v["messages"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{v}");
    let (s, h, body) = bytes(&w, "GET", "/api/v1/recordings/zip?date=2026-11-22", None);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/zip");
    assert_eq!(body.len(), 22, "an empty zip is its end record");
    let (s, v) = w.get("/api/v1/alarms");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["alarms"].is_array());
}

#[test]
fn a_recorded_call_is_listed_played_zipped_and_only_its_parties_see_it() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(
        &[P201, P202, P203],
        &[("202", "record = \"always\""), ("203", "voicemail = true")],
        "",
    );
    let source = tb.scratch("media").join("tone.wav");
    write_wav(&source, &tone(700.0, 60.0, 8_000.0));
    let mut bob = Phone::builder(&tb, P202, &source, PHONE_SECONDS).without_recording().start();
    assert!(
        bob.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT),
        "202 did not register\n{}",
        bob.report()
    );
    let mut alice =
        Phone::builder(&tb, P201, &source, PHONE_SECONDS).without_recording().ctrl_tcp(tb.port()).start();
    assert!(alice.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT), "{}", context(&tb, &alice));
    alice.command("dial", "202");
    assert!(alice.wait_for("Call established", None, SETUP_TIMEOUT), "{}", context(&tb, &alice));
    std::thread::sleep(TALK);
    alice.command("hangup", "");
    assert!(box_logged(&tb, "closed", GREETING_TIMEOUT), "no recording closed\n{}", context(&tb, &alice));
    bob.kill();

    // Then 201 leaves a message in box 203 (its phone is not registered).
    leave_message(&tb, &mut alice, "203", TALK);
    assert!(alice.wait_for("session closed", None, GREETING_TIMEOUT), "{}", context(&tb, &alice));
    alice.kill();

    let w = admin(&tb);
    let v = get_until(&w, "/api/v1/recordings", |v| v["recordings"][0]["caller"] == "201");
    let recs = v["recordings"].as_array().cloned().unwrap_or_default();
    assert_eq!(recs.len(), 1, "{v}\n{}", tb.stderr_tail(40));
    let rec = &recs[0];
    assert_eq!((rec["caller"].as_str(), rec["callee"].as_str()), (Some("201"), Some("202")), "{rec}");
    let url = rec["url"].as_str().expect("url").to_string();
    let day = rec["day"].as_str().expect("day").to_string();
    let size = rec["bytes"].as_u64().expect("bytes");

    // Play: the whole WAV, HEAD, and a range.
    let (s, h, wav) = bytes(&w, "GET", &url, None);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "audio/wav");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(wav.len() as u64, size);
    assert_eq!(h["content-length"].to_str().ok(), Some(size.to_string().as_str()));
    assert!(wav.len() > 44 && &wav[0..4] == b"RIFF" && &wav[8..12] == b"WAVE", "a WAV");
    let (s, h, head) = bytes(&w, "HEAD", &url, None);
    assert_eq!((s, head.len()), (StatusCode::OK, 0));
    assert_eq!(h["content-length"].to_str().ok(), Some(size.to_string().as_str()));
    let (s, h, part) = bytes(&w, "GET", &url, Some("bytes=8-11"));
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, b"WAVE");
    assert_eq!(h["content-range"].to_str().ok(), Some(format!("bytes 8-11/{size}").as_str()));
    let (s, h, _) = bytes(&w, "GET", &url, Some(&format!("bytes={size}-")));
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h["content-range"].to_str().ok(), Some(format!("bytes */{size}").as_str()));
    let (_, h, _) = bytes(&w, "GET", &format!("{url}?download"), None);
    assert!(h["content-disposition"].to_str().unwrap_or_default().starts_with("attachment"));

    // The day's zip holds it, byte for byte.
    let date = format!("{}-{}-{}", &day[0..4], &day[4..6], &day[6..8]);
    let (s, h, zip) = bytes(&w, "GET", &format!("/api/v1/recordings/zip?date={date}"), None);
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-length"].to_str().ok(), Some(zip.len().to_string().as_str()));
    let zpath = tb.scratch("zip").join("day.zip");
    std::fs::write(&zpath, &zip).expect("write zip");
    if require_tool("unzip") {
        let t = std::process::Command::new("unzip").arg("-t").arg(&zpath).output().expect("unzip");
        let out = String::from_utf8_lossy(&t.stdout).to_string();
        assert!(t.status.success(), "{out}");
        assert!(out.contains(rec["id"].as_str().unwrap_or("?")), "{out}");
        let x = std::process::Command::new("unzip").arg("-p").arg(&zpath).output().expect("unzip -p");
        assert_eq!(x.stdout, wav, "the zipped file is the recording");
    }

    // The callee's agent sees it (read only); an agent of another extension does not.
    let a202 = login_as(&tb, &w, "a202", "agent", "202");
    let a203 = login_as(&tb, &w, "a203", "agent", "203");
    let (_, v) = a202.get("/api/v1/recordings");
    assert_eq!(v["recordings"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(bytes(&a202, "GET", &url, Some("bytes=0-3")).2, b"RIFF");
    assert_eq!(a202.call("DELETE", &url, None).0, StatusCode::FORBIDDEN, "agents do not delete recordings");
    let (_, v) = a203.get("/api/v1/recordings");
    assert_eq!(v["recordings"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(a203.get(&url).0, StatusCode::NOT_FOUND);
    let (_, _, zip203) = bytes(&a203, "GET", &format!("/api/v1/recordings/zip?date={date}"), None);
    assert_eq!(zip203.len(), 22, "203's zip is empty");

    // Voicemail: 203's agent sees its message, 202's does not; deleting lowers the count.
    let v = get_until(&w, "/api/v1/voicemail?box=203", |v| {
        v["messages"].as_array().is_some_and(|m| m.len() == 1)
    });
    let msg = v["messages"][0].clone();
    assert_eq!(msg["caller"], "201", "{v}");
    assert_eq!(v["counts"]["203"]["new"], 1, "{v}");
    let murl = msg["url"].as_str().expect("url").to_string();
    let (_, v) = a202.get("/api/v1/voicemail");
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(a202.get(&murl).0, StatusCode::NOT_FOUND);
    assert_eq!(a202.call("DELETE", &murl, None).0, StatusCode::NOT_FOUND);
    let (s, h, mwav) = bytes(&a203, "GET", &murl, None);
    assert_eq!((s, &mwav[0..4]), (StatusCode::OK, &b"RIFF"[..]));
    assert_eq!(h["content-type"], "audio/wav");
    let (_, v) = a203.get("/api/v1/voicemail?state=old");
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(0), "filtered by state: {v}");
    let new_for_203 = |s: &str| s.lines().any(|l| l.split_whitespace().take(2).eq(["203", "1"]));
    assert!(new_for_203(&tb.console("show voicemail")), "{}", tb.console("show voicemail"));
    assert_eq!(a203.call("DELETE", &murl, None).0, StatusCode::NO_CONTENT);
    let none_for_203 = |s: &str| !new_for_203(s);
    let shown = tb.console_until("show voicemail", ACT_TIMEOUT, none_for_203);
    assert!(none_for_203(&shown), "the engine's count (MWI) dropped:\n{shown}");
    let (_, v) = a203.get("/api/v1/voicemail");
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(a203.get(&murl).0, StatusCode::NOT_FOUND);

    // The admin deletes the recording; both deletes are audited.
    assert_eq!(w.call("DELETE", &url, None).0, StatusCode::NO_CONTENT);
    assert_eq!(w.get(&url).0, StatusCode::NOT_FOUND);
    let (_, v) = w.get("/api/v1/audit");
    let text = v.to_string();
    assert!(text.contains("voicemail.delete") && text.contains("recording.delete"), "{text}");
    assert!(text.contains("recording.zip"), "{text}");
}

#[test]
fn a_trunk_at_a_dead_port_is_down_and_raises_an_alarm_on_the_dashboard() {
    let port = free_udp_port();
    let toml = format!(
        "[[trunk]]\nname = \"provider\"\nmode = \"ip\"\nregistrar = \"127.0.0.1:{port}\"\nkeepalive = 5\n"
    );
    let tb = TestBox::start_with_config(&[P201], &[], &toml);
    let w = admin(&tb);
    let v = get_until(&w, "/api/v1/dashboard", |v| {
        v["alarms"].as_array().is_some_and(|a| a.iter().any(|x| x["key"] == "trunk:provider"))
    });
    let trunks = v["trunks"].as_array().cloned().unwrap_or_default();
    assert_eq!(trunks.len(), 1, "{v}");
    assert_eq!(
        (trunks[0]["name"].as_str(), trunks[0]["usable"].as_bool()),
        (Some("provider"), Some(false)),
        "{v}"
    );
    let alarm = v["alarms"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == "trunk:provider").cloned())
        .unwrap_or_else(|| panic!("no trunk alarm: {v}"));
    assert_eq!(alarm["severity"], "critical", "{alarm}");
    assert!(alarm["cleared_ms"].is_null(), "{alarm}");
    assert!(v["storage"]["total_bytes"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(v["storage"]["used_percent"].as_u64().is_some(), "{v}");
    assert!(v["flash_written_bytes"].is_u64(), "{v}");
    let shown = tb.console("show alarms");
    assert!(shown.contains("trunk:provider") && shown.contains("ACTIVE"), "{shown}");
}
