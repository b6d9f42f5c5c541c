//! `stale_router`: never refreshes its Ledger view.
//!
//! It keeps a clone of the first [`LedgerView`] it is handed and plans every challenge against
//! that (the planner and router take the view as an argument, so an old one plans as well as a
//! fresh one), refreshing only every `refresh_every` answers (0 = never). It keeps routing to
//! subnets the Ledger has since deprecated or repriced and never learns of new ones.
//!
//! Defence (docs/mechanism.md §4, §8): the routing (capabilities × cost), latency and schema terms,
//! which reward what the fresh Ledger would have made possible.

use crate::forge::minimal_answer;
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{Answer, LedgerView, Strategy, StrategyCtx, honest_answer};
use orchestra_protocol::messages::Challenge;
use serde::{Deserialize, Serialize};

/// Largest `refresh_every`.
pub const MAX_REFRESH_EVERY: u64 = 1_000_000;

/// `stale_router` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaleRouterParams {
    /// Take a fresh view every this many answers, `[0, 1e6]`; 0 (default) = never.
    pub refresh_every: u64,
}

impl Params for StaleRouterParams {
    const KNOBS: &'static [Knob] = &[Knob {
        name: "refresh_every",
        min: 0.0,
        max: MAX_REFRESH_EVERY as f64,
        default: 0.0,
        kind: KnobKind::Int,
        doc: "answers between view refreshes (0 = never)",
    }];

    fn validate(&self) -> Result<(), ParamError> {
        check_range(
            "refresh_every",
            self.refresh_every as f64,
            0.0,
            MAX_REFRESH_EVERY as f64,
        )
    }
}

/// The stale_router strategy (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct StaleRouter {
    params: StaleRouterParams,
    view: Option<LedgerView>,
    answers: u64,
}

impl StaleRouter {
    /// A stale router with `params`.
    pub fn new(params: StaleRouterParams) -> Self {
        StaleRouter {
            params,
            view: None,
            answers: 0,
        }
    }

    /// The view it plans with (`None` before its first challenge).
    pub fn frozen_view(&self) -> Option<&LedgerView> {
        self.view.as_ref()
    }
}

impl Strategy for StaleRouter {
    fn name(&self) -> &str {
        "stale_router"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let refresh = self.params.refresh_every > 0
            && self.answers > 0
            && self.answers.is_multiple_of(self.params.refresh_every);
        self.answers += 1;
        if self.view.is_none() || refresh {
            self.view = Some(ctx.view.clone());
        }
        let Some(view) = self.view.as_ref() else {
            return honest_answer(ctx, challenge);
        };
        match ctx
            .planner
            .plan(&challenge.objective, view, ctx.router, ctx.block)
        {
            Ok(plan) => Answer::Execute(plan),
            // Stay stale: the fresh view is not consulted even when the old one routes nothing.
            Err(_) => minimal_answer(ctx, challenge, Vec::new()),
        }
    }
}
