//! The system endpoints over real HTTPS against a running box (a developer build, not the A/B
//! appliance; the appliance's update path is `tests/image_update.rs`): authentication and the
//! `system_edit` permission on every route, firmware status and the 503 off the appliance, a
//! backup download that a restore takes back after a restart, refusals of damaged or foreign
//! uploads, and the console's factory reset.
mod common;

use common::web::{admin, create_user_with_extension, Web, GOOD};
use common::TestBox;
use reqwest::StatusCode;
use serde_json::Value;

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/firmware"),
    ("POST", "/api/v1/firmware"),
    ("GET", "/api/v1/backup"),
    ("POST", "/api/v1/restore"),
];

fn raw(w: &Web, method: &str, path: &str, ctype: &str, body: Vec<u8>) -> reqwest::blocking::Response {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = w.client.request(m, format!("{}{path}", w.base)).header("content-type", ctype).body(body);
    if let Some(c) = &w.cookie {
        req = req.header("cookie", format!("hakoden_session={c}"));
    }
    if let Some(t) = &w.csrf {
        req = req.header("x-csrf-token", t);
    }
    req.send().expect("request")
}

fn json_of(r: reqwest::blocking::Response) -> (StatusCode, Value) {
    let s = r.status();
    (s, r.json().unwrap_or(Value::Null))
}

#[test]
fn system_routes_need_a_session_and_the_system_permission() {
    let tb = TestBox::start(&[("201", "secret201x")]);
    let anonymous = Web::new(&tb);
    for (m, p) in ROUTES {
        let r = raw(&anonymous, m, p, "application/octet-stream", b"x".to_vec());
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{m} {p}");
    }
    let w = admin(&tb);
    create_user_with_extension(&w, "sv", "supervisor", "201");
    let mut sv = Web::new(&tb);
    sv.first_login("sv", GOOD, "Fuji3776Zan");
    for (m, p) in ROUTES {
        let r = raw(&sv, m, p, "application/octet-stream", b"HAKOBAK1".to_vec());
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "supervisor: {m} {p}");
    }
    // Off the appliance: the status says so and an update is refused with the reason.
    let (s, v) = w.get("/api/v1/firmware");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["appliance"], false, "{v}");
    let (s, v) =
        json_of(raw(&w, "POST", "/api/v1/firmware", "application/octet-stream", b"HAKOBND1....".to_vec()));
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "not_an_appliance");
}

#[test]
fn a_downloaded_backup_restores_the_users_after_a_restart_and_damaged_ones_are_refused() {
    let mut tb = TestBox::start(&[("201", "secret201x")]);
    let w = admin(&tb);
    create_user_with_extension(&w, "keeper", "agent", "201");
    let r = raw(&w, "GET", "/api/v1/backup", "application/octet-stream", vec![]);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .contains(".hkb"));
    let archive = r.bytes().expect("body").to_vec();
    assert!(archive.starts_with(b"HAKOBAK1"));

    // After the backup: a user that the restore must take away again.
    create_user_with_extension(&w, "later", "agent", "201");

    // Refusals: wrong type, not a backup, a flipped byte.
    let (s, _) = json_of(raw(&w, "POST", "/api/v1/restore", "application/json", archive.clone()));
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, v) =
        json_of(raw(&w, "POST", "/api/v1/restore", "application/octet-stream", b"PK\x03\x04".to_vec()));
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("not_a_backup")));
    let mut damaged = archive.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    let (s, v) = json_of(raw(&w, "POST", "/api/v1/restore", "application/octet-stream", damaged));
    assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_backup")), "{v}");
    assert!(v["message"].as_str().unwrap_or("").contains("checksum"), "{v}");

    let (s, v) = json_of(raw(&w, "POST", "/api/v1/restore", "application/octet-stream", archive));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["restart_required"], true);
    let (_, audit) = w.get("/api/v1/audit?limit=50");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert!(actions.contains(&"system.backup") && actions.contains(&"system.restore"), "{actions:?}");

    tb.restart();
    let w = {
        let mut w = Web::new(&tb);
        let (s, v) = w.login("admin", GOOD);
        assert_eq!(s, StatusCode::OK, "the restored admin keeps the changed password: {v}");
        w
    };
    let (_, users) = w.get("/api/v1/users");
    let ids: Vec<&str> = users["users"]
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&"keeper") && !ids.contains(&"later"), "{ids:?}");
}

#[test]
fn the_console_factory_reset_asks_first_and_then_starts_the_box_afresh() {
    let mut tb = TestBox::start(&[("201", "secret201x")]);
    let w = admin(&tb);
    create_user_with_extension(&w, "someone", "agent", "201");
    let asked = tb.console("factory-reset");
    assert!(asked.contains("factory-reset confirm"), "{asked}");
    let done = tb.console("factory-reset confirm");
    assert!(done.contains("staged"), "{done}");
    tb.restart();
    assert!(tb.web_admin_password().is_some(), "a wiped box seeds a new admin password");
    // The console's backup of the fresh box: one file outside the data directory.
    let file = tb.scratch("backups").join("console.hkb");
    let said = tb.console(&format!("backup {}", file.display()));
    assert!(said.contains("backup written"), "{said}");
    assert!(std::fs::read(&file).expect("backup file").starts_with(b"HAKOBAK1"));
}
