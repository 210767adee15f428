//! The engine on arbitrary datagrams: it must never panic, whatever arrives and in any order.
//!
//! The input is split at `\0\0` into up to [`MAX_DATAGRAMS`] datagrams, fed one after another
//! to one engine, alternating between two phones (201 and 202, both registered before the input
//! runs, so INVITEs from them are trusted and calls can get as far as ringing and talking).
//! Virtual time moves [`STEP`] between datagrams and every timer is run at the end, so
//! retransmission and timeout paths run too. Every output is drained.
#![no_main]
#![allow(clippy::disallowed_methods)] // fuzz driver: reads the clock once for a base Instant

use hakoden::config::{ExtensionConfig, PortRange};
use hakoden::engine::{Engine, EngineConfig, Output};
use hakoden::sip::{Peer, Transport};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Datagrams per input: enough for a call set-up and tear-down with retransmissions.
const MAX_DATAGRAMS: usize = 16;
/// Virtual time between datagrams: long enough that T1-based timers fire between them.
const STEP: Duration = Duration::from_millis(700);
/// The engine's realm and the phones' password.
const REALM: &str = "hakoden";
const PASSWORD: &str = "fuzz";
/// The two phones: extension and source address.
const PHONES: [(&str, [u8; 4], u16); 2] = [("201", [10, 0, 0, 21], 5060), ("202", [10, 0, 0, 22], 5062)];

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn peer(i: usize) -> Peer {
    let (_, ip, port) = PHONES[i % PHONES.len()];
    Peer { transport: Transport::Udp, addr: SocketAddr::from((ip, port)) }
}

fn hex_md5(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn drain(engine: &mut Engine) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    while let Some(out) = engine.poll_output() {
        if let Output::Transmit { data, .. } = out {
            sent.push(data);
        }
    }
    sent
}

/// Registers phone `i` with an MD5 digest answer to the engine's challenge.
fn register(engine: &mut Engine, now: Instant, i: usize) {
    let (ext, _, _) = PHONES[i];
    let p = peer(i);
    let msg = |cseq: u32, auth: &str| {
        format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-r{ext}-{cseq}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@{REALM}>;tag=f{ext}\r\nTo: <sip:{ext}@{REALM}>\r\n\
             Call-ID: reg{ext}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@{}>\r\n{auth}\
             Content-Length: 0\r\n\r\n",
            p.addr, p.addr
        )
    };
    engine.handle_datagram(now, p, msg(1, "").as_bytes());
    let nonce = drain(engine).into_iter().find_map(|d| {
        let text = String::from_utf8_lossy(&d).into_owned();
        let at = text.find("nonce=\"")? + 7;
        let rest = &text[at..];
        Some(rest[..rest.find('"')?].to_string())
    });
    let Some(nonce) = nonce else { return };
    let uri = format!("sip:{REALM}");
    let ha1 = hex_md5(&format!("{ext}:{REALM}:{PASSWORD}"));
    let ha2 = hex_md5(&format!("REGISTER:{uri}"));
    let response = hex_md5(&format!("{ha1}:{nonce}:{ha2}"));
    let auth = format!(
        "Authorization: Digest username=\"{ext}\", realm=\"{REALM}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm=MD5\r\n"
    );
    engine.handle_datagram(now, p, msg(2, &auth).as_bytes());
    drain(engine);
}

fn engine(now: Instant) -> Engine {
    let cfg = EngineConfig {
        realm: REALM.into(),
        advertise: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        secret: [3; 32],
        rtp_ports: PortRange { lo: 40_000, hi: 40_099 },
        ..EngineConfig::for_tests(now)
    };
    let exts: Vec<ExtensionConfig> = PHONES
        .iter()
        .map(|(n, _, _)| ExtensionConfig {
            number: (*n).into(),
            name: format!("Phone {n}"),
            password: PASSWORD.into(),
            call_waiting: true,
            record: Default::default(),
        })
        .collect();
    let mut e = Engine::new(cfg, &exts);
    for i in 0..PHONES.len() {
        register(&mut e, now, i);
    }
    e
}

/// Splits at `\0\0`, at most [`MAX_DATAGRAMS`] parts (the last keeps the rest).
fn datagrams(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < MAX_DATAGRAMS {
        match rest.windows(2).position(|w| w == [0, 0]) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + 2..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let mut now = base();
    let mut engine = engine(now);
    for (i, dgram) in datagrams(data).into_iter().enumerate() {
        now += STEP;
        engine.handle_timeout(now);
        drain(&mut engine);
        engine.handle_datagram(now, peer(i), dgram);
        drain(&mut engine);
    }
    // Run every timer out: retransmissions, ring timeout, transaction and registration expiry.
    for _ in 0..64 {
        match engine.poll_timeout() {
            Some(at) if at <= now + Duration::from_secs(7200) => {
                now = now.max(at);
                engine.handle_timeout(now);
                drain(&mut engine);
            }
            _ => break,
        }
    }
    let _ = engine.calls(now);
    let _ = engine.registrations(now);
});
