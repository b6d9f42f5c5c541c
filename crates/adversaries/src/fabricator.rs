//! `fabricator`: skips sub-calls and invents their responses (schema-shaped, cheap).
//!
//! It plans honestly and runs the execution state machine, but answers the chosen steps' calls
//! itself ([`CallAction::Substitute`]) with the endpoint's Ledger output schema filled from the
//! request: the proof is valid (it commits to what the miner claims), so only a re-execution
//! (audit) or a receipt can expose it. It claims the Ledger price of each invented call, so its
//! routing term looks honest while it pays nothing.
//!
//! The per-challenge bookkeeping is [`Inventions`], which
//! [`invented_step`](crate::invented_step) shares: that strategy invents only where an audit
//! cannot compare exactly, and never falls back to a deterministic step.
//!
//! Defence (docs/mechanism.md §3, §8): audits, receipts, fabrication strikes.

use crate::forge::{Inventions, stream};
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{Answer, CallAction, Strategy, StrategyCtx, SubCall, honest_answer};
use orchestra_protocol::messages::Challenge;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which steps of a fabricated challenge are invented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steps {
    /// One step (see [`Pick`]); the rest are executed honestly.
    #[default]
    One,
    /// Every step: no sub-call is paid for.
    All,
}

/// Which step `steps = "one"` invents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The plan's first step.
    #[default]
    First,
    /// The first step routed to a non-deterministic endpoint (else the first step): audits of
    /// such endpoints only compare the output schema and `stable` fields, so an invented
    /// response that echoes those survives them.
    Nondeterministic,
}

/// `fabricator` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FabricatorParams {
    /// Probability a challenge is fabricated, `[0, 1]`, default 1.
    pub rate: f64,
    /// `one` or `all` steps invented, default `one`.
    pub steps: Steps,
    /// Which step `one` invents: `first` or `nondeterministic`, default `first`.
    pub pick: Pick,
}

impl Default for FabricatorParams {
    fn default() -> Self {
        FabricatorParams {
            rate: 1.0,
            steps: Steps::One,
            pick: Pick::First,
        }
    }
}

impl Params for FabricatorParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "rate",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Float,
            doc: "probability a challenge is fabricated",
        },
        Knob {
            name: "steps",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["one", "all"]),
            doc: "invent one step or all of them",
        },
        Knob {
            name: "pick",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["first", "nondeterministic"]),
            doc: "which step `one` invents",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("rate", self.rate, 0.0, 1.0)
    }
}

/// The fabricator strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct Fabricator {
    params: FabricatorParams,
    inventions: Inventions,
    rng: ChaCha8Rng,
}

impl Fabricator {
    /// A fabricator with `params`; `seed` keys its own RNG stream.
    pub fn new(params: FabricatorParams, seed: u64) -> Self {
        Fabricator {
            params,
            inventions: Inventions::default(),
            rng: stream(seed, "fabricator"),
        }
    }

    /// Sub-responses invented so far (for tests and reports).
    pub fn invented(&self) -> u64 {
        self.inventions.invented()
    }
}

impl Strategy for Fabricator {
    fn name(&self) -> &str {
        "fabricator"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let Ok(routed) = ctx.honest_plan(challenge) else {
            return honest_answer(ctx, challenge);
        };
        // Drawn from the strategy's own stream, so the decision sequence does not depend on how
        // the driver shares its RNG.
        if !self.rng.random_bool(self.params.rate) {
            return Answer::Execute(routed);
        }
        let chosen: Vec<usize> = match self.params.steps {
            Steps::All => (0..routed.plan.steps.len()).collect(),
            Steps::One => {
                let nondet = routed
                    .routes
                    .iter()
                    .position(|r| r.first().is_some_and(|r| !r.deterministic));
                let i = match self.params.pick {
                    Pick::Nondeterministic => nondet.unwrap_or(0),
                    Pick::First => 0,
                };
                vec![i]
            }
        };
        // Every route of a chosen step is invented, fallbacks included: the fabricator never
        // pays for a chosen step.
        self.inventions
            .register(ctx, challenge, &routed, chosen, |_| true);
        Answer::Execute(routed)
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        self.inventions.on_subcall(call)
    }
}
