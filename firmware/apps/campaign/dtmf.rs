//! Result entry by DTMF after a campaign call (seed 002 §2.17 "結果をコマンドで入力"): the agent
//! keys `N#` for result N, or `0` and then a recall delay `M#`, `M*H#` or `M*H*D#` (minutes,
//! hours, days) that books a new dial after that long.
//!
//! A sans-IO parser fed one key at a time; the engine plays the prompts and owns the timeout.

use std::time::Duration;

/// Digits in one number field: results go to 99 and a delay field to 999, so three digits
/// bound the buffer and reject a stuck key.
pub const MAX_FIELD_DIGITS: usize = 3;

/// Longest recall delay: a year; a longer one is surely a typo.
pub const MAX_RECALL_DELAY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Wrong entries before the box gives up and records 未入力.
pub const MAX_ATTEMPTS: u8 = 3;

/// What the agent finished entering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// A campaign result number (`N#`).
    Result(u16),
    /// Dial the customer again after this long (`0` then `M#` / `M*H#` / `M*H*D#`).
    Recall(Duration),
}

/// What the engine does after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Keep collecting.
    More,
    /// The agent keyed `0`: play the "enter the recall time" prompt.
    AskRecallDelay,
    /// Done: record this.
    Done(Entered),
    /// The entry was wrong: play the error prompt and collect again from the start.
    Retry(&'static str),
    /// Too many wrong entries: record 未入力 and end.
    GiveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Result,
    Delay,
}

/// The parser of one agent's entry.
#[derive(Debug, Clone)]
pub struct ResultEntry {
    phase: Phase,
    /// The fields so far; in the delay phase minutes, hours, days.
    fields: Vec<String>,
    wrong: u8,
    valid: Vec<u16>,
}

impl ResultEntry {
    /// A fresh entry accepting the campaign's result numbers `valid`.
    pub fn new(valid: &[u16]) -> ResultEntry {
        ResultEntry { phase: Phase::Result, fields: vec![String::new()], wrong: 0, valid: valid.to_vec() }
    }

    /// Feeds one DTMF key (`0-9`, `*`, `#`; others are wrong input).
    pub fn key(&mut self, key: char) -> Step {
        match (self.phase, key) {
            (Phase::Result, '0') if self.current().is_empty() => {
                self.phase = Phase::Delay;
                self.fields = vec![String::new()];
                Step::AskRecallDelay
            }
            (_, '0'..='9') => {
                let field = self.current_mut();
                if field.len() >= MAX_FIELD_DIGITS {
                    return self.wrong("too many digits");
                }
                field.push(key);
                Step::More
            }
            (Phase::Delay, '*') => {
                if self.current().is_empty() || self.fields.len() >= 3 {
                    return self.wrong("a delay is M#, M*H# or M*H*D#");
                }
                self.fields.push(String::new());
                Step::More
            }
            (Phase::Result, '#') => {
                let n = self.current().parse::<u16>().ok();
                match n {
                    Some(n) if self.valid.contains(&n) => Step::Done(Entered::Result(n)),
                    _ => self.wrong("no such result number"),
                }
            }
            (Phase::Delay, '#') => match self.delay() {
                Some(d) => Step::Done(Entered::Recall(d)),
                None => self.wrong("a delay is M#, M*H# or M*H*D#, from 1 minute to 365 days"),
            },
            _ => self.wrong("unexpected key"),
        }
    }

    /// Entries given up so far (for the log).
    pub fn wrong_entries(&self) -> u8 {
        self.wrong
    }

    fn current(&self) -> &str {
        self.fields.last().map(String::as_str).unwrap_or("")
    }

    fn current_mut(&mut self) -> &mut String {
        if self.fields.is_empty() {
            self.fields.push(String::new());
        }
        let last = self.fields.len() - 1;
        &mut self.fields[last]
    }

    fn delay(&self) -> Option<Duration> {
        let mut secs: u64 = 0;
        for (field, unit) in self.fields.iter().zip([60u64, 3600, 86_400]) {
            let n: u64 = field.parse().ok()?;
            secs = secs.checked_add(n.checked_mul(unit)?)?;
        }
        let d = Duration::from_secs(secs);
        (secs > 0 && d <= MAX_RECALL_DELAY).then_some(d)
    }

    fn wrong(&mut self, why: &'static str) -> Step {
        self.wrong = self.wrong.saturating_add(1);
        self.phase = Phase::Result;
        self.fields = vec![String::new()];
        if self.wrong >= MAX_ATTEMPTS {
            Step::GiveUp
        } else {
            Step::Retry(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(e: &mut ResultEntry, keys: &str) -> Step {
        let mut last = Step::More;
        for k in keys.chars() {
            last = e.key(k);
        }
        last
    }

    #[test]
    fn a_result_number_and_hash_records_that_result() {
        let mut e = ResultEntry::new(&[1, 2, 12]);
        assert_eq!(feed(&mut e, "12#"), Step::Done(Entered::Result(12)));
    }

    #[test]
    fn zero_asks_for_a_delay_in_minutes_hours_and_days() {
        let mut e = ResultEntry::new(&[1]);
        assert_eq!(e.key('0'), Step::AskRecallDelay);
        assert_eq!(feed(&mut e, "30#"), Step::Done(Entered::Recall(Duration::from_secs(30 * 60))));
        let mut e = ResultEntry::new(&[1]);
        assert_eq!(feed(&mut e, "00*2#"), Step::Done(Entered::Recall(Duration::from_secs(2 * 3600))));
        let mut e = ResultEntry::new(&[1]);
        let want = Duration::from_secs(15 * 60 + 3 * 3600 + 2 * 86_400);
        assert_eq!(feed(&mut e, "015*3*2#"), Step::Done(Entered::Recall(want)));
    }

    #[test]
    fn wrong_entries_retry_then_give_up_after_three() {
        let mut e = ResultEntry::new(&[1]);
        assert!(matches!(feed(&mut e, "7#"), Step::Retry(_)));
        assert!(matches!(feed(&mut e, "0#"), Step::Retry(_)), "a zero delay is refused");
        assert_eq!(feed(&mut e, "1234"), Step::GiveUp);
        assert_eq!(e.wrong_entries(), 3);
    }

    #[test]
    fn a_delay_with_four_fields_or_over_a_year_is_refused() {
        let mut e = ResultEntry::new(&[1]);
        assert!(matches!(feed(&mut e, "01*1*1*"), Step::Retry(_)));
        let mut e = ResultEntry::new(&[1]);
        assert!(matches!(feed(&mut e, "00*0*366#"), Step::Retry(_)));
        let mut e = ResultEntry::new(&[1]);
        assert!(matches!(feed(&mut e, "*"), Step::Retry(_)), "star is not a result");
    }
}
