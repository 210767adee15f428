//! Voicemail with real peers (baresip 1.0): 201 calls 202, whose phone is not registered and
//! who has `voicemail = true`; the box answers into mailbox 202, plays the greeting and the
//! beep, records 201's tone, `#` opens the review menu, `0` saves. Then the console shows one
//! new message for 202 and the stored WAV under `DATA/voicemail/202/` carries the tone. Then
//! 202's phone registers, dials `*92`, enters its PIN and `#`, presses `1`, and hears the tone.
//! In between, SIPp subscribes to 202's `message-summary` and gets the NOTIFY "1 new" (baresip
//! 1.0's own `mwi` module re-subscribes in a loop at start, so it cannot be the subscriber).
//!
//! With `CI=true` a missing `baresip` fails the test; locally it is skipped with a message.
mod common;

use common::baresip::Phone;
use common::tones::{read_audio, tone, write_wav, ToneDetector, SAMPLE_RATE};
use common::voicemail::{
    box_logged, context, leave_message, messages, ACT_TIMEOUT, GREETING_TIMEOUT, KEY_GAP, SETUP_TIMEOUT,
};
use common::{require_tool, Sipp, TestBox};
use std::time::Duration;

const P201: (&str, &str) = ("201", "secret-201");
const P202: (&str, &str) = ("202", "secret-202");

/// Upper bound on the phone's life (`baresip -t`) in case the test's own hang-up fails.
const PHONE_SECONDS: u32 = 40;
/// How long the caller's tone is recorded before `#`.
const SPEAK: Duration = Duration::from_secs(2);
/// The caller's tone and its level (about -12 dBFS).
const TONE_HZ: f64 = 700.0;
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Least steady tone in the stored message: 1 s of the 2 s spoken (the first packets after
/// the beep and the last before `#` may be cut).
const MIN_TONE_BLOCKS: usize = 10;
/// "You have 1 new message", the menu (cut by `1`), the message's header (received, date,
/// time, caller) and the message itself.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);
/// Polling step while waiting for what a phone heard.
const POLL: Duration = Duration::from_millis(500);

#[test]
fn a_caller_leaves_a_message_and_the_owner_hears_it_with_star_92() {
    if !require_tool("baresip") || !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start_with_config(&[P201, P202], &[("202", "voicemail = true\npin = \"1234\"")], "");
    let source = tb.scratch("media").join("tone.wav");
    write_wav(&source, &tone(TONE_HZ, 60.0, TONE_AMPLITUDE));
    let mut alice =
        Phone::builder(&tb, P201, &source, PHONE_SECONDS).without_recording().ctrl_tcp(tb.port()).start();
    assert!(
        alice.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT),
        "201 did not register\n{}",
        context(&tb, &alice)
    );

    leave_message(&tb, &mut alice, "202", SPEAK);
    // "Message saved. Goodbye." and the box hangs up.
    assert!(
        alice.wait_for("session closed", None, GREETING_TIMEOUT),
        "the box did not hang up\n{}",
        context(&tb, &alice)
    );

    let new_for_202 = |s: &str| s.lines().any(|l| l.split_whitespace().take(2).eq(["202", "1"]));
    let shown = tb.console_until("show voicemail", ACT_TIMEOUT, new_for_202);
    assert!(new_for_202(&shown), "202 should show 1 new message:\n{shown}\n{}", context(&tb, &alice));
    let files = messages(&tb, "202");
    assert_eq!(files.len(), 1, "one message file: {files:?}");
    let (format, samples) = read_audio(&files[0]).expect("the message is a WAV");
    assert_eq!(format.sample_rate_hz, SAMPLE_RATE);
    let steady = ToneDetector::MIXED.steady_blocks(&samples, TONE_HZ, 3);
    eprintln!(
        "message {}: {} samples, {} blocks with the {TONE_HZ} Hz tone",
        files[0].display(),
        samples.len(),
        steady.len()
    );
    assert!(steady.len() >= MIN_TONE_BLOCKS, "the tone is not in the message ({} blocks)", steady.len());
    alice.kill();

    // Message waiting: SUBSCRIBE, 200, and the NOTIFY says one new message.
    let mwi = Sipp::new("mwi_subscribe.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(tb.port())
        .media_port(tb.port())
        .service(P202.0)
        .auth(P202.0, P202.1)
        .run();
    mwi.assert_ok("SUBSCRIBE message-summary for 202");
    assert!(
        mwi.logs.contains("mwi body=Messages-Waiting: yes Voice-Message: 1/0"),
        "the NOTIFY should say 1 new, 0 old:\n{}",
        mwi.logs
    );

    // The owner listens: `*92`, PIN, `#`, then `1` plays the first new message.
    let silence = tb.scratch("media").join("silence.wav");
    write_wav(&silence, &vec![0i16; 60 * SAMPLE_RATE as usize]);
    let bob = Phone::builder(&tb, P202, &silence, PHONE_SECONDS).ctrl_tcp(tb.port()).start();
    assert!(
        bob.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT),
        "202 did not register\n{}",
        context(&tb, &bob)
    );
    bob.command("dial", "*92");
    assert!(
        bob.wait_for("Call established", None, SETUP_TIMEOUT),
        "*92 not answered\n{}",
        context(&tb, &bob)
    );
    for key in ["1", "2", "3", "4", "#"] {
        std::thread::sleep(KEY_GAP);
        bob.command("sndcode", key);
    }
    assert!(
        box_logged(&tb, "logged in to voicemail box 202", ACT_TIMEOUT),
        "the PIN was not accepted\n{}",
        context(&tb, &bob)
    );
    std::thread::sleep(KEY_GAP);
    bob.command("sndcode", "1");
    let mut heard_blocks = 0;
    for _ in 0..(LISTEN_TIMEOUT.as_millis() / POLL.as_millis()) {
        std::thread::sleep(POLL);
        let Some((_, heard)) = bob.heard().and_then(|p| read_audio(&p)) else { continue };
        heard_blocks = ToneDetector::MIXED.steady_blocks(&heard, TONE_HZ, 3).len();
        if heard_blocks >= MIN_TONE_BLOCKS {
            break;
        }
    }
    eprintln!("202 heard {heard_blocks} blocks of the {TONE_HZ} Hz tone");
    assert!(heard_blocks >= MIN_TONE_BLOCKS, "202 did not hear the message\n{}", context(&tb, &bob));
    bob.command("hangup", "");
}

/// The uploaded greeting's tone, distinct from the callers' 700 Hz.
const GREETING_HZ: f64 = 1_000.0;

/// Registers `ext` with SIPp (a new contact), takes the unsolicited NOTIFY, unregisters; returns
/// the logged `mwi body=...` line.
fn unsolicited_mwi(tb: &TestBox, ext: (&str, &str)) -> String {
    let run = Sipp::new("mwi_unsolicited.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(tb.port())
        .media_port(tb.port())
        .service(ext.0)
        .auth(ext.0, ext.1)
        .run();
    run.assert_ok(&format!("REGISTER {} and its unsolicited NOTIFY", ext.0));
    run.logs.lines().find(|l| l.contains("mwi body=")).unwrap_or_default().to_string()
}

/// How often `needle` is in the box's log tail.
fn log_count(tb: &TestBox, needle: &str) -> usize {
    tb.console("log tail 1000").matches(needle).count()
}

#[test]
fn an_uploaded_greeting_is_heard_and_a_phone_that_never_subscribes_gets_mwi() {
    if !require_tool("baresip") || !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start_with_config(&[P201, P202], &[("202", "voicemail = true")], "");
    let greeting = tb.scratch("media").join("Greeting Tone.wav");
    write_wav(&greeting, &tone(GREETING_HZ, 4.0, TONE_AMPLITUDE));
    let answer = tb.console(&format!("voicemail greeting 202 default {}", greeting.display()));
    assert!(answer.contains("default greeting set"), "upload refused: {answer}");
    let line = unsolicited_mwi(&tb, P202);
    assert!(line.contains("mwi body=Messages-Waiting: no Voice-Message: 0/0"), "{line}");

    let silence = tb.scratch("media").join("silence.wav");
    write_wav(&silence, &vec![0i16; 30 * SAMPLE_RATE as usize]);
    let alice = Phone::builder(&tb, P201, &silence, PHONE_SECONDS).ctrl_tcp(tb.port()).start();
    assert!(alice.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT), "{}", context(&tb, &alice));
    alice.command("dial", "202");
    assert!(alice.wait_for("Call established", None, SETUP_TIMEOUT), "{}", context(&tb, &alice));
    let mut blocks = 0;
    for _ in 0..(LISTEN_TIMEOUT.as_millis() / POLL.as_millis()) {
        std::thread::sleep(POLL);
        let Some((_, heard)) = alice.heard().and_then(|p| read_audio(&p)) else { continue };
        blocks = ToneDetector::MIXED.steady_blocks(&heard, GREETING_HZ, 3).len();
        if blocks >= MIN_TONE_BLOCKS {
            break;
        }
    }
    assert!(
        blocks >= MIN_TONE_BLOCKS,
        "201 did not hear the uploaded greeting ({blocks})\n{}",
        context(&tb, &alice)
    );
    alice.command("hangup", "");
}

#[test]
fn configured_limits_cut_a_long_message_and_refuse_a_full_box() {
    if !require_tool("baresip") {
        return;
    }
    let limits = "[voicemail]\nmax_unread = 1\nmax_message_seconds = 2\n";
    let tb = TestBox::start_with_config(&[P201, P202], &[("202", "voicemail = true")], limits);
    let source = tb.scratch("media").join("tone.wav");
    write_wav(&source, &tone(TONE_HZ, 60.0, TONE_AMPLITUDE));
    let alice =
        Phone::builder(&tb, P201, &source, PHONE_SECONDS).without_recording().ctrl_tcp(tb.port()).start();
    assert!(alice.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT), "{}", context(&tb, &alice));
    alice.command("dial", "202");
    assert!(alice.wait_for("Call established", None, SETUP_TIMEOUT), "{}", context(&tb, &alice));
    std::thread::sleep(KEY_GAP);
    alice.command("sndcode", "#");
    assert!(box_logged(&tb, "voicemail recording to", GREETING_TIMEOUT), "{}", context(&tb, &alice));
    // No `#`: the 2 s limit stops the recording, keeps it, says goodbye and hangs up.
    assert!(box_logged(&tb, "voicemail: saving", ACT_TIMEOUT), "not cut at 2 s\n{}", context(&tb, &alice));
    assert!(alice.wait_for("session closed", None, GREETING_TIMEOUT), "{}", context(&tb, &alice));
    let one_new = |s: &str| s.lines().any(|l| l.split_whitespace().take(2).eq(["202", "1"]));
    assert!(one_new(&tb.console_until("show voicemail", ACT_TIMEOUT, one_new)));
    assert_eq!(messages(&tb, "202").len(), 1);

    // One unread message fills the box: "mailbox full", hang-up, nothing recorded.
    alice.command("dial", "202");
    assert!(alice.wait_for("Call established", None, SETUP_TIMEOUT), "{}", context(&tb, &alice));
    std::thread::sleep(KEY_GAP);
    let closed = |p: &Phone| p.log().matches("session closed").count() >= 2;
    for _ in 0..(GREETING_TIMEOUT.as_millis() / POLL.as_millis()) {
        if closed(&alice) {
            break;
        }
        std::thread::sleep(POLL);
    }
    assert!(closed(&alice), "the full box did not hang up\n{}", context(&tb, &alice));
    assert_eq!(log_count(&tb, "voicemail recording to"), 1, "nothing recorded for the full box");
    assert_eq!(messages(&tb, "202").len(), 1);
}

#[test]
fn a_box_killed_mid_recording_comes_back_consistent() {
    if !require_tool("baresip") || !require_tool("sipp") {
        return;
    }
    let mut tb =
        TestBox::start_with_config(&[P201, P202], &[("202", "voicemail = true\npin = \"1234\"")], "");
    let source = tb.scratch("media").join("tone.wav");
    write_wav(&source, &tone(TONE_HZ, 60.0, TONE_AMPLITUDE));
    let mut alice =
        Phone::builder(&tb, P201, &source, PHONE_SECONDS).without_recording().ctrl_tcp(tb.port()).start();
    assert!(alice.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT), "{}", context(&tb, &alice));
    leave_message(&tb, &mut alice, "202", SPEAK);
    assert!(alice.wait_for("session closed", None, GREETING_TIMEOUT), "{}", context(&tb, &alice));
    // The second message is being recorded when the power goes.
    alice.command("dial", "202");
    assert!(alice.wait_for("Call established", None, SETUP_TIMEOUT), "{}", context(&tb, &alice));
    std::thread::sleep(KEY_GAP);
    alice.command("sndcode", "#");
    assert!(log_count_until(&tb, "voicemail recording to", 2), "{}", context(&tb, &alice));
    std::thread::sleep(SPEAK);
    let dir = tb.data_dir().join("voicemail").join("202");
    let part_now = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.path().to_string_lossy().ends_with(".part")))
        .unwrap_or(false);
    assert!(part_now, "a take is being written when the box is killed");
    alice.kill();
    tb.restart();

    let parts: Vec<_> = std::fs::read_dir(&dir)
        .expect("box dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "no take survives the restart: {parts:?}");
    assert_eq!(messages(&tb, "202").len(), 1, "the committed message only");
    let shown = tb.console("show voicemail");
    assert!(shown.lines().any(|l| l.split_whitespace().take(2).eq(["202", "1"])), "{shown}");
    let line = unsolicited_mwi(&tb, P202);
    assert!(line.contains("mwi body=Messages-Waiting: yes Voice-Message: 1/0"), "MWI after restart: {line}");

    // The owner menu works on the recovered box.
    let silence = tb.scratch("media").join("silence.wav");
    write_wav(&silence, &vec![0i16; 30 * SAMPLE_RATE as usize]);
    let bob =
        Phone::builder(&tb, P202, &silence, PHONE_SECONDS).without_recording().ctrl_tcp(tb.port()).start();
    assert!(bob.wait_for("200 OK", Some("Register:"), SETUP_TIMEOUT), "{}", context(&tb, &bob));
    bob.command("dial", "*92");
    assert!(bob.wait_for("Call established", None, SETUP_TIMEOUT), "{}", context(&tb, &bob));
    for key in ["1", "2", "3", "4", "#"] {
        std::thread::sleep(KEY_GAP);
        bob.command("sndcode", key);
    }
    assert!(box_logged(&tb, "logged in to voicemail box 202", ACT_TIMEOUT), "{}", context(&tb, &bob));
    bob.command("hangup", "");
}

/// Waits until `needle` is in the box's log `n` times.
fn log_count_until(tb: &TestBox, needle: &str, n: usize) -> bool {
    let got = tb.console_until("log tail 1000", GREETING_TIMEOUT, |s| s.matches(needle).count() >= n);
    got.matches(needle).count() >= n
}
