//! The box as a system: network settings, SSH keys, the nightly restart, `status`, `reboot`.
//!
//! The public interface is: [`Platform`], [`StatusFacts`], [`render_status`],
//! [`write_atomically`], [`request_reboot`], and the modules [`network`], [`ssh`],
//! [`restart`], [`options`], [`sntp`].
//!
//! What touches the operating system (applying network settings, rebooting) happens only on
//! the appliance image ([`Platform::detect`]); on a developer machine the box saves settings
//! and prints what it would run, and never touches the host's network or power.

pub mod network;
pub mod options;
pub mod restart;
pub mod sntp;
pub mod ssh;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The board facts file the image carries (board profile values).
pub const BOARD_FILE: &str = "/etc/hakoden/board";

/// The image's script that applies `network.conf` (also run by rcS at boot).
pub const NETWORK_SCRIPT: &str = "/usr/sbin/hakoden-network";

/// What stage 1 writes about the booted slot.
const BOOT_SLOT_FILE: &str = "/run/boot-slot";

/// Longest board or slot file read.
const MAX_FACTS_BYTES: u64 = 8 * 1024;

/// Where the box runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `true` on the appliance image: settings are applied, `reboot` works.
    pub appliance: bool,
    /// The LAN interface (`NET_IF` of the board profile; `eth0` elsewhere).
    pub net_if: String,
    /// The booted slot (`a`/`b`) and whether it is a trial, from stage 1.
    pub slot: Option<String>,
    /// The board name.
    pub board: Option<String>,
}

fn read_small(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut s = String::new();
    std::fs::File::open(path).ok()?.take(MAX_FACTS_BYTES).read_to_string(&mut s).ok()?;
    Some(s)
}

/// `KEY=value` or `KEY="value"` from a shell-assignment file.
fn shell_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim_matches('"').to_string())
    })
}

impl Platform {
    /// The appliance is recognised by its board file and network script, which only the
    /// image has.
    pub fn detect() -> Platform {
        let board = read_small(Path::new(BOARD_FILE));
        let appliance = board.is_some() && Path::new(NETWORK_SCRIPT).exists();
        let slot = read_small(Path::new(BOOT_SLOT_FILE)).map(|t| {
            let slot = shell_value(&t, "slot").unwrap_or_else(|| "?".into());
            let trial = shell_value(&t, "trial").is_some_and(|v| v == "1");
            if trial {
                format!("{slot} (trial)")
            } else {
                slot
            }
        });
        let net_if = board.as_deref().and_then(|b| shell_value(b, "NET_IF")).unwrap_or_else(|| "eth0".into());
        let board = board.as_deref().and_then(|b| shell_value(b, "BOARD_NAME"));
        Platform { appliance, net_if, slot, board }
    }

    /// A developer machine (tests).
    pub fn developer() -> Platform {
        Platform { appliance: false, net_if: "eth0".into(), slot: None, board: None }
    }
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, then syncs the
/// directory: after a power cut the old or the new content is there, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut tmp: PathBuf = path.to_path_buf();
    tmp.set_extension("tmp");
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| std::fs::File::open(dir).and_then(|d| d.sync_all()));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Applies a saved network change: on the appliance runs [`NETWORK_SCRIPT`] `apply` and
/// returns its output; elsewhere returns the commands it would run.
pub fn apply_network(platform: &Platform, data_dir: &Path, settings: &network::NetworkSettings) -> String {
    let saved = network::settings_path(data_dir);
    if !platform.appliance {
        let mut s =
            format!("saved to {}; a developer run applies nothing. On the box this runs:", saved.display());
        for c in settings.commands(&platform.net_if) {
            let _ = write!(s, "\n  {c}");
        }
        return s;
    }
    match std::process::Command::new(NETWORK_SCRIPT).arg("apply").output() {
        Ok(out) => {
            let mut s = format!("saved to {} and applied", saved.display());
            for l in String::from_utf8_lossy(&out.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&out.stderr).lines())
            {
                let _ = write!(s, "\n  {l}");
            }
            if !out.status.success() {
                s = format!("error: {s}\n(the script failed: {})", out.status);
            }
            s
        }
        Err(e) => format!("error: saved to {}, but {NETWORK_SCRIPT} did not run: {e}", saved.display()),
    }
}

/// The IPv4 and IPv6 addresses of the box's interfaces (loopback left out), `if: addr`.
pub fn live_addresses() -> Vec<String> {
    match if_addrs::get_if_addrs() {
        Ok(ifs) => {
            ifs.iter().filter(|i| !i.is_loopback()).map(|i| format!("{}: {}", i.name, i.ip())).collect()
        }
        Err(e) => vec![format!("(cannot list interfaces: {e})")],
    }
}

/// Everything `status` prints, gathered by the daemon.
#[derive(Debug, Clone, Default)]
pub struct StatusFacts {
    /// Firmware version.
    pub version: String,
    /// Booted slot, `None` off the appliance.
    pub slot: Option<String>,
    /// Seconds since this process started.
    pub uptime_s: u64,
    /// Seconds since the system booted (`/proc/uptime`), if known.
    pub system_uptime_s: Option<u64>,
    /// Phones registered now.
    pub registrations: usize,
    /// Calls in progress.
    pub calls: usize,
    /// `(registered, total)` SIP trunks.
    pub trunks: (usize, usize),
    /// `(free, total)` bytes of the data partition.
    pub storage: Option<(u64, u64)>,
    /// The saved network settings, described.
    pub network: String,
    /// The live interface addresses.
    pub addresses: Vec<String>,
    /// The next planned restart, as text.
    pub next_restart: Option<String>,
}

fn duration_text(s: u64) -> String {
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {}s", s % 60)
    }
}

/// The `status` answer.
pub fn render_status(f: &StatusFacts) -> String {
    let mut s = format!("Hakoden {}", f.version);
    let _ = write!(s, "\nslot: {}", f.slot.as_deref().unwrap_or("none (developer run)"));
    let _ = write!(s, "\nuptime: {}", duration_text(f.uptime_s));
    if let Some(sys) = f.system_uptime_s {
        let _ = write!(s, " (system {})", duration_text(sys));
    }
    let _ = write!(s, "\nregistrations: {}\ncalls: {}", f.registrations, f.calls);
    let _ = write!(s, "\ntrunks: {} of {} registered", f.trunks.0, f.trunks.1);
    match f.storage {
        Some((free, total)) => {
            let mib = |b: u64| b / (1 << 20);
            let _ = write!(s, "\nstorage: {} MiB free of {} MiB", mib(free), mib(total));
        }
        None => s.push_str("\nstorage: unknown"),
    }
    for line in f.network.lines() {
        let _ = write!(s, "\nnetwork {line}");
    }
    let addrs = if f.addresses.is_empty() { "none".to_string() } else { f.addresses.join(", ") };
    let _ = write!(s, "\naddresses: {addrs}");
    let _ = write!(
        s,
        "\nnext restart: {}",
        f.next_restart.as_deref().unwrap_or("not planned ([system] restart_window)")
    );
    s
}

/// Keeps the clock with SNTP from the `ntp` servers of the saved settings (appliance only:
/// a developer machine's clock is the host's business). Runs every
/// [`sntp::SYNC_INTERVAL`], and at once when `kick` is notified (a console change).
pub async fn keep_time(data_dir: PathBuf, kick: std::sync::Arc<tokio::sync::Notify>) {
    loop {
        let dir = data_dir.clone();
        let servers = tokio::task::spawn_blocking(move || network::load(&dir).map(|n| n.ntp))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        match servers {
            Ok(servers) if !servers.is_empty() => match sntp::sync_once(&servers).await {
                Ok((server, offset)) if offset.abs() >= sntp::STEP_THRESHOLD_MS => {
                    match sntp::step_clock(offset) {
                        Ok(()) => log::info!("ntp: clock stepped by {offset} ms from {server}"),
                        Err(e) => log::warn!("ntp: {e}"),
                    }
                }
                Ok((server, offset)) => log::debug!("ntp: {server}: offset {offset} ms, clock kept"),
                Err(e) => log::warn!("ntp: no server answered: {e}"),
            },
            Ok(_) => {}
            Err(e) => log::warn!("ntp: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(sntp::SYNC_INTERVAL) => {}
            () = kick.notified() => {}
        }
    }
}

/// `/proc/uptime`'s first number, whole seconds.
pub fn system_uptime() -> Option<u64> {
    let t = read_small(Path::new("/proc/uptime"))?;
    let secs: f64 = t.split_whitespace().next()?.parse().ok()?;
    // Truncation is what an uptime shows.
    Some(secs as u64)
}

/// `(free, total)` bytes of the filesystem holding `dir`.
pub fn storage(dir: &Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some((st.f_bavail.saturating_mul(st.f_frsize), st.f_blocks.saturating_mul(st.f_frsize)))
}

/// Asks init to reboot the board in a moment (after the console reply is out). Only on the
/// appliance: a developer machine is never rebooted.
pub fn request_reboot(platform: &Platform) -> Result<(), String> {
    if !platform.appliance {
        return Err(
            "refused: this is not the appliance image (a developer run never reboots the host)".into()
        );
    }
    std::thread::Builder::new()
        .name("reboot".into())
        .spawn(|| {
            // Lets the console reply reach the technician before init stops everything.
            std::thread::sleep(REBOOT_DELAY);
            log::warn!("reboot requested on the console");
            if let Err(e) = std::process::Command::new("/sbin/reboot").status() {
                log::error!("reboot failed: {e}");
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the reboot: {e}"))
}

/// Pause between the `reboot now` reply and the reboot.
const REBOOT_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_every_part_of_the_box() {
        let f = StatusFacts {
            version: "0.1.0".into(),
            uptime_s: 3725,
            registrations: 3,
            calls: 1,
            trunks: (1, 2),
            storage: Some((10 << 20, 60 << 20)),
            network: "address: DHCP\nhostname: hakoden\nntp: off".into(),
            addresses: vec!["eth0: 10.0.2.15".into()],
            next_restart: Some("2026-11-23 03:00 (window 03:00-04:00)".into()),
            ..StatusFacts::default()
        };
        let s = render_status(&f);
        for want in [
            "slot: none (developer run)",
            "uptime: 1h 2m",
            "registrations: 3",
            "calls: 1",
            "trunks: 1 of 2 registered",
            "storage: 10 MiB free of 60 MiB",
            "network address: DHCP",
            "addresses: eth0: 10.0.2.15",
            "next restart: 2026-11-23 03:00",
        ] {
            assert!(s.contains(want), "{want} missing in\n{s}");
        }
    }

    #[test]
    fn a_developer_run_refuses_to_reboot() {
        assert!(request_reboot(&Platform::developer()).unwrap_err().contains("refused"));
    }

    #[test]
    fn board_values_are_read_with_or_without_quotes() {
        let t = "BOARD_NAME=\"qemu\"\nNET_IF=eth1\n";
        assert_eq!(shell_value(t, "BOARD_NAME").as_deref(), Some("qemu"));
        assert_eq!(shell_value(t, "NET_IF").as_deref(), Some("eth1"));
        assert_eq!(shell_value(t, "NET"), None);
    }
}
