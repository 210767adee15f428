//! Transfers and park proven with real peers (baresip 1.0 phones): after each re-wire, the
//! parties that should talk hear each other's tone and not the party that left.
//!
//! 201, 202 and 203 each play their own tone (500, 1 100, 1 700 Hz); 201 calls 202 first. Keys
//! go as RFC 4733 events through `ctrl_tcp sndcode`; REFER through `ctrl_tcp transfer` (baresip
//! 1.0 sends a blind REFER; it has no attended transfer, so the REFER with Replaces is played by
//! a SIPp scenario, `tests/sipp/refer_attended.xml`). What a phone heard after a re-wire is cut
//! by time: the test notes how many samples it had heard when the new party was established.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, tone, write_wav, ToneDetector, BLOCK_SAMPLES};
use common::{require_tool, TestBox};
use std::path::{Path, PathBuf};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");
/// Each phone's tone (201, 202, 203), far apart.
const TONES_HZ: [f64; 3] = [500.0, 1_100.0, 1_700.0];
/// About -12 dBFS: speech level.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Each phone plays its tone for longer than it lives.
const SOURCE_SECONDS: f64 = 60.0;
/// Upper bound on each phone's life (`baresip -t`) in case the test's own teardown fails.
const PHONE_SECONDS: u32 = 50;
/// Time for a phone to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a call to be established (including a transfer's or a park's prompt).
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long two parties talk before the test measures or acts.
const TALK: Duration = Duration::from_secs(2);
/// Gap between two keys; [`Phone::command`] already waits 100 ms of it.
const KEY_GAP: Duration = Duration::from_millis(100);
/// Time for a phone to see its call end.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(8);
/// Blocks (100 ms) trimmed after a cut point: the relay re-opens and jitter buffers refill.
const SETTLE_BLOCKS: usize = 5;
/// Share of blocks in which the partner's tone must be found.
const MIN_HEARD_SHARE: f64 = 0.8;
/// Most blocks in which a party that left may still be heard (a packet in flight).
const MAX_STALE_SHARE: f64 = 0.1;
/// Ringback after this (the configured minimum) in the park timeout test.
const RINGBACK_SECONDS: u32 = 10;

struct Rig {
    tb: TestBox,
    /// 201, 202, 203.
    phones: Vec<Phone>,
}

impl Rig {
    /// Starts the box and three phones; 201 calls 202 and both are established.
    fn talking(extra_toml: &str) -> Option<Rig> {
        if !require_tool("baresip") {
            return None;
        }
        let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], extra_toml);
        let media = tb.scratch("media");
        let mut phones = Vec::new();
        for (i, ext) in [ALICE, BOB, CAROL].into_iter().enumerate() {
            let path = media.join(format!("tone-{i}.wav"));
            write_wav(&path, &tone(TONES_HZ[i], SOURCE_SECONDS, TONE_AMPLITUDE));
            let phone = Phone::builder(&tb, ext, &path, PHONE_SECONDS).ctrl_tcp(tb.port()).start();
            phones.push(phone);
        }
        let rig = Rig { tb, phones };
        for p in &rig.phones {
            assert!(
                p.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
                "{} did not register\n{}",
                p.name,
                rig.context()
            );
        }
        rig.phones[0].command("dial", BOB.0);
        rig.established(&[0, 1]);
        std::thread::sleep(TALK);
        Some(rig)
    }

    fn context(&self) -> String {
        format!(
            "{}\n--- box ---\n{}",
            self.phones.iter().map(Phone::report).collect::<Vec<_>>().join("\n"),
            self.tb.stderr_tail(150)
        )
    }

    /// Waits until each phone's log shows `needle` `times` times in all.
    fn wait_count(&self, i: usize, needle: &str, times: usize, timeout: Duration) -> bool {
        let step = Duration::from_millis(50);
        for _ in 0..(timeout.as_millis() / step.as_millis()) {
            if self.phones[i].log().matches(needle).count() >= times {
                return true;
            }
            std::thread::sleep(step);
        }
        false
    }

    fn established(&self, who: &[usize]) {
        for &i in who {
            assert!(
                self.wait_count(i, "Call established", 1, ESTABLISH_TIMEOUT),
                "{} was not established\n{}",
                self.phones[i].name,
                self.context()
            );
        }
    }

    fn keys(&self, i: usize, keys: &str) {
        for k in keys.chars() {
            self.phones[i].command("sndcode", &k.to_string());
            std::thread::sleep(KEY_GAP);
        }
    }

    /// Samples heard so far by each phone in its newest call.
    fn marks(&self) -> Vec<usize> {
        (0..3).map(|i| newest_heard(&self.tb, i).map(|s| s.len()).unwrap_or(0)).collect()
    }

    /// After [`TALK`], phone `i` heard phone `partner`'s tone since `mark` and not `gone`'s.
    fn assert_hears(&self, i: usize, mark: usize, partner: usize, gone: Option<usize>, what: &str) {
        let heard = newest_heard(&self.tb, i).unwrap_or_default();
        let bs: Vec<Vec<f64>> = blocks(&heard).skip(mark / BLOCK_SAMPLES + SETTLE_BLOCKS).collect();
        let share = |hz: f64| {
            bs.iter().filter(|b| ToneDetector::MIXED.block_has_tone(b, hz)).count() as f64
                / bs.len().max(1) as f64
        };
        let heard_partner = share(TONES_HZ[partner]);
        eprintln!(
            "{what}: {} heard {} in {:.0} % of {} blocks",
            self.phones[i].name,
            TONES_HZ[partner],
            heard_partner * 100.0,
            bs.len()
        );
        assert!(
            bs.len() >= 10,
            "{what}: {} heard only {} blocks\n{}",
            self.phones[i].name,
            bs.len(),
            self.context()
        );
        assert!(
            heard_partner >= MIN_HEARD_SHARE,
            "{what}: {} heard {} Hz in only {:.0} % of blocks\n{}",
            self.phones[i].name,
            TONES_HZ[partner],
            heard_partner * 100.0,
            self.context()
        );
        if let Some(g) = gone {
            let stale = share(TONES_HZ[g]);
            assert!(
                stale <= MAX_STALE_SHARE,
                "{what}: {} still hears {} Hz ({:.0} %)\n{}",
                self.phones[i].name,
                TONES_HZ[g],
                stale * 100.0,
                self.context()
            );
        }
    }

    /// Quits the phones; the box stays up for checks of what it stored.
    fn teardown(mut self) -> TestBox {
        for p in &mut self.phones {
            let _ = p.try_command("quit", "");
            p.wait_exit(Duration::from_secs(2));
            p.kill();
        }
        self.tb
    }
}

/// The newest `*-dec.wav` of phone `i` (a phone rung back has two calls).
fn newest_heard(tb: &TestBox, i: usize) -> Option<Vec<i16>> {
    let name = [ALICE.0, BOB.0, CAROL.0].get(i)?;
    let dir: PathBuf = tb.scratch(&format!("baresip-{name}")).join("rec");
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .filter_map(|p| {
            Some((
                std::fs::metadata(&p).ok()?.created().or_else(|_| std::fs::metadata(&p)?.modified()).ok()?,
                p,
            ))
        })
        .collect();
    files.sort();
    let path: &Path = &files.last()?.1;
    common::tones::read_audio(path).map(|(_, s)| s)
}

#[test]
fn a_blind_refer_from_the_callee_bridges_the_caller_to_the_target() {
    let Some(rig) = Rig::talking("") else { return };
    let target = format!("sip:{}@127.0.0.1:{}", CAROL.0, rig.tb.sip_port());
    rig.phones[1].command("transfer", &target);
    rig.established(&[2]);
    assert!(
        rig.phones[1].wait_for("terminated", None, HANGUP_TIMEOUT),
        "202 was not released\n{}",
        rig.context()
    );
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(0, m[0], 2, Some(1), "REFER blind");
    rig.assert_hears(2, m[2], 0, None, "REFER blind");
    let tb = rig.teardown();
    // The CDR's final view names who ended up talking; the detailed view keeps every leg.
    let want = format!("final: {} <-> {}", ALICE.0, CAROL.0);
    let cdr = tb.console_until("show cdr 3 detail", Duration::from_secs(5), |o| o.contains(&want));
    let rewire = format!("blind transfer: side b {} -> {}", BOB.0, CAROL.0);
    assert!(cdr.contains(&want) && cdr.contains(&rewire), "{cdr}");
    assert!(cdr.matches("leg ").count() >= 3, "caller, 202 and 203 legs: {cdr}");
}

#[test]
fn hash_8_transfers_blind_from_the_keypad() {
    let Some(rig) = Rig::talking("") else { return };
    rig.keys(0, "#8203#");
    rig.established(&[2]);
    assert!(
        rig.phones[0].wait_for("terminated", None, HANGUP_TIMEOUT),
        "201 was not released\n{}",
        rig.context()
    );
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(1, m[1], 2, Some(0), "#8");
    rig.assert_hears(2, m[2], 1, None, "#8");
    rig.teardown();
}

#[test]
fn hash_9_consults_then_hanging_up_completes_the_transfer() {
    let Some(rig) = Rig::talking("") else { return };
    rig.keys(0, "#9203#");
    rig.established(&[2]);
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(0, m[0], 2, Some(1), "#9 consult");
    rig.assert_hears(2, m[2], 0, None, "#9 consult");
    rig.phones[0].command("hangup", "");
    std::thread::sleep(Duration::from_millis(300));
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(1, m[1], 2, Some(0), "#9 complete");
    rig.assert_hears(2, m[2], 1, Some(0), "#9 complete");
    rig.teardown();
}

#[test]
fn hash_0_cancels_a_consultation_back_to_the_held_party() {
    let Some(rig) = Rig::talking("") else { return };
    rig.keys(0, "#9203#");
    rig.established(&[2]);
    std::thread::sleep(TALK);
    rig.keys(0, "#0");
    assert!(
        rig.phones[2].wait_for("terminated", None, HANGUP_TIMEOUT),
        "203 was not hung up\n{}",
        rig.context()
    );
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(0, m[0], 1, Some(2), "#0");
    rig.assert_hears(1, m[1], 0, None, "#0");
    rig.teardown();
}

#[test]
fn a_parked_call_is_announced_and_taken_by_dialling_the_slot() {
    let Some(rig) = Rig::talking("") else { return };
    rig.keys(0, "#72");
    assert!(
        rig.phones[0].wait_for("terminated", None, HANGUP_TIMEOUT),
        "the parker was not released\n{}",
        rig.context()
    );
    let shown = rig.tb.console("show parked");
    assert!(shown.contains("9001") && shown.contains("202"), "{shown}");
    rig.phones[2].command("dial", "9001");
    rig.established(&[2]);
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(1, m[1], 2, Some(0), "park retrieve");
    rig.assert_hears(2, m[2], 1, None, "park retrieve");
    rig.teardown();
}

#[test]
fn an_unretrieved_parked_call_rings_the_parker_back() {
    let Some(rig) = Rig::talking(&format!("[park]\nringback_seconds = {RINGBACK_SECONDS}\n")) else { return };
    rig.keys(0, "#72");
    assert!(
        rig.phones[0].wait_for("terminated", None, HANGUP_TIMEOUT),
        "the parker was not released\n{}",
        rig.context()
    );
    // 201 answers automatically when rung back.
    assert!(
        rig.wait_count(0, "Call established", 2, Duration::from_secs(u64::from(RINGBACK_SECONDS) + 10)),
        "201 was not rung back\n{}",
        rig.context()
    );
    let m = rig.marks();
    std::thread::sleep(TALK);
    rig.assert_hears(0, m[0], 1, None, "ringback");
    rig.assert_hears(1, m[1], 0, None, "ringback");
    rig.teardown();
}

#[test]
fn an_empty_park_slot_is_refused_with_404() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], "");
    let media = tb.scratch("media");
    let path = media.join("tone.wav");
    write_wav(&path, &tone(TONES_HZ[2], 5.0, TONE_AMPLITUDE));
    let phone = Phone::builder(&tb, CAROL, &path, 15).ctrl_tcp(tb.port()).without_recording().start();
    assert!(phone.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT), "{}", phone.report());
    phone.command("dial", "9005");
    assert!(phone.wait_for("404", None, HANGUP_TIMEOUT), "{}\n{}", phone.report(), tb.stderr_tail(40));
}

/// What phone `i` (0 = 201, ...) heard since `mark`: (share of blocks with `hz`, blocks).
fn heard_share(tb: &TestBox, i: usize, mark: usize, hz: f64) -> (f64, usize) {
    let heard = newest_heard(tb, i).unwrap_or_default();
    let bs: Vec<Vec<f64>> = blocks(&heard).skip(mark / BLOCK_SAMPLES + SETTLE_BLOCKS).collect();
    let found = bs.iter().filter(|b| ToneDetector::MIXED.block_has_tone(b, hz)).count();
    (found as f64 / bs.len().max(1) as f64, bs.len())
}

#[test]
fn a_refer_with_replaces_joins_the_other_parties_of_two_calls() {
    if !require_tool("baresip") || !require_tool("sipp") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL], &[], "");
    let media = tb.scratch("media");
    // 201 is SIPp (the transferor, with two calls); 202 and 203 are phones.
    let mut phones = Vec::new();
    for (i, ext) in [BOB, CAROL].into_iter().enumerate() {
        let path = media.join(format!("tone-{i}.wav"));
        write_wav(&path, &tone(TONES_HZ[i + 1], SOURCE_SECONDS, TONE_AMPLITUDE));
        phones.push(Phone::builder(&tb, ext, &path, PHONE_SECONDS).ctrl_tcp(tb.port()).start());
    }
    let context = |phones: &[Phone]| {
        let reports = phones.iter().map(Phone::report).collect::<Vec<_>>().join("\n");
        format!("{reports}\n--- box ---\n{}", tb.stderr_tail(150))
    };
    for p in &phones {
        assert!(p.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT), "{}", context(&phones));
    }
    let sipp = |scenario: &str, callee: &str| {
        common::Sipp::new(scenario, &tb.scratch("sipp"))
            .remote(&tb.sip_addr())
            .local_port(tb.port())
            .media_port(tb.port())
            .service(callee)
            .key("caller", ALICE.0)
            .auth(ALICE.0, ALICE.1)
            .timeout(Duration::from_secs(25))
    };
    // The consultation (201 to 203) first, with a Call-ID the REFER can name.
    let consultation = sipp("refer_attended_call2.xml", CAROL.0).arg("-cid_str").arg("consult-%u").spawn();
    assert!(phones[1].wait_for("Call established", None, ESTABLISH_TIMEOUT), "{}", context(&phones));
    let transferor =
        sipp("refer_attended.xml", BOB.0).key("target", CAROL.0).key("replaces", "consult-1").spawn();
    transferor.wait().assert_ok("the transferor's call, REFER with Replaces, NOTIFYs and BYE");
    consultation.wait().assert_ok("the consultation's transferor leg is hung up by the box");
    let (m1, m2) = (newest_heard(&tb, 1).map_or(0, |s| s.len()), newest_heard(&tb, 2).map_or(0, |s| s.len()));
    std::thread::sleep(TALK);
    let (s1, n1) = heard_share(&tb, 1, m1, TONES_HZ[2]);
    let (s2, n2) = heard_share(&tb, 2, m2, TONES_HZ[1]);
    eprintln!(
        "REFER attended: 202 heard 1700 in {:.0} % of {n1} blocks, 203 heard 1100 in {:.0} % of {n2}",
        s1 * 100.0,
        s2 * 100.0
    );
    assert!(n1 >= 10 && n2 >= 10 && s1 >= MIN_HEARD_SHARE && s2 >= MIN_HEARD_SHARE, "{}", context(&phones));
    let cdr = tb.console("show cdr 3");
    assert!(cdr.contains("attended transfer"), "{cdr}");
    for p in &mut phones {
        let _ = p.try_command("quit", "");
        p.wait_exit(Duration::from_secs(2));
        p.kill();
    }
}
