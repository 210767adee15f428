//! The call-center queues of issue 6 with real peers. Agents log in and become available
//! through the console (`agent login` / `agent available`), as a supervisor would.
//! - SIPp plays a trunk provider delivering a DID call to an IVR menu; the caller presses 1
//!   (SIP INFO), enters queue `support`, and the baresip agent 202 rings, answers, and its
//!   audio reaches the provider.
//! - Ring-all with two baresip agents: 201 answers at once, 202 rings manually and gets the
//!   CANCEL; the caller (baresip 203) hears 201's tone.
//! - Nobody logged in: the queue's overflow destination (extension 204) takes the call; a
//!   queue without one answers busy.
//! - A caller still waiting at the queue's (short) timeout goes to the timeout destination.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, rms, tone, write_wav, ToneDetector, BLOCK_SAMPLES};
use common::{free_udp_port, require_tool, wait_udp_bound, RtpSink, Sipp, TestBox};
use std::path::PathBuf;
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");
const CAROL: (&str, &str) = ("203", "secret-203");
const DAVE: (&str, &str) = ("204", "secret-204");
const ERIN: (&str, &str) = ("205", "secret-205");

/// Queues: `support` (6000, ring-all 201+202, overflow to 204; the caller hears ringback for
/// up to 5 s before the box answers it into the queue), `closed` (6100, 202, no
/// overflow: busy), `slow` (6200, 202, takes calls with nobody staffed, 3 s timeout to 204);
/// a menu whose key 1 enters `support`.
const QUEUES: &str = r#"
[[queue]]
name = "support"
number = "6000"
members = ["201", { agent = "202", level = 1 }]
overflow = { extension = "204" }

[[queue]]
name = "closed"
number = "6100"
members = ["202"]

[[queue]]
name = "slow"
number = "6200"
members = ["202"]
join_when_empty = true
timeout = 3
timeout_destination = { extension = "204" }

[[ivr]]
name = "main"
prompt = "common.enter_extension"
keys = { "1" = { queue = "support" } }
"#;

/// Each phone's tone by extension index (201..204).
const TONES_HZ: [f64; 4] = [500.0, 1_100.0, 700.0, 1_300.0];
/// About -12 dBFS: speech level.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Upper bound on each phone's life (`baresip -t`).
const PHONE_SECONDS: u32 = 30;
/// Time for a phone to register or a call to be set up (the slow queue adds its 3 s).
const WAIT: Duration = Duration::from_secs(10);
/// How long caller and agent talk before the tone check.
const TALK: Duration = Duration::from_secs(3);
/// Trimmed from the end of the caller's recording (the hang-up).
const EDGE_BLOCKS: usize = 3;
/// Skipped at the start of the caller's recording: the box's answer, the queue's greeting,
/// jitter buffers.
const LEAD_IN_BLOCKS: usize = 10;
/// How long the caller waits in the queue, hearing music, before the agent answers.
const ON_HOLD: Duration = Duration::from_secs(3);
/// A 100 ms block of the music on hold is louder than this (the built-in tune's RMS is above
/// 500 with its note decays; silence and comfort noise are far below).
const MUSIC_MIN_RMS: f64 = 100.0;
/// Share of the blocks before the answer that must carry sound: the greeting's pauses are
/// quiet.
const MIN_MUSIC_SHARE: f64 = 0.5;
/// Share of the talk stretch's blocks in which the agent's tone must be found.
const MIN_HEARD_SHARE: f64 = 0.9;
/// Lines of the box's log searched.
const LOG_TAIL_LINES: usize = 400;

fn source(tb: &TestBox, hz: f64) -> PathBuf {
    let path = tb.scratch("media").join(format!("tone-{hz}.wav"));
    write_wav(&path, &tone(hz, f64::from(PHONE_SECONDS) + 5.0, TONE_AMPLITUDE));
    path
}

fn hz_of(ext: (&str, &str)) -> f64 {
    let i = ext.0.parse::<usize>().unwrap_or(201).saturating_sub(201);
    TONES_HZ.get(i).copied().unwrap_or(TONES_HZ[0])
}

/// A registered phone; `manual`: it rings instead of answering.
fn phone(tb: &TestBox, ext: (&str, &str), manual: bool, cmds: &[&str]) -> Phone {
    let src = source(tb, hz_of(ext));
    let b = Phone::builder(tb, ext, &src, PHONE_SECONDS).commands(cmds).ctrl_tcp(tb.port());
    let b = if manual { b.answer_manually() } else { b };
    let p = b.start();
    assert!(p.wait_for("200 OK", Some("Register:"), WAIT), "{} did not register\n{}", ext.0, p.report());
    p
}

/// Logs the agent in and makes it available, as a supervisor on the console.
fn make_available(tb: &TestBox, agent: &str) {
    let login = tb.console(&format!("agent login {agent}"));
    assert!(login.contains("準備中"), "{login}");
    let available = tb.console(&format!("agent available {agent}"));
    assert!(available.contains("available"), "{available}");
}

fn context(tb: &TestBox, phones: &[&Phone]) -> String {
    format!(
        "{}\n--- box ---\n{}",
        phones.iter().map(|p| p.report()).collect::<Vec<_>>().join("\n"),
        tb.stderr_tail(120)
    )
}

/// The DID the provider delivers to the menu.
const DID: &str = "0312347000";
/// The provider's whole scenario (register, call, menu, talk) takes about 6 s.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);
/// 4 s of the agent's audio at 50 packets/s, with room for ringing and the re-open.
const MIN_RTP_PACKETS: u64 = 100;

#[test]
fn a_did_caller_presses_the_queue_key_and_the_available_agent_answers() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    let toml = format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{port}\"\ndomain = \"provider.example\"\n\
         username = \"{DID}\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[did]]\nnumber = \"{DID}\"\ndefault = {{ ivr = \"main\" }}\n{QUEUES}"
    );
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL, DAVE, ERIN], &[], &toml);
    let mut bob = phone(&tb, BOB, false, &[]);
    make_available(&tb, "202");
    let sink = RtpSink::bind(free_udp_port());
    let child = Sipp::new("provider_inbound_ivr.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .calls(1)
        .timeout(PROVIDER_TIMEOUT)
        .key("did", DID)
        .key("caller", "0611112222")
        .key("rtp_sink", sink.port())
        .spawn();
    wait_udp_bound(port);
    let run = child.wait();
    let rtp = sink.finish();
    let ctx = || format!("{}\n{}", run.report(), context(&tb, &[&bob]));
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the DID call failed\n{}", ctx());
    assert!(bob.log().contains("established"), "202 was not connected\n{}", ctx());
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets\n{}", rtp.packets, ctx());
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));
    for needle in ["enters queue support", "ringing agent 202", "queue: side b is now 202"] {
        assert!(log.contains(needle), "the box's log lacks `{needle}`:\n{log}");
    }
    bob.kill();
}

#[test]
fn ring_all_rings_two_agents_and_the_second_gets_cancel_when_the_first_answers() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL, DAVE, ERIN], &[], QUEUES);
    let alice = phone(&tb, ALICE, true, &[]);
    let bob = phone(&tb, BOB, true, &[]);
    make_available(&tb, "201");
    make_available(&tb, "202");
    let carol = phone(&tb, CAROL, false, &["/dial 6000"]);
    let phones = [&alice, &bob, &carol];
    // The box answers 203 at once (no ring-before-queue) and plays the music while both ring.
    assert!(
        carol.wait_for("established", None, WAIT),
        "the box did not answer 203\n{}",
        context(&tb, &phones)
    );
    let both = alice.wait_for("Incoming call", None, WAIT) && bob.wait_for("Incoming call", None, WAIT);
    assert!(both, "201 and 202 must both ring\n{}", context(&tb, &phones));
    std::thread::sleep(ON_HOLD);
    let music_end = carol.heard_so_far();
    alice.command("accept", "");
    assert!(alice.wait_for("established", None, WAIT), "201 did not answer\n{}", context(&tb, &phones));
    // baresip 1.0 reports a CANCEL of a ringing call as its session closing.
    assert!(
        bob.wait_for("session closed", None, WAIT),
        "202 did not stop ringing\n{}",
        context(&tb, &phones)
    );
    let answered = carol.heard_so_far();
    std::thread::sleep(TALK);
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));
    let agents = tb.console("show agents");
    // The recording is complete once the phone has quit (the dump is written as it closes).
    let mut carol = carol;
    carol.command("hangup", "");
    let _ = carol.try_command("quit", "");
    carol.wait_exit(Duration::from_secs(2));
    carol.kill();
    let phones = [&alice, &bob, &carol];
    let heard = carol.heard_samples(&|| context(&tb, &phones));
    // First the music (the box's player), then the agent: after the switch the relay goes on
    // with the stream 203 was receiving, so baresip 1.0 does not drop the agent's packets as
    // late (they came with lower sequence numbers than the music's).
    let n = heard.len() / BLOCK_SAMPLES;
    let music: Vec<Vec<f64>> = blocks(&heard).take(music_end / BLOCK_SAMPLES).skip(LEAD_IN_BLOCKS).collect();
    let loud = music.iter().filter(|b| rms(b) > MUSIC_MIN_RMS).count();
    eprintln!("203: {} music blocks, {loud} with sound", music.len());
    assert!(
        loud as f64 >= MIN_MUSIC_SHARE * music.len() as f64 && !music.is_empty(),
        "203 heard music in {loud}/{} blocks before the answer\n{}",
        music.len(),
        context(&tb, &phones)
    );
    let (lo, hi) = (answered.div_ceil(BLOCK_SAMPLES) + EDGE_BLOCKS, n.saturating_sub(EDGE_BLOCKS));
    let talk: Vec<Vec<f64>> = blocks(&heard).skip(lo).take(hi.saturating_sub(lo)).collect();
    let found = talk.iter().filter(|b| ToneDetector::MIXED.block_has_tone(b, TONES_HZ[0])).count();
    eprintln!("203: heard {} samples, 201's tone in {found}/{} talk blocks", heard.len(), talk.len());
    assert!(talk.len() >= 15, "only {} talk blocks\n{}", talk.len(), context(&tb, &phones));
    assert!(
        found as f64 >= MIN_HEARD_SHARE * talk.len() as f64,
        "203 heard 201's tone in {found}/{} blocks\n{}",
        talk.len(),
        context(&tb, &phones)
    );
    assert!(log.contains("ringing agent 201") && log.contains("ringing agent 202"), "{log}");
    assert!(agents.contains("201") && agents.contains("talking"), "{agents}");
}

#[test]
fn with_no_agent_logged_in_the_overflow_destination_answers_or_the_caller_hears_busy() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL, DAVE, ERIN], &[], QUEUES);
    let dave = phone(&tb, DAVE, false, &[]);
    let carol = phone(&tb, CAROL, false, &["/dial 6000"]);
    assert!(dave.wait_for("established", None, WAIT), "204 was not rung\n{}", context(&tb, &[&dave, &carol]));
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));
    assert!(log.contains("queue routes to Extension(\"204\") (Overflow(NoAgents))"), "{log}");
    // `closed` has no overflow destination: busy before any answer.
    let erin =
        Phone::builder(&tb, ERIN, &source(&tb, 900.0), PHONE_SECONDS).commands(&["/dial 6100"]).start();
    let busy = erin.wait_for("486", None, WAIT) || erin.log().contains("Busy");
    assert!(busy, "6100 did not answer busy\n{}", context(&tb, &[&erin]));
}

#[test]
fn a_caller_still_waiting_at_the_queue_timeout_goes_to_the_timeout_destination() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB, CAROL, DAVE, ERIN], &[], QUEUES);
    let dave = phone(&tb, DAVE, false, &[]);
    let carol = phone(&tb, CAROL, false, &["/dial 6200"]);
    assert!(
        carol.wait_for("established", None, WAIT),
        "the box did not queue 203\n{}",
        context(&tb, &[&carol])
    );
    let queues = tb.console("show queues");
    assert!(queues.contains("slow"), "{queues}");
    assert!(dave.wait_for("established", None, WAIT), "204 was not rung\n{}", context(&tb, &[&dave, &carol]));
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));
    assert!(log.contains("queue routes to Extension(\"204\") (Timeout)"), "{log}");
}
