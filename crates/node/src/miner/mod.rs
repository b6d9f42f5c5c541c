//! The miner server behind `orchestra-miner`: a tokio/axum shell around the sans-IO miner core
//! ([`orchestra_miner::Miner`]).
//!
//! | route | auth | what |
//! |---|---|---|
//! | `POST /orchestrate` | btauth/1, validator permit | body: a [`Challenge`](orchestra_protocol::messages::Challenge) (synthetic or a forwarded organic request); answer: the [`Response`](orchestra_protocol::messages::Response) with its hash-locked proof and the Ledger proposals the detector made (docs/mechanism.md §2, §5: proposals ride in the response) |
//! | `GET /ledger/proposals` | btauth/1, validator permit | the most recent proposals this miner made, newest last (`?since_ms=` filters) |
//! | `GET /healthz` | none | hotkey, strategy, Ledger entries known, requests in flight |
//! | `GET /metrics` | none | Prometheus (the miner's own metrics are listed in [`metrics`]) |
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
//! - 401, 403, 413 when authentication refuses the request: the shared refusal table of
//!   [`orchestra_http`] (`docs/protocol.md`), the same the Ledger API answers with (a wrong
//!   receiver is `403 wrong_receiver`, a hotkey without a validator permit
//!   `403 not_a_validator`).
//!
//! Layout: [`server`] (state, router, handlers), [`driver`] (answering a challenge by driving
//! the core: sub-calls to subnets over HTTP, in parallel where the DAG allows; where each subnet
//! lives comes from `--subnet NETUID=URL` mappings or a multi-subnet mock base URL
//! (`--subnets-url`), endpoint paths from the Ledger view), [`ledger`] (the Ledger view from a
//! Ledger API), [`metrics`] (the miner's Prometheus metrics, besides the HTTP ones of
//! [`crate::metrics`]); this module holds the flags, settings and [`run`].

pub mod driver;
pub mod ledger;
pub mod metrics;
pub mod server;

pub use ledger::{LedgerAuth, fetch_ledger};
pub use server::{Answer, MinerServer, ProposalRecord};

use crate::auth::RequestAuth;
use crate::subnet_client::SubnetDirectory;
use orchestra_miner::MinerConfig;
use orchestra_protocol::Hotkey;
use orchestra_protocol::ledger::Entry;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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
    let auth_config = crate::auth::AuthConfig {
        schemes: cfg.schemes.clone(),
        ..Default::default()
    };
    let mut auth = RequestAuth::btauth(hotkey.ss58(), &auth_config);
    if let Some(p) = &permits {
        auth = auth.with_permits(p.clone());
    }
    let auth = Arc::new(auth);
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
