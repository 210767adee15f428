//! The ACD core alone: 50 agents, 200 callers kept in the queue at all times, every strategy.
//! Agents answer after 1-6 s of ringing (one in ten lets it ring out), talk 60-240 s, then do
//! 10 s of after-call work; a new caller enters for each one that leaves. Reports, in virtual
//! time, how long callers wait for their first ring (offer latency), and in CPU time what one
//! offer (one `Ring` output) and one input cost.
//!
//! `cargo run --release --example acd_bench -- [calls-per-strategy]`
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use hakoden::apps::callcenter::{Acd, AcdConfig, MemberConfig, Output, QueueConfig, Strategy};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const AGENTS: usize = 50;
const CONCURRENT_CALLERS: usize = 200;

/// A tiny deterministic generator for the simulated people (not the ACD's own).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        lo + (self.0 >> 33) % (hi - lo + 1)
    }
}

enum Sim {
    Answer { call: u64, agent: String },
    Hangup { agent: String },
}

fn main() {
    let calls: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    println!(
        "acd_bench: {AGENTS} agents, {CONCURRENT_CALLERS} concurrent callers, {calls} calls per strategy"
    );
    println!("virtual s: caller wait to first ring p50/p95/max; agent free -> next ring p50/max");
    println!("strategy       offers  wait p50 / p95 / max   gap p50 / max   cpu/offer   cpu/input");
    for strategy in [
        Strategy::RingAll,
        Strategy::LongestIdle,
        Strategy::LeastTalkTime,
        Strategy::FewestCalls,
        Strategy::Random,
        Strategy::RoundRobin,
        Strategy::Linear,
        Strategy::SkillWeighted,
    ] {
        run(strategy, calls);
    }
}

fn run(strategy: Strategy, calls: u64) {
    let t0 = Instant::now();
    let ids: Vec<String> = (0..AGENTS).map(|i| format!("{}", 1000 + i)).collect();
    let mut q = QueueConfig::new("q");
    q.strategy = strategy;
    // One level for every strategy but SkillWeighted: levels do not fall through, so with three
    // levels only the first third of the agents would ever be rung.
    let levels = if strategy == Strategy::SkillWeighted { 3 } else { 1 };
    q.members = ids
        .iter()
        .enumerate()
        .map(|(i, a)| MemberConfig { agent: a.clone(), skill: 1 + (i % levels) as u8 })
        .collect();
    q.max_waiting = 999;
    q.timeout = None;
    q.after_call_work = Some(Duration::from_secs(10));
    let cfg = AcdConfig { agents: ids.clone(), queues: vec![q], seed: 42, ..AcdConfig::default() };
    let mut acd = Acd::new(cfg, t0, 0).expect("bench config is valid");
    for a in &ids {
        acd.login(t0, a, hakoden::apps::callcenter::Cause::Agent).expect("login");
        acd.set_state(
            t0,
            a,
            hakoden::apps::callcenter::AgentState::Available,
            hakoden::apps::callcenter::Cause::Agent,
        )
        .expect("ready");
    }
    let mut rng = Lcg(7);
    let mut now = t0;
    let mut entered: HashMap<u64, Instant> = HashMap::new();
    let mut latencies: Vec<u64> = Vec::new();
    // When each agent last became free (virtual time); the gap to its next ring is the ACD's
    // own offer latency, as opposed to the caller's queueing time.
    let mut free_at: HashMap<String, Instant> = ids.iter().map(|a| (a.clone(), t0)).collect();
    let mut gaps: Vec<u64> = Vec::new();
    let mut sim: BTreeMap<(Instant, u64), Sim> = BTreeMap::new();
    let mut seq = 0u64;
    let (mut next_call, mut done, mut offers, mut inputs) = (0u64, 0u64, 0u64, 0u64);
    let mut cpu = Duration::ZERO;
    let mut in_system = 0usize;
    loop {
        while in_system < CONCURRENT_CALLERS && next_call < calls {
            let c = Instant::now();
            acd.caller_entered(now, next_call, "q", "0312345678").expect("enter");
            cpu += c.elapsed();
            inputs += 1;
            entered.insert(next_call, now);
            next_call += 1;
            in_system += 1;
        }
        let c = Instant::now();
        let mut outs = Vec::new();
        while let Some(o) = acd.poll_output() {
            outs.push(o);
        }
        cpu += c.elapsed();
        for o in outs {
            if let Output::Ring { call, agent, .. } = o {
                offers += 1;
                if let Some(f) = free_at.remove(&agent) {
                    gaps.push(now.saturating_duration_since(f).as_millis() as u64);
                }
                if let Some(t) = entered.remove(&call) {
                    latencies.push(now.duration_since(t).as_millis() as u64);
                }
                seq += 1;
                if rng.next(1, 10) > 1 {
                    // Rung out agents are free again when the ring time ends; not tracked.
                    let at = now + Duration::from_secs(rng.next(1, 6));
                    sim.insert((at, seq), Sim::Answer { call, agent });
                }
            }
        }
        if done >= calls {
            break;
        }
        let acd_t = acd.poll_timeout();
        let sim_t = sim.keys().next().map(|k| k.0);
        let Some(t) = [acd_t, sim_t].into_iter().flatten().min() else { break };
        now = now.max(t);
        if sim_t == Some(t) {
            let Some((_, ev)) = sim.pop_first() else { break };
            let c = Instant::now();
            match ev {
                Sim::Answer { call, agent } => {
                    if acd.agent_answered(now, call, &agent).is_ok() {
                        seq += 1;
                        let at = now + Duration::from_secs(rng.next(60, 240));
                        sim.insert((at, seq), Sim::Hangup { agent });
                    }
                }
                Sim::Hangup { agent } => {
                    let _ = acd.call_ended(now, &agent);
                    free_at.insert(agent, now + Duration::from_secs(10));
                    done += 1;
                    in_system -= 1;
                }
            }
            cpu += c.elapsed();
        } else {
            let c = Instant::now();
            acd.handle_timeout(now);
            cpu += c.elapsed();
        }
        inputs += 1;
    }
    latencies.sort_unstable();
    gaps.sort_unstable();
    let pct = |v: &[u64], p: usize| {
        v.get(v.len().saturating_sub(1) * p / 100).copied().unwrap_or(0) as f64 / 1000.0
    };
    println!(
        "{:<14} {:>6}  {:>6.1} / {:>6.1} / {:>6.1}   {:>5.1} / {:>5.1}   {:>7.2} µs  {:>6.2} µs",
        format!("{strategy:?}"),
        offers,
        pct(&latencies, 50),
        pct(&latencies, 95),
        pct(&latencies, 100),
        pct(&gaps, 50),
        pct(&gaps, 100),
        cpu.as_secs_f64() * 1e6 / offers.max(1) as f64,
        cpu.as_secs_f64() * 1e6 / inputs.max(1) as f64,
    );
}
