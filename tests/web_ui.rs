//! The web admin in a real browser: headless Chromium driven by `playwright-core`
//! (`tests/web_ui/first_login.js`) against a running box. First login with the seeded password
//! → forced change → the dashboard shows the version → the users page adds a user.
//! Screenshots go to `target/web-artifacts/`.
//!
//! Needs `chromium` (Debian package) and `playwright-core` installed by `scripts/test.sh` into
//! `HAKODEN_NODE_CACHE` (default `~/.cache/hakoden-node`). Without them a developer run skips
//! with a reason; CI fails (the `require_tool` pattern).
mod common;

use common::{require_tool, run_bounded, TestBox};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The whole browser flow: Chromium's start plus seven page loads on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);

fn node_modules() -> Option<PathBuf> {
    let cache = std::env::var_os("HAKODEN_NODE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hakoden-node")))?;
    let modules = cache.join("node_modules");
    modules.join("playwright-core/package.json").is_file().then_some(modules)
}

fn ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false)
}

#[test]
fn first_login_forces_a_password_change_and_the_dashboard_shows_the_version() {
    if !require_tool("chromium") || !require_tool("node") {
        return;
    }
    let Some(modules) = node_modules() else {
        assert!(!ci(), "playwright-core is not installed; scripts/test.sh installs it");
        eprintln!("SKIPPED: playwright-core is not installed (run scripts/test.sh to install it)");
        return;
    };
    let tb = TestBox::start(&[("201", "secret201")]);
    let password = tb.web_admin_password().expect("first-start password");
    let version = {
        let out = tb.console("show version");
        // `hakoden 0.1.0+rev (...)`: the second word is what the dashboard shows.
        out.split_whitespace().nth(1).unwrap_or_default().to_string()
    };
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-artifacts/first-login");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("artifacts dir");
    let profile = tb.scratch("chromium-profile");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web_ui/first_login.js");
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .env("NODE_PATH", &modules)
        .env("BASE_URL", tb.web_url())
        .env("ADMIN_PASSWORD", &password)
        .env("NEW_PASSWORD", "Sakura2026x")
        .env("VERSION", &version)
        .env("OUT_DIR", &out_dir)
        .env("USER_DATA_DIR", &profile);
    let run = run_bounded(&mut cmd, &tb.scratch("node"), "web-ui", FLOW_TIMEOUT);
    assert!(
        run.code == Some(0),
        "browser flow failed (exit {:?}, timed out {}):\n{}\n{}\nscreenshots in {}",
        run.code,
        run.timed_out,
        run.stdout,
        run.stderr,
        out_dir.display()
    );
    for shot in ["01-login-ja", "02-forced-change", "04-dashboard", "06-users"] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
