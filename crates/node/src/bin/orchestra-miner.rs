//! `orchestra-miner`: answers validators' challenges by orchestrating subnets.
//! `orchestra-miner --help` explains every flag; `orchestra_node::miner` the routes and metrics.

use clap::Parser;
use orchestra_node::config::{block_on, init_tracing, normalize_args, shutdown_signal};
use orchestra_node::miner::{DEFAULT_PORT, MinerArgs, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    init_tracing();
    let args = MinerArgs::parse_from(normalize_args(std::env::args_os()));
    let (cfg, settings) = match args.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let hotkey = match cfg.hotkey() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    block_on(async move {
        let addr = cfg.listen_addr(DEFAULT_PORT);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding {addr}: {e}"))?;
        println!("listening on http://{}", listener.local_addr()?);
        run(cfg, settings, hotkey, listener, shutdown_signal()).await
    })
}
