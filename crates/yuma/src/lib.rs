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
//! matrix, an n × n liquid-alpha matrix) and materialises every intermediate matrix. Here:
//! column normalisations are applied on the fly from precomputed column sums; one n-row matrix
//! is reused in place from weights to clipped weights to new bonds; strictly ascending rows are
//! merged instead of densified; the median walks the rows column by column; divisions by a
//! row or column sum use an exact multiply-shift for that divisor; and `saturating_mul` is
//! computed with one 64×64→128 product. Each shortcut is proven equal to the library operation
//! by property tests, and a `#[cfg(test)]` straightforward port (one chain helper per step,
//! dense rows) must agree with [`run_epoch`] on random inputs; a hash of outputs over several
//! pseudo-random multi-epoch runs is pinned as well.
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
//! The crate is pure: no clock, no IO, no randomness.

mod epoch;
mod math;
#[cfg(test)]
mod reference;
mod split;
mod types;
mod validate;

pub use epoch::{EpochTrace, run_epoch, run_epoch_traced};
pub use split::{
    BlockSplit, DEFAULT_OWNER_CUT, MechanismsOutput, run_mechanisms, split_block_emission,
    split_mechanism_emission,
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
