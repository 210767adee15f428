//! RFC 4475 (SIP torture tests) and RFC 5118 (IPv6 torture tests), table-driven.
//!
//! Every file under `../shared/sip-test-vectors/{rfc4475,rfc5118}/` is listed exactly once in
//! `tests/data/sip-vectors-verdicts.toml` with its RFC section and the verdict that section
//! demands (the RFC section is the oracle, not the file name). Each vector is parsed with
//! `hakoden::sip::message::parse` and fed, as one UDP datagram, to a fresh in-process
//! [`Engine`]. Verdicts:
//!
//! - `parse`: the message parses; the engine may answer anything but must not panic.
//! - `reject` / `reject:<code>`: parsing fails. The engine answers 400, 505 or 513 (or exactly
//!   `<code>`) when the parser could read a Via to answer along, and sends nothing otherwise.
//! - `respond:<code>`: the first response the engine sends back to the sender, after any
//!   `100 Trying`, has this status.
//! - `silent`: the engine sends nothing at all (responses that match no transaction).
//!
//! Optional keys: `parses` also pins the parser's outcome for `respond`/`silent`; `callers`
//! provisions these extensions and registers them from the vector's source address first (so
//! the box trusts an INVITE from them, as it does a registered phone), `callees` provisions and
//! registers these from another address (so a call to them can proceed); `open` marks a known
//! firmware deviation: the check is expected to fail, and the test fails when it passes, so the
//! mark is removed once the firmware is fixed; `skip` skips a vector and must give the reason.
//!
//! Responses must leave the box silent (no transaction of ours matches them). See
//! `docs/conformance.md` for the verdict summary.
#![allow(clippy::disallowed_methods)] // the test reads the clock once for a base Instant

use hakoden::config::ExtensionConfig;
use hakoden::engine::{Engine, EngineConfig, Output};
use hakoden::sip::message::{self, Message};
use hakoden::sip::{Peer, Transport};
use md5::{Digest, Md5};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The vector directory, relative to the crate root (the repo's sibling `shared/`).
const VECTORS_DIR: &str = "../shared/sip-test-vectors";
/// The suites this test covers (PROTOS has its own test, `tests/protos.rs`).
const SUITES: [&str; 2] = ["rfc4475", "rfc5118"];
/// The verdict table.
const VERDICTS: &str = "tests/data/sip-vectors-verdicts.toml";
/// The digest realm of the test engine.
const REALM: &str = "hakoden";
/// Password of every extension the table provisions.
const PASSWORD: &str = "vector-secret";
/// Where every vector comes from (TEST-NET-1, never routed).
const SENDER: ([u8; 4], u16) = ([192, 0, 2, 99], 5060);
/// Where the `callees` are registered from.
const CALLEE_HOST: ([u8; 4], u16) = ([192, 0, 2, 200], 5060);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    vector: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Path under the vector directory, e.g. `rfc4475/wsinv.dat`.
    file: String,
    /// The RFC section that is the oracle.
    section: String,
    /// `parse`, `reject`, `reject:<code>`, `respond:<code>` or `silent`.
    verdict: String,
    /// Why this verdict: what the RFC section demands and how the box meets it.
    why: String,
    #[serde(default)]
    parses: Option<bool>,
    #[serde(default)]
    callers: Vec<String>,
    #[serde(default)]
    callees: Vec<String>,
    #[serde(default)]
    open: Option<String>,
    #[serde(default)]
    skip: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Parse,
    Reject(Option<u16>),
    Respond(u16),
    Silent,
}

impl Verdict {
    fn parse(s: &str) -> Option<Verdict> {
        let code = |c: &str| c.parse::<u16>().ok().filter(|c| (100..=699).contains(c));
        match s.split_once(':') {
            None if s == "parse" => Some(Verdict::Parse),
            None if s == "reject" => Some(Verdict::Reject(None)),
            None if s == "silent" => Some(Verdict::Silent),
            Some(("reject", c)) => code(c).map(|c| Verdict::Reject(Some(c))),
            Some(("respond", c)) => code(c).map(Verdict::Respond),
            _ => None,
        }
    }
}

fn vectors_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(VECTORS_DIR);
    assert!(
        dir.join("rfc4475").is_dir(),
        "SIP test vectors not found at {} (expected the shared sip-test-vectors checkout next to \
         the repository, see its README.md)",
        dir.display()
    );
    dir
}

fn load_table() -> Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(VERDICTS);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every vector file on disk, as `suite/name`.
fn files_on_disk(dir: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for suite in SUITES {
        let entries = std::fs::read_dir(dir.join(suite)).unwrap_or_else(|e| panic!("read {suite}: {e}"));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("read {suite}: {e}"));
            if entry.path().is_file() {
                files.insert(format!("{suite}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    files
}

fn peer(addr: ([u8; 4], u16)) -> Peer {
    Peer { transport: Transport::Udp, addr: SocketAddr::from(addr) }
}

fn engine(extensions: &[String], now: Instant) -> Engine {
    let cfg = EngineConfig { realm: REALM.into(), ..EngineConfig::for_tests(now) };
    let exts: Vec<ExtensionConfig> = extensions
        .iter()
        .map(|n| ExtensionConfig {
            number: n.clone(),
            name: format!("Vector {n}"),
            password: PASSWORD.into(),
            call_waiting: true,
            record: Default::default(),
        })
        .collect();
    Engine::new(cfg, &exts)
}

fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

/// The status code of a response's bytes, or None for a request.
fn status_of(data: &[u8]) -> Option<u16> {
    let line = data.split(|b| *b == b'\r').next()?;
    let rest = line.strip_prefix(b"SIP/2.0 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// The quoted `name="value"` of a challenge header.
fn challenge_param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let start = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = challenge.get(start..)?;
    rest.get(..rest.find('"')?)
}

/// Registers `ext` from `from` with digest authentication (MD5, RFC 2617 without qop).
fn register(engine: &mut Engine, now: Instant, ext: &str, from: Peer) -> Result<(), String> {
    let ip = from.addr;
    let request = |auth: Option<String>| {
        let mut m = format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP {ip};branch=z9hG4bK-reg-{ext}-{}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{ext}@{REALM}>;tag=r1\r\nTo: <sip:{ext}@{REALM}>\r\n\
             Call-ID: reg-{ext}@vectors\r\nCSeq: {} REGISTER\r\nContact: <sip:{ext}@{ip}>\r\n\
             Expires: 3600\r\n",
            u8::from(auth.is_some()),
            1 + u8::from(auth.is_some())
        );
        if let Some(a) = auth {
            m.push_str(&format!("Authorization: {a}\r\n"));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m
    };
    engine.handle_datagram(now, from, request(None).as_bytes());
    let challenge = drain(engine)
        .into_iter()
        .find_map(|o| match o {
            Output::Transmit { data, .. } if status_of(&data) == Some(401) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                text.lines()
                    .find(|l| l.starts_with("WWW-Authenticate:") && l.contains("algorithm=MD5"))
                    .map(str::to_string)
            }
            _ => None,
        })
        .ok_or_else(|| format!("no MD5 401 challenge when registering {ext}"))?;
    let nonce = challenge_param(&challenge, "nonce").ok_or("challenge without nonce")?;
    let uri = format!("sip:{REALM}");
    let ha1 = md5_hex(&format!("{ext}:{REALM}:{PASSWORD}"));
    let ha2 = md5_hex(&format!("REGISTER:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
    let auth = format!(
        "Digest username=\"{ext}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5"
    );
    engine.handle_datagram(now, from, request(Some(auth)).as_bytes());
    let codes: Vec<Option<u16>> = drain(engine)
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit { data, .. } => Some(status_of(&data)),
            _ => None,
        })
        .collect();
    if codes.contains(&Some(200)) {
        Ok(())
    } else {
        Err(format!("registering {ext} got {codes:?}, not 200"))
    }
}

/// What happened to one vector.
#[derive(Debug)]
struct Observed {
    /// Parser outcome: Ok(kind) or Err((error, status, answerable)).
    parsed: Result<&'static str, (String, u16, bool)>,
    /// Status codes of everything the engine sent to the sender (None = a request).
    to_sender: Vec<Option<u16>>,
    /// Messages the engine sent anywhere.
    transmits: usize,
}

impl Observed {
    /// The first answer to the sender after any 100 Trying.
    fn answer(&self) -> Option<u16> {
        self.to_sender.iter().flatten().copied().find(|c| *c != 100)
    }

    fn summary(&self) -> String {
        let parsed = match &self.parsed {
            Ok(kind) => format!("parses ({kind})"),
            Err((e, status, answerable)) => {
                format!("fails ({e}; {status}{})", if *answerable { "" } else { ", no Via to answer" })
            }
        };
        let sent: Vec<String> =
            self.to_sender.iter().map(|c| c.map_or("request".into(), |c| c.to_string())).collect();
        format!("{parsed}; engine sent [{}] ({} transmit(s) in all)", sent.join(", "), self.transmits)
    }
}

fn observe(entry: &Entry, data: &[u8], now: Instant) -> Result<Observed, String> {
    let parsed = match message::parse(data) {
        Ok(Message::Request(_)) => Ok("request"),
        Ok(Message::Response(_)) => Ok("response"),
        Err(f) => {
            let answerable = f.reply.as_ref().is_some_and(|c| !c.is_ack);
            Err((f.error.to_string(), f.error.status(), answerable))
        }
    };
    let exts: Vec<String> = entry.callers.iter().chain(&entry.callees).cloned().collect();
    let mut engine = engine(&exts, now);
    for ext in &entry.callers {
        register(&mut engine, now, ext, peer(SENDER))?;
    }
    for ext in &entry.callees {
        register(&mut engine, now, ext, peer(CALLEE_HOST))?;
    }
    let sender = peer(SENDER);
    engine.handle_datagram(now, sender, data);
    let outputs = drain(&mut engine);
    let mut to_sender = Vec::new();
    let mut transmits = 0;
    for o in &outputs {
        if let Output::Transmit { peer, data } = o {
            transmits += 1;
            if *peer == sender {
                to_sender.push(status_of(data));
            }
        }
    }
    Ok(Observed { parsed, to_sender, transmits })
}

/// Checks one observation against its verdict; Err says what differs.
fn check(verdict: Verdict, entry: &Entry, seen: &Observed) -> Result<(), String> {
    if let Some(want) = entry.parses {
        if seen.parsed.is_ok() != want {
            return Err(format!("expected the parser to {}", if want { "accept it" } else { "fail" }));
        }
    }
    match verdict {
        Verdict::Parse => match seen.parsed {
            Ok(_) => Ok(()),
            Err(_) => Err("expected it to parse".into()),
        },
        Verdict::Reject(code) => {
            let Err((_, status, answerable)) = &seen.parsed else {
                return Err("expected the parser to reject it".into());
            };
            if !answerable {
                return match seen.transmits {
                    0 => Ok(()),
                    _ => Err("expected a silent drop (no readable Via)".into()),
                };
            }
            let answer = seen.to_sender.first().copied().flatten();
            let ok = match code {
                Some(c) => answer == Some(c) && *status == c,
                None => matches!(answer, Some(400 | 505 | 513)) && answer == Some(*status),
            };
            if ok {
                Ok(())
            } else {
                Err(format!("expected an answer of {}", code.map_or("400/505/513".into(), |c| c.to_string())))
            }
        }
        Verdict::Respond(code) => match seen.answer() {
            Some(c) if c == code => Ok(()),
            _ => Err(format!("expected a {code} answer")),
        },
        Verdict::Silent => match seen.transmits {
            0 => Ok(()),
            _ => Err("expected no output".into()),
        },
    }
}

#[test]
fn every_vector_file_is_in_the_verdict_table_exactly_once() {
    let dir = vectors_dir();
    let on_disk = files_on_disk(&dir);
    let table = load_table();
    let mut listed = BTreeSet::new();
    let mut problems = Vec::new();
    for e in &table.vector {
        if !listed.insert(e.file.clone()) {
            problems.push(format!("{} is listed twice", e.file));
        }
        if !on_disk.contains(&e.file) {
            problems.push(format!("{} is in the table but not on disk", e.file));
        }
        if Verdict::parse(&e.verdict).is_none() {
            problems.push(format!("{}: unknown verdict `{}`", e.file, e.verdict));
        }
        if e.section.trim().is_empty() || e.why.trim().is_empty() {
            problems.push(format!("{}: section and why must be filled in", e.file));
        }
        if e.skip.as_deref().is_some_and(|r| r.trim().is_empty()) {
            problems.push(format!("{}: a skip needs a reason", e.file));
        }
        if e.open.as_deref().is_some_and(|r| r.trim().is_empty()) {
            problems.push(format!("{}: an open deviation needs a description", e.file));
        }
    }
    for f in on_disk.difference(&listed) {
        problems.push(format!("{f} is on disk but missing from the table"));
    }
    assert!(problems.is_empty(), "{VERDICTS}:\n{}", problems.join("\n"));
    assert_eq!(listed.len(), 61, "RFC 4475 has 49 vectors and RFC 5118 12");
}

#[test]
fn every_vector_gets_the_verdict_its_rfc_section_demands() {
    let dir = vectors_dir();
    let now = Instant::now();
    let mut failures = Vec::new();
    let mut report = Vec::new();
    let (mut passed, mut open, mut skipped) = (0, 0, 0);
    for entry in load_table().vector {
        let Some(verdict) = Verdict::parse(&entry.verdict) else {
            failures.push(format!("{}: unknown verdict `{}`", entry.file, entry.verdict));
            continue;
        };
        if let Some(reason) = &entry.skip {
            skipped += 1;
            report.push(format!("SKIP {:<45} {reason}", entry.file));
            continue;
        }
        let path = dir.join(&entry.file);
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let seen = match observe(&entry, &data, now) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: set-up failed: {e}", entry.file));
                continue;
            }
        };
        let line = format!("{:<45} {:<12} {}", entry.file, entry.verdict, seen.summary());
        match (check(verdict, &entry, &seen), &entry.open) {
            (Ok(()), None) => {
                passed += 1;
                report.push(format!("ok   {line}"));
            }
            (Err(why), None) => {
                failures.push(format!("{} ({}): {why}; {}", entry.file, entry.section, seen.summary()))
            }
            (Err(why), Some(issue)) => {
                open += 1;
                report.push(format!("OPEN {line}: {why} ({issue})"));
            }
            (Ok(()), Some(_)) => failures.push(format!(
                "{}: marked open but now passes; remove the `open` mark in {VERDICTS}",
                entry.file
            )),
        }
    }
    eprintln!("{}", report.join("\n"));
    eprintln!("{passed} passed, {open} open (known firmware deviations), {skipped} skipped");
    assert!(failures.is_empty(), "{} vector(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_response_vector_must_leave_the_box_silent() {
    // A response never gets an answer, and one that matches no transaction of ours is discarded
    // (RFC 3261 §18.1.2): its verdict must be `silent` (or `reject`, which for a response also
    // means nothing is sent). The main test then checks the engine's output.
    let dir = vectors_dir();
    let mut responses = 0;
    for entry in load_table().vector {
        let data =
            std::fs::read(dir.join(&entry.file)).unwrap_or_else(|e| panic!("read {}: {e}", entry.file));
        if !data.starts_with(b"SIP/") {
            continue;
        }
        responses += 1;
        assert!(
            matches!(Verdict::parse(&entry.verdict), Some(Verdict::Silent | Verdict::Reject(None))),
            "{}: a response vector must have verdict `silent` or `reject`, not `{}`",
            entry.file,
            entry.verdict
        );
    }
    assert!(responses >= 5, "RFC 4475 has five response vectors, found {responses}");
}
