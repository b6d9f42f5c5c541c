//! Simulator throughput: one short run of a small honest scenario, in process (no report).
//! `cargo bench -p orchestra-benches --bench sim`; the whole-process figure for the baseline is
//! `orchestra-sim --seeds 1 --jobs 1 scenarios/baseline.toml`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orchestra_sim::engine::{RunSpec, run};
use orchestra_sim::scenario::Scenario;
use std::path::Path;

const SCENARIO: &str = r#"
[scenario]
name = "bench"
seeds = 1
days = 0.05

[[miners]]
strategy = "honest"
count = 16

[[validators]]
count = 4
sample = 8
"#;

fn sim(c: &mut Criterion) {
    let scenario = Scenario::from_str(Path::new("bench.toml"), SCENARIO.to_string()).unwrap();
    let spec = &scenario.points[0].spec;
    let inputs =
        orchestra_sim::inputs::load(Path::new("bench.toml"), None, &spec.subnets.overrides)
            .unwrap();
    // 0.05 days = 360 blocks = 18 rounds × 4 validators × 8 miners.
    let challenges = 18 * 4 * 8;
    let mut group = c.benchmark_group("sim");
    group.sample_size(10);
    group.throughput(Throughput::Elements(challenges));
    group.bench_function("honest_16_miners_4_validators_360_blocks", |b| {
        b.iter(|| {
            run(&RunSpec {
                spec,
                point: 0,
                seed: 1,
                inputs: &inputs,
            })
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, sim);
criterion_main!(benches);
