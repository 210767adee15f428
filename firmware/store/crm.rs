//! CRM storage (issue 9): every [`Record`] of `apps::crm` under its key in the `crm` keyspace
//! as JSON. Each change is one durable write; the whole CRM is read back into RAM at start
//! (its size is bounded by `apps::crm::MAX_*`).

use super::{engine, Store, StoreError};
use crate::apps::crm::{Crm, NextIds, Record};

/// The key of the next ids ([`NextIds`]); outside the record prefixes `load` reads.
const NEXT_IDS_KEY: &str = "meta/next_ids";
use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode};

/// Largest stored record, in bytes: a customer with every field full stays far below; a
/// larger value is corruption.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

/// The `crm` keyspace. Clones share it.
#[derive(Clone)]
pub struct CrmStore {
    store: Store,
    crm: Keyspace,
}

impl CrmStore {
    /// Opens (creating when missing) the keyspace.
    pub fn open(store: &Store) -> Result<CrmStore, StoreError> {
        let crm = store
            .inner
            .db
            .keyspace("crm", KeyspaceCreateOptions::default)
            .map_err(|e| StoreError::Engine { op: "crm open", reason: e.to_string() })?;
        Ok(CrmStore { store: store.clone(), crm })
    }

    /// Stores (creates or replaces) a record, durably.
    pub fn put(&self, record: &Record) -> Result<(), StoreError> {
        let v = serde_json::to_vec(record)
            .map_err(|e| StoreError::Invalid { op: "crm put", reason: e.to_string() })?;
        if v.len() > MAX_RECORD_BYTES {
            return Err(StoreError::Invalid {
                op: "crm put",
                reason: format!("record of {} bytes", v.len()),
            });
        }
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.crm, record.key(), v);
        batch.commit().map_err(engine("crm put"))
    }

    /// Stores `put` and deletes the keys in `delete` in one durable batch: a change that
    /// touches several records (a customer deleted, its cases unlinked; a bulk edit; an
    /// upload) lands whole or not at all.
    /// `next` (the CRM's next ids after the change) is stored in the same batch.
    pub fn write(&self, put: &[Record], delete: &[String], next: NextIds) -> Result<(), StoreError> {
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        let n = serde_json::to_vec(&next)
            .map_err(|e| StoreError::Invalid { op: "crm write", reason: e.to_string() })?;
        batch.insert(&self.crm, NEXT_IDS_KEY, n);
        for record in put {
            let v = serde_json::to_vec(record)
                .map_err(|e| StoreError::Invalid { op: "crm write", reason: e.to_string() })?;
            if v.len() > MAX_RECORD_BYTES {
                return Err(StoreError::Invalid {
                    op: "crm write",
                    reason: format!("record of {} bytes", v.len()),
                });
            }
            batch.insert(&self.crm, record.key(), v);
        }
        for key in delete {
            batch.remove(&self.crm, key.as_str());
        }
        batch.commit().map_err(engine("crm write"))
    }

    /// Deletes the record under `key` (see [`Record::key`]), durably.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        batch.remove(&self.crm, key);
        batch.commit().map_err(engine("crm delete"))
    }

    /// Reads every record into a [`Crm`]. Records that do not decode are skipped and their
    /// keys returned, so one bad entry does not lose the rest (the box raises an alarm).
    pub fn load(&self) -> Result<(Crm, Vec<String>), StoreError> {
        let mut crm = Crm::new();
        let mut bad = Vec::new();
        // Definitions first: records name them.
        let order =
            ["tag/", "format/", "field/", "step/", "workflow/", "customer/", "case/", "faq/", "steplog/"];
        for prefix in order {
            for guard in self.crm.prefix(prefix) {
                let (key, value) = guard.into_inner().map_err(engine("crm load"))?;
                let decoded = (value.len() <= MAX_RECORD_BYTES)
                    .then(|| serde_json::from_slice::<Record>(&value).ok())
                    .flatten();
                match decoded {
                    Some(r) => crm.restore(r),
                    None => bad.push(String::from_utf8_lossy(&key).into_owned()),
                }
            }
        }
        let next = self.crm.get(NEXT_IDS_KEY).map_err(engine("crm load"))?;
        match next.map(|v| serde_json::from_slice::<NextIds>(&v)) {
            Some(Ok(n)) => crm.raise_next_ids(n),
            Some(Err(_)) => bad.push(NEXT_IDS_KEY.to_string()),
            None => {}
        }
        Ok((crm, bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::crm::model::{Customer, Stamp, Tag};

    #[test]
    fn records_survive_a_reopen_and_a_bad_one_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let cs = CrmStore::open(&store).unwrap();
            let mut crm = Crm::new();
            crm.put_tag(Tag { name: "VIP".into(), ..Tag::default() }).unwrap();
            let c = Customer {
                name: "山田".into(),
                phones: vec!["0312345678".into()],
                tags: vec!["VIP".into()],
                ..Customer::default()
            };
            let id = crm.put_customer(c, Stamp { at_ms: 5, by: "admin".into() }, false).unwrap();
            cs.put(&Record::Tag(crm.tags().next().unwrap().clone())).unwrap();
            cs.put(&Record::Customer(crm.customer(id).unwrap().clone())).unwrap();
            let mut batch = store.inner.db.batch();
            batch.insert(&cs.crm, "customer/9999999999999999", b"not json".to_vec());
            batch.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (crm, bad) = CrmStore::open(&store).unwrap().load().unwrap();
        assert_eq!(bad, vec!["customer/9999999999999999".to_string()]);
        assert_eq!(crm.find_by_phone("03-1234-5678")[0].name, "山田");
        let mut crm = crm;
        let next = crm
            .put_customer(Customer { name: "次".into(), ..Customer::default() }, Stamp::default(), false)
            .unwrap();
        assert_eq!(next, 2, "ids go on after the stored ones");
    }

    #[test]
    fn a_deleted_records_id_is_not_handed_out_again_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let cs = CrmStore::open(&store).unwrap();
            let mut crm = Crm::new();
            let a = crm.put_customer(
                Customer { name: "a".into(), ..Customer::default() },
                Stamp::default(),
                false,
            );
            let b = crm.put_customer(
                Customer { name: "b".into(), ..Customer::default() },
                Stamp::default(),
                false,
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            let put: Vec<Record> =
                [a, b].iter().filter_map(|id| crm.customer(*id).cloned()).map(Record::Customer).collect();
            cs.write(&put, &[], crm.next_ids()).unwrap();
            let key = put[1].key();
            crm.delete_customer(b);
            cs.write(&[], &[key], crm.next_ids()).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (mut crm, bad) = CrmStore::open(&store).unwrap().load().unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        let c =
            crm.put_customer(Customer { name: "c".into(), ..Customer::default() }, Stamp::default(), false);
        assert_eq!(c, Ok(3));
    }
}
