//! The extensions settings page in a real browser (`tests/web_ui/extension.js`): the admin
//! creates an extension (a field error first, then correctly), a SIPp phone registers with it
//! as soon as the box serves it, and the dashboard counts the registration. Skips like
//! `tests/web_ui.rs` without chromium/playwright-core (CI fails instead).
mod common;

use common::web::{admin, browser_flow, node_modules, GOOD};
use common::{must_register, require_tool, TestBox};
use std::time::Duration;

/// Chromium's start, five page loads and a dashboard refresh on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);
const EXT: (&str, &str) = ("250", "pw-250-browser");

#[test]
fn an_extension_created_in_the_browser_registers_a_phone() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    // The forced first change, through the API: this flow starts at a normal login.
    drop(admin(&tb));
    let env = [("ADMIN_PASSWORD", GOOD), ("EXT_PASSWORD", EXT.1)];
    let runnable =
        require_tool("sipp") && require_tool("chromium") && require_tool("node") && node_modules().is_some();
    if !runnable {
        // browser_flow says why it skips (or fails on CI).
        let _ = browser_flow(&tb, "extension.js", "extension", &env, FLOW_TIMEOUT);
        return;
    }
    std::thread::scope(|s| {
        let flow = s.spawn(|| browser_flow(&tb, "extension.js", "extension", &env, FLOW_TIMEOUT));
        let listed = tb.console_until("show extensions", FLOW_TIMEOUT, |out| {
            out.lines().any(|l| l.split_whitespace().next() == Some(EXT.0))
        });
        assert!(listed.contains(EXT.0), "the browser never created {}:\n{listed}", EXT.0);
        must_register(&tb, EXT, tb.port());
        let out_dir = flow.join().expect("flow thread").expect("the flow ran");
        for shot in ["02-field-error", "03-created", "04-dashboard-registered"] {
            assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
        }
    });
}
