//! Run tables (Parquet/CSV), charts and the per-run HTML report of `orchestra-sim`.
//!
//! # The contract with the simulator
//!
//! A run directory `reports/<scenario>/<timestamp>/` contains, written by the simulator:
//!
//! - `runs.csv` — the long-format run table, streamed as runs finish, with the header
//!   `scenario,point,params,seed,epoch,entity,strategy,metric,value`:
//!   `scenario` string; `point` u32 (parameter-point index, 0 without a sweep); `params` string
//!   (canonical `key=value;key=value` of the swept parameters, empty without a sweep); `seed` u64;
//!   `epoch` i64 (tempo index ≥ 0 for per-epoch rows, −1 for whole-run aggregates); `entity`
//!   string (`all`, `strategy:<name>`, `miner:<uid>`, `validator:<uid>`, `subnet:<netuid>`);
//!   `strategy` string (the miner's strategy for `miner:`/`strategy:` rows, else empty); `metric`
//!   string; `value` f64.
//!   Metric names are data: every metric present is summarised. The charts look for
//!   `emission_share`, `roi_vs_honest` (`strategy:` rows), `emission_rao` (`miner:` rows) and
//!   `honest_share`, `gini`, `split_orchestration`, `split_target`, `ledger_accuracy`,
//!   `detection_lag_blocks`, `ledger_coverage`, `success_rate`, `latency_p50_ms`,
//!   `latency_p95_ms`, `organic_rps` (`all` rows), and skip a chart (with a note in
//!   `index.html`) when its data is absent.
//! - `events.csv` (optional) — `scenario,point,seed,block,epoch,kind,detail`: scenario events,
//!   drawn as markers on the time-series charts.
//! - `points.json` (optional) — `[{"point": 0, "params": {"mechanism.orchestration_share": 0.3}}]`.
//! - `checks.json` (optional) — `[{"point": 0, "name": "…", "passed": true, "detail": "…"}]`,
//!   the scenario's `[expect]` results.
//! - `manifests.jsonl` (optional) — one JSON object per run.
//! - `scenario.toml` (optional) — a copy of the scenario; its leading `#` comment block is the
//!   question the scenario answers.
//! - `tune.json` (optional, written by `orchestra-sim tune`) — the tuner's candidates, finalists,
//!   Pareto front, sensitivity and recommendation: `index.html` then opens with a *Tuning*
//!   section and the charts `tune_pareto` and `tune_inner` (see the `tune` module).
//!
//! This crate adds (see [`finalize`]):
//!
//! - `runs.parquet` — `runs.csv` converted as is (same columns and types), streamed.
//! - `summary.csv` and `summary.parquet` — columns `scenario, point, params, entity, strategy,
//!   metric, n, mean, std, ci95_low, ci95_high`: over seeds of the `epoch = −1` rows, grouped by
//!   scenario × point × params × entity × strategy × metric. `n` (u32) is the number of values,
//!   `std` the sample standard deviation (0 when `n = 1`), and the 95 % confidence interval is
//!   `mean ± t(0.975, n−1)·std/√n` with Student's t quantile (`ci = mean` when `n = 1`) — except
//!   for metrics declared proportions bounded to [0, 1] in `orchestra_stats::metrics` (shares,
//!   accuracy, coverage, success rate, organic quality, Gini, …), whose interval is built on the
//!   logit scale and stays inside [0, 1] (`orchestra_stats::bounds` has the formula and the rules
//!   at 0 and 1).
//! - `timeseries.parquet` — columns `scenario, point, entity, strategy, metric, epoch, n, mean,
//!   ci95_low, ci95_high`: the same statistics over seeds of the `epoch ≥ 0` rows, per epoch, for
//!   every entity but single miners (`miner:*` rows stay in `runs.parquet`).
//! - `charts/<name>.png` and `charts/<name>.svg` — see [`charts`].
//! - `index.html` — self-contained (charts inline as base64 PNG): question, parameters,
//!   manifests, `[expect]` checks, summary table and charts with captions.
//!
//! All aggregation is done by polars lazy group-bys; `runs.csv` is never loaded into Rust
//! vectors (it may hold millions of rows). [`render`] regenerates charts and `index.html` from the
//! stored `summary.parquet` and `timeseries.parquet`; [`terminal_summary`] prints the key KPIs
//! from the very rows that were written to `summary.csv`.
//!
//! # Use from `orchestra-sim`
//!
//! ```ignore
//! use orchestra_report::{ReportOptions, finalize, render, terminal_summary};
//! // After the last run of a scenario has been appended to runs.csv:
//! let summary = finalize(&run_dir, &ReportOptions::default())?;
//! eprintln!("{}", terminal_summary(&summary));
//! // `orchestra-sim report <RUN_DIR>`: charts and index.html from the stored tables.
//! let summary = render(&run_dir, &ReportOptions::default())?;
//! ```
//!
//! Every error ([`ReportError`]) names the file concerned; a malformed run table is an error,
//! never a panic.

use std::path::{Path, PathBuf};

pub mod charts;
mod html;
mod inputs;
mod tables;
mod terminal;
mod tune;

pub use inputs::{Check, EventRow, PointInfo};
pub use tables::SummaryRow;
pub use terminal::terminal_summary;

/// File names of the run directory (inputs and outputs).
pub mod files {
    /// Long-format run table written by the simulator.
    pub const RUNS_CSV: &str = "runs.csv";
    /// Scenario events written by the simulator.
    pub const EVENTS_CSV: &str = "events.csv";
    /// Parameter points written by the simulator.
    pub const POINTS_JSON: &str = "points.json";
    /// `[expect]` check results written by the simulator.
    pub const CHECKS_JSON: &str = "checks.json";
    /// Per-run manifests written by the simulator.
    pub const MANIFESTS_JSONL: &str = "manifests.jsonl";
    /// Copy of the scenario file.
    pub const SCENARIO_TOML: &str = "scenario.toml";
    /// Result of `orchestra-sim tune` (candidates, finalists, recommendation).
    pub const TUNE_JSON: &str = "tune.json";
    /// `runs.csv` as Parquet.
    pub const RUNS_PARQUET: &str = "runs.parquet";
    /// Summary over seeds of the whole-run rows (CSV).
    pub const SUMMARY_CSV: &str = "summary.csv";
    /// Summary over seeds of the whole-run rows (Parquet).
    pub const SUMMARY_PARQUET: &str = "summary.parquet";
    /// Per-epoch statistics over seeds.
    pub const TIMESERIES_PARQUET: &str = "timeseries.parquet";
    /// Directory of the charts.
    pub const CHARTS_DIR: &str = "charts";
    /// The HTML report.
    pub const INDEX_HTML: &str = "index.html";
}

/// What [`finalize`] and [`render`] do.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Render charts (PNG and SVG). Without charts, `index.html` still has tables and checks.
    pub charts: bool,
    /// At most this many parameter points get their own set of time-series charts (evenly
    /// spaced over the points, first and last included); sweep charts cover all points.
    pub max_point_charts: usize,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            charts: true,
            max_point_charts: 4,
        }
    }
}

/// A chart that was written (both `charts/<stem>.png` and `charts/<stem>.svg`).
#[derive(Debug, Clone)]
pub struct ChartInfo {
    /// File stem under `charts/`.
    pub stem: String,
    /// Title drawn on the chart.
    pub title: String,
    /// One-line caption shown under the chart in `index.html`.
    pub caption: String,
}

/// The outcome of [`finalize`] / [`render`]: what was written and the summary rows.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Scenario name (from the run table, else the directory name).
    pub scenario: String,
    /// The question the scenario answers (leading comment block of `scenario.toml`).
    pub question: String,
    /// Exactly the rows of `summary.csv`, in file order.
    pub rows: Vec<SummaryRow>,
    /// Parameter points (from `points.json`, else derived from the rows).
    pub points: Vec<PointInfo>,
    /// `[expect]` results (from `checks.json`).
    pub checks: Vec<Check>,
    /// Charts written.
    pub charts: Vec<ChartInfo>,
    /// Charts skipped and other remarks (also shown in `index.html`).
    pub notes: Vec<String>,
    /// Files written, relative to the run directory.
    pub files: Vec<PathBuf>,
}

/// Errors of the report pipeline; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A required input file is missing.
    #[error("{path}: missing ({what})")]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// Why it is needed.
        what: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A table could not be read, aggregated or written (malformed CSV, wrong types, …).
    #[error("{path}: {source}")]
    Table {
        /// The file being read or written.
        path: PathBuf,
        /// The polars error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A file's content does not follow the contract (wrong header, bad JSON, …).
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Drawing a chart failed.
    #[error("{path}: chart drawing failed: {message}")]
    Chart {
        /// The chart file.
        path: PathBuf,
        /// The backend's message.
        message: String,
    },
}

/// Builds every output of a run directory: `runs.parquet`, `summary.csv`, `summary.parquet`,
/// `timeseries.parquet`, then charts (unless `opts.charts` is false) and `index.html`.
///
/// Requires `runs.csv` (or, if it is absent, an existing `runs.parquet`); the other inputs are
/// optional.
pub fn finalize(run_dir: &Path, opts: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let mut written = tables::build_tables(run_dir)?;
    let mut summary = render(run_dir, opts)?;
    written.append(&mut summary.files);
    summary.files = written;
    Ok(summary)
}

/// Regenerates charts and `index.html` from the stored `summary.parquet` and
/// `timeseries.parquet` (as `orchestra-sim report <RUN_DIR>` does).
pub fn render(run_dir: &Path, opts: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let rows = tables::read_summary(run_dir)?;
    let inputs = inputs::Inputs::read(run_dir, &rows)?;
    let scenario = rows.first().map(|r| r.scenario.clone()).unwrap_or_else(|| {
        run_dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let mut chart_infos = Vec::new();
    let mut rendered = Vec::new();
    if opts.charts {
        let ts = tables::read_chart_timeseries(run_dir)?;
        let plan = charts::plan(&rows, &ts, &inputs.points, &inputs.events, opts);
        notes.extend(plan.notes);
        let dir = run_dir.join(files::CHARTS_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io {
            path: dir.clone(),
            source,
        })?;
        for chart in &plan.charts {
            let png = charts::render_chart(chart, &dir)?;
            files.push(PathBuf::from(files::CHARTS_DIR).join(format!("{}.png", chart.stem)));
            files.push(PathBuf::from(files::CHARTS_DIR).join(format!("{}.svg", chart.stem)));
            chart_infos.push(ChartInfo {
                stem: chart.stem.clone(),
                title: chart.title.clone(),
                caption: chart.caption.clone(),
            });
            rendered.push(png);
        }
    } else {
        notes.push("Charts were not rendered (charts disabled).".to_string());
    }
    let mut tune_rendered = Vec::new();
    if let (Some(t), true) = (&inputs.tune, opts.charts) {
        let dir = run_dir.join(files::CHARTS_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io {
            path: dir.clone(),
            source,
        })?;
        for chart in tune::charts(t) {
            let png = charts::render_chart(&chart, &dir)?;
            files.push(PathBuf::from(files::CHARTS_DIR).join(format!("{}.png", chart.stem)));
            files.push(PathBuf::from(files::CHARTS_DIR).join(format!("{}.svg", chart.stem)));
            tune_rendered.push((chart, png));
        }
    }
    let summary = ReportSummary {
        run_dir: run_dir.to_path_buf(),
        scenario,
        question: inputs.question.clone(),
        rows,
        points: inputs.points.clone(),
        checks: inputs.checks.clone(),
        charts: chart_infos,
        notes,
        files: Vec::new(),
    };
    let html = html::index_html(&summary, &inputs, &rendered, &tune_rendered);
    let path = run_dir.join(files::INDEX_HTML);
    std::fs::write(&path, html).map_err(|source| ReportError::Io { path, source })?;
    files.push(PathBuf::from(files::INDEX_HTML));
    Ok(ReportSummary { files, ..summary })
}
