#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `kill -9` the validator of a running devnet mid-run: on restart its scores and its Ledger
//! replica are exactly what was durably written before the kill, and it resumes the tempo
//! schedule (the next tempo closes, with weights set).
//!
//! The validator is frozen with SIGSTOP before its files are read, so nothing is written
//! between reading and killing; SIGKILL then gives it no chance to flush anything.
//!
//! Needs Node.js (Chopsticks) and the chain spec, like `tests/devnet.rs`.

mod devnet_support;

use devnet_support::{binaries, wait_for};
use orchestra_ledger::node::LedgerNode;
use orchestra_ledger::sqlite::SqliteStore;
use orchestra_ledger::store::Store;
use orchestra_ledger::{ChangeRecord, VerifyParams};
use orchestra_node::devnet::{Devnet, DevnetConfig};
use orchestra_node::validator::store::StateStore;
use orchestra_protocol::Hotkey;
use orchestra_validator::ScorerState;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn observations(status: &Value) -> Vec<u64> {
    status["scores"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s["observations"].as_u64().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// The replica as stored: every record and the head (size, root).
fn read_ledger(path: &Path) -> Result<(Vec<ChangeRecord>, u64, String), String> {
    let store: Box<dyn Store> = Box::new(SqliteStore::open(path).map_err(|e| e.to_string())?);
    let node = LedgerNode::open(
        store,
        Hotkey::from_uri("//Alice").map_err(|e| e.to_string())?,
        VerifyParams::default(),
    )
    .map_err(|e| e.to_string())?;
    let head = node.signed_head().head;
    let records = node
        .store()
        .records(0, 100_000)
        .map_err(|e| e.to_string())?;
    Ok((records, head.tree_size, head.root.to_string()))
}

/// One closed tempo's scores by uid: (orchestration, Ledger).
type TempoScores = std::collections::BTreeMap<u16, (f64, f64)>;

/// What the validator has saved: its scorer state, last closed tempo and that tempo's scores.
fn read_state(path: &Path) -> Result<(ScorerState, u64, TempoScores), String> {
    let store = StateStore::open(path).map_err(|e| e.to_string())?;
    let state = store
        .scorer_state()
        .map_err(|e| e.to_string())?
        .ok_or("no saved scorer state")?;
    let tempo = store
        .last_tempo_closed()
        .map_err(|e| e.to_string())?
        .ok_or("no closed tempo")?;
    let rows = store.tempo_scores(tempo).map_err(|e| e.to_string())?;
    Ok((state, tempo, rows))
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_and_ledger_survive_kill_9() {
    let work = tempfile::tempdir().unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = DevnetConfig::new(binaries(), repo, work.path().to_path_buf());
    let mut devnet = Devnet::start(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Run until a tempo has closed with both miners scored and a schema change is in the Ledger,
    // so the state is non-trivial.
    let first = wait_for(
        &devnet,
        "the first tempo closed",
        Duration::from_secs(30),
        || async { devnet.status().await.ok()?["last_tempo_closed"].as_u64() },
    )
    .await;
    devnet
        .set_schema_version(22, "web_search", 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        &devnet,
        "a closed tempo, both miners scored, the schema change committed",
        Duration::from_secs(60),
        || async {
            let s = devnet.status().await.ok()?;
            let closed = s["last_tempo_closed"].as_u64()? > first;
            let scored = observations(&s).iter().filter(|&&n| n >= 3).count() == 2;
            let grown = s["ledger_tree_size"].as_u64()? > 12;
            (closed && scored && grown).then_some(())
        },
    )
    .await;

    // Freeze, read what is on disk, then kill -9. Stopped inside a write transaction, the
    // validator holds its database's lock and the reads here time out: then let it run a moment
    // to finish and freeze it again.
    let state_dir = devnet.validator_state.clone();
    let pid = devnet.validator_proc().unwrap().child.id();
    let mut attempts = 0;
    let ((saved_state, saved_tempo, saved_rows), (records_before, size_before, root_before)) = loop {
        signal(pid, "-STOP");
        let read = read_state(&state_dir.join("validator.db"))
            .and_then(|state| Ok((state, read_ledger(&state_dir.join("ledger.db"))?)));
        match read {
            Ok(saved) => break saved,
            Err(e) => {
                attempts += 1;
                assert!(attempts < 5, "reading the frozen validator's files: {e}");
                signal(pid, "-CONT");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert!(size_before > 12, "the schema change is in the replica");
    assert_eq!(records_before.len() as u64, size_before);
    assert!(saved_state.ema.iter().count() >= 2, "{saved_state:?}");
    assert!(!saved_rows.is_empty());
    devnet.kill_validator();

    // Restart on the same state directory.
    devnet
        .start_validator()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = devnet.status().await.unwrap();
    let restored: ScorerState = serde_json::from_value(status["restored"].clone())
        .expect("the restarted validator reports the state it restored");
    assert_eq!(restored, saved_state, "scores restored exactly");
    let head = devnet.ledger_get("/v1/head").await.unwrap();
    assert_eq!(head["head"]["tree_size"], size_before);
    assert_eq!(head["head"]["root"], root_before.as_str());
    let log = devnet
        .ledger_get(&format!("/v1/log?since=0&limit={size_before}"))
        .await
        .unwrap();
    let served: Vec<ChangeRecord> = serde_json::from_value(log["records"].clone()).unwrap();
    assert_eq!(served, records_before, "the replica is intact");

    // It resumes the schedule: the next tempo closes and weights are set again.
    let resumed = wait_for(
        &devnet,
        "the next tempo closed after the restart",
        Duration::from_secs(40),
        || async {
            let s = devnet.status().await.ok()?;
            let t = s["last_tempo_closed"].as_u64()?;
            (t > saved_tempo && s["weights_set"].as_u64()? >= 1).then_some(t)
        },
    )
    .await;
    let store = StateStore::open(&state_dir.join("validator.db")).unwrap();
    assert_eq!(store.last_tempo_closed().unwrap(), Some(resumed));
    assert!(!store.tempo_scores(resumed).unwrap().is_empty());
    assert_eq!(
        store.tempo_scores(saved_tempo).unwrap(),
        saved_rows,
        "earlier tempos' scores are kept"
    );
    // Scoring went on from the restored EMAs, not from zero.
    let after = devnet.status().await.unwrap();
    let before_obs: u64 = saved_state
        .ema
        .iter()
        .map(|(_, e)| e.orchestration_observations)
        .sum();
    let after_obs: u64 = observations(&after).iter().sum();
    assert!(after_obs >= before_obs, "{after_obs} < {before_obs}");
    println!(
        "restored {} miners and {size_before} Ledger records; tempo {saved_tempo} -> {resumed}",
        restored.ema.iter().count()
    );
}
