//! `orchestra-validator`: challenges miners, audits their proofs, verifies Ledger proposals,
//! serves the Ledger API and `POST /v1/objectives`, and sets weights every tempo.
//! `orchestra-validator --help` explains every flag; `docs/operators.md` how to run it.

use clap::Parser;
use orchestra_node::config::{block_on, init_tracing, normalize_args, shutdown_signal};
use orchestra_node::validator::{ValidatorArgs, run};
use std::process::ExitCode;

fn main() -> ExitCode {
    init_tracing();
    let args = ValidatorArgs::parse_from(normalize_args(std::env::args_os()));
    let (settings, hotkey, _) = match args.resolve() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    block_on(run(settings, hotkey, shutdown_signal()))
}
