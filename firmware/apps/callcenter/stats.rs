//! Call-center statistics from the event log (seed 004 §2.4, §2.9-2.13, §4.2-4.3; seed 002 §4.2).
//!
//! Pure and streaming: [`Stats::push`] takes the [`Event`]s in log order, one at a time, and adds
//! them to bounded buckets keyed by a [`Period`] (local hour, day, month, weekday or the whole
//! pass) and a [`Scope`] (overall, one queue, one agent). Nothing is kept per event; per key
//! there is one [`Totals`] of counters and millisecond sums, and the derived metrics (rates,
//! averages, CPH, utilisation, occupancy) are methods on it, so no division happens until a
//! report asks. `docs/callcenter.md` § Statistics lists each formula and its spec reference.
//!
//! Attribution rules (the spec's hourly batch counts finished facts, so do we):
//! - a call's counters land in the bucket of the event that settles them: answered and the wait
//!   at `connect`, talk and hold at `complete`/`transfer`, ACW at `acw_end`, an abandon at
//!   `abandon`/`timeout`. Incoming calls are counted with their outcome, so in every bucket
//!   answered ≤ incoming and a rate never exceeds 100 %;
//! - time in a status is split at local hour boundaries, so a status crossing an hour, a midnight
//!   or a month end is shared between the buckets it covers.
//!
//! Real-time values (waiting calls, longest wait, agents per state, calls in progress) come from
//! [`Stats::realtime`] and [`Stats::realtime_queue`], fed by the same pass.
use std::collections::{BTreeMap, HashMap};

use super::agent::AgentState;
use super::events::{Direction, Event, EventKind};
use crate::apps::timerules::{Date, LocalTime, UtcOffset};

/// Most buckets (period × scope) one [`Stats`] keeps. A month of hourly buckets for the overall
/// row, 10 queues and 10 agents (seed 004's comparison limit) is 31 × 24 × 21 = 15,624; at about
/// 0.5 kB per [`Totals`] this caps the pass near 8 MB. Further keys are counted in
/// [`Stats::dropped`] instead of growing the map.
pub const MAX_BUCKETS: usize = 16_384;

/// Most calls tracked at once for "waiting" and "was it rung". The ACD caps a queue at 99
/// waiting calls; 4,096 covers 40 full queues plus calls the log never closed.
pub const MAX_LIVE_CALLS: usize = 4_096;

/// Most agents whose current state is tracked (the ACD's own agent table is smaller).
pub const MAX_TRACKED_AGENTS: usize = 1_024;

/// Longest single status interval accounted. A gap longer than a month means a lost `logout`
/// (seed 004 §2.11 caution 2); the excess is dropped and counted in [`Stats::clamped`], which also
/// bounds the hour-splitting loop to 744 steps.
pub const MAX_STATE_INTERVAL_MS: u64 = 31 * 86_400_000;

/// Number of status slots: the eleven fixed states and the custom other-work states.
pub const STATE_SLOTS: usize = 11 + super::agent::MAX_CUSTOM_STATES;

const HOUR_MS: u64 = 3_600_000;

/// A granularity of the reports (seed 004 §2.11 集計単位).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 時間: one bucket per local clock hour.
    Hour,
    /// 日: one bucket per local date.
    Day,
    /// 月: one bucket per local month.
    Month,
    /// 曜日: one bucket per local weekday, all weeks together.
    Weekday,
    /// One bucket for the whole pass.
    Total,
}

/// The time part of a bucket key, in local time at the configured offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A local clock hour (0-23) of a date.
    Hour(Date, u8),
    /// A local date.
    Day(Date),
    /// A local year and month (1-12).
    Month(i32, u8),
    /// A local weekday, 0 = Monday … 6 = Sunday.
    Weekday(u8),
    /// The whole pass.
    Total,
}

impl Period {
    fn of(unit: Unit, local: LocalTime) -> Period {
        match unit {
            Unit::Hour => Period::Hour(local.date, u8::try_from(local.minute_of_day / 60).unwrap_or(0)),
            Unit::Day => Period::Day(local.date),
            Unit::Month => Period::Month(local.date.year, local.date.month),
            Unit::Weekday => Period::Weekday(local.date.weekday() as u8),
            Unit::Total => Period::Total,
        }
    }
}

/// The subject part of a bucket key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// 全体: every queue and every agent.
    Overall,
    /// One queue (電話グループ). Status times are not split per queue: events do not say which
    /// queues an agent belongs to, so queue buckets have no working time.
    Queue(String),
    /// One agent (オペレーター).
    Agent(String),
}

/// A bucket key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketKey {
    /// When.
    pub period: Period,
    /// Who.
    pub scope: Scope,
}

/// What a statistics pass needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsConfig {
    /// The local time zone of the reports.
    pub offset: UtcOffset,
    /// 応答目標時間 (seed 004 §2.24), milliseconds; a call answered after waiting at most this long
    /// counts for the service level.
    pub target_answer_ms: u64,
    /// The periods to bucket by; each event updates one bucket per unit and scope.
    pub units: Vec<Unit>,
}

impl Default for StatsConfig {
    fn default() -> Self {
        // 50 s is the spec's example target (seed 004 §2.24).
        StatsConfig { offset: UtcOffset::JST, target_answer_ms: 50_000, units: vec![Unit::Total] }
    }
}

/// A ratio shown as a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    /// Numerator.
    pub num: u64,
    /// Denominator; 0 means "no calls".
    pub den: u64,
}

impl Ratio {
    /// Tenths of a percent, truncated (seed 004 §4.2: 6/31 = 19.35 % is shown 19.3); `None`
    /// when the denominator is 0.
    pub fn tenths(self) -> Option<u64> {
        scaled(self.num, 1000, self.den)
    }

    /// Seed 004 display: one decimal, truncated; `0.0` when there is nothing to divide (the
    /// CSV samples show 0 for a rate with no calls).
    pub fn seed004(self) -> String {
        let t = self.tenths().unwrap_or(0);
        format!("{}.{}", t / 10, t % 10)
    }

    /// Seed 002 display: two decimals, truncated like seed 004; `-` when there are no calls
    /// (seed 002 §4.2).
    pub fn seed002(self) -> String {
        match scaled(self.num, 10_000, self.den) {
            Some(h) => format!("{}.{:02}", h / 100, h % 100),
            None => String::from("-"),
        }
    }
}

/// `num × scale ÷ den`, truncated, without overflow.
fn scaled(num: u64, scale: u64, den: u64) -> Option<u64> {
    if den == 0 {
        return None;
    }
    let v = u128::from(num) * u128::from(scale) / u128::from(den);
    Some(u64::try_from(v).unwrap_or(u64::MAX))
}

/// `sum ÷ n` milliseconds, truncated; `None` when `n` is 0.
pub fn average_ms(sum_ms: u64, n: u64) -> Option<u64> {
    sum_ms.checked_div(n)
}

/// `H:MM:SS` as in the CSV exports (seed 004 §4.2), seconds truncated.
pub fn format_hms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Index of a status in [`Totals::state_ms`]: the fixed states in seed 004's report order, then
/// custom state 1..=6. `None` for a custom index out of range.
pub fn state_slot(state: AgentState) -> Option<usize> {
    let slot = match state {
        AgentState::LoggedOut => 0,
        AgentState::Preparing => 1,
        AgentState::Available => 2,
        AgentState::Ringing => 3,
        AgentState::Talking => 4,
        AgentState::AfterCallWork => 5,
        AgentState::Dialling => 6,
        AgentState::OnHold => 7,
        AgentState::InternalCall => 8,
        AgentState::LunchBreak => 9,
        AgentState::ShortBreak => 10,
        AgentState::OtherWork(n) => {
            let n = usize::from(n);
            if n == 0 || n > super::agent::MAX_CUSTOM_STATES {
                return None;
            }
            10 + n
        }
    };
    Some(slot)
}

const SLOT_AVAILABLE: usize = 2;
const SLOT_RINGING: usize = 3;
const SLOT_TALKING: usize = 4;
const SLOT_ACW: usize = 5;
const SLOT_DIALLING: usize = 6;
const SLOT_ON_HOLD: usize = 7;
const SLOT_LUNCH: usize = 9;

fn dir(d: Direction) -> usize {
    match d {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    }
}

/// Counters and sums of one bucket. Arrays indexed `[inbound, outbound]` are split by
/// [`Direction`]. Field comments name the spec column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// 着信数. Queue/overall: calls that rang an agent, counted at their outcome (answered,
    /// abandoned or timed out after ringing; seed 004 §2.11 caution 3). Agent: times rung.
    pub incoming: u64,
    /// 応答数: `connect` events.
    pub answered: u64,
    /// Answered after waiting at most the target answer time (サービスレベル numerator).
    pub answered_within_target: u64,
    /// 放棄数 (seed 004): rang an agent but never answered — caller hang-up or queue timeout.
    pub abandoned: u64,
    /// 破棄呼 (seed 002): every caller hang-up in the queue, rung or not.
    pub hangups: u64,
    /// 制限時間 (seed 002): queue timeouts.
    pub timeouts: u64,
    /// あふれ (seed 002): calls refused a place in the queue.
    pub overflows: u64,
    /// 着信無応答数 (agent): rings that ended without this agent answering.
    pub no_answer: u64,
    /// 発信数.
    pub outgoing: u64,
    /// 接続数.
    pub connected: u64,
    /// 合計着信呼出時間: every inbound ring, answered or not.
    pub ring_in_ms: u64,
    /// 合計着信応答時間: ring time of answered calls.
    pub answer_ring_ms: u64,
    /// Queue entry → answer, summed (平均応答時間, seed 004 §2.4 "incoming start → talk start").
    pub answer_wait_ms: u64,
    /// 最大応答時間 (seed 002).
    pub max_answer_wait_ms: u64,
    /// 合計放棄時間: queue entry → hang-up/timeout of the abandoned calls.
    pub abandon_ms: u64,
    /// 最大放棄時間 (seed 002).
    pub max_abandon_ms: u64,
    /// 合計発信呼出時間.
    pub ring_out_ms: u64,
    /// 合計通話時間 (hold included).
    pub talk_ms: [u64; 2],
    /// Talks ended (complete or transfer).
    pub talks: [u64; 2],
    /// 合計後処理時間.
    pub acw_ms: [u64; 2],
    /// 合計保留時間.
    pub hold_ms: [u64; 2],
    /// 保留数.
    pub holds: [u64; 2],
    /// Time per status, slots per [`state_slot`].
    pub state_ms: [u64; STATE_SLOTS],
    /// Transitions into each status (status average denominator).
    pub state_entries: [u64; STATE_SLOTS],
    /// Distinct local days with login time (ログイン時間 average denominator).
    pub login_days: u64,
    last_login_day: Option<Date>,
}

impl Totals {
    /// Adds another bucket's figures (e.g. stored hourly batches into a day). Sums and counts
    /// add, maxima take the larger. `login_days` adds too, which is right only for buckets of
    /// different days: sum hourly batches into days by recounting days, not by adding.
    pub fn add(&mut self, other: &Totals) {
        fn sum<const N: usize>(a: &mut [u64; N], b: &[u64; N]) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.saturating_add(*y);
            }
        }
        let pairs: [(&mut u64, u64); 16] = [
            (&mut self.incoming, other.incoming),
            (&mut self.answered, other.answered),
            (&mut self.answered_within_target, other.answered_within_target),
            (&mut self.abandoned, other.abandoned),
            (&mut self.hangups, other.hangups),
            (&mut self.timeouts, other.timeouts),
            (&mut self.overflows, other.overflows),
            (&mut self.no_answer, other.no_answer),
            (&mut self.outgoing, other.outgoing),
            (&mut self.connected, other.connected),
            (&mut self.ring_in_ms, other.ring_in_ms),
            (&mut self.answer_ring_ms, other.answer_ring_ms),
            (&mut self.answer_wait_ms, other.answer_wait_ms),
            (&mut self.abandon_ms, other.abandon_ms),
            (&mut self.ring_out_ms, other.ring_out_ms),
            (&mut self.login_days, other.login_days),
        ];
        for (x, y) in pairs {
            *x = x.saturating_add(y);
        }
        self.max_answer_wait_ms = self.max_answer_wait_ms.max(other.max_answer_wait_ms);
        self.max_abandon_ms = self.max_abandon_ms.max(other.max_abandon_ms);
        sum(&mut self.talk_ms, &other.talk_ms);
        sum(&mut self.talks, &other.talks);
        sum(&mut self.acw_ms, &other.acw_ms);
        sum(&mut self.hold_ms, &other.hold_ms);
        sum(&mut self.holds, &other.holds);
        sum(&mut self.state_ms, &other.state_ms);
        sum(&mut self.state_entries, &other.state_entries);
        self.last_login_day = self.last_login_day.max(other.last_login_day);
    }

    /// 応答率 (seed 004): answered ÷ incoming.
    pub fn answer_rate(&self) -> Ratio {
        Ratio { num: self.answered, den: self.incoming }
    }

    /// 応答率 (seed 002 §4.2): answered ÷ every call that reached the queue (answered,
    /// hang-ups, timeouts, overflows).
    pub fn answer_rate_all(&self) -> Ratio {
        let den = self.answered + self.hangups + self.timeouts + self.overflows;
        Ratio { num: self.answered, den }
    }

    /// 通話数: conversations, answered inbound plus connected outbound (seed 004 §2.12, interpretation).
    pub fn talk_count(&self) -> u64 {
        self.answered.saturating_add(self.connected)
    }

    /// 接続率: connected ÷ outgoing.
    pub fn connect_rate(&self) -> Ratio {
        Ratio { num: self.connected, den: self.outgoing }
    }

    /// サービスレベル: answered within target ÷ incoming (abandoned included).
    pub fn service_level(&self) -> Ratio {
        Ratio { num: self.answered_within_target, den: self.incoming }
    }

    /// Established calls in a direction: answered inbound or connected outbound.
    pub fn established(&self, d: Direction) -> u64 {
        match d {
            Direction::Inbound => self.answered,
            Direction::Outbound => self.connected,
        }
    }

    /// 合計処理時間: talk + ACW (talk established → ACW end).
    pub fn handling_ms(&self, d: Direction) -> u64 {
        self.talk_ms[dir(d)].saturating_add(self.acw_ms[dir(d)])
    }

    /// 平均処理時間 (AHT): handling ÷ established.
    pub fn aht_ms(&self, d: Direction) -> Option<u64> {
        average_ms(self.handling_ms(d), self.established(d))
    }

    /// 平均通話時間: talk ÷ established.
    pub fn avg_talk_ms(&self, d: Direction) -> Option<u64> {
        average_ms(self.talk_ms[dir(d)], self.established(d))
    }

    /// 平均後処理時間: ACW ÷ established.
    pub fn avg_acw_ms(&self, d: Direction) -> Option<u64> {
        average_ms(self.acw_ms[dir(d)], self.established(d))
    }

    /// 平均保留時間① (per call): hold ÷ established.
    pub fn avg_hold_per_call_ms(&self, d: Direction) -> Option<u64> {
        average_ms(self.hold_ms[dir(d)], self.established(d))
    }

    /// 平均保留時間② (per hold): hold ÷ holds.
    pub fn avg_hold_per_hold_ms(&self, d: Direction) -> Option<u64> {
        average_ms(self.hold_ms[dir(d)], self.holds[dir(d)])
    }

    /// 平均着信呼出時間: inbound ring ÷ incoming.
    pub fn avg_ring_in_ms(&self) -> Option<u64> {
        average_ms(self.ring_in_ms, self.incoming)
    }

    /// 平均着信応答時間 / 平均呼出時間: ring time of answered calls ÷ answered.
    pub fn avg_answer_ring_ms(&self) -> Option<u64> {
        average_ms(self.answer_ring_ms, self.answered)
    }

    /// 平均応答時間: queue entry → answer ÷ answered.
    pub fn avg_answer_wait_ms(&self) -> Option<u64> {
        average_ms(self.answer_wait_ms, self.answered)
    }

    /// 平均放棄時間: abandon time ÷ abandoned.
    pub fn avg_abandon_ms(&self) -> Option<u64> {
        average_ms(self.abandon_ms, self.abandoned)
    }

    /// 平均発信呼出時間: outbound ring ÷ 発信数.
    pub fn avg_ring_out_ms(&self) -> Option<u64> {
        average_ms(self.ring_out_ms, self.outgoing)
    }

    /// ログイン時間: every status except ログアウト.
    pub fn login_ms(&self) -> u64 {
        self.state_ms.iter().skip(1).fold(0u64, |a, v| a.saturating_add(*v))
    }

    /// Login average: login time ÷ days with a login (seed 004 §2.13).
    pub fn avg_login_ms(&self) -> Option<u64> {
        average_ms(self.login_ms(), self.login_days)
    }

    /// OPの労働時間: login time minus 昼休憩 (other work included).
    pub fn working_ms(&self) -> u64 {
        self.login_ms().saturating_sub(self.state_ms[SLOT_LUNCH])
    }

    /// Status average: time in the status ÷ transitions into it.
    pub fn avg_state_ms(&self, state: AgentState) -> Option<u64> {
        let s = state_slot(state)?;
        average_ms(*self.state_ms.get(s)?, *self.state_entries.get(s)?)
    }

    /// Share of one status in the total of all statuses, logged-out excluded (pie-chart %).
    pub fn state_share(&self, state: AgentState) -> Ratio {
        let num = state_slot(state).and_then(|s| self.state_ms.get(s)).copied().unwrap_or(0);
        Ratio { num, den: self.login_ms() }
    }

    /// Ring start → ACW end: 着信中 + 発信中 + 通話中 + 保留中 + 後処理.
    fn customer_ms(&self) -> u64 {
        [SLOT_RINGING, SLOT_DIALLING, SLOT_TALKING, SLOT_ON_HOLD, SLOT_ACW]
            .iter()
            .filter_map(|s| self.state_ms.get(*s))
            .fold(0u64, |a, v| a.saturating_add(*v))
    }

    /// 稼働率: (ring start → ACW end + 受付可) ÷ working time.
    pub fn utilisation(&self) -> Ratio {
        let num = self.customer_ms().saturating_add(self.state_ms[SLOT_AVAILABLE]);
        Ratio { num, den: self.working_ms() }
    }

    /// 占有率: (talk established → ACW end) ÷ (ring start → ACW end + 受付可).
    pub fn occupancy(&self) -> Ratio {
        let num = [SLOT_TALKING, SLOT_ON_HOLD, SLOT_ACW]
            .iter()
            .filter_map(|s| self.state_ms.get(*s))
            .fold(0u64, |a, v| a.saturating_add(*v));
        Ratio { num, den: self.customer_ms().saturating_add(self.state_ms[SLOT_AVAILABLE]) }
    }

    /// CPH in tenths of calls per working hour, truncated; `None` with no working time.
    pub fn cph_tenths(&self, d: Direction) -> Option<u64> {
        scaled(self.established(d), 10 * HOUR_MS, self.working_ms())
    }

    /// CPH as shown in the CSV (`4.2`); `0.0` with no working time.
    pub fn cph(&self, d: Direction) -> String {
        let t = self.cph_tenths(d).unwrap_or(0);
        format!("{}.{}", t / 10, t % 10)
    }
}

/// Real-time overall row (seed 004 §2.4 ①, seed 002 §4.3 board).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Realtime {
    /// 待ち呼: calls in a queue not yet answered.
    pub waiting: u32,
    /// 最大待ち時間: the longest current wait.
    pub longest_wait_ms: u64,
    /// 通話中(着): agents talking or holding an inbound call.
    pub in_call_in: u32,
    /// 通話中(発): agents talking or holding an outbound call.
    pub in_call_out: u32,
    /// 着信中: agents whose phone is ringing with a queue call (seed 002 counts them as talking).
    pub ringing: u32,
    /// 発信中: agents dialling out, before the far end answers.
    pub dialling: u32,
    /// ログイン.
    pub logged_in: u32,
    /// 受付可.
    pub available: u32,
    /// 後処理.
    pub after_call_work: u32,
    /// 小休憩.
    pub short_break: u32,
    /// 昼休憩.
    pub lunch_break: u32,
    /// 別作業 (any custom state).
    pub other_work: u32,
}

impl Realtime {
    /// 通話中: all calls in progress, hold included.
    pub fn in_call(&self) -> u32 {
        self.in_call_in + self.in_call_out
    }
}

/// Real-time values of one queue. Agent-state counts are absent: events do not carry queue
/// membership.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueRealtime {
    /// 待ち呼.
    pub waiting: u32,
    /// 最大待ち時間.
    pub longest_wait_ms: u64,
    /// 通話中(着) for calls from this queue.
    pub in_call: u32,
}

#[derive(Debug, Clone)]
struct LiveCall {
    queue: Option<String>,
    entered_ms: u64,
    rang: bool,
}

#[derive(Debug, Clone)]
struct LiveAgent {
    state: AgentState,
    since_ms: u64,
    /// The call being talked: direction and queue.
    call: Option<(Direction, Option<String>)>,
    /// Queue of the last ended talk, for the ACW that follows (acw events carry no queue).
    last_queue: Option<String>,
    /// Holds of the current call, for `transfer` (which carries no hold figures).
    holds: u64,
    hold_ms: u64,
    /// Whether `state` came from a `state_change` (an agent first seen in a call event is
    /// recorded as logged out until its next state change says where it was).
    state_known: bool,
}

/// One statistics pass. `Clone` lets a live view close its open states on a copy.
#[derive(Debug, Clone)]
pub struct Stats {
    cfg: StatsConfig,
    buckets: BTreeMap<BucketKey, Totals>,
    calls: HashMap<u64, LiveCall>,
    agents: HashMap<String, LiveAgent>,
    labels: [Option<String>; super::agent::MAX_CUSTOM_STATES],
    dropped: u64,
    clamped: u64,
    /// Facts before this instant only set up state (see [`Stats::count_from`]).
    count_from_ms: u64,
}

/// Which scopes one update goes to.
struct Target<'a> {
    overall: bool,
    queue: Option<&'a str>,
    agent: Option<&'a str>,
}

impl Stats {
    /// An empty pass.
    pub fn new(cfg: StatsConfig) -> Stats {
        let mut cfg = cfg;
        let mut seen = Vec::with_capacity(cfg.units.len());
        cfg.units.retain(|u| {
            let fresh = !seen.contains(u);
            seen.push(*u);
            fresh
        });
        Stats {
            cfg,
            buckets: BTreeMap::new(),
            calls: HashMap::new(),
            agents: HashMap::new(),
            labels: Default::default(),
            dropped: 0,
            clamped: 0,
            count_from_ms: 0,
        }
    }

    /// Counts nothing before `from_ms`: earlier events still set up who is waiting and which
    /// state each agent is in, so a report that replays a warm-up before its period starts
    /// neither loses the statuses open at its start nor counts the warm-up's facts.
    pub fn count_from(&mut self, from_ms: u64) {
        self.count_from_ms = from_ms;
    }

    /// Feeds every event of an iterator, in log order.
    pub fn extend<'e>(&mut self, events: impl IntoIterator<Item = &'e Event>) {
        for e in events {
            self.push(e);
        }
    }

    /// One bucket.
    pub fn get(&self, period: Period, scope: &Scope) -> Option<&Totals> {
        self.buckets.get(&BucketKey { period, scope: scope.clone() })
    }

    /// Every bucket, ordered by period then scope.
    pub fn buckets(&self) -> impl Iterator<Item = (&BucketKey, &Totals)> {
        self.buckets.iter()
    }

    /// Updates refused because [`MAX_BUCKETS`] was reached (or a tracking table was full).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Status intervals cut at [`MAX_STATE_INTERVAL_MS`].
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The latest name seen for custom state `n` (1-based), so deleted states stay readable.
    pub fn custom_label(&self, n: u8) -> Option<&str> {
        self.labels.get(usize::from(n).checked_sub(1)?)?.as_deref()
    }

    /// Closes every open status interval at `end_ms` (end of the report period, or now for a
    /// live "so far" view); the agents stay in their state from `end_ms` on.
    pub fn finish(&mut self, end_ms: u64) {
        let open: Vec<(String, AgentState, u64)> =
            self.agents.iter().map(|(id, a)| (id.clone(), a.state, a.since_ms)).collect();
        for (id, state, since) in open {
            self.add_state_time(&id, state, since, end_ms);
            if let Some(a) = self.agents.get_mut(&id) {
                a.since_ms = a.since_ms.max(end_ms);
            }
        }
    }

    /// The real-time overall row at `now_ms`.
    pub fn realtime(&self, now_ms: u64) -> Realtime {
        let mut r = Realtime { waiting: 0, longest_wait_ms: 0, ..Realtime::default() };
        for c in self.calls.values() {
            r.waiting += 1;
            r.longest_wait_ms = r.longest_wait_ms.max(now_ms.saturating_sub(c.entered_ms));
        }
        for a in self.agents.values() {
            if a.state != AgentState::LoggedOut {
                r.logged_in += 1;
            }
            match a.state {
                AgentState::Available => r.available += 1,
                AgentState::AfterCallWork => r.after_call_work += 1,
                AgentState::Ringing => r.ringing += 1,
                AgentState::Dialling => r.dialling += 1,
                AgentState::ShortBreak => r.short_break += 1,
                AgentState::LunchBreak => r.lunch_break += 1,
                AgentState::OtherWork(_) => r.other_work += 1,
                AgentState::Talking | AgentState::OnHold => match a.call {
                    Some((Direction::Outbound, _)) => r.in_call_out += 1,
                    _ => r.in_call_in += 1,
                },
                _ => {}
            }
        }
        r
    }

    /// The real-time row of one queue at `now_ms`.
    pub fn realtime_queue(&self, now_ms: u64, queue: &str) -> QueueRealtime {
        let mut r = QueueRealtime::default();
        for c in self.calls.values().filter(|c| c.queue.as_deref() == Some(queue)) {
            r.waiting += 1;
            r.longest_wait_ms = r.longest_wait_ms.max(now_ms.saturating_sub(c.entered_ms));
        }
        r.in_call = self
            .agents
            .values()
            .filter(|a| matches!(a.state, AgentState::Talking | AgentState::OnHold))
            .filter(|a| matches!(&a.call, Some((Direction::Inbound, Some(q))) if q == queue))
            .count()
            .try_into()
            .unwrap_or(u32::MAX);
        r
    }

    /// Adds one event. Events must come in log (time) order; an earlier timestamp than the
    /// previous one only shortens status intervals to zero.
    pub fn push(&mut self, e: &Event) {
        let at = e.at_ms;
        let queue = e.queue.as_deref();
        let agent = e.agent.as_deref();
        let group = Target { overall: true, queue, agent: None };
        let all = Target { overall: true, queue, agent };
        let target_ms = self.cfg.target_answer_ms;
        match &e.kind {
            EventKind::Enter { .. } => {
                if let Some(call) = e.call {
                    if self.calls.len() < MAX_LIVE_CALLS || self.calls.contains_key(&call) {
                        let live = LiveCall { queue: e.queue.clone(), entered_ms: at, rang: false };
                        self.calls.insert(call, live);
                    } else {
                        self.dropped += 1;
                    }
                }
            }
            EventKind::Ring { .. } => {
                if let Some(c) = e.call.and_then(|c| self.calls.get_mut(&c)) {
                    c.rang = true;
                }
                self.bump(at, &Target { overall: false, queue: None, agent }, |t| t.incoming += 1);
            }
            EventKind::NoAnswer { ring_ms }
            | EventKind::Decline { ring_ms }
            | EventKind::RingStopped { ring_ms } => {
                let ring_ms = *ring_ms;
                self.bump(at, &all, |t| t.ring_in_ms = t.ring_in_ms.saturating_add(ring_ms));
                self.bump(at, &Target { overall: false, queue: None, agent }, |t| t.no_answer += 1);
            }
            EventKind::Connect { wait_ms, ring_ms } => {
                let (wait, ring) = (*wait_ms, *ring_ms);
                if let Some(c) = e.call {
                    self.calls.remove(&c);
                }
                self.bump(at, &group, |t| t.incoming += 1);
                self.bump(at, &all, |t| {
                    t.answered += 1;
                    if wait <= target_ms {
                        t.answered_within_target += 1;
                    }
                    t.ring_in_ms = t.ring_in_ms.saturating_add(ring);
                    t.answer_ring_ms = t.answer_ring_ms.saturating_add(ring);
                    t.answer_wait_ms = t.answer_wait_ms.saturating_add(wait);
                    t.max_answer_wait_ms = t.max_answer_wait_ms.max(wait);
                });
                if let Some(a) = self.live(agent, at) {
                    a.call = Some((Direction::Inbound, e.queue.clone()));
                    a.holds = 0;
                    a.hold_ms = 0;
                }
            }
            EventKind::Abandon { wait_ms, rang, .. } => {
                let (wait, rang) = (*wait_ms, *rang);
                if let Some(c) = e.call {
                    self.calls.remove(&c);
                }
                self.bump(at, &group, |t| {
                    t.hangups += 1;
                    if rang {
                        t.incoming += 1;
                        t.abandoned += 1;
                        t.abandon_ms = t.abandon_ms.saturating_add(wait);
                        t.max_abandon_ms = t.max_abandon_ms.max(wait);
                    }
                });
            }
            EventKind::Timeout { wait_ms, .. } => {
                let wait = *wait_ms;
                // `timeout` does not say whether an agent was rung; the live table remembers.
                let rang = e.call.and_then(|c| self.calls.remove(&c)).is_some_and(|c| c.rang);
                self.bump(at, &group, |t| {
                    t.timeouts += 1;
                    if rang {
                        t.incoming += 1;
                        t.abandoned += 1;
                        t.abandon_ms = t.abandon_ms.saturating_add(wait);
                        t.max_abandon_ms = t.max_abandon_ms.max(wait);
                    }
                });
            }
            EventKind::Overflow { .. } => {
                if let Some(c) = e.call {
                    self.calls.remove(&c);
                }
                self.bump(at, &group, |t| t.overflows += 1);
            }
            // A transfer ends the agent's talk like a hang-up does; both carry the figures.
            EventKind::Complete { direction, talk_ms, hold_ms, holds }
            | EventKind::Transfer { direction, talk_ms, hold_ms, holds, .. } => {
                let (d, talk, hold, holds) = (dir(*direction), *talk_ms, *hold_ms, u64::from(*holds));
                self.end_talk(at, agent, queue);
                self.bump(at, &all, |t| {
                    t.talks[d] += 1;
                    t.talk_ms[d] = t.talk_ms[d].saturating_add(talk);
                    t.hold_ms[d] = t.hold_ms[d].saturating_add(hold);
                    t.holds[d] += holds;
                });
            }
            EventKind::Hold => {
                if let Some(a) = self.live(agent, at) {
                    a.holds += 1;
                }
            }
            EventKind::Unhold { hold_ms } => {
                if let Some(a) = self.live(agent, at) {
                    a.hold_ms = a.hold_ms.saturating_add(*hold_ms);
                }
            }
            EventKind::Dial { .. } => {
                self.bump(at, &all, |t| t.outgoing += 1);
            }
            EventKind::DialAnswered { ring_ms } => {
                let ring = *ring_ms;
                self.bump(at, &all, |t| {
                    t.connected += 1;
                    t.ring_out_ms = t.ring_out_ms.saturating_add(ring);
                });
                if let Some(a) = self.live(agent, at) {
                    a.call = Some((Direction::Outbound, None));
                    a.holds = 0;
                    a.hold_ms = 0;
                }
            }
            EventKind::DialFailed { ring_ms } => {
                let ring = *ring_ms;
                self.bump(at, &all, |t| t.ring_out_ms = t.ring_out_ms.saturating_add(ring));
            }
            EventKind::StateChange { from, to, label, .. } => {
                if let (AgentState::OtherWork(n), Some(l)) = (to, label) {
                    if let Some(slot) = usize::from(*n).checked_sub(1).and_then(|i| self.labels.get_mut(i)) {
                        *slot = Some(l.clone());
                    }
                }
                if let Some(id) = agent {
                    self.state_change(id, at, *from, *to);
                }
            }
            EventKind::AcwStart { .. } => {}
            EventKind::AcwEnd { direction, acw_ms } => {
                let (d, acw) = (dir(*direction), *acw_ms);
                // `acw_end` carries no queue: use the queue of the agent's last talk.
                let q = agent.and_then(|id| self.agents.get(id)).and_then(|a| a.last_queue.clone());
                let q = if *direction == Direction::Inbound { q } else { None };
                let target = Target { overall: true, queue: q.as_deref(), agent };
                self.bump(at, &target, |t| t.acw_ms[d] = t.acw_ms[d].saturating_add(acw));
            }
        }
    }

    /// Ends the agent's talk; returns the holds counted since it began.
    fn end_talk(&mut self, at: u64, agent: Option<&str>, queue: Option<&str>) -> (u64, u64) {
        match self.live(agent, at) {
            Some(a) => {
                a.call = None;
                a.last_queue = queue.map(str::to_string);
                let held = (a.holds, a.hold_ms);
                a.holds = 0;
                a.hold_ms = 0;
                held
            }
            None => (0, 0),
        }
    }

    fn state_change(&mut self, id: &str, at: u64, from: AgentState, to: AgentState) {
        let (prev, since) = match self.agents.get(id) {
            Some(a) if a.state_known => (a.state, a.since_ms),
            // First state change seen: nothing to close, `from` is where the agent was.
            _ => (from, at),
        };
        self.add_state_time(id, prev, since, at);
        if let Some(s) = state_slot(to) {
            let target = Target { overall: true, queue: None, agent: Some(id) };
            self.bump(at, &target, |t| {
                if let Some(n) = t.state_entries.get_mut(s) {
                    *n += 1;
                }
            });
        }
        if let Some(a) = self.live(Some(id), at) {
            a.state = to;
            a.since_ms = at;
            a.state_known = true;
        }
    }

    /// The tracked agent `id`, added on first sight while there is room.
    fn live(&mut self, id: Option<&str>, at: u64) -> Option<&mut LiveAgent> {
        let id = id?;
        if !self.agents.contains_key(id) {
            if self.agents.len() >= MAX_TRACKED_AGENTS {
                self.dropped += 1;
                return None;
            }
            let live = LiveAgent {
                state: AgentState::LoggedOut,
                since_ms: at,
                call: None,
                last_queue: None,
                holds: 0,
                hold_ms: 0,
                state_known: false,
            };
            self.agents.insert(id.to_string(), live);
        }
        self.agents.get_mut(id)
    }

    /// Adds `[since, until)` in `state` to the overall and agent buckets, split at local hours.
    fn add_state_time(&mut self, id: &str, state: AgentState, since: u64, until: u64) {
        let since = since.max(self.count_from_ms);
        if state == AgentState::LoggedOut || until <= since {
            return;
        }
        let Some(slot) = state_slot(state) else { return };
        let mut until = until;
        if until - since > MAX_STATE_INTERVAL_MS {
            self.clamped += 1;
            until = since + MAX_STATE_INTERVAL_MS;
        }
        let offset_ms = i64::from(self.cfg.offset.minutes()) * 60_000;
        let mut start = since;
        while start < until {
            // Next local hour boundary after `start`, back in Unix ms.
            let local = i128::from(start) + i128::from(offset_ms);
            let next_local = (local.div_euclid(i128::from(HOUR_MS)) + 1) * i128::from(HOUR_MS);
            let next = u64::try_from(next_local - i128::from(offset_ms)).unwrap_or(u64::MAX);
            let end = next.min(until);
            let piece = end - start;
            let day = LocalTime::from_unix_ms(start, self.cfg.offset).date;
            let target = Target { overall: true, queue: None, agent: Some(id) };
            self.bump(start, &target, |t| {
                if let Some(v) = t.state_ms.get_mut(slot) {
                    *v = v.saturating_add(piece);
                }
                if t.last_login_day != Some(day) {
                    t.last_login_day = Some(day);
                    t.login_days += 1;
                }
            });
            start = end;
        }
    }

    /// Applies `f` to the bucket of every configured unit for every scope of `target`.
    fn bump(&mut self, at_ms: u64, target: &Target<'_>, f: impl Fn(&mut Totals)) {
        if at_ms < self.count_from_ms {
            return;
        }
        let local = LocalTime::from_unix_ms(at_ms, self.cfg.offset);
        let mut scopes: [Option<Scope>; 3] = [None, None, None];
        if target.overall {
            scopes[0] = Some(Scope::Overall);
        }
        scopes[1] = target.queue.map(|q| Scope::Queue(q.to_string()));
        scopes[2] = target.agent.map(|a| Scope::Agent(a.to_string()));
        for unit in self.cfg.units.iter().copied() {
            let period = Period::of(unit, local);
            for scope in scopes.iter().flatten() {
                let key = BucketKey { period, scope: scope.clone() };
                if let Some(t) = self.buckets.get_mut(&key) {
                    f(t);
                } else if self.buckets.len() < MAX_BUCKETS {
                    let mut t = Totals::default();
                    f(&mut t);
                    self.buckets.insert(key, t);
                } else {
                    self.dropped += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
