//! Two real softphones (baresip) call each other through the box: 201 plays a 1 kHz tone
//! from a WAV file, 202 auto-answers and records what it hears; the recording must hold
//! the tone. Audio goes through baresip's `aufile` source and its `sndfile` filter, which
//! dumps the decoded (received) audio to a WAV; no sound card is involved.
mod common;

use common::baresip::Phone;
use common::tones::{blocks_at, tone, write_wav, ToneDetector, BLOCK_SAMPLES, SAMPLE_RATE};
use common::{require_tool, TestBox};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");

const TONE_HZ: f64 = 1_000.0;
/// Half of full scale: loud, with headroom for G.711's companding.
const TONE_AMPLITUDE: f64 = 16_000.0;
/// The caller's file; the call ends when baresip's `aufile` reaches its end.
const TONE_SECONDS: u32 = 4;
/// A block carries the tone when it is loud (RMS floor well above G.711 idle noise, well below
/// the tone's ~11 300) and the tone's energy is 10 times its neighbours' 300 Hz away (100 ms
/// blocks give 10 Hz bins, plenty to tell 1000 from 700/1300 Hz).
const DETECTOR: ToneDetector =
    ToneDetector { neighbour_offset_hz: 300.0, dominance: 10.0, min_rms: 2_000.0, min_share: None };
/// Blocks (100 ms each) that must carry the tone: at least 1 s of it.
const MIN_TONE_BLOCKS: usize = 10;
/// The callee's silence outlasts the caller's tone, so the caller ends the call.
const SILENCE_SECONDS: u32 = 10;
/// Time for the callee to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// The caller's whole life (`baresip -t`): registration, ringing, 4 s of tone, BYE.
const CALLER_SECONDS: u32 = 9;
/// A bound on the callee in case nothing ends its call.
const CALLEE_SECONDS: u32 = 25;
/// Time the callee gets to see the BYE and close its recording after the caller quits.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A recorded WAV: sample rate and 16-bit mono samples. A recording cut short by a killed
/// process may carry a zero or oversized data length, so the data runs to the end of file.
fn read_wav(bytes: &[u8]) -> Option<(u32, Vec<i16>)> {
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut rate = None;
    let mut channels = 1u16;
    while let Some(header) = bytes.get(pos..pos + 8) {
        let id = header.get(..4)?;
        let len = u32::from_le_bytes(header.get(4..8)?.try_into().ok()?) as usize;
        let body_start = pos + 8;
        if id == b"fmt " {
            let fmt = bytes.get(body_start..body_start + 16)?;
            channels = u16::from_le_bytes(fmt.get(2..4)?.try_into().ok()?);
            rate = Some(u32::from_le_bytes(fmt.get(4..8)?.try_into().ok()?));
            let bits = u16::from_le_bytes(fmt.get(14..16)?.try_into().ok()?);
            if bits != 16 {
                return None;
            }
        } else if id == b"data" {
            let end = if len == 0 || body_start + len > bytes.len() { bytes.len() } else { body_start + len };
            let data = bytes.get(body_start..end)?;
            let step = usize::from(channels.max(1)) * 2;
            let samples = data
                .chunks_exact(step)
                .filter_map(|c| c.get(..2))
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
            return Some((rate?, samples));
        }
        pos = body_start + len + (len & 1);
    }
    None
}

/// Number of 100 ms blocks where the tone is loud and dominates its neighbours.
fn tone_blocks(rate: u32, samples: &[i16], hz: f64) -> usize {
    blocks_at(samples, rate).filter(|x| DETECTOR.block_has_tone_at(x, rate, hz)).count()
}

#[test]
fn tone_detector_accepts_the_tone_and_refuses_others() {
    let t = tone(TONE_HZ, 2.0, TONE_AMPLITUDE);
    assert_eq!(tone_blocks(SAMPLE_RATE, &t, TONE_HZ), 20);
    let wrong = tone(700.0, 2.0, TONE_AMPLITUDE);
    assert_eq!(tone_blocks(SAMPLE_RATE, &wrong, TONE_HZ), 0);
    let quiet = tone(TONE_HZ, 2.0, 200.0);
    assert_eq!(tone_blocks(SAMPLE_RATE, &quiet, TONE_HZ), 0);
    assert_eq!(BLOCK_SAMPLES, 800);
}

#[test]
fn wav_round_trips_and_truncated_headers_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.wav");
    let t = tone(TONE_HZ, 1.0, TONE_AMPLITUDE);
    write_wav(&path, &t);
    let mut bytes = std::fs::read(&path).expect("read");
    assert_eq!(read_wav(&bytes), Some((SAMPLE_RATE, t.clone())));
    // A writer killed before finalising leaves the data length at 0.
    bytes.splice(40..44, 0u32.to_le_bytes());
    assert_eq!(read_wav(&bytes).map(|(_, s)| s.len()), Some(t.len()));
    assert_eq!(read_wav(b"RIFF"), None);
    assert_eq!(read_wav(&bytes[..30]), None);
}

#[test]
fn baresip_call_carries_a_tone_from_caller_to_callee() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let media = tb.scratch("media");
    let tone_wav = media.join("tone-1khz.wav");
    write_wav(&tone_wav, &tone(TONE_HZ, f64::from(TONE_SECONDS), TONE_AMPLITUDE));
    let silence_wav = media.join("silence.wav");
    write_wav(&silence_wav, &vec![0; (SAMPLE_RATE * SILENCE_SECONDS) as usize]);

    let mut bob = Phone::start(&tb, BOB, &silence_wav, &[], CALLEE_SECONDS);
    assert!(
        bob.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
        "callee did not register\n{}\n--- box ---\n{}",
        bob.report(),
        tb.stderr_tail(60)
    );
    let mut alice = Phone::start(&tb, ALICE, &tone_wav, &[&format!("/dial {}", BOB.0)], CALLER_SECONDS);
    alice.wait_exit(Duration::from_secs(u64::from(CALLER_SECONDS) + 5));
    // The caller's BYE ends the callee's call, which closes its recording.
    bob.wait_for("terminated", None, HANGUP_TIMEOUT);
    bob.wait_exit(Duration::from_millis(100));
    bob.kill();

    let context = || format!("{}\n{}\n--- box ---\n{}", alice.report(), bob.report(), tb.stderr_tail(80));
    let rec =
        bob.heard().unwrap_or_else(|| panic!("the callee recorded nothing (no call audio?)\n{}", context()));
    let bytes = std::fs::read(&rec).expect("read recording");
    let (rate, samples) =
        read_wav(&bytes).unwrap_or_else(|| panic!("{} is not a 16-bit WAV\n{}", rec.display(), context()));
    let blocks = tone_blocks(rate, &samples, TONE_HZ);
    eprintln!("callee heard the tone in {blocks} blocks of 100 ms ({} samples at {rate} Hz)", samples.len());
    assert!(
        blocks >= MIN_TONE_BLOCKS,
        "the callee heard the 1 kHz tone in {blocks} blocks of 100 ms (want >= {MIN_TONE_BLOCKS}); \
         recording {} has {} samples at {rate} Hz\n{}",
        rec.display(),
        samples.len(),
        context()
    );
}
