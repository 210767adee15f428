//! Integration-test harness: starts the real `hakoden` binary on 127.0.0.1 with its own
//! ports, data directory and config, and drives external peers (SIPp, baresip) against it.
//!
//! The public interface is: [`TestBox`], [`PortBlock`], [`Sipp`], [`SippChild`],
//! [`SippRun`], [`RtpSink`], [`RtpCount`], [`require_tool`], [`run_bounded`],
//! [`g711a_pcap`], [`sipp_scenario`]; baresip phones in [`baresip`], test tones and their
//! analysis in [`tones`].
//!
//! Ports: every box gets a [`PortBlock`] of [`BLOCK_SPAN`] ports picked at random below the
//! kernel's ephemeral range, so the OS never hands them to someone else, and probed by
//! binding each one. Tests run in parallel threads (cargo test) or processes (nextest); a
//! process-wide set keeps threads apart and the random pick plus the probe keeps processes
//! apart. A box that still dies at start-up (port raced away) is retried on a fresh block.
#![allow(dead_code)] // each test crate uses a different part of the harness

pub mod baresip;
pub mod qemu;
pub mod tones;
pub mod voicemail;
pub mod web;

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Lowest port a block may start at: above the well-known and registered service ports
/// a developer machine is likely to run (5060, 8080, ...).
const PORTS_LO: u16 = 10_240;
/// Highest port a block may end below: Linux hands out ephemeral ports from 32768, so
/// nothing outside the tests takes ours between the probe and the use.
const PORTS_HI: u16 = 32_760;
/// Ports for test endpoints (SIPp signalling and media, RTP sinks) at the start of a block.
const ENDPOINT_SPAN: u16 = 96;
/// The box's RTP range; 200 ports is 100 concurrent RTP sessions, more than any test needs.
const RTP_SPAN: u16 = 200;
/// One block: endpoints, the box's SIP port, its RTP range, the web ports, and a gap to the
/// next block.
const BLOCK_SPAN: u16 = 320;
/// Offset of the box's HTTPS port in a block (after the RTP range); HTTP is the next one.
const WEB_OFFSET: u16 = ENDPOINT_SPAN + 2 + RTP_SPAN + 2;
/// Blocks tried before giving up: most failures are ports held by another test process.
const BLOCK_TRIES: usize = 40;
/// Start attempts for a box whose process died before saying it is ready.
const START_TRIES: usize = 3;
/// The contract: the box prints its ready line within this time.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// A console command reads the data directory and exits; a few seconds is plenty.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the box's stderr printed when a test fails.
const STDERR_TAIL_LINES: usize = 80;
/// Polling step while waiting for a child process.
const POLL_STEP: Duration = Duration::from_millis(20);

/// Returns whether `tool` is on PATH. When it is missing, CI (`CI` set) fails the test and
/// a developer's run skips it with a printed reason.
pub fn require_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        return true;
    }
    let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0");
    if ci.unwrap_or(false) {
        panic!("`{tool}` is not installed; CI must have it (scripts/test.sh installs it)");
    }
    eprintln!("SKIPPED: `{tool}` is not installed (run scripts/test.sh to install it)");
    false
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Blocks handed out in this process and not yet dropped.
static BLOCKS_IN_USE: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A range of [`BLOCK_SPAN`] ports reserved for one box and its peers.
#[derive(Debug)]
pub struct PortBlock {
    base: u16,
    next: AtomicU64,
}

impl PortBlock {
    /// Picks a random free block; panics when none is found.
    pub fn reserve() -> PortBlock {
        let slots = (PORTS_HI - PORTS_LO) / BLOCK_SPAN;
        for _ in 0..BLOCK_TRIES {
            let slot = u16::try_from(random_u64() % u64::from(slots)).unwrap_or(0);
            let base = PORTS_LO + slot * BLOCK_SPAN;
            {
                let mut guard = BLOCKS_IN_USE.lock().unwrap_or_else(|e| e.into_inner());
                let set = guard.get_or_insert_with(HashSet::new);
                if set.contains(&base) {
                    continue;
                }
                set.insert(base);
            }
            let block = PortBlock { base, next: AtomicU64::new(0) };
            let sip = block.sip_port();
            let (lo, hi) = block.rtp_range();
            let all_free = (base..base + ENDPOINT_SPAN).all(udp_free)
                && udp_free(sip)
                && tcp_free(sip)
                && (lo..=hi).all(udp_free)
                && tcp_free(block.https_port())
                && tcp_free(block.http_port());
            if all_free {
                return block;
            }
            // Dropping `block` releases the slot for other threads.
        }
        panic!("no free block of {BLOCK_SPAN} ports on 127.0.0.1 after {BLOCK_TRIES} tries");
    }

    /// The box's SIP port (UDP and TCP).
    pub fn sip_port(&self) -> u16 {
        self.base + ENDPOINT_SPAN
    }

    /// The box's RTP range, inclusive.
    pub fn rtp_range(&self) -> (u16, u16) {
        let lo = self.base + ENDPOINT_SPAN + 2;
        (lo, lo + RTP_SPAN - 1)
    }

    /// The box's web admin HTTPS port.
    pub fn https_port(&self) -> u16 {
        self.base + WEB_OFFSET
    }

    /// The box's plain-HTTP redirect port.
    pub fn http_port(&self) -> u16 {
        self.base + WEB_OFFSET + 1
    }

    /// A fresh even port for a peer; the next three ports are left to it too (SIPp binds
    /// RTP and RTCP for audio and video next to its media port).
    pub fn port(&self) -> u16 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let offset = u16::try_from(n * 4).unwrap_or(u16::MAX);
        assert!(offset + 4 <= ENDPOINT_SPAN, "test used more than {} endpoint ports", ENDPOINT_SPAN / 4);
        self.base + offset
    }
}

impl Drop for PortBlock {
    fn drop(&mut self) {
        let mut guard = BLOCKS_IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = guard.as_mut() {
            set.remove(&self.base);
        }
    }
}

/// Last `lines` lines of a text file (lossy), for failure reports.
pub fn file_tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        // The tail of a debug log fits in this; reading the whole file could be huge.
        const TAIL_BYTES: u64 = 64 * 1024;
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        text = String::from_utf8_lossy(&buf).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits for `child` at most `timeout`; kills it when the time is up (then returns None).
pub fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let steps = timeout.as_millis() / POLL_STEP.as_millis() + 1;
    for _ in 0..steps {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => std::thread::sleep(POLL_STEP),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// What a bounded command run gave.
#[derive(Debug)]
pub struct Bounded {
    /// Exit code; None when killed by the timeout or a signal.
    pub code: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with stdout/stderr sent to files in `dir` (no pipe can fill up), killing it
/// after `timeout`.
pub fn run_bounded(cmd: &mut Command, dir: &Path, name: &str, timeout: Duration) -> Bounded {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    let out = File::create(&out_path).expect("create stdout file");
    let err = File::create(&err_path).expect("create stderr file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let status = wait_bounded(&mut child, timeout);
    Bounded {
        code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// A running `hakoden run` on 127.0.0.1, killed on drop.
pub struct TestBox {
    child: Child,
    dir: tempfile::TempDir,
    ports: PortBlock,
    stderr_path: PathBuf,
    ready_line: String,
    /// Stdout lines printed before the ready line (first-start passwords).
    before_ready: Vec<String>,
}

impl TestBox {
    /// Starts a box with these `(number, password)` extensions and waits for its ready line.
    pub fn start(extensions: &[(&str, &str)]) -> TestBox {
        Self::start_with_config(extensions, &[], "")
    }

    /// Like [`TestBox::start`], with more configuration: `extension_toml` adds lines to the
    /// `[[extension]]` table of a number (e.g. `("202", "record = \"always\"")`), and
    /// `extra_toml` holds whole tables (e.g. `"[media]\nlanguage = \"en\""`).
    pub fn start_with_config(
        extensions: &[(&str, &str)],
        extension_toml: &[(&str, &str)],
        extra_toml: &str,
    ) -> TestBox {
        Self::start_seeded(extensions, extension_toml, extra_toml, &|_| {})
    }

    /// Like [`TestBox::start_with_config`], after `seed` has written into the data directory
    /// (e.g. a store holding events to report on) before the box first opens it.
    pub fn start_seeded(
        extensions: &[(&str, &str)],
        extension_toml: &[(&str, &str)],
        extra_toml: &str,
        seed: &dyn Fn(&Path),
    ) -> TestBox {
        let config = config_toml(extensions, extension_toml, extra_toml);
        let mut last_error = String::new();
        for attempt in 1..=START_TRIES {
            match Self::try_start(&config, seed) {
                Ok(tb) => return tb,
                Err(e) => {
                    eprintln!("box start attempt {attempt} failed: {e}");
                    last_error = e;
                }
            }
        }
        panic!("the box did not start after {START_TRIES} attempts:\n{last_error}");
    }

    fn try_start(config_text: &str, seed: &dyn Fn(&Path)) -> Result<TestBox, String> {
        let dir = tempfile::Builder::new()
            .prefix("hakoden-test-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let ports = PortBlock::reserve();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("mkdir data: {e}"))?;
        seed(&data);
        let config = dir.path().join("hakoden.toml");
        std::fs::write(&config, config_text).map_err(|e| format!("config: {e}"))?;
        let stderr_path = dir.path().join("hakoden.stderr");
        let (child, ready_line, before_ready) = Self::launch(dir.path(), &ports, &stderr_path)?;
        Ok(TestBox { child, dir, ports, stderr_path, ready_line, before_ready })
    }

    /// Kills the box (SIGKILL: nothing is flushed on the way out) and starts it again on the
    /// same data directory, configuration and ports; waits for the new ready line.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        match Self::launch(self.dir.path(), &self.ports, &self.stderr_path) {
            Ok((child, ready_line, before_ready)) => {
                self.child = child;
                self.ready_line = ready_line;
                self.before_ready = before_ready;
            }
            Err(e) => panic!("the box did not start again:\n{e}"),
        }
    }

    /// Starts `hakoden run` on `dir/data` with `dir/hakoden.toml`, appending to `stderr_path`.
    fn launch(
        dir: &Path,
        ports: &PortBlock,
        stderr_path: &Path,
    ) -> Result<(Child, String, Vec<String>), String> {
        let data = dir.join("data");
        let config = dir.join("hakoden.toml");
        let stderr = File::options()
            .create(true)
            .append(true)
            .open(stderr_path)
            .map_err(|e| format!("stderr file: {e}"))?;
        let (lo, hi) = ports.rtp_range();
        let log_level = std::env::var("HAKODEN_LOG").unwrap_or_else(|_| "debug".to_string());
        // `dir/extra-args` (written by a `start_seeded` seed into the data dir's parent): more
        // `hakoden run` flags for one test, e.g. `--allow-debug`.
        let extra: Vec<String> = std::fs::read_to_string(dir.join("extra-args"))
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hakoden"))
            .arg("run")
            .args(&extra)
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .arg("--sip-port")
            .arg(ports.sip_port().to_string())
            .arg("--rtp-ports")
            .arg(format!("{lo}-{hi}"))
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--https-port")
            .arg(ports.https_port().to_string())
            .arg("--http-port")
            .arg(ports.http_port().to_string())
            .env("HAKODEN_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start hakoden: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel::<(String, Vec<String>)>();
        // Keeps draining stdout after the ready line so the box never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut before = Vec::new();
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && line.starts_with("hakoden: ready ") {
                    sent = tx.send((line, std::mem::take(&mut before))).is_ok();
                } else if !sent {
                    before.push(line);
                }
            }
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok((ready_line, before)) => Ok((child, ready_line, before)),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                Err(format!(
                    "no ready line ({e}); exit: {status:?}\n--- hakoden stderr (tail) ---\n{}",
                    file_tail(stderr_path, STDERR_TAIL_LINES)
                ))
            }
        }
    }

    pub fn sip_port(&self) -> u16 {
        self.ports.sip_port()
    }

    /// The box's SIP address as SIPp's remote host argument.
    pub fn sip_addr(&self) -> String {
        format!("127.0.0.1:{}", self.sip_port())
    }

    pub fn rtp_range(&self) -> (u16, u16) {
        self.ports.rtp_range()
    }

    /// A fresh port for a peer of this box (see [`PortBlock::port`]).
    pub fn port(&self) -> u16 {
        self.ports.port()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }

    /// Stdout lines printed before the ready line (demo and web admin first-start passwords).
    pub fn before_ready(&self) -> &[String] {
        &self.before_ready
    }

    /// The web admin's HTTPS base URL, `https://127.0.0.1:PORT`.
    pub fn web_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.ports.https_port())
    }

    /// The plain-HTTP redirect port.
    pub fn http_port(&self) -> u16 {
        self.ports.http_port()
    }

    /// The seeded web `admin` password the box printed on its first start.
    pub fn web_admin_password(&self) -> Option<String> {
        self.before_ready.iter().find_map(|l| {
            let rest = l.strip_prefix("First start: web admin user `admin`, password ")?;
            rest.split_whitespace().next().map(str::to_string)
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch directory that lives as long as the box (peers' traces and configs).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        p
    }

    /// Runs `hakoden console --data DIR <cmd...>` and returns its stdout; panics (with the
    /// box's log tail) when it fails.
    pub fn console(&self, cmd: &str) -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hakoden"));
        command.arg("console").arg("--data").arg(self.data_dir()).args(cmd.split_whitespace());
        let out = run_bounded(&mut command, self.dir.path(), "console", CONSOLE_TIMEOUT);
        if out.code != Some(0) {
            panic!(
                "`hakoden console {cmd}` failed ({:?}, timed out: {}):\n{}{}\n--- box stderr ---\n{}",
                out.code,
                out.timed_out,
                out.stdout,
                out.stderr,
                self.stderr_tail(STDERR_TAIL_LINES)
            );
        }
        out.stdout
    }

    /// Runs `hakoden console --data DIR <cmd...>` that is expected to fail: its exit code and
    /// stdout.
    pub fn console_refused(&self, cmd: &str) -> (Option<i32>, String) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hakoden"));
        command.arg("console").arg("--data").arg(self.data_dir()).args(cmd.split_whitespace());
        let out = run_bounded(&mut command, self.dir.path(), "console", CONSOLE_TIMEOUT);
        (out.code, out.stdout)
    }

    /// Runs a console command until `done` accepts its output or `timeout` passes; returns the
    /// last output either way. For state the box writes behind a group commit (CDRs).
    pub fn console_until(&self, cmd: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let steps = timeout.as_millis() / POLL_STEP.as_millis();
        let mut out = self.console(cmd);
        for _ in 0..steps {
            if done(&out) {
                break;
            }
            std::thread::sleep(POLL_STEP);
            out = self.console(cmd);
        }
        out
    }

    pub fn stderr_tail(&self, lines: usize) -> String {
        file_tail(&self.stderr_path, lines)
    }

    /// Whether the box process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TestBox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- hakoden stderr (last {STDERR_TAIL_LINES} lines, {}) ---\n{}\n--- end ---",
                self.stderr_path.display(),
                self.stderr_tail(STDERR_TAIL_LINES)
            );
            if std::env::var_os("HAKODEN_TEST_KEEP").is_some() {
                let kept = self.dir.path().to_path_buf();
                eprintln!("keeping {}", kept.display());
                // Leak the directory on purpose so a developer can inspect it.
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("replacement tempdir"));
                let _ = dir.keep();
            }
        }
    }
}

fn config_toml(extensions: &[(&str, &str)], extension_toml: &[(&str, &str)], extra_toml: &str) -> String {
    // `extra_toml` comes first so that it may start with top-level keys (`holidays = [...]`),
    // which TOML only allows before the first table.
    let mut s = String::new();
    if !extra_toml.is_empty() {
        s.push_str(extra_toml);
        s.push_str("\n\n");
    }
    // A short ring timeout keeps a stuck test from ringing for the default minute.
    s.push_str("[sip]\nring_timeout = 20\n");
    for (number, password) in extensions {
        s.push_str(&format!(
            "\n[[extension]]\nnumber = \"{number}\"\nname = \"Test {number}\"\npassword = \"{password}\"\ncall_waiting = true\n"
        ));
        for (_, lines) in extension_toml.iter().filter(|(n, _)| n == number) {
            s.push_str(lines);
            s.push('\n');
        }
    }
    s
}

/// Absolute path of a scenario in `tests/sipp/`.
pub fn sipp_scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// Where distributions put SIPp's bundled G.711 A-law capture.
const G711A_PCAP_PLACES: &[&str] = &[
    "/usr/share/sip-tester/g711a.pcap",
    "/usr/share/sipp/pcap/g711a.pcap",
    "/usr/local/share/sipp/pcap/g711a.pcap",
    "/usr/share/doc/sip-tester/examples/pcap/g711a.pcap",
];

/// SIPp's bundled G.711 A-law RTP capture (236 packets of 20 ms audio, spread over 7.05 s).
pub fn g711a_pcap() -> PathBuf {
    G711A_PCAP_PLACES.iter().map(PathBuf::from).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("SIPp's g711a.pcap not found in {G711A_PCAP_PLACES:?} (dpkg -L sip-tester)")
    })
}

/// Default bound for one SIPp run; each scenario takes a few seconds at most.
pub const SIPP_TIMEOUT: Duration = Duration::from_secs(20);

/// A SIPp command line being built. Every run writes its traces into its own directory.
pub struct Sipp {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

impl Sipp {
    /// `scenario` is a file in `tests/sipp/`; `dir` receives the traces.
    pub fn new(scenario: &str, dir: &Path) -> Sipp {
        let name = scenario.trim_end_matches(".xml").to_string();
        let path = sipp_scenario(scenario);
        let dir = dir.join(format!("{name}-{}", RUN_COUNTER.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).expect("create sipp dir");
        let p = |f: &str| dir.join(f).display().to_string();
        let args = vec![
            "-sf".into(),
            path.display().to_string(),
            "-i".into(),
            "127.0.0.1".into(),
            "-mi".into(),
            "127.0.0.1".into(),
            "-nostdin".into(),
            "-m".into(),
            "1".into(),
            "-trace_msg".into(),
            "-message_file".into(),
            p("messages.log"),
            "-trace_err".into(),
            "-error_file".into(),
            p("errors.log"),
            "-trace_logs".into(),
            "-log_file".into(),
            p("logs.log"),
            "-trace_stat".into(),
            "-stf".into(),
            p("stat.csv"),
        ];
        Sipp { name, dir, args, timeout: SIPP_TIMEOUT }
    }

    /// Any extra argument(s).
    pub fn arg(mut self, a: impl Into<String>) -> Sipp {
        self.args.push(a.into());
        self
    }

    fn pair(self, flag: &str, value: impl ToString) -> Sipp {
        self.arg(flag).arg(value.to_string())
    }

    /// The box (or any peer) SIPp sends to.
    pub fn remote(self, addr: &str) -> Sipp {
        self.arg(addr)
    }

    /// SIPp's own SIP port (`-p`); registering and calling from the same port makes the
    /// box trust the call.
    pub fn local_port(self, port: u16) -> Sipp {
        self.pair("-p", port)
    }

    /// SIPp's media port (`-mp`); it also binds the next three.
    pub fn media_port(self, port: u16) -> Sipp {
        self.pair("-mp", port)
    }

    /// The user part of the request URI (`-s`, `[service]`).
    pub fn service(self, user: &str) -> Sipp {
        self.pair("-s", user)
    }

    /// Digest credentials (`-au`/`-ap`).
    pub fn auth(self, user: &str, password: &str) -> Sipp {
        self.pair("-au", user).pair("-ap", password)
    }

    /// A `[keyword]` substitution (`-key`).
    pub fn key(self, k: &str, v: impl ToString) -> Sipp {
        self.arg("-key").arg(k).arg(v.to_string())
    }

    /// Number of calls before SIPp exits (`-m`, default 1).
    pub fn calls(mut self, n: u32) -> Sipp {
        if let Some(i) = self.args.iter().position(|a| a == "-m") {
            if let Some(v) = self.args.get_mut(i + 1) {
                *v = n.to_string();
            }
        }
        self
    }

    /// Bound on the whole run: SIPp's own `-timeout` (failing) plus a kill a bit later.
    pub fn timeout(mut self, t: Duration) -> Sipp {
        self.timeout = t;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("sipp");
        cmd.args(&self.args)
            .arg("-timeout")
            .arg(format!("{}s", self.timeout.as_secs().max(1)))
            .arg("-timeout_error")
            .current_dir(&self.dir);
        cmd
    }

    /// Runs SIPp to completion (bounded).
    pub fn run(self) -> SippRun {
        self.spawn().wait()
    }

    /// Starts SIPp in the background (for a callee scenario); wait with [`SippChild::wait`].
    pub fn spawn(self) -> SippChild {
        let mut cmd = self.command();
        let out = File::create(self.dir.join("stdout.log")).expect("create sipp stdout");
        let err = File::create(self.dir.join("stderr.log")).expect("create sipp stderr");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sipp: {e}"));
        SippChild {
            child: Some(child),
            name: self.name,
            dir: self.dir,
            timeout: self.timeout,
            command: format!("sipp {}", self.args.join(" ")),
        }
    }
}

/// Distinguishes the trace directories of several runs of one scenario.
static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A SIPp process running in the background; killed on drop.
pub struct SippChild {
    child: Option<Child>,
    name: String,
    dir: PathBuf,
    timeout: Duration,
    command: String,
}

/// Grace after SIPp's own `-timeout` before the harness kills it.
const SIPP_KILL_GRACE: Duration = Duration::from_secs(5);

impl SippChild {
    /// Waits for SIPp (its own timeout plus a grace period) and collects its results.
    pub fn wait(mut self) -> SippRun {
        let status = match self.child.as_mut() {
            Some(child) => wait_bounded(child, self.timeout + SIPP_KILL_GRACE),
            None => None,
        };
        self.child = None;
        SippRun::collect(&self.name, &self.dir, status, &self.command)
    }
}

impl Drop for SippChild {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The results of one SIPp run.
#[derive(Debug)]
pub struct SippRun {
    pub name: String,
    pub command: String,
    /// SIPp's exit code: 0 all calls succeeded, 1 some failed, 97/99 other ends, None when
    /// killed.
    pub code: Option<i32>,
    /// The last row of the `-trace_stat` file, by column name.
    pub stats: HashMap<String, String>,
    pub errors: String,
    /// Lines written by the scenario's `<log>` actions.
    pub logs: String,
    pub messages: String,
    pub output: String,
}

impl SippRun {
    fn collect(name: &str, dir: &Path, status: Option<ExitStatus>, command: &str) -> SippRun {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        SippRun {
            name: name.to_string(),
            command: command.to_string(),
            code: status.and_then(|s| s.code()),
            stats: parse_stat_csv(&read("stat.csv")),
            errors: read("errors.log"),
            logs: read("logs.log"),
            messages: read("messages.log"),
            output: format!("{}{}", read("stdout.log"), read("stderr.log")),
        }
    }

    /// A cumulative counter from the stat file, e.g. `SuccessfulCall(C)`; 0 when absent.
    pub fn stat(&self, column: &str) -> u64 {
        self.stats.get(column).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    pub fn successful_calls(&self) -> u64 {
        self.stat("SuccessfulCall(C)")
    }

    pub fn failed_calls(&self) -> u64 {
        self.stat("FailedCall(C)")
    }

    /// The values of `<log message="KEY value">` lines with this key.
    pub fn logged(&self, key: &str) -> Vec<String> {
        self.logs
            .lines()
            .filter_map(|l| l.strip_prefix(key))
            .filter_map(|rest| rest.strip_prefix(' '))
            .map(|v| v.trim().to_string())
            .collect()
    }

    /// A full report for assertion messages: exit code, errors and the message trace.
    pub fn report(&self) -> String {
        // The message trace of one call is a few kB; more would drown the failure.
        const MAX_TRACE: usize = 12_000;
        let mut msgs = self.messages.clone();
        if msgs.len() > MAX_TRACE {
            let mut cut = msgs.len() - MAX_TRACE;
            while !msgs.is_char_boundary(cut) {
                cut += 1;
            }
            msgs = format!("[...]{}", &msgs[cut..]);
        }
        format!(
            "sipp {} exit {:?}; successful {} failed {}\ncommand: {}\n--- output ---\n{}\n--- errors ---\n{}\n--- logs ---\n{}\n--- messages ---\n{}",
            self.name,
            self.code,
            self.successful_calls(),
            self.failed_calls(),
            self.command,
            self.output.trim_end(),
            self.errors.trim_end(),
            self.logs.trim_end(),
            msgs
        )
    }

    /// Panics with the full report unless SIPp exited 0 with every call successful.
    pub fn assert_ok(&self, what: &str) {
        assert!(
            self.code == Some(0) && self.failed_calls() == 0,
            "{what}: SIPp run failed\n{}",
            self.report()
        );
    }
}

/// SIPp's stat file: a `;`-separated header line, then one row per dump; keeps the last.
fn parse_stat_csv(text: &str) -> HashMap<String, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let Some(last) = lines.next_back() else {
        return HashMap::new();
    };
    header
        .split(';')
        .zip(last.split(';'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// What an [`RtpSink`] received.
#[derive(Debug, Default, Clone)]
pub struct RtpCount {
    /// Datagrams that parse as RTP version 2.
    pub packets: u64,
    /// Payload bytes of those packets.
    pub payload_bytes: u64,
    /// Datagrams that are not RTP (RTCP is counted here too).
    pub other: u64,
    /// Payload types seen.
    pub payload_types: HashSet<u8>,
    /// Source ports seen (the box's RTP ports).
    pub source_ports: HashSet<u16>,
}

/// A UDP socket standing in for a phone's RTP port, counting what arrives.
pub struct RtpSink {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<RtpCount>>,
}

/// Smallest RTP header (RFC 3550 §5.1).
const RTP_HEADER: usize = 12;
/// Largest datagram we expect on loopback.
const MAX_DATAGRAM: usize = 2048;

impl RtpSink {
    pub fn bind(port: u16) -> RtpSink {
        let socket =
            UdpSocket::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("bind RTP sink on {port}: {e}"));
        socket.set_read_timeout(Some(Duration::from_millis(50))).expect("set_read_timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut count = RtpCount::default();
            let mut buf = [0u8; MAX_DATAGRAM];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let pkt = buf.get(..n).unwrap_or_default();
                let is_rtp = pkt.len() >= RTP_HEADER
                    && pkt.first().is_some_and(|b| b >> 6 == 2)
                    // RTCP packet types 200..=204 sit where RTP has marker + PT.
                    && !pkt.get(1).is_some_and(|b| (200..=204).contains(b));
                if is_rtp {
                    count.packets += 1;
                    count.payload_bytes += (n - RTP_HEADER) as u64;
                    if let Some(pt) = pkt.get(1) {
                        count.payload_types.insert(pt & 0x7f);
                    }
                    count.source_ports.insert(from.port());
                } else {
                    count.other += 1;
                }
            }
            count
        });
        RtpSink { port, stop, thread: Some(thread) }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops listening and returns the counts.
    pub fn finish(mut self) -> RtpCount {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long a test waits for a peer (SIPp, baresip) to bind its UDP port.
pub const BIND_WAIT: Duration = Duration::from_secs(5);

/// Whether something listens on UDP `port` on this machine, read from /proc so that the
/// check never takes the port itself.
/// A UDP port free on 127.0.0.1 right now, for a peer the test starts (a SIPp provider).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free port")
}

pub fn udp_port_bound(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        std::fs::read_to_string(f)
            .map(|t| {
                t.lines().skip(1).any(|l| l.split_whitespace().nth(1).is_some_and(|a| a.ends_with(&needle)))
            })
            .unwrap_or(false)
    })
}

/// Waits (bounded by [`BIND_WAIT`]) until something binds UDP `port`.
pub fn wait_udp_bound(port: u16) {
    let step = Duration::from_millis(20);
    for _ in 0..(BIND_WAIT.as_millis() / step.as_millis()) {
        if udp_port_bound(port) {
            return;
        }
        std::thread::sleep(step);
    }
    panic!("nothing bound UDP port {port} within {BIND_WAIT:?}");
}

/// Registers `ext` with SIPp from `port` (the binding the box will call), digest included.
pub fn sipp_register(tb: &TestBox, ext: (&str, &str), port: u16) -> SippRun {
    Sipp::new("register.xml", &tb.scratch("sipp"))
        .remote(&tb.sip_addr())
        .local_port(port)
        .media_port(tb.port())
        .service(ext.0)
        .auth(ext.0, ext.1)
        .run()
}

/// [`sipp_register`], failing the test when the box does not accept it.
pub fn must_register(tb: &TestBox, ext: (&str, &str), port: u16) {
    sipp_register(tb, ext, port).assert_ok(&format!("REGISTER {} from port {port}", ext.0));
}
