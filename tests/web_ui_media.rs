//! The voicemail & recordings page and the dashboard's alarms in a real browser: headless
//! Chromium (`tests/web_ui/media.js`) against a box seeded with one G.711 recording and a trunk
//! at a dead port. The dashboard lists the trunk alarm; the media page lists the recording and
//! its `<audio>` reaches `canplay` over the authenticated, ranged GET. Screenshots go to
//! `target/web-artifacts/media/`. Skips (locally) or fails (CI) like `tests/web_ui.rs`.
mod common;

use common::web::{admin, browser_flow, GOOD};
use common::{free_udp_port, TestBox};
use std::time::Duration;

/// Chromium's start plus four page loads on a loaded CI machine.
const FLOW_TIMEOUT: Duration = Duration::from_secs(180);
/// The seeded recording's day folder and name (the day need not be today).
const DAY: &str = "20261122";
const FILE: &str = "call-1.wav";

/// One second of a 500 Hz tone as 8 kHz µ-law WAV (format tag 7), as the box records.
fn ulaw_wav() -> Vec<u8> {
    let samples: Vec<u8> = (0..8000)
        .map(|i| {
            let x = (f64::from(i) * 2.0 * std::f64::consts::PI * 500.0 / 8000.0).sin() * 8000.0;
            audio_codec_algorithms::encode_ulaw(x as i16)
        })
        .collect();
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(4 + 8 + 18 + 8 + 4 + 8 + samples.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&18u32.to_le_bytes());
    for v in [7u16, 1] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&8000u32.to_le_bytes());
    for v in [1u16, 8, 0] {
        w.extend_from_slice(&v.to_le_bytes());
    }
    w.extend_from_slice(b"fact");
    w.extend_from_slice(&4u32.to_le_bytes());
    w.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    w.extend_from_slice(&samples);
    w
}

#[test]
fn the_dashboard_shows_the_trunk_alarm_and_a_recording_plays_in_the_page() {
    let toml = format!(
        "[[trunk]]\nname = \"provider\"\nmode = \"ip\"\nregistrar = \"127.0.0.1:{}\"\nkeepalive = 5\n",
        free_udp_port()
    );
    let tb = TestBox::start_seeded(&[("201", "secret201")], &[], &toml, &|data| {
        let day = data.join("recordings").join(DAY);
        std::fs::create_dir_all(&day).expect("mkdir");
        std::fs::write(day.join(FILE), ulaw_wav()).expect("seed recording");
    });
    // The forced first change is the first-login flow's business; here the admin has GOOD.
    let _ = admin(&tb);
    let id = format!("{DAY}/{FILE}");
    let env = [("PASSWORD", GOOD), ("RECORDING", id.as_str())];
    let Some(out_dir) = browser_flow(&tb, "media.js", "media", &env, FLOW_TIMEOUT) else {
        return;
    };
    for shot in ["01-dashboard-alarm", "02-recordings", "03-playing", "04-field-error"] {
        assert!(out_dir.join(format!("{shot}.png")).is_file(), "{shot}.png missing");
    }
}
