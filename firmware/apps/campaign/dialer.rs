//! One campaign's call list and its dialling (seed 002 §2.7, §2.17, §2.18, §3.10), sans-IO.
//!
//! The engine feeds it events (an agent became free, a customer answered, a call ended, a
//! result was entered) and polls it with the wall clock; it answers with [`Action`]s (dial this
//! customer, ring that agent, record this result). It never dials outside the campaign's window,
//! past its channel cap, or to a restricted number.
//!
//! Which entries are dialled automatically (§2.7 "new spec"): an entry with no assignee, and no
//! schedule or a schedule that has come. An entry with an assignee (担当者), with or without a
//! schedule, waits in that agent's recall list for a manual dial.

use super::pacing::{dials_to_start, AnswerRate, DialMode, Load};
use super::results::{Outcome, SystemResult};
use super::settings::CampaignSettings;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Entries in one campaign's list: a day's calling for a small center many times over, and
/// ~200 bytes each keeps a full list under 5 MB of the board's RAM.
pub const MAX_ENTRIES: usize = 20_000;

/// Longest phone number accepted in a list (E.164 is 15 digits; a `184` prefix and a
/// leading `0` or `+` fit).
pub const MAX_NUMBER_LEN: usize = 20;

/// An entry's id in the list.
pub type EntryId = u64;

/// The status icons of §2.18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    /// 発信待機中.
    Waiting,
    /// 発信処理中: the customer or an agent is being rung.
    Dialling,
    /// 通話中.
    Talking,
    /// 発信済み.
    Dialled,
    /// 発信停止.
    Stopped,
}

/// One customer to call.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its id.
    pub id: EntryId,
    /// The CRM customer (`#C<n>`), if linked.
    pub customer: Option<u64>,
    /// Name shown to the agent.
    pub name: String,
    /// The number to dial (without the 184 prefix).
    pub number: String,
    /// 結果.
    pub result: Outcome,
    /// Status icon.
    pub status: EntryStatus,
    /// コール数: dial attempts so far.
    pub calls: u32,
    /// 発信日時 of the last attempt (Unix ms).
    pub last_dialled_ms: Option<u64>,
    /// 予約: dial at or after this (Unix ms).
    pub schedule_ms: Option<u64>,
    /// 担当: the agent who must dial it by hand.
    pub assignee: Option<String>,
    /// エージェント: who talked to the customer last.
    pub agent: Option<String>,
}

/// How a customer dial ended before an agent spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// The customer answered.
    Answered,
    /// 486/600: busy.
    Busy,
    /// The ring time ran out.
    NoAnswer,
    /// The customer rejected the call (603) or the agent hung up while it rang.
    Rejected,
    /// No trunk channel was free (503 from the box's own channel limit).
    ChannelLimit,
    /// The outbound routes refuse the number as restricted (403).
    Restricted,
    /// Any other failure.
    Failed,
}

/// How ringing an agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentOutcome {
    /// The agent answered.
    Answered,
    /// The agent's ring time ran out.
    NoAnswer,
    /// The agent declined (busy / DND).
    Declined,
}

/// What the engine must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Dial the customer over a trunk. `agent` is set in preview mode: bridge to that agent's
    /// call when the customer answers.
    DialCustomer {
        /// The entry.
        entry: EntryId,
        /// The digits to dial (with `184` when the campaign withholds its ID).
        dial: String,
        /// The number to present, if the campaign sets one.
        caller_id: Option<String>,
        /// The customer's ring time.
        ring: Duration,
        /// The agent already on the line (preview and manual dials).
        agent: Option<String>,
    },
    /// Ring an agent: in progressive mode for an answered customer who waits (hearing the
    /// campaign's wait audio); in preview mode to offer the entry before dialling.
    RingAgent {
        /// The entry.
        entry: EntryId,
        /// The agent's extension.
        agent: String,
        /// The agent's ring time.
        ring: Duration,
        /// Whether this is a preview offer (the agent then chooses to dial or skip).
        preview: bool,
    },
    /// Ask the agent for the result by DTMF (結果をコマンドで入力).
    AskResult {
        /// The entry.
        entry: EntryId,
        /// The agent.
        agent: String,
    },
    /// An entry's result changed: persist it and log it for the statistics.
    Recorded {
        /// The entry.
        entry: EntryId,
        /// The new result.
        outcome: Outcome,
    },
}

/// Why an entry or a manual dial was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialerError {
    /// The list is full.
    Full,
    /// The number is empty, too long or has other characters than digits and a leading `+`.
    BadNumber,
    /// No such entry.
    NoEntry,
    /// The entry is not this agent's, or not waiting.
    NotYours,
    /// Outside the campaign's window, or the campaign is off.
    Closed,
    /// The channel cap is reached.
    ChannelLimit,
    /// The number is on the outbound-restriction list.
    Restricted,
    /// The result number is not one of the campaign's.
    NoSuchResult,
    /// The entry's call is in progress; stop it after the call.
    InProgress,
}

/// Where a dial in progress stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// Preview: the agent is being offered the entry.
    Offered { agent: String },
    /// Preview: the agent accepted and the customer is ringing.
    PreviewDial { agent: String },
    /// Progressive: the customer is ringing.
    CustomerRinging,
    /// Progressive: the customer answered and waits for an agent (none rung yet).
    CustomerWaiting,
    /// Progressive: the customer waits while `agent` rings.
    AgentRinging { agent: String },
    /// Customer and agent talk.
    Talking { agent: String },
}

impl Stage {
    fn agent(&self) -> Option<&str> {
        match self {
            Stage::Offered { agent }
            | Stage::PreviewDial { agent }
            | Stage::AgentRinging { agent }
            | Stage::Talking { agent } => Some(agent),
            Stage::CustomerRinging | Stage::CustomerWaiting => None,
        }
    }

    /// Whether a trunk channel is held for the customer.
    fn holds_channel(&self) -> bool {
        !matches!(self, Stage::Offered { .. })
    }
}

/// One campaign's runtime state.
#[derive(Debug)]
pub struct Dialer {
    settings: CampaignSettings,
    entries: BTreeMap<EntryId, Entry>,
    next_id: EntryId,
    active: BTreeMap<EntryId, Stage>,
    /// Agents the engine says are free for campaign calls.
    free: BTreeSet<String>,
    /// Answered customers waiting for an agent, oldest first.
    waiting: VecDeque<EntryId>,
    rate: AnswerRate,
}

impl Dialer {
    /// An empty list for `settings`.
    pub fn new(settings: CampaignSettings) -> Dialer {
        Dialer {
            settings,
            entries: BTreeMap::new(),
            next_id: 1,
            active: BTreeMap::new(),
            free: BTreeSet::new(),
            waiting: VecDeque::new(),
            rate: AnswerRate::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CampaignSettings {
        &self.settings
    }

    /// New settings (calls in progress go on; pacing and window apply from the next poll).
    pub fn set_settings(&mut self, settings: CampaignSettings) {
        self.settings = settings;
    }

    /// Every entry, by id.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// One entry.
    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// §2.7 recall list: entries assigned to `agent` that still wait to be dialled.
    pub fn recall_list(&self, agent: &str) -> Vec<&Entry> {
        self.entries
            .values()
            .filter(|e| {
                e.assignee.as_deref() == Some(agent)
                    && e.result.is_waiting()
                    && e.status == EntryStatus::Waiting
            })
            .collect()
    }

    /// Adds a customer to call.
    pub fn add(
        &mut self,
        number: &str,
        name: &str,
        customer: Option<u64>,
        schedule_ms: Option<u64>,
        assignee: Option<String>,
    ) -> Result<EntryId, DialerError> {
        if self.entries.len() >= MAX_ENTRIES {
            return Err(DialerError::Full);
        }
        let number = number.trim();
        let digits = number.strip_prefix('+').unwrap_or(number);
        if digits.is_empty() || number.len() > MAX_NUMBER_LEN || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DialerError::BadNumber);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                id,
                customer,
                name: name.to_string(),
                number: number.to_string(),
                result: Outcome::System(SystemResult::Waiting),
                status: EntryStatus::Waiting,
                calls: 0,
                last_dialled_ms: None,
                schedule_ms,
                assignee,
                agent: None,
            },
        );
        Ok(id)
    }

    /// The engine's view of an agent: free for a campaign call or not (in ringing mode: a
    /// listed agent who is available and idle; in login mode: one connected through 990).
    pub fn set_agent_free(&mut self, agent: &str, free: bool) {
        if free && self.settings.agents.iter().any(|a| a == agent) {
            self.free.insert(agent.to_string());
        } else {
            self.free.remove(agent);
        }
    }

    /// Agents free and not already rung or talking for this campaign.
    fn available_agents(&self) -> Vec<String> {
        let busy: BTreeSet<&str> = self.active.values().filter_map(Stage::agent).collect();
        self.free.iter().filter(|a| !busy.contains(a.as_str())).cloned().collect()
    }

    fn load(&self) -> Load {
        let in_flight = self
            .active
            .values()
            .filter(|s| match self.settings.pacing.mode {
                DialMode::Preview => matches!(s, Stage::Offered { .. }),
                DialMode::Progressive => matches!(s, Stage::CustomerRinging),
            })
            .count();
        Load {
            free_agents: self.available_agents().len(),
            in_flight,
            waiting_customers: self.waiting.len(),
            channels: self.active.values().filter(|s| s.holds_channel()).count(),
        }
    }

    /// Entries due for an automatic dial at `now_ms`, scheduled ones first, oldest first.
    fn due(&self, now_ms: u64) -> Vec<EntryId> {
        let mut due: Vec<(u64, EntryId)> = self
            .entries
            .values()
            .filter(|e| {
                e.status == EntryStatus::Waiting
                    && e.result.is_waiting()
                    && e.assignee.is_none()
                    && e.schedule_ms.is_none_or(|t| t <= now_ms)
                    && !self.active.contains_key(&e.id)
            })
            .map(|e| (e.schedule_ms.unwrap_or(u64::MAX), e.id))
            .collect();
        due.sort_unstable();
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// Starts the dials pacing allows. `minute_of_day` is local time; `restricted` says whether
    /// a number is on the outbound-restriction list.
    pub fn poll(
        &mut self,
        now_ms: u64,
        minute_of_day: u16,
        restricted: &dyn Fn(&str) -> bool,
    ) -> Vec<Action> {
        let mut actions = self.assign_waiting();
        if !self.settings.enabled || !self.settings.in_window(minute_of_day) {
            return actions;
        }
        let mut budget = dials_to_start(&self.settings.pacing, self.load(), &self.rate);
        let mut agents = self.available_agents().into_iter();
        for id in self.due(now_ms) {
            if budget == 0 {
                break;
            }
            let Some(number) = self.entries.get(&id).map(|e| e.number.clone()) else { continue };
            if restricted(&number) {
                actions.push(self.finish(id, Outcome::System(SystemResult::Restricted)));
                continue;
            }
            match self.settings.pacing.mode {
                DialMode::Preview => {
                    let Some(agent) = agents.next() else { break };
                    self.mark_dialling(id, None);
                    self.active.insert(id, Stage::Offered { agent: agent.clone() });
                    actions.push(Action::RingAgent {
                        entry: id,
                        agent,
                        ring: self.settings.agent_ring,
                        preview: true,
                    });
                }
                DialMode::Progressive => {
                    self.mark_dialling(id, Some(now_ms));
                    self.active.insert(id, Stage::CustomerRinging);
                    actions.push(self.dial(id, &number, None));
                }
            }
            budget -= 1;
        }
        actions
    }

    fn dial(&self, entry: EntryId, number: &str, agent: Option<String>) -> Action {
        Action::DialCustomer {
            entry,
            dial: self.settings.dial_string(number),
            caller_id: self.settings.caller_id.clone(),
            ring: self.settings.customer_ring,
            agent,
        }
    }

    fn mark_dialling(&mut self, id: EntryId, dialled_at: Option<u64>) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.status = EntryStatus::Dialling;
            if let Some(t) = dialled_at {
                e.calls = e.calls.saturating_add(1);
                e.last_dialled_ms = Some(t);
            }
        }
    }

    /// Ends an entry's dial with `outcome` and frees what it held.
    fn finish(&mut self, id: EntryId, outcome: Outcome) -> Action {
        self.active.remove(&id);
        self.waiting.retain(|w| *w != id);
        if let Some(e) = self.entries.get_mut(&id) {
            e.result = outcome;
            e.status = if outcome == Outcome::System(SystemResult::Stopped) {
                EntryStatus::Stopped
            } else if outcome.is_waiting() {
                EntryStatus::Waiting
            } else {
                EntryStatus::Dialled
            };
        }
        Action::Recorded { entry: id, outcome }
    }

    /// Rings free agents for customers who wait, oldest first.
    fn assign_waiting(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut agents = self.available_agents().into_iter();
        while let Some(&id) = self.waiting.front() {
            let Some(agent) = agents.next() else { break };
            self.waiting.pop_front();
            self.active.insert(id, Stage::AgentRinging { agent: agent.clone() });
            actions.push(Action::RingAgent {
                entry: id,
                agent,
                ring: self.settings.agent_ring,
                preview: false,
            });
        }
        actions
    }

    /// The customer leg of `entry` ended ringing.
    pub fn customer_outcome(&mut self, entry: EntryId, outcome: DialOutcome) -> Vec<Action> {
        let Some(stage) = self.active.get(&entry).cloned() else { return Vec::new() };
        if !matches!(stage, Stage::CustomerRinging | Stage::PreviewDial { .. }) {
            return Vec::new();
        }
        self.rate.record(outcome == DialOutcome::Answered);
        let result = match outcome {
            DialOutcome::Answered => {
                if let Stage::PreviewDial { agent } = stage {
                    self.talking(entry, agent);
                    return Vec::new();
                }
                self.active.insert(entry, Stage::CustomerWaiting);
                self.waiting.push_back(entry);
                return self.assign_waiting();
            }
            DialOutcome::Busy => SystemResult::Busy,
            DialOutcome::NoAnswer => SystemResult::TimeLimit,
            DialOutcome::Rejected => SystemResult::Cancelled,
            DialOutcome::ChannelLimit => SystemResult::ChannelLimit,
            DialOutcome::Restricted => SystemResult::Restricted,
            DialOutcome::Failed => SystemResult::Error,
        };
        vec![self.finish(entry, Outcome::System(result))]
    }

    fn talking(&mut self, entry: EntryId, agent: String) {
        if let Some(e) = self.entries.get_mut(&entry) {
            e.status = EntryStatus::Talking;
            e.agent = Some(agent.clone());
        }
        self.active.insert(entry, Stage::Talking { agent });
    }

    /// Ringing the agent for `entry` ended.
    pub fn agent_outcome(&mut self, entry: EntryId, outcome: AgentOutcome, now_ms: u64) -> Vec<Action> {
        let Some(stage) = self.active.get(&entry).cloned() else { return Vec::new() };
        match (stage, outcome) {
            (Stage::Offered { agent }, AgentOutcome::Answered) => {
                // The agent hears the entry and chooses; `preview_choice` continues.
                self.active.insert(entry, Stage::Offered { agent });
                let _ = now_ms;
                Vec::new()
            }
            (Stage::Offered { agent }, _) => {
                // Not an attempt on the customer: the entry waits for the next free agent.
                self.free.remove(&agent);
                self.active.remove(&entry);
                if let Some(e) = self.entries.get_mut(&entry) {
                    e.status = EntryStatus::Waiting;
                }
                Vec::new()
            }
            (Stage::AgentRinging { agent }, AgentOutcome::Answered) => {
                self.talking(entry, agent);
                Vec::new()
            }
            (Stage::AgentRinging { agent }, _) => {
                // An agent who does not answer is not offered the next customer at once.
                self.free.remove(&agent);
                self.active.insert(entry, Stage::CustomerWaiting);
                self.waiting.push_front(entry);
                self.assign_waiting()
            }
            _ => Vec::new(),
        }
    }

    /// Preview: the offered agent chose to dial (`true`, key 1) or skip (`false`, key 3).
    pub fn preview_choice(&mut self, entry: EntryId, dial: bool, now_ms: u64) -> Vec<Action> {
        let Some(Stage::Offered { agent }) = self.active.get(&entry).cloned() else { return Vec::new() };
        if !dial {
            return vec![self.finish(entry, Outcome::System(SystemResult::Cancelled))];
        }
        let Some(number) = self.entries.get(&entry).map(|e| e.number.clone()) else { return Vec::new() };
        self.mark_dialling(entry, Some(now_ms));
        self.active.insert(entry, Stage::PreviewDial { agent: agent.clone() });
        vec![self.dial(entry, &number, Some(agent))]
    }

    /// §2.7: the assignee dials an entry from the recall list (the box rings the agent's phone
    /// first, then the customer: the engine does that with the returned action).
    pub fn manual_dial(
        &mut self,
        entry: EntryId,
        agent: &str,
        now_ms: u64,
        minute_of_day: u16,
        restricted: &dyn Fn(&str) -> bool,
    ) -> Result<Action, DialerError> {
        let e = self.entries.get(&entry).ok_or(DialerError::NoEntry)?;
        if e.assignee.as_deref() != Some(agent) || !e.result.is_waiting() || self.active.contains_key(&entry)
        {
            return Err(DialerError::NotYours);
        }
        if !self.settings.in_window(minute_of_day) {
            return Err(DialerError::Closed);
        }
        if self.load().channels >= self.settings.pacing.max_channels {
            return Err(DialerError::ChannelLimit);
        }
        let number = e.number.clone();
        if restricted(&number) {
            let _ = self.finish(entry, Outcome::System(SystemResult::Restricted));
            return Err(DialerError::Restricted);
        }
        self.mark_dialling(entry, Some(now_ms));
        self.active.insert(entry, Stage::PreviewDial { agent: agent.to_string() });
        Ok(self.dial(entry, &number, Some(agent.to_string())))
    }

    /// The call of `entry` ended (either side hung up, at any stage after dialling).
    pub fn call_ended(&mut self, entry: EntryId) -> Vec<Action> {
        let Some(stage) = self.active.get(&entry).cloned() else { return Vec::new() };
        match stage {
            Stage::Talking { agent } => {
                let mut actions = vec![self.finish(entry, Outcome::System(SystemResult::NotEntered))];
                if self.settings.result_by_dtmf {
                    actions.push(Action::AskResult { entry, agent });
                }
                actions
            }
            // The customer hung up before an agent answered, or the agent hung up while the
            // customer rang: both are キャンセル.
            _ => {
                let mut actions = vec![self.finish(entry, Outcome::System(SystemResult::Cancelled))];
                actions.extend(self.assign_waiting());
                actions
            }
        }
    }

    /// A result entered in the web page or by DTMF.
    pub fn enter_result(&mut self, entry: EntryId, number: u16) -> Result<Action, DialerError> {
        if !self.settings.results.iter().any(|r| r.number == number) {
            return Err(DialerError::NoSuchResult);
        }
        if !self.entries.contains_key(&entry) {
            return Err(DialerError::NoEntry);
        }
        Ok(self.finish(entry, Outcome::Custom(number)))
    }

    /// Books a new dial `delay` after `now_ms` (DTMF `0` then `M#`…, or the web's +10 min /
    /// +1 h / +1 day). The entry waits again; an assignee keeps it in their recall list.
    pub fn book_recall(
        &mut self,
        entry: EntryId,
        now_ms: u64,
        delay: Duration,
    ) -> Result<Action, DialerError> {
        let e = self.entries.get_mut(&entry).ok_or(DialerError::NoEntry)?;
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        e.schedule_ms = Some(now_ms.saturating_add(delay_ms));
        Ok(self.finish(entry, Outcome::System(SystemResult::Waiting)))
    }

    /// 停止: stop dialling an entry that is not in a call.
    pub fn stop(&mut self, entry: EntryId) -> Result<Action, DialerError> {
        if !self.entries.contains_key(&entry) {
            return Err(DialerError::NoEntry);
        }
        if self.active.contains_key(&entry) {
            return Err(DialerError::InProgress);
        }
        Ok(self.finish(entry, Outcome::System(SystemResult::Stopped)))
    }

    /// Puts back an entry read from the store (at start); ids go on after the largest.
    pub fn restore(&mut self, entry: Entry) {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&entry.id) {
            return;
        }
        self.next_id = self.next_id.max(entry.id + 1);
        let mut entry = entry;
        // A call in progress at shutdown is over: its entry waits again unless it has a result.
        if matches!(entry.status, EntryStatus::Dialling | EntryStatus::Talking) {
            entry.status =
                if entry.result.is_waiting() { EntryStatus::Waiting } else { EntryStatus::Dialled };
        }
        self.entries.insert(entry.id, entry);
    }

    /// Whether `entry` has a dial in progress.
    pub fn is_active(&self, entry: EntryId) -> bool {
        self.active.contains_key(&entry)
    }

    /// Calls in progress (for the monitor and the channel count).
    pub fn active_calls(&self) -> usize {
        self.active.len()
    }
}
