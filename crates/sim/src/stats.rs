//! Means and 95 % confidence intervals across seeds (Student's t).

/// Two-sided 95 % Student's t quantile for `dof` degrees of freedom.
pub fn t95(dof: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => f64::NAN,
        d if d <= 30 => TABLE[d - 1],
        d if d <= 60 => 2.000 + (2.042 - 2.000) * (60 - d) as f64 / 30.0,
        d if d <= 120 => 1.980 + (2.000 - 1.980) * (120 - d) as f64 / 60.0,
        _ => 1.960,
    }
}

/// Mean and 95 % confidence interval of finite `values` (NaNs are skipped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Number of finite values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Lower bound (equals the mean for n = 1).
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl Interval {
    /// The interval of `values`.
    pub fn of(values: &[f64]) -> Interval {
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
        if n == 1 {
            return Interval {
                n,
                mean,
                lo: mean,
                hi: mean,
            };
        }
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let half = t95(n - 1) * (var / n as f64).sqrt();
        Interval {
            n,
            mean,
            lo: mean - half,
            hi: mean + half,
        }
    }

    /// Whether this interval lies entirely below `other`.
    pub fn below(&self, other: &Interval) -> bool {
        self.hi < other.lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_of_known_sample() {
        let i = Interval::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(i.mean, 3.0);
        // sd = 1.5811, se = 0.7071, t(4) = 2.776
        assert!((i.hi - 3.0 - 2.776 * (0.5f64).sqrt()).abs() < 1e-6);
        assert!(Interval::of(&[1.0, 1.1]).below(&Interval::of(&[5.0, 5.1])));
    }
}
