//! Property tests of the epoch's invariants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

use orchestra_yuma::{
    EpochInput, NeuronInput, SplitRule, YumaError, run_epoch, run_epoch_traced, run_mechanisms,
    split_block_emission, split_mechanism_emission, validate,
};
use proptest::prelude::*;

fn base(block: u64, emission: u64, neurons: Vec<NeuronInput>) -> EpochInput {
    let mut input: EpochInput = serde_json::from_value(serde_json::json!({
        "block": block, "emission": emission, "neurons": []
    }))
    .unwrap();
    input.neurons = neurons;
    input
}

/// Any input at all, including out-of-range uids, repeats, odd hyperparameters.
fn any_input() -> impl Strategy<Value = EpochInput> {
    let neuron = (
        prop_oneof![Just(0u64), 0u64..10_000_000_000, any::<u64>()],
        any::<bool>(),
        0u64..40,
        0u64..40,
        prop::collection::vec((0u16..20, any::<u16>()), 0..8),
        prop::collection::vec((0u16..20, any::<u16>()), 0..8),
        prop::option::of(0u64..40),
    )
        .prop_map(
            |(stake, permit, reg, upd, weights, bonds, commit)| NeuronInput {
                stake,
                validator_permit: permit,
                registered_at: reg,
                last_update: upd,
                weights,
                bonds,
                commit_block: commit,
            },
        );
    (
        (0u64..50, 0u64..50, 0u64..50, any::<u64>()),
        (
            any::<u16>(),
            any::<u16>(),
            prop_oneof![Just(900_000u64), any::<u64>()],
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
            any::<i16>(),
        ),
        (
            0u16..16,
            0u64..5_000_000_000,
            prop::option::of(0u16..20),
            0u64..50,
        ),
        prop::collection::vec(neuron, 0..12),
    )
        .prop_map(|(a, b, c, d, neurons)| {
            let mut input = base(a.0, a.3, neurons);
            input.tempo = a.1;
            input.activity_cutoff = a.2;
            (input.kappa, input.bonds_penalty, input.bonds_moving_average) = b;
            (
                input.yuma3,
                input.liquid_alpha,
                input.alpha_low,
                input.alpha_high,
                input.alpha_sigmoid_steepness,
            ) = c;
            (
                input.max_allowed_validators,
                input.stake_threshold,
                input.owner_uid,
                input.last_mechanism_step_block,
            ) = d;
            input
        })
}

/// A well-formed subnet: in-range, sorted, unique rows; everyone active.
fn valid_input() -> impl Strategy<Value = EpochInput> {
    (1usize..10)
        .prop_flat_map(|n| {
            let neuron = (
                0u64..5_000_000_000,
                any::<bool>(),
                prop::collection::btree_map(0..n as u16, 0u16..=u16::MAX, 0..n),
                prop::collection::btree_map(0..n as u16, 1u16..=u16::MAX, 0..n),
            );
            (
                prop::collection::vec(neuron, n),
                any::<bool>(),
                any::<bool>(),
                prop_oneof![Just(32_767u16), any::<u16>()],
                prop_oneof![Just(65_535u16), any::<u16>()],
                prop_oneof![1u64..1_000_000_000, Just(1_000_000_000u64)],
            )
        })
        .prop_map(|(rows, yuma3, liquid, kappa, penalty, emission)| {
            let neurons = rows
                .into_iter()
                .map(|(stake, permit, w, b)| NeuronInput {
                    stake,
                    validator_permit: permit,
                    registered_at: 0,
                    last_update: 1000,
                    weights: w.into_iter().collect(),
                    bonds: b.into_iter().collect(),
                    commit_block: None,
                })
                .collect();
            let mut input = base(1000, emission, neurons);
            input.yuma3 = yuma3;
            input.liquid_alpha = liquid;
            input.kappa = kappa;
            input.bonds_penalty = penalty;
            input.max_allowed_validators = 64;
            input
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Never panics, and every per-uid vector has n entries.
    #[test]
    fn no_panic_on_any_input(input in any_input()) {
        let _ = validate(&input);
        let out = run_epoch(&input).unwrap();
        let n = input.neurons.len();
        prop_assert_eq!(out.active.len(), n);
        prop_assert_eq!(out.validator_permit.len(), n);
        prop_assert_eq!(out.consensus.len(), n);
        prop_assert_eq!(out.bonds.len(), n);
        prop_assert_eq!(out.emission.len(), n);
        prop_assert!(out.bonds.iter().flatten().all(|(j, _)| usize::from(*j) < n));
    }

    /// Mechanism inputs of different sizes are an error, not a panic; splits always add up.
    #[test]
    fn mechanisms_never_panic(a in any_input(), b in any_input(), alpha in any::<u64>(),
                              split in prop::option::of(prop::collection::vec(any::<u16>(), 0..4)),
                              cut in any::<u16>()) {
        let r = run_mechanisms(alpha, split.as_deref(), SplitRule::default(), &[a.clone(), b.clone()]);
        let sum: u64 = split.iter().flatten().map(|&x| u64::from(x)).sum();
        let storable = split.as_ref().is_none_or(|s| !s.is_empty() && sum == 65_535);
        match &r {
            Err(YumaError::InvalidSplit(_)) => prop_assert!(!storable),
            Err(YumaError::MechanismSizeMismatch { .. }) => prop_assert_ne!(a.neurons.len(), b.neurons.len()),
            Err(e) => prop_assert!(false, "unexpected {}", e),
            Ok(out) => {
                prop_assert!(storable && a.neurons.len() == b.neurons.len());
                let shares: u128 = out.mechanism_emission.iter().map(|&x| u128::from(x)).sum();
                prop_assert_eq!(shares, u128::from(alpha));
            }
        }
        for rule in [SplitRule::TrimOrPad, SplitRule::EvenIfMalformed] {
            let parts = split_mechanism_emission(alpha, 3, split.as_deref(), rule);
            prop_assert_eq!(parts.len(), 3);
            let total: u128 = parts.iter().map(|&x| u128::from(x)).sum();
            // Only a split vector summing above 65535 (never stored by the chain) can exceed alpha.
            if sum <= 65_535 {
                prop_assert_eq!(total, u128::from(alpha));
            }
        }
        let s = split_block_emission(alpha, cut);
        prop_assert_eq!(u128::from(s.owner) + u128::from(s.miners) + u128::from(s.validators),
                        u128::from(alpha));
    }

    /// Emission is conserved up to truncation. The chain turns each fixed-point share into rao
    /// by truncating, once per uid for the combined `emission` and twice per uid for what is paid
    /// (server + validator), and every I32F32 division before that truncates by < 1 ulp = 2⁻³²
    /// per value. So the combined emission is at most `n + ⌈n·E/2³²⌉` rao short of E, the paid
    /// total at most `2n + ⌈2n·E/2³²⌉` (for E ≤ 2³², about 1.2 n and 2.5 n rao), and neither
    /// ever exceeds E. Nothing is paid if no uid has stake.
    #[test]
    fn emission_is_conserved(input in valid_input()) {
        let out = run_epoch(&input).unwrap();
        let paid: u128 = out.server_emission.iter().chain(&out.validator_emission)
            .map(|&x| u128::from(x)).sum();
        let combined: u128 = out.emission.iter().map(|&x| u128::from(x)).sum();
        let e = u128::from(input.emission);
        let n = input.neurons.len() as u128;
        let ulps = |k: u128| (k * e).div_ceil(1 << 32);
        if input.neurons.iter().any(|nr| nr.stake > 0) {
            prop_assert!(paid <= e && combined <= e, "paid {} / combined {} > {}", paid, combined, e);
            prop_assert!(e - combined <= n + ulps(n), "combined {} of {} (n = {})", combined, e, n);
            prop_assert!(e - paid <= 2 * n + ulps(2 * n), "paid {} of {} (n = {})", paid, e, n);
        } else {
            prop_assert_eq!(paid, 0);
        }
    }

    /// An epoch never pays more than it emits, whatever the input (out-of-range uids, repeats,
    /// odd hyperparameters, any emission), as long as the total stake is one a chain can hold
    /// (below 2^63 rao; beyond it the fixed-point stake sums wrap). Over several mechanisms too.
    #[test]
    fn an_epoch_never_pays_more_than_it_emits(
        mut a in any_input(),
        mut b in any_input(),
        alpha in any::<u64>(),
        split in prop::option::of(any::<u16>().prop_map(|s| vec![s, u16::MAX - s])),
    ) {
        for n in a.neurons.iter_mut().chain(b.neurons.iter_mut()) {
            n.stake %= (1u64 << 63) / 12;
        }
        let out = run_epoch(&a).unwrap();
        let e = u128::from(a.emission);
        let sum = |v: &[u64]| v.iter().map(|&x| u128::from(x)).sum::<u128>();
        prop_assert!(sum(&out.server_emission) + sum(&out.validator_emission) <= e);
        prop_assert!(sum(&out.emission) <= e);
        b.neurons.resize(a.neurons.len(), NeuronInput::default());
        let out = run_mechanisms(alpha, split.as_deref(), SplitRule::default(), &[a, b]).unwrap();
        prop_assert!(sum(&out.server_emission) + sum(&out.validator_emission) <= u128::from(alpha));
        prop_assert_eq!(sum(&out.mechanism_emission), u128::from(alpha));
    }

    /// Relabelling uids relabels every output the same way.
    #[test]
    fn permutation_equivariant(input in valid_input(), seed in any::<u64>()) {
        let n = input.neurons.len();
        // A permutation from the seed (Fisher-Yates with a tiny LCG: deterministic, no RNG crate).
        let mut perm: Vec<usize> = (0..n).collect();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        // uid u becomes perm[u].
        let map = |u: u16| perm[usize::from(u)] as u16;
        let mut permuted = input.clone();
        for (u, nr) in input.neurons.iter().enumerate() {
            let mut nr = nr.clone();
            nr.weights = nr.weights.iter().map(|&(j, w)| (map(j), w)).collect();
            nr.weights.sort_unstable();
            nr.bonds = nr.bonds.iter().map(|&(j, b)| (map(j), b)).collect();
            nr.bonds.sort_unstable();
            permuted.neurons[perm[u]] = nr;
        }
        let a = run_epoch(&input).unwrap();
        let b = run_epoch(&permuted).unwrap();
        for u in 0..n {
            let v = perm[u];
            prop_assert_eq!(a.active[u], b.active[v]);
            prop_assert_eq!(a.validator_permit[u], b.validator_permit[v]);
            prop_assert_eq!(a.stake[u], b.stake[v]);
            prop_assert_eq!(a.consensus[u], b.consensus[v]);
            prop_assert_eq!(a.incentive[u], b.incentive[v]);
            prop_assert_eq!(a.dividends[u], b.dividends[v]);
            prop_assert_eq!(a.validator_trust[u], b.validator_trust[v]);
            prop_assert_eq!(a.server_emission[u], b.server_emission[v]);
            prop_assert_eq!(a.validator_emission[u], b.validator_emission[v]);
            prop_assert_eq!(a.emission[u], b.emission[v]);
            let mut ra: Vec<(u16, u16)> = a.bonds[u].iter().map(|&(j, x)| (map(j), x)).collect();
            ra.sort_unstable();
            let mut rb = b.bonds[v].clone();
            rb.sort_unstable();
            prop_assert_eq!(ra, rb);
        }
    }

    /// A bloc with less than kappa of the active stake, all its weight on one miner, cannot lift
    /// that miner's consensus above the highest weight the majority gives it.
    #[test]
    fn minority_bloc_cannot_raise_consensus(
        majority in prop::collection::vec((1_000u64..1_000_000, prop::collection::vec(0u16..=u16::MAX, 4)), 1..6),
        bloc_share in 0.0f64..0.45,
        bloc_size in 1usize..4,
        target in 0usize..4,
        yuma3 in any::<bool>(),
    ) {
        let total_major: u64 = majority.iter().map(|(s, _)| s).sum();
        // bloc stake / (bloc + majority) = bloc_share < 0.5 = kappa.
        let bloc_total = (bloc_share / (1.0 - bloc_share) * total_major as f64) as u64;
        let v = majority.len() + bloc_size;
        let miners: Vec<u16> = (v as u16..v as u16 + 4).collect();
        let mut neurons = Vec::new();
        for (stake, w) in &majority {
            neurons.push(NeuronInput {
                stake: *stake, validator_permit: true, last_update: 1000,
                weights: miners.iter().copied().zip(w.iter().copied()).collect(),
                ..NeuronInput::default()
            });
        }
        for _ in 0..bloc_size {
            neurons.push(NeuronInput {
                stake: bloc_total / bloc_size as u64, validator_permit: true, last_update: 1000,
                weights: vec![(miners[target], u16::MAX)],
                ..NeuronInput::default()
            });
        }
        for _ in &miners {
            neurons.push(NeuronInput { last_update: 1000, ..NeuronInput::default() });
        }
        let mut input = base(1000, 1_000_000_000, neurons);
        input.yuma3 = yuma3;
        let (out, t) = run_epoch_traced(&input).unwrap();
        let j = miners[target];
        let best_major = (0..majority.len())
            .filter_map(|i| t.weights[i].iter().find(|(c, _)| *c == j).map(|(_, w)| *w))
            .max()
            .unwrap_or_default();
        prop_assert!(t.consensus[usize::from(j)] <= best_major,
            "consensus {} > majority max {}", t.consensus[usize::from(j)], best_major);
        let _ = out;
    }

    /// With no (non-zero) weights, validators are paid by active stake, or by stake when no one
    /// is active; miners get nothing.
    #[test]
    fn zero_weights_fall_back_to_stake(
        rows in prop::collection::vec((0u64..1_000_000_000, any::<bool>(), any::<bool>(), 0usize..3), 1..10),
        emission in 0u64..(1 << 20),
    ) {
        let n = rows.len();
        let neurons: Vec<NeuronInput> = rows.iter().map(|&(stake, permit, active, k)| NeuronInput {
            stake,
            validator_permit: permit,
            last_update: if active { 1000 } else { 0 },
            weights: (0..k).map(|j| (((j + 1) % n) as u16, 0)).collect(),
            ..NeuronInput::default()
        }).collect();
        let mut input = base(1000, emission, neurons);
        input.activity_cutoff = 100;
        let out = run_epoch(&input).unwrap();
        prop_assert!(out.server_emission.iter().all(|&x| x == 0));
        prop_assert!(out.incentive.iter().all(|&x| x == 0));
        prop_assert!(out.dividends.iter().all(|&x| x == 0));
        let any_active = out.normalized.active_stake.iter().any(|&x| x > 0.0);
        let basis = if any_active { &out.normalized.active_stake } else { &out.normalized.stake };
        for i in 0..n {
            // I32F32 values and emissions below 2^20 multiply exactly in f64.
            let expect = (basis[i] * emission as f64).floor() as u64;
            prop_assert_eq!(out.validator_emission[i], expect);
            prop_assert_eq!(out.emission[i], expect);
        }
    }
}

#[test]
fn empty_subnet() {
    let out = run_epoch(&base(10, 1_000, vec![])).unwrap();
    assert!(out.emission.is_empty() && out.bonds.is_empty());
}

#[test]
fn all_inactive_pays_by_stake() {
    let mut input = base(
        1_000_000,
        1_000,
        vec![
            NeuronInput {
                stake: 3,
                ..NeuronInput::default()
            },
            NeuronInput {
                stake: 1,
                ..NeuronInput::default()
            },
        ],
    );
    input.activity_cutoff = 10;
    let out = run_epoch(&input).unwrap();
    assert_eq!(out.active, [false, false]);
    assert_eq!(out.validator_emission, [750, 250]);
}
