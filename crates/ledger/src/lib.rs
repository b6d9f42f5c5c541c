//! The Subnet Ledger (docs/mechanism.md §5): entries, proposal verification rules, the Merkle change
//! log, storage and the query API.
//!
//! Pure layers (no clock, IO or RNG; usable from the simulator):
//! - [`model`]: Ledger state, field TTLs and staleness, change records and how they apply;
//! - [`verify`]: the validator's verification rules over caller-supplied probe results;
//! - [`engine`]: the replica engine — verify, credit duplicates, append to the log;
//! - [`merkle`] and [`log`]: the RFC 6962 tree over BLAKE3, signed heads, proofs.
//!
//! IO layers: [`store`] (trait and in-memory backend), [`sqlite`], [`node`] (replica bound to a
//! store and hotkey), [`mocks`] (seed files), [`server`] (the axum query API) and [`agents`] (its MCP tools and A2A agent card).

#[cfg(feature = "service")]
pub mod access;
#[cfg(feature = "service")]
pub mod agents;
pub mod engine;
pub mod log;
pub mod merkle;
pub mod mocks;
pub mod model;
pub mod node;
#[cfg(feature = "service")]
pub mod openapi;
pub mod pointer;
#[cfg(feature = "service")]
pub mod server;
#[cfg(feature = "service")]
pub mod sqlite;
pub mod store;
pub mod verify;
pub mod view;

pub use engine::{Ledger, Outcome};
pub use model::{ChangeRecord, Credit, LedgerState, ProposalKind, Ttl};
pub use node::{ChangeInput, LedgerNode};
pub use verify::{ProbeResult, ProbeSet, RejectReason, Verdict, VerifyParams};
pub use view::{CompiledSchema, LedgerView, compile_schema};
