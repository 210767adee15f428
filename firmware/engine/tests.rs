//! Whole calls through the engine with a virtual clock: phones are strings, time is jumped.

use super::*;
use crate::config::ExtensionConfig;
use crate::media::MediaCommand;
use crate::sip::message::{parse, Message};
use md5::{Digest, Md5};

// Calls over a trunk (issue 4).
mod trunkcalls_tests;
// IVR menus (issue 6).
mod ivr_tests;
// Supervision: listen, whisper, barge (issue 6).
mod supervise_tests;
// Call-center queues (issue 6).
mod queue_tests;
// Live reconfiguration (issue 7).
mod reconfigure_tests;
// Calls the box places itself (issues 7 and 9).
mod originate_tests;

const BOX_PORT: u16 = 5060;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn md5(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// Prompt ids played to the caller's side (side A), in order, across every recorded `Play`.
fn prompts_played(h: &Harness) -> Vec<String> {
    h.media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Play { side: crate::media::Side::A, clips, .. } => Some(clips.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match c {
            crate::media::Clip::Prompt { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

struct Harness {
    engine: Engine,
    now: Instant,
    /// Everything the box sent, in order, not yet looked at.
    sent: Vec<(Peer, String)>,
    media: Vec<MediaCommand>,
    cdrs: Vec<CdrRecord>,
    /// Voicemail store operations asked for (`voicemail_tests.rs`).
    vm: Vec<VoicemailOp>,
}

fn phone(port: u16) -> Peer {
    Peer { transport: Transport::Udp, addr: format!("127.0.0.1:{port}").parse().unwrap() }
}

fn ext(n: &str, call_waiting: bool) -> ExtensionConfig {
    ExtensionConfig {
        number: n.into(),
        name: format!("Ext {n}"),
        password: format!("pw-{n}-secret"),
        call_waiting,
        record: Default::default(),
    }
}

impl Harness {
    fn new() -> Harness {
        Harness::with(vec![ext("201", true), ext("202", true), ext("203", false)], 60)
    }

    fn with(exts: Vec<ExtensionConfig>, ring_timeout_s: u64) -> Harness {
        let now = Instant::now();
        let cfg = EngineConfig {
            sip_port: BOX_PORT,
            ring_timeout: Duration::from_secs(ring_timeout_s),
            auth_algorithms: vec![
                crate::config::DigestAlgorithm::Md5,
                crate::config::DigestAlgorithm::Sha256,
            ],
            secret: [42; 32],
            rtp_ports: crate::config::PortRange { lo: 20000, hi: 20099 },
            ..EngineConfig::for_tests(now)
        };
        Harness {
            engine: Engine::new(cfg, &exts),
            now,
            sent: vec![],
            media: vec![],
            cdrs: vec![],
            vm: vec![],
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Transmit { peer, data } => self.sent.push((peer, String::from_utf8(data).unwrap())),
                Output::Media(m) => self.media.push(m),
                Output::Cdr(c) => self.cdrs.push(*c),
                Output::Voicemail(op) => self.vm.push(op),
                // Queue tests read the ACD's state through the console getters.
                Output::QueueEvent(_) => {}
            }
        }
    }

    fn send(&mut self, from: Peer, msg: &str) {
        let msg = with_length(msg);
        self.engine.handle_datagram(self.now, from, msg.as_bytes());
        self.drain();
    }

    /// Jumps the virtual clock, firing every timer on the way (bounded against livelock).
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        for _ in 0..100_000 {
            match self.engine.poll_timeout() {
                Some(t) if t <= target => {
                    self.now = t.max(self.now);
                    self.engine.handle_timeout(self.now);
                    self.drain();
                }
                _ => break,
            }
        }
        self.now = target;
    }

    /// Messages sent to `peer` since the last call, as (first line, text).
    fn take_for(&mut self, peer: Peer) -> Vec<String> {
        let (mine, rest): (Vec<_>, Vec<_>) = self.sent.drain(..).partition(|(p, _)| *p == peer);
        self.sent = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }

    fn register(&mut self, ext: &str, port: u16) {
        let p = phone(port);
        let reg = |auth: &str| {
            format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{port}{}\r\n\
                 From: <sip:{ext}@127.0.0.1>;tag=r{port}\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: reg-{port}\r\n\
                 CSeq: {} REGISTER\r\nContact: <sip:{ext}@127.0.0.1:{port}>\r\nExpires: 600\r\n{auth}\r\n",
                auth.len(),
                if auth.is_empty() { 1 } else { 2 }
            )
        };
        self.send(p, &reg(""));
        let challenge = self.take_for(p).pop().unwrap();
        assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
        let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        let auth = authorization("REGISTER", ext, &format!("pw-{ext}-secret"), &nonce, "sip:127.0.0.1");
        self.send(p, &reg(&format!("Authorization: {auth}\r\n")));
        let mut got = self.take_for(p);
        let ok = got.iter().position(|m| m.starts_with("SIP/2.0 ")).map(|i| got.remove(i)).unwrap();
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        // What followed the 200 (an unsolicited MWI NOTIFY) stays for the test to look at.
        self.sent.extend(got.into_iter().map(|m| (p, m)));
    }
}

fn authorization(method: &str, user: &str, password: &str, nonce: &str, uri: &str) -> String {
    let ha1 = md5(&format!("{user}:hakoden:{password}"));
    let ha2 = md5(&format!("{method}:{uri}"));
    let resp = md5(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"hakoden\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    )
}

/// Fills in Content-Length and the blank line for a message written without them.
fn with_length(msg: &str) -> String {
    let (head, body) = match msg.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (msg.trim_end_matches("\r\n").to_string(), String::new()),
    };
    format!("{head}\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

fn sdp(port: u16, pts: &str) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\n"
    );
    for pt in pts.split(' ') {
        match pt {
            "0" => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
            "8" => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            "18" => s.push_str("a=rtpmap:18 G729/8000\r\n"),
            "101" => s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"),
            _ => {}
        }
    }
    s
}

fn invite(from: &str, to: &str, port: u16, call: &str, sdp_body: &str) -> String {
    format!(
        "INVITE sip:{to}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKi{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{from}@127.0.0.1>;tag=f{call}\r\nTo: <sip:{to}@127.0.0.1>\r\n\
         Call-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:{from}@127.0.0.1:{port}>\r\n\
         Content-Type: application/sdp\r\n\r\n{sdp_body}"
    )
}

fn parsed(msg: &str) -> Message {
    parse(msg.as_bytes()).unwrap_or_else(|e| panic!("box sent an unparsable message {e:?}:\n{msg}"))
}

fn status(msg: &str) -> u16 {
    match parsed(msg) {
        Message::Response(r) => r.code,
        Message::Request(r) => panic!("expected a response, got {}", r.method),
    }
}

/// A response from the callee phone to a request the box sent it.
fn answer(req: &str, code: u16, to_tag: &str, body: Option<&str>, contact_port: u16) -> String {
    let Message::Request(r) = parsed(req) else { panic!("not a request") };
    let mut s = format!("SIP/2.0 {code} X\r\n");
    for v in &r.common.via {
        s.push_str(&format!("Via: {}\r\n", v.raw));
    }
    let to = r.common.header("To").unwrap();
    let to = if to.contains("tag=") { to.to_string() } else { format!("{to};tag={to_tag}") };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nContact: <sip:x@127.0.0.1:{contact_port}>\r\n",
        r.common.header("From").unwrap(),
        r.common.call_id,
        r.common.cseq.seq,
        r.common.cseq.method
    ));
    match body {
        Some(b) => s.push_str(&format!("Content-Type: application/sdp\r\n\r\n{b}")),
        None => s.push_str("\r\n"),
    }
    s
}

fn first_line(m: &str) -> &str {
    m.lines().next().unwrap_or("")
}

/// 201 on port 7001 calls 202 on port 7002, which answers; returns the callee's INVITE.
fn answered_call(h: &mut Harness) -> String {
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c1", &sdp(4000, "0 8 101")));
    let a = h.take_for(phone(7001));
    assert_eq!(status(&a[0]), 100);
    let b = h.take_for(phone(7002));
    assert_eq!(b.len(), 1, "one INVITE to the callee");
    let inv = b[0].clone();
    assert!(inv.starts_with("INVITE sip:202@127.0.0.1:7002 SIP/2.0"), "{inv}");
    h.send(phone(7002), &answer(&inv, 180, "callee", None, 7002));
    assert_eq!(status(&h.take_for(phone(7001))[0]), 180);
    h.send(phone(7002), &answer(&inv, 200, "callee", Some(&sdp(5000, "0 101")), 7002));
    inv
}

// Tests for the registrar.

#[test]
fn register_is_challenged_then_accepted_and_listed() {
    let mut h = Harness::new();
    h.register("201", 7001);
    let regs = h.engine.registrations(h.now);
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].extension, "201");
    assert_eq!(regs[0].peer, phone(7001));
}

#[test]
fn registrations_lapse_after_their_expiry() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.advance(Duration::from_secs(601));
    assert!(h.engine.registrations(h.now).is_empty());
}

#[test]
fn wrong_password_is_forbidden_and_repeated_failures_block_the_source() {
    let mut h = Harness::new();
    let p = phone(7009);
    for i in 0..12 {
        let auth = authorization("REGISTER", "201", "wrong", "0.bad", "sip:127.0.0.1");
        h.send(
            p,
            &format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7009;branch=z9hG4bKw{i}\r\n\
                 From: <sip:201@127.0.0.1>;tag=w\r\nTo: <sip:201@127.0.0.1>\r\nCall-ID: w\r\nCSeq: {i} REGISTER\r\n\
                 Contact: <sip:201@127.0.0.1:7009>\r\nAuthorization: {auth}\r\n\r\n"
            ),
        );
        assert_eq!(status(&h.take_for(p)[0]), 403);
    }
    assert_eq!(h.engine.counters().auth_failures, crate::sip::auth::GUARD_MAX_FAILURES as u64);
    assert!(h.engine.registrations(h.now).is_empty());
}

#[test]
fn the_challenge_round_does_not_count_as_a_failure() {
    let mut h = Harness::new();
    for port in 7001..7028 {
        let ext = ["201", "202", "203"][usize::from(port % 3)];
        h.register(ext, port);
    }
    assert_eq!(h.engine.counters().auth_failures, 0);
}

#[test]
fn a_too_short_expiry_gets_423_with_min_expires() {
    let mut h = Harness::new();
    h.register("201", 7001);
    let p = phone(7001);
    h.send(
        p,
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKs1\r\n\
         From: <sip:201@127.0.0.1>;tag=s\r\nTo: <sip:201@127.0.0.1>\r\nCall-ID: s\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:201@127.0.0.1:7001>;expires=10\r\n\r\n",
    );
    // Without credentials this is challenged first: the registrar never reveals more.
    assert_eq!(status(&h.take_for(p)[0]), 401);
}

// Tests for calls.

#[test]
fn a_call_is_answered_bridged_and_recorded() {
    let mut h = Harness::new();
    let inv = answered_call(&mut h);
    // The box ACKs the callee's 2xx itself and answers the caller with its own SDP.
    let to_callee = h.take_for(phone(7002));
    assert!(first_line(&to_callee[0]).starts_with("ACK "), "{to_callee:?}");
    let ok = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&ok), 200);
    assert!(ok.contains("m=audio 20000 RTP/AVP 0 101"), "caller sees the relay's A port:\n{ok}");
    assert!(inv.contains("m=audio 20002 RTP/AVP 0 8 101"), "callee sees the relay's B port:\n{inv}");
    assert!(matches!(h.media[0], MediaCommand::Open { a_port: 20000, b_port: 20002, .. }));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::SetRemote { side: crate::media::Side::B, .. })));
    // Caller ACKs, talks for 30 s, hangs up.
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(7001),
        &format!(
            "ACK sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKack1\r\n\
             From: <sip:201@127.0.0.1>;tag=fc1\r\nTo: {to_tag}\r\nCall-ID: c1\r\nCSeq: 1 ACK\r\n\r\n"
        ),
    );
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
    h.advance(Duration::from_secs(30));
    assert!(h.take_for(phone(7001)).is_empty(), "no 2xx retransmission after the ACK");
    h.send(
        phone(7001),
        &format!(
            "BYE sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKbye1\r\n\
             From: <sip:201@127.0.0.1>;tag=fc1\r\nTo: {to_tag}\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n\r\n"
        ),
    );
    assert_eq!(status(&h.take_for(phone(7001))[0]), 200);
    let bye = h.take_for(phone(7002));
    assert!(first_line(&bye[0]).starts_with("BYE "), "{bye:?}");
    assert!(matches!(h.media.last(), Some(MediaCommand::Close { .. })));
    let cdr = &h.cdrs[0];
    assert_eq!(cdr.disposition, cdr::Disposition::Answered);
    assert_eq!(cdr.hangup_side, cdr::HangupSide::Caller);
    assert_eq!(cdr.talk_duration_ms, 30_000);
    assert_eq!((cdr.from.as_str(), cdr.to.as_str()), ("201", "202"));
    assert_eq!(cdr.legs.len(), 2);
    assert!(h.engine.calls(h.now).is_empty());
    assert_eq!(h.engine.rtp_ports_in_use().0, 0, "ports go back to the pool");
}

#[test]
fn the_2xx_is_retransmitted_until_acked_and_the_call_ends_without_an_ack() {
    let mut h = Harness::new();
    answered_call(&mut h);
    h.take_for(phone(7001));
    h.take_for(phone(7002));
    h.advance(Duration::from_millis(3600));
    // T1=0.5 s doubling: retransmissions at 0.5, 1.5, 3.5 s.
    let resent = h.take_for(phone(7001));
    assert_eq!(resent.len(), 3, "{resent:?}");
    assert!(resent.iter().all(|m| status(m) == 200));
    h.advance(Duration::from_secs(40));
    let to_callee = h.take_for(phone(7002));
    assert!(to_callee.iter().any(|m| first_line(m).starts_with("BYE ")), "callee hung up: {to_callee:?}");
    assert_eq!(h.cdrs.len(), 1);
    assert_eq!(h.cdrs[0].hangup_side, cdr::HangupSide::System);
}

#[test]
fn invite_retransmissions_are_absorbed() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    let inv = invite("201", "202", 7001, "c2", &sdp(4000, "0"));
    h.send(phone(7001), &inv);
    h.send(phone(7001), &inv);
    h.send(phone(7001), &inv);
    assert_eq!(h.take_for(phone(7002)).len(), 1, "one fork only");
    assert_eq!(h.engine.calls(h.now).len(), 1);
    assert!(h.take_for(phone(7001)).iter().all(|m| status(m) == 100));
}

#[test]
fn cancel_before_answer_gives_200_and_487_and_cancels_the_callee() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c3", &sdp(4000, "0")));
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 180, "t", None, 7002));
    h.take_for(phone(7001));
    h.send(
        phone(7001),
        "CANCEL sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKic3\r\n\
         Max-Forwards: 70\r\nFrom: <sip:201@127.0.0.1>;tag=fc3\r\nTo: <sip:202@127.0.0.1>\r\nCall-ID: c3\r\n\
         CSeq: 1 CANCEL\r\n\r\n",
    );
    let to_caller: Vec<u16> = h.take_for(phone(7001)).iter().map(|m| status(m)).collect();
    assert_eq!(to_caller, vec![200, 487]);
    let cancel = h.take_for(phone(7002)).pop().unwrap();
    assert!(first_line(&cancel).starts_with("CANCEL "), "{cancel}");
    // The callee's 487 is ACKed by the box even though the call is gone.
    h.send(phone(7002), &answer(&inv, 487, "t", None, 7002));
    let ack = h.take_for(phone(7002)).pop().unwrap();
    assert!(first_line(&ack).starts_with("ACK sip:202@127.0.0.1:7002"), "{ack}");
    assert_eq!(h.cdrs[0].disposition, cdr::Disposition::Cancelled);
}

#[test]
fn busy_from_the_callee_is_relayed() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c4", &sdp(4000, "0")));
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 486, "t", None, 7002));
    let last = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&last), 486);
    assert_eq!(h.cdrs[0].disposition, cdr::Disposition::Busy);
    assert_eq!(h.cdrs[0].hangup_side, cdr::HangupSide::Callee);
}

#[test]
fn without_call_waiting_a_second_call_gets_486() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.register("203", 7003);
    h.send(phone(7001), &invite("201", "203", 7001, "c5", &sdp(4000, "0")));
    h.send(phone(7002), &invite("202", "203", 7002, "c6", &sdp(4002, "0")));
    assert_eq!(status(h.take_for(phone(7002)).last().unwrap()), 486);
}

#[test]
fn unknown_numbers_get_404_and_unregistered_ones_480() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.send(phone(7001), &invite("201", "999", 7001, "c7", &sdp(4000, "0")));
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 404);
    h.send(phone(7001), &invite("201", "202", 7001, "c8", &sdp(4000, "0")));
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 480);
}

#[test]
fn an_offer_without_g711_gets_488() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c9", &sdp(4000, "18")));
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 488);
    assert!(h.take_for(phone(7002)).is_empty());
}

#[test]
fn an_unregistered_caller_is_challenged_with_407() {
    let mut h = Harness::new();
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c10", &sdp(4000, "0")));
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 407);
    assert!(h.take_for(phone(7002)).is_empty());
}

#[test]
fn no_answer_within_the_ring_timeout_gives_408_and_cancels() {
    let mut h = Harness::with(vec![ext("201", true), ext("202", true)], 20);
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c11", &sdp(4000, "0")));
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 180, "t", None, 7002));
    h.take_for(phone(7001));
    h.advance(Duration::from_secs(21));
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 408);
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("CANCEL ")));
    assert_eq!(h.cdrs[0].disposition, cdr::Disposition::NoAnswer);
}

#[test]
fn a_silent_callee_times_out_with_408_after_timer_b() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "c12", &sdp(4000, "0")));
    h.advance(Duration::from_secs(33));
    // Timer A retransmitted the INVITE: 1 + 6 sends within 32 s.
    let to_callee = h.take_for(phone(7002));
    assert!(to_callee.len() >= 6, "{}", to_callee.len());
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 408);
}

#[test]
fn every_contact_rings_and_the_first_answer_wins() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.register("202", 7012);
    h.send(phone(7001), &invite("201", "202", 7001, "c13", &sdp(4000, "0")));
    let inv1 = h.take_for(phone(7002)).pop().unwrap();
    let inv2 = h.take_for(phone(7012)).pop().unwrap();
    h.send(phone(7012), &answer(&inv2, 180, "t2", None, 7012));
    h.send(phone(7002), &answer(&inv1, 180, "t1", None, 7002));
    h.send(phone(7012), &answer(&inv2, 200, "t2", Some(&sdp(5000, "0")), 7012));
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("CANCEL ")), "loser cancelled");
    assert_eq!(status(h.take_for(phone(7001)).last().unwrap()), 200);
}

#[test]
fn without_music_on_hold_a_hold_reinvite_is_relayed_to_the_other_phone() {
    let mut h = Harness::new();
    h.engine.cfg.media.music_on_hold = false;
    answered_call(&mut h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(7001),
        &format!(
            "ACK sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKack\r\n\
             From: <sip:201@127.0.0.1>;tag=fc1\r\nTo: {to_tag}\r\nCall-ID: c1\r\nCSeq: 1 ACK\r\n\r\n"
        ),
    );
    let hold = sdp(4000, "0") + "a=sendonly\r\n";
    h.send(
        phone(7001),
        &format!(
            "INVITE sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKre1\r\n\
             From: <sip:201@127.0.0.1>;tag=fc1\r\nTo: {to_tag}\r\nCall-ID: c1\r\nCSeq: 2 INVITE\r\n\
             Contact: <sip:201@127.0.0.1:7001>\r\nContent-Type: application/sdp\r\n\r\n{hold}"
        ),
    );
    let reinv = h.take_for(phone(7002)).pop().unwrap();
    assert!(first_line(&reinv).starts_with("INVITE "), "{reinv}");
    assert!(reinv.contains("a=sendonly"), "{reinv}");
    h.send(phone(7002), &answer(&reinv, 200, "callee", Some(&(sdp(5000, "0") + "a=recvonly\r\n")), 7002));
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("ACK ")));
    let ok2 = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&ok2), 200);
    assert!(ok2.contains("a=recvonly"), "{ok2}");
}

#[test]
fn a_bye_from_the_callee_ends_the_call() {
    let mut h = Harness::new();
    let inv = answered_call(&mut h);
    h.take_for(phone(7001));
    h.take_for(phone(7002));
    let Message::Request(r) = parsed(&inv) else { panic!() };
    h.send(
        phone(7002),
        &format!(
            "BYE sip:201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7002;branch=z9hG4bKcb\r\n\
             From: {};tag=callee\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 5 BYE\r\n\r\n",
            r.common.header("To").unwrap(),
            r.common.header("From").unwrap(),
            r.common.call_id
        ),
    );
    assert_eq!(status(&h.take_for(phone(7002))[0]), 200);
    assert!(first_line(&h.take_for(phone(7001))[0]).starts_with("BYE "));
    assert_eq!(h.cdrs[0].hangup_side, cdr::HangupSide::Callee);
}

// Tests for bad input.

#[test]
fn garbage_never_panics_and_bad_requests_get_400() {
    let mut h = Harness::new();
    let p = phone(7050);
    h.send(p, "INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKg\r\nCSeq: 1 INVITE\r\n\r\n");
    // The answer copies what it can; it lacks From like the request did.
    assert!(h.take_for(p)[0].starts_with("SIP/2.0 400 Bad Request\r\n"));
    for junk in [&b"\x00\xff\xfe"[..], b"SIP/2.0 200\r\n\r\n", b"\r\n\r\n", b"INVITE", b""] {
        h.engine.handle_datagram(h.now, p, junk);
        h.drain();
    }
    h.send(p, "FOO sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKf\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: f\r\nCSeq: 1 FOO\r\n\r\n");
    assert_eq!(status(&h.take_for(p)[0]), 501);
    h.send(p, "OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKo\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\n\r\n");
    assert_eq!(status(&h.take_for(p)[0]), 200);
}

#[test]
fn un_register_with_expires_zero_removes_the_binding() {
    let mut h = Harness::new();
    h.register("201", 7001);
    let p = phone(7001);
    let unreg = |auth: &str, cseq: u32| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKu{cseq}\r\n\
             From: <sip:201@127.0.0.1>;tag=u\r\nTo: <sip:201@127.0.0.1>\r\nCall-ID: u\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: *\r\nExpires: 0\r\n{auth}\r\n"
        )
    };
    h.send(p, &unreg("", 1));
    let challenge = h.take_for(p).pop().unwrap();
    let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let auth = authorization("REGISTER", "201", "pw-201-secret", &nonce, "sip:127.0.0.1");
    h.send(p, &unreg(&format!("Authorization: {auth}\r\n"), 2));
    assert_eq!(status(&h.take_for(p)[0]), 200);
    assert!(h.engine.registrations(h.now).is_empty());
}

#[test]
fn sha256_credentials_are_accepted() {
    use sha2::Sha256;
    let sha = |s: &str| hex(&Sha256::digest(s.as_bytes()));
    let mut h = Harness::new();
    let p = phone(7001);
    let reg = |auth: &str, cseq: u32| {
        format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKs{cseq}\r\n\
             From: <sip:201@127.0.0.1>;tag=s\r\nTo: <sip:201@127.0.0.1>\r\nCall-ID: s\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:201@127.0.0.1:7001>\r\n{auth}\r\n"
        )
    };
    h.send(p, &reg("", 1));
    let challenge = h.take_for(p).pop().unwrap();
    assert!(challenge.contains("algorithm=SHA-256"), "{challenge}");
    let nonce = challenge.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let ha1 = sha("201:hakoden:pw-201-secret");
    let ha2 = sha("REGISTER:sip:127.0.0.1");
    let resp = sha(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    let auth = format!(
        "Authorization: Digest username=\"201\", realm=\"hakoden\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", \
         response=\"{resp}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"abc\"\r\n"
    );
    h.send(p, &reg(&auth, 2));
    assert_eq!(status(&h.take_for(p)[0]), 200);
}

#[test]
fn a_stale_nonce_with_the_right_password_is_rechallenged_not_refused() {
    let mut h = Harness::new();
    let p = phone(7001);
    let auth =
        authorization("REGISTER", "201", "pw-201-secret", "1.0123456789abcdef01234567", "sip:127.0.0.1");
    h.send(
        p,
        &format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKst\r\n\
             From: <sip:201@127.0.0.1>;tag=s\r\nTo: <sip:201@127.0.0.1>\r\nCall-ID: st\r\nCSeq: 1 REGISTER\r\n\
             Contact: <sip:201@127.0.0.1:7001>\r\nAuthorization: {auth}\r\n\r\n"
        ),
    );
    let m = h.take_for(p).pop().unwrap();
    assert_eq!(status(&m), 401);
    assert!(m.contains("stale=true"), "{m}");
    assert_eq!(h.engine.counters().auth_failures, 0);
}

#[test]
fn an_offer_with_video_is_answered_with_the_video_stream_rejected() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    let offer = sdp(4000, "0") + "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    h.send(phone(7001), &invite("201", "202", 7001, "cv", &offer));
    let inv = h.take_for(phone(7002)).pop().unwrap();
    assert!(!inv.contains("m=video"), "the callee is offered audio only:\n{inv}");
    h.send(phone(7002), &answer(&inv, 200, "t", Some(&sdp(5000, "0")), 7002));
    let ok = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&ok), 200);
    let m_lines: Vec<&str> = ok.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines, vec!["m=audio 20000 RTP/AVP 0", "m=video 0 RTP/AVP 96"], "{ok}");
}

#[test]
fn a_late_offer_is_completed_with_the_answer_from_the_callers_ack() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    let inv = invite("201", "202", 7001, "lo", "").replace("Content-Type: application/sdp\r\n", "");
    h.send(phone(7001), &inv);
    let to_callee = h.take_for(phone(7002)).pop().unwrap();
    assert!(!to_callee.contains("m=audio"), "no offer to the callee:\n{to_callee}");
    // The callee offers in its 200; the box must not ACK it yet.
    h.send(phone(7002), &answer(&to_callee, 200, "t", Some(&sdp(5000, "8 101")), 7002));
    assert!(h.take_for(phone(7002)).is_empty(), "ACK held back until the caller answers");
    let ok = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&ok), 200);
    assert!(ok.contains("m=audio 20000 RTP/AVP 8 101"), "our offer to the caller:\n{ok}");
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    let ack = format!(
        "ACK sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKlo\r\n\
         From: <sip:201@127.0.0.1>;tag=flo\r\nTo: {to_tag}\r\nCall-ID: lo\r\nCSeq: 1 ACK\r\n\
         Content-Type: application/sdp\r\n\r\n{}",
        sdp(4000, "8 101")
    );
    h.send(phone(7001), &ack);
    let acks = h.take_for(phone(7002));
    assert!(first_line(&acks[0]).starts_with("ACK "), "{acks:?}");
    assert!(acks[0].contains("m=audio 20002 RTP/AVP 8 101"), "the answer reaches the callee:\n{}", acks[0]);
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::SetRemote { side: crate::media::Side::A, .. })));
}

#[test]
fn finished_calls_leave_no_state_behind_once_the_timers_have_run() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.register("201", 7001);
        h.register("202", 7002);
        let call = format!("leak{i}");
        h.send(phone(7001), &invite("201", "202", 7001, &call, &sdp(4000, "0")));
        let inv = h.take_for(phone(7002)).pop().unwrap();
        h.send(phone(7002), &answer(&inv, 200, "t", Some(&sdp(5000, "0")), 7002));
        let ok = h.take_for(phone(7001)).pop().unwrap();
        let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
        for (m, cseq, b) in [("ACK", 1, "a"), ("BYE", 2, "b")] {
            h.send(
                phone(7001),
                &format!(
                    "{m} sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bK{b}{call}\r\n\
                     From: <sip:201@127.0.0.1>;tag=f{call}\r\nTo: {to_tag}\r\nCall-ID: {call}\r\nCSeq: {cseq} {m}\r\n\r\n"
                ),
            );
        }
        let bye = h.take_for(phone(7002)).into_iter().find(|m| first_line(m).starts_with("BYE")).unwrap();
        h.send(phone(7002), &answer(&bye, 200, "t", None, 7002));
    }
    assert_eq!(h.cdrs.len(), 5);
    h.advance(Duration::from_secs(120));
    let (calls, server, client, purposes, timers) = h.engine.table_sizes();
    assert_eq!((calls, server, client, purposes), (0, 0, 0, 0), "timers left: {timers}");
    assert!(timers <= 1, "only the registrar sweep may stay armed: {timers}");
}

/// Sends the caller's ACK for the 200 it got; returns the To header (with the box's tag).
fn ack_caller(h: &mut Harness, ok: &str, call: &str) -> String {
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(7001),
        &format!(
            "ACK sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKack{call}\r\n\
             From: <sip:201@127.0.0.1>;tag=f{call}\r\nTo: {to_tag}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\n\r\n"
        ),
    );
    to_tag
}

fn in_dialog_from_caller(method: &str, cseq: u32, to_tag: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bK{method}{cseq}\r\n\
         From: <sip:201@127.0.0.1>;tag=fc1\r\nTo: {to_tag}\r\nCall-ID: c1\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:201@127.0.0.1:7001>\r\n{extra}\r\n{body}"
    )
}

// Tests for media features (issue 3).

#[test]
fn hold_plays_music_to_the_other_party_and_resume_stops_it() {
    let mut h = Harness::new();
    answered_call(&mut h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(&mut h, &ok, "c1");
    let hold = sdp(4000, "0") + "a=sendonly\r\n";
    h.send(
        phone(7001),
        &in_dialog_from_caller("INVITE", 2, &to_tag, "Content-Type: application/sdp\r\n", &hold),
    );
    let answer = h.take_for(phone(7001)).pop().unwrap();
    assert_eq!(status(&answer), 200);
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(h.take_for(phone(7002)).is_empty(), "the callee's phone is not bothered");
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: crate::media::Side::B, looped: true, clips, .. } if clips == &vec![crate::media::Clip::MusicOnHold])));
    assert_eq!(h.engine.calls(h.now)[0].state, "on hold");
    let resume = sdp(4000, "0") + "a=sendrecv\r\n";
    h.send(
        phone(7001),
        &in_dialog_from_caller("INVITE", 3, &to_tag, "Content-Type: application/sdp\r\n", &resume),
    );
    assert!(h.take_for(phone(7001)).pop().unwrap().contains("a=sendrecv"));
    assert!(matches!(h.media.last(), Some(MediaCommand::StopPlay { side: crate::media::Side::B, .. })));
    assert_eq!(h.engine.calls(h.now)[0].state, "talking");
}

#[test]
fn an_answered_call_tells_the_relay_both_codecs_for_dtmf() {
    let mut h = Harness::new();
    answered_call(&mut h);
    let codecs: Vec<_> = h
        .media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::Codec { side, audio_pt, telephone_event_pt, inband_dtmf, .. } => {
                Some((*side, *audio_pt, *telephone_event_pt, *inband_dtmf))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        codecs,
        vec![(crate::media::Side::A, 0, Some(101), true), (crate::media::Side::B, 0, Some(101), true)]
    );
}

#[test]
fn always_recorded_extensions_are_recorded_announced_and_linked_from_the_cdr() {
    let mut exts = vec![ext("201", true), ext("202", true)];
    exts[1].record = crate::config::RecordPolicy::Always;
    let mut h = Harness::with(exts, 60);
    answered_call(&mut h);
    let path = h
        .media
        .iter()
        .find_map(|m| match m {
            MediaCommand::Record { path, .. } => Some(path.clone()),
            _ => None,
        })
        .expect("recording started");
    assert!(path.ends_with("/call-1.wav"), "{path}");
    // The callee is recorded by policy: the caller hears the announcement.
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Play { side: crate::media::Side::A, clips, .. }
        if clips == &vec![crate::media::Clip::Prompt { id: "rec.announce".into(), lang: crate::media::prompts::Lang::Ja }])));
    let ok = h.take_for(phone(7001)).pop().unwrap();
    let to_tag = ack_caller(&mut h, &ok, "c1");
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert_eq!(h.cdrs[0].recordings, vec![path]);
}

#[test]
fn star_one_toggles_an_on_demand_recording_for_allowed_extensions_only() {
    let mut exts = vec![ext("201", true), ext("202", true)];
    exts[0].record = crate::config::RecordPolicy::OnDemand;
    let mut h = Harness::with(exts, 60);
    answered_call(&mut h);
    let digit = |d: char| crate::media::dtmf::DigitEvent {
        digit: d,
        duration_ms: 100,
        source: crate::media::dtmf::DtmfSource::Rfc4733,
    };
    let press = |h: &mut Harness, side, d| {
        h.engine.handle_media_event(
            h.now,
            crate::media::MediaEvent::Digit { relay: crate::media::RelayId(1), side, event: digit(d) },
        );
        h.drain();
    };
    // The callee (not allowed) presses *1: nothing.
    press(&mut h, crate::media::Side::B, '*');
    press(&mut h, crate::media::Side::B, '1');
    assert!(!h.media.iter().any(|m| matches!(m, MediaCommand::Record { .. })));
    // The caller (on demand) presses *1: recording; again: stop.
    press(&mut h, crate::media::Side::A, '*');
    press(&mut h, crate::media::Side::A, '1');
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::Record { .. })));
    assert!(h.engine.calls(h.now)[0].recording);
    press(&mut h, crate::media::Side::A, '*');
    press(&mut h, crate::media::Side::A, '1');
    assert!(matches!(h.media.last(), Some(MediaCommand::StopRecord { .. })));
    assert_eq!(h.engine.calls(h.now)[0].digits, "*1*1*1");
}

#[test]
fn info_dtmf_is_reported_and_still_relayed() {
    let mut h = Harness::new();
    answered_call(&mut h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(&mut h, &ok, "c1");
    h.send(
        phone(7001),
        &in_dialog_from_caller(
            "INFO",
            2,
            &to_tag,
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=7\r\nDuration=160\r\n",
        ),
    );
    assert_eq!(h.engine.calls(h.now)[0].digits, "7");
    let relayed = h.take_for(phone(7002)).pop().unwrap();
    assert!(first_line(&relayed).starts_with("INFO "), "{relayed}");
}

#[test]
fn dialling_a_conference_room_is_answered_by_the_box_and_joins_the_room() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.send(phone(7001), &invite("201", "9201", 7001, "conf1", &sdp(4000, "8 0 101")));
    let msgs = h.take_for(phone(7001));
    let ok = msgs.last().unwrap();
    assert_eq!(status(ok), 200);
    assert!(ok.contains("m=audio 20000 RTP/AVP 8 101"), "one voice codec + telephone-event:\n{ok}");
    assert!(h.media.iter().any(|m| matches!(
        m,
        MediaCommand::JoinRoom { room: 9201, port: 20000, audio_pt: 8, telephone_event_pt: Some(101), .. }
    )));
    assert!(!h.media.iter().any(|m| matches!(m, MediaCommand::Open { .. })));
    assert_eq!(h.engine.calls(h.now)[0].state, "conference");
    let to_tag = ok.split("To: ").nth(1).unwrap().lines().next().unwrap().to_string();
    h.send(
        phone(7001),
        &format!(
            "BYE sip:9201@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKcb\r\n\
             From: <sip:201@127.0.0.1>;tag=fconf1\r\nTo: {to_tag}\r\nCall-ID: conf1\r\nCSeq: 2 BYE\r\n\r\n"
        ),
    );
    assert_eq!(status(&h.take_for(phone(7001))[0]), 200);
    assert!(matches!(h.media.last(), Some(MediaCommand::Close { .. })));
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
}

#[test]
fn star_three_calls_a_third_extension_into_a_three_way_room() {
    use crate::media::{MediaEvent, RelayId, Side};
    let mut h = Harness::new();
    h.register("203", 7003);
    answered_call(&mut h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(&mut h, &ok, "c1");
    for d in ['*', '3', '2', '0', '3', '#'] {
        let event = crate::media::dtmf::DigitEvent {
            digit: d,
            duration_ms: 100,
            source: crate::media::dtmf::DtmfSource::Rfc4733,
        };
        h.engine.handle_media_event(h.now, MediaEvent::Digit { relay: RelayId(1), side: Side::A, event });
        h.drain();
    }
    let joins: Vec<(u64, u32, u16)> = h
        .media
        .iter()
        .filter_map(|m| match m {
            MediaCommand::JoinRoom { relay, room, port, .. } => Some((relay.0, *room, *port)),
            _ => None,
        })
        .collect();
    assert_eq!(joins, vec![(1, 1_000_001, 20000), (1 | super::call::PARTICIPANT_B, 1_000_001, 20002)]);
    let inv = h.take_for(phone(7003)).pop().expect("the third party is called");
    assert!(inv.starts_with("INVITE sip:203@127.0.0.1:7003"), "{inv}");
    assert!(inv.contains("m=audio 20004 RTP/AVP 0 101"), "{inv}");
    assert!(inv.contains("From: <sip:201@"), "the initiator calls: {inv}");
    h.send(phone(7003), &answer(&inv, 200, "third", Some(&sdp(6000, "0 101")), 7003));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("ACK ")));
    assert!(h.media.iter().any(|m| matches!(m, MediaCommand::JoinRoom { relay, port: 20004, .. } if relay.0 == 1 | super::call::PARTICIPANT_C)));
    assert_eq!(h.engine.calls(h.now)[0].state, "conference");
    // The caller hangs up: the callee and the third party get BYE, every participant leaves.
    h.send(phone(7001), &in_dialog_from_caller("BYE", 2, &to_tag, "", ""));
    assert!(h.take_for(phone(7002)).iter().any(|m| first_line(m).starts_with("BYE ")));
    assert!(h.take_for(phone(7003)).iter().any(|m| first_line(m).starts_with("BYE ")));
    let closes = h.media.iter().filter(|m| matches!(m, MediaCommand::Close { .. })).count();
    assert_eq!(closes, 4, "bridge, then A, B and C leave the room");
    assert_eq!(h.engine.rtp_ports_in_use().0, 0);
}

#[test]
fn the_callee_side_is_decoded_with_the_codec_the_callee_chose() {
    let mut h = Harness::new();
    h.register("201", 7001);
    h.register("202", 7002);
    h.send(phone(7001), &invite("201", "202", 7001, "cx", &sdp(4000, "0 8 101")));
    let inv = h.take_for(phone(7002)).pop().unwrap();
    h.send(phone(7002), &answer(&inv, 200, "t", Some(&sdp(5000, "8 101")), 7002));
    let b = h.media.iter().find_map(|m| match m {
        MediaCommand::Codec { side: crate::media::Side::B, audio_pt, .. } => Some(*audio_pt),
        _ => None,
    });
    assert_eq!(b, Some(8));
}

#[test]
fn a_press_sent_by_info_and_rfc4733_is_reported_once() {
    use crate::media::dtmf::{DigitEvent, DtmfSource};
    let mut h = Harness::new();
    answered_call(&mut h);
    let ok = h.take_for(phone(7001)).pop().unwrap();
    h.take_for(phone(7002));
    let to_tag = ack_caller(&mut h, &ok, "c1");
    h.send(
        phone(7001),
        &in_dialog_from_caller("INFO", 2, &to_tag, "Content-Type: application/dtmf\r\n", "4"),
    );
    let ev = DigitEvent { digit: '4', duration_ms: 100, source: DtmfSource::Rfc4733 };
    h.engine.handle_media_event(
        h.now + Duration::from_millis(100),
        crate::media::MediaEvent::Digit {
            relay: crate::media::RelayId(1),
            side: crate::media::Side::A,
            event: ev,
        },
    );
    assert_eq!(h.engine.calls(h.now)[0].digits, "4");
    // A real second press later counts.
    h.engine.handle_media_event(
        h.now + Duration::from_secs(2),
        crate::media::MediaEvent::Digit {
            relay: crate::media::RelayId(1),
            side: crate::media::Side::A,
            event: ev,
        },
    );
    assert_eq!(h.engine.calls(h.now)[0].digits, "44");
}

// Ring groups, forwarding, pickup and hot desking have their own file.
#[path = "dialplan_tests.rs"]
mod dialplan_tests;
// Transfer and park tests live beside their modules' state, sharing this harness.
#[path = "transfer_tests.rs"]
mod transfer_tests;
// Voicemail: the box answers into a mailbox (`voicemail_call.rs`).
#[path = "voicemail_tests.rs"]
mod voicemail_tests;
