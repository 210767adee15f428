//! Call setups per second through the sans-IO engine alone (no sockets, no SIPp): each call is
//! INVITE, 100, INVITE to the callee, 180, 200, ACK, 200, ACK, BYE, 200, BYE, 200 as real SIP
//! text, parsed and written by the box's own code. Measures the engine's CPU cost per call, the
//! upper bound of what the SIP side of the box can do on one core.
//!
//! `cargo run --release --example engine_bench -- [calls]`
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use hakoden::config::{ExtensionConfig, PortRange};
use hakoden::engine::{Engine, EngineConfig, Output};
use hakoden::sip::{Peer, Transport};
use std::time::{Duration, Instant};

fn main() {
    let calls: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let t0 = Instant::now();
    let exts: Vec<ExtensionConfig> = ["201", "202"]
        .iter()
        .map(|n| ExtensionConfig {
            number: n.to_string(),
            name: n.to_string(),
            password: "bench-password".into(),
            call_waiting: true,
            record: Default::default(),
        })
        .collect();
    let cfg = EngineConfig {
        advertise: "127.0.0.1".parse().unwrap(),
        ring_timeout: Duration::from_secs(60),
        secret: [1; 32],
        rtp_ports: PortRange { lo: 10000, hi: 20000 },
        wall_anchor: (t0, 0),
        ..EngineConfig::for_tests(t0)
    };
    let mut e = Engine::new(cfg, &exts);
    let caller = Peer { transport: Transport::Udp, addr: "127.0.0.1:7001".parse().unwrap() };
    let callee = Peer { transport: Transport::Udp, addr: "127.0.0.1:7002".parse().unwrap() };
    register(&mut e, t0, caller, "201");
    register(&mut e, t0, callee, "202");
    let mut now = t0;
    let start = Instant::now();
    let mut sent = 0u64;
    for i in 0..calls {
        now += Duration::from_millis(2);
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        let invite = format!(
            "INVITE sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKb{i}\r\nMax-Forwards: 70\r\n\
             From: <sip:201@127.0.0.1>;tag=f{i}\r\nTo: <sip:202@127.0.0.1>\r\nCall-ID: bench{i}\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:201@127.0.0.1:7001>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        e.handle_datagram(now, caller, invite.as_bytes());
        let out = drain(&mut e, &mut sent);
        let inv = out.iter().find(|(p, m)| *p == callee && m.starts_with("INVITE")).expect("fork").1.clone();
        e.handle_datagram(now, callee, reply(&inv, 180, "").as_bytes());
        drain(&mut e, &mut sent);
        e.handle_datagram(now, callee, reply(&inv, 200, sdp).as_bytes());
        let out = drain(&mut e, &mut sent);
        let ok =
            out.iter().find(|(p, m)| *p == caller && m.starts_with("SIP/2.0 200")).expect("200").1.clone();
        let to = header(&ok, "To");
        let ack = format!(
            "ACK sip:202@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7001;branch=z9hG4bKa{i}\r\n\
             From: <sip:201@127.0.0.1>;tag=f{i}\r\nTo: {to}\r\nCall-ID: bench{i}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        e.handle_datagram(now, caller, ack.as_bytes());
        let bye = ack.replace("ACK sip", "BYE sip").replace("1 ACK", "2 BYE").replace("z9hG4bKa", "z9hG4bKy");
        e.handle_datagram(now, caller, bye.as_bytes());
        let out = drain(&mut e, &mut sent);
        let bye_b = out.iter().find(|(p, m)| *p == callee && m.starts_with("BYE")).expect("bye").1.clone();
        e.handle_datagram(now, callee, reply(&bye_b, 200, "").as_bytes());
        drain(&mut e, &mut sent);
        if i % 1000 == 0 {
            e.handle_timeout(now);
            drain(&mut e, &mut sent);
        }
    }
    let elapsed = start.elapsed();
    let per_call = elapsed / calls as u32;
    println!(
        "{calls} calls in {:.3} s: {:.0} call setups/s on one core, {:.1} µs per call, {} messages out",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64(),
        per_call.as_secs_f64() * 1e6,
        sent
    );
}

fn register(e: &mut Engine, now: Instant, p: Peer, ext: &str) {
    let port = p.addr.port();
    let reg = format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{port}\r\n\
         From: <sip:{ext}@127.0.0.1>;tag=r\r\nTo: <sip:{ext}@127.0.0.1>\r\nCall-ID: r{port}\r\nCSeq: 1 REGISTER\r\n\
         Contact: <sip:{ext}@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
    );
    e.handle_datagram(now, p, reg.as_bytes());
    let mut n = 0;
    let out = drain(e, &mut n);
    let nonce = out[0].1.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let md5 = |s: &str| {
        use md5::{Digest, Md5};
        Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let ha1 = md5(&format!("{ext}:hakoden:bench-password"));
    let ha2 = md5("REGISTER:sip:127.0.0.1");
    let resp = md5(&format!("{ha1}:{nonce}:{ha2}"));
    let reg2 = reg.replace("CSeq: 1", "CSeq: 2").replace("branch=z9hG4bKr", "branch=z9hG4bKs").replace(
        "Content-Length: 0",
        &format!("Authorization: Digest username=\"{ext}\", realm=\"hakoden\", nonce=\"{nonce}\", uri=\"sip:127.0.0.1\", response=\"{resp}\"\r\nContent-Length: 0"),
    );
    e.handle_datagram(now, p, reg2.as_bytes());
    drain(e, &mut n);
}

fn drain(e: &mut Engine, sent: &mut u64) -> Vec<(Peer, String)> {
    let mut v = Vec::new();
    while let Some(o) = e.poll_output() {
        if let Output::Transmit { peer, data } = o {
            *sent += 1;
            v.push((peer, String::from_utf8_lossy(&data).into_owned()));
        }
    }
    v
}

fn header(msg: &str, name: &str) -> String {
    msg.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_default().to_string()
}

fn reply(req: &str, code: u16, body: &str) -> String {
    let mut s = format!("SIP/2.0 {code} X\r\n");
    for l in req.lines().filter(|l| l.starts_with("Via: ")) {
        s.push_str(l);
        s.push_str("\r\n");
    }
    let to = header(req, "To");
    let to = if to.contains("tag=") { to } else { format!("{to};tag=callee") };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:202@127.0.0.1:7002>\r\n",
        header(req, "From"),
        header(req, "Call-ID"),
        header(req, "CSeq")
    ));
    if body.is_empty() {
        s.push_str("Content-Length: 0\r\n\r\n");
    } else {
        s.push_str(&format!("Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    }
    s
}
