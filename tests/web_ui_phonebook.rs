//! The phonebook, lists and history pages in a real browser (headless Chromium driven by
//! `tests/web_ui/phonebook.js`): a Shift_JIS phonebook CSV with one bad row is imported, the
//! Japanese names and the row error show on the page. Screenshots go to
//! `target/web-artifacts/phonebook/`. Skips like `tests/web_ui.rs` when the browser is missing.
mod common;

use common::web::{admin, browser_flow, GOOD};
use common::TestBox;
use std::time::Duration;

/// Chromium's start plus five page loads and an import on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn a_shift_jis_phonebook_import_shows_the_names_and_the_bad_row() {
    let tb = TestBox::start(&[("201", "secret201")]);
    // The forced first change is the first-login flow's subject; here it is done over the API.
    let _ = admin(&tb);
    let csv = format!("{}/tests/data/phonebook-sjis.csv", env!("CARGO_MANIFEST_DIR"));
    let env = [("PASSWORD", GOOD), ("CSV", csv.as_str())];
    let Some(out_dir) = browser_flow(&tb, "phonebook.js", "phonebook", &env, FLOW_TIMEOUT) else {
        return;
    };
    for shot in
        ["01-phonebook-imported", "02-phonebook-search", "03-phonebook-personal", "04-lists", "05-history"]
    {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
