//! `orchestra-mock-subnet`: serve mock subnets (`mocks/subnets/*.toml`) over HTTP with the
//! simulator's behaviour model. See `orchestra_node::mock_subnet` for the routes.

use anyhow::Context as _;
use clap::Parser;
use orchestra_mocks::{MockSet, MockSubnet};
use orchestra_node::config::{init_tracing, shutdown_signal};
use orchestra_node::mock_subnet::{MockServer, MockServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "orchestra-mock-subnet",
    about = "Serve mock subnets over HTTP with the simulator's behaviour model",
    long_about = "Serve mock subnets over HTTP with the simulator's behaviour model (latency as \
real sleeps, failures, load shedding, schema versions, prices, signed receipts).\n\n\
With one --mock FILE the subnet's endpoints answer at their own paths (POST /v1/chat/completions) \
and at /sn/<netuid>/<path>; with --mocks DIR (or several --mock) every subnet answers at \
/sn/<netuid>/<path>. GET /subnets lists what is served and each subnet's hotkey.\n\n\
Admin (for tests and devnets; protect with --admin-token off loopback):\n  \
POST /admin/schema-version {\"netuid\": 22, \"endpoint\": \"search\", \"version\": 2}\n  \
POST /admin/event {\"netuid\": 22, \"event\": {\"kind\": \"outage_start\"}}\n  \
GET  /admin/state\n\
Also GET /healthz and GET /metrics (Prometheus)."
)]
struct Cli {
    /// A mock subnet file (repeatable).
    #[arg(long, value_name = "FILE")]
    mock: Vec<PathBuf>,
    /// Serve every `*.toml` in this directory.
    #[arg(long, value_name = "DIR")]
    mocks: Option<PathBuf>,
    /// TCP port.
    #[arg(long, default_value_t = 9100)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// World seed: deterministic responses and the random streams derive from it.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Multiply modelled latencies before sleeping (1 = real time, 0 = answer at once).
    #[arg(long, default_value_t = 1.0)]
    latency_scale: f64,
    /// Require `Authorization: Bearer <TOKEN>` on /admin routes.
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Refuse endpoint calls without a valid btauth/1 signature, bound to the subnet's hotkey or
    /// unbound (401, or 403 when signed for another hotkey: the refusals every Orchestra server
    /// shares, docs/protocol.md).
    #[arg(long)]
    require_auth: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    if !(cli.latency_scale.is_finite() && cli.latency_scale >= 0.0) {
        anyhow::bail!("--latency-scale must be a finite number >= 0");
    }
    let mut subnets: Vec<MockSubnet> = Vec::new();
    if let Some(dir) = &cli.mocks {
        let set = MockSet::load_dir(dir).with_context(|| format!("loading {}", dir.display()))?;
        subnets.extend(set.iter().cloned());
    }
    for file in &cli.mock {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        subnets.push(MockSubnet::from_toml_str(
            &file.display().to_string(),
            &text,
        )?);
    }
    if subnets.is_empty() {
        anyhow::bail!("nothing to serve: give --mock FILE or --mocks DIR");
    }
    let set = MockSet::from_subnets(subnets)?;
    let config = MockServerConfig {
        seed: cli.seed,
        latency_scale: cli.latency_scale,
        admin_token: cli.admin_token,
        require_auth: cli.require_auth,
        ..MockServerConfig::default()
    };
    let server = MockServer::new(&set, config);
    let addr = SocketAddr::new(cli.host, cli.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    for n in server.netuids() {
        tracing::info!(
            netuid = n,
            hotkey = server.hotkey(n).unwrap_or(""),
            "serving at http://{local}/sn/{n}"
        );
    }
    println!("listening on http://{local}");
    axum::serve(listener, server.router())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}
