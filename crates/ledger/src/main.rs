//! `orchestra-ledger`: serve the Subnet Ledger query API, manage API keys, seed from mock files.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use orchestra_http::clock::now_secs;
use orchestra_http::shutdown_signal;
use orchestra_ledger::access::{Limits, generate_key, hash_key};
use orchestra_ledger::mocks;
use orchestra_ledger::node::LedgerNode;
use orchestra_ledger::server::{AppState, ServerConfig, router};
use orchestra_ledger::sqlite::SqliteStore;
use orchestra_ledger::store::{Store, Tier};
use orchestra_ledger::{Ttl, VerifyParams};
use orchestra_protocol::Hotkey;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Subnet Ledger node: a verified registry of Bittensor subnets with a Merkle change log.
#[derive(Debug, Parser)]
#[command(name = "orchestra-ledger", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the query API.
    Serve(ServeArgs),
    /// Manage API keys.
    Keys(KeysArgs),
    /// Load entries from mock subnet files (`mocks/subnets/*.toml`) into the Ledger.
    Seed(SeedArgs),
}

/// Which hotkey signs tree heads (and receives btauth/1 requests).
#[derive(Debug, Args)]
struct HotkeyArgs {
    /// Dev secret URI of the hotkey, e.g. `//Alice` (local runs only).
    #[arg(long, conflicts_with_all = ["wallet_name", "wallet_hotkey"])]
    hotkey: Option<String>,
    /// Wallet name under the wallet path (as the Bittensor SDK's `--wallet.name`).
    #[arg(long = "wallet.name", id = "wallet_name", requires = "wallet_hotkey")]
    wallet_name: Option<String>,
    /// Hotkey name inside the wallet (`--wallet.hotkey`).
    #[arg(long = "wallet.hotkey", id = "wallet_hotkey", requires = "wallet_name")]
    wallet_hotkey: Option<String>,
    /// Wallet directory (`--wallet.path`); default `~/.bittensor/wallets`.
    #[arg(long = "wallet.path", id = "wallet_path")]
    wallet_path: Option<PathBuf>,
}

impl HotkeyArgs {
    fn load(&self) -> Result<Hotkey> {
        if let Some(uri) = &self.hotkey {
            return Hotkey::from_uri(uri).context("loading --hotkey");
        }
        if let (Some(w), Some(h)) = (&self.wallet_name, &self.wallet_hotkey) {
            let base = match &self.wallet_path {
                Some(p) => p.clone(),
                None => std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .context("HOME is not set; pass --wallet.path")?
                    .join(".bittensor/wallets"),
            };
            return Hotkey::from_wallet(&base, w, h).context("loading the wallet hotkey");
        }
        bail!("no hotkey: pass --hotkey //Alice (dev) or --wallet.name and --wallet.hotkey")
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// SQLite database file (created if absent).
    #[arg(long)]
    db: PathBuf,
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free port; the bound address
    /// is printed on stdout as `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    hotkey: HotkeyArgs,
    /// Extra validator hotkeys (ss58) allowed to append changes; the server's own always may.
    #[arg(long = "validator")]
    validators: Vec<String>,
    /// Requests per minute allowed to `free` keys.
    #[arg(long, default_value_t = 60)]
    free_per_minute: u64,
    /// Lookups per calendar month allowed to `developer` keys.
    #[arg(long, default_value_t = 1_000)]
    developer_per_month: u64,
    /// Largest request body accepted, bytes (larger gets 413).
    #[arg(long, default_value_t = 1 << 20)]
    body_limit: usize,
    /// How often usage counts are flushed to the database and keys reloaded, ms.
    #[arg(long, default_value_t = 1_000)]
    flush_ms: u64,
    /// A hotkey (ss58) that signs btauth/1 with ed25519 (repeatable); every other must sign with
    /// sr25519, whatever its `X-Bittensor-Crypto` header says.
    #[arg(long = "auth.ed25519-hotkey", value_name = "SS58")]
    ed25519_hotkeys: Vec<String>,
    /// Trust each request's `X-Bittensor-Crypto` header for its scheme, as the Python SDK's
    /// `verify` does (excludes `--auth.ed25519-hotkey`).
    #[arg(long = "auth.trust-declared-scheme")]
    trust_declared_scheme: bool,
    /// The URL clients reach this server at, as the A2A agent card names it
    /// [default: `http://` + the request's Host header].
    #[arg(long = "public-url", value_name = "URL")]
    public_url: Option<String>,
    #[command(flatten)]
    pay: PayArgs,
}

/// Pay per call (x402): callers without an API key pay each `/v1` read with a TAO transfer.
#[derive(Debug, Args)]
struct PayArgs {
    /// Sell reads per call: the ss58 account TAO transfers must reach. Unset: API keys only.
    #[arg(long = "x402.pay-to", value_name = "SS58", requires = "x402_chain")]
    pay_to: Option<String>,
    /// Price of one read, rao (100000 = 0.0001 TAO).
    #[arg(long = "x402.price-rao", value_name = "RAO", default_value_t = 100_000)]
    price_rao: u64,
    /// The chain transfers are settled on (subtensor WebSocket URL, e.g. ws://127.0.0.1:9944).
    #[arg(long = "x402.chain", value_name = "URL", id = "x402_chain")]
    chain: Option<String>,
    /// How long a quote stands, seconds; also the oldest transfer accepted as payment.
    #[arg(long = "x402.quote-secs", value_name = "SECS", default_value_t = 300)]
    quote_secs: u64,
    /// Where used payments are remembered [default: next to --db, `<name>.payments.db`].
    #[arg(long = "x402.payments-db", value_name = "PATH")]
    payments_db: Option<PathBuf>,
}

impl PayArgs {
    /// The paywall, connecting to the chain (inside the runtime).
    async fn paywall(&self, db: &Path) -> Result<Option<std::sync::Arc<orchestra_x402::Paywall>>> {
        let (Some(pay_to), Some(url)) = (&self.pay_to, &self.chain) else {
            return Ok(None);
        };
        let sale = orchestra_ledger::server::ReadSale {
            chain_url: url.clone(),
            pay_to: pay_to.clone(),
            price_rao: self.price_rao,
            quote_secs: self.quote_secs,
            payments_db: self
                .payments_db
                .clone()
                .unwrap_or_else(|| db.with_extension("payments.db")),
        };
        let paywall = sale
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("--x402: {e}"))?;
        tracing::info!(
            network = %paywall.price().network,
            price_rao = self.price_rao,
            payments = %sale.payments_db.display(),
            "selling reads per call (x402)"
        );
        Ok(Some(std::sync::Arc::new(paywall)))
    }
}

#[derive(Debug, Args)]
struct KeysArgs {
    /// SQLite database file (may also follow the action: `keys create --db PATH …`).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    #[command(subcommand)]
    action: KeysAction,
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create a key and print it once (only its hash is stored).
    Create {
        /// Access tier.
        #[arg(long, value_enum)]
        tier: Tier,
        /// Free-form label (who it is for).
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (id, tier, label, state).
    List,
    /// Revoke a key by id.
    Revoke {
        /// Key id, as `keys list` shows it.
        id: i64,
    },
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// SQLite database file (created if absent).
    #[arg(long)]
    db: PathBuf,
    /// Directory of mock subnet files (`mocks/subnets/*.toml`), checked as the simulator and
    /// `orchestra-mock-subnet` check them.
    #[arg(long)]
    mocks: PathBuf,
    /// Block to record the seed changes at (default: the log's last block).
    #[arg(long)]
    block: Option<u64>,
    #[command(flatten)]
    hotkey: HotkeyArgs,
}

fn open_store(db: &Path) -> Result<SqliteStore> {
    SqliteStore::open(db).with_context(|| format!("cannot open Ledger database {}", db.display()))
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let res = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Keys(a) => keys(a),
        Command::Seed(a) => seed(a),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn keys(a: KeysArgs) -> Result<()> {
    let db = a.db.context("pass --db PATH (the Ledger database)")?;
    let mut store = open_store(&db)?;
    match a.action {
        KeysAction::Create { tier, label } => {
            let key = generate_key();
            let k = store.create_key(hash_key(&key), tier, label.as_deref(), now_secs())?;
            println!("{key}");
            eprintln!(
                "created key id {} (tier {}); it is shown only once",
                k.id,
                tier.name()
            );
        }
        KeysAction::List => {
            println!("{:>5}  {:<11}  {:<8}  label", "id", "tier", "state");
            for k in store.list_keys()? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:>5}  {:<11}  {:<8}  {}",
                    k.id,
                    k.tier.name(),
                    state,
                    k.label.unwrap_or_default()
                );
            }
        }
        KeysAction::Revoke { id } => {
            store.revoke_key(id, now_secs())?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}

fn seed(a: SeedArgs) -> Result<()> {
    let hotkey = a.hotkey.load()?;
    let entries: Vec<_> = orchestra_mocks::MockSet::load_dir(&a.mocks)?
        .entries()
        .into_values()
        .collect();
    let store: Box<dyn Store> = Box::new(open_store(&a.db)?);
    let mut node = LedgerNode::open(store, hotkey, VerifyParams::default())?;
    let block = a.block.unwrap_or(node.signed_head().head.block);
    let me = node.ss58();
    let mut changes = Vec::new();
    for e in &entries {
        if node.state().get(e.netuid).is_some() {
            tracing::info!(netuid = e.netuid, "already in the Ledger; skipped");
            continue;
        }
        changes.push(mocks::seed_change(e, &me, block)?);
    }
    let n = changes.len();
    if n > 0 {
        node.append(changes)?;
    }
    let h = node.signed_head();
    println!(
        "seeded {n} of {} entries; log size {}, root {}",
        entries.len(),
        h.head.tree_size,
        h.head.root
    );
    Ok(())
}

fn serve(a: ServeArgs) -> Result<()> {
    let hotkey = a.hotkey.load()?;
    let store: Box<dyn Store> = Box::new(open_store(&a.db)?);
    let node = LedgerNode::open(store, hotkey, VerifyParams::default())
        .with_context(|| format!("cannot load the Ledger from {}", a.db.display()))?;
    let mut config = ServerConfig {
        body_limit: a.body_limit,
        limits: Limits {
            free_per_minute: a.free_per_minute,
            developer_per_month: a.developer_per_month,
        },
        ttl: Ttl::default(),
        validators: a.validators.into_iter().collect::<HashSet<_>>(),
        log_page: 1_000,
        schemes: orchestra_protocol::btauth::SchemeSource::from_flags(
            &a.ed25519_hotkeys,
            a.trust_declared_scheme,
        )
        .map_err(|e| anyhow::anyhow!("--auth.ed25519-hotkey: {e}"))?,
        paywall: None,
        public_url: a.public_url.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        config.paywall = a.pay.paywall(&a.db).await?;
        let state = AppState::new(node, config);
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "serving the Ledger API");
        println!("listening on {addr}");
        let flusher = state.spawn_usage_flusher(Duration::from_millis(a.flush_ms.max(10)));
        let served = axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await;
        flusher.stop().await;
        served.context("serving")?;
        tracing::info!("stopped; usage flushed");
        Ok(())
    })
}
