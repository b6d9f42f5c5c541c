//! Mean and 95 % confidence interval of a metric across seeds.
//!
//! Unbounded metrics (ROI, latency, emission, counts) get Student's t-interval
//! `mean ± t(0.975, n−1)·s/√n`. Metrics that are proportions or shares bounded to [0, 1] get the
//! **logit interval**: the same t-interval built on the logit scale around the mean, with the
//! delta-method standard error, and mapped back,
//!
//! ```text
//! ℓ = ln(m / (1 − m)),   h = t(0.975, n−1) · (s/√n) / (m·(1 − m)),   [expit(ℓ − h), expit(ℓ + h)]
//! ```
//!
//! (`expit(x) = 1/(1 + e^−x)`; `m` mean, `s` sample standard deviation, `n` seeds). It is the
//! default interval of Stata's `proportion` (its `citype(logit)`), and it was chosen over the
//! alternatives because:
//!
//! - it stays inside [0, 1] by construction and always contains the mean;
//! - it needs only `n`, mean and standard deviation, so the report's polars group-by keeps
//!   computing it without holding every seed's value (the time series has a group per epoch);
//! - away from the bounds it agrees with the t-interval to first order (at `m = 0.5` the two
//!   differ only in the third digit of a typical width), and towards a bound it narrows on the
//!   near side and widens on the far side, as the spread of a proportion does;
//! - a percentile bootstrap would also stay inside [0, 1], but with the usual 3–10 seeds it
//!   under-covers badly (it cannot reach beyond the sample's own range), and it would need every
//!   value and a fixed resampling seed; the logit transform of each seed's value instead of the
//!   mean describes a different quantity than the mean and is undefined at a seed of exactly 0
//!   or 1 (a success rate of 1 is common); clipping the t-interval to [0, 1] would print a bound
//!   of exactly 1 ("could be perfect") for any mean near 1.
//!
//! Rules at the edges, for both scales: no finite value gives a NaN mean and bounds; one value, or
//! no spread (`s = 0`), gives the point `[m, m]`. For the logit interval: a mean of exactly 0 or 1
//! gives `[m, m]` (every seed sat at the bound — with values in [0, 1] that forces `s = 0`, up to
//! rounding); a mean outside [0, 1] means the values were not proportions at all, and the plain
//! t-interval is returned so that the breach shows instead of being folded back into range.

use crate::t::t_quantile_975;

/// The range a metric's values live in, which decides the kind of its interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scale {
    /// Any real number (ROI, latency, emission, counts): Student's t-interval.
    Real,
    /// A proportion or share bounded to [0, 1]: the logit interval, which stays in [0, 1].
    Unit,
}

/// Bounds of the 95 % interval of a mean from the number of values `n`, their `mean` and their
/// sample standard deviation `std` (divisor `n − 1`) — what an aggregation yields — on `scale`.
/// See the module documentation for the rules.
pub fn bounds(n: u64, mean: f64, std: f64, scale: Scale) -> (f64, f64) {
    if n <= 1 {
        return (mean, mean);
    }
    let t = t_quantile_975(u32::try_from(n - 1).unwrap_or(u32::MAX));
    t_bounds(t, n, mean, std, scale)
}

/// [`bounds`] with the quantile `t = t(0.975, n − 1)` given (callers that aggregate many groups
/// cache it per `n`).
pub fn t_bounds(t: f64, n: u64, mean: f64, std: f64, scale: Scale) -> (f64, f64) {
    if n <= 1 {
        return (mean, mean);
    }
    // The same operations, in the same order, as the report's tables always used, so plain
    // intervals keep their exact bits.
    let half = t * std / (n as f64).sqrt();
    let plain = (mean - half, mean + half);
    match scale {
        Scale::Real => plain,
        Scale::Unit => {
            if mean == 0.0 || mean == 1.0 || std == 0.0 {
                return (mean, mean);
            }
            // Outside [0, 1], or a NaN mean or spread: the plain (or NaN) interval.
            if !(mean > 0.0 && mean < 1.0) || half.is_nan() {
                return plain;
            }
            let h = half / (mean * (1.0 - mean));
            let l = (mean / (1.0 - mean)).ln();
            // min/max: expit(logit(m)) may round a hair past m when h is tiny.
            (expit(l - h).min(mean), expit(l + h).max(mean))
        }
    }
}

/// The logistic function, inverse of the logit; 0 and 1 at the extremes, never outside.
fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Mean and 95 % confidence interval of the finite values of a sample (NaNs and infinities are
/// skipped: a run whose metric is undefined does not count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Number of finite values.
    pub n: usize,
    /// Mean (NaN when `n = 0`).
    pub mean: f64,
    /// Lower bound (equals the mean for `n = 1`).
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl Interval {
    /// The t-interval of `values` (a metric on [`Scale::Real`]).
    pub fn of(values: &[f64]) -> Interval {
        Interval::on(values, Scale::Real)
    }

    /// The interval of `values` on `scale` (see the module documentation).
    pub fn on(values: &[f64], scale: Scale) -> Interval {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return Interval {
                n,
                mean: f64::NAN,
                lo: f64::NAN,
                hi: f64::NAN,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let (lo, hi) = bounds(n as u64, mean, std, scale);
        Interval { n, mean, lo, hi }
    }

    /// Whether this interval lies entirely below `other` (the intervals separate).
    pub fn below(&self, other: &Interval) -> bool {
        self.hi < other.lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_of_a_known_sample() {
        let i = Interval::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!((i.n, i.mean), (5, 3.0));
        // s = 1.5811, s/√n = 0.7071, t(4) = 2.776445
        let half = 2.776_445_105 * 0.5_f64.sqrt();
        assert!((i.hi - 3.0 - half).abs() < 1e-8 && (3.0 - i.lo - half).abs() < 1e-8);
        assert!(Interval::of(&[1.0, 1.1]).below(&Interval::of(&[5.0, 5.1])));
        assert!(!Interval::of(&[1.0, 5.0]).below(&Interval::of(&[4.0, 5.1])));
    }

    #[test]
    fn logit_interval_of_a_known_sample() {
        // m = 0.9, s/√n = 0.05/√3 = 0.028868 (n = 4), h = t(3)·0.028868/0.09, ℓ = ln 9.
        let v = [0.85, 0.95, 0.85, 0.95];
        let i = Interval::on(&v, Scale::Unit);
        let (l, h) = (9f64.ln(), 3.182_446_305 * (0.05 / 3f64.sqrt()) / 0.09);
        let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert!((i.lo - expit(l - h)).abs() < 1e-8, "{i:?}");
        assert!((i.hi - expit(l + h)).abs() < 1e-8, "{i:?}");
        assert!(i.lo < 0.9 && 0.9 < i.hi && i.hi < 1.0);
    }

    #[test]
    fn the_issue_example_stays_below_one() {
        // Five seeds of a Ledger accuracy near 1 whose t-interval reached above 1.
        let v = [1.0, 1.0, 0.9722, 0.9825, 0.9888];
        let plain = Interval::of(&v);
        let bounded = Interval::on(&v, Scale::Unit);
        assert!(plain.hi > 1.0, "{plain:?}");
        assert!(bounded.hi < 1.0 && bounded.lo > 0.0, "{bounded:?}");
        assert_eq!(plain.mean, bounded.mean);
    }

    #[test]
    fn edge_rules() {
        let nan = Interval::on(&[f64::NAN], Scale::Unit);
        assert!(nan.mean.is_nan() && nan.lo.is_nan() && nan.hi.is_nan() && nan.n == 0);
        for scale in [Scale::Real, Scale::Unit] {
            let one = Interval::on(&[0.3, f64::NAN], scale);
            assert_eq!((one.n, one.lo, one.hi), (1, 0.3, 0.3));
            let flat = Interval::on(&[0.25, 0.25, 0.25], scale);
            assert_eq!((flat.lo, flat.hi), (0.25, 0.25));
        }
        let ones = Interval::on(&[1.0, 1.0, 1.0], Scale::Unit);
        assert_eq!((ones.lo, ones.hi), (1.0, 1.0));
        let zeros = Interval::on(&[0.0, 0.0], Scale::Unit);
        assert_eq!((zeros.lo, zeros.hi), (0.0, 0.0));
        // Not proportions: the plain interval, so the breach is visible.
        let out = [1.5, 2.5, 3.5];
        assert_eq!(Interval::on(&out, Scale::Unit), Interval::of(&out));
        assert_eq!(
            bounds(5, 2.0, 1.0, Scale::Unit),
            bounds(5, 2.0, 1.0, Scale::Real)
        );
        // A NaN spread stays NaN on both scales rather than passing for certainty.
        for scale in [Scale::Real, Scale::Unit] {
            let (lo, hi) = bounds(5, 0.5, f64::NAN, scale);
            assert!(lo.is_nan() && hi.is_nan());
        }
    }
}
