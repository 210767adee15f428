//! The dial plan's primitives that need a call's internals: ringing other phones in place of
//! the current ones, answering a call with a prompt, and pickup (a picker's INVITE becomes the
//! callee side of a ringing call). A child module of `call.rs` so `Call`'s fields stay private
//! to the call room; the policy lives in `dialplan.rs`.
//!
//! Overlap: the transfer helper's park retrieval also makes a new INVITE dialog the other side of
//! an existing call; [`Engine::connect_picker`] is the dial plan's own self-contained version
//! (it only joins a call that is still ringing, so there is no old B leg to hang up).

use super::super::cdr::HangupSide;
use super::{Call, CallRoute, CallState, Dialog, Fork, ForkState, Side};
use crate::media::sdp::{self, Direction, Encoding};
use crate::media::{MediaCommand, RelayId};
use crate::sip::message::{Contacts, Request};
use crate::sip::transaction::{ClientTxnId, ServerTxnId};
use crate::sip::writer::{self, response_to};
use crate::sip::Peer;
use std::time::Instant;

/// The client transaction id of a picker's fork: the picker's leg is a dialog where the box is
/// UAS, so it has no client transaction. Real ids count up from 0 and never reach this.
const NO_CLIENT_TXN: ClientTxnId = ClientTxnId(u64::MAX);

impl Call {
    /// The box-wide call id.
    pub(in super::super) fn id_of(&self) -> u64 {
        self.id
    }
}

impl super::super::Engine {
    /// Counts a call against an extension (busy detection), for dial-plan members.
    pub(in super::super) fn busy_add(&mut self, ext: &str, delta: i32) {
        self.active_add(ext, delta);
    }

    /// True while the call rings and nobody answered (pickup may take it).
    pub(in super::super) fn is_unanswered(&self, id: u64) -> bool {
        self.calls.get(&id).is_some_and(|c| {
            c.state == CallState::Proceeding
                && c.winner.is_none()
                && c.route == CallRoute::Extension
                && self.server.is_proceeding(c.invite_txn)
        })
    }

    /// Cancels every fork still ringing and rings `contacts` (uri, source, extension) instead.
    /// Returns the new forks' indices with their extensions.
    pub(in super::super) fn ring_instead(
        &mut self,
        now: Instant,
        id: u64,
        contacts: Vec<(String, Peer, String)>,
        display: Option<&str>,
    ) -> Vec<(usize, String)> {
        let Some(call) = self.calls.get(&id) else { return Vec::new() };
        let display = display.map(str::to_string).or_else(|| call.invite.common.from.display.clone());
        let ringing: Vec<usize> = call
            .forks
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                matches!(f.state, ForkState::Trying | ForkState::Early) && f.third_party.is_none()
            })
            .map(|(i, _)| i)
            .collect();
        for i in ringing {
            self.cancel_fork(now, id, i);
        }
        let mut started = Vec::new();
        for (uri, peer, ext) in contacts {
            let index = self.calls.get(&id).map_or(0, |c| c.forks.len());
            self.start_fork(now, id, &uri, peer, display.as_deref());
            started.push((index, ext));
        }
        started
    }

    /// What the console and the CDR call the callee of `id` (a masked hot-desk code).
    pub(in super::super) fn rename_callee(&mut self, id: u64, shown: &str) {
        if let Some(call) = self.calls.get_mut(&id) {
            let old = std::mem::replace(&mut call.to_ext, shown.to_string());
            self.active_add(&old, -1);
            self.active_add(shown, 1);
        }
    }

    /// Turns the box-wide ring timeout of a call on (from now) or off (the dial plan's own
    /// timer rules the step).
    pub(in super::super) fn set_ring_deadline(&mut self, now: Instant, id: u64, on: bool) {
        let at = now + self.cfg.ring_timeout;
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.ring_deadline = on.then_some(at);
        if on {
            self.arm(at, super::super::TimerKey::Call(id));
        }
    }

    /// The box answers the caller itself (feature codes) and plays `prompt`; the dial plan hangs
    /// up when it has played.
    pub(in super::super) fn answer_with_prompt(&mut self, now: Instant, id: u64, prompt: &'static str) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let voice =
            call.offered.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)).cloned();
        let te = call.offered.iter().find(|f| f.encoding == Encoding::TelephoneEvent).cloned();
        let Some(voice) = voice else {
            // A late offer (no SDP in the INVITE): no codec known to play the prompt with. The
            // code itself took effect; the phone sees 480 instead of the confirmation.
            return self.end_call(id, HangupSide::System, "feature code", 480, now);
        };
        call.answered = std::iter::once(voice.clone()).chain(te.clone()).collect();
        call.state = CallState::Answered;
        call.answer = Some(now);
        call.ring_deadline = None;
        call.a_ok_sent = true;
        self.send_box_answer(now, id, Direction::SendRecv);
        self.out.push_back(super::super::Output::Media(MediaCommand::Codec {
            relay: RelayId(id),
            side: Side::A,
            audio_pt: voice.pt,
            telephone_event_pt: te.map(|t| t.pt),
            inband_dtmf: false,
        }));
        self.play_prompt(id, prompt);
    }

    /// Pickup: the picker's INVITE (`req` on server transaction `txn`) becomes the answered
    /// callee side of ringing call `id`; the ringing phones are cancelled. Errors are the SIP
    /// status for the picker.
    pub(in super::super) fn connect_picker(
        &mut self,
        now: Instant,
        id: u64,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        picker: &str,
    ) -> Result<(), u16> {
        if !self.is_unanswered(id) {
            return Err(404);
        }
        let Some(call) = self.calls.get(&id) else { return Err(404) };
        if call.late_offer {
            // The caller's offer would have to come from the picker: not supported (docs).
            return Err(488);
        }
        let audio = sdp::parse(&req.common.body).ok().and_then(|s| s.audio).ok_or(488u16)?;
        // The relay forwards packets untouched: only formats with the same payload type number
        // on both phones can be used.
        let formats: Vec<_> = call
            .offered
            .iter()
            .filter(|o| audio.formats.iter().any(|a| a.pt == o.pt && a.encoding == o.encoding))
            .cloned()
            .collect();
        if !sdp::has_voice_codec(&formats) {
            return Err(488);
        }
        let tag = self.token();
        let remote_target = match req.contacts() {
            Ok(Contacts::List(l)) => l.into_iter().next().map(|c| c.uri.raw),
            _ => None,
        }
        .unwrap_or_else(|| req.common.from.uri.raw.clone());
        let dialog = Dialog {
            peer,
            call_id: req.common.call_id.clone(),
            local_party: format!("{};tag={tag}", req.common.header("To").unwrap_or_default()),
            remote_party: req.common.header("From").unwrap_or_default().to_string(),
            remote_target: remote_target.clone(),
            local_cseq: 0,
            sdp_version: 1,
            pending_ok: None,
        };
        let Some(call) = self.calls.get_mut(&id) else { return Err(404) };
        let fork_ix = call.forks.len();
        call.forks.push(Fork {
            dialog,
            txn: NO_CLIENT_TXN,
            invite_cseq: req.common.cseq.seq,
            request_uri: remote_target,
            state: ForkState::Answered,
            cancel_pending: false,
            ack: None,
            remote_tag: req.common.from.tag().map(str::to_string),
            start: now,
            ring: None,
            answer: Some(now),
            end: None,
            final_status: 200,
            third_party: None,
        });
        call.winner = Some(fork_ix);
        call.answer = Some(now);
        call.ring_deadline = None;
        call.media_addr[1] = audio.rtp_addr();
        call.callee_voice_pt = audio
            .formats
            .iter()
            .find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma))
            .map(|f| f.pt);
        call.answered = formats.clone();
        call.state = CallState::Answered;
        call.a.sdp_version += 1;
        let old_callee = std::mem::replace(&mut call.to_ext, picker.to_string());
        self.b_index.insert(req.common.call_id.clone(), (id, fork_ix));
        self.active_add(&old_callee, -1);
        self.active_add(picker, 1);
        let others: Vec<usize> = (0..fork_ix).collect();
        for i in others {
            self.cancel_fork(now, id, i);
        }
        self.set_remote(id, Side::B, audio.rtp_addr());
        let Some(call) = self.calls.get(&id) else { return Ok(()) };
        // The caller: 200 with the relay's A side.
        let body = self.sdp_for(call, Side::A, &formats, Direction::SendRecv);
        let ok = response_to(&call.invite.common, call.a.peer.addr, 200, Some(&call.a_tag))
            .header("Contact", self.contact_for(&call.to_ext, &call.a.peer))
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", &body);
        let (a_txn, a_cseq, a_peer) = (call.invite_txn, call.invite.common.cseq.seq, call.a.peer);
        // The picker: 200 with the relay's B side, in the dialog tagged above.
        let b_body = self.sdp_for(call, Side::B, &formats, Direction::SendRecv);
        let b_ok = response_to(&req.common, peer.addr, 200, Some(&tag))
            .header("Contact", self.contact_for(&call.from_ext, &peer))
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", &b_body);
        self.reply(a_txn, 200, ok.clone(), now);
        self.set_pending_ok(now, id, Side::A, a_cseq, ok, a_peer);
        self.reply(txn, 200, b_ok.clone(), now);
        self.set_pending_ok(now, id, Side::B, req.common.cseq.seq, b_ok, peer);
        if let Some(c) = self.calls.get_mut(&id) {
            c.a_ok_sent = true;
        }
        self.start_media(id, now);
        // The picker is now the callee: a 受付可 agent on it is on an internal call.
        self.queue_personal_call(now, id, true);
        Ok(())
    }
}
