//! [`WeightSetter`]: once per tempo, the scorer's `(O_i, L_i)` become u16 weights per mechanism,
//! according to the combination mode (MECHANISM.md §7).

use crate::scorer::Scorer;
use orchestra_mechanism::combine::{
    CombinedWeights, MechanismWeights, combine, emission_split_u16,
};
use orchestra_mechanism::weights::{WeightLimits, WeightsError};
use orchestra_mechanism::{CombinationMode, MechanismParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Weights the driver must set on chain (with commit-reveal if the subnet enables it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsToSet {
    /// Block at which they were computed.
    pub block: u64,
    /// One vector per mechanism (`mecid` 0, and 1 in `mechanisms` mode).
    pub weights: Vec<MechanismWeights>,
    /// In `mechanisms` mode, the emission split `[s, 1 − s]` as u16 proportions.
    pub emission_split: Option<[u16; 2]>,
}

/// Compute the weights for `scores` (`(O_i, L_i)` per uid).
pub fn weights_to_set(
    scores: &BTreeMap<u16, (f64, f64)>,
    params: &MechanismParams,
    limits: &WeightLimits,
    block: u64,
) -> Result<WeightsToSet, WeightsError> {
    let combined: CombinedWeights = combine(scores, params);
    Ok(WeightsToSet {
        block,
        weights: combined.quantize(limits)?,
        emission_split: (params.combination == CombinationMode::Mechanisms)
            .then(|| emission_split_u16(params.orchestration_share)),
    })
}

/// Emits weights every `interval_blocks` (one tempo by default).
#[derive(Debug, Clone)]
pub struct WeightSetter {
    limits: WeightLimits,
    interval_blocks: u64,
    last_set: Option<u64>,
}

impl WeightSetter {
    /// A setter that emits every `interval_blocks` within `limits`.
    pub fn new(limits: WeightLimits, interval_blocks: u64) -> Self {
        WeightSetter {
            limits,
            interval_blocks: interval_blocks.max(1),
            last_set: None,
        }
    }

    /// The block after which the next weights are due.
    pub fn next_due(&self) -> u64 {
        self.last_set
            .map_or(0, |b| b.saturating_add(self.interval_blocks))
    }

    /// Weights to set at `block` if they are due; `Ok(None)` if not due or nothing scores yet.
    pub fn poll_weights(
        &mut self,
        block: u64,
        scorer: &Scorer,
    ) -> Result<Option<WeightsToSet>, WeightsError> {
        if block < self.next_due() {
            return Ok(None);
        }
        let w = weights_to_set(&scorer.scores(), scorer.params(), &self.limits, block)?;
        if w.weights.is_empty() {
            return Ok(None);
        }
        self.last_set = Some(block);
        Ok(Some(w))
    }
}
