//! Supervision (issue 6) proven with real peers (baresip 1.0 phones): 201 (the caller) plays
//! tone A, agent 202 tone B, supervisor 900 tone C, and each phone's recording of what it heard
//! (`*-dec.wav`) shows who heard whom:
//! - listen (`995202`): the supervisor hears A and B; neither the caller nor the agent hears C;
//! - whisper (key `5`): the agent hears C, the caller still does not;
//! - barge (key `6`): both hear C;
//! - the supervisor hangs up: the call goes on, the two still hear each other.
//!
//! Also a session started through the console (`supervise listen 900 202`: the box rings 900),
//! and a refused one (203 is no supervisor: it hears the refusal, the agent's call is untouched).
//!
//! A recorded agent (`record = "always"`): a listen then barge session keeps the box's one
//! recording going, with the caller and the agent all along and the supervisor only in barge;
//! after the supervisor hangs up, the agent's `#8203#` transfers the caller to 203.
//!
//! Stretches are cut by time: the test notes how many samples each phone had heard at each step
//! (after the box reports the new mode on its console), as `threeway_peers.rs` does.
mod common;

use common::baresip::Phone;
use common::tones::{blocks, tone, write_wav, ToneDetector, BLOCK_SAMPLES};
use common::{require_tool, TestBox};
use std::path::PathBuf;
use std::time::Duration;

const CALLER: (&str, &str) = ("201", "secret-201");
const AGENT: (&str, &str) = ("202", "secret-202");
const STRANGER: (&str, &str) = ("203", "secret-203");
const SUPERVISOR: (&str, &str) = ("900", "secret-900");

/// Tones A (caller), B (agent), C (supervisor or stranger): far apart, none on another's
/// Goertzel neighbours (300 Hz away).
const TONES_HZ: [f64; 3] = [500.0, 1_100.0, 1_700.0];
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// About -12 dBFS: speech level; three summed by the mixer stay clear of clipping.
const TONE_AMPLITUDE: f64 = 8_000.0;
/// Each phone plays its tone for longer than it lives.
const SOURCE_SECONDS: f64 = 60.0;
/// Upper bound on each phone's life (`baresip -t`) in case the test's own hang-up fails.
const PHONE_SECONDS: u32 = 50;
/// Time for a phone to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a call to be established (including the box ringing the supervisor).
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(8);
/// Time for the box to report a session or a mode on its console.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a phone to see its call end.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(8);
/// How long each stretch is recorded: 30 blocks of 100 ms after trimming.
const STRETCH: Duration = Duration::from_millis(3_600);
/// Trimmed from each end of a stretch: jitter buffers, the move into the room and a mode switch
/// may smear a cut point by a few packets; 300 ms is ample.
const EDGE_BLOCKS: usize = 3;
/// Share of a stretch's blocks in which an expected tone must be found: a concealed packet may
/// spoil a block or two, not more.
const MIN_HEARD_SHARE: f64 = 0.9;
/// Share of a stretch's blocks in which a tone that must not be heard may be found: none.
const MAX_LEAK_SHARE: f64 = 0.0;

/// The blocks between two sample counts, less [`EDGE_BLOCKS`] at each end.
fn inner_blocks(from: usize, to: usize) -> std::ops::Range<usize> {
    let (lo, hi) =
        (from.div_ceil(BLOCK_SAMPLES) + EDGE_BLOCKS, (to / BLOCK_SAMPLES).saturating_sub(EDGE_BLOCKS));
    lo..hi.max(lo)
}

/// Per tone of [`TONES_HZ`]: the share of the blocks in `range` that carry it, and the count.
fn shares(samples: &[i16], range: std::ops::Range<usize>) -> ([f64; 3], usize) {
    let bs: Vec<Vec<f64>> = blocks(samples).skip(range.start).take(range.len()).collect();
    let mut out = [0.0; 3];
    for (i, hz) in TONES_HZ.iter().enumerate() {
        let found = bs.iter().filter(|x| ToneDetector::MIXED.block_has_tone(x, *hz)).count();
        out[i] = found as f64 / bs.len().max(1) as f64;
    }
    (out, bs.len())
}

struct Scene {
    tb: TestBox,
    media: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        Scene::with(&[(SUPERVISOR.0, "supervisor = true")], "")
    }

    fn with(extension_toml: &[(&str, &str)], extra_toml: &str) -> Scene {
        let tb =
            TestBox::start_with_config(&[CALLER, AGENT, STRANGER, SUPERVISOR], extension_toml, extra_toml);
        let media = tb.scratch("media");
        Scene { tb, media }
    }

    fn source(&self, hz: f64) -> PathBuf {
        let path = self.media.join(format!("tone-{hz}.wav"));
        if !path.exists() {
            write_wav(&path, &tone(hz, SOURCE_SECONDS, TONE_AMPLITUDE));
        }
        path
    }

    /// A registered phone for `ext` playing tone `hz`, with `ctrl_tcp`.
    fn phone(&self, ext: (&str, &str), hz: usize, cmds: &[&str]) -> Phone {
        let source = self.source(TONES_HZ[hz]);
        let phone = Phone::builder(&self.tb, ext, &source, PHONE_SECONDS)
            .commands(cmds)
            .ctrl_tcp(self.tb.port())
            .start();
        if cmds.is_empty() {
            assert!(
                phone.wait_for("200 OK", Some("Register:"), REGISTER_TIMEOUT),
                "{} did not register\n{}\n--- box ---\n{}",
                ext.0,
                phone.report(),
                self.tb.stderr_tail(60)
            );
        }
        phone
    }

    fn context(&self, phones: &[&Phone]) -> String {
        format!(
            "{}\n--- box ---\n{}",
            phones.iter().map(|p| p.report()).collect::<Vec<_>>().join("\n"),
            self.tb.stderr_tail(150)
        )
    }

    /// Agent and supervisor registered, then the caller calls the agent; returns
    /// (caller, agent).
    fn agent_call(&self) -> (Phone, Phone) {
        let agent = self.phone(AGENT, B, &[]);
        let caller = self.phone(CALLER, A, &[&format!("/dial {}", AGENT.0)]);
        assert!(
            caller.wait_for("established", None, ESTABLISH_TIMEOUT)
                && agent.wait_for("established", None, ESTABLISH_TIMEOUT),
            "201 to 202 was not established\n{}",
            self.context(&[&caller, &agent])
        );
        (caller, agent)
    }

    /// Waits until `show supervision` contains `needle`.
    fn wait_console(&self, needle: &str, phones: &[&Phone]) {
        let out = self.tb.console_until("show supervision", CONSOLE_TIMEOUT, |o| o.contains(needle));
        assert!(out.contains(needle), "no `{needle}` in:\n{out}\n{}", self.context(phones));
    }
}

/// Sample counts of every phone at one instant.
fn mark(phones: &[&Phone]) -> Vec<usize> {
    phones.iter().map(|p| p.heard_so_far()).collect()
}

fn finish(phones: &mut [&mut Phone]) {
    for p in phones.iter_mut() {
        // A clean quit closes the WAV files; a phone already gone is killed anyway.
        let _ = p.try_command("quit", "");
        p.wait_exit(Duration::from_secs(2));
        p.kill();
    }
}

/// Checks one stretch of one phone: the tones in `heard` in nearly every block, those in
/// `not_heard` in none.
fn check(
    what: &str,
    phone: &Phone,
    samples: &[i16],
    range: std::ops::Range<usize>,
    heard: &[usize],
    not_heard: &[usize],
    context: &dyn Fn() -> String,
) {
    let (share, n) = shares(samples, range);
    eprintln!(
        "{what}: {} heard {:?} over {n} blocks (A, B, C)",
        phone.name,
        share.map(|s| format!("{s:.2}"))
    );
    assert!(n >= 20, "{what}: {} has only {n} blocks\n{}", phone.name, context());
    for &t in heard {
        assert!(
            share[t] >= MIN_HEARD_SHARE,
            "{what}: {} heard {} Hz in {:.2} of the blocks\n{}",
            phone.name,
            TONES_HZ[t],
            share[t],
            context()
        );
    }
    for &t in not_heard {
        assert!(
            share[t] <= MAX_LEAK_SHARE,
            "{what}: {} heard {} Hz in {:.2} of the blocks\n{}",
            phone.name,
            TONES_HZ[t],
            share[t],
            context()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// With real peers.

#[test]
fn a_supervisor_listens_whispers_and_barges_and_the_recordings_show_who_heard_whom() {
    if !require_tool("baresip") {
        return;
    }
    let scene = Scene::new();
    let mut supervisor = scene.phone(SUPERVISOR, C, &[]);
    let (mut caller, mut agent) = scene.agent_call();
    let ctx = |c: &Phone, a: &Phone, s: &Phone| scene.context(&[c, a, s]);
    std::thread::sleep(STRETCH);
    let before = mark(&[&caller, &agent, &supervisor]);
    supervisor.command("dial", "995202");
    assert!(
        supervisor.wait_for("established", None, ESTABLISH_TIMEOUT),
        "the box did not answer 995202\n{}",
        ctx(&caller, &agent, &supervisor)
    );
    scene.wait_console("listen", &[&caller, &agent, &supervisor]);
    let listen = mark(&[&caller, &agent, &supervisor]);
    std::thread::sleep(STRETCH);
    supervisor.command("sndcode", "5");
    scene.wait_console("whisper", &[&caller, &agent, &supervisor]);
    let whisper = mark(&[&caller, &agent, &supervisor]);
    std::thread::sleep(STRETCH);
    supervisor.command("sndcode", "6");
    scene.wait_console("barge", &[&caller, &agent, &supervisor]);
    let barge = mark(&[&caller, &agent, &supervisor]);
    std::thread::sleep(STRETCH);
    let hang_up = mark(&[&caller, &agent, &supervisor]);
    supervisor.command("hangup", "");
    scene.wait_console("0 supervision session(s)", &[&caller, &agent, &supervisor]);
    let after = mark(&[&caller, &agent, &supervisor]);
    std::thread::sleep(STRETCH);
    let end = mark(&[&caller, &agent, &supervisor]);
    let call_went_on = !caller.log().contains("terminated") && !agent.log().contains("terminated");
    caller.command("hangup", "");
    assert!(agent.wait_for("terminated", None, HANGUP_TIMEOUT), "{}", ctx(&caller, &agent, &supervisor));
    finish(&mut [&mut caller, &mut agent, &mut supervisor]);
    let context = || ctx(&caller, &agent, &supervisor);
    assert!(call_went_on, "the agent's call ended with the supervisor's\n{}", context());

    let heard: Vec<Vec<i16>> =
        [&caller, &agent, &supervisor].iter().map(|p| p.heard_samples(&context)).collect();
    let (c, a, s) = (0, 1, 2);
    let span = |from: &[usize], to: &[usize], i: usize| inner_blocks(from[i], to[i]);
    // Before: the two hear each other only.
    check("before", &caller, &heard[c], span(&[0, 0, 0], &before, c), &[B], &[A, C], &context);
    check("before", &agent, &heard[a], span(&[0, 0, 0], &before, a), &[A], &[B, C], &context);
    // The join itself (relay to room) and the whole listen stretch, untrimmed at the start: not
    // one block of C reaches the caller before barge, nor the agent before whisper.
    let untrimmed_to = |to: &[usize], i: usize| before[i] / BLOCK_SAMPLES..inner_blocks(0, to[i]).end;
    check("join", &caller, &heard[c], untrimmed_to(&barge, c), &[], &[C], &context);
    check("join", &agent, &heard[a], untrimmed_to(&whisper, a), &[], &[C], &context);
    // Listen.
    check("listen", &caller, &heard[c], span(&listen, &whisper, c), &[B], &[C], &context);
    check("listen", &agent, &heard[a], span(&listen, &whisper, a), &[A], &[C], &context);
    check("listen", &supervisor, &heard[s], span(&listen, &whisper, s), &[A, B], &[C], &context);
    // Whisper: only the agent hears the supervisor.
    check("whisper", &caller, &heard[c], span(&whisper, &barge, c), &[B], &[C], &context);
    check("whisper", &agent, &heard[a], span(&whisper, &barge, a), &[A, C], &[], &context);
    check("whisper", &supervisor, &heard[s], span(&whisper, &barge, s), &[A, B], &[C], &context);
    // Barge: both do.
    check("barge", &caller, &heard[c], span(&barge, &hang_up, c), &[B, C], &[], &context);
    check("barge", &agent, &heard[a], span(&barge, &hang_up, a), &[A, C], &[], &context);
    check("barge", &supervisor, &heard[s], span(&barge, &hang_up, s), &[A, B], &[C], &context);
    // After the supervisor left: the call goes on as before.
    check("after", &caller, &heard[c], span(&after, &end, c), &[B], &[C], &context);
    check("after", &agent, &heard[a], span(&after, &end, a), &[A], &[C], &context);
}

#[test]
fn a_session_started_on_the_console_rings_the_supervisor_then_listens() {
    if !require_tool("baresip") {
        return;
    }
    let scene = Scene::new();
    let mut supervisor = scene.phone(SUPERVISOR, C, &[]);
    let (mut caller, mut agent) = scene.agent_call();
    let ctx = |c: &Phone, a: &Phone, s: &Phone| scene.context(&[c, a, s]);
    let answer = scene.tb.console("supervise listen 900 202");
    assert!(answer.contains("ringing 900"), "{answer}\n{}", ctx(&caller, &agent, &supervisor));
    assert!(
        supervisor.wait_for("established", None, ESTABLISH_TIMEOUT),
        "the box did not ring 900\n{}",
        ctx(&caller, &agent, &supervisor)
    );
    scene.wait_console("joined", &[&caller, &agent, &supervisor]);
    let listen = mark(&[&caller, &agent, &supervisor]);
    std::thread::sleep(STRETCH);
    let stop = mark(&[&caller, &agent, &supervisor]);
    let stopped = scene.tb.console("supervise stop 900");
    assert!(stopped.contains("stopped"), "{stopped}");
    assert!(
        supervisor.wait_for("terminated", None, HANGUP_TIMEOUT),
        "the supervisor was not hung up\n{}",
        ctx(&caller, &agent, &supervisor)
    );
    let call_went_on = !caller.log().contains("terminated") && !agent.log().contains("terminated");
    caller.command("hangup", "");
    finish(&mut [&mut caller, &mut agent, &mut supervisor]);
    let context = || ctx(&caller, &agent, &supervisor);
    assert!(call_went_on, "stopping the session ended the agent's call\n{}", context());
    let heard: Vec<Vec<i16>> =
        [&caller, &agent, &supervisor].iter().map(|p| p.heard_samples(&context)).collect();
    check("api listen", &caller, &heard[0], inner_blocks(listen[0], stop[0]), &[B], &[C], &context);
    check("api listen", &agent, &heard[1], inner_blocks(listen[1], stop[1]), &[A], &[C], &context);
    check("api listen", &supervisor, &heard[2], inner_blocks(listen[2], stop[2]), &[A, B], &[C], &context);
}

#[test]
fn a_session_started_through_the_web_api_rings_the_supervisor_then_listens() {
    use reqwest::StatusCode;
    use serde_json::json;
    if !require_tool("baresip") {
        return;
    }
    let scene = Scene::new();
    let (mut caller, mut agent) = scene.agent_call();
    let w = common::web::admin(&scene.tb);
    let listen = json!({ "mode": "listen", "supervisor": SUPERVISOR.0, "agent": AGENT.0 });
    // 202 talks, but 900's phone is not registered yet: nothing to ring.
    let (s, v) = w.call("POST", "/api/v1/supervision", Some(listen.clone()));
    assert_eq!((s, v["error"].as_str()), (StatusCode::CONFLICT, Some("supervisor_unreachable")), "{v}");
    let mut supervisor = scene.phone(SUPERVISOR, C, &[]);
    let ctx = |c: &Phone, a: &Phone, s: &Phone| scene.context(&[c, a, s]);
    let (s, v) = w.call("POST", "/api/v1/supervision", Some(listen));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}\n{}", ctx(&caller, &agent, &supervisor));
    assert_eq!(v["state"], "ringing");
    assert!(
        supervisor.wait_for("established", None, ESTABLISH_TIMEOUT),
        "the box did not ring 900\n{}",
        ctx(&caller, &agent, &supervisor)
    );
    scene.wait_console("joined", &[&caller, &agent, &supervisor]);
    let (s, v) = w.get("/api/v1/supervision");
    assert_eq!(s, StatusCode::OK);
    let session = &v["sessions"][0];
    assert_eq!(
        (session["supervisor"].as_str(), session["mode"].as_str(), session["state"].as_str()),
        (Some("900"), Some("listen"), Some("joined")),
        "{v}"
    );
    assert_eq!(session["origin"], "api", "{v}");
    let listened = mark(&[&caller, &agent, &supervisor]);
    std::thread::sleep(STRETCH);
    let stop = mark(&[&caller, &agent, &supervisor]);
    assert_eq!(w.call("DELETE", "/api/v1/supervision/900", None).0, StatusCode::NO_CONTENT);
    assert!(
        supervisor.wait_for("terminated", None, HANGUP_TIMEOUT),
        "the supervisor was not hung up\n{}",
        ctx(&caller, &agent, &supervisor)
    );
    let call_went_on = !caller.log().contains("terminated") && !agent.log().contains("terminated");
    caller.command("hangup", "");
    finish(&mut [&mut caller, &mut agent, &mut supervisor]);
    let context = || ctx(&caller, &agent, &supervisor);
    assert!(call_went_on, "stopping the session ended the agent's call\n{}", context());
    let heard: Vec<Vec<i16>> =
        [&caller, &agent, &supervisor].iter().map(|p| p.heard_samples(&context)).collect();
    let r = |i: usize| inner_blocks(listened[i], stop[i]);
    check("web listen", &caller, &heard[0], r(0), &[B], &[C], &context);
    check("web listen", &agent, &heard[1], r(1), &[A], &[C], &context);
    check("web listen", &supervisor, &heard[2], r(2), &[A, B], &[C], &context);
    let (_, v) = w.get("/api/v1/audit?limit=20");
    let started = v["entries"]
        .as_array()
        .is_some_and(|e| e.iter().any(|x| x["action"] == "supervision.start" && x["target"] == "202"));
    assert!(started, "{v}");
}

#[test]
fn a_refused_supervisor_hears_why_and_the_agents_call_is_untouched() {
    if !require_tool("baresip") {
        return;
    }
    let scene = Scene::new();
    let mut stranger = scene.phone(STRANGER, C, &[]);
    let (mut caller, mut agent) = scene.agent_call();
    let ctx = |c: &Phone, a: &Phone, s: &Phone| scene.context(&[c, a, s]);
    let before = mark(&[&caller, &agent]);
    stranger.command("dial", "995202");
    assert!(
        stranger.wait_for("terminated", None, ESTABLISH_TIMEOUT + HANGUP_TIMEOUT),
        "203's refused call did not end\n{}",
        ctx(&caller, &agent, &stranger)
    );
    let refused = stranger.log();
    std::thread::sleep(STRETCH);
    let end = mark(&[&caller, &agent]);
    let call_went_on = !caller.log().contains("terminated") && !agent.log().contains("terminated");
    caller.command("hangup", "");
    finish(&mut [&mut caller, &mut agent, &mut stranger]);
    let context = || ctx(&caller, &agent, &stranger);
    assert!(refused.contains("established"), "the box answers to play the refusal\n{}", context());
    assert!(call_went_on, "the refusal disturbed the agent's call\n{}", context());
    let log = scene.tb.console("log tail 300");
    assert!(log.contains("203 may not supervise 202: not a supervisor"), "{log}");
    let heard: Vec<Vec<i16>> = [&caller, &agent].iter().map(|p| p.heard_samples(&context)).collect();
    let untouched = |i: usize| inner_blocks(before[i], end[i]);
    check("refused", &caller, &heard[0], untouched(0), &[B], &[A, C], &context);
    check("refused", &agent, &heard[1], untouched(1), &[A], &[B, C], &context);
}

// ---------------------------------------------------------------------------------------------
// A recorded call through a session, then a transfer.

/// Time between two keys of `#8203#` (as `transfer_peers.rs` sends them).
const KEY_GAP: Duration = Duration::from_millis(100);
/// Time the box gets to close the recording once the agent has left the call.
const RECORDING_TIMEOUT: Duration = Duration::from_secs(5);
/// Trimmed from each end of a stretch of the box's recording: besides [`EDGE_BLOCKS`]' reasons,
/// the recording starts at the box's answer and the caller's file at its own, a few packets
/// apart.
const RECORDING_EDGE_BLOCKS: usize = 5;

/// The box's recordings: every `*.wav` under `DATA/recordings/<day>/`.
fn box_recordings(tb: &TestBox) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(days) = std::fs::read_dir(tb.data_dir().join("recordings")) else { return found };
    for day in days.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()) {
        let Ok(files) = std::fs::read_dir(&day) else { continue };
        found.extend(
            files
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wav")),
        );
    }
    found
}

/// Blocks of the box's recording between two of the caller's sample counts (the recording
/// runs on the caller's clock, give or take [`RECORDING_EDGE_BLOCKS`]).
fn recording_blocks(from: usize, to: usize) -> std::ops::Range<usize> {
    let extra = RECORDING_EDGE_BLOCKS - EDGE_BLOCKS;
    let inner = inner_blocks(from, to);
    (inner.start + extra)..inner.end.saturating_sub(extra).max(inner.start + extra)
}

#[test]
fn a_recorded_call_stays_recorded_through_a_barge_and_then_transfers_with_hash_8() {
    if !require_tool("baresip") {
        return;
    }
    let scene = Scene::with(
        &[(SUPERVISOR.0, "supervisor = true"), (AGENT.0, "record = \"always\"")],
        // The announcement would replace the agent's tone in the caller's ear for a while.
        "[media]\nannounce_recording = false",
    );
    let mut supervisor = scene.phone(SUPERVISOR, C, &[]);
    let mut target = scene.phone(STRANGER, C, &[]);
    let (mut caller, mut agent) = scene.agent_call();
    let all = |c: &Phone, a: &Phone, s: &Phone, t: &Phone| scene.context(&[c, a, s, t]);
    std::thread::sleep(STRETCH);
    let before = mark(&[&caller, &agent]);
    supervisor.command("dial", "995202");
    assert!(
        supervisor.wait_for("established", None, ESTABLISH_TIMEOUT),
        "the box did not answer 995202\n{}",
        all(&caller, &agent, &supervisor, &target)
    );
    scene.wait_console("listen", &[&caller, &agent, &supervisor]);
    let listen = mark(&[&caller]);
    std::thread::sleep(STRETCH);
    supervisor.command("sndcode", "6");
    scene.wait_console("barge", &[&caller, &agent, &supervisor]);
    let barge = mark(&[&caller]);
    std::thread::sleep(STRETCH);
    let hang_up = mark(&[&caller]);
    supervisor.command("hangup", "");
    scene.wait_console("0 supervision session(s)", &[&caller, &agent, &supervisor]);
    let after = mark(&[&caller]);
    std::thread::sleep(STRETCH);
    let transfer = mark(&[&caller]);
    let recording_went_on = !scene.tb.stderr_tail(400).contains("closed,");
    // The agent hands the caller to 203 with the keypad: the call is a plain call again.
    for k in "#8203#".chars() {
        agent.command("sndcode", &k.to_string());
        std::thread::sleep(KEY_GAP);
    }
    assert!(
        target.wait_for("established", None, ESTABLISH_TIMEOUT),
        "#8203# did not ring 203 after the session\n{}",
        all(&caller, &agent, &supervisor, &target)
    );
    assert!(
        agent.wait_for("terminated", None, HANGUP_TIMEOUT),
        "the agent was not released by #8\n{}",
        all(&caller, &agent, &supervisor, &target)
    );
    let transferred = mark(&[&caller]);
    std::thread::sleep(STRETCH);
    let end = mark(&[&caller]);
    let caller_went_on = !caller.log().contains("terminated");
    caller.command("hangup", "");
    let closed = scene
        .tb
        .console_until("log tail 400", RECORDING_TIMEOUT, |o| o.contains("bytes") && o.contains("closed,"));
    finish(&mut [&mut caller, &mut agent, &mut supervisor, &mut target]);
    let context = || all(&caller, &agent, &supervisor, &target);
    assert!(recording_went_on, "the recording was closed during the session\n{}", context());
    assert!(caller_went_on, "the caller was dropped by the transfer\n{}", context());
    assert!(closed.contains("closed,"), "the box did not close the recording:\n{closed}\n{}", context());

    // The caller now talks to 203 (tone C); the agent's tone is gone.
    let heard = caller.heard_samples(&context);
    check("transferred", &caller, &heard, inner_blocks(transferred[0], end[0]), &[C], &[B], &context);

    let files = box_recordings(&scene.tb);
    assert_eq!(files.len(), 1, "one recording for the whole call: {files:?}\n{}", context());
    let (_, recorded) = common::tones::read_audio(&files[0])
        .unwrap_or_else(|| panic!("{} is not a WAV\n{}", files[0].display(), context()));
    let recorded_ms = recorded.len() / 8;
    let call_ms = transfer[0] / 8;
    eprintln!(
        "recording {}: {recorded_ms} ms; the caller talked to the agent for {call_ms} ms",
        files[0].display()
    );
    assert!(
        recorded_ms + 1_000 >= call_ms,
        "the recording ({recorded_ms} ms) is shorter than the agent's call ({call_ms} ms): it stopped\n{}",
        context()
    );
    let r = |what: &str, from: usize, to: usize, heard: &[usize], not_heard: &[usize]| {
        check(what, &caller, &recorded, recording_blocks(from, to), heard, not_heard, &context)
    };
    // Caller and agent all along; the listening supervisor is not in it, the barging one is.
    r("recording before", 0, before[0], &[A, B], &[C]);
    r("recording listen", listen[0], barge[0], &[A, B], &[C]);
    r("recording barge", barge[0], hang_up[0], &[A, B, C], &[]);
    r("recording after", after[0], transfer[0], &[A, B], &[C]);
    r("recording whole", 0, transfer[0], &[A, B], &[]);
}
