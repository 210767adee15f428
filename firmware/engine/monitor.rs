//! What the web's live monitor and reports ask of the engine (seed 004 §2.4-2.13): the live
//! queues and agents with the call-center events since the monitor's last look, and the
//! settings a report pass needs.
//!
//! The engine only copies: today's counters are a statistics pass the web runs off the engine's
//! task (`web::monitor`), fed incrementally with the events of the ACD's in-memory ring
//! ([`crate::apps::callcenter::events::DEFAULT_RING_CAPACITY`] events, a shift of 50 agents).

use super::{AgentView, Engine, QueueView};
use crate::apps::callcenter::Event;
use crate::apps::timerules::UtcOffset;
use std::time::Instant;

/// The live monitor's view of the engine at one instant.
#[derive(Debug, Clone)]
pub struct MonitorSnapshot {
    /// Wall clock of the snapshot, Unix ms.
    pub at_ms: u64,
    /// Local time of "today".
    pub offset: UtcOffset,
    /// Every queue (as `Engine::queues`).
    pub queues: Vec<QueueView>,
    /// Every agent (as `Engine::agents`).
    pub agents: Vec<AgentView>,
    /// Extension → display name, for the agents.
    pub names: Vec<(String, String)>,
    /// The ring's events after generation `since` of the request, or every event it still
    /// holds when `since` is older than its oldest ([`MonitorSnapshot::complete`]).
    pub events: Vec<Event>,
    /// `events` starts at the oldest event the ring holds.
    pub complete: bool,
    /// The ring has dropped events (its oldest is not the box's first).
    pub evicted: bool,
    /// The generation after `events` ([`Engine::monitor_generation`]).
    pub generation: u64,
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

    /// The live monitor's view at `now` with the events after generation `since` (0: all the
    /// ring holds). Copies only: see the module doc.
    pub fn monitor_snapshot(&self, now: Instant, since: u64) -> MonitorSnapshot {
        let ring = self.queue.recent_events();
        let first = ring.evicted();
        let skip = usize::try_from(since.saturating_sub(first)).unwrap_or(usize::MAX).min(ring.len());
        MonitorSnapshot {
            at_ms: self.wall_ms(now),
            offset: self.report_offset(),
            queues: self.queues(now),
            agents: self.agents(now),
            names: self.extension_names(),
            events: ring.iter().skip(skip).cloned().collect(),
            complete: skip == 0,
            evicted: first > 0,
            generation: self.monitor_generation(),
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
        let s = e.monitor_snapshot(now, 0);
        assert_eq!((s.events.len(), s.complete, s.evicted), (2, true, false));
        assert_eq!(s.generation, e.monitor_generation());
        let delta = e.monitor_snapshot(now, before + 1);
        assert_eq!((delta.events.len(), delta.complete), (1, false), "only the events after `since`");
        assert_eq!(s.queues.len(), 1);
        assert_eq!(
            s.agents.iter().map(|a| a.state).collect::<Vec<_>>(),
            [AgentState::Available, AgentState::LoggedOut]
        );
        assert!(s.names.contains(&("201".into(), "Agent 201".into())));
        assert_eq!(e.report_setup().queues, ["support"]);
    }

    /// The engine's cost of a first snapshot (the whole ring copied) and of a delta, with a full
    /// ring (docs/PERFORMANCE.md): `cargo test --lib monitor_snapshot_cost -- --ignored
    /// --nocapture`.
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
        let generation = e.monitor_generation();
        for (what, since) in [("whole ring", 0), ("delta of 2 events", generation - 2)] {
            let t0 = Instant::now();
            for _ in 0..runs {
                std::hint::black_box(e.monitor_snapshot(at, since));
            }
            eprintln!("engine task: monitor snapshot, {what}: {:?} each", t0.elapsed() / runs);
        }
        // What the web's hub then does off the engine's task for a first look.
        let snap = e.monitor_snapshot(at, 0);
        let t0 = Instant::now();
        for _ in 0..runs {
            let cfg = crate::apps::callcenter::StatsConfig {
                offset: snap.offset,
                units: vec![crate::apps::callcenter::Unit::Total],
                ..Default::default()
            };
            let mut stats = crate::apps::callcenter::Stats::new(cfg);
            stats.extend(snap.events.iter());
            std::hint::black_box(stats);
        }
        eprintln!(
            "web hub: statistics pass over {} events: {:?} each",
            snap.events.len(),
            t0.elapsed() / runs
        );
    }
}
