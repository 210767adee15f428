//! A small jitter buffer with loss concealment, for RTP the box terminates (prompts, recording,
//! conference). Not used where the relay only forwards packets.
//!
//! Sans-IO: [`JitterBuffer::push`] takes decoded PCM ([`super::g711::decode`]) with its RTP SSRC,
//! sequence number and timestamp, and the arrival time; [`JitterBuffer::pop`] is called by the
//! driver every ptime (20 ms) and returns one [`Frame`].
//!
//! Playout runs on the RTP timestamp: the first packet of a stream anchors the playout clock,
//! playing starts `min_delay` after that packet arrived, and each pop plays the next ptime worth of
//! timestamps whether or not it arrived. So reordering within the delay is undone, a packet
//! arriving after its slot was played is dropped as late, and duplicates (same timestamp) are
//! dropped. Timestamps and sequence numbers are compared modulo 2^32 / 2^16, so wrap-around is
//! seamless. Packets of any length up to [`MAX_PACKET_SAMPLES`] are accepted; frames are cut
//! from the sample timeline.
//!
//! Resets (buffer flushed, clock re-anchored on the new packet): a new SSRC; a timestamp more
//! than [`RESYNC_MS`] away from the playout clock (the sender restarted its stream or jumped);
//! and a late packet while starved (the sender's clock runs slow against ours, or the path
//! delay grew, so we wait for the new delay instead of dropping everything). A sender whose clock
//! runs fast fills the buffer to `max_depth`; beyond that the oldest audio is skipped.
//!
//! Loss concealment: a missing frame repeats the last frame attenuated ([`CONCEAL_GAIN`]) for up
//! to [`CONCEAL_FRAMES`] frames, the next one fades linearly to zero, then silence follows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::SAMPLE_RATE_HZ;

/// Longest packet accepted: 120 ms, the largest ptime phones offer for G.711; bounds memory per
/// packet.
pub const MAX_PACKET_SAMPLES: usize = 960;
/// Frames of attenuated repetition before fading out: past 60 ms a repeated frame sounds like a
/// buzz, not like speech.
pub const CONCEAL_FRAMES: u32 = 3;
/// Gain applied per concealed frame (cumulative: 0.7, 0.49, 0.34), then a fade to zero.
pub const CONCEAL_GAIN: f32 = 0.7;
/// A timestamp this far from the playout clock means the stream restarted, not jitter.
pub const RESYNC_MS: u32 = 1_000;

/// Buffer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Frame length handed out per pop (the RTP ptime).
    pub ptime: Duration,
    /// Most audio held ahead of the playout clock; beyond it the oldest is skipped.
    pub max_depth: Duration,
    /// Delay between the first packet's arrival and its playout (absorbs jitter up to this).
    pub min_delay: Duration,
}

impl Default for JitterConfig {
    /// 20 ms frames, 200 ms maximum depth, 40 ms playout delay: covers the jitter of a LAN or a
    /// decent SIP trunk while adding little to the mouth-to-ear delay.
    fn default() -> Self {
        JitterConfig {
            ptime: Duration::from_millis(20),
            max_depth: Duration::from_millis(200),
            min_delay: Duration::from_millis(40),
        }
    }
}

/// One ptime of playout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Received audio (samples of a partly received frame that are missing are zero).
    Audio(Vec<i16>),
    /// Nothing arrived for this frame: the concealment of it.
    Concealed(Vec<i16>),
    /// No stream yet, still buffering, or concealment ran out.
    Silence,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Stored for playout.
    Queued,
    /// Stored, after flushing the buffer and re-anchoring the clock (new SSRC, timestamp jump,
    /// or late while starved).
    Reset,
    /// Its slot was already played: dropped.
    Late,
    /// Same timestamp as a packet already stored: dropped.
    Duplicate,
    /// Empty or longer than [`MAX_PACKET_SAMPLES`]: dropped.
    BadSize,
}

/// Counters for the stats page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets pushed.
    pub received: u64,
    /// Packets dropped as late.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets dropped for their size.
    pub bad_size: u64,
    /// Times the buffer was flushed and re-anchored.
    pub resets: u64,
    /// Times audio was skipped because the buffer exceeded its maximum depth.
    pub overflows: u64,
    /// Frames played as received audio.
    pub audio_frames: u64,
    /// Frames concealed.
    pub concealed_frames: u64,
    /// Packets the sequence numbers say were sent (highest minus first plus one, across wraps).
    pub expected: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No packet yet.
    Idle,
    /// First packet arrived at `since`; playout starts at `since + min_delay`.
    Buffering {
        since: Instant,
    },
    Playing,
}

/// The jitter buffer for one received stream.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    frame: usize,
    max_depth: i64,
    min_delay: Duration,
    state: State,
    ssrc: Option<u32>,
    /// Extended RTP timestamp of the next sample to play.
    next: i64,
    /// Stored packets by extended timestamp.
    packets: BTreeMap<i64, Vec<i16>>,
    last_audio: Vec<i16>,
    /// Consecutive frames with nothing received.
    lost_run: u32,
    /// First and highest extended sequence numbers of the current stream.
    seq_first: i64,
    seq_high: i64,
    stats: JitterStats,
}

/// Milliseconds to 8 kHz samples.
fn samples(d: Duration) -> i64 {
    (d.as_millis() as i64).saturating_mul(i64::from(SAMPLE_RATE_HZ) / 1_000)
}

impl JitterBuffer {
    /// A buffer with `config`. A ptime of 0 or above 120 ms is taken as 20 ms.
    pub fn new(config: JitterConfig) -> Self {
        let mut frame = samples(config.ptime) as usize;
        if frame == 0 || frame > MAX_PACKET_SAMPLES {
            frame = samples(Duration::from_millis(20)) as usize;
        }
        JitterBuffer {
            frame,
            max_depth: samples(config.max_depth).max(frame as i64),
            min_delay: config.min_delay,
            state: State::Idle,
            ssrc: None,
            next: 0,
            packets: BTreeMap::new(),
            last_audio: Vec::new(),
            lost_run: 0,
            seq_first: 0,
            seq_high: 0,
            stats: JitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Audio buffered ahead of the playout clock, in samples.
    pub fn depth_samples(&self) -> usize {
        self.packets.iter().next_back().map_or(0, |(ts, p)| (ts + p.len() as i64 - self.next).max(0) as usize)
    }

    fn anchor(&mut self, seq: u16, ts: u32, now: Instant) {
        self.packets.clear();
        self.next = i64::from(ts);
        self.state = State::Buffering { since: now };
        self.lost_run = 0;
        self.last_audio.clear();
        self.seq_first = i64::from(seq);
        self.seq_high = i64::from(seq);
    }

    /// Takes one received packet's decoded samples.
    pub fn push(&mut self, ssrc: u32, seq: u16, timestamp: u32, pcm: &[i16], now: Instant) -> PushOutcome {
        self.stats.received += 1;
        if pcm.is_empty() || pcm.len() > MAX_PACKET_SAMPLES {
            self.stats.bad_size += 1;
            return PushOutcome::BadSize;
        }
        let mut outcome = PushOutcome::Queued;
        if self.state == State::Idle || self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.stats.resets += 1;
                outcome = PushOutcome::Reset;
            }
            self.ssrc = Some(ssrc);
            self.anchor(seq, timestamp, now);
        }
        let mut ext = self.next + i64::from(timestamp.wrapping_sub(self.next as u32) as i32);
        let delta = ext - self.next;
        let starved = self.state == State::Playing && self.lost_run > CONCEAL_FRAMES;
        let jumped = delta.abs() > samples(Duration::from_millis(u64::from(RESYNC_MS)));
        if jumped || (starved && delta < 0) {
            self.stats.resets += 1;
            self.anchor(seq, timestamp, now);
            ext = self.next;
            outcome = PushOutcome::Reset;
        }
        self.track_seq(seq);
        if ext < self.next {
            match self.state {
                // Before playout starts, an earlier packet moves the start back, within reason.
                State::Buffering { .. } if self.next - ext <= self.max_depth => self.next = ext,
                _ => {
                    self.stats.late += 1;
                    return PushOutcome::Late;
                }
            }
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        let end = ext + pcm.len() as i64;
        if end - self.next > self.max_depth {
            // Sender's clock runs fast or a burst arrived: skip the oldest audio.
            self.stats.overflows += 1;
            self.next = end - self.max_depth;
            let next = self.next;
            self.packets.retain(|ts, p| ts + p.len() as i64 > next);
        }
        self.packets.insert(ext, pcm.to_vec());
        outcome
    }

    /// RFC 3550 A.1-style extended sequence numbers, for the expected-packet count.
    fn track_seq(&mut self, seq: u16) {
        let delta = i64::from(seq.wrapping_sub(self.seq_high as u16) as i16);
        if delta > 0 {
            self.seq_high += delta;
        }
        self.stats.expected = (self.seq_high - self.seq_first + 1).max(0) as u64;
    }

    /// The next ptime of playout. Call once per ptime.
    pub fn pop(&mut self, now: Instant) -> Frame {
        match self.state {
            State::Idle => return Frame::Silence,
            State::Buffering { since } => {
                if now < since + self.min_delay {
                    return Frame::Silence;
                }
                self.state = State::Playing;
            }
            State::Playing => {}
        }
        let start = self.next;
        let end = start + self.frame as i64;
        let mut out = vec![0i16; self.frame];
        let mut got = false;
        for (&ts, p) in self.packets.range(start - MAX_PACKET_SAMPLES as i64..end) {
            let from = start.max(ts);
            let to = end.min(ts + p.len() as i64);
            if from >= to {
                continue;
            }
            let (src, dst) = ((from - ts) as usize, (from - start) as usize);
            let n = (to - from) as usize;
            if let (Some(d), Some(s)) = (out.get_mut(dst..dst + n), p.get(src..src + n)) {
                d.copy_from_slice(s);
                got = true;
            }
        }
        self.next = end;
        self.packets.retain(|ts, p| ts + p.len() as i64 > end);
        if got {
            self.lost_run = 0;
            self.last_audio.clone_from(&out);
            self.stats.audio_frames += 1;
            return Frame::Audio(out);
        }
        self.lost_run = self.lost_run.saturating_add(1);
        if self.last_audio.is_empty() || self.lost_run > CONCEAL_FRAMES + 1 {
            return Frame::Silence;
        }
        self.stats.concealed_frames += 1;
        let k = self.lost_run.min(CONCEAL_FRAMES) as i32;
        let gain = CONCEAL_GAIN.powi(k);
        let n = self.last_audio.len() as f32;
        let fading = self.lost_run > CONCEAL_FRAMES;
        let concealed = self
            .last_audio
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let ramp = if fading { 1.0 - (i as f32 + 1.0) / n } else { 1.0 };
                (f32::from(s) * gain * ramp) as i16
            })
            .collect();
        Frame::Concealed(concealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSRC: u32 = 0x1234_5678;
    const PTIME: Duration = Duration::from_millis(20);

    /// A packet whose samples all carry its index, so playout order is visible.
    fn pcm(i: u32) -> Vec<i16> {
        vec![(i % 30_000) as i16 + 1; 160]
    }

    fn frame_id(f: &Frame) -> Option<i16> {
        match f {
            Frame::Audio(s) => Some(s[0]),
            _ => None,
        }
    }

    /// Seeded xorshift for loss, reorder and jitter.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// A virtual network: packet i is sent at i*20 ms, arrives after 10 ms + jitter, unless
    /// lost. Returns the frames popped every 20 ms, starting at t = 0.
    struct Net {
        seq0: u16,
        ts0: u32,
        loss_pct: u64,
        jitter_ms: u64,
        dup_pct: u64,
        seed: u64,
    }

    impl Net {
        fn run(&self, packets: u32, jb: &mut JitterBuffer) -> Vec<Frame> {
            let t0 = Instant::now();
            let mut rng = Rng(self.seed);
            let mut arrivals: Vec<(Duration, u32)> = Vec::new();
            for i in 0..packets {
                if rng.below(100) < self.loss_pct {
                    continue;
                }
                let at = PTIME * i + Duration::from_millis(10 + rng.below(self.jitter_ms + 1));
                arrivals.push((at, i));
                if rng.below(100) < self.dup_pct {
                    arrivals.push((at + Duration::from_millis(1), i));
                }
            }
            arrivals.sort();
            let mut frames = Vec::new();
            let mut next_arrival = 0;
            for tick in 0..packets + 20 {
                let now = PTIME * tick;
                while let Some(&(at, i)) = arrivals.get(next_arrival) {
                    if at > now {
                        break;
                    }
                    let seq = self.seq0.wrapping_add(i as u16);
                    let ts = self.ts0.wrapping_add(i * 160);
                    let _ = jb.push(SSRC, seq, ts, &pcm(i), t0 + at);
                    next_arrival += 1;
                }
                frames.push(jb.pop(t0 + now));
            }
            frames
        }
    }

    fn played(frames: &[Frame]) -> Vec<i16> {
        frames.iter().filter_map(frame_id).collect()
    }

    const CLEAN: Net = Net { seq0: 0, ts0: 0, loss_pct: 0, jitter_ms: 0, dup_pct: 0, seed: 1 };

    #[test]
    fn a_clean_stream_plays_every_frame_in_order_after_the_delay() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let frames = CLEAN.run(100, &mut jb);
        // Packet 0 arrives at 10 ms, playout starts at 50 ms: the third pop.
        assert_eq!(frames[..3], [Frame::Silence, Frame::Silence, Frame::Silence]);
        assert_eq!(played(&frames), (1..=100).collect::<Vec<i16>>());
        // Only the end of the stream is concealed (4 frames), then silence.
        assert_eq!(jb.stats().concealed_frames, 4);
        assert_eq!(frames.last(), Some(&Frame::Silence));
    }

    #[test]
    fn jitter_below_the_playout_delay_loses_nothing_and_reorders() {
        for seed in 1..20 {
            let net = Net { jitter_ms: 35, seed, ..CLEAN };
            let mut jb = JitterBuffer::new(JitterConfig::default());
            let frames = net.run(300, &mut jb);
            assert_eq!(played(&frames), (1..=300).collect::<Vec<i16>>(), "seed {seed}");
            assert_eq!(jb.stats().late, 0);
        }
    }

    #[test]
    fn jitter_beyond_the_delay_drops_late_packets_but_keeps_order() {
        let net = Net { jitter_ms: 80, seed: 7, ..CLEAN };
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let frames = net.run(500, &mut jb);
        let got = played(&frames);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
        let s = jb.stats();
        assert!(s.late > 0);
        // A packet is either played, dropped late, or flushed by a resynchronisation.
        assert!(s.late + got.len() as u64 <= 500 && got.len() > 480, "{s:?}");
    }

    #[test]
    fn losses_are_concealed_and_duplicates_dropped() {
        let net = Net { loss_pct: 10, dup_pct: 10, jitter_ms: 20, seed: 3, ..CLEAN };
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let frames = net.run(1_000, &mut jb);
        let s = jb.stats();
        assert!(s.duplicates > 50, "{s:?}");
        let got = played(&frames);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        let lost = 1_000 - got.len();
        assert!(lost > 50);
        // Every isolated loss (single or up to 4 in a row) is concealed rather than silent.
        assert!(s.concealed_frames as usize >= lost - 5, "{s:?} lost {lost}");
        assert!((990..=1_000).contains(&s.expected), "{s:?}");
    }

    #[test]
    fn sequence_and_timestamp_wrap_are_seamless() {
        let net = Net { seq0: 65_500, ts0: u32::MAX - 5_000, jitter_ms: 30, seed: 5, ..CLEAN };
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let frames = net.run(200, &mut jb);
        assert_eq!(played(&frames), (1..=200).collect::<Vec<i16>>());
        assert_eq!(jb.stats().expected, 200);
        assert_eq!(jb.stats().resets, 0);
    }

    #[test]
    fn concealment_repeats_attenuated_then_fades_to_silence() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig { min_delay: Duration::ZERO, ..JitterConfig::default() });
        assert_eq!(jb.push(SSRC, 1, 0, &[1_000; 160], t0), PushOutcome::Queued);
        assert_eq!(jb.pop(t0), Frame::Audio(vec![1_000; 160]));
        let gains: Vec<i16> = (0..3)
            .map(|_| match jb.pop(t0) {
                Frame::Concealed(s) => {
                    assert!(s.iter().all(|&x| x == s[0]));
                    s[0]
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(gains, [700, 489, 343]);
        let Frame::Concealed(fade) = jb.pop(t0) else { panic!("no fade") };
        assert!(fade[0] > 300 && fade[80] < 200 && fade[159] == 0, "{:?}", &fade[..3]);
        assert_eq!(jb.pop(t0), Frame::Silence);
        assert_eq!(jb.stats().concealed_frames, 4);
    }

    #[test]
    fn new_ssrc_resets_the_buffer() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let _ = jb.push(SSRC, 1, 0, &pcm(1), t0);
        let _ = jb.pop(t0 + Duration::from_millis(40));
        assert_eq!(jb.push(SSRC + 1, 500, 99_999, &pcm(2), t0 + PTIME), PushOutcome::Reset);
        // The new stream waits for its own playout delay.
        assert_eq!(jb.pop(t0 + Duration::from_millis(40)), Frame::Silence);
        assert_eq!(frame_id(&jb.pop(t0 + Duration::from_millis(60))), Some(3));
        assert_eq!(jb.stats().resets, 1);
    }

    #[test]
    fn timestamp_jump_without_ssrc_change_resets() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let _ = jb.push(SSRC, 1, 1_000, &pcm(1), t0);
        assert_eq!(jb.push(SSRC, 2, 1_000 + 160 * 1_000, &pcm(2), t0 + PTIME), PushOutcome::Reset);
        assert_eq!(jb.push(SSRC, 3, 1_000 + 160 * 1_001, &pcm(3), t0 + PTIME), PushOutcome::Queued);
    }

    #[test]
    fn late_and_duplicate_packets_are_reported() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig { min_delay: Duration::ZERO, ..JitterConfig::default() });
        let _ = jb.push(SSRC, 10, 1_600, &pcm(10), t0);
        assert_eq!(jb.push(SSRC, 10, 1_600, &pcm(10), t0), PushOutcome::Duplicate);
        assert_eq!(frame_id(&jb.pop(t0)), Some(11));
        assert_eq!(jb.push(SSRC, 9, 1_440, &pcm(9), t0), PushOutcome::Late);
        assert_eq!(jb.push(SSRC, 11, 1_760, &[], t0), PushOutcome::BadSize);
        assert_eq!(jb.push(SSRC, 11, 1_760, &[0; MAX_PACKET_SAMPLES + 1], t0), PushOutcome::BadSize);
    }

    #[test]
    fn a_fast_sender_is_capped_at_max_depth() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for i in 0..50u32 {
            let _ = jb.push(SSRC, i as u16, i * 160, &pcm(i), t0);
        }
        assert!(jb.depth_samples() <= 1_600, "{}", jb.depth_samples());
        assert!(jb.stats().overflows > 0);
        // The newest audio survives.
        let mut last = None;
        for k in 0..20 {
            if let Some(id) = frame_id(&jb.pop(t0 + PTIME * (2 + k))) {
                last = Some(id);
            }
        }
        assert_eq!(last, Some(50));
    }

    #[test]
    fn a_slow_sender_is_resynchronised_after_starving() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let _ = jb.push(SSRC, 0, 0, &pcm(0), t0);
        for k in 0..10 {
            let _ = jb.pop(t0 + PTIME * (2 + k));
        }
        // The path delay grew by 200 ms: packet 1 arrives after its slot.
        let at = t0 + Duration::from_millis(260);
        assert_eq!(jb.push(SSRC, 1, 160, &pcm(1), at), PushOutcome::Reset);
        assert_eq!(frame_id(&jb.pop(at + Duration::from_millis(40))), Some(2));
    }

    #[test]
    fn longer_packets_are_cut_into_frames() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig { min_delay: Duration::ZERO, ..JitterConfig::default() });
        let mut p = vec![1i16; 240];
        p.extend_from_slice(&[2; 240]);
        let _ = jb.push(SSRC, 0, 0, &p, t0);
        let ids: Vec<(i16, i16)> = (0..3)
            .map(|_| match jb.pop(t0) {
                Frame::Audio(s) => (s[0], s[159]),
                f => panic!("{f:?}"),
            })
            .collect();
        assert_eq!(ids, [(1, 1), (1, 2), (2, 2)]);
    }
}
