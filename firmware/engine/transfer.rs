//! Re-wiring an answered call: one side's party is replaced by another dialog (the one core
//! primitive, [`Engine::replace_side`]), and the features built on it: blind transfer by REFER
//! (RFC 3515) or `#8 <number> #`, and the state the park feature (`park.rs`) shares.
//!
//! This module is a child of `call` (declared there with `#[path]`) because it works on the
//! call's dialogs and forks; `call.rs` only holds one-line hooks into it.
//!
//! Roles. A side's dialog may be a UAS dialog (the phone sent the INVITE) or a UAC dialog (the
//! box dialled it); [`Dialog`] is the same for both once it is established, so the call keeps
//! side A in `call.a` and side B in `call.forks[winner]` whatever the role:
//! - `a_index` is keyed by (Call-ID, the phone's tag), which is the From tag of the phone's
//!   requests in both roles; `b_index` by Call-ID. A new party gets the entry of its side.
//! - A UAS party's 2xx is retransmitted until ACKed through the side's `pending_ok` as usual; a
//!   UAC party's INVITE keeps its [`Purpose::Leg`] so a retransmitted 2xx is ACKed again.
//! - A side whose party left and has no replacement yet is *vacant* (a parked call, a transfer
//!   whose transferor hung up first): side A with `a_ok_sent = false`, side B with no winner, so
//!   ending the call never sends a BYE to the party that is gone.
//!
//! Media. The new party gets a fresh relay port in its SDP and the relay is re-opened with that
//! port on the replaced side. Re-pointing the old port instead (`SetRemote`) loses to a race: the
//! replaced phone keeps sending until it has processed its BYE, and its late packets would take
//! the side's one new latch, dropping the new party's audio for good. The old port is released.
//! A running recording stops at the re-wire (the relay is re-opened); see docs/transfer-park.md.

use super::trunkcalls::ExternalLeg;
use super::*;
use crate::engine::cdr::Rewire;
use crate::media::Clip;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

/// The in-call code of a blind transfer: `#8 <number> #`.
pub const BLIND_TRANSFER_CODE: &str = "#8";
/// Longest number a transfer may dial (extensions, park slots): longer input is a typo.
const MAX_TARGET_DIGITS: usize = 12;
/// How long a NOTIFY subscription of a REFER lives (RFC 3515 §2.4.5 lets the notifier choose).
const REFER_SUBSCRIPTION_S: u32 = 60;
/// How long the box rings a transfer target before the transfer fails (like a normal call's
/// ring timeout; a shorter one would cut off a target that is walking to the phone).
pub(crate) const TRANSFER_RING: Duration = Duration::from_secs(30);

/// What a re-wire is for; decides what happens when the new leg answers or fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LegKind {
    /// Blind transfer; `notify`: the transferor sent a REFER and gets NOTIFYs.
    Blind { notify: bool },
    /// The parker is rung back for a call nobody retrieved.
    Ringback,
    /// `#9`: the presser (on the leg's side) consults the target; the other party is held.
    Consult,
    /// An IVR menu sends its answered caller to an extension or a ring group's members
    /// (`ivr_call.rs`); side B is vacant.
    Ivr,
    /// A call-center queue rings an agent for its caller (`queue_call.rs`); side B is vacant.
    /// The ACD decides, so a failure only reports to it.
    Queue,
    /// A call the box places itself (`originate.rs`): side A's party, then side B's.
    Originate,
}

impl LegKind {
    /// Kinds that may ring several parties at once for one call (first answer wins).
    fn parallel(self) -> bool {
        matches!(self, LegKind::Ivr | LegKind::Queue | LegKind::Blind { .. })
    }
}

/// A UAC leg the box is dialling to take over one side of a call.
#[derive(Debug, Clone)]
pub(super) struct PendingLeg {
    call: u64,
    /// The side the new party will take.
    side: Side,
    kind: LegKind,
    dialog: Dialog,
    txn: ClientTxnId,
    request_uri: String,
    /// The relay port its SDP names.
    port: u16,
    /// The extension dialled.
    ext: String,
    start: Instant,
    ring: Option<Instant>,
    /// Our ACK once it answered (re-sent on a retransmitted 2xx).
    ack: Option<Vec<u8>>,
    /// Give up ringing at.
    deadline: Instant,
    /// Set when the leg goes out over a trunk (an outside number): identity and digest state.
    trunk: Option<Box<ExternalLeg>>,
    /// Its SDP offer, for an INVITE re-sent with credentials.
    body: String,
}

/// Who a leg's INVITE goes to and as whom.
struct LegTarget {
    /// The number or extension dialled (the CDR's party).
    label: String,
    uri: String,
    peer: Peer,
    /// From (without tag), To, Contact user.
    from: String,
    to: String,
    contact_user: String,
    trunk: Option<Box<ExternalLeg>>,
}

/// Per-call re-wiring state.
#[derive(Debug, Clone, Default)]
pub(super) struct CallRewire {
    /// The legs being dialled for this call: one for a transfer or park ringback, several when
    /// a ring group or a ring-all queue rings its members at once (first answer wins).
    pub(super) pending: Vec<u64>,
    /// A side whose party is gone and not replaced yet.
    pub(super) vacant: Option<Side>,
    /// Legs of earlier A parties (CDR detailed view).
    old_a_legs: Vec<LegRecord>,
    /// When the current A party's leg started, rang and answered, once A was replaced.
    a_times: Option<(Instant, Option<Instant>, Option<Instant>)>,
    /// Every re-wire, in order.
    rewires: Vec<Rewire>,
    /// The extension that left the vacant side.
    pub(super) vacated_by: String,
    /// `#7` was pressed on this side at this time: park unless a `2` follows (then at once).
    pub(super) park_wait: Option<(Side, Instant)>,
    /// The call is parked: slot, parker's extension, ringback at.
    pub(super) parked: Option<(u32, String, Instant)>,
    /// The parker hears the slot on this side until this deadline (or the prompt's end).
    pub(super) announcing: Option<(Side, Instant)>,
    /// `#9`: the consulting side, and the target once it answered.
    pub(super) consult: Option<(Side, Option<NewParty>)>,
    /// A transfer to a sequential ring group: the members still to ring, with their ring time.
    sequential: Vec<(String, Duration)>,
}

/// Everything re-wiring keeps beside the calls.
#[derive(Debug, Default)]
pub(crate) struct Rewiring {
    next_leg: u64,
    legs: HashMap<u64, PendingLeg>,
    pub(super) calls: HashMap<u64, CallRewire>,
    /// Park slot → call.
    pub(super) slots: BTreeMap<u32, u64>,
    /// Answered legs' ACKs (leg → call, ACK), re-sent on a retransmitted 2xx.
    acks: HashMap<u64, (u64, Vec<u8>)>,
}

/// The party that takes over a side.
#[derive(Debug, Clone)]
pub(super) struct NewParty {
    pub(super) dialog: Dialog,
    pub(super) ext: String,
    pub(super) port: u16,
    pub(super) remote: Option<SocketAddr>,
    pub(super) voice_pt: Option<u8>,
    /// The m= lines of its offer (side A answers mirror them); `None` for a UAC party.
    pub(super) shape: Option<sdp::Sdp>,
    /// UAC: its INVITE transaction, CSeq, Request-URI and our ACK.
    pub(super) uac: Option<(ClientTxnId, u32, String, Vec<u8>)>,
    pub(super) start: Instant,
    pub(super) ring: Option<Instant>,
}

/// Why a transfer could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DialError {
    /// No such number.
    NotFound,
    /// The extension has no registered phone.
    Unavailable,
    /// The call cannot be re-wired now (not answered, a room, another transfer running).
    NotNow,
    /// No relay port free.
    NoPort,
    /// An outside number the outbound routes refuse, with their status (403, 404, 484, 503).
    Refused(u16),
}

impl DialError {
    pub(super) fn status(self) -> u16 {
        match self {
            DialError::NotFound => 404,
            DialError::Unavailable => 480,
            DialError::NotNow => 491,
            DialError::NoPort => 503,
            DialError::Refused(code) => code,
        }
    }
}

fn side_label(side: Side) -> &'static str {
    match side {
        Side::A => "a",
        Side::B => "b",
    }
}

/// The phone's tag of a dialog (the `tag` of the remote party).
pub(super) fn remote_tag(d: &Dialog) -> String {
    NameAddr::parse(&d.remote_party).and_then(|n| n.tag().map(str::to_string)).unwrap_or_default()
}

impl Call {
    /// The extension on one side.
    pub(super) fn ext(&self, side: Side) -> &str {
        match side {
            Side::A => &self.from_ext,
            Side::B => &self.to_ext,
        }
    }

    /// The call is answered, bridged between two phones and not in a room.
    pub(super) fn is_plain_answered(&self) -> bool {
        self.state == CallState::Confirmed && self.route == CallRoute::Extension && self.three_way.is_none()
    }
}

impl Engine {
    pub(super) fn rewire_of(&mut self, id: u64) -> &mut CallRewire {
        self.rewiring.calls.entry(id).or_default()
    }

    /// Side B of a call the box answered is vacant until a dialled party takes it (a queue's
    /// agent); the dialled number is the CDR's callee.
    pub(super) fn vacate_b_for_box(&mut self, id: u64) {
        let to = self.calls.get(&id).map(|c| c.to_ext.clone()).unwrap_or_default();
        let r = self.rewire_of(id);
        r.vacant = Some(Side::B);
        if r.vacated_by.is_empty() {
            r.vacated_by = to;
        }
    }

    /// The side of a call that is vacant, if any.
    pub(super) fn vacant_side(&self, id: u64) -> Option<Side> {
        self.rewiring.calls.get(&id).and_then(|r| r.vacant)
    }

    // ---- the primitive --------------------------------------------------------------------

    /// Replaces the party on `side` of call `id` with `party`: the old party (unless the side
    /// is vacant) gets a BYE, the relay's side moves to the new party's port, and the call's
    /// indexes, extension counts and CDR follow. `kind` names the re-wire in the CDR.
    pub(super) fn replace_side(&mut self, now: Instant, id: u64, side: Side, party: NewParty, kind: &str) {
        let vacant = self.vacant_side(id) == Some(side);
        if !vacant {
            self.leave_side(now, id, side, true);
        }
        let wall = self.wall_ms(now);
        let Some(call) = self.calls.get_mut(&id) else {
            self.pool.release(party.port);
            return;
        };
        // `leave_side` (now or when the side fell vacant) noted who left.
        let old_ext = self.rewiring.calls.get(&id).map(|r| r.vacated_by.clone()).unwrap_or_default();
        let old_port = call.port(side);
        match side {
            Side::A => {
                call.a = party.dialog.clone();
                call.a_ok_sent = true;
                call.from_ext = party.ext.clone();
                call.a_port = party.port;
                if let Some(shape) = &party.shape {
                    call.a_offer_shape = sdp::Sdp { audio: None, ..shape.clone() };
                } else {
                    call.a_offer_shape = sdp::Sdp {
                        session_addr: None,
                        audio: None,
                        media_count: 0,
                        media_lines: vec![],
                        audio_index: None,
                    };
                }
                let key = (call.a.call_id.clone(), remote_tag(&call.a));
                self.a_index.insert(key, id);
            }
            Side::B => {
                let ix = call.forks.len();
                let (txn, cseq, uri, ack) = match &party.uac {
                    Some((t, c, u, a)) => (*t, *c, u.clone(), Some(a.clone())),
                    // A UAS party has no INVITE of ours; no client transaction has this id.
                    None => (ClientTxnId(u64::MAX), 0, party.dialog.remote_target.clone(), Some(Vec::new())),
                };
                call.forks.push(Fork {
                    dialog: party.dialog.clone(),
                    txn,
                    invite_cseq: cseq,
                    request_uri: uri,
                    state: ForkState::Answered,
                    cancel_pending: false,
                    ack,
                    remote_tag: Some(remote_tag(&party.dialog)),
                    start: party.start,
                    ring: party.ring,
                    answer: Some(now),
                    end: None,
                    final_status: 200,
                    third_party: None,
                });
                call.winner = Some(ix);
                call.to_ext = party.ext.clone();
                call.b_port = party.port;
                call.callee_voice_pt = party.voice_pt;
                self.b_index.insert(party.dialog.call_id.clone(), (id, ix));
            }
        }
        call.late_offer = false;
        call.held_by = None;
        call.digit_buffers = Default::default();
        call.media_addr[usize::from(side == Side::B)] = party.remote;
        let (a_port, b_port, addrs) = (call.a_port, call.b_port, call.media_addr);
        let other_ext = call.ext(side.other()).to_string();
        self.pool.release(old_port);
        self.active_add(&party.ext, 1);
        let r = self.rewire_of(id);
        r.vacant = None;
        if side == Side::A {
            r.a_times = Some((party.start, party.ring, Some(now)));
        }
        r.rewires.push(Rewire {
            at_ms: wall,
            kind: kind.to_string(),
            side: side_label(side).to_string(),
            replaced: old_ext.clone(),
            by: party.ext.clone(),
        });
        log::info!(
            "call {id}: {kind}: side {} is now {} (was {old_ext}), talking to {other_ext}",
            side_label(side),
            party.ext
        );
        // The relay again, with the new party's port on its side (see the module doc).
        self.out.push_back(super::super::Output::Media(MediaCommand::Close { relay: RelayId(id) }));
        self.out.push_back(super::super::Output::Media(MediaCommand::Open {
            relay: RelayId(id),
            a_port,
            b_port,
            a_remote: addrs[0],
            b_remote: addrs[1],
        }));
        if let Some(c) = self.calls.get_mut(&id) {
            c.recording_active = false;
        }
        self.codecs_to_relay(id);
        self.queue_side_replaced(now, id, side, &old_ext, &party.ext);
    }

    /// Tells the relay both sides' codecs again (DTMF detection after a re-open).
    pub(super) fn codecs_to_relay(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else { return };
        let Some((audio_pt, te)) = super::super::features::codec_of(call.negotiated()) else { return };
        let b_pt = call.callee_voice_pt.unwrap_or(audio_pt);
        for (side, pt) in [(Side::A, audio_pt), (Side::B, b_pt)] {
            self.out.push_back(super::super::Output::Media(MediaCommand::Codec {
                relay: RelayId(id),
                side,
                audio_pt: pt,
                telephone_event_pt: te,
                inband_dtmf: true,
            }));
        }
    }

    /// The party on `side` leaves the call (BYE'd by the box when `bye`, else it hung up): the
    /// side becomes vacant and its leg goes to the CDR's detailed view.
    pub(super) fn leave_side(&mut self, now: Instant, id: u64, side: Side, bye: bool) {
        let Some(ext) = self.calls.get(&id).map(|c| c.ext(side).to_string()) else { return };
        // The side's extension is cleared so `finish_call` does not count it out twice.
        self.active_add(&ext, -1);
        if let Some(c) = self.calls.get_mut(&id) {
            match side {
                Side::A => c.from_ext.clear(),
                Side::B => c.to_ext.clear(),
            }
        }
        self.rewire_of(id).vacated_by = ext;
        let Some(call) = self.calls.get(&id) else { return };
        match side {
            Side::A => {
                if bye && call.a_ok_sent {
                    self.send_bye(now, id, None);
                }
                let Some(call) = self.calls.get_mut(&id) else { return };
                call.a_ok_sent = false;
                call.a.pending_ok = None;
                let key = (call.a.call_id.clone(), remote_tag(&call.a));
                let (start, ring, answer) = match self.rewiring.calls.get(&id).and_then(|r| r.a_times) {
                    Some(t) => t,
                    None => (call.start, call.ring, call.answer),
                };
                let leg = LegRecord {
                    leg: String::new(),
                    sip_call_id: call.a.call_id.clone(),
                    peer: call.a.peer.to_string(),
                    start_ms: self.wall_ms(start),
                    ring_ms: ring.map(|t| self.wall_ms(t)),
                    answer_ms: answer.map(|t| self.wall_ms(t)),
                    end_ms: self.wall_ms(now),
                    final_status: 200,
                    disposition: Disposition::Answered,
                };
                self.a_index.remove(&key);
                self.rewire_of(id).old_a_legs.push(leg);
            }
            Side::B => {
                let winner = call.winner;
                if bye && winner.is_some() {
                    self.send_bye(now, id, winner);
                }
                let Some(call) = self.calls.get_mut(&id) else { return };
                if let Some(f) = winner.and_then(|w| call.forks.get_mut(w)) {
                    f.dialog.pending_ok = None;
                    f.end = Some(now);
                    // Not a failure: the leg was answered; `end_call` must just not touch it.
                    f.state = ForkState::Failed;
                }
                call.winner = None;
            }
        }
        self.rewire_of(id).vacant = Some(side);
    }

    /// A BYE from a party of a call that is being re-wired: the transferor of a blind transfer
    /// and a parker hearing the slot may hang up without ending the call. True when absorbed.
    pub(crate) fn absorb_bye(&mut self, now: Instant, id: u64, side: Side) -> bool {
        if self.originate_absorb_bye(now, id, side) {
            return true;
        }
        let transferor = self.rewiring.calls.get(&id).is_some_and(|r| {
            r.pending
                .iter()
                .filter_map(|l| self.rewiring.legs.get(l))
                .any(|l| l.side == side && matches!(l.kind, LegKind::Blind { .. }))
        });
        let parker = self.rewiring.calls.get(&id).and_then(|r| r.announcing).is_some_and(|(s, _)| s == side);
        let consulting =
            self.rewiring.calls.get(&id).and_then(|r| r.consult.as_ref()).is_some_and(|c| c.0 == side);
        if consulting && self.vacant_side(id).is_none() {
            self.complete_consult(now, id);
            return true;
        }
        if !(transferor || parker) || self.vacant_side(id).is_some() {
            return false;
        }
        log::info!("call {id}: side {} hung up; the call waits for its new party", side_label(side));
        if let Some(r) = self.rewiring.calls.get_mut(&id) {
            r.announcing = None;
        }
        self.leave_side(now, id, side, false);
        true
    }

    /// The call is ending: stop dialling its new party.
    pub(crate) fn rewire_call_ending(&mut self, now: Instant, id: u64) {
        self.cancel_pending_leg(now, id);
        if let Some((_, Some(target))) = self.rewiring.calls.get_mut(&id).and_then(|r| r.consult.take()) {
            // The held party hung up while the presser talked to the target.
            self.bye_dialog(now, id, target.dialog.clone());
            self.pool.release(target.port);
            self.out.push_back(super::super::Output::Media(MediaCommand::Close {
                relay: RelayId(id | super::consult::HOLD_PARTICIPANT),
            }));
        }
    }

    /// Something re-wires the call already (a transfer, a consultation, park).
    pub(super) fn rewiring_busy(&self, id: u64) -> bool {
        self.rewiring.calls.get(&id).is_some_and(|r| {
            !r.pending.is_empty() || r.consult.is_some() || r.parked.is_some() || r.vacant.is_some()
        })
    }

    /// The CDR of a call that had re-wires: the earlier A parties' legs, the current A leg's own
    /// times, and the re-wire list (the detailed view; [`CdrRecord::final_view`] reads it).
    pub(super) fn rewired_cdr(&mut self, id: u64, rec: &mut CdrRecord) {
        self.rewiring.acks.retain(|_, (call, _)| *call != id);
        let Some(r) = self.rewiring.calls.remove(&id) else { return };
        if let Some((slot, _, _)) = &r.parked {
            self.rewiring.slots.remove(slot);
        }
        for leg in r.pending.iter().filter_map(|l| self.rewiring.legs.remove(l)) {
            self.purposes.remove(&leg.txn);
            self.pool.release(leg.port);
        }
        if let Some((start, ring, answer)) = r.a_times {
            if let Some(a) = rec.legs.iter_mut().find(|l| l.leg == "a") {
                a.start_ms = self.wall_ms(start);
                a.ring_ms = ring.map(|t| self.wall_ms(t));
                a.answer_ms = answer.map(|t| self.wall_ms(t));
            }
        }
        if r.vacant == Some(Side::A) {
            // The last A party left before the end: it is among the old legs already.
            rec.legs.retain(|l| l.leg != "a");
        }
        let n = r.old_a_legs.len();
        let mut old: Vec<LegRecord> = r.old_a_legs;
        for (i, l) in old.iter_mut().enumerate() {
            l.leg = if i == 0 { "a".into() } else { format!("a{}", i + 1) };
        }
        if let Some(a) = rec.legs.iter_mut().find(|l| l.leg == "a").filter(|_| n > 0) {
            a.leg = format!("a{}", n + 1);
        }
        let mut legs = old;
        legs.append(&mut rec.legs);
        rec.legs = legs;
        // `from`/`to` stay the dialled parties (the final view is derived from the re-wires).
        if let Some(first) = r.rewires.iter().find(|w| w.side == "a") {
            rec.from = first.replaced.clone();
        }
        if let Some(first) = r.rewires.iter().find(|w| w.side == "b") {
            rec.to = first.replaced.clone();
        }
        if r.rewires.is_empty() && r.vacant.is_some() {
            // Parked and never taken: the vacant side's party is the parker.
            match r.vacant {
                Some(Side::A) => rec.from = r.vacated_by.clone(),
                _ => rec.to = r.vacated_by.clone(),
            }
        }
        rec.rewires = r.rewires;
    }

    // ---- dialling the new party -----------------------------------------------------------

    /// Dials `target` to take over `side` of call `id`; its answer goes to [`Self::on_leg_answered`].
    pub(super) fn dial_leg(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        target: &str,
        kind: LegKind,
    ) -> Result<(), DialError> {
        self.dial_leg_for(now, id, side, target, kind, TRANSFER_RING)
    }

    /// [`Self::dial_leg`] ringing at most `ring`. Legs of a [`LegKind::parallel`] kind may ring
    /// beside others of the same kind; any other leg is alone.
    pub(super) fn dial_leg_for(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        target: &str,
        kind: LegKind,
        ring: Duration,
    ) -> Result<(), DialError> {
        self.leg_may_start(id, target, kind)?;
        if !self.extensions.contains_key(target) {
            return Err(DialError::NotFound);
        }
        let Some(call) = self.calls.get(&id) else { return Err(DialError::NotNow) };
        let mut contacts: Vec<(String, Peer)> =
            self.registrar.contacts(target, now).iter().map(|b| (b.uri.clone(), b.peer)).collect();
        if contacts.is_empty() {
            return Err(DialError::Unavailable);
        }
        if !matches!(kind, LegKind::Blind { .. }) {
            // A queue cancels an agent by extension and an IVR's leg is one phone: one contact.
            contacts.truncate(1);
        }
        // The new party sees the party it will talk to as the caller.
        let presented = match kind {
            LegKind::Consult => call.ext(side).to_string(),
            LegKind::Originate if side == Side::A => self.originate_presented(id).unwrap_or_default(),
            _ => call.ext(side.other()).to_string(),
        };
        let (mut rung, mut last) = (0, DialError::NoPort);
        for (uri, peer) in contacts {
            let host = self.host_for(&peer);
            let t = LegTarget {
                label: target.to_string(),
                uri,
                peer,
                from: format!("<sip:{presented}@{host}>"),
                to: format!("<sip:{target}@{host}>"),
                contact_user: presented.clone(),
                trunk: None,
            };
            match self.start_leg(now, id, side, kind, ring, t) {
                Ok(()) => rung += 1,
                Err(e) => last = e,
            }
        }
        if rung > 0 {
            Ok(())
        } else {
            Err(last)
        }
    }

    /// Dials the outside `number` over the trunk its outbound route picks to take over `side`
    /// of call `id` (`policy_ext`'s caller ID and barring apply; a DID call presents its DID).
    /// A 401/407 from the provider is answered with the trunk's credentials.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dial_external_leg(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        number: &str,
        policy_ext: &str,
        kind: LegKind,
        ring: Duration,
    ) -> Result<(), DialError> {
        self.leg_may_start(id, number, kind)?;
        let (uri, peer, leg) = self.external_leg_route(id, policy_ext, number).map_err(DialError::Refused)?;
        let (from, to, contact_user, _) = leg.identity();
        let t = LegTarget {
            label: number.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            contact_user: contact_user.to_string(),
            uri,
            peer,
            trunk: Some(Box::new(leg)),
        };
        self.start_leg(now, id, side, kind, ring, t)
    }

    /// Whether a leg of `kind` to `target` may ring for call `id` now.
    fn leg_may_start(&self, id: u64, target: &str, kind: LegKind) -> Result<(), DialError> {
        if !self.calls.contains_key(&id) {
            return Err(DialError::NotNow);
        }
        let busy = self.rewiring.calls.get(&id).is_some_and(|r| {
            r.pending
                .iter()
                .filter_map(|l| self.rewiring.legs.get(l))
                .any(|l| !(kind.parallel() && l.kind == kind))
        });
        if busy {
            return Err(DialError::NotNow);
        }
        if self.rewiring.legs.values().any(|l| l.call == id && l.ext == target) {
            // Already ringing this phone for this call.
            return Err(DialError::NotNow);
        }
        Ok(())
    }

    /// Sends a leg's first INVITE and keeps it pending.
    fn start_leg(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        kind: LegKind,
        ring: Duration,
        t: LegTarget,
    ) -> Result<(), DialError> {
        let Some(call) = self.calls.get(&id) else { return Err(DialError::NotNow) };
        let formats = call.negotiated().to_vec();
        let ptime = call.ptime;
        let Some(port) = self.pool.allocate() else {
            log::warn!("ALARM: RTP port pool exhausted (re-wiring call {id})");
            return Err(DialError::NoPort);
        };
        let tag = self.token();
        let call_id = format!("{}@hakoden", self.token());
        let branch = self.branch();
        let peer = t.peer;
        let dialog = Dialog {
            peer,
            call_id,
            local_party: format!("{};tag={tag}", t.from),
            remote_party: t.to.clone(),
            remote_target: t.uri.clone(),
            local_cseq: 1,
            sdp_version: 1,
            pending_ok: None,
        };
        let origin = Origin {
            session_id: id * 2 + u64::from(side == Side::B),
            version: 1,
            addr: self.local_ip_for(&peer),
        };
        let body = sdp::render(&origin, port, &formats, Direction::SendRecv, ptime);
        let leg = PendingLeg {
            call: id,
            side,
            kind,
            dialog,
            txn: ClientTxnId(u64::MAX),
            request_uri: t.uri,
            port,
            ext: t.label.clone(),
            start: now,
            ring: None,
            ack: None,
            deadline: now + ring,
            trunk: t.trunk,
            body,
        };
        if leg.trunk.is_none() {
            // A phone of ours rings for the party it will talk to (screen pop, issue 9).
            self.note_ringing(id, &t.label, &t.contact_user);
        }
        let invite = self.leg_invite(&leg, &t.contact_user, &branch);
        let txn = self.client.start(&branch, true, invite.clone(), peer, id, now);
        let leg_id = self.rewiring.next_leg;
        self.rewiring.next_leg += 1;
        self.purposes.insert(txn, Purpose::Leg { call: id, leg: leg_id });
        self.rewiring.legs.insert(leg_id, PendingLeg { txn, ..leg });
        self.rewire_of(id).pending.push(leg_id);
        self.arm(now + ring, TimerKey::Rewire(id));
        self.transmit(peer, invite);
        log::info!("call {id}: dialling {} to take side {}", t.label, side_label(side));
        Ok(())
    }

    /// A leg's INVITE with its dialog's CSeq (and a trunk leg's identity and credentials).
    fn leg_invite(&self, leg: &PendingLeg, contact_user: &str, branch: &str) -> Vec<u8> {
        let d = &leg.dialog;
        let mut w = Writer::request("INVITE", &leg.request_uri)
            .header("Via", self.via_for(&d.peer, branch))
            .header("Max-Forwards", 70)
            .header("From", &d.local_party)
            .header("To", &d.remote_party)
            .header("Call-ID", &d.call_id)
            .header("CSeq", format_args!("{} INVITE", d.local_cseq))
            .header("Contact", self.contact_for(contact_user, &d.peer))
            .header("Allow", writer::ALLOW)
            .header("User-Agent", writer::SERVER);
        if let Some(t) = &leg.trunk {
            for (n, v) in t.identity().3 {
                w = w.header(n, v);
            }
        }
        w.finish_with_body("application/sdp", leg.body.as_bytes())
    }

    /// A 401/407 to a trunk leg: the INVITE again with credentials (same dialog, CSeq + 1).
    /// False when the challenge cannot be answered.
    fn retry_leg_with_credentials(&mut self, now: Instant, leg_id: u64, resp: &Response) -> bool {
        let Some(mut leg) = self.rewiring.legs.get(&leg_id).cloned() else { return false };
        let Some(mut ext) = leg.trunk.take() else { return false };
        if !self.answer_external_challenge(&mut ext, &leg.request_uri, resp) {
            return false;
        }
        let contact_user = ext.identity().2.to_string();
        leg.trunk = Some(ext);
        leg.dialog.local_cseq += 1;
        let branch = self.branch();
        let invite = self.leg_invite(&leg, &contact_user, &branch);
        let peer = leg.dialog.peer;
        let txn = self.client.start(&branch, true, invite.clone(), peer, leg.call, now);
        self.purposes.remove(&leg.txn);
        self.purposes.insert(txn, Purpose::Leg { call: leg.call, leg: leg_id });
        log::info!("call {}: answering the provider's {} challenge for {}", leg.call, resp.code, leg.ext);
        self.rewiring.legs.insert(leg_id, PendingLeg { txn, ..leg });
        self.transmit(peer, invite);
        true
    }

    /// A response to a leg's INVITE.
    pub(super) fn on_leg_response(&mut self, now: Instant, leg_id: u64, peer: Peer, resp: &Response) {
        let Some(leg) = self.rewiring.legs.get_mut(&leg_id) else {
            // An answered leg's 2xx again: our ACK was lost.
            if (200..300).contains(&resp.code) {
                if let Some((_, ack)) = self.rewiring.acks.get(&leg_id) {
                    let ack = ack.clone();
                    self.transmit(peer, ack);
                }
            }
            return;
        };
        if resp.common.to.tag().is_some() && !leg.dialog.remote_party.contains(";tag=") {
            leg.dialog.remote_party = resp.common.header("To").unwrap_or_default().to_string();
        }
        if let Some(c) = resp.common.header("Contact").and_then(NameAddr::parse) {
            leg.dialog.remote_target = c.uri.raw;
        }
        match resp.code {
            100..=199 => {
                leg.ring.get_or_insert(now);
            }
            200..=299 => {
                if let Some(ack) = leg.ack.clone() {
                    // A retransmitted 2xx: our ACK was lost.
                    return self.transmit(peer, ack);
                }
                let seq = resp.common.cseq.seq;
                let d = leg.dialog.clone();
                let branch = self.branch();
                let ack = self
                    .dialog_request(&d, "ACK", seq, &branch)
                    .header("User-Agent", writer::SERVER)
                    .finish();
                if let Some(leg) = self.rewiring.legs.get_mut(&leg_id) {
                    leg.ack = Some(ack.clone());
                }
                self.transmit(peer, ack);
                self.on_leg_answered(now, leg_id, resp);
            }
            401 | 407 if self.retry_leg_with_credentials(now, leg_id, resp) => {}
            _ => self.on_leg_failed(now, leg_id, resp.code),
        }
    }

    /// The box's INVITE of a leg timed out (no answer at all).
    pub(super) fn on_leg_timeout(&mut self, now: Instant, leg_id: u64) {
        self.on_leg_failed(now, leg_id, 408);
    }

    fn on_leg_answered(&mut self, now: Instant, leg_id: u64, resp: &Response) {
        let Some(leg) = self.rewiring.legs.get(&leg_id).cloned() else { return };
        let id = leg.call;
        let answer = sdp::parse(&resp.common.body).ok().and_then(|s| s.audio);
        let usable = answer.as_ref().filter(|a| sdp::has_voice_codec(&sdp::supported_formats(&a.formats)));
        if !self.calls.contains_key(&id) || usable.is_none() {
            // The call ended meanwhile, or no common codec: hang the new party up.
            self.bye_leg(now, leg_id);
            return self.on_leg_failed(now, leg_id, 488);
        }
        if leg.kind == LegKind::Queue && !self.queue_leg_answered(now, id, &leg.ext) {
            // The ACD gave the call to someone else or the caller left: hang this one up.
            self.bye_leg(now, leg_id);
            if let Some(r) = self.rewiring.calls.get_mut(&id) {
                r.pending.retain(|l| *l != leg_id);
            }
            return self.forget_leg(leg_id);
        }
        // First answer wins: the others ringing for this call stop (RFC 3261 §9: CANCEL).
        let others: Vec<u64> = self
            .rewiring
            .calls
            .get_mut(&id)
            .map(|r| std::mem::take(&mut r.pending).into_iter().filter(|l| *l != leg_id).collect())
            .unwrap_or_default();
        for other in others {
            self.cancel_leg(now, other);
            self.forget_leg(other);
        }
        let voice_pt = usable
            .and_then(|a| a.formats.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)))
            .map(|f| f.pt);
        let party = NewParty {
            dialog: leg.dialog.clone(),
            ext: leg.ext.clone(),
            port: leg.port,
            remote: usable.and_then(|a| a.rtp_addr()),
            voice_pt,
            shape: None,
            uac: Some((
                leg.txn,
                resp.common.cseq.seq,
                leg.request_uri.clone(),
                leg.ack.clone().unwrap_or_default(),
            )),
            start: leg.start,
            ring: leg.ring,
        };
        // The leg's INVITE keeps its purpose and its ACK (2xx retransmissions) until the call
        // ends.
        self.rewiring.legs.remove(&leg_id);
        if let Some(ack) = leg.ack.clone() {
            self.rewiring.acks.insert(leg_id, (id, ack));
        }
        match leg.kind {
            LegKind::Blind { notify } => {
                if notify && self.vacant_side(id) != Some(leg.side) {
                    self.notify_refer(now, id, leg.side, 200, "OK");
                }
                self.replace_side(now, id, leg.side, party, "blind transfer");
            }
            LegKind::Ringback => {
                self.replace_side(now, id, leg.side, party, "park ringback");
            }
            LegKind::Ivr => {
                // Until now the box was the caller's other end (`ivr_call.rs`).
                if let Some(c) = self.calls.get_mut(&id) {
                    c.route = super::CallRoute::Extension;
                }
                self.replace_side(now, id, leg.side, party, "ivr");
            }
            LegKind::Queue => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.route = super::CallRoute::Extension;
                }
                self.replace_side(now, id, leg.side, party, "queue");
                self.queue_drain(now);
            }
            LegKind::Consult => self.consult_answered(id, party),
            LegKind::Originate => {
                let formats = usable.map(|a| sdp::supported_formats(&a.formats)).unwrap_or_default();
                self.replace_side(now, id, leg.side, party, "originate");
                self.originate_answered(now, id, leg.side, formats);
            }
        }
    }

    fn on_leg_failed(&mut self, now: Instant, leg_id: u64, code: u16) {
        let Some(leg) = self.rewiring.legs.remove(&leg_id) else { return };
        self.purposes.remove(&leg.txn);
        self.pool.release(leg.port);
        let id = leg.call;
        let others_ringing = match self.rewiring.calls.get_mut(&id) {
            Some(r) => {
                r.pending.retain(|l| *l != leg_id);
                !r.pending.is_empty()
            }
            None => false,
        };
        if !self.calls.contains_key(&id) {
            return;
        }
        log::info!("call {id}: {} did not take the call ({code})", leg.ext);
        let present = self.vacant_side(id) != Some(leg.side);
        if matches!(leg.kind, LegKind::Blind { .. })
            && !others_ringing
            && self.ring_next_in_sequence(now, id, leg.side, leg.kind)
        {
            return;
        }
        match leg.kind {
            // A ring group's other members (or the target's other phones) still ring.
            LegKind::Blind { .. } if others_ringing => {}
            LegKind::Blind { notify } if present => {
                // The transfer failed and the transferor is still there: the call goes on as it
                // was, and the transferor hears why.
                if notify {
                    self.notify_refer(now, id, leg.side, code, writer::reason_phrase(code));
                }
                self.back_to_talking(id, leg.side.other());
                self.play_failure(id, leg.side, &leg.ext, code);
            }
            LegKind::Blind { .. } => {
                self.end_call(id, HangupSide::System, &format!("transfer failed: {code}"), code, now);
            }
            LegKind::Ringback => {
                self.end_call(id, HangupSide::System, "parked call not retrieved", 408, now);
            }
            // Other members of a ring group still ring.
            LegKind::Ivr if others_ringing => {}
            LegKind::Queue => self.queue_leg_failed(now, id, &leg.ext, code),
            LegKind::Ivr if leg.trunk.is_some() => self.ivr_external_failed(now, id, code),
            LegKind::Ivr => {
                self.end_call(
                    id,
                    HangupSide::System,
                    &format!("IVR target did not answer: {code}"),
                    code,
                    now,
                );
            }
            LegKind::Originate => self.originate_leg_failed(now, id, leg.side, code),
            LegKind::Consult => {
                if let Some(r) = self.rewiring.calls.get_mut(&id) {
                    r.consult = None;
                }
                self.back_to_talking(id, leg.side.other());
                self.play_failure(id, leg.side, &leg.ext, code);
            }
        }
    }

    /// The pending consultation leg becomes a blind transfer (its presser hung up).
    pub(super) fn pending_leg_becomes_blind(&mut self, id: u64) {
        let leg = self.rewiring.calls.get(&id).and_then(|r| r.pending.first().copied());
        if let Some(l) = leg.and_then(|l| self.rewiring.legs.get_mut(&l)) {
            l.kind = LegKind::Blind { notify: false };
        }
    }

    /// Ends a leg that answered too late: ACKed already, so a BYE.
    fn bye_leg(&mut self, now: Instant, leg_id: u64) {
        let Some(leg) = self.rewiring.legs.get(&leg_id).cloned() else { return };
        self.bye_dialog(now, leg.call, leg.dialog);
    }

    /// A BYE on a dialog the call does not hold (a leg that answered too late, a consulted
    /// target).
    pub(super) fn bye_dialog(&mut self, now: Instant, call: u64, mut d: Dialog) {
        d.local_cseq += 1;
        let seq = d.local_cseq;
        let branch = self.branch();
        let bye = self.dialog_request(&d, "BYE", seq, &branch).header("User-Agent", writer::SERVER).finish();
        let txn = self.client.start(&branch, false, bye.clone(), d.peer, call, now);
        self.purposes.insert(txn, Purpose::Fire { call });
        self.transmit(d.peer, bye);
    }

    /// Cancels the legs being dialled for a call (the call ends, or the transfer is abandoned).
    pub(super) fn cancel_pending_leg(&mut self, now: Instant, id: u64) {
        let legs =
            self.rewiring.calls.get_mut(&id).map(|r| std::mem::take(&mut r.pending)).unwrap_or_default();
        for leg_id in legs {
            self.cancel_leg(now, leg_id);
            self.forget_leg(leg_id);
        }
    }

    /// Cancels the one leg ringing `ext` for call `id` (a queue stops ringing an agent).
    pub(super) fn cancel_leg_to(&mut self, now: Instant, id: u64, ext: &str) {
        let leg = self.rewiring.legs.iter().find(|(_, l)| l.call == id && l.ext == ext).map(|(k, _)| *k);
        let Some(leg_id) = leg else { return };
        if let Some(r) = self.rewiring.calls.get_mut(&id) {
            r.pending.retain(|l| *l != leg_id);
        }
        self.cancel_leg(now, leg_id);
        self.forget_leg(leg_id);
    }

    /// Drops a leg's record: its 487 (or late 2xx) then finds no purpose; the transaction ACKs
    /// a 487 and an orphan 2xx gets ACK and BYE.
    fn forget_leg(&mut self, leg_id: u64) {
        if let Some(leg) = self.rewiring.legs.remove(&leg_id) {
            self.purposes.remove(&leg.txn);
            self.pool.release(leg.port);
        }
    }

    /// CANCELs a leg's INVITE (or BYEs it when it answered already); keeps its record.
    fn cancel_leg(&mut self, now: Instant, leg_id: u64) {
        let Some(leg) = self.rewiring.legs.get(&leg_id).cloned() else { return };
        if leg.ack.is_some() {
            return self.bye_leg(now, leg_id);
        }
        if !self.client.is_pending(leg.txn) {
            return;
        }
        let Some(branch) = self.client_branch(leg.txn) else { return };
        // §9.1: CANCEL copies the INVITE's Request-URI, Call-ID, To, CSeq number and top Via.
        let via = self.via_for(&leg.dialog.peer, &branch);
        let to = leg.dialog.remote_party.split(";tag=").next().unwrap_or_default().to_string();
        let cancel = Writer::request("CANCEL", &leg.request_uri)
            .header("Via", &via)
            .header("Max-Forwards", 70)
            .header("From", &leg.dialog.local_party)
            .header("To", &to)
            .header("Call-ID", &leg.dialog.call_id)
            .header("CSeq", format_args!("{} CANCEL", leg.dialog.local_cseq))
            .header("User-Agent", writer::SERVER)
            .finish();
        let txn = self.client.start(
            &format!("{branch}|CANCEL"),
            false,
            cancel.clone(),
            leg.dialog.peer,
            leg.call,
            now,
        );
        self.purposes.insert(txn, Purpose::Fire { call: leg.call });
        self.transmit(leg.dialog.peer, cancel);
    }

    /// A re-wire timer: a leg rang too long, a `#7` waited for its `2`, a parked call is due
    /// for ringback.
    pub(crate) fn on_rewire_timer(&mut self, id: u64, now: Instant) {
        let legs = self.rewiring.calls.get(&id).map(|r| r.pending.clone()).unwrap_or_default();
        let mut expired = false;
        for leg_id in legs {
            if self.rewiring.legs.get(&leg_id).is_some_and(|l| l.deadline <= now && l.ack.is_none()) {
                self.cancel_leg(now, leg_id);
                self.on_leg_failed(now, leg_id, 480);
                expired = true;
            }
        }
        if expired {
            return;
        }
        self.on_park_timer(id, now);
    }

    // ---- what the remaining party hears ---------------------------------------------------

    /// Music to the party that waits for a transfer or a retrieval.
    pub(super) fn music_to(&mut self, id: u64, side: Side) {
        self.out.push_back(super::super::Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side,
            clips: vec![Clip::MusicOnHold],
            looped: true,
        }));
    }

    fn back_to_talking(&mut self, id: u64, side: Side) {
        self.out.push_back(super::super::Output::Media(MediaCommand::StopPlay { relay: RelayId(id), side }));
    }

    /// "Extension N is busy / not available" to one side.
    fn play_failure(&mut self, id: u64, side: Side, ext: &str, code: u16) {
        let lang = self.cfg.media.language;
        let ids = match code {
            486 | 600 => crate::media::prompts::sentence_extension_busy(ext, lang),
            _ => crate::media::prompts::sentence_extension_not_available(ext, lang),
        };
        let clips = ids.into_iter().map(|p| Clip::Prompt { id: p.to_string(), lang }).collect();
        self.out.push_back(super::super::Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side,
            clips,
            looped: false,
        }));
    }

    // ---- blind transfer ------------------------------------------------------------------

    /// Starts a blind transfer: the party on `transferor`'s side is replaced by `target` once it
    /// answers; the other party hears music meanwhile.
    pub(super) fn blind_transfer(
        &mut self,
        now: Instant,
        id: u64,
        transferor: Side,
        target: &str,
        notify: bool,
    ) -> Result<(), DialError> {
        let ok = self.calls.get(&id).is_some_and(|c| c.is_plain_answered() && c.winner.is_some());
        if !ok || self.rewiring_busy(id) {
            return Err(DialError::NotNow);
        }
        if target.is_empty() || target.len() > MAX_TARGET_DIGITS {
            return Err(DialError::NotFound);
        }
        self.dial_transfer_target(now, id, transferor, target, LegKind::Blind { notify })?;
        self.music_to(id, transferor.other());
        Ok(())
    }

    /// Rings a transfer target through the dial plan: a ring group's members (ring-all: every
    /// member at once; sequential: one after the other, each for the group's ring time), an
    /// extension's every registered phone, or an outside number over the trunk (the
    /// transferor's outbound policy applies).
    fn dial_transfer_target(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        target: &str,
        kind: LegKind,
    ) -> Result<(), DialError> {
        let group = self.cfg.dialplan.ring_groups.iter().find(|g| g.number == target).cloned();
        if let Some(g) = group {
            let ring = Duration::from_secs(u64::from(g.ring_s.max(1)));
            let mut members: std::collections::VecDeque<String> = g.members.into();
            if g.strategy == crate::config::RingStrategy::Sequential {
                let mut last = DialError::Unavailable;
                while let Some(m) = members.pop_front() {
                    match self.dial_leg_for(now, id, side, &m, kind, ring) {
                        Ok(()) => {
                            self.rewire_of(id).sequential = members.into_iter().map(|m| (m, ring)).collect();
                            return Ok(());
                        }
                        Err(e) => last = e,
                    }
                }
                return Err(last);
            }
            let (mut rung, mut last) = (0, DialError::Unavailable);
            for m in members {
                match self.dial_leg_for(now, id, side, &m, kind, TRANSFER_RING) {
                    Ok(()) => rung += 1,
                    Err(e) => last = e,
                }
            }
            return if rung > 0 { Ok(()) } else { Err(last) };
        }
        if self.extensions.contains_key(target) {
            return self.dial_leg(now, id, side, target, kind);
        }
        let policy_ext = self.calls.get(&id).map(|c| c.ext(side).to_string()).unwrap_or_default();
        self.dial_external_leg(now, id, side, target, &policy_ext, kind, TRANSFER_RING)
    }

    /// The next member of a sequential ring group a transfer rings, after a member failed;
    /// true when one rings.
    fn ring_next_in_sequence(&mut self, now: Instant, id: u64, side: Side, kind: LegKind) -> bool {
        loop {
            let next = self.rewiring.calls.get_mut(&id).and_then(|r| {
                if r.sequential.is_empty() {
                    None
                } else {
                    Some(r.sequential.remove(0))
                }
            });
            let Some((m, ring)) = next else { return false };
            if self.dial_leg_for(now, id, side, &m, kind, ring).is_ok() {
                return true;
            }
        }
    }

    /// A REFER inside a call (RFC 3515): 202, then NOTIFYs with the outcome as sipfrag.
    pub(crate) fn handle_refer(&mut self, now: Instant, peer: Peer, txn: ServerTxnId, req: Request) {
        let Some((id, side, fork)) = self.locate(&req) else {
            return self.reply_status(txn, &req, peer, 481, &[], now);
        };
        let is_party = self.calls.get(&id).is_some_and(|c| side == Side::A || fork == c.winner);
        if !is_party {
            return self.reply_status(txn, &req, peer, 481, &[], now);
        }
        let refer_to: Vec<&str> = req.common.header_list("Refer-To");
        // §2.4.1: exactly one Refer-To.
        let [refer_to] = refer_to.as_slice() else {
            return self.reply_status(txn, &req, peer, 400, &[], now);
        };
        let Some(target) = NameAddr::parse(refer_to) else {
            return self.reply_status(txn, &req, peer, 400, &[], now);
        };
        if target.uri.has_headers {
            if let Some(replaces) = replaces_of(&target.uri.raw) {
                return self.attended_refer(now, peer, txn, &req, id, side, &replaces);
            }
        }
        let Some(number) = target.uri.user_unescaped().filter(|u| u.bytes().all(|b| b.is_ascii_digit()))
        else {
            return self.reply_status(txn, &req, peer, 400, &[], now);
        };
        self.reply_status(txn, &req, peer, 202, &[], now);
        self.notify_refer(now, id, side, 100, "Trying");
        log::info!("call {id}: REFER from side {} to {number}", side_label(side));
        if let Err(e) = self.blind_transfer(now, id, side, &number, true) {
            log::info!("call {id}: transfer to {number} refused: {e:?}");
            self.notify_refer(now, id, side, e.status(), writer::reason_phrase(e.status()));
        }
    }

    /// REFER with Replaces (RFC 5589 §7): the transferor X talks to Y on this call and to T on
    /// the call whose dialog `replaces` names (X's own dialog with the box). Y and T are joined
    /// on this call, T keeping its dialog and relay port, and X is hung up on both.
    #[allow(clippy::too_many_arguments)]
    fn attended_refer(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        id: u64,
        side: Side,
        replaces: &str,
    ) {
        let call_id = replaces.split(';').next().unwrap_or_default().trim().to_string();
        let other =
            self.a_index.iter().find(|((c, _), v)| *c == call_id && **v != id).map(|(_, v)| (*v, Side::A));
        let other = other.or_else(|| {
            let (cid, fork) = self.b_index.get(&call_id).copied()?;
            let winner = self.calls.get(&cid)?.winner;
            (cid != id && winner == Some(fork)).then_some((cid, Side::B))
        });
        let Some((id2, x_side2)) = other else {
            return self.reply_status(txn, req, peer, 481, &[], now);
        };
        // Only the transferor's own consultation may be joined (RFC 3891 §6: Replaces needs
        // the authority of the replaced dialog's party).
        let same_party = match (self.calls.get(&id), self.calls.get(&id2)) {
            (Some(c1), Some(c2)) => c1.ext(side) == c2.ext(x_side2),
            _ => false,
        };
        if !same_party {
            return self.reply_status(txn, req, peer, 403, &[], now);
        }
        let ok = |c: Option<&Call>| c.is_some_and(|c| c.is_plain_answered() && c.winner.is_some());
        let idle = |e: &Engine, i: u64| {
            e.rewiring.calls.get(&i).is_none_or(|r| r.pending.is_empty() && r.vacant.is_none())
        };
        if !ok(self.calls.get(&id)) || !ok(self.calls.get(&id2)) || !idle(self, id) || !idle(self, id2) {
            return self.reply_status(txn, req, peer, 491, &[], now);
        }
        self.reply_status(txn, req, peer, 202, &[], now);
        self.notify_refer(now, id, side, 100, "Trying");
        self.join_calls(now, id, side, id2, x_side2, true);
    }

    /// Joins the party opposite `x1` on call `id1` with the party opposite `x2` on call `id2`
    /// (attended transfer): the second party moves into call `id1` on `x1`'s side, `x1`'s party
    /// is BYE'd on both calls, and call `id2` ends without touching the moved party.
    pub(super) fn join_calls(&mut self, now: Instant, id1: u64, x1: Side, id2: u64, x2: Side, notify: bool) {
        let t_side = x2.other();
        let Some(c2) = self.calls.get(&id2) else { return };
        let t_dialog = c2.dialog(t_side).clone();
        let t_ext = c2.ext(t_side).to_string();
        let t_port = c2.port(t_side);
        let t_remote = c2.media_addr[usize::from(t_side == Side::B)];
        let t_pt = if t_side == Side::B {
            c2.callee_voice_pt
        } else {
            super::super::features::codec_of(c2.negotiated()).map(|c| c.0)
        };
        let (t_start, t_ring) = (c2.start, c2.ring);
        if notify {
            self.notify_refer(now, id1, x1, 200, "OK");
        }
        // Call 2: X is hung up, T is detached (its port and dialog move to call 1).
        self.leave_side(now, id2, x2, true);
        if let Some(c2) = self.calls.get_mut(&id2) {
            match t_side {
                Side::A => {
                    c2.a_ok_sent = false;
                    c2.a.pending_ok = None;
                    c2.a_port = 0;
                    c2.from_ext.clear();
                }
                Side::B => {
                    if let Some(f) = c2.winner.and_then(|w| c2.forks.get_mut(w)) {
                        f.dialog.pending_ok = None;
                        f.end = Some(now);
                    }
                    c2.winner = None;
                    c2.b_port = 0;
                    c2.to_ext.clear();
                }
            }
        }
        self.active_add(&t_ext, -1);
        self.finish_call(now, id2, HangupSide::System, "attended transfer", 200);
        let party = NewParty {
            dialog: t_dialog,
            ext: t_ext,
            port: t_port,
            remote: t_remote,
            voice_pt: t_pt,
            shape: None,
            uac: None,
            start: t_start,
            ring: t_ring,
        };
        self.replace_side(now, id1, x1, party, "attended transfer");
    }

    /// A NOTIFY of the implicit refer subscription on `side`'s dialog; a final `code` ends it.
    pub(super) fn notify_refer(&mut self, now: Instant, id: u64, side: Side, code: u16, reason: &str) {
        let state = if code >= 200 {
            "terminated;reason=noresource".to_string()
        } else {
            format!("active;expires={REFER_SUBSCRIPTION_S}")
        };
        if side == Side::B && self.calls.get(&id).is_none_or(|c| c.winner.is_none()) {
            // The transferor's side B is vacant: nobody to notify.
            return;
        }
        let body = format!("SIP/2.0 {code} {reason}\r\n");
        let branch = self.branch();
        let Some(call) = self.calls.get_mut(&id) else { return };
        let contact_user = call.ext(side.other()).to_string();
        let d = call.dialog_mut(side);
        d.local_cseq += 1;
        let (d, seq) = (d.clone(), d.local_cseq);
        let bytes = self
            .dialog_request(&d, "NOTIFY", seq, &branch)
            .header("Contact", self.contact_for(&contact_user, &d.peer))
            .header("Event", "refer")
            .header("Subscription-State", state)
            .header("User-Agent", writer::SERVER)
            .finish_with_body("message/sipfrag;version=2.0", body.as_bytes());
        let txn = self.client.start(&branch, false, bytes.clone(), d.peer, id, now);
        self.purposes.insert(txn, Purpose::Fire { call: id });
        self.transmit(d.peer, bytes);
    }

    /// An in-call code for re-wiring (`#8`, `#9`, `#0`, `#72`, `#7`); true when `buffer` was one
    /// and the digits are used up.
    pub(crate) fn rewire_code(&mut self, id: u64, side: Side, buffer: &str, now: Instant) -> bool {
        if self.consult_code(id, side, buffer, now) {
            return true;
        }
        if let Some(target) =
            buffer.strip_suffix('#').and_then(|b| b.rsplit_once(BLIND_TRANSFER_CODE)).map(|(_, t)| t)
        {
            if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
                let target = target.to_string();
                log::info!("call {id}: {BLIND_TRANSFER_CODE}{target}# from side {}", side_label(side));
                if let Err(e) = self.blind_transfer(now, id, side, &target, false) {
                    log::info!("call {id}: transfer to {target} refused: {e:?}");
                    self.play_failure(id, side, &target, e.status());
                }
                return true;
            }
        }
        self.park_code(id, side, buffer, now)
    }
}

/// The Replaces value of a Refer-To URI's headers (`?Replaces=callid%3Bto-tag%3D..`), unescaped.
pub(super) fn replaces_of(uri: &str) -> Option<String> {
    let (_, headers) = uri.split_once('?')?;
    headers.split('&').find_map(|h| {
        let (name, value) = h.split_once('=')?;
        name.eq_ignore_ascii_case("replaces").then(|| crate::sip::message::unescape(value))
    })
}
