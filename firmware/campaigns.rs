//! The campaign runner (issue 9): the glue between each campaign's sans-IO [`Dialer`] and the
//! engine's calls placed by the box (`engine/originate.rs`). It runs on the engine's task:
//! every second [`CampaignRunner::tick`] polls the dialers (pacing, window, channel cap) and
//! places their calls; after every turn [`CampaignRunner::on_events`] turns the engine's
//! [`OriginateEvent`]s into the dialers' outcomes. Every entry that changes goes to the store's
//! group-commit writer, so the engine never waits on flash.
//!
//! Which call is which (seed 002 §2.17):
//! - progressive: the customer is rung first (`Party::Outside`, the campaign's caller ID); once
//!   it answers it waits (the campaign's wait audio, else music) and the dialer picks a free
//!   agent, rung as the second party; a declining agent is replaced by another;
//! - preview: the agent is rung first and hears "press 1 to call, 3 to skip" (the phone shows
//!   the customer's number); 1 dials the customer as the second party;
//! - a recall-list dial by the assignee: the agent first, then the customer, like click-to-call.
//!
//! With 結果をコマンドで入力 on, when the customer hangs up the agent stays on the line and
//! keys `result#` (or `0` then a delay for a recall), which the dialer records.
//!
//! Agents are free (ringing mode) when their phone is registered, they are in no call, their
//! call-center state, if they have one, is 受付可, and their after-call work (the campaign's
//! ACW時間, counted from the end of a call they talked on) is over.

use crate::apps::callcenter::AgentState;
use crate::apps::campaign::dialer::{Action, AgentOutcome, DialOutcome, Dialer, DialerError, Entry, EntryId};
use crate::apps::campaign::dtmf::Entered;
use crate::apps::campaign::settings::{AgentMode, CampaignSettings};
use crate::engine::{
    Engine, OriginPurpose, OriginateError, OriginateEvent, OriginateRequest, OriginateStep, Party,
    ResultEntryConfig, Waiting,
};
use crate::media::Side;
use crate::store::campaign::EntryRecord;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// How a campaign call was placed, which decides what its events mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Progressive: the customer first, the agent named when it answered.
    CustomerFirst,
    /// Preview: the agent first, choosing with keys; then the customer.
    PreviewOffer,
    /// A manual dial from the recall list: the agent first, then the customer.
    AgentFirst,
    /// Login mode: the customer was put through to the agent's `990` line (this call).
    Login,
}

#[derive(Debug, Clone)]
struct Placed {
    campaign: String,
    entry: EntryId,
    role: Role,
}

/// One campaign as the console and the web show it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignView {
    /// Its settings.
    pub settings: CampaignSettings,
    /// Entries in its list.
    pub entries: usize,
    /// Entries still to dial.
    pub waiting: usize,
    /// Calls in progress.
    pub active: usize,
}

/// Every campaign's dialer and the calls they placed.
#[derive(Debug, Default)]
pub struct CampaignRunner {
    dialers: BTreeMap<String, Dialer>,
    calls: HashMap<u64, Placed>,
    /// Entries changed since the daemon last took them (to the store's writer).
    changed: Vec<EntryRecord>,
    /// After-call work (ACW時間): an agent is not offered a campaign call before this (Unix ms).
    acw_until: HashMap<String, u64>,
    /// Agents put in the campaign's ACW status (ACWステータス), to put back when it is over.
    acw_state: HashMap<String, AgentState>,
    /// The call center's custom status names (`[acd] statuses`), for ACWステータス.
    custom_states: Vec<String>,
}

/// The customer's SIP status as a dial outcome.
fn dial_outcome(code: u16) -> DialOutcome {
    match code {
        486 | 600 => DialOutcome::Busy,
        408 | 480 => DialOutcome::NoAnswer,
        487 | 603 => DialOutcome::Rejected,
        403 => DialOutcome::Restricted,
        503 => DialOutcome::ChannelLimit,
        _ => DialOutcome::Failed,
    }
}

impl CampaignRunner {
    /// The runner for `settings` with the entries read from the store.
    pub fn new(settings: Vec<CampaignSettings>, stored: Vec<EntryRecord>) -> CampaignRunner {
        let mut r = CampaignRunner::default();
        r.reconfigure(settings);
        for rec in stored {
            if let (Some(d), Some(e)) = (r.dialers.get_mut(&rec.campaign), rec.entry()) {
                d.restore(e);
            }
        }
        r
    }

    /// New settings (a saved configuration): a campaign keeps its list; a removed one stops.
    pub fn reconfigure(&mut self, settings: Vec<CampaignSettings>) {
        let mut next = BTreeMap::new();
        for s in settings {
            let d = match self.dialers.remove(&s.name) {
                Some(mut d) => {
                    d.set_settings(s.clone());
                    d
                }
                None => Dialer::new(s.clone()),
            };
            next.insert(s.name.clone(), d);
        }
        self.dialers = next;
    }

    /// The call center's custom status names, which an ACWステータス may name.
    pub fn set_custom_states(&mut self, names: Vec<String>) {
        self.custom_states = names;
    }

    /// The agent state an ACWステータス names: a built-in state by its Japanese or key name, or
    /// a custom status by its name.
    fn acw_state_named(&self, name: &str) -> Option<AgentState> {
        let name = name.trim();
        if let Some(i) = self.custom_states.iter().position(|s| s == name) {
            return u8::try_from(i + 1).ok().map(AgentState::OtherWork);
        }
        [AgentState::AfterCallWork, AgentState::Preparing, AgentState::ShortBreak, AgentState::LunchBreak]
            .into_iter()
            .find(|s| s.ja() == name || s.key() == name)
    }

    /// After a talk, `agent`'s after-call work starts: no campaign call until it is over, and
    /// the campaign's ACW status meanwhile when the agent is a call-center agent.
    fn start_acw(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        now_ms: u64,
        agent: &str,
        settings: &CampaignSettings,
    ) {
        if settings.acw.is_zero() {
            return;
        }
        let until = now_ms.saturating_add(u64::try_from(settings.acw.as_millis()).unwrap_or(u64::MAX));
        self.acw_until.insert(agent.to_string(), until);
        let Some(state) = settings.acw_status.as_deref().and_then(|n| self.acw_state_named(n)) else {
            return;
        };
        let cmd = crate::engine::AgentCommand::Select(state);
        if engine.agent_command(now, agent, cmd, crate::apps::callcenter::Cause::Timer).is_ok() {
            self.acw_state.insert(agent.to_string(), state);
        }
    }

    /// Ends the after-call work that is over: the agents put in an ACW status are 受付可 again
    /// (unless they changed their state meanwhile).
    fn end_acw(&mut self, engine: &mut Engine, now: Instant, now_ms: u64) {
        let over: Vec<String> =
            self.acw_until.iter().filter(|(_, t)| **t <= now_ms).map(|(a, _)| a.clone()).collect();
        for agent in over {
            self.acw_until.remove(&agent);
            let Some(state) = self.acw_state.remove(&agent) else { continue };
            let still = engine.agents(now).iter().any(|a| a.agent == agent && a.state == state);
            if still {
                let cmd = crate::engine::AgentCommand::Select(AgentState::Available);
                let _ = engine.agent_command(now, &agent, cmd, crate::apps::callcenter::Cause::Timer);
            }
        }
    }

    /// Entries changed since the last call, for the store.
    pub fn take_changed(&mut self) -> Vec<EntryRecord> {
        std::mem::take(&mut self.changed)
    }

    /// Every campaign, for the console and the web.
    pub fn views(&self) -> Vec<CampaignView> {
        self.dialers
            .values()
            .map(|d| CampaignView {
                settings: d.settings().clone(),
                entries: d.entries().count(),
                waiting: d.entries().filter(|e| e.result.is_waiting()).count(),
                active: d.active_calls(),
            })
            .collect()
    }

    /// The entries of campaign `name`.
    pub fn entries(&self, name: &str) -> Option<Vec<Entry>> {
        self.dialers.get(name).map(|d| d.entries().cloned().collect())
    }

    /// Adds a customer to call to campaign `name`.
    pub fn add_entry(
        &mut self,
        name: &str,
        number: &str,
        customer_name: &str,
        schedule_ms: Option<u64>,
        assignee: Option<String>,
    ) -> Result<EntryId, String> {
        self.add_customer_entry(name, number, customer_name, None, schedule_ms, assignee)
    }

    /// [`Self::add_entry`] linked to CRM customer `customer` (`#C<n>`).
    pub fn add_customer_entry(
        &mut self,
        name: &str,
        number: &str,
        customer_name: &str,
        customer: Option<u64>,
        schedule_ms: Option<u64>,
        assignee: Option<String>,
    ) -> Result<EntryId, String> {
        let d = self.dialers.get_mut(name).ok_or_else(|| format!("no campaign `{name}`"))?;
        let id =
            d.add(number, customer_name, customer, schedule_ms, assignee).map_err(|e| dialer_error(&e))?;
        self.note(name, id);
        Ok(id)
    }

    /// A result entered in the web page (a custom result number).
    pub fn set_result(&mut self, name: &str, entry: EntryId, number: u16) -> Result<(), String> {
        let d = self.dialers.get_mut(name).ok_or_else(|| format!("no campaign `{name}`"))?;
        d.enter_result(entry, number).map_err(|e| dialer_error(&e))?;
        self.note(name, entry);
        Ok(())
    }

    /// Books a recall of an entry `delay` from now (the web's +10 min / +1 h / +1 day).
    pub fn book_recall(
        &mut self,
        name: &str,
        entry: EntryId,
        now_ms: u64,
        delay: std::time::Duration,
    ) -> Result<(), String> {
        let d = self.dialers.get_mut(name).ok_or_else(|| format!("no campaign `{name}`"))?;
        d.book_recall(entry, now_ms, delay).map_err(|e| dialer_error(&e))?;
        self.note(name, entry);
        Ok(())
    }

    /// 停止: stops dialling an entry.
    pub fn stop(&mut self, name: &str, entry: EntryId) -> Result<(), String> {
        let d = self.dialers.get_mut(name).ok_or_else(|| format!("no campaign `{name}`"))?;
        d.stop(entry).map_err(|e| dialer_error(&e))?;
        self.note(name, entry);
        Ok(())
    }

    /// The settings of campaign `name`.
    pub fn settings(&self, name: &str) -> Option<&CampaignSettings> {
        self.dialers.get(name).map(Dialer::settings)
    }

    /// Every campaign's entries for CRM customer `customer`, by campaign.
    pub fn customer_entries(&self, customer: u64) -> Vec<(String, Entry)> {
        self.dialers
            .iter()
            .flat_map(|(name, d)| {
                d.entries()
                    .filter(move |e| e.customer == Some(customer))
                    .map(move |e| (name.clone(), e.clone()))
            })
            .collect()
    }

    /// §2.7: the entries waiting in `agent`'s recall list, by campaign.
    pub fn recalls(&self, agent: &str) -> Vec<(String, Entry)> {
        self.dialers
            .iter()
            .flat_map(|(name, d)| d.recall_list(agent).into_iter().map(move |e| (name.clone(), e.clone())))
            .collect()
    }

    /// The assignee dials an entry from the recall list: the box rings the agent's phone,
    /// then the customer.
    #[allow(clippy::too_many_arguments)]
    pub fn manual_dial(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        now_ms: u64,
        minute_of_day: u16,
        name: &str,
        entry: EntryId,
        agent: &str,
    ) -> Result<(), String> {
        let d = self.dialers.get_mut(name).ok_or_else(|| format!("no campaign `{name}`"))?;
        let action =
            d.manual_dial(entry, agent, now_ms, minute_of_day, &|_| false).map_err(|e| dialer_error(&e))?;
        self.note(name, entry);
        let before = self.calls.len();
        self.act(engine, now, now_ms, name, vec![action]);
        if self.calls.len() > before {
            Ok(())
        } else {
            Err("the call could not be placed (see the entry's result)".into())
        }
    }

    fn note(&mut self, name: &str, entry: EntryId) {
        if let Some(e) = self.dialers.get(name).and_then(|d| d.entry(entry)) {
            self.changed.push(EntryRecord::of(name, e));
        }
    }

    /// Once a second: which agents are free, then every dialer's due dials.
    pub fn tick(&mut self, engine: &mut Engine, now: Instant, now_ms: u64, minute_of_day: u16) {
        if self.dialers.is_empty() {
            return;
        }
        self.end_acw(engine, now, now_ms);
        let registered: Vec<String> = engine.registrations(now).into_iter().map(|r| r.extension).collect();
        let in_call: Vec<String> =
            engine.calls(now).into_iter().flat_map(|c| [c.from, c.to]).filter(|e| !e.is_empty()).collect();
        let states: HashMap<String, AgentState> =
            engine.agents(now).into_iter().map(|a| (a.agent, a.state)).collect();
        let logins = engine.campaign_logins();
        let lines_in_use: Vec<u64> =
            self.calls.iter().filter(|(_, p)| p.role == Role::Login).map(|(id, _)| *id).collect();
        let names: Vec<String> = self.dialers.keys().cloned().collect();
        for name in names {
            let Some(d) = self.dialers.get_mut(&name) else { continue };
            let ringing_mode = d.settings().agent_mode == AgentMode::Ringing;
            for agent in d.settings().agents.clone() {
                let in_acw = self.acw_until.get(&agent).is_some_and(|t| *t > now_ms);
                let free = if ringing_mode {
                    !in_acw
                        && registered.contains(&agent)
                        && !in_call.contains(&agent)
                        && states.get(&agent).is_none_or(|s| *s == AgentState::Available)
                } else {
                    // Login mode: on its 990 line, nobody on it, not in after-call work.
                    !in_acw
                        && logins
                            .iter()
                            .any(|(a, line, busy)| *a == agent && !*busy && !lines_in_use.contains(line))
                };
                d.set_agent_free(&agent, free);
            }
            // Restricted numbers are refused by the outbound routes when dialled (403), which
            // records 発信規制 the same way.
            let actions = d.poll(now_ms, minute_of_day, &|_| false);
            self.act(engine, now, now_ms, &name, actions);
        }
    }

    /// The engine's events about the calls the runner placed.
    pub fn on_events(&mut self, engine: &mut Engine, now: Instant, now_ms: u64, events: &[OriginateEvent]) {
        for ev in events {
            if !matches!(ev.purpose, OriginPurpose::Campaign { .. } | OriginPurpose::CampaignLogin { .. }) {
                continue;
            }
            let Some(placed) = self.calls.get(&ev.call).cloned() else { continue };
            let (name, entry) = (placed.campaign.clone(), placed.entry);
            let Some(d) = self.dialers.get_mut(&name) else { continue };
            let actions = match (placed.role, &ev.step) {
                (Role::CustomerFirst, OriginateStep::FirstAnswered) => {
                    d.customer_outcome(entry, DialOutcome::Answered)
                }
                (Role::CustomerFirst, OriginateStep::FirstFailed(code)) => {
                    d.customer_outcome(entry, dial_outcome(*code))
                }
                (Role::CustomerFirst, OriginateStep::SecondFailed(code)) => {
                    let outcome = if *code == 486 || *code == 603 {
                        AgentOutcome::Declined
                    } else {
                        AgentOutcome::NoAnswer
                    };
                    d.agent_outcome(entry, outcome, now_ms)
                }
                (Role::CustomerFirst, OriginateStep::Connected) => {
                    d.agent_outcome(entry, AgentOutcome::Answered, now_ms)
                }
                (Role::PreviewOffer, OriginateStep::FirstAnswered) => {
                    d.agent_outcome(entry, AgentOutcome::Answered, now_ms)
                }
                (Role::PreviewOffer, OriginateStep::FirstFailed(_)) => {
                    d.agent_outcome(entry, AgentOutcome::NoAnswer, now_ms)
                }
                (Role::PreviewOffer, OriginateStep::Key(k)) if *k == '1' || *k == '3' => {
                    let actions = d.preview_choice(entry, *k == '1', now_ms);
                    if *k == '3' {
                        engine.originate_hangup(now, ev.call);
                    }
                    actions
                }
                (Role::PreviewOffer, OriginateStep::SecondFailed(code)) => {
                    let actions = d.customer_outcome(entry, dial_outcome(*code));
                    engine.originate_hangup(now, ev.call);
                    actions
                }
                (Role::AgentFirst, OriginateStep::FirstFailed(_)) => {
                    d.customer_outcome(entry, DialOutcome::Rejected)
                }
                (Role::AgentFirst, OriginateStep::SecondFailed(code)) => {
                    d.customer_outcome(entry, dial_outcome(*code))
                }
                (Role::PreviewOffer | Role::AgentFirst, OriginateStep::Connected) => {
                    d.customer_outcome(entry, DialOutcome::Answered)
                }
                (Role::Login, OriginateStep::Released { talk_s }) => {
                    self.calls.remove(&ev.call);
                    let settings = d.settings().clone();
                    if *talk_s > 0 {
                        if let OriginPurpose::CampaignLogin { agent } = &ev.purpose {
                            self.start_acw(engine, now, now_ms, agent, &settings);
                        }
                    }
                    let d = self.dialers.get_mut(&name);
                    d.filter(|d| d.is_active(entry)).map(|d| d.call_ended(entry)).unwrap_or_default()
                }
                (_, OriginateStep::AwaitingResult { .. }) => d.call_ended(entry),
                (_, OriginateStep::Result(Entered::Result(n))) => {
                    d.enter_result(entry, *n).into_iter().collect()
                }
                (_, OriginateStep::Result(Entered::Recall(delay))) => {
                    d.book_recall(entry, now_ms, *delay).into_iter().collect()
                }
                (_, OriginateStep::Ended { talk_s }) => {
                    self.calls.remove(&ev.call);
                    // After a talk, the agent's after-call work starts now.
                    let settings = d.settings().clone();
                    let agent = d.entry(entry).and_then(|e| e.agent.clone());
                    if let (Some(agent), true) = (agent, *talk_s > 0) {
                        self.start_acw(engine, now, now_ms, &agent, &settings);
                    }
                    let d = self.dialers.get_mut(&name);
                    d.filter(|d| d.is_active(entry)).map(|d| d.call_ended(entry)).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            self.act(engine, now, now_ms, &name, actions);
        }
    }

    /// Carries out a dialer's actions on the engine.
    fn act(&mut self, engine: &mut Engine, now: Instant, now_ms: u64, name: &str, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let Some(settings) = self.dialers.get(name).map(|d| d.settings().clone()) else { return };
            let result_entry =
                settings.result_by_dtmf.then(|| settings.results.iter().map(|r| r.number).collect());
            let policy_ext = settings.agents.first().cloned().unwrap_or_default();
            match action {
                Action::Recorded { entry, .. } => self.note(name, entry),
                // The engine asks by itself (the request's `result_entry`).
                Action::AskResult { .. } => {}
                Action::DialCustomer { entry, dial, caller_id, ring, agent } => {
                    let customer =
                        Party::Outside { number: dial, policy_ext: agent.clone().unwrap_or(policy_ext) };
                    let existing = self
                        .calls
                        .iter()
                        .find(|(_, p)| p.campaign == name && p.entry == entry)
                        .map(|(id, _)| *id);
                    let placed = match (existing, agent) {
                        // Preview: the agent's call is up; the customer is its second party.
                        (Some(call), Some(_)) => {
                            engine.originate_second(now, call, customer, ring).map(|()| call)
                        }
                        (_, Some(agent)) => {
                            let req = OriginateRequest {
                                purpose: OriginPurpose::Campaign { campaign: name.to_string(), entry },
                                result_entry: result_entry
                                    .map(|valid| ResultEntryConfig { agent_side: Side::A, valid }),
                                caller_id,
                                ..OriginateRequest::new(
                                    Party::Extension(agent),
                                    settings.agent_ring,
                                    customer,
                                    ring,
                                )
                            };
                            engine.originate(now, req).inspect(|id| {
                                self.calls.insert(
                                    *id,
                                    Placed { campaign: name.to_string(), entry, role: Role::AgentFirst },
                                );
                            })
                        }
                        (_, None) => {
                            let req = OriginateRequest {
                                first: customer,
                                first_ring: ring,
                                second: None,
                                second_ring: settings.agent_ring,
                                purpose: OriginPurpose::Campaign { campaign: name.to_string(), entry },
                                presented: None,
                                waiting: Waiting::Music(settings.customer_wait_audio.clone()),
                                result_entry: result_entry
                                    .map(|valid| ResultEntryConfig { agent_side: Side::B, valid }),
                                caller_id,
                                pcmu_only: settings.agent_mode == AgentMode::Login,
                            };
                            engine.originate(now, req).inspect(|id| {
                                self.calls.insert(
                                    *id,
                                    Placed { campaign: name.to_string(), entry, role: Role::CustomerFirst },
                                );
                            })
                        }
                    };
                    if let Err(e) = placed {
                        log::info!("campaign {name}: entry {entry} not dialled: {e}");
                        let outcome = match e {
                            OriginateError::Refused(code) => dial_outcome(code),
                            OriginateError::Busy => DialOutcome::ChannelLimit,
                            _ => DialOutcome::Failed,
                        };
                        if let Some(d) = self.dialers.get_mut(name) {
                            queue.extend(d.customer_outcome(entry, outcome));
                        }
                    }
                }
                Action::RingAgent { entry, agent, ring, preview } => {
                    let existing = self
                        .calls
                        .iter()
                        .find(|(_, p)| p.campaign == name && p.entry == entry)
                        .map(|(id, _)| *id);
                    let login_mode = settings.agent_mode == AgentMode::Login;
                    let placed = match (preview, existing) {
                        (false, Some(call)) if login_mode => {
                            let result = result_entry.clone();
                            engine.originate_join(now, call, &agent, result).map(|line| {
                                self.calls.remove(&call);
                                self.calls.insert(
                                    line,
                                    Placed { campaign: name.to_string(), entry, role: Role::Login },
                                );
                                queue.extend(
                                    self.dialers
                                        .get_mut(name)
                                        .map(|d| d.agent_outcome(entry, AgentOutcome::Answered, now_ms))
                                        .unwrap_or_default(),
                                );
                            })
                        }
                        (false, Some(call)) => {
                            engine.originate_second(now, call, Party::Extension(agent), ring)
                        }
                        (false, None) => Err(OriginateError::Invalid),
                        (true, _) => {
                            let number = self
                                .dialers
                                .get(name)
                                .and_then(|d| d.entry(entry))
                                .map(|e| e.number.clone())
                                .unwrap_or_default();
                            let req = OriginateRequest {
                                first: Party::Extension(agent),
                                first_ring: ring,
                                second: None,
                                second_ring: settings.customer_ring,
                                purpose: OriginPurpose::Campaign { campaign: name.to_string(), entry },
                                presented: Some(number),
                                waiting: Waiting::Choice,
                                result_entry: result_entry
                                    .map(|valid| ResultEntryConfig { agent_side: Side::A, valid }),
                                caller_id: settings.caller_id.clone(),
                                pcmu_only: false,
                            };
                            engine
                                .originate(now, req)
                                .inspect(|id| {
                                    self.calls.insert(
                                        *id,
                                        Placed {
                                            campaign: name.to_string(),
                                            entry,
                                            role: Role::PreviewOffer,
                                        },
                                    );
                                })
                                .map(|_| ())
                        }
                    };
                    if let Err(e) = placed {
                        log::info!("campaign {name}: entry {entry}: agent not rung: {e}");
                        if let Some(d) = self.dialers.get_mut(name) {
                            queue.extend(d.agent_outcome(entry, AgentOutcome::Declined, now_ms));
                        }
                    }
                }
            }
        }
    }
}

fn dialer_error(e: &DialerError) -> String {
    match e {
        DialerError::Full => "the list is full".into(),
        DialerError::BadNumber => "not a phone number (digits, a leading +, at most 20)".into(),
        DialerError::NoEntry => "no such entry".into(),
        DialerError::NotYours => "not your entry, or not waiting".into(),
        DialerError::Closed => "outside the campaign's window, or the campaign is off".into(),
        DialerError::ChannelLimit => "the channel limit is reached".into(),
        DialerError::Restricted => "the number is restricted".into(),
        DialerError::NoSuchResult => "not one of the campaign's results".into(),
        DialerError::InProgress => "the entry's call is in progress".into(),
    }
}
