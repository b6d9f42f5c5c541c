//! End-to-end with the real binary: appends through the running server, SIGKILL mid-burst,
//! restart, and every acknowledged change is there with a consistent head. Also the CLI (seed,
//! keys) and clear errors for corrupted or foreign database files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use orchestra_ledger::log::{ConsistencyProof, SignedTreeHead};
use orchestra_ledger::{ChangeRecord, Credit, Ledger, ProposalKind, VerifyParams};
use orchestra_protocol::{Hash32, Hotkey};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_orchestra-ledger");
const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

/// Start `serve` on an OS-assigned loopback port; returns the child and its address.
fn serve(db: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(BIN)
        .args(["serve", "--db"])
        .arg(db)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--hotkey",
            "//Alice",
            "--flush-ms",
            "100",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (child, addr)
}

fn new_subnet(netuid: u16) -> Value {
    let e = entry(netuid);
    json!({
        "block": 1_000, "proposal_id": Hash32([(netuid % 251) as u8; 32]),
        "kind": ProposalKind::NewSubnet, "netuid": netuid, "path": "", "old": null,
        "new": e, "proposer": "miner", "credit": Credit::First, "verifiers": [ALICE],
        "evidence_hash": Hash32([0; 32])
    })
}

fn signed_get(addr: SocketAddr, target: &str) -> Resp {
    let bob = Hotkey::from_uri("//Bob").unwrap();
    let h = signed(&bob, ALICE, "GET", target, b"");
    http(addr, "GET", target, &h, b"").unwrap()
}

#[derive(Debug, Clone)]
struct Ack {
    netuid: u16,
    seq: u64,
    head: SignedTreeHead,
}

#[test]
fn acknowledged_changes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let (mut child, addr) = serve(&db);
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Two writers in a tight loop, so the kill lands in the middle of in-flight appends.
    let writers: Vec<_> = (0..2u16)
        .map(|w| {
            let (acks, stop) = (acks.clone(), stop.clone());
            std::thread::spawn(move || {
                let alice = Hotkey::from_uri("//Alice").unwrap();
                let mut netuid = 1 + w;
                while !stop.load(Ordering::Relaxed) && netuid < 60_000 {
                    let body =
                        serde_json::to_vec(&json!({ "changes": [new_subnet(netuid)] })).unwrap();
                    let mut h = signed(&alice, ALICE, "POST", "/v1/changes", &body);
                    h.push(("Content-Type", "application/json".into()));
                    match http(addr, "POST", "/v1/changes", &h, &body) {
                        Ok(r) if r.status == 200 => {
                            let j = r.json();
                            let head: SignedTreeHead =
                                serde_json::from_value(j["head"].clone()).unwrap();
                            let seq = j["seqs"][0].as_u64().unwrap();
                            acks.lock().unwrap().push(Ack { netuid, seq, head });
                        }
                        // 409 would mean a lost race on block order; anything else is the kill.
                        Ok(r) if r.status == 409 => {}
                        Ok(r) => panic!(
                            "unexpected {} {:?}",
                            r.status,
                            String::from_utf8_lossy(&r.body)
                        ),
                        Err(_) => break,
                    }
                    netuid += 2;
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    while acks.lock().unwrap().len() < 40 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acks = acks.lock().unwrap().clone();
    assert!(
        acks.len() >= 40,
        "only {} acknowledged before the timeout",
        acks.len()
    );

    let (mut child, addr) = serve(&db);
    let head: SignedTreeHead =
        serde_json::from_value(signed_get(addr, "/v1/head").json()["head"].clone()).unwrap();
    head.verify().unwrap();
    let j = signed_get(addr, "/v1/log?since=0&limit=1000").json();
    let records: Vec<ChangeRecord> = serde_json::from_value(j["records"].clone()).unwrap();
    assert_eq!(records.len() as u64, head.head.tree_size);
    assert!(head.head.tree_size >= acks.len() as u64);
    eprintln!(
        "acknowledged {} before SIGKILL; {} recovered after restart",
        acks.len(),
        head.head.tree_size
    );
    for a in &acks {
        let r = &records[a.seq as usize];
        assert_eq!(
            r.netuid, a.netuid,
            "acknowledged seq {} lost or changed",
            a.seq
        );
        let e = signed_get(addr, &format!("/v1/subnets/{}", a.netuid));
        assert_eq!(e.status, 200, "acknowledged subnet {} missing", a.netuid);
    }
    // The served head is what the served log replays to, and extends every acknowledged head.
    let replayed = Ledger::replay(&records, VerifyParams::default()).unwrap();
    assert_eq!(replayed.head(), head.head);
    let latest = acks.iter().max_by_key(|a| a.head.head.tree_size).unwrap();
    let from = latest.head.head.tree_size;
    let c: ConsistencyProof = serde_json::from_value(
        signed_get(addr, &format!("/v1/consistency?from={from}")).json()["proof"].clone(),
    )
    .unwrap();
    assert_eq!(c.from_root, latest.head.head.root);
    assert_eq!(c.to_root, head.head.root);
    c.verify().unwrap();
    // And it still accepts writes after the restart.
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let body = serde_json::to_vec(&json!({ "changes": [new_subnet(65_000)] })).unwrap();
    let mut h = signed(&alice, ALICE, "POST", "/v1/changes", &body);
    h.push(("Content-Type", "application/json".into()));
    assert_eq!(
        http(addr, "POST", "/v1/changes", &h, &body).unwrap().status,
        200
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn corrupted_or_foreign_db_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all; ".repeat(500)).unwrap();
    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE songs (id INTEGER PRIMARY KEY);")
        .unwrap();
    for (db, needle) in [
        (&garbage, "not an SQLite database"),
        (&foreign, "another application"),
    ] {
        let db = db.to_str().unwrap();
        for args in [
            vec![
                "serve",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--hotkey",
                "//Alice",
            ],
            vec!["keys", "--db", db, "list"],
        ] {
            let out = run(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} succeeded");
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn cli_seeds_and_manages_keys_against_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let dbs = db.to_str().unwrap();
    let mocks = mocks_dir();
    let out = run(&[
        "seed",
        "--db",
        dbs,
        "--mocks",
        mocks.to_str().unwrap(),
        "--hotkey",
        "//Alice",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("seeded 12 of 12"));
    // Seeding again is idempotent.
    let out = run(&[
        "seed",
        "--db",
        dbs,
        "--mocks",
        mocks.to_str().unwrap(),
        "--hotkey",
        "//Alice",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("seeded 0 of 12"));
    let out = run(&[
        "keys",
        "--db",
        dbs,
        "create",
        "--tier",
        "production",
        "--label",
        "acme",
    ]);
    assert!(out.status.success());
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("olk_") && key.len() == 68, "{key}");
    let list = String::from_utf8_lossy(&run(&["keys", "--db", dbs, "list"]).stdout).to_string();
    assert!(
        list.contains("production") && list.contains("acme") && list.contains("active"),
        "{list}"
    );
    assert!(
        !list.contains(&key),
        "the key itself is never stored or shown again"
    );

    let (mut child, addr) = serve(&db);
    let auth = [("Authorization", format!("Bearer {key}"))];
    let r = http(addr, "GET", "/v1/capabilities/web_search", &auth, b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["endpoints"][0]["netuid"], 22);
    // Every answered request is one lookup; refused ones are not counted.
    let mut served = 1;
    // Revoked through the CLI while the server runs: refused within a refresh interval.
    let out = run(&["keys", "--db", dbs, "revoke", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = Instant::now();
    let status = loop {
        let r = http(addr, "GET", "/v1/subnets", &auth, b"").unwrap();
        if r.status != 200 || t0.elapsed() > Duration::from_secs(10) {
            break r;
        }
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.status, 401);
    assert_eq!(status.json()["error"], "revoked_key");
    // The periodic flush (every 100 ms) meters exactly the answered requests to SQLite while
    // the server keeps running; no shutdown flush is involved.
    let c = rusqlite::Connection::open(&db).unwrap();
    let usage = || -> i64 {
        c.query_row(
            "SELECT coalesce(sum(count), 0) FROM usage WHERE key_id = 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let t0 = Instant::now();
    while usage() < served && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(usage(), served, "usage after {served} answered requests");
    let out = run(&["keys", "--db", dbs, "revoke", "42"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API key with id 42"));
}

#[test]
fn sigterm_flushes_usage_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let dbs = db.to_str().unwrap();
    let out = run(&["keys", "create", "--db", dbs, "--tier", "developer"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // A long flush interval: only the shutdown flush can have written the counts.
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--db",
            dbs,
            "--listen",
            "127.0.0.1:0",
            "--hotkey",
            "//Alice",
        ])
        .args(["--flush-ms", "3600000"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    let auth = [("Authorization", format!("Bearer {key}"))];
    for _ in 0..7 {
        assert_eq!(
            http(addr, "GET", "/v1/subnets", &auth, b"").unwrap().status,
            200
        );
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    let c = rusqlite::Connection::open(&db).unwrap();
    let used: i64 = c
        .query_row("SELECT coalesce(sum(count), 0) FROM usage", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(used, 7);
}
