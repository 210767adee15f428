//! Calls the box places itself (click-to-call, the monitor's "call the agent"), proven with
//! real peers (baresip 1.0 phones): `call 201 202` on the console rings 201 (it answers),
//! then 202, which rings for a while before it answers: meanwhile 201 hears the ringback tone
//! (400 Hz, 1 s on, 2 s off). Then 201 plays tone A and 202 tone B, and each phone's recording
//! shows it heard the other. 201 hangs up: 202's call ends, the CDR names 201 and 202.
//!
//! Also the refusals: an unregistered first phone, an unknown extension.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, tone, write_wav, ToneDetector, BLOCK_SAMPLES};
use common::{require_tool, TestBox};
use std::time::Duration;

const USER: (&str, &str) = ("201", "secret-201");
const TARGET: (&str, &str) = ("202", "secret-202");
const OFFLINE: (&str, &str) = ("203", "secret-203");

/// Tones A (the user's phone) and B (the target's): far apart and from the ringback's 400 Hz.
const TONE_A_HZ: f64 = 1_100.0;
const TONE_B_HZ: f64 = 1_700.0;
const RINGBACK_HZ: f64 = 400.0;
const TONE_AMPLITUDE: f64 = 8_000.0;
const SOURCE_SECONDS: f64 = 60.0;
const PHONE_SECONDS: u32 = 40;
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(8);
const HANGUP_TIMEOUT: Duration = Duration::from_secs(8);
/// How long the target rings before the test answers it: two ringback cycles.
const TARGET_RINGS: Duration = Duration::from_millis(6_500);
/// How long the two talk.
const TALK: Duration = Duration::from_millis(3_600);
/// Trimmed from each end of a stretch (jitter buffers, the relay re-opened at each answer).
const EDGE_BLOCKS: usize = 3;

/// The blocks between two sample counts, less [`EDGE_BLOCKS`] at each end.
fn inner(from: usize, to: usize) -> std::ops::Range<usize> {
    let (lo, hi) =
        (from.div_ceil(BLOCK_SAMPLES) + EDGE_BLOCKS, (to / BLOCK_SAMPLES).saturating_sub(EDGE_BLOCKS));
    lo..hi.max(lo)
}

/// The share of the blocks in `range` that carry `hz`, and how many blocks there were.
fn share(samples: &[i16], range: std::ops::Range<usize>, hz: f64, detector: ToneDetector) -> (f64, usize) {
    let bs: Vec<Vec<f64>> = blocks(samples).skip(range.start).take(range.len()).collect();
    let found = bs.iter().filter(|x| detector.block_has_tone(x, hz)).count();
    (found as f64 / bs.len().max(1) as f64, bs.len())
}

/// The ringback is amplitude-modulated (16 Hz) and quieter than the test tones: a lower RMS
/// floor and no share check, the neighbours still far below.
const RINGBACK_DETECTOR: ToneDetector =
    ToneDetector { neighbour_offset_hz: 300.0, dominance: 10.0, min_rms: 500.0, min_share: None };

fn phone(tb: &TestBox, ext: (&str, &str), hz: f64, manual: bool) -> Phone {
    let dir = tb.scratch("media");
    let source = dir.join(format!("tone-{hz}.wav"));
    if !source.exists() {
        write_wav(&source, &tone(hz, SOURCE_SECONDS, TONE_AMPLITUDE));
    }
    let b = Phone::builder(tb, ext, &source, PHONE_SECONDS).ctrl_tcp(tb.port());
    let p = if manual { b.answer_manually() } else { b }.start();
    assert!(
        p.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
        "{} did not register\n{}\n--- box ---\n{}",
        ext.0,
        p.report(),
        tb.stderr_tail(60)
    );
    p
}

fn finish(phones: &mut [&mut Phone]) {
    for p in phones.iter_mut() {
        let _ = p.try_command("quit", "");
        p.wait_exit(Duration::from_secs(2));
        p.kill();
    }
}

#[test]
fn the_box_rings_the_user_then_the_target_with_ringback_and_both_hear_each_other() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start(&[USER, TARGET, OFFLINE]);
    let mut user = phone(&tb, USER, TONE_A_HZ, false);
    let mut target = phone(&tb, TARGET, TONE_B_HZ, true);
    let context = |u: &Phone, t: &Phone| {
        format!("{}\n{}\n--- box ---\n{}", u.report(), t.report(), tb.stderr_tail(120))
    };

    let out = tb.console("call 201 202");
    assert!(out.contains("ringing 201, then 202"), "{out}");
    assert!(
        user.wait_for("established", None, ESTABLISH_TIMEOUT),
        "201 did not answer\n{}",
        context(&user, &target)
    );
    let answered = user.heard_so_far();
    assert!(
        target.wait_for("Incoming call", None, ESTABLISH_TIMEOUT),
        "202 was not rung after 201 answered\n{}",
        context(&user, &target)
    );
    std::thread::sleep(TARGET_RINGS);
    let ringing_end = user.heard_so_far();
    target.command("accept", "");
    assert!(
        target.wait_for("established", None, ESTABLISH_TIMEOUT),
        "202 did not connect\n{}",
        context(&user, &target)
    );
    let connected = [user.heard_so_far(), target.heard_so_far()];
    let calls = tb.console("show calls");
    assert!(calls.contains("201") && calls.contains("202") && calls.contains("talking"), "{calls}");
    std::thread::sleep(TALK);
    let talked = [user.heard_so_far(), target.heard_so_far()];
    user.command("hangup", "");
    assert!(
        target.wait_for("terminated", None, HANGUP_TIMEOUT),
        "202 kept the call\n{}",
        context(&user, &target)
    );
    finish(&mut [&mut user, &mut target]);
    let ctx = || context(&user, &target);
    let heard_user = user.heard_samples(&ctx);
    let heard_target = target.heard_samples(&ctx);

    let (ringback, n) = share(&heard_user, inner(answered, ringing_end), RINGBACK_HZ, RINGBACK_DETECTOR);
    eprintln!("201 heard ringback in {ringback:.2} of {n} blocks while 202 rang");
    // 1 s on in every 3 s: a third of the blocks, less the on/off edges.
    assert!(n >= 40 && (0.2..=0.5).contains(&ringback), "ringback share {ringback:.2} of {n}\n{}", ctx());
    let (a_to_b, n1) = share(&heard_target, inner(connected[1], talked[1]), TONE_A_HZ, ToneDetector::MIXED);
    let (b_to_a, n2) = share(&heard_user, inner(connected[0], talked[0]), TONE_B_HZ, ToneDetector::MIXED);
    eprintln!("202 heard 201's tone in {a_to_b:.2} of {n1} blocks; 201 heard 202's in {b_to_a:.2} of {n2}");
    assert!(n1 >= 20 && a_to_b >= 0.9, "202 heard 201 in {a_to_b:.2} of {n1}\n{}", ctx());
    assert!(n2 >= 20 && b_to_a >= 0.9, "201 heard 202 in {b_to_a:.2} of {n2}\n{}", ctx());

    let cdr = tb.console_until("show cdr 1", Duration::from_secs(5), |o| o.contains("201"));
    assert!(cdr.contains("201") && cdr.contains("202"), "{cdr}");
}

#[test]
fn a_phone_that_is_not_registered_or_an_unknown_extension_is_refused() {
    let tb = TestBox::start(&[USER, TARGET]);
    let (code, out) = tb.console_refused("call 201 202");
    assert!(code != Some(0) && out.contains("error: the extension has no registered phone"), "{out}");
    for line in ["call 203 202", "call 201 299"] {
        let (code, out) = tb.console_refused(line);
        assert!(code != Some(0) && out.contains("error: no such extension"), "{line}: {out}");
    }
    let (code, out) = tb.console_refused("call 201");
    assert!(code != Some(0) && out.contains("usage: call FROM TO"), "{out}");
    assert!(tb.console("show calls").contains("0 call"), "{}", tb.console("show calls"));
}
