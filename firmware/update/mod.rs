//! Signed firmware updates of the A/B appliance (issue 8, docs/appliance.md "Updates").
//!
//! The public interface is: [`bundle`] (the sans-IO bundle format and its checks),
//! [`Appliance`] (the slot state on the data partition and the writer of the inactive slot),
//! [`UpdateRecord`] / [`UpdateResult`] (the last update's outcome), [`BootOutcome`], and
//! [`health_check`] (the trial boot's self test, a driver).
//!
//! Flow: `install` verifies a bundle (signature, board, size) before writing a byte, writes
//! its squashfs to the **inactive** slot's partition, reads it back, leaves a pending record
//! and sets `try_slot`; the caller reboots. Stage 1 boots the trial once (deleting
//! `try_slot`). On the trial boot the daemon runs [`health_check`] and then either
//! [`Appliance::commit`]s or records the failure and reboots into the committed slot. A trial
//! that crashes or hangs never reaches the commit; the next boot finds the pending record for
//! a slot it is not running and reports the rollback ([`Appliance::boot_outcome`]).
//!
//! State files in the boot directory (`/data/boot`), each written atomically:
//! `slot`, `try_slot` (stage 1's), `update.json` (the pending update), `last_update.json`
//! (what happened to the last one), `fallback` (the slot to return to if the just-committed
//! firmware crash-loops; `hakoden-start` reads it) and `crash-fallback` (left by
//! `hakoden-start` when it fell back).

pub mod bundle;

use crate::store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Written by stage 1: which slot runs and whether it is a trial.
pub const RUN_SLOT_FILE: &str = "/run/boot-slot";

/// Where the kernel lists block devices and their GPT names.
pub const SYS_BLOCK: &str = "/sys/class/block";

/// A file in a rootfs that makes its firmware fail the trial health check: how the tests build
/// a broken update out of a good binary (`scripts/make-bundle.sh --fail-health-check`).
pub const FAIL_HEALTH_FLAG: &str = "/etc/hakoden/test-fail-health-check";

/// A file in a rootfs that makes its firmware exit with an error as soon as its slot is the
/// committed one: right after its trial commits, and at every start after that. How the tests
/// build a firmware that passes its trial and then crash-loops during its probation
/// (`scripts/make-bundle.sh --crash-after-commit`), to prove the fallback of `hakoden-start`.
pub const CRASH_AFTER_COMMIT_FLAG: &str = "/etc/hakoden/test-crash-after-commit";

/// Exit status of a firmware that crashes on purpose ([`CRASH_AFTER_COMMIT_FLAG`]).
pub const TEST_CRASH_EXIT: u8 = 70;

/// Time the trial firmware gets to prove SIP, web and store after its start. Generous for a
/// TCG-emulated box; on hardware the check passes in well under a second.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(60);

/// How long a committed firmware stays on probation: crash loops within it return to the
/// previous slot (`hakoden-start`); after it the firmware is trusted and `fallback` removed.
pub const PROBATION: Duration = Duration::from_secs(600);

/// Writes go to the partition in chunks of this size (fsync at the end); reading back uses
/// the same. 1 MiB keeps memory flat and the syscall count low.
const CHUNK: usize = 1 << 20;

/// A slot name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// `rootfs_a`.
    A,
    /// `rootfs_b`.
    B,
}

impl Slot {
    /// Parses `a` / `b` (what stage 1 writes).
    pub fn parse(s: &str) -> Option<Slot> {
        match s.trim() {
            "a" => Some(Slot::A),
            "b" => Some(Slot::B),
            _ => None,
        }
    }
    /// `a` or `b`.
    pub fn name(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    /// The partition's GPT name.
    pub fn partition(self) -> &'static str {
        match self {
            Slot::A => "rootfs_a",
            Slot::B => "rootfs_b",
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateResult {
    /// Written, waiting for the trial boot.
    Pending,
    /// The trial passed the health check and is the committed slot now.
    Committed,
    /// The trial failed its health check; the box went back to the previous slot.
    HealthCheckFailed,
    /// The trial crashed, hung or was reset before it committed; the previous slot runs.
    RolledBack,
    /// The committed firmware crash-looped on probation; the previous slot runs again.
    CrashLoopFallback,
}

/// One update as the box remembers it (`last_update.json`, `GET /api/v1/firmware`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// The bundle's version.
    pub version: String,
    /// Slot that ran when the update was written.
    pub from: Slot,
    /// Slot the update was written to.
    pub to: Slot,
    /// Outcome.
    pub result: UpdateResult,
    /// Why, in words (the failed check, the rollback's cause).
    pub detail: String,
    /// Wall time of the last change, ms since the epoch (0 = unknown).
    pub at_ms: u64,
}

/// What the boot found (see [`Appliance::boot_outcome`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// An ordinary boot.
    Normal,
    /// A trial boot of a pending update: health check, then commit or roll back.
    Trial(UpdateRecord),
    /// An update did not survive its trial (or probation); recorded as this.
    RolledBack(UpdateRecord),
}

/// Why an update was not written.
#[derive(Debug)]
pub enum UpdateError {
    /// The bundle is refused (see [`bundle::BundleError`]).
    Bundle(bundle::BundleError),
    /// Another update is being written, or one waits for its reboot.
    Busy,
    /// The slot could not be written or read back.
    Io(String),
}

impl std::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateError::Bundle(e) => write!(f, "{e}"),
            UpdateError::Busy => write!(f, "an update is already being installed"),
            UpdateError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for UpdateError {}

/// What `GET /api/v1/firmware` and `show firmware` tell.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareStatus {
    /// This firmware's version.
    pub version: String,
    /// The board.
    pub board: String,
    /// Slot running now.
    pub running: Slot,
    /// Whether this is an uncommitted trial boot.
    pub trial: bool,
    /// The committed slot.
    pub committed: Slot,
    /// Version in each slot as far as the box knows (the running one, the last update's).
    pub slots: Vec<(Slot, Option<String>)>,
    /// The last update, if any.
    pub last_update: Option<UpdateRecord>,
}

/// The appliance's slot state: the boot directory on the data partition, the running slot
/// (stage 1's `/run/boot-slot`), the board and the update key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Appliance {
    boot_dir: PathBuf,
    sys_block: PathBuf,
    dev_dir: PathBuf,
    public_key: [u8; bundle::PUBLIC_KEY_BYTES],
    board: String,
    running: Slot,
    trial: bool,
    installing: Arc<AtomicBool>,
}

impl Appliance {
    /// Reads the running slot from `run_slot_file` and the key from `key_file`.
    pub fn load(
        boot_dir: &Path,
        key_file: &Path,
        board: &str,
        run_slot_file: &Path,
    ) -> Result<Appliance, String> {
        let key_text = std::fs::read_to_string(key_file)
            .map_err(|e| format!("cannot read the update key {}: {e}", key_file.display()))?;
        let public_key =
            bundle::parse_public_key(&key_text).map_err(|e| format!("{}: {e}", key_file.display()))?;
        let run = std::fs::read_to_string(run_slot_file).unwrap_or_default();
        let field = |name: &str| {
            run.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix('='))).unwrap_or("")
        };
        let running = Slot::parse(field("slot")).ok_or_else(|| {
            format!("{} does not name the running slot (not booted by stage 1?)", run_slot_file.display())
        })?;
        Ok(Appliance {
            boot_dir: boot_dir.to_path_buf(),
            sys_block: PathBuf::from(SYS_BLOCK),
            dev_dir: PathBuf::from("/dev"),
            public_key,
            board: board.to_string(),
            running,
            trial: field("trial") == "1",
            installing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Uses other sysfs and /dev directories (tests: plain files stand in for partitions).
    pub fn with_block_dirs(mut self, sys_block: &Path, dev_dir: &Path) -> Appliance {
        self.sys_block = sys_block.to_path_buf();
        self.dev_dir = dev_dir.to_path_buf();
        self
    }

    /// The slot running now.
    pub fn running(&self) -> Slot {
        self.running
    }

    /// Whether this boot is an uncommitted trial.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// The committed slot (`slot`, default a as in stage 1).
    pub fn committed(&self) -> Slot {
        std::fs::read_to_string(self.boot_dir.join("slot"))
            .ok()
            .as_deref()
            .and_then(Slot::parse)
            .unwrap_or(Slot::A)
    }

    /// Whether this firmware must crash now because it carries `flag` (normally
    /// [`CRASH_AFTER_COMMIT_FLAG`]) and runs from the committed slot. A trial before its commit
    /// runs normally, so it passes its health check and commits.
    pub fn crash_after_commit_due(&self, flag: &Path) -> bool {
        flag.exists() && self.committed() == self.running
    }

    /// The last update's record.
    pub fn last_update(&self) -> Option<UpdateRecord> {
        read_json(&self.boot_dir.join("last_update.json"))
    }

    /// Everything the status pages show.
    pub fn status(&self) -> FirmwareStatus {
        let last = self.last_update();
        let mut slots = vec![(self.running, Some(crate::VERSION.to_string()))];
        let other = self.running.other();
        let other_version = last
            .as_ref()
            .filter(|r| r.to == other && r.result != UpdateResult::Pending)
            .map(|r| r.version.clone());
        slots.push((other, other_version));
        slots.sort_by_key(|(s, _)| s.name());
        FirmwareStatus {
            version: crate::VERSION.to_string(),
            board: self.board.clone(),
            running: self.running,
            trial: self.trial,
            committed: self.committed(),
            slots,
            last_update: last,
        }
    }

    /// Largest bundle worth reading: the inactive slot plus the bundle's own bytes. Uploads
    /// past it are refused before they are buffered (the box has little RAM).
    pub fn max_bundle_bytes(&self) -> u64 {
        let slot = self.partition_bytes(self.running.other()).unwrap_or(0);
        slot.saturating_add(bundle::OVERHEAD_BYTES)
    }

    /// Verifies `bytes` and writes the firmware to the inactive slot, reads it back, records
    /// the pending update and sets `try_slot`. The caller reboots (see `reboot`). Blocking.
    pub fn install(&self, bytes: &[u8], now_ms: u64) -> Result<UpdateRecord, UpdateError> {
        if self.installing.swap(true, Ordering::SeqCst) {
            return Err(UpdateError::Busy);
        }
        let result = self.install_inner(bytes, now_ms);
        if result.is_err() {
            self.installing.store(false, Ordering::SeqCst);
        }
        // On success the flag stays set: the box reboots into the trial, and a second update
        // before that would overwrite the slot stage 1 is about to boot.
        result
    }

    fn install_inner(&self, bytes: &[u8], now_ms: u64) -> Result<UpdateRecord, UpdateError> {
        let target = self.running.other();
        let device = self.partition_device(target).map_err(UpdateError::Io)?;
        let capacity = self.partition_bytes(target).map_err(UpdateError::Io)?;
        let verified =
            bundle::verify(bytes, &self.public_key, &self.board, capacity).map_err(UpdateError::Bundle)?;
        log::info!(
            "update: writing {} ({} bytes) to slot {target} ({})",
            verified.manifest.version,
            verified.payload.len(),
            device.display()
        );
        write_and_verify(&device, verified.payload).map_err(UpdateError::Io)?;
        let record = UpdateRecord {
            version: verified.manifest.version.clone(),
            from: self.running,
            to: target,
            result: UpdateResult::Pending,
            detail: format!("written to slot {target}; the next boot tries it once"),
            at_ms: now_ms,
        };
        let io = |e: std::io::Error| UpdateError::Io(format!("cannot write the slot state: {e}"));
        write_json(&self.boot_dir.join("update.json"), &record).map_err(io)?;
        write_json(&self.boot_dir.join("last_update.json"), &record).map_err(io)?;
        write_atomic(&self.boot_dir.join("try_slot"), format!("{target}\n").as_bytes()).map_err(io)?;
        log::info!("update: {} written to slot {target}; rebooting into it once", record.version);
        Ok(record)
    }

    /// What this boot means for a pending update (and records a rollback found here). Call
    /// once at start.
    pub fn boot_outcome(&self, now_ms: u64) -> BootOutcome {
        let pending_path = self.boot_dir.join("update.json");
        let crash_path = self.boot_dir.join("crash-fallback");
        if let Ok(text) = std::fs::read_to_string(&crash_path) {
            // hakoden-start fell back from a crash-looping firmware: `from=S` names it.
            let from = text
                .lines()
                .find_map(|l| l.strip_prefix("from="))
                .and_then(Slot::parse)
                .unwrap_or(self.running.other());
            let version = self.last_update().filter(|r| r.to == from).map(|r| r.version).unwrap_or_default();
            let record = UpdateRecord {
                version,
                from: self.running,
                to: from,
                result: UpdateResult::CrashLoopFallback,
                detail: format!(
                    "slot {from} crashed repeatedly after its commit; back on slot {}",
                    self.running
                ),
                at_ms: now_ms,
            };
            let _ = write_json(&self.boot_dir.join("last_update.json"), &record);
            let _ = remove_synced(&crash_path);
            let _ = remove_synced(&pending_path);
            return BootOutcome::RolledBack(record);
        }
        let Some(pending) = read_json::<UpdateRecord>(&pending_path) else {
            return BootOutcome::Normal;
        };
        if self.trial && self.running == pending.to {
            return BootOutcome::Trial(pending);
        }
        let record = UpdateRecord {
            result: UpdateResult::RolledBack,
            detail: format!(
                "slot {} did not commit (it crashed, hung or was reset during its trial); back on slot {}",
                pending.to, self.running
            ),
            at_ms: now_ms,
            ..pending
        };
        let _ = write_json(&self.boot_dir.join("last_update.json"), &record);
        let _ = remove_synced(&pending_path);
        BootOutcome::RolledBack(record)
    }

    /// Makes the running trial slot the committed one and arms the crash-loop fallback to the
    /// slot it replaced.
    pub fn commit(&self, pending: &UpdateRecord, now_ms: u64) -> std::io::Result<UpdateRecord> {
        write_atomic(&self.boot_dir.join("fallback"), format!("{}\n", pending.from).as_bytes())?;
        write_atomic(&self.boot_dir.join("slot"), format!("{}\n", self.running).as_bytes())?;
        let record = UpdateRecord {
            result: UpdateResult::Committed,
            detail: format!("slot {} passed its health check and is committed", self.running),
            at_ms: now_ms,
            ..pending.clone()
        };
        write_json(&self.boot_dir.join("last_update.json"), &record)?;
        remove_synced(&self.boot_dir.join("update.json"))?;
        Ok(record)
    }

    /// Records a failed health check; the caller reboots into the committed slot.
    pub fn fail_trial(
        &self,
        pending: &UpdateRecord,
        why: &str,
        now_ms: u64,
    ) -> std::io::Result<UpdateRecord> {
        let record = UpdateRecord {
            result: UpdateResult::HealthCheckFailed,
            detail: format!("health check failed: {why}; back to slot {}", pending.from),
            at_ms: now_ms,
            ..pending.clone()
        };
        write_json(&self.boot_dir.join("last_update.json"), &record)?;
        remove_synced(&self.boot_dir.join("update.json"))?;
        Ok(record)
    }

    /// Ends the probation of a committed firmware: crash loops no longer fall back.
    pub fn end_probation(&self) -> std::io::Result<()> {
        remove_synced(&self.boot_dir.join("fallback"))
    }

    /// The device node of a slot's partition, found by GPT name as stage 1 does.
    fn partition_device(&self, slot: Slot) -> Result<PathBuf, String> {
        let want = format!("PARTNAME={}", slot.partition());
        let entries = std::fs::read_dir(&self.sys_block)
            .map_err(|e| format!("cannot list {}: {e}", self.sys_block.display()))?;
        for entry in entries.flatten() {
            let uevent = std::fs::read_to_string(entry.path().join("uevent")).unwrap_or_default();
            if uevent.lines().any(|l| l == want) {
                if let Some(dev) = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME=")) {
                    return Ok(self.dev_dir.join(dev));
                }
            }
        }
        Err(format!("no partition named {}", slot.partition()))
    }

    /// A slot partition's size in bytes (sysfs `size` counts 512-byte sectors).
    fn partition_bytes(&self, slot: Slot) -> Result<u64, String> {
        let want = format!("PARTNAME={}", slot.partition());
        let entries = std::fs::read_dir(&self.sys_block)
            .map_err(|e| format!("cannot list {}: {e}", self.sys_block.display()))?;
        for entry in entries.flatten() {
            let uevent = std::fs::read_to_string(entry.path().join("uevent")).unwrap_or_default();
            if uevent.lines().any(|l| l == want) {
                let sectors = std::fs::read_to_string(entry.path().join("size")).unwrap_or_default();
                return sectors
                    .trim()
                    .parse::<u64>()
                    .map(|s| s.saturating_mul(512))
                    .map_err(|_| format!("no size for {}", slot.partition()));
            }
        }
        Err(format!("no partition named {}", slot.partition()))
    }
}

/// Writes `payload` at the start of `device`, syncs, reads it back and compares digests.
fn write_and_verify(device: &Path, payload: &[u8]) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map_err(|e| format!("cannot open {}: {e}", device.display()))?;
    for chunk in payload.chunks(CHUNK) {
        f.write_all(chunk).map_err(|e| format!("write to {} failed: {e}", device.display()))?;
    }
    f.sync_all().map_err(|e| format!("sync of {} failed: {e}", device.display()))?;
    f.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    let mut left = payload.len();
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = left.min(CHUNK);
        let part = buf.get_mut(..want).ok_or("buffer")?;
        f.read_exact(part).map_err(|e| format!("read-back of {} failed: {e}", device.display()))?;
        hasher.update(&*part);
        left -= want;
    }
    if hasher.finalize().as_slice() != Sha256::digest(payload).as_slice() {
        return Err(format!("{} reads back different bytes than were written", device.display()));
    }
    Ok(())
}

/// temp + fsync + rename + fsync of the directory: a power cut leaves the old or the new file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("new");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

fn remove_synced(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The trial's self test: SIP answers an OPTIONS on `sip` (any response counts: the stack
/// parsed and answered), the web admin accepts TCP on `web` (when it is on), and the store
/// takes a write and reads it back. Retries until `deadline` has passed; `Err` says what
/// failed last. A rootfs carrying [`FAIL_HEALTH_FLAG`] fails on purpose (tests). Blocking.
#[allow(clippy::disallowed_methods)] // driver: measures its own deadline
pub fn health_check(
    sip: SocketAddr,
    web: Option<SocketAddr>,
    store: &Store,
    deadline: Duration,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    let mut attempt = 0u32;
    while started.elapsed() < deadline {
        attempt += 1;
        match check_once(sip, web, store, attempt) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(last)
}

fn check_once(sip: SocketAddr, web: Option<SocketAddr>, store: &Store, attempt: u32) -> Result<(), String> {
    if Path::new(FAIL_HEALTH_FLAG).exists() {
        return Err(format!("{FAIL_HEALTH_FLAG} is present (a test firmware that must roll back)"));
    }
    sip_options(sip, attempt)?;
    if let Some(web) = web {
        std::net::TcpStream::connect_timeout(&web, Duration::from_secs(2))
            .map_err(|e| format!("web admin not accepting on {web}: {e}"))?;
    }
    let value = format!("attempt {attempt}");
    store.meta_put("health_check", &value).map_err(|e| format!("store write failed: {e}"))?;
    match store.meta_get("health_check") {
        Ok(Some(v)) if v == value => Ok(()),
        Ok(_) => Err("store read back another value".into()),
        Err(e) => Err(format!("store read failed: {e}")),
    }
}

/// One OPTIONS over UDP from loopback; waits 2 s for a response with our Call-ID.
fn sip_options(sip: SocketAddr, attempt: u32) -> Result<(), String> {
    let target = if sip.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], sip.port())) } else { sip };
    let sock = UdpSocket::bind(SocketAddr::new(target.ip(), 0)).map_err(|e| format!("udp: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    let call_id = format!("health-{attempt}-{}", local.port());
    let req = format!(
        "OPTIONS sip:health@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:health@{local}>;tag=h{attempt}\r\n\
         To: <sip:health@{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), target).map_err(|e| format!("SIP send: {e}"))?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) =
            sock.recv_from(&mut buf).map_err(|e| format!("SIP did not answer OPTIONS on {target}: {e}"))?;
        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
        if text.starts_with("SIP/2.0 ") && text.contains(&call_id) {
            return Ok(());
        }
    }
}

/// Wall time in ms since the epoch, for the records.
#[allow(clippy::disallowed_methods)] // driver: reads the wall clock
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Runs once the box is ready (blocking, on the blocking pool): reports a rollback found at
/// boot, or health-checks a trial and commits it (or records the failure and reboots into
/// the committed slot); then ends a committed firmware's probation after [`PROBATION`].
pub fn after_start(app: &Appliance, sip: SocketAddr, web: Option<SocketAddr>, store: &Store) {
    match app.boot_outcome(wall_ms()) {
        BootOutcome::Normal => {}
        BootOutcome::RolledBack(r) => {
            log::warn!("update: {} rolled back: {}", r.version, r.detail);
            println!("update: rolled back {}: {}", r.version, r.detail);
        }
        BootOutcome::Trial(pending) => {
            println!("update: trial boot of {} in slot {}: health check", pending.version, app.running);
            match health_check(sip, web, store, HEALTH_DEADLINE) {
                Ok(()) => match app.commit(&pending, wall_ms()) {
                    Ok(r) => {
                        log::info!("update: {}", r.detail);
                        println!("update: committed {} in slot {}", r.version, r.to);
                        if app.crash_after_commit_due(Path::new(CRASH_AFTER_COMMIT_FLAG)) {
                            // A test firmware: die like a crash (no clean stop, the watchdog
                            // stays armed) so that init starts it again.
                            println!(
                                "update: {CRASH_AFTER_COMMIT_FLAG} is present: exiting after the commit"
                            );
                            std::process::exit(i32::from(TEST_CRASH_EXIT));
                        }
                    }
                    Err(e) => log::error!("update: commit of slot {} failed: {e}", app.running),
                },
                Err(why) => {
                    if let Err(e) = app.fail_trial(&pending, &why, wall_ms()) {
                        log::error!("update: cannot record the failed trial: {e}");
                    }
                    log::error!("update: health check failed: {why}");
                    println!("update: health check failed: {why}; rebooting into slot {}", pending.from);
                    reboot();
                    return;
                }
            }
        }
    }
    if !app.trial && app.boot_dir.join("fallback").exists() {
        std::thread::sleep(PROBATION);
        match app.end_probation() {
            Ok(()) => log::info!(
                "update: slot {} ran {} s without a crash loop; probation over",
                app.running,
                PROBATION.as_secs()
            ),
            Err(e) => log::warn!("update: cannot end the probation: {e}"),
        }
    }
}

/// `update FILE` on the console: the same checks and write as the web upload. On success the
/// caller reboots after the answer is out.
pub fn console_update(app: Option<&Appliance>, path: &str) -> Result<String, String> {
    let app = app.ok_or("firmware updates need the A/B appliance image (hakoden run --boot-dir)")?;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if meta.len() > app.max_bundle_bytes() {
        return Err(format!(
            "{path} is {} bytes; a bundle for this box is at most {}",
            meta.len(),
            app.max_bundle_bytes()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let rec = app.install(&bytes, wall_ms()).map_err(|e| e.to_string())?;
    Ok(format!(
        "{} verified and written to slot {}; rebooting into it once (it commits after its health check)",
        rec.version, rec.to
    ))
}

/// `show firmware` on the console.
pub fn console_status(app: Option<&Appliance>) -> String {
    let Some(app) = app else {
        return format!("firmware {} (not the A/B appliance: no slots, no updates)", crate::VERSION);
    };
    let s = app.status();
    let mut out = format!(
        "firmware {} board {}\nrunning slot {}{}, committed slot {}\n",
        s.version,
        s.board,
        s.running,
        if s.trial { " (trial)" } else { "" },
        s.committed
    );
    for (slot, version) in &s.slots {
        out.push_str(&format!("slot {slot}: {}\n", version.as_deref().unwrap_or("unknown")));
    }
    match &s.last_update {
        Some(r) => out.push_str(&format!(
            "last update: {} {} -> {}: {:?}: {}",
            r.version, r.from, r.to, r.result, r.detail
        )),
        None => out.push_str("last update: none"),
    }
    out
}

/// Asks init to reboot (busybox `reboot`: a clean stop, which disarms the watchdog).
pub fn reboot() {
    if let Err(e) = std::process::Command::new("reboot").spawn() {
        log::error!("update: cannot run reboot: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::Ed25519KeyPair;

    const BOARD: &str = "qemu-virt-aarch64";

    /// A fake box: sysfs entries and "partitions" as plain files in a temp dir.
    struct Fake {
        dir: tempfile::TempDir,
        key: Ed25519KeyPair,
    }

    impl Fake {
        fn new(running: Slot, trial: bool) -> Fake {
            let dir = tempfile::tempdir().expect("tempdir");
            let d = dir.path();
            for (n, part) in [(2, "rootfs_a"), (3, "rootfs_b")] {
                let sys = d.join(format!("sys/vda{n}"));
                std::fs::create_dir_all(&sys).expect("sys");
                std::fs::write(sys.join("uevent"), format!("MAJOR=254\nDEVNAME=vda{n}\nPARTNAME={part}\n"))
                    .expect("uevent");
                std::fs::write(sys.join("size"), "128\n").expect("size");
                std::fs::create_dir_all(d.join("dev")).expect("dev");
                std::fs::write(d.join(format!("dev/vda{n}")), vec![0xee; 64 * 1024]).expect("part");
            }
            std::fs::create_dir_all(d.join("boot")).expect("boot");
            std::fs::write(d.join("boot/slot"), "a\n").expect("slot");
            let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("keygen");
            let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("key");
            std::fs::write(d.join("update.pub"), bundle::public_key_hex(&key)).expect("pub");
            std::fs::write(d.join("boot-slot"), format!("slot={running}\ntrial={}\n", u8::from(trial)))
                .expect("run");
            Fake { dir, key }
        }
        fn appliance(&self) -> Appliance {
            let d = self.dir.path();
            Appliance::load(&d.join("boot"), &d.join("update.pub"), BOARD, &d.join("boot-slot"))
                .expect("load")
                .with_block_dirs(&d.join("sys"), &d.join("dev"))
        }
        fn bundle(&self, len: usize) -> Vec<u8> {
            let mut payload = b"hsqs".to_vec();
            payload.resize(len, 7);
            bundle::build(&self.key, "0.9.0-test", BOARD, &payload).expect("bundle")
        }
        fn path(&self, p: &str) -> PathBuf {
            self.dir.path().join(p)
        }
    }

    #[test]
    fn an_update_is_written_to_the_inactive_slot_and_tried_once() {
        let f = Fake::new(Slot::A, false);
        let a = f.appliance();
        let rec = a.install(&f.bundle(10_000), 5).expect("install");
        assert_eq!((rec.from, rec.to, rec.result), (Slot::A, Slot::B, UpdateResult::Pending));
        let b = std::fs::read(f.path("dev/vda3")).expect("slot b");
        assert_eq!(&b[..4], b"hsqs");
        assert!(b[4..10_000].iter().all(|&x| x == 7));
        assert!(
            std::fs::read(f.path("dev/vda2")).expect("slot a").iter().all(|&x| x == 0xee),
            "slot a untouched"
        );
        assert_eq!(std::fs::read_to_string(f.path("boot/try_slot")).expect("try_slot"), "b\n");
        assert!(matches!(a.install(&f.bundle(100), 6), Err(UpdateError::Busy)), "one update per reboot");
    }

    #[test]
    fn a_refused_bundle_writes_nothing() {
        let f = Fake::new(Slot::A, false);
        let a = f.appliance();
        let mut bad = f.bundle(1000);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(a.install(&bad, 1), Err(UpdateError::Bundle(bundle::BundleError::Corrupt))));
        assert!(std::fs::read(f.path("dev/vda3")).expect("b").iter().all(|&x| x == 0xee));
        assert!(!f.path("boot/try_slot").exists());
        // 128 sectors = 64 KiB slots: a larger firmware is refused before writing.
        assert!(matches!(
            a.install(&f.bundle(70_000), 1),
            Err(UpdateError::Bundle(bundle::BundleError::TooLarge { .. }))
        ));
        assert!(a.install(&f.bundle(1000), 2).is_ok(), "a refusal does not leave the box busy");
    }

    #[test]
    fn the_trial_boot_commits_and_arms_the_fallback() {
        let f = Fake::new(Slot::A, false);
        f.appliance().install(&f.bundle(1000), 1).expect("install");
        let f2 = Fake { dir: f.dir, key: f.key };
        std::fs::write(f2.path("boot-slot"), "slot=b\ntrial=1\n").expect("trial");
        let a = f2.appliance();
        let BootOutcome::Trial(pending) = a.boot_outcome(2) else { panic!("a trial boot") };
        let rec = a.commit(&pending, 3).expect("commit");
        assert_eq!(rec.result, UpdateResult::Committed);
        assert_eq!(a.committed(), Slot::B);
        assert_eq!(std::fs::read_to_string(f2.path("boot/fallback")).expect("fallback"), "a\n");
        assert_eq!(a.status().last_update.map(|r| r.result), Some(UpdateResult::Committed));
        assert_eq!(a.boot_outcome(4), BootOutcome::Normal, "nothing pending after the commit");
    }

    #[test]
    fn a_trial_that_never_committed_is_reported_as_rolled_back() {
        let f = Fake::new(Slot::A, false);
        f.appliance().install(&f.bundle(1000), 1).expect("install");
        // The trial crashed; stage 1 booted the committed a again.
        let a = f.appliance();
        match a.boot_outcome(9) {
            BootOutcome::RolledBack(r) => {
                assert_eq!((r.to, r.result, r.at_ms), (Slot::B, UpdateResult::RolledBack, 9));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.committed(), Slot::A);
        assert_eq!(a.boot_outcome(10), BootOutcome::Normal, "reported once");
        assert_eq!(a.last_update().map(|r| r.result), Some(UpdateResult::RolledBack));
    }

    #[test]
    fn a_crash_loop_fallback_left_by_the_start_script_is_reported() {
        let f = Fake::new(Slot::A, false);
        std::fs::write(f.path("boot/crash-fallback"), "from=b\n").expect("note");
        match f.appliance().boot_outcome(1) {
            BootOutcome::RolledBack(r) => {
                assert_eq!((r.to, r.result), (Slot::B, UpdateResult::CrashLoopFallback))
            }
            other => panic!("{other:?}"),
        }
        assert!(!f.path("boot/crash-fallback").exists());
    }

    #[test]
    fn the_crash_test_flag_bites_only_once_the_slot_is_committed() {
        let f = Fake::new(Slot::A, false);
        let flag = f.path("test-crash-after-commit");
        assert!(!f.appliance().crash_after_commit_due(&flag), "no flag, no crash");
        std::fs::write(&flag, "test\n").expect("flag");
        assert!(f.appliance().crash_after_commit_due(&flag), "committed slot a carries the flag");
        f.appliance().install(&f.bundle(1000), 1).expect("install");
        let f2 = Fake { dir: f.dir, key: f.key };
        std::fs::write(f2.path("boot-slot"), "slot=b\ntrial=1\n").expect("trial");
        let flag = f2.path("test-crash-after-commit");
        let a = f2.appliance();
        assert!(!a.crash_after_commit_due(&flag), "the trial runs until it commits");
        let BootOutcome::Trial(pending) = a.boot_outcome(2) else { panic!("a trial boot") };
        a.commit(&pending, 3).expect("commit");
        assert!(a.crash_after_commit_due(&flag), "committed: the test firmware crashes");
    }
}
