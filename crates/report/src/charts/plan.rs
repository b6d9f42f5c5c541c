//! What is drawn: the table of charts a run directory gets ([`POINT_CHARTS`] per parameter
//! point; [`SWEEP_METRICS`] and friends across points), and the planner that iterates it over the
//! summary rows and time series. Adding a chart of an existing kind is a row here; the drawing
//! code does not change.

use std::collections::{BTreeMap, BTreeSet};

use super::draw::{finite_range, fmt_tick, pad};
use super::{Band, Bar, Chart, ChartSpec, Marker, Panel, Plan};
use crate::ReportOptions;
use crate::inputs::{EventRow, PointInfo};
use crate::tables::{SummaryRow, TsRow};

/// y-axis description (with unit) of each metric; a metric not listed is described by its name.
const METRIC_DESCS: &[(&str, &str)] = &[
    (
        "emission_share",
        "emission share (fraction of miner emission)",
    ),
    ("honest_share", "honest share (fraction of miner emission)"),
    ("gini", "Gini of miner emission (0 = equal)"),
    (
        "split_orchestration",
        "orchestration share (fraction of miner emission)",
    ),
    ("split_target", "target orchestration share (fraction)"),
    ("emission_error_rao", "emission conservation error (rao)"),
    ("ledger_accuracy", "Ledger accuracy (fraction)"),
    ("detection_lag_blocks", "change-detection lag (blocks)"),
    ("ledger_coverage", "Ledger coverage (fraction)"),
    ("success_rate", "orchestration success rate (fraction)"),
    ("latency_p50_ms", "latency p50 (ms)"),
    ("latency_p95_ms", "latency p95 (ms)"),
    ("organic_quality", "organic quality (score)"),
    ("organic_rps", "organic load (requests/s)"),
    ("challenges", "challenges (count)"),
    ("fabrication_strikes", "fabrication strikes (count)"),
    ("roi_vs_honest", "ROI relative to honest (ratio)"),
    ("emission_per_identity_rao", "emission per identity (rao)"),
    ("cost_per_identity_rao", "cost per identity (rao)"),
    ("roi_per_identity_rao", "ROI per identity (rao)"),
    ("identities", "identities (count)"),
];

/// y-axis description (with unit) of a metric.
pub fn metric_desc(metric: &str) -> String {
    METRIC_DESCS
        .iter()
        .find(|(m, _)| *m == metric)
        .map_or(metric, |(_, d)| *d)
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// The table.

/// How a per-epoch line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Solid, with its 95 % CI band.
    Solid,
    /// Dashed, with its band (a second statistic of a related quantity).
    Dashed,
    /// Dashed, without a band (a target): drawn only next to a measured series, never alone.
    Reference,
}

/// One per-epoch series of the network (`all` entity).
#[derive(Debug)]
struct Series {
    /// Metric (`timeseries.parquet` rows).
    metric: &'static str,
    /// Legend label.
    label: &'static str,
    /// Index into the palette.
    color: usize,
    /// How it is drawn.
    line: Line,
}

/// The lines of a panel.
#[derive(Debug)]
enum Lines {
    /// This metric of every strategy (`strategy:<name>` rows), one line each in its colour.
    PerStrategy(&'static str),
    /// These network series.
    Network(&'static [Series]),
}

/// y range of a panel.
#[derive(Debug)]
enum YRange {
    /// Fit the data, padded.
    Auto,
    /// From 0 to a little above the largest value: shares are read against zero.
    FromZero,
    /// Fit the data but at least this wide, so that noise is not magnified.
    AtLeast(f64),
}

/// y-axis description of a panel.
#[derive(Debug)]
enum Axis {
    /// The metric's description ([`metric_desc`]).
    Metric(&'static str),
    /// This text.
    Text(&'static str),
}

/// One panel of a chart over epochs; it is drawn when one of its measured lines has data.
#[derive(Debug)]
struct PanelDef {
    /// y-axis description.
    y: Axis,
    /// y range.
    range: YRange,
    /// The lines on the left axis.
    lines: Lines,
    /// A network series on a right axis (described by its metric), drawn with the panel.
    right: Option<Series>,
}

/// What a per-point chart shows and where its data comes from.
#[derive(Debug)]
enum Kind {
    /// Stacked panels over epochs (`timeseries.parquet`), events marked; drawn when any panel is.
    Epochs(&'static [PanelDef]),
    /// A whole-run metric per strategy (`summary` rows): bars with CI whiskers and honest's mean
    /// as the reference line.
    StrategyBars(&'static str),
    /// Lorenz curve of the miners' whole-run `amounts` metric (mean over seeds per miner), with
    /// the network's reported `gini` metric in the legend.
    Lorenz {
        /// Per-miner metric.
        amounts: &'static str,
        /// Network metric.
        gini: &'static str,
    },
}

/// A chart drawn for each parameter point (stem suffixed `_p<k>` when there are several).
#[derive(Debug)]
struct ChartDef {
    /// File stem.
    stem: &'static str,
    /// Title (a point's parameters are appended when there are several points).
    title: &'static str,
    /// Caption under the chart in `index.html`.
    caption: &'static str,
    /// What it shows.
    kind: Kind,
    /// The note when its data is absent: "<stem>: skipped, <missing>".
    missing: &'static str,
}

/// x axis of the charts over epochs.
const EPOCH_AXIS: &str = "epoch (tempo index)";

/// The charts of every parameter point, in display order.
const POINT_CHARTS: &[ChartDef] = &[
    ChartDef {
        stem: "emission_share",
        title: "Emission share per strategy over epochs",
        caption: "Share of miner emission earned by each strategy per epoch: mean over seeds, shaded 95 % CI; dashed verticals mark scenario events.",
        kind: Kind::Epochs(&[PanelDef {
            y: Axis::Metric("emission_share"),
            range: YRange::FromZero,
            lines: Lines::PerStrategy("emission_share"),
            right: None,
        }]),
        missing: "no per-epoch `emission_share` rows.",
    },
    ChartDef {
        stem: "roi_vs_honest",
        title: "Whole-run ROI per strategy relative to honest",
        caption: "ROI (emission − sub-call cost) per identity relative to honest, over the whole run: bar = mean over seeds, whisker = 95 % CI; above the honest line means the strategy pays.",
        kind: Kind::StrategyBars("roi_vs_honest"),
        missing: "no whole-run `roi_vs_honest` rows.",
    },
    ChartDef {
        stem: "split",
        title: "Realised orchestration vs Ledger split over epochs",
        caption: "Orchestration share of miner emission per epoch (the Ledger gets the rest): mean with 95 % CI band, dashed = target share s.",
        kind: Kind::Epochs(&[PanelDef {
            y: Axis::Metric("split_orchestration"),
            range: YRange::AtLeast(0.2),
            lines: Lines::Network(&[
                Series {
                    metric: "split_orchestration",
                    label: "realised share",
                    color: 0,
                    line: Line::Solid,
                },
                Series {
                    metric: "split_target",
                    label: "target",
                    color: 1,
                    line: Line::Reference,
                },
            ]),
            right: None,
        }]),
        missing: "no per-epoch `split_orchestration` rows.",
    },
    ChartDef {
        stem: "ledger",
        title: "Ledger accuracy, coverage and change-detection lag",
        caption: "Ledger quality against the simulator's ground truth per epoch (mean, 95 % CI bands); dashed verticals mark scenario events such as schema changes.",
        kind: Kind::Epochs(&[
            PanelDef {
                y: Axis::Text("Ledger accuracy / coverage (fraction)"),
                range: YRange::Auto,
                lines: Lines::Network(&[
                    Series {
                        metric: "ledger_accuracy",
                        label: "accuracy",
                        color: 0,
                        line: Line::Solid,
                    },
                    Series {
                        metric: "ledger_coverage",
                        label: "coverage",
                        color: 2,
                        line: Line::Solid,
                    },
                ]),
                right: None,
            },
            PanelDef {
                y: Axis::Metric("detection_lag_blocks"),
                range: YRange::Auto,
                lines: Lines::Network(&[Series {
                    metric: "detection_lag_blocks",
                    label: "detection lag",
                    color: 1,
                    line: Line::Solid,
                }]),
                right: None,
            },
        ]),
        missing: "no per-epoch Ledger accuracy, coverage or lag rows.",
    },
    ChartDef {
        stem: "orchestration",
        title: "Orchestration success rate and latency over epochs",
        caption: "Orchestration success rate (top) and latency p50/p95 (bottom, mean with 95 % CI; grey = organic load on the right axis); dashed verticals mark events.",
        kind: Kind::Epochs(&[
            PanelDef {
                y: Axis::Metric("success_rate"),
                range: YRange::Auto,
                lines: Lines::Network(&[Series {
                    metric: "success_rate",
                    label: "success rate",
                    color: 2,
                    line: Line::Solid,
                }]),
                right: None,
            },
            PanelDef {
                y: Axis::Text("latency (ms)"),
                range: YRange::Auto,
                lines: Lines::Network(&[
                    Series {
                        metric: "latency_p50_ms",
                        label: "latency p50",
                        color: 0,
                        line: Line::Solid,
                    },
                    Series {
                        metric: "latency_p95_ms",
                        label: "latency p95",
                        color: 1,
                        line: Line::Dashed,
                    },
                ]),
                right: Some(Series {
                    metric: "organic_rps",
                    label: "load",
                    color: 6,
                    line: Line::Solid,
                }),
            },
        ]),
        missing: "no per-epoch success rate or latency rows.",
    },
    ChartDef {
        stem: "lorenz",
        title: "Lorenz curve of miner emission",
        caption: "Distribution of whole-run emission over miners (mean over seeds per miner); the further below the diagonal, the more concentrated.",
        kind: Kind::Lorenz {
            amounts: "emission_rao",
            gini: "gini",
        },
        missing: "no whole-run `emission_rao` rows of miners.",
    },
];

/// `all`-entity KPIs drawn against the swept parameter(s): a `sweep_<metric>` line over one
/// parameter, a `heatmap_<metric>` over two.
pub const SWEEP_METRICS: &[&str] = &[
    "honest_share",
    "gini",
    "split_orchestration",
    "emission_error_rao",
    "ledger_accuracy",
    "detection_lag_blocks",
    "ledger_coverage",
    "success_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "organic_quality",
    "fabrication_strikes",
];

/// Per-strategy KPIs drawn against one swept parameter (`sweep_<metric>`, a line per strategy).
const SWEEP_STRATEGY_METRICS: &[&str] = &["roi_vs_honest", "emission_share"];

/// Per-strategy KPIs drawn over two swept parameters (`heatmap_<metric>_<strategy>`, one per
/// strategy other than honest).
const HEATMAP_STRATEGY_METRICS: &[&str] = &["roi_vs_honest"];

/// The per-epoch metrics the charts read from `timeseries.parquet` (everything the
/// [`POINT_CHARTS`] over epochs name).
pub fn time_series_metrics() -> Vec<&'static str> {
    let mut out = Vec::new();
    for def in POINT_CHARTS {
        let Kind::Epochs(panels) = &def.kind else {
            continue;
        };
        for panel in *panels {
            match &panel.lines {
                Lines::PerStrategy(m) => out.push(*m),
                Lines::Network(series) => out.extend(series.iter().map(|s| s.metric)),
            }
            out.extend(panel.right.iter().map(|s| s.metric));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The planner.

/// Plans the charts of a run directory from its summary rows, per-epoch rows, points and events.
pub(crate) fn plan(
    rows: &[SummaryRow],
    ts: &[TsRow],
    points: &[PointInfo],
    events: &[EventRow],
    opts: &ReportOptions,
) -> Plan {
    let mut plan = Plan::default();
    let strategies = strategy_order(rows, ts);
    let mut point_ids: Vec<u32> = points.iter().map(|p| p.point).collect();
    for r in rows {
        if !point_ids.contains(&r.point) {
            point_ids.push(r.point);
        }
    }
    point_ids.sort_unstable();
    let multi = point_ids.len() > 1;
    // Evenly spaced subset of points for the per-point charts.
    let chosen: Vec<u32> = if point_ids.len() <= opts.max_point_charts.max(1) {
        point_ids.clone()
    } else {
        let k = opts.max_point_charts.max(2);
        let mut v: Vec<u32> = (0..k)
            .map(|i| point_ids[i * (point_ids.len() - 1) / (k - 1)])
            .collect();
        v.dedup();
        plan.notes.push(format!(
            "Time-series charts are drawn for points {:?} of {}; the sweep charts cover all points.",
            v,
            point_ids.len()
        ));
        v
    };
    for &p in &chosen {
        let (sfx, tsfx) = if multi {
            let info = points
                .iter()
                .find(|x| x.point == p)
                .map(point_label)
                .unwrap_or_default();
            (format!("_p{p}"), format!(" — point {p} ({info})"))
        } else {
            (String::new(), String::new())
        };
        let markers: Vec<Marker> = {
            let mut by_epoch: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for ev in events.iter().filter(|ev| ev.point == p) {
                let v = by_epoch.entry(ev.epoch).or_default();
                if !v.contains(&ev.kind) {
                    v.push(ev.kind.clone());
                }
            }
            by_epoch
                .into_iter()
                .map(|(x, k)| Marker {
                    x: x as f64,
                    label: k.join(", "),
                })
                .collect()
        };
        let data = PointData {
            rows,
            ts,
            point: p,
            strategies: &strategies,
            markers: &markers,
        };
        for def in POINT_CHARTS {
            match data.spec(&def.kind) {
                Some(spec) => plan.charts.push(Chart {
                    stem: format!("{}{sfx}", def.stem),
                    title: format!("{}{tsfx}", def.title),
                    caption: def.caption.to_string(),
                    spec,
                }),
                None => plan
                    .notes
                    .push(format!("{}{sfx}: skipped, {}", def.stem, def.missing)),
            }
        }
    }
    if multi {
        plan_sweeps(&mut plan, rows, points, &point_ids, &strategies);
    }
    plan
}

/// The data of one parameter point, from which a [`ChartDef`] becomes a [`ChartSpec`].
struct PointData<'a> {
    rows: &'a [SummaryRow],
    ts: &'a [TsRow],
    point: u32,
    /// Strategies in display order; the index is the colour.
    strategies: &'a [String],
    markers: &'a [Marker],
}

impl PointData<'_> {
    fn colour_of(&self, strategy: &str) -> usize {
        self.strategies
            .iter()
            .position(|x| x == strategy)
            .unwrap_or(0)
    }

    /// The chart of `kind` at this point, or `None` when its data is absent.
    fn spec(&self, kind: &Kind) -> Option<ChartSpec> {
        match kind {
            Kind::Epochs(defs) => {
                let panels: Vec<Panel> = defs.iter().filter_map(|d| self.panel(d)).collect();
                (!panels.is_empty()).then(|| ChartSpec::Panels {
                    x_desc: EPOCH_AXIS.to_string(),
                    panels,
                    markers: self.markers.to_vec(),
                })
            }
            Kind::StrategyBars(metric) => {
                let bars: Vec<Bar> = self
                    .strategies
                    .iter()
                    .filter_map(|s| {
                        self.rows
                            .iter()
                            .find(|r| {
                                r.point == self.point
                                    && r.entity == format!("strategy:{s}")
                                    && r.metric == *metric
                            })
                            .map(|r| Bar {
                                label: s.clone(),
                                color: self.colour_of(s),
                                mean: r.mean,
                                lo: r.ci95_low,
                                hi: r.ci95_high,
                            })
                    })
                    .collect();
                if bars.is_empty() {
                    return None;
                }
                let reference = bars
                    .iter()
                    .find(|b| b.label == "honest")
                    .map(|b| ("honest".to_string(), b.mean));
                Some(ChartSpec::Bars {
                    y_desc: metric_desc(metric),
                    bars,
                    reference,
                })
            }
            Kind::Lorenz { amounts, gini } => {
                let values: Vec<f64> = self
                    .rows
                    .iter()
                    .filter(|r| {
                        r.point == self.point
                            && r.entity.starts_with("miner:")
                            && r.metric == *amounts
                    })
                    .map(|r| r.mean)
                    .collect();
                if values.is_empty() {
                    return None;
                }
                let reported = self
                    .rows
                    .iter()
                    .find(|r| r.point == self.point && r.entity == "all" && r.metric == *gini)
                    .map(|r| r.mean);
                Some(ChartSpec::Lorenz {
                    amounts: values,
                    reported_gini: reported,
                })
            }
        }
    }

    /// The panel `def` at this point, or `None` when none of its measured lines has data.
    fn panel(&self, def: &PanelDef) -> Option<Panel> {
        let (bands, measured) = match &def.lines {
            Lines::PerStrategy(metric) => {
                let bands: Vec<Band> = self
                    .strategies
                    .iter()
                    .filter_map(|s| {
                        ts_band(
                            self.ts,
                            self.point,
                            &format!("strategy:{s}"),
                            metric,
                            s,
                            self.colour_of(s),
                        )
                    })
                    .collect();
                let measured = !bands.is_empty();
                (bands, measured)
            }
            Lines::Network(series) => {
                let drawn: Vec<(Band, Line)> = series
                    .iter()
                    .filter_map(|s| self.network(s).map(|b| (b, s.line)))
                    .collect();
                let measured = drawn.iter().any(|(_, line)| *line != Line::Reference);
                (drawn.into_iter().map(|(b, _)| b).collect(), measured)
            }
        };
        if !measured {
            return None;
        }
        let y_range = match def.range {
            YRange::Auto => None,
            YRange::FromZero => Some(share_range(&bands)),
            YRange::AtLeast(span) => Some(min_span_range(&bands, span)),
        };
        let y_desc = match def.y {
            Axis::Metric(m) => metric_desc(m),
            Axis::Text(t) => t.to_string(),
        };
        let secondary = def
            .right
            .as_ref()
            .and_then(|s| self.network(s).map(|b| (metric_desc(s.metric), b)));
        Some(Panel {
            y_desc,
            y_range,
            bands,
            secondary,
        })
    }

    /// A network series over epochs, styled as declared.
    fn network(&self, s: &Series) -> Option<Band> {
        let band = ts_band(self.ts, self.point, "all", s.metric, s.label, s.color)?;
        Some(match s.line {
            Line::Solid => band,
            Line::Dashed => Band {
                dashed: true,
                ..band
            },
            Line::Reference => Band {
                dashed: true,
                lo: band.mean.clone(),
                hi: band.mean.clone(),
                ..band
            },
        })
    }
}

/// A y range covering the bands, at least `span` wide (so that noise is not magnified).
fn min_span_range(bands: &[Band], span: f64) -> (f64, f64) {
    let vals = bands
        .iter()
        .flat_map(|b| b.mean.iter().chain(&b.lo).chain(&b.hi).copied());
    let (lo, hi) = pad(finite_range(vals).unwrap_or((0.0, 1.0)), 0.06);
    if hi - lo >= span {
        (lo, hi)
    } else {
        let mid = 0.5 * (lo + hi);
        (mid - span / 2.0, mid + span / 2.0)
    }
}

/// 0 to a little above the largest value: shares are read against zero.
fn share_range(bands: &[Band]) -> (f64, f64) {
    let vals = bands
        .iter()
        .flat_map(|b| b.mean.iter().chain(&b.hi).copied());
    let (lo, hi) = finite_range(vals).unwrap_or((0.0, 1.0));
    (lo.min(0.0), (hi * 1.08).max(0.05))
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn strategy_name(entity: &str, strategy: &str) -> String {
    if strategy.is_empty() {
        entity.trim_start_matches("strategy:").to_string()
    } else {
        strategy.to_string()
    }
}

/// Strategies in display order (`honest` first, then by name); the index is the colour.
fn strategy_order(rows: &[SummaryRow], ts: &[TsRow]) -> Vec<String> {
    let mut set: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.entity.starts_with("strategy:"))
        .map(|r| strategy_name(&r.entity, &r.strategy))
        .collect();
    set.extend(
        ts.iter()
            .filter(|r| r.entity.starts_with("strategy:"))
            .map(|r| strategy_name(&r.entity, &r.strategy)),
    );
    let mut v: Vec<String> = set.into_iter().collect();
    if let Some(i) = v.iter().position(|s| s == "honest") {
        let h = v.remove(i);
        v.insert(0, h);
    }
    v
}

fn ts_band(
    ts: &[TsRow],
    point: u32,
    entity: &str,
    metric: &str,
    label: &str,
    color: usize,
) -> Option<Band> {
    let mut rows: Vec<&TsRow> = ts
        .iter()
        .filter(|r| r.point == point && r.entity == entity && r.metric == metric)
        .collect();
    if rows.is_empty() {
        return None;
    }
    rows.sort_by_key(|r| r.epoch);
    Some(Band {
        label: label.to_string(),
        color,
        dashed: false,
        dots: false,
        x: rows.iter().map(|r| r.epoch as f64).collect(),
        mean: rows.iter().map(|r| r.mean).collect(),
        lo: rows.iter().map(|r| r.lo).collect(),
        hi: rows.iter().map(|r| r.hi).collect(),
    })
}

/// Last segment of a dotted parameter key (`mechanism.orchestration_share` → `orchestration_share`).
fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn point_label(p: &PointInfo) -> String {
    p.params
        .iter()
        .map(|(k, v)| format!("{}={}", short(k), json_short(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_short(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.as_f64().map(fmt_tick).unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
}

fn plan_sweeps(
    plan: &mut Plan,
    rows: &[SummaryRow],
    points: &[PointInfo],
    point_ids: &[u32],
    strategies: &[String],
) {
    // Parameters that vary across points.
    let keys: BTreeSet<&String> = points.iter().flat_map(|p| p.params.keys()).collect();
    let varying: Vec<&String> = keys
        .into_iter()
        .filter(|k| {
            let vals: BTreeSet<String> = points
                .iter()
                .map(|p| p.params.get(*k).map(json_short).unwrap_or_default())
                .collect();
            vals.len() > 1
        })
        .collect();
    let value_of = |p: u32, k: &str| -> Option<f64> {
        points
            .iter()
            .find(|x| x.point == p)
            .and_then(|x| x.params.get(k))
            .and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            })
    };
    let find = |p: u32, entity: &str, metric: &str| {
        rows.iter()
            .find(|r| r.point == p && r.entity == entity && r.metric == metric)
    };
    match varying.len() {
        0 => plan.notes.push("Sweep charts: skipped, no parameter varies across points (points.json).".into()),
        1 => {
            let key = varying[0].as_str();
            let numeric = point_ids.iter().all(|p| value_of(*p, key).is_some());
            let (x_desc, xval): (String, Box<dyn Fn(u32) -> f64>) = if numeric {
                (key.to_string(), Box::new(|p| value_of(p, key).unwrap_or(f64::NAN)))
            } else {
                plan.notes.push(format!("Sweep charts: `{key}` is not numeric; points are drawn by index."));
                (format!("parameter point (index; {key})"), Box::new(f64::from))
            };
            let band = |entity: &str, metric: &str, label: &str, color: usize| -> Option<Band> {
                let mut v: Vec<(f64, &SummaryRow)> =
                    point_ids.iter().filter_map(|p| find(*p, entity, metric).map(|r| (xval(*p), r))).collect();
                if v.is_empty() {
                    return None;
                }
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                Some(Band {
                    label: label.to_string(),
                    color,
                    dashed: false,
                    dots: true,
                    x: v.iter().map(|(x, _)| *x).collect(),
                    mean: v.iter().map(|(_, r)| r.mean).collect(),
                    lo: v.iter().map(|(_, r)| r.ci95_low).collect(),
                    hi: v.iter().map(|(_, r)| r.ci95_high).collect(),
                })
            };
            for m in SWEEP_METRICS {
                if let Some(b) = band("all", m, "mean, 95 % CI", 0) {
                    plan.charts.push(Chart {
                        stem: format!("sweep_{m}"),
                        title: format!("{} vs {key}", capitalise(&metric_desc(m))),
                        caption: format!("Whole-run `{m}` at each value of `{key}`: mean over seeds with 95 % CI band."),
                        spec: ChartSpec::Panels {
                            x_desc: x_desc.clone(),
                            panels: vec![Panel { y_desc: metric_desc(m), y_range: None, bands: vec![b], secondary: None }],
                            markers: Vec::new(),
                        },
                    });
                }
            }
            for m in SWEEP_STRATEGY_METRICS {
                let bands: Vec<Band> = strategies
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| band(&format!("strategy:{s}"), m, s, i))
                    .collect();
                if !bands.is_empty() {
                    plan.charts.push(Chart {
                        stem: format!("sweep_{m}"),
                        title: format!("{} per strategy vs {key}", capitalise(&metric_desc(m))),
                        caption: format!("Whole-run `{m}` per strategy at each value of `{key}`: mean over seeds with 95 % CI bands."),
                        spec: ChartSpec::Panels {
                            x_desc: x_desc.clone(),
                            panels: vec![Panel { y_desc: metric_desc(m), y_range: None, bands, secondary: None }],
                            markers: Vec::new(),
                        },
                    });
                }
            }
        }
        2 => {
            let (kx, ky) = (varying[0].as_str(), varying[1].as_str());
            let numeric = point_ids.iter().all(|p| value_of(*p, kx).is_some() && value_of(*p, ky).is_some());
            if !numeric {
                plan.notes.push(format!("Heatmaps: skipped, `{kx}`/`{ky}` are not numeric."));
                return;
            }
            let uniq = |k: &str| {
                let mut v: Vec<f64> = point_ids.iter().filter_map(|p| value_of(*p, k)).collect();
                v.sort_by(f64::total_cmp);
                v.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
                v
            };
            let (xs, ys) = (uniq(kx), uniq(ky));
            let grid = |entity: &str, metric: &str| -> Option<Vec<Vec<Option<f64>>>> {
                let mut g = vec![vec![None; xs.len()]; ys.len()];
                let mut any = false;
                for &p in point_ids {
                    let (Some(x), Some(y)) = (value_of(p, kx), value_of(p, ky)) else { continue };
                    let i = xs.iter().position(|v| (v - x).abs() < 1e-12);
                    let j = ys.iter().position(|v| (v - y).abs() < 1e-12);
                    if let (Some(i), Some(j), Some(r)) = (i, j, find(p, entity, metric)) {
                        g[j][i] = Some(r.mean);
                        any = true;
                    }
                }
                any.then_some(g)
            };
            let mut targets: Vec<(String, String, String)> =
                SWEEP_METRICS.iter().map(|m| ("all".to_string(), m.to_string(), m.to_string())).collect();
            for m in HEATMAP_STRATEGY_METRICS {
                for s in strategies.iter().filter(|s| *s != "honest") {
                    targets.push((format!("strategy:{s}"), m.to_string(), format!("{m}_{s}")));
                }
            }
            for (entity, m, stem) in targets {
                if let Some(values) = grid(&entity, &m) {
                    let who = entity.strip_prefix("strategy:").map(|s| format!(" of {s}")).unwrap_or_default();
                    plan.charts.push(Chart {
                        stem: format!("heatmap_{stem}"),
                        title: format!("{}{who}: {} × {}", capitalise(&metric_desc(&m)), short(kx), short(ky)),
                        caption: format!("Mean over seeds of whole-run `{m}`{who} at each ({kx}, {ky}) point; 95 % CIs are in the summary table."),
                        spec: ChartSpec::Heatmap {
                            x_desc: kx.to_string(),
                            y_desc: ky.to_string(),
                            value_desc: metric_desc(&m),
                            xs: xs.clone(),
                            ys: ys.clone(),
                            values,
                        },
                    });
                }
            }
        }
        n => plan.notes.push(format!("Sweep charts: skipped, {n} parameters vary (charts cover one or two); see the summary table.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts_row(entity: &str, metric: &str, epoch: i64, mean: f64) -> TsRow {
        TsRow {
            point: 0,
            entity: entity.into(),
            strategy: String::new(),
            metric: metric.into(),
            epoch,
            mean,
            lo: mean - 0.01,
            hi: mean + 0.01,
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let stems: BTreeSet<&str> = POINT_CHARTS.iter().map(|d| d.stem).collect();
        assert_eq!(stems.len(), POINT_CHARTS.len());
        let ts = time_series_metrics();
        assert_eq!(ts.iter().collect::<BTreeSet<_>>().len(), ts.len());
        let named = ts
            .iter()
            .chain(SWEEP_METRICS)
            .chain(SWEEP_STRATEGY_METRICS)
            .chain(HEATMAP_STRATEGY_METRICS);
        for m in named {
            assert_ne!(metric_desc(m), *m, "{m} has no axis description");
        }
    }

    #[test]
    fn panels_follow_the_table() {
        // Only the target of the split and the load of the latency panel: neither draws alone.
        let ts: Vec<TsRow> = (0..3)
            .flat_map(|e| {
                [
                    ts_row("all", "split_target", e, 0.6),
                    ts_row("all", "organic_rps", e, 2.0),
                    ts_row("all", "success_rate", e, 0.9),
                    ts_row("all", "latency_p95_ms", e, 900.0),
                ]
            })
            .collect();
        let points = [PointInfo {
            point: 0,
            params: BTreeMap::new(),
        }];
        let plan = plan(&[], &ts, &points, &[], &ReportOptions::default());
        let stems: Vec<&str> = plan.charts.iter().map(|c| c.stem.as_str()).collect();
        assert_eq!(stems, ["orchestration"]);
        assert!(plan.notes.iter().any(|n| n.starts_with("split: skipped")));
        let ChartSpec::Panels { panels, x_desc, .. } = &plan.charts[0].spec else {
            panic!("orchestration is drawn as panels");
        };
        assert_eq!(x_desc, EPOCH_AXIS);
        assert_eq!(panels.len(), 2);
        assert_eq!(panels[0].y_desc, metric_desc("success_rate"));
        // p95 is dashed with its band; the load rides on the right axis.
        let p95 = &panels[1].bands[0];
        assert!(p95.dashed && p95.lo[0] < p95.mean[0]);
        let (desc, load) = panels[1]
            .secondary
            .as_ref()
            .expect("load on the right axis");
        assert_eq!(
            (desc.as_str(), load.mean[0]),
            ("organic load (requests/s)", 2.0)
        );
    }
}
