//! The appliance image booted under QEMU (issue 8): SIPp registers and completes a call with
//! RTP through the forwarded ports, a trial slot that never commits rolls back, and an injected
//! hang resets the box through the i6300esb watchdog.
//!
//! Gated: runs when `qemu-system-aarch64` is installed (CI installs it in the image step of
//! `scripts/test.sh`, which sets `HAKODEN_SKIP_IMAGE=1` for the ordinary test step so the box is
//! booted once). The image is `HAKODEN_IMAGE`, else `target/images/hakoden-qemu-virt-aarch64.img`,
//! built by `scripts/build-image.sh` when missing. One test, one boot: every phase reuses the
//! running guest, which keeps the whole run to about a minute after the image exists.
// A driver test: it waits on a real emulator and measures wall time.
#![allow(clippy::disallowed_methods)]
mod common;

use common::{g711a_pcap, require_tool, wait_udp_bound, PortBlock, RtpSink, Sipp};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// First boot under TCG emulation on two shared cores: kernel, stage 1, store creation.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// A reboot or a watchdog reset back to the ready line: the hardware timeout (10 s), the
/// heartbeat limit (5 s) and a boot.
const RESET_TIMEOUT: Duration = Duration::from_secs(120);
/// A shell command on the serial console answers within this.
const SHELL_TIMEOUT: Duration = Duration::from_secs(20);
/// RTP ports forwarded into the guest: a handful of calls' worth, each one a host socket.
const RTP_FORWARDS: u16 = 20;
/// SIPp's capture holds 67 packets in the caller's first 2 s of talk; loose for emulation.
const MIN_RELAYED_PACKETS: u64 = 40;
/// SIPp runs against an emulated box: more than the loopback default.
const SIPP_TIMEOUT: Duration = Duration::from_secs(40);
/// The host as QEMU's user network shows it to the guest; packets to it leave on the host's
/// loopback.
const QEMU_HOST_ALIAS: &str = "10.0.2.2";
/// Build of the image from the test (only when nothing built it before).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1_500);

/// The serial console as lines, shared with a reader thread.
#[derive(Default)]
struct Serial {
    lines: Mutex<Vec<String>>,
    more: Condvar,
}

impl Serial {
    /// Waits for a line after index `from` that satisfies `want`; returns its index and text.
    fn wait_for(
        &self,
        from: usize,
        timeout: Duration,
        want: impl Fn(&str) -> bool,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some((i, l)) = lines.iter().enumerate().skip(from).find(|(_, l)| want(l)) {
                return Some((i, l.clone()));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.more.wait_timeout(lines, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect::<Vec<_>>().join("\n")
    }
}

/// QEMU started through `scripts/run-qemu.sh`; stopped by its pid on drop.
struct Guest {
    child: Child,
    stdin: ChildStdin,
    serial: Arc<Serial>,
    pidfile: PathBuf,
}

impl Guest {
    fn boot(image: &Path, dir: &Path, sip: u16, rtp: (u16, u16), tcp: (u16, u16)) -> Guest {
        let pidfile = dir.join("qemu.pid");
        let mut child = Command::new(repo().join("scripts/run-qemu.sh"))
            .args(["--debug", "--pidfile"])
            .arg(&pidfile)
            .args(["--sip", &sip.to_string(), "--rtp", &format!("{}-{}", rtp.0, rtp.1)])
            .args(["--https", &tcp.0.to_string(), "--console", &tcp.1.to_string()])
            .arg(image)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start scripts/run-qemu.sh: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let serial = Arc::new(Serial::default());
        let s = serial.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
                s.lines.lock().unwrap_or_else(|e| e.into_inner()).push(text);
                s.more.notify_all();
            }
        });
        Guest { child, stdin, serial, pidfile }
    }

    fn expect(
        &self,
        from: usize,
        timeout: Duration,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> (usize, String) {
        self.serial.wait_for(from, timeout, want).unwrap_or_else(|| {
            panic!(
                "no {what} on the serial console within {timeout:?}\n--- serial ---\n{}",
                self.serial.tail(80)
            )
        })
    }

    /// Types a line into the serial root shell (hakoden.debug=1).
    fn type_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).expect("write to the serial console");
        self.stdin.flush().expect("flush the serial console");
    }

    /// Runs `cmd` in the serial shell and returns what it printed after `KEY=`.
    fn shell_value(&mut self, key: &str, cmd: &str) -> String {
        let from = self.serial.len();
        self.type_line(&format!("echo {key}=$({cmd})"));
        let prefix = format!("{key}=");
        let (_, line) = self.expect(from, SHELL_TIMEOUT, key, |l| l.starts_with(&prefix));
        line.trim_start_matches(&prefix).to_string()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        // QEMU by its own pid (the script's pipeline ends with it), then the script.
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                let _ = Command::new("kill").arg(pid.to_string()).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The image under test: given, already built, or built now into its own cargo target dir
/// (the test's own build may hold the usual one).
fn image() -> PathBuf {
    if let Some(p) = std::env::var_os("HAKODEN_IMAGE") {
        return PathBuf::from(p);
    }
    let built = repo().join("target/images/hakoden-qemu-virt-aarch64.img");
    if built.is_file() {
        return built;
    }
    eprintln!("building the image (scripts/build-image.sh qemu-virt-aarch64); this takes minutes");
    let mut cmd = Command::new(repo().join("scripts/build-image.sh"));
    cmd.arg("qemu-virt-aarch64").env("CARGO_TARGET_DIR", repo().join("target/appliance-build"));
    let logs = repo().join("target");
    let _ = std::fs::create_dir_all(&logs);
    let run = common::run_bounded(&mut cmd, &logs, "build-image", BUILD_TIMEOUT);
    assert!(
        built.is_file(),
        "build-image.sh made no image (exit {:?}):\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    built
}

fn skip_requested() -> bool {
    if std::env::var("HAKODEN_SKIP_IMAGE").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: HAKODEN_SKIP_IMAGE=1 (scripts/test.sh runs this test in its image step)");
        return true;
    }
    false
}

#[test]
fn the_image_boots_calls_rolls_back_an_uncommitted_slot_and_resets_on_a_hang() {
    if skip_requested() || !require_tool("qemu-system-aarch64") || !require_tool("sipp") {
        return;
    }
    let image = image();
    let dir = tempfile::tempdir().expect("tempdir");
    // A private copy: the guest writes its data partition.
    let disk = dir.path().join("disk.img");
    let copied = Command::new("cp").arg("--sparse=always").arg(&image).arg(&disk).status();
    assert!(copied.is_ok_and(|s| s.success()), "cannot copy {}", image.display());

    let ports = PortBlock::reserve();
    let sip = ports.sip_port();
    let (rtp_lo, _) = ports.rtp_range();
    let rtp = (rtp_lo, rtp_lo + RTP_FORWARDS - 1);
    let tcp = (ports.port(), ports.port());
    let started = Instant::now();
    let mut guest = Guest::boot(&disk, dir.path(), sip, rtp, tcp);

    // Boot: stage 1 picks the committed slot a, then the box says it is ready.
    guest.expect(0, BOOT_TIMEOUT, "stage-1 slot line", |l| l.contains("stage1: slot=a source=committed"));
    let (ready_at, _) = guest.expect(0, BOOT_TIMEOUT, "ready line", |l| l.contains("hakoden: ready "));
    let boot_time = started.elapsed();
    eprintln!("MEASURE boot_to_ready_s={:.1}", boot_time.as_secs_f64());
    let password = |ext: &str| {
        let (_, line) = guest.expect(0, SHELL_TIMEOUT, "demo password", |l| {
            l.trim_start().starts_with(&format!("extension {ext} "))
        });
        line.split_whitespace().last().unwrap_or_default().to_string()
    };
    let (alice, bob) = (("201", password("201")), ("202", password("202")));

    // SIPp: both register, 201 calls 202, RTP flows through the box's relay.
    let sipdir = dir.path().join("sipp");
    let remote = format!("127.0.0.1:{sip}");
    let register = |ext: &(&str, String), port: u16| {
        let run = Sipp::new("register.xml", &sipdir)
            .remote(&remote)
            .local_port(port)
            .media_port(ports.port())
            .service(ext.0)
            .auth(ext.0, &ext.1)
            .timeout(SIPP_TIMEOUT)
            .run();
        run.assert_ok(&format!("REGISTER {} through the forwarded port", ext.0));
    };
    let (alice_port, bob_port) = (ports.port(), ports.port());
    register(&bob, bob_port);
    register(&alice, alice_port);
    let sink = RtpSink::bind(ports.port());
    // The guest cannot reach 127.0.0.1 (its own loopback): the answer names QEMU's alias
    // for this host, and slirp carries the relay's RTP to the sink on 127.0.0.1.
    let callee = Sipp::new("uas_answer_nat.xml", &sipdir)
        .remote(&remote)
        .local_port(bob_port)
        .media_port(ports.port())
        .key("rtpport", sink.port())
        .key("rtpaddr", QEMU_HOST_ALIAS)
        .timeout(SIPP_TIMEOUT)
        .spawn();
    wait_udp_bound(bob_port);
    let caller = Sipp::new("uac_call.xml", &sipdir)
        .remote(&remote)
        .local_port(alice_port)
        .media_port(ports.port())
        .service(bob.0)
        .key("caller", alice.0)
        .auth(alice.0, &alice.1)
        .key("pcap", g711a_pcap().display())
        .timeout(SIPP_TIMEOUT)
        .run();
    let callee = callee.wait();
    let relayed = sink.finish();
    caller.assert_ok("201 calls 202 on the booted image");
    callee.assert_ok("202 answers on the booted image");
    assert!(
        relayed.packets >= MIN_RELAYED_PACKETS,
        "the callee got {} RTP packets through the guest (want >= {MIN_RELAYED_PACKETS}): {relayed:?}\n{}",
        relayed.packets,
        guest.serial.tail(40)
    );

    // Figures for docs/PERFORMANCE.md.
    let rss = guest.shell_value("RSS", "grep VmRSS /proc/$(pidof hakoden)/status | tr -s ' '");
    let avail = guest.shell_value("MEMAVAIL", "grep MemAvailable /proc/meminfo | tr -s ' '");
    eprintln!("MEASURE hakoden {rss}; guest {avail} (of 512 MiB)");

    // A/B: a one-shot trial of slot b that never commits falls back to the committed a.
    let from = guest.serial.len();
    guest.type_line("hakoden-slot try b && reboot");
    let (at, _) = guest.expect(from, RESET_TIMEOUT, "trial boot of slot b", |l| {
        l.contains("stage1: slot=b source=try_slot trial=1")
    });
    guest.expect(at, RESET_TIMEOUT, "ready line in slot b", |l| l.contains("hakoden: ready "));
    let status = guest.shell_value("SLOT", "hakoden-slot status | tr '\\n' ' '");
    assert!(status.contains("running=b trial=1") && status.contains("committed=a"), "{status}");
    let from = guest.serial.len();
    guest.type_line("reboot");
    let (at, _) = guest
        .expect(from, RESET_TIMEOUT, "rollback to slot a", |l| l.contains("stage1: slot=a source=committed"));
    guest.expect(at, RESET_TIMEOUT, "ready line after the rollback", |l| l.contains("hakoden: ready "));

    // Watchdog: a hung SIP loop stops the petting; the i6300esb resets the board.
    let from = guest.serial.len();
    let hung = Instant::now();
    guest.type_line("hakoden console --data /data/hakoden debug hang sip");
    guest.expect(from, SHELL_TIMEOUT, "the hang's confirmation", |l| l.contains("the sip loop hangs now"));
    guest.expect(from, RESET_TIMEOUT, "the watchdog's complaint", |l| l.contains("no longer petting"));
    let (at, _) = guest.expect(from, RESET_TIMEOUT, "a reset", |l| l.contains("stage1: slot=a"));
    let reset_after = hung.elapsed();
    guest.expect(at, RESET_TIMEOUT, "ready line after the watchdog reset", |l| l.contains("hakoden: ready "));
    eprintln!(
        "MEASURE hang_to_reset_s={:.1} hang_to_ready_s={:.1}",
        reset_after.as_secs_f64(),
        hung.elapsed().as_secs_f64()
    );
    let _ = ready_at;
    eprintln!("MEASURE total_test_s={:.1}", started.elapsed().as_secs_f64());
}
