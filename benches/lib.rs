//! Criterion benches across the Orchestra crates; the bench targets live beside this file.
//!
//! Run them with `cargo bench -p orchestra-benches`, or once each in test mode with
//! `cargo bench -p orchestra-benches -- --test` (what CI does so they never rot).
