//! DTMF end to end: SIPp's RFC 2833/4733 pcaps through the receiver and the digit stream, INFO
//! body fixtures, and the in-band detector's cost per 20 ms frame.
//!
//! The pcaps come from Debian's `sip-tester` package (`/usr/share/sip-tester`, or the directory
//! in `DTMF_PCAP_DIR`); nothing from them is copied into the repository. With `CI=true` a
//! missing directory fails the test; locally it is skipped with a message.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hakoden::media::dtmf::{
    parse_info, DigitStream, DigitStreamConfig, DtmfSource, G711Law, InbandDetector, TelephoneEventReceiver,
};

/// The payload type SIPp's pcaps use for telephone-event.
const SIPP_TE_PT: u8 = 101;

/// Classic libpcap header lengths.
const PCAP_GLOBAL_HEADER: usize = 24;
const PCAP_RECORD_HEADER: usize = 16;
const LINKTYPE_ETHERNET: u32 = 1;
const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_UDP: u8 = 17;
const UDP_HEADER: usize = 8;

/// One UDP payload from a capture and when it was captured (since the first record).
struct Datagram {
    at: Duration,
    payload: Vec<u8>,
}

/// Reads a classic libpcap file (either byte order, micro- or nanosecond stamps) of Ethernet
/// frames and returns the UDP payloads of IPv4 packets. Malformed records end the read.
fn read_pcap(bytes: &[u8]) -> Result<Vec<Datagram>, String> {
    let header = bytes.get(..PCAP_GLOBAL_HEADER).ok_or("short pcap header")?;
    let magic = [header[0], header[1], header[2], header[3]];
    let (little, nanos) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => (true, false),
        [0xa1, 0xb2, 0xc3, 0xd4] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (true, true),
        [0xa1, 0xb2, 0x3c, 0x4d] => (false, true),
        _ => return Err(format!("not a classic pcap (magic {magic:02x?})")),
    };
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        let v: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(v) } else { u32::from_be_bytes(v) })
    };
    let linktype = u32_at(header, 20).ok_or("short header")?;
    if linktype != LINKTYPE_ETHERNET {
        return Err(format!("link type {linktype} is not Ethernet"));
    }
    let mut out = Vec::new();
    let mut offset = PCAP_GLOBAL_HEADER;
    let mut first: Option<Duration> = None;
    while let Some(record) = bytes.get(offset..offset + PCAP_RECORD_HEADER) {
        let (Some(secs), Some(frac), Some(incl)) = (u32_at(record, 0), u32_at(record, 4), u32_at(record, 8))
        else {
            break;
        };
        let stamp = Duration::from_secs(u64::from(secs))
            + if nanos {
                Duration::from_nanos(u64::from(frac))
            } else {
                Duration::from_micros(u64::from(frac))
            };
        let start = offset + PCAP_RECORD_HEADER;
        let Some(frame) = bytes.get(start..start + incl as usize) else { break };
        offset = start + incl as usize;
        let first = *first.get_or_insert(stamp);
        if let Some(payload) = udp_payload(frame) {
            out.push(Datagram { at: stamp.saturating_sub(first), payload: payload.to_vec() });
        }
    }
    Ok(out)
}

/// The UDP payload of an Ethernet/IPv4 frame (an 802.1Q tag is skipped).
fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let mut ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let mut ip_start = ETHERNET_HEADER;
    if ethertype == ETHERTYPE_VLAN {
        ethertype = u16::from_be_bytes(frame.get(16..18)?.try_into().ok()?);
        ip_start += 4;
    }
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = frame.get(ip_start..)?;
    let version_ihl = *ip.first()?;
    if version_ihl >> 4 != 4 || *ip.get(9)? != IPPROTO_UDP {
        return None;
    }
    let ihl = usize::from(version_ihl & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
    let ip = ip.get(..total.min(ip.len()))?;
    let udp = ip.get(ihl..)?;
    let udp_len = usize::from(u16::from_be_bytes(udp.get(4..6)?.try_into().ok()?));
    udp.get(UDP_HEADER..udp_len.min(udp.len()))
}

/// The pcap directory, or `None` (after saying why) when the test should be skipped.
fn pcap_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DTMF_PCAP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/sip-tester"));
    if dir.join("dtmf_2833_0.pcap").is_file() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!ci, "CI=true but SIPp's DTMF pcaps are missing from {} (install sip-tester)", dir.display());
    eprintln!("skipping: SIPp's DTMF pcaps not found in {} (apt install sip-tester)", dir.display());
    None
}

/// `(file, digit)` for every pcap SIPp ships.
fn sipp_pcaps() -> Vec<(String, char)> {
    let mut out: Vec<(String, char)> = ('0'..='9').map(|d| (format!("dtmf_2833_{d}.pcap"), d)).collect();
    out.push(("dtmf_2833_pound.pcap".into(), '#'));
    out.push(("dtmf_2833_star.pcap".into(), '*'));
    out
}

fn load(dir: &Path, file: &str) -> Vec<Datagram> {
    let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let datagrams = read_pcap(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!datagrams.is_empty(), "{file}: no UDP packets");
    datagrams
}

#[test]
#[allow(clippy::disallowed_methods)] // a base Instant for the virtual clock
fn every_sipp_dtmf_pcap_yields_exactly_its_digit_once() {
    let Some(dir) = pcap_dir() else { return };
    let t0 = Instant::now();
    for (file, digit) in sipp_pcaps() {
        let mut rx = TelephoneEventReceiver::new(SIPP_TE_PT);
        let mut events = Vec::new();
        let mut last = t0;
        for datagram in load(&dir, &file) {
            last = t0 + datagram.at;
            events.extend(rx.handle_rtp(&datagram.payload, last));
            events.extend(std::iter::from_fn(|| rx.poll_event()));
        }
        events.extend(rx.handle_timeout(last + Duration::from_secs(10)));
        let digits: String = events.iter().map(|e| e.digit).collect();
        assert_eq!(digits, digit.to_string(), "{file}");
        assert!(events.iter().all(|e| e.source == DtmfSource::Rfc4733 && e.duration_ms > 0), "{file}");
    }
}

/// Plays `files` one after another on one leg, `gap` after each ends (SIPp resends each
/// capture's RTP headers unchanged, so SSRC and timestamps repeat or go backwards).
#[allow(clippy::disallowed_methods)] // a base Instant for the virtual clock
fn play_in_turn(dir: &Path, files: &[String], gap: Duration) -> String {
    let mut stream = DigitStream::new(DigitStreamConfig {
        telephone_event_pt: Some(SIPP_TE_PT),
        telephone_event_clock_rate: 8_000,
        inband: None,
    });
    let mut base = Instant::now();
    let mut got = String::new();
    for file in files {
        let mut last = base;
        for datagram in load(dir, file) {
            let now = base + datagram.at;
            while let Some(at) = stream.poll_timeout().filter(|&at| at <= now) {
                stream.handle_timeout(at);
            }
            stream.handle_rtp(&datagram.payload, now);
            got.extend(std::iter::from_fn(|| stream.poll_event()).map(|e| e.digit));
            last = now;
        }
        base = last + gap;
    }
    stream.handle_timeout(base + Duration::from_secs(60));
    got.extend(std::iter::from_fn(|| stream.poll_event()).map(|e| e.digit));
    got
}

#[test]
fn all_sipp_pcaps_played_in_turn_on_one_leg_give_every_digit_in_order() {
    let Some(dir) = pcap_dir() else { return };
    let (files, expected): (Vec<String>, String) = sipp_pcaps().into_iter().unzip();
    assert_eq!(play_in_turn(&dir, &files, Duration::from_secs(1)), expected, "one second apart");
    assert_eq!(play_in_turn(&dir, &files, Duration::from_millis(20)), expected, "back to back");
}

#[test]
fn each_sipp_pcap_played_twice_in_a_row_gives_its_digit_twice() {
    let Some(dir) = pcap_dir() else { return };
    let mut files = Vec::new();
    let mut expected = String::new();
    for (file, digit) in sipp_pcaps() {
        files.extend([file.clone(), file]);
        expected.extend([digit, digit]);
    }
    assert_eq!(play_in_turn(&dir, &files, Duration::from_millis(20)), expected);
}

#[test]
fn pcap_reader_rejects_what_it_cannot_read_without_panicking() {
    assert!(read_pcap(b"").is_err());
    assert!(read_pcap(&[0u8; 24]).is_err());
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 12]);
    header.extend_from_slice(&1u32.to_le_bytes());
    let mut truncated = header.clone();
    truncated.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3]);
    assert_eq!(read_pcap(&truncated).map(|d| d.len()), Ok(0));
}

/// Parses the `\r`/`\n` escapes of the fixture file.
fn unescape(s: &str) -> String {
    s.replace("\\r", "\r").replace("\\n", "\n")
}

#[test]
fn info_body_fixtures_give_their_digits() {
    let fixtures = include_str!("data/dtmf/info-bodies.tsv");
    let mut checked = 0;
    for line in fixtures.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [content_type, body, expected] = fields[..] else { panic!("bad fixture line {line:?}") };
        let result = parse_info(content_type, unescape(body).as_bytes());
        if expected == "error" {
            assert!(result.is_err(), "{line:?} gave {result:?}");
        } else {
            let (digit, ms) = expected.split_once(' ').expect("digit and duration");
            let event = result.unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(event.digit.to_string(), digit, "{line:?}");
            assert_eq!(event.duration_ms.to_string(), ms, "{line:?}");
            assert_eq!(event.source, DtmfSource::SipInfo);
        }
        checked += 1;
    }
    assert!(checked >= 16);
}

/// 8 kHz PCM: digit '5' for 100 ms then 100 ms of a 300 Hz hum, repeated; the detector's
/// work per sample does not depend on the signal, but its run logic does a little.
fn benchmark_audio(seconds: usize) -> Vec<i16> {
    let mut out = Vec::with_capacity(seconds * 8_000);
    for i in 0..seconds * 8_000 {
        let t = i as f32 / 8_000.0;
        let x = if (i / 800) % 2 == 0 {
            5_000.0 * (2.0 * std::f32::consts::PI * 770.0 * t).sin()
                + 5_000.0 * (2.0 * std::f32::consts::PI * 1_336.0 * t).sin()
        } else {
            3_000.0 * (2.0 * std::f32::consts::PI * 300.0 * t).sin()
        };
        out.push(x as i16);
    }
    out
}

/// The cost figure for `docs/dtmf.md`. Run in release mode:
/// `cargo test --release --test dtmf -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: run in release mode with --ignored"]
#[allow(clippy::disallowed_methods)] // a benchmark reads the clock
fn inband_detector_cost_per_20ms_frame() {
    const SECONDS: usize = 600;
    let pcm = benchmark_audio(SECONDS);
    let pcmu: Vec<u8> = pcm.iter().map(|&s| G711Law::Mu.encode_sample(s)).collect();
    let frames = pcm.len() / 160;

    let mut detector = InbandDetector::new();
    let start = Instant::now();
    let mut digits = 0;
    for frame in pcm.chunks(160) {
        digits += detector.push(std::hint::black_box(frame)).len();
    }
    let linear_ns = start.elapsed().as_nanos() as f64 / frames as f64;

    let mut detector = InbandDetector::new();
    let start = Instant::now();
    for payload in pcmu.chunks(160) {
        digits += detector.push_g711(G711Law::Mu, std::hint::black_box(payload)).len();
    }
    let pcmu_ns = start.elapsed().as_nanos() as f64 / frames as f64;

    assert_eq!(digits, 2 * SECONDS * 5, "a '5' every 200 ms");
    println!("in-band detector: {linear_ns:.0} ns per 20 ms frame (linear), {pcmu_ns:.0} ns (PCMU decode included)");
    println!("= {:.3} % of one core per leg", pcmu_ns / 20e6 * 100.0);
}
