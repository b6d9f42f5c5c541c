//! `engine::run_streaming` hands out exactly the rows `engine::run` returns, in the same order,
//! epoch by epoch, and the run itself is unchanged.

use orchestra_sim::engine::{RunSpec, run, run_streaming};
use orchestra_sim::scenario::Scenario;
use std::path::Path;

const SCENARIO: &str = r#"
[scenario]
name = "streaming"
seed = 3
days = 0.1

[chain]
tempo = 90

[[miners]]
strategy = "honest"
count = 6

[[miners]]
strategy = "fabricator"
count = 2

[[validators]]
count = 2
sample = 4

[load]
profile = "constant"
rate_per_hour = 200
"#;

#[test]
fn streamed_rows_equal_collected_rows() {
    let path = Path::new("streaming.toml");
    let scenario = Scenario::from_str(path, SCENARIO.to_string()).expect("valid scenario");
    let spec = &scenario.points[0].spec;
    let inputs = orchestra_sim::inputs::load(path, None, &spec.subnets.overrides).expect("inputs");
    let run_spec = RunSpec {
        spec,
        point: 0,
        seed: 3,
        inputs: &inputs,
    };
    let collected = run(&run_spec).expect("run");
    let mut batches = Vec::new();
    let streamed = run_streaming(&run_spec, &mut |rows| batches.push(rows)).expect("run");
    assert!(streamed.rows.is_empty());
    assert_eq!(streamed.event_log_hash, collected.event_log_hash);
    // One batch per epoch (0.1 days = 720 blocks = 8 tempos of 90) and the whole-run rows.
    assert_eq!(batches.len(), 9);
    assert!(batches.iter().all(|b| !b.is_empty()));
    assert!(batches[8].iter().all(|r| r.epoch == -1));
    // Compared bit for bit: some metrics are NaN when undefined, and NaN != NaN.
    let key = |r: &orchestra_sim::metrics::Row| {
        (
            r.epoch,
            r.entity.clone(),
            r.strategy.clone(),
            r.metric,
            r.value.to_bits(),
        )
    };
    let flat: Vec<_> = batches.iter().flatten().map(key).collect();
    let expected: Vec<_> = collected.rows.iter().map(key).collect();
    assert_eq!(flat, expected);
}
