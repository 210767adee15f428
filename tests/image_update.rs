//! Signed updates of the appliance image under QEMU (issue 8): over the forwarded HTTPS port
//! the web admin logs in, refuses a badly signed bundle and a non-bundle, takes a good update
//! to slot b which commits after its health check, then takes a broken update (a firmware
//! whose health check fails, `scripts/make-bundle.sh --fail-health-check`) which rolls back to
//! b by itself; then the power-cut test: QEMU is killed at seeded random moments while SIPp
//! calls write CDRs, and after every boot the store opens with every acknowledged call.
//!
//! Gated like `image_qemu.rs` (qemu-system-aarch64 installed, `HAKODEN_SKIP_IMAGE` not 1; see
//! there). Needs the staged rootfs of `scripts/build-image.sh` (the bundles are made from it).
// A driver test: it waits on a real emulator and measures wall time.
#![allow(clippy::disallowed_methods)]
mod common;

use common::qemu::{
    image, private_disk, repo, skip_requested, Guest, BOOT_TIMEOUT, QEMU_HOST_ALIAS, RESET_TIMEOUT,
    SIPP_TIMEOUT,
};
use common::web::{client_trusting, Web, GOOD, GOOD2};
use common::{require_tool, PortBlock, Sipp};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Upload, slot write and read-back, reboot, trial boot, health check, commit, under TCG.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(240);
/// Power cuts per run (`HAKODEN_POWER_CUT_ROUNDS` overrides): each is a boot (~30-60 s
/// emulated); three keep the step within CI time.
const POWER_CUT_ROUNDS: u64 = 3;
/// Calls SIPp places per round (each one CDR once it ends).
const CALLS_PER_ROUND: u32 = 4;
/// Calls at once: one, because the callee is one phone and a second call to it is busy.
const CONCURRENT_CALLS: u32 = 1;

/// `scripts/make-bundle.sh [flags] qemu-virt-aarch64 OUT`.
fn make_bundle(out: &Path, flags: &[&str]) -> PathBuf {
    let run = Command::new(repo().join("scripts/make-bundle.sh"))
        .args(flags)
        .arg("qemu-virt-aarch64")
        .arg(out)
        .output()
        .expect("run make-bundle.sh");
    assert!(
        run.status.success(),
        "make-bundle.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    out.to_path_buf()
}

fn upload(web: &Web, ctype: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = web
        .client
        .post(format!("{}/api/v1/firmware", web.base))
        .timeout(Duration::from_secs(120))
        .header("content-type", ctype)
        .body(body);
    if let Some(c) = &web.cookie {
        req = req.header("cookie", format!("hakoden_session={c}"));
    }
    if let Some(t) = &web.csrf {
        req = req.header("x-csrf-token", t);
    }
    let r = req.send().expect("upload");
    let status = r.status();
    (status, r.json().unwrap_or(Value::Null))
}

/// Logs in as admin with `password` (after a reboot the sessions are gone).
fn login(base: &str, pem: &str, password: &str) -> Web {
    let mut w =
        Web { base: base.to_string(), client: client_trusting(pem.as_bytes()), cookie: None, csrf: None };
    let (s, v) = w.login("admin", password);
    assert_eq!(s, StatusCode::OK, "login: {v}");
    w
}

/// A tiny seeded generator (splitmix64): the power-cut moments repeat for a seed.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn updates_commit_or_roll_back_and_power_cuts_lose_no_acknowledged_call() {
    if skip_requested() || !require_tool("qemu-system-aarch64") || !require_tool("sipp") {
        return;
    }
    let image = image();
    if !repo().join("target/images/work-qemu-virt-aarch64/rootfs").is_dir() {
        eprintln!("SKIPPED: no staged rootfs (run scripts/build-image.sh qemu-virt-aarch64)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let good = make_bundle(&dir.path().join("good.bundle"), &["--version-suffix", "-next"]);
    let broken = make_bundle(
        &dir.path().join("broken.bundle"),
        &["--fail-health-check", "--version-suffix", "-broken"],
    );
    let disk = private_disk(&image, dir.path());

    let ports = PortBlock::reserve();
    let sip = ports.sip_port();
    let (rtp_lo, _) = ports.rtp_range();
    let rtp = (rtp_lo, rtp_lo + 9);
    let tcp = (ports.port(), ports.port());
    let base = format!("https://127.0.0.1:{}", tcp.0);
    let started = Instant::now();
    let mut guest = Guest::boot(&disk, dir.path(), sip, rtp, tcp);
    guest.expect(0, BOOT_TIMEOUT, "stage-1 slot line", |l| l.contains("stage1: slot=a source=committed"));
    guest.ready_after(0, BOOT_TIMEOUT);
    let (_, line) =
        guest.expect(0, BOOT_TIMEOUT, "admin password", |l| l.contains("web admin user `admin`, password "));
    let initial = line
        .split("password ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let pem = guest.web_certificate();

    // The web page logs in over the forwarded HTTPS port (first login changes the password).
    let mut web =
        Web { base: base.clone(), client: client_trusting(pem.as_bytes()), cookie: None, csrf: None };
    web.first_login("admin", &initial, GOOD);
    let (s, fw) = web.get("/api/v1/firmware");
    assert_eq!(s, StatusCode::OK, "{fw}");
    assert_eq!((fw["running"].as_str(), fw["committed"].as_str()), (Some("a"), Some("a")), "{fw}");

    // Refusals before a byte is written: not a bundle (415), a bad signature (400).
    let (s, v) = upload(&web, "application/octet-stream", b"PK\x03\x04 not a bundle".to_vec());
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{v}");
    let mut forged = std::fs::read(&good).expect("bundle");
    let sig_at = 12 + u32::from_be_bytes([forged[8], forged[9], forged[10], forged[11]]) as usize;
    forged[sig_at] ^= 0xff;
    let (s, v) = upload(&web, "application/octet-stream", forged);
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"], "bad_signature", "{v}");
    assert!(v["message"].as_str().unwrap_or_default().contains("signed"), "{v}");

    // A good update: slot b, trial boot, health check, commit.
    let from = guest.serial.len();
    let t = Instant::now();
    let (s, v) = upload(&web, "application/octet-stream", std::fs::read(&good).expect("bundle"));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["slot"], "b", "{v}");
    let (at, _) = guest.expect(from, UPDATE_TIMEOUT, "trial boot of b", |l| {
        l.contains("stage1: slot=b source=try_slot trial=1")
    });
    let (at, _) = guest.expect(at, UPDATE_TIMEOUT, "the commit", |l| l.contains("update: committed"));
    let update_s = t.elapsed().as_secs_f64();
    eprintln!("MEASURE update_upload_to_commit_s={update_s:.1}");
    let web = login(&base, &pem, GOOD);
    let (_, fw) = web.get("/api/v1/firmware");
    assert_eq!((fw["running"].as_str(), fw["committed"].as_str()), (Some("b"), Some("b")), "{fw}");
    assert_eq!(fw["last_update"]["result"], "committed", "{fw}");
    assert!(fw["last_update"]["version"].as_str().unwrap_or_default().ends_with("-next"), "{fw}");
    let _ = at;

    // A broken update: written to a, fails its health check, the box is back on b.
    let from = guest.serial.len();
    let t = Instant::now();
    let (s, v) = upload(&web, "application/octet-stream", std::fs::read(&broken).expect("bundle"));
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (at, _) = guest.expect(from, UPDATE_TIMEOUT, "trial boot of a", |l| {
        l.contains("stage1: slot=a source=try_slot trial=1")
    });
    let (at, _) =
        guest.expect(at, UPDATE_TIMEOUT, "the failed check", |l| l.contains("update: health check failed"));
    let (at, _) =
        guest.expect(at, RESET_TIMEOUT, "rollback to b", |l| l.contains("stage1: slot=b source=committed"));
    guest.ready_after(at, RESET_TIMEOUT);
    let rollback_s = t.elapsed().as_secs_f64();
    eprintln!("MEASURE broken_update_upload_to_rollback_ready_s={rollback_s:.1}");
    let web = login(&base, &pem, GOOD);
    let (_, fw) = web.get("/api/v1/firmware");
    assert_eq!((fw["running"].as_str(), fw["committed"].as_str()), (Some("b"), Some("b")), "{fw}");
    assert_eq!(fw["last_update"]["result"], "health_check_failed", "{fw}");
    let _ = GOOD2;

    power_cuts(guest, &disk, dir.path(), sip, rtp, tcp, &ports);
    eprintln!("MEASURE image_update_total_s={:.1}", started.elapsed().as_secs_f64());
}

/// The power-cut rounds: calls complete (acknowledged: SIPp saw the BYE answered), QEMU is
/// killed at a seeded random moment of the next batch, the box boots, and `show cdr` must hold
/// at least every acknowledged call.
fn power_cuts(
    mut guest: Guest,
    disk: &Path,
    dir: &Path,
    sip: u16,
    rtp: (u16, u16),
    tcp: (u16, u16),
    ports: &PortBlock,
) {
    let mut seed: u64 =
        std::env::var("HAKODEN_POWER_CUT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    eprintln!("power-cut seed {seed} (HAKODEN_POWER_CUT_SEED repeats it)");
    let sipdir = dir.join("sipp-pc");
    let remote = format!("127.0.0.1:{sip}");
    let password = |g: &Guest, ext: &str| {
        let (_, line) = g.expect(0, RESET_TIMEOUT, "demo password", |l| {
            l.trim_start().starts_with(&format!("extension {ext} "))
        });
        line.split_whitespace().last().unwrap_or_default().to_string()
    };
    let (callee_ext, caller_ext) = ("202", "201");
    let callee_pw = password(&guest, callee_ext);
    let caller_pw = password(&guest, caller_ext);
    let mut acknowledged = 0u32;
    let rounds: u64 = std::env::var("HAKODEN_POWER_CUT_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(POWER_CUT_ROUNDS);
    // One set of ports for every round (the previous round's SIPp processes are gone): the
    // port block holds only 24 endpoints.
    let (callee_port, caller_port, more_port) = (ports.port(), ports.port(), ports.port());
    let (register_media, uas_media, uas_rtp, caller_media, more_media) =
        (ports.port(), ports.port(), ports.port(), ports.port(), ports.port());
    for round in 1..=rounds {
        // Acknowledged calls: a callee answers, the caller runs complete calls.
        let register = |ext: &str, pw: &str, port: u16| {
            Sipp::new("register.xml", &sipdir)
                .remote(&remote)
                .local_port(port)
                .media_port(register_media)
                .service(ext)
                .auth(ext, pw)
                .timeout(SIPP_TIMEOUT)
                .run()
                .assert_ok("REGISTER before the power-cut round");
        };
        register(callee_ext, &callee_pw, callee_port);
        // The answer's SDP names QEMU's alias for this host (see image_qemu.rs); nothing
        // needs to listen on its RTP port for a CDR.
        let uas = Sipp::new("uas_answer_nat.xml", &sipdir)
            .remote(&remote)
            .local_port(callee_port)
            .media_port(uas_media)
            .key("rtpport", uas_rtp)
            .key("rtpaddr", QEMU_HOST_ALIAS)
            .calls(CALLS_PER_ROUND * 2)
            .timeout(SIPP_TIMEOUT * 3)
            .spawn();
        common::wait_udp_bound(callee_port);
        let caller = Sipp::new("uac_call.xml", &sipdir)
            .remote(&remote)
            .local_port(caller_port)
            .media_port(caller_media)
            .service(callee_ext)
            .key("caller", caller_ext)
            .auth(caller_ext, &caller_pw)
            .key("pcap", common::g711a_pcap().display())
            .calls(CALLS_PER_ROUND)
            .arg("-l")
            .arg(CONCURRENT_CALLS.to_string())
            .timeout(SIPP_TIMEOUT * 3)
            .run();
        caller.assert_ok(&format!("round {round}: {CALLS_PER_ROUND} acknowledged calls"));
        acknowledged += CALLS_PER_ROUND;
        // More calls, and the plug is pulled somewhere in them (0.5-6 s in).
        let more = Sipp::new("uac_call.xml", &sipdir)
            .remote(&remote)
            .local_port(more_port)
            .media_port(more_media)
            .service(callee_ext)
            .key("caller", caller_ext)
            .auth(caller_ext, &caller_pw)
            .key("pcap", common::g711a_pcap().display())
            .calls(CALLS_PER_ROUND)
            .arg("-l")
            .arg(CONCURRENT_CALLS.to_string())
            .timeout(SIPP_TIMEOUT)
            .spawn();
        let cut_after = Duration::from_millis(500 + next(&mut seed) % 5_500);
        std::thread::sleep(cut_after);
        eprintln!("round {round}: power cut {:.1} s into the unacknowledged calls", cut_after.as_secs_f64());
        guest.power_cut();
        // SIPp's children are killed on drop: their calls died with the box.
        drop(more);
        drop(uas);
        guest = Guest::boot(disk, dir, sip, rtp, tcp);
        let at = guest.ready_after(0, BOOT_TIMEOUT);
        // The store opened (the ready line comes after it); every acknowledged call is there.
        let count = guest
            .shell_value("CDRS", "hakoden console --data /data/hakoden show cdr 500 | grep -c '^ *[0-9]'");
        let count: u32 = count.trim().parse().unwrap_or(0);
        eprintln!("round {round}: {count} CDR lines after the boot, {acknowledged} acknowledged calls");
        assert!(
            count >= acknowledged,
            "round {round}: {count} CDRs < {acknowledged} acknowledged calls\n{}",
            guest.serial.tail(60)
        );
        let _ = at;
    }
    eprintln!("MEASURE power_cut_rounds={rounds} acknowledged_calls={acknowledged}");
}
