//! The Orchestra simulator: a deterministic world around the production cores.
//!
//! The discrete-event engine arrives with issue 6; `orchestra-sim epoch` (issue 3) is the first
//! subcommand, implemented in [`epoch_cmd`].

pub mod engine;
pub mod epoch_cmd;
pub mod inputs;
pub mod located;
pub mod merge;
pub mod metrics;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod simchain;
pub mod tune;
pub mod world;
