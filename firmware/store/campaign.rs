//! Campaign call lists (issue 9): every entry of every campaign under `<campaign>/<id>` in the
//! `campaign` keyspace, as JSON. The runner sends each changed entry to the group-commit writer
//! (`writer.rs`), so the engine's task never waits on flash; everything is read back at start.

use super::{engine, Store, StoreError};
use crate::apps::campaign::dialer::{Entry, EntryId, EntryStatus};
use crate::apps::campaign::results::{Outcome, SystemResult};
use fjall::{KeyspaceCreateOptions, PersistMode};
use serde::{Deserialize, Serialize};

/// Largest stored entry in bytes; more is corruption.
pub const MAX_ENTRY_BYTES: usize = 8 * 1024;

/// One entry as stored (and as the web sends it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The campaign's name.
    pub campaign: String,
    /// The entry's id in its list.
    pub id: EntryId,
    /// The CRM customer, if linked.
    pub customer: Option<u64>,
    /// Name shown to the agent.
    pub name: String,
    /// The number to dial.
    pub number: String,
    /// A system result's key (`waiting`, `busy`, ...) or a custom result's number.
    pub result: String,
    /// `waiting`, `dialling`, `talking`, `dialled`, `stopped`.
    pub status: String,
    /// Attempts so far.
    pub calls: u32,
    /// Last attempt (Unix ms).
    pub last_dialled_ms: Option<u64>,
    /// Scheduled dial (Unix ms).
    pub schedule_ms: Option<u64>,
    /// The agent who dials it by hand.
    pub assignee: Option<String>,
    /// Who talked to the customer last.
    pub agent: Option<String>,
}

/// The stored key of a result.
pub fn outcome_key(o: Outcome) -> String {
    match o {
        Outcome::System(s) => s.key().to_string(),
        Outcome::Custom(n) => n.to_string(),
    }
}

fn outcome_of(key: &str) -> Option<Outcome> {
    SystemResult::from_key(key).map(Outcome::System).or_else(|| key.parse().ok().map(Outcome::Custom))
}

/// The stored key of a status.
pub fn status_key(s: EntryStatus) -> &'static str {
    match s {
        EntryStatus::Waiting => "waiting",
        EntryStatus::Dialling => "dialling",
        EntryStatus::Talking => "talking",
        EntryStatus::Dialled => "dialled",
        EntryStatus::Stopped => "stopped",
    }
}

fn status_of(key: &str) -> Option<EntryStatus> {
    Some(match key {
        "waiting" => EntryStatus::Waiting,
        "dialling" => EntryStatus::Dialling,
        "talking" => EntryStatus::Talking,
        "dialled" => EntryStatus::Dialled,
        "stopped" => EntryStatus::Stopped,
        _ => return None,
    })
}

impl EntryRecord {
    /// The record of `entry` in `campaign`.
    pub fn of(campaign: &str, e: &Entry) -> EntryRecord {
        EntryRecord {
            campaign: campaign.to_string(),
            id: e.id,
            customer: e.customer,
            name: e.name.clone(),
            number: e.number.clone(),
            result: outcome_key(e.result),
            status: status_key(e.status).to_string(),
            calls: e.calls,
            last_dialled_ms: e.last_dialled_ms,
            schedule_ms: e.schedule_ms,
            assignee: e.assignee.clone(),
            agent: e.agent.clone(),
        }
    }

    /// The entry back, or `None` when a field does not decode.
    pub fn entry(&self) -> Option<Entry> {
        Some(Entry {
            id: self.id,
            customer: self.customer,
            name: self.name.clone(),
            number: self.number.clone(),
            result: outcome_of(&self.result)?,
            status: status_of(&self.status)?,
            calls: self.calls,
            last_dialled_ms: self.last_dialled_ms,
            schedule_ms: self.schedule_ms,
            assignee: self.assignee.clone(),
            agent: self.agent.clone(),
        })
    }

    fn key(&self) -> String {
        format!("{}/{:016}", self.campaign, self.id)
    }
}

impl Store {
    fn campaign_keyspace(&self) -> Result<fjall::Keyspace, StoreError> {
        self.inner
            .db
            .keyspace("campaign", KeyspaceCreateOptions::default)
            .map_err(|e| StoreError::Engine { op: "campaign open", reason: e.to_string() })
    }

    /// Stores a batch of entries in one durable commit (the writer's).
    pub fn put_campaign_entries(&self, batch: &[EntryRecord]) -> Result<(), StoreError> {
        let ks = self.campaign_keyspace()?;
        let mut b = self.inner.db.batch().durability(Some(PersistMode::SyncData));
        for r in batch {
            let v = serde_json::to_vec(r)
                .map_err(|e| StoreError::Invalid { op: "campaign put", reason: e.to_string() })?;
            b.insert(&ks, r.key(), v);
        }
        b.commit().map_err(engine("campaign put"))
    }

    /// Every stored entry; undecodable ones are skipped and their keys returned.
    pub fn campaign_entries(&self) -> Result<(Vec<EntryRecord>, Vec<String>), StoreError> {
        let ks = self.campaign_keyspace()?;
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        for guard in ks.iter() {
            let (key, value) = guard.into_inner().map_err(engine("campaign load"))?;
            let rec = (value.len() <= MAX_ENTRY_BYTES)
                .then(|| serde_json::from_slice::<EntryRecord>(&value).ok())
                .flatten()
                .filter(|r| r.entry().is_some());
            match rec {
                Some(r) => out.push(r),
                None => bad.push(String::from_utf8_lossy(&key).into_owned()),
            }
        }
        Ok((out, bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::campaign::dialer::Dialer;
    use crate::apps::campaign::settings::CampaignForm;

    #[test]
    fn entries_survive_a_reopen_with_their_results() {
        let dir = tempfile::tempdir().unwrap();
        let settings = CampaignForm { name: "c".into(), results: "1,成約".into(), ..Default::default() }
            .check(1, &[])
            .unwrap();
        let mut d = Dialer::new(settings);
        let id = d.add("0312345678", "山田", None, None, None).unwrap();
        d.enter_result(id, 1).unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_campaign_entries(&[EntryRecord::of("c", d.entry(id).unwrap())]).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let (recs, bad) = store.campaign_entries().unwrap();
        assert!(bad.is_empty());
        assert_eq!(recs[0].entry().as_ref(), d.entry(id));
        assert_eq!(recs[0].result, "1");
    }
}
