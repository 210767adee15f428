//! The media features of issue 3 proven with real peers (baresip 1.0 phones, SIPp): a tone
//! played into a recorded call is in the box's recording at the right frequency; three phones
//! in conference room 9201 each hear the other two and not themselves; the prompts
//! (`rec.announce`, `conf.entering`) arrive complete, in order, and before anything else.
//!
//! Phones play WAV files through baresip's `aufile` source and dump what they hear with its
//! `sndfile` filter (`*-dec.wav`); no sound card is involved. Figures: `docs/audio.md`.
mod common;

use common::baresip::Phone;
use common::tones::{
    blocks, goertzel, read_audio, rms, tone, tone_share, write_wav, ToneDetector, BLOCK_SAMPLES, SAMPLE_RATE,
};
use common::{must_register, require_tool, wait_udp_bound, Sipp, SippChild, TestBox};
use hakoden::media::audio::wav::{self, Encoding};
use hakoden::media::prompts::{self, Lang};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");

/// About -12 dBFS: speech level, and two of them summed by the mixer stay clear of clipping.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// A tone lasts: 3 blocks (300 ms) in a row, which no syllable of a prompt does.
const MIN_TONE_RUN: usize = 3;
/// Time for a callee to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a callee gets to see the BYE and close its files after the caller quits.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the box gets to close a recording after the call ended.
const RECORDING_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Signals.

/// Indices of the 100 ms blocks that carry `hz` steadily: in runs of at least
/// [`MIN_TONE_RUN`] blocks.
fn tone_blocks(samples: &[i16], hz: f64) -> Vec<usize> {
    ToneDetector::MIXED.steady_blocks(samples, hz, MIN_TONE_RUN)
}

/// Mean Goertzel energy at `hz` over the blocks `range`.
fn mean_energy(samples: &[i16], hz: f64, range: std::ops::Range<usize>) -> f64 {
    let n = range.len().max(1) as f64;
    blocks(samples).skip(range.start).take(range.len()).map(|x| goertzel(&x, hz)).sum::<f64>() / n
}

/// Normalised cross-correlation of two equally long pieces.
fn ncc(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// Envelope step for the coarse search: 10 ms.
const ENVELOPE_STEP: usize = 80;
/// A prompt piece compared on its own: 250 ms.
const PIECE: usize = 2_000;
/// How far one piece may sit from where the whole prompt was found (jitter buffer slips).
const PIECE_SLACK: usize = 400;
/// Pieces quieter than this RMS are pauses in the speech: nothing to correlate.
const PIECE_MIN_RMS: f64 = 300.0;
/// G.711's round trip keeps a speech piece's correlation near 0.99; 0.9 allows a concealed
/// packet or two.
const PIECE_MIN_NCC: f64 = 0.9;

fn envelope(x: &[i16]) -> Vec<f64> {
    x.chunks(ENVELOPE_STEP)
        .map(|c| c.iter().map(|s| f64::from(*s).abs()).sum::<f64>() / c.len() as f64)
        .collect()
}

/// Where a prompt was found in what a phone heard.
#[derive(Debug)]
struct Found {
    /// Sample offset of the prompt's first sample in the heard audio.
    start: usize,
    /// Per speech piece: (offset in the prompt, offset found, correlation).
    pieces: Vec<(usize, usize, f64)>,
}

impl Found {
    fn worst(&self) -> f64 {
        self.pieces.iter().map(|p| p.2).fold(1.0, f64::min)
    }

    /// True when every piece arrived, in order, each where the whole prompt puts it.
    fn complete_and_in_order(&self) -> bool {
        self.worst() >= PIECE_MIN_NCC
            && self.pieces.windows(2).all(|w| w[1].1 > w[0].1)
            && self.pieces.iter().all(|p| p.1.abs_diff(self.start + p.0) <= PIECE_SLACK)
    }
}

/// Locates `prompt` in `heard`: the envelopes give a coarse start, then every 250 ms speech
/// piece of the prompt is matched sample-exact near where it should be.
fn find_prompt(heard: &[i16], prompt: &[i16]) -> Option<Found> {
    let (eh, ep) = (envelope(heard), envelope(prompt));
    if eh.len() < ep.len() {
        return None;
    }
    let mut best = (f64::MIN, 0);
    for lag in 0..=(eh.len() - ep.len()) {
        let (mut ab, mut bb) = (0.0, 0.0);
        for (x, y) in ep.iter().zip(&eh[lag..]) {
            ab += x * y;
            bb += y * y;
        }
        let score = if bb > 0.0 { ab / bb.sqrt() } else { 0.0 };
        if score > best.0 {
            best = (score, lag);
        }
    }
    let coarse = best.1 * ENVELOPE_STEP;
    let mut pieces = Vec::new();
    let mut offset = 0;
    while offset + PIECE <= prompt.len() {
        let piece = &prompt[offset..offset + PIECE];
        let loud = rms(&piece.iter().map(|s| f64::from(*s)).collect::<Vec<_>>()) >= PIECE_MIN_RMS;
        if loud {
            let centre = coarse + offset;
            let lo = centre.saturating_sub(PIECE_SLACK);
            let hi = (centre + PIECE_SLACK).min(heard.len().saturating_sub(PIECE));
            let mut top = (0.0, centre);
            for at in lo..=hi.max(lo) {
                let Some(h) = heard.get(at..at + PIECE) else { break };
                let c = ncc(piece, h);
                if c > top.0 {
                    top = (c, at);
                }
            }
            pieces.push((offset, top.1, top.0));
        }
        offset += PIECE;
    }
    // The exact start: the first loud piece's exact place minus its offset.
    let start = pieces.first().map(|p| p.1.saturating_sub(p.0)).unwrap_or(coarse);
    Some(Found { start, pieces })
}

/// The box's recordings: every `*.wav` under `DATA/recordings/`.
fn box_recordings(tb: &TestBox) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(days) = std::fs::read_dir(tb.data_dir().join("recordings")) else { return found };
    for day in days.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()) {
        let Ok(files) = std::fs::read_dir(&day) else { continue };
        found.extend(
            files
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav")),
        );
    }
    found.sort();
    found
}

/// The talk time (whole seconds) of the newest CDR from `from` to `to` in `show cdr` output:
/// `id from to result status ring talk hangup cause`.
fn cdr_talk_seconds(cdr: &str, from: &str, to: &str) -> Option<u64> {
    cdr.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(1) == Some(&from) && cols.get(2) == Some(&to))
            .then(|| cols.get(6)?.strip_suffix('s')?.parse().ok())
            .flatten()
    })
}

/// The box's log says it closed a recording (header sizes written).
fn wait_recording_closed(tb: &TestBox) -> bool {
    let step = Duration::from_millis(50);
    for _ in 0..(RECORDING_TIMEOUT.as_millis() / step.as_millis()) {
        if tb.stderr_tail(400).contains("recording") && tb.stderr_tail(400).contains("closed") {
            return true;
        }
        std::thread::sleep(step);
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Offline checks of the analysis itself.

#[test]
fn the_prompt_finder_locates_a_prompt_and_notices_a_cut() {
    let prompt = prompts::pcm("rec.announce", Lang::En).expect("rec.announce (en) is embedded");
    let mut heard = vec![0i16; 3_000];
    // A G.711 round trip, as on the wire.
    heard.extend(prompt.iter().map(|&s| {
        let law = hakoden::media::audio::g711::Law::Mu;
        law.decode_sample(law.encode_sample(s))
    }));
    heard.extend(tone(600.0, 1.0, TONE_AMPLITUDE));
    let found = find_prompt(&heard, &prompt).expect("found");
    assert!(found.complete_and_in_order(), "{found:?}");
    assert!(found.start.abs_diff(3_000) <= 2, "{found:?}");
    // Half a second of the prompt missing.
    let cut_at = 3_000 + prompt.len() / 2;
    heard.drain(cut_at..cut_at + 4_000);
    let found = find_prompt(&heard, &prompt).expect("found");
    assert!(!found.complete_and_in_order(), "a cut went unnoticed: {found:?}");
}

#[test]
fn the_tone_detector_tells_mixed_tones_apart() {
    let a = tone(500.0, 1.0, TONE_AMPLITUDE);
    let b = tone(1_100.0, 1.0, TONE_AMPLITUDE);
    let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x.saturating_add(*y)).collect();
    assert_eq!(tone_blocks(&mix, 500.0).len(), 10);
    assert_eq!(tone_blocks(&mix, 1_100.0).len(), 10);
    assert_eq!(tone_blocks(&mix, 1_700.0).len(), 0);
    assert!(
        (tone_share(&a.iter().map(|&s| f64::from(s)).collect::<Vec<_>>()[..800], SAMPLE_RATE, 500.0) - 1.0)
            .abs()
            < 0.05
    );
    // Speech carries no steady tone.
    for id in ["rec.announce", "conf.entering"] {
        for lang in [Lang::Ja, Lang::En] {
            let speech = prompts::pcm(id, lang).expect("embedded");
            for hz in [CALLER_HZ, CALLEE_HZ].iter().chain(&ROOM_HZ) {
                assert_eq!(tone_blocks(&speech, *hz), Vec::<usize>::new(), "{id} {lang:?} {hz} Hz");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// With real peers.

/// The caller's tone; the callee's is [`CALLEE_HZ`].
const CALLER_HZ: f64 = 1_000.0;
const CALLEE_HZ: f64 = 600.0;
/// The caller's whole life (`baresip -t`): registration, ringing, prompt, tones, BYE.
const CALLER_SECONDS: u32 = 10;
/// A bound on the callee in case nothing ends its call.
const CALLEE_SECONDS: u32 = 25;
/// Each phone plays its tone for longer than it lives.
const SOURCE_SECONDS: f64 = 30.0;
/// The recording must hold each tone this long (the caller's tone is cut by the prompt).
const MIN_TONE_BLOCKS: usize = 20;
/// The recording's length against what the caller heard (both count 8 kHz samples from the
/// answer to the BYE): within this.
const DURATION_SLACK_MS: u64 = 1_500;

/// A recorded call: 201 (tone 1 kHz) calls 202 (`record = "always"`, tone 600 Hz). Returns the
/// box, the caller and the callee after the call ended.
fn recorded_call(language: &str) -> (TestBox, Phone, Phone) {
    let tb = TestBox::start_with_config(
        &[ALICE, BOB],
        &[(BOB.0, "record = \"always\"")],
        &format!("[media]\nlanguage = \"{language}\""),
    );
    let media = tb.scratch("media");
    let (caller_wav, callee_wav) = (media.join("caller.wav"), media.join("callee.wav"));
    write_wav(&caller_wav, &tone(CALLER_HZ, SOURCE_SECONDS, TONE_AMPLITUDE));
    write_wav(&callee_wav, &tone(CALLEE_HZ, SOURCE_SECONDS, TONE_AMPLITUDE));
    let mut bob = Phone::start(&tb, BOB, &callee_wav, &[], CALLEE_SECONDS);
    assert!(
        bob.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
        "callee did not register\n{}\n--- box ---\n{}",
        bob.report(),
        tb.stderr_tail(60)
    );
    let mut alice = Phone::start(&tb, ALICE, &caller_wav, &[&format!("/dial {}", BOB.0)], CALLER_SECONDS);
    alice.wait_exit(Duration::from_secs(u64::from(CALLER_SECONDS) + 5));
    bob.wait_for("terminated", None, HANGUP_TIMEOUT);
    bob.wait_exit(Duration::from_millis(200));
    bob.kill();
    (tb, alice, bob)
}

#[test]
fn a_tone_played_into_a_recorded_call_is_in_the_recording() {
    if !require_tool("baresip") {
        return;
    }
    let (tb, alice, bob) = recorded_call("ja");
    let context = || format!("{}\n{}\n--- box ---\n{}", alice.report(), bob.report(), tb.stderr_tail(80));
    assert!(wait_recording_closed(&tb), "the box did not close a recording\n{}", context());
    let files = box_recordings(&tb);
    assert_eq!(files.len(), 1, "want one recording under DATA/recordings/: {files:?}\n{}", context());
    let path = &files[0];
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let day = path.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or_default();
    assert!(name.starts_with("call-") && name.ends_with(".wav"), "{}", path.display());
    assert!(day.len() == 8 && day.bytes().all(|b| b.is_ascii_digit()), "day folder {day}");

    let bytes = std::fs::read(path).expect("read recording");
    // Strict parse: the box finalised the header sizes.
    let parsed = wav::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}\n{}", path.display(), context()));
    assert_eq!(parsed.format().encoding, Encoding::MuLaw, "{:?}", parsed.format());
    assert_eq!(parsed.format().sample_rate_hz, SAMPLE_RATE);
    assert_eq!(parsed.format().channels, 1);
    assert_eq!(parsed.format().bits_per_sample, 8);
    let recorded = parsed.mono_pcm16();
    let recorded_ms = recorded.len() as u64 * 1000 / u64::from(SAMPLE_RATE);

    let heard = alice.heard_samples(&context);
    let heard_ms = heard.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
    let caller_blocks = tone_blocks(&recorded, CALLER_HZ).len();
    let callee_blocks = tone_blocks(&recorded, CALLEE_HZ).len();
    let bytes_per_minute = (bytes.len() as u64).saturating_mul(60_000) / recorded_ms.max(1);
    eprintln!(
        "recording {}: {} bytes, {recorded_ms} ms ({bytes_per_minute} bytes/min); caller heard {heard_ms} ms; \
         {CALLER_HZ} Hz in {caller_blocks} blocks, {CALLEE_HZ} Hz in {callee_blocks} blocks of 100 ms",
        path.display(),
        bytes.len()
    );
    // CDRs reach the store through a group commit, a moment after the recording closes.
    let cdr = tb.console_until("show cdr", Duration::from_secs(5), |out| {
        cdr_talk_seconds(out, ALICE.0, BOB.0).is_some()
    });
    let talk_s = cdr_talk_seconds(&cdr, ALICE.0, BOB.0)
        .unwrap_or_else(|| panic!("no CDR for {} -> {}:\n{cdr}\n{}", ALICE.0, BOB.0, context()));
    eprintln!("CDR talk time {talk_s} s");
    // The console prints whole seconds (truncated).
    assert!(
        recorded_ms + DURATION_SLACK_MS >= talk_s * 1000
            && recorded_ms <= (talk_s + 1) * 1000 + DURATION_SLACK_MS,
        "recording lasts {recorded_ms} ms, the CDR's talk time is {talk_s} s\n{cdr}\n{}",
        context()
    );
    assert!(
        recorded_ms.abs_diff(heard_ms) <= DURATION_SLACK_MS,
        "recording lasts {recorded_ms} ms, the call {heard_ms} ms (as the caller heard it)\n{}",
        context()
    );
    assert!(caller_blocks >= MIN_TONE_BLOCKS, "caller's tone in {caller_blocks} blocks\n{}", context());
    assert!(callee_blocks >= MIN_TONE_BLOCKS, "callee's tone in {callee_blocks} blocks\n{}", context());
}

/// The prompt must be followed by the callee's audio within this (jitter buffers, packet
/// pacing).
const AFTER_PROMPT_SLACK_BLOCKS: usize = 2;

#[test]
fn the_caller_hears_the_whole_recording_announcement_before_the_callee() {
    if !require_tool("baresip") {
        return;
    }
    let (tb, alice, bob) = recorded_call("en");
    let context = || format!("{}\n{}\n--- box ---\n{}", alice.report(), bob.report(), tb.stderr_tail(80));
    let heard = alice.heard_samples(&context);
    let prompt = prompts::pcm("rec.announce", Lang::En).expect("rec.announce (en) is embedded");
    let found = find_prompt(&heard, &prompt).expect("the caller heard less than the prompt's length");
    let prompt_end_block = (found.start + prompt.len()) / BLOCK_SAMPLES;
    let callee = tone_blocks(&heard, CALLEE_HZ);
    eprintln!(
        "rec.announce ({} ms) found at {} ms, worst piece correlation {:.4} over {} pieces; \
         callee first heard at {:?} ms",
        prompt.len() / 8,
        found.start / 8,
        found.worst(),
        found.pieces.len(),
        callee.first().map(|b| b * 100)
    );
    assert!(
        found.complete_and_in_order(),
        "the prompt arrived cut or out of order: {found:?}\n{}",
        context()
    );
    let first_callee =
        *callee.first().unwrap_or_else(|| panic!("the caller never heard the callee\n{}", context()));
    assert!(
        first_callee + AFTER_PROMPT_SLACK_BLOCKS >= prompt_end_block,
        "the callee was heard at block {first_callee}, before the prompt ended (block {prompt_end_block})\n{}",
        context()
    );
    assert!(
        callee.len() >= MIN_TONE_BLOCKS,
        "the callee was heard in {} blocks\n{}",
        callee.len(),
        context()
    );
}

/// The room's tones: far apart, none on another's Goertzel neighbours.
const ROOM_HZ: [f64; 3] = [500.0, 1_100.0, 1_700.0];
/// Each participant's life in the room (`baresip -t`).
const ROOM_SECONDS: u32 = 12;
/// Gap between joins so each entry prompt is heard on its own.
const JOIN_GAP: Duration = Duration::from_millis(700);
/// Blocks (100 ms) in which each of the other two tones must be heard: 2 s of the three
/// together.
const MIN_ROOM_BLOCKS: usize = 20;
/// Own voice at least this far (energy ratio, 20 dB) below the others' in what a phone hears.
const OWN_VOICE_RATIO: f64 = 100.0;

#[test]
fn three_phones_in_a_room_each_hear_the_other_two_after_the_entry_prompt() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], "[media]\nlanguage = \"ja\"");
    let media = tb.scratch("media");
    let mut phones = Vec::new();
    for (i, (ext, hz)) in [ALICE, BOB, CAROL].into_iter().zip(ROOM_HZ).enumerate() {
        let source = media.join(format!("tone-{hz}.wav"));
        write_wav(&source, &tone(hz, SOURCE_SECONDS, TONE_AMPLITUDE));
        if i > 0 {
            std::thread::sleep(JOIN_GAP);
        }
        phones.push(Phone::start(&tb, ext, &source, &["/dial 9201"], ROOM_SECONDS));
    }
    for p in &mut phones {
        p.wait_exit(Duration::from_secs(u64::from(ROOM_SECONDS) + 5));
    }
    let context = || {
        format!(
            "{}\n--- box ---\n{}",
            phones.iter().map(Phone::report).collect::<Vec<_>>().join("\n"),
            tb.stderr_tail(80)
        )
    };
    let prompt = prompts::pcm("conf.entering", Lang::Ja).expect("conf.entering (ja) is embedded");
    for (i, p) in phones.iter().enumerate() {
        let heard = p.heard_samples(&context);
        let found = find_prompt(&heard, &prompt).expect("heard less than the prompt's length");
        let own = ROOM_HZ[i];
        let others: Vec<f64> = ROOM_HZ.iter().copied().filter(|&hz| hz != own).collect();
        let hits: Vec<Vec<usize>> = others.iter().map(|&hz| tone_blocks(&heard, hz)).collect();
        // Where both others are heard, own voice must be far weaker than either.
        let both: Vec<usize> = hits[0].iter().copied().filter(|b| hits[1].contains(b)).collect();
        let span = both.first().copied().unwrap_or(0)..both.last().map(|b| b + 1).unwrap_or(0);
        let own_e = mean_energy(&heard, own, span.clone());
        let other_e = others.iter().map(|&hz| mean_energy(&heard, hz, span.clone())).fold(f64::MAX, f64::min);
        let prompt_end_block = (found.start + prompt.len()) / BLOCK_SAMPLES;
        eprintln!(
            "{}: conf.entering at {} ms (worst piece {:.4}); {:?} Hz in {:?} blocks, both in {}; \
             own {own} Hz {:.1} dB below the others",
            p.name,
            found.start / 8,
            found.worst(),
            others,
            hits.iter().map(Vec::len).collect::<Vec<_>>(),
            both.len(),
            10.0 * (other_e / own_e.max(1.0)).log10()
        );
        assert!(found.complete_and_in_order(), "{}: conf.entering cut: {found:?}\n{}", p.name, context());
        for (hz, h) in others.iter().zip(&hits) {
            assert!(
                h.first().is_none_or(|&b| b + AFTER_PROMPT_SLACK_BLOCKS >= prompt_end_block),
                "{}: {hz} Hz heard at block {:?}, before the prompt ended (block {prompt_end_block})\n{}",
                p.name,
                h.first(),
                context()
            );
        }
        assert!(
            both.len() >= MIN_ROOM_BLOCKS,
            "{}: both others in {} blocks\n{}",
            p.name,
            both.len(),
            context()
        );
        assert!(
            other_e > OWN_VOICE_RATIO * own_e,
            "{}: own voice {own_e:.3e} vs others {other_e:.3e}\n{}",
            p.name,
            context()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hold, with SIPp.

/// The hold in `media_uac_hold.xml` lasts 3 s: at 50 packets a second, 150; allow for the
/// re-INVITE round trips at either end.
const MIN_HOLD_PACKETS: usize = 120;
/// ... and no more than 3.5 s of packets (music must stop on resume, 1.5 s before the BYE).
const MAX_HOLD_PACKETS: usize = 175;
/// Longest silence between two music packets: the box paces 20 ms; a loaded CI machine may
/// delay a tick or a few.
const MAX_HOLD_GAP: Duration = Duration::from_millis(200);
/// The music's RMS (it is about 2 000 over a note's decay); silence or comfort noise is far
/// below.
const MIN_MUSIC_RMS: f64 = 500.0;

/// One RTP packet as the sink got it.
struct Arrival {
    at: Instant,
    pt: u8,
    payload: Vec<u8>,
}

/// A UDP socket standing in for the callee's RTP port, keeping each packet's arrival time and
/// payload.
struct TimedSink {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Arrival>>>,
}

/// RTP header without CSRCs or extension (the box sends no more).
const RTP_HEADER: usize = 12;

impl TimedSink {
    #[allow(clippy::disallowed_methods)] // test driver: stamps arrivals with the clock
    fn bind(port: u16) -> TimedSink {
        let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("bind {port}: {e}"));
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("set_read_timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                let Ok(n) = socket.recv(&mut buf) else { continue };
                let pkt = buf.get(..n).unwrap_or_default();
                // RTP version 2, not RTCP (packet types 200..=204 where RTP has M + PT).
                let (Some(&first), Some(&second), Some(payload)) =
                    (pkt.first(), pkt.get(1), pkt.get(RTP_HEADER..))
                else {
                    continue;
                };
                if first >> 6 == 2 && !(200..=204).contains(&second) && !payload.is_empty() {
                    got.push(Arrival { at: Instant::now(), pt: second & 0x7f, payload: payload.to_vec() });
                }
            }
            got
        });
        TimedSink { port, stop, thread: Some(thread) }
    }

    fn finish(mut self) -> Vec<Arrival> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for TimedSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sipp(tb: &TestBox, scenario: &str, port: u16) -> Sipp {
    Sipp::new(scenario, &tb.scratch("sipp")).remote(&tb.sip_addr()).local_port(port).media_port(tb.port())
}

#[test]
fn the_held_party_hears_music_until_the_call_is_resumed() {
    if !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let (alice_port, bob_port) = (tb.port(), tb.port());
    must_register(&tb, BOB, bob_port);
    must_register(&tb, ALICE, alice_port);
    let sink = TimedSink::bind(tb.port());
    let bob: SippChild = sipp(&tb, "uas_answer.xml", bob_port).key("rtpport", sink.port).spawn();
    wait_udp_bound(bob_port);
    let alice = sipp(&tb, "media_uac_hold.xml", alice_port)
        .service(BOB.0)
        .key("caller", ALICE.0)
        .auth(ALICE.0, ALICE.1)
        .run();
    let bob = bob.wait();
    let got = sink.finish();
    let context = || format!("{}\n{}\n--- box ---\n{}", alice.report(), bob.report(), tb.stderr_tail(60));
    alice.assert_ok("caller holds and resumes");
    bob.assert_ok("callee");
    assert_eq!(alice.logged("hold_answer"), vec!["a=recvonly".to_string()], "{}", context());

    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at.saturating_duration_since(w[0].at)).collect();
    let max_gap = gaps.iter().copied().max().unwrap_or_default();
    let span = match (got.first(), got.last()) {
        (Some(a), Some(b)) => b.at.saturating_duration_since(a.at),
        _ => Duration::ZERO,
    };
    let pcm: Vec<f64> = got
        .iter()
        .flat_map(|Arrival { pt, payload, .. }| {
            let law = if *pt == 8 {
                hakoden::media::audio::g711::Law::A
            } else {
                hakoden::media::audio::g711::Law::Mu
            };
            payload.iter().map(move |b| f64::from(law.decode_sample(*b)))
        })
        .collect();
    let music_rms = rms(&pcm);
    eprintln!(
        "held callee got {} packets over {span:?}, longest gap {max_gap:?}, payload types {:?}, music RMS {music_rms:.0}",
        got.len(),
        got.iter().map(|g| g.pt).collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        (MIN_HOLD_PACKETS..=MAX_HOLD_PACKETS).contains(&got.len()),
        "the held callee got {} RTP packets (want {MIN_HOLD_PACKETS}..={MAX_HOLD_PACKETS})\n{}",
        got.len(),
        context()
    );
    assert!(max_gap <= MAX_HOLD_GAP, "music stalled for {max_gap:?}\n{}", context());
    assert!(got.iter().all(|g| g.pt == 8), "the callee negotiated PCMA only\n{}", context());
    assert!(music_rms >= MIN_MUSIC_RMS, "the music is too quiet: RMS {music_rms:.0}\n{}", context());
}

/// One RTP packet of G.711 at 20 ms.
const FRAME_SAMPLES: usize = 160;
/// Time from the on-demand recording's first `*1` to its second.
const ON_DEMAND_SECONDS: u64 = 4;
/// The on-demand caller's life: call set-up, 1 s of talk, the recorded stretch, 2 s more.
const ON_DEMAND_CALLER_SECONDS: u32 = 12;
/// Time for the call to be established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(8);
/// The recording of an on-demand stretch may start/stop a little after the key presses
/// (RFC 4733 end packets, the feature-code match).
const ON_DEMAND_SLACK_MS: u64 = 1_000;

#[test]
fn star_one_starts_and_stops_an_on_demand_recording() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB], &[(ALICE.0, "record = \"on_demand\"")], "");
    let media = tb.scratch("media");
    let (caller_wav, callee_wav) = (media.join("caller.wav"), media.join("callee.wav"));
    write_wav(&caller_wav, &tone(CALLER_HZ, SOURCE_SECONDS, TONE_AMPLITUDE));
    write_wav(&callee_wav, &tone(CALLEE_HZ, SOURCE_SECONDS, TONE_AMPLITUDE));
    let mut bob = Phone::start(&tb, BOB, &callee_wav, &[], CALLEE_SECONDS);
    assert!(
        bob.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
        "callee did not register\n{}",
        bob.report()
    );
    let ctrl = tb.port();
    let mut alice = Phone::builder(&tb, ALICE, &caller_wav, ON_DEMAND_CALLER_SECONDS)
        .commands(&[&format!("/dial {}", BOB.0)])
        .ctrl_tcp(ctrl)
        .start();
    let context =
        |a: &Phone, b: &Phone| format!("{}\n{}\n--- box ---\n{}", a.report(), b.report(), tb.stderr_tail(80));
    assert!(alice.wait_for("established", None, ESTABLISH_TIMEOUT), "no call\n{}", context(&alice, &bob));
    std::thread::sleep(Duration::from_secs(1));
    alice.command("sndcode", "*1");
    std::thread::sleep(Duration::from_secs(ON_DEMAND_SECONDS));
    alice.command("sndcode", "*1");
    alice.wait_exit(Duration::from_secs(u64::from(ON_DEMAND_CALLER_SECONDS) + 5));
    bob.wait_for("terminated", None, HANGUP_TIMEOUT);
    bob.kill();

    assert!(wait_recording_closed(&tb), "the box did not close a recording\n{}", context(&alice, &bob));
    let files = box_recordings(&tb);
    assert_eq!(files.len(), 1, "want one recording: {files:?}\n{}", context(&alice, &bob));
    let (format, recorded) = read_audio(&files[0]).expect("a WAV");
    assert_eq!((format.encoding, format.sample_rate_hz), (Encoding::MuLaw, SAMPLE_RATE));
    let recorded_ms = recorded.len() as u64 * 1000 / u64::from(SAMPLE_RATE);
    let heard = bob.heard_samples(&|| context(&alice, &bob));
    let prompt = prompts::pcm("rec.announce", Lang::Ja).expect("rec.announce (ja) is embedded");
    // Mid-call, baresip loses the prompt's first 20 ms frame. The player continues the
    // forwarded stream's SSRC and numbering, but baresip 1.0 still drops it. The prompt is
    // compared from its second frame on; the first is measured and reported.
    let tail = prompt.get(FRAME_SAMPLES..).expect("the prompt is longer than a frame");
    let found = find_prompt(&heard, tail).expect("the callee heard less than the prompt's length");
    let head_at = found.start.saturating_sub(FRAME_SAMPLES);
    let head_ncc = heard.get(head_at..found.start).map(|h| ncc(&prompt[..FRAME_SAMPLES], h)).unwrap_or(0.0);
    eprintln!(
        "on demand: recorded {recorded_ms} ms between two *1 {ON_DEMAND_SECONDS} s apart; callee heard \
         rec.announce at {} ms (worst piece {:.4}; first 20 ms frame correlation {head_ncc:.3})",
        head_at / 8,
        found.worst(),
    );
    assert!(
        recorded_ms.abs_diff(ON_DEMAND_SECONDS * 1000) <= ON_DEMAND_SLACK_MS,
        "recorded {recorded_ms} ms, the *1 presses were {ON_DEMAND_SECONDS} s apart\n{}",
        context(&alice, &bob)
    );
    assert!(found.complete_and_in_order(), "the callee's announcement: {found:?}\n{}", context(&alice, &bob));
    assert!(
        tone_blocks(&recorded, CALLER_HZ).len() >= MIN_TONE_BLOCKS,
        "the caller's tone is not in the recording\n{}",
        context(&alice, &bob)
    );
}
