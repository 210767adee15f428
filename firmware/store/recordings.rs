//! Call recordings on the data partition: where they go, and how they are retired.
//!
//! Layout: `DIR/YYYYMMDD/call-<call id>[-<n>].wav` (UTC date of the call's start), so a day's
//! recordings can be zipped or deleted together (spec seed 002 §3.9: recordings per day).
//!
//! Retention (issue 3, spec seed 001: 30 days): a sweep deletes recordings older than
//! `max_age_days`, then, while the total is over `max_bytes`, the oldest first. The sweep also
//! reads the partition's fill level: at [`ALARM_USED_PERCENT`] or more it reports an alarm.
//! Bytes written are counted so the console can show what recording costs the flash.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Fill level of the data partition that raises the alarm (issue 3: 90 %).
pub const ALARM_USED_PERCENT: u8 = 90;
/// Default age limit (spec seed 001 §call recording: kept 30 days).
pub const DEFAULT_MAX_AGE_DAYS: u32 = 30;
/// Most files a sweep looks at; a larger tree is swept over several runs (bounded work).
pub const MAX_FILES_PER_SWEEP: usize = 200_000;

const DAY_MS: u64 = 86_400_000;

/// What to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Recordings older than this many days are deleted.
    pub max_age_days: u32,
    /// The total size cap; `None` = only the age limit.
    pub max_bytes: Option<u64>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { max_age_days: DEFAULT_MAX_AGE_DAYS, max_bytes: None }
    }
}

/// What a sweep did and found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Files deleted for age.
    pub expired: usize,
    /// Files deleted for the size cap.
    pub evicted: usize,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Recordings left.
    pub files: usize,
    /// Their total size.
    pub total_bytes: u64,
    /// Fill level of the partition holding the recordings, when it could be read.
    pub partition_used_percent: Option<u8>,
    /// True at or above [`ALARM_USED_PERCENT`].
    pub alarm: bool,
}

/// The recordings directory.
#[derive(Debug, Clone)]
pub struct RecordingStore {
    dir: PathBuf,
    policy: RetentionPolicy,
    bytes_written: Arc<AtomicU64>,
}

/// The UTC calendar date of a Unix time in ms, as `YYYYMMDD`.
pub fn yyyymmdd(unix_ms: u64) -> String {
    use crate::apps::timerules::{LocalTime, UtcOffset};
    let d = LocalTime::from_unix_ms(unix_ms, UtcOffset::UTC).date;
    format!("{:04}{:02}{:02}", d.year, d.month, d.day)
}

impl RecordingStore {
    /// Recordings under `dir` (created when missing).
    pub fn open(dir: &Path, policy: RetentionPolicy) -> io::Result<RecordingStore> {
        fs::create_dir_all(dir)?;
        Ok(RecordingStore { dir: dir.to_path_buf(), policy, bytes_written: Arc::default() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new file path for a call's recording (the day folder is created); never an existing
    /// file.
    pub fn path_for(&self, call_id: u64, start_unix_ms: u64) -> io::Result<PathBuf> {
        let day = self.dir.join(yyyymmdd(start_unix_ms));
        fs::create_dir_all(&day)?;
        let mut path = day.join(format!("call-{call_id}.wav"));
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = day.join(format!("call-{call_id}-{n}.wav"));
        }
        Ok(path)
    }

    /// Counts bytes a recorder wrote (for the console and `docs/PERFORMANCE.md`).
    pub fn add_bytes_written(&self, n: u64) {
        self.bytes_written.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes written since start.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// Applies the retention policy at `now_unix_ms` (file times are modification times).
    pub fn sweep(&self, now_unix_ms: u64) -> io::Result<SweepReport> {
        let mut files = self.list()?;
        // Oldest first.
        files.sort_by_key(|f| f.modified_ms);
        let mut report = SweepReport::default();
        let max_age_ms = u64::from(self.policy.max_age_days) * DAY_MS;
        let mut kept = Vec::with_capacity(files.len());
        for f in files {
            if now_unix_ms.saturating_sub(f.modified_ms) > max_age_ms && remove(&f.path) {
                report.expired += 1;
                report.freed_bytes += f.bytes;
            } else {
                kept.push(f);
            }
        }
        let mut total: u64 = kept.iter().map(|f| f.bytes).sum();
        if let Some(cap) = self.policy.max_bytes {
            let mut i = 0;
            while total > cap && i < kept.len() {
                if remove(&kept[i].path) {
                    total -= kept[i].bytes;
                    report.evicted += 1;
                    report.freed_bytes += kept[i].bytes;
                    kept[i].bytes = 0;
                }
                i += 1;
            }
            kept.retain(|f| f.bytes > 0);
        }
        remove_empty_day_dirs(&self.dir);
        report.files = kept.len();
        report.total_bytes = total;
        report.partition_used_percent = used_percent(&self.dir);
        report.alarm = report.partition_used_percent.is_some_and(|p| p >= ALARM_USED_PERCENT);
        if report.alarm {
            log::warn!(
                "ALARM: data partition {}% full ({} recordings, {} bytes)",
                report.partition_used_percent.unwrap_or(0),
                report.files,
                report.total_bytes
            );
        }
        if report.expired + report.evicted > 0 {
            log::info!(
                "recordings: {} expired, {} evicted for the size cap, {} bytes freed",
                report.expired,
                report.evicted,
                report.freed_bytes
            );
        }
        Ok(report)
    }

    fn list(&self) -> io::Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        for day in fs::read_dir(&self.dir)? {
            let Ok(day) = day else { continue };
            if !day.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(entries) = fs::read_dir(day.path()) else { continue };
            for e in entries.flatten() {
                if out.len() >= MAX_FILES_PER_SWEEP {
                    return Ok(out);
                }
                let path = e.path();
                if path.extension().is_none_or(|x| x != "wav") {
                    continue;
                }
                let Ok(meta) = e.metadata() else { continue };
                let modified_ms = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                out.push(FileInfo { path, bytes: meta.len(), modified_ms });
            }
        }
        Ok(out)
    }
}

#[derive(Debug)]
struct FileInfo {
    path: PathBuf,
    bytes: u64,
    modified_ms: u64,
}

fn remove(path: &Path) -> bool {
    match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("cannot delete recording {}: {e}", path.display());
            false
        }
    }
}

fn remove_empty_day_dirs(dir: &Path) {
    let Ok(days) = fs::read_dir(dir) else { return };
    for d in days.flatten() {
        // Fails (and is meant to) when the folder still holds files.
        let _ = fs::remove_dir(d.path());
    }
}

/// Used space of the filesystem holding `dir`, in percent.
fn used_percent(dir: &Path) -> Option<u8> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let total = st.f_blocks.checked_mul(st.f_frsize)?;
    if total == 0 {
        return None;
    }
    let avail = st.f_bavail.saturating_mul(st.f_frsize);
    let used = total.saturating_sub(avail);
    Some(((used as u128 * 100) / total as u128).min(100) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn touch(path: &Path, bytes: usize, age_days: u64) {
        fs::write(path, vec![0u8; bytes]).unwrap();
        let t = SystemTime::now() - Duration::from_secs(age_days * 86_400);
        fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
    }

    fn now_ms() -> u64 {
        SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    }

    #[test]
    fn dates_are_utc_calendar_days() {
        assert_eq!(yyyymmdd(0), "19700101");
        assert_eq!(yyyymmdd(1_795_305_600_000), "20261122");
        assert_eq!(yyyymmdd(951_782_400_000), "20000229");
    }

    #[test]
    fn paths_are_per_day_and_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordingStore::open(dir.path(), RetentionPolicy::default()).unwrap();
        let p = store.path_for(7, 1_795_305_600_000).unwrap();
        assert!(p.ends_with("20261122/call-7.wav"));
        fs::write(&p, b"x").unwrap();
        assert!(store.path_for(7, 1_795_305_600_000).unwrap().ends_with("20261122/call-7-2.wav"));
    }

    #[test]
    fn the_sweep_deletes_old_recordings_then_the_oldest_over_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let policy = RetentionPolicy { max_age_days: 30, max_bytes: Some(2500) };
        let store = RecordingStore::open(dir.path(), policy).unwrap();
        let day = dir.path().join("20261001");
        fs::create_dir_all(&day).unwrap();
        touch(&day.join("call-1.wav"), 1000, 40); // too old
        touch(&day.join("call-2.wav"), 1000, 3); // oldest within age: evicted for the cap
        touch(&day.join("call-3.wav"), 1000, 2);
        touch(&day.join("call-4.wav"), 1000, 1);
        touch(&day.join("notes.txt"), 10, 100); // not a recording: left alone
        let r = store.sweep(now_ms()).unwrap();
        assert_eq!((r.expired, r.evicted, r.files, r.total_bytes), (1, 1, 2, 2000));
        assert_eq!(r.freed_bytes, 2000);
        assert!(!day.join("call-2.wav").exists() && day.join("call-3.wav").exists());
        assert!(day.join("notes.txt").exists());
        assert!(r.partition_used_percent.is_some());
    }

    #[test]
    fn empty_day_folders_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = RecordingStore::open(dir.path(), RetentionPolicy::default()).unwrap();
        let day = dir.path().join("20250101");
        fs::create_dir_all(&day).unwrap();
        touch(&day.join("call-1.wav"), 10, 400);
        store.sweep(now_ms()).unwrap();
        assert!(!day.exists());
    }
}
