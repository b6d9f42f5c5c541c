//! `orchestra-sim tune`: choose mechanism parameters that resist the best attack.
//!
//! The search ([`optimise`]) is generic over an [`Evaluator`]: given a candidate (one value per
//! free parameter) and a list of seeds it returns per-seed KPIs. [`sim::ScenarioEvaluator`]
//! is the real one — it simulates the candidate against every adversary group of the scenario
//! and an inner search over their knobs, and reports the worst case; tests use synthetic ones.
//!
//! 1. **Baseline**: the scenario's own parameters are candidate 0.
//! 2. **Search**: CMA-ES (crate `cmaes`, seeded, so the search is deterministic) over the free
//!    parameters mapped to the unit cube; each generation's candidates are evaluated in parallel
//!    (rayon), all on the same seeds (common random numbers). Its fitness is the mean per-seed
//!    score: the first objective (sign-adjusted so larger is better) minus
//!    [`PENALTY`] × each constraint's relative violation.
//! 3. **Racing**: the best `finalists` candidates and the baseline get more seeds (the same ones
//!    for all) until the leader's paired score difference to every other finalist has a 95 %
//!    interval above zero, or `max_seeds` is reached.
//! 4. **Output**: every candidate's KPIs with intervals, the Pareto front over the objectives,
//!    each parameter's sensitivity (Spearman rank correlation with the score and objectives over
//!    the search's candidates) and the recommendation.
//!
//! [`store`] makes a tune resumable and shardable: every simulation's result is a file in a
//! state directory, and the search is replayed from them, batch by batch, by any number of
//! concurrent processes that share it (`orchestra-sim tune --state DIR --shard I/N`).

pub mod sim;
pub mod spec;
pub mod store;

pub use spec::{Constraints, FreeParam, Goal, Objective, TuneSpec};

use cmaes::{CMAESOptions, DVector, Mode};
use orchestra_stats::Interval;
use orchestra_stats::metrics::scale_of;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Score lost per unit of relative constraint violation.
pub const PENALTY: f64 = 10.0;
/// The score of a candidate whose parameters are invalid (e.g. all Ledger weights zero).
pub const INVALID_SCORE: f64 = -1.0e6;

/// Why a tune failed.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A simulation failed.
    #[error("{0}")]
    Run(String),
    /// Output could not be written.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The search itself failed.
    #[error("search: {0}")]
    Search(String),
    /// Some results the search needs next are not stored yet (a resumable or sharded tune,
    /// [`store`]): the search stops here, and [`store::run`] simulates or waits for them.
    #[error("results still pending")]
    Pending,
    /// A stored result or the state directory is unusable (corrupt, or from another tune).
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, and what to do about it.
        message: String,
    },
    /// Other shards' results did not arrive in time.
    #[error("{0}")]
    Timeout(String),
}

/// The part of the search running, told to the [`Evaluator`] (progress of a sharded tune).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Candidate 0, the scenario's own parameters.
    Baseline,
    /// A CMA-ES generation.
    Generation {
        /// 1-based.
        index: usize,
        /// Generations in the budget.
        of: usize,
    },
    /// A round of racing the finalists on more seeds.
    Racing {
        /// 1-based.
        round: usize,
        /// Seeds after this round.
        seeds: usize,
    },
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Baseline => write!(f, "baseline"),
            Phase::Generation { index, of } => write!(f, "generation {index}/{of}"),
            Phase::Racing { round, seeds } => write!(f, "racing round {round} ({seeds} seeds)"),
        }
    }
}

/// One free parameter of the search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dim {
    /// Dotted scenario key.
    pub key: String,
    /// Lower bound (ranges).
    pub min: f64,
    /// Upper bound (ranges).
    pub max: f64,
    /// Integer range.
    pub integer: bool,
    /// Choices (empty for ranges).
    pub choices: Vec<toml::Value>,
}

impl Dim {
    /// The dimension of `[tune.free]` entry `key`.
    pub fn from_free(key: &str, p: &FreeParam) -> Dim {
        Dim {
            key: key.to_string(),
            min: p.min.unwrap_or(0.0),
            max: p.max.unwrap_or(1.0),
            integer: p.integer,
            choices: p.choices.clone().unwrap_or_default(),
        }
    }

    /// The value at unit coordinate `u` (clamped to [0, 1]); ranges are rounded to a few
    /// significant digits of their span so parameters print and reproduce cleanly.
    pub fn value(&self, u: f64) -> toml::Value {
        let u = if u.is_nan() { 0.5 } else { u.clamp(0.0, 1.0) };
        if !self.choices.is_empty() {
            let n = self.choices.len();
            let i = ((u * n as f64).floor() as usize).min(n - 1);
            return self.choices[i].clone();
        }
        let x = self.min + u * (self.max - self.min);
        if self.integer {
            return toml::Value::Integer(x.round() as i64);
        }
        let decimals = (3.0 - (self.max - self.min).log10().floor()).clamp(0.0, 12.0) as i32;
        let scale = 10f64.powi(decimals);
        toml::Value::Float(((x * scale).round() / scale).clamp(self.min, self.max))
    }

    /// The unit coordinate of `v` (the middle of a choice's cell), if `v` fits this dimension.
    pub fn unit(&self, v: &toml::Value) -> Option<f64> {
        if !self.choices.is_empty() {
            let i = self.choices.iter().position(|c| c == v)?;
            return Some((i as f64 + 0.5) / self.choices.len() as f64);
        }
        let x = match v {
            toml::Value::Float(f) => *f,
            toml::Value::Integer(i) => *i as f64,
            _ => return None,
        };
        Some(((x - self.min) / (self.max - self.min)).clamp(0.0, 1.0))
    }

    /// A number for sensitivity analysis: the value, or the choice's index.
    pub fn number(&self, v: &toml::Value) -> f64 {
        if !self.choices.is_empty() {
            return self
                .choices
                .iter()
                .position(|c| c == v)
                .map_or(f64::NAN, |i| i as f64);
        }
        match v {
            toml::Value::Float(f) => *f,
            toml::Value::Integer(i) => *i as f64,
            _ => f64::NAN,
        }
    }
}

/// Canonical `key=value;key=value` of a candidate (the run table's `params` format).
pub fn params_key(dims: &[Dim], values: &[toml::Value]) -> String {
    dims.iter()
        .zip(values)
        .map(|(d, v)| format!("{}={v}", d.key))
        .collect::<Vec<_>>()
        .join(";")
}

/// A bound on a KPI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bound {
    /// KPI name.
    pub metric: String,
    /// `max`: value ≤ bound; `min`: value ≥ bound.
    pub kind: Goal,
    /// The bound.
    pub bound: f64,
}

impl Bound {
    /// Relative violation of `x` (0 when satisfied).
    pub fn violation(&self, x: f64) -> f64 {
        let scale = if self.bound.abs() > 0.0 {
            self.bound.abs()
        } else {
            1.0
        };
        let over = match self.kind {
            Goal::Max => x - self.bound,
            Goal::Min => self.bound - x,
        };
        if x.is_nan() {
            return 1.0;
        }
        (over / scale).max(0.0)
    }
}

/// What the search optimises.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goals {
    /// Objectives; the first is the search's.
    pub objectives: Vec<Objective>,
    /// Constraints.
    pub constraints: Vec<Bound>,
}

impl Goals {
    /// Per-seed scores from per-seed KPIs.
    pub fn scores(&self, kpis: &BTreeMap<String, Vec<f64>>, n: usize) -> Vec<f64> {
        let Some(primary) = self.objectives.first() else {
            return vec![0.0; n];
        };
        (0..n)
            .map(|s| {
                let get = |m: &str| kpis.get(m).and_then(|v| v.get(s)).copied();
                let x = get(&primary.metric).unwrap_or(f64::NAN);
                let penalty: f64 = self
                    .constraints
                    .iter()
                    .map(|b| b.violation(get(&b.metric).unwrap_or(f64::NAN)))
                    .sum();
                let x = if x.is_finite() { x } else { INVALID_SCORE };
                primary.goal.sign() * x - PENALTY * penalty
            })
            .collect()
    }

    /// The constraints violated by the KPIs' means, in words.
    pub fn violated(&self, kpis: &BTreeMap<String, Interval>) -> Vec<String> {
        self.constraints
            .iter()
            .filter_map(|b| {
                let m = kpis.get(&b.metric).map_or(f64::NAN, |i| i.mean);
                (b.violation(m) > 0.0).then(|| {
                    let op = if b.kind == Goal::Max { "≤" } else { "≥" };
                    format!("{} = {m:.4} (must be {op} {})", b.metric, b.bound)
                })
            })
            .collect()
    }
}

/// Per-seed results of one candidate.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// KPI → one value per seed (worst case over the adversary responses).
    pub kpis: BTreeMap<String, Vec<f64>>,
    /// Why the candidate could not be simulated (invalid parameters), if so.
    pub invalid: Option<String>,
    /// Anything the evaluator wants in the report (e.g. best adversary responses).
    pub details: serde_json::Value,
    /// Constraints the evaluator found unmet beyond the KPI means, in words (e.g. an adversary
    /// group whose ROI interval does not separate from honest's); each makes it infeasible.
    pub unmet: Vec<String>,
}

/// What evaluates candidates.
pub trait Evaluator: Sync {
    /// Evaluate the candidate `values` (canonical `key`) on `seeds`. Called again with a longer
    /// list of seeds during racing; an evaluator may keep earlier results.
    fn evaluate(
        &self,
        values: &[toml::Value],
        key: &str,
        seeds: &[u64],
    ) -> Result<Evaluation, TuneError>;

    /// The candidates in `order` (id, key) are final for this round: write what they ran.
    fn commit(&self, order: &[(usize, String)]) -> Result<(), TuneError> {
        let _ = order;
        Ok(())
    }

    /// The search enters `phase`; the evaluations that follow belong to it.
    fn phase(&self, phase: Phase) {
        let _ = phase;
    }
}

/// Keep the error that explains most: a real failure over [`TuneError::Pending`], else the
/// first.
fn keep_worst(slot: &mut Option<TuneError>, err: TuneError) {
    if slot
        .as_ref()
        .is_none_or(|f| matches!(f, TuneError::Pending) && !matches!(err, TuneError::Pending))
    {
        *slot = Some(err);
    }
}

/// Search settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Candidates evaluated by the search (rounded up to whole generations).
    pub budget: usize,
    /// Candidates per generation.
    pub population: usize,
    /// Search seed.
    pub seed: u64,
    /// Simulation seeds of the search (common to all candidates).
    pub seeds: Vec<u64>,
    /// Further seeds racing may add, in order, up to the cap.
    pub extra_seeds: Vec<u64>,
    /// Finalists (plus the baseline).
    pub finalists: usize,
    /// CMA-ES initial step, in unit-cube coordinates.
    pub sigma: f64,
}

impl Settings {
    /// Settings from `[tune]`, for `dims` free parameters and simulation seeds from `first_seed`.
    pub fn from_spec(t: &TuneSpec, dims: usize, first_seed: u64) -> Settings {
        let population = t.population.map_or_else(
            || 4 + (3.0 * (dims.max(1) as f64).ln()).floor() as usize,
            |p| p as usize,
        );
        Settings {
            budget: t.budget as usize,
            population,
            seed: t.seed,
            seeds: (0..u64::from(t.seeds)).map(|i| first_seed + i).collect(),
            extra_seeds: (u64::from(t.seeds)..u64::from(t.max_seeds))
                .map(|i| first_seed + i)
                .collect(),
            finalists: t.finalists as usize,
            sigma: t.sigma,
        }
    }
}

/// A KPI summary with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stat {
    /// Mean over seeds.
    pub mean: f64,
    /// 95 % CI low.
    pub lo: f64,
    /// 95 % CI high.
    pub hi: f64,
    /// Seeds.
    pub n: usize,
}

impl From<Interval> for Stat {
    fn from(i: Interval) -> Self {
        Stat {
            mean: i.mean,
            lo: i.lo,
            hi: i.hi,
            n: i.n,
        }
    }
}

/// One evaluated candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// Id: 0 is the baseline, then in evaluation order.
    pub id: usize,
    /// Generation (0: baseline; racing does not create candidates).
    pub generation: usize,
    /// Canonical parameters.
    pub key: String,
    /// Free parameter → value.
    pub params: BTreeMap<String, toml::Value>,
    /// Seeds evaluated.
    pub seeds: usize,
    /// KPIs with intervals (worst case over adversary responses).
    pub kpis: BTreeMap<String, Stat>,
    /// Per-seed score with interval.
    pub score: Stat,
    /// All constraints hold on the means.
    pub feasible: bool,
    /// Violated constraints.
    pub violations: Vec<String>,
    /// Invalid parameters, if any.
    pub invalid: Option<String>,
    /// Evaluator details (best adversary responses).
    pub details: serde_json::Value,
    #[serde(skip)]
    values: Vec<toml::Value>,
    #[serde(skip)]
    per_seed: Vec<f64>,
}

/// A finalist's comparison with the leader.
#[derive(Debug, Clone, Serialize)]
pub struct Finalist {
    /// Candidate id.
    pub id: usize,
    /// Score with interval after racing.
    pub score: Stat,
    /// Leader's score minus this one's, paired over the common seeds (None for the leader).
    pub leader_minus_this: Option<Stat>,
}

/// A parameter's sensitivity.
#[derive(Debug, Clone, Serialize)]
pub struct Sensitivity {
    /// Free parameter.
    pub key: String,
    /// Spearman rank correlation with the score over the search's valid candidates.
    pub score: f64,
    /// … and with each objective.
    pub objectives: BTreeMap<String, f64>,
}

/// Everything a tune found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Free parameters.
    pub dims: Vec<Dim>,
    /// Objectives and constraints.
    pub goals: Goals,
    /// Settings.
    pub settings: Settings,
    /// Every candidate, by id.
    pub candidates: Vec<Candidate>,
    /// CMA-ES generations run.
    pub generations: usize,
    /// Finalists after racing (leader first).
    pub finalists: Vec<Finalist>,
    /// Whether the leader's paired interval separated from every other finalist's.
    pub separated: bool,
    /// Seeds the finalists ended with.
    pub final_seeds: usize,
    /// Recommended candidate id.
    pub recommended: usize,
    /// Ids of the Pareto front over the objectives (means; valid candidates).
    pub pareto: Vec<usize>,
    /// Objectives spanning the Pareto front.
    pub pareto_objectives: Vec<Objective>,
    /// Sensitivity of each free parameter.
    pub sensitivity: Vec<Sensitivity>,
}

impl Outcome {
    /// The recommended candidate.
    pub fn best(&self) -> &Candidate {
        &self.candidates[self.recommended]
    }
}

fn summarise(goals: &Goals, c: &mut Candidate, e: Evaluation, n: usize) {
    // Each KPI on its declared scale: proportions get intervals that stay in [0, 1].
    let ivs: BTreeMap<String, Interval> = e
        .kpis
        .iter()
        .map(|(k, v)| (k.clone(), Interval::on(v, scale_of(k))))
        .collect();
    c.kpis = ivs.iter().map(|(k, i)| (k.clone(), (*i).into())).collect();
    c.per_seed = if e.invalid.is_some() {
        vec![INVALID_SCORE; n]
    } else {
        goals.scores(&e.kpis, n)
    };
    c.score = Interval::of(&c.per_seed).into();
    c.violations = if let Some(why) = &e.invalid {
        vec![why.clone()]
    } else {
        let mut v = goals.violated(&ivs);
        v.extend(e.unmet.iter().cloned());
        v
    };
    c.feasible = c.violations.is_empty();
    c.invalid = e.invalid;
    c.details = e.details;
    c.seeds = n;
}

/// Run the whole tune: baseline, CMA-ES search, racing, analysis.
pub fn optimise<E: Evaluator>(
    dims: &[Dim],
    baseline: &[toml::Value],
    goals: &Goals,
    settings: &Settings,
    evaluator: &E,
    mut progress: impl FnMut(&str),
) -> Result<Outcome, TuneError> {
    let n0 = settings.seeds.len();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let new_candidate =
        |id: usize, generation: usize, key: &str, values: &[toml::Value]| Candidate {
            id,
            generation,
            key: key.to_string(),
            params: dims
                .iter()
                .zip(values)
                .map(|(d, v)| (d.key.clone(), v.clone()))
                .collect(),
            seeds: 0,
            kpis: BTreeMap::new(),
            score: Interval::of(&[]).into(),
            feasible: false,
            violations: Vec::new(),
            invalid: None,
            details: serde_json::Value::Null,
            values: values.to_vec(),
            per_seed: Vec::new(),
        };

    // Baseline.
    evaluator.phase(Phase::Baseline);
    let base_key = params_key(dims, baseline);
    let e = evaluator.evaluate(baseline, &base_key, &settings.seeds)?;
    let mut c = new_candidate(0, 0, &base_key, baseline);
    summarise(goals, &mut c, e, n0);
    candidates.push(c);
    index.insert(base_key.clone(), 0);
    evaluator.commit(&[(0, base_key)])?;
    progress(&format!("baseline: score {:.4}", candidates[0].score.mean));

    // CMA-ES over the unit cube.
    let start: Vec<f64> = dims
        .iter()
        .zip(baseline)
        .map(|(d, v)| d.unit(v).unwrap_or(0.5))
        .collect();
    let evaluated: Mutex<BTreeMap<String, (Vec<toml::Value>, Evaluation)>> =
        Mutex::new(BTreeMap::new());
    let failure: Mutex<Option<TuneError>> = Mutex::new(None);
    let known: BTreeMap<String, f64> =
        BTreeMap::from([(candidates[0].key.clone(), candidates[0].score.mean)]);
    let known = Mutex::new(known);
    let objective = |u: &DVector<f64>| -> f64 {
        let values: Vec<toml::Value> = dims
            .iter()
            .zip(u.iter())
            .map(|(d, &x)| d.value(x))
            .collect();
        let outside: f64 = u.iter().map(|&x| (x - x.clamp(0.0, 1.0)).powi(2)).sum();
        let key = params_key(dims, &values);
        let cached = known.lock().ok().and_then(|k| k.get(&key).copied());
        let score = match cached {
            Some(s) => s,
            None => match evaluator.evaluate(&values, &key, &settings.seeds) {
                Ok(e) => {
                    let s = if e.invalid.is_some() {
                        INVALID_SCORE
                    } else {
                        let v = goals.scores(&e.kpis, n0);
                        v.iter().sum::<f64>() / n0.max(1) as f64
                    };
                    if let Ok(mut k) = known.lock() {
                        k.insert(key.clone(), s);
                    }
                    if let Ok(mut ev) = evaluated.lock() {
                        ev.insert(key, (values, e));
                    }
                    s
                }
                Err(err) => {
                    // A pending result gets a finite stand-in so that CMA-ES (which stops at the
                    // first invalid value) still asks for every candidate of the generation:
                    // a sharded tune needs all of their pending simulations at once. The
                    // generation is discarded either way.
                    let stand_in = if matches!(err, TuneError::Pending) {
                        0.0
                    } else {
                        f64::NAN
                    };
                    if let Ok(mut f) = failure.lock() {
                        keep_worst(&mut f, err);
                    }
                    return stand_in;
                }
            },
        };
        if score.is_finite() {
            score - 10.0 * outside
        } else {
            INVALID_SCORE
        }
    };
    let population = settings.population.max(2);
    let mut cma = CMAESOptions::new(start, settings.sigma)
        .mode(Mode::Maximize)
        .population_size(population)
        .seed(settings.seed)
        .build(objective)
        .map_err(|e| TuneError::Search(format!("{e:?}")))?;
    let generations = settings.budget.div_ceil(population);
    let mut ran = 0;
    for g in 1..=generations {
        evaluator.phase(Phase::Generation {
            index: g,
            of: generations,
        });
        let stop = cma.next_parallel();
        ran = g;
        if let Some(err) = failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(err);
        }
        // This generation's new candidates, in canonical order.
        let fresh: Vec<(String, (Vec<toml::Value>, Evaluation))> = evaluated
            .lock()
            .map(|mut m| std::mem::take(&mut *m).into_iter().collect())
            .unwrap_or_default();
        let mut order = Vec::new();
        for (key, (values, e)) in fresh {
            if index.contains_key(&key) {
                continue;
            }
            let id = candidates.len();
            let mut c = new_candidate(id, g, &key, &values);
            summarise(goals, &mut c, e, n0);
            candidates.push(c);
            index.insert(key.clone(), id);
            order.push((id, key));
        }
        evaluator.commit(&order)?;
        let best = candidates
            .iter()
            .map(|c| c.score.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        progress(&format!(
            "generation {g}/{generations}: {} new candidate(s), best score so far {best:.4}",
            order.len()
        ));
        if stop.is_some() {
            break;
        }
    }
    drop(cma);

    // Racing: the best finalists and the baseline on more common seeds.
    let mut ranked: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].invalid.is_none())
        .collect();
    ranked.sort_by(|&a, &b| {
        candidates[b]
            .score
            .mean
            .total_cmp(&candidates[a].score.mean)
            .then(a.cmp(&b))
    });
    let mut finalists: Vec<usize> = ranked.iter().copied().take(settings.finalists).collect();
    if !finalists.contains(&0) && candidates[0].invalid.is_none() {
        finalists.push(0);
    }
    let mut seeds = settings.seeds.clone();
    let mut extra = settings.extra_seeds.iter().copied();
    let leader = |cands: &[Candidate], fin: &[usize]| -> usize {
        let mut best = fin[0];
        for &f in fin {
            if cands[f].score.mean > cands[best].score.mean {
                best = f;
            }
        }
        best
    };
    let paired = |a: &Candidate, b: &Candidate| -> Interval {
        let n = a.per_seed.len().min(b.per_seed.len());
        let d: Vec<f64> = (0..n).map(|s| a.per_seed[s] - b.per_seed[s]).collect();
        Interval::of(&d)
    };
    let separated = |cands: &[Candidate], fin: &[usize]| -> bool {
        let l = leader(cands, fin);
        fin.iter()
            .filter(|&&f| f != l)
            .all(|&f| paired(&cands[l], &cands[f]).lo > 0.0)
    };
    if finalists.len() > 1 {
        let mut round = 0;
        while !separated(&candidates, &finalists) {
            let more: Vec<u64> = extra.by_ref().take(n0).collect();
            if more.is_empty() {
                break;
            }
            seeds.extend(more);
            round += 1;
            evaluator.phase(Phase::Racing {
                round,
                seeds: seeds.len(),
            });
            let results: Vec<Result<Evaluation, TuneError>> = finalists
                .par_iter()
                .map(|&f| evaluator.evaluate(&candidates[f].values, &candidates[f].key, &seeds))
                .collect();
            let mut evaluations = Vec::with_capacity(results.len());
            let mut failed = None;
            for r in results {
                match r {
                    Ok(e) => evaluations.push(e),
                    Err(err) => keep_worst(&mut failed, err),
                }
            }
            if let Some(err) = failed {
                return Err(err);
            }
            for (&f, e) in finalists.iter().zip(evaluations) {
                summarise(goals, &mut candidates[f], e, seeds.len());
            }
            let order: Vec<(usize, String)> = finalists
                .iter()
                .map(|&f| (f, candidates[f].key.clone()))
                .collect();
            evaluator.commit(&order)?;
            progress(&format!(
                "racing: {} finalists on {} seeds",
                finalists.len(),
                seeds.len()
            ));
        }
    }
    let is_separated = finalists.len() <= 1 || separated(&candidates, &finalists);
    let best = if finalists.is_empty() {
        0
    } else {
        leader(&candidates, &finalists)
    };
    let mut fin: Vec<Finalist> = finalists
        .iter()
        .map(|&f| Finalist {
            id: f,
            score: candidates[f].score,
            leader_minus_this: (f != best)
                .then(|| paired(&candidates[best], &candidates[f]).into()),
        })
        .collect();
    fin.sort_by(|a, b| b.score.mean.total_cmp(&a.score.mean).then(a.id.cmp(&b.id)));

    let pareto_objectives = pareto_objectives(goals, &candidates);
    let pareto = pareto_front(&candidates, &pareto_objectives);
    let sensitivity = sensitivity(dims, goals, &candidates);
    Ok(Outcome {
        dims: dims.to_vec(),
        goals: goals.clone(),
        settings: settings.clone(),
        candidates,
        generations: ran,
        finalists: fin,
        separated: is_separated,
        final_seeds: seeds.len(),
        recommended: best,
        pareto,
        pareto_objectives,
        sensitivity,
    })
}

/// The objectives of the Pareto front: the tune's objectives, plus `adversary_roi_gap` (min)
/// when only one objective is set and the candidates report it.
fn pareto_objectives(goals: &Goals, candidates: &[Candidate]) -> Vec<Objective> {
    let mut o = goals.objectives.clone();
    let has_gap = candidates
        .iter()
        .any(|c| c.kpis.contains_key(spec::ADVERSARY_ROI_GAP));
    if o.len() == 1 && has_gap && o[0].metric != spec::ADVERSARY_ROI_GAP {
        o.push(Objective {
            metric: spec::ADVERSARY_ROI_GAP.into(),
            goal: Goal::Min,
        });
    }
    o
}

/// Ids of the candidates no other valid candidate dominates on the objectives' means.
pub fn pareto_front(candidates: &[Candidate], objectives: &[Objective]) -> Vec<usize> {
    let point = |c: &Candidate| -> Option<Vec<f64>> {
        objectives
            .iter()
            .map(|o| {
                c.kpis
                    .get(&o.metric)
                    .map(|s| o.goal.sign() * s.mean)
                    .filter(|x| x.is_finite())
            })
            .collect()
    };
    let pts: Vec<(usize, Vec<f64>)> = candidates
        .iter()
        .filter(|c| c.invalid.is_none())
        .filter_map(|c| point(c).map(|p| (c.id, p)))
        .collect();
    pts.iter()
        .filter(|(_, p)| {
            !pts.iter().any(|(_, q)| {
                q.iter().zip(p).all(|(a, b)| a >= b) && q.iter().zip(p).any(|(a, b)| a > b)
            })
        })
        .map(|(id, _)| *id)
        .collect()
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation of paired finite values (NaN with fewer than 3 pairs or no
/// variation).
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .collect();
    if pairs.len() < 3 {
        return f64::NAN;
    }
    let rx = ranks(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
    let ry = ranks(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
    let n = rx.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let cov: f64 = rx.iter().zip(&ry).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = rx.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = ry.iter().map(|b| (b - my).powi(2)).sum();
    if vx <= 0.0 || vy <= 0.0 {
        return f64::NAN;
    }
    cov / (vx * vy).sqrt()
}

fn sensitivity(dims: &[Dim], goals: &Goals, candidates: &[Candidate]) -> Vec<Sensitivity> {
    let valid: Vec<&Candidate> = candidates.iter().filter(|c| c.invalid.is_none()).collect();
    dims.iter()
        .enumerate()
        .map(|(i, d)| {
            let x: Vec<f64> = valid.iter().map(|c| d.number(&c.values[i])).collect();
            let score: Vec<f64> = valid.iter().map(|c| c.score.mean).collect();
            let objectives = goals
                .objectives
                .iter()
                .map(|o| {
                    let y: Vec<f64> = valid
                        .iter()
                        .map(|c| c.kpis.get(&o.metric).map_or(f64::NAN, |s| s.mean))
                        .collect();
                    (o.metric.clone(), spearman(&x, &y))
                })
                .collect();
            Sensitivity {
                key: d.key.clone(),
                score: spearman(&x, &score),
                objectives,
            }
        })
        .collect()
}

/// The recommended candidate's free parameters as a ready-to-paste TOML snippet (nested
/// tables, e.g. `[mechanism]` and `[mechanism.ledger_weights]`).
pub fn snippet(outcome: &Outcome, header: &str) -> String {
    let mut t = toml::Table::new();
    for (k, v) in &outcome.best().params {
        // Keys were validated at load; a failure here only drops the key from the snippet.
        let _ = crate::scenario::set_path(&mut t, k, v.clone());
    }
    let body = toml::to_string(&t).unwrap_or_default();
    format!("{header}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_map_the_unit_cube() {
        let d = Dim {
            key: "a".into(),
            min: 0.3,
            max: 0.9,
            integer: false,
            choices: vec![],
        };
        assert_eq!(d.value(0.5), toml::Value::Float(0.6));
        assert_eq!(d.value(-3.0), toml::Value::Float(0.3));
        assert_eq!(d.unit(&toml::Value::Float(0.9)), Some(1.0));
        let c = Dim {
            key: "c".into(),
            min: 0.0,
            max: 1.0,
            integer: false,
            choices: vec!["x".into(), "y".into()],
        };
        assert_eq!(c.value(0.7), toml::Value::from("y"));
        assert_eq!(c.unit(&toml::Value::from("x")), Some(0.25));
    }

    #[test]
    fn every_tunable_kpi_has_a_declared_scale() {
        for m in spec::METRICS {
            assert!(
                orchestra_stats::metrics::declared(m).is_some(),
                "tuner KPI `{m}` has no scale in orchestra_stats::metrics::METRICS"
            );
        }
    }

    #[test]
    fn proportion_kpis_keep_their_intervals_in_the_unit_interval() {
        let goals = Goals {
            objectives: vec![Objective {
                metric: "honest_share".into(),
                goal: Goal::Max,
            }],
            constraints: vec![],
        };
        let near_one = vec![1.0, 1.0, 0.9722, 0.9825, 0.9888];
        let rao = vec![1.0e9, 3.0e9, 2.0e9, 2.5e9, 1.5e9];
        let e = Evaluation {
            kpis: BTreeMap::from([
                ("honest_share".to_string(), near_one.clone()),
                (spec::ADVERSARY_ROI_GAP.to_string(), rao.clone()),
            ]),
            invalid: None,
            details: serde_json::Value::Null,
            unmet: Vec::new(),
        };
        let mut c = blank_candidate();
        summarise(&goals, &mut c, e, 5);
        let share = c.kpis["honest_share"];
        assert!(Interval::of(&near_one).hi > 1.0);
        assert!(
            0.0 < share.lo && share.lo < share.mean && share.hi < 1.0,
            "{share:?}"
        );
        assert_eq!(c.kpis[spec::ADVERSARY_ROI_GAP], Interval::of(&rao).into());
        // The score is a penalised objective, not a proportion: the plain t-interval.
        assert_eq!(c.score, Interval::of(&near_one).into());
    }

    /// A candidate with nothing evaluated yet.
    fn blank_candidate() -> Candidate {
        Candidate {
            id: 0,
            generation: 0,
            key: String::new(),
            params: BTreeMap::new(),
            seeds: 0,
            kpis: BTreeMap::new(),
            score: Interval::of(&[]).into(),
            feasible: false,
            violations: vec![],
            invalid: None,
            details: serde_json::Value::Null,
            values: vec![],
            per_seed: vec![],
        }
    }

    #[test]
    fn an_unmet_evaluator_constraint_makes_a_candidate_infeasible_even_when_the_means_pass() {
        let goals = Goals {
            objectives: vec![Objective {
                metric: "honest_share".into(),
                goal: Goal::Max,
            }],
            constraints: vec![Bound {
                metric: spec::ADVERSARY_ROI_GAP.into(),
                kind: Goal::Max,
                bound: 0.0,
            }],
        };
        let kpis = BTreeMap::from([
            ("honest_share".to_string(), vec![0.9, 0.92, 0.91]),
            // Below honest on the mean in every seed.
            (spec::ADVERSARY_ROI_GAP.to_string(), vec![-0.1, -0.05, -0.2]),
        ]);
        let e = |unmet: Vec<String>| Evaluation {
            kpis: kpis.clone(),
            invalid: None,
            details: serde_json::Value::Null,
            unmet,
        };
        let mut ok = blank_candidate();
        summarise(&goals, &mut ok, e(vec![]), 3);
        assert!(ok.feasible, "{:?}", ok.violations);
        let mut apart = blank_candidate();
        summarise(
            &goals,
            &mut apart,
            e(vec!["sybil: not separated".into()]),
            3,
        );
        assert!(!apart.feasible);
        assert_eq!(apart.violations, vec!["sybil: not separated".to_string()]);
        // The search's score is the same: only feasibility reads the intervals.
        assert_eq!(ok.score, apart.score);
    }

    #[test]
    fn spearman_and_pareto() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 25.0, 40.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        let mk = |id: usize, a: f64, b: f64| {
            let mut c = Candidate {
                id,
                generation: 0,
                key: String::new(),
                params: BTreeMap::new(),
                seeds: 1,
                kpis: BTreeMap::new(),
                score: Interval::of(&[]).into(),
                feasible: true,
                violations: vec![],
                invalid: None,
                details: serde_json::Value::Null,
                values: vec![],
                per_seed: vec![],
            };
            for (m, v) in [("a", a), ("b", b)] {
                c.kpis.insert(
                    m.into(),
                    Stat {
                        mean: v,
                        lo: v,
                        hi: v,
                        n: 1,
                    },
                );
            }
            c
        };
        let cands = vec![
            mk(0, 1.0, 1.0),
            mk(1, 2.0, 0.5),
            mk(2, 0.5, 0.5),
            mk(3, 1.0, 2.0),
        ];
        let obj = vec![
            Objective {
                metric: "a".into(),
                goal: Goal::Max,
            },
            Objective {
                metric: "b".into(),
                goal: Goal::Max,
            },
        ];
        assert_eq!(pareto_front(&cands, &obj), vec![1, 3]);
    }
}
