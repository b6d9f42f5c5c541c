//! [`MechanismParams`]: every weight and constant of docs/mechanism.md §3, §4, §6 and §7, with the
//! documented defaults, loadable from TOML/JSON with per-field overrides, and validated.
//!
//! # How term weights relate to the orchestration share `s`
//!
//! The seed's term weights were absolute: the orchestration part summed to its `s = 0.60`
//! (0.20 + 0.15 + 0.10 + 0.10 + 0.05 + fidelity 0) and the Ledger part to `1 − s = 0.40`
//! (0.20 + 0.10 + 0.05 + 0.05). This crate treats the configured term weights as **relative weights
//! inside their product** and rescales them so that the orchestration terms always sum to `s` and the
//! Ledger terms to `1 − s`:
//!
//! ```text
//! effective_w(t ∈ orchestration) = s       · w(t) / Σ_orchestration w
//! effective_w(t ∈ ledger)        = (1 − s) · w(t) / Σ_ledger w
//! ```
//!
//! At `s = 0.6` the rescaling is the identity (the sums already are 0.60 and 0.40), so the
//! effective weights are exactly the seed's. At the default `s = 0.497` (the tune of
//! `scenarios/tune-v2.toml`, docs/tuning.md) every orchestration weight is scaled by 0.497/0.6 and
//! every Ledger weight by 0.503/0.4 — proportional scaling. When a designer turns on `fidelity`
//! (say 0.05) without touching `s`, the orchestration weights are renormalised so they still sum
//! to `s`. So `s` is always *the* split, whatever the term
//! weights say; see [`MechanismParams::effective_orchestration_weights`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Blocks per day at 12 s per block (docs/mechanism.md §1).
pub const BLOCKS_PER_DAY: u64 = 7_200;

/// A parameter value that [`MechanismParams::validate`] rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParamsError {
    /// A field is outside its allowed range (or not finite).
    #[error("mechanism parameter `{field}` = {value} is out of range: expected {expected}")]
    OutOfRange {
        /// Dotted path of the offending field, e.g. `orchestration_weights.routing`.
        field: &'static str,
        /// The value found, rendered for people.
        value: String,
        /// What the field must satisfy.
        expected: &'static str,
    },
    /// A TOML document could not be parsed into [`MechanismParams`].
    #[error("mechanism parameters: {0}")]
    Parse(String),
}

/// How the two products' scores become one weight vector (docs/mechanism.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CombinationMode {
    /// `w_i ∝ O_i + L_i` with absolute terms; the split is only a weight budget (the seed's design).
    Blended,
    /// `w_i = s·O_i/ΣO + (1−s)·L_i/ΣL`; emission between the products is exactly `s : 1−s`.
    #[default]
    Normalized,
    /// Two subtensor mechanisms with emission split `[s, 1−s]`: `O` on mechanism 0, `L` on 1.
    Mechanisms,
}

/// How the latency term treats a response that arrives after `deadline_ms` (docs/mechanism.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyMode {
    /// 1 if total latency ≤ deadline, else 0 (the default).
    #[default]
    Step,
    /// 1 up to the deadline, then linear decay to 0 at 2 × deadline.
    LinearDecay,
}

/// Which Ledger terms discount a confirmation to `confirmation_factor` (docs/mechanism.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationScope {
    /// Only `discovery` (the seed's design): a confirmation earns full accuracy, freshness and
    /// coverage credit, which a confirmation farmer lives on.
    #[default]
    Discovery,
    /// Every Ledger term: a confirmation counts `confirmation_factor` of a first proposal in
    /// `update_accuracy`, `freshness` and `coverage` too.
    AllTerms,
}

/// Relative weights of the orchestration terms (docs/mechanism.md §4); rescaled to sum to `s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestrationWeights {
    /// Weight of `hash_verified` (default 0.20).
    pub hash_verified: f64,
    /// Weight of `schema_valid` (default 0.15).
    pub schema_valid: f64,
    /// Weight of `completeness` (default 0.10).
    pub completeness: f64,
    /// Weight of `routing` (default 0.10).
    pub routing: f64,
    /// Weight of `latency` (default 0.05).
    pub latency: f64,
    /// Weight of `fidelity` (default 0.00: off, for the tuner to try).
    pub fidelity: f64,
}

impl Default for OrchestrationWeights {
    fn default() -> Self {
        Self {
            hash_verified: 0.20,
            schema_valid: 0.15,
            completeness: 0.10,
            routing: 0.10,
            latency: 0.05,
            fidelity: 0.0,
        }
    }
}

impl OrchestrationWeights {
    /// The weights in term order (hash, schema, completeness, routing, latency, fidelity).
    pub fn as_array(&self) -> [f64; 6] {
        [
            self.hash_verified,
            self.schema_valid,
            self.completeness,
            self.routing,
            self.latency,
            self.fidelity,
        ]
    }

    /// Sum of the configured (relative) weights.
    pub fn sum(&self) -> f64 {
        self.as_array().iter().sum()
    }
}

/// Relative weights of the Ledger terms (docs/mechanism.md §6); rescaled to sum to `1 − s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerWeights {
    /// Weight of `update_accuracy` (default 0.20).
    pub update_accuracy: f64,
    /// Weight of `discovery` (default 0.10).
    pub discovery: f64,
    /// Weight of `freshness` (default 0.05).
    pub freshness: f64,
    /// Weight of `coverage` (default 0.05).
    pub coverage: f64,
}

impl Default for LedgerWeights {
    fn default() -> Self {
        Self {
            update_accuracy: 0.20,
            discovery: 0.10,
            freshness: 0.05,
            coverage: 0.05,
        }
    }
}

impl LedgerWeights {
    /// The weights in term order (accuracy, discovery, freshness, coverage).
    pub fn as_array(&self) -> [f64; 4] {
        [
            self.update_accuracy,
            self.discovery,
            self.freshness,
            self.coverage,
        ]
    }

    /// Sum of the configured (relative) weights.
    pub fn sum(&self) -> f64 {
        self.as_array().iter().sum()
    }
}

/// Discovery credit units per proposal kind (docs/mechanism.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProposalCredits {
    /// Unit credit of an accepted `new_subnet` proposal (default 5).
    pub new_subnet: f64,
    /// Unit credit of an accepted `schema_update` proposal (default 1).
    pub schema_update: f64,
    /// Unit credit of an accepted `deprecation` proposal (default 1).
    pub deprecation: f64,
    /// Unit credit of an accepted `metrics_update` proposal (default 0.2).
    pub metrics_update: f64,
}

impl ProposalCredits {
    /// The discovery credit unit of a proposal of `kind`.
    pub fn unit(&self, kind: orchestra_protocol::ledger::ProposalKind) -> f64 {
        use orchestra_protocol::ledger::ProposalKind;
        match kind {
            ProposalKind::NewSubnet => self.new_subnet,
            ProposalKind::SchemaUpdate => self.schema_update,
            ProposalKind::Deprecation => self.deprecation,
            ProposalKind::MetricsUpdate => self.metrics_update,
        }
    }
}

impl Default for ProposalCredits {
    fn default() -> Self {
        Self {
            new_subnet: 5.0,
            schema_update: 1.0,
            deprecation: 1.0,
            metrics_update: 0.2,
        }
    }
}

/// Every weight and constant of the Orchestra mechanism. `Default` gives docs/mechanism.md's values.
///
/// Loadable from any serde format with per-field overrides: missing fields take their defaults and
/// unknown fields are rejected, e.g. in TOML
/// `orchestration_share = 0.5` / `[orchestration_weights] routing = 0.2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MechanismParams {
    /// Orchestration share `s` of emission (default 0.497, tuned; the seed's was 0.60); the Ledger
    /// gets `1 − s`.
    pub orchestration_share: f64,
    /// Relative orchestration term weights, rescaled to sum to `s`.
    pub orchestration_weights: OrchestrationWeights,
    /// Relative Ledger term weights, rescaled to sum to `1 − s`.
    pub ledger_weights: LedgerWeights,
    /// Cost exponent γ of the routing term (default 0.5).
    pub routing_gamma: f64,
    /// Latency scoring mode (default `step`).
    pub latency_mode: LatencyMode,
    /// A response later than the deadline by more than this scores 0 on every term (default 1000).
    pub latency_grace_ms: u64,
    /// Probability that a validator re-executes each unreceipted step (default 0.2576, tuned; the
    /// seed's was 0.2).
    pub audit_rate: f64,
    /// Content check of an audit (docs/mechanism.md §3 check 5, mechanism v2): a re-executed
    /// non-deterministic step whose committed response agrees with the re-execution on less than
    /// this share of its parts ([`agreement`](crate::agreement::agreement)) fails (default 0.2;
    /// 0 is off, the seed's).
    pub audit_agreement_min: f64,
    /// Factor applied to the orchestration EMA on a fabrication strike (default 0.5).
    pub strike_penalty: f64,
    /// Multiplier on a miner's orchestration EMAs for each of its proposals the Ledger rejects
    /// and slashes (not in docs/mechanism.md: the Ledger score is floored at 0, so without it a miner
    /// that orchestrates honestly and floods false proposals loses nothing against one that
    /// proposes nothing; 1 disables it).
    pub proposal_strike_penalty: f64,
    /// EMA smoothing α per observation (default 0.1).
    pub ema_alpha: f64,
    /// Ledger scoring window W in tempos (default 20).
    pub ledger_window_tempos: u32,
    /// Freshness time constant τ in blocks (default 1 day = 7200 blocks).
    pub freshness_tau_blocks: f64,
    /// Discovery credit units per proposal kind.
    pub credits: ProposalCredits,
    /// Credit of a confirmation as a fraction of the unit (default 0.2).
    pub confirmation_factor: f64,
    /// Which Ledger terms discount confirmations (default `all_terms`, mechanism v2; the seed's was
    /// `discovery`).
    pub confirmation_scope: ConfirmationScope,
    /// Exponent `k` of the Ledger work gate: each miner's Ledger score is multiplied by
    /// `(O_i / max_j O_j)^k`, its orchestration score relative to the best orchestrator's, so
    /// Ledger credit needs orchestration work behind it (default 3.15, tuned, mechanism v2; the
    /// seed's was 0, off).
    pub ledger_work_exponent: f64,
    /// Exponent of the fidelity gate (docs/mechanism.md §4, default 0: off, the seed's): every
    /// other term of a scored challenge is multiplied by `fidelity^g`, so an answer whose values
    /// come from no committed sub-response keeps none of what the additive terms would pay it.
    pub fidelity_gate: f64,
    /// Exponent of the execution gate (docs/mechanism.md §4, default 1.389, tuned, mechanism v2; 0
    /// is off, the seed's): every other term of a scored challenge is multiplied by
    /// `F1(capabilities executed, reference)^g`, so a schema-valid "shell" that calls nothing
    /// scores nothing.
    pub execution_gate: f64,
    /// Copied-evidence check (docs/mechanism.md §5, default true, mechanism v2; false is the
    /// seed's): a validator's Ledger rejects and slashes a proposal whose evidence is exactly the
    /// evidence of a record another proposer had accepted in the last day, so re-submitting a
    /// peer's proposal verbatim is a false claim, not a confirmation.
    pub reject_copied_evidence: bool,
    /// Slash per rejected proposal as a fraction of its kind's unit (default 0.5).
    pub slash: f64,
    /// Response-hash replay window in milliseconds (default 1 day).
    pub replay_window_ms: u64,
    /// Replay binding (docs/mechanism.md §3, default true): challenges tell miners to put a
    /// nonce derived from the challenge and step into every sub-call request, and an audit fails
    /// a step whose request lacks this challenge's nonce, so a request (and the receipt signed
    /// over it) cannot serve two challenges. On by default (mechanism v2); miners that predate it
    /// refuse challenges that carry it.
    pub replay_binding: bool,
    /// Largest request/response body carried inline in a pipeline step (default 256 KiB).
    pub max_inline_bytes: u64,
    /// How orchestration and Ledger scores are combined into weights (default `normalized`).
    pub combination: CombinationMode,
}

impl Default for MechanismParams {
    fn default() -> Self {
        Self {
            orchestration_share: 0.497,
            orchestration_weights: OrchestrationWeights::default(),
            ledger_weights: LedgerWeights::default(),
            routing_gamma: 0.5,
            latency_mode: LatencyMode::Step,
            latency_grace_ms: 1_000,
            audit_rate: 0.2576,
            audit_agreement_min: 0.2,
            strike_penalty: 0.5,
            proposal_strike_penalty: 0.9,
            ema_alpha: 0.1,
            ledger_window_tempos: 20,
            freshness_tau_blocks: BLOCKS_PER_DAY as f64,
            credits: ProposalCredits::default(),
            confirmation_factor: 0.2,
            confirmation_scope: ConfirmationScope::AllTerms,
            ledger_work_exponent: 3.15,
            fidelity_gate: 0.0,
            execution_gate: 1.389,
            reject_copied_evidence: true,
            slash: 0.5,
            replay_window_ms: 86_400_000,
            replay_binding: true,
            max_inline_bytes: 256 * 1024,
            combination: CombinationMode::Normalized,
        }
    }
}

fn check(
    ok: bool,
    field: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> Result<(), ParamsError> {
    if ok {
        Ok(())
    } else {
        Err(ParamsError::OutOfRange {
            field,
            value: value.to_string(),
            expected,
        })
    }
}

fn unit_interval(field: &'static str, v: f64) -> Result<(), ParamsError> {
    check(
        v.is_finite() && (0.0..=1.0).contains(&v),
        field,
        v,
        "a finite number in [0, 1]",
    )
}

fn non_negative(field: &'static str, v: f64) -> Result<(), ParamsError> {
    check(v.is_finite() && v >= 0.0, field, v, "a finite number ≥ 0")
}

impl MechanismParams {
    /// Parses parameters from TOML (missing fields default, unknown ones are rejected) and
    /// validates them.
    pub fn from_toml_str(text: &str) -> Result<Self, ParamsError> {
        let params: Self = toml::from_str(text).map_err(|e| ParamsError::Parse(e.to_string()))?;
        params.validate()?;
        Ok(params)
    }

    /// Rejects out-of-range values; the error names the field.
    pub fn validate(&self) -> Result<(), ParamsError> {
        unit_interval("orchestration_share", self.orchestration_share)?;
        let o = &self.orchestration_weights;
        non_negative("orchestration_weights.hash_verified", o.hash_verified)?;
        non_negative("orchestration_weights.schema_valid", o.schema_valid)?;
        non_negative("orchestration_weights.completeness", o.completeness)?;
        non_negative("orchestration_weights.routing", o.routing)?;
        non_negative("orchestration_weights.latency", o.latency)?;
        non_negative("orchestration_weights.fidelity", o.fidelity)?;
        check(
            o.sum() > 0.0 || self.orchestration_share == 0.0,
            "orchestration_weights",
            o.sum(),
            "a positive sum of orchestration term weights (unless orchestration_share = 0)",
        )?;
        let l = &self.ledger_weights;
        non_negative("ledger_weights.update_accuracy", l.update_accuracy)?;
        non_negative("ledger_weights.discovery", l.discovery)?;
        non_negative("ledger_weights.freshness", l.freshness)?;
        non_negative("ledger_weights.coverage", l.coverage)?;
        check(
            l.sum() > 0.0 || self.orchestration_share == 1.0,
            "ledger_weights",
            l.sum(),
            "a positive sum of Ledger term weights (unless orchestration_share = 1)",
        )?;
        non_negative("routing_gamma", self.routing_gamma)?;
        unit_interval("audit_rate", self.audit_rate)?;
        unit_interval("audit_agreement_min", self.audit_agreement_min)?;
        unit_interval("strike_penalty", self.strike_penalty)?;
        unit_interval("proposal_strike_penalty", self.proposal_strike_penalty)?;
        check(
            self.ema_alpha.is_finite() && self.ema_alpha > 0.0 && self.ema_alpha <= 1.0,
            "ema_alpha",
            self.ema_alpha,
            "a number in (0, 1]",
        )?;
        check(
            self.ledger_window_tempos >= 1,
            "ledger_window_tempos",
            self.ledger_window_tempos,
            "≥ 1",
        )?;
        check(
            self.freshness_tau_blocks.is_finite() && self.freshness_tau_blocks > 0.0,
            "freshness_tau_blocks",
            self.freshness_tau_blocks,
            "a finite number > 0",
        )?;
        non_negative("credits.new_subnet", self.credits.new_subnet)?;
        non_negative("credits.schema_update", self.credits.schema_update)?;
        non_negative("credits.deprecation", self.credits.deprecation)?;
        non_negative("credits.metrics_update", self.credits.metrics_update)?;
        unit_interval("confirmation_factor", self.confirmation_factor)?;
        check(
            self.ledger_work_exponent.is_finite()
                && (0.0..=16.0).contains(&self.ledger_work_exponent),
            "ledger_work_exponent",
            self.ledger_work_exponent,
            "a finite number in [0, 16]",
        )?;
        check(
            self.fidelity_gate.is_finite() && (0.0..=16.0).contains(&self.fidelity_gate),
            "fidelity_gate",
            self.fidelity_gate,
            "a finite number in [0, 16]",
        )?;
        check(
            self.execution_gate.is_finite() && (0.0..=16.0).contains(&self.execution_gate),
            "execution_gate",
            self.execution_gate,
            "a finite number in [0, 16]",
        )?;
        non_negative("slash", self.slash)?;
        check(
            self.replay_window_ms > 0,
            "replay_window_ms",
            self.replay_window_ms,
            "> 0",
        )?;
        check(
            self.max_inline_bytes > 0,
            "max_inline_bytes",
            self.max_inline_bytes,
            "> 0",
        )?;
        Ok(())
    }

    /// Orchestration term weights rescaled to sum to `s` (see the module docs), in term order
    /// (hash, schema, completeness, routing, latency, fidelity). All zero if the sum is zero.
    pub fn effective_orchestration_weights(&self) -> [f64; 6] {
        rescale(
            self.orchestration_weights.as_array(),
            self.orchestration_share,
        )
    }

    /// Ledger term weights rescaled to sum to `1 − s`, in term order (accuracy, discovery,
    /// freshness, coverage). All zero if the sum is zero.
    pub fn effective_ledger_weights(&self) -> [f64; 4] {
        rescale(
            self.ledger_weights.as_array(),
            1.0 - self.orchestration_share,
        )
    }
}

/// Scales `weights` so they sum to `total`; zeros if the weights sum to zero or are not finite.
fn rescale<const N: usize>(weights: [f64; N], total: f64) -> [f64; N] {
    let sum: f64 = weights.iter().sum();
    if !(sum.is_finite() && sum > 0.0 && total.is_finite()) {
        return [0.0; N];
    }
    weights.map(|w| total * w / sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_mechanism_md() {
        let p = MechanismParams::default();
        p.validate().unwrap();
        // The relative weights are the seed's absolute ones, which summed to its s = 0.6.
        let s = 0.497;
        assert_eq!(p.orchestration_share, s);
        let o = p.effective_orchestration_weights();
        let expected = [0.20, 0.15, 0.10, 0.10, 0.05, 0.0];
        for (a, b) in o.iter().zip(expected) {
            assert!((a - b * s / 0.6).abs() < 1e-12, "{o:?}");
        }
        let l = p.effective_ledger_weights();
        for (a, b) in l.iter().zip([0.20, 0.10, 0.05, 0.05]) {
            assert!((a - b * (1.0 - s) / 0.4).abs() < 1e-12, "{l:?}");
        }
        let seed = MechanismParams {
            orchestration_share: 0.6,
            ..Default::default()
        };
        for (a, b) in seed.effective_orchestration_weights().iter().zip(expected) {
            assert!(
                (a - b).abs() < 1e-12,
                "at the seed's s the rescaling is the identity"
            );
        }
        assert_eq!(p.combination, CombinationMode::Normalized);
        assert_eq!(p.freshness_tau_blocks, 7200.0);
        assert_eq!(p.max_inline_bytes, 262_144);
    }

    #[test]
    fn changing_s_scales_term_weights_proportionally() {
        let p = MechanismParams {
            orchestration_share: 0.5,
            ..Default::default()
        };
        let o = p.effective_orchestration_weights();
        assert!((o.iter().sum::<f64>() - 0.5).abs() < 1e-12);
        assert!((o[0] - 0.20 * 0.5 / 0.6).abs() < 1e-12);
        let l = p.effective_ledger_weights();
        assert!((l.iter().sum::<f64>() - 0.5).abs() < 1e-12);
        assert!((l[0] - 0.20 * 0.5 / 0.4).abs() < 1e-12);
    }

    #[test]
    fn turning_on_fidelity_keeps_the_orchestration_sum_at_s() {
        let mut p = MechanismParams::default();
        p.orchestration_weights.fidelity = 0.05;
        let s = p.orchestration_share;
        let o = p.effective_orchestration_weights();
        assert!((o.iter().sum::<f64>() - s).abs() < 1e-12);
        assert!((o[5] - 0.05 * s / 0.65).abs() < 1e-12);
    }

    #[test]
    fn toml_overrides_single_fields_and_rejects_unknown_ones() {
        let p = MechanismParams::from_toml_str(
            "orchestration_share = 0.5\ncombination = \"blended\"\nlatency_mode = \"linear_decay\"\n\
             [orchestration_weights]\nrouting = 0.2\n[credits]\nnew_subnet = 3.0\n",
        )
        .unwrap();
        assert_eq!(p.orchestration_share, 0.5);
        assert_eq!(p.combination, CombinationMode::Blended);
        assert_eq!(p.latency_mode, LatencyMode::LinearDecay);
        assert_eq!(p.orchestration_weights.routing, 0.2);
        assert_eq!(p.orchestration_weights.hash_verified, 0.20);
        assert_eq!(p.credits.new_subnet, 3.0);
        assert_eq!(p.credits.schema_update, 1.0);
        assert!(matches!(
            MechanismParams::from_toml_str("orchestration_shar = 0.5"),
            Err(ParamsError::Parse(_))
        ));
        assert!(matches!(
            MechanismParams::from_toml_str("[credits]\nbogus = 1.0"),
            Err(ParamsError::Parse(_))
        ));
    }

    #[test]
    fn validate_names_the_offending_field() {
        let cases: Vec<(MechanismParams, &str)> = vec![
            (
                MechanismParams {
                    orchestration_share: 1.5,
                    ..Default::default()
                },
                "orchestration_share",
            ),
            (
                MechanismParams {
                    ema_alpha: 0.0,
                    ..Default::default()
                },
                "ema_alpha",
            ),
            (
                MechanismParams {
                    audit_rate: f64::NAN,
                    ..Default::default()
                },
                "audit_rate",
            ),
            (
                MechanismParams {
                    strike_penalty: -0.1,
                    ..Default::default()
                },
                "strike_penalty",
            ),
            (
                MechanismParams {
                    ledger_window_tempos: 0,
                    ..Default::default()
                },
                "ledger_window_tempos",
            ),
            (
                MechanismParams {
                    freshness_tau_blocks: 0.0,
                    ..Default::default()
                },
                "freshness_tau_blocks",
            ),
            (
                MechanismParams {
                    confirmation_factor: 2.0,
                    ..Default::default()
                },
                "confirmation_factor",
            ),
            (
                MechanismParams {
                    slash: f64::INFINITY,
                    ..Default::default()
                },
                "slash",
            ),
            (
                MechanismParams {
                    routing_gamma: -1.0,
                    ..Default::default()
                },
                "routing_gamma",
            ),
            (
                MechanismParams {
                    replay_window_ms: 0,
                    ..Default::default()
                },
                "replay_window_ms",
            ),
            (
                MechanismParams {
                    max_inline_bytes: 0,
                    ..Default::default()
                },
                "max_inline_bytes",
            ),
            (
                MechanismParams {
                    orchestration_weights: OrchestrationWeights {
                        routing: -0.1,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "orchestration_weights.routing",
            ),
            (
                MechanismParams {
                    credits: ProposalCredits {
                        metrics_update: -1.0,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                "credits.metrics_update",
            ),
            (
                MechanismParams {
                    ledger_weights: LedgerWeights {
                        update_accuracy: 0.0,
                        discovery: 0.0,
                        freshness: 0.0,
                        coverage: 0.0,
                    },
                    ..Default::default()
                },
                "ledger_weights",
            ),
        ];
        for (p, field) in cases {
            match p.validate() {
                Err(e @ ParamsError::OutOfRange { .. }) => {
                    let ParamsError::OutOfRange { field: f, .. } = &e else {
                        unreachable!()
                    };
                    assert_eq!(*f, field);
                    assert!(e.to_string().contains(field));
                }
                other => panic!("{field}: expected OutOfRange, got {other:?}"),
            }
        }
        // s = 1 makes all-zero Ledger weights acceptable (no Ledger product).
        let p = MechanismParams {
            orchestration_share: 1.0,
            ledger_weights: LedgerWeights {
                update_accuracy: 0.0,
                discovery: 0.0,
                freshness: 0.0,
                coverage: 0.0,
            },
            ..Default::default()
        };
        p.validate().unwrap();
        assert_eq!(p.effective_ledger_weights(), [0.0; 4]);
    }
}
