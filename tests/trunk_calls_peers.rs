//! Calls over a SIP trunk (issue 4) with real peers: SIPp plays the provider (it grants the
//! trunk's REGISTER, delivers DID calls, and takes outbound calls with a 407 challenge whose
//! answer it verifies), baresip phones are the extensions.
//!
//! The provider's port is chosen first but SIPp starts only once the phones are registered: the
//! trunk's REGISTER is retransmitted (Timer E, at most 4 s apart) until SIPp answers it, so a DID
//! call never reaches the box before its extension is there to ring.

mod common;

use common::baresip::Phone;
use common::tones::{tone, write_wav};
use common::{free_udp_port, require_tool, wait_udp_bound, RtpSink, Sipp, SippChild, TestBox};
use std::path::PathBuf;
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");

/// The DID of the office, also 201's caller ID outside.
const DID: &str = "0312345678";
/// A caller on the block list.
const BLOCKED: &str = "09099998888";
/// An ordinary outside number dialled in the outbound tests.
const OUTSIDE: &str = "0398765432";

/// Upper bound on each phone's life (`baresip -t`).
const PHONE_SECONDS: u32 = 30;
/// Time for a phone to register, a call to be set up, or the trunk to register.
const WAIT: Duration = Duration::from_secs(10);
/// The SIPp provider's bound on its whole run.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);
/// RTP packets of 20 ms the provider must get from a call that talks for 1-3 s: well below
/// the 50-150 sent, well above a stray packet or two.
const MIN_RTP_PACKETS: u64 = 25;

/// The trunk, one outbound route, the block list and the given `[[did]]` blocks.
fn trunk_toml(provider_port: u16, dids: &str) -> String {
    format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{provider_port}\"\ndomain = \"provider.example\"\n\
         username = \"{DID}\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[outbound_route]]\nprefix = \"0\"\ntrunk = \"provider\"\n\n\
         [block]\nnumbers = [\"{BLOCKED}\"]\ntreatment = \"busy\"\nreject_anonymous = true\n\n\
         [restrict]\nnumbers = [\"0990*\"]\n\n{dids}"
    )
}

/// Per-extension keys: 201 presents the DID, 203 may not call outside.
const EXTENSION_KEYS: &[(&str, &str)] =
    &[("201", "caller_id = \"0312345678\""), ("203", "external_calls = false")];

fn source(tb: &TestBox, hz: f64) -> PathBuf {
    let path = tb.scratch("media").join(format!("tone-{hz}.wav"));
    write_wav(&path, &tone(hz, f64::from(PHONE_SECONDS) + 5.0, 8_000.0));
    path
}

fn phone(tb: &TestBox, ext: (&str, &str), hz: f64) -> Phone {
    let p = Phone::builder(tb, ext, &source(tb, hz), PHONE_SECONDS)
        .ctrl_tcp(tb.port())
        .without_recording()
        .start();
    assert!(p.wait_for("200 OK", Some("Register:"), WAIT), "{} did not register\n{}", ext.0, p.report());
    p
}

fn provider(tb: &TestBox, scenario: &str, port: u16, keys: &[(&str, String)], calls: u32) -> SippChild {
    let mut sipp = Sipp::new(scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .calls(calls)
        .timeout(PROVIDER_TIMEOUT);
    for (k, v) in keys {
        sipp = sipp.key(k, v);
    }
    let child = sipp.spawn();
    wait_udp_bound(port);
    child
}

fn wait_trunk_registered(tb: &TestBox) {
    let shown = tb.console_until("show trunks", WAIT, |s| s.contains("registered (expires in"));
    assert!(shown.contains("registered (expires in"), "the trunk did not register:\n{shown}");
}

/// Local hour in Japan (the DID rules' default offset), for a rule window that excludes now.
#[allow(clippy::disallowed_methods)] // test driver: reads the clock to build the config
fn jst_hour_now() -> u64 {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs / 3600 + 9) % 24
}

/// The provider delivers a call to `did`; the extension that should ring is `ext`, registered
/// (it auto-answers and plays a tone); the provider must hear it.
fn did_call_reaches(dids: &str, did: &str, ext: (&str, &str)) {
    let port = free_udp_port();
    let tb = TestBox::start_with_config(&[ALICE, BOB], EXTENSION_KEYS, &trunk_toml(port, dids));
    let mut callee = phone(&tb, ext, 700.0);
    let sink = RtpSink::bind(free_udp_port());
    let keys = [
        ("did", did.to_string()),
        ("caller", "0611112222".to_string()),
        ("rtp_sink", sink.port().to_string()),
    ];
    let run = provider(&tb, "provider_inbound_did.xml", port, &keys, 1).wait();
    let rtp = sink.finish();
    let context = || format!("{}\n{}\n--- box ---\n{}", run.report(), callee.report(), tb.stderr_tail(60));
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the DID call failed\n{}", context());
    assert!(callee.wait_for("terminated", None, WAIT), "{} saw no hang-up\n{}", ext.0, context());
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets\n{}", rtp.packets, context());
    let cdr = tb.console_until("show cdr 1", WAIT, |s| s.contains(did));
    assert!(cdr.contains(&format!("trunk: provider  did: {did}")), "the CDR lacks trunk or DID:\n{cdr}");
    callee.kill();
}

// Inbound.

#[test]
fn a_did_call_rings_its_extension_and_the_provider_hears_the_phone() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let dids = format!(
        "[[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"202\" }}\n\
         [[did.rule]]\nname = \"always\"\ntimes = [\"00:00-24:00\"]\ndestination = {{ extension = \"201\" }}\n"
    );
    did_call_reaches(&dids, DID, ALICE);
}

#[test]
fn outside_its_rule_window_a_did_call_goes_to_the_default_destination() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    // A one-hour window that starts two hours from now: it does not match now.
    let h = jst_hour_now();
    let window = format!("{:02}:00-{:02}:00", (h + 2) % 24, (h + 3) % 24);
    let dids = format!(
        "[[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"202\" }}\n\
         [[did.rule]]\nname = \"office hours\"\ntimes = [\"{window}\"]\ndestination = {{ extension = \"201\" }}\n"
    );
    did_call_reaches(&dids, DID, BOB);
}

#[test]
fn blocked_and_anonymous_callers_are_refused_with_busy() {
    if !require_tool("sipp") {
        return;
    }
    let port = free_udp_port();
    let dids = format!("[[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"201\" }}\n");
    let tb = TestBox::start_with_config(&[ALICE], EXTENSION_KEYS, &trunk_toml(port, &dids));
    let keys = [("did", DID.to_string()), ("blocked", BLOCKED.to_string())];
    let run = provider(&tb, "provider_inbound_refused.xml", port, &keys, 1).wait();
    run.assert_ok("the provider's blocked and anonymous calls (486 expected for both)");
    let log = tb.stderr_tail(200);
    assert!(log.contains("refused (blocked caller)") && log.contains("refused (anonymous caller)"), "{log}");
}

#[test]
fn an_announcement_did_is_answered_by_the_box_which_plays_it_and_hangs_up() {
    if !require_tool("sipp") {
        return;
    }
    let port = free_udp_port();
    let dids =
        format!("[[did]]\nnumber = \"{DID}\"\ndefault = {{ announcement = \"common.not_in_service\" }}\n");
    let tb = TestBox::start_with_config(&[ALICE], EXTENSION_KEYS, &trunk_toml(port, &dids));
    let sink = RtpSink::bind(free_udp_port());
    let keys = [
        ("did", DID.to_string()),
        ("caller", "0611112222".to_string()),
        ("rtp_sink", sink.port().to_string()),
    ];
    let run = provider(&tb, "provider_inbound_announcement.xml", port, &keys, 1).wait();
    let rtp = sink.finish();
    run.assert_ok("the announcement call (answered, played, BYE from the box)");
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets of the prompt", rtp.packets);
    let cdr = tb.console_until("show cdr 1", WAIT, |s| s.contains("announcement played"));
    assert!(cdr.contains("announcement played") && cdr.contains(&format!("did: {DID}")), "{cdr}");
}

// Outbound.

/// Dials `number` from `phone` through its `ctrl_tcp`.
fn dial(phone: &Phone, number: &str) {
    phone.command("dial", number);
}

#[test]
fn an_outbound_184_call_is_withheld_answers_the_407_and_talks() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    let tb = TestBox::start_with_config(&[ALICE], EXTENSION_KEYS, &trunk_toml(port, ""));
    let mut alice = phone(&tb, ALICE, 700.0);
    let sink = RtpSink::bind(free_udp_port());
    let sipp = provider(&tb, "provider_outbound.xml", port, &[("rtp_sink", sink.port().to_string())], 2);
    wait_trunk_registered(&tb);
    dial(&alice, &format!("184{OUTSIDE}"));
    let run = sipp.wait();
    let rtp = sink.finish();
    let context = || format!("{}\n{}\n--- box ---\n{}", run.report(), alice.report(), tb.stderr_tail(60));
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the outbound call failed\n{}", context());
    let first = |k: &str| run.logged(k).into_iter().next().unwrap_or_default();
    assert_eq!(first("ruri"), format!("INVITE sip:{OUTSIDE}@provider.example"), "{}", context());
    assert!(first("from").contains("sip:anonymous@anonymous.invalid"), "{}", context());
    assert_eq!(first("privacy"), "id", "{}", context());
    assert!(first("pai").contains(&format!("sip:{DID}@provider.example")), "{}", context());
    assert!(!first("contact").contains("201"), "the extension leaks in Contact\n{}", context());
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets\n{}", rtp.packets, context());
    assert!(alice.wait_for("terminated", None, WAIT), "201 saw no hang-up\n{}", context());
    alice.kill();
}

#[test]
fn outbound_refusals_186_presentation_and_the_emergency_bypass() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], EXTENSION_KEYS, &trunk_toml(port, ""));
    let alice = phone(&tb, ALICE, 700.0);
    let carol = phone(&tb, CAROL, 900.0);
    let log_has = |needle: &str| {
        for _ in 0..(WAIT.as_millis() / 100) {
            if tb.stderr_tail(300).contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    // The trunk is not registered yet (no provider): 503 at once.
    dial(&alice, OUTSIDE);
    assert!(log_has("is not up (503)"), "no 503 for a trunk that is down\n{}", tb.stderr_tail(60));
    assert!(alice.wait_for("503", None, WAIT), "201 did not get 503\n{}", alice.report());
    // "No external calls" and the restriction list: 403 with a reason.
    dial(&carol, OUTSIDE);
    assert!(log_has("external calls barred for this extension (403)"), "{}", tb.stderr_tail(60));
    assert!(carol.wait_for("403", None, WAIT), "203 did not get 403\n{}", carol.report());
    dial(&alice, "0990123456");
    assert!(log_has("number restricted (403)"), "{}", tb.stderr_tail(60));
    // 186: presented, with 201's caller ID.
    let sink = RtpSink::bind(free_udp_port());
    let sipp = provider(&tb, "provider_outbound.xml", port, &[("rtp_sink", sink.port().to_string())], 2);
    wait_trunk_registered(&tb);
    dial(&alice, &format!("186{OUTSIDE}"));
    let run = sipp.wait();
    let first = |run: &common::SippRun, k: &str| run.logged(k).into_iter().next().unwrap_or_default();
    run.assert_ok("the 186 call");
    assert_eq!(first(&run, "ruri"), format!("INVITE sip:{OUTSIDE}@provider.example"), "{}", run.report());
    assert!(first(&run, "from").starts_with(&format!("<sip:{DID}@provider.example>")), "{}", run.report());
    assert_eq!(first(&run, "privacy"), "", "{}", run.report());
    drop(sink);
    // 119 from the barred extension goes out (the trunk is registered; one call this time).
    let sink = RtpSink::bind(free_udp_port());
    let sipp = provider(&tb, "provider_outbound.xml", port, &[("rtp_sink", sink.port().to_string())], 1);
    dial(&carol, "119");
    let run = sipp.wait();
    run.assert_ok("the emergency call from an extension without external calls");
    assert_eq!(first(&run, "ruri"), "INVITE sip:119@provider.example", "{}", run.report());
}

// Console.

#[test]
fn lists_are_imported_from_csv_with_bad_lines_reported_and_dids_are_shown() {
    let dids = format!(
        "[[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"202\" }}\nmax_channels = 2\n\
         [[did.rule]]\nname = \"always\"\ntimes = [\"00:00-24:00\"]\ndestination = {{ extension = \"201\" }}\n"
    );
    let tb = TestBox::start_with_config(&[ALICE, BOB], EXTENSION_KEYS, &trunk_toml(free_udp_port(), &dids));
    let csv = tb.scratch("lists").join("ng.csv");
    std::fs::write(&csv, "番号,備考\n0312340001,claims\nnot-a-number,typo\n0120*,sales calls\n")
        .expect("csv");
    let shown = tb.console(&format!("block import {}", csv.display()));
    assert!(shown.contains("2 row(s) imported") && shown.contains("the list holds 3"), "{shown}");
    assert!(shown.contains("line 3:"), "the bad row is reported by its line:\n{shown}");
    let block = tb.console("show block");
    for needle in ["3 entries", "anonymous callers: rejected", "0312340001", "0120*", BLOCKED] {
        assert!(block.contains(needle), "`{needle}` missing:\n{block}");
    }
    let csv = tb.scratch("lists").join("r.csv");
    std::fs::write(&csv, "0570*,navi dial,0312345678\n").expect("csv");
    let shown = tb.console(&format!("restrict import {}", csv.display()));
    assert!(shown.contains("1 row(s) imported") && shown.contains("the list holds 2"), "{shown}");
    let restrict = tb.console("show restrict");
    assert!(restrict.contains("0570*") && restrict.contains("caller ID 0312345678"), "{restrict}");
    // Kept for the next start, in the import format.
    let saved = std::fs::read_to_string(tb.data_dir().join("lists/block.csv")).expect("the saved block list");
    assert!(saved.contains("0120*,\"sales calls\",") && saved.lines().count() == 4, "{saved}");
    let shown = tb.console("show dids");
    assert!(shown.contains(DID) && shown.contains("extension 201") && shown.contains("0/2"), "{shown}");
}
