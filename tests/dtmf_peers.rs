//! DTMF from real peers through the real box: the box must report every key press a caller
//! makes, in order, with the way it came (RFC 4733 telephone-events, SIP INFO, in-band tones).
//!
//! - SIPp plays its own RFC 4733 captures (`dtmf_2833_*.pcap` from Debian's `sip-tester`).
//! - SIPp sends in-call INFO requests (`application/dtmf-relay` and `application/dtmf`); the
//!   callee must receive them relayed.
//! - SIPp plays a PCMU capture this file generates (DTMF tones, no telephone-event negotiated).
//! - baresip 1.0 presses keys on command (`ctrl_tcp`, `sndcode`); it sends RFC 4733.
//!
//! The box reports each press as a log line `call N: DTMF <digit> from the caller|callee
//! (<source>, <ms> ms)`, read here through `hakoden console log tail`. With `CI=true` a missing
//! `sipp` or `baresip` fails the test; locally it is skipped with a message.
mod common;

use common::baresip::Phone;
use common::tones::{write_wav, SAMPLE_RATE};
use common::{must_register, require_tool, wait_udp_bound, RtpSink, Sipp, SippChild, TestBox};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ALICE: (&str, &str) = ("201", "secret-201");
const BOB: (&str, &str) = ("202", "secret-202");

/// Time the box gets to log the last digit after the peer sent it; the relay reports a press
/// at its first end packet and an in-band tone 20-40 ms after it stops, so this is generous.
const REPORT_WAIT: Duration = Duration::from_secs(3);
/// Log lines read back; one short call logs far fewer at debug level.
const LOG_TAIL_LINES: usize = 2000;

/// The payload type the SIPp scenarios and captures use for telephone-event.
const TE_PT: u8 = 101;
/// Held time of every press in SIPp's captures: the end packets carry duration 2240 at 8 kHz.
const SIPP_PCAP_PRESS_MS: u32 = 280;
/// SIPp's captures played in turn by the RFC 4733 test, with the digit each one holds. `5`
/// twice: SIPp resends a capture's RTP headers unchanged, so the second press has the same
/// SSRC and timestamp as the first and must still count.
const PCAP_DIGITS: [(&str, char); 5] = [("1", '1'), ("5", '5'), ("5", '5'), ("pound", '#'), ("star", '*')];
/// Where distributions install SIPp's DTMF captures (`DTMF_PCAP_DIR` overrides).
const PCAP_DIRS: &[&str] = &["/usr/share/sip-tester", "/usr/share/sipp/pcap", "/usr/local/share/sipp/pcap"];

/// A caller scenario as `caller` dialling `callee`, from the port `caller` registered on.
fn caller(tb: &TestBox, scenario: &str, caller: (&str, &str), port: u16, callee: &str) -> Sipp {
    Sipp::new(scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .media_port(tb.port())
        .service(callee)
        .key("caller", caller.0)
        .auth(caller.0, caller.1)
}

/// Starts a callee scenario on `port` and waits until it listens.
fn callee(tb: &TestBox, scenario: &str, port: u16, rtp_port: u16) -> SippChild {
    let child = Sipp::new(scenario, &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .media_port(tb.port())
        .key("rtpport", rtp_port)
        .spawn();
    wait_udp_bound(port);
    child
}

/// A box with 201 and 202, both registered from SIPp ports; returns (box, 201's port, 202's).
fn box_with_two_sipp_phones() -> (TestBox, u16, u16) {
    let tb = TestBox::start(&[ALICE, BOB]);
    let (alice_port, bob_port) = (tb.port(), tb.port());
    must_register(&tb, BOB, bob_port);
    must_register(&tb, ALICE, alice_port);
    (tb, alice_port, bob_port)
}

/// One key press as the box logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    call: u64,
    digit: char,
    /// `caller` or `callee`.
    side: String,
    /// `rfc4733`, `info` or `inband`.
    source: String,
    ms: u32,
}

/// Parses `... call N: DTMF <digit> from the <side> (<source>, <ms> ms)`.
fn parse_report(line: &str) -> Option<Report> {
    let (head, tail) = line.split_once(": DTMF ")?;
    let call = head.rsplit_once("call ")?.1.trim().parse().ok()?;
    let mut chars = tail.chars();
    let digit = chars.next()?;
    let rest = chars.as_str().strip_prefix(" from the ")?;
    let (side, rest) = rest.split_once(" (")?;
    let (source, rest) = rest.split_once(", ")?;
    let ms = rest.strip_suffix(" ms)")?.trim().parse().ok()?;
    Some(Report { call, digit, side: side.to_string(), source: source.to_string(), ms })
}

fn reports(tb: &TestBox) -> Vec<Report> {
    tb.console(&format!("log tail {LOG_TAIL_LINES}")).lines().filter_map(parse_report).collect()
}

/// The box's DTMF reports once `want` of them arrived (or [`REPORT_WAIT`] passed).
fn wait_reports(tb: &TestBox, want: usize) -> Vec<Report> {
    let step = Duration::from_millis(100);
    let mut got = reports(tb);
    for _ in 0..(REPORT_WAIT.as_millis() / step.as_millis()) {
        if got.len() >= want {
            break;
        }
        std::thread::sleep(step);
        got = reports(tb);
    }
    // A moment more, so that a spurious extra report would show up too.
    std::thread::sleep(Duration::from_millis(200));
    let got = reports(tb);
    eprintln!("the box reported: {got:?}");
    got
}

/// `(digit, side, source)` of each report, for comparing with what a peer sent. Each test
/// makes one call, so every report must name the same call.
fn summary(reports: &[Report]) -> Vec<(char, &str, &str)> {
    let first = reports.first().map(|r| r.call);
    assert!(reports.iter().all(|r| Some(r.call) == first), "reports from more than one call: {reports:?}");
    reports.iter().map(|r| (r.digit, r.side.as_str(), r.source.as_str())).collect()
}

fn expect_from_caller<'a>(digits: &str, source: &'a str) -> Vec<(char, &'a str, &'a str)> {
    digits.chars().map(|d| (d, "caller", source)).collect()
}

/// The box's log lines about DTMF and its tail, for failure messages.
fn box_context(tb: &TestBox) -> String {
    format!("--- box stderr (tail) ---\n{}", tb.stderr_tail(120))
}

fn pcap_dir() -> PathBuf {
    let mut places: Vec<PathBuf> = std::env::var_os("DTMF_PCAP_DIR").map(PathBuf::from).into_iter().collect();
    places.extend(PCAP_DIRS.iter().map(PathBuf::from));
    places
        .iter()
        .find(|d| d.join("dtmf_2833_1.pcap").is_file())
        .cloned()
        .unwrap_or_else(|| panic!("SIPp's dtmf_2833_*.pcap not found in {places:?} (dpkg -L sip-tester)"))
}

#[test]
fn rfc4733_digits_from_sipp_captures_are_reported_in_order() {
    if !require_tool("sipp") {
        return;
    }
    let dir = pcap_dir();
    let (tb, alice_port, bob_port) = box_with_two_sipp_phones();
    let sink = RtpSink::bind(tb.port());
    let bob = callee(&tb, "dtmf_uas_2833.xml", bob_port, sink.port());
    let mut alice = caller(&tb, "dtmf_uac_2833.xml", ALICE, alice_port, BOB.0);
    for (i, (name, _)) in PCAP_DIGITS.iter().enumerate() {
        let pcap = dir.join(format!("dtmf_2833_{name}.pcap"));
        alice = alice.key(&format!("pcap{}", i + 1), pcap.display());
    }
    let alice = alice.run();
    let bob = bob.wait();
    let rtp = sink.finish();
    alice.assert_ok("caller 201 plays RFC 4733 captures");
    bob.assert_ok("callee 202 answers with telephone-event");

    let sent: String = PCAP_DIGITS.iter().map(|(_, d)| *d).collect();
    let got = wait_reports(&tb, sent.len());
    assert_eq!(
        summary(&got),
        expect_from_caller(&sent, "rfc4733"),
        "the box's DTMF reports for captures {sent:?}: {got:?}\n{}",
        box_context(&tb)
    );
    assert!(
        got.iter().all(|r| r.ms == SIPP_PCAP_PRESS_MS),
        "each capture holds its key {SIPP_PCAP_PRESS_MS} ms: {got:?}"
    );
    assert!(
        rtp.payload_types.contains(&TE_PT),
        "the callee got no telephone-event packets (PT {TE_PT}) through the relay: {rtp:?}"
    );
}

#[test]
fn sip_info_digits_are_reported_and_relayed_to_the_callee() {
    if !require_tool("sipp") {
        return;
    }
    let (tb, alice_port, bob_port) = box_with_two_sipp_phones();
    let bob = callee(&tb, "dtmf_uas_info.xml", bob_port, tb.port());
    let alice = caller(&tb, "dtmf_uac_info.xml", ALICE, alice_port, BOB.0).run();
    let bob = bob.wait();
    alice.assert_ok("caller 201 sends two INFO digits");
    bob.assert_ok("callee 202 receives two INFO digits");

    let got = wait_reports(&tb, 2);
    assert_eq!(
        summary(&got),
        expect_from_caller("5#", "info"),
        "the box's DTMF reports for INFO 5 and #: {got:?}\n{}",
        box_context(&tb)
    );
    assert_eq!(got.first().map(|r| r.ms), Some(160), "Duration=160 of the dtmf-relay body: {got:?}");
    assert_eq!(
        bob.logged("info_type"),
        ["application/dtmf-relay", "application/dtmf"],
        "Content-Types the callee received\n{}",
        bob.report()
    );
    assert_eq!(bob.logged("info_body"), ["Signal=5", "#"], "bodies the callee received\n{}", bob.report());
}

// ---------------------------------------------------------------------------------------------
// In-band: a PCMU capture of DTMF tones, generated here.

/// Samples in one 20 ms RTP packet.
const FRAME_SAMPLES: usize = 160;
/// Peak of a 0 dBm0 sine in 16-bit PCM (G.711 overloads at +3.17 dBm0 = 32 124).
const DBM0_PEAK: f64 = 22_300.0;
/// Level of each of a digit's two tones: a typical phone's.
const TONE_DBM0: f64 = -10.0;
/// Tone and pause of each press: twice Q.24's 40 ms minimum, a fast autodialler's pace.
const TONE_MS: u32 = 100;
const PAUSE_MS: u32 = 100;
/// Silence before the first and after the last tone.
const LEAD_MS: u32 = 300;
/// The digits the in-band test dials.
const INBAND_DIGITS: &str = "47*";
/// Accepted error of a measured in-band press length: two 20 ms packets either way.
const INBAND_MS_SLACK: u32 = 40;
/// PCMU's static payload type (RFC 3551).
const PT_PCMU: u8 = 0;

/// Row and column frequencies of a DTMF key.
fn dtmf_freqs(digit: char) -> Option<(f64, f64)> {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    KEYS.iter().enumerate().find_map(|(r, row)| {
        let c = row.find(digit)?;
        Some((*ROWS.get(r)?, *COLS.get(c)?))
    })
}

/// 8 kHz PCM: `LEAD_MS` silence, then per digit `TONE_MS` of its two tones and `PAUSE_MS`
/// silence, then `LEAD_MS` silence.
fn dial_pcm(digits: &str) -> Vec<i16> {
    let samples = |ms: u32| (SAMPLE_RATE / 1000 * ms) as usize;
    let amplitude = DBM0_PEAK * 10f64.powf(TONE_DBM0 / 20.0);
    let mut pcm = vec![0i16; samples(LEAD_MS)];
    for d in digits.chars() {
        let (low, high) = dtmf_freqs(d).unwrap_or_else(|| panic!("{d:?} is not a DTMF key"));
        pcm.extend((0..samples(TONE_MS)).map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            let w = 2.0 * std::f64::consts::PI * t;
            (amplitude * ((w * low).sin() + (w * high).sin())) as i16
        }));
        pcm.extend(std::iter::repeat_n(0i16, samples(PAUSE_MS)));
    }
    pcm.extend(std::iter::repeat_n(0i16, samples(LEAD_MS)));
    pcm
}

/// µ-law RTP packets of 20 ms each (the last frame padded with silence).
fn pcmu_packets(pcm: &[i16]) -> Vec<Vec<u8>> {
    const SSRC: u32 = 0x4841_4b4f;
    pcm.chunks(FRAME_SAMPLES)
        .enumerate()
        .map(|(n, frame)| {
            let seq = u16::try_from(n).expect("a test capture is short");
            let ts = u32::from(seq) * FRAME_SAMPLES as u32;
            let mut p = vec![0x80, PT_PCMU | if n == 0 { 0x80 } else { 0 }];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&SSRC.to_be_bytes());
            p.extend(frame.iter().map(|s| audio_codec_algorithms::encode_ulaw(*s)));
            p.resize(12 + FRAME_SAMPLES, audio_codec_algorithms::encode_ulaw(0));
            p
        })
        .collect()
}

/// Classic libpcap file (Ethernet link type) of UDP datagrams from 127.0.0.1:`port` to
/// 127.0.0.1:`port`, one every 20 ms. SIPp's player rewrites the ports and keeps the timing.
fn write_pcap(path: &Path, datagrams: &[Vec<u8>], port: u16) {
    const LINKTYPE_ETHERNET: u32 = 1;
    const SNAPLEN: u32 = 65_535;
    const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
    const IPPROTO_UDP: u8 = 17;
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (n, payload) in datagrams.iter().enumerate() {
        let udp_len = u16::try_from(8 + payload.len()).expect("small datagram");
        let ip_len = 20 + udp_len;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, IPPROTO_UDP, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        let sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
        let folded = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!(((folded & 0xffff) + (folded >> 16)) as u16)).to_be_bytes());
        let mut frame = vec![0u8; 12]; // destination and source MAC: zero, as on loopback
        frame.extend_from_slice(&ETHERTYPE_IPV4);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&port.to_be_bytes());
        frame.extend_from_slice(&port.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (allowed on IPv4)
        frame.extend_from_slice(payload);
        let usec = n as u64 * 20_000;
        let len = u32::try_from(frame.len()).expect("small frame");
        out.extend_from_slice(&u32::try_from(usec / 1_000_000).expect("short capture").to_le_bytes());
        out.extend_from_slice(&u32::try_from(usec % 1_000_000).expect("below a second").to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).expect("write pcap");
}

/// The RTP payloads of a capture [`write_pcap`] wrote (fixed layout: Ethernet, IPv4, UDP).
fn read_back_rtp(bytes: &[u8]) -> Vec<Vec<u8>> {
    const RECORD_HEADER: usize = 16;
    const FRAME_HEADERS: usize = 14 + 20 + 8;
    let mut out = Vec::new();
    let mut pos = 24;
    while let Some(header) = bytes.get(pos..pos + RECORD_HEADER) {
        let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        let start = pos + RECORD_HEADER;
        let Some(frame) = bytes.get(start..start + len) else { break };
        out.push(frame.get(FRAME_HEADERS..).unwrap_or_default().to_vec());
        pos = start + len;
    }
    out
}

#[test]
fn generated_capture_carries_the_tones_the_box_detector_hears() {
    use hakoden::media::dtmf::{DtmfSource, G711Law, InbandDetector};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dial.pcap");
    let packets = pcmu_packets(&dial_pcm(INBAND_DIGITS));
    write_pcap(&path, &packets, 4000);
    let bytes = std::fs::read(&path).expect("read pcap");
    let rtp = read_back_rtp(&bytes);
    assert_eq!(rtp, packets, "the capture holds the packets written");
    let total_ms = 2 * LEAD_MS + INBAND_DIGITS.len() as u32 * (TONE_MS + PAUSE_MS);
    assert_eq!(rtp.len() as u32 * 20, total_ms);
    let mut detector = InbandDetector::new();
    let events: Vec<_> =
        rtp.iter().flat_map(|p| detector.push_g711(G711Law::Mu, p.get(12..).unwrap_or_default())).collect();
    let digits: String = events.iter().map(|e| e.digit).collect();
    assert_eq!(digits, INBAND_DIGITS, "{events:?}");
    assert!(events.iter().all(|e| e.source == DtmfSource::InBand && e.duration_ms.abs_diff(TONE_MS) <= 20));
}

#[test]
fn report_lines_parse_and_others_do_not() {
    let line = "2026-11-22T00:50:01.123Z INFO hakoden::engine::features: call 3: DTMF # from the caller (rfc4733, 280 ms)";
    assert_eq!(
        parse_report(line),
        Some(Report { call: 3, digit: '#', side: "caller".into(), source: "rfc4733".into(), ms: 280 })
    );
    assert_eq!(parse_report("call 3: BYE from the caller"), None);
    assert_eq!(parse_report("call 3: DTMF 5 from the callee (info, x ms)"), None);
}

#[test]
fn inband_tones_on_pcmu_are_reported() {
    if !require_tool("sipp") {
        return;
    }
    let (tb, alice_port, bob_port) = box_with_two_sipp_phones();
    let pcap = tb.scratch("media").join("dial-47star.pcap");
    let packets = pcmu_packets(&dial_pcm(INBAND_DIGITS));
    write_pcap(&pcap, &packets, 4000);
    // The scenario waits a fixed 2 s after starting the capture: it must be over by then.
    assert!(packets.len() * 20 <= 1_500, "the capture outlasts dtmf_uac_inband.xml's pause");

    let sink = RtpSink::bind(tb.port());
    let bob = callee(&tb, "dtmf_uas_pcmu.xml", bob_port, sink.port());
    let alice =
        caller(&tb, "dtmf_uac_inband.xml", ALICE, alice_port, BOB.0).key("pcap", pcap.display()).run();
    let bob = bob.wait();
    let rtp = sink.finish();
    alice.assert_ok("caller 201 plays PCMU with DTMF tones");
    bob.assert_ok("callee 202 answers PCMU only");

    let got = wait_reports(&tb, INBAND_DIGITS.len());
    assert_eq!(
        summary(&got),
        expect_from_caller(INBAND_DIGITS, "inband"),
        "the box's DTMF reports for tones {INBAND_DIGITS:?} ({} packets sent, callee got {rtp:?}): {got:?}\n{}",
        packets.len(),
        box_context(&tb)
    );
    assert!(
        got.iter().all(|r| r.ms.abs_diff(TONE_MS) <= INBAND_MS_SLACK),
        "each tone lasts {TONE_MS} ms: {got:?}"
    );
    // The tones are a tap, not a filter: the callee still hears them.
    assert!(
        rtp.packets * 2 >= packets.len() as u64 && rtp.payload_types.contains(&PT_PCMU),
        "the callee got {} of {} PCMU packets: {rtp:?}",
        rtp.packets,
        packets.len()
    );
}

// ---------------------------------------------------------------------------------------------
// baresip: key presses on command through ctrl_tcp.

/// The keys the calling baresip presses, one `sndcode` command each.
const BARESIP_DIGITS: &str = "30#";
/// The key the called baresip presses afterwards: the callee's leg is tapped too.
const BARESIP_CALLEE_DIGIT: char = '9';
/// Between two `sndcode` commands: the previous press (start, updates, 3 end packets) is
/// over well before.
const BARESIP_KEY_GAP: Duration = Duration::from_millis(500);
/// Time for the callee to register, and for the caller's call to be answered.
const PHONE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each phone's life (`baresip -t`); the test ends them earlier.
const PHONE_SECONDS: u32 = 25;
/// The phones' audio source lasts longer than any call here (aufile ends the call at its end).
const SILENCE_SECONDS: u32 = 30;
/// A ctrl_tcp answer arrives within milliseconds; this bounds a stuck phone.
const CTRL_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest netstring accepted from baresip; its answers and events are a few hundred bytes.
const MAX_NETSTRING: usize = 64 * 1024;

/// A phone for `ext` playing `source`, recording nothing, taking commands on `ctrl_port`.
fn start_phone(tb: &TestBox, ext: (&str, &str), source: &Path, ctrl_port: u16) -> Phone {
    Phone::builder(tb, ext, source, PHONE_SECONDS).without_recording().ctrl_tcp(ctrl_port).start()
}

/// baresip's ctrl_tcp: JSON commands and answers framed as netstrings (`LEN:JSON,`).
struct Ctrl {
    stream: TcpStream,
    /// Bytes read but not yet framed.
    pending: Vec<u8>,
}

impl Ctrl {
    fn connect(port: u16) -> Ctrl {
        let step = Duration::from_millis(50);
        for _ in 0..(PHONE_TIMEOUT.as_millis() / step.as_millis()) {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
                stream.set_read_timeout(Some(CTRL_TIMEOUT)).expect("set_read_timeout");
                return Ctrl { stream, pending: Vec::new() };
            }
            std::thread::sleep(step);
        }
        panic!("baresip's ctrl_tcp does not listen on 127.0.0.1:{port}");
    }

    /// One netstring's payload, or None when the phone sent nothing in time or garbage.
    fn read_netstring(&mut self) -> Option<String> {
        loop {
            if let Some(colon) = self.pending.iter().position(|b| *b == b':') {
                let len: usize = std::str::from_utf8(self.pending.get(..colon)?).ok()?.trim().parse().ok()?;
                if len > MAX_NETSTRING {
                    return None;
                }
                let end = colon + 1 + len;
                if self.pending.len() > end {
                    if self.pending.get(end) != Some(&b',') {
                        return None;
                    }
                    let payload = String::from_utf8_lossy(self.pending.get(colon + 1..end)?).into_owned();
                    self.pending.drain(..=end);
                    return Some(payload);
                }
            }
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            self.pending.extend_from_slice(buf.get(..n)?);
        }
    }

    /// Sends a command and waits for its answer (events that arrive meanwhile are skipped).
    fn command(&mut self, command: &str, params: &str) -> serde_json::Value {
        let body = serde_json::json!({ "command": command, "params": params, "token": "t" }).to_string();
        self.stream.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("write to ctrl_tcp");
        loop {
            let Some(msg) = self.read_netstring() else {
                panic!("no answer from baresip to {body}");
            };
            let value: serde_json::Value = serde_json::from_str(&msg).unwrap_or_default();
            if value.get("response").and_then(serde_json::Value::as_bool) == Some(true) {
                return value;
            }
        }
    }
}

#[test]
fn baresip_key_presses_on_both_legs_are_reported_as_rfc4733() {
    if !require_tool("baresip") {
        return;
    }
    let tb = TestBox::start(&[ALICE, BOB]);
    let silence = tb.scratch("media").join("silence.wav");
    write_wav(&silence, &vec![0; (SAMPLE_RATE * SILENCE_SECONDS) as usize]);

    let bob_ctrl_port = tb.port();
    let bob = start_phone(&tb, BOB, &silence, bob_ctrl_port);
    assert!(
        bob.wait_for("200 OK", Some("Register:"), PHONE_TIMEOUT),
        "callee did not register\n{}\n{}",
        bob.report(),
        box_context(&tb)
    );
    let ctrl_port = tb.port();
    let alice = start_phone(&tb, ALICE, &silence, ctrl_port);
    assert!(
        alice.wait_for("200 OK", Some("Register:"), PHONE_TIMEOUT),
        "caller did not register\n{}\n{}",
        alice.report(),
        box_context(&tb)
    );
    let mut ctrl = Ctrl::connect(ctrl_port);
    let dialled = ctrl.command("dial", BOB.0);
    assert_eq!(
        dialled.get("ok"),
        Some(&serde_json::Value::Bool(true)),
        "dial: {dialled}\n{}",
        alice.report()
    );
    assert!(
        alice.wait_for("established", None, PHONE_TIMEOUT),
        "the call was not answered\n{}\n{}\n{}",
        alice.report(),
        bob.report(),
        box_context(&tb)
    );
    let press = |ctrl: &mut Ctrl, digit: char| {
        let answer = ctrl.command("sndcode", &digit.to_string());
        assert_eq!(answer.get("ok"), Some(&serde_json::Value::Bool(true)), "sndcode {digit}: {answer}");
        std::thread::sleep(BARESIP_KEY_GAP);
    };
    for digit in BARESIP_DIGITS.chars() {
        press(&mut ctrl, digit);
    }
    press(&mut Ctrl::connect(bob_ctrl_port), BARESIP_CALLEE_DIGIT);
    let got = wait_reports(&tb, BARESIP_DIGITS.len() + 1);
    let _ = ctrl.command("hangup", "");
    let mut want = expect_from_caller(BARESIP_DIGITS, "rfc4733");
    want.push((BARESIP_CALLEE_DIGIT, "callee", "rfc4733"));
    assert_eq!(
        summary(&got),
        want,
        "the box's DTMF reports for baresip's keys {BARESIP_DIGITS:?}: {got:?}\n{}\n{}\n{}",
        alice.report(),
        bob.report(),
        box_context(&tb)
    );
}
