//! The validator's Prometheus metrics, registered on the process [`Metrics`] registry next to
//! the shared HTTP ones. `docs/operators.md` explains each; the names here are what `/metrics`
//! exports (counters get `_total` appended).

use crate::metrics::{LatencyFamily, Metrics, latency_family, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::AtomicU64;

/// A float gauge.
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// A single `result` label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Outcome name.
    pub result: String,
}

/// A miner's uid.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UidLabels {
    /// Miner uid.
    pub uid: u16,
}

/// A miner's uid and a mechanism.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WeightLabels {
    /// Miner uid.
    pub uid: u16,
    /// Mechanism id.
    pub mecid: u8,
}

/// A chain operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// `current_block`, `metagraph`, `hyperparams`, …
    pub op: String,
}

/// Every validator metric.
#[derive(Debug, Clone)]
pub struct ValidatorMetrics {
    /// `orchestra_validator_block`: the last chain block the validator processed.
    pub block: Gauge,
    /// `orchestra_validator_last_tempo_closed`: index of the last tempo closed.
    pub last_tempo: Gauge,
    /// `orchestra_validator_challenges_total{result}`: challenges by outcome.
    pub challenges: Family<ResultLabels, Counter>,
    /// `orchestra_validator_challenge_latency_seconds`: challenge sent → response received.
    pub challenge_latency: Histogram,
    /// `orchestra_validator_audit_steps_total{result}`: audited steps by verdict.
    pub audit_steps: Family<ResultLabels, Counter>,
    /// `orchestra_validator_miner_orchestration_score{uid}`: `O_i` after the last closed tempo.
    pub orchestration_score: Family<UidLabels, FloatGauge>,
    /// `orchestra_validator_miner_ledger_score{uid}`: `L_i` after the last closed tempo.
    pub ledger_score: Family<UidLabels, FloatGauge>,
    /// `orchestra_validator_weight{uid,mecid}`: the u16 weight last set.
    pub weight: Family<WeightLabels, Gauge>,
    /// `orchestra_validator_weights_set_total{result}`: weight submissions (`ok`, `committed`,
    /// `error`, `skipped`).
    pub weights_set: Family<ResultLabels, Counter>,
    /// `orchestra_validator_organic_requests_total{result}`: `POST /v1/objectives` by outcome.
    pub organic: Family<ResultLabels, Counter>,
    /// `orchestra_validator_organic_latency_seconds{result}`: organic request → answer.
    pub organic_latency: LatencyFamily<ResultLabels>,
    /// `orchestra_validator_organic_retries_total`: organic requests sent on to another miner
    /// after one gave no usable response.
    pub organic_retries: Counter,
    /// `orchestra_validator_proposals_total{result}`: Ledger proposals judged (`first`,
    /// `confirmation`, `rejected`, `void`).
    pub proposals: Family<ResultLabels, Counter>,
    /// `orchestra_validator_probes_total{result}`: proposal probes (`ok`, `failed`).
    pub probes: Family<ResultLabels, Counter>,
    /// `orchestra_validator_ledger_tree_size`: records in the replica's change log.
    pub tree_size: Gauge,
    /// `orchestra_validator_anchors_total{result}`: head anchoring attempts (`ok`,
    /// `unsupported`, `error`).
    pub anchors: Family<ResultLabels, Counter>,
    /// `orchestra_validator_chain_errors_total{op}`: failed chain reads and writes.
    pub chain_errors: Family<OpLabels, Counter>,
}

fn label(result: &str) -> ResultLabels {
    ResultLabels {
        result: result.to_string(),
    }
}

impl ValidatorMetrics {
    /// Create and register every metric on `m`.
    pub fn register(m: &Metrics) -> ValidatorMetrics {
        let v = ValidatorMetrics {
            block: Gauge::default(),
            last_tempo: Gauge::default(),
            challenges: Family::default(),
            challenge_latency: latency_histogram(),
            audit_steps: Family::default(),
            orchestration_score: Family::default(),
            ledger_score: Family::default(),
            weight: Family::default(),
            weights_set: Family::default(),
            organic: Family::default(),
            organic_latency: latency_family(),
            organic_retries: Counter::default(),
            proposals: Family::default(),
            probes: Family::default(),
            tree_size: Gauge::default(),
            anchors: Family::default(),
            chain_errors: Family::default(),
        };
        m.register(
            "validator_block",
            "Last chain block the validator processed",
            v.block.clone(),
        );
        m.register(
            "validator_last_tempo_closed",
            "Index of the last tempo whose scores were closed and weights computed",
            v.last_tempo.clone(),
        );
        m.register(
            "validator_challenges",
            "Synthetic challenges by outcome (scored, missing, late, unverified, struck)",
            v.challenges.clone(),
        );
        m.register(
            "validator_challenge_latency_seconds",
            "Time from sending a challenge to receiving the miner's response",
            v.challenge_latency.clone(),
        );
        m.register(
            "validator_audit_steps",
            "Audited pipeline steps by verdict",
            v.audit_steps.clone(),
        );
        m.register(
            "validator_miner_orchestration_score",
            "Orchestration score O of each miner after the last closed tempo",
            v.orchestration_score.clone(),
        );
        m.register(
            "validator_miner_ledger_score",
            "Ledger score L of each miner after the last closed tempo",
            v.ledger_score.clone(),
        );
        m.register(
            "validator_weight",
            "u16 weight last set for each miner and mechanism",
            v.weight.clone(),
        );
        m.register(
            "validator_weights_set",
            "Weight vector submissions by result (ok, committed, error, skipped)",
            v.weights_set.clone(),
        );
        m.register(
            "validator_organic_requests",
            "Organic requests (POST /v1/objectives) by result",
            v.organic.clone(),
        );
        m.register(
            "validator_organic_latency_seconds",
            "Time from an organic request to its answer, by result",
            v.organic_latency.clone(),
        );
        m.register(
            "validator_organic_retries",
            "Organic requests sent on to another miner after one gave no usable response",
            v.organic_retries.clone(),
        );
        m.register(
            "validator_proposals",
            "Ledger proposals judged (first, confirmation, rejected, void)",
            v.proposals.clone(),
        );
        m.register(
            "validator_probes",
            "Probes run to verify Ledger proposals (ok, failed)",
            v.probes.clone(),
        );
        m.register(
            "validator_ledger_tree_size",
            "Records in the validator's Ledger change log",
            v.tree_size.clone(),
        );
        m.register(
            "validator_anchors",
            "Ledger head anchoring attempts (ok, unsupported, error)",
            v.anchors.clone(),
        );
        m.register(
            "validator_chain_errors",
            "Failed chain reads and writes, by operation",
            v.chain_errors.clone(),
        );
        v
    }

    /// Count one `result` in `family`.
    pub fn count(family: &Family<ResultLabels, Counter>, result: &str) {
        family.get_or_create(&label(result)).inc();
    }

    /// Count a failed chain operation.
    pub fn chain_error(&self, op: &str) {
        self.chain_errors
            .get_or_create(&OpLabels { op: op.to_string() })
            .inc();
    }

    /// Record an organic request's outcome and latency.
    pub fn organic_done(&self, result: &str, seconds: f64) {
        Self::count(&self.organic, result);
        self.organic_latency
            .get_or_create(&label(result))
            .observe(seconds);
    }
}
