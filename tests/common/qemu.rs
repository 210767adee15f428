//! The booted appliance image under QEMU for the image tests (`image_qemu.rs`,
//! `image_update.rs`): the image (given, built, or built now), a guest started through
//! `scripts/run-qemu.sh` with its serial console as lines, and the gating rules.
//!
//! Driver code for tests: it waits on a real emulator and measures wall time.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// First boot under TCG emulation on two shared cores: kernel, stage 1, store creation.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// A reboot or a watchdog reset back to the ready line: the hardware timeout (10 s), the
/// heartbeat limit (5 s) and a boot.
pub const RESET_TIMEOUT: Duration = Duration::from_secs(120);
/// A shell command on the serial console answers within this.
pub const SHELL_TIMEOUT: Duration = Duration::from_secs(20);
/// RTP ports forwarded into the guest: a handful of calls' worth, each one a host socket.
pub const RTP_FORWARDS: u16 = 20;
/// SIPp's capture holds 67 packets in the caller's first 2 s of talk; loose for emulation.
pub const MIN_RELAYED_PACKETS: u64 = 40;
/// SIPp runs against an emulated box: more than the loopback default.
pub const SIPP_TIMEOUT: Duration = Duration::from_secs(40);
/// The host as QEMU's user network shows it to the guest; packets to it leave on the host's
/// loopback.
pub const QEMU_HOST_ALIAS: &str = "10.0.2.2";
/// Build of the image from the test (only when nothing built it before).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(1_500);

/// The serial console as lines, shared with a reader thread.
#[derive(Default)]
pub struct Serial {
    lines: Mutex<Vec<String>>,
    more: Condvar,
}

impl Serial {
    /// Waits for a line after index `from` that satisfies `want`; returns its index and text.
    pub fn wait_for(
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

    /// How many lines from index `from` on satisfy `want`.
    pub fn count(&self, from: usize, want: impl Fn(&str) -> bool) -> usize {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().skip(from).filter(|l| want(l)).count()
    }

    pub fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().skip(lines.len().saturating_sub(n)).cloned().collect::<Vec<_>>().join("\n")
    }
}

/// QEMU started through `scripts/run-qemu.sh`; stopped by its pid on drop.
pub struct Guest {
    child: Child,
    stdin: ChildStdin,
    pub serial: Arc<Serial>,
    pidfile: PathBuf,
}

impl Guest {
    pub fn boot(image: &Path, dir: &Path, sip: u16, rtp: (u16, u16), tcp: (u16, u16)) -> Guest {
        Guest::boot_with_ssh(image, dir, sip, rtp, tcp, None)
    }

    /// [`Guest::boot`], with the guest's SSH port forwarded to `ssh` on 127.0.0.1.
    pub fn boot_with_ssh(
        image: &Path,
        dir: &Path,
        sip: u16,
        rtp: (u16, u16),
        tcp: (u16, u16),
        ssh: Option<u16>,
    ) -> Guest {
        let pidfile = dir.join("qemu.pid");
        let mut cmd = Command::new(repo().join("scripts/run-qemu.sh"));
        cmd.args(["--debug", "--pidfile"])
            .arg(&pidfile)
            .args(["--sip", &sip.to_string(), "--rtp", &format!("{}-{}", rtp.0, rtp.1)])
            .args(["--https", &tcp.0.to_string(), "--console", &tcp.1.to_string()]);
        if let Some(port) = ssh {
            cmd.args(["--ssh", &port.to_string()]);
        }
        let mut child = cmd
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

    pub fn expect(
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
    pub fn type_line(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).expect("write to the serial console");
        self.stdin.flush().expect("flush the serial console");
    }

    /// Runs `cmd` in the serial shell and returns what it printed after `KEY=`.
    ///
    /// The typed line says `KEY''=`: the terminal's echo of it never contains `KEY=`, so a
    /// firmware log line written in the middle of the echo (which leaves the rest of the echo
    /// at the start of a line) cannot be taken for the answer.
    pub fn shell_value(&mut self, key: &str, cmd: &str) -> String {
        let from = self.serial.len();
        self.type_line(&format!("echo {key}''=$({cmd})"));
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

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The image under test: given, already built, or built now into its own cargo target dir
/// (the test's own build may hold the usual one).
pub fn image() -> PathBuf {
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
    let run = super::run_bounded(&mut cmd, &logs, "build-image", BUILD_TIMEOUT);
    assert!(
        built.is_file(),
        "build-image.sh made no image (exit {:?}):\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    built
}

pub fn skip_requested() -> bool {
    if std::env::var("HAKODEN_SKIP_IMAGE").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: HAKODEN_SKIP_IMAGE=1 (scripts/test.sh runs this test in its image step)");
        return true;
    }
    false
}

impl Guest {
    /// Pulls the plug: SIGKILL to QEMU, so the guest gets no shutdown and its page cache is
    /// lost (the power-cut test). The disk image keeps what reached it.
    pub fn power_cut(mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pidfile) {
            if let Ok(pid) = pid.trim().parse::<u32>() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pidfile);
    }

    /// Waits for the ready line after line `from`; returns its index.
    pub fn ready_after(&self, from: usize, timeout: Duration) -> usize {
        self.expect(from, timeout, "ready line", |l| l.contains("hakoden: ready ")).0
    }

    /// The web admin's certificate (PEM), read over the serial shell.
    pub fn web_certificate(&mut self) -> String {
        let from = self.serial.len();
        // `PEM''-DONE` for the reason given at `shell_value`.
        self.type_line("cat /data/hakoden/web/admin.pem; echo PEM''-DONE");
        let (end, _) = self.expect(from, SHELL_TIMEOUT, "the certificate", |l| l.starts_with("PEM-DONE"));
        let lines = self.serial.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut pem = String::new();
        let mut inside = false;
        for l in lines.iter().take(end).skip(from) {
            if l.starts_with("-----BEGIN CERTIFICATE") {
                inside = true;
            }
            if inside {
                pem.push_str(l.trim());
                pem.push('\n');
            }
            if l.starts_with("-----END CERTIFICATE") {
                break;
            }
        }
        pem
    }
}

/// A private sparse copy of `image` in `dir`: the guest writes its data partition.
pub fn private_disk(image: &Path, dir: &Path) -> PathBuf {
    let disk = dir.join("disk.img");
    let copied = Command::new("cp").arg("--sparse=always").arg(image).arg(&disk).status();
    assert!(copied.is_ok_and(|s| s.success()), "cannot copy {}", image.display());
    disk
}
