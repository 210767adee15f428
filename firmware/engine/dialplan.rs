//! Where a new call from a phone goes (issue 4): ring groups (ring-all, sequential), per
//! extension forwarding (always, busy, no answer, unregistered) and do-not-disturb, feature
//! codes dialled as numbers (`*72…` toggles, pickup `**ext` / `*8`, hot desking `998`/`997`).
//!
//! The engine asks `Engine::dialplan_new_call` what to do with a dialled number before its own
//! extension lookup; the answer is a reply, or a `Planned` ringing step that
//! `Engine::dialplan_attach` starts once the call exists. From then on the dial plan steers
//! the call through its steps (the next member, a forward target, the no-answer destination)
//! on its own timer (`TimerKey::Dialplan`) and when every fork failed.
//! The primitives that need the call's internals (ringing other phones, answering with a prompt,
//! connecting a picker) live in `dialplan_call.rs`, a child of `call.rs`.
//!
//! Runtime toggles (forwards, DND) are kept as overrides of the config and handed to the driver
//! for the store with [`Engine::poll_persist`]; hot-desk logins are not persisted (the phone
//! re-registers after a restart anyway, see `docs/dialplan.md`).

use super::Engine;
use crate::apps::voicemail::mailbox::Status as VmStatus;
use crate::config::{
    target_ok, DialplanConfig, ExtensionFeatures, RingGroupConfig, RingStrategy, HOTDESK_LOGIN,
    HOTDESK_LOGOUT, PIN_DIGITS,
};
use crate::media::{Clip, MediaCommand, RelayId, Side};
use crate::sip::message::Request;
use crate::sip::transaction::ServerTxnId;
use crate::sip::Peer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Most dial-plan steps one call may take (forward → forward → group → no-answer …). A chain
/// longer than this is a loop in the configuration or the toggles: it stops with a log line and
/// the last status.
pub const MAX_FORWARD_HOPS: u32 = 8;
/// A feature-code confirmation prompt is hung up after this even if the player never reports
/// its end (a lost event must not leave the phone off-hook).
pub const PROMPT_MAX: Duration = Duration::from_secs(10);
/// Store key prefix (`meta` keyspace) of an extension's runtime forwarding state.
pub const PERSIST_PREFIX: &str = "dialplan/fwd/";
/// Most pending persistence records: one per extension is enough (later toggles overwrite).
const MAX_DIRTY: usize = 1024;

/// Feature codes dialled as numbers. `<n>` is a number dialled right after the code.
pub mod codes {
    /// `*72<n>`: forward every call to `<n>`.
    pub const FORWARD_ALWAYS_ON: &str = "*72";
    /// `*73`: forward-always off.
    pub const FORWARD_ALWAYS_OFF: &str = "*73";
    /// `*90<n>`: forward when busy (or DND) to `<n>`.
    pub const FORWARD_BUSY_ON: &str = "*90";
    /// `*91`: busy forward off.
    pub const FORWARD_BUSY_OFF: &str = "*91";
    /// `*52<n>`: forward when not answered to `<n>`.
    pub const FORWARD_NO_ANSWER_ON: &str = "*52";
    /// `*53`: no-answer forward off.
    pub const FORWARD_NO_ANSWER_OFF: &str = "*53";
    /// `*54<n>`: forward when no phone is registered to `<n>`.
    pub const FORWARD_UNREGISTERED_ON: &str = "*54";
    /// `*55`: unregistered forward off.
    pub const FORWARD_UNREGISTERED_OFF: &str = "*55";
    /// `*78`: do not disturb on.
    pub const DND_ON: &str = "*78";
    /// `*79`: do not disturb off.
    pub const DND_OFF: &str = "*79";
    /// `*76`: do not disturb toggle.
    pub const DND_TOGGLE: &str = "*76";
    /// `**<ext>`: directed pickup of a call ringing at `<ext>`.
    pub const DIRECTED_PICKUP: &str = "**";
    /// `*8`: pickup of a call ringing in the caller's pickup group.
    pub const GROUP_PICKUP: &str = "*8";
}

/// Which forward a toggle or a view names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardKind {
    /// Every call.
    Always,
    /// While busy or DND.
    Busy,
    /// Not answered in time.
    NoAnswer,
    /// No phone registered.
    Unregistered,
}

/// Runtime overrides of one extension's forwards and DND, as set by feature codes. `None`:
/// the config's value; `Some("")`: switched off; `Some(n)`: forward to `n`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardOverrides {
    /// Forward always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always: Option<String>,
    /// Forward on busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy: Option<String>,
    /// Forward on no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_answer: Option<String>,
    /// Forward when unregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unregistered: Option<String>,
    /// Do not disturb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnd: Option<bool>,
}

impl ForwardOverrides {
    fn slot(&mut self, kind: ForwardKind) -> &mut Option<String> {
        match kind {
            ForwardKind::Always => &mut self.always,
            ForwardKind::Busy => &mut self.busy,
            ForwardKind::NoAnswer => &mut self.no_answer,
            ForwardKind::Unregistered => &mut self.unregistered,
        }
    }
}

/// One extension's effective forwarding for the console (`show forwards`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardView {
    /// The extension.
    pub extension: String,
    /// Forward always target.
    pub always: Option<String>,
    /// Busy target.
    pub busy: Option<String>,
    /// No-answer target and its ring time in seconds.
    pub no_answer: Option<(String, u32)>,
    /// Unregistered target.
    pub unregistered: Option<String>,
    /// Do not disturb.
    pub dnd: bool,
    /// Pickup group.
    pub pickup_group: Option<String>,
    /// Logged in by hot desking from this phone extension.
    pub hot_desk_from: Option<String>,
}

/// A phone logged in as another extension (hot desking).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HotDesk {
    /// The extension the phone is registered as.
    phone_ext: String,
    /// The phone's contact and source (calls to the hot-desk extension go there).
    uri: String,
    peer: Peer,
}

/// One ringing step a call is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// An extension's phones; `no_answer` is where the call goes when the ring time ends.
    Extension { ext: String, no_answer: Option<String> },
    /// A ring group; `waiting` are the sequential members not rung yet.
    Group { number: String, waiting: VecDeque<String>, total_deadline: Option<Instant> },
    /// The box answers with a confirmation prompt and hangs up (feature codes).
    Prompt(&'static str),
    /// An outside number: handed to [`Engine::route_external`].
    External(String),
    /// A mailbox: the box answers and takes a message (`voicemail_call.rs`); the status picks
    /// the greeting (busy or DND when the owner's busy forward led there).
    Voicemail(String, VmStatus),
    /// The voicemail owner menu (`*92`), for this box or asking for one.
    VoicemailOwner(Option<String>),
}

/// What a dialled number resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Resolution {
    /// Ring these contacts (uri, source, extension they belong to) for at most `ring_for`.
    Ring { contacts: Vec<(String, Peer, String)>, step: Step, ring_for: Option<Duration> },
    /// Answer the call with this status.
    Fail(u16),
    /// Nothing to ring: the step itself acts (prompt, outside number).
    Act(Step),
}

/// The answer of [`Engine::dialplan_new_call`].
pub(super) enum NewCall {
    /// The request was answered (feature code status, pickup, failure).
    Handled,
    /// A call is to be created and steered by the dial plan.
    Planned(Box<Planned>),
    /// Not a dial-plan number: the engine's own lookup decides (404).
    NotMine,
}

/// A call the dial plan will steer, before it exists.
#[derive(Debug)]
pub(super) struct Planned {
    resolution: Resolution,
    hops: u32,
    /// What logs, the console and the CDR show instead of the dialled digits (a hot-desk
    /// log-in carries a PIN).
    masked: Option<String>,
}

impl Planned {
    /// The dialled number as it may be shown (logs, console, CDR).
    pub(super) fn shown<'a>(&'a self, dialled: &'a str) -> &'a str {
        self.masked.as_deref().unwrap_or(dialled)
    }

    /// Contacts the first step rings (the engine checks it can take the call first).
    pub(super) fn contact_count(&self) -> usize {
        match &self.resolution {
            Resolution::Ring { contacts, .. } => contacts.len(),
            _ => 0,
        }
    }
}

/// The dial plan's view of a call in progress.
#[derive(Debug, Clone)]
struct CallPlan {
    step: Step,
    /// Extensions whose phones ring now (pickup looks here).
    ringing: Vec<String>,
    /// Fork index → the extension it rings.
    fork_owner: HashMap<usize, String>,
    hops: u32,
    /// When the current step ends (no-answer forward, next member, group timeout).
    deadline: Option<Instant>,
    /// The member or forward target that answered (counted busy while the call lasts).
    answered_by: Option<String>,
}

/// The dial plan's state inside the engine.
#[derive(Debug, Default)]
pub(super) struct Dialplan {
    groups: HashMap<String, RingGroupConfig>,
    features: HashMap<String, ExtensionFeatures>,
    overrides: HashMap<String, ForwardOverrides>,
    calls: HashMap<u64, CallPlan>,
    /// Hot-desk extension → the phone logged in as it.
    hot_desks: HashMap<String, HotDesk>,
    /// Extensions whose overrides changed since the driver last stored them.
    dirty: BTreeSet<String>,
}

impl Dialplan {
    /// The ring group `number`.
    pub(super) fn group(&self, number: &str) -> Option<&RingGroupConfig> {
        self.groups.get(number)
    }

    /// The extension's `voicemail = true`.
    pub(super) fn extension_voicemail(&self, ext: &str) -> bool {
        self.features(ext).voicemail
    }

    /// The PIN of a mailbox in the owner menu: the extension's `pin`, or the ring group's.
    pub(super) fn mailbox_pin(&self, number: &str) -> Option<String> {
        match self.groups.get(number) {
            Some(g) => g.pin.clone(),
            None => self.features(number).pin,
        }
    }

    /// Every ring group's number.
    pub(super) fn group_numbers(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    pub(super) fn new(cfg: &DialplanConfig) -> Dialplan {
        Dialplan {
            groups: cfg.ring_groups.iter().map(|g| (g.number.clone(), g.clone())).collect(),
            features: cfg.extensions.clone().into_iter().collect(),
            ..Dialplan::default()
        }
    }

    /// New ring groups and extension settings (`Engine::reconfigure`); the calls in progress,
    /// the phones' own overrides (`*7x` forwards, DND) and hot-desk logins stay.
    pub(super) fn reconfigure(&mut self, cfg: &DialplanConfig) {
        self.groups = cfg.ring_groups.iter().map(|g| (g.number.clone(), g.clone())).collect();
        self.features = cfg.extensions.clone().into_iter().collect();
    }

    fn features(&self, ext: &str) -> ExtensionFeatures {
        self.features.get(ext).cloned().unwrap_or_default()
    }

    /// The effective target of one forward of `ext` (override, else config).
    pub(super) fn forward(&self, ext: &str, kind: ForwardKind) -> Option<String> {
        let o = self.overrides.get(ext).cloned().unwrap_or_default();
        let f = self.features(ext);
        let (over, conf) = match kind {
            ForwardKind::Always => (o.always, f.forward_always),
            ForwardKind::Busy => (o.busy, f.forward_busy),
            ForwardKind::NoAnswer => (o.no_answer, f.forward_no_answer),
            ForwardKind::Unregistered => (o.unregistered, f.forward_unregistered),
        };
        match over {
            Some(t) if t.is_empty() => None,
            Some(t) => Some(t),
            // `voicemail = true`: busy, no answer and unregistered end in the own mailbox
            // unless a forward of that kind is configured.
            None if conf.is_none() && f.voicemail && kind != ForwardKind::Always => {
                Some(format!("{}{ext}", super::VOICEMAIL_TARGET_PREFIX))
            }
            None => conf,
        }
    }

    fn dnd(&self, ext: &str) -> bool {
        self.overrides.get(ext).and_then(|o| o.dnd).unwrap_or_else(|| self.features(ext).dnd)
    }

    fn set_override(&mut self, ext: &str, f: impl FnOnce(&mut ForwardOverrides)) {
        f(self.overrides.entry(ext.to_string()).or_default());
        if self.dirty.len() < MAX_DIRTY {
            self.dirty.insert(ext.to_string());
        }
    }
}

/// `ext`'s own mailbox reached through its busy forward greets with `status` (busy or DND);
/// any other resolution is left as it is.
fn voicemail_status(r: Resolution, ext: &str, status: VmStatus) -> Resolution {
    match r {
        Resolution::Act(Step::Voicemail(b, _)) if b == ext => Resolution::Act(Step::Voicemail(b, status)),
        r => r,
    }
}

/// Splits a feature-code dial string into (code, argument).
fn feature_code(dialled: &str) -> Option<(&'static str, &str)> {
    use codes::*;
    // Longest and most specific first: `**` before `*8`, two-digit codes before `*8`.
    let all = [
        DIRECTED_PICKUP,
        FORWARD_ALWAYS_ON,
        FORWARD_ALWAYS_OFF,
        FORWARD_BUSY_ON,
        FORWARD_BUSY_OFF,
        FORWARD_NO_ANSWER_ON,
        FORWARD_NO_ANSWER_OFF,
        FORWARD_UNREGISTERED_ON,
        FORWARD_UNREGISTERED_OFF,
        DND_ON,
        DND_OFF,
        DND_TOGGLE,
        GROUP_PICKUP,
    ];
    all.into_iter().find_map(|c| dialled.strip_prefix(c).map(|rest| (c, rest)))
}

impl Engine {
    /// Registered contacts of an extension plus a phone logged in to it by hot desking.
    pub(super) fn contacts_of(&self, ext: &str, now: Instant) -> Vec<(String, Peer)> {
        let mut v: Vec<(String, Peer)> =
            self.registrar.contacts(ext, now).iter().map(|b| (b.uri.clone(), b.peer)).collect();
        if let Some(h) = self.dialplan.hot_desks.get(ext) {
            if self.registrar.is_bound_from(&h.phone_ext, h.peer, now) && !v.iter().any(|(_, p)| *p == h.peer)
            {
                v.push((h.uri.clone(), h.peer));
            }
        }
        v
    }

    fn in_call(&self, ext: &str) -> bool {
        self.active_by_ext.get(ext).copied().unwrap_or(0) > 0
    }

    /// The extension a calling phone presents: the hot-desk extension it is logged in as, else
    /// its own.
    pub(super) fn dialplan_presented_as(&self, own: &str, peer: Peer) -> String {
        self.dialplan
            .hot_desks
            .iter()
            .find(|(_, h)| h.peer == peer && h.phone_ext == own)
            .map(|(ext, _)| ext.clone())
            .unwrap_or_else(|| own.to_string())
    }

    /// Resolves a dialled number (hop `hops` of a chain; `last` = the status to give when the
    /// chain is too long).
    pub(super) fn resolve(&self, number: &str, hops: u32, last: u16, now: Instant) -> Resolution {
        if hops > MAX_FORWARD_HOPS {
            log::warn!("dial plan: more than {MAX_FORWARD_HOPS} forwards at {number}; stopping with {last}");
            return Resolution::Fail(last);
        }
        if let Some(b) = number.strip_prefix(super::VOICEMAIL_TARGET_PREFIX) {
            return Resolution::Act(Step::Voicemail(b.to_string(), VmStatus::Available));
        }
        if let Some(g) = self.dialplan.groups.get(number) {
            return self.resolve_group(g, hops, now);
        }
        if self.extensions.contains_key(number) {
            return self.resolve_extension(number, hops, now);
        }
        if number.len() >= crate::config::MIN_EXTERNAL_DIGITS && number.bytes().all(|b| b.is_ascii_digit()) {
            return Resolution::Act(Step::External(number.to_string()));
        }
        Resolution::Fail(404)
    }

    fn resolve_extension(&self, ext: &str, hops: u32, now: Instant) -> Resolution {
        let dp = &self.dialplan;
        if let Some(t) = dp.forward(ext, ForwardKind::Always) {
            log::info!("dial plan: {ext} forwards every call to {t}");
            return self.resolve(&t, hops + 1, 480, now);
        }
        let busy_forward = |status: VmStatus| match dp.forward(ext, ForwardKind::Busy) {
            Some(t) => {
                log::info!("dial plan: {ext} is busy or DND; forwarding to {t}");
                voicemail_status(self.resolve(&t, hops + 1, 486, now), ext, status)
            }
            None => Resolution::Fail(486),
        };
        if dp.dnd(ext) {
            log::info!("dial plan: {ext} is in do-not-disturb");
            return busy_forward(VmStatus::DoNotDisturb);
        }
        let contacts = self.contacts_of(ext, now);
        if contacts.is_empty() {
            return match dp.forward(ext, ForwardKind::Unregistered) {
                Some(t) => {
                    log::info!("dial plan: {ext} is not registered; forwarding to {t}");
                    self.resolve(&t, hops + 1, 480, now)
                }
                None => Resolution::Fail(480),
            };
        }
        let call_waiting = self.extensions.get(ext).is_none_or(|e| e.call_waiting);
        if self.in_call(ext) && !call_waiting {
            return busy_forward(VmStatus::Busy);
        }
        let no_answer = dp.forward(ext, ForwardKind::NoAnswer);
        let ring_for =
            no_answer.as_ref().map(|_| Duration::from_secs(u64::from(dp.features(ext).forward_no_answer_s)));
        Resolution::Ring {
            contacts: contacts.into_iter().map(|(u, p)| (u, p, ext.to_string())).collect(),
            step: Step::Extension { ext: ext.to_string(), no_answer },
            ring_for,
        }
    }

    /// A member can be rung by a group: registered, not DND, not forwarding everything away.
    fn member_contacts(&self, m: &str, sequential: bool, now: Instant) -> Vec<(String, Peer, String)> {
        let call_waiting = self.extensions.get(m).is_none_or(|e| e.call_waiting);
        // Sequential hunting skips anyone on the phone; ring-all lets call waiting decide.
        let busy = self.in_call(m) && (sequential || !call_waiting);
        if self.dialplan.dnd(m) || busy {
            return Vec::new();
        }
        self.contacts_of(m, now).into_iter().map(|(u, p)| (u, p, m.to_string())).collect()
    }

    fn resolve_group(&self, g: &RingGroupConfig, hops: u32, now: Instant) -> Resolution {
        let total_deadline = g.timeout_s.map(|s| now + Duration::from_secs(u64::from(s)));
        match g.strategy {
            RingStrategy::RingAll => {
                let contacts: Vec<_> =
                    g.members.iter().flat_map(|m| self.member_contacts(m, false, now)).collect();
                if contacts.is_empty() {
                    log::info!("ring group {}: no member can take the call", g.number);
                    return self.group_no_answer(g, hops, now);
                }
                let ring_s = g.timeout_s.unwrap_or(g.ring_s);
                Resolution::Ring {
                    contacts,
                    step: Step::Group { number: g.number.clone(), waiting: VecDeque::new(), total_deadline },
                    ring_for: Some(Duration::from_secs(u64::from(ring_s))),
                }
            }
            RingStrategy::Sequential => {
                let waiting: VecDeque<String> = g.members.iter().cloned().collect();
                self.next_member(g, waiting, total_deadline, hops, now)
            }
        }
    }

    /// The next sequential member that can ring, else the no-answer destination.
    fn next_member(
        &self,
        g: &RingGroupConfig,
        mut waiting: VecDeque<String>,
        total_deadline: Option<Instant>,
        hops: u32,
        now: Instant,
    ) -> Resolution {
        if total_deadline.is_some_and(|d| d <= now) {
            return self.group_no_answer(g, hops, now);
        }
        while let Some(m) = waiting.pop_front() {
            let contacts = self.member_contacts(&m, true, now);
            if contacts.is_empty() {
                log::info!("ring group {}: skipping {m} (unregistered, busy or DND)", g.number);
                continue;
            }
            let mut ring_for = Duration::from_secs(u64::from(g.ring_s));
            if let Some(d) = total_deadline {
                ring_for = ring_for.min(d.saturating_duration_since(now));
            }
            log::info!("ring group {}: ringing {m}", g.number);
            return Resolution::Ring {
                contacts,
                step: Step::Group { number: g.number.clone(), waiting, total_deadline },
                ring_for: Some(ring_for),
            };
        }
        self.group_no_answer(g, hops, now)
    }

    fn group_no_answer(&self, g: &RingGroupConfig, hops: u32, now: Instant) -> Resolution {
        match &g.no_answer {
            Some(t) => {
                log::info!("ring group {}: no answer; going to {t}", g.number);
                self.resolve(t, hops + 1, 480, now)
            }
            None if g.voicemail => {
                log::info!("ring group {}: no answer; to its mailbox", g.number);
                Resolution::Act(Step::Voicemail(g.number.clone(), VmStatus::Available))
            }
            None => Resolution::Fail(480),
        }
    }

    /// Seed 001's whitelist: ring `number` (an extension's phones, DND or not, or a ring group)
    /// as a normal call instead of its mailbox; `None` when nothing can ring.
    pub(super) fn ring_through(&self, number: &str, now: Instant) -> Option<Resolution> {
        if let Some(g) = self.dialplan.groups.get(number) {
            let r = self.resolve_group(g, 0, now);
            return matches!(r, Resolution::Ring { .. }).then_some(r);
        }
        let contacts = self.contacts_of(number, now);
        if contacts.is_empty() {
            return None;
        }
        let f = self.dialplan.features(number);
        let mailbox = format!("{}{number}", super::VOICEMAIL_TARGET_PREFIX);
        Some(Resolution::Ring {
            contacts: contacts.into_iter().map(|(u, p)| (u, p, number.to_string())).collect(),
            step: Step::Extension { ext: number.to_string(), no_answer: Some(mailbox) },
            ring_for: Some(Duration::from_secs(u64::from(f.forward_no_answer_s))),
        })
    }

    // ---- a new INVITE ------------------------------------------------------------------------

    /// Decides what a new call from `from_ext` to `dialled` does. Feature codes and pickups are
    /// answered here; numbers the dial plan knows become a [`Planned`] call.
    pub(super) fn dialplan_new_call(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        from_ext: &str,
        dialled: &str,
    ) -> NewCall {
        let prompt = |p: &'static str| {
            NewCall::Planned(Box::new(Planned {
                resolution: Resolution::Act(Step::Prompt(p)),
                hops: 0,
                masked: None,
            }))
        };
        let reply = |e: &mut Engine, code: u16| {
            e.reply_status(txn, req, peer, code, &[], now);
            NewCall::Handled
        };
        if dialled == HOTDESK_LOGOUT {
            let own = req.common.from.uri.user_unescaped().unwrap_or_default();
            let before = self.dialplan.hot_desks.len();
            self.dialplan.hot_desks.retain(|ext, h| {
                let mine = h.peer == peer && h.phone_ext == own;
                if mine {
                    log::info!("hot desk: {own} logged out of {ext}");
                }
                !mine
            });
            return if self.dialplan.hot_desks.len() < before {
                prompt(PROMPT_OFF)
            } else {
                reply(self, 404)
            };
        }
        if let Some(rest) = dialled.strip_prefix(HOTDESK_LOGIN) {
            return self.hot_desk_login(now, peer, txn, req, rest);
        }
        if let Some(rest) = dialled.strip_prefix(super::VOICEMAIL_OWNER_CODE) {
            if rest.bytes().all(|b| b.is_ascii_digit()) {
                // `*92`: the caller's own box when it has one, else the menu asks.
                let own = self.is_mailbox(from_ext).then(|| from_ext.to_string());
                let box_no = if rest.is_empty() { own } else { Some(rest.to_string()) };
                return NewCall::Planned(Box::new(Planned {
                    resolution: Resolution::Act(Step::VoicemailOwner(box_no)),
                    hops: 0,
                    masked: None,
                }));
            }
        }
        if let Some((code, arg)) = feature_code(dialled) {
            return self.feature(now, peer, txn, req, from_ext, code, arg);
        }
        // Call-center agent codes `*40`-`*47` (`queue_call.rs`).
        if let Some(p) = self.agent_feature_code(now, from_ext, dialled) {
            return prompt(p);
        }
        let mailbox = dialled.starts_with(super::VOICEMAIL_TARGET_PREFIX);
        if !mailbox && !self.dialplan.groups.contains_key(dialled) && !self.extensions.contains_key(dialled) {
            return NewCall::NotMine;
        }
        match self.resolve(dialled, 0, 480, now) {
            Resolution::Fail(code) => reply(self, code),
            resolution => NewCall::Planned(Box::new(Planned { resolution, hops: 0, masked: None })),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn feature(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        ext: &str,
        code: &'static str,
        arg: &str,
    ) -> NewCall {
        use codes::*;
        let prompt = |p: &'static str| {
            NewCall::Planned(Box::new(Planned {
                resolution: Resolution::Act(Step::Prompt(p)),
                hops: 0,
                masked: None,
            }))
        };
        if !self.extensions.contains_key(ext) {
            self.reply_status(txn, req, peer, 403, &[], now);
            return NewCall::Handled;
        }
        let toggle = match code {
            FORWARD_ALWAYS_ON | FORWARD_ALWAYS_OFF => Some(ForwardKind::Always),
            FORWARD_BUSY_ON | FORWARD_BUSY_OFF => Some(ForwardKind::Busy),
            FORWARD_NO_ANSWER_ON | FORWARD_NO_ANSWER_OFF => Some(ForwardKind::NoAnswer),
            FORWARD_UNREGISTERED_ON | FORWARD_UNREGISTERED_OFF => Some(ForwardKind::Unregistered),
            _ => None,
        };
        let on = matches!(
            code,
            FORWARD_ALWAYS_ON | FORWARD_BUSY_ON | FORWARD_NO_ANSWER_ON | FORWARD_UNREGISTERED_ON
        );
        if let Some(kind) = toggle {
            let target = if on {
                let internal =
                    |t: &str| self.extensions.contains_key(t) || self.dialplan.groups.contains_key(t);
                if let Err(why) = target_ok(arg, &internal).and_then(|()| {
                    if arg == ext {
                        Err("an extension cannot forward to itself".into())
                    } else {
                        Ok(())
                    }
                }) {
                    log::info!("dial plan: {ext} dialled {code}{arg}: {why}");
                    // 484: the phone shows "address incomplete"; nothing changed.
                    self.reply_status(txn, req, peer, 484, &[], now);
                    return NewCall::Handled;
                }
                arg.to_string()
            } else {
                if !arg.is_empty() {
                    self.reply_status(txn, req, peer, 484, &[], now);
                    return NewCall::Handled;
                }
                String::new()
            };
            log::info!(
                "dial plan: {ext} sets {kind:?} forward {}",
                if target.is_empty() { "off".to_string() } else { format!("to {target}") }
            );
            self.dialplan.set_override(ext, |o| *o.slot(kind) = Some(target));
            return prompt(if on { PROMPT_ON } else { PROMPT_OFF });
        }
        match code {
            DND_ON | DND_OFF | DND_TOGGLE if arg.is_empty() => {
                let dnd = match code {
                    DND_ON => true,
                    DND_OFF => false,
                    _ => !self.dialplan.dnd(ext),
                };
                log::info!("dial plan: {ext} sets do-not-disturb {}", if dnd { "on" } else { "off" });
                self.dialplan.set_override(ext, |o| o.dnd = Some(dnd));
                prompt(if dnd { PROMPT_ON } else { PROMPT_OFF })
            }
            DIRECTED_PICKUP if !arg.is_empty() => {
                let target = self.ringing_at(|e| e == arg);
                self.pickup(now, peer, txn, req, ext, target)
            }
            GROUP_PICKUP if arg.is_empty() => {
                let group = self.dialplan.features(ext).pickup_group;
                let target = match group {
                    Some(g) => self.ringing_at(|e| {
                        e != ext && self.dialplan.features(e).pickup_group.as_deref() == Some(g.as_str())
                    }),
                    None => None,
                };
                self.pickup(now, peer, txn, req, ext, target)
            }
            _ => {
                // An unknown code: 404, the same as an unknown number.
                self.reply_status(txn, req, peer, 404, &[], now);
                NewCall::Handled
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pickup(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        picker: &str,
        target: Option<u64>,
    ) -> NewCall {
        let Some(id) = target else {
            log::info!("pickup by {picker}: no call is ringing there");
            // 404 "Not Found": the documented answer when nothing rings (docs/dialplan.md).
            self.reply_status(txn, req, peer, 404, &[], now);
            return NewCall::Handled;
        };
        match self.connect_picker(now, id, peer, txn, req, picker) {
            Ok(()) => {
                if let Some(plan) = self.dialplan.calls.get_mut(&id) {
                    plan.answered_by = None;
                    plan.deadline = None;
                    plan.ringing.clear();
                }
                log::info!("call {id}: picked up by {picker}");
            }
            Err(code) => self.reply_status(txn, req, peer, code, &[], now),
        }
        NewCall::Handled
    }

    /// The oldest unanswered call ringing at an extension `which` accepts.
    fn ringing_at(&self, which: impl Fn(&str) -> bool) -> Option<u64> {
        let mut ids: Vec<u64> = self
            .dialplan
            .calls
            .iter()
            .filter(|(_, p)| p.ringing.iter().any(|e| which(e)))
            .map(|(id, _)| *id)
            .collect();
        // Calls that reached their extension without the dial plan (other code paths).
        ids.extend(
            self.calls
                .values()
                .filter(|c| !self.dialplan.calls.contains_key(&c.id_of()) && which(c.callee_ext()))
                .map(|c| c.id_of()),
        );
        ids.sort_unstable();
        ids.into_iter().find(|id| self.is_unanswered(*id))
    }

    fn hot_desk_login(
        &mut self,
        now: Instant,
        peer: Peer,
        txn: ServerTxnId,
        req: &Request,
        rest: &str,
    ) -> NewCall {
        let own = req.common.from.uri.user_unescaped().unwrap_or_default();
        // PINs are four digits: the authentication guard's block also stops guessing them.
        if self.guard.is_blocked(peer.addr.ip(), now) {
            self.reply_status(txn, req, peer, 403, &[], now);
            return NewCall::Handled;
        }
        let split = rest.len().checked_sub(PIN_DIGITS).filter(|n| *n > 0);
        let (ext, pin) = match split.and_then(|n| Some((rest.get(..n)?, rest.get(n..)?))) {
            Some(x) => x,
            None => {
                self.reply_status(txn, req, peer, 484, &[], now);
                return NewCall::Handled;
            }
        };
        let expected = self.extensions.contains_key(ext).then(|| self.dialplan.features(ext).pin).flatten();
        if expected.as_deref() != Some(pin) {
            log::info!("hot desk: {own} from {peer} gave a wrong PIN (or no PIN is set) for {ext}");
            if self.guard.record_failure(peer.addr.ip(), now) {
                log::warn!("ALARM: {} blocked for repeated hot-desk PIN failures", peer.addr.ip());
            }
            self.reply_status(txn, req, peer, 403, &[], now);
            return NewCall::Handled;
        }
        let uri = self.registrar.contacts(&own, now).iter().find(|b| b.peer == peer).map(|b| b.uri.clone());
        let Some(uri) = uri else {
            // Only a registered phone can be rung at its contact.
            self.reply_status(txn, req, peer, 480, &[], now);
            return NewCall::Handled;
        };
        // One phone holds one hot-desk login; a new login replaces its previous one.
        self.dialplan.hot_desks.retain(|_, h| h.peer != peer);
        self.dialplan.hot_desks.insert(ext.to_string(), HotDesk { phone_ext: own.clone(), uri, peer });
        log::info!("hot desk: {own} at {peer} logged in as {ext}");
        NewCall::Planned(Box::new(Planned {
            resolution: Resolution::Act(Step::Prompt(PROMPT_ON)),
            hops: 0,
            masked: Some(format!("{HOTDESK_LOGIN}{ext}{}", "*".repeat(PIN_DIGITS))),
        }))
    }

    // ---- steering a call -----------------------------------------------------------------------

    /// The call `id` now exists: start its first step.
    pub(super) fn dialplan_attach(&mut self, now: Instant, id: u64, planned: Planned, display: Option<&str>) {
        let plan = CallPlan {
            step: Step::Prompt(PROMPT_OFF),
            ringing: Vec::new(),
            fork_owner: HashMap::new(),
            hops: planned.hops,
            deadline: None,
            answered_by: None,
        };
        self.dialplan.calls.insert(id, plan);
        if let Some(m) = &planned.masked {
            self.rename_callee(id, m);
        }
        self.apply(now, id, planned.resolution, display);
    }

    /// Carries out a resolution on an existing call.
    fn apply(&mut self, now: Instant, id: u64, resolution: Resolution, display: Option<&str>) {
        match resolution {
            Resolution::Fail(code) => {
                self.end_call(id, super::cdr::HangupSide::System, &format!("dial plan: {code}"), code, now)
            }
            Resolution::Act(Step::Prompt(p)) => {
                if let Some(plan) = self.dialplan.calls.get_mut(&id) {
                    plan.step = Step::Prompt(p);
                    plan.deadline = Some(now + PROMPT_MAX);
                }
                self.arm(now + PROMPT_MAX, super::TimerKey::Dialplan(id));
                self.answer_with_prompt(now, id, p);
            }
            Resolution::Act(Step::External(n)) => {
                if let Some(plan) = self.dialplan.calls.get_mut(&id) {
                    plan.step = Step::External(n.clone());
                    plan.ringing.clear();
                }
                self.route_external(now, id, &n);
            }
            Resolution::Act(Step::Voicemail(b, status)) => {
                if let Some(ring) = self.voicemail_bypass(now, id, &b) {
                    return self.apply(now, id, ring, display);
                }
                if let Some(plan) = self.dialplan.calls.get_mut(&id) {
                    plan.step = Step::Voicemail(b.clone(), status);
                    plan.ringing.clear();
                    plan.deadline = None;
                }
                self.answer_voicemail(now, id, &b, status);
            }
            Resolution::Act(Step::VoicemailOwner(b)) => {
                if let Some(plan) = self.dialplan.calls.get_mut(&id) {
                    plan.step = Step::VoicemailOwner(b.clone());
                    plan.ringing.clear();
                    plan.deadline = None;
                }
                self.answer_voicemail_owner(now, id, b.as_deref());
            }
            Resolution::Act(step) => {
                log::warn!("call {id}: dial plan step {step:?} has nothing to ring");
                self.end_call(id, super::cdr::HangupSide::System, "dial plan", 480, now);
            }
            Resolution::Ring { contacts, step, ring_for } => {
                let deadline = ring_for.map(|d| now + d);
                let ringing: Vec<String> = {
                    let mut v: Vec<String> = contacts.iter().map(|c| c.2.clone()).collect();
                    v.dedup();
                    v
                };
                let started = self.ring_instead(now, id, contacts, display);
                // While the dial plan has a next step, its own timer rules; the box-wide ring
                // timeout applies to the last step only.
                let final_step = deadline.is_none();
                self.set_ring_deadline(now, id, final_step);
                let Some(plan) = self.dialplan.calls.get_mut(&id) else { return };
                plan.step = step;
                plan.ringing = ringing;
                plan.fork_owner.extend(started);
                plan.deadline = deadline;
                if let Some(d) = deadline {
                    self.arm(d, super::TimerKey::Dialplan(id));
                }
            }
        }
    }

    /// The single place an outside number is reached from the dial plan: the trunks'
    /// outbound routing (`trunkcalls.rs`) takes the call on, or says how it ends.
    pub(super) fn route_external(&mut self, now: Instant, id: u64, number: &str) {
        if let Err(code) = self.forward_to_external(now, id, number) {
            log::warn!("call {id}: forward to outside number {number} refused ({code})");
            self.end_call(id, super::cdr::HangupSide::System, "no outbound route", code, now);
        }
    }

    /// The dial plan's timer for `id` fired.
    pub(super) fn on_dialplan_timer(&mut self, id: u64, now: Instant) {
        let Some(plan) = self.dialplan.calls.get(&id) else { return };
        if plan.deadline.is_none_or(|d| d > now) {
            return;
        }
        match &plan.step {
            Step::Prompt(_) => {
                log::info!("call {id}: feature prompt did not finish; hanging up");
                self.end_call(id, super::cdr::HangupSide::System, "feature code", 200, now);
            }
            _ => {
                if !self.advance(now, id, None) {
                    self.end_call(id, super::cdr::HangupSide::System, "no answer", 480, now);
                }
            }
        }
    }

    /// Every fork of a dial-plan call failed with `code`: true when the dial plan took the call
    /// on to another step (the engine then does not end it).
    pub(super) fn dialplan_forks_failed(&mut self, now: Instant, id: u64, code: u16) -> bool {
        if !self.dialplan.calls.contains_key(&id) {
            return false;
        }
        self.advance(now, id, Some(code))
    }

    /// Moves a call to its next step after a timeout (`failed` None) or a failure of every fork.
    fn advance(&mut self, now: Instant, id: u64, failed: Option<u16>) -> bool {
        let Some(plan) = self.dialplan.calls.get_mut(&id) else { return false };
        plan.deadline = None;
        // Hops count forwards, not the members of one sequential hunt.
        let hops = plan.hops;
        let step = plan.step.clone();
        let busy = matches!(failed, Some(486 | 600 | 603));
        let group_number = match &step {
            Step::Group { number, .. } => Some(number.clone()),
            _ => None,
        };
        let step_was_group = group_number.is_some();
        let resolution = match step {
            Step::Extension { ext, no_answer } => {
                let target = if busy { self.dialplan.forward(&ext, ForwardKind::Busy) } else { no_answer };
                match target {
                    Some(t) => {
                        let why =
                            failed.map_or_else(|| "no answer in time".to_string(), |c| format!("status {c}"));
                        log::info!("call {id}: {ext} did not take the call ({why}); forwarding to {t}");
                        let r = self.resolve(&t, hops + 1, failed.unwrap_or(480), now);
                        if busy {
                            voicemail_status(r, &ext, VmStatus::Busy)
                        } else {
                            r
                        }
                    }
                    None => return false,
                }
            }
            Step::Group { number, waiting, total_deadline } => {
                let Some(g) = self.dialplan.groups.get(&number).cloned() else { return false };
                match g.strategy {
                    RingStrategy::Sequential => self.next_member(&g, waiting, total_deadline, hops, now),
                    RingStrategy::RingAll => self.group_no_answer(&g, hops, now),
                }
            }
            Step::Prompt(_) | Step::External(_) | Step::Voicemail(..) | Step::VoicemailOwner(_) => {
                return false
            }
        };
        if let Resolution::Fail(code) = resolution {
            // Nothing further. An extension's own failure (busy, declined) is what the caller
            // gets; a group or a timeout ends with the dial plan's status (480 by default).
            if failed.is_none() || step_was_group {
                self.end_call(id, super::cdr::HangupSide::System, "no answer", code, now);
                return true;
            }
            return false;
        }
        let same_group = matches!(&resolution,
            Resolution::Ring { step: Step::Group { number, .. }, .. } if Some(number) == group_number.as_ref());
        if let Some(plan) = self.dialplan.calls.get_mut(&id) {
            plan.hops = if same_group { hops } else { hops + 1 };
        }
        self.apply(now, id, resolution, None);
        true
    }

    /// A fork of a dial-plan call won: its extension counts as busy while the call lasts.
    pub(super) fn dialplan_answered(&mut self, id: u64, fork: usize) {
        let Some(plan) = self.dialplan.calls.get_mut(&id) else { return };
        plan.deadline = None;
        plan.ringing.clear();
        let owner = plan.fork_owner.get(&fork).cloned();
        let callee = self.calls.get(&id).map(|c| c.callee_ext().to_string());
        if let Some(o) = owner.filter(|o| Some(o) != callee.as_ref()) {
            self.busy_add(&o, 1);
            if let Some(plan) = self.dialplan.calls.get_mut(&id) {
                plan.answered_by = Some(o);
            }
        }
    }

    /// The ring-group member or forward target who answered call `id`, when it is not the
    /// dialled extension itself.
    pub(super) fn dialplan_answered_by(&self, id: u64) -> Option<String> {
        self.dialplan.calls.get(&id).and_then(|p| p.answered_by.clone())
    }

    /// The call ended: forget it.
    pub(super) fn dialplan_call_ended(&mut self, id: u64) {
        if let Some(plan) = self.dialplan.calls.remove(&id) {
            if let Some(o) = plan.answered_by {
                self.busy_add(&o, -1);
            }
        }
    }

    /// A prompt finished playing: feature-code calls hang up.
    pub(super) fn dialplan_play_done(&mut self, relay: RelayId, side: Side, now: Instant) {
        let id = relay.0;
        if side == Side::A && matches!(self.dialplan.calls.get(&id).map(|p| &p.step), Some(Step::Prompt(_))) {
            self.end_call(id, super::cdr::HangupSide::System, "feature code", 200, now);
        }
    }

    /// Plays a confirmation prompt to the caller of an answered feature-code call.
    pub(super) fn play_prompt(&mut self, id: u64, prompt: &'static str) {
        let lang = self.cfg.media.language;
        self.out.push_back(super::Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips: vec![Clip::Silence(200), Clip::Prompt { id: prompt.into(), lang }],
            looped: false,
        }));
    }

    // ---- persistence and console -------------------------------------------------------------

    /// The next runtime forwarding state to store: (`meta` key, JSON). Drain after each input
    /// like [`Engine::poll_output`].
    #[must_use]
    pub fn poll_persist(&mut self) -> Option<(String, String)> {
        let ext = self.dialplan.dirty.pop_first()?;
        let o = self.dialplan.overrides.get(&ext).cloned().unwrap_or_default();
        let json = serde_json::to_string(&o).unwrap_or_else(|_| "{}".into());
        Some((format!("{PERSIST_PREFIX}{ext}"), json))
    }

    /// The store key of an extension's runtime forwarding state.
    pub fn persist_key(ext: &str) -> String {
        format!("{PERSIST_PREFIX}{ext}")
    }

    /// Restores an extension's runtime forwarding state stored by [`Engine::poll_persist`]
    /// (at start). A value that does not decode is ignored with a warning.
    pub fn restore_forwards(&mut self, ext: &str, json: &str) {
        if !self.extensions.contains_key(ext) {
            return;
        }
        match serde_json::from_str::<ForwardOverrides>(json) {
            Ok(o) => {
                self.dialplan.overrides.insert(ext.to_string(), o);
            }
            Err(e) => log::warn!("stored forwarding state of {ext} ignored: {e}"),
        }
    }

    /// Effective forwarding, DND and hot desking of every extension, by number.
    pub fn forwards(&self) -> Vec<ForwardView> {
        let dp = &self.dialplan;
        let mut v: Vec<ForwardView> = self
            .extensions
            .keys()
            .map(|e| ForwardView {
                extension: e.clone(),
                always: dp.forward(e, ForwardKind::Always),
                busy: dp.forward(e, ForwardKind::Busy),
                no_answer: dp
                    .forward(e, ForwardKind::NoAnswer)
                    .map(|t| (t, dp.features(e).forward_no_answer_s)),
                unregistered: dp.forward(e, ForwardKind::Unregistered),
                dnd: dp.dnd(e),
                pickup_group: dp.features(e).pickup_group,
                hot_desk_from: dp.hot_desks.get(e).map(|h| h.phone_ext.clone()),
            })
            .collect();
        v.sort_by(|a, b| (a.extension.len(), &a.extension).cmp(&(b.extension.len(), &b.extension)));
        v
    }

    /// The ring groups, by number.
    pub fn ring_groups(&self) -> Vec<RingGroupConfig> {
        let mut v: Vec<RingGroupConfig> = self.dialplan.groups.values().cloned().collect();
        v.sort_by(|a, b| (a.number.len(), &a.number).cmp(&(b.number.len(), &b.number)));
        v
    }

    /// Hot-desk logins as registrations of the extension they log in as (console).
    pub(super) fn hot_desk_registrations(&self, now: Instant) -> Vec<super::RegistrationView> {
        let mut v: Vec<super::RegistrationView> = self
            .dialplan
            .hot_desks
            .iter()
            .filter_map(|(ext, h)| {
                let b = self.registrar.contacts(&h.phone_ext, now).into_iter().find(|b| b.peer == h.peer)?;
                Some(super::RegistrationView {
                    extension: ext.clone(),
                    contact: h.uri.clone(),
                    peer: h.peer,
                    expires_in_s: b.expires_at.saturating_duration_since(now).as_secs(),
                    user_agent: Some(format!("hot desk from {}", h.phone_ext)),
                })
            })
            .collect();
        v.sort_by(|a, b| a.extension.cmp(&b.extension));
        v
    }
}

/// The prompt confirming a feature switched on (or a hot-desk login).
const PROMPT_ON: &str = "common.feature_on";
/// The prompt confirming a feature switched off (or a hot-desk logout).
const PROMPT_OFF: &str = "common.feature_off";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_codes_match_the_most_specific_code_first() {
        assert_eq!(feature_code("**201"), Some(("**", "201")));
        assert_eq!(feature_code("*8"), Some(("*8", "")));
        assert_eq!(feature_code("*72202"), Some(("*72", "202")));
        assert_eq!(feature_code("*76"), Some(("*76", "")));
        assert_eq!(feature_code("*99"), None);
        assert_eq!(feature_code("201"), None);
    }

    #[test]
    fn overrides_beat_the_config_and_empty_means_off() {
        let mut cfg = DialplanConfig::default();
        cfg.extensions.insert(
            "201".into(),
            ExtensionFeatures { forward_busy: Some("202".into()), dnd: true, ..Default::default() },
        );
        let mut dp = Dialplan::new(&cfg);
        assert_eq!(dp.forward("201", ForwardKind::Busy).as_deref(), Some("202"));
        assert!(dp.dnd("201"));
        dp.set_override("201", |o| {
            o.busy = Some(String::new());
            o.dnd = Some(false);
        });
        assert_eq!(dp.forward("201", ForwardKind::Busy), None);
        assert!(!dp.dnd("201"));
        assert!(dp.dirty.contains("201"));
    }

    #[test]
    fn overrides_round_trip_through_json() {
        let o = ForwardOverrides { always: Some("202".into()), dnd: Some(true), ..Default::default() };
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<ForwardOverrides>(&json).unwrap(), o);
        assert_eq!(serde_json::from_str::<ForwardOverrides>("{}").unwrap(), ForwardOverrides::default());
    }
}
