//! The web admin in a real browser: headless Chromium driven by `playwright-core`
//! (`tests/web_ui/first_login.js`) against a running box. First login with the seeded password
//! → forced change → the dashboard shows the version → the users page adds a user.
//! Screenshots go to `target/web-artifacts/`.
//!
//! Needs `chromium` (Debian package) and `playwright-core` installed by `scripts/test.sh` into
//! `HAKODEN_NODE_CACHE` (default `~/.cache/hakoden-node`). Without them a developer run skips
//! with a reason; CI fails (the `require_tool` pattern).
mod common;

use common::web::browser_flow;
use common::TestBox;
use std::time::Duration;

/// The whole browser flow: Chromium's start plus seven page loads on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn first_login_forces_a_password_change_and_the_dashboard_shows_the_version() {
    let tb = TestBox::start(&[("201", "secret201")]);
    let password = tb.web_admin_password().expect("first-start password");
    let version = {
        let out = tb.console("show version");
        // `hakoden 0.1.0+rev (...)`: the second word is what the dashboard shows.
        out.split_whitespace().nth(1).unwrap_or_default().to_string()
    };
    let env = [
        ("ADMIN_PASSWORD", password.as_str()),
        ("NEW_PASSWORD", "Sakura2026x"),
        ("VERSION", version.as_str()),
    ];
    let Some(out_dir) = browser_flow(&tb, "first_login.js", "first-login", &env, FLOW_TIMEOUT) else {
        return;
    };
    for shot in ["01-login-ja", "02-forced-change", "04-dashboard", "06-users"] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
