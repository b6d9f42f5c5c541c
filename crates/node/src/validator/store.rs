//! The validator's own durable state (`validator.db`, SQLite in WAL mode with
//! `synchronous=FULL`): the core's [`ValidatorState`] (EMAs, Ledger window, open tempo, commits
//! awaiting their reveal, last anchor), every closed tempo's scores, and every weight and
//! anchor submission with its result.
//!
//! The Ledger replica lives next to it in `ledger.db` (the ledger crate's `SqliteStore`); the two
//! are separate files so each crate owns its schema and migrations.
//!
//! | table | rows |
//! |---|---|
//! | `meta` | `validator_state` (JSON of [`ValidatorState`]), `last_tempo_closed`, `schema_version` |
//! | `tempo_scores` | `(tempo, uid)` → block, orchestration score `O`, Ledger score `L` |
//! | `weights` | one row per weight extrinsic: tempo, block, mecid, uids, values, status, detail |
//! | `anchors` | one row per anchoring attempt: block, tree size, root, status, detail |
//!
//! Schema 1 (before the validator core kept its whole state) stored only the scorer's state
//! (`meta.scorer_state`) and pending reveals in a `reveals` table;
//! [`StateStore::validator_state`] reads such a database as the equivalent [`ValidatorState`],
//! and the first save rewrites it as schema 2.

use orchestra_chain::WeightsReveal;
use orchestra_mechanism::combine::MechanismWeights;
use orchestra_validator::{PendingReveal, ScorerState, ValidatorState, WeightScheduleState};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;

/// Schema version written to `meta.schema_version`.
pub const SCHEMA_VERSION: u64 = 2;

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

    /// The validator state last saved, if any. A schema-1 database reads as the equivalent
    /// state: its scorer state, the tempo after the last closed one, its pending reveals and
    /// its last anchor.
    pub fn validator_state(&self) -> Result<Option<ValidatorState>, StateError> {
        if let Some(text) = self.meta("validator_state")? {
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    what: "validator_state",
                    reason: e.to_string(),
                });
        }
        let Some(text) = self.meta("scorer_state")? else {
            return Ok(None);
        };
        let scorer: ScorerState = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            what: "scorer_state",
            reason: e.to_string(),
        })?;
        let pending_reveals: Vec<PendingReveal> = self
            .legacy_reveals()?
            .into_iter()
            .enumerate()
            .map(|(i, (reveal_tempo, r))| PendingReveal {
                id: i as u64,
                reveal_tempo,
                weights: MechanismWeights {
                    mechanism: r.weights.mecid,
                    uids: r.weights.uids,
                    values: r.weights.values,
                },
                salt: r.salt,
            })
            .collect();
        Ok(Some(ValidatorState {
            scorer,
            open_tempo: self.last_tempo_closed()?.map(|t| t + 1),
            weights: WeightScheduleState {
                next_id: pending_reveals.len() as u64,
                pending_reveals,
            },
            last_anchor: self.last_anchor()?.map(|(b, s, _)| (b, s)),
        }))
    }

    /// The scorer part of [`validator_state`](Self::validator_state).
    pub fn scorer_state(&self) -> Result<Option<ScorerState>, StateError> {
        Ok(self.validator_state()?.map(|s| s.scorer))
    }

    /// Commits awaiting their reveal.
    pub fn pending_reveals(&self) -> Result<Vec<PendingReveal>, StateError> {
        Ok(self
            .validator_state()?
            .map(|s| s.weights.pending_reveals)
            .unwrap_or_default())
    }

    /// Schema 1's pending reveals: `(reveal tempo, reveal)`, oldest first.
    fn legacy_reveals(&self) -> Result<Vec<(u64, WeightsReveal)>, StateError> {
        let exists: bool = self.conn.query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'reveals'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(Vec::new());
        }
        let mut q = self.conn.prepare(
            "SELECT reveal_tempo, payload FROM reveals WHERE status = 'pending' ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (tempo, payload) = row?;
            let reveal = serde_json::from_str(&payload).map_err(|e| StateError::Corrupt {
                what: "reveals.payload",
                reason: e.to_string(),
            })?;
            out.push((tempo, reveal));
        }
        Ok(out)
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

    fn put_state(tx: &rusqlite::Transaction<'_>, state: &ValidatorState) -> Result<(), StateError> {
        let json = serde_json::to_string(state).map_err(|e| StateError::Corrupt {
            what: "validator_state",
            reason: e.to_string(),
        })?;
        Self::put(tx, "validator_state", &json)?;
        // Schema 2 from the first save on: schema 1's rows are folded into the state.
        tx.execute("DELETE FROM meta WHERE key = 'scorer_state'", [])?;
        tx.execute("DROP TABLE IF EXISTS reveals", [])?;
        Self::put(tx, "schema_version", &SCHEMA_VERSION.to_string())
    }

    /// Save the validator state durably.
    pub fn save_state(&mut self, state: &ValidatorState) -> Result<(), StateError> {
        let tx = self.conn.transaction()?;
        Self::put_state(&tx, state)?;
        tx.commit()?;
        Ok(())
    }

    /// Write a schema-1 scorer state, as a validator before schema 2 left it (what upgrade
    /// tests start from).
    pub fn save_legacy_scorer(&mut self, state: &ScorerState) -> Result<(), StateError> {
        let json = serde_json::to_string(state).map_err(|e| StateError::Corrupt {
            what: "scorer_state",
            reason: e.to_string(),
        })?;
        let tx = self.conn.transaction()?;
        Self::put(&tx, "scorer_state", &json)?;
        tx.commit()?;
        Ok(())
    }

    /// Close `tempo` at `block` in one transaction: its scores, the validator state after the
    /// close, and the schedule marker.
    pub fn close_tempo(
        &mut self,
        tempo: u64,
        block: u64,
        scores: &BTreeMap<u16, (f64, f64)>,
        state: &ValidatorState,
    ) -> Result<(), StateError> {
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
        Self::put_state(&tx, state)?;
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
        let state = ValidatorState {
            scorer: scorer.state(),
            open_tempo: Some(8),
            weights: WeightScheduleState {
                pending_reveals: vec![PendingReveal {
                    id: 3,
                    reveal_tempo: 9,
                    weights: MechanismWeights {
                        mechanism: 0,
                        uids: vec![1],
                        values: vec![65_535],
                    },
                    salt: vec![1, 2, 3, 4, 5, 6, 7, 8],
                }],
                next_id: 4,
            },
            last_anchor: Some((80, 12)),
        };
        store.close_tempo(7, 80, &scores, &state).unwrap();
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
        assert_eq!(store.validator_state().unwrap(), Some(state.clone()));
        assert_eq!(store.scorer_state().unwrap(), Some(scorer.state()));
        assert_eq!(
            store.pending_reveals().unwrap(),
            state.weights.pending_reveals
        );
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

    /// A `validator.db` written by a schema-1 validator (scorer state, last closed tempo, a
    /// pending reveal in the `reveals` table, an anchor) reads as the same validator state, and
    /// the first save turns it into schema 2.
    #[test]
    fn a_schema_1_database_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.db");
        let scorer = Scorer::new(MechanismParams::default(), ScorerConfig::default(), []);
        let reveal = WeightsReveal {
            weights: orchestra_chain::WeightsSubmission {
                netuid: 1,
                mecid: 0,
                uids: vec![2, 5],
                values: vec![100, 65_535],
                version_key: 0,
            },
            salt: vec![9; 8],
        };
        {
            let mut store = StateStore::open(&path).unwrap();
            store.save_legacy_scorer(&scorer.state()).unwrap();
            store.record_anchor(40, 12, "00ff", "ok", "0x01").unwrap();
            store
                .conn
                .execute_batch(
                    "CREATE TABLE reveals (id INTEGER PRIMARY KEY, commit_tempo INTEGER NOT NULL,
                     reveal_tempo INTEGER NOT NULL, payload TEXT NOT NULL,
                     status TEXT NOT NULL, detail TEXT NOT NULL);
                     INSERT INTO meta (key, value) VALUES ('last_tempo_closed', '6')
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value;
                     UPDATE meta SET value = '1' WHERE key = 'schema_version';",
                )
                .unwrap();
            store
                .conn
                .execute(
                    "INSERT INTO reveals (commit_tempo, reveal_tempo, payload, status, detail)
                     VALUES (7, 8, ?1, 'pending', ''), (5, 6, ?1, 'ok', '0x02')",
                    params![serde_json::to_string(&reveal).unwrap()],
                )
                .unwrap();
        }
        let mut store = StateStore::open(&path).unwrap();
        let state = store.validator_state().unwrap().unwrap();
        assert_eq!(state.scorer, scorer.state());
        assert_eq!(
            state.open_tempo,
            Some(7),
            "the tempo after the last closed one"
        );
        assert_eq!(state.last_anchor, Some((40, 12)));
        assert_eq!(
            state.weights.pending_reveals.len(),
            1,
            "only the pending one"
        );
        let p = &state.weights.pending_reveals[0];
        assert_eq!(
            (p.reveal_tempo, &p.weights.uids, &p.salt),
            (8, &vec![2, 5], &vec![9; 8])
        );
        store.save_state(&state).unwrap();
        drop(store);
        let store = StateStore::open(&path).unwrap();
        assert_eq!(store.validator_state().unwrap(), Some(state));
        assert_eq!(store.meta("schema_version").unwrap().as_deref(), Some("2"));
        assert_eq!(store.meta("scorer_state").unwrap(), None);
    }
}
