//! Nearest-rank percentiles (the `k`-th smallest value with `k = ⌈q·n⌉`, at least 1): always one
//! of the observed values, so a latency percentile is a latency that happened.

use std::collections::BTreeMap;

/// Index (0-based) of the nearest-rank `q`-quantile among `n ≥ 1` sorted values.
fn rank(q: f64, n: u64) -> u64 {
    let k = (q * n as f64).ceil();
    // `as` saturates: q ≤ 0 (or NaN) gives rank 1, q ≥ 1 rank n.
    (k as u64).clamp(1, n) - 1
}

/// Nearest-rank `q`-quantile (`q ∈ [0, 1]`) of `values`; NaN when there are none.
pub fn nearest_rank(values: &[u64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut s = values.to_vec();
    let k = rank(q, s.len() as u64) as usize;
    let (_, x, _) = s.select_nth_unstable(k);
    *x as f64
}

/// [`nearest_rank`] of the multiset `counts` (value → how often), for distributions kept as
/// counts so that memory is bounded by distinct values rather than by observations.
pub fn nearest_rank_counts(counts: &BTreeMap<u64, u64>, q: f64) -> f64 {
    let n: u64 = counts.values().sum();
    if n == 0 {
        return f64::NAN;
    }
    let k = rank(q, n);
    let mut seen = 0u64;
    for (&v, &c) in counts {
        seen += c;
        if seen > k {
            return v as f64;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 0.5), 50.0);
        assert_eq!(nearest_rank(&v, 0.95), 95.0);
        assert_eq!(nearest_rank(&v, 0.0), 1.0);
        assert_eq!(nearest_rank(&v, 1.0), 100.0);
        assert_eq!(nearest_rank(&[7], 0.95), 7.0);
        assert!(nearest_rank(&[], 0.5).is_nan());
        assert!(nearest_rank_counts(&BTreeMap::new(), 0.5).is_nan());
    }

    #[test]
    fn counts_equal_the_list_form() {
        // A fixed pseudo-random list with repeats, like latencies.
        let v: Vec<u64> = (0..997u64).map(|i| (i * 7919 + 13) % 211).collect();
        let mut counts = BTreeMap::new();
        for &x in &v {
            *counts.entry(x).or_insert(0u64) += 1;
        }
        for q in [0.0, 0.01, 0.5, 0.95, 0.999, 1.0] {
            assert_eq!(nearest_rank_counts(&counts, q), nearest_rank(&v, q));
        }
    }
}
