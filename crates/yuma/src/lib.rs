//! Yuma consensus: one subtensor epoch, bit-exact with the chain.
//!
//! Not built yet (issue 3).
