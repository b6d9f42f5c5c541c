//! Charts (plotters, PNG and SVG) and the plan of which charts a run directory gets, in two
//! halves along one seam:
//!
//! - [`plan`](plan()) (module `plan`) — *what* is drawn: a declarative table of the charts (stem,
//!   title, caption, axes, and which metric of which entity feeds each series), which the planner
//!   iterates over the run's summary rows and time series to produce [`Chart`]s, or a note when
//!   a chart's data is absent;
//! - drawing (module `draw`) — *how*: [`render_chart`] draws any [`Chart`] with plotters, knowing
//!   chart kinds ([`ChartSpec`]) but no metric.
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

mod draw;
mod plan;

pub use draw::{PALETTE, Rendered, fmt_num, fmt_tick, register_fonts, render_chart, viridis};
pub(crate) use plan::plan;
pub use plan::{SWEEP_METRICS, metric_desc, time_series_metrics};

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

/// Charts planned for a run directory, and notes on charts skipped.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Charts to render.
    pub charts: Vec<Chart>,
    /// Charts skipped (missing data) and other remarks.
    pub notes: Vec<String>,
}
