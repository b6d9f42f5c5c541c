//! Throughput of signed `POST /orchestrate` calls against HTTP mock subnets, on loopback.
//!
//! ```sh
//! cargo run --release -p orchestra-node --example orchestrate_load -- \
//!     --requests 2000 --clients 32 --max-concurrency 64 --latency-scale 0
//! ```
//!
//! Starts every mock subnet of `mocks/subnets/` (`orchestra-mock-subnet` in-process) and an
//! honest miner (in-process, permit check on, //Alice allowed), then `--clients` concurrent
//! clients send `--requests` `market_research` challenges signed by //Alice, each answered by
//! the miner calling the mocks over HTTP. Prints answered requests per second and latency
//! percentiles; 503s (with `--max-concurrency` below `--clients`) are counted apart.
//! `--latency-scale 0` measures the miner's own cost (auth, planning, HTTP, proof); `1` runs
//! the subnets at their modelled latencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use orchestra_mechanism::templates::instantiate;
use orchestra_mocks::MockSet;
use orchestra_node::auth::{AuthConfig, PermitSet, RequestAuth, now_ms, now_ns, signed_headers};
use orchestra_node::miner::{MinerServer, MinerSettings};
use orchestra_node::mock_subnet::{MockServer, MockServerConfig};
use orchestra_node::subnet_client::SubnetDirectory;
use orchestra_protocol::Hotkey;
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Objective};
use rand::SeedableRng;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    /// Requests to send in total.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The miner's --max-concurrency.
    #[arg(long, default_value_t = 64)]
    max_concurrency: usize,
    /// Mock latency scale (0 = answer at once, 1 = modelled latencies).
    #[arg(long, default_value_t = 0.0)]
    latency_scale: f64,
    /// Mock subnet directory.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../mocks/subnets"))]
    mocks: PathBuf,
}

async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let set = MockSet::load_dir(&cli.mocks).expect("mock subnets");
    let mock = MockServer::new(
        &set,
        MockServerConfig {
            seed: 1,
            latency_scale: cli.latency_scale,
            ..MockServerConfig::default()
        },
    );
    let mocks = serve(mock.router()).await;
    let alice = Arc::new(Hotkey::from_uri("//Alice").unwrap());
    let key = Arc::new(Hotkey::from_uri("//Miner1").unwrap());
    let permits = Arc::new(PermitSet::new([alice.ss58()]));
    let auth =
        Arc::new(RequestAuth::btauth(key.ss58(), &AuthConfig::default()).with_permits(permits));
    let settings = MinerSettings {
        max_concurrency: cli.max_concurrency,
        seed: Some(1),
        ..MinerSettings::default()
    };
    let miner = MinerServer::new(
        key.clone(),
        settings,
        set.entries().into_values().collect(),
        SubnetDirectory::parse([], Some(&format!("http://{mocks}"))).unwrap(),
        auth,
    )
    .unwrap();
    let addr = serve(miner.router()).await;
    let template = Arc::new(
        orchestra_mechanism::templates::shipped()
            .unwrap()
            .into_iter()
            .find(|t| t.kind == "market_research")
            .unwrap(),
    );
    let url = reqwest::Url::parse(&format!("http://{addr}/orchestrate")).unwrap();
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..cli.clients {
        let (http, next, url, alice, miner_ss58, template) = (
            http.clone(),
            next.clone(),
            url.clone(),
            alice.clone(),
            key.ss58(),
            template.clone(),
        );
        let total = cli.requests;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut shed = 0usize;
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (lat, shed, failed);
                }
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(i as u64);
                let (text, params) = instantiate(&template, &mut rng);
                let id = *blake3::hash(&(i as u64).to_le_bytes()).as_bytes();
                let c = Challenge {
                    challenge_id: Hash32(id),
                    validator: alice.ss58(),
                    issued_block: 1,
                    issued_at_ms: now_ms(),
                    salt: Hash32(id),
                    objective: Objective {
                        kind: template.kind.clone(),
                        text,
                        params,
                    },
                    target_schema: template.target_schema.clone(),
                    deadline_ms: 30_000,
                    budget_rao: None,
                    replay_binding: false,
                };
                let body = serde_json::to_vec(&c).unwrap();
                let h = signed_headers(&alice, "POST", &url, &body, Some(&miner_ss58), now_ns());
                let t = Instant::now();
                let r = http
                    .post(url.clone())
                    .headers(h)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                match status {
                    200 => lat.push(t.elapsed()),
                    503 => shed += 1,
                    _ => failed += 1,
                }
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    let (mut shed, mut failed) = (0, 0);
    for t in tasks {
        let (l, s, f) = t.await.unwrap();
        lat.extend(l);
        shed += s;
        failed += f;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{} requests, {} clients, max_concurrency {}, latency_scale {}: {} answered, {} shed (503), {} failed in {:.2} s",
        cli.requests,
        cli.clients,
        cli.max_concurrency,
        cli.latency_scale,
        lat.len(),
        shed,
        failed,
        secs
    );
    println!(
        "{:.0} answered requests/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        lat.len() as f64 / secs,
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
}
