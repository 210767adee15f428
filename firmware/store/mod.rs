//! The embedded store: the only code that knows the KV engine (fjall).
//!
//! The public interface is: [`Store`], [`StoreError`], [`MAX_CDRS`], [`CdrSink`],
//! [`spawn_cdr_writer`], the writer's limits [`CDR_QUEUE_RECORDS`], [`BATCH_MAX_RECORDS`],
//! [`BATCH_MAX_DELAY`]; for the call-center event log [`QueueEventSink`],
//! [`spawn_queue_event_writer`], [`EventPage`], [`MAX_QUEUE_EVENTS`], [`MAX_EVENTS_PER_READ`],
//! [`EVENT_QUEUE_EVENTS`], [`EVENT_BATCH_MAX`].
//!
//! Layers:
//! - [`Store`]: synchronous, durable operations on the keyspaces below. Every write is one
//!   atomic batch committed with `fdatasync` before the call returns; callers on the async
//!   runtime reach it through [`spawn_cdr_writer`] or `spawn_blocking`.
//! - `writer`: the group-commit tasks (CDRs, queue events). The engine pushes records into a
//!   bounded channel and never waits on flash; the task turns bursts into one commit.
//! - `callcenter`: the queue/agent event log and the reports run over it.
//!
//! Keyspaces (layout and durability are documented in `docs/storage.md`):
//! - `config`: provisioned extensions, key `ext/<number>`, value JSON.
//! - `cdr`: call detail records, key = `call_id` as 8 bytes big-endian (so key order is call
//!   order), value JSON of [`CdrRecord`]; capped at [`MAX_CDRS`], oldest deleted first.
//! - `meta`: small UTF-8 strings (schema version, counters) by name.
//! - `events`: created empty; the call-model event log of later work.
//! - `web`, `web_audit`: web admin users and roles, and the audit log of every change (see
//!   [`web`]).
//! - `queue_events`: the call-center event log, key = `at_ms` + sequence (16 bytes
//!   big-endian), value = the event's JSON line; capped at [`MAX_QUEUE_EVENTS`] (see
//!   `callcenter`).
//! - `phonebook`: phonebook entries by id (see [`phonebook`]).

mod callcenter;
pub mod campaign;
pub mod crm;
pub mod phonebook;
pub mod recordings;
pub mod voicemail;
pub mod web;
mod writer;

pub use callcenter::{EventPage, MAX_EVENTS_PER_READ, MAX_QUEUE_EVENTS};
pub use writer::{
    spawn_campaign_writer, spawn_cdr_writer, spawn_queue_event_writer, CampaignEntrySink, CdrSink,
    QueueEventSink, BATCH_MAX_DELAY, BATCH_MAX_RECORDS, CDR_QUEUE_RECORDS, EVENT_BATCH_MAX,
    EVENT_QUEUE_EVENTS,
};

use crate::config::ExtensionConfig;
use crate::engine::cdr::CdrRecord;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most CDRs kept. A busy 20-seat office makes ~500 calls a day, so this is over six months of
/// history; at ~700 bytes of JSON per record it is ~70 MB before compression, which leaves the
/// data partition room for voicemail and recordings. Beyond it the oldest are deleted.
pub const MAX_CDRS: usize = 100_000;

/// Block cache of the KV engine. The box has little RAM and the hot data (extensions, the last
/// CDRs) is small; fjall's default of 32 MiB is sized for servers.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Journal size before fjall forces memtable flushes. 64 MiB is fjall's minimum; its default
/// (512 MiB) would hold that much unflushed data on a small flash partition.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Longest `meta` key, in bytes: keys are names chosen by the firmware, not data.
const MAX_META_KEY_BYTES: usize = 128;

/// Largest `meta` value, in bytes: meta holds counters and versions, not documents.
const MAX_META_VALUE_BYTES: usize = 64 * 1024;

/// Key prefix of one extension in the `config` keyspace.
const EXT_PREFIX: &str = "ext/";

/// Why a store operation failed. Each variant names what failed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The data directory could not be created or the database not opened.
    Open {
        /// The data directory.
        dir: PathBuf,
        /// The engine's or the OS's reason.
        reason: String,
    },
    /// A read or a durable write failed in the KV engine (I/O error, full or failing flash).
    Engine {
        /// The operation, e.g. `append_cdrs`.
        op: &'static str,
        /// The engine's reason.
        reason: String,
    },
    /// A stored value or key did not decode: corrupt, or written by an incompatible firmware.
    Corrupt {
        /// The keyspace.
        keyspace: &'static str,
        /// The key, printable.
        key: String,
        /// What did not decode.
        reason: String,
    },
    /// The caller asked to store something the store refuses (duplicate, oversized, empty).
    Invalid {
        /// The operation, e.g. `put_extensions`.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Open { dir, reason } => {
                write!(f, "cannot open the store at {}: {reason}", dir.display())
            }
            StoreError::Engine { op, reason } => write!(f, "store {op} failed: {reason}"),
            StoreError::Corrupt { keyspace, key, reason } => {
                write!(f, "corrupt entry {key} in keyspace `{keyspace}`: {reason}")
            }
            StoreError::Invalid { op, reason } => write!(f, "store {op} refused: {reason}"),
        }
    }
}

impl std::error::Error for StoreError {}

fn engine(op: &'static str) -> impl Fn(fjall::Error) -> StoreError {
    move |e| StoreError::Engine { op, reason: e.to_string() }
}

/// The firmware's database. Clones share it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    config: Keyspace,
    cdr: Keyspace,
    meta: Keyspace,
    /// Kept open so the keyspace exists on disk for the event-log work.
    _events: Keyspace,
    /// Retention cap of the `cdr` keyspace.
    cdr_cap: usize,
    /// Serializes CDR appends and carries the record count, so trimming needs no full scan.
    cdr_state: Mutex<CdrState>,
    /// Durable CDR commits since open, for the write-amplification figures.
    cdr_commits: AtomicU64,
    /// Key + value bytes handed to the engine by those commits.
    cdr_bytes: AtomicU64,
    /// The call-center event log.
    queue_events: Keyspace,
    /// Retention cap of `queue_events`.
    event_cap: usize,
    /// Serializes event appends and carries the count and next sequence number.
    event_state: Mutex<callcenter::EventLogState>,
    /// Corrupt event entries skipped (and oversized events refused) since open.
    events_corrupt: AtomicU64,
    /// Durable event commits since open, and their key + value bytes.
    event_commits: AtomicU64,
    event_bytes: AtomicU64,
}

struct CdrState {
    count: usize,
}

/// An extension as stored: a mirror of [`ExtensionConfig`] with serde, so the config type stays
/// free of storage concerns.
#[derive(Serialize, Deserialize)]
struct StoredExtension {
    number: String,
    name: String,
    password: String,
    call_waiting: bool,
    /// Recording policy (`never`, `always`, `on_demand`); absent in stores written before it.
    #[serde(default)]
    record: String,
}

impl Store {
    /// Opens (or creates) the database in `dir`, creating the directory.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with_cap(dir, MAX_CDRS)
    }

    /// [`Store::open`] with another CDR retention cap, for tests of the trimming.
    #[doc(hidden)]
    pub fn open_with_cap(dir: &Path, cap: usize) -> Result<Store, StoreError> {
        Self::open_with_caps(dir, cap, MAX_QUEUE_EVENTS)
    }

    /// [`Store::open`] with other retention caps (CDRs, queue events), for tests of trimming.
    #[doc(hidden)]
    pub fn open_with_caps(dir: &Path, cap: usize, event_cap: usize) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open { dir: dir.to_path_buf(), reason };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(|e| open_err(e.to_string()))?;
        let keyspace = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(|e| open_err(format!("keyspace `{name}`: {e}")))
        };
        let config = keyspace("config")?;
        let cdr = keyspace("cdr")?;
        let meta = keyspace("meta")?;
        let events = keyspace("events")?;
        let queue_events = keyspace("queue_events")?;
        let event_state = callcenter::EventLogState::load(&queue_events, &meta).map_err(open_err)?;
        // One scan at boot; afterwards the count is kept in RAM under the append lock.
        let count = cdr.len().map_err(|e| open_err(format!("counting CDRs: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                config,
                cdr,
                meta,
                _events: events,
                cdr_cap: cap.max(1),
                cdr_state: Mutex::new(CdrState { count }),
                cdr_commits: AtomicU64::new(0),
                cdr_bytes: AtomicU64::new(0),
                queue_events,
                event_cap: event_cap.max(1),
                event_state: Mutex::new(event_state),
                events_corrupt: AtomicU64::new(0),
                event_commits: AtomicU64::new(0),
                event_bytes: AtomicU64::new(0),
            }),
        })
    }

    /// The provisioned extensions, sorted by number.
    pub fn extensions(&self) -> Result<Vec<ExtensionConfig>, StoreError> {
        let mut out = Vec::new();
        for guard in self.inner.config.prefix(EXT_PREFIX) {
            let (key, value) = guard.into_inner().map_err(engine("extensions"))?;
            let stored: StoredExtension =
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    keyspace: "config",
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: e.to_string(),
                })?;
            out.push(ExtensionConfig {
                number: stored.number,
                name: stored.name,
                password: stored.password,
                call_waiting: stored.call_waiting,
                record: crate::config::RecordPolicy::parse(&stored.record).unwrap_or_default(),
            });
        }
        // Key order is byte order ("1000" < "201"); callers want numeric order.
        out.sort_by(|a, b| (a.number.len(), &a.number).cmp(&(b.number.len(), &b.number)));
        Ok(out)
    }

    /// Replaces the whole set of extensions in one atomic, durable batch.
    pub fn put_extensions(&self, exts: &[ExtensionConfig]) -> Result<(), StoreError> {
        let mut new: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for ext in exts {
            if ext.number.is_empty() {
                return Err(StoreError::Invalid {
                    op: "put_extensions",
                    reason: "an extension has an empty number".into(),
                });
            }
            let stored = StoredExtension {
                number: ext.number.clone(),
                name: ext.name.clone(),
                password: ext.password.clone(),
                call_waiting: ext.call_waiting,
                record: ext.record.as_str().to_string(),
            };
            let value = serde_json::to_vec(&stored)
                .map_err(|e| StoreError::Invalid { op: "put_extensions", reason: e.to_string() })?;
            if new.insert(format!("{EXT_PREFIX}{}", ext.number), value).is_some() {
                return Err(StoreError::Invalid {
                    op: "put_extensions",
                    reason: format!("extension {} appears twice", ext.number),
                });
            }
        }
        let mut batch = self.inner.db.batch().durability(Some(PersistMode::SyncData));
        for guard in self.inner.config.prefix(EXT_PREFIX) {
            let key = guard.key().map_err(engine("put_extensions"))?;
            let stale = std::str::from_utf8(&key).map_or(true, |k| !new.contains_key(k));
            if stale {
                batch.remove(&self.inner.config, key);
            }
        }
        let mut bytes = 0;
        for (key, value) in new {
            bytes += key.len() + value.len();
            batch.insert(&self.inner.config, key, value);
        }
        batch.commit().map_err(engine("put_extensions"))?;
        log::debug!("store: extensions replaced ({} extensions, {bytes} bytes)", exts.len());
        Ok(())
    }

    /// A `meta` value by name.
    pub fn meta_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let Some(value) = self.inner.meta.get(key).map_err(engine("meta_get"))? else {
            return Ok(None);
        };
        String::from_utf8(value.to_vec()).map(Some).map_err(|e| StoreError::Corrupt {
            keyspace: "meta",
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    /// Writes a `meta` value durably.
    pub fn meta_put(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if key.is_empty() || key.len() > MAX_META_KEY_BYTES {
            return Err(StoreError::Invalid {
                op: "meta_put",
                reason: format!("key must be 1..={MAX_META_KEY_BYTES} bytes"),
            });
        }
        if value.len() > MAX_META_VALUE_BYTES {
            return Err(StoreError::Invalid {
                op: "meta_put",
                reason: format!("value of `{key}` exceeds {MAX_META_VALUE_BYTES} bytes"),
            });
        }
        let mut batch = self.inner.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.inner.meta, key, value);
        batch.commit().map_err(engine("meta_put"))
    }

    /// Appends CDRs in one batch with one durable commit. Beyond the retention cap the oldest
    /// records are deleted in the same batch, and a warning is logged once per trim.
    pub fn append_cdrs(&self, recs: &[CdrRecord]) -> Result<(), StoreError> {
        if recs.is_empty() {
            return Ok(());
        }
        let mut state = self.cdr_state();
        let cdr = &self.inner.cdr;
        // Last record wins when one call id comes twice; the map also gives key order.
        let mut new: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for rec in recs {
            let value = serde_json::to_vec(rec).map_err(|e| StoreError::Invalid {
                op: "append_cdrs",
                reason: format!("call {}: {e}", rec.call_id),
            })?;
            new.insert(rec.call_id, value);
        }
        let mut added = 0;
        for id in new.keys() {
            if !cdr.contains_key(id.to_be_bytes()).map_err(engine("append_cdrs"))? {
                added += 1;
            }
        }
        let total = state.count + added;
        let excess = total.saturating_sub(self.inner.cdr_cap);
        let doomed = if excess > 0 { self.oldest_cdr_ids(&new, excess)? } else { Vec::new() };

        let mut batch = self.inner.db.batch().durability(Some(PersistMode::SyncData));
        let mut bytes = 0;
        for id in &doomed {
            // A doomed id of this very batch is simply not written.
            if new.remove(id).is_none() {
                batch.remove(cdr, id.to_be_bytes());
                bytes += 8;
            }
        }
        for (id, value) in new {
            bytes += 8 + value.len();
            batch.insert(cdr, id.to_be_bytes(), value);
        }
        batch.commit().map_err(engine("append_cdrs"))?;
        state.count = total - doomed.len();
        self.inner.cdr_commits.fetch_add(1, Ordering::Relaxed);
        self.inner.cdr_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        log::debug!("store: {} CDRs committed, {bytes} bytes written, {} trimmed", recs.len(), doomed.len());
        if let (Some(first), Some(last)) = (doomed.first(), doomed.last()) {
            log::warn!(
                "alarm: CDR retention cap {} reached: deleted {} oldest records (calls {first}..={last})",
                self.inner.cdr_cap,
                doomed.len()
            );
        }
        Ok(())
    }

    /// The `n` smallest call ids among the stored records and `new`, ascending.
    fn oldest_cdr_ids(&self, new: &BTreeMap<u64, Vec<u8>>, n: usize) -> Result<Vec<u64>, StoreError> {
        let mut stored = Vec::with_capacity(n);
        for guard in self.inner.cdr.iter() {
            if stored.len() == n {
                break;
            }
            let key = guard.key().map_err(engine("append_cdrs"))?;
            let id = cdr_id(&key)?;
            // Overwritten ids are counted once, on the `new` side.
            if !new.contains_key(&id) {
                stored.push(id);
            }
        }
        let mut all: Vec<u64> = stored.into_iter().chain(new.keys().copied()).collect();
        all.sort_unstable();
        all.truncate(n);
        Ok(all)
    }

    /// Up to `limit` CDRs, newest first.
    pub fn recent_cdrs(&self, limit: usize) -> Result<Vec<CdrRecord>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for guard in self.inner.cdr.iter().rev().take(limit) {
            let (key, value) = guard.into_inner().map_err(engine("recent_cdrs"))?;
            let rec = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                keyspace: "cdr",
                key: format!("{:?}", cdr_id(&key)),
                reason: e.to_string(),
            })?;
            out.push(rec);
        }
        Ok(out)
    }

    /// The CDR of call `call_id`, if still stored (recordings are matched to their call).
    pub fn cdr(&self, call_id: u64) -> Result<Option<CdrRecord>, StoreError> {
        let Some(value) = self.inner.cdr.get(call_id.to_be_bytes()).map_err(engine("cdr"))? else {
            return Ok(None);
        };
        serde_json::from_slice(&value).map(Some).map_err(|e| StoreError::Corrupt {
            keyspace: "cdr",
            key: call_id.to_string(),
            reason: e.to_string(),
        })
    }

    /// The highest stored call id, 0 when there is none.
    pub fn last_call_id(&self) -> Result<u64, StoreError> {
        match self.inner.cdr.last_key_value() {
            None => Ok(0),
            Some(guard) => cdr_id(&guard.key().map_err(engine("last_call_id"))?),
        }
    }

    /// How many CDRs are stored.
    pub fn cdr_count(&self) -> Result<usize, StoreError> {
        Ok(self.cdr_state().count)
    }

    /// `(commits, bytes)` of CDR batches since open: the logical bytes handed to the engine
    /// (keys + JSON values), before fjall's journal framing and compression.
    #[doc(hidden)]
    pub fn cdr_write_stats(&self) -> (u64, u64) {
        (self.inner.cdr_commits.load(Ordering::Relaxed), self.inner.cdr_bytes.load(Ordering::Relaxed))
    }

    fn cdr_state(&self) -> MutexGuard<'_, CdrState> {
        // A panic while holding the lock cannot leave the count half-updated: it is assigned
        // only after a successful commit. So the poisoned value is still right.
        self.inner.cdr_state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn cdr_id(key: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(key).map(u64::from_be_bytes).map_err(|_| StoreError::Corrupt {
        keyspace: "cdr",
        key: format!("{key:02x?}"),
        reason: "key is not 8 bytes".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdr_keys_sort_in_call_order() {
        let keys: Vec<[u8; 8]> = [1u64, 255, 256, 70_000].iter().map(|i| i.to_be_bytes()).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(cdr_id(&keys[2]).ok(), Some(256));
    }

    #[test]
    fn a_short_cdr_key_is_reported_as_corrupt() {
        assert!(matches!(cdr_id(&[1, 2, 3]), Err(StoreError::Corrupt { keyspace: "cdr", .. })));
    }

    #[test]
    fn meta_refuses_oversized_keys_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.meta_put("", "x").is_err());
        assert!(store.meta_put(&"k".repeat(MAX_META_KEY_BYTES + 1), "x").is_err());
        assert!(store.meta_put("k", &"v".repeat(MAX_META_VALUE_BYTES + 1)).is_err());
        store.meta_put("k", "v").unwrap();
        assert_eq!(store.meta_get("k").unwrap().as_deref(), Some("v"));
        assert_eq!(store.meta_get("missing").unwrap(), None);
    }
}
