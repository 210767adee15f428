//! Calls the box places itself: it rings a first party, and when that party answers it dials a
//! second one and bridges them. Click-to-call and the supervisor's "call the agent" ring the
//! user's own phone first and then the number; a progressive campaign rings the customer first
//! and then an agent.
//!
//! Built on the re-wiring primitive (`transfer.rs`): the call starts with **both sides
//! vacant**, the first party's UAC leg takes side A when it answers
//! ([`Engine::replace_side`]), and the second party's leg takes side B. Everything else a
//! call does (BYE from either side, re-INVITEs, hold, in-call codes, recording, CDR) is the
//! ordinary call's. The synthetic INVITE a [`Call`] keeps for side A is never answered: no
//! server transaction has its id.
//!
//! While the second party rings, the first hears a ringback tone. If the second party cannot
//! be reached, the first hears why (busy / not available) and the box hangs up after it.
//! Progress is reported as [`OriginateEvent`]s, taken by the daemon with
//! [`Engine::take_originate_events`] (campaign results).

use super::transfer::{self, DialError, LegKind};
use super::*;
use crate::engine::Output;
use crate::media::Clip;
use crate::sip::message::{self, Message};
use crate::sip::Transport;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// What an agent dials to take part in login-mode campaigns (seed 002 §2.17 エージェントモード
/// ログイン): the box answers and the agent stays on the line; customers are put straight
/// through, one after the other.
pub const CAMPAIGN_LOGIN_CODE: &str = "990";

/// Calls the box has placed and not yet finished at once; a request beyond it is refused
/// ([`OriginateError::Busy`]) so a runaway campaign or a web script cannot fill the call table.
pub const MAX_ORIGINATED: usize = 256;
/// Events kept between two looks of the daemon (only a stalled driver fills it).
pub const MAX_ORIGINATE_EVENTS: usize = 1024;
/// Longest a party may ring (the campaign customer ring limit of seed 002 §2.17 is 600 s).
pub const MAX_ORIGINATE_RING: Duration = Duration::from_secs(600);
/// The prompt after a failed second party is cut off after this long at most.
const FAILURE_PROMPT_GUARD: Duration = Duration::from_secs(15);
/// Longest the first party waits for a deferred second party to be named and answer.
const DEFERRED_WAIT_GUARD: Duration = Duration::from_secs(900);
/// Longest the agent takes over the result entry.
const RESULT_ENTRY_GUARD: Duration = Duration::from_secs(60);

/// Who an originated call rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Party {
    /// An extension's registered phone (its first contact).
    Extension(String),
    /// An outside number over the trunk the outbound routes pick, with `policy_ext`'s caller
    /// ID and restrictions (a campaign passes its own caller ID in `caller_id`).
    Outside {
        /// The number as dialled (`184` prefix included when the campaign shows its number).
        number: String,
        /// Whose outbound policy applies (restriction lists, trunk choice, caller ID).
        policy_ext: String,
    },
}

impl Party {
    /// The number or extension (CDR and log label).
    pub fn label(&self) -> &str {
        match self {
            Party::Extension(e) => e,
            Party::Outside { number, .. } => number,
        }
    }
}

/// What a call is placed for: passed back in its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPurpose {
    /// A user asked from the web page (click-to-call, call the agent).
    Web,
    /// An agent's `990` line (login-mode campaigns): the customers it is given come and go
    /// as its second party.
    CampaignLogin {
        /// The agent's extension.
        agent: String,
    },
    /// A campaign dials an entry of its call list.
    Campaign {
        /// The campaign's name.
        campaign: String,
        /// The entry's id in its call list.
        entry: u64,
    },
}

/// A call to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateRequest {
    /// Rung first; the call starts when it answers.
    pub first: Party,
    /// How long the first party may ring.
    pub first_ring: Duration,
    /// Dialled once the first party answered; `None`: whoever placed the call names it later
    /// with [`Engine::originate_second`] (a campaign picks the agent when the customer answers).
    pub second: Option<Party>,
    /// How long the second party may ring.
    pub second_ring: Duration,
    /// Why (comes back in the events).
    pub purpose: OriginPurpose,
    /// What the first phone shows as the caller; the second party's number when `None`.
    pub presented: Option<String>,
    /// What the first party hears while no second party is named or ringing.
    pub waiting: Waiting,
    /// After the call, the agent enters the result by DTMF (campaigns, seed 002 §2.17).
    pub result_entry: Option<ResultEntryConfig>,
    /// The number presented to an outside party instead of the policy extension's (a
    /// campaign's 発信者番号).
    pub caller_id: Option<String>,
    /// Offer G.711 µ-law only (a customer for an agent's `990` line, answered in µ-law: the
    /// relay does not transcode).
    pub pcmu_only: bool,
}

impl OriginateRequest {
    /// A call from `first` to `second`, the rest defaulted (ringback, no result entry).
    pub fn new(first: Party, first_ring: Duration, second: Party, second_ring: Duration) -> OriginateRequest {
        OriginateRequest {
            first,
            first_ring,
            second: Some(second),
            second_ring,
            purpose: OriginPurpose::Web,
            presented: None,
            waiting: Waiting::Music(None),
            result_entry: None,
            caller_id: None,
            pcmu_only: false,
        }
    }
}

/// What the first party hears while the call waits for its second party to be named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waiting {
    /// Music on hold, or this admin audio file (a campaign's wait audio), looped.
    Music(Option<String>),
    /// "Press one to call, or three to skip" (preview dialling); keys come back as
    /// [`OriginateStep::Key`].
    Choice,
}

/// DTMF result entry after a campaign call (`apps::campaign::dtmf`): when the other party
/// hangs up, the agent on `agent_side` is asked for `result#` (or `0` then a recall delay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEntryConfig {
    /// The agent's side: A when the agent was rung first (preview, recall list), B otherwise.
    pub agent_side: Side,
    /// The campaign's result numbers.
    pub valid: Vec<u16>,
}

/// Why a call could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginateError {
    /// No such extension.
    NotFound,
    /// The extension has no registered phone.
    Unavailable,
    /// The outbound routes refuse the number, with their SIP status (403 barred, 404 no
    /// route, 484 malformed, 503 trunk down).
    Refused(u16),
    /// No relay port, the call table is full, or [`MAX_ORIGINATED`] calls are being placed.
    Busy,
    /// A ring time of zero or over 600 s, or the same party twice.
    Invalid,
}

impl std::fmt::Display for OriginateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OriginateError::NotFound => write!(f, "no such extension"),
            OriginateError::Unavailable => write!(f, "the extension has no registered phone"),
            OriginateError::Refused(403) => write!(f, "the number is restricted (403)"),
            OriginateError::Refused(code) => write!(f, "the outbound route refuses the number ({code})"),
            OriginateError::Busy => write!(f, "the box cannot place another call now"),
            OriginateError::Invalid => write!(f, "invalid request"),
        }
    }
}

impl From<DialError> for OriginateError {
    fn from(e: DialError) -> OriginateError {
        match e {
            DialError::NotFound => OriginateError::NotFound,
            DialError::Unavailable => OriginateError::Unavailable,
            DialError::NotNow | DialError::NoPort => OriginateError::Busy,
            DialError::Refused(code) => OriginateError::Refused(code),
        }
    }
}

/// What happened to an originated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateStep {
    /// The first party answered; the second is being dialled.
    FirstAnswered,
    /// The first party did not answer (SIP status: 486 busy, 480/408 no answer, 487
    /// cancelled, 403 restricted, ...). The call is over.
    FirstFailed(u16),
    /// The second party answered: the two talk.
    Connected,
    /// The second party did not answer (SIP status as above). The call is over, unless the
    /// second party was named by [`Engine::originate_second`]: then the first waits again.
    SecondFailed(u16),
    /// The first party pressed a key while waiting ([`Waiting::Choice`]).
    Key(char),
    /// The other party hung up and the agent is asked for the result; `talk_s` as in
    /// [`Self::Ended`].
    AwaitingResult {
        /// Seconds the two parties talked.
        talk_s: u64,
    },
    /// The agent entered a result or a recall delay.
    Result(crate::apps::campaign::dtmf::Entered),
    /// The agent hung up, timed out or failed three times: no result (未入力).
    ResultMissing,
    /// An agent's `990` line is free again: the customer left (and the result, if asked, was
    /// entered); the agent waits for the next one.
    Released {
        /// Seconds the agent talked to that customer.
        talk_s: u64,
    },
    /// The call ended (after any of the above); `talk_s` counts from [`Self::Connected`].
    Ended {
        /// Seconds the two parties talked (0 when never connected).
        talk_s: u64,
    },
}

/// One step of an originated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginateEvent {
    /// The box-wide call id [`Engine::originate`] returned.
    pub call: u64,
    /// What it was placed for.
    pub purpose: OriginPurpose,
    /// What happened.
    pub step: OriginateStep,
}

/// Per-call state of an originated call.
#[derive(Debug, Clone)]
pub(crate) struct Origination {
    purpose: OriginPurpose,
    first: Party,
    second: Option<Party>,
    second_ring: Duration,
    /// The second party is named by the caller of `originate_second`: a failure waits again.
    deferred: bool,
    presented: String,
    caller_id: Option<String>,
    waiting: Waiting,
    result_cfg: Option<ResultEntryConfig>,
    /// The agent is entering the result.
    result: Option<crate::apps::campaign::dtmf::ResultEntry>,
    /// A result (or its absence) was reported.
    result_reported: bool,
    /// The box hangs up once the current prompt has played.
    hangup_after_play: bool,
    /// The first party answered.
    first_up: bool,
    /// The second party answered at.
    connected: Option<Instant>,
    /// The first party hears why the second failed; the call ends when it has heard it.
    failing: Option<u16>,
}

/// Everything originating keeps beside the calls.
#[derive(Debug, Default)]
pub(crate) struct Originations {
    calls: HashMap<u64, Origination>,
    /// Agents on their `990` line → its call.
    logins: HashMap<String, u64>,
    events: VecDeque<OriginateEvent>,
}

/// The formats the box offers on a leg it starts: both G.711 laws and DTMF events.
fn box_offer() -> Vec<PayloadFormat> {
    vec![PayloadFormat::pcmu(), PayloadFormat::pcma(), PayloadFormat::telephone_event(101)]
}

/// Longest number a user may have the box dial (extensions, outside numbers with prefixes).
pub const MAX_DIAL_DIGITS: usize = 24;

/// Digits (and `*`, `#`, a leading `+`) of a length the box dials.
pub fn is_dialable(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or(number);
    !digits.is_empty()
        && number.len() <= MAX_DIAL_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

/// How long a user's own phone rings for a click-to-call before the box gives up.
pub const CLICK_TO_CALL_RING: Duration = Duration::from_secs(30);

impl Engine {
    /// Click-to-call (and the supervisor's "call the agent"): rings extension `from`, then
    /// dials `to` (an extension, else an outside number with `from`'s outbound policy).
    pub fn click_to_call(&mut self, now: Instant, from: &str, to: &str) -> Result<u64, OriginateError> {
        if !is_dialable(from) || !is_dialable(to) {
            return Err(OriginateError::Invalid);
        }
        let second = if self.extensions.contains_key(to) {
            Party::Extension(to.to_string())
        } else {
            Party::Outside { number: to.to_string(), policy_ext: from.to_string() }
        };
        let second_ring = self.cfg.ring_timeout.clamp(Duration::from_secs(1), MAX_ORIGINATE_RING);
        let req = OriginateRequest::new(
            Party::Extension(from.to_string()),
            CLICK_TO_CALL_RING,
            second,
            second_ring,
        );
        self.originate(now, req)
    }

    /// Places a call: rings `req.first`, and once it answered dials `req.second` and bridges
    /// them. Returns the call id; progress comes as [`OriginateEvent`]s.
    pub fn originate(&mut self, now: Instant, req: OriginateRequest) -> Result<u64, OriginateError> {
        for ring in [req.first_ring, req.second_ring] {
            if ring.is_zero() || ring > MAX_ORIGINATE_RING {
                return Err(OriginateError::Invalid);
            }
        }
        let second_label = req.second.as_ref().map(Party::label).unwrap_or_default();
        if req.first.label() == second_label || req.first.label().is_empty() {
            return Err(OriginateError::Invalid);
        }
        if self.calls.len() >= crate::engine::MAX_CALLS || self.originations.calls.len() >= MAX_ORIGINATED {
            return Err(OriginateError::Busy);
        }
        // The second party is checked now too, so the first is not rung for nothing.
        for party in std::iter::once(&req.first).chain(req.second.as_ref()) {
            self.check_party(party)?;
        }
        let (Some(a_port), Some(b_port)) = (self.pool.allocate(), self.pool.allocate()) else {
            log::warn!("ALARM: RTP port pool exhausted (originating a call)");
            return Err(OriginateError::Busy);
        };
        let id = self.next_call_id;
        self.next_call_id += 1;
        let Some(call) = self.placeholder_call(id, now, &req, a_port, b_port) else {
            self.pool.release(a_port);
            self.pool.release(b_port);
            return Err(OriginateError::Invalid);
        };
        self.counters.calls_started += 1;
        self.calls.insert(id, call);
        self.out.push_back(Output::Media(MediaCommand::Open {
            relay: RelayId(id),
            a_port,
            b_port,
            a_remote: None,
            b_remote: None,
        }));
        // Both sides are vacant until their parties answer (the module doc).
        let r = self.rewire_of(id);
        r.vacant = Some(Side::A);
        r.vacated_by = req.first.label().to_string();
        self.originations.calls.insert(
            id,
            Origination {
                purpose: req.purpose.clone(),
                first: req.first.clone(),
                second: req.second.clone(),
                second_ring: req.second_ring,
                deferred: req.second.is_none(),
                // Nobody to show yet (a deferred second party): anonymous (RFC 3323's convention).
                presented: req.presented.clone().unwrap_or_else(|| {
                    if second_label.is_empty() {
                        "anonymous".to_string()
                    } else {
                        second_label.to_string()
                    }
                }),
                waiting: req.waiting.clone(),
                caller_id: req.caller_id.clone(),
                result_cfg: req.result_entry.clone(),
                result: None,
                result_reported: false,
                hangup_after_play: false,
                first_up: false,
                connected: None,
                failing: None,
            },
        );
        let dialled = match &req.first {
            Party::Extension(ext) => {
                self.dial_leg_for(now, id, Side::A, ext, LegKind::Originate, req.first_ring)
            }
            Party::Outside { number, policy_ext } => self.dial_external_leg(
                now,
                id,
                Side::A,
                number,
                policy_ext,
                LegKind::Originate,
                req.first_ring,
            ),
        };
        if let Err(e) = dialled {
            // Nothing rang: the call never existed for anyone but the log.
            self.originations.calls.remove(&id);
            self.rewiring.calls.remove(&id);
            if let Some(call) = self.calls.remove(&id) {
                self.pool.release(call.a_port);
                self.pool.release(call.b_port);
            }
            self.out.push_back(Output::Media(MediaCommand::Close { relay: RelayId(id) }));
            return Err(e.into());
        }
        log::info!("call {id}: originated: {} first, then {}", req.first.label(), second_label);
        Ok(id)
    }

    /// Whether a party can be rung: an existing extension, or a number some route takes (the
    /// route is decided again when its leg is dialled).
    fn check_party(&mut self, party: &Party) -> Result<(), OriginateError> {
        match party {
            Party::Extension(ext) if !self.extensions.contains_key(ext) => Err(OriginateError::NotFound),
            Party::Extension(_) => Ok(()),
            Party::Outside { number, policy_ext } => {
                match self.external_leg_route(u64::MAX, policy_ext, number) {
                    Ok(_) => Ok(()),
                    Err(404) => Err(OriginateError::NotFound),
                    Err(code) => Err(OriginateError::Refused(code)),
                }
            }
        }
    }

    /// Names (or names again, after a failure) the second party of a call placed with
    /// `second: None`; the first party must have answered and nobody else ring.
    pub fn originate_second(
        &mut self,
        now: Instant,
        id: u64,
        party: Party,
        ring: Duration,
    ) -> Result<(), OriginateError> {
        let ok = self
            .originations
            .calls
            .get(&id)
            .is_some_and(|o| o.deferred && o.first_up && o.connected.is_none() && o.result.is_none());
        if !ok || ring.is_zero() || ring > MAX_ORIGINATE_RING {
            return Err(OriginateError::Invalid);
        }
        if self.rewiring.calls.get(&id).is_some_and(|r| !r.pending.is_empty()) {
            return Err(OriginateError::Busy);
        }
        self.check_party(&party)?;
        if let Some(o) = self.originations.calls.get_mut(&id) {
            o.second = Some(party);
            o.second_ring = ring;
        }
        self.dial_second(now, id).map_err(OriginateError::from)
    }

    /// Ends a call the box placed (a campaign gives up on it, or the agent skipped it).
    pub fn originate_hangup(&mut self, now: Instant, id: u64) -> bool {
        if !self.originations.calls.contains_key(&id) || !self.calls.contains_key(&id) {
            return false;
        }
        self.end_call(id, HangupSide::System, "originate: ended by the box", 487, now);
        true
    }

    /// Dials the named second party for side B; the first hears ringback meanwhile.
    fn dial_second(&mut self, now: Instant, id: u64) -> Result<(), DialError> {
        let Some(o) = self.originations.calls.get(&id).cloned() else { return Err(DialError::NotNow) };
        let Some(second) = o.second else { return Err(DialError::NotNow) };
        let r = self.rewire_of(id);
        r.vacant = Some(Side::B);
        r.vacated_by = second.label().to_string();
        let dialled = match &second {
            Party::Extension(ext) => {
                self.dial_leg_for(now, id, Side::B, ext, LegKind::Originate, o.second_ring)
            }
            Party::Outside { number, policy_ext } => self.dial_external_leg(
                now,
                id,
                Side::B,
                number,
                policy_ext,
                LegKind::Originate,
                o.second_ring,
            ),
        };
        if dialled.is_ok() {
            self.play_ringback(id);
        }
        dialled
    }

    /// The originated calls' progress since the last look, oldest first.
    pub fn take_originate_events(&mut self) -> Vec<OriginateEvent> {
        self.originations.events.drain(..).collect()
    }

    fn originate_event(&mut self, id: u64, step: OriginateStep) {
        let Some(o) = self.originations.calls.get(&id) else { return };
        if self.originations.events.len() >= MAX_ORIGINATE_EVENTS {
            self.originations.events.pop_front();
        }
        let ev = OriginateEvent { call: id, purpose: o.purpose.clone(), step };
        self.originations.events.push_back(ev);
    }

    /// The [`Call`] of an originated call before anyone answered: a synthetic INVITE (never
    /// answered), the box's own offer, both sides vacant.
    fn placeholder_call(
        &mut self,
        id: u64,
        now: Instant,
        req: &OriginateRequest,
        a_port: u16,
        b_port: u16,
    ) -> Option<Call> {
        let first = req.first.label();
        let second = req.second.as_ref().map_or("campaign", Party::label);
        let host = self.cfg.advertise;
        let call_id = format!("originate-{id}-{}@hakoden", self.token());
        let tag = self.token();
        // Labels are checked by the callers (extensions, dialled digits); a character that
        // would break the header makes parsing fail and the request is refused.
        let text = format!(
            "INVITE sip:{second}@{host} SIP/2.0\r\nVia: SIP/2.0/UDP {host};branch={}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{first}@{host}>;tag={tag}\r\nTo: <sip:{second}@{host}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            self.branch()
        );
        let invite = match message::parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            _ => return None,
        };
        let peer =
            Peer { addr: std::net::SocketAddr::new(host, self.cfg.sip_port), transport: Transport::Udp };
        let dialog = Dialog {
            peer,
            call_id,
            local_party: String::new(),
            remote_party: String::new(),
            remote_target: String::new(),
            local_cseq: 0,
            sdp_version: 1,
            pending_ok: None,
        };
        Some(Call {
            id,
            from_ext: String::new(),
            to_ext: String::new(),
            state: CallState::Confirmed,
            invite: Box::new(invite),
            // No server transaction has this id: nothing is ever answered on it.
            invite_txn: ServerTxnId(u64::MAX),
            a: dialog,
            a_tag: String::new(),
            a_ok_sent: false,
            forks: Vec::new(),
            winner: None,
            a_port,
            b_port,
            offered: if req.pcmu_only {
                vec![PayloadFormat::pcmu(), PayloadFormat::telephone_event(101)]
            } else {
                box_offer()
            },
            answered: Vec::new(),
            ptime: None,
            late_offer: false,
            a_offer_shape: sdp::Sdp {
                session_addr: None,
                audio: None,
                media_count: 0,
                media_lines: vec![],
                audio_index: None,
            },
            start: now,
            ring: None,
            answer: None,
            ring_deadline: None,
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
            media_addr: [None, None],
            callee_voice_pt: None,
            trunk: None,
        })
    }

    /// An originating leg answered and took `side` (`transfer.rs` replaced it already).
    /// `answer`: the formats the party chose.
    pub(super) fn originate_answered(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        answer: Vec<PayloadFormat>,
    ) {
        let Some(o) = self.originations.calls.get(&id).cloned() else { return };
        match side {
            Side::A => {
                if let Some(o) = self.originations.calls.get_mut(&id) {
                    o.first_up = true;
                }
                if let Some(c) = self.calls.get_mut(&id) {
                    // The second party is offered what the first accepted, so both send the
                    // same codec through the relay.
                    if sdp::has_voice_codec(&answer) {
                        c.answered = answer;
                    }
                    c.ring = c.ring.or(Some(now));
                }
                self.originate_event(id, OriginateStep::FirstAnswered);
                if o.second.is_none() {
                    // Deferred: the first party waits (music, or the preview choice).
                    self.rewire_of(id).vacant = Some(Side::B);
                    self.play_waiting(id, &o.waiting);
                    self.set_guard(now, id, DEFERRED_WAIT_GUARD);
                    return;
                }
                if let Err(e) = self.dial_second(now, id) {
                    self.originate_second_failed(now, id, e.status());
                }
            }
            Side::B => {
                if let Some(o) = self.originations.calls.get_mut(&id) {
                    o.connected = Some(now);
                }
                if let Some(c) = self.calls.get_mut(&id) {
                    c.answer = Some(now);
                }
                if let Some(c) = self.calls.get_mut(&id) {
                    c.ring_deadline = None;
                }
                self.originate_event(id, OriginateStep::Connected);
                // Available agents on it go to 内線通話 like on any call between extensions, so
                // the queues do not offer them a caller meanwhile.
                self.queue_personal_call(now, id, true);
            }
        }
    }

    /// An originating leg failed with `code` (it never answered).
    pub(super) fn originate_leg_failed(&mut self, now: Instant, id: u64, side: Side, code: u16) {
        match side {
            Side::A => {
                self.originate_event(id, OriginateStep::FirstFailed(code));
                self.end_call(
                    id,
                    HangupSide::System,
                    &format!("originate: first party failed ({code})"),
                    code,
                    now,
                );
            }
            Side::B => self.originate_second_failed(now, id, code),
        }
    }

    /// The second party cannot be reached: the first hears why, then the box hangs up.
    fn originate_second_failed(&mut self, now: Instant, id: u64, code: u16) {
        self.originate_event(id, OriginateStep::SecondFailed(code));
        let Some(o) = self.originations.calls.get_mut(&id) else { return };
        if o.deferred {
            // Whoever named it decides what next (another agent, or hang up).
            o.second = None;
            let waiting = o.waiting.clone();
            self.play_waiting(id, &waiting);
            return;
        }
        o.failing = Some(code);
        let label = o.second.as_ref().map(Party::label).unwrap_or_default().to_string();
        log::info!("call {id}: originate: {label} did not answer ({code})");
        let lang = self.cfg.media.language;
        let ids = match code {
            486 | 600 => crate::media::prompts::sentence_extension_busy(&label, lang),
            _ => crate::media::prompts::sentence_extension_not_available(&label, lang),
        };
        let clips = ids.into_iter().map(|p| Clip::Prompt { id: p.to_string(), lang }).collect();
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips,
            looped: false,
        }));
        // A lost PlayDone must not keep the call up.
        self.set_guard(now, id, FAILURE_PROMPT_GUARD);
    }

    /// The call ends `after` from now whatever happens (the call timer's ring deadline).
    fn set_guard(&mut self, now: Instant, id: u64, after: Duration) {
        self.arm(now + after, TimerKey::Call(id));
        if let Some(c) = self.calls.get_mut(&id) {
            c.ring_deadline = Some(now + after);
        }
    }

    /// What the first party hears while waiting for a deferred second party.
    fn play_waiting(&mut self, id: u64, waiting: &Waiting) {
        let lang = self.cfg.media.language;
        let (clips, looped) = match waiting {
            Waiting::Music(None) => (vec![Clip::MusicOnHold], true),
            Waiting::Music(Some(file)) => (vec![Clip::AudioFile(file.clone())], true),
            Waiting::Choice => {
                (vec![Clip::Prompt { id: "campaign.preview".into(), lang }, Clip::Silence(3000)], true)
            }
        };
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips,
            looped,
        }));
    }

    fn play_prompts(&mut self, id: u64, side: Side, ids: &[&str]) {
        let lang = self.cfg.media.language;
        let clips = ids.iter().map(|p| Clip::Prompt { id: (*p).to_string(), lang }).collect();
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side,
            clips,
            looped: false,
        }));
    }

    // ---- after the call: the agent enters the result ------------------------------------

    /// A BYE from `side` of an originated call: when the other side is an agent who enters
    /// the result by DTMF, the caller's side leaves and the agent is asked. True when absorbed.
    pub(super) fn originate_absorb_bye(&mut self, now: Instant, id: u64, side: Side) -> bool {
        let Some(o) = self.originations.calls.get(&id) else { return false };
        let login = matches!(o.purpose, OriginPurpose::CampaignLogin { .. });
        if login && side == Side::B && o.connected.is_some() && o.result_cfg.is_none() {
            // The customer left a 990 line without result entry: the agent waits again.
            self.leave_side(now, id, side, false);
            self.release_login(now, id);
            return true;
        }
        let Some(cfg) = o.result_cfg.clone() else { return false };
        if o.connected.is_none() || o.result.is_some() || side == cfg.agent_side {
            return false;
        }
        let talk_s = o.connected.map_or(0, |t| now.saturating_duration_since(t).as_secs());
        self.leave_side(now, id, side, false);
        if let Some(o) = self.originations.calls.get_mut(&id) {
            o.result = Some(crate::apps::campaign::dtmf::ResultEntry::new(&cfg.valid));
        }
        log::info!("call {id}: the customer hung up; asking the agent for the result");
        self.originate_event(id, OriginateStep::AwaitingResult { talk_s });
        self.play_prompts(id, cfg.agent_side, &["campaign.enter_result"]);
        if !login {
            // A 990 line is the agent's to keep: no guard ends it.
            self.set_guard(now, id, RESULT_ENTRY_GUARD);
        }
        true
    }

    /// Whether call `id` is an agent's `990` line.
    fn is_login(&self, id: u64) -> bool {
        self.originations
            .calls
            .get(&id)
            .is_some_and(|o| matches!(o.purpose, OriginPurpose::CampaignLogin { .. }))
    }

    /// The box answers an agent's `990`: the agent's line for login-mode campaigns. G.711
    /// µ-law is preferred (the customers of login-mode campaigns are offered µ-law only: the
    /// relay does not transcode).
    pub(super) fn answer_campaign_login(&mut self, now: Instant, id: u64, agent: &str) {
        if !self.extensions.contains_key(agent) || self.originations.logins.contains_key(agent) {
            log::info!("call {id}: {agent} cannot log in to campaigns (not an extension, or already on its 990 line)");
            return self.end_call(id, HangupSide::System, "campaign login refused", 486, now);
        }
        if let Some(c) = self.calls.get_mut(&id) {
            c.offered.sort_by_key(|f| f.encoding != Encoding::Pcmu);
        }
        if !self.answer_for_play(now, id) {
            return;
        }
        self.vacate_b_for_box(id);
        let second_ring = Duration::from_secs(20);
        self.originations.logins.insert(agent.to_string(), id);
        self.originations.calls.insert(
            id,
            Origination {
                purpose: OriginPurpose::CampaignLogin { agent: agent.to_string() },
                first: Party::Extension(agent.to_string()),
                second: None,
                second_ring,
                deferred: true,
                presented: String::new(),
                caller_id: None,
                waiting: Waiting::Music(None),
                result_cfg: None,
                result: None,
                result_reported: false,
                hangup_after_play: false,
                first_up: true,
                connected: None,
                failing: None,
            },
        );
        log::info!("call {id}: {agent} is on its 990 line for login-mode campaigns");
        self.play_prompts(id, Side::A, &["beep"]);
    }

    /// Agents on their `990` line: (agent, its call, whether a customer is on it).
    pub fn campaign_logins(&self) -> Vec<(String, u64, bool)> {
        let mut v: Vec<(String, u64, bool)> = self
            .originations
            .logins
            .iter()
            .map(|(a, id)| {
                let busy = self
                    .originations
                    .calls
                    .get(id)
                    .is_some_and(|o| o.second.is_some() || o.result.is_some() || o.hangup_after_play);
                (a.clone(), *id, busy)
            })
            .collect();
        v.sort();
        v
    }

    /// Puts the answered customer of `customer_call` (placed with `second: None`) through to
    /// `agent`'s `990` line; `result` asks the agent for the result when the customer leaves.
    /// Returns the line's call id, which carries the conversation from now on.
    pub fn originate_join(
        &mut self,
        now: Instant,
        customer_call: u64,
        agent: &str,
        result: Option<Vec<u16>>,
    ) -> Result<u64, OriginateError> {
        let line = *self.originations.logins.get(agent).ok_or(OriginateError::Unavailable)?;
        if self.campaign_logins().iter().any(|(a, _, busy)| a == agent && *busy) {
            return Err(OriginateError::Busy);
        }
        let ready = self
            .originations
            .calls
            .get(&customer_call)
            .is_some_and(|o| o.first_up && o.second.is_none() && o.connected.is_none());
        let Some(x) = self.calls.get(&customer_call).filter(|_| ready) else {
            return Err(OriginateError::Invalid);
        };
        let customer_label = x.from_ext.clone();
        let voice_pt =
            x.answered.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)).map(|f| f.pt);
        let party = transfer::NewParty {
            dialog: x.a.clone(),
            ext: customer_label.clone(),
            port: x.a_port,
            remote: x.media_addr[0],
            voice_pt,
            shape: None,
            // The customer's INVITE was ours; its 2xx was ACKed on the first call already.
            uac: Some((ClientTxnId(u64::MAX), 1, x.a.remote_target.clone(), Vec::new())),
            start: x.start,
            ring: x.ring,
        };
        // The customer leaves its first call without a BYE: the port and dialog move.
        let key = (x.a.call_id.clone(), transfer::remote_tag(&x.a));
        self.a_index.remove(&key);
        self.active_add(&customer_label, -1);
        if let Some(x) = self.calls.get_mut(&customer_call) {
            x.a_ok_sent = false;
            x.a_port = 0;
            x.from_ext.clear();
        }
        if let Some(r) = self.rewiring.calls.get_mut(&customer_call) {
            r.vacant = Some(Side::A);
        }
        self.end_call(customer_call, HangupSide::System, "put through to the agent's 990 line", 200, now);
        let o = self.originations.calls.get_mut(&line).ok_or(OriginateError::Invalid)?;
        o.second = Some(Party::Extension(customer_label.clone()));
        o.result_cfg = result.map(|valid| ResultEntryConfig { agent_side: Side::A, valid });
        o.result = None;
        o.result_reported = false;
        o.hangup_after_play = false;
        if let Some(c) = self.calls.get_mut(&line) {
            c.route = CallRoute::Extension;
        }
        self.rewire_of(line).vacated_by = customer_label;
        self.replace_side(now, line, Side::B, party, "campaign login");
        self.originate_answered(now, line, Side::B, Vec::new());
        Ok(line)
    }

    /// The customer of a `990` line is gone and its result handled: the line waits again.
    fn release_login(&mut self, now: Instant, id: u64) {
        let Some(o) = self.originations.calls.get_mut(&id) else { return };
        let talk_s = o.connected.map_or(0, |t| now.saturating_duration_since(t).as_secs());
        o.second = None;
        o.connected = None;
        o.result = None;
        o.result_cfg = None;
        o.result_reported = false;
        o.hangup_after_play = false;
        if let Some(c) = self.calls.get_mut(&id) {
            c.route = CallRoute::Announcement;
        }
        self.originate_event(id, OriginateStep::Released { talk_s });
    }

    /// A key on an originated call: the preview choice, or the result entry. True when taken.
    pub(crate) fn originate_digit(&mut self, now: Instant, id: u64, side: Side, key: char) -> bool {
        use crate::apps::campaign::dtmf::Step;
        let Some(o) = self.originations.calls.get_mut(&id) else { return false };
        if o.waiting == Waiting::Choice && o.first_up && o.connected.is_none() && side == Side::A {
            self.originate_event(id, OriginateStep::Key(key));
            return true;
        }
        let Some(agent_side) = o.result_cfg.as_ref().map(|c| c.agent_side) else { return false };
        if side != agent_side || o.hangup_after_play {
            return o.result.is_some();
        }
        let Some(entry) = o.result.as_mut() else { return false };
        match entry.key(key) {
            Step::More => {}
            Step::AskRecallDelay => self.play_prompts(id, side, &["campaign.enter_recall"]),
            Step::Done(entered) => {
                if let Some(o) = self.originations.calls.get_mut(&id) {
                    o.result_reported = true;
                    o.hangup_after_play = true;
                }
                self.originate_event(id, OriginateStep::Result(entered));
                self.play_prompts(id, side, &["campaign.saved"]);
                self.set_guard(now, id, FAILURE_PROMPT_GUARD);
            }
            Step::Retry(why) => {
                log::info!("call {id}: result entry refused: {why}");
                self.play_prompts(id, side, &["campaign.invalid", "campaign.enter_result"]);
            }
            Step::GiveUp => {
                if let Some(o) = self.originations.calls.get_mut(&id) {
                    o.result_reported = true;
                    o.hangup_after_play = true;
                }
                self.originate_event(id, OriginateStep::ResultMissing);
                self.play_prompts(id, side, &["campaign.invalid"]);
                self.set_guard(now, id, FAILURE_PROMPT_GUARD);
            }
        }
        true
    }

    /// The first party heard the ringback or the failure prompt.
    pub(crate) fn originate_play_done(&mut self, now: Instant, relay: RelayId, side: Side) {
        let id = relay.0;
        if self.originations.calls.get(&id).is_some_and(|o| o.hangup_after_play) {
            if self.is_login(id) {
                return self.release_login(now, id);
            }
            self.end_call(id, HangupSide::System, "originate: result entered", 200, now);
            return;
        }
        let failing = self.originations.calls.get(&id).and_then(|o| o.failing);
        if let (Some(code), Side::A) = (failing, side) {
            self.end_call(
                id,
                HangupSide::System,
                &format!("originate: second party failed ({code})"),
                code,
                now,
            );
        }
    }

    /// The ringback tone to the first party while the second rings.
    fn play_ringback(&mut self, id: u64) {
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips: vec![Clip::Ringback],
            looped: true,
        }));
    }

    /// The console's view of an originated call names both parties from the start, and rings
    /// until the second party answered.
    pub(crate) fn originated_view(&self, view: &mut crate::engine::CallView) {
        let Some(o) = self.originations.calls.get(&view.id) else { return };
        if view.from.is_empty() {
            view.from = o.first.label().to_string();
        }
        if view.to.is_empty() {
            view.to = o.second.as_ref().map(Party::label).unwrap_or("-").to_string();
        }
        if o.result.is_some() {
            view.state = "result entry";
        } else if o.connected.is_none() {
            view.state = match (o.first_up, &o.second) {
                (false, _) => "ringing",
                (true, None) => "waiting",
                (true, Some(_)) => "ringback",
            };
        }
    }

    /// The caller ID an originated call presents to outside parties, when it sets one.
    pub(crate) fn originate_caller_id(&self, id: u64) -> Option<String> {
        self.originations.calls.get(&id).and_then(|o| o.caller_id.clone())
    }

    /// Who the first party's phone sees as calling: the party it will talk to.
    pub(super) fn originate_presented(&self, id: u64) -> Option<String> {
        self.originations.calls.get(&id).map(|o| o.presented.clone())
    }

    /// The call is ending (`finish_call`): its last event.
    pub(super) fn originate_call_ending(&mut self, now: Instant, id: u64) {
        self.originations.logins.retain(|_, line| *line != id);
        let Some(o) = self.originations.calls.get(&id) else { return };
        let talk_s = o.connected.map_or(0, |t| now.saturating_duration_since(t).as_secs());
        if o.result.is_some() && !o.result_reported {
            self.originate_event(id, OriginateStep::ResultMissing);
        }
        self.originate_event(id, OriginateStep::Ended { talk_s });
    }

    /// The CDR of an originated call names both parties even when one never answered.
    pub(super) fn originated_cdr(&mut self, id: u64, rec: &mut CdrRecord) {
        let Some(o) = self.originations.calls.remove(&id) else { return };
        if rec.from.is_empty() {
            rec.from = o.first.label().to_string();
        }
        if rec.to.is_empty() {
            rec.to = o.second.as_ref().map(Party::label).unwrap_or_default().to_string();
        }
        rec.legs.retain(|l| !l.sip_call_id.starts_with("originate-"));
    }
}
