//! Supervision in the engine (issue 6): a supervisor listens to, whispers to or barges into an
//! agent's call. The policy is [`SupervisionSession`] (`apps::supervision`, contract in
//! `docs/supervision.md`); this module carries out its outputs on legs and rooms. A child of
//! `call.rs` so it can answer calls and move them into a room; `call.rs` holds one-line hooks.
//!
//! Two ways in:
//! - dial code (`995`/`994`/`996` + extension) from a supervisor's phone: the box answers that
//!   call itself and joins it to the agent's room ([`Leg::Caller`]); a refusal plays the
//!   refusal prompt to the supervisor and hangs up only that call;
//! - [`Engine::supervise`] (the console's `supervise`): the box dials the supervisor's phone
//!   ([`Leg::Dialled`], a UAC dialog owned here) and joins when it answers.
//!
//! Media. A two-party call is relayed without a mixer; the first supervisor moves it into a
//! private room on the ports its phones already use ([`MediaCommand::MoveToRoom`]), so the
//! phones see no SIP at all, and a running recording goes on in the room in the same file.
//! When the last joined supervisor leaves, the call moves back to a plain relay
//! ([`MediaCommand::MoveToRelay`], again without SIP) with its recording, so transfers, park
//! and music on hold work on it as before. The supervisor joins with
//! [`MediaCommand::JoinRoomMonitoring`], so the mode holds from the first mixed frame.
//!
//! The agent's call: the one the agent is in that nobody holds (call waiting leaves an agent
//! with two answered calls; the live one is supervised).
//!
//! The agent's and the caller's legs are never touched by a failure: a refused request, a
//! supervisor who does not answer, a room that refuses the supervisor all end on the
//! supervisor's leg. The one exception is in the media layer: moving the call into the room
//! re-binds its two ports; if that bind failed the call would end (`media_failed`), exactly
//! as for a three-way call.

use super::super::cdr::HangupSide;
use super::{CallRoute, CallState, Dialog, Purpose, Side, PARTICIPANT_B};
use crate::apps::supervision::{
    parse_dial_code, Mode, Origin as SessionOrigin, Refusal, SupervisionOutput, SupervisionSession,
    TargetState,
};
use crate::media::audio::mixer::MonitorMode;
use crate::media::sdp::{self, Direction, Encoding, Origin, PayloadFormat};
use crate::media::{MediaCommand, RelayId};
use crate::sip::message::{NameAddr, Request, Response};
use crate::sip::transaction::{ClientTxnId, ServerTxnId};
use crate::sip::writer::{self, Writer};
use crate::sip::Peer;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use super::super::{Engine, Output, TimerKey};

/// Most supervision sessions at once: each holds a supervisor's phone in a room (one relay port
/// for an API session); a call center has a few supervisors per team. Beyond it a request is
/// refused like a busy line.
pub const MAX_SESSIONS: usize = 64;

/// Relay ids of supervisors the box dialled (API sessions): the session number with this bit.
/// Call ids never reach it, and it is clear of the three-way participant bits (62 and 61) and
/// of the consult hold seat's (60).
const PARTICIPANT_S: u64 = 1 << 59;

/// Rooms of calls moved for supervision: this plus the call id modulo a million. Three-way
/// rooms are 1,000,000 + id, consult hold rooms 2,000,000 + id, dial-in rooms 4-digit
/// numbers, so the ranges never meet.
const ROOM_BASE: u32 = 3_000_000;

/// Outputs of one session drained per input: a session emits an action and its event, and a
/// failed action feeds it once more (two more), so four is the most; hitting this is a bug
/// and must not become a livelock.
const MAX_OUTPUTS_PER_INPUT: usize = 16;

/// [`Leg::Caller`]'s call once that call has ended or is being ended: nothing left to hang up.
/// Call ids count up from 1 and never reach it.
const CALL_GONE: u64 = u64::MAX;

/// Why [`Engine::supervise`] did not start a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuperviseError {
    /// The session's own checks refused it (permission, target, own call).
    Refused(Refusal),
    /// The supervisor's phone is not registered, so it cannot be rung.
    SupervisorUnreachable,
    /// The supervisor is already in a session.
    AlreadySupervising,
    /// [`MAX_SESSIONS`] sessions run already.
    TooMany,
}

impl SuperviseError {
    /// The HTTP status an API answers with.
    pub fn http_status(self) -> u16 {
        match self {
            SuperviseError::Refused(r) => r.http_status(),
            SuperviseError::SupervisorUnreachable | SuperviseError::AlreadySupervising => 409,
            SuperviseError::TooMany => 503,
        }
    }
}

impl std::fmt::Display for SuperviseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuperviseError::Refused(r) => write!(f, "{r}"),
            SuperviseError::SupervisorUnreachable => write!(f, "the supervisor's phone is not registered"),
            SuperviseError::AlreadySupervising => write!(f, "this supervisor is already in a session"),
            SuperviseError::TooMany => write!(f, "too many supervision sessions ({MAX_SESSIONS})"),
        }
    }
}

impl std::error::Error for SuperviseError {}

/// A running session as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionView {
    /// The supervisor's extension.
    pub supervisor: String,
    /// The supervised agent's extension.
    pub agent: String,
    /// The current mode.
    pub mode: Mode,
    /// `ringing` (API: the supervisor's phone rings) or `joined`.
    pub state: &'static str,
    /// How it started: `dial code` or `api`.
    pub origin: &'static str,
    /// The agent's call (box-wide call id).
    pub call: u64,
    /// Seconds since the session started.
    pub age_s: u64,
}

/// The supervisor's leg of a session.
#[derive(Debug)]
enum Leg {
    /// Dial code: the supervisor's own call, answered by the box.
    Caller { call: u64 },
    /// API: the box dials the supervisor's phone.
    Dialled(Box<Dialled>),
}

/// A UAC dialog to the supervisor's phone (API sessions).
#[derive(Debug)]
struct Dialled {
    dialog: Dialog,
    txn: ClientTxnId,
    request_uri: String,
    /// The relay port its SDP names (the room participant's port).
    port: u16,
    /// Our ACK for its 2xx, re-sent when the 2xx is retransmitted.
    ack: Option<Vec<u8>>,
    /// What its answer chose, once it answered.
    media: Option<Answered>,
    /// The phone hung up (no BYE from us then).
    gone: bool,
}

/// The codec and address a dialled supervisor's answer chose.
#[derive(Debug, Clone, Copy)]
struct Answered {
    /// (audio PT, telephone-event PT).
    codec: (u8, Option<u8>),
    /// Where it receives RTP.
    remote: Option<SocketAddr>,
}

#[derive(Debug)]
struct Entry {
    session: SupervisionSession,
    /// The agent's call.
    call: u64,
    /// The agent's participant in that call's room.
    agent: RelayId,
    leg: Leg,
    /// The supervisor is in the room.
    joined: bool,
    started: Instant,
}

/// Everything supervision keeps beside the calls.
#[derive(Debug, Default)]
pub(in crate::engine) struct Supervisions {
    next: u64,
    sessions: BTreeMap<u64, Entry>,
    /// Calls moved into a room for supervision → room.
    rooms: HashMap<u64, u32>,
    /// Dial-code calls playing a refusal prompt; they end when it has played.
    refusing: HashSet<u64>,
}

impl Entry {
    /// The supervisor's relay id: their call's, or [`PARTICIPANT_S`] + session for API legs.
    fn relay(&self, sid: u64) -> RelayId {
        match &self.leg {
            Leg::Caller { call } => RelayId(*call),
            Leg::Dialled(_) => RelayId(PARTICIPANT_S | sid),
        }
    }
}

impl Engine {
    // ---- entry points -------------------------------------------------------------------------

    /// `to` dialled by a phone is a supervision code (and not an extension's number).
    pub(in crate::engine) fn supervision_code(&self, to: &str) -> Option<(Mode, String)> {
        if self.extensions.contains_key(to) {
            return None;
        }
        parse_dial_code(to).map(|(mode, target)| (mode, target.to_string()))
    }

    /// The box answers call `id`, which dialled a supervision code: into the agent's room, or
    /// with the refusal prompt and then a hang-up (the supervisor's call only).
    pub(in crate::engine) fn answer_supervision(&mut self, now: Instant, id: u64, mode: Mode, target: &str) {
        let Some(call) = self.calls.get(&id) else { return };
        let supervisor = call.from_ext.clone();
        let (state, found) = self.supervision_target(target);
        let started = if self.supervision.sessions.len() >= MAX_SESSIONS {
            log::warn!("call {id}: supervision refused: {MAX_SESSIONS} sessions already");
            Err(SuperviseError::TooMany)
        } else {
            let roles = &self.cfg.supervisors;
            SupervisionSession::start(now, SessionOrigin::DialCode, &supervisor, target, mode, roles, state)
                .map_err(SuperviseError::Refused)
        };
        let session = match (started, found) {
            (Ok(s), Some(found)) => (s, found),
            (result, _) => {
                let prompt = match result {
                    Err(SuperviseError::Refused(r)) => {
                        log::info!("call {id}: {supervisor} may not supervise {target}: {r}");
                        r.prompt()
                    }
                    _ => crate::apps::supervision::REFUSED_PROMPT,
                };
                self.supervision.refusing.insert(id);
                return self.answer_with_prompt(now, id, prompt);
            }
        };
        let (session, (agent_call, agent)) = session;
        let Some(call) = self.calls.get_mut(&id) else { return };
        let voice =
            call.offered.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)).cloned();
        let te = call.offered.iter().find(|f| f.encoding == Encoding::TelephoneEvent).cloned();
        let Some(voice) = voice else {
            log::info!("call {id}: supervision needs an SDP offer; 488");
            return self.finish_call(now, id, HangupSide::System, "no SDP offer", 488);
        };
        call.answered = std::iter::once(voice).chain(te).collect();
        call.state = CallState::Answered;
        call.answer = Some(now);
        call.ring_deadline = None;
        call.a_ok_sent = true;
        // The room mixes on the A port; the B port was never used.
        self.pool.release(call.b_port);
        call.b_port = 0;
        self.send_box_answer(now, id, Direction::SendRecv);
        log::info!("call {id}: answered for supervision of {target} by {supervisor}");
        let sid = self.supervision.next;
        self.supervision.next += 1;
        let entry = Entry {
            session,
            call: agent_call,
            agent,
            leg: Leg::Caller { call: id },
            joined: false,
            started: now,
        };
        self.supervision.sessions.insert(sid, entry);
        self.drive_supervision(sid, now);
    }

    /// Starts a session through the API (console `supervise`): the box rings the supervisor's
    /// phone and joins it to the agent's call when it answers.
    pub fn supervise(
        &mut self,
        now: Instant,
        mode: Mode,
        supervisor: &str,
        agent: &str,
    ) -> Result<(), SuperviseError> {
        if self.supervision.sessions.len() >= MAX_SESSIONS {
            return Err(SuperviseError::TooMany);
        }
        if self.supervision.sessions.values().any(|e| e.session.supervisor() == supervisor) {
            return Err(SuperviseError::AlreadySupervising);
        }
        let (state, found) = self.supervision_target(agent);
        let roles = &self.cfg.supervisors;
        let session =
            SupervisionSession::start(now, SessionOrigin::Api, supervisor, agent, mode, roles, state)
                .map_err(SuperviseError::Refused)?;
        let Some((call, agent_relay)) = found else {
            return Err(SuperviseError::Refused(Refusal::TargetNotInCall));
        };
        let Some((uri, peer)) =
            self.registrar.contacts(supervisor, now).first().map(|b| (b.uri.clone(), b.peer))
        else {
            return Err(SuperviseError::SupervisorUnreachable);
        };
        let sid = self.supervision.next;
        self.supervision.next += 1;
        // The leg is dialled when the session asks (`RingSupervisor`); until then a placeholder.
        let placeholder = Dialled {
            dialog: Dialog {
                peer,
                call_id: String::new(),
                local_party: String::new(),
                remote_party: String::new(),
                remote_target: uri,
                local_cseq: 1,
                sdp_version: 1,
                pending_ok: None,
            },
            txn: ClientTxnId(u64::MAX),
            request_uri: String::new(),
            port: 0,
            ack: None,
            media: None,
            gone: false,
        };
        let entry = Entry {
            session,
            call,
            agent: agent_relay,
            leg: Leg::Dialled(Box::new(placeholder)),
            joined: false,
            started: now,
        };
        self.supervision.sessions.insert(sid, entry);
        log::info!("supervision {sid}: {supervisor} -> {agent} ({mode:?}) requested through the API");
        self.drive_supervision(sid, now);
        Ok(())
    }

    /// Stops the session of `supervisor` (console `supervise stop`); false when there is none.
    pub fn stop_supervision(&mut self, now: Instant, supervisor: &str) -> bool {
        let Some(sid) = self
            .supervision
            .sessions
            .iter()
            .find(|(_, e)| e.session.supervisor() == supervisor)
            .map(|(sid, _)| *sid)
        else {
            return false;
        };
        if let Some(e) = self.supervision.sessions.get_mut(&sid) {
            e.session.stop(now);
        }
        self.drive_supervision(sid, now);
        true
    }

    /// The sessions running now, for the console.
    pub fn supervisions(&self, now: Instant) -> Vec<SupervisionView> {
        self.supervision
            .sessions
            .values()
            .map(|e| SupervisionView {
                supervisor: e.session.supervisor().to_string(),
                agent: e.session.target().to_string(),
                mode: e.session.mode(),
                state: if e.joined { "joined" } else { "ringing" },
                origin: match e.leg {
                    Leg::Caller { .. } => "dial code",
                    Leg::Dialled(_) => "api",
                },
                call: e.call,
                age_s: now.saturating_duration_since(e.started).as_secs(),
            })
            .collect()
    }

    // ---- hooks from the call model ------------------------------------------------------------

    /// A key from `id`'s side `side` (`id` may be an API supervisor's relay id); true when it
    /// belonged to a supervisor in a session (mode keys never reach anyone else).
    pub(in crate::engine) fn supervision_digit(
        &mut self,
        id: u64,
        side: Side,
        digit: char,
        now: Instant,
    ) -> bool {
        if side != Side::A {
            return false;
        }
        let Some(sid) = self.session_of_relay(id) else { return false };
        let Some(e) = self.supervision.sessions.get_mut(&sid) else { return false };
        log::info!("supervision {sid}: key {digit} from {}", e.session.supervisor());
        e.session.handle_digit(now, digit, &self.cfg.supervisors);
        self.drive_supervision(sid, now);
        true
    }

    /// A prompt finished on `relay`: a refused dial-code call ends now.
    pub(in crate::engine) fn supervision_play_done(&mut self, relay: RelayId, side: Side, now: Instant) {
        if side == Side::A && self.supervision.refusing.remove(&relay.0) {
            self.end_call(relay.0, HangupSide::System, "supervision refused", 200, now);
        }
    }

    /// Call `id` is ending (from `finish_call`): a session whose supervisor it was ends without
    /// touching the agent; sessions on it as the agent's call hang their supervisor up.
    pub(in crate::engine) fn supervision_call_ending(&mut self, now: Instant, id: u64) {
        self.supervision.refusing.remove(&id);
        let own: Vec<u64> = self
            .supervision
            .sessions
            .iter()
            .filter(|(_, e)| matches!(e.leg, Leg::Caller { call } if call == id))
            .map(|(sid, _)| *sid)
            .collect();
        for sid in own {
            if let Some(e) = self.supervision.sessions.get_mut(&sid) {
                // The call is already ending: its relay (and room seat) closes with it.
                e.joined = false;
                e.leg = Leg::Caller { call: CALL_GONE };
                e.session.handle_supervisor_hangup(now);
            }
            self.drive_supervision(sid, now);
        }
        // Taken first: the call is ending, so the sessions below must not move it back.
        let had_room = self.supervision.rooms.remove(&id).is_some();
        let on_call: Vec<u64> =
            self.supervision.sessions.iter().filter(|(_, e)| e.call == id).map(|(sid, _)| *sid).collect();
        for sid in on_call {
            if let Some(e) = self.supervision.sessions.get_mut(&sid) {
                e.session.handle_target_call_ended(now);
            }
            self.drive_supervision(sid, now);
        }
        if had_room {
            // `finish_call` closes the call's own id; side B's seat is ours to close.
            self.out.push_back(Output::Media(MediaCommand::Close { relay: RelayId(id | PARTICIPANT_B) }));
        }
    }

    /// The room refused a dialled supervisor's seat (port, or the room is full): only that
    /// supervisor is hung up.
    pub(in crate::engine) fn supervision_media_failed(&mut self, now: Instant, relay: RelayId) {
        let Some(sid) = self.session_of_relay(relay.0) else { return };
        if let Some(e) = self.supervision.sessions.get_mut(&sid) {
            log::warn!("supervision {sid}: the room refused {}", e.session.supervisor());
            // The seat never opened: nothing to close.
            e.joined = false;
            e.session.handle_supervisor_hangup(now);
        }
        self.drive_supervision(sid, now);
    }

    /// A session's ring timer.
    pub(in crate::engine) fn on_supervision_timer(&mut self, sid: u64, now: Instant) {
        let Some(e) = self.supervision.sessions.get_mut(&sid) else { return };
        e.session.handle_timeout(now);
        self.drive_supervision(sid, now);
    }

    /// A response to an API session's INVITE.
    pub(in crate::engine) fn on_supervision_response(
        &mut self,
        now: Instant,
        sid: u64,
        peer: Peer,
        resp: &Response,
    ) {
        let Some(Entry { leg: Leg::Dialled(d), .. }) = self.supervision.sessions.get_mut(&sid) else {
            return;
        };
        if resp.common.to.tag().is_some() && !d.dialog.remote_party.contains(";tag=") {
            d.dialog.remote_party = resp.common.header("To").unwrap_or_default().to_string();
        }
        if let Some(c) = resp.common.header("Contact").and_then(NameAddr::parse) {
            d.dialog.remote_target = c.uri.raw;
        }
        match resp.code {
            100..=199 => {}
            200..=299 => {
                if let Some(ack) = d.ack.clone() {
                    // A retransmitted 2xx: our ACK was lost.
                    return self.transmit(peer, ack);
                }
                let seq = resp.common.cseq.seq;
                let dl = d.dialog.clone();
                let branch = self.branch();
                let ack = Writer::request("ACK", &dl.remote_target)
                    .header("Via", self.via_for(&dl.peer, &branch))
                    .header("Max-Forwards", 70)
                    .header("From", &dl.local_party)
                    .header("To", &dl.remote_party)
                    .header("Call-ID", &dl.call_id)
                    .header("CSeq", format_args!("{seq} ACK"))
                    .header("User-Agent", writer::SERVER)
                    .finish();
                self.transmit(peer, ack.clone());
                let answer = sdp::parse(&resp.common.body).ok().and_then(|s| s.audio);
                let media = answer.as_ref().and_then(|a| {
                    let formats = sdp::supported_formats(&a.formats);
                    let voice =
                        formats.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma))?;
                    let te = formats.iter().find(|f| f.encoding == Encoding::TelephoneEvent).map(|f| f.pt);
                    Some(Answered { codec: (voice.pt, te), remote: a.rtp_addr() })
                });
                let target_state = self.supervision_state_of(sid);
                let Some(e) = self.supervision.sessions.get_mut(&sid) else { return };
                if let Leg::Dialled(d) = &mut e.leg {
                    d.ack = Some(ack);
                    d.media = media;
                }
                if media.is_none() {
                    // No common codec: the supervisor's phone cannot join; only it is hung up.
                    log::info!("supervision {sid}: the supervisor's phone answered without G.711");
                    e.session.handle_supervisor_hangup(now);
                } else {
                    e.session.handle_supervisor_answered(now, target_state);
                }
                self.drive_supervision(sid, now);
            }
            code => {
                log::info!("supervision {sid}: the supervisor's phone answered {code}");
                if let Some(Leg::Dialled(d)) = self.supervision.sessions.get_mut(&sid).map(|e| &mut e.leg) {
                    // Nothing to cancel or hang up any more.
                    d.gone = true;
                }
                if let Some(e) = self.supervision.sessions.get_mut(&sid) {
                    e.session.handle_supervisor_unreachable(now);
                }
                self.drive_supervision(sid, now);
            }
        }
    }

    /// An API session's INVITE got no answer at all.
    pub(in crate::engine) fn on_supervision_timeout(&mut self, now: Instant, sid: u64) {
        if let Some(e) = self.supervision.sessions.get_mut(&sid) {
            if let Leg::Dialled(d) = &mut e.leg {
                d.gone = true;
            }
            e.session.handle_supervisor_unreachable(now);
        }
        self.drive_supervision(sid, now);
    }

    /// An in-dialog request from a supervisor's phone the box dialled; true when it was one.
    pub(in crate::engine) fn supervision_request(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
    ) -> bool {
        let found = self.supervision.sessions.iter().find_map(|(sid, e)| match &e.leg {
            Leg::Dialled(d) if !d.dialog.call_id.is_empty() && d.dialog.call_id == req.common.call_id => {
                Some(*sid)
            }
            _ => None,
        });
        let Some(sid) = found else { return false };
        use crate::sip::message::Method;
        match req.method {
            Method::Bye => {
                self.reply_status(txn, req, peer, 200, &[], now);
                if let Some(e) = self.supervision.sessions.get_mut(&sid) {
                    if let Leg::Dialled(d) = &mut e.leg {
                        d.gone = true;
                    }
                    e.session.handle_supervisor_hangup(now);
                }
                self.drive_supervision(sid, now);
            }
            Method::Info => {
                self.reply_status(txn, req, peer, 200, &[], now);
                let ct = req.common.header("Content-Type").unwrap_or("").to_string();
                if let Ok(event) = crate::media::dtmf::parse_info(&ct, &req.common.body) {
                    self.supervision_digit(PARTICIPANT_S | sid, Side::A, event.digit, now);
                }
            }
            // A new offer would re-anchor the room seat; the session keeps its media (§14.2
            // lets the answerer refuse with 488 and the dialog stays as it was).
            Method::Invite => self.reply_status(txn, req, peer, 488, &[], now),
            _ => self.reply_status(txn, req, peer, 200, &[], now),
        }
        true
    }

    // ---- the agent's call -------------------------------------------------------------------

    /// What the engine knows about `agent`, and (call, agent's participant) when in a call whose
    /// room a supervisor can join: an answered two-party call, or one already in a room.
    fn supervision_target(&self, agent: &str) -> (TargetState, Option<(u64, RelayId)>) {
        if !self.extensions.contains_key(agent) {
            return (TargetState::Unknown, None);
        }
        // Call waiting leaves an agent with two answered calls: the live one (nobody holds it)
        // is supervised; a held one only when it is the agent's only call.
        let found = self
            .calls
            .values()
            .filter_map(|c| {
                let rewired = self
                    .rewiring
                    .calls
                    .get(&c.id)
                    .is_some_and(|r| r.consult.is_some() || r.vacant.is_some() || r.parked.is_some());
                // A call in the middle of a transfer or park has its own media plans.
                let joinable = c.state == CallState::Confirmed
                    && c.winner.is_some()
                    && !rewired
                    && (c.is_plain_answered()
                        || c.three_way.is_some()
                        || self.supervision.rooms.contains_key(&c.id));
                if !joinable {
                    return None;
                }
                let held = c.held_by.is_some() || c.sdp_held.contains(&true);
                if c.ext(Side::A) == agent {
                    Some((held, c.id, RelayId(c.id)))
                } else if c.ext(Side::B) == agent {
                    Some((held, c.id, RelayId(c.id | PARTICIPANT_B)))
                } else {
                    None
                }
            })
            // Not held first; then the newest call (the one the agent just took).
            .min_by_key(|(held, id, _)| (*held, std::cmp::Reverse(*id)))
            .map(|(_, id, relay)| (id, relay));
        match found {
            Some(f) => (TargetState::InCall, Some(f)),
            None => (TargetState::NotInCall, None),
        }
    }

    /// Whether session `sid`'s agent call is still up.
    fn supervision_state_of(&self, sid: u64) -> TargetState {
        let Some(e) = self.supervision.sessions.get(&sid) else { return TargetState::NotInCall };
        match self.calls.get(&e.call) {
            Some(c) if c.state == CallState::Confirmed => TargetState::InCall,
            _ => TargetState::NotInCall,
        }
    }

    /// The room of call `id`, moving a two-party call into one first (see the module doc).
    fn supervision_room(&mut self, id: u64) -> Option<u32> {
        if let Some(room) = self.supervision.rooms.get(&id) {
            return Some(*room);
        }
        let call = self.calls.get(&id)?;
        if let Some((room, _)) = call.three_way {
            return Some(room);
        }
        if !call.is_plain_answered() {
            return None;
        }
        let (audio_pt, te) = super::super::features::codec_of(call.negotiated())?;
        let (ports, remotes) = ([call.a_port, call.b_port], call.media_addr);
        let room = ROOM_BASE + (id % 1_000_000) as u32;
        self.out.push_back(Output::Media(MediaCommand::MoveToRoom {
            relay: RelayId(id),
            b_participant: RelayId(id | PARTICIPANT_B),
            room,
            ports,
            remotes,
            audio_pt,
            telephone_event_pt: te,
        }));
        if let Some(c) = self.calls.get_mut(&id) {
            // The recording (if any) goes on in the room: `recording_active` stays as it is.
            c.route = CallRoute::Room(room);
        }
        log::info!("call {id}: moved into room {room} for supervision");
        self.supervision.rooms.insert(id, room);
        Some(room)
    }

    // ---- carrying out a session's outputs -----------------------------------------------------

    fn session_of_relay(&self, id: u64) -> Option<u64> {
        if id & PARTICIPANT_S != 0 {
            let sid = id & !PARTICIPANT_S;
            return self.supervision.sessions.contains_key(&sid).then_some(sid);
        }
        self.supervision
            .sessions
            .iter()
            .find(|(_, e)| matches!(e.leg, Leg::Caller { call } if call == id))
            .map(|(sid, _)| *sid)
    }

    /// Drains session `sid`'s outputs, arms its timer, and forgets it once done.
    fn drive_supervision(&mut self, sid: u64, now: Instant) {
        // Each output may feed the session again (a failed ring, a refused join).
        for _ in 0..MAX_OUTPUTS_PER_INPUT {
            let Some(e) = self.supervision.sessions.get_mut(&sid) else { return };
            let Some(out) = e.session.poll_output() else { break };
            match out {
                SupervisionOutput::RingSupervisor => self.ring_supervisor(now, sid),
                SupervisionOutput::CancelRing => self.release_supervisor(now, sid),
                SupervisionOutput::Join { mode } => self.join_supervisor(now, sid, mode),
                SupervisionOutput::SetMode { mode } => {
                    if let Some(e) = self.supervision.sessions.get(&sid) {
                        let relay = e.relay(sid);
                        let agent = e.agent;
                        self.out.push_back(Output::Media(MediaCommand::SetMonitor { relay, agent, mode }));
                    }
                }
                SupervisionOutput::HangUpSupervisor => self.release_supervisor(now, sid),
                SupervisionOutput::Event(ev) => {
                    // No queue-event output on this branch yet: the log carries them.
                    log::info!("supervision {sid}: {} -> {}: {:?}", ev.supervisor, ev.target, ev.kind);
                }
            }
        }
        let Some(e) = self.supervision.sessions.get(&sid) else { return };
        if e.session.is_done() {
            self.forget_supervision(sid);
        } else if let Some(at) = e.session.poll_timeout() {
            self.arm(at, TimerKey::Supervision(sid));
        }
    }

    /// Drops a finished session (its leg already released); the last joined session on a call
    /// moves it back to a plain relay.
    fn forget_supervision(&mut self, sid: u64) {
        let Some(e) = self.supervision.sessions.remove(&sid) else { return };
        if let Leg::Dialled(d) = e.leg {
            self.purposes.remove(&d.txn);
        }
        let still_joined = self.supervision.sessions.values().any(|o| o.call == e.call && o.joined);
        if !still_joined {
            self.supervision_room_done(e.call);
        }
    }

    /// Moves call `id` back from its supervision room to a plain relay on the same ports,
    /// with its recording (see the module doc); the phones get no SIP message.
    fn supervision_room_done(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else { return };
        if call.state != CallState::Confirmed || !self.supervision.rooms.contains_key(&id) {
            return;
        }
        self.supervision.rooms.remove(&id);
        let (ports, remotes) = ([call.a_port, call.b_port], call.media_addr);
        self.out.push_back(Output::Media(MediaCommand::MoveToRelay {
            relay: RelayId(id),
            b_participant: RelayId(id | PARTICIPANT_B),
            ports,
            remotes,
        }));
        if let Some(c) = self.calls.get_mut(&id) {
            c.route = CallRoute::Extension;
        }
        // The reopened relay knows no codec: DTMF detection (feature codes) needs it again.
        self.send_codecs(id);
        log::info!("call {id}: back on a plain relay; the supervision room is closed");
    }

    /// API: sends the INVITE to the supervisor's phone.
    fn ring_supervisor(&mut self, now: Instant, sid: u64) {
        let Some(e) = self.supervision.sessions.get(&sid) else { return };
        let Leg::Dialled(d) = &e.leg else { return };
        let (uri, peer) = (d.dialog.remote_target.clone(), d.dialog.peer);
        let (supervisor, agent) = (e.session.supervisor().to_string(), e.session.target().to_string());
        let formats: Vec<PayloadFormat> = match self.calls.get(&e.call) {
            Some(c) => c.negotiated().to_vec(),
            None => Vec::new(),
        };
        let port = if sdp::has_voice_codec(&formats) { self.pool.allocate() } else { None };
        let Some(port) = port else {
            log::warn!("supervision {sid}: no relay port (or codec) to ring {supervisor} with");
            if let Some(e) = self.supervision.sessions.get_mut(&sid) {
                if let Leg::Dialled(d) = &mut e.leg {
                    d.gone = true;
                }
                e.session.handle_supervisor_unreachable(now);
            }
            return;
        };
        let tag = self.token();
        let call_id = format!("{}@hakoden", self.token());
        let branch = self.branch();
        let host = self.host_for(&peer);
        let dialog = Dialog {
            peer,
            call_id: call_id.clone(),
            // The supervisor's phone shows whom it is about to hear.
            local_party: format!("<sip:{agent}@{host}>;tag={tag}"),
            remote_party: format!("<sip:{supervisor}@{host}>"),
            remote_target: uri.clone(),
            local_cseq: 1,
            sdp_version: 1,
            pending_ok: None,
        };
        let origin = Origin { session_id: PARTICIPANT_S | sid, version: 1, addr: self.local_ip_for(&peer) };
        let body = sdp::render(&origin, port, &formats, Direction::SendRecv, None);
        let invite = Writer::request("INVITE", &uri)
            .header("Via", self.via_for(&peer, &branch))
            .header("Max-Forwards", 70)
            .header("From", &dialog.local_party)
            .header("To", &dialog.remote_party)
            .header("Call-ID", &call_id)
            .header("CSeq", "1 INVITE")
            .header("Contact", self.contact_for(&agent, &peer))
            .header("Allow", writer::ALLOW)
            .header("User-Agent", writer::SERVER)
            .finish_with_body("application/sdp", body.as_bytes());
        let txn = self.client.start(&branch, true, invite.clone(), peer, PARTICIPANT_S | sid, now);
        self.purposes.insert(txn, Purpose::Supervise { session: sid });
        if let Some(e) = self.supervision.sessions.get_mut(&sid) {
            e.leg = Leg::Dialled(Box::new(Dialled {
                dialog,
                txn,
                request_uri: uri,
                port,
                ack: None,
                media: None,
                gone: false,
            }));
        }
        self.transmit(peer, invite);
        log::info!("supervision {sid}: ringing {supervisor}");
    }

    /// Puts the supervisor's leg into the agent's room in `mode`.
    fn join_supervisor(&mut self, now: Instant, sid: u64, mode: MonitorMode) {
        let Some(e) = self.supervision.sessions.get(&sid) else { return };
        let (agent_call, agent) = (e.call, e.agent);
        let Some(room) = self.supervision_room(agent_call) else {
            // The agent's call cannot take a room (it changed meanwhile): only the supervisor
            // is let go.
            log::info!("supervision {sid}: call {agent_call} has no room to join");
            if let Some(e) = self.supervision.sessions.get_mut(&sid) {
                e.session.handle_target_call_ended(now);
            }
            return;
        };
        let Some(e) = self.supervision.sessions.get_mut(&sid) else { return };
        let relay = e.relay(sid);
        let seat = match &e.leg {
            Leg::Caller { call } => {
                let call = *call;
                self.calls.get(&call).and_then(|c| {
                    let (pt, te) = super::super::features::codec_of(c.negotiated())?;
                    Some((c.a_port, c.media_addr[0], pt, te, Some(call)))
                })
            }
            Leg::Dialled(d) => d.media.map(|m| (d.port, m.remote, m.codec.0, m.codec.1, None)),
        };
        let Some((port, remote, audio_pt, te, own_call)) = seat else {
            e.session.handle_supervisor_hangup(now);
            return;
        };
        e.joined = true;
        if let Some(call) = own_call {
            // The supervisor's call was answered on a relay; its A port becomes the room seat.
            self.out.push_back(Output::Media(MediaCommand::Close { relay: RelayId(call) }));
            if let Some(c) = self.calls.get_mut(&call) {
                c.route = CallRoute::Room(room);
            }
        }
        self.out.push_back(Output::Media(MediaCommand::JoinRoomMonitoring {
            relay,
            room,
            port,
            remote,
            audio_pt,
            telephone_event_pt: te,
            agent,
            mode,
        }));
    }

    /// Ends the supervisor's leg of `sid`: the dial-code call is hung up (BYE), an API leg is
    /// cancelled or hung up; its room seat closes. The agent's call is not touched.
    fn release_supervisor(&mut self, now: Instant, sid: u64) {
        let Some(e) = self.supervision.sessions.get_mut(&sid) else { return };
        let joined = std::mem::replace(&mut e.joined, false);
        let relay = e.relay(sid);
        match &mut e.leg {
            Leg::Caller { call } => {
                let call = std::mem::replace(call, CALL_GONE);
                if self.calls.contains_key(&call) {
                    self.end_call(call, HangupSide::System, "supervision ended", 200, now);
                }
            }
            Leg::Dialled(d) => {
                let port = std::mem::replace(&mut d.port, 0);
                let gone = std::mem::replace(&mut d.gone, true);
                let answered = d.ack.is_some();
                let dialog = d.dialog.clone();
                let (txn, request_uri) = (d.txn, d.request_uri.clone());
                if joined {
                    self.out.push_back(Output::Media(MediaCommand::Close { relay }));
                }
                if !gone && answered {
                    self.bye_dialog(now, PARTICIPANT_S | sid, dialog);
                } else if !gone {
                    self.cancel_supervisor_invite(now, sid, txn, &dialog, &request_uri);
                }
                if port != 0 {
                    self.pool.release(port);
                }
            }
        }
    }

    /// CANCELs an API session's INVITE that is still ringing (RFC 3261 §9.1).
    fn cancel_supervisor_invite(&mut self, now: Instant, sid: u64, txn: ClientTxnId, d: &Dialog, uri: &str) {
        if !self.client.is_pending(txn) {
            return;
        }
        let Some(branch) = self.client_branch(txn) else { return };
        let to = d.remote_party.split(";tag=").next().unwrap_or_default().to_string();
        let cancel = Writer::request("CANCEL", uri)
            .header("Via", self.via_for(&d.peer, &branch))
            .header("Max-Forwards", 70)
            .header("From", &d.local_party)
            .header("To", &to)
            .header("Call-ID", &d.call_id)
            .header("CSeq", "1 CANCEL")
            .header("User-Agent", writer::SERVER)
            .finish();
        let id = PARTICIPANT_S | sid;
        let ctxn = self.client.start(&format!("{branch}|CANCEL"), false, cancel.clone(), d.peer, id, now);
        self.purposes.insert(ctxn, Purpose::Fire { call: id });
        self.transmit(d.peer, cancel);
    }
}
