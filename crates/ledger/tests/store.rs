//! Storage: SQLite round trips, atomic appends, migrations, and clear errors for corrupted,
//! foreign and future files; the in-memory backend behaves the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use orchestra_ledger::log::record_leaf_hash;
use orchestra_ledger::merkle::{verify_consistency, verify_inclusion};
use orchestra_ledger::mocks;
use orchestra_ledger::node::NodeError;
use orchestra_ledger::sqlite::{APPLICATION_ID, MIGRATIONS, SqliteStore};
use orchestra_ledger::store::{MemoryStore, Store, StoreError, Tier};
use orchestra_ledger::{ChangeInput, Credit, LedgerNode, ProposalKind, VerifyParams};
use orchestra_protocol::{Hash32, Hotkey};
use serde_json::json;
use std::path::Path;

fn alice() -> Hotkey {
    Hotkey::from_uri("//Alice").unwrap()
}

fn seed_inputs(me: &str) -> Vec<ChangeInput> {
    mock_entries()
        .iter()
        .map(|e| mocks::seed_change(e, me, 100).unwrap())
        .collect()
}

fn metrics_change(node: &LedgerNode<impl Store>, netuid: u16, p50: u64, block: u64) -> ChangeInput {
    let cur = node.state().get(netuid).unwrap().metrics;
    let mut new = cur;
    new.p50_latency_ms = p50;
    new.p95_latency_ms = new.p95_latency_ms.max(p50);
    ChangeInput {
        block,
        proposal_id: Hash32([p50 as u8; 32]),
        kind: ProposalKind::MetricsUpdate,
        netuid,
        path: "/metrics".into(),
        old: serde_json::to_value(cur).unwrap(),
        new: serde_json::to_value(new).unwrap(),
        proposer: "miner".into(),
        credit: Credit::First,
        verifiers: vec!["v".into()],
        evidence_hash: Hash32([0; 32]),
    }
}

fn exercise<S: Store>(store: S) -> LedgerNode<S> {
    let mut node = LedgerNode::open(store, alice(), VerifyParams::default()).unwrap();
    let me = node.ss58();
    node.append(seed_inputs(&me)).unwrap();
    for (i, n) in [22u16, 13, 22, 64].iter().enumerate() {
        let c = metrics_change(&node, *n, 300 + i as u64 * 10, 101 + i as u64);
        node.append(vec![c]).unwrap();
    }
    node
}

#[test]
fn sqlite_round_trip_reproduces_state_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (head, state) = {
        let node = exercise(SqliteStore::open(&path).unwrap());
        (node.signed_head().clone(), node.state().clone())
    };
    assert_eq!(head.head.tree_size, 16);
    head.verify().unwrap();
    let node = LedgerNode::open(
        SqliteStore::open(&path).unwrap(),
        alice(),
        VerifyParams::default(),
    )
    .unwrap();
    assert_eq!(
        node.signed_head(),
        &head,
        "same key: the stored signed head is reused"
    );
    assert_eq!(node.state(), &state);
    assert_eq!(node.state().get(22).unwrap().version, 3);
    // Proofs from the reopened node verify.
    for seq in 0..16 {
        let p = node.inclusion_proof(seq).unwrap();
        p.verify().unwrap();
        assert_eq!(p.leaf_hash, record_leaf_hash(&p.record).unwrap());
        verify_inclusion(seq, 16, &p.leaf_hash, &p.path, &head.head.root).unwrap();
    }
    let c = node.consistency_proof(12, 16).unwrap();
    verify_consistency(12, 16, &c.from_root, &c.to_root, &c.path).unwrap();
    // A different key re-signs the same head.
    let bob = Hotkey::from_uri("//Bob").unwrap();
    let node = LedgerNode::open(
        SqliteStore::open(&path).unwrap(),
        bob,
        VerifyParams::default(),
    )
    .unwrap();
    assert_eq!(node.signed_head().head, head.head);
    assert_ne!(node.signed_head().signer, head.signer);
    node.signed_head().verify().unwrap();
}

#[test]
fn memory_store_behaves_like_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let a = exercise(MemoryStore::new());
    let b = exercise(SqliteStore::open(&dir.path().join("x.db")).unwrap());
    assert_eq!(a.signed_head().head, b.signed_head().head);
    assert_eq!(a.state(), b.state());
}

#[test]
fn a_bad_change_in_a_batch_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut node = exercise(SqliteStore::open(&path).unwrap());
    let before = node.signed_head().clone();
    let good = metrics_change(&node, 22, 999, 200);
    let mut bad = metrics_change(&node, 13, 998, 200);
    bad.old = json!({"p50_latency_ms": 1});
    let err = node.append(vec![good, bad]).unwrap_err();
    assert!(matches!(err, NodeError::Rejected(_)), "{err}");
    assert_eq!(node.signed_head(), &before);
    // Blocks may not go backwards either.
    let back = metrics_change(&node, 22, 997, 1);
    assert!(node.append(vec![back]).is_err());
    drop(node);
    let node = LedgerNode::open(
        SqliteStore::open(&path).unwrap(),
        alice(),
        VerifyParams::default(),
    )
    .unwrap();
    assert_eq!(node.signed_head().head, before.head);
}

#[test]
fn schema_is_versioned_and_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    let a: i64 = c
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    let j: String = c
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(v, MIGRATIONS.len() as i64);
    assert_eq!(a, APPLICATION_ID);
    assert_eq!(j, "wal");
    // Reopening an up-to-date file is a no-op.
    drop(c);
    drop(SqliteStore::open(&path).unwrap());
}

fn open_err(path: &Path) -> StoreError {
    SqliteStore::open(path).expect_err("should refuse the file")
}

#[test]
fn garbage_file_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(
        &path,
        b"this is definitely not sqlite, just some text padding it out".repeat(100),
    )
    .unwrap();
    let e = open_err(&path);
    assert!(matches!(e, StoreError::NotADatabase { .. }), "{e:?}");
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
}

#[test]
fn foreign_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);")
            .unwrap();
    }
    let e = open_err(&path);
    assert!(matches!(e, StoreError::Foreign { found: 0, .. }), "{e:?}");
    let c = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'changes'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0, "a foreign file must not be migrated");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(
        open_err(&path),
        StoreError::TooNew { found: 99, .. }
    ));
}

#[test]
fn tampered_log_or_entries_are_detected_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(exercise(SqliteStore::open(&path).unwrap()));
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute(
        "UPDATE changes SET record = replace(record, '\"miner\"', '\"mallory\"') WHERE seq = 13",
        [],
    )
    .unwrap();
    drop(c);
    let store = SqliteStore::open(&path).unwrap();
    let err = LedgerNode::open(store, alice(), VerifyParams::default())
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("does not match its stored leaf hash"),
        "{err}"
    );

    let path2 = dir.path().join("ledger2.db");
    drop(exercise(SqliteStore::open(&path2).unwrap()));
    let c = rusqlite::Connection::open(&path2).unwrap();
    c.execute(
        "UPDATE entries SET entry = replace(entry, 'Desearch', 'Dsearch') WHERE netuid = 22",
        [],
    )
    .unwrap();
    drop(c);
    let err = LedgerNode::open(
        SqliteStore::open(&path2).unwrap(),
        alice(),
        VerifyParams::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("entries table differs"), "{err}");
}

#[test]
fn damaged_pages_give_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(exercise(SqliteStore::open(&path).unwrap()));
    // Checkpoint the WAL into the main file, then scribble over every page after the first.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 8192);
    for b in bytes[4096..].iter_mut().step_by(7) {
        *b ^= 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let res = SqliteStore::open(&path)
        .map(|s| LedgerNode::open(s, alice(), VerifyParams::default()).map(|_| ()));
    let msg = match res {
        Err(e) => e.to_string(),
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => panic!("a scribbled file must not open cleanly"),
    };
    assert!(!msg.is_empty());
}

#[test]
fn keys_and_usage_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut s = SqliteStore::open(&path).unwrap();
    let k = s
        .create_key(Hash32([1; 32]), Tier::Developer, Some("acme"), 5)
        .unwrap();
    let k2 = s.create_key(Hash32([2; 32]), Tier::Free, None, 6).unwrap();
    assert!(
        s.create_key(Hash32([1; 32]), Tier::Free, None, 7).is_err(),
        "hashes are unique"
    );
    s.add_usage(&[(k.id, "2026-11".into(), 3), (k2.id, "2026-11".into(), 1)])
        .unwrap();
    s.add_usage(&[(k.id, "2026-11".into(), 4)]).unwrap();
    s.revoke_key(k2.id, 9).unwrap();
    assert!(matches!(
        s.revoke_key(999, 9),
        Err(StoreError::NoSuchKey(999))
    ));
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.usage(k.id, "2026-11").unwrap(), 7);
    assert_eq!(s.usage(k.id, "2026-12").unwrap(), 0);
    let keys = s.list_keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].label.as_deref(), Some("acme"));
    assert_eq!(keys[1].revoked_at, Some(9));
}

/// A store whose commits fail on demand, to check a failed write leaves the node unchanged.
struct Flaky {
    inner: MemoryStore,
    fail: bool,
}

impl Store for Flaky {
    fn load(&self) -> Result<orchestra_ledger::store::Persisted, StoreError> {
        self.inner.load()
    }
    fn commit(&mut self, c: orchestra_ledger::store::Commit<'_>) -> Result<(), StoreError> {
        if self.fail {
            return Err(StoreError::Corrupt {
                path: "flaky".into(),
                detail: "disk on fire".into(),
            });
        }
        self.inner.commit(c)
    }
    fn records(
        &self,
        since: u64,
        limit: usize,
    ) -> Result<Vec<orchestra_ledger::ChangeRecord>, StoreError> {
        self.inner.records(since, limit)
    }
    fn create_key(
        &mut self,
        h: Hash32,
        t: Tier,
        l: Option<&str>,
        n: u64,
    ) -> Result<orchestra_ledger::store::ApiKey, StoreError> {
        self.inner.create_key(h, t, l, n)
    }
    fn list_keys(&self) -> Result<Vec<orchestra_ledger::store::ApiKey>, StoreError> {
        self.inner.list_keys()
    }
    fn revoke_key(&mut self, id: i64, n: u64) -> Result<(), StoreError> {
        self.inner.revoke_key(id, n)
    }
    fn add_usage(&mut self, d: &[(i64, String, u64)]) -> Result<(), StoreError> {
        self.inner.add_usage(d)
    }
    fn usage(&self, k: i64, p: &str) -> Result<u64, StoreError> {
        self.inner.usage(k, p)
    }
}

#[test]
fn a_failed_commit_leaves_the_node_as_it_was() {
    let mut node = exercise(Flaky {
        inner: MemoryStore::new(),
        fail: false,
    });
    let before_head = node.signed_head().clone();
    let before_state = node.state().clone();
    let c = metrics_change(&node, 22, 777, 300);
    node.store_mut().fail = true;
    let err = node.append(vec![c.clone()]).unwrap_err();
    assert!(matches!(err, NodeError::Store(_)), "{err}");
    assert_eq!(node.signed_head(), &before_head);
    assert_eq!(node.state(), &before_state);
    assert_eq!(node.ledger().head(), before_head.head);
    // Once the store recovers, the same change appends at the same position.
    node.store_mut().fail = false;
    let recs = node.append(vec![c]).unwrap();
    assert_eq!(recs[0].seq, before_head.head.tree_size);
    let replayed = orchestra_ledger::Ledger::replay(
        &node.store().load().unwrap().records,
        VerifyParams::default(),
    )
    .unwrap();
    assert_eq!(replayed.head(), node.signed_head().head);
}
