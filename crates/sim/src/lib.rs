//! The Orchestra simulator: a deterministic world around the production cores.
//!
//! The discrete-event engine arrives with issue 6; `orchestra-sim epoch` (issue 3) is the first
//! subcommand, implemented in [`epoch_cmd`].

pub mod epoch_cmd;
