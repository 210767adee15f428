//! What the web's live monitor and reports ask of the engine (seed 004 §2.4-2.13): one
//! snapshot of queues, agents and today's counters, and the settings a report pass needs.
//!
//! Today's counters come from one statistics pass over the ACD's in-memory event ring from
//! local midnight, so a snapshot costs no disk read. The ring holds
//! [`crate::apps::callcenter::events::DEFAULT_RING_CAPACITY`] events by default (a shift of 50
//! agents); when today's first events were evicted the snapshot says so
//! ([`MonitorSnapshot::partial`]) and the counters start at the oldest event kept.

use super::{AgentView, Engine, QueueView};
use crate::apps::callcenter::stats::{QueueRealtime, Realtime, Scope, Stats, StatsConfig, Totals, Unit};
use crate::apps::timerules::{LocalTime, UtcOffset};
use std::time::Instant;

/// The live monitor's view of the engine at one instant.
#[derive(Debug, Clone, Default)]
pub struct MonitorSnapshot {
    /// Wall clock of the snapshot, Unix ms.
    pub at_ms: u64,
    /// Every queue (as `Engine::queues`).
    pub queues: Vec<QueueView>,
    /// Every agent (as `Engine::agents`).
    pub agents: Vec<AgentView>,
    /// Extension → display name, for the agents.
    pub names: Vec<(String, String)>,
    /// The overall real-time row (waiting, in call by direction, agents by state).
    pub realtime: Realtime,
    /// Each queue's real-time row.
    pub queue_realtime: Vec<(String, QueueRealtime)>,
    /// Today's totals: overall, per queue and per agent.
    pub today: Vec<(Scope, Totals)>,
    /// Today's first events are no longer in the ring: the counters are a lower bound.
    pub partial: bool,
}

/// What a report pass needs from the configuration.
#[derive(Debug, Clone)]
pub struct ReportSetup {
    /// Local time of the report dates.
    pub offset: UtcOffset,
    /// Extension → display name.
    pub names: Vec<(String, String)>,
    /// Queue names, in configuration order.
    pub queues: Vec<String>,
}

impl Engine {
    fn report_offset(&self) -> UtcOffset {
        self.cfg.trunk_calls.time_rules.offset()
    }

    fn extension_names(&self) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> =
            self.extensions.values().map(|e| (e.number.clone(), e.name.clone())).collect();
        names.sort();
        names
    }

    /// The live monitor's snapshot at `now`; see the module doc for the counters' source.
    pub fn monitor_snapshot(&self, now: Instant) -> MonitorSnapshot {
        let at_ms = self.wall_ms(now);
        let offset = self.report_offset();
        let midnight = LocalTime::from_unix_ms(at_ms, offset).date.midnight_unix_ms(offset);
        let ring = self.queue.recent_events();
        let mut stats =
            Stats::new(StatsConfig { offset, units: vec![Unit::Total], ..StatsConfig::default() });
        stats.count_from(midnight);
        stats.extend(ring.iter());
        let realtime = stats.realtime(at_ms);
        let queues = self.queues(now);
        let queue_realtime =
            queues.iter().map(|q| (q.name.clone(), stats.realtime_queue(at_ms, &q.name))).collect();
        stats.finish(at_ms);
        let today = stats
            .buckets()
            .filter(|(k, _)| k.period == crate::apps::callcenter::stats::Period::Total)
            .map(|(k, t)| (k.scope.clone(), t.clone()))
            .collect();
        let partial = ring.evicted() > 0 && ring.iter().next().is_some_and(|e| e.at_ms > midnight);
        MonitorSnapshot {
            at_ms,
            queues,
            agents: self.agents(now),
            names: self.extension_names(),
            realtime,
            queue_realtime,
            today,
            partial,
        }
    }

    /// Grows with every call-center event: the daemon compares it after each turn to tell the
    /// web's monitor that something changed, without a snapshot per SIP packet.
    pub fn monitor_generation(&self) -> u64 {
        let ring = self.queue.recent_events();
        ring.evicted().saturating_add(ring.len() as u64)
    }

    /// The settings of a report pass.
    pub fn report_setup(&self) -> ReportSetup {
        ReportSetup {
            offset: self.report_offset(),
            names: self.extension_names(),
            queues: self.cfg.callcenter.queues.iter().map(|q| q.name.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::callcenter::AgentState;
    use crate::apps::callcenter::{Cause, MemberConfig, QueueConfig};
    use crate::config::{CallCenterConfig, ExtensionConfig};
    use crate::engine::{AgentCommand, EngineConfig};

    /// Queue `support` with agents 201.. (as many as asked), all extensions.
    fn engine(agents: usize, now: Instant) -> Engine {
        let ids: Vec<String> = (0..agents).map(|n| (201 + n).to_string()).collect();
        let mut support = QueueConfig::new("support");
        support.members = ids.iter().map(|a| MemberConfig { agent: a.clone(), skill: 1 }).collect();
        let callcenter = CallCenterConfig {
            queues: vec![support],
            numbers: vec![("6000".into(), "support".into())],
            ..Default::default()
        };
        let exts: Vec<ExtensionConfig> = ids
            .iter()
            .map(|n| ExtensionConfig { number: n.clone(), name: format!("Agent {n}"), ..Default::default() })
            .collect();
        Engine::new(EngineConfig { callcenter, ..EngineConfig::for_tests(now) }, &exts)
    }

    #[test]
    fn a_snapshot_shows_agents_by_name_and_the_generation_moves_with_events() {
        let now = Instant::now();
        let mut e = engine(2, now);
        let before = e.monitor_generation();
        e.agent_command(now, "201", AgentCommand::Login, Cause::Supervisor).unwrap();
        e.agent_command(now, "201", AgentCommand::Select(AgentState::Available), Cause::Supervisor).unwrap();
        assert!(e.monitor_generation() > before);
        let s = e.monitor_snapshot(now);
        assert_eq!(s.realtime.logged_in, 1);
        assert_eq!(s.realtime.available, 1);
        assert_eq!(s.queues.len(), 1);
        assert_eq!(
            s.agents.iter().map(|a| a.state).collect::<Vec<_>>(),
            [AgentState::Available, AgentState::LoggedOut]
        );
        assert!(s.names.contains(&("201".into(), "Agent 201".into())));
        assert!(s.today.iter().any(|(scope, _)| *scope == Scope::Agent("201".into())));
        assert!(!s.partial);
        assert_eq!(e.report_setup().queues, ["support"]);
    }

    /// The cost of one snapshot with a full event ring (docs/PERFORMANCE.md): run with
    /// `cargo test --release --lib monitor_snapshot_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    #[allow(clippy::disallowed_methods)] // measurement: reads the clock
    fn monitor_snapshot_cost_with_a_full_ring() {
        let now = Instant::now();
        let mut e = engine(50, now);
        let states = [AgentState::Available, AgentState::ShortBreak];
        let mut n = 0usize;
        while e.queue.recent_events().evicted() == 0 {
            let agent = (201 + n % 50).to_string();
            let at = now + std::time::Duration::from_millis(n as u64);
            if n < 50 {
                e.agent_command(at, &agent, AgentCommand::Login, Cause::Agent).unwrap();
            } else {
                let s = states[(n / 50) % 2];
                e.agent_command(at, &agent, AgentCommand::Select(s), Cause::Agent).unwrap();
            }
            n += 1;
        }
        let at = now + std::time::Duration::from_millis(n as u64);
        let runs = 20u32;
        let t0 = Instant::now();
        for _ in 0..runs {
            std::hint::black_box(e.monitor_snapshot(at));
        }
        let each = t0.elapsed() / runs;
        eprintln!(
            "monitor snapshot, {} events in the ring, 50 agents: {each:?} each",
            e.queue.recent_events().len()
        );
    }
}
