//! The validator's own durable state (`validator.db`, SQLite in WAL mode with
//! `synchronous=FULL`): the scorer's EMAs and Ledger window, the tempo schedule, every closed
//! tempo's scores, and every weight and anchor submission with its result.
//!
//! The Ledger replica lives next to it in `ledger.db` (the ledger crate's `SqliteStore`); the two
//! are separate files so each crate owns its schema and migrations.
//!
//! | table | rows |
//! |---|---|
//! | `meta` | `scorer_state` (JSON of [`ScorerState`]), `last_tempo_closed`, `schema_version` |
//! | `tempo_scores` | `(tempo, uid)` → block, orchestration score `O`, Ledger score `L` |
//! | `weights` | one row per submitted vector: tempo, block, mecid, uids, values, status, detail |
//! | `reveals` | commit-reveal: each committed vector, its salt and the tempo to reveal it in |
//! | `anchors` | one row per anchoring attempt: block, tree size, root, status, detail |

use orchestra_chain::WeightsReveal;
use orchestra_validator::ScorerState;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;

/// Schema version written to `meta.schema_version`.
pub const SCHEMA_VERSION: u64 = 1;

/// Why the validator state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("validator state database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value does not parse.
    #[error("validator state database: {what}: {reason}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// One row of `weights`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WeightsRow {
    /// Tempo index the weights close.
    pub tempo: u64,
    /// Block they were computed at.
    pub block: u64,
    /// Mechanism.
    pub mecid: u8,
    /// Destination uids.
    pub uids: Vec<u16>,
    /// u16 weights.
    pub values: Vec<u16>,
    /// `ok` or `error`.
    pub status: String,
    /// Transaction hash or error text.
    pub detail: String,
}

/// The open `validator.db`.
#[derive(Debug)]
pub struct StateStore {
    conn: Connection,
}

impl StateStore {
    /// Open (creating if absent) the database at `path`.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS tempo_scores (
                 tempo INTEGER NOT NULL, uid INTEGER NOT NULL, block INTEGER NOT NULL,
                 orchestration REAL NOT NULL, ledger REAL NOT NULL,
                 PRIMARY KEY (tempo, uid));
             CREATE TABLE IF NOT EXISTS weights (
                 id INTEGER PRIMARY KEY, tempo INTEGER NOT NULL, block INTEGER NOT NULL,
                 mecid INTEGER NOT NULL, uids TEXT NOT NULL, vals TEXT NOT NULL,
                 status TEXT NOT NULL, detail TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS reveals (
                 id INTEGER PRIMARY KEY, commit_tempo INTEGER NOT NULL,
                 reveal_tempo INTEGER NOT NULL, payload TEXT NOT NULL,
                 status TEXT NOT NULL, detail TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS anchors (
                 id INTEGER PRIMARY KEY, block INTEGER NOT NULL, tree_size INTEGER NOT NULL,
                 root TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL);",
        )?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)",
            params![SCHEMA_VERSION.to_string()],
        )?;
        Ok(StateStore { conn })
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The scorer state last saved, if any.
    pub fn scorer_state(&self) -> Result<Option<ScorerState>, StateError> {
        self.meta("scorer_state")?
            .map(|text| {
                serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                    what: "scorer_state",
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// The last tempo whose scores were closed and weights computed, if any.
    pub fn last_tempo_closed(&self) -> Result<Option<u64>, StateError> {
        self.meta("last_tempo_closed")?
            .map(|t| {
                t.parse().map_err(|_| StateError::Corrupt {
                    what: "last_tempo_closed",
                    reason: format!("not an integer: {t:?}"),
                })
            })
            .transpose()
    }

    fn put(tx: &rusqlite::Transaction<'_>, key: &str, value: &str) -> Result<(), StateError> {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    fn state_json(state: &ScorerState) -> Result<String, StateError> {
        serde_json::to_string(state).map_err(|e| StateError::Corrupt {
            what: "scorer_state",
            reason: e.to_string(),
        })
    }

    /// Save the scorer state durably (after challenges are scored).
    pub fn save_scorer(&mut self, state: &ScorerState) -> Result<(), StateError> {
        let json = Self::state_json(state)?;
        let tx = self.conn.transaction()?;
        Self::put(&tx, "scorer_state", &json)?;
        tx.commit()?;
        Ok(())
    }

    /// Set the tempo schedule marker without closing a tempo (first start).
    pub fn set_last_tempo_closed(&mut self, tempo: u64) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        Self::put(&tx, "last_tempo_closed", &tempo.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// Close `tempo` at `block` in one transaction: its scores, the scorer state after
    /// `end_tempo`, and the schedule marker.
    pub fn close_tempo(
        &mut self,
        tempo: u64,
        block: u64,
        scores: &BTreeMap<u16, (f64, f64)>,
        state: &ScorerState,
    ) -> Result<(), StateError> {
        let json = Self::state_json(state)?;
        let tx = self.conn.transaction()?;
        {
            let mut ins = tx.prepare(
                "INSERT OR REPLACE INTO tempo_scores (tempo, uid, block, orchestration, ledger)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (uid, (o, l)) in scores {
                ins.execute(params![tempo as i64, uid, block as i64, o, l])?;
            }
        }
        Self::put(&tx, "scorer_state", &json)?;
        Self::put(&tx, "last_tempo_closed", &tempo.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// The scores written when `tempo` closed, by uid.
    pub fn tempo_scores(&self, tempo: u64) -> Result<BTreeMap<u16, (f64, f64)>, StateError> {
        let mut q = self.conn.prepare(
            "SELECT uid, orchestration, ledger FROM tempo_scores WHERE tempo = ?1 ORDER BY uid",
        )?;
        let rows = q.query_map(params![tempo as i64], |r| {
            Ok((
                r.get::<_, u16>(0)?,
                (r.get::<_, f64>(1)?, r.get::<_, f64>(2)?),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Record one weight submission and how it went.
    pub fn record_weights(&mut self, row: &WeightsRow) -> Result<(), StateError> {
        let uids = serde_json::to_string(&row.uids).unwrap_or_default();
        let vals = serde_json::to_string(&row.values).unwrap_or_default();
        self.conn.execute(
            "INSERT INTO weights (tempo, block, mecid, uids, vals, status, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.tempo as i64,
                row.block as i64,
                row.mecid,
                uids,
                vals,
                row.status,
                row.detail
            ],
        )?;
        Ok(())
    }

    /// Every weight submission, oldest first.
    pub fn weights(&self) -> Result<Vec<WeightsRow>, StateError> {
        let mut q = self.conn.prepare(
            "SELECT tempo, block, mecid, uids, vals, status, detail FROM weights ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, u8>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (tempo, block, mecid, uids, vals, status, detail) = row?;
            let parse = |what: &'static str, t: &str| {
                serde_json::from_str::<Vec<u16>>(t).map_err(|e| StateError::Corrupt {
                    what,
                    reason: e.to_string(),
                })
            };
            out.push(WeightsRow {
                tempo: tempo as u64,
                block: block as u64,
                mecid,
                uids: parse("weights.uids", &uids)?,
                values: parse("weights.vals", &vals)?,
                status,
                detail,
            });
        }
        Ok(out)
    }

    /// Remember a committed weight vector to reveal in tempo `reveal_tempo`; returns its id.
    pub fn add_reveal(
        &mut self,
        commit_tempo: u64,
        reveal_tempo: u64,
        reveal: &WeightsReveal,
    ) -> Result<i64, StateError> {
        let payload = serde_json::to_string(reveal).map_err(|e| StateError::Corrupt {
            what: "reveals.payload",
            reason: e.to_string(),
        })?;
        self.conn.execute(
            "INSERT INTO reveals (commit_tempo, reveal_tempo, payload, status, detail)
             VALUES (?1, ?2, ?3, 'pending', '')",
            params![commit_tempo as i64, reveal_tempo as i64, payload],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Commits not revealed yet: `(id, reveal tempo, reveal)`, oldest first.
    pub fn pending_reveals(&self) -> Result<Vec<(i64, u64, WeightsReveal)>, StateError> {
        let mut q = self.conn.prepare(
            "SELECT id, reveal_tempo, payload FROM reveals WHERE status = 'pending' ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, tempo, payload) = row?;
            let reveal = serde_json::from_str(&payload).map_err(|e| StateError::Corrupt {
                what: "reveals.payload",
                reason: e.to_string(),
            })?;
            out.push((id, tempo, reveal));
        }
        Ok(out)
    }

    /// Mark reveal `id` done (`ok`) or failed (`error`).
    pub fn finish_reveal(&mut self, id: i64, status: &str, detail: &str) -> Result<(), StateError> {
        self.conn.execute(
            "UPDATE reveals SET status = ?2, detail = ?3 WHERE id = ?1",
            params![id, status, detail],
        )?;
        Ok(())
    }

    /// Record one anchoring attempt.
    pub fn record_anchor(
        &mut self,
        block: u64,
        tree_size: u64,
        root: &str,
        status: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO anchors (block, tree_size, root, status, detail)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![block as i64, tree_size as i64, root, status, detail],
        )?;
        Ok(())
    }

    /// The last anchoring attempt as `(block, tree_size, status)`.
    pub fn last_anchor(&self) -> Result<Option<(u64, u64, String)>, StateError> {
        Ok(self
            .conn
            .query_row(
                "SELECT block, tree_size, status FROM anchors ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use orchestra_mechanism::MechanismParams;
    use orchestra_mechanism::orchestration::OrchestrationTerms;
    use orchestra_validator::{Scorer, ScorerConfig};

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.db");
        let params = MechanismParams::default();
        let mut scorer = Scorer::new(params.clone(), ScorerConfig::default(), []);
        let mut store = StateStore::open(&path).unwrap();
        assert_eq!(store.scorer_state().unwrap(), None);
        assert_eq!(store.last_tempo_closed().unwrap(), None);
        // Build a state through the scorer's public API: two EMAs and a closed tempo.
        let mut ema = scorer.state();
        let terms = OrchestrationTerms {
            hash_verified: 1.0,
            schema_valid: 0.75,
            completeness: 1.0,
            routing: 0.5,
            latency: 1.0,
            fidelity: 0.0,
        };
        ema.ema.observe_orchestration(1, &terms, 0.1);
        ema.ema
            .observe_orchestration(2, &OrchestrationTerms::ZERO, 0.1);
        scorer.restore(ema);
        scorer.end_tempo(&[1, 2]);
        let scores = scorer.scores();
        store.close_tempo(7, 80, &scores, &scorer.state()).unwrap();
        store
            .record_weights(&WeightsRow {
                tempo: 7,
                block: 80,
                mecid: 0,
                uids: vec![1],
                values: vec![65_535],
                status: "ok".into(),
                detail: "0xab".into(),
            })
            .unwrap();
        store
            .record_anchor(80, 12, "00ff", "unsupported", "no Commitments pallet")
            .unwrap();
        drop(store);

        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.scorer_state().unwrap(), Some(scorer.state()));
        assert_eq!(store.last_tempo_closed().unwrap(), Some(7));
        let saved = store.tempo_scores(7).unwrap();
        assert_eq!(saved, scores);
        assert!(saved[&1].0 > saved[&2].0, "{saved:?}");
        assert_eq!(store.weights().unwrap()[0].values, vec![65_535]);
        assert_eq!(
            store.last_anchor().unwrap(),
            Some((80, 12, "unsupported".to_string()))
        );
    }
}
