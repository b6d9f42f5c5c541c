//! `orchestra-devnet`: a whole Orchestra network on loopback — Chopsticks with the subtensor
//! test runtime, a subnet with dev keys, the mock subnets, an honest and a fabricating miner, and
//! a validator — printing the validator's scores and the weights landing on chain. Ctrl-C stops
//! everything. See `orchestra_node::devnet`.

use clap::Parser;
use orchestra_node::config::{block_on, init_tracing, shutdown_signal};
use orchestra_node::devnet::{Binaries, Devnet, DevnetConfig};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "orchestra-devnet",
    version,
    about = "Run a local Orchestra devnet: Chopsticks, mock subnets, two miners (honest and \
             fabricator) and a validator, and show the validator scoring them and setting weights"
)]
struct Cli {
    /// Repository root (scripts/chopsticks.sh, mocks/) [default: the source tree this binary
    /// was built from, else the current directory].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Where logs and the validator's state go [default: a new directory under the system
    /// temp dir].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Raw chain spec for Chopsticks [default: $ORCHESTRA_CHAIN_SPEC, else
    /// ../shared/chain/raw_spec_testfinney.json next to the repository].
    #[arg(long, value_name = "FILE")]
    chain_spec: Option<PathBuf>,
    /// Tempo of the devnet subnet, blocks.
    #[arg(long, default_value_t = 10)]
    tempo: u16,
    /// Block production period, ms.
    #[arg(long, default_value_t = 500)]
    block_ms: u64,
    /// Blocks between challenge rounds.
    #[arg(long, default_value_t = 2)]
    challenge_every_blocks: u64,
    /// Multiplier on the mock subnets' latencies.
    #[arg(long, default_value_t = 0.05)]
    latency_scale: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "S")]
    duration_s: Option<u64>,
    /// Extra flag for the validator (repeatable), e.g. `--validator-arg=--mechanism.audit_rate=0.5`.
    #[arg(
        long = "validator-arg",
        value_name = "FLAG",
        allow_hyphen_values = true
    )]
    validator_args: Vec<String>,
}

fn default_repo() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built.join("scripts/chopsticks.sh").is_file() {
        built
    } else {
        PathBuf::from(".")
    }
}

fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    block_on(run(cli))
}

async fn run(cli: Cli) -> Result<(), String> {
    let binaries = Binaries::next_to_current_exe().map_err(|e| e.to_string())?;
    let repo = cli.repo.unwrap_or_else(default_repo);
    let work_dir = cli.work_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("orchestra-devnet-{}", std::process::id()))
    });
    let mut config = DevnetConfig::new(binaries, repo, work_dir.clone());
    if let Some(spec) = cli.chain_spec {
        config.chain_spec = spec;
    }
    config.tempo = cli.tempo;
    config.block_ms = cli.block_ms;
    config.challenge_every_blocks = cli.challenge_every_blocks;
    config.latency_scale = cli.latency_scale;
    config.validator_args = cli.validator_args;
    println!("starting the devnet (logs in {})", work_dir.display());
    let devnet = Devnet::start(config).await.map_err(|e| e.to_string())?;
    println!("chain      {}", devnet.chain_url);
    println!("mocks      {}/sn/<netuid>", devnet.mock_url);
    println!(
        "validator  uid 0 {} at {} (Ledger API, /v1/objectives, /status, /metrics)",
        devnet.validator_hotkey, devnet.validator_url
    );
    for m in &devnet.miners {
        println!(
            "miner      uid {} {} at {} ({})",
            m.uid, m.hotkey, m.url, m.strategy
        );
    }
    println!("Ctrl-C stops everything.\n");
    let deadline = cli
        .duration_s
        .map(|s| Instant::now() + Duration::from_secs(s));
    let http = reqwest::Client::new();
    let mut last_tempo = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            break;
        }
        let Ok(resp) = http
            .get(format!("{}/status", devnet.validator_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        else {
            continue;
        };
        let Ok(status) = resp.json::<Value>().await else {
            continue;
        };
        let tempo = status.get("last_tempo_closed").and_then(Value::as_u64);
        if tempo == last_tempo {
            continue;
        }
        last_tempo = tempo;
        let block = status.get("block").and_then(Value::as_u64).unwrap_or(0);
        let size = status
            .get("ledger_tree_size")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        println!("block {block:>5}  tempo {tempo:?} closed  Ledger size {size}");
        for s in status
            .get("scores")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let uid = s.get("uid").and_then(Value::as_u64).unwrap_or(0);
            let strategy = devnet
                .miners
                .iter()
                .find(|m| u64::from(m.uid) == uid)
                .map_or("?", |m| m.strategy.as_str());
            println!(
                "  uid {uid} {strategy:<10}  O {:.4}  L {:.4}  challenges {:>3}  strikes {}",
                s.get("orchestration")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
                s.get("ledger").and_then(Value::as_f64).unwrap_or(0.0),
                s.get("observations").and_then(Value::as_u64).unwrap_or(0),
                s.get("strikes").and_then(Value::as_u64).unwrap_or(0),
            );
        }
        match devnet.weights_on_chain(0).await {
            Ok(w) if !w.is_empty() => println!("  weights on chain (validator uid 0): {w:?}"),
            Ok(_) => println!("  weights on chain: none yet"),
            Err(e) => println!("  weights on chain: {e}"),
        }
    }
    println!("stopping; logs in {}", work_dir.display());
    drop(devnet);
    Ok(())
}
