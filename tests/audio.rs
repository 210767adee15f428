//! Terminated-audio building blocks end to end: mixer matrices heard through G.711, a tone
//! through the recorder and back through the WAV reader, admin import conversion and refusals.

use std::f64::consts::PI;
use std::io::Cursor;

use hakoden::media::audio::g711::{self, Law};
use hakoden::media::audio::mixer::{Mixer, MonitorMode, ParticipantId};
use hakoden::media::audio::player::{Clip, Player};
use hakoden::media::audio::recorder::Recorder;
use hakoden::media::audio::wav::{self, import_admin_audio, ImportError, WavError};
use hakoden::media::audio::{Frame20, FRAME_SAMPLES, SILENT_FRAME};

const RATE: f64 = 8_000.0;

/// Amplitude of the `hz` component of `x` (Goertzel), in sample units.
fn goertzel(x: &[i16], rate: f64, hz: f64) -> f64 {
    let w = 2.0 * PI * hz / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len() as f64
}

fn tone(rate: f64, hz: f64, n: usize, amp: f64) -> Vec<f64> {
    (0..n).map(|i| amp * (2.0 * PI * hz * i as f64 / rate).sin()).collect()
}

fn frames_of(signal: &[f64]) -> Vec<Frame20> {
    signal.chunks_exact(FRAME_SAMPLES).map(|c| std::array::from_fn(|i| c[i] as i16)).collect()
}

/// Runs `frames` ticks: each speaker's tone goes through G.711 µ-law to the mixer, each output
/// through G.711 back; returns what each listener heard.
fn run(
    m: &mut Mixer,
    speakers: &[(ParticipantId, f64)],
    listeners: &[ParticipantId],
    frames: usize,
) -> Vec<Vec<i16>> {
    let tones: Vec<Vec<Frame20>> =
        speakers.iter().map(|&(_, hz)| frames_of(&tone(RATE, hz, frames * FRAME_SAMPLES, 6_000.0))).collect();
    let mut heard = vec![Vec::new(); listeners.len()];
    let mut wire = Vec::new();
    let mut pcm = Vec::new();
    for f in 0..frames {
        for ((id, _), t) in speakers.iter().zip(&tones) {
            wire.clear();
            pcm.clear();
            g711::encode(Law::Mu, &t[f], &mut wire);
            g711::decode(Law::Mu, &wire, &mut pcm);
            m.set_input(*id, &pcm.as_slice().try_into().unwrap()).unwrap();
        }
        m.mix();
        for (l, out) in listeners.iter().zip(&mut heard) {
            wire.clear();
            g711::encode(Law::Mu, m.output(*l).unwrap(), &mut wire);
            g711::decode(Law::Mu, &wire, out);
        }
    }
    heard
}

/// Whether a 6000-amplitude tone at `hz` is in `x` (≥ 90 % of its level), or absent (≤ 10 %:
/// G.711 companding of a mix leaves intermodulation products some 35 dB down).
fn has(x: &[i16], hz: f64) -> bool {
    let a = goertzel(x, RATE, hz);
    assert!(!(600.0..5_400.0).contains(&a), "{hz} Hz at ambiguous level {a:.0}");
    a >= 5_400.0
}

const AGENT: ParticipantId = ParticipantId(1);
const CUSTOMER: ParticipantId = ParticipantId(2);
const SUPERVISOR: ParticipantId = ParticipantId(3);
// Chosen so that no second- or third-order intermodulation product of G.711 companding the mix
// of two of them lands on the third.
const AGENT_HZ: f64 = 400.0;
const CUSTOMER_HZ: f64 = 1_000.0;
const SUPERVISOR_HZ: f64 = 1_700.0;

fn call_with_supervisor(mode: Option<MonitorMode>) -> Vec<[bool; 3]> {
    let mut m = Mixer::new();
    for id in [AGENT, CUSTOMER, SUPERVISOR] {
        m.add_participant(id).unwrap();
    }
    if let Some(mode) = mode {
        m.monitor(SUPERVISOR, AGENT, mode).unwrap();
    }
    let speakers = [(AGENT, AGENT_HZ), (CUSTOMER, CUSTOMER_HZ), (SUPERVISOR, SUPERVISOR_HZ)];
    let heard = run(&mut m, &speakers, &[AGENT, CUSTOMER, SUPERVISOR], 50);
    heard.iter().map(|x| [has(x, AGENT_HZ), has(x, CUSTOMER_HZ), has(x, SUPERVISOR_HZ)]).collect()
}

#[test]
fn a_tone_in_a_three_party_conference_is_heard_by_the_others_and_not_by_the_speaker() {
    let (a, b, c) = (ParticipantId(10), ParticipantId(11), ParticipantId(12));
    let mut m = Mixer::new();
    for id in [a, b, c] {
        m.add_participant(id).unwrap();
    }
    let heard = run(&mut m, &[(a, 1_000.0)], &[a, b, c], 50);
    assert!(!has(&heard[0], 1_000.0), "the speaker hears itself");
    assert!(has(&heard[1], 1_000.0) && has(&heard[2], 1_000.0));
    assert!(heard[0].iter().all(|&s| s.abs() <= 8), "speaker's own mix is not silent");
}

#[test]
fn conference_matrix_everyone_hears_the_other_two() {
    // Rows: who listens (agent, customer, supervisor); columns: whom they hear.
    assert_eq!(call_with_supervisor(None), [[false, true, true], [true, false, true], [true, true, false]]);
}

#[test]
fn listen_matrix_supervisor_hears_both_and_is_heard_by_none() {
    assert_eq!(
        call_with_supervisor(Some(MonitorMode::Listen)),
        [[false, true, false], [true, false, false], [true, true, false]]
    );
}

#[test]
fn whisper_matrix_supervisor_is_heard_only_by_the_agent() {
    assert_eq!(
        call_with_supervisor(Some(MonitorMode::Whisper)),
        [[false, true, true], [true, false, false], [true, true, false]]
    );
}

#[test]
fn barge_matrix_supervisor_is_heard_by_both() {
    assert_eq!(
        call_with_supervisor(Some(MonitorMode::Barge)),
        [[false, true, true], [true, false, true], [true, true, false]]
    );
}

#[test]
fn a_recorded_tone_reads_back_at_1_khz_with_the_right_duration() {
    for law in [Law::Mu, Law::A] {
        // A two-party call: the recorder gets the mix of both legs (here the caller's tone).
        let (caller, callee, rec) = (ParticipantId(1), ParticipantId(2), ParticipantId(3));
        let mut m = Mixer::new();
        for id in [caller, callee, rec] {
            m.add_participant(id).unwrap();
        }
        m.set_heard_by_all(rec, false).unwrap();
        let mut r = Recorder::new(Cursor::new(Vec::new()), law).unwrap();
        for frame in frames_of(&tone(RATE, 1_000.0, 2 * 8_000, 8_000.0)) {
            m.set_input(caller, &frame).unwrap();
            m.mix();
            r.write(m.output(rec).unwrap()).unwrap();
        }
        assert_eq!(r.bytes_written(), 58 + 16_000);
        let (cursor, total) = r.finish().unwrap();
        let file = cursor.into_inner();
        assert_eq!(total as usize, file.len());
        let wav = wav::parse(&file).unwrap();
        assert_eq!(wav.duration_ms(), 2_000);
        assert_eq!(wav.format().sample_rate_hz, 8_000);
        let pcm = wav.mono_pcm16();
        let at_1k = goertzel(&pcm, RATE, 1_000.0);
        assert!((at_1k - 8_000.0).abs() < 160.0, "{law:?}: {at_1k}");
        for other in [500.0, 900.0, 1_100.0, 2_000.0, 3_000.0] {
            assert!(goertzel(&pcm, RATE, other) < 80.0, "{law:?}: energy at {other} Hz");
        }
    }
}

/// A 44.1 kHz stereo 24-bit PCM WAV of `left` on the left and `right` on the right.
fn wav_44k1_stereo_24(left: &[f64], right: &[f64]) -> Vec<u8> {
    let mut data = Vec::with_capacity(left.len() * 6);
    for (l, r) in left.iter().zip(right) {
        for v in [l, r] {
            let s = (v * 8_388_607.0) as i32;
            data.extend_from_slice(&s.to_le_bytes()[..3]);
        }
    }
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(4 + 8 + 16 + 12 + 8 + data.len() as u32).to_le_bytes());
    f.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x02\0");
    f.extend_from_slice(&44_100u32.to_le_bytes());
    f.extend_from_slice(&(44_100u32 * 6).to_le_bytes());
    f.extend_from_slice(b"\x06\0\x18\0LIST\x04\0\0\0INFOdata");
    f.extend_from_slice(&(data.len() as u32).to_le_bytes());
    f.extend_from_slice(&data);
    f
}

#[test]
fn import_of_44k1_stereo_24_bit_keeps_1_khz_and_removes_6_khz() {
    let n = 44_100;
    let low = tone(44_100.0, 1_000.0, n, 0.25);
    let high = tone(44_100.0, 6_000.0, n, 0.25);
    // 1 kHz on both channels, 6 kHz on both too (mono mixdown keeps both at 0.25).
    let left: Vec<f64> = low.iter().zip(&high).map(|(a, b)| a + b).collect();
    let file = wav_44k1_stereo_24(&left, &left);
    let out = import_admin_audio(&file, wav::DEFAULT_IMPORT_LIMIT_BYTES).unwrap();
    assert_eq!(out.len(), 8_000);
    let core = &out[800..7_200];
    let at_1k = goertzel(core, RATE, 1_000.0);
    assert!((at_1k / (0.25 * 32_768.0) - 1.0).abs() < 0.01, "1 kHz level {at_1k}");
    // 6 kHz folds to 2 kHz without the low-pass; it must be at least 60 dB down.
    let alias = goertzel(core, RATE, 2_000.0);
    assert!(alias < at_1k / 1_000.0, "alias at 2 kHz: {alias}");
    // And the 1 kHz tone is still a 1 kHz tone: nothing significant elsewhere.
    for other in [500.0, 1_500.0, 3_000.0] {
        assert!(goertzel(core, RATE, other) < at_1k / 1_000.0, "{other} Hz");
    }
}

#[test]
fn import_accepts_8_khz_16_bit_mono_unchanged() {
    let samples: Vec<i16> = (0..4_000).map(|i| (i * 13 % 20_000) as i16).collect();
    let file = wav::encode_pcm16_mono_8k(&samples);
    assert_eq!(import_admin_audio(&file, 100_000).unwrap(), samples);
}

#[test]
fn import_refusals_say_what_was_wrong() {
    let mp3 = b"ID3\x03\x00\x00\x00\x00\x0f\x76TIT2\0\0\0\x05\0\0\0Song";
    assert_eq!(
        import_admin_audio(mp3, 1_000).unwrap_err().to_string(),
        "MP3 files are not accepted: upload a WAV file (PCM)."
    );

    let good = wav::encode_pcm16_mono_8k(&[100; 8_000]);
    let truncated = &good[..good.len() / 2];
    let err = import_admin_audio(truncated, 1_000_000).unwrap_err();
    assert!(matches!(err, ImportError::Wav(WavError::Truncated { .. })), "{err:?}");
    assert_eq!(
        err.to_string(),
        "The WAV file is incomplete: its header says the file is 16044 bytes, but it is only 8022 bytes. \
         The upload or the file may be cut off. Upload the file again."
    );

    let mut twelve = good.clone();
    twelve[34] = 12; // wBitsPerSample
    let err = import_admin_audio(&twelve, 1_000_000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "12-bit PCM samples are not supported. Save the file again as WAV (PCM, 16-bit) and upload it."
    );

    let err = import_admin_audio(&vec![0u8; 120_000_000], 100_000_000).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The file is too big: it is 120 MB; the limit is 100 MB. Upload a shorter or smaller file \
         (8000 Hz, 16-bit, mono WAV is smallest)."
    );
}

#[test]
fn a_prompt_played_into_a_conference_is_heard_by_every_member() {
    let (a, b, prompt) = (ParticipantId(1), ParticipantId(2), ParticipantId(100));
    let mut m = Mixer::new();
    m.add_participant(a).unwrap();
    m.add_participant(b).unwrap();
    m.add_source(prompt, true).unwrap();
    let clip: Clip = tone(RATE, 1_000.0, 4_000, 6_000.0).iter().map(|&x| x as i16).collect::<Vec<_>>().into();
    let mut player = Player::new(vec![clip.clone(), clip]);
    let mut heard = [Vec::new(), Vec::new()];
    while let Some(frame) = player.next_frame() {
        m.set_input(prompt, &frame).unwrap();
        m.mix();
        heard[0].extend_from_slice(m.output(a).unwrap());
        heard[1].extend_from_slice(m.output(b).unwrap());
    }
    assert!(player.is_done());
    assert_eq!(heard[0].len(), 8_000);
    assert!(has(&heard[0], 1_000.0) && has(&heard[1], 1_000.0));
    m.mix();
    assert_eq!(m.output(a), Some(&SILENT_FRAME));
}
