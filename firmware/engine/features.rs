//! What the box does with a call's media beyond bridging it: DTMF reports and in-call feature
//! codes, recording (policy per extension, `*1` on demand), music on hold, and the dial-in
//! conference rooms.

use super::call::{CallRoute, DigitBuffer, PARTICIPANT_B, PARTICIPANT_C};
use super::Engine;
use crate::config::RecordPolicy;
use crate::media::dtmf::{DigitEvent, DtmfSource};
use crate::media::sdp::{Encoding, PayloadFormat};
use crate::media::{Clip, MediaCommand, MediaEvent, RelayId, Side};
use crate::store::recordings::yyyymmdd;
use std::time::{Duration, Instant};

/// The in-call feature code that starts/stops an on-demand recording.
pub const RECORD_TOGGLE_CODE: &str = "*1";
/// The in-call feature code that calls a third extension into the call: `*3 <ext> #`.
pub const THREE_WAY_CODE: &str = "*3";
/// The same digit from two sources (INFO and RFC 4733 / in-band) within this is one press.
pub const CROSS_SOURCE_WINDOW: Duration = Duration::from_millis(600);
/// Digits of a feature code must follow each other within this.
pub const FEATURE_DIGIT_GAP: Duration = Duration::from_secs(3);

/// The audio and telephone-event payload types of a negotiated format list.
pub(super) fn codec_of(formats: &[PayloadFormat]) -> Option<(u8, Option<u8>)> {
    let audio = formats.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma))?;
    let te = formats.iter().find(|f| f.encoding == Encoding::TelephoneEvent).map(|f| f.pt);
    Some((audio.pt, te))
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::A => "caller",
        Side::B => "callee",
    }
}

impl DigitBuffer {
    /// Appends a digit; returns the buffer (digits within [`FEATURE_DIGIT_GAP`] of each other).
    pub(super) fn push(&mut self, digit: char, now: Instant) -> &str {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) > FEATURE_DIGIT_GAP) {
            self.digits.clear();
        }
        // Long enough for `*3` + an 8-digit extension + `#`.
        if self.digits.len() >= 16 {
            self.digits.remove(0);
        }
        self.digits.push(digit);
        self.last = Some(now);
        &self.digits
    }
}

impl Engine {
    /// The call is answered: tell the relay each side's codec (DTMF detection: RFC 4733 when
    /// negotiated, else in-band), and start recording when an extension's policy says so.
    pub(super) fn start_media(&mut self, id: u64, now: Instant) {
        if !self.send_codecs(id) {
            return;
        }
        let Some(call) = self.calls.get(&id) else { return };
        let policy = |ext: &str| self.extensions.get(ext).map(|e| e.record).unwrap_or_default();
        let (from, to) = (call.caller_ext().to_string(), call.callee_ext().to_string());
        // "This call is recorded" goes to the party of the extension that is *not* recorded by
        // policy (the other party, issue 3); when both are, to both.
        let mut announce = Vec::new();
        if policy(&to) == RecordPolicy::Always {
            announce.push(Side::A);
        }
        if policy(&from) == RecordPolicy::Always {
            announce.push(Side::B);
        }
        if !announce.is_empty() {
            self.start_recording(id, &announce, now);
        }
    }

    /// Tells call `id`'s relay each side's codec (and so turns DTMF detection on); false when
    /// the call has no voice codec. Also after the relay reopened (a call back from a room).
    pub(super) fn send_codecs(&mut self, id: u64) -> bool {
        let Some(call) = self.calls.get(&id) else { return false };
        let Some((audio_pt, te)) = codec_of(call.negotiated()) else { return false };
        // Each side sends the first voice codec of the answer it got: the caller ours (in its
        // offer's order), the callee its own answer's first.
        let b_pt = call.callee_voice_pt().unwrap_or(audio_pt);
        for (side, pt) in [(Side::A, audio_pt), (Side::B, b_pt)] {
            self.out.push_back(super::Output::Media(MediaCommand::Codec {
                relay: RelayId(id),
                side,
                audio_pt: pt,
                telephone_event_pt: te,
                // In-band stays on even with telephone-event negotiated: some phones negotiate it
                // and send tones. The digit stream mutes it while events flow (docs/dtmf.md).
                inband_dtmf: true,
            }));
        }
        true
    }

    fn start_recording(&mut self, id: u64, announce_to: &[Side], _now: Instant) {
        let wall = self.calls.get(&id).map(|c| self.wall_ms(c.start_instant())).unwrap_or(0);
        let Some(call) = self.calls.get_mut(&id) else { return };
        if call.recording_active {
            return;
        }
        call.recordings += 1;
        let n = call.recordings;
        let path = if n == 1 {
            format!("{}/call-{id}.wav", yyyymmdd(wall))
        } else {
            format!("{}/call-{id}-{n}.wav", yyyymmdd(wall))
        };
        call.recording_paths.push(path.clone());
        call.recording_active = true;
        log::info!("call {id}: recording to {path}");
        self.out.push_back(super::Output::Media(MediaCommand::Record { relay: RelayId(id), path }));
        if self.cfg.media.announce_recording {
            let lang = self.cfg.media.language;
            // A call hosted by a room (supervised) has a seat per side; side B's is its own id.
            let in_room = self.calls.get(&id).is_some_and(|c| matches!(c.route, CallRoute::Room(_)));
            for side in announce_to {
                let relay = match side {
                    Side::B if in_room => RelayId(id | PARTICIPANT_B),
                    _ => RelayId(id),
                };
                self.out.push_back(super::Output::Media(MediaCommand::Play {
                    relay,
                    side: *side,
                    clips: vec![Clip::Prompt { id: "rec.announce".into(), lang }],
                    looped: false,
                }));
            }
        }
    }

    fn stop_recording(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if !call.recording_active {
            return;
        }
        call.recording_active = false;
        log::info!("call {id}: recording stopped");
        self.out.push_back(super::Output::Media(MediaCommand::StopRecord { relay: RelayId(id) }));
    }

    /// Something the media drivers report.
    pub fn handle_media_event(&mut self, now: Instant, ev: MediaEvent) {
        match ev {
            MediaEvent::Digit { relay, side, event } => {
                // Three-way room participants report under the call id with a participant bit.
                let id = relay.0 & !(PARTICIPANT_B | PARTICIPANT_C);
                let side = if relay.0 & PARTICIPANT_B != 0 { Side::B } else { side };
                if relay.0 & PARTICIPANT_C == 0 {
                    self.on_digit(id, side, event, now);
                }
            }
            MediaEvent::PlayDone { relay, side } => {
                // Each ends or moves on only the calls it plays to (a feature-code answer, a DID
                // announcement, a park announcement).
                self.dialplan_play_done(relay, side, now);
                self.on_announcement_done(relay, side, now);
                self.rewire_play_done(now, relay.0, side);
                self.voicemail_play_done(relay, side, now);
                self.ivr_play_done(relay, side, now);
                self.supervision_play_done(relay, side, now);
                self.queue_play_done(relay, side, now);
                self.originate_play_done(now, relay, side);
            }
            MediaEvent::Recorded { relay, path, bytes } => {
                log::info!("call {}: recording {path} closed, {bytes} bytes", relay.0);
                self.voicemail_recorded(relay, bytes, now);
            }
        }
    }

    /// A key press on one side, from any source: reported in the log, then matched against the
    /// in-call feature codes.
    pub(super) fn on_digit(&mut self, id: u64, side: Side, event: DigitEvent, now: Instant) {
        if self.supervision_digit(id, side, event.digit, now) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        // One digit stream per leg (issue 3): the relay merges RFC 4733 and in-band, but INFO
        // reaches the engine directly; a phone sending a press both ways is reported once.
        let i = usize::from(side == Side::B);
        if let Some((d, src, at)) = call.last_digit[i] {
            if d == event.digit
                && src != event.source
                && now.saturating_duration_since(at) < CROSS_SOURCE_WINDOW
            {
                log::debug!("call {id}: DTMF {d} also came by {:?}; reported once", event.source);
                return;
            }
        }
        call.last_digit[i] = Some((event.digit, event.source, now));
        let source = match event.source {
            DtmfSource::Rfc4733 => "rfc4733",
            DtmfSource::SipInfo => "info",
            DtmfSource::InBand => "inband",
        };
        log::info!(
            "call {id}: DTMF {} from the {} ({source}, {} ms)",
            event.digit,
            side_name(side),
            event.duration_ms
        );
        call.digits_seen.push(event.digit);
        if call.digits_seen.len() > 32 {
            call.digits_seen.remove(0);
        }
        let ext = match side {
            Side::A => call.caller_ext().to_string(),
            Side::B => call.callee_ext().to_string(),
        };
        if self.voicemail_digit(id, side, event.digit, now) {
            return;
        }
        if self.originate_digit(now, id, side, event.digit) {
            return;
        }
        if self.ivr_digit(id, side, event.digit, now) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        let buffer = call.digit_buffers[usize::from(side == Side::B)].push(event.digit, now).to_string();
        if self.rewire_code(id, side, &buffer, now) {
            if let Some(c) = self.calls.get_mut(&id) {
                c.digit_buffers[usize::from(side == Side::B)].digits.clear();
            }
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(target) =
            buffer.strip_suffix('#').and_then(|b| b.rsplit_once(THREE_WAY_CODE)).map(|(_, t)| t)
        {
            if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
                let target = target.to_string();
                call.digit_buffers[usize::from(side == Side::B)].digits.clear();
                return self.start_three_way(id, side, &target, now);
            }
        }
        if buffer.ends_with(RECORD_TOGGLE_CODE) {
            call.digit_buffers[usize::from(side == Side::B)].digits.clear();
            let allowed = self.extensions.get(&ext).is_some_and(|e| e.record == RecordPolicy::OnDemand);
            if !allowed {
                log::info!("call {id}: {ext} pressed {RECORD_TOGGLE_CODE} but may not record on demand");
                return;
            }
            let active = self.calls.get(&id).is_some_and(|c| c.recording_active);
            if active {
                self.stop_recording(id);
            } else {
                let other = if side == Side::A { Side::B } else { Side::A };
                self.start_recording(id, &[other], now);
            }
        }
    }

    /// A hold/resume re-INVITE when music on hold is on: answered by the box, and the other
    /// party hears music instead of silence (issue 3). Returns the direction to answer with.
    pub(super) fn hold_or_resume(&mut self, id: u64, from: Side, holding: bool) {
        let other = if from == Side::A { Side::B } else { Side::A };
        let Some(call) = self.calls.get_mut(&id) else { return };
        match (holding, call.held_by) {
            (true, None) => {
                call.held_by = Some(from);
                log::info!(
                    "call {id}: the {} put the call on hold; music to the {}",
                    side_name(from),
                    side_name(other)
                );
                self.out.push_back(super::Output::Media(MediaCommand::Play {
                    relay: RelayId(id),
                    side: other,
                    clips: vec![Clip::MusicOnHold],
                    looped: true,
                }));
            }
            (false, Some(h)) if h == from => {
                call.held_by = None;
                log::info!("call {id}: the {} resumed the call", side_name(from));
                self.out.push_back(super::Output::Media(MediaCommand::StopPlay {
                    relay: RelayId(id),
                    side: other,
                }));
            }
            _ => {}
        }
    }

    /// The room a dialled number enters, if it is one.
    pub(super) fn room_for(&self, number: &str) -> Option<u32> {
        self.cfg.rooms.iter().any(|r| r == number).then(|| number.parse().ok()).flatten()
    }

    /// Joins an answered room call to its room, with the entry prompt.
    pub(super) fn join_room(&mut self, id: u64, room: u32, port: u16, remote: Option<std::net::SocketAddr>) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some((audio_pt, te)) = codec_of(call.negotiated()) else { return };
        self.out.push_back(super::Output::Media(MediaCommand::JoinRoom {
            relay: RelayId(id),
            room,
            port,
            remote,
            audio_pt,
            telephone_event_pt: te,
        }));
        let lang = self.cfg.media.language;
        self.out.push_back(super::Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips: vec![Clip::Prompt { id: "conf.entering".into(), lang }],
            looped: false,
        }));
        if let Some(c) = self.calls.get_mut(&id) {
            c.route = CallRoute::Room(room);
        }
    }
}
