//! How many customers a campaign dials now (seed 002 §2.17, §3.10): progressive pacing with the
//! dial ratio (発信速度倍率) and the channel cap (最大チャンネル), and predictive pacing that
//! dials ahead of the ready agents only as far as the service-level target (サービスレベル)
//! allows.
//!
//! Predictive model: each dial is answered independently with the campaign's observed answer
//! rate `p`. With `n` dials in flight and `a` agents free, a customer who answers when no agent
//! is free is a lost call (the service level counts answered customers that reached an agent).
//! The box dials the largest `n` whose chance of more than `a` answers, a binomial tail, stays
//! within `1 - target`. At a 100 % target that is `n = a`: never dial ahead.

/// Answer samples kept for the rate estimate: enough to smooth, few enough to follow the time
/// of day.
pub const ANSWER_WINDOW: usize = 50;

/// Samples before the estimate is trusted; until then the box dials like progressive.
pub const MIN_SAMPLES: usize = 10;

/// Most dials per free agent in predictive mode, however low the answer rate: protects the
/// trunk and the customers from a burst when the estimate is wrong.
pub const MAX_PREDICTIVE_RATIO: usize = 5;

/// The mode of §2.17 区分.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialMode {
    /// Ring the agent first; the customer is dialled when the agent accepts.
    Preview,
    /// Dial the customer first; ring an agent when the customer answers.
    Progressive,
}

/// The pacing settings of a campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Preview or progressive.
    pub mode: DialMode,
    /// プレディクティブコール: adjust to the service level (progressive only).
    pub predictive: bool,
    /// Target share of answered customers that reach an agent, 0.0-1.0.
    pub service_level: f64,
    /// Dials per free agent (progressive without predictive).
    pub dial_ratio: usize,
    /// Channels the campaign may hold at once (customer and agent legs of its calls).
    pub max_channels: usize,
}

/// What the campaign holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Agents free for this campaign (logged in with 990, or ringing-mode agents available).
    pub free_agents: usize,
    /// Customer dials ringing (progressive) or agent offers ringing (preview).
    pub in_flight: usize,
    /// Answered customers waiting for an agent.
    pub waiting_customers: usize,
    /// Channels in use by the campaign (ringing, waiting and talking).
    pub channels: usize,
}

/// A sliding window of answered / not answered dials.
#[derive(Debug, Clone, Default)]
pub struct AnswerRate {
    samples: std::collections::VecDeque<bool>,
}

impl AnswerRate {
    /// Records a finished dial.
    pub fn record(&mut self, answered: bool) {
        if self.samples.len() == ANSWER_WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(answered);
    }

    /// The estimate, once [`MIN_SAMPLES`] dials have finished.
    pub fn estimate(&self) -> Option<f64> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        let answered = self.samples.iter().filter(|a| **a).count();
        // Usize counts below ANSWER_WINDOW convert exactly.
        Some(answered as f64 / self.samples.len() as f64)
    }
}

/// How many new dials (customer dials, or agent offers in preview mode) to start now.
pub fn dials_to_start(p: &Pacing, load: Load, rate: &AnswerRate) -> usize {
    let channels_left = p.max_channels.saturating_sub(load.channels);
    // Agents that a waiting customer will take are not free for new dials.
    let free = load.free_agents.saturating_sub(load.waiting_customers);
    let target = match p.mode {
        // One offer per free agent; the customer leg follows the agent's accept.
        DialMode::Preview => free,
        DialMode::Progressive if p.predictive => match rate.estimate() {
            Some(rate) => predictive_target(free, rate, p.service_level),
            None => free,
        },
        DialMode::Progressive => free.saturating_mul(p.dial_ratio.max(1)),
    };
    target.saturating_sub(load.in_flight).min(channels_left)
}

/// The largest number of dials whose chance of more answers than `free` agents is at most
/// `1 - service_level`.
fn predictive_target(free: usize, rate: f64, service_level: f64) -> usize {
    if free == 0 {
        return 0;
    }
    let allowed = (1.0 - service_level.clamp(0.0, 1.0)).max(0.0);
    let rate = rate.clamp(0.0, 1.0);
    let cap = free.saturating_mul(MAX_PREDICTIVE_RATIO);
    let mut best = free;
    for n in free + 1..=cap {
        if overflow_probability(n, free, rate) > allowed + 1e-12 {
            break;
        }
        best = n;
    }
    best
}

/// P(X > k) for X ~ Binomial(n, p), summed term by term (n is at most a few hundred).
fn overflow_probability(n: usize, k: usize, p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return if n > k { 1.0 } else { 0.0 };
    }
    // P(X = 0) = (1-p)^n, then P(X = i+1) = P(X = i) * (n-i)/(i+1) * p/(1-p).
    let n_f = n as f64;
    let mut term = (1.0 - p).powf(n_f);
    let mut at_most_k = 0.0;
    for i in 0..=k.min(n) {
        at_most_k += term;
        let i_f = i as f64;
        term *= (n_f - i_f) / (i_f + 1.0) * p / (1.0 - p);
    }
    (1.0 - at_most_k).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progressive(ratio: usize, max: usize) -> Pacing {
        Pacing {
            mode: DialMode::Progressive,
            predictive: false,
            service_level: 1.0,
            dial_ratio: ratio,
            max_channels: max,
        }
    }

    fn rate(answered: usize, of: usize) -> AnswerRate {
        let mut r = AnswerRate::default();
        for i in 0..of {
            r.record(i < answered);
        }
        r
    }

    #[test]
    fn progressive_dials_ratio_per_free_agent_within_the_channel_cap() {
        let load = Load { free_agents: 3, ..Load::default() };
        assert_eq!(dials_to_start(&progressive(1, 10), load, &AnswerRate::default()), 3);
        assert_eq!(dials_to_start(&progressive(2, 10), load, &AnswerRate::default()), 6);
        assert_eq!(dials_to_start(&progressive(2, 4), load, &AnswerRate::default()), 4);
        let busy = Load { free_agents: 3, in_flight: 2, channels: 3, ..Load::default() };
        assert_eq!(dials_to_start(&progressive(1, 10), busy, &AnswerRate::default()), 1);
    }

    #[test]
    fn a_customer_waiting_for_an_agent_takes_a_free_agent_first() {
        let load = Load { free_agents: 2, waiting_customers: 2, channels: 2, ..Load::default() };
        assert_eq!(dials_to_start(&progressive(3, 10), load, &AnswerRate::default()), 0);
    }

    #[test]
    fn the_channel_cap_holds_even_with_many_agents() {
        let load = Load { free_agents: 50, channels: 1, ..Load::default() };
        assert_eq!(dials_to_start(&progressive(1, 1), load, &AnswerRate::default()), 0);
        let load = Load { free_agents: 50, ..Load::default() };
        assert_eq!(dials_to_start(&progressive(1, 1), load, &AnswerRate::default()), 1);
    }

    #[test]
    fn preview_offers_one_call_per_free_agent() {
        let p = Pacing { mode: DialMode::Preview, ..progressive(3, 10) };
        let load = Load { free_agents: 2, in_flight: 1, channels: 1, ..Load::default() };
        assert_eq!(dials_to_start(&p, load, &AnswerRate::default()), 1);
    }

    #[test]
    fn predictive_at_a_full_service_level_never_dials_ahead() {
        let p = Pacing { predictive: true, service_level: 1.0, ..progressive(1, 100) };
        let load = Load { free_agents: 4, ..Load::default() };
        assert_eq!(dials_to_start(&p, load, &rate(10, 50)), 4);
    }

    #[test]
    fn predictive_dials_ahead_more_when_fewer_customers_answer() {
        let p = Pacing { predictive: true, service_level: 0.9, ..progressive(1, 100) };
        let load = Load { free_agents: 4, ..Load::default() };
        let high = dials_to_start(&p, load, &rate(45, 50));
        let low = dials_to_start(&p, load, &rate(15, 50));
        assert!(high >= 4 && low > high, "high answer rate {high}, low {low}");
        assert!(low <= 4 * MAX_PREDICTIVE_RATIO);
        // The chosen count keeps the overflow chance within 10 %.
        assert!(overflow_probability(low, 4, 0.3) <= 0.1 + 1e-9);
        assert!(overflow_probability(low + 1, 4, 0.3) > 0.1 || low == 4 * MAX_PREDICTIVE_RATIO);
    }

    #[test]
    fn predictive_dials_like_progressive_until_the_rate_is_known() {
        let p = Pacing { predictive: true, service_level: 0.8, ..progressive(1, 100) };
        let load = Load { free_agents: 3, ..Load::default() };
        assert_eq!(dials_to_start(&p, load, &rate(1, MIN_SAMPLES - 1)), 3);
    }

    #[test]
    fn the_binomial_tail_matches_hand_values() {
        // n=2, p=0.5: P(X>1) = 0.25; P(X>0) = 0.75.
        assert!((overflow_probability(2, 1, 0.5) - 0.25).abs() < 1e-12);
        assert!((overflow_probability(2, 0, 0.5) - 0.75).abs() < 1e-12);
        assert!(overflow_probability(3, 3, 0.9) < 1e-12);
    }
}
