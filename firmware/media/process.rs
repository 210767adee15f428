//! What a relay does besides forwarding: DTMF detection, playing clips to a side (prompts,
//! music on hold), and recording both directions mixed.
//!
//! A relay only carries this state when the engine asked for one of these (a `Codec`, `Play` or
//! `Record` command). Plain relays stay byte-forwarders. Inputs are the RTP packets the relay
//! receives (`on_rtp`) and a 20 ms tick (`on_tick`); outputs are RTP packets to send
//! ([`Outgoing`]) and [`MediaEvent`]s. Only the recorder touches a file.

use super::audio::g711::{self, Law};
use super::audio::jitter::{Frame, JitterBuffer, JitterConfig};
use super::audio::player::{Clip as Pcm, Player};
use super::audio::recorder::Recorder;
use super::audio::FRAME_SAMPLES;
use super::dtmf::{DigitStream, DigitStreamConfig, InbandAudio};
use super::{Clip, MediaEvent, RelayId, Side};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Most events held for the driver between drains (it drains after every input).
const MAX_PENDING_EVENTS: usize = 64;
/// RTP header length we write (no CSRC, no extension).
const RTP_HEADER: usize = 12;

/// An RTP packet the relay should send to a side's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Whose phone.
    pub side: Side,
    /// The packet.
    pub packet: Vec<u8>,
}

/// Our own RTP stream towards one phone (used while playing).
#[derive(Debug, Clone, Copy)]
struct TxStream {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    marker: bool,
}

#[derive(Debug)]
struct SideState {
    law: Option<Law>,
    audio_pt: Option<u8>,
    digits: Option<DigitStream>,
    jitter: JitterBuffer,
    player: Option<Player>,
    tx: TxStream,
    /// The telephone-event payload type this phone negotiated.
    te_pt: Option<u8>,
    /// RFC 4733 packets waiting for their send time.
    te_out: std::collections::VecDeque<(Instant, [u8; 16])>,
}

impl SideState {
    fn new(seed: u32) -> SideState {
        SideState {
            law: None,
            audio_pt: None,
            digits: None,
            jitter: JitterBuffer::new(JitterConfig::default()),
            player: None,
            tx: TxStream {
                ssrc: seed,
                seq: (seed >> 8) as u16,
                timestamp: seed.rotate_left(7),
                marker: true,
            },
            te_pt: None,
            te_out: std::collections::VecDeque::new(),
        }
    }
}

/// A running call recording: the open file and its path. It can move between a relay and a
/// conference room (a supervised call, issue 6) and stays one file.
pub(crate) struct Recording {
    path: String,
    recorder: Recorder<BufWriter<File>>,
}

impl Recording {
    /// Creates `dir/path` (and its day folder) and writes the header.
    pub(crate) fn create(dir: &Path, path: &str, law: Law) -> std::io::Result<Recording> {
        let full: PathBuf = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = File::create(&full)?;
        let recorder =
            Recorder::new(BufWriter::new(file), law).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Recording { path: path.to_string(), recorder })
    }

    /// Appends one 20 ms frame.
    pub(crate) fn write(&mut self, frame: &[i16]) -> Result<(), super::audio::recorder::RecordError> {
        self.recorder.write(frame)
    }

    /// The path given in `Record`.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Completes the file (header sizes written) and returns what to report for `relay`.
    pub(crate) fn finish(self, relay: RelayId) -> MediaEvent {
        let bytes = match self.recorder.finish() {
            Ok((_, bytes)) => bytes,
            Err(e) => {
                log::warn!("relay {}: finishing recording {} failed: {e}", relay.0, self.path);
                crate::alarms::global().raise(
                    "recording",
                    crate::alarms::Severity::Critical,
                    &format!("finishing recording {} failed: {e}", self.path),
                );
                0
            }
        };
        MediaEvent::Recorded { relay, path: self.path, bytes }
    }
}

/// The processing state of one relay.
pub struct Processing {
    relay: RelayId,
    sides: [SideState; 2],
    recording: Option<Recording>,
    events: Vec<MediaEvent>,
}

impl std::fmt::Debug for Processing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processing")
            .field("relay", &self.relay)
            .field("recording", &self.is_recording())
            .finish()
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn side_of(i: usize) -> Side {
    if i == 0 {
        Side::A
    } else {
        Side::B
    }
}

/// The default music on hold: a soft, slow arpeggio (C major, then A minor), generated once.
pub fn music_on_hold() -> Pcm {
    static MOH: OnceLock<Pcm> = OnceLock::new();
    MOH.get_or_init(|| {
        const NOTES: [f32; 8] = [261.63, 329.63, 392.0, 523.25, 220.0, 261.63, 329.63, 440.0];
        let note_len = 4000; // 0.5 s
        let mut pcm = Vec::with_capacity(NOTES.len() * note_len);
        for hz in NOTES {
            for i in 0..note_len {
                let t = i as f32 / 8000.0;
                // A plucked envelope: quick attack, exponential decay.
                let env = (i as f32 / 80.0).min(1.0) * (-3.0 * t).exp();
                let s = (2.0 * std::f32::consts::PI * hz * t).sin()
                    + 0.3 * (4.0 * std::f32::consts::PI * hz * t).sin();
                pcm.push((s * env * 6000.0) as i16);
            }
        }
        Arc::from(pcm)
    })
    .clone()
}

/// One cycle of the Japanese ringback tone (呼出音): 400 Hz modulated at 16 Hz, 1 s on and
/// 2 s off. Generated once.
pub fn ringback() -> Pcm {
    static RINGBACK: OnceLock<Pcm> = OnceLock::new();
    RINGBACK
        .get_or_init(|| {
            let on = 8000;
            let mut pcm = vec![0i16; 3 * 8000];
            for (i, s) in pcm.iter_mut().take(on).enumerate() {
                let t = i as f32 / 8000.0;
                let carrier = (2.0 * std::f32::consts::PI * 400.0 * t).sin();
                let envelope = 0.5 + 0.5 * (2.0 * std::f32::consts::PI * 16.0 * t).sin();
                *s = (carrier * envelope * 5000.0) as i16;
            }
            Arc::from(pcm)
        })
        .clone()
}

/// Where admin audio files live and which one is the music on hold; set once by the daemon.
static AUDIO_FILES: OnceLock<(PathBuf, Option<String>)> = OnceLock::new();
/// Admin audio files already read (name → PCM), bounded: music on hold and a few greetings.
static AUDIO_CACHE: OnceLock<std::sync::Mutex<Vec<(String, Pcm)>>> = OnceLock::new();
/// Files kept decoded in memory (about 1 MB per minute of audio each).
const MAX_CACHED_FILES: usize = 16;

/// Tells the media drivers where admin audio files are and which is the music on hold.
pub fn set_audio_files(dir: PathBuf, music_on_hold: Option<String>) {
    let _ = AUDIO_FILES.set((dir, music_on_hold));
}

/// An admin audio file's samples (8 kHz 16-bit mono, as `audio import` stores them), cached.
fn audio_file(name: &str) -> Option<Pcm> {
    let (dir, _) = AUDIO_FILES.get()?;
    let cache = AUDIO_CACHE.get_or_init(Default::default);
    if let Some((_, pcm)) = cache.lock().ok()?.iter().find(|(n, _)| n == name) {
        return Some(pcm.clone());
    }
    if name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return None;
    }
    let bytes = std::fs::read(dir.join(format!("{name}.wav"))).ok()?;
    let wav = super::audio::wav::parse(&bytes).ok()?;
    if !super::prompts::is_telephone_pcm(&wav.format()) {
        log::warn!("audio file {name} is not 8 kHz 16-bit mono; import it with `audio import`");
        return None;
    }
    let pcm: Pcm = Arc::from(wav.mono_pcm16());
    let mut c = cache.lock().ok()?;
    if c.len() >= MAX_CACHED_FILES {
        c.remove(0);
    }
    c.push((name.to_string(), pcm.clone()));
    Some(pcm)
}

/// The PCM of a clip (embedded prompt, music on hold, admin file, silence).
pub fn resolve_clip(clip: &Clip) -> Option<Pcm> {
    match clip {
        Clip::Prompt { id, lang } => super::prompts::pcm(id, *lang).map(Arc::from),
        Clip::MusicOnHold => {
            let configured = AUDIO_FILES.get().and_then(|(_, moh)| moh.as_deref()).and_then(audio_file);
            Some(configured.unwrap_or_else(music_on_hold))
        }
        Clip::Ringback => Some(ringback()),
        Clip::AudioFile(name) => audio_file(name),
        Clip::Silence(ms) => Some(Arc::from(vec![0i16; (*ms as usize).min(10_000) * 8])),
        Clip::File(path) => box_file(path),
    }
}

/// Largest file [`Clip::File`] plays: the longest voicemail message (3600 s of G.711 at 8000
/// bytes/s) with room for a 16-bit copy; anything bigger is not one of ours.
const MAX_FILE_CLIP_BYTES: u64 = 2 * 3600 * 8000 * 2;

/// A file the box wrote (voicemail), decoded to PCM.
fn box_file(path: &Path) -> Option<Pcm> {
    let len = std::fs::metadata(path).ok()?.len();
    if len > MAX_FILE_CLIP_BYTES {
        log::warn!("{}: {len} bytes is too big to play", path.display());
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    let wav = match super::audio::wav::parse(&bytes) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("{}: cannot play: {e}", path.display());
            return None;
        }
    };
    Some(Arc::from(wav.mono_pcm16()))
}

impl Processing {
    /// Fresh processing state for a relay.
    pub fn new(relay: RelayId) -> Processing {
        let seed = (relay.0 as u32).wrapping_mul(0x9E37_79B9) ^ 0x5A5A_1234;
        Processing {
            relay,
            sides: [SideState::new(seed), SideState::new(seed.rotate_left(13) ^ 0xA5A5)],
            recording: None,
            events: Vec::new(),
        }
    }

    /// Applies a side's negotiated codec (and turns DTMF detection on for it).
    pub fn set_codec(&mut self, side: Side, audio_pt: u8, telephone_event_pt: Option<u8>, inband: bool) {
        let s = &mut self.sides[index(side)];
        s.law = Law::from_payload_type(audio_pt);
        s.audio_pt = Some(audio_pt);
        s.te_pt = telephone_event_pt;
        let inband = match (inband, s.law) {
            (true, Some(law)) => Some(InbandAudio { payload_type: audio_pt, law }),
            _ => None,
        };
        s.digits = Some(DigitStream::new(DigitStreamConfig {
            telephone_event_pt,
            telephone_event_clock_rate: 8000,
            inband,
        }));
    }

    /// Starts playing to a side. Unknown prompts are skipped (logged).
    pub fn play(&mut self, side: Side, clips: &[Clip], looped: bool) {
        let pcm: Vec<Pcm> = clips
            .iter()
            .filter_map(|c| {
                let r = resolve_clip(c);
                if r.is_none() {
                    log::warn!("relay {}: no audio for {c:?}", self.relay.0);
                }
                r
            })
            .collect();
        // Looped audio is music on hold: a missing or unreadable file (a queue's own music)
        // falls back to the box's music, so a waiting caller never sits in silence.
        let pcm = match (looped, pcm.is_empty()) {
            (true, true) => resolve_clip(&Clip::MusicOnHold).into_iter().collect(),
            _ => pcm,
        };
        let player = if looped { Player::looping(pcm) } else { Player::new(pcm) };
        let s = &mut self.sides[index(side)];
        s.tx.marker = true;
        s.player = Some(player);
    }

    /// Queues RFC 4733 events for `digits` to a side (100 ms each, 100 ms apart). Without a
    /// negotiated telephone-event payload type nothing is sent (logged).
    pub fn send_digits(&mut self, side: Side, digits: &str, now: Instant) {
        /// Press and pause length: ITU-T Q.24 asks for at least 40 ms of each.
        const PRESS: std::time::Duration = std::time::Duration::from_millis(100);
        /// Most packets queued at once per side (32 digits).
        const MAX_QUEUED_PACKETS: usize = 32 * 8;
        let relay = self.relay;
        let s = &mut self.sides[index(side)];
        let Some(pt) = s.te_pt else {
            log::info!(
                "relay {}: the {side:?} phone negotiated no telephone-event; digits not sent",
                relay.0
            );
            return;
        };
        let sender = super::dtmf::TelephoneEventSender::new(pt);
        let mut start = s.te_out.back().map_or(now, |(t, _)| *t + PRESS);
        for d in digits.chars() {
            let mut state =
                super::dtmf::RtpState { ssrc: s.tx.ssrc, seq: s.tx.seq, timestamp: s.tx.timestamp };
            let Ok(packets) = sender.packets(d, PRESS.as_millis() as u32, &mut state) else { continue };
            s.tx.seq = state.seq;
            let mut last = start;
            for p in packets {
                if s.te_out.len() >= MAX_QUEUED_PACKETS {
                    break;
                }
                last = start + p.offset;
                s.te_out.push_back((last, p.packet));
            }
            // The media clock moves on by the press and the pause (8 samples per ms).
            s.tx.timestamp = s.tx.timestamp.wrapping_add(2 * PRESS.as_millis() as u32 * 8);
            start = last + PRESS;
        }
    }

    /// Stops playing to a side.
    pub fn stop_play(&mut self, side: Side) {
        self.sides[index(side)].player = None;
    }

    /// True while a clip plays to `side` (the relay then drops what the other side sends it).
    pub fn is_playing(&self, side: Side) -> bool {
        self.sides[index(side)].player.is_some()
    }

    /// True while recording.
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// True when there is anything to do on the 20 ms tick.
    pub fn needs_tick(&self) -> bool {
        self.recording.is_some()
            || self.sides.iter().any(|s| s.player.is_some() || s.digits.is_some() || !s.te_out.is_empty())
    }

    /// Starts recording into `dir/path` (creating the day folder).
    pub fn record(&mut self, dir: &Path, path: &str) -> std::io::Result<()> {
        if self.recording.is_some() {
            return Ok(());
        }
        // µ-law unless both sides speak A-law (the recording stays G.711 either way).
        let law = if self.sides.iter().all(|s| s.law == Some(Law::A)) { Law::A } else { Law::Mu };
        self.recording = Some(Recording::create(dir, path, law)?);
        Ok(())
    }

    /// Finishes the recording (header sizes written) and reports it.
    pub fn stop_record(&mut self) {
        let Some(rec) = self.recording.take() else { return };
        let ev = rec.finish(self.relay);
        self.push_event(ev);
    }

    /// Takes the running recording away unfinished, to continue it elsewhere (a room).
    pub(crate) fn take_recording(&mut self) -> Option<Recording> {
        self.recording.take()
    }

    /// Continues a recording taken from elsewhere (a room) in the same file. A recording
    /// already running here wins; the other one is finished and reported.
    pub(crate) fn resume_recording(&mut self, rec: Recording) {
        if self.recording.is_some() {
            let ev = rec.finish(self.relay);
            self.push_event(ev);
            return;
        }
        self.recording = Some(rec);
    }

    fn push_event(&mut self, ev: MediaEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push(ev);
        }
    }

    /// Events to hand to the engine.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, MediaEvent> {
        self.events.drain(..)
    }

    /// An RTP packet (already validated) arrived from `side`'s phone.
    pub fn on_rtp(&mut self, side: Side, packet: &[u8], now: Instant) {
        let relay = self.relay;
        let i = index(side);
        let recording = self.recording.is_some();
        let s = &mut self.sides[i];
        if let Some(digits) = s.digits.as_mut() {
            digits.handle_rtp(packet, now);
            while let Some(event) = digits.poll_event() {
                if self.events.len() < MAX_PENDING_EVENTS {
                    self.events.push(MediaEvent::Digit { relay, side, event });
                }
            }
        }
        if !recording {
            return;
        }
        let Ok(rtp) = rtp_rs::RtpReader::new(packet) else { return };
        let (Some(pt), Some(law)) = (s.audio_pt, s.law) else { return };
        if rtp.payload_type() != pt {
            return;
        }
        let mut pcm = Vec::with_capacity(FRAME_SAMPLES);
        g711::decode(law, rtp.payload(), &mut pcm);
        s.jitter.push(rtp.ssrc(), u16::from(rtp.sequence_number()), rtp.timestamp(), &pcm, now);
    }

    /// The 20 ms tick: players produce packets, the recorder takes one mixed frame, DTMF
    /// timeouts run.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<Outgoing>) {
        let relay = self.relay;
        for i in 0..2 {
            let side = side_of(i);
            let s = &mut self.sides[i];
            if let Some(digits) = s.digits.as_mut() {
                if digits.poll_timeout().is_some_and(|t| t <= now) {
                    digits.handle_timeout(now);
                }
                while let Some(event) = digits.poll_event() {
                    if self.events.len() < MAX_PENDING_EVENTS {
                        self.events.push(MediaEvent::Digit { relay, side, event });
                    }
                }
            }
            while s.te_out.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, packet)) = s.te_out.pop_front() {
                    out.push(Outgoing { side, packet: packet.to_vec() });
                }
            }
            let Some(player) = s.player.as_mut() else { continue };
            match player.next_frame() {
                Some(frame) => {
                    let law = s.law.unwrap_or(Law::Mu);
                    let mut packet = Vec::with_capacity(RTP_HEADER + FRAME_SAMPLES);
                    packet.push(0x80);
                    packet.push(law.payload_type() | if s.tx.marker { 0x80 } else { 0 });
                    packet.extend_from_slice(&s.tx.seq.to_be_bytes());
                    packet.extend_from_slice(&s.tx.timestamp.to_be_bytes());
                    packet.extend_from_slice(&s.tx.ssrc.to_be_bytes());
                    g711::encode(law, &frame, &mut packet);
                    s.tx.marker = false;
                    s.tx.seq = s.tx.seq.wrapping_add(1);
                    s.tx.timestamp = s.tx.timestamp.wrapping_add(FRAME_SAMPLES as u32);
                    out.push(Outgoing { side, packet });
                }
                None => {
                    s.player = None;
                    if self.events.len() < MAX_PENDING_EVENTS {
                        self.events.push(MediaEvent::PlayDone { relay, side });
                    }
                }
            }
        }
        if let Some(rec) = self.recording.as_mut() {
            let mut mixed = [0i32; FRAME_SAMPLES];
            for s in &mut self.sides {
                if let Frame::Audio(pcm) | Frame::Concealed(pcm) = s.jitter.pop(now) {
                    for (m, x) in mixed.iter_mut().zip(pcm.iter()) {
                        *m += i32::from(*x);
                    }
                }
            }
            let frame: Vec<i16> =
                mixed.iter().map(|m| (*m).clamp(i16::MIN.into(), i16::MAX.into()) as i16).collect();
            if let Err(e) = rec.recorder.write(&frame) {
                log::warn!("relay {}: recording {} failed: {e}; stopping it", relay.0, rec.path);
                crate::alarms::global().raise(
                    "recording",
                    crate::alarms::Severity::Critical,
                    &format!("recording {} failed: {e}", rec.path),
                );
                self.stop_record();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn tone(hz: f32, n: usize, start: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((2.0 * std::f32::consts::PI * hz * (start + i) as f32 / 8000.0).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn telephone_events_become_digit_events() {
        let mut p = Processing::new(RelayId(1));
        p.set_codec(Side::A, 0, Some(101), false);
        let now = Instant::now();
        // Event 5, start with marker, then 3 end packets.
        let mut first = rtp(101 | 0x80, 1, 1000, &[5, 10, 0, 160]);
        first[1] = 101 | 0x80;
        p.on_rtp(Side::A, &first, now);
        for seq in 2..5 {
            p.on_rtp(
                Side::A,
                &rtp(101, seq, 1000, &[5, 0x80 | 10, 3, 0x20]),
                now + Duration::from_millis(100),
            );
        }
        let digits: Vec<char> = p
            .drain_events()
            .filter_map(|e| match e {
                MediaEvent::Digit { event, side: Side::A, .. } => Some(event.digit),
                _ => None,
            })
            .collect();
        assert_eq!(digits, vec!['5']);
    }

    #[test]
    fn a_player_sends_paced_g711_packets_and_reports_completion() {
        let mut p = Processing::new(RelayId(2));
        p.set_codec(Side::B, 8, None, false);
        p.play(Side::B, &[Clip::Silence(60)], false);
        let now = Instant::now();
        let mut out = Vec::new();
        for i in 0..5 {
            p.on_tick(now + Duration::from_millis(20 * i), &mut out);
        }
        assert_eq!(out.len(), 3, "60 ms = 3 frames");
        assert!(out
            .iter()
            .all(|o| o.side == Side::B && o.packet.len() == RTP_HEADER + 160 && o.packet[1] & 0x7f == 8));
        assert!(out[0].packet[1] & 0x80 != 0, "marker on the first packet");
        assert!(p.drain_events().any(|e| matches!(e, MediaEvent::PlayDone { side: Side::B, .. })));
        assert!(!p.is_playing(Side::B));
    }

    #[test]
    fn a_recording_mixes_both_directions_into_a_g711_wav() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Processing::new(RelayId(3));
        p.set_codec(Side::A, 0, None, false);
        p.set_codec(Side::B, 0, None, false);
        p.record(dir.path(), "20261122/call-3.wav").unwrap();
        let t0 = Instant::now();
        let mut out = Vec::new();
        for k in 0..50u16 {
            let now = t0 + Duration::from_millis(20 * u64::from(k));
            let mut a = Vec::new();
            g711::encode(Law::Mu, &tone(1000.0, 160, usize::from(k) * 160), &mut a);
            p.on_rtp(Side::A, &rtp(0, k, u32::from(k) * 160, &a), now);
            p.on_tick(now, &mut out);
        }
        p.stop_record();
        let ev: Vec<MediaEvent> = p.drain_events().collect();
        let Some(MediaEvent::Recorded { bytes, .. }) = ev.last() else { panic!("{ev:?}") };
        let file = std::fs::read(dir.path().join("20261122/call-3.wav")).unwrap();
        assert_eq!(*bytes, file.len() as u64);
        assert!(file.len() > 44 + 40 * 160, "about a second of audio: {}", file.len());
        assert_eq!(&file[..4], b"RIFF");
    }

    #[test]
    fn music_on_hold_is_audible_and_loops() {
        let moh = music_on_hold();
        assert!(moh.len() >= 8000 * 3);
        let rms = (moh.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / moh.len() as f64).sqrt();
        assert!(rms > 500.0, "{rms}");
        let mut p = Processing::new(RelayId(4));
        p.play(Side::A, &[Clip::MusicOnHold], true);
        let mut out = Vec::new();
        let t0 = Instant::now();
        for i in 0..500 {
            p.on_tick(t0 + Duration::from_millis(20 * i), &mut out);
        }
        assert_eq!(out.len(), 500, "looping never ends");
        assert!(p.is_playing(Side::A));
    }

    #[test]
    fn looped_music_from_a_missing_file_falls_back_to_the_box_music() {
        let mut p = Processing::new(RelayId(5));
        p.play(Side::A, &[Clip::AudioFile("no-such-queue-music".into())], true);
        let mut out = Vec::new();
        let t0 = Instant::now();
        for i in 0..200 {
            p.on_tick(t0 + Duration::from_millis(20 * i), &mut out);
        }
        assert_eq!(out.len(), 200, "the caller hears music, not silence");
        assert!(p.is_playing(Side::A));
    }

    #[test]
    fn an_imported_audio_file_can_be_the_music_on_hold() {
        // The only test that sets the process-wide audio directory.
        let dir = tempfile::tempdir().unwrap();
        let tone: Vec<i16> = (0..8000).map(|i| ((i as f32 * 0.3).sin() * 5000.0) as i16).collect();
        std::fs::write(dir.path().join("業務A.wav"), super::super::audio::wav::encode_pcm16_mono_8k(&tone))
            .unwrap();
        set_audio_files(dir.path().to_path_buf(), Some("業務A".into()));
        let moh = resolve_clip(&Clip::MusicOnHold).unwrap();
        assert_eq!(moh.len(), 8000, "the file, not the built-in tune");
        assert_eq!(resolve_clip(&Clip::AudioFile("業務A".into())).unwrap().len(), 8000);
        assert!(resolve_clip(&Clip::AudioFile("../etc/passwd".into())).is_none());
        assert!(resolve_clip(&Clip::AudioFile("missing".into())).is_none());
    }

    #[test]
    fn digits_are_sent_as_paced_rfc4733_events() {
        let mut p = Processing::new(RelayId(9));
        p.set_codec(Side::A, 0, Some(101), false);
        let t0 = Instant::now();
        p.send_digits(Side::A, "5#", t0);
        let mut out = Vec::new();
        for i in 0..40 {
            p.on_tick(t0 + Duration::from_millis(20 * i), &mut out);
        }
        assert!(out.iter().all(|o| o.side == Side::A && o.packet[1] & 0x7f == 101));
        let events: Vec<(u8, bool)> = out.iter().map(|o| (o.packet[12], o.packet[13] & 0x80 != 0)).collect();
        assert_eq!(events.iter().filter(|(e, end)| *e == 5 && *end).count(), 3, "3 end packets: {events:?}");
        assert_eq!(events.iter().filter(|(e, end)| *e == 11 && *end).count(), 3);
        // A receiver decodes exactly the two presses.
        let mut rx = crate::media::dtmf::TelephoneEventReceiver::new(101);
        let mut got = String::new();
        for o in &out {
            if let Some(ev) = rx.handle_rtp(&o.packet, t0) {
                got.push(ev.digit);
            }
            while let Some(ev) = rx.poll_event() {
                got.push(ev.digit);
            }
        }
        assert_eq!(got, "5#");
        // Without telephone-event nothing goes out.
        let mut q = Processing::new(RelayId(10));
        q.set_codec(Side::B, 0, None, false);
        q.send_digits(Side::B, "1", t0);
        let mut out = Vec::new();
        q.on_tick(t0 + Duration::from_secs(1), &mut out);
        assert!(out.is_empty());
    }
}
