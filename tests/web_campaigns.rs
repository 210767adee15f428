//! Campaigns in the web admin over real HTTPS (issue 9): auth and permission of every route,
//! field errors, the list upload in Shift_JIS with a bad row, results, recalls, stop, the
//! statistics and their CSV, an agent's recall list. The campaign is off, so nothing dials
//! (dialling itself is `tests/campaign_peers.rs`).
mod common;

use common::web::{admin, create_user_with_extension, Web, GOOD, GOOD2};
use common::TestBox;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CAMPAIGN: &str = "[[campaign]]\nname = \"autumn\"\nenabled = false\nmode = \"progressive\"\n\
                        results = \"1,成約\\n2,再検討\"\nagents = [\"201\"]\n";

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

fn user(tb: &TestBox, w: &Web, id: &str, role: &str, ext: &str) -> Web {
    create_user_with_extension(w, id, role, ext);
    let mut u = Web::new(tb);
    u.first_login(id, GOOD, GOOD2);
    u
}

#[test]
fn campaign_lists_results_and_statistics_through_the_api() {
    let tb = TestBox::start_with_config(&[("201", "secret201"), ("900", "secret900")], &[], CAMPAIGN);
    let anon = Web::new(&tb);
    for p in [
        "/api/v1/campaigns",
        "/api/v1/campaigns/autumn/entries",
        "/api/v1/recalls",
        "/api/v1/campaigns/autumn/stats",
    ] {
        assert_eq!(anon.get(p).0, StatusCode::UNAUTHORIZED, "{p}");
    }
    let w = admin(&tb);
    let sv = user(&tb, &w, "sv1", "supervisor", "900");
    let agent = user(&tb, &w, "op1", "agent", "201");

    let (s, v) = agent.get("/api/v1/campaigns");
    assert_eq!(s, StatusCode::OK, "agents see campaigns: {v}");
    assert_eq!(v["campaigns"][0]["name"], "autumn");
    assert_eq!(v["campaigns"][0]["mode"], "progressive");
    assert_eq!(v["campaigns"][0]["results"][0]["text"], "成約");
    let (s, _) =
        agent.call("POST", "/api/v1/campaigns/autumn/entries", Some(json!({ "number": "0311110001" })));
    assert_eq!(s, StatusCode::FORBIDDEN, "agents do not add entries");

    // Field errors, unknown campaign, unknown fields.
    for (body, f) in [
        (json!({ "number": "03-abc" }), "number"),
        (json!({ "number": "" }), "number"),
        (json!({ "number": "0311110001", "name": "名".repeat(65) }), "name"),
        (json!({ "number": "0311110001", "assignee": "x" }), "assignee"),
        (json!({ "number": "0311110001", "schedule": "2026-13-01 09:00" }), "schedule"),
        (json!({ "number": "0311110001", "schedule": "tomorrow" }), "schedule"),
    ] {
        let (s, v) = sv.call("POST", "/api/v1/campaigns/autumn/entries", Some(body.clone()));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(v["errors"][f].is_string(), "{body}: {v}");
    }
    let (s, _) = sv.call("POST", "/api/v1/campaigns/nope/entries", Some(json!({ "number": "0311110001" })));
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = sv.call("POST", "/api/v1/campaigns/autumn/entries", Some(json!({ "number": "1", "x": 1 })));
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // One by hand (assigned to 201: its recall list), three by a Shift_JIS upload with a bad row.
    let (s, v) = sv.call(
        "POST",
        "/api/v1/campaigns/autumn/entries",
        Some(json!({ "number": "0311110001", "name": "山田", "assignee": "201" })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (sjis, _, _) = encoding_rs::SHIFT_JIS
        .encode("電話番号,名前\r\n0311110002,佐藤\r\n03-xx,悪い行\r\n0311110003,鈴木\r\n");
    let (s, v) = upload(&sv, "/api/v1/campaigns/autumn/entries/csv", "text/csv", sjis.into_owned());
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], 2, "{v}");
    assert_eq!(v["errors"][0]["line"], 3, "{v}");
    let (s, _) = upload(&sv, "/api/v1/campaigns/autumn/entries/csv", "application/json", b"{}".to_vec());
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A scheduled one (予約), in the box's local time (JST by default).
    let (s, v) = sv.call(
        "POST",
        "/api/v1/campaigns/autumn/entries",
        Some(json!({ "number": "0311110004", "name": "予約", "schedule": "2099-01-01 09:30" })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = sv.get("/api/v1/campaigns/autumn/entries");
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> =
        v["entries"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["山田", "佐藤", "鈴木", "予約"]);
    // 2099-01-01 09:30 JST is 00:30 UTC.
    assert_eq!(v["entries"][3]["schedule_ms"], 4_070_910_600_000u64, "{v}");

    // Results: a custom one, a refused one, a recall, a stop; field errors.
    let (s, v) = sv.call("PUT", "/api/v1/campaigns/autumn/entries/2/result", Some(json!({ "result": 1 })));
    assert_eq!(
        (s, v["result"].as_str(), v["status"].as_str()),
        (StatusCode::OK, Some("1"), Some("dialled")),
        "{v}"
    );
    let (s, v) = sv.call("PUT", "/api/v1/campaigns/autumn/entries/2/result", Some(json!({ "result": 9 })));
    assert_eq!(s, StatusCode::CONFLICT, "9 is no result of the campaign: {v}");
    for body in [json!({}), json!({ "result": 1, "stop": true }), json!({ "recall_minutes": 0 })] {
        let (s, v) = sv.call("PUT", "/api/v1/campaigns/autumn/entries/2/result", Some(body.clone()));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }
    let (s, v) =
        sv.call("PUT", "/api/v1/campaigns/autumn/entries/3/result", Some(json!({ "recall_minutes": 30 })));
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("waiting")), "{v}");
    assert!(v["schedule_ms"].as_u64().is_some(), "{v}");
    let (s, v) = sv.call("PUT", "/api/v1/campaigns/autumn/entries/3/result", Some(json!({ "stop": true })));
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("stopped")), "{v}");
    // An agent may only touch its own entries: entry 1 is assigned to 201, entry 2 is not.
    let (s, _) = agent.call("PUT", "/api/v1/campaigns/autumn/entries/2/result", Some(json!({ "result": 2 })));
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) =
        agent.call("PUT", "/api/v1/campaigns/autumn/entries/1/result", Some(json!({ "recall_minutes": 10 })));
    assert_eq!(s, StatusCode::OK, "{v}");

    // The agent's recall list holds entry 1; dialling it needs the agent's phone.
    let (s, v) = agent.get("/api/v1/recalls");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["entries"][0]["id"], 1, "{v}");
    assert_eq!(v["entries"][0]["campaign"], "autumn");
    let (s, v) = agent.call("POST", "/api/v1/recalls/autumn/1/dial", None);
    assert_eq!(s, StatusCode::CONFLICT, "201 has no phone registered: {v}");
    let (s, _) = w.get("/api/v1/recalls");
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "the admin has no extension");

    // §2.8: CRM customers registered into the list in bulk, and a customer's entries.
    let (s, v) =
        sv.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "高橋", "phones": ["03-1111-0009"] })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let cust = v["id"].as_u64().unwrap();
    let (s, v) = sv.call("POST", "/api/v1/crm/customers", Some(json!({ "name": "番号なし" })));
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let no_phone = v["id"].as_u64().unwrap();
    let (s, v) = sv.call(
        "POST",
        "/api/v1/crm/customers/autodial",
        Some(json!({ "campaign": "autumn", "ids": [cust, no_phone, 999] })),
    );
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], 1, "{v}");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(2), "{v}");
    let (s, _) = agent.call(
        "POST",
        "/api/v1/crm/customers/autodial",
        Some(json!({ "campaign": "autumn", "ids": [cust] })),
    );
    assert_eq!(s, StatusCode::FORBIDDEN, "agents do not register customers");
    let (s, v) =
        sv.call("POST", "/api/v1/crm/customers/autodial", Some(json!({ "campaign": "", "ids": [] })));
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = sv.get(&format!("/api/v1/crm/customers/{cust}/autodial"));
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["entries"][0]["number"].as_str(), v["entries"][0]["campaign"].as_str()),
        (Some("0311110009"), Some("autumn")),
        "{v}"
    );
    assert_eq!(v["entries"][0]["customer"], cust);

    // Statistics and their CSV.
    let (s, v) = sv.get("/api/v1/campaigns/autumn/stats?unit=agent");
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["columns"][0]["label"], "成約", "{v}");
    for bad in ["unit=week", "from=2026-13-01", "from=2026-11-02&to=2026-11-01"] {
        let (s, v) = sv.get(&format!("/api/v1/campaigns/autumn/stats?{bad}"));
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let r = sv.send("GET", "/api/v1/campaigns/autumn/stats?unit=date&csv=true", None, false);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let bytes = r.bytes().unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 with a BOM");
    let (s, v) = w.get("/api/v1/audit");
    assert_eq!(s, StatusCode::OK);
    for action in ["campaign.entry.add", "campaign.entry.upload", "campaign.entry.result"] {
        assert!(v.to_string().contains(action), "{action} not audited");
    }
}
