//! `cherry_picker`: answers only easy objectives and declines the rest.
//!
//! "Easy" is what the miner itself can see before spending anything: the Ledger price of its
//! honest plan. A challenge is answered honestly when its kind is listed in `answer_kinds`, or
//! when its plan costs at most `max_cost_rao`; any other challenge is still answered with
//! probability `answer_rate`, else declined — or, with `hard = "shell"`, answered with the
//! cheapest sealed response (no sub-calls, the least data the schema accepts), which the
//! default weights still pay most of the share for.
//!
//! Defence (docs/mechanism.md §4, §8): a declined challenge is a missing response, scored 0 on every
//! term and folded into the EMA like any other observation.

use crate::forge::{minimal_answer, stream};
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{Answer, Strategy, StrategyCtx, honest_answer};
use orchestra_protocol::messages::Challenge;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a cherry picker does with a challenge it does not want.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hard {
    /// Do not answer.
    #[default]
    Decline,
    /// Answer with an empty shell: no sub-calls, example data, a valid proof.
    Shell,
}

/// Ceiling of `max_cost_rao` (1 TAO in rao: far above any plan).
pub const MAX_COST_CEILING_RAO: u64 = 1_000_000_000;

/// `cherry_picker` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CherryPickerParams {
    /// Objective kinds always answered (default none). Not a tuner knob: kinds are scenario
    /// data.
    pub answer_kinds: Vec<String>,
    /// Answer when the honest plan's Ledger price is at most this, rao, `[0, 1e9]`; default
    /// 1 300 000, which with the mock objectives answers `market_research` and
    /// `data_aggregation` (1.2 M each) and declines `competitive_analysis` (1.4 M).
    pub max_cost_rao: u64,
    /// Probability of answering a challenge that is not easy anyway, `[0, 1]`, default 0.
    pub answer_rate: f64,
    /// `decline` (default) or `shell` for the rest.
    pub hard: Hard,
}

impl Default for CherryPickerParams {
    fn default() -> Self {
        CherryPickerParams {
            answer_kinds: Vec::new(),
            max_cost_rao: 1_300_000,
            answer_rate: 0.0,
            hard: Hard::Decline,
        }
    }
}

impl Params for CherryPickerParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "max_cost_rao",
            min: 0.0,
            max: MAX_COST_CEILING_RAO as f64,
            default: 1_300_000.0,
            kind: KnobKind::Int,
            doc: "answer when the honest plan costs at most this",
        },
        Knob {
            name: "answer_rate",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Float,
            doc: "probability of answering a hard challenge anyway",
        },
        Knob {
            name: "hard",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["decline", "shell"]),
            doc: "decline the rest or answer them with an empty shell",
        },
    ];

    const EXTRA_KEYS: &'static [(&'static str, &'static str)] =
        &[("answer_kinds", "a list of objective kinds (strings)")];

    fn validate(&self) -> Result<(), ParamError> {
        check_range(
            "max_cost_rao",
            self.max_cost_rao as f64,
            0.0,
            MAX_COST_CEILING_RAO as f64,
        )?;
        check_range("answer_rate", self.answer_rate, 0.0, 1.0)
    }
}

/// The cherry_picker strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct CherryPicker {
    params: CherryPickerParams,
    rng: ChaCha8Rng,
    declined: u64,
}

impl CherryPicker {
    /// A cherry picker with `params`; `seed` keys its own RNG stream.
    pub fn new(params: CherryPickerParams, seed: u64) -> Self {
        CherryPicker {
            params,
            rng: stream(seed, "cherry_picker"),
            declined: 0,
        }
    }

    /// Challenges not answered honestly so far (declined or shelled).
    pub fn declined(&self) -> u64 {
        self.declined
    }
}

impl Strategy for CherryPicker {
    fn name(&self) -> &str {
        "cherry_picker"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let kind = &challenge.objective.kind;
        let listed = self.params.answer_kinds.iter().any(|k| k == kind);
        let plan = ctx.honest_plan(challenge);
        let cheap = plan.as_ref().is_ok_and(|p| {
            p.routes
                .iter()
                .filter_map(|r| r.first())
                .fold(0u64, |acc, r| acc.saturating_add(r.cost_rao))
                <= self.params.max_cost_rao
        });
        // Always draw, so the stream does not depend on which challenges were easy.
        let anyway = self.rng.random_bool(self.params.answer_rate);
        if listed || cheap || anyway {
            match plan {
                Ok(p) => Answer::Execute(p),
                Err(_) => honest_answer(ctx, challenge),
            }
        } else {
            self.declined += 1;
            match self.params.hard {
                Hard::Decline => Answer::Decline,
                Hard::Shell => minimal_answer(ctx, challenge, Vec::new()),
            }
        }
    }
}
