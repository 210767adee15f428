//! The phonebook API (issue 7) over real HTTPS against a running box: authentication and
//! validation of every endpoint, personal entries kept private, CSV import in UTF-8 and
//! Shift_JIS with bad rows reported, export round trips; and with SIPp peers, the caller's
//! phonebook name in the INVITE that rings a phone.
mod common;

use common::web::{admin, create_user_with_extension, Web, GOOD, GOOD2};
use common::{free_udp_port, g711a_pcap, must_register, require_tool, wait_udp_bound, Sipp, TestBox};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");

/// Every phonebook route, with a path that reaches the handler.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/phonebook"),
    ("POST", "/api/v1/phonebook"),
    ("POST", "/api/v1/phonebook/import"),
    ("GET", "/api/v1/phonebook/export"),
    ("GET", "/api/v1/phonebook/1"),
    ("PUT", "/api/v1/phonebook/1"),
    ("DELETE", "/api/v1/phonebook/1"),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sends raw bytes (a CSV upload) with the session and CSRF token.
fn upload(w: &Web, path: &str, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = w.client.post(format!("{}{path}", w.base)).header("content-type", content_type).body(body);
    if let Some(c) = &w.cookie {
        req = req.header("cookie", format!("hakoden_session={c}"));
    }
    if let Some(t) = &w.csrf {
        req = req.header("x-csrf-token", t);
    }
    let r = req.send().unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = r.status();
    (status, r.json().unwrap_or(Value::Null))
}

/// Downloads bytes with the session.
fn download(w: &Web, path: &str) -> (StatusCode, String, Vec<u8>) {
    let mut req = w.client.get(format!("{}{path}", w.base));
    if let Some(c) = &w.cookie {
        req = req.header("cookie", format!("hakoden_session={c}"));
    }
    let r = req.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, ct, r.bytes().map(|b| b.to_vec()).unwrap_or_default())
}

/// A user of `role` logged in (first password changed).
fn user(tb: &TestBox, w: &Web, id: &str, role: &str, ext: &str) -> Web {
    create_user_with_extension(w, id, role, ext);
    let mut u = Web::new(tb);
    u.first_login(id, GOOD, GOOD2);
    u
}

fn names(v: &Value) -> Vec<String> {
    v["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn entry(name: &str, number: &str) -> Value {
    json!({ "name": name, "kana": "", "numbers": [{ "label": "会社", "number": number }] })
}

#[test]
fn every_phonebook_endpoint_needs_a_session_csrf_and_the_permission() {
    let tb = TestBox::start(&[ALICE]);
    let anon = Web::new(&tb);
    for (m, p) in ROUTES {
        let (s, v) = anon.call(m, p, Some(json!({})));
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p}: {v}");
    }
    let w = admin(&tb);
    for (m, p) in ROUTES.iter().filter(|(m, _)| *m != "GET") {
        let r = w.send(m, p, Some(json!({})), false);
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{m} {p} without CSRF");
    }
    let (s, v) = w.call("PUT", "/api/v1/roles/nobook", Some(json!({ "permissions": ["dashboard_view"] })));
    assert!(s.is_success(), "{v}");
    let outsider = user(&tb, &w, "outsider", "nobook", "201");
    for (m, p) in ROUTES {
        let (s, v) = outsider.call(m, p, Some(entry("x", "0312345678")));
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: {v}");
    }
    // The agent role reads the shared book and keeps a personal one, but cannot edit shared.
    let agent = user(&tb, &w, "kato", "agent", "201");
    let (s, v) = agent.call("POST", "/api/v1/phonebook", Some(entry("共有", "0312345678")));
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) =
        upload(&agent, "/api/v1/phonebook/import?scope=shared", "text/csv", fixture("phonebook-utf8.csv"));
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(agent.get("/api/v1/phonebook").0, StatusCode::OK);

    // Validation: every bad field is named.
    let bad = json!({ "name": "", "kana": "ア".repeat(65), "numbers": [{ "label": "", "number": "abc" }] });
    let (s, v) = w.call("POST", "/api/v1/phonebook", Some(bad));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for f in ["name", "kana", "numbers.0.number"] {
        assert!(v["errors"][f].is_string(), "{f} not reported: {v}");
    }
    let (s, v) = w.call("POST", "/api/v1/phonebook", Some(json!({ "name": "x", "numbers": [] })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["numbers"].is_string(), "{v}");
    let (s, _) = w.call("POST", "/api/v1/phonebook", Some(json!({ "name": "x", "extra": 1 })));
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = w.call("GET", "/api/v1/phonebook?limit=100000", None);
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.get("/api/v1/phonebook/999").0, StatusCode::NOT_FOUND);
    assert_eq!(w.get("/api/v1/phonebook/abc").0, StatusCode::NOT_FOUND);
    let (s, _) = w.call("GET", "/api/v1/phonebook/export?encoding=latin1", None);
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Uploads: wrong type 415, too large 413, bad header or encoding 422.
    let (s, _) = upload(&w, "/api/v1/phonebook/import", "application/json", b"{}".to_vec());
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = upload(&w, "/api/v1/phonebook/import", "text/csv", vec![b'a'; 2 * 1024 * 1024 + 1]);
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, v) = upload(&w, "/api/v1/phonebook/import", "text/csv", b"foo,bar\n1,2\n".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["file"].is_string(), "{v}");
    let (s, v) =
        upload(&w, "/api/v1/phonebook/import?encoding=ebcdic", "text/csv", b"name,number\n".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["encoding"].is_string(), "{v}");

    // Create, update, delete; each audited.
    let (s, v) = w.call("POST", "/api/v1/phonebook", Some(entry("山田 太郎", "03-1234-5678")));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_u64().unwrap_or_default();
    let (s, v) = w.call("PUT", &format!("/api/v1/phonebook/{id}"), Some(entry("山田 次郎", "03-1234-5679")));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "山田 次郎");
    let (s, v) = agent.call("DELETE", &format!("/api/v1/phonebook/{id}"), None);
    assert_eq!(s, StatusCode::FORBIDDEN, "an agent deleted a shared entry: {v}");
    assert_eq!(w.call("DELETE", &format!("/api/v1/phonebook/{id}"), None).0, StatusCode::NO_CONTENT);
    assert_eq!(w.get(&format!("/api/v1/phonebook/{id}")).0, StatusCode::NOT_FOUND);
    let (_, audit) = w.get("/api/v1/audit");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for a in ["phonebook.create", "phonebook.update", "phonebook.delete"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

#[test]
fn a_personal_entry_is_seen_only_by_its_owner() {
    let tb = TestBox::start(&[ALICE, BOB]);
    let w = admin(&tb);
    let kato = user(&tb, &w, "kato", "agent", "201");
    let sato = user(&tb, &w, "sato", "agent", "202");
    let (s, v) = kato.call(
        "POST",
        "/api/v1/phonebook",
        Some(json!({ "scope": "personal", "name": "加藤の友人", "numbers": [{ "number": "09011112222" }] })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["scope"], "personal");
    let id = v["id"].as_u64().unwrap_or_default();
    let (s, v) = w.call("POST", "/api/v1/phonebook", Some(entry("共有先", "0612345678")));
    assert_eq!(s, StatusCode::CREATED, "{v}");

    assert_eq!(names(&kato.get("/api/v1/phonebook").1), ["加藤の友人", "共有先"]);
    assert_eq!(names(&kato.get("/api/v1/phonebook?scope=personal").1), ["加藤の友人"]);
    assert_eq!(names(&sato.get("/api/v1/phonebook").1), ["共有先"]);
    assert_eq!(names(&w.get("/api/v1/phonebook").1), ["共有先"], "not even the admin sees it");
    for (m, body) in [("GET", None), ("PUT", Some(entry("x", "0312345678"))), ("DELETE", None)] {
        let (s, v) = sato.call(m, &format!("/api/v1/phonebook/{id}"), body);
        assert_eq!(s, StatusCode::NOT_FOUND, "{m}: {v}");
    }
    let (_, _, csv) = download(&sato, "/api/v1/phonebook/export?scope=personal");
    assert!(!String::from_utf8_lossy(&csv).contains("加藤"), "exported to another user");
    // Search: kana in hiragana, number digits.
    assert_eq!(names(&kato.get("/api/v1/phonebook?q=09011").1), ["加藤の友人"]);
    assert_eq!(names(&kato.get("/api/v1/phonebook?q=%E5%85%B1%E6%9C%89").1), ["共有先"]);
}

#[test]
fn csv_import_reports_bad_rows_by_number_and_export_round_trips() {
    let tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    let (s, v) = upload(&w, "/api/v1/phonebook/import", "text/csv", fixture("phonebook-sjis.csv"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["encoding"], "shift_jis");
    assert_eq!(v["imported"], 3);
    assert_eq!(v["errors"], json!([{ "row": 4, "field": "number1", "message": "not a phone number" }]));
    let (s, v) =
        upload(&w, "/api/v1/phonebook/import?encoding=utf-8", "text/csv", fixture("phonebook-utf8.csv"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["imported"], 1);
    assert_eq!(v["errors"][0]["row"], 3);
    assert_eq!(v["errors"][0]["field"], "name");
    let (_, list) = w.get("/api/v1/phonebook?limit=500");
    assert_eq!(names(&list), ["山田 太郎", "鈴木 花子", "田中 美咲", "Sato Kenji"]);
    assert_eq!(list["entries"][0]["numbers"][1], json!({ "label": "携帯", "number": "090-1234-5678" }));
    assert_eq!(names(&w.get("/api/v1/phonebook?q=%E3%82%84%E3%81%BE%E3%81%A0").1), ["山田 太郎"], "やまだ");

    for enc in ["utf-8", "shift_jis"] {
        let (s, ct, bytes) = download(&w, &format!("/api/v1/phonebook/export?encoding={enc}"));
        assert_eq!(s, StatusCode::OK);
        assert!(ct.starts_with("text/csv"), "{ct}");
        if enc == "utf-8" {
            assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "no BOM for Excel");
        }
        // Into a fresh box: the same entries come back.
        let tb2 = TestBox::start(&[ALICE]);
        let w2 = admin(&tb2);
        let (s, v) = upload(&w2, "/api/v1/phonebook/import", "text/csv", bytes);
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["errors"], json!([]), "{enc}");
        let (_, again) = w2.get("/api/v1/phonebook?limit=500");
        let strip = |v: &Value| -> Vec<Value> {
            v["entries"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| json!([e["name"], e["kana"], e["company"], e["note"], e["numbers"]]))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(strip(&again), strip(&list), "{enc} export did not round-trip");
    }
}

/// The trunk of the peer test: SIPp at `provider_port` is the provider; DID 0312345678 rings
/// extension 201.
fn trunk_toml(provider_port: u16) -> String {
    format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{provider_port}\"\ndomain = \"provider.example\"\n\
         username = \"0312345678\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[did]]\nnumber = \"0312345678\"\ndefault = {{ extension = \"201\" }}\n"
    )
}

#[test]
fn a_phone_rung_by_a_caller_in_the_phonebook_shows_the_callers_name() {
    if !require_tool("sipp") {
        return;
    }
    let provider_port = free_udp_port();
    let mut tb = TestBox::start_with_config(&[ALICE, BOB], &[], &trunk_toml(provider_port));
    let w = admin(&tb);
    let (s, v) = w.call("POST", "/api/v1/phonebook", Some(entry("山田 太郎", "06-1111-2222")));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w.call("POST", "/api/v1/phonebook", Some(entry("受付", "202")));
    assert_eq!(s, StatusCode::CREATED, "{v}");

    let phone_port = tb.port();
    must_register(&tb, ALICE, phone_port);
    // An outside call over the trunk.
    let phone = Sipp::new("uas_answer.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(phone_port)
        .media_port(tb.port())
        .key("rtpport", tb.port())
        .spawn();
    wait_udp_bound(phone_port);
    let provider = Sipp::new("provider_inbound_did.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(provider_port)
        .key("did", "0312345678")
        .key("caller", "0611112222")
        .key("rtp_sink", tb.port())
        .timeout(Duration::from_secs(20))
        .run();
    let phone = phone.wait();
    let context = format!("{}\n{}\n--- box ---\n{}", provider.report(), phone.report(), tb.stderr_tail(40));
    assert!(provider.code == Some(0), "the DID call failed\n{context}");
    assert!(
        phone.messages.contains("From: \"山田 太郎\" <sip:0611112222@"),
        "the phone's INVITE lacks the name\n{context}"
    );

    // An internal call from 202 to 201: the shared name.
    let bob_port = tb.port();
    must_register(&tb, BOB, bob_port);
    let from = internal_call_from(&tb, phone_port, bob_port);
    assert!(from.contains("From: \"受付\" <sip:202@"), "the internal INVITE lacks the name\n{from}");

    // The called extension's user keeps a personal name for 202; after a restart (the index
    // is loaded at start) it wins over the shared one.
    let kato = user(&tb, &w, "kato", "agent", "201");
    let (s, v) = kato.call(
        "POST",
        "/api/v1/phonebook",
        Some(json!({ "scope": "personal", "name": "同僚", "numbers": [{ "number": "202" }] })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    tb.restart();
    must_register(&tb, ALICE, phone_port);
    must_register(&tb, BOB, bob_port);
    let from = internal_call_from(&tb, phone_port, bob_port);
    assert!(from.contains("From: \"同僚\" <sip:202@"), "the personal name is not used after restart\n{from}");
}

/// Calls 201 (a SIPp phone on `phone_port`) from 202 (on `bob_port`); returns the messages the
/// phone saw.
fn internal_call_from(tb: &TestBox, phone_port: u16, bob_port: u16) -> String {
    let phone = Sipp::new("uas_answer.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(phone_port)
        .media_port(tb.port())
        .key("rtpport", tb.port())
        .spawn();
    wait_udp_bound(phone_port);
    let caller = Sipp::new("uac_call.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(bob_port)
        .media_port(tb.port())
        .service(ALICE.0)
        .key("caller", BOB.0)
        .key("pcap", g711a_pcap().display())
        .auth(BOB.0, BOB.1)
        .timeout(Duration::from_secs(20))
        .run();
    let phone = phone.wait();
    assert!(
        caller.code == Some(0),
        "the internal call failed\n{}\n{}\n{}",
        caller.report(),
        phone.report(),
        tb.stderr_tail(40)
    );
    phone.messages
}

// Block and restriction lists.

#[test]
fn lists_are_listed_added_deleted_and_imported_live_and_saved() {
    let tb = TestBox::start(&[ALICE]);
    let anon = Web::new(&tb);
    for (m, p) in [
        ("GET", "/api/v1/lists/block"),
        ("POST", "/api/v1/lists/block"),
        ("POST", "/api/v1/lists/block/import"),
        ("DELETE", "/api/v1/lists/block/0312345678"),
    ] {
        assert_eq!(anon.call(m, p, Some(json!({}))).0, StatusCode::UNAUTHORIZED, "{m} {p}");
    }
    let w = admin(&tb);
    let agent = user(&tb, &w, "kato", "agent", "201");
    assert_eq!(agent.get("/api/v1/lists/block").0, StatusCode::FORBIDDEN);
    let (s, _) = agent.call("POST", "/api/v1/lists/restrict", Some(json!({ "number": "0990*" })));
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(w.get("/api/v1/lists/other").0, StatusCode::NOT_FOUND);

    let (s, v) = w.call("POST", "/api/v1/lists/block", Some(json!({ "number": "hello" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["number"].is_string(), "{v}");
    let (s, v) = w.call(
        "POST",
        "/api/v1/lists/block",
        Some(json!({ "number": "0311112222", "caller_id": "0312345678" })),
    );
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["caller_id"].is_string(), "{v}");
    let (s, v) =
        w.call("POST", "/api/v1/lists/block", Some(json!({ "number": "090-9999-8888", "note": "いたずら" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w.call(
        "POST",
        "/api/v1/lists/restrict",
        Some(json!({ "number": "0990*", "note": "有料", "caller_id": "0312345678" })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Live: the console sees it at once.
    let shown = tb.console("show block");
    assert!(shown.contains("09099998888") && shown.contains("いたずら"), "{shown}");
    let (_, v) = w.get("/api/v1/lists/restrict");
    assert_eq!(v["entries"], json!([{ "number": "0990*", "note": "有料", "caller_id": "0312345678" }]));

    let (s, v) = upload(&w, "/api/v1/lists/block/import", "text/csv", fixture("lists/bad-lines.csv"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["imported"], 3);
    let rows: Vec<u64> = v["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["row"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(rows, [4, 5, 6, 7, 8, 9]);
    assert_eq!(v["total"], 4);
    let (s, _) = upload(&w, "/api/v1/lists/block/import", "application/json", b"{}".to_vec());
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (s, _) = w.call("DELETE", "/api/v1/lists/block/0120*", None);
    assert_eq!(s, StatusCode::NOT_FOUND, "0120* is not listed (0120123456 is)");
    assert_eq!(w.call("DELETE", "/api/v1/lists/block/03*", None).0, StatusCode::NO_CONTENT);
    let (s, _) = w.call("DELETE", "/api/v1/lists/restrict/0990*?caller_id=0312345678", None);
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = w.get("/api/v1/lists/block?q=0312");
    assert_eq!(v["total"], 1, "{v}");
    // Saved where the box reads it at start.
    let saved = std::fs::read_to_string(tb.data_dir().join("lists/block.csv")).unwrap_or_default();
    assert!(saved.contains("09099998888") && !saved.contains("03*"), "{saved}");
    let (_, audit) = w.get("/api/v1/audit");
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for a in ["block.add", "restrict.add", "block.import", "block.delete", "restrict.delete"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

// Call history.

const CAROL: (&str, &str) = ("203", "secret-203");

/// One call from `from` to `to`'s SIPp phone running `callee_scenario`.
fn place_call(
    tb: &TestBox,
    from: ((&str, &str), u16),
    to: u16,
    callee_scenario: &str,
    caller_scenario: &str,
    callee: &str,
) {
    let phone = Sipp::new(callee_scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(to)
        .media_port(tb.port())
        .key("rtpport", tb.port())
        .spawn();
    wait_udp_bound(to);
    let caller = Sipp::new(caller_scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(from.1)
        .media_port(tb.port())
        .service(callee)
        .key("caller", from.0 .0)
        .key("pcap", g711a_pcap().display())
        .auth(from.0 .0, from.0 .1)
        .timeout(Duration::from_secs(20))
        .run();
    let phone = phone.wait();
    assert!(caller.code == Some(0), "{caller_scenario}\n{}\n{}", caller.report(), phone.report());
}

fn call_ids(v: &Value) -> Vec<u64> {
    v["rows"].as_array().map(|a| a.iter().filter_map(|r| r["call_id"].as_u64()).collect()).unwrap_or_default()
}

#[test]
fn history_filters_sorts_pages_and_exports_calls_placed_through_the_box() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB, CAROL]);
    let (a, b, c) = (tb.port(), tb.port(), tb.port());
    must_register(&tb, ALICE, a);
    must_register(&tb, BOB, b);
    must_register(&tb, CAROL, c);
    place_call(&tb, (ALICE, a), b, "uas_answer.xml", "uac_call.xml", BOB.0);
    place_call(&tb, (BOB, b), c, "uas_answer.xml", "uac_call.xml", CAROL.0);
    place_call(&tb, (CAROL, c), a, "uas_busy.xml", "uac_reject.xml", ALICE.0);
    let shown = tb.console_until("show cdr", Duration::from_secs(10), |s| s.contains("BUSY"));
    assert!(shown.contains("BUSY"), "{shown}");

    let w = admin(&tb);
    assert_eq!(Web::new(&tb).get("/api/v1/history").0, StatusCode::UNAUTHORIZED);
    let agent = user(&tb, &w, "kato", "agent", "201");
    assert_eq!(agent.get("/api/v1/history").0, StatusCode::FORBIDDEN);
    assert_eq!(agent.get("/api/v1/history/export").0, StatusCode::FORBIDDEN);

    let (s, v) = w.get("/api/v1/history");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(call_ids(&v), [3, 2, 1], "newest first by default: {v}");
    assert_eq!(v["rows"][0]["result"], "busy");
    assert_eq!(v["rows"][1]["kind"], "internal");
    assert_eq!(call_ids(&w.get("/api/v1/history?caller=201&caller_match=exact").1), [1]);
    assert_eq!(call_ids(&w.get("/api/v1/history?caller=201&caller_match=exact&caller_not=true").1), [3, 2]);
    assert_eq!(call_ids(&w.get("/api/v1/history?called=20&called_match=prefix&order=asc").1), [1, 2, 3]);
    assert_eq!(call_ids(&w.get("/api/v1/history?result=answered").1), [2, 1]);
    assert_eq!(call_ids(&w.get("/api/v1/history?result=answered&result_not=true").1), [3]);
    assert_eq!(call_ids(&w.get("/api/v1/history?talk_min=1").1), [2, 1]);
    assert_eq!(call_ids(&w.get("/api/v1/history?kind=incoming,outgoing").1), Vec::<u64>::new());
    assert_eq!(call_ids(&w.get("/api/v1/history?from=0&to=1").1), Vec::<u64>::new());
    let (_, v) = w.get("/api/v1/history?limit=1&offset=1&view=detailed");
    assert_eq!(call_ids(&v), [2]);
    assert_eq!(v["total"], 3);
    assert!(v["rows"][0]["detail"]["legs"].as_array().is_some_and(|l| l.len() >= 2), "{v}");
    for bad in [
        "limit=0",
        "limit=5000",
        "order=up",
        "view=x",
        "kind=fax",
        "talk_min=5&talk_max=1",
        "tz=9999",
        "nope=1",
    ] {
        let (s, v) = w.get(&format!("/api/v1/history?{bad}"));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let (s, ct, csv) = download(&w, "/api/v1/history/export?result=answered&order=asc");
    assert_eq!(s, StatusCode::OK);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let text = String::from_utf8(csv).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first().copied(), Some("\u{FEFF}通話日時,発信者番号,外線発信者番号,着信者番号,制御,発信先,通話結果,呼出時間,通話時間,録音ファイル"));
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.get(1).is_some_and(|l| l.contains(",201,,202,内線,202,応答,")), "{text}");
}
