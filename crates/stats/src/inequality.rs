//! How unequally an amount (emission) is spread: the Gini coefficient and the Lorenz curve.
//!
//! **One rule for undefined input.** Both are defined for finite, non-negative amounts with a
//! positive total. Anything else — no amounts, all zero (nothing was emitted), a negative or
//! non-finite amount — is *undefined*: [`gini`] returns NaN and [`lorenz`] `None`. NaN is what a
//! run metric with nothing to measure should be (the run table writes it as an empty cell, and
//! intervals skip it), where 0 would claim perfect equality of nothing.

/// The amounts sorted ascending, or `None` when the Gini and the Lorenz curve are undefined.
fn sorted_valid(amounts: &[f64]) -> Option<(Vec<f64>, f64)> {
    if amounts.iter().any(|a| !a.is_finite() || *a < 0.0) {
        return None;
    }
    let mut v = amounts.to_vec();
    v.sort_by(f64::total_cmp);
    // Summed in sorted order, so the result does not depend on the input order.
    let total: f64 = v.iter().sum();
    (total > 0.0).then_some((v, total))
}

/// Gini coefficient of amounts: 0 when all are equal, `1 − 1/n` when one takes everything;
/// NaN when undefined (see the module documentation).
pub fn gini(amounts: &[f64]) -> f64 {
    let Some((v, total)) = sorted_valid(amounts) else {
        return f64::NAN;
    };
    let n = v.len() as f64;
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, a)| (i as f64 + 1.0) * a)
        .sum();
    (2.0 * weighted) / (n * total) - (n + 1.0) / n
}

/// Lorenz curve of amounts: points (cumulative share of holders, cumulative share of the
/// amount), holders sorted by increasing amount, from (0, 0) to (1, 1); `None` when undefined
/// (see the module documentation).
pub fn lorenz(amounts: &[f64]) -> Option<Vec<(f64, f64)>> {
    let (v, total) = sorted_valid(amounts)?;
    let n = v.len() as f64;
    let mut out = Vec::with_capacity(v.len() + 1);
    out.push((0.0, 0.0));
    let mut acc = 0.0;
    for (i, a) in v.iter().enumerate() {
        acc += a;
        out.push(((i as f64 + 1.0) / n, acc / total));
    }
    // The last cumulative sum is the total itself (same additions, same order), so the curve
    // ends at exactly (1, 1).
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distributions() {
        assert_eq!(gini(&[1.0, 1.0, 1.0, 1.0]), 0.0);
        assert!((gini(&[0.0, 0.0, 0.0, 1.0]) - 0.75).abs() < 1e-12);
        assert!((gini(&[1.0, 2.0, 3.0, 4.0]) - 0.25).abs() < 1e-12);
        assert_eq!(
            lorenz(&[3.0, 1.0]),
            Some(vec![(0.0, 0.0), (0.5, 0.25), (1.0, 1.0)])
        );
    }

    #[test]
    fn undefined_input_is_nan_and_none() {
        for bad in [
            &[][..],
            &[0.0, 0.0][..],
            &[1.0, -0.5][..],
            &[1.0, f64::NAN][..],
            &[1.0, f64::INFINITY][..],
        ] {
            assert!(gini(bad).is_nan(), "{bad:?}");
            assert!(lorenz(bad).is_none(), "{bad:?}");
        }
    }
}
