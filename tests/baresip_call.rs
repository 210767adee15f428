//! Two real softphones (baresip) call each other through the box: 201 plays a 1 kHz tone
//! from a WAV file, 202 auto-answers and records what it hears; the recording must hold
//! the tone. Audio goes through baresip's `aufile` source and its `sndfile` filter, which
//! dumps the decoded (received) audio to a WAV; no sound card is involved.
mod common;

use common::{require_tool, wait_bounded, TestBox};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");

/// G.711's rate: the codec both phones offer.
const SAMPLE_RATE: u32 = 8_000;
const TONE_HZ: f64 = 1_000.0;
/// Neighbours whose energy must stay far below the tone's.
const NEIGHBOUR_HZ: [f64; 2] = [700.0, 1_300.0];
/// How much the tone must dominate its neighbours (energy ratio).
const DOMINANCE: f64 = 10.0;
/// Half of full scale: loud, with headroom for G.711's companding.
const TONE_AMPLITUDE: f64 = 16_000.0;
/// The caller's file; the call ends when baresip's `aufile` reaches its end.
const TONE_SECONDS: u32 = 4;
/// RMS floor per block: well above G.711 idle noise, well below the tone's ~11 300.
const MIN_RMS: f64 = 2_000.0;
/// Analysis block: 100 ms gives 10 Hz bins, plenty to tell 1000 from 700/1300 Hz.
const BLOCK_SAMPLES: usize = (SAMPLE_RATE / 10) as usize;
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

/// Where distributions install baresip's modules.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/baresip/modules",
    "/usr/lib/x86_64-linux-gnu/baresip/modules",
    "/usr/lib/aarch64-linux-gnu/baresip/modules",
    "/usr/local/lib/baresip/modules",
];

fn module_dir() -> PathBuf {
    MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("g711.so").is_file())
        .unwrap_or_else(|| panic!("baresip modules (g711.so) not found in {MODULE_DIRS:?}"))
}

/// 16-bit mono PCM WAV of `samples`.
fn write_wav(path: &Path, samples: &[i16]) {
    let data_len = u32::try_from(samples.len() * 2).expect("test WAV fits in 4 GiB");
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, out).expect("write WAV");
}

fn tone(hz: f64, seconds: u32, amplitude: f64) -> Vec<i16> {
    let n = (SAMPLE_RATE * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

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

/// Energy of `block` at `hz` (Goertzel).
fn goertzel(block: &[f64], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in block {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// Number of 100 ms blocks where the tone is loud and dominates its neighbours.
fn tone_blocks(rate: u32, samples: &[i16], hz: f64) -> usize {
    let block_len = (rate / 10).max(1) as usize;
    samples
        .chunks_exact(block_len)
        .filter(|chunk| {
            let x: Vec<f64> = chunk.iter().map(|&s| f64::from(s)).collect();
            let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
            let on = goertzel(&x, rate, hz);
            let off =
                NEIGHBOUR_HZ.iter().map(|&n| goertzel(&x, rate, n + (hz - TONE_HZ))).fold(0.0, f64::max);
            rms >= MIN_RMS && on > DOMINANCE * off
        })
        .count()
}

#[test]
fn tone_detector_accepts_the_tone_and_refuses_others() {
    let t = tone(TONE_HZ, 2, TONE_AMPLITUDE);
    assert_eq!(tone_blocks(SAMPLE_RATE, &t, TONE_HZ), 20);
    let wrong = tone(700.0, 2, TONE_AMPLITUDE);
    assert_eq!(tone_blocks(SAMPLE_RATE, &wrong, TONE_HZ), 0);
    let quiet = tone(TONE_HZ, 2, 200.0);
    assert_eq!(tone_blocks(SAMPLE_RATE, &quiet, TONE_HZ), 0);
    assert_eq!(BLOCK_SAMPLES, 800);
}

#[test]
fn wav_round_trips_and_truncated_headers_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.wav");
    let t = tone(TONE_HZ, 1, TONE_AMPLITUDE);
    write_wav(&path, &t);
    let mut bytes = std::fs::read(&path).expect("read");
    assert_eq!(read_wav(&bytes), Some((SAMPLE_RATE, t.clone())));
    // A writer killed before finalising leaves the data length at 0.
    bytes.splice(40..44, 0u32.to_le_bytes());
    assert_eq!(read_wav(&bytes).map(|(_, s)| s.len()), Some(t.len()));
    assert_eq!(read_wav(b"RIFF"), None);
    assert_eq!(read_wav(&bytes[..30]), None);
}

/// One baresip instance with its own config directory, killed on drop.
struct Phone {
    name: &'static str,
    child: Option<Child>,
    dir: PathBuf,
}

impl Phone {
    fn start(
        tb: &TestBox,
        ext: (&str, &str),
        name: &'static str,
        source: &Path,
        cmds: &[&str],
        seconds: u32,
    ) -> Phone {
        let dir = tb.scratch(&format!("baresip-{name}"));
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).expect("mkdir rec");
        let (rtp_lo, rtp_hi) = (tb.port(), tb.port() + 3);
        let config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip}\n\
             net_interface 127.0.0.1\n\
             call_local_timeout 20\n\
             call_max_calls 2\n\
             audio_player aubridge,{name}-player\n\
             audio_alert aubridge,{name}-alert\n\
             audio_source aufile,{source}\n\
             audio_level no\n\
             rtp_ports {rtp_lo}-{rtp_hi}\n\
             rtcp_mux no\n\
             jitter_buffer_delay 1-10\n\
             module_path {modules}\n\
             module g711.so\n\
             module aufile.so\n\
             module aubridge.so\n\
             module sndfile.so\n\
             snd_path {rec}\n\
             module_app account.so\n\
             module_app menu.so\n",
            sip = tb.port(),
            source = source.display(),
            modules = module_dir().display(),
            rec = rec.display(),
        );
        std::fs::write(dir.join("config"), config).expect("write config");
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1:{box_port}>;auth_pass={pass};answermode=auto\n",
                user = ext.0,
                pass = ext.1,
                box_port = tb.sip_port()
            ),
        )
        .expect("write accounts");
        let out = File::create(dir.join("stdout.log")).expect("stdout file");
        let err = File::create(dir.join("stderr.log")).expect("stderr file");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir).arg("-t").arg(seconds.to_string());
        for c in cmds {
            cmd.arg("-e").arg(c);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start baresip: {e}"));
        Phone { name, child: Some(child), dir }
    }

    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    /// Polls the phone's output for `needle` for at most `timeout`; gives up early when
    /// the output shows `failure` (baresip prints `Register: <error>` when it gives up).
    fn wait_for(&self, needle: &str, failure: Option<&str>, timeout: Duration) -> bool {
        let step = Duration::from_millis(50);
        for _ in 0..(timeout.as_millis() / step.as_millis()) {
            let log = self.log();
            if log.contains(needle) {
                return true;
            }
            if failure.is_some_and(|f| log.contains(f)) {
                return false;
            }
            std::thread::sleep(step);
        }
        false
    }

    fn wait_exit(&mut self, timeout: Duration) {
        if let Some(child) = self.child.as_mut() {
            if wait_bounded(child, timeout).is_some() {
                self.child = None;
            }
        }
    }

    /// The decoded (received) audio the `sndfile` filter dumped.
    fn recording(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.join("rec"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }

    fn report(&self) -> String {
        format!("--- baresip {} ---\n{}", self.name, self.log())
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn baresip_call_carries_a_tone_from_caller_to_callee() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let media = tb.scratch("media");
    let tone_wav = media.join("tone-1khz.wav");
    write_wav(&tone_wav, &tone(TONE_HZ, TONE_SECONDS, TONE_AMPLITUDE));
    let silence_wav = media.join("silence.wav");
    write_wav(&silence_wav, &vec![0; (SAMPLE_RATE * SILENCE_SECONDS) as usize]);

    let mut bob = Phone::start(&tb, BOB, "202", &silence_wav, &[], CALLEE_SECONDS);
    assert!(
        bob.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
        "callee did not register\n{}\n--- box ---\n{}",
        bob.report(),
        tb.stderr_tail(60)
    );
    let mut alice =
        Phone::start(&tb, ALICE, "201", &tone_wav, &[&format!("/dial {}", BOB.0)], CALLER_SECONDS);
    alice.wait_exit(Duration::from_secs(u64::from(CALLER_SECONDS) + 5));
    // The caller's BYE ends the callee's call, which closes its recording.
    bob.wait_for("terminated", None, HANGUP_TIMEOUT);
    bob.wait_exit(Duration::from_millis(100));
    drop(bob.child.take().map(|mut c| {
        let _ = c.kill();
        c.wait()
    }));

    let context = || format!("{}\n{}\n--- box ---\n{}", alice.report(), bob.report(), tb.stderr_tail(80));
    let rec = bob
        .recording()
        .unwrap_or_else(|| panic!("the callee recorded nothing (no call audio?)\n{}", context()));
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
