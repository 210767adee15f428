//! Conference mixer, recorder, jitter buffer and WAV import cost.
//!
//! ```text
//! cargo run --release --example mixer_bench -- [--rooms 10] [--seconds 60]
//! ```
//!
//! Mixer: `rooms` conference rooms of P participants (P = 3..=10) for `seconds` of audio in
//! 20 ms frames, each frame including what the media driver would do per participant: G.711
//! decode of the 160-byte input, the mix, G.711 encode of the 160-byte output. Reported: CPU
//! nanoseconds per participant per second of audio, and the share of one core that 100
//! participants would take.
//!
//! Recorder: 20 ms frames encoded to µ-law and written through `Recorder` into memory and into a
//! file in the temp directory (BufWriter, not fsynced: page cache speed). Jitter buffer: push +
//! pop per 20 ms frame. Import: a 44.1 kHz stereo 24-bit WAV converted to 8 kHz mono.
//!
//! CPU time is this thread's run time from `/proc/thread-self/schedstat` (Linux), so other load on
//! the machine does not inflate it; wall time is shown beside it.

use std::io::{BufWriter, Cursor};
use std::time::{Duration, Instant};

use hakoden::media::audio::g711::{self, Law};
use hakoden::media::audio::jitter::{JitterBuffer, JitterConfig};
use hakoden::media::audio::mixer::{Mixer, ParticipantId};
use hakoden::media::audio::recorder::Recorder;
use hakoden::media::audio::wav::{import_admin_audio, DEFAULT_IMPORT_LIMIT_BYTES};
use hakoden::media::audio::{Frame20, FRAME_SAMPLES};

/// Frames per second of audio at 20 ms.
const FRAMES_PER_SECOND: u64 = 50;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[allow(clippy::disallowed_methods)] // bench driver: reads the clock
fn measure(f: impl FnOnce()) -> (Duration, Duration) {
    let (wall, cpu) = (Instant::now(), thread_cpu_ns());
    f();
    (wall.elapsed(), Duration::from_nanos(thread_cpu_ns().saturating_sub(cpu)))
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A talker: a tone at a per-participant frequency, pre-encoded in µ-law, cycling.
fn talker(k: usize) -> Vec<u8> {
    let hz = 300.0 + 97.0 * k as f64;
    let pcm: Vec<i16> = (0..8_000)
        .map(|i| (8_000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8_000.0).sin()) as i16)
        .collect();
    let mut out = Vec::new();
    g711::encode(Law::Mu, &pcm, &mut out);
    out
}

fn bench_mixer(rooms: usize, seconds: u64) {
    println!("mixer: {rooms} rooms, {seconds} s of audio, G.711 decode + mix + encode per participant");
    println!("  P  participants  cpu ms  wall ms  ns/participant/s  core % per 100 participants");
    for p in 3..=10usize {
        let mut mixers: Vec<Mixer> = (0..rooms)
            .map(|_| {
                let mut m = Mixer::new();
                for k in 0..p {
                    m.add_participant(ParticipantId(k as u64)).ok();
                }
                m
            })
            .collect();
        let talkers: Vec<Vec<u8>> = (0..p).map(talker).collect();
        let mut pcm = Vec::with_capacity(FRAME_SAMPLES);
        let mut wire = Vec::with_capacity(FRAME_SAMPLES);
        let mut sink = 0u64;
        let frames = seconds * FRAMES_PER_SECOND;
        let (wall, cpu) = measure(|| {
            for f in 0..frames as usize {
                for m in &mut mixers {
                    for (k, t) in talkers.iter().enumerate() {
                        let at = (f * FRAME_SAMPLES) % (t.len() - FRAME_SAMPLES);
                        pcm.clear();
                        g711::decode(Law::Mu, &t[at..at + FRAME_SAMPLES], &mut pcm);
                        let frame: &Frame20 = pcm.as_slice().try_into().unwrap_or(&[0; FRAME_SAMPLES]);
                        m.set_input(ParticipantId(k as u64), frame).ok();
                    }
                    m.mix();
                    for k in 0..p {
                        if let Some(out) = m.output(ParticipantId(k as u64)) {
                            wire.clear();
                            g711::encode(Law::Mu, out, &mut wire);
                            sink = sink.wrapping_add(u64::from(wire[0]));
                        }
                    }
                }
            }
        });
        let parts = (rooms * p) as u64;
        let per = cpu.as_nanos() as u64 / (parts * seconds);
        println!(
            "  {p:>2} {parts:>12} {:>7} {:>8} {per:>17} {:>28.3}",
            cpu.as_millis(),
            wall.as_millis(),
            per as f64 * 100.0 / 1e9 * 100.0
        );
        std::hint::black_box(sink);
    }
}

fn bench_recorder(seconds: u64) {
    let frames = seconds * FRAMES_PER_SECOND * 10;
    let frame: Frame20 = std::array::from_fn(|i| ((i as i32 * 997) % 20_000 - 10_000) as i16);
    let mut bytes = 0;
    let (wall, cpu) = measure(|| {
        let Ok(mut r) = Recorder::new(Cursor::new(Vec::with_capacity(frames as usize * 160 + 64)), Law::Mu)
        else {
            return;
        };
        for _ in 0..frames {
            r.write(&frame).ok();
        }
        bytes = r.finish().map(|(_, n)| n).unwrap_or(0);
    });
    let audio_s = frames / FRAMES_PER_SECOND;
    println!(
        "recorder (memory): {audio_s} s of audio, {bytes} bytes, cpu {} ms, wall {} ms, {:.0}x real time, {:.0} MB/s",
        cpu.as_millis(),
        wall.as_millis(),
        audio_s as f64 / cpu.as_secs_f64(),
        bytes as f64 / 1e6 / cpu.as_secs_f64()
    );
    let path = std::env::temp_dir().join(format!("mixer_bench_{}.wav", std::process::id()));
    let (wall, cpu) = measure(|| {
        let Ok(file) = std::fs::File::create(&path) else { return };
        let Ok(mut r) = Recorder::new(BufWriter::with_capacity(64 * 1024, file), Law::Mu) else { return };
        for _ in 0..frames {
            r.write(&frame).ok();
        }
        bytes = r.finish().map(|(_, n)| n).unwrap_or(0);
    });
    std::fs::remove_file(&path).ok();
    println!(
        "recorder (file, page cache): {bytes} bytes, cpu {} ms, wall {} ms, {:.0}x real time; \
         {} bytes per recorded minute",
        cpu.as_millis(),
        wall.as_millis(),
        audio_s as f64 / wall.as_secs_f64(),
        58 + 8_000 * 60
    );
}

#[allow(clippy::disallowed_methods)] // bench driver: reads the clock for the jitter buffer
fn bench_jitter(seconds: u64) {
    let streams = 100u64;
    let frames = seconds * FRAMES_PER_SECOND;
    let pcm = [100i16; FRAME_SAMPLES];
    let t0 = Instant::now();
    let mut jbs: Vec<JitterBuffer> =
        (0..streams).map(|_| JitterBuffer::new(JitterConfig::default())).collect();
    let (_, cpu) = measure(|| {
        for f in 0..frames {
            let now = t0 + Duration::from_millis(20 * f);
            for jb in &mut jbs {
                let _ = jb.push(1, f as u16, (f * 160) as u32, &pcm, now);
                std::hint::black_box(jb.pop(now));
            }
        }
    });
    println!(
        "jitter buffer: {streams} streams x {seconds} s, cpu {} ms = {} ns per stream per second",
        cpu.as_millis(),
        cpu.as_nanos() as u64 / (streams * seconds)
    );
}

fn bench_import() {
    let secs = 60u32;
    let rate = 44_100u32;
    let mut data = Vec::with_capacity((rate * secs * 6) as usize);
    for i in 0..rate * secs {
        let s = (0.5
            * (2.0 * std::f64::consts::PI * 1_000.0 * f64::from(i) / f64::from(rate)).sin()
            * 8_388_607.0) as i32;
        for _ in 0..2 {
            data.extend_from_slice(&s.to_le_bytes()[..3]);
        }
    }
    let mut wav = b"RIFF".to_vec();
    wav.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 2] {
        wav.extend_from_slice(&v.to_le_bytes());
    }
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * 6).to_le_bytes());
    for v in [6u16, 24] {
        wav.extend_from_slice(&v.to_le_bytes());
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(data.len() as u32).to_le_bytes());
    wav.extend_from_slice(&data);
    let mut n = 0;
    let (wall, cpu) =
        measure(|| n = import_admin_audio(&wav, DEFAULT_IMPORT_LIMIT_BYTES).map_or(0, |v| v.len()));
    println!(
        "import: {secs} s of 44.1 kHz stereo 24-bit ({} MB) -> {n} samples at 8 kHz, cpu {} ms, wall {} ms",
        wav.len() / 1_000_000,
        cpu.as_millis(),
        wall.as_millis()
    );
}

fn main() {
    let rooms = arg("--rooms", 10) as usize;
    let seconds = arg("--seconds", 60);
    bench_mixer(rooms, seconds);
    bench_recorder(seconds);
    bench_jitter(seconds);
    bench_import();
}
