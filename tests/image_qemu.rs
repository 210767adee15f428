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

use common::qemu::{
    image, skip_requested, Guest, BOOT_TIMEOUT, MIN_RELAYED_PACKETS, QEMU_HOST_ALIAS, RESET_TIMEOUT,
    RTP_FORWARDS, SHELL_TIMEOUT, SIPP_TIMEOUT,
};
use common::{g711a_pcap, require_tool, wait_udp_bound, PortBlock, RtpSink, Sipp};
use std::process::Command;
use std::time::Instant;

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
