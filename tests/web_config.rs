//! The settings API (`/api/v1/config`) against a running box: authentication and validation of
//! every endpoint, secrets never returned, and an extension made through the API that a SIPp
//! phone registers with and is called on, refused again once deleted.
mod common;

use common::web::{admin, create_user_with_extension, Web, GOOD, GOOD2};
use common::{must_register, require_tool, wait_udp_bound, Sipp, TestBox};
use reqwest::StatusCode;
use serde_json::{json, Value};

const ALICE: (&str, &str) = ("201", "secret-201");
const NEW: (&str, &str) = ("250", "pw-250-secret");

const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/v1/config"),
    ("PUT", "/api/v1/config/extension"),
    ("GET", "/api/v1/audio"),
    ("PUT", "/api/v1/audio/hold"),
    ("DELETE", "/api/v1/audio/hold"),
];

/// A WAV file: 16-bit mono PCM at `rate` Hz, `seconds` long, a quiet tone.
fn wav(rate: u32, seconds: u32) -> Vec<u8> {
    let samples = rate * seconds;
    let data = samples * 2;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for i in 0..samples {
        let v = if (i / 20) % 2 == 0 { 2000i16 } else { -2000 };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn upload(w: &Web, name: &str, content_type: &str, body: Vec<u8>) -> StatusCode {
    w.client
        .put(format!("{}/api/v1/audio/{name}", w.base))
        .header("cookie", format!("hakoden_session={}", w.cookie.clone().unwrap_or_default()))
        .header("x-csrf-token", w.csrf.clone().unwrap_or_default())
        .header("content-type", content_type)
        .body(body)
        .send()
        .expect("send")
        .status()
}

#[test]
fn audio_files_are_uploaded_converted_listed_and_deleted() {
    let tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    assert_eq!(upload(&w, "hold", "audio/wav", wav(16_000, 2)), StatusCode::CREATED);
    let (s, v) = w.get("/api/v1/audio");
    assert_eq!(s, StatusCode::OK);
    let file = v["files"].as_array().and_then(|f| f.iter().find(|x| x["name"] == "hold")).cloned();
    let seconds = file.as_ref().and_then(|f| f["seconds"].as_f64()).unwrap_or(0.0);
    assert!((seconds - 2.0).abs() < 0.1, "converted to 8 kHz, 2 s: {v}");
    assert!(tb.console("audio list").contains("hold"), "the console sees it");
    assert_eq!(upload(&w, "hold", "text/plain", wav(8_000, 1)), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(upload(&w, "bad", "audio/wav", b"not a wav file".to_vec()), StatusCode::BAD_REQUEST);
    assert_eq!(upload(&w, ".hidden", "audio/wav", wav(8_000, 1)), StatusCode::BAD_REQUEST);
    assert_eq!(upload(&w, "big", "audio/wav", vec![0u8; 11 * 1024 * 1024]), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(w.call("DELETE", "/api/v1/audio/hold", None).0, StatusCode::NO_CONTENT);
    assert_eq!(w.call("DELETE", "/api/v1/audio/hold", None).0, StatusCode::NOT_FOUND);
    let (_, audit) = w.get("/api/v1/audio");
    assert_eq!(audit["files"], json!([]));
}

/// The extension list with `extra` added after the box's own (their masked passwords kept).
fn extensions_plus(w: &Web, extra: Value) -> Value {
    let (s, cfg) = w.get("/api/v1/config");
    assert_eq!(s, StatusCode::OK, "{cfg}");
    let mut list = cfg["extension"].as_array().cloned().unwrap_or_default();
    list.push(extra);
    Value::Array(list)
}

#[test]
fn config_endpoints_need_a_session_the_csrf_token_and_settings_edit() {
    let tb = TestBox::start(&[ALICE]);
    let anon = Web::new(&tb);
    for (m, p) in ENDPOINTS {
        let (s, v) = anon.call(m, p, Some(json!([])));
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p}: {v}");
    }
    let w = admin(&tb);
    let r = w.send("PUT", "/api/v1/config/extension", Some(json!([])), false);
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "PUT without CSRF");
    create_user_with_extension(&w, "op1", "agent", "201");
    let mut agent = Web::new(&tb);
    agent.first_login("op1", GOOD, GOOD2);
    for (m, p) in ENDPOINTS {
        let (s, v) = agent.call(m, p, Some(json!([])));
        assert_eq!(s, StatusCode::FORBIDDEN, "an agent may not {m} {p}: {v}");
        assert_eq!(v["error"], "forbidden");
    }
    // Nothing changed: the agent's attempts did not reach the document.
    let (_, cfg) = w.get("/api/v1/config");
    assert_eq!(cfg["extension"][0]["number"], "201", "{cfg}");
}

#[test]
fn bad_fields_are_named_and_secrets_never_leave_the_box() {
    let tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    let (s, cfg) = w.get("/api/v1/config");
    assert_eq!(s, StatusCode::OK);
    assert!(!cfg.to_string().contains(ALICE.1), "a password left the box: {cfg}");
    assert_eq!(cfg["extension"][0]["password"], "********");

    let bad = extensions_plus(&w, json!({ "number": "2x5", "name": "Bad", "password": "long-enough-1" }));
    let (s, v) = w.call("PUT", "/api/v1/config/extension", Some(bad));
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "invalid");
    assert!(v["fields"]["extension[2].number"].is_string(), "field path of the second extension: {v}");

    let short = extensions_plus(&w, json!({ "number": "251", "name": "Short", "password": "short" }));
    let (s, v) = w.call("PUT", "/api/v1/config/extension", Some(short));
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["fields"]["extension[2].password"].is_string(), "{v}");
    assert!(!v.to_string().contains("short\""), "the refused secret is not echoed: {v}");

    // Wrong shapes, unknown and protected sections, wrong content type.
    let (s, v) = w.call("PUT", "/api/v1/config/extension", Some(json!({ "number": "201" })));
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(w.call("PUT", "/api/v1/config/nothing", Some(json!({}))).0, StatusCode::NOT_FOUND);
    assert_eq!(w.call("PUT", "/api/v1/config/web", Some(json!({}))).0, StatusCode::NOT_FOUND);
    let r = w
        .client
        .put(format!("{}/api/v1/config/extension", w.base))
        .header("cookie", format!("hakoden_session={}", w.cookie.clone().unwrap_or_default()))
        .header("x-csrf-token", w.csrf.clone().unwrap_or_default())
        .header("content-type", "text/plain")
        .body("[]")
        .send()
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A masked secret sent back keeps the stored one; the saved file has it, the API does not.
    let (s, v) = w.call("PUT", "/api/v1/config/extension", Some(cfg["extension"].clone()));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["restart_required"], false);
    let saved = std::fs::read_to_string(tb.data_dir().join("config/current.toml")).expect("saved document");
    assert!(saved.contains(ALICE.1), "the stored password was kept:\n{saved}");
    let (_, after) = w.get("/api/v1/config");
    assert!(!after.to_string().contains(ALICE.1));

    // An address change is saved and needs a restart (the test box's ports are command-line
    // options, which win over the document).
    let (s, v) = w.call("PUT", "/api/v1/config/sip", Some(json!({ "advertise": "192.0.2.9" })));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["restart_required"], true, "{v}");
    assert_eq!(v["restart"], json!(["sip.advertise"]));

    let (_, audit) = w.get("/api/v1/audit");
    assert!(audit.to_string().contains("config.update"), "{audit}");
    assert!(!audit.to_string().contains(ALICE.1));
}

#[test]
fn an_extension_made_through_the_api_registers_takes_a_call_and_is_refused_once_deleted() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    let list = extensions_plus(&w, json!({ "number": NEW.0, "name": "New desk", "password": NEW.1 }));
    let (s, v) = w.call("PUT", "/api/v1/config/extension", Some(list));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["restart_required"], false, "{v}");

    let (alice_port, new_port) = (tb.port(), tb.port());
    must_register(&tb, NEW, new_port);
    must_register(&tb, ALICE, alice_port);
    let callee = Sipp::new("uas_answer.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(new_port)
        .media_port(tb.port())
        .key("rtpport", tb.port())
        .spawn();
    wait_udp_bound(new_port);
    let call = Sipp::new("uac_call.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(alice_port)
        .media_port(tb.port())
        .service(NEW.0)
        .key("caller", ALICE.0)
        .key("pcap", common::g711a_pcap().display())
        .auth(ALICE.0, ALICE.1)
        .run();
    call.assert_ok("201 calls the new extension 250");
    callee.wait().assert_ok("250 answers");

    // Delete it: its registration goes and a new REGISTER is refused.
    let (_, cfg) = w.get("/api/v1/config");
    let kept: Vec<Value> = cfg["extension"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["number"] != NEW.0)
        .collect();
    let (s, v) = w.call("PUT", "/api/v1/config/extension", Some(Value::Array(kept)));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["registrations_dropped"].as_u64().unwrap_or(0) >= 1, "{v}");
    let regs = tb.console("show registrations");
    assert!(!regs.lines().any(|l| l.split_whitespace().next() == Some(NEW.0)), "{regs}");
    Sipp::new("register_forbidden.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(tb.port())
        .media_port(tb.port())
        .service(NEW.0)
        .auth(NEW.0, NEW.1)
        .run()
        .assert_ok("REGISTER of the deleted extension must get 403");
}

#[test]
fn web_edits_survive_a_restart_until_the_config_file_changes() {
    let mut tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    let list = extensions_plus(&w, json!({ "number": NEW.0, "name": "New desk", "password": NEW.1 }));
    assert_eq!(w.call("PUT", "/api/v1/config/extension", Some(list)).0, StatusCode::OK);
    let has_new = |tb: &TestBox| {
        tb.console("show extensions").lines().any(|l| l.split_whitespace().next() == Some(NEW.0))
    };
    tb.restart();
    assert!(has_new(&tb), "the saved document wins over the unchanged file");
    // The installer edits the file: it is imported again and wins.
    let file = tb.data_dir().parent().expect("box dir").join("hakoden.toml");
    let text = std::fs::read_to_string(&file).expect("config file");
    std::fs::write(&file, format!("{text}\n# edited by the installer\n")).expect("write config");
    tb.restart();
    assert!(!has_new(&tb), "a changed file is imported again");
}
