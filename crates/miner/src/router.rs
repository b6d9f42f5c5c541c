//! [`Router`]: capability → ranked subnet endpoints, from the Ledger's price, latency and
//! reliability.
//!
//! Deprecated entries are never routed to. Entries past the metrics TTL ("stale": their numbers
//! may be wrong) are ranked after every fresh one, and only kept at all when
//! [`RouterConfig::stale_as_last_resort`] is set, because a stale endpoint that still answers beats
//! a step that cannot run. The ranking is a pure function of the view, so two miners with equal
//! views route identically; ties break by netuid, then endpoint name.

use crate::view::LedgerView;
use orchestra_protocol::ledger::Status;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// How the router ranks candidates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// Weight of reliability (higher is better), default 0.5.
    pub reliability_weight: f64,
    /// Weight of price, relative to the dearest candidate (lower is better), default 0.3.
    pub price_weight: f64,
    /// Weight of p50 latency, relative to the slowest candidate (lower is better), default 0.2.
    pub latency_weight: f64,
    /// Score subtracted from a `degraded` entry, default 0.2.
    pub degraded_penalty: f64,
    /// An entry not verified within this many blocks is stale (default 7200 = the 1-day metrics
    /// TTL at 12 s blocks).
    pub stale_after_blocks: u64,
    /// Keep stale entries as fallbacks after every fresh one (default true).
    pub stale_as_last_resort: bool,
    /// At most this many candidates per capability: the primary plus fallbacks (default 4).
    pub max_candidates: usize,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            reliability_weight: 0.5,
            price_weight: 0.3,
            latency_weight: 0.2,
            degraded_penalty: 0.2,
            stale_after_blocks: 7_200,
            stale_as_last_resort: true,
            max_candidates: 4,
        }
    }
}

/// One routable endpoint, with the Ledger numbers it was chosen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    /// The subnet.
    pub netuid: u16,
    /// Endpoint name.
    pub endpoint: String,
    /// Index of the endpoint in the entry (stable within one view).
    pub endpoint_index: usize,
    /// Price per call, rao.
    pub cost_rao: u64,
    /// Ledger p50 latency, ms.
    pub p50_latency_ms: u64,
    /// Ledger p95 latency, ms.
    pub p95_latency_ms: u64,
    /// Ledger reliability.
    pub reliability: f64,
    /// Whether equal requests give equal responses.
    pub deterministic: bool,
    /// Whether the entry is past the staleness threshold.
    pub stale: bool,
    /// The ranking score (higher first).
    pub score: f64,
    /// The endpoint's input schema when it declares properties: requests are shaped to it.
    #[serde(skip)]
    pub input_shape: Option<Arc<Value>>,
}

/// Ranks endpoints for a capability.
#[derive(Debug, Clone, Default)]
pub struct Router {
    config: RouterConfig,
}

impl Router {
    /// A router with `config`.
    pub fn new(config: RouterConfig) -> Self {
        Router { config }
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Candidates for `capability` at `current_block`, best first: fresh ones by score, then (if
    /// allowed) stale ones by score; never deprecated ones. Empty if nothing serves it.
    pub fn routes(&self, view: &LedgerView, capability: &str, current_block: u64) -> Vec<Route> {
        let c = &self.config;
        let mut out: Vec<Route> = Vec::new();
        for &(netuid, index) in view.endpoints_for(capability) {
            let Some(entry) = view.entry(netuid) else {
                continue;
            };
            let Some(ep) = entry.endpoints.get(index) else {
                continue;
            };
            if entry.status == Status::Deprecated {
                continue;
            }
            let stale = view.is_stale(netuid, current_block, c.stale_after_blocks);
            if stale && !c.stale_as_last_resort {
                continue;
            }
            let m = entry.metrics;
            out.push(Route {
                netuid,
                endpoint: ep.name.clone(),
                endpoint_index: index,
                cost_rao: m.cost_per_query_rao,
                p50_latency_ms: m.p50_latency_ms,
                p95_latency_ms: m.p95_latency_ms.max(m.p50_latency_ms),
                reliability: if m.reliability.is_finite() {
                    m.reliability.clamp(0.0, 1.0)
                } else {
                    0.0
                },
                deterministic: ep.deterministic,
                stale,
                input_shape: view.input_shape(netuid, index).cloned(),
                score: if entry.status == Status::Degraded {
                    -c.degraded_penalty
                } else {
                    0.0
                },
            });
        }
        let max_cost = out.iter().map(|r| r.cost_rao).max().unwrap_or(0).max(1) as f64;
        let max_p50 = out
            .iter()
            .map(|r| r.p50_latency_ms)
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        for r in &mut out {
            r.score += c.reliability_weight * r.reliability
                - c.price_weight * (r.cost_rao as f64 / max_cost)
                - c.latency_weight * (r.p50_latency_ms as f64 / max_p50);
            if !r.score.is_finite() {
                r.score = f64::MIN;
            }
        }
        out.sort_by(|a, b| {
            a.stale
                .cmp(&b.stale)
                .then(b.score.total_cmp(&a.score))
                .then(a.netuid.cmp(&b.netuid))
                .then(a.endpoint.cmp(&b.endpoint))
        });
        out.truncate(c.max_candidates.max(1));
        out
    }
}
