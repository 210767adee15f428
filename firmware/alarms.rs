//! Alarms: conditions an operator must see (issue 7 dashboard), raised and cleared by key.
//!
//! The public interface is: [`Severity`], [`Alarm`], [`AlarmTable`] (the bounded table, no I/O,
//! no clock: every call takes the wall time in ms), and [`Alarms`], the process's shared handle
//! ([`global`]) that reads the clock.
//!
//! An alarm is keyed (`trunk:<name>`, `storage`, `recording`, `voicemail`, `notify`): raising an
//! active key again bumps its count and last-seen time instead of adding a row, so a flapping
//! trunk is one line. Clearing marks it cleared (kept for the operator to see what happened)
//! until newer alarms push it out. The table never holds more than [`MAX_ALARMS`] rows: when
//! full, the oldest cleared row goes first, then the oldest active one.
//!
//! Why one process-wide table ([`global`]): the raisers are spread over drivers that share no
//! state (the engine loop, the retention thread, the notification outbox, the voicemail store),
//! like the logger. The table itself is a plain value, tested on its own.

use serde::Serialize;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Most rows kept: a box has at most a few dozen trunks plus a handful of other keys; beyond
/// that the list is noise on a dashboard and would grow without bound under a key bug.
pub const MAX_ALARMS: usize = 64;

/// Longest key or message kept, in bytes: a line on the dashboard, not a log.
pub const MAX_TEXT_BYTES: usize = 200;

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Degraded but working (a notification retried, storage filling).
    Warning,
    /// Something is broken (trunk down, recordings not saved).
    Critical,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alarm {
    /// What it is about, stable (`trunk:hikari`, `storage`).
    pub key: String,
    /// How bad.
    pub severity: Severity,
    /// The latest words about it.
    pub message: String,
    /// First raised (this episode), Unix ms.
    pub first_ms: u64,
    /// Last raised, Unix ms.
    pub last_ms: u64,
    /// Times raised in this episode.
    pub count: u64,
    /// When it was cleared, Unix ms; `None` while active.
    pub cleared_ms: Option<u64>,
}

impl Alarm {
    /// Whether it is still active.
    pub fn active(&self) -> bool {
        self.cleared_ms.is_none()
    }
}

/// The bounded alarm table (see the module doc).
#[derive(Debug, Default)]
pub struct AlarmTable {
    rows: Vec<Alarm>,
}

fn clip(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl AlarmTable {
    /// An empty table.
    pub fn new() -> AlarmTable {
        AlarmTable::default()
    }

    /// Raises `key` at `now_ms`. Returns true when it was not active before (a new episode),
    /// so the caller logs once per episode, not per repeat.
    pub fn raise(&mut self, key: &str, severity: Severity, message: &str, now_ms: u64) -> bool {
        let key = clip(key);
        if let Some(row) = self.rows.iter_mut().find(|r| r.key == key) {
            let fresh = !row.active();
            if fresh {
                row.first_ms = now_ms;
                row.count = 0;
                row.cleared_ms = None;
            }
            row.count = row.count.saturating_add(1);
            row.last_ms = now_ms;
            row.severity = severity;
            row.message = clip(message);
            return fresh;
        }
        if self.rows.len() >= MAX_ALARMS {
            let victim = self
                .rows
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.active())
                .min_by_key(|(_, r)| r.last_ms)
                .or_else(|| self.rows.iter().enumerate().min_by_key(|(_, r)| r.last_ms))
                .map(|(i, _)| i);
            if let Some(i) = victim {
                self.rows.remove(i);
            }
        }
        self.rows.push(Alarm {
            key,
            severity,
            message: clip(message),
            first_ms: now_ms,
            last_ms: now_ms,
            count: 1,
            cleared_ms: None,
        });
        true
    }

    /// Clears `key` at `now_ms`; returns true when it was active.
    pub fn clear(&mut self, key: &str, now_ms: u64) -> bool {
        match self.rows.iter_mut().find(|r| r.key == key && r.active()) {
            Some(row) => {
                row.cleared_ms = Some(now_ms);
                true
            }
            None => false,
        }
    }

    /// Every row: active first (critical before warning), then cleared, newest first.
    pub fn list(&self) -> Vec<Alarm> {
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| {
            b.active().cmp(&a.active()).then(b.severity.cmp(&a.severity)).then(b.last_ms.cmp(&a.last_ms))
        });
        rows
    }

    /// Active alarms.
    pub fn active_count(&self) -> usize {
        self.rows.iter().filter(|r| r.active()).count()
    }
}

/// The shared table with the wall clock (a driver: it reads the clock).
#[derive(Debug, Default)]
pub struct Alarms {
    table: Mutex<AlarmTable>,
}

#[allow(clippy::disallowed_methods)] // driver: reads the wall clock
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Alarms {
    fn table(&self) -> MutexGuard<'_, AlarmTable> {
        // Every method leaves the table whole before it can panic, so a poisoned one is fine.
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Raises `key` now; the first raise of an episode is logged as `ALARM`.
    pub fn raise(&self, key: &str, severity: Severity, message: &str) {
        if self.table().raise(key, severity, message, wall_ms()) {
            log::warn!("ALARM raised: {key}: {message}");
        }
    }

    /// Clears `key` now (logged when it was active).
    pub fn clear(&self, key: &str) {
        if self.table().clear(key, wall_ms()) {
            log::info!("alarm cleared: {key}");
        }
    }

    /// Every row (see [`AlarmTable::list`]).
    pub fn list(&self) -> Vec<Alarm> {
        self.table().list()
    }

    /// `show alarms` on the console.
    pub fn show(&self) -> String {
        use std::fmt::Write as _;
        let rows = self.list();
        let mut s = String::new();
        let active = rows.iter().filter(|r| r.active()).count();
        let _ = writeln!(s, "{active} active alarm(s), {} cleared", rows.len() - active);
        for r in rows {
            let state = if r.active() { "ACTIVE" } else { "cleared" };
            let sev = match r.severity {
                Severity::Warning => "warning",
                Severity::Critical => "critical",
            };
            let _ = writeln!(s, "{state:<8} {sev:<8} {:<20} x{:<4} {}", r.key, r.count, r.message);
        }
        s
    }
}

/// The process's alarm table.
pub fn global() -> &'static Alarms {
    static ALARMS: OnceLock<Alarms> = OnceLock::new();
    ALARMS.get_or_init(Alarms::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_an_active_key_again_counts_instead_of_adding_a_row() {
        let mut t = AlarmTable::new();
        assert!(t.raise("trunk:a", Severity::Critical, "down", 10));
        assert!(!t.raise("trunk:a", Severity::Critical, "still down", 20));
        let rows = t.list();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].first_ms, rows[0].last_ms, rows[0].count), (10, 20, 2));
        assert_eq!(rows[0].message, "still down");
    }

    #[test]
    fn a_cleared_alarm_stays_listed_and_a_new_raise_starts_a_new_episode() {
        let mut t = AlarmTable::new();
        t.raise("storage", Severity::Warning, "95 %", 10);
        assert!(t.clear("storage", 20));
        assert!(!t.clear("storage", 30), "already cleared");
        assert_eq!(t.active_count(), 0);
        assert_eq!(t.list()[0].cleared_ms, Some(20));
        assert!(t.raise("storage", Severity::Warning, "96 %", 40));
        let r = &t.list()[0];
        assert_eq!((r.first_ms, r.count, r.cleared_ms), (40, 1, None));
    }

    #[test]
    fn the_table_is_bounded_and_drops_cleared_rows_first() {
        let mut t = AlarmTable::new();
        t.raise("old-cleared", Severity::Warning, "x", 1000);
        t.clear("old-cleared", 1001);
        for i in 0..MAX_ALARMS as u64 {
            t.raise(&format!("k{i}"), Severity::Warning, "x", i);
        }
        let rows = t.list();
        assert_eq!(rows.len(), MAX_ALARMS);
        assert!(rows.iter().all(|r| r.key != "old-cleared"), "the cleared row went first");
        t.raise("one-more", Severity::Critical, "x", 5000);
        let rows = t.list();
        assert_eq!(rows.len(), MAX_ALARMS);
        assert!(rows.iter().all(|r| r.key != "k0"), "then the oldest active one");
    }

    #[test]
    fn active_critical_alarms_are_listed_first() {
        let mut t = AlarmTable::new();
        t.raise("a", Severity::Warning, "x", 3);
        t.raise("b", Severity::Critical, "x", 1);
        t.raise("c", Severity::Critical, "x", 2);
        t.clear("c", 4);
        let keys: Vec<String> = t.list().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let mut t = AlarmTable::new();
        let long = "障".repeat(MAX_TEXT_BYTES);
        t.raise(&long, Severity::Warning, &long, 1);
        let r = &t.list()[0];
        assert!(r.key.len() <= MAX_TEXT_BYTES && r.message.len() <= MAX_TEXT_BYTES);
        assert!(r.key.chars().all(|c| c == '障'));
    }
}
