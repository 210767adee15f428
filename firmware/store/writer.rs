//! CDR group commit: the engine must never wait on flash.
//!
//! The engine's driver calls [`CdrSink::push`], which never blocks: the record goes into a
//! bounded channel or is counted as dropped. One task drains the channel and writes up to
//! [`BATCH_MAX_RECORDS`] records, or whatever arrived within [`BATCH_MAX_DELAY`] of the first,
//! in one durable commit on the blocking pool. When every sink is dropped the task writes what
//! is left and ends, so a clean shutdown loses nothing that was accepted.
use super::Store;
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

/// The engine's handle to the CDR writer. Clones feed the same writer.
#[derive(Clone)]
pub struct CdrSink {
    tx: mpsc::Sender<CdrRecord>,
    dropped: Arc<AtomicU64>,
}

impl CdrSink {
    /// Queues a record without waiting. `false` when the queue is full or the writer is gone:
    /// the record is then counted in [`CdrSink::dropped`] and an error is logged (the first
    /// drop and every power-of-two count after it, so an overload cannot flood the log).
    pub fn push(&self, rec: CdrRecord) -> bool {
        let (call_id, why) = match self.tx.try_send(rec) {
            Ok(()) => return true,
            Err(TrySendError::Full(rec)) => (rec.call_id, "the CDR queue is full"),
            Err(TrySendError::Closed(rec)) => (rec.call_id, "the CDR writer has stopped"),
        };
        let lost = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if lost.is_power_of_two() {
            log::error!("alarm: {why}: CDR of call {call_id} dropped ({lost} lost so far)");
        }
        false
    }

    /// Records lost so far: refused by [`CdrSink::push`] or failed in a commit.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the CDR writer on the current tokio runtime. The task ends after every [`CdrSink`]
/// is dropped and the queue is written out; await the handle to be sure of it.
pub fn spawn_cdr_writer(store: Store) -> (CdrSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(CDR_QUEUE_RECORDS);
    let dropped = Arc::new(AtomicU64::new(0));
    let handle = tokio::spawn(run(store, rx, Arc::clone(&dropped)));
    (CdrSink { tx, dropped }, handle)
}

async fn run(store: Store, mut rx: mpsc::Receiver<CdrRecord>, dropped: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(BATCH_MAX_RECORDS);
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        let deadline = tokio::time::sleep(BATCH_MAX_DELAY);
        tokio::pin!(deadline);
        while batch.len() < BATCH_MAX_RECORDS {
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
    log::debug!("store: CDR writer drained and stopped");
}

async fn commit(store: &Store, recs: Vec<CdrRecord>, dropped: &AtomicU64) {
    let n = recs.len();
    let store = store.clone();
    // fdatasync blocks for milliseconds on flash: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || store.append_cdrs(&recs)).await;
    let reason = match result {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    let lost = dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
    log::error!("alarm: {n} CDRs lost, commit failed: {reason} ({lost} lost so far)");
}
