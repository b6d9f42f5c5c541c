//! The sans-IO validator core: [`ChallengeGenerator`], [`Auditor`] (docs/mechanism.md §3 checks 1–5),
//! [`ProposalVerifier`] (probes, then the Ledger crate's rules on this validator's replica),
//! [`Scorer`] (per-challenge and per-tempo terms, EMAs, strikes), [`WeightSetter`], and
//! [`pick_miner`] for users' (organic) requests.
//!
//! Like the miner core, nothing here reads a clock, opens a socket, touches a file or draws from
//! an unseeded RNG: time arrives as `now_ms`/`block`, randomness as a caller-seeded
//! `rand::Rng`, and IO leaves as values — [`AuditCall`]s and [`ProbeRequest`]s to run,
//! [`WeightsToSet`] to submit — whose results come back through `on_…` methods.

pub mod audit;
pub mod challenge;
pub mod organic;
pub mod scorer;
pub mod strategy;
pub mod validator;
pub mod verifier;
pub mod weights;

pub use audit::{
    Audit, AuditCall, AuditReport, Auditor, AuditorConfig, ReplayHit, StepAudit, StepVerdict,
    receipt_valid,
};
pub use challenge::{ChallengeConfig, ChallengeError, ChallengeGenerator};
pub use orchestra_ledger::view::LedgerView;
pub use organic::{DEFAULT_ORGANIC_ATTEMPTS, pick_miner};
pub use scorer::{ChallengeOutcome, ChallengeScore, Scorer, ScorerConfig, ScorerState};
pub use strategy::{HonestValidator, ValidatorStrategy, WeightsCtx};
pub use validator::{
    AnchorRequest, AuditTransmit, ChainInfo, ChallengeTransmit, MinerInfo, OrganicFailure,
    ScoredChallenge, Validator, ValidatorConfig, ValidatorError, ValidatorEvent, ValidatorRngs,
    ValidatorState, WeightsDecision,
};
pub use verifier::{ProbeRequest, ProposalVerifier, VerifiedProposal};
pub use weights::{
    PendingReveal, WeightRules, WeightSchedule, WeightScheduleState, WeightSetter, WeightsAction,
    WeightsToSet, weights_to_set,
};
