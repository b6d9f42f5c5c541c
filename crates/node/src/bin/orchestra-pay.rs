//! `orchestra-pay`: buy one call to an Orchestra server with x402 (a TAO transfer) and print its
//! answer. `orchestra-pay --help` lists the flags; docs/agents.md explains the protocol.

use clap::Parser;
use orchestra_node::pay::{PayArgs, PayError, buy};
use std::process::ExitCode;

fn main() -> ExitCode {
    orchestra_node::config::init_tracing();
    let args = PayArgs::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(buy(&args)) {
        Ok(bought) => {
            if let Some(s) = &bought.settlement {
                eprintln!(
                    "settled: {} rao from {} ({})",
                    s.amount, s.payer, s.transaction
                );
            }
            println!("{}", bought.body);
            if (200..300).contains(&bought.status) {
                ExitCode::SUCCESS
            } else {
                eprintln!("error: the server answered {}", bought.status);
                ExitCode::from(1)
            }
        }
        Err(e @ PayError::Usage(_)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
