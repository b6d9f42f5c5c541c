//! `orchestra-chain info`: runtime version, detected shape, block and a metagraph summary.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use orchestra_chain::{Network, SubtensorChain, SubtensorConfig};

#[derive(Parser)]
#[command(
    name = "orchestra-chain",
    about = "Subtensor diagnostics for Orchestra"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the runtime version, detected shape, current block and a metagraph summary.
    Info {
        /// `finney`, `test`, `local` or a `ws://…`/`wss://…` URL.
        #[arg(long, default_value = "finney")]
        network: String,
        /// Subnet to summarise.
        #[arg(long)]
        netuid: Option<u16>,
        /// Mechanism of that subnet.
        #[arg(long, default_value_t = 0)]
        mecid: u8,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    match Cli::parse().command {
        Command::Info {
            network,
            netuid,
            mecid,
        } => info(&network, netuid, mecid).await,
    }
}

/// Logs (connection retries, warnings) go to stderr, filtered by `RUST_LOG` (default `warn`),
/// so stdout stays a clean report.
fn tracing_subscriber_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn info(network: &str, netuid: Option<u16>, mecid: u8) -> anyhow::Result<()> {
    let net = Network::parse(network);
    let mut cfg = SubtensorConfig::new(net.url());
    cfg.connect_attempts = 3;
    let chain = SubtensorChain::connect(cfg, None)
        .await
        .with_context(|| format!("connecting to {}", net.url()))?;
    print!(
        "{}",
        orchestra_chain::subtensor::info_report(&chain, netuid, mecid).await?
    );
    Ok(())
}
