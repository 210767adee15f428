//! DTMF: one digit stream per leg, whichever way the digits came.
//!
//! Layers (all sans-IO: no sockets, no clock; time comes in as `now`):
//! - [`rfc4733`]: RFC 4733 telephone-event receiver (one report per press) and sender (the
//!   packets of one digit, for the relay to send on schedule).
//! - [`info`]: SIP INFO bodies, `application/dtmf-relay` and `application/dtmf`.
//! - [`inband`]: a Goertzel detector on 8 kHz PCM, with a G.711 helper.
//! - [`DigitStream`] (here): merges the three sources of one leg and reports each press once.
//! - [`collector`]: turns digits into menu choices and feature codes (max digits, timeouts,
//!   terminator).
//!
//! Deduplication rules of [`DigitStream`] (see `docs/dtmf.md`):
//! 1. RFC 4733 is preferred. While telephone-events flow on the leg (a valid telephone-event
//!    packet within [`TE_FLOWING_WINDOW`]), in-band detection is off and INFO digits are dropped:
//!    phones that send two ways send the same presses both ways.
//! 2. An in-band or INFO digit is held for [`HOLD_FOR_RFC4733`] before it is reported, and dropped
//!    if a telephone-event packet arrives meanwhile (the RTP stream may lag the tone or the INFO).
//!    Without a negotiated telephone-event payload type there is no hold.
//! 3. Two reports of the same digit from different sources whose presses overlap in time (each
//!    widened by [`OVERLAP_SLACK`]) are one press: the later report is dropped. Reports from the
//!    same source are never merged: the receivers already report each press once.
//!
//! The public interface is: [`DigitEvent`], [`DtmfSource`], [`DigitStream`],
//! [`DigitStreamConfig`], [`InbandAudio`], and the modules' own types re-exported below.

pub mod collector;
pub mod inband;
pub mod info;
pub mod rfc4733;

pub use collector::{Collected, CollectorConfig, DigitCollector};
pub use inband::{G711Law, InbandDetector};
pub use info::{parse_info, InfoError};
pub use rfc4733::{RtpState, ScheduledPacket, SendError, TelephoneEventReceiver, TelephoneEventSender};

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Where a digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event RTP packets.
    Rfc4733,
    /// A SIP INFO request.
    SipInfo,
    /// Tones detected in the audio.
    InBand,
}

/// One key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    /// One of `0-9 * # A-D`.
    pub digit: char,
    /// How long the key was held, as the source reported or measured it.
    pub duration_ms: u32,
    /// How it arrived.
    pub source: DtmfSource,
}

/// RFC 4733 event code (§3.2) to digit: 0-9, 10 = `*`, 11 = `#`, 12-15 = `A`-`D`.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Digit to RFC 4733 event code; `a`-`d` are accepted as `A`-`D`.
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        c @ '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        c @ 'A'..='D' => Some(c as u8 - b'A' + 12),
        _ => None,
    }
}

/// A telephone-event packet within this window means RFC 4733 is flowing on the leg. Covers the
/// gap between presses of a quick dialler, so in-band stays off for a whole dialling burst.
pub const TE_FLOWING_WINDOW: Duration = Duration::from_secs(5);

/// How long in-band and INFO digits wait for a telephone-event packet that would supersede
/// them: covers RTP lagging the tone by a jitter buffer's worth, while a phone without RFC 4733
/// still gets its digit within a fifth of a second.
pub const HOLD_FOR_RFC4733: Duration = Duration::from_millis(200);

/// Two reports of the same digit from different sources are one press if their time spans,
/// widened by this, overlap: SIP and RTP take different paths and INFO durations are nominal.
pub const OVERLAP_SLACK: Duration = Duration::from_millis(500);

/// Digits waiting to be polled. A human dials at most ~10 digits a second; a caller that does
/// not drain for seconds loses the oldest.
const MAX_QUEUED_DIGITS: usize = 32;

/// In-band and INFO digits being held (rule 2); at most a few presses fit in the hold time.
const MAX_HELD_DIGITS: usize = 8;

/// The audio stream to scan for in-band tones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InbandAudio {
    /// The RTP payload type of the G.711 stream (0 for PCMU, 8 for PCMA).
    pub payload_type: u8,
    /// Its law.
    pub law: G711Law,
}

/// What a leg negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DigitStreamConfig {
    /// The telephone-event payload type, if negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Its clock rate (0 means 8000).
    pub telephone_event_clock_rate: u32,
    /// Scan this G.711 stream for tones; `None` turns in-band detection off.
    pub inband: Option<InbandAudio>,
}

/// A reported press, with its time span for rule 3.
#[derive(Debug, Clone, Copy)]
struct Press {
    event: DigitEvent,
    start: Instant,
    end: Instant,
}

impl Press {
    fn ending_at(event: DigitEvent, end: Instant) -> Self {
        let start = end.checked_sub(Duration::from_millis(u64::from(event.duration_ms))).unwrap_or(end);
        Press { event, start, end }
    }

    fn overlaps(&self, other: &Press) -> bool {
        let widened_end = self.end.checked_add(OVERLAP_SLACK).unwrap_or(self.end);
        let other_widened_end = other.end.checked_add(OVERLAP_SLACK).unwrap_or(other.end);
        self.start <= other_widened_end && other.start <= widened_end
    }
}

/// The digits of one leg, merged from RFC 4733, SIP INFO and in-band detection.
///
/// Inputs: [`handle_rtp`](Self::handle_rtp) for every RTP packet of the leg (telephone-events and
/// audio), [`handle_pcm`](Self::handle_pcm) if the caller decodes audio itself,
/// [`handle_info`](Self::handle_info) for INFO requests, and
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout). After each
/// input, drain [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct DigitStream {
    telephone_events: Option<TelephoneEventReceiver>,
    inband_audio: Option<InbandAudio>,
    detector: InbandDetector,
    last_te_packet: Option<Instant>,
    held: VecDeque<(Press, Instant)>,
    last_reported: Option<Press>,
    queue: VecDeque<DigitEvent>,
    dropped: u64,
}

impl DigitStream {
    /// A stream for a leg that negotiated `config`.
    pub fn new(config: DigitStreamConfig) -> Self {
        DigitStream {
            telephone_events: config
                .telephone_event_pt
                .map(|pt| TelephoneEventReceiver::with_clock_rate(pt, config.telephone_event_clock_rate)),
            inband_audio: config.inband,
            detector: InbandDetector::new(),
            last_te_packet: None,
            held: VecDeque::new(),
            last_reported: None,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// True while telephone-events flow on this leg (rule 1).
    pub fn rfc4733_flowing(&self, now: Instant) -> bool {
        self.last_te_packet.is_some_and(|at| now.saturating_duration_since(at) < TE_FLOWING_WINDOW)
    }

    /// Digits lost because the caller did not drain [`poll_event`](Self::poll_event).
    pub fn dropped_digits(&self) -> u64 {
        self.dropped
    }

    /// Handles one RTP packet of the leg: telephone-events go to the RFC 4733 receiver, the
    /// configured G.711 stream to the in-band detector, anything else is ignored. Never panics.
    pub fn handle_rtp(&mut self, packet: &[u8], now: Instant) {
        let Some(view) = rfc4733::RtpView::parse(packet) else { return };
        if let Some(receiver) = self.telephone_events.as_mut() {
            if view.payload_type == receiver.payload_type() {
                let first = receiver.handle_rtp(packet, now);
                let second = receiver.poll_event();
                if rfc4733::is_digit_event(view.payload) {
                    self.telephone_event_seen(now);
                }
                for event in first.into_iter().chain(second) {
                    self.report(Press::ending_at(event, now));
                }
                return;
            }
        }
        if let Some(audio) = self.inband_audio {
            if view.payload_type == audio.payload_type {
                if self.rfc4733_flowing(now) {
                    self.detector.reset();
                    return;
                }
                let events = self.detector.push_g711(audio.law, view.payload);
                self.hold_all(events, now);
            }
        }
    }

    /// Handles decoded 8 kHz PCM of the leg (for callers that decode themselves).
    pub fn handle_pcm(&mut self, samples: &[i16], now: Instant) {
        if self.rfc4733_flowing(now) {
            self.detector.reset();
            return;
        }
        let events = self.detector.push(samples);
        self.hold_all(events, now);
    }

    /// Handles the body of a SIP INFO on this leg. The error says how to answer the INFO
    /// ([`InfoError::status_code`]); a digit dropped as a duplicate is still answered 200.
    pub fn handle_info(&mut self, content_type: &str, body: &[u8], now: Instant) -> Result<(), InfoError> {
        let event = parse_info(content_type, body)?;
        if self.rfc4733_flowing(now) {
            return Ok(());
        }
        // INFO is typically sent at key down: its span starts now.
        let end = now.checked_add(Duration::from_millis(u64::from(event.duration_ms))).unwrap_or(now);
        self.hold(Press { event, start: now, end }, now);
        Ok(())
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held.front().map(|&(_, release)| release);
        let receiver = self.telephone_events.as_ref().and_then(TelephoneEventReceiver::poll_timeout);
        [held, receiver].into_iter().flatten().min()
    }

    /// Releases held digits and reports telephone-events whose end packets were lost.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(receiver) = self.telephone_events.as_mut() {
            let first = receiver.handle_timeout(now);
            let second = receiver.poll_event();
            for event in first.into_iter().chain(second) {
                self.report(Press::ending_at(event, now));
            }
        }
        while let Some(&(press, release)) = self.held.front() {
            if release > now {
                break;
            }
            self.held.pop_front();
            self.report(press);
        }
    }

    /// The next digit of this leg.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DigitEvent> {
        self.queue.pop_front()
    }

    fn telephone_event_seen(&mut self, now: Instant) {
        // Whatever the detector was building is the press the telephone-event carries.
        self.detector.reset();
        self.last_te_packet = Some(now);
        self.held.clear();
    }

    fn hold_all(&mut self, events: Vec<DigitEvent>, now: Instant) {
        for event in events {
            self.hold(Press::ending_at(event, now), now);
        }
    }

    fn hold(&mut self, press: Press, now: Instant) {
        if self.telephone_events.is_none() {
            self.report(press);
            return;
        }
        if self.held.len() >= MAX_HELD_DIGITS {
            self.held.pop_front();
            self.dropped += 1;
        }
        self.held.push_back((press, now.checked_add(HOLD_FOR_RFC4733).unwrap_or(now)));
    }

    /// Rule 3, then the output queue.
    fn report(&mut self, press: Press) {
        if let Some(last) = self.last_reported {
            if last.event.digit == press.event.digit
                && last.event.source != press.event.source
                && last.overlaps(&press)
            {
                return;
            }
        }
        self.last_reported = Some(press);
        if self.queue.len() >= MAX_QUEUED_DIGITS {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(press.event);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::media::dtmf::inband::tests::Signal;

    const TE_PT: u8 = 101;
    const T: fn(u64) -> Duration = Duration::from_millis;

    fn config(te: bool, inband: bool) -> DigitStreamConfig {
        DigitStreamConfig {
            telephone_event_pt: te.then_some(TE_PT),
            telephone_event_clock_rate: 8_000,
            inband: inband.then_some(InbandAudio { payload_type: 0, law: G711Law::Mu }),
        }
    }

    /// One leg's stream on a virtual clock, with the digits it reported.
    struct Leg {
        stream: DigitStream,
        t0: Instant,
        out: String,
        sources: Vec<DtmfSource>,
    }

    impl Leg {
        fn new(config: DigitStreamConfig) -> Self {
            Leg {
                stream: DigitStream::new(config),
                t0: Instant::now(),
                out: String::new(),
                sources: Vec::new(),
            }
        }

        fn drain(&mut self) {
            while let Some(e) = self.stream.poll_event() {
                self.out.push(e.digit);
                self.sources.push(e.source);
            }
        }

        /// Runs timers up to `until_ms`.
        fn run_until(&mut self, until_ms: u64) {
            let until = self.t0 + T(until_ms);
            while let Some(at) = self.stream.poll_timeout().filter(|&at| at <= until) {
                self.stream.handle_timeout(at);
                self.drain();
            }
        }

        fn rtp(&mut self, at_ms: u64, packet: &[u8]) {
            self.run_until(at_ms);
            self.stream.handle_rtp(packet, self.t0 + T(at_ms));
            self.drain();
        }

        fn info(&mut self, at_ms: u64, body: &str) {
            self.run_until(at_ms);
            let r = self.stream.handle_info("application/dtmf-relay", body.as_bytes(), self.t0 + T(at_ms));
            assert_eq!(r, Ok(()));
            self.drain();
        }
    }

    fn pcmu_packets(pcm: &[i16]) -> Vec<Vec<u8>> {
        pcm.chunks(160)
            .enumerate()
            .map(|(i, frame)| {
                let mut p = vec![0x80, 0];
                p.extend_from_slice(&(i as u16).to_be_bytes());
                p.extend_from_slice(&(i as u32 * 160).to_be_bytes());
                p.extend_from_slice(&7u32.to_be_bytes());
                p.extend(frame.iter().map(|&s| G711Law::Mu.encode_sample(s)));
                p
            })
            .collect()
    }

    /// `(time_ms, packet)` for a press of `digit` starting at `start_ms`, as a phone sends it.
    fn te_press(digit: char, start_ms: u64, ms: u32, seq: &mut u16) -> Vec<(u64, Vec<u8>)> {
        let mut state = RtpState { ssrc: 9, seq: *seq, timestamp: start_ms as u32 * 8 };
        let plan = TelephoneEventSender::new(TE_PT).packets(digit, ms, &mut state).expect("plan");
        *seq = state.seq;
        plan.into_iter().map(|p| (start_ms + p.offset.as_millis() as u64, p.packet.to_vec())).collect()
    }

    /// Audio of `digits` pressed for 100 ms each, 200 ms apart, as (time_ms, packet).
    fn audio(digits: &str) -> Vec<(u64, Vec<u8>)> {
        let mut s = Signal::default().silence(40);
        for d in digits.chars() {
            s = s.digit(d, -8.0, 100).silence(100);
        }
        pcmu_packets(&s.silence(200).pcm()).into_iter().enumerate().map(|(i, p)| (i as u64 * 20, p)).collect()
    }

    fn play(leg: &mut Leg, mut packets: Vec<(u64, Vec<u8>)>) {
        packets.sort_by_key(|(t, _)| *t);
        for (t, p) in packets {
            leg.rtp(t, &p);
        }
        leg.run_until(10_000);
    }

    // Tests for single sources.

    #[test]
    fn stream_reports_inband_digits_without_telephone_events() {
        let mut leg = Leg::new(config(false, true));
        play(&mut leg, audio("159#"));
        assert_eq!(leg.out, "159#");
    }

    #[test]
    fn stream_reports_info_digits_after_the_hold() {
        let mut leg = Leg::new(config(true, false));
        leg.info(0, "Signal=7\r\nDuration=160");
        assert_eq!(leg.out, "", "held for a telephone-event that might supersede it");
        leg.run_until(HOLD_FOR_RFC4733.as_millis() as u64);
        assert_eq!(leg.out, "7");
    }

    #[test]
    fn stream_reports_info_at_once_without_a_telephone_event_payload_type() {
        let mut leg = Leg::new(config(false, false));
        leg.info(0, "Signal=7");
        assert_eq!(leg.out, "7");
    }

    // Tests for deduplication.

    #[test]
    fn a_press_sent_as_both_tone_and_telephone_event_is_reported_once() {
        for te_lag_ms in [0, 20, 60, 120] {
            let mut leg = Leg::new(config(true, true));
            let mut packets = audio("2580");
            let mut seq = 100;
            for (i, d) in "2580".chars().enumerate() {
                packets.extend(te_press(d, 40 + 200 * i as u64 + te_lag_ms, 100, &mut seq));
            }
            play(&mut leg, packets);
            assert_eq!(leg.out, "2580", "telephone-events {te_lag_ms} ms behind the tones");
            assert!(leg.sources.iter().all(|&s| s == DtmfSource::Rfc4733));
        }
    }

    #[test]
    fn telephone_event_is_preferred_over_inband() {
        let mut leg = Leg::new(config(true, true));
        let mut packets = audio("3");
        packets.extend(te_press('3', 40, 100, &mut 1));
        play(&mut leg, packets);
        assert_eq!(leg.out, "3");
        assert_eq!(leg.sources, vec![DtmfSource::Rfc4733]);
    }

    #[test]
    fn info_sent_alongside_telephone_events_is_dropped() {
        let mut leg = Leg::new(config(true, false));
        let mut seq = 1;
        for (t, p) in te_press('4', 0, 100, &mut seq) {
            leg.rtp(t, &p);
            if t == 50 {
                leg.info(60, "Signal=4\nDuration=100");
            }
        }
        leg.run_until(5_000);
        assert_eq!(leg.out, "4");
    }

    #[test]
    fn info_arriving_just_before_the_telephone_events_is_dropped() {
        let mut leg = Leg::new(config(true, false));
        leg.info(0, "Signal=4\nDuration=100");
        play(&mut leg, te_press('4', 100, 100, &mut 1));
        assert_eq!(leg.out, "4");
    }

    #[test]
    fn telephone_event_after_an_already_reported_info_of_the_same_press_is_dropped() {
        let mut leg = Leg::new(config(true, false));
        leg.info(0, "Signal=6\nDuration=300");
        leg.run_until(250);
        assert_eq!(leg.out, "6");
        play(&mut leg, te_press('6', 250, 100, &mut 1));
        assert_eq!(leg.out, "6");
    }

    #[test]
    fn repeated_presses_of_one_digit_from_one_source_all_count() {
        let mut leg = Leg::new(config(true, true));
        let mut seq = 1;
        let mut packets = Vec::new();
        for i in 0..3 {
            packets.extend(te_press('1', i * 200, 80, &mut seq));
        }
        play(&mut leg, packets);
        assert_eq!(leg.out, "111");
        let mut leg = Leg::new(config(false, true));
        play(&mut leg, audio("111"));
        assert_eq!(leg.out, "111");
    }

    #[test]
    fn inband_detection_resumes_after_telephone_events_stop() {
        let mut leg = Leg::new(config(true, true));
        play(&mut leg, te_press('9', 0, 100, &mut 1));
        assert!(leg.stream.rfc4733_flowing(leg.t0 + T(300)));
        let later = TE_FLOWING_WINDOW.as_millis() as u64 + 1_000;
        for (t, p) in audio("8") {
            leg.rtp(later + t, &p);
        }
        leg.run_until(later + 10_000);
        assert_eq!(leg.out, "98");
    }

    #[test]
    fn bad_info_bodies_are_errors_for_the_caller_to_answer() {
        let mut stream = DigitStream::new(config(true, false));
        let now = Instant::now();
        assert_eq!(stream.handle_info("text/plain", b"5", now), Err(InfoError::UnsupportedContentType));
        assert_eq!(stream.handle_info("application/dtmf", b"x", now), Err(InfoError::InvalidSignal));
    }

    #[test]
    fn the_stream_never_panics_on_random_rtp() {
        let mut rng = XorShift(77);
        let mut stream = DigitStream::new(config(true, true));
        let t0 = Instant::now();
        for round in 0..50_000u64 {
            let len = (rng.next() % 200) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if p.len() >= 2 {
                p[0] = 0x80 | (p[0] & 0x3f);
                p[1] = if round % 2 == 0 { TE_PT } else { 0 };
            }
            let now = t0 + T(round);
            stream.handle_rtp(&p, now);
            stream.handle_timeout(now);
            while stream.poll_event().is_some() {}
        }
    }

    #[test]
    fn digit_mapping_round_trips_for_all_sixteen_events() {
        for event in 0..16 {
            let digit = event_to_digit(event).expect("digit");
            assert_eq!(digit_to_event(digit), Some(event));
        }
        assert_eq!(event_to_digit(16), None);
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('e'), None);
    }

    /// A tiny deterministic generator for the randomized no-panic tests (no dependency).
    pub(crate) struct XorShift(pub(crate) u64);

    impl XorShift {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }
}
