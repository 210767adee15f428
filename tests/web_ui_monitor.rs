//! The live monitor and the reports in a real browser (`tests/web_ui/monitor.js`): a
//! supervisor opens the monitor and makes the (SIPp) agent available from the action panel; a
//! SIPp caller enters the queue and waits while the agent's phone rings (the page shows the
//! waiting call and the ringing agent); the agent answers (the page shows it talking); then
//! today's group report, its charts and its CSV.
//! Screenshots go to `target/web-artifacts/monitor/`. Skips like `tests/web_ui.rs` without
//! chromium, node, playwright-core or sipp (CI fails instead).
mod common;

use common::web::{admin, browser_flow, create_user_with_extension, Web, GOOD, GOOD2};
use common::{must_register, require_tool, wait_udp_bound, Sipp, TestBox};
use std::time::Duration;

/// The flow: Chromium's start, two pages, a queue call and a report, on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);

/// How long the SIPp agent's phone rings before it answers: the page must see the waiting,
/// ringing call first (well inside the queue's 20 s ring time).
const ANSWER_MS: u64 = 4_000;

/// Polls of the agent's state while the page makes it available, [`POLL_STEP`] apart.
const AVAILABLE_POLLS: u32 = 600;
const POLL_STEP: Duration = Duration::from_millis(100);

/// How long the SIPp agent talks before its BYE: the page must see the talk first.
const TALK_MS: u64 = 20_000;

/// Bound on each SIPp run: the whole flow and the talk.
const SIPP_TIMEOUT: Duration = Duration::from_secs(200);

#[test]
fn a_supervisor_watches_a_queue_call_live_and_downloads_todays_report() {
    if !require_tool("sipp") {
        return;
    }
    let toml = "[[queue]]\nname = \"support\"\nnumber = \"6000\"\nmembers = [\"201\"]\n";
    let tb = TestBox::start_with_config(
        &[("201", "secret201"), ("203", "secret203"), ("900", "secret900")],
        &[("900", "supervisor = true")],
        toml,
    );
    let w = admin(&tb);
    create_user_with_extension(&w, "sv1", "supervisor", "900");
    Web::new(&tb).first_login("sv1", GOOD, GOOD2);

    // The agent's phone: SIPp registered as 201, answering after half a second.
    let agent_port = tb.port();
    must_register(&tb, ("201", "secret201"), agent_port);
    let agent_media = tb.port();
    let _agent = Sipp::new("uas_agent.xml", &tb.scratch("sipp"))
        .local_port(agent_port)
        .media_port(agent_media)
        .key("rtpport", agent_media)
        .key("answer_ms", ANSWER_MS)
        .arg("-d")
        .arg(TALK_MS.to_string())
        .timeout(SIPP_TIMEOUT)
        .spawn();
    wait_udp_bound(agent_port);
    // Logged in but preparing: the supervisor makes 201 available from the page.
    let login = tb.console("agent login 201");
    assert!(login.contains("準備中"), "{login}");

    let env = [("USER", "sv1"), ("PASSWORD", GOOD2), ("AGENT", "201"), ("GROUP", "support")];
    let out_dir = std::thread::scope(|s| {
        let flow = s.spawn(|| browser_flow(&tb, "monitor.js", "monitor", &env, FLOW_TIMEOUT));
        // The caller is placed once the page has made the agent available (an observable
        // state, polled on the console); the page then sees it ring, wait and be answered.
        let available = (0..AVAILABLE_POLLS).any(|_| {
            if flow.is_finished() {
                return true;
            }
            let agents = tb.console("show agents");
            let ok = agents.lines().any(|l| l.starts_with("201") && l.contains("available"));
            if !ok {
                std::thread::sleep(POLL_STEP);
            }
            ok
        });
        assert!(available, "the page did not make 201 available:\n{}", tb.console("show agents"));
        let caller = (!flow.is_finished()).then(|| {
            Sipp::new("uac_queue_caller.xml", &tb.scratch("sipp"))
                .remote(&tb.sip_addr())
                .local_port(tb.port())
                .media_port(tb.port())
                .service("6000")
                .key("caller", "203")
                .auth("203", "secret203")
                .timeout(SIPP_TIMEOUT)
                .spawn()
        });
        let out = flow.join().expect("the browser flow thread");
        drop(caller);
        out
    });
    let Some(out_dir) = out_dir else {
        return;
    };
    for shot in ["01-monitor-waiting", "02-monitor-talking", "03-seats", "04-report", "05-report-en-pie"] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
