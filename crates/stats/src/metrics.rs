//! The scale of every metric of the run table and of the tuner — declared once, here, for the
//! simulator's `[expect]` checks and tuner and for the report's `summary.*` and
//! `timeseries.parquet`, which all print intervals of the same metrics.
//!
//! A metric is on [`Scale::Unit`] when every value it can take is in [0, 1] by construction:
//! shares of emission, fractions of facts or challenges, scores normalised to their maximum,
//! Yuma's u16 outputs divided by 65 535, and the Gini coefficient. Everything else (rao, ms,
//! blocks, counts, ROI and ratios to honest) is on [`Scale::Real`]. A metric not listed is
//! treated as [`Scale::Real`]; the simulator's tests check that every metric a run writes is
//! listed, so a new proportion cannot silently get an interval that leaves [0, 1].

use crate::Scale;

/// Every metric name with its scale. Names are the run table's `metric` column (and the
/// tuner's own KPIs).
pub const METRICS: &[(&str, Scale)] = &[
    // Per strategy group (`strategy:<label>`).
    ("emission_share", Scale::Unit),
    ("emission_per_identity_rao", Scale::Real),
    ("cost_per_identity_rao", Scale::Real),
    ("roi_per_identity_rao", Scale::Real),
    ("roi_vs_honest", Scale::Real),
    ("fabrication_strikes_per_identity", Scale::Real),
    ("identities", Scale::Real),
    // Per miner (`miner:<uid>`) and validator (`validator:<uid>`).
    ("emission_rao", Scale::Real),
    ("consensus", Scale::Unit),
    ("incentive", Scale::Unit),
    ("orchestration_score", Scale::Unit),
    ("ledger_score", Scale::Unit),
    ("dividends", Scale::Unit),
    ("validator_trust", Scale::Unit),
    // Network (`all`).
    ("honest_share", Scale::Unit),
    ("gini", Scale::Unit),
    ("split_orchestration", Scale::Unit),
    ("split_target", Scale::Unit),
    ("emission_error_rao", Scale::Real),
    ("ledger_accuracy", Scale::Unit),
    ("detection_lag_blocks", Scale::Real),
    ("ledger_coverage", Scale::Unit),
    ("success_rate", Scale::Unit),
    ("latency_p50_ms", Scale::Real),
    ("latency_p95_ms", Scale::Real),
    ("organic_quality", Scale::Unit),
    ("organic_rps", Scale::Real),
    ("challenges", Scale::Real),
    ("fabrication_strikes", Scale::Real),
    ("proposals_accepted", Scale::Real),
    ("proposals_rejected", Scale::Real),
    // The tuner's own KPIs: the worst attack's ROI gap to honest (a ratio) and
    // |split_orchestration − target|.
    ("adversary_roi_gap", Scale::Real),
    ("split_error", Scale::Unit),
];

/// The declared scale of `metric`, if it is listed in [`METRICS`].
pub fn declared(metric: &str) -> Option<Scale> {
    METRICS
        .iter()
        .find(|(name, _)| *name == metric)
        .map(|(_, scale)| *scale)
}

/// The scale of `metric`: its declared one, else [`Scale::Real`] (metric names are data; an
/// unknown one gets the plain t-interval).
pub fn scale_of(metric: &str) -> Scale {
    declared(metric).unwrap_or(Scale::Real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lookups_agree() {
        let names: std::collections::BTreeSet<&str> = METRICS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), METRICS.len());
        assert_eq!(scale_of("ledger_accuracy"), Scale::Unit);
        assert_eq!(scale_of("roi_per_identity_rao"), Scale::Real);
        assert_eq!(declared("no_such_metric"), None);
        assert_eq!(scale_of("no_such_metric"), Scale::Real);
    }
}
