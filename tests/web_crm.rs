//! The CRM API (issue 9) over real HTTPS against a running box: authentication, CSRF and
//! permissions of every endpoint; field-level validation; search, bulk edit and CSV download;
//! the customer CSV upload (Shift_JIS, a bad row skipped and reported, whole-file refusals);
//! cases moving through a workflow and the workflow statistics; presence and chat; durability
//! across a restart; and, with SIPp peers, the screen-pop stream of the extension whose phone
//! rings for a DID call (customer found by the caller's number, the DID's pop-up URL) and the
//! customer's call history.
mod common;

use common::web::{admin, create_user_with_extension, Web, GOOD, GOOD2};
use common::{free_udp_port, must_register, require_tool, wait_udp_bound, Sipp, TestBox};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::BufRead;
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");

/// A queue (chat group) whose members are 201 and 202.
const QUEUE: &str = "[[queue]]\nname = \"support\"\nnumber = \"6000\"\nmembers = [\"201\", \"202\"]\n";

/// Every CRM route, with a path that reaches the handler, and whether the agent role may use
/// it (agents hold crm_view, crm_edit and chat_use; crm_admin is for supervisors and admins).
const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/api/v1/crm/customers", true),
    ("POST", "/api/v1/crm/customers", true),
    ("POST", "/api/v1/crm/customers/bulk", true),
    ("GET", "/api/v1/crm/customers/export", true),
    ("POST", "/api/v1/crm/customers/upload/preview", false),
    ("POST", "/api/v1/crm/customers/upload", false),
    ("GET", "/api/v1/crm/customers/1", true),
    ("PUT", "/api/v1/crm/customers/1", true),
    ("DELETE", "/api/v1/crm/customers/1", true),
    ("GET", "/api/v1/crm/customers/1/calls", true),
    ("GET", "/api/v1/crm/cases", true),
    ("POST", "/api/v1/crm/cases", true),
    ("POST", "/api/v1/crm/cases/bulk", true),
    ("GET", "/api/v1/crm/cases/export", true),
    ("GET", "/api/v1/crm/cases/1", true),
    ("PUT", "/api/v1/crm/cases/1", true),
    ("DELETE", "/api/v1/crm/cases/1", true),
    ("POST", "/api/v1/crm/cases/1/step", true),
    ("GET", "/api/v1/crm/faq", true),
    ("POST", "/api/v1/crm/faq", true),
    ("GET", "/api/v1/crm/faq/1", true),
    ("PUT", "/api/v1/crm/faq/1", true),
    ("DELETE", "/api/v1/crm/faq/1", true),
    ("GET", "/api/v1/crm/tags", true),
    ("PUT", "/api/v1/crm/tags/VIP", false),
    ("DELETE", "/api/v1/crm/tags/VIP", false),
    ("GET", "/api/v1/crm/formats", true),
    ("PUT", "/api/v1/crm/formats/demo", false),
    ("DELETE", "/api/v1/crm/formats/demo", false),
    ("GET", "/api/v1/crm/fields", true),
    ("PUT", "/api/v1/crm/fields/customer/x", false),
    ("DELETE", "/api/v1/crm/fields/customer/x", false),
    ("GET", "/api/v1/crm/steps", true),
    ("PUT", "/api/v1/crm/steps/s1", false),
    ("DELETE", "/api/v1/crm/steps/s1", false),
    ("GET", "/api/v1/crm/workflows", true),
    ("PUT", "/api/v1/crm/workflows/w", false),
    ("DELETE", "/api/v1/crm/workflows/w", false),
    ("GET", "/api/v1/crm/workflow-stats", false),
    ("GET", "/api/v1/crm/workflow-stats/csv", false),
    ("GET", "/api/v1/crm/screen-pop/stream", true),
    ("GET", "/api/v1/presence", true),
    ("GET", "/api/v1/chat", true),
    ("POST", "/api/v1/chat", true),
    ("POST", "/api/v1/chat/read", true),
];

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
fn download(w: &Web, path: &str) -> (StatusCode, Vec<u8>) {
    let mut req = w.client.get(format!("{}{path}", w.base));
    if let Some(c) = &w.cookie {
        req = req.header("cookie", format!("hakoden_session={c}"));
    }
    let r = req.send().unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status();
    (status, r.bytes().map(|b| b.to_vec()).unwrap_or_default())
}

/// A user of `role` with extension `ext`, logged in (first password changed).
fn user(tb: &TestBox, w: &Web, id: &str, role: &str, ext: &str) -> Web {
    create_user_with_extension(w, id, role, ext);
    let mut u = Web::new(tb);
    u.first_login(id, GOOD, GOOD2);
    u
}

fn ok(s: StatusCode, v: &Value) {
    assert!(s.is_success(), "{s}: {v}");
}

fn audited(w: &Web) -> Vec<String> {
    let (_, audit) = w.get("/api/v1/audit?limit=500");
    audit["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[test]
fn every_crm_endpoint_needs_a_session_csrf_and_the_permission() {
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], QUEUE);
    let anon = Web::new(&tb);
    for (m, p, _) in ROUTES {
        let (s, v) = anon.call(m, p, Some(json!({})));
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {p}: {v}");
    }
    let w = admin(&tb);
    for (m, p, _) in ROUTES.iter().filter(|(m, _, _)| *m != "GET") {
        let r = w.send(m, p, Some(json!({})), false);
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{m} {p} without CSRF");
    }
    let (s, v) = w.call("PUT", "/api/v1/roles/nocrm", Some(json!({ "permissions": ["dashboard_view"] })));
    ok(s, &v);
    let outsider = user(&tb, &w, "outsider", "nocrm", "202");
    for (m, p, _) in ROUTES {
        let (s, v) = outsider.call(m, p, Some(json!({})));
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}: {v}");
    }
    let agent = user(&tb, &w, "kato", "agent", "201");
    for (m, p, _) in ROUTES.iter().filter(|(_, _, agents)| !agents) {
        let (s, v) = agent.call(m, p, Some(json!({})));
        assert_eq!(s, StatusCode::FORBIDDEN, "an agent used {m} {p}: {v}");
    }
    // The agent's own area answers (not 403) with what it holds.
    let (s, v) = agent.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "山田 太郎" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["ref"], "#C1");
    assert_eq!(agent.get("/api/v1/crm/tags").0, StatusCode::OK);
    assert_eq!(agent.get("/api/v1/presence").0, StatusCode::OK);
    // A business format open to 201 only (§2.23 CRM権限): another agent neither sees its
    // customers nor uses it; admins and supervisors see everything.
    let (s, v) = w.call("PUT", "/api/v1/crm/formats/限定", Some(json!({ "agents": ["201"] })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) =
        agent.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "限定顧客", "format": "限定" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let limited = v["id"].as_u64().unwrap_or_default();
    let ito = user(&tb, &w, "ito", "agent", "203");
    assert_eq!(ito.get(&format!("/api/v1/crm/customers/{limited}")).0, StatusCode::NOT_FOUND);
    assert_eq!(ito.get("/api/v1/crm/customers").1["total"], 1, "only the unrestricted customer");
    assert_eq!(
        ito.call("DELETE", &format!("/api/v1/crm/customers/{limited}"), None).0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = ito.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "x", "format": "限定" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["format"].is_string(), "{v}");
    assert_eq!(agent.get("/api/v1/crm/customers").1["total"], 2);
    assert_eq!(w.get(&format!("/api/v1/crm/customers/{limited}")).0, StatusCode::OK);

    // The screen pop needs an extension on the user.
    let (s, v) = w.get("/api/v1/crm/screen-pop/stream");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["extension"].is_string(), "{v}");
}

#[test]
fn customers_are_validated_searched_bulk_edited_downloaded_and_survive_a_restart() {
    let mut tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    let (s, v) = w.call("PUT", "/api/v1/crm/tags/VIP", Some(json!({ "fg": "#ffffff", "bg": "#0505fc" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w.call("PUT", "/api/v1/crm/tags/VIP", Some(json!({ "fg": "white" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["fg"].is_string(), "{v}");
    let demo = json!({ "fields": [
        { "name": "契約状況", "kind": "list", "required": true, "choices": ["契約中", "解約"] },
        { "name": "郵便番号", "kind": "postal_code" } ] });
    let (s, v) = w.call("PUT", "/api/v1/crm/formats/デモ", Some(demo));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w.call(
        "PUT",
        "/api/v1/crm/formats/bad",
        Some(json!({ "fields": [{ "name": "x", "kind": "list" }] })),
    );
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["fields[0].choices"].is_string(), "{v}");
    let (s, v) = w.call("PUT", "/api/v1/crm/formats/bad", Some(json!({ "agents": ["299"] })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["agents"].is_string(), "{v}");
    let (s, v) = w.call("PUT", "/api/v1/crm/fields/customer/ランク", Some(json!({ "kind": "number" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Every bad field is named.
    let bad = json!({ "name": "", "phones": ["03-1234-5678", "tel"], "email": "a@@b", "format": "デモ",
                      "fields": { "郵便番号": "12", "無い": "x" }, "tags": ["無いタグ"] });
    let (s, v) = w.call("POST", "/api/v1/crm/customers", Some(bad));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for f in ["name", "phones[1]", "email", "fields.郵便番号", "fields.無い", "fields.契約状況", "tags"]
    {
        assert!(v["errors"][f].is_string(), "{f} not reported: {v}");
    }
    let (s, _) = w.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "x", "extra": 1 })));
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let good = json!({ "name": "山田 太郎", "code": "A-1", "phones": ["03-1234-5678"], "format": "デモ",
                       "fields": { "契約状況": "契約中", "郵便番号": "1000001", "ランク": "3" }, "tags": ["VIP"] });
    let (s, yamada) = w.call("POST", "/api/v1/crm/customers", Some(good));
    assert_eq!(s, StatusCode::CREATED, "{yamada}");
    assert_eq!(yamada["fields"]["郵便番号"], "100-0001");
    let id = yamada["id"].as_u64().unwrap_or_default();
    // The same number on another customer is refused.
    let (s, v) =
        w.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "別人", "phones": ["0312345678"] })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["phones[0]"].is_string(), "{v}");
    let (s, suzuki) = w.call(
        "POST",
        "/api/v1/crm/customers",
        Some(json!({ "name": "鈴木 花子", "phones": ["090-1111-2222"], "note": "折返し希望" })),
    );
    assert_eq!(s, StatusCode::CREATED, "{suzuki}");
    let sid = suzuki["id"].as_u64().unwrap_or_default();

    // Search on each criterion.
    let total = |q: &str| w.get(&format!("/api/v1/crm/customers?{q}")).1["total"].as_u64().unwrap_or(99);
    assert_eq!(total(""), 2);
    assert_eq!(total("phone=0312345678"), 1);
    assert_eq!(total("phone=%2B81312345678"), 1, "+81 finds the national number");
    assert_eq!(total("name=%E9%88%B4%E6%9C%A8"), 1); // 鈴木
    assert_eq!(total("tag=VIP"), 1);
    assert_eq!(total("code=A-"), 1);
    assert_eq!(total(&format!("id={sid}")), 1);
    assert_eq!(total("note=%E6%8A%98%E8%BF%94"), 1); // 折返
    assert_eq!(total("f.%E5%A5%91%E7%B4%84%E7%8A%B6%E6%B3%81=%E5%A5%91%E7%B4%84%E4%B8%AD"), 1); // 契約状況=契約中
    let (s, v) = w.get("/api/v1/crm/customers?limit=0");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["limit"].is_string(), "{v}");
    let (s, v) = w.get("/api/v1/crm/customers?colour=red");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["colour"].is_string(), "{v}");
    assert_eq!(w.get("/api/v1/crm/customers/999").0, StatusCode::NOT_FOUND);
    assert_eq!(w.get("/api/v1/crm/customers/abc").0, StatusCode::NOT_FOUND);

    // Bulk edit: a tag on both; an unknown id is reported, the rest applied.
    let (s, v) = w.call(
        "POST",
        "/api/v1/crm/customers/bulk",
        Some(json!({ "ids": [id, sid, 999], "add_tags": ["VIP"] })),
    );
    ok(s, &v);
    assert_eq!(v["updated"], 2, "{v}");
    assert_eq!(v["errors"][0]["id"], 999, "{v}");
    assert_eq!(total("tag=VIP"), 2);
    let (s, v) = w.call("POST", "/api/v1/crm/customers/bulk", Some(json!({ "ids": [] })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["ids"].is_string(), "{v}");
    // A tag in use cannot be deleted.
    assert_eq!(w.call("DELETE", "/api/v1/crm/tags/VIP", None).0, StatusCode::CONFLICT);
    assert_eq!(w.call("DELETE", "/api/v1/crm/formats/デモ", None).0, StatusCode::CONFLICT);

    // CSV of the checked rows: UTF-8 with a BOM, Japanese intact.
    let (s, csv) = download(&w, &format!("/api/v1/crm/customers/export?ids={id},{sid}"));
    assert_eq!(s, StatusCode::OK);
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
    let text = String::from_utf8(csv).unwrap_or_default();
    assert!(text.contains("#C1,A-1,デモ,山田 太郎,03-1234-5678"), "{text}");
    assert!(text.contains("鈴木 花子"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let (s, v) = w.get("/api/v1/crm/customers/export?ids=a,b");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["ids"].is_string(), "{v}");

    // A case on the customer; deleting the customer keeps the case, unlinked.
    let (s, case) = w.call(
        "POST",
        "/api/v1/crm/cases",
        Some(json!({ "title": "請求書の再送", "status": "作業中", "customer": sid })),
    );
    assert_eq!(s, StatusCode::CREATED, "{case}");
    let (s, v) = w.call("POST", "/api/v1/crm/cases", Some(json!({ "title": "", "customer": 999 })));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"]["title"].is_string() && v["errors"]["customer"].is_string(), "{v}");
    let (_, detail) = w.get(&format!("/api/v1/crm/customers/{sid}"));
    assert_eq!(detail["cases"][0]["title"], "請求書の再送", "{detail}");
    assert_eq!(w.call("DELETE", &format!("/api/v1/crm/customers/{sid}"), None).0, StatusCode::NO_CONTENT);
    let (_, k) = w.get(&format!("/api/v1/crm/cases/{}", case["id"]));
    assert_eq!(k["customer"], Value::Null, "{k}");

    // Updates, then everything comes back after a restart.
    let (s, v) = w.call(
        "PUT",
        &format!("/api/v1/crm/customers/{id}"),
        Some(json!({ "name": "山田 太郎", "phones": ["03-1234-5678", "090-9999-0000"], "format": "デモ",
                     "fields": { "契約状況": "解約" }, "tags": ["VIP"] })),
    );
    ok(s, &v);
    let actions = audited(&w);
    for a in [
        "crm.customer.create",
        "crm.customer.update",
        "crm.customer.delete",
        "crm.customer.bulk",
        "crm.customer.export",
        "crm.tag.create",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not audited: {actions:?}");
    }
    tb.restart();
    let w = admin_again(&tb);
    let (s, v) = w.get(&format!("/api/v1/crm/customers/{id}"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["fields"]["契約状況"], "解約");
    assert_eq!(v["phones"][1], "090-9999-0000");
    assert_eq!(w.get("/api/v1/crm/customers?phone=09099990000").1["total"], 1, "the phone index is rebuilt");
    assert_eq!(w.get(&format!("/api/v1/crm/customers/{sid}")).0, StatusCode::NOT_FOUND);
    let (s, v) = w.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "次" })));
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v["id"], 3, "ids go on after a restart, a deleted one is not reused: {v}");
}

/// Logs in as admin after a restart (the password was changed to GOOD).
fn admin_again(tb: &TestBox) -> Web {
    let mut w = Web::new(tb);
    let (s, v) = w.login("admin", GOOD);
    assert_eq!(s, StatusCode::OK, "{v}");
    w
}

#[test]
fn cases_move_through_their_workflow_and_the_statistics_count_the_steps() {
    let mut tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    // A workflow needs its first step; a step's buttons name the next ones.
    let (s, v) = w.call("PUT", "/api/v1/crm/workflows/TEST", Some(json!({ "first_step": "STEP1" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["first_step"].is_string(), "{v}");
    let five: Vec<Value> = (0..5).map(|i| json!({ "label": format!("b{i}"), "next": null })).collect();
    let (s, v) = w.call("PUT", "/api/v1/crm/steps/STEP1", Some(json!({ "buttons": five })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["buttons"].is_string(), "{v}");
    for (step, next) in [("STEP1", json!("STEP2")), ("STEP2", Value::Null)] {
        let (s, v) = w.call(
            "PUT",
            &format!("/api/v1/crm/steps/{step}"),
            Some(json!({ "color": "#ff0000", "buttons": [{ "label": "次へ", "next": next }] })),
        );
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = w.call("PUT", "/api/v1/crm/workflows/TEST", Some(json!({ "first_step": "STEP1" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, k) = w.call(
        "POST",
        "/api/v1/crm/cases",
        Some(json!({ "title": "同時呼出設定", "status": "作業中", "workflow": "TEST" })),
    );
    assert_eq!(s, StatusCode::CREATED, "{k}");
    assert_eq!((k["workflow"].as_str(), k["step_name"].as_str()), (Some("TEST"), Some("STEP1")), "{k}");
    assert_eq!(k["step_buttons"][0]["label"], "次へ");
    let id = k["id"].as_u64().unwrap_or_default();
    // In use: the step, the workflow.
    assert_eq!(w.call("DELETE", "/api/v1/crm/steps/STEP1", None).0, StatusCode::CONFLICT);
    assert_eq!(w.call("DELETE", "/api/v1/crm/workflows/TEST", None).0, StatusCode::CONFLICT);
    let (s, v) = w.call("POST", &format!("/api/v1/crm/cases/{id}/step"), Some(json!({ "button": 3 })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["button"].is_string(), "{v}");
    let (s, v) = w.call("POST", &format!("/api/v1/crm/cases/{id}/step"), Some(json!({ "button": 0 })));
    ok(s, &v);
    assert_eq!(v["step_name"], "STEP2");
    // Saving the case with the same workflow keeps its step.
    let (s, v) = w.call(
        "PUT",
        &format!("/api/v1/crm/cases/{id}"),
        Some(json!({ "title": "同時呼出設定", "status": "作業中", "workflow": "TEST" })),
    );
    ok(s, &v);
    assert_eq!(v["step_name"], "STEP2", "{v}");
    let (s, v) = w.call("POST", &format!("/api/v1/crm/cases/{id}/step"), Some(json!({ "button": 0 })));
    ok(s, &v);
    assert_eq!(v["workflow"], Value::Null, "the last button ends the workflow: {v}");
    let (s, v) = w.call("POST", &format!("/api/v1/crm/cases/{id}/step"), Some(json!({ "button": 0 })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["step"].is_string(), "{v}");

    let (s, v) = w.get("/api/v1/crm/workflow-stats?workflow=TEST");
    ok(s, &v);
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 3, "two steps and the total: {v}");
    assert_eq!((rows[0]["step"].as_str(), rows[0]["count"].as_u64()), (Some("STEP1"), Some(1)));
    assert_eq!((rows[2]["step"].clone(), rows[2]["count"].as_u64()), (Value::Null, Some(2)));
    // The step times are stored: the statistics are the same after a restart.
    tb.restart();
    let w = admin_again(&tb);
    let (s, again) = w.get("/api/v1/crm/workflow-stats?workflow=TEST");
    ok(s, &again);
    assert_eq!(again, v, "the statistics changed across a restart");
    let (s, v) = w.get("/api/v1/crm/workflow-stats?from=10&to=5");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["to"].is_string(), "{v}");
    let (s, csv) = download(&w, "/api/v1/crm/workflow-stats/csv?workflow=TEST");
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(csv).unwrap_or_default();
    assert!(
        text.starts_with("\u{FEFF}ワークフロー,ステップ,件数") && text.contains("TEST,合計,2,"),
        "{text}"
    );

    // Bulk status, CSV of cases, FAQ search; definitions freed once unused.
    let (s, v) = w.call("POST", "/api/v1/crm/cases/bulk", Some(json!({ "ids": [id], "status": "完了" })));
    ok(s, &v);
    assert_eq!(w.get("/api/v1/crm/cases?status=%E5%AE%8C%E4%BA%86").1["total"], 1);
    let (s, csv) = download(&w, "/api/v1/crm/cases/export");
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(csv).unwrap_or_default().contains("#T1,同時呼出設定,,完了"));
    let (s, v) = w.call(
        "POST",
        "/api/v1/crm/faq",
        Some(json!({ "title": "Snom300から発信できません", "detail": "RTP Encryption をオフに" })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = w.call("POST", "/api/v1/crm/faq", Some(json!({ "title": "" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["title"].is_string(), "{v}");
    assert_eq!(w.get("/api/v1/crm/faq?q=Encryption").1["faq"].as_array().map(Vec::len), Some(1));
    assert_eq!(w.get("/api/v1/crm/faq?q=none").1["faq"].as_array().map(Vec::len), Some(0));
    assert_eq!(w.call("DELETE", "/api/v1/crm/workflows/TEST", None).0, StatusCode::NO_CONTENT);
    assert_eq!(w.call("DELETE", "/api/v1/crm/steps/STEP1", None).0, StatusCode::NO_CONTENT);
    assert_eq!(w.call("DELETE", "/api/v1/crm/steps/STEP1", None).0, StatusCode::NOT_FOUND);
    let (s, v) = w.call("PUT", "/api/v1/crm/fields/other/x", Some(json!({ "kind": "text" })));
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = w.call("PUT", "/api/v1/crm/fields/case/x", Some(json!({ "kind": "email" })));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["kind"].is_string(), "{v}");
}

/// The §2.22 sample, in Shift_JIS: header, two good rows and one whose phone is not a number.
fn sjis_customers() -> Vec<u8> {
    let text = "名称,電話番号,住所1,メモ\r\nテスト001,03-0000-0001,東京,商品A\r\nテスト002,でんわ,大阪,商品B\r\nテスト003,03-0000-0003,名古屋,\r\n";
    encoding_rs::SHIFT_JIS.encode(text).0.into_owned()
}

#[test]
fn a_shift_jis_customer_upload_previews_maps_and_skips_the_bad_row() {
    let tb = TestBox::start(&[ALICE]);
    let w = admin(&tb);
    let (s, v) = w.call(
        "PUT",
        "/api/v1/crm/formats/デモ",
        Some(json!({ "fields": [{ "name": "住所1", "kind": "text" }] })),
    );
    ok(s, &v);
    let (s, v) = w.call("PUT", "/api/v1/crm/tags/展示会", Some(json!({})));
    ok(s, &v);
    let base = "/api/v1/crm/customers/upload";
    let (s, v) =
        upload(&w, &format!("{base}/preview?format=%E3%83%87%E3%83%A2"), "text/csv", sjis_customers());
    ok(s, &v);
    assert_eq!(v["encoding"], "shift_jis");
    assert_eq!(v["columns"], 4);
    assert_eq!(v["rows"][0][0], "テスト001", "the header row is skipped: {v}");
    assert!(v["targets"].as_array().is_some_and(|t| t.iter().any(|x| x["field"] == "住所1")), "{v}");

    let mapping =
        json!([{ "to": "name" }, { "to": "phone" }, { "to": "field", "field": "住所1" }, { "to": "ignore" }]);
    let q = format!(
        "{base}?format=%E3%83%87%E3%83%A2&tags=%E5%B1%95%E7%A4%BA%E4%BC%9A&mapping={}",
        urlencode(&mapping.to_string())
    );
    let (s, v) = upload(&w, &q, "text/csv", sjis_customers());
    ok(s, &v);
    assert_eq!(v["imported"], 2, "{v}");
    assert_eq!(v["skipped"][0]["line"], 3, "{v}");
    assert!(v["skipped"][0]["errors"]["phones[0]"].is_string(), "{v}");
    let (_, found) = w.get("/api/v1/crm/customers?phone=0300000003");
    assert_eq!(found["customers"][0]["fields"]["住所1"], "名古屋", "{found}");
    assert_eq!(found["customers"][0]["tags"][0], "展示会", "{found}");
    // The same file again: the numbers are taken now, unless duplicates are allowed.
    let (_, v) = upload(&w, &q, "text/csv", sjis_customers());
    assert_eq!(v["imported"], 0, "{v}");
    let (_, v) = upload(&w, &format!("{q}&allow_duplicate_phones=true"), "text/csv", sjis_customers());
    assert_eq!(v["imported"], 2, "{v}");

    // Whole-file refusals and bad options.
    let (s, _) = upload(&w, &format!("{base}/preview"), "application/json", b"{}".to_vec());
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (s, _) = upload(&w, &format!("{base}/preview"), "text/csv", vec![b'a'; 5 * 1024 * 1024 + 1]);
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, v) = upload(&w, &format!("{base}/preview"), "text/csv", "名称\n株式会社①\n".as_bytes().to_vec());
    assert!(
        s == StatusCode::UNPROCESSABLE_ENTITY
            && v["errors"]["file"].as_str().is_some_and(|m| m.contains("line 2")),
        "{v}"
    );
    let (s, v) = upload(&w, &format!("{base}/preview"), "text/csv", b"a\0b".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["file"].is_string(), "{v}");
    let (s, v) = upload(&w, &format!("{base}/preview?delimiter=x"), "text/csv", b"a,b".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["delimiter"].is_string(), "{v}");
    let (s, v) = upload(&w, base, "text/csv", b"a,b".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["mapping"].is_string(), "{v}");
    let name_only = urlencode(&json!([{ "to": "name" }]).to_string());
    let (s, v) = upload(&w, &format!("{base}?mapping={name_only}&tags=none"), "text/csv", b"a".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["tags"].is_string(), "{v}");
    let (s, v) = upload(&w, &format!("{base}?mapping={name_only}&format=none"), "text/csv", b"a".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["format"].is_string(), "{v}");
    let no_name = urlencode(&json!([{ "to": "phone" }]).to_string());
    let (s, v) = upload(&w, &format!("{base}?mapping={no_name}"), "text/csv", b"0312345678".to_vec());
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["mapping"].is_string(), "{v}");
    assert!(audited(&w).iter().any(|a| a == "crm.customer.upload"));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn presence_lists_the_groups_and_chat_reaches_only_its_readers_with_links() {
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], QUEUE);
    let w = admin(&tb);
    let kato = user(&tb, &w, "kato", "agent", "201");
    let sato = user(&tb, &w, "sato", "agent", "203");
    let (s, p) = kato.get("/api/v1/presence");
    ok(s, &p);
    assert_eq!(p["me"], "201");
    let group = p["groups"].as_array().and_then(|g| g.iter().find(|g| g["name"] == "support")).cloned();
    let members: Vec<String> = group
        .and_then(|g| g["members"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m["agent"].as_str().map(str::to_string))
        .collect();
    assert_eq!(members, vec!["201".to_string(), "202".to_string()], "{p}");

    let post = |who: &Web, to: Value, text: &str| {
        who.call("POST", "/api/v1/chat", Some(json!({ "to": to, "text": text, "bold": true })))
    };
    let (s, v) = post(&w, json!({ "kind": "everyone" }), "おはようございます");
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = post(&w, json!({ "kind": "group", "name": "support" }), "#C7 の件は #T12 を見てください");
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["parts"][0]["url"], "crm.html#customer=7", "{v}");
    assert_eq!(v["parts"][1]["text"], " の件は ", "{v}");
    assert_eq!(v["parts"][2]["url"], "crm.html#case=12", "{v}");
    let (s, _) = post(&w, json!({ "kind": "agent", "name": "203" }), "内緒");
    assert_eq!(s, StatusCode::CREATED);
    // Bad messages and targets.
    let (s, v) = post(&w, json!({ "kind": "everyone" }), "  ");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["text"].is_string(), "{v}");
    let (s, v) = post(&w, json!({ "kind": "everyone" }), &"あ".repeat(1001));
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["text"].is_string(), "{v}");
    let (s, v) = post(&w, json!({ "kind": "group", "name": "sales" }), "x");
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY && v["errors"]["to"].is_string(), "{v}");
    let (s, _) = post(&w, json!({ "kind": "nobody" }), "x");
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // 201 is in the group: everyone + group; 203 is not: everyone + its private one.
    let (_, k) = kato.get("/api/v1/chat");
    assert_eq!(k["messages"].as_array().map(Vec::len), Some(2), "{k}");
    assert_eq!(k["unread"], 2);
    let (_, s3) = sato.get("/api/v1/chat");
    let texts: Vec<&str> = s3["messages"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts, vec!["おはようございます", "内緒"], "{s3}");
    let last = k["messages"][1]["seq"].as_u64().unwrap_or_default();
    assert_eq!(
        kato.call("POST", "/api/v1/chat/read", Some(json!({ "seq": last }))).0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(kato.get("/api/v1/chat").1["unread"], 0);
    assert_eq!(
        kato.get(&format!("/api/v1/chat?since={last}")).1["messages"].as_array().map(Vec::len),
        Some(0)
    );
    let (s, _) = kato.get("/api/v1/chat?since=abc");
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The provider's trunk and a DID ringing 201, with a pop-up URL.
fn trunk_toml(provider_port: u16) -> String {
    format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{provider_port}\"\ndomain = \"provider.example\"\n\
         username = \"0312345678\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[did]]\nnumber = \"0312345678\"\ndefault = {{ extension = \"201\" }}\n\
         popup_url = \"https://crm.example/search?tel=@@@@\"\n"
    )
}

/// Reads SSE lines until `event: <name>`, then returns its `data:` line.
fn next_event(lines: &mut impl Iterator<Item = std::io::Result<String>>, name: &str) -> Option<String> {
    let mut in_event = false;
    for line in lines {
        let line = line.ok()?;
        if line == format!("event: {name}") {
            in_event = true;
        } else if in_event {
            if let Some(d) = line.strip_prefix("data: ") {
                return Some(d.to_string());
            }
        }
    }
    None
}

#[test]
fn the_ringing_agent_gets_the_customer_and_the_dids_popup_url_and_the_call_shows_on_its_page() {
    if !require_tool("sipp") {
        return;
    }
    let provider_port = free_udp_port();
    let tb = TestBox::start_with_config(&[ALICE, BOB], &[], &trunk_toml(provider_port));
    let w = admin(&tb);
    let (s, v) = w.call(
        "POST",
        "/api/v1/crm/customers",
        Some(json!({ "name": "大阪商事", "phones": ["06-1111-2222"] })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let cid = v["id"].as_u64().unwrap_or_default();
    let kato = user(&tb, &w, "kato", "agent", "201");
    let sato = user(&tb, &w, "sato", "agent", "202");

    // Both agents listen; only 201's phone rings.
    let open = |u: &Web| {
        let mut req = u.client.get(format!("{}/api/v1/crm/screen-pop/stream", u.base));
        if let Some(c) = &u.cookie {
            req = req.header("cookie", format!("hakoden_session={c}"));
        }
        let r = req.send().expect("stream");
        assert_eq!(r.status(), StatusCode::OK);
        std::io::BufReader::new(r).lines()
    };
    let mut kato_stream = open(&kato);
    let mut sato_stream = open(&sato);
    assert_eq!(next_event(&mut kato_stream, "ready").as_deref(), Some("201"));
    assert_eq!(next_event(&mut sato_stream, "ready").as_deref(), Some("202"));
    // 202's stream is read on its own thread; whatever it gets is looked at after the call.
    let (sato_tx, sato_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in sato_stream.map_while(Result::ok) {
            if sato_tx.send(line).is_err() {
                return;
            }
        }
    });

    let phone_port = tb.port();
    must_register(&tb, ALICE, phone_port);
    let phone = Sipp::new("uas_answer.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(phone_port)
        .media_port(tb.port())
        .key("rtpport", tb.port())
        .spawn();
    wait_udp_bound(phone_port);
    let provider = Sipp::new("provider_did_call.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(provider_port)
        .key("did", "0312345678")
        .key("caller", "0611112222")
        .key("rtp_sink", tb.port())
        .timeout(Duration::from_secs(20))
        .spawn();
    let pop = next_event(&mut kato_stream, "ringing");
    let provider = provider.wait();
    let phone = phone.wait();
    let context =
        || format!("{}\n{}\n--- box ---\n{}", provider.report(), phone.report(), tb.stderr_tail(40));
    let pop: Value = serde_json::from_str(pop.as_deref().unwrap_or("null")).unwrap_or(Value::Null);
    assert_eq!(pop["caller"], "0611112222", "{pop}\n{}", context());
    assert_eq!(pop["did"], "0312345678", "{pop}");
    assert_eq!(pop["customers"][0]["name"], "大阪商事", "{pop}");
    assert_eq!(pop["customers"][0]["url"], format!("crm.html#customer={cid}"), "{pop}");
    assert_eq!(pop["popup_url"], "https://crm.example/search?tel=0611112222", "{pop}");
    assert!(provider.code == Some(0), "the DID call failed\n{}", context());
    // The call has ended: a pop for 202 would have been sent long before. Only 201's phone rang.
    let sato_lines: Vec<String> = sato_rx.try_iter().collect();
    assert!(!sato_lines.iter().any(|l| l == "event: ringing"), "202 got 201's pop: {sato_lines:?}");

    // The call is on the customer's page.
    let mut calls = Value::Null;
    for _ in 0..50 {
        calls = w.get(&format!("/api/v1/crm/customers/{cid}/calls")).1;
        if calls["calls"].as_array().is_some_and(|c| !c.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(calls["calls"][0]["caller"], "0611112222", "{calls}");
    assert_eq!(calls["calls"][0]["kind"], "incoming", "{calls}");
}
