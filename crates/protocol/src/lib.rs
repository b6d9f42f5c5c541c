//! Orchestra's wire protocol, shared by every other crate.
//!
//! - [`messages`]: the challenge, response, plan DAG and pipeline of docs/mechanism.md §2;
//! - [`ledger`]: Subnet Ledger entries and proposals as they travel between nodes;
//! - [`hash`]: canonical JSON (RFC 8785) and the BLAKE3 hashes taken of it;
//! - [`body`]: request and response bodies, shared and hashed at most once;
//! - [`proof`]: the hash-locked proof of docs/mechanism.md §3 (builder and verifier);
//! - [`btauth`]: btauth/1 signed HTTP, interoperable with the Python SDK;
//! - [`keys`] and [`ss58`]: hotkeys from wallets or dev URIs, and their addresses.
//!
//! The crate is pure: no async runtime, no clock (time is an argument), no global RNG.

pub mod body;
pub mod btauth;
pub mod hash;
pub mod keys;
pub mod ledger;
pub mod messages;
pub mod proof;
pub mod ss58;

pub use body::Body;
pub use hash::{Hash32, canonical_json, hash_canonical, hash_value};
pub use keys::{Hotkey, Scheme};
