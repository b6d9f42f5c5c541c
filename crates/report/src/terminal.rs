//! Compact terminal summary, built from the rows of `summary.csv`.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::charts::fmt_num;
use crate::{ReportSummary, SummaryRow};

/// `all`-entity KPIs shown in the terminal summary, in order.
pub const TERMINAL_KPIS: &[&str] = &[
    "honest_share",
    "gini",
    "split_orchestration",
    "ledger_accuracy",
    "success_rate",
];

fn fmt_ci(r: &SummaryRow) -> String {
    format!(
        "{} [{}, {}]",
        fmt_num(r.mean),
        fmt_num(r.ci95_low),
        fmt_num(r.ci95_high)
    )
}

/// A compact table per scenario × point: key KPIs (`honest_share`, `gini`,
/// `split_orchestration`, `ledger_accuracy`, `success_rate`, and `roi_vs_honest` per strategy) as
/// `mean [ci95_low, ci95_high]` over seeds, and the `[expect]` checks passed/failed. The numbers
/// are the rows of `summary.csv` ([`ReportSummary::rows`]), only rounded for display.
pub fn terminal_summary(summary: &ReportSummary) -> String {
    let mut out = String::new();
    let mut by_point: BTreeMap<(String, u32), Vec<&SummaryRow>> = BTreeMap::new();
    for r in &summary.rows {
        by_point
            .entry((r.scenario.clone(), r.point))
            .or_default()
            .push(r);
    }
    for ((scenario, point), rows) in &by_point {
        let params = rows.first().map(|r| r.params.as_str()).unwrap_or("");
        let n = rows.iter().map(|r| r.n).max().unwrap_or(0);
        let _ = write!(out, "{scenario} · point {point}");
        if !params.is_empty() {
            let _ = write!(out, " ({params})");
        }
        let _ = writeln!(out, " · {n} seeds · mean [95% CI]");
        let mut lines: Vec<(String, String)> = Vec::new();
        for kpi in TERMINAL_KPIS {
            if let Some(r) = rows.iter().find(|r| r.entity == "all" && r.metric == *kpi) {
                lines.push(((*kpi).to_string(), fmt_ci(r)));
            }
        }
        for r in rows
            .iter()
            .filter(|r| r.entity.starts_with("strategy:") && r.metric == "roi_vs_honest")
        {
            lines.push((
                format!("roi_vs_honest {}", r.entity.trim_start_matches("strategy:")),
                fmt_ci(r),
            ));
        }
        let w = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &lines {
            let _ = writeln!(out, "  {k:<w$}  {v}");
        }
        let checks: Vec<_> = summary
            .checks
            .iter()
            .filter(|c| c.point == *point)
            .collect();
        if !checks.is_empty() {
            let passed = checks.iter().filter(|c| c.passed).count();
            let _ = writeln!(out, "  checks: {passed}/{} passed", checks.len());
            for c in checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(out, "    FAILED {}: {}", c.name, c.detail);
            }
        }
    }
    if by_point.is_empty() {
        out.push_str("no whole-run (epoch = -1) rows in the run table\n");
    }
    let _ = writeln!(
        out,
        "report: {}",
        summary.run_dir.join(crate::files::INDEX_HTML).display()
    );
    out
}
