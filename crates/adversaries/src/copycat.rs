//! `copycat`: answers with another miner's response, fed through
//! [`observe_peer`](Strategy::observe_peer).
//!
//! With `reseal = false` it sends the copy relabelled (its challenge id and hotkey) but with the
//! original proof, which `lock0` binds to the original challenge, salt and miner. With
//! `reseal = true` it re-proves the copied pipeline and data under its own lock, shifting every
//! step's timestamps by the difference between the two challenges' issue times so they fall in
//! the new challenge window (and dropping receipts, which sign the old timestamps): the proof
//! verifies, but the sub-response hashes were already seen in another miner's response.
//!
//! A resealed copy claims its steps ran from the new challenge's issue time on, so a driver must
//! not deliver it before its last step's claimed end (see
//! [`Copycat::ready_at_ms`]); a live copycat would simply wait that long.
//!
//! Defence (docs/mechanism.md §3 checks 1 and 4): `lock0` binding, response-hash dedup.

use crate::forge::objective_key;
use crate::params::{Knob, KnobKind, ParamError, Params};
use orchestra_miner::{Answer, Strategy, StrategyCtx, honest_answer};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Response};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// What a copycat does when it has nothing to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Answer honestly.
    #[default]
    Honest,
    /// Do not answer.
    Decline,
}

/// `copycat` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CopycatParams {
    /// Re-prove the copy under its own lock with shifted timestamps (default true) rather than
    /// sending it as is.
    pub reseal: bool,
    /// `honest` or `decline` when nothing was observed, default `honest`.
    pub fallback: Fallback,
    /// Only copy responses to the same objective (default false: any recent response will do,
    /// which is all a copycat of another round can get).
    pub same_objective_only: bool,
}

impl Default for CopycatParams {
    fn default() -> Self {
        CopycatParams {
            reseal: true,
            fallback: Fallback::Honest,
            same_objective_only: false,
        }
    }
}

impl Params for CopycatParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "reseal",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Bool,
            doc: "re-prove the copy under its own lock instead of sending it as is",
        },
        Knob {
            name: "fallback",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["honest", "decline"]),
            doc: "what to do with nothing to copy",
        },
        Knob {
            name: "same_objective_only",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Bool,
            doc: "only copy answers to the same objective",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// Responses remembered for copying.
pub const OBSERVED: usize = 16;

/// The copycat strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct Copycat {
    params: CopycatParams,
    observed: VecDeque<(Hash32, u64, Response)>,
    ready_at_ms: u64,
}

impl Copycat {
    /// A copycat with `params`.
    pub fn new(params: CopycatParams) -> Self {
        Copycat {
            params,
            observed: VecDeque::new(),
            ready_at_ms: 0,
        }
    }

    /// The claimed end of the last copied pipeline: the earliest time the last copy can be
    /// delivered without failing the challenge-window check.
    pub fn ready_at_ms(&self) -> u64 {
        self.ready_at_ms
    }

    fn pick(&self, challenge: &Challenge) -> Option<&(Hash32, u64, Response)> {
        let key = objective_key(&challenge.objective);
        let same = self.observed.iter().rev().find(|(k, _, _)| *k == key);
        if self.params.same_objective_only {
            same
        } else {
            same.or_else(|| self.observed.back())
        }
    }
}

impl Strategy for Copycat {
    fn name(&self) -> &str {
        "copycat"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let Some((_, issued_at, source)) = self.pick(challenge).cloned() else {
            return match self.params.fallback {
                Fallback::Honest => honest_answer(ctx, challenge),
                Fallback::Decline => Answer::Decline,
            };
        };
        if !self.params.reseal {
            let mut r = source;
            r.challenge_id = challenge.challenge_id;
            r.miner = ctx.miner.to_string();
            self.ready_at_ms = ctx.now_ms;
            return Answer::Respond(Box::new(r));
        }
        let mut pipeline = source.pipeline;
        for step in &mut pipeline {
            let offset = step.started_at_ms.saturating_sub(issued_at);
            step.started_at_ms = challenge.issued_at_ms.saturating_add(offset);
            step.receipt = None;
        }
        self.ready_at_ms = pipeline
            .iter()
            .map(|s| s.finished_at_ms())
            .max()
            .unwrap_or(ctx.now_ms)
            .max(ctx.now_ms);
        match ctx.seal(
            challenge,
            source.plan,
            pipeline,
            source.standardized_data,
            Vec::new(),
        ) {
            Ok(r) => Answer::Respond(Box::new(r)),
            Err(_) => honest_answer(ctx, challenge),
        }
    }

    fn observe_peer(&mut self, challenge: &Challenge, response: &Response) {
        self.observed.push_back((
            objective_key(&challenge.objective),
            challenge.issued_at_ms,
            response.clone(),
        ));
        if self.observed.len() > OBSERVED {
            self.observed.pop_front();
        }
    }
}
