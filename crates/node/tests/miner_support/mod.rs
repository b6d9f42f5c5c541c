//! Shared helpers of the miner and mock-subnet tests: in-process servers on loopback ports,
//! challenges, and btauth/1-signed requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use orchestra_mechanism::templates::{ObjectiveTemplate, instantiate};
use orchestra_mocks::MockSet;
use orchestra_node::auth::{AuthConfig, PermitSet, RequestAuth, now_ms, now_ns, signed_headers};
use orchestra_node::miner::{MinerServer, MinerSettings};
use orchestra_node::mock_subnet::{MockServer, MockServerConfig};
use orchestra_node::subnet_client::SubnetDirectory;
use orchestra_protocol::Hotkey;
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Objective};
use rand::SeedableRng;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub const ALICE: &str = "//Alice";

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn mocks_dir() -> PathBuf {
    workspace().join("mocks/subnets")
}

pub fn mock_set() -> MockSet {
    MockSet::load_dir(mocks_dir()).unwrap()
}

/// Serve `router` on a fresh loopback port.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// Every mock subnet in-process, latencies scaled by `latency_scale`.
pub async fn start_mocks(latency_scale: f64) -> (SocketAddr, Arc<MockServer>) {
    let server = MockServer::new(
        &mock_set(),
        MockServerConfig {
            seed: 7,
            latency_scale,
            ..MockServerConfig::default()
        },
    );
    let addr = serve(server.router()).await;
    (addr, server)
}

pub fn hotkey(uri: &str) -> Hotkey {
    Hotkey::from_uri(uri).unwrap()
}

/// A miner in-process (hotkey //Miner1) answering validators in `allowed`, Ledger view from the
/// mock files, subnets at `mocks`.
pub async fn start_miner(
    mocks: SocketAddr,
    allowed: &[&str],
    settings: MinerSettings,
) -> (SocketAddr, Arc<MinerServer>) {
    let key = Arc::new(hotkey("//Miner1"));
    let permits = Arc::new(PermitSet::new(allowed.iter().map(|u| hotkey(u).ss58())));
    let auth =
        Arc::new(RequestAuth::btauth(key.ss58(), &AuthConfig::default()).with_permits(permits));
    let directory = SubnetDirectory::parse([], Some(&format!("http://{mocks}"))).unwrap();
    let entries = mock_set().entries().into_values().collect();
    let server = MinerServer::new(key, settings, entries, directory, auth).unwrap();
    let addr = serve(server.router()).await;
    (addr, server)
}

pub fn template(kind: &str) -> ObjectiveTemplate {
    orchestra_mechanism::templates::shipped()
        .unwrap()
        .into_iter()
        .find(|t| t.kind == kind)
        .unwrap()
}

/// A fresh `market_research` challenge from `validator`, due in `deadline_ms`.
pub fn challenge(validator: &str, seed: u64, deadline_ms: u64) -> Challenge {
    let t = template("market_research");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (text, params) = instantiate(&t, &mut rng);
    let id = blake3::hash(
        &[
            seed.to_le_bytes(),
            now_ns().to_le_bytes()[..8].try_into().unwrap(),
        ]
        .concat(),
    );
    Challenge {
        challenge_id: Hash32(*id.as_bytes()),
        validator: validator.to_string(),
        issued_block: 100,
        issued_at_ms: now_ms(),
        salt: Hash32(*blake3::hash(id.as_bytes()).as_bytes()),
        objective: Objective {
            kind: t.kind.clone(),
            text,
            params,
        },
        target_schema: t.target_schema.clone(),
        deadline_ms,
        budget_rao: None,
        replay_binding: false,
    }
}

/// POST `body` to `http://addr/orchestrate` signed by `key` for `receiver` with `nonce`.
pub async fn post_signed(
    http: &reqwest::Client,
    addr: SocketAddr,
    key: &Hotkey,
    receiver: &str,
    body: &[u8],
    nonce: i128,
) -> reqwest::Response {
    let url = reqwest::Url::parse(&format!("http://{addr}/orchestrate")).unwrap();
    let headers = signed_headers(key, "POST", &url, body, Some(receiver), nonce);
    http.post(url)
        .headers(headers)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// POST challenge `c` as JSON, signed by `key` for `receiver` with a fresh nonce.
pub async fn post_challenge(
    http: &reqwest::Client,
    addr: SocketAddr,
    key: &Hotkey,
    receiver: &str,
    c: &Challenge,
) -> reqwest::Response {
    post_signed(
        http,
        addr,
        key,
        receiver,
        &serde_json::to_vec(c).unwrap(),
        now_ns(),
    )
    .await
}
