//! `ledger_only`: does the Ledger only.
//!
//! Ledger credit needs two things: evidence (live calls to subnets, which the miner core's
//! proposal detector diffs against the Ledger) and a carrier (proposals ride in responses). So a
//! Ledger-only miner must still answer — just not orchestrate. It executes a plan of `steps`
//! independent probe calls instead of the objective's DAG, and returns whatever data those give
//! plus the detector's proposals:
//! - `target = "stalest"` (default): one call to each of the next `steps` Ledger entries in
//!   order of staleness (oldest `last_verified_block` first), rotating, so every entry is probed
//!   in turn whatever the objective — the way to catch changes anywhere first;
//! - `target = "objective"`: the `steps` cheapest steps of the honest plan, dependencies cut —
//!   evidence only about subnets the objective uses, at the least cost.
//!
//! Defence (docs/mechanism.md §4, §7, §8): the routing, schema and completeness terms of a response
//! that did not do the work, so its orchestration score stays low and the split caps it near
//! `1 − s`.

use crate::forge::minimal_answer;
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{Answer, Route, RoutedPlan, Strategy, StrategyCtx};
use orchestra_protocol::ledger::{Entry, Status};
use orchestra_protocol::messages::{Challenge, Plan, PlanStep};
use serde::{Deserialize, Serialize};

/// Where a ledger_only miner looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Rotate over the Ledger's entries, stalest first.
    #[default]
    Stalest,
    /// The cheapest steps of the objective's honest plan.
    Objective,
}

/// Most probe calls per challenge.
pub const MAX_STEPS: u32 = 16;

/// `ledger_only` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerOnlyParams {
    /// `stalest` or `objective`, default `stalest`.
    pub target: Target,
    /// Probe calls per challenge, `[1, 16]`, default 1.
    pub steps: u32,
}

impl Default for LedgerOnlyParams {
    fn default() -> Self {
        LedgerOnlyParams {
            target: Target::Stalest,
            steps: 1,
        }
    }
}

impl Params for LedgerOnlyParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "target",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["stalest", "objective"]),
            doc: "probe the stalest Ledger entries or the objective's cheapest steps",
        },
        Knob {
            name: "steps",
            min: 1.0,
            max: MAX_STEPS as f64,
            default: 1.0,
            kind: KnobKind::Int,
            doc: "probe calls per challenge",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("steps", f64::from(self.steps), 1.0, f64::from(MAX_STEPS))
    }
}

/// The ledger_only strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct LedgerOnly {
    params: LedgerOnlyParams,
    cursor: usize,
}

impl LedgerOnly {
    /// A ledger_only miner with `params`.
    pub fn new(params: LedgerOnlyParams) -> Self {
        LedgerOnly { params, cursor: 0 }
    }

    fn stalest(&mut self, ctx: &StrategyCtx<'_>) -> Option<RoutedPlan> {
        let mut live: Vec<&Entry> = ctx
            .view
            .entries()
            .filter(|e| e.status != Status::Deprecated && !e.endpoints.is_empty())
            .collect();
        if live.is_empty() {
            return None;
        }
        live.sort_by_key(|e| (e.last_verified_block, e.netuid));
        let n = (self.params.steps as usize).min(live.len());
        let mut plan = Plan::default();
        let mut routes = Vec::new();
        for j in 0..n {
            let Some(e) = live.get((self.cursor + j) % live.len()) else {
                continue;
            };
            // Rotate over an entry's endpoints too, one per visit.
            let index = (self.cursor / live.len()) % e.endpoints.len();
            let Some(ep) = e.endpoints.get(index) else {
                continue;
            };
            let m = e.metrics;
            plan.steps.push(PlanStep {
                id: format!("probe_{}_{}", e.netuid, ep.name),
                capability: ep.capability.clone(),
                netuid: e.netuid,
                endpoint: ep.name.clone(),
                depends_on: Vec::new(),
            });
            routes.push(vec![Route {
                netuid: e.netuid,
                endpoint: ep.name.clone(),
                endpoint_index: index,
                cost_rao: m.cost_per_query_rao,
                p50_latency_ms: m.p50_latency_ms,
                p95_latency_ms: m.p95_latency_ms.max(m.p50_latency_ms),
                reliability: m.reliability,
                deterministic: ep.deterministic,
                stale: false,
                score: 0.0,
                input_shape: ctx.view.input_shape(e.netuid, index).cloned(),
            }]);
        }
        self.cursor = self.cursor.wrapping_add(n);
        (!plan.steps.is_empty()).then_some(RoutedPlan { plan, routes })
    }

    fn cheapest(&self, ctx: &StrategyCtx<'_>, challenge: &Challenge) -> Option<RoutedPlan> {
        let full = ctx.honest_plan(challenge).ok()?;
        let mut order: Vec<usize> = (0..full.plan.steps.len()).collect();
        order.sort_by_key(|&i| {
            full.routes
                .get(i)
                .and_then(|r| r.first())
                .map_or(u64::MAX, |r| r.cost_rao)
        });
        order.truncate(self.params.steps as usize);
        order.sort_unstable();
        let mut plan = Plan::default();
        let mut routes = Vec::new();
        for i in order {
            if let (Some(step), Some(r)) = (full.plan.steps.get(i), full.routes.get(i)) {
                let mut step = step.clone();
                step.depends_on.clear();
                plan.steps.push(step);
                routes.push(r.clone());
            }
        }
        (!plan.steps.is_empty()).then_some(RoutedPlan { plan, routes })
    }
}

impl Strategy for LedgerOnly {
    fn name(&self) -> &str {
        "ledger_only"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let plan = match self.params.target {
            Target::Stalest => self.stalest(ctx),
            Target::Objective => self.cheapest(ctx, challenge),
        };
        match plan {
            Some(p) => Answer::Execute(p),
            None => minimal_answer(ctx, challenge, Vec::new()),
        }
    }
}
