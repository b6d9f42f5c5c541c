//! Polars pipelines: `runs.csv` → `runs.parquet` → `summary.*`, `timeseries.parquet`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use crate::{ReportError, files};
use orchestra_stats::{Scale, t_bounds, t_quantile_975};

/// Header of `runs.csv`.
pub(crate) const RUNS_HEADER: [&str; 9] = [
    "scenario", "point", "params", "seed", "epoch", "entity", "strategy", "metric", "value",
];

/// Columns of `summary.csv` / `summary.parquet`.
pub(crate) const SUMMARY_COLUMNS: [&str; 11] = [
    "scenario",
    "point",
    "params",
    "entity",
    "strategy",
    "metric",
    "n",
    "mean",
    "std",
    "ci95_low",
    "ci95_high",
];

/// One row of `summary.csv`: statistics over seeds of one KPI at one parameter point.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    /// Scenario name.
    pub scenario: String,
    /// Parameter-point index.
    pub point: u32,
    /// Canonical `key=value;…` of the swept parameters ("" without a sweep).
    pub params: String,
    /// `all`, `strategy:<name>`, `miner:<uid>`, `validator:<uid>`, `subnet:<netuid>`.
    pub entity: String,
    /// Strategy of `strategy:`/`miner:` rows, else "".
    pub strategy: String,
    /// Metric name.
    pub metric: String,
    /// Number of seeds (values) aggregated.
    pub n: u32,
    /// Mean over seeds.
    pub mean: f64,
    /// Sample standard deviation over seeds (0 when `n = 1`).
    pub std: f64,
    /// Lower bound of the 95 % confidence interval of the mean.
    pub ci95_low: f64,
    /// Upper bound of the 95 % confidence interval of the mean.
    pub ci95_high: f64,
}

/// Per-epoch statistics (one row of `timeseries.parquet`) as used by the charts.
#[derive(Debug, Clone)]
pub(crate) struct TsRow {
    pub point: u32,
    pub entity: String,
    pub strategy: String,
    pub metric: String,
    pub epoch: i64,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

fn pl_path(path: &Path) -> Result<PlRefPath, ReportError> {
    PlRefPath::try_from_path(path).map_err(|source| ReportError::Table {
        path: path.to_path_buf(),
        source,
    })
}

fn table_err(path: &Path) -> impl Fn(PolarsError) -> ReportError + '_ {
    move |source| ReportError::Table {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn runs_schema() -> Schema {
    Schema::from_iter([
        Field::new("scenario".into(), DataType::String),
        Field::new("point".into(), DataType::UInt32),
        Field::new("params".into(), DataType::String),
        Field::new("seed".into(), DataType::UInt64),
        Field::new("epoch".into(), DataType::Int64),
        Field::new("entity".into(), DataType::String),
        Field::new("strategy".into(), DataType::String),
        Field::new("metric".into(), DataType::String),
        Field::new("value".into(), DataType::Float64),
    ])
}

fn check_header(path: &Path) -> Result<(), ReportError> {
    let file = File::open(path).map_err(|source| ReportError::Io {
        path: path.into(),
        source,
    })?;
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .map_err(|source| ReportError::Io {
            path: path.into(),
            source,
        })?;
    let got: Vec<&str> = line
        .trim_end_matches(['\r', '\n'])
        .split(',')
        .map(str::trim)
        .collect();
    if got != RUNS_HEADER {
        return Err(ReportError::Malformed {
            path: path.into(),
            message: format!(
                "expected header `{}`, found `{}`",
                RUNS_HEADER.join(","),
                line.trim_end()
            ),
        });
    }
    Ok(())
}

/// Streams `runs.csv` into `runs.parquet`, then writes `summary.csv`, `summary.parquet` and
/// `timeseries.parquet`. Returns the files written (relative to `run_dir`).
pub(crate) fn build_tables(run_dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let csv = run_dir.join(files::RUNS_CSV);
    let parquet = run_dir.join(files::RUNS_PARQUET);
    let mut written = Vec::new();
    if csv.exists() {
        check_header(&csv)?;
        let lf = LazyCsvReader::new(pl_path(&csv)?)
            .with_has_header(true)
            .with_schema(Some(Arc::new(runs_schema())))
            .finish()
            .map_err(table_err(&csv))?
            .with_columns([
                col("params").fill_null(lit("")),
                col("strategy").fill_null(lit("")),
                col("entity").fill_null(lit("")),
                col("metric").fill_null(lit("")),
                col("scenario").fill_null(lit("")),
            ]);
        lf.sink(
            SinkDestination::File {
                target: SinkTarget::Path(pl_path(&parquet)?),
            },
            FileWriteFormat::Parquet(Arc::new(ParquetWriteOptions::default())),
            UnifiedSinkArgs::default(),
        )
        .and_then(|lf| lf.collect())
        .map_err(table_err(&csv))?;
        written.push(PathBuf::from(files::RUNS_PARQUET));
    } else if !parquet.exists() {
        return Err(ReportError::Missing {
            path: csv,
            what: "the run table written by the simulator",
        });
    }

    let runs = || -> Result<LazyFrame, ReportError> {
        LazyFrame::scan_parquet(pl_path(&parquet)?, ScanArgsParquet::default())
            .map_err(table_err(&parquet))
    };

    // Summary over seeds of the whole-run rows.
    let keys = [
        "scenario", "point", "params", "entity", "strategy", "metric",
    ];
    let summary = runs()?
        .filter(col("epoch").eq(lit(-1i64)))
        .group_by(keys.map(col))
        .agg(stats_exprs())
        .sort(keys, SortMultipleOptions::default());
    let mut summary = with_ci(summary.collect().map_err(table_err(&parquet))?, &parquet)?
        .lazy()
        .select(SUMMARY_COLUMNS.map(col))
        .collect()
        .map_err(table_err(&parquet))?;
    let path = run_dir.join(files::SUMMARY_PARQUET);
    write_parquet(&mut summary, &path)?;
    written.push(PathBuf::from(files::SUMMARY_PARQUET));
    let path = run_dir.join(files::SUMMARY_CSV);
    let mut file = File::create(&path).map_err(|source| ReportError::Io {
        path: path.clone(),
        source,
    })?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(&mut summary)
        .map_err(table_err(&path))?;
    written.push(PathBuf::from(files::SUMMARY_CSV));

    // Per-epoch statistics over seeds, for the subnet and each strategy. Per-miner rows stay in
    // runs.parquet only: they are most of a long run's rows (a 256-miner year: ~10 million, which
    // as groups would take gigabytes) and nothing aggregates them over seeds.
    let keys = ["scenario", "point", "entity", "strategy", "metric", "epoch"];
    let ts = runs()?
        .filter(
            col("epoch")
                .gt_eq(lit(0i64))
                // Not prefixed "miner:": outside ["miner:", "miner;") (';' follows ':').
                .and(
                    col("entity")
                        .lt(lit("miner:"))
                        .or(col("entity").gt_eq(lit("miner;"))),
                ),
        )
        .group_by(keys.map(col))
        .agg(stats_exprs())
        .sort(keys, SortMultipleOptions::default());
    let mut ts = with_ci(ts.collect().map_err(table_err(&parquet))?, &parquet)?
        .lazy()
        .select(
            [
                "scenario",
                "point",
                "entity",
                "strategy",
                "metric",
                "epoch",
                "n",
                "mean",
                "ci95_low",
                "ci95_high",
            ]
            .map(col),
        )
        .collect()
        .map_err(table_err(&parquet))?;
    let path = run_dir.join(files::TIMESERIES_PARQUET);
    write_parquet(&mut ts, &path)?;
    written.push(PathBuf::from(files::TIMESERIES_PARQUET));
    Ok(written)
}

fn stats_exprs() -> [Expr; 3] {
    [
        col("value").count().cast(DataType::UInt32).alias("n"),
        col("value").mean().alias("mean"),
        col("value").std(1).fill_null(lit(0.0)).alias("std"),
    ]
}

/// Adds `ci95_low`/`ci95_high` to an aggregated frame with columns `metric`, `n`, `mean`, `std`:
/// the t-interval, or for a metric on [`Scale::Unit`] (a proportion; the scale is declared once,
/// in [`orchestra_stats::metrics`]) the logit interval, which stays in [0, 1]. See
/// [`orchestra_stats::bounds`] for the formulas and the rules at the edges.
fn with_ci(df: DataFrame, path: &Path) -> Result<DataFrame, ReportError> {
    let err = table_err(path);
    let n = df
        .column("n")
        .and_then(|c| c.u32().cloned())
        .map_err(&err)?;
    let mean = df
        .column("mean")
        .and_then(|c| c.f64().cloned())
        .map_err(&err)?;
    let std = df
        .column("std")
        .and_then(|c| c.f64().cloned())
        .map_err(&err)?;
    let metric = df
        .column("metric")
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let mut t_of: HashMap<u32, f64> = HashMap::new();
    let mut scale_of: HashMap<&str, Scale> = HashMap::new();
    let mut lo: Vec<Option<f64>> = Vec::with_capacity(df.height());
    let mut hi: Vec<Option<f64>> = Vec::with_capacity(df.height());
    for (((n, mean), std), metric) in n.iter().zip(mean.iter()).zip(std.iter()).zip(metric.iter()) {
        // A group whose values are all missing has no mean, and no interval.
        let Some(mean) = mean else {
            lo.push(None);
            hi.push(None);
            continue;
        };
        let n = n.unwrap_or(0);
        let t = *t_of
            .entry(n)
            .or_insert_with(|| t_quantile_975(n.saturating_sub(1)));
        let metric = metric.unwrap_or("");
        let scale = *scale_of
            .entry(metric)
            .or_insert_with(|| orchestra_stats::metrics::scale_of(metric));
        let (l, h) = t_bounds(t, u64::from(n), mean, std.unwrap_or(0.0), scale);
        lo.push(Some(l));
        hi.push(Some(h));
    }
    let mut df = df;
    df.with_column(Column::new("ci95_low".into(), lo))
        .map_err(&err)?;
    df.with_column(Column::new("ci95_high".into(), hi))
        .map_err(&err)?;
    Ok(df)
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<(), ReportError> {
    let file = File::create(path).map_err(|source| ReportError::Io {
        path: path.into(),
        source,
    })?;
    ParquetWriter::new(file)
        .finish(df)
        .map_err(table_err(path))?;
    Ok(())
}

fn str_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<String>, ReportError> {
    let c = df
        .column(name)
        .and_then(|c| c.str().cloned())
        .map_err(table_err(path))?;
    Ok(c.iter().map(|s| s.unwrap_or("").to_string()).collect())
}

fn f64_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<f64>, ReportError> {
    let c = df
        .column(name)
        .and_then(|c| c.f64().cloned())
        .map_err(table_err(path))?;
    Ok(c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn u32_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<u32>, ReportError> {
    let c = df
        .column(name)
        .and_then(|c| c.u32().cloned())
        .map_err(table_err(path))?;
    Ok(c.iter().map(|v| v.unwrap_or(0)).collect())
}

fn i64_col(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<i64>, ReportError> {
    let c = df
        .column(name)
        .and_then(|c| c.i64().cloned())
        .map_err(table_err(path))?;
    Ok(c.iter().map(|v| v.unwrap_or(0)).collect())
}

/// Reads `summary.parquet` into rows (the same rows, in the same order, as `summary.csv`).
pub(crate) fn read_summary(run_dir: &Path) -> Result<Vec<SummaryRow>, ReportError> {
    let path = run_dir.join(files::SUMMARY_PARQUET);
    if !path.exists() {
        return Err(ReportError::Missing {
            path,
            what: "written by finalize; run it first",
        });
    }
    let df = LazyFrame::scan_parquet(pl_path(&path)?, ScanArgsParquet::default())
        .map_err(table_err(&path))?
        .select(SUMMARY_COLUMNS.map(col))
        .collect()
        .map_err(table_err(&path))?;
    let (scenario, point, params) = (
        str_col(&df, "scenario", &path)?,
        u32_col(&df, "point", &path)?,
        str_col(&df, "params", &path)?,
    );
    let (entity, strategy, metric) = (
        str_col(&df, "entity", &path)?,
        str_col(&df, "strategy", &path)?,
        str_col(&df, "metric", &path)?,
    );
    let (n, mean, std) = (
        u32_col(&df, "n", &path)?,
        f64_col(&df, "mean", &path)?,
        f64_col(&df, "std", &path)?,
    );
    let (lo, hi) = (
        f64_col(&df, "ci95_low", &path)?,
        f64_col(&df, "ci95_high", &path)?,
    );
    let mut rows = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        rows.push(SummaryRow {
            scenario: scenario[i].clone(),
            point: point[i],
            params: params[i].clone(),
            entity: entity[i].clone(),
            strategy: strategy[i].clone(),
            metric: metric[i].clone(),
            n: n[i],
            mean: mean[i],
            std: std[i],
            ci95_low: lo[i],
            ci95_high: hi[i],
        });
    }
    Ok(rows)
}

/// Reads the per-epoch rows the charts need (entity `all` and `strategy:*`; never miners).
pub(crate) fn read_chart_timeseries(run_dir: &Path) -> Result<Vec<TsRow>, ReportError> {
    let path = run_dir.join(files::TIMESERIES_PARQUET);
    if !path.exists() {
        return Err(ReportError::Missing {
            path,
            what: "written by finalize; run it first",
        });
    }
    let pred = crate::charts::time_series_metrics()
        .into_iter()
        .map(|m| col("metric").eq(lit(m)))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let df = LazyFrame::scan_parquet(pl_path(&path)?, ScanArgsParquet::default())
        .map_err(table_err(&path))?
        .filter(pred)
        .select(
            [
                "point",
                "entity",
                "strategy",
                "metric",
                "epoch",
                "mean",
                "ci95_low",
                "ci95_high",
            ]
            .map(col),
        )
        .collect()
        .map_err(table_err(&path))?;
    let (point, entity, strategy) = (
        u32_col(&df, "point", &path)?,
        str_col(&df, "entity", &path)?,
        str_col(&df, "strategy", &path)?,
    );
    let (metric, epoch) = (
        str_col(&df, "metric", &path)?,
        i64_col(&df, "epoch", &path)?,
    );
    let (mean, lo, hi) = (
        f64_col(&df, "mean", &path)?,
        f64_col(&df, "ci95_low", &path)?,
        f64_col(&df, "ci95_high", &path)?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        if !(entity[i] == "all" || entity[i].starts_with("strategy:")) {
            continue;
        }
        out.push(TsRow {
            point: point[i],
            entity: entity[i].clone(),
            strategy: strategy[i].clone(),
            metric: metric[i].clone(),
            epoch: epoch[i],
            mean: mean[i],
            lo: lo[i],
            hi: hi[i],
        });
    }
    Ok(out)
}
