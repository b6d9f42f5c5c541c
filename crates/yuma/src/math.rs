//! Fixed-point primitives of the epoch, ported from subtensor's `epoch/math.rs`.
//!
//! Every helper keeps the chain's exact operation order, saturation and truncation, because the
//! port is only useful if it is bit-exact. Where the chain builds a dense scratch row and scans it
//! in column order, we touch only the columns that can be non-zero and emit them in the same
//! ascending order: the result is identical and the cost follows the number of entries, not n².
//!
//! Two deliberate differences from a literal transcription, neither visible in any result the
//! chain can produce:
//! - `Iterator::sum` on fixed types is `Add::add`, which panics on overflow in debug builds and
//!   wraps in release (the runtime's profile). We always wrap, i.e. behave like the release build,
//!   and never panic.
//! - Index look-ups that would panic on the chain (it never stores such entries) are skipped.

use substrate_fixed::transcendental::exp;
use substrate_fixed::types::{I32F32, I64F64};

/// A sparse matrix row: `(column, value)` pairs, in the order the chain would hold them.
pub(crate) type SparseRow = Vec<(u16, I32F32)>;

pub(crate) const ZERO: I32F32 = I32F32::from_bits(0);
pub(crate) const ONE: I32F32 = I32F32::from_bits(1 << 32);

/// `I32F32::saturating_mul`, computed with one 64×64→128-bit product.
///
/// substrate-fixed multiplies `a · (b << 32)` in i128 with overflow detection (a slow software
/// routine) and keeps the high 64 bits. That overflows exactly when `a·b` leaves
/// `[−2⁹⁵, 2⁹⁵)`, and otherwise equals `floor(a·b / 2³²)`, which is what this computes.
pub(crate) trait FastMul {
    /// Saturating fixed-point product, bit-identical to `saturating_mul`.
    fn smul(self, rhs: I32F32) -> I32F32;
}

impl FastMul for I32F32 {
    #[inline]
    fn smul(self, rhs: I32F32) -> I32F32 {
        let (a, b) = (self.to_bits(), rhs.to_bits());
        let p = i128::from(a) * i128::from(b);
        if !(-(1i128 << 95)..(1i128 << 95)).contains(&p) {
            if (a < 0) != (b < 0) {
                I32F32::min_value()
            } else {
                I32F32::max_value()
            }
        } else {
            I32F32::from_bits((p >> 32) as i64)
        }
    }
}

/// `x.safe_div(y)` of subtensor's `safe_math`: checked division, 0 on a zero divisor or overflow.
#[inline]
pub(crate) fn safe_div(x: I32F32, y: I32F32) -> I32F32 {
    x.checked_div(y).unwrap_or(ZERO)
}

/// Floor division of u64 numerators by one run-time invariant u64 divisor, by multiplication
/// (Granlund & Montgomery 1994, fig. 4.1). Exact for every numerator: it is only a faster way
/// to compute the same quotient the chain's `checked_div` computes.
#[derive(Clone, Copy)]
pub(crate) struct MagicU64 {
    m: u64,
    sh1: u32,
    sh2: u32,
}

impl MagicU64 {
    /// `d` must be non-zero.
    pub(crate) fn new(d: u64) -> Self {
        // l = ceil(log2 d), so 2^(l-1) < d <= 2^l.
        let l = 64 - (d - 1).leading_zeros();
        let two_l = 1u128 << l;
        let m = ((1u128 << 64) * (two_l - u128::from(d)) / u128::from(d) + 1) as u64;
        MagicU64 {
            m,
            sh1: l.min(1),
            sh2: l.saturating_sub(1),
        }
    }

    #[inline]
    pub(crate) fn div(self, n: u64) -> u64 {
        let t1 = ((u128::from(self.m) * u128::from(n)) >> 64) as u64;
        (t1 + ((n - t1) >> self.sh1)) >> self.sh2
    }
}

/// A fixed-point divisor prepared for many `safe_div`s by it (a row or column sum or maximum).
///
/// `safe_div(x, y)` is `floor(x·2³² / y)` on the raw bits for x ≥ 0, y > 0, or 0 if that
/// overflows i64. When `x < 1` the numerator fits in 64 bits; when x and y are both integers
/// (u16 weights and bonds, and their sums) the 2³² factors cancel. Both cases use an exact
/// multiply-shift; anything else (negative values, large non-integers) falls back to
/// `checked_div`. A zero divisor is the identity, which is what the chain's column and row
/// normalisations do with an all-zero column or row.
#[derive(Clone, Copy)]
pub(crate) struct Divisor {
    y: I32F32,
    frac: MagicU64,
    int: MagicU64,
    /// 0: identity (y == 0); 1: y > 0, integer path unavailable; 2: both paths available;
    /// 3: y < 0 (always `checked_div`).
    kind: u8,
}

impl Divisor {
    pub(crate) fn new(y: I32F32) -> Self {
        let bits = y.to_bits();
        let none = MagicU64 {
            m: 0,
            sh1: 0,
            sh2: 0,
        };
        if bits == 0 {
            return Divisor {
                y,
                frac: none,
                int: none,
                kind: 0,
            };
        }
        if bits < 0 {
            return Divisor {
                y,
                frac: none,
                int: none,
                kind: 3,
            };
        }
        let frac = MagicU64::new(bits as u64);
        if bits & 0xFFFF_FFFF == 0 {
            let int = MagicU64::new((bits >> 32) as u64);
            Divisor {
                y,
                frac,
                int,
                kind: 2,
            }
        } else {
            Divisor {
                y,
                frac,
                int: none,
                kind: 1,
            }
        }
    }

    /// `safe_div(x, y)`, except that a zero divisor leaves `x` unchanged.
    #[inline]
    pub(crate) fn div(&self, x: I32F32) -> I32F32 {
        if self.kind == 0 {
            return x;
        }
        let a = x.to_bits();
        let q = if self.kind != 3 && (0..(1i64 << 32)).contains(&a) {
            self.frac.div((a as u64) << 32)
        } else if self.kind == 2 && a >= 0 && a & 0xFFFF_FFFF == 0 && (a >> 32) < (1i64 << 32) {
            self.int.div(((a >> 32) as u64) << 32)
        } else {
            return safe_div(x, self.y);
        };
        if q > i64::MAX as u64 {
            ZERO
        } else {
            I32F32::from_bits(q as i64)
        }
    }
}

/// `safe_div` for `I64F64`.
#[inline]
pub(crate) fn safe_div_64(x: I64F64, y: I64F64) -> I64F64 {
    x.checked_div(y).unwrap_or(I64F64::from_bits(0))
}

/// `Iterator::sum` as the release runtime computes it (wrapping adds).
#[inline]
pub(crate) fn wrapping_sum<'a>(it: impl Iterator<Item = &'a I32F32>) -> I32F32 {
    it.fold(ZERO, |acc, x| acc.wrapping_add(*x))
}

/// `fixed_proportion_to_u16`: `(x * 65535)` saturated, then truncated to u16.
#[inline]
pub(crate) fn fixed_proportion_to_u16(x: I32F32) -> u16 {
    x.smul(I32F32::from_bits(65535_i64 << 32))
        .saturating_to_num::<u16>()
}

/// `u16_to_fixed`: the integer value of a stored u16 as `I32F32`.
#[inline]
pub(crate) fn u16_to_fixed(x: u16) -> I32F32 {
    I32F32::from_bits(i64::from(x) << 32)
}

/// `u16` as a proportion of `u16::MAX` (`kappa`, `bonds_penalty`, alpha bounds, Yuma 3 bonds).
#[inline]
pub(crate) fn u16_proportion(x: u16) -> I32F32 {
    safe_div(u16_to_fixed(x), u16_to_fixed(u16::MAX))
}

/// `inplace_normalize`: divide by the (wrapping) sum unless the sum is zero.
pub(crate) fn inplace_normalize(x: &mut [I32F32]) {
    let s = wrapping_sum(x.iter());
    if s == ZERO {
        return;
    }
    let d = Divisor::new(s);
    for v in x.iter_mut() {
        *v = d.div(*v);
    }
}

/// `inplace_normalize_using_sum`: divide by a given sum unless it is zero.
pub(crate) fn inplace_normalize_using_sum(x: &mut [I32F32], s: I32F32) {
    if s == ZERO {
        return;
    }
    let d = Divisor::new(s);
    for v in x.iter_mut() {
        *v = d.div(*v);
    }
}

/// `inplace_normalize_64` on `I64F64` stake.
pub(crate) fn inplace_normalize_64(x: &mut [I64F64]) {
    let s = x
        .iter()
        .fold(I64F64::from_bits(0), |acc, v| acc.wrapping_add(*v));
    if s == I64F64::from_bits(0) {
        return;
    }
    for v in x.iter_mut() {
        *v = safe_div_64(*v, s);
    }
}

/// `is_topk_nonzero`: non-zero entries, minus the `n - k` smallest under a stable ascending sort
/// (so among equal values the lower index loses its place first).
pub(crate) fn is_topk_nonzero(v: &[I32F32], k: usize) -> Vec<bool> {
    let n = v.len();
    let mut result: Vec<bool> = v.iter().map(|x| *x != ZERO).collect();
    if n < k {
        return result;
    }
    let mut idxs: Vec<usize> = (0..n).collect();
    idxs.sort_by_key(|&i| v.get(i).copied().unwrap_or(ZERO));
    for &i in idxs.iter().take(n.saturating_sub(k)) {
        if let Some(cell) = result.get_mut(i) {
            *cell = false;
        }
    }
    result
}

#[cfg(test)]
/// `inplace_row_normalize_sparse`: rows with a positive (wrapping) sum are divided by it.
pub(crate) fn inplace_row_normalize_sparse(m: &mut [SparseRow]) {
    for row in m.iter_mut() {
        let s = row.iter().fold(ZERO, |acc, (_, v)| acc.wrapping_add(*v));
        if s > ZERO {
            let d = Divisor::new(s);
            for (_, v) in row.iter_mut() {
                *v = d.div(*v);
            }
        }
    }
}

#[cfg(test)]
/// `row_sum_sparse`.
pub(crate) fn row_sum_sparse(m: &[SparseRow]) -> Vec<I32F32> {
    m.iter()
        .map(|row| row.iter().fold(ZERO, |acc, (_, v)| acc.wrapping_add(*v)))
        .collect()
}

#[cfg(test)]
/// `inplace_col_normalize_sparse`: saturating column sums, then divide where the sum is non-zero.
pub(crate) fn inplace_col_normalize_sparse(m: &mut [SparseRow], columns: usize) {
    let mut col_sum = vec![ZERO; columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(s) = col_sum.get_mut(j as usize) {
                *s = s.saturating_add(v);
            }
        }
    }
    let divisors: Vec<Option<Divisor>> = col_sum
        .iter()
        .map(|&d| (d != ZERO).then(|| Divisor::new(d)))
        .collect();
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            if let Some(Some(d)) = divisors.get(*j as usize) {
                *v = d.div(*v);
            }
        }
    }
}

#[cfg(test)]
/// `inplace_col_max_upscale_sparse`: divide each entry by its column maximum (if non-zero).
pub(crate) fn inplace_col_max_upscale_sparse(m: &mut [SparseRow], columns: usize) {
    let mut col_max = vec![ZERO; columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(c) = col_max.get_mut(j as usize)
                && *c < v
            {
                *c = v;
            }
        }
    }
    let divisors: Vec<Option<Divisor>> = col_max
        .iter()
        .map(|&d| (d != ZERO).then(|| Divisor::new(d)))
        .collect();
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            if let Some(Some(d)) = divisors.get(*j as usize) {
                *v = d.div(*v);
            }
        }
    }
}

#[cfg(test)]
/// `matmul_sparse`: `r_j = Σ_i v_i · m_ij` with saturating adds in row order.
pub(crate) fn matmul_sparse(m: &[SparseRow], v: &[I32F32], columns: usize) -> Vec<I32F32> {
    let mut r = vec![ZERO; columns];
    for (row, &vi) in m.iter().zip(v) {
        for &(j, x) in row {
            if let Some(c) = r.get_mut(j as usize) {
                *c = c.saturating_add(vi.smul(x));
            }
        }
    }
    r
}

#[cfg(test)]
/// `matmul_transpose_sparse`: `r_i = Σ_j v_j · m_ij`.
pub(crate) fn matmul_transpose_sparse(m: &[SparseRow], v: &[I32F32]) -> Vec<I32F32> {
    m.iter()
        .map(|row| {
            row.iter().fold(ZERO, |acc, &(j, x)| {
                let vj = v.get(j as usize).copied().unwrap_or(ZERO);
                acc.saturating_add(vj.smul(x))
            })
        })
        .collect()
}

#[cfg(test)]
/// `col_clip_sparse`: `min(w_ij, c_j)`, dropping entries clipped to a zero consensus.
pub(crate) fn col_clip_sparse(m: &[SparseRow], c: &[I32F32]) -> Vec<SparseRow> {
    m.iter()
        .map(|row| {
            let mut out = Vec::with_capacity(row.len());
            for &(j, v) in row {
                let t = c.get(j as usize).copied().unwrap_or(ZERO);
                if t < v {
                    if ZERO < t {
                        out.push((j, t));
                    }
                } else {
                    out.push((j, v));
                }
            }
            out
        })
        .collect()
}

#[cfg(test)]
/// `row_hadamard_sparse`: scale row i by `v_i`.
pub(crate) fn row_hadamard_sparse(m: &[SparseRow], v: &[I32F32]) -> Vec<SparseRow> {
    m.iter()
        .zip(v)
        .map(|(row, &vi)| row.iter().map(|&(j, x)| (j, x.smul(vi))).collect())
        .collect()
}

#[cfg(test)]
/// `mat_vec_mul_sparse`: `m_ij · v_j`, dropping zero products.
pub(crate) fn mat_vec_mul_sparse(m: &[SparseRow], v: &[I32F32]) -> Vec<SparseRow> {
    m.iter()
        .map(|row| {
            let mut out = Vec::with_capacity(row.len());
            for &(j, x) in row {
                if let Some(&vj) = v.get(j as usize) {
                    let p = x.smul(vj);
                    if p != ZERO {
                        out.push((j, p));
                    }
                }
            }
            out
        })
        .collect()
}

/// `vec_mul`: element-wise product, 0 on overflow (`checked_mul().unwrap_or_default()`).
pub(crate) fn vec_mul(a: &[I32F32], b: &[I32F32]) -> Vec<I32F32> {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.checked_mul(*y).unwrap_or(ZERO))
        .collect()
}

/// Reusable dense scratch for the "densify a row, scan it in column order" helpers.
///
/// The chain allocates a zeroed row of n values per matrix row and scans all n columns; only
/// columns named in the inputs can be non-zero, so we record them, sort them, and reset only them.
pub(crate) struct Scratch {
    a: Vec<I32F32>,
    b: Vec<I32F32>,
    touched: Vec<u16>,
    mark: Vec<bool>,
}

impl Scratch {
    pub(crate) fn new(columns: usize) -> Self {
        Scratch {
            a: vec![ZERO; columns],
            b: vec![ZERO; columns],
            touched: Vec::new(),
            mark: vec![false; columns],
        }
    }

    #[inline]
    fn touch(&mut self, j: u16) -> bool {
        match self.mark.get_mut(j as usize) {
            Some(m) => {
                if !*m {
                    *m = true;
                    self.touched.push(j);
                }
                true
            }
            None => false,
        }
    }

    fn reset(&mut self) {
        for &j in &self.touched {
            let j = j as usize;
            if let Some(m) = self.mark.get_mut(j) {
                *m = false;
            }
            if let Some(a) = self.a.get_mut(j) {
                *a = ZERO;
            }
            if let Some(b) = self.b.get_mut(j) {
                *b = ZERO;
            }
        }
        self.touched.clear();
    }
}

/// `interpolate_sparse`: `a + ratio·(b − a)`, keeping positive results in column order.
/// Ratio 0 and 1 return the inputs unchanged, as on the chain.
pub(crate) fn interpolate_sparse(
    m1: &[SparseRow],
    m2: &[SparseRow],
    columns: usize,
    ratio: I32F32,
) -> Vec<SparseRow> {
    if ratio == ZERO {
        return m1.to_vec();
    }
    if ratio == ONE {
        return m2.to_vec();
    }
    if m1.len() != m2.len() {
        return m2.to_vec();
    }
    let mut s = Scratch::new(columns);
    let mut result = Vec::with_capacity(m1.len());
    for (r1, r2) in m1.iter().zip(m2) {
        // Dense rows are filled by assignment (last write wins), as on the chain.
        for &(j, v) in r1 {
            if s.touch(j)
                && let Some(c) = s.a.get_mut(j as usize)
            {
                *c = v;
            }
        }
        for &(j, v) in r2 {
            if s.touch(j)
                && let Some(c) = s.b.get_mut(j as usize)
            {
                *c = v;
            }
        }
        s.touched.sort_unstable();
        let mut out = Vec::with_capacity(s.touched.len());
        for &j in &s.touched {
            let v1 = s.a.get(j as usize).copied().unwrap_or(ZERO);
            let v2 = s.b.get(j as usize).copied().unwrap_or(ZERO);
            let x = v1.saturating_add(ratio.smul(v2.saturating_sub(v1)));
            if ZERO < x {
                out.push((j, x));
            }
        }
        s.reset();
        result.push(out);
    }
    result
}

/// One row of subtensor's `mat_ema_sparse`, `alpha·map_new(i, j, new_ij) + (1 − alpha)·map_old(j, old_ij)`
/// accumulated per column with positives kept in column order, into `out` (cleared first). The
/// maps let a column normalisation or row scaling be applied on the fly instead of materialising
/// normalised copies. Only columns below `n` exist (the chain assumes a square matrix). Rows that are strictly ascending are merged
/// in one pass (the same two saturating adds per column, in the same order); others go through
/// the scratch row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ema_row<FN, FO>(
    i: usize,
    new_row: &[(u16, I32F32)],
    old_row: &[(u16, I32F32)],
    alpha: I32F32,
    n: usize,
    map_new: &FN,
    map_old: &FO,
    s: &mut Scratch,
    out: &mut SparseRow,
) where
    FN: Fn(usize, u16, I32F32) -> I32F32,
    FO: Fn(u16, I32F32) -> I32F32,
{
    out.clear();
    let one_minus_alpha = ONE.saturating_sub(alpha);
    if new_row.is_empty() && old_row.is_empty() {
        return;
    }
    if strictly_ascending(new_row, n) && strictly_ascending(old_row, n) {
        let (mut a, mut b) = (0usize, 0usize);
        loop {
            let (j, v) = match (new_row.get(a), old_row.get(b)) {
                (Some(&(jn, vn)), Some(&(jo, vo))) if jn == jo => {
                    a += 1;
                    b += 1;
                    let x = alpha.smul(map_new(i, jn, vn));
                    (jn, x.saturating_add(one_minus_alpha.smul(map_old(jo, vo))))
                }
                (Some(&(jn, vn)), Some(&(jo, _))) if jn < jo => {
                    a += 1;
                    (jn, alpha.smul(map_new(i, jn, vn)))
                }
                (Some(_), Some(&(jo, vo))) | (None, Some(&(jo, vo))) => {
                    b += 1;
                    (jo, one_minus_alpha.smul(map_old(jo, vo)))
                }
                (Some(&(jn, vn)), None) => {
                    a += 1;
                    (jn, alpha.smul(map_new(i, jn, vn)))
                }
                (None, None) => break,
            };
            if v > ZERO {
                out.push((j, v));
            }
        }
    } else {
        for &(j, v) in new_row {
            if (j as usize) < n
                && s.touch(j)
                && let Some(c) = s.a.get_mut(j as usize)
            {
                *c = c.saturating_add(alpha.smul(map_new(i, j, v)));
            }
        }
        for &(j, v) in old_row {
            if (j as usize) < n
                && s.touch(j)
                && let Some(c) = s.a.get_mut(j as usize)
            {
                *c = c.saturating_add(one_minus_alpha.smul(map_old(j, v)));
            }
        }
        s.touched.sort_unstable();
        for &j in &s.touched {
            let v = s.a.get(j as usize).copied().unwrap_or(ZERO);
            if v > ZERO {
                out.push((j, v));
            }
        }
        s.reset();
    }
}

/// Column sums with saturating adds in row order (pass 1 of `inplace_col_normalize_sparse`).
pub(crate) fn col_sums(m: &[SparseRow], columns: usize) -> Vec<I32F32> {
    let mut sums = vec![ZERO; columns];
    for row in m {
        for &(j, v) in row {
            if let Some(s) = sums.get_mut(j as usize) {
                *s = s.saturating_add(v);
            }
        }
    }
    sums
}

/// One prepared divisor per column with a non-zero sum (or maximum).
pub(crate) fn col_divisors(sums: &[I32F32]) -> Vec<Divisor> {
    sums.iter().map(|&d| Divisor::new(d)).collect()
}

/// Pass 2 of a column normalisation for one entry: divided if its column has a divisor.
#[inline]
pub(crate) fn col_norm(d: &[Divisor], j: u16, v: I32F32) -> I32F32 {
    match d.get(j as usize) {
        Some(d) => d.div(v),
        None => v,
    }
}

/// `exp_safe`: exp with the input clamped to [−20, 20]; 0 / max on an internal overflow.
pub(crate) fn exp_safe(input: I32F32) -> I32F32 {
    let lo = I32F32::from_bits(-20_i64 << 32);
    let hi = I32F32::from_bits(20_i64 << 32);
    let x = if input < lo {
        lo
    } else if hi < input {
        hi
    } else {
        input
    };
    match exp::<I32F32, I32F32>(x) {
        Ok(v) => v,
        Err(()) => {
            if x <= ZERO {
                ZERO
            } else {
                I32F32::max_value()
            }
        }
    }
}

/// `clamp_value`: `min(high)` then `max(low)` (low wins if the bounds cross).
#[inline]
pub(crate) fn clamp_value(v: I32F32, low: I32F32, high: I32F32) -> I32F32 {
    v.min(high).max(low)
}

/// Liquid-alpha parameters, already converted to fixed point.
#[derive(Clone, Copy)]
pub(crate) struct LiquidAlpha {
    pub(crate) low: I32F32,
    pub(crate) high: I32F32,
    pub(crate) steepness: I32F32,
}

impl LiquidAlpha {
    /// `liquid_alpha_sigmoid` for one (validator, miner) edge.
    pub(crate) fn alpha(&self, consensus: I32F32, weight: I32F32, bond: I32F32) -> I32F32 {
        let diff_buy = clamp_value(weight.saturating_sub(consensus), ZERO, ONE);
        let diff_sell = clamp_value(bond.saturating_sub(weight), ZERO, ONE);
        let d = if weight >= bond { diff_buy } else { diff_sell };
        let half = I32F32::from_bits(1 << 31);
        let minus_100 = I32F32::from_bits(-100_i64 << 32);
        let e = exp_safe(
            self.steepness
                .saturating_div(minus_100)
                .smul(d.saturating_sub(half)),
        );
        // Denominator is >= 1 (exp_safe is never negative), so saturating_div cannot divide by 0.
        let sigmoid = ONE.saturating_div(ONE.saturating_add(e));
        let a = self
            .low
            .saturating_add(sigmoid.smul(self.high.saturating_sub(self.low)));
        clamp_value(a, self.low, self.high)
    }
}

/// Liquid-alpha EMA of one bonds row: `liquid_alpha_matrix_sparse` + `mat_ema_alpha_sparse`.
///
/// The chain builds a dense n-wide alpha row by walking `weights` and `bonds` with peekable
/// iterators over ascending columns, then reads alphas only at the columns of the new row. Walking
/// only those columns in ascending order leaves the iterators in the same positions (advancing
/// "while column < j" composes), so the alphas are identical, including for unsorted rows.
pub(crate) fn ema_alpha_row(
    new_row: &[(u16, I32F32)],
    old_row: &[(u16, I32F32)],
    consensus: &[I32F32],
    la: &LiquidAlpha,
    s: &mut Scratch,
) -> SparseRow {
    if new_row.is_empty() {
        return Vec::new();
    }
    let n = consensus.len();
    // Columns that need an alpha: those of the new row that exist in the alpha row.
    for &(j, _) in new_row {
        if (j as usize) < n {
            s.touch(j);
        }
    }
    s.touched.sort_unstable();
    let mut wi = 0usize;
    let mut bi = 0usize;
    for &j in &s.touched {
        while new_row.get(wi).is_some_and(|&(c, _)| c < j) {
            wi += 1;
        }
        let w = match new_row.get(wi) {
            Some(&(c, v)) if c == j => v,
            _ => ZERO,
        };
        while old_row.get(bi).is_some_and(|&(c, _)| c < j) {
            bi += 1;
        }
        let b = match old_row.get(bi) {
            Some(&(c, v)) if c == j => v,
            _ => ZERO,
        };
        let c = consensus.get(j as usize).copied().unwrap_or(ZERO);
        if let Some(cell) = s.a.get_mut(j as usize) {
            *cell = la.alpha(c, w, b);
        }
    }
    // (1 − alpha_j)·old_ij, by assignment; only columns of the new row are ever read back.
    for &(j, v) in old_row {
        let ju = j as usize;
        if s.mark.get(ju).copied().unwrap_or(false) {
            let a = s.a.get(ju).copied().unwrap_or(ZERO);
            if let Some(cell) = s.b.get_mut(ju) {
                *cell = ONE.saturating_sub(a).smul(v);
            }
        }
    }
    let mut out = Vec::with_capacity(new_row.len());
    for &(j, v) in new_row {
        let ju = j as usize;
        if ju < n {
            let a = s.a.get(ju).copied().unwrap_or(ZERO);
            let decayed = s.b.get(ju).copied().unwrap_or(ZERO);
            let inc = a.smul(v).max(ZERO);
            let x = decayed.saturating_add(inc).min(ONE);
            if x > ZERO {
                out.push((j, x));
            }
        }
    }
    s.reset();
    out
}

/// Reusable buffers for the weighted-median quickselect.
pub(crate) struct MedianScratch {
    current: Vec<u32>,
    lower: Vec<u32>,
    upper: Vec<u32>,
}

impl MedianScratch {
    pub(crate) fn new(k: usize) -> Self {
        MedianScratch {
            current: Vec::with_capacity(k),
            lower: vec![0; k],
            upper: vec![0; k],
        }
    }
}

/// `weighted_median` over all indices `0..stake.len()`: the chain's deterministic quickselect
/// (pivot at the middle of the current index list, strict lower / upper partitions, each kept in
/// list order). The partition loop is written without data-dependent branches; adding a zero
/// stake with `saturating_add` is the identity, so the sums are the chain's.
pub(crate) fn weighted_median(
    stake: &[I32F32],
    score: &[I32F32],
    minority: I32F32,
    mut lo: I32F32,
    mut hi: I32F32,
    ms: &mut MedianScratch,
) -> I32F32 {
    let k = stake.len();
    if k != score.len() || k > u32::MAX as usize {
        return ZERO;
    }
    ms.current.clear();
    ms.current.extend(0..k as u32);
    if ms.lower.len() < k {
        ms.lower.resize(k, 0);
        ms.upper.resize(k, 0);
    }
    let mut iterations = 0usize;
    loop {
        let n = ms.current.len();
        if n == 0 {
            return ZERO;
        }
        if n == 1 {
            return ms
                .current
                .first()
                .and_then(|&i| score.get(i as usize))
                .copied()
                .unwrap_or(ZERO);
        }
        let pivot = ms
            .current
            .get(n / 2)
            .and_then(|&i| score.get(i as usize))
            .copied()
            .unwrap_or(ZERO);
        let mut lo_stake = ZERO;
        let mut hi_stake = ZERO;
        let (mut nl, mut nu) = (0usize, 0usize);
        for &i in &ms.current {
            let x = score.get(i as usize).copied().unwrap_or(ZERO);
            let st = stake.get(i as usize).copied().unwrap_or(ZERO);
            let is_lo = x < pivot;
            let is_hi = x > pivot;
            if let Some(slot) = ms.lower.get_mut(nl) {
                *slot = i;
            }
            if let Some(slot) = ms.upper.get_mut(nu) {
                *slot = i;
            }
            nl += usize::from(is_lo);
            nu += usize::from(is_hi);
            lo_stake = lo_stake.saturating_add(if is_lo { st } else { ZERO });
            hi_stake = hi_stake.saturating_add(if is_hi { st } else { ZERO });
        }
        if minority < lo.saturating_add(lo_stake) && nl > 0 {
            ms.current.clear();
            ms.current
                .extend_from_slice(ms.lower.get(..nl).unwrap_or(&[]));
            hi = lo.saturating_add(lo_stake);
        } else if hi.saturating_sub(hi_stake) <= minority && nu > 0 {
            ms.current.clear();
            ms.current
                .extend_from_slice(ms.upper.get(..nu).unwrap_or(&[]));
            lo = hi.saturating_sub(hi_stake);
        } else {
            return pivot;
        }
        iterations += 1;
        if iterations > k {
            return ZERO;
        }
    }
}

/// True if a row's columns are strictly ascending and all below `columns` (the usual case: the
/// chain stores rows in uid order). Such rows can be merged column by column.
pub(crate) fn strictly_ascending(row: &[(u16, I32F32)], columns: usize) -> bool {
    row.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0))
        && row.last().is_none_or(|&(j, _)| (j as usize) < columns)
}

/// `weighted_median_col_sparse`: per column, the stake-weighted median over rows with positive
/// active stake (those rows' stake re-normalised), at majority `kappa`.
pub(crate) fn weighted_median_col_sparse(
    stake: &[I32F32],
    score: &[SparseRow],
    columns: usize,
    majority: I32F32,
) -> Vec<I32F32> {
    median_cols(stake, score, columns, majority, true)
}

/// [`weighted_median_col_sparse`] always through the column buckets (tests compare both paths).
#[cfg(test)]
pub(crate) fn weighted_median_col_sparse_bucketed(
    stake: &[I32F32],
    score: &[SparseRow],
    columns: usize,
    majority: I32F32,
) -> Vec<I32F32> {
    median_cols(stake, score, columns, majority, false)
}

fn median_cols(
    stake: &[I32F32],
    score: &[SparseRow],
    columns: usize,
    majority: I32F32,
    allow_merge: bool,
) -> Vec<I32F32> {
    let mut use_stake: Vec<I32F32> = stake.iter().copied().filter(|&s| s > ZERO).collect();
    inplace_normalize(&mut use_stake);
    let stake_sum = wrapping_sum(use_stake.iter());
    let minority = stake_sum.saturating_sub(majority);
    let k = use_stake.len();

    let mut median = vec![ZERO; columns];
    let mut col = vec![ZERO; k];
    let mut ms = MedianScratch::new(k);

    // The chain fills a dense columns × k score matrix. When every row is strictly ascending we
    // walk the rows with one cursor each, column by column, which reads memory sequentially.
    let rows: Vec<&SparseRow> = stake
        .iter()
        .zip(score)
        .filter(|(s, _)| **s > ZERO)
        .map(|(_, r)| r)
        .collect();
    if allow_merge && rows.iter().all(|r| strictly_ascending(r, columns)) {
        let mut cursor = vec![0usize; rows.len()];
        for (c, m) in median.iter_mut().enumerate() {
            let mut any = false;
            for ((row, cur), cell) in rows.iter().zip(cursor.iter_mut()).zip(col.iter_mut()) {
                match row.get(*cur) {
                    Some(&(j, v)) if j as usize == c => {
                        *cell = v;
                        *cur += 1;
                        any = true;
                    }
                    _ => *cell = ZERO,
                }
            }
            // A column nobody scored is all zeros, whose median is 0.
            if any {
                *m = weighted_median(&use_stake, &col, minority, ZERO, stake_sum, &mut ms);
            }
        }
        return median;
    }

    // Otherwise bucket the entries by column (a counting sort keeps row order, so "last write
    // wins" for repeated columns is preserved) and densify one column at a time.
    let mut counts = vec![0usize; columns + 1];
    for (&s, row) in stake.iter().zip(score) {
        if s > ZERO {
            for &(c, _) in row {
                if (c as usize) < columns
                    && let Some(x) = counts.get_mut(c as usize + 1)
                {
                    *x += 1;
                }
            }
        }
    }
    for c in 0..columns {
        let prev = counts.get(c).copied().unwrap_or(0);
        if let Some(x) = counts.get_mut(c + 1) {
            *x += prev;
        }
    }
    let total = counts.get(columns).copied().unwrap_or(0);
    let mut fill = counts.clone();
    let mut entries: Vec<(u32, I32F32)> = vec![(0, ZERO); total];
    let mut kk = 0usize;
    for (&s, row) in stake.iter().zip(score) {
        if s > ZERO {
            for &(c, v) in row {
                let cu = c as usize;
                if cu < columns
                    && let Some(pos) = fill.get_mut(cu)
                {
                    if let Some(e) = entries.get_mut(*pos) {
                        *e = (kk as u32, v);
                    }
                    *pos += 1;
                }
            }
            kk += 1;
        }
    }

    for (c, m) in median.iter_mut().enumerate() {
        let start = counts.get(c).copied().unwrap_or(0);
        let end = counts.get(c + 1).copied().unwrap_or(0);
        let bucket = entries.get(start..end).unwrap_or(&[]);
        if bucket.is_empty() {
            continue;
        }
        for &(r, v) in bucket {
            if let Some(cell) = col.get_mut(r as usize) {
                *cell = v;
            }
        }
        *m = weighted_median(&use_stake, &col, minority, ZERO, stake_sum, &mut ms);
        for &(r, _) in bucket {
            if let Some(cell) = col.get_mut(r as usize) {
                *cell = ZERO;
            }
        }
    }
    median
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(x: i64, y: i64) {
        let (x, y) = (I32F32::from_bits(x), I32F32::from_bits(y));
        // A zero divisor is the identity by design (callers skip zero sums, as the chain does).
        let expect = if y == ZERO { x } else { safe_div(x, y) };
        assert_eq!(Divisor::new(y).div(x), expect, "{x:?} / {y:?}");
    }

    #[test]
    fn smul_edges() {
        let edges = [
            0,
            1,
            -1,
            1 << 31,
            1 << 32,
            -(1 << 32),
            1 << 47,
            1 << 48,
            -(1 << 48),
            (1 << 48) - 1,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
            3 << 40,
            -(3 << 40),
        ];
        for &a in &edges {
            for &b in &edges {
                let (x, y) = (I32F32::from_bits(a), I32F32::from_bits(b));
                assert_eq!(x.smul(y), x.saturating_mul(y), "{a} * {b}");
            }
        }
    }

    #[test]
    fn divisor_edges() {
        let edges = [
            0,
            1,
            2,
            3,
            7,
            0xFFFF,
            1 << 31,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            65535 << 32,
            3 << 32,
            i64::MAX,
            i64::MAX - 1,
            -1,
            -(1 << 32),
            i64::MIN,
            i64::MAX - (1 << 32) + 1,
            123_456_789 << 32,
        ];
        for &x in &edges {
            for &y in &edges {
                check(x, y);
            }
        }
    }

    proptest! {
        #[test]
        fn smul_matches_saturating_mul(a in any::<i64>(), b in any::<i64>(), s in 0u32..64) {
            let (x, y) = (I32F32::from_bits(a), I32F32::from_bits(b));
            prop_assert_eq!(x.smul(y), x.saturating_mul(y));
            let (x, y) = (I32F32::from_bits(a >> s), I32F32::from_bits(b >> (63 - s)));
            prop_assert_eq!(x.smul(y), x.saturating_mul(y));
        }

        #[test]
        fn divisor_matches_checked_div(x in any::<i64>(), y in any::<i64>(),
                                       small in 0i64..(1 << 32), int_x in 0i64..(1 << 20),
                                       int_y in 1i64..(1 << 31)) {
            check(x, y);
            check(small, y);
            check(small, y.abs() >> (y as u32 % 40));
            check(int_x << 32, int_y << 32);
            check(small, int_y << 32);
        }
    }
}
