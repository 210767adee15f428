//! CPU per call of the media processing on top of the plain relay: recording (decode both
//! directions, jitter buffers, mix, G.711 encode, buffered file writes) and DTMF taps (RFC 4733
//! receiver, or in-band detection). Socket I/O is measured by `relay_bench`; the sum is the cost
//! of a recorded call.
//!
//! `cargo run --release --example media_bench -- [calls] [seconds]`
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use hakoden::media::audio::g711::{self, Law};
use hakoden::media::process::{Outgoing, Processing};
use hakoden::media::{RelayId, Side};
use std::time::{Duration, Instant};

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 Hz on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn run(calls: usize, seconds: u32, record: bool, inband: bool) -> (f64, u64) {
    let dir = std::env::temp_dir().join(format!("hakoden-media-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut procs: Vec<Processing> = (0..calls)
        .map(|i| {
            let mut p = Processing::new(RelayId(i as u64));
            let te = if inband { None } else { Some(101) };
            p.set_codec(Side::A, 0, te, inband);
            p.set_codec(Side::B, 0, te, inband);
            if record {
                p.record(&dir, &format!("bench/call-{i}.wav")).expect("record");
            }
            p
        })
        .collect();
    let mut payload = Vec::new();
    let tone: Vec<i16> = (0..160).map(|i| ((i as f32 * 0.785).sin() * 8000.0) as i16).collect();
    g711::encode(Law::Mu, &tone, &mut payload);
    let t0 = Instant::now();
    let cpu0 = cpu_seconds();
    let mut out: Vec<Outgoing> = Vec::new();
    let frames = seconds as usize * 50;
    for f in 0..frames {
        let now = t0 + Duration::from_millis(20 * f as u64);
        for p in procs.iter_mut() {
            for side in [Side::A, Side::B] {
                let mut pkt = vec![0x80, 0];
                pkt.extend_from_slice(&(f as u16).to_be_bytes());
                pkt.extend_from_slice(&((f * 160) as u32).to_be_bytes());
                pkt.extend_from_slice(&7u32.to_be_bytes());
                pkt.extend_from_slice(&payload);
                p.on_rtp(side, &pkt, now);
            }
            p.on_tick(now, &mut out);
            out.clear();
            let _ = p.drain_events().count();
        }
    }
    let mut bytes = 0;
    for p in procs.iter_mut() {
        p.stop_record();
        for e in p.drain_events() {
            if let hakoden::media::MediaEvent::Recorded { bytes: b, .. } = e {
                bytes += b;
            }
        }
    }
    let cpu = cpu_seconds() - cpu0;
    let _ = std::fs::remove_dir_all(&dir);
    (cpu, bytes)
}

fn main() {
    let calls: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let seconds: u32 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(30);
    let call_seconds = (calls as u32 * seconds) as f64;
    for (label, record, inband) in [
        ("RFC 4733 DTMF taps only", false, false),
        ("in-band DTMF detection on both legs", false, true),
        ("recording + RFC 4733 taps", true, false),
    ] {
        let (cpu, bytes) = run(calls, seconds, record, inband);
        println!(
            "{label:<40} {calls} calls x {seconds} s: {:.2} s CPU = {:.1} µs CPU per call-second ({:.3} % of a core per call){}",
            cpu,
            cpu / call_seconds * 1e6,
            cpu / call_seconds * 100.0,
            if record {
                format!(", {:.0} bytes written per recorded minute", bytes as f64 / call_seconds * 60.0)
            } else {
                String::new()
            }
        );
    }
}
