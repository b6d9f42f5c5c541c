//! The validator's event loop: the sans-IO validator core driven by real blocks, real time and
//! real IO, the way `crates/sim/src/engine.rs` drives it with a virtual clock.
//!
//! One task owns the core (challenge generator, auditor, scorer, proposal verifier, weight
//! setter, RNG). Every IO — a challenge to a miner, an audit re-execution or probe against a
//! subnet, a weight or anchor extrinsic — runs in its own spawned task and reports back through
//! an [`Event`]; the loop never waits on the network while holding the core. Per block (polled
//! from the chain):
//!
//! 1. every `challenge_every_blocks`: a challenge round to a sample of miners;
//! 2. proposals whose probes are in (or whose window closes) are judged; accepted changes are
//!    appended to the Ledger replica (SQLite) and served at once by the Ledger API;
//! 3. when the subnet's epoch block passes (a new tempo), the tempo is closed: Ledger terms
//!    observed, scores written durably, weights computed and set on chain (committed, then
//!    revealed `RevealPeriodEpochs` tempos later, where the subnet enables commit-reveal);
//! 4. every `anchor_every_blocks`: the Ledger head is anchored with `Commitments.set_commitment`
//!    (recorded as `unsupported` on runtimes without that pallet).
//!
//! The scorer state is saved after every block that changed it, so a `kill -9` loses at most
//! the challenges in flight.

use super::metrics::ValidatorMetrics;
use super::store::{StateStore, WeightsRow};
use super::{OrganicAnswer, OrganicError, Settings, Status, SubnetCalls};
use crate::auth::{now_ms, now_ns, signed_headers};
use orchestra_chain::{
    Chain, ChainError, Metagraph, WeightsCommit, WeightsReveal, WeightsSubmission,
    blocks_until_next_epoch, commit_hash_v2, netuid_index,
};
use orchestra_ledger::ProbeResult;
use orchestra_ledger::server::AppState;
use orchestra_mechanism::weights::WeightLimits;
use orchestra_miner::execution::SubCallFailure;
use orchestra_protocol::btauth::{AuthHeaders, Verifier};
use orchestra_protocol::messages::{Challenge, Objective, Response};
use orchestra_protocol::ss58;
use orchestra_protocol::{Body, Hotkey};
use orchestra_validator::{
    Audit, AuditReport, Auditor, ChallengeGenerator, ChallengeOutcome, LedgerView,
    ProposalVerifier, Scorer, StepVerdict, WeightSetter, pick_miner,
};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What IO tasks and the HTTP API report to the loop.
#[derive(Debug)]
pub enum Event {
    /// A miner answered a challenge (or did not).
    Response {
        /// The job.
        job: u64,
        /// The parsed response, if any.
        response: Option<Box<Response>>,
        /// When it arrived, ms.
        received_at_ms: u64,
        /// Why there is none.
        error: Option<String>,
    },
    /// An audit re-execution finished.
    AuditResult {
        /// The job under audit.
        job: u64,
        /// The audit call.
        audit_id: u64,
        /// The subnet's answer.
        result: Result<Value, SubCallFailure>,
    },
    /// A proposal probe finished.
    Probe {
        /// The probe.
        probe_id: u64,
        /// Its result.
        result: ProbeResult,
    },
    /// A user's objective to forward (`POST /v1/objectives`).
    Organic {
        /// The objective.
        objective: Objective,
        /// The user's target schema.
        target_schema: Value,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<OrganicAnswer, OrganicError>>,
    },
    /// A weight extrinsic finished.
    WeightsDone {
        /// The submission's row (status and detail filled in).
        row: WeightsRow,
    },
    /// A weight commit finished (commit-reveal subnets): reveal it later if it landed.
    Committed {
        /// The commit's row (status and detail filled in).
        row: WeightsRow,
        /// What to reveal, and in which tempo.
        reveal: Option<(u64, WeightsReveal)>,
    },
    /// A reveal finished.
    Revealed {
        /// Its id in `validator.db`.
        id: i64,
        /// The reveal's row.
        row: WeightsRow,
    },
    /// An anchoring extrinsic finished.
    Anchored {
        /// Block of the attempt.
        block: u64,
        /// Tree size anchored.
        tree_size: u64,
        /// Root anchored, hex.
        root: String,
        /// `ok`, `unsupported` or `error`.
        status: &'static str,
        /// Transaction hash or error.
        detail: String,
    },
}

struct Job {
    uid: u16,
    hotkey: String,
    challenge: Challenge,
    block: u64,
    sent: Instant,
    organic: Option<Organic>,
    response: Option<Response>,
    audit: Option<Audit>,
}

/// A user's objective in flight: whom to answer, and what to send to another miner if the one
/// tried gives no usable response.
struct Organic {
    reply: oneshot::Sender<Result<OrganicAnswer, OrganicError>>,
    /// When the user's request arrived.
    started: Instant,
    objective: Objective,
    target_schema: Value,
    /// Miners already tried.
    tried: BTreeSet<u16>,
    /// Why the last miner tried failed.
    last_error: Option<String>,
}

/// A miner the validator can reach.
#[derive(Debug, Clone)]
struct Target {
    hotkey: String,
    url: String,
    incentive: u16,
}

/// The validator core and everything the loop owns.
pub struct Driver<C: Chain, S: SubnetCalls> {
    pub(super) settings: Settings,
    pub(super) chain: Arc<C>,
    pub(super) subnets: Arc<S>,
    pub(super) http: reqwest::Client,
    pub(super) hotkey: Arc<Hotkey>,
    pub(super) ledger: Arc<AppState>,
    pub(super) store: StateStore,
    pub(super) metrics: ValidatorMetrics,
    pub(super) status: Arc<RwLock<Status>>,
    pub(super) view: Arc<RwLock<Arc<LedgerView>>>,
    pub(super) generator: ChallengeGenerator,
    pub(super) auditor: Auditor,
    pub(super) scorer: Scorer,
    pub(super) verifier: ProposalVerifier,
    pub(super) rng: ChaCha8Rng,
    pub(super) tx: mpsc::Sender<Event>,
    pub(super) rx: mpsc::Receiver<Event>,
    pub(super) last_tempo_closed: Option<u64>,
    pub(super) last_anchor: Option<(u64, u64)>,
    response_verifier: Arc<Verifier>,
    jobs: BTreeMap<u64, Job>,
    next_job: u64,
    last_block: u64,
    next_round_block: u64,
    metagraph: Option<Metagraph>,
    metagraph_block: u64,
    tempo: u16,
    version_key: u64,
    commit_reveal: bool,
    reveal_period: u64,
    pending_reveals: Vec<(i64, u64, WeightsReveal)>,
    limits: WeightLimits,
    my_uid: Option<u16>,
    view_size: u64,
    dirty: bool,
}

fn ss58_of(account: &[u8; 32]) -> String {
    ss58::encode(account, ss58::BITTENSOR_PREFIX)
}

impl<C: Chain + Send + Sync + 'static, S: SubnetCalls> Driver<C, S> {
    /// Assemble a driver; the core parts come from [`super::build`].
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        settings: Settings,
        chain: Arc<C>,
        subnets: Arc<S>,
        hotkey: Arc<Hotkey>,
        ledger: Arc<AppState>,
        store: StateStore,
        metrics: ValidatorMetrics,
        status: Arc<RwLock<Status>>,
        view: Arc<RwLock<Arc<LedgerView>>>,
        core: (
            ChallengeGenerator,
            Auditor,
            Scorer,
            ProposalVerifier,
            ChaCha8Rng,
        ),
        channel: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    ) -> Result<Self, super::ValidatorError> {
        let (generator, auditor, scorer, verifier, rng) = core;
        let last_tempo_closed = store.last_tempo_closed()?;
        let last_anchor = store.last_anchor()?.map(|(b, s, _)| (b, s));
        let view_size = verifier.ledger().head().tree_size;
        let response_verifier = Arc::new(Verifier::new(hotkey.ss58()));
        let pending_reveals = store.pending_reveals()?;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| super::ValidatorError::Setup(format!("HTTP client: {e}")))?;
        Ok(Driver {
            settings,
            chain,
            subnets,
            http,
            hotkey,
            ledger,
            store,
            metrics,
            status,
            view,
            generator,
            auditor,
            scorer,
            verifier,
            rng,
            tx: channel.0,
            rx: channel.1,
            last_tempo_closed,
            last_anchor,
            response_verifier,
            jobs: BTreeMap::new(),
            next_job: 0,
            last_block: 0,
            next_round_block: 0,
            metagraph: None,
            metagraph_block: 0,
            tempo: 0,
            version_key: 0,
            commit_reveal: false,
            reveal_period: 1,
            pending_reveals,
            limits: WeightLimits::default(),
            my_uid: None,
            view_size,
            dirty: false,
        })
    }

    /// Run until `shutdown` resolves; the scorer state is saved on the way out.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = tick.tick() => self.on_tick().await,
                Some(ev) = self.rx.recv() => self.on_event(ev),
            }
            if self.dirty {
                self.save();
            }
        }
        self.save();
        tracing::info!("validator loop stopped; state saved");
    }

    fn save(&mut self) {
        match self.store.save_scorer(&self.scorer.state()) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::error!(error = %e, "saving the scorer state failed; will retry"),
        }
    }

    fn params(&self) -> &orchestra_mechanism::MechanismParams {
        self.scorer.params()
    }

    async fn refresh_chain_view(&mut self, block: u64) {
        let due = self.metagraph.is_none()
            || block >= self.metagraph_block + self.settings.metagraph_refresh_blocks;
        if !due {
            return;
        }
        let netuid = self.settings.netuid;
        match self.chain.hyperparams(netuid).await {
            Ok(h) => {
                self.tempo = h.tempo;
                self.version_key = self.settings.version_key.unwrap_or(h.weights_version_key);
                self.limits.min_allowed_weights = h.min_allowed_weights;
                self.limits.max_weight_limit = h.max_weights_limit;
                self.commit_reveal = h.commit_reveal_enabled == Some(true);
                self.reveal_period = h.reveal_period_epochs.unwrap_or(1).max(1);
            }
            Err(e) => {
                self.metrics.chain_error("hyperparams");
                tracing::warn!(error = %e, "reading hyperparameters failed");
                return;
            }
        }
        match self.chain.metagraph(netuid, 0).await {
            Ok(mg) => {
                let me = self.hotkey.public_key();
                let uid = mg.neuron_by_hotkey(&me).map(|n| n.uid);
                if uid.is_none() {
                    tracing::warn!(
                        hotkey = %self.hotkey.ss58(),
                        netuid,
                        "this hotkey is not registered on the subnet; weights cannot be set"
                    );
                }
                self.my_uid = uid;
                self.limits.self_uid = uid;
                self.metagraph_block = block;
                let live: Vec<u16> = mg.neurons.iter().map(|n| n.uid).collect();
                if let Some(old) = &self.metagraph {
                    // Forget uids that left (deregistered or replaced).
                    for n in &old.neurons {
                        let replaced = mg
                            .neurons
                            .get(usize::from(n.uid))
                            .is_none_or(|x| x.hotkey != n.hotkey);
                        if replaced || !live.contains(&n.uid) {
                            self.scorer.remove_miner(n.uid);
                            self.dirty = true;
                        }
                    }
                }
                self.metagraph = Some(mg);
            }
            Err(e) => {
                self.metrics.chain_error("metagraph");
                tracing::warn!(error = %e, "reading the metagraph failed");
            }
        }
    }

    /// Miners to challenge: every neuron but this one with a reachable endpoint (an override,
    /// or its axon). Validator permits are not a filter: on a small subnet Yuma hands a permit
    /// to every neuron; a validator that serves an axon simply does not answer `/orchestrate`
    /// and scores nothing.
    fn targets(&self) -> BTreeMap<u16, Target> {
        let Some(mg) = &self.metagraph else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for n in &mg.neurons {
            if Some(n.uid) == self.my_uid {
                continue;
            }
            let url = match self.settings.miners.get(&n.uid) {
                Some(u) => u.clone(),
                None => match n
                    .axon
                    .and_then(|a| a.socket_addr())
                    .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
                {
                    Some(addr) => format!("http://{addr}"),
                    None => continue,
                },
            };
            out.insert(
                n.uid,
                Target {
                    hotkey: ss58_of(&n.hotkey),
                    url,
                    incentive: n.incentive,
                },
            );
        }
        out
    }

    fn tempo_index(&self, block: u64) -> u64 {
        let period = u64::from(self.tempo) + 1;
        (block + u64::from(self.settings.netuid) + 1) / period
    }

    async fn on_tick(&mut self) {
        let block = match self.chain.current_block().await {
            Ok(b) => b,
            Err(e) => {
                self.metrics.chain_error("current_block");
                tracing::warn!(error = %e, "reading the current block failed");
                return;
            }
        };
        if block == self.last_block {
            return;
        }
        self.last_block = block;
        self.metrics.block.set(block as i64);
        self.refresh_chain_view(block).await;
        if self.metagraph.is_none() || self.tempo == 0 {
            return;
        }
        if block >= self.next_round_block {
            self.round(block);
            let every = self.settings.challenge_every_blocks.max(1);
            self.next_round_block = (block / every + 1) * every;
        }
        self.judge_proposals(block);
        let tempo = self.tempo_index(block);
        match self.last_tempo_closed {
            None => {
                // First start: the current tempo is open; it closes at the next epoch.
                if let Err(e) = self.store.set_last_tempo_closed(tempo.saturating_sub(1)) {
                    tracing::error!(error = %e, "saving the tempo schedule failed");
                }
                self.last_tempo_closed = Some(tempo.saturating_sub(1));
                tracing::info!(
                    block,
                    tempo,
                    next_epoch =
                        block + blocks_until_next_epoch(self.settings.netuid, self.tempo, block),
                    "schedule started"
                );
            }
            // Tempo `last + 1` is open until the epoch block moves the index past it; after a
            // restart across epochs the most recent finished tempo is closed at once.
            Some(last) if tempo > last + 1 => self.close_tempo(tempo - 1, block),
            Some(_) => {}
        }
        self.reveal_due(tempo, block);
        self.anchor_if_due(block);
        self.publish_status(block);
    }

    fn round(&mut self, block: u64) {
        let targets = self.targets();
        if targets.is_empty() {
            tracing::debug!(block, "no reachable miners to challenge");
            return;
        }
        let uids: Vec<u16> = targets.keys().copied().collect();
        let now = now_ms();
        let round = self.generator.round(&uids, block, now, &mut self.rng);
        tracing::info!(block, miners = round.len(), "challenge round");
        for (uid, challenge) in round {
            if let Some(t) = targets.get(&uid) {
                self.send(uid, t, challenge, block, None);
            }
        }
    }

    fn send(
        &mut self,
        uid: u16,
        target: &Target,
        challenge: Challenge,
        block: u64,
        organic: Option<Organic>,
    ) {
        let job = self.next_job;
        self.next_job += 1;
        let timeout = Duration::from_millis(
            challenge.deadline_ms + self.params().latency_grace_ms + self.settings.network_slack_ms,
        );
        let url = format!("{}/orchestrate", target.url.trim_end_matches('/'));
        let body = match serde_json::to_vec(&challenge) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "serialising a challenge failed");
                return;
            }
        };
        let started = Instant::now();
        self.jobs.insert(
            job,
            Job {
                uid,
                hotkey: target.hotkey.clone(),
                challenge,
                block,
                sent: started,
                organic,
                response: None,
                audit: None,
            },
        );
        let http = self.http.clone();
        let hotkey = self.hotkey.clone();
        let verifier = self.response_verifier.clone();
        let receiver = target.hotkey.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (response, error) =
                match post_challenge(&http, &hotkey, &verifier, &url, &receiver, body, timeout)
                    .await
                {
                    Ok(r) => (Some(Box::new(r)), None),
                    Err(e) => (None, Some(e)),
                };
            let _ = tx
                .send(Event::Response {
                    job,
                    response,
                    received_at_ms: now_ms(),
                    error,
                })
                .await;
        });
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Response {
                job,
                response,
                received_at_ms,
                error,
            } => self.on_response(job, response.map(|b| *b), received_at_ms, error),
            Event::AuditResult {
                job,
                audit_id,
                result,
            } => {
                let finished = match self.jobs.get_mut(&job).and_then(|j| j.audit.as_mut()) {
                    Some(a) => {
                        a.on_call_result(audit_id, result.map(Body::new));
                        a.is_finished()
                    }
                    None => false,
                };
                if finished {
                    self.finish(job);
                }
            }
            Event::Probe { probe_id, result } => {
                VM::count(
                    &self.metrics.probes,
                    if result.ok { "ok" } else { "failed" },
                );
                self.verifier.on_probe_result(probe_id, result);
                self.judge_proposals(self.last_block);
            }
            Event::Organic {
                objective,
                target_schema,
                reply,
            } => self.organic(objective, target_schema, reply),
            Event::WeightsDone { row } => {
                VM::count(&self.metrics.weights_set, &row.status);
                if row.status == "ok" {
                    for (u, v) in row.uids.iter().zip(&row.values) {
                        self.metrics
                            .weight
                            .get_or_create(&super::metrics::WeightLabels {
                                uid: *u,
                                mecid: row.mecid,
                            })
                            .set(i64::from(*v));
                    }
                    tracing::info!(tempo = row.tempo, mecid = row.mecid, uids = ?row.uids, values = ?row.values, tx = %row.detail, "weights set on chain");
                } else {
                    tracing::warn!(tempo = row.tempo, error = %row.detail, "setting weights failed");
                }
                if let Err(e) = self.store.record_weights(&row) {
                    tracing::error!(error = %e, "recording weights failed");
                }
                if let Ok(mut s) = self.status.write() {
                    s.weights_set += u64::from(row.status == "ok");
                    s.last_weights = Some(row);
                }
            }
            Event::Committed { row, reveal } => {
                VM::count(&self.metrics.weights_set, &row.status);
                if let Some((at, reveal)) = reveal {
                    tracing::info!(tempo = row.tempo, reveal_tempo = at, tx = %row.detail, "weights committed");
                    match self.store.add_reveal(row.tempo, at, &reveal) {
                        Ok(id) => self.pending_reveals.push((id, at, reveal)),
                        Err(e) => tracing::error!(error = %e, "saving a pending reveal failed"),
                    }
                } else {
                    tracing::warn!(tempo = row.tempo, error = %row.detail, "committing weights failed");
                }
                if let Err(e) = self.store.record_weights(&row) {
                    tracing::error!(error = %e, "recording weights failed");
                }
            }
            Event::Revealed { id, row } => {
                if let Err(e) = self.store.finish_reveal(id, &row.status, &row.detail) {
                    tracing::error!(error = %e, "recording the reveal failed");
                }
                self.on_event(Event::WeightsDone { row });
            }
            Event::Anchored {
                block,
                tree_size,
                root,
                status,
                detail,
            } => {
                VM::count(&self.metrics.anchors, status);
                match status {
                    "ok" => tracing::info!(block, tree_size, %root, "Ledger head anchored"),
                    "unsupported" => tracing::warn!(
                        block,
                        tree_size,
                        %detail,
                        "this runtime cannot anchor the Ledger head; recorded locally only"
                    ),
                    _ => tracing::warn!(block, %detail, "anchoring the Ledger head failed"),
                }
                if let Err(e) = self
                    .store
                    .record_anchor(block, tree_size, &root, status, &detail)
                {
                    tracing::error!(error = %e, "recording the anchor failed");
                }
                if let Ok(mut s) = self.status.write() {
                    s.last_anchor = Some((block, tree_size, status.to_string()));
                }
            }
        }
    }

    fn on_response(
        &mut self,
        job: u64,
        response: Option<Response>,
        received_at_ms: u64,
        error: Option<String>,
    ) {
        let view = self.current_view();
        let Some(j) = self.jobs.get_mut(&job) else {
            return;
        };
        self.metrics
            .challenge_latency
            .observe(j.sent.elapsed().as_secs_f64());
        // A response must be this challenge's, from the miner it was sent to.
        let response = match response {
            Some(r) if r.challenge_id == j.challenge.challenge_id && r.miner == j.hotkey => Some(r),
            Some(r) => {
                tracing::info!(uid = j.uid, miner = %r.miner, "response names another challenge or miner; ignored");
                None
            }
            None => {
                tracing::debug!(uid = j.uid, error = ?error, "no response");
                None
            }
        };
        let Some(r) = response else {
            if let Some(mut organic) = j.organic.take() {
                self.jobs.remove(&job);
                organic.last_error = Some(error.unwrap_or_else(|| "invalid response".into()));
                if organic.tried.len() < self.settings.organic_attempts as usize {
                    self.route_organic(organic);
                } else {
                    self.fail_organic(organic);
                }
            } else {
                self.finish_missing(job);
            }
            return;
        };
        let params = self.scorer.params().clone();
        let mut audit = self.auditor.begin(
            &j.challenge,
            &r,
            received_at_ms,
            &view,
            &params,
            &mut self.rng,
        );
        if let Some(Organic { reply, started, .. }) = j.organic.take() {
            let report = audit.report();
            let answer = OrganicAnswer {
                challenge_id: j.challenge.challenge_id.to_string(),
                miner_uid: j.uid,
                miner: r.miner.clone(),
                standardized_data: r.standardized_data.clone(),
                proof_verified: report.proof_ok() && report.replays.is_empty() && !report.late,
                latency_ms: received_at_ms.saturating_sub(j.challenge.issued_at_ms),
            };
            self.metrics
                .organic_done("ok", started.elapsed().as_secs_f64());
            let _ = reply.send(Ok(answer));
        }
        let now = now_ms();
        while let Some(call) = audit.poll_call(now) {
            let subnets = self.subnets.clone();
            let tx = self.tx.clone();
            let timeout = Duration::from_millis(call.timeout_at_ms.saturating_sub(now).max(1));
            tokio::spawn(async move {
                let result = match tokio::time::timeout(
                    timeout,
                    subnets.call(call.netuid, &call.endpoint, &call.request, timeout),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(SubCallFailure::Timeout),
                };
                let _ = tx
                    .send(Event::AuditResult {
                        job,
                        audit_id: call.audit_id,
                        result,
                    })
                    .await;
            });
        }
        let finished = audit.is_finished();
        j.response = Some(r);
        j.audit = Some(audit);
        if finished {
            self.finish(job);
        }
    }

    fn current_view(&self) -> Arc<LedgerView> {
        self.view
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn finish_missing(&mut self, job: u64) {
        let Some(j) = self.jobs.remove(&job) else {
            return;
        };
        let score = self.scorer.score_challenge(j.uid, &j.challenge, None, None);
        VM::count(&self.metrics.challenges, outcome_name(score.outcome));
        self.dirty = true;
    }

    fn finish(&mut self, job: u64) {
        let Some(mut j) = self.jobs.remove(&job) else {
            return;
        };
        let (Some(audit), Some(response)) = (j.audit.take(), j.response.take()) else {
            return;
        };
        let report: AuditReport = audit.finish();
        for s in &report.steps {
            VM::count(&self.metrics.audit_steps, verdict_name(&s.verdict));
        }
        if j.block == ORGANIC_BLOCK {
            // Organic requests are audited for the record, never scored (as in the simulator).
            return;
        }
        let score =
            self.scorer
                .score_challenge(j.uid, &j.challenge, Some(&response), Some(&report));
        VM::count(&self.metrics.challenges, outcome_name(score.outcome));
        tracing::info!(
            uid = j.uid,
            outcome = outcome_name(score.outcome),
            score = score.score,
            steps = response.pipeline.len(),
            proposals = response.ledger_proposals.len(),
            "challenge scored"
        );
        self.dirty = true;
        for p in &response.ledger_proposals {
            self.verifier
                .submit(j.uid, response.miner.clone(), p.clone(), self.last_block);
        }
        self.spawn_probes();
    }

    fn spawn_probes(&mut self) {
        while let Some(probe) = self.verifier.poll_probe() {
            let subnets = self.subnets.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let timeout = Duration::from_millis(probe.timeout_ms.max(1));
                let started = Instant::now();
                let outcome = tokio::time::timeout(
                    timeout,
                    subnets.call(probe.netuid, &probe.endpoint, &probe.request, timeout),
                )
                .await;
                let latency_ms = started.elapsed().as_millis() as u64;
                let response = match outcome {
                    Ok(Ok(v)) => Some(v),
                    _ => None,
                };
                let result = ProbeResult {
                    ok: response.is_some() && latency_ms <= probe.timeout_ms,
                    latency_ms,
                    response,
                };
                let _ = tx
                    .send(Event::Probe {
                        probe_id: probe.probe_id,
                        result,
                    })
                    .await;
            });
        }
    }

    fn judge_proposals(&mut self, block: u64) {
        if self.verifier.pending() == 0 {
            return;
        }
        let mut changes = Vec::new();
        while let Some(v) = self.verifier.poll_verdict(block) {
            let name = match v.record.map(|r| r.verdict) {
                Some(orchestra_mechanism::ledger::Verdict::First) => "first",
                Some(orchestra_mechanism::ledger::Verdict::Confirmation) => "confirmation",
                Some(orchestra_mechanism::ledger::Verdict::Rejected) => "rejected",
                None => "void",
            };
            VM::count(&self.metrics.proposals, name);
            tracing::info!(
                uid = v.uid,
                netuid = v.proposal.netuid,
                kind = v.proposal.change.name(),
                verdict = name,
                outcome = ?v.outcome,
                "Ledger proposal judged"
            );
            if let Some(record) = v.record {
                self.scorer.record_proposal(record);
                self.dirty = true;
            }
            if let Some(change) = v.change {
                changes.push(change);
            }
        }
        if changes.is_empty() {
            return;
        }
        let n = changes.len();
        match self.ledger.append_records(changes) {
            Ok(head) => {
                tracing::info!(
                    changes = n,
                    tree_size = head.head.tree_size,
                    root = %head.head.root,
                    "Ledger changes committed"
                );
                self.metrics.tree_size.set(head.head.tree_size as i64);
            }
            Err(e) => {
                // The replica and the verifier disagree (or the disk failed): resync the
                // verifier from what is durably stored.
                tracing::error!(error = %e, "committing Ledger changes failed; resyncing from the store");
                let ledger = self.ledger.with_node(|n| n.ledger().clone());
                self.verifier = ProposalVerifier::new(self.hotkey.ss58(), ledger);
            }
        }
        self.refresh_view();
    }

    fn refresh_view(&mut self) {
        let size = self.verifier.ledger().head().tree_size;
        if size != self.view_size {
            let v = Arc::new(self.verifier.view());
            match self.view.write() {
                Ok(mut w) => *w = v,
                Err(e) => *e.into_inner() = v,
            }
            self.view_size = size;
        }
    }

    fn close_tempo(&mut self, tempo: u64, block: u64) {
        let miners: Vec<u16> = self.targets().keys().copied().collect();
        self.scorer.end_tempo(&miners);
        let scores = self.scorer.scores();
        if let Err(e) = self
            .store
            .close_tempo(tempo, block, &scores, &self.scorer.state())
        {
            tracing::error!(error = %e, tempo, "writing the tempo's scores failed");
        }
        self.dirty = false;
        self.last_tempo_closed = Some(tempo);
        self.metrics.last_tempo.set(tempo as i64);
        for (uid, (o, l)) in &scores {
            let labels = super::metrics::UidLabels { uid: *uid };
            self.metrics
                .orchestration_score
                .get_or_create(&labels)
                .set(*o);
            self.metrics.ledger_score.get_or_create(&labels).set(*l);
        }
        tracing::info!(tempo, block, scores = ?scores, "tempo closed");
        let mut setter = WeightSetter::new(self.limits, 1);
        let weights = match setter.poll_weights(block, &self.scorer) {
            Ok(Some(w)) => w,
            Ok(None) => {
                VM::count(&self.metrics.weights_set, "skipped");
                tracing::info!(tempo, "no weights to set yet (nothing scores)");
                return;
            }
            Err(e) => {
                VM::count(&self.metrics.weights_set, "skipped");
                tracing::warn!(tempo, error = %e, "weights not set");
                return;
            }
        };
        if self.my_uid.is_none() {
            VM::count(&self.metrics.weights_set, "skipped");
            tracing::warn!(tempo, "not registered: weights not set");
            return;
        }
        for mw in weights.weights {
            let sub = WeightsSubmission {
                netuid: self.settings.netuid,
                mecid: mw.mechanism,
                uids: mw.uids,
                values: mw.values,
                version_key: self.version_key,
            };
            if self.commit_reveal {
                self.commit(tempo, block, sub);
                continue;
            }
            let chain = self.chain.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let result = chain.set_weights(&sub).await;
                let (status, detail) = match result {
                    Ok(o) => ("ok", format!("0x{}", hex::encode(o.tx_hash))),
                    Err(e) => ("error", e.to_string()),
                };
                let row = WeightsRow {
                    tempo,
                    block,
                    mecid: sub.mecid,
                    uids: sub.uids,
                    values: sub.values,
                    status: status.to_string(),
                    detail,
                };
                let _ = tx.send(Event::WeightsDone { row }).await;
            });
        }
    }

    /// Commit-reveal v2: commit `BlakeTwo256(SCALE(hotkey, netuid index, uids, values, salt,
    /// version key))` now, remember weights and salt durably, reveal them `reveal_period`
    /// tempos later (the chain's `RevealPeriodEpochs`).
    fn commit(&mut self, tempo: u64, block: u64, sub: WeightsSubmission) {
        let salt: Vec<u16> = (0..8).map(|_| self.rng.random::<u16>()).collect();
        let shape = self.chain.runtime_shape();
        let index = if shape.indexed_by_netuid_index {
            netuid_index(sub.netuid, sub.mecid).unwrap_or(sub.netuid)
        } else {
            sub.netuid
        };
        let hash = commit_hash_v2(
            &self.hotkey.public_key(),
            index,
            &sub.uids,
            &sub.values,
            &salt,
            sub.version_key,
        );
        let commit = WeightsCommit {
            netuid: sub.netuid,
            mecid: sub.mecid,
            hash,
        };
        let reveal_tempo = tempo + 1 + self.reveal_period;
        let chain = self.chain.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = chain.commit_weights(&commit).await;
            let (status, detail, reveal) = match result {
                Ok(o) => (
                    "committed",
                    format!("0x{}", hex::encode(o.tx_hash)),
                    Some((
                        reveal_tempo,
                        WeightsReveal {
                            weights: sub.clone(),
                            salt,
                        },
                    )),
                ),
                Err(e) => ("error", e.to_string(), None),
            };
            let row = WeightsRow {
                tempo,
                block,
                mecid: sub.mecid,
                uids: sub.uids,
                values: sub.values,
                status: status.to_string(),
                detail,
            };
            let _ = tx.send(Event::Committed { row, reveal }).await;
        });
    }

    /// Reveal every commit whose reveal tempo has come (`tempo` is the open tempo's index).
    fn reveal_due(&mut self, tempo: u64, block: u64) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_reveals)
            .into_iter()
            .partition(|(_, at, _)| *at <= tempo);
        self.pending_reveals = later;
        for (id, _, reveal) in due {
            let chain = self.chain.clone();
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let result = chain.reveal_weights(&reveal).await;
                let (status, detail) = match result {
                    Ok(o) => ("ok", format!("0x{}", hex::encode(o.tx_hash))),
                    Err(e) => ("error", e.to_string()),
                };
                let w = reveal.weights;
                let row = WeightsRow {
                    tempo,
                    block,
                    mecid: w.mecid,
                    uids: w.uids,
                    values: w.values,
                    status: status.to_string(),
                    detail,
                };
                let _ = tx.send(Event::Revealed { id, row }).await;
            });
        }
    }

    fn anchor_if_due(&mut self, block: u64) {
        let every = self.settings.anchor_every_blocks;
        if every == 0 {
            return;
        }
        let (size, root) = {
            let h = self.verifier.ledger().head();
            (h.tree_size, h.root)
        };
        let due = match self.last_anchor {
            None => true,
            Some((b, s)) => block >= b + every && s != size,
        };
        if !due || size == 0 {
            return;
        }
        self.last_anchor = Some((block, size));
        // 48 bytes: tree size ‖ block of the last record ‖ root.
        let head_block = self.verifier.ledger().head().block;
        let mut data = Vec::with_capacity(48);
        data.extend_from_slice(&size.to_be_bytes());
        data.extend_from_slice(&head_block.to_be_bytes());
        data.extend_from_slice(&root.0);
        let root_hex = root.to_string();
        let chain = self.chain.clone();
        let tx = self.tx.clone();
        let netuid = self.settings.netuid;
        tokio::spawn(async move {
            let (status, detail) = match chain.anchor_commitment(netuid, &data).await {
                Ok(o) => ("ok", format!("0x{}", hex::encode(o.tx_hash))),
                Err(e @ ChainError::MissingCall { .. }) => ("unsupported", e.to_string()),
                Err(e) => ("error", e.to_string()),
            };
            let _ = tx
                .send(Event::Anchored {
                    block,
                    tree_size: size,
                    root: root_hex,
                    status,
                    detail,
                })
                .await;
        });
    }

    fn organic(
        &mut self,
        objective: Objective,
        target_schema: Value,
        reply: oneshot::Sender<Result<OrganicAnswer, OrganicError>>,
    ) {
        self.route_organic(Organic {
            reply,
            started: Instant::now(),
            objective,
            target_schema,
            tried: BTreeSet::new(),
            last_error: None,
        });
    }

    /// Send a user's objective to a miner not tried yet, drawn by incentive (uniform before
    /// any); answer with the failure when none is left.
    fn route_organic(&mut self, mut organic: Organic) {
        if organic.reply.is_closed() {
            // The user's request already timed out (the API answered 504): nobody to answer.
            return;
        }
        let targets = self.targets();
        let candidates: Vec<(u16, u64)> = targets
            .iter()
            .map(|(&uid, t)| (uid, u64::from(t.incentive)))
            .collect();
        let picked = pick_miner(&candidates, &organic.tried, &mut self.rng)
            .and_then(|uid| targets.get(&uid).map(|t| (uid, t.clone())));
        let Some((uid, target)) = picked else {
            self.fail_organic(organic);
            return;
        };
        if !organic.tried.is_empty() {
            self.metrics.organic_retries.inc();
            tracing::info!(uid, tried = ?organic.tried, error = ?organic.last_error, "organic request: trying another miner");
        }
        organic.tried.insert(uid);
        let challenge = self.generator.organic(
            organic.objective.clone(),
            organic.target_schema.clone(),
            self.last_block,
            now_ms(),
            &mut self.rng,
        );
        self.send(uid, &target, challenge, ORGANIC_BLOCK, Some(organic));
    }

    /// Tell the user no miner answered: none reachable, or every one tried failed.
    fn fail_organic(&self, organic: Organic) {
        let seconds = organic.started.elapsed().as_secs_f64();
        let error = match organic.last_error {
            None => {
                self.metrics.organic_done("no_miners", seconds);
                OrganicError::NoMiners
            }
            Some(e) => {
                self.metrics.organic_done("miner_failed", seconds);
                OrganicError::MinerFailed(e)
            }
        };
        let _ = organic.reply.send(Err(error));
    }

    fn publish_status(&self, block: u64) {
        let scores = self.scorer.scores();
        let ema = self.scorer.ema().clone();
        let size = self.verifier.ledger().head().tree_size;
        if let Ok(mut s) = self.status.write() {
            s.block = block;
            s.uid = self.my_uid;
            s.tempo = self.tempo;
            s.last_tempo_closed = self.last_tempo_closed;
            s.scores = scores
                .into_iter()
                .map(|(uid, (o, l))| {
                    let e = ema.get(uid).copied().unwrap_or_default();
                    super::MinerStatus {
                        uid,
                        orchestration: o,
                        ledger: l,
                        observations: e.orchestration_observations,
                        strikes: e.strikes,
                    }
                })
                .collect();
            s.ledger_tree_size = size;
            s.pending_proposals = self.verifier.pending();
            s.in_flight = self.jobs.len();
        }
        self.metrics.tree_size.set(size as i64);
    }
}

/// The block organic jobs carry, so they are never scored.
const ORGANIC_BLOCK: u64 = u64::MAX - 1;

type VM = ValidatorMetrics;

fn outcome_name(o: ChallengeOutcome) -> &'static str {
    match o {
        ChallengeOutcome::Scored => "scored",
        ChallengeOutcome::Missing => "missing",
        ChallengeOutcome::Late => "late",
        ChallengeOutcome::Unverified => "unverified",
        ChallengeOutcome::Struck => "struck",
    }
}

fn verdict_name(v: &StepVerdict) -> &'static str {
    match v {
        StepVerdict::Receipted => "receipted",
        StepVerdict::Reproduced => "reproduced",
        StepVerdict::Consistent => "consistent",
        StepVerdict::HashMismatch => "hash_mismatch",
        StepVerdict::SchemaMismatch => "schema_mismatch",
        StepVerdict::StableFieldMismatch { .. } => "stable_field_mismatch",
        StepVerdict::ForgedReceipt => "forged_receipt",
        StepVerdict::BodyMissing => "body_missing",
        StepVerdict::UnknownEndpoint => "unknown_endpoint",
        StepVerdict::Inconclusive { .. } => "inconclusive",
    }
}

/// POST a challenge, btauth/1-signed for `receiver`, check that the response body is signed
/// by `receiver` for this validator (MECHANISM.md §3: the miner answers for its `root`; §4: a
/// response failing btauth/1 scores 0), and parse it.
#[allow(clippy::too_many_arguments)]
async fn post_challenge(
    http: &reqwest::Client,
    hotkey: &Hotkey,
    verifier: &Verifier,
    url: &str,
    receiver: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Response, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad miner URL {url}: {e}"))?;
    let headers = signed_headers(hotkey, "POST", &parsed, &body, Some(receiver), now_ns());
    let resp = http
        .post(parsed)
        .headers(headers)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|e| format!("reading: {e}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        return Err(format!("miner answered {status}: {text}"));
    }
    let auth = AuthHeaders::from_lookup(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    let caller = verifier
        .verify(&auth, &bytes, "POST", "/orchestrate", now_ns())
        .map_err(|e| format!("response signature: {e}"))?;
    if caller.hotkey != receiver {
        return Err(format!(
            "response signed by {} instead of the miner {receiver}",
            caller.hotkey
        ));
    }
    serde_json::from_slice::<Response>(&bytes).map_err(|e| format!("unparseable response: {e}"))
}
