//! RFC 4733 telephone-events: a per-leg receiver that turns event packets into one
//! [`DigitEvent`] per key press, and a sender that plans the packets for one digit.
//!
//! The receiver identifies a press by `(SSRC, RTP timestamp)`: every packet of one event carries
//! the timestamp of the event's start (RFC 4733 §2.5.1.1), so a new timestamp is a new press even
//! for the same digit. Packets of a finished press arriving within [`STALE_WINDOW`] are
//! retransmissions; a start packet (marker, no E bit) or a packet after that window is the sender
//! replaying the press (capture players such as SIPp resend the same headers). A press is reported once, when its
//! first end packet (E bit) arrives, or when a newer event arrives, or after [`LOST_END_TIMEOUT`]
//! without packets if every end packet was lost.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{digit_to_event, event_to_digit, DigitEvent, DtmfSource};

/// The clock rate of `telephone-event/8000`, by far the most common negotiation.
pub const DEFAULT_CLOCK_RATE: u32 = 8_000;

/// Fixed RTP header length (RFC 3550 §5.1), before CSRCs and extension.
const RTP_HEADER_LEN: usize = 12;
/// Length of one telephone-event payload block (RFC 4733 §2.3).
const EVENT_PAYLOAD_LEN: usize = 4;
/// Length of the packets the sender builds: a bare RTP header plus one event block.
pub const TE_PACKET_LEN: usize = RTP_HEADER_LEN + EVENT_PAYLOAD_LEN;

/// If an event stops updating without an end packet, it is reported after this long. RFC 4733
/// §2.5.1.2 suggests updates every 50 ms, so this is 20 missed updates: long enough that a
/// slow sender is not cut in two, short enough that a menu still reacts.
pub const LOST_END_TIMEOUT: Duration = Duration::from_millis(1_000);

/// How many recently finished events are remembered, so that late end packets and
/// retransmissions of an event already reported are not taken for a new press. Retransmissions
/// arrive within a few packet times, by which point at most a couple of new events started.
const RECENT_EVENTS: usize = 8;

/// Packets of a finished event (or with an older timestamp) arriving within this long after it
/// finished or its last packet are leftovers: the RFC's three end packets span 100 ms at the suggested update
/// interval, plus network reordering. Later ones are the sender starting the event over.
pub const STALE_WINDOW: Duration = Duration::from_millis(500);

/// A long event is split into segments of at most 0xFFFF timestamp units (RFC 4733 §2.5.1.3);
/// a segment only ends at the cap, so a new timestamp continues the press only if the previous
/// segment got this close to the cap.
const SEGMENT_MIN_UNITS: u32 = 0xFFFF - 0x0FFF;

/// Finished presses waiting for [`TelephoneEventReceiver::poll_event`]: one packet finishes at
/// most two, and callers drain after every call, so a few slots are plenty.
const MAX_QUEUED: usize = 4;

/// The update interval of the sender (RFC 4733 §2.5.1.2 suggests 50 ms).
pub const SEND_UPDATE_INTERVAL: Duration = Duration::from_millis(50);
/// The end packet is sent this many times in total (RFC 4733 §2.5.1.4).
pub const SEND_END_REPEATS: usize = 3;
/// Shortest digit the sender plays: shorter tones are below ITU-T Q.24's 40 ms acceptance time
/// for gateways that regenerate the tone in-band.
pub const MIN_SEND_DURATION_MS: u32 = 40;
/// The volume field the sender puts in packets: -10 dBm0, a typical DTMF level (RFC 4733 §2.3.4
/// says the value is the power level as a positive number of dB below 0 dBm0).
const SEND_VOLUME: u8 = 10;

/// A checked view of an RTP packet: every field read is within bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpView<'a> {
    pub(crate) marker: bool,
    pub(crate) payload_type: u8,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    pub(crate) payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// Parses the RTP header (RFC 3550 §5.1), skipping CSRCs and a header extension and
    /// removing padding. Returns `None` for anything that is not a well-formed RTP version 2
    /// packet.
    pub(crate) fn parse(packet: &'a [u8]) -> Option<Self> {
        let header = packet.get(..RTP_HEADER_LEN)?;
        let b0 = *header.first()?;
        let b1 = *header.get(1)?;
        if b0 >> 6 != 2 {
            return None;
        }
        let has_padding = b0 & 0x20 != 0;
        let has_extension = b0 & 0x10 != 0;
        let csrc_count = usize::from(b0 & 0x0f);
        let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
        if has_extension {
            let ext = packet.get(offset..offset + 4)?;
            let words = usize::from(u16::from_be_bytes([*ext.get(2)?, *ext.get(3)?]));
            offset += 4 + 4 * words;
        }
        let mut payload = packet.get(offset..)?;
        if has_padding {
            let pad = usize::from(*payload.last()?);
            if pad == 0 {
                return None;
            }
            payload = payload.get(..payload.len().checked_sub(pad)?)?;
        }
        Some(RtpView {
            marker: b1 & 0x80 != 0,
            payload_type: b1 & 0x7f,
            timestamp: u32::from_be_bytes([
                *header.get(4)?,
                *header.get(5)?,
                *header.get(6)?,
                *header.get(7)?,
            ]),
            ssrc: u32::from_be_bytes([*header.get(8)?, *header.get(9)?, *header.get(10)?, *header.get(11)?]),
            payload,
        })
    }
}

/// One telephone-event payload block (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventBlock {
    event: u8,
    end: bool,
    duration: u16,
}

impl EventBlock {
    /// Parses exactly one event block; trailing bytes are rejected (RFC 4733 does not define
    /// them, and multiple events travel as RFC 2198 redundancy under another payload type).
    fn parse(payload: &[u8]) -> Option<Self> {
        if payload.len() != EVENT_PAYLOAD_LEN {
            return None;
        }
        Some(EventBlock {
            event: *payload.first()?,
            end: payload.get(1)? & 0x80 != 0,
            duration: u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]),
        })
    }
}

/// True if `payload` is one well-formed telephone-event block for a digit.
pub(crate) fn is_digit_event(payload: &[u8]) -> bool {
    EventBlock::parse(payload).and_then(|block| event_to_digit(block.event)).is_some()
}

/// The press being received.
#[derive(Debug, Clone, Copy)]
struct Current {
    ssrc: u32,
    /// Timestamp of the current segment (the press's start for short presses).
    timestamp: u32,
    event: u8,
    /// Duration of earlier segments of a long press, in timestamp units.
    earlier_units: u64,
    /// Largest duration seen in the current segment.
    units: u32,
    last_packet_at: Instant,
    reported: bool,
}

/// Receives RFC 4733 telephone-events for one leg and reports each key press once.
///
/// Feed it every RTP packet of the leg ([`handle_rtp`](Self::handle_rtp)); packets of other
/// payload types are ignored. After each `handle_rtp`/`handle_timeout`, drain
/// [`poll_event`](Self::poll_event): one packet can finish two presses (an event whose end packets
/// were lost, then a new one seen only through its end packets).
#[derive(Debug)]
pub struct TelephoneEventReceiver {
    payload_type: u8,
    clock_rate: u32,
    current: Option<Current>,
    /// `(ssrc, timestamp, last packet)` of finished segments and presses, oldest overwritten
    /// first.
    recent: [Option<(u32, u32, Instant)>; RECENT_EVENTS],
    recent_next: usize,
    queue: VecDeque<DigitEvent>,
}

impl TelephoneEventReceiver {
    /// A receiver for `telephone-event/8000` negotiated as payload type `pt`.
    pub fn new(pt: u8) -> Self {
        Self::with_clock_rate(pt, DEFAULT_CLOCK_RATE)
    }

    /// A receiver for a telephone-event negotiated at another clock rate (e.g. 16000 or 48000
    /// alongside wideband codecs). A rate of 0 is taken as 8000.
    pub fn with_clock_rate(pt: u8, clock_rate: u32) -> Self {
        TelephoneEventReceiver {
            payload_type: pt & 0x7f,
            clock_rate: if clock_rate == 0 { DEFAULT_CLOCK_RATE } else { clock_rate },
            current: None,
            recent: [None; RECENT_EVENTS],
            recent_next: 0,
            queue: VecDeque::with_capacity(MAX_QUEUED),
        }
    }

    /// The payload type this receiver listens to.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// Handles one RTP packet of this leg. Returns a digit when a press is complete; call
    /// [`poll_event`](Self::poll_event) afterwards for a possible second one. Never panics.
    pub fn handle_rtp(&mut self, packet: &[u8], now: Instant) -> Option<DigitEvent> {
        let view = RtpView::parse(packet)?;
        if view.payload_type != self.payload_type {
            return None;
        }
        let block = EventBlock::parse(view.payload)?;
        // Events 16 and above (flash, tones, modem signals) are not digits here.
        event_to_digit(block.event)?;
        self.handle_block(view.ssrc, view.timestamp, view.marker, block, now);
        self.poll_event()
    }

    /// A press finished by the last `handle_rtp`/`handle_timeout` and not yet returned.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<DigitEvent> {
        self.queue.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called: a press is open whose
    /// end packets may all be lost.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let current = self.current.as_ref()?;
        if current.reported {
            return None;
        }
        current.last_packet_at.checked_add(LOST_END_TIMEOUT)
    }

    /// Reports an open press that stopped updating without an end packet. Idempotent.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<DigitEvent> {
        let due = self.poll_timeout().is_some_and(|at| now >= at);
        if due {
            self.finish_current(now);
        }
        self.poll_event()
    }

    /// When the last packet of this finished segment or press arrived, if it is remembered.
    fn recent_last_packet(&self, ssrc: u32, timestamp: u32) -> Option<Instant> {
        self.recent.iter().flatten().find(|r| (r.0, r.1) == (ssrc, timestamp)).map(|r| r.2)
    }

    /// Remembers a finished key, or refreshes the time of its last packet.
    fn remember(&mut self, ssrc: u32, timestamp: u32, now: Instant) {
        if let Some(entry) = self.recent.iter_mut().flatten().find(|r| (r.0, r.1) == (ssrc, timestamp)) {
            entry.2 = now;
            return;
        }
        if let Some(slot) = self.recent.get_mut(self.recent_next) {
            *slot = Some((ssrc, timestamp, now));
        }
        self.recent_next = (self.recent_next + 1) % RECENT_EVENTS;
    }

    fn handle_block(&mut self, ssrc: u32, timestamp: u32, marker: bool, block: EventBlock, now: Instant) {
        if let Some(current) = self.current.as_mut() {
            if current.ssrc == ssrc && current.timestamp == timestamp && !current.reported {
                // An update, an end packet or a retransmission of the press being received.
                if current.event != block.event {
                    return;
                }
                current.units = current.units.max(u32::from(block.duration));
                current.last_packet_at = now;
                if block.end {
                    self.finish_current(now);
                }
                return;
            }
        }
        // A start packet (marker, no end) cannot trail its own end by a whole press, so for an
        // event already finished it means the sender replays it (SIPp plays the same capture
        // twice, or captures with older timestamps, on one SSRC).
        let fresh_start = marker && !block.end;
        if let Some(last_at) = self.recent_last_packet(ssrc, timestamp) {
            if !fresh_start && now.saturating_duration_since(last_at) <= STALE_WINDOW {
                // A late end packet or retransmission of something already finished.
                self.remember(ssrc, timestamp, now);
                return;
            }
        } else if let Some(current) = self.current {
            let older = (timestamp.wrapping_sub(current.timestamp) as i32) < 0;
            let recent = now.saturating_duration_since(current.last_packet_at) <= STALE_WINDOW;
            if current.ssrc == ssrc && older && recent && !fresh_start {
                // Older than the press being received: a reordered leftover, not a new press.
                return;
            }
        }
        if let Some(current) = self.current {
            let delta = timestamp.wrapping_sub(current.timestamp);
            let continues_long_press = current.ssrc == ssrc
                && !current.reported
                && current.event == block.event
                && current.units >= SEGMENT_MIN_UNITS
                && delta >= current.units
                && delta <= current.units.saturating_add(SEGMENT_MIN_UNITS / 16);
            if continues_long_press {
                // RFC 4733 §2.5.1.3: the next segment of the same press.
                self.remember(current.ssrc, current.timestamp, now);
                self.current = Some(Current {
                    timestamp,
                    earlier_units: current.earlier_units + u64::from(delta),
                    units: u32::from(block.duration),
                    last_packet_at: now,
                    ..current
                });
                if block.end {
                    self.finish_current(now);
                }
                return;
            }
            if !current.reported {
                // Its end packets were lost; the new event proves it is over.
                self.finish_current(now);
            }
        }
        self.current = Some(Current {
            ssrc,
            timestamp,
            event: block.event,
            earlier_units: 0,
            units: u32::from(block.duration),
            last_packet_at: now,
            reported: false,
        });
        if block.end {
            // The start and updates were lost: the press is seen only through its end.
            self.finish_current(now);
        }
    }

    /// Marks the current press reported and queues its digit.
    fn finish_current(&mut self, now: Instant) {
        let Some(current) = self.current.as_mut() else { return };
        if current.reported {
            return;
        }
        current.reported = true;
        let (ssrc, timestamp) = (current.ssrc, current.timestamp);
        let units = current.earlier_units + u64::from(current.units);
        let duration_ms = u32::try_from(units * 1_000 / u64::from(self.clock_rate)).unwrap_or(u32::MAX);
        let digit = event_to_digit(current.event);
        self.remember(ssrc, timestamp, now);
        let Some(digit) = digit else { return };
        let event = DigitEvent { digit, duration_ms, source: DtmfSource::Rfc4733 };
        if self.queue.len() >= MAX_QUEUED {
            // The caller is not draining poll_event; the oldest digit is the least useful.
            self.queue.pop_front();
        }
        self.queue.push_back(event);
    }
}

/// The RTP state of the stream the sender's packets join: the relay passes the SSRC it sends
/// with, the next sequence number and the media timestamp at which the digit starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpState {
    /// SSRC of the outgoing stream.
    pub ssrc: u32,
    /// Sequence number of the next packet; advanced past the digit's packets.
    pub seq: u16,
    /// RTP timestamp of the digit's start (all its packets carry it, RFC 4733 §2.5.1.1).
    pub timestamp: u32,
}

/// One packet of a digit and when to send it, relative to the digit's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledPacket {
    /// Send this long after the first packet.
    pub offset: Duration,
    /// The whole RTP packet.
    pub packet: [u8; TE_PACKET_LEN],
}

/// Why the sender refused a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The character is not one of `0-9 * # A-D`.
    NotADigit(char),
    /// The duration is below [`MIN_SEND_DURATION_MS`].
    TooShort,
    /// The duration does not fit one event segment (0xFFFF timestamp units: 8.19 s at 8 kHz).
    TooLong,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::NotADigit(c) => write!(f, "{c:?} is not a DTMF digit"),
            SendError::TooShort => write!(f, "digit shorter than {MIN_SEND_DURATION_MS} ms"),
            SendError::TooLong => write!(f, "digit longer than one RFC 4733 event segment"),
        }
    }
}

impl std::error::Error for SendError {}

/// Plans the RFC 4733 packets of one digit (§2.5): a start packet with the marker bit and
/// duration 0, updates every [`SEND_UPDATE_INTERVAL`], and the end packet sent
/// [`SEND_END_REPEATS`] times at the same interval. Each packet gets its own sequence number
/// (RFC 4733 §2.5.1.4), all carry the start timestamp.
#[derive(Debug, Clone, Copy)]
pub struct TelephoneEventSender {
    payload_type: u8,
    clock_rate: u32,
}

impl TelephoneEventSender {
    /// A sender for `telephone-event/8000` with payload type `pt`.
    pub fn new(pt: u8) -> Self {
        Self::with_clock_rate(pt, DEFAULT_CLOCK_RATE)
    }

    /// A sender at another negotiated clock rate; 0 is taken as 8000.
    pub fn with_clock_rate(pt: u8, clock_rate: u32) -> Self {
        TelephoneEventSender {
            payload_type: pt & 0x7f,
            clock_rate: if clock_rate == 0 { DEFAULT_CLOCK_RATE } else { clock_rate },
        }
    }

    /// The packets for `digit` lasting `duration_ms`, in send order. `state.seq` is advanced
    /// past them; `state.timestamp` is left alone (the media clock is the relay's). The caller
    /// must not start the next digit before the last packet's offset.
    pub fn packets(
        &self,
        digit: char,
        duration_ms: u32,
        state: &mut RtpState,
    ) -> Result<Vec<ScheduledPacket>, SendError> {
        let event = digit_to_event(digit).ok_or(SendError::NotADigit(digit))?;
        if duration_ms < MIN_SEND_DURATION_MS {
            return Err(SendError::TooShort);
        }
        let total_units = self.units(u64::from(duration_ms));
        let total = u16::try_from(total_units).map_err(|_| SendError::TooLong)?;
        let interval_ms = SEND_UPDATE_INTERVAL.as_millis() as u64;
        let mut out = Vec::new();
        let mut elapsed_ms = 0u64;
        while elapsed_ms < u64::from(duration_ms) {
            // elapsed < duration, so its units fit in u16 as well.
            let units = u16::try_from(self.units(elapsed_ms)).unwrap_or(total);
            out.push(self.packet(state, elapsed_ms == 0, event, false, units, elapsed_ms));
            elapsed_ms += interval_ms;
        }
        for repeat in 0..SEND_END_REPEATS as u64 {
            let offset_ms = u64::from(duration_ms) + repeat * interval_ms;
            out.push(self.packet(state, false, event, true, total, offset_ms));
        }
        Ok(out)
    }

    fn units(&self, ms: u64) -> u64 {
        ms * u64::from(self.clock_rate) / 1_000
    }

    fn packet(
        &self,
        state: &mut RtpState,
        marker: bool,
        event: u8,
        end: bool,
        units: u16,
        offset_ms: u64,
    ) -> ScheduledPacket {
        let mut packet = [0u8; TE_PACKET_LEN];
        packet[0] = 0x80; // version 2, no padding, no extension, no CSRC
        packet[1] = self.payload_type | if marker { 0x80 } else { 0 };
        packet[2..4].copy_from_slice(&state.seq.to_be_bytes());
        packet[4..8].copy_from_slice(&state.timestamp.to_be_bytes());
        packet[8..12].copy_from_slice(&state.ssrc.to_be_bytes());
        packet[12] = event;
        packet[13] = SEND_VOLUME | if end { 0x80 } else { 0 };
        packet[14..16].copy_from_slice(&units.to_be_bytes());
        state.seq = state.seq.wrapping_add(1);
        ScheduledPacket { offset: Duration::from_millis(offset_ms), packet }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PT: u8 = 101;
    const SSRC: u32 = 0x1234_5678;

    /// A telephone-event packet: `units` of duration at 8 kHz.
    fn te(seq: u16, ts: u32, marker: bool, event: u8, end: bool, units: u16) -> Vec<u8> {
        let mut p = vec![0x80, PT | if marker { 0x80 } else { 0 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&SSRC.to_be_bytes());
        p.extend_from_slice(&[event, if end { 0x80 | 10 } else { 10 }]);
        p.extend_from_slice(&units.to_be_bytes());
        p
    }

    /// A whole press as a phone sends it: start, updates every 20 ms, three end packets.
    fn press(seq: &mut u16, ts: u32, event: u8, units: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut d = 0u16;
        while d < units {
            out.push(te(*seq, ts, d == 0, event, false, d));
            *seq = seq.wrapping_add(1);
            d = d.saturating_add(160);
        }
        for _ in 0..3 {
            out.push(te(*seq, ts, false, event, true, units));
            *seq = seq.wrapping_add(1);
        }
        out
    }

    fn feed(rx: &mut TelephoneEventReceiver, packets: &[Vec<u8>], t0: Instant) -> Vec<DigitEvent> {
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let now = t0 + Duration::from_millis(20 * i as u64);
            out.extend(rx.handle_rtp(p, now));
            out.extend(std::iter::from_fn(|| rx.poll_event()));
        }
        out
    }

    fn digits(events: &[DigitEvent]) -> String {
        events.iter().map(|e| e.digit).collect()
    }

    // Tests for the receiver.

    #[test]
    fn a_press_with_three_end_packets_is_reported_once_with_its_duration() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let events = feed(&mut rx, &press(&mut 1, 8_000, 5, 800), Instant::now());
        assert_eq!(events, vec![DigitEvent { digit: '5', duration_ms: 100, source: DtmfSource::Rfc4733 }]);
    }

    #[test]
    fn events_without_the_marker_bit_are_reported() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let packets: Vec<_> = (0..4).map(|i| te(i, 160, false, 1, i >= 2, 400)).collect();
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "1");
    }

    #[test]
    fn duplicated_and_retransmitted_packets_do_not_repeat_a_press() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let press = press(&mut 1, 320, 9, 480);
        // Every packet twice, then a late copy of an update and of an end packet.
        let mut packets: Vec<_> = press.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
        packets.push(press[1].clone());
        packets.push(press[press.len() - 1].clone());
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "9");
    }

    #[test]
    fn a_press_replayed_with_the_same_headers_is_a_new_press() {
        // SIPp's pcap player resends a capture's RTP headers unchanged.
        let mut rx = TelephoneEventReceiver::new(PT);
        let once = press(&mut 1, 320, 5, 480);
        let mut packets = once.clone();
        packets.extend(once.clone());
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "55", "replayed at once");
        let t0 = Instant::now();
        let mut rx = TelephoneEventReceiver::new(PT);
        let first = feed(&mut rx, &once[once.len() - 3..], t0);
        let again = feed(&mut rx, &once[once.len() - 3..], t0 + STALE_WINDOW + Duration::from_millis(100));
        assert_eq!(digits(&first) + &digits(&again), "55", "end packets only, replayed after a pause");
    }

    #[test]
    fn a_start_with_an_older_timestamp_is_a_new_press() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let mut packets = press(&mut 1, 17_632, 0, 320);
        packets.extend(press(&mut 1, 13_280, 1, 320));
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "01");
    }

    #[test]
    fn the_same_digit_with_a_new_timestamp_is_a_new_press() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let mut seq = 1;
        let mut packets = press(&mut seq, 1_000, 3, 800);
        packets.extend(press(&mut seq, 3_000, 3, 800));
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "33");
    }

    #[test]
    fn a_press_seen_only_through_its_end_packets_counts_once() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let packets: Vec<_> = (0..3).map(|i| te(10 + i, 4_000, false, 11, true, 960)).collect();
        let events = feed(&mut rx, &packets, Instant::now());
        assert_eq!(digits(&events), "#");
        assert_eq!(events[0].duration_ms, 120);
    }

    #[test]
    fn a_long_press_reports_its_full_duration_once() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let events = feed(&mut rx, &press(&mut 1, 0, 0, 24_000), Instant::now());
        assert_eq!(events, vec![DigitEvent { digit: '0', duration_ms: 3_000, source: DtmfSource::Rfc4733 }]);
    }

    #[test]
    fn a_press_longer_than_one_segment_is_one_press() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let t0 = Instant::now();
        // RFC 4733 §2.5.1.3: the first segment stops at 0xFFFF, the next starts at ts + 0xFFFF.
        assert_eq!(rx.handle_rtp(&te(1, 100, true, 7, false, 0), t0), None);
        assert_eq!(rx.handle_rtp(&te(2, 100, false, 7, false, 0xFFFF), t0), None);
        assert_eq!(rx.handle_rtp(&te(3, 100, false, 7, false, 0xFFFF), t0), None);
        assert_eq!(rx.handle_rtp(&te(4, 100 + 0xFFFF, false, 7, false, 800), t0), None);
        let end = rx.handle_rtp(&te(5, 100 + 0xFFFF, false, 7, true, 1_600), t0).expect("end");
        assert_eq!((end.digit, end.duration_ms), ('7', (0xFFFF + 1_600) / 8));
        assert_eq!(rx.handle_rtp(&te(2, 100, false, 7, false, 0xFFFF), t0), None, "old segment");
    }

    #[test]
    fn all_sixteen_event_codes_map_to_digits_and_others_are_ignored() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let mut packets = Vec::new();
        let mut seq = 0;
        for event in 0..=20u8 {
            packets.extend(press(&mut seq, u32::from(event) * 2_000, event, 320));
        }
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "0123456789*#ABCD");
    }

    #[test]
    fn other_payload_types_and_malformed_packets_are_ignored() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let t0 = Instant::now();
        let mut audio = te(1, 0, false, 5, true, 800);
        audio[1] = 0; // PCMU
        assert_eq!(rx.handle_rtp(&audio, t0), None);
        let mut long = te(1, 0, false, 5, true, 800);
        long.push(0);
        assert_eq!(rx.handle_rtp(&long, t0), None, "trailing byte");
        let mut v1 = te(1, 0, false, 5, true, 800);
        v1[0] = 0x40;
        assert_eq!(rx.handle_rtp(&v1, t0), None, "RTP version 1");
        assert_eq!(rx.handle_rtp(&[0x80, PT], t0), None);
    }

    #[test]
    fn padding_csrcs_and_header_extensions_are_skipped() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let plain = te(1, 0, true, 4, true, 800);
        let mut p = vec![0x80 | 0x20 | 0x10 | 1];
        p.extend_from_slice(&plain[1..12]);
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension of one word
        p.extend_from_slice(&plain[12..]);
        p.extend_from_slice(&[0, 0, 3]); // three bytes of padding
        assert_eq!(rx.handle_rtp(&p, Instant::now()).map(|e| e.digit), Some('4'));
    }

    #[test]
    fn lost_end_packets_are_reported_by_the_next_event() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let mut packets: Vec<_> = (0..3).map(|i| te(i, 0, i == 0, 1, false, 160 * i)).collect();
        let mut seq = 3;
        packets.extend(press(&mut seq, 2_000, 2, 320));
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "12");
    }

    #[test]
    fn an_end_only_press_after_a_press_without_end_reports_both() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let t0 = Instant::now();
        assert_eq!(rx.handle_rtp(&te(1, 0, true, 1, false, 0), t0), None);
        assert_eq!(rx.handle_rtp(&te(9, 5_000, false, 2, true, 800), t0).map(|e| e.digit), Some('1'));
        assert_eq!(rx.poll_event().map(|e| e.digit), Some('2'));
        assert_eq!(rx.poll_event(), None);
    }

    #[test]
    fn a_press_whose_end_packets_are_all_lost_is_reported_at_the_timeout() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let t0 = Instant::now();
        rx.handle_rtp(&te(1, 0, true, 6, false, 0), t0);
        rx.handle_rtp(&te(2, 0, false, 6, false, 400), t0 + Duration::from_millis(50));
        let due = rx.poll_timeout().expect("armed");
        assert_eq!(due, t0 + Duration::from_millis(50) + LOST_END_TIMEOUT);
        assert_eq!(rx.handle_timeout(due - Duration::from_millis(1)), None);
        assert_eq!(rx.handle_timeout(due).map(|e| (e.digit, e.duration_ms)), Some(('6', 50)));
        assert_eq!(rx.poll_timeout(), None);
        assert_eq!(rx.handle_timeout(due), None, "idempotent");
        assert_eq!(rx.handle_rtp(&te(3, 0, false, 6, true, 800), due), None, "late end of a reported press");
    }

    #[test]
    fn a_late_packet_of_an_older_event_is_not_a_new_press() {
        let mut rx = TelephoneEventReceiver::new(PT);
        let mut seq = 1;
        let mut packets = press(&mut seq, 10_000, 1, 320);
        packets.extend(press(&mut seq, 12_000, 2, 320));
        packets.push(te(0, 8_000, false, 3, true, 320)); // older than both
        packets.push(te(0, 10_000, false, 1, true, 320)); // retransmission of the first
        assert_eq!(digits(&feed(&mut rx, &packets, Instant::now())), "12");
    }

    #[test]
    fn wideband_clock_rates_scale_the_duration() {
        let mut rx = TelephoneEventReceiver::with_clock_rate(PT, 48_000);
        let event = rx.handle_rtp(&te(1, 0, true, 8, true, 4_800), Instant::now()).expect("digit");
        assert_eq!(event.duration_ms, 100);
    }

    #[test]
    fn the_receiver_never_panics_on_random_packets() {
        let mut rng = crate::media::dtmf::tests::XorShift(0x2545_f491_4f6c_dd1d);
        let mut rx = TelephoneEventReceiver::new(PT);
        let t0 = Instant::now();
        for round in 0..200_000u64 {
            let len = (rng.next() % 40) as usize;
            let mut p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round % 2 == 0 && p.len() >= 2 {
                // Mostly-valid headers reach deeper into the parser.
                p[0] = 0x80 | (p[0] & 0x3f);
                p[1] = (p[1] & 0x80) | PT;
            }
            let now = t0 + Duration::from_millis(round);
            let _ = rx.handle_rtp(&p, now);
            let _ = rx.poll_event();
            let _ = rx.handle_timeout(now);
        }
    }

    // Tests for the sender.

    #[test]
    fn sender_plans_start_updates_and_three_end_packets() {
        let tx = TelephoneEventSender::new(PT);
        let mut state = RtpState { ssrc: SSRC, seq: 65_534, timestamp: 1_000 };
        let plan = tx.packets('#', 120, &mut state).expect("plan");
        let offsets: Vec<u64> = plan.iter().map(|p| p.offset.as_millis() as u64).collect();
        assert_eq!(offsets, vec![0, 50, 100, 120, 170, 220]);
        assert_eq!(state.seq, 4, "six packets, sequence wrapped");
        let first = RtpView::parse(&plan[0].packet).expect("rtp");
        assert_eq!(first.payload_type, PT);
        assert_eq!(plan[0].packet[1] & 0x80, 0x80, "marker on the first packet only");
        assert!(plan[1..].iter().all(|p| p.packet[1] & 0x80 == 0));
        assert!(plan.iter().all(|p| RtpView::parse(&p.packet).is_some_and(|v| v.timestamp == 1_000)));
        let blocks: Vec<EventBlock> =
            plan.iter().filter_map(|p| EventBlock::parse(&p.packet[12..])).collect();
        assert_eq!(blocks.iter().map(|b| b.duration).collect::<Vec<_>>(), vec![0, 400, 800, 960, 960, 960]);
        assert!(blocks.iter().all(|b| b.event == 11));
        assert_eq!(blocks.iter().filter(|b| b.end).count(), 3);
    }

    #[test]
    fn sender_output_is_read_back_as_one_press_per_digit() {
        let tx = TelephoneEventSender::new(PT);
        let mut rx = TelephoneEventReceiver::new(PT);
        let mut state = RtpState { ssrc: SSRC, seq: 7, timestamp: 0 };
        let t0 = Instant::now();
        let mut got = Vec::new();
        for (i, digit) in "0123456789*#ABCD".chars().enumerate() {
            state.timestamp = i as u32 * 4_000;
            for p in tx.packets(digit, 100, &mut state).expect("plan") {
                got.extend(rx.handle_rtp(&p.packet, t0 + p.offset));
            }
        }
        assert_eq!(digits(&got), "0123456789*#ABCD");
        assert!(got.iter().all(|e| e.duration_ms == 100));
    }

    #[test]
    fn sender_refuses_bad_digits_and_durations() {
        let tx = TelephoneEventSender::new(PT);
        let mut state = RtpState { ssrc: 1, seq: 1, timestamp: 0 };
        assert_eq!(tx.packets('E', 100, &mut state), Err(SendError::NotADigit('E')));
        assert_eq!(tx.packets('1', 39, &mut state), Err(SendError::TooShort));
        assert_eq!(tx.packets('1', 8_200, &mut state), Err(SendError::TooLong));
        assert_eq!(state.seq, 1, "nothing consumed");
        assert!(TelephoneEventSender::with_clock_rate(PT, 48_000).packets('1', 1_400, &mut state).is_err());
    }
}
