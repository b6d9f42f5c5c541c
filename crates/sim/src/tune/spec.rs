//! The `[tune]` table of a scenario: which parameters are free, the search effort, the
//! objectives and the constraints — parsed with the rest of the file and checked with located
//! errors like every other key (`scenarios/README.md`, "`[tune]`").

use crate::located::{LocatedError, Seg, SourceDoc};
use crate::scenario::{ScenarioSpec, set_path};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whole-run network KPIs (`entity = all`, `epoch = -1` rows) an objective or constraint may
/// name, plus the tuner's own `adversary_roi_gap` and `split_error`.
pub const METRICS: &[&str] = &[
    "honest_share",
    "gini",
    "split_orchestration",
    "ledger_accuracy",
    "detection_lag_blocks",
    "ledger_coverage",
    "success_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "organic_quality",
    "fabrication_strikes",
    "proposals_accepted",
    "proposals_rejected",
    ADVERSARY_ROI_GAP,
    SPLIT_ERROR,
];

/// The worst adversary group's ROI per identity minus honest's, as a fraction of honest's ROI
/// at the scenario's own adversary parameters (< 0: every attack earns less than honest work).
pub const ADVERSARY_ROI_GAP: &str = "adversary_roi_gap";
/// `|split_orchestration − orchestration_share|`.
pub const SPLIT_ERROR: &str = "split_error";

/// Direction of an objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Larger is better.
    Max,
    /// Smaller is better.
    Min,
}

impl Goal {
    /// +1 for `max`, −1 for `min`: multiply a value by it to get "larger is better".
    pub fn sign(self) -> f64 {
        match self {
            Goal::Max => 1.0,
            Goal::Min => -1.0,
        }
    }
}

/// One objective: a KPI and its direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// KPI name (one of [`METRICS`]).
    pub metric: String,
    /// `max` or `min`.
    pub goal: Goal,
}

/// `[tune.free]` entry: a range, or a list of choices.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeParam {
    /// Lower bound of a range.
    #[serde(default)]
    pub min: Option<f64>,
    /// Upper bound of a range.
    #[serde(default)]
    pub max: Option<f64>,
    /// Round range values to integers.
    #[serde(default)]
    pub integer: bool,
    /// The values to choose from (instead of a range).
    #[serde(default)]
    pub choices: Option<Vec<toml::Value>>,
}

/// `[tune.knobs."<group>".<knob>]`: the range the inner search draws a knob from, narrower than
/// the knob's own (e.g. a floor on how hard an adversary attacks), in the knob's numbers: a switch
/// is 0 (false) or 1 (true), a choice the index in its list; `min = max` fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnobRange {
    /// Smallest value the inner search tries.
    pub min: f64,
    /// Largest value the inner search tries.
    pub max: f64,
}

/// `[tune.constraints]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Constraints {
    /// Every adversary group's ROI per identity (at its best response) below honest's
    /// (`adversary_roi_gap < 0`). Default: on when the scenario has honest and adversary groups.
    pub adversaries_below_honest: Option<bool>,
    /// Realised orchestration share within this of the target (`split_error ≤ tol`).
    pub split_tolerance: Option<f64>,
    /// Upper bounds on KPIs.
    pub max: BTreeMap<String, f64>,
    /// Lower bounds on KPIs.
    pub min: BTreeMap<String, f64>,
}

/// The `[tune]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// Dotted scenario keys the search may set, with their bounds.
    pub free: BTreeMap<String, FreeParam>,
    /// Candidates evaluated by the search (rounded up to whole generations), besides the
    /// scenario's own parameters (the baseline) and the final seed racing.
    #[serde(default = "default_budget")]
    pub budget: u32,
    /// Candidates per CMA-ES generation (default `4 + ⌊3 ln d⌋` for `d` free parameters).
    #[serde(default)]
    pub population: Option<u32>,
    /// Seed of the search (CMA-ES sampling, adversary probes).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulation seeds per evaluation during the search: every candidate runs on the same
    /// seeds `scenario.seed + i` (common random numbers).
    #[serde(default = "default_seeds")]
    pub seeds: u32,
    /// Cap on seeds when separating the finalists' confidence intervals.
    #[serde(default = "default_max_seeds")]
    pub max_seeds: u32,
    /// How many of the best candidates enter the final seed racing (plus the baseline).
    #[serde(default = "default_finalists")]
    pub finalists: u32,
    /// Adversary probes per candidate besides the scenario's own adversary parameters: a fixed
    /// design over every adversary group's knobs, the same for every candidate.
    #[serde(default = "default_probes")]
    pub inner_probes: u32,
    /// Refinement probes per candidate: each adversary group perturbs its best knobs so far.
    #[serde(default = "default_refine")]
    pub inner_refine: u32,
    /// CMA-ES initial step size, as a fraction of each parameter's range.
    #[serde(default = "default_sigma")]
    pub sigma: f64,
    /// Objectives; the first is what the search maximises, all of them span the Pareto front.
    #[serde(default = "default_objectives")]
    pub objectives: Vec<Objective>,
    /// Constraints (penalties in the search; feasibility in the report).
    #[serde(default)]
    pub constraints: Constraints,
    /// Per adversary group label, narrower ranges for the inner search's numeric knobs.
    #[serde(default)]
    pub knobs: BTreeMap<String, BTreeMap<String, KnobRange>>,
}

fn default_budget() -> u32 {
    24
}
fn default_seed() -> u64 {
    1
}
fn default_seeds() -> u32 {
    2
}
fn default_max_seeds() -> u32 {
    8
}
fn default_finalists() -> u32 {
    3
}
fn default_probes() -> u32 {
    3
}
fn default_refine() -> u32 {
    1
}
fn default_sigma() -> f64 {
    0.3
}
fn default_objectives() -> Vec<Objective> {
    vec![Objective {
        metric: "honest_share".into(),
        goal: Goal::Max,
    }]
}

/// A located error at `[tune]` key segments `segs` (dotted free keys stay one segment).
fn at(doc: &SourceDoc, segs: &[&str], expected: &str, found: &str) -> Box<LocatedError> {
    let path: Vec<Seg> = segs.iter().map(|s| Seg::Key((*s).to_string())).collect();
    let span = doc.span_of(&path).unwrap_or(0..0);
    let key = segs
        .iter()
        .map(|s| {
            if s.contains('.') {
                format!("\"{s}\"")
            } else {
                (*s).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".");
    Box::new(doc.error_at(span, &key, expected, found))
}

/// Whether the scenario has honest groups and adversary groups to compare.
pub fn has_adversaries(spec: &ScenarioSpec) -> bool {
    spec.miners.iter().any(|g| g.strategy == "honest")
        && spec.miners.iter().any(|g| g.strategy != "honest")
}

/// Check `[tune]` of `spec` (whose TOML is `table`): bounds, that every free key addresses a
/// value of this scenario and stays valid at its bounds, metric names and effort settings.
pub fn validate(
    doc: &SourceDoc,
    table: &toml::Table,
    spec: &ScenarioSpec,
) -> Result<(), Box<LocatedError>> {
    let Some(t) = &spec.tune else { return Ok(()) };
    if !spec.sweep.is_empty() {
        return Err(at(
            doc,
            &["tune"],
            "either [tune] or [sweep] (the tuner chooses the points itself)",
            "both",
        ));
    }
    if t.free.is_empty() {
        return Err(at(
            doc,
            &["tune", "free"],
            "at least one free parameter",
            "none",
        ));
    }
    let mut base = table.clone();
    base.remove("tune");
    for (key, p) in &t.free {
        let values: Vec<toml::Value> = match (&p.choices, p.min, p.max) {
            (Some(c), None, None) if !p.integer => {
                if c.is_empty() {
                    return Err(at(
                        doc,
                        &["tune", "free", key, "choices"],
                        "a non-empty list",
                        "[]",
                    ));
                }
                c.clone()
            }
            (None, Some(lo), Some(hi)) => {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(at(
                        doc,
                        &["tune", "free", key],
                        "finite bounds with min < max",
                        &format!("min = {lo}, max = {hi}"),
                    ));
                }
                if p.integer {
                    vec![
                        toml::Value::Integer(lo.ceil() as i64),
                        toml::Value::Integer(hi.floor() as i64),
                    ]
                } else {
                    vec![toml::Value::Float(lo), toml::Value::Float(hi)]
                }
            }
            _ => {
                return Err(at(
                    doc,
                    &["tune", "free", key],
                    "{ min, max } (optionally integer = true) or { choices = [...] }",
                    "another combination of keys",
                ));
            }
        };
        for v in values {
            let mut t2 = base.clone();
            let checked = set_path(&mut t2, key, v.clone())
                .and_then(|()| {
                    toml::Value::Table(t2)
                        .try_into::<ScenarioSpec>()
                        .map_err(|e| e.message().to_string())
                })
                .and_then(|s| {
                    crate::scenario::validate(doc, &s, "").map_err(|e| {
                        format!("{} = {v} makes `{}` invalid: {}", key, e.key, e.expected)
                    })
                });
            if let Err(why) = checked {
                return Err(at(
                    doc,
                    &["tune", "free", key],
                    "a key of this scenario that stays valid over its whole range",
                    &why,
                ));
            }
        }
    }
    let checks: [(&str, bool, String, &str); 7] = [
        (
            "budget",
            (1..=10_000).contains(&t.budget),
            t.budget.to_string(),
            "between 1 and 10000 candidates",
        ),
        (
            "population",
            t.population.is_none_or(|p| (2..=1000).contains(&p)),
            format!("{:?}", t.population),
            "between 2 and 1000 candidates per generation",
        ),
        (
            "seeds",
            (2..=1000).contains(&t.seeds),
            t.seeds.to_string(),
            "between 2 and 1000 seeds (intervals need two)",
        ),
        (
            "max_seeds",
            t.max_seeds >= t.seeds && t.max_seeds <= 1000,
            t.max_seeds.to_string(),
            "at least `seeds` and at most 1000",
        ),
        (
            "finalists",
            (1..=100).contains(&t.finalists),
            t.finalists.to_string(),
            "between 1 and 100",
        ),
        (
            "inner_probes",
            t.inner_probes <= 100 && t.inner_refine <= 100,
            t.inner_probes.to_string(),
            "at most 100 probes (and at most 100 refinements)",
        ),
        (
            "sigma",
            t.sigma.is_finite() && t.sigma > 0.0 && t.sigma <= 1.0,
            t.sigma.to_string(),
            "a step size in (0, 1]",
        ),
    ];
    for (key, ok, found, expected) in checks {
        if !ok {
            return Err(at(doc, &["tune", key], expected, &found));
        }
    }
    let expected = format!("one of {}", METRICS.join(", "));
    if t.objectives.is_empty() {
        return Err(at(
            doc,
            &["tune", "objectives"],
            "at least one objective",
            "[]",
        ));
    }
    for o in &t.objectives {
        if !METRICS.contains(&o.metric.as_str()) {
            return Err(at(
                doc,
                &["tune", "objectives"],
                &expected,
                &format!("metric {:?}", o.metric),
            ));
        }
    }
    let c = &t.constraints;
    for (kind, map) in [("max", &c.max), ("min", &c.min)] {
        for (metric, bound) in map {
            if !METRICS.contains(&metric.as_str()) {
                return Err(at(
                    doc,
                    &["tune", "constraints", kind, metric],
                    &expected,
                    &format!("{metric:?}"),
                ));
            }
            if !bound.is_finite() {
                return Err(at(
                    doc,
                    &["tune", "constraints", kind, metric],
                    "a finite bound",
                    &bound.to_string(),
                ));
            }
        }
    }
    if let Some(tol) = c.split_tolerance
        && !(tol.is_finite() && (0.0..=1.0).contains(&tol))
    {
        return Err(at(
            doc,
            &["tune", "constraints", "split_tolerance"],
            "a share in [0, 1]",
            &tol.to_string(),
        ));
    }
    for (label, ranges) in &t.knobs {
        let group = spec
            .miners
            .iter()
            .find(|g| g.strategy != "honest" && g.label() == label);
        let Some(group) = group else {
            let labels: Vec<&str> = spec
                .miners
                .iter()
                .filter(|g| g.strategy != "honest")
                .map(|g| g.label())
                .collect();
            return Err(at(
                doc,
                &["tune", "knobs", label],
                &format!(
                    "an adversary [[miners]] group label ({})",
                    labels.join(", ")
                ),
                &format!("{label:?}"),
            ));
        };
        let knobs = orchestra_adversaries::knobs(&group.strategy);
        for (name, r) in ranges {
            let Some(k) = knobs.iter().find(|k| k.name == name) else {
                let names: Vec<&str> = knobs.iter().map(|k| k.name).collect();
                return Err(at(
                    doc,
                    &["tune", "knobs", label, name],
                    &format!("a knob of `{}` ({})", group.strategy, names.join(", ")),
                    &format!("{name:?}"),
                ));
            };
            if !(r.min.is_finite()
                && r.max.is_finite()
                && k.min <= r.min
                && r.min <= r.max
                && r.max <= k.max)
            {
                return Err(at(
                    doc,
                    &["tune", "knobs", label, name],
                    &format!("min ≤ max within the knob's range [{}, {}]", k.min, k.max),
                    &format!("min = {}, max = {}", r.min, r.max),
                ));
            }
        }
    }
    let uses_gap = c.adversaries_below_honest == Some(true)
        || c.max.contains_key(ADVERSARY_ROI_GAP)
        || c.min.contains_key(ADVERSARY_ROI_GAP)
        || t.objectives.iter().any(|o| o.metric == ADVERSARY_ROI_GAP);
    if uses_gap && !has_adversaries(spec) {
        return Err(at(
            doc,
            &["tune"],
            "an honest and an adversary [[miners]] group to compare (adversary_roi_gap)",
            "a scenario without both",
        ));
    }
    Ok(())
}
