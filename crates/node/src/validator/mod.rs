//! `orchestra-validator`: the sans-IO validator core (`orchestra-validator` crate) as a service.
//!
//! - **Schedule** (block-based, blocks from the chain client): a challenge round every
//!   `challenge_every_blocks`, tempo boundaries from the subnet's epoch rule, weights set once per
//!   tempo, the Ledger head anchored every `anchor_every_blocks`. See [`driver`].
//! - **Miners** are found in the metagraph (axon info) or given with `--miner UID=URL`
//!   (loopback devnets); challenges are `POST /orchestrate`, btauth/1-signed for the miner's
//!   hotkey.
//! - **Ledger**: the replica lives in `<state.dir>/ledger.db` (the ledger crate's SQLite store);
//!   the Ledger API (`/v1/subnets`, `/v1/log`, `/v1/proof/{seq}`, …) is the ledger crate's
//!   router mounted as is; verified proposals are appended to it and served at once.
//! - **Users**: `POST /v1/objectives` forwards an organic objective to a miner (API keys,
//!   metering and refusals shared with the Ledger API; keys are managed with `orchestra-ledger
//!   keys --db <state.dir>/ledger.db`).
//! - **Durability**: scores, the Ledger window and the tempo schedule in
//!   `<state.dir>/validator.db` ([`store`]); a restart resumes where the last write left off.
//! - `/metrics` (Prometheus, [`metrics`]), `/status` (JSON: scores, schedule, Ledger size), logs
//!   through `tracing`.

pub mod driver;
#[cfg(test)]
mod equivalence;
pub mod metrics;
pub mod store;

use crate::auth::now_ms;
use crate::config::{CommonArgs, ConfigError, NodeConfig, expand_home};
use crate::metrics::Metrics;
use crate::subnet_client::{SubnetClient, SubnetDirectory};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use orchestra_chain::Chain;
use orchestra_ledger::server::{AppState, ServerConfig};
use orchestra_ledger::sqlite::SqliteStore;
use orchestra_ledger::store::Store;
use orchestra_ledger::{LedgerNode, VerifyParams};
use orchestra_mechanism::MechanismParams;
use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_protocol::Hotkey;
use orchestra_protocol::messages::Objective;
use orchestra_protocol::messages::SubCallFailure;
use orchestra_validator::{
    ChallengeConfig, LedgerView, ScorerState, Validator, ValidatorConfig, ValidatorRngs,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use store::{StateStore, WeightsRow};
use tokio::sync::{mpsc, oneshot};

/// Default port of the validator's HTTP API.
pub const DEFAULT_PORT: u16 = 8092;

/// The validator: SDK-style common flags plus its own. Every flag may also be set in the
/// `[validator]` table of the `--config` file (same names with `_` for `.` and `-`); flags win.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "orchestra-validator",
    version,
    about = "Orchestra validator: challenges miners, audits their proofs, verifies Ledger \
             proposals, serves the Ledger API and sets weights",
    long_about = None
)]
pub struct ValidatorArgs {
    #[command(flatten)]
    /// Flags every node takes.
    pub common: CommonArgs,
    /// Directory of the validator's state: `ledger.db` (Ledger replica and API keys) and
    /// `validator.db` (scores, schedule, weights and anchors) [default: ~/.orchestra/validator].
    #[arg(long = "state.dir", value_name = "DIR")]
    pub state_dir: Option<String>,
    /// Seed an empty Ledger replica from mock subnet files (`mocks/subnets`), for devnets.
    #[arg(long = "ledger.seed", value_name = "DIR")]
    pub ledger_seed: Option<PathBuf>,
    /// Extra objective templates (`*.toml`) on top of the embedded ones (`mocks/objectives`);
    /// a file replaces the embedded template of the same kind.
    #[arg(long, value_name = "DIR")]
    pub objectives: Option<PathBuf>,
    /// Reach miner UID at URL instead of its axon (repeatable), e.g. `--miner
    /// 1=http://127.0.0.1:8091` (the chain refuses loopback axons).
    #[arg(long = "miner", value_name = "UID=URL")]
    pub miners: Vec<String>,
    /// Base URL of subnet NETUID's endpoints for audits and probes (repeatable), e.g.
    /// `--subnet 22=http://127.0.0.1:9022`.
    #[arg(long = "subnet", value_name = "NETUID=URL")]
    pub subnets: Vec<String>,
    /// A multi-subnet `orchestra-mock-subnet` base URL: subnet N is at `<URL>/sn/N` unless
    /// mapped with `--subnet`.
    #[arg(long = "subnets-url", value_name = "URL")]
    pub subnets_url: Option<String>,
    /// Blocks between challenge rounds [default: 20].
    #[arg(long = "challenge.every-blocks", value_name = "N")]
    pub challenge_every_blocks: Option<u64>,
    /// Miners challenged per round [default: 16].
    #[arg(long = "challenge.sample", value_name = "K")]
    pub challenge_sample: Option<usize>,
    /// Time a miner has per challenge, ms [default: 30000].
    #[arg(long = "challenge.deadline-ms", value_name = "MS")]
    pub challenge_deadline_ms: Option<u64>,
    /// Blocks between Ledger head anchors; 0 disables anchoring [default: 100].
    #[arg(long = "anchor.every-blocks", value_name = "N")]
    pub anchor_every_blocks: Option<u64>,
    /// How often the chain is polled for a new block, ms [default: 2000].
    #[arg(long = "chain.poll-ms", value_name = "MS")]
    pub poll_ms: Option<u64>,
    /// Weights version key to submit [default: the subnet's `WeightsVersionKey`].
    #[arg(long = "weights.version-key", value_name = "KEY")]
    pub version_key: Option<u64>,
    /// Requests per minute allowed to `free` API keys [default: 60].
    #[arg(long = "api.free-per-minute", value_name = "N")]
    pub free_per_minute: Option<u64>,
    /// Lookups per month allowed to `developer` API keys [default: 1000].
    #[arg(long = "api.developer-per-month", value_name = "N")]
    pub developer_per_month: Option<u64>,
    /// Miners one `POST /v1/objectives` request tries before it fails: a miner that gives no
    /// usable response is passed over for another [default: 3].
    #[arg(long = "organic.attempts", value_name = "N")]
    pub organic_attempts: Option<u32>,
    /// Sell `POST /v1/objectives` per call (x402) to callers without an API key: the ss58
    /// account TAO transfers must reach. Unset: API keys only.
    #[arg(long = "x402.pay-to", value_name = "SS58")]
    pub x402_pay_to: Option<String>,
    /// Price of one paid objective, rao [default: 1000000 (0.001 TAO)].
    #[arg(long = "x402.price-rao", value_name = "RAO")]
    pub x402_price_rao: Option<u64>,
}

/// The `[validator]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorSection {
    /// See `--state.dir`.
    pub state_dir: Option<String>,
    /// See `--ledger.seed`.
    pub ledger_seed: Option<PathBuf>,
    /// See `--objectives`.
    pub objectives: Option<PathBuf>,
    /// See `--miner`: uid (as a string key) → URL.
    pub miners: BTreeMap<String, String>,
    /// See `--subnet`: netuid (as a string key) → URL.
    pub subnets: BTreeMap<String, String>,
    /// See `--subnets-url`.
    pub subnets_url: Option<String>,
    /// See `--challenge.every-blocks`.
    pub challenge_every_blocks: Option<u64>,
    /// See `--challenge.sample`.
    pub challenge_sample: Option<usize>,
    /// See `--challenge.deadline-ms`.
    pub challenge_deadline_ms: Option<u64>,
    /// See `--anchor.every-blocks`.
    pub anchor_every_blocks: Option<u64>,
    /// See `--chain.poll-ms`.
    pub poll_ms: Option<u64>,
    /// See `--weights.version-key`.
    pub version_key: Option<u64>,
    /// See `--api.free-per-minute`.
    pub free_per_minute: Option<u64>,
    /// See `--api.developer-per-month`.
    pub developer_per_month: Option<u64>,
    /// See `--organic.attempts`.
    pub organic_attempts: Option<u32>,
    /// See `--x402.pay-to`.
    pub x402_pay_to: Option<String>,
    /// See `--x402.price-rao`.
    pub x402_price_rao: Option<u64>,
}

/// Pay per call for `POST /v1/objectives` (x402).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaySettings {
    /// Where transfers must go (ss58).
    pub pay_to: String,
    /// Rao per objective.
    pub price_rao: u64,
    /// CAIP-2 network; `run` fills it from the chain's genesis hash.
    pub network: Option<String>,
}

/// Everything the validator runs with, resolved from flags, file and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The subnet.
    pub netuid: u16,
    /// Chain WebSocket URL.
    pub chain_url: String,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// State directory.
    pub state_dir: PathBuf,
    /// Mock files to seed an empty Ledger from.
    pub ledger_seed: Option<PathBuf>,
    /// Extra objective templates directory.
    pub objectives: Option<PathBuf>,
    /// Miner URL overrides by uid.
    pub miners: BTreeMap<u16, String>,
    /// Subnet base URLs by netuid.
    pub subnets: BTreeMap<u16, String>,
    /// Multi-subnet mock base URL.
    pub subnets_url: Option<String>,
    /// Mechanism parameters.
    pub params: MechanismParams,
    /// Challenge schedule knobs.
    pub challenge: ChallengeConfig,
    /// Blocks between challenge rounds.
    pub challenge_every_blocks: u64,
    /// Blocks between anchors (0 = never).
    pub anchor_every_blocks: u64,
    /// Chain polling period.
    pub poll: Duration,
    /// Version key override.
    pub version_key: Option<u64>,
    /// How often the metagraph and hyperparameters are re-read, blocks.
    pub metagraph_refresh_blocks: u64,
    /// Extra time allowed for the network on top of deadline + grace, ms.
    pub network_slack_ms: u64,
    /// API key limits.
    pub limits: orchestra_ledger::access::Limits,
    /// Miners one organic request tries before it fails (at least 1).
    pub organic_attempts: u32,
    /// Which scheme each btauth/1 sender (users of the API, miners' responses) signs with.
    pub schemes: orchestra_protocol::btauth::SchemeSource,
    /// The drand beacon commit-reveal v4 encrypts to (quicknet, as the chain's `pallet_drand`).
    pub drand: orchestra_chain::crv4::Beacon,
    /// Pay per call for objectives, if sold.
    pub pay: Option<PaySettings>,
}

/// Why the validator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A flag or file value is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The validator state database failed.
    #[error(transparent)]
    State(#[from] store::StateError),
    /// Something else needed to start failed.
    #[error("{0}")]
    Setup(String),
}

fn parse_pairs(
    what: &str,
    flags: &[String],
    file: &BTreeMap<String, String>,
) -> Result<BTreeMap<u16, String>, ValidatorError> {
    let mut out = BTreeMap::new();
    for (k, v) in file {
        let id = k.trim().parse::<u16>().map_err(|_| {
            ValidatorError::Invalid(format!("[validator].{what}: key {k:?} is not a number"))
        })?;
        out.insert(id, v.clone());
    }
    for f in flags {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| ValidatorError::Invalid(format!("--{what} {f:?}: expected ID=URL")))?;
        let id = k.trim().parse::<u16>().map_err(|_| {
            ValidatorError::Invalid(format!("--{what} {f:?}: {k:?} is not a number"))
        })?;
        reqwest::Url::parse(v.trim())
            .map_err(|e| ValidatorError::Invalid(format!("--{what} {f:?}: bad URL: {e}")))?;
        out.insert(id, v.trim().to_string());
    }
    Ok(out)
}

impl ValidatorArgs {
    /// Resolve flags over the config file over defaults; returns the settings and the hotkey.
    pub fn resolve(&self) -> Result<(Settings, Hotkey, NodeConfig), ValidatorError> {
        let cfg = self.common.resolve(&["validator"])?;
        let file: ValidatorSection = cfg.section("validator")?;
        let hotkey = cfg.hotkey()?;
        let pick = |a: Option<u64>, b: Option<u64>, d: u64| a.or(b).unwrap_or(d);
        let defaults = ChallengeConfig::default();
        let challenge = ChallengeConfig {
            sample_size: self
                .challenge_sample
                .or(file.challenge_sample)
                .unwrap_or(defaults.sample_size),
            deadline_ms: pick(
                self.challenge_deadline_ms,
                file.challenge_deadline_ms,
                defaults.deadline_ms,
            ),
            ..defaults
        };
        let limits_default = orchestra_ledger::access::Limits::default();
        let state_dir = self
            .state_dir
            .clone()
            .or(file.state_dir.clone())
            .unwrap_or_else(|| "~/.orchestra/validator".to_string());
        let settings = Settings {
            netuid: cfg.netuid,
            chain_url: cfg.chain_url(),
            listen: cfg.listen_addr(DEFAULT_PORT),
            state_dir: expand_home(&state_dir),
            ledger_seed: self.ledger_seed.clone().or(file.ledger_seed.clone()),
            objectives: self.objectives.clone().or(file.objectives.clone()),
            miners: parse_pairs("miner", &self.miners, &file.miners)?,
            subnets: parse_pairs("subnet", &self.subnets, &file.subnets)?,
            subnets_url: self.subnets_url.clone().or(file.subnets_url.clone()),
            params: cfg.mechanism.clone(),
            challenge,
            challenge_every_blocks: pick(
                self.challenge_every_blocks,
                file.challenge_every_blocks,
                20,
            )
            .max(1),
            anchor_every_blocks: pick(self.anchor_every_blocks, file.anchor_every_blocks, 100),
            poll: Duration::from_millis(pick(self.poll_ms, file.poll_ms, 2_000).max(10)),
            version_key: self.version_key.or(file.version_key),
            metagraph_refresh_blocks: 10,
            network_slack_ms: 2_000,
            limits: orchestra_ledger::access::Limits {
                free_per_minute: pick(
                    self.free_per_minute,
                    file.free_per_minute,
                    limits_default.free_per_minute,
                ),
                developer_per_month: pick(
                    self.developer_per_month,
                    file.developer_per_month,
                    limits_default.developer_per_month,
                ),
            },
            organic_attempts: self
                .organic_attempts
                .or(file.organic_attempts)
                .unwrap_or(orchestra_validator::DEFAULT_ORGANIC_ATTEMPTS),
            schemes: cfg.schemes.clone(),
            drand: orchestra_chain::crv4::Beacon::quicknet(),
            pay: self
                .x402_pay_to
                .clone()
                .or(file.x402_pay_to)
                .map(|pay_to| PaySettings {
                    pay_to,
                    price_rao: pick(self.x402_price_rao, file.x402_price_rao, 1_000_000),
                    network: None,
                }),
        };
        if let Some(p) = &settings.pay
            && orchestra_protocol::ss58::decode(&p.pay_to).is_err()
        {
            return Err(ValidatorError::Invalid(format!(
                "--x402.pay-to: expected an ss58 address, found {:?}",
                p.pay_to
            )));
        }
        if settings.organic_attempts == 0 {
            return Err(ValidatorError::Invalid(
                "--organic.attempts: expected at least 1 miner per request, found 0".into(),
            ));
        }
        Ok((settings, hotkey, cfg))
    }
}

/// Calls subnet endpoints for audits (re-executions) and proposal probes.
pub trait SubnetCalls: Send + Sync + 'static {
    /// Call `endpoint` of subnet `netuid` with `request`; the answer body or how it failed.
    fn call(
        &self,
        netuid: u16,
        endpoint: &str,
        request: &Value,
        timeout: Duration,
    ) -> impl Future<Output = Result<Value, SubCallFailure>> + Send;
}

/// [`SubnetCalls`] over HTTP with the nodes' shared [`SubnetClient`] (wire format in
/// [`crate::subnet_client`]): `METHOD <base of netuid><endpoint path>`, method and path from
/// the validator's Ledger replica, btauth/1-signed (unbound) by the validator's hotkey.
#[derive(Debug, Clone)]
pub struct HttpSubnets {
    client: SubnetClient,
    directory: SubnetDirectory,
    view: Arc<RwLock<Arc<LedgerView>>>,
}

impl HttpSubnets {
    /// Calls to the subnets in `directory`, endpoints looked up in `view`.
    pub fn new(
        client: SubnetClient,
        directory: SubnetDirectory,
        view: Arc<RwLock<Arc<LedgerView>>>,
    ) -> Self {
        HttpSubnets {
            client,
            directory,
            view,
        }
    }
}

impl SubnetCalls for HttpSubnets {
    async fn call(
        &self,
        netuid: u16,
        endpoint: &str,
        request: &Value,
        timeout: Duration,
    ) -> Result<Value, SubCallFailure> {
        let base = self.directory.base(netuid).ok_or_else(|| {
            SubCallFailure::Unavailable(format!("no URL configured for subnet {netuid}"))
        })?;
        let (method, path) = {
            let view = self
                .view
                .read()
                .map(|v| v.clone())
                .unwrap_or_else(|e| e.into_inner().clone());
            match view.endpoint(netuid, endpoint) {
                Some((_, ep)) => (ep.method.clone(), ep.path.clone()),
                None => {
                    return Err(SubCallFailure::Rejected(format!(
                        "endpoint {endpoint} of subnet {netuid} is not in the Ledger"
                    )));
                }
            }
        };
        self.client
            .call(&base, &method, &path, request, now_ms(), timeout)
            .await
            .map(|r| r.response)
    }
}

/// One miner's scores in `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerStatus {
    /// Uid.
    pub uid: u16,
    /// Orchestration score `O`.
    pub orchestration: f64,
    /// Ledger score `L`.
    pub ledger: f64,
    /// Orchestration observations so far.
    pub observations: u64,
    /// Fabrication strikes so far.
    pub strikes: u64,
}

/// What `GET /status` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// This validator's hotkey.
    pub hotkey: String,
    /// Its uid, once seen in the metagraph.
    pub uid: Option<u16>,
    /// Last block processed.
    pub block: u64,
    /// The subnet's tempo.
    pub tempo: u16,
    /// Last tempo closed.
    pub last_tempo_closed: Option<u64>,
    /// Current scores.
    pub scores: Vec<MinerStatus>,
    /// The scorer state restored from disk at start-up, if there was one.
    pub restored: Option<ScorerState>,
    /// Records in the Ledger replica.
    pub ledger_tree_size: u64,
    /// Proposals awaiting a verdict.
    pub pending_proposals: usize,
    /// Challenges in flight.
    pub in_flight: usize,
    /// Weight vectors set successfully since start.
    pub weights_set: u64,
    /// The last weight submission.
    pub last_weights: Option<WeightsRow>,
    /// The last anchoring attempt `(block, tree size, status)`.
    pub last_anchor: Option<(u64, u64, String)>,
}

/// The answer to `POST /v1/objectives`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrganicAnswer {
    /// The challenge id the request travelled under.
    pub challenge_id: String,
    /// The miner that answered.
    pub miner_uid: u16,
    /// Its hotkey.
    pub miner: String,
    /// The data, in the user's target schema.
    pub standardized_data: Value,
    /// Whether the proof checked out (checks 1–4; spot audits continue afterwards).
    pub proof_verified: bool,
    /// The miner's hash-locked proof: `root = BLAKE3(head ‖ data_hash)`, where `head` chains
    /// every sub-call's request and response hashes from `lock0` (docs/mechanism.md §3).
    pub proof: orchestra_protocol::messages::ProofSummary,
    /// The sub-calls the proof chains, in execution order.
    pub pipeline: Vec<orchestra_protocol::messages::PipelineStep>,
    /// Time from issue to response, ms.
    pub latency_ms: u64,
}

/// Why an organic request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OrganicError {
    /// No miner is reachable.
    #[error("no miner is reachable")]
    NoMiners,
    /// The chosen miner failed.
    #[error("the miner failed: {0}")]
    MinerFailed(String),
}

/// Body of `POST /v1/objectives`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveRequest {
    /// The objective (`kind`, `text`, `params`).
    pub objective: Objective,
    /// The JSON Schema the answer must fill; defaults to the template of `objective.kind`.
    #[serde(default)]
    pub target_schema: Option<Value>,
}

#[derive(Clone)]
struct ApiState {
    tx: mpsc::Sender<Event>,
    status: Arc<RwLock<Status>>,
    schemas: Arc<BTreeMap<String, Value>>,
    metrics: metrics::ValidatorMetrics,
    timeout: Duration,
}

use crate::auth::ApiError;
use driver::Event;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    crate::auth::json_error(status, code, message)
}

/// `POST /v1/objectives`, behind the Ledger's API keys (`AppState::key_auth`) or a payment.
async fn objectives(State(st): State<ApiState>, body: axum::body::Bytes) -> Response {
    let req: ObjectiveRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_body", e.to_string()),
    };
    match st.run_objective(req).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

impl ApiState {
    /// Route one objective to a miner and wait for its checked answer (the REST route and the
    /// MCP tool share this).
    async fn run_objective(&self, req: ObjectiveRequest) -> Result<OrganicAnswer, ApiError> {
        let schema = req
            .target_schema
            .or_else(|| self.schemas.get(&req.objective.kind).cloned())
            .ok_or_else(|| {
                let kinds: Vec<&str> = self.schemas.keys().map(String::as_str).collect();
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "missing_target_schema",
                    format!(
                        "no target_schema given and no template of kind {:?} (templates: {})",
                        req.objective.kind,
                        kinds.join(", ")
                    ),
                )
            })?;
        if let Err(e) = jsonschema::draft202012::new(&schema) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target_schema",
                format!("target_schema is not a valid JSON Schema (2020-12): {e}"),
            ));
        }
        let stopping = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the validator is stopping",
            )
        };
        let (reply, rx) = oneshot::channel();
        let ev = Event::Organic {
            objective: req.objective,
            target_schema: schema,
            reply,
        };
        if self.tx.send(ev).await.is_err() {
            return Err(stopping());
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(OrganicError::NoMiners))) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_miners",
                "no miner is reachable right now",
            )),
            Ok(Ok(Err(e))) => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "miner_failed",
                e.to_string(),
            )),
            Ok(Err(_)) => Err(stopping()),
            Err(_) => {
                self.metrics
                    .organic_done("timeout", self.timeout.as_secs_f64());
                Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "no answer within the deadline",
                ))
            }
        }
    }
}

/// The `submit_objective` MCP tool, over the same path as `POST /v1/objectives`.
impl orchestra_ledger::agents::Objectives for ApiState {
    fn submit(
        &self,
        input: Value,
    ) -> orchestra_ledger::agents::BoxFuture<'_, Result<Value, orchestra_ledger::agents::ToolFailure>>
    {
        use orchestra_ledger::agents::ToolFailure;
        Box::pin(async move {
            let req: ObjectiveRequest = serde_json::from_value(input)
                .map_err(|e| ToolFailure::new("invalid_arguments", e.to_string()))?;
            let answer = self
                .run_objective(req)
                .await
                .map_err(|e| ToolFailure::new(e.code, e.message))?;
            serde_json::to_value(answer).map_err(|e| ToolFailure::new("internal", e.to_string()))
        })
    }
}

async fn get_status(State(st): State<ApiState>) -> Response {
    let s = st
        .status
        .read()
        .map(|s| s.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    Json(s).into_response()
}

/// The objective templates challenges are drawn from: the ones embedded in the binary
/// (`mocks/objectives`), each replaced or extended by `extra/*.toml` — the same set the miner
/// loads.
pub fn load_templates(extra: Option<&Path>) -> Result<Vec<ObjectiveTemplate>, ValidatorError> {
    crate::config::load_templates(extra).map_err(|e| ValidatorError::Setup(format!("{e:#}")))
}

/// Open (and, if empty and asked, seed) the Ledger replica in `dir/ledger.db`.
fn open_ledger(
    settings: &Settings,
    hotkey: &Hotkey,
) -> Result<LedgerNode<Box<dyn Store>>, ValidatorError> {
    let path = settings.state_dir.join("ledger.db");
    let store = SqliteStore::open(&path).map_err(|e| {
        ValidatorError::Setup(format!(
            "cannot open Ledger database {}: {e}",
            path.display()
        ))
    })?;
    let boxed: Box<dyn Store> = Box::new(store);
    let mut node = LedgerNode::open(boxed, hotkey.clone(), VerifyParams::default())
        .map_err(|e| ValidatorError::Setup(format!("cannot load the Ledger: {e}")))?;
    if node.signed_head().head.tree_size == 0
        && let Some(dir) = &settings.ledger_seed
    {
        let entries = orchestra_mocks::MockSet::load_dir(dir)
            .map_err(|e| ValidatorError::Setup(format!("seeding the Ledger: {e}")))?
            .entries();
        let me = node.ss58();
        let changes = entries
            .values()
            .map(|e| orchestra_ledger::mocks::seed_change(e, &me, 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ValidatorError::Setup(format!("seeding the Ledger: {e}")))?;
        let n = changes.len();
        node.append(changes)
            .map_err(|e| ValidatorError::Setup(format!("seeding the Ledger: {e}")))?;
        tracing::info!(entries = n, from = %dir.display(), "Ledger seeded");
    }
    Ok(node)
}

/// The objectives paywall: settled against `chain`, payments remembered in
/// `state_dir/payments.db`.
fn paywall<C: Chain + Send + Sync + 'static>(
    p: &PaySettings,
    state_dir: &Path,
    chain: Arc<C>,
) -> Result<orchestra_x402::Paywall, ValidatorError> {
    let network = p.network.clone().ok_or_else(|| {
        ValidatorError::Setup("x402: the chain's network id (genesis hash) is unknown".into())
    })?;
    let price = orchestra_x402::Price {
        pay_to: p.pay_to.clone(),
        network,
        rao: p.price_rao,
        max_timeout_seconds: 300,
        description: "one objective run by the subnet's miners, answered in your target schema \
                      with a hash-locked proof"
            .into(),
    };
    orchestra_x402::chain_paywall(price, chain, &state_dir.join("payments.db"))
        .map_err(|e| ValidatorError::Setup(format!("--x402: {e}")))
}

/// Connect to the chain in `settings` and run until `shutdown` resolves.
pub async fn run(
    settings: Settings,
    hotkey: Hotkey,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ValidatorError> {
    let mut cfg = orchestra_chain::SubtensorConfig::new(&settings.chain_url);
    cfg.tx_timeout = Duration::from_secs(60);
    let chain = orchestra_chain::SubtensorChain::connect(cfg, Some(&hotkey))
        .await
        .map_err(|e| ValidatorError::Setup(format!("chain {}: {e}", settings.chain_url)))?;
    let mut settings = settings;
    if let Some(p) = &mut settings.pay {
        p.network
            .get_or_insert_with(|| orchestra_chain::caip2_network(&chain.genesis_hash()));
    }
    serve(settings, hotkey, Arc::new(chain), shutdown).await
}

/// Run the validator against `chain` until `shutdown` resolves: bind the API (printing
/// `listening on ADDR` on stdout), restore state, and drive the core.
pub async fn serve<C: Chain + Send + Sync + 'static>(
    settings: Settings,
    hotkey: Hotkey,
    chain: Arc<C>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ValidatorError> {
    std::fs::create_dir_all(&settings.state_dir).map_err(|e| {
        ValidatorError::Setup(format!(
            "cannot create state directory {}: {e}",
            settings.state_dir.display()
        ))
    })?;
    let templates = load_templates(settings.objectives.as_deref())?;
    let me = hotkey.ss58();
    let node = open_ledger(&settings, &hotkey)?;
    let replica = node.ledger().clone();
    let ledger = AppState::new(
        node,
        ServerConfig {
            limits: settings.limits,
            schemes: settings.schemes.clone(),
            ..ServerConfig::default()
        },
    );
    let store = StateStore::open(&settings.state_dir.join("validator.db"))?;
    let paywall = match &settings.pay {
        None => None,
        Some(p) => Some(Arc::new(paywall(p, &settings.state_dir, chain.clone())?)),
    };

    // The core, as the simulator builds it.
    let config = ValidatorConfig {
        challenge: settings.challenge,
        challenge_every_blocks: settings.challenge_every_blocks,
        organic_attempts: settings.organic_attempts,
        anchor_every_blocks: settings.anchor_every_blocks,
        network_slack_ms: settings.network_slack_ms,
        ..ValidatorConfig::new(me.clone(), settings.params.clone())
    };
    let mut core = Validator::new(
        config,
        templates.clone(),
        replica,
        ValidatorRngs::from_seed(rand::random::<[u8; 32]>()),
    )
    .map_err(|e| ValidatorError::Setup(e.to_string()))?;
    let restored = store.validator_state()?;
    if let Some(state) = &restored {
        core.restore(state.clone());
        tracing::info!(miners = core.scores().len(), "state restored from disk");
    }
    let view = Arc::new(RwLock::new(core.view().clone()));
    let rng = ChaCha8Rng::from_seed(rand::random::<[u8; 32]>());

    let registry = Metrics::new();
    let vm = metrics::ValidatorMetrics::register(&registry);
    let status = Arc::new(RwLock::new(Status {
        hotkey: me.clone(),
        restored: restored.map(|s| s.scorer),
        ledger_tree_size: ledger.with_node(|n| n.signed_head().head.tree_size),
        ..Status::default()
    }));
    let (tx, rx) = mpsc::channel(1024);
    let schemas: BTreeMap<String, Value> = templates
        .iter()
        .map(|t| (t.kind.clone(), t.target_schema.clone()))
        .collect();
    let api = ApiState {
        tx: tx.clone(),
        status: status.clone(),
        schemas: Arc::new(schemas),
        metrics: vm.clone(),
        // Each miner tried may take its whole deadline before the next is asked.
        timeout: Duration::from_millis(
            (settings.challenge.deadline_ms
                + settings.params.latency_grace_ms
                + settings.network_slack_ms)
                .saturating_mul(u64::from(settings.organic_attempts))
                + settings.network_slack_ms,
        ),
    };
    let gate = orchestra_x402::Gate {
        auth: ledger.key_auth(),
        paywall: paywall.clone(),
    };
    let tools: Arc<dyn orchestra_ledger::agents::Objectives> = Arc::new(api.clone());
    let routes = Router::new()
        .route("/v1/objectives", post(objectives))
        .route_layer(axum::middleware::from_fn_with_state(
            gate,
            orchestra_x402::auth_or_pay,
        ))
        .route("/status", get(get_status))
        .with_state(api);
    let agents = orchestra_ledger::server::AgentOptions {
        objectives: Some(tools),
        paid_routes: paywall
            .clone()
            .map(|p| (vec!["POST /v1/objectives".to_string()], p)),
    };
    let app = orchestra_ledger::server::router_with(ledger.clone(), agents)
        .merge(routes)
        .merge(crate::metrics::router(registry.clone()))
        .layer(axum::middleware::from_fn_with_state(
            registry.clone(),
            crate::metrics::track,
        ));
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| ValidatorError::Setup(format!("cannot listen on {}: {e}", settings.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ValidatorError::Setup(e.to_string()))?;
    tracing::info!(%addr, hotkey = %me, netuid = settings.netuid, "validator API listening");
    println!("listening on {addr}");

    let mappings: Vec<String> = settings
        .subnets
        .iter()
        .map(|(n, u)| format!("{n}={u}"))
        .collect();
    let directory = SubnetDirectory::parse(
        mappings.iter().map(String::as_str),
        settings.subnets_url.as_deref(),
    )
    .map_err(|e| ValidatorError::Invalid(e.to_string()))?;
    let client = SubnetClient::new(reqwest::Client::new(), Some(Arc::new(hotkey.clone())));
    let subnets = Arc::new(HttpSubnets::new(client, directory, view.clone()));
    let hotkey = Arc::new(hotkey);
    let miners = Arc::new(
        driver::HttpMiners::new(hotkey.clone(), settings.schemes.clone())
            .map_err(ValidatorError::Setup)?,
    );
    let driver = driver::Driver::new(
        settings,
        chain,
        subnets,
        miners,
        hotkey,
        ledger.clone(),
        store,
        vm,
        status,
        view,
        core,
        rng,
        (tx, rx),
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let flusher = ledger.spawn_usage_flusher(Duration::from_secs(1));
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.changed().await;
            })
            .await
    });
    let mut driver_stop = stop_rx;
    let driver_task = tokio::spawn(driver.run(async move {
        let _ = driver_stop.changed().await;
    }));
    shutdown.await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = driver_task.await;
    let _ = server.await;
    flusher.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::normalize_args;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> ValidatorArgs {
        let argv = std::iter::once("orchestra-validator").chain(args.iter().copied());
        ValidatorArgs::parse_from(normalize_args(argv.map(OsString::from)))
    }

    #[test]
    fn flags_override_the_validator_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.toml");
        std::fs::write(
            &path,
            "netuid = 7\n[wallet]\nhotkey = \"//Alice\"\n[validator]\nstate_dir = \"/srv/v\"\n\
             challenge_every_blocks = 5\nanchor_every_blocks = 0\nminers = { \"3\" = \"http://m:1\" }\n",
        )
        .unwrap();
        let (s, key, _) = parse(&[
            "--config",
            path.to_str().unwrap(),
            "--challenge.every-blocks",
            "9",
            "--miner",
            "4=http://127.0.0.1:9",
            "--mechanism.audit_rate=0.5",
        ])
        .resolve()
        .unwrap();
        assert_eq!(s.netuid, 7);
        assert_eq!(
            key.ss58(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        assert_eq!(s.state_dir, PathBuf::from("/srv/v"));
        assert_eq!(s.challenge_every_blocks, 9, "the flag wins");
        assert_eq!(s.anchor_every_blocks, 0, "the file is read");
        assert_eq!(s.listen.port(), DEFAULT_PORT);
        assert_eq!(s.params.audit_rate, 0.5);
        assert_eq!(
            s.miners.into_iter().collect::<Vec<_>>(),
            vec![
                (3, "http://m:1".to_string()),
                (4, "http://127.0.0.1:9".to_string())
            ]
        );
        assert_eq!(
            s.challenge.deadline_ms,
            ChallengeConfig::default().deadline_ms
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse(&["--wallet.hotkey", "//Alice", "--miner", "x=http://a"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--miner") && e.contains("not a number"), "{e}");
        let e = parse(&["--wallet.hotkey", "//Alice", "--subnet", "22=not a url"])
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("--subnet") && e.contains("bad URL"), "{e}");
    }

    #[test]
    fn templates_are_embedded_and_extendable() {
        let kinds = |t: Vec<ObjectiveTemplate>| {
            let mut k: Vec<String> = t.into_iter().map(|t| t.kind).collect();
            k.sort();
            k
        };
        assert_eq!(
            kinds(load_templates(None).unwrap()),
            [
                "competitive_analysis",
                "data_aggregation",
                "market_research"
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), "kind = 3").unwrap();
        let e = load_templates(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
    }
}

#[cfg(test)]
mod driver_tests {
    //! The driver against an in-memory chain: weights on a commit-reveal subnet are committed
    //! when a tempo closes and revealed, with the committed salt, in the reveal tempo; the Ledger
    //! head is anchored.
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use orchestra_chain::{
        AccountId, AxonInfo, ChainResult, Hyperparams, MechId, Metagraph, NetUid, Neuron,
        RuntimeShape, StakeItem, TempoSchedule, TxOutcome, WeightsCommit, WeightsReveal,
        WeightsSubmission, commit_hash_v2,
    };
    use orchestra_mechanism::orchestration::OrchestrationTerms;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct FakeChain {
        block: AtomicU64,
        /// `current_block` reads so far: the chain moves one block every `READS_PER_BLOCK`.
        reads: AtomicU64,
        commits: Mutex<Vec<(u64, WeightsCommit)>>,
        /// Commit-reveal v4 (`CommitRevealWeightsVersion` 4) instead of v2.
        timelocked: bool,
        timelocked_commits: Mutex<Vec<orchestra_chain::TimelockedCommit>>,
        reveals: Mutex<Vec<(u64, WeightsReveal)>>,
        sets: Mutex<Vec<WeightsSubmission>>,
        anchors: Mutex<Vec<Vec<u8>>>,
    }

    const TEMPO: u16 = 3;
    /// The fake chain's clock is the node's own polling, not wall time: a node slowed by a
    /// loaded machine sees every block (and every tempo) instead of skipping some, so the
    /// schedule the test checks does not depend on how busy the machine is.
    const READS_PER_BLOCK: u64 = 3;

    fn ok() -> TxOutcome {
        TxOutcome {
            tx_hash: [1; 32],
            block_hash: [2; 32],
            finalized: true,
            events: vec![],
        }
    }

    fn neuron(uid: u16, hotkey: AccountId, axon: Option<AxonInfo>) -> Neuron {
        Neuron {
            uid,
            hotkey,
            coldkey: None,
            stake: 1,
            validator_permit: uid == 0,
            active: true,
            axon,
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

    impl Chain for FakeChain {
        fn runtime_shape(&self) -> RuntimeShape {
            RuntimeShape {
                spec_name: "fake".into(),
                spec_version: 1,
                transaction_version: 1,
                subtensor_pallet_index: 7,
                stake_item: StakeItem::TotalHotkeyAlpha,
                has_mechanisms: false,
                indexed_by_netuid_index: false,
                has_commit_reveal: true,
                has_timelocked_commits: self.timelocked,
                has_commitments: true,
                has_subnet_info_api: false,
                features: Default::default(),
            }
        }
        fn signer(&self) -> Option<AccountId> {
            Some(Hotkey::from_uri("//Alice").unwrap().public_key())
        }
        async fn current_block(&self) -> ChainResult<u64> {
            let reads = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
            if reads.is_multiple_of(READS_PER_BLOCK) {
                Ok(self.block.fetch_add(1, Ordering::SeqCst) + 1)
            } else {
                Ok(self.block.load(Ordering::SeqCst))
            }
        }
        async fn tempo_schedule(&self, netuid: NetUid) -> ChainResult<TempoSchedule> {
            Ok(TempoSchedule::at(
                self.block.load(Ordering::SeqCst),
                netuid,
                TEMPO,
            ))
        }
        async fn metagraph(&self, netuid: NetUid, mecid: MechId) -> ChainResult<Metagraph> {
            let alice = Hotkey::from_uri("//Alice").unwrap().public_key();
            let bob = Hotkey::from_uri("//Bob").unwrap().public_key();
            // Bob's axon is a closed port: challenges fail fast.
            let axon = AxonInfo {
                block: 0,
                version: 1,
                ip: u128::from(u32::from(std::net::Ipv4Addr::LOCALHOST)),
                port: 1,
                ip_type: 4,
                protocol: 0,
            };
            Ok(Metagraph {
                netuid,
                mecid,
                block: self.block.load(Ordering::SeqCst),
                neurons: vec![neuron(0, alice, None), neuron(1, bob, Some(axon))],
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
                weights_version_key: 3,
                weights_rate_limit: 0,
                activity_cutoff: 5000,
                max_allowed_uids: 256,
                max_allowed_validators: 64,
                bonds_moving_average: 900_000,
                serving_rate_limit: 0,
                commit_reveal_enabled: Some(true),
                reveal_period_epochs: Some(1),
                liquid_alpha_on: None,
                yuma3_on: None,
                mechanism_count: 1,
                activity_cutoff_factor_milli: None,
                bonds_reset_on: None,
                commit_reveal_version: Some(if self.timelocked { 4 } else { 2 }),
                mechanism_emission_split: None,
            })
        }
        async fn set_weights(&self, w: &WeightsSubmission) -> ChainResult<TxOutcome> {
            self.sets.lock().unwrap().push(w.clone());
            Ok(ok())
        }
        async fn commit_weights(&self, c: &WeightsCommit) -> ChainResult<TxOutcome> {
            let b = self.block.load(Ordering::SeqCst);
            self.commits.lock().unwrap().push((b, *c));
            Ok(ok())
        }
        async fn commit_timelocked_weights(
            &self,
            c: &orchestra_chain::TimelockedCommit,
        ) -> ChainResult<TxOutcome> {
            self.timelocked_commits.lock().unwrap().push(c.clone());
            Ok(ok())
        }
        async fn reveal_weights(&self, r: &WeightsReveal) -> ChainResult<TxOutcome> {
            let b = self.block.load(Ordering::SeqCst);
            self.reveals.lock().unwrap().push((b, r.clone()));
            Ok(ok())
        }
        async fn serve_axon(&self, _: &orchestra_chain::AxonServe) -> ChainResult<TxOutcome> {
            Ok(ok())
        }
        async fn anchor_commitment(&self, _: NetUid, data: &[u8]) -> ChainResult<TxOutcome> {
            self.anchors.lock().unwrap().push(data.to_vec());
            Ok(ok())
        }
    }

    /// The validator's settings for a fake chain, with Bob (uid 1) already scored so the first
    /// closed tempo has weights to submit.
    fn scored_settings(dir: &std::path::Path) -> Settings {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let settings = Settings {
            netuid: 1,
            chain_url: "fake".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            state_dir: dir.to_path_buf(),
            ledger_seed: Some(repo.join("mocks/subnets")),
            objectives: None,
            miners: BTreeMap::new(),
            subnets: BTreeMap::new(),
            subnets_url: None,
            params: MechanismParams::default(),
            challenge: ChallengeConfig {
                deadline_ms: 500,
                ..ChallengeConfig::default()
            },
            challenge_every_blocks: 1,
            anchor_every_blocks: 2,
            poll: Duration::from_millis(10),
            version_key: None,
            metagraph_refresh_blocks: 10,
            network_slack_ms: 100,
            limits: orchestra_ledger::access::Limits::default(),
            organic_attempts: orchestra_validator::DEFAULT_ORGANIC_ATTEMPTS,
            schemes: Default::default(),
            drand: orchestra_chain::crv4::Beacon::quicknet(),
            pay: None,
        };
        {
            let mut store = StateStore::open(&dir.join("validator.db")).unwrap();
            let mut state = orchestra_validator::Scorer::new(
                MechanismParams::default(),
                orchestra_validator::ScorerConfig::default(),
                [],
            )
            .state();
            let terms = OrchestrationTerms {
                hash_verified: 1.0,
                schema_valid: 1.0,
                completeness: 1.0,
                routing: 1.0,
                latency: 1.0,
                fidelity: 0.0,
            };
            state.ema.observe_orchestration(1, &terms, 0.5);
            store.save_legacy_scorer(&state).unwrap();
        }
        settings
    }

    /// Runs a validator as Alice on `chain` until `done` holds (the node's polls move the
    /// chain on; at most 60 s), lets the loop record the last result, and stops it.
    async fn run_node_until(
        settings: Settings,
        chain: &Arc<FakeChain>,
        done: impl Fn(&FakeChain) -> bool,
    ) {
        chain.block.store(1, Ordering::SeqCst);
        let alice = Hotkey::from_uri("//Alice").unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let node = tokio::spawn(serve(settings, alice, chain.clone(), async move {
            let _ = stopped.await;
        }));
        for _ in 0..1500 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            if done(chain) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop.send(());
        node.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commit_reveal_and_anchor_on_a_fake_chain() {
        let dir = tempfile::tempdir().unwrap();
        let settings = scored_settings(dir.path());
        let chain = Arc::new(FakeChain::default());
        run_node_until(settings, &chain, |c| !c.reveals.lock().unwrap().is_empty()).await;
        let alice = Hotkey::from_uri("//Alice").unwrap();

        let commits = chain.commits.lock().unwrap().clone();
        let reveals = chain.reveals.lock().unwrap().clone();
        assert!(
            chain.sets.lock().unwrap().is_empty(),
            "no plain set_weights"
        );
        assert!(
            !commits.is_empty() && !reveals.is_empty(),
            "{commits:?} {reveals:?}"
        );
        let (commit_block, commit) = commits[0];
        let (reveal_block, reveal) = &reveals[0];
        let w = &reveal.weights;
        assert_eq!((w.netuid, w.mecid, w.version_key), (1, 0, 3));
        assert_eq!(w.uids, vec![1]);
        assert_eq!(reveal.salt.len(), 8);
        assert_eq!(
            commit_hash_v2(
                &alice.public_key(),
                1,
                &w.uids,
                &w.values,
                &reveal.salt,
                w.version_key
            ),
            commit.hash,
            "the reveal opens the commit"
        );
        // Revealed one tempo after the commit was made (RevealPeriodEpochs = 1), by the core's
        // tempo indices: a commit row names the tempo it closed, made while the next one is
        // open; a reveal row the open tempo it is made in. (Extrinsics are submitted off the
        // loop while the chain moves on, so the blocks they land at prove nothing.)
        let rows = StateStore::open(&dir.path().join("validator.db"))
            .unwrap()
            .weights()
            .unwrap();
        let tempo_of = |status: &str| rows.iter().find(|r| r.status == status).map(|r| r.tempo);
        let (Some(closed), Some(revealed_in)) = (tempo_of("committed"), tempo_of("ok")) else {
            panic!("a commit and a reveal are recorded: {rows:?}");
        };
        assert_eq!(revealed_in, closed + 2, "{rows:?}");
        assert!(reveal_block > &commit_block);
        // The Ledger head was anchored: tree size (12 seeded entries) ‖ block ‖ root.
        let anchors = chain.anchors.lock().unwrap().clone();
        assert!(!anchors.is_empty());
        assert_eq!(anchors[0].len(), 48);
        assert_eq!(u64::from_be_bytes(anchors[0][..8].try_into().unwrap()), 12);
        // The reveal is recorded as done.
        let store = StateStore::open(&dir.path().join("validator.db")).unwrap();
        let pending = store.pending_reveals().unwrap();
        assert!(
            pending.iter().all(|p| p.salt != reveal.salt),
            "the revealed commit is no longer pending"
        );
        let statuses: Vec<String> = store
            .weights()
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert!(statuses.contains(&"committed".to_string()), "{statuses:?}");
        assert!(statuses.contains(&"ok".to_string()), "{statuses:?}");
    }

    /// On a runtime at `CommitRevealWeightsVersion` 4 the node commits timelocked weights that
    /// open, with the beacon's signature of the commit's round, to its own weights (and to
    /// nothing with another round's), sends no reveal, and records the round.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timelocked_commits_on_a_fake_chain() {
        use orchestra_chain::crv4;
        let dir = tempfile::tempdir().unwrap();
        let beacon = crv4::SimBeacon::from_seed([8; 32]);
        let mut settings = scored_settings(dir.path());
        settings.drand = beacon.beacon().clone();
        let chain = Arc::new(FakeChain {
            timelocked: true,
            ..FakeChain::default()
        });
        run_node_until(settings, &chain, |c| {
            !c.timelocked_commits.lock().unwrap().is_empty()
        })
        .await;
        let alice = Hotkey::from_uri("//Alice").unwrap();

        let commits = chain.timelocked_commits.lock().unwrap().clone();
        assert!(!commits.is_empty(), "a timelocked commit");
        assert!(chain.commits.lock().unwrap().is_empty(), "no v2 commit");
        assert!(
            chain.reveals.lock().unwrap().is_empty(),
            "nothing to reveal"
        );
        let c = &commits[0];
        assert_eq!((c.netuid, c.mecid, c.commit_reveal_version), (1, 0, 4));
        let opened = crv4::decrypt(&c.commit, &beacon.signature(c.reveal_round)).unwrap();
        let p = crv4::decode_payload(&opened).unwrap();
        assert_eq!(p.hotkey, alice.public_key().to_vec());
        assert_eq!((p.uids, p.values, p.version_key), (vec![1], vec![65535], 3));
        assert!(crv4::decrypt(&c.commit, &beacon.signature(c.reveal_round + 1)).is_err());
        let rows = StateStore::open(&dir.path().join("validator.db"))
            .unwrap()
            .weights()
            .unwrap();
        assert!(
            rows.iter().any(|r| r.status == "committed"
                && r.detail
                    .contains(&format!("drand round {}", c.reveal_round))),
            "{rows:?}"
        );
    }
}
