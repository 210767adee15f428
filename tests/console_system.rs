//! The appliance console commands against a box on this machine (a developer run): status,
//! network settings (saved, never applied to the host), options-test, reboot refusal, SSH
//! keys, and the nightly restart's clean exit.
#![allow(clippy::disallowed_methods)] // tests read the wall clock to place a restart window

mod common;

use common::TestBox;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long one console command may take.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(20);

/// `(exit code, stdout + stderr)` of a console command, refusals included.
fn console_raw(tb: &TestBox, cmd: &str) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hakoden"));
    c.arg("console").arg("--data").arg(tb.data_dir()).args(cmd.split_whitespace());
    let out = common::run_bounded(&mut c, &tb.scratch("console"), "console", CONSOLE_TIMEOUT);
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn status_answers_with_every_part_of_the_box() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    let (code, dash) = common::web::admin(&tb).get("/api/v1/dashboard");
    assert_eq!(code, reqwest::StatusCode::OK, "{dash}");
    assert!(dash["next_restart"].is_null(), "no [system] window: {dash}");
    let s = tb.console("status");
    for want in [
        "Hakoden ",
        "slot: none (developer run)",
        "uptime: ",
        "registrations: 0",
        "calls: 0",
        "trunks: 0 of 0 registered",
        "storage: ",
        "network address: the board's default",
        "addresses: ",
        "next restart: not planned",
    ] {
        assert!(s.contains(want), "`{want}` missing in\n{s}");
    }
}

#[test]
fn network_settings_are_saved_and_only_described_on_a_developer_run() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    let out = tb.console("network dhcp");
    assert!(out.contains("a developer run applies nothing"), "{out}");
    assert!(out.contains("udhcpc -i eth0"), "{out}");
    tb.console("network static 192.168.10.20/24 192.168.10.1 192.168.10.1");
    tb.console("hostname office-pbx");
    let out = tb.console("ntp ntp.nict.jp");
    assert!(out.contains("hakoden: SNTP from ntp.nict.jp"), "{out}");
    let shown = tb.console("network");
    assert!(shown.contains("address: static 192.168.10.20/24, gateway 192.168.10.1"), "{shown}");
    assert!(shown.contains("hostname: office-pbx") && shown.contains("ntp: ntp.nict.jp"), "{shown}");
    let file = std::fs::read_to_string(tb.data_dir().join("network.conf")).unwrap();
    assert!(file.contains("mode=static\naddress=192.168.10.20/24\n"), "{file}");
    let (code, out) = console_raw(&tb, "network static 192.168.10.20/24 10.0.0.1");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not inside"), "{out}");
}

#[test]
fn options_test_against_the_box_itself_gets_200() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    let out = tb.console(&format!("options-test 127.0.0.1:{}", tb.sip_port()));
    assert!(out.contains(": 200 OK in "), "{out}");
    // Nothing listens on a port the box does not use: an error, not a hang.
    let (code, out) = console_raw(&tb, &format!("options-test 127.0.0.1:{}", common::free_udp_port()));
    assert_eq!(code, Some(1), "{out}");
}

#[test]
fn reboot_is_refused_off_the_appliance() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    for cmd in ["reboot", "reboot now"] {
        let (code, out) = console_raw(&tb, cmd);
        assert_eq!(code, Some(1), "{cmd}: {out}");
        assert!(out.contains("not the appliance"), "{cmd}: {out}");
    }
    assert!(tb.console("status").contains("calls: 0"), "the box still runs");
}

#[test]
fn ssh_keys_are_added_listed_and_removed() {
    let tb = TestBox::start(&[("201", "secret-201")]);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f tech@laptop";
    assert!(tb.console(&format!("ssh key add {key}")).contains("key 1 added"));
    assert!(tb.console("ssh key list").contains("tech@laptop"));
    let file = std::fs::read_to_string(tb.data_dir().join("ssh/authorized_keys")).unwrap();
    assert_eq!(file.trim(), key);
    assert!(tb.console("ssh key remove 1").contains("removed"));
}

/// Local `HH:MM` (the box's default offset, +09:00) of unix second `t`.
fn jst_hhmm(t: u64) -> String {
    let local = (t + 9 * 3600) % 86_400;
    format!("{:02}:{:02}", local / 3600, local % 3600 / 60)
}

#[test]
fn an_idle_box_restarts_cleanly_when_its_window_opens() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    // The window must open after the box starts: a night opened before the start counts as
    // done. The next minute boundary at least 5 s away (the box starts in about a second).
    let mut open = (now / 60 + 1) * 60;
    if open - now < 5 {
        open += 60;
    }
    let window = format!("{}-{}", jst_hhmm(open), jst_hhmm(open + 600));
    let mut tb = TestBox::start_with_config(
        &[("201", "secret-201")],
        &[],
        &format!("[system]\nrestart_window = \"{window}\""),
    );
    let planned = tb.console("status");
    assert!(planned.contains(&format!("next restart: unix {open} ")), "{planned}");
    let (code, dash) = common::web::admin(&tb).get("/api/v1/dashboard");
    assert_eq!(code, reqwest::StatusCode::OK, "{dash}");
    assert_eq!(dash["next_restart"].as_u64(), Some(open), "{dash}");
    let give_up = std::time::Instant::now() + Duration::from_secs(open - now + 15);
    while tb.is_running() {
        assert!(std::time::Instant::now() < give_up, "no restart by the window start {window}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = tb.stderr_tail(50);
    assert!(log.contains("nightly restart: no call active"), "{log}");
}
