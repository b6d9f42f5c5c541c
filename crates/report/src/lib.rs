//! Run tables (Parquet/CSV), charts and the per-run HTML report of `orchestra-sim`.
//!
//! Not built yet (issue 7).
