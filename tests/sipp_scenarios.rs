//! SIPp against the real box: registration, basic calls with anchored RTP, CANCEL, busy,
//! BYE from the callee, unknown and unregistered numbers. Scenarios live in `tests/sipp/`.
mod common;

use common::{g711a_pcap, must_register, require_tool, wait_udp_bound, RtpSink, Sipp, SippRun, TestBox};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
/// SIPp's capture holds 67 packets in the caller's first 2 s of talk; a loose
/// floor so a slow CI machine still passes while a dead relay does not.
const MIN_RELAYED_PACKETS: u64 = 40;

/// A caller scenario as `caller` dialling `callee`, from the port `caller` registered on.
fn caller(tb: &TestBox, scenario: &str, caller: (&str, &str), port: u16, callee: &str) -> Sipp {
    Sipp::new(scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .media_port(tb.port())
        .service(callee)
        .key("caller", caller.0)
        .auth(caller.0, caller.1)
}

/// Starts a callee scenario on `port` and waits until it listens.
fn callee(tb: &TestBox, scenario: &str, port: u16, rtp_port: u16) -> common::SippChild {
    let child = Sipp::new(scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .media_port(tb.port())
        .key("rtpport", rtp_port)
        .spawn();
    wait_udp_bound(port);
    child
}

/// The port of an `m=audio PORT` value logged by a scenario.
fn logged_media_port(run: &SippRun, key: &str) -> u16 {
    let values = run.logged(key);
    let value = values.first().unwrap_or_else(|| panic!("no `{key}` logged\n{}", run.report()));
    value
        .trim_start_matches("m=audio ")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad `{key}` value {value:?}"))
}

fn assert_in_box_range(tb: &TestBox, port: u16, what: &str) {
    let (lo, hi) = tb.rtp_range();
    assert!(
        (lo..=hi).contains(&port),
        "{what}: SDP names port {port}, not one of the box's RTP ports {lo}-{hi} (media not anchored)"
    );
}

/// Time the box gets to forget a call after its BYE was answered.
const TEARDOWN_WAIT: Duration = Duration::from_secs(3);

/// Waits until `show calls` lists no call involving `ext`.
fn assert_calls_torn_down(tb: &TestBox, ext: &str) {
    let step = Duration::from_millis(100);
    let mut calls = String::new();
    for _ in 0..(TEARDOWN_WAIT.as_millis() / step.as_millis()) {
        calls = tb.console("show calls");
        if !calls.lines().skip(1).any(|l| l.contains(ext)) {
            return;
        }
        std::thread::sleep(step);
    }
    panic!("the box still lists a call with {ext} after {TEARDOWN_WAIT:?}:\n{calls}");
}

fn final_code(run: &SippRun) -> String {
    run.logged("final").first().cloned().unwrap_or_default()
}

/// Caller gets `expected` for an INVITE to `callee`; the callee side (if any) is already up.
fn assert_call_fails(tb: &TestBox, caller_port: u16, callee: &str, expected: &str) -> SippRun {
    let run = caller(tb, "uac_reject.xml", ALICE, caller_port, callee).run();
    run.assert_ok(&format!("INVITE {callee}"));
    assert_eq!(final_code(&run), expected, "final answer\n{}", run.report());
    run
}

#[test]
fn register_with_good_password_is_accepted_and_listed() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE]);
    let port = tb.port();
    must_register(&tb, ALICE, port);
    let regs = tb.console("show registrations");
    let contact = format!("127.0.0.1:{port}");
    assert!(
        regs.lines().any(|l| l.split_whitespace().next() == Some("201") && l.contains(&contact)),
        "`show registrations` does not list 201 at {contact}:\n{regs}"
    );
}

#[test]
fn register_with_wrong_password_is_forbidden() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE]);
    let port = tb.port();
    let run = Sipp::new("register_forbidden.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .media_port(tb.port())
        .service(ALICE.0)
        .auth(ALICE.0, "not-the-password")
        .run();
    run.assert_ok("REGISTER with a wrong password must get 403");
    let regs = tb.console("show registrations");
    assert!(!regs.contains(&format!(":{port}")), "a refused REGISTER left a binding:\n{regs}");
}

#[test]
fn call_between_extensions_relays_rtp_through_the_box() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let (alice_port, bob_port) = (tb.port(), tb.port());
    must_register(&tb, BOB, bob_port);
    must_register(&tb, ALICE, alice_port);

    let sink = RtpSink::bind(tb.port());
    let bob = callee(&tb, "uas_answer.xml", bob_port, sink.port());
    let alice =
        caller(&tb, "uac_call.xml", ALICE, alice_port, BOB.0).key("pcap", g711a_pcap().display()).run();
    let bob = bob.wait();
    let rtp = sink.finish();

    alice.assert_ok("caller 201 -> 202");
    bob.assert_ok("callee 202");
    assert_in_box_range(&tb, logged_media_port(&alice, "answer_sdp"), "answer to 201");
    assert_in_box_range(&tb, logged_media_port(&bob, "offer_sdp"), "offer to 202");
    assert!(
        rtp.packets >= MIN_RELAYED_PACKETS,
        "callee received {} RTP packets (want >= {MIN_RELAYED_PACKETS}): {rtp:?}\n--- box ---\n{}",
        rtp.packets,
        tb.stderr_tail(60)
    );
    assert!(rtp.payload_types.contains(&8), "no PCMA packets: {rtp:?}");
    let (lo, hi) = tb.rtp_range();
    assert!(
        rtp.source_ports.iter().all(|p| (lo..=hi).contains(p)),
        "RTP reached the callee from outside the box's range {lo}-{hi}: {rtp:?}"
    );
    assert_calls_torn_down(&tb, BOB.0);
}

#[test]
fn cancel_before_answer_gives_487_and_200() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let (alice_port, bob_port) = (tb.port(), tb.port());
    must_register(&tb, BOB, bob_port);
    must_register(&tb, ALICE, alice_port);

    let bob = callee(&tb, "uas_ring.xml", bob_port, tb.port());
    let alice = caller(&tb, "uac_cancel.xml", ALICE, alice_port, BOB.0).run();
    let bob = bob.wait();

    alice.assert_ok("caller CANCELs while ringing");
    assert_eq!(alice.logged("cancel_answer"), ["200"], "{}", alice.report());
    assert_eq!(final_code(&alice), "487", "{}", alice.report());
    bob.assert_ok("callee sees the CANCEL");
}

#[test]
fn busy_callee_486_is_relayed() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let (alice_port, bob_port) = (tb.port(), tb.port());
    must_register(&tb, BOB, bob_port);
    must_register(&tb, ALICE, alice_port);

    let bob = callee(&tb, "uas_busy.xml", bob_port, tb.port());
    assert_call_fails(&tb, alice_port, BOB.0, "486");
    bob.wait().assert_ok("callee answers 486");
}

#[test]
fn callee_hangs_up_with_bye() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let (alice_port, bob_port) = (tb.port(), tb.port());
    must_register(&tb, BOB, bob_port);
    must_register(&tb, ALICE, alice_port);

    let bob = callee(&tb, "uas_answer_then_bye.xml", bob_port, tb.port());
    let alice = caller(&tb, "uac_call_remote_bye.xml", ALICE, alice_port, BOB.0).run();
    let bob = bob.wait();
    alice.assert_ok("caller receives the callee's BYE");
    bob.assert_ok("callee sends BYE and gets 200");
    assert_calls_torn_down(&tb, BOB.0);
}

#[test]
fn unknown_number_gets_404() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE]);
    let alice_port = tb.port();
    must_register(&tb, ALICE, alice_port);
    assert_call_fails(&tb, alice_port, "999", "404");
}

#[test]
fn unregistered_extension_gets_480() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let alice_port = tb.port();
    must_register(&tb, ALICE, alice_port);
    assert_call_fails(&tb, alice_port, BOB.0, "480");
}
