//! [`ValidatorStrategy`]: how a validator deviates from the honest core, the validator-side
//! counterpart of the miner's `Strategy`.
//!
//! The [`Validator`](crate::Validator) runs the honest machinery (challenges, audits, scoring,
//! proposal verification) and consults its strategy where a validator can misbehave without
//! touching that machinery:
//!
//! | hook | honest default | what an adversary can do there |
//! |---|---|---|
//! | [`weights`](ValidatorStrategy::weights) | set the weights its scores give | copy last consensus (`weight_copier`), boost its own miners (`colluding_bloc`) |
//!
//! Strategies see the chain through [`WeightsCtx`] — what any validator reads from the
//! metagraph — never the driver, so a strategy behaves the same in the simulator and in a node.
//! The shipped adversaries live in `orchestra-adversaries`.

use crate::validator::MinerInfo;
use orchestra_mechanism::combine::MechanismWeights;

/// What a strategy may look at when weights are about to leave.
#[derive(Debug, Clone, Copy)]
pub struct WeightsCtx<'a> {
    /// The tempo whose scores the weights come from.
    pub tempo: u64,
    /// The block at which they were computed.
    pub block: u64,
    /// The miners in the metagraph, as the driver last reported them.
    pub miners: &'a [MinerInfo],
    /// Last epoch's consensus per mechanism (u16 per uid), as the metagraph shows it.
    pub consensus: &'a [Vec<u16>],
}

/// A validator's behaviour (see the module docs). Every method has the honest default.
pub trait ValidatorStrategy: Send {
    /// A short name for reports (`honest`, `weight_copier`, …).
    fn name(&self) -> &str {
        "honest"
    }

    /// The weights to set instead of `honest` (one vector per mechanism, as the scores give
    /// them). Returned vectors must keep uids strictly ascending and values non-zero.
    fn weights(
        &mut self,
        ctx: &WeightsCtx<'_>,
        honest: Vec<MechanismWeights>,
    ) -> Vec<MechanismWeights> {
        let _ = ctx;
        honest
    }
}

/// The honest validator: every hook at its default.
#[derive(Debug, Clone, Copy, Default)]
pub struct HonestValidator;

impl ValidatorStrategy for HonestValidator {}
