//! The sans-IO miner core: planner, router, execution state machine, proposal detector and the
//! `Strategy` trait.
//!
//! Not built yet (issue 5).
