//! Node configuration: the SDK-style common flags every binary takes ([`CommonArgs`]), one TOML
//! file per node (`--config node.toml`), flags overriding file values, and every mechanism
//! parameter overridable.
//!
//! ```toml
//! # node.toml
//! netuid = 1
//! network = "local"            # finney | test | local | ws://… | wss://…
//! port = 8091
//! host = "0.0.0.0"
//!
//! [wallet]
//! name = "default"
//! hotkey = "default"           # a hotkey file name, or a dev URI such as "//Alice"
//! path = "~/.bittensor/wallets"
//!
//! [mechanism]                  # any key of orchestra_mechanism::MechanismParams
//! audit_rate = 0.3
//! orchestration_weights = { routing = 0.2 }
//!
//! [auth]                       # btauth/1: which scheme each sender signs with
//! ed25519_hotkeys = []         # hotkeys (ss58) that sign with ed25519; all others sr25519
//! trust_declared_scheme = false  # true: trust X-Bittensor-Crypto, as the Python SDK does
//!
//! [miner]                      # binary-specific tables, read with NodeConfig::section
//! max_concurrency = 16
//! ```
//!
//! Precedence: flag > file > default. Mechanism parameters are overridden with
//! `--mechanism.KEY=VALUE` (or `--mechanism KEY=VALUE`, repeatable), `KEY` a dotted path such as
//! `orchestration_weights.routing`; `VALUE` is read as TOML (`0.2`, `true`, `"normalized"`) and
//! falls back to a plain string (`--mechanism.combination=blended`). Call [`normalize_args`] on
//! `std::env::args_os()` before clap so the dotted form parses. Errors name the file and the key.

use clap::Args;
use orchestra_mechanism::params::MechanismParams;
use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth::SchemeSource;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Top-level keys every node file may hold (besides the binary's own sections).
pub const COMMON_KEYS: &[&str] = &[
    "netuid",
    "network",
    "port",
    "host",
    "wallet",
    "mechanism",
    "auth",
];

/// Why a configuration could not be resolved. Messages name the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key holds a value of the wrong type or out of range.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// The file, or `flags` when no file was given.
        origin: String,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A key nobody reads (usually a typo).
    #[error("{origin}: unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        /// The file.
        origin: String,
        /// The key.
        key: String,
        /// The keys allowed there.
        expected: String,
    },
    /// A `--mechanism` override is not `KEY=VALUE`.
    #[error("--mechanism {0:?}: expected KEY=VALUE, e.g. --mechanism.audit_rate=0.3")]
    BadOverride(String),
    /// The hotkey could not be loaded.
    #[error("hotkey: {0}")]
    Key(#[from] orchestra_protocol::keys::KeyError),
}

/// The flags every Orchestra node takes, in the Bittensor SDK's style. Every one overrides the
/// same key of the `--config` file.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Node config file (TOML); flags override its values. See the crate docs for the layout.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Wallet name: the directory under `--wallet.path` (default `default`).
    #[arg(long = "wallet.name", value_name = "NAME")]
    pub wallet_name: Option<String>,
    /// Hotkey file name inside `<wallet.path>/<wallet.name>/hotkeys/` (default `default`), or a
    /// dev secret URI starting with `//` (e.g. `//Alice`) for local networks.
    #[arg(long = "wallet.hotkey", value_name = "HOTKEY")]
    pub wallet_hotkey: Option<String>,
    /// Wallet root directory (default `~/.bittensor/wallets`).
    #[arg(long = "wallet.path", value_name = "DIR")]
    pub wallet_path: Option<String>,
    /// The subnet this node serves (default 1).
    #[arg(long, value_name = "NETUID")]
    pub netuid: Option<u16>,
    /// Chain endpoint: `finney`, `test`, `local` (ws://127.0.0.1:9944) or a `ws://`/`wss://` URL
    /// (default `local`).
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// TCP port to listen on (default: the binary's own).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address to listen on (default 0.0.0.0).
    #[arg(long, value_name = "IP")]
    pub host: Option<IpAddr>,
    /// Override one mechanism parameter: `--mechanism.KEY=VALUE` or `--mechanism KEY=VALUE`
    /// (repeatable), e.g. `--mechanism.audit_rate=0.3`,
    /// `--mechanism.orchestration_weights.routing=0.2`.
    #[arg(long = "mechanism", value_name = "KEY=VALUE")]
    pub mechanism: Vec<String>,
    /// A hotkey (ss58) that signs btauth/1 requests with ed25519 (repeatable; adds to the
    /// file's `auth.ed25519_hotkeys`). Every other sender must sign with sr25519, whatever its
    /// `X-Bittensor-Crypto` header says.
    #[arg(long = "auth.ed25519-hotkey", value_name = "SS58")]
    pub ed25519_hotkeys: Vec<String>,
    /// Trust each request's `X-Bittensor-Crypto` header for its scheme, as the Python SDK's
    /// `verify` does (`auth.trust_declared_scheme`; excludes pinned ed25519 hotkeys).
    #[arg(long = "auth.trust-declared-scheme")]
    pub trust_declared_scheme: bool,
}

/// Rewrite `--mechanism.KEY=VALUE` and `--mechanism.KEY VALUE` into `--mechanism KEY=VALUE` so
/// clap can parse the SDK-style dotted form. Other arguments pass through unchanged.
pub fn normalize_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut iter = args.into_iter().peekable();
    while let Some(arg) = iter.next() {
        let Some(s) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if let Some(rest) = s.strip_prefix("--mechanism.") {
            out.push(OsString::from("--mechanism"));
            if rest.contains('=') {
                out.push(OsString::from(rest));
            } else {
                let value = iter
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push(OsString::from(format!("{rest}={value}")));
            }
        } else {
            out.push(arg);
        }
    }
    out
}

/// Where the hotkey comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// Wallet name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Hotkey file name, or a `//…` dev URI.
    #[serde(default = "default_name")]
    pub hotkey: String,
    /// Wallet root directory (`~` is expanded).
    #[serde(default = "default_wallet_path")]
    pub path: String,
}

impl Default for WalletConfig {
    fn default() -> Self {
        WalletConfig {
            name: default_name(),
            hotkey: default_name(),
            path: default_wallet_path(),
        }
    }
}

fn default_name() -> String {
    "default".to_string()
}

fn default_wallet_path() -> String {
    "~/.bittensor/wallets".to_string()
}

impl WalletConfig {
    /// The wallet root with `~` expanded from `$HOME`.
    pub fn root(&self) -> PathBuf {
        expand_home(&self.path)
    }

    /// Load the hotkey: a `//…` dev URI directly, else the SDK hotkey file
    /// `<path>/<name>/hotkeys/<hotkey>`.
    pub fn load_hotkey(&self) -> Result<Hotkey, ConfigError> {
        if self.hotkey.starts_with("//") {
            return Ok(Hotkey::from_uri(&self.hotkey)?);
        }
        Ok(Hotkey::from_wallet(&self.root(), &self.name, &self.hotkey)?)
    }
}

/// `~` or `~/…` expanded from `$HOME`; anything else unchanged.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonFile {
    #[serde(default = "default_netuid")]
    netuid: u16,
    #[serde(default = "default_network")]
    network: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default = "default_host")]
    host: IpAddr,
    #[serde(default)]
    wallet: WalletConfig,
    #[serde(default)]
    mechanism: MechanismParams,
    #[serde(default)]
    auth: AuthFile,
}

/// `[auth]`: where btauth/1 senders' schemes come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(default)]
    ed25519_hotkeys: Vec<String>,
    #[serde(default)]
    trust_declared_scheme: bool,
}

fn default_netuid() -> u16 {
    1
}

fn default_network() -> String {
    "local".to_string()
}

fn default_host() -> IpAddr {
    IpAddr::from([0, 0, 0, 0])
}

/// A resolved node configuration: the common keys, the mechanism parameters, and the raw file
/// for the binary's own sections.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the hotkey comes from.
    pub wallet: WalletConfig,
    /// The subnet served.
    pub netuid: u16,
    /// The chain endpoint as given (`local`, `finney`, a URL, …); see [`NodeConfig::chain_url`].
    pub network: String,
    /// Port to listen on, if the file or a flag set one.
    pub port: Option<u16>,
    /// Address to listen on.
    pub host: IpAddr,
    /// Mechanism parameters: defaults, then the file's `[mechanism]`, then `--mechanism.*`;
    /// validated.
    pub mechanism: MechanismParams,
    /// Which scheme each btauth/1 sender signs with (`[auth]`, `--auth.*`).
    pub schemes: SchemeSource,
    /// The config file, if one was given.
    pub file: Option<PathBuf>,
    table: toml::Table,
}

impl CommonArgs {
    /// Resolve the configuration: read `--config` (if any), apply the flags on top, check that
    /// every top-level key is a common one or one of `sections`, and validate the mechanism
    /// parameters.
    pub fn resolve(&self, sections: &[&str]) -> Result<NodeConfig, ConfigError> {
        let mut table = match &self.config {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        let origin = self.origin();
        for key in table.keys() {
            if !COMMON_KEYS.contains(&key.as_str()) && !sections.contains(&key.as_str()) {
                let expected: Vec<&str> = COMMON_KEYS.iter().chain(sections).copied().collect();
                return Err(ConfigError::UnknownKey {
                    origin,
                    key: key.clone(),
                    expected: expected.join(", "),
                });
            }
        }
        self.apply_flags(&mut table)?;
        let mut common = toml::Table::new();
        for key in COMMON_KEYS {
            if let Some(v) = table.get(*key) {
                common.insert((*key).to_string(), v.clone());
            }
        }
        let parsed: CommonFile = from_table(&origin, "", common)?;
        parsed
            .mechanism
            .validate()
            .map_err(|e| ConfigError::Invalid {
                origin: origin.clone(),
                key: "mechanism".to_string(),
                message: e.to_string(),
            })?;
        let schemes = SchemeSource::from_flags(
            &parsed.auth.ed25519_hotkeys,
            parsed.auth.trust_declared_scheme,
        )
        .map_err(|message| ConfigError::Invalid {
            origin: origin.clone(),
            key: "auth.ed25519_hotkeys".to_string(),
            message,
        })?;
        Ok(NodeConfig {
            schemes,
            wallet: parsed.wallet,
            netuid: parsed.netuid,
            network: parsed.network,
            port: parsed.port,
            host: parsed.host,
            mechanism: parsed.mechanism,
            file: self.config.clone(),
            table,
        })
    }

    fn origin(&self) -> String {
        self.config
            .as_ref()
            .map_or_else(|| "flags".to_string(), |p| p.display().to_string())
    }

    fn apply_flags(&self, table: &mut toml::Table) -> Result<(), ConfigError> {
        use toml::Value;
        let mut set = |path: &str, v: Value| set_path(table, path, v);
        if let Some(v) = &self.wallet_name {
            set("wallet.name", Value::String(v.clone()))?;
        }
        if let Some(v) = &self.wallet_hotkey {
            set("wallet.hotkey", Value::String(v.clone()))?;
        }
        if let Some(v) = &self.wallet_path {
            set("wallet.path", Value::String(v.clone()))?;
        }
        if let Some(v) = self.netuid {
            set("netuid", Value::Integer(i64::from(v)))?;
        }
        if let Some(v) = &self.network {
            set("network", Value::String(v.clone()))?;
        }
        if let Some(v) = self.port {
            set("port", Value::Integer(i64::from(v)))?;
        }
        if let Some(v) = self.host {
            set("host", Value::String(v.to_string()))?;
        }
        if !self.ed25519_hotkeys.is_empty() {
            let mut all: Vec<Value> = table
                .get("auth")
                .and_then(|a| a.get("ed25519_hotkeys"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            all.extend(self.ed25519_hotkeys.iter().cloned().map(Value::String));
            set_path(table, "auth.ed25519_hotkeys", Value::Array(all))?;
        }
        if self.trust_declared_scheme {
            set_path(table, "auth.trust_declared_scheme", Value::Boolean(true))?;
        }
        let mut set = |path: &str, v: Value| set_path(table, path, v);
        for o in &self.mechanism {
            let (key, value) = o
                .split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            set(
                &format!("mechanism.{}", key.trim()),
                parse_toml_value(value.trim()),
            )?;
        }
        Ok(())
    }
}

/// Read a TOML file into a table.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}

/// A flag value as TOML (`0.2`, `true`, `[1, 2]`, `"x"`), or a plain string if it is not TOML.
pub fn parse_toml_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Set `value` at dotted `path` in `table`, creating missing tables.
pub fn set_path(
    table: &mut toml::Table,
    path: &str,
    value: toml::Value,
) -> Result<(), ConfigError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(ConfigError::BadOverride(path.to_string()));
        }
        if i + 1 == parts.len() {
            cur.insert((*part).to_string(), value);
            return Ok(());
        }
        let next = cur
            .entry((*part).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match next {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Invalid {
                    origin: "flags".to_string(),
                    key: parts[..=i].join("."),
                    message: "is not a table".to_string(),
                });
            }
        };
    }
    Ok(())
}

/// Deserialize `table` into `T`, reporting the failing key as `prefix.path`.
fn from_table<T: DeserializeOwned>(
    origin: &str,
    prefix: &str,
    table: toml::Table,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let inner = e.path().to_string();
        let key = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_string(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        let message = e.into_inner().to_string();
        // Unknown fields: serde's message already lists the expected ones.
        ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            message,
        }
    })
}

impl NodeConfig {
    /// The binary's own `[name]` table as `T` (its `Default` when absent); errors name the file
    /// and `name.key`.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        match self.table.get(name) {
            None => Ok(T::default()),
            Some(toml::Value::Table(t)) => from_table(&self.origin(), name, t.clone()),
            Some(_) => Err(ConfigError::Invalid {
                origin: self.origin(),
                key: name.to_string(),
                message: "expected a table".to_string(),
            }),
        }
    }

    /// Where the values came from: the file path, or `flags`.
    pub fn origin(&self) -> String {
        self.file
            .as_ref()
            .map_or_else(|| "flags".to_string(), |p| p.display().to_string())
    }

    /// The WebSocket URL of `network` (`local` → `ws://127.0.0.1:9944`, …).
    pub fn chain_url(&self) -> String {
        orchestra_chain::Network::parse(&self.network)
            .url()
            .to_string()
    }

    /// Load the node's hotkey from the wallet settings.
    pub fn hotkey(&self) -> Result<Hotkey, ConfigError> {
        self.wallet.load_hotkey()
    }

    /// The address to listen on, with `default_port` when neither file nor flag set one.
    pub fn listen_addr(&self, default_port: u16) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.host, self.port.unwrap_or(default_port))
    }
}

/// Run a node's async `main` on a multi-threaded tokio runtime and turn its result into the
/// process exit code (0, or 1 with the error chain on stderr).
pub fn block_on<E: std::fmt::Display>(
    main: impl std::future::Future<Output = Result<(), E>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub use orchestra_http::shutdown_signal;

/// The objective templates a node draws challenges from and plans with: the shipped ones
/// (`orchestra_mechanism::templates::SHIPPED`, embedded from `mocks/objectives`), each replaced
/// or extended by a `*.toml` file in `extra` (a file replaces the shipped template of the same
/// kind). Errors name the file.
pub fn load_templates(
    extra: Option<&std::path::Path>,
) -> anyhow::Result<Vec<orchestra_mechanism::templates::ObjectiveTemplate>> {
    use orchestra_mechanism::templates::{ObjectiveTemplate, shipped};
    let mut out = shipped().map_err(|e| anyhow::anyhow!("shipped objective {e}"))?;
    if let Some(dir) = extra {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?;
            let t = ObjectiveTemplate::from_file_text(&f.display().to_string(), &text)
                .map_err(anyhow::Error::new)?;
            out.retain(|o: &ObjectiveTemplate| o.kind != t.kind);
            out.push(t);
        }
    }
    Ok(out)
}

/// Start tracing to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Section {
        max_concurrency: usize,
    }

    fn parse(args: &[&str]) -> CommonArgs {
        let argv = std::iter::once("node").chain(args.iter().copied());
        Cli::parse_from(normalize_args(argv.map(OsString::from))).common
    }

    #[test]
    fn flags_override_file_and_mechanism_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "netuid = 7\nport = 9000\n[wallet]\nhotkey = \"//Bob\"\n[mechanism]\naudit_rate = 0.3\n\
             [miner]\nmax_concurrency = 4\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let args = parse(&[
            "--config",
            p,
            "--port",
            "9100",
            "--mechanism.orchestration_weights.routing=0.25",
            "--mechanism",
            "combination=blended",
            "--mechanism.strike_penalty",
            "0.4",
        ]);
        let cfg = args.resolve(&["miner"]).unwrap();
        assert_eq!(cfg.netuid, 7);
        assert_eq!(cfg.port, Some(9100));
        assert_eq!(cfg.mechanism.audit_rate, 0.3);
        assert_eq!(cfg.mechanism.orchestration_weights.routing, 0.25);
        assert_eq!(cfg.mechanism.strike_penalty, 0.4);
        assert_eq!(
            cfg.mechanism.combination,
            orchestra_mechanism::params::CombinationMode::Blended
        );
        assert_eq!(
            cfg.hotkey().unwrap().ss58(),
            "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
        );
        let s: Section = cfg.section("miner").unwrap();
        assert_eq!(s.max_concurrency, 4);
    }

    #[test]
    fn errors_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let p = path.to_str().unwrap().to_string();
        std::fs::write(&path, "[mechanism]\naudit_rate = \"high\"\n").unwrap();
        let err = parse(&["--config", &p])
            .resolve(&[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&p) && err.contains("mechanism.audit_rate"),
            "{err}"
        );

        std::fs::write(&path, "[mechanism]\naudit_rate = 3.0\n").unwrap();
        let err = parse(&["--config", &p])
            .resolve(&[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("audit_rate") && err.contains("out of range"),
            "{err}"
        );

        std::fs::write(&path, "netuid = 1\nportt = 3\n").unwrap();
        let err = parse(&["--config", &p])
            .resolve(&[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key `portt`"), "{err}");

        std::fs::write(&path, "[miner]\nmax_concurency = 3\n").unwrap();
        let cfg = parse(&["--config", &p]).resolve(&["miner"]).unwrap();
        let err = cfg.section::<Section>("miner").unwrap_err().to_string();
        assert!(
            err.contains("miner") && err.contains("max_concurency"),
            "{err}"
        );

        let err = parse(&["--mechanism", "nonsense"])
            .resolve(&[])
            .unwrap_err();
        assert!(matches!(err, ConfigError::BadOverride(_)));
        let err = parse(&["--mechanism.no_such_param=1"])
            .resolve(&[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_param"), "{err}");
    }

    #[test]
    fn btauth_schemes_come_from_the_file_and_flags() {
        use orchestra_protocol::btauth::SchemeSource;
        let alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
        let bob = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
        assert_eq!(
            parse(&[]).resolve(&[]).unwrap().schemes,
            SchemeSource::default()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        let p = path.to_str().unwrap().to_string();
        std::fs::write(&path, format!("[auth]\ned25519_hotkeys = [\"{alice}\"]\n")).unwrap();
        // The flag adds to the file's list.
        let cfg = parse(&["--config", &p, "--auth.ed25519-hotkey", bob])
            .resolve(&[])
            .unwrap();
        assert_eq!(cfg.schemes, SchemeSource::ed25519([alice, bob]));
        let cfg = parse(&["--auth.trust-declared-scheme"])
            .resolve(&[])
            .unwrap();
        assert_eq!(cfg.schemes, SchemeSource::Header);
        // Errors name the key and the value.
        std::fs::write(&path, "[auth]\ned25519_hotkeys = [\"alice\"]\n").unwrap();
        let err = parse(&["--config", &p])
            .resolve(&[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&p) && err.contains("auth.ed25519_hotkeys") && err.contains("\"alice\""),
            "{err}"
        );
        let err = parse(&[
            "--auth.ed25519-hotkey",
            alice,
            "--auth.trust-declared-scheme",
        ])
        .resolve(&[])
        .unwrap_err()
        .to_string();
        assert!(err.contains("exclude each other"), "{err}");
        std::fs::write(&path, "[auth]\ntrust = true\n").unwrap();
        let err = parse(&["--config", &p])
            .resolve(&[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("trust"), "{err}");
    }

    #[test]
    fn toml_values_fall_back_to_strings() {
        assert_eq!(parse_toml_value("0.5"), toml::Value::Float(0.5));
        assert_eq!(parse_toml_value("true"), toml::Value::Boolean(true));
        assert_eq!(
            parse_toml_value("blended"),
            toml::Value::String("blended".into())
        );
    }
}
