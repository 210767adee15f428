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
