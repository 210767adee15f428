//! A baresip 1.0 softphone registered with a [`TestBox`]: its own config directory, audio from
//! a WAV file through `aufile`, what it hears dumped by the `sndfile` filter (`*-dec.wav`), and
//! optionally commands through `ctrl_tcp`. No sound card is involved.
#![allow(dead_code)] // each test crate uses a different part of the harness

use super::tones::{read_audio, SAMPLE_RATE};
use super::{wait_bounded, TestBox};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where distributions install baresip's modules.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/baresip/modules",
    "/usr/lib/x86_64-linux-gnu/baresip/modules",
    "/usr/lib/aarch64-linux-gnu/baresip/modules",
    "/usr/local/lib/baresip/modules",
];
/// Polling step while waiting for a line in the phone's output.
const LOG_POLL_STEP: Duration = Duration::from_millis(50);
/// baresip reads a `ctrl_tcp` command some time after it arrives; closing the connection
/// before that loses it.
const CTRL_READ_GRACE: Duration = Duration::from_millis(100);
/// A killed process is reaped within milliseconds; this bounds one stuck in the kernel.
const KILL_WAIT: Duration = Duration::from_secs(2);

fn module_dir() -> PathBuf {
    MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("g711.so").is_file())
        .unwrap_or_else(|| panic!("baresip modules (g711.so) not found in {MODULE_DIRS:?}"))
}

/// How to start a [`Phone`]; made by [`Phone::builder`].
pub struct PhoneBuilder<'a> {
    tb: &'a TestBox,
    ext: (&'a str, &'a str),
    source: &'a Path,
    seconds: u32,
    cmds: Vec<String>,
    record: bool,
    ctrl: Option<u16>,
    extra: String,
    manual: bool,
}

impl PhoneBuilder<'_> {
    /// The phone rings on incoming calls instead of answering them (`answermode=manual`).
    pub fn answer_manually(mut self) -> Self {
        self.manual = true;
        self
    }

    /// Commands baresip runs at start (`-e`), e.g. `/dial 202`.
    pub fn commands(mut self, cmds: &[&str]) -> Self {
        self.cmds = cmds.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Leaves out the `sndfile` filter: the phone records nothing.
    pub fn without_recording(mut self) -> Self {
        self.record = false;
        self
    }

    /// Loads `ctrl_tcp` listening on 127.0.0.1:`port`.
    pub fn ctrl_tcp(mut self, port: u16) -> Self {
        self.ctrl = Some(port);
        self
    }

    /// More config lines, each ending in a newline, appended last.
    pub fn extra_config(mut self, lines: &str) -> Self {
        self.extra.push_str(lines);
        self
    }

    pub fn start(self) -> Phone {
        let PhoneBuilder { tb, ext, source, seconds, cmds, record, ctrl, extra, manual } = self;
        let name = ext.0.to_string();
        let dir = tb.scratch(&format!("baresip-{name}"));
        let (rtp_lo, rtp_hi) = (tb.port(), tb.port() + 3);
        let mut config = format!(
            "poll_method epoll\n\
             sip_listen 127.0.0.1:{sip}\n\
             net_interface 127.0.0.1\n\
             call_local_timeout 20\n\
             call_max_calls 2\n\
             audio_player aubridge,{name}-player\n\
             audio_alert aubridge,{name}-alert\n\
             audio_source aufile,{source}\n\
             audio_level no\n\
             rtp_ports {rtp_lo}-{rtp_hi}\n\
             rtcp_mux no\n\
             jitter_buffer_delay 1-10\n\
             module_path {modules}\n\
             module g711.so\n\
             module aufile.so\n\
             module aubridge.so\n",
            sip = tb.port(),
            source = source.display(),
            modules = module_dir().display(),
        );
        if record {
            let rec = dir.join("rec");
            std::fs::create_dir_all(&rec).expect("mkdir rec");
            config.push_str(&format!("module sndfile.so\nsnd_path {}\n", rec.display()));
        }
        config.push_str("module_app account.so\nmodule_app menu.so\n");
        if let Some(port) = ctrl {
            config.push_str(&format!("module_app ctrl_tcp.so\nctrl_tcp_listen 127.0.0.1:{port}\n"));
        }
        config.push_str(&extra);
        std::fs::write(dir.join("config"), config).expect("write config");
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@127.0.0.1:{box_port}>;auth_pass={pass};answermode={mode}\n",
                user = ext.0,
                pass = ext.1,
                box_port = tb.sip_port(),
                mode = if manual { "manual" } else { "auto" }
            ),
        )
        .expect("write accounts");
        let out = File::create(dir.join("stdout.log")).expect("stdout file");
        let err = File::create(dir.join("stderr.log")).expect("stderr file");
        let mut cmd = Command::new("baresip");
        cmd.arg("-f").arg(&dir).arg("-t").arg(seconds.to_string());
        for c in &cmds {
            cmd.arg("-e").arg(c);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start baresip: {e}"));
        Phone { name, child: Some(child), dir, ctrl }
    }
}

/// One baresip instance, named after its extension, killed on drop.
pub struct Phone {
    pub name: String,
    child: Option<Child>,
    dir: PathBuf,
    /// The `ctrl_tcp` port the phone listens on, if any.
    ctrl: Option<u16>,
}

impl Phone {
    /// A phone for `ext` playing `source`, quitting after `seconds` (`-t`). It auto-answers
    /// calls and records what it hears unless told otherwise.
    pub fn builder<'a>(
        tb: &'a TestBox,
        ext: (&'a str, &'a str),
        source: &'a Path,
        seconds: u32,
    ) -> PhoneBuilder<'a> {
        PhoneBuilder {
            tb,
            ext,
            source,
            seconds,
            cmds: Vec::new(),
            record: true,
            ctrl: None,
            extra: String::new(),
            manual: false,
        }
    }

    /// Starts a recording phone for `ext`, playing `source`, running `cmds` at start, quitting
    /// after `seconds`.
    pub fn start(tb: &TestBox, ext: (&str, &str), source: &Path, cmds: &[&str], seconds: u32) -> Phone {
        Phone::builder(tb, ext, source, seconds).commands(cmds).start()
    }

    /// The `ctrl_tcp` port, when the phone was started with one.
    pub fn ctrl_port(&self) -> Option<u16> {
        self.ctrl
    }

    /// Sends a command to the phone's `ctrl_tcp` (a netstring holding JSON) without waiting
    /// for the answer.
    pub fn command(&self, command: &str, params: &str) {
        if let Err(e) = self.try_command(command, params) {
            panic!("{}: ctrl_tcp on {:?}: {e}\n{}", self.name, self.ctrl, self.report());
        }
    }

    /// [`Phone::command`] for a phone that may have quit already.
    pub fn try_command(&self, command: &str, params: &str) -> std::io::Result<()> {
        use std::io::Write;
        let port = self.ctrl.ok_or_else(|| std::io::Error::other("started without ctrl_tcp"))?;
        let json = format!("{{\"command\":\"{command}\",\"params\":\"{params}\",\"token\":\"t\"}}");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.write_all(format!("{}:{json},", json.len()).as_bytes())?;
        std::thread::sleep(CTRL_READ_GRACE);
        Ok(())
    }

    /// The phone's stdout and stderr so far.
    pub fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    /// Polls the phone's output for `needle` for at most `timeout`; gives up early when the
    /// output shows `failure` (baresip prints `Register: <error>` when it gives up).
    pub fn wait_for(&self, needle: &str, failure: Option<&str>, timeout: Duration) -> bool {
        for _ in 0..(timeout.as_millis() / LOG_POLL_STEP.as_millis()) {
            let log = self.log();
            if log.contains(needle) {
                return true;
            }
            if failure.is_some_and(|f| log.contains(f)) {
                return false;
            }
            std::thread::sleep(LOG_POLL_STEP);
        }
        false
    }

    /// Waits at most `timeout` for the phone to quit on its own (it is killed if it does not).
    pub fn wait_exit(&mut self, timeout: Duration) {
        if let Some(child) = self.child.as_mut() {
            if wait_bounded(child, timeout).is_some() {
                self.child = None;
            }
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = wait_bounded(&mut child, KILL_WAIT);
        }
    }

    /// The decoded (received) audio the `sndfile` filter dumps.
    pub fn heard(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.join("rec"))
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
    }

    /// How many samples the phone has heard so far (0 before its first call).
    pub fn heard_so_far(&self) -> usize {
        self.heard().and_then(|p| read_audio(&p)).map(|(_, s)| s.len()).unwrap_or(0)
    }

    /// What the phone heard, at 8 kHz; panics with `context` when it heard nothing usable.
    pub fn heard_samples(&self, context: &dyn Fn() -> String) -> Vec<i16> {
        let path = self.heard().unwrap_or_else(|| panic!("{} recorded nothing\n{}", self.name, context()));
        let (format, samples) =
            read_audio(&path).unwrap_or_else(|| panic!("{} is not a WAV\n{}", path.display(), context()));
        assert_eq!(format.sample_rate_hz, SAMPLE_RATE, "{}: {format:?}", path.display());
        samples
    }

    pub fn report(&self) -> String {
        format!("--- baresip {} ---\n{}", self.name, self.log())
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.kill();
    }
}
