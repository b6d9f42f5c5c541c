//! `orchestra-sim`: run scenario files, or compute one Yuma epoch.

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Simulate an Orchestra subnet from scenario files.
#[derive(Parser)]
#[command(
    name = "orchestra-sim",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Scenario files to run (e.g. `scenarios/baseline.toml`).
    scenarios: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one Yuma epoch: read its input JSON, print the output JSON.
    Epoch {
        /// Input file, or `-` for stdin.
        input: String,
    },
}

fn read_input(name: &str) -> Result<String, orchestra_sim::epoch_cmd::EpochCmdError> {
    let mut text = String::new();
    let res = if name == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(name).map(|t| text = t)
    };
    res.map_err(|error| orchestra_sim::epoch_cmd::EpochCmdError::Read {
        source_name: name.to_string(),
        error,
    })?;
    Ok(text)
}

fn epoch(name: &str) -> ExitCode {
    let result = read_input(name).and_then(|t| orchestra_sim::epoch_cmd::run_epoch_json(&t));
    match result {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(json.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Epoch { input }) => epoch(&input),
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
