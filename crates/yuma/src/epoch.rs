//! One epoch of one mechanism: subtensor's `epoch_mechanism` (sparse production path).

use substrate_fixed::types::{I32F32, I64F64, I96F32};

use crate::YumaError;
use crate::dense::{self, EpochScratch};
use crate::math::{
    self, FastMul, LiquidAlpha, ONE, Scratch, SparseRow, ZERO, fixed_proportion_to_u16,
    u16_proportion, u16_to_fixed,
};
use crate::types::{EpochInput, EpochOutput, NormalizedOutput};

/// The fixed-point intermediates of one epoch, named after the chain's trace logs.
///
/// Only built by [`run_epoch_traced`]; tests compare these (via `{:?}`) with the strings
/// subtensor's own tests expect in its logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EpochTrace {
    /// "Normalised Stake".
    pub stake: Vec<I32F32>,
    /// "Active Stake".
    pub active_stake: Vec<I32F32>,
    /// "Weights (mask+norm)".
    pub weights: Vec<Vec<(u16, I32F32)>>,
    /// "Consensus".
    pub consensus: Vec<I32F32>,
    /// "Clipped Weights".
    pub clipped_weights: Vec<Vec<(u16, I32F32)>>,
    /// "Validator Trust".
    pub validator_trust: Vec<I32F32>,
    /// "Ranks (after)": clipped-weight ranks before normalisation.
    pub ranks: Vec<I32F32>,
    /// "Incentive (=Rank)".
    pub incentive: Vec<I32F32>,
    /// "ΔB (norm)" (original Yuma only; empty under Yuma 3).
    pub bonds_delta: Vec<Vec<(u16, I32F32)>>,
    /// "emaB" (Yuma 3) or "Exponential Moving Average Bonds" (original, before max-upscaling).
    pub ema_bonds: Vec<Vec<(u16, I32F32)>>,
    /// "Dividends".
    pub dividends: Vec<I32F32>,
    /// "Normalized Server Emission".
    pub normalized_server_emission: Vec<I32F32>,
    /// "Normalized Validator Emission".
    pub normalized_validator_emission: Vec<I32F32>,
    /// "Normalized Combined Emission".
    pub normalized_combined_emission: Vec<I32F32>,
}

/// Runs one epoch. Never panics; uids out of range in weights or bonds are dropped (the chain can
/// never store them). Fails only if there are more neurons than a u16 uid can name.
///
/// The working buffers (about `8·permitted·n` bytes, ~8 MB at 4096 uids) are kept per thread
/// and reused by the next call on that thread: allocated afresh, glibc handed their pages back
/// and faulted them in again every epoch, adding about half again to a 4096-uid epoch.
/// [`run_epoch_with_scratch`] takes explicit buffers instead.
pub fn run_epoch(input: &EpochInput) -> Result<EpochOutput, YumaError> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<EpochScratch> =
            std::cell::RefCell::new(EpochScratch::new());
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => epoch_impl(input, None, Some(&mut scratch)),
        Err(_) => epoch_impl(input, None, Some(&mut EpochScratch::new())),
    })
}

/// [`run_epoch`] reusing `scratch`'s buffers (results are identical; only allocation differs).
/// Keep one scratch per thread and pass it to every epoch to save re-allocating the matrix.
pub fn run_epoch_with_scratch(
    input: &EpochInput,
    scratch: &mut EpochScratch,
) -> Result<EpochOutput, YumaError> {
    epoch_impl(input, None, Some(scratch))
}

/// [`run_epoch`] always through the sparse path (tests compare both paths).
#[cfg(test)]
pub(crate) fn run_epoch_sparse(input: &EpochInput) -> Result<EpochOutput, YumaError> {
    epoch_impl(input, None, None)
}

/// Whether [`run_epoch`] takes the dense path for `input` (tests check their inputs do).
#[cfg(test)]
pub(crate) fn takes_dense_path(input: &EpochInput) -> bool {
    let n = input.neurons.len();
    let owner = input.owner_uid.map(usize::from).filter(|&o| o < n);
    let permits: Vec<bool> = input
        .neurons
        .iter()
        .enumerate()
        .map(|(i, nr)| nr.validator_permit || Some(i) == owner)
        .collect();
    dense::eligible(input, &permits)
        && input.neurons.iter().zip(&permits).all(|(nr, &p)| {
            !p || (dense::strictly_ascending_u16(&nr.weights)
                && dense::strictly_ascending_u16(&nr.bonds))
        })
}

/// Whether `input`'s total stake is one a chain can hold (below 2^63 rao), the range in which an
/// epoch pays at most its emission (see the crate docs' "Invariants"; beyond it the fixed-point
/// stake sums wrap).
pub(crate) fn stake_fits(input: &EpochInput) -> bool {
    input
        .neurons
        .iter()
        .map(|n| u128::from(n.stake))
        .sum::<u128>()
        < 1u128 << 63
}

/// [`run_epoch`], also returning the fixed-point intermediates.
pub fn run_epoch_traced(input: &EpochInput) -> Result<(EpochOutput, EpochTrace), YumaError> {
    let mut trace = EpochTrace::default();
    let out = epoch_impl(input, Some(&mut trace), None)?;
    Ok((out, trace))
}

fn to_f64(v: &[I32F32]) -> Vec<f64> {
    v.iter().map(|x| x.to_num::<f64>()).collect()
}

fn to_u16(v: &[I32F32]) -> Vec<u16> {
    v.iter().map(|x| fixed_proportion_to_u16(*x)).collect()
}

fn epoch_impl(
    input: &EpochInput,
    mut trace: Option<&mut EpochTrace>,
    scratch: Option<&mut EpochScratch>,
) -> Result<EpochOutput, YumaError> {
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

    let last_tempo = if input.last_mechanism_step_block == 0 {
        block.saturating_sub(input.tempo)
    } else {
        input.last_mechanism_step_block.saturating_add(1)
    };
    // The dense fast path, when the input has its shape (see `dense.rs`); it gives up with
    // `None` if a row turns out not to be stored in ascending order, and the sparse path runs.
    let dense_out = match scratch {
        Some(sc) if trace.is_none() && dense::eligible(input, &permits) => dense::core(
            &dense::Ctx {
                input,
                owner,
                permits: &permits,
                new_permits: &new_permits,
                active_stake: &active_stake,
                registered: &registered,
                last_tempo,
            },
            sc,
        ),
        _ => None,
    };
    let (consensus, validator_trust, incentive, dividends, bonds_out) = if let Some(r) = dense_out {
        (
            r.consensus,
            r.validator_trust,
            r.incentive,
            r.dividends,
            r.bonds,
        )
    } else {
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
                let mut sum = ZERO;
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
                    let v = u16_to_fixed(w);
                    sum = sum.wrapping_add(v);
                    row.push((j, v));
                }
                // inplace_row_normalize_sparse, with the row sum taken while building the row.
                if sum > ZERO {
                    let d = math::Divisor::new(sum);
                    for (_, v) in row.iter_mut() {
                        *v = d.div(*v);
                    }
                }
                row
            })
            .collect();

        // == Consensus, validator trust ==
        let kappa = u16_proportion(input.kappa);
        let consensus = math::weighted_median_col_sparse(&active_stake, &weights, n, kappa);

        // == Incentive ==
        // Clip, validator trust and ranks in one pass over the rows (each accumulation in the chain's
        // order: trust along the row, ranks down each column in row order). With the default bonds
        // penalty of 1 the bonds read the clipped weights and nothing reads the unclipped ones again,
        // so the rows are clipped in place; that keeps a single n-row matrix alive through the bonds
        // (allocating fresh 16 MB matrices is what dominates the cost at 4096 uids).
        let bonds_penalty = u16_proportion(input.bonds_penalty);
        if let Some(t) = trace.as_deref_mut() {
            t.weights = weights.clone();
        }
        let mut ranks = vec![ZERO; n];
        let mut validator_trust = Vec::with_capacity(n);
        // Column sums of the original-Yuma bonds delta (weights_for_bonds ⊙ active stake), taken in
        // this pass when weights_for_bonds is W or Wc, in the same row order as a separate pass.
        let fuse_dsum = !input.yuma3 && (bonds_penalty == ZERO || bonds_penalty == ONE);
        let mut dsum = vec![ZERO; if fuse_dsum { n } else { 0 }];
        let keep_clipped = bonds_penalty != ZERO;
        let clip_in_place = bonds_penalty == ONE && trace.is_none();
        let mut clipped: Vec<SparseRow> = Vec::new();
        for (row, &si) in weights.iter_mut().zip(&active_stake) {
            let mut trust = ZERO;
            let mut kept = 0usize;
            let mut out = if keep_clipped && !clip_in_place {
                Vec::with_capacity(row.len())
            } else {
                Vec::new()
            };
            for e in 0..row.len() {
                let Some(&(j, v)) = row.get(e) else { break };
                if fuse_dsum
                    && bonds_penalty == ZERO
                    && let Some(d) = dsum.get_mut(usize::from(j))
                {
                    *d = d.saturating_add(v.smul(si));
                }
                let t = consensus.get(usize::from(j)).copied().unwrap_or(ZERO);
                // min(v, t), written so the compiler can select without a branch (which way a
                // weight falls relative to consensus is unpredictable); an entry clipped to a
                // non-positive consensus is dropped (rare, hence a predictable branch).
                let over = t < v;
                let c = if over { t } else { v };
                if over && t <= ZERO {
                    continue;
                }
                trust = trust.wrapping_add(c);
                if let Some(r) = ranks.get_mut(usize::from(j)) {
                    *r = r.saturating_add(si.smul(c));
                }
                if fuse_dsum
                    && bonds_penalty == ONE
                    && let Some(d) = dsum.get_mut(usize::from(j))
                {
                    *d = d.saturating_add(c.smul(si));
                }
                if clip_in_place {
                    if let Some(slot) = row.get_mut(kept) {
                        *slot = (j, c);
                    }
                    kept += 1;
                } else if keep_clipped {
                    out.push((j, c));
                }
            }
            if clip_in_place {
                row.truncate(kept);
            } else if keep_clipped {
                clipped.push(out);
            }
            validator_trust.push(trust);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.clipped_weights = if clip_in_place {
                weights.clone()
            } else {
                clipped.clone()
            };
            t.ranks = ranks.clone();
        }
        math::inplace_normalize(&mut ranks);
        let incentive = ranks;

        // == Bonds and dividends ==
        // weights_for_bonds = interpolate(W, Wc, penalty): W for 0, Wc for 1.
        let mut wfb: Vec<SparseRow> = if bonds_penalty == ZERO || clip_in_place {
            weights
        } else if bonds_penalty == ONE {
            clipped
        } else {
            math::interpolate_sparse(&weights, &clipped, n, bonds_penalty)
        };

        // Old bonds are read straight from the input rows, dropping columns registered since the
        // previous epoch (and uids that do not exist, which the chain cannot hold).
        let bond_kept = |j: u16| {
            registered
                .get(usize::from(j))
                .is_some_and(|&reg| last_tempo > reg)
        };
        let load_bonds = |i: usize, to_fixed: &dyn Fn(u16) -> I32F32, buf: &mut SparseRow| {
            buf.clear();
            if let Some(nr) = neurons.get(i) {
                buf.extend(
                    nr.bonds
                        .iter()
                        .filter(|(j, _)| bond_kept(*j))
                        .map(|&(j, b)| (j, to_fixed(b))),
                );
            }
        };
        let mut s = Scratch::new(n);
        let mut old_buf: SparseRow = Vec::new();
        let mut row_buf: SparseRow = Vec::new();

        let mut dividends: Vec<I32F32>;
        let bonds_out: Vec<Vec<(u16, u16)>>;
        if input.yuma3 {
            // Yuma 3: bonds are u16 proportions, not normalised; the EMA runs per (validator, miner).
            let u16_max = math::Divisor::new(u16_to_fixed(u16::MAX));
            let to_prop = |b: u16| u16_max.div(u16_to_fixed(b));
            let liquid = input.liquid_alpha && consensus.iter().any(|&c| c != ZERO);
            let la = LiquidAlpha {
                low: u16_proportion(input.alpha_low),
                high: u16_proportion(input.alpha_high),
                steepness: I32F32::saturating_from_num(input.alpha_sigmoid_steepness),
            };
            let bma = I64F64::saturating_from_num(input.bonds_moving_average)
                .saturating_div(I64F64::saturating_from_num(1_000_000_u32));
            let alpha = ONE.saturating_sub(I32F32::saturating_from_num(bma));
            let ident_new = |_: usize, _: u16, v: I32F32| v;
            let ident_old = |_: u16, v: I32F32| v;
            // Each EMA row replaces its weights row, whose buffer is reused for the next row.
            for (i, row) in wfb.iter_mut().enumerate() {
                load_bonds(i, &to_prop, &mut old_buf);
                if liquid {
                    row_buf = math::ema_alpha_row(row, &old_buf, &consensus, &la, &mut s);
                } else {
                    math::ema_row(
                        i,
                        row,
                        &old_buf,
                        alpha,
                        n,
                        &ident_new,
                        &ident_old,
                        &mut s,
                        &mut row_buf,
                    );
                }
                std::mem::swap(row, &mut row_buf);
            }
            // Dividends: Σ_j col_normalised(ema)_ij · I_j (zero products skipped), times active stake.
            let ediv = math::col_divisors(&math::col_sums(&wfb, n));
            let per_validator: Vec<I32F32> = wfb
                .iter()
                .map(|row| {
                    row.iter().fold(ZERO, |acc, &(j, v)| {
                        let ij = incentive.get(usize::from(j)).copied().unwrap_or(ZERO);
                        let p = math::col_norm(&ediv, j, v).smul(ij);
                        if p != ZERO { acc.wrapping_add(p) } else { acc }
                    })
                })
                .collect();
            dividends = math::vec_mul(&per_validator, &active_stake);
            math::inplace_normalize(&mut dividends);
            if let Some(t) = trace.as_deref_mut() {
                t.ema_bonds = wfb.clone();
            }
            // Stored as u16 proportions, for uids that keep a permit.
            bonds_out = wfb
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    if new_permits.get(i).copied().unwrap_or(false) {
                        row.iter()
                            .map(|&(j, v)| (j, fixed_proportion_to_u16(v)))
                            .collect()
                    } else {
                        Vec::new()
                    }
                })
                .collect();
        } else {
            // Original Yuma: EMA of the column-normalised stake-weighted delta and the column-
            // normalised old bonds, itself column-normalised. The normalisations are applied on the
            // fly from precomputed column sums rather than by materialising each matrix.
            let mut bsum = vec![ZERO; n];
            for nr in neurons {
                for &(j, b) in &nr.bonds {
                    if bond_kept(j)
                        && let Some(x) = bsum.get_mut(usize::from(j))
                    {
                        *x = x.saturating_add(u16_to_fixed(b));
                    }
                }
            }
            let bdiv = math::col_divisors(&bsum);
            if !fuse_dsum {
                dsum = vec![ZERO; n];
                for (row, &si) in wfb.iter().zip(&active_stake) {
                    for &(j, v) in row {
                        if let Some(d) = dsum.get_mut(usize::from(j)) {
                            *d = d.saturating_add(v.smul(si));
                        }
                    }
                }
            }
            let ddiv = math::col_divisors(&dsum);
            let stake_of = |i: usize| active_stake.get(i).copied().unwrap_or(ZERO);
            let delta_of =
                |i: usize, j: u16, v: I32F32| math::col_norm(&ddiv, j, v.smul(stake_of(i)));
            if let Some(t) = trace.as_deref_mut() {
                t.bonds_delta = wfb
                    .iter()
                    .enumerate()
                    .map(|(i, row)| row.iter().map(|&(j, v)| (j, delta_of(i, j, v))).collect())
                    .collect();
            }
            let bma = I64F64::saturating_from_num(input.bonds_moving_average)
                .checked_div(I64F64::saturating_from_num(1_000_000_u32))
                .unwrap_or(I64F64::from_bits(0));
            let alpha = ONE.saturating_sub(I32F32::saturating_from_num(bma));
            let bond_of = |j: u16, v: I32F32| math::col_norm(&bdiv, j, v);
            let mut esum = vec![ZERO; n];
            for (i, row) in wfb.iter_mut().enumerate() {
                load_bonds(i, &u16_to_fixed, &mut old_buf);
                math::ema_row(
                    i,
                    row,
                    &old_buf,
                    alpha,
                    n,
                    &delta_of,
                    &bond_of,
                    &mut s,
                    &mut row_buf,
                );
                std::mem::swap(row, &mut row_buf);
                for &(j, v) in row.iter() {
                    if let Some(x) = esum.get_mut(usize::from(j)) {
                        *x = x.saturating_add(v);
                    }
                }
            }
            // Normalise in place, take dividends d_i = Σ_j b_ij · I_j and the column maxima at once.
            let ediv = math::col_divisors(&esum);
            let mut col_max = vec![ZERO; n];
            dividends = Vec::with_capacity(n);
            for row in wfb.iter_mut() {
                let mut d = ZERO;
                for (j, v) in row.iter_mut() {
                    *v = math::col_norm(&ediv, *j, *v);
                    let ij = incentive.get(usize::from(*j)).copied().unwrap_or(ZERO);
                    d = d.saturating_add(ij.smul(*v));
                    if let Some(m) = col_max.get_mut(usize::from(*j))
                        && *m < *v
                    {
                        *m = *v;
                    }
                }
                dividends.push(d);
            }
            math::inplace_normalize(&mut dividends);
            if let Some(t) = trace.as_deref_mut() {
                t.ema_bonds = wfb.clone();
            }
            // Stored column-max-upscaled (max_i b_ij = 1) as u16, for uids that keep a permit.
            let cdiv = math::col_divisors(&col_max);
            bonds_out = wfb
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    if new_permits.get(i).copied().unwrap_or(false) {
                        row.iter()
                            .map(|&(j, v)| {
                                (j, fixed_proportion_to_u16(math::col_norm(&cdiv, j, v)))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    }
                })
                .collect();
        }

        (consensus, validator_trust, incentive, dividends, bonds_out)
    };

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

    if cfg!(debug_assertions) && stake_fits(input) {
        let e = u128::from(input.emission);
        let sum = |v: &[u64]| v.iter().map(|&x| u128::from(x)).sum::<u128>();
        let paid = sum(&out.server_emission) + sum(&out.validator_emission);
        debug_assert!(paid <= e, "the epoch paid {paid} rao of {e}");
        debug_assert!(
            sum(&out.emission) <= e,
            "the epoch's combined emission {} exceeds {e}",
            sum(&out.emission)
        );
    }

    if let Some(t) = trace {
        t.stake = stake;
        t.active_stake = active_stake;
        t.consensus = consensus;
        t.validator_trust = validator_trust;
        t.incentive = incentive;
        t.dividends = dividends;
        t.normalized_server_emission = nse;
        t.normalized_validator_emission = nve;
        t.normalized_combined_emission = nce;
    }
    Ok(out)
}
