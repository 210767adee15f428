//! IVR menus in the engine (issue 6): the box answers a call into a menu and drives its
//! [`IvrSession`] (`apps::ivr`): prompts go to the relay's player on the caller's side, keys
//! come from the caller's DTMF (taken before in-call feature codes), the session's timer is
//! [`TimerKey::Ivr`]. A child of `call.rs` so it can answer the call and hand it on.
//!
//! Leaving the menu ([`IvrOutput::Route`]): the caller is answered already, so the call goes on
//! without a second 200:
//! - extension: the box dials it as a new B party of the call (the transfer helper's
//!   [`Engine::dial_leg`], side B vacant, [`LegKind::Ivr`]); the caller hears music while it
//!   rings, and the relay bridges when it answers (CDR re-wire `ivr`). A failure (busy, no
//!   answer within the transfer ring time) ends the call.
//! - ring group: every registered member rings at once as a pending leg of the call (the
//!   several-pending-legs primitive of `transfer.rs`); the first answer takes side B, the
//!   others get CANCEL; the call ends when all failed. The group's strategy and timeouts are
//!   not applied from a menu (ring-all for [`TRANSFER_RING`](super::transfer::TRANSFER_RING)).
//! - queue: the call enters the call-center queue (`queue_call.rs`).
//! - voicemail box: the caller's voicemail flow starts on the answered call.
//! - announcement: played, then the call ends.
//! - outside number: the box dials it over the trunk its outbound route picks, as a UAC leg
//!   for side B ([`Engine::dial_external_leg`]; a DID call presents its DID, a phone's call
//!   the phone's caller ID); the caller hears music meanwhile and is bridged on the answer. A
//!   failure (refused route, busy, no answer) plays a short prompt, then the call ends.

use super::super::cdr::HangupSide;
use super::transfer::{LegKind, TRANSFER_RING};
use super::{CallRoute, CallState, Side};
use crate::apps::ivr::{IvrOutput, IvrSession, NameKind};
use crate::apps::timerules::Destination;
use crate::media::sdp::{Direction, Encoding};
use crate::media::{Clip, MediaCommand, RelayId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::super::{Engine, Output, TimerKey};

/// Silence before the first prompt: the caller's phone opens its audio path after the 200.
const LEAD_IN_MS: u32 = 300;

/// One call in a menu, or playing the announcement a menu routed it to.
#[derive(Debug)]
enum IvrCall {
    Menu {
        session: Box<IvrSession>,
        started: bool,
    },
    /// The announcement plays; the call ends when it has.
    Announcing,
}

/// The calls in IVR menus.
#[derive(Debug, Default)]
pub(in crate::engine) struct IvrCalls {
    calls: HashMap<u64, IvrCall>,
}

impl Engine {
    /// The box answers call `id` into menu `menu` and plays its prompt.
    pub(in crate::engine) fn answer_ivr(&mut self, now: Instant, id: u64, menu: &str) {
        let holidays = Arc::new(self.cfg.trunk_calls.time_rules.holidays().clone());
        let Some(mut session) = IvrSession::new(self.cfg.ivrs.clone(), holidays, menu) else {
            log::warn!("call {id}: no [[ivr]] is named {menu}; 404");
            return self.end_call(id, HangupSide::System, "no such IVR", 404, now);
        };
        if !self.answer_for_play(now, id) {
            return;
        }
        log::info!("call {id}: answered into IVR menu {menu}");
        session.start(now, self.wall_ms(now));
        self.ivr.calls.insert(id, IvrCall::Menu { session: Box::new(session), started: false });
        self.drive_ivr(id, now);
    }

    /// The box answers the caller of `id` itself to play to it (an IVR menu, a queue): one
    /// voice codec and telephone-event from the offer. False when it could not (a late offer
    /// without SDP: the call ended with 488, or the call is gone).
    pub(in crate::engine) fn answer_for_play(&mut self, now: Instant, id: u64) -> bool {
        let Some(call) = self.calls.get_mut(&id) else { return false };
        let voice =
            call.offered.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)).cloned();
        let te = call.offered.iter().find(|f| f.encoding == Encoding::TelephoneEvent).cloned();
        let Some(voice) = voice else {
            // A late offer (no SDP in the INVITE): no codec known to play with.
            log::info!("call {id}: the box needs an SDP offer to answer; 488");
            self.finish_call(now, id, HangupSide::System, "no SDP offer", 488);
            return false;
        };
        call.answered = std::iter::once(voice.clone()).chain(te.clone()).collect();
        call.state = CallState::Answered;
        call.answer = Some(now);
        call.ring_deadline = None;
        call.a_ok_sent = true;
        // The box plays and hands on, like an announcement; `Extension` again once bridged.
        call.route = CallRoute::Announcement;
        self.send_box_answer(now, id, Direction::SendRecv);
        self.out.push_back(Output::Media(MediaCommand::Codec {
            relay: RelayId(id),
            side: Side::A,
            audio_pt: voice.pt,
            telephone_event_pt: te.map(|t| t.pt),
            // Keys also in-band: some phones negotiate telephone-event and send tones.
            inband_dtmf: true,
        }));
        true
    }

    /// A key from the caller of a call in a menu; true when it was one (no feature codes then).
    pub(in crate::engine) fn ivr_digit(&mut self, id: u64, side: Side, digit: char, now: Instant) -> bool {
        if side != Side::A {
            return false;
        }
        let Some(mut entry) = self.ivr.calls.remove(&id) else { return false };
        if let IvrCall::Menu { session, .. } = &mut entry {
            session.handle_digit(now, digit, &|k, n| self.ivr_name_exists(k, n));
        }
        self.ivr.calls.insert(id, entry);
        self.drive_ivr(id, now);
        true
    }

    /// Something finished playing to the caller of a call in a menu.
    pub(in crate::engine) fn ivr_play_done(&mut self, relay: RelayId, side: Side, now: Instant) {
        let id = relay.0;
        if side != Side::A {
            return;
        }
        match self.ivr.calls.get_mut(&id) {
            Some(IvrCall::Menu { session, .. }) => session.handle_prompt_finished(now),
            Some(IvrCall::Announcing) => {
                self.ivr.calls.remove(&id);
                return self.end_call(id, HangupSide::System, "IVR announcement played", 200, now);
            }
            None => return,
        }
        self.drive_ivr(id, now);
    }

    /// The session timer of `id` (no key, inter-digit, prompt guard).
    pub(in crate::engine) fn on_ivr_timer(&mut self, id: u64, now: Instant) {
        let Some(mut entry) = self.ivr.calls.remove(&id) else { return };
        if let IvrCall::Menu { session, .. } = &mut entry {
            // Timers of earlier states stay armed; only the session's current one counts.
            if session.poll_timeout().is_some_and(|at| at <= now) {
                session.handle_timeout(now, &|k, n| self.ivr_name_exists(k, n));
            }
        }
        self.ivr.calls.insert(id, entry);
        self.drive_ivr(id, now);
    }

    /// The call ends (either side, any cause): the session holds nothing to release.
    pub(in crate::engine) fn ivr_call_ending(&mut self, id: u64) {
        self.ivr.calls.remove(&id);
    }

    /// Rings every member of ring group `number` for the answered caller of `id`.
    fn ivr_ring_group(&mut self, now: Instant, id: u64, number: &str) {
        let members = self
            .cfg
            .dialplan
            .ring_groups
            .iter()
            .find(|g| g.number == number)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        self.rewire_of(id).vacant = Some(Side::B);
        let mut rung = 0;
        let mut last_code = 404;
        for m in &members {
            match self.dial_leg(now, id, Side::B, m, LegKind::Ivr) {
                Ok(()) => rung += 1,
                Err(e) => last_code = e.status(),
            }
        }
        if rung == 0 {
            log::info!("call {id}: IVR cannot ring group {number} ({last_code})");
            return self.end_call(id, HangupSide::System, "IVR group unavailable", last_code, now);
        }
        log::info!("call {id}: IVR rings group {number} ({rung} member(s))");
        self.music_to(id, Side::A);
    }

    /// The menu phones reach by dialling `number`.
    pub(in crate::engine) fn ivr_by_number(&self, number: &str) -> Option<String> {
        self.cfg.ivrs.by_number(number).map(|m| m.name().to_string())
    }

    /// Names a running session asks about (a directly dialled extension).
    fn ivr_name_exists(&self, kind: NameKind, name: &str) -> bool {
        match kind {
            NameKind::Extension => self.extensions.contains_key(name),
            _ => false,
        }
    }

    /// Prompt ids or admin audio names as clips.
    fn ivr_clips(&self, ids: Vec<String>, lead_in: bool) -> Vec<Clip> {
        let lang = self.cfg.media.language;
        let mut clips = Vec::new();
        if lead_in {
            clips.push(Clip::Silence(LEAD_IN_MS));
        }
        for id in ids {
            if crate::media::prompts::exists(&id, lang) {
                clips.push(Clip::Prompt { id, lang });
            } else {
                clips.push(Clip::AudioFile(id));
            }
        }
        clips
    }

    /// Carries out what the session of `id` asks and arms its timer.
    fn drive_ivr(&mut self, id: u64, now: Instant) {
        let Some(IvrCall::Menu { session, started }) = self.ivr.calls.get_mut(&id) else { return };
        let lead_in = !std::mem::replace(started, true);
        let outs: Vec<IvrOutput> = std::iter::from_fn(|| session.poll_output()).collect();
        let timer = session.poll_timeout();
        let done = session.is_done();
        if let Some(at) = timer.filter(|_| !done) {
            self.arm(at, TimerKey::Ivr(id));
        }
        if done {
            self.ivr.calls.remove(&id);
        }
        for out in outs {
            match out {
                IvrOutput::Entered { menu, depth } => {
                    log::info!("call {id}: IVR menu {menu} (depth {depth})")
                }
                IvrOutput::Play(ids) => {
                    let clips = self.ivr_clips(ids, lead_in);
                    self.out.push_back(Output::Media(MediaCommand::Play {
                        relay: RelayId(id),
                        side: Side::A,
                        clips,
                        looped: false,
                    }));
                }
                IvrOutput::StopPlayback => {
                    self.out.push_back(Output::Media(MediaCommand::StopPlay {
                        relay: RelayId(id),
                        side: Side::A,
                    }));
                }
                IvrOutput::Route(dest) => self.ivr_route(now, id, dest),
                IvrOutput::HangUp => {
                    log::info!("call {id}: IVR hangs up");
                    self.end_call(id, HangupSide::System, "IVR hangup", 200, now);
                }
            }
        }
    }

    /// The caller leaves the menu (or a queue) for `dest` (see the module doc).
    pub(in crate::engine) fn ivr_route(&mut self, now: Instant, id: u64, dest: Destination) {
        log::info!("call {id}: IVR routes to {dest:?}");
        match dest {
            Destination::Extension(ext) => {
                // Side B was never taken: the dialled phone becomes it when it answers.
                // The route stays the box's while it rings (in-dialog INFO is answered by the
                // box); the leg's answer makes it `Extension`.
                self.rewire_of(id).vacant = Some(Side::B);
                match self.dial_leg(now, id, Side::B, &ext, LegKind::Ivr) {
                    Ok(()) => self.music_to(id, Side::A),
                    Err(e) => {
                        let code = e.status();
                        log::info!("call {id}: IVR cannot ring {ext} ({code})");
                        self.end_call(id, HangupSide::System, "IVR target unavailable", code, now);
                    }
                }
            }
            Destination::Group(number) => self.ivr_ring_group(now, id, &number),
            Destination::Queue(q) => {
                self.ivr.calls.remove(&id);
                self.enter_queue(now, id, &q);
            }
            Destination::Voicemail(b) => self.voicemail_for_answered(now, id, &b),
            Destination::Announcement(name) => {
                let clips = self.ivr_clips(vec![name], false);
                self.ivr.calls.insert(id, IvrCall::Announcing);
                self.out.push_back(Output::Media(MediaCommand::Play {
                    relay: RelayId(id),
                    side: Side::A,
                    clips,
                    looped: false,
                }));
            }
            Destination::External(number) => {
                // A DID call presents its DID (its `present`); a phone's call its own caller ID,
                // and a phone barred from outside calls stays barred behind a menu.
                let policy_ext = match self.calls.get(&id) {
                    Some(c) if c.trunk.as_ref().is_some_and(|t| t.did.is_some()) => c.to_ext.clone(),
                    Some(c) => c.from_ext.clone(),
                    None => return,
                };
                self.rewire_of(id).vacant = Some(Side::B);
                match self.dial_external_leg(
                    now,
                    id,
                    Side::B,
                    &number,
                    &policy_ext,
                    LegKind::Ivr,
                    TRANSFER_RING,
                ) {
                    Ok(()) => self.music_to(id, Side::A),
                    Err(e) => self.ivr_external_failed(now, id, e.status()),
                }
            }
            other => {
                log::warn!("call {id}: {other:?} cannot be reached from an answered call; ending");
                self.end_call(id, HangupSide::System, "IVR destination not wired", 480, now);
            }
        }
    }

    /// An outside number dialled for the answered caller of `id` failed with `code`: the
    /// caller hears why, then the call ends ([`IvrCall::Announcing`]).
    pub(in crate::engine) fn ivr_external_failed(&mut self, now: Instant, id: u64, code: u16) {
        log::info!("call {id}: the outside number did not take the call ({code})");
        if !self.calls.get(&id).is_some_and(|c| c.a_ok_sent) {
            return self.end_call(id, HangupSide::System, "outside number failed", code, now);
        }
        let prompt = match code {
            404 | 410 | 484 | 604 => "common.not_in_service",
            408 | 480 | 487 => "common.no_answer",
            _ => "common.sorry_error",
        };
        self.out.push_back(Output::Media(MediaCommand::StopPlay { relay: RelayId(id), side: Side::A }));
        let clips = self.ivr_clips(vec![prompt.to_string()], false);
        self.ivr.calls.insert(id, IvrCall::Announcing);
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips,
            looped: false,
        }));
    }
}
