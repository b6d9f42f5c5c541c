//! The simulated subtensor: a metagraph, weights and bonds per mechanism, Yuma every epoch
//! (`orchestra-yuma`, bit-exact with the chain) and emission paid to owner, miners and
//! validators. Validators reach it through [`orchestra_chain::Chain`], the same trait the live
//! subtensor client implements.
//!
//! It follows spec 459 (RaoFoundation/subtensor) where the runtimes differ: the epoch runs on
//! [`EpochSchedule`] (`[chain] epoch_rule`, dynamic tempo, owner triggers); a commit-reveal
//! commit stamps the validator's `LastUpdate` (the reveal does not), and an epoch masks a
//! validator's weights to miners registered after its earliest live commit
//! (`epoch_mechanism.rs`, the "snipe" mask).
//!
//! Commit-reveal v4 is real timelock encryption: the chain keeps a simulated drand beacon (a
//! BLS key whose rounds it signs, one every 3 s of simulated time), validators encrypt their
//! weights to the round the SDK's predictor picks (`orchestra_chain::crv4`), and each block, before
//! its epoch, the chain opens the commits of the reveal epoch whose round has been published
//! (`reveal_commits.rs`), as mainnet does with quicknet.

use crate::scenario::{ChainConfig, YumaVariant};
use orchestra_chain::{
    AccountId, AxonServe, Chain, ChainError, ChainResult, Hyperparams, MechId, Metagraph, NetUid,
    Neuron, RuntimeShape, StakeItem, TempoSchedule, TimelockedCommit, TxOutcome, WeightsCommit,
    WeightsReveal, WeightsSubmission, crv4,
};
use orchestra_validator::WeightsAction;
use orchestra_yuma::{
    EpochInput, EpochOutput, EpochRule, EpochSchedule, NeuronInput, Origin, ScheduleError,
    SplitRule, YumaError, defaults, run_mechanisms, split_block_emission,
};
use std::future::{Ready, ready};
use std::sync::Mutex;

/// The netuid Orchestra runs on in the simulator.
pub const NETUID: u16 = 1;

/// One registered neuron.
#[derive(Debug, Clone)]
pub struct SimNeuron {
    /// Hotkey ss58.
    pub hotkey: String,
    /// Its 32-byte public key (derived from the name in the simulator).
    pub account: AccountId,
    /// The coldkey owning it, if modelled (one per miner group).
    pub coldkey: Option<AccountId>,
    /// Stake, rao.
    pub stake: u64,
    /// Block it registered at.
    pub registered_at: u64,
    /// Last weight-setting block, per mechanism.
    pub last_update: Vec<u64>,
    /// Weights as stored (max-upscaled u16), per mechanism.
    pub weights: Vec<Vec<(u16, u16)>>,
    /// Bonds, per mechanism.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Stored validator permit.
    pub permit: bool,
}

/// What one epoch paid.
#[derive(Debug, Clone, Default)]
pub struct Payout {
    /// Block of the epoch.
    pub block: u64,
    /// Alpha emitted over the tempo (owner + miners + validators), rao.
    pub emitted: u64,
    /// Paid to the owner, rao.
    pub owner: u64,
    /// The owner uid's incentive, burned by the coinbase (spec 459 `dividend_distribution.rs`:
    /// the owner's hotkeys earn no incentive), rao.
    pub burned: u64,
    /// Per uid, incentive (server) emission summed over mechanisms, rao.
    pub server: Vec<u64>,
    /// Per uid, dividend (validator) emission summed over mechanisms, rao.
    pub validator: Vec<u64>,
    /// Per mechanism, per uid server emission.
    pub server_by_mechanism: Vec<Vec<u64>>,
    /// Each mechanism's epoch output.
    pub outputs: Vec<EpochOutput>,
}

impl Payout {
    /// Emitted minus paid: what truncation lost (never negative in a correct epoch).
    pub fn unpaid(&self) -> i128 {
        let paid: u128 = u128::from(self.owner)
            + self.server.iter().map(|&x| u128::from(x)).sum::<u128>()
            + self.validator.iter().map(|&x| u128::from(x)).sum::<u128>();
        self.emitted as i128 - paid as i128
    }
}

/// Chain state behind a lock, so validators can write through `&self` like a real client.
#[derive(Debug)]
pub struct SimChain {
    config: ChainConfig,
    /// The simulated drand beacon commit-reveal v4 encrypts to.
    beacon: crv4::SimBeacon,
    mechanisms: usize,
    split: Option<Vec<u16>>,
    state: Mutex<ChainState>,
}

/// A commit-reveal v2 commit: who, on which mechanism, the hash, and the epoch and block it
/// was made in.
#[derive(Debug, Clone)]
struct Commit {
    uid: u16,
    mecid: u8,
    hash: [u8; 32],
    epoch: u64,
    block: u64,
}

/// Epochs between a commit and its reveal (`RevealPeriodEpochs`, the chain's default).
pub const REVEAL_PERIOD_EPOCHS: u64 = 1;

/// A commit-reveal v4 commit: who, the epoch bucket and block it was made in, the drand round
/// it opens at, and the ciphertext.
#[derive(Debug, Clone)]
struct TimelockedEntry {
    uid: u16,
    mecid: u8,
    epoch: u64,
    block: u64,
    round: u64,
    commit: Vec<u8>,
}

#[derive(Debug)]
struct ChainState {
    block: u64,
    /// When the epoch runs, and the epoch index.
    schedule: EpochSchedule,
    neurons: Vec<SimNeuron>,
    last_step: u64,
    /// Commit-reveal v2 commits awaiting their reveal.
    commits: Vec<Commit>,
    /// Commit-reveal v4 commits awaiting the chain's reveal.
    timelocked: Vec<TimelockedEntry>,
    last_outputs: Vec<EpochOutput>,
}

impl SimChain {
    /// A chain with `mechanisms` mechanisms (1, or 2 for the `mechanisms` combination mode) and
    /// the mechanism emission split (u16 proportions).
    pub fn new(config: ChainConfig, mechanisms: usize, split: Option<Vec<u16>>) -> Self {
        // Scenario validation keeps the tempo within u16.
        let tempo = u16::try_from(config.tempo).unwrap_or(u16::MAX);
        let mut schedule = EpochSchedule::new(NETUID, tempo, config.epoch_rule, 0);
        schedule.admin_freeze_window = config.admin_freeze_window;
        SimChain {
            config,
            mechanisms: mechanisms.max(1),
            split,
            state: Mutex::new(ChainState {
                block: 0,
                schedule,
                neurons: Vec::new(),
                last_step: 0,
                commits: Vec::new(),
                timelocked: Vec::new(),
                last_outputs: Vec::new(),
            }),
            beacon: crv4::SimBeacon::from_seed(
                *blake3::hash(b"orchestra sim drand beacon").as_bytes(),
            ),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ChainState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a neuron owned by `coldkey`; returns its uid.
    pub fn register(
        &self,
        hotkey: String,
        account: AccountId,
        stake: u64,
        coldkey: Option<AccountId>,
        block: u64,
    ) -> u16 {
        let mut s = self.lock();
        let uid = s.neurons.len() as u16;
        s.neurons.push(SimNeuron {
            hotkey,
            account,
            coldkey,
            stake,
            registered_at: block,
            last_update: vec![block; self.mechanisms],
            weights: vec![Vec::new(); self.mechanisms],
            bonds: vec![Vec::new(); self.mechanisms],
            permit: stake > 0,
        });
        uid
    }

    /// Replace the neuron at `uid` by a fresh registration (deregistration and re-use of the uid).
    pub fn replace(
        &self,
        uid: u16,
        hotkey: String,
        account: AccountId,
        coldkey: Option<AccountId>,
        block: u64,
    ) {
        let mut s = self.lock();
        let mechanisms = self.mechanisms;
        if let Some(n) = s.neurons.get_mut(usize::from(uid)) {
            *n = SimNeuron {
                hotkey,
                account,
                coldkey,
                stake: 0,
                registered_at: block,
                last_update: vec![block; mechanisms],
                weights: vec![Vec::new(); mechanisms],
                bonds: vec![Vec::new(); mechanisms],
                permit: false,
            };
        }
        // Bonds and weights pointing at the old neuron are masked by registration block.
    }

    /// Miner `uid` commits metadata carrying `ResetBondsFlag` (`pallet_commitments`'s
    /// `set_commitment` → `do_reset_bonds`): with `BondsResetOn`, its column is stripped from
    /// every bond row of every mechanism. Returns whether anything was reset.
    pub fn reset_bonds(&self, uid: u16) -> bool {
        if !self.config.bonds_reset {
            return false;
        }
        let mut s = self.lock();
        for n in &mut s.neurons {
            for row in &mut n.bonds {
                row.retain(|&(j, _)| j != uid);
            }
        }
        true
    }

    /// Advance to `block` and run the scheduler's bookkeeping for it: whether the subnet's
    /// epoch runs in this block ([`SimChain::epoch`] is then due). Call once per block, in order.
    pub fn set_block(&self, block: u64) -> bool {
        let mut s = self.lock();
        s.block = block;
        // `block_step` reveals matured timelocked commits before the epoch runs.
        self.reveal_timelocked(&mut s, block);
        s.schedule.on_block(block)
    }

    /// Unix seconds at `block` on the simulated clock, with drand's genesis at block 0.
    fn now_s(&self, block: u64) -> f64 {
        crv4::QUICKNET_GENESIS_S as f64 + (block * self.config.block_ms) as f64 / 1000.0
    }

    /// The newest drand round published by `block`.
    fn published_round(&self, block: u64) -> u64 {
        block * self.config.block_ms / 1000 / crv4::QUICKNET_PERIOD_S
    }

    /// `reveal_crv3_commits_for_subnet`: the bucket of epoch `lookahead − RevealPeriodEpochs` is
    /// opened with its rounds' signatures once published (retried every block of the reveal
    /// epoch), older buckets are dropped, and what opens to the committer's weights is set
    /// (without touching `LastUpdate`).
    fn reveal_timelocked(&self, s: &mut ChainState, block: u64) {
        let lookahead = s.schedule.epoch_index_with_lookahead(block);
        let Some(reveal_epoch) = lookahead.checked_sub(REVEAL_PERIOD_EPOCHS) else {
            return;
        };
        s.timelocked.retain(|k| k.epoch >= reveal_epoch);
        let published = self.published_round(block);
        let (due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut s.timelocked)
            .into_iter()
            .partition(|k| k.epoch == reveal_epoch && k.round <= published);
        s.timelocked = wait;
        for k in due {
            let opened = crv4::decrypt(&k.commit, &self.beacon.signature(k.round))
                .ok()
                .and_then(|bytes| crv4::decode_payload(&bytes));
            let (Some(p), Some(n)) = (opened, s.neurons.get_mut(usize::from(k.uid))) else {
                continue;
            };
            let m = usize::from(k.mecid);
            // The chain drops a payload naming another hotkey (the legacy form names none).
            if (!p.hotkey.is_empty() && p.hotkey != n.account) || m >= n.weights.len() {
                continue;
            }
            n.weights[m] = p.uids.into_iter().zip(p.values).collect();
        }
    }

    /// The epoch index (`SubnetEpochIndex`) as of the current block: the epoch of this block,
    /// if it runs, counted (the chain's `current_epoch_with_lookahead`, which commit-reveal keys
    /// on).
    pub fn epoch_index(&self) -> u64 {
        self.lock().schedule.epoch_index
    }

    /// The tempo now in force.
    pub fn tempo(&self) -> u16 {
        self.lock().schedule.tempo
    }

    /// The owner's `sudo_set_tempo` in the current block.
    pub fn set_tempo(&self, tempo: u16) -> Result<(), ScheduleError> {
        let mut s = self.lock();
        let block = s.block;
        s.schedule.set_tempo(tempo, block, Origin::Owner)
    }

    /// The owner's `trigger_epoch` in the current block: the block the epoch will run in.
    pub fn trigger_epoch(&self) -> Result<u64, ScheduleError> {
        let mut s = self.lock();
        let block = s.block;
        s.schedule.trigger_epoch(block)
    }

    /// Stake of `uid`, rao (0 for an unknown uid).
    pub fn stake(&self, uid: u16) -> u64 {
        self.lock()
            .neurons
            .get(usize::from(uid))
            .map_or(0, |n| n.stake)
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.lock().neurons.len()
    }

    /// Whether no neuron is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Last epoch's consensus per mechanism, as u16 (what a weight copier copies).
    pub fn last_consensus(&self, mechanism: usize) -> Vec<u16> {
        self.lock()
            .last_outputs
            .get(mechanism)
            .map(|o| o.consensus.clone())
            .unwrap_or_default()
    }

    /// The weights `uid` has on chain for `mechanism` (what the next epoch will use).
    pub fn weights_of(&self, uid: u16, mechanism: usize) -> Vec<(u16, u16)> {
        self.lock()
            .neurons
            .get(usize::from(uid))
            .and_then(|n| n.weights.get(mechanism).cloned())
            .unwrap_or_default()
    }

    /// Submit validator `uid`'s weight extrinsic as its node would: a plain set, a
    /// commit-reveal v2 commit (hashed with its hotkey under the mechanism's netuid index), or
    /// a reveal.
    pub fn submit_weights(&self, uid: u16, action: &WeightsAction) -> ChainResult<TxOutcome> {
        let signer = self.as_signer(uid);
        let submission = WeightsSubmission {
            netuid: NETUID,
            mecid: action.weights().mechanism,
            uids: action.weights().uids.clone(),
            values: action.weights().values.clone(),
            version_key: 0,
        };
        let ready = match action {
            WeightsAction::Set { .. } => signer.set_weights(&submission),
            WeightsAction::Commit { salt, .. } => {
                let reveal = WeightsReveal {
                    weights: submission,
                    salt: salt.clone(),
                };
                let hotkey = signer.signer().unwrap_or_default();
                signer.commit_weights(&orchestra_chain::commit_for(&hotkey, &reveal, true))
            }
            WeightsAction::Reveal { salt, .. } => signer.reveal_weights(&WeightsReveal {
                weights: submission,
                salt: salt.clone(),
            }),
            WeightsAction::CommitTimelocked { .. } => {
                // What the node's driver does: read the schedule, predict the reveal, encrypt to
                // its round (from a seed derived from the commit, so runs replay).
                let schedule = signer.tempo_schedule(NETUID).into_inner()?;
                let block = schedule.block;
                let block_time_s = self.config.block_ms as f64 / 1000.0;
                let round = crv4::reveal_round(
                    schedule.crv4_state(),
                    block,
                    REVEAL_PERIOD_EPOCHS,
                    block_time_s,
                    self.now_s(block),
                )
                .unwrap_or(u64::MAX);
                let payload = crv4::WeightsTlockPayload {
                    hotkey: signer.signer().unwrap_or_default().to_vec(),
                    uids: submission.uids.clone(),
                    values: submission.values.clone(),
                    version_key: submission.version_key,
                };
                let mut seed = blake3::Hasher::new();
                seed.update(b"orchestra sim crv4 commit");
                seed.update(&uid.to_le_bytes());
                seed.update(&[submission.mecid]);
                seed.update(&block.to_le_bytes());
                let commit = crv4::encrypt(
                    self.beacon.beacon(),
                    &payload.to_bytes(),
                    round,
                    *seed.finalize().as_bytes(),
                )
                .map_err(|e| ChainError::Unsupported(e.to_string()))?;
                signer.commit_timelocked_weights(&TimelockedCommit {
                    netuid: NETUID,
                    mecid: submission.mecid,
                    commit,
                    reveal_round: round,
                    commit_reveal_version: crv4::COMMIT_REVEAL_VERSION,
                })
            }
        };
        ready.into_inner()
    }

    /// A validator's view of the chain for signing as `uid`.
    pub fn as_signer(&self, uid: u16) -> SimSigner<'_> {
        SimSigner { chain: self, uid }
    }

    /// Run the epoch at `block`: Yuma on every mechanism, then pay the emission accumulated
    /// since the previous epoch (`tempo` blocks' worth, unless a trigger or a tempo change
    /// moved it).
    pub fn epoch(&self, block: u64) -> Result<Payout, YumaError> {
        let mut s = self.lock();
        let emitted = self
            .config
            .emission_per_block_rao
            .saturating_mul(block.saturating_sub(s.last_step));
        let tempo = s.schedule.tempo;
        let epoch_index = s.schedule.epoch_index;
        let commit_reveal = self.config.commit_reveal;
        // The earliest live commit per (uid, mechanism), v2 or v4: expired ones no longer mask.
        let live = |k_uid: u16, k_mecid: u8, k_epoch: u64, uid: usize, m: usize| {
            usize::from(k_uid) == uid
                && usize::from(k_mecid) == m
                && k_epoch + REVEAL_PERIOD_EPOCHS >= epoch_index
        };
        let earliest_commit = |uid: usize, m: usize| {
            let v2 = s
                .commits
                .iter()
                .filter(|k| live(k.uid, k.mecid, k.epoch, uid, m))
                .map(|k| k.block);
            let v4 = s
                .timelocked
                .iter()
                .filter(|k| live(k.uid, k.mecid, k.epoch, uid, m))
                .map(|k| k.block);
            v2.chain(v4).min()
        };
        let owner_cut = (self.config.owner_cut * 65_535.0).round() as u16;
        let split = split_block_emission(emitted, owner_cut);
        let for_epoch = split.miners.saturating_add(split.validators);
        let inputs: Vec<EpochInput> = (0..self.mechanisms)
            .map(|m| EpochInput {
                block,
                tempo: u64::from(tempo),
                activity_cutoff: self.config.activity_cutoff_at(tempo),
                emission: for_epoch,
                kappa: self.config.kappa,
                bonds_penalty: self.config.bonds_penalty,
                bonds_moving_average: self.config.bonds_moving_average,
                yuma3: self.config.yuma == YumaVariant::Yuma3,
                liquid_alpha: self.config.liquid_alpha,
                alpha_low: defaults::ALPHA_LOW,
                alpha_high: defaults::ALPHA_HIGH,
                alpha_sigmoid_steepness: defaults::ALPHA_SIGMOID_STEEPNESS,
                max_allowed_validators: self.config.max_allowed_validators,
                stake_threshold: defaults::STAKE_THRESHOLD,
                owner_uid: self.config.owner_uid,
                last_mechanism_step_block: s.last_step,
                neurons: s
                    .neurons
                    .iter()
                    .enumerate()
                    .map(|(i, n)| NeuronInput {
                        stake: n.stake,
                        validator_permit: n.permit,
                        registered_at: n.registered_at,
                        last_update: n.last_update[m],
                        weights: n.weights[m].clone(),
                        bonds: n.bonds[m].clone(),
                        commit_block: if commit_reveal {
                            earliest_commit(i, m)
                        } else {
                            None
                        },
                    })
                    .collect(),
            })
            .collect();
        let out = run_mechanisms(
            for_epoch,
            self.split.as_deref(),
            SplitRule::default(),
            &inputs,
        )?;
        for (m, o) in out.mechanisms.iter().enumerate() {
            for (n, (bonds, permit)) in s
                .neurons
                .iter_mut()
                .zip(o.bonds.iter().zip(&o.validator_permit))
            {
                n.bonds[m] = bonds.clone();
                n.permit = *permit;
            }
        }
        s.last_step = block;
        s.last_outputs = out.mechanisms.clone();
        let mut server_by_mechanism: Vec<Vec<u64>> = out
            .mechanisms
            .iter()
            .map(|o| o.server_emission.clone())
            .collect();
        let mut server = out.server_emission;
        let mut burned = 0;
        if let Some(owner) = self.config.owner_uid.map(usize::from) {
            burned = server.get(owner).copied().unwrap_or(0);
            if let Some(x) = server.get_mut(owner) {
                *x = 0;
            }
            for m in &mut server_by_mechanism {
                if let Some(x) = m.get_mut(owner) {
                    *x = 0;
                }
            }
        }
        let payout = Payout {
            block,
            emitted,
            owner: split.owner,
            burned,
            server_by_mechanism,
            server,
            validator: out.validator_emission,
            outputs: out.mechanisms,
        };
        // An epoch never pays more than it emits (orchestra-yuma's "Invariants").
        debug_assert!(
            payout.unpaid() >= 0,
            "epoch at block {block} paid {} rao more than it emitted",
            -payout.unpaid()
        );
        Ok(payout)
    }

    fn metagraph_now(&self, mecid: MechId) -> ChainResult<Metagraph> {
        let m = usize::from(mecid);
        if m >= self.mechanisms {
            return Err(ChainError::Unsupported(format!(
                "mechanism {mecid} (the subnet has {})",
                self.mechanisms
            )));
        }
        let s = self.lock();
        let out = s.last_outputs.get(m);
        let pick = |v: Option<&Vec<u16>>, i: usize| v.and_then(|v| v.get(i)).copied().unwrap_or(0);
        Ok(Metagraph {
            netuid: NETUID,
            mecid,
            block: s.block,
            neurons: s
                .neurons
                .iter()
                .enumerate()
                .map(|(i, n)| Neuron {
                    uid: i as u16,
                    hotkey: n.account,
                    coldkey: n.coldkey,
                    stake: n.stake,
                    validator_permit: n.permit,
                    active: out.and_then(|o| o.active.get(i)).copied().unwrap_or(true),
                    axon: None,
                    last_update: n.last_update[m],
                    registered_at: n.registered_at,
                    weights: n.weights[m].clone(),
                    bonds: n.bonds[m].clone(),
                    incentive: pick(out.map(|o| &o.incentive), i),
                    dividends: pick(out.map(|o| &o.dividends), i),
                    consensus: pick(out.map(|o| &o.consensus), i),
                    emission: out.and_then(|o| o.emission.get(i)).copied().unwrap_or(0),
                })
                .collect(),
        })
    }
}

/// [`SimChain`] seen by one signing validator: the [`Chain`] trait, resolved without an executor.
#[derive(Debug, Clone, Copy)]
pub struct SimSigner<'a> {
    chain: &'a SimChain,
    uid: u16,
}

fn tx() -> TxOutcome {
    TxOutcome {
        tx_hash: [0; 32],
        block_hash: [0; 32],
        finalized: true,
        events: Vec::new(),
    }
}

/// A module error as subtensor raises it for `call`.
fn refused(call: &str, name: &str) -> ChainError {
    ChainError::Dispatch {
        call: call.into(),
        block_hash: [0; 32],
        error: Box::new(orchestra_chain::ModuleError {
            pallet: "SubtensorModule".into(),
            name: name.into(),
            docs: String::new(),
        }),
    }
}

// The futures are `Ready`: callers that know they hold a `SimSigner` may rely on that.
#[allow(refining_impl_trait)]
impl Chain for SimSigner<'_> {
    fn runtime_shape(&self) -> RuntimeShape {
        RuntimeShape {
            spec_name: "orchestra-sim".into(),
            spec_version: 0,
            transaction_version: 0,
            subtensor_pallet_index: 7,
            stake_item: StakeItem::TotalHotkeyAlpha,
            has_mechanisms: true,
            indexed_by_netuid_index: true,
            has_commit_reveal: self.chain.config.commit_reveal,
            has_timelocked_commits: self.chain.config.commit_reveal
                && self.chain.config.commit_reveal_version >= 4,
            has_commitments: false,
            has_subnet_info_api: false,
            // What the simulated chain models of spec 459.
            features: orchestra_chain::RuntimeFeatures {
                mechanism_count: true,
                mechanism_emission_split: true,
                stateful_epochs: self.chain.config.epoch_rule == EpochRule::Stateful,
                trigger_epoch: self.chain.config.epoch_rule == EpochRule::Stateful,
                activity_cutoff_factor: self.chain.config.activity_cutoff.is_none(),
                yuma3: true,
                liquid_alpha: true,
                ..Default::default()
            },
        }
    }

    fn signer(&self) -> Option<AccountId> {
        self.chain
            .lock()
            .neurons
            .get(usize::from(self.uid))
            .map(|n| n.account)
    }

    fn current_block(&self) -> Ready<ChainResult<u64>> {
        ready(Ok(self.chain.lock().block))
    }

    fn tempo_schedule(&self, netuid: NetUid) -> Ready<ChainResult<TempoSchedule>> {
        let s = self.chain.lock();
        let block = s.block;
        ready(Ok(TempoSchedule {
            block,
            netuid,
            tempo: s.schedule.tempo,
            next_epoch_block: s.schedule.next_epoch_block(block).unwrap_or(u64::MAX),
            epoch_index: s.schedule.epoch_index,
            stateful: s.schedule.rule == EpochRule::Stateful,
            last_epoch_block: s.schedule.last_epoch_block,
            pending_epoch_at: s.schedule.pending_epoch_at,
            blocks_since_last_step: s.schedule.blocks_since_last_step,
        }))
    }

    fn metagraph(&self, _netuid: NetUid, mecid: MechId) -> Ready<ChainResult<Metagraph>> {
        ready(self.chain.metagraph_now(mecid))
    }

    fn hyperparams(&self, netuid: NetUid) -> Ready<ChainResult<Hyperparams>> {
        let c = &self.chain.config;
        let tempo = self.chain.tempo();
        ready(Ok(Hyperparams {
            netuid,
            tempo,
            rho: 10,
            kappa: c.kappa,
            immunity_period: 5000,
            min_allowed_weights: 1,
            max_weights_limit: u16::MAX,
            weights_version_key: 0,
            weights_rate_limit: 0,
            activity_cutoff: c.activity_cutoff_at(tempo).min(u64::from(u16::MAX)) as u16,
            max_allowed_uids: 4096,
            max_allowed_validators: c.max_allowed_validators,
            bonds_moving_average: c.bonds_moving_average,
            serving_rate_limit: 0,
            commit_reveal_enabled: Some(c.commit_reveal),
            reveal_period_epochs: Some(REVEAL_PERIOD_EPOCHS),
            liquid_alpha_on: Some(c.liquid_alpha),
            yuma3_on: Some(c.yuma == YumaVariant::Yuma3),
            mechanism_count: self.chain.mechanisms as u8,
            activity_cutoff_factor_milli: c
                .activity_cutoff
                .is_none()
                .then_some(c.activity_cutoff_factor_milli),
            bonds_reset_on: None,
            commit_reveal_version: Some(c.commit_reveal_version),
            mechanism_emission_split: self.chain.split.clone(),
        }))
    }

    fn set_weights(&self, w: &WeightsSubmission) -> Ready<ChainResult<TxOutcome>> {
        let m = usize::from(w.mecid);
        if m >= self.chain.mechanisms || w.uids.len() != w.values.len() {
            return ready(Err(ChainError::Unsupported(format!(
                "weights for mechanism {}",
                w.mecid
            ))));
        }
        if self.chain.config.commit_reveal {
            return ready(Err(refused("set_weights", "CommitRevealEnabled")));
        }
        let mut s = self.chain.lock();
        let block = s.block;
        if let Some(n) = s.neurons.get_mut(usize::from(self.uid)) {
            n.weights[m] = w
                .uids
                .iter()
                .copied()
                .zip(w.values.iter().copied())
                .collect();
            n.last_update[m] = block;
        }
        ready(Ok(tx()))
    }

    fn commit_weights(&self, c: &WeightsCommit) -> Ready<ChainResult<TxOutcome>> {
        if !self.chain.config.commit_reveal {
            return ready(Err(refused("commit_weights", "CommitRevealDisabled")));
        }
        if usize::from(c.mecid) >= self.chain.mechanisms {
            return ready(Err(ChainError::Unsupported(format!(
                "weights for mechanism {}",
                c.mecid
            ))));
        }
        let mut s = self.chain.lock();
        let (epoch, block) = (s.schedule.epoch_index, s.block);
        // Commits whose reveal epoch has passed can never be revealed (the chain drops them).
        s.commits
            .retain(|k| k.epoch + REVEAL_PERIOD_EPOCHS >= epoch);
        s.commits.push(Commit {
            uid: self.uid,
            mecid: c.mecid,
            hash: c.hash,
            epoch,
            block,
        });
        // Spec 459 stamps LastUpdate at the commit (`internal_commit_weights`), not the reveal.
        if let Some(n) = s.neurons.get_mut(usize::from(self.uid)) {
            n.last_update[usize::from(c.mecid)] = block;
        }
        ready(Ok(tx()))
    }

    fn commit_timelocked_weights(&self, c: &TimelockedCommit) -> Ready<ChainResult<TxOutcome>> {
        let config = &self.chain.config;
        if !config.commit_reveal {
            return ready(Err(refused(
                "commit_timelocked_weights",
                "CommitRevealDisabled",
            )));
        }
        if c.commit_reveal_version != config.commit_reveal_version {
            return ready(Err(refused(
                "commit_timelocked_weights",
                "IncorrectCommitRevealVersion",
            )));
        }
        if usize::from(c.mecid) >= self.chain.mechanisms {
            return ready(Err(ChainError::Unsupported(format!(
                "weights for mechanism {}",
                c.mecid
            ))));
        }
        let mut s = self.chain.lock();
        let block = s.block;
        let epoch = s.schedule.epoch_index_with_lookahead(block);
        s.timelocked.push(TimelockedEntry {
            uid: self.uid,
            mecid: c.mecid,
            epoch,
            block,
            round: c.reveal_round,
            commit: c.commit.clone(),
        });
        // `internal_commit_timelocked_weights` stamps LastUpdate at the commit.
        if let Some(n) = s.neurons.get_mut(usize::from(self.uid)) {
            n.last_update[usize::from(c.mecid)] = block;
        }
        ready(Ok(tx()))
    }

    fn reveal_weights(&self, r: &WeightsReveal) -> Ready<ChainResult<TxOutcome>> {
        let w = &r.weights;
        let m = usize::from(w.mecid);
        if m >= self.chain.mechanisms || w.uids.len() != w.values.len() {
            return ready(Err(ChainError::Unsupported(format!(
                "weights for mechanism {}",
                w.mecid
            ))));
        }
        let mut s = self.chain.lock();
        let Some(account) = s.neurons.get(usize::from(self.uid)).map(|n| n.account) else {
            return ready(Err(refused(
                "reveal_weights",
                "HotKeyNotRegisteredInSubNet",
            )));
        };
        let hash = orchestra_chain::commit_for(&account, r, true).hash;
        let Some(at) = s
            .commits
            .iter()
            .position(|k| k.uid == self.uid && k.mecid == w.mecid && k.hash == hash)
        else {
            return ready(Err(refused(
                "reveal_weights",
                "InvalidRevealCommitHashNotMatch",
            )));
        };
        let epoch = s.schedule.epoch_index;
        let due = s.commits[at].epoch + REVEAL_PERIOD_EPOCHS;
        if epoch < due {
            return ready(Err(refused("reveal_weights", "RevealTooEarly")));
        }
        s.commits.remove(at);
        if epoch > due {
            return ready(Err(refused("reveal_weights", "ExpiredWeightCommit")));
        }
        // The reveal sets the weights without touching LastUpdate (the commit set it).
        if let Some(n) = s.neurons.get_mut(usize::from(self.uid)) {
            n.weights[m] = w
                .uids
                .iter()
                .copied()
                .zip(w.values.iter().copied())
                .collect();
        }
        ready(Ok(tx()))
    }

    fn serve_axon(&self, _a: &AxonServe) -> Ready<ChainResult<TxOutcome>> {
        ready(Ok(tx()))
    }

    fn anchor_commitment(&self, _netuid: NetUid, _data: &[u8]) -> Ready<ChainResult<TxOutcome>> {
        ready(Ok(tx()))
    }
}
