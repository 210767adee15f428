//! The technician console on the booted appliance image (issue 8): SSH with a key lands in
//! `hakoden console` and `status` answers; `network dhcp` takes QEMU's DHCP lease (10.0.2.15)
//! and `network` shows it; `hostname`, a static address and NTP are applied to the guest;
//! `options-test` against the box itself gets 200.
//!
//! Gated like tests/image_qemu.rs: runs when `qemu-system-aarch64` and `ssh` are installed and
//! `HAKODEN_SKIP_IMAGE` is not 1; the image is `HAKODEN_IMAGE`, else
//! `target/images/hakoden-qemu-virt-aarch64.img` (built by `scripts/build-image.sh`; this test
//! does not build it). The serial console is the debug root shell (`--debug`), used to add the
//! first key and to look at the interface from inside the guest.
// A driver test: it waits on a real emulator.
#![allow(clippy::disallowed_methods)]
mod common;

use common::qemu::{repo, Guest};
use common::{require_tool, PortBlock};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// First boot under TCG emulation on shared cores: kernel, stage 1, store, host key.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// A shell command on the serial console answers within this.
const SHELL_TIMEOUT: Duration = Duration::from_secs(30);
/// dropbear makes its host key at first boot and then listens; an SSH login answers within.
const SSH_TIMEOUT: Duration = Duration::from_secs(90);
/// One SSH command (login and the console's answer) under emulation.
const SSH_COMMAND_TIMEOUT: Duration = Duration::from_secs(40);
/// A DHCP lease from QEMU's built-in server.
const DHCP_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between SSH connection attempts while dropbear starts.
const SSH_RETRY: Duration = Duration::from_secs(2);
/// How far ahead of the host the fake NTP server is.
const NTP_AHEAD_S: u64 = 3600;
/// Pause between looks at the guest's interface while the lease comes.
const POLL: Duration = Duration::from_millis(500);

/// Runs `cmd` in the guest's serial root shell; its output (stderr too) joined on one line.
fn shell(guest: &mut Guest, key: &str, cmd: &str) -> String {
    guest.shell_value(key, &format!("{cmd} 2>&1 | tr '\\n' ' '"))
}

/// `ssh admin@127.0.0.1 -p PORT COMMAND` with the test's key: `(exit code, stdout+stderr)`.
fn ssh(dir: &Path, key: &Path, port: u16, command: &str) -> (Option<i32>, String) {
    let mut c = Command::new("ssh");
    c.arg("-i").arg(key).args(["-p", &port.to_string()]).args([
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=20",
        "-o",
        "LogLevel=ERROR",
        "admin@127.0.0.1",
        command,
    ]);
    let out = common::run_bounded(&mut c, dir, "ssh", SSH_COMMAND_TIMEOUT);
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

/// A UDP SNTP server on 127.0.0.1 whose clock is `ahead_s` ahead of this host's; returns its
/// port. It answers until the test process ends.
fn fake_ntp_server(ahead_s: u64) -> u16 {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
    let port = sock.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if n < 48 {
                continue;
            }
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let secs = (now.as_secs() + ahead_s + 2_208_988_800) as u32;
            let frac = ((u64::from(now.subsec_nanos()) << 32) / 1_000_000_000) as u32;
            let mut r = [0u8; 48];
            r[0] = (4 << 3) | 4;
            r[1] = 1;
            r[24..32].copy_from_slice(&buf[40..48]);
            for at in [32, 40] {
                r[at..at + 4].copy_from_slice(&secs.to_be_bytes());
                r[at + 4..at + 8].copy_from_slice(&frac.to_be_bytes());
            }
            let _ = sock.send_to(&r, from);
        }
    });
    port
}

#[test]
fn ssh_lands_in_the_console_and_network_settings_reach_the_guest() {
    if std::env::var("HAKODEN_SKIP_IMAGE").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: HAKODEN_SKIP_IMAGE=1 (scripts/test.sh runs this test in its image step)");
        return;
    }
    if !require_tool("qemu-system-aarch64") || !require_tool("ssh") || !require_tool("ssh-keygen") {
        return;
    }
    let image = std::env::var_os("HAKODEN_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/images/hakoden-qemu-virt-aarch64.img"));
    if !image.is_file() {
        eprintln!("SKIPPED: no image at {} (scripts/build-image.sh qemu-virt-aarch64)", image.display());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.img");
    let copied = Command::new("cp").arg("--sparse=always").arg(&image).arg(&disk).status();
    assert!(copied.is_ok_and(|s| s.success()), "cannot copy {}", image.display());
    let key = dir.path().join("id_ed25519");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "ci@host", "-f"])
        .arg(&key)
        .status();
    assert!(made.is_ok_and(|s| s.success()), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("the public key");

    let ports = PortBlock::reserve();
    let ssh_port = ports.port();
    let started = Instant::now();
    let (rtp, _) = ports.rtp_range();
    let mut guest = Guest::boot_with_ssh(
        &disk,
        dir.path(),
        ports.sip_port(),
        (rtp, rtp + 3),
        (ports.port(), ports.port()),
        Some(ssh_port),
    );
    guest.expect(0, BOOT_TIMEOUT, "ready line", |l| l.contains("hakoden: ready "));
    eprintln!("MEASURE boot_to_ready_s={:.1}", started.elapsed().as_secs_f64());

    // The first key comes in over the serial console.
    let added = shell(
        &mut guest,
        "KEY",
        &format!("hakoden console --data /data/hakoden ssh key add {}", public.trim()),
    );
    assert!(added.contains("key 1 added"), "{added}");

    // SSH with that key lands in the console: `status` answers (dropbear may still be making
    // its host key: retried until it listens).
    let deadline = Instant::now() + SSH_TIMEOUT;
    let status = loop {
        let (code, out) = ssh(dir.path(), &key, ssh_port, "status");
        if code == Some(0) {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "no SSH login within {SSH_TIMEOUT:?}: {out}\n{}",
            guest.serial.tail(40)
        );
        std::thread::sleep(SSH_RETRY);
    };
    assert!(status.contains("slot: a") && status.contains("registrations: "), "{status}");
    eprintln!("MEASURE ssh_status_after_boot_s={:.1}", started.elapsed().as_secs_f64());
    // The login shell is the console, not a shell.
    let (code, out) = ssh(dir.path(), &key, ssh_port, "cat /etc/passwd");
    assert_ne!(code, Some(0), "a shell command ran over SSH: {out}");

    // DHCP from QEMU's server: the same 10.0.2.15, now with a route and a name server.
    let (code, out) = ssh(dir.path(), &key, ssh_port, "network dhcp");
    assert_eq!(code, Some(0), "{out}");
    let deadline = Instant::now() + DHCP_TIMEOUT;
    loop {
        let route = shell(&mut guest, "ROUTE", "ip route show default");
        let dns = shell(&mut guest, "DNS", "cat /run/resolv.conf");
        if route.contains("via 10.0.2.2") && dns.contains("nameserver 10.0.2.3") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no DHCP lease: route `{route}` dns `{dns}`\n{}",
            guest.serial.tail(30)
        );
        std::thread::sleep(POLL);
    }
    let (_, shown) = ssh(dir.path(), &key, ssh_port, "network");
    eprintln!("--- status over SSH ---\n{status}--- network after `network dhcp` ---\n{shown}");
    assert!(shown.contains("address: DHCP") && shown.contains("10.0.2.15"), "{shown}");

    // Static address and hostname are applied to the guest's interface.
    let (code, out) = ssh(dir.path(), &key, ssh_port, "network static 10.0.2.15/24 10.0.2.2 10.0.2.3");
    assert_eq!(code, Some(0), "{out}");
    let addr = shell(&mut guest, "ADDR", "ip -4 -o addr show dev eth0");
    assert!(addr.contains("10.0.2.15/24"), "{addr}");
    assert!(shell(&mut guest, "ROUTE", "ip route show default").contains("via 10.0.2.2"));
    assert!(!shell(&mut guest, "UDHCPC", "pidof udhcpc || echo none").chars().any(|c| c.is_ascii_digit()));
    let (code, out) = ssh(dir.path(), &key, ssh_port, "hostname office-pbx");
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(shell(&mut guest, "HOST", "hostname").trim(), "office-pbx");

    // NTP: the firmware's SNTP client asks a server on this host (QEMU's 10.0.2.2 is the
    // host's loopback) that is an hour ahead; the guest's clock is stepped to it.
    let ntp = fake_ntp_server(NTP_AHEAD_S);
    let (code, out) = ssh(dir.path(), &key, ssh_port, &format!("ntp 10.0.2.2:{ntp}"));
    assert_eq!(code, Some(0), "{out}");
    let deadline = Instant::now() + SHELL_TIMEOUT;
    loop {
        let (_, logs) = ssh(dir.path(), &key, ssh_port, "logs 50");
        if logs.contains("ntp: clock stepped by") {
            break;
        }
        assert!(Instant::now() < deadline, "the clock was not stepped:\n{logs}");
        std::thread::sleep(POLL);
    }
    let guest_now: u64 = shell(&mut guest, "DATE", "date +%s").trim().parse().unwrap_or(0);
    let host_now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    assert!(guest_now > host_now + NTP_AHEAD_S - 60, "guest {guest_now}, host {host_now}");
    let (code, out) = ssh(dir.path(), &key, ssh_port, "ntp off");
    assert_eq!(code, Some(0), "{out}");

    // SIP OPTIONS from the console to the box itself.
    let (code, out) =
        ssh(dir.path(), &key, ssh_port, &format!("options-test 127.0.0.1:{}", ports.sip_port()));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(" 200 OK in "), "{out}");
    eprintln!("--- options-test ---\n{out}");
    eprintln!("MEASURE total_test_s={:.1}", started.elapsed().as_secs_f64());
}
