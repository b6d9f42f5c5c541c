//! The straightforward port (one chain helper per step, dense scratch rows), kept for tests:
//! the optimised [`crate::run_epoch`] must agree with it bit for bit on any input.

use substrate_fixed::types::{I32F32, I64F64, I96F32};

use crate::YumaError;
use crate::math::{
    self, LiquidAlpha, ONE, Scratch, SparseRow, ZERO, fixed_proportion_to_u16, u16_proportion,
    u16_to_fixed,
};
use crate::types::{EpochInput, EpochOutput, NormalizedOutput};

fn to_f64(v: &[I32F32]) -> Vec<f64> {
    v.iter().map(|x| x.to_num::<f64>()).collect()
}

fn to_u16(v: &[I32F32]) -> Vec<u16> {
    v.iter().map(|x| fixed_proportion_to_u16(*x)).collect()
}

/// `mat_ema_sparse` exactly as the chain writes it: a dense zeroed row of n per matrix row,
/// scanned in column order.
fn mat_ema_dense_rows(new: &[SparseRow], old: &[SparseRow], alpha: I32F32) -> Vec<SparseRow> {
    let n = new.len();
    let one_minus_alpha = ONE.saturating_sub(alpha);
    let empty: SparseRow = Vec::new();
    new.iter()
        .enumerate()
        .map(|(i, new_row)| {
            let mut row = vec![ZERO; n];
            for &(j, v) in new_row {
                if let Some(c) = row.get_mut(j as usize) {
                    *c = c.saturating_add(alpha.saturating_mul(v));
                }
            }
            for &(j, v) in old.get(i).unwrap_or(&empty) {
                if let Some(c) = row.get_mut(j as usize) {
                    *c = c.saturating_add(one_minus_alpha.saturating_mul(v));
                }
            }
            row.iter()
                .enumerate()
                .filter(|(_, v)| **v > ZERO)
                .map(|(j, v)| (j as u16, *v))
                .collect()
        })
        .collect()
}

pub(crate) fn reference_epoch(input: &EpochInput) -> Result<EpochOutput, YumaError> {
    let neurons = &input.neurons;
    let n = neurons.len();
    if n > usize::from(u16::MAX) {
        return Err(YumaError::TooManyNeurons { n });
    }
    let block = input.block;
    let owner = input.owner_uid.map(usize::from).filter(|&o| o < n);

    // == Activity ==
    let active: Vec<bool> = neurons
        .iter()
        .map(|nr| nr.last_update.saturating_add(input.activity_cutoff) >= block)
        .collect();
    let registered: Vec<u64> = neurons.iter().map(|nr| nr.registered_at).collect();

    // == Stake ==
    // Stake below the threshold is zeroed (never the owner's), normalised in I64F64, then
    // narrowed to I32F32 exactly as the chain does.
    let mut stake64: Vec<I64F64> = neurons
        .iter()
        .enumerate()
        .map(|(i, nr)| {
            let s = I64F64::saturating_from_num(nr.stake);
            if Some(i) != owner && s.saturating_to_num::<u64>() < input.stake_threshold {
                I64F64::from_bits(0)
            } else {
                s
            }
        })
        .collect();
    math::inplace_normalize_64(&mut stake64);
    let stake: Vec<I32F32> = stake64
        .iter()
        .map(|s| I32F32::saturating_from_num(*s))
        .collect();

    // == Permits ==
    // The owner counts as permitted in both the stored and the new permits.
    let mut permits: Vec<bool> = neurons.iter().map(|nr| nr.validator_permit).collect();
    let mut new_permits = math::is_topk_nonzero(&stake, usize::from(input.max_allowed_validators));
    if let Some(o) = owner {
        if let Some(p) = permits.get_mut(o) {
            *p = true;
        }
        if let Some(p) = new_permits.get_mut(o) {
            *p = true;
        }
    }

    // == Active stake ==
    let mut active_stake: Vec<I32F32> = stake
        .iter()
        .zip(active.iter().zip(&permits))
        .map(|(&s, (&a, &p))| if a && p { s } else { ZERO })
        .collect();
    math::inplace_normalize(&mut active_stake);

    // == Weights ==
    // Masks in the chain's order: rows without a permit, the diagonal (except the owner's), columns
    // registered at or after the row's last update, and columns registered after the row's earliest
    // live commit; then row-normalise.
    let mut weights: Vec<SparseRow> = neurons
        .iter()
        .enumerate()
        .map(|(i, nr)| {
            if !permits.get(i).copied().unwrap_or(false) {
                return Vec::new();
            }
            let commit = nr.commit_block.unwrap_or(u64::MAX);
            let mut row = Vec::with_capacity(nr.weights.len());
            for &(j, w) in &nr.weights {
                let ju = usize::from(j);
                let Some(&reg) = registered.get(ju) else {
                    continue;
                };
                if ju == i && Some(i) != owner {
                    continue;
                }
                if nr.last_update <= reg || commit < reg {
                    continue;
                }
                row.push((j, u16_to_fixed(w)));
            }
            row
        })
        .collect();
    math::inplace_row_normalize_sparse(&mut weights);

    // == Consensus, validator trust ==
    let kappa = u16_proportion(input.kappa);
    let consensus = math::weighted_median_col_sparse_bucketed(&active_stake, &weights, n, kappa);
    let clipped = math::col_clip_sparse(&weights, &consensus);
    let validator_trust = math::row_sum_sparse(&clipped);

    // == Incentive ==
    let mut ranks = math::matmul_sparse(&clipped, &active_stake, n);
    math::inplace_normalize(&mut ranks);
    let incentive = ranks;

    // == Bonds and dividends ==
    let bonds_penalty = u16_proportion(input.bonds_penalty);
    let weights_for_bonds = math::interpolate_sparse(&weights, &clipped, n, bonds_penalty);

    // Bonds to uids registered since the previous epoch are dropped.
    let last_tempo = if input.last_mechanism_step_block == 0 {
        block.saturating_sub(input.tempo)
    } else {
        input.last_mechanism_step_block.saturating_add(1)
    };
    let old_bonds = |to_fixed: fn(u16) -> I32F32| -> Vec<SparseRow> {
        neurons
            .iter()
            .map(|nr| {
                nr.bonds
                    .iter()
                    .filter(|(j, _)| {
                        registered
                            .get(usize::from(*j))
                            .is_some_and(|&reg| last_tempo > reg)
                    })
                    .map(|&(j, b)| (j, to_fixed(b)))
                    .collect()
            })
            .collect()
    };

    let mut dividends: Vec<I32F32>;
    let ema_bonds: Vec<SparseRow>;
    if input.yuma3 {
        // Yuma 3: bonds are u16 proportions, not normalised; the EMA runs per (validator, miner).
        let bonds = old_bonds(u16_proportion);
        let liquid = input.liquid_alpha && consensus.iter().any(|&c| c != ZERO);
        ema_bonds = if liquid {
            let la = LiquidAlpha {
                low: u16_proportion(input.alpha_low),
                high: u16_proportion(input.alpha_high),
                steepness: I32F32::saturating_from_num(input.alpha_sigmoid_steepness),
            };
            let mut s = Scratch::new(n);
            let empty: SparseRow = Vec::new();
            weights_for_bonds
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let b = bonds.get(i).unwrap_or(&empty);
                    math::ema_alpha_row(w, b, &consensus, &la, &mut s)
                })
                .collect()
        } else {
            let bma = I64F64::saturating_from_num(input.bonds_moving_average)
                .saturating_div(I64F64::saturating_from_num(1_000_000_u32));
            let alpha = ONE.saturating_sub(I32F32::saturating_from_num(bma));
            mat_ema_dense_rows(&weights_for_bonds, &bonds, alpha)
        };
        let mut ema_norm = ema_bonds.clone();
        math::inplace_col_normalize_sparse(&mut ema_norm, n);
        let per_validator = math::row_sum_sparse(&math::mat_vec_mul_sparse(&ema_norm, &incentive));
        dividends = math::vec_mul(&per_validator, &active_stake);
        math::inplace_normalize(&mut dividends);
    } else {
        // Original Yuma: column-normalised bonds, stake-weighted delta, one EMA alpha.
        let mut bonds = old_bonds(u16_to_fixed);
        math::inplace_col_normalize_sparse(&mut bonds, n);
        let mut delta = math::row_hadamard_sparse(&weights_for_bonds, &active_stake);
        math::inplace_col_normalize_sparse(&mut delta, n);
        let bma = I64F64::saturating_from_num(input.bonds_moving_average)
            .checked_div(I64F64::saturating_from_num(1_000_000_u32))
            .unwrap_or(I64F64::from_bits(0));
        let alpha = ONE.saturating_sub(I32F32::saturating_from_num(bma));
        let mut ema = mat_ema_dense_rows(&delta, &bonds, alpha);
        math::inplace_col_normalize_sparse(&mut ema, n);
        dividends = math::matmul_transpose_sparse(&ema, &incentive);
        math::inplace_normalize(&mut dividends);
        // Stored column-max-upscaled: max_i b_ij = 1.
        math::inplace_col_max_upscale_sparse(&mut ema, n);
        ema_bonds = ema;
    }

    // == Emission ==
    let combined: Vec<I32F32> = incentive
        .iter()
        .zip(&dividends)
        .map(|(i, d)| i.saturating_add(*d))
        .collect();
    let emission_sum = math::wrapping_sum(combined.iter());
    let mut nse = incentive.clone();
    let mut nve = dividends.clone();
    let mut nce = combined;
    math::inplace_normalize_using_sum(&mut nse, emission_sum);
    math::inplace_normalize_using_sum(&mut nve, emission_sum);
    math::inplace_normalize(&mut nce);
    if emission_sum == ZERO {
        // No weights (or only masked ones): pay validators by active stake, or by stake if no
        // one is active.
        let fallback = if math::wrapping_sum(active_stake.iter()) == ZERO {
            &stake
        } else {
            &active_stake
        };
        nve.clone_from(fallback);
        nce.clone_from(fallback);
    }
    let rao = I96F32::saturating_from_num(input.emission);
    let to_rao = |v: &[I32F32]| -> Vec<u64> {
        v.iter()
            .map(|x| {
                I96F32::saturating_from_num(*x)
                    .saturating_mul(rao)
                    .saturating_to_num::<u64>()
            })
            .collect()
    };

    let bonds_out: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|i| {
            if new_permits.get(i).copied().unwrap_or(false) {
                ema_bonds
                    .get(i)
                    .map(|row| {
                        row.iter()
                            .map(|&(j, v)| (j, fixed_proportion_to_u16(v)))
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                Vec::new()
            }
        })
        .collect();

    let out = EpochOutput {
        active,
        validator_permit: new_permits,
        stake: to_u16(&stake),
        consensus: to_u16(&consensus),
        incentive: to_u16(&incentive),
        dividends: to_u16(&dividends),
        validator_trust: to_u16(&validator_trust),
        bonds: bonds_out,
        server_emission: to_rao(&nse),
        validator_emission: to_rao(&nve),
        emission: to_rao(&nce),
        normalized: NormalizedOutput {
            stake: to_f64(&stake),
            active_stake: to_f64(&active_stake),
            consensus: to_f64(&consensus),
            incentive: to_f64(&incentive),
            dividends: to_f64(&dividends),
            combined_emission: to_f64(&nce),
        },
    };

    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NeuronInput;
    use proptest::prelude::*;

    fn input_strategy() -> impl Strategy<Value = EpochInput> {
        (1usize..24)
            .prop_flat_map(|n| {
                let neuron = (
                    prop_oneof![Just(0u64), 0u64..1_000_000_000_000],
                    any::<bool>(),
                    0u64..30,
                    0u64..60,
                    prop::collection::vec((0..n as u16 + 2, any::<u16>()), 0..n + 2),
                    prop::collection::vec((0..n as u16 + 2, any::<u16>()), 0..n + 2),
                    any::<bool>(),
                    prop::option::of(0u64..40),
                );
                (
                    prop::collection::vec(neuron, n),
                    (any::<bool>(), any::<bool>()),
                    prop_oneof![Just(32_767u16), any::<u16>()],
                    prop_oneof![Just(65_535u16), Just(0u16), any::<u16>()],
                    prop_oneof![Just(900_000u64), 0u64..2_000_000],
                    (
                        0u16..20,
                        prop::option::of(0..n as u16),
                        0u64..50,
                        any::<i16>(),
                    ),
                )
            })
            .prop_map(
                |(rows, (yuma3, liquid), kappa, penalty, bma, (k, owner, lms, steep))| {
                    let neurons = rows
                        .into_iter()
                        .map(|(stake, permit, reg, upd, mut w, mut b, sort, commit)| {
                            if sort {
                                // Most rows are stored sorted and unique, as the chain does.
                                w.sort_unstable_by_key(|e| e.0);
                                w.dedup_by_key(|e| e.0);
                                b.sort_unstable_by_key(|e| e.0);
                                b.dedup_by_key(|e| e.0);
                            }
                            NeuronInput {
                                stake,
                                validator_permit: permit,
                                registered_at: reg,
                                last_update: upd,
                                weights: w,
                                bonds: b,
                                commit_block: commit,
                            }
                        })
                        .collect();
                    EpochInput {
                        block: 50,
                        tempo: 20,
                        activity_cutoff: 30,
                        emission: 1_000_000_000,
                        kappa,
                        bonds_penalty: penalty,
                        bonds_moving_average: bma,
                        yuma3,
                        liquid_alpha: liquid,
                        alpha_low: 45_875,
                        alpha_high: 58_982,
                        alpha_sigmoid_steepness: steep,
                        max_allowed_validators: k,
                        stake_threshold: 0,
                        owner_uid: owner,
                        last_mechanism_step_block: lms,
                        neurons,
                    }
                },
            )
    }

    /// Inputs the dense path accepts: permitted rows weighting most uids in ascending order (with
    /// zero weights, masks, self-weights and out-of-range uids), bonds on permitted rows only.
    fn dense_input_strategy(sizes: std::ops::Range<usize>) -> impl Strategy<Value = EpochInput> {
        sizes
            .prop_flat_map(|n| {
                let neuron = (
                    prop_oneof![Just(0u64), 0u64..1_000_000_000_000, Just(u64::MAX / 3)],
                    prop_oneof![3 => Just(true), 1 => Just(false)],
                    prop_oneof![Just(0u64), 0u64..30],
                    prop_oneof![Just(60u64), 0u64..60],
                    prop::collection::vec(
                        (prop_oneof![4 => Just(true), 1 => Just(false)], any::<u16>()),
                        n + 2,
                    ),
                    prop::collection::vec(
                        (
                            any::<bool>(),
                            prop_oneof![Just(0u16), Just(65_535u16), any::<u16>()],
                        ),
                        n + 2,
                    ),
                    prop::option::of(0u64..40),
                    prop_oneof![Just(65_535u16), 0u16..64, any::<u16>()],
                );
                (
                    prop::collection::vec(neuron, n),
                    (any::<bool>(), any::<bool>()),
                    prop_oneof![Just(32_767u16), Just(0u16), Just(65_535u16), any::<u16>()],
                    prop_oneof![
                        Just(900_000u64),
                        Just(1_000_000u64),
                        Just(0u64),
                        0u64..1_000_001
                    ],
                    (0u16..40, prop::option::of(0..n as u16), 0u64..50),
                    // Columns below this get no weight (like validators' own columns).
                    prop_oneof![Just(0usize), Just(64usize), 0..n / 3 + 1],
                )
            })
            .prop_map(|(rows, (yuma3, liquid), kappa, bma, (k, owner, lms), lo)| {
                let n = rows.len();
                let neurons = rows
                    .into_iter()
                    .map(|(stake, permit, reg, upd, w, b, commit, scale)| {
                        let weights = w
                            .iter()
                            .enumerate()
                            .filter(|(j, e)| e.0 && *j >= lo.min(n / 3))
                            .map(|(j, e)| (j as u16, e.1 % scale.max(1)))
                            .collect();
                        let bonds = if permit {
                            b.iter()
                                .enumerate()
                                .filter(|(j, e)| e.0 && *j < n + 1 && *j >= lo.min(n / 3))
                                .map(|(j, e)| (j as u16, e.1))
                                .collect()
                        } else {
                            Vec::new()
                        };
                        NeuronInput {
                            stake,
                            validator_permit: permit,
                            registered_at: reg,
                            last_update: upd,
                            weights,
                            bonds,
                            commit_block: commit,
                        }
                    })
                    .collect();
                EpochInput {
                    block: 50,
                    tempo: 20,
                    activity_cutoff: 30,
                    emission: 1_000_000_000,
                    kappa,
                    bonds_penalty: 65_535,
                    bonds_moving_average: bma,
                    yuma3,
                    liquid_alpha: liquid && !yuma3,
                    alpha_low: 45_875,
                    alpha_high: 58_982,
                    alpha_sigmoid_steepness: 1000,
                    max_allowed_validators: k,
                    stake_threshold: 0,
                    owner_uid: owner,
                    last_mechanism_step_block: lms,
                    neurons,
                }
            })
    }

    fn check_dense_epochs(mut input: EpochInput) -> Result<(), TestCaseError> {
        let mut scratch = crate::EpochScratch::new();
        for _ in 0..3 {
            if !crate::epoch::takes_dense_path(&input) {
                break;
            }
            let fast = crate::run_epoch(&input).unwrap();
            let slow = reference_epoch(&input).unwrap();
            prop_assert_eq!(&fast, &slow);
            let sparse = crate::epoch::run_epoch_sparse(&input).unwrap();
            prop_assert_eq!(&fast, &sparse);
            let reused = crate::run_epoch_with_scratch(&input, &mut scratch).unwrap();
            prop_assert_eq!(&fast, &reused);
            for (i, nr) in input.neurons.iter_mut().enumerate() {
                nr.validator_permit = fast.validator_permit[i];
                nr.bonds = fast.bonds[i].clone();
            }
            input.block += 20;
        }
        Ok(())
    }

    /// The dense strategies really exercise the dense path (most of their inputs qualify).
    #[test]
    fn dense_strategies_take_the_dense_path() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        for sizes in [1..40, 60..260] {
            let strategy = dense_input_strategy(sizes);
            let dense = (0..200)
                .filter(|_| {
                    let input = strategy.new_tree(&mut runner).unwrap().current();
                    crate::epoch::takes_dense_path(&input)
                })
                .count();
            assert!(
                dense >= 150,
                "only {dense} of 200 inputs take the dense path"
            );
        }
    }

    /// A bench-shaped subnet (every validator weights every miner, bonds carried over five
    /// epochs, both Yuma variants) through the dense path, the sparse path and the reference;
    /// with a single validator every column's normalised bond is exactly 1 (the dividends'
    /// special case).
    #[test]
    fn bench_shaped_subnet_matches_reference() {
        for (n, v) in [(300usize, 70usize), (130, 1)] {
            bench_shaped(n, v);
        }
    }

    fn bench_shaped(n: usize, v: usize) {
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for yuma3 in [false, true] {
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
            for _ in 0..5 {
                assert!(crate::epoch::takes_dense_path(&input));
                let fast = crate::run_epoch(&input).unwrap();
                assert_eq!(fast, reference_epoch(&input).unwrap());
                assert_eq!(fast, crate::epoch::run_epoch_sparse(&input).unwrap());
                for (i, nr) in input.neurons.iter_mut().enumerate() {
                    nr.validator_permit = fast.validator_permit[i];
                    nr.bonds = fast.bonds[i].clone();
                    nr.last_update += 360;
                }
                input.block += 360;
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// The dense path agrees with the straightforward port and with the sparse path, over
        /// three epochs with bonds and permits carried forward.
        #[test]
        fn dense_path_equals_reference(input in dense_input_strategy(1..40)) {
            check_dense_epochs(input)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// As above on subnets spanning several 64-column tiles, with up to ~190 median rows.
        #[test]
        fn dense_path_equals_reference_large(input in dense_input_strategy(60..260)) {
            check_dense_epochs(input)?;
        }

        /// One scratch reused across subnets of different shapes (its buffers are not cleared
        /// between epochs) gives the same epochs as fresh buffers.
        #[test]
        fn reused_scratch_across_shapes(a in dense_input_strategy(60..200),
                                        b in dense_input_strategy(1..200)) {
            let mut scratch = crate::EpochScratch::new();
            for input in [&a, &b, &a, &b] {
                let reused = crate::run_epoch_with_scratch(input, &mut scratch).unwrap();
                let fresh =
                    crate::run_epoch_with_scratch(input, &mut crate::EpochScratch::new()).unwrap();
                prop_assert_eq!(&reused, &fresh);
                // `run_epoch` reuses its thread's buffers, shaped by the previous input.
                prop_assert_eq!(reused, crate::run_epoch(input).unwrap());
            }
        }

        /// The optimised epoch and the straightforward port agree bit for bit.
        #[test]
        fn optimised_equals_reference(input in input_strategy()) {
            let fast = crate::run_epoch(&input).unwrap();
            let slow = reference_epoch(&input).unwrap();
            prop_assert_eq!(fast, slow);
        }
    }
}
