//! The dense fast path: the same epoch as the sparse path in `epoch.rs`, bit for bit, for the
//! common large-subnet shape where every permitted validator weights most uids.
//!
//! # When it runs
//! Only when [`eligible`] holds: no trace requested, bonds penalty 1 (the default), no liquid
//! alpha under Yuma 3, `bonds_moving_average <= 1_000_000` (so the EMA alpha is in `[0, 1]`),
//! n < 32768, no bonds on rows without a (stored) permit, and at least half of the permitted
//! rows × n cells present; and [`core()`] additionally finds every permitted row's weights and
//! bonds stored in strictly ascending uid order (else it gives up with `None`). Everything else
//! takes the sparse path.
//!
//! # Why it is the same epoch
//! * **Absent = zero.** Outside liquid alpha no step distinguishes a missing entry from an entry
//!   of value 0: the median densifies with zeros, clipping `min(0, c) = 0`, and every product and
//!   saturating add with 0 is the identity; the EMA keeps only positive results, exactly the
//!   entries the sparse merge would keep, and in ascending column order.
//! * **Ranges, hence order.** Normalised weights, consensus, clipped weights, active stake and
//!   the EMA alpha lie in `[0, 1]`; every row or column sum of them is bounded (by 1, or by
//!   n < 32768), and the integer sums of u16 weights and bonds stay below `2³¹`. So no sum
//!   saturates or wraps: each is the exact integer sum, whatever the loop order, and the
//!   fixed-point operations reduce to the integer kernels below (`umul`, `UnitDiv`, `IntDiv`,
//!   `to_u16_unit`, `u16_ratio`), each tested against `substrate-fixed` over its whole domain.
//! * **The median.** With exact stake sums, the chain's quickselect returns the smallest value
//!   `p` with `S(≤ p) > minority` (the minimum if `minority < 0`, the maximum if no such `p`):
//!   that value does not depend on pivots or on the order of the column, so [`tile_medians`]
//!   (a stake histogram over each column's top bits, then [`weighted_quantile`] inside the one
//!   bucket where the cumulative stake crosses `minority`) finds the same one. Property tests
//!   compare both with the chain's quickselect, ties and zero stakes included.
//! * **Column maximum before normalising.** The original-Yuma bonds are column-max-upscaled after
//!   column normalisation; normalising `x ↦ ⌊x·2³²/Σ⌋` is monotone on `[0, Σ]`, so the maximum of
//!   the normalised column is the normalised maximum, taken in the EMA pass.
//!
//! # Layout
//! The masked weights and old bonds are densified as raw u16, stored tile-major — the
//! [`BLOCK`] columns of a tile for every row, row after row, tiles [`PAD`] cells apart — so each
//! tile pass streams contiguous memory. The work runs tile by tile: the tile's weights are
//! row-normalised into one tile-sized buffer of raw `I32F32` bits, which is reused in place from
//! normalised weights to `A ⊙ Wc` to EMA bonds while it stays in cache (median, ranks and
//! trust, EMA, stored bonds). The column-normalised bonds go to a u32 matrix in the same layout
//! (a cell of exactly 1 is noted apart), which the dividends, needing the normalised incentive
//! of every column, read in a last pass in memory order. So the build writes 4 bytes a cell and
//! the tile passes work in cache. All buffers live in an [`EpochScratch`] the caller may reuse
//! between epochs.

use substrate_fixed::types::{I32F32, I64F64};

use crate::math::{self, ONE, ZERO, u16_proportion};
use crate::types::EpochInput;

/// Columns per tile: 64 cells (512 bytes) of each row, so a tile's rows cost few TLB misses.
const BLOCK: usize = 64;

/// Cells between tiles, so that one row's share of successive tiles does not fall at
/// addresses a multiple of 4 KiB apart (which share a cache set).
const PAD: usize = 64;

/// Reusable buffers for [`crate::run_epoch_with_scratch`]: pass the same scratch to successive
/// epochs to avoid re-allocating (and re-faulting) the multi-megabyte matrix each time.
/// It holds no state that affects results.
#[derive(Default)]
pub struct EpochScratch {
    /// The tile being worked on (permitted rows × `BLOCK` columns, row after row), raw
    /// `I32F32` bits (all in `[0, 2³²]`): it stays in cache from normalisation to new bonds.
    work: Vec<u64>,
    /// Column-normalised new bonds of every tile (tile-major, see [`core`]) for the dividends,
    /// as u32: a cell of exactly 2³² (its column's only bond) is stored as `u32::MAX` and
    /// corrected for separately.
    bhat: Vec<u32>,
    /// Neuron → dense row, `u32::MAX` for rows without a permit.
    row_of: Vec<u32>,
    /// Weights, dense tile-major like `bhat` (raw u16, masked); each tile is normalised into
    /// `work` when its turn comes.
    w16: Vec<u16>,
    /// Old bonds, dense tile-major like `bhat` (raw u16, masked).
    old: Vec<u16>,
    /// One row of weights, then of old bonds, before it is scattered into the tiles.
    row: Vec<u16>,
    /// `BLOCK` columns × median rows, transposed (only for kappa 0 or above the active stake).
    block: Vec<u64>,
    /// Median buffers.
    sel: SelectScratch,
    /// Per-tile histogram buffers.
    tile: TileScratch,
}

impl std::fmt::Debug for EpochScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochScratch")
            .field("matrix_cells", &self.bhat.capacity())
            .finish()
    }
}

impl EpochScratch {
    /// An empty scratch; buffers grow on first use.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What the dense core computes; the caller does the emission step as for the sparse path.
pub(crate) struct DenseOut {
    pub(crate) consensus: Vec<I32F32>,
    pub(crate) validator_trust: Vec<I32F32>,
    pub(crate) incentive: Vec<I32F32>,
    pub(crate) dividends: Vec<I32F32>,
    pub(crate) bonds: Vec<Vec<(u16, u16)>>,
}

/// Rows must also be stored in strictly ascending uid order; [`core`] checks that while reading
/// them (and gives up, for the sparse path, if not).
#[cfg(test)]
pub(crate) fn strictly_ascending_u16(row: &[(u16, u16)]) -> bool {
    row.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0))
}

/// Whether the dense path computes exactly what the sparse path would (see the module docs).
///
/// `n < 32768` bounds every integer sum of u16 weights or bonds (a row, or a column over at most
/// n rows) below `2³¹`, so none wraps or saturates and each row or column sum is an integer.
pub(crate) fn eligible(input: &EpochInput, permits: &[bool]) -> bool {
    let n = input.neurons.len();
    if n == 0
        || n >= 32_768
        || u16_proportion(input.bonds_penalty) != ONE
        || (input.yuma3 && input.liquid_alpha)
        || input.bonds_moving_average > 1_000_000
    {
        return false;
    }
    let mut rows = 0usize;
    let mut cells = 0usize;
    for (nr, &p) in input.neurons.iter().zip(permits) {
        if p {
            rows += 1;
            cells += nr.weights.len();
        } else if !nr.bonds.is_empty() {
            return false;
        }
    }
    rows > 0 && cells.saturating_mul(2) >= rows.saturating_mul(n)
}

/// A stored bonds row: `(uid, u16 bond)`.
type BondsRow = Vec<(u16, u16)>;

/// Epoch-wide values the dense core reads.
pub(crate) struct Ctx<'a> {
    pub(crate) input: &'a EpochInput,
    pub(crate) owner: Option<usize>,
    pub(crate) permits: &'a [bool],
    pub(crate) new_permits: &'a [bool],
    pub(crate) active_stake: &'a [I32F32],
    pub(crate) registered: &'a [u64],
    pub(crate) last_tempo: u64,
}

// ---- Exact kernels on raw bits in the ranges the dense path proves (each has a proptest) ----

/// `x.smul(y)` for `x, y ∈ [0, 2³²]`: the product is below `2⁹⁵`, so it never saturates.
#[inline]
fn umul(x: u64, y: u64) -> u64 {
    ((u128::from(x) * u128::from(y)) >> 32) as u64
}

/// `fixed_proportion_to_u16` for `x ∈ [0, 2³²]`: `⌊x·65535 / 2³²⌋ ≤ 65535`.
#[inline]
fn to_u16_unit(x: u64) -> u16 {
    ((x * 65_535) >> 32) as u16
}

/// `⌊a·2³² / y⌋` for `a < 2³¹` and `y ≥ 1` by one multiply and one shift.
///
/// With `ℓ = ⌈log₂ y⌉` and `m = ⌈2^(63+ℓ) / y⌉ < 2⁶⁴`, write `m·y = 2^(63+ℓ) + e`, `0 ≤ e < y`:
/// then `a·m / 2^(31+ℓ) = a·2³²/y + a·e / (y·2^(31+ℓ))`, and `a·e < 2³¹·2^ℓ` keeps the error
/// term below `1/y`, too small to reach the next integer (Granlund–Montgomery). `a·2³³` fits in
/// 64 bits, so the product's high word is `⌊a·m / 2³¹⌋`. This replaces the general
/// [`MagicU64`] (whose 65-bit multiplier needs an add-and-shift fixup) where numerators allow.
#[derive(Clone, Copy)]
struct Recip31 {
    m: u64,
    l: u32,
}

impl Recip31 {
    /// `y` must be in `[1, 2⁶³]` (so `ℓ ≤ 63`; the dense path's divisors stay below `2⁴⁸`).
    fn new(y: u64) -> Self {
        let l = 64 - (y - 1).leading_zeros();
        let y = u128::from(y);
        Recip31 {
            m: ((1u128 << (63 + l)).div_ceil(y)) as u64,
            l,
        }
    }

    #[inline]
    fn div(self, a: u64) -> u64 {
        (((u128::from(a << 33) * u128::from(self.m)) >> 64) as u64) >> self.l
    }
}

/// `Divisor::div` (i.e. `safe_div`) by a fixed `y ≥ 0` for numerators `a ∈ [0, y]` (a zero
/// divisor only ever sees zero numerators, which both leave at 0). The quotient is at most 2³².
#[derive(Clone, Copy)]
struct UnitDiv {
    recip: Recip31,
    y: u64,
}

impl UnitDiv {
    fn new(y: u64) -> Self {
        let y = y.max(1);
        UnitDiv {
            recip: Recip31::new(y),
            y,
        }
    }

    #[inline]
    fn div(self, a: u64) -> u64 {
        if a < 1 << 31 {
            self.recip.div(a)
        } else {
            unit_div_wide(a, self.y)
        }
    }
}

/// [`UnitDiv::div`] for numerators of one half and more: in a column only the cells of a
/// validator holding over half of it (at most one row), so a plain division costs little.
#[cold]
#[inline(never)]
fn unit_div_wide(a: u64, y: u64) -> u64 {
    ((u128::from(a) << 32) / u128::from(y)) as u64
}

/// `Divisor::div` of an integer `b ∈ [0, y]` by an integer `y < 2³¹` (row or column sums of u16
/// weights and bonds, or 65535): `⌊b·2³² / y⌋`, the divisor's exact integer path. As `b ≤ y <
/// 2³¹`, [`Recip31`] always applies.
#[derive(Clone, Copy)]
struct IntDiv(Recip31);

impl IntDiv {
    fn new(y: u64) -> Self {
        IntDiv(Recip31::new(y.max(1)))
    }

    #[inline]
    fn div(self, b: u64) -> u64 {
        self.0.div(b)
    }
}

/// `u16_proportion`-style `b / 65535` of a stored Yuma 3 bond (`Divisor::div` by 65535 of an
/// integer): since `2³² = 65535·65537 + 1`, `⌊b·2³²/65535⌋ = 65537·b + ⌊b/65535⌋`.
#[inline]
fn u16_ratio(b: u16) -> u64 {
    let b = u64::from(b);
    b * 65_537 + u64::from(b == 65_535)
}

fn bits(v: &[I32F32]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits().max(0) as u64).collect()
}

fn fixed(v: &[u64]) -> Vec<I32F32> {
    v.iter().map(|&x| I32F32::from_bits(x as i64)).collect()
}

/// Weights → consensus → clip, trust, incentive → bonds EMA → dividends, on the dense matrix.
///
/// Value ranges (raw bits): normalised weights, consensus, clipped weights, active stake, the
/// EMA alpha and `1 − alpha` lie in `[0, 2³²]`; every column sum below is a sum of such terms
/// bounded by `2³²` (ranks, Σ_i A_i ≤ 1) or by `n·2³² < 2⁴⁷` (EMA columns), so none saturates
/// and every entry is at most its column's sum — the domains of [`umul`] and [`UnitDiv`]. With
/// no saturation and no wrapping every sum is exact, so the order of the loops is free: the
/// matrix is walked in tiles of `BLOCK` columns × all rows, each tile finished (median, ranks,
/// EMA) while it is in cache.
///
/// Returns `None` (the caller then takes the sparse path) if a permitted row's weights or bonds
/// are not stored in strictly ascending uid order.
pub(crate) fn core(cx: &Ctx<'_>, sc: &mut EpochScratch) -> Option<DenseOut> {
    let input = cx.input;
    let neurons = &input.neurons;
    let n = neurons.len();
    let last_tempo = cx.last_tempo;
    let kept: Vec<bool> = cx.registered.iter().map(|&reg| last_tempo > reg).collect();
    // Every column registered before this block passes a row's `reg_j < lim` test; most rows
    // (validators that set weights recently) qualify, and skip the per-entry test.
    let newest_reg = cx.registered.iter().copied().max().unwrap_or(0);
    let all_kept = newest_reg < last_tempo;

    // == Weights (masked, row-normalised) and old bonds (masked), both dense, tile-major ==
    sc.row_of.clear();
    sc.row_of.resize(n, u32::MAX);
    let rows_upper = cx.permits.iter().filter(|&&p| p).count();
    let tiles = n.div_ceil(BLOCK);
    // Tile t holds columns t·BLOCK.. of every row, row after row: what the tile passes read is
    // contiguous, so it streams in (row-major, each row of a tile was a separate far-away line).
    let tile_len = rows_upper * BLOCK;
    let stride = tile_len + PAD;
    // Every cell a pass reads is written below (whole rows are scattered), so a reused scratch
    // of the right size needs no clearing: only the padding of a last, partial tile keeps old
    // values, and the passes never read it (the dividends multiply it by a zero incentive).
    sc.work.resize(tile_len, 0);
    for len in [sc.bhat.len(), sc.old.len(), sc.w16.len()] {
        if len != tiles * stride {
            sc.bhat.clear();
            sc.bhat.resize(tiles * stride, 0);
            sc.w16.clear();
            sc.w16.resize(tiles * stride, 0);
            sc.old.clear();
            sc.old.resize(tiles * stride, 0);
            break;
        }
    }
    let mut row_neuron: Vec<usize> = Vec::with_capacity(rows_upper);
    // Each row's normaliser (by its integer weight sum).
    let mut row_div: Vec<IntDiv> = Vec::with_capacity(rows_upper);
    // Bitwise OR of each column's raw weights: zero iff the column has no weight.
    let mut any_w = vec![0u16; n];
    for (i, nr) in neurons.iter().enumerate() {
        if !cx.permits.get(i).copied().unwrap_or(false) {
            continue;
        }
        if let Some(r) = sc.row_of.get_mut(i) {
            *r = row_neuron.len() as u32;
        }
        let r = row_neuron.len();
        row_neuron.push(i);
        // The chain drops (i, j) if `last_update_i <= reg_j` or `commit_i < reg_j`, i.e. keeps
        // it iff `reg_j < lim` below; and the diagonal unless i is the owner.
        let lim = match nr.commit_block {
            Some(c) if c < u64::MAX => nr.last_update.min(c + 1),
            _ => nr.last_update,
        };
        let own = Some(i) == cx.owner;
        // Integer row sum: at most n·65535 < 2³¹ (n < 32768), so the chain's wrapping sum of
        // the I32F32 weights is this integer and never wraps.
        let mut sum = 0u64;
        sc.row.clear();
        sc.row.resize(n, 0);
        let row = &mut sc.row;
        let mut next = 0usize;
        if newest_reg < lim {
            for &(j, w) in &nr.weights {
                let ju = usize::from(j);
                if ju < next {
                    return None;
                }
                next = ju + 1;
                if let Some(cell) = row.get_mut(ju) {
                    sum += u64::from(w);
                    *cell = w;
                }
            }
            if !own && let Some(cell) = row.get_mut(i) {
                sum -= u64::from(*cell);
                *cell = 0;
            }
        } else {
            for &(j, w) in &nr.weights {
                let ju = usize::from(j);
                if ju < next {
                    return None;
                }
                next = ju + 1;
                if let (Some(&reg), Some(cell)) = (cx.registered.get(ju), row.get_mut(ju)) {
                    let v = if reg < lim && (ju != i || own) { w } else { 0 };
                    sum += u64::from(v);
                    *cell = v;
                }
            }
        }
        for (a, &v) in any_w.iter_mut().zip(row.iter()) {
            *a |= v;
        }
        row_div.push(IntDiv::new(sum));
        scatter(row, &mut sc.w16, r, stride);
        // Old bonds (their column sums are taken tile by tile).
        sc.row.clear();
        sc.row.resize(n, 0);
        let orow = &mut sc.row;
        let mut next = 0usize;
        for &(j, b) in &nr.bonds {
            let ju = usize::from(j);
            if ju < next {
                return None;
            }
            next = ju + 1;
            if (all_kept || kept.get(ju).copied().unwrap_or(false))
                && let Some(cell) = orow.get_mut(ju)
            {
                *cell = b;
            }
        }
        scatter(orow, &mut sc.old, r, stride);
    }
    let rows = row_neuron.len();
    let row_stake: Vec<u64> = row_neuron
        .iter()
        .map(|&i| {
            cx.active_stake
                .get(i)
                .map_or(0, |s| s.to_bits().max(0) as u64)
        })
        .collect();

    // Median rows: those with positive active stake (all permitted), stake re-normalised.
    let mut act_rows: Vec<usize> = Vec::new();
    let mut act_stake: Vec<I32F32> = Vec::new();
    for (i, &s) in cx.active_stake.iter().enumerate() {
        if s > ZERO
            && let Some(r) = dense_row(&sc.row_of, i)
        {
            act_rows.push(r);
            act_stake.push(s);
        }
    }
    let mut use_stake = act_stake.clone();
    math::inplace_normalize(&mut use_stake);
    let use_bits = bits(&use_stake);
    let stake_sum = math::wrapping_sum(use_stake.iter());
    let minority = stake_sum.saturating_sub(u16_proportion(input.kappa));
    let k = act_rows.len();
    // The histogram median needs a non-degenerate quantile (0 <= minority < total); kappa 0 or
    // above the active stake go through the general selection.
    let by_histogram = ZERO <= minority && minority < stake_sum;

    // EMA alpha: `1 − bma/10⁶` (Yuma 3 divides with `saturating_div`, the original with
    // `checked_div`; equal here as bma <= 1).
    let bma = I64F64::saturating_from_num(input.bonds_moving_average)
        .checked_div(I64F64::saturating_from_num(1_000_000_u32))
        .unwrap_or(I64F64::from_bits(0));
    let alpha_f = ONE.saturating_sub(I32F32::saturating_from_num(bma));
    let alpha = alpha_f.to_bits().max(0) as u64;
    let oma = ONE.saturating_sub(alpha_f).to_bits().max(0) as u64;
    let yuma3 = input.yuma3;

    let mut consensus = vec![0u64; n];
    let mut ranks = vec![0u64; n];
    let mut trust = vec![0u64; rows];
    // Stored bonds, built tile by tile for rows that keep a permit.
    let mut bonds_rows: Vec<Option<BondsRow>> = row_neuron
        .iter()
        .map(|&i| {
            cx.new_permits
                .get(i)
                .copied()
                .unwrap_or(false)
                .then(|| Vec::with_capacity(n))
        })
        .collect();
    sc.block.clear();
    sc.block.resize(BLOCK * k, 0);
    // (column, row) of the new bonds equal to 2³² (the column's only bond).
    let mut full: Vec<(usize, usize)> = Vec::new();
    let mut j0 = 0usize;
    while j0 < n {
        let bw = BLOCK.min(n - j0);
        let t0 = j0 / BLOCK * stride;
        // Old bonds' column sums (original Yuma): at most n·65535 < 2³¹, integers.
        let mut bs_t = [0u64; BLOCK];
        for r in 0..rows {
            let olds = sc
                .old
                .get(t0 + r * BLOCK..t0 + r * BLOCK + bw)
                .unwrap_or(&[]);
            for (s, &o) in bs_t.iter_mut().zip(olds) {
                *s += u64::from(o);
            }
        }
        // A tile with no weight and no old bond anywhere (typically the validators' own
        // columns) has consensus, ranks, new bonds and dividend terms all 0: the values the
        // buffers already hold (the dividends multiply its stale `bhat` by a zero incentive).
        if any_w
            .get(j0..j0 + bw)
            .is_some_and(|c| c.iter().all(|&o| o == 0))
            && bs_t.iter().all(|&b| b == 0)
        {
            j0 += bw;
            continue;
        }
        // Normalise the tile's weights (row by row) into `work`; OR each column, whose highest
        // set bit bounds its values for the median.
        let mut or_t = [0u64; BLOCK];
        for (r, d) in row_div.iter().enumerate() {
            let src = sc
                .w16
                .get(t0 + r * BLOCK..t0 + r * BLOCK + bw)
                .unwrap_or(&[]);
            let dst = sc
                .work
                .get_mut(r * BLOCK..r * BLOCK + bw)
                .unwrap_or(&mut []);
            for ((x, &w), o) in dst.iter_mut().zip(src).zip(or_t.iter_mut()) {
                let v = d.div(u64::from(w));
                *o |= v;
                *x = v;
            }
        }
        // Consensus and ranks of the tile's columns.
        let mut c_t = [0u64; BLOCK];
        if by_histogram {
            tile_medians(
                &TileIn {
                    tile: &sc.work,
                    bw,
                    act_rows: &act_rows,
                    stake: &use_bits,
                    or_cols: or_t.get(..bw).unwrap_or(&[]),
                    target: minority.to_bits() as u64,
                },
                &mut sc.tile,
                &mut sc.sel,
                &mut c_t,
            );
        } else {
            for (t, &r) in act_rows.iter().enumerate() {
                let src = sc.work.get(r * BLOCK..r * BLOCK + bw).unwrap_or(&[]);
                for (b, &x) in src.iter().enumerate() {
                    if let Some(cell) = sc.block.get_mut(b * k + t) {
                        *cell = x;
                    }
                }
            }
            for (b, ct) in c_t.iter_mut().enumerate().take(bw) {
                let col = sc.block.get(b * k..(b + 1) * k).unwrap_or(&[]);
                *ct = column_quantile(
                    col,
                    &use_bits,
                    minority.to_bits(),
                    stake_sum.to_bits(),
                    &mut sc.sel,
                );
            }
        }
        // ranks_j = Σ_i A_i · min(W_ij, C_j) (rows outside the median set have zero active
        // stake and add nothing); the sum is at most Σ A_i ≤ 2³², no saturation. Yuma 3 sums
        // them in its EMA pass below; the original needs them first, as the bonds delta's
        // column sums (with bonds penalty 1 the delta is Wc ⊙ A).
        let mut rank_t = [0u64; BLOCK];
        let mut dd_t = [UnitDiv::new(0); BLOCK];
        let mut bd_t = [IntDiv::new(0); BLOCK];
        if !yuma3 {
            // Every row (rows outside the median set have stake 0 and add 0 to the ranks), so
            // this pass also sums the trust and leaves `A_i · Wc_ij` in place for the EMA.
            for (r, (&si, tr)) in row_stake.iter().zip(trust.iter_mut()).enumerate() {
                let cells = sc
                    .work
                    .get_mut(r * BLOCK..r * BLOCK + bw)
                    .unwrap_or(&mut []);
                let mut t = 0u64;
                for ((x, &c), rk) in cells.iter_mut().zip(&c_t).zip(rank_t.iter_mut()) {
                    let clipped = (*x).min(c);
                    t += clipped;
                    let p = umul(clipped, si);
                    *rk += p;
                    *x = p;
                }
                *tr += t;
            }
            for (b, (dd, bd)) in dd_t.iter_mut().zip(bd_t.iter_mut()).enumerate().take(bw) {
                *dd = UnitDiv::new(rank_t.get(b).copied().unwrap_or(0));
                *bd = IntDiv::new(bs_t.get(b).copied().unwrap_or(0));
            }
        }
        // Clip, trust and the bonds EMA of the tile, written over the weights.
        let mut es_t = [0u64; BLOCK];
        let mut cm_t = [0u64; BLOCK];
        for r in 0..rows {
            let cells = sc
                .work
                .get_mut(r * BLOCK..r * BLOCK + bw)
                .unwrap_or(&mut []);
            let olds = sc
                .old
                .get(t0 + r * BLOCK..t0 + r * BLOCK + bw)
                .unwrap_or(&[]);
            let si = row_stake.get(r).copied().unwrap_or(0);
            let mut tr = 0u64;
            let tile = cells
                .iter_mut()
                .zip(olds)
                .zip(c_t.iter().zip(es_t.iter_mut().zip(cm_t.iter_mut())));
            if yuma3 {
                // B' = α·Wc + (1 − α)·B, B = old u16 / 65535 (stored as is: no column max).
                for (((x, &o), (&c, (es, _))), rk) in tile.zip(rank_t.iter_mut()) {
                    let clipped = (*x).min(c);
                    tr += clipped;
                    *rk += umul(si, clipped);
                    let e = umul(alpha, clipped) + umul(oma, u16_ratio(o));
                    *x = e;
                    *es += e;
                }
            } else {
                // B' = α·colnorm(Wc ⊙ A) + (1 − α)·colnorm(B); the cells hold Wc ⊙ A already
                // (and the trust is summed) from the ranks pass.
                for (((x, &o), (_, (es, cm))), (dd, bd)) in tile.zip(dd_t.iter().zip(&bd_t)) {
                    let e = umul(alpha, dd.div(*x)) + umul(oma, bd.div(u64::from(o)));
                    *x = e;
                    *es += e;
                    *cm = (*cm).max(e);
                }
            }
            if let Some(t) = trust.get_mut(r) {
                *t += tr;
            }
        }
        for ((c, r), (&ct, &rt)) in consensus
            .iter_mut()
            .zip(ranks.iter_mut())
            .skip(j0)
            .take(bw)
            .zip(c_t.iter().zip(&rank_t))
        {
            (*c, *r) = (ct, rt);
        }
        // Column-normalise the tile's new bonds in place (for the dividends) and store them:
        // Yuma 3 keeps B' itself, the original the normalised column max-upscaled. Normalising
        // is monotone on [0, Σ], so the normalised column's maximum is the normalised maximum.
        let mut ed_t = [UnitDiv::new(0); BLOCK];
        let mut cd_t = [UnitDiv::new(0); BLOCK];
        for (((ed, cd), &es), &cm) in ed_t.iter_mut().zip(cd_t.iter_mut()).zip(&es_t).zip(&cm_t) {
            *ed = UnitDiv::new(es);
            *cd = UnitDiv::new(ed.div(cm));
        }
        let mut stored = [(0u16, 0u16); BLOCK];
        for (r, out) in bonds_rows.iter_mut().enumerate() {
            let cells = sc.work.get(r * BLOCK..r * BLOCK + bw).unwrap_or(&[]);
            let dst = sc
                .bhat
                .get_mut(t0 + r * BLOCK..t0 + r * BLOCK + bw)
                .unwrap_or(&mut []);
            let tile = cells.iter().zip(dst.iter_mut()).zip(ed_t.iter().zip(&cd_t));
            // The tile's stored bonds of the row: every visited slot is written, the count only
            // advances past non-zero bonds; then they are appended at once.
            let mut kept = 0usize;
            match out {
                Some(out) if yuma3 => {
                    for (j, ((&x, h), (ed, _))) in (j0..).zip(tile) {
                        if let Some(slot) = stored.get_mut(kept) {
                            *slot = (j as u16, to_u16_unit(x));
                        }
                        kept += usize::from(x > 0);
                        *h = narrow(ed.div(x), j, r, &mut full);
                    }
                    out.extend_from_slice(stored.get(..kept).unwrap_or(&[]));
                }
                Some(out) => {
                    for (j, ((&x, h), (ed, cd))) in (j0..).zip(tile) {
                        let v = ed.div(x);
                        if let Some(slot) = stored.get_mut(kept) {
                            *slot = (j as u16, to_u16_unit(cd.div(v)));
                        }
                        kept += usize::from(x > 0);
                        *h = narrow(v, j, r, &mut full);
                    }
                    out.extend_from_slice(stored.get(..kept).unwrap_or(&[]));
                }
                None => {
                    for (j, ((&x, h), (ed, _))) in (j0..).zip(tile) {
                        *h = narrow(ed.div(x), j, r, &mut full);
                    }
                }
            }
        }
        j0 += bw;
    }
    let mut incentive = fixed(&ranks);
    math::inplace_normalize(&mut incentive);
    let mut inc_bits = bits(&incentive);
    inc_bits.resize(tiles * BLOCK, 0);

    // == Dividends ==
    // Original: D_i = Σ_j I_j · B̂_ij; Yuma 3: Σ_j B̂_ij · I_j (times A_i below); both at most
    // Σ_j I_j ≤ 2³², exact, so they can be summed tile by tile (in memory order).
    let mut div_rows = vec![0u64; rows];
    for (tile, inc) in sc
        .bhat
        .chunks_exact(stride.max(1))
        .zip(inc_bits.chunks_exact(BLOCK))
    {
        for (cells, d) in tile.chunks_exact(BLOCK).zip(div_rows.iter_mut()) {
            *d += cells
                .iter()
                .zip(inc)
                .map(|(&v, &ij)| umul(ij, u64::from(v)))
                .sum::<u64>();
        }
    }
    // A 2³² stored as `u32::MAX` contributed `umul(I_j, 2³² − 1)` instead of `I_j`.
    for &(j, r) in &full {
        if let (Some(&ij), Some(d)) = (inc_bits.get(j), div_rows.get_mut(r)) {
            *d += ij - umul(ij, u64::from(u32::MAX));
        }
    }
    let mut validator_trust = vec![ZERO; n];
    let mut dividends = vec![ZERO; n];
    let mut bonds_out: Vec<Vec<(u16, u16)>> = vec![Vec::new(); n];
    for (((r, &i), out), &d) in row_neuron.iter().enumerate().zip(bonds_rows).zip(&div_rows) {
        if let (Some(t), Some(&tr)) = (validator_trust.get_mut(i), trust.get(r)) {
            *t = I32F32::from_bits(tr as i64);
        }
        if let Some(slot) = dividends.get_mut(i) {
            *slot = I32F32::from_bits(d as i64);
        }
        if let (Some(slot), Some(out)) = (bonds_out.get_mut(i), out) {
            *slot = out;
        }
    }
    if yuma3 {
        dividends = math::vec_mul(&dividends, cx.active_stake);
    }
    math::inplace_normalize(&mut dividends);

    Some(DenseOut {
        consensus: fixed(&consensus),
        validator_trust,
        incentive,
        dividends,
        bonds: bonds_out,
    })
}

/// A column-normalised bond as u32: 2³² (all of column `j`'s bonds, in row `r`) is stored as
/// `u32::MAX` and noted in `full` for the dividends' correction.
#[inline]
fn narrow(v: u64, j: usize, r: usize, full: &mut Vec<(usize, usize)>) -> u32 {
    match u32::try_from(v) {
        Ok(v) => v,
        Err(_) => {
            full.push((j, r));
            u32::MAX
        }
    }
}

/// Copies dense row `r` into the tile-major matrix `m` (tiles `stride` cells apart, each row's
/// share [`BLOCK`] cells wide).
fn scatter<T: Copy>(row: &[T], m: &mut [T], r: usize, stride: usize) {
    for (seg, tile) in row.chunks(BLOCK).zip(m.chunks_exact_mut(stride.max(1))) {
        if let Some(dst) = tile.get_mut(r * BLOCK..r * BLOCK + seg.len()) {
            dst.copy_from_slice(seg);
        }
    }
}

fn dense_row(row_of: &[u32], i: usize) -> Option<usize> {
    row_of
        .get(i)
        .copied()
        .filter(|&r| r != u32::MAX)
        .map(|r| r as usize)
}

/// Bits of a value that pick its histogram bucket.
const BUCKET_BITS: u32 = 6;
const BUCKETS: usize = 1 << BUCKET_BITS;

/// Histograms and bucket contents of one tile.
pub(crate) struct TileScratch {
    hist: [[u64; BUCKETS]; BLOCK],
    score: Vec<Vec<i64>>,
    stake: Vec<Vec<i64>>,
}

impl Default for TileScratch {
    fn default() -> Self {
        TileScratch {
            hist: [[0; BUCKETS]; BLOCK],
            score: vec![Vec::new(); BLOCK],
            stake: vec![Vec::new(); BLOCK],
        }
    }
}

/// One tile's view of the weights for [`tile_medians`].
struct TileIn<'a> {
    /// The tile: each row's `BLOCK` cells, row after row.
    tile: &'a [u64],
    bw: usize,
    /// Dense rows of the median set and their (re-normalised) stake.
    act_rows: &'a [usize],
    stake: &'a [u64],
    /// OR of each tile column over all rows (bounds every value).
    or_cols: &'a [u64],
    /// `minority`, known to be in `[0, Σ stake)`.
    target: u64,
}

/// The chain's weighted median of each column of a tile (see [`column_quantile`] for why the
/// histogram gives the same value), reading the rows in place instead of transposing them:
/// stake per bucket of each column's top `BUCKET_BITS` significant bits, then the bucket where
/// the cumulative stake first exceeds `minority`, then an exact selection inside it.
fn tile_medians(
    ti: &TileIn<'_>,
    ts: &mut TileScratch,
    sel: &mut SelectScratch,
    out: &mut [u64; BLOCK],
) {
    let mut shift = [0u32; BLOCK];
    for (s, &o) in shift.iter_mut().zip(ti.or_cols) {
        *s = (64 - o.leading_zeros()).saturating_sub(BUCKET_BITS);
    }
    for h in ts.hist.iter_mut() {
        h.fill(0);
    }
    let row = |r: usize| ti.tile.get(r * BLOCK..r * BLOCK + ti.bw).unwrap_or(&[]);
    for (&r, &s) in ti.act_rows.iter().zip(ti.stake) {
        for ((&x, &sh), h) in row(r).iter().zip(&shift).zip(ts.hist.iter_mut()) {
            if let Some(cell) = h.get_mut(((x >> sh) as usize) & (BUCKETS - 1)) {
                *cell += s;
            }
        }
    }
    let mut bucket = [u64::MAX; BLOCK];
    let mut below = [0u64; BLOCK];
    let mut inside = [0u64; BLOCK];
    for b in 0..ti.bw {
        let (Some(h), Some(bk), Some(bl), Some(ins)) = (
            ts.hist.get(b),
            bucket.get_mut(b),
            below.get_mut(b),
            inside.get_mut(b),
        ) else {
            break;
        };
        // The buckets' stakes add up to Σ stake > target, so some bucket is reached.
        for (idx, &c) in h.iter().enumerate() {
            if *bl + c > ti.target {
                *bk = idx as u64;
                *ins = c;
                break;
            }
            *bl += c;
        }
    }
    for (v, s) in ts.score.iter_mut().zip(ts.stake.iter_mut()) {
        v.clear();
        s.clear();
    }
    for (&r, &s) in ti.act_rows.iter().zip(ti.stake) {
        for (((&x, &sh), &bk), (v, st)) in row(r)
            .iter()
            .zip(&shift)
            .zip(&bucket)
            .zip(ts.score.iter_mut().zip(ts.stake.iter_mut()))
        {
            if x >> sh == bk {
                v.push(x as i64);
                st.push(s as i64);
            }
        }
    }
    for (b, o) in out.iter_mut().enumerate().take(ti.bw) {
        let (Some(v), Some(s), Some(&bl), Some(&ins)) = (
            ts.score.get(b),
            ts.stake.get(b),
            below.get(b),
            inside.get(b),
        ) else {
            break;
        };
        *o = weighted_quantile(v, s, (ti.target - bl) as i64, ins as i64, sel) as u64;
    }
}

/// The chain's weighted median of one column of non-negative scores (see [`weighted_quantile`]),
/// found with one histogram pass: stake per bucket of the top 8 significant bits, the bucket
/// where the cumulative stake first exceeds `minority`, then an exact selection among that
/// bucket's scores with the stake below it subtracted. Scores in lower buckets are all smaller
/// than the bucket's and those in higher buckets all larger, so the answer is the same.
pub(crate) fn column_quantile(
    score: &[u64],
    stake: &[u64],
    minority: i64,
    total: i64,
    sc: &mut SelectScratch,
) -> u64 {
    let k = score.len().min(stake.len());
    let (score, stake) = (score.get(..k).unwrap_or(&[]), stake.get(..k).unwrap_or(&[]));
    if k == 0 {
        return 0;
    }
    let any = score.iter().fold(0u64, |a, &x| a | x);
    if minority < 0 || minority >= total || any >> 62 != 0 || total < 0 {
        let wide: Vec<i64> = score.iter().map(|&x| x as i64).collect();
        let st: Vec<i64> = stake.iter().map(|&x| x as i64).collect();
        return weighted_quantile(&wide, &st, minority, total, sc) as u64;
    }
    let shift = (64 - any.leading_zeros()).saturating_sub(8);
    let hist = &mut sc.hist;
    hist.fill(0);
    for (&x, &s) in score.iter().zip(stake) {
        if let Some(h) = hist.get_mut(((x >> shift) & 0xff) as usize) {
            *h += s;
        }
    }
    let target = minority as u64;
    let mut below = 0u64;
    let mut bucket = 0u64;
    let mut in_bucket = 0u64;
    for (b, &h) in hist.iter().enumerate() {
        if below + h > target {
            bucket = b as u64;
            in_bucket = h;
            break;
        }
        below += h;
    }
    sc.bv.clear();
    sc.bv.resize(k, 0);
    sc.bs.clear();
    sc.bs.resize(k, 0);
    let mut m = 0usize;
    for (&x, &s) in score.iter().zip(stake) {
        if let Some(slot) = sc.bv.get_mut(m) {
            *slot = x as i64;
        }
        if let Some(slot) = sc.bs.get_mut(m) {
            *slot = s as i64;
        }
        m += usize::from(x >> shift == bucket);
    }
    let (bv, bs) = (std::mem::take(&mut sc.bv), std::mem::take(&mut sc.bs));
    let r = weighted_quantile(
        bv.get(..m).unwrap_or(&[]),
        bs.get(..m).unwrap_or(&[]),
        (target - below) as i64,
        in_bucket as i64,
        sc,
    );
    sc.bv = bv;
    sc.bs = bs;
    r as u64
}

/// Buffers for [`weighted_quantile`].
pub(crate) struct SelectScratch {
    hist: [u64; 256],
    bv: Vec<i64>,
    bs: Vec<i64>,
    v: Vec<i64>,
    s: Vec<i64>,
    v2: Vec<i64>,
    s2: Vec<i64>,
}

impl Default for SelectScratch {
    fn default() -> Self {
        SelectScratch {
            hist: [0; 256],
            bv: Vec::new(),
            bs: Vec::new(),
            v: Vec::new(),
            s: Vec::new(),
            v2: Vec::new(),
            s2: Vec::new(),
        }
    }
}

/// The value the chain's `weighted_median(stake, score, minority, 0, total)` returns, for
/// non-negative stakes summing (exactly, without saturation) to `total`.
///
/// Writing `S(≤ p)` for the stake of scores `≤ p`, the chain's quickselect keeps `lo ≤ minority <
/// hi` for the stake below / up to its current window and returns the pivot `p` once
/// `S(< p) ≤ minority < S(≤ p)`, or the single element left, which then satisfies the same.
/// That `p` is unique: the smallest score with `S(≤ p) > minority`. The degenerate cases are
/// `minority < 0` (it keeps going lower: the minimum) and `minority ≥ total` (it keeps going
/// higher: the maximum). Any selection finding that value is equivalent; this one partitions
/// three ways around a median-of-three pivot.
pub(crate) fn weighted_quantile(
    score: &[i64],
    stake: &[i64],
    minority: i64,
    total: i64,
    sc: &mut SelectScratch,
) -> i64 {
    let k = score.len().min(stake.len());
    let score = score.get(..k).unwrap_or(&[]);
    if k == 0 {
        return 0;
    }
    if minority < 0 {
        return score.iter().copied().min().unwrap_or(0);
    }
    if minority >= total {
        return score.iter().copied().max().unwrap_or(0);
    }
    sc.v.clear();
    sc.v.extend_from_slice(score);
    sc.s.clear();
    sc.s.extend_from_slice(stake.get(..k).unwrap_or(&[]));
    sc.v2.clear();
    sc.v2.resize(k, 0);
    sc.s2.clear();
    sc.s2.resize(k, 0);
    // The window is `off..off + len` of (v, s); its stake is `window`, the stake below it `below`.
    let (mut off, mut len) = (0usize, k);
    let mut window = total;
    let mut below = 0i64;
    loop {
        let (v, s) = match (sc.v.get(off..off + len), sc.s.get(off..off + len)) {
            (Some(v), Some(s)) => (v, s),
            _ => return 0,
        };
        if len <= 1 {
            return v.first().copied().unwrap_or(0);
        }
        let (a, b, c) = (
            v.first().copied().unwrap_or(0),
            v.get(len / 2).copied().unwrap_or(0),
            v.last().copied().unwrap_or(0),
        );
        let p = a.max(b).min(a.min(b).max(c));
        // Lower scores to the front of (v2, s2), higher ones to the back of its first `len`
        // cells; equal ones are dropped. Both slots are written unconditionally (no branch on
        // the data); a slot is only final once its counter moves past it.
        let (v2, s2) = match (sc.v2.get_mut(..len), sc.s2.get_mut(..len)) {
            (Some(v2), Some(s2)) => (v2, s2),
            _ => return 0,
        };
        let (mut nl, mut nu) = (0usize, 0usize);
        let (mut sl, mut su) = (0i64, 0i64);
        for (&x, &st) in v.iter().zip(s) {
            let lo = x < p;
            let hi = x > p;
            if let Some(slot) = v2.get_mut(nl) {
                *slot = x;
            }
            if let Some(slot) = s2.get_mut(nl) {
                *slot = st;
            }
            let back = len - 1 - nu;
            if let Some(slot) = v2.get_mut(back) {
                *slot = x;
            }
            if let Some(slot) = s2.get_mut(back) {
                *slot = st;
            }
            nl += usize::from(lo);
            nu += usize::from(hi);
            sl += if lo { st } else { 0 };
            su += if hi { st } else { 0 };
        }
        if minority < below + sl {
            (off, len, window) = (0, nl, sl);
        } else if below + window - su <= minority {
            below += window - su;
            (off, len, window) = (len - nu, nu, su);
        } else {
            return p;
        }
        std::mem::swap(&mut sc.v, &mut sc.v2);
        std::mem::swap(&mut sc.s, &mut sc.s2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{Divisor, FastMul, MedianScratch, fixed_proportion_to_u16, weighted_median};
    use proptest::prelude::*;

    fn fx(b: u64) -> I32F32 {
        I32F32::from_bits(b as i64)
    }

    fn chain_median(score: &[i64], stake: &[i64], minority: i64, total: i64) -> i64 {
        let f = |x: &[i64]| x.iter().map(|&b| I32F32::from_bits(b)).collect::<Vec<_>>();
        weighted_median(
            &f(stake),
            &f(score),
            I32F32::from_bits(minority),
            ZERO,
            I32F32::from_bits(total),
            &mut MedianScratch::new(score.len()),
        )
        .to_bits()
    }

    /// Values in `[0, 2³²]`, weighted towards the edges.
    fn unit() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1u64 << 32),
            Just((1u64 << 32) - 1),
            0u64..=(1 << 32),
            0u64..1000,
        ]
    }

    #[test]
    fn u16_ratio_matches_divisor_for_every_bond() {
        let d = Divisor::new(I32F32::from_bits(65_535 << 32));
        for b in 0..=u16::MAX {
            let expect = d.div(I32F32::from_bits(i64::from(b) << 32)).to_bits() as u64;
            assert_eq!(u16_ratio(b), expect, "{b}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// umul and to_u16_unit equal the library operations on [0, 2³²].
        #[test]
        fn unit_mul_and_u16_match(x in unit(), y in unit()) {
            prop_assert_eq!(umul(x, y), fx(x).saturating_mul(fx(y)).to_bits() as u64);
            prop_assert_eq!(umul(x, y), fx(x).smul(fx(y)).to_bits() as u64);
            prop_assert_eq!(to_u16_unit(x), fixed_proportion_to_u16(fx(x)));
        }

        /// UnitDiv equals `Divisor::div` (and `checked_div`) for numerators in [0, y].
        #[test]
        fn unit_div_matches_divisor(y in prop_oneof![0u64..=(1 << 32), 0u64..(1 << 48), Just(1u64 << 32), Just(1u64)],
                                    frac in any::<u64>(), pick in 0u8..5) {
            let a = match pick {
                0 => 0,
                1 => y,
                2 => y.saturating_sub(1),
                3 => frac % (y.min((1 << 31) - 1) + 1),
                _ => if y == 0 { 0 } else { frac % (y + 1) },
            };
            let expect = Divisor::new(fx(y)).div(fx(a));
            prop_assert_eq!(UnitDiv::new(y).div(a), expect.to_bits() as u64);
            if y > 0 {
                prop_assert_eq!(expect, fx(a).checked_div(fx(y)).unwrap_or(ZERO));
            }
        }

        /// Recip31 is exact division for every numerator below 2³¹ and every divisor,
        /// including powers of two and their neighbours (where the multiplier is extreme).
        #[test]
        fn recip31_is_exact(a in prop_oneof![0u64..(1 << 31), Just((1u64 << 31) - 1), Just(0u64)],
                            y in prop_oneof![1u64..=(1 << 63), 1u64..(1 << 33), 1u64..100],
                            shift in 0u32..63, nudge in 0u8..3) {
            let y = match nudge {
                0 => y,
                _ => (1u64 << shift).saturating_add(u64::from(nudge)).saturating_sub(2).max(1),
            };
            prop_assert_eq!(Recip31::new(y).div(a), ((u128::from(a) << 32) / u128::from(y)) as u64);
        }

        /// IntDiv equals `Divisor::div` for integer numerators and divisors below 2³¹.
        #[test]
        fn int_div_matches_divisor(y in prop_oneof![0u64..(1 << 31), 0u64..70_000, Just((1u64 << 31) - 1)],
                                   frac in any::<u64>(), pick in 0u8..3) {
            let b = match pick {
                0 => y,
                1 => 0,
                _ => if y == 0 { 0 } else { frac % (y + 1) },
            };
            let expect = Divisor::new(fx(y << 32)).div(fx(b << 32));
            prop_assert_eq!(IntDiv::new(y).div(b), expect.to_bits() as u64);
        }

        /// The histogram median equals the chain's quickselect, including ties, zero stakes,
        /// skewed columns and the degenerate quantiles.
        #[test]
        fn column_quantile_matches_chain_median(
            col in prop::collection::vec((prop_oneof![0u64..6, 0u64..=(1 << 32), Just(1u64 << 32)],
                                          prop_oneof![Just(0u64), 0u64..1000, 0u64..(1 << 26)]), 0..80),
            scale in 0u32..33,
            m in any::<i64>(),
            edge in 0u8..5,
        ) {
            let score: Vec<u64> = col.iter().map(|c| (c.0 << scale.min(c.0.leading_zeros())).min(1 << 32)).collect();
            let stake: Vec<u64> = col.iter().map(|c| c.1).collect();
            let total = stake.iter().sum::<u64>() as i64;
            let minority = match edge {
                0 => m.rem_euclid(total + 1),
                1 => total,
                2 => -1 - (m & 0xff),
                3 => (total - 1).max(0),
                _ => m.rem_euclid(total.max(1)),
            };
            let si: Vec<i64> = score.iter().map(|&x| x as i64).collect();
            let st: Vec<i64> = stake.iter().map(|&x| x as i64).collect();
            let mut sc = SelectScratch::default();
            prop_assert_eq!(column_quantile(&score, &stake, minority, total, &mut sc) as i64,
                            chain_median(&si, &st, minority, total));
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Tile medians (histogram over rows in place) equal the chain's median of each column.
        #[test]
        fn tile_medians_match_chain_median(
            rows in 1usize..40,
            cols in 1usize..=BLOCK,
            cells in prop::collection::vec(prop_oneof![Just(0u64), 0u64..8, 0u64..=(1 << 32), Just(1u64 << 32)], 40 * BLOCK),
            stakes in prop::collection::vec(prop_oneof![Just(0u64), 1u64..(1 << 26)], 40),
            pick in prop::collection::vec(any::<bool>(), 40),
            m in any::<u64>(),
        ) {
            let stride = BLOCK;
            let mut mat = vec![0u64; rows * stride];
            for r in 0..rows {
                for j in 0..cols {
                    mat[r * stride + j] = cells[r * BLOCK + j];
                }
            }
            let act_rows: Vec<usize> = (0..rows).filter(|&r| pick[r] || r == 0).collect();
            let stake: Vec<u64> = act_rows.iter().map(|&r| stakes[r].max(u64::from(r == 0))).collect();
            let total: u64 = stake.iter().sum();
            let target = m % total;
            let mut or_cols = vec![0u64; cols];
            for r in 0..rows {
                for j in 0..cols {
                    or_cols[j] |= mat[r * stride + j];
                }
            }
            let mut out = [0u64; BLOCK];
            tile_medians(
                &TileIn { tile: &mat, bw: cols, act_rows: &act_rows, stake: &stake,
                          or_cols: &or_cols, target },
                &mut TileScratch::default(),
                &mut SelectScratch::default(),
                &mut out,
            );
            let st: Vec<i64> = stake.iter().map(|&x| x as i64).collect();
            for j in 0..cols {
                let col: Vec<i64> = act_rows.iter().map(|&r| mat[r * stride + j] as i64).collect();
                prop_assert_eq!(out[j] as i64, chain_median(&col, &st, target as i64, total as i64), "column {}", j);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// The pivot-independent selection returns the chain quickselect's value.
        #[test]
        fn quantile_matches_chain_median(
            col in prop::collection::vec((0i64..12, prop_oneof![Just(0i64), 0i64..1000, 0i64..(1 << 33)]), 0..40),
            spread in prop_oneof![Just(1i64), Just(1 << 20), Just(1 << 32)],
            m in any::<i64>(),
            edge in 0u8..6,
        ) {
            let score: Vec<i64> = col.iter().map(|c| c.0 * spread).collect();
            let stake: Vec<i64> = col.iter().map(|c| c.1).collect();
            let total: i64 = stake.iter().sum();
            let minority = match edge {
                0 => m % (total + 2),
                1 => total,
                2 => -1 - (m & 0xff),
                3 => total - 1,
                4 => 0,
                _ => m.rem_euclid(total + 1),
            };
            let f = |x: &[i64]| x.iter().map(|&b| I32F32::from_bits(b)).collect::<Vec<_>>();
            let chain = weighted_median(
                &f(&stake),
                &f(&score),
                I32F32::from_bits(minority),
                ZERO,
                I32F32::from_bits(total),
                &mut MedianScratch::new(score.len()),
            );
            let mut sc = SelectScratch::default();
            prop_assert_eq!(weighted_quantile(&score, &stake, minority, total, &mut sc), chain.to_bits());
        }
    }
}
