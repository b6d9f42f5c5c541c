//! Orchestration scoring terms, per challenge (docs/mechanism.md §4).
//!
//! Every term lies in `[0, 1]`; [`OrchestrationTerms::sanitized`] maps NaN to 0 and clamps, so a
//! malformed input can never push a NaN towards the weights. A response that is missing, later than
//! the deadline by more than the grace period, or fails btauth/1 scores [`OrchestrationTerms::ZERO`].
//!
//! # Invariants
//!
//! Checked with `debug_assert!` (every debug build and test; free in release):
//! - every term function returns a value in `[0, 1]` (never NaN) — checked on the value computed,
//!   before any final clamp, wherever the arithmetic itself guarantees the range;
//! - [`OrchestrationTerms::score`] lies in `[0, Σ effective weights]`, which is `[0, s]`
//!   (`s` = `orchestration_share`) whenever the term weights are non-negative, as
//!   [`MechanismParams::validate`] requires.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::params::{LatencyMode, MechanismParams};
use crate::schema::{SchemaError, leaf_fields, required_leaf_paths};

/// A failure computing a JSON-Schema-based term.
#[derive(Debug, Error)]
pub enum TermError {
    /// The target schema itself is unusable.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// The six orchestration terms of one challenge (or their EMAs), each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct OrchestrationTerms {
    /// 1 if the hash-locked proof verified (§3), else 0.
    pub hash_verified: f64,
    /// `1 − min(1, errors / leaf_fields)`.
    pub schema_valid: f64,
    /// Required leaf fields present and non-null ÷ required leaf fields.
    pub completeness: f64,
    /// `F1(capabilities) × min(1, ref_cost / cost)^γ`.
    pub routing: f64,
    /// 1 within the deadline; 0 (or linearly decaying) after.
    pub latency: f64,
    /// Share of leaf values traceable to a committed sub-response.
    pub fidelity: f64,
}

impl OrchestrationTerms {
    /// All terms zero: a missing, too-late, unauthenticated or failed-audit response.
    pub const ZERO: Self = Self {
        hash_verified: 0.0,
        schema_valid: 0.0,
        completeness: 0.0,
        routing: 0.0,
        latency: 0.0,
        fidelity: 0.0,
    };

    /// The terms in order (hash, schema, completeness, routing, latency, fidelity).
    pub fn as_array(&self) -> [f64; 6] {
        [
            self.hash_verified,
            self.schema_valid,
            self.completeness,
            self.routing,
            self.latency,
            self.fidelity,
        ]
    }

    /// Builds terms from an array in [`Self::as_array`] order.
    pub fn from_array(a: [f64; 6]) -> Self {
        Self {
            hash_verified: a[0],
            schema_valid: a[1],
            completeness: a[2],
            routing: a[3],
            latency: a[4],
            fidelity: a[5],
        }
    }

    /// The terms under a gate (docs/mechanism.md §4): every term but `fidelity` multiplied by
    /// `factor` (from [`gate_factor`]). A factor of 1 returns the terms bit for bit.
    pub fn gated(&self, factor: f64) -> Self {
        let f = unit("gate factor", clamp01(factor));
        Self {
            hash_verified: self.hash_verified * f,
            schema_valid: self.schema_valid * f,
            completeness: self.completeness * f,
            routing: self.routing * f,
            latency: self.latency * f,
            fidelity: self.fidelity,
        }
    }

    /// Every term clamped to `[0, 1]`, NaN mapped to 0.
    pub fn sanitized(&self) -> Self {
        Self::from_array(self.as_array().map(clamp01))
    }

    /// The weighted orchestration score `O = Σ effective_w(t) · term(t)`, in `[0, s]`
    /// (see [`MechanismParams::effective_orchestration_weights`]).
    pub fn score(&self, params: &MechanismParams) -> f64 {
        let w = params.effective_orchestration_weights();
        let score = clamp_finite(
            self.sanitized()
                .as_array()
                .iter()
                .zip(w)
                .map(|(t, w)| t * w)
                .sum(),
        );
        debug_assert_score_within(score, &w);
        score
    }
}

/// `x`, checked in debug builds to lie in `[0, 1]` (the range of every term).
pub(crate) fn unit(term: &str, x: f64) -> f64 {
    debug_assert!((0.0..=1.0).contains(&x), "{term} = {x}, outside [0, 1]");
    x
}

/// A weighted score `Σ w·t` of terms in `[0, 1]` lies in `[0, Σ w]` when no weight is negative.
pub(crate) fn debug_assert_score_within(score: f64, weights: &[f64]) {
    if cfg!(debug_assertions) && weights.iter().all(|w| *w >= 0.0) {
        let max: f64 = weights.iter().sum();
        debug_assert!(
            (0.0..=max * (1.0 + 1e-12)).contains(&score),
            "score {score} outside [0, {max}]"
        );
    }
}

/// Clamps to `[0, 1]`, mapping NaN to 0.
pub fn clamp01(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

/// Maps NaN and ±inf to 0 and negatives to 0.
pub(crate) fn clamp_finite(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 { x } else { 0.0 }
}

/// `hash_verified`: 1 if the proof verified, else 0.
pub fn hash_verified(verified: bool) -> f64 {
    if verified { 1.0 } else { 0.0 }
}

/// `schema_valid = 1 − min(1, errors / leaf_fields)`. A schema with no leaves counts as one leaf,
/// so any error then gives 0.
pub fn schema_valid_from_counts(errors: usize, leaf_fields: usize) -> f64 {
    let leaves = leaf_fields.max(1) as f64;
    unit("schema_valid", 1.0 - (errors as f64 / leaves).min(1.0))
}

/// Number of JSON Schema (2020-12) validation errors of `data` against `schema`.
pub fn schema_errors(schema: &Value, data: &Value) -> Result<usize, TermError> {
    let validator =
        jsonschema::draft202012::new(schema).map_err(|e| SchemaError::Invalid(e.to_string()))?;
    Ok(validator.iter_errors(data).count())
}

/// `schema_valid` of `data` against `schema`: validation errors over [`leaf_fields`].
pub fn schema_valid(schema: &Value, data: &Value) -> Result<f64, TermError> {
    let errors = schema_errors(schema, data)?;
    Ok(schema_valid_from_counts(errors, leaf_fields(schema)))
}

/// `completeness`: required leaf fields present and non-null ÷ required leaf fields.
///
/// Required leaves are found by walking `required` properties of nested objects (see
/// [`crate::schema`]). For an array of objects, each required leaf of the item schema counts
/// **once**, and is satisfied only if the array is non-empty and **every** item has it present and
/// non-null (an empty array satisfies none of its item leaves: no data is not complete data).
/// A schema with no required leaves gives 1.
pub fn completeness(schema: &Value, data: &Value) -> f64 {
    let paths = required_leaf_paths(schema);
    if paths.is_empty() {
        return 1.0;
    }
    let present = paths
        .iter()
        .filter(|p| crate::schema::path_satisfied(data, p))
        .count();
    unit("completeness", present as f64 / paths.len() as f64)
}

/// F1 score of two capability sets: `2·|U∩R| / (|U| + |R|)`; 1 if both are empty.
pub fn f1<T: Ord>(used: &BTreeSet<T>, reference: &BTreeSet<T>) -> f64 {
    let denom = used.len() + reference.len();
    if denom == 0 {
        return 1.0;
    }
    unit(
        "f1",
        2.0 * used.intersection(reference).count() as f64 / denom as f64,
    )
}

/// `routing = F1(used, reference) × min(1, ref_cost / cost)^γ`.
///
/// Capabilities are compared as sets (a capability used twice counts once). A zero `cost` is as
/// cheap as possible (cost factor 1).
pub fn routing<T: Ord>(
    used: &BTreeSet<T>,
    reference: &BTreeSet<T>,
    ref_cost_rao: u64,
    cost_rao: u64,
    gamma: f64,
) -> f64 {
    let cost_factor = if cost_rao == 0 {
        1.0
    } else {
        (ref_cost_rao as f64 / cost_rao as f64).min(1.0)
    };
    let gamma = if gamma.is_finite() && gamma >= 0.0 {
        gamma
    } else {
        0.0
    };
    // F1 and the cost factor are in [0, 1] and γ ≥ 0, so the product is too.
    clamp01(unit(
        "routing",
        f1(used, reference) * cost_factor.powf(gamma),
    ))
}

/// The gates' factor on a scored challenge (docs/mechanism.md §4):
/// `fidelity^fidelity_gate × execution^execution_gate`, where `execution` is the capability F1 of
/// the executed plan against the reference (the routing term without its cost factor). Both
/// exponents 0 (the defaults) give exactly 1.
pub fn gate_factor(params: &MechanismParams, fidelity: f64, execution: f64) -> f64 {
    let g = clamp01(fidelity).powf(params.fidelity_gate)
        * clamp01(execution).powf(params.execution_gate);
    unit("gate factor", g)
}

/// `latency`: 1 if `total_ms ≤ deadline_ms`; after that 0 in [`LatencyMode::Step`], or
/// `(2·deadline − total) / deadline` down to 0 at twice the deadline in
/// [`LatencyMode::LinearDecay`]. A zero deadline accepts only zero latency.
pub fn latency(total_ms: u64, deadline_ms: u64, mode: LatencyMode) -> f64 {
    if total_ms <= deadline_ms {
        return 1.0;
    }
    match mode {
        LatencyMode::Step => 0.0,
        LatencyMode::LinearDecay if deadline_ms == 0 => 0.0,
        LatencyMode::LinearDecay => {
            let over = (total_ms - deadline_ms) as f64;
            unit("latency", clamp01(1.0 - over / deadline_ms as f64))
        }
    }
}

/// Whether a response received `received_ms` after issue is still scored at all: later than
/// `deadline_ms + latency_grace_ms` scores [`OrchestrationTerms::ZERO`].
///
/// With [`LatencyMode::LinearDecay`], raise `latency_grace_ms` towards `deadline_ms` so that the
/// decay region is actually reachable.
pub fn within_grace(received_ms: u64, deadline_ms: u64, params: &MechanismParams) -> bool {
    received_ms <= deadline_ms.saturating_add(params.latency_grace_ms)
}

/// Whether to audit (re-execute) one unreceipted step: true with probability `audit_rate`
/// (clamped to `[0, 1]`; NaN never audits). Deterministic in the caller's RNG.
pub fn audit_draw(rng: &mut impl rand::Rng, audit_rate: f64) -> bool {
    use rand::RngExt;
    rng.random_bool(clamp01(audit_rate))
}

/// `fidelity` from counts: traceable leaf values ÷ all leaf values; 0 if there are none (an
/// answer with no content has nothing traceable, and scoring it 1 paid empty "shell" responses).
pub fn fidelity_from_counts(traceable: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        clamp01(traceable as f64 / total as f64)
    }
}

/// `fidelity` of `data`: the share of its scalar leaf values (strings, numbers, booleans; nulls are
/// ignored) that occur verbatim as a scalar anywhere inside one of the committed `sub_responses`.
/// Declared aggregations are not recognised yet, so derived numbers count as untraceable.
pub fn fidelity<'a>(data: &Value, sub_responses: impl IntoIterator<Item = &'a Value>) -> f64 {
    let mut known = BTreeSet::new();
    for r in sub_responses {
        collect_scalars(r, &mut |v| {
            known.insert(v.to_string());
        });
    }
    let (mut total, mut traceable) = (0usize, 0usize);
    collect_scalars(data, &mut |v| {
        total += 1;
        if known.contains(&v.to_string()) {
            traceable += 1;
        }
    });
    debug_assert!(traceable <= total);
    fidelity_from_counts(traceable, total)
}

fn collect_scalars(v: &Value, f: &mut impl FnMut(&Value)) {
    match v {
        Value::Null => {}
        Value::Array(items) => items.iter().for_each(|i| collect_scalars(i, f)),
        Value::Object(map) => map.values().for_each(|i| collect_scalars(i, f)),
        scalar => f(scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
        items.iter().copied().collect()
    }

    fn schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["title", "players", "meta"],
            "properties": {
                "title": {"type": "string"},
                "note": {"type": "string"},
                "players": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "share"],
                        "properties": {
                            "name": {"type": "string"},
                            "share": {"type": "number"},
                            "url": {"type": "string"}
                        }
                    }
                },
                "meta": {
                    "type": "object",
                    "required": ["year"],
                    "properties": {"year": {"type": "integer"}, "source": {"type": "string"}}
                }
            }
        })
    }

    #[test]
    fn schema_valid_worked_numbers() {
        // 7 leaves: title, note, players[].name, players[].share, players[].url, meta.year, meta.source.
        assert_eq!(leaf_fields(&schema()), 7);
        let good =
            json!({"title": "t", "players": [{"name": "a", "share": 0.5}], "meta": {"year": 2026}});
        assert_eq!(schema_valid(&schema(), &good).unwrap(), 1.0);
        // Two errors (share is a string, year is a string): 1 − 2/7.
        let bad =
            json!({"title": "t", "players": [{"name": "a", "share": "x"}], "meta": {"year": "y"}});
        assert_eq!(schema_errors(&schema(), &bad).unwrap(), 2);
        assert!((schema_valid(&schema(), &bad).unwrap() - (1.0 - 2.0 / 7.0)).abs() < 1e-12);
        assert_eq!(schema_valid_from_counts(10, 7), 0.0);
        assert_eq!(schema_valid_from_counts(0, 0), 1.0);
        assert_eq!(schema_valid_from_counts(1, 0), 0.0);
        // Not an object at all: one type error → 1 − 1/7.
        assert!((schema_valid(&schema(), &json!(3)).unwrap() - 6.0 / 7.0).abs() < 1e-12);
        assert!(schema_valid(&json!({"type": 5}), &json!({})).is_err());
    }

    #[test]
    fn completeness_worked_numbers() {
        // Required leaves: title, players[].name, players[].share, meta.year → 4.
        let full =
            json!({"title": "t", "players": [{"name": "a", "share": 0.5}], "meta": {"year": 2026}});
        assert_eq!(completeness(&schema(), &full), 1.0);
        // One player lacks share, title is null: name ✓, share ✗, title ✗, year ✓ → 2/4.
        let partial = json!({"title": null, "players": [{"name": "a", "share": 0.5}, {"name": "b"}],
                             "meta": {"year": 2026}});
        assert_eq!(completeness(&schema(), &partial), 0.5);
        // Empty array satisfies none of its item leaves: title ✓, year ✓ → 2/4.
        let empty = json!({"title": "t", "players": [], "meta": {"year": 1}});
        assert_eq!(completeness(&schema(), &empty), 0.5);
        assert_eq!(completeness(&schema(), &json!(null)), 0.0);
        assert_eq!(completeness(&json!({"type": "object"}), &json!({})), 1.0);
    }

    #[test]
    fn routing_worked_numbers() {
        let reference = set(&["web_search", "social_scrape", "llm_synthesis"]);
        // Exact capabilities, at reference cost → 1.
        assert_eq!(routing(&reference, &reference, 100, 100, 0.5), 1.0);
        // Cheaper than reference → still 1.
        assert_eq!(routing(&reference, &reference, 100, 50, 0.5), 1.0);
        // Used {web_search, llm_synthesis}: F1 = 2·2/(2+3) = 0.8; 4× reference cost: (1/4)^0.5 = 0.5.
        let used = set(&["web_search", "llm_synthesis"]);
        assert!((routing(&used, &reference, 100, 400, 0.5) - 0.4).abs() < 1e-12);
        // γ = 0 ignores cost.
        assert!((routing(&used, &reference, 100, 400, 0.0) - 0.8).abs() < 1e-12);
        assert_eq!(routing(&set(&[]), &reference, 100, 100, 0.5), 0.0);
        assert_eq!(f1(&set(&[]), &set(&[])), 1.0);
        assert_eq!(routing(&reference, &reference, 100, 0, 0.5), 1.0);
        assert_eq!(routing(&reference, &reference, 100, 400, f64::NAN), 1.0);
    }

    #[test]
    fn latency_worked_numbers() {
        assert_eq!(latency(1000, 1000, LatencyMode::Step), 1.0);
        assert_eq!(latency(1001, 1000, LatencyMode::Step), 0.0);
        assert_eq!(latency(1500, 1000, LatencyMode::LinearDecay), 0.5);
        assert_eq!(latency(1750, 1000, LatencyMode::LinearDecay), 0.25);
        assert_eq!(latency(2000, 1000, LatencyMode::LinearDecay), 0.0);
        assert_eq!(latency(9000, 1000, LatencyMode::LinearDecay), 0.0);
        assert_eq!(latency(1, 0, LatencyMode::LinearDecay), 0.0);
        let p = MechanismParams::default();
        assert!(within_grace(2000, 1000, &p));
        assert!(!within_grace(2001, 1000, &p));
    }

    #[test]
    fn audit_draw_rate() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let hits = (0..10_000).filter(|_| audit_draw(&mut rng, 0.2)).count();
        assert!((1800..2200).contains(&hits), "{hits}");
        assert!(!audit_draw(&mut rng, 0.0));
        assert!(audit_draw(&mut rng, 1.0));
        assert!(!audit_draw(&mut rng, f64::NAN));
    }

    #[test]
    fn the_gates_scale_every_term_but_fidelity() {
        let t = OrchestrationTerms {
            hash_verified: 1.0,
            schema_valid: 1.0,
            completeness: 0.5,
            routing: 0.8,
            latency: 1.0,
            fidelity: 0.5,
        };
        let mut p = MechanismParams {
            execution_gate: 0.0,
            fidelity_gate: 0.0,
            ..MechanismParams::default()
        };
        assert_eq!(gate_factor(&p, 0.0, 0.0), 1.0, "both gates off");
        assert_eq!(t.gated(1.0), t);
        p.fidelity_gate = 2.0;
        let g = t.gated(gate_factor(&p, t.fidelity, 1.0));
        assert_eq!(g.as_array(), [0.25, 0.25, 0.125, 0.2, 0.25, 0.5]);
        p.execution_gate = 1.0;
        assert_eq!(gate_factor(&p, 0.5, 0.5), 0.125);
        // A shell: nothing executed, nothing traceable.
        let shell = OrchestrationTerms {
            fidelity: 0.0,
            routing: 0.0,
            ..t
        };
        let d = MechanismParams::default();
        assert!(shell.score(&d) > 0.0, "ungated terms");
        assert_eq!(shell.gated(gate_factor(&p, 0.0, 0.0)).score(&d), 0.0);
    }

    #[test]
    fn fidelity_worked_numbers() {
        let subs = [
            json!({"results": [{"name": "Acme", "rev": 10}]}),
            json!(["Beta"]),
        ];
        // Leaves: "Acme" ✓, 10 ✓, "Beta" ✓, 99 ✗; null ignored → 3/4.
        let data = json!({"players": [{"n": "Acme", "r": 10}, {"n": "Beta", "r": 99}], "x": null});
        assert_eq!(fidelity(&data, &subs), 0.75);
        assert_eq!(fidelity(&json!({}), &subs), 0.0);
        assert_eq!(fidelity(&json!({"items": []}), &subs), 0.0);
        assert_eq!(fidelity_from_counts(1, 4), 0.25);
    }

    #[test]
    fn terms_are_sanitized_before_scoring() {
        let t = OrchestrationTerms {
            hash_verified: f64::NAN,
            schema_valid: 2.0,
            completeness: -1.0,
            routing: f64::INFINITY,
            latency: 1.0,
            fidelity: 0.0,
        };
        let s = t.sanitized();
        assert_eq!(s.as_array(), [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
        // 0.15 + 0.10 + 0.05 of the seed's 0.6, at the default s.
        let p = MechanismParams::default();
        let score = t.score(&p);
        assert!(
            (score - 0.30 * p.orchestration_share / 0.6).abs() < 1e-12,
            "{score}"
        );
        assert_eq!(
            OrchestrationTerms::ZERO.score(&MechanismParams::default()),
            0.0
        );
    }
}
