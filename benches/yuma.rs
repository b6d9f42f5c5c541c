//! Yuma epoch benches: one epoch at 256 uids (64 validators × 192 miners) and at 4096 uids
//! (256 validators × 3840 miners), every validator weighting every miner, bonds carried from a
//! previous epoch. Targets: < 0.2 ms and < 9 ms median on one core.
#![allow(missing_docs)]
use criterion::{Criterion, criterion_group, criterion_main};
use orchestra_yuma::{EpochInput, EpochScratch, NeuronInput, run_epoch, run_epoch_with_scratch};
use std::hint::black_box;

/// A subnet of `n` uids whose first `validators` uids validate and weight every miner with
/// deterministic pseudo-random weights; bonds come from one earlier epoch.
fn subnet(n: usize, validators: usize, yuma3: bool) -> EpochInput {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let neurons = (0..n)
        .map(|u| {
            let validator = u < validators;
            NeuronInput {
                stake: if validator {
                    1_000_000_000 + next() % 1_000_000_000_000
                } else {
                    0
                },
                validator_permit: validator,
                registered_at: 0,
                last_update: 10_000,
                weights: if validator {
                    (validators..n)
                        .map(|j| (j as u16, (next() % 65_536) as u16))
                        .collect()
                } else {
                    Vec::new()
                },
                bonds: Vec::new(),
                commit_block: None,
            }
        })
        .collect();
    let mut input: EpochInput = serde_json::from_value(serde_json::json!({
        "block": 10_000, "emission": 1_000_000_000u64, "neurons": []
    }))
    .unwrap_or_else(|e| panic!("bench input: {e}"));
    input.neurons = neurons;
    input.max_allowed_validators = validators as u16;
    input.yuma3 = yuma3;
    let first = run_epoch(&input).unwrap_or_else(|e| panic!("{e}"));
    for (i, nr) in input.neurons.iter_mut().enumerate() {
        nr.bonds = first.bonds[i].clone();
        nr.validator_permit = first.validator_permit[i];
    }
    input.block += 360;
    for nr in &mut input.neurons {
        nr.last_update = input.block;
    }
    input
}

fn bench(c: &mut Criterion) {
    for (n, v) in [(256, 64), (4096, 256)] {
        for (name, yuma3) in [("yuma", false), ("yuma3", true)] {
            let input = subnet(n, v, yuma3);
            c.bench_function(&format!("{name}/epoch_{n}_uids_{v}_validators"), |b| {
                b.iter(|| run_epoch(black_box(&input)))
            });
            // The same epoch reusing one scratch (what a long-running caller would do).
            let mut scratch = EpochScratch::new();
            c.bench_function(
                &format!("{name}/epoch_{n}_uids_{v}_validators_scratch"),
                |b| b.iter(|| run_epoch_with_scratch(black_box(&input), &mut scratch)),
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
