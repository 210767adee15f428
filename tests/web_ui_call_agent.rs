//! The live monitor's 内線 ("call the agent") button in a real browser
//! (`tests/web_ui/call_agent.js`): a supervisor selects an available agent and clicks it; the
//! box rings the supervisor's SIPp phone, which answers, then the agent's SIPp phone, which
//! answers too; the page shows the agent on an internal call, and the console shows the call
//! talking between the two. Screenshots go to `target/web-artifacts/call-agent/`. Skips like
//! `tests/web_ui.rs` without chromium, node, playwright-core or sipp (CI fails instead).
mod common;

use common::web::{admin, browser_flow, create_user_with_extension, Web, GOOD, GOOD2};
use common::{must_register, require_tool, wait_udp_bound, Sipp, TestBox};
use std::time::Duration;

const FLOW_TIMEOUT: Duration = Duration::from_secs(120);
const SIPP_TIMEOUT: Duration = Duration::from_secs(150);

#[test]
fn a_supervisor_calls_an_agent_from_the_live_monitor() {
    if !require_tool("sipp") {
        return;
    }
    let toml = "[[queue]]\nname = \"support\"\nnumber = \"6000\"\nmembers = [\"201\"]\n";
    let tb = TestBox::start_with_config(
        &[("201", "secret201"), ("900", "secret900")],
        &[("900", "supervisor = true")],
        toml,
    );
    let w = admin(&tb);
    create_user_with_extension(&w, "sv1", "supervisor", "900");
    Web::new(&tb).first_login("sv1", GOOD, GOOD2);
    let phone = |ext: (&str, &str)| {
        let port = tb.port();
        must_register(&tb, ext, port);
        let media = tb.port();
        let child = Sipp::new("uas_answer.xml", &tb.scratch("sipp"))
            .local_port(port)
            .media_port(media)
            .key("rtpport", media)
            .timeout(SIPP_TIMEOUT)
            .spawn();
        wait_udp_bound(port);
        child
    };
    let _supervisor = phone(("900", "secret900"));
    let _agent = phone(("201", "secret201"));
    tb.console("agent login 201");
    tb.console("agent available 201");

    let env = [("USER", "sv1"), ("PASSWORD", GOOD2), ("AGENT", "201"), ("SUP", "900")];
    let Some(out_dir) = browser_flow(&tb, "call_agent.js", "call-agent", &env, FLOW_TIMEOUT) else {
        return;
    };
    let calls = tb.console("show calls");
    let talking = calls.lines().any(|l| l.contains("900") && l.contains("201") && l.contains("talking"));
    assert!(talking, "no talking call between 900 and 201:\n{calls}");
    for shot in ["01-actions", "02-ringing-you", "03-agent-on-the-call"] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
