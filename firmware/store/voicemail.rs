//! Voicemail storage: message metadata in the `voicemail` keyspace, audio as WAV files under
//! `<dir>/<box>/`, and the crash-recovery pass run at open.
//!
//! Keys of the `voicemail` keyspace:
//! - `m/<box>/<id as 16 hex digits>`: JSON of [`MessageMeta`].
//! - `next_id`: the next message id, 8 bytes big-endian (written with each message, so an id
//!   is never handed out twice, even after the message is deleted).
//!
//! Files in `<dir>/<box>/`: `vmail_*.wav` (messages, named by
//! [`crate::apps::voicemail::mailbox::message_file_name`]), `greeting_<kind>.wav`, and `*.part`
//! while something is being recorded.
//!
//! Order of a message commit (a power cut at any point leaves a whole message or none):
//! 1. the recorder writes `<file>.part` ([`VoicemailStore::begin_message`]);
//! 2. [`VoicemailStore::commit_message`] fsyncs it, renames it to `<file>` and fsyncs the
//!    directory;
//! 3. then commits the metadata durably. The message exists from this point.
//!
//! Delete removes the metadata durably first, then the file. [`VoicemailStore::open`] repairs
//! every intermediate state: `.part` files are deleted (1-2), `vmail_*.wav` files no metadata
//! references are deleted (2-3, or a delete cut short), and metadata whose file is missing is
//! dropped. Counts are then computed from the metadata, so MWI and the menus agree after a
//! restart.

use super::{engine, Store, StoreError};
use crate::apps::timerules::UtcOffset;
use crate::apps::voicemail::mailbox::{
    clean_caller, is_message_file_name, message_file_name, BoxNumber, Counts, Folder, GreetingKind,
    GreetingSet, MessageId, MessageMeta, MAX_MESSAGES_PER_BOX,
};
use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Most directory entries the recovery pass looks at per box: a box holds at most
/// [`MAX_MESSAGES_PER_BOX`] messages and 5 greetings; anything far beyond is not ours.
pub const MAX_RECOVERY_FILES_PER_BOX: usize = 4 * MAX_MESSAGES_PER_BOX;

/// Most same-second suffixes tried for one file name (two callers leaving a message to one box
/// in one second get `_2`; a hundred would be an attack or a bug).
const MAX_NAME_SUFFIX: u32 = 100;

/// Largest uploaded greeting, bytes (seed 000: max 100 MB for 3CX; a 5-minute 8 kHz 16-bit
/// greeting is 4.8 MB, so 20 MB is generous and keeps the import's RAM bounded).
pub const MAX_GREETING_UPLOAD_BYTES: usize = 20 * 1024 * 1024;

const MSG_PREFIX: &str = "m/";
const NEXT_ID_KEY: &str = "next_id";
const PART_SUFFIX: &str = ".part";

/// What the recovery pass at open repaired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Messages kept.
    pub messages: usize,
    /// `.part` files deleted (recordings cut by a crash or never committed).
    pub parts_deleted: usize,
    /// Message files without metadata deleted.
    pub orphans_deleted: usize,
    /// Metadata entries dropped because their file is missing.
    pub missing_dropped: usize,
    /// Metadata entries dropped because they did not decode.
    pub corrupt_dropped: usize,
}

/// A message being recorded: where the recorder writes, and what the metadata will say. Hand it
/// to [`VoicemailStore::commit_message`] or [`VoicemailStore::discard`].
#[derive(Debug)]
#[must_use = "a take must be committed or discarded, or its .part file lingers until restart"]
pub struct Take {
    box_no: BoxNumber,
    caller: String,
    caller_name: String,
    received_unix_ms: u64,
    file: String,
    part: PathBuf,
}

impl Take {
    /// The file the recorder writes (G.711 WAV, see `media::audio::recorder`).
    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// The final file name.
    pub fn file_name(&self) -> &str {
        &self.file
    }
}

/// A greeting being recorded from the owner menu.
#[derive(Debug)]
#[must_use = "a greeting take must be committed or discarded"]
pub struct GreetingTake {
    box_no: BoxNumber,
    kind: GreetingKind,
    part: PathBuf,
}

impl GreetingTake {
    /// The file the recorder writes.
    pub fn part_path(&self) -> &Path {
        &self.part
    }

    /// The box it is for.
    pub fn box_no(&self) -> &BoxNumber {
        &self.box_no
    }
}

/// The voicemail part of the store. Clones of [`Store`] share the database; one
/// `VoicemailStore` per process owns the in-RAM index.
pub struct VoicemailStore {
    store: Store,
    ks: Keyspace,
    dir: PathBuf,
    offset: UtcOffset,
    state: Mutex<State>,
}

struct State {
    boxes: BTreeMap<BoxNumber, Vec<MessageMeta>>,
    next_id: u64,
    /// File names handed to takes not yet committed or discarded, so two takes never share one.
    pending: HashSet<(BoxNumber, String)>,
}

fn io_err(op: &'static str) -> impl Fn(io::Error) -> StoreError {
    move |e| StoreError::Engine { op, reason: e.to_string() }
}

fn msg_key(box_no: &BoxNumber, id: MessageId) -> String {
    format!("{MSG_PREFIX}{box_no}/{:016x}", id.0)
}

/// Flushes a directory entry change (create, rename, delete) to the device.
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

impl VoicemailStore {
    /// Opens the `voicemail` keyspace and the audio tree at `dir` (created when missing), and
    /// repairs what a crash left (see the module doc).
    pub fn open(
        store: &Store,
        dir: &Path,
        offset: UtcOffset,
    ) -> Result<(VoicemailStore, RecoveryReport), StoreError> {
        let open_err = |reason: String| StoreError::Open { dir: dir.to_path_buf(), reason };
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
            // The new tree's entry in its parent, durable before any message lands in it.
            let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            sync_dir(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let ks = store
            .inner
            .db
            .keyspace("voicemail", KeyspaceCreateOptions::default)
            .map_err(|e| open_err(format!("keyspace `voicemail`: {e}")))?;
        let mut report = RecoveryReport::default();
        let mut doomed_keys: Vec<Vec<u8>> = Vec::new();
        let mut boxes: BTreeMap<BoxNumber, Vec<MessageMeta>> = BTreeMap::new();
        let mut max_id = 0u64;
        for guard in ks.prefix(MSG_PREFIX) {
            let (key, value) = guard.into_inner().map_err(engine("voicemail open"))?;
            let Ok(meta) = serde_json::from_slice::<MessageMeta>(&value) else {
                log::warn!("voicemail: dropping undecodable entry {}", String::from_utf8_lossy(&key));
                report.corrupt_dropped += 1;
                doomed_keys.push(key.to_vec());
                continue;
            };
            max_id = max_id.max(meta.id.0);
            let path = dir.join(meta.box_no.as_str()).join(&meta.file);
            if meta.file.contains('/') || !is_message_file_name(&meta.file) || !path.is_file() {
                log::warn!(
                    "voicemail: message {} of box {} has no audio file, dropped",
                    meta.id.0,
                    meta.box_no
                );
                report.missing_dropped += 1;
                doomed_keys.push(key.to_vec());
                continue;
            }
            boxes.entry(meta.box_no.clone()).or_default().push(meta);
        }
        let stored_next = match ks.get(NEXT_ID_KEY).map_err(engine("voicemail open"))? {
            Some(v) => <[u8; 8]>::try_from(&v[..]).map(u64::from_be_bytes).unwrap_or(0),
            None => 0,
        };
        if !doomed_keys.is_empty() {
            let mut batch = store.inner.db.batch().durability(Some(PersistMode::SyncData));
            for k in &doomed_keys {
                batch.remove(&ks, k.as_slice());
            }
            batch.commit().map_err(engine("voicemail open"))?;
        }
        for list in boxes.values_mut() {
            list.sort_by_key(|m| (m.received_unix_ms, m.id));
        }
        Self::sweep_files(dir, &boxes, &mut report);
        report.messages = boxes.values().map(Vec::len).sum();
        if report != (RecoveryReport { messages: report.messages, ..RecoveryReport::default() }) {
            log::warn!("voicemail: recovery at open: {report:?}");
        }
        let next_id = stored_next.max(max_id.saturating_add(1)).max(1);
        let vm = VoicemailStore {
            store: store.clone(),
            ks,
            dir: dir.to_path_buf(),
            offset,
            state: Mutex::new(State { boxes, next_id, pending: HashSet::new() }),
        };
        Ok((vm, report))
    }

    /// Deletes `.part` files and message files no metadata references; leaves greetings and
    /// anything it does not recognise alone.
    fn sweep_files(dir: &Path, boxes: &BTreeMap<BoxNumber, Vec<MessageMeta>>, report: &mut RecoveryReport) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(box_no) = name.to_str().and_then(BoxNumber::parse) else { continue };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let referenced: HashSet<&str> =
                boxes.get(&box_no).map(|l| l.iter().map(|m| m.file.as_str()).collect()).unwrap_or_default();
            let Ok(files) = fs::read_dir(entry.path()) else { continue };
            let mut changed = false;
            for f in files.flatten().take(MAX_RECOVERY_FILES_PER_BOX) {
                let Some(fname) = f.file_name().to_str().map(str::to_string) else { continue };
                let doomed = if fname.ends_with(PART_SUFFIX) {
                    report.parts_deleted += 1;
                    true
                } else if is_message_file_name(&fname) && !referenced.contains(fname.as_str()) {
                    report.orphans_deleted += 1;
                    true
                } else {
                    false
                };
                if doomed {
                    if let Err(e) = fs::remove_file(f.path()) {
                        log::warn!("voicemail: cannot delete {}: {e}", f.path().display());
                    }
                    changed = true;
                }
            }
            if changed {
                let _ = sync_dir(&entry.path());
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every mutation assigns RAM state only after its durable commit succeeded, so a
        // poisoned lock still guards consistent data.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn box_dir(&self, box_no: &BoxNumber) -> PathBuf {
        self.dir.join(box_no.as_str())
    }

    /// The audio tree's root.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a message: picks its file name and returns where the recorder writes. Nothing is
    /// stored until [`VoicemailStore::commit_message`].
    pub fn begin_message(
        &self,
        box_no: &BoxNumber,
        caller: &str,
        caller_name: &str,
        received_unix_ms: u64,
    ) -> Result<Take, StoreError> {
        let bdir = self.box_dir(box_no);
        if !bdir.is_dir() {
            fs::create_dir_all(&bdir).map_err(io_err("begin_message"))?;
            // A box's first message: its directory's entry must be durable before a message in
            // it is acknowledged (commit_message syncs only the box directory itself).
            sync_dir(&self.dir).map_err(io_err("begin_message"))?;
        }
        let mut st = self.state();
        let caller = clean_caller(caller);
        for n in 1..=MAX_NAME_SUFFIX {
            let file = message_file_name(&caller, box_no, received_unix_ms, self.offset, n);
            let part = bdir.join(format!("{file}{PART_SUFFIX}"));
            let taken = st.pending.contains(&(box_no.clone(), file.clone()))
                || bdir.join(&file).exists()
                || part.exists();
            if !taken {
                st.pending.insert((box_no.clone(), file.clone()));
                return Ok(Take {
                    box_no: box_no.clone(),
                    caller,
                    caller_name: clean_caller(caller_name),
                    received_unix_ms,
                    file,
                    part,
                });
            }
        }
        Err(StoreError::Invalid { op: "begin_message", reason: format!("no free file name in box {box_no}") })
    }

    /// Stores a recorded take as a new message in the new folder (see the module doc for the
    /// order of writes). The recorder must have finished (header patched) before this call.
    pub fn commit_message(&self, take: Take, duration_ms: u64) -> Result<MessageMeta, StoreError> {
        let result = self.commit_inner(&take, duration_ms);
        self.state().pending.remove(&(take.box_no.clone(), take.file.clone()));
        if result.is_err() {
            let _ = fs::remove_file(&take.part);
        }
        result
    }

    fn commit_inner(&self, take: &Take, duration_ms: u64) -> Result<MessageMeta, StoreError> {
        let op = "commit_message";
        let bdir = self.box_dir(&take.box_no);
        let total = self.state().boxes.get(&take.box_no).map_or(0, Vec::len);
        if total >= MAX_MESSAGES_PER_BOX {
            return Err(StoreError::Invalid {
                op,
                reason: format!("box {} holds {total} messages", take.box_no),
            });
        }
        fs::File::options().write(true).open(&take.part).and_then(|f| f.sync_all()).map_err(io_err(op))?;
        let final_path = bdir.join(&take.file);
        fs::rename(&take.part, &final_path).map_err(io_err(op))?;
        sync_dir(&bdir).map_err(io_err(op))?;
        let mut st = self.state();
        let id = MessageId(st.next_id);
        let meta = MessageMeta {
            id,
            box_no: take.box_no.clone(),
            caller: take.caller.clone(),
            caller_name: take.caller_name.clone(),
            received_unix_ms: take.received_unix_ms,
            duration_ms,
            folder: Folder::New,
            file: take.file.clone(),
        };
        let value =
            serde_json::to_vec(&meta).map_err(|e| StoreError::Invalid { op, reason: e.to_string() })?;
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.ks, msg_key(&meta.box_no, id), value);
        batch.insert(&self.ks, NEXT_ID_KEY, (id.0 + 1).to_be_bytes());
        if let Err(e) = batch.commit() {
            // Not stored: the file must not outlive this (recovery would delete it anyway).
            let _ = fs::remove_file(&final_path);
            return Err(engine(op)(e));
        }
        st.next_id = id.0 + 1;
        let list = st.boxes.entry(meta.box_no.clone()).or_default();
        list.push(meta.clone());
        list.sort_by_key(|m| (m.received_unix_ms, m.id));
        log::info!("voicemail: message {} stored in box {} ({} ms)", id.0, meta.box_no, duration_ms);
        Ok(meta)
    }

    /// Drops a take: deletes its `.part` file.
    pub fn discard(&self, take: Take) {
        self.state().pending.remove(&(take.box_no.clone(), take.file.clone()));
        if let Err(e) = fs::remove_file(&take.part) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!("voicemail: cannot delete {}: {e}", take.part.display());
            }
        }
    }

    /// A box's messages, oldest first.
    pub fn messages(&self, box_no: &BoxNumber) -> Vec<MessageMeta> {
        self.state().boxes.get(box_no).cloned().unwrap_or_default()
    }

    /// A box's counts, from the metadata.
    pub fn counts(&self, box_no: &BoxNumber) -> Counts {
        self.state().boxes.get(box_no).map(Counts::of).unwrap_or_default()
    }

    /// The counts of every box holding messages (for MWI at start).
    pub fn all_counts(&self) -> Vec<(BoxNumber, Counts)> {
        self.state().boxes.iter().map(|(b, l)| (b.clone(), Counts::of(l))).collect()
    }

    /// The path of a message's audio.
    pub fn message_path(&self, meta: &MessageMeta) -> PathBuf {
        self.box_dir(&meta.box_no).join(&meta.file)
    }

    /// Moves a message to another folder. `false` when the box has no such message.
    pub fn set_folder(&self, box_no: &BoxNumber, id: MessageId, folder: Folder) -> Result<bool, StoreError> {
        let mut st = self.state();
        let Some(msg) = st.boxes.get_mut(box_no).and_then(|l| l.iter_mut().find(|m| m.id == id)) else {
            return Ok(false);
        };
        if msg.folder == folder {
            return Ok(true);
        }
        let mut updated = msg.clone();
        updated.folder = folder;
        let value = serde_json::to_vec(&updated)
            .map_err(|e| StoreError::Invalid { op: "set_folder", reason: e.to_string() })?;
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.ks, msg_key(box_no, id), value);
        batch.commit().map_err(engine("set_folder"))?;
        *msg = updated;
        Ok(true)
    }

    /// Deletes a message: metadata first (durable), then the file. `false` when the box has no
    /// such message.
    pub fn delete(&self, box_no: &BoxNumber, id: MessageId) -> Result<bool, StoreError> {
        let mut st = self.state();
        let Some(list) = st.boxes.get_mut(box_no) else { return Ok(false) };
        let Some(at) = list.iter().position(|m| m.id == id) else { return Ok(false) };
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        batch.remove(&self.ks, msg_key(box_no, id));
        batch.commit().map_err(engine("delete"))?;
        let meta = list.remove(at);
        if list.is_empty() {
            st.boxes.remove(box_no);
        }
        drop(st);
        let path = self.box_dir(box_no).join(&meta.file);
        if let Err(e) = fs::remove_file(&path) {
            // The next open deletes it as an orphan.
            log::warn!("voicemail: cannot delete {}: {e}", path.display());
        }
        Ok(true)
    }

    /// The greeting slots of a box that hold a recording.
    pub fn greetings(&self, box_no: &BoxNumber) -> GreetingSet {
        let mut set = GreetingSet::default();
        for k in GreetingKind::ALL {
            if self.greeting_path(box_no, k).is_file() {
                set.insert(k);
            }
        }
        set
    }

    /// The path of a greeting slot (it may not exist).
    pub fn greeting_path(&self, box_no: &BoxNumber, kind: GreetingKind) -> PathBuf {
        self.box_dir(box_no).join(kind.file_name())
    }

    /// Starts recording a greeting from the owner menu.
    pub fn begin_greeting(&self, box_no: &BoxNumber, kind: GreetingKind) -> Result<GreetingTake, StoreError> {
        let bdir = self.box_dir(box_no);
        fs::create_dir_all(&bdir).map_err(io_err("begin_greeting"))?;
        let part = bdir.join(format!("{}{PART_SUFFIX}", kind.file_name()));
        Ok(GreetingTake { box_no: box_no.clone(), kind, part })
    }

    /// Replaces the greeting with a finished take (atomic: the old one plays until the rename).
    pub fn commit_greeting(&self, take: GreetingTake) -> Result<(), StoreError> {
        let op = "commit_greeting";
        let result = (|| {
            fs::File::options().write(true).open(&take.part)?.sync_all()?;
            fs::rename(&take.part, self.greeting_path(&take.box_no, take.kind))?;
            sync_dir(&self.box_dir(&take.box_no))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&take.part);
        }
        result.map_err(io_err(op))
    }

    /// Drops a greeting take.
    pub fn discard_greeting(&self, take: GreetingTake) {
        let _ = fs::remove_file(&take.part);
    }

    /// Stores an uploaded greeting (issue 5: WAV 8 kHz 16-bit mono; other WAVs are converted by
    /// [`crate::media::audio::wav::import_admin_audio`]). Written as 8 kHz 16-bit PCM, atomically.
    pub fn put_greeting_upload(
        &self,
        box_no: &BoxNumber,
        kind: GreetingKind,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.greeting_files().put_upload(box_no, kind, bytes)
    }

    /// Removes a greeting slot's recording (the fallback order then applies).
    pub fn delete_greeting(&self, box_no: &BoxNumber, kind: GreetingKind) -> Result<(), StoreError> {
        self.greeting_files().delete(box_no, kind)
    }

    /// The greeting files alone, to convert and write an upload off the engine's task (greetings
    /// are files only: no metadata, no index).
    pub fn greeting_files(&self) -> GreetingFiles {
        GreetingFiles { dir: self.dir.clone() }
    }
}

/// The greeting files of every box (`greeting_<slot>.wav`), usable from a blocking thread.
#[derive(Debug, Clone)]
pub struct GreetingFiles {
    dir: PathBuf,
}

impl GreetingFiles {
    /// Converts and stores an upload in a slot, atomically (temp file, fsync, rename, fsync of
    /// the directory): the old greeting plays until the new one is whole.
    pub fn put_upload(&self, box_no: &BoxNumber, kind: GreetingKind, bytes: &[u8]) -> Result<(), StoreError> {
        let op = "put_greeting_upload";
        let pcm = crate::media::audio::wav::import_admin_audio(bytes, MAX_GREETING_UPLOAD_BYTES)
            .map_err(|e| StoreError::Invalid { op, reason: e.to_string() })?;
        let bdir = self.dir.join(box_no.as_str());
        fs::create_dir_all(&bdir).map_err(io_err(op))?;
        let part = bdir.join(format!("{}{PART_SUFFIX}", kind.file_name()));
        let wav = crate::media::audio::wav::encode_pcm16_mono_8k(&pcm);
        let result = (|| {
            fs::write(&part, wav)?;
            fs::File::options().write(true).open(&part)?.sync_all()?;
            fs::rename(&part, bdir.join(kind.file_name()))?;
            sync_dir(&bdir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&part);
        }
        result.map_err(io_err(op))
    }

    /// Reads the file at `src` (refused beyond [`MAX_GREETING_UPLOAD_BYTES`] before reading)
    /// and stores it as [`GreetingFiles::put_upload`] does.
    pub fn put_file(&self, box_no: &BoxNumber, kind: GreetingKind, src: &Path) -> Result<(), StoreError> {
        let op = "put_greeting_upload";
        let len = fs::metadata(src).map_err(io_err(op))?.len();
        if len > MAX_GREETING_UPLOAD_BYTES as u64 {
            return Err(StoreError::Invalid {
                op,
                reason: format!(
                    "{len} bytes is over the greeting limit of {MAX_GREETING_UPLOAD_BYTES} bytes"
                ),
            });
        }
        let bytes = fs::read(src).map_err(io_err(op))?;
        self.put_upload(box_no, kind, &bytes)
    }

    /// Removes a slot's recording (the fallback order then applies); a missing one is fine.
    pub fn delete(&self, box_no: &BoxNumber, kind: GreetingKind) -> Result<(), StoreError> {
        match fs::remove_file(self.dir.join(box_no.as_str()).join(kind.file_name())) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete_greeting")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_305_600_000;

    fn b(s: &str) -> BoxNumber {
        BoxNumber::parse(s).unwrap()
    }

    fn open(root: &Path) -> (Store, VoicemailStore, RecoveryReport) {
        let store = Store::open(&root.join("db")).unwrap();
        let (vm, rep) = VoicemailStore::open(&store, &root.join("voicemail"), UtcOffset::JST).unwrap();
        (store, vm, rep)
    }

    fn record(vm: &VoicemailStore, box_no: &str, caller: &str, at: u64) -> MessageMeta {
        let take = vm.begin_message(&b(box_no), caller, "Tanaka", at).unwrap();
        fs::write(
            take.part_path(),
            crate::media::audio::wav::encode_g711_8k(crate::media::audio::g711::Law::Mu, &[0; 8000]),
        )
        .unwrap();
        vm.commit_message(take, 1000).unwrap()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn a_committed_message_survives_a_restart_with_its_counts() {
        let root = tempfile::tempdir().unwrap();
        {
            let (_s, vm, _) = open(root.path());
            let m1 = record(&vm, "201", "0312345678", T0);
            record(&vm, "201", "0312345678", T0 + 1);
            record(&vm, "804", "", T0);
            assert!(vm.set_folder(&b("201"), m1.id, Folder::Old).unwrap());
            assert_eq!(vm.counts(&b("201")), Counts { new: 1, old: 1, work: 0 });
        }
        let (_s, vm, rep) = open(root.path());
        assert_eq!(rep, RecoveryReport { messages: 3, ..RecoveryReport::default() });
        assert_eq!(vm.counts(&b("201")), Counts { new: 1, old: 1, work: 0 });
        assert_eq!(vm.all_counts().len(), 2);
        // Same caller, same second: the second file gets a suffix.
        let names: Vec<String> = vm.messages(&b("201")).into_iter().map(|m| m.file).collect();
        assert_eq!(
            names,
            ["vmail_0312345678_201_20261122090000.wav", "vmail_0312345678_201_20261122090000_2.wav"]
        );
    }

    #[test]
    fn ids_are_never_reused_after_the_newest_is_deleted() {
        let root = tempfile::tempdir().unwrap();
        let first;
        {
            let (_s, vm, _) = open(root.path());
            first = record(&vm, "201", "1", T0).id;
            assert!(vm.delete(&b("201"), first).unwrap());
            assert!(!vm.delete(&b("201"), first).unwrap());
        }
        let (_s, vm, _) = open(root.path());
        assert!(record(&vm, "201", "1", T0).id > first);
        assert_eq!(files(&root.path().join("voicemail/201")).len(), 1);
    }

    // Recovery: one test per intermediate state of a commit and a delete.

    #[test]
    fn recovery_deletes_a_part_file_cut_while_recording() {
        let root = tempfile::tempdir().unwrap();
        {
            let (_s, vm, _) = open(root.path());
            let take = vm.begin_message(&b("201"), "1", "", T0).unwrap();
            fs::write(take.part_path(), b"RIFF half a header").unwrap();
            std::mem::forget(take); // the power fails
        }
        let (_s, vm, rep) = open(root.path());
        assert_eq!((rep.parts_deleted, rep.messages), (1, 0));
        assert!(files(&root.path().join("voicemail/201")).is_empty());
        assert_eq!(vm.counts(&b("201")), Counts::default());
    }

    #[test]
    fn recovery_deletes_a_renamed_file_whose_metadata_was_never_committed() {
        let root = tempfile::tempdir().unwrap();
        {
            let (_s, vm, _) = open(root.path());
            record(&vm, "201", "1", T0);
            // The crash came between the rename and the metadata commit.
            fs::write(root.path().join("voicemail/201/vmail_2_201_20261122090001.wav"), b"x").unwrap();
        }
        let (_s, vm, rep) = open(root.path());
        assert_eq!((rep.orphans_deleted, rep.messages), (1, 1));
        assert_eq!(files(&root.path().join("voicemail/201")), ["vmail_1_201_20261122090000.wav"]);
        assert_eq!(vm.counts(&b("201")).new, 1);
    }

    #[test]
    fn recovery_drops_metadata_whose_file_is_missing() {
        let root = tempfile::tempdir().unwrap();
        {
            let (_s, vm, _) = open(root.path());
            let m = record(&vm, "201", "1", T0);
            record(&vm, "201", "2", T0);
            fs::remove_file(vm.message_path(&m)).unwrap();
        }
        {
            let (_s, vm, rep) = open(root.path());
            assert_eq!((rep.missing_dropped, rep.messages), (1, 1));
            assert_eq!(vm.messages(&b("201"))[0].caller, "2");
        }
        // The drop is durable: a second open finds nothing to repair.
        let (_s, _vm, rep) = open(root.path());
        assert_eq!(rep, RecoveryReport { messages: 1, ..RecoveryReport::default() });
    }

    #[test]
    fn recovery_finishes_a_delete_cut_between_metadata_and_file() {
        let root = tempfile::tempdir().unwrap();
        let path;
        {
            let (_s, vm, _) = open(root.path());
            let m = record(&vm, "201", "1", T0);
            path = vm.message_path(&m);
            let keep = fs::read(&path).unwrap();
            vm.delete(&b("201"), m.id).unwrap();
            fs::write(&path, keep).unwrap(); // as if the unlink never happened
        }
        let (_s, _vm, rep) = open(root.path());
        assert_eq!((rep.orphans_deleted, rep.messages), (1, 0));
        assert!(!path.exists());
    }

    #[test]
    fn recovery_keeps_greetings_and_unknown_files_and_drops_greeting_parts() {
        let root = tempfile::tempdir().unwrap();
        {
            let (_s, vm, _) = open(root.path());
            let g = vm.begin_greeting(&b("201"), GreetingKind::Busy).unwrap();
            fs::write(g.part_path(), b"x").unwrap();
            vm.commit_greeting(g).unwrap();
            let g = vm.begin_greeting(&b("201"), GreetingKind::Default).unwrap();
            fs::write(g.part_path(), b"half").unwrap();
            std::mem::forget(g);
            fs::write(root.path().join("voicemail/201/notes.txt"), b"x").unwrap();
        }
        let (_s, vm, rep) = open(root.path());
        assert_eq!(rep.parts_deleted, 1);
        assert_eq!(files(&root.path().join("voicemail/201")), ["greeting_busy.wav", "notes.txt"]);
        let set = vm.greetings(&b("201"));
        assert!(set.contains(GreetingKind::Busy) && !set.contains(GreetingKind::Default));
    }

    #[test]
    fn recovery_drops_undecodable_metadata() {
        let root = tempfile::tempdir().unwrap();
        {
            let (store, vm, _) = open(root.path());
            record(&vm, "201", "1", T0);
            let mut batch = store.inner.db.batch().durability(Some(PersistMode::SyncData));
            batch.insert(&vm.ks, "m/201/ffff", b"{not json".as_slice());
            batch.commit().unwrap();
        }
        let (_s, _vm, rep) = open(root.path());
        assert_eq!((rep.corrupt_dropped, rep.messages), (1, 1));
    }

    #[test]
    fn after_a_crash_mwi_rebuilt_from_the_store_matches_the_messages() {
        use crate::apps::voicemail::mwi::{MwiOutput, MwiTable};
        let root = tempfile::tempdir().unwrap();
        {
            let (_s, vm, _) = open(root.path());
            let m = record(&vm, "201", "1", T0);
            record(&vm, "201", "2", T0 + 1000);
            vm.set_folder(&b("201"), m.id, Folder::Work).unwrap();
            let take = vm.begin_message(&b("201"), "3", "", T0 + 2000).unwrap();
            fs::write(take.part_path(), b"cut").unwrap();
            std::mem::forget(take);
        }
        let (_s, vm, _) = open(root.path());
        let mut mwi = MwiTable::new("pbx");
        let now = std::time::Instant::now();
        for (box_no, counts) in vm.all_counts() {
            mwi.update_counts(&box_no, counts, now);
        }
        let out: Vec<MwiOutput> = std::iter::from_fn(|| mwi.poll_output()).collect();
        let [MwiOutput::Unsolicited { box_no, body }] = &out[..] else { panic!("{out:?}") };
        assert_eq!(box_no, &b("201"));
        assert!(body.contains("Voice-Message: 1/1 (0/0)"), "{body}");
    }

    #[test]
    fn a_discarded_take_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let (_s, vm, _) = open(root.path());
        let take = vm.begin_message(&b("201"), "1", "", T0).unwrap();
        fs::write(take.part_path(), b"x").unwrap();
        vm.discard(take);
        assert!(files(&root.path().join("voicemail/201")).is_empty());
        assert_eq!(vm.counts(&b("201")), Counts::default());
    }

    #[test]
    fn two_takes_in_one_second_get_different_files() {
        let root = tempfile::tempdir().unwrap();
        let (_s, vm, _) = open(root.path());
        let a = vm.begin_message(&b("201"), "1", "", T0).unwrap();
        let c = vm.begin_message(&b("201"), "1", "", T0).unwrap();
        assert_ne!(a.file_name(), c.file_name());
        vm.discard(a);
        vm.discard(c);
    }

    #[test]
    fn an_uploaded_greeting_must_be_audio() {
        let root = tempfile::tempdir().unwrap();
        let (_s, vm, _) = open(root.path());
        assert!(vm.put_greeting_upload(&b("201"), GreetingKind::Default, b"not a wav").is_err());
        let wav = crate::media::audio::wav::encode_pcm16_mono_8k(&[100; 800]);
        vm.put_greeting_upload(&b("201"), GreetingKind::Default, &wav).unwrap();
        assert_eq!(fs::read(vm.greeting_path(&b("201"), GreetingKind::Default)).unwrap(), wav);
        vm.delete_greeting(&b("201"), GreetingKind::Default).unwrap();
        assert_eq!(vm.greetings(&b("201")), GreetingSet::default());
    }
}
