//! The self-contained `index.html` of a run directory.

use std::fmt::Write;

use base64::Engine as _;

use crate::ReportSummary;
use crate::charts::{Rendered, fmt_num};
use crate::inputs::Inputs;

/// At most this many miner/validator/subnet rows are listed (the full table is in summary.csv).
const MAX_DETAIL_ROWS: usize = 2000;
/// At most this many manifests are listed.
const MAX_MANIFESTS: usize = 200;

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}\
.question{background:#f4f7fb;border-left:4px solid #0072b2;padding:.8em 1em;white-space:pre-wrap}\
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.pass{color:#007a4d;font-weight:bold}.fail{color:#c0392b;font-weight:bold}\
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.95em}\
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}.note{color:#8a5a00}";

fn summary_table(out: &mut String, rows: &[&crate::SummaryRow]) {
    out.push_str("<table><tr><th>point</th><th>params</th><th>entity</th><th>metric</th><th>n</th><th>mean</th><th>std</th><th>95 % CI</th></tr>\n");
    for r in rows {
        let _ = writeln!(
            out,
            "<tr><td class=num>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>[{}, {}]</td></tr>",
            r.point,
            esc(&r.params),
            esc(&r.entity),
            esc(&r.metric),
            r.n,
            fmt_num(r.mean),
            fmt_num(r.std),
            fmt_num(r.ci95_low),
            fmt_num(r.ci95_high)
        );
    }
    out.push_str("</table>\n");
}

pub(crate) fn index_html(
    s: &ReportSummary,
    inputs: &Inputs,
    charts: &[Rendered],
    tune_charts: &[(crate::charts::Chart, Rendered)],
) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{} — Orchestra simulation report</title><style>{STYLE}</style></head><body>\n",
        esc(&s.scenario)
    );
    let _ = writeln!(
        o,
        "<h1>{}</h1><p>Orchestra simulation report · <code>{}</code></p>",
        esc(&s.scenario),
        esc(&s.run_dir.display().to_string())
    );
    if !s.question.is_empty() {
        let _ = writeln!(o, "<div class=question>{}</div>", esc(&s.question));
    }
    if let Some(t) = &inputs.tune {
        crate::tune::section(&mut o, t, tune_charts);
    }
    // Checks.
    o.push_str("<h2>Expectations</h2>\n");
    if s.checks.is_empty() {
        o.push_str(
            "<p>No <code>[expect]</code> checks recorded (checks.json absent or empty).</p>\n",
        );
    } else {
        let passed = s.checks.iter().filter(|c| c.passed).count();
        let _ = writeln!(o, "<p>{passed} of {} checks passed.</p>", s.checks.len());
        o.push_str("<table><tr><th>point</th><th>check</th><th>result</th><th>detail</th></tr>\n");
        for c in &s.checks {
            let (cls, word) = if c.passed {
                ("pass", "PASS")
            } else {
                ("fail", "FAIL")
            };
            let _ = writeln!(
                o,
                "<tr><td class=num>{}</td><td>{}</td><td class={cls}>{word}</td><td>{}</td></tr>",
                c.point,
                esc(&c.name),
                esc(&c.detail)
            );
        }
        o.push_str("</table>\n");
    }
    // Parameters.
    o.push_str("<h2>Parameters</h2>\n");
    if s.points.iter().any(|p| !p.params.is_empty()) {
        o.push_str("<table><tr><th>point</th><th>parameters</th></tr>\n");
        for p in &s.points {
            let params: Vec<String> = p.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let _ = writeln!(
                o,
                "<tr><td class=num>{}</td><td>{}</td></tr>",
                p.point,
                esc(&params.join(", "))
            );
        }
        o.push_str("</table>\n");
    } else {
        o.push_str("<p>No sweep: a single parameter point.</p>\n");
    }
    if let Some(toml) = &inputs.scenario_toml {
        let _ = writeln!(
            o,
            "<details><summary>scenario.toml</summary><pre>{}</pre></details>",
            esc(toml)
        );
    }
    if !inputs.manifests.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>Run manifests ({} runs)</summary><pre>",
            inputs.manifests.len()
        );
        for m in inputs.manifests.iter().take(MAX_MANIFESTS) {
            let _ = writeln!(o, "{}", esc(&m.to_string()));
        }
        if inputs.manifests.len() > MAX_MANIFESTS {
            let _ = writeln!(
                o,
                "… {} more in manifests.jsonl",
                inputs.manifests.len() - MAX_MANIFESTS
            );
        }
        o.push_str("</pre></details>\n");
    }
    // Summary.
    o.push_str("<h2>Summary</h2>\n<p>Whole-run values (epoch = −1) over seeds: mean, sample standard deviation and 95 % confidence interval of the mean (Student's t; for proportions bounded to [0, 1] — shares, accuracy, coverage, success rate, quality, Gini — the t-interval on the logit scale, which stays inside [0, 1]). Full table: <code>summary.csv</code>.</p>\n");
    let main: Vec<_> = s
        .rows
        .iter()
        .filter(|r| r.entity == "all" || r.entity.starts_with("strategy:"))
        .collect();
    summary_table(&mut o, &main);
    let detail: Vec<_> = s
        .rows
        .iter()
        .filter(|r| !(r.entity == "all" || r.entity.starts_with("strategy:")))
        .collect();
    if !detail.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>Per miner / validator rows ({})</summary>",
            detail.len()
        );
        summary_table(&mut o, &detail[..detail.len().min(MAX_DETAIL_ROWS)]);
        if detail.len() > MAX_DETAIL_ROWS {
            let _ = writeln!(
                o,
                "<p>… {} more rows in summary.csv</p>",
                detail.len() - MAX_DETAIL_ROWS
            );
        }
        o.push_str("</details>\n");
    }
    // Charts.
    o.push_str("<h2>Charts</h2>\n");
    let b64 = base64::engine::general_purpose::STANDARD;
    for (info, r) in s.charts.iter().zip(charts) {
        let _ = writeln!(
            o,
            "<figure id=\"{}\"><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption><b>{}</b> — {}</figcaption></figure>",
            esc(&info.stem),
            esc(&info.title),
            b64.encode(&r.png),
            esc(&info.title),
            esc(&info.caption)
        );
    }
    for n in &s.notes {
        let _ = writeln!(o, "<p class=note>Note: {}</p>", esc(n));
    }
    o.push_str("</body></html>\n");
    o
}
