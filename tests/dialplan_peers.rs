//! The dial plan of issue 4 proven with real peers (baresip 1.0 phones): ring groups (ring-all
//! and sequential), every forward type and do-not-disturb, feature-code toggles, directed and
//! group pickup (with audio both ways after the pickup), hot-desk login and logout.
//!
//! Phones take commands on `ctrl_tcp` (`dial`, `hangup`, `accept`); a phone that must ring
//! without answering runs with `answermode=manual`. The box's own log and console say where a
//! call went; the phones' logs say what they saw.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, tone, write_wav, ToneDetector};
use common::{require_tool, TestBox};
use std::path::PathBuf;
use std::time::Duration;

const P201: (&str, &str) = ("201", "secret-201");
const P202: (&str, &str) = ("202", "secret-202");
const P203: (&str, &str) = ("203", "secret-203");
const P204: (&str, &str) = ("204", "secret-204");
const P205: (&str, &str) = ("205", "secret-205");
const P206: (&str, &str) = ("206", "secret-206");
const P207: (&str, &str) = ("207", "secret-207");

/// Upper bound on each phone's life (`baresip -t`) in case the test's own quit fails.
const PHONE_SECONDS: u32 = 40;
/// Time for a phone to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a call to be set up (or refused), the dial plan's own ring times excluded.
const SETUP_TIMEOUT: Duration = Duration::from_secs(8);
/// Polling step while waiting for a phone's or the box's log.
const POLL: Duration = Duration::from_millis(50);
/// Lines of the box's log searched for dial-plan lines.
const LOG_LINES: usize = 400;
/// Tones of the caller and the picker in the pickup test: far apart.
const CALLER_HZ: f64 = 500.0;
const PICKER_HZ: f64 = 1_100.0;
/// About -12 dBFS.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// How long the picked-up call talks before the caller hangs up.
const TALK: Duration = Duration::from_secs(3);
/// Share of the talk blocks in which the other party's tone must be heard.
const MIN_HEARD_SHARE: f64 = 0.8;

/// A phone with a ctrl_tcp port, registered before it is returned.
fn start(tb: &TestBox, ext: (&str, &str), source: &std::path::Path, manual: bool) -> Phone {
    let mut b = Phone::builder(tb, ext, source, PHONE_SECONDS).ctrl_tcp(tb.port());
    if manual {
        b = b.answer_manually();
    }
    let phone = b.start();
    assert!(
        phone.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
        "{} did not register\n{}\n--- box ---\n{}",
        ext.0,
        phone.report(),
        tb.stderr_tail(40)
    );
    phone
}

fn tone_file(tb: &TestBox, hz: f64) -> PathBuf {
    let path = tb.scratch("media").join(format!("tone-{hz}.wav"));
    write_wav(&path, &tone(hz, 60.0, TONE_AMPLITUDE));
    path
}

/// How often `needle` appears in a phone's log.
fn count(phone: &Phone, needle: &str) -> usize {
    phone.log().matches(needle).count()
}

/// Waits until `needle` appears `n` times in the phone's log.
fn wait_count(phone: &Phone, needle: &str, n: usize, timeout: Duration) -> bool {
    for _ in 0..(timeout.as_millis() / POLL.as_millis()) {
        if count(phone, needle) >= n {
            return true;
        }
        std::thread::sleep(POLL);
    }
    false
}

/// Waits until the box's log holds `needle`.
fn box_logged(tb: &TestBox, needle: &str, timeout: Duration) -> bool {
    tb.console_until(&format!("log tail {LOG_LINES}"), timeout, |s| s.contains(needle)).contains(needle)
}

/// Hangs every call of `phone` up and waits until the box has no call left.
fn hang_up(tb: &TestBox, phone: &Phone) {
    phone.command("hangup", "");
    let calls = tb.console_until("show calls", SETUP_TIMEOUT, |s| s.starts_with("0 call(s)"));
    assert!(calls.starts_with("0 call(s)"), "calls left after the hang-up:\n{calls}");
}

fn context(tb: &TestBox, phones: &[&Phone]) -> String {
    format!(
        "{}\n--- box ---\n{}",
        phones.iter().map(|p| p.report()).collect::<Vec<_>>().join("\n"),
        tb.stderr_tail(80)
    )
}

const ESTABLISHED: &str = "Call established";
/// baresip's line when a call ends, for any reason (`session closed: 486 Busy Here`, ...).
const CLOSED: &str = "session closed: ";

/// Dials `number` and waits until that call ends; returns the phone's closing line.
fn dial_until_closed(tb: &TestBox, phone: &Phone, number: &str) -> String {
    let before = count(phone, CLOSED);
    phone.command("dial", number);
    assert!(
        wait_count(phone, CLOSED, before + 1, SETUP_TIMEOUT),
        "{}'s call to {number} did not end\n{}",
        phone.name,
        context(tb, &[phone])
    );
    let log = phone.log();
    log.split(CLOSED).nth(before + 1).and_then(|l| l.lines().next()).unwrap_or_default().to_string()
}

#[test]
fn ring_all_and_sequential_groups_ring_their_members() {
    if !require_tool("baresip") {
        return;
    }
    let groups = "[[ring_group]]\nnumber = \"800\"\nname = \"All\"\nstrategy = \"ring_all\"\n\
                  members = [\"202\", \"203\"]\n\n\
                  [[ring_group]]\nnumber = \"801\"\nname = \"Hunt\"\nstrategy = \"sequential\"\n\
                  members = [\"205\", \"204\", \"202\"]\nring_seconds = 5\n";
    let tb = TestBox::start_with_config(&[P201, P202, P203, P204, P205], &[], groups);
    let src = tone_file(&tb, CALLER_HZ);
    let caller = start(&tb, P201, &src, false);
    let b = start(&tb, P202, &src, false);
    let c = start(&tb, P203, &src, false);
    let d = start(&tb, P204, &src, true);
    let all = [&caller, &b, &c, &d];

    // Ring-all: both members ring, the first answer wins, the other phone is cancelled.
    caller.command("dial", "800");
    assert!(wait_count(&caller, ESTABLISHED, 1, SETUP_TIMEOUT), "800 not answered\n{}", context(&tb, &all));
    assert!(box_logged(&tb, "201 -> 800 (dial plan, 2 contact(s))", SETUP_TIMEOUT), "{}", context(&tb, &all));
    let calls = tb.console("show calls");
    assert!(calls.starts_with("1 call(s)"), "one call, the other fork gone:\n{calls}");
    hang_up(&tb, &caller);

    // Sequential: 205 is not registered (skipped), 204 rings 5 s without answering, then 202.
    caller.command("dial", "801");
    assert!(wait_count(&d, "Incoming call", 1, SETUP_TIMEOUT), "204 did not ring\n{}", context(&tb, &all));
    let b_before = count(&b, ESTABLISHED);
    assert!(!wait_count(&b, "Incoming call", 1 + count(&b, "Incoming call"), Duration::from_secs(3)));
    assert!(
        wait_count(&b, ESTABLISHED, b_before + 1, SETUP_TIMEOUT),
        "202 was not rung after 204\n{}",
        context(&tb, &all)
    );
    for needle in
        ["ring group 801: skipping 205", "ring group 801: ringing 204", "ring group 801: ringing 202"]
    {
        assert!(box_logged(&tb, needle, SETUP_TIMEOUT), "no `{needle}`\n{}", context(&tb, &all));
    }
    hang_up(&tb, &caller);
}

#[test]
fn every_forward_type_and_dnd_take_the_call_where_configured() {
    if !require_tool("baresip") {
        return;
    }
    let ext_toml = [
        ("202", "forward_always = \"203\""),
        ("204", "forward_busy = \"203\""),
        ("205", "forward_no_answer = \"203\"\nforward_no_answer_seconds = 5"),
        ("206", "forward_unregistered = \"203\""),
        ("207", "dnd = true"),
    ];
    let tb = TestBox::start_with_config(&[P201, P202, P203, P204, P205, P206, P207], &ext_toml, "");
    let src = tone_file(&tb, CALLER_HZ);
    let caller = start(&tb, P201, &src, false);
    let target = start(&tb, P203, &src, false);
    let busy = start(&tb, P204, &src, true);
    let slow = start(&tb, P205, &src, true);
    let all = [&caller, &target, &busy, &slow];
    let mut answered = 0;
    let mut check = |what: &str, dialled: &str, during: &dyn Fn()| {
        caller.command("dial", dialled);
        during();
        answered += 1;
        assert!(
            wait_count(&target, ESTABLISHED, answered, SETUP_TIMEOUT + Duration::from_secs(5)),
            "{what}: 203 did not get the call to {dialled}\n{}",
            context(&tb, &all)
        );
        hang_up(&tb, &caller);
    };
    check("forward always", "202", &|| {});
    // 204 rejects (baresip answers its hang-up of a ringing call with 486).
    check("forward busy", "204", &|| {
        assert!(wait_count(&busy, "Incoming call", 1, SETUP_TIMEOUT), "204 did not ring");
        busy.command("hangup", "");
    });
    check("forward no answer", "205", &|| {
        assert!(wait_count(&slow, "Incoming call", 1, SETUP_TIMEOUT), "205 did not ring");
    });
    check("forward unregistered", "206", &|| {});
    for needle in [
        "dial plan: 202 forwards every call to 203",
        "forwarding to 203",
        "dial plan: 206 is not registered; forwarding to 203",
    ] {
        assert!(box_logged(&tb, needle, SETUP_TIMEOUT), "no `{needle}`\n{}", context(&tb, &all));
    }
    // DND without a busy forward: the caller hears busy.
    let closed = dial_until_closed(&tb, &caller, "207");
    assert!(closed.starts_with("486"), "DND gave `{closed}`\n{}", context(&tb, &all));
    assert!(box_logged(&tb, "dial plan: 207 is in do-not-disturb", SETUP_TIMEOUT), "{}", context(&tb, &all));
}

#[test]
fn feature_codes_toggle_forwarding_and_dnd_from_the_phone() {
    if !require_tool("baresip") {
        return;
    }
    let mut tb = TestBox::start_with_config(&[P201, P202, P203], &[], "");
    let src = tone_file(&tb, CALLER_HZ);
    let caller = start(&tb, P201, &src, false);
    let owner = start(&tb, P202, &src, false);
    let target = start(&tb, P203, &src, false);
    let all = [&caller, &owner, &target];
    let forwards = |needle: &str| tb.console_until("show forwards", SETUP_TIMEOUT, |s| s.contains(needle));

    // `*72 203`: the box answers with a confirmation prompt and hangs up.
    dial_until_closed(&tb, &owner, "*72203");
    assert_eq!(count(&owner, ESTABLISHED), 1, "*72 was answered\n{}", context(&tb, &all));
    let shown = forwards("202      203");
    assert!(shown.contains("202      203"), "show forwards:\n{shown}");
    caller.command("dial", "202");
    assert!(wait_count(&target, ESTABLISHED, 1, SETUP_TIMEOUT), "not forwarded\n{}", context(&tb, &all));
    hang_up(&tb, &caller);
    // `*73` off, `*78` DND on: the next call gets busy.
    dial_until_closed(&tb, &owner, "*73");
    dial_until_closed(&tb, &owner, "*78");
    assert_eq!(count(&owner, ESTABLISHED), 3, "every code was answered\n{}", context(&tb, &all));
    let shown = forwards(" on ");
    assert!(
        shown.lines().any(|l| l.starts_with("202      -") && l.contains(" on ")),
        "show forwards:\n{shown}"
    );
    let closed = dial_until_closed(&tb, &caller, "202");
    assert!(closed.starts_with("486"), "DND gave `{closed}`\n{}", context(&tb, &all));

    // The toggles survive a restart (killed, not stopped: the store write was durable).
    tb.restart();
    let shown = tb.console("show forwards");
    let row = shown.lines().find(|l| l.starts_with("202 ")).unwrap_or_default();
    assert!(row.starts_with("202      -") && row.contains(" on "), "after the restart:\n{shown}");
}

#[test]
fn directed_and_group_pickup_connect_the_picker_and_audio_flows() {
    if !require_tool("baresip") {
        return;
    }
    let sales = "pickup_group = \"sales\"";
    let ext_toml = [("203", sales), ("204", sales), ("205", sales)];
    let tb = TestBox::start_with_config(&[P201, P202, P203, P204, P205], &ext_toml, "");
    let caller = start(&tb, P201, &tone_file(&tb, CALLER_HZ), false);
    let picker = start(&tb, P203, &tone_file(&tb, PICKER_HZ), false);
    let ringing = start(&tb, P204, &tone_file(&tb, CALLER_HZ), true);
    let all = [&caller, &picker, &ringing];

    // Directed: 201 calls 204, which rings; 203 dials **204.
    caller.command("dial", "204");
    assert!(
        wait_count(&ringing, "Incoming call", 1, SETUP_TIMEOUT),
        "204 did not ring\n{}",
        context(&tb, &all)
    );
    picker.command("dial", "**204");
    assert!(
        wait_count(&caller, ESTABLISHED, 1, SETUP_TIMEOUT)
            && wait_count(&picker, ESTABLISHED, 1, SETUP_TIMEOUT),
        "pickup did not connect\n{}",
        context(&tb, &all)
    );
    let from = (caller.heard_so_far(), picker.heard_so_far());
    std::thread::sleep(TALK);
    let to = (caller.heard_so_far(), picker.heard_so_far());
    hang_up(&tb, &caller);
    assert!(box_logged(&tb, "picked up by 203", SETUP_TIMEOUT), "{}", context(&tb, &all));
    for (p, hz, (a, b)) in [(&caller, PICKER_HZ, (from.0, to.0)), (&picker, CALLER_HZ, (from.1, to.1))] {
        let heard = p.heard_samples(&|| context(&tb, &all));
        let talk: Vec<Vec<f64>> =
            blocks(&heard).skip(a / 800 + 3).take((b / 800).saturating_sub(a / 800 + 6)).collect();
        let found = talk.iter().filter(|x| ToneDetector::MIXED.block_has_tone(x, hz)).count();
        eprintln!("{}: heard {hz} Hz in {found}/{} blocks after the pickup", p.name, talk.len());
        assert!(talk.len() >= 10, "{}: only {} blocks\n{}", p.name, talk.len(), context(&tb, &all));
        assert!(
            found as f64 >= MIN_HEARD_SHARE * talk.len() as f64,
            "{}: heard {hz} Hz in {found}/{} blocks\n{}",
            p.name,
            talk.len(),
            context(&tb, &all)
        );
    }

    // Group: 202 calls 204 again; 205 (same pickup group) dials *8.
    let other = start(&tb, P202, &tone_file(&tb, CALLER_HZ), false);
    let group_picker = start(&tb, P205, &tone_file(&tb, PICKER_HZ), false);
    let all = [&caller, &picker, &ringing, &other, &group_picker];
    other.command("dial", "204");
    assert!(
        wait_count(&ringing, "Incoming call", 2, SETUP_TIMEOUT),
        "204 did not ring\n{}",
        context(&tb, &all)
    );
    group_picker.command("dial", "*8");
    assert!(
        wait_count(&other, ESTABLISHED, 1, SETUP_TIMEOUT)
            && wait_count(&group_picker, ESTABLISHED, 1, SETUP_TIMEOUT),
        "group pickup did not connect\n{}",
        context(&tb, &all)
    );
    assert!(box_logged(&tb, "picked up by 205", SETUP_TIMEOUT), "{}", context(&tb, &all));
    hang_up(&tb, &other);
}

#[test]
fn hot_desk_login_rings_the_phone_and_logout_ends_it() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[P201, P203, P204], &[("204", "pin = \"1234\"")], "");
    let src = tone_file(&tb, CALLER_HZ);
    let caller = start(&tb, P201, &src, false);
    let desk = start(&tb, P203, &src, false);
    let all = [&caller, &desk];

    let closed = dial_until_closed(&tb, &desk, "9982040000");
    assert!(closed.starts_with("403"), "wrong PIN gave `{closed}`\n{}", context(&tb, &all));
    dial_until_closed(&tb, &desk, "9982041234");
    assert_eq!(count(&desk, ESTABLISHED), 1, "login confirmed by a prompt\n{}", context(&tb, &all));
    let regs = tb.console("show registrations");
    assert!(regs.lines().any(|l| l.starts_with("204 ") && l.contains("hot desk from 203")), "{regs}");
    caller.command("dial", "204");
    assert!(wait_count(&desk, ESTABLISHED, 2, SETUP_TIMEOUT), "204 did not ring 203\n{}", context(&tb, &all));
    hang_up(&tb, &caller);
    dial_until_closed(&tb, &desk, "997");
    assert_eq!(count(&desk, ESTABLISHED), 3, "logout confirmed by a prompt\n{}", context(&tb, &all));
    let regs = tb.console("show registrations");
    assert!(!regs.lines().any(|l| l.starts_with("204 ")), "{regs}");
    let closed = dial_until_closed(&tb, &caller, "204");
    assert!(closed.starts_with("480"), "after logout 204 gave `{closed}`\n{}", context(&tb, &all));
}
