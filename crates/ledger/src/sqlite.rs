//! The SQLite [`Store`] for nodes.
//!
//! - WAL journal with `synchronous=FULL`: a commit is fsynced before it returns, so a change the
//!   API acknowledged survives SIGKILL and power loss. Writes are rare (validators append a few
//!   changes per block), so FULL costs nothing that matters; reads never touch SQLite on the hot
//!   path.
//! - `PRAGMA application_id` marks our files, so a foreign database is refused rather than
//!   migrated; `PRAGMA user_version` numbers the schema and [`MIGRATIONS`] upgrade it in order,
//!   each in its own transaction.
//! - Opening runs `PRAGMA quick_check`, and [`SqliteStore::load`] re-hashes every record against
//!   its stored leaf hash, so damage is reported as [`StoreError::Corrupt`] instead of served.

use crate::log::SignedTreeHead;
use crate::model::{ChangeRecord, FieldBlocks};
use crate::store::{ApiKey, Commit, Persisted, Store, StoreError, Tier};
use orchestra_protocol::Hash32;
use orchestra_protocol::canonical_json;
use orchestra_protocol::ledger::Entry;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `PRAGMA application_id` of Ledger files: ASCII "OLDG".
pub const APPLICATION_ID: i64 = 0x4F4C_4447;

/// Schema migrations; entry `i` upgrades `user_version` `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: change log, entries, head, API keys, usage.
    "CREATE TABLE changes (
        seq INTEGER PRIMARY KEY,
        block INTEGER NOT NULL,
        record TEXT NOT NULL,
        leaf_hash BLOB NOT NULL
     );
     CREATE TABLE entries (
        netuid INTEGER PRIMARY KEY,
        entry TEXT NOT NULL,
        metrics_block INTEGER NOT NULL,
        schema_block INTEGER NOT NULL
     );
     CREATE TABLE head (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        sth TEXT NOT NULL
     );
     CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key_hash TEXT NOT NULL UNIQUE,
        tier TEXT NOT NULL,
        label TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
     );
     CREATE TABLE usage (
        key_id INTEGER NOT NULL REFERENCES api_keys(id),
        period TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (key_id, period)
     );",
];

/// A Ledger database file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path.display())
    }
}

fn sql(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { context, source }
}

impl SqliteStore {
    /// Open (creating if absent) and migrate a Ledger database, refusing foreign or damaged files.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let p = path.to_path_buf();
        let not_db = |e: rusqlite::Error, context: &'static str| match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path: p.clone() },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
                path: p.clone(),
                detail: e.to_string(),
            },
            _ => StoreError::Sqlite { context, source: e },
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| not_db(e, "opening the database"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| not_db(e, "setting the busy timeout"))?;
        // The first read of the header is where a non-database file shows itself.
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| not_db(e, "reading application_id"))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| not_db(e, "reading user_version"))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| not_db(e, "reading the schema"))?;
        let fresh = app_id == 0 && version == 0 && tables == 0;
        if !fresh && app_id != APPLICATION_ID {
            return Err(StoreError::Foreign {
                path: p,
                found: app_id,
            });
        }
        let latest = MIGRATIONS.len() as i64;
        if version > latest {
            return Err(StoreError::TooNew {
                path: p,
                found: version,
                supported: latest,
            });
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| not_db(e, "checking integrity"))?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: p,
                detail: check,
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| not_db(e, "enabling WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "could not enable WAL journal mode");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| not_db(e, "setting synchronous=FULL"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| not_db(e, "enabling foreign keys"))?;
        let mut store = SqliteStore { conn, path: p };
        store.migrate(version)?;
        Ok(store)
    }

    /// Apply every migration after `from`, each with its version bump in one transaction.
    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        for (i, step) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let tx = self
                .conn
                .transaction()
                .map_err(sql("starting a migration"))?;
            tx.execute_batch(step)
                .map_err(sql("migrating the schema"))?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(sql("setting application_id"))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql("setting user_version"))?;
            tx.commit().map_err(sql("committing a migration"))?;
            tracing::info!(version = i + 1, path = %self.path.display(), "migrated database");
        }
        Ok(())
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            detail,
        }
    }
}

fn codec(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Codec {
        what,
        detail: e.to_string(),
    }
}

fn to_hash(bytes: Vec<u8>) -> Option<Hash32> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(Hash32(arr))
}

/// A raw `api_keys` row: id, hash, tier, label, created_at, revoked_at.
type KeyRow = (i64, String, String, Option<String>, i64, Option<i64>);

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Persisted, StoreError> {
        let mut out = Persisted::default();
        let mut stmt = self
            .conn
            .prepare("SELECT seq, record, leaf_hash FROM changes ORDER BY seq")
            .map_err(sql("reading the change log"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(sql("reading the change log"))?;
        for row in rows {
            let (seq, text, leaf) = row.map_err(sql("reading the change log"))?;
            let record: ChangeRecord =
                serde_json::from_str(&text).map_err(codec("change record"))?;
            let leaf = to_hash(leaf)
                .ok_or_else(|| self.corrupt(format!("leaf hash of seq {seq} is not 32 bytes")))?;
            if record.seq != seq as u64 || seq as usize != out.records.len() {
                return Err(self.corrupt(format!(
                    "change log has a gap or misnumbered row at seq {seq}"
                )));
            }
            let recomputed = crate::merkle::leaf_hash(text.as_bytes());
            if recomputed != leaf {
                return Err(
                    self.corrupt(format!("record {seq} does not match its stored leaf hash"))
                );
            }
            out.records.push(record);
            out.leaves.push(leaf);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT netuid, entry, metrics_block, schema_block FROM entries")
            .map_err(sql("reading entries"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(sql("reading entries"))?;
        for row in rows {
            let (netuid, text, mb, sb) = row.map_err(sql("reading entries"))?;
            let entry: Entry = serde_json::from_str(&text).map_err(codec("entry"))?;
            let netuid = u16::try_from(netuid)
                .map_err(|_| self.corrupt(format!("netuid {netuid} out of range")))?;
            out.entries.insert(
                netuid,
                (
                    entry,
                    FieldBlocks {
                        metrics_block: mb as u64,
                        schema_block: sb as u64,
                    },
                ),
            );
        }
        let head: Option<String> = self
            .conn
            .query_row("SELECT sth FROM head WHERE id = 0", [], |r| r.get(0))
            .optional()
            .map_err(sql("reading the head"))?;
        out.head = head
            .map(|t| serde_json::from_str::<SignedTreeHead>(&t))
            .transpose()
            .map_err(codec("tree head"))?;
        Ok(out)
    }

    fn commit(&mut self, c: Commit<'_>) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql("starting a commit"))?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO changes (seq, block, record, leaf_hash) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql("appending changes"))?;
            for (r, leaf) in c.records.iter().zip(c.leaves) {
                // Stored as the exact canonical bytes that were hashed into the leaf.
                let text = canonical_json(r).map_err(|e| StoreError::Codec {
                    what: "change record",
                    detail: e.to_string(),
                })?;
                let text = String::from_utf8(text).map_err(|e| StoreError::Codec {
                    what: "change record",
                    detail: e.to_string(),
                })?;
                ins.execute(params![
                    r.seq as i64,
                    r.block as i64,
                    text,
                    leaf.0.as_slice()
                ])
                .map_err(sql("appending changes"))?;
            }
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO entries (netuid, entry, metrics_block, schema_block) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(netuid) DO UPDATE SET entry = excluded.entry,
                       metrics_block = excluded.metrics_block, schema_block = excluded.schema_block",
                )
                .map_err(sql("updating entries"))?;
            for (e, f) in c.entries {
                let text = serde_json::to_string(e).map_err(codec("entry"))?;
                up.execute(params![
                    e.netuid,
                    text,
                    f.metrics_block as i64,
                    f.schema_block as i64
                ])
                .map_err(sql("updating entries"))?;
            }
            let sth = serde_json::to_string(c.head).map_err(codec("tree head"))?;
            tx.execute(
                "INSERT INTO head (id, sth) VALUES (0, ?1) ON CONFLICT(id) DO UPDATE SET sth = excluded.sth",
                params![sth],
            )
            .map_err(sql("advancing the head"))?;
        }
        tx.commit().map_err(sql("committing changes"))
    }

    fn records(&self, since: u64, limit: usize) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record FROM changes WHERE seq >= ?1 ORDER BY seq LIMIT ?2")
            .map_err(sql("reading the change log"))?;
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![since, limit], |r| r.get::<_, String>(0))
            .map_err(sql("reading the change log"))?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.map_err(sql("reading the change log"))?;
            out.push(serde_json::from_str(&text).map_err(codec("change record"))?);
        }
        Ok(out)
    }

    fn create_key(
        &mut self,
        key_hash: Hash32,
        tier: Tier,
        label: Option<&str>,
        now_secs: u64,
    ) -> Result<ApiKey, StoreError> {
        self.conn
            .execute(
                "INSERT INTO api_keys (key_hash, tier, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![key_hash.to_hex(), tier.name(), label, now_secs as i64],
            )
            .map_err(sql("creating an API key"))?;
        Ok(ApiKey {
            id: self.conn.last_insert_rowid(),
            key_hash,
            tier,
            label: label.map(str::to_string),
            created_at: now_secs,
            revoked_at: None,
        })
    }

    fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, key_hash, tier, label, created_at, revoked_at FROM api_keys ORDER BY id")
            .map_err(sql("listing API keys"))?;
        let rows = stmt
            .query_map([], key_from_row)
            .map_err(sql("listing API keys"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, hash, tier, label, created, revoked) = row.map_err(sql("listing API keys"))?;
            out.push(ApiKey {
                id,
                key_hash: hash
                    .parse()
                    .map_err(|_| self.corrupt(format!("key {id} has a bad hash")))?,
                tier: Tier::from_name(&tier)
                    .ok_or_else(|| self.corrupt(format!("key {id} has unknown tier {tier:?}")))?,
                label,
                created_at: created as u64,
                revoked_at: revoked.map(|r| r as u64),
            });
        }
        Ok(out)
    }

    fn revoke_key(&mut self, id: i64, now_secs: u64) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
                params![id, now_secs as i64],
            )
            .map_err(sql("revoking an API key"))?;
        if n == 0 {
            return Err(StoreError::NoSuchKey(id));
        }
        Ok(())
    }

    fn add_usage(&mut self, deltas: &[(i64, String, u64)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql("recording usage"))?;
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO usage (key_id, period, count) VALUES (?1, ?2, ?3)
                     ON CONFLICT(key_id, period) DO UPDATE SET count = count + excluded.count",
                )
                .map_err(sql("recording usage"))?;
            for (k, p, n) in deltas {
                up.execute(params![k, p, *n as i64])
                    .map_err(sql("recording usage"))?;
            }
        }
        tx.commit().map_err(sql("recording usage"))
    }

    fn usage(&self, key_id: i64, period: &str) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .conn
            .query_row(
                "SELECT count FROM usage WHERE key_id = ?1 AND period = ?2",
                params![key_id, period],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading usage"))?;
        Ok(n.unwrap_or(0) as u64)
    }
}
