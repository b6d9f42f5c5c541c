//! Invariants of the shared statistics, over arbitrary inputs.

use orchestra_stats::{
    Interval, Scale, bounds, gini, lorenz, nearest_rank, nearest_rank_counts, t_quantile_975,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn proportions() -> impl Strategy<Value = Vec<f64>> {
    // Values at the bounds are common (a success rate of 1), so draw them on purpose.
    let p = prop_oneof![
        3 => 0.0..=1.0f64,
        1 => Just(0.0),
        1 => Just(1.0),
        1 => 0.99..=1.0f64,
        1 => 0.0..=0.01f64,
    ];
    prop::collection::vec(p, 0..40)
}

fn amounts() -> impl Strategy<Value = Vec<f64>> {
    let a = prop_oneof![3 => 0.0..1e12f64, 1 => Just(0.0), 1 => (0u64..1_000_000).prop_map(|x| x as f64)];
    prop::collection::vec(a, 0..80)
}

proptest! {
    #[test]
    fn an_interval_contains_its_mean(
        v in prop::collection::vec(-1e9..1e9f64, 1..40),
        unit in any::<bool>(),
    ) {
        let scale = if unit { Scale::Unit } else { Scale::Real };
        let i = Interval::on(&v, scale);
        prop_assert_eq!(i.n, v.len());
        prop_assert!(i.lo <= i.mean && i.mean <= i.hi, "{:?}", i);
    }

    #[test]
    fn bounded_intervals_stay_in_the_unit_interval(v in proportions()) {
        let i = Interval::on(&v, Scale::Unit);
        if v.is_empty() {
            prop_assert!(i.mean.is_nan() && i.lo.is_nan() && i.hi.is_nan());
        } else {
            prop_assert!(0.0 <= i.lo && i.lo <= i.mean && i.mean <= i.hi && i.hi <= 1.0, "{:?}", i);
        }
    }

    #[test]
    fn bounded_intervals_agree_with_the_t_interval_at_one_half(
        d in prop::collection::vec(-0.01..0.01f64, 2..30),
    ) {
        // Around m = 0.5 the logit is nearly linear: the two intervals match closely.
        let v: Vec<f64> = d.iter().map(|x| 0.5 + x).collect();
        let (p, u) = (Interval::of(&v), Interval::on(&v, Scale::Unit));
        let width = p.hi - p.lo;
        prop_assert!((p.lo - u.lo).abs() <= 0.02 * width + 1e-15, "{:?} {:?}", p, u);
        prop_assert!((p.hi - u.hi).abs() <= 0.02 * width + 1e-15, "{:?} {:?}", p, u);
    }

    #[test]
    fn t_intervals_are_symmetric_and_bounds_match_interval(
        v in prop::collection::vec(-1e6..1e6f64, 2..30),
        unit in any::<bool>(),
    ) {
        let scale = if unit { Scale::Unit } else { Scale::Real };
        let i = Interval::on(&v, scale);
        let n = v.len() as f64;
        let std = (v.iter().map(|x| (x - i.mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        prop_assert_eq!(bounds(v.len() as u64, i.mean, std, scale), (i.lo, i.hi));
        if !unit {
            let half = t_quantile_975(v.len() as u32 - 1) * std / n.sqrt();
            prop_assert!(((i.hi - i.mean) - half).abs() <= 1e-9 * (1.0 + half));
            prop_assert!(((i.mean - i.lo) - half).abs() <= 1e-9 * (1.0 + half));
        }
    }

    #[test]
    fn gini_is_in_the_unit_interval_and_order_free(
        (v, shuffled) in amounts().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let g = gini(&v);
        let total: f64 = v.iter().sum();
        if total > 0.0 {
            // At most 1 − 1/n (one holder takes all), up to rounding.
            let n = v.len() as f64;
            prop_assert!((-1e-12..=1.0 - 1.0 / n + 1e-12).contains(&g), "{}", g);
        } else {
            prop_assert!(g.is_nan());
        }
        prop_assert_eq!(g.to_bits(), gini(&shuffled).to_bits());
        prop_assert_eq!(lorenz(&v), lorenz(&shuffled));
    }

    #[test]
    fn gini_ignores_the_unit(v in amounts(), k in 1e-3..1e3f64) {
        let scaled: Vec<f64> = v.iter().map(|x| x * k).collect();
        let (a, b) = (gini(&v), gini(&scaled));
        prop_assert!(a.is_nan() == b.is_nan());
        if !a.is_nan() {
            prop_assert!((a - b).abs() < 1e-9, "{} vs {}", a, b);
        }
    }

    #[test]
    fn lorenz_rises_from_origin_to_one_one_below_the_diagonal(v in amounts()) {
        let Some(curve) = lorenz(&v) else {
            prop_assert!(gini(&v).is_nan());
            return Ok(());
        };
        prop_assert_eq!(curve.len(), v.len() + 1);
        prop_assert_eq!(curve[0], (0.0, 0.0));
        prop_assert_eq!(*curve.last().unwrap_or(&(0.0, 0.0)), (1.0, 1.0));
        for w in curve.windows(2) {
            prop_assert!(w[0].0 < w[1].0 && w[0].1 <= w[1].1, "{:?}", w);
        }
        for (x, y) in &curve {
            prop_assert!(*y <= *x + 1e-12, "({}, {})", x, y);
        }
        // The Gini is twice the area between the diagonal and the curve.
        let area: f64 = curve.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
        prop_assert!((gini(&v) - (1.0 - 2.0 * area)).abs() < 1e-9);
    }

    #[test]
    fn percentiles_from_counts_equal_the_list_form(
        v in prop::collection::vec(0u64..50, 1..200),
        q in 0.0..=1.0f64,
    ) {
        let mut counts = BTreeMap::new();
        for &x in &v {
            *counts.entry(x).or_insert(0u64) += 1;
        }
        let p = nearest_rank(&v, q);
        prop_assert_eq!(nearest_rank_counts(&counts, q), p);
        prop_assert!(v.contains(&(p as u64)));
        let below = v.iter().filter(|&&x| (x as f64) < p).count() as f64;
        prop_assert!(below < (q * v.len() as f64).ceil().max(1.0));
    }
}
