//! Web admin storage: users and roles in the `web` keyspace, the audit log in `web_audit`.
//!
//! Keys of `web`: `user/<id>` → JSON of [`StoredUser`]; `role/<name>` → JSON of
//! [`Role`]. Keys of `web_audit`: `at_ms` (8 bytes big-endian) then a sequence number (8 bytes
//! big-endian), so key order is time order → JSON of [`AuditEntry`]; capped at
//! [`MAX_AUDIT_ENTRIES`], oldest deleted first in the same batch.
//!
//! Every change is written in one durable batch together with its audit entry, so the log
//! cannot miss a change that was stored (or name one that was not).
//!
//! Login failures and sessions are not stored: they live in RAM (`web::auth::Gate`), so a
//! password-guessing flood does not turn into flash writes.
use super::{engine, Store, StoreError};
use crate::web::auth::Role;
use fjall::{Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, MutexGuard};

/// Audit entries kept. An office changes a few things a day and logs in a few dozen times;
/// 100,000 entries of ~200 bytes (~20 MB) is years of history on a small partition.
pub const MAX_AUDIT_ENTRIES: usize = 100_000;

/// Most audit entries one read returns: a reply is held in RAM and sent as one JSON document.
pub const MAX_AUDIT_READ: usize = 1_000;

/// Largest stored user or role, in bytes: a sanity bound against corrupt entries.
const MAX_ENTRY_BYTES: usize = 16 * 1024;

const USER_PREFIX: &str = "user/";
const ROLE_PREFIX: &str = "role/";

/// A web user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredUser {
    /// Login id (ユーザーID), unique, case kept.
    pub id: String,
    /// Display name (ユーザー名).
    pub name: String,
    /// The role's name.
    pub role: String,
    /// The user's extension (内線番号), when bound to one.
    #[serde(default)]
    pub extension: Option<String>,
    /// The password's PHC string (argon2id); never the password.
    pub password_hash: String,
    /// The password was set by someone else (first start, admin reset): the user must change
    /// it before doing anything else.
    pub must_change_password: bool,
    /// Wall-clock ms of the last password change.
    #[serde(default)]
    pub password_changed_ms: u64,
}

/// One line of the audit log: who changed what, when, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Wall-clock ms (Unix epoch).
    pub at_ms: u64,
    /// The login id that acted, or `console` / `system`.
    pub who: String,
    /// What was done, e.g. `user.create`, `login`, `session.force_logout`.
    pub action: String,
    /// What it was done to (a user id, a role name), or empty.
    pub target: String,
    /// Details (changed fields; never a password).
    pub detail: String,
    /// The client's address, or empty.
    pub peer: String,
}

/// What a write does besides its audit entry.
enum Change<'a> {
    PutUser(&'a StoredUser),
    DeleteUser(&'a str),
    PutRole(&'a Role),
    DeleteRole(&'a str),
    None,
}

/// The web keyspaces. Clones share them.
#[derive(Clone)]
pub struct WebStore {
    store: Store,
    web: Keyspace,
    audit: Keyspace,
    audit_state: std::sync::Arc<Mutex<AuditState>>,
}

struct AuditState {
    count: usize,
    next_seq: u64,
}

fn corrupt(keyspace: &'static str, key: &[u8], reason: String) -> StoreError {
    StoreError::Corrupt { keyspace, key: String::from_utf8_lossy(key).into_owned(), reason }
}

impl WebStore {
    /// Opens (creating when missing) the `web` and `web_audit` keyspaces.
    pub fn open(store: &Store) -> Result<WebStore, StoreError> {
        let open =
            |name: &str| {
                store.inner.db.keyspace(name, KeyspaceCreateOptions::default).map_err(|e| {
                    StoreError::Engine { op: "web open", reason: format!("keyspace `{name}`: {e}") }
                })
            };
        let web = open("web")?;
        let audit = open("web_audit")?;
        let count = audit.len().map_err(engine("web open"))?;
        let next_seq = match audit.last_key_value() {
            Some(guard) => {
                let key = guard.key().map_err(engine("web open"))?;
                key.get(8..16)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, |b| u64::from_be_bytes(b).wrapping_add(1))
            }
            None => 0,
        };
        Ok(WebStore {
            store: store.clone(),
            web,
            audit,
            audit_state: std::sync::Arc::new(Mutex::new(AuditState { count, next_seq })),
        })
    }

    /// The database these keyspaces live in (other web areas open their keyspaces from it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn state(&self) -> MutexGuard<'_, AuditState> {
        self.audit_state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every user, sorted by id. An entry that does not decode is an error: a user list with a
    /// silent hole could hide an admin.
    pub fn users(&self) -> Result<Vec<StoredUser>, StoreError> {
        self.scan(USER_PREFIX)
    }

    /// Every role, sorted by name.
    pub fn roles(&self) -> Result<Vec<Role>, StoreError> {
        self.scan(ROLE_PREFIX)
    }

    fn scan<T: for<'de> Deserialize<'de>>(&self, prefix: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for guard in self.web.prefix(prefix) {
            let (key, value) = guard.into_inner().map_err(engine("web scan"))?;
            if value.len() > MAX_ENTRY_BYTES {
                return Err(corrupt("web", &key, format!("{} bytes", value.len())));
            }
            out.push(serde_json::from_slice(&value).map_err(|e| corrupt("web", &key, e.to_string()))?);
        }
        Ok(out)
    }

    /// Stores (creates or replaces) a user, with its audit entry.
    pub fn put_user(&self, user: &StoredUser, audit: &AuditEntry) -> Result<(), StoreError> {
        self.commit(Change::PutUser(user), audit)
    }

    /// Deletes a user, with its audit entry.
    pub fn delete_user(&self, id: &str, audit: &AuditEntry) -> Result<(), StoreError> {
        self.commit(Change::DeleteUser(id), audit)
    }

    /// Stores (creates or replaces) a role, with its audit entry.
    pub fn put_role(&self, role: &Role, audit: &AuditEntry) -> Result<(), StoreError> {
        self.commit(Change::PutRole(role), audit)
    }

    /// Deletes a role, with its audit entry.
    pub fn delete_role(&self, name: &str, audit: &AuditEntry) -> Result<(), StoreError> {
        self.commit(Change::DeleteRole(name), audit)
    }

    /// Records an event that changes nothing stored here (login, forced logout, certificate).
    pub fn audit(&self, audit: &AuditEntry) -> Result<(), StoreError> {
        self.commit(Change::None, audit)
    }

    fn commit(&self, change: Change<'_>, audit: &AuditEntry) -> Result<(), StoreError> {
        let invalid = |reason: String| StoreError::Invalid { op: "web write", reason };
        let mut batch = self.store.inner.db.batch().durability(Some(PersistMode::SyncData));
        match change {
            Change::PutUser(u) => {
                let v = serde_json::to_vec(u).map_err(|e| invalid(e.to_string()))?;
                batch.insert(&self.web, format!("{USER_PREFIX}{}", u.id), v);
            }
            Change::DeleteUser(id) => batch.remove(&self.web, format!("{USER_PREFIX}{id}")),
            Change::PutRole(r) => {
                let v = serde_json::to_vec(r).map_err(|e| invalid(e.to_string()))?;
                batch.insert(&self.web, format!("{ROLE_PREFIX}{}", r.name), v);
            }
            Change::DeleteRole(name) => batch.remove(&self.web, format!("{ROLE_PREFIX}{name}")),
            Change::None => {}
        }
        let line = serde_json::to_vec(audit).map_err(|e| invalid(e.to_string()))?;
        let mut state = self.state();
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&audit.at_ms.to_be_bytes());
        key[8..].copy_from_slice(&state.next_seq.to_be_bytes());
        batch.insert(&self.audit, key, line);
        // Trim: one over the cap deletes the oldest; the scan is bounded by the overshoot.
        let over = (state.count + 1).saturating_sub(MAX_AUDIT_ENTRIES);
        let mut trimmed = 0;
        if over > 0 {
            for guard in self.audit.iter().take(over) {
                let k = guard.key().map_err(engine("web audit trim"))?;
                batch.remove(&self.audit, k);
                trimmed += 1;
            }
        }
        batch.commit().map_err(engine("web write"))?;
        state.next_seq = state.next_seq.wrapping_add(1);
        state.count = state.count + 1 - trimmed;
        Ok(())
    }

    /// The newest `limit` audit entries (at most [`MAX_AUDIT_READ`]), newest first. Entries
    /// that do not decode are skipped and counted in the second value.
    pub fn recent_audit(&self, limit: usize) -> Result<(Vec<AuditEntry>, usize), StoreError> {
        let mut out = Vec::new();
        let mut bad = 0;
        for guard in self.audit.iter().rev().take(limit.min(MAX_AUDIT_READ)) {
            let (_, value) = guard.into_inner().map_err(engine("recent_audit"))?;
            match serde_json::from_slice(&value) {
                Ok(e) => out.push(e),
                Err(_) => bad += 1,
            }
        }
        Ok((out, bad))
    }

    /// Audit entries stored now.
    pub fn audit_count(&self) -> usize {
        self.state().count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at_ms: 1_700_000_000_000 + n,
            who: "admin".into(),
            action: "user.create".into(),
            target: format!("u{n}"),
            detail: String::new(),
            peer: "127.0.0.1".into(),
        }
    }

    fn user(id: &str) -> StoredUser {
        StoredUser {
            id: id.into(),
            name: "N".into(),
            role: "agent".into(),
            extension: Some("201".into()),
            password_hash: "$argon2id$x".into(),
            must_change_password: false,
            password_changed_ms: 0,
        }
    }

    #[test]
    fn a_user_and_its_audit_entry_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let web = WebStore::open(&store).unwrap();
            web.put_user(&user("demo301"), &entry(1)).unwrap();
            web.put_role(&crate::web::auth::default_roles()[1], &entry(2)).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let web = WebStore::open(&store).unwrap();
        assert_eq!(web.users().unwrap(), vec![user("demo301")]);
        assert_eq!(web.roles().unwrap().len(), 1);
        let (log, bad) = web.recent_audit(10).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(log.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(), ["u2", "u1"]);
        // The sequence goes on after the reopen: a new entry in the same ms sorts last.
        web.audit(&entry(2)).unwrap();
        assert_eq!(web.audit_count(), 3);
    }

    #[test]
    fn deleting_a_user_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let web = WebStore::open(&store).unwrap();
        web.put_user(&user("a"), &entry(1)).unwrap();
        web.delete_user("a", &entry(2)).unwrap();
        assert!(web.users().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_user_entry_is_an_error_not_a_hole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let web = WebStore::open(&store).unwrap();
        web.web.insert("user/x", "not json").unwrap();
        assert!(matches!(web.users(), Err(StoreError::Corrupt { .. })));
    }
}
