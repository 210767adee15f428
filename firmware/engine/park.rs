//! Call park: `#72` (or `#7` and a pause) during a call parks the other party in the first free
//! slot, the parker hears the slot number and is released, the parked party hears music.
//! Dialling the slot from any phone takes the call ([`Engine::replace_side`] with the
//! retriever's INVITE); a call nobody takes rings its parker back, and ends when that fails.
//!
//! A child of `call` beside `transfer.rs` (same reasons).

use super::transfer::{LegKind, NewParty};
use super::*;
use crate::media::Clip;
use std::time::Duration;

/// The in-call park code.
pub const PARK_CODE: &str = "#72";
/// The short form the spec also uses: `#7`, then [`PARK_SECOND_DIGIT_WAIT`] without a `2`.
pub const PARK_SHORT_CODE: &str = "#7";
/// How long `#7` waits for a `2` before parking anyway: a phone sends the next key of `#72`
/// within a few hundred milliseconds; a person keying `#7` alone should not wait long.
pub const PARK_SECOND_DIGIT_WAIT: Duration = Duration::from_millis(1500);
/// Longest the parker is kept for the slot announcement when the media driver never reports
/// its end (the prompt lasts about 3 s).
pub const PARK_ANNOUNCE_MAX: Duration = Duration::from_secs(8);

/// A parked call as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedView {
    /// The slot (dial it to take the call).
    pub slot: u32,
    /// Box-wide call id.
    pub call: u64,
    /// Who is parked.
    pub parked: String,
    /// Who parked it (rung back on timeout).
    pub parker: String,
    /// Seconds until the ringback.
    pub ringback_in_s: u64,
}

impl Engine {
    /// Parked calls, by slot.
    pub fn parked(&self, now: Instant) -> Vec<ParkedView> {
        self.rewiring
            .slots
            .iter()
            .filter_map(|(slot, id)| {
                let call = self.calls.get(id)?;
                let r = self.rewiring.calls.get(id)?;
                let (_, parker, at) = r.parked.as_ref()?;
                let parked_side = r.vacant.map(|s| s.other()).or(r.announcing.map(|(s, _)| s.other()))?;
                Some(ParkedView {
                    slot: *slot,
                    call: *id,
                    parked: call.ext(parked_side).to_string(),
                    parker: parker.clone(),
                    ringback_in_s: at.saturating_duration_since(now).as_secs(),
                })
            })
            .collect()
    }

    /// Is `number` one of the park slots?
    pub(crate) fn is_park_slot(&self, number: &str) -> bool {
        let p = &self.cfg.park;
        number.parse::<u32>().is_ok_and(|n| n >= p.first_slot && n < p.first_slot.saturating_add(p.slots))
            && !number.starts_with('0')
            // An extension configured inside the range (no `[park]` table to refuse it) wins.
            && !self.extensions.contains_key(number)
    }

    /// `#72`, or `#7` (then wait for a `2`); true when the digits are used up.
    pub(super) fn park_code(&mut self, id: u64, side: Side, buffer: &str, now: Instant) -> bool {
        if buffer.ends_with(PARK_CODE) {
            if let Some(r) = self.rewiring.calls.get_mut(&id) {
                r.park_wait = None;
            }
            self.park(now, id, side);
            return true;
        }
        if buffer.ends_with(PARK_SHORT_CODE) {
            self.rewire_of(id).park_wait = Some((side, now));
            self.arm(now + PARK_SECOND_DIGIT_WAIT, TimerKey::Rewire(id));
        }
        false
    }

    /// Parks the party opposite `parker`.
    fn park(&mut self, now: Instant, id: u64, parker: Side) {
        let ok = self.calls.get(&id).is_some_and(|c| c.is_plain_answered() && c.winner.is_some());
        if !ok || self.rewiring_busy(id) {
            log::info!("call {id}: park refused: the call is not a plain answered call");
            return;
        }
        let p = self.cfg.park.clone();
        let lang = self.cfg.media.language;
        let free = (p.first_slot..p.first_slot.saturating_add(p.slots))
            .find(|s| !self.rewiring.slots.contains_key(s));
        let Some(slot) = free else {
            log::info!("call {id}: park refused: all {} slots are taken", p.slots);
            self.out.push_back(super::super::Output::Media(MediaCommand::Play {
                relay: RelayId(id),
                side: parker,
                clips: vec![Clip::Prompt { id: "common.sorry_error".into(), lang }],
                looped: false,
            }));
            return;
        };
        let parker_ext = self.calls.get(&id).map(|c| c.ext(parker).to_string()).unwrap_or_default();
        let ringback_at = now + Duration::from_secs(u64::from(p.ringback_seconds));
        self.rewiring.slots.insert(slot, id);
        let r = self.rewire_of(id);
        r.parked = Some((slot, parker_ext.clone(), ringback_at));
        r.announcing = Some((parker, now + PARK_ANNOUNCE_MAX));
        self.arm(now + PARK_ANNOUNCE_MAX, TimerKey::Rewire(id));
        self.arm(ringback_at, TimerKey::Rewire(id));
        log::info!("call {id}: parked by {parker_ext} in slot {slot}");
        self.music_to(id, parker.other());
        let clips = crate::media::prompts::sentence_call_parked_at(&slot.to_string(), lang)
            .into_iter()
            .map(|id| Clip::Prompt { id: id.to_string(), lang })
            .collect();
        self.out.push_back(super::super::Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: parker,
            clips,
            looped: false,
        }));
    }

    /// A prompt ended: a parker who heard the slot is released.
    pub(crate) fn rewire_play_done(&mut self, now: Instant, id: u64, side: Side) {
        let done = self.rewiring.calls.get(&id).and_then(|r| r.announcing).is_some_and(|(s, _)| s == side);
        if done {
            self.release_parker(now, id);
        }
    }

    fn release_parker(&mut self, now: Instant, id: u64) {
        let Some((side, _)) = self.rewiring.calls.get_mut(&id).and_then(|r| r.announcing.take()) else {
            return;
        };
        log::info!("call {id}: the parker heard the slot and is released");
        self.leave_side(now, id, side, true);
    }

    /// Park timers: `#7` waited long enough, the announcement overran, ringback is due.
    pub(super) fn on_park_timer(&mut self, id: u64, now: Instant) {
        let Some(r) = self.rewiring.calls.get(&id) else { return };
        if let Some((side, at)) = r.park_wait {
            if at + PARK_SECOND_DIGIT_WAIT <= now {
                if let Some(r) = self.rewiring.calls.get_mut(&id) {
                    r.park_wait = None;
                }
                let still = self.calls.get(&id).is_some_and(|c| {
                    c.digit_buffers[usize::from(side == Side::B)].digits.ends_with(PARK_SHORT_CODE)
                });
                if still {
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.digit_buffers[usize::from(side == Side::B)].digits.clear();
                    }
                    self.park(now, id, side);
                }
                return;
            }
        }
        let Some(r) = self.rewiring.calls.get(&id) else { return };
        if r.announcing.is_some_and(|(_, at)| at <= now) {
            self.release_parker(now, id);
        }
        let Some(r) = self.rewiring.calls.get(&id) else { return };
        let due = r.parked.as_ref().filter(|p| p.2 <= now).map(|p| p.1.clone());
        let (Some(parker), Some(side), true) = (due, r.vacant, r.pending.is_empty()) else { return };
        log::info!("call {id}: nobody took the parked call; ringing {parker} back");
        if let Err(e) = self.dial_leg(now, id, side, &parker, LegKind::Ringback) {
            log::info!("call {id}: ringback to {parker} failed: {e:?}");
            self.end_call(id, HangupSide::System, "parked call not retrieved", 408, now);
        }
    }

    /// An INVITE to a park slot: the caller takes the parked call, or gets 404 for an empty slot.
    pub(crate) fn retrieve_parked(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: Request,
        from: &str,
    ) {
        let slot: u32 = req.uri.user_unescaped().and_then(|u| u.parse().ok()).unwrap_or_default();
        let id = self.rewiring.slots.get(&slot).copied();
        let side = id.and_then(|id| {
            self.vacant_side(id)
                .filter(|_| self.rewiring.calls.get(&id).is_some_and(|r| r.pending.is_empty()))
        });
        let (Some(id), Some(side)) = (id, side) else {
            log::info!("{from} dialled park slot {slot}: nothing parked there");
            let w = [("Warning", format!("399 hakoden \"park slot {slot} is empty\""))];
            return self.reply_status(txn, &req, peer, 404, &w, now);
        };
        log::info!("{from} dialled park slot {slot}");
        self.take_side_with_invite(now, peer, txn, req, from, id, side, "park retrieve");
    }

    /// The caller of a new INVITE takes `side` of call `id` (park retrieval, INVITE with
    /// Replaces): its offer is answered with the call's formats on a fresh relay port.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn take_side_with_invite(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: Request,
        from: &str,
        id: u64,
        side: Side,
        kind: &str,
    ) {
        let offer = sdp::parse(&req.common.body).ok();
        let audio = offer.as_ref().and_then(|o| o.audio.clone()).filter(|a| a.port != 0);
        let Some(audio) = audio.filter(|a| sdp::has_voice_codec(&sdp::supported_formats(&a.formats))) else {
            // No offer (late offer) or no G.711: the box needs the retriever's offer to answer.
            return self.reply_status(txn, &req, peer, 488, &[], now);
        };
        let Some(port) = self.pool.allocate() else {
            log::warn!("ALARM: RTP port pool exhausted (call {id}: {from} taking a side)");
            return self.reply_status(txn, &req, peer, 503, &[("Retry-After", "5".into())], now);
        };
        let formats = self.answer_formats(id, &audio.formats);
        let tag = self.token();
        let target = match req.contacts() {
            Ok(crate::sip::message::Contacts::List(l)) => l.into_iter().next().map(|c| c.uri.raw),
            _ => None,
        }
        .unwrap_or_else(|| req.common.from.uri.raw.clone());
        let dialog = Dialog {
            peer,
            call_id: req.common.call_id.clone(),
            local_party: format!("{};tag={tag}", req.common.header("To").unwrap_or_default()),
            remote_party: req.common.header("From").unwrap_or_default().to_string(),
            remote_target: target,
            local_cseq: 0,
            sdp_version: 1,
            pending_ok: None,
        };
        let voice_pt = audio
            .formats
            .iter()
            .find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma))
            .map(|f| f.pt);
        let party = NewParty {
            dialog,
            ext: from.to_string(),
            port,
            remote: audio.rtp_addr(),
            voice_pt,
            shape: offer,
            uac: None,
            start: now,
            ring: None,
        };
        if let Some(slot) = self.rewiring.calls.get_mut(&id).and_then(|r| r.parked.take()).map(|p| p.0) {
            self.rewiring.slots.remove(&slot);
        }
        log::info!("call {id}: {from} takes side {side:?} ({kind})");
        self.replace_side(now, id, side, party, kind);
        let Some(call) = self.calls.get(&id) else { return };
        let body = self.sdp_for(call, side, &formats, Direction::SendRecv);
        let user = req.uri.user_unescaped().unwrap_or_default();
        let contact = self.contact_for(&user, &peer);
        let ok = response_to(&req.common, peer.addr, 200, Some(&tag))
            .header("Contact", contact)
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", &body);
        self.reply(txn, 200, ok.clone(), now);
        self.set_pending_ok(now, id, side, req.common.cseq.seq, ok, peer);
    }
}

impl Engine {
    /// An INVITE with `Replaces` (RFC 3891): the caller takes the side of the call whose dialog
    /// the header names (by Call-ID; tags are not compared), and that side's party is hung up.
    /// Any authenticated extension may do so: the Call-IDs the box hands out are unguessable.
    pub(crate) fn invite_with_replaces(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: Request,
        from: &str,
    ) {
        let value = req.common.header("Replaces").unwrap_or_default();
        let call_id = value.split(';').next().unwrap_or_default().trim().to_string();
        let found = self.a_index.iter().find(|((c, _), _)| *c == call_id).map(|(_, v)| (*v, Side::A));
        let found = found.or_else(|| {
            let (id, fork) = self.b_index.get(&call_id).copied()?;
            (self.calls.get(&id)?.winner == Some(fork)).then_some((id, Side::B))
        });
        let Some((id, side)) = found else {
            // §3: no such dialog.
            return self.reply_status(txn, &req, peer, 481, &[], now);
        };
        let ok = self.calls.get(&id).is_some_and(|c| c.is_plain_answered());
        if !ok || self.rewiring_busy(id) {
            return self.reply_status(txn, &req, peer, 486, &[], now);
        }
        self.take_side_with_invite(now, peer, txn, req, from, id, side, "replaces");
    }
}
