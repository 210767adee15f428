//! Voicemail through a running box: leaving a message from a baresip phone and finding what the
//! box stored. Shared by the voicemail and notification peer tests.
#![allow(dead_code)] // each test crate uses a different part of the harness

use super::baresip::Phone;
use super::TestBox;
use std::path::PathBuf;
use std::time::Duration;

/// Lines of the box's log searched for a step.
const LOG_LINES: usize = 400;
/// Between the answer and the first key: baresip needs the media path up to send digits.
pub const KEY_GAP: Duration = Duration::from_millis(400);
/// The greeting and the beep, or the box's goodbye.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(15);
/// One step of the box after a key (stop the recorder, save).
pub const ACT_TIMEOUT: Duration = Duration::from_secs(5);
/// Call set-up between phones on loopback.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `needle` shows up in the box's log within `timeout`.
pub fn box_logged(tb: &TestBox, needle: &str, timeout: Duration) -> bool {
    tb.console_until(&format!("log tail {LOG_LINES}"), timeout, |s| s.contains(needle)).contains(needle)
}

/// The phone's report and the box's log tail, for a failed assertion.
pub fn context(tb: &TestBox, phone: &Phone) -> String {
    format!("{}\n--- box ---\n{}", phone.report(), tb.stderr_tail(80))
}

/// The stored messages of a box: WAV files, not takes still being written.
pub fn messages(tb: &TestBox, box_no: &str) -> Vec<PathBuf> {
    let dir = tb.data_dir().join("voicemail").join(box_no);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect()
}

/// `phone` (registered) dials `box_owner`, whose calls go to voicemail, skips the greeting with
/// `#`, plays its source for `speak`, ends the recording with `#` and saves it with `0`.
pub fn leave_message(tb: &TestBox, phone: &mut Phone, box_owner: &str, speak: Duration) {
    phone.command("dial", box_owner);
    assert!(phone.wait_for("Call established", None, SETUP_TIMEOUT), "not answered\n{}", context(tb, phone));
    // `#` during the greeting skips to the beep.
    std::thread::sleep(KEY_GAP);
    phone.command("sndcode", "#");
    assert!(
        box_logged(tb, "voicemail recording to", GREETING_TIMEOUT),
        "the recording did not start after the greeting\n{}",
        context(tb, phone)
    );
    std::thread::sleep(speak);
    phone.command("sndcode", "#");
    assert!(
        box_logged(tb, ".wav.part closed", ACT_TIMEOUT),
        "the recorder did not stop on #\n{}",
        context(tb, phone)
    );
    phone.command("sndcode", "0");
    assert!(box_logged(tb, "voicemail: saving", ACT_TIMEOUT), "0 did not save\n{}", context(tb, phone));
}
