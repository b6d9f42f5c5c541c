//! The query API in process over loopback: reads, proofs, the write route, and every kind of bad
//! input getting the right status and a JSON error body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use orchestra_ledger::access::{Limits, hash_key};
use orchestra_ledger::log::{ConsistencyProof, InclusionProof, SignedTreeHead};
use orchestra_ledger::server::{AppState, ServerConfig, router};
use orchestra_ledger::store::{MemoryStore, Store, Tier};
use orchestra_ledger::{Credit, ProposalKind};
use orchestra_protocol::{Hash32, Hotkey};
use serde_json::{Value, json};
use std::net::SocketAddr;

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

struct Server {
    addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

fn start() -> Server {
    let mut store = MemoryStore::new();
    for (key, tier) in [
        ("free-key", Tier::Free),
        ("dev-key", Tier::Developer),
        ("prod-key", Tier::Production),
        ("revoked-key", Tier::Production),
    ] {
        store.create_key(hash_key(key), tier, Some(key), 0).unwrap();
    }
    store.revoke_key(4, 1).unwrap();
    let store: Box<dyn Store> = Box::new(store);
    let node = seeded_node(store);
    let config = ServerConfig {
        body_limit: 4_096,
        limits: Limits {
            free_per_minute: 3,
            developer_per_month: 2,
        },
        ..ServerConfig::default()
    };
    let (addr, rt) = serve_loopback(router(AppState::new(node, config)));
    Server { addr, _rt: rt }
}

fn bearer(key: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {key}"))]
}

fn get(s: &Server, target: &str, key: &str) -> Resp {
    http(s.addr, "GET", target, &bearer(key), b"").unwrap()
}

/// Assert status and a JSON error body with this code.
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    let j = r.json();
    assert_eq!(j["error"], code, "{j}");
    assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.contains("application/json"))
    );
}

#[test]
fn reads_serve_entries_rankings_and_head() {
    let s = start();
    let r = get(&s, "/v1/subnets", "prod-key");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["subnets"].as_array().unwrap().len(), 12);
    let r = get(&s, "/v1/subnets/22", "prod-key");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["entry"]["name"], "Desearch");
    assert_eq!(r.json()["entry"]["version"], 1);
    assert_eq!(r.json()["stale"]["metrics"], false);
    let r = get(&s, "/v1/capabilities/llm_inference", "prod-key");
    assert_eq!(r.status, 200);
    let eps = r.json()["endpoints"].as_array().unwrap().clone();
    assert!(eps.len() >= 3);
    let scores: Vec<f64> = eps.iter().map(|e| e["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let r = get(&s, "/v1/head", "prod-key");
    let head: SignedTreeHead = serde_json::from_value(r.json()["head"].clone()).unwrap();
    assert_eq!(head.head.tree_size, 12);
    assert_eq!(head.signer, ALICE);
    head.verify().unwrap();
    let r = http(s.addr, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tree_size"], 12);
}

#[test]
fn proofs_from_the_api_verify_offline() {
    let s = start();
    for seq in [0, 5, 11] {
        let r = get(&s, &format!("/v1/proof/{seq}"), "prod-key");
        assert_eq!(r.status, 200);
        let p: InclusionProof = serde_json::from_value(r.json()).unwrap();
        p.verify().unwrap();
        p.head.verify().unwrap();
        let mut t = p.clone();
        t.record.proposer = "mallory".into();
        assert!(t.verify().is_err());
    }
    let r = get(&s, "/v1/consistency?from=5&to=12", "prod-key");
    assert_eq!(r.status, 200);
    let c: ConsistencyProof = serde_json::from_value(r.json()["proof"].clone()).unwrap();
    c.verify().unwrap();
    let r = get(&s, "/v1/log?since=10", "prod-key");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["records"].as_array().unwrap().len(), 2);
    assert_eq!(r.json()["next"], 12);
    assert_error(&get(&s, "/v1/proof/12", "prod-key"), 404, "out_of_range");
    assert_error(&get(&s, "/v1/proof/x", "prod-key"), 400, "bad_seq");
    assert_error(
        &get(&s, "/v1/consistency?from=13", "prod-key"),
        404,
        "out_of_range",
    );
    assert_error(&get(&s, "/v1/consistency", "prod-key"), 400, "bad_query");
    assert_error(&get(&s, "/v1/log?since=-1", "prod-key"), 400, "bad_query");
    assert_error(&get(&s, "/v1/log?sinse=1", "prod-key"), 400, "bad_query");
}

#[test]
fn routes_and_params() {
    let s = start();
    assert_error(&get(&s, "/v1/nope", "prod-key"), 404, "not_found");
    assert_error(
        &http(s.addr, "GET", "/", &[], b"").unwrap(),
        404,
        "not_found",
    );
    assert_error(
        &http(s.addr, "DELETE", "/v1/subnets", &bearer("prod-key"), b"").unwrap(),
        405,
        "method_not_allowed",
    );
    assert_error(&get(&s, "/v1/subnets/abc", "prod-key"), 400, "bad_netuid");
    assert_error(&get(&s, "/v1/subnets/70000", "prod-key"), 400, "bad_netuid");
    assert_error(
        &get(&s, "/v1/subnets/999", "prod-key"),
        404,
        "unknown_subnet",
    );
    assert_error(
        &get(&s, "/v1/capabilities/teleportation", "prod-key"),
        404,
        "unknown_capability",
    );
}

#[test]
fn keys_unknown_revoked_and_missing() {
    let s = start();
    assert_error(
        &http(s.addr, "GET", "/v1/subnets", &[], b"").unwrap(),
        401,
        "unauthenticated",
    );
    assert_error(&get(&s, "/v1/subnets", "no-such-key"), 401, "unknown_key");
    assert_error(&get(&s, "/v1/subnets", "revoked-key"), 401, "revoked_key");
    let r = http(
        s.addr,
        "GET",
        "/v1/subnets",
        &[("Authorization", "Basic abc".into())],
        b"",
    )
    .unwrap();
    assert_error(&r, 401, "malformed_authorization");
}

#[test]
fn quotas_give_429_with_retry_after() {
    let s = start();
    for _ in 0..3 {
        assert_eq!(get(&s, "/v1/subnets/22", "free-key").status, 200);
    }
    let r = get(&s, "/v1/subnets/22", "free-key");
    assert_error(&r, 429, "quota_exceeded");
    let ra: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&ra));
    for _ in 0..2 {
        assert_eq!(
            get(&s, "/v1/capabilities/web_search", "dev-key").status,
            200
        );
    }
    let r = get(&s, "/v1/capabilities/web_search", "dev-key");
    assert_error(&r, 429, "quota_exceeded");
    let ra: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=31 * 86_400).contains(&ra));
    for _ in 0..20 {
        assert_eq!(get(&s, "/v1/subnets/22", "prod-key").status, 200);
    }
}

#[test]
fn btauth_reads_replays_receivers_and_signatures() {
    let s = start();
    let bob = Hotkey::from_uri("//Bob").unwrap();
    let h = signed(&bob, ALICE, "GET", "/v1/subnets/22", b"");
    let r = http(s.addr, "GET", "/v1/subnets/22", &h, b"").unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    // The same headers again: replay.
    assert_error(
        &http(s.addr, "GET", "/v1/subnets/22", &h, b"").unwrap(),
        401,
        "replayed_request",
    );
    // Signed for someone else.
    let h = signed(&bob, &bob.ss58(), "GET", "/v1/subnets/22", b"");
    assert_error(
        &http(s.addr, "GET", "/v1/subnets/22", &h, b"").unwrap(),
        403,
        "wrong_receiver",
    );
    // Signed for another target.
    let h = signed(&bob, ALICE, "GET", "/v1/subnets/13", b"");
    assert_error(
        &http(s.addr, "GET", "/v1/subnets/22", &h, b"").unwrap(),
        401,
        "bad_signature",
    );
    // Broken headers.
    let mut h = signed(&bob, ALICE, "GET", "/v1/head", b"");
    h.retain(|(k, _)| *k != "X-Bittensor-Nonce");
    assert_error(
        &http(s.addr, "GET", "/v1/head", &h, b"").unwrap(),
        401,
        "malformed_auth",
    );
    // Stale nonce.
    let h =
        orchestra_protocol::btauth::sign(&bob, "GET", "/v1/head", b"", Some(ALICE), 1_000).headers;
    assert_error(
        &http(s.addr, "GET", "/v1/head", &h, b"").unwrap(),
        401,
        "stale_request",
    );
}

fn metrics_change(p50: u64, old: &Value) -> Value {
    let mut new = old.clone();
    new["p50_latency_ms"] = json!(p50);
    json!({"changes": [{
        "block": 120, "proposal_id": Hash32([9; 32]), "kind": ProposalKind::MetricsUpdate,
        "netuid": 22, "path": "/metrics", "old": old, "new": new, "proposer": "miner",
        "credit": Credit::First, "verifiers": [ALICE], "evidence_hash": Hash32([0; 32])
    }]})
}

fn post(s: &Server, who: &Hotkey, body: &[u8]) -> Resp {
    let h = signed(who, ALICE, "POST", "/v1/changes", body);
    let mut h: Vec<(&str, String)> = h;
    h.push(("Content-Type", "application/json".into()));
    http(s.addr, "POST", "/v1/changes", &h, body).unwrap()
}

#[test]
fn validators_append_changes() {
    let s = start();
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let old = get(&s, "/v1/subnets/22", "prod-key").json()["entry"]["metrics"].clone();
    let body = serde_json::to_vec(&metrics_change(410, &old)).unwrap();
    let r = post(&s, &alice, &body);
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["seqs"], json!([12]));
    let r = get(&s, "/v1/subnets/22", "prod-key");
    assert_eq!(r.json()["entry"]["metrics"]["p50_latency_ms"], 410);
    assert_eq!(r.json()["entry"]["version"], 2);
    // The same change again no longer applies: its old value is stale.
    let r = post(&s, &alice, &body);
    assert_error(&r, 409, "change_rejected");
    assert_eq!(
        get(&s, "/v1/head", "prod-key").json()["head"]["tree_size"],
        13
    );
}

#[test]
fn write_route_bad_input() {
    let s = start();
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let bob = Hotkey::from_uri("//Bob").unwrap();
    assert_error(
        &post(&s, &alice, b"{\"changes\": [ oops"),
        400,
        "malformed_json",
    );
    assert_error(&post(&s, &alice, b"{\"changes\": 5}"), 400, "invalid_body");
    assert_error(&post(&s, &alice, b"{\"changes\": []}"), 400, "invalid_body");
    assert_error(
        &post(&s, &alice, b"{\"changes\": [], \"extra\": 1}"),
        400,
        "invalid_body",
    );
    // Over the 4 KiB limit.
    let big = format!("{{\"changes\": [], \"pad\": \"{}\"}}", "x".repeat(10_000));
    assert_error(&post(&s, &alice, big.as_bytes()), 413, "body_too_large");
    // Not a validator, or not a hotkey at all.
    assert_error(
        &post(&s, &bob, b"{\"changes\": []}"),
        403,
        "not_a_validator",
    );
    let r = http(
        s.addr,
        "POST",
        "/v1/changes",
        &bearer("prod-key"),
        b"{\"changes\": []}",
    )
    .unwrap();
    assert_error(&r, 403, "hotkey_required");
    // Body does not match what was signed.
    let mut h = signed(&alice, ALICE, "POST", "/v1/changes", b"{\"changes\": []}");
    h.push(("Content-Type", "application/json".into()));
    let r = http(s.addr, "POST", "/v1/changes", &h, b"{\"changes\": [1]}").unwrap();
    assert_error(&r, 401, "bad_signature");
    // Nothing was appended by any of that.
    assert_eq!(
        get(&s, "/v1/head", "prod-key").json()["head"]["tree_size"],
        12
    );
}

#[test]
fn openapi_lists_exactly_the_routes() {
    let s = start();
    let r = http(s.addr, "GET", "/openapi.json", &[], b"").unwrap();
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["openapi"], "3.1.0");
    let mut paths: Vec<String> = j["paths"].as_object().unwrap().keys().cloned().collect();
    paths.sort();
    let mut expected = vec![
        "/healthz",
        "/openapi.json",
        "/.well-known/agent-card.json",
        "/mcp",
        "/a2a",
        "/v1/subnets",
        "/v1/subnets/{netuid}",
        "/v1/capabilities/{tag}",
        "/v1/log",
        "/v1/proof/{seq}",
        "/v1/consistency",
        "/v1/head",
        "/v1/changes",
    ];
    expected.sort();
    assert_eq!(paths, expected);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Arbitrary bodies from a real validator and arbitrary path segments never crash the server
    /// and always get a JSON error (or success) body.
    #[test]
    fn arbitrary_input_never_panics(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        seg in "[a-zA-Z0-9%._~-]{0,12}",
    ) {
        use std::sync::OnceLock;
        static SERVER: OnceLock<Server> = OnceLock::new();
        let s = SERVER.get_or_init(start);
        let alice = Hotkey::from_uri("//Alice").unwrap();
        let r = post(s, &alice, &body);
        proptest::prop_assert!([400u16, 409].contains(&r.status), "{} {:?}", r.status, r.json());
        proptest::prop_assert!(r.json()["error"].is_string());
        for target in [format!("/v1/subnets/{seg}"), format!("/v1/capabilities/{seg}"), format!("/v1/proof/{seg}"), format!("/v1/log?since={seg}")] {
            let r = get(s, &target, "prod-key");
            proptest::prop_assert!(r.status < 500, "{target}: {}", r.status);
            let j = r.json();
            proptest::prop_assert!(r.status == 200 || j["error"].is_string(), "{target}: {j}");
        }
    }
}
