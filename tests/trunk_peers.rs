//! A SIP trunk registers to a provider (issue 4): SIPp plays the provider's registrar, which
//! challenges with digest, checks the credentials and grants the binding; the console shows it.

mod common;

use common::{free_udp_port, require_tool, wait_udp_bound, Sipp, TestBox};
use std::time::Duration;

/// How long the trunk may take to register (its first REGISTER may go out before SIPp listens;
/// Timer E resends it within 1.5 s).
const REGISTER_WAIT: Duration = Duration::from_secs(10);

/// Starts SIPp as the provider's registrar, then a box with one trunk to it (`password`), and
/// polls `show trunks` until it contains `until` (bounded); returns the last display and SIPp.
fn trunk_to_provider(password: &str, until: &str) -> (String, common::SippChild, TestBox) {
    let port = free_udp_port();
    let scratch = tempfile::tempdir().expect("tempdir");
    let provider = Sipp::new("provider_registrar.xml", scratch.path())
        .remote("127.0.0.1:5060")
        .local_port(port)
        .timeout(Duration::from_secs(20))
        .spawn();
    wait_udp_bound(port);
    let trunk = format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{port}\"\ndomain = \"provider.example\"\n\
         username = \"hakoden-trunk\"\npassword = \"{password}\"\nexpires = 120\n"
    );
    let tb = TestBox::start_with_config(&[("201", "secret-201")], &[], &trunk);
    let mut shown = String::new();
    let step = Duration::from_millis(100);
    for _ in 0..(REGISTER_WAIT.as_millis() / step.as_millis()) {
        shown = tb.console("show trunks");
        if shown.contains(until) {
            break;
        }
        std::thread::sleep(step);
    }
    (shown, provider, tb)
}

#[test]
fn a_trunk_registers_with_digest_and_the_console_shows_it() {
    if !require_tool("sipp") {
        return;
    }
    let (shown, provider, _tb) = trunk_to_provider("trunk-Secret-1", "registered (expires in");
    assert!(shown.contains("provider") && shown.contains("registered (expires in"), "{shown}");
    let run = provider.wait();
    run.assert_ok("the provider registrar (digest verified by SIPp)");
}

#[test]
fn a_trunk_with_a_wrong_password_shows_the_failure() {
    if !require_tool("sipp") {
        return;
    }
    let (shown, _provider, _tb) = trunk_to_provider("wrong-password", "failed");
    assert!(shown.contains("failed:") && shown.contains("retry in"), "{shown}");
}
