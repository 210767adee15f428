//! The campaigns page in a real browser (`tests/web_ui/campaigns.js`): a supervisor opens a
//! campaign, sees a field error for a bad number, adds a customer, enters a result from the
//! list, and sees it counted in the statistics; then the page in English. Screenshots go to
//! `target/web-artifacts/campaigns/`. Skips like `tests/web_ui.rs` without chromium, node or
//! playwright-core (CI fails instead).
mod common;

use common::web::{admin, browser_flow, create_user_with_extension, Web, GOOD, GOOD2};
use common::TestBox;
use std::time::Duration;

const CAMPAIGN: &str = "[[campaign]]\nname = \"autumn\"\nenabled = false\nmode = \"progressive\"\n\
                        results = \"1,成約\\n2,再検討\"\nagents = [\"201\"]\n";

#[test]
fn a_supervisor_works_a_campaign_list_in_the_browser() {
    let tb = TestBox::start_with_config(&[("201", "secret201"), ("900", "secret900")], &[], CAMPAIGN);
    let w = admin(&tb);
    create_user_with_extension(&w, "sv1", "supervisor", "900");
    Web::new(&tb).first_login("sv1", GOOD, GOOD2);
    let env = [("USER", "sv1"), ("PASSWORD", GOOD2), ("CAMPAIGN", "autumn")];
    let Some(out) = browser_flow(&tb, "campaigns.js", "campaigns", &env, Duration::from_secs(120)) else {
        return;
    };
    for shot in ["01-list", "02-result-and-stats", "03-english"] {
        assert!(out.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
