//! The miner's HTTP face: the server state, its router and the route handlers (the routes and
//! statuses are in the [module docs](super)). Answering itself is [`super::driver`]'s.

use super::MinerSettings;
use super::metrics::{KindLabels, MinerMetrics};
use crate::auth::{RequestAuth, json_error, now_ms, now_ns, require_auth, signed_headers};
use crate::metrics::{self, Metrics};
use crate::subnet_client::{SubnetClient, SubnetDirectory};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestra_miner::{LedgerView, Miner, Planner};
use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth::Caller;
use orchestra_protocol::ledger::{Entry, Proposal};
use orchestra_protocol::messages::{Challenge, Response as MinerResponse};
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The protocol's answer to a challenge (`Response` in this module is axum's).
pub type Answer = MinerResponse;

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
    pub(super) hotkey: Arc<Hotkey>,
    pub(super) ss58: String,
    pub(super) core: Mutex<Miner>,
    pub(super) view: RwLock<Arc<LedgerView>>,
    pub(super) directory: SubnetDirectory,
    pub(super) client: SubnetClient,
    pub(super) limiter: Arc<Semaphore>,
    pub(super) settings: MinerSettings,
    pub(super) block: AtomicU64,
    pub(super) proposals: Mutex<VecDeque<ProposalRecord>>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) m: MinerMetrics,
    pub(super) seed: [u8; 32],
    pub(super) auth: Arc<RequestAuth>,
}

impl std::fmt::Debug for MinerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinerServer")
            .field("hotkey", &self.ss58)
            .field("strategy", &self.settings.strategy)
            .finish_non_exhaustive()
    }
}

/// Lock `m`, recovering from a poisoned lock (a panicked request leaves no half-made state
/// behind: the core's sessions live outside it).
pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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
        let templates = crate::config::load_templates(settings.objectives.as_deref())?;
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
                require_auth,
            ))
            .route_layer(middleware::from_fn_with_state(self.clone(), shed));
        let proposals = Router::new()
            .route("/ledger/proposals", get(list_proposals))
            .route_layer(middleware::from_fn_with_state(
                self.auth.clone(),
                require_auth,
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
