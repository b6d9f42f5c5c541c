//! Yuma consensus: one subtensor epoch, bit-exact with the chain.
//!
//! # What this is
//! A port of the sparse production path of opentensor/subtensor's `epoch_mechanism`
//! (`pallets/subtensor/src/epoch/run_epoch.rs`) and the math it calls (`epoch/math.rs`), for both
//! original Yuma and Yuma 3 with liquid alpha. Given one mechanism's state (stake, stored
//! permits, registration and last-update blocks, sparse weights and bonds), [`run_epoch`] returns
//! what the chain would persist and pay: activity, new permits, u16 stake weight, consensus,
//! incentive, dividends, validator trust, new bonds, and server / validator / combined emission
//! in rao. Bonds are carried between epochs by the caller: feed `EpochOutput::bonds` and
//! `EpochOutput::validator_permit` back as the next epoch's `bonds` and `validator_permit`.
//!
//! # Fidelity
//! The arithmetic uses `substrate-fixed` 0.6 exactly as the chain does: `I32F32` for the epoch
//! math, `I64F64` for stake normalisation and the bonds moving average, `I96F32` to turn a
//! proportion into rao; saturating operations where the chain saturates, `checked_div` → 0 where
//! it uses `safe_div`, truncating conversions to u16 and u64. Operation order is kept wherever it
//! can change a bit: saturating accumulations run in the chain's row order, sparse rows keep the
//! chain's entry order (including the liquid-alpha look-up's quirks on unsorted rows), and the
//! weighted median is the same deterministic quickselect.
//!
//! The port follows the newest `epoch_mechanism` (owner keeps its self-weight and is always
//! permitted; the bond mask uses `last_mechanism_step_block + 1` when known; liquid alpha uses
//! the clamped `exp_safe`). Sources read: `epoch/run_epoch.rs`, `epoch/math.rs`, the liquid-alpha
//! helpers, `subnets/mechanism.rs` (`split_emissions`), `primitives/safe-math`, and the tests
//! `tests/epoch_logs.rs` and `tests/epoch.rs`.
//!
//! The only intentional departures are for inputs the chain cannot hold: out-of-range uids in
//! weights or bonds are dropped instead of panicking, and fixed-point `sum()` always wraps (as the
//! release runtime does) instead of panicking on overflow in debug builds.
//!
//! # Speed without changing a bit
//! The chain densifies rows and columns (n-wide scratch rows, a columns × validators score
//! matrix, an n × n liquid-alpha matrix) and materialises every intermediate matrix. Here there
//! are two paths, chosen per epoch, with identical results.
//!
//! **Sparse path** (any input; the only one for traces, liquid alpha under Yuma 3, a bonds
//! penalty other than 1, unsorted rows, sparse weights): column normalisations are applied on
//! the fly from precomputed column sums; one n-row matrix is reused in place from weights to
//! clipped weights to new bonds; strictly ascending rows are merged instead of densified; the
//! median walks the rows column by column; divisions by a row or column sum use an exact
//! multiply-shift for that divisor; and `saturating_mul` is computed with one 64×64→128 product.
//!
//! **Dense path** (`dense.rs`; the large-subnet shape: bonds penalty 1, no Yuma 3 liquid alpha,
//! EMA alpha in `[0, 1]`, n < 32768, permitted rows stored in ascending uid order and together
//! at least half full): the masked weights and old bonds densified as raw u16 in tiles of 64
//! columns × all rows, walked tile by tile so that each tile is finished while it is cached:
//! its weights row-normalised into one tile-sized buffer of raw `I32F32` bits, the
//! stake-weighted median of each column by a stake histogram over the top 6 significant bits
//! followed by an exact selection inside one bucket (reading the rows in place, no
//! transposition), ranks, the clip + trust + bonds EMA, and the column-normalised /
//! max-upscaled stored bonds, all in that buffer; the column-normalised bonds are kept as u32
//! for the dividends' last pass (a bond of exactly 1 is noted apart). Tiles with no weight and
//! no bond (the validators' own columns) are skipped. In the proven value ranges (everything in
//! `[0, 1]`, every column sum bounded so nothing saturates) the fixed-point operations become
//! plain integer kernels: `a·b >> 32` in 128 bits, exact division by one multiply and one shift
//! for numerators below one half (Granlund–Montgomery; a plain division otherwise, which only
//! the cells of a validator holding most of a column reach), `⌊x·65535 / 2³²⌋`,
//! `65537·b + [b = 65535]` for `b / 65535`. With no saturation or wrapping every sum is exact,
//! so the tile order cannot change a bit. The buffers live in an [`EpochScratch`] that
//! [`run_epoch_with_scratch`] takes explicitly; [`run_epoch`] keeps one per thread.
//!
//! Each shortcut is proven equal to the library operation by property tests over the whole
//! range it can see (`math.rs`, `dense.rs`: `smul`, `Divisor`, the dense kernels, the weighted
//! median against the chain's quickselect, tile medians). A `#[cfg(test)]` straightforward port
//! (one chain helper per step, dense rows) must agree with [`run_epoch`] on 1,024 random inputs
//! and, over three chained epochs, on 1,024 + 64 random dense-path inputs (also against the
//! sparse path and a reused scratch) and a bench-shaped subnet; a hash of outputs over several
//! pseudo-random multi-epoch runs, recorded before any speed work, is pinned as well.
//!
//! Measured with `cargo bench -p orchestra-benches --bench yuma` (criterion median, one core of
//! the 2-vCPU AMD EPYC reference VM; the "before" column is the first straightforward port on a
//! shared host, the others on a quiet one):
//!
//! | one epoch, every validator weighting every miner | before | tile-major u64 matrix | now |
//! |---|---|---|---|
//! | 256 uids, 64 validators, Yuma | 479 µs | 149 µs | 123 µs |
//! | 256 uids, 64 validators, Yuma 3 | 357 µs | 126 µs | 109 µs |
//! | 4096 uids, 256 validators, Yuma | 43.4 ms | 11.0 ms | 8.64 ms |
//! | 4096 uids, 256 validators, Yuma 3 | 32.8 ms | 9.3 ms | 7.50 ms |
//!
//! The 4096-uid epoch shares the last-level cache and memory bandwidth with the other core:
//! with a simulation running there it measured 9.07 ms (Yuma 3: 7.82 ms).
//!
//! Where the 4096-uid epoch goes (original Yuma, timers around each phase): building the u16
//! tiles ~1.6 ms, the medians ~1.9 ms, ranks ~0.9 ms, the EMA ~1.9 ms, the stored and
//! normalised bonds ~1.8 ms, the dividends ~0.6 ms — about 9 ns per weight entry, nearly all of
//! it arithmetic the chain prescribes (per entry, five exact divisions and four 64×64-bit
//! products for the original). The workspace forbids `unsafe`, so there is no
//! runtime-dispatched SIMD, and building for `target-cpu=native` changed nothing measurable:
//! the kernels are 64×64→128-bit multiplies, which vector units do not have.
//!
//! Conformance is pinned by the public vectors of subtensor's `tests/epoch_logs.rs` and
//! `tests/epoch.rs` (see this crate's tests), compared on exact u16 / u64 values and, through
//! [`run_epoch_traced`], on the fixed-point values the chain prints in its logs.
//!
//! # Around the epoch
//! [`split_block_emission`] splits one block's alpha into owner / miners / validators (owner cut
//! a parameter, default [`DEFAULT_OWNER_CUT`] ≈ 18 %), and [`run_mechanisms`] splits an epoch's
//! emission over several mechanisms (subtensor's `split_emissions`) and runs one epoch each.
//!
//! [`EpochSchedule`] decides which blocks run the epoch, under the legacy modulo rule or spec
//! 459's stateful scheduler (dynamic tempo, `trigger_epoch`), and [`activity_cutoff_blocks`]
//! turns spec 459's per-mille activity-cutoff factor into blocks.
//!
//! The crate is pure: no clock, no IO, no randomness.
//!
//! # Invariants
//!
//! An epoch never pays more than it emits. Checked with `debug_assert!` (every debug build and
//! test; free in release) on every subnet the chain can hold — total stake below 2^63 rao
//! (total issuance is about 2.1·10^16): each epoch's combined emission and its server + validator
//! emission are at most its `emission`, since turning shares into rao only truncates
//! (`tests/properties.rs` holds it on arbitrary inputs, malformed ones included). Beyond that,
//! the fixed-point stake sums wrap and the port, like the chain, can pay out more.
//! [`split_block_emission`]'s three parts add up to the block's alpha exactly, and
//! [`run_mechanisms`]'s shares add up to the epoch's alpha exactly; a split the chain's setter
//! would not store ([`YumaError::InvalidSplit`]: empty, or not summing to 65535) is refused.
//!
//! # Mechanisms
//! [`split_mechanism_emission`], [`check_emission_split`], [`check_mechanism_count`] and
//! [`mechanism_storage_index`] follow subtensor's `subnets/mechanism.rs` bit for bit; the one
//! place the runtimes differ (a split of the wrong length) is a [`SplitRule`], spec 459's by
//! default. `tests/mechanisms.rs` holds the chain's own test vectors, each naming its source.

mod dense;
mod epoch;
mod math;
#[cfg(test)]
mod reference;
mod schedule;
mod split;
mod types;
mod validate;

pub use dense::EpochScratch;
pub use epoch::{EpochTrace, run_epoch, run_epoch_traced, run_epoch_with_scratch};
pub use schedule::{
    DEFAULT_ADMIN_FREEZE_WINDOW, EpochRule, EpochSchedule, INITIAL_ACTIVITY_CUTOFF_FACTOR_MILLI,
    MAX_ACTIVITY_CUTOFF_FACTOR_MILLI, MAX_TEMPO, MIN_ACTIVITY_CUTOFF_FACTOR_MILLI, MIN_TEMPO,
    OWNER_HYPERPARAM_RATE_LIMIT_TEMPOS, Origin, ScheduleError, activity_cutoff_blocks,
    legacy_blocks_until_next_epoch,
};
pub use split::{
    BlockSplit, DEFAULT_MAX_ALLOWED_UIDS, DEFAULT_MAX_MECHANISM_COUNT, DEFAULT_OWNER_CUT,
    GLOBAL_MAX_SUBNET_COUNT, MAX_MECHANISM_COUNT_PER_SUBNET, MechanismRuleError, MechanismsOutput,
    SplitRule, check_emission_split, check_mechanism_count, mechanism_storage_index,
    run_mechanisms, split_block_emission, split_mechanism_emission,
};
pub use substrate_fixed::types::I32F32;
pub use types::{EpochInput, EpochOutput, NeuronInput, NormalizedOutput, defaults};
pub use validate::{InputError, validate};

/// Errors of the epoch library itself (the epoch never fails on content, only on size).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YumaError {
    /// More neurons than a u16 uid can address.
    #[error("{n} neurons, but a subnet holds at most 65535 uids")]
    TooManyNeurons {
        /// Number of neurons given.
        n: usize,
    },
    /// The mechanism emission split is not one the chain's setter would store (empty, or its
    /// parts do not sum to exactly 65535).
    #[error("invalid mechanism emission split: {0}")]
    InvalidSplit(#[from] MechanismRuleError),
    /// A mechanism's input does not have the same uids as the first one.
    #[error("mechanism {mechanism} has {n} neurons, expected {expected}")]
    MechanismSizeMismatch {
        /// Index of the offending mechanism input.
        mechanism: usize,
        /// Its neuron count.
        n: usize,
        /// The first mechanism's neuron count.
        expected: usize,
    },
}
