//! Times one epoch at 4096 uids (256 validators × 3840 miners) over many runs; pair with
//! `perf stat -e task-clock` to see CPU time when the machine is shared.
//!
//! Arguments: `[uids] [validators] [runs] [yuma|yuma3] [scratch]`; with `scratch` the epochs
//! reuse one `EpochScratch` (`run_epoch_with_scratch`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_yuma::{EpochInput, EpochScratch, NeuronInput, run_epoch, run_epoch_with_scratch};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(4096, |a| a.parse().unwrap());
    let v: usize = args.get(2).map_or(256, |a| a.parse().unwrap());
    let runs: usize = args.get(3).map_or(50, |a| a.parse().unwrap());
    let yuma3 = args.get(4).is_some_and(|a| a == "yuma3");
    let reuse = args.get(5).is_some_and(|a| a == "scratch");
    let mut scratch = EpochScratch::new();
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let neurons = (0..n)
        .map(|u| NeuronInput {
            stake: if u < v {
                1_000_000_000 + next() % 1_000_000_000_000
            } else {
                0
            },
            validator_permit: u < v,
            last_update: 10_000,
            weights: if u < v {
                (v..n)
                    .map(|j| (j as u16, (next() % 65_536) as u16))
                    .collect()
            } else {
                Vec::new()
            },
            ..NeuronInput::default()
        })
        .collect();
    let mut input: EpochInput = serde_json::from_value(serde_json::json!({
        "block": 10_000, "emission": 1_000_000_000u64, "neurons": []
    }))
    .unwrap();
    input.neurons = neurons;
    input.max_allowed_validators = v as u16;
    input.yuma3 = yuma3;
    let first = run_epoch(&input).unwrap();
    for (i, nr) in input.neurons.iter_mut().enumerate() {
        nr.bonds = first.bonds[i].clone();
    }
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = std::time::Instant::now();
        if reuse {
            let out = run_epoch_with_scratch(std::hint::black_box(&input), &mut scratch);
            std::hint::black_box(out.unwrap());
        } else {
            std::hint::black_box(run_epoch(std::hint::black_box(&input)).unwrap());
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "n={n} v={v} yuma3={yuma3} scratch={reuse}: min {:.3} ms, median {:.3} ms",
        times[0],
        times[times.len() / 2]
    );
}
