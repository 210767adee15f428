//! The hardware watchdog: the box pets `/dev/watchdog` only while every critical loop is alive.
//!
//! The public interface is: [`Loop`], [`Heartbeats`], [`Health`], [`judge`], [`Watchdog`],
//! [`HangError`] and the limits [`STALE_AFTER`], [`PET_INTERVAL`], [`PROBE_INTERVAL`].
//!
//! Layers:
//! - [`judge`] is the logic: given each loop's last heartbeat and `now`, is the box healthy?
//!   Pure, no clock, unit-tested.
//! - [`Heartbeats`] is the shared board the loops write to (atomics, no locks: a loop that
//!   beats can never block on the watchdog).
//! - [`Watchdog`] is the driver: a dedicated OS thread (so a wedged tokio runtime cannot pet
//!   for it) that reads the clock, asks [`judge`], and writes to the device when healthy. On a
//!   clean shutdown it writes the magic character `V` before closing, which disarms the timer;
//!   a crash leaves it armed, and init's respawn must pet again before it fires.
//!
//! A loop that is never [registered](Heartbeats::register) is not judged: the web server gets
//! its hook ([`Loop::Web`]) without the watchdog depending on it before it exists.
//!
//! `debug hang LOOP` ([`Heartbeats::hang`]) makes that loop's next heartbeat block forever, to
//! prove the reset end to end. It is refused unless `hakoden run --allow-debug` was given.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A loop silent for longer than this counts as hung. Loops beat at least every
/// [`PROBE_INTERVAL`]; 5 s leaves room for a busy moment on two slow cores. The reset then
/// follows after the hardware timeout (QEMU's i6300esb: two 10 s stages, about 25 s in all).
pub const STALE_AFTER: Duration = Duration::from_secs(5);

/// How often the driver pets a healthy box: well inside the shortest hardware timeout the
/// board profiles configure (10 s).
pub const PET_INTERVAL: Duration = Duration::from_secs(1);

/// How often the probes of the SIP, media and store loops beat (and so how stale a healthy
/// loop's heartbeat can be): a fifth of [`STALE_AFTER`].
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Magic close: written before closing, it tells the driver the stop is deliberate.
const MAGIC_CLOSE: &[u8] = b"V";
/// Any other write pets the watchdog.
const PET: &[u8] = b"k";

/// A critical loop of the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loop {
    /// The engine task: SIP in and out, timers, console questions.
    Sip,
    /// The RTP relays (their shared manager).
    Media,
    /// The embedded store (a read through it).
    Store,
    /// The web server (`web::WebHandle::watch` registers it and beats after each good probe).
    Web,
}

impl Loop {
    /// Every loop, in the order of [`Heartbeats`]' slots.
    pub const ALL: [Loop; 4] = [Loop::Sip, Loop::Media, Loop::Store, Loop::Web];

    /// The loop's name on the console and in the log.
    pub fn name(self) -> &'static str {
        match self {
            Loop::Sip => "sip",
            Loop::Media => "media",
            Loop::Store => "store",
            Loop::Web => "web",
        }
    }

    /// The loop a console word names (`sip`, `media`, `store`, `web`).
    pub fn parse(word: &str) -> Option<Loop> {
        Loop::ALL.into_iter().find(|l| l.name() == word)
    }

    fn index(self) -> usize {
        match self {
            Loop::Sip => 0,
            Loop::Media => 1,
            Loop::Store => 2,
            Loop::Web => 3,
        }
    }
}

impl std::fmt::Display for Loop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The verdict of [`judge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Every registered loop beat within [`STALE_AFTER`]: pet.
    Healthy,
    /// This loop (the first found) has been silent this long: do not pet.
    Stale {
        /// The silent loop.
        which: Loop,
        /// Time since its last heartbeat.
        silent: Duration,
    },
}

/// Judges the loops' heartbeats at `now`: `last[i]` is loop `Loop::ALL[i]`'s last heartbeat,
/// `None` when that loop is not registered (not judged).
pub fn judge(last: &[Option<Instant>; 4], now: Instant, limit: Duration) -> Health {
    for (which, beat) in Loop::ALL.into_iter().zip(last) {
        if let Some(beat) = beat {
            // A heartbeat "from the future" (clock read order between threads) is fresh.
            let silent = now.saturating_duration_since(*beat);
            if silent > limit {
                return Health::Stale { which, silent };
            }
        }
    }
    Health::Healthy
}

/// Why `debug hang` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangError {
    /// The box was not started with `--allow-debug`.
    NotAllowed,
    /// The loop is not registered, so hanging it would prove nothing.
    NotRegistered(Loop),
}

impl std::fmt::Display for HangError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HangError::NotAllowed => f.write_str("debug commands need `hakoden run --allow-debug`"),
            HangError::NotRegistered(l) => write!(f, "the {l} loop does not report heartbeats on this box"),
        }
    }
}

impl std::error::Error for HangError {}

/// Last heartbeat per loop, shared by the loops and the watchdog driver. Cloning is cheap.
#[derive(Clone)]
pub struct Heartbeats(Arc<Board>);

struct Board {
    /// Heartbeats are stored as milliseconds since `base`, plus one; 0 means "not registered".
    base: Instant,
    beats: [AtomicU64; 4],
    hang: [AtomicBool; 4],
    allow_debug: bool,
}

impl Heartbeats {
    /// A board with no loop registered; `allow_debug` permits [`Heartbeats::hang`].
    pub fn new(base: Instant, allow_debug: bool) -> Heartbeats {
        Heartbeats(Arc::new(Board { base, beats: Default::default(), hang: Default::default(), allow_debug }))
    }

    /// Starts judging `which`, counting `now` as its first heartbeat.
    pub fn register(&self, which: Loop, now: Instant) {
        self.store(which, now);
    }

    /// `which` is alive at `now`. After a granted [`Heartbeats::hang`] this call never returns:
    /// the calling loop stops, as a real hang would.
    pub fn beat(&self, which: Loop, now: Instant) {
        if self.0.hang[which.index()].load(Ordering::Relaxed) {
            log::warn!("watchdog: debug hang: the {which} loop stops here");
            loop {
                std::thread::park();
            }
        }
        self.store(which, now);
    }

    fn store(&self, which: Loop, now: Instant) {
        let ms = now.saturating_duration_since(self.0.base).as_millis();
        let v = u64::try_from(ms).unwrap_or(u64::MAX - 1).saturating_add(1);
        self.0.beats[which.index()].store(v, Ordering::Relaxed);
    }

    /// `debug hang LOOP`: the loop's next heartbeat blocks forever.
    pub fn hang(&self, which: Loop) -> Result<(), HangError> {
        if !self.0.allow_debug {
            return Err(HangError::NotAllowed);
        }
        if self.0.beats[which.index()].load(Ordering::Relaxed) == 0 {
            return Err(HangError::NotRegistered(which));
        }
        self.0.hang[which.index()].store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Each loop's last heartbeat (`None`: not registered), in [`Loop::ALL`] order.
    pub fn last(&self) -> [Option<Instant>; 4] {
        let mut out = [None; 4];
        for (slot, beat) in out.iter_mut().zip(&self.0.beats) {
            let v = beat.load(Ordering::Relaxed);
            if v > 0 {
                *slot = self.0.base.checked_add(Duration::from_millis(v - 1));
            }
        }
        out
    }

    /// [`judge`] over this board at `now` with [`STALE_AFTER`].
    pub fn health(&self, now: Instant) -> Health {
        judge(&self.last(), now, STALE_AFTER)
    }
}

/// The running watchdog driver. Dropping it without [`Watchdog::close`] stops petting and
/// leaves the hardware armed (the board resets unless someone pets it).
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Opens `device` (which arms the hardware timer) and pets it every [`PET_INTERVAL`] while
    /// `beats` is [healthy](Heartbeats::health).
    pub fn start(device: &Path, beats: Heartbeats) -> std::io::Result<Watchdog> {
        let file = std::fs::OpenOptions::new().write(true).open(device)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let name = device.display().to_string();
            std::thread::Builder::new()
                .name("watchdog".into())
                .spawn(move || pet_loop(file, &name, &beats, &stop))?
        };
        log::info!("watchdog: {} armed; petted while every registered loop is alive", device.display());
        Ok(Watchdog { stop, thread: Some(thread) })
    }

    /// Clean shutdown: the magic close disarms the hardware timer.
    pub fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[allow(clippy::disallowed_methods)] // driver: reads the clock
fn pet_loop(mut file: std::fs::File, name: &str, beats: &Heartbeats, stop: &AtomicBool) {
    let mut stale_reported = false;
    loop {
        std::thread::park_timeout(PET_INTERVAL);
        if stop.load(Ordering::Relaxed) {
            match file.write_all(MAGIC_CLOSE).and_then(|()| file.flush()) {
                Ok(()) => log::info!("watchdog: {name} disarmed (clean shutdown)"),
                Err(e) => log::warn!("watchdog: {name}: magic close failed: {e}; the board may reset"),
            }
            return;
        }
        match beats.health(Instant::now()) {
            Health::Healthy => {
                stale_reported = false;
                if let Err(e) = file.write_all(PET) {
                    log::warn!("watchdog: cannot pet {name}: {e}");
                }
            }
            Health::Stale { which, silent } => {
                if !stale_reported {
                    log::error!(
                        "watchdog: the {which} loop has been silent for {} ms; no longer petting {name}, \
                         the board resets unless it recovers",
                        silent.as_millis()
                    );
                    stale_reported = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn unregistered_loops_are_not_judged() {
        let base = Instant::now();
        assert_eq!(judge(&[None; 4], at(base, 60_000), STALE_AFTER), Health::Healthy);
    }

    #[test]
    fn a_loop_silent_past_the_limit_is_stale() {
        let base = Instant::now();
        let last = [Some(at(base, 9_000)), Some(base), Some(at(base, 9_000)), None];
        assert_eq!(
            judge(&last, at(base, 10_000), STALE_AFTER),
            Health::Stale { which: Loop::Media, silent: Duration::from_secs(10) }
        );
    }

    #[test]
    fn a_loop_exactly_at_the_limit_is_still_healthy() {
        let base = Instant::now();
        let last = [Some(base), None, None, None];
        assert_eq!(judge(&last, base + STALE_AFTER, STALE_AFTER), Health::Healthy);
    }

    #[test]
    fn a_heartbeat_after_now_counts_as_fresh() {
        let base = Instant::now();
        let last = [Some(at(base, 5_000)), None, None, None];
        assert_eq!(judge(&last, base, STALE_AFTER), Health::Healthy);
    }

    #[test]
    fn heartbeats_round_trip_to_the_millisecond() {
        let base = Instant::now();
        let beats = Heartbeats::new(base, false);
        beats.register(Loop::Store, at(base, 1_234));
        let last = beats.last();
        assert_eq!(last[Loop::Store.index()], Some(at(base, 1_234)));
        assert_eq!(last[Loop::Web.index()], None);
        assert_eq!(beats.health(at(base, 1_234) + STALE_AFTER), Health::Healthy);
        assert!(matches!(beats.health(at(base, 7_000)), Health::Stale { which: Loop::Store, .. }));
    }

    #[test]
    fn hang_is_refused_without_allow_debug() {
        let base = Instant::now();
        let beats = Heartbeats::new(base, false);
        beats.register(Loop::Sip, base);
        assert_eq!(beats.hang(Loop::Sip), Err(HangError::NotAllowed));
    }

    #[test]
    fn hang_is_refused_for_a_loop_that_does_not_beat() {
        let base = Instant::now();
        let beats = Heartbeats::new(base, true);
        assert_eq!(beats.hang(Loop::Web), Err(HangError::NotRegistered(Loop::Web)));
    }

    #[test]
    fn a_hung_loop_stops_beating_and_turns_the_box_stale() {
        let base = Instant::now();
        let beats = Heartbeats::new(base, true);
        beats.register(Loop::Media, base);
        assert_eq!(beats.hang(Loop::Media), Ok(()));
        let b = beats.clone();
        // The hung thread is parked forever; the test process exits without joining it.
        std::thread::spawn(move || b.beat(Loop::Media, at(base, 1_000)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(beats.last()[Loop::Media.index()], Some(base));
        assert!(matches!(beats.health(at(base, 6_000)), Health::Stale { which: Loop::Media, .. }));
    }

    #[test]
    fn loop_names_parse_back() {
        for l in Loop::ALL {
            assert_eq!(Loop::parse(l.name()), Some(l));
        }
        assert_eq!(Loop::parse("engine"), None);
    }

    #[test]
    fn the_driver_pets_and_closes_with_the_magic_character() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("watchdog");
        std::fs::write(&dev, b"").unwrap();
        let beats = Heartbeats::new(Instant::now(), false);
        beats.register(Loop::Sip, Instant::now());
        let wd = Watchdog::start(&dev, beats.clone()).unwrap();
        // Wait (bounded) for the first pet rather than a fixed sleep.
        for _ in 0..50 {
            beats.beat(Loop::Sip, Instant::now());
            if !std::fs::read(&dev).unwrap().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        wd.close();
        let written = std::fs::read(&dev).unwrap();
        assert!(written.starts_with(PET), "{written:?}");
        assert!(written.ends_with(MAGIC_CLOSE), "{written:?}");
    }

    #[test]
    fn the_driver_does_not_pet_a_stale_box() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("watchdog");
        std::fs::write(&dev, b"").unwrap();
        // Registered long ago and never again: stale from the start.
        let base = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        let beats = Heartbeats::new(base, false);
        beats.register(Loop::Store, base);
        let wd = Watchdog::start(&dev, beats).unwrap();
        std::thread::sleep(PET_INTERVAL + Duration::from_millis(300));
        wd.close();
        assert_eq!(std::fs::read(&dev).unwrap(), MAGIC_CLOSE);
    }
}
