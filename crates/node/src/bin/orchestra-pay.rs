//! `orchestra-pay`: buy one call to an Orchestra server with x402 (a TAO transfer) and print its
//! answer. `orchestra-pay --help` lists the flags; docs/agents.md explains the protocol.

use clap::Parser;
use orchestra_node::config::{block_on, init_tracing};
use orchestra_node::pay::{PayArgs, PayError, buy};
use std::process::ExitCode;

fn main() -> ExitCode {
    init_tracing();
    let args = PayArgs::parse();
    block_on(async move {
        let bought = buy(&args).await?;
        if let Some(s) = &bought.settlement {
            eprintln!(
                "settled: {} rao from {} ({})",
                s.amount, s.payer, s.transaction
            );
        }
        println!("{}", bought.body);
        if (200..300).contains(&bought.status) {
            Ok(())
        } else {
            Err(PayError::Http(format!(
                "the server answered {}",
                bought.status
            )))
        }
    })
}
