//! The tuning section of `index.html` for a run directory written by `orchestra-sim tune`
//! (`tune.json`): the recommendation with its KPIs and intervals and the `[mechanism]` snippet,
//! the finalists' seed racing, the Pareto front (chart `tune_pareto`), each parameter's
//! sensitivity, and the best adversary response per candidate (chart `tune_inner`: the
//! recommended candidate's adversaries at their written parameters and at their best response).
//!
//! `tune.json` is read as loose JSON: a missing field shows as "—", never as an error.

use std::fmt::Write;

use base64::Engine as _;
use serde_json::Value;

use crate::charts::{Bar, Chart, ChartSpec, Rendered, ScatterSeries, fmt_num};
use crate::html::esc;

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn stat(v: &Value) -> String {
    if v["mean"].is_null() {
        return "—".into();
    }
    format!(
        "{} [{}, {}]",
        fmt_num(num(&v["mean"])),
        fmt_num(num(&v["lo"])),
        fmt_num(num(&v["hi"]))
    )
}

fn params(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{} = {v}", k.trim_start_matches("mechanism.")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn candidates(t: &Value) -> &[Value] {
    t["candidates"].as_array().map_or(&[], Vec::as_slice)
}

fn candidate(t: &Value, id: u64) -> Option<&Value> {
    candidates(t).iter().find(|c| c["id"].as_u64() == Some(id))
}

/// The tune charts: the Pareto front and the recommended candidate's inner search.
pub(crate) fn charts(t: &Value) -> Vec<Chart> {
    let mut out = Vec::new();
    let objs: Vec<(String, f64)> = t["pareto_objectives"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    let m = o["metric"].as_str().unwrap_or_default().to_string();
                    let sign = if o["goal"] == "min" { -1.0 } else { 1.0 };
                    (m, sign)
                })
                .collect()
        })
        .unwrap_or_default();
    if objs.len() >= 2 {
        let (mx, my) = (&objs[0].0, &objs[1].0);
        let xy = |c: &Value| (num(&c["kpis"][mx]["mean"]), num(&c["kpis"][my]["mean"]));
        let front: Vec<u64> = t["pareto"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let valid: Vec<&Value> = candidates(t)
            .iter()
            .filter(|c| c["invalid"].is_null())
            .collect();
        let mut front_pts: Vec<(f64, f64)> = valid
            .iter()
            .filter(|c| c["id"].as_u64().is_some_and(|id| front.contains(&id)))
            .map(|c| xy(c))
            .collect();
        front_pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let best = t["recommended"].as_u64().unwrap_or(0);
        let series = vec![
            ScatterSeries {
                label: "candidates".into(),
                color: 5,
                radius: 4,
                line: false,
                points: valid.iter().map(|c| xy(c)).collect(),
            },
            ScatterSeries {
                label: "Pareto front".into(),
                color: 0,
                radius: 5,
                line: true,
                points: front_pts,
            },
            ScatterSeries {
                label: "baseline (candidate 0)".into(),
                color: 6,
                radius: 7,
                line: false,
                points: candidate(t, 0).map(xy).into_iter().collect(),
            },
            ScatterSeries {
                label: format!("recommended ({best})"),
                color: 1,
                radius: 8,
                line: false,
                points: candidate(t, best).map(xy).into_iter().collect(),
            },
        ];
        let dir = |s: f64| {
            if s > 0.0 {
                "higher is better"
            } else {
                "lower is better"
            }
        };
        out.push(Chart {
            stem: "tune_pareto".into(),
            title: format!("Tuner candidates: {mx} vs {my}"),
            caption: format!(
                "Every candidate's worst-case {mx} ({}) against its worst-case {my} ({}), means over the search's seeds; the Pareto front joins the candidates no other candidate beats on both.",
                dir(objs[0].1),
                dir(objs[1].1)
            ),
            spec: ChartSpec::Scatter {
                x_desc: mx.clone(),
                y_desc: my.clone(),
                series,
            },
        });
    }
    if let Some(best) = t["recommended"].as_u64().and_then(|b| candidate(t, b)) {
        let mut bars = Vec::new();
        let mut honest = Vec::new();
        for (i, r) in best["details"]["best_responses"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
        {
            let g = r["group"].as_str().unwrap_or("?");
            for (label, key, shade) in [
                (g.to_string(), "default_roi", 0),
                ("→ best".to_string(), "best_roi", 1),
            ] {
                let s = &r[key];
                bars.push(Bar {
                    label,
                    color: (2 * i + shade) % 8,
                    mean: num(&s["mean"]),
                    lo: num(&s["lo"]),
                    hi: num(&s["hi"]),
                });
            }
            honest.push(num(&r["honest_roi_at_best"]["mean"]));
        }
        if !bars.is_empty() {
            let h: Vec<f64> = honest.into_iter().filter(|x| x.is_finite()).collect();
            let reference = (!h.is_empty())
                .then(|| ("honest".to_string(), h.iter().sum::<f64>() / h.len() as f64));
            out.push(Chart {
                stem: "tune_inner".into(),
                title: format!(
                    "Inner search at the recommended candidate {}: adversary ROI per identity",
                    best["id"]
                ),
                caption: "Each adversary group's ROI per identity (rao, mean with 95 % CI) with its parameters as written (labelled with the group) and, in the next bar (→ best), at the best response the inner search found (the probe with the largest gap to honest ROI in the same runs — which can be a lower ROI when honest miners earn less there too); the dashed line is honest ROI (mean over the best-response probes).".into(),
                spec: ChartSpec::Bars {
                    y_desc: "ROI per identity (rao)".into(),
                    bars,
                    reference,
                },
            });
        }
    }
    out
}

fn figure(o: &mut String, chart: &Chart, r: &Rendered) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let _ = writeln!(
        o,
        "<figure id=\"{}\"><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption><b>{}</b> — {}</figcaption></figure>",
        esc(&chart.stem),
        esc(&chart.title),
        b64.encode(&r.png),
        esc(&chart.title),
        esc(&chart.caption)
    );
}

fn responses_cell(c: &Value) -> String {
    let mut parts = Vec::new();
    for r in c["details"]["best_responses"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
    {
        let knobs = r["knobs"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let v = v.as_f64().map_or_else(|| v.to_string(), fmt_num);
                        format!("{k}={v}")
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let mark = if r["strictly_better"].as_bool() == Some(true) {
            " ▲"
        } else {
            ""
        };
        parts.push(format!(
            "{}: gap {} → {}{mark} ({})",
            r["group"].as_str().unwrap_or("?"),
            fmt_num(num(&r["default_gap"]["mean"])),
            fmt_num(num(&r["best_gap"]["mean"])),
            knobs
        ));
    }
    esc(&parts.join("; "))
}

/// Append the tuning section.
pub(crate) fn section(o: &mut String, t: &Value, charts: &[(Chart, Rendered)]) {
    o.push_str("<h2>Tuning</h2>\n");
    let n = candidates(t).len();
    let best_id = t["recommended"].as_u64().unwrap_or(0);
    let s = &t["settings"];
    let objectives: Vec<String> = t["goals"]["objectives"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o["goal"].as_str().unwrap_or(""),
                        o["metric"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let constraints: Vec<String> = t["goals"]["constraints"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    let op = if c["kind"] == "max" { "≤" } else { "≥" };
                    format!("{} {op} {}", c["metric"].as_str().unwrap_or(""), c["bound"])
                })
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "<p>CMA-ES (seed {}) over {} free parameter(s): {n} candidates in {} generation(s) of {} (candidate 0 is the scenario's own parameters), each simulated on the same {} seeds (common random numbers) against every adversary group at its parameters as written and {} + {} inner-search probes of their knobs; a candidate's KPIs are its worst case over those probes. Objective: {}; constraints: {} (each costs 10 × its relative violation in the score). The best {} candidates and the baseline were then raced on up to {} seeds: the leader's paired score difference to every other finalist {}.</p>",
        s["seed"],
        t["dims"].as_array().map_or(0, Vec::len),
        t["generations"],
        s["population"],
        s["seeds"].as_array().map_or(0, Vec::len),
        t["inner_probes"],
        t["inner_refine"],
        esc(&objectives.join(", ")),
        esc(&if constraints.is_empty() {
            "none".to_string()
        } else {
            constraints.join(", ")
        }),
        s["finalists"],
        t["final_seeds"],
        if t["separated"].as_bool() == Some(true) {
            "has a 95 % interval above zero (separated)"
        } else {
            "did not separate at the seed cap: the finalists are statistically tied"
        }
    );
    let best = candidate(t, best_id);
    let base = candidate(t, 0);
    if let Some(b) = best {
        let feasible = if b["feasible"].as_bool() == Some(true) {
            "<span class=pass>every constraint holds</span>".to_string()
        } else {
            format!(
                "<span class=fail>violates</span> {}",
                esc(&b["violations"]
                    .as_array()
                    .map(|v| v
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default())
            )
        };
        let _ = writeln!(
            o,
            "<h3>Recommendation: candidate {best_id}</h3><p>Score {} over {} seeds; {feasible}.</p>",
            stat(&b["score"]),
            b["seeds"]
        );
        o.push_str("<table><tr><th>parameter</th><th>baseline</th><th>recommended</th></tr>\n");
        if let Some(m) = b["params"].as_object() {
            for (k, v) in m {
                let was = base.map_or(Value::Null, |c| c["params"][k].clone());
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td class=num>{was}</td><td class=num>{v}</td></tr>",
                    esc(k)
                );
            }
        }
        o.push_str("</table>\n");
        o.push_str("<table><tr><th>KPI (worst case over adversary responses)</th><th>baseline, mean [95 % CI]</th><th>recommended, mean [95 % CI]</th></tr>\n");
        if let Some(m) = b["kpis"].as_object() {
            for (k, v) in m {
                let was = base.map_or("—".to_string(), |c| stat(&c["kpis"][k]));
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
                    esc(k),
                    esc(&was),
                    esc(&stat(v))
                );
            }
        }
        o.push_str("</table>\n");
    }
    if let Some(snippet) = t["recommended_toml"].as_str() {
        let _ = writeln!(
            o,
            "<p>Ready to paste into a scenario (also in <code>recommended.toml</code>):</p><pre>{}</pre>",
            esc(snippet)
        );
    }
    // Racing.
    o.push_str("<h3>Finalists</h3><table><tr><th>candidate</th><th>parameters</th><th>score [95 % CI]</th><th>leader − this, paired [95 % CI]</th></tr>\n");
    for f in t["finalists"].as_array().map_or(&[][..], Vec::as_slice) {
        let id = f["id"].as_u64().unwrap_or(0);
        let p = candidate(t, id).map_or(String::new(), |c| params(&c["params"]));
        let _ = writeln!(
            o,
            "<tr><td class=num>{id}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td></tr>",
            esc(&p),
            esc(&stat(&f["score"])),
            esc(&if f["leader_minus_this"].is_null() {
                "(leader)".to_string()
            } else {
                stat(&f["leader_minus_this"])
            })
        );
    }
    o.push_str("</table>\n");
    // Charts.
    for (chart, r) in charts {
        figure(o, chart, r);
    }
    // Inner search highlights.
    o.push_str("<h3>Inner search: best adversary responses</h3>\n<p>Per candidate, each adversary group's ROI gap to honest work (fraction of honest ROI) with its parameters as written → at the best response found, and the knobs of that response. ▲ marks a response strictly more profitable than the written parameters (paired 95 % interval of the ROI difference above zero).</p>\n");
    let mut strictly = Vec::new();
    for c in candidates(t) {
        for r in c["details"]["best_responses"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
        {
            if r["strictly_better"].as_bool() == Some(true) {
                strictly.push((c["id"].as_u64().unwrap_or(0), r));
            }
        }
    }
    if strictly.is_empty() {
        o.push_str("<p>No best response was strictly more profitable than the written adversary parameters.</p>\n");
    } else {
        let _ = writeln!(
            o,
            "<p>{} (candidate, group) pairs where the inner search found a strictly more profitable attack than the written parameters, e.g.:</p><table><tr><th>candidate</th><th>group</th><th>ROI as written</th><th>ROI at best response</th><th>difference (paired)</th><th>knobs</th></tr>",
            strictly.len()
        );
        for (id, r) in strictly.iter().take(12) {
            let _ = writeln!(
                o,
                "<tr><td class=num>{id}</td><td>{}</td><td class=num>{}</td><td class=num>{}</td><td class=num>{}</td><td>{}</td></tr>",
                esc(r["group"].as_str().unwrap_or("?")),
                esc(&stat(&r["default_roi"])),
                esc(&stat(&r["best_roi"])),
                esc(&stat(&r["best_minus_default_roi"])),
                esc(&r["knobs"].to_string())
            );
        }
        o.push_str("</table>\n");
    }
    // Sensitivity.
    o.push_str("<h3>Sensitivity</h3><p>Spearman rank correlation, over the search's valid candidates, between each free parameter and the score and each objective (±1: monotone effect; near 0: no monotone effect within the bounds).</p><table><tr><th>parameter</th><th>ρ with score</th><th>ρ with objectives</th></tr>\n");
    for s in t["sensitivity"].as_array().map_or(&[][..], Vec::as_slice) {
        let objs = s["objectives"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}: {}", fmt_num(num(v))))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=num>{}</td><td>{}</td></tr>",
            esc(s["key"].as_str().unwrap_or("")),
            fmt_num(num(&s["score"])),
            esc(&objs)
        );
    }
    o.push_str("</table>\n");
    // Every candidate.
    let _ = writeln!(
        o,
        "<details><summary>All {n} candidates (worst-case KPIs, best adversary per group)</summary><table><tr><th>id</th><th>gen</th><th>parameters</th><th>score [95 % CI]</th><th>feasible</th><th>best adversary responses</th></tr>"
    );
    for c in candidates(t) {
        let _ = writeln!(
            o,
            "<tr><td class=num>{}</td><td class=num>{}</td><td>{}</td><td class=num>{}</td><td>{}</td><td>{}</td></tr>",
            c["id"],
            c["generation"],
            esc(&params(&c["params"])),
            esc(&stat(&c["score"])),
            if c["feasible"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            responses_cell(c)
        );
    }
    o.push_str("</table></details>\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Value {
        let cand = |id: u64, h: f64, gap: f64| {
            serde_json::json!({
                "id": id, "generation": id, "params": {"mechanism.orchestration_share": 0.5 + 0.1 * id as f64},
                "seeds": 2, "feasible": gap < 0.0, "violations": [], "invalid": null,
                "score": {"mean": h, "lo": h - 0.1, "hi": h + 0.1, "n": 2},
                "kpis": {
                    "honest_share": {"mean": h, "lo": h - 0.05, "hi": h + 0.05, "n": 2},
                    "adversary_roi_gap": {"mean": gap, "lo": gap - 0.1, "hi": gap + 0.1, "n": 2}
                },
                "details": {"best_responses": [{
                    "group": "fabricator", "strictly_better": id == 1,
                    "knobs": {"rate": 0.25, "steps": "one"},
                    "default_gap": {"mean": -0.5}, "best_gap": {"mean": gap},
                    "default_roi": {"mean": 1.0e9, "lo": 0.8e9, "hi": 1.2e9},
                    "best_roi": {"mean": 2.0e9, "lo": 1.7e9, "hi": 2.3e9},
                    "best_minus_default_roi": {"mean": 1.0e9, "lo": 0.5e9, "hi": 1.5e9},
                    "honest_roi_at_best": {"mean": 3.0e9}
                }]}
            })
        };
        serde_json::json!({
            "settings": {"seed": 1, "population": 2, "seeds": [1, 2], "finalists": 1},
            "dims": [{"key": "mechanism.orchestration_share"}],
            "generations": 1, "final_seeds": 4, "separated": true, "inner_probes": 2, "inner_refine": 1,
            "goals": {"objectives": [{"metric": "honest_share", "goal": "max"}],
                      "constraints": [{"metric": "adversary_roi_gap", "kind": "max", "bound": 0.0}]},
            "pareto_objectives": [{"metric": "honest_share", "goal": "max"},
                                  {"metric": "adversary_roi_gap", "goal": "min"}],
            "candidates": [cand(0, 0.6, 0.2), cand(1, 0.7, -0.1), cand(2, 0.65, -0.3)],
            "pareto": [1, 2], "recommended": 1,
            "finalists": [{"id": 1, "score": {"mean": 0.7, "lo": 0.6, "hi": 0.8, "n": 4}, "leader_minus_this": null},
                          {"id": 0, "score": {"mean": 0.6, "lo": 0.5, "hi": 0.7, "n": 4},
                           "leader_minus_this": {"mean": 0.1, "lo": 0.05, "hi": 0.15, "n": 4}}],
            "sensitivity": [{"key": "mechanism.orchestration_share", "score": 0.5, "objectives": {"honest_share": 0.5}}],
            "recommended_toml": "[mechanism]\norchestration_share = 0.6\n"
        })
    }

    #[test]
    fn tune_charts_render_and_the_section_tells_the_story() {
        let t = sample();
        let charts = charts(&t);
        let stems: Vec<&str> = charts.iter().map(|c| c.stem.as_str()).collect();
        assert_eq!(stems, ["tune_pareto", "tune_inner"]);
        let ChartSpec::Scatter { series, .. } = &charts[0].spec else {
            panic!("pareto is a scatter chart")
        };
        // Front: candidates 1 and 2, sorted by honest share; the recommended point is candidate 1.
        assert_eq!(series[1].points, vec![(0.65, -0.3), (0.7, -0.1)]);
        assert_eq!(series[3].points, vec![(0.7, -0.1)]);
        let dir = tempfile::tempdir().unwrap();
        let rendered: Vec<(Chart, Rendered)> = charts
            .into_iter()
            .map(|c| {
                let r = crate::charts::render_chart(&c, dir.path()).unwrap();
                (c, r)
            })
            .collect();
        assert!(rendered.iter().all(|(_, r)| r.png.starts_with(b"\x89PNG")));
        let mut html = String::new();
        section(&mut html, &t, &rendered);
        for needle in [
            "<h2>Tuning</h2>",
            "Recommendation: candidate 1",
            "orchestration_share = 0.6",
            "(separated)",
            "strictly more profitable",
            "tune_pareto",
            "rate=0.25",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
    }
}
