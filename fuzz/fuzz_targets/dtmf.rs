//! DTMF inputs from the network on arbitrary bytes: RFC 4733 packets (through one receiver, so
//! state carries across inputs of a run), SIP INFO bodies, and G.711 audio for the in-band
//! detector. None may panic.
#![no_main]

use hakoden::media::dtmf::{parse_info, G711Law, InbandDetector, TelephoneEventReceiver};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut rx = TelephoneEventReceiver::new(101);
    // Split the input into packets on 0xFF boundaries so one input exercises a sequence.
    for (i, packet) in data.split(|b| *b == 0xff).enumerate() {
        let now = t0 + Duration::from_millis(20 * i as u64);
        let _ = rx.handle_rtp(packet, now);
        while rx.poll_event().is_some() {}
        let _ = rx.handle_timeout(now);
    }
    let (ct, body) = match data.first() {
        Some(b) if b % 2 == 0 => ("application/dtmf-relay", data.get(1..).unwrap_or(&[])),
        _ => ("application/dtmf", data.get(1..).unwrap_or(&[])),
    };
    let _ = parse_info(ct, body);
    let mut det = InbandDetector::new();
    let _ = det.push_g711(G711Law::Mu, data);
});
