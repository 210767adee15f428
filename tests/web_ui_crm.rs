//! The CRM page and the screen pop in a real browser (headless Chromium driven by
//! `tests/web_ui/crm.js`): a supervisor bound to extension 201 creates a customer through the
//! form, uploads a Shift_JIS customer CSV with one bad row (skipped and reported), chats a
//! `#C1` link; then a SIPp provider calls the DID (which has a `popup_url`) from the customer's
//! number, the box rings 201 (a SIPp phone), and the pop with the customer's name and the
//! pop-up URL appears in Chromium; the customer's page then lists the call. Screenshots go to
//! `target/web-artifacts/crm/`. Skips like `tests/web_ui.rs` when the browser is missing.
mod common;

use common::web::{admin, browser_flow, create_user_with_extension, Web, GOOD, GOOD2};
use common::{free_udp_port, must_register, require_tool, wait_udp_bound, Sipp, TestBox};
use std::time::Duration;

/// Chromium's start, a dozen page actions and a call on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(240);
/// How long the test waits for the page to say its screen-pop stream is live.
const READY_POLLS: u32 = 1_800;
const POLL_STEP: Duration = Duration::from_millis(100);

const ALICE: (&str, &str) = ("201", "secret-201");
const DID: &str = "0312345678";
const CALLER: &str = "0611112222";

fn trunk_toml(provider_port: u16) -> String {
    format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{provider_port}\"\ndomain = \"provider.example\"\n\
         username = \"{DID}\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"201\" }}\n\
         popup_url = \"https://crm.example/search?tel=@@@@\"\n"
    )
}

/// The §2.22 sample in Shift_JIS: a header, two good rows, one whose phone is not a number.
fn write_csv(tb: &TestBox) -> std::path::PathBuf {
    let text = "名称,電話番号,住所1,メモ\r\nテスト001,03-0000-0001,東京,商品A\r\nテスト002,でんわ,大阪,商品B\r\nテスト003,03-0000-0003,名古屋,\r\n";
    let path = tb.scratch("csv").join("customers-sjis.csv");
    std::fs::write(&path, encoding_rs::SHIFT_JIS.encode(text).0).expect("write the CSV");
    path
}

#[test]
fn a_known_customer_calling_pops_up_in_the_agents_browser() {
    if !require_tool("sipp") {
        return;
    }
    let provider_port = free_udp_port();
    let tb = TestBox::start_with_config(&[ALICE], &[], &trunk_toml(provider_port));
    let w = admin(&tb);
    create_user_with_extension(&w, "kato", "supervisor", "201");
    Web::new(&tb).first_login("kato", GOOD, GOOD2);
    let csv = write_csv(&tb);
    let csv = csv.display().to_string();
    let env = [("USER", "kato"), ("PASSWORD", GOOD2), ("CSV", csv.as_str()), ("CALLER", CALLER)];

    // The flow writes this once the page listens; a file left by an earlier run must not
    // start the call early.
    let ready_file =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-artifacts/crm/ready");
    let _ = std::fs::remove_file(&ready_file);
    let out_dir = std::thread::scope(|s| {
        let flow = s.spawn(|| browser_flow(&tb, "crm.js", "crm", &env, FLOW_TIMEOUT));
        let ready = (0..READY_POLLS).any(|_| {
            let done = flow.is_finished() || ready_file.is_file();
            if !done {
                std::thread::sleep(POLL_STEP);
            }
            done
        });
        assert!(ready, "the page never said its screen-pop stream was live");
        let call = (!flow.is_finished()).then(|| {
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
                .key("did", DID)
                .key("caller", CALLER)
                .key("rtp_sink", tb.port())
                .timeout(Duration::from_secs(30))
                .spawn();
            (phone, provider)
        });
        let out = flow.join();
        // The peers' side of the story, whatever the browser said.
        let report = call.map(|(phone, provider)| {
            let provider = provider.wait();
            let phone = phone.wait();
            let text =
                format!("{}\n{}\n--- box ---\n{}", provider.report(), phone.report(), tb.stderr_tail(40));
            (provider.code == Some(0), text)
        });
        let Ok(out) = out else {
            panic!("the browser flow failed (above); the call:\n{}", report.map(|r| r.1).unwrap_or_default());
        };
        if let (Some((false, text)), Some(_)) = (&report, &out) {
            panic!("the DID call failed\n{text}");
        }
        out
    });
    let Some(out_dir) = out_dir else {
        return;
    };
    for shot in [
        "01-crm-customer",
        "02-crm-upload-mapping",
        "03-crm-upload-result",
        "04-crm-chat",
        "05-crm-screen-pop",
        "06-crm-customer-calls",
    ] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
