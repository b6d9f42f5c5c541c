//! The sans-IO miner core: [`Planner`], [`Router`], the [`Execution`] state machine (which builds
//! the hash-locked proof as it goes), the [`ProposalDetector`], and the [`Strategy`] trait with
//! the [`Honest`] default, tied together by [`Miner`].
//!
//! Like quinn-proto, nothing here reads a clock, opens a socket, touches a file or draws from an
//! unseeded RNG: time arrives as `now_ms`/`block` arguments, randomness as a caller-seeded
//! `rand::Rng`, sub-calls leave as [`SubCall`] values and come back through
//! [`Miner::on_subcall_result`]. A live node and the simulator drive the very same code; see
//! [`local::drive`] for the smallest possible driver (virtual time, subnets as a closure).

pub mod assemble;
pub mod detector;
pub mod execution;
pub mod local;
pub mod miner;
pub mod planner;
pub mod router;
pub mod strategy;

pub use detector::{DetectorConfig, ProposalDetector};
pub use execution::{
    CallRef, Execution, ExecutionConfig, ExecutionError, ExecutionOutput, Observation, SubCall,
    SubCallFailure, SubCallOutcome, SubCallReply,
};
pub use miner::{Miner, MinerConfig, MinerError, Session, SessionState};
/// The Ledger view every core routes and audits against (re-exported for strategy authors).
pub use orchestra_ledger::view::{self, CompiledSchema, LedgerView, compile_schema};
pub use planner::{Planner, PlanningError, RoutedPlan};
pub use router::{Route, Router, RouterConfig};
pub use strategy::{
    Answer, CallAction, EpochReward, Honest, Strategy, StrategyCtx, honest_answer, seal_response,
};
