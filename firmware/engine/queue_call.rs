//! Call-center queues in the engine (issue 6): the engine drives one sans-IO [`Acd`]
//! (`apps::callcenter`) the way `ivr_call.rs` drives IVR sessions. A child of `call.rs` so it
//! can answer a call and hand it on.
//!
//! Inputs to the ACD: a call routed to a queue ([`Engine::enter_queue`]: a DID, an IVR key, a
//! phone dialling the queue's number, another queue's overflow) → `caller_entered`; the
//! caller's or the agent's hangup → `caller_hung_up` (it ends the agent's talk as well); an
//! agent leg's 200 → `agent_answered`, its 486/603 → `agent_declined`; agent hold/unhold
//! re-INVITEs → `agent_hold`/`agent_unhold`; console and feature-code commands. After every
//! input the engine drains the ACD's outputs ([`Engine::queue_drain`]) and arms one
//! [`TimerKey::Queue`] at its `poll_timeout`.
//!
//! Outputs: `Answer` → the box answers the caller (the IVR's answer), plays the greeting and
//! then music on hold; `Announce` → prompts, then music again; `Ring` → a UAC leg to the
//! agent's phone for side B (the transfer helper's several-pending-legs primitive,
//! [`LegKind::Queue`]); `StopRinging` → CANCEL that leg; `Connect` → the leg that answered
//! has taken side B already; the whisper prompt plays to the agent; `Route` → the
//! destination (as an IVR key would route it); `RejectBusy` → 486 before the answer, the
//! "all agents are busy" prompt and BYE after; `Event` → [`Output::QueueEvent`].
//!
//! Deviations: the whisper plays
//! to the agent while the relay already bridges (the caller may hear the agent's first words
//! over it, not the whisper); a leg that fails for another reason than busy/decline (not
//! registered, 480) is left to the ACD's ring timer, so the ACD sees a no-answer.

use super::super::cdr::HangupSide;
use super::transfer::LegKind;
use super::Side;
use crate::apps::callcenter::{Acd, AcdConfig, AgentError, AgentState, Cause, Output as AcdOutput};
use crate::apps::timerules::Destination;
use crate::media::{Clip, MediaCommand, RelayId};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::super::{Engine, Output, TimerKey};

/// Extra ring time of an agent leg beyond the queue's `ring_time`: the ACD ends the attempt
/// itself, the leg's own deadline is only a safety net if an output were lost.
const LEG_SLACK: Duration = Duration::from_secs(5);

/// Silence before the first prompt: the caller's phone opens its audio path after the 200.
const LEAD_IN_MS: u32 = 300;

/// The call-center agent codes: `*4` and one digit (docs/callcenter.md).
pub const AGENT_CODE_PREFIX: &str = "*4";

/// Prompt of a refused agent code.
const NOT_ALLOWED: &str = "agent.not_allowed";

/// The busy prompt is hung up after this even if the player never reports its end (the prompt
/// lasts about 3 s).
const BUSY_PROMPT_GUARD: Duration = Duration::from_secs(15);

/// Prompt of a busy answer once the caller is answered.
const BUSY_PROMPT: &str = "queue.all_agents_busy";

/// What the engine keeps about a call in a queue.
#[derive(Debug, Clone)]
struct QueueCall {
    /// The queue's name.
    queue: String,
    /// A prompt plays; music on hold follows it.
    music_after_play: bool,
    /// The busy prompt plays; the call ends when it has, or at this guard.
    hang_up_after_play: Option<Instant>,
    /// The agent talking to the caller, once connected.
    agent: Option<String>,
}

/// The ACD and the calls it holds.
#[derive(Debug)]
pub(in crate::engine) struct QueueCalls {
    acd: Acd,
    calls: HashMap<u64, QueueCall>,
    /// The queue timer armed last, to arm only when the ACD's deadline moves earlier.
    armed: Option<Instant>,
    /// Agents on an ordinary call, by call: (agent, `true` for its outbound call over a trunk,
    /// `false` for an internal call).
    personal: HashMap<u64, Vec<(String, bool)>>,
}

impl QueueCalls {
    /// The ACD's latest events, for the live monitor (`engine::monitor`).
    pub(in crate::engine) fn recent_events(&self) -> &crate::apps::callcenter::EventRing {
        self.acd.recent_events()
    }

    /// The ACD for `cfg`; a configuration the ACD refuses (the loader checks it first) leaves an
    /// empty ACD and an error in the log rather than a box that does not start.
    pub(in crate::engine) fn new(cfg: AcdConfig, now: Instant, unix_ms: u64) -> QueueCalls {
        let acd = Acd::new(cfg, now, unix_ms).unwrap_or_else(|e| {
            log::error!("call center: configuration refused ({e:?}); no queues");
            Acd::empty(now, unix_ms)
        });
        QueueCalls { acd, calls: HashMap::new(), armed: None, personal: HashMap::new() }
    }

    /// A new ACD for `cfg` (`Engine::reconfigure`) when no caller is in a queue; agents logged
    /// in before are logged in again. `false`, and nothing changed, while callers wait or talk
    /// to a queue: their calls hold indices into the old ACD.
    pub(in crate::engine) fn reconfigure(&mut self, cfg: AcdConfig, now: Instant, unix_ms: u64) -> bool {
        if !self.calls.is_empty() {
            return false;
        }
        let Ok(mut acd) = Acd::new(cfg, now, unix_ms) else {
            log::error!("call center: new configuration refused; the old queues stay");
            return false;
        };
        for agent in self.acd.agent_ids() {
            let was_in = self.acd.agent_status(&agent).is_some_and(|(s, _)| s != AgentState::LoggedOut);
            if was_in && acd.agent_status(&agent).is_some() {
                let _ = acd.login(now, &agent, Cause::Supervisor);
            }
        }
        self.acd = acd;
        self.armed = None;
        true
    }
}

/// A queue as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueView {
    /// Queue name.
    pub name: String,
    /// The number phones dial, if any.
    pub number: Option<String>,
    /// Callers waiting (not yet answered by an agent).
    pub waiting: usize,
    /// The longest wait in seconds.
    pub longest_wait_s: u64,
    /// Members staffed (logged in and working the queue).
    pub staffed: usize,
    /// Members in all.
    pub members: usize,
    /// Strategy, as configured (`ring_all`, ...).
    pub strategy: String,
}

/// An agent as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    /// Agent id (extension).
    pub agent: String,
    /// State.
    pub state: AgentState,
    /// The custom other-work name, if in one.
    pub label: Option<String>,
    /// Seconds in this state.
    pub since_s: u64,
    /// Queues the agent is a member of; `false` = paused in that queue.
    pub queues: Vec<(String, bool)>,
}

/// An agent command from the console or a feature code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCommand {
    /// Log in.
    Login,
    /// Log out.
    Logout,
    /// Log in when logged out, else log out (`*40`).
    ToggleLogin,
    /// Select a state (available, preparing, breaks, other work).
    Select(AgentState),
    /// End after-call work (→ available); refused when not in ACW.
    EndAcw,
    /// Pause (`false`) or resume the agent in one queue.
    QueueAvailability(String, bool),
    /// Toggle the availability in one queue (`*47`).
    ToggleQueue(String),
}

impl Engine {
    // ---- entering and leaving -------------------------------------------------------------

    /// Call `id` enters queue `queue` (answered by the box or still ringing).
    pub(in crate::engine) fn enter_queue(&mut self, now: Instant, id: u64, queue: &str) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        // The queue decides how long the caller waits, not the normal ring timeout.
        call.ring_deadline = None;
        let caller = call.caller_ext().to_string();
        let answered = call.a_ok_sent;
        if answered {
            // An IVR's caller: music at once, also during a ring-before-queue time.
            self.queue_music_named(id, queue);
        } else {
            // Ringback while the queue looks for an agent (ring-before-queue).
            self.send_a_provisional(now, id, 180, None);
        }
        self.vacate_b_for_box(id);
        let entry = QueueCall {
            queue: queue.to_string(),
            music_after_play: false,
            hang_up_after_play: None,
            agent: None,
        };
        self.queue.calls.insert(id, entry);
        log::info!("call {id}: {caller} enters queue {queue}");
        if let Err(e) = self.queue.acd.caller_entered(now, id, queue, &caller) {
            log::warn!("call {id}: queue {queue}: {e:?}; 404");
            self.queue.calls.remove(&id);
            self.end_call(id, HangupSide::System, "no such queue", 404, now);
        }
        self.queue_drain(now);
    }

    /// The queue phones reach by dialling `number`.
    pub(in crate::engine) fn queue_by_number(&self, number: &str) -> Option<String> {
        self.cfg.callcenter.queue_by_number(number).map(str::to_string)
    }

    /// The call ends (either side, any cause): the ACD hears that the caller left (abandon
    /// while waiting, end of talk once connected).
    pub(in crate::engine) fn queue_call_ending(&mut self, now: Instant, id: u64) {
        let Some(q) = self.queue.calls.remove(&id) else { return };
        log::debug!("call {id}: leaves queue {}", q.queue);
        // `UnknownCall`: the ACD let the call go already (routed, rejected).
        let _ = self.queue.acd.caller_hung_up(now, id);
        self.queue_drain(now);
    }

    /// An agent's phone placed call `id` out over a trunk (a DID call forwarded out is not
    /// one): the ACD's 発信中 (`agent_dial`), until the far end answers or the call ends.
    pub(in crate::engine) fn queue_outbound_started(&mut self, now: Instant, id: u64) {
        let Some(call) = self.calls.get(&id) else { return };
        let outbound = call.trunk.as_ref().is_some_and(|t| t.did.is_none());
        let (agent, number) = (call.caller_ext().to_string(), call.callee_ext().to_string());
        if !outbound || self.queue.acd.agent_state(&agent).is_none() {
            return;
        }
        match self.queue.acd.agent_dial(now, &agent, id, &number) {
            Ok(()) => {
                self.queue.personal.insert(id, vec![(agent, true)]);
            }
            Err(e) => log::debug!("call {id}: agent {agent} dials out, not tracked ({e:?})"),
        }
        self.queue_drain(now);
    }

    /// An ordinary call was answered (`started`) or ended. Between extensions its 受付可 agents
    /// go to 内線通話 and back, so the queues do not offer them calls meanwhile; an agent's
    /// outbound call is answered (`agent_dial_answered`) or ends (`call_ended`, a failed dial
    /// when never answered). Queue calls are not ordinary calls.
    pub(in crate::engine) fn queue_personal_call(&mut self, now: Instant, id: u64, started: bool) {
        if !started {
            let Some(agents) = self.queue.personal.remove(&id) else { return };
            for (a, outbound) in agents {
                let _ = if outbound {
                    self.queue.acd.call_ended(now, &a)
                } else {
                    self.queue.acd.agent_internal_call(now, &a, false)
                };
            }
            return self.queue_drain(now);
        }
        if let Some(agents) = self.queue.personal.get(&id) {
            for (a, _) in agents.clone() {
                let _ = self.queue.acd.agent_dial_answered(now, &a);
            }
            return self.queue_drain(now);
        }
        let Some(call) = self.calls.get(&id) else { return };
        if call.trunk.is_some() || self.queue.calls.contains_key(&id) {
            return;
        }
        // A ring group's member (or a forward target) who answered is a party too: the dialled
        // number is then the group's, not an agent's.
        let mut parties = vec![call.caller_ext().to_string(), call.callee_ext().to_string()];
        parties.extend(self.dialplan_answered_by(id));
        let mut agents = Vec::new();
        for p in parties {
            if self.queue.acd.agent_state(&p) == Some(AgentState::Available)
                && self.queue.acd.agent_internal_call(now, &p, true).is_ok()
            {
                agents.push((p, false));
            }
        }
        if !agents.is_empty() {
            self.queue.personal.insert(id, agents);
        }
        self.queue_drain(now);
    }

    /// A re-wire replaced the agent of a connected queue call (a transfer, park): the agent's
    /// talk ends (`call_transferred`); the call goes on without the ACD.
    pub(in crate::engine) fn queue_side_replaced(
        &mut self,
        now: Instant,
        id: u64,
        side: Side,
        old: &str,
        new: &str,
    ) {
        let Some(q) = self.queue.calls.get_mut(&id) else { return };
        if side != Side::B || q.agent.as_deref() != Some(old) || old == new {
            return;
        }
        q.agent = None;
        self.queue.calls.remove(&id);
        if let Err(e) = self.queue.acd.call_transferred(now, old, new) {
            log::debug!("call {id}: agent {old} transferred to {new}: {e:?}");
        }
        self.queue_drain(now);
    }

    // ---- agent legs -------------------------------------------------------------------------

    /// An agent's phone answered call `id`: true when the ACD gives it the call. A caller still
    /// hearing ringback (ring-before-queue) is answered by the box first.
    pub(in crate::engine) fn queue_leg_answered(&mut self, now: Instant, id: u64, agent: &str) -> bool {
        if let Err(e) = self.queue.acd.agent_answered(now, id, agent) {
            log::info!("call {id}: agent {agent} answered too late ({e:?})");
            self.queue_drain(now);
            return false;
        }
        if self.calls.get(&id).is_some_and(|c| !c.a_ok_sent) && !self.answer_for_play(now, id) {
            self.queue_drain(now);
            return false;
        }
        if let Some(q) = self.queue.calls.get_mut(&id) {
            q.agent = Some(agent.to_string());
            q.music_after_play = false;
        }
        log::info!("call {id}: agent {agent} answered");
        true
    }

    /// An agent's leg failed with `code`: a busy or a decline is the agent's answer; anything
    /// else (not registered, no route) is left to the ACD's ring timer (a no-answer).
    pub(in crate::engine) fn queue_leg_failed(&mut self, now: Instant, id: u64, agent: &str, code: u16) {
        if matches!(code, 486 | 600 | 603) {
            let _ = self.queue.acd.agent_declined(now, id, agent);
            self.queue_drain(now);
        }
    }

    /// Hold or resume by a party of a queue call: the agent's side feeds the ACD.
    pub(in crate::engine) fn queue_hold(&mut self, now: Instant, id: u64, side: Side, holding: bool) {
        let Some(agent) = self.queue.calls.get(&id).and_then(|q| q.agent.clone()) else { return };
        if side != Side::B {
            return;
        }
        let r = if holding {
            self.queue.acd.agent_hold(now, &agent)
        } else {
            self.queue.acd.agent_unhold(now, &agent)
        };
        if let Err(e) = r {
            log::debug!("call {id}: agent {agent} hold={holding}: {e:?}");
        }
        self.queue_drain(now);
    }

    // ---- media ------------------------------------------------------------------------------

    /// Something finished playing to the caller of a queue call.
    pub(in crate::engine) fn queue_play_done(&mut self, relay: RelayId, side: Side, now: Instant) {
        let id = relay.0;
        if side != Side::A {
            return;
        }
        let Some(q) = self.queue.calls.get_mut(&id) else { return };
        if q.hang_up_after_play.is_some() {
            self.queue.calls.remove(&id);
            return self.end_call(id, HangupSide::System, "queue busy", 486, now);
        }
        if std::mem::replace(&mut q.music_after_play, false) && q.agent.is_none() {
            let queue = q.queue.clone();
            self.queue_music_named(id, &queue);
        }
    }

    /// Music on hold to the caller of `id`: the queue's own `moh` audio file when it names one
    /// (an admin upload, `audio import`), else the box's music. A missing file falls back to
    /// the box's music in the media layer, so a typo never means silence.
    fn queue_music_named(&mut self, id: u64, queue: &str) {
        let own = self.cfg.callcenter.queues.iter().find(|q| q.name == queue).and_then(|q| q.moh.clone());
        match own {
            Some(name) => self.out.push_back(Output::Media(MediaCommand::Play {
                relay: RelayId(id),
                side: Side::A,
                clips: vec![Clip::AudioFile(name)],
                looped: true,
            })),
            None => self.music_to(id, Side::A),
        }
    }

    fn queue_clips(&self, ids: &[String], lead_in: bool) -> Vec<Clip> {
        let lang = self.cfg.media.language;
        let mut clips = Vec::new();
        if lead_in {
            clips.push(Clip::Silence(LEAD_IN_MS));
        }
        for id in ids {
            if crate::media::prompts::exists(id, lang) {
                clips.push(Clip::Prompt { id: id.clone(), lang });
            } else {
                clips.push(Clip::AudioFile(id.clone()));
            }
        }
        clips
    }

    fn queue_play_to_caller(&mut self, id: u64, clips: Vec<Clip>) {
        self.out.push_back(Output::Media(MediaCommand::Play {
            relay: RelayId(id),
            side: Side::A,
            clips,
            looped: false,
        }));
    }

    // ---- the ACD's outputs ------------------------------------------------------------------

    /// The ACD's timer.
    pub(in crate::engine) fn on_queue_timer(&mut self, now: Instant) {
        if self.queue.armed.is_some_and(|t| t <= now) {
            self.queue.armed = None;
        }
        let guarded: Vec<u64> = self
            .queue
            .calls
            .iter()
            .filter(|(_, q)| q.hang_up_after_play.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in guarded {
            self.queue.calls.remove(&id);
            log::info!("call {id}: the busy prompt did not report its end; hanging up");
            self.end_call(id, HangupSide::System, "queue busy", 486, now);
        }
        self.queue.acd.handle_timeout(now);
        self.queue_drain(now);
    }

    /// Carries out everything the ACD asks, then arms its timer.
    pub(in crate::engine) fn queue_drain(&mut self, now: Instant) {
        while let Some(out) = self.queue.acd.poll_output() {
            self.queue_output(now, out);
        }
        if let Some(at) = self.queue.acd.poll_timeout() {
            if self.queue.armed.is_none_or(|t| at < t || t <= now) {
                self.queue.armed = Some(at);
                self.arm(at.max(now), TimerKey::Queue);
            }
        }
    }

    fn queue_output(&mut self, now: Instant, out: AcdOutput) {
        match out {
            AcdOutput::Answer { call, greeting, moh: _ } => {
                if self.calls.get(&call).is_some_and(|c| !c.a_ok_sent) && !self.answer_for_play(now, call) {
                    return;
                }
                log::info!("call {call}: queued; music on hold");
                if greeting.is_empty() {
                    let queue = self.queue.calls.get(&call).map(|q| q.queue.clone()).unwrap_or_default();
                    self.queue_music_named(call, &queue);
                } else {
                    let clips = self.queue_clips(&greeting, true);
                    self.queue_play_to_caller(call, clips);
                    if let Some(q) = self.queue.calls.get_mut(&call) {
                        q.music_after_play = true;
                    }
                }
            }
            AcdOutput::Announce { call, prompts } => {
                let clips = self.queue_clips(&prompts, false);
                self.queue_play_to_caller(call, clips);
                if let Some(q) = self.queue.calls.get_mut(&call) {
                    q.music_after_play = true;
                }
            }
            AcdOutput::Ring { call, agent, ring_time } => {
                log::info!("call {call}: ringing agent {agent}");
                if let Err(e) =
                    self.dial_leg_for(now, call, Side::B, &agent, LegKind::Queue, ring_time + LEG_SLACK)
                {
                    // The ACD's ring timer turns this into a no-answer.
                    log::info!("call {call}: cannot ring agent {agent} ({})", e.status());
                }
            }
            AcdOutput::StopRinging { call, agent } => self.cancel_leg_to(now, call, &agent),
            AcdOutput::Connect { call, agent, whisper, caller_answered: _ } => {
                log::info!("call {call}: connected to agent {agent}");
                if let Some(w) = whisper {
                    let clips = self.queue_clips(&[w], false);
                    self.out.push_back(Output::Media(MediaCommand::Play {
                        relay: RelayId(call),
                        side: Side::B,
                        clips,
                        looped: false,
                    }));
                }
            }
            AcdOutput::Route { call, destination, reason } => {
                log::info!("call {call}: queue routes to {destination:?} ({reason:?})");
                self.queue.calls.remove(&call);
                self.route_from_box(now, call, destination);
            }
            AcdOutput::RejectBusy { call, reason } => {
                log::info!("call {call}: queue answers busy ({reason:?})");
                let answered = self.calls.get(&call).is_some_and(|c| c.a_ok_sent);
                if !answered {
                    self.queue.calls.remove(&call);
                    return self.end_call(call, HangupSide::System, "queue busy", 486, now);
                }
                let clips = self.queue_clips(&[BUSY_PROMPT.to_string()], false);
                self.queue_play_to_caller(call, clips);
                if let Some(q) = self.queue.calls.get_mut(&call) {
                    q.hang_up_after_play = Some(now + BUSY_PROMPT_GUARD);
                }
                self.arm(now + BUSY_PROMPT_GUARD, TimerKey::Queue);
            }
            AcdOutput::Event(e) => self.out.push_back(Output::QueueEvent(e)),
        }
    }

    /// A call the box holds (a queue's caller, answered or still ringing) goes on to `dest`.
    pub(in crate::engine) fn route_from_box(&mut self, now: Instant, id: u64, dest: Destination) {
        match dest {
            Destination::Hangup => self.end_call(id, HangupSide::System, "hangup destination", 603, now),
            Destination::Queue(q) => {
                self.stop_caller_audio(id);
                self.enter_queue(now, id, &q)
            }
            other => {
                if self.calls.get(&id).is_some_and(|c| !c.a_ok_sent) && !self.answer_for_play(now, id) {
                    return;
                }
                self.stop_caller_audio(id);
                self.ivr_route(now, id, other);
            }
        }
    }

    fn stop_caller_audio(&mut self, id: u64) {
        self.out.push_back(Output::Media(MediaCommand::StopPlay { relay: RelayId(id), side: Side::A }));
    }

    // ---- agents ----------------------------------------------------------------------------

    /// An agent's phone dialled a call-center code (`*40`-`*47`, docs/callcenter.md): applies
    /// it and names the confirmation prompt (`agent.not_allowed` for a refusal); `None` when
    /// `dialled` is no such code.
    pub(in crate::engine) fn agent_feature_code(
        &mut self,
        now: Instant,
        ext: &str,
        dialled: &str,
    ) -> Option<&'static str> {
        let rest = dialled.strip_prefix(AGENT_CODE_PREFIX)?;
        let (code, arg) = rest.split_at_checked(1)?;
        let cmd = match (code, arg) {
            ("0", "") => AgentCommand::ToggleLogin,
            ("1", "") => AgentCommand::Select(AgentState::Available),
            ("2", "") => AgentCommand::Select(AgentState::ShortBreak),
            ("3", "") => AgentCommand::Select(AgentState::LunchBreak),
            ("4", "") => AgentCommand::EndAcw,
            ("5", n) => match n.parse::<u8>() {
                Ok(n) if (1..=crate::apps::callcenter::agent::MAX_CUSTOM_STATES as u8).contains(&n) => {
                    AgentCommand::Select(AgentState::OtherWork(n))
                }
                _ => return Some(NOT_ALLOWED),
            },
            ("6", "") => AgentCommand::Select(AgentState::Preparing),
            ("7", q) if !q.is_empty() => AgentCommand::ToggleQueue(q.to_string()),
            _ => return None,
        };
        // From `*41` on, `ToggleQueue` is the only one whose result is not the state.
        let toggled_queue = match &cmd {
            AgentCommand::ToggleQueue(q) => self.queue_named(q),
            _ => None,
        };
        // `*41` also ends ACW and an auto-pause; the state machine allows both as a selection.
        let result = self.agent_command(now, ext, cmd, Cause::Agent);
        log::info!("agent {ext}: {dialled}: {result:?}");
        Some(match result {
            Err(_) => NOT_ALLOWED,
            Ok(_) if toggled_queue.is_some() => {
                let paused = toggled_queue.and_then(|q| self.queue_member_paused(ext, &q));
                if paused == Some(true) {
                    "agent.queue_paused"
                } else {
                    "agent.queue_resumed"
                }
            }
            Ok(AgentState::LoggedOut) => "agent.logged_out",
            Ok(AgentState::Preparing) if code == "0" => "agent.logged_in",
            Ok(AgentState::Preparing) => "agent.preparing",
            Ok(AgentState::Available) if code == "4" => "agent.acw_ended",
            Ok(AgentState::Available) => "agent.available",
            Ok(AgentState::ShortBreak) => "agent.short_break",
            Ok(AgentState::LunchBreak) => "agent.lunch_break",
            Ok(AgentState::OtherWork(_)) => "agent.other_work",
            Ok(_) => NOT_ALLOWED,
        })
    }

    /// Applies an agent command (console as supervisor, feature code as the agent).
    pub fn agent_command(
        &mut self,
        now: Instant,
        agent: &str,
        cmd: AgentCommand,
        by: Cause,
    ) -> Result<AgentState, AgentError> {
        let cmd = match cmd {
            AgentCommand::QueueAvailability(q, on) => {
                AgentCommand::QueueAvailability(self.queue_named(&q).ok_or(AgentError::UnknownQueue)?, on)
            }
            AgentCommand::ToggleQueue(q) => {
                AgentCommand::ToggleQueue(self.queue_named(&q).ok_or(AgentError::UnknownQueue)?)
            }
            other => other,
        };
        let acd = &mut self.queue.acd;
        let state = acd.agent_state(agent).ok_or(AgentError::UnknownAgent)?;
        let r = match cmd {
            AgentCommand::Login => acd.login(now, agent, by),
            AgentCommand::Logout => acd.logout(now, agent, by),
            AgentCommand::ToggleLogin if state == AgentState::LoggedOut => acd.login(now, agent, by),
            AgentCommand::ToggleLogin => acd.logout(now, agent, by),
            AgentCommand::Select(s) => acd.set_state(now, agent, s, by),
            AgentCommand::EndAcw if state != AgentState::AfterCallWork => {
                Err(AgentError::IllegalTransition { from: state, input: "acw_end" }.into())
            }
            AgentCommand::EndAcw => acd.set_state(now, agent, AgentState::Available, by),
            AgentCommand::QueueAvailability(q, on) => {
                acd.set_queue_availability(now, agent, Some(&q), on).map(|()| state)
            }
            AgentCommand::ToggleQueue(q) => {
                let paused = self.queue_member_paused(agent, &q).ok_or(AgentError::UnknownQueue)?;
                self.queue.acd.set_queue_availability(now, agent, Some(&q), paused).map(|()| state)
            }
        };
        self.queue_drain(now);
        r.map_err(|e| match e {
            crate::apps::callcenter::AcdError::Agent(a) => a,
            crate::apps::callcenter::AcdError::UnknownQueue => AgentError::UnknownQueue,
            _ => AgentError::UnknownAgent,
        })
    }

    /// Whether `agent` is paused in `queue` (`None`: not a member).
    fn queue_member_paused(&self, agent: &str, queue: &str) -> Option<bool> {
        self.queue.acd.member_paused(agent, queue)
    }

    /// The queue a number names: a queue's dial number, or its name.
    pub fn queue_named(&self, number_or_name: &str) -> Option<String> {
        self.cfg.callcenter.queue_by_number(number_or_name).map(str::to_string).or_else(|| {
            self.cfg.callcenter.queues.iter().find(|q| q.name == number_or_name).map(|q| q.name.clone())
        })
    }

    /// Every queue, for the console.
    pub fn queues(&self, now: Instant) -> Vec<QueueView> {
        self.cfg
            .callcenter
            .queues
            .iter()
            .map(|q| {
                let (waiting, longest, staffed) =
                    self.queue.acd.queue_status(now, &q.name).unwrap_or((0, Duration::ZERO, 0));
                QueueView {
                    name: q.name.clone(),
                    number: self
                        .cfg
                        .callcenter
                        .numbers
                        .iter()
                        .find(|(_, n)| *n == q.name)
                        .map(|(n, _)| n.clone()),
                    waiting,
                    longest_wait_s: longest.as_secs(),
                    staffed,
                    members: q.members.len(),
                    strategy: q.strategy.key().to_string(),
                }
            })
            .collect()
    }

    /// Every agent, for the console.
    pub fn agents(&self, now: Instant) -> Vec<AgentView> {
        self.queue
            .acd
            .agent_ids()
            .into_iter()
            .filter_map(|a| {
                let (state, since) = self.queue.acd.agent_status(&a)?;
                let label = match state {
                    AgentState::OtherWork(n) => self.queue.acd.catalog().name(n).map(str::to_string),
                    _ => None,
                };
                let queues = self
                    .cfg
                    .callcenter
                    .queues
                    .iter()
                    .filter(|q| q.members.iter().any(|m| m.agent == a))
                    .map(|q| (q.name.clone(), self.queue.acd.member_paused(&a, &q.name) != Some(true)))
                    .collect();
                Some(AgentView {
                    since_s: now.saturating_duration_since(since).as_secs(),
                    agent: a,
                    state,
                    label,
                    queues,
                })
            })
            .collect()
    }
}
