//! The Subnet Ledger: entries, proposal verification rules, the Merkle change log, storage and the
//! query API.
//!
//! Not built yet (issue 4).
