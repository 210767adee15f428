//! Ringing strategies (seed 002 §2.24 鳴動方式, issue 6): which available members of a queue
//! a waiting call rings next.
//!
//! Skill levels (seed 002 §3.5): every member has a level per queue, lower first, and calls
//! "do not fall through to the next level". We read that as: the candidates are the members at
//! the lowest level among the members who are *staffed* in the queue (logged in, not paused in
//! it, not on a break or other work; busy with calls counts as staffed). While any level-1
//! member is staffed, level-2 members are never rung, even if every level-1 member is busy or
//! did not answer: the call waits for level 1. Level 2 takes calls only when nobody at level 1
//! is working the queue. [`Strategy::SkillWeighted`] (レベルにより分配) is the exception: it
//! spreads calls over all levels in proportion to a weight that falls with the level.
//!
//! Within the candidates, members already tried for this call without an answer are skipped
//! until every candidate has been tried, then the round starts again.
use serde::Deserialize;
use std::time::Instant;

/// Highest skill level; 1 is the best. Bounds the weight arithmetic of `SkillWeighted`.
pub const MAX_SKILL_LEVEL: u8 = 99;

/// How a queue picks agents to ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// 全て呼び出し: ring every candidate at once; the first to answer gets the call.
    #[default]
    RingAll,
    /// 終話順: the candidate whose last call ended longest ago (never = longest).
    LongestIdle,
    /// 通話時間が短い順: the candidate with the least total talk time.
    LeastTalkTime,
    /// The candidate who answered the fewest calls.
    FewestCalls,
    /// ランダム: a random candidate (seeded generator, deterministic in tests).
    Random,
    /// 順番に呼び出し: the next candidate after the one this queue rang last, in member order.
    RoundRobin,
    /// Always the first candidate in member order.
    Linear,
    /// レベルにより分配: all levels, shares proportional to `MAX_SKILL_LEVEL + 1 - level`.
    SkillWeighted,
}

impl Strategy {
    /// The configuration spelling (`ring_all`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring_all",
            Strategy::LongestIdle => "longest_idle",
            Strategy::LeastTalkTime => "least_talk_time",
            Strategy::FewestCalls => "fewest_calls",
            Strategy::Random => "random",
            Strategy::RoundRobin => "round_robin",
            Strategy::Linear => "linear",
            Strategy::SkillWeighted => "skill_weighted",
        }
    }
}

/// What a strategy knows about one member. `member` is the index in the queue's member list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub(crate) member: usize,
    pub(crate) skill: u8,
    /// Offerable now: available in this queue and not ringing.
    pub(crate) free: bool,
    /// Working the queue (see the module doc).
    pub(crate) staffed: bool,
    /// Already rung for this call without an answer.
    pub(crate) tried: bool,
    pub(crate) last_call_end: Option<Instant>,
    pub(crate) talk_total_ms: u64,
    pub(crate) calls: u32,
    /// Calls this queue offered to the member (for `SkillWeighted`).
    pub(crate) offers: u64,
}

/// A small seeded generator (xorshift64*): enough for picking an agent, and reproducible.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        // xorshift has a fixed point at 0.
        Rng(seed | 1)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        usize::try_from(r % (n.max(1) as u64)).unwrap_or(0)
    }
}

/// Picks the members to ring, appending their member indices to `out`. `last_rung` is the
/// member this queue rang last (round robin's memory).
pub(crate) fn choose(
    strategy: Strategy,
    cands: &[Candidate],
    last_rung: Option<usize>,
    rng: &mut Rng,
    out: &mut Vec<usize>,
) {
    let level = if strategy == Strategy::SkillWeighted {
        None
    } else {
        match cands.iter().filter(|c| c.staffed).map(|c| c.skill).min() {
            Some(l) => Some(l),
            None => return,
        }
    };
    let in_level = |c: &&Candidate| c.free && level.is_none_or(|l| c.skill == l);
    let untried = cands.iter().filter(in_level).any(|c| !c.tried);
    let pool = cands.iter().filter(in_level).filter(|c| !untried || !c.tried);
    match strategy {
        Strategy::RingAll => out.extend(pool.map(|c| c.member)),
        Strategy::LongestIdle => {
            // `None` (never had a call) sorts first: it has been idle longest.
            out.extend(pool.min_by_key(|c| (c.last_call_end, c.member)).map(|c| c.member))
        }
        Strategy::LeastTalkTime => {
            out.extend(pool.min_by_key(|c| (c.talk_total_ms, c.member)).map(|c| c.member))
        }
        Strategy::FewestCalls => out.extend(pool.min_by_key(|c| (c.calls, c.member)).map(|c| c.member)),
        Strategy::Linear => out.extend(pool.min_by_key(|c| c.member).map(|c| c.member)),
        Strategy::Random => {
            let pool: Vec<usize> = pool.map(|c| c.member).collect();
            if !pool.is_empty() {
                out.extend(pool.get(rng.below(pool.len())).copied());
            }
        }
        Strategy::RoundRobin => {
            // The next member after the last one rung, wrapping round.
            let after = last_rung.map_or(0, |m| m + 1);
            out.extend(pool.min_by_key(|c| (c.member < after, c.member)).map(|c| c.member))
        }
        Strategy::SkillWeighted => {
            // Smallest (offers + 1) / weight, compared by cross-multiplication to stay exact.
            let weight =
                |c: &Candidate| u64::from(MAX_SKILL_LEVEL.saturating_add(1).saturating_sub(c.skill).max(1));
            let best = pool.min_by(|a, b| {
                let lhs = (a.offers + 1).saturating_mul(weight(b));
                let rhs = (b.offers + 1).saturating_mul(weight(a));
                lhs.cmp(&rhs).then(a.member.cmp(&b.member))
            });
            out.extend(best.map(|c| c.member))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(member: usize, skill: u8) -> Candidate {
        Candidate {
            member,
            skill,
            free: true,
            staffed: true,
            tried: false,
            last_call_end: None,
            talk_total_ms: 0,
            calls: 0,
            offers: 0,
        }
    }

    fn pick(s: Strategy, c: &[Candidate], last: Option<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        choose(s, c, last, &mut Rng::new(1), &mut out);
        out
    }

    #[test]
    fn a_busy_lower_level_keeps_higher_levels_from_ringing() {
        let mut c = vec![cand(0, 1), cand(1, 2)];
        c[0].free = false;
        assert!(pick(Strategy::Linear, &c, None).is_empty());
        c[0].staffed = false;
        assert_eq!(pick(Strategy::Linear, &c, None), vec![1]);
    }

    #[test]
    fn tried_members_are_skipped_until_all_have_been_tried() {
        let mut c = vec![cand(0, 1), cand(1, 1)];
        c[0].tried = true;
        assert_eq!(pick(Strategy::Linear, &c, None), vec![1]);
        c[1].tried = true;
        assert_eq!(pick(Strategy::Linear, &c, None), vec![0]);
    }

    #[test]
    fn skill_weighted_gives_lower_levels_a_larger_share() {
        let mut c = vec![cand(0, 1), cand(1, 50)];
        let mut counts = [0u32; 2];
        for _ in 0..100 {
            let m = pick(Strategy::SkillWeighted, &c, None)[0];
            counts[m] += 1;
            c[m].offers += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > 0, "{counts:?}");
    }
}
