//! Test your own miner strategy in the simulator before you deploy it.
//!
//! This miner answers challenges honestly but only proposes Ledger *schema* changes — it never
//! spends effort on metrics updates or deprecations. Is that a good trade? The example adds a
//! group of these miners next to the scenario's own miners and runs it:
//!
//! ```sh
//! cargo run --release -p custom-strategy -- scenarios/schema_drift.toml --count 8 --days 2
//! ```
//!
//! Anything that implements [`orchestra_miner::Strategy`] plugs in the same way: register a
//! factory on the simulator's `Inputs` under a name, then use that name in `[[miners]]`.

use orchestra_miner::{Strategy, StrategyCtx};
use orchestra_protocol::ledger::ProposalChange;
use orchestra_protocol::messages::{Challenge, Response};
use orchestra_sim::inputs::StrategyFactory;
use orchestra_sim::runner::{RunnerOptions, run_scenario};
use orchestra_sim::scenario::{MinerGroup, Scenario};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Honest execution; of the proposals the core detected, only schema updates are sent.
struct SchemaOnly;

impl Strategy for SchemaOnly {
    fn name(&self) -> &str {
        "schema_only"
    }

    fn finalize(
        &mut self,
        _ctx: &StrategyCtx<'_>,
        _challenge: &Challenge,
        mut response: Response,
    ) -> Option<Response> {
        response
            .ledger_proposals
            .retain(|p| matches!(p.change, ProposalChange::SchemaUpdate { .. }));
        Some(response)
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: custom-strategy <SCENARIO> [--count N] [--days D] [--seeds S] [--out DIR]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut path, mut count, mut days, mut seeds, mut out) = (None, 8u32, None, None, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--count" => count = args.next().and_then(|v| v.parse().ok()).unwrap_or(count),
            "--days" => days = args.next().and_then(|v| v.parse().ok()),
            "--seeds" => seeds = args.next().and_then(|v| v.parse().ok()),
            "--out" => out = args.next().map(PathBuf::from),
            _ if path.is_none() => path = Some(PathBuf::from(a)),
            _ => return usage(),
        }
    }
    let Some(path) = path else { return usage() };

    let mut scenario = match Scenario::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    scenario.override_runs(seeds, days);
    // Our group runs next to the scenario's own miners at every parameter point.
    for point in &mut scenario.points {
        point.spec.miners.push(MinerGroup {
            strategy: "schema_only".into(),
            count,
            name: None,
            params: toml::Table::new(),
        });
    }

    let factory: StrategyFactory = Arc::new(|params: &toml::Table, _seed| {
        if let Some(key) = params.keys().next() {
            return Err(format!("schema_only takes no parameters, found `{key}`"));
        }
        Ok(Box::new(SchemaOnly) as Box<dyn Strategy>)
    });
    let spec = &scenario.points[0].spec.subnets;
    let inputs = match orchestra_sim::inputs::load(&path, spec.dir.as_deref(), &spec.overrides) {
        Ok(i) => i.with_strategy("schema_only", factory),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = orchestra_sim::engine::validate(&scenario, &inputs) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }

    let dir = out.unwrap_or_else(|| {
        PathBuf::from("reports").join(format!("{}-schema_only", scenario.name()))
    });
    let opts = RunnerOptions {
        jobs: 0,
        progress: true,
    };
    match run_scenario(&scenario, &inputs, &dir, &opts)
        .map_err(|e| e.to_string())
        .and_then(|_| {
            orchestra_report::finalize(&dir, &Default::default()).map_err(|e| e.to_string())
        }) {
        Ok(summary) => {
            print!("{}", orchestra_report::terminal_summary(&summary));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
