//! The miner server over HTTP against the HTTP mock subnets: a correctly signed challenge from a
//! permitted validator gets a response whose proof verifies with the protocol's verifier and
//! whose body the miner signed; switching a mock's schema version makes the miner propose a
//! schema update; a fabricating miner's response still verifies (the audit, not the proof,
//! catches it) but carries invented sub-responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod miner_support;

use miner_support::*;
use orchestra_node::auth::{now_ms, now_ns};
use orchestra_node::miner::MinerSettings;
use orchestra_protocol::btauth::{AuthHeaders, Verifier};
use orchestra_protocol::ledger::ProposalChange;
use orchestra_protocol::messages::Response;
use orchestra_protocol::proof;
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_challenge_gets_a_verifiable_signed_response() {
    let (mocks, _) = start_mocks(0.05).await;
    let (addr, miner) = start_miner(mocks, &[ALICE], MinerSettings::default()).await;
    let alice = hotkey(ALICE);
    let http = reqwest::Client::new();
    let c = challenge(&alice.ss58(), 1, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let t0 = std::time::Instant::now();
    let r = post_signed(&http, addr, &alice, miner.ss58(), &body, now_ns()).await;
    assert_eq!(r.status(), 200);
    let received = now_ms();
    eprintln!("answered in {:?}", t0.elapsed());
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let response: Response = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(response.miner, miner.ss58());
    assert!(!response.pipeline.is_empty(), "no sub-calls were made");
    proof::verify(&c, &response, received).expect("the proof verifies");
    let caps: BTreeSet<&str> = response
        .plan
        .steps
        .iter()
        .map(|s| s.capability.as_str())
        .collect();
    assert!(caps.len() >= 2, "{caps:?}");
    // Independent DAG branches ran in parallel: some two sub-calls overlap in time.
    let p = &response.pipeline;
    let overlap = (0..p.len()).any(|i| {
        (0..i).any(|j| {
            p[i].started_at_ms < p[j].finished_at_ms() && p[j].started_at_ms < p[i].finished_at_ms()
        })
    });
    assert!(
        overlap,
        "no two sub-calls overlapped: {:?}",
        p.iter()
            .map(|s| (&s.step_id, s.started_at_ms, s.latency_ms))
            .collect::<Vec<_>>()
    );
    // Receipts the mocks signed verify as the validator's auditor checks them.
    for step in &response.pipeline {
        if let Some(r) = &step.receipt {
            assert!(
                orchestra_validator::audit::receipt_valid(step, r),
                "{}",
                step.step_id
            );
        }
    }
    // The data satisfies the target schema.
    let schema = orchestra_miner::compile_schema(&c.target_schema).unwrap();
    assert!(
        schema.is_valid(&response.standardized_data),
        "{}",
        response.standardized_data
    );
    // The miner signed the body for the validator.
    let verifier = Verifier::new(alice.ss58());
    let h = AuthHeaders::from_lookup(|n| headers.get(n).and_then(|v| v.to_str().ok()));
    let signer = verifier
        .verify(&h, &bytes, "POST", "/orchestrate", now_ns())
        .expect("response signature");
    assert_eq!(signer.hotkey, miner.ss58());

    // A body that is not a challenge is a 400; a challenge naming another validator too.
    let r = post_signed(&http, addr, &alice, miner.ss58(), b"{\"x\":1}", now_ns()).await;
    assert_eq!(r.status(), 400);
    let mut other = challenge(&hotkey("//Bob").ss58(), 2, 5_000);
    other.validator = hotkey("//Bob").ss58();
    let r = post_challenge(&http, addr, &alice, miner.ss58(), &other).await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "validator_mismatch");
    // A challenge already past its deadline is a 422.
    let mut late = challenge(&alice.ss58(), 3, 1_000);
    late.issued_at_ms -= 5_000;
    let r = post_challenge(&http, addr, &alice, miner.ss58(), &late).await;
    assert_eq!(r.status(), 422);

    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("orchestra_miner_requests_total{outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("orchestra_miner_subcalls_total{netuid="),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_switch_produces_a_schema_update_proposal() {
    let (mocks, mock_server) = start_mocks(0.02).await;
    let (addr, miner) = start_miner(mocks, &[ALICE], MinerSettings::default()).await;
    let alice = hotkey(ALICE);
    let http = reqwest::Client::new();
    let ask = |seed: u64| {
        let c = challenge(&alice.ss58(), seed, 12_000);
        let (http, alice, miner) = (http.clone(), alice.clone(), miner.clone());
        async move {
            let body = serde_json::to_vec(&c).unwrap();
            let r = post_signed(&http, addr, &alice, miner.ss58(), &body, now_ns()).await;
            assert_eq!(r.status(), 200);
            let resp: Response = r.json().await.unwrap();
            proof::verify(&c, &resp, now_ms()).unwrap();
            resp
        }
    };
    let first = ask(10).await;
    // A subnet the plan uses that has a second schema version for the endpoint it used.
    let set = mock_set();
    let (netuid, endpoint) = first
        .pipeline
        .iter()
        .find(|s| {
            set.get(s.netuid)
                .and_then(|m| m.schema_versions(&s.endpoint))
                .is_some_and(|v| v.len() > 1)
        })
        .map(|s| (s.netuid, s.endpoint.clone()))
        .expect("the plan uses a subnet with schema versions");
    let r = http
        .post(format!("http://{mocks}/admin/schema-version"))
        .json(&json!({"netuid": netuid, "endpoint": endpoint, "version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(mock_server.hotkey(netuid).is_some());
    let mut found = None;
    for seed in 11..20 {
        let resp = ask(seed).await;
        if let Some(p) = resp
            .ledger_proposals
            .iter()
            .find(|p| p.netuid == netuid && matches!(p.change, ProposalChange::SchemaUpdate { .. }))
        {
            found = Some(p.clone());
            break;
        }
    }
    let p = found.expect("a schema_update proposal after the switch");
    let ProposalChange::SchemaUpdate { changes } = &p.change else {
        unreachable!()
    };
    assert!(
        changes.iter().any(|c| c.path.ends_with("/output_schema")),
        "{changes:?}"
    );
    assert!(!p.evidence.is_empty());
    // The proposal is also listed on GET /ledger/proposals (btauth/1, permitted callers only).
    let url = reqwest::Url::parse(&format!("http://{addr}/ledger/proposals")).unwrap();
    let h = orchestra_node::auth::signed_headers(
        &alice,
        "GET",
        &url,
        b"",
        Some(miner.ss58()),
        now_ns(),
    );
    let list: Value = http
        .get(url.clone())
        .headers(h)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list["proposals"].as_array().unwrap();
    assert!(
        listed.iter().any(|r| r["proposal"]["netuid"] == netuid),
        "{list}"
    );
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabricating_miner_answers_with_invented_sub_responses() {
    let (mocks, _) = start_mocks(0.02).await;
    let settings = MinerSettings {
        strategy: "fabricator".into(),
        strategy_params: toml::from_str("rate = 1.0\nsteps = \"all\"").unwrap(),
        seed: Some(3),
        ..MinerSettings::default()
    };
    let (addr, miner) = start_miner(mocks, &[ALICE], settings).await;
    let alice = hotkey(ALICE);
    let http = reqwest::Client::new();
    let c = challenge(&alice.ss58(), 30, 12_000);
    let r = post_challenge(&http, addr, &alice, miner.ss58(), &c).await;
    assert_eq!(r.status(), 200);
    let resp: Response = r.json().await.unwrap();
    proof::verify(&c, &resp, now_ms()).expect("fabricated pipelines still hash-verify");
    let health: Value = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["strategy"], "fabricator");
    // Nothing was sent to the subnets: every step was substituted.
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("orchestra_miner_subcalls_total{"),
        "{metrics}"
    );
    assert!(!resp.pipeline.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_view_can_come_from_a_ledger_api() {
    use orchestra_ledger::access::hash_key;
    use orchestra_ledger::server::{AppState, ServerConfig, router};
    use orchestra_ledger::store::{MemoryStore, Store, Tier};
    use orchestra_ledger::{LedgerNode, VerifyParams, mocks};
    use orchestra_node::miner::{LedgerAuth, fetch_ledger};
    use std::sync::Arc;

    let mut store = MemoryStore::new();
    store
        .create_key(hash_key("dev-key"), Tier::Production, Some("dev-key"), 0)
        .unwrap();
    let store: Box<dyn Store> = Box::new(store);
    let ledger_key = hotkey("//Ferdie");
    let mut node = LedgerNode::open(store, ledger_key.clone(), VerifyParams::default()).unwrap();
    let me = node.ss58();
    let seeds: Vec<_> = mocks::load_dir(&mocks_dir())
        .unwrap()
        .iter()
        .map(|e| mocks::seed_change(e, &me, 100).unwrap())
        .collect();
    node.append(seeds).unwrap();
    let addr = serve(router(AppState::new(node, ServerConfig::default()))).await;
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();

    let expected: Vec<u16> = mock_set().entries().into_keys().collect();
    let by_hotkey = LedgerAuth::Hotkey {
        hotkey: Arc::new(hotkey("//Miner1")),
        receiver: ledger_key.ss58(),
    };
    for auth in [by_hotkey, LedgerAuth::ApiKey("dev-key".into())] {
        let entries = fetch_ledger(&http, &url, &auth).await.unwrap();
        let got: Vec<u16> = entries.iter().map(|e| e.netuid).collect();
        assert_eq!(got, expected);
        let sn1 = entries.iter().find(|e| e.netuid == 1).unwrap();
        assert_eq!(sn1.endpoints, mock_set().get(1).unwrap().entry().endpoints);
    }
    // A wrong receiver or key is an error, not an empty view.
    let wrong = LedgerAuth::Hotkey {
        hotkey: Arc::new(hotkey("//Miner1")),
        receiver: hotkey("//Eve").ss58(),
    };
    assert!(fetch_ledger(&http, &url, &wrong).await.is_err());
    assert!(
        fetch_ledger(&http, &url, &LedgerAuth::ApiKey("nope".into()))
            .await
            .is_err()
    );
}
