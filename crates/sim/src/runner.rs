//! Running a scenario: every parameter point × seed, in parallel across runs (never inside one),
//! streaming the run table to disk in a fixed order so outputs are byte-identical whatever the
//! thread count, then checking `[expect]`.

use crate::engine::{RunError, RunOutput, RunSpec, run_streaming};
use crate::inputs::Inputs;
use crate::metrics::Row;
use crate::scenario::{Point, Scenario};
use crate::shard::Shard;
use indicatif::{ProgressBar, ProgressStyle};
use orchestra_stats::Interval;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunnerOptions {
    /// Worker threads (0 = one per core).
    pub jobs: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// One `[expect]` check at one parameter point.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// Parameter point.
    pub point: u32,
    /// Check name.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// The numbers behind the verdict.
    pub detail: String,
}

/// What a scenario run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The run directory.
    pub dir: PathBuf,
    /// `[expect]` results.
    pub checks: Vec<Check>,
    /// Runs simulated.
    pub runs: usize,
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Output could not be written.
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// A run failed.
    #[error("run (point {point}, seed {seed}): {error}")]
    Run {
        /// Parameter point.
        point: u32,
        /// Seed.
        seed: u64,
        /// The error.
        error: RunError,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RunnerError + '_ {
    move |error| RunnerError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The runs of a scenario: (point index, seed), in output order.
pub fn jobs(scenario: &Scenario) -> Vec<(usize, u64)> {
    scenario
        .points
        .iter()
        .enumerate()
        .flat_map(|(p, point)| {
            let s = &point.spec.scenario;
            (0..u64::from(s.seeds)).map(move |i| (p, s.seed + i))
        })
        .collect()
}

/// Run `scenario` into `dir`.
pub fn run_scenario(
    scenario: &Scenario,
    inputs: &Inputs,
    dir: &Path,
    opts: &RunnerOptions,
) -> Result<Outcome, RunnerError> {
    run_scenario_shard(scenario, inputs, dir, opts, None)
}

/// Run `scenario` into `dir`, or with `shard` only its slice of the job matrix (see
/// [`crate::shard`]): a shard directory holds the same files for its jobs plus `shard.json`, and
/// no `checks.json` (the checks need every seed; `orchestra-sim merge` evaluates them).
pub fn run_scenario_shard(
    scenario: &Scenario,
    inputs: &Inputs,
    dir: &Path,
    opts: &RunnerOptions,
    shard: Option<Shard>,
) -> Result<Outcome, RunnerError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let copy = dir.join("scenario.toml");
    std::fs::write(&copy, &scenario.doc.text).map_err(io(&copy))?;
    write_points(scenario, dir)?;

    let all = jobs(scenario);
    let selected: Vec<(usize, u64)> = match shard {
        Some(s) => s.select(&all),
        None => all.clone(),
    };
    if let Some(s) = shard {
        let path = dir.join(crate::shard::SHARD_JSON);
        let info = crate::shard::ShardInfo::new(s, scenario, &all);
        let text = serde_json::to_string_pretty(&info).unwrap_or_else(|_| "{}".into());
        std::fs::write(&path, text + "\n").map_err(io(&path))?;
    }
    let bar = progress_bar(opts.progress, selected.len() as u64, scenario.name());

    let runs_path = dir.join("runs.csv");
    let events_path = dir.join("events.csv");
    let manifests_path = dir.join("manifests.jsonl");
    let mut runs_out = BufWriter::new(File::create(&runs_path).map_err(io(&runs_path))?);
    let mut events_out = BufWriter::new(File::create(&events_path).map_err(io(&events_path))?);
    let mut manifests_out =
        BufWriter::new(File::create(&manifests_path).map_err(io(&manifests_path))?);
    writeln!(
        runs_out,
        "scenario,point,params,seed,epoch,entity,strategy,metric,value"
    )
    .map_err(io(&runs_path))?;
    writeln!(events_out, "scenario,point,seed,block,epoch,kind,detail")
        .map_err(io(&events_path))?;

    let (tx, rx) = mpsc::channel::<(usize, Result<Spilled, RunnerError>)>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build();
    let mut collected: BTreeMap<u32, Vec<RunResult>> = BTreeMap::new();
    let mut failure = None;
    std::thread::scope(|scope| -> Result<(), RunnerError> {
        let selected = &selected;
        scope.spawn(move || {
            let work = || {
                selected
                    .par_iter()
                    .enumerate()
                    .for_each_with(tx, |tx, (order, (p, seed))| {
                        let point = &scenario.points[*p];
                        let out = run_spilled(scenario, point, *seed, inputs, dir, order);
                        let _ = tx.send((order, out));
                    });
            };
            match &pool {
                Ok(pool) => pool.install(work),
                Err(_) => work(),
            }
        });
        // Write results in job order as they complete, holding only the out-of-order ones.
        let mut pending: BTreeMap<usize, Result<Spilled, RunnerError>> = BTreeMap::new();
        let mut next = 0usize;
        for (order, result) in rx {
            pending.insert(order, result);
            while let Some(result) = pending.remove(&next) {
                let (p, seed) = selected[next];
                let point = &scenario.points[p];
                match result {
                    Ok(spilled) => {
                        // The run's rows, spilled while it ran, then its events and manifest.
                        let mut rows = File::open(&spilled.rows).map_err(io(&spilled.rows))?;
                        std::io::copy(&mut rows, &mut runs_out).map_err(io(&runs_path))?;
                        drop(rows);
                        std::fs::remove_file(&spilled.rows).map_err(io(&spilled.rows))?;
                        write_run(
                            scenario,
                            point,
                            seed,
                            &spilled.out,
                            &mut runs_out,
                            &mut events_out,
                            &mut manifests_out,
                        )
                        .map_err(io(&runs_path))?;
                        collected
                            .entry(point.index)
                            .or_default()
                            .push(spilled.result);
                    }
                    Err(error) => {
                        if failure.is_none() {
                            failure = Some(error);
                        }
                    }
                }
                bar.inc(1);
                next += 1;
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    if let Some(f) = failure {
        return Err(f);
    }
    for (w, path) in [
        (&mut runs_out, &runs_path),
        (&mut events_out, &events_path),
        (&mut manifests_out, &manifests_path),
    ] {
        w.flush().map_err(io(path))?;
    }

    if shard.is_some() {
        return Ok(Outcome {
            dir: dir.to_path_buf(),
            checks: Vec::new(),
            runs: selected.len(),
        });
    }
    let checks = write_checks(scenario, &collected, dir)?;
    Ok(Outcome {
        dir: dir.to_path_buf(),
        checks,
        runs: selected.len(),
    })
}

/// Evaluate `[expect]` over `collected` and write `checks.json`.
pub(crate) fn write_checks(
    scenario: &Scenario,
    collected: &BTreeMap<u32, Vec<RunResult>>,
    dir: &Path,
) -> Result<Vec<Check>, RunnerError> {
    let checks = evaluate(scenario, collected);
    let checks_path = dir.join("checks.json");
    let text = serde_json::to_string_pretty(&checks).unwrap_or_else(|_| "[]".into());
    std::fs::write(&checks_path, text + "\n").map_err(io(&checks_path))?;
    Ok(checks)
}

fn progress_bar(show: bool, len: u64, name: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:32}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(name.to_string());
    bar
}

fn write_points(scenario: &Scenario, dir: &Path) -> Result<(), RunnerError> {
    #[derive(Serialize)]
    struct P<'a> {
        point: u32,
        params: &'a BTreeMap<String, toml::Value>,
    }
    let points: Vec<P<'_>> = scenario
        .points
        .iter()
        .map(|p| P {
            point: p.index,
            params: &p.values,
        })
        .collect();
    let path = dir.join("points.json");
    let text = serde_json::to_string_pretty(&points).unwrap_or_else(|_| "[]".into());
    std::fs::write(&path, text + "\n").map_err(io(&path))
}

/// A CSV field, quoted when it needs to be.
fn csv(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

/// A float as the run table writes it: shortest round-trip form, empty for NaN.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn write_run(
    scenario: &Scenario,
    point: &Point,
    seed: u64,
    out: &RunOutput,
    runs: &mut impl Write,
    events: &mut impl Write,
    manifests: &mut impl Write,
) -> std::io::Result<()> {
    write_rows(scenario, point, seed, &out.rows, runs)?;
    let name = csv(scenario.name()).into_owned();
    for (block, epoch, kind, detail) in &out.events {
        writeln!(
            events,
            "{name},{},{seed},{}",
            point.index,
            EventTail(*block, *epoch, kind, detail)
        )?;
    }
    writeln!(
        manifests,
        "{}",
        manifest(scenario, point, seed, &out.event_log_hash)
    )
}

/// Write a run kept as text tails ([`RowTail`], [`EventTail`]) — how a stored tune result
/// comes back — exactly as [`write_run`] writes the run it was made from.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_stored_run(
    scenario: &Scenario,
    point: &Point,
    seed: u64,
    row_tails: &[String],
    event_tails: &[String],
    event_log_hash: &str,
    runs: &mut impl Write,
    events: &mut impl Write,
    manifests: &mut impl Write,
) -> std::io::Result<()> {
    let name = csv(scenario.name()).into_owned();
    let params = point.params_string();
    let params = csv(&params);
    for tail in row_tails {
        writeln!(runs, "{name},{},{params},{seed},{tail}", point.index)?;
    }
    for tail in event_tails {
        writeln!(events, "{name},{},{seed},{tail}", point.index)?;
    }
    writeln!(
        manifests,
        "{}",
        manifest(scenario, point, seed, event_log_hash)
    )
}

/// One line of `manifests.jsonl`.
fn manifest(
    scenario: &Scenario,
    point: &Point,
    seed: u64,
    event_log_hash: &str,
) -> serde_json::Value {
    serde_json::json!({
        "scenario": scenario.name(),
        "scenario_file_hash": scenario.file_hash,
        "point": point.index,
        "params": point.values,
        "seed": seed,
        "days": point.spec.scenario.days,
        "crate_version": env!("CARGO_PKG_VERSION"),
        "git_commit": env!("ORCHESTRA_GIT_COMMIT"),
        "event_log_hash": event_log_hash,
    })
}

/// The part of a run-table line after `scenario,point,params,seed,`:
/// `epoch,entity,strategy,metric,value`. It depends on the run alone, not on where the run lands
/// in the table, so a tune can store it and write the line later (see `tune::store`); one
/// formatter for both paths keeps them byte-identical.
pub(crate) struct RowTail<'a>(pub(crate) &'a Row);

impl std::fmt::Display for RowTail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Row {
            epoch,
            entity,
            strategy,
            metric,
            value,
        } = self.0;
        write!(
            f,
            "{epoch},{},{},{metric},{}",
            csv(entity),
            csv(strategy),
            num(*value)
        )
    }
}

/// The part of an `events.csv` line after `scenario,point,seed,`: `block,epoch,kind,detail`
/// (see [`RowTail`] for why it is separate).
pub(crate) struct EventTail<'a>(
    pub(crate) u64,
    pub(crate) i64,
    pub(crate) &'a str,
    pub(crate) &'a str,
);

impl std::fmt::Display for EventTail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let EventTail(block, epoch, kind, detail) = self;
        write!(f, "{block},{epoch},{},{}", csv(kind), csv(detail))
    }
}

/// Rows of the run table for `rows` of one run.
fn write_rows(
    scenario: &Scenario,
    point: &Point,
    seed: u64,
    rows: &[Row],
    runs: &mut impl Write,
) -> std::io::Result<()> {
    let name = csv(scenario.name()).into_owned();
    let params = point.params_string();
    let params = csv(&params);
    for row in rows {
        writeln!(
            runs,
            "{name},{},{params},{seed},{}",
            point.index,
            RowTail(row)
        )?;
    }
    Ok(())
}

/// A finished run whose rows wait in a spill file for their turn in `runs.csv`.
struct Spilled {
    out: RunOutput,
    result: RunResult,
    rows: PathBuf,
}

/// Simulate one run, writing its rows to a spill file in `dir` epoch by epoch as the engine
/// hands them out (and folding them into what the checks need), so a long run's memory stays
/// flat: a one-year, 256-miner run makes about ten million rows.
fn run_spilled(
    scenario: &Scenario,
    point: &Point,
    seed: u64,
    inputs: &Inputs,
    dir: &Path,
    order: usize,
) -> Result<Spilled, RunnerError> {
    let path = dir.join(format!(".run-{order}.csv.part"));
    let mut spill = BufWriter::new(File::create(&path).map_err(io(&path))?);
    let mut result = RunResult::default();
    let mut failed = None;
    let out = run_streaming(
        &RunSpec {
            spec: &point.spec,
            point: point.index,
            seed,
            inputs,
        },
        &mut |rows: Vec<Row>| {
            for row in &rows {
                result.add_row(row.epoch, &row.entity, row.metric, row.value);
            }
            if failed.is_none()
                && let Err(e) = write_rows(scenario, point, seed, &rows, &mut spill)
            {
                failed = Some(e);
            }
        },
    );
    let out = out.map_err(|error| RunnerError::Run {
        point: point.index,
        seed,
        error,
    });
    let flushed = match failed {
        Some(e) => Err(e),
        None => spill.flush(),
    };
    drop(spill);
    if out.is_err() || flushed.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    let out = out?;
    flushed.map_err(io(&path))?;
    result.attack_stop_epoch = out.attack_stop_epoch;
    Ok(Spilled {
        out,
        result,
        rows: path,
    })
}

/// What the checks need of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunResult {
    run: BTreeMap<(String, String), f64>,
    honest_share_by_epoch: Vec<(i64, f64)>,
    errors: Vec<f64>,
    pub(crate) attack_stop_epoch: Option<i64>,
}

impl RunResult {
    /// Take in one row of the run table (also how `merge` rebuilds a run from `runs.csv`).
    pub(crate) fn add_row(&mut self, epoch: i64, entity: &str, metric: &str, value: f64) {
        if epoch < 0 {
            if !entity.starts_with("miner:") {
                self.run
                    .insert((entity.to_string(), metric.to_string()), value);
            }
        } else if entity == "all" && metric == "honest_share" {
            self.honest_share_by_epoch.push((epoch, value));
        } else if entity == "all" && metric == "emission_error_rao" {
            self.errors.push(value);
        }
    }
}

/// The interval across runs of a whole-run metric, on the metric's declared scale (proportions
/// get the logit interval, which stays in [0, 1]; see `orchestra_stats::metrics`).
fn interval(runs: &[RunResult], entity: &str, metric: &str) -> Interval {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|r| {
            r.run
                .get(&(entity.to_string(), metric.to_string()))
                .copied()
        })
        .collect();
    Interval::on(&v, orchestra_stats::metrics::scale_of(metric))
}

fn fmt(i: &Interval) -> String {
    format!("{:.4} [{:.4}, {:.4}] (n = {})", i.mean, i.lo, i.hi, i.n)
}

/// Evaluate `[expect]` per parameter point across its seeds.
fn evaluate(scenario: &Scenario, collected: &BTreeMap<u32, Vec<RunResult>>) -> Vec<Check> {
    let mut checks = Vec::new();
    for point in &scenario.points {
        let Some(runs) = collected.get(&point.index) else {
            continue;
        };
        let e = &point.spec.expect;
        let p = point.index;
        let mut push = |name: &str, passed: bool, detail: String| {
            checks.push(Check {
                point: p,
                name: name.into(),
                passed,
                detail,
            })
        };
        if e.emission_conserved {
            // The chain truncates twice per uid in I32F32 (resolution 2^-32 of the epoch's
            // emission E): at most 2n + ⌈2n·E/2^32⌉ rao per mechanism, plus the owner split's
            // rao. Anything beyond is a leak; an overpayment is always one.
            let n = (point
                .spec
                .miners
                .iter()
                .map(|g| u64::from(g.count))
                .sum::<u64>()
                + point
                    .spec
                    .validators
                    .iter()
                    .map(|g| u64::from(g.count))
                    .sum::<u64>()) as f64;
            let emitted =
                (point.spec.chain.emission_per_block_rao as f64) * point.spec.chain.tempo as f64;
            let mechanisms = if point.spec.mechanism.combination
                == orchestra_mechanism::params::CombinationMode::Mechanisms
            {
                2.0
            } else {
                1.0
            };
            let bound = mechanisms * (2.0 * n + (2.0 * n * emitted / 4_294_967_296.0).ceil()) + 2.0;
            let worst = runs
                .iter()
                .flat_map(|r| r.errors.iter().copied())
                .fold(0.0f64, |a, x| a.max(x.abs()));
            let negative = runs.iter().flat_map(|r| r.errors.iter()).any(|&x| x < 0.0);
            push(
                "emission_conserved",
                worst <= bound && !negative,
                format!(
                    "worst unpaid emission {worst} rao per epoch (bound {bound}; overpayment never allowed)"
                ),
            );
        }
        if let Some(tol) = e.split_tolerance {
            let i = interval(runs, "all", "split_orchestration");
            let target = point.spec.mechanism.orchestration_share;
            push(
                "split_tolerance",
                (i.mean - target).abs() <= tol,
                format!("realised {} vs target {target} ± {tol}", fmt(&i)),
            );
        }
        if let Some(min) = e.honest_share_min {
            let i = interval(runs, "all", "honest_share");
            push(
                "honest_share_min",
                i.mean >= min,
                format!("honest share {} ≥ {min}", fmt(&i)),
            );
        }
        if let Some(min) = e.ledger_accuracy_min {
            let i = interval(runs, "all", "ledger_accuracy");
            push(
                "ledger_accuracy_min",
                i.mean >= min,
                format!("Ledger accuracy {} ≥ {min}", fmt(&i)),
            );
        }
        if let Some(min) = e.success_rate_min {
            let i = interval(runs, "all", "success_rate");
            push(
                "success_rate_min",
                i.mean >= min,
                format!("success rate {} ≥ {min}", fmt(&i)),
            );
        }
        if !e.below_honest.is_empty() || !e.not_above_honest.is_empty() {
            // Groups as the scenario declares them: after an `attack_stop` a group's rows say
            // `honest`, and it must not count as honest work (nor leave its own check).
            let honest: Vec<String> = point
                .spec
                .miners
                .iter()
                .filter(|g| g.strategy == "honest")
                .map(|g| format!("strategy:{}", g.label()))
                .collect();
            let honest_roi = Interval::of(
                &runs
                    .iter()
                    .map(|r| {
                        let v: Vec<f64> = honest
                            .iter()
                            .filter_map(|h| {
                                r.run
                                    .get(&(h.clone(), "roi_per_identity_rao".into()))
                                    .copied()
                            })
                            .collect();
                        if v.is_empty() {
                            f64::NAN
                        } else {
                            v.iter().sum::<f64>() / v.len() as f64
                        }
                    })
                    .collect::<Vec<_>>(),
            );
            let strict = e.below_honest.iter().map(|n| (n, true));
            let lenient = e.not_above_honest.iter().map(|n| (n, false));
            for (name, must_be_below) in strict.chain(lenient) {
                let entities: Vec<String> = point
                    .spec
                    .miners
                    .iter()
                    .filter(|g| g.label() == name.as_str() || g.strategy == *name)
                    .map(|g| format!("strategy:{}", g.label()))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                for ent in entities {
                    let i = interval(runs, &ent, "roi_per_identity_rao");
                    let label = ent.trim_start_matches("strategy:");
                    let (check, passed, rule) = if must_be_below {
                        (
                            format!("below_honest:{label}"),
                            i.below(&honest_roi),
                            "intervals must separate",
                        )
                    } else {
                        (
                            format!("not_above_honest:{label}"),
                            !honest_roi.below(&i),
                            "must not lie entirely above",
                        )
                    };
                    push(
                        &check,
                        passed,
                        format!(
                            "ROI per identity {} vs honest {} (rao; {rule})",
                            fmt(&i),
                            fmt(&honest_roi)
                        ),
                    );
                }
            }
        }
        if let Some(rec) = &e.recovery {
            let mut worst: Option<i64> = None;
            let mut ok = true;
            for r in runs {
                let Some(stop) = r.attack_stop_epoch else {
                    ok = false;
                    continue;
                };
                let recovered = r
                    .honest_share_by_epoch
                    .iter()
                    .find(|(ep, v)| *ep >= stop && *v >= rec.honest_share)
                    .map(|(ep, _)| ep - stop);
                match recovered {
                    Some(k) if k <= i64::from(rec.within_epochs) => {
                        worst = Some(worst.map_or(k, |w| w.max(k)))
                    }
                    _ => ok = false,
                }
            }
            push(
                "recovery",
                ok,
                format!(
                    "honest share back above {} within {} epochs of the attack stopping (slowest run: {})",
                    rec.honest_share,
                    rec.within_epochs,
                    worst.map_or("never".into(), |w| format!("{w} epochs"))
                ),
            );
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::run;
    use orchestra_stats::Scale;
    use orchestra_stats::metrics::declared;
    use std::collections::BTreeSet;

    const SCENARIO: &str = r#"
[scenario]
name = "scales"
seed = 5
days = 0.05

[chain]
tempo = 90

[[miners]]
strategy = "honest"
count = 4

[[miners]]
strategy = "fabricator"
count = 2

[[validators]]
count = 2
sample = 3

[load]
profile = "constant"
rate_per_hour = 200

[expect]
ledger_accuracy_min = 0.9
"#;

    fn scenario() -> Scenario {
        Scenario::from_str(Path::new("scales.toml"), SCENARIO.to_string()).expect("valid")
    }

    #[test]
    fn every_metric_a_run_writes_has_a_declared_scale() {
        let scenario = scenario();
        let spec = &scenario.points[0].spec;
        let inputs = crate::inputs::load(Path::new("scales.toml"), None, &spec.subnets.overrides)
            .expect("inputs");
        let out = run(&RunSpec {
            spec,
            point: 0,
            seed: 5,
            inputs: &inputs,
        })
        .expect("run");
        let metrics: BTreeSet<&str> = out.rows.iter().map(|r| r.metric).collect();
        assert!(metrics.contains("ledger_accuracy") && metrics.contains("roi_vs_honest"));
        for m in metrics {
            assert!(
                declared(m).is_some(),
                "metric `{m}` has no scale in orchestra_stats::metrics::METRICS: \
                 declare whether it is a proportion"
            );
        }
    }

    #[test]
    fn checks_print_proportions_with_intervals_inside_the_unit_interval() {
        let scenario = scenario();
        // Five seeds of a Ledger accuracy near 1: the t-interval would reach above 1.
        let values = [1.0, 1.0, 0.9722, 0.9825, 0.9888];
        let runs: Vec<RunResult> = values
            .iter()
            .map(|&v| {
                let mut r = RunResult::default();
                r.add_row(-1, "all", "ledger_accuracy", v);
                r
            })
            .collect();
        let collected = BTreeMap::from([(0u32, runs)]);
        let checks = evaluate(&scenario, &collected);
        let check = checks
            .iter()
            .find(|c| c.name == "ledger_accuracy_min")
            .expect("the check ran");
        let bounded = Interval::on(&values, Scale::Unit);
        assert!(Interval::of(&values).hi > 1.0 && bounded.hi < 1.0);
        assert!(check.passed);
        assert_eq!(
            check.detail,
            format!("Ledger accuracy {} ≥ 0.9", fmt(&bounded))
        );
    }

    #[test]
    fn below_honest_compares_the_written_groups_even_after_an_attack_stops() {
        let text = SCENARIO.replace(
            "[expect]\nledger_accuracy_min = 0.9",
            "[[events]]\nat_day = 0.01\nkind = \"attack_stop\"\ngroup = \"fabricator\"\n\n\
             [expect]\nbelow_honest = [\"fabricator\"]",
        );
        let scenario = Scenario::from_str(Path::new("scales.toml"), text).expect("valid");
        // After the stop the fabricators' rows say `honest`; the check goes by the written
        // groups, so their losses do not drag the honest baseline down, nor do they drop out of
        // their own check.
        let runs: Vec<RunResult> = [(10.0, 1.0), (11.0, 2.0), (12.0, 1.5)]
            .iter()
            .map(|&(honest, fab)| {
                let mut r = RunResult::default();
                r.add_row(-1, "strategy:honest", "roi_per_identity_rao", honest);
                r.add_row(-1, "strategy:fabricator", "roi_per_identity_rao", fab);
                r
            })
            .collect();
        let checks = evaluate(&scenario, &BTreeMap::from([(0u32, runs)]));
        let check = checks
            .iter()
            .find(|c| c.name == "below_honest:fabricator")
            .expect("the fabricators are still checked");
        assert!(check.passed, "{}", check.detail);
        let honest = Interval::of(&[10.0, 11.0, 12.0]);
        assert!(
            check
                .detail
                .contains(&format!("vs honest {}", fmt(&honest))),
            "{}",
            check.detail
        );
    }
}
