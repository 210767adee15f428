//! The store keeps what it acknowledged across reopen, orders and trims CDRs, and the CDR writer
//! batches commits and drains on shutdown.
use hakoden::config::ExtensionConfig;
use hakoden::engine::cdr::{CdrRecord, Disposition, HangupSide, LegRecord};
use hakoden::store::{spawn_cdr_writer, Store, BATCH_MAX_DELAY, BATCH_MAX_RECORDS};
use std::time::Duration;

fn ext(number: &str, name: &str) -> ExtensionConfig {
    ExtensionConfig {
        number: number.into(),
        name: name.into(),
        password: format!("pass-{number}-word"),
        call_waiting: number != "203",
        record: Default::default(),
    }
}

fn cdr(call_id: u64) -> CdrRecord {
    let start = 1_790_000_000_000 + call_id * 60_000;
    CdrRecord {
        call_id,
        from: "201".into(),
        to: "202".into(),
        start_ms: start,
        ring_ms: Some(start + 100),
        answer_ms: Some(start + 3_000),
        end_ms: start + 33_000,
        disposition: Disposition::Answered,
        ring_duration_ms: 3_000,
        talk_duration_ms: 30_000,
        total_duration_ms: 33_000,
        hangup_side: HangupSide::Caller,
        cause: "BYE".into(),
        final_status: 200,
        legs: vec![LegRecord {
            leg: "a".into(),
            sip_call_id: format!("abc{call_id}@127.0.0.1"),
            peer: "udp:127.0.0.1:5070".into(),
            start_ms: start,
            ring_ms: Some(start + 100),
            answer_ms: Some(start + 3_000),
            end_ms: start + 33_000,
            final_status: 200,
            disposition: Disposition::Answered,
        }],
        recordings: Vec::new(),
        trunk: None,
        did: None,
        rewires: Vec::new(),
    }
}

fn ids(recs: &[CdrRecord]) -> Vec<u64> {
    recs.iter().map(|r| r.call_id).collect()
}

#[test]
fn open_creates_the_directory_and_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/store");
    let store = Store::open(&path).unwrap();
    assert!(path.is_dir());
    assert_eq!(store.extensions().unwrap(), vec![]);
    assert_eq!(store.last_call_id().unwrap(), 0);
    assert_eq!(store.cdr_count().unwrap(), 0);
    assert!(store.recent_cdrs(10).unwrap().is_empty());
    assert_eq!(store.meta_get("schema").unwrap(), None);
}

#[test]
fn open_on_a_file_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let e = Store::open(&file.join("sub")).err().expect("opened under a file");
    assert!(e.to_string().contains("not-a-dir"), "{e}");
}

#[test]
fn reopen_after_drop_keeps_extensions_meta_and_cdrs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_extensions(&[ext("202", "Sales"), ext("201", "Reception")]).unwrap();
        store.meta_put("schema", "1").unwrap();
        store.append_cdrs(&[cdr(1), cdr(2), cdr(3)]).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.extensions().unwrap(), vec![ext("201", "Reception"), ext("202", "Sales")]);
    assert_eq!(store.meta_get("schema").unwrap().as_deref(), Some("1"));
    assert_eq!(store.cdr_count().unwrap(), 3);
    assert_eq!(store.last_call_id().unwrap(), 3);
    assert_eq!(store.recent_cdrs(1).unwrap(), vec![cdr(3)]);
}

#[test]
fn put_extensions_replaces_the_whole_set_sorted_by_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_extensions(&[ext("201", "a"), ext("202", "b"), ext("203", "c")]).unwrap();
    store.put_extensions(&[ext("1000", "big"), ext("203", "c2"), ext("30", "short")]).unwrap();
    let got = store.extensions().unwrap();
    let numbers: Vec<&str> = got.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, ["30", "203", "1000"]);
    assert_eq!(got[1], ext("203", "c2"));
    assert!(!got[1].call_waiting);
    store.put_extensions(&[]).unwrap();
    assert!(store.extensions().unwrap().is_empty());
}

#[test]
fn put_extensions_refuses_duplicates_and_keeps_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_extensions(&[ext("201", "a")]).unwrap();
    let e = store.put_extensions(&[ext("202", "b"), ext("202", "c")]).unwrap_err();
    assert!(e.to_string().contains("202"), "{e}");
    assert_eq!(store.extensions().unwrap(), vec![ext("201", "a")]);
}

#[test]
fn cdrs_come_back_newest_first_in_call_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Ids that sort wrongly as text or as little-endian bytes.
    store.append_cdrs(&[cdr(256), cdr(9), cdr(1)]).unwrap();
    store.append_cdrs(&[cdr(10), cdr(70_000)]).unwrap();
    assert_eq!(ids(&store.recent_cdrs(100).unwrap()), [70_000, 256, 10, 9, 1]);
    assert_eq!(ids(&store.recent_cdrs(2).unwrap()), [70_000, 256]);
    assert!(store.recent_cdrs(0).unwrap().is_empty());
    assert_eq!(store.last_call_id().unwrap(), 70_000);
    assert_eq!(store.cdr_count().unwrap(), 5);
}

#[test]
fn rewriting_a_call_id_replaces_it_and_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append_cdrs(&[cdr(1), cdr(2)]).unwrap();
    let mut again = cdr(2);
    again.cause = "CANCEL".into();
    store.append_cdrs(&[again.clone(), again.clone()]).unwrap();
    assert_eq!(store.cdr_count().unwrap(), 2);
    assert_eq!(store.recent_cdrs(1).unwrap(), vec![again]);
}

#[test]
fn retention_deletes_the_oldest_beyond_the_cap_in_the_same_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_cap(dir.path(), 5).unwrap();
    store.append_cdrs(&(1..=4).map(cdr).collect::<Vec<_>>()).unwrap();
    assert_eq!(store.cdr_count().unwrap(), 4);
    store.append_cdrs(&(5..=7).map(cdr).collect::<Vec<_>>()).unwrap();
    assert_eq!(store.cdr_count().unwrap(), 5);
    assert_eq!(ids(&store.recent_cdrs(100).unwrap()), [7, 6, 5, 4, 3]);

    // A batch larger than the cap keeps only its newest.
    store.append_cdrs(&(8..=20).map(cdr).collect::<Vec<_>>()).unwrap();
    assert_eq!(ids(&store.recent_cdrs(100).unwrap()), [20, 19, 18, 17, 16]);
    assert_eq!(store.cdr_count().unwrap(), 5);
    drop(store);

    // The count survives reopen, and trimming continues from it.
    let store = Store::open_with_cap(dir.path(), 5).unwrap();
    assert_eq!(store.cdr_count().unwrap(), 5);
    store.append_cdrs(&[cdr(21)]).unwrap();
    assert_eq!(ids(&store.recent_cdrs(100).unwrap()), [21, 20, 19, 18, 17]);
}

#[test]
fn a_late_old_record_beyond_the_cap_is_the_one_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with_cap(dir.path(), 3).unwrap();
    store.append_cdrs(&[cdr(10), cdr(11), cdr(12)]).unwrap();
    store.append_cdrs(&[cdr(2)]).unwrap();
    assert_eq!(ids(&store.recent_cdrs(100).unwrap()), [12, 11, 10]);
    assert_eq!(store.cdr_count().unwrap(), 3);
}

#[test]
fn clones_share_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path()).unwrap();
    let b = a.clone();
    a.append_cdrs(&[cdr(1)]).unwrap();
    b.meta_put("k", "v").unwrap();
    assert_eq!(b.cdr_count().unwrap(), 1);
    assert_eq!(a.meta_get("k").unwrap().as_deref(), Some("v"));
}

#[test]
fn logical_bytes_per_cdr_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append_cdrs(&(1..=10).map(cdr).collect::<Vec<_>>()).unwrap();
    let (commits, bytes) = store.cdr_write_stats();
    assert_eq!(commits, 1);
    let per_call = bytes / 10;
    eprintln!("logical bytes per CDR (1 leg): {per_call}");
    assert!((300..2_000).contains(&per_call), "{per_call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_batches_a_burst_into_few_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (sink, handle) = spawn_cdr_writer(store.clone());
    let n = 3 * BATCH_MAX_RECORDS as u64 + 7;
    for id in 1..=n {
        assert!(sink.push(cdr(id)));
    }
    drop(sink);
    tokio::time::timeout(Duration::from_secs(30), handle).await.unwrap().unwrap();
    assert_eq!(store.cdr_count().unwrap(), n as usize);
    let (commits, _) = store.cdr_write_stats();
    let min = n.div_ceil(BATCH_MAX_RECORDS as u64);
    assert!((min..=min + 2).contains(&commits), "{commits} commits for {n} records");
    assert_eq!(store.last_call_id().unwrap(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_record_waits_for_the_batch_delay_then_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (sink, handle) = spawn_cdr_writer(store.clone());
    assert!(sink.push(cdr(1)));
    tokio::time::sleep(BATCH_MAX_DELAY / 5).await;
    assert_eq!(store.cdr_count().unwrap(), 0, "committed before the batch delay");
    let mut waited = Duration::ZERO;
    while store.cdr_count().unwrap() == 0 {
        assert!(waited < Duration::from_secs(10), "never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    assert_eq!(store.cdr_write_stats().0, 1);
    assert!(!handle.is_finished(), "the writer stops only when every sink is gone");
    drop(sink);
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_sink_drains_the_queue_before_the_writer_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (sink, handle) = spawn_cdr_writer(store.clone());
    let other = sink.clone();
    assert!(sink.push(cdr(1)));
    assert!(other.push(cdr(2)));
    drop(sink);
    assert!(!handle.is_finished());
    assert!(other.push(cdr(3)));
    assert_eq!(other.dropped(), 0);
    drop(other);
    tokio::time::timeout(Duration::from_secs(10), handle).await.unwrap().unwrap();
    assert_eq!(ids(&store.recent_cdrs(10).unwrap()), [3, 2, 1]);
    drop(store);
    assert_eq!(Store::open(dir.path()).unwrap().cdr_count().unwrap(), 3);
}

#[test]
fn a_full_queue_refuses_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A current-thread runtime that is never driven: the writer task cannot run, so the
    // queue fills up exactly at its capacity.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (sink, handle) = rt.block_on(async { spawn_cdr_writer(store.clone()) });
    let cap = hakoden::store::CDR_QUEUE_RECORDS as u64;
    for id in 1..=cap {
        assert!(sink.push(cdr(id)), "refused record {id} below capacity");
    }
    assert!(!sink.push(cdr(cap + 1)));
    assert!(!sink.clone().push(cdr(cap + 2)));
    assert_eq!(sink.dropped(), 2);
    // Driving the runtime now drains everything that was accepted.
    drop(sink);
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), handle).await.unwrap().unwrap();
    });
    assert_eq!(store.cdr_count().unwrap(), cap as usize);
}
