//! [`Validator`]: the whole validator as one sans-IO state machine, in the shape of quinn-proto
//! (and of the miner core): inputs arrive through `handle_*` methods with the time passed in,
//! work leaves through `poll_*` methods, and the driver owns every socket, clock and disk.
//!
//! ```text
//! validator.handle_chain(info);                     // metagraph + hyperparameters, when read
//! validator.handle_block(block, now_ms);            // a new block: challenge round, anchor
//! while let Some(c) = validator.poll_challenge() { send c.challenge to c.uid }
//! validator.handle_response(job, result, received_at_ms, &mut rng);
//! while let Some(a) = validator.poll_audit(now_ms) { re-execute a.call on its subnet }
//! validator.handle_audit_result(job, audit_id, result);
//! while let Some(p) = validator.poll_probe() { probe p }  validator.handle_probe_result(id, r);
//! while let Some(v) = validator.poll_verdict() { append v.change to the Ledger store }
//! validator.handle_tempo(tempo_index, block, now_ms); // the chain's epoch index at `block`
//! while let Some(w) = validator.poll_weights() { submit w }  validator.handle_weights_result(..);
//! while let Some(a) = validator.poll_anchor() { anchor a.data }
//! while let Some(e) = validator.poll_event() { metrics, logs, users' answers }
//! if let Some(t) = validator.poll_timeout() { wake at t: validator.handle_timeout(t, &mut rng) }
//! ```
//!
//! The simulator and the node drive this one type, so the schedule the simulator measures —
//! rounds, audits, scoring, proposal judging, tempo close, weights with commit-reveal v2, Ledger
//! head anchoring — is the production schedule. What stays in a driver is IO and its policy:
//! which URL a uid has, when to re-read the chain, how long to wait for the network, when to
//! rebuild the audit view ([`Validator::refresh_view`]), what to persist.
//!
//! Randomness is the caller's: the core's own draws (rounds, audit draws, commit salts) come
//! from the [`ValidatorRngs`] it was built with; routing a user's request to a miner draws from
//! the `rng` passed with the request and with each response (a simulator keeps user traffic on
//! its own stream).

use crate::audit::{Audit, AuditCall, AuditReport, Auditor, AuditorConfig};
use crate::challenge::{ChallengeConfig, ChallengeError, ChallengeGenerator};
use crate::organic::{DEFAULT_ORGANIC_ATTEMPTS, pick_miner};
use crate::scorer::{ChallengeScore, Scorer, ScorerConfig, ScorerState};
use crate::strategy::{HonestValidator, ValidatorStrategy, WeightsCtx};
use crate::verifier::{ProbeRequest, ProposalVerifier, VerifiedProposal};
use crate::weights::{
    WeightRules, WeightSchedule, WeightScheduleState, WeightSetter, WeightsAction,
};
use orchestra_ledger::engine::EngineError;
use orchestra_ledger::model::ChangeRecord;
use orchestra_ledger::view::LedgerView;
use orchestra_ledger::{Ledger, LedgerState, ProbeResult, VerifyParams};
use orchestra_mechanism::MechanismParams;
use orchestra_mechanism::ledger::ProposalRecord;
use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_mechanism::weights::WeightLimits;
use orchestra_protocol::Body;
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Objective, Response, SubCallFailure};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// A miner as the metagraph shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerInfo {
    /// Uid.
    pub uid: u16,
    /// Hotkey, ss58.
    pub hotkey: String,
    /// Owning coldkey, ss58, if known (what tells one operator's miners apart).
    pub coldkey: Option<String>,
    /// Incentive, in any unit (users' requests are routed in proportion to it).
    pub incentive: u64,
}

/// What the driver read from the chain: the miners to challenge and how weights are taken.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChainInfo {
    /// Miners this validator can reach, in the driver's order (the order users' requests are
    /// drawn over).
    pub miners: Vec<MinerInfo>,
    /// This validator's uid, if registered (weights are set only then).
    pub my_uid: Option<u16>,
    /// `MinAllowedWeights` and `MaxWeightsLimit` (`self_uid` is taken from `my_uid`).
    pub limits: WeightLimits,
    /// Commit-reveal settings.
    pub rules: WeightRules,
    /// Last epoch's consensus per mechanism (what strategies may look at).
    pub consensus: Vec<Vec<u16>>,
}

/// Everything a [`Validator`] is configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorConfig {
    /// This validator's hotkey, ss58.
    pub hotkey: String,
    /// Mechanism parameters.
    pub params: MechanismParams,
    /// Challenge knobs.
    pub challenge: ChallengeConfig,
    /// Blocks between challenge rounds (at least 1).
    pub challenge_every_blocks: u64,
    /// Rounds fall on blocks `b` with `(b + phase) % every == 0`.
    pub challenge_phase: u64,
    /// Auditor knobs.
    pub auditor: AuditorConfig,
    /// Scorer knobs.
    pub scorer: ScorerConfig,
    /// Miners one user's request tries before it fails (at least 1).
    pub organic_attempts: u32,
    /// Blocks between Ledger head anchors (0 = never).
    pub anchor_every_blocks: u64,
    /// Tempos between weight submissions (at least 1).
    pub weights_every_tempos: u64,
    /// Time allowed for the network on top of deadline + grace before a challenge without an
    /// answer counts as missing, ms.
    pub network_slack_ms: u64,
}

impl ValidatorConfig {
    /// The defaults for validator `hotkey` with `params`.
    pub fn new(hotkey: impl Into<String>, params: MechanismParams) -> Self {
        ValidatorConfig {
            hotkey: hotkey.into(),
            params,
            challenge: ChallengeConfig::default(),
            challenge_every_blocks: 20,
            challenge_phase: 0,
            auditor: AuditorConfig::default(),
            scorer: ScorerConfig::default(),
            organic_attempts: DEFAULT_ORGANIC_ATTEMPTS,
            anchor_every_blocks: 100,
            weights_every_tempos: 1,
            network_slack_ms: 2_000,
        }
    }
}

/// The validator's own random streams, seeded by the caller.
#[derive(Debug, Clone)]
pub struct ValidatorRngs {
    /// Challenge rounds: sampled miners, objectives, challenge ids and salts.
    pub challenges: ChaCha8Rng,
    /// Audit draws (which steps are re-executed).
    pub audits: ChaCha8Rng,
    /// Commit-reveal salts.
    pub salts: ChaCha8Rng,
}

impl ValidatorRngs {
    /// Three independent streams derived from one 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let mut master = ChaCha8Rng::from_seed(seed);
        ValidatorRngs {
            challenges: ChaCha8Rng::from_seed(master.random()),
            audits: ChaCha8Rng::from_seed(master.random()),
            salts: ChaCha8Rng::from_seed(master.random()),
        }
    }
}

/// The durable part of a [`Validator`]: what a node writes to disk and gives back to
/// [`Validator::restore`] after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorState {
    /// EMAs, Ledger window and the open tempo's activity.
    pub scorer: ScorerState,
    /// The tempo scores accumulate into (`None` before the first block).
    pub open_tempo: Option<u64>,
    /// Landed commits awaiting their reveal.
    pub weights: WeightScheduleState,
    /// The last anchor: `(block, tree size)`.
    pub last_anchor: Option<(u64, u64)>,
}

/// Why a validator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorError {
    /// The challenge generator refused its inputs.
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
}

/// A challenge the driver must send: `POST` `challenge` to miner `uid` (hotkey `hotkey`) and
/// report the answer with [`Validator::handle_response`].
#[derive(Debug, Clone)]
pub struct ChallengeTransmit {
    /// Names the exchange in [`Validator::handle_response`].
    pub job: u64,
    /// The miner.
    pub uid: u16,
    /// Its hotkey (the receiver the request is signed for, and who must sign the answer).
    pub hotkey: String,
    /// The challenge.
    pub challenge: Arc<Challenge>,
    /// A user's request this challenge carries, if any.
    pub organic: Option<u64>,
    /// Give up waiting after this long, ms (deadline + grace + network slack).
    pub timeout_ms: u64,
}

/// An audit re-execution the driver must run: call the subnet, report with
/// [`Validator::handle_audit_result`].
#[derive(Debug, Clone)]
pub struct AuditTransmit {
    /// The challenge under audit.
    pub job: u64,
    /// The call.
    pub call: AuditCall,
}

/// A Ledger head the driver must anchor on chain (`Commitments.set_commitment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorRequest {
    /// Block of the decision.
    pub block: u64,
    /// Records in the change log.
    pub tree_size: u64,
    /// Block of the last record.
    pub head_block: u64,
    /// Merkle root.
    pub root: Hash32,
    /// The 48 bytes to commit: tree size ‖ head block ‖ root (big-endian integers).
    pub data: Vec<u8>,
}

/// Why a user's request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganicFailure {
    /// No miner is reachable.
    #[error("no miner is reachable")]
    NoMiners,
    /// Every miner tried failed; the last one's reason.
    #[error("the miner failed: {0}")]
    MinerFailed(String),
}

/// How a tempo's weights fared when it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsDecision {
    /// Queued: `vectors` extrinsics come out of [`Validator::poll_weights`].
    Queued {
        /// Vectors queued (one per mechanism).
        vectors: usize,
    },
    /// Not due this tempo (`weights_every_tempos` > 1) or nothing scores yet.
    Skipped,
    /// This validator is not registered on the subnet.
    NotRegistered,
    /// The scores gave no valid weight vector.
    Invalid(String),
}

/// One challenge's verdict.
#[derive(Debug, Clone)]
pub struct ScoredChallenge {
    /// The exchange.
    pub job: u64,
    /// The miner.
    pub uid: u16,
    /// The challenge.
    pub challenge_id: Hash32,
    /// When it was issued, ms.
    pub issued_at_ms: u64,
    /// When the answer (or the give-up) arrived, ms.
    pub received_at_ms: u64,
    /// The score observed.
    pub score: ChallengeScore,
    /// The audit, when there was a response.
    pub report: Option<AuditReport>,
    /// Pipeline steps in the response.
    pub steps: usize,
    /// Ledger proposals submitted for verification.
    pub proposals: usize,
}

impl ScoredChallenge {
    /// Checks 1–5 held (docs/mechanism.md §3).
    pub fn verified(&self) -> bool {
        self.report.as_ref().is_some_and(AuditReport::hash_verified)
    }

    /// Check 5 failed: a fabrication strike.
    pub fn struck(&self) -> bool {
        self.report.as_ref().is_some_and(AuditReport::audit_failed)
    }
}

/// What happened, for metrics, logs and users.
#[derive(Debug, Clone)]
pub enum ValidatorEvent {
    /// A synthetic challenge was scored.
    Scored(Box<ScoredChallenge>),
    /// A user's request was answered (the audit continues; see `OrganicAudited`).
    OrganicAnswered {
        /// The request.
        request: u64,
        /// The challenge it travelled under.
        challenge_id: Hash32,
        /// The miner that answered.
        uid: u16,
        /// Its hotkey.
        miner: String,
        /// The data, in the user's target schema.
        standardized_data: Value,
        /// Checks 1–4 held (spot audits continue afterwards).
        proof_verified: bool,
        /// The miner's hash-locked proof summary (lock, chain head, data hash, root).
        proof: orchestra_protocol::messages::ProofSummary,
        /// The executed sub-calls the proof chains, in order.
        pipeline: Vec<orchestra_protocol::messages::PipelineStep>,
        /// Issue to answer, ms.
        latency_ms: u64,
    },
    /// A user's answered request finished its audit (audited for the record, never scored).
    OrganicAudited {
        /// The request.
        request: u64,
        /// The miner.
        uid: u16,
        /// The answer's quality: its orchestration score over the share `s`, in [0, 1].
        quality: f64,
        /// The audit.
        report: AuditReport,
    },
    /// A user's request is tried on another miner.
    OrganicRetry {
        /// The request.
        request: u64,
        /// Miners tried so far.
        tried: usize,
        /// Why the last one failed.
        error: String,
    },
    /// A user's request failed.
    OrganicFailed {
        /// The request.
        request: u64,
        /// Why.
        error: OrganicFailure,
    },
    /// A tempo closed: Ledger terms observed, weights decided.
    TempoClosed {
        /// The tempo closed.
        tempo: u64,
        /// The block it closed at.
        block: u64,
        /// `(O_i, L_i)` per miner after the close.
        scores: BTreeMap<u16, (f64, f64)>,
        /// What happened to its weights.
        weights: WeightsDecision,
    },
}

#[derive(Debug)]
enum JobState {
    /// Sent, no answer yet.
    Sent,
    /// Answered and under audit.
    Auditing {
        response: Box<Response>,
        audit: Box<Audit>,
    },
}

#[derive(Debug)]
struct Job {
    uid: u16,
    hotkey: String,
    challenge: Arc<Challenge>,
    organic: Option<u64>,
    timeout_at_ms: u64,
    state: JobState,
}

#[derive(Debug)]
struct OrganicRequest {
    objective: Objective,
    target_schema: Value,
    tried: BTreeSet<u16>,
    last_error: Option<String>,
    cancelled: bool,
}

/// One validator (see the module docs).
pub struct Validator {
    config: ValidatorConfig,
    generator: ChallengeGenerator,
    auditor: Auditor,
    scorer: Scorer,
    verifier: ProposalVerifier,
    setter: WeightSetter,
    schedule: WeightSchedule,
    strategy: Box<dyn ValidatorStrategy>,
    rngs: ValidatorRngs,
    view: Arc<LedgerView>,
    view_size: u64,
    chain: ChainInfo,
    block: u64,
    now_ms: u64,
    last_block: Option<u64>,
    open_tempo: Option<u64>,
    last_anchor: Option<(u64, u64)>,
    jobs: BTreeMap<u64, Job>,
    next_job: u64,
    challenges_out: VecDeque<u64>,
    audits_out: VecDeque<u64>,
    anchors_out: VecDeque<AnchorRequest>,
    events: VecDeque<ValidatorEvent>,
    organic: BTreeMap<u64, OrganicRequest>,
    next_request: u64,
    dirty: bool,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("hotkey", &self.config.hotkey)
            .field("strategy", &self.strategy.name())
            .field("block", &self.block)
            .field("open_tempo", &self.open_tempo)
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// An honest validator configured by `config`, challenging with `templates`, keeping the
    /// Ledger replica `ledger`, drawing from `rngs`.
    pub fn new(
        config: ValidatorConfig,
        templates: Vec<ObjectiveTemplate>,
        ledger: Ledger,
        rngs: ValidatorRngs,
    ) -> Result<Self, ValidatorError> {
        let generator =
            ChallengeGenerator::new(config.hotkey.clone(), templates, config.challenge)?;
        let scorer = Scorer::new(config.params.clone(), config.scorer, generator.templates());
        let verifier =
            ProposalVerifier::new(config.hotkey.clone(), governed(ledger, &config.params));
        let view = Arc::new(verifier.view());
        let view_size = verifier.ledger().tree().size();
        Ok(Validator {
            auditor: Auditor::new(config.auditor),
            setter: WeightSetter::new(WeightLimits::default(), config.weights_every_tempos),
            schedule: WeightSchedule::new(WeightRules::default()),
            strategy: Box::new(HonestValidator),
            generator,
            scorer,
            verifier,
            rngs,
            view,
            view_size,
            chain: ChainInfo::default(),
            block: 0,
            now_ms: 0,
            last_block: None,
            open_tempo: None,
            last_anchor: None,
            jobs: BTreeMap::new(),
            next_job: 0,
            challenges_out: VecDeque::new(),
            audits_out: VecDeque::new(),
            anchors_out: VecDeque::new(),
            events: VecDeque::new(),
            organic: BTreeMap::new(),
            next_request: 0,
            dirty: false,
            config,
        })
    }

    /// Replace the strategy.
    pub fn with_strategy(mut self, strategy: Box<dyn ValidatorStrategy>) -> Self {
        self.strategy = strategy;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// The hotkey, ss58.
    pub fn hotkey(&self) -> &str {
        &self.config.hotkey
    }

    /// The strategy's name.
    pub fn strategy_name(&self) -> &str {
        self.strategy.name()
    }

    /// The mechanism parameters.
    pub fn params(&self) -> &MechanismParams {
        self.scorer.params()
    }

    /// The challenge generator (its templates are what users' objectives are drawn from).
    pub fn generator(&self) -> &ChallengeGenerator {
        &self.generator
    }

    /// The scorer.
    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    /// `(O_i, L_i)` per observed miner.
    pub fn scores(&self) -> BTreeMap<u16, (f64, f64)> {
        self.scorer.scores()
    }

    /// The Ledger replica.
    pub fn ledger(&self) -> &Ledger {
        self.verifier.ledger()
    }

    /// The replica's entries.
    pub fn ledger_state(&self) -> &LedgerState {
        self.verifier.state()
    }

    /// The view audits are checked against (see [`refresh_view`](Self::refresh_view)).
    pub fn view(&self) -> &Arc<LedgerView> {
        &self.view
    }

    /// Proposals awaiting a verdict.
    pub fn pending_proposals(&self) -> usize {
        self.verifier.pending()
    }

    /// Challenges sent and not yet scored.
    pub fn in_flight(&self) -> usize {
        self.jobs.len()
    }

    /// The tempo scores accumulate into.
    pub fn open_tempo(&self) -> Option<u64> {
        self.open_tempo
    }

    /// The last block seen.
    pub fn block(&self) -> u64 {
        self.block
    }

    /// What the driver last reported of the chain.
    pub fn chain(&self) -> &ChainInfo {
        &self.chain
    }

    /// The durable state.
    pub fn state(&self) -> ValidatorState {
        ValidatorState {
            scorer: self.scorer.state(),
            open_tempo: self.open_tempo,
            weights: self.schedule.state().clone(),
            last_anchor: self.last_anchor,
        }
    }

    /// Replace the durable state with `state` (as [`state`](Self::state) returned it before a
    /// restart).
    pub fn restore(&mut self, state: ValidatorState) {
        self.scorer.restore(state.scorer);
        self.open_tempo = state.open_tempo;
        self.schedule.restore(state.weights);
        self.last_anchor = state.last_anchor;
    }

    /// Whether the durable state changed since the last call (and clear the flag): a node
    /// saves [`state`](Self::state) when it did.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The hotkeys (ss58) of subnet `netuid`'s neurons, from its metagraph: receipts they sign
    /// exempt a step from audit.
    pub fn set_subnet_hotkeys(&mut self, netuid: u16, hotkeys: BTreeSet<String>) {
        self.auditor.set_subnet_hotkeys(netuid, hotkeys);
    }

    /// The chain as the driver read it. Miners that left, or whose uid now belongs to another
    /// hotkey, are forgotten.
    pub fn handle_chain(&mut self, mut info: ChainInfo) {
        let now: BTreeMap<u16, &str> = info
            .miners
            .iter()
            .map(|m| (m.uid, m.hotkey.as_str()))
            .collect();
        for old in &self.chain.miners {
            if now.get(&old.uid) != Some(&old.hotkey.as_str()) {
                self.scorer.remove_miner(old.uid);
                self.dirty = true;
            }
        }
        info.limits.self_uid = info.my_uid;
        self.setter.set_limits(info.limits);
        self.schedule.set_rules(info.rules);
        self.chain = info;
    }

    /// A new block: issue the challenge round if one is due and decide whether to anchor.
    ///
    /// Rounds fall on slot blocks ([`ValidatorConfig::challenge_phase`]); a slot skipped by
    /// less than one period (a driver that polls slower than blocks come) is made up at once,
    /// a longer gap (the validator was down) is not.
    pub fn handle_block(&mut self, block: u64, now_ms: u64) {
        self.block = block;
        self.now_ms = now_ms;
        let every = self.config.challenge_every_blocks.max(1);
        let phase = self.config.challenge_phase % every;
        let prev = self.last_block.unwrap_or(block.saturating_sub(1));
        self.last_block = Some(block);
        if block > prev {
            // The latest slot at or before `block`.
            let slot = (block + phase) / every * every;
            let due = slot >= phase
                && slot - phase > prev
                && (slot - phase == block || block - prev < every);
            if due {
                self.round(block, now_ms);
            }
        }
        self.anchor_if_due(block);
    }

    fn round(&mut self, block: u64, now_ms: u64) {
        let uids: Vec<u16> = self.chain.miners.iter().map(|m| m.uid).collect();
        if uids.is_empty() {
            return;
        }
        let round = self
            .generator
            .round(&uids, block, now_ms, &mut self.rngs.challenges);
        for (uid, challenge) in round {
            self.send(uid, challenge, None, now_ms);
        }
    }

    fn hotkey_of(&self, uid: u16) -> String {
        self.chain
            .miners
            .iter()
            .find(|m| m.uid == uid)
            .map(|m| m.hotkey.clone())
            .unwrap_or_default()
    }

    fn send(&mut self, uid: u16, mut challenge: Challenge, organic: Option<u64>, now_ms: u64) {
        // Told to the miner in the challenge itself, so the audit asks for the nonce exactly
        // when the miner was asked to send it, even if the parameters change in between.
        challenge.replay_binding = self.scorer.params().replay_binding;
        let job = self.next_job;
        self.next_job += 1;
        let timeout_at_ms = now_ms.saturating_add(self.response_timeout_ms(&challenge));
        self.jobs.insert(
            job,
            Job {
                uid,
                hotkey: self.hotkey_of(uid),
                challenge: Arc::new(challenge),
                organic,
                timeout_at_ms,
                state: JobState::Sent,
            },
        );
        self.challenges_out.push_back(job);
    }

    fn response_timeout_ms(&self, challenge: &Challenge) -> u64 {
        challenge
            .deadline_ms
            .saturating_add(self.scorer.params().latency_grace_ms)
            .saturating_add(self.config.network_slack_ms)
    }

    /// The next challenge to send.
    pub fn poll_challenge(&mut self) -> Option<ChallengeTransmit> {
        while let Some(job) = self.challenges_out.pop_front() {
            if let Some(j) = self.jobs.get(&job) {
                return Some(ChallengeTransmit {
                    job,
                    uid: j.uid,
                    hotkey: j.hotkey.clone(),
                    challenge: j.challenge.clone(),
                    organic: j.organic,
                    timeout_ms: self.response_timeout_ms(&j.challenge),
                });
            }
        }
        None
    }

    /// Miner's answer to challenge `job`, received at `received_at_ms`: the parsed response, or
    /// why there is none (unreachable, refused, unsigned, unparseable, declined). A response
    /// naming another challenge or miner counts as none. `rng` routes a user's request on to
    /// another miner when this answer is unusable; synthetic challenges never draw from it.
    pub fn handle_response(
        &mut self,
        job: u64,
        result: Result<Response, String>,
        received_at_ms: u64,
        rng: &mut impl Rng,
    ) {
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        if !matches!(j.state, JobState::Sent) {
            return;
        }
        let result = result.and_then(|r| {
            if r.challenge_id != j.challenge.challenge_id {
                Err(format!(
                    "the response names challenge {} instead of {}",
                    r.challenge_id, j.challenge.challenge_id
                ))
            } else if r.miner != j.hotkey {
                Err(format!(
                    "the response names miner {} instead of {}",
                    r.miner, j.hotkey
                ))
            } else {
                Ok(r)
            }
        });
        let response = match result {
            Ok(r) => r,
            Err(error) => {
                self.no_response(job, error, received_at_ms, rng);
                return;
            }
        };
        let audit = self.auditor.begin(
            &j.challenge,
            &response,
            received_at_ms,
            &self.view,
            self.scorer.params(),
            &mut self.rngs.audits,
        );
        if let Some(request) = j.organic {
            let report = audit.report();
            self.events.push_back(ValidatorEvent::OrganicAnswered {
                request,
                challenge_id: j.challenge.challenge_id,
                uid: j.uid,
                miner: response.miner.clone(),
                standardized_data: response.standardized_data.clone(),
                proof_verified: report.proof_ok() && report.replays.is_empty() && !report.late,
                proof: response.proof,
                pipeline: response.pipeline.clone(),
                latency_ms: received_at_ms.saturating_sub(j.challenge.issued_at_ms),
            });
        }
        let finished = audit.is_finished();
        j.state = JobState::Auditing {
            response: Box::new(response),
            audit: Box::new(audit),
        };
        if finished {
            self.finish(job);
        } else {
            self.audits_out.push_back(job);
        }
    }

    fn no_response(&mut self, job: u64, error: String, received_at_ms: u64, rng: &mut impl Rng) {
        let Some(j) = self.jobs.remove(&job) else {
            return;
        };
        if let Some(request) = j.organic {
            let attempts = self.config.organic_attempts.max(1) as usize;
            let Some(req) = self.organic.get_mut(&request) else {
                return;
            };
            req.last_error = Some(error);
            if req.tried.len() < attempts {
                self.route_organic(request, rng);
            } else {
                self.fail_organic(request);
            }
            return;
        }
        let score = self.scorer.score_challenge(j.uid, &j.challenge, None, None);
        self.dirty = true;
        self.events
            .push_back(ValidatorEvent::Scored(Box::new(ScoredChallenge {
                job,
                uid: j.uid,
                challenge_id: j.challenge.challenge_id,
                issued_at_ms: j.challenge.issued_at_ms,
                received_at_ms,
                score,
                report: None,
                steps: 0,
                proposals: 0,
            })));
    }

    /// The next audit re-execution to run, issued at `now_ms`.
    pub fn poll_audit(&mut self, now_ms: u64) -> Option<AuditTransmit> {
        while let Some(&job) = self.audits_out.front() {
            let call = match self.jobs.get_mut(&job).map(|j| &mut j.state) {
                Some(JobState::Auditing { audit, .. }) => audit.poll_call(now_ms),
                _ => None,
            };
            match call {
                Some(call) => return Some(AuditTransmit { job, call }),
                None => {
                    self.audits_out.pop_front();
                }
            }
        }
        None
    }

    /// The result of audit re-execution `audit_id` of challenge `job`.
    pub fn handle_audit_result(
        &mut self,
        job: u64,
        audit_id: u64,
        result: Result<Body, SubCallFailure>,
    ) {
        let finished = match self.jobs.get_mut(&job).map(|j| &mut j.state) {
            Some(JobState::Auditing { audit, .. }) => {
                audit.on_call_result(audit_id, result);
                audit.is_finished()
            }
            _ => false,
        };
        if finished {
            self.finish(job);
        }
    }

    /// Score an audited job (or, for a user's request, record its quality).
    fn finish(&mut self, job: u64) {
        let Some(j) = self.jobs.remove(&job) else {
            return;
        };
        let JobState::Auditing {
            mut response,
            audit,
        } = j.state
        else {
            return;
        };
        let report = (*audit).finish();
        if let Some(request) = j.organic {
            // Users' requests are audited for the record, never scored.
            let terms = self.scorer.terms(
                &j.challenge,
                &response,
                report.received_at_ms,
                report.hash_verified(),
            );
            let params = self.scorer.params();
            let quality = terms.score(params) / params.orchestration_share.max(f64::EPSILON);
            self.organic.remove(&request);
            self.events.push_back(ValidatorEvent::OrganicAudited {
                request,
                uid: j.uid,
                quality,
                report,
            });
            return;
        }
        let score =
            self.scorer
                .score_challenge(j.uid, &j.challenge, Some(&response), Some(&report));
        let proposals = std::mem::take(&mut response.ledger_proposals);
        let count = proposals.len();
        for p in proposals {
            self.verifier
                .submit(j.uid, response.miner.as_str(), p, self.block);
        }
        self.dirty = true;
        self.events
            .push_back(ValidatorEvent::Scored(Box::new(ScoredChallenge {
                job,
                uid: j.uid,
                challenge_id: j.challenge.challenge_id,
                issued_at_ms: j.challenge.issued_at_ms,
                received_at_ms: report.received_at_ms,
                score,
                report: Some(report),
                steps: response.pipeline.len(),
                proposals: count,
            })));
    }

    /// The next proposal probe to run.
    pub fn poll_probe(&mut self) -> Option<ProbeRequest> {
        self.verifier.poll_probe()
    }

    /// The result of probe `probe_id`.
    pub fn handle_probe_result(&mut self, probe_id: u64, result: ProbeResult) {
        self.verifier.on_probe_result(probe_id, result);
    }

    /// The next proposal judged at the current block (all its probes in, or its window
    /// closing), in submission order; its verdict is already recorded in the scores. An
    /// accepted change is already in this replica: the driver persists it, and may share it
    /// with peers ([`handle_peer_change`](Self::handle_peer_change)).
    pub fn poll_verdict(&mut self) -> Option<VerifiedProposal> {
        if self.verifier.pending() == 0 {
            return None;
        }
        let verdict = self.verifier.poll_verdict(self.block)?;
        if let Some(record) = verdict.record {
            self.scorer.record_proposal(record);
            self.dirty = true;
        }
        Some(verdict)
    }

    /// A change another validator verified (resync from a peer's change log, docs/mechanism.md
    /// §5), with the verdict it credited the proposer with: appended if it extends this
    /// replica, and then credited alike, so every validator scores Ledger work from the shared
    /// log.
    pub fn handle_peer_change(
        &mut self,
        change: &ChangeRecord,
        record: Option<ProposalRecord>,
    ) -> Result<(), EngineError> {
        self.verifier.apply_remote(change)?;
        if let Some(record) = record {
            self.scorer.record_proposal(record);
            self.dirty = true;
        }
        Ok(())
    }

    /// Replace the replica with `ledger` (the durable store's copy, after a failed write left
    /// the two apart). Proposals in flight are judged against it.
    pub fn resync_ledger(&mut self, ledger: Ledger) {
        self.verifier = ProposalVerifier::new(
            self.config.hotkey.clone(),
            governed(ledger, &self.config.params),
        );
    }

    /// Rebuild the audit view if the replica grew since the last rebuild; whether it did.
    /// Rebuilding compiles schemas, so a driver chooses its cadence: a node after every change
    /// it commits, the simulator every 50 blocks, as a node polling its replica would.
    pub fn refresh_view(&mut self) -> bool {
        let size = self.verifier.ledger().tree().size();
        if size == self.view_size {
            return false;
        }
        self.view = Arc::new(self.verifier.view_reusing(&self.view));
        self.view_size = size;
        true
    }

    /// The chain's tempo (epoch) index at `block` is `tempo`: when it moved past the open
    /// tempo, close it — Ledger terms observed for every miner, weights computed, passed
    /// through the strategy and queued (set, or committed for commit-reveal) — and queue the
    /// reveals that are due. After a gap of several tempos (a restart) only the most recent
    /// finished tempo is closed.
    pub fn handle_tempo(&mut self, tempo: u64, block: u64, now_ms: u64) {
        self.now_ms = now_ms;
        match self.open_tempo {
            None => {
                self.open_tempo = Some(tempo);
                self.dirty = true;
            }
            Some(open) if tempo > open => {
                self.close_tempo(tempo - 1, block);
                self.open_tempo = Some(tempo);
                self.dirty = true;
            }
            Some(_) => {}
        }
        self.schedule.reveal_due(tempo);
    }

    fn close_tempo(&mut self, tempo: u64, block: u64) {
        let uids: Vec<u16> = self.chain.miners.iter().map(|m| m.uid).collect();
        self.scorer.end_tempo(&uids);
        let scores = self.scorer.scores();
        let weights = if self.chain.my_uid.is_none() {
            WeightsDecision::NotRegistered
        } else {
            match self.setter.poll_weights(tempo, block, &self.scorer) {
                Ok(Some(w)) => {
                    let ctx = WeightsCtx {
                        tempo,
                        block,
                        miners: &self.chain.miners,
                        consensus: &self.chain.consensus,
                    };
                    let vectors = self.strategy.weights(&ctx, w.weights);
                    let n = vectors.len();
                    self.schedule.submit(tempo, vectors, &mut self.rngs.salts);
                    WeightsDecision::Queued { vectors: n }
                }
                Ok(None) => WeightsDecision::Skipped,
                Err(e) => WeightsDecision::Invalid(e.to_string()),
            }
        };
        self.events.push_back(ValidatorEvent::TempoClosed {
            tempo,
            block,
            scores,
            weights,
        });
    }

    /// How the subnet takes weights now (commit-reveal, its period, v4 or v2).
    pub fn weight_rules(&self) -> crate::weights::WeightRules {
        self.schedule.rules()
    }

    /// The next weight extrinsic to submit.
    pub fn poll_weights(&mut self) -> Option<WeightsAction> {
        self.schedule.poll()
    }

    /// Weight extrinsic `id` landed (`ok`) or failed. A landed commit is revealed in its
    /// reveal tempo; nothing else depends on the result.
    pub fn handle_weights_result(&mut self, id: u64, ok: bool) {
        self.schedule.on_result(id, ok);
        self.dirty = true;
    }

    fn anchor_if_due(&mut self, block: u64) {
        let every = self.config.anchor_every_blocks;
        if every == 0 {
            return;
        }
        // The size first: computing the root hashes the tree, and most blocks anchor nothing.
        let size = self.verifier.ledger().tree().size();
        let due = match self.last_anchor {
            None => true,
            Some((b, s)) => block >= b.saturating_add(every) && s != size,
        };
        if !due || size == 0 {
            return;
        }
        let head = self.verifier.ledger().head();
        let (root, head_block) = (head.root, head.block);
        self.last_anchor = Some((block, size));
        self.dirty = true;
        let mut data = Vec::with_capacity(48);
        data.extend_from_slice(&size.to_be_bytes());
        data.extend_from_slice(&head_block.to_be_bytes());
        data.extend_from_slice(&root.0);
        self.anchors_out.push_back(AnchorRequest {
            block,
            tree_size: size,
            head_block,
            root,
            data,
        });
    }

    /// The next Ledger head to anchor.
    pub fn poll_anchor(&mut self) -> Option<AnchorRequest> {
        self.anchors_out.pop_front()
    }

    /// A user's objective with its target schema, arriving at `block`/`now_ms`: routed to a
    /// miner drawn by incentive (with `rng`), and on to untried miners while answers are
    /// unusable, up to [`ValidatorConfig::organic_attempts`]. Returns the request's id; its
    /// fate comes out of [`poll_event`](Self::poll_event).
    pub fn handle_organic(
        &mut self,
        objective: Objective,
        target_schema: Value,
        block: u64,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> u64 {
        self.block = self.block.max(block);
        self.now_ms = now_ms;
        let request = self.next_request;
        self.next_request += 1;
        self.organic.insert(
            request,
            OrganicRequest {
                objective,
                target_schema,
                tried: BTreeSet::new(),
                last_error: None,
                cancelled: false,
            },
        );
        self.route_organic(request, rng);
        request
    }

    /// The user of request `request` is gone: answer nobody, try no further miner.
    pub fn cancel_organic(&mut self, request: u64) {
        if let Some(r) = self.organic.get_mut(&request) {
            r.cancelled = true;
        }
    }

    fn route_organic(&mut self, request: u64, rng: &mut impl Rng) {
        let candidates: Vec<(u16, u64)> = self
            .chain
            .miners
            .iter()
            .map(|m| (m.uid, m.incentive))
            .collect();
        let Some(req) = self.organic.get_mut(&request) else {
            return;
        };
        if req.cancelled {
            self.organic.remove(&request);
            return;
        }
        let Some(uid) = pick_miner(&candidates, &req.tried, rng) else {
            self.fail_organic(request);
            return;
        };
        if let Some(error) = &req.last_error {
            self.events.push_back(ValidatorEvent::OrganicRetry {
                request,
                tried: req.tried.len(),
                error: error.clone(),
            });
        }
        req.tried.insert(uid);
        let challenge = self.generator.organic(
            req.objective.clone(),
            req.target_schema.clone(),
            self.block,
            self.now_ms,
            rng,
        );
        self.send(uid, challenge, Some(request), self.now_ms);
    }

    fn fail_organic(&mut self, request: u64) {
        let Some(req) = self.organic.remove(&request) else {
            return;
        };
        if req.cancelled {
            return;
        }
        let error = match req.last_error {
            None => OrganicFailure::NoMiners,
            Some(e) => OrganicFailure::MinerFailed(e),
        };
        self.events
            .push_back(ValidatorEvent::OrganicFailed { request, error });
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<ValidatorEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due: the earliest challenge
    /// deadline (plus grace and network slack) or audit re-execution timeout.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.jobs
            .values()
            .filter_map(|j| match &j.state {
                JobState::Sent => Some(j.timeout_at_ms),
                JobState::Auditing { audit, .. } => audit.poll_timeout(),
            })
            .min()
    }

    /// Time has reached `now_ms`: challenges still unanswered count as missing (a user's
    /// request moves on, drawing from `rng`), audit re-executions still out are inconclusive.
    pub fn handle_timeout(&mut self, now_ms: u64, rng: &mut impl Rng) {
        let expired: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| matches!(j.state, JobState::Sent) && j.timeout_at_ms <= now_ms)
            .map(|(&id, _)| id)
            .collect();
        for job in expired {
            self.no_response(job, "no answer before the deadline".into(), now_ms, rng);
        }
        let audited: Vec<u64> = self
            .jobs
            .iter_mut()
            .filter_map(|(&id, j)| match &mut j.state {
                JobState::Auditing { audit, .. } => {
                    audit.handle_timeout(now_ms);
                    audit.is_finished().then_some(id)
                }
                JobState::Sent => None,
            })
            .collect();
        for job in audited {
            self.finish(job);
        }
    }
}

/// `ledger` with the Ledger rules the mechanism parameters switch (the copied-evidence check), so
/// every driver's replica judges proposals as `params` say, whatever it was built with.
fn governed(mut ledger: Ledger, params: &MechanismParams) -> Ledger {
    ledger.set_params(VerifyParams {
        reject_copied_evidence: params.reject_copied_evidence,
        ..*ledger.params()
    });
    ledger
}
