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

use crate::metrics::{ChallengeStats, EpochInputs, Metrics, Row};
use crate::rng::{seed as derive_seed, stream};
use crate::scenario::{
    EventKind, LoadProfile, ScenarioSpec, StakeDistribution, ValidatorBehaviour,
};
use crate::simchain::{Payout, SimChain};
use crate::world::World;
use orchestra_adversaries::GroupState;
use orchestra_chain::{Chain, WeightsSubmission, resolve_ready};
use orchestra_ledger::{Ledger, VerifyParams};
use orchestra_mechanism::combine::emission_split_u16;
use orchestra_mechanism::params::CombinationMode;
use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_mechanism::weights::WeightLimits;
use orchestra_miner::{LedgerView, Miner, MinerConfig, Planner, local::drive};
use orchestra_mocks::{MockSet, SubnetEvent};
use orchestra_protocol::ledger::Entry;
use orchestra_protocol::messages::{Challenge, Response};
use orchestra_protocol::ss58;
use orchestra_validator::{
    Auditor, AuditorConfig, ChallengeConfig, ChallengeGenerator, ChallengeOutcome,
    ProposalVerifier, Scorer, ScorerConfig, WeightSetter, pick_miner,
};
use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Virtual time of block 0 (2026-01-01T00:00:00Z), so timestamps look real.
pub const GENESIS_MS: u64 = 1_767_225_600_000;
/// Validator ↔ miner network latency each way, ms.
pub const NETWORK_MS: u64 = 40;

/// Builds a custom miner strategy from its scenario `params` and a seed: how a miner plugs its own
/// [`orchestra_miner::Strategy`] into the simulator (see `examples/custom-strategy`).
pub type StrategyFactory = Arc<
    dyn Fn(&toml::Table, u64) -> Result<Box<dyn orchestra_miner::Strategy>, String> + Send + Sync,
>;

/// What every run of a scenario shares: the mock subnets, objective templates and any custom
/// strategies.
#[derive(Clone)]
pub struct Inputs {
    /// Mock subnets.
    pub mocks: Arc<MockSet>,
    /// Objective templates.
    pub templates: Vec<ObjectiveTemplate>,
    /// Custom strategies by name, usable in `[[miners]] strategy = "<name>"` next to the
    /// built-in ones.
    pub custom: BTreeMap<String, StrategyFactory>,
}

impl Inputs {
    /// Register a custom strategy under `name`.
    pub fn with_strategy(mut self, name: &str, factory: StrategyFactory) -> Self {
        self.custom.insert(name.to_string(), factory);
        self
    }

    /// Build the strategy of miner group `group` for the identity seeded with `seed`.
    fn build_strategy(
        &self,
        group: usize,
        g: &crate::scenario::MinerGroup,
        state: &mut GroupState,
        seed: u64,
    ) -> Result<Box<dyn orchestra_miner::Strategy>, RunError> {
        if let Some(factory) = self.custom.get(&g.strategy) {
            return factory(&g.params, seed).map_err(|why| {
                scenario_err(
                    &format!("miners[{group}].params"),
                    "valid strategy parameters",
                    &why,
                )
            });
        }
        orchestra_adversaries::build(&g.strategy, &g.params, state, seed).map_err(|e| match &e {
            orchestra_adversaries::BuildError::Param(p) => {
                let key = e.key().map_or_else(
                    || format!("miners[{group}].params"),
                    |k| format!("miners[{group}].params.{k}"),
                );
                scenario_err(&key, &p.expected, &p.found)
            }
            other => scenario_err(
                &format!("miners[{group}].strategy"),
                &format!(
                    "one of {} or a registered custom strategy",
                    orchestra_adversaries::NAMES.join(", ")
                ),
                &other.to_string(),
            ),
        })
    }
}

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

/// A scenario event scheduled at a block.
#[derive(Debug, Clone)]
struct Scheduled {
    block: u64,
    seq: usize,
    action: Action,
}

#[derive(Debug, Clone)]
enum Action {
    Subnet {
        netuid: u16,
        event: SubnetEvent,
        kind: &'static str,
    },
    Launch(u16),
    ValidatorsDown {
        validators: Vec<u32>,
        until: u64,
    },
    Churn {
        group: usize,
        leave: u32,
        join: u32,
    },
    AttackStop {
        group: usize,
    },
}

struct MinerActor {
    uid: u16,
    group: usize,
    miner: Miner,
    rng: ChaCha8Rng,
    world_rng: ChaCha8Rng,
    active: bool,
    stale_view: Option<Arc<LedgerView>>,
}

struct ValidatorActor {
    uid: u16,
    behaviour: ValidatorBehaviour,
    favourite: Option<usize>,
    generator: ChallengeGenerator,
    auditor: Auditor,
    scorer: Scorer,
    verifier: ProposalVerifier,
    setter: WeightSetter,
    rng_challenges: ChaCha8Rng,
    rng_audits: ChaCha8Rng,
    rng_world: ChaCha8Rng,
    every: u64,
    phase: u64,
    down_until: u64,
    view: Arc<LedgerView>,
    view_size: u64,
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
            let Ok(kind) = e.kind() else { continue };
            let netuid = match &kind {
                EventKind::SchemaChange { netuid, .. }
                | EventKind::Outage { netuid, .. }
                | EventKind::NewSubnet { netuid }
                | EventKind::Deprecation { netuid }
                | EventKind::PriceChange { netuid, .. }
                | EventKind::LatencyChange { netuid, .. } => *netuid,
                _ => continue,
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
            if let EventKind::NewSubnet { netuid } = kind
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
    schedule: Vec<Scheduled>,
    canonical: Arc<LedgerView>,
    canonical_size: u64,
    metrics: Metrics,
    log: blake3::Hasher,
    rng_load: ChaCha8Rng,
    rng_organic: ChaCha8Rng,
    events_out: Vec<(u64, i64, String, String)>,
    attack_stop_epoch: Option<i64>,
    total_blocks: u64,
    mechanisms: usize,
    last_payout: Option<Payout>,
    /// Truth changes not yet reflected in the canonical Ledger: (netuid, kind, block).
    pending_truth: Vec<(u16, &'static str, u64)>,
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
            .filter_map(|e| match e.kind() {
                Ok(EventKind::NewSubnet { netuid }) => Some(netuid),
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

        // Validators first (uids 0..V), then miners.
        let verify_params = VerifyParams::default();
        let mut validators = Vec::new();
        let mut vindex = 0u32;
        let group_labels: Vec<String> = spec.miners.iter().map(|g| g.label().to_string()).collect();
        for g in &spec.validators {
            for k in 0..g.count {
                let name = format!("validator/{vindex}");
                let (hotkey, account) = identity(&name);
                let stake_tao = match g.distribution {
                    StakeDistribution::Equal => g.stake_tao,
                    StakeDistribution::Zipf => g.stake_tao / f64::from(k + 1).powf(g.zipf_s),
                };
                let uid = chain.register(hotkey.clone(), account, (stake_tao * 1e9) as u64, 0);
                let generator = ChallengeGenerator::new(
                    hotkey.clone(),
                    inputs.templates.clone(),
                    ChallengeConfig {
                        sample_size: g.sample as usize,
                        ..ChallengeConfig::default()
                    },
                )
                .map_err(|e| RunError::Core(e.to_string()))?;
                let mut ledger = Ledger::new(verify_params);
                let records = genesis_records(&entries, &hotkey)?;
                ledger
                    .append_all(&records)
                    .map_err(|e| RunError::Core(format!("seeding the Ledger: {e}")))?;
                let verifier = ProposalVerifier::new(hotkey.clone(), ledger);
                let view = Arc::new(verifier.view());
                let view_size = verifier.ledger().head().tree_size;
                let mut auditor = Auditor::new(AuditorConfig::default());
                for (&netuid, key) in world.hotkeys() {
                    auditor.set_subnet_hotkeys(netuid, BTreeSet::from([key.clone()]));
                }
                let favourite = g
                    .favourite
                    .as_ref()
                    .and_then(|f| group_labels.iter().position(|l| l == f));
                validators.push(ValidatorActor {
                    uid,
                    behaviour: g.behaviour,
                    favourite,
                    generator,
                    auditor,
                    scorer: Scorer::new(params.clone(), ScorerConfig::default(), &inputs.templates),
                    verifier,
                    setter: WeightSetter::new(
                        WeightLimits {
                            self_uid: Some(uid),
                            ..WeightLimits::default()
                        },
                        cfg.tempo,
                    ),
                    rng_challenges: stream(seed, &name, "challenges"),
                    rng_audits: stream(seed, &name, "audits"),
                    rng_world: stream(seed, &name, "world"),
                    every: g.challenge_every_blocks,
                    phase: derive_seed(seed, &name, "phase") % g.challenge_every_blocks,
                    down_until: 0,
                    view,
                    view_size,
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
            .map(|v| v.view.clone())
            .ok_or_else(|| RunError::Core("no validators".into()))?;
        let canonical_size = validators.first().map_or(0, |v| v.view_size);
        let total_blocks = ((spec.scenario.days * 86_400_000.0) / cfg.block_ms as f64)
            .round()
            .max(1.0) as u64;
        let schedule = schedule(spec, &group_labels, cfg.block_ms)?;
        Ok(Engine {
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
            schedule,
            canonical,
            canonical_size,
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
        })
    }

    fn now_ms(&self, block: u64) -> u64 {
        GENESIS_MS + block * self.spec.chain.block_ms
    }

    fn epoch_of(&self, block: u64) -> i64 {
        (block / self.spec.chain.tempo) as i64
    }

    fn run(mut self, mut sink: Option<&mut dyn FnMut(Vec<Row>)>) -> Result<RunOutput, RunError> {
        let tempo = self.spec.chain.tempo;
        let mut next_event = 0;
        for block in 1..=self.total_blocks {
            self.chain.set_block(block);
            self.world.next_block();
            while next_event < self.schedule.len() && self.schedule[next_event].block <= block {
                let action = self.schedule[next_event].action.clone();
                self.apply(block, action);
                next_event += 1;
            }
            self.organic(block);
            for v in 0..self.validators.len() {
                let due = {
                    let va = &self.validators[v];
                    va.down_until <= block && (block + va.phase).is_multiple_of(va.every)
                };
                if due {
                    self.round(v, block);
                }
                self.verify_proposals(v, block);
            }
            if block.is_multiple_of(10) {
                self.check_truth(block);
            }
            // Ledger views (routing for miners, schemas for auditors) are rebuilt every 50
            // blocks (10 minutes) rather than on every accepted change: rebuilding compiles
            // schemas, and a node would poll its replica on a similar period.
            if block.is_multiple_of(50) {
                self.refresh_canonical();
            }
            if block.is_multiple_of(tempo) {
                self.end_epoch(block)?;
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
            Action::Subnet {
                netuid,
                event,
                kind,
            } => {
                let detail = format!("subnet {netuid}: {event:?}");
                match self.world.apply(netuid, &event) {
                    Ok(()) => {
                        if matches!(
                            kind,
                            "schema_change" | "deprecation" | "price_change" | "latency_change"
                        ) {
                            self.pending_truth.push((netuid, kind, block));
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
                    self.pending_truth.push((netuid, "new_subnet", block));
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
                    m.stale_view = None;
                }
                self.attack_stop_epoch = Some(epoch);
                self.metrics.set_group_strategy(group, "honest");
                self.events_out.push((
                    block,
                    epoch,
                    "attack_stop".into(),
                    format!("{} turns honest", self.group_labels[group]),
                ));
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
            for v in &mut self.validators {
                v.scorer.remove_miner(*uid);
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
                self.seed,
                &mut self.group_states[group],
                block,
            ) {
                Ok(mut actor) => {
                    if let Some(uid) = reuse {
                        let (hotkey, account) = identity(&name);
                        self.chain.replace(uid, hotkey, account, block);
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

    fn active_miners(&self) -> Vec<u16> {
        self.miners
            .iter()
            .filter(|m| m.active)
            .map(|m| m.uid)
            .collect()
    }

    /// Run one challenge through miner `uid` and validator `v`'s auditor; returns the response
    /// and when it arrived.
    fn execute(
        &mut self,
        uid: u16,
        challenge: &Challenge,
        block: u64,
    ) -> (Option<Response>, u64, u64) {
        let Some(&mi) = self.miner_index.get(&uid) else {
            return (None, challenge.issued_at_ms, 0);
        };
        let start = challenge.issued_at_ms + NETWORK_MS;
        let m = &mut self.miners[mi];
        let view = m
            .stale_view
            .clone()
            .unwrap_or_else(|| self.canonical.clone());
        let world = &mut self.world;
        let Ok(mut session) = m.miner.start(challenge, &view, block, start, &mut m.rng) else {
            return (None, start, 0);
        };
        let mut cost = 0u64;
        let world_rng = &mut m.world_rng;
        let end = drive(&mut m.miner, &mut session, start, |call| {
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
        let response = m.miner.finish(session, &view, block, end).ok().flatten();
        (response, end + NETWORK_MS, cost)
    }

    fn round(&mut self, v: usize, block: u64) {
        let now = self.now_ms(block);
        let miners = self.active_miners();
        let round = {
            let va = &mut self.validators[v];
            va.generator
                .round(&miners, block, now, &mut va.rng_challenges)
        };
        for (uid, challenge) in round {
            self.challenge(v, uid, &challenge, block, false);
        }
    }

    /// Run one challenge (synthetic, or a user's when `organic`) and score it. Returns the
    /// organic answer's quality (score ÷ its maximum) when `organic` and the miner answered.
    fn challenge(
        &mut self,
        v: usize,
        uid: u16,
        challenge: &Challenge,
        block: u64,
        organic: bool,
    ) -> Option<f64> {
        let (response, received_at, cost) = self.execute(uid, challenge, block);
        let group = self.miner_index.get(&uid).map(|&i| self.miners[i].group);
        if let Some(g) = group {
            self.metrics.add_cost(uid, g, cost);
        }
        // Other miners see the response (what copycats and confirmation farmers feed on).
        if let Some(r) = &response {
            for m in self.miners.iter_mut().filter(|m| m.uid != uid && m.active) {
                m.miner.observe_peer(challenge, r);
            }
        }
        let world = &mut self.world;
        let va = &mut self.validators[v];
        let params = va.scorer.params().clone();
        let report = response.as_ref().map(|r| {
            let mut audit = va.auditor.begin(
                challenge,
                r,
                received_at,
                &va.view,
                &params,
                &mut va.rng_audits,
            );
            while let Some(call) = audit.poll_call(received_at) {
                let (outcome, _, _) = world.subcall(
                    call.netuid,
                    &call.endpoint,
                    &call.request,
                    received_at,
                    &mut va.rng_world,
                );
                audit.on_call_result(call.audit_id, outcome.map(|reply| reply.response));
            }
            audit.finish()
        });
        let latency = received_at.saturating_sub(challenge.issued_at_ms);
        let strike = report.as_ref().is_some_and(|r| r.audit_failed());
        let verified = report.as_ref().is_some_and(|r| r.hash_verified());
        if organic {
            return match (&response, &report) {
                (Some(r), Some(rep)) => {
                    let terms = va
                        .scorer
                        .terms(challenge, r, received_at, rep.hash_verified());
                    Some(terms.score(&params) / params.orchestration_share.max(f64::EPSILON))
                }
                _ => None,
            };
        }
        let score = va
            .scorer
            .score_challenge(uid, challenge, response.as_ref(), report.as_ref());
        let success = score.outcome == ChallengeOutcome::Scored && verified && score.score > 0.0;
        self.metrics.challenge(ChallengeStats {
            success,
            latency_ms: latency,
            strike,
        });
        self.log.update(&challenge.challenge_id.0);
        self.log.update(&uid.to_le_bytes());
        self.log.update(&score.score.to_bits().to_le_bytes());
        self.log.update(&received_at.to_le_bytes());
        if let Some(r) = &response {
            let proposer = r.miner.clone();
            for p in &r.ledger_proposals {
                va.verifier.submit(uid, &proposer, p.clone(), block);
            }
        }
        None
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
            let miners = self.active_miners();
            if online.is_empty() || miners.is_empty() {
                return;
            }
            let v = online[self.rng_organic.random_range(0..online.len())];
            let now = self.now_ms(block);
            let (objective, schema) = {
                let (t, objective) = self.validators[v]
                    .generator
                    .objective(&mut self.rng_organic);
                (objective, t.target_schema.clone())
            };
            // The validator's retry policy: a miner that gives no response is passed over for
            // another it has not tried, up to `load.attempts` miners.
            let candidates = self.organic_candidates(&miners);
            let mut tried = BTreeSet::new();
            let mut quality = 0.0;
            while tried.len() < self.spec.load.attempts as usize {
                let Some(uid) = pick_miner(&candidates, &tried, &mut self.rng_organic) else {
                    break;
                };
                tried.insert(uid);
                let challenge = self.validators[v].generator.organic(
                    objective.clone(),
                    schema.clone(),
                    block,
                    now,
                    &mut self.rng_organic,
                );
                if let Some(q) = self.challenge(v, uid, &challenge, block, true) {
                    quality = q;
                    break;
                }
            }
            self.metrics.organic(quality);
        }
    }

    /// Users' requests go to miners in proportion to last epoch's incentive (uniform before):
    /// each active miner weighted by its server emission.
    fn organic_candidates(&self, miners: &[u16]) -> Vec<(u16, u64)> {
        let incentive = self.last_payout.as_ref().map(|p| &p.server);
        miners
            .iter()
            .map(|&u| {
                let w = match incentive {
                    Some(i) => i.get(usize::from(u)).copied().unwrap_or(0),
                    None => 1,
                };
                (u, w)
            })
            .collect()
    }

    fn verify_proposals(&mut self, v: usize, block: u64) {
        let now = self.now_ms(block);
        let mut accepted = Vec::new();
        {
            let va = &mut self.validators[v];
            if va.verifier.pending() == 0 {
                return;
            }
            while let Some(probe) = va.verifier.poll_probe() {
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
                va.verifier.on_probe_result(probe.probe_id, result);
            }
            while let Some(verdict) = va.verifier.poll_verdict(block) {
                if let Some(record) = verdict.record {
                    self.metrics.proposal(&record);
                    va.scorer.record_proposal(record);
                    if let Some(change) = verdict.change {
                        accepted.push((change, record));
                    }
                }
            }
        }
        // Peers resync from the verifying validator's change log, and credit the proposer from
        // it as the verifier did: Ledger credit comes from the shared log, so every validator
        // scores it alike and Yuma's consensus does not clip it. (Slashes stay with the validator
        // that saw the proposal: rejected proposals never reach the log.)
        for (change, record) in accepted {
            for (w, peer) in self.validators.iter_mut().enumerate() {
                if w != v && peer.verifier.apply_remote(&change).is_ok() {
                    peer.scorer.record_proposal(record);
                }
            }
        }
    }

    fn refresh_canonical(&mut self) {
        for va in &mut self.validators {
            let size = va.verifier.ledger().head().tree_size;
            if size != va.view_size {
                va.view = Arc::new(va.verifier.view_reusing(&va.view));
                va.view_size = size;
            }
        }
        if let Some(first) = self.validators.first()
            && first.view_size != self.canonical_size
        {
            self.canonical = first.view.clone();
            self.canonical_size = first.view_size;
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
        let state = first.verifier.state();
        let mut done = Vec::new();
        for (i, (netuid, kind, at)) in self.pending_truth.iter().enumerate() {
            let truth = self.world.truth(*netuid);
            let known = state.get(*netuid);
            if crate::metrics::reflects(kind, truth.as_ref(), known) {
                self.metrics.detected(block - at);
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            self.pending_truth.remove(i);
        }
    }

    fn end_epoch(&mut self, block: u64) -> Result<(), RunError> {
        let epoch = self.epoch_of(block) - 1;
        let miners = self.active_miners();
        let consensus: Vec<Vec<u16>> = (0..self.mechanisms)
            .map(|m| self.chain.last_consensus(m))
            .collect();
        let mut parts: Vec<crate::metrics::ValidatorScores> = Vec::new();
        for va in &mut self.validators {
            va.scorer.end_tempo(&miners);
            let stake_weight = self.chain.stake(va.uid);
            parts.push((stake_weight, va.scorer.scores()));
            if va.down_until > block {
                continue;
            }
            let weights = match va.setter.poll_weights(block, &va.scorer) {
                Ok(Some(w)) => w.weights,
                _ => continue,
            };
            let signer = self.chain.as_signer(va.uid);
            for mw in weights {
                let m = usize::from(mw.mechanism);
                let (uids, values) = match va.behaviour {
                    ValidatorBehaviour::Honest => (mw.uids, mw.values),
                    ValidatorBehaviour::WeightCopier => {
                        match consensus.get(m).filter(|c| c.iter().any(|&x| x > 0)) {
                            Some(c) => c
                                .iter()
                                .enumerate()
                                .filter(|(_, x)| **x > 0)
                                .map(|(u, x)| (u as u16, *x))
                                .unzip(),
                            None => (mw.uids, mw.values),
                        }
                    }
                    ValidatorBehaviour::ColludingBloc => {
                        let fav: BTreeSet<u16> = self
                            .miners
                            .iter()
                            .filter(|x| Some(x.group) == va.favourite)
                            .map(|x| x.uid)
                            .collect();
                        let uids: Vec<u16> = fav.iter().copied().collect();
                        let values = vec![u16::MAX; uids.len()];
                        if uids.is_empty() {
                            (mw.uids, mw.values)
                        } else {
                            (uids, values)
                        }
                    }
                };
                self.log.update(&va.uid.to_le_bytes());
                for (u, x) in uids.iter().zip(&values) {
                    self.log.update(&u.to_le_bytes());
                    self.log.update(&x.to_le_bytes());
                }
                let submission = WeightsSubmission {
                    netuid: crate::simchain::NETUID,
                    mecid: mw.mechanism,
                    uids,
                    values,
                    version_key: 0,
                };
                if let Some(Err(e)) = resolve_ready(signer.set_weights(&submission)) {
                    return Err(RunError::Core(format!("set_weights: {e}")));
                }
            }
        }
        let payout = self
            .chain
            .epoch(block)
            .map_err(|e| RunError::Core(format!("yuma: {e}")))?;
        for x in payout.server.iter().chain(&payout.validator) {
            self.log.update(&x.to_le_bytes());
        }
        let ledger_state = self.validators.first().map(|v| v.verifier.state().clone());
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
            scores: &parts,
            truth: &truth,
            ledger: ledger_state.as_ref(),
            live: self.world.live().len(),
            alpha_price_rao: self.spec.chain.alpha_price_rao,
        });
        self.last_payout = Some(payout);
        // Miners that follow the Ledger see it as of now; stale routers keep their first view.
        for m in &mut self.miners {
            if m.stale_view.is_none() && m.miner.strategy_name() == "stale_router" {
                m.stale_view = Some(self.canonical.clone());
            }
        }
        Ok(())
    }
}

fn scenario_err(key: &str, expected: &str, found: &str) -> RunError {
    RunError::Scenario {
        key: key.into(),
        expected: expected.into(),
        found: found.into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn new_miner(
    inputs: &Inputs,
    chain: &SimChain,
    planner: &Planner,
    spec: &ScenarioSpec,
    group: usize,
    name: &str,
    seed: u64,
    state: &mut GroupState,
    block: u64,
) -> Result<MinerActor, RunError> {
    let g = &spec.miners[group];
    let strategy = inputs.build_strategy(group, g, state, derive_seed(seed, name, "strategy"))?;
    let (hotkey, account) = identity(name);
    let uid = chain.register(hotkey.clone(), account, 0, block);
    let miner = Miner::new(hotkey, planner.clone(), MinerConfig::default()).with_strategy(strategy);
    Ok(MinerActor {
        uid,
        group,
        miner,
        rng: stream(seed, name, "strategy"),
        world_rng: stream(seed, name, "world"),
        active: true,
        stale_view: None,
    })
}

/// Ledger records that seed a validator's replica with the listed subnets, as of genesis.
fn genesis_records(
    entries: &BTreeMap<u16, Entry>,
    validator: &str,
) -> Result<Vec<orchestra_ledger::ChangeRecord>, RunError> {
    entries
        .values()
        .enumerate()
        .map(|(seq, entry)| {
            let c = orchestra_ledger::mocks::seed_change(entry, validator, 0)
                .map_err(|e| RunError::Core(e.to_string()))?;
            Ok(orchestra_ledger::ChangeRecord {
                seq: seq as u64,
                block: c.block,
                proposal_id: c.proposal_id,
                kind: c.kind,
                netuid: c.netuid,
                path: c.path,
                old: c.old,
                new: c.new,
                proposer: c.proposer,
                credit: c.credit,
                verifiers: c.verifiers,
                evidence_hash: c.evidence_hash,
            })
        })
        .collect()
}

fn schedule(
    spec: &ScenarioSpec,
    labels: &[String],
    block_ms: u64,
) -> Result<Vec<Scheduled>, RunError> {
    let block_of = |day: f64| ((day * 86_400_000.0) / block_ms as f64).round().max(1.0) as u64;
    let hours_blocks = |h: f64| ((h * 3_600_000.0) / block_ms as f64).round().max(1.0) as u64;
    let mut out = Vec::new();
    for (i, e) in spec.events.iter().enumerate() {
        let block = block_of(e.at_day);
        let kind = e
            .kind()
            .map_err(|(k, x, f)| scenario_err(&format!("events[{i}].{k}"), &x, &f))?;
        let group_of = |g: &str| {
            labels.iter().position(|l| l == g).ok_or_else(|| {
                scenario_err(&format!("events[{i}].group"), "a miner group label", g)
            })
        };
        let mut push = |block: u64, action: Action| {
            let seq = out.len();
            out.push(Scheduled { block, seq, action });
        };
        match kind {
            EventKind::SchemaChange {
                netuid,
                endpoint,
                version,
            } => push(
                block,
                Action::Subnet {
                    netuid,
                    event: SubnetEvent::SchemaChange { endpoint, version },
                    kind: "schema_change",
                },
            ),
            EventKind::Outage { netuid, hours } => {
                push(
                    block,
                    Action::Subnet {
                        netuid,
                        event: SubnetEvent::OutageStart,
                        kind: "outage_start",
                    },
                );
                push(
                    block + hours_blocks(hours),
                    Action::Subnet {
                        netuid,
                        event: SubnetEvent::OutageEnd,
                        kind: "outage_end",
                    },
                );
            }
            EventKind::NewSubnet { netuid } => push(block, Action::Launch(netuid)),
            EventKind::Deprecation { netuid } => push(
                block,
                Action::Subnet {
                    netuid,
                    event: SubnetEvent::Deprecate,
                    kind: "deprecation",
                },
            ),
            EventKind::PriceChange { netuid, multiplier } => push(
                block,
                Action::Subnet {
                    netuid,
                    event: SubnetEvent::PriceMultiplier { multiplier },
                    kind: "price_change",
                },
            ),
            EventKind::LatencyChange { netuid, multiplier } => push(
                block,
                Action::Subnet {
                    netuid,
                    event: SubnetEvent::LatencyMultiplier { multiplier },
                    kind: "latency_change",
                },
            ),
            EventKind::ValidatorDown { validators, hours } => push(
                block,
                Action::ValidatorsDown {
                    validators,
                    until: block + hours_blocks(hours),
                },
            ),
            EventKind::MinerChurn { group, leave, join } => push(
                block,
                Action::Churn {
                    group: group_of(&group)?,
                    leave,
                    join,
                },
            ),
            EventKind::AttackStop { group } => push(
                block,
                Action::AttackStop {
                    group: group_of(&group)?,
                },
            ),
        }
    }
    out.sort_by_key(|s| (s.block, s.seq));
    Ok(out)
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
