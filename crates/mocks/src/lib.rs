//! Behaviour model of mock subnets, shared by the deterministic simulator (`crates/sim`) and
//! the HTTP mock server so both serve exactly the same subnets.
//!
//! A [`MockSet`] is loaded once from `mocks/subnets/*.toml` — from a directory
//! ([`MockSet::load_dir`]) or from the copies embedded at build time ([`MockSet::shipped`]),
//! the one loader every tool uses (simulator, `orchestra-mock-subnet`, the miner's `--mocks`,
//! `orchestra-ledger seed`, the validator's `--ledger.seed`): each file's `[entry]` is the
//! subnet's Ledger entry and its `[behaviour]` ([`Behaviour`]) says how it performs (latency,
//! failures, capacity, price, receipts, alternative output schema versions). Loading compiles
//! every input schema into a validator and every output schema into a generator plan, so a
//! call never interprets JSON Schema.
//!
//! What changes during a run lives in a separate [`SubnetState`] that the driver mutates with
//! [`SubnetEvent`]s; [`MockSubnet::call`] reads the state and draws randomness only from the
//! caller's RNG, and [`MockSubnet::true_entry`] gives the ground truth a Ledger is scored
//! against. Nothing here reads a clock, opens a socket or touches a global RNG; files are read
//! only by [`MockSet::load_dir`].

mod behaviour;
mod call;
mod error;
mod model;
mod plan;
mod state;
mod words;

pub use behaviour::{Behaviour, Distribution, EndpointBehaviour, Latency, Overload, SchemaVersion};
pub use call::{CallContext, CallOutcome, ErrorKind};
pub use error::{MockError, StateError};
pub use model::{MockSet, MockSubnet, SHIPPED, receipt_dev_key};
pub use state::{SubnetEvent, SubnetState};
