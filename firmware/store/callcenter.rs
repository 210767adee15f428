//! The call-center event log (issue 6): the only source of queue and agent reports.
//!
//! Keyspace `queue_events`: key = `at_ms` (8 bytes big-endian) then a store-wide sequence
//! number (8 bytes big-endian), so key order is time order, events of one millisecond keep
//! their arrival order, and a time range is one range scan. Value = the event's JSON line
//! ([`Event::to_json_line`]). The daemon feeds it through the group-commit writer
//! ([`super::spawn_queue_event_writer`]); every batch is one durable commit, like CDRs.
//!
//! Retention is by count, [`MAX_QUEUE_EVENTS`], oldest (smallest key) deleted first in the
//! same batch. Not by age: a wall clock set wrong for a moment (a far-future timestamp) would
//! make an age rule delete the whole history; a count bounds flash use whatever the clock says.
//!
//! The count and the next sequence number live in the `meta` keyspace under [`STATE_KEY`],
//! written in the same atomic batch as the events, so opening the store reads one key instead
//! of scanning millions. When that record is missing or unreadable the keyspace is scanned
//! once to rebuild it.
//!
//! Reading never fails on one bad entry: a value that does not decode, or a key of the wrong
//! length, is skipped, counted in the result and in [`Store::queue_events_corrupt`], and
//! logged once per scan.
use super::{engine, Store, StoreError};
use crate::apps::callcenter::events::{Event, MAX_EVENT_LINE_BYTES};
use crate::apps::callcenter::{Report, ReportBuilder, ReportConfig, ReportQuery};
use fjall::{Keyspace, PersistMode};
use std::sync::atomic::Ordering;

/// Most events kept. A 20-seat queue makes ~500 calls a day at ~10 events each (enter, ring,
/// connect, complete, ACW, state changes): 5,000 a day, so this is over a year of reports
/// (seed 004 compares months). At ~200 bytes of JSON an event it is ~400 MB before
/// compression; beyond it the oldest are deleted.
pub const MAX_QUEUE_EVENTS: usize = 2_000_000;

/// Most events one call of [`Store::queue_events_between`] or [`Store::recent_queue_events`]
/// returns, whatever the caller asks: a reply is held in RAM (~300 bytes an event).
pub const MAX_EVENTS_PER_READ: usize = 10_000;

/// The `meta` record holding `count next_seq` of the log.
pub const STATE_KEY: &str = "queue_events/state";

/// Key length: `at_ms` then the sequence number, both u64 big-endian.
const KEY_BYTES: usize = 16;

/// Count and next sequence number of the log, kept under the append lock.
pub(super) struct EventLogState {
    pub(super) count: usize,
    pub(super) next_seq: u64,
}

impl EventLogState {
    fn encode(&self) -> String {
        format!("{} {}", self.count, self.next_seq)
    }

    fn decode(s: &str) -> Option<EventLogState> {
        let (count, seq) = s.split_once(' ')?;
        Some(EventLogState { count: count.parse().ok()?, next_seq: seq.parse().ok()? })
    }

    /// Reads the state record, or rebuilds it with one scan of the keyspace.
    pub(super) fn load(events: &Keyspace, meta: &Keyspace) -> Result<EventLogState, String> {
        let stored = meta.get(STATE_KEY).map_err(|e| format!("reading {STATE_KEY}: {e}"))?;
        if let Some(state) =
            stored.as_deref().and_then(|v| std::str::from_utf8(v).ok()).and_then(Self::decode)
        {
            return Ok(state);
        }
        if stored.is_some() {
            log::warn!("store: {STATE_KEY} unreadable; counting the queue event log again");
        }
        let mut state = EventLogState { count: 0, next_seq: 0 };
        for guard in events.iter() {
            let key = guard.key().map_err(|e| format!("scanning queue events: {e}"))?;
            state.count += 1;
            if let Some((_, seq)) = split_key(&key) {
                state.next_seq = state.next_seq.max(seq.saturating_add(1));
            }
        }
        Ok(state)
    }
}

/// Events read back, and the entries skipped because they did not decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPage {
    /// In log (time) order.
    pub events: Vec<Event>,
    /// Corrupt entries skipped.
    pub corrupt: u64,
}

fn event_key(at_ms: u64, seq: u64) -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    let (at, sq) = key.split_at_mut(8);
    at.copy_from_slice(&at_ms.to_be_bytes());
    sq.copy_from_slice(&seq.to_be_bytes());
    key
}

fn split_key(key: &[u8]) -> Option<(u64, u64)> {
    let key: &[u8; KEY_BYTES] = key.try_into().ok()?;
    let (at, seq) = key.split_at(8);
    Some((u64::from_be_bytes(at.try_into().ok()?), u64::from_be_bytes(seq.try_into().ok()?)))
}

fn decode(key: &[u8], value: &[u8]) -> Result<Event, String> {
    if split_key(key).is_none() {
        return Err(format!("key {key:02x?} is not {KEY_BYTES} bytes"));
    }
    let line = std::str::from_utf8(value).map_err(|e| format!("value is not UTF-8: {e}"))?;
    Event::from_json_line(line).map_err(|e| format!("{e:?}"))
}

impl Store {
    /// Appends events in one batch with one durable commit, in slice order. Beyond
    /// [`MAX_QUEUE_EVENTS`] the oldest are deleted in the same batch and a warning is logged
    /// per trim. An event whose JSON exceeds the line limit could never be read back, so it is
    /// not written: it is logged, counted as corrupt, and the rest of the batch is kept.
    /// Returns how many events were written.
    pub fn append_queue_events(&self, events: &[Event]) -> Result<usize, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let mut lines = Vec::with_capacity(events.len());
        for e in events {
            let line = e.to_json_line();
            if line.len() > MAX_EVENT_LINE_BYTES {
                self.inner.events_corrupt.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "alarm: queue event at {} ms not stored: {} bytes of JSON, the limit is {MAX_EVENT_LINE_BYTES}",
                    e.at_ms,
                    line.len()
                );
                continue;
            }
            lines.push((e.at_ms, line));
        }
        let mut state = self.event_state();
        let log = &self.inner.queue_events;
        let total = state.count + lines.len();
        let excess = total.saturating_sub(self.inner.event_cap);
        let mut batch = self.inner.db.batch().durability(Some(PersistMode::SyncData));
        let mut bytes = 0;
        // The new keys sort after the stored ones only when the clock moved forward, so the
        // doomed are picked from stored and new keys together.
        let mut new: Vec<([u8; KEY_BYTES], String)> = Vec::with_capacity(lines.len());
        let mut seq = state.next_seq;
        for (at, line) in lines {
            new.push((event_key(at, seq), line));
            seq = seq.wrapping_add(1);
        }
        let mut doomed: Vec<Vec<u8>> = Vec::with_capacity(excess);
        if excess > 0 {
            for guard in log.iter().take(excess) {
                doomed.push(guard.key().map_err(engine("append_queue_events"))?.to_vec());
            }
            doomed.extend(new.iter().map(|(k, _)| k.to_vec()));
            doomed.sort_unstable();
            doomed.truncate(excess);
        }
        for key in &doomed {
            if let Some(i) = new.iter().position(|(k, _)| k.as_slice() == key.as_slice()) {
                // A doomed event of this very batch is simply not written.
                new.remove(i);
            } else {
                batch.remove(log, key.clone());
                bytes += key.len();
            }
        }
        let written = new.len();
        for (key, line) in new {
            bytes += KEY_BYTES + line.len();
            batch.insert(log, key, line);
        }
        let next = EventLogState { count: total - doomed.len(), next_seq: seq };
        batch.insert(&self.inner.meta, STATE_KEY, next.encode());
        batch.commit().map_err(engine("append_queue_events"))?;
        *state = next;
        self.inner.event_commits.fetch_add(1, Ordering::Relaxed);
        self.inner.event_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        log::debug!(
            "store: {written} queue events committed, {bytes} bytes written, {} trimmed",
            doomed.len()
        );
        if !doomed.is_empty() {
            log::warn!(
                "alarm: queue event retention cap {} reached: deleted {} oldest events",
                self.inner.event_cap,
                doomed.len()
            );
        }
        Ok(written)
    }

    /// Streams the events with `from_ms ≤ at_ms < to_ms` to `f` in log order, skipping (and
    /// counting) corrupt entries; returns how many were skipped. Nothing is collected, so a
    /// report over a year of events holds one event at a time.
    pub fn scan_queue_events(
        &self,
        from_ms: u64,
        to_ms: u64,
        mut f: impl FnMut(Event),
    ) -> Result<u64, StoreError> {
        let mut corrupt = 0;
        if from_ms >= to_ms {
            return Ok(0);
        }
        let range = event_key(from_ms, 0)..event_key(to_ms, 0);
        for guard in self.inner.queue_events.range(range) {
            let (key, value) = guard.into_inner().map_err(engine("scan_queue_events"))?;
            match decode(&key, &value) {
                Ok(e) => f(e),
                Err(reason) => {
                    corrupt += 1;
                    if corrupt == 1 {
                        log::warn!("store: corrupt queue event {key:02x?} skipped: {reason}");
                    }
                }
            }
        }
        self.note_corrupt(corrupt);
        Ok(corrupt)
    }

    /// Up to `limit` (at most [`MAX_EVENTS_PER_READ`]) events with `from_ms ≤ at_ms < to_ms`,
    /// the oldest first.
    pub fn queue_events_between(
        &self,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        let limit = limit.min(MAX_EVENTS_PER_READ);
        let mut page = EventPage::default();
        if from_ms >= to_ms || limit == 0 {
            return Ok(page);
        }
        let range = event_key(from_ms, 0)..event_key(to_ms, 0);
        for guard in self.inner.queue_events.range(range) {
            if page.events.len() == limit {
                break;
            }
            let (key, value) = guard.into_inner().map_err(engine("queue_events_between"))?;
            self.push_decoded(&mut page, &key, &value);
        }
        self.note_corrupt(page.corrupt);
        Ok(page)
    }

    /// The newest `n` (at most [`MAX_EVENTS_PER_READ`]) events, in log order (oldest of them
    /// first), like the tail of a log file.
    pub fn recent_queue_events(&self, n: usize) -> Result<EventPage, StoreError> {
        let n = n.min(MAX_EVENTS_PER_READ);
        let mut page = EventPage::default();
        for guard in self.inner.queue_events.iter().rev() {
            if page.events.len() == n {
                break;
            }
            let (key, value) = guard.into_inner().map_err(engine("recent_queue_events"))?;
            self.push_decoded(&mut page, &key, &value);
        }
        page.events.reverse();
        self.note_corrupt(page.corrupt);
        Ok(page)
    }

    /// How many events the log holds.
    pub fn queue_event_count(&self) -> usize {
        self.event_state().count
    }

    /// Corrupt entries skipped by reads (and oversized events refused) since open.
    pub fn queue_events_corrupt(&self) -> u64 {
        self.inner.events_corrupt.load(Ordering::Relaxed)
    }

    /// `(commits, bytes)` of queue event batches since open: logical key + value bytes handed
    /// to the engine, before journal framing and compression.
    #[doc(hidden)]
    pub fn queue_event_write_stats(&self) -> (u64, u64) {
        (self.inner.event_commits.load(Ordering::Relaxed), self.inner.event_bytes.load(Ordering::Relaxed))
    }

    /// Runs a report over the stored events: streams the query's warm-up and window through
    /// one statistics pass. `name` gives agents' display names. Returns the report and the
    /// corrupt entries skipped. Blocking (a year of events is read): call it off the async
    /// workers.
    pub fn queue_report(
        &self,
        query: ReportQuery,
        cfg: ReportConfig,
        name: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Report, u64), StoreError> {
        let mut builder = ReportBuilder::new(query, cfg);
        let (_, end) = query.window_ms(cfg.offset);
        let corrupt = self.scan_queue_events(query.scan_from_ms(cfg.offset), end, |e| builder.push(&e))?;
        Ok((builder.finish(name), corrupt))
    }

    fn push_decoded(&self, page: &mut EventPage, key: &[u8], value: &[u8]) {
        match decode(key, value) {
            Ok(e) => page.events.push(e),
            Err(reason) => {
                page.corrupt += 1;
                if page.corrupt == 1 {
                    log::warn!("store: corrupt queue event {key:02x?} skipped: {reason}");
                }
            }
        }
    }

    fn note_corrupt(&self, n: u64) {
        if n > 0 {
            self.inner.events_corrupt.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn event_state(&self) -> std::sync::MutexGuard<'_, EventLogState> {
        // The state is assigned only after a successful commit, so a poisoned value is right.
        self.inner.event_state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes a raw entry, for tests of corrupt-entry handling.
    #[cfg(test)]
    fn put_raw_event(&self, key: &[u8], value: &[u8]) {
        self.inner.queue_events.insert(key, value).unwrap();
    }
}

#[cfg(test)]
mod tests;
