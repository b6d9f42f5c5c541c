//! One validator core, two drivers, the same inputs, the same weights.
//!
//! The node's [`Driver`] (its tokio event loop, spawned IO tasks, chain reads and weight
//! extrinsics, over a fake chain) and a virtual-time loop built from the simulator's parts
//! (`orchestra_sim::world::World` as the subnets, `SimChain::submit_weights` as the chain) each
//! drive a [`Validator`] built alike, against the same honest miners and mock subnets, through
//! three tempos. Both must put the same weights on their chain — set directly, and committed
//! then revealed with the same salts under commit-reveal. The drivers contain no scoring, audit
//! or weight logic; this test is what would catch one that did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::driver::{Driver, MinerCalls};
use super::metrics::ValidatorMetrics;
use super::store::StateStore;
use super::{Settings, Status, SubnetCalls};
use crate::metrics::Metrics;
use orchestra_chain::{
    AccountId, AxonInfo, Chain, ChainResult, Hyperparams, MechId, Metagraph, NetUid, Neuron,
    RuntimeShape, StakeItem, TempoSchedule, TxOutcome, WeightsCommit, WeightsReveal,
    WeightsSubmission,
};
use orchestra_ledger::server::{AppState, ServerConfig};
use orchestra_ledger::store::{MemoryStore, Store};
use orchestra_ledger::{Ledger, LedgerNode, VerifyParams};
use orchestra_mechanism::MechanismParams;
use orchestra_mechanism::weights::WeightLimits;
use orchestra_miner::{DetectorConfig, LedgerView, Miner, MinerConfig, Planner, local::drive};
use orchestra_mocks::MockSet;
use orchestra_protocol::messages::{Challenge, Response, SubCallFailure};
use orchestra_protocol::{Body, Hotkey};
use orchestra_sim::world::World;
use orchestra_validator::{
    ChainInfo, MinerInfo, Validator, ValidatorConfig, ValidatorRngs, WeightRules, WeightsAction,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

const NETUID: u16 = 1;
/// Subtensor's epoch rule: an epoch every `TEMPO + 1` blocks, at `(block + netuid + 1) % 10 == 0`.
const TEMPO: u16 = 9;
const BLOCKS: u64 = 32;
const MINERS: [&str; 3] = ["//Bob", "//Charlie", "//Dave"];
const SEED: [u8; 32] = [42; 32];

fn mocks() -> Arc<MockSet> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/subnets");
    Arc::new(MockSet::load_dir(dir).unwrap())
}

fn account(uri: &str) -> AccountId {
    Hotkey::from_uri(uri).unwrap().public_key()
}

/// The mock subnets, their content keyed by one world seed (deterministic endpoints answer a
/// request the same to a miner and to an auditor).
fn world(mocks: &Arc<MockSet>) -> World {
    let live: BTreeSet<u16> = mocks.iter().map(|m| m.netuid()).collect();
    World::new(mocks.clone(), live, 7, 12_000)
}

fn tempo_index(block: u64) -> u64 {
    (block + u64::from(NETUID) + 1) / (u64::from(TEMPO) + 1)
}

/// Honest miners answering in process, each with its own subnets and random stream, in
/// virtual time from the challenge's issue: the answer does not depend on who asks first.
struct InProcessMiners {
    miners: Mutex<BTreeMap<String, (Miner, World, ChaCha8Rng, ChaCha8Rng)>>,
    view: LedgerView,
}

impl InProcessMiners {
    fn new(mocks: &Arc<MockSet>) -> Self {
        let templates = crate::validator::load_templates(None).unwrap();
        let planner = Planner::new(&templates);
        // Ledger proposals are judged on probe latencies, which a node measures on the wall
        // clock; these miners make none, so both drivers see identical work.
        let config = MinerConfig {
            detector: DetectorConfig {
                schema_updates: false,
                metrics_updates: false,
                deprecations: false,
                ..DetectorConfig::default()
            },
            ..MinerConfig::default()
        };
        let miners = MINERS
            .iter()
            .enumerate()
            .map(|(i, uri)| {
                let hotkey = Hotkey::from_uri(uri).unwrap().ss58();
                let mut miner = Miner::new(hotkey.clone(), planner.clone(), config);
                if i == 2 {
                    // One miner answers only some objectives, so the miners' weights differ.
                    let mut params = toml::Table::new();
                    params.insert("answer_rate".into(), toml::Value::Float(0.5));
                    let picky = orchestra_adversaries::build(
                        "cherry_picker",
                        &params,
                        &mut orchestra_adversaries::GroupState::default(),
                        9,
                    )
                    .unwrap();
                    miner = miner.with_strategy(picky);
                }
                let seed = 100 + i as u64;
                let streams = (
                    ChaCha8Rng::seed_from_u64(seed),
                    ChaCha8Rng::seed_from_u64(!seed),
                );
                (hotkey, (miner, world(mocks), streams.0, streams.1))
            })
            .collect();
        InProcessMiners {
            miners: Mutex::new(miners),
            view: LedgerView::new(mocks.entries().into_values()),
        }
    }

    fn answer(&self, hotkey: &str, challenge: &Challenge) -> Result<(Response, u64), String> {
        let mut miners = self.miners.lock().unwrap();
        let (miner, world, rng, world_rng) = miners.get_mut(hotkey).ok_or("no such miner")?;
        let start = challenge.issued_at_ms + 40;
        let mut session = miner
            .start(challenge, &self.view, 1, start, rng)
            .map_err(|e| e.to_string())?;
        let end = drive(miner, &mut session, start, |call| {
            let (outcome, latency, _) = world.subcall(
                call.netuid,
                &call.endpoint,
                &call.request,
                call.started_at_ms,
                world_rng,
            );
            (outcome, latency)
        });
        match miner.finish(session, &self.view, 1, end) {
            Ok(Some(r)) => Ok((r, end + 40)),
            Ok(None) => Err("declined".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl MinerCalls for InProcessMiners {
    async fn challenge(
        &self,
        _url: &str,
        hotkey: &str,
        challenge: Arc<Challenge>,
        _timeout: Duration,
    ) -> Result<(Response, u64), String> {
        self.answer(hotkey, &challenge)
    }
}

/// The mock subnets as the validator's audit target.
struct WorldSubnets {
    world: Mutex<(World, ChaCha8Rng)>,
}

impl WorldSubnets {
    fn call_now(
        &self,
        netuid: u16,
        endpoint: &str,
        request: &Body,
    ) -> Result<Body, SubCallFailure> {
        let mut w = self.world.lock().unwrap();
        let (world, rng) = &mut *w;
        let (outcome, _, _) = world.subcall(netuid, endpoint, request, 0, rng);
        outcome.map(|r| r.response)
    }
}

impl SubnetCalls for WorldSubnets {
    async fn call(
        &self,
        netuid: u16,
        endpoint: &str,
        request: &Value,
        _timeout: Duration,
    ) -> Result<Value, SubCallFailure> {
        self.call_now(netuid, endpoint, &Body::new(request.clone()))
            .map(|b| b.value().clone())
    }
}

/// A chain holding one validator (uid 0, //Alice) and the miners, recording weight extrinsics.
#[derive(Default)]
struct FakeChain {
    block: AtomicU64,
    commit_reveal: bool,
    log: Mutex<Vec<Extrinsic>>,
}

/// A weight extrinsic as it reached a chain: what both drivers are compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Extrinsic {
    Set {
        uids: Vec<u16>,
        values: Vec<u16>,
    },
    Commit {
        hash: [u8; 32],
    },
    Reveal {
        uids: Vec<u16>,
        values: Vec<u16>,
        salt: Vec<u16>,
    },
}

fn neuron(uid: u16, hotkey: AccountId) -> Neuron {
    Neuron {
        uid,
        hotkey,
        coldkey: None,
        stake: if uid == 0 { 1_000_000_000 } else { 0 },
        validator_permit: uid == 0,
        active: true,
        axon: (uid > 0).then_some(AxonInfo {
            block: 0,
            version: 1,
            ip: u128::from(u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1))),
            port: 8091,
            ip_type: 4,
            protocol: 0,
        }),
        last_update: 0,
        registered_at: 0,
        weights: vec![],
        bonds: vec![],
        incentive: 0,
        dividends: 0,
        consensus: 0,
        emission: 0,
    }
}

fn ok() -> TxOutcome {
    TxOutcome {
        tx_hash: [1; 32],
        block_hash: [2; 32],
        finalized: true,
        events: vec![],
    }
}

impl Chain for FakeChain {
    fn runtime_shape(&self) -> RuntimeShape {
        RuntimeShape {
            spec_name: "fake".into(),
            spec_version: 1,
            transaction_version: 1,
            subtensor_pallet_index: 7,
            stake_item: StakeItem::TotalHotkeyAlpha,
            has_mechanisms: true,
            indexed_by_netuid_index: true,
            has_commit_reveal: self.commit_reveal,
            has_timelocked_commits: false,
            has_commitments: true,
            has_subnet_info_api: false,
            features: Default::default(),
        }
    }
    fn signer(&self) -> Option<AccountId> {
        Some(account("//Alice"))
    }
    async fn current_block(&self) -> ChainResult<u64> {
        Ok(self.block.load(Ordering::SeqCst))
    }
    async fn tempo_schedule(&self, netuid: NetUid) -> ChainResult<TempoSchedule> {
        Ok(TempoSchedule::at(
            self.block.load(Ordering::SeqCst),
            netuid,
            TEMPO,
        ))
    }
    async fn metagraph(&self, netuid: NetUid, mecid: MechId) -> ChainResult<Metagraph> {
        let mut neurons = vec![neuron(0, account("//Alice"))];
        for (i, uri) in MINERS.iter().enumerate() {
            neurons.push(neuron(i as u16 + 1, account(uri)));
        }
        Ok(Metagraph {
            netuid,
            mecid,
            block: self.block.load(Ordering::SeqCst),
            neurons,
        })
    }
    async fn hyperparams(&self, netuid: NetUid) -> ChainResult<Hyperparams> {
        Ok(Hyperparams {
            netuid,
            tempo: TEMPO,
            rho: 10,
            kappa: 32_767,
            immunity_period: 0,
            min_allowed_weights: 1,
            max_weights_limit: u16::MAX,
            weights_version_key: 0,
            weights_rate_limit: 0,
            activity_cutoff: 5000,
            max_allowed_uids: 256,
            max_allowed_validators: 64,
            bonds_moving_average: 900_000,
            serving_rate_limit: 0,
            commit_reveal_enabled: Some(self.commit_reveal),
            reveal_period_epochs: Some(1),
            liquid_alpha_on: None,
            yuma3_on: None,
            mechanism_count: 1,
            activity_cutoff_factor_milli: None,
            bonds_reset_on: None,
            commit_reveal_version: None,
            mechanism_emission_split: None,
        })
    }
    async fn set_weights(&self, w: &WeightsSubmission) -> ChainResult<TxOutcome> {
        self.log.lock().unwrap().push(Extrinsic::Set {
            uids: w.uids.clone(),
            values: w.values.clone(),
        });
        Ok(ok())
    }
    async fn commit_weights(&self, c: &WeightsCommit) -> ChainResult<TxOutcome> {
        self.log
            .lock()
            .unwrap()
            .push(Extrinsic::Commit { hash: c.hash });
        Ok(ok())
    }
    async fn reveal_weights(&self, r: &WeightsReveal) -> ChainResult<TxOutcome> {
        self.log.lock().unwrap().push(Extrinsic::Reveal {
            uids: r.weights.uids.clone(),
            values: r.weights.values.clone(),
            salt: r.salt.clone(),
        });
        Ok(ok())
    }
    async fn serve_axon(&self, _: &orchestra_chain::AxonServe) -> ChainResult<TxOutcome> {
        Ok(ok())
    }
    async fn anchor_commitment(&self, _: NetUid, _: &[u8]) -> ChainResult<TxOutcome> {
        Ok(ok())
    }
}

/// The core both drivers run: //Alice's validator, seeded alike, over the mock subnets' Ledger.
fn core(mocks: &Arc<MockSet>) -> Validator {
    let me = Hotkey::from_uri("//Alice").unwrap().ss58();
    let entries = mocks.entries();
    let ledger = Ledger::seeded(VerifyParams::default(), entries.values(), &me, 0).unwrap();
    let config = ValidatorConfig {
        challenge_every_blocks: 3,
        anchor_every_blocks: 0,
        ..ValidatorConfig::new(me, MechanismParams::default())
    };
    let templates = crate::validator::load_templates(None).unwrap();
    Validator::new(config, templates, ledger, ValidatorRngs::from_seed(SEED)).unwrap()
}

/// The node's driver, stepped block by block; every IO of a block settles before the next.
async fn through_the_node(commit_reveal: bool) -> Vec<Extrinsic> {
    let mocks = mocks();
    let dir = tempfile::tempdir().unwrap();
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let settings = Settings {
        netuid: NETUID,
        chain_url: "fake".into(),
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        ledger_seed: None,
        objectives: None,
        miners: BTreeMap::new(),
        subnets: BTreeMap::new(),
        subnets_url: None,
        params: MechanismParams::default(),
        challenge: Default::default(),
        challenge_every_blocks: 3,
        anchor_every_blocks: 0,
        poll: Duration::from_millis(10),
        version_key: None,
        metagraph_refresh_blocks: 1,
        network_slack_ms: 2_000,
        limits: orchestra_ledger::access::Limits::default(),
        organic_attempts: 3,
        schemes: Default::default(),
        drand: orchestra_chain::crv4::Beacon::quicknet(),
        pay: None,
    };
    let core = core(&mocks);
    let store: Box<dyn Store> = Box::new(MemoryStore::new());
    let mut node = LedgerNode::open(store, alice.clone(), VerifyParams::default()).unwrap();
    let changes: Vec<_> = mocks
        .entries()
        .values()
        .map(|e| orchestra_ledger::mocks::seed_change(e, &alice.ss58(), 0).unwrap())
        .collect();
    node.append(changes).unwrap();
    let ledger = AppState::new(node, ServerConfig::default());
    let chain = Arc::new(FakeChain {
        commit_reveal,
        ..FakeChain::default()
    });
    let subnets = Arc::new(WorldSubnets {
        world: Mutex::new((world(&mocks), ChaCha8Rng::seed_from_u64(7))),
    });
    let registry = Metrics::new();
    let mut driver = Driver::new(
        settings,
        chain.clone(),
        subnets,
        Arc::new(InProcessMiners::new(&mocks)),
        Arc::new(alice),
        ledger,
        StateStore::open(&dir.path().join("validator.db")).unwrap(),
        ValidatorMetrics::register(&registry),
        Arc::new(RwLock::new(Status::default())),
        Arc::new(RwLock::new(core.view().clone())),
        core,
        ChaCha8Rng::seed_from_u64(1),
        mpsc::channel(1024),
    );
    for block in 1..=BLOCKS {
        chain.block.store(block, Ordering::SeqCst);
        driver.step_block().await;
        driver.settle().await;
    }
    chain.log.lock().unwrap().clone()
}

/// The same core driven by the simulator's parts in virtual time.
fn through_the_simulator(commit_reveal: bool) -> Vec<Extrinsic> {
    let mocks = mocks();
    let mut core = core(&mocks);
    let miners = InProcessMiners::new(&mocks);
    let subnets = WorldSubnets {
        world: Mutex::new((world(&mocks), ChaCha8Rng::seed_from_u64(7))),
    };
    let chain = orchestra_sim::simchain::SimChain::new(
        orchestra_sim::scenario::ChainConfig {
            tempo: u64::from(TEMPO),
            epoch_rule: orchestra_sim::scenario::EpochRule::Legacy,
            commit_reveal,
            commit_reveal_version: 2,
            ..Default::default()
        },
        1,
        None,
    );
    chain.register(
        Hotkey::from_uri("//Alice").unwrap().ss58(),
        account("//Alice"),
        1,
        None,
        0,
    );
    let mut users = ChaCha8Rng::seed_from_u64(1);
    let mut log = Vec::new();
    for block in 1..=BLOCKS {
        // What the node reads off the fake chain every block.
        core.handle_chain(ChainInfo {
            miners: MINERS
                .iter()
                .enumerate()
                .map(|(i, uri)| MinerInfo {
                    uid: i as u16 + 1,
                    hotkey: Hotkey::from_uri(uri).unwrap().ss58(),
                    coldkey: None,
                    incentive: 0,
                })
                .collect(),
            my_uid: Some(0),
            limits: WeightLimits {
                self_uid: Some(0),
                min_allowed_weights: 1,
                max_weight_limit: u16::MAX,
            },
            rules: WeightRules {
                commit_reveal,
                reveal_period: 1,
                // The node's fake chain runs commit-reveal v2.
                timelocked: false,
            },
            consensus: vec![vec![0; 4]],
        });
        let now = 1_767_225_600_000 + block * 12_000;
        // As in a node, the block's tempo index is known before the block's challenges come
        // back: a round on an epoch block counts towards the next tempo.
        chain.set_block(block);
        assert_eq!(chain.epoch_index(), tempo_index(block), "block {block}");
        core.handle_block(block, now);
        core.handle_tempo(chain.epoch_index(), block, now);
        while let Some(t) = core.poll_challenge() {
            let (result, at) = match miners.answer(&t.hotkey, &t.challenge) {
                Ok((r, at)) => (Ok(r), at),
                Err(e) => (Err(e), now),
            };
            core.handle_response(t.job, result, at, &mut users);
            while let Some(a) = core.poll_audit(at) {
                let r = subnets.call_now(a.call.netuid, &a.call.endpoint, &a.call.request);
                core.handle_audit_result(a.job, a.call.audit_id, r);
            }
        }
        while core.poll_event().is_some() {}
        while let Some(action) = core.poll_weights() {
            // The simulated chain runs the legacy rule here, as the node's fake chain does, so
            // it checks every extrinsic (a reveal in the wrong epoch is refused).
            log.push(match &action {
                WeightsAction::Set { weights, .. } => Extrinsic::Set {
                    uids: weights.uids.clone(),
                    values: weights.values.clone(),
                },
                WeightsAction::Commit { weights, salt, .. } => {
                    let reveal = WeightsReveal {
                        weights: WeightsSubmission {
                            netuid: NETUID,
                            mecid: weights.mechanism,
                            uids: weights.uids.clone(),
                            values: weights.values.clone(),
                            version_key: 0,
                        },
                        salt: salt.clone(),
                    };
                    Extrinsic::Commit {
                        hash: orchestra_chain::commit_for(&account("//Alice"), &reveal, true).hash,
                    }
                }
                WeightsAction::Reveal { weights, salt, .. } => Extrinsic::Reveal {
                    uids: weights.uids.clone(),
                    values: weights.values.clone(),
                    salt: salt.clone(),
                },
                WeightsAction::CommitTimelocked { .. } => {
                    unreachable!("both sides run commit-reveal v2 here")
                }
            });
            chain.submit_weights(0, &action).unwrap();
            core.handle_weights_result(action.id(), true);
        }
    }
    log
}

fn check(commit_reveal: bool, node: &[Extrinsic], sim: &[Extrinsic]) {
    assert!(!sim.is_empty(), "three tempos produce weights");
    assert_eq!(node, sim, "commit_reveal = {commit_reveal}");
    assert!(
        sim.iter().any(|e| match e {
            Extrinsic::Set { uids, .. } | Extrinsic::Reveal { uids, .. } =>
                uids.len() == MINERS.len(),
            Extrinsic::Commit { .. } => false,
        }),
        "every miner earned weight: {sim:?}"
    );
    assert!(
        sim.iter().any(|e| match e {
            Extrinsic::Set { values, .. } | Extrinsic::Reveal { values, .. } => {
                values.iter().any(|&v| v < u16::MAX)
            }
            Extrinsic::Commit { .. } => false,
        }),
        "the picky miner earns less: {sim:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_and_the_simulator_set_the_same_weights() {
    let sim = through_the_simulator(false);
    let node = through_the_node(false).await;
    check(false, &node, &sim);
    assert!(sim.iter().all(|e| matches!(e, Extrinsic::Set { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_and_the_simulator_commit_and_reveal_the_same_weights() {
    let sim = through_the_simulator(true);
    let node = through_the_node(true).await;
    check(true, &node, &sim);
    assert!(
        sim.iter().any(|e| matches!(e, Extrinsic::Reveal { .. })),
        "{sim:?}"
    );
}
