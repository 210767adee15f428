//! The PROTOS c07-sip robustness suite (OUSPG, 4,527 INVITE cases): every case is sent over
//! real UDP to one running box, and fed to an in-process [`Engine`].
//!
//! The suite's own pass criterion: the box never crashes or hangs, answers or drops each case,
//! and still answers a valid request afterwards. Over UDP the liveness check is a valid OPTIONS
//! that must get 200, sent every [`LIVENESS_EVERY`] cases and after the last. The in-process run
//! catches panics with a backtrace and also drives every timer to its end.
//!
//! Case files are templates (`../shared/sip-test-vectors/protos-c07-sip/README.md`): each holds
//! `<length> <message><length> <teardown>`, with `<To>`, `<From>`, ... placeholders that are
//! substituted here, and `<Content-Length>` recomputed from the substituted body. The teardown
//! method is ACK: after the box's final answer to an INVITE, ACK is what a real caller sends,
//! and it stops the box retransmitting that answer (RFC 3261 §17.2.1).
#![allow(clippy::disallowed_methods)] // the test reads the clock to pace datagrams

mod common;

use common::TestBox;
use hakoden::config::ExtensionConfig;
use hakoden::engine::{Engine, EngineConfig, Output};
use hakoden::sip::message::{self, Message};
use hakoden::sip::{Peer, Transport};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The case directory, relative to the crate root.
const CASES_DIR: &str = "../shared/sip-test-vectors/protos-c07-sip/cases";
/// The number of cases in c07-sip.
const CASES: usize = 4527;
/// Liveness is checked after this many cases (and after the last one).
const LIVENESS_EVERY: usize = 50;
/// How long a liveness OPTIONS may take to be answered: generous for a debug build on a busy CI
/// machine; a healthy box answers in well under a millisecond.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(3);
/// Liveness OPTIONS sent before giving up (a datagram may be lost on a loaded machine).
const LIVENESS_TRIES: u32 = 3;
/// Time slot per case (message plus teardown): 4,527 cases take about 18 s, far below what the
/// box handles, so loopback never drops a datagram for lack of buffer.
const PACE: Duration = Duration::from_millis(4);
/// How long to wait for late answers after the last case.
const SETTLE: Duration = Duration::from_secs(1);
/// Largest UDP payload over IPv4; a few cases are bigger and cannot be sent as one datagram.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// Receive buffer: the largest datagram.
const RECV_BUFFER: usize = 65_536;
/// Extensions the box is started with (the cases call an unknown user).
const EXTENSIONS: &[(&str, &str)] = &[("201", "protos-201")];
/// The user the cases call.
const CALLEE: &str = "c07";
/// The teardown method substituted for `<Teardown-Method>`.
const TEARDOWN: &str = "ACK";

fn cases_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES_DIR);
    assert!(
        dir.is_dir(),
        "PROTOS c07-sip cases not found at {} (expected the shared sip-test-vectors checkout next \
         to the repository, see its README.md)",
        dir.display()
    );
    dir
}

/// One case file: the message and the teardown templates.
struct Case {
    name: String,
    message: Vec<u8>,
    teardown: Vec<u8>,
}

/// Reads `<decimal length> <bytes>` at the start of `data`; returns the bytes and the rest.
fn take_record(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = data.iter().position(|b| *b == b' ')?;
    let len: usize = std::str::from_utf8(data.get(..space)?).ok()?.parse().ok()?;
    let rest = data.get(space + 1..)?;
    Some((rest.get(..len)?, rest.get(len..)?))
}

fn load_cases() -> Vec<Case> {
    let dir = cases_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), CASES, "c07-sip has {CASES} cases");
    names
        .into_iter()
        .map(|name| {
            let data = std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("read case {name}: {e}"));
            let (message, rest) =
                take_record(&data).unwrap_or_else(|| panic!("case {name}: no `<length> <message>` record"));
            let (teardown, _) =
                take_record(rest).unwrap_or_else(|| panic!("case {name}: no `<length> <teardown>` record"));
            Case { name, message: message.to_vec(), teardown: teardown.to_vec() }
        })
        .collect()
}

fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data.get(i..i + from.len()) == Some(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Fills in a template for case `index` sent from `local` to the box at `target`.
fn instantiate(template: &[u8], index: usize, local: SocketAddr, target: SocketAddr) -> Vec<u8> {
    let ip = local.ip().to_string();
    let subs: [(&str, String); 9] = [
        ("<To>", format!("{CALLEE}@{target}")),
        ("<From>", format!("protos@{local}")),
        ("<From-Address>", ip.clone()),
        ("<From-IP>", ip),
        ("<Local-Port>", local.port().to_string()),
        ("<Branch-ID>", format!("{index:07}")),
        ("<Call-ID>", format!("c07-{index:07}")),
        ("<CSeq>", (index + 1).to_string()),
        ("<Teardown-Method>", TEARDOWN.to_string()),
    ];
    let mut out = template.to_vec();
    for (from, to) in &subs {
        out = replace_all(&out, from.as_bytes(), to.as_bytes());
    }
    let body_len = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |p| out.len() - p - 4);
    replace_all(&out, b"<Content-Length>", body_len.to_string().as_bytes())
}

/// The case a box answer belongs to, from the Call-ID `c07-NNNNNNN@...` we put in.
fn case_of(call_id: &str) -> Option<usize> {
    call_id.strip_prefix("c07-")?.get(..7)?.parse().ok()
}

fn engine_config(now: Instant) -> EngineConfig {
    EngineConfig {
        advertise: IpAddr::V4(Ipv4Addr::LOCALHOST),
        secret: [9; 32],
        ..EngineConfig::for_tests(now)
    }
}

#[test]
fn every_protos_case_leaves_an_in_process_engine_standing() {
    let cases = load_cases();
    let start = Instant::now();
    let ext = ExtensionConfig {
        number: "201".into(),
        name: "Protos".into(),
        password: "protos-201".into(),
        call_waiting: true,
        record: Default::default(),
    };
    let mut engine = Engine::new(engine_config(start), &[ext]);
    let phone = SocketAddr::from(([127, 0, 0, 1], 5999));
    let box_addr = SocketAddr::from(([127, 0, 0, 1], 5060));
    let peer = Peer { transport: Transport::Udp, addr: phone };
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut now = start;
    let mut oversized = 0;
    for (i, case) in cases.iter().enumerate() {
        // Virtual time moves 10 ms per case so transaction timers fire during the run.
        now += Duration::from_millis(10);
        engine.handle_timeout(now);
        let mut first = None;
        for template in [&case.message, &case.teardown] {
            engine.handle_datagram(now, peer, &instantiate(template, i, phone, box_addr));
            while let Some(out) = engine.poll_output() {
                if let Output::Transmit { data, .. } = out {
                    // The box's own answers may exceed what its parser takes (an answer copies
                    // the request's Via/From/To), so read only the start line here.
                    let line = data.split(|b| *b == b'\r').next().unwrap_or_default();
                    let line = String::from_utf8_lossy(line);
                    let code = match line.strip_prefix("SIP/2.0 ") {
                        Some(rest) => rest.get(..3).unwrap_or(rest).to_string(),
                        None => line.split(' ').next().unwrap_or_default().to_string(),
                    };
                    if data.len() > message::MAX_SIP_MESSAGE {
                        oversized += 1;
                    }
                    first.get_or_insert(code);
                }
            }
        }
        *by_status.entry(first.unwrap_or_else(|| "dropped".into())).or_default() += 1;
    }
    // Let every transaction run out.
    engine.handle_timeout(now + Duration::from_secs(120));
    while engine.poll_output().is_some() {}
    eprintln!(
        "in-process: {} cases, first answer by status: {by_status:?}; {oversized} answer(s) larger \
         than MAX_SIP_MESSAGE ({} bytes)",
        cases.len(),
        message::MAX_SIP_MESSAGE
    );
    // The valid case and a plain OPTIONS still get their answers.
    let options = format!(
        "OPTIONS sip:{box_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK-alive\r\n\
         Max-Forwards: 70\r\nFrom: <sip:protos@{phone}>;tag=1\r\nTo: <sip:{box_addr}>\r\n\
         Call-ID: alive@protos\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    engine.handle_datagram(now, peer, options.as_bytes());
    let answered = std::iter::from_fn(|| engine.poll_output())
        .any(|o| matches!(o, Output::Transmit { data, .. } if data.starts_with(b"SIP/2.0 200")));
    assert!(answered, "the engine no longer answers OPTIONS after the suite");
}

/// What the receiver thread saw.
#[derive(Default)]
struct Heard {
    /// First answer (not 100) to each case's message, by case index.
    answers: HashMap<usize, u16>,
    /// Answers to liveness OPTIONS, by Call-ID.
    alive: HashMap<String, u16>,
    /// Datagrams received in all (retransmissions included).
    datagrams: usize,
    /// Datagrams not attributable to a case (the case mangled its Call-ID) or unparsable.
    unattributed: usize,
}

fn receiver(socket: UdpSocket, heard: Arc<Mutex<Heard>>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; RECV_BUFFER];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = socket.recv(&mut buf) else { continue };
        let mut h = heard.lock().unwrap_or_else(|e| e.into_inner());
        h.datagrams += 1;
        let resp = match message::parse(buf.get(..n).unwrap_or_default()) {
            Ok(Message::Response(r)) => r,
            _ => {
                h.unattributed += 1;
                continue;
            }
        };
        if resp.common.call_id.starts_with("liveness-") {
            h.alive.insert(resp.common.call_id.clone(), resp.code);
        } else if let Some(case) = case_of(&resp.common.call_id) {
            if resp.code != 100 && resp.common.cseq.method.as_str() != TEARDOWN {
                h.answers.entry(case).or_insert(resp.code);
            }
        } else {
            h.unattributed += 1;
        }
    }
}

/// Sends a valid OPTIONS and waits for its 200.
fn still_alive(socket: &UdpSocket, heard: &Mutex<Heard>, target: SocketAddr, n: usize) -> bool {
    let local = socket.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
    for attempt in 0..LIVENESS_TRIES {
        let call_id = format!("liveness-{n}-{attempt}");
        let options = format!(
            "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:protos@{local}>;tag=live\r\nTo: <sip:{target}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        if socket.send_to(options.as_bytes(), target).is_err() {
            continue;
        }
        let deadline = Instant::now() + LIVENESS_TIMEOUT;
        while Instant::now() < deadline {
            let code = heard.lock().unwrap_or_else(|e| e.into_inner()).alive.get(&call_id).copied();
            match code {
                Some(200) => return true,
                Some(_) => break,
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    }
    false
}

#[test]
fn the_box_survives_every_protos_case_over_udp() {
    let cases = load_cases();
    let mut tb = TestBox::start(EXTENSIONS);
    let target = SocketAddr::from(([127, 0, 0, 1], tb.sip_port()));
    let socket = UdpSocket::bind(("127.0.0.1", tb.port())).unwrap_or_else(|e| panic!("bind: {e}"));
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap_or_else(|e| panic!("timeout: {e}"));
    let local = socket.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
    let heard = Arc::new(Mutex::new(Heard::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let rx = {
        let (s, h, st) =
            (socket.try_clone().unwrap_or_else(|e| panic!("clone: {e}")), heard.clone(), stop.clone());
        std::thread::spawn(move || receiver(s, h, st))
    };
    assert!(still_alive(&socket, &heard, target, 0), "the box does not answer OPTIONS before the suite");

    let started = Instant::now();
    let mut too_big = 0;
    let mut liveness_checks = 1;
    for (i, case) in cases.iter().enumerate() {
        let slot = started + PACE * u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(wait) = slot.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for template in [&case.message, &case.teardown] {
            let data = instantiate(template, i, local, target);
            if data.len() > MAX_UDP_PAYLOAD {
                too_big += 1;
                continue;
            }
            if let Err(e) = socket.send_to(&data, target) {
                panic!("case {}: send failed: {e}", case.name);
            }
        }
        if (i + 1) % LIVENESS_EVERY == 0 || i + 1 == cases.len() {
            liveness_checks += 1;
            assert!(
                still_alive(&socket, &heard, target, i + 1),
                "the box stopped answering OPTIONS after case {} (running: {})\n{}",
                case.name,
                tb.is_running(),
                tb.stderr_tail(40)
            );
        }
    }
    std::thread::sleep(SETTLE);
    stop.store(true, Ordering::Relaxed);
    let _ = rx.join();
    let elapsed = started.elapsed();
    assert!(tb.is_running(), "the box exited during the suite\n{}", tb.stderr_tail(40));

    let h = heard.lock().unwrap_or_else(|e| e.into_inner());
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for code in h.answers.values() {
        *by_status.entry(*code).or_default() += 1;
    }
    let answered = h.answers.len();
    eprintln!(
        "PROTOS c07-sip over UDP: {} cases in {:.1} s; answered {answered}, no attributable answer \
         {} (dropped, or answered under a mangled Call-ID); by status {by_status:?}; {} datagrams \
         received ({} unattributed); {too_big} templates over {MAX_UDP_PAYLOAD} bytes not sent; \
         {liveness_checks} liveness checks passed",
        cases.len(),
        elapsed.as_secs_f64(),
        cases.len() - answered,
        h.datagrams,
        h.unattributed,
    );
    // The valid case (0000000) is a well-formed INVITE from an unauthenticated caller: 407.
    assert_eq!(h.answers.get(&0), Some(&407), "the valid case 0000000 must be challenged");
}
