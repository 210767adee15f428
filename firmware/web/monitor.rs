//! The live monitor (seed 004 §2.4-2.10): a JSON snapshot and a Server-Sent Events stream of
//! the phone-group and operator rows.
//!
//! One [`Hub`] task asks the engine for a [`MonitorSnapshot`] (live views and the call-center
//! events since its last look), feeds the events to its own statistics pass for today's
//! counters (off the engine's task: the engine only copies), and broadcasts the result, as one
//! JSON text, to every open stream. It asks when the daemon says the call-center event log grew
//! ([`Hub::changed`], at most every [`MIN_SNAPSHOT_GAP`]) and every [`REFRESH_EVERY`] so
//! elapsed times stay honest, and only while someone watches. The broadcast keeps
//! [`STREAM_BACKLOG`] snapshots: a browser that falls further behind gets a `resync` event with
//! the newest snapshot instead of the ones it missed, so a slow reader never grows memory.
//!
//! Permissions: `monitor_view` for both routes. The page's actions use the existing routes
//! (supervision, agent state, sessions); the column choice and the monitoring targets
//! (§2.3) are kept per user in the browser.

use super::api::{ApiError, ApiResult, Authed, State};
use super::auth::Permission;
use super::WebQuery;
use crate::apps::callcenter::stats::{
    state_slot, Period, QueueRealtime, Realtime, Scope, Stats, StatsConfig, Totals, Unit,
};
use crate::apps::callcenter::{AgentState, Direction};
use crate::apps::timerules::LocalTime;
use crate::engine::{AgentView, MonitorSnapshot, QueueView};
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::{Extension, Json};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot, Notify, Semaphore};

/// Snapshots a stream may fall behind before it is resynchronised: a browser reads one in
/// well under a second, so eight is several seconds of a stalled tab.
pub const STREAM_BACKLOG: usize = 8;

/// Open monitor streams at once: a supervisor team of a few dozen, each with a tab or two,
/// inside the server's connection bound (`MAX_CONNECTIONS`).
pub const MAX_STREAMS: usize = 32;

/// Shortest gap between two snapshots: a burst of events (a queue call touches several
/// agents) becomes one snapshot, and the 1 s promise keeps most of its margin.
pub const MIN_SNAPSHOT_GAP: Duration = Duration::from_millis(150);

/// Refresh without events, so waits and elapsed times shown do not drift from the box's.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// A stream ends after this long and the browser reconnects (EventSource does by itself):
/// the reconnect checks the session again, so a logged-out or demoted user stops receiving.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(120);

/// How long the hub waits for the engine's snapshot before trying again at the next turn.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(2);

/// Milliseconds the browser waits before reconnecting a closed stream.
const RETRY_MS: u64 = 1000;

/// Today's statistics pass, fed with each snapshot's new events.
struct Live {
    stats: Stats,
    /// Local midnight the pass counts from; a new day starts a new pass.
    midnight_ms: u64,
    /// The engine generation the pass has seen.
    generation: u64,
    /// Today's first events had left the ring when the pass was built.
    partial: bool,
}

/// What the page shows: the engine's live views and today's figures.
#[derive(Debug, Clone, Default)]
pub(super) struct MonitorView {
    at_ms: u64,
    queues: Vec<QueueView>,
    agents: Vec<AgentView>,
    names: Vec<(String, String)>,
    realtime: Realtime,
    queue_realtime: Vec<(String, QueueRealtime)>,
    today: Vec<(Scope, Totals)>,
    partial: bool,
}

fn midnight_of(snap: &MonitorSnapshot) -> u64 {
    LocalTime::from_unix_ms(snap.at_ms, snap.offset).date.midnight_unix_ms(snap.offset)
}

impl Live {
    /// An empty pass for a complete snapshot (asked with `since` 0), whose events
    /// [`Live::view`] then adds.
    fn empty(snap: &MonitorSnapshot) -> Live {
        let midnight_ms = midnight_of(snap);
        let mut stats = Stats::new(StatsConfig {
            offset: snap.offset,
            units: vec![Unit::Total],
            ..StatsConfig::default()
        });
        stats.count_from(midnight_ms);
        let partial = snap.evicted && snap.events.first().is_some_and(|e| e.at_ms > midnight_ms);
        Live { stats, midnight_ms, generation: snap.generation, partial }
    }

    /// Whether `snap` (asked with this pass's generation) can extend it; otherwise a new pass
    /// over the whole ring is needed (a new day, or the ring dropped events not yet seen).
    fn extends(&self, snap: &MonitorSnapshot) -> bool {
        midnight_of(snap) == self.midnight_ms && !(snap.complete && snap.evicted)
    }

    /// Adds `snap`'s events and renders the view; the pass itself stays open for more.
    fn view(&mut self, snap: MonitorSnapshot) -> MonitorView {
        self.stats.extend(snap.events.iter());
        self.generation = snap.generation;
        let realtime = self.stats.realtime(snap.at_ms);
        let queue_realtime = snap
            .queues
            .iter()
            .map(|q| (q.name.clone(), self.stats.realtime_queue(snap.at_ms, &q.name)))
            .collect();
        // Closing open states mutates the pass: done on a copy (one bucket per scope).
        let mut closed = Stats::clone(&self.stats);
        closed.finish(snap.at_ms);
        let today = closed
            .buckets()
            .filter(|(k, _)| k.period == Period::Total)
            .map(|(k, t)| (k.scope.clone(), t.clone()))
            .collect();
        MonitorView {
            at_ms: snap.at_ms,
            queues: snap.queues,
            agents: snap.agents,
            names: snap.names,
            realtime,
            queue_realtime,
            today,
            partial: self.partial,
        }
    }
}

/// Asks the engine for the events after `since`, bounded by [`SNAPSHOT_TIMEOUT`].
async fn ask(engine: &mpsc::Sender<WebQuery>, since: u64) -> Option<MonitorSnapshot> {
    let (reply, rx) = oneshot::channel();
    engine.send(WebQuery::Monitor { since, reply }).await.ok()?;
    tokio::time::timeout(SNAPSHOT_TIMEOUT, rx).await.ok()?.ok()
}

/// One turn: extends `live` (or builds it over the whole ring) and renders the view. The pass
/// runs on the blocking pool: a first pass over a full ring takes tens of milliseconds.
async fn refresh(engine: &mpsc::Sender<WebQuery>, live: Option<Live>) -> Option<(Live, MonitorView)> {
    let snap = ask(engine, live.as_ref().map_or(0, |l| l.generation)).await?;
    let (live, snap) = match live {
        Some(l) if l.extends(&snap) => (Some(l), snap),
        _ if snap.complete => (None, snap),
        _ => (None, ask(engine, 0).await?),
    };
    tokio::task::spawn_blocking(move || {
        let mut live = live.unwrap_or_else(|| Live::empty(&snap));
        let view = live.view(snap);
        (live, view)
    })
    .await
    .ok()
}

/// The snapshot broadcaster; see the module doc.
pub struct Hub {
    wake: Notify,
    generation: AtomicU64,
    tx: broadcast::Sender<Arc<str>>,
    latest: Mutex<Option<Arc<str>>>,
    streams: Arc<Semaphore>,
}

impl Hub {
    /// Starts the hub task, which asks `engine` for snapshots.
    pub(super) fn start(engine: mpsc::Sender<WebQuery>) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(STREAM_BACKLOG);
        let hub = Arc::new(Hub {
            wake: Notify::new(),
            generation: AtomicU64::new(0),
            tx,
            latest: Mutex::new(None),
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        });
        tokio::spawn(run(Arc::downgrade(&hub), engine));
        hub
    }

    /// The daemon's turn ended with the event log at `generation`
    /// (`Engine::monitor_generation`); a new value wakes the hub. Cheap enough for every turn.
    pub fn changed(&self, generation: u64) {
        if self.generation.swap(generation, Ordering::Relaxed) != generation {
            self.wake.notify_one();
        }
    }

    fn latest(&self) -> Option<Arc<str>> {
        self.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

async fn run(hub: std::sync::Weak<Hub>, engine: mpsc::Sender<WebQuery>) {
    let mut live: Option<Live> = None;
    loop {
        let Some(h) = hub.upgrade() else { return };
        let woken = tokio::time::timeout(REFRESH_EVERY, h.wake.notified());
        // Holding the hub across the wait is fine: the task ends at the next turn after the
        // web admin is gone.
        let _ = woken.await;
        if h.tx.receiver_count() == 0 {
            // Nobody watches: drop the pass; the next watcher's first look rebuilds it.
            live = None;
            continue;
        }
        match refresh(&engine, live.take()).await {
            Some((l, view)) => {
                live = Some(l);
                let text: Arc<str> = snapshot_json(&view).to_string().into();
                *h.latest.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text.clone());
                let _ = h.tx.send(text);
            }
            None if engine.is_closed() => return,
            None => {}
        }
        drop(h);
        tokio::time::sleep(MIN_SNAPSHOT_GAP).await;
    }
}

/// The routes of this file, merged into the router by `api::router`.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<Arc<State>>)> {
    vec![("/api/v1/monitor", get(get_snapshot)), ("/api/v1/monitor/events", get(stream))]
}

async fn get_snapshot(AxState(st): AxState<Arc<State>>, a: Authed) -> ApiResult {
    a.require(Permission::MonitorView)?;
    let (_, view) = refresh(&st.engine, None)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "engine_busy"))?;
    Ok(Json(snapshot_json(&view)).into_response())
}

async fn stream(a: Authed, hub: Option<Extension<Arc<Hub>>>) -> ApiResult {
    a.require(Permission::MonitorView)?;
    let Some(Extension(hub)) = hub else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "monitor_off"));
    };
    let Ok(permit) = hub.streams.clone().try_acquire_owned() else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_streams"));
    };
    let rx = hub.tx.subscribe();
    // A new watcher gets a fresh snapshot at once.
    hub.wake.notify_one();
    let first = hub.latest();
    let deadline = stream_deadline();
    let state = Stream { hub, rx, first, permit, deadline, retry_sent: false };
    let events = futures_util::stream::unfold(state, next_event);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

/// When a stream opened now ends ([`STREAM_LIFETIME`]).
#[allow(clippy::disallowed_methods)] // driver: reads the clock
fn stream_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + STREAM_LIFETIME
}

struct Stream {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<str>>,
    first: Option<Arc<str>>,
    /// Held for the stream's life ([`MAX_STREAMS`]).
    #[allow(dead_code)] // held, never read
    permit: tokio::sync::OwnedSemaphorePermit,
    deadline: tokio::time::Instant,
    retry_sent: bool,
}

async fn next_event(mut s: Stream) -> Option<(Result<Event, std::convert::Infallible>, Stream)> {
    if !s.retry_sent {
        s.retry_sent = true;
        let ev = Event::default().retry(Duration::from_millis(RETRY_MS)).comment("hakoden monitor");
        return Some((Ok(ev), s));
    }
    let (kind, text) = next_message(&mut s).await?;
    Some((Ok(Event::default().event(kind).data(&*text)), s))
}

/// The next snapshot of a stream and its event name: `snapshot`, or `resync` after falling
/// more than [`STREAM_BACKLOG`] behind. `None` ends the stream.
async fn next_message(s: &mut Stream) -> Option<(&'static str, Arc<str>)> {
    if let Some(text) = s.first.take() {
        return Some(("snapshot", text));
    }
    loop {
        match tokio::time::timeout_at(s.deadline, s.rx.recv()).await {
            Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            Ok(Ok(text)) => return Some(("snapshot", text)),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                // Fell behind: skip to the newest snapshot.
                s.rx = s.rx.resubscribe();
                if let Some(text) = s.hub.latest() {
                    return Some(("resync", text));
                }
            }
        }
    }
}

/// Milliseconds as whole seconds, `null` when there is nothing to average.
fn secs(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |m| json!(m / 1000))
}

fn state_total_s(t: &Totals, state: AgentState) -> u64 {
    state_slot(state).and_then(|i| t.state_ms.get(i)).copied().unwrap_or(0) / 1000
}

fn other_work_s(t: &Totals) -> u64 {
    (1..=crate::apps::callcenter::agent::MAX_CUSTOM_STATES)
        .filter_map(|n| u8::try_from(n).ok())
        .map(|n| state_total_s(t, AgentState::OtherWork(n)))
        .sum()
}

/// The call figures shared by the overall, group and operator rows.
fn call_figures(t: &Totals) -> serde_json::Map<String, Value> {
    let (i, o) = (Direction::Inbound, Direction::Outbound);
    let v = json!({
        "incoming": t.incoming,
        "answered": t.answered,
        "abandoned": t.abandoned,
        "answer_rate": t.answer_rate().seed004(),
        "outgoing": t.outgoing,
        "holds": t.holds.iter().sum::<u64>(),
        "hold_s": t.hold_ms.iter().sum::<u64>() / 1000,
        "aht_in_s": secs(t.aht_ms(i)),
        "aht_out_s": secs(t.aht_ms(o)),
        "talk_in_s": secs(t.avg_talk_ms(i)),
        "talk_out_s": secs(t.avg_talk_ms(o)),
        "acw_in_s": secs(t.avg_acw_ms(i)),
        "acw_out_s": secs(t.avg_acw_ms(o)),
        "answer_wait_s": secs(t.avg_answer_wait_ms()),
        "abandon_wait_s": secs(t.avg_abandon_ms()),
        "ring_s": secs(t.avg_answer_ring_ms()),
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Agents by state for a row: logged in, available, ACW, breaks, other work.
#[derive(Default)]
struct StateCounts {
    logged_in: u32,
    available: u32,
    acw: u32,
    short_break: u32,
    lunch_break: u32,
    other_work: u32,
}

impl StateCounts {
    fn add(&mut self, s: AgentState) {
        if s != AgentState::LoggedOut {
            self.logged_in += 1;
        }
        match s {
            AgentState::Available => self.available += 1,
            AgentState::AfterCallWork => self.acw += 1,
            AgentState::ShortBreak => self.short_break += 1,
            AgentState::LunchBreak => self.lunch_break += 1,
            AgentState::OtherWork(_) => self.other_work += 1,
            _ => {}
        }
    }

    fn put(&self, m: &mut serde_json::Map<String, Value>) {
        for (k, v) in [
            ("logged_in", self.logged_in),
            ("available", self.available),
            ("acw", self.acw),
            ("short_break", self.short_break),
            ("lunch_break", self.lunch_break),
            ("other_work", self.other_work),
        ] {
            m.insert(k.into(), json!(v));
        }
    }
}

/// The snapshot as the page reads it: `overall`, `groups` and `agents` rows whose keys are the
/// page's column ids (`docs/web.md`, "Live monitor").
pub(super) fn snapshot_json(s: &MonitorView) -> Value {
    let empty = Totals::default();
    let today: BTreeMap<&Scope, &Totals> = s.today.iter().map(|(k, t)| (k, t)).collect();
    let totals = |scope: &Scope| today.get(scope).copied().unwrap_or(&empty);

    let mut overall = call_figures(totals(&Scope::Overall));
    let r = &s.realtime;
    let waiting: usize = s.queues.iter().map(|q| q.waiting).sum();
    let longest = s.queues.iter().map(|q| q.longest_wait_s).max().unwrap_or(0);
    overall.insert("waiting".into(), json!(waiting));
    overall.insert("longest_wait_s".into(), json!(longest));
    overall.insert("in_call".into(), json!(r.in_call()));
    overall.insert("in_call_in".into(), json!(r.in_call_in));
    overall.insert("in_call_out".into(), json!(r.in_call_out));
    let mut all = StateCounts::default();
    s.agents.iter().for_each(|a| all.add(a.state));
    all.put(&mut overall);

    let groups: Vec<Value> = s
        .queues
        .iter()
        .map(|q| {
            let mut g = call_figures(totals(&Scope::Queue(q.name.clone())));
            g.insert("name".into(), json!(q.name));
            g.insert("number".into(), json!(q.number));
            g.insert("waiting".into(), json!(q.waiting));
            g.insert("longest_wait_s".into(), json!(q.longest_wait_s));
            let live = s.queue_realtime.iter().find(|(n, _)| *n == q.name).map(|(_, l)| l.in_call);
            g.insert("in_call_in".into(), json!(live.unwrap_or(0)));
            let mut counts = StateCounts::default();
            s.agents
                .iter()
                .filter(|a| a.queues.iter().any(|(n, _)| *n == q.name))
                .for_each(|a| counts.add(a.state));
            counts.put(&mut g);
            Value::Object(g)
        })
        .collect();

    let names: BTreeMap<&str, &str> = s.names.iter().map(|(e, n)| (e.as_str(), n.as_str())).collect();
    let agents: Vec<Value> = s
        .agents
        .iter()
        .map(|a| {
            let t = totals(&Scope::Agent(a.agent.clone()));
            let mut m = call_figures(t);
            m.insert("ext".into(), json!(a.agent));
            m.insert("name".into(), json!(names.get(a.agent.as_str()).copied().unwrap_or(&a.agent)));
            m.insert("state".into(), json!(a.state.key()));
            let other = match a.state {
                AgentState::OtherWork(n) => Some(n),
                _ => None,
            };
            m.insert("other".into(), json!(other));
            m.insert("label".into(), json!(a.label.clone().unwrap_or_else(|| a.state.ja().to_string())));
            m.insert("since_s".into(), json!(a.since_s));
            let queues: Vec<&str> = a.queues.iter().map(|(q, _)| q.as_str()).collect();
            m.insert("queues".into(), json!(queues));
            m.insert("short_break_total_s".into(), json!(state_total_s(t, AgentState::ShortBreak)));
            m.insert("short_break_avg_s".into(), secs(t.avg_state_ms(AgentState::ShortBreak)));
            m.insert("lunch_total_s".into(), json!(state_total_s(t, AgentState::LunchBreak)));
            m.insert("other_work_total_s".into(), json!(other_work_s(t)));
            Value::Object(m)
        })
        .collect();

    json!({
        "at_ms": s.at_ms,
        "partial": s.partial,
        "overall": overall,
        "groups": groups,
        "agents": agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{AgentView, QueueView};

    fn snapshot() -> MonitorView {
        let queue = QueueView {
            name: "support".into(),
            number: Some("500".into()),
            waiting: 2,
            longest_wait_s: 40,
            staffed: 1,
            members: 2,
            strategy: "ring_all".into(),
        };
        let agent = |ext: &str, state| AgentView {
            agent: ext.into(),
            state,
            label: None,
            since_s: 3,
            queues: vec![("support".into(), true)],
        };
        let mut today = Totals::default();
        (today.incoming, today.answered, today.abandoned) = (31, 6, 25);
        MonitorView {
            at_ms: 1,
            queues: vec![queue],
            agents: vec![agent("201", AgentState::Available), agent("202", AgentState::LoggedOut)],
            names: vec![("201".into(), "Sato".into())],
            today: vec![(Scope::Overall, today.clone()), (Scope::Queue("support".into()), today)],
            ..MonitorView::default()
        }
    }

    #[test]
    fn a_snapshot_carries_overall_group_and_operator_rows() {
        let j = snapshot_json(&snapshot());
        assert_eq!(j["overall"]["waiting"], 2);
        assert_eq!(j["overall"]["answer_rate"], "19.3");
        assert_eq!(j["overall"]["logged_in"], 1);
        assert_eq!(j["groups"][0]["name"], "support");
        assert_eq!(j["groups"][0]["available"], 1);
        assert_eq!(j["agents"][0]["name"], "Sato");
        assert_eq!(j["agents"][1]["name"], "202", "an agent without a name shows its extension");
        assert_eq!(j["agents"][1]["state"], "logged_out");
        assert_eq!(j["agents"][0]["aht_in_s"], Value::Null);
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_resynchronised_not_buffered() {
        let (engine, _rx) = mpsc::channel(1);
        let hub = Hub::start(engine);
        let rx = hub.tx.subscribe();
        for n in 0..(STREAM_BACKLOG + 5) {
            let text: Arc<str> = format!("{n}").into();
            *hub.latest.lock().unwrap() = Some(text.clone());
            let _ = hub.tx.send(text);
        }
        let permit = hub.streams.clone().try_acquire_owned().unwrap();
        let deadline = stream_deadline();
        let mut lagging = Stream { hub: hub.clone(), rx, first: None, permit, deadline, retry_sent: true };
        let (kind, text) = next_message(&mut lagging).await.unwrap();
        assert_eq!((kind, &*text), ("resync", format!("{}", STREAM_BACKLOG + 4).as_str()));
        assert_eq!(lagging.rx.len(), 0, "the missed snapshots are dropped, not queued");
    }
}
