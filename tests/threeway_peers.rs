//! The ad-hoc three-way call of issue 3 proven with real peers (baresip 1.0 phones): 201 calls
//! 202, then dials `*3 203 #` in the call (RFC 4733 from `ctrl_tcp sndcode`); the box moves both
//! into a private mixed room and calls 203, and once 203 answers each of the three hears the
//! other two and not itself.
//!
//! Each phone plays its own tone through baresip's `aufile` source and dumps what it hears with
//! the `sndfile` filter (`*-dec.wav`); no sound card is involved. The stretches are cut by time:
//! the test notes how many samples each phone had heard when it pressed `*` and when 203
//! answered, so "before" and "during" are not defined by the tones they are meant to check.
mod common;

use common::{require_tool, wait_bounded, TestBox};
use hakoden::media::audio::wav;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");

/// Each phone's tone (201, 202, 203): far apart, none on another's Goertzel neighbours.
const TONES_HZ: [f64; 3] = [500.0, 1_100.0, 1_700.0];

/// G.711's rate: the codec every phone offers.
const SAMPLE_RATE: u32 = 8_000;
/// About -12 dBFS: speech level, and two of them summed by the mixer stay clear of clipping.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Each phone plays its tone for longer than it lives.
const SOURCE_SECONDS: f64 = 40.0;
/// Analysis block: 100 ms gives 10 Hz bins.
const BLOCK_SAMPLES: usize = (SAMPLE_RATE / 10) as usize;
/// A tone's Goertzel neighbours sit this far on either side; their energy must stay far below.
const NEIGHBOUR_OFFSET_HZ: f64 = 300.0;
/// How much a tone must dominate its neighbours (energy ratio) for a block to count.
const DOMINANCE: f64 = 10.0;
/// RMS floor per block: well above G.711 idle noise, below one tone's ~5 700.
const MIN_RMS: f64 = 1_500.0;
/// Least share of a block's energy a tone must have; two mixed tones have 0.5 each.
const MIN_TONE_SHARE: f64 = 0.3;

/// Upper bound on each phone's life (`baresip -t`) in case the test's own hang-up fails.
const PHONE_SECONDS: u32 = 35;
/// Time for a phone to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a call (201 to 202, or the box to 203) to be established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(8);
/// How long 201 and 202 talk before the feature code.
const TWO_PARTY: Duration = Duration::from_secs(2);
/// Gap between two keys; [`Phone::command`] already waits 100 ms of it.
const KEY_GAP: Duration = Duration::from_millis(100);
/// How long the three talk before 201 hangs up.
const THREE_WAY: Duration = Duration::from_secs(6);
/// Time the others get to see the BYE after 201 hangs up.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Trimmed from each end of a stretch: the jitter buffers (up to 10 ms here) and the box's
/// switch from relay to room may smear a cut point by a few packets; 300 ms is ample.
const EDGE_BLOCKS: usize = 3;
/// Share of a stretch's blocks in which each expected tone must be found: a concealed packet or
/// a late burst may spoil a block or two, not more.
const MIN_HEARD_SHARE: f64 = 0.9;
/// Own voice at least this far (energy ratio, 15 dB) below the weaker of the other two.
const OWN_VOICE_RATIO: f64 = 31.6;
/// Lines of the box's log searched for the three-way lines.
const LOG_TAIL_LINES: usize = 200;

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

// ---------------------------------------------------------------------------------------------
// Signals.

fn tone(hz: f64, seconds: f64, amplitude: f64) -> Vec<i16> {
    let n = (f64::from(SAMPLE_RATE) * seconds) as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            (amplitude * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// What a phone wrote, at 8 kHz. A file still being written, or whose writer was killed, may
/// carry a wrong data length; the recovering parser reads to the end of the file.
fn read_audio(path: &Path) -> Option<(wav::Format, Vec<i16>)> {
    let bytes = std::fs::read(path).ok()?;
    let parsed = wav::parse_recovering(&bytes).ok()?;
    Some((parsed.format(), parsed.mono_pcm16()))
}

/// Energy of `block` at `hz` (Goertzel).
fn goertzel(block: &[f64], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in block {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coeff * s1 * s2
}

/// The 100 ms blocks of `samples` with indices in `range` (clipped to what exists).
fn blocks(samples: &[i16], range: std::ops::Range<usize>) -> Vec<Vec<f64>> {
    samples
        .chunks_exact(BLOCK_SAMPLES)
        .skip(range.start)
        .take(range.len())
        .map(|c| c.iter().map(|&s| f64::from(s)).collect())
        .collect()
}

fn rms(x: &[f64]) -> f64 {
    (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// The share of a block's energy at `hz`: 1 for a pure tone on a bin, 0.5 each for two equal
/// tones.
fn tone_share(x: &[f64], hz: f64) -> f64 {
    let energy = x.iter().map(|v| v * v).sum::<f64>();
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * goertzel(x, hz) / (x.len() as f64 * energy)
}

/// Whether a 100 ms block is loud, carries `hz` well above its neighbours, and the tone is a
/// good part of the block.
fn block_has_tone(x: &[f64], hz: f64) -> bool {
    let on = goertzel(x, hz);
    let off = [hz - NEIGHBOUR_OFFSET_HZ, hz + NEIGHBOUR_OFFSET_HZ]
        .iter()
        .map(|&n| goertzel(x, n))
        .fold(0.0, f64::max);
    rms(x) >= MIN_RMS && on > DOMINANCE * off && tone_share(x, hz) >= MIN_TONE_SHARE
}

/// One stretch of what a phone heard, measured per tone.
struct Stretch {
    blocks: usize,
    /// Per tone of [`TONES_HZ`]: in how many blocks it was found.
    found: [usize; 3],
    /// Per tone: mean Goertzel energy over the stretch.
    energy: [f64; 3],
}

impl Stretch {
    fn measure(samples: &[i16], range: std::ops::Range<usize>) -> Stretch {
        let bs = blocks(samples, range);
        let mut found = [0; 3];
        let mut energy = [0.0; 3];
        for (i, hz) in TONES_HZ.iter().enumerate() {
            found[i] = bs.iter().filter(|x| block_has_tone(x, *hz)).count();
            energy[i] = bs.iter().map(|x| goertzel(x, *hz)).sum::<f64>() / bs.len().max(1) as f64;
        }
        Stretch { blocks: bs.len(), found, energy }
    }

    fn heard_share(&self, tone: usize) -> f64 {
        self.found[tone] as f64 / self.blocks.max(1) as f64
    }

    /// How far (dB) tone `own` sits below the weaker of `others`.
    fn own_below_db(&self, own: usize, others: &[usize]) -> f64 {
        let weaker = others.iter().map(|&o| self.energy[o]).fold(f64::MAX, f64::min);
        10.0 * (weaker / self.energy[own].max(1.0)).log10()
    }
}

// ---------------------------------------------------------------------------------------------
// Phones.

/// One baresip instance with its own config directory, killed on drop.
struct Phone {
    name: String,
    child: Option<Child>,
    dir: PathBuf,
    /// The `ctrl_tcp` port the phone listens on.
    ctrl: u16,
}

impl Phone {
    /// Starts baresip for `ext`, playing `source`, running `cmds` at start. It auto-answers
    /// calls and takes commands on its `ctrl_tcp` port.
    fn start(tb: &TestBox, ext: (&str, &str), source: &Path, cmds: &[&str]) -> Phone {
        let name = ext.0.to_string();
        let dir = tb.scratch(&format!("baresip-{name}"));
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).expect("mkdir rec");
        let (rtp_lo, rtp_hi) = (tb.port(), tb.port() + 3);
        let ctrl = tb.port();
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
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl}\n",
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
        cmd.arg("-f").arg(&dir).arg("-t").arg(PHONE_SECONDS.to_string());
        for c in cmds {
            cmd.arg("-e").arg(c);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start baresip: {e}"));
        Phone { name, child: Some(child), dir, ctrl }
    }

    /// Sends a command to the phone's `ctrl_tcp` (a netstring holding JSON).
    fn command(&self, command: &str, params: &str) {
        if let Err(e) = self.try_command(command, params) {
            panic!("{}: ctrl_tcp on {}: {e}\n{}", self.name, self.ctrl, self.report());
        }
    }

    /// [`Phone::command`] for a phone that may have quit already.
    fn try_command(&self, command: &str, params: &str) -> std::io::Result<()> {
        use std::io::Write;
        let json = format!("{{\"command\":\"{command}\",\"params\":\"{params}\",\"token\":\"t\"}}");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.ctrl))?;
        stream.write_all(format!("{}:{json},", json.len()).as_bytes())?;
        // Give baresip the time to read it before the connection closes.
        std::thread::sleep(Duration::from_millis(100));
        Ok(())
    }

    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    /// Polls the phone's output for `needle` for at most `timeout`; gives up early on `failure`.
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

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The decoded (received) audio the `sndfile` filter dumps.
    fn heard(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.join("rec"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }

    /// How many samples the phone has heard so far (0 before its first call).
    fn heard_so_far(&self) -> usize {
        self.heard().and_then(|p| read_audio(&p)).map(|(_, s)| s.len()).unwrap_or(0)
    }

    /// What the phone heard, at 8 kHz; panics with `context` when it heard nothing usable.
    fn heard_samples(&self, context: &dyn Fn() -> String) -> Vec<i16> {
        let path = self.heard().unwrap_or_else(|| panic!("{} recorded nothing\n{}", self.name, context()));
        let (format, samples) =
            read_audio(&path).unwrap_or_else(|| panic!("{} is not a WAV\n{}", path.display(), context()));
        assert_eq!(format.sample_rate_hz, SAMPLE_RATE, "{}: {format:?}", path.display());
        samples
    }

    fn report(&self) -> String {
        format!("--- baresip {} ---\n{}", self.name, self.log())
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The blocks from sample `from` to sample `to`, less [`EDGE_BLOCKS`] at each end.
fn inner_blocks(from: usize, to: usize) -> std::ops::Range<usize> {
    let (lo, hi) =
        (from.div_ceil(BLOCK_SAMPLES) + EDGE_BLOCKS, (to / BLOCK_SAMPLES).saturating_sub(EDGE_BLOCKS));
    lo..hi.max(lo)
}

// ---------------------------------------------------------------------------------------------
// With real peers.

#[test]
fn star_three_calls_a_third_phone_in_and_all_three_hear_each_other() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], "");
    let media = tb.scratch("media");
    let source = |hz: f64| {
        let path = media.join(format!("tone-{hz}.wav"));
        std::fs::write(&path, wav::encode_pcm16_mono_8k(&tone(hz, SOURCE_SECONDS, TONE_AMPLITUDE)))
            .expect("write WAV");
        path
    };
    let mut phones = Vec::new();
    for ext in [BOB, CAROL] {
        let hz = if ext == BOB { TONES_HZ[1] } else { TONES_HZ[2] };
        let phone = Phone::start(&tb, ext, &source(hz), &[]);
        assert!(
            phone.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
            "{} did not register\n{}\n--- box ---\n{}",
            ext.0,
            phone.report(),
            tb.stderr_tail(60)
        );
        phones.push(phone);
    }
    phones.insert(0, Phone::start(&tb, ALICE, &source(TONES_HZ[0]), &[&format!("/dial {}", BOB.0)]));
    let context = |phones: &[Phone]| {
        format!(
            "{}\n--- box ---\n{}",
            phones.iter().map(Phone::report).collect::<Vec<_>>().join("\n"),
            tb.stderr_tail(120)
        )
    };
    assert!(
        phones[0].wait_for("established", None, ESTABLISH_TIMEOUT)
            && phones[1].wait_for("established", None, ESTABLISH_TIMEOUT),
        "201 to 202 was not established\n{}",
        context(&phones)
    );
    std::thread::sleep(TWO_PARTY);
    assert!(
        phones[2].heard().is_none() && !phones[2].log().contains("established"),
        "203 was in a call before the feature code\n{}",
        context(&phones)
    );
    let pressed: Vec<usize> = phones.iter().map(Phone::heard_so_far).collect();
    for key in ["*", "3", "2", "0", "3", "#"] {
        phones[0].command("sndcode", key);
        std::thread::sleep(KEY_GAP);
    }
    assert!(
        phones[2].wait_for("established", None, ESTABLISH_TIMEOUT),
        "203 was not called in\n{}",
        context(&phones)
    );
    let answered: Vec<usize> = phones.iter().map(Phone::heard_so_far).collect();
    std::thread::sleep(THREE_WAY);
    let hung_up: Vec<usize> = phones.iter().map(Phone::heard_so_far).collect();
    phones[0].command("hangup", "");
    let others_ended: Vec<bool> =
        phones[1..].iter().map(|p| p.wait_for("terminated", None, HANGUP_TIMEOUT)).collect();
    for p in &mut phones {
        // A clean quit closes the WAV files; a phone already gone is killed below anyway.
        let _ = p.try_command("quit", "");
        p.wait_exit(Duration::from_secs(2));
        p.kill();
    }
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));

    for (i, p) in phones.iter().enumerate() {
        let heard = p.heard_samples(&|| context(&phones));
        let others: Vec<usize> = (0..3).filter(|&o| o != i).collect();
        let before = Stretch::measure(&heard, inner_blocks(0, pressed[i]));
        let during = Stretch::measure(&heard, inner_blocks(answered[i], hung_up[i]));
        // Keys and ringing: reported, not checked (the switch to the room falls in it).
        let ringing = Stretch::measure(&heard, pressed[i] / BLOCK_SAMPLES..answered[i] / BLOCK_SAMPLES);
        eprintln!(
            "{}: heard {} ms; before *3 {} blocks, found {:?}; keys and ringing {} blocks, found {:?}; \
             three-way {} blocks, found {:?}, energy per tone {:?}, own {} Hz {:.1} dB below the weaker other",
            p.name,
            heard.len() / 8,
            before.blocks,
            before.found,
            ringing.blocks,
            ringing.found,
            during.blocks,
            during.found,
            during.energy.map(|e| format!("{e:.1e}")),
            TONES_HZ[i],
            during.own_below_db(i, &others),
        );
        if i < 2 {
            // 201 and 202 heard each other and nobody else before the feature code.
            let partner = 1 - i;
            assert!(
                before.blocks >= 10,
                "{}: only {} blocks before *3\n{}",
                p.name,
                before.blocks,
                context(&phones)
            );
            assert!(
                before.heard_share(partner) >= MIN_HEARD_SHARE,
                "{}: heard {} Hz in {}/{} blocks before *3\n{}",
                p.name,
                TONES_HZ[partner],
                before.found[partner],
                before.blocks,
                context(&phones)
            );
            assert!(
                before.found[i] == 0 && before.found[2] == 0,
                "{}: before *3 heard itself or 203: {:?}\n{}",
                p.name,
                before.found,
                context(&phones)
            );
        }
        assert!(
            during.blocks >= 40,
            "{}: only {} three-way blocks\n{}",
            p.name,
            during.blocks,
            context(&phones)
        );
        for &o in &others {
            assert!(
                during.heard_share(o) >= MIN_HEARD_SHARE,
                "{}: heard {} Hz in {}/{} three-way blocks\n{}",
                p.name,
                TONES_HZ[o],
                during.found[o],
                during.blocks,
                context(&phones)
            );
        }
        assert!(
            during.found[i] == 0 && during.own_below_db(i, &others) >= 10.0 * OWN_VOICE_RATIO.log10(),
            "{}: own voice {:.1} dB below the others ({:?})\n{}",
            p.name,
            during.own_below_db(i, &others),
            during.energy,
            context(&phones)
        );
    }
    for needle in
        ["201 starts a three-way call with 203 (room ", "the third party answered; three-way call in room "]
    {
        assert!(log.contains(needle), "the box's log lacks `{needle}`:\n{log}");
    }
    eprintln!("after 201 hung up, 202 and 203 saw the call end: {others_ended:?}");
}
