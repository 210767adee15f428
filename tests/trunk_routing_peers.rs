//! Trunk routing of issue 4 with real peers, the cases `trunk_calls_peers.rs` leaves out: an
//! IP-authenticated trunk (OPTIONS keepalive, inbound DID, outbound with no challenge, 503 while
//! down), a DID ringing a ring group, forwarding to an outside number (from an extension and
//! from a DID), and a holiday that sends a DID to its default destination.
//!
//! SIPp plays the provider, baresip phones are the extensions. SIPp starts only once the phones
//! are registered: the trunk's REGISTER / OPTIONS is retransmitted (Timer E, at most 4 s apart)
//! until SIPp answers it, so a DID call never reaches the box before its extension can ring.

mod common;

use common::baresip::Phone;
use common::tones::{read_audio, tone, write_wav, ToneDetector};
use common::{free_udp_port, require_tool, wait_udp_bound, RtpSink, Sipp, SippChild, SippRun, TestBox};
use std::path::PathBuf;
use std::time::Duration;

const P201: (&str, &str) = ("201", "secret-201");
const P202: (&str, &str) = ("202", "secret-202");

/// The DID of the office.
const DID: &str = "0312345678";
/// A second DID, for the dated rule of the holiday test.
const DID2: &str = "0312345679";
/// The outside caller of the DID calls.
const CALLER: &str = "0611112222";
/// An outside number dialled or forwarded to.
const OUTSIDE: &str = "09011112222";
/// 202's own caller ID outside.
const CID_202: &str = "0312340202";

/// Upper bound on each phone's life (`baresip -t`).
const PHONE_SECONDS: u32 = 30;
/// Time for a phone to register, a call to be set up or end, or the trunk to come up (Timer E
/// resends the trunk's first request at most 4 s apart until SIPp listens).
const WAIT: Duration = Duration::from_secs(8);
/// The SIPp provider's bound on its whole run.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);
/// RTP packets of 20 ms the provider must get from a call that talks for 1-3 s: well below
/// the 50-150 sent, well above a stray packet or two.
const MIN_RTP_PACKETS: u64 = 25;
/// 201's tone, echoed back by the provider in the outbound calls.
const ALICE_HZ: f64 = 700.0;
/// 100 ms blocks in which 201 must hear its own tone come back from the provider, in a call
/// that talks for 1 s (10 blocks; the echo starts a round trip late).
const MIN_ECHO_BLOCKS: usize = 4;

/// A registering trunk (digest), the route `0` over it, and `more` tables.
fn register_trunk(provider_port: u16, more: &str) -> String {
    format!(
        "[[trunk]]\nname = \"provider\"\nregistrar = \"127.0.0.1:{provider_port}\"\ndomain = \"provider.example\"\n\
         username = \"{DID}\"\nauth_username = \"hakoden-trunk\"\npassword = \"trunk-Secret-1\"\nexpires = 120\n\n\
         [[outbound_route]]\nprefix = \"0\"\ntrunk = \"provider\"\n\n{more}"
    )
}

fn source(tb: &TestBox, hz: f64) -> PathBuf {
    let path = tb.scratch("media").join(format!("tone-{hz}.wav"));
    write_wav(&path, &tone(hz, f64::from(PHONE_SECONDS) + 5.0, 8_000.0));
    path
}

/// A registered phone with a ctrl_tcp port; `manual` phones ring instead of answering.
fn phone(tb: &TestBox, ext: (&str, &str), hz: f64, manual: bool, record: bool) -> Phone {
    let src = source(tb, hz);
    let mut b = Phone::builder(tb, ext, &src, PHONE_SECONDS).ctrl_tcp(tb.port());
    if manual {
        b = b.answer_manually();
    }
    if !record {
        b = b.without_recording();
    }
    let p = b.start();
    assert!(p.wait_for("200 OK", Some("Register:"), WAIT), "{} did not register\n{}", ext.0, p.report());
    p
}

fn provider(tb: &TestBox, scenario: &str, port: u16, keys: &[(&str, String)], calls: u32) -> SippChild {
    spawn(sipp(tb, scenario, port, keys, calls), port)
}

fn sipp(tb: &TestBox, scenario: &str, port: u16, keys: &[(&str, String)], calls: u32) -> Sipp {
    let mut sipp = Sipp::new(scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .calls(calls)
        .timeout(PROVIDER_TIMEOUT);
    for (k, v) in keys {
        sipp = sipp.key(k, v);
    }
    sipp
}

fn spawn(sipp: Sipp, port: u16) -> SippChild {
    let child = sipp.spawn();
    wait_udp_bound(port);
    child
}

/// A provider whose answer's SDP names its own media port, where SIPp echoes every RTP packet
/// back to its sender (`-rtp_echo`): a phone that hears its own tone has had its audio reach
/// the provider and the provider's audio reach it.
fn echo_provider(tb: &TestBox, scenario: &str, port: u16, calls: u32) -> SippChild {
    let media = free_udp_port();
    let keys = [("rtp_sink", media.to_string())];
    let child = spawn(sipp(tb, scenario, port, &keys, calls).media_port(media).arg("-rtp_echo"), port);
    wait_udp_bound(media);
    child
}

fn first(run: &SippRun, key: &str) -> String {
    run.logged(key).into_iter().next().unwrap_or_default()
}

fn context(tb: &TestBox, run: &SippRun, phones: &[&Phone]) -> String {
    let phones: Vec<String> = phones.iter().map(|p| p.report()).collect();
    format!("{}\n{}\n--- box ---\n{}", run.report(), phones.join("\n"), tb.stderr_tail(60))
}

/// Waits until the box's log holds `needle`.
fn box_logged(tb: &TestBox, needle: &str) -> bool {
    tb.console_until("log tail 300", WAIT, |s| s.contains(needle)).contains(needle)
}

/// 100 ms blocks in which `phone` heard its own tone (`hz`) come back, over all its calls (the
/// phone records each call to its own file).
fn echo_blocks(tb: &TestBox, phone: &Phone, hz: f64) -> usize {
    let dir = phone.heard().and_then(|p| p.parent().map(|d| d.to_path_buf()));
    let dir = dir.unwrap_or_else(|| {
        panic!("{} recorded nothing\n{}\n{}", phone.name, phone.report(), tb.stderr_tail(40))
    });
    let files =
        std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>());
    files
        .unwrap_or_default()
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .filter_map(|p| read_audio(p))
        .map(|(_, samples)| ToneDetector::MIXED.steady_blocks(&samples, hz, 1).len())
        .sum()
}

/// Today's date in Japan (the DID rules' default offset), `YYYY-MM-DD`, and the day before.
#[allow(clippy::disallowed_methods)] // test driver: reads the clock to build the config
fn jst_today_and_yesterday() -> (String, String) {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs + 9 * 3600) / 86_400;
    (civil(days), civil(days.saturating_sub(1)))
}

/// The calendar date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn civil_dates_are_right() {
    assert_eq!(civil(0), "1970-01-01");
    assert_eq!(civil(20_513), "2026-03-01");
    assert_eq!(civil(20_512), "2026-02-28");
}

// 1. An IP-authenticated trunk.

#[test]
fn an_ip_trunk_is_up_on_options_takes_a_did_call_and_calls_out_without_a_challenge() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    // No username or password: the provider trusts the box's address. The keepalive is long
    // enough that no second OPTIONS reaches SIPp during the test (SIPp would take it for a new
    // call of the scenario).
    let config = format!(
        "[[trunk]]\nname = \"ipt\"\nmode = \"ip\"\nregistrar = \"127.0.0.1:{port}\"\ndomain = \"provider.example\"\n\
         keepalive = 60\n\n[[outbound_route]]\nprefix = \"0\"\ntrunk = \"ipt\"\n\n\
         [[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"201\" }}\n"
    );
    let tb = TestBox::start_with_config(&[P201], &[("201", &format!("caller_id = \"{DID}\""))], &config);
    let mut alice = phone(&tb, P201, ALICE_HZ, false, true);

    // Nothing answers the OPTIONS yet: the trunk is down and an outbound call gets 503 at once.
    let shown = tb.console("show trunks");
    assert!(shown.contains("ipt") && shown.contains("down"), "{shown}");
    alice.command("dial", OUTSIDE);
    assert!(alice.wait_for("503", None, WAIT), "201 did not get 503\n{}", alice.report());
    assert!(box_logged(&tb, "trunk ipt is not up (503)"), "{}", tb.stderr_tail(40));

    // SIPp answers the OPTIONS (the trunk goes up), then calls the DID: 201 answers and talks.
    let sink = RtpSink::bind(free_udp_port());
    let keys =
        [("did", DID.to_string()), ("caller", CALLER.to_string()), ("rtp_sink", sink.port().to_string())];
    let sipp = provider(&tb, "provider_ip_inbound.xml", port, &keys, 1);
    let shown = tb.console_until("show trunks", WAIT, |s| s.contains(" up"));
    assert!(shown.contains(" up"), "the IP trunk did not come up:\n{shown}\n{}", tb.stderr_tail(40));
    let run = sipp.wait();
    let rtp = sink.finish();
    eprintln!("the provider got {} RTP packets", rtp.packets);
    assert!(
        run.code == Some(0) && run.failed_calls() == 0,
        "the DID call failed\n{}",
        context(&tb, &run, &[&alice])
    );
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets", rtp.packets);
    let cdr = tb.console_until("show cdr 1", WAIT, |s| s.contains(DID));
    assert!(cdr.contains(&format!("trunk: ipt  did: {DID}")), "the CDR lacks trunk or DID:\n{cdr}");

    // Outbound: answered with no challenge; 201's audio reaches the provider and comes back.
    let sipp = echo_provider(&tb, "provider_answer_direct.xml", port, 1);
    alice.command("dial", OUTSIDE);
    let run = sipp.wait();
    let ctx = || context(&tb, &run, &[&alice]);
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the outbound call failed\n{}", ctx());
    assert_eq!(first(&run, "ruri"), format!("INVITE sip:{OUTSIDE}@provider.example"), "{}", ctx());
    assert!(first(&run, "from").starts_with(&format!("<sip:{DID}@provider.example>")), "{}", ctx());
    assert_eq!(first(&run, "auth"), "", "credentials sent to an IP trunk\n{}", ctx());
    assert!(
        first(&run, "contact").starts_with("sip:hakoden@"),
        "the Contact of an account-less trunk\n{}",
        ctx()
    );
    assert!(alice.wait_for("terminated", None, WAIT), "201 saw no hang-up\n{}", ctx());
    let echoed = echo_blocks(&tb, &alice, ALICE_HZ);
    eprintln!("201 heard its tone back from the provider in {echoed} blocks of 100 ms");
    assert!(echoed >= MIN_ECHO_BLOCKS, "201 heard its tone back in {echoed} blocks\n{}", ctx());
    alice.kill();
}

// 2. DID → ring group.

#[test]
fn a_did_to_a_ring_all_group_rings_both_phones_and_the_first_answer_wins() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    let more = format!(
        "[[did]]\nnumber = \"{DID}\"\ndefault = {{ group = \"800\" }}\n\n\
         [[ring_group]]\nnumber = \"800\"\nname = \"All\"\nstrategy = \"ring_all\"\nmembers = [\"201\", \"202\"]\n"
    );
    let tb = TestBox::start_with_config(&[P201, P202], &[], &register_trunk(port, &more));
    let mut a = phone(&tb, P201, 700.0, true, false);
    let mut b = phone(&tb, P202, 900.0, true, false);
    let sink = RtpSink::bind(free_udp_port());
    let keys =
        [("did", DID.to_string()), ("caller", CALLER.to_string()), ("rtp_sink", sink.port().to_string())];
    let sipp = provider(&tb, "provider_inbound_did.xml", port, &keys, 1);
    let both = a.wait_for("Incoming call", None, WAIT) && b.wait_for("Incoming call", None, WAIT);
    assert!(both, "both members must ring\n{}\n{}\n{}", a.report(), b.report(), tb.stderr_tail(40));
    b.command("accept", "");
    assert!(
        a.wait_for("session closed", None, WAIT),
        "201 kept ringing\n{}\n{}",
        a.report(),
        tb.stderr_tail(40)
    );
    let run = sipp.wait();
    let rtp = sink.finish();
    eprintln!("the provider got {} RTP packets", rtp.packets);
    let ctx = || context(&tb, &run, &[&a, &b]);
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the DID call failed\n{}", ctx());
    assert!(b.log().contains("Call established"), "202 did not talk\n{}", ctx());
    assert!(!a.log().contains("Call established"), "201 talked too\n{}", ctx());
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets\n{}", rtp.packets, ctx());
    assert!(b.wait_for("terminated", None, WAIT), "202 saw no hang-up\n{}", ctx());
    a.kill();
    b.kill();
}

// 3. Forward to an outside number.

#[test]
fn an_extension_forwarded_outside_sends_the_call_over_the_trunk_with_its_caller_id() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    let port = free_udp_port();
    let keys202 = format!("forward_always = \"{OUTSIDE}\"\ncaller_id = \"{CID_202}\"");
    let tb = TestBox::start_with_config(&[P201, P202], &[("202", &keys202)], &register_trunk(port, ""));
    let mut alice = phone(&tb, P201, ALICE_HZ, false, true);
    let sipp = echo_provider(&tb, "provider_outbound.xml", port, 2);
    let shown = tb.console_until("show trunks", WAIT, |s| s.contains("registered (expires in"));
    assert!(shown.contains("registered (expires in"), "the trunk did not register:\n{shown}");
    alice.command("dial", "202");
    let run = sipp.wait();
    let ctx = || context(&tb, &run, &[&alice]);
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the forwarded call failed\n{}", ctx());
    assert_eq!(first(&run, "ruri"), format!("INVITE sip:{OUTSIDE}@provider.example"), "{}", ctx());
    assert!(first(&run, "from").starts_with(&format!("<sip:{CID_202}@provider.example>")), "{}", ctx());
    assert!(alice.wait_for("terminated", None, WAIT), "201 saw no hang-up\n{}", ctx());
    let echoed = echo_blocks(&tb, &alice, ALICE_HZ);
    eprintln!("201 heard its tone back from the provider in {echoed} blocks of 100 ms");
    assert!(echoed >= MIN_ECHO_BLOCKS, "201 heard its tone back in {echoed} blocks\n{}", ctx());
    alice.kill();
}

#[test]
fn a_did_call_forwarded_outside_presents_the_did() {
    if !require_tool("sipp") {
        return;
    }
    let port = free_udp_port();
    let more = format!("[[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"202\" }}\n");
    let keys202 = format!("forward_always = \"{OUTSIDE}\"\ncaller_id = \"{CID_202}\"");
    let tb = TestBox::start_with_config(&[P202], &[("202", &keys202)], &register_trunk(port, &more));
    let sink = RtpSink::bind(free_udp_port());
    let keys =
        [("did", DID.to_string()), ("caller", CALLER.to_string()), ("rtp_sink", sink.port().to_string())];
    let run = provider(&tb, "provider_did_forward.xml", port, &keys, 2).wait();
    let ctx = || context(&tb, &run, &[]);
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the forwarded DID call failed\n{}", ctx());
    assert_eq!(first(&run, "ruri"), format!("INVITE sip:{OUTSIDE}@provider.example"), "{}", ctx());
    assert!(first(&run, "from").starts_with(&format!("<sip:{DID}@provider.example>")), "{}", ctx());
}

// 4. Holidays and specific dates.

#[test]
fn on_a_listed_holiday_a_weekday_rule_steps_aside_but_a_dated_rule_still_matches() {
    if !require_tool("sipp") || !require_tool("baresip") {
        return;
    }
    // Near midnight in Japan "today" may change during the test; the rules then disagree with
    // the config and the test would fail for the wrong reason.
    let (today, yesterday) = jst_today_and_yesterday();
    let port = free_udp_port();
    // DID: every weekday, all day, would ring 201; today is a holiday, so the weekday rule steps
    // aside; the dated rule names yesterday only: the call goes to the default, 202.
    // DID2: a rule dated today matches although today is a holiday.
    let dids = format!(
        "[[did]]\nnumber = \"{DID}\"\ndefault = {{ extension = \"202\" }}\n\
         [[did.rule]]\nname = \"yesterday only\"\ndates = [\"{yesterday}\"]\ndestination = {{ extension = \"201\" }}\n\
         [[did.rule]]\nname = \"every weekday\"\nweekdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]\n\
         times = [\"00:00-24:00\"]\ndestination = {{ extension = \"201\" }}\n\n\
         [[did]]\nnumber = \"{DID2}\"\ndefault = {{ extension = \"202\" }}\n\
         [[did.rule]]\nname = \"dated today\"\ndates = [\"{today}\"]\ndestination = {{ extension = \"201\" }}\n"
    );
    // Top-level keys come before the first table.
    let config = format!("holidays = [\"{today}\"]\n\n{}", register_trunk(port, &dids));
    let tb = TestBox::start_with_config(&[P201, P202], &[], &config);
    let shown = tb.console("show dids");
    let line = |did: &str| shown.lines().find(|l| l.starts_with(did)).unwrap_or_default().to_string();
    assert!(line(DID).contains("extension 202") && !line(DID).contains("weekday"), "{shown}");
    assert!(line(DID2).contains("extension 201") && line(DID2).contains("dated today"), "{shown}");
    let mut alice = phone(&tb, P201, 700.0, false, false);
    let mut bob = phone(&tb, P202, 900.0, false, false);
    let sink = RtpSink::bind(free_udp_port());
    let keys =
        [("did", DID.to_string()), ("caller", CALLER.to_string()), ("rtp_sink", sink.port().to_string())];
    let run = provider(&tb, "provider_inbound_did.xml", port, &keys, 1).wait();
    let rtp = sink.finish();
    eprintln!("the provider got {} RTP packets", rtp.packets);
    let ctx = || context(&tb, &run, &[&alice, &bob]);
    assert!(run.code == Some(0) && run.failed_calls() == 0, "the DID call failed\n{}", ctx());
    assert!(bob.log().contains("Call established"), "202 (the default) did not answer\n{}", ctx());
    assert!(!alice.log().contains("Incoming call"), "201 rang on a holiday\n{}", ctx());
    assert!(rtp.packets >= MIN_RTP_PACKETS, "the provider heard {} RTP packets\n{}", rtp.packets, ctx());
    alice.kill();
    bob.kill();
}
