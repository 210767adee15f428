//! Consultation transfer from the keypad: `#9 <number> #` holds the other party (music) and rings
//! the number for the presser; the presser hanging up completes the transfer (the held party is
//! bridged to the target), `#0` or the target declining, not answering or hanging up returns
//! the presser to the held party.
//!
//! Media while consulting: the relay is re-opened with the presser's port on its side and the
//! target's fresh port on the other; the held party's port moves, alone, into a private room
//! that plays music. Nothing is re-INVITEd. A child of `call` beside `transfer.rs`.

use super::transfer::{LegKind, NewParty};
use super::*;
use crate::media::Clip;

/// The in-call code of a consultation transfer: `#9 <number> #`.
pub const CONSULT_TRANSFER_CODE: &str = "#9";
/// The in-call code that ends a consultation and returns to the held party.
pub const CONSULT_CANCEL_CODE: &str = "#0";
/// Relay id bit of the held party's private music room (beside `PARTICIPANT_B`/`_C`).
pub(super) const HOLD_PARTICIPANT: u64 = 1 << 60;
/// Room numbers of hold rooms: above the dial-in rooms and the three-way rooms (1_000_000+).
const HOLD_ROOM_BASE: u32 = 2_000_000;
/// Hold rooms are numbered by call id modulo this (as three-way rooms are).
const ROOM_SPAN: u64 = 1_000_000;
/// Longest number `#9` may dial.
const MAX_TARGET_DIGITS: usize = 12;

fn hold_relay(id: u64) -> RelayId {
    RelayId(id | HOLD_PARTICIPANT)
}

impl Engine {
    /// `#9 <number> #` and `#0`; true when the digits were one of them.
    pub(super) fn consult_code(&mut self, id: u64, side: Side, buffer: &str, now: Instant) -> bool {
        let consulting = self.rewiring.calls.get(&id).and_then(|r| r.consult.as_ref()).map(|c| c.0);
        if consulting == Some(side) && buffer.ends_with(CONSULT_CANCEL_CODE) {
            log::info!("call {id}: {CONSULT_CANCEL_CODE}: back to the held party");
            self.end_consult(now, id);
            return true;
        }
        let Some(target) =
            buffer.strip_suffix('#').and_then(|b| b.rsplit_once(CONSULT_TRANSFER_CODE)).map(|(_, t)| t)
        else {
            return false;
        };
        if target.is_empty()
            || target.len() > MAX_TARGET_DIGITS
            || !target.bytes().all(|b| b.is_ascii_digit())
        {
            return false;
        }
        let target = target.to_string();
        let ok = self.calls.get(&id).is_some_and(|c| c.is_plain_answered() && c.winner.is_some());
        if !ok || consulting.is_some() || self.vacant_side(id).is_some() {
            log::info!("call {id}: {CONSULT_TRANSFER_CODE}{target}# refused: not a plain answered call");
            return true;
        }
        match self.dial_leg(now, id, side, &target, LegKind::Consult) {
            Ok(()) => {
                log::info!("call {id}: consulting {target}; the other party is held");
                self.rewire_of(id).consult = Some((side, None));
                self.music_to(id, side.other());
            }
            Err(e) => {
                log::info!("call {id}: consult {target} refused: {e:?}");
                let lang = self.cfg.media.language;
                let ids = crate::media::prompts::sentence_extension_not_available(&target, lang);
                self.out.push_back(super::super::Output::Media(MediaCommand::Play {
                    relay: RelayId(id),
                    side,
                    clips: ids.into_iter().map(|p| Clip::Prompt { id: p.to_string(), lang }).collect(),
                    looped: false,
                }));
            }
        }
        true
    }

    /// The consulted target answered: presser and target talk, the held party hears music.
    pub(super) fn consult_answered(&mut self, id: u64, party: NewParty) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some(x) = self.rewiring.calls.get(&id).and_then(|r| r.consult.as_ref()).map(|c| c.0) else {
            return;
        };
        let y = x.other();
        let Some((audio_pt, te)) = super::super::features::codec_of(call.negotiated()) else { return };
        let y_pt = if y == Side::B { call.callee_voice_pt.unwrap_or(audio_pt) } else { audio_pt };
        let x_pt = if x == Side::B { call.callee_voice_pt.unwrap_or(audio_pt) } else { audio_pt };
        let (y_port, y_addr) = (call.port(y), call.media_addr[usize::from(y == Side::B)]);
        let x_port = call.port(x);
        let x_addr = call.media_addr[usize::from(x == Side::B)];
        let (a_port, b_port, a_remote, b_remote) = match x {
            Side::A => (x_port, party.port, x_addr, party.remote),
            Side::B => (party.port, x_port, party.remote, x_addr),
        };
        log::info!("call {id}: {} answered the consultation", party.ext);
        let out = &mut self.out;
        out.push_back(super::super::Output::Media(MediaCommand::Close { relay: RelayId(id) }));
        out.push_back(super::super::Output::Media(MediaCommand::JoinRoom {
            relay: hold_relay(id),
            room: HOLD_ROOM_BASE + (id % ROOM_SPAN) as u32,
            port: y_port,
            remote: y_addr,
            audio_pt: y_pt,
            telephone_event_pt: te,
        }));
        out.push_back(super::super::Output::Media(MediaCommand::Play {
            relay: hold_relay(id),
            side: y,
            clips: vec![Clip::MusicOnHold],
            looped: true,
        }));
        out.push_back(super::super::Output::Media(MediaCommand::Open {
            relay: RelayId(id),
            a_port,
            b_port,
            a_remote,
            b_remote,
        }));
        out.push_back(super::super::Output::Media(MediaCommand::Codec {
            relay: RelayId(id),
            side: x,
            audio_pt: x_pt,
            telephone_event_pt: te,
            inband_dtmf: true,
        }));
        if let Some(r) = self.rewiring.calls.get_mut(&id) {
            r.consult = Some((x, Some(party)));
        }
    }

    /// The presser hung up during the consultation: the transfer completes. Still ringing: the
    /// target takes the presser's place when it answers (a blind transfer from here on).
    pub(super) fn complete_consult(&mut self, now: Instant, id: u64) {
        let Some((x, target)) = self.rewiring.calls.get_mut(&id).and_then(|r| r.consult.take()) else {
            return;
        };
        self.leave_side(now, id, x, false);
        match target {
            None => {
                log::info!("call {id}: the presser hung up during the consultation; transferring on answer");
                self.pending_leg_becomes_blind(id);
            }
            Some(party) => {
                self.out
                    .push_back(super::super::Output::Media(MediaCommand::Close { relay: hold_relay(id) }));
                self.replace_side(now, id, x, party, "attended transfer");
            }
        }
    }

    /// Ends a consultation and returns the presser to the held party (also when the call ends).
    pub(super) fn end_consult(&mut self, now: Instant, id: u64) {
        let Some((x, target)) = self.rewiring.calls.get_mut(&id).and_then(|r| r.consult.take()) else {
            return;
        };
        match target {
            None => {
                self.cancel_pending_leg(now, id);
                self.out.push_back(super::super::Output::Media(MediaCommand::StopPlay {
                    relay: RelayId(id),
                    side: x.other(),
                }));
            }
            Some(party) => {
                self.bye_dialog(now, id, party.dialog.clone());
                self.consult_media_back(id, party.port);
            }
        }
    }

    /// The relay as before the consultation; the target's port goes back to the pool.
    fn consult_media_back(&mut self, id: u64, target_port: u16) {
        self.pool.release(target_port);
        self.out.push_back(super::super::Output::Media(MediaCommand::Close { relay: hold_relay(id) }));
        let Some(call) = self.calls.get(&id) else { return };
        let (a_port, b_port, addrs) = (call.a_port, call.b_port, call.media_addr);
        self.out.push_back(super::super::Output::Media(MediaCommand::Close { relay: RelayId(id) }));
        self.out.push_back(super::super::Output::Media(MediaCommand::Open {
            relay: RelayId(id),
            a_port,
            b_port,
            a_remote: addrs[0],
            b_remote: addrs[1],
        }));
        self.codecs_to_relay(id);
    }

    /// A request on a consulted target's dialog (it is not one of the call's sides yet): a BYE
    /// ends the consultation; anything else is answered without being relayed.
    pub(crate) fn consult_request(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
    ) -> bool {
        let found = self.rewiring.calls.iter().find_map(|(id, r)| {
            let (_, Some(party)) = r.consult.as_ref()? else { return None };
            (party.dialog.call_id == req.common.call_id).then_some(*id)
        });
        let Some(id) = found else { return false };
        match req.method {
            crate::sip::message::Method::Bye => {
                self.reply_status(txn, req, peer, 200, &[], now);
                log::info!("call {id}: the consulted party hung up; back to the held party");
                let Some((_, Some(party))) = self.rewiring.calls.get_mut(&id).and_then(|r| r.consult.take())
                else {
                    return true;
                };
                self.consult_media_back(id, party.port);
            }
            // A mid-consultation offer would re-point a relay side that is about to move again.
            crate::sip::message::Method::Invite => self.reply_status(txn, req, peer, 488, &[], now),
            _ => self.reply_status(txn, req, peer, 200, &[], now),
        }
        true
    }
}
