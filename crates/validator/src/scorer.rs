//! [`Scorer`]: per-challenge orchestration terms (docs/mechanism.md §4), per-tempo Ledger terms (§6),
//! EMAs and strikes (§7).
//!
//! Outcomes of one challenge, in order of precedence:
//! - no response, or later than deadline + grace: every term 0;
//! - a failed audit (check 5): a **fabrication strike** (an all-zero observation, then the
//!   orchestration EMA × `strike_penalty`);
//! - checks 1–4 failed (bad proof, copied or replayed sub-responses): every term 0 when
//!   [`ScorerConfig::unverified_zeroes_challenge`] (the default). docs/mechanism.md lists
//!   `hash_verified` as one term among six, but scoring the rest of an unproven response would
//!   pay a copycat two thirds of an honest score for free; the flag exists for the harness to
//!   measure exactly that;
//! - otherwise the six terms, computed here.
//!
//! Target schemas are compiled once and cached by content; the reference plan and cost
//! come from the objective templates.

use crate::audit::AuditReport;
use orchestra_mechanism::ledger::{LedgerTerms, LedgerWindow, ProposalRecord, Verdict};
use orchestra_mechanism::orchestration::{
    OrchestrationTerms, f1, fidelity, gate_factor, hash_verified, latency, routing,
    schema_valid_from_counts,
};
use orchestra_mechanism::schema::{LeafPath, leaf_fields, path_satisfied, required_leaf_paths};
use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_mechanism::{EmaBook, MechanismParams};
use orchestra_protocol::messages::{Challenge, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Scorer knobs not in [`MechanismParams`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScorerConfig {
    /// A response failing checks 1–4 scores 0 on every term (default true).
    pub unverified_zeroes_challenge: bool,
    /// Most target schemas kept compiled (default 256); the cache is cleared when full.
    pub schema_cache_size: usize,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            unverified_zeroes_challenge: true,
            schema_cache_size: 256,
        }
    }
}

/// What happened to one challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChallengeOutcome {
    /// Scored on its terms.
    Scored,
    /// No response.
    Missing,
    /// Later than deadline + grace.
    Late,
    /// Checks 1–4 failed (proof, copy, replay).
    Unverified,
    /// Check 5 failed: fabrication strike.
    Struck,
}

/// One challenge's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChallengeScore {
    /// What happened.
    pub outcome: ChallengeOutcome,
    /// The terms observed into the EMA.
    pub terms: OrchestrationTerms,
    /// `Σ effective_w · term`, in `[0, s]`.
    pub score: f64,
}

#[derive(Debug)]
struct CompiledTarget {
    validator: Option<jsonschema::Validator>,
    leaf_fields: usize,
    required: Vec<LeafPath>,
}

#[derive(Debug, Clone)]
struct Reference {
    capabilities: BTreeSet<&'static str>,
    cost_rao: u64,
}

/// The durable part of a [`Scorer`]: EMAs, the Ledger window and the open tempo's activity.
/// A node writes it to disk and gives it back to [`Scorer::restore`] after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorerState {
    /// Every miner's term EMAs.
    pub ema: EmaBook,
    /// The last `W` tempos of Ledger activity.
    pub window: LedgerWindow,
    /// Verdicts recorded in the open tempo.
    pub tempo_proposals: Vec<ProposalRecord>,
    /// Verified routed steps per netuid in the open tempo.
    pub tempo_routed: BTreeMap<u16, u64>,
}

/// Per-miner scoring state of one validator.
#[derive(Debug)]
pub struct Scorer {
    params: MechanismParams,
    config: ScorerConfig,
    ema: EmaBook,
    window: LedgerWindow,
    tempo_proposals: Vec<ProposalRecord>,
    tempo_routed: BTreeMap<u16, u64>,
    references: BTreeMap<String, Reference>,
    /// Compiled target schemas, most recently used first, found by equality: comparing a
    /// schema with the few cached ones costs less than hashing it for every challenge.
    targets: Vec<(Value, Arc<CompiledTarget>)>,
}

impl Scorer {
    /// A scorer with `params`, knowing `templates`' reference plans.
    pub fn new<'a>(
        params: MechanismParams,
        config: ScorerConfig,
        templates: impl IntoIterator<Item = &'a ObjectiveTemplate>,
    ) -> Self {
        let references = templates
            .into_iter()
            .map(|t| {
                (
                    t.kind.clone(),
                    Reference {
                        capabilities: t
                            .reference_plan
                            .iter()
                            .map(|s| s.capability.tag())
                            .collect(),
                        cost_rao: t.reference_cost_rao,
                    },
                )
            })
            .collect();
        Scorer {
            window: LedgerWindow::new(params.ledger_window_tempos),
            params,
            config,
            ema: EmaBook::new(),
            tempo_proposals: Vec::new(),
            tempo_routed: BTreeMap::new(),
            references,
            targets: Vec::new(),
        }
    }

    /// The mechanism parameters.
    pub fn params(&self) -> &MechanismParams {
        &self.params
    }

    /// Every miner's term EMAs.
    pub fn ema(&self) -> &EmaBook {
        &self.ema
    }

    /// `(O_i, L_i)` per observed miner.
    pub fn scores(&self) -> BTreeMap<u16, (f64, f64)> {
        self.ema.scores(&self.params)
    }

    /// The durable state (see [`ScorerState`]).
    pub fn state(&self) -> ScorerState {
        ScorerState {
            ema: self.ema.clone(),
            window: self.window.clone(),
            tempo_proposals: self.tempo_proposals.clone(),
            tempo_routed: self.tempo_routed.clone(),
        }
    }

    /// Replace the durable state with `state` (as [`Scorer::state`] returned it before a
    /// restart); parameters, templates and the schema cache stay as built.
    pub fn restore(&mut self, state: ScorerState) {
        self.ema = state.ema;
        self.window = state.window;
        self.tempo_proposals = state.tempo_proposals;
        self.tempo_routed = state.tempo_routed;
    }

    /// Forget a deregistered miner.
    pub fn remove_miner(&mut self, uid: u16) {
        self.ema.remove(uid);
    }

    fn target(&mut self, schema: &Value) -> Option<Arc<CompiledTarget>> {
        if let Some(i) = self.targets.iter().position(|(s, _)| s == schema) {
            self.targets[..=i].rotate_right(1);
            return Some(self.targets[0].1.clone());
        }
        if self.targets.len() >= self.config.schema_cache_size.max(1) {
            self.targets.clear();
        }
        let t = Arc::new(CompiledTarget {
            validator: jsonschema::draft202012::new(schema).ok(),
            leaf_fields: leaf_fields(schema),
            required: required_leaf_paths(schema),
        });
        self.targets.insert(0, (schema.clone(), t.clone()));
        Some(t)
    }

    /// The six terms of a verified `response` to `challenge` received at `received_at_ms`.
    pub fn terms(
        &mut self,
        challenge: &Challenge,
        response: &Response,
        received_at_ms: u64,
        verified: bool,
    ) -> OrchestrationTerms {
        let data = &response.standardized_data;
        let (schema_valid, completeness) = match self.target(&challenge.target_schema) {
            Some(t) => {
                let sv = match &t.validator {
                    Some(v) => schema_valid_from_counts(v.iter_errors(data).count(), t.leaf_fields),
                    None => 0.0,
                };
                let c = if t.required.is_empty() {
                    1.0
                } else {
                    t.required
                        .iter()
                        .filter(|p| path_satisfied(data, p))
                        .count() as f64
                        / t.required.len() as f64
                };
                (sv, c)
            }
            None => (0.0, 0.0),
        };
        // Capabilities actually executed: plan steps that appear in the pipeline.
        let ran: BTreeSet<&str> = response
            .pipeline
            .iter()
            .map(|s| s.step_id.as_str())
            .collect();
        let used: BTreeSet<&str> = response
            .plan
            .steps
            .iter()
            .filter(|s| ran.contains(s.id.as_str()))
            .map(|s| s.capability.as_str())
            .collect();
        let (routing_term, execution) = match self.references.get(&challenge.objective.kind) {
            Some(r) => (
                routing(
                    &used,
                    &r.capabilities,
                    r.cost_rao,
                    response.total_cost_rao(),
                    self.params.routing_gamma,
                ),
                f1(&used, &r.capabilities),
            ),
            // An organic objective has no reference plan: any executed plan gets full routing.
            None => {
                let any = f64::from(u8::from(!used.is_empty()));
                (any, any)
            }
        };
        let total_ms = received_at_ms.saturating_sub(challenge.issued_at_ms);
        // The gate needs fidelity even when the term itself carries no weight.
        let fidelity_term = if self.params.orchestration_weights.fidelity > 0.0
            || self.params.fidelity_gate > 0.0
        {
            let subs = response
                .pipeline
                .iter()
                .filter_map(|s| s.response.as_deref());
            fidelity(data, subs)
        } else {
            0.0
        };
        let terms = OrchestrationTerms {
            hash_verified: hash_verified(verified),
            schema_valid,
            completeness,
            routing: routing_term,
            latency: latency(total_ms, challenge.deadline_ms, self.params.latency_mode),
            fidelity: fidelity_term,
        }
        .sanitized();
        terms.gated(gate_factor(&self.params, terms.fidelity, execution))
    }

    /// Score one challenge of miner `uid` and fold it into the EMAs. `response` is `None` when
    /// the miner did not answer (or failed btauth/1); `report` is the audit of `response`.
    pub fn score_challenge(
        &mut self,
        uid: u16,
        challenge: &Challenge,
        response: Option<&Response>,
        report: Option<&AuditReport>,
    ) -> ChallengeScore {
        let (outcome, terms) = match (response, report) {
            (None, _) | (Some(_), None) => (ChallengeOutcome::Missing, OrchestrationTerms::ZERO),
            (Some(_), Some(r)) if r.late => (ChallengeOutcome::Late, OrchestrationTerms::ZERO),
            (Some(_), Some(r)) if r.audit_failed() => {
                (ChallengeOutcome::Struck, OrchestrationTerms::ZERO)
            }
            (Some(resp), Some(r)) => {
                let verified = r.hash_verified();
                if !verified && self.config.unverified_zeroes_challenge {
                    (ChallengeOutcome::Unverified, OrchestrationTerms::ZERO)
                } else {
                    let t = self.terms(challenge, resp, r.received_at_ms, verified);
                    if verified {
                        for s in &resp.pipeline {
                            *self.tempo_routed.entry(s.netuid).or_default() += 1;
                        }
                    }
                    let outcome = if verified {
                        ChallengeOutcome::Scored
                    } else {
                        ChallengeOutcome::Unverified
                    };
                    (outcome, t)
                }
            }
        };
        if outcome == ChallengeOutcome::Struck {
            self.ema.fabrication_strike(uid, &self.params);
        } else {
            self.ema
                .observe_orchestration(uid, &terms, self.params.ema_alpha);
        }
        ChallengeScore {
            outcome,
            terms,
            score: terms.score(&self.params),
        }
    }

    /// Record one verified proposal verdict for the current tempo.
    pub fn record_proposal(&mut self, record: ProposalRecord) {
        if record.verdict == Verdict::Rejected {
            // Verdict records exist only for proposals the proposer answers for; a rejected one
            // was slashed.
            self.ema.proposal_strike(record.miner, &self.params);
        }
        self.tempo_proposals.push(record);
    }

    /// Close the tempo: push its verdicts and routed steps into the window and observe every
    /// miner in `miners` (plus every miner with window activity) on its Ledger terms; a miner
    /// with no proposal in the window observes zeros, so Ledger credit fades once earned.
    pub fn end_tempo(&mut self, miners: &[u16]) -> BTreeMap<u16, LedgerTerms> {
        self.window.push_tempo(
            std::mem::take(&mut self.tempo_proposals),
            std::mem::take(&mut self.tempo_routed),
        );
        let mut terms = self.window.terms(&self.params);
        for &uid in miners {
            terms.entry(uid).or_default();
        }
        for (&uid, t) in &terms {
            self.ema.observe_ledger(uid, t, self.params.ema_alpha);
        }
        terms
    }
}
