//! The firmware's logger: every line to stderr and into a bounded RAM ring.
//!
//! The public interface is: [`init`], [`tail`], [`RING_LINES`], [`MAX_LINE_BYTES`].
//!
//! Flash is precious, so logs live in RAM: the technician console reads the ring with
//! `log tail`, and stderr goes wherever the init system sends it (a serial console, a RAM
//! journal).
//!
//! Level selection: `HAKODEN_LOG` holds a default level and optional `target=level` rules,
//! e.g. `debug` or `info,hakoden::sip=trace,rsipstack=debug`. The longest matching target
//! prefix wins. Without a rule of their own, the chatty dependencies (`rsipstack`, `rsip`, `fjall`, `lsm_tree`, `tokio`, `mio`) log
//! at `warn` only. Unset or unreadable: `info` (an unreadable value is reported once).
//!
//! Line format: `2026-11-21T23:59:59.123Z INFO target: message`, UTC, one record per line
//! (newlines in a message are written as `\n`).
use log::{LevelFilter, Log, Metadata, Record};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Lines kept in RAM. 2000 lines cover several minutes of a busy box at `info`, and at most
/// [`MAX_LINE_BYTES`] each the ring stays under 2 MiB.
pub const RING_LINES: usize = 2000;

/// Longest line kept or printed; longer messages are cut (a whole SIP message logged by
/// mistake must not eat the ring).
pub const MAX_LINE_BYTES: usize = 1024;

/// Dependencies that log every packet or compaction at `info`/`debug`: capped at `warn` unless
/// `HAKODEN_LOG` names them.
const NOISY_TARGETS: &[&str] = &["rsipstack", "rsip", "fjall", "lsm_tree", "tokio", "mio"];

/// The environment variable read by [`init`].
const ENV_VAR: &str = "HAKODEN_LOG";

static LOGGER: RingLogger = RingLogger { filter: OnceLock::new(), ring: Mutex::new(Ring::new()) };

/// Installs the logger; later calls do nothing.
pub fn init() {
    let spec = std::env::var(ENV_VAR).ok();
    let (filter, complaint) = match spec.as_deref().map(Filter::parse) {
        None => (Filter::default(), None),
        Some(Ok(filter)) => (filter, None),
        Some(Err(e)) => (Filter::default(), Some(e)),
    };
    let max = filter.max_level();
    if LOGGER.filter.set(filter).is_err() {
        return;
    }
    // Fails only when another logger was installed first; then that one stays.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(max);
    }
    if let Some(e) = complaint {
        log::warn!("{ENV_VAR} ignored, logging at info: {e}");
    }
}

/// The last `n` lines of the RAM ring, oldest first.
pub fn tail(n: usize) -> Vec<String> {
    LOGGER.ring().tail(n)
}

struct RingLogger {
    filter: OnceLock<Filter>,
    ring: Mutex<Ring>,
}

impl RingLogger {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while pushing leaves at worst a missing line; the ring is still usable.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Log for RingLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.get().is_some_and(|f| metadata.level() <= f.level_for(metadata.target()))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(now_unix_ms(), record);
        {
            let mut err = std::io::stderr().lock();
            // Nowhere to report a failing stderr; the ring still gets the line.
            let _ = writeln!(err, "{line}");
        }
        self.ring().push(line);
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

#[allow(clippy::disallowed_methods)] // driver: reads the clock
fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn format_line(unix_ms: u64, record: &Record<'_>) -> String {
    let mut line = String::with_capacity(128);
    push_utc(&mut line, unix_ms);
    let _ = write!(line, " {} {}: ", record.level(), record.target());
    let _ = write!(line, "{}", record.args());
    if line.contains(['\n', '\r']) {
        line = line.replace('\n', "\\n").replace('\r', "\\r");
    }
    truncate(&mut line, MAX_LINE_BYTES);
    line
}

/// Cuts `line` to at most `max` bytes on a char boundary, marking the cut with `…`.
fn truncate(line: &mut String, max: usize) {
    if line.len() <= max {
        return;
    }
    let mark = '…';
    let mut end = max.saturating_sub(mark.len_utf8());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push(mark);
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a Unix time in milliseconds (console listings).
pub fn utc_timestamp(unix_ms: u64) -> String {
    let mut s = String::with_capacity(24);
    push_utc(&mut s, unix_ms);
    s
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn push_utc(out: &mut String, unix_ms: u64) {
    const MS_PER_DAY: u64 = 86_400_000;
    let days = unix_ms / MS_PER_DAY;
    let ms_of_day = unix_ms % MS_PER_DAY;
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, ms) =
        (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z");
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, restricted to days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

struct Ring {
    lines: VecDeque<String>,
}

impl Ring {
    const fn new() -> Ring {
        Ring { lines: VecDeque::new() }
    }

    fn push(&mut self, line: String) {
        if self.lines.len() >= RING_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    fn tail(&self, n: usize) -> Vec<String> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n)).cloned().collect()
    }
}

/// Which level each target logs at.
#[derive(Debug, PartialEq)]
struct Filter {
    default: LevelFilter,
    /// `(target prefix, level)`; the longest matching prefix wins, later rules over earlier.
    rules: Vec<(String, LevelFilter)>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            default: LevelFilter::Info,
            rules: NOISY_TARGETS.iter().map(|t| (t.to_string(), LevelFilter::Warn)).collect(),
        }
    }
}

/// Most `target=level` rules read from the environment; a longer value is a mistake.
const MAX_FILTER_RULES: usize = 32;

impl Filter {
    fn parse(spec: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for (i, part) in spec.split(',').map(str::trim).filter(|p| !p.is_empty()).enumerate() {
            if i >= MAX_FILTER_RULES {
                return Err(format!("more than {MAX_FILTER_RULES} rules"));
            }
            let level =
                |s: &str| s.trim().parse::<LevelFilter>().map_err(|_| format!("`{s}` is not a log level"));
            match part.split_once('=') {
                None => filter.default = level(part)?,
                Some((target, lvl)) if !target.trim().is_empty() => {
                    filter.rules.push((target.trim().to_string(), level(lvl)?));
                }
                Some(_) => return Err(format!("`{part}` has no target before `=`")),
            }
        }
        Ok(filter)
    }

    fn level_for(&self, target: &str) -> LevelFilter {
        let mut best: Option<(usize, LevelFilter)> = None;
        for (prefix, level) in &self.rules {
            let matches = target == prefix
                || (target.starts_with(prefix.as_str())
                    && target.get(prefix.len()..).is_some_and(|rest| rest.starts_with("::")));
            if matches && best.is_none_or(|(len, _)| prefix.len() >= len) {
                best = Some((prefix.len(), *level));
            }
        }
        best.map_or(self.default, |(_, level)| level)
    }

    fn max_level(&self) -> LevelFilter {
        self.rules.iter().map(|(_, l)| *l).fold(self.default, std::cmp::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(ms: u64) -> String {
        let mut s = String::new();
        push_utc(&mut s, ms);
        s
    }

    #[test]
    fn utc_dates_match_the_calendar() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_795_305_599_123), "2026-11-21T23:59:59.123Z");
        assert_eq!(utc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(utc(4_107_542_400_000 - 1), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        let mut prev = civil_from_days(0);
        for day in 1..(200 * 366) {
            let (y, m, d) = civil_from_days(day);
            let next_day = (y, m, d) == (prev.0, prev.1, prev.2 + 1);
            let next_month = (y, m, d) == (prev.0, prev.1 + 1, 1);
            let next_year = (y, m, d) == (prev.0 + 1, 1, 1) && prev.1 == 12 && prev.2 == 31;
            assert!(next_day || next_month || next_year, "{prev:?} -> {:?}", (y, m, d));
            prev = (y, m, d);
        }
    }

    #[test]
    fn a_line_has_time_level_target_and_message() {
        let args = format_args!("phone {} registered\nsecond line", 201);
        let record = Record::builder().args(args).level(log::Level::Info).target("hakoden::sip").build();
        assert_eq!(
            format_line(1_795_305_599_123, &record),
            "2026-11-21T23:59:59.123Z INFO hakoden::sip: phone 201 registered\\nsecond line"
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let mut line = "電".repeat(MAX_LINE_BYTES);
        truncate(&mut line, MAX_LINE_BYTES);
        assert!(line.len() <= MAX_LINE_BYTES);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn the_ring_keeps_only_the_newest_lines() {
        let mut ring = Ring::new();
        for i in 0..RING_LINES + 5 {
            ring.push(i.to_string());
        }
        assert_eq!(ring.lines.len(), RING_LINES);
        assert_eq!(ring.tail(2), [(RING_LINES + 3).to_string(), (RING_LINES + 4).to_string()]);
        assert_eq!(ring.tail(usize::MAX).first().map(String::as_str), Some("5"));
    }

    #[test]
    fn noisy_targets_are_capped_at_warn_unless_named() {
        let f = Filter::default();
        assert_eq!(f.level_for("hakoden::sip"), LevelFilter::Info);
        assert_eq!(f.level_for("rsipstack::transaction"), LevelFilter::Warn);
        assert_eq!(f.level_for("rsipstackx"), LevelFilter::Info);
        let f = Filter::parse("debug, rsipstack::transport=trace").unwrap();
        assert_eq!(f.level_for("hakoden"), LevelFilter::Debug);
        assert_eq!(f.level_for("rsipstack::dialog"), LevelFilter::Warn);
        assert_eq!(f.level_for("rsipstack::transport::udp"), LevelFilter::Trace);
        assert_eq!(f.max_level(), LevelFilter::Trace);
        let f = Filter::parse("rsipstack=info").unwrap();
        assert_eq!(f.level_for("rsipstack::dialog"), LevelFilter::Info);
    }

    #[test]
    fn a_bad_filter_is_refused() {
        assert!(Filter::parse("loud").is_err());
        assert!(Filter::parse("=debug").is_err());
        assert!(Filter::parse("x=").is_err());
        assert_eq!(Filter::parse("").unwrap(), Filter::default());
    }

    #[test]
    fn init_is_idempotent_and_feeds_the_ring() {
        init();
        init();
        log::info!(target: "hakoden::logger_test", "marker {}", 42);
        log::debug!(target: "hakoden::logger_test", "hidden at info");
        let lines = tail(RING_LINES);
        assert!(lines.iter().any(|l| l.ends_with(" INFO hakoden::logger_test: marker 42")), "{lines:?}");
        if std::env::var_os(ENV_VAR).is_none() {
            assert!(!lines.iter().any(|l| l.contains("hidden at info")));
        }
    }
}
