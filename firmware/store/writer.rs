//! Group commit: the engine must never wait on flash.
//!
//! The engine's driver calls [`CdrSink::push`] (call records) or [`QueueEventSink::push`]
//! (call-center events), which never block: the record goes into a bounded channel or is
//! counted as dropped. One task per kind drains its channel and writes up to a batch of
//! records ([`BATCH_MAX_RECORDS`] CDRs, [`EVENT_BATCH_MAX`] events), or whatever arrived within
//! [`BATCH_MAX_DELAY`] of the first, in one durable commit on the blocking pool. When every
//! sink is dropped the task writes what is left and ends, so a clean shutdown loses nothing
//! that was accepted.
use super::{Store, StoreError};
use crate::apps::callcenter::Event;
use crate::engine::cdr::CdrRecord;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, error::TrySendError};

/// Records waiting for the writer. ~700 bytes each, so at most ~3 MiB of RAM; at a burst of
/// 100 calls ending per second it rides out a 40 s flash stall before dropping.
pub const CDR_QUEUE_RECORDS: usize = 4096;

/// Most records per commit: one `fdatasync` per 64 calls keeps flash writes few under load
/// while a batch stays far below fjall's journal and memtable sizes.
pub const BATCH_MAX_RECORDS: usize = 64;

/// Longest a record waits for companions before its batch is committed: a quarter second is
/// invisible to a technician reading CDRs, and bounds what a power cut can take.
pub const BATCH_MAX_DELAY: Duration = Duration::from_millis(250);

/// Call-center events waiting for the writer. ~300 bytes each in RAM, so at most ~2.5 MiB; a
/// call makes about ten, so at 100 calls ending per second it rides out an 8 s flash stall,
/// and at a busy office's 500 calls an hour it never comes close.
pub const EVENT_QUEUE_EVENTS: usize = 8192;

/// Most events per commit: events are small (~200 bytes of JSON) and come in bursts of ten per
/// call, so a larger batch than for CDRs keeps the `fdatasync`s per call below one.
pub const EVENT_BATCH_MAX: usize = 256;

/// What one writer commits.
trait Record: Send + 'static {
    /// Most records per commit.
    const BATCH: usize;
    /// Name in the logs, e.g. `CDR`.
    const NOUN: &'static str;
    /// The record in an alarm line, e.g. `of call 7`.
    fn describe(&self) -> String;
    /// One durable commit of `batch`.
    fn commit(store: &Store, batch: &[Self]) -> Result<(), StoreError>
    where
        Self: Sized;
}

impl Record for CdrRecord {
    const BATCH: usize = BATCH_MAX_RECORDS;
    const NOUN: &'static str = "CDR";
    fn describe(&self) -> String {
        format!("of call {}", self.call_id)
    }
    fn commit(store: &Store, batch: &[Self]) -> Result<(), StoreError> {
        store.append_cdrs(batch)
    }
}

impl Record for Event {
    const BATCH: usize = EVENT_BATCH_MAX;
    const NOUN: &'static str = "queue event";
    fn describe(&self) -> String {
        format!("at {} ms", self.at_ms)
    }
    fn commit(store: &Store, batch: &[Self]) -> Result<(), StoreError> {
        store.append_queue_events(batch).map(|_| ())
    }
}

impl Record for super::campaign::EntryRecord {
    const BATCH: usize = EVENT_BATCH_MAX;
    const NOUN: &'static str = "campaign entry";
    fn describe(&self) -> String {
        format!("{} of campaign {}", self.id, self.campaign)
    }
    fn commit(store: &Store, batch: &[Self]) -> Result<(), StoreError> {
        store.put_campaign_entries(batch)
    }
}

/// The campaign runner's handle to its writer: every changed entry. Clones feed the same
/// writer.
#[derive(Clone)]
pub struct CampaignEntrySink(Sink<super::campaign::EntryRecord>);

impl CampaignEntrySink {
    /// Queues an entry without waiting; `false` when the queue is full or the writer is gone.
    pub fn push(&self, rec: super::campaign::EntryRecord) -> bool {
        self.0.push(rec)
    }
}

/// Starts the campaign entry writer; like [`spawn_cdr_writer`].
pub fn spawn_campaign_writer(store: Store) -> (CampaignEntrySink, tokio::task::JoinHandle<()>) {
    let (sink, handle) = spawn(store, EVENT_QUEUE_EVENTS);
    (CampaignEntrySink(sink), handle)
}

/// A bounded channel into one writer task, with its loss counter.
struct Sink<R> {
    tx: mpsc::Sender<R>,
    dropped: Arc<AtomicU64>,
}

impl<R> Clone for Sink<R> {
    fn clone(&self) -> Self {
        Sink { tx: self.tx.clone(), dropped: Arc::clone(&self.dropped) }
    }
}

impl<R: Record> Sink<R> {
    fn push(&self, rec: R) -> bool {
        let (rec, why) = match self.tx.try_send(rec) {
            Ok(()) => return true,
            Err(TrySendError::Full(rec)) => (rec, "queue is full"),
            Err(TrySendError::Closed(rec)) => (rec, "writer has stopped"),
        };
        let lost = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if lost.is_power_of_two() {
            let noun = R::NOUN;
            log::error!("alarm: the {noun} {why}: {noun} {} dropped ({lost} lost so far)", rec.describe());
        }
        false
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn spawn<R: Record>(store: Store, capacity: usize) -> (Sink<R>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    let handle = tokio::spawn(run(store, rx, Arc::clone(&dropped)));
    (Sink { tx, dropped }, handle)
}

/// The engine's handle to the CDR writer. Clones feed the same writer.
#[derive(Clone)]
pub struct CdrSink(Sink<CdrRecord>);

impl CdrSink {
    /// Queues a record without waiting. `false` when the queue is full or the writer is gone:
    /// the record is then counted in [`CdrSink::dropped`] and an error is logged (the first
    /// drop and every power-of-two count after it, so an overload cannot flood the log).
    pub fn push(&self, rec: CdrRecord) -> bool {
        self.0.push(rec)
    }

    /// Records lost so far: refused by [`CdrSink::push`] or failed in a commit.
    pub fn dropped(&self) -> u64 {
        self.0.dropped()
    }
}

/// Starts the CDR writer on the current tokio runtime. The task ends after every [`CdrSink`]
/// is dropped and the queue is written out; await the handle to be sure of it.
pub fn spawn_cdr_writer(store: Store) -> (CdrSink, tokio::task::JoinHandle<()>) {
    let (sink, handle) = spawn(store, CDR_QUEUE_RECORDS);
    (CdrSink(sink), handle)
}

/// The daemon's handle to the call-center event writer: hand it every
/// `engine::Output::QueueEvent`. Clones feed the same writer.
#[derive(Clone)]
pub struct QueueEventSink(Sink<Event>);

impl QueueEventSink {
    /// Queues an event without waiting; `false` when the queue is full or the writer is gone
    /// (then counted in [`QueueEventSink::dropped`] and logged like a dropped CDR).
    pub fn push(&self, event: Event) -> bool {
        self.0.push(event)
    }

    /// Events lost so far: refused by [`QueueEventSink::push`] or failed in a commit.
    pub fn dropped(&self) -> u64 {
        self.0.dropped()
    }
}

/// Starts the call-center event writer on the current tokio runtime; like
/// [`spawn_cdr_writer`], await the handle after dropping every sink.
pub fn spawn_queue_event_writer(store: Store) -> (QueueEventSink, tokio::task::JoinHandle<()>) {
    let (sink, handle) = spawn(store, EVENT_QUEUE_EVENTS);
    (QueueEventSink(sink), handle)
}

async fn run<R: Record>(store: Store, mut rx: mpsc::Receiver<R>, dropped: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(R::BATCH);
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        let deadline = tokio::time::sleep(BATCH_MAX_DELAY);
        tokio::pin!(deadline);
        while batch.len() < R::BATCH {
            tokio::select! {
                rec = rx.recv() => match rec {
                    Some(rec) => batch.push(rec),
                    None => {
                        open = false;
                        break;
                    }
                },
                () = &mut deadline => break,
            }
        }
        commit(&store, std::mem::take(&mut batch), &dropped).await;
    }
    log::debug!("store: {} writer drained and stopped", R::NOUN);
}

async fn commit<R: Record>(store: &Store, recs: Vec<R>, dropped: &AtomicU64) {
    let n = recs.len();
    let store = store.clone();
    // fdatasync blocks for milliseconds on flash: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || R::commit(&store, &recs)).await;
    let reason = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    let lost = dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
    log::error!("alarm: {n} {}s lost, commit failed: {reason} ({lost} lost so far)", R::NOUN);
}
