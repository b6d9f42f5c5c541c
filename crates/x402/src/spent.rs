//! The set of payments already used: durable (SQLite) for servers, in memory for tests. A
//! payment is written here, synchronously, before the answer it bought leaves the server, so a
//! restart cannot make a payment buy a second call.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// One used payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentPayment {
    /// `<block hash>:<extrinsic index>`.
    pub id: String,
    /// Payer ss58.
    pub payer: String,
    /// Rao received.
    pub amount_rao: u64,
    /// The call it bought (`METHOD path`).
    pub call: String,
    /// When, Unix seconds.
    pub at_secs: u64,
}

/// Where used payments are remembered.
pub trait SpentPayments: Send + Sync + 'static {
    /// Whether `id` has bought a call already.
    fn is_spent(&self, id: &str) -> Result<bool, String>;
    /// Record `payment` as used; `false` if it already was (nothing is changed then).
    fn mark_spent(&self, payment: &SpentPayment) -> Result<bool, String>;
}

/// In memory (tests, and servers that accept losing the set on restart).
#[derive(Debug, Default)]
pub struct MemorySpent(Mutex<HashMap<String, SpentPayment>>);

impl SpentPayments for MemorySpent {
    fn is_spent(&self, id: &str) -> Result<bool, String> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(id))
    }

    fn mark_spent(&self, payment: &SpentPayment) -> Result<bool, String> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&payment.id) {
            return Ok(false);
        }
        map.insert(payment.id.clone(), payment.clone());
        Ok(true)
    }
}

/// In a SQLite file (`payments` table; WAL, synchronous commits).
pub struct SqliteSpent(Mutex<Connection>);

impl std::fmt::Debug for SqliteSpent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteSpent")
    }
}

impl SqliteSpent {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteSpent, String> {
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS payments (
                 id TEXT PRIMARY KEY, payer TEXT NOT NULL, amount_rao INTEGER NOT NULL,
                 call TEXT NOT NULL, at_secs INTEGER NOT NULL);",
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(SqliteSpent(Mutex::new(conn)))
    }

    /// Every used payment, oldest first.
    pub fn list(&self) -> Result<Vec<SpentPayment>, String> {
        let conn = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = conn
            .prepare(
                "SELECT id, payer, amount_rao, call, at_secs FROM payments ORDER BY at_secs, id",
            )
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SpentPayment {
                    id: r.get(0)?,
                    payer: r.get(1)?,
                    amount_rao: r.get::<_, i64>(2)? as u64,
                    call: r.get(3)?,
                    at_secs: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }
}

impl SpentPayments for SqliteSpent {
    fn is_spent(&self, id: &str) -> Result<bool, String> {
        let conn = self.0.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row("SELECT 1 FROM payments WHERE id = ?1", [id], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| e.to_string())
    }

    fn mark_spent(&self, p: &SpentPayment) -> Result<bool, String> {
        let conn = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO payments (id, payer, amount_rao, call, at_secs)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    p.id,
                    p.payer,
                    i64::try_from(p.amount_rao).unwrap_or(i64::MAX),
                    p.call,
                    i64::try_from(p.at_secs).unwrap_or(i64::MAX)
                ],
            )
            .map_err(|e| e.to_string())?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn p(id: &str) -> SpentPayment {
        SpentPayment {
            id: id.into(),
            payer: "5x".into(),
            amount_rao: 7,
            call: "GET /x".into(),
            at_secs: 1,
        }
    }

    #[test]
    fn a_payment_is_spent_once_and_stays_spent_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("payments.db");
        {
            let s = SqliteSpent::open(&path).unwrap();
            assert!(!s.is_spent("a").unwrap());
            assert!(s.mark_spent(&p("a")).unwrap());
            assert!(!s.mark_spent(&p("a")).unwrap());
            assert!(s.is_spent("a").unwrap());
        }
        let s = SqliteSpent::open(&path).unwrap();
        assert!(s.is_spent("a").unwrap());
        assert_eq!(s.list().unwrap(), vec![p("a")]);
        let m = MemorySpent::default();
        assert!(m.mark_spent(&p("a")).unwrap());
        assert!(!m.mark_spent(&p("a")).unwrap());
    }
}
