//! The web loop's watchdog heartbeat, on a developer box: `--watchdog FILE` pets a plain file
//! once a second while every registered loop is alive; `debug hang web` wedges the web probe,
//! and the box stops petting (the board would reset) once the web loop is judged stale.
// A driver test: it waits on a real box.
#![allow(clippy::disallowed_methods)]
mod common;

use common::TestBox;
use std::time::{Duration, Instant};

/// Petting starts within a few seconds of the ready line.
const PET_WAIT: Duration = Duration::from_secs(10);
/// The web loop is judged stale 5 s after its last beat (watchdog::STALE_AFTER) plus a pet
/// interval; generous for a loaded CI machine.
const STALE_WAIT: Duration = Duration::from_secs(30);

fn size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_hung_web_loop_stops_the_watchdog_petting() {
    let tb = TestBox::start_seeded(&[("201", "secret201")], &[], "", &|data| {
        let dir = data.parent().expect("the data dir has a parent");
        let device = dir.join("watchdog");
        std::fs::write(&device, b"").expect("watchdog file");
        std::fs::write(dir.join("extra-args"), format!("--allow-debug --watchdog {}", device.display()))
            .expect("extra args");
    });
    let device = tb.data_dir().parent().expect("parent").join("watchdog");
    let start = Instant::now();
    while size(&device) == 0 {
        assert!(start.elapsed() < PET_WAIT, "the box never petted its watchdog");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = tb.console("debug hang web");
    assert!(out.contains("hangs now"), "the web loop is registered with the watchdog: {out}");
    let start = Instant::now();
    loop {
        let log = tb.stderr_tail(400);
        if log.contains("the web loop has been silent") {
            break;
        }
        assert!(start.elapsed() < STALE_WAIT, "the hung web loop was never judged stale:\n{log}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Judged stale: the file no longer grows.
    let before = size(&device);
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(size(&device), before, "the box still pets with a hung web loop");
}
