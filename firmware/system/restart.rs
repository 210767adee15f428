//! The nightly restart: sans-IO scheduler over a wall clock the caller passes in.
//!
//! `[system] restart_window = "03:00-04:00"` (local time): inside the window the box restarts
//! as soon as no call is active, once per night. `restart_deadline = "03:50"` (optional, inside
//! the window): from then on it restarts even with calls (they are dropped). Without a deadline
//! a night whose window closes with calls still active is skipped.
//!
//! "Once per night" survives the restart itself without any stored state: a night whose window
//! opened before this process started counts as done, so the fresh process started at 03:05
//! does not restart again at 03:06.

/// Seconds in a day.
const DAY_S: i64 = 86_400;
/// Minutes in a day.
const DAY_MIN: u16 = 1_440;

/// A local time of day as minutes after midnight; parses `HH:MM`.
fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
    (h < 24 && m < 60 && !s.trim().starts_with('+')).then_some(h * 60 + m)
}

fn show_hhmm(min: u16) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// The validated `[system]` restart settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPlan {
    /// Window start, minutes after local midnight.
    start: u16,
    /// Window length in minutes (1..1440; the window may cross midnight).
    len: u16,
    /// Minutes after the window start from which calls no longer hold the restart back.
    deadline: Option<u16>,
}

impl RestartPlan {
    /// Parses `restart_window` (`HH:MM-HH:MM`, may cross midnight) and `restart_deadline`
    /// (`HH:MM`, strictly inside the window). The error says what is wrong, for the config
    /// loader's message.
    pub fn parse(window: &str, deadline: Option<&str>) -> Result<RestartPlan, String> {
        let (a, b) =
            window.split_once('-').ok_or_else(|| format!("`{window}` is not a window HH:MM-HH:MM"))?;
        let start = parse_hhmm(a).ok_or_else(|| format!("`{a}` is not a time HH:MM"))?;
        let end = parse_hhmm(b).ok_or_else(|| format!("`{b}` is not a time HH:MM"))?;
        let len = (end + DAY_MIN - start) % DAY_MIN;
        if len == 0 {
            return Err(format!("`{window}` is an empty window"));
        }
        let deadline = match deadline {
            None => None,
            Some(d) => {
                let at = parse_hhmm(d).ok_or_else(|| format!("`{d}` is not a time HH:MM"))?;
                let after = (at + DAY_MIN - start) % DAY_MIN;
                if after == 0 || after >= len {
                    return Err(format!("deadline `{d}` is not inside the window {window}"));
                }
                Some(after)
            }
        };
        Ok(RestartPlan { start, len, deadline })
    }

    /// `03:00-04:00`, for logs and the console.
    pub fn window_text(&self) -> String {
        format!("{}-{}", show_hhmm(self.start), show_hhmm((self.start + self.len) % DAY_MIN))
    }

    /// The deadline as `HH:MM`, if any.
    pub fn deadline_text(&self) -> Option<String> {
        self.deadline.map(|d| show_hhmm((self.start + d) % DAY_MIN))
    }
}

/// What the daemon should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartAction {
    /// Log this line (the window opened with calls active, or the night was skipped).
    Announce(String),
    /// Exit cleanly now so init starts a fresh process; `forced` when calls are dropped.
    Restart {
        /// The deadline passed with calls still active.
        forced: bool,
        /// The log line saying why.
        reason: String,
    },
}

/// The scheduler: one per process.
#[derive(Debug, Clone)]
pub struct NightlyRestart {
    plan: RestartPlan,
    /// Local offset from UTC in seconds.
    offset_s: i64,
    /// Unix seconds this process started: a night opened before it is done.
    started: i64,
    /// Window start (unix s) of the last night handled (restarted, skipped).
    done: Option<i64>,
    /// Window start (unix s) of the last night whose wait was announced.
    announced: Option<i64>,
}

impl NightlyRestart {
    /// A scheduler for a process started at `started_unix` in a zone `utc_offset_minutes`
    /// east of UTC.
    pub fn new(plan: RestartPlan, utc_offset_minutes: i32, started_unix: i64) -> NightlyRestart {
        NightlyRestart {
            plan,
            offset_s: i64::from(utc_offset_minutes) * 60,
            started: started_unix,
            done: None,
            announced: None,
        }
    }

    /// The settings.
    pub fn plan(&self) -> RestartPlan {
        self.plan
    }

    /// Unix seconds of the latest window start at or before `now`.
    fn window_start(&self, now: i64) -> i64 {
        let local = now + self.offset_s;
        let midnight = local - local.rem_euclid(DAY_S);
        let mut ws = midnight + i64::from(self.plan.start) * 60 - self.offset_s;
        if ws > now {
            ws -= DAY_S;
        }
        ws
    }

    fn night_done(&self, ws: i64) -> bool {
        ws <= self.started || self.done == Some(ws)
    }

    /// Called about once a second with the wall clock and a way to count active calls (asked
    /// only inside the window).
    pub fn poll(&mut self, now_unix: i64, active_calls: impl FnOnce() -> usize) -> Option<RestartAction> {
        let ws = self.window_start(now_unix);
        if self.night_done(ws) {
            return None;
        }
        let elapsed_min = (now_unix - ws) / 60;
        let window = self.plan.window_text();
        if elapsed_min >= i64::from(self.plan.len) {
            // The window closed busy: skip to the next night. If this process never saw the
            // window open (the clock was stepped past it, e.g. by NTP after a boot without a
            // real-time clock) there is nothing to announce.
            self.done = Some(ws);
            let waited = self.announced == Some(ws);
            return waited.then(|| {
                RestartAction::Announce(format!(
                    "nightly restart: skipped tonight, calls were active all through {window}"
                ))
            });
        }
        let calls = active_calls();
        if calls == 0 {
            self.done = Some(ws);
            return Some(RestartAction::Restart {
                forced: false,
                reason: format!("nightly restart: no call active inside {window}, restarting now"),
            });
        }
        if let Some(d) = self.plan.deadline {
            if elapsed_min >= i64::from(d) {
                self.done = Some(ws);
                let at = self.plan.deadline_text().unwrap_or_default();
                return Some(RestartAction::Restart {
                    forced: true,
                    reason: format!(
                        "nightly restart: deadline {at} reached, restarting with {calls} call(s) active"
                    ),
                });
            }
        }
        if self.announced != Some(ws) {
            self.announced = Some(ws);
            let then = match self.plan.deadline_text() {
                Some(at) => format!("or at the deadline {at}"),
                None => "or skips tonight if the window closes busy".to_string(),
            };
            return Some(RestartAction::Announce(format!(
                "nightly restart: window {window} open, waiting for {calls} active call(s) to end ({then})"
            )));
        }
        None
    }

    /// Unix seconds of the next planned restart: `now` when one is pending inside an open
    /// window, else the next window's start. For the dashboard's `next_restart`.
    pub fn next_restart(&self, now_unix: i64) -> i64 {
        let ws = self.window_start(now_unix);
        let open = now_unix - ws < i64::from(self.plan.len) * 60;
        if open && !self.night_done(ws) {
            now_unix
        } else {
            ws + DAY_S
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-28 00:00 JST as unix seconds (2026-11-27 15:00 UTC).
    const MIDNIGHT_JST: i64 = 1_795_791_600;
    const JST: i32 = 9 * 60;

    fn at(h: i64, m: i64) -> i64 {
        MIDNIGHT_JST + h * 3600 + m * 60
    }

    fn plan(deadline: Option<&str>) -> RestartPlan {
        RestartPlan::parse("03:00-04:00", deadline).unwrap()
    }

    #[test]
    fn the_test_clock_starts_at_a_jst_midnight() {
        assert_eq!((MIDNIGHT_JST + 9 * 3600) % DAY_S, 0);
    }

    #[test]
    fn an_idle_box_restarts_at_the_window_start_once_per_night() {
        let mut s = NightlyRestart::new(plan(None), JST, at(0, 0) - DAY_S);
        assert_eq!(s.poll(at(2, 59), || 0), None);
        assert!(matches!(s.poll(at(3, 0), || 0), Some(RestartAction::Restart { forced: false, .. })));
        assert_eq!(s.poll(at(3, 1), || 0), None, "once per night");
        assert!(matches!(s.poll(at(3, 0) + DAY_S, || 0), Some(RestartAction::Restart { .. })));
    }

    #[test]
    fn the_fresh_process_after_a_restart_does_not_restart_again_that_night() {
        let mut s = NightlyRestart::new(plan(None), JST, at(3, 0) + 20);
        assert_eq!(s.poll(at(3, 1), || 0), None);
        assert_eq!(s.next_restart(at(3, 1)), at(3, 0) + DAY_S);
    }

    #[test]
    fn a_call_holds_the_restart_until_it_ends_and_the_wait_is_announced_once() {
        let mut s = NightlyRestart::new(plan(None), JST, at(0, 0));
        assert!(
            matches!(s.poll(at(3, 0), || 2), Some(RestartAction::Announce(m)) if m.contains("waiting for 2"))
        );
        assert_eq!(s.poll(at(3, 10), || 1), None);
        assert_eq!(s.next_restart(at(3, 10)), at(3, 10), "pending inside the window");
        assert!(matches!(s.poll(at(3, 20), || 0), Some(RestartAction::Restart { forced: false, .. })));
    }

    #[test]
    fn without_a_deadline_a_busy_window_skips_the_night() {
        let mut s = NightlyRestart::new(plan(None), JST, at(0, 0));
        let _ = s.poll(at(3, 0), || 1);
        assert!(matches!(s.poll(at(4, 0), || 1), Some(RestartAction::Announce(m)) if m.contains("skipped")));
        assert_eq!(s.poll(at(4, 1), || 0), None, "no restart after the window");
        assert_eq!(s.next_restart(at(4, 1)), at(3, 0) + DAY_S);
    }

    #[test]
    fn at_the_deadline_the_box_restarts_even_with_calls() {
        let mut s = NightlyRestart::new(plan(Some("03:50")), JST, at(0, 0));
        let _ = s.poll(at(3, 0), || 1);
        assert_eq!(s.poll(at(3, 49), || 1), None);
        assert!(matches!(s.poll(at(3, 50), || 1), Some(RestartAction::Restart { forced: true, .. })));
    }

    #[test]
    fn a_clock_stepped_past_the_window_skips_that_night_silently() {
        // Booted without a real-time clock: started in 1970, then NTP set the time.
        let mut s = NightlyRestart::new(plan(None), JST, 0);
        assert_eq!(s.poll(at(12, 0), || 0), None);
        assert_eq!(s.next_restart(at(12, 0)), at(3, 0) + DAY_S);
    }

    #[test]
    fn the_config_section_is_read_and_checked() {
        let c = crate::config::parse_str(
            "[system]\nrestart_window = \"03:00-04:00\"\nrestart_deadline = \"03:45\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.system.restart, Some(RestartPlan::parse("03:00-04:00", Some("03:45")).unwrap()));
        let e = crate::config::parse_str(
            "[system]\nrestart_window = \"03:00-04:00\"\nrestart_deadline = \"05:00\"\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("system.restart_deadline"), "{e}");
        let e = crate::config::parse_str("[system]\nrestart_window = \"3am\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("system.restart_window"), "{e}");
        assert!(crate::config::parse_str("[system]\nrestart_deadline = \"03:45\"\n", "t").is_err());
        assert_eq!(crate::config::parse_str("", "t").unwrap().system.restart, None);
    }

    #[test]
    fn a_window_across_midnight_works() {
        let p = RestartPlan::parse("23:30-00:30", Some("00:15")).unwrap();
        assert_eq!(p.window_text(), "23:30-00:30");
        let mut s = NightlyRestart::new(p, JST, at(0, 0) - DAY_S);
        assert_eq!(s.poll(at(0, 10), || 1).map(|a| matches!(a, RestartAction::Announce(_))), Some(true));
        assert!(matches!(s.poll(at(0, 15), || 1), Some(RestartAction::Restart { forced: true, .. })));
    }

    #[test]
    fn a_box_started_before_a_window_plans_that_window() {
        let s = NightlyRestart::new(plan(None), JST, at(1, 0));
        assert_eq!(s.next_restart(at(1, 0)), at(3, 0));
        assert_eq!(s.next_restart(at(12, 0)), at(3, 0) + DAY_S);
    }

    #[test]
    fn bad_windows_and_deadlines_are_refused() {
        assert!(RestartPlan::parse("03:00", None).is_err());
        assert!(RestartPlan::parse("03:00-03:00", None).is_err());
        assert!(RestartPlan::parse("25:00-03:00", None).is_err());
        assert!(RestartPlan::parse("03:00-04:00", Some("04:00")).is_err());
        assert!(RestartPlan::parse("03:00-04:00", Some("03:00")).is_err());
        assert!(RestartPlan::parse("03:00-04:00", Some("05:00")).is_err());
        assert!(RestartPlan::parse("03:00-04:00", Some("3:30")).is_ok());
    }
}
