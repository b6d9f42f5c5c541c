#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `stale_router` behaves the same in the simulator and in a node: both hand the miner the
//! current Ledger view on every challenge, and the strategy alone decides to keep routing with
//! the first view it saw (refreshing only every `refresh_every` answers). The same challenges,
//! with a Ledger that deprecates a subnet in between, are answered by the node's miner
//! (`MinerServer::answer`, real sub-calls to the mock subnets over HTTP) and by the simulator's
//! (`orchestra_sim::engine::answer_in_world`); the routes must agree, and must be stale exactly
//! when the strategy says so.

mod miner_support;

use miner_support::{challenge, hotkey, serve, start_miner};
use orchestra_miner::{LedgerView, Miner, MinerConfig, Planner};
use orchestra_mocks::MockSet;
use orchestra_node::miner::MinerSettings;
use orchestra_node::mock_subnet::{MockServer, MockServerConfig};
use orchestra_protocol::ledger::{Entry, Status};
use orchestra_protocol::messages::{Challenge, Response};
use orchestra_sim::engine::answer_in_world;
use orchestra_sim::world::World;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The shipped mock subnets made reliable and steady (no failures, a fixed 20 ms), so a route
/// is what the strategy chose, never a fallback after a failed call.
fn mock_set() -> MockSet {
    let overrides = orchestra_mocks::MockSet::shipped(&Default::default())
        .unwrap()
        .iter()
        .map(|m| {
            let t: toml::Table = toml::from_str(
                "failure_rate = 0.0\nlatency = { distribution = \"lognormal\", p50_ms = 20, p95_ms = 20 }",
            )
            .unwrap();
            (m.netuid(), t)
        })
        .collect();
    MockSet::shipped(&overrides).unwrap()
}

/// (capability, netuid) of every executed step.
fn routes(r: &Response) -> Vec<(String, u16)> {
    r.plan
        .steps
        .iter()
        .map(|s| (s.capability.clone(), s.netuid))
        .collect()
}

fn params(strategy: &str, refresh_every: Option<i64>) -> (String, toml::Table) {
    let mut t = toml::Table::new();
    if let Some(n) = refresh_every {
        t.insert("refresh_every".into(), toml::Value::Integer(n));
    }
    (strategy.to_string(), t)
}

/// The Ledger before and after: `after` deprecates the subnet the first step of the honest
/// route used, where another subnet offers the same capability.
fn ledgers(first: &Response) -> (Vec<Entry>, Vec<Entry>, u16) {
    let before: Vec<Entry> = mock_set().entries().into_values().collect();
    let (_, netuid) = routes(first)
        .into_iter()
        .find(|(cap, n)| {
            before
                .iter()
                .any(|e| e.netuid != *n && e.capabilities.iter().any(|c| c == cap))
        })
        .expect("a step whose capability two subnets offer");
    let after = before
        .iter()
        .cloned()
        .map(|mut e| {
            if e.netuid == netuid {
                e.status = Status::Deprecated;
            }
            e
        })
        .collect();
    (before, after, netuid)
}

/// Answer `c1` with the Ledger `before`, then `c2` with `after`, in the simulator.
fn in_the_simulator(
    strategy: &(String, toml::Table),
    c1: &Challenge,
    c2: &Challenge,
    before: &[Entry],
    after: &[Entry],
) -> (Response, Response) {
    let mocks = Arc::new(mock_set());
    let live: BTreeSet<u16> = mocks.iter().map(|m| m.netuid()).collect();
    let mut world = World::new(mocks, live, 7, 12_000);
    let templates = orchestra_mechanism::templates::shipped().unwrap();
    let s = orchestra_adversaries::build(
        &strategy.0,
        &strategy.1,
        &mut orchestra_adversaries::GroupState::default(),
        1,
    )
    .unwrap();
    let mut miner = Miner::new(
        hotkey("//Miner1").ss58(),
        Planner::new(&templates),
        MinerConfig::default(),
    )
    .with_strategy(s);
    let (mut rng, mut world_rng) = (ChaCha8Rng::seed_from_u64(1), ChaCha8Rng::seed_from_u64(2));
    let mut answer = |c: &Challenge, entries: &[Entry]| {
        let view = LedgerView::new(entries.iter().cloned());
        let (r, _, _) = answer_in_world(
            &mut miner,
            c,
            &view,
            100,
            &mut world,
            &mut rng,
            &mut world_rng,
        );
        r.unwrap()
    };
    (answer(c1, before), answer(c2, after))
}

/// The same in a node's miner.
async fn in_the_node(
    strategy: &(String, toml::Table),
    c1: &Challenge,
    c2: &Challenge,
    before: &[Entry],
    after: &[Entry],
) -> (Response, Response) {
    let server = MockServer::new(
        &mock_set(),
        MockServerConfig {
            seed: 7,
            latency_scale: 0.0,
            ..MockServerConfig::default()
        },
    );
    let mocks = serve(server.router()).await;
    let settings = MinerSettings {
        strategy: strategy.0.clone(),
        strategy_params: strategy.1.clone(),
        seed: Some(1),
        ..MinerSettings::default()
    };
    let (_, server) = start_miner(mocks, &["//Alice"], settings).await;
    server.set_view(before.to_vec());
    let r1 = server.answer(c1).await.unwrap().unwrap();
    server.set_view(after.to_vec());
    let r2 = server.answer(c2).await.unwrap().unwrap();
    (r1, r2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_router_keeps_its_first_view_in_the_simulator_and_in_a_node_alike() {
    let alice = hotkey("//Alice").ss58();
    let c1 = challenge(&alice, 1, 30_000);
    let mut c2 = challenge(&alice, 1, 30_000);
    c2.challenge_id = orchestra_protocol::hash::Hash32([9; 32]);
    let honest = params("honest", None);
    let before: Vec<Entry> = mock_set().entries().into_values().collect();
    let (first, _) = in_the_simulator(&honest, &c1, &c2, &before, &before);
    let (before, after, deprecated) = ledgers(&first);

    for (strategy, stale) in [
        (params("stale_router", None), true),
        (params("stale_router", Some(1)), false),
        (honest.clone(), false),
    ] {
        let (s1, s2) = in_the_simulator(&strategy, &c1, &c2, &before, &after);
        let (n1, n2) = in_the_node(&strategy, &c1, &c2, &before, &after).await;
        let label = format!("{} {:?}", strategy.0, strategy.1);
        assert_eq!(routes(&s1), routes(&n1), "{label}: first answer");
        assert_eq!(routes(&s2), routes(&n2), "{label}: second answer");
        let uses = routes(&s2).iter().any(|(_, n)| *n == deprecated);
        assert_eq!(
            uses,
            stale,
            "{label}: routes {:?} after subnet {deprecated} was deprecated",
            routes(&s2)
        );
        if stale {
            assert_eq!(
                routes(&s1),
                routes(&s2),
                "{label}: routes as with its first view"
            );
        }
    }
}
