#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end: synthetic run directories → finalize → every file, schemas, summary values.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orchestra_report::{ReportError, ReportOptions, finalize, render, terminal_summary};
use orchestra_stats::Scale;
use orchestra_stats::metrics::scale_of;
use polars::prelude::*;

/// Output root: `$ORCHESTRA_REPORT_KEEP/<name>` when set (to look at the charts), else a tempdir.
fn out_dir(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("ORCHESTRA_REPORT_KEEP") {
        Some(root) => {
            let d = PathBuf::from(root).join(name).join("20260101T000000Z");
            let _ = std::fs::remove_dir_all(&d);
            (None, d)
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let d = t.path().join(name).join("20260101T000000Z");
            (Some(t), d)
        }
    }
}

fn schema_of(path: &Path) -> Vec<(String, DataType)> {
    let mut lf = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(path).unwrap(),
        ScanArgsParquet::default(),
    )
    .unwrap();
    let schema = lf.collect_schema().unwrap();
    schema
        .iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect()
}

fn names(cols: &[(&str, DataType)]) -> Vec<(String, DataType)> {
    cols.iter()
        .map(|(n, d)| (n.to_string(), d.clone()))
        .collect()
}

/// t(0.975, df) from a printed table — independent of the crate's implementation.
fn t_table(df: u32) -> f64 {
    match df {
        1 => 12.706_204_736,
        2 => 4.302_652_730,
        3 => 3.182_446_305,
        4 => 2.776_445_105,
        5 => 2.570_581_836,
        6 => 2.446_911_851,
        _ => panic!("no table entry for df {df}"),
    }
}

/// The logit interval written out by hand: `expit(logit(m) ∓ half/(m(1 − m)))`; the point at
/// no spread or a mean of exactly 0 or 1, the t-interval for a mean outside [0, 1] (values that
/// were not proportions, as some synthetic ones here).
fn logit_bounds(mean: f64, half: f64) -> (f64, f64) {
    if half == 0.0 || mean == 0.0 || mean == 1.0 {
        return (mean, mean);
    }
    if !(0.0..=1.0).contains(&mean) {
        return (mean - half, mean + half);
    }
    let l = (mean / (1.0 - mean)).ln();
    let h = half / (mean * (1.0 - mean));
    let expit = |x: f64| 1.0 / (1.0 + (-x).exp());
    (expit(l - h), expit(l + h))
}

/// scenario, point, params, entity, strategy, metric.
type Key = (String, u32, String, String, String, String);

/// Group the epoch = −1 rows of runs.parquet by hand and compare with summary.csv.
fn check_summary_against_runs(dir: &Path) {
    let df = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&dir.join("runs.parquet")).unwrap(),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .collect()
    .unwrap();
    let s = |c: &str| {
        df.column(c)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let (scenario, params, entity, strategy, metric) = (
        s("scenario"),
        s("params"),
        s("entity"),
        s("strategy"),
        s("metric"),
    );
    let point: Vec<u32> = df
        .column("point")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let epoch: Vec<i64> = df
        .column("epoch")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let value: Vec<f64> = df
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let mut groups: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for i in 0..df.height() {
        if epoch[i] == -1 {
            groups
                .entry((
                    scenario[i].clone(),
                    point[i],
                    params[i].clone(),
                    entity[i].clone(),
                    strategy[i].clone(),
                    metric[i].clone(),
                ))
                .or_default()
                .push(value[i]);
        }
    }
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "scenario,point,params,entity,strategy,metric,n,mean,std,ci95_low,ci95_high"
    );
    let mut seen = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
        assert_eq!(f.len(), 11, "{line}");
        let key = (
            f[0].to_string(),
            f[1].parse().unwrap(),
            f[2].to_string(),
            f[3].to_string(),
            f[4].to_string(),
            f[5].to_string(),
        );
        let vals = groups
            .get(&key)
            .unwrap_or_else(|| panic!("summary row without runs: {line}"));
        let n = vals.len() as f64;
        let mean = vals.iter().sum::<f64>() / n;
        let std = if vals.len() > 1 {
            (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        let half = if vals.len() > 1 {
            t_table(vals.len() as u32 - 1) * std / n.sqrt()
        } else {
            0.0
        };
        let (lo, hi) = match scale_of(&key.5) {
            Scale::Real => (mean - half, mean + half),
            Scale::Unit => logit_bounds(mean, half),
        };
        let num = |s: &str| s.parse::<f64>().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        assert_eq!(f[6].parse::<usize>().unwrap(), vals.len(), "{line}");
        assert!(close(num(f[7]), mean), "mean {line} vs {mean}");
        // std of nearly equal large values is pure rounding noise: compare on the scale of the mean.
        assert!(
            (num(f[8]) - std).abs() <= 1e-9 * (1.0 + mean.abs()),
            "std {line} vs {std}"
        );
        assert!(close(num(f[9]), lo), "lo {line} vs {lo}");
        assert!(close(num(f[10]), hi), "hi {line} vs {hi}");
        seen += 1;
    }
    assert_eq!(seen, groups.len(), "every group has a summary row");
}

fn run_scenario(s: &common::Synth, expect_charts: &[&str]) -> orchestra_report::ReportSummary {
    let (_tmp, dir) = out_dir(&s.name);
    common::write(&dir, s);
    let summary = finalize(&dir, &ReportOptions::default()).unwrap();
    for f in [
        "runs.parquet",
        "summary.csv",
        "summary.parquet",
        "timeseries.parquet",
        "index.html",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
        assert!(summary.files.contains(&PathBuf::from(f)), "{f} not listed");
    }
    for stem in expect_charts {
        assert!(
            summary.charts.iter().any(|c| c.stem == *stem),
            "chart {stem} not produced: {:?} notes {:?}",
            summary.charts.iter().map(|c| &c.stem).collect::<Vec<_>>(),
            summary.notes
        );
    }
    for c in &summary.charts {
        for ext in ["png", "svg"] {
            let p = dir.join("charts").join(format!("{}.{ext}", c.stem));
            assert!(
                p.is_file() && std::fs::metadata(&p).unwrap().len() > 1000,
                "{}",
                p.display()
            );
        }
    }
    // Schemas.
    assert_eq!(
        schema_of(&dir.join("runs.parquet")),
        names(&[
            ("scenario", DataType::String),
            ("point", DataType::UInt32),
            ("params", DataType::String),
            ("seed", DataType::UInt64),
            ("epoch", DataType::Int64),
            ("entity", DataType::String),
            ("strategy", DataType::String),
            ("metric", DataType::String),
            ("value", DataType::Float64),
        ])
    );
    let stats = [("n", DataType::UInt32), ("mean", DataType::Float64)];
    let mut summary_schema = vec![
        ("scenario", DataType::String),
        ("point", DataType::UInt32),
        ("params", DataType::String),
        ("entity", DataType::String),
        ("strategy", DataType::String),
        ("metric", DataType::String),
    ];
    summary_schema.extend(stats.iter().cloned());
    summary_schema.extend([
        ("std", DataType::Float64),
        ("ci95_low", DataType::Float64),
        ("ci95_high", DataType::Float64),
    ]);
    assert_eq!(
        schema_of(&dir.join("summary.parquet")),
        names(&summary_schema)
    );
    let mut ts_schema = vec![
        ("scenario", DataType::String),
        ("point", DataType::UInt32),
        ("entity", DataType::String),
        ("strategy", DataType::String),
        ("metric", DataType::String),
        ("epoch", DataType::Int64),
    ];
    ts_schema.extend(stats.iter().cloned());
    ts_schema.extend([
        ("ci95_low", DataType::Float64),
        ("ci95_high", DataType::Float64),
    ]);
    assert_eq!(
        schema_of(&dir.join("timeseries.parquet")),
        names(&ts_schema)
    );
    // The time series aggregates the subnet and the strategies, never single miners (their
    // per-epoch rows stay in runs.parquet).
    let ts = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&dir.join("timeseries.parquet")).unwrap(),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .select([col("entity")])
    .collect()
    .unwrap();
    let entities: std::collections::BTreeSet<String> = ts
        .column("entity")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|e| e.unwrap_or("").to_string())
        .collect();
    assert!(entities.contains("all"), "{entities:?}");
    assert!(
        entities.iter().any(|e| e.starts_with("strategy:")),
        "{entities:?}"
    );
    assert!(
        !entities.iter().any(|e| e.starts_with("miner:")),
        "{entities:?}"
    );
    // Row count of runs.parquet equals runs.csv.
    let n = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&dir.join("runs.parquet")).unwrap(),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .select([len()])
    .collect()
    .unwrap();
    assert_eq!(
        n.column("len").unwrap().u32().unwrap().get(0).unwrap() as usize,
        s.rows()
    );

    check_summary_against_runs(&dir);

    // index.html: self-contained, shows question, checks and every chart inline.
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains(&s.question.replace('\'', "&#39;")),
        "question missing"
    );
    assert!(html.contains("honest_share_recovers") && html.contains("PASS"));
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        summary.charts.len()
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "external asset"
    );

    // Terminal summary uses the summary.csv rows.
    let term = terminal_summary(&summary);
    let hs = summary
        .rows
        .iter()
        .find(|r| r.entity == "all" && r.metric == "honest_share")
        .unwrap();
    assert!(
        term.contains(&orchestra_report::charts::fmt_num(hs.mean)),
        "{term}"
    );
    assert!(term.contains("checks:"), "{term}");
    println!("{term}");

    // Regenerate from the stored tables only.
    std::fs::remove_file(dir.join("index.html")).unwrap();
    std::fs::remove_file(dir.join("runs.csv")).unwrap();
    let again = render(&dir, &ReportOptions::default()).unwrap();
    assert!(dir.join("index.html").is_file());
    assert_eq!(again.rows, summary.rows);
    assert_eq!(again.charts.len(), summary.charts.len());
    summary
}

#[test]
fn baseline_report() {
    let s = run_scenario(
        &common::Synth::baseline(),
        &[
            "emission_share",
            "roi_vs_honest",
            "split",
            "ledger",
            "orchestration",
            "lorenz",
        ],
    );
    assert!(s.notes.is_empty(), "{:?}", s.notes);
}

#[test]
fn attack_report() {
    let s = run_scenario(
        &common::Synth::attack(),
        &[
            "emission_share",
            "roi_vs_honest",
            "split",
            "ledger",
            "orchestration",
            "lorenz",
        ],
    );
    let roi = s
        .rows
        .iter()
        .find(|r| r.entity == "strategy:fabricator" && r.metric == "roi_vs_honest")
        .unwrap();
    assert_eq!(roi.n, 6);
    assert!(roi.ci95_low < roi.mean && roi.mean < roi.ci95_high);
}

#[test]
fn one_parameter_sweep_report() {
    let s = run_scenario(
        &common::Synth::sweep1(),
        &[
            "sweep_honest_share",
            "sweep_ledger_accuracy",
            "sweep_roi_vs_honest",
            "emission_share_p0",
            "emission_share_p4",
        ],
    );
    assert_eq!(s.points.len(), 5);
    assert!(
        s.notes
            .iter()
            .any(|n| n.contains("Time-series charts are drawn for points")),
        "{:?}",
        s.notes
    );
}

#[test]
fn two_parameter_sweep_report() {
    run_scenario(
        &common::Synth::sweep2(),
        &[
            "heatmap_honest_share",
            "heatmap_roi_vs_honest_fabricator",
            "heatmap_success_rate",
        ],
    );
}

#[test]
fn missing_metrics_skip_charts_with_a_note() {
    let mut s = common::Synth::baseline();
    s.name = "partial".into();
    s.omit = [
        "ledger_accuracy",
        "ledger_coverage",
        "detection_lag_blocks",
        "split_orchestration",
    ]
    .map(String::from)
    .to_vec();
    let (_tmp, dir) = out_dir(&s.name);
    common::write(&dir, &s);
    let summary = finalize(&dir, &ReportOptions::default()).unwrap();
    assert!(
        !summary
            .charts
            .iter()
            .any(|c| c.stem == "ledger" || c.stem == "split")
    );
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains("ledger: skipped") && html.contains("split: skipped"),
        "notes missing"
    );
}

#[test]
fn header_only_run_table() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("runs.csv"),
        "scenario,point,params,seed,epoch,entity,strategy,metric,value\n",
    )
    .unwrap();
    let summary = finalize(t.path(), &ReportOptions::default()).unwrap();
    assert!(summary.rows.is_empty() && summary.charts.is_empty());
    assert!(t.path().join("index.html").is_file() && t.path().join("summary.csv").is_file());
    assert!(terminal_summary(&summary).contains("no whole-run"));
}

#[test]
fn no_charts_option() {
    let mut s = common::Synth::baseline();
    s.name = "nocharts".into();
    let (_tmp, dir) = out_dir(&s.name);
    common::write(&dir, &s);
    let summary = finalize(
        &dir,
        &ReportOptions {
            charts: false,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(summary.charts.is_empty());
    assert!(!dir.join("charts").exists());
    assert!(dir.join("index.html").is_file() && dir.join("summary.csv").is_file());
}

#[test]
fn malformed_tables_are_errors_naming_the_file() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    // Missing run table.
    match finalize(dir, &ReportOptions::default()) {
        Err(ReportError::Missing { path, .. }) => assert!(path.ends_with("runs.csv")),
        other => panic!("{other:?}"),
    }
    // Wrong header.
    std::fs::write(dir.join("runs.csv"), "scenario,point,seed,value\nx,0,1,2\n").unwrap();
    let err = finalize(dir, &ReportOptions::default()).unwrap_err();
    assert!(
        matches!(err, ReportError::Malformed { .. }) && err.to_string().contains("runs.csv"),
        "{err}"
    );
    // Bad value.
    std::fs::write(
        dir.join("runs.csv"),
        "scenario,point,params,seed,epoch,entity,strategy,metric,value\nx,0,,1,-1,all,,gini,not-a-number\n",
    )
    .unwrap();
    let err = finalize(dir, &ReportOptions::default()).unwrap_err();
    assert!(
        matches!(err, ReportError::Table { .. }) && err.to_string().contains("runs.csv"),
        "{err}"
    );
    // Bad checks.json.
    std::fs::write(
        dir.join("runs.csv"),
        "scenario,point,params,seed,epoch,entity,strategy,metric,value\nx,0,,1,-1,all,,gini,0.5\n",
    )
    .unwrap();
    std::fs::write(dir.join("checks.json"), "{not json").unwrap();
    let err = finalize(dir, &ReportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("checks.json"), "{err}");
    // render without tables.
    let t2 = tempfile::tempdir().unwrap();
    let err = render(t2.path(), &ReportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("summary.parquet"), "{err}");
}

#[test]
fn intervals_of_proportions_stay_in_the_unit_interval() {
    // Five seeds whose Ledger accuracy sits near 1 (the t-interval would end at 1.0034), and an
    // unbounded ROI with the same spread, per run and per epoch.
    let t = tempfile::tempdir().unwrap();
    let acc = [1.0, 1.0, 0.9722, 0.9825, 0.9888];
    let mut csv = String::from("scenario,point,params,seed,epoch,entity,strategy,metric,value\n");
    for (seed, a) in acc.iter().enumerate() {
        for epoch in [-1, 0, 1] {
            csv.push_str(&format!("x,0,,{seed},{epoch},all,,ledger_accuracy,{a}\n"));
            csv.push_str(&format!("x,0,,{seed},{epoch},all,,latency_p50_ms,{a}\n"));
        }
    }
    std::fs::write(t.path().join("runs.csv"), csv).unwrap();
    let summary = finalize(
        t.path(),
        &ReportOptions {
            charts: false,
            ..Default::default()
        },
    )
    .unwrap();
    let row = |m: &str| summary.rows.iter().find(|r| r.metric == m).unwrap().clone();
    let (acc_row, lat) = (row("ledger_accuracy"), row("latency_p50_ms"));
    assert_eq!(
        (acc_row.n, acc_row.mean, acc_row.std),
        (lat.n, lat.mean, lat.std)
    );
    assert!(lat.ci95_high > 1.0, "{lat:?}");
    assert!(
        0.0 < acc_row.ci95_low && acc_row.ci95_low < acc_row.mean && acc_row.ci95_high < 1.0,
        "{acc_row:?}"
    );
    let half = t_table(4) * lat.std / 5f64.sqrt();
    let (lo, hi) = logit_bounds(acc_row.mean, half);
    // t_table has 10 digits.
    assert!((acc_row.ci95_low - lo).abs() < 1e-8 && (acc_row.ci95_high - hi).abs() < 1e-8);
    // The time series uses the same rule.
    let ts = LazyFrame::scan_parquet(
        PlRefPath::try_from_path(&t.path().join("timeseries.parquet")).unwrap(),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .filter(col("metric").eq(lit("ledger_accuracy")))
    .collect()
    .unwrap();
    let highs: Vec<f64> = ts
        .column("ci95_high")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    assert_eq!(highs.len(), 2);
    assert!(
        highs.iter().all(|h| (h - acc_row.ci95_high).abs() < 1e-12),
        "{highs:?}"
    );
}
