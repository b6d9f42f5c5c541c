//! One simulated run: validators, miners, mock subnets and the chain, block by block.
//!
//! Every decision is made by the production cores — `orchestra-miner` answers, the
//! `orchestra-validator` components challenge, audit, verify proposals, score and set weights,
//! `orchestra-ledger` keeps each validator's replica, `orchestra-yuma` runs every tempo. The
//! engine only moves messages between them in virtual time, plays the subnets
//! (`orchestra-mocks`), applies scenario events and measures.
//!
//! A challenge is executed to completion when it is issued: its sub-calls run in virtual time
//! through [`orchestra_miner::local::drive`], so the run needs no executor and no event queue
//! per sub-call, and is reproducible byte for byte.

mod events;

use crate::inputs::Inputs;
use crate::metrics::{ChallengeStats, EpochInputs, Metrics, Row, TruthChange, ValidatorScores};
use crate::rng::{seed as derive_seed, stream};
use crate::scenario::{EventKind, LoadProfile, ScenarioSpec, StakeDistribution};
use crate::simchain::{NETUID, Payout, REVEAL_PERIOD_EPOCHS, SimChain};
use crate::world::World;
use events::{Action, Scheduled, schedule, subnet_event_name, truth_change};
use orchestra_adversaries::{GroupState, ValidatorBuildError};
use orchestra_chain::{Chain, resolve_ready};
use orchestra_ledger::{Ledger, VerifyParams};
use orchestra_mechanism::combine::emission_split_u16;
use orchestra_mechanism::params::CombinationMode;
use orchestra_mechanism::weights::WeightLimits;
use orchestra_miner::{
    EpochReward, Honest, LedgerView, Miner, MinerConfig, Planner, Strategy, local::drive,
};
use orchestra_protocol::ledger::Entry;
use orchestra_protocol::messages::{Challenge, Response};
use orchestra_protocol::ss58;
use orchestra_validator::{
    ChainInfo, ChallengeConfig, ChallengeOutcome, MinerInfo, Validator, ValidatorConfig,
    ValidatorEvent, ValidatorRngs, ValidatorStrategy, WeightRules, WeightsAction,
};
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Virtual time of block 0 (2026-01-01T00:00:00Z), so timestamps look real.
pub const GENESIS_MS: u64 = 1_767_225_600_000;
/// Validator ↔ miner network latency each way, ms.
pub const NETWORK_MS: u64 = 40;

/// One run to simulate.
pub struct RunSpec<'a> {
    /// The scenario at this parameter point.
    pub spec: &'a ScenarioSpec,
    /// Parameter point index.
    pub point: u32,
    /// Root seed of this run.
    pub seed: u64,
    /// Shared inputs.
    pub inputs: &'a Inputs,
}

/// Why a run could not be set up or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A key of the scenario is wrong in a way only the engine sees (e.g. strategy params);
    /// the key path is relative to the scenario file.
    #[error("`{key}`: expected {expected}, found {found}")]
    Scenario {
        /// Key path in the scenario file.
        key: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A core reported an internal error.
    #[error("{0}")]
    Core(String),
}

struct MinerActor {
    uid: u16,
    group: usize,
    miner: Miner,
    rng: ChaCha8Rng,
    world_rng: ChaCha8Rng,
    active: bool,
}

/// One validator: the production core plus what the simulated world keeps for it.
struct ValidatorActor {
    uid: u16,
    stake: u64,
    core: Validator,
    /// The validator's calls into the world (audit re-executions, probes).
    rng_world: ChaCha8Rng,
    /// While `block < down_until` the validator is offline: it sees no blocks, gets no users'
    /// requests, and its weight extrinsics are lost.
    down_until: u64,
}

/// The output of one run.
pub struct RunOutput {
    /// Long-format rows (per epoch and whole run).
    pub rows: Vec<Row>,
    /// Scenario events as they happened: (block, epoch, kind, detail).
    pub events: Vec<(u64, i64, String, String)>,
    /// BLAKE3 of the run's event log (every challenge, weight vector and payout).
    pub event_log_hash: String,
    /// Epoch index of the last `attack_stop`, if any.
    pub attack_stop_epoch: Option<i64>,
}

fn identity(name: &str) -> (String, [u8; 32]) {
    let account = *blake3::hash(name.as_bytes()).as_bytes();
    (ss58::encode(&account, ss58::BITTENSOR_PREFIX), account)
}

/// The coldkey owning every miner of group `label` (ss58 and public key): one operator per
/// group.
fn group_coldkey(label: &str) -> (String, [u8; 32]) {
    identity(&format!("coldkey/{label}"))
}

/// Check what only the engine can: strategy parameters, and that every netuid, endpoint and
/// schema version the scenario names exists among the mock subnets. Errors point into the file.
pub fn validate(
    scenario: &crate::scenario::Scenario,
    inputs: &Inputs,
) -> Result<(), Box<crate::located::LocatedError>> {
    let doc = &scenario.doc;
    let err =
        |key: &str, expected: &str, found: &str| Box::new(doc.error_at_key(key, expected, found));
    let mocks = &inputs.mocks;
    let netuids: Vec<String> = mocks.iter().map(|m| m.netuid().to_string()).collect();
    let known = format!("a mock subnet netuid ({})", netuids.join(", "));
    for point in &scenario.points {
        let spec = &point.spec;
        for (i, g) in spec.miners.iter().enumerate() {
            if let Err(RunError::Scenario {
                key,
                expected,
                found,
            }) = inputs.build_strategy(i, g, &mut GroupState::default(), 0)
            {
                return Err(err(&key, &expected, &found));
            }
        }
        let labels: Vec<String> = spec.miners.iter().map(|g| g.label().to_string()).collect();
        let coldkeys: Vec<String> = labels.iter().map(|l| group_coldkey(l).0).collect();
        for (i, g) in spec.validators.iter().enumerate() {
            if let Err(RunError::Scenario {
                key,
                expected,
                found,
            }) = validator_strategy(i, g, &labels, &coldkeys)
            {
                return Err(err(&key, &expected, &found));
            }
        }
        for (key, list) in [
            ("subnets.include", &spec.subnets.include),
            ("subnets.unlisted", &spec.subnets.unlisted),
        ] {
            if let Some((i, n)) = list
                .iter()
                .enumerate()
                .find(|(_, n)| mocks.get(**n).is_none())
            {
                return Err(err(&format!("{key}[{i}]"), &known, &n.to_string()));
            }
        }
        for (i, e) in spec.events.iter().enumerate() {
            let kind = &e.kind;
            let Some(netuid) = kind.netuid() else {
                continue;
            };
            let Some(mock) = mocks.get(netuid) else {
                return Err(err(
                    &format!("events[{i}].netuid"),
                    &known,
                    &netuid.to_string(),
                ));
            };
            if let EventKind::SchemaChange {
                endpoint, version, ..
            } = &kind
            {
                match mock.schema_versions(endpoint) {
                    None => {
                        let names: Vec<&str> = mock.endpoint_names().collect();
                        return Err(err(
                            &format!("events[{i}].endpoint"),
                            &format!("an endpoint of subnet {netuid} ({})", names.join(", ")),
                            &format!("{endpoint:?}"),
                        ));
                    }
                    Some(versions) if !versions.contains(version) => {
                        let v: Vec<String> = versions.iter().map(u32::to_string).collect();
                        return Err(err(
                            &format!("events[{i}].version"),
                            &format!("a schema version of {endpoint} ({})", v.join(", ")),
                            &version.to_string(),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if let EventKind::NewSubnet { netuid } = *kind
                && !spec.subnets.unlisted.contains(&netuid)
                && spec.subnets.include.iter().all(|&n| n != netuid)
                && !spec.subnets.include.is_empty()
            {
                return Err(err(
                    &format!("events[{i}].netuid"),
                    "a subnet listed in subnets.include",
                    &netuid.to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// Simulate one run.
pub fn run(spec: &RunSpec<'_>) -> Result<RunOutput, RunError> {
    Engine::new(spec)?.run(None)
}

/// Simulate one run, handing each epoch's rows to `rows` as soon as they are made (and the
/// whole-run rows at the end), so memory stays flat however long the run: a one-year run of 256
/// miners makes about ten million rows. [`RunOutput::rows`] is then empty.
pub fn run_streaming(
    spec: &RunSpec<'_>,
    rows: &mut dyn FnMut(Vec<Row>),
) -> Result<RunOutput, RunError> {
    Engine::new(spec)?.run(Some(rows))
}

struct Engine<'a> {
    spec: &'a ScenarioSpec,
    seed: u64,
    inputs: &'a Inputs,
    world: World,
    chain: SimChain,
    miners: Vec<MinerActor>,
    validators: Vec<ValidatorActor>,
    /// Miner uid → index into `miners`.
    miner_index: BTreeMap<u16, usize>,
    group_states: Vec<GroupState>,
    group_labels: Vec<String>,
    group_coldkeys: Vec<(String, [u8; 32])>,
    schedule: Vec<Scheduled>,
    /// The Ledger view miners route with (validator 0's, as of its last rebuild).
    canonical: Arc<LedgerView>,
    metrics: Metrics,
    log: blake3::Hasher,
    rng_load: ChaCha8Rng,
    rng_organic: ChaCha8Rng,
    events_out: Vec<(u64, i64, String, String)>,
    attack_stop_epoch: Option<i64>,
    total_blocks: u64,
    mechanisms: usize,
    last_payout: Option<Payout>,
    /// Truth changes not yet reflected in the canonical Ledger: (netuid, change, block).
    pending_truth: Vec<(u16, TruthChange, u64)>,
}

/// How one challenge ended for the driver loop: a user's request's quality, once known.
enum Drained {
    /// Nothing to report.
    Nothing,
    /// A user's request finished with this quality (0 when no miner answered).
    Organic(f64),
}

impl<'a> Engine<'a> {
    fn new(run: &RunSpec<'a>) -> Result<Self, RunError> {
        let spec = run.spec;
        let seed = run.seed;
        let cfg = &spec.chain;
        let params = &spec.mechanism;
        let inputs = run.inputs;

        // Subnets: those included exist; unlisted ones exist but are not in the Ledger.
        let all: BTreeSet<u16> = inputs.mocks.iter().map(|m| m.netuid()).collect();
        let included: BTreeSet<u16> = if spec.subnets.include.is_empty() {
            all.clone()
        } else {
            spec.subnets.include.iter().copied().collect()
        };
        for (i, n) in spec.subnets.include.iter().enumerate() {
            if !all.contains(n) {
                return Err(scenario_err(
                    &format!("subnets.include[{i}]"),
                    "a netuid of a mock subnet",
                    &n.to_string(),
                ));
            }
        }
        let unlisted: BTreeSet<u16> = spec.subnets.unlisted.iter().copied().collect();
        let launched_later: BTreeSet<u16> = spec
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::NewSubnet { netuid } => Some(netuid),
                _ => None,
            })
            .collect();
        let live: BTreeSet<u16> = included
            .iter()
            .copied()
            .filter(|n| !launched_later.contains(n))
            .collect();
        let world = World::new(
            inputs.mocks.clone(),
            live,
            derive_seed(seed, "world", "content"),
            cfg.block_ms,
        );

        let mut entries: BTreeMap<u16, Entry> = inputs.mocks.entries();
        entries.retain(|n, _| {
            included.contains(n) && !unlisted.contains(n) && !launched_later.contains(n)
        });

        let mechanisms = if params.combination == CombinationMode::Mechanisms {
            2
        } else {
            1
        };
        let split =
            (mechanisms == 2).then(|| emission_split_u16(params.orchestration_share).to_vec());
        let chain = SimChain::new(cfg.clone(), mechanisms, split);
        let group_labels: Vec<String> = spec.miners.iter().map(|g| g.label().to_string()).collect();
        let group_coldkeys: Vec<(String, [u8; 32])> =
            group_labels.iter().map(|l| group_coldkey(l)).collect();

        // Validators first (uids 0..V), then miners.
        let mut validators = Vec::new();
        let mut vindex = 0u32;
        for (gi, g) in spec.validators.iter().enumerate() {
            for k in 0..g.count {
                let name = format!("validator/{vindex}");
                let (hotkey, account) = identity(&name);
                let stake_tao = match g.distribution {
                    StakeDistribution::Equal => g.stake_tao,
                    StakeDistribution::Zipf => g.stake_tao / f64::from(k + 1).powf(g.zipf_s),
                };
                let stake = (stake_tao * 1e9) as u64;
                let uid = chain.register(hotkey.clone(), account, stake, None, 0);
                let ledger = Ledger::seeded(VerifyParams::default(), entries.values(), &hotkey, 0)
                    .map_err(|e| RunError::Core(format!("seeding the Ledger: {e}")))?;
                let every = g.challenge_every_blocks.max(1);
                let config = ValidatorConfig {
                    challenge: ChallengeConfig {
                        sample_size: g.sample as usize,
                        ..ChallengeConfig::default()
                    },
                    challenge_every_blocks: every,
                    challenge_phase: derive_seed(seed, &name, "phase") % every,
                    organic_attempts: spec.load.attempts,
                    ..ValidatorConfig::new(hotkey.clone(), params.clone())
                };
                let rngs = ValidatorRngs {
                    challenges: stream(seed, &name, "challenges"),
                    audits: stream(seed, &name, "audits"),
                    salts: stream(seed, &name, "salts"),
                };
                let coldkeys: Vec<String> = group_coldkeys.iter().map(|(c, _)| c.clone()).collect();
                let strategy = validator_strategy(gi, g, &group_labels, &coldkeys)?;
                let mut core = Validator::new(config, inputs.templates.clone(), ledger, rngs)
                    .map_err(|e| RunError::Core(e.to_string()))?
                    .with_strategy(strategy);
                // What a validator reads from the subnets' metagraphs: their receipt keys.
                for (&netuid, key) in world.hotkeys() {
                    core.set_subnet_hotkeys(netuid, BTreeSet::from([key.clone()]));
                }
                validators.push(ValidatorActor {
                    uid,
                    stake,
                    core,
                    rng_world: stream(seed, &name, "world"),
                    down_until: 0,
                });
                vindex += 1;
            }
        }

        let mut miners = Vec::new();
        let mut miner_index = BTreeMap::new();
        let mut group_states: Vec<GroupState> =
            spec.miners.iter().map(|_| GroupState::default()).collect();
        let planner = Planner::new(&inputs.templates);
        for (gi, g) in spec.miners.iter().enumerate() {
            for k in 0..g.count {
                let name = format!("miner/{}/{k}", g.label());
                let actor = new_miner(
                    inputs,
                    &chain,
                    &planner,
                    spec,
                    gi,
                    &name,
                    &group_coldkeys[gi],
                    seed,
                    &mut group_states[gi],
                    0,
                )?;
                miner_index.insert(actor.uid, miners.len());
                miners.push(actor);
            }
        }

        let canonical = validators
            .first()
            .map(|v| v.core.view().clone())
            .ok_or_else(|| RunError::Core("no validators".into()))?;
        let total_blocks = ((spec.scenario.days * 86_400_000.0) / cfg.block_ms as f64)
            .round()
            .max(1.0) as u64;
        let schedule = schedule(spec, &group_labels, cfg.block_ms)?;
        let mut engine = Engine {
            spec,
            seed,
            inputs,
            world,
            chain,
            miners,
            validators,
            miner_index,
            group_states,
            group_labels: group_labels.clone(),
            group_coldkeys,
            schedule,
            canonical,
            metrics: Metrics::new(spec, group_labels),
            log: blake3::Hasher::new(),
            rng_load: stream(seed, "load", "arrivals"),
            rng_organic: stream(seed, "load", "organic"),
            events_out: Vec::new(),
            attack_stop_epoch: None,
            total_blocks,
            mechanisms,
            last_payout: None,
            pending_truth: Vec::new(),
        };
        engine.publish_chain();
        Ok(engine)
    }

    fn now_ms(&self, block: u64) -> u64 {
        GENESIS_MS + block * self.spec.chain.block_ms
    }

    /// The chain's epoch index at the current block (its epoch, if it runs now, counted).
    fn epoch_of(&self, _block: u64) -> i64 {
        self.chain.epoch_index() as i64
    }

    fn run(mut self, mut sink: Option<&mut dyn FnMut(Vec<Row>)>) -> Result<RunOutput, RunError> {
        let mut next_event = 0;
        for block in 1..=self.total_blocks {
            let now = self.now_ms(block);
            let epoch_runs = self.chain.set_block(block);
            self.world.next_block();
            while next_event < self.schedule.len() && self.schedule[next_event].block <= block {
                let action = self.schedule[next_event].action.clone();
                self.apply(block, action);
                next_event += 1;
            }
            self.organic(block);
            for v in 0..self.validators.len() {
                if self.validators[v].down_until <= block {
                    self.validators[v].core.handle_block(block, now);
                    self.drive(v, block, None);
                    // Anchors land on the simulated chain (which keeps no Commitments pallet
                    // state: nothing reads them back).
                    let va = &mut self.validators[v];
                    while let Some(a) = va.core.poll_anchor() {
                        let signer = self.chain.as_signer(va.uid);
                        let _ = resolve_ready(signer.anchor_commitment(NETUID, &a.data));
                    }
                }
                self.verify_proposals(v, block);
            }
            if block.is_multiple_of(10) {
                self.check_truth(block);
            }
            // Audit views (and the miners' routing view) are rebuilt every 50 blocks (10
            // minutes) rather than on every accepted change: rebuilding compiles schemas, and a
            // node polling its replica would do much the same.
            if block.is_multiple_of(50) {
                for va in &mut self.validators {
                    va.core.refresh_view();
                }
                if let Some(first) = self.validators.first() {
                    self.canonical = first.core.view().clone();
                }
            }
            let parts = self.tempo(block)?;
            if epoch_runs {
                self.end_epoch(block, &parts)?;
                if let Some(sink) = sink.as_mut() {
                    sink(self.metrics.take_rows());
                }
            }
        }
        let mut rows = self.metrics.finish();
        if let Some(sink) = sink {
            sink(std::mem::take(&mut rows));
        }
        Ok(RunOutput {
            rows,
            events: self.events_out,
            event_log_hash: self.log.finalize().to_hex().to_string(),
            attack_stop_epoch: self.attack_stop_epoch,
        })
    }

    fn apply(&mut self, block: u64, action: Action) {
        let epoch = self.epoch_of(block);
        match action {
            Action::Subnet { netuid, event } => {
                let kind = subnet_event_name(&event);
                let detail = format!("subnet {netuid}: {event:?}");
                match self.world.apply(netuid, &event) {
                    Ok(()) => {
                        if let Some(change) = truth_change(&event) {
                            self.pending_truth.push((netuid, change, block));
                        }
                        self.events_out
                            .push((block, epoch, kind.to_string(), detail));
                    }
                    Err(e) => self
                        .events_out
                        .push((block, epoch, format!("{kind}_refused"), e)),
                }
            }
            Action::Launch(netuid) => {
                if self.world.launch(netuid) {
                    self.pending_truth
                        .push((netuid, TruthChange::NewSubnet, block));
                }
                self.events_out.push((
                    block,
                    epoch,
                    "new_subnet".into(),
                    format!("subnet {netuid} launched"),
                ));
            }
            Action::ValidatorsDown { validators, until } => {
                for v in &validators {
                    if let Some(va) = self.validators.get_mut(*v as usize) {
                        va.down_until = until;
                    }
                }
                self.events_out.push((
                    block,
                    epoch,
                    "validator_down".into(),
                    format!("validators {validators:?} until block {until}"),
                ));
            }
            Action::Churn { group, leave, join } => {
                self.churn(block, group, leave, join);
                self.publish_chain();
                self.events_out.push((
                    block,
                    epoch,
                    "miner_churn".into(),
                    format!("{}: {leave} leave, {join} join", self.group_labels[group]),
                ));
            }
            Action::AttackStop { group } => {
                let planner = Planner::new(&self.inputs.templates);
                for m in self.miners.iter_mut().filter(|m| m.group == group) {
                    let hotkey = m.miner.hotkey().to_string();
                    m.miner = Miner::new(hotkey, planner.clone(), MinerConfig::default());
                }
                self.attack_stop_epoch = Some(epoch);
                self.metrics.set_group_strategy(group, Honest.name());
                self.events_out.push((
                    block,
                    epoch,
                    "attack_stop".into(),
                    format!("{} turns honest", self.group_labels[group]),
                ));
            }
            Action::SetTempo(tempo) => {
                let from = self.chain.tempo();
                let (kind, detail) = match self.chain.set_tempo(tempo) {
                    Ok(()) => ("set_tempo", format!("tempo {from} → {tempo}")),
                    Err(e) => ("set_tempo_refused", e.to_string()),
                };
                self.events_out.push((block, epoch, kind.into(), detail));
            }
            Action::ResetBonds { group } => {
                let uids: Vec<u16> = self
                    .miners
                    .iter()
                    .filter(|m| m.group == group && m.active)
                    .map(|m| m.uid)
                    .collect();
                let reset = uids.iter().filter(|&&u| self.chain.reset_bonds(u)).count();
                let (kind, detail) = if reset > 0 {
                    (
                        "reset_bonds",
                        format!("{}: bonds to uids {uids:?} reset", self.group_labels[group]),
                    )
                } else {
                    (
                        "reset_bonds_ignored",
                        format!(
                            "{}: BondsResetOn is off ([chain] bonds_reset)",
                            self.group_labels[group]
                        ),
                    )
                };
                self.events_out.push((block, epoch, kind.into(), detail));
            }
            Action::TriggerEpoch => {
                let (kind, detail) = match self.chain.trigger_epoch() {
                    Ok(at) => ("trigger_epoch", format!("epoch at block {at}")),
                    Err(e) => ("trigger_epoch_refused", e.to_string()),
                };
                self.events_out.push((block, epoch, kind.into(), detail));
            }
        }
    }

    fn churn(&mut self, block: u64, group: usize, leave: u32, join: u32) {
        let leaving: Vec<u16> = self
            .miners
            .iter()
            .filter(|m| m.group == group && m.active)
            .take(leave as usize)
            .map(|m| m.uid)
            .collect();
        for uid in &leaving {
            if let Some(&i) = self.miner_index.get(uid) {
                self.miners[i].active = false;
            }
        }
        let planner = Planner::new(&self.inputs.templates);
        for j in 0..join {
            let name = format!("miner/{}/joined-{block}-{j}", self.group_labels[group]);
            // Re-use a freed uid if there is one, as subtensor prunes and re-registers.
            let reuse = leaving.get(j as usize).copied();
            match new_miner(
                self.inputs,
                &self.chain,
                &planner,
                self.spec,
                group,
                &name,
                &self.group_coldkeys[group],
                self.seed,
                &mut self.group_states[group],
                block,
            ) {
                Ok(mut actor) => {
                    if let Some(uid) = reuse {
                        let (hotkey, account) = identity(&name);
                        self.chain.replace(
                            uid,
                            hotkey,
                            account,
                            Some(self.group_coldkeys[group].1),
                            block,
                        );
                        actor.uid = uid;
                        if let Some(&i) = self.miner_index.get(&uid) {
                            self.miners[i] = actor;
                            continue;
                        }
                    }
                    self.miner_index.insert(actor.uid, self.miners.len());
                    self.miners.push(actor);
                }
                Err(e) => self.events_out.push((
                    block,
                    self.epoch_of(block),
                    "miner_churn_refused".into(),
                    e.to_string(),
                )),
            }
        }
    }

    /// Tell every validator what the metagraph now shows: the active miners (users' requests
    /// follow last epoch's incentive; uniform before the first epoch), last consensus, the
    /// subnet's commit-reveal setting.
    fn publish_chain(&mut self) {
        let incentive = self.last_payout.as_ref().map(|p| &p.server);
        let miners: Vec<MinerInfo> = self
            .miners
            .iter()
            .filter(|m| m.active)
            .map(|m| MinerInfo {
                uid: m.uid,
                hotkey: m.miner.hotkey().to_string(),
                coldkey: Some(self.group_coldkeys[m.group].0.clone()),
                incentive: match incentive {
                    Some(i) => i.get(usize::from(m.uid)).copied().unwrap_or(0),
                    None => 1,
                },
            })
            .collect();
        let consensus: Vec<Vec<u16>> = (0..self.mechanisms)
            .map(|m| self.chain.last_consensus(m))
            .collect();
        let rules = WeightRules {
            timelocked: self.spec.chain.commit_reveal_version >= 4,
            commit_reveal: self.spec.chain.commit_reveal,
            reveal_period: REVEAL_PERIOD_EPOCHS,
        };
        for va in &mut self.validators {
            va.core.handle_chain(ChainInfo {
                miners: miners.clone(),
                my_uid: Some(va.uid),
                limits: WeightLimits::default(),
                rules,
                consensus: consensus.clone(),
            });
        }
    }

    /// Run one challenge through miner `uid`: its answer (or why none), when it arrived, and
    /// what its sub-calls cost.
    fn execute(
        &mut self,
        uid: u16,
        challenge: &Challenge,
        block: u64,
    ) -> (Result<Response, String>, u64, u64) {
        let Some(&mi) = self.miner_index.get(&uid) else {
            return (
                Err(format!("no miner at uid {uid}")),
                challenge.issued_at_ms,
                0,
            );
        };
        let m = &mut self.miners[mi];
        answer_in_world(
            &mut m.miner,
            challenge,
            &self.canonical,
            block,
            &mut self.world,
            &mut m.rng,
            &mut m.world_rng,
        )
    }

    /// Deliver validator `v`'s challenges to the miners and their answers back, run its audit
    /// re-executions against the world, and account for what it scored. Returns the quality of
    /// user request `organic` once it is done.
    fn drive(&mut self, v: usize, block: u64, organic: Option<u64>) -> Option<f64> {
        let mut done = None;
        while let Some(t) = self.validators[v].core.poll_challenge() {
            let (result, received_at, cost) = self.execute(t.uid, &t.challenge, block);
            if let Some(&i) = self.miner_index.get(&t.uid) {
                let g = self.miners[i].group;
                self.metrics.add_cost(t.uid, g, cost);
            }
            // Other miners see the response (what copycats and confirmation farmers feed on).
            if let Ok(r) = &result {
                for m in self
                    .miners
                    .iter_mut()
                    .filter(|m| m.uid != t.uid && m.active)
                {
                    m.miner.observe_peer(&t.challenge, r);
                }
            }
            let va = &mut self.validators[v];
            va.core
                .handle_response(t.job, result, received_at, &mut self.rng_organic);
            while let Some(a) = va.core.poll_audit(received_at) {
                let (outcome, _, _) = self.world.subcall(
                    a.call.netuid,
                    &a.call.endpoint,
                    &a.call.request,
                    received_at,
                    &mut va.rng_world,
                );
                va.core.handle_audit_result(
                    a.job,
                    a.call.audit_id,
                    outcome.map(|reply| reply.response),
                );
            }
            while let Some(event) = self.validators[v].core.poll_event() {
                if let Drained::Organic(q) = self.account(event, organic) {
                    done = Some(q);
                }
            }
        }
        done
    }

    /// Metrics and the event log for one validator event.
    fn account(&mut self, event: ValidatorEvent, organic: Option<u64>) -> Drained {
        match event {
            ValidatorEvent::Scored(s) => {
                let success = s.score.outcome == ChallengeOutcome::Scored
                    && s.verified()
                    && s.score.score > 0.0;
                let group = self.miner_index.get(&s.uid).map(|&i| self.miners[i].group);
                self.metrics.challenge(ChallengeStats {
                    success,
                    latency_ms: s.received_at_ms.saturating_sub(s.issued_at_ms),
                    strike: s.struck(),
                    group,
                });
                self.log.update(&s.challenge_id.0);
                self.log.update(&s.uid.to_le_bytes());
                self.log.update(&s.score.score.to_bits().to_le_bytes());
                self.log.update(&s.received_at_ms.to_le_bytes());
                Drained::Nothing
            }
            ValidatorEvent::OrganicAudited {
                request, quality, ..
            } if Some(request) == organic => Drained::Organic(quality),
            ValidatorEvent::OrganicFailed { request, .. } if Some(request) == organic => {
                Drained::Organic(0.0)
            }
            _ => Drained::Nothing,
        }
    }

    fn organic(&mut self, block: u64) {
        let l = &self.spec.load;
        if l.profile == LoadProfile::None || l.rate_per_hour <= 0.0 {
            return;
        }
        let hours = (block * self.spec.chain.block_ms) as f64 / 3_600_000.0;
        let mut rate = l.rate_per_hour;
        match l.profile {
            LoadProfile::Diurnal => {
                let phase = (hours - l.peak_hour) / 24.0 * std::f64::consts::TAU;
                rate *= 1.0 + l.amplitude * phase.cos();
            }
            LoadProfile::Spikes => {
                for s in &l.spikes {
                    let start = s.at_day * 24.0;
                    if hours >= start && hours < start + s.hours {
                        rate *= s.multiplier;
                    }
                }
            }
            LoadProfile::None | LoadProfile::Constant => {}
        }
        let lambda = rate * self.spec.chain.block_ms as f64 / 3_600_000.0;
        let n = poisson(lambda, &mut self.rng_load);
        self.metrics.organic_arrivals(n);
        for _ in 0..n {
            let online: Vec<usize> = (0..self.validators.len())
                .filter(|&v| self.validators[v].down_until <= block)
                .collect();
            if online.is_empty() || !self.miners.iter().any(|m| m.active) {
                return;
            }
            // A user picks a validator and an objective; the validator routes it (its retry
            // policy included) — users' traffic keeps its own random stream.
            let v = online[self.rng_organic.random_range(0..online.len())];
            let now = self.now_ms(block);
            let (objective, schema) = {
                let (t, objective) = self.validators[v]
                    .core
                    .generator()
                    .objective(&mut self.rng_organic);
                (objective, t.target_schema.clone())
            };
            let request = self.validators[v].core.handle_organic(
                objective,
                schema,
                block,
                now,
                &mut self.rng_organic,
            );
            let quality = self.drive(v, block, Some(request)).unwrap_or(0.0);
            self.metrics.organic(quality);
        }
    }

    fn verify_proposals(&mut self, v: usize, block: u64) {
        let now = self.now_ms(block);
        let mut accepted = Vec::new();
        {
            let va = &mut self.validators[v];
            if va.core.pending_proposals() == 0 {
                return;
            }
            while let Some(probe) = va.core.poll_probe() {
                let outcome = self.world.call(
                    probe.netuid,
                    &probe.endpoint,
                    &probe.request,
                    now,
                    &mut va.rng_world,
                );
                let latency = outcome.latency_ms();
                let ok = outcome.error().is_none() && latency <= probe.timeout_ms;
                let result = orchestra_ledger::ProbeResult {
                    ok,
                    latency_ms: latency,
                    response: outcome.response().cloned(),
                };
                va.core.handle_probe_result(probe.probe_id, result);
            }
            while let Some(verdict) = va.core.poll_verdict() {
                if let Some(record) = verdict.record {
                    self.metrics.proposal(&record);
                    if let Some(change) = verdict.change {
                        accepted.push((change, record));
                    }
                }
            }
        }
        // Validators share their change logs: peers resync from the verifying validator's log
        // and credit the proposer from it as the verifier did, so every validator scores Ledger
        // work alike and Yuma's consensus does not clip it. (Slashes stay with the validator
        // that saw the proposal: rejected proposals never reach the log.)
        for (change, record) in accepted {
            for (w, peer) in self.validators.iter_mut().enumerate() {
                if w != v {
                    // A peer whose replica cannot take the record keeps its own view.
                    let _ = peer.core.handle_peer_change(&change, Some(record));
                }
            }
        }
    }

    /// Record detection lags of truth changes the canonical Ledger now reflects.
    fn check_truth(&mut self, block: u64) {
        if self.pending_truth.is_empty() {
            return;
        }
        let Some(first) = self.validators.first() else {
            return;
        };
        let state = first.core.ledger_state();
        let mut done = Vec::new();
        for (i, (netuid, change, at)) in self.pending_truth.iter().enumerate() {
            let truth = self.world.truth(*netuid);
            let known = state.get(*netuid);
            if crate::metrics::reflects(*change, truth.as_ref(), known) {
                self.metrics.detected(block - at);
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            self.pending_truth.remove(i);
        }
    }

    /// Tell every validator the chain's tempo index; a validator whose tempo closed hands over
    /// its scores and weight extrinsics, which land on the chain (unless it is offline). The
    /// scores of closed tempos, with each validator's stake, are returned for the epoch's
    /// metrics.
    fn tempo(&mut self, block: u64) -> Result<Vec<ValidatorScores>, RunError> {
        let index = self.chain.epoch_index();
        let now = self.now_ms(block);
        let mut parts = Vec::new();
        for va in &mut self.validators {
            va.core.handle_tempo(index, block, now);
            while let Some(event) = va.core.poll_event() {
                if let ValidatorEvent::TempoClosed { scores, .. } = event {
                    parts.push((va.stake, scores));
                }
            }
            while let Some(action) = va.core.poll_weights() {
                let id = action.id();
                if va.down_until > block {
                    va.core.handle_weights_result(id, false);
                    continue;
                }
                if let WeightsAction::Set { weights, .. } | WeightsAction::Commit { weights, .. } =
                    &action
                {
                    self.log.update(&va.uid.to_le_bytes());
                    for (u, x) in weights.uids.iter().zip(&weights.values) {
                        self.log.update(&u.to_le_bytes());
                        self.log.update(&x.to_le_bytes());
                    }
                }
                match self.chain.submit_weights(va.uid, &action) {
                    Ok(_) => va.core.handle_weights_result(id, true),
                    // The simulated chain refuses only what the real one would: a core that
                    // submits such an extrinsic is wrong, and the run says so.
                    Err(e) => return Err(RunError::Core(format!("weights: {e}"))),
                }
            }
        }
        Ok(parts)
    }

    fn end_epoch(&mut self, block: u64, parts: &[ValidatorScores]) -> Result<(), RunError> {
        let epoch = self.epoch_of(block) - 1;
        let payout = self
            .chain
            .epoch(block)
            .map_err(|e| RunError::Core(format!("yuma: {e}")))?;
        for x in payout.server.iter().chain(&payout.validator) {
            self.log.update(&x.to_le_bytes());
        }
        let ledger_state = self
            .validators
            .first()
            .map(|v| v.core.ledger_state().clone());
        let truth: BTreeMap<u16, Entry> = self
            .world
            .live()
            .iter()
            .filter_map(|&n| self.world.truth(n).map(|e| (n, e)))
            .collect();
        let uid_group: BTreeMap<u16, usize> = self
            .miners
            .iter()
            .filter(|m| m.active)
            .map(|m| (m.uid, m.group))
            .collect();
        let validator_uids: Vec<u16> = self.validators.iter().map(|v| v.uid).collect();
        self.metrics.end_epoch(EpochInputs {
            epoch,
            payout: &payout,
            uid_group: &uid_group,
            validator_uids: &validator_uids,
            scores: parts,
            truth: &truth,
            ledger: ledger_state.as_ref(),
            live: self.world.live().len(),
            alpha_price_rao: self.spec.chain.alpha_price_rao,
        });
        // Each miner learns its own emission, as it could from the metagraph: what a strategy
        // that weighs its ROI (docs/mechanism.md §8, `adaptive`) reacts to.
        let price = self.spec.chain.alpha_price_rao;
        for m in self.miners.iter_mut().filter(|m| m.active) {
            let emission = payout.server.get(usize::from(m.uid)).copied().unwrap_or(0);
            m.miner.on_epoch(&EpochReward {
                block,
                emission_rao: emission,
                value_rao: alpha_value_rao(emission, price),
            });
        }
        self.last_payout = Some(payout);
        self.publish_chain();
        Ok(())
    }
}

/// `alpha_rao` of alpha in TAO rao at `price_rao` TAO rao per alpha (1e9 alpha rao), saturating.
fn alpha_value_rao(alpha_rao: u64, price_rao: u64) -> u64 {
    let v = u128::from(alpha_rao) * u128::from(price_rao) / 1_000_000_000;
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// A miner's answer to `challenge` in the simulated world, as the engine delivers every
/// challenge: the miner core driven in virtual time from `issued_at + NETWORK_MS` against the
/// Ledger `view`, its sub-calls answered by `world`. Returns the response (or why there is none),
/// when it reaches the validator, and what the sub-calls cost.
pub fn answer_in_world(
    miner: &mut Miner,
    challenge: &Challenge,
    view: &LedgerView,
    block: u64,
    world: &mut World,
    rng: &mut ChaCha8Rng,
    world_rng: &mut ChaCha8Rng,
) -> (Result<Response, String>, u64, u64) {
    let start = challenge.issued_at_ms + NETWORK_MS;
    let mut session = match miner.start(challenge, view, block, start, rng) {
        Ok(s) => s,
        Err(e) => return (Err(e.to_string()), start, 0),
    };
    let mut cost = 0u64;
    let end = drive(miner, &mut session, start, |call| {
        let (outcome, latency, c) = world.subcall(
            call.netuid,
            &call.endpoint,
            &call.request,
            call.started_at_ms,
            world_rng,
        );
        cost += c;
        (outcome, latency)
    });
    let response = match miner.finish(session, view, block, end) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err("the miner declined".to_string()),
        Err(e) => Err(e.to_string()),
    };
    (response, end + NETWORK_MS, cost)
}

pub(crate) fn scenario_err(key: &str, expected: &str, found: &str) -> RunError {
    RunError::Scenario {
        key: key.into(),
        expected: expected.into(),
        found: found.into(),
    }
}

/// Validator group `gi`'s strategy: its `behaviour` with its `params`, and, when the group
/// names a `favourite` miner group, that group's coldkey as `favourite_coldkey`.
fn validator_strategy(
    gi: usize,
    g: &crate::scenario::ValidatorGroup,
    labels: &[String],
    coldkeys: &[String],
) -> Result<Box<dyn ValidatorStrategy>, RunError> {
    let mut params = g.params.clone();
    if let Some(f) = &g.favourite {
        let Some(i) = labels.iter().position(|l| l == f) else {
            return Err(scenario_err(
                &format!("validators[{gi}].favourite"),
                "a miner group label",
                &format!("{f:?}"),
            ));
        };
        params.insert(
            "favourite_coldkey".into(),
            toml::Value::String(coldkeys[i].clone()),
        );
    }
    orchestra_adversaries::build_validator(&g.behaviour, &params).map_err(|e| match e {
        ValidatorBuildError::Param(p) if p.key == "favourite_coldkey" => scenario_err(
            &format!("validators[{gi}].favourite"),
            if g.favourite.is_some() {
                "no favourite: this behaviour boosts no miner group"
            } else {
                "the miner group this behaviour boosts"
            },
            &g.favourite.clone().unwrap_or_else(|| "nothing".into()),
        ),
        ValidatorBuildError::Param(p) => scenario_err(
            &format!("validators[{gi}].params.{}", p.key),
            &p.expected,
            &p.found,
        ),
        other @ ValidatorBuildError::UnknownStrategy { .. } => scenario_err(
            &format!("validators[{gi}].behaviour"),
            &format!(
                "one of {}",
                orchestra_adversaries::VALIDATOR_NAMES.join(", ")
            ),
            &other.to_string(),
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn new_miner(
    inputs: &Inputs,
    chain: &SimChain,
    planner: &Planner,
    spec: &ScenarioSpec,
    group: usize,
    name: &str,
    coldkey: &(String, [u8; 32]),
    seed: u64,
    state: &mut GroupState,
    block: u64,
) -> Result<MinerActor, RunError> {
    let g = &spec.miners[group];
    let strategy = inputs.build_strategy(group, g, state, derive_seed(seed, name, "strategy"))?;
    let (hotkey, account) = identity(name);
    let uid = chain.register(hotkey.clone(), account, 0, Some(coldkey.1), block);
    let miner = Miner::new(hotkey, planner.clone(), MinerConfig::default()).with_strategy(strategy);
    Ok(MinerActor {
        uid,
        group,
        miner,
        rng: stream(seed, name, "strategy"),
        world_rng: stream(seed, name, "world"),
        active: true,
    })
}

/// A Poisson draw (Knuth's method; λ per block is small).
fn poisson(lambda: f64, rng: &mut impl Rng) -> u32 {
    if !(lambda.is_finite() && lambda > 0.0) {
        return 0;
    }
    if lambda > 30.0 {
        // Normal approximation keeps the loop bounded for heavy spikes.
        let z: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        return (lambda + z * lambda.sqrt()).round().max(0.0) as u32;
    }
    let limit = (-lambda).exp();
    let mut p = 1.0;
    let mut k = 0u32;
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}
