//! The query API (axum): read routes served from an in-memory snapshot, the validators' write
//! route, authentication (API keys or btauth/1), metering, and JSON errors.
//!
//! Authentication, refusal statuses and the error shape are `orchestra-http`'s, the layer every
//! Orchestra server shares (table in `docs/protocol.md`): every `/v1` route takes an API key
//! (`Authorization: Bearer`, admitted and metered by [`crate::access`]) or a btauth/1 signature
//! addressed to the server's hotkey.
//!
//! Performance design: every read route except the log and proofs answers from an immutable
//! [`Snapshot`] of pre-serialised JSON bodies (per subnet, per capability ranking, the list and
//! the head), swapped under a lock only when a write commits; a read clones one `Arc`. Key
//! lookups and metering are in-memory ([`crate::access`]); SQLite is touched only by writes,
//! log/proof reads and the periodic usage flush.
//!
//! Capability ranking (precomputed per snapshot), for every endpoint whose `capability` is the
//! tag, of a non-deprecated entry:
//!
//! `score = reliability² · 500 / (500 + p50_ms) · 2e6 / (2e6 + cost_rao) · status · freshness`
//!
//! with `status` 1 for active and 0.5 for degraded, `freshness` 0.8 when the entry's metrics are
//! past their TTL at the head block (else 1). Reliability is squared because a failed call costs
//! a retry *and* its latency; latency and price enter as hyperbolic discounts around typical
//! values (500 ms, 0.002 TAO), so neither can dominate alone. Ties break by netuid, then name.

use crate::access::{Access, Limits};
use crate::log::SignedTreeHead;
use crate::model::{Staleness, Ttl};
use crate::node::{ChangeInput, LedgerNode, NodeError};
use crate::store::Store;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orchestra_http::clock::now_secs;
use orchestra_http::{AuthConfig, Credential, Refusal, RequestAuth, json_error as error};
use orchestra_protocol::ledger::Status;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, bytes.
    pub body_limit: usize,
    /// Tier limits.
    pub limits: Limits,
    /// Field TTLs (for staleness and ranking).
    pub ttl: Ttl,
    /// Hotkeys (ss58) allowed to append changes.
    pub validators: HashSet<String>,
    /// Most records one `/v1/log` page returns.
    pub log_page: usize,
    /// Which scheme each btauth/1 sender signs with.
    pub schemes: orchestra_protocol::btauth::SchemeSource,
    /// Pay per call for the read routes (x402), beside API keys; `None` keeps them key-only.
    pub paywall: Option<Arc<orchestra_x402::Paywall>>,
    /// The URL clients reach this server at, for the agent card (default: from `Host`).
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 1 << 20,
            limits: Limits::default(),
            ttl: Ttl::default(),
            validators: HashSet::new(),
            log_page: 1_000,
            schemes: Default::default(),
            paywall: None,
            public_url: None,
        }
    }
}

/// The node type the server runs: either store backend, boxed.
pub type DynNode = LedgerNode<Box<dyn Store>>;

/// Pre-serialised read responses for one Ledger version.
#[derive(Debug, Default)]
pub struct Snapshot {
    head: Bytes,
    subnets: Bytes,
    subnet: BTreeMap<u16, Bytes>,
    capability: BTreeMap<String, Bytes>,
    tree_size: u64,
    /// The same data as values, for the agent tools ([`crate::agents`]).
    pub(crate) sth: Option<SignedTreeHead>,
    pub(crate) entries: BTreeMap<u16, (orchestra_protocol::ledger::Entry, Staleness)>,
    pub(crate) ranked: BTreeMap<String, Vec<RankedEndpoint>>,
    /// Entry proofs built against this snapshot's head, kept until the next write replaces it.
    pub(crate) entry_proofs: Mutex<BTreeMap<u16, Arc<Value>>>,
}

/// One ranked endpoint in a capability answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RankedEndpoint {
    /// Subnet.
    pub netuid: u16,
    /// Subnet name.
    pub subnet: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Access path.
    pub access: orchestra_protocol::ledger::Access,
    /// HTTP method.
    pub method: String,
    /// HTTP path.
    pub path: String,
    /// Whether auth is needed.
    pub auth_required: bool,
    /// The entry's metrics.
    pub metrics: orchestra_protocol::ledger::Metrics,
    /// Entry status.
    pub status: Status,
    /// Whether the metrics are past their TTL.
    pub stale: bool,
    /// Ranking score (see the module docs).
    pub score: f64,
}

/// The ranking score of the module docs.
pub fn rank_score(m: &orchestra_protocol::ledger::Metrics, status: Status, stale: bool) -> f64 {
    let status_factor = match status {
        Status::Active => 1.0,
        Status::Degraded => 0.5,
        Status::Deprecated => 0.0,
    };
    let r = m.reliability.clamp(0.0, 1.0);
    r * r
        * (500.0 / (500.0 + m.p50_latency_ms as f64))
        * (2e6 / (2e6 + m.cost_per_query_rao as f64))
        * status_factor
        * if stale { 0.8 } else { 1.0 }
}

impl Snapshot {
    /// Build every response body from the node's current state.
    pub fn build(node: &DynNode, ttl: &Ttl) -> Snapshot {
        let state = node.state();
        let sth = node.signed_head();
        let block = sth.head.block;
        let head = to_bytes(&json!({ "head": sth }));
        let mut subnet = BTreeMap::new();
        let mut list = Vec::new();
        let mut ranked: BTreeMap<String, Vec<RankedEndpoint>> = BTreeMap::new();
        let mut entries = BTreeMap::new();
        for (n, e) in &state.entries {
            let stale = state.staleness(*n, block, ttl).unwrap_or_default();
            subnet.insert(*n, to_bytes(&json!({ "entry": e, "stale": stale })));
            entries.insert(*n, (e.clone(), stale));
            list.push(json!({
                "netuid": e.netuid, "name": e.name, "capabilities": e.capabilities,
                "status": e.status, "version": e.version, "metrics": e.metrics,
                "last_verified_block": e.last_verified_block, "stale": stale,
            }));
            if e.status == Status::Deprecated {
                continue;
            }
            for ep in &e.endpoints {
                ranked
                    .entry(ep.capability.clone())
                    .or_default()
                    .push(RankedEndpoint {
                        netuid: e.netuid,
                        subnet: e.name.clone(),
                        endpoint: ep.name.clone(),
                        access: ep.access,
                        method: ep.method.clone(),
                        path: ep.path.clone(),
                        auth_required: ep.auth_required,
                        metrics: e.metrics,
                        status: e.status,
                        stale: stale.metrics,
                        score: rank_score(&e.metrics, e.status, stale.metrics),
                    });
            }
        }
        for v in ranked.values_mut() {
            v.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(a.netuid.cmp(&b.netuid))
                    .then(a.endpoint.cmp(&b.endpoint))
            });
        }
        let capability = ranked
            .iter()
            .map(|(tag, v)| {
                let body = to_bytes(&json!({ "capability": tag, "endpoints": v }));
                (tag.clone(), body)
            })
            .collect();
        Snapshot {
            head,
            subnets: to_bytes(&json!({ "subnets": list, "head": sth.head })),
            subnet,
            capability,
            tree_size: sth.head.tree_size,
            sth: Some(sth.clone()),
            entries,
            ranked,
            entry_proofs: Mutex::default(),
        }
    }
}

fn to_bytes(v: &serde_json::Value) -> Bytes {
    // Serialising a Value cannot fail (its map keys are strings, its floats finite or null).
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Shared server state.
pub struct AppState {
    node: Mutex<DynNode>,
    snapshot: RwLock<Arc<Snapshot>>,
    access: Arc<Access>,
    auth: Arc<RequestAuth>,
    config: ServerConfig,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Wrap a node. The btauth receiver is the node's hotkey; its own hotkey may always write.
    pub fn new(node: DynNode, mut config: ServerConfig) -> Arc<AppState> {
        let me = node.ss58();
        config.validators.insert(me.clone());
        let snapshot = Snapshot::build(&node, &config.ttl);
        let access = Arc::new(Access::new(config.limits));
        let btauth = AuthConfig {
            body_limit: config.body_limit,
            // A Ledger API sees many more signed requests than a miner.
            replay_capacity: 1_000_000,
            schemes: config.schemes.clone(),
            ..AuthConfig::default()
        };
        let auth = RequestAuth::btauth(me, &btauth).with_api_keys(access.clone());
        let st = Arc::new(AppState {
            node: Mutex::new(node),
            snapshot: RwLock::new(Arc::new(snapshot)),
            access,
            auth: Arc::new(auth),
            config,
        });
        st.refresh_keys();
        st
    }

    pub(crate) fn lock_node(&self) -> std::sync::MutexGuard<'_, DynNode> {
        // A panic while holding the lock cannot leave the node half-updated: appends swap state
        // only after the store committed.
        self.node.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reload API keys from the store (new keys, revocations).
    pub fn refresh_keys(&self) {
        let node = self.lock_node();
        let keys = match node.store().list_keys() {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "cannot reload API keys");
                return;
            }
        };
        self.access.refresh(&keys, now_secs(), |id, p| {
            node.store().usage(id, p).unwrap_or(0)
        });
    }

    /// The API-key table and meters.
    pub fn access(&self) -> &Access {
        &self.access
    }

    /// Authentication by this Ledger's API keys only, for routes an embedding node serves next
    /// to the Ledger's (they then share keys, limits, metering and refusals with the Ledger
    /// API): mount it with `orchestra_http::require_auth`.
    pub fn key_auth(&self) -> Arc<RequestAuth> {
        Arc::new(RequestAuth::api_keys(
            self.access.clone(),
            self.config.body_limit,
        ))
    }

    /// Run `f` on the node (read-only; e.g. the signed head, the state).
    pub fn with_node<T>(&self, f: impl FnOnce(&DynNode) -> T) -> T {
        f(&self.lock_node())
    }

    /// Append fully formed records (an embedding validator's verified changes) atomically and
    /// durably, then publish them to readers; returns the new signed head.
    pub fn append_records(
        &self,
        records: Vec<crate::model::ChangeRecord>,
    ) -> Result<SignedTreeHead, NodeError> {
        let mut node = self.lock_node();
        node.append_records(records)?;
        let snap = Arc::new(Snapshot::build(&node, &self.config.ttl));
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snap;
        Ok(node.signed_head().clone())
    }

    /// Write buffered usage counts to the store in one transaction; on failure they are kept
    /// for the next flush.
    pub fn flush_usage(&self) {
        let deltas = self.access.drain();
        if deltas.is_empty() {
            return;
        }
        let res = self.lock_node().store_mut().add_usage(&deltas);
        if let Err(e) = res {
            tracing::error!(error = %e, "usage flush failed; will retry");
            self.access.restore(deltas);
        }
    }

    /// Start the usage flusher every server embedding this API runs: every `every`, flush the
    /// metered usage to the store and reload the API keys (new keys, revocations), off the
    /// async workers. [`UsageFlusher::stop`] ends it with a last flush.
    pub fn spawn_usage_flusher(self: &Arc<Self>, every: Duration) -> UsageFlusher {
        let st = self.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    st.flush_usage();
                    st.refresh_keys();
                })
                .await;
            }
        });
        UsageFlusher {
            state: self.clone(),
            task,
        }
    }
}

/// The running usage flusher of [`AppState::spawn_usage_flusher`].
#[derive(Debug)]
pub struct UsageFlusher {
    state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl UsageFlusher {
    /// Stop flushing periodically and flush what is left (at shutdown, after the server
    /// stopped taking requests).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        let st = self.state;
        let _ = tokio::task::spawn_blocking(move || st.flush_usage()).await;
    }
}

fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn json_value<T: Serialize>(v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => json_bytes(Bytes::from(b)),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// The router. Public routes: `/healthz`, `/openapi.json`, `/.well-known/agent-card.json`;
/// everything under `/v1`, `/mcp` and `/a2a` needs an API key or a btauth/1 signature addressed to the
/// server's hotkey, and with a paywall configured the `/v1` reads can be paid per call instead.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, AgentOptions::default())
}

/// Selling the read routes per call (x402), settled on a live chain: what
/// `orchestra-ledger serve --x402.*` sets up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadSale {
    /// The chain's WebSocket URL (transfers are read from it).
    pub chain_url: String,
    /// The payee (ss58).
    pub pay_to: String,
    /// Rao per read.
    pub price_rao: u64,
    /// How long a quote stands, and the oldest transfer accepted, seconds.
    pub quote_secs: u64,
    /// The spent-payment database.
    pub payments_db: std::path::PathBuf,
}

impl ReadSale {
    /// Connect to the chain and build the paywall (its network from the chain's genesis hash).
    pub async fn connect(&self) -> Result<orchestra_x402::Paywall, String> {
        let mut cfg = orchestra_chain::SubtensorConfig::new(&self.chain_url);
        cfg.connect_attempts = 10;
        let chain = orchestra_chain::SubtensorChain::connect(cfg, None)
            .await
            .map_err(|e| format!("chain {}: {e}", self.chain_url))?;
        let price = orchestra_x402::Price {
            pay_to: self.pay_to.clone(),
            network: orchestra_chain::caip2_network(&chain.genesis_hash()),
            rao: self.price_rao,
            max_timeout_seconds: self.quote_secs,
            description: "one Subnet Ledger read (entries, rankings, log, proofs)".into(),
        };
        orchestra_x402::chain_paywall(price, Arc::new(chain), &self.payments_db)
    }
}

/// What an embedding node adds to the agent surface (a validator: orchestration).
#[derive(Clone, Default)]
pub struct AgentOptions {
    /// Serve the `submit_objective` tool.
    pub objectives: Option<Arc<dyn crate::agents::Objectives>>,
    /// The node's own paid routes and their paywall, for the agent card.
    pub paid_routes: Option<(Vec<String>, Arc<orchestra_x402::Paywall>)>,
}

/// [`router`], with what `options` adds: the `submit_objective` tool on `/mcp`, and the node's
/// own paid routes in the agent card.
pub fn router_with(state: Arc<AppState>, options: AgentOptions) -> Router {
    let AgentOptions {
        objectives,
        paid_routes,
    } = options;
    let gate = orchestra_x402::Gate {
        auth: state.auth.clone(),
        paywall: state.config.paywall.clone(),
    };
    let reads = Router::new()
        .route("/v1/subnets", get(list_subnets))
        .route("/v1/subnets/{netuid}", get(get_subnet))
        .route("/v1/capabilities/{tag}", get(get_capability))
        .route("/v1/log", get(get_log))
        .route("/v1/proof/{seq}", get(get_proof))
        .route("/v1/consistency", get(get_consistency))
        .route("/v1/head", get(get_head))
        .route_layer(middleware::from_fn_with_state(
            gate,
            orchestra_x402::auth_or_pay,
        ));
    let tools = crate::agents::AgentTools::new(state.clone(), objectives);
    let mcp_tools = tools.clone();
    let mcp = rmcp::transport::streamable_http_server::StreamableHttpService::new(
        move || Ok(mcp_tools.clone()),
        Arc::new(
            rmcp::transport::streamable_http_server::session::never::NeverSessionManager::default(),
        ),
        rmcp::transport::streamable_http_server::StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            // Every call is authenticated (API key or btauth/1), so a DNS-rebinding page gains
            // nothing without a credential; public deployments are reached by their own names.
            .disable_allowed_hosts(),
    );
    let a2a_tools = tools.clone();
    // The routes that take a key or a signature and are never for sale.
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .route_layer(middleware::from_fn(crate::agents::json_rpc_guard));
    let authenticated = Router::new()
        .route("/v1/changes", post(post_changes))
        .merge(mcp)
        .route(
            "/a2a",
            post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let tools = a2a_tools.clone();
                async move {
                    let version = headers.get("a2a-version").and_then(|v| v.to_str().ok());
                    json_value(&tools.a2a(&body, version).await)
                }
            }),
        )
        .route_layer(middleware::from_fn_with_state(
            state.auth.clone(),
            orchestra_http::require_auth,
        ));
    let card_state = (state.clone(), tools, paid_routes);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route(
            "/.well-known/agent-card.json",
            get(move |headers: axum::http::HeaderMap| async move {
                agent_card(
                    &card_state.0,
                    &card_state.1,
                    card_state.2.as_ref(),
                    &headers,
                )
            }),
        )
        .merge(reads)
        .merge(authenticated)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

fn agent_card(
    st: &AppState,
    tools: &crate::agents::AgentTools,
    extra_paid: Option<&(Vec<String>, Arc<orchestra_x402::Paywall>)>,
    headers: &axum::http::HeaderMap,
) -> Response {
    let base = st.config.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    let mut paid: Vec<Value> = Vec::new();
    if let Some(p) = &st.config.paywall {
        paid.push(json!({ "routes": PAID_READS, "accepts": [p.requirements()] }));
    }
    if let Some((routes, p)) = extra_paid {
        paid.push(json!({ "routes": routes, "accepts": [p.requirements()] }));
    }
    json_value(&crate::agents::agent_card(&base, tools, &paid))
}

/// The read routes a Ledger paywall sells.
const PAID_READS: &[&str] = &[
    "GET /v1/subnets",
    "GET /v1/subnets/{netuid}",
    "GET /v1/capabilities/{tag}",
    "GET /v1/log",
    "GET /v1/proof/{seq}",
    "GET /v1/consistency",
    "GET /v1/head",
];

/// A path segment that is not valid percent-encoded UTF-8.
fn bad_path(e: PathRejection) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_path", e.body_text())
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    json_value(&json!({ "status": "ok", "tree_size": st.snapshot().tree_size }))
}

async fn openapi() -> Response {
    json_bytes(Bytes::from_static(crate::openapi::OPENAPI_JSON.as_bytes()))
}

async fn list_subnets(State(st): State<Arc<AppState>>) -> Response {
    json_bytes(st.snapshot().subnets.clone())
}

async fn get_head(State(st): State<Arc<AppState>>) -> Response {
    json_bytes(st.snapshot().head.clone())
}

async fn get_subnet(
    State(st): State<Arc<AppState>>,
    netuid: Result<Path<String>, PathRejection>,
) -> Response {
    let netuid = match netuid {
        Ok(Path(n)) => n,
        Err(e) => return bad_path(e),
    };
    let Ok(n) = netuid.parse::<u16>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_netuid",
            "netuid must be an integer in 0..=65535",
        );
    };
    match st.snapshot().subnet.get(&n) {
        Some(b) => json_bytes(b.clone()),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown_subnet",
            format!("subnet {n} is not in the Ledger"),
        ),
    }
}

async fn get_capability(
    State(st): State<Arc<AppState>>,
    tag: Result<Path<String>, PathRejection>,
) -> Response {
    let tag = match tag {
        Ok(Path(t)) => t,
        Err(e) => return bad_path(e),
    };
    match st.snapshot().capability.get(&tag) {
        Some(b) => json_bytes(b.clone()),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown_capability",
            "no active endpoint serves this capability",
        ),
    }
}

/// Parse `a=1&b=2` into integer parameters; unknown names are an error so typos are visible.
#[allow(clippy::result_large_err)]
fn query_u64(raw: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, u64>, Response> {
    let mut out = BTreeMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !allowed.contains(&k) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("unknown query parameter {k:?}"),
            ));
        }
        let n = v.parse::<u64>().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("{k} must be a non-negative integer"),
            )
        })?;
        out.insert(k.to_string(), n);
    }
    Ok(out)
}

fn node_error(e: NodeError) -> Response {
    match e {
        NodeError::Proof(p) => error(StatusCode::NOT_FOUND, "out_of_range", p.to_string()),
        NodeError::Rejected(r) => error(StatusCode::CONFLICT, "change_rejected", r.to_string()),
        other => {
            tracing::error!(error = %other, "storage failure");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "the Ledger store failed; nothing was changed",
            )
        }
    }
}

/// Run blocking node work off the async workers.
async fn blocking<T: Send + 'static>(
    st: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> T + Send + 'static,
) -> Result<T, Response> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "worker failed",
            )
        })
}

async fn get_log(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let q = match query_u64(q.as_deref(), &["since", "limit"]) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let since = q.get("since").copied().unwrap_or(0);
    let page = st.config.log_page;
    let limit = q.get("limit").map_or(page, |&l| (l as usize).min(page));
    let res = blocking(&st, move |st| {
        let node = st.lock_node();
        node.store()
            .records(since, limit)
            .map(|r| (r, node.signed_head().clone()))
    })
    .await;
    match res {
        Err(r) => r,
        Ok(Err(e)) => node_error(NodeError::Store(e)),
        Ok(Ok((records, head))) => {
            let next = records.last().map_or(since, |r| r.seq + 1);
            json_value(&json!({ "records": records, "next": next, "head": head }))
        }
    }
}

async fn get_proof(
    State(st): State<Arc<AppState>>,
    seq: Result<Path<String>, PathRejection>,
) -> Response {
    let seq = match seq {
        Ok(Path(s)) => s,
        Err(e) => return bad_path(e),
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_seq",
            "seq must be a non-negative integer",
        );
    };
    match blocking(&st, move |st| st.lock_node().inclusion_proof(seq)).await {
        Err(r) => r,
        Ok(Err(e)) => node_error(e),
        Ok(Ok(p)) => json_value(&p),
    }
}

async fn get_consistency(State(st): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let q = match query_u64(q.as_deref(), &["from", "to"]) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let Some(&from) = q.get("from") else {
        return error(StatusCode::BAD_REQUEST, "bad_query", "`from` is required");
    };
    let to = q.get("to").copied();
    let res = blocking(&st, move |st| {
        let node = st.lock_node();
        let to = to.unwrap_or(node.signed_head().head.tree_size);
        node.consistency_proof(from, to)
            .map(|p| (p, node.signed_head().clone()))
    })
    .await;
    match res {
        Err(r) => r,
        Ok(Err(e)) => node_error(e),
        Ok(Ok((p, head))) => json_value(&json!({ "proof": p, "head": head })),
    }
}

/// Body of `POST /v1/changes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesRequest {
    /// Changes to append, in order, all or none.
    pub changes: Vec<ChangeInput>,
}

/// Answer of `POST /v1/changes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangesResponse {
    /// Seqs assigned, in order.
    pub seqs: Vec<u64>,
    /// The signed head after the append.
    pub head: SignedTreeHead,
}

async fn post_changes(
    State(st): State<Arc<AppState>>,
    axum::Extension(credential): axum::Extension<Credential>,
    body: Bytes,
) -> Response {
    let caller = match credential {
        Credential::Hotkey(c) if st.config.validators.contains(&c.hotkey) => c,
        Credential::Hotkey(_) => {
            return Refusal::NotAValidator("this hotkey may not append changes".into())
                .into_response();
        }
        Credential::ApiKey(_) => {
            return Refusal::HotkeyRequired(
                "appending changes needs a btauth/1 signature from a validator hotkey",
            )
            .into_response();
        }
    };
    let req: ChangesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return error(StatusCode::BAD_REQUEST, "malformed_json", e.to_string());
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    if req.changes.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_body", "no changes");
    }
    let n = req.changes.len();
    let res = blocking(&st, move |st| {
        let mut node = st.lock_node();
        let out = node.append(req.changes);
        if out.is_ok() {
            let snap = Arc::new(Snapshot::build(&node, &st.config.ttl));
            *st.snapshot.write().unwrap_or_else(|e| e.into_inner()) = snap;
        }
        out.map(|records| (records, node.signed_head().clone()))
    })
    .await;
    match res {
        Err(r) => r,
        Ok(Err(e)) => node_error(e),
        Ok(Ok((records, head))) => {
            tracing::info!(validator = %caller.hotkey, changes = n, size = head.head.tree_size, "appended");
            json_value(&ChangesResponse {
                seqs: records.iter().map(|r| r.seq).collect(),
                head,
            })
        }
    }
}
