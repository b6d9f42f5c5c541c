//! The miner server over HTTP against the HTTP mock subnets: a correctly signed challenge from a
//! permitted validator gets a response whose proof verifies with the protocol's verifier and
//! whose body the miner signed; switching a mock's schema version makes the miner propose a
//! schema update; a fabricating miner's response still verifies (the audit, not the proof,
//! catches it) but carries invented sub-responses; a request with a btauth/1 defect gets the
//! same status, code and reason from the miner, a Ledger API and a mock subnet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod miner_support;

use miner_support::*;
use orchestra_ledger::compile_schema;
use orchestra_mocks::CallContext;
use orchestra_node::auth::{now_ms, now_ns};
use orchestra_node::miner::MinerSettings;
use orchestra_protocol::btauth::{AuthHeaders, Verifier};
use orchestra_protocol::ledger::ProposalChange;
use orchestra_protocol::messages::Response;
use orchestra_protocol::proof;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
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

/// Replay binding over HTTP (docs/mechanism.md §3): the challenge's `replay_binding` reaches the
/// node's miner, every sub-call it sends through the subnet client carries the step's nonce in
/// the body, the mock subnets answer it (and sign receipts over it), and the auditor's nonce
/// check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_challenge_gets_nonce_bearing_sub_calls_that_pass_the_audit() {
    use orchestra_protocol::messages::{call_nonce, request_nonce};
    let (mocks, _) = start_mocks(0.05).await;
    let (addr, miner) = start_miner(mocks, &[ALICE], MinerSettings::default()).await;
    let alice = hotkey(ALICE);
    let http = reqwest::Client::new();
    let mut c = challenge(&alice.ss58(), 4, 12_000);
    c.replay_binding = true;
    let r = post_challenge(&http, addr, &alice, miner.ss58(), &c).await;
    assert_eq!(r.status(), 200);
    let received = now_ms();
    let response: Response = r.json().await.unwrap();
    assert!(!response.pipeline.is_empty(), "no sub-calls were made");
    proof::verify(&c, &response, received).expect("the proof verifies");
    for step in &response.pipeline {
        let expected = call_nonce(&c.challenge_id, &step.step_id).to_hex();
        let request = step.request.as_deref().unwrap();
        assert_eq!(
            request_nonce(request),
            Some(expected.as_str()),
            "{}",
            step.step_id
        );
        if let Some(receipt) = &step.receipt {
            assert!(orchestra_validator::audit::receipt_valid(step, receipt));
        }
    }
    let view = orchestra_miner::LedgerView::new(mock_set().entries().into_values());
    let params = orchestra_mechanism::MechanismParams {
        audit_rate: 0.0,
        replay_binding: true,
        ..Default::default()
    };
    let report = orchestra_validator::Auditor::default()
        .begin(
            &c,
            &response,
            received,
            &view,
            &params,
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .finish();
    assert!(report.hash_verified(), "{report:?}");
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
    // A subnet the plan uses whose endpoint has a breaking second schema version: a version 2
    // response the Ledger's version 1 schema rejects. (An additive version, such as x_search's,
    // still validates, so a miner rightly proposes nothing for it.)
    let set = mock_set();
    let breaks_v1 = |netuid: u16, endpoint: &str| {
        let Some(m) = set.get(netuid) else {
            return false;
        };
        let Some(ep) = m.entry().endpoints.iter().find(|e| e.name == endpoint) else {
            return false;
        };
        let ctx = CallContext {
            seed: 1,
            now_ms: 1,
            load: 0.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v2 = m.generate(endpoint, 2, &ep.minimal_input, ctx, &mut rng);
        let v1 = compile_schema(&ep.output_schema).expect("shipped schemas compile");
        v2.is_some_and(|r| !v1.is_valid(&r))
    };
    let (netuid, endpoint) = first
        .pipeline
        .iter()
        .find(|s| breaks_v1(s.netuid, &s.endpoint))
        .map(|s| (s.netuid, s.endpoint.clone()))
        .expect("the plan uses an endpoint with a breaking schema version");
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
    let seeds: Vec<_> = mock_set()
        .entries()
        .values()
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

/// One request with a btauth/1 defect, as each server sees it.
struct Probe {
    method: &'static str,
    url: reqwest::Url,
    body: Vec<u8>,
}

impl Probe {
    /// btauth/1 headers signed by `key` for `receiver` with `nonce`, for this request.
    fn signed(
        &self,
        key: &orchestra_protocol::Hotkey,
        receiver: &str,
        nonce: i128,
    ) -> Vec<(String, String)> {
        orchestra_node::auth::signed_headers(
            key,
            self.method,
            &self.url,
            &self.body,
            Some(receiver),
            nonce,
        )
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect()
    }

    /// Send with `headers` (and `body` instead of the signed one, when given); the status and
    /// the body.
    async fn send_raw(
        &self,
        http: &reqwest::Client,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).unwrap();
        let mut req = http
            .request(method, self.url.clone())
            .body(body.unwrap_or(&self.body).to_vec());
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// [`Probe::send_raw`], expecting a JSON error body.
    async fn send(
        &self,
        http: &reqwest::Client,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> (u16, orchestra_http::ErrorBody) {
        let (status, text) = self.send_raw(http, headers, body).await;
        let err = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text}: {e}"));
        (status, err)
    }
}

/// The same defect answers with the same status, code and reason on every server that checks
/// btauth/1 — the miner's `/orchestrate`, a Ledger API and a mock subnet requiring auth — since
/// they share one layer (`orchestra-http`). Before it, a wrong receiver was 421 on the miner,
/// 403 on the Ledger API and 401 on the mock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_refuses_a_bad_signature_alike() {
    use orchestra_ledger::server::{AppState, ServerConfig, router};
    use orchestra_ledger::store::{MemoryStore, Store};
    use orchestra_ledger::{LedgerNode, VerifyParams};
    use orchestra_node::mock_subnet::{MockServer, MockServerConfig};

    let (mocks, _) = start_mocks(0.0).await;
    let (miner_addr, miner) = start_miner(mocks, &[ALICE], MinerSettings::default()).await;
    let ledger_key = hotkey("//Ferdie");
    let store: Box<dyn Store> = Box::new(MemoryStore::new());
    let node = LedgerNode::open(store, ledger_key.clone(), VerifyParams::default()).unwrap();
    let ledger_addr = serve(router(AppState::new(node, ServerConfig::default()))).await;
    let set = mock_set();
    let guarded = MockServer::new(
        &set,
        MockServerConfig {
            latency_scale: 0.0,
            require_auth: true,
            ..MockServerConfig::default()
        },
    );
    let guarded_addr = serve(guarded.router()).await;
    let sn = set.get(1).unwrap();
    let ep = &sn.entry().endpoints[0];

    let alice = hotkey(ALICE);
    let challenge_body = serde_json::to_vec(&challenge(&alice.ss58(), 40, 12_000)).unwrap();
    let servers = [
        (
            "miner",
            miner.ss58().to_string(),
            Probe {
                method: "POST",
                url: format!("http://{miner_addr}/orchestrate").parse().unwrap(),
                body: challenge_body,
            },
        ),
        (
            "ledger",
            ledger_key.ss58(),
            Probe {
                method: "GET",
                url: format!("http://{ledger_addr}/v1/head").parse().unwrap(),
                body: Vec::new(),
            },
        ),
        (
            "mock subnet",
            guarded.hotkey(1).unwrap().to_string(),
            Probe {
                method: "POST",
                url: format!("http://{guarded_addr}/sn/1{}", ep.path)
                    .parse()
                    .unwrap(),
                body: serde_json::to_vec(&ep.minimal_input).unwrap(),
            },
        ),
    ];
    let http = reqwest::Client::new();
    let eve = hotkey("//Eve").ss58();
    // (case, what each server answered)
    let mut seen: Vec<(&str, Vec<(u16, orchestra_http::ErrorBody)>)> = Vec::new();
    for (case, expect) in [
        ("wrong receiver", (403, "wrong_receiver")),
        ("stale", (401, "stale_request")),
        ("replayed", (401, "replayed_request")),
        ("tampered body", (401, "bad_signature")),
        ("no nonce", (401, "malformed_auth")),
        ("unsigned", (401, "unauthenticated")),
    ] {
        let mut answers = Vec::new();
        for (name, receiver, probe) in &servers {
            let answer = match case {
                "wrong receiver" => {
                    probe
                        .send(&http, &probe.signed(&alice, &eve, now_ns()), None)
                        .await
                }
                "stale" => {
                    let h = probe.signed(&alice, receiver, now_ns() - 30_000_000_000);
                    probe.send(&http, &h, None).await
                }
                "replayed" => {
                    let h = probe.signed(&alice, receiver, now_ns());
                    // The first one goes through authentication (whatever the handler says).
                    let (first, _) = probe.send_raw(&http, &h, None).await;
                    assert!(
                        first != 401 && first != 403,
                        "{name}: first send got {first}"
                    );
                    probe.send(&http, &h, None).await
                }
                "tampered body" => {
                    let h = probe.signed(&alice, receiver, now_ns());
                    let mut body = probe.body.clone();
                    body.extend_from_slice(b" ");
                    probe.send(&http, &h, Some(&body)).await
                }
                "no nonce" => {
                    let mut h = probe.signed(&alice, receiver, now_ns());
                    h.retain(|(k, _)| !k.eq_ignore_ascii_case("x-bittensor-nonce"));
                    probe.send(&http, &h, None).await
                }
                _ => probe.send(&http, &[], None).await,
            };
            assert_eq!(
                (answer.0, answer.1.error.as_str()),
                expect,
                "{case} on the {name}: {:?}",
                answer.1
            );
            answers.push(answer);
        }
        seen.push((case, answers));
    }
    // Beyond status and code, the btauth/1 refusals read the same too.
    for (case, answers) in &seen {
        if *case == "unsigned" {
            continue;
        }
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "{case}: {answers:?}"
        );
    }
}
