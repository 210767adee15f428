//! Backup and restore of configuration and data as one file; factory reset (issue 8,
//! docs/appliance.md "Backup, restore, factory reset").
//!
//! The public interface is: [`pack`] / [`unpack`] (the sans-IO archive format, unit-tested),
//! [`Archive`], [`BackupError`], [`collect`] (reads the data directory into an archive),
//! [`stage_restore`], [`stage_factory_reset`], [`apply_pending`] (run at start before anything
//! opens the data), and the console answers [`console_backup`], [`console_restore`],
//! [`console_factory_reset`].
//!
//! Archive layout ("tar-like": one manifest up front, the files back to back, one checksum):
//!
//! ```text
//! "HAKOBAK1"  8 bytes
//! M           4 bytes, big-endian manifest length (at most MAX_MANIFEST_BYTES)
//! manifest    M bytes JSON {"format":1,"version","created_ms","recordings",
//!                           "files":[{"path","size","sha256"}]}
//! files       each file's bytes, in manifest order
//! checksum    32 bytes: sha256 of everything before it
//! ```
//!
//! Paths are relative to the data directory (`store/...`, `voicemail/...`, `web/...`), plus
//! `config/hakoden.toml` for the configuration file the box was started with. A restore or a
//! factory reset is never applied to a running box: it is staged (`restore.pending`,
//! `factory-reset.pending` in the data directory) and [`apply_pending`] applies it at the next
//! start, before the store opens. Both are idempotent: a power cut while applying leaves the
//! pending file, and the next start does it again from the beginning.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// The first bytes of every archive.
pub const MAGIC: &[u8; 8] = b"HAKOBAK1";

/// The manifest format this firmware writes and reads.
pub const FORMAT: u32 = 1;

/// Largest archive: it is built and checked in RAM, and the appliance's data partition is
/// 64 MiB (docs/appliance.md); recordings beyond that belong on a file server, not in a
/// backup download.
pub const MAX_BACKUP_BYTES: u64 = 64 << 20;

/// Largest manifest: one entry (~150 bytes) per file; 8 MiB is ~50,000 files, far more than a
/// box's store, mailboxes and prompts.
pub const MAX_MANIFEST_BYTES: usize = 8 << 20;

/// Most files in one archive (see [`MAX_MANIFEST_BYTES`]).
pub const MAX_FILES: usize = 50_000;

/// Longest path inside an archive.
pub const MAX_PATH_BYTES: usize = 512;

/// The archive name of the configuration file.
pub const CONFIG_ENTRY: &str = "config/hakoden.toml";

/// Staged restore and factory reset, in the data directory.
pub const RESTORE_PENDING: &str = "restore.pending";
/// See [`RESTORE_PENDING`].
pub const RESET_PENDING: &str = "factory-reset.pending";

/// Where a restore unpacks before it replaces the data (inside the data directory, so the
/// final moves are renames on one filesystem).
const RESTORE_STAGING: &str = ".restore";

/// Times a backup retries reading the data when a file vanished under it (the store compacts
/// while the box runs).
const COLLECT_TRIES: usize = 3;

const HEADER_BYTES: usize = 12;
const CHECKSUM_BYTES: usize = 32;

/// Top-level entries of the data directory that are never archived or wiped by a restore:
/// the console socket and the staging files themselves.
const NOT_DATA: &[&str] = &["console.sock", RESTORE_PENDING, RESET_PENDING, RESTORE_STAGING];

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path (`/`-separated).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// sha256, lower-case hex.
    pub sha256: String,
    /// Zero bytes after the stored ones: a preallocated file (the store's journal is 64 MiB of
    /// mostly zeros) is archived without its zero tail and grown back to its length on restore.
    #[serde(default)]
    pub zeros: u64,
}

/// One file to archive: its path, its bytes without the zero tail, the tail's length.
pub type DataFile = (String, Vec<u8>, u64);

/// Longest zero tail a restore recreates: the store preallocates 64 MiB journals; a tail past
/// 1 GiB is not a file of this box but a crafted manifest (sparse, yet still refused).
pub const MAX_ZERO_TAIL: u64 = 1 << 30;

/// Shortest zero tail worth cutting: one page. Shorter runs are ordinary file content.
pub const ZERO_TAIL_MIN: usize = 4096;

/// Cuts a file's trailing zeros (when at least [`ZERO_TAIL_MIN`]) and returns their count.
pub fn cut_zero_tail(bytes: &mut Vec<u8>) -> u64 {
    let keep = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let tail = bytes.len() - keep;
    if tail < ZERO_TAIL_MIN {
        return 0;
    }
    bytes.truncate(keep);
    bytes.shrink_to_fit();
    tail as u64
}

/// The archive's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Firmware version that made it.
    pub version: String,
    /// Wall time it was made, ms since the epoch.
    pub created_ms: u64,
    /// Whether call recordings are inside.
    pub recordings: bool,
    /// The files, in archive order.
    pub files: Vec<FileEntry>,
}

/// A checked archive: its manifest and each file's bytes.
#[derive(Debug)]
pub struct Archive<'a> {
    /// The manifest.
    pub manifest: Manifest,
    /// `(path, bytes)` in manifest order.
    pub files: Vec<(String, &'a [u8])>,
}

/// Why an archive is refused. The text is shown as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupError {
    /// No `HAKOBAK1` header: not a backup (the web answers 415).
    NotABackup,
    /// Shorter than its manifest says.
    Truncated,
    /// The whole-file checksum does not match: damaged in transit or storage.
    Checksum,
    /// The manifest is unreadable or breaks a limit.
    BadManifest(String),
    /// A path that could escape the data directory, or a duplicate.
    BadPath(String),
    /// A file does not match its manifest digest.
    Corrupt(String),
    /// Over [`MAX_BACKUP_BYTES`].
    TooLarge(u64),
    /// Reading or writing the data directory failed.
    Io(String),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::NotABackup => write!(f, "not a Hakoden backup (no HAKOBAK1 header)"),
            BackupError::Truncated => write!(f, "the backup is truncated"),
            BackupError::Checksum => write!(f, "the backup's checksum does not match (damaged file)"),
            BackupError::BadManifest(why) => write!(f, "unreadable backup manifest: {why}"),
            BackupError::BadPath(p) => write!(f, "the backup holds a forbidden path: {p}"),
            BackupError::Corrupt(p) => write!(f, "{p} in the backup does not match its checksum"),
            BackupError::TooLarge(n) => {
                write!(f, "the backup would be {n} bytes (at most {MAX_BACKUP_BYTES})")
            }
            BackupError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BackupError {}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `bytes` start like an archive.
pub fn looks_like_backup(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// A path is archived only if it is relative, plain (no `..`, no root, no `.`), short, and
/// uses `/`.
fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PATH_BYTES
        && !p.contains('\\')
        && !p.contains('\0')
        && Path::new(p).components().all(|c| matches!(c, Component::Normal(_)))
        && !p.ends_with('/')
        && !NOT_DATA.iter().any(|n| p == *n || p.starts_with(&format!("{n}/")))
}

/// Builds an archive from `(path, bytes)` pairs.
pub fn pack(
    version: &str,
    created_ms: u64,
    recordings: bool,
    files: &[DataFile],
) -> Result<Vec<u8>, BackupError> {
    let mut entries = Vec::with_capacity(files.len());
    let mut total = 0u64;
    for (path, bytes, zeros) in files {
        if !safe_path(path) {
            return Err(BackupError::BadPath(path.clone()));
        }
        total = total.saturating_add(bytes.len() as u64);
        entries.push(FileEntry {
            path: path.clone(),
            size: bytes.len() as u64,
            sha256: hex(&Sha256::digest(bytes)),
            zeros: *zeros,
        });
    }
    if files.len() > MAX_FILES {
        return Err(BackupError::BadManifest(format!("{} files (at most {MAX_FILES})", files.len())));
    }
    let manifest =
        Manifest { format: FORMAT, version: version.into(), created_ms, recordings, files: entries };
    let json = serde_json::to_vec(&manifest).map_err(|e| BackupError::BadManifest(e.to_string()))?;
    if json.len() > MAX_MANIFEST_BYTES {
        return Err(BackupError::BadManifest(format!("{} bytes of manifest", json.len())));
    }
    let size = (HEADER_BYTES + json.len() + CHECKSUM_BYTES) as u64 + total;
    if size > MAX_BACKUP_BYTES {
        return Err(BackupError::TooLarge(size));
    }
    let len = u32::try_from(json.len()).map_err(|_| BackupError::BadManifest("too large".into()))?;
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    for (_, bytes, _) in files {
        out.extend_from_slice(bytes);
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    Ok(out)
}

/// Checks an archive completely (checksum, manifest, paths, every file's digest) and returns
/// its files. Nothing is believed before the whole-file checksum matched.
pub fn unpack(bytes: &[u8]) -> Result<Archive<'_>, BackupError> {
    if !looks_like_backup(bytes) {
        return Err(BackupError::NotABackup);
    }
    if bytes.len() as u64 > MAX_BACKUP_BYTES {
        return Err(BackupError::TooLarge(bytes.len() as u64));
    }
    let body_len = bytes.len().checked_sub(CHECKSUM_BYTES).ok_or(BackupError::Truncated)?;
    if body_len < HEADER_BYTES {
        return Err(BackupError::Truncated);
    }
    let (body, sum) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != sum {
        return Err(BackupError::Checksum);
    }
    let len_bytes: [u8; 4] =
        body.get(MAGIC.len()..HEADER_BYTES).and_then(|b| b.try_into().ok()).ok_or(BackupError::Truncated)?;
    let mlen = u32::from_be_bytes(len_bytes) as usize;
    if mlen > MAX_MANIFEST_BYTES {
        return Err(BackupError::BadManifest(format!("{mlen} bytes of manifest")));
    }
    let json = body.get(HEADER_BYTES..HEADER_BYTES + mlen).ok_or(BackupError::Truncated)?;
    let manifest: Manifest =
        serde_json::from_slice(json).map_err(|e| BackupError::BadManifest(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(BackupError::BadManifest(format!(
            "format {} (this box reads {FORMAT})",
            manifest.format
        )));
    }
    if manifest.files.len() > MAX_FILES {
        return Err(BackupError::BadManifest(format!("{} files", manifest.files.len())));
    }
    let mut seen = std::collections::HashSet::new();
    let mut at = HEADER_BYTES + mlen;
    let mut files = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        if entry.zeros > MAX_ZERO_TAIL {
            return Err(BackupError::BadManifest(format!(
                "{}: zero tail of {} bytes",
                entry.path, entry.zeros
            )));
        }
        if !safe_path(&entry.path) || !seen.insert(entry.path.clone()) {
            return Err(BackupError::BadPath(entry.path.clone()));
        }
        let size = usize::try_from(entry.size).map_err(|_| BackupError::Truncated)?;
        let end = at.checked_add(size).ok_or(BackupError::Truncated)?;
        let data = body.get(at..end).ok_or(BackupError::Truncated)?;
        if hex(&Sha256::digest(data)) != entry.sha256 {
            return Err(BackupError::Corrupt(entry.path.clone()));
        }
        files.push((entry.path.clone(), data));
        at = end;
    }
    if at != body.len() {
        return Err(BackupError::BadManifest("bytes after the last file".into()));
    }
    // A file may not also be a directory of another (`a` and `a/b`).
    for (p, _) in &files {
        let mut prefix = String::new();
        for part in p.split('/') {
            if !prefix.is_empty() && seen.contains(&prefix) {
                return Err(BackupError::BadPath(p.clone()));
            }
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
        }
    }
    Ok(Archive { manifest, files })
}

/// Reads the data directory (and the configuration file) into `(path, bytes)` pairs, sorted.
/// Recordings only when asked. Retries when a file vanishes mid-read (store compaction).
pub fn collect(
    data_dir: &Path,
    config: Option<&Path>,
    recordings: bool,
) -> Result<Vec<DataFile>, BackupError> {
    let mut last = BackupError::Io("no attempt".into());
    for _ in 0..COLLECT_TRIES {
        match collect_once(data_dir, config, recordings) {
            Ok(files) => return Ok(files),
            Err(e @ BackupError::TooLarge(_)) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn collect_once(
    data_dir: &Path,
    config: Option<&Path>,
    recordings: bool,
) -> Result<Vec<DataFile>, BackupError> {
    let mut paths = Vec::new();
    walk(data_dir, data_dir, &mut paths)?;
    paths.sort();
    let mut out = Vec::with_capacity(paths.len() + 1);
    let mut total = 0u64;
    let mut add = |name: String, mut bytes: Vec<u8>| -> Result<(), BackupError> {
        let zeros = cut_zero_tail(&mut bytes);
        total = total.saturating_add(bytes.len() as u64);
        if total > MAX_BACKUP_BYTES {
            return Err(BackupError::TooLarge(total));
        }
        out.push((name, bytes, zeros));
        Ok(())
    };
    if let Some(c) = config {
        let bytes =
            std::fs::read(c).map_err(|e| BackupError::Io(format!("cannot read {}: {e}", c.display())))?;
        add(CONFIG_ENTRY.to_string(), bytes)?;
    }
    for rel in paths {
        if !recordings && (rel == "recordings" || rel.starts_with("recordings/")) {
            continue;
        }
        if !safe_path(&rel) || rel.starts_with("config/") {
            continue;
        }
        let bytes = std::fs::read(data_dir.join(&rel))
            .map_err(|e| BackupError::Io(format!("cannot read {rel}: {e}")))?;
        add(rel, bytes)?;
    }
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), BackupError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| BackupError::Io(format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(|e| BackupError::Io(e.to_string()))?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else { continue };
        let Some(rel) = rel.to_str().map(str::to_string) else { continue };
        let Ok(kind) = entry.file_type() else { continue };
        if NOT_DATA.contains(&rel.as_str()) {
            continue;
        }
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// Makes an archive of the data directory now.
pub fn backup(
    data_dir: &Path,
    config: Option<&Path>,
    recordings: bool,
    now_ms: u64,
) -> Result<Vec<u8>, BackupError> {
    let files = collect(data_dir, config, recordings)?;
    pack(crate::VERSION, now_ms, recordings, &files)
}

/// Checks `bytes` and stages them for [`apply_pending`] at the next start. Returns the
/// manifest of what will be restored.
pub fn stage_restore(data_dir: &Path, bytes: &[u8]) -> Result<Manifest, BackupError> {
    let manifest = unpack(bytes)?.manifest;
    write_atomic(&data_dir.join(RESTORE_PENDING), bytes)
        .map_err(|e| BackupError::Io(format!("cannot stage the restore: {e}")))?;
    let _ = remove_synced(&data_dir.join(RESET_PENDING));
    Ok(manifest)
}

/// Stages a factory reset for the next start.
pub fn stage_factory_reset(data_dir: &Path) -> std::io::Result<()> {
    write_atomic(&data_dir.join(RESET_PENDING), b"wipe the data directory at the next start\n")?;
    remove_synced(&data_dir.join(RESTORE_PENDING))
}

/// What [`apply_pending`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing was pending.
    Nothing,
    /// The data directory was wiped back to defaults.
    FactoryReset,
    /// A backup was restored (`files` files; whether the configuration file was written).
    Restored {
        /// Files written.
        files: usize,
        /// Whether `config/hakoden.toml` went to the configuration path.
        config: bool,
    },
}

/// Applies a staged factory reset or restore. Call at start, before anything opens the data
/// directory or reads the configuration file. A pending file that no longer checks out is
/// removed and reported, never half applied.
pub fn apply_pending(data_dir: &Path, config: Option<&Path>) -> Result<Applied, String> {
    let reset = data_dir.join(RESET_PENDING);
    if reset.exists() {
        wipe(data_dir).map_err(|e| format!("factory reset: {e}"))?;
        remove_synced(&reset).map_err(|e| e.to_string())?;
        return Ok(Applied::FactoryReset);
    }
    let pending = data_dir.join(RESTORE_PENDING);
    let Ok(bytes) = std::fs::read(&pending) else {
        return Ok(Applied::Nothing);
    };
    let archive = match unpack(&bytes) {
        Ok(a) => a,
        Err(e) => {
            let _ = remove_synced(&pending);
            return Err(format!("staged restore dropped: {e}"));
        }
    };
    let staging = data_dir.join(RESTORE_STAGING);
    let _ = std::fs::remove_dir_all(&staging);
    let io = |e: std::io::Error| format!("restore: {e}");
    let mut config_bytes = None;
    let mut count = 0;
    for ((path, data), entry) in archive.files.iter().zip(&archive.manifest.files) {
        if path == CONFIG_ENTRY {
            config_bytes = Some(*data);
            continue;
        }
        let dest = staging.join(path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut f = std::fs::File::create(&dest).map_err(io)?;
        f.write_all(data).map_err(io)?;
        if entry.zeros > 0 {
            // Sparse: the zeros take no space until written.
            f.set_len(data.len() as u64 + entry.zeros).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        count += 1;
    }
    std::fs::create_dir_all(&staging).map_err(io)?;
    wipe(data_dir).map_err(io)?;
    for entry in std::fs::read_dir(&staging).map_err(io)? {
        let entry = entry.map_err(io)?;
        std::fs::rename(entry.path(), data_dir.join(entry.file_name())).map_err(io)?;
    }
    std::fs::remove_dir_all(&staging).map_err(io)?;
    let mut wrote_config = false;
    if let (Some(bytes), Some(path)) = (config_bytes, config) {
        match write_atomic(path, bytes) {
            Ok(()) => wrote_config = true,
            Err(e) => log::warn!("restore: configuration not written to {}: {e}", path.display()),
        }
    }
    sync_dir(&data_dir.join("x")).map_err(io)?;
    remove_synced(&pending).map_err(io)?;
    Ok(Applied::Restored { files: count, config: wrote_config })
}

/// Removes every data entry of the data directory (not the staging files).
fn wipe(data_dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(data_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if NOT_DATA.iter().any(|n| name == std::ffi::OsStr::new(n)) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    sync_dir(&data_dir.join("x"))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
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

/// `backup FILE` on the console (without recordings when they would not fit).
pub fn console_backup(data_dir: &Path, config: Option<&Path>, path: &str) -> String {
    let out = Path::new(path);
    if out.starts_with(data_dir) {
        return format!("error: {path} is inside the data directory; write the backup elsewhere (e.g. /tmp)");
    }
    let made = backup(data_dir, config, true, crate::update::wall_ms())
        .or_else(|_| backup(data_dir, config, false, crate::update::wall_ms()));
    match made {
        Ok(bytes) => match write_atomic(out, &bytes) {
            Ok(()) => {
                let n = unpack(&bytes).map(|a| a.files.len()).unwrap_or(0);
                format!("backup written to {path}: {n} files, {} bytes", bytes.len())
            }
            Err(e) => format!("error: cannot write {path}: {e}"),
        },
        Err(e) => format!("error: {e}"),
    }
}

/// `restore FILE` on the console.
pub fn console_restore(data_dir: &Path, path: &str) -> String {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_BACKUP_BYTES => return format!("error: {}", BackupError::TooLarge(m.len())),
        Ok(_) => {}
        Err(e) => return format!("error: cannot read {path}: {e}"),
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return format!("error: cannot read {path}: {e}"),
    };
    match stage_restore(data_dir, &bytes) {
        Ok(m) => format!(
            "backup of {} ({} files) checked; it replaces the data at the next start (reboot now)",
            m.version,
            m.files.len()
        ),
        Err(e) => format!("error: {e}"),
    }
}

/// `factory-reset [confirm]` on the console.
pub fn console_factory_reset(data_dir: &Path, confirmed: bool) -> String {
    if !confirmed {
        return "factory reset erases every extension, voicemail, recording, call record, web user and \
                certificate on this box.\ntype `factory-reset confirm` to do it (it happens at the next start; \
                reboot then)"
            .into();
    }
    match stage_factory_reset(data_dir) {
        Ok(()) => "factory reset staged: the data is wiped at the next start (reboot now)".into(),
        Err(e) => format!("error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<DataFile> {
        vec![
            (CONFIG_ENTRY.to_string(), b"[sip]\nport = 5060\n".to_vec(), 0),
            ("store/journal/0".to_string(), vec![1, 2, 3], 1 << 20),
            ("voicemail/201/1.wav".to_string(), vec![9; 1000], 0),
            ("empty".to_string(), vec![], 0),
        ]
    }

    #[test]
    fn an_archive_round_trips() {
        let a = pack("1.0", 5, false, &files()).expect("pack");
        let u = unpack(&a).expect("unpack");
        assert_eq!(u.manifest.version, "1.0");
        let got: Vec<DataFile> = u
            .files
            .iter()
            .zip(&u.manifest.files)
            .map(|((p, b), e)| (p.to_string(), b.to_vec(), e.zeros))
            .collect();
        assert_eq!(got, files());
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let a = pack("1", 0, false, &files()).expect("pack");
        for i in (0..a.len()).step_by(7) {
            let mut b = a.clone();
            b[i] ^= 0x20;
            assert!(unpack(&b).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_truncated_archive_is_refused_at_every_cut() {
        let a = pack("1", 0, false, &files()).expect("pack");
        for cut in 0..a.len() {
            assert!(unpack(&a[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn paths_that_escape_the_data_directory_are_refused() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "./x",
            "console.sock",
            "restore.pending",
            "a\\b",
            "",
        ] {
            assert!(pack("1", 0, false, &[(bad.to_string(), vec![1], 0)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_crafted_manifest_with_an_evil_path_is_refused_even_with_a_good_checksum() {
        let manifest = Manifest {
            format: FORMAT,
            version: "x".into(),
            created_ms: 0,
            recordings: false,
            files: vec![FileEntry {
                path: "../../x".into(),
                size: 1,
                sha256: hex(&Sha256::digest([7u8])),
                zeros: 0,
            }],
        };
        let json = serde_json::to_vec(&manifest).expect("json");
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&(json.len() as u32).to_be_bytes());
        b.extend_from_slice(&json);
        b.push(7);
        let sum = Sha256::digest(&b);
        b.extend_from_slice(&sum);
        assert_eq!(unpack(&b).map(|_| ()), Err(BackupError::BadPath("../../x".into())));
    }

    #[test]
    fn other_files_are_not_backups() {
        assert_eq!(unpack(b"PK\x03\x04").map(|_| ()), Err(BackupError::NotABackup));
        assert_eq!(unpack(b"").map(|_| ()), Err(BackupError::NotABackup));
    }

    #[test]
    fn backup_restore_and_factory_reset_work_on_a_data_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let cfg = dir.path().join("hakoden.toml");
        std::fs::create_dir_all(data.join("store/p")).expect("mkdir");
        std::fs::create_dir_all(data.join("recordings")).expect("mkdir");
        std::fs::write(data.join("store/p/seg1"), b"store bytes").expect("w");
        // A preallocated journal: a few bytes, then a long zero tail.
        let mut jnl = b"journal".to_vec();
        jnl.resize(1 << 20, 0);
        std::fs::write(data.join("store/0.jnl"), &jnl).expect("w");
        std::fs::write(data.join("recordings/call.wav"), b"RIFF").expect("w");
        std::fs::write(data.join("console.sock"), b"").expect("w");
        std::fs::write(&cfg, b"[sip]\n").expect("w");

        let without = backup(&data, Some(&cfg), false, 1).expect("backup");
        let paths: Vec<String> =
            unpack(&without).expect("ok").files.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(
            paths,
            vec![CONFIG_ENTRY.to_string(), "store/0.jnl".to_string(), "store/p/seg1".to_string()]
        );
        assert!(without.len() < 4096, "the zero tail is not archived: {} bytes", without.len());
        let with = backup(&data, Some(&cfg), true, 1).expect("backup");

        // Change everything, then restore the archive with recordings.
        std::fs::write(data.join("store/p/seg1"), b"changed").expect("w");
        std::fs::write(data.join("store/p/seg2"), b"new").expect("w");
        std::fs::write(&cfg, b"changed").expect("w");
        stage_restore(&data, &with).expect("stage");
        assert_eq!(
            std::fs::read(data.join("store/p/seg1")).expect("r"),
            b"changed",
            "not applied while running"
        );
        std::fs::write(data.join("store/0.jnl"), b"other").expect("w");
        assert_eq!(apply_pending(&data, Some(&cfg)), Ok(Applied::Restored { files: 3, config: true }));
        assert_eq!(std::fs::read(data.join("store/0.jnl")).expect("r"), jnl, "grown back to its length");
        assert_eq!(std::fs::read(data.join("store/p/seg1")).expect("r"), b"store bytes");
        assert!(!data.join("store/p/seg2").exists());
        assert_eq!(std::fs::read(data.join("recordings/call.wav")).expect("r"), b"RIFF");
        assert_eq!(std::fs::read(&cfg).expect("r"), b"[sip]\n");
        assert_eq!(apply_pending(&data, Some(&cfg)), Ok(Applied::Nothing), "applied once");

        assert!(console_factory_reset(&data, false).contains("factory-reset confirm"));
        assert!(!data.join(RESET_PENDING).exists(), "nothing staged without the confirmation");
        console_factory_reset(&data, true);
        assert_eq!(apply_pending(&data, Some(&cfg)), Ok(Applied::FactoryReset));
        assert_eq!(std::fs::read_dir(&data).expect("ls").count(), 1, "only the socket is left");
    }

    #[test]
    fn a_damaged_staged_restore_is_dropped_not_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("keep"), b"1").expect("w");
        std::fs::write(dir.path().join(RESTORE_PENDING), b"HAKOBAK1garbage").expect("w");
        assert!(apply_pending(dir.path(), None).is_err());
        assert!(dir.path().join("keep").exists());
        assert!(!dir.path().join(RESTORE_PENDING).exists());
    }
}
