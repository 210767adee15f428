//! The system page (issue 8's web side) in headless Chromium (`tests/web_ui/system.js`): a
//! developer box shows no A/B slots, a backup downloads, and uploading it back is checked and
//! staged for the next start. Screenshots and the backup go to `target/web-artifacts/system/`.
mod common;

use common::web::{admin, browser_flow, GOOD};
use common::TestBox;
use std::time::Duration;

/// Chromium's start, three page loads and a backup of a fresh box, on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn the_system_page_downloads_a_backup_and_stages_its_restore() {
    let tb = TestBox::start(&[("201", "secret201")]);
    // The seeded admin's forced change is done over the API; the page logs in with the new one.
    let _ = admin(&tb);
    let Some(out) = browser_flow(&tb, "system.js", "system", &[("ADMIN_PASSWORD", GOOD)], FLOW_TIMEOUT)
    else {
        return;
    };
    let size = std::fs::metadata(out.join("backup.hkb")).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "the downloaded backup is empty");
    for shot in ["01-system", "02-restore-staged"] {
        assert!(out.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
