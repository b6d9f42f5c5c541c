//! The miner's Prometheus metrics (besides the HTTP ones of [`crate::metrics`]):
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `orchestra_miner_requests_total` | counter | `outcome` (`ok`, `declined`, `shed`, `invalid`, `late`, `timeout`, `error`) | `/orchestrate` requests by outcome |
//! | `orchestra_miner_answer_duration_seconds` | histogram | — | time to answer a challenge |
//! | `orchestra_miner_in_flight` | gauge | — | challenges being answered |
//! | `orchestra_miner_subcalls_total` | counter | `netuid`, `outcome` (`ok`, `timeout`, `unavailable`, `rejected`) | sub-calls sent to subnets |
//! | `orchestra_miner_subcall_duration_seconds` | histogram | `netuid` | sub-call latency |
//! | `orchestra_miner_subcall_cost_rao_total` | counter | — | rao spent on successful sub-calls |
//! | `orchestra_miner_proposals_total` | counter | `kind` | Ledger proposals made |
//! | `orchestra_miner_ledger_entries` | gauge | — | entries in the miner's Ledger view |

use crate::metrics::{LatencyFamily, Metrics, latency_family, latency_histogram};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub(super) outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SubcallLabels {
    pub(super) netuid: u16,
    pub(super) outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct NetuidLabels {
    pub(super) netuid: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub(super) kind: String,
}

/// The miner's own metrics (the table in the module docs).
#[derive(Debug, Clone)]
pub(super) struct MinerMetrics {
    pub(super) requests: Family<OutcomeLabels, Counter>,
    pub(super) answer: Histogram,
    pub(super) in_flight: Gauge,
    pub(super) subcalls: Family<SubcallLabels, Counter>,
    pub(super) subcall_latency: LatencyFamily<NetuidLabels>,
    pub(super) cost: Counter,
    pub(super) proposals: Family<KindLabels, Counter>,
    pub(super) ledger_entries: Gauge,
}

impl MinerMetrics {
    /// Register every metric in `m`.
    pub(super) fn register(m: &Metrics) -> Self {
        let s = MinerMetrics {
            requests: Family::default(),
            answer: latency_histogram(),
            in_flight: Gauge::default(),
            subcalls: Family::default(),
            subcall_latency: latency_family(),
            cost: Counter::default(),
            proposals: Family::default(),
            ledger_entries: Gauge::default(),
        };
        m.register(
            "miner_requests",
            "/orchestrate requests by outcome",
            s.requests.clone(),
        );
        m.register(
            "miner_answer_duration_seconds",
            "Time to answer a challenge",
            s.answer.clone(),
        );
        m.register(
            "miner_in_flight",
            "Challenges being answered",
            s.in_flight.clone(),
        );
        m.register(
            "miner_subcalls",
            "Sub-calls sent to subnets, by netuid and outcome",
            s.subcalls.clone(),
        );
        m.register(
            "miner_subcall_duration_seconds",
            "Sub-call latency by netuid",
            s.subcall_latency.clone(),
        );
        m.register(
            "miner_subcall_cost_rao",
            "Rao spent on successful sub-calls",
            s.cost.clone(),
        );
        m.register(
            "miner_proposals",
            "Ledger proposals made, by kind",
            s.proposals.clone(),
        );
        m.register(
            "miner_ledger_entries",
            "Entries in the miner's Ledger view",
            s.ledger_entries.clone(),
        );
        s
    }

    /// Count one `/orchestrate` request ending with `outcome`.
    pub(super) fn outcome(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }
}
