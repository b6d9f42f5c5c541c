//! Production node shells around the sans-IO cores: `orchestra-miner`, `orchestra-validator`,
//! `orchestra-ledger` and `orchestra-mock-subnet`.
//!
//! Not built yet (issue 9).
