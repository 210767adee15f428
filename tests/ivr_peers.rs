//! The IVR of issue 6 with real peers (baresip 1.0 phones): 201 dials the menu's number, the
//! box answers and plays the menu, 201 presses `1` (RFC 4733 from `ctrl_tcp sndcode`), the box
//! rings 202 and, once 202 answers, bridges the already answered caller to it: each hears the
//! other's tone. Then the same from a DID: SIPp plays the provider of a trunk and presses 1 by
//! SIP INFO.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, rms, tone, write_wav, ToneDetector, BLOCK_SAMPLES};
use common::{free_udp_port, require_tool, wait_udp_bound, RtpSink, Sipp, TestBox};
use std::path::Path;
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");

/// The menu: its number, and key 1 to 202.
const MENU: &str = r#"
[[ivr]]
name = "main"
number = "7000"
prompt = "common.enter_extension"
keys = { "1" = { extension = "202" } }
"#;

/// Each phone's tone (201, 202).
const TONES_HZ: [f64; 2] = [500.0, 1_100.0];
/// About -12 dBFS: speech level.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Each phone plays its tone for longer than it lives.
const SOURCE_SECONDS: f64 = 30.0;
/// Upper bound on each phone's life (`baresip -t`) in case the test's own hang-up fails.
const PHONE_SECONDS: u32 = 25;
/// Time for a phone to register, or a call to be established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(8);
/// 201 listens to the menu this long before pressing 1.
const IN_MENU: Duration = Duration::from_millis(1_500);
/// How long 201 and 202 talk.
const TALK: Duration = Duration::from_secs(3);
/// Trimmed from each end of the talk stretch (jitter buffers, the relay re-opening).
const EDGE_BLOCKS: usize = 3;
/// Share of the talk stretch's blocks in which the other's tone must be found.
const MIN_HEARD_SHARE: f64 = 0.9;
/// Lines of the box's log searched.
const LOG_TAIL_LINES: usize = 300;
/// A 100 ms block of the spoken prompt is louder than this (silence is far below).
const PROMPT_MIN_RMS: f64 = 100.0;
/// 100 ms blocks of sound 201 must hear in the menu: half a second of the prompt.
const PROMPT_MIN_BLOCKS: usize = 5;

fn start_phone(tb: &TestBox, ext: (&str, &str), source: &Path, cmds: &[&str]) -> Phone {
    Phone::builder(tb, ext, source, PHONE_SECONDS).commands(cmds).ctrl_tcp(tb.port()).start()
}

#[test]
fn a_caller_presses_1_in_the_menu_and_talks_to_the_extension() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start_with_config(&[ALICE, BOB], &[], MENU);
    let media = tb.scratch("media");
    let source = |hz: f64| {
        let path = media.join(format!("tone-{hz}.wav"));
        write_wav(&path, &tone(hz, SOURCE_SECONDS, TONE_AMPLITUDE));
        path
    };
    let bob = start_phone(&tb, BOB, &source(TONES_HZ[1]), &[]);
    assert!(
        bob.wait_for("200 OK", Some("Register:"), ESTABLISH_TIMEOUT),
        "202 did not register\n{}\n--- box ---\n{}",
        bob.report(),
        tb.stderr_tail(60)
    );
    let alice = start_phone(&tb, ALICE, &source(TONES_HZ[0]), &["/dial 7000"]);
    let mut phones = vec![alice, bob];
    let context = |phones: &[Phone]| {
        format!(
            "{}\n--- box ---\n{}",
            phones.iter().map(Phone::report).collect::<Vec<_>>().join("\n"),
            tb.stderr_tail(120)
        )
    };
    assert!(
        phones[0].wait_for("established", None, ESTABLISH_TIMEOUT),
        "the box did not answer 201's call to the menu\n{}",
        context(&phones)
    );
    std::thread::sleep(IN_MENU);
    assert!(!phones[1].log().contains("established"), "202 rang before the key\n{}", context(&phones));
    let menu_end = phones[0].heard_so_far();
    phones[0].command("sndcode", "1");
    assert!(
        phones[1].wait_for("established", None, ESTABLISH_TIMEOUT),
        "202 was not rung and connected after key 1\n{}",
        context(&phones)
    );
    let answered: Vec<usize> = phones.iter().map(Phone::heard_so_far).collect();
    std::thread::sleep(TALK);
    let ended: Vec<usize> = phones.iter().map(Phone::heard_so_far).collect();
    phones[0].command("hangup", "");
    let bob_ended = phones[1].wait_for("terminated", None, ESTABLISH_TIMEOUT);
    for p in &mut phones {
        let _ = p.try_command("quit", "");
        p.wait_exit(Duration::from_secs(2));
        p.kill();
    }
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));
    assert!(bob_ended, "202 did not see the call end\n{}", context(&phones));
    // 201 heard the menu's prompt (the box's player), and then 202 (below): the relay puts
    // 202's packets on the stream the prompt came on, so 201's jitter buffer keeps them.
    let menu: Vec<Vec<f64>> =
        blocks(&phones[0].heard_samples(&|| context(&phones))).take(menu_end / BLOCK_SAMPLES).collect();
    let spoken = menu.iter().filter(|b| rms(b) > PROMPT_MIN_RMS).count();
    eprintln!("201: {} menu blocks, {spoken} with sound", menu.len());
    assert!(
        spoken >= PROMPT_MIN_BLOCKS,
        "201 heard sound in {spoken}/{} blocks of the menu\n{}",
        menu.len(),
        context(&phones)
    );
    for (i, p) in phones.iter().enumerate() {
        let heard = p.heard_samples(&|| context(&phones));
        let other = TONES_HZ[1 - i];
        let (lo, hi) = (
            answered[i].div_ceil(BLOCK_SAMPLES) + EDGE_BLOCKS,
            (ended[i] / BLOCK_SAMPLES).saturating_sub(EDGE_BLOCKS),
        );
        let talk: Vec<Vec<f64>> = blocks(&heard).skip(lo).take(hi.saturating_sub(lo)).collect();
        let found = talk.iter().filter(|b| ToneDetector::MIXED.block_has_tone(b, other)).count();
        eprintln!("{}: {} talk blocks, {other} Hz in {found}", p.name, talk.len());
        assert!(talk.len() >= 15, "{}: only {} talk blocks\n{}", p.name, talk.len(), context(&phones));
        assert!(
            found as f64 >= MIN_HEARD_SHARE * talk.len() as f64,
            "{}: heard {other} Hz in {found}/{} blocks\n{}",
            p.name,
            talk.len(),
            context(&phones)
        );
    }
    for needle in
        ["answered into IVR menu main", "IVR routes to Extension(\"202\")", "ivr: side b is now 202"]
    {
        assert!(log.contains(needle), "the box's log lacks `{needle}`:\n{log}");
    }
}

/// The DID the provider delivers to the menu.
const DID: &str = "0312347000";
/// The provider's whole scenario (register, call, menu, talk) takes about 6 s.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);
/// 4 s of the extension's audio at 50 packets/s, with room for the re-open and jitter.
const MIN_RTP_PACKETS: u64 = 100;

#[test]
fn a_did_call_from_the_provider_presses_1_by_info_and_reaches_the_extension() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    let toml = format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{port}\"\ndomain = \"provider.example\"\n\
         username = \"{DID}\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[did]]\nnumber = \"{DID}\"\ndefault = {{ ivr = \"main\" }}\n{MENU}"
    );
    let tb = TestBox::start_with_config(&[ALICE, BOB], &[], &toml);
    let media = tb.scratch("media");
    let path = media.join("tone.wav");
    write_wav(&path, &tone(TONES_HZ[1], SOURCE_SECONDS, TONE_AMPLITUDE));
    let mut bob = Phone::builder(&tb, BOB, &path, PHONE_SECONDS).without_recording().start();
    assert!(
        bob.wait_for("200 OK", Some("Register:"), ESTABLISH_TIMEOUT),
        "202 did not register\n{}",
        bob.report()
    );
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
    let context = || format!("{}\n{}\n--- box ---\n{}", run.report(), bob.report(), tb.stderr_tail(80));
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the DID call failed\n{}", context());
    assert!(bob.log().contains("established"), "202 was not connected\n{}", context());
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets\n{}", rtp.packets, context());
    let log = tb.console(&format!("log tail {LOG_TAIL_LINES}"));
    for needle in ["DTMF 1 from the caller (info", "answered into IVR menu main", "ivr: side b is now 202"] {
        assert!(log.contains(needle), "the box's log lacks `{needle}`:\n{log}");
    }
    let cdr = tb.console_until("show cdr 1", ESTABLISH_TIMEOUT, |s| s.contains(DID));
    assert!(cdr.contains(&format!("did: {DID}")), "the CDR lacks the DID:\n{cdr}");
    bob.kill();
}
