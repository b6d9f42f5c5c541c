//! Charts (plotters, PNG and SVG) and the plan of which charts a run directory gets.
//!
//! Every chart is written as `charts/<stem>.png` (drawn with the embedded DejaVu Sans, no system
//! font needed) and `charts/<stem>.svg` (text with `font-family="sans-serif"`, so any viewer's
//! generic sans-serif font works). Colours follow the colour-blind-safe Okabe–Ito palette and a
//! strategy keeps its colour across charts (`honest` first). Per parameter point (suffix `_p<k>`
//! when there is more than one point):
//!
//! | stem | shows |
//! |---|---|
//! | `emission_share` | emission share per strategy over epochs, mean with 95 % CI band, events marked |
//! | `roi_vs_honest` | whole-run ROI per strategy relative to honest: bars (mean) with 95 % CI whiskers |
//! | `split` | realised orchestration share of miner emission over epochs (CI band) vs the target |
//! | `ledger` | Ledger accuracy and coverage (top), change-detection lag in blocks (bottom), events marked |
//! | `orchestration` | success rate (top), latency p50/p95 in ms with organic load (req/s) overlaid (bottom) |
//! | `lorenz` | Lorenz curve of mean whole-run emission per miner, with its Gini |
//!
//! For sweeps over one parameter: `sweep_<metric>` — each KPI (mean, 95 % CI band) against the
//! swept parameter (per strategy for `roi_vs_honest` and `emission_share`). Over two parameters:
//! `heatmap_<metric>` — the KPI's mean over the parameter grid.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::inputs::{EventRow, PointInfo};
use crate::tables::{SummaryRow, TsRow};
use crate::{ReportError, ReportOptions};

/// Per-epoch metrics the time-series charts read from `timeseries.parquet`.
pub const TIME_SERIES_METRICS: &[&str] = &[
    "emission_share",
    "split_orchestration",
    "split_target",
    "ledger_accuracy",
    "detection_lag_blocks",
    "ledger_coverage",
    "success_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "organic_rps",
];

/// `all`-entity KPIs drawn against the swept parameter(s).
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

/// Okabe–Ito colour-blind-safe palette, most distinguishable first (yellow last: weak on white).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
    RGBColor(240, 228, 66),  // yellow
];

const FONT: &str = "sans-serif";
const GREY: RGBColor = RGBColor(110, 110, 110);
const LEGEND_W: u32 = 210;

/// One series with a confidence band: `x`, mean and 95 % CI bounds (same lengths).
#[derive(Debug, Clone, Default)]
pub struct Band {
    /// Legend label.
    pub label: String,
    /// Index into [`PALETTE`] (wraps around).
    pub color: usize,
    /// Draw the line dashed (e.g. a target, or a second statistic of the same colour).
    pub dashed: bool,
    /// Mark each data point with a dot (sweeps, where x values are discrete).
    pub dots: bool,
    /// x values (epoch, or the swept parameter), increasing.
    pub x: Vec<f64>,
    /// Mean per x.
    pub mean: Vec<f64>,
    /// Lower CI bound per x (no band is drawn when it equals the mean everywhere).
    pub lo: Vec<f64>,
    /// Upper CI bound per x.
    pub hi: Vec<f64>,
}

/// One vertically stacked panel of a [`ChartSpec::Panels`] chart.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    /// y-axis description with unit.
    pub y_desc: String,
    /// Fixed y range (e.g. 0..1 for fractions); automatic when `None`.
    pub y_range: Option<(f64, f64)>,
    /// Series on the primary y axis.
    pub bands: Vec<Band>,
    /// A series on a secondary (right) y axis: its axis description and data.
    pub secondary: Option<(String, Band)>,
}

/// A bar with a confidence whisker.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Category label (strategy).
    pub label: String,
    /// Index into [`PALETTE`].
    pub color: usize,
    /// Mean.
    pub mean: f64,
    /// Lower 95 % CI bound.
    pub lo: f64,
    /// Upper 95 % CI bound.
    pub hi: f64,
}

/// A vertical marker (scenario event) on a time axis.
#[derive(Debug, Clone)]
pub struct Marker {
    /// x position (epoch).
    pub x: f64,
    /// Text, e.g. `outage_start`.
    pub label: String,
}

/// What a chart draws.
#[derive(Debug, Clone)]
pub enum ChartSpec {
    /// Stacked panels sharing an x axis: lines with CI bands, optional secondary axis, markers.
    Panels {
        /// x-axis description with unit.
        x_desc: String,
        /// Panels, top to bottom.
        panels: Vec<Panel>,
        /// Event markers (drawn on every panel, labelled on the top one).
        markers: Vec<Marker>,
    },
    /// Bars with CI whiskers, one per category.
    Bars {
        /// y-axis description with unit.
        y_desc: String,
        /// The bars.
        bars: Vec<Bar>,
        /// A horizontal reference line (label, y), e.g. honest's value.
        reference: Option<(String, f64)>,
    },
    /// Lorenz curve of amounts (e.g. emission per miner).
    Lorenz {
        /// Amounts, one per miner.
        amounts: Vec<f64>,
        /// The mean per-run Gini reported by the simulator, if any.
        reported_gini: Option<f64>,
    },
    /// Heatmap of a value over a two-parameter grid.
    Heatmap {
        /// x-axis (first parameter) description.
        x_desc: String,
        /// y-axis (second parameter) description.
        y_desc: String,
        /// What the colour shows, with unit.
        value_desc: String,
        /// Values of the first parameter (columns).
        xs: Vec<f64>,
        /// Values of the second parameter (rows).
        ys: Vec<f64>,
        /// `values[j][i]` at `(xs[i], ys[j])`; `None` where the grid has no point.
        values: Vec<Vec<Option<f64>>>,
    },
    /// Points in the plane (e.g. tuner candidates by two objectives), series drawn in order.
    Scatter {
        /// x-axis description.
        x_desc: String,
        /// y-axis description.
        y_desc: String,
        /// The series; later ones are drawn on top.
        series: Vec<ScatterSeries>,
    },
}

/// A set of points of a [`ChartSpec::Scatter`] chart.
#[derive(Debug, Clone, Default)]
pub struct ScatterSeries {
    /// Legend label.
    pub label: String,
    /// Index into [`PALETTE`].
    pub color: usize,
    /// Dot radius in pixels.
    pub radius: u32,
    /// Join the points with a line (in the given order), e.g. a Pareto front.
    pub line: bool,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// A chart to render.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File stem under `charts/`.
    pub stem: String,
    /// Title drawn on top.
    pub title: String,
    /// One-line caption for `index.html`.
    pub caption: String,
    /// What to draw.
    pub spec: ChartSpec,
}

impl Chart {
    /// Pixel size of the chart (PNG and SVG).
    pub fn size(&self) -> (u32, u32) {
        match &self.spec {
            ChartSpec::Panels { panels, .. } if panels.len() > 1 => {
                (1100, 420 + 300 * panels.len() as u32 - 300)
            }
            ChartSpec::Panels { .. } => (1100, 520),
            // Wider with many bars so category and value labels stay apart.
            ChartSpec::Bars { bars, .. } => ((130 * bars.len() as u32).max(1000), 520),
            ChartSpec::Lorenz { .. } => (760, 680),
            ChartSpec::Heatmap { .. } => (1100, 680),
            ChartSpec::Scatter { .. } => (1000, 620),
        }
    }
}

/// A rendered chart: the PNG bytes (for inlining in `index.html`) and the files written.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// File stem.
    pub stem: String,
    /// PNG file content.
    pub png: Vec<u8>,
    /// Path of the PNG.
    pub png_path: PathBuf,
    /// Path of the SVG.
    pub svg_path: PathBuf,
}

/// Registers the embedded DejaVu Sans (regular and bold) as `sans-serif`; idempotent.
pub fn register_fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        )
        .map_err(|_| "embedded DejaVuSans.ttf is not a valid font".to_string())?;
        plotters::style::register_font(
            FONT,
            FontStyle::Bold,
            include_bytes!("../assets/DejaVuSans-Bold.ttf"),
        )
        .map_err(|_| "embedded DejaVuSans-Bold.ttf is not a valid font".to_string())
    })
    .clone()
}

/// Renders `chart` to `<dir>/<stem>.png` and `<dir>/<stem>.svg`.
pub fn render_chart(chart: &Chart, dir: &Path) -> Result<Rendered, ReportError> {
    let png_path = dir.join(format!("{}.png", chart.stem));
    let svg_path = dir.join(format!("{}.svg", chart.stem));
    register_fonts().map_err(err(&png_path))?;
    let size = chart.size();
    {
        let root = BitMapBackend::new(&png_path, size).into_drawing_area();
        draw(&root, chart).map_err(err(&png_path))?;
        root.present()
            .map_err(|e| e.to_string())
            .map_err(err(&png_path))?;
    }
    {
        let root = SVGBackend::new(&svg_path, size).into_drawing_area();
        draw(&root, chart).map_err(err(&svg_path))?;
        root.present()
            .map_err(|e| e.to_string())
            .map_err(err(&svg_path))?;
    }
    let png = std::fs::read(&png_path).map_err(|source| ReportError::Io {
        path: png_path.clone(),
        source,
    })?;
    Ok(Rendered {
        stem: chart.stem.clone(),
        png,
        png_path,
        svg_path,
    })
}

fn err(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Chart {
        path: path.to_path_buf(),
        message,
    }
}

fn e<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Tick label: short decimals, scientific for large/small magnitudes.
pub fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// A number for tables: 4 significant digits, scientific for large/small magnitudes.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        format!("{v}")
    } else if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    }
}

fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo <= hi).then_some((lo, hi))
}

fn pad((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    if hi - lo < 1e-12 {
        let d = if lo.abs() > 1e-12 {
            lo.abs() * 0.1
        } else {
            0.5
        };
        (lo - d, hi + d)
    } else {
        let d = (hi - lo) * frac;
        (lo - d, hi + d)
    }
}

/// Bold title, shrunk (down to 14 px) so that long titles fit the chart width.
fn title_style(title: &str, width: u32) -> TextStyle<'static> {
    let chars = title.chars().count().max(1) as f64;
    // DejaVu Sans averages ~0.6 em per character.
    let size = (f64::from(width) * 0.95 / (0.6 * chars)).clamp(14.0, 22.0);
    (FONT, size)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Result<(), String> {
    root.fill(&WHITE).map_err(e)?;
    let body = root
        .titled(
            &chart.title,
            title_style(&chart.title, root.dim_in_pixel().0),
        )
        .map_err(e)?;
    match &chart.spec {
        ChartSpec::Panels {
            x_desc,
            panels,
            markers,
        } => draw_panels(&body, x_desc, panels, markers),
        ChartSpec::Bars {
            y_desc,
            bars,
            reference,
        } => draw_bars(&body, y_desc, bars, reference.as_ref()),
        ChartSpec::Lorenz {
            amounts,
            reported_gini,
        } => draw_lorenz(&body, amounts, *reported_gini),
        ChartSpec::Heatmap {
            x_desc,
            y_desc,
            value_desc,
            xs,
            ys,
            values,
        } => draw_heatmap(&body, x_desc, y_desc, value_desc, xs, ys, values),
        ChartSpec::Scatter {
            x_desc,
            y_desc,
            series,
        } => draw_scatter(&body, x_desc, y_desc, series),
    }
}

fn draw_scatter<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    x_desc: &str,
    y_desc: &str,
    series: &[ScatterSeries],
) -> Result<(), String> {
    let (w, _) = body.dim_in_pixel();
    let (plot, legend) = body.split_horizontally(w.saturating_sub(LEGEND_W));
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (x0, x1) = pad(finite_range(xs).unwrap_or((0.0, 1.0)), 0.06);
    let (y0, y1) = pad(finite_range(ys).unwrap_or((0.0, 1.0)), 0.06);
    let mut chart = ChartBuilder::on(&plot)
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(85)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    draw_mesh(&mut chart, x_desc, y_desc)?;
    let mut entries = Vec::new();
    for s in series {
        let c = color(s.color);
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if s.line && pts.len() > 1 {
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?;
        }
        chart
            .draw_series(
                pts.into_iter()
                    .map(|p| Circle::new(p, s.radius.max(2), c.filled())),
            )
            .map_err(e)?;
        entries.push((s.label.clone(), c, false));
    }
    draw_legend(&legend, &entries)
}

/// Legend entries drawn in their own strip, so they never cover data.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
) -> Result<(), String> {
    let font = (FONT, 15).into_font().color(&BLACK);
    for (i, (label, c, dashed)) in entries.iter().enumerate() {
        let y = 30 + 24 * i as i32;
        if *dashed {
            for k in 0..3 {
                area.draw(&PathElement::new(
                    vec![(8 + 11 * k, y), (15 + 11 * k, y)],
                    c.stroke_width(3),
                ))
                .map_err(e)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(8, y), (38, y)], c.stroke_width(3)))
                .map_err(e)?;
        }
        let text: String = if label.chars().count() > 24 {
            label.chars().take(23).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        area.draw(&Text::new(text, (46, y - 9), font.clone()))
            .map_err(e)?;
    }
    Ok(())
}

fn band_range(panel: &Panel) -> (f64, f64) {
    if let Some(r) = panel.y_range {
        return r;
    }
    let vals = panel
        .bands
        .iter()
        .flat_map(|b| b.mean.iter().chain(&b.lo).chain(&b.hi).copied());
    pad(finite_range(vals).unwrap_or((0.0, 1.0)), 0.06)
}

type F64Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_mesh<DB: DrawingBackend>(
    chart: &mut F64Chart<'_, DB>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), String> {
    let fmt = |v: &f64| fmt_tick(*v);
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(e)
}

/// Event markers, CI bands and mean lines of a panel's primary series.
fn draw_primary<DB: DrawingBackend>(
    chart: &mut F64Chart<'_, DB>,
    panel: &Panel,
    markers: &[Marker],
    label_markers: bool,
    (y0, y1): (f64, f64),
    entries: &mut Vec<(String, RGBColor, bool)>,
) -> Result<(), String> {
    for (i, m) in markers.iter().enumerate() {
        let style = GREY.stroke_width(1);
        let steps = 24;
        for s in (0..steps).step_by(2) {
            let a = y0 + (y1 - y0) * s as f64 / steps as f64;
            let b = y0 + (y1 - y0) * (s + 1) as f64 / steps as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(m.x, a), (m.x, b)],
                    style,
                )))
                .map_err(e)?;
        }
        if label_markers {
            let dy = -14 - 13 * (i % 2) as i32;
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((m.x, y1))
                        + Text::new(
                            m.label.clone(),
                            (-10, dy),
                            (FONT, 12).into_font().color(&GREY),
                        ),
                ))
                .map_err(e)?;
        }
    }
    for b in &panel.bands {
        let c = color(b.color);
        let has_band =
            b.lo.iter()
                .zip(&b.mean)
                .chain(b.hi.iter().zip(&b.mean))
                .any(|(a, m)| (a - m).abs() > 1e-15);
        if has_band {
            let pts: Vec<(f64, f64)> =
                b.x.iter()
                    .zip(&b.hi)
                    .map(|(x, y)| (*x, *y))
                    .chain(b.x.iter().zip(&b.lo).rev().map(|(x, y)| (*x, *y)))
                    .filter(|(_, y)| y.is_finite())
                    .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(pts, c.mix(0.18).filled())))
                .map_err(e)?;
        }
        let pts: Vec<(f64, f64)> =
            b.x.iter()
                .zip(&b.mean)
                .filter(|(_, y)| y.is_finite())
                .map(|(x, y)| (*x, *y))
                .collect();
        if b.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, c.stroke_width(2)))
                .map_err(e)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(e)?;
        }
        if b.dots {
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled())))
                .map_err(e)?;
        }
        entries.push((b.label.clone(), c, b.dashed));
    }
    Ok(())
}

fn draw_panels<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    x_desc: &str,
    panels: &[Panel],
    markers: &[Marker],
) -> Result<(), String> {
    let xs = panels.iter().flat_map(|p| {
        p.bands
            .iter()
            .chain(p.secondary.iter().map(|(_, b)| b))
            .flat_map(|b| b.x.iter().copied())
    });
    let (x0, x1) = finite_range(xs.chain(markers.iter().map(|m| m.x))).unwrap_or((0.0, 1.0));
    let (x0, x1) = if x1 - x0 < 1e-12 {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0, x1)
    };
    let rows = body.split_evenly((panels.len().max(1), 1));
    // Same plot width in every panel, so the x axes line up.
    let any_secondary = panels.iter().any(|p| p.secondary.is_some());
    for (k, (panel, area)) in panels.iter().zip(rows.iter()).enumerate() {
        let (plot, legend) =
            area.split_horizontally(area.dim_in_pixel().0.saturating_sub(LEGEND_W));
        let (y0, y1) = band_range(panel);
        let chart = ChartBuilder::on(&plot)
            .margin(10)
            .margin_top(if k == 0 && !markers.is_empty() {
                28
            } else {
                10
            })
            .x_label_area_size(48)
            .y_label_area_size(78)
            .margin_right(if any_secondary && panel.secondary.is_none() {
                88
            } else {
                10
            })
            .right_y_label_area_size(if panel.secondary.is_some() { 78 } else { 0 })
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        let fmt = |v: &f64| fmt_tick(*v);
        let mut entries = Vec::new();
        if let Some((desc, b)) = &panel.secondary {
            // The secondary coordinate must exist before the mesh is drawn: it takes over the
            // right label area.
            let (s0, s1) = pad(
                finite_range(b.mean.iter().chain(&b.lo).chain(&b.hi).copied())
                    .unwrap_or((0.0, 1.0)),
                0.06,
            );
            let s0 = s0.min(0.0);
            let mut dual = chart.set_secondary_coord(x0..x1, s0..s1);
            draw_mesh(&mut dual, x_desc, &panel.y_desc)?;
            dual.configure_secondary_axes()
                .y_desc(desc.as_str())
                .y_label_formatter(&fmt)
                .label_style((FONT, 14))
                .axis_desc_style((FONT, 15))
                .draw()
                .map_err(e)?;
            let c = RGBColor(160, 160, 160);
            let pts: Vec<(f64, f64)> =
                b.x.iter()
                    .zip(&b.mean)
                    .filter(|(_, y)| y.is_finite())
                    .map(|(x, y)| (*x, *y))
                    .collect();
            dual.draw_secondary_series(LineSeries::new(pts, c.stroke_width(1)))
                .map_err(e)?;
            draw_primary(&mut dual, panel, markers, k == 0, (y0, y1), &mut entries)?;
            entries.push((format!("{} (right axis)", b.label), c, false));
        } else {
            let mut chart = chart;
            draw_mesh(&mut chart, x_desc, &panel.y_desc)?;
            draw_primary(&mut chart, panel, markers, k == 0, (y0, y1), &mut entries)?;
        }
        draw_legend(&legend, &entries)?;
    }
    Ok(())
}

fn draw_bars<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    y_desc: &str,
    bars: &[Bar],
    reference: Option<&(String, f64)>,
) -> Result<(), String> {
    let vals = bars
        .iter()
        .flat_map(|b| [b.mean, b.lo, b.hi])
        .chain(std::iter::once(0.0))
        .chain(reference.map(|r| r.1));
    let (y0, y1) = pad(finite_range(vals).unwrap_or((0.0, 1.0)), 0.1);
    let n = bars.len().max(1) as u32;
    let mut chart = ChartBuilder::on(body)
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(85)
        .build_cartesian_2d(0.0..f64::from(n), y0..y1)
        .map_err(e)?;
    let names: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    // Ticks every 0.5 (2n + 1 labels over a range of n); bar i is centred on i + 0.5.
    let xfmt = |v: &f64| {
        let i = (v - 0.5).round();
        if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let yfmt = |v: &f64| fmt_tick(*v);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("strategy")
        .y_desc(y_desc)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .x_labels(2 * bars.len() + 1)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(e)?;
    let base = 0.0_f64.clamp(y0, y1);
    for (i, b) in bars.iter().enumerate() {
        let x = i as f64;
        let c = color(b.color);
        let rect = Rectangle::new([(x + 0.12, base), (x + 0.88, b.mean)], c.mix(0.85).filled());
        chart.draw_series(std::iter::once(rect)).map_err(e)?;
        let w = BLACK.stroke_width(2);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x + 0.5, b.lo), (x + 0.5, b.hi)],
                w,
            )))
            .map_err(e)?;
        for y in [b.lo, b.hi] {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((x + 0.5, y)) + PathElement::new(vec![(-9, 0), (9, 0)], w),
                ))
                .map_err(e)?;
        }
        let label = format!(
            "{} [{}, {}]",
            fmt_tick(b.mean),
            fmt_tick(b.lo),
            fmt_tick(b.hi)
        );
        let above = b.hi.max(b.mean);
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((x + 0.5, above))
                    + Text::new(label, (-50, -20), (FONT, 13).into_font().color(&BLACK)),
            ))
            .map_err(e)?;
    }
    if let Some((label, y)) = reference {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, *y), (f64::from(n), *y)],
                8,
                5,
                GREY.stroke_width(2),
            ))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((f64::from(n), *y))
                    + Text::new(
                        format!("{label} = {}", fmt_tick(*y)),
                        (-110, -20),
                        (FONT, 14).into_font().color(&GREY),
                    ),
            ))
            .map_err(e)?;
    }
    Ok(())
}

fn draw_lorenz<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    amounts: &[f64],
    reported: Option<f64>,
) -> Result<(), String> {
    // Undefined (no emission at all): only the diagonal, and the legend says why.
    let curve = orchestra_stats::lorenz(amounts);
    let g = orchestra_stats::gini(amounts);
    let mut chart = ChartBuilder::on(body)
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(e)?;
    let fmt = |v: &f64| fmt_tick(*v);
    chart
        .configure_mesh()
        .x_desc(format!(
            "cumulative share of miners ({} miners, poorest first)",
            amounts.len()
        ))
        .y_desc("cumulative share of emission")
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(e)?;
    let c = color(0);
    if let Some(curve) = &curve {
        let area: Vec<(f64, f64)> = curve
            .iter()
            .copied()
            .chain(std::iter::once((0.0, 0.0)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(area, c.mix(0.15).filled())))
            .map_err(e)?;
    }
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            8,
            5,
            GREY.stroke_width(2),
        ))
        .map_err(e)?
        .label("perfect equality")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], GREY.stroke_width(2)));
    let mut label = match &curve {
        Some(_) => format!("Lorenz curve (Gini {g:.3})"),
        None => "Lorenz curve undefined (no emission)".to_string(),
    };
    if let Some(r) = reported.filter(|r| r.is_finite()) {
        label.push_str(&format!("; mean per-run Gini {r:.3}"));
    }
    chart
        .draw_series(LineSeries::new(
            curve.unwrap_or_default(),
            c.stroke_width(3),
        ))
        .map_err(e)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Viridis colour map (perceptually uniform, colour-blind safe) at `t ∈ [0, 1]`.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 9] = [
        (68.0, 1.0, 84.0),
        (71.0, 44.0, 122.0),
        (59.0, 81.0, 139.0),
        (44.0, 113.0, 142.0),
        (33.0, 144.0, 141.0),
        (39.0, 173.0, 129.0),
        (92.0, 200.0, 99.0),
        (170.0, 220.0, 50.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn draw_heatmap<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    x_desc: &str,
    y_desc: &str,
    value_desc: &str,
    xs: &[f64],
    ys: &[f64],
    values: &[Vec<Option<f64>>],
) -> Result<(), String> {
    let (plot, bar) = body.split_horizontally(body.dim_in_pixel().0.saturating_sub(170));
    let (v0, v1) = finite_range(values.iter().flatten().flatten().copied()).unwrap_or((0.0, 1.0));
    let span = if v1 - v0 < 1e-15 { 1.0 } else { v1 - v0 };
    let (nx, ny) = (xs.len().max(1) as u32, ys.len().max(1) as u32);
    let mut chart = ChartBuilder::on(&plot)
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0u32..nx - 1).into_segmented(),
            (0u32..ny - 1).into_segmented(),
        )
        .map_err(e)?;
    let xfmt = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => xs
            .get(*i as usize)
            .map(|x| fmt_tick(*x))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let yfmt = |v: &SegmentValue<u32>| match v {
        SegmentValue::CenterOf(i) => ys
            .get(*i as usize)
            .map(|y| fmt_tick(*y))
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(xs.len() + 1)
        .y_labels(ys.len() + 1)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(e)?;
    for (j, row) in values.iter().enumerate() {
        for (i, v) in row.iter().enumerate() {
            let (i, j) = (i as u32, j as u32);
            let corners = [
                (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
            ];
            let Some(v) = v.filter(|v| v.is_finite()) else {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        corners,
                        RGBColor(230, 230, 230).filled(),
                    )))
                    .map_err(e)?;
                continue;
            };
            let t = (v - v0) / span;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    corners,
                    viridis(t).filled(),
                )))
                .map_err(e)?;
            let text_color = if t > 0.6 { BLACK } else { WHITE };
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((SegmentValue::CenterOf(i), SegmentValue::CenterOf(j)))
                        + Text::new(
                            fmt_tick(v),
                            (-18, -7),
                            (FONT, 14).into_font().color(&text_color),
                        ),
                ))
                .map_err(e)?;
        }
    }
    // Colour bar.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(14)
        .margin_bottom(64)
        .margin_right(8)
        .y_label_area_size(0)
        .right_y_label_area_size(95)
        .build_cartesian_2d(0.0..1.0, v0..(v0 + span))
        .map_err(e)?;
    let fmt = |v: &f64| fmt_tick(*v);
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(value_desc)
        .axis_desc_style((FONT, 14))
        .y_label_formatter(&fmt)
        .label_style((FONT, 13))
        .draw()
        .map_err(e)?;
    let steps = 64;
    cb.draw_series((0..steps).map(|k| {
        let a = v0 + span * k as f64 / steps as f64;
        let b = v0 + span * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis((k as f64 + 0.5) / steps as f64).filled(),
        )
    }))
    .map_err(e)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Planning: which charts a run directory gets, from the summary rows and the time series.

/// y-axis description (with unit) of a metric.
pub fn metric_desc(metric: &str) -> String {
    match metric {
        "emission_share" => "emission share (fraction of miner emission)",
        "honest_share" => "honest share (fraction of miner emission)",
        "gini" => "Gini of miner emission (0 = equal)",
        "split_orchestration" => "orchestration share (fraction of miner emission)",
        "split_target" => "target orchestration share (fraction)",
        "emission_error_rao" => "emission conservation error (rao)",
        "ledger_accuracy" => "Ledger accuracy (fraction)",
        "detection_lag_blocks" => "change-detection lag (blocks)",
        "ledger_coverage" => "Ledger coverage (fraction)",
        "success_rate" => "orchestration success rate (fraction)",
        "latency_p50_ms" => "latency p50 (ms)",
        "latency_p95_ms" => "latency p95 (ms)",
        "organic_quality" => "organic quality (score)",
        "organic_rps" => "organic load (requests/s)",
        "challenges" => "challenges (count)",
        "fabrication_strikes" => "fabrication strikes (count)",
        "roi_vs_honest" => "ROI relative to honest (ratio)",
        "emission_per_identity_rao" => "emission per identity (rao)",
        "cost_per_identity_rao" => "cost per identity (rao)",
        "roi_per_identity_rao" => "ROI per identity (rao)",
        "identities" => "identities (count)",
        other => other,
    }
    .to_string()
}

/// Charts planned for a run directory, and notes on charts skipped.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Charts to render.
    pub charts: Vec<Chart>,
    /// Charts skipped (missing data) and other remarks.
    pub notes: Vec<String>,
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
    let colour_of = |s: &str| strategies.iter().position(|x| x == s).unwrap_or(0);
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
        let epoch_desc = "epoch (tempo index)".to_string();
        // Emission share per strategy.
        let bands: Vec<Band> = strategies
            .iter()
            .filter_map(|s| {
                ts_band(
                    ts,
                    p,
                    &format!("strategy:{s}"),
                    "emission_share",
                    s,
                    colour_of(s),
                )
            })
            .collect();
        if bands.is_empty() {
            plan.notes.push(format!(
                "emission_share{sfx}: skipped, no per-epoch `emission_share` rows."
            ));
        } else {
            plan.charts.push(Chart {
                stem: format!("emission_share{sfx}"),
                title: format!("Emission share per strategy over epochs{tsfx}"),
                caption: "Share of miner emission earned by each strategy per epoch: mean over seeds, shaded 95 % CI; dashed verticals mark scenario events.".into(),
                spec: ChartSpec::Panels {
                    x_desc: epoch_desc.clone(),
                    panels: vec![Panel {
                        y_desc: metric_desc("emission_share"),
                        y_range: Some(share_range(&bands)),
                        bands,
                        secondary: None,
                    }],
                    markers: markers.clone(),
                },
            });
        }
        // ROI relative to honest.
        let bars: Vec<Bar> = strategies
            .iter()
            .filter_map(|s| {
                rows.iter()
                    .find(|r| {
                        r.point == p
                            && r.entity == format!("strategy:{s}")
                            && r.metric == "roi_vs_honest"
                    })
                    .map(|r| Bar {
                        label: s.clone(),
                        color: colour_of(s),
                        mean: r.mean,
                        lo: r.ci95_low,
                        hi: r.ci95_high,
                    })
            })
            .collect();
        if bars.is_empty() {
            plan.notes.push(format!(
                "roi_vs_honest{sfx}: skipped, no whole-run `roi_vs_honest` rows."
            ));
        } else {
            let reference = bars
                .iter()
                .find(|b| b.label == "honest")
                .map(|b| ("honest".to_string(), b.mean));
            plan.charts.push(Chart {
                stem: format!("roi_vs_honest{sfx}"),
                title: format!("Whole-run ROI per strategy relative to honest{tsfx}"),
                caption: "ROI (emission − sub-call cost) per identity relative to honest, over the whole run: bar = mean over seeds, whisker = 95 % CI; above the honest line means the strategy pays.".into(),
                spec: ChartSpec::Bars { y_desc: metric_desc("roi_vs_honest"), bars, reference },
            });
        }
        // Realised split vs target.
        if let Some(realised) = ts_band(ts, p, "all", "split_orchestration", "realised share", 0) {
            let mut bands = vec![realised];
            if let Some(mut t) = ts_band(ts, p, "all", "split_target", "target", 1) {
                t.dashed = true;
                t.lo = t.mean.clone();
                t.hi = t.mean.clone();
                bands.push(t);
            }
            plan.charts.push(Chart {
                stem: format!("split{sfx}"),
                title: format!("Realised orchestration vs Ledger split over epochs{tsfx}"),
                caption: "Orchestration share of miner emission per epoch (the Ledger gets the rest): mean with 95 % CI band, dashed = target share s.".into(),
                spec: ChartSpec::Panels {
                    x_desc: epoch_desc.clone(),
                    panels: vec![Panel { y_desc: metric_desc("split_orchestration"), y_range: Some(min_span_range(&bands, 0.2)), bands, secondary: None }],
                    markers: markers.clone(),
                },
            });
        } else {
            plan.notes.push(format!(
                "split{sfx}: skipped, no per-epoch `split_orchestration` rows."
            ));
        }
        // Ledger.
        let mut panels = Vec::new();
        let top: Vec<Band> = [
            ("ledger_accuracy", "accuracy", 0),
            ("ledger_coverage", "coverage", 2),
        ]
        .iter()
        .filter_map(|(m, l, c)| ts_band(ts, p, "all", m, l, *c))
        .collect();
        if !top.is_empty() {
            panels.push(Panel {
                y_desc: "Ledger accuracy / coverage (fraction)".into(),
                y_range: None,
                bands: top,
                secondary: None,
            });
        }
        if let Some(b) = ts_band(ts, p, "all", "detection_lag_blocks", "detection lag", 1) {
            panels.push(Panel {
                y_desc: metric_desc("detection_lag_blocks"),
                y_range: None,
                bands: vec![b],
                secondary: None,
            });
        }
        if panels.is_empty() {
            plan.notes.push(format!(
                "ledger{sfx}: skipped, no per-epoch Ledger accuracy, coverage or lag rows."
            ));
        } else {
            plan.charts.push(Chart {
                stem: format!("ledger{sfx}"),
                title: format!("Ledger accuracy, coverage and change-detection lag{tsfx}"),
                caption: "Ledger quality against the simulator's ground truth per epoch (mean, 95 % CI bands); dashed verticals mark scenario events such as schema changes.".into(),
                spec: ChartSpec::Panels { x_desc: epoch_desc.clone(), panels, markers: markers.clone() },
            });
        }
        // Orchestration.
        let mut panels = Vec::new();
        if let Some(b) = ts_band(ts, p, "all", "success_rate", "success rate", 2) {
            panels.push(Panel {
                y_desc: metric_desc("success_rate"),
                y_range: None,
                bands: vec![b],
                secondary: None,
            });
        }
        let lat: Vec<Band> = [
            ("latency_p50_ms", "latency p50", 0, false),
            ("latency_p95_ms", "latency p95", 1, true),
        ]
        .iter()
        .filter_map(|(m, l, c, d)| {
            ts_band(ts, p, "all", m, l, *c).map(|b| Band { dashed: *d, ..b })
        })
        .collect();
        let load = ts_band(ts, p, "all", "organic_rps", "load", 6);
        if !lat.is_empty() {
            panels.push(Panel {
                y_desc: "latency (ms)".into(),
                y_range: None,
                bands: lat,
                secondary: load.map(|b| (metric_desc("organic_rps"), b)),
            });
        }
        if panels.is_empty() {
            plan.notes.push(format!(
                "orchestration{sfx}: skipped, no per-epoch success rate or latency rows."
            ));
        } else {
            plan.charts.push(Chart {
                stem: format!("orchestration{sfx}"),
                title: format!("Orchestration success rate and latency over epochs{tsfx}"),
                caption: "Orchestration success rate (top) and latency p50/p95 (bottom, mean with 95 % CI; grey = organic load on the right axis); dashed verticals mark events.".into(),
                spec: ChartSpec::Panels { x_desc: epoch_desc.clone(), panels, markers: markers.clone() },
            });
        }
        // Lorenz.
        let amounts: Vec<f64> = rows
            .iter()
            .filter(|r| {
                r.point == p && r.entity.starts_with("miner:") && r.metric == "emission_rao"
            })
            .map(|r| r.mean)
            .collect();
        if amounts.is_empty() {
            plan.notes.push(format!(
                "lorenz{sfx}: skipped, no whole-run `emission_rao` rows of miners."
            ));
        } else {
            let reported = rows
                .iter()
                .find(|r| r.point == p && r.entity == "all" && r.metric == "gini")
                .map(|r| r.mean);
            plan.charts.push(Chart {
                stem: format!("lorenz{sfx}"),
                title: format!("Lorenz curve of miner emission{tsfx}"),
                caption: "Distribution of whole-run emission over miners (mean over seeds per miner); the further below the diagonal, the more concentrated.".into(),
                spec: ChartSpec::Lorenz { amounts, reported_gini: reported },
            });
        }
    }
    if multi {
        plan_sweeps(&mut plan, rows, points, &point_ids, &strategies);
    }
    plan
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
            for m in ["roi_vs_honest", "emission_share"] {
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
            for s in strategies.iter().filter(|s| *s != "honest") {
                targets.push((format!("strategy:{s}"), "roi_vs_honest".into(), format!("roi_vs_honest_{s}")));
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
