//! From per-miner product scores `(O_i, L_i)` to weight vectors: the three combination modes of
//! docs/mechanism.md §7.
//!
//! - `blended`: `w_i = O_i + L_i` with the absolute (effective) term weights, so the split `s` is
//!   only a budget: a product nobody scores well in hands its share to the other.
//! - `normalized` (default): `w_i = s·O_i/ΣO + (1−s)·L_i/ΣL`; the orchestration share of the total
//!   is exactly `s` whenever both `ΣO` and `ΣL` are positive. If one side sums to 0 its part is 0
//!   for everyone and, after normalisation, the other side takes the whole emission (there is no
//!   one to pay, and weights cannot express burning).
//! - `mechanisms`: two vectors, `O` for mechanism 0 and `L` for mechanism 1, with the emission split
//!   `[s, 1−s]` (see [`emission_split_u16`]); each mechanism runs its own Yuma.
//!
//! # Invariants
//!
//! Checked with `debug_assert!` (every debug build and test; free in release):
//! - `normalized`: every part is non-negative, the orchestration parts sum to `s` and the Ledger
//!   parts to `1 − s` — or to 0 when that side has nothing to pay — so the weights sum to 1, to
//!   `s` or `1 − s` (one side empty), or to 0 (nothing to pay);
//! - the u16 split sums to 65535;
//! - quantised vectors have strictly ascending uids, no zero value and the largest exactly 65535
//!   (so each is a whole, max-upscaled distribution), or are left out when there is nothing to
//!   set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::orchestration::clamp_finite;
use crate::params::{CombinationMode, MechanismParams};
use crate::weights::{WeightLimits, WeightsError, weights_for_chain};

/// Float weights per uid before quantisation, in the shape the combination mode needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CombinedWeights {
    /// One vector (modes `blended` and `normalized`), set on mechanism 0.
    Single(BTreeMap<u16, f64>),
    /// One vector per mechanism (mode `mechanisms`).
    Mechanisms {
        /// Mechanism 0: orchestration scores `O_i`.
        orchestration: BTreeMap<u16, f64>,
        /// Mechanism 1: Ledger scores `L_i`.
        ledger: BTreeMap<u16, f64>,
        /// Emission split `[s, 1 − s]` between the two mechanisms.
        emission_split: [f64; 2],
    },
}

/// Quantised weights for one mechanism, ready for `set_mechanism_weights`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismWeights {
    /// Mechanism index (`mecid`).
    pub mechanism: u8,
    /// Destination uids, strictly ascending.
    pub uids: Vec<u16>,
    /// u16 weights, parallel to `uids`, none zero.
    pub values: Vec<u16>,
}

/// `(s·O_i/ΣO, (1−s)·L_i/ΣL)` per miner: the two parts of the `normalized` weight. A side whose
/// sum is 0 contributes 0. NaN/inf/negative scores count as 0.
pub fn normalized_parts(scores: &BTreeMap<u16, (f64, f64)>, s: f64) -> BTreeMap<u16, (f64, f64)> {
    let s = crate::orchestration::clamp01(s);
    let sum_o: f64 = scores.values().map(|&(o, _)| clamp_finite(o)).sum();
    let sum_l: f64 = scores.values().map(|&(_, l)| clamp_finite(l)).sum();
    let pays = |sum: f64| sum > 0.0 && sum.is_finite();
    let part = |x: f64, sum: f64, share: f64| {
        if pays(sum) {
            share * clamp_finite(x) / sum
        } else {
            0.0
        }
    };
    let parts: BTreeMap<u16, (f64, f64)> = scores
        .iter()
        .map(|(&u, &(o, l))| (u, (part(o, sum_o, s), part(l, sum_l, 1.0 - s))))
        .collect();
    if cfg!(debug_assertions) {
        let total_o: f64 = parts.values().map(|p| p.0).sum();
        let total_l: f64 = parts.values().map(|p| p.1).sum();
        let close = |x: f64, want: f64| (x - want).abs() <= 1e-9;
        debug_assert!(
            parts.values().all(|&(o, l)| o >= 0.0 && l >= 0.0),
            "a negative weight part"
        );
        debug_assert!(
            close(total_o, if pays(sum_o) { s } else { 0.0 })
                && close(total_l, if pays(sum_l) { 1.0 - s } else { 0.0 }),
            "parts sum to {total_o} + {total_l} for s = {s}"
        );
    }
    parts
}

/// Combines `(O_i, L_i)` per miner according to `params.combination`.
pub fn combine(scores: &BTreeMap<u16, (f64, f64)>, params: &MechanismParams) -> CombinedWeights {
    let s = params.orchestration_share;
    match params.combination {
        CombinationMode::Blended => CombinedWeights::Single(
            scores
                .iter()
                .map(|(&u, &(o, l))| (u, clamp_finite(o) + clamp_finite(l)))
                .collect(),
        ),
        CombinationMode::Normalized => CombinedWeights::Single(
            normalized_parts(scores, s)
                .into_iter()
                .map(|(u, (o, l))| (u, o + l))
                .collect(),
        ),
        CombinationMode::Mechanisms => CombinedWeights::Mechanisms {
            orchestration: scores
                .iter()
                .map(|(&u, &(o, _))| (u, clamp_finite(o)))
                .collect(),
            ledger: scores
                .iter()
                .map(|(&u, &(_, l))| (u, clamp_finite(l)))
                .collect(),
            emission_split: [s, 1.0 - s],
        },
    }
}

/// The `[s, 1 − s]` split as subtensor's u16 proportions summing to 65535.
pub fn emission_split_u16(s: f64) -> [u16; 2] {
    let first = (crate::orchestration::clamp01(s) * f64::from(u16::MAX)).round_ties_even() as u16;
    let split = [first, u16::MAX - first];
    debug_assert_eq!(u32::from(split[0]) + u32::from(split[1]), 65_535);
    split
}

impl CombinedWeights {
    /// Quantises every vector (sanitise, L1-normalise, clip, u16, drop zeros). A mechanism whose
    /// vector is all zero is left out (nothing can be set there); other errors propagate.
    pub fn quantize(&self, limits: &WeightLimits) -> Result<Vec<MechanismWeights>, WeightsError> {
        let vectors: Vec<(u8, &BTreeMap<u16, f64>)> = match self {
            Self::Single(w) => vec![(0, w)],
            Self::Mechanisms {
                orchestration,
                ledger,
                ..
            } => vec![(0, orchestration), (1, ledger)],
        };
        let mut out = Vec::new();
        for (mechanism, w) in vectors {
            match weights_for_chain(w, limits) {
                Ok((uids, values)) => {
                    debug_assert!(
                        uids.len() == values.len()
                            && uids.windows(2).all(|p| p[0] < p[1])
                            && values.iter().all(|&v| v > 0)
                            && values.iter().max() == Some(&u16::MAX),
                        "mechanism {mechanism}: not a max-upscaled vector: {uids:?} {values:?}"
                    );
                    out.push(MechanismWeights {
                        mechanism,
                        uids,
                        values,
                    })
                }
                Err(WeightsError::AllZero) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::LedgerTerms;
    use crate::orchestration::OrchestrationTerms;

    #[test]
    fn seed_worked_example_blended_is_0_89() {
        let p = MechanismParams {
            combination: CombinationMode::Blended,
            orchestration_share: 0.6,
            ..Default::default()
        };
        let o = OrchestrationTerms {
            hash_verified: 1.0,
            schema_valid: 1.0,
            completeness: 1.0,
            routing: 0.9,
            latency: 1.0,
            fidelity: 0.0,
        };
        let l = LedgerTerms {
            update_accuracy: 1.0,
            discovery: 0.5,
            freshness: 1.0,
            coverage: 0.0,
        };
        // 0.20 + 0.15 + 0.10 + 0.9·0.10 + 0.05 = 0.59
        assert!((o.score(&p) - 0.59).abs() < 1e-12, "{}", o.score(&p));
        // 0.20·1 + 0.10·0.5 + 0.05·1 + 0.05·0 = 0.30
        assert!((l.score(&p) - 0.30).abs() < 1e-12, "{}", l.score(&p));
        let CombinedWeights::Single(w) =
            combine(&BTreeMap::from([(0, (o.score(&p), l.score(&p)))]), &p)
        else {
            panic!("blended gives one vector")
        };
        assert!((w[&0] - 0.89).abs() < 1e-12);
    }

    #[test]
    fn normalized_splits_exactly_s() {
        let p = MechanismParams {
            orchestration_share: 0.6,
            ..Default::default()
        };
        // Miner 1 only orchestrates, miner 2 only does Ledger work, miner 3 does both.
        let scores = BTreeMap::from([(1, (0.3, 0.0)), (2, (0.0, 0.2)), (3, (0.3, 0.2))]);
        let CombinedWeights::Single(w) = combine(&scores, &p) else {
            panic!()
        };
        // 1: 0.6·0.5 = 0.3; 2: 0.4·0.5 = 0.2; 3: 0.3 + 0.2 = 0.5.
        assert!((w[&1] - 0.3).abs() < 1e-12);
        assert!((w[&2] - 0.2).abs() < 1e-12);
        assert!((w[&3] - 0.5).abs() < 1e-12);
        // Blended instead: the Ledger-only miner gets 0.2 / 1.0 of the total.
        let b = MechanismParams {
            combination: CombinationMode::Blended,
            ..p.clone()
        };
        let CombinedWeights::Single(w) = combine(&scores, &b) else {
            panic!()
        };
        assert!((w[&2] - 0.2).abs() < 1e-12 && (w[&1] - 0.3).abs() < 1e-12);
        // One side empty: its part is 0 for everyone.
        let parts = normalized_parts(&BTreeMap::from([(1, (0.0, 0.1)), (2, (0.0, 0.3))]), 0.6);
        assert_eq!(parts[&1].0, 0.0);
        assert!((parts[&2].1 - 0.3).abs() < 1e-12);
    }

    #[test]
    fn mechanisms_mode_gives_two_vectors_and_split() {
        let p = MechanismParams {
            combination: CombinationMode::Mechanisms,
            orchestration_share: 0.6,
            ..Default::default()
        };
        let scores = BTreeMap::from([(1, (0.3, 0.0)), (2, (0.0, f64::NAN)), (4, (0.15, 0.2))]);
        let c = combine(&scores, &p);
        let CombinedWeights::Mechanisms {
            orchestration,
            ledger,
            emission_split,
        } = &c
        else {
            panic!()
        };
        assert_eq!(orchestration[&1], 0.3);
        assert_eq!(ledger[&2], 0.0);
        assert_eq!(*emission_split, [0.6, 0.4]);
        assert_eq!(emission_split_u16(0.6), [39321, 26214]);
        // The tuned default s = 0.497: round(0.497 · 65535) = 32571 (orchestra-yuma's
        // `tests/mechanisms.rs` splits emission with it bit for bit).
        assert_eq!(emission_split_u16(0.497), [32571, 32964]);
        let q = c.quantize(&WeightLimits::default()).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(
            q[0],
            MechanismWeights {
                mechanism: 0,
                uids: vec![1, 4],
                values: vec![65535, 32768]
            }
        );
        assert_eq!(
            q[1],
            MechanismWeights {
                mechanism: 1,
                uids: vec![4],
                values: vec![65535]
            }
        );
        // Nothing at all to set on the Ledger mechanism: only mechanism 0 is returned.
        let c = combine(&BTreeMap::from([(1, (0.3, 0.0))]), &p);
        assert_eq!(c.quantize(&WeightLimits::default()).unwrap().len(), 1);
    }
}
