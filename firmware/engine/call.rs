//! Calls: the B2BUA. A call is the caller's leg (A, where the box is UAS) and one fork per
//! registered contact of the callee (B legs, where the box is UAC), bridged by one RTP relay.
//!
//! Media is always anchored: the caller sees the relay's A port in SDP, every callee fork the
//! relay's B port. Payload type numbers are the caller's on both sides, so the relay forwards
//! packets untouched.

use super::cdr::{CdrRecord, Disposition, HangupSide, LegRecord};
use super::{CallView, Engine, TimerKey};
use crate::media::sdp::{self, Direction, Encoding, Origin, PayloadFormat};
use crate::media::{MediaCommand, RelayId, Side};
use crate::sip::message::{NameAddr, Request, Response};
use crate::sip::transaction::{ClientTxnId, ServerTxnId, T1, T2, TIMEOUT_64T1};
use crate::sip::writer::{self, response_to, Writer};
use crate::sip::Peer;
use std::time::Instant;

#[path = "dialplan_call.rs"]
mod dialplan_call;
// A child of `call` so it can work on a call's legs without widening their visibility.
#[path = "trunkcalls.rs"]
pub(super) mod trunkcalls;
// Re-wiring answered calls (transfer, park) works on the dialogs and forks below.
#[path = "consult.rs"]
pub(super) mod consult;
#[path = "park.rs"]
pub(super) mod park;
#[path = "transfer.rs"]
pub(super) mod transfer;
// Voicemail answers calls itself, like the dial plan's prompts.
#[path = "voicemail_call.rs"]
pub(super) mod voicemail_call;
// IVR menus answer calls themselves and hand them on (issue 6).
#[path = "ivr_call.rs"]
pub(super) mod ivr_call;
// Supervision answers a supervisor's call itself and joins it to an agent's room (issue 6).
#[path = "originate.rs"]
pub(super) mod originate;

#[path = "supervise_call.rs"]
pub(super) mod supervise_call;
// Call-center queues answer calls and ring agents through the transfer legs (issue 6).
#[path = "queue_call.rs"]
pub(super) mod queue_call;

/// Why the box sent a client request; the answer is routed by this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The INVITE of a fork.
    Fork { call: u64, fork: usize },
    /// A BYE or CANCEL whose answer needs no action.
    Fire { call: u64 },
    /// A re-INVITE relayed from the other side; its answer goes back on `from`'s transaction.
    ReInvite { call: u64, from: Side, txn: ServerTxnId, req: Box<Request>, peer: Peer },
    /// An in-dialog request (INFO, UPDATE without SDP) relayed; the status goes back.
    Relay { call: u64, txn: ServerTxnId, req: Box<Request>, peer: Peer },
    /// The INVITE of a new party for one side of a call (transfer, park ringback).
    Leg { call: u64, leg: u64 },
    /// The INVITE to a supervisor's phone for an API supervision session (`supervise_call.rs`).
    Supervise { session: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE forwarded, no answer yet.
    Proceeding,
    /// 2xx sent to the caller, waiting for the ACK.
    Answered,
    /// ACK received: talking.
    Confirmed,
}

/// A pending 2xx to an INVITE on the A leg or any leg's re-INVITE, retransmitted until ACKed
/// (RFC 3261 §13.3.1.4: the UAS core, not the transaction, does this).
#[derive(Debug, Clone)]
struct PendingOk {
    cseq: u32,
    bytes: Vec<u8>,
    interval: std::time::Duration,
    next_at: Instant,
    give_up_at: Instant,
}

/// One side of a confirmed (or early) dialog.
#[derive(Debug, Clone)]
struct Dialog {
    peer: Peer,
    call_id: String,
    /// From (ours, with our tag) for requests we send on this leg.
    local_party: String,
    /// To (theirs, with their tag) for requests we send.
    remote_party: String,
    /// Request-URI for requests we send (their Contact).
    remote_target: String,
    local_cseq: u32,
    /// Our SDP version on this leg.
    sdp_version: u64,
    /// 2xx waiting for ACK.
    pending_ok: Option<PendingOk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForkState {
    Trying,
    Early,
    Answered,
    Failed,
}

#[derive(Debug, Clone)]
struct Fork {
    dialog: Dialog,
    txn: ClientTxnId,
    /// The INVITE's CSeq (the ACK for its 2xx reuses it).
    invite_cseq: u32,
    request_uri: String,
    state: ForkState,
    cancel_pending: bool,
    /// Our ACK for its 2xx, re-sent when the 2xx is retransmitted.
    ack: Option<Vec<u8>>,
    remote_tag: Option<String>,
    start: Instant,
    ring: Option<Instant>,
    answer: Option<Instant>,
    end: Option<Instant>,
    final_status: u16,
    /// A third party invited into a three-way call: the room port its SDP points to.
    third_party: Option<u16>,
}

/// Participant ids in a three-way room: the caller keeps the call id, the callee and the third
/// party get it with a high bit set (call ids never reach these bits).
pub(super) const PARTICIPANT_B: u64 = 1 << 62;
/// See [`PARTICIPANT_B`].
pub(super) const PARTICIPANT_C: u64 = 1 << 61;

/// A call in progress.
#[derive(Debug)]
pub(super) struct Call {
    id: u64,
    from_ext: String,
    to_ext: String,
    state: CallState,
    /// The caller's INVITE (responses are built from it).
    invite: Box<Request>,
    invite_txn: ServerTxnId,
    a: Dialog,
    a_tag: String,
    a_ok_sent: bool,
    forks: Vec<Fork>,
    winner: Option<usize>,
    a_port: u16,
    b_port: u16,
    /// The caller's supported formats (their PT numbers are used on both legs).
    offered: Vec<PayloadFormat>,
    /// The formats the callee chose.
    answered: Vec<PayloadFormat>,
    ptime: Option<u16>,
    /// The caller sent no SDP: the callee's 2xx holds the offer, the caller's ACK the answer.
    late_offer: bool,
    /// The m= lines of the caller's offer, mirrored in our answers.
    a_offer_shape: sdp::Sdp,
    start: Instant,
    ring: Option<Instant>,
    answer: Option<Instant>,
    ring_deadline: Option<Instant>,
    reinvite_pending: bool,
    /// Where the call goes: an extension's phones, or a conference room of the box.
    pub(super) route: CallRoute,
    /// A recording is running.
    pub(super) recording_active: bool,
    /// Recordings started so far (on-demand may start several).
    pub(super) recordings: u32,
    /// Their paths, relative to the recordings directory (linked from the CDR).
    pub(super) recording_paths: Vec<String>,
    /// Which side put the call on hold (music plays to the other).
    pub(super) held_by: Option<Side>,
    /// Per side (A, B): its last offer put the call on hold (`sendonly`, `inactive` or no
    /// address), whoever answered it; with music on hold off only this tells a held call.
    pub(super) sdp_held: [bool; 2],
    /// Recent digits per side, for in-call feature codes.
    pub(super) digit_buffers: [DigitBuffer; 2],
    /// Every digit seen on the call, for the console.
    pub(super) digits_seen: String,
    /// The last press per side, to merge INFO with the relay's sources.
    pub(super) last_digit: [Option<(char, crate::media::dtmf::DtmfSource, Instant)>; 2],
    /// A three-way call: its private room and the third party's port.
    pub(super) three_way: Option<(u32, u16)>,
    /// Where each side's RTP goes according to SDP (for moving the call into a room).
    pub(super) media_addr: [Option<std::net::SocketAddr>; 2],
    /// The first voice payload type of the callee's answer (what it will send).
    callee_voice_pt: Option<u8>,
    /// The trunk side of a call that crosses a trunk (issue 4).
    pub(super) trunk: Option<Box<trunkcalls::TrunkLeg>>,
}

/// Where a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallRoute {
    /// Bridged to an extension's phones.
    Extension,
    /// Answered by the box into a conference room.
    Room(u32),
    /// Answered by the box to play an announcement, then hung up (trunk calls).
    Announcement,
    /// Answered by the box into a mailbox (`voicemail_call.rs`).
    Voicemail,
}

/// Recent digits of one side.
#[derive(Debug, Clone, Default)]
pub(super) struct DigitBuffer {
    pub(super) digits: String,
    pub(super) last: Option<Instant>,
}

impl Call {
    /// The formats in use: the answered ones, else the offered ones.
    pub(super) fn negotiated(&self) -> &[PayloadFormat] {
        if self.answered.is_empty() {
            &self.offered
        } else {
            &self.answered
        }
    }

    /// The first voice payload type of the callee's answer, if known.
    pub(super) fn callee_voice_pt(&self) -> Option<u8> {
        self.callee_voice_pt
    }

    pub(super) fn caller_ext(&self) -> &str {
        &self.from_ext
    }

    pub(super) fn callee_ext(&self) -> &str {
        &self.to_ext
    }

    pub(super) fn start_instant(&self) -> Instant {
        self.start
    }

    pub(super) fn view(&self, now: Instant) -> CallView {
        CallView {
            id: self.id,
            from: self.from_ext.clone(),
            to: self.to_ext.clone(),
            state: match (self.state, self.ring, self.route, self.held_by) {
                (CallState::Proceeding, None, _, _) => "trying",
                (CallState::Proceeding, Some(_), _, _) => "ringing",
                (_, _, CallRoute::Room(_), _) => "conference",
                (CallState::Confirmed, _, _, Some(_)) => "on hold",
                (CallState::Answered, _, _, _) => "answered",
                (CallState::Confirmed, _, _, None) => "talking",
            },
            recording: self.recording_active,
            digits: self.digits_seen.clone(),
            age_s: now.saturating_duration_since(self.start).as_secs(),
            talk_s: self.answer.map(|a| now.saturating_duration_since(a).as_secs()),
            caller_peer: self.a.peer,
            rtp_ports: (self.a_port, self.b_port),
        }
    }

    fn dialog(&self, side: Side) -> &Dialog {
        match (side, self.winner) {
            (Side::B, Some(w)) => self.forks.get(w).map(|f| &f.dialog).unwrap_or(&self.a),
            _ => &self.a,
        }
    }

    fn dialog_mut(&mut self, side: Side) -> &mut Dialog {
        match (side, self.winner) {
            (Side::B, Some(w)) if w < self.forks.len() => &mut self.forks[w].dialog,
            _ => &mut self.a,
        }
    }

    fn port(&self, side: Side) -> u16 {
        match side {
            Side::A => self.a_port,
            Side::B => self.b_port,
        }
    }
}

trait OtherSide {
    fn other(self) -> Side;
}

impl OtherSide for Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

fn disposition_for(status: u16, ringing: bool) -> Disposition {
    match status {
        200..=299 => Disposition::Answered,
        486 | 600 => Disposition::Busy,
        487 => Disposition::Cancelled,
        408 | 480 if ringing => Disposition::NoAnswer,
        _ => Disposition::Failed,
    }
}

/// RFC 3261 §16.7 step 6, simplified for forks: a 6xx wins, then busy, then the lowest class.
fn best_failure(codes: impl Iterator<Item = u16>) -> u16 {
    let codes: Vec<u16> = codes.filter(|c| *c >= 300).collect();
    if let Some(c) = codes.iter().find(|c| **c >= 600) {
        return *c;
    }
    if codes.contains(&486) {
        return 486;
    }
    codes
        .iter()
        .filter(|c| **c != 487 && **c != 408)
        .min()
        .copied()
        .or_else(|| codes.iter().min().copied())
        .unwrap_or(480)
}

impl Engine {
    /// Points one side of a call's relay at the RTP address an SDP gave (none: keep latching).
    fn set_remote(&mut self, id: u64, side: Side, addr: Option<std::net::SocketAddr>) {
        if let Some(remote) = addr {
            self.out.push_back(super::Output::Media(MediaCommand::SetRemote {
                relay: RelayId(id),
                side,
                remote,
            }));
        }
    }

    fn sdp_for(&self, call: &Call, side: Side, formats: &[PayloadFormat], direction: Direction) -> Vec<u8> {
        let peer = call.dialog(side).peer;
        let origin = Origin {
            session_id: call.id * 2 + u64::from(side == Side::B),
            version: call.dialog(side).sdp_version,
            addr: self.local_ip_for(&peer),
        };
        // The caller's answers mirror its offer's m= lines (RFC 3264 §6); the callee was offered
        // audio alone.
        let shape = (side == Side::A).then_some(&call.a_offer_shape);
        sdp::render_answer(&origin, shape, call.port(side), formats, direction, call.ptime).into_bytes()
    }

    fn active_add(&mut self, ext: &str, delta: i32) {
        let e = self.active_by_ext.entry(ext.to_string()).or_insert(0);
        *e = e.saturating_add_signed(delta);
        if *e == 0 {
            self.active_by_ext.remove(ext);
        }
    }

    // ---- a new call -------------------------------------------------------------------------

    pub(super) fn handle_new_invite(&mut self, now: Instant, peer: Peer, txn: ServerTxnId, req: Request) {
        let from_ext = req.common.from.uri.user_unescaped().unwrap_or_default();
        let mut trunk_plan = match self.admit_from_trunk(now, peer, txn, &req) {
            trunkcalls::Admission::Phone => None,
            trunkcalls::Admission::Done => return,
            trunkcalls::Admission::Trunk(plan) => Some(plan),
        };
        let trusted = trunk_plan.is_some()
            || (self.cfg.trust_registered_source && self.registrar.is_bound_from(&from_ext, peer, now));
        if !trusted {
            match self.authenticate(now, peer, &req, &from_ext) {
                super::AuthOutcome::Ok => {}
                super::AuthOutcome::Challenge { stale } => {
                    return self.challenge(now, peer, txn, &req, stale, true)
                }
                super::AuthOutcome::Forbidden => return self.reply_status(txn, &req, peer, 403, &[], now),
            }
        }
        let to_ext = match &trunk_plan {
            Some(plan) => plan.target.clone(),
            None => {
                req.uri.user_unescaped().or_else(|| req.common.to.uri.user_unescaped()).unwrap_or_default()
            }
        };
        // Dial plan (issue 4): a hot-desk phone presents its login; groups, forwards and
        // feature codes are decided there, for phones and for DID calls to an internal number.
        let from_ext =
            if trunk_plan.is_none() { self.dialplan_presented_as(&from_ext, peer) } else { from_ext };
        if req.common.header("Replaces").is_some() {
            return self.invite_with_replaces(now, peer, txn, req, &from_ext);
        }
        if self.is_park_slot(&to_ext) {
            return self.retrieve_parked(now, peer, txn, req, &from_ext);
        }
        let room = self.room_for(&to_ext);
        let mut plan = None;
        // IVR (issue 6): a phone dialled a menu's number; the box answers it.
        let ivr_menu = if trunk_plan.is_none() { self.ivr_by_number(&to_ext) } else { None };
        // Call center (issue 6): a phone dialled a queue's number.
        let queue = if trunk_plan.is_none() { self.queue_by_number(&to_ext) } else { None };
        // A queue's call is answered by the box like a menu's: it takes the menu's path here.
        let ivr_menu = ivr_menu.or_else(|| queue.as_ref().map(|_| String::new()));
        // Supervision (issue 6): `995`/`994`/`996` + extension; the box answers it too.
        let supervise = if trunk_plan.is_none() { self.supervision_code(&to_ext) } else { None };
        // Outbound campaigns (issue 9): an agent dials 990 and stays on the line for customers.
        let campaign_login = trunk_plan.is_none() && to_ext == originate::CAMPAIGN_LOGIN_CODE;
        let box_answers = ivr_menu.is_some() || supervise.is_some() || campaign_login;
        let leaves_by_trunk = trunk_plan.as_ref().is_some_and(|p| p.direct.is_some());
        if room.is_none() && !leaves_by_trunk && !box_answers {
            match self.dialplan_new_call(now, peer, txn, &req, &from_ext, &to_ext) {
                super::dialplan::NewCall::Handled => return,
                super::dialplan::NewCall::Planned(p) => plan = Some(p),
                super::dialplan::NewCall::NotMine => {}
            }
        }
        if room.is_none()
            && plan.is_none()
            && trunk_plan.is_none()
            && !box_answers
            && !self.extensions.contains_key(&to_ext)
        {
            match self.plan_outbound(now, peer, txn, &req, &from_ext, &to_ext) {
                trunkcalls::Outbound::NotExternal => {}
                trunkcalls::Outbound::Done => return,
                trunkcalls::Outbound::Go(plan) => trunk_plan = Some(plan),
            }
        }
        let direct = trunk_plan.as_ref().and_then(|p| p.direct.clone());
        let mut contacts: Vec<(String, Peer)> = direct.clone().unwrap_or_default();
        if room.is_none() && plan.is_none() && direct.is_none() && !box_answers {
            let Some(callee) = self.extensions.get(&to_ext).cloned() else {
                return self.reply_status(txn, &req, peer, 404, &[], now);
            };
            contacts =
                self.registrar.contacts(&to_ext, now).iter().map(|b| (b.uri.clone(), b.peer)).collect();
            if contacts.is_empty() {
                return self.reply_status(txn, &req, peer, 480, &[], now);
            }
            if !callee.call_waiting && self.active_by_ext.get(&to_ext).copied().unwrap_or(0) > 0 {
                return self.reply_status(txn, &req, peer, 486, &[], now);
            }
        }
        if self.calls.len() >= super::MAX_CALLS {
            return self.reply_status(txn, &req, peer, 503, &[("Retry-After", "5".into())], now);
        }
        // The offer. Without one (late offer, RFC 3261 §13.2.1) the callee makes the offer in its
        // 2xx, we offer the caller in ours, and the caller's answer comes in its ACK.
        // RFC 3261 §21.4.7: a caller that does not accept SDP cannot get our answer (RFC 4475 sdp01).
        let accept = req.common.header_list("Accept");
        let accepts_sdp = accept.is_empty()
            || accept.iter().any(|a| {
                let t = a.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                t == "application/sdp" || t == "application/*" || t == "*/*"
            });
        if !accepts_sdp {
            return self.reply_status(txn, &req, peer, 406, &[("Accept", "application/sdp".into())], now);
        }
        let late_offer = req.common.body.is_empty();
        if late_offer && room.is_some() {
            // The box answers room calls itself and needs the phone's offer to do so.
            let w = [("Warning", "399 hakoden \"conference rooms need an SDP offer\"".to_string())];
            return self.reply_status(txn, &req, peer, 488, &w, now);
        }
        let ctype = req.common.content_type();
        if !late_offer && ctype.as_deref() != Some("application/sdp") {
            return self.reply_status(txn, &req, peer, 415, &[("Accept", "application/sdp".into())], now);
        }
        let offer = if late_offer {
            sdp::Sdp {
                session_addr: None,
                audio: None,
                media_count: 0,
                media_lines: vec![],
                audio_index: None,
            }
        } else {
            match sdp::parse(&req.common.body) {
                Ok(s) => s,
                Err(e) => {
                    let w = [("Warning", format!("399 hakoden \"bad SDP: {e}\""))];
                    return self.reply_status(txn, &req, peer, 400, &w, now);
                }
            }
        };
        let a_offer_shape = sdp::Sdp { audio: None, ..offer.clone() };
        let (offered, a_remote, ptime) = if late_offer {
            (Vec::new(), None, None)
        } else {
            let Some(audio) = offer.audio.filter(|a| a.port != 0) else {
                return self.reply_status(txn, &req, peer, 488, &[], now);
            };
            let offered = sdp::supported_formats(&audio.formats);
            if !sdp::has_voice_codec(&offered) {
                let w = [("Warning", "305 hakoden \"only PCMU and PCMA are supported\"".to_string())];
                return self.reply_status(txn, &req, peer, 488, &w, now);
            }
            (offered, audio.rtp_addr(), audio.ptime_ms)
        };
        let (a_port, b_port) = match (self.pool.allocate(), self.pool.allocate()) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                for p in [a, b].into_iter().flatten() {
                    self.pool.release(p);
                }
                log::warn!("ALARM: RTP port pool exhausted");
                return self.reply_status(txn, &req, peer, 503, &[("Retry-After", "5".into())], now);
            }
        };
        let id = self.next_call_id;
        self.next_call_id += 1;
        self.counters.calls_started += 1;
        let a_tag = self.token();
        let caller_target = req
            .contacts()
            .ok()
            .and_then(|c| match c {
                crate::sip::message::Contacts::List(l) => l.into_iter().next(),
                crate::sip::message::Contacts::Star => None,
            })
            .map(|c| c.uri.raw)
            .unwrap_or_else(|| req.common.from.uri.raw.clone());
        let a = Dialog {
            peer,
            call_id: req.common.call_id.clone(),
            local_party: format!("{};tag={a_tag}", req.common.header("To").unwrap_or_default()),
            remote_party: req.common.header("From").unwrap_or_default().to_string(),
            remote_target: caller_target,
            local_cseq: 0,
            sdp_version: 1,
            pending_ok: None,
        };
        // 100 Trying at once so the phone stops retransmitting (§8.2.6.1).
        let trying = response_to(&req.common, peer.addr, 100, None).finish();
        self.reply(txn, 100, trying, now);
        let caller_tag = req.common.from.tag().unwrap_or_default().to_string();
        self.a_index.insert((req.common.call_id.clone(), caller_tag), id);
        self.invite_index.insert(txn, id);
        if room.is_none() {
            self.out.push_back(super::Output::Media(MediaCommand::Open {
                relay: RelayId(id),
                a_port,
                b_port,
                a_remote,
                b_remote: None,
            }));
        }
        let display = req.common.from.display.clone();
        let call = Call {
            id,
            from_ext: from_ext.clone(),
            to_ext: to_ext.clone(),
            state: CallState::Proceeding,
            invite: Box::new(req),
            invite_txn: txn,
            a,
            a_tag,
            a_ok_sent: false,
            forks: Vec::new(),
            winner: None,
            a_port,
            b_port,
            offered,
            answered: Vec::new(),
            ptime,
            late_offer,
            a_offer_shape,
            start: now,
            ring: None,
            answer: None,
            ring_deadline: Some(now + self.cfg.ring_timeout),
            reinvite_pending: false,
            route: CallRoute::Extension,
            recording_active: false,
            recordings: 0,
            recording_paths: Vec::new(),
            held_by: None,
            sdp_held: [false; 2],
            digit_buffers: Default::default(),
            digits_seen: String::new(),
            last_digit: [None, None],
            three_way: None,
            media_addr: [a_remote, None],
            callee_voice_pt: None,
            trunk: None,
        };
        self.calls.insert(id, call);
        self.active_add(&from_ext, 1);
        self.active_add(&to_ext, 1);
        if let Some(plan) = trunk_plan {
            if self.attach_trunk_leg(now, id, plan) {
                return;
            }
            self.queue_outbound_started(now, id);
        }
        if let Some(room) = room {
            return self.answer_room_call(now, id, room, a_remote);
        }
        if let Some(q) = queue {
            return self.enter_queue(now, id, &q);
        }
        if let Some(menu) = ivr_menu {
            return self.answer_ivr(now, id, &menu);
        }
        if campaign_login {
            return self.answer_campaign_login(now, id, &from_ext);
        }
        if let Some((mode, target)) = supervise {
            return self.answer_supervision(now, id, mode, &target);
        }
        self.arm(now + self.cfg.ring_timeout, TimerKey::Call(id));
        if let Some(p) = plan {
            log::info!(
                "call {id}: {from_ext} -> {} (dial plan, {} contact(s))",
                p.shown(&to_ext),
                p.contact_count()
            );
            return self.dialplan_attach(now, id, *p, display.as_deref());
        }
        log::info!("call {id}: {from_ext} -> {to_ext} ({} contact(s))", contacts.len());
        for (uri, contact_peer) in contacts {
            self.start_fork(now, id, &uri, contact_peer, display.as_deref());
        }
    }

    /// The box itself answers the caller: 200 with SDP for the call's `answered` formats, kept
    /// for retransmission until the ACK. Rooms, feature-code prompts and announcements use it.
    pub(super) fn send_box_answer(&mut self, now: Instant, id: u64, direction: Direction) {
        let Some(call) = self.calls.get(&id) else { return };
        let body = self.sdp_for(call, Side::A, &call.answered, direction);
        let ok = response_to(&call.invite.common, call.a.peer.addr, 200, Some(&call.a_tag))
            .header("Contact", self.contact_for(&call.to_ext, &call.a.peer))
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", &body);
        let (txn, cseq, a_peer) = (call.invite_txn, call.invite.common.cseq.seq, call.a.peer);
        self.reply(txn, 200, ok.clone(), now);
        self.set_pending_ok(now, id, Side::A, cseq, ok, a_peer);
    }

    /// The box answers a call to one of its conference rooms: one voice codec (and
    /// telephone-event) from the offer, then the room.
    fn answer_room_call(&mut self, now: Instant, id: u64, room: u32, remote: Option<std::net::SocketAddr>) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let voice =
            call.offered.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)).cloned();
        let te = call.offered.iter().find(|f| f.encoding == Encoding::TelephoneEvent).cloned();
        call.answered = voice.into_iter().chain(te).collect();
        call.state = CallState::Answered;
        call.answer = Some(now);
        call.ring_deadline = None;
        call.a_ok_sent = true;
        // The B port is not used: the room mixes on the A port.
        self.pool.release(call.b_port);
        call.b_port = 0;
        let a_port = call.a_port;
        self.send_box_answer(now, id, Direction::SendRecv);
        log::info!("call {id}: answered into conference room {room}");
        self.join_room(id, room, a_port, remote);
    }

    fn start_fork(&mut self, now: Instant, id: u64, uri: &str, peer: Peer, display: Option<&str>) {
        self.start_fork_to(now, id, uri, peer, display, None);
    }

    /// Sends one fork's INVITE. `third` = (from extension, to extension, room port) invites a
    /// third party into a three-way room instead of ringing the callee.
    pub(super) fn start_fork_to(
        &mut self,
        now: Instant,
        id: u64,
        uri: &str,
        peer: Peer,
        display: Option<&str>,
        third: Option<(String, String, u16)>,
    ) {
        let tag = self.token();
        let call_id = format!("{}@hakoden", self.token());
        let branch = self.branch();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (from_ext, to_ext) = match &third {
            Some((from, to, _)) => (from.clone(), to.clone()),
            None => (call.from_ext.clone(), call.to_ext.clone()),
        };
        let port = third.as_ref().map_or(call.b_port, |t| t.2);
        let host = self.host_for(&peer);
        // A phone shows the phonebook's name for the caller when there is one (issue 7); a
        // trunk leg keeps what the caller sent.
        let phonebook_name = if third.is_none() {
            self.caller_names.name(&from_ext, &to_ext).map(str::to_string)
        } else {
            None
        };
        let display = phonebook_name.as_deref().or(display);
        let display = display.map(|d| format!("\"{}\" ", d.replace(['"', '\\'], ""))).unwrap_or_default();
        let mut local_party = format!("{display}<sip:{from_ext}@{host}>;tag={tag}");
        let mut remote_party = format!("<sip:{to_ext}@{host}>");
        let mut contact_user = from_ext.clone();
        let trunk_identity = if third.is_none() { self.trunk_fork_identity(id) } else { None };
        // A phone of ours rings: the agent's screen pop (issue 9), noted once the fork is kept.
        let ringing_ext = (third.is_none() && trunk_identity.is_none())
            .then(|| self.registrar.owner_of(uri).unwrap_or(&to_ext).to_string());
        let mut trunk_headers = Vec::new();
        if let Some((from, to, headers, user)) = trunk_identity {
            (local_party, remote_party, trunk_headers, contact_user) =
                (format!("{from};tag={tag}"), to, headers, user);
        }
        let fork_index = call.forks.len();
        let mut dialog = Dialog {
            peer,
            call_id: call_id.clone(),
            local_party,
            remote_party,
            remote_target: uri.to_string(),
            local_cseq: 1,
            sdp_version: 1,
            pending_ok: None,
        };
        let origin = Origin { session_id: id * 2 + 1, version: 1, addr: self.local_ip_for(&peer) };
        let body = if call.late_offer && third.is_none() {
            String::new()
        } else {
            sdp::render(&origin, port, call.negotiated(), Direction::SendRecv, call.ptime)
        };
        let invite = Writer::request("INVITE", uri)
            .header("Via", self.via_for(&peer, &branch))
            .header("Max-Forwards", 70)
            .header("From", &dialog.local_party)
            .header("To", &dialog.remote_party)
            .header("Call-ID", &call_id)
            .header("CSeq", "1 INVITE")
            .header("Contact", self.contact_for(&contact_user, &peer))
            .header("Allow", writer::ALLOW)
            .header("User-Agent", writer::SERVER);
        let invite = trunk_headers.iter().fold(invite, |w, (n, v)| w.header(n, v));
        let invite = if body.is_empty() {
            invite.finish()
        } else {
            invite.finish_with_body("application/sdp", body.as_bytes())
        };
        dialog.local_cseq = 1;
        let txn = self.client.start(&branch, true, invite.clone(), peer, id, now);
        self.purposes.insert(txn, Purpose::Fork { call: id, fork: fork_index });
        self.b_index.insert(call_id, (id, fork_index));
        if let Some(call) = self.calls.get_mut(&id) {
            call.forks.push(Fork {
                dialog,
                txn,
                invite_cseq: 1,
                request_uri: uri.to_string(),
                state: ForkState::Trying,
                cancel_pending: false,
                ack: None,
                remote_tag: None,
                start: now,
                ring: None,
                answer: None,
                end: None,
                final_status: 0,
                third_party: third.map(|t| t.2),
            });
        }
        if let Some(ext) = ringing_ext {
            self.note_ringing(id, &ext, &from_ext);
        }
        self.transmit(peer, invite);
    }

    // ---- answers from the callee's phones -------------------------------------------------

    pub(super) fn on_client_response(
        &mut self,
        purpose: Purpose,
        txn: ClientTxnId,
        _owner: u64,
        peer: Peer,
        resp: &Response,
        now: Instant,
    ) {
        match purpose {
            Purpose::Fork { call, fork } => self.on_fork_response(now, call, fork, txn, peer, resp),
            Purpose::Leg { leg, .. } => self.on_leg_response(now, leg, peer, resp),
            Purpose::Supervise { session } => self.on_supervision_response(now, session, peer, resp),
            Purpose::Fire { .. } => {}
            Purpose::ReInvite { call, from, txn: stxn, req, peer: from_peer } => {
                self.on_reinvite_response(now, call, from, stxn, &req, from_peer, resp)
            }
            Purpose::Relay { txn: stxn, req, peer: from_peer, .. } => {
                if resp.code >= 200 {
                    let w = writer::response_with_reason(
                        &req.common,
                        from_peer.addr,
                        resp.code,
                        &resp.reason,
                        None,
                    );
                    self.reply(stxn, resp.code, w.finish(), now);
                }
            }
        }
    }

    fn on_fork_response(
        &mut self,
        now: Instant,
        id: u64,
        fork_ix: usize,
        _txn: ClientTxnId,
        peer: Peer,
        resp: &Response,
    ) {
        if matches!(resp.code, 401 | 407) && self.retry_fork_with_credentials(now, id, fork_ix, resp) {
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(fork) = call.forks.get_mut(fork_ix) else {
            return;
        };
        if let Some(tag) = resp.common.to.tag() {
            if fork.remote_tag.is_none() {
                fork.remote_tag = Some(tag.to_string());
                fork.dialog.remote_party = resp.common.header("To").unwrap_or_default().to_string();
            }
        }
        if let Some(c) = resp.common.header("Contact").and_then(NameAddr::parse) {
            fork.dialog.remote_target = c.uri.raw;
        }
        match resp.code {
            100 => {}
            101..=199 => {
                if fork.state == ForkState::Trying {
                    fork.state = ForkState::Early;
                }
                fork.ring.get_or_insert(now);
                if fork.cancel_pending {
                    fork.cancel_pending = false;
                    self.send_cancel(now, id, fork_ix);
                    return;
                }
                if call.state != CallState::Proceeding || !self.server.is_proceeding(call.invite_txn) {
                    return;
                }
                call.ring.get_or_insert(now);
                let early_sdp =
                    (!resp.common.body.is_empty()).then(|| sdp::parse(&resp.common.body).ok()).flatten();
                let code = if early_sdp.is_some() { 183 } else { 180 };
                let mut body = None;
                if let Some(audio) = early_sdp.and_then(|s| s.audio) {
                    self.set_remote(id, Side::B, audio.rtp_addr());
                    let formats = self.answer_formats(id, &audio.formats);
                    if let Some(call) = self.calls.get(&id) {
                        body = Some(self.sdp_for(call, Side::A, &formats, audio.direction));
                    }
                }
                self.send_a_provisional(now, id, code, body);
            }
            200..=299 => self.on_fork_answered(now, id, fork_ix, peer, resp),
            _ => {
                fork.state = ForkState::Failed;
                fork.final_status = resp.code;
                fork.end = Some(now);
                self.check_all_forks_failed(now, id);
            }
        }
    }

    /// The callee's chosen formats mapped onto the caller's offer (same PT numbers).
    fn answer_formats(&self, id: u64, answer: &[PayloadFormat]) -> Vec<PayloadFormat> {
        let Some(call) = self.calls.get(&id) else {
            return Vec::new();
        };
        let chosen: Vec<PayloadFormat> = call
            .offered
            .iter()
            .filter(|o| answer.iter().any(|a| a.pt == o.pt || a.encoding == o.encoding))
            .cloned()
            .collect();
        if chosen.is_empty() {
            call.offered.clone()
        } else {
            chosen
        }
    }

    fn send_a_provisional(&mut self, now: Instant, id: u64, code: u16, body: Option<Vec<u8>>) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let contact = self.contact_for(&call.to_ext, &call.a.peer);
        let w = response_to(&call.invite.common, call.a.peer.addr, code, Some(&call.a_tag))
            .header("Contact", contact);
        let bytes = match body {
            Some(b) => w.finish_with_body("application/sdp", &b),
            None => w.finish(),
        };
        let txn = call.invite_txn;
        self.reply(txn, code, bytes, now);
    }

    fn on_fork_answered(&mut self, now: Instant, id: u64, fork_ix: usize, peer: Peer, resp: &Response) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let winner = call.winner;
        let Some(fork) = call.forks.get_mut(fork_ix) else {
            return;
        };
        // A retransmitted 2xx: our ACK was lost.
        if fork.state == ForkState::Answered {
            if let Some(ack) = fork.ack.clone() {
                self.transmit(peer, ack);
            }
            return;
        }
        if let Some(port) = fork.third_party {
            return self.on_third_party_answered(now, id, fork_ix, port, peer, resp);
        }
        fork.state = ForkState::Answered;
        fork.answer = Some(now);
        fork.final_status = resp.code;
        fork.invite_cseq = resp.common.cseq.seq;
        let late_offer = call.late_offer;
        let wins = winner.is_none() && self.server.is_proceeding(call.invite_txn);
        // With a late offer the winner's ACK carries the caller's answer: it waits for the
        // caller's ACK (see `handle_ack`); the callee retransmits its 2xx meanwhile.
        if !(late_offer && wins) {
            let ack = self.build_in_dialog("ACK", id, Some(fork_ix), Some(resp.common.cseq.seq), None);
            if let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(fork_ix)) {
                f.ack = ack.clone();
            }
            if let Some(ack) = ack {
                self.transmit(peer, ack);
            }
        }
        if !wins {
            // Another phone answered first (or the caller gave up): hang this one up.
            self.send_bye(now, id, Some(fork_ix));
            if let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(fork_ix)) {
                f.state = ForkState::Failed;
                f.end = Some(now);
            }
            return;
        }
        let answer = sdp::parse(&resp.common.body).ok().and_then(|s| s.audio);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.winner = Some(fork_ix);
        call.answer = Some(now);
        call.ring_deadline = None;
        self.dialplan_answered(id, fork_ix);
        self.queue_personal_call(now, id, true);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // Cancel the other phones (§16.7 step 10 behaviour for a forking element).
        let others: Vec<usize> = (0..call.forks.len()).filter(|i| *i != fork_ix).collect();
        for i in others {
            self.cancel_fork(now, id, i);
        }
        let Some(audio) = answer.filter(|a| sdp::has_voice_codec(&sdp::supported_formats(&a.formats))) else {
            // The callee answered without a usable codec: no media possible.
            log::info!("call {id}: callee answered without a common codec");
            if late_offer {
                self.ack_late_offer_winner(id, None);
            }
            self.send_bye(now, id, Some(fork_ix));
            return self.finish_call(now, id, HangupSide::Callee, "no common codec", 488);
        };
        if late_offer {
            // The callee's SDP is the offer: its G.711 formats (and PT numbers) are what the caller
            // is offered.
            if let Some(call) = self.calls.get_mut(&id) {
                call.offered = sdp::supported_formats(&audio.formats);
                call.ptime = audio.ptime_ms;
            }
        }
        self.set_remote(id, Side::B, audio.rtp_addr());
        let formats = self.answer_formats(id, &audio.formats);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.media_addr[1] = audio.rtp_addr();
        call.callee_voice_pt = audio
            .formats
            .iter()
            .find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma))
            .map(|f| f.pt);
        call.answered = formats.clone();
        call.state = CallState::Answered;
        call.a.sdp_version += 1;
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let body = self.sdp_for(call, Side::A, &formats, audio.direction);
        let contact = self.contact_for(&call.to_ext, &call.a.peer);
        let ok = response_to(&call.invite.common, call.a.peer.addr, 200, Some(&call.a_tag))
            .header("Contact", contact)
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", &body);
        let (txn, cseq, a_peer) = (call.invite_txn, call.invite.common.cseq.seq, call.a.peer);
        self.reply(txn, 200, ok.clone(), now);
        self.set_pending_ok(now, id, Side::A, cseq, ok, a_peer);
        if let Some(call) = self.calls.get_mut(&id) {
            call.a_ok_sent = true;
        }
        log::info!("call {id}: answered");
        self.start_media(id, now);
    }

    /// The third party of a three-way call answered: ACK it and put it in the room.
    fn on_third_party_answered(
        &mut self,
        now: Instant,
        id: u64,
        fork_ix: usize,
        port: u16,
        peer: Peer,
        resp: &Response,
    ) {
        let Some(fork) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(fork_ix)) else { return };
        fork.state = ForkState::Answered;
        fork.answer = Some(now);
        fork.final_status = resp.code;
        fork.invite_cseq = resp.common.cseq.seq;
        let ack = self.build_in_dialog("ACK", id, Some(fork_ix), Some(resp.common.cseq.seq), None);
        if let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(fork_ix)) {
            f.ack = ack.clone();
        }
        if let Some(ack) = ack {
            self.transmit(peer, ack);
        }
        let remote = sdp::parse(&resp.common.body).ok().and_then(|s| s.audio).and_then(|a| a.rtp_addr());
        let Some(call) = self.calls.get(&id) else { return };
        let (Some((room, _)), Some((audio_pt, te))) =
            (call.three_way, super::features::codec_of(call.negotiated()))
        else {
            return;
        };
        log::info!("call {id}: the third party answered; three-way call in room {room}");
        self.out.push_back(super::Output::Media(MediaCommand::JoinRoom {
            relay: RelayId(id | PARTICIPANT_C),
            room,
            port,
            remote,
            audio_pt,
            telephone_event_pt: te,
        }));
    }

    /// `*3 <extension> #` during a call: both parties move into a private room (on the ports
    /// their phones already use), and the extension is called into it.
    pub(super) fn start_three_way(&mut self, id: u64, initiator: Side, target: &str, now: Instant) {
        let Some(call) = self.calls.get(&id) else { return };
        if call.state != CallState::Confirmed || call.route != CallRoute::Extension || call.winner.is_none() {
            log::info!("call {id}: three-way refused: the call is not a plain answered call");
            return;
        }
        let initiator_ext = if initiator == Side::A { call.from_ext.clone() } else { call.to_ext.clone() };
        let contacts: Vec<(String, Peer)> =
            self.registrar.contacts(target, now).iter().map(|b| (b.uri.clone(), b.peer)).collect();
        if !self.extensions.contains_key(target) || contacts.is_empty() {
            log::info!("call {id}: three-way to {target} refused: no such extension registered");
            return;
        }
        let Some((audio_pt, te)) = super::features::codec_of(call.negotiated()) else { return };
        let (a_port, b_port, addrs) = (call.a_port, call.b_port, call.media_addr);
        let Some(c_port) = self.pool.allocate() else {
            log::warn!("ALARM: RTP port pool exhausted (three-way call {id})");
            return;
        };
        let room = 1_000_000 + (id % 1_000_000) as u32;
        // The bridge closes; the same ports reopen as room participants, so neither phone
        // notices anything but the third voice.
        self.out.push_back(super::Output::Media(MediaCommand::Close { relay: RelayId(id) }));
        for (pid, port, remote) in [(id, a_port, addrs[0]), (id | PARTICIPANT_B, b_port, addrs[1])] {
            self.out.push_back(super::Output::Media(MediaCommand::JoinRoom {
                relay: RelayId(pid),
                room,
                port,
                remote,
                audio_pt,
                telephone_event_pt: te,
            }));
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.three_way = Some((room, c_port));
            c.route = CallRoute::Room(room);
            c.recording_active = false;
        }
        log::info!("call {id}: {initiator_ext} starts a three-way call with {target} (room {room})");
        for (uri, peer) in contacts {
            self.start_fork_to(
                now,
                id,
                &uri,
                peer,
                None,
                Some((initiator_ext.clone(), target.to_string(), c_port)),
            );
        }
    }

    /// Arms 2xx retransmission on a leg (UDP only; §13.3.1.4).
    fn set_pending_ok(&mut self, now: Instant, id: u64, side: Side, cseq: u32, bytes: Vec<u8>, peer: Peer) {
        if peer.transport.is_reliable() {
            // Still give up if no ACK ever comes (§13.3.1.4: 64·T1).
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.dialog_mut(side).pending_ok =
            Some(PendingOk { cseq, bytes, interval: T1, next_at: now + T1, give_up_at: now + TIMEOUT_64T1 });
        self.arm(now + T1, TimerKey::Call(id));
    }

    fn check_all_forks_failed(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.winner.is_some() || call.forks.iter().any(|f| f.state != ForkState::Failed) {
            return;
        }
        let code = best_failure(call.forks.iter().map(|f| f.final_status));
        if self.dialplan_forks_failed(now, id, code) {
            return;
        }
        self.finish_call(
            now,
            id,
            HangupSide::Callee,
            &format!("{code} {}", writer::reason_phrase(code)),
            code,
        );
    }

    fn cancel_fork(&mut self, now: Instant, id: u64, fork_ix: usize) {
        let Some(fork) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(fork_ix)) else {
            return;
        };
        match fork.state {
            ForkState::Early => self.send_cancel(now, id, fork_ix),
            // §9.1: no CANCEL before a provisional; send it when one arrives.
            ForkState::Trying => fork.cancel_pending = true,
            ForkState::Answered | ForkState::Failed => {}
        }
    }

    fn send_cancel(&mut self, now: Instant, id: u64, fork_ix: usize) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(fork) = call.forks.get(fork_ix) else {
            return;
        };
        if !self.client.is_pending(fork.txn) {
            return;
        }
        // §9.1: CANCEL copies the INVITE's Request-URI, Call-ID, To, CSeq number and top Via.
        let peer = fork.dialog.peer;
        let Some(invite_via) = self.fork_invite_via(fork) else {
            return;
        };
        let cancel = Writer::request("CANCEL", &fork.request_uri)
            .header("Via", &invite_via)
            .header("Max-Forwards", 70)
            .header("From", &fork.dialog.local_party)
            .header(
                "To",
                format_args!("{}", fork.dialog.remote_party.split(";tag=").next().unwrap_or_default()),
            )
            .header("Call-ID", &fork.dialog.call_id)
            .header("CSeq", format_args!("{} CANCEL", fork.invite_cseq))
            .header("User-Agent", writer::SERVER)
            .finish();
        let branch = invite_via
            .split("branch=")
            .nth(1)
            .and_then(|b| b.split(';').next())
            .unwrap_or_default()
            .to_string();
        // The CANCEL has the INVITE's branch; its own transaction is keyed by branch+method.
        let cancel_key = format!("{branch}|CANCEL");
        let txn = self.client.start(&cancel_key, false, cancel.clone(), peer, id, now);
        self.purposes.insert(txn, Purpose::Fire { call: id });
        self.transmit(peer, cancel);
    }

    fn fork_invite_via(&self, fork: &Fork) -> Option<String> {
        // The INVITE's top Via is rebuilt from the same branch the transaction was started with.
        self.client_branch(fork.txn).map(|b| self.via_for(&fork.dialog.peer, &b))
    }

    fn client_branch(&self, txn: ClientTxnId) -> Option<String> {
        self.client.branch_of(txn)
    }

    /// Builds an in-dialog request on a leg (`fork` = None: the A leg). ACK reuses `cseq`.
    fn build_in_dialog(
        &mut self,
        method: &str,
        id: u64,
        fork: Option<usize>,
        cseq: Option<u32>,
        body: Option<(&str, &[u8])>,
    ) -> Option<Vec<u8>> {
        let branch = self.branch();
        let call = self.calls.get_mut(&id)?;
        let dialog = match fork {
            Some(i) => &mut call.forks.get_mut(i)?.dialog,
            None => &mut call.a,
        };
        let seq = match cseq {
            Some(s) => s,
            None => {
                dialog.local_cseq += 1;
                dialog.local_cseq
            }
        };
        let d = dialog.clone();
        let contact_user = match fork {
            Some(_) => call.from_ext.clone(),
            None => call.to_ext.clone(),
        };
        let w = self.dialog_request(&d, method, seq, &branch);
        let w = if method == "INVITE" {
            w.header("Contact", self.contact_for(&contact_user, &d.peer))
        } else {
            w
        };
        let w = w.header("User-Agent", writer::SERVER);
        Some(match body {
            Some((ct, b)) => w.finish_with_body(ct, b),
            None => w.finish(),
        })
    }

    /// The start of a request inside dialog `d`: Request-URI = its remote target, then Via,
    /// Max-Forwards, From, To, Call-ID and CSeq `seq method`. Callers add Contact, User-Agent and
    /// the body.
    fn dialog_request(&self, d: &Dialog, method: &str, seq: u32, branch: &str) -> Writer {
        Writer::request(method, &d.remote_target)
            .header("Via", self.via_for(&d.peer, branch))
            .header("Max-Forwards", 70)
            .header("From", &d.local_party)
            .header("To", &d.remote_party)
            .header("Call-ID", &d.call_id)
            .header("CSeq", format_args!("{seq} {method}"))
    }

    /// Sends an in-dialog request with a client transaction.
    fn send_in_dialog(
        &mut self,
        now: Instant,
        id: u64,
        fork: Option<usize>,
        method: &str,
        body: Option<(&str, &[u8])>,
        purpose: Purpose,
    ) -> bool {
        let Some(bytes) = self.build_in_dialog(method, id, fork, None, body) else {
            return false;
        };
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let peer = match fork {
            Some(i) => match call.forks.get(i) {
                Some(f) => f.dialog.peer,
                None => return false,
            },
            None => call.a.peer,
        };
        let branch = match crate::sip::message::frame(&bytes).ok().and_then(|f| {
            f.first("Via")
                .and_then(|v| v.split("branch=").nth(1))
                .map(|b| b.split(';').next().unwrap_or("").to_string())
        }) {
            Some(b) => b,
            None => return false,
        };
        let txn = self.client.start(&branch, method == "INVITE", bytes.clone(), peer, id, now);
        self.purposes.insert(txn, purpose);
        self.transmit(peer, bytes);
        true
    }

    fn send_bye(&mut self, now: Instant, id: u64, fork: Option<usize>) {
        self.send_in_dialog(now, id, fork, "BYE", None, Purpose::Fire { call: id });
    }

    // ---- requests from the caller or a callee ---------------------------------------------

    /// Finds the call and side of an in-dialog request.
    fn locate(&self, req: &Request) -> Option<(u64, Side, Option<usize>)> {
        let from_tag = req.common.from.tag().unwrap_or_default().to_string();
        if let Some(id) = self.a_index.get(&(req.common.call_id.clone(), from_tag)) {
            return Some((*id, Side::A, None));
        }
        let (id, fork) = self.b_index.get(&req.common.call_id).copied()?;
        Some((id, Side::B, Some(fork)))
    }

    /// Sends the late-offer winner its ACK, with the caller's answer when there is one.
    fn ack_late_offer_winner(&mut self, id: u64, answer: Option<(Vec<PayloadFormat>, Direction)>) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some(w) = call.winner.or_else(|| call.forks.iter().position(|f| f.state == ForkState::Answered))
        else {
            return;
        };
        let Some(fork) = call.forks.get(w) else { return };
        if fork.ack.is_some() {
            return;
        }
        let (cseq, peer) = (fork.invite_cseq, fork.dialog.peer);
        let body = answer.map(|(formats, direction)| self.sdp_for(call, Side::B, &formats, direction));
        let ack = self.build_in_dialog(
            "ACK",
            id,
            Some(w),
            Some(cseq),
            body.as_deref().map(|b| ("application/sdp", b)),
        );
        if let Some(f) = self.calls.get_mut(&id).and_then(|c| c.forks.get_mut(w)) {
            f.ack = ack.clone();
        }
        if let Some(ack) = ack {
            self.transmit(peer, ack);
        }
    }

    pub(super) fn handle_ack(&mut self, now: Instant, _peer: Peer, req: &Request) {
        let Some((id, side, fork)) = self.locate(req) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if side == Side::B && fork != call.winner {
            return;
        }
        if side == Side::A && call.late_offer && call.state == CallState::Answered {
            // The caller's answer to our offer: relay it to the callee in the held-back ACK.
            let answer = sdp::parse(&req.common.body).ok().and_then(|s| s.audio);
            match answer.filter(|a| sdp::has_voice_codec(&sdp::supported_formats(&a.formats))) {
                Some(a) => {
                    self.set_remote(id, Side::A, a.rtp_addr());
                    let formats = self.answer_formats(id, &a.formats);
                    if let Some(call) = self.calls.get_mut(&id) {
                        call.answered = formats.clone();
                    }
                    self.ack_late_offer_winner(id, Some((formats, a.direction)));
                }
                None => {
                    log::info!("call {id}: the caller's ACK has no usable answer");
                    self.ack_late_offer_winner(id, None);
                    return self.end_call(id, HangupSide::Caller, "no common codec", 488, now);
                }
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let dialog = call.dialog_mut(side);
        if dialog.pending_ok.as_ref().is_some_and(|p| p.cseq == req.common.cseq.seq) {
            dialog.pending_ok = None;
        }
        if side == Side::A && call.state == CallState::Answered {
            call.state = CallState::Confirmed;
        }
    }

    pub(super) fn handle_cancel(&mut self, now: Instant, peer: Peer, txn: ServerTxnId, req: &Request) {
        let invite = self.server.find_invite(req);
        let call = invite.and_then(|t| self.invite_index.get(&t).copied());
        match (invite, call) {
            (Some(inv), Some(id)) => {
                self.reply_status(txn, req, peer, 200, &[], now);
                if self.server.is_proceeding(inv) {
                    log::info!("call {id}: cancelled by the caller");
                    self.end_call(id, HangupSide::Caller, "CANCEL", 487, now);
                }
            }
            // The INVITE got its final answer already: the CANCEL has no effect (§9.2).
            (Some(_), None) => self.reply_status(txn, req, peer, 200, &[], now),
            (None, _) => self.reply_status(txn, req, peer, 481, &[], now),
        }
    }

    pub(super) fn handle_in_dialog(&mut self, now: Instant, peer: Peer, txn: ServerTxnId, req: Request) {
        if self.consult_request(now, peer, txn, &req) || self.supervision_request(now, peer, txn, &req) {
            return;
        }
        let Some((id, side, fork)) = self.locate(&req) else {
            return self.reply_status(txn, &req, peer, 481, &[], now);
        };
        let Some(call) = self.calls.get(&id) else {
            return self.reply_status(txn, &req, peer, 481, &[], now);
        };
        let is_winner = side == Side::A || fork == call.winner;
        match req.method {
            crate::sip::message::Method::Bye => {
                self.reply_status(txn, &req, peer, 200, &[], now);
                if is_winner && self.absorb_bye(now, id, side) {
                    return;
                }
                if is_winner {
                    let hangup = if side == Side::A { HangupSide::Caller } else { HangupSide::Callee };
                    log::info!(
                        "call {id}: BYE from the {}",
                        if side == Side::A { "caller" } else { "callee" }
                    );
                    self.end_call(id, hangup, "BYE", 200, now);
                } else if let Some(f) = fork.and_then(|i| self.calls.get_mut(&id)?.forks.get_mut(i)) {
                    f.state = ForkState::Failed;
                    f.end = Some(now);
                    if f.third_party.is_some() {
                        log::info!("call {id}: the third party hung up");
                        self.out.push_back(super::Output::Media(MediaCommand::Close {
                            relay: RelayId(id | PARTICIPANT_C),
                        }));
                    }
                }
            }
            crate::sip::message::Method::Invite => {
                self.handle_reinvite(now, peer, txn, req, id, side, is_winner)
            }
            _ => {
                // SIP INFO DTMF (RFC 6086 with application/dtmf-relay or application/dtmf) is
                // reported like the other sources; the INFO itself is still relayed.
                if req.method == crate::sip::message::Method::Info && is_winner {
                    let ct = req.common.header("Content-Type").unwrap_or("").to_string();
                    if let Ok(event) = crate::media::dtmf::parse_info(&ct, &req.common.body) {
                        self.on_digit(id, side, event, now);
                    }
                }
                let Some(call) = self.calls.get(&id) else {
                    return self.reply_status(txn, &req, peer, 481, &[], now);
                };
                if call.route != CallRoute::Extension && is_winner {
                    // Nobody to relay to: the box is the other end.
                    return self.reply_status(txn, &req, peer, 200, &[], now);
                }
                // INFO / UPDATE: relay to the other side once the call is up.
                if !is_winner || call.winner.is_none() {
                    return self.reply_status(txn, &req, peer, 481, &[], now);
                }
                if req.method == crate::sip::message::Method::Update && !req.common.body.is_empty() {
                    // Mid-call offer by UPDATE would need its own offer/answer relay.
                    return self.reply_status(txn, &req, peer, 488, &[], now);
                }
                let target_fork = if side == Side::A { call.winner } else { None };
                let ctype = req.common.header("Content-Type").map(str::to_string);
                let body = req.common.body.clone();
                let method = req.method.as_str().to_string();
                let purpose = Purpose::Relay { call: id, txn, req: Box::new(req.clone()), peer };
                let b = ctype.as_deref().map(|ct| (ct, body.as_slice()));
                if !self.send_in_dialog(now, id, target_fork, &method, b, purpose) {
                    self.reply_status(txn, &req, peer, 481, &[], now);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_reinvite(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: Request,
        id: u64,
        side: Side,
        is_winner: bool,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !is_winner || call.state == CallState::Proceeding {
            return self.reply_status(txn, &req, peer, 481, &[], now);
        }
        if call.reinvite_pending {
            // §14.1: a re-INVITE while one is pending is answered 491.
            return self.reply_status(txn, &req, peer, 491, &[], now);
        }
        // Track the remote CSeq-independent part only; a session refresh without SDP is answered
        // with our current SDP, without bothering the other phone.
        let formats = if call.answered.is_empty() { call.offered.clone() } else { call.answered.clone() };
        if req.common.body.is_empty() {
            let body = self.sdp_for(call, side, &formats, Direction::SendRecv);
            return self.answer_reinvite(now, id, side, txn, &req, peer, &body);
        }
        let offer = match sdp::parse(&req.common.body).ok().and_then(|s| s.audio) {
            Some(a) => a,
            None => return self.reply_status(txn, &req, peer, 488, &[], now),
        };
        if !sdp::has_voice_codec(&sdp::supported_formats(&offer.formats)) {
            return self.reply_status(txn, &req, peer, 488, &[], now);
        }
        // Answered by the box itself: room calls, and hold/resume when music on hold is on (the
        // held phone keeps sending to the relay; the other phone hears music, not silence).
        let holding = matches!(offer.direction, Direction::SendOnly | Direction::Inactive)
            || offer.rtp_addr().is_none();
        let is_room = call.route != CallRoute::Extension;
        let resuming = !holding && call.held_by == Some(side);
        self.set_remote(id, side, offer.rtp_addr());
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.sdp_held[usize::from(side == Side::B)] = holding;
        if let Some(addr) = offer.rtp_addr() {
            // Where this phone receives now: a later move into or out of a room sends there.
            call.media_addr[usize::from(side == Side::B)] = Some(addr);
        }
        if is_room || (self.cfg.media.music_on_hold && (holding || resuming)) {
            if !is_room {
                self.hold_or_resume(id, side, holding);
                self.queue_hold(now, id, side, holding);
            }
            let Some(call) = self.calls.get_mut(&id) else { return };
            call.dialog_mut(side).sdp_version += 1;
            let answer_formats: Vec<PayloadFormat> =
                formats.iter().filter(|f| offer.formats.iter().any(|o| o.pt == f.pt)).cloned().collect();
            let answer_formats = if answer_formats.is_empty() { formats.clone() } else { answer_formats };
            let Some(call) = self.calls.get(&id) else { return };
            let body = self.sdp_for(call, side, &answer_formats, offer.direction.reversed());
            return self.answer_reinvite(now, id, side, txn, &req, peer, &body);
        }
        let trying = response_to(&req.common, peer.addr, 100, None).finish();
        self.reply(txn, 100, trying, now);
        let other = side.other();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.reinvite_pending = true;
        call.dialog_mut(other).sdp_version += 1;
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let body = self.sdp_for(call, other, &formats, offer.direction);
        let target_fork = if other == Side::B { call.winner } else { None };
        let purpose = Purpose::ReInvite { call: id, from: side, txn, req: Box::new(req.clone()), peer };
        if !self.send_in_dialog(now, id, target_fork, "INVITE", Some(("application/sdp", &body)), purpose) {
            if let Some(c) = self.calls.get_mut(&id) {
                c.reinvite_pending = false;
            }
            self.reply_status(txn, &req, peer, 500, &[], now);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn answer_reinvite(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        txn: ServerTxnId,
        req: &Request,
        peer: Peer,
        body: &[u8],
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let user = if side == Side::A { call.to_ext.clone() } else { call.from_ext.clone() };
        let ok = response_to(&req.common, peer.addr, 200, None)
            .header("Contact", self.contact_for(&user, &peer))
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", body);
        self.reply(txn, 200, ok.clone(), now);
        self.set_pending_ok(now, id, side, req.common.cseq.seq, ok, peer);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_reinvite_response(
        &mut self,
        now: Instant,
        id: u64,
        from: Side,
        stxn: ServerTxnId,
        req: &Request,
        from_peer: Peer,
        resp: &Response,
    ) {
        if resp.code < 200 {
            return;
        }
        let other = from.other();
        if let Some(call) = self.calls.get_mut(&id) {
            call.reinvite_pending = false;
        }
        if resp.code >= 300 {
            let w = writer::response_with_reason(&req.common, from_peer.addr, resp.code, &resp.reason, None);
            return self.reply(stxn, resp.code, w.finish(), now);
        }
        // ACK the other side's 2xx (CSeq of the re-INVITE).
        let fork = if other == Side::B { self.calls.get(&id).and_then(|c| c.winner) } else { None };
        if let Some(ack) = self.build_in_dialog("ACK", id, fork, Some(resp.common.cseq.seq), None) {
            if let Some(peer) = self.calls.get(&id).map(|c| c.dialog(other).peer) {
                self.transmit(peer, ack);
            }
        }
        let answer = sdp::parse(&resp.common.body).ok().and_then(|s| s.audio);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.dialog_mut(from).sdp_version += 1;
        let (formats, direction) = match &answer {
            Some(a) => {
                self.set_remote(id, other, a.rtp_addr());
                (self.answer_formats(id, &a.formats), a.direction)
            }
            None => (call.answered.clone(), Direction::SendRecv),
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let body = self.sdp_for(call, from, &formats, direction);
        self.answer_reinvite(now, id, from, stxn, req, from_peer, &body);
    }

    // ---- timers -------------------------------------------------------------------------------

    pub(super) fn on_call_timer(&mut self, id: u64, now: Instant) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.ring_deadline.is_some_and(|d| d <= now) {
            call.ring_deadline = None;
            log::info!("call {id}: no answer within the ring timeout");
            return self.end_call(id, HangupSide::System, "ring timeout", 408, now);
        }
        let mut resend = Vec::new();
        let mut give_up = false;
        let mut next = Vec::new();
        let winner = call.winner;
        let mut dialogs: Vec<&mut Dialog> = vec![&mut call.a];
        if let Some(w) = winner {
            if let Some(f) = call.forks.get_mut(w) {
                dialogs.push(&mut f.dialog);
            }
        }
        for d in dialogs {
            let Some(p) = d.pending_ok.as_mut() else {
                continue;
            };
            if p.give_up_at <= now {
                d.pending_ok = None;
                give_up = true;
                continue;
            }
            if p.next_at <= now {
                if !d.peer.transport.is_reliable() {
                    resend.push((d.peer, p.bytes.clone()));
                }
                p.interval = (p.interval * 2).min(T2);
                p.next_at = now + p.interval;
            }
            next.push(p.next_at.min(p.give_up_at));
        }
        for (peer, bytes) in resend {
            self.transmit(peer, bytes);
        }
        for at in next {
            self.arm(at, TimerKey::Call(id));
        }
        if give_up {
            // §13.3.1.4: no ACK for the 2xx within 64·T1: end the session with BYE.
            log::info!("call {id}: no ACK for 2xx; hanging up");
            self.end_call(id, HangupSide::System, "no ACK", 408, now);
        }
    }

    pub(super) fn on_client_timeout(&mut self, purpose: Purpose, now: Instant) {
        match purpose {
            Purpose::Fork { call, fork } => {
                if let Some(f) = self.calls.get_mut(&call).and_then(|c| c.forks.get_mut(fork)) {
                    if matches!(f.state, ForkState::Trying | ForkState::Early) {
                        f.state = ForkState::Failed;
                        f.final_status = 408;
                        f.end = Some(now);
                    }
                }
                self.check_all_forks_failed(now, call);
            }
            Purpose::ReInvite { call, txn, req, peer, .. } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.reinvite_pending = false;
                }
                let w = response_to(&req.common, peer.addr, 408, None);
                self.reply(txn, 408, w.finish(), now);
            }
            Purpose::Relay { txn, req, peer, .. } => {
                let w = response_to(&req.common, peer.addr, 408, None);
                self.reply(txn, 408, w.finish(), now);
            }
            Purpose::Leg { leg, .. } => self.on_leg_timeout(now, leg),
            Purpose::Supervise { session } => self.on_supervision_timeout(now, session),
            Purpose::Fire { .. } => {}
        }
    }

    // ---- ending -------------------------------------------------------------------------------

    /// Ends a call from any state: answers or hangs up every leg that is still up, then
    /// [`Engine::finish_call`].
    pub(super) fn end_call(&mut self, id: u64, side: HangupSide, cause: &str, status: u16, now: Instant) {
        if self.calls.get(&id).is_some_and(|c| c.late_offer) {
            // §13.2.2.4: a 2xx is always ACKed, even when the session is about to end.
            self.ack_late_offer_winner(id, None);
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let winner = call.winner;
        let a_open = self.server.is_proceeding(call.invite_txn);
        let a_answered = call.a_ok_sent;
        let forks = call.forks.len();
        for i in 0..forks {
            let third_up = self
                .calls
                .get(&id)
                .and_then(|c| c.forks.get(i))
                .is_some_and(|f| f.third_party.is_some() && f.state == ForkState::Answered);
            if Some(i) == winner {
                if side != HangupSide::Callee {
                    self.send_bye(now, id, Some(i));
                }
            } else if third_up {
                self.send_bye(now, id, Some(i));
            } else {
                self.cancel_fork(now, id, i);
            }
        }
        if a_answered && side != HangupSide::Caller {
            self.send_bye(now, id, None);
        }
        let _ = a_open;
        self.finish_call(now, id, side, cause, status);
    }

    /// Sends the caller its final answer when it has none, then releases everything and emits the
    /// CDR.
    pub(super) fn finish_call(&mut self, now: Instant, id: u64, side: HangupSide, cause: &str, status: u16) {
        self.originate_call_ending(now, id);
        self.rewire_call_ending(now, id);
        self.voicemail_call_ending(now, id);
        self.ivr_call_ending(id);
        self.supervision_call_ending(now, id);
        self.queue_call_ending(now, id);
        self.queue_personal_call(now, id, false);
        if let Some(call) = self.calls.get(&id) {
            if self.server.is_proceeding(call.invite_txn) && status >= 300 {
                let w = response_to(&call.invite.common, call.a.peer.addr, status, Some(&call.a_tag));
                // 503 is a passing overload (ports, media): tell the phone when to retry (§21.5.4).
                let w = if status == 503 { w.header("Retry-After", 5) } else { w };
                let txn = call.invite_txn;
                self.reply(txn, status, w.finish(), now);
            }
        }
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        self.trunk_call_ended(&call);
        self.out.push_back(super::Output::Media(MediaCommand::Close { relay: RelayId(id) }));
        self.pool.release(call.a_port);
        self.pool.release(call.b_port);
        if let Some((_, c_port)) = call.three_way {
            for p in [PARTICIPANT_B, PARTICIPANT_C] {
                self.out.push_back(super::Output::Media(MediaCommand::Close { relay: RelayId(id | p) }));
            }
            self.pool.release(c_port);
        }
        self.a_index.remove(&(call.a.call_id.clone(), transfer::remote_tag(&call.a)));
        for f in &call.forks {
            self.b_index.remove(&f.dialog.call_id);
        }
        self.invite_index.remove(&call.invite_txn);
        for f in &call.forks {
            // A fork's entry outlives its 2xx (retransmissions re-ACK); the call is gone now.
            self.purposes.remove(&f.txn);
        }
        self.active_add(&call.from_ext, -1);
        self.active_add(&call.to_ext, -1);
        self.dialplan_call_ended(id);
        let answered = call.answer.is_some();
        let final_status = if answered { 200 } else { status };
        let disposition =
            if answered { Disposition::Answered } else { disposition_for(status, call.ring.is_some()) };
        let end_ms = self.wall_ms(now);
        let legs = std::iter::once(LegRecord {
            leg: "a".into(),
            sip_call_id: call.a.call_id.clone(),
            peer: call.a.peer.to_string(),
            start_ms: self.wall_ms(call.start),
            ring_ms: call.ring.map(|t| self.wall_ms(t)),
            answer_ms: call.answer.map(|t| self.wall_ms(t)),
            end_ms,
            final_status,
            disposition,
        })
        .chain(call.forks.iter().enumerate().map(|(i, f)| LegRecord {
            leg: format!("b{}", i + 1),
            sip_call_id: f.dialog.call_id.clone(),
            peer: f.dialog.peer.to_string(),
            start_ms: self.wall_ms(f.start),
            ring_ms: f.ring.map(|t| self.wall_ms(t)),
            answer_ms: f.answer.map(|t| self.wall_ms(t)),
            end_ms: self.wall_ms(f.end.unwrap_or(now)),
            final_status: if f.final_status == 0 { 487 } else { f.final_status },
            disposition: if f.answer.is_some() {
                Disposition::Answered
            } else {
                disposition_for(if f.final_status == 0 { 487 } else { f.final_status }, f.ring.is_some())
            },
        }))
        .collect();
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let mut rec = CdrRecord {
            call_id: id,
            from: call.from_ext.clone(),
            to: call.to_ext.clone(),
            start_ms: self.wall_ms(call.start),
            ring_ms: call.ring.map(|t| self.wall_ms(t)),
            answer_ms: call.answer.map(|t| self.wall_ms(t)),
            end_ms,
            disposition,
            ring_duration_ms: ms(call.answer.unwrap_or(now).saturating_duration_since(call.start)),
            talk_duration_ms: call.answer.map(|a| ms(now.saturating_duration_since(a))).unwrap_or(0),
            total_duration_ms: ms(now.saturating_duration_since(call.start)),
            hangup_side: side,
            cause: cause.to_string(),
            final_status,
            legs,
            recordings: call.recording_paths.clone(),
            trunk: call.trunk.as_ref().map(|t| t.trunk.clone()),
            did: call.trunk.as_ref().and_then(|t| t.did.clone()),
            rewires: Vec::new(),
        };
        self.rewired_cdr(id, &mut rec);
        self.originated_cdr(id, &mut rec);
        log::info!("call {id}: ended ({:?}, {cause})", rec.disposition);
        self.out.push_back(super::Output::Cdr(Box::new(rec)));
    }
}
