//! The `Chain` trait (the seam the simulator implements too) and the subtensor client.
//!
//! Without the default `subxt` feature this crate is only the trait, the plain data types, the
//! client-side weight pre-checks, the commit-reveal v2 hash and v4's timelock encryption
//! ([`crv4`]): cheap to build for the simulator.
//! With it, [`SubtensorChain`] talks to a subtensor node through subxt's dynamic API, and
//! [`devnet`] writes subnets straight into a Chopsticks chain's storage for local devnets.

pub mod chain;
pub mod crv4;
pub mod error;
pub mod hash;
pub mod precheck;
pub mod types;

#[cfg(feature = "subxt")]
pub mod devnet;
#[cfg(feature = "subxt")]
pub mod subtensor;

pub use chain::{Chain, ChainResult, resolve_ready};
pub use error::{ChainError, ModuleError};
pub use hash::{blake2_256, commit_for, commit_hash_v2, netuid_index};
pub use precheck::{WeightsContext, WeightsRejection, check_weights, normalize_weights};
pub use types::*;

#[cfg(feature = "subxt")]
pub use subtensor::{Network, SubtensorChain, SubtensorConfig};
