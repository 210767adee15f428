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

use common::baresip::Phone;
use common::tones::{blocks, goertzel, tone, write_wav, ToneDetector, BLOCK_SAMPLES};
use common::{require_tool, TestBox};
use std::path::Path;
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");

/// Each phone's tone (201, 202, 203): far apart, none on another's Goertzel neighbours.
const TONES_HZ: [f64; 3] = [500.0, 1_100.0, 1_700.0];

/// About -12 dBFS: speech level, and two of them summed by the mixer stay clear of clipping.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Each phone plays its tone for longer than it lives.
const SOURCE_SECONDS: f64 = 40.0;

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
        let bs: Vec<Vec<f64>> = blocks(samples).skip(range.start).take(range.len()).collect();
        let mut found = [0; 3];
        let mut energy = [0.0; 3];
        for (i, hz) in TONES_HZ.iter().enumerate() {
            found[i] = bs.iter().filter(|x| ToneDetector::MIXED.block_has_tone(x, *hz)).count();
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

/// Starts a phone for `ext`, playing `source`, running `cmds` at start; it takes commands on
/// its `ctrl_tcp` port.
fn start_phone(tb: &TestBox, ext: (&str, &str), source: &Path, cmds: &[&str]) -> Phone {
    Phone::builder(tb, ext, source, PHONE_SECONDS).commands(cmds).ctrl_tcp(tb.port()).start()
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
        write_wav(&path, &tone(hz, SOURCE_SECONDS, TONE_AMPLITUDE));
        path
    };
    let mut phones = Vec::new();
    for ext in [BOB, CAROL] {
        let hz = if ext == BOB { TONES_HZ[1] } else { TONES_HZ[2] };
        let phone = start_phone(&tb, ext, &source(hz), &[]);
        assert!(
            phone.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
            "{} did not register\n{}\n--- box ---\n{}",
            ext.0,
            phone.report(),
            tb.stderr_tail(60)
        );
        phones.push(phone);
    }
    phones.insert(0, start_phone(&tb, ALICE, &source(TONES_HZ[0]), &[&format!("/dial {}", BOB.0)]));
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
