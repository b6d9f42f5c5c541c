//! Properties of the score → weight pipeline for arbitrary score vectors (NaN, inf and negative
//! scores included).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use orchestra_mechanism::combine::{CombinedWeights, combine, normalized_parts};
use orchestra_mechanism::params::{CombinationMode, MechanismParams};
use orchestra_mechanism::weights::{WeightLimits, WeightsError, l1_normalize, weights_for_chain};
use proptest::prelude::*;

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0f64..1.0,
        1 => Just(0.0),
        1 => prop_oneof![
            Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(-1.0),
            Just(1e-300), Just(1e300), Just(f64::MIN_POSITIVE)
        ],
    ]
}

fn scores() -> impl Strategy<Value = BTreeMap<u16, f64>> {
    prop::collection::btree_map(any::<u16>(), score(), 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn weights_are_a_valid_u16_vector(s in scores(), limit in prop_oneof![Just(u16::MAX), 1000u16..u16::MAX]) {
        let limits = WeightLimits { max_weight_limit: limit, ..Default::default() };
        match weights_for_chain(&s, &limits) {
            Err(WeightsError::AllZero) => {
                // Only when no score is positive and finite.
                prop_assert!(s.values().all(|w| !(w.is_finite() && *w > 0.0)));
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
            Ok((uids, values)) => {
                prop_assert_eq!(uids.len(), values.len());
                prop_assert!(uids.windows(2).all(|w| w[0] < w[1]), "uids strictly ascending");
                prop_assert!(values.iter().all(|&v| v > 0), "zeros dropped");
                prop_assert_eq!(values.iter().copied().max(), Some(u16::MAX));
                for u in &uids {
                    let w = s[u];
                    prop_assert!(w.is_finite() && w > 0.0, "only positive finite scores get weight");
                }
                if limit == u16::MAX {
                    // Proportions preserved up to rounding: each value is within 0.5 of the ideal.
                    let norm = l1_normalize(&s);
                    let top = norm.values().copied().fold(0.0, f64::max);
                    for (u, v) in uids.iter().zip(&values) {
                        let ideal = norm[u] / top * 65535.0;
                        prop_assert!((f64::from(*v) - ideal).abs() <= 0.5 + 1e-6, "{} vs {}", v, ideal);
                    }
                    // …and every dropped positive score was below half a quantum.
                    for (u, w) in &norm {
                        if *w > 0.0 && !uids.contains(u) {
                            prop_assert!(w / top * 65535.0 <= 0.5 + 1e-9);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn normalized_mode_gives_orchestration_exactly_s(
        pairs in prop::collection::btree_map(any::<u16>(), (score(), score()), 1..48),
        s in 0.0f64..=1.0,
    ) {
        let p = MechanismParams {
            orchestration_share: s,
            combination: CombinationMode::Normalized,
            ..Default::default()
        };
        let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        let sum_o: f64 = pairs.values().map(|(o, _)| clean(*o)).sum();
        let sum_l: f64 = pairs.values().map(|(_, l)| clean(*l)).sum();
        let parts = normalized_parts(&pairs, s);
        let part_o: f64 = parts.values().map(|(o, _)| o).sum();
        let part_l: f64 = parts.values().map(|(_, l)| l).sum();
        prop_assert!(parts.values().all(|(o, l)| o.is_finite() && l.is_finite() && *o >= 0.0 && *l >= 0.0));
        if sum_o > 0.0 && sum_o.is_finite() && sum_l > 0.0 && sum_l.is_finite() {
            prop_assert!((part_o / (part_o + part_l) - s).abs() < 1e-9, "{} vs {}", part_o, s);
            // After quantisation the realised orchestration share is s within rounding.
            let CombinedWeights::Single(w) = combine(&pairs, &p) else { unreachable!() };
            if let Ok((uids, values)) = weights_for_chain(&w, &WeightLimits::default()) {
                let total_q: f64 = values.iter().map(|v| f64::from(*v)).sum();
                let orch_q: f64 = uids.iter().zip(&values).map(|(u, v)| {
                    let (o, l) = parts[u];
                    f64::from(*v) * o / (o + l)
                }).sum();
                // Each value is off by at most half a quantum (plus the quanta of dropped uids).
                let tol = 0.5 * pairs.len() as f64 / total_q + 1e-9;
                prop_assert!((orch_q / total_q - s).abs() <= tol, "{} vs {} (tol {})", orch_q / total_q, s, tol);
            }
        }
    }
}
