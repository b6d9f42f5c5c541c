//! `orchestra-sim`: run scenario files, or compute one Yuma epoch.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Simulate an Orchestra subnet from scenario files.
#[derive(Parser)]
#[command(name = "orchestra-sim", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Scenario files to run (e.g. `scenarios/baseline.toml`).
    scenarios: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None if cli.scenarios.is_empty() => {
            eprintln!("error: no scenario given; try `orchestra-sim scenarios/baseline.toml`");
            ExitCode::from(2)
        }
        None => {
            eprintln!(
                "error: running scenarios is not built yet (issue 6); \
                 `orchestra-sim epoch` is available"
            );
            ExitCode::from(2)
        }
    }
}
