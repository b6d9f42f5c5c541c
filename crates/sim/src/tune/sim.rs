//! The real evaluator: simulate a candidate against the scenario's adversaries and an inner
//! search over their knobs, and report the worst case.
//!
//! **Inner search.** Probe 0 runs every adversary group with its parameters as written. Probes
//! `1..=inner_probes` are a fixed design — each adversary group's knobs
//! ([`orchestra_adversaries::knobs`]) drawn uniformly from their ranges, the same draws for every
//! candidate. Then `inner_refine` refinement probes: each group perturbs its best knobs so far
//! (Gaussian, 0.2 of the range). Every probe sets all groups' knobs at once and each group keeps
//! the probe that maximises *its* ROI gap to honest work, so one probe serves every group (the
//! groups' interaction is part of the scenario). All probes of a candidate run on the same seeds.
//!
//! **Worst case.** For each KPI the candidate reports the probe whose mean is worst (lowest
//! honest share, highest detection lag, …), per seed; `adversary_roi_gap` is, per seed, the
//! largest gap among the groups' best responses, where a group's gap is its ROI per identity
//! minus honest's, divided by |honest's mean ROI| at probe 0.
//!
//! Every simulation is a run of the run table: `point` numbers each (candidate, probe) pair,
//! `params` holds the candidate's free parameters and the adversaries' knobs
//! (`miners.<label>.params.<knob>`).

use super::spec::{ADVERSARY_ROI_GAP, SPLIT_ERROR, has_adversaries};
use super::store::{JobId, RunKpis, Store};
use super::{Bound, Dim, Evaluation, Goal, Goals, Outcome, Phase, TuneError, TuneSpec};
use crate::engine::{RunOutput, RunSpec, run};
use crate::inputs::Inputs;
use crate::scenario::{Point, Scenario, ScenarioSpec, set_path};
use orchestra_adversaries::{Knob, KnobKind};
use orchestra_stats::Interval;
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// KPIs every candidate reports besides its objectives and constraints, with the direction
/// that is better.
const ALWAYS: &[(&str, Goal)] = &[
    ("honest_share", Goal::Max),
    ("ledger_accuracy", Goal::Max),
    ("detection_lag_blocks", Goal::Min),
    ("success_rate", Goal::Max),
    (SPLIT_ERROR, Goal::Min),
];

/// An adversary group the inner search varies.
#[derive(Debug, Clone)]
struct Group {
    index: usize,
    label: String,
    strategy: String,
    /// The strategy's knobs, with `[tune.knobs]` ranges applied.
    knobs: Vec<Knob>,
    params: toml::Table,
}

/// What [`ScenarioEvaluator::assess`] finds for a candidate over some probes.
struct Assessment {
    /// KPI → per seed, worst case over the probes.
    kpis: BTreeMap<String, Vec<f64>>,
    /// Worst probe per KPI and each adversary group's best response.
    details: serde_json::Value,
    /// Probes that decided something (kept for racing).
    used: BTreeSet<usize>,
    /// Constraints unmet beyond the KPI means (adversary groups not separated from honest).
    unmet: Vec<String>,
}

/// One probe: per adversary group, the knobs' unit coordinates (`None`: as written).
type Probe = Vec<Option<Vec<f64>>>;

/// A finished (probe, seed) simulation of a candidate, or why it failed.
type ProbeRun = (usize, u64, Result<RunOutput, String>);

/// A simulation the search needs, with everything needed to run it (a resumable or sharded
/// tune runs these between passes of the search, see [`super::store`]).
#[derive(Debug, Clone)]
pub struct Job {
    /// Which simulation.
    pub id: JobId,
    values: Vec<toml::Value>,
    probe: Probe,
    /// The candidate's orchestration share (for `split_error`).
    share: f64,
    /// The run table's `params` column.
    params: String,
}

/// Stage → the jobs a pass met at that stage, and whether each was stored.
type Stages = BTreeMap<usize, BTreeMap<JobId, (Job, bool)>>;

/// The jobs of the first incomplete stage of a pass (see [`ScenarioEvaluator::take_batch`]).
#[derive(Debug)]
pub struct Batch {
    /// Where in the search, e.g. `generation 2/3 · refinement 1/1`.
    pub label: String,
    /// Every job of the stage in canonical order, with whether it is stored.
    pub jobs: Vec<(Job, bool)>,
    /// A number of the batch that every pass gives it (from the phase and stage), so that
    /// the shards can rotate who gets the first job of each batch.
    pub ordinal: usize,
}

#[derive(Default)]
struct CandState {
    probes: Vec<Probe>,
    results: BTreeMap<(usize, u64), RunKpis>,
    /// Runs to write at the next commit: simulated here, or (`None`) stored.
    pending: Vec<(usize, u64, Option<RunOutput>)>,
    /// Probes still used (racing re-runs only these).
    active: BTreeSet<usize>,
    evaluated: bool,
}

struct Writers {
    dir: PathBuf,
    runs: BufWriter<File>,
    events: BufWriter<File>,
    manifests: BufWriter<File>,
    next_point: u32,
    /// (candidate key, probe) → point index.
    points: BTreeMap<(String, usize), u32>,
    /// Point index → params, for points.json.
    params: Vec<(u32, BTreeMap<String, toml::Value>)>,
}

/// Simulates candidates of a scenario's `[tune]`.
pub struct ScenarioEvaluator<'a> {
    scenario: &'a Scenario,
    inputs: &'a Inputs,
    tune: TuneSpec,
    table: toml::Table,
    days: Option<f64>,
    dims: Vec<Dim>,
    groups: Vec<Group>,
    honest: Vec<String>,
    adversaries: Vec<String>,
    design: Vec<Probe>,
    better: BTreeMap<String, Goal>,
    goals: Goals,
    state: Mutex<BTreeMap<String, CandState>>,
    /// The output tables; `None` while a resumable tune replays without writing.
    writers: Mutex<Option<Writers>>,
    /// Where results are stored and read (a resumable or sharded tune).
    store: Option<&'a Store>,
    /// Stage → the jobs the current pass met at that stage, and whether each was stored.
    batches: Mutex<Stages>,
    phase: Mutex<Option<Phase>>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TuneError + '_ {
    move |error| TuneError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn uniform(rng: &mut impl Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn normal(rng: &mut impl Rng) -> f64 {
    let u1 = uniform(rng).max(f64::MIN_POSITIVE);
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The unit coordinate of a knob's value as written (`None` → its default).
fn knob_unit(k: &Knob, v: Option<&toml::Value>) -> f64 {
    let span = (k.max - k.min).max(f64::MIN_POSITIVE);
    let x = match (v, k.kind) {
        (Some(toml::Value::Float(f)), _) => *f,
        (Some(toml::Value::Integer(i)), _) => *i as f64,
        (Some(toml::Value::Boolean(b)), _) => f64::from(u8::from(*b)),
        (Some(toml::Value::String(s)), KnobKind::Choice(names)) => names
            .iter()
            .position(|n| n == s)
            .map_or(k.default, |i| i as f64),
        (Some(toml::Value::Array(items)), KnobKind::Subset(names)) => items
            .iter()
            .filter_map(|i| i.as_str())
            .filter_map(|s| names.iter().position(|n| *n == s))
            .map(|i| (1u64 << i) as f64)
            .sum(),
        _ => k.default,
    };
    ((x - k.min) / span).clamp(0.0, 1.0)
}

fn knob_value(k: &Knob, u: f64) -> toml::Value {
    k.to_toml(k.min + u.clamp(0.0, 1.0) * (k.max - k.min))
}

impl<'a> ScenarioEvaluator<'a> {
    /// An evaluator for `scenario` (which must have `[tune]`), writing the run table to `dir`.
    /// `days` overrides `[scenario] days`.
    pub fn new(
        scenario: &'a Scenario,
        inputs: &'a Inputs,
        dir: &Path,
        days: Option<f64>,
    ) -> Result<Self, TuneError> {
        let eval = Self::build(scenario, inputs, days, None)?;
        eval.open_output(dir)?;
        Ok(eval)
    }

    /// An evaluator that never simulates inside the search: it reads results from `store`, and
    /// a missing one stops the search with [`TuneError::Pending`] after noting the job
    /// ([`Self::take_batch`]); [`super::store::run`] drives it. No output until
    /// [`Self::open_output`].
    pub fn with_store(
        scenario: &'a Scenario,
        inputs: &'a Inputs,
        days: Option<f64>,
        store: &'a Store,
    ) -> Result<Self, TuneError> {
        Self::build(scenario, inputs, days, Some(store))
    }

    fn build(
        scenario: &'a Scenario,
        inputs: &'a Inputs,
        days: Option<f64>,
        store: Option<&'a Store>,
    ) -> Result<Self, TuneError> {
        let base = &scenario.points[0].spec;
        let tune = base
            .tune
            .clone()
            .ok_or_else(|| TuneError::Search("the scenario has no [tune] table".into()))?;
        let mut table: toml::Table = toml::from_str(&scenario.doc.text)
            .map_err(|e| TuneError::Search(format!("scenario: {e}")))?;
        table.remove("tune");
        let dims: Vec<Dim> = tune
            .free
            .iter()
            .map(|(k, p)| Dim::from_free(k, p))
            .collect();
        let groups: Vec<Group> = base
            .miners
            .iter()
            .enumerate()
            .filter(|(_, g)| g.strategy != "honest")
            .map(|(i, g)| Group {
                index: i,
                label: g.label().to_string(),
                strategy: g.strategy.clone(),
                knobs: orchestra_adversaries::knobs(&g.strategy)
                    .iter()
                    .map(|k| {
                        let narrowed = tune.knobs.get(g.label()).and_then(|m| m.get(k.name));
                        match narrowed {
                            Some(r) => Knob {
                                min: r.min,
                                max: r.max,
                                ..*k
                            },
                            None => *k,
                        }
                    })
                    .collect(),
                params: g.params.clone(),
            })
            .collect();
        let honest = base
            .miners
            .iter()
            .filter(|g| g.strategy == "honest")
            .map(|g| g.label().to_string())
            .collect();
        let adversaries = groups.iter().map(|g| g.label.clone()).collect();
        let design = (1..=tune.inner_probes)
            .map(|j| {
                groups
                    .iter()
                    .map(|g| {
                        (!g.knobs.is_empty()).then(|| {
                            let mut rng =
                                crate::rng::stream(tune.seed, &format!("tune/probe/{j}"), &g.label);
                            g.knobs.iter().map(|_| uniform(&mut rng)).collect()
                        })
                    })
                    .collect()
            })
            .collect();
        let goals = goals_of(&tune, has_adversaries(base));
        let mut better: BTreeMap<String, Goal> =
            ALWAYS.iter().map(|(m, g)| ((*m).to_string(), *g)).collect();
        for b in &goals.constraints {
            let g = if b.kind == Goal::Max {
                Goal::Min
            } else {
                Goal::Max
            };
            better.insert(b.metric.clone(), g);
        }
        for o in &goals.objectives {
            better.insert(o.metric.clone(), o.goal);
        }
        if !has_adversaries(base) {
            better.remove(ADVERSARY_ROI_GAP);
        }

        Ok(ScenarioEvaluator {
            scenario,
            inputs,
            tune,
            table,
            days,
            dims,
            groups,
            honest,
            adversaries,
            design,
            better,
            goals,
            state: Mutex::new(BTreeMap::new()),
            writers: Mutex::new(None),
            store,
            batches: Mutex::new(BTreeMap::new()),
            phase: Mutex::new(None),
        })
    }

    /// Create the output directory `dir` (`scenario.toml` and the run tables' headers); every
    /// commit from now on writes its runs there.
    pub fn open_output(&self, dir: &Path) -> Result<(), TuneError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let copy = dir.join("scenario.toml");
        std::fs::write(&copy, &self.scenario.doc.text).map_err(io(&copy))?;
        let open = |name: &str, header: &str| -> Result<BufWriter<File>, TuneError> {
            let path = dir.join(name);
            let mut w = BufWriter::new(File::create(&path).map_err(io(&path))?);
            writeln!(w, "{header}").map_err(io(&path))?;
            Ok(w)
        };
        let writers = Writers {
            dir: dir.to_path_buf(),
            runs: open(
                "runs.csv",
                "scenario,point,params,seed,epoch,entity,strategy,metric,value",
            )?,
            events: open("events.csv", "scenario,point,seed,block,epoch,kind,detail")?,
            manifests: BufWriter::new(
                File::create(dir.join("manifests.jsonl"))
                    .map_err(io(&dir.join("manifests.jsonl")))?,
            ),
            next_point: 0,
            points: BTreeMap::new(),
            params: Vec::new(),
        };
        *self
            .writers
            .lock()
            .map_err(|_| TuneError::Search("writer lock poisoned".into()))? = Some(writers);
        Ok(())
    }

    /// The state directory, for a resumable or sharded tune.
    pub fn store(&self) -> Option<&'a Store> {
        self.store
    }

    /// Forget every candidate, for a fresh pass of the search (results stay in the store).
    pub fn reset(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.clear();
        }
        if let Ok(mut b) = self.batches.lock() {
            b.clear();
        }
        if let Ok(mut p) = self.phase.lock() {
            *p = None;
        }
    }

    /// After a pass stopped with [`TuneError::Pending`]: the first stage with missing results.
    /// Every candidate of the phase reached it (the stages before it are complete), so its job
    /// list is the same whichever results are stored — what lets shards agree on who runs what.
    pub fn take_batch(&self) -> Option<Batch> {
        let batches = std::mem::take(&mut *self.batches.lock().ok()?);
        let (stage, jobs) = batches
            .into_iter()
            .find(|(_, jobs)| jobs.values().any(|(_, stored)| !stored))?;
        let phase = self.phase.lock().ok().and_then(|p| *p);
        let mut label = phase.map_or_else(|| "search".to_string(), |p| p.to_string());
        if !matches!(phase, Some(Phase::Racing { .. })) {
            if stage == 0 {
                label.push_str(" · probes");
            } else {
                label.push_str(&format!(" · refinement {stage}/{}", self.tune.inner_refine));
            }
        }
        // Any numbering fixed by (phase, stage) does; racing rounds start far past any
        // generation count.
        let phase_number = match phase {
            None | Some(Phase::Baseline) => 0,
            Some(Phase::Generation { index, .. }) => index,
            Some(Phase::Racing { round, .. }) => 1_000_000 + round,
        };
        Some(Batch {
            label,
            jobs: jobs.into_values().collect(),
            ordinal: phase_number * (self.tune.inner_refine as usize + 1) + stage,
        })
    }

    /// Simulate `jobs` in parallel, storing each result as soon as it is done (an interrupted
    /// process keeps what it finished). Jobs another process stored meanwhile are skipped.
    pub fn simulate_jobs(&self, jobs: &[Job]) -> Result<(), TuneError> {
        let store = self
            .store
            .ok_or_else(|| TuneError::Search("no state directory to store results in".into()))?;
        let results: Vec<Result<(), TuneError>> = jobs
            .par_iter()
            .map(|job| {
                if store.contains(&job.id) {
                    return Ok(());
                }
                let id = &job.id;
                let failed = |e: String| {
                    TuneError::Run(format!(
                        "candidate {}, probe {}, seed {}: {e}",
                        id.candidate, id.probe, id.seed
                    ))
                };
                let spec = self.spec_at(&job.values, &job.probe).map_err(failed)?;
                let out = run(&RunSpec {
                    spec: &spec,
                    point: 0,
                    seed: id.seed,
                    inputs: self.inputs,
                })
                .map_err(|e| failed(e.to_string()))?;
                store.save(id, &job.params, &self.kpis_of(&out, job.share), &out)
            })
            .collect();
        results.into_iter().collect()
    }

    /// Take results of `jobs` (one stage of candidate `key`) from the store, noting every job
    /// for [`Self::take_batch`]; [`TuneError::Pending`] if any is missing.
    #[allow(clippy::too_many_arguments)]
    fn read_stored(
        &self,
        store: &Store,
        key: &str,
        values: &[toml::Value],
        share: f64,
        st: &mut CandState,
        jobs: &[(usize, u64)],
        stage: usize,
    ) -> Result<(), TuneError> {
        let mut met = Vec::with_capacity(jobs.len());
        let mut missing = false;
        for &(p, seed) in jobs {
            let job = Job {
                id: JobId {
                    candidate: key.to_string(),
                    probe: p,
                    seed,
                },
                values: values.to_vec(),
                probe: st.probes[p].clone(),
                share,
                params: params_text(&self.point_params(values, &st.probes[p])),
            };
            let stored = match store.kpis(&job.id, &job.params)? {
                Some(k) => {
                    st.results.insert((p, seed), k);
                    st.pending.push((p, seed, None));
                    true
                }
                None => {
                    missing = true;
                    false
                }
            };
            met.push((job, stored));
        }
        if let Ok(mut b) = self.batches.lock() {
            let stage_jobs = b.entry(stage).or_default();
            for (job, stored) in met {
                stage_jobs.insert(job.id.clone(), (job, stored));
            }
        }
        if missing {
            Err(TuneError::Pending)
        } else {
            Ok(())
        }
    }

    /// The free parameters.
    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    /// Objectives and constraints.
    pub fn goals(&self) -> &Goals {
        &self.goals
    }

    /// The `[tune]` table.
    pub fn tune(&self) -> &TuneSpec {
        &self.tune
    }

    /// The scenario's own values of the free parameters (the baseline candidate).
    pub fn baseline(&self) -> Vec<toml::Value> {
        let spec = &self.scenario.points[0].spec;
        let full = toml::Value::try_from(spec).unwrap_or(toml::Value::Table(toml::Table::new()));
        self.dims
            .iter()
            .map(|d| {
                let mut node = Some(&full);
                for seg in crate::located::parse_path(&d.key) {
                    node = match (seg, node) {
                        (crate::located::Seg::Key(k), Some(toml::Value::Table(t))) => t.get(&k),
                        (crate::located::Seg::Key(k), Some(toml::Value::Array(a))) => {
                            a.iter().find(|v| {
                                v.get("name")
                                    .or_else(|| v.get("strategy"))
                                    .and_then(|x| x.as_str())
                                    == Some(k.as_str())
                            })
                        }
                        (crate::located::Seg::Index(i), Some(toml::Value::Array(a))) => a.get(i),
                        _ => None,
                    };
                }
                let v = node.cloned();
                // The written value, snapped onto the search grid (or the range's middle).
                match v.as_ref().and_then(|v| d.unit(v)) {
                    Some(u) if d.choices.is_empty() => d.value(u),
                    Some(_) => v.unwrap_or_else(|| d.value(0.5)),
                    None => d.value(0.5),
                }
            })
            .collect()
    }

    fn group_params(&self, g: &Group, u: Option<&Vec<f64>>) -> toml::Table {
        let mut p = g.params.clone();
        if let Some(u) = u {
            for (k, x) in g.knobs.iter().zip(u) {
                p.insert(k.name.to_string(), knob_value(k, *x));
            }
        }
        p
    }

    /// Every knob of `g` at unit point `u` (`None`: as written, defaults filled in).
    fn knob_values(&self, g: &Group, u: Option<&Vec<f64>>) -> toml::Table {
        let p = self.group_params(g, u);
        g.knobs
            .iter()
            .map(|k| {
                let v = p
                    .get(k.name)
                    .cloned()
                    .unwrap_or_else(|| k.to_toml(k.default));
                (k.name.to_string(), v)
            })
            .collect()
    }

    /// The scenario at candidate `values` and `probe`, or why it is invalid.
    fn spec_at(&self, values: &[toml::Value], probe: &Probe) -> Result<ScenarioSpec, String> {
        let mut t = self.table.clone();
        for (d, v) in self.dims.iter().zip(values) {
            set_path(&mut t, &d.key, v.clone())?;
        }
        for (g, u) in self.groups.iter().zip(probe) {
            if u.is_some() {
                let p = self.group_params(g, u.as_ref());
                set_path(
                    &mut t,
                    &format!("miners[{}].params", g.index),
                    toml::Value::Table(p),
                )?;
            }
        }
        let mut spec: ScenarioSpec = toml::Value::Table(t)
            .try_into()
            .map_err(|e: toml::de::Error| e.message().to_string())?;
        spec.mechanism
            .validate()
            .map_err(|e| format!("invalid mechanism parameters: {e}"))?;
        if let Some(d) = self.days {
            spec.scenario.days = d;
        }
        Ok(spec)
    }

    /// The params column of (candidate, probe).
    fn point_params(&self, values: &[toml::Value], probe: &Probe) -> BTreeMap<String, toml::Value> {
        let mut m: BTreeMap<String, toml::Value> = self
            .dims
            .iter()
            .zip(values)
            .map(|(d, v)| (d.key.clone(), v.clone()))
            .collect();
        for (g, u) in self.groups.iter().zip(probe) {
            for (k, v) in self.knob_values(g, u.as_ref()) {
                m.insert(format!("miners.{}.params.{k}", g.label), v);
            }
        }
        m
    }

    fn kpis_of(&self, out: &RunOutput, share: f64) -> RunKpis {
        let mut k = RunKpis::default();
        for row in out.rows.iter().filter(|r| r.epoch < 0) {
            if &*row.entity == "all" {
                k.all.insert(row.metric.to_string(), row.value);
            } else if let Some(label) = row.entity.strip_prefix("strategy:")
                && row.metric == "roi_per_identity_rao"
            {
                k.roi.insert(label.to_string(), row.value);
            }
        }
        let split = k
            .all
            .get("split_orchestration")
            .copied()
            .unwrap_or(f64::NAN);
        k.all.insert(SPLIT_ERROR.into(), (split - share).abs());
        k
    }

    fn honest_roi(&self, k: &RunKpis) -> f64 {
        let v: Vec<f64> = self
            .honest
            .iter()
            .filter_map(|h| k.roi.get(h).copied())
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// Run (probe, seed) pairs of a candidate in parallel.
    fn simulate(
        &self,
        values: &[toml::Value],
        probes: &[Probe],
        jobs: &[(usize, u64)],
    ) -> Result<Vec<ProbeRun>, TuneError> {
        let specs: Vec<Result<ScenarioSpec, String>> =
            probes.iter().map(|p| self.spec_at(values, p)).collect();
        Ok(jobs
            .par_iter()
            .map(|&(p, seed)| {
                let out = match &specs[p] {
                    Ok(spec) => run(&RunSpec {
                        spec,
                        point: 0,
                        seed,
                        inputs: self.inputs,
                    })
                    .map_err(|e| e.to_string()),
                    Err(why) => Err(why.clone()),
                };
                (p, seed, out)
            })
            .collect())
    }

    fn mean_over(v: &[f64]) -> f64 {
        Interval::of(v).mean
    }

    /// Per-seed KPIs, best responses and the probes they use.
    fn assess(&self, st: &CandState, probes: &[usize], seeds: &[u64]) -> Assessment {
        let get = |p: usize, s: u64| st.results.get(&(p, s));
        let series = |p: usize, f: &dyn Fn(&RunKpis) -> f64| -> Vec<f64> {
            seeds
                .iter()
                .map(|&s| get(p, s).map_or(f64::NAN, f))
                .collect()
        };
        let mut kpis = BTreeMap::new();
        let mut used = BTreeSet::from([0usize]);
        let mut worst_probe = BTreeMap::new();
        for (metric, goal) in &self.better {
            if metric == ADVERSARY_ROI_GAP {
                continue;
            }
            let mut best: Option<(usize, f64)> = None;
            for &p in probes {
                let m = Self::mean_over(&series(p, &|k| {
                    k.all.get(metric).copied().unwrap_or(f64::NAN)
                }));
                if !m.is_finite() {
                    continue;
                }
                // The worst mean for the mechanism: lowest of a "max" KPI, highest of a "min" one.
                let worse = match best {
                    None => true,
                    Some((_, b)) => goal.sign() * m < goal.sign() * b,
                };
                if worse {
                    best = Some((p, m));
                }
            }
            let p = best.map_or(0, |b| b.0);
            used.insert(p);
            worst_probe.insert(metric.clone(), p);
            kpis.insert(
                metric.clone(),
                series(p, &|k| k.all.get(metric).copied().unwrap_or(f64::NAN)),
            );
        }
        let mut responses = Vec::new();
        let mut unmet = Vec::new();
        if !self.adversaries.is_empty() && !self.honest.is_empty() {
            let scale = {
                let m = Self::mean_over(&series(0, &|k| self.honest_roi(k)));
                if m.is_finite() && m.abs() > 0.0 {
                    m.abs()
                } else {
                    1.0
                }
            };
            let mut gap_per_seed = vec![f64::NEG_INFINITY; seeds.len()];
            for (gi, label) in self.adversaries.iter().enumerate() {
                let gap = |p: usize| {
                    series(p, &|k| {
                        (k.roi.get(label).copied().unwrap_or(f64::NAN) - self.honest_roi(k)) / scale
                    })
                };
                let roi = |p: usize| series(p, &|k| k.roi.get(label).copied().unwrap_or(f64::NAN));
                let mut best = (0usize, Self::mean_over(&gap(0)));
                for &p in probes {
                    let m = Self::mean_over(&gap(p));
                    if m.is_finite() && (!best.1.is_finite() || m > best.1) {
                        best = (p, m);
                    }
                }
                used.insert(best.0);
                for (s, g) in gap(best.0).iter().enumerate() {
                    gap_per_seed[s] = gap_per_seed[s].max(*g);
                }
                let (r0, rb) = (roi(0), roi(best.0));
                let diff: Vec<f64> = rb.iter().zip(&r0).map(|(b, a)| b - a).collect();
                let diff = Interval::of(&diff);
                let g = &self.groups[gi];
                let probe = &st.probes[best.0];
                let (best_roi, honest_at_best) = (
                    Interval::of(&rb),
                    Interval::of(&series(best.0, &|k| self.honest_roi(k))),
                );
                // The constraint's bar (docs/tuning.md): below honest with the 95 % intervals
                // apart, as a run's `below_honest` check asks, not merely on the mean.
                let separated = best_roi.below(&honest_at_best);
                if self.gap_constrained() && !separated {
                    unmet.push(format!(
                        "{label}: ROI per identity at its best response {:.4e} [{:.4e}, {:.4e}] not below honest {:.4e} [{:.4e}, {:.4e}] with separated 95 % intervals",
                        best_roi.mean,
                        best_roi.lo,
                        best_roi.hi,
                        honest_at_best.mean,
                        honest_at_best.lo,
                        honest_at_best.hi
                    ));
                }
                responses.push(json!({
                    "group": label,
                    "strategy": g.strategy,
                    "probe": best.0,
                    "knobs": toml_json(&toml::Value::Table(self.knob_values(
                        g,
                        probe.get(gi).and_then(Option::as_ref),
                    ))),
                    "default_gap": stat(&Interval::of(&gap(0))),
                    "best_gap": stat(&Interval::of(&gap(best.0))),
                    "default_roi": stat(&Interval::of(&r0)),
                    "best_roi": stat(&best_roi),
                    "best_minus_default_roi": stat(&diff),
                    "honest_roi_at_best": stat(&honest_at_best),
                    "separated": separated,
                    "strictly_better": diff.n >= 2 && diff.lo > 0.0,
                }));
            }
            let gap_per_seed = gap_per_seed
                .into_iter()
                .map(|g| if g == f64::NEG_INFINITY { f64::NAN } else { g })
                .collect();
            kpis.insert(ADVERSARY_ROI_GAP.to_string(), gap_per_seed);
        }
        let details = json!({
            "probes": probes.len(),
            "worst_probe": worst_probe,
            "best_responses": responses,
        });
        Assessment {
            kpis,
            details,
            used,
            unmet,
        }
    }

    /// Whether `adversaries_below_honest` is one of the constraints.
    fn gap_constrained(&self) -> bool {
        self.goals
            .constraints
            .iter()
            .any(|b| b.metric == ADVERSARY_ROI_GAP)
    }
}

fn stat(i: &Interval) -> serde_json::Value {
    let f = |x: f64| if x.is_finite() { json!(x) } else { json!(null) };
    json!({"mean": f(i.mean), "lo": f(i.lo), "hi": f(i.hi), "n": i.n})
}

fn toml_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Objectives and constraints of `[tune]`.
pub fn goals_of(t: &TuneSpec, adversaries: bool) -> Goals {
    let mut constraints = Vec::new();
    if t.constraints
        .adversaries_below_honest
        .unwrap_or(adversaries)
    {
        constraints.push(Bound {
            metric: ADVERSARY_ROI_GAP.into(),
            kind: Goal::Max,
            bound: 0.0,
        });
    }
    if let Some(tol) = t.constraints.split_tolerance {
        constraints.push(Bound {
            metric: SPLIT_ERROR.into(),
            kind: Goal::Max,
            bound: tol,
        });
    }
    for (m, b) in &t.constraints.max {
        constraints.push(Bound {
            metric: m.clone(),
            kind: Goal::Max,
            bound: *b,
        });
    }
    for (m, b) in &t.constraints.min {
        constraints.push(Bound {
            metric: m.clone(),
            kind: Goal::Min,
            bound: *b,
        });
    }
    Goals {
        objectives: t.objectives.clone(),
        constraints,
    }
}

impl super::Evaluator for ScenarioEvaluator<'_> {
    fn evaluate(
        &self,
        values: &[toml::Value],
        key: &str,
        seeds: &[u64],
    ) -> Result<Evaluation, TuneError> {
        // Take this candidate's state out of the map while simulating (other candidates run
        // concurrently); identical keys in one generation evaluate twice, identically.
        let mut st = self
            .state
            .lock()
            .map_err(|_| TuneError::Search("state lock poisoned".into()))?
            .remove(key)
            .unwrap_or_default();
        let none: Probe = vec![None; self.groups.len()];
        if let Err(why) = self.spec_at(values, &none) {
            return Ok(Evaluation {
                invalid: Some(why),
                ..Evaluation::default()
            });
        }
        let share = self
            .spec_at(values, &none)
            .map_or(f64::NAN, |s| s.mechanism.orchestration_share);
        // `stage` numbers the steps of one candidate's evaluation that depend on each other:
        // 0 the probes as written and the design, r the r-th refinement (racing: 0).
        let run_probes =
            |st: &mut CandState, probes: Vec<usize>, stage: usize| -> Result<(), TuneError> {
                let jobs: Vec<(usize, u64)> = probes
                    .iter()
                    .flat_map(|&p| seeds.iter().map(move |&s| (p, s)))
                    .filter(|j| !st.results.contains_key(j))
                    .collect();
                if let Some(store) = self.store {
                    return self.read_stored(store, key, values, share, st, &jobs, stage);
                }
                for (p, seed, out) in self.simulate(values, &st.probes, &jobs)? {
                    let out = out.map_err(|e| {
                        TuneError::Run(format!("candidate {key}, probe {p}, seed {seed}: {e}"))
                    })?;
                    st.results.insert((p, seed), self.kpis_of(&out, share));
                    st.pending.push((p, seed, Some(out)));
                }
                Ok(())
            };
        if !st.evaluated {
            st.probes = std::iter::once(none.clone())
                .chain(self.design.iter().cloned())
                .collect();
            let all: Vec<usize> = (0..st.probes.len()).collect();
            run_probes(&mut st, all, 0)?;
            for r in 0..self.tune.inner_refine {
                let probes: Vec<usize> = (0..st.probes.len()).collect();
                let details = self.assess(&st, &probes, seeds).details;
                let best: Vec<usize> = details["best_responses"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|b| b["probe"].as_u64().unwrap_or(0) as usize)
                            .collect()
                    })
                    .unwrap_or_default();
                let probe: Probe = self
                    .groups
                    .iter()
                    .enumerate()
                    .map(|(gi, g)| {
                        if g.knobs.is_empty() {
                            return None;
                        }
                        let from = best.get(gi).copied().unwrap_or(0);
                        let centre: Vec<f64> = match st.probes[from].get(gi).cloned().flatten() {
                            Some(u) => u,
                            None => g
                                .knobs
                                .iter()
                                .map(|k| knob_unit(k, g.params.get(k.name)))
                                .collect(),
                        };
                        let mut rng = crate::rng::stream(
                            self.tune.seed,
                            &format!("tune/refine/{key}/{r}"),
                            &g.label,
                        );
                        Some(
                            centre
                                .iter()
                                .map(|c| (c + 0.2 * normal(&mut rng)).clamp(0.0, 1.0))
                                .collect(),
                        )
                    })
                    .collect();
                st.probes.push(probe);
                let p = st.probes.len() - 1;
                run_probes(&mut st, vec![p], r as usize + 1)?;
            }
            let probes: Vec<usize> = (0..st.probes.len()).collect();
            st.active = self.assess(&st, &probes, seeds).used;
            st.evaluated = true;
        } else {
            let active: Vec<usize> = st.active.iter().copied().collect();
            run_probes(&mut st, active, 0)?;
        }
        let probes: Vec<usize> = if st.active.is_empty() {
            (0..st.probes.len()).collect()
        } else {
            st.active.iter().copied().collect()
        };
        // During the search every probe counts; in racing only the ones still active.
        let probes = if seeds
            .iter()
            .all(|s| (0..st.probes.len()).all(|p| st.results.contains_key(&(p, *s))))
        {
            (0..st.probes.len()).collect()
        } else {
            probes
        };
        let a = self.assess(&st, &probes, seeds);
        self.state
            .lock()
            .map_err(|_| TuneError::Search("state lock poisoned".into()))?
            .insert(key.to_string(), st);
        Ok(Evaluation {
            kpis: a.kpis,
            invalid: None,
            details: a.details,
            unmet: a.unmet,
        })
    }

    fn phase(&self, phase: Phase) {
        if let Ok(mut p) = self.phase.lock() {
            *p = Some(phase);
        }
        // A batch is one stage of one phase: the previous phase's jobs are all stored (else the
        // search would have stopped there) and must not shift the new batch's job numbers.
        if let Ok(mut b) = self.batches.lock() {
            b.clear();
        }
    }

    fn commit(&self, order: &[(usize, String)]) -> Result<(), TuneError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| TuneError::Search("state lock poisoned".into()))?;
        let mut writers = self
            .writers
            .lock()
            .map_err(|_| TuneError::Search("writer lock poisoned".into()))?;
        for (_, key) in order {
            let Some(st) = state.get_mut(key) else {
                continue;
            };
            let mut pending = std::mem::take(&mut st.pending);
            // A resumable tune's passes before the last write nothing.
            let Some(w) = writers.as_mut() else {
                continue;
            };
            let runs_path = w.dir.join("runs.csv");
            pending.sort_by_key(|(p, s, _)| (*p, *s));
            let values: Vec<toml::Value> = key_values(&self.dims, key);
            for (p, seed, out) in pending {
                let point_key = (key.clone(), p);
                let index = match w.points.get(&point_key) {
                    Some(i) => *i,
                    None => {
                        let i = w.next_point;
                        w.next_point += 1;
                        w.points.insert(point_key, i);
                        let params = self.point_params(&values, &st.probes[p]);
                        w.params.push((i, params));
                        i
                    }
                };
                let params = self.point_params(&values, &st.probes[p]);
                let spec = self
                    .spec_at(&values, &st.probes[p])
                    .map_err(TuneError::Search)?;
                let point = Point {
                    index,
                    values: params,
                    spec,
                };
                let Writers {
                    runs,
                    events,
                    manifests,
                    ..
                } = w;
                match out {
                    Some(out) => crate::runner::write_run(
                        self.scenario,
                        &point,
                        seed,
                        &out,
                        runs,
                        events,
                        manifests,
                    ),
                    None => {
                        let store = self.store.ok_or_else(|| {
                            TuneError::Search("a stored run without a state directory".into())
                        })?;
                        let id = JobId {
                            candidate: key.clone(),
                            probe: p,
                            seed,
                        };
                        let lines = store.lines(&id, &point.params_string())?;
                        crate::runner::write_stored_run(
                            self.scenario,
                            &point,
                            seed,
                            &lines.rows,
                            &lines.events,
                            &lines.event_log_hash,
                            runs,
                            events,
                            manifests,
                        )
                    }
                }
                .map_err(io(&runs_path))?;
            }
        }
        Ok(())
    }
}

/// The run table's `params` column of a point's values (as [`Point::params_string`]).
fn params_text(values: &BTreeMap<String, toml::Value>) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The values of a canonical key (in `dims` order).
fn key_values(dims: &[Dim], key: &str) -> Vec<toml::Value> {
    let parts: BTreeMap<&str, &str> = key.split(';').filter_map(|kv| kv.split_once('=')).collect();
    dims.iter()
        .map(|d| {
            let text = parts.get(d.key.as_str()).copied().unwrap_or("");
            let parsed: Option<toml::Value> = toml::from_str::<toml::Table>(&format!("v = {text}"))
                .ok()
                .and_then(|mut t| t.remove("v"));
            parsed.unwrap_or_else(|| d.value(0.5))
        })
        .collect()
}

/// What `tune.json` holds besides the [`Outcome`].
#[derive(Debug, Serialize)]
struct TuneFile<'a> {
    scenario: &'a str,
    scenario_file_hash: &'a str,
    days: f64,
    crate_version: &'a str,
    git_commit: &'a str,
    adversary_groups: Vec<serde_json::Value>,
    honest_groups: &'a [String],
    inner_probes: u32,
    inner_refine: u32,
    #[serde(flatten)]
    outcome: &'a Outcome,
    recommended_toml: &'a str,
}

impl ScenarioEvaluator<'_> {
    /// Flush the tables, write `points.json`, `tune.json` and `recommended.toml`; returns the
    /// snippet.
    pub fn finish(&self, outcome: &Outcome, command: &str) -> Result<String, TuneError> {
        let mut writers = self
            .writers
            .lock()
            .map_err(|_| TuneError::Search("writer lock poisoned".into()))?;
        let w = writers
            .as_mut()
            .ok_or_else(|| TuneError::Search("finish before open_output".into()))?;
        let dir = w.dir.clone();
        w.runs.flush().map_err(io(&dir.join("runs.csv")))?;
        w.events.flush().map_err(io(&dir.join("events.csv")))?;
        w.manifests
            .flush()
            .map_err(io(&dir.join("manifests.jsonl")))?;
        let mut params = w.params.clone();
        params.sort_by_key(|(i, _)| *i);
        let points: Vec<serde_json::Value> = params
            .iter()
            .map(|(i, p)| json!({"point": i, "params": p}))
            .collect();
        let path = dir.join("points.json");
        let text = serde_json::to_string_pretty(&points).unwrap_or_else(|_| "[]".into());
        std::fs::write(&path, text + "\n").map_err(io(&path))?;

        let best = outcome.best();
        let header = format!(
            "# Recommended by `{command}`\n# (scenario {}, candidate {}, score {:.4} [{:.4}, {:.4}] over {} seeds; {}).\n",
            self.scenario.name(),
            best.id,
            best.score.mean,
            best.score.lo,
            best.score.hi,
            best.seeds,
            if best.feasible {
                "every constraint holds".to_string()
            } else {
                format!("violates: {}", best.violations.join("; "))
            }
        );
        let snippet = super::snippet(outcome, &header);
        let path = dir.join("recommended.toml");
        std::fs::write(&path, &snippet).map_err(io(&path))?;
        let spec = &self.scenario.points[0].spec;
        let file = TuneFile {
            scenario: self.scenario.name(),
            scenario_file_hash: &self.scenario.file_hash,
            days: self.days.unwrap_or(spec.scenario.days),
            crate_version: env!("CARGO_PKG_VERSION"),
            git_commit: env!("ORCHESTRA_GIT_COMMIT"),
            adversary_groups: self
                .groups
                .iter()
                .map(|g| {
                    json!({
                        "label": g.label,
                        "strategy": g.strategy,
                        "knobs": g.knobs.iter().map(|k| json!({
                            "name": k.name, "min": k.min, "max": k.max, "default": k.default, "doc": k.doc,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
            honest_groups: &self.honest,
            inner_probes: self.tune.inner_probes,
            inner_refine: self.tune.inner_refine,
            outcome,
            recommended_toml: &snippet,
        };
        let path = dir.join("tune.json");
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| TuneError::Search(format!("tune.json: {e}")))?;
        std::fs::write(&path, text + "\n").map_err(io(&path))?;
        Ok(snippet)
    }
}
