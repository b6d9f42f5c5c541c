//! [`ProposalDetector`]: diffs live sub-responses against the Ledger and emits proposals.
//!
//! - **schema_update**: a successful response that does not conform to its endpoint's Ledger
//!   output schema. The proposed schema is inferred from the live response
//!   ([`infer_schema`](crate::assemble::infer_schema)), so it accepts what the validator's probe
//!   will see and, the response having failed the old schema, it differs from the old one.
//! - **metrics_update**: over the last `window` calls to a subnet, the p50 latency of successful
//!   calls drifts more than `drift_threshold` (30 %) from the Ledger's p50, on at least
//!   `min_latency_samples` samples (the validator needs ≥ 5 probes within ±30 %).
//! - **deprecation**: at least `deprecation_min_calls` recent calls and fewer than
//!   `deprecation_max_successes` of the last ones succeeded.
//!
//! Proposals are costly when wrong (slashing), so each (subnet, kind, endpoint) is proposed at
//! most once per `cooldown_blocks`, and the window of a subnet is cleared after a metrics or
//! deprecation proposal so the next one rests on fresh evidence.

use crate::assemble::infer_schema;
use crate::execution::Observation;
use crate::view::LedgerView;
use orchestra_protocol::ledger::{Change, Metrics, ProbeEvidence, Proposal, ProposalChange};
use orchestra_protocol::messages::PipelineStep;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Detector thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Emit schema updates (default true).
    pub schema_updates: bool,
    /// Emit metrics updates (default true).
    pub metrics_updates: bool,
    /// Emit deprecations (default true).
    pub deprecations: bool,
    /// Calls remembered per subnet (default 32).
    pub window: usize,
    /// Successful calls needed before judging latency drift (default 20: subnet latencies are
    /// heavy-tailed, and a 5-call median misjudges p50 by more than 30 % about half the time,
    /// which gets honest proposals slashed).
    pub min_latency_samples: usize,
    /// Relative p50 drift that triggers a metrics update (default 0.5, well past the validator's
    /// ±30 % acceptance band, so a proposal is made only when the drift is real).
    pub drift_threshold: f64,
    /// Recent calls needed before judging a deprecation (default 10).
    pub deprecation_min_calls: usize,
    /// A deprecation is proposed when fewer than this many of the last `deprecation_min_calls`
    /// succeeded (default 3, as the validator's rule).
    pub deprecation_max_successes: usize,
    /// Blocks before the same proposal may be made again (default 100).
    pub cooldown_blocks: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            schema_updates: true,
            metrics_updates: true,
            deprecations: true,
            window: 32,
            min_latency_samples: 20,
            drift_threshold: 0.5,
            deprecation_min_calls: 10,
            deprecation_max_successes: 3,
            cooldown_blocks: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    ok: bool,
    latency_ms: u64,
    block: u64,
    evidence: ProbeEvidence,
}

/// Stateful across challenges: remembers recent calls per subnet and what it already proposed.
#[derive(Debug, Clone, Default)]
pub struct ProposalDetector {
    config: DetectorConfig,
    samples: BTreeMap<u16, VecDeque<Sample>>,
    proposed: BTreeMap<(u16, &'static str, usize), u64>,
}

/// Median of a non-empty sorted slice, and its p95 (nearest rank).
fn p50_p95(sorted: &[u64]) -> (f64, u64) {
    let n = sorted.len();
    let p50 = if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    };
    let rank = ((0.95 * n as f64).ceil() as usize).clamp(1, n);
    (p50, sorted[rank - 1])
}

impl ProposalDetector {
    /// A detector with `config`.
    pub fn new(config: DetectorConfig) -> Self {
        ProposalDetector {
            config,
            ..Default::default()
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    fn cooled(&self, key: (u16, &'static str, usize), block: u64) -> bool {
        self.proposed
            .get(&key)
            .is_none_or(|&at| block.saturating_sub(at) >= self.config.cooldown_blocks)
    }

    /// Learn from one challenge's calls (`observations`, whose pipeline indices point into
    /// `pipeline`) at `block`, and return the proposals they justify against `view`.
    pub fn observe(
        &mut self,
        view: &LedgerView,
        observations: &[Observation],
        pipeline: &[PipelineStep],
        block: u64,
    ) -> Vec<Proposal> {
        let mut out = Vec::new();
        for obs in observations {
            let evidence = ProbeEvidence {
                endpoint: obs.endpoint.clone(),
                request_hash: obs.request_hash,
                response_hash: obs.response_hash,
                started_at_ms: obs.started_at_ms,
                latency_ms: obs.latency_ms,
                ok: obs.ok,
            };
            if self.config.schema_updates
                && let Some(p) = self.schema_drift(view, obs, pipeline, &evidence, block)
            {
                out.push(p);
            }
            let window = self.config.window.max(1);
            let q = self.samples.entry(obs.netuid).or_default();
            q.push_back(Sample {
                ok: obs.ok,
                latency_ms: obs.latency_ms,
                block,
                evidence,
            });
            while q.len() > window {
                q.pop_front();
            }
        }
        let touched: Vec<u16> = {
            let mut t: Vec<u16> = observations.iter().map(|o| o.netuid).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        for netuid in touched {
            if self.config.deprecations
                && let Some(p) = self.deprecation(view, netuid, block)
            {
                out.push(p);
                continue;
            }
            if self.config.metrics_updates
                && let Some(p) = self.metrics_drift(view, netuid, block)
            {
                out.push(p);
            }
        }
        out
    }

    fn schema_drift(
        &mut self,
        view: &LedgerView,
        obs: &Observation,
        pipeline: &[PipelineStep],
        evidence: &ProbeEvidence,
        block: u64,
    ) -> Option<Proposal> {
        let response = pipeline.get(obs.pipeline_index?)?.response.as_ref()?;
        // The observation's index came from the view the route was made from; re-resolve by
        // name in case this view is newer.
        let (index, ep) = view.endpoint(obs.netuid, &obs.endpoint)?;
        let schema = view.output_schema(obs.netuid, index)?;
        if schema.is_valid(response) {
            return None;
        }
        let key = (obs.netuid, "schema_update", index);
        if !self.cooled(key, block) {
            return None;
        }
        self.proposed.insert(key, block);
        Some(Proposal {
            netuid: obs.netuid,
            change: ProposalChange::SchemaUpdate {
                changes: vec![Change {
                    path: format!("/endpoints/{index}/output_schema"),
                    old: ep.output_schema.clone(),
                    new: infer_schema(response),
                }],
            },
            evidence: vec![evidence.clone()],
            observed_block: block,
        })
    }

    fn metrics_drift(&mut self, view: &LedgerView, netuid: u16, block: u64) -> Option<Proposal> {
        let entry = view.entry(netuid)?;
        let q = self.samples.get(&netuid)?;
        let mut lat: Vec<u64> = q.iter().filter(|s| s.ok).map(|s| s.latency_ms).collect();
        if lat.len() < self.config.min_latency_samples.max(1) {
            return None;
        }
        lat.sort_unstable();
        let (p50, p95) = p50_p95(&lat);
        let ledger_p50 = entry.metrics.p50_latency_ms as f64;
        let drift = if ledger_p50 > 0.0 {
            (p50 - ledger_p50).abs() / ledger_p50
        } else if p50 > 0.0 {
            f64::INFINITY
        } else {
            0.0
        };
        if drift <= self.config.drift_threshold {
            return None;
        }
        let key = (netuid, "metrics_update", 0);
        if !self.cooled(key, block) {
            return None;
        }
        self.proposed.insert(key, block);
        let p50 = p50.round() as u64;
        let metrics = Metrics {
            p50_latency_ms: p50,
            p95_latency_ms: p95.max(p50),
            reliability: q.iter().filter(|s| s.ok).count() as f64 / q.len() as f64,
            cost_per_query_rao: entry.metrics.cost_per_query_rao,
        };
        let observed_block = q.iter().map(|s| s.block).min().unwrap_or(block);
        let evidence = q.iter().map(|s| s.evidence.clone()).collect();
        self.samples.remove(&netuid);
        Some(Proposal {
            netuid,
            change: ProposalChange::MetricsUpdate { metrics },
            evidence,
            observed_block,
        })
    }

    fn deprecation(&mut self, view: &LedgerView, netuid: u16, block: u64) -> Option<Proposal> {
        view.entry(netuid)?;
        let q = self.samples.get(&netuid)?;
        let n = self.config.deprecation_min_calls.max(1);
        if q.len() < n {
            return None;
        }
        let recent = q.iter().skip(q.len() - n);
        let successes = recent.clone().filter(|s| s.ok).count();
        if successes >= self.config.deprecation_max_successes {
            return None;
        }
        let key = (netuid, "deprecation", 0);
        if !self.cooled(key, block) {
            return None;
        }
        self.proposed.insert(key, block);
        let evidence: Vec<ProbeEvidence> = recent.map(|s| s.evidence.clone()).collect();
        let observed_block = q.iter().map(|s| s.block).min().unwrap_or(block);
        self.samples.remove(&netuid);
        Some(Proposal {
            netuid,
            change: ProposalChange::Deprecation {
                reason: format!("{successes} of the last {n} calls succeeded"),
            },
            evidence,
            observed_block,
        })
    }
}
