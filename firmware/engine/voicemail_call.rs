//! Voicemail in the engine (issue 5): the box answers a call into a mailbox and drives the
//! caller's [`CallerFlow`] (greeting, beep, record, review menu). A child module of `call.rs` so
//! it can answer the call itself; the flow is `apps::voicemail::caller`.
//!
//! The engine stays sans-IO: the store is never called from here. Storage leaves as
//! [`super::super::Output::Voicemail`] ([`VoicemailOp`]); the daemon applies it to
//! `store::voicemail::VoicemailStore` and reports back with [`Engine::voicemail_take_ready`]
//! (where the recorder writes) and [`Engine::set_voicemail_counts`] (after every change and at
//! start). The recorder is the media relay's (`MediaCommand::Record` with the take's full path);
//! its `MediaEvent::Recorded` gives the take's length.
//!
//! How a call gets here: the dial-plan target [`VOICEMAIL_TARGET_PREFIX`]`<box>` (a DID's
//! `voicemail = "<box>"`, and an extension's `voicemail = true` for its busy, no-answer and
//! unregistered forwards). Boxes: every extension and every ring group, box number = its number.

use super::super::cdr::HangupSide;
use super::{CallRoute, CallState, Side};
use crate::apps::voicemail::caller::{CallerFlow, CallerOutput};
use crate::apps::voicemail::mailbox::{
    choose_greeting, BoxNumber, Counts, Folder, GreetingKind, GreetingSet, Limits, MessageId, MessageMeta,
    Status,
};
use crate::apps::voicemail::owner::{BoxSnapshot, OwnerMenu, OwnerOutput, PinGuard};
use crate::apps::voicemail::Clip as VmClip;
use crate::media::audio::wav::G711_HEADER_BYTES;
use crate::media::sdp::{Direction, Encoding};
use crate::media::{Clip, MediaCommand, RelayId};
use crate::notify::chat::{bypasses_voicemail, ChatRule};
use crate::sip::writer::{self, response_to};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use super::super::{Engine, Output, TimerKey};

/// A dial-plan target that means "this mailbox": `vm:201`. Not digits, so it can never collide
/// with a dialled number.
pub const VOICEMAIL_TARGET_PREFIX: &str = "vm:";

/// The owner menu: `*92` for the caller's own box, `*92<box>` for another (seed 004 §2.18).
pub const VOICEMAIL_OWNER_CODE: &str = "*92";

/// The greeting played when the box has no recording for the status nor a default one.
const SYSTEM_GREETING: [&str; 2] = ["vm.person_unavailable", "vm.leave_message"];

/// G.711 is 8000 bytes per second: bytes per millisecond of a take.
const G711_BYTES_PER_MS: u64 = 8;

/// Silence before the first prompt: the caller's phone opens its audio path after the 200.
const LEAD_IN_MS: u32 = 300;

/// What the daemon does to the voicemail store for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoicemailOp {
    /// `VoicemailStore::begin_message`, then [`Engine::voicemail_take_ready`] with the take's
    /// `part_path` (or `None` when it failed). The daemon keeps the take under `call`.
    BeginMessage {
        /// The call (one take at a time per call).
        call: u64,
        /// The mailbox.
        box_no: BoxNumber,
        /// The caller's number.
        caller: String,
        /// The caller's display name.
        caller_name: String,
        /// When the call reached the box.
        received_unix_ms: u64,
    },
    /// `VoicemailStore::commit_message` of the call's take, then [`Engine::set_voicemail_counts`].
    SaveMessage {
        /// The call.
        call: u64,
        /// The take's length.
        duration_ms: u64,
    },
    /// `VoicemailStore::begin_greeting` (owner menu), then [`Engine::voicemail_take_ready`]
    /// with the take's `part_path`. The daemon keeps the take under `call`.
    BeginGreeting {
        /// The call.
        call: u64,
        /// The box.
        box_no: BoxNumber,
        /// The slot.
        kind: GreetingKind,
    },
    /// `VoicemailStore::commit_greeting` of the call's greeting take, then
    /// [`Engine::set_voicemail_greetings`] for its box.
    SaveGreeting {
        /// The call.
        call: u64,
    },
    /// `VoicemailStore::discard` / `discard_greeting` of the call's take (nothing when it has
    /// none).
    DiscardTake {
        /// The call.
        call: u64,
    },
    /// The owner menu needs the box's messages: `VoicemailStore::messages` with each
    /// `message_path`, answered with [`Engine::voicemail_box_loaded`].
    LoadBox {
        /// The call.
        call: u64,
        /// The box.
        box_no: BoxNumber,
    },
    /// `VoicemailStore::set_folder`, then [`Engine::set_voicemail_counts`].
    SetFolder {
        /// The box.
        box_no: BoxNumber,
        /// The message.
        id: MessageId,
        /// Where to.
        folder: Folder,
    },
    /// `VoicemailStore::delete`, then [`Engine::set_voicemail_counts`].
    Delete {
        /// The box.
        box_no: BoxNumber,
        /// The message.
        id: MessageId,
    },
}

/// Who a mailbox belongs to: whose phones get its message-waiting NOTIFYs and who gets its
/// e-mail. [`Engine::box_owner`] is the one place that knows; a new kind of box (queues) is one
/// more variant and one more arm there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailboxOwner {
    /// An extension's own box.
    Extension(String),
    /// A ring group's box: every member shares it.
    Group {
        /// The member extensions, in configuration order.
        members: Vec<String>,
    },
    /// A call-center queue's box (keyed by the queue's `number`): every member agent shares it.
    Queue {
        /// The member agents' extensions, in configuration order.
        members: Vec<String>,
    },
}

impl MailboxOwner {
    /// The extensions whose phones light up for the box and whose addresses get its e-mail.
    #[must_use]
    pub fn extensions(&self) -> Vec<String> {
        match self {
            MailboxOwner::Extension(e) => vec![e.clone()],
            MailboxOwner::Group { members } | MailboxOwner::Queue { members } => members.clone(),
        }
    }
}

/// Which machine a voicemail call runs.
#[derive(Debug)]
enum Flow {
    /// A caller leaving a message.
    Caller(CallerFlow),
    /// An owner in the `*92` menu.
    Owner(Box<OwnerMenu>),
}

/// One call in voicemail.
#[derive(Debug)]
struct VmCall {
    flow: Flow,
    /// Where the current take is recorded, once the daemon said.
    take: Option<PathBuf>,
    /// The first prompt got its lead-in.
    started: bool,
    /// The owner's messages' files, from the daemon's load.
    files: HashMap<MessageId, PathBuf>,
    /// Who calls (the owner menu's PIN guard counts per caller).
    source: String,
}

/// The engine's voicemail state.
#[derive(Debug, Default)]
pub(in crate::engine) struct VoicemailCalls {
    calls: HashMap<u64, VmCall>,
    /// The counts the daemon last reported per box (missing: none yet, all zero).
    counts: BTreeMap<BoxNumber, Counts>,
    /// Wrong PINs per caller.
    guard: PinGuard,
    /// Recorded greetings per box: slot → file (from the daemon).
    greetings: BTreeMap<BoxNumber, Vec<(GreetingKind, PathBuf)>>,
    /// `[voicemail]` limits (from the daemon; defaults until then).
    limits: Limits,
    /// `[[chat_rule]]`s: their whitelists let callers ring through instead of reaching the box.
    chat_rules: Vec<ChatRule>,
    /// Calls that rang through a whitelist once already: the next mailbox takes them.
    bypassed: HashSet<u64>,
}

impl Engine {
    /// Who owns mailbox `number`: every extension and every ring group has one (queues arrive
    /// as one more arm here).
    #[must_use]
    pub fn box_owner(&self, number: &str) -> Option<MailboxOwner> {
        if self.extensions.contains_key(number) {
            return Some(MailboxOwner::Extension(number.to_string()));
        }
        if let Some(g) = self.dialplan.group(number) {
            return Some(MailboxOwner::Group { members: g.members.clone() });
        }
        if let Some(members) = self.cfg.callcenter.members_by_number(number) {
            return Some(MailboxOwner::Queue { members });
        }
        None
    }

    /// True when `box_no` is a mailbox.
    pub(in crate::engine) fn is_mailbox(&self, box_no: &str) -> bool {
        self.box_owner(box_no).is_some()
    }

    /// True when the box is used: its owner has `voicemail = true`, or it holds messages. Only
    /// such boxes send unsolicited NOTIFYs, so phones of offices without voicemail are not
    /// pestered with a lamp they never use.
    pub(in crate::engine) fn box_in_use(&self, box_no: &BoxNumber) -> bool {
        let n = box_no.as_str();
        let configured = match self.box_owner(n) {
            Some(MailboxOwner::Extension(e)) => self.dialplan.extension_voicemail(&e),
            Some(MailboxOwner::Group { .. }) => self.dialplan.group(n).is_some_and(|g| g.voicemail),
            // A queue box is reached only through a destination; its lamp lights with messages.
            Some(MailboxOwner::Queue { .. }) | None => false,
        };
        configured || self.voicemail.counts.get(box_no).is_some_and(|c| c.total() > 0)
    }

    /// The `[voicemail]` limits and the `[[chat_rule]]` whitelists (the daemon, at start).
    pub fn set_voicemail_policy(&mut self, limits: Limits, chat_rules: Vec<ChatRule>) {
        self.voicemail.limits = limits;
        self.voicemail.chat_rules = chat_rules;
    }

    /// Seed 001: a caller on the whitelist of the box's `[[chat_rule]]` rings the box's owner
    /// instead of reaching the box, once per call: when that ringing ends unanswered (or busy),
    /// the configured forward applies, and a mailbox then takes the message. `None`: to the box.
    pub(in crate::engine) fn voicemail_bypass(
        &mut self,
        now: Instant,
        id: u64,
        box_no: &str,
    ) -> Option<super::super::dialplan::Resolution> {
        if self.voicemail.bypassed.contains(&id) {
            return None;
        }
        let caller = self.calls.get(&id)?.caller_ext().to_string();
        let rule = self.voicemail.chat_rules.iter().find(|r| r.box_no == box_no)?;
        if !bypasses_voicemail(rule, &caller) {
            return None;
        }
        let ring = self.ring_through(box_no, now)?;
        log::info!("call {id}: {caller} is on box {box_no}'s whitelist; ringing instead of voicemail");
        self.voicemail.bypassed.insert(id);
        Some(ring)
    }

    /// The status whose greeting call `id` hears: `after_hours` when a DID's closed route
    /// brought it, else why the dial plan sent it (busy, DND, available).
    fn greeting_status(&self, id: u64, status: Status) -> Status {
        // A DID's closed route speaks for the whole office: it wins over the owner's own state.
        let after_hours = self.calls.get(&id).and_then(|c| c.trunk.as_ref()).is_some_and(|t| t.after_hours);
        if after_hours {
            Status::AfterHours
        } else {
            status
        }
    }

    /// The daemon's counts of a box (after a store change, and for every box at start).
    pub fn set_voicemail_counts(&mut self, now: Instant, box_no: BoxNumber, counts: Counts) {
        self.mwi_counts(&box_no, counts, now);
        self.voicemail.counts.insert(box_no, counts);
    }

    /// The daemon's recorded greetings of a box (at start and after the owner records one).
    pub fn set_voicemail_greetings(&mut self, box_no: BoxNumber, greetings: Vec<(GreetingKind, PathBuf)>) {
        self.voicemail.greetings.insert(box_no, greetings);
    }

    /// Every mailbox with its counts, by box number (the console's `show voicemail`).
    #[must_use]
    pub fn voicemail_boxes(&self) -> Vec<(BoxNumber, Counts)> {
        let mut boxes: BTreeMap<BoxNumber, Counts> = BTreeMap::new();
        let numbers = self.extensions.keys().cloned().chain(self.dialplan.group_numbers());
        for n in numbers {
            if let Some(b) = BoxNumber::parse(&n) {
                let c = self.voicemail.counts.get(&b).copied().unwrap_or_default();
                boxes.insert(b, c);
            }
        }
        // Boxes with messages whose owner left the config still show.
        for (b, c) in &self.voicemail.counts {
            boxes.entry(b.clone()).or_insert(*c);
        }
        boxes.into_iter().collect()
    }

    /// The daemon began the take of `call` (`None`: it could not): start the recorder there.
    pub fn voicemail_take_ready(&mut self, now: Instant, call: u64, part_path: Option<PathBuf>) {
        let alive = self.calls.contains_key(&call);
        let Some(vm) = self.voicemail.calls.get_mut(&call) else { return };
        let stopped = |flow: &mut Flow| match flow {
            Flow::Caller(f) => f.handle_recording_stopped(0, now),
            Flow::Owner(m) => m.handle_recording_stopped(0, now),
        };
        match part_path {
            Some(path) if alive => {
                vm.take = Some(path.clone());
                log::info!("call {call}: voicemail recording to {}", path.display());
                let path = path.to_string_lossy().into_owned();
                self.out.push_back(Output::Media(MediaCommand::Record { relay: RelayId(call), path }));
            }
            Some(_) => {
                // The caller left between the request and the answer: nothing was said.
                self.out.push_back(Output::Voicemail(VoicemailOp::DiscardTake { call }));
                stopped(&mut vm.flow);
            }
            None => {
                log::warn!("call {call}: voicemail: the store could not start a recording");
                stopped(&mut vm.flow);
            }
        }
        self.drive_voicemail(call, now);
    }

    /// The daemon loaded the box the owner menu of `call` asked for: its messages with their
    /// files. The PIN is the extension's `pin` key; a box without one cannot be opened.
    pub fn voicemail_box_loaded(&mut self, now: Instant, call: u64, messages: Vec<(MessageMeta, PathBuf)>) {
        let Some(vm) = self.voicemail.calls.get(&call) else { return };
        let Flow::Owner(menu) = &vm.flow else { return };
        let box_no = menu.asked_box().cloned();
        let snapshot = box_no.filter(|b| self.is_mailbox(b.as_str())).map(|b| BoxSnapshot {
            pin: self
                .cfg
                .callcenter
                .pin_by_number(b.as_str())
                .map(str::to_string)
                .or_else(|| self.dialplan.mailbox_pin(b.as_str()))
                .unwrap_or_default(),
            messages: messages.iter().map(|(m, _)| m.clone()).collect(),
        });
        let Some(vm) = self.voicemail.calls.get_mut(&call) else { return };
        vm.files = messages.into_iter().map(|(m, p)| (m.id, p)).collect();
        if let Flow::Owner(menu) = &mut vm.flow {
            menu.handle_box_loaded(snapshot, now);
        }
        self.drive_voicemail(call, now);
    }

    /// The box answers call `id` into mailbox `box_no` and starts the caller's flow; `status`
    /// is why the call came (busy, DND, else available) and picks the greeting.
    pub(in crate::engine) fn answer_voicemail(
        &mut self,
        now: Instant,
        id: u64,
        box_no: &str,
        status: Status,
    ) {
        let Some(b) = BoxNumber::parse(box_no).filter(|_| self.is_mailbox(box_no)) else {
            log::warn!("call {id}: voicemail box {box_no} does not exist; 404");
            return self.end_call(id, HangupSide::System, "no such mailbox", 404, now);
        };
        let Some(caller) = self.answer_by_box(now, id) else { return };
        self.start_caller_flow(now, id, b, caller, status);
    }

    /// Call `id`, answered by the box already (an IVR menu), goes into mailbox `box_no`.
    pub(in crate::engine) fn voicemail_for_answered(&mut self, now: Instant, id: u64, box_no: &str) {
        let Some(b) = BoxNumber::parse(box_no).filter(|_| self.is_mailbox(box_no)) else {
            log::warn!("call {id}: voicemail box {box_no} does not exist");
            return self.end_call(id, HangupSide::System, "no such mailbox", 404, now);
        };
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.route = CallRoute::Voicemail;
        let caller = call.caller_ext().to_string();
        self.start_caller_flow(now, id, b, caller, Status::Available);
    }

    fn start_caller_flow(&mut self, now: Instant, id: u64, b: BoxNumber, caller: String, status: Status) {
        let counts = self.voicemail.counts.get(&b).copied().unwrap_or_default();
        let status = self.greeting_status(id, status);
        // The status's own recording, else the default one, else the system prompts.
        let mut recorded = GreetingSet::default();
        for (k, _) in self.voicemail.greetings.get(&b).map(Vec::as_slice).unwrap_or_default() {
            recorded.insert(*k);
        }
        let greeting = choose_greeting(status, recorded);
        log::info!(
            "call {id}: {caller} reaches voicemail box {b} ({} new, {} old; status {status:?}, greeting {greeting:?})",
            counts.new,
            counts.old
        );
        let lang = self.cfg.media.language;
        let mut flow = CallerFlow::new(b, greeting, counts, self.voicemail.limits, lang);
        flow.start(now);
        self.start_vm_call(now, id, Flow::Caller(flow), caller);
    }

    /// The box answers `*92` / `*92<box>` with the owner menu; `box_no` `None` asks for it.
    pub(in crate::engine) fn answer_voicemail_owner(&mut self, now: Instant, id: u64, box_no: Option<&str>) {
        let Some(caller) = self.answer_by_box(now, id) else { return };
        let attempts = self.voicemail.guard.attempts_left(&caller, now);
        let offset = self.cfg.trunk_calls.time_rules.offset();
        let given = box_no.and_then(BoxNumber::parse);
        log::info!("call {id}: {caller} opens the voicemail menu (box {})", box_no.unwrap_or("asked"));
        let mut menu = OwnerMenu::new(given, attempts, self.cfg.media.language, offset);
        menu.start(now);
        self.start_vm_call(now, id, Flow::Owner(Box::new(menu)), caller);
    }

    fn start_vm_call(&mut self, now: Instant, id: u64, flow: Flow, source: String) {
        let vm = VmCall { flow, take: None, started: false, files: HashMap::new(), source };
        self.voicemail.calls.insert(id, vm);
        self.drive_voicemail(id, now);
    }

    /// Answers the caller of `id` with the box itself as the other end (stops phones still
    /// ringing for it); returns the caller's number, `None` when the call ended instead.
    fn answer_by_box(&mut self, now: Instant, id: u64) -> Option<String> {
        self.ring_instead(now, id, Vec::new(), None);
        let call = self.calls.get_mut(&id)?;
        let voice =
            call.offered.iter().find(|f| matches!(f.encoding, Encoding::Pcmu | Encoding::Pcma)).cloned();
        let te = call.offered.iter().find(|f| f.encoding == Encoding::TelephoneEvent).cloned();
        let Some(voice) = voice else {
            // A late offer (no SDP in the INVITE): no codec known to play or record with.
            log::info!("call {id}: voicemail needs an SDP offer; 488");
            self.end_call(id, HangupSide::System, "no SDP offer", 488, now);
            return None;
        };
        call.answered = std::iter::once(voice.clone()).chain(te.clone()).collect();
        call.state = CallState::Answered;
        call.answer = Some(now);
        call.ring_deadline = None;
        call.a_ok_sent = true;
        call.route = CallRoute::Voicemail;
        let caller = call.caller_ext().to_string();
        let formats = call.answered.clone();
        let call = self.calls.get(&id)?;
        let body = self.sdp_for(call, Side::A, &formats, Direction::SendRecv);
        let ok = response_to(&call.invite.common, call.a.peer.addr, 200, Some(&call.a_tag))
            .header("Contact", self.contact_for(&call.to_ext, &call.a.peer))
            .header("Allow", writer::ALLOW)
            .finish_with_body("application/sdp", &body);
        let (txn, cseq, a_peer) = (call.invite_txn, call.invite.common.cseq.seq, call.a.peer);
        self.reply(txn, 200, ok.clone(), now);
        self.set_pending_ok(now, id, Side::A, cseq, ok, a_peer);
        self.out.push_back(Output::Media(MediaCommand::Codec {
            relay: RelayId(id),
            side: Side::A,
            audio_pt: voice.pt,
            telephone_event_pt: te.map(|t| t.pt),
            // Keys also in-band: some phones negotiate telephone-event and send tones.
            inband_dtmf: true,
        }));
        Some(caller)
    }

    /// A key from the caller of a voicemail call; true when it was one (no feature codes then).
    pub(in crate::engine) fn voicemail_digit(
        &mut self,
        id: u64,
        side: Side,
        digit: char,
        now: Instant,
    ) -> bool {
        if side != Side::A {
            return false;
        }
        let Some(vm) = self.voicemail.calls.get_mut(&id) else { return false };
        match &mut vm.flow {
            Flow::Caller(f) => f.handle_digit(digit, now),
            Flow::Owner(m) => m.handle_digit(digit, now),
        }
        self.drive_voicemail(id, now);
        true
    }

    /// Something finished playing to a voicemail caller.
    pub(in crate::engine) fn voicemail_play_done(&mut self, relay: RelayId, side: Side, now: Instant) {
        if side != Side::A {
            return;
        }
        let Some(vm) = self.voicemail.calls.get_mut(&relay.0) else { return };
        match &mut vm.flow {
            Flow::Caller(f) => f.handle_playback_finished(now),
            Flow::Owner(m) => m.handle_playback_finished(now),
        }
        self.drive_voicemail(relay.0, now);
    }

    /// The relay closed a recording: a voicemail take's length.
    pub(in crate::engine) fn voicemail_recorded(&mut self, relay: RelayId, bytes: u64, now: Instant) {
        let Some(vm) = self.voicemail.calls.get_mut(&relay.0) else { return };
        let ms = bytes.saturating_sub(G711_HEADER_BYTES as u64) / G711_BYTES_PER_MS;
        match &mut vm.flow {
            Flow::Caller(f) => f.handle_recording_stopped(ms, now),
            Flow::Owner(m) => m.handle_recording_stopped(ms, now),
        }
        self.drive_voicemail(relay.0, now);
    }

    /// The call ends (either side, any cause): the flow keeps or drops the take.
    pub(in crate::engine) fn voicemail_call_ending(&mut self, now: Instant, id: u64) {
        self.voicemail.bypassed.remove(&id);
        let Some(vm) = self.voicemail.calls.get_mut(&id) else { return };
        match &mut vm.flow {
            Flow::Caller(f) => f.handle_hangup(now),
            Flow::Owner(m) => m.handle_hangup(now),
        }
        self.drive_voicemail(id, now);
    }

    /// A voicemail timer of `id` (review timeout, recorder stop grace, length limit, input).
    pub(in crate::engine) fn on_voicemail_timer(&mut self, id: u64, now: Instant) {
        let Some(vm) = self.voicemail.calls.get_mut(&id) else { return };
        match &mut vm.flow {
            Flow::Caller(f) => f.handle_timeout(now),
            Flow::Owner(m) => m.handle_timeout(now),
        }
        self.drive_voicemail(id, now);
    }

    /// Voicemail clips as media clips.
    fn vm_clips(&self, id: u64, clips: Vec<VmClip>, lead_in: bool) -> Vec<Clip> {
        let lang = self.cfg.media.language;
        let vm = self.voicemail.calls.get(&id);
        let mut media: Vec<Clip> = Vec::new();
        if lead_in {
            media.push(Clip::Silence(LEAD_IN_MS));
        }
        for c in clips {
            match c {
                VmClip::Prompt(p) => media.push(Clip::Prompt { id: p.into(), lang }),
                VmClip::Take => {
                    if let Some(t) = vm.and_then(|v| v.take.as_ref()) {
                        media.push(Clip::File(t.clone()));
                    }
                }
                VmClip::Message(m) => {
                    if let Some(p) = vm.and_then(|v| v.files.get(&m)) {
                        media.push(Clip::File(p.clone()));
                    }
                }
                VmClip::Greeting(kind) => {
                    let box_no: Option<&BoxNumber> = vm.and_then(|v| match &v.flow {
                        Flow::Caller(f) => Some(f.box_no()),
                        Flow::Owner(m) => m.asked_box(),
                    });
                    let file = box_no
                        .and_then(|b| self.voicemail.greetings.get(b))
                        .and_then(|g| g.iter().find(|(k, _)| *k == kind))
                        .map(|(_, p)| p.clone());
                    match file {
                        Some(p) => media.push(Clip::File(p)),
                        None => media
                            .extend(SYSTEM_GREETING.iter().map(|p| Clip::Prompt { id: (*p).into(), lang })),
                    }
                }
            }
        }
        if media.is_empty() {
            media.push(Clip::Silence(LEAD_IN_MS));
        }
        media
    }

    fn play_to_caller(&mut self, id: u64, clips: Vec<VmClip>, lead_in: bool) {
        if !self.calls.contains_key(&id) {
            return;
        }
        let clips = self.vm_clips(id, clips, lead_in);
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips,
            looped: false,
        }));
    }

    /// Carries out what the flow of `id` asks, arms its timer, and forgets it when done.
    fn drive_voicemail(&mut self, id: u64, now: Instant) {
        let Some(vm) = self.voicemail.calls.get_mut(&id) else { return };
        let lead_in = !std::mem::replace(&mut vm.started, true);
        let hang_up = match &mut vm.flow {
            Flow::Caller(f) => {
                let outs: Vec<CallerOutput> = std::iter::from_fn(|| f.poll_output()).collect();
                let box_no = f.box_no().clone();
                self.caller_outputs(id, now, box_no, outs, lead_in)
            }
            Flow::Owner(m) => {
                let outs: Vec<OwnerOutput> = std::iter::from_fn(|| m.poll_output()).collect();
                let box_no = m.logged_in_box().or(m.asked_box()).cloned();
                self.owner_outputs(id, now, box_no, outs, lead_in)
            }
        };
        let Some(vm) = self.voicemail.calls.get(&id) else { return };
        let (done, timer) = match &vm.flow {
            Flow::Caller(f) => (f.is_done(), f.poll_timeout()),
            Flow::Owner(m) => (m.is_done(), m.poll_timeout()),
        };
        if done {
            self.voicemail.calls.remove(&id);
        } else if let Some(at) = timer {
            self.arm(at, TimerKey::Voicemail(id));
        }
        if hang_up && self.calls.contains_key(&id) {
            self.end_call(id, HangupSide::System, "voicemail", 200, now);
        }
    }

    /// The caller flow's outputs; true when it asks to hang up.
    fn caller_outputs(
        &mut self,
        id: u64,
        now: Instant,
        box_no: BoxNumber,
        outs: Vec<CallerOutput>,
        lead_in: bool,
    ) -> bool {
        let mut hang_up = false;
        for out in outs {
            match out {
                CallerOutput::Play(clips) => self.play_to_caller(id, clips, lead_in),
                CallerOutput::StartRecording => {
                    let Some(call) = self.calls.get(&id) else { continue };
                    let caller = call.caller_ext().to_string();
                    let caller_name = call.invite.common.from.display.clone().unwrap_or_default();
                    self.out.push_back(Output::Voicemail(VoicemailOp::BeginMessage {
                        call: id,
                        box_no: box_no.clone(),
                        caller,
                        caller_name,
                        received_unix_ms: self.wall_ms(now),
                    }));
                }
                CallerOutput::StopRecording => {
                    self.out.push_back(Output::Media(MediaCommand::StopRecord { relay: RelayId(id) }));
                }
                CallerOutput::SaveMessage { duration_ms } => {
                    log::info!("call {id}: voicemail: saving a {duration_ms} ms message in box {box_no}");
                    self.out.push_back(Output::Voicemail(VoicemailOp::SaveMessage { call: id, duration_ms }));
                    if let Some(vm) = self.voicemail.calls.get_mut(&id) {
                        vm.take = None;
                    }
                }
                CallerOutput::DiscardTake => {
                    self.out.push_back(Output::Voicemail(VoicemailOp::DiscardTake { call: id }));
                    if let Some(vm) = self.voicemail.calls.get_mut(&id) {
                        vm.take = None;
                    }
                }
                CallerOutput::HangUp => hang_up = true,
            }
        }
        hang_up
    }

    /// The owner menu's outputs; true when it asks to hang up.
    fn owner_outputs(
        &mut self,
        id: u64,
        now: Instant,
        box_no: Option<BoxNumber>,
        outs: Vec<OwnerOutput>,
        lead_in: bool,
    ) -> bool {
        let source = self.voicemail.calls.get(&id).map(|v| v.source.clone()).unwrap_or_default();
        let mut hang_up = false;
        let mut greeting_refused = false;
        for out in outs {
            match out {
                OwnerOutput::Play(clips) => self.play_to_caller(id, clips, lead_in),
                OwnerOutput::LoadBox(b) => {
                    self.out.push_back(Output::Voicemail(VoicemailOp::LoadBox { call: id, box_no: b }));
                }
                OwnerOutput::LoginFailed { box_no } => {
                    self.voicemail.guard.record_failure(&source, Some(&box_no), now);
                }
                OwnerOutput::LoginSucceeded { box_no } => {
                    log::info!("call {id}: {source} logged in to voicemail box {box_no}");
                    self.voicemail.guard.record_success(&source);
                }
                OwnerOutput::SetFolder { id: msg, folder } => {
                    if let Some(b) = box_no.clone() {
                        self.out.push_back(Output::Voicemail(VoicemailOp::SetFolder {
                            box_no: b,
                            id: msg,
                            folder,
                        }));
                    }
                }
                OwnerOutput::Delete { id: msg } => {
                    if let Some(b) = box_no.clone() {
                        self.out.push_back(Output::Voicemail(VoicemailOp::Delete { box_no: b, id: msg }));
                    }
                }
                OwnerOutput::StartRecording { kind } => match box_no.clone() {
                    Some(b) => self.out.push_back(Output::Voicemail(VoicemailOp::BeginGreeting {
                        call: id,
                        box_no: b,
                        kind,
                    })),
                    None => greeting_refused = true,
                },
                OwnerOutput::StopRecording => {
                    self.out.push_back(Output::Media(MediaCommand::StopRecord { relay: RelayId(id) }));
                }
                OwnerOutput::SaveGreeting { kind } => {
                    log::info!("call {id}: voicemail: saving the {} greeting", kind.name());
                    self.out.push_back(Output::Voicemail(VoicemailOp::SaveGreeting { call: id }));
                    if let Some(vm) = self.voicemail.calls.get_mut(&id) {
                        vm.take = None;
                    }
                }
                OwnerOutput::DiscardTake => {
                    self.out.push_back(Output::Voicemail(VoicemailOp::DiscardTake { call: id }));
                    if let Some(vm) = self.voicemail.calls.get_mut(&id) {
                        vm.take = None;
                    }
                }
                OwnerOutput::HangUp => hang_up = true,
            }
        }
        if greeting_refused {
            if let Some(VmCall { flow: Flow::Owner(m), .. }) = self.voicemail.calls.get_mut(&id) {
                m.handle_recording_stopped(0, now);
            }
            let Some(VmCall { flow: Flow::Owner(m), .. }) = self.voicemail.calls.get_mut(&id) else {
                return hang_up;
            };
            let more: Vec<OwnerOutput> = std::iter::from_fn(|| m.poll_output()).collect();
            hang_up |= self.owner_outputs(id, now, box_no, more, false);
        }
        hang_up
    }
}
