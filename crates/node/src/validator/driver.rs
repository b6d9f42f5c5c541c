//! The validator's event loop: the sans-IO [`Validator`] core driven by real blocks, real time
//! and real IO, the way `crates/sim/src/engine` drives it with a virtual clock. The loop holds
//! no scoring, audit, weight or schedule logic of its own: it feeds the core what the chain and
//! the network say (`handle_*`), and carries out what the core asks for (`poll_*`).
//!
//! One task owns the core. Every IO — a challenge to a miner, an audit re-execution or probe
//! against a subnet, a weight or anchor extrinsic — runs in its own spawned task and reports
//! back through an [`Event`]; the loop never waits on the network while holding the core.
//! Extrinsics, signed by one account, go to the chain one after another in the core's order. On
//! every tick it reads the block, tells the core the block and the chain's tempo index (the
//! core decides on rounds, tempo closes, weights with commit-reveal, reveals and anchors), and
//! hands out the work that produced. Accepted Ledger changes are appended to the SQLite replica
//! and served at once by the Ledger API.
//!
//! The core's durable state is saved after every step that changed it, so a `kill -9` loses
//! at most the challenges in flight.

use super::metrics::ValidatorMetrics;
use super::store::{StateStore, WeightsRow};
use super::{OrganicAnswer, OrganicError, Settings, Status, SubnetCalls};
use crate::auth::{now_ms, now_ns, signed_headers};
use orchestra_chain::{Chain, ChainError, Metagraph, WeightsReveal, WeightsSubmission, commit_for};
use orchestra_ledger::ProbeResult;
use orchestra_ledger::server::AppState;
use orchestra_mechanism::weights::WeightLimits;
use orchestra_protocol::btauth::{AuthHeaders, Verifier};
use orchestra_protocol::messages::{Challenge, Objective, Response, SubCallFailure};
use orchestra_protocol::ss58;
use orchestra_protocol::{Body, Hotkey};
use orchestra_validator::{
    ChainInfo, ChallengeOutcome, ChallengeTransmit, LedgerView, MinerInfo, OrganicFailure,
    StepVerdict, Validator, ValidatorEvent, WeightRules, WeightsAction, WeightsDecision,
};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// What IO tasks and the HTTP API report to the loop.
#[derive(Debug)]
pub enum Event {
    /// A miner answered a challenge (or did not).
    Response {
        /// The exchange.
        job: u64,
        /// The parsed response, or why there is none.
        result: Result<Box<Response>, String>,
        /// When it arrived, ms.
        received_at_ms: u64,
    },
    /// An audit re-execution finished.
    AuditResult {
        /// The challenge under audit.
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
    Weights {
        /// The core's action id.
        id: u64,
        /// The submission's row (status and detail filled in).
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

/// Sends challenges to miners: `POST /orchestrate` over btauth/1-signed HTTP in production
/// ([`HttpMiners`]); the driver's equivalence test answers in process.
pub trait MinerCalls: Send + Sync + 'static {
    /// Send `challenge` to the miner with hotkey `hotkey` at `url`; its verified, parsed answer
    /// and when it arrived (ms), or why there is none.
    fn challenge(
        &self,
        url: &str,
        hotkey: &str,
        challenge: Arc<Challenge>,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<(Response, u64), String>> + Send;
}

/// [`MinerCalls`] over HTTP: the challenge signed for the miner, the answer checked to be
/// signed by it for this validator.
#[derive(Clone)]
pub struct HttpMiners {
    http: reqwest::Client,
    hotkey: Arc<Hotkey>,
    verifier: Arc<Verifier>,
}

impl HttpMiners {
    /// Calls signed by `hotkey`; miners' responses verified with `schemes`.
    pub fn new(
        hotkey: Arc<Hotkey>,
        schemes: orchestra_protocol::btauth::SchemeSource,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(HttpMiners {
            verifier: Arc::new(Verifier::new(hotkey.ss58()).with_schemes(schemes)),
            http,
            hotkey,
        })
    }
}

impl MinerCalls for HttpMiners {
    async fn challenge(
        &self,
        url: &str,
        hotkey: &str,
        challenge: Arc<Challenge>,
        timeout: Duration,
    ) -> Result<(Response, u64), String> {
        let body = serde_json::to_vec(&*challenge).map_err(|e| e.to_string())?;
        let url = format!("{}/orchestrate", url.trim_end_matches('/'));
        let r = post_challenge(
            &self.http,
            &self.hotkey,
            &self.verifier,
            &url,
            hotkey,
            body,
            timeout,
        )
        .await?;
        Ok((r, now_ms()))
    }
}

/// A user waiting for an answer.
struct Waiting {
    reply: oneshot::Sender<Result<OrganicAnswer, OrganicError>>,
    /// When the request arrived.
    started: Instant,
}

/// The core and everything the loop owns.
pub struct Driver<C: Chain, S: SubnetCalls, M: MinerCalls = HttpMiners> {
    pub(super) settings: Settings,
    pub(super) chain: Arc<C>,
    pub(super) subnets: Arc<S>,
    pub(super) miners: Arc<M>,
    pub(super) hotkey: Arc<Hotkey>,
    pub(super) ledger: Arc<AppState>,
    pub(super) store: StateStore,
    pub(super) metrics: ValidatorMetrics,
    pub(super) status: Arc<RwLock<Status>>,
    pub(super) view: Arc<RwLock<Arc<LedgerView>>>,
    pub(super) core: Validator,
    /// Routes users' requests (the core's own draws use its own streams).
    pub(super) rng: ChaCha8Rng,
    pub(super) tx: mpsc::Sender<Event>,
    pub(super) rx: mpsc::Receiver<Event>,
    /// Miner URLs by uid, from the metagraph's axons and `--miner` overrides.
    urls: BTreeMap<u16, String>,
    /// When each challenge in flight was sent.
    sent: BTreeMap<u64, Instant>,
    /// Users waiting, by request.
    waiting: BTreeMap<u64, Waiting>,
    /// Where each challenge carrying a user's request goes, by job.
    organic_jobs: BTreeMap<u64, u64>,
    last_block: u64,
    metagraph: Option<Metagraph>,
    metagraph_block: u64,
    tempo: u16,
    version_key: u64,
    /// The last save failed: try again after the next step.
    unsaved: bool,
    /// Block at which the subnets' hotkeys were last read.
    subnet_keys_block: Option<u64>,
    /// The last extrinsic submitted: the next one waits for it (see [`Driver::submit_in_order`]).
    last_extrinsic: Option<tokio::task::JoinHandle<()>>,
}

/// Blocks between reads of the hotkeys of the subnets in the Ledger (whose receipts exempt a
/// step from audit): metagraphs change slowly and there are many subnets.
const SUBNET_KEYS_EVERY_BLOCKS: u64 = 100;

fn ss58_of(account: &[u8; 32]) -> String {
    ss58::encode(account, ss58::BITTENSOR_PREFIX)
}

impl<C: Chain + Send + Sync + 'static, S: SubnetCalls, M: MinerCalls> Driver<C, S, M> {
    /// Assemble a driver around `core` (built and restored by [`super::serve`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        settings: Settings,
        chain: Arc<C>,
        subnets: Arc<S>,
        miners: Arc<M>,
        hotkey: Arc<Hotkey>,
        ledger: Arc<AppState>,
        store: StateStore,
        metrics: ValidatorMetrics,
        status: Arc<RwLock<Status>>,
        view: Arc<RwLock<Arc<LedgerView>>>,
        core: Validator,
        rng: ChaCha8Rng,
        channel: (mpsc::Sender<Event>, mpsc::Receiver<Event>),
    ) -> Self {
        Driver {
            settings,
            chain,
            subnets,
            miners,
            hotkey,
            ledger,
            store,
            metrics,
            status,
            view,
            core,
            rng,
            tx: channel.0,
            rx: channel.1,
            urls: BTreeMap::new(),
            sent: BTreeMap::new(),
            waiting: BTreeMap::new(),
            organic_jobs: BTreeMap::new(),
            last_block: 0,
            metagraph: None,
            metagraph_block: 0,
            tempo: 0,
            version_key: 0,
            unsaved: false,
            subnet_keys_block: None,
            last_extrinsic: None,
        }
    }

    /// Run until `shutdown` resolves; the core's state is saved on the way out.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.settings.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                // A tick may wait on a chain that has gone (each read retries for seconds):
                // shutdown must not queue behind it. Every core input is synchronous, so a tick
                // dropped between two awaits leaves the core consistent.
                _ = tick.tick() => tokio::select! {
                    () = &mut shutdown => break,
                    () = self.on_tick() => {}
                },
                Some(ev) = self.rx.recv() => self.on_event(ev),
            }
            self.pump();
            if self.core.take_dirty() || self.unsaved {
                self.save();
            }
        }
        self.save();
        tracing::info!("validator loop stopped; state saved");
    }

    fn save(&mut self) {
        self.unsaved = match self.store.save_state(&self.core.state()) {
            Ok(()) => false,
            Err(e) => {
                tracing::error!(error = %e, "saving the validator state failed; will retry");
                true
            }
        };
    }

    async fn refresh_chain_view(&mut self, block: u64) {
        let due = self.metagraph.is_none()
            || block >= self.metagraph_block + self.settings.metagraph_refresh_blocks;
        if !due {
            return;
        }
        let netuid = self.settings.netuid;
        let h = match self.chain.hyperparams(netuid).await {
            Ok(h) => h,
            Err(e) => {
                self.metrics.chain_error("hyperparams");
                tracing::warn!(error = %e, "reading hyperparameters failed");
                return;
            }
        };
        self.version_key = self.settings.version_key.unwrap_or(h.weights_version_key);
        let mg = match self.chain.metagraph(netuid, 0).await {
            Ok(mg) => mg,
            Err(e) => {
                self.metrics.chain_error("metagraph");
                tracing::warn!(error = %e, "reading the metagraph failed");
                return;
            }
        };
        let me = self.hotkey.public_key();
        let my_uid = mg.neuron_by_hotkey(&me).map(|n| n.uid);
        if my_uid.is_none() {
            tracing::warn!(
                hotkey = %self.hotkey.ss58(),
                netuid,
                "this hotkey is not registered on the subnet; weights cannot be set"
            );
        }
        // Miners to challenge: every neuron but this one with a reachable endpoint (an
        // override, or its axon). Validator permits are not a filter: on a small subnet Yuma
        // hands a permit to every neuron; a validator that serves an axon simply does not
        // answer `/orchestrate` and scores nothing.
        let mut urls = BTreeMap::new();
        let mut miners = Vec::new();
        for n in &mg.neurons {
            if Some(n.uid) == my_uid {
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
            urls.insert(n.uid, url);
            miners.push(MinerInfo {
                uid: n.uid,
                hotkey: ss58_of(&n.hotkey),
                coldkey: n.coldkey.as_ref().map(ss58_of),
                incentive: u64::from(n.incentive),
            });
        }
        let width = mg.neurons.iter().map(|n| usize::from(n.uid) + 1).max();
        let mut consensus = vec![0u16; width.unwrap_or(0)];
        for n in &mg.neurons {
            consensus[usize::from(n.uid)] = n.consensus;
        }
        self.core.handle_chain(ChainInfo {
            miners,
            my_uid,
            limits: WeightLimits {
                self_uid: my_uid,
                min_allowed_weights: h.min_allowed_weights,
                max_weight_limit: h.max_weights_limit,
            },
            rules: WeightRules {
                commit_reveal: h.commit_reveal_enabled == Some(true),
                reveal_period: h.reveal_period_epochs.unwrap_or(1).max(1),
                // The runtime's `CommitRevealWeightsVersion` chooses v4 (timelocked) or v2.
                timelocked: h.commit_reveal_version.is_some_and(|v| v >= 4)
                    && self.chain.runtime_shape().has_timelocked_commits,
            },
            consensus: vec![consensus],
        });
        self.urls = urls;
        self.metagraph_block = block;
        self.metagraph = Some(mg);
        self.refresh_subnet_keys(block).await;
    }

    /// Read the hotkeys of every subnet in the Ledger replica, so that receipts they sign
    /// exempt steps from audit (docs/mechanism.md §3 check 5). A subnet the chain does not know
    /// (a devnet's mock subnets) keeps no keys: its receipts exempt nothing.
    async fn refresh_subnet_keys(&mut self, block: u64) {
        if self
            .subnet_keys_block
            .is_some_and(|b| block < b + SUBNET_KEYS_EVERY_BLOCKS)
        {
            return;
        }
        self.subnet_keys_block = Some(block);
        let netuids: Vec<u16> = self.core.ledger_state().entries.keys().copied().collect();
        for netuid in netuids {
            let keys = match self.chain.metagraph(netuid, 0).await {
                Ok(mg) => mg.neurons.iter().map(|n| ss58_of(&n.hotkey)).collect(),
                Err(e) if e.is_transient() => {
                    // The chain is unreachable, not the subnet unknown: keep the keys already
                    // read and retry at the next metagraph refresh, not once per subnet now.
                    self.metrics.chain_error("metagraph");
                    tracing::warn!(netuid, error = %e, "reading a Ledger subnet's hotkeys failed");
                    self.subnet_keys_block = None;
                    return;
                }
                Err(e) => {
                    tracing::debug!(netuid, error = %e, "no metagraph for a Ledger subnet");
                    Default::default()
                }
            };
            self.core.set_subnet_hotkeys(netuid, keys);
        }
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
        let now = now_ms();
        self.core.handle_timeout(now, &mut self.rng);
        if block == self.last_block {
            return;
        }
        self.last_block = block;
        self.metrics.block.set(block as i64);
        self.refresh_chain_view(block).await;
        if self.metagraph.is_none() {
            return;
        }
        // The chain says which epoch it is in: the legacy modulo rule, or spec 459's stateful
        // scheduler, where an owner's `set_tempo` or `trigger_epoch` moves epochs.
        let schedule = match self.chain.tempo_schedule(self.settings.netuid).await {
            Ok(s) => s,
            Err(e) => {
                self.metrics.chain_error("tempo_schedule");
                tracing::warn!(error = %e, "reading the epoch schedule failed");
                return;
            }
        };
        self.tempo = schedule.tempo;
        if self.tempo == 0 {
            return;
        }
        if self.core.open_tempo().is_none() {
            tracing::info!(
                block,
                tempo = schedule.epoch_index,
                next_epoch = schedule.next_epoch_block,
                stateful = schedule.stateful,
                "schedule started"
            );
        }
        self.core.handle_block(block, now);
        self.core.handle_tempo(schedule.epoch_index, block, now);
        self.publish_status(block);
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Response {
                job,
                result,
                received_at_ms,
            } => {
                if let Some(sent) = self.sent.remove(&job) {
                    self.metrics
                        .challenge_latency
                        .observe(sent.elapsed().as_secs_f64());
                }
                // A user who has gone (the API already answered 504) gets no further miner.
                if let Some(&request) = self.organic_jobs.get(&job)
                    && self
                        .waiting
                        .get(&request)
                        .is_none_or(|w| w.reply.is_closed())
                {
                    self.core.cancel_organic(request);
                }
                self.organic_jobs.remove(&job);
                if let Err(e) = &result {
                    tracing::debug!(job, error = %e, "no usable response");
                }
                self.core
                    .handle_response(job, result.map(|b| *b), received_at_ms, &mut self.rng);
            }
            Event::AuditResult {
                job,
                audit_id,
                result,
            } => self
                .core
                .handle_audit_result(job, audit_id, result.map(Body::new)),
            Event::Probe { probe_id, result } => {
                VM::count(
                    &self.metrics.probes,
                    if result.ok { "ok" } else { "failed" },
                );
                self.core.handle_probe_result(probe_id, result);
            }
            Event::Organic {
                objective,
                target_schema,
                reply,
            } => {
                let request = self.core.handle_organic(
                    objective,
                    target_schema,
                    self.last_block,
                    now_ms(),
                    &mut self.rng,
                );
                self.waiting.insert(
                    request,
                    Waiting {
                        reply,
                        started: Instant::now(),
                    },
                );
            }
            Event::Weights { id, row } => self.on_weights(id, row),
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

    fn on_weights(&mut self, id: u64, row: WeightsRow) {
        let ok = row.status == "ok" || row.status == "committed";
        self.core.handle_weights_result(id, ok);
        VM::count(&self.metrics.weights_set, &row.status);
        match row.status.as_str() {
            "ok" => {
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
            }
            "committed" => {
                tracing::info!(tempo = row.tempo, tx = %row.detail, "weights committed")
            }
            _ => tracing::warn!(tempo = row.tempo, error = %row.detail, "weight extrinsic failed"),
        }
        if let Err(e) = self.store.record_weights(&row) {
            tracing::error!(error = %e, "recording weights failed");
        }
        if row.status == "ok"
            && let Ok(mut s) = self.status.write()
        {
            s.weights_set += 1;
            s.last_weights = Some(row);
        }
    }

    /// Carry out everything the core asks for.
    fn pump(&mut self) {
        while let Some(t) = self.core.poll_challenge() {
            self.send(t);
        }
        while let Some(a) = self.core.poll_audit(now_ms()) {
            let subnets = self.subnets.clone();
            let tx = self.tx.clone();
            let timeout =
                Duration::from_millis(a.call.timeout_at_ms.saturating_sub(now_ms()).max(1));
            tokio::spawn(async move {
                let call = a.call;
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
                        job: a.job,
                        audit_id: call.audit_id,
                        result,
                    })
                    .await;
            });
        }
        while let Some(probe) = self.core.poll_probe() {
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
        self.commit_verdicts();
        while let Some(action) = self.core.poll_weights() {
            self.submit_weights(action);
        }
        while let Some(a) = self.core.poll_anchor() {
            let chain = self.chain.clone();
            let tx = self.tx.clone();
            let netuid = self.settings.netuid;
            self.submit_in_order(async move {
                let (status, detail) = match chain.anchor_commitment(netuid, &a.data).await {
                    Ok(o) => ("ok", format!("0x{}", hex::encode(o.tx_hash))),
                    Err(e @ ChainError::MissingCall { .. }) => ("unsupported", e.to_string()),
                    Err(e) => ("error", e.to_string()),
                };
                let _ = tx
                    .send(Event::Anchored {
                        block: a.block,
                        tree_size: a.tree_size,
                        root: a.root.to_string(),
                        status,
                        detail,
                    })
                    .await;
            });
        }
        while let Some(event) = self.core.poll_event() {
            self.on_core_event(event);
        }
    }

    fn send(&mut self, t: ChallengeTransmit) {
        let Some(url) = self.urls.get(&t.uid) else {
            // The miner left the metagraph between the round and now.
            self.core.handle_response(
                t.job,
                Err(format!("no endpoint for uid {}", t.uid)),
                now_ms(),
                &mut self.rng,
            );
            return;
        };
        let url = url.clone();
        if let Some(request) = t.organic {
            self.organic_jobs.insert(t.job, request);
        }
        self.sent.insert(t.job, Instant::now());
        let miners = self.miners.clone();
        let tx = self.tx.clone();
        let timeout = Duration::from_millis(t.timeout_ms);
        tokio::spawn(async move {
            let (result, received_at_ms) = match miners
                .challenge(&url, &t.hotkey, t.challenge, timeout)
                .await
            {
                Ok((r, at)) => (Ok(Box::new(r)), at),
                Err(e) => (Err(e), now_ms()),
            };
            let _ = tx
                .send(Event::Response {
                    job: t.job,
                    result,
                    received_at_ms,
                })
                .await;
        });
    }

    /// Append the changes of judged proposals to the durable replica (served at once by the
    /// Ledger API) and rebuild the audit view.
    fn commit_verdicts(&mut self) {
        let mut changes = Vec::new();
        while let Some(v) = self.core.poll_verdict() {
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
                // The replica and the core disagree (or the disk failed): resync the core
                // from what is durably stored.
                tracing::error!(error = %e, "committing Ledger changes failed; resyncing from the store");
                let ledger = self.ledger.with_node(|n| n.ledger().clone());
                self.core.resync_ledger(ledger);
            }
        }
        if self.core.refresh_view() {
            let v = self.core.view().clone();
            match self.view.write() {
                Ok(mut w) => *w = v,
                Err(e) => *e.into_inner() = v,
            }
        }
    }

    fn submission(&self, w: &orchestra_mechanism::combine::MechanismWeights) -> WeightsSubmission {
        WeightsSubmission {
            netuid: self.settings.netuid,
            mecid: w.mechanism,
            uids: w.uids.clone(),
            values: w.values.clone(),
            version_key: self.version_key,
        }
    }

    /// Run `submit` (one extrinsic and its report) once every extrinsic handed out before it
    /// has finished. Extrinsics are signed by one account, so they must reach the chain in the
    /// order the core asked for them: a reveal and the next commit in one block would otherwise
    /// race (and two in-flight submissions could take the same account nonce).
    fn submit_in_order(&mut self, submit: impl Future<Output = ()> + Send + 'static) {
        let previous = self.last_extrinsic.take();
        self.last_extrinsic = Some(tokio::spawn(async move {
            if let Some(p) = previous {
                // A panicked predecessor must not stop the queue.
                let _ = p.await;
            }
            submit.await;
        }));
    }

    /// Submit one weight extrinsic: set, commit (commit-reveal v2: `BlakeTwo256(SCALE(hotkey,
    /// netuid index, uids, values, salt, version key))`) or reveal.
    fn submit_weights(&mut self, action: WeightsAction) {
        let id = action.id();
        let sub = self.submission(action.weights());
        let block = self.last_block;
        let chain = self.chain.clone();
        let tx = self.tx.clone();
        let (tempo, call) = match &action {
            WeightsAction::Set { tempo, .. } => (*tempo, Call::Set(sub.clone())),
            WeightsAction::Commit { tempo, salt, .. } => {
                let reveal = WeightsReveal {
                    weights: sub.clone(),
                    salt: salt.clone(),
                };
                let indexed = self.chain.runtime_shape().indexed_by_netuid_index;
                (
                    *tempo,
                    Call::Commit(commit_for(&self.hotkey.public_key(), &reveal, indexed)),
                )
            }
            WeightsAction::Reveal { tempo, salt, .. } => (
                *tempo,
                Call::Reveal(WeightsReveal {
                    weights: sub.clone(),
                    salt: salt.clone(),
                }),
            ),
            WeightsAction::CommitTimelocked { tempo, .. } => (
                *tempo,
                Call::CommitTimelocked {
                    weights: sub.clone(),
                    hotkey: self.hotkey.public_key(),
                    reveal_period: self.core.weight_rules().reveal_period,
                    beacon: Box::new(self.settings.drand.clone()),
                },
            ),
        };
        self.submit_in_order(async move {
            let (result, done, round) = match &call {
                Call::Set(s) => (chain.set_weights(s).await, "ok", None),
                Call::Commit(c) => (chain.commit_weights(c).await, "committed", None),
                Call::Reveal(r) => (chain.reveal_weights(r).await, "ok", None),
                Call::CommitTimelocked {
                    weights,
                    hotkey,
                    reveal_period,
                    beacon,
                } => match commit_timelocked(&*chain, beacon, weights, *hotkey, *reveal_period)
                    .await
                {
                    Ok((o, round)) => (Ok(o), "committed", Some(round)),
                    Err(e) => (Err(e), "committed", None),
                },
            };
            let (status, detail) = match result {
                Ok(o) => (
                    done,
                    match round {
                        // The chain reveals it itself once drand publishes the round.
                        Some(r) => format!(
                            "0x{} (timelocked to drand round {r})",
                            hex::encode(o.tx_hash)
                        ),
                        None => format!("0x{}", hex::encode(o.tx_hash)),
                    },
                ),
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
            let _ = tx.send(Event::Weights { id, row }).await;
        });
    }

    fn on_core_event(&mut self, event: ValidatorEvent) {
        match event {
            ValidatorEvent::Scored(s) => {
                VM::count(&self.metrics.challenges, outcome_name(s.score.outcome));
                if let Some(report) = &s.report {
                    for step in &report.steps {
                        VM::count(&self.metrics.audit_steps, verdict_name(&step.verdict));
                    }
                }
                tracing::info!(
                    uid = s.uid,
                    outcome = outcome_name(s.score.outcome),
                    score = s.score.score,
                    steps = s.steps,
                    proposals = s.proposals,
                    "challenge scored"
                );
            }
            ValidatorEvent::OrganicAnswered {
                request,
                challenge_id,
                uid,
                miner,
                standardized_data,
                proof_verified,
                proof,
                pipeline,
                latency_ms,
            } => {
                if let Some(w) = self.waiting.remove(&request) {
                    self.metrics
                        .organic_done("ok", w.started.elapsed().as_secs_f64());
                    let _ = w.reply.send(Ok(OrganicAnswer {
                        challenge_id: challenge_id.to_string(),
                        miner_uid: uid,
                        miner,
                        standardized_data,
                        proof_verified,
                        proof,
                        pipeline,
                        latency_ms,
                    }));
                }
            }
            ValidatorEvent::OrganicAudited {
                uid,
                quality,
                report,
                ..
            } => {
                for step in &report.steps {
                    VM::count(&self.metrics.audit_steps, verdict_name(&step.verdict));
                }
                tracing::info!(uid, quality, "organic answer audited");
            }
            ValidatorEvent::OrganicRetry {
                request,
                tried,
                error,
            } => {
                self.metrics.organic_retries.inc();
                tracing::info!(request, tried, %error, "organic request: trying another miner");
            }
            ValidatorEvent::OrganicFailed { request, error } => {
                if let Some(w) = self.waiting.remove(&request) {
                    let seconds = w.started.elapsed().as_secs_f64();
                    let error = match error {
                        OrganicFailure::NoMiners => {
                            self.metrics.organic_done("no_miners", seconds);
                            OrganicError::NoMiners
                        }
                        OrganicFailure::MinerFailed(e) => {
                            self.metrics.organic_done("miner_failed", seconds);
                            OrganicError::MinerFailed(e)
                        }
                    };
                    let _ = w.reply.send(Err(error));
                }
            }
            ValidatorEvent::TempoClosed {
                tempo,
                block,
                scores,
                weights,
            } => {
                if let Err(e) = self
                    .store
                    .close_tempo(tempo, block, &scores, &self.core.state())
                {
                    tracing::error!(error = %e, tempo, "writing the tempo's scores failed");
                }
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
                match weights {
                    WeightsDecision::Queued { vectors } => {
                        tracing::info!(tempo, vectors, "weights queued")
                    }
                    WeightsDecision::Skipped => {
                        VM::count(&self.metrics.weights_set, "skipped");
                        tracing::info!(tempo, "no weights to set yet (nothing scores)");
                    }
                    WeightsDecision::NotRegistered => {
                        VM::count(&self.metrics.weights_set, "skipped");
                        tracing::warn!(tempo, "not registered: weights not set");
                    }
                    WeightsDecision::Invalid(e) => {
                        VM::count(&self.metrics.weights_set, "skipped");
                        tracing::warn!(tempo, error = %e, "weights not set");
                    }
                }
            }
        }
    }

    fn publish_status(&self, block: u64) {
        let scores = self.core.scores();
        let ema = self.core.scorer().ema();
        let size = self.core.ledger().head().tree_size;
        if let Ok(mut s) = self.status.write() {
            s.block = block;
            s.uid = self.core.chain().my_uid;
            s.tempo = self.tempo;
            s.last_tempo_closed = self.core.open_tempo().and_then(|t| t.checked_sub(1));
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
            s.pending_proposals = self.core.pending_proposals();
            s.in_flight = self.core.in_flight();
        }
        self.metrics.tree_size.set(size as i64);
    }
}

#[cfg(test)]
impl<C: Chain + Send + Sync + 'static, S: SubnetCalls, M: MinerCalls> Driver<C, S, M> {
    /// One tick of the loop: read the block, feed the core, hand out its work.
    pub(super) async fn step_block(&mut self) {
        self.on_tick().await;
        self.pump();
    }

    /// Process IO results until nothing is in flight and the loop has been quiet for a while.
    pub(super) async fn settle(&mut self) {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            match tokio::time::timeout(Duration::from_millis(200), self.rx.recv()).await {
                Ok(Some(ev)) => {
                    self.on_event(ev);
                    self.pump();
                }
                _ if self.core.in_flight() == 0 => return,
                _ => assert!(Instant::now() < give_up, "IO did not settle in 60 s"),
            }
        }
    }
}

/// A weight extrinsic about to be submitted.
enum Call {
    Set(WeightsSubmission),
    Commit(orchestra_chain::WeightsCommit),
    Reveal(WeightsReveal),
    CommitTimelocked {
        weights: WeightsSubmission,
        hotkey: orchestra_chain::AccountId,
        reveal_period: u64,
        // Boxed: a G2 point is large next to the other variants.
        beacon: Box<orchestra_chain::crv4::Beacon>,
    },
}

/// Seconds per block the reveal round is predicted with (Bittensor's 12 s; the SDK measures it).
const BLOCK_TIME_S: f64 = 12.0;

/// Commit-reveal v4 as the SDK's `_build_timelocked` does it: read the epoch schedule, predict
/// the block whose reveal pass opens the commit, encrypt the weights to the drand quicknet round
/// due [`orchestra_chain::crv4::SECURITY_BLOCK_OFFSET`] blocks after it (from the OS's entropy),
/// and submit. Returns the outcome and the round.
async fn commit_timelocked<C: Chain>(
    chain: &C,
    beacon: &orchestra_chain::crv4::Beacon,
    w: &WeightsSubmission,
    hotkey: orchestra_chain::AccountId,
    reveal_period: u64,
) -> Result<(orchestra_chain::TxOutcome, u64), ChainError> {
    use orchestra_chain::crv4;
    let schedule = chain.tempo_schedule(w.netuid).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let round = crv4::reveal_round(
        schedule.crv4_state(),
        schedule.block,
        reveal_period,
        BLOCK_TIME_S,
        now,
    )
    .ok_or_else(|| {
        ChainError::Unsupported(format!(
            "no reveal block within {} tempos of block {}",
            crv4::MAX_TEMPO,
            schedule.block
        ))
    })?;
    let payload = crv4::WeightsTlockPayload {
        hotkey: hotkey.to_vec(),
        uids: w.uids.clone(),
        values: w.values.clone(),
        version_key: w.version_key,
    };
    let commit = crv4::encrypt(beacon, &payload.to_bytes(), round, crv4::fresh_seed())
        .map_err(|e| ChainError::Unsupported(e.to_string()))?;
    let outcome = chain
        .commit_timelocked_weights(&orchestra_chain::TimelockedCommit {
            netuid: w.netuid,
            mecid: w.mecid,
            commit,
            reveal_round: round,
            commit_reveal_version: crv4::COMMIT_REVEAL_VERSION,
        })
        .await?;
    Ok((outcome, round))
}

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
        StepVerdict::Disagrees { .. } => "disagrees",
        StepVerdict::ForgedReceipt => "forged_receipt",
        StepVerdict::BodyMissing => "body_missing",
        StepVerdict::UnknownEndpoint => "unknown_endpoint",
        StepVerdict::NonceMismatch { .. } => "nonce_mismatch",
        StepVerdict::Inconclusive { .. } => "inconclusive",
    }
}

/// POST a challenge, btauth/1-signed for `receiver`, check that the response body is signed
/// by `receiver` for this validator (docs/mechanism.md §3: the miner answers for its `root`; §4: a
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
