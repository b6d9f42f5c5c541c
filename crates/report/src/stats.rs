//! Small statistics helpers: Student's t quantile (for confidence intervals) and the Gini
//! coefficient / Lorenz curve of an emission distribution.

/// Two-sided 95 % quantile of Student's t distribution, `t(0.975, df)`, for `df ≥ 1` degrees of
/// freedom (`df = 0` returns 0, so that a single observation gives `ci = mean`).
///
/// Computed by inverting the CDF (regularised incomplete beta function) by bisection; accurate to
/// ~1e-10.
pub fn t_quantile_975(df: u32) -> f64 {
    t_quantile(0.975, df)
}

/// Quantile `p ∈ (0.5, 1)` of Student's t distribution with `df` degrees of freedom (0 for
/// `df = 0` or `p ≤ 0.5`).
pub fn t_quantile(p: f64, df: u32) -> f64 {
    if df == 0 || p <= 0.5 || p >= 1.0 {
        return 0.0;
    }
    let nu = f64::from(df);
    // Upper tail probability 1 − p = 0.5·I_{ν/(ν+t²)}(ν/2, 1/2), decreasing in t.
    let target = 2.0 * (1.0 - p);
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while reg_inc_beta(nu / 2.0, 0.5, nu / (nu + hi * hi)) > target && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if reg_inc_beta(nu / 2.0, 0.5, nu / (nu + mid * mid)) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-13 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta function I_x(a, b).
fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Gini coefficient of non-negative amounts (0 = equal, → 1 = concentrated); 0 for an empty or
/// all-zero input. Negative and non-finite amounts are treated as 0.
pub fn gini(amounts: &[f64]) -> f64 {
    let mut v: Vec<f64> = amounts
        .iter()
        .map(|a| if a.is_finite() { a.max(0.0) } else { 0.0 })
        .collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let total: f64 = v.iter().sum();
    if v.is_empty() || total <= 0.0 {
        return 0.0;
    }
    let weighted: f64 = v
        .iter()
        .enumerate()
        .map(|(i, a)| (i as f64 + 1.0) * a)
        .sum();
    (2.0 * weighted) / (n * total) - (n + 1.0) / n
}

/// Lorenz curve of non-negative amounts: points (cumulative share of miners, cumulative share of
/// emission), from (0, 0) to (1, 1), miners sorted by increasing amount.
pub fn lorenz(amounts: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = amounts
        .iter()
        .map(|a| if a.is_finite() { a.max(0.0) } else { 0.0 })
        .collect();
    v.sort_by(f64::total_cmp);
    let total: f64 = v.iter().sum();
    let n = v.len() as f64;
    let mut out = vec![(0.0, 0.0)];
    let mut acc = 0.0;
    for (i, a) in v.iter().enumerate() {
        acc += a;
        let y = if total > 0.0 {
            acc / total
        } else {
            (i as f64 + 1.0) / n
        };
        out.push(((i as f64 + 1.0) / n, y));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        let table = [
            (1, 12.706_204_736),
            (2, 4.302_652_730),
            (3, 3.182_446_305),
            (4, 2.776_445_105),
            (9, 2.262_157_163),
            (29, 2.045_229_642),
            (100, 1.983_971_519),
            (1000, 1.962_339_081),
        ];
        for (df, t) in table {
            let got = t_quantile_975(df);
            assert!((got - t).abs() < 1e-6, "df {df}: {got} vs {t}");
        }
        assert_eq!(t_quantile_975(0), 0.0);
    }

    #[test]
    fn gini_and_lorenz() {
        assert!(gini(&[1.0, 1.0, 1.0, 1.0]).abs() < 1e-12);
        assert!((gini(&[0.0, 0.0, 0.0, 1.0]) - 0.75).abs() < 1e-12);
        let l = lorenz(&[3.0, 1.0]);
        assert_eq!(l, vec![(0.0, 0.0), (0.5, 0.25), (1.0, 1.0)]);
    }
}
