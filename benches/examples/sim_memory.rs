//! Peak-memory probe for long runs: simulates one run of a scenario in process and streams its
//! rows to a file as each epoch closes (`orchestra_sim::engine::run_streaming`), the way a
//! driver keeps memory flat. Run it under `/usr/bin/time -v` and compare "Maximum resident set
//! size" across `--days`:
//!
//! ```sh
//! cargo build --release -p orchestra-benches --example sim_memory
//! /usr/bin/time -v target/release/examples/sim_memory scenarios/scale_256.toml 2 /tmp/rows.csv
//! /usr/bin/time -v target/release/examples/sim_memory scenarios/scale_256.toml 8 /tmp/rows.csv
//! ```
//!
//! Arguments: scenario file, days, output file for the rows (`-` discards them), and optionally
//! `collect` to keep every row in memory until the run ends instead (what `engine::run` does).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use orchestra_sim::engine::{RunSpec, run, run_streaming};
use orchestra_sim::scenario::Scenario;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, days, out, rest @ ..] = args.as_slice() else {
        eprintln!("usage: sim_memory <scenario.toml> <days> <rows-out|-> [collect]");
        std::process::exit(2);
    };
    let path = Path::new(file);
    let text = std::fs::read_to_string(path).expect("read scenario");
    let scenario = Scenario::from_str(path, text).expect("valid scenario");
    let mut spec = scenario.points[0].spec.clone();
    spec.scenario.days = days.parse().expect("days is a number");
    let inputs =
        orchestra_sim::inputs::load(path, None, &spec.subnets.overrides).expect("inputs load");
    let run_spec = RunSpec {
        spec: &spec,
        point: 0,
        seed: spec.scenario.seed,
        inputs: &inputs,
    };
    let mut sink: Box<dyn Write> = if out == "-" {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(out).expect("create rows file"),
        ))
    };
    let mut n = 0u64;
    let mut write = |rows: Vec<orchestra_sim::metrics::Row>| {
        for r in rows {
            n += 1;
            writeln!(
                sink,
                "{},{},{},{},{}",
                r.epoch, r.entity, r.strategy, r.metric, r.value
            )
            .expect("write row");
        }
    };
    let t = Instant::now();
    let output = if rest.first().is_some_and(|a| a == "collect") {
        let mut o = run(&run_spec).expect("run");
        write(std::mem::take(&mut o.rows));
        o
    } else {
        run_streaming(&run_spec, &mut write).expect("run")
    };
    eprintln!(
        "{}: {days} days, {n} rows, event log {}, {:.1} s",
        scenario.name(),
        output.event_log_hash,
        t.elapsed().as_secs_f64()
    );
}
