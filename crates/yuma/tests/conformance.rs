//! subtensor's public conformance vectors (`tests/epoch_logs.rs`, `tests/epoch.rs`), exact.
//!
//! Each test states the chain's own expectation: the log strings its test greps for (compared with
//! our fixed-point intermediates printed the same way, `{:?}` of `I32F32`), and the u16 / u64
//! values it asserts. Where the chain test only gives proportions, the exact integers pinned here
//! are what those proportions become under the chain's truncating conversions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

mod common;
use common::{carry, logs_setup, neuron, set_weights};
use orchestra_yuma::{run_epoch, run_epoch_traced};

fn dbg<T: std::fmt::Debug>(x: &T) -> String {
    format!("{x:?}")
}

#[test]
fn simple() {
    let input = logs_setup(
        1,
        vec![
            neuron(true, 1_000_000_000, 0, 1),
            neuron(true, 1_000_000_000, 0, 1),
        ],
    );
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(out.active, [true, true]);
    assert_eq!(dbg(&t.stake), "[0.5, 0.5]");
    assert_eq!(out.validator_permit, [true, true]);
    assert_eq!(dbg(&t.active_stake), "[0.5, 0.5]");
    assert_eq!(dbg(&t.consensus), "[0, 0]");
    assert_eq!(dbg(&t.normalized_validator_emission), "[0.5, 0.5]");
    assert_eq!(dbg(&t.normalized_combined_emission), "[0.5, 0.5]");
    assert_eq!(out.emission, [500_000_000, 500_000_000]);
    assert_eq!(out.validator_emission, [500_000_000, 500_000_000]);
    assert_eq!(out.server_emission, [0, 0]);
    assert_eq!(out.stake, [32767, 32767]);
    assert_eq!(out.consensus, [0, 0]);
}

fn five_neurons() -> orchestra_yuma::EpochInput {
    logs_setup(
        1,
        vec![
            neuron(true, 1_000_000_000, 0, 1),
            neuron(true, 1_000_000_000, 0, 1),
            neuron(true, 1_000_000_000, 0, 1),
            neuron(false, 0, 0, 1),
            neuron(false, 0, 0, 1),
        ],
    )
}

#[test]
fn validators_weight_two_distinct_servers() {
    let mut input = five_neurons();
    set_weights(
        &mut input,
        &[&[65535, 0], &[0, 65535], &[65535, 0]],
        &[3, 4],
    );
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(
        dbg(&t.weights),
        "[[(3, 1), (4, 0)], [(3, 0), (4, 1)], [(3, 1), (4, 0)], [], []]"
    );
    assert_eq!(dbg(&t.consensus), "[0, 0, 0, 1, 0]");
    assert_eq!(dbg(&t.validator_trust), "[1, 0, 1, 0, 0]");
    assert_eq!(dbg(&t.ranks), "[0, 0, 0, 0.6666666665, 0]");
    assert_eq!(dbg(&t.dividends), "[0.5, 0, 0.5, 0, 0]");
    assert_eq!(
        dbg(&t.normalized_combined_emission),
        "[0.25, 0, 0.25, 0.5, 0]"
    );
    // Exact stored values.
    assert_eq!(out.validator_permit, [true, true, true, false, false]);
    assert_eq!(out.consensus, [0, 0, 0, 65535, 0]);
    assert_eq!(out.validator_trust, [65535, 0, 65535, 0, 0]);
    assert_eq!(out.incentive, [0, 0, 0, 65535, 0]);
    assert_eq!(out.dividends, [32767, 0, 32767, 0, 0]);
    assert_eq!(out.emission, [250_000_000, 0, 250_000_000, 500_000_000, 0]);
    assert_eq!(out.server_emission, [0, 0, 0, 500_000_000, 0]);
    assert_eq!(out.validator_emission, [250_000_000, 0, 250_000_000, 0, 0]);
}

#[test]
fn validator_splits_weight_across_two_servers() {
    let mut input = five_neurons();
    set_weights(
        &mut input,
        &[&[65535, 0], &[0, 65535], &[65535, 65535]],
        &[3, 4],
    );
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(
        dbg(&t.weights),
        "[[(3, 1), (4, 0)], [(3, 0), (4, 1)], [(3, 0.5), (4, 0.5)], [], []]"
    );
    assert_eq!(dbg(&t.ranks), "[0, 0, 0, 0.333333333, 0.333333333]");
    assert_eq!(
        dbg(&t.bonds_delta),
        "[[(3, 0.5), (4, 0)], [(3, 0), (4, 0.5)], [(3, 0.5), (4, 0.5)], [], []]"
    );
    assert_eq!(dbg(&t.dividends), "[0.25, 0.25, 0.5, 0, 0]");
    assert_eq!(
        dbg(&t.normalized_combined_emission),
        "[0.125, 0.125, 0.25, 0.25, 0.25]"
    );
    assert_eq!(out.dividends, [16383, 16383, 32767, 0, 0]);
    assert_eq!(out.incentive, [0, 0, 0, 32767, 32767]);
    assert_eq!(
        out.emission,
        [
            125_000_000,
            125_000_000,
            250_000_000,
            250_000_000,
            250_000_000
        ]
    );
}

#[test]
fn inactive_mask_zeroes_active_stake() {
    let input = logs_setup(
        1_000_000,
        vec![
            neuron(true, 1_000_000_000, 0, 0),
            neuron(true, 1_000_000_000, 0, 0),
        ],
    );
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(out.active, [false, false]);
    assert_eq!(dbg(&t.active_stake), "[0, 0]");
}

#[test]
fn emergency_mode_pays_by_stake() {
    let input = logs_setup(
        1_000_000,
        vec![
            neuron(true, 1_000_000_000, 0, 0),
            neuron(true, 1_000_000_000, 0, 0),
        ],
    );
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(out.active, [false, false]);
    assert_eq!(dbg(&t.normalized_combined_emission), "[0.5, 0.5]");
    assert_eq!(out.emission, [500_000_000, 500_000_000]);
    assert_eq!(out.validator_emission, [500_000_000, 500_000_000]);
}

#[test]
fn uses_active_stake_when_nonzero() {
    let input = logs_setup(
        1000,
        vec![
            neuron(true, 1_000_000_000, 0, 999),
            neuron(true, 1_000_000_000, 0, 1),
        ],
    );
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(out.active, [true, false]);
    assert_eq!(dbg(&t.active_stake), "[1, 0]");
    assert_eq!(dbg(&t.normalized_combined_emission), "[1, 0]");
    assert_eq!(out.emission, [1_000_000_000, 0]);
}

#[test]
fn validator_permit_masks_active_stake() {
    let input = logs_setup(
        1,
        vec![
            neuron(true, 1_000_000_000, 0, 1),
            neuron(false, 1_000_000_000, 0, 1),
        ],
    );
    let (_, t) = run_epoch_traced(&input).unwrap();
    assert_eq!(dbg(&t.active_stake), "[1, 0]");
}

#[test]
fn topk_validator_permits() {
    let mut input = logs_setup(
        1,
        vec![
            neuron(true, 2_000_000_000, 0, 1),
            neuron(true, 1_000_000_000, 0, 1),
        ],
    );
    input.max_allowed_validators = 1;
    let (out, t) = run_epoch_traced(&input).unwrap();
    assert!(dbg(&t.stake).starts_with("[0.666"), "{}", dbg(&t.stake));
    assert_eq!(out.validator_permit, [true, false]);
    // 2/3 and 1/3 of u16::MAX, truncated as the chain stores them.
    assert_eq!(out.stake, [43689, 21844]);
}

/// `tests/epoch.rs::test_10_graph`: ten uids with stake 1, each weighting only itself. Every
/// self-weight is masked, no permit is stored yet, so emission falls back to stake: 0.1 in
/// I32F32 (truncated) times 1e9 rao is 99_999_999.
#[test]
fn ten_graph() {
    let mut input = logs_setup(1, (0..10).map(|_| neuron(false, 1, 0, 1)).collect());
    input.tempo = u64::from(u16::MAX - 1);
    input.activity_cutoff = 5000;
    for (i, nr) in input.neurons.iter_mut().enumerate() {
        nr.weights = vec![(i as u16, u16::MAX)];
    }
    let out = run_epoch(&input).unwrap();
    for i in 0..10 {
        assert_eq!(out.consensus[i], 0);
        assert_eq!(out.incentive[i], 0);
        assert_eq!(out.dividends[i], 0);
        assert_eq!(out.emission[i], 99_999_999);
    }
}

/// `tests/epoch.rs::test_512_graph`: 64 validators (328_125_000_000_000 rao each) weighting all 448
/// servers equally, three epochs after a permit-setting one; with and without server self-weights,
/// blockwise and regular interleaving.
#[test]
fn graph_512() {
    let n = 512usize;
    let vn = 64usize;
    for interleave in 0..2 {
        for server_self in [false, true] {
            let is_validator = |u: usize| {
                if interleave == 0 {
                    u < vn
                } else {
                    u.is_multiple_of(n / vn)
                }
            };
            let servers: Vec<u16> = (0..n)
                .filter(|&u| !is_validator(u))
                .map(|u| u as u16)
                .collect();
            let mut input = logs_setup(
                1,
                (0..n)
                    .map(|u| {
                        neuron(
                            false,
                            if is_validator(u) {
                                328_125_000_000_000
                            } else {
                                0
                            },
                            0,
                            0,
                        )
                    })
                    .collect(),
            );
            input.tempo = u64::from(u16::MAX - 1);
            input.activity_cutoff = 5000;
            input.max_allowed_validators = vn as u16;
            // First epoch only hands out permits.
            let out = run_epoch(&input).unwrap();
            carry(&mut input, &out);
            for u in 0..n {
                if is_validator(u) {
                    input.neurons[u].weights = servers.iter().map(|&s| (s, u16::MAX)).collect();
                    input.neurons[u].last_update = 1;
                } else if server_self {
                    input.neurons[u].weights = vec![(u as u16, u16::MAX)];
                    input.neurons[u].last_update = 1;
                }
            }
            let mut out = out;
            for _ in 0..3 {
                out = run_epoch(&input).unwrap();
                carry(&mut input, &out);
            }
            let server = servers[0];
            for u in 0..n {
                if is_validator(u) {
                    assert_eq!(out.consensus[u], 0);
                    assert_eq!(out.incentive[u], 0);
                    assert_eq!(out.dividends[u], 1023);
                    assert_eq!(out.emission[u], 7_812_500);
                    let b: Vec<_> = out.bonds[u].iter().filter(|(j, _)| *j == server).collect();
                    assert_eq!(b, [&(server, 65535)]);
                } else {
                    assert_eq!(out.consensus[u], 146);
                    assert_eq!(out.incentive[u], 146);
                    assert_eq!(out.dividends[u], 0);
                    assert_eq!(out.emission[u], 1_116_071);
                    assert!(out.bonds[u].is_empty());
                }
            }
        }
    }
}
