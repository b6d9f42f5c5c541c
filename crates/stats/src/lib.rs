//! Statistics shared by the simulator (`orchestra-sim`: `[expect]` checks, the tuner, the run
//! metrics) and the report (`orchestra-report`: summary and time-series tables, charts), so that
//! both print the same numbers for the same data. Pure functions, no dependencies.
//!
//! - [`t_quantile`], [`t_quantile_975`]: Student's t quantile, exact (incomplete beta).
//! - [`Interval`], [`bounds`]: mean and 95 % confidence interval across seeds — the
//!   t-interval for unbounded metrics, the logit interval (which stays in [0, 1]) for
//!   proportions; [`Scale`] says which, and [`metrics::scale_of`] is the one declaration of each
//!   metric's scale.
//! - [`gini`], [`lorenz`]: inequality of an emission distribution (NaN / `None` when undefined).
//! - [`nearest_rank`], [`nearest_rank_counts`]: nearest-rank percentiles (latencies).

mod inequality;
mod interval;
pub mod metrics;
mod percentile;
mod t;

pub use inequality::{gini, lorenz};
pub use interval::{Interval, Scale, bounds, t_bounds};
pub use percentile::{nearest_rank, nearest_rank_counts};
pub use t::{t_quantile, t_quantile_975};
