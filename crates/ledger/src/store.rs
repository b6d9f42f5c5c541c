//! Persistence: the [`Store`] trait, API-key and usage types, and the in-memory backend the
//! simulator uses. The SQLite backend is in [`crate::sqlite`].

use crate::log::SignedTreeHead;
use crate::model::{ChangeRecord, FieldBlocks};
use orchestra_protocol::Hash32;
use orchestra_protocol::ledger::Entry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why the store failed. Messages name the file and say what to do where possible.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not an SQLite database at all (garbage, or encrypted).
    #[error("{path} is not an SQLite database (corrupted or not a Ledger file)")]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is an SQLite database belonging to something else.
    #[error(
        "{path} is an SQLite database of another application (application_id {found:#x}); refusing to touch it"
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// Its `PRAGMA application_id`.
        found: i64,
    },
    /// The file was written by a newer version of this program.
    #[error(
        "{path} has schema version {found}, newer than this program's {supported}; upgrade orchestra-ledger"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version`.
        found: i64,
        /// Latest version this build knows.
        supported: i64,
    },
    /// The database is damaged or its contents are inconsistent.
    #[error("{path} is corrupted: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        detail: String,
    },
    /// An SQLite call failed.
    #[cfg(feature = "service")]
    #[error("sqlite error while {context}: {source}")]
    Sqlite {
        /// What we were doing.
        context: &'static str,
        /// The driver's error.
        source: rusqlite::Error,
    },
    /// A stored value could not be (de)serialised.
    #[error("cannot encode or decode stored {what}: {detail}")]
    Codec {
        /// Which value.
        what: &'static str,
        /// The codec's message.
        detail: String,
    },
    /// An API key id that does not exist.
    #[error("no API key with id {0}")]
    NoSuchKey(i64),
}

/// API access tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "service", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Rate-limited per minute.
    Free,
    /// 1,000 lookups per calendar month (UTC).
    Developer,
    /// Unlimited.
    Production,
}

impl Tier {
    /// The tier's name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Developer => "developer",
            Tier::Production => "production",
        }
    }

    /// Parse a stored tier name.
    pub fn from_name(s: &str) -> Option<Tier> {
        match s {
            "free" => Some(Tier::Free),
            "developer" => Some(Tier::Developer),
            "production" => Some(Tier::Production),
            _ => None,
        }
    }
}

/// One API key as stored: only the BLAKE3 hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Numeric id (what `keys revoke` takes).
    pub id: i64,
    /// BLAKE3 of the key text.
    pub key_hash: Hash32,
    /// Access tier.
    pub tier: Tier,
    /// Free-form label.
    pub label: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<u64>,
}

/// Everything a node needs to resume.
#[derive(Debug, Clone, Default)]
pub struct Persisted {
    /// All records, in order.
    pub records: Vec<ChangeRecord>,
    /// Their stored leaf hashes.
    pub leaves: Vec<Hash32>,
    /// The entries table (checked against a replay of `records`).
    pub entries: BTreeMap<u16, (Entry, FieldBlocks)>,
    /// The last signed head.
    pub head: Option<SignedTreeHead>,
}

/// One atomic write: new records, the entries they changed, and the new head.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// Records to append (consecutive seqs after the stored ones).
    pub records: &'a [ChangeRecord],
    /// Their leaf hashes.
    pub leaves: &'a [Hash32],
    /// Entries as they are after the records.
    pub entries: &'a [(Entry, FieldBlocks)],
    /// The head after the records.
    pub head: &'a SignedTreeHead,
}

/// Persistence of the change log, entries, head, API keys and usage.
pub trait Store: Send {
    /// Load everything needed to resume.
    fn load(&self) -> Result<Persisted, StoreError>;
    /// Append records, upsert entries and replace the head, in one transaction.
    fn commit(&mut self, commit: Commit<'_>) -> Result<(), StoreError>;
    /// Up to `limit` records from `since` on.
    fn records(&self, since: u64, limit: usize) -> Result<Vec<ChangeRecord>, StoreError>;
    /// Create an API key (the caller hashes the secret).
    fn create_key(
        &mut self,
        key_hash: Hash32,
        tier: Tier,
        label: Option<&str>,
        now_secs: u64,
    ) -> Result<ApiKey, StoreError>;
    /// All keys.
    fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revoke a key; error if it does not exist.
    fn revoke_key(&mut self, id: i64, now_secs: u64) -> Result<(), StoreError>;
    /// Add usage counts `(key id, period, count)` in one transaction.
    fn add_usage(&mut self, deltas: &[(i64, String, u64)]) -> Result<(), StoreError>;
    /// Usage of `key_id` in `period`.
    fn usage(&self, key_id: i64, period: &str) -> Result<u64, StoreError>;
}

/// A [`Store`] in memory, for the simulator and tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Vec<ChangeRecord>,
    leaves: Vec<Hash32>,
    entries: BTreeMap<u16, (Entry, FieldBlocks)>,
    head: Option<SignedTreeHead>,
    keys: Vec<ApiKey>,
    usage: BTreeMap<(i64, String), u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Persisted, StoreError> {
        Ok(Persisted {
            records: self.records.clone(),
            leaves: self.leaves.clone(),
            entries: self.entries.clone(),
            head: self.head.clone(),
        })
    }

    fn commit(&mut self, c: Commit<'_>) -> Result<(), StoreError> {
        for (i, r) in c.records.iter().enumerate() {
            if r.seq != (self.records.len() + i) as u64 {
                return Err(StoreError::Corrupt {
                    path: PathBuf::from(":memory:"),
                    detail: format!("record seq {} out of order", r.seq),
                });
            }
        }
        self.records.extend_from_slice(c.records);
        self.leaves.extend_from_slice(c.leaves);
        for (e, f) in c.entries {
            self.entries.insert(e.netuid, (e.clone(), *f));
        }
        self.head = Some(c.head.clone());
        Ok(())
    }

    fn records(&self, since: u64, limit: usize) -> Result<Vec<ChangeRecord>, StoreError> {
        let start = usize::try_from(since)
            .unwrap_or(usize::MAX)
            .min(self.records.len());
        Ok(self.records[start..].iter().take(limit).cloned().collect())
    }

    fn create_key(
        &mut self,
        key_hash: Hash32,
        tier: Tier,
        label: Option<&str>,
        now_secs: u64,
    ) -> Result<ApiKey, StoreError> {
        let k = ApiKey {
            id: self.keys.len() as i64 + 1,
            key_hash,
            tier,
            label: label.map(str::to_string),
            created_at: now_secs,
            revoked_at: None,
        };
        self.keys.push(k.clone());
        Ok(k)
    }

    fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.keys.clone())
    }

    fn revoke_key(&mut self, id: i64, now_secs: u64) -> Result<(), StoreError> {
        let k = self
            .keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or(StoreError::NoSuchKey(id))?;
        k.revoked_at.get_or_insert(now_secs);
        Ok(())
    }

    fn add_usage(&mut self, deltas: &[(i64, String, u64)]) -> Result<(), StoreError> {
        for (k, p, n) in deltas {
            *self.usage.entry((*k, p.clone())).or_default() += n;
        }
        Ok(())
    }

    fn usage(&self, key_id: i64, period: &str) -> Result<u64, StoreError> {
        Ok(self
            .usage
            .get(&(key_id, period.to_string()))
            .copied()
            .unwrap_or(0))
    }
}

/// Boxed stores are stores, so a node can hold either backend behind one type.
impl<T: Store + ?Sized> Store for Box<T> {
    fn load(&self) -> Result<Persisted, StoreError> {
        (**self).load()
    }
    fn commit(&mut self, commit: Commit<'_>) -> Result<(), StoreError> {
        (**self).commit(commit)
    }
    fn records(&self, since: u64, limit: usize) -> Result<Vec<ChangeRecord>, StoreError> {
        (**self).records(since, limit)
    }
    fn create_key(
        &mut self,
        key_hash: Hash32,
        tier: Tier,
        label: Option<&str>,
        now_secs: u64,
    ) -> Result<ApiKey, StoreError> {
        (**self).create_key(key_hash, tier, label, now_secs)
    }
    fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        (**self).list_keys()
    }
    fn revoke_key(&mut self, id: i64, now_secs: u64) -> Result<(), StoreError> {
        (**self).revoke_key(id, now_secs)
    }
    fn add_usage(&mut self, deltas: &[(i64, String, u64)]) -> Result<(), StoreError> {
        (**self).add_usage(deltas)
    }
    fn usage(&self, key_id: i64, period: &str) -> Result<u64, StoreError> {
        (**self).usage(key_id, period)
    }
}
