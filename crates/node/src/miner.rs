//! The miner server behind `orchestra-miner`: a tokio/axum shell around the sans-IO miner core
//! ([`orchestra_miner::Miner`]).
//!
//! | route | auth | what |
//! |---|---|---|
//! | `POST /orchestrate` | btauth/1, validator permit | body: a [`Challenge`] (synthetic or a forwarded organic request); answer: the [`Response`] with its hash-locked proof and the Ledger proposals the detector made (MECHANISM.md §2, §5: proposals ride in the response) |
//! | `GET /ledger/proposals` | btauth/1, validator permit | the most recent proposals this miner made, newest last (`?since_ms=` filters) |
//! | `GET /healthz` | none | hotkey, strategy, Ledger entries known, requests in flight |
//! | `GET /metrics` | none | Prometheus (see the table below) |
//!
//! `POST /orchestrate` answers:
//! - 200 with the response JSON, itself signed: `X-Bittensor-*` headers hold a btauth/1
//!   signature of the response body by the miner's hotkey, addressed to the calling validator
//!   (method `POST`, target `/orchestrate`), so the miner is accountable for `root`;
//! - 204 when the strategy declines;
//! - 400 for a body that is not a challenge, or whose `validator` is not the signing hotkey
//!   (the proof's lock binds that hotkey);
//! - 422 when the challenge's deadline has already passed;
//! - 503 with `Retry-After` when `max_concurrency` requests are already being answered (a
//!   semaphore `try_acquire`: nothing queues; checked before authentication, so shedding costs
//!   no signature check);
//! - 504 when the answer is not ready by the deadline plus one second, or by
//!   `request_timeout_ms`, whichever is sooner;
//! - 401/403/421/413 from [`crate::auth`].
//!
//! Execution: the core plans and decides; this shell sends every sub-call the core releases at
//! once (so independent DAG branches run in parallel), feeds results back as they arrive, and
//! wakes the core at the times it asks for. Sub-calls go to subnets over HTTP
//! ([`crate::subnet_client`]); where each subnet lives comes from `--subnet NETUID=URL`
//! mappings or a multi-subnet mock base URL (`--subnets-url`), and endpoint paths from the
//! Ledger view (a Ledger API or the mock files).
//!
//! Metrics (besides the HTTP ones of [`crate::metrics`]):
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `orchestra_miner_requests_total` | counter | `outcome` (`ok`, `declined`, `shed`, `invalid`, `late`, `timeout`, `error`) | `/orchestrate` requests by outcome |
//! | `orchestra_miner_answer_duration_seconds` | histogram | — | time to answer a challenge |
//! | `orchestra_miner_in_flight` | gauge | — | challenges being answered |
//! | `orchestra_miner_subcalls_total` | counter | `netuid`, `outcome` (`ok`, `timeout`, `unavailable`, `rejected`) | sub-calls sent to subnets |
//! | `orchestra_miner_subcall_duration_seconds` | histogram | `netuid` | sub-call latency |
//! | `orchestra_miner_subcall_cost_rao_total` | counter | — | rao spent on successful sub-calls |
//! | `orchestra_miner_proposals_total` | counter | `kind` | Ledger proposals made |
//! | `orchestra_miner_ledger_entries` | gauge | — | entries in the miner's Ledger view |

use crate::auth::{RequestAuth, json_error, now_ms, now_ns, require_btauth, signed_headers};
use crate::metrics::{self, LatencyFamily, Metrics, latency_family, latency_histogram};
use crate::subnet_client::{SubnetClient, SubnetDirectory};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_miner::{LedgerView, Miner, MinerConfig, Planner, SubCall, SubCallFailure};
use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth::Caller;
use orchestra_protocol::ledger::{Entry, Proposal};
use orchestra_protocol::messages::{Challenge, Response as MinerResponse};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// The protocol's answer to a challenge (`Response` in this module is axum's).
pub type Answer = MinerResponse;

/// The objective templates shipped in `mocks/objectives/`, embedded so the binary needs no data
/// directory.
pub const EMBEDDED_OBJECTIVES: &[(&str, &str)] = &[
    (
        "competitive_analysis.toml",
        include_str!("../../../mocks/objectives/competitive_analysis.toml"),
    ),
    (
        "data_aggregation.toml",
        include_str!("../../../mocks/objectives/data_aggregation.toml"),
    ),
    (
        "market_research.toml",
        include_str!("../../../mocks/objectives/market_research.toml"),
    ),
];

/// The `[miner]` table of a node file (every key optional); flags of the same name override it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinerSettings {
    /// Challenges answered at once; more get 503 + `Retry-After` (default 16).
    pub max_concurrency: usize,
    /// `Retry-After` seconds on a 503 (default 1).
    pub retry_after_s: u64,
    /// Hard cap on one answer, ms, whatever the challenge's deadline (default 60 000).
    pub request_timeout_ms: u64,
    /// Strategy name from `orchestra-adversaries` (default `honest`; `fabricator`, … start a
    /// misbehaving miner for tests and devnets).
    pub strategy: String,
    /// The strategy's parameters (as a scenario's `params`).
    pub strategy_params: toml::Table,
    /// Seed of the strategy's and the core's random streams (default: drawn at start).
    pub seed: Option<u64>,
    /// `NETUID=URL` of each subnet's endpoint base.
    pub subnets: Vec<String>,
    /// A multi-subnet `orchestra-mock-subnet` base URL: subnet N is at `<URL>/sn/N` unless
    /// mapped in `subnets`.
    pub subnets_url: Option<String>,
    /// Build the Ledger view from these mock subnet files (static; for devnets and tests).
    pub mocks: Option<PathBuf>,
    /// Read the Ledger view from this Ledger API (e.g. a validator's), refreshed every
    /// `ledger_refresh_s`.
    pub ledger_url: Option<String>,
    /// API key for `ledger_url` (`Authorization: Bearer`); without it requests are btauth/1
    /// signed for `ledger_hotkey`.
    pub ledger_api_key: Option<String>,
    /// ss58 of the Ledger API's hotkey (the btauth/1 receiver).
    pub ledger_hotkey: Option<String>,
    /// Seconds between Ledger refreshes (default 30).
    pub ledger_refresh_s: u64,
    /// Extra objective templates (`*.toml`) on top of the embedded ones.
    pub objectives: Option<PathBuf>,
    /// Accept only callers holding a validator permit in the metagraph (default true).
    pub permit_check: bool,
    /// Hotkeys (ss58) accepted whatever the metagraph says.
    pub allow_validators: Vec<String>,
    /// Seconds between metagraph refreshes of the permit set (default 60).
    pub permit_refresh_s: u64,
    /// Do not connect to the chain (permits only from `allow_validators`, no `serve_axon`).
    pub offline: bool,
    /// Publish this node's endpoint with `serve_axon` at start.
    pub serve_axon: bool,
    /// IP to publish with `serve_axon` (required with it).
    pub external_ip: Option<IpAddr>,
    /// Port to publish (default: the listening port).
    pub external_port: Option<u16>,
    /// Recent proposals kept for `GET /ledger/proposals` (default 256).
    pub proposals_kept: usize,
    /// The miner core's router, execution and detector settings.
    pub core: MinerConfig,
}

impl Default for MinerSettings {
    fn default() -> Self {
        MinerSettings {
            max_concurrency: 16,
            retry_after_s: 1,
            request_timeout_ms: 60_000,
            strategy: "honest".to_string(),
            strategy_params: toml::Table::new(),
            seed: None,
            subnets: Vec::new(),
            subnets_url: None,
            mocks: None,
            ledger_url: None,
            ledger_api_key: None,
            ledger_hotkey: None,
            ledger_refresh_s: 30,
            objectives: None,
            permit_check: true,
            allow_validators: Vec::new(),
            permit_refresh_s: 60,
            offline: false,
            serve_axon: false,
            external_ip: None,
            external_port: None,
            proposals_kept: 256,
            core: MinerConfig::default(),
        }
    }
}

/// Load the embedded templates plus every `*.toml` in `extra`.
pub fn load_templates(extra: Option<&Path>) -> anyhow::Result<Vec<ObjectiveTemplate>> {
    let mut out = Vec::new();
    for (name, text) in EMBEDDED_OBJECTIVES {
        out.push(
            ObjectiveTemplate::from_toml_str(text)
                .map_err(|e| anyhow::anyhow!("embedded objective {name}: {e}"))?,
        );
    }
    if let Some(dir) = extra {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?;
            let t = ObjectiveTemplate::from_toml_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
            out.retain(|o: &ObjectiveTemplate| o.kind != t.kind);
            out.push(t);
        }
    }
    Ok(out)
}

/// How to authenticate to a Ledger API.
#[derive(Debug, Clone)]
pub enum LedgerAuth {
    /// `Authorization: Bearer <key>`.
    ApiKey(String),
    /// btauth/1 signed by `hotkey` for `receiver` (the Ledger's ss58).
    Hotkey {
        /// Our key.
        hotkey: Arc<Hotkey>,
        /// The Ledger API's hotkey.
        receiver: String,
    },
}

async fn ledger_get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    auth: &LedgerAuth,
) -> anyhow::Result<serde_json::Value> {
    let url = reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))?;
    let mut req = http.get(url.clone()).timeout(Duration::from_secs(10));
    req = match auth {
        LedgerAuth::ApiKey(k) => req.bearer_auth(k),
        LedgerAuth::Hotkey { hotkey, receiver } => req.headers(signed_headers(
            hotkey,
            "GET",
            &url,
            b"",
            Some(receiver),
            now_ns(),
        )),
    };
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("GET {url}: {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// Every entry of the Ledger API at `base` (`GET /v1/subnets`, then `/v1/subnets/{netuid}`).
pub async fn fetch_ledger(
    http: &reqwest::Client,
    base: &str,
    auth: &LedgerAuth,
) -> anyhow::Result<Vec<Entry>> {
    let list = ledger_get(http, base, "/v1/subnets", auth).await?;
    let items = list
        .get("subnets")
        .and_then(|v| v.as_array())
        .or_else(|| list.as_array())
        .ok_or_else(|| anyhow::anyhow!("GET /v1/subnets: no subnet list in {list}"))?;
    let mut entries = Vec::new();
    for item in items {
        let Some(n) = item.get("netuid").and_then(|v| v.as_u64()) else {
            continue;
        };
        let one = ledger_get(http, base, &format!("/v1/subnets/{n}"), auth).await?;
        let entry: Entry = serde_json::from_value(one.get("entry").cloned().unwrap_or(one))?;
        entries.push(entry);
    }
    Ok(entries)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubcallLabels {
    netuid: u16,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NetuidLabels {
    netuid: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone)]
struct MinerMetrics {
    requests: Family<OutcomeLabels, Counter>,
    answer: Histogram,
    in_flight: Gauge,
    subcalls: Family<SubcallLabels, Counter>,
    subcall_latency: LatencyFamily<NetuidLabels>,
    cost: Counter,
    proposals: Family<KindLabels, Counter>,
    ledger_entries: Gauge,
}

impl MinerMetrics {
    fn register(m: &Metrics) -> Self {
        let s = MinerMetrics {
            requests: Family::default(),
            answer: latency_histogram(),
            in_flight: Gauge::default(),
            subcalls: Family::default(),
            subcall_latency: latency_family(),
            cost: Counter::default(),
            proposals: Family::default(),
            ledger_entries: Gauge::default(),
        };
        m.register(
            "miner_requests",
            "/orchestrate requests by outcome",
            s.requests.clone(),
        );
        m.register(
            "miner_answer_duration_seconds",
            "Time to answer a challenge",
            s.answer.clone(),
        );
        m.register(
            "miner_in_flight",
            "Challenges being answered",
            s.in_flight.clone(),
        );
        m.register(
            "miner_subcalls",
            "Sub-calls sent to subnets, by netuid and outcome",
            s.subcalls.clone(),
        );
        m.register(
            "miner_subcall_duration_seconds",
            "Sub-call latency by netuid",
            s.subcall_latency.clone(),
        );
        m.register(
            "miner_subcall_cost_rao",
            "Rao spent on successful sub-calls",
            s.cost.clone(),
        );
        m.register(
            "miner_proposals",
            "Ledger proposals made, by kind",
            s.proposals.clone(),
        );
        m.register(
            "miner_ledger_entries",
            "Entries in the miner's Ledger view",
            s.ledger_entries.clone(),
        );
        s
    }

    fn outcome(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

/// One proposal as `GET /ledger/proposals` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposalRecord {
    /// When the response carrying it was sent, ms.
    pub sent_at_ms: u64,
    /// The challenge whose response carried it (hex).
    pub challenge_id: String,
    /// The validator it was sent to.
    pub validator: String,
    /// The proposal.
    pub proposal: Proposal,
}

/// The miner server's state (build with [`MinerServer::new`], serve [`MinerServer::router`]).
pub struct MinerServer {
    hotkey: Arc<Hotkey>,
    ss58: String,
    core: Mutex<Miner>,
    view: RwLock<Arc<LedgerView>>,
    directory: SubnetDirectory,
    client: SubnetClient,
    limiter: Arc<Semaphore>,
    settings: MinerSettings,
    block: AtomicU64,
    proposals: Mutex<VecDeque<ProposalRecord>>,
    metrics: Arc<Metrics>,
    m: MinerMetrics,
    seed: [u8; 32],
    auth: Arc<RequestAuth>,
}

impl std::fmt::Debug for MinerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerServer")
            .field("hotkey", &self.ss58)
            .field("strategy", &self.settings.strategy)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MinerServer {
    /// A miner answering as `hotkey`, with `settings`, an initial Ledger view (`entries`),
    /// subnets reached through `directory`, and requests checked by `auth`.
    pub fn new(
        hotkey: Arc<Hotkey>,
        settings: MinerSettings,
        entries: Vec<Entry>,
        directory: SubnetDirectory,
        auth: Arc<RequestAuth>,
    ) -> anyhow::Result<Arc<MinerServer>> {
        if settings.max_concurrency == 0 {
            anyhow::bail!("max_concurrency must be at least 1");
        }
        let seed_u64 = settings.seed.unwrap_or_else(rand::random);
        let seed = blake3::derive_key("orchestra miner node seed v1", &seed_u64.to_le_bytes());
        let templates = load_templates(settings.objectives.as_deref())?;
        let planner = Planner::new(templates.iter());
        let mut group = orchestra_adversaries::GroupState::default();
        let strategy = orchestra_adversaries::build(
            &settings.strategy,
            &settings.strategy_params,
            &mut group,
            seed_u64,
        )
        .map_err(|e| anyhow::anyhow!("strategy {}: {e}", settings.strategy))?;
        let ss58 = hotkey.ss58();
        let core = Miner::new(ss58.clone(), planner, settings.core).with_strategy(strategy);
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))?;
        let metrics = Metrics::new();
        let m = MinerMetrics::register(&metrics);
        let view = LedgerView::new(entries);
        m.ledger_entries.set(view.len() as i64);
        Ok(Arc::new(MinerServer {
            client: SubnetClient::new(http, Some(hotkey.clone())),
            hotkey,
            ss58,
            core: Mutex::new(core),
            view: RwLock::new(Arc::new(view)),
            directory,
            limiter: Arc::new(Semaphore::new(settings.max_concurrency)),
            block: AtomicU64::new(0),
            proposals: Mutex::new(VecDeque::new()),
            metrics,
            m,
            seed,
            auth,
            settings,
        }))
    }

    /// The miner's ss58 hotkey.
    pub fn ss58(&self) -> &str {
        &self.ss58
    }

    /// The process's metrics registry (to register more, or serve elsewhere).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The HTTP client sub-calls use.
    pub fn http(&self) -> &reqwest::Client {
        self.client.http()
    }

    /// Replace the Ledger view (after a refresh).
    pub fn set_view(&self, entries: Vec<Entry>) {
        let view = LedgerView::new(entries);
        self.m.ledger_entries.set(view.len() as i64);
        *self.view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }

    /// The current Ledger view.
    pub fn view(&self) -> Arc<LedgerView> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record the chain's current block (the core plans and detects at
    /// `max(this, challenge.issued_block)`).
    pub fn set_block(&self, block: u64) {
        self.block.fetch_max(block, Ordering::Relaxed);
    }

    /// The router: `/orchestrate` behind the concurrency limit and btauth/1, `/ledger/proposals`
    /// behind btauth/1, `/healthz` and `/metrics` open.
    pub fn router(self: &Arc<Self>) -> Router {
        let orchestrate = Router::new()
            .route("/orchestrate", post(orchestrate))
            .route_layer(middleware::from_fn_with_state(
                self.auth.clone(),
                require_btauth,
            ))
            .route_layer(middleware::from_fn_with_state(self.clone(), shed));
        let proposals = Router::new()
            .route("/ledger/proposals", get(list_proposals))
            .route_layer(middleware::from_fn_with_state(
                self.auth.clone(),
                require_btauth,
            ));
        Router::new()
            .route("/healthz", get(healthz))
            .merge(orchestrate)
            .merge(proposals)
            .with_state(self.clone())
            .merge(metrics::router(self.metrics.clone()))
            .layer(middleware::from_fn_with_state(
                self.metrics.clone(),
                metrics::track,
            ))
    }

    /// Answer `challenge` by driving the core: `None` when the strategy declines.
    pub async fn answer(&self, challenge: &Challenge) -> anyhow::Result<Option<Answer>> {
        let view = self.view();
        let block = self
            .block
            .load(Ordering::Relaxed)
            .max(challenge.issued_block);
        let mut rng = ChaCha8Rng::from_seed(
            *blake3::keyed_hash(&self.seed, &challenge.challenge_id.0).as_bytes(),
        );
        let mut session = lock(&self.core).start(challenge, &view, block, now_ms(), &mut rng)?;
        let mut calls: JoinSet<(u64, orchestra_miner::SubCallOutcome)> = JoinSet::new();
        loop {
            {
                let mut core = lock(&self.core);
                let now = now_ms();
                while let Some(call) = core.poll_subcall(&mut session, now) {
                    self.spawn_call(&mut calls, &view, call);
                }
            }
            if session.is_finished() {
                break;
            }
            let wake = session.poll_timeout();
            if calls.is_empty() && wake.is_none() {
                break;
            }
            let sleep = async {
                match wake {
                    Some(t) => {
                        tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms()))).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                Some(joined) = calls.join_next() => {
                    if let Ok((id, outcome)) = joined {
                        lock(&self.core).on_subcall_result(&mut session, id, outcome, now_ms());
                    }
                }
                () = sleep => {
                    lock(&self.core).handle_timeout(&mut session, now_ms());
                }
            }
        }
        calls.abort_all();
        let response = lock(&self.core).finish(session, &view, block, now_ms())?;
        Ok(response)
    }

    fn spawn_call(
        &self,
        calls: &mut JoinSet<(u64, orchestra_miner::SubCallOutcome)>,
        view: &LedgerView,
        call: SubCall,
    ) {
        let id = call.call_id;
        let netuid = call.netuid;
        let target = self.directory.base(netuid).and_then(|base| {
            view.endpoint(netuid, &call.endpoint)
                .map(|(_, e)| (base, e.method.clone(), e.path.clone()))
        });
        let Some((base, method, path)) = target else {
            self.m
                .subcalls
                .get_or_create(&SubcallLabels {
                    netuid,
                    outcome: "unavailable".into(),
                })
                .inc();
            calls.spawn(async move {
                (
                    id,
                    Err(SubCallFailure::Unavailable(format!(
                        "no URL known for subnet {netuid}"
                    ))),
                )
            });
            return;
        };
        let timeout = Duration::from_millis(call.timeout_at_ms.saturating_sub(now_ms()).max(1));
        let client = self.client.clone();
        let m = self.m.clone();
        calls.spawn(async move {
            let start = Instant::now();
            let out = client
                .subcall(
                    &base,
                    &method,
                    &path,
                    &call.request,
                    call.started_at_ms,
                    timeout,
                )
                .await;
            let label = match &out {
                Ok(reply) => {
                    m.cost.inc_by(reply.cost_rao);
                    "ok"
                }
                Err(SubCallFailure::Timeout) => "timeout",
                Err(SubCallFailure::Unavailable(_)) => "unavailable",
                Err(SubCallFailure::Rejected(_)) => "rejected",
            };
            m.subcalls
                .get_or_create(&SubcallLabels {
                    netuid,
                    outcome: label.into(),
                })
                .inc();
            m.subcall_latency
                .get_or_create(&NetuidLabels { netuid })
                .observe(start.elapsed().as_secs_f64());
            (id, out)
        });
    }

    fn record_proposals(&self, challenge: &Challenge, proposals: &[Proposal]) {
        if proposals.is_empty() {
            return;
        }
        let mut kept = lock(&self.proposals);
        let now = now_ms();
        for p in proposals {
            self.m
                .proposals
                .get_or_create(&KindLabels {
                    kind: p.change.name().to_string(),
                })
                .inc();
            tracing::info!(
                netuid = p.netuid,
                kind = p.change.name(),
                "proposing a Ledger update"
            );
            kept.push_back(ProposalRecord {
                sent_at_ms: now,
                challenge_id: challenge.challenge_id.to_string(),
                validator: challenge.validator.clone(),
                proposal: p.clone(),
            });
        }
        while kept.len() > self.settings.proposals_kept {
            kept.pop_front();
        }
    }
}

/// Decrements the in-flight gauge however the request ends (including a dropped connection).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Concurrency limit: a permit per request in flight, 503 + `Retry-After` when none is free.
async fn shed(State(srv): State<Arc<MinerServer>>, req: Request, next: Next) -> Response {
    let Ok(permit) = srv.limiter.clone().try_acquire_owned() else {
        srv.m.outcome("shed");
        let mut r = json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{} challenges already in flight; retry later",
                srv.settings.max_concurrency
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&srv.settings.retry_after_s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    };
    srv.m.in_flight.inc();
    let _guard = InFlight(srv.m.in_flight.clone());
    let response = next.run(req).await;
    drop(permit);
    response
}

async fn orchestrate(
    State(srv): State<Arc<MinerServer>>,
    axum::Extension(caller): axum::Extension<Caller>,
    body: Bytes,
) -> Response {
    let challenge: Challenge = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            srv.m.outcome("invalid");
            return json_error(StatusCode::BAD_REQUEST, "invalid_challenge", e.to_string());
        }
    };
    if challenge.validator != caller.hotkey {
        srv.m.outcome("invalid");
        return json_error(
            StatusCode::BAD_REQUEST,
            "validator_mismatch",
            "challenge.validator must be the hotkey that signed the request",
        );
    }
    let now = now_ms();
    let due = challenge.due_at_ms();
    if due <= now {
        srv.m.outcome("late");
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deadline_passed",
            format!("the challenge was due at {due} ms; it is {now} ms"),
        );
    }
    let budget = Duration::from_millis(
        (due - now)
            .saturating_add(1_000)
            .min(srv.settings.request_timeout_ms),
    );
    let start = Instant::now();
    let answered = tokio::time::timeout(budget, srv.answer(&challenge)).await;
    srv.m.answer.observe(start.elapsed().as_secs_f64());
    let response = match answered {
        Err(_) => {
            srv.m.outcome("timeout");
            return json_error(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline",
                "no answer could be built before the deadline",
            );
        }
        Ok(Err(e)) => {
            srv.m.outcome("error");
            tracing::warn!(error = %e, "answering failed");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "miner_error",
                e.to_string(),
            );
        }
        Ok(Ok(None)) => {
            srv.m.outcome("declined");
            return StatusCode::NO_CONTENT.into_response();
        }
        Ok(Ok(Some(r))) => r,
    };
    let body = match serde_json::to_vec(&response) {
        Ok(b) => b,
        Err(e) => {
            srv.m.outcome("error");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "miner_error",
                e.to_string(),
            );
        }
    };
    srv.record_proposals(&challenge, &response.ledger_proposals);
    srv.m.outcome("ok");
    tracing::debug!(
        challenge = %challenge.challenge_id,
        steps = response.pipeline.len(),
        proposals = response.ledger_proposals.len(),
        "answered"
    );
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response();
    if let Ok(url) = reqwest::Url::parse("http://miner/orchestrate") {
        let signed = signed_headers(
            &srv.hotkey,
            "POST",
            &url,
            &body,
            Some(&caller.hotkey),
            now_ns(),
        );
        for (k, v) in &signed {
            r.headers_mut().insert(k.clone(), v.clone());
        }
    }
    r
}

async fn list_proposals(State(srv): State<Arc<MinerServer>>, RawQuery(q): RawQuery) -> Response {
    let mut since = 0u64;
    for pair in q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("since_ms", v)) => match v.parse() {
                Ok(n) => since = n,
                Err(_) => {
                    return json_error(StatusCode::BAD_REQUEST, "bad_query", "since_ms: integer");
                }
            },
            _ => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "bad_query",
                    format!("unknown query parameter {pair:?}"),
                );
            }
        }
    }
    let list: Vec<ProposalRecord> = lock(&srv.proposals)
        .iter()
        .filter(|p| p.sent_at_ms >= since)
        .cloned()
        .collect();
    axum::Json(json!({ "proposals": list })).into_response()
}

async fn healthz(State(srv): State<Arc<MinerServer>>) -> Response {
    let in_flight = srv.settings.max_concurrency - srv.limiter.available_permits();
    axum::Json(json!({
        "status": "ok",
        "hotkey": srv.ss58,
        "strategy": srv.settings.strategy,
        "ledger_entries": srv.view().len(),
        "in_flight": in_flight,
        "max_concurrency": srv.settings.max_concurrency,
        "block": srv.block.load(Ordering::Relaxed),
        "subnets": srv.directory.mapped().map(|(n, u)| (n.to_string(), u.to_string())).collect::<BTreeMap<_, _>>(),
    }))
    .into_response()
}

/// `orchestra-miner`'s flags: the common ones plus the miner's own, each overriding the same key
/// of the config file's `[miner]` table.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "orchestra-miner",
    about = "Orchestra miner: answers validators' challenges by orchestrating subnets",
    long_about = "Orchestra miner: answers validators' challenges (POST /orchestrate, btauth/1-signed, \
validator permit required) by planning a DAG of subnet calls, executing it over HTTP in parallel \
and returning schema-valid data with a hash-locked proof and Ledger proposals.\n\n\
Where subnets are: --subnet NETUID=URL (repeatable) and/or --subnets-url URL of a multi-subnet \
orchestra-mock-subnet (subnet N at URL/sn/N). What they offer (endpoint paths, schemas, metrics): \
--ledger-url (a Ledger API, refreshed) or --mocks DIR (mock subnet files, static).\n\n\
Config file: --config node.toml with the common keys and a [miner] table using the long flag \
names with underscores (max_concurrency, strategy, subnets = [\"22=http://…\"], …). Flags win.\n\
Routes: POST /orchestrate, GET /ledger/proposals, GET /healthz, GET /metrics."
)]
pub struct MinerArgs {
    /// Common node flags.
    #[command(flatten)]
    pub common: crate::config::CommonArgs,
    /// Challenges answered at once; more get 503 + Retry-After (default 16).
    #[arg(long)]
    pub max_concurrency: Option<usize>,
    /// Retry-After seconds on a 503 (default 1).
    #[arg(long)]
    pub retry_after_s: Option<u64>,
    /// Hard cap on one answer in ms, whatever the challenge's deadline (default 60000).
    #[arg(long)]
    pub request_timeout_ms: Option<u64>,
    /// Strategy: honest (default) or an orchestra-adversaries name (fabricator, copycat, …).
    #[arg(long)]
    pub strategy: Option<String>,
    /// A strategy parameter KEY=VALUE (repeatable; VALUE read as TOML), e.g. rate=0.5.
    #[arg(long = "strategy-param", value_name = "KEY=VALUE")]
    pub strategy_param: Vec<String>,
    /// Seed of the strategy's and the core's random streams (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where subnet NETUID is: NETUID=URL (repeatable).
    #[arg(long = "subnet", value_name = "NETUID=URL")]
    pub subnet: Vec<String>,
    /// A multi-subnet orchestra-mock-subnet: subnet N is at URL/sn/N unless mapped by --subnet.
    #[arg(long, value_name = "URL")]
    pub subnets_url: Option<String>,
    /// Build the Ledger view from these mock subnet files (static).
    #[arg(long, value_name = "DIR")]
    pub mocks: Option<PathBuf>,
    /// Read the Ledger view from this Ledger API (refreshed every --ledger-refresh-s).
    #[arg(long, value_name = "URL")]
    pub ledger_url: Option<String>,
    /// API key for --ledger-url; without one requests are btauth/1-signed for --ledger-hotkey.
    #[arg(long, value_name = "KEY")]
    pub ledger_api_key: Option<String>,
    /// ss58 hotkey of the Ledger API (btauth/1 receiver).
    #[arg(long, value_name = "SS58")]
    pub ledger_hotkey: Option<String>,
    /// Seconds between Ledger refreshes (default 30).
    #[arg(long)]
    pub ledger_refresh_s: Option<u64>,
    /// Extra objective templates (*.toml) on top of the embedded ones.
    #[arg(long, value_name = "DIR")]
    pub objectives: Option<PathBuf>,
    /// Accept callers without a validator permit (development only).
    #[arg(long)]
    pub no_permit_check: bool,
    /// Accept this hotkey as a validator whatever the metagraph says (repeatable).
    #[arg(long = "allow-validator", value_name = "SS58")]
    pub allow_validator: Vec<String>,
    /// Seconds between metagraph refreshes of validator permits (default 60).
    #[arg(long)]
    pub permit_refresh_s: Option<u64>,
    /// Do not connect to the chain: permits only from --allow-validator, no --serve-axon.
    #[arg(long)]
    pub offline: bool,
    /// Publish this miner's endpoint on chain with serve_axon at start.
    #[arg(long)]
    pub serve_axon: bool,
    /// IP to publish with --serve-axon.
    #[arg(long = "axon.external_ip", value_name = "IP")]
    pub external_ip: Option<IpAddr>,
    /// Port to publish with --serve-axon (default: --port).
    #[arg(long = "axon.external_port", value_name = "PORT")]
    pub external_port: Option<u16>,
}

/// The miner's default port.
pub const DEFAULT_PORT: u16 = 8091;

impl MinerArgs {
    /// Resolve the node config and the `[miner]` settings, flags over file over defaults.
    pub fn resolve(
        &self,
    ) -> Result<(crate::config::NodeConfig, MinerSettings), crate::config::ConfigError> {
        let cfg = self.common.resolve(&["miner"])?;
        let mut s: MinerSettings = cfg.section("miner")?;
        if let Some(v) = self.max_concurrency {
            s.max_concurrency = v;
        }
        if let Some(v) = self.retry_after_s {
            s.retry_after_s = v;
        }
        if let Some(v) = self.request_timeout_ms {
            s.request_timeout_ms = v;
        }
        if let Some(v) = &self.strategy {
            s.strategy = v.clone();
        }
        for p in &self.strategy_param {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| crate::config::ConfigError::BadOverride(p.clone()))?;
            s.strategy_params.insert(
                k.trim().to_string(),
                crate::config::parse_toml_value(v.trim()),
            );
        }
        if self.seed.is_some() {
            s.seed = self.seed;
        }
        s.subnets.extend(self.subnet.iter().cloned());
        if self.subnets_url.is_some() {
            s.subnets_url = self.subnets_url.clone();
        }
        if self.mocks.is_some() {
            s.mocks = self.mocks.clone();
        }
        if self.ledger_url.is_some() {
            s.ledger_url = self.ledger_url.clone();
        }
        if self.ledger_api_key.is_some() {
            s.ledger_api_key = self.ledger_api_key.clone();
        }
        if self.ledger_hotkey.is_some() {
            s.ledger_hotkey = self.ledger_hotkey.clone();
        }
        if let Some(v) = self.ledger_refresh_s {
            s.ledger_refresh_s = v;
        }
        if self.objectives.is_some() {
            s.objectives = self.objectives.clone();
        }
        if self.no_permit_check {
            s.permit_check = false;
        }
        s.allow_validators
            .extend(self.allow_validator.iter().cloned());
        if let Some(v) = self.permit_refresh_s {
            s.permit_refresh_s = v;
        }
        if self.offline {
            s.offline = true;
        }
        if self.serve_axon {
            s.serve_axon = true;
        }
        if self.external_ip.is_some() {
            s.external_ip = self.external_ip;
        }
        if self.external_port.is_some() {
            s.external_port = self.external_port;
        }
        Ok((cfg, s))
    }
}

/// Run a miner until `shutdown` resolves: load the Ledger view, connect to the chain (unless
/// offline), start the permit, block and Ledger refreshers, `serve_axon` if asked, and serve on
/// `listener`.
pub async fn run(
    cfg: crate::config::NodeConfig,
    settings: MinerSettings,
    hotkey: Hotkey,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use orchestra_chain::Chain as _;
    let hotkey = Arc::new(hotkey);
    let directory = SubnetDirectory::parse(
        settings.subnets.iter().map(String::as_str),
        settings.subnets_url.as_deref(),
    )?;
    let http = reqwest::Client::new();
    let ledger_auth = match (&settings.ledger_api_key, &settings.ledger_hotkey) {
        (Some(k), _) => Some(LedgerAuth::ApiKey(k.clone())),
        (None, Some(r)) => Some(LedgerAuth::Hotkey {
            hotkey: hotkey.clone(),
            receiver: r.clone(),
        }),
        (None, None) => None,
    };
    let entries: Vec<Entry> = match (&settings.mocks, &settings.ledger_url) {
        (Some(dir), _) => orchestra_mocks::MockSet::load_dir(dir)
            .with_context(|| format!("loading mock subnets from {}", dir.display()))?
            .entries()
            .into_values()
            .collect(),
        (None, Some(url)) => {
            let auth = ledger_auth.clone().ok_or_else(|| {
                anyhow::anyhow!("--ledger-url needs --ledger-api-key or --ledger-hotkey")
            })?;
            match fetch_ledger(&http, url, &auth).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "first Ledger fetch failed; starting empty and retrying");
                    Vec::new()
                }
            }
        }
        (None, None) => anyhow::bail!("no Ledger view: give --ledger-url URL or --mocks DIR"),
    };
    let chain = if settings.offline {
        None
    } else {
        let url = cfg.chain_url();
        let mut ccfg = orchestra_chain::SubtensorConfig::new(url.clone());
        ccfg.connect_attempts = 3;
        let chain = orchestra_chain::SubtensorChain::connect(ccfg, Some(&hotkey))
            .await
            .with_context(|| {
                format!("connecting to {url} (use --offline to run without a chain)")
            })?;
        Some(Arc::new(chain))
    };
    let permits = settings.permit_check.then(|| {
        Arc::new(crate::auth::PermitSet::new(
            settings.allow_validators.iter().cloned(),
        ))
    });
    if permits.is_some() && chain.is_none() && settings.allow_validators.is_empty() {
        tracing::warn!(
            "offline with the permit check on and no --allow-validator: every request will be refused"
        );
    }
    let auth = Arc::new(
        RequestAuth::new(
            hotkey.ss58(),
            &crate::auth::AuthConfig::default(),
            permits.clone(),
        )
        .map_err(|e| anyhow::anyhow!(e))?,
    );
    let netuid = cfg.netuid;
    let server = MinerServer::new(hotkey.clone(), settings.clone(), entries, directory, auth)?;
    let mut tasks = Vec::new();
    if let Some(chain) = &chain {
        if let Some(p) = &permits {
            tasks.push(crate::auth::spawn_permit_refresh(
                chain.clone(),
                netuid,
                p.clone(),
                Duration::from_secs(settings.permit_refresh_s.max(1)),
            ));
        }
        let (c, s) = (chain.clone(), server.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(12));
            loop {
                tick.tick().await;
                match c.current_block().await {
                    Ok(b) => s.set_block(b),
                    Err(e) => tracing::warn!(error = %e, "reading the current block failed"),
                }
            }
        }));
        if settings.serve_axon {
            let ip = settings
                .external_ip
                .ok_or_else(|| anyhow::anyhow!("--serve-axon needs --axon.external_ip"))?;
            let port = settings
                .external_port
                .unwrap_or(listener.local_addr()?.port());
            let axon = orchestra_chain::AxonServe {
                netuid,
                version: 1,
                ip,
                port,
                protocol: 4,
            };
            let out = chain
                .serve_axon(&axon)
                .await
                .with_context(|| format!("serve_axon {ip}:{port} on netuid {netuid}"))?;
            tracing::info!(?out, %ip, port, netuid, "served axon");
        }
    } else if settings.serve_axon {
        anyhow::bail!("--serve-axon needs the chain: drop --offline");
    }
    if let (Some(url), Some(auth)) = (settings.ledger_url.clone(), ledger_auth)
        && settings.mocks.is_none()
    {
        let s = server.clone();
        let every = Duration::from_secs(settings.ledger_refresh_s.max(1));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                match fetch_ledger(&http, &url, &auth).await {
                    Ok(entries) => s.set_view(entries),
                    Err(e) => {
                        tracing::warn!(error = %e, "Ledger refresh failed; keeping the old view")
                    }
                }
            }
        }));
    }
    let local = listener.local_addr()?;
    tracing::info!(
        hotkey = server.ss58(),
        strategy = %settings.strategy,
        entries = server.view().len(),
        "orchestra-miner listening on http://{local}"
    );
    let served = axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown)
        .await;
    for t in tasks {
        t.abort();
    }
    served.context("serving")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[test]
    fn miner_flags_override_the_miner_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("miner.toml");
        std::fs::write(
            &path,
            "port = 9000\n[miner]\nmax_concurrency = 3\nstrategy = \"fabricator\"\n\
             subnets = [\"1=http://a:1\"]\nstrategy_params = { rate = 0.5 }\n\
             [miner.core.execution]\nmax_attempts_per_route = 5\n",
        )
        .unwrap();
        let argv = [
            "orchestra-miner",
            "--config",
            path.to_str().unwrap(),
            "--max-concurrency",
            "7",
            "--subnet",
            "22=http://b:2",
            "--strategy-param",
            "steps=\"all\"",
            "--no-permit-check",
        ];
        let args = MinerArgs::parse_from(crate::config::normalize_args(
            argv.iter().map(std::ffi::OsString::from),
        ));
        let (cfg, s) = args.resolve().unwrap();
        assert_eq!(cfg.port, Some(9000));
        assert_eq!(s.max_concurrency, 7);
        assert_eq!(s.strategy, "fabricator");
        assert_eq!(s.subnets, vec!["1=http://a:1", "22=http://b:2"]);
        assert_eq!(s.strategy_params["rate"], toml::Value::Float(0.5));
        assert_eq!(
            s.strategy_params["steps"],
            toml::Value::String("all".into())
        );
        assert_eq!(s.core.execution.max_attempts_per_route, 5);
        assert!(!s.permit_check);

        std::fs::write(&path, "[miner]\nmax_concurency = 3\n").unwrap();
        let args = MinerArgs::parse_from(["orchestra-miner", "--config", path.to_str().unwrap()]);
        let err = args.resolve().unwrap_err().to_string();
        assert!(
            err.contains("miner") && err.contains("max_concurency"),
            "{err}"
        );
    }
}
