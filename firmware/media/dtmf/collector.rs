//! A sans-IO digit collector for menus and feature codes: up to `max_digits` digits, a
//! first-digit and an inter-digit timeout, and an optional terminator (`#`).
//!
//! Contract: [`DigitCollector::start`] arms the first-digit timer; feed digits with
//! [`push`](DigitCollector::push) and call [`handle_timeout`](DigitCollector::handle_timeout) at
//! [`poll_timeout`](DigitCollector::poll_timeout). Exactly one [`Collected`] ends a collection;
//! after it the collector is idle until started again. A digit pushed at or after the deadline
//! finds the collection already timed out: the timeout is reported and the digit discarded, as
//! it would have been had the timer fired on time.

use std::time::{Duration, Instant};

/// Most digits one collection can hold: longer than any dial plan entry (E.164 is 15 digits
/// plus a feature-code prefix), small enough to bound memory per leg.
pub const MAX_COLLECT_DIGITS: usize = 64;

/// What to collect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Complete after this many digits (clamped to 1..=[`MAX_COLLECT_DIGITS`]).
    pub max_digits: usize,
    /// How long to wait for the first digit after [`DigitCollector::start`].
    pub first_digit_timeout: Duration,
    /// How long to wait for each further digit.
    pub inter_digit_timeout: Duration,
    /// A digit that completes the collection early and is not part of the result (usually `#`).
    pub terminator: Option<char>,
}

/// The end of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Complete: `max_digits` reached or the terminator pressed (not included).
    Digits(String),
    /// A timeout fired; the digits so far, possibly none.
    Timeout(String),
}

/// Collects digits for one prompt.
#[derive(Debug, Clone)]
pub struct DigitCollector {
    config: CollectorConfig,
    digits: String,
    deadline: Option<Instant>,
}

impl DigitCollector {
    /// An idle collector; call [`start`](Self::start) when the prompt begins.
    pub fn new(config: CollectorConfig) -> Self {
        let max_digits = config.max_digits.clamp(1, MAX_COLLECT_DIGITS);
        DigitCollector {
            config: CollectorConfig { max_digits, ..config },
            digits: String::new(),
            deadline: None,
        }
    }

    /// Starts (or restarts) a collection: clears the digits and arms the first-digit timer.
    pub fn start(&mut self, now: Instant) {
        self.digits.clear();
        self.deadline = Some(now.checked_add(self.config.first_digit_timeout).unwrap_or(now));
    }

    /// True while a collection is running.
    pub fn is_collecting(&self) -> bool {
        self.deadline.is_some()
    }

    /// The digits so far.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// Adds a digit. Characters outside `0-9 * # A-D` and digits while idle are ignored.
    pub fn push(&mut self, digit: char, now: Instant) -> Option<Collected> {
        let deadline = self.deadline?;
        if now >= deadline {
            return self.handle_timeout(now);
        }
        let digit = digit.to_ascii_uppercase();
        super::digit_to_event(digit)?;
        if self.config.terminator == Some(digit) {
            return Some(self.finish(Collected::Digits));
        }
        self.digits.push(digit);
        if self.digits.len() >= self.config.max_digits {
            return Some(self.finish(Collected::Digits));
        }
        self.deadline = Some(now.checked_add(self.config.inter_digit_timeout).unwrap_or(now));
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due; `None` while idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Ends the collection with [`Collected::Timeout`] if its deadline has passed. Idempotent.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Collected> {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return Some(self.finish(Collected::Timeout));
        }
        None
    }

    fn finish(&mut self, wrap: fn(String) -> Collected) -> Collected {
        self.deadline = None;
        wrap(std::mem::take(&mut self.digits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(5);
    const INTER: Duration = Duration::from_secs(3);

    fn collector(max_digits: usize, terminator: Option<char>) -> (DigitCollector, Instant) {
        let mut c = DigitCollector::new(CollectorConfig {
            max_digits,
            first_digit_timeout: FIRST,
            inter_digit_timeout: INTER,
            terminator,
        });
        let t0 = Instant::now();
        c.start(t0);
        (c, t0)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn collection_completes_when_max_digits_are_reached() {
        let (mut c, t0) = collector(3, Some('#'));
        assert_eq!(c.push('1', t0 + ms(100)), None);
        assert_eq!(c.push('2', t0 + ms(200)), None);
        assert_eq!(c.push('3', t0 + ms(300)), Some(Collected::Digits("123".into())));
        assert_eq!(c.poll_timeout(), None);
        assert!(!c.is_collecting());
    }

    #[test]
    fn terminator_completes_early_and_is_not_included() {
        let (mut c, t0) = collector(10, Some('#'));
        c.push('4', t0 + ms(100));
        c.push('2', t0 + ms(200));
        assert_eq!(c.push('#', t0 + ms(300)), Some(Collected::Digits("42".into())));
    }

    #[test]
    fn terminator_alone_completes_with_no_digits() {
        let (mut c, t0) = collector(4, Some('#'));
        assert_eq!(c.push('#', t0 + ms(100)), Some(Collected::Digits(String::new())));
    }

    #[test]
    fn pound_is_an_ordinary_digit_without_a_terminator() {
        let (mut c, t0) = collector(2, None);
        c.push('*', t0 + ms(100));
        assert_eq!(c.push('#', t0 + ms(200)), Some(Collected::Digits("*#".into())));
    }

    #[test]
    fn first_digit_timeout_reports_an_empty_timeout() {
        let (mut c, t0) = collector(4, Some('#'));
        assert_eq!(c.poll_timeout(), Some(t0 + FIRST));
        assert_eq!(c.handle_timeout(t0 + FIRST - ms(1)), None);
        assert_eq!(c.handle_timeout(t0 + FIRST), Some(Collected::Timeout(String::new())));
        assert_eq!(c.handle_timeout(t0 + FIRST + ms(1)), None, "idempotent once reported");
    }

    #[test]
    fn inter_digit_timeout_restarts_at_each_digit_and_reports_partial_digits() {
        let (mut c, t0) = collector(4, Some('#'));
        c.push('7', t0 + ms(1_000));
        assert_eq!(c.poll_timeout(), Some(t0 + ms(1_000) + INTER));
        c.push('8', t0 + ms(3_500));
        assert_eq!(c.poll_timeout(), Some(t0 + ms(3_500) + INTER));
        assert_eq!(c.handle_timeout(t0 + ms(3_500) + INTER), Some(Collected::Timeout("78".into())));
    }

    #[test]
    fn digit_arriving_after_the_deadline_reports_the_timeout_and_is_discarded() {
        let (mut c, t0) = collector(4, None);
        c.push('1', t0 + ms(100));
        assert_eq!(c.push('2', t0 + ms(100) + INTER), Some(Collected::Timeout("1".into())));
        assert_eq!(c.push('3', t0 + ms(100) + INTER + ms(1)), None, "idle after completion");
    }

    #[test]
    fn non_dtmf_characters_and_idle_digits_are_ignored() {
        let mut c = DigitCollector::new(CollectorConfig {
            max_digits: 2,
            first_digit_timeout: FIRST,
            inter_digit_timeout: INTER,
            terminator: None,
        });
        let t0 = Instant::now();
        assert_eq!(c.push('1', t0), None, "not started");
        assert_eq!(c.poll_timeout(), None);
        c.start(t0);
        assert_eq!(c.push('x', t0 + ms(10)), None);
        assert_eq!(c.digits(), "");
        c.push('a', t0 + ms(20));
        assert_eq!(c.push('1', t0 + ms(30)), Some(Collected::Digits("A1".into())));
    }

    #[test]
    fn restarting_clears_previous_digits() {
        let (mut c, t0) = collector(3, None);
        c.push('1', t0 + ms(10));
        c.start(t0 + ms(20));
        assert_eq!(c.digits(), "");
        assert_eq!(c.poll_timeout(), Some(t0 + ms(20) + FIRST));
    }

    #[test]
    fn zero_max_digits_is_clamped_to_one() {
        let (mut c, t0) = collector(0, None);
        assert_eq!(c.push('9', t0 + ms(10)), Some(Collected::Digits("9".into())));
    }
}
