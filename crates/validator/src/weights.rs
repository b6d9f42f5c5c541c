//! Weights: once per tempo the scorer's `(O_i, L_i)` become u16 weights per mechanism, according
//! to the combination mode (docs/mechanism.md §7), and leave either directly or through commit-reveal
//! v2 ([`WeightSchedule`]).
//!
//! Commit-reveal v2 as subtensor runs it: a validator commits a hash of its weights and a random
//! salt in epoch `e` and must reveal the weights and salt in epoch `e + RevealPeriodEpochs`
//! exactly; only then do the weights count. The schedule therefore keeps every landed commit
//! until its reveal epoch opens and emits the reveal then, so with a reveal period of one the
//! chain sees this tempo's weights one tempo late — the lag that keeps a weight copier from
//! copying fresh consensus.

use crate::scorer::Scorer;
use orchestra_mechanism::combine::{
    CombinedWeights, MechanismWeights, combine, emission_split_u16,
};
use orchestra_mechanism::weights::{WeightLimits, WeightsError};
use orchestra_mechanism::{CombinationMode, MechanismParams};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

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

/// Emits weights every `every_tempos` tempos (one by default).
#[derive(Debug, Clone)]
pub struct WeightSetter {
    limits: WeightLimits,
    every_tempos: u64,
    last_set: Option<u64>,
}

impl WeightSetter {
    /// A setter that emits every `every_tempos` tempos within `limits`.
    pub fn new(limits: WeightLimits, every_tempos: u64) -> Self {
        WeightSetter {
            limits,
            every_tempos: every_tempos.max(1),
            last_set: None,
        }
    }

    /// The chain's weight limits (they change with hyperparameters and the setter's uid).
    pub fn set_limits(&mut self, limits: WeightLimits) {
        self.limits = limits;
    }

    /// The limits weights are quantised within.
    pub fn limits(&self) -> &WeightLimits {
        &self.limits
    }

    /// The tempo from which the next weights are due.
    pub fn next_due(&self) -> u64 {
        self.last_set
            .map_or(0, |t| t.saturating_add(self.every_tempos))
    }

    /// Weights to set when tempo `tempo` closes at `block`, if they are due; `Ok(None)` if not
    /// due or nothing scores yet.
    pub fn poll_weights(
        &mut self,
        tempo: u64,
        block: u64,
        scorer: &Scorer,
    ) -> Result<Option<WeightsToSet>, WeightsError> {
        if tempo < self.next_due() {
            return Ok(None);
        }
        let w = weights_to_set(&scorer.scores(), scorer.params(), &self.limits, block)?;
        if w.weights.is_empty() {
            return Ok(None);
        }
        self.last_set = Some(tempo);
        Ok(Some(w))
    }
}

/// How the subnet takes weights, from its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WeightRules {
    /// `CommitRevealWeightsEnabled`: weights are committed, then revealed.
    pub commit_reveal: bool,
    /// `RevealPeriodEpochs` (at least 1): a commit made in epoch `e` is revealed in `e + this`.
    pub reveal_period: u64,
    /// Commit-reveal v4 (`CommitRevealWeightsVersion` 4 on a runtime with
    /// `commit_timelocked_weights`): commits are timelock-encrypted to a drand round and the
    /// chain reveals them itself, so there is no reveal to send.
    #[serde(default)]
    pub timelocked: bool,
}

/// One weight extrinsic the driver must submit; its result comes back through
/// [`WeightSchedule::on_result`] (the validator's `handle_weights_result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WeightsAction {
    /// Set `weights` now (commit-reveal off).
    Set {
        /// Names the action in the result.
        id: u64,
        /// The tempo whose scores they are.
        tempo: u64,
        /// The weights.
        weights: MechanismWeights,
    },
    /// Commit to `weights` and `salt` now (the chain client hashes them with the hotkey, the
    /// netuid index and the version key); they are revealed in tempo `reveal_tempo`.
    Commit {
        /// Names the action in the result.
        id: u64,
        /// The tempo whose scores they are.
        tempo: u64,
        /// The weights.
        weights: MechanismWeights,
        /// The commit's salt.
        salt: Vec<u16>,
        /// The tempo (epoch index) in which they must be revealed.
        reveal_tempo: u64,
    },
    /// Commit `weights` timelock-encrypted (commit-reveal v4): the driver encrypts them to the
    /// drand round of their reveal (`orchestra_chain::crv4`) and the chain reveals them.
    CommitTimelocked {
        /// Names the action in the result.
        id: u64,
        /// The tempo whose scores they are.
        tempo: u64,
        /// The weights.
        weights: MechanismWeights,
    },
    /// Reveal the commit `id` made earlier.
    Reveal {
        /// The commit's id.
        id: u64,
        /// The open tempo the reveal is made in.
        tempo: u64,
        /// The weights committed.
        weights: MechanismWeights,
        /// The salt committed.
        salt: Vec<u16>,
    },
}

impl WeightsAction {
    /// The action's id.
    pub fn id(&self) -> u64 {
        match self {
            WeightsAction::Set { id, .. }
            | WeightsAction::Commit { id, .. }
            | WeightsAction::CommitTimelocked { id, .. }
            | WeightsAction::Reveal { id, .. } => *id,
        }
    }

    /// The weights it carries.
    pub fn weights(&self) -> &MechanismWeights {
        match self {
            WeightsAction::Set { weights, .. }
            | WeightsAction::Commit { weights, .. }
            | WeightsAction::CommitTimelocked { weights, .. }
            | WeightsAction::Reveal { weights, .. } => weights,
        }
    }
}

/// A commit that landed and waits for its reveal tempo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReveal {
    /// The commit's id.
    pub id: u64,
    /// The tempo in which to reveal.
    pub reveal_tempo: u64,
    /// The weights committed.
    pub weights: MechanismWeights,
    /// The salt committed.
    pub salt: Vec<u16>,
}

/// The durable part of a [`WeightSchedule`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WeightScheduleState {
    /// Landed commits not yet revealed.
    pub pending_reveals: Vec<PendingReveal>,
    /// The next action id.
    pub next_id: u64,
}

/// Salt length of a commit (the SDK uses 8 random u16s).
pub const SALT_LEN: usize = 8;

/// Turns each tempo's weights into extrinsics: set directly, or committed and later revealed.
#[derive(Debug, Clone, Default)]
pub struct WeightSchedule {
    rules: WeightRules,
    out: VecDeque<WeightsAction>,
    /// Commits sent, awaiting their result.
    committing: BTreeMap<u64, PendingReveal>,
    state: WeightScheduleState,
}

impl WeightSchedule {
    /// A schedule under `rules`.
    pub fn new(rules: WeightRules) -> Self {
        WeightSchedule {
            rules,
            ..Default::default()
        }
    }

    /// The subnet's rules changed (read from its hyperparameters).
    pub fn set_rules(&mut self, rules: WeightRules) {
        self.rules = rules;
    }

    /// The rules in force.
    pub fn rules(&self) -> WeightRules {
        self.rules
    }

    /// The durable state.
    pub fn state(&self) -> &WeightScheduleState {
        &self.state
    }

    /// Replace the durable state (after a restart).
    pub fn restore(&mut self, state: WeightScheduleState) {
        self.state = state;
    }

    /// Queue `weights` (computed when tempo `tempo` closed, while tempo `tempo + 1` is open).
    pub fn submit(&mut self, tempo: u64, weights: Vec<MechanismWeights>, rng: &mut impl Rng) {
        for w in weights {
            let id = self.state.next_id;
            self.state.next_id += 1;
            if self.rules.commit_reveal && self.rules.timelocked {
                self.out.push_back(WeightsAction::CommitTimelocked {
                    id,
                    tempo,
                    weights: w,
                });
            } else if self.rules.commit_reveal {
                let salt: Vec<u16> = (0..SALT_LEN).map(|_| rng.random::<u16>()).collect();
                // Committed in the open tempo (`tempo + 1`), revealed `reveal_period` later.
                let reveal_tempo = tempo + 1 + self.rules.reveal_period.max(1);
                self.out.push_back(WeightsAction::Commit {
                    id,
                    tempo,
                    weights: w,
                    salt,
                    reveal_tempo,
                });
            } else {
                self.out.push_back(WeightsAction::Set {
                    id,
                    tempo,
                    weights: w,
                });
            }
        }
    }

    /// Tempo `open` is open: queue the reveals that are due.
    pub fn reveal_due(&mut self, open: u64) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.state.pending_reveals)
            .into_iter()
            .partition(|p| p.reveal_tempo <= open);
        self.state.pending_reveals = later;
        for p in due {
            self.out.push_back(WeightsAction::Reveal {
                id: p.id,
                tempo: open,
                weights: p.weights,
                salt: p.salt,
            });
        }
    }

    /// The next extrinsic to submit.
    pub fn poll(&mut self) -> Option<WeightsAction> {
        let action = self.out.pop_front()?;
        if let WeightsAction::Commit {
            id,
            weights,
            salt,
            reveal_tempo,
            ..
        } = &action
        {
            self.committing.insert(
                *id,
                PendingReveal {
                    id: *id,
                    reveal_tempo: *reveal_tempo,
                    weights: weights.clone(),
                    salt: salt.clone(),
                },
            );
        }
        Some(action)
    }

    /// Extrinsic `id` landed (`ok`) or failed: a landed commit waits for its reveal tempo; a
    /// failed one is dropped (there is nothing on chain to reveal).
    pub fn on_result(&mut self, id: u64, ok: bool) {
        if let Some(p) = self.committing.remove(&id)
            && ok
        {
            self.state.pending_reveals.push(p);
        }
    }
}
