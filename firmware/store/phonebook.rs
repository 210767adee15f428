//! Phonebook storage: the `phonebook` keyspace (issue 7).
//!
//! Key: the entry id as 8 bytes big-endian (so key order is creation order) → JSON of
//! [`Entry`]. Ids are never reused: the next id is one past the highest stored. Every change
//! (one entry, or a whole import) is one durable batch, so an import is stored whole or not at
//! all. The entry count is bounded by the callers (`apps::phonebook` limits).

use super::{engine, Store, StoreError};
use crate::apps::phonebook::Entry;
use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode};

/// Largest stored entry, in bytes: a valid entry is well under 4 KiB; a sanity bound against
/// corrupt values.
const MAX_ENTRY_BYTES: usize = 16 * 1024;

/// The phonebook keyspace. Clones share it.
#[derive(Clone)]
pub struct PhonebookStore {
    store: Store,
    book: Keyspace,
}

fn key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

impl PhonebookStore {
    /// Opens (creating when missing) the `phonebook` keyspace.
    pub fn open(store: &Store) -> Result<PhonebookStore, StoreError> {
        let book = store
            .inner
            .db
            .keyspace("phonebook", KeyspaceCreateOptions::default)
            .map_err(engine("phonebook open"))?;
        Ok(PhonebookStore { store: store.clone(), book })
    }

    /// Every entry, in id order. An entry that does not decode is an error, naming its key.
    pub fn entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for guard in self.book.iter() {
            let (k, value) = guard.into_inner().map_err(engine("phonebook entries"))?;
            let corrupt =
                |reason: String| StoreError::Corrupt { keyspace: "phonebook", key: format!("{k:?}"), reason };
            if value.len() > MAX_ENTRY_BYTES {
                return Err(corrupt(format!("{} bytes", value.len())));
            }
            out.push(serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// One past the highest stored id (1 for an empty book).
    pub fn next_id(&self) -> Result<u64, StoreError> {
        match self.book.last_key_value() {
            None => Ok(1),
            Some(guard) => {
                let k = guard.key().map_err(engine("phonebook next_id"))?;
                let id =
                    <[u8; 8]>::try_from(&*k).map(u64::from_be_bytes).map_err(|_| StoreError::Corrupt {
                        keyspace: "phonebook",
                        key: format!("{k:?}"),
                        reason: "key is not 8 bytes".into(),
                    })?;
                Ok(id.saturating_add(1))
            }
        }
    }

    /// Stores (creates or replaces) `put` and deletes `delete`, in one durable batch.
    pub fn write(&self, put: &[Entry], delete: &[u64]) -> Result<(), StoreError> {
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        for e in put {
            let v = serde_json::to_vec(e)
                .map_err(|err| StoreError::Invalid { op: "phonebook write", reason: err.to_string() })?;
            batch.insert(&self.book, key(e.id), v);
        }
        for id in delete {
            batch.remove(&self.book, key(*id));
        }
        batch.commit().map_err(engine("phonebook write"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::phonebook::{EntryFields, Number};

    fn entry(id: u64, name: &str) -> Entry {
        Entry {
            id,
            owner: None,
            fields: EntryFields {
                name: name.into(),
                numbers: vec![Number { label: String::new(), number: "0312345678".into() }],
                ..EntryFields::default()
            },
        }
    }

    #[test]
    fn entries_survive_a_reopen_and_ids_continue_after_the_highest() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        {
            let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let book = PhonebookStore::open(&store).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(book.next_id(), Ok(1));
            assert_eq!(book.write(&[entry(1, "山田"), entry(2, "佐藤"), entry(300, "鈴木")], &[]), Ok(()));
            assert_eq!(book.write(&[], &[2]), Ok(()));
        }
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let book = PhonebookStore::open(&store).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> =
            book.entries().unwrap_or_default().into_iter().map(|e| e.fields.name).collect();
        assert_eq!(names, ["山田", "鈴木"]);
        assert_eq!(book.next_id(), Ok(301));
    }
}
