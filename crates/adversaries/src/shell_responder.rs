//! `shell_responder`: answers with a schema-valid "shell" instead of the data its sub-calls
//! would give, and spends as little on sub-calls as it can.
//!
//! A shelled challenge's `standardized_data` is [`shell_data`]: what the target schema accepts
//! and nothing else — placeholder strings, the least numbers, the first enum choice, arrays at
//! `minItems`. Nothing in it comes from a sub-response. With
//! `subcalls = 0` it makes no sub-call at all and seals the shell over an empty pipeline; with
//! `subcalls = n` it still executes the cheapest dependency-closed part of the honest plan with at
//! most `n` steps ([`cheapest_subplan`]), for routing credit, and then re-seals the real pipeline
//! with the shell in place of the assembled data. Either way the proof verifies and every
//! committed step is real, so neither the proof nor an audit can tell: only the scoring terms
//! can. With the default weights `hash_verified`, `schema_valid` and `latency` hold for a shell
//! and `completeness` mostly does — about 5/6 of the orchestration share for free
//! (docs/findings.md) — unless `fidelity` (share of leaves traceable to a sub-response) is
//! weighted.
//!
//! A share `1 − rate` of challenges is answered honestly.
//!
//! Defence (docs/mechanism.md §4, §8): the routing term (cost and capabilities), `completeness`,
//! and `fidelity` when it is weighted.

use crate::forge::{cheapest_subplan, sealed_without_calls, shell_data, stream};
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{Answer, Strategy, StrategyCtx, honest_answer};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Response};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;

/// Ceiling of `subcalls`: more steps than any plan has.
pub const MAX_SUBCALLS: u32 = 16;

/// `shell_responder` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShellResponderParams {
    /// Probability a challenge is answered with a shell, `[0, 1]`, default 1; the rest are
    /// answered honestly.
    pub rate: f64,
    /// Most real sub-calls (plan steps) a shelled challenge still makes, cheapest first,
    /// `[0, 16]`, default 0 (none at all).
    pub subcalls: u32,
}

impl Default for ShellResponderParams {
    fn default() -> Self {
        ShellResponderParams {
            rate: 1.0,
            subcalls: 0,
        }
    }
}

impl Params for ShellResponderParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "rate",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Float,
            doc: "probability a challenge is answered with a shell",
        },
        Knob {
            name: "subcalls",
            min: 0.0,
            max: MAX_SUBCALLS as f64,
            default: 0.0,
            kind: KnobKind::Int,
            doc: "most real sub-calls a shell still makes (cheapest first)",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("rate", self.rate, 0.0, 1.0)?;
        check_range(
            "subcalls",
            f64::from(self.subcalls),
            0.0,
            f64::from(MAX_SUBCALLS),
        )
    }
}

/// Shelled challenges whose sub-calls are still running: the shell replaces their data in
/// [`Strategy::finalize`]. Far more than a miner answers concurrently.
const PENDING: usize = 64;

/// The shell_responder strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct ShellResponder {
    params: ShellResponderParams,
    rng: ChaCha8Rng,
    /// Challenges executing a cut-down plan, with the shell each will carry.
    pending: VecDeque<(Hash32, Value)>,
    shelled: u64,
}

impl ShellResponder {
    /// A shell responder with `params`; `seed` keys its own RNG stream.
    pub fn new(params: ShellResponderParams, seed: u64) -> Self {
        ShellResponder {
            params,
            rng: stream(seed, "shell_responder"),
            pending: VecDeque::new(),
            shelled: 0,
        }
    }

    /// Challenges answered with a shell so far.
    pub fn shelled(&self) -> u64 {
        self.shelled
    }
}

impl Strategy for ShellResponder {
    fn name(&self) -> &str {
        "shell_responder"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        // Drawn from the strategy's own stream, always once, so the decision sequence does not
        // depend on the driver's RNG or on which challenges could be planned.
        if !self.rng.random_bool(self.params.rate) {
            return honest_answer(ctx, challenge);
        }
        self.shelled += 1;
        let data = shell_data(&challenge.target_schema);
        let sub = ctx
            .honest_plan(challenge)
            .ok()
            .and_then(|p| cheapest_subplan(&p, self.params.subcalls as usize));
        match sub {
            Some(plan) => {
                self.pending.push_back((challenge.challenge_id, data));
                while self.pending.len() > PENDING {
                    self.pending.pop_front();
                }
                Answer::Execute(plan)
            }
            None => sealed_without_calls(ctx, challenge, data, Vec::new()),
        }
    }

    fn finalize(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        response: Response,
    ) -> Option<Response> {
        let Some(i) = self
            .pending
            .iter()
            .position(|(id, _)| *id == challenge.challenge_id)
        else {
            return Some(response);
        };
        let (_, data) = self.pending.remove(i)?;
        // Re-prove the real pipeline over the shell; the detected proposals ride along.
        match ctx.seal(
            challenge,
            response.plan.clone(),
            response.pipeline.clone(),
            data,
            response.ledger_proposals.clone(),
        ) {
            Ok(r) => Some(r),
            Err(_) => Some(response),
        }
    }
}
