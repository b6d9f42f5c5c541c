//! [`Planner`]: objective + Ledger view → a routed plan DAG.
//!
//! The decomposition of a known objective kind is its template's reference plan (the routing
//! term rewards exactly those capabilities, so an honest miner has no reason to deviate); an
//! unknown kind (an organic request) gets a generic search → synthesis plan. Each step is then
//! routed; a step whose capability nothing serves is dropped and its dependents inherit its
//! dependencies, so one missing subnet costs one capability, not the whole answer.

use crate::router::{Route, Router};
use crate::view::LedgerView;
use orchestra_mechanism::templates::{Capability, ObjectiveTemplate, ReferenceStep};
use orchestra_protocol::messages::{Objective, Plan, PlanStep};
use std::collections::BTreeMap;

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanningError {
    /// No capability of the decomposition is served by any routable endpoint.
    #[error("no capability of objective kind {kind:?} can be routed")]
    Unroutable {
        /// The objective kind.
        kind: String,
    },
}

/// A plan with, for each step (same order as `plan.steps`), its ranked routes: the first is the
/// one the step names, the rest are fallbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedPlan {
    /// The plan DAG.
    pub plan: Plan,
    /// Ranked routes per step, parallel to `plan.steps`; never empty.
    pub routes: Vec<Vec<Route>>,
}

/// Decomposes objectives into capability DAGs.
#[derive(Debug, Clone)]
pub struct Planner {
    decompositions: BTreeMap<String, Vec<ReferenceStep>>,
    generic: Vec<ReferenceStep>,
}

impl Default for Planner {
    fn default() -> Self {
        Planner::new(std::iter::empty())
    }
}

impl Planner {
    /// A planner knowing `templates`' reference decompositions.
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a ObjectiveTemplate>) -> Self {
        let decompositions = templates
            .into_iter()
            .map(|t| (t.kind.clone(), t.reference_plan.clone()))
            .collect();
        let generic = vec![
            ReferenceStep {
                id: "search".into(),
                capability: Capability::WebSearch,
                depends_on: vec![],
            },
            ReferenceStep {
                id: "synthesis".into(),
                capability: Capability::LlmSynthesis,
                depends_on: vec!["search".into()],
            },
        ];
        Planner {
            decompositions,
            generic,
        }
    }

    /// The capability decomposition used for objective `kind`.
    pub fn decomposition(&self, kind: &str) -> &[ReferenceStep] {
        self.decompositions
            .get(kind)
            .map_or(self.generic.as_slice(), Vec::as_slice)
    }

    /// Plan `objective` against `view` at `current_block`.
    pub fn plan(
        &self,
        objective: &Objective,
        view: &LedgerView,
        router: &Router,
        current_block: u64,
    ) -> Result<RoutedPlan, PlanningError> {
        let steps = self.decomposition(&objective.kind);
        // Dependencies after dropping unroutable steps, resolved through dropped ones. The
        // decomposition lists dependencies before dependents, so one pass suffices.
        let mut resolved: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
        let mut plan = Plan::default();
        let mut routes = Vec::new();
        for step in steps {
            let mut deps: Vec<String> = Vec::new();
            for d in &step.depends_on {
                match resolved.get(d.as_str()) {
                    Some(None) => deps.push(d.clone()),
                    Some(Some(inherited)) => deps.extend(inherited.iter().cloned()),
                    None => {}
                }
            }
            deps.sort();
            deps.dedup();
            let candidates = router.routes(view, step.capability.tag(), current_block);
            match candidates.first() {
                Some(primary) => {
                    plan.steps.push(PlanStep {
                        id: step.id.clone(),
                        capability: step.capability.tag().to_string(),
                        netuid: primary.netuid,
                        endpoint: primary.endpoint.clone(),
                        depends_on: deps,
                    });
                    routes.push(candidates);
                    resolved.insert(step.id.as_str(), None);
                }
                None => {
                    resolved.insert(step.id.as_str(), Some(deps));
                }
            }
        }
        if plan.steps.is_empty() {
            return Err(PlanningError::Unroutable {
                kind: objective.kind.clone(),
            });
        }
        Ok(RoutedPlan { plan, routes })
    }
}
