//! The web admin's JSON API over real HTTPS against a running box: authentication, roles,
//! CSRF, validation, lockout, one session per account, the redirect, the certificate upload,
//! and the call-center endpoints (queues, agent states, supervision).
//!
//! The client trusts exactly the box's certificate (read from its data directory), so these
//! tests also prove the self-signed certificate covers 127.0.0.1.
mod common;

use common::web::{admin, client_trusting, create_user_with_extension, Web, GOOD, GOOD2};
use common::TestBox;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn create_user(w: &Web, id: &str, role: &str) {
    create_user_with_extension(w, id, role, "201");
}

/// Every route but the public ones, with a body that would be valid enough to reach the
/// handler.
const PROTECTED: &[(&str, &str)] = &[
    ("POST", "/api/v1/logout"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/me/password"),
    ("GET", "/api/v1/dashboard"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/admin"),
    ("PUT", "/api/v1/users/admin"),
    ("DELETE", "/api/v1/users/admin"),
    ("GET", "/api/v1/roles"),
    ("PUT", "/api/v1/roles/x"),
    ("DELETE", "/api/v1/roles/x"),
    ("GET", "/api/v1/sessions"),
    ("DELETE", "/api/v1/sessions/admin"),
    ("GET", "/api/v1/audit"),
    ("PUT", "/api/v1/certificate"),
    ("GET", "/api/v1/queues"),
    ("GET", "/api/v1/agents"),
    ("PUT", "/api/v1/agents/201/state"),
    ("PUT", "/api/v1/agents/201/queues/support"),
    ("GET", "/api/v1/supervision"),
    ("POST", "/api/v1/supervision"),
    ("DELETE", "/api/v1/supervision/900"),
];

#[test]
fn every_endpoint_needs_a_session_and_state_changes_need_the_csrf_token() {
    let tb = TestBox::start(&[("201", "secret201")]);
    let anon = Web::new(&tb);
    let (s, v) = anon.get("/api/v1/health");
    assert_eq!(s, StatusCode::OK);
    assert!(v["version"].as_str().is_some_and(|x| x.starts_with("0.")), "{v}");
    for (m, p) in PROTECTED {
        let (s, v) = anon.call(m, p, Some(json!({})));
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p}: {v}");
        assert_eq!(v["error"], "unauthenticated");
    }
    let w = admin(&tb);
    for (m, p) in PROTECTED.iter().filter(|(m, _)| *m != "GET") {
        let r = w.send(m, p, Some(json!({})), false);
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{m} {p} without CSRF");
        let v: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(v["error"], "csrf", "{m} {p}");
    }
    let mut wrong = Web::new(&tb);
    wrong.cookie = w.cookie.clone();
    wrong.csrf = Some("0".repeat(64));
    assert_eq!(wrong.call("POST", "/api/v1/users", Some(json!({}))).0, StatusCode::FORBIDDEN);
    // An unknown API path is a JSON 404, not a page.
    assert_eq!(w.get("/api/v1/nothing").0, StatusCode::NOT_FOUND);
}

#[test]
fn the_seeded_admin_must_change_its_password_before_anything_else() {
    let tb = TestBox::start(&[("201", "secret201")]);
    let pw = tb.web_admin_password().expect("first-start password");
    let mut w = Web::new(&tb);
    let (s, v) = w.login("admin", &pw);
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["must_change_password"], true);
    let (s, v) = w.get("/api/v1/users");
    assert_eq!((s, v["error"].clone()), (StatusCode::FORBIDDEN, json!("password_change_required")));
    assert_eq!(w.get("/api/v1/me").0, StatusCode::OK);
    // The policy, field by field.
    for (new, field) in
        [("short1A", "new_password"), ("alllowercase12", "new_password"), (pw.as_str(), "new_password")]
    {
        let (s, v) = w.call(
            "POST",
            "/api/v1/me/password",
            Some(json!({ "current_password": pw, "new_password": new })),
        );
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{new}: {v}");
        assert!(v["errors"][field].is_string(), "{v}");
    }
    let (s, v) = w.call(
        "POST",
        "/api/v1/me/password",
        Some(json!({ "current_password": "Wrong12345x", "new_password": GOOD })),
    );
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"]["current_password"].is_string(), "{v}");
    let (s, v) =
        w.call("POST", "/api/v1/me/password", Some(json!({ "current_password": pw, "new_password": GOOD })));
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = w.get("/api/v1/dashboard");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], w.get("/api/v1/health").1["version"]);
    assert_eq!(v["registrations"], 0);
    assert_eq!(v["active_calls"], 0);
    // The old password is gone, the new one works.
    let mut again = Web::new(&tb);
    assert_eq!(again.login("admin", &pw).0, StatusCode::UNAUTHORIZED);
    assert_eq!(again.login("admin", GOOD).1["user"]["must_change_password"], false);
}

#[test]
fn roles_decide_what_a_user_may_do_and_every_change_is_audited() {
    let tb = TestBox::start(&[("201", "secret201")]);
    let w = admin(&tb);
    create_user(&w, "op1", "agent");
    create_user(&w, "sv1", "supervisor");
    // Field-level validation.
    let (s, v) = w.call(
        "POST",
        "/api/v1/users",
        Some(json!({ "id": "bad id", "name": "", "role": "nobody", "extension": "12a", "password": "weak" })),
    );
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    for f in ["id", "name", "role", "extension", "password"] {
        assert!(v["errors"][f].is_string(), "{f}: {v}");
    }
    let (s, _) = w.call(
        "POST",
        "/api/v1/users",
        Some(json!({ "id": "OP1", "name": "dup", "role": "agent", "password": GOOD })),
    );
    assert_eq!(s, StatusCode::CONFLICT);

    let mut op = Web::new(&tb);
    op.first_login("op1", GOOD, GOOD2);
    assert_eq!(op.get("/api/v1/dashboard").0, StatusCode::OK);
    for (m, p) in [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/sessions"),
        ("PUT", "/api/v1/certificate"),
    ] {
        let (s, v) = op.call(m, p, Some(json!({ "cert_pem": "", "key_pem": "" })));
        assert_eq!((s, v["error"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")), "agent {m} {p}");
    }

    let mut sv = Web::new(&tb);
    sv.first_login("sv1", GOOD, GOOD2);
    assert_eq!(sv.get("/api/v1/users").0, StatusCode::OK);
    let (s, _) = sv.call(
        "POST",
        "/api/v1/users",
        Some(json!({ "id": "x1", "name": "x", "role": "agent", "password": GOOD })),
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(sv.call("DELETE", "/api/v1/sessions/admin", None).0, StatusCode::FORBIDDEN);
    let (s, v) = sv.get("/api/v1/sessions");
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["sessions"].as_array().map(Vec::len), Some(3), "{v}");
    // Forced logout by a supervisor.
    assert_eq!(sv.call("DELETE", "/api/v1/sessions/op1", None).0, StatusCode::NO_CONTENT);
    assert_eq!(op.get("/api/v1/me").0, StatusCode::UNAUTHORIZED);

    // Roles are editable permission sets; admin's is fixed.
    let (s, v) = w.call(
        "PUT",
        "/api/v1/roles/agent",
        Some(json!({ "permissions": ["dashboard_view", "users_view"] })),
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut op = Web::new(&tb);
    op.login("op1", GOOD2);
    assert_eq!(op.get("/api/v1/users").0, StatusCode::OK);
    let (s, v) = w.call("PUT", "/api/v1/roles/admin", Some(json!({ "permissions": [] })));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = w.call("PUT", "/api/v1/roles/report", Some(json!({ "permissions": ["nope"] })));
    assert!(v["errors"]["permissions"].is_string() && s == StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(w.call("DELETE", "/api/v1/roles/agent", None).0, StatusCode::UNPROCESSABLE_ENTITY);
    // The last admin cannot be demoted or deleted; a user cannot delete itself.
    assert_eq!(
        w.call("PUT", "/api/v1/users/admin", Some(json!({ "role": "agent" }))).0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(w.call("DELETE", "/api/v1/users/admin", None).0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.call("DELETE", "/api/v1/users/sv1", None).0, StatusCode::NO_CONTENT);
    assert_eq!(sv.get("/api/v1/me").0, StatusCode::UNAUTHORIZED);

    let (s, v) = w.get("/api/v1/audit?limit=50");
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<(String, String, String)> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["who"].as_str().unwrap_or("").into(),
                e["action"].as_str().unwrap_or("").into(),
                e["target"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    for want in [
        ("admin", "user.create", "op1"),
        ("admin", "password.change", "admin"),
        ("sv1", "session.force_logout", "op1"),
        ("admin", "role.update", "agent"),
        ("admin", "user.delete", "sv1"),
    ] {
        let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
        assert!(actions.contains(&want), "{want:?} missing in {actions:?}");
    }
    assert!(v["entries"][0]["at_ms"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
    assert_eq!(w.get("/api/v1/audit?limit=0").0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn five_wrong_passwords_lock_the_account_and_a_new_login_ends_the_old_session() {
    let tb = TestBox::start(&[("201", "secret201")]);
    let w = admin(&tb);
    create_user(&w, "op2", "agent");
    let mut guess = Web::new(&tb);
    for _ in 0..5 {
        assert_eq!(guess.login("op2", "Wrong12345x").0, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = guess.login("op2", GOOD);
    assert_eq!(s, StatusCode::LOCKED, "{v}");
    assert!(v["retry_after_s"].as_u64().is_some_and(|n| n > 800), "{v}");
    // Unknown ids lock the same way, so a lock tells nothing about which ids exist.
    for _ in 0..5 {
        assert_eq!(guess.login("ghost", "Wrong12345x").0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(guess.login("ghost", "Wrong12345x").0, StatusCode::LOCKED);

    let mut first = Web::new(&tb);
    assert_eq!(first.login("admin", GOOD).0, StatusCode::OK);
    assert_eq!(first.get("/api/v1/me").0, StatusCode::OK);
    assert_eq!(w.get("/api/v1/me").0, StatusCode::UNAUTHORIZED, "the older admin session ended");
    let mut second = Web::new(&tb);
    assert_eq!(second.login("admin", GOOD).0, StatusCode::OK);
    assert_eq!(first.get("/api/v1/me").0, StatusCode::UNAUTHORIZED);
    assert_eq!(second.call("POST", "/api/v1/logout", None).0, StatusCode::NO_CONTENT);
    assert_eq!(second.get("/api/v1/me").0, StatusCode::UNAUTHORIZED);

    // The console's reset gives a fresh password that must be changed.
    let out = tb.console("web reset-admin");
    let pw = out.split_whitespace().skip_while(|w| *w != "password").nth(1).expect("a password").to_string();
    let mut reset = Web::new(&tb);
    assert_eq!(reset.login("admin", &pw).1["user"]["must_change_password"], true);
}

#[test]
fn plain_http_redirects_to_https_and_bodies_are_checked() {
    let tb = TestBox::start(&[("201", "secret201")]);
    // The same client (its TLS settings are unused on plain HTTP; reqwest needs them to build).
    let plain = Web::new(&tb).client;
    let r = plain.get(format!("http://127.0.0.1:{}/users.html?x=1", tb.http_port())).send().expect("http");
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("{}/users.html?x=1", tb.web_url()).as_str())
    );
    let w = admin(&tb);
    // Not declared as JSON: refused before parsing (the login CSRF defence).
    let r = w
        .client
        .post(format!("{}/api/v1/login", w.base))
        .header("content-type", "text/plain")
        .body("{\"user\":\"admin\",\"password\":\"x\"}")
        .send()
        .expect("post");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = "x".repeat(100 * 1024);
    let (s, _) = w.call("PUT", "/api/v1/certificate", Some(json!({ "cert_pem": huge, "key_pem": "" })));
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, v) = w.call("POST", "/api/v1/users", Some(json!({ "id": 5 })));
    assert_eq!((s, v["error"].clone()), (StatusCode::BAD_REQUEST, json!("bad_json")));
    // Pages come with their types and revalidation headers.
    let r = w.client.get(format!("{}/app.js", w.base)).send().expect("asset");
    assert_eq!(
        r.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(r.headers().get("cache-control").and_then(|v| v.to_str().ok()), Some("no-cache"));
    let etag = r.headers().get("etag").cloned().expect("etag");
    let r = w.client.get(format!("{}/app.js", w.base)).header("if-none-match", etag).send().expect("asset");
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = w.client.get(format!("{}/", w.base)).send().expect("index");
    assert!(r.headers().get("content-security-policy").is_some());
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn an_uploaded_certificate_is_validated_and_then_served() {
    let tb = TestBox::start(&[("201", "secret201")]);
    let w = admin(&tb);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let other = rcgen::KeyPair::generate().expect("key");
    let (s, v) = w.call(
        "PUT",
        "/api/v1/certificate",
        Some(json!({ "cert_pem": cert.pem(), "key_pem": other.serialize_pem() })),
    );
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"]["key_pem"].is_string(), "{v}");
    let (s, v) = w.call(
        "PUT",
        "/api/v1/certificate",
        Some(json!({ "cert_pem": "junk", "key_pem": key.serialize_pem() })),
    );
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["cert_pem"].is_string(), "{v}");
    let (s, v) = w.call(
        "PUT",
        "/api/v1/certificate",
        Some(json!({ "cert_pem": cert.pem(), "key_pem": key.serialize_pem() })),
    );
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    // A client trusting only the new certificate now connects.
    let fresh = client_trusting(cert.pem().as_bytes());
    let r = fresh.get(format!("{}/api/v1/health", tb.web_url())).send().expect("new certificate served");
    assert_eq!(r.status(), StatusCode::OK);
    // The console installs from files the same way.
    let dir = tb.scratch("cert");
    let key2 = rcgen::KeyPair::generate().expect("key");
    let cert2 = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .self_signed(&key2)
        .expect("cert");
    std::fs::write(dir.join("c.pem"), cert2.pem()).expect("write");
    std::fs::write(dir.join("k.pem"), key2.serialize_pem()).expect("write");
    let out =
        tb.console(&format!("web cert {} {}", dir.join("c.pem").display(), dir.join("k.pem").display()));
    assert!(out.contains("certificate installed"), "{out}");
    let r = client_trusting(cert2.pem().as_bytes()).get(format!("{}/api/v1/health", tb.web_url())).send();
    assert!(r.is_ok(), "{r:?}");
}

/// A queue whose members are extensions 201 and 202; 900 is a supervisor (never registered).
const CALLCENTER_TOML: &str =
    "[[queue]]\nname = \"support\"\nnumber = \"6000\"\nmembers = [\"201\", \"202\"]\n";

fn callcenter_box() -> TestBox {
    TestBox::start_with_config(
        &[("201", "secret201"), ("202", "secret202"), ("900", "secret900")],
        &[("900", "supervisor = true")],
        CALLCENTER_TOML,
    )
}

fn audit_actions(w: &Web) -> Vec<(String, String, String, String)> {
    let (s, v) = w.get("/api/v1/audit?limit=100");
    assert_eq!(s, StatusCode::OK, "{v}");
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (f("who"), f("action"), f("target"), f("detail"))
        })
        .collect()
}

fn agent<'a>(v: &'a Value, ext: &str) -> &'a Value {
    v["agents"].as_array().and_then(|a| a.iter().find(|x| x["agent"] == ext)).unwrap_or(&Value::Null)
}

#[test]
fn agents_change_their_own_state_and_supervisors_any_and_get_agents_shows_it() {
    let tb = callcenter_box();
    let w = admin(&tb);
    create_user_with_extension(&w, "op1", "agent", "201");
    create_user_with_extension(&w, "sv1", "supervisor", "900");
    let mut op = Web::new(&tb);
    op.first_login("op1", GOOD, GOOD2);
    let mut sv = Web::new(&tb);
    sv.first_login("sv1", GOOD, GOOD2);

    let (s, v) = sv.get("/api/v1/queues");
    assert_eq!(s, StatusCode::OK, "{v}");
    let q = &v["queues"][0];
    assert_eq!(
        (q["name"].as_str(), q["number"].as_str(), q["members"].as_u64()),
        (Some("support"), Some("6000"), Some(2))
    );
    assert_eq!((q["waiting"].as_u64(), q["staffed"].as_u64()), (Some(0), Some(0)), "{v}");
    assert!(q["strategy"].is_string() && q["longest_wait_s"].is_u64(), "{v}");
    // An agent without the monitor sees only itself.
    assert_eq!(op.get("/api/v1/queues").0, StatusCode::FORBIDDEN);
    let (s, v) = op.get("/api/v1/agents");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["agents"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(agent(&v, "201")["state"], "logged_out", "{v}");

    // The agent logs itself in and becomes available.
    let (s, v) = op.call("PUT", "/api/v1/agents/201/state", Some(json!({ "state": "logged_in" })));
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("preparing")), "{v}");
    let (s, v) = op.call("PUT", "/api/v1/agents/201/state", Some(json!({ "state": "available" })));
    assert_eq!(
        (s, v["state"].as_str(), v["label"].as_str()),
        (StatusCode::OK, Some("available"), Some("受付可")),
        "{v}"
    );
    // ... but not someone else.
    let (s, v) = op.call("PUT", "/api/v1/agents/202/state", Some(json!({ "state": "logged_in" })));
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    assert_eq!(
        op.call("PUT", "/api/v1/agents/202/queues/support", Some(json!({ "available": false }))).0,
        StatusCode::FORBIDDEN
    );
    // Field validation.
    let (s, v) = op.call("PUT", "/api/v1/agents/201/state", Some(json!({ "state": "talking" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["state"].is_string(), "{v}");
    let (s, v) =
        op.call("PUT", "/api/v1/agents/201/state", Some(json!({ "state": "other_work", "other": 7 })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["other"].is_string(), "{v}");
    let (s, v) = op.call("PUT", "/api/v1/agents/201/queues/support", Some(json!({})));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["available"].is_string(), "{v}");
    // The engine's refusal, in words: no other-work states are configured.
    let (s, v) =
        op.call("PUT", "/api/v1/agents/201/state", Some(json!({ "state": "other_work", "other": 3 })));
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("refused")), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains('3')), "{v}");

    // A supervisor pauses 201 in the queue (by its number) and changes 202.
    let (s, v) = sv.call("PUT", "/api/v1/agents/201/queues/6000", Some(json!({ "available": false })));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["queues"], json!([{ "queue": "support", "available": false }]));
    let (s, v) = sv.call("PUT", "/api/v1/agents/202/state", Some(json!({ "state": "logged_in" })));
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("preparing")), "{v}");
    let (s, v) = sv.call("PUT", "/api/v1/agents/202/state", Some(json!({ "state": "lunch_break" })));
    assert_eq!((s, v["label"].as_str()), (StatusCode::OK, Some("昼休憩")), "{v}");
    assert_eq!(
        sv.call("PUT", "/api/v1/agents/555/state", Some(json!({ "state": "logged_in" }))).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        sv.call("PUT", "/api/v1/agents/201/queues/nowhere", Some(json!({ "available": true }))).0,
        StatusCode::NOT_FOUND
    );

    // Every change is visible to the monitor.
    let (s, v) = sv.get("/api/v1/agents");
    assert_eq!(s, StatusCode::OK, "{v}");
    let a201 = agent(&v, "201");
    assert_eq!(
        (a201["state"].as_str(), a201["queues"][0]["available"].as_bool()),
        (Some("available"), Some(false)),
        "{v}"
    );
    assert!(a201["since_s"].is_u64(), "{v}");
    assert_eq!(agent(&v, "202")["state"], "lunch_break", "{v}");
    // Paused in the queue and on lunch: nobody works the queue until 201 resumes.
    assert_eq!(sv.get("/api/v1/queues").1["queues"][0]["staffed"], 0);
    let (s, v) = op.call("PUT", "/api/v1/agents/201/queues/support", Some(json!({ "available": true })));
    assert_eq!((s, v["queues"][0]["available"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let (_, v) = sv.get("/api/v1/queues");
    assert_eq!(v["queues"][0]["staffed"], 1, "{v}");

    let actions = audit_actions(&w);
    for want in [
        ("op1", "agent.state", "201", "logged_in"),
        ("op1", "agent.state", "201", "available"),
        ("sv1", "agent.queue", "201", "6000 paused"),
        ("sv1", "agent.state", "202", "lunch_break"),
        ("op1", "agent.queue", "201", "support available"),
    ] {
        let want = (want.0.to_string(), want.1.to_string(), want.2.to_string(), want.3.to_string());
        assert!(actions.contains(&want), "{want:?} missing in {actions:?}");
    }
    // Refusals change nothing and are not audited as changes.
    assert!(!actions.iter().any(|a| a.1 == "agent.state" && a.3.starts_with("other_work")), "{actions:?}");
}

#[test]
fn supervision_is_started_through_the_api_and_refusals_carry_the_documented_codes() {
    let tb = callcenter_box();
    let w = admin(&tb);
    create_user_with_extension(&w, "op1", "agent", "201");
    create_user_with_extension(&w, "sv1", "supervisor", "900");
    let mut op = Web::new(&tb);
    op.first_login("op1", GOOD, GOOD2);
    let mut sv = Web::new(&tb);
    sv.first_login("sv1", GOOD, GOOD2);
    let listen = json!({ "mode": "listen", "supervisor": "900", "agent": "201" });

    let (s, v) = sv.get("/api/v1/supervision");
    assert_eq!((s, v["sessions"].clone()), (StatusCode::OK, json!([])), "{v}");
    // An agent may neither watch nor supervise.
    assert_eq!(op.get("/api/v1/supervision").0, StatusCode::FORBIDDEN);
    assert_eq!(op.call("POST", "/api/v1/supervision", Some(listen.clone())).0, StatusCode::FORBIDDEN);
    assert_eq!(op.call("DELETE", "/api/v1/supervision/900", None).0, StatusCode::FORBIDDEN);
    // Fields.
    let (s, v) = sv.call(
        "POST",
        "/api/v1/supervision",
        Some(json!({ "mode": "spy", "supervisor": "9x", "agent": "" })),
    );
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for f in ["mode", "supervisor", "agent"] {
        assert!(v["errors"][f].is_string(), "{f}: {v}");
    }
    // A supervisor rings only their own phone.
    let (s, v) = sv.call(
        "POST",
        "/api/v1/supervision",
        Some(json!({ "mode": "listen", "supervisor": "202", "agent": "201" })),
    );
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    // The engine's refusals with their documented codes: 201 is in no call (no phone is even
    // registered, 900's included), 555 is no extension, 900 cannot supervise itself.
    let (s, v) = sv.call("POST", "/api/v1/supervision", Some(listen.clone()));
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("agent_not_in_call")), "{v}");
    assert_eq!(v["message"], "the agent is not in a call");
    let (s, v) = w.call(
        "POST",
        "/api/v1/supervision",
        Some(json!({ "mode": "barge", "supervisor": "900", "agent": "555" })),
    );
    assert_eq!((s, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_agent")), "{v}");
    let (s, v) = w.call(
        "POST",
        "/api/v1/supervision",
        Some(json!({ "mode": "whisper", "supervisor": "201", "agent": "202" })),
    );
    assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_a_supervisor")), "{v}");
    assert_eq!(sv.call("DELETE", "/api/v1/supervision/900", None).0, StatusCode::NOT_FOUND);
    assert_eq!(sv.get("/api/v1/supervision").1["sessions"], json!([]));
}
