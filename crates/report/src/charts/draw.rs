//! Drawing: the plotters code that turns a [`Chart`] into `<stem>.png` and `<stem>.svg`. It
//! knows chart *kinds* (stacked panels with CI bands, bars with whiskers, a Lorenz curve, a
//! heatmap, a scatter) and nothing about which metrics exist; [`super::plan`] decides that.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentValue;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{Bar, Chart, ChartSpec, Marker, Panel, ScatterSeries};
use crate::ReportError;

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
            include_bytes!("../../assets/DejaVuSans.ttf"),
        )
        .map_err(|_| "embedded DejaVuSans.ttf is not a valid font".to_string())?;
        plotters::style::register_font(
            FONT,
            FontStyle::Bold,
            include_bytes!("../../assets/DejaVuSans-Bold.ttf"),
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

pub(super) fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo <= hi).then_some((lo, hi))
}

pub(super) fn pad((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
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
