//! Subnet Ledger wire types (docs/mechanism.md §5): entries, endpoints, metrics, and the proposals
//! miners send inside a [`Response`](crate::messages::Response).
//!
//! The verification rules, change log and storage live in the `orchestra-ledger` crate; this
//! module only fixes what travels between nodes.

use crate::hash::{CanonicalError, Hash32, hash_canonical};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an endpoint is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Directly on the subnet's miners (Axon/dendrite or btauth/1).
    Dendrite,
    /// Through the subnet owner's gateway API.
    Gateway,
    /// Through a validator's public API.
    ValidatorApi,
}

/// One callable endpoint of a subnet, with the schemas a validator probes against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Name, unique inside the entry (e.g. `search`).
    pub name: String,
    /// The capability tag it serves (e.g. `web_search`).
    pub capability: String,
    /// How it is reached.
    pub access: Access,
    /// HTTP method.
    pub method: String,
    /// HTTP path.
    pub path: String,
    /// Whether the caller needs a key or a registered hotkey.
    pub auth_required: bool,
    /// JSON Schema of requests.
    pub input_schema: Value,
    /// JSON Schema of responses.
    pub output_schema: Value,
    /// A cheap valid request, what validators probe with.
    pub minimal_input: Value,
    /// Whether equal requests give byte-equal responses.
    pub deterministic: bool,
    /// Response fields (JSON pointers) that stay equal across calls even when not deterministic.
    #[serde(default)]
    pub stable_fields: Vec<String>,
}

/// Measured quality and price of a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Median latency, ms.
    pub p50_latency_ms: u64,
    /// 95th percentile latency, ms.
    pub p95_latency_ms: u64,
    /// Share of calls that succeed, 0..=1.
    pub reliability: f64,
    /// Price per call, rao.
    pub cost_per_query_rao: u64,
}

/// Lifecycle state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Serving normally.
    Active,
    /// Serving, but slow or unreliable.
    Degraded,
    /// No longer serving; routers skip it.
    Deprecated,
}

/// One subnet's Ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The subnet.
    pub netuid: u16,
    /// Human name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Capability tags it serves.
    pub capabilities: Vec<String>,
    /// Its endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Measured quality and price.
    pub metrics: Metrics,
    /// Lifecycle state.
    pub status: Status,
    /// Incremented on every accepted change.
    pub version: u64,
    /// Block of the last successful verification.
    pub last_verified_block: u64,
    /// Validators (ss58) that verified the current version.
    #[serde(default)]
    pub verified_by: Vec<String>,
}

/// One changed value inside an entry, addressed by JSON pointer (e.g.
/// `/endpoints/0/output_schema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// JSON pointer into the entry.
    pub path: String,
    /// The value the proposer saw in the Ledger.
    pub old: Value,
    /// The value it proposes.
    pub new: Value,
}

/// What a proposal asks the Ledger to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProposalChange {
    /// Add a subnet that is not in the Ledger.
    NewSubnet {
        /// The full entry.
        entry: Box<Entry>,
    },
    /// Change schema fields of an entry.
    SchemaUpdate {
        /// The changes, all applied or none.
        changes: Vec<Change>,
    },
    /// Mark a subnet deprecated.
    Deprecation {
        /// Why.
        reason: String,
    },
    /// Replace an entry's metrics.
    MetricsUpdate {
        /// The new metrics.
        metrics: Metrics,
    },
}

impl ProposalChange {
    /// The kind of change.
    pub fn kind(&self) -> ProposalKind {
        match self {
            ProposalChange::NewSubnet { .. } => ProposalKind::NewSubnet,
            ProposalChange::SchemaUpdate { .. } => ProposalKind::SchemaUpdate,
            ProposalChange::Deprecation { .. } => ProposalKind::Deprecation,
            ProposalChange::MetricsUpdate { .. } => ProposalKind::MetricsUpdate,
        }
    }

    /// The kind's name as it appears on the wire.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// The kind of a Ledger proposal (docs/mechanism.md §5): the one tag every layer uses — the
/// `kind` field of a [`ProposalChange`] on the wire, change-log records, scoring credits and
/// adversary knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    /// A subnet not yet in the Ledger.
    NewSubnet,
    /// A change of an endpoint's schema fields.
    SchemaUpdate,
    /// A subnet that stopped working.
    Deprecation,
    /// New latency/reliability/price metrics.
    MetricsUpdate,
}

impl ProposalKind {
    /// Every kind, in wire order.
    pub const ALL: [ProposalKind; 4] = [
        ProposalKind::NewSubnet,
        ProposalKind::SchemaUpdate,
        ProposalKind::Deprecation,
        ProposalKind::MetricsUpdate,
    ];

    /// Every kind's wire name, in the order of [`ProposalKind::ALL`].
    pub const NAMES: [&'static str; 4] = [
        "new_subnet",
        "schema_update",
        "deprecation",
        "metrics_update",
    ];

    /// The kind's name as it appears on the wire.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::fmt::Display for ProposalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One probe the proposer made, as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeEvidence {
    /// Endpoint name.
    pub endpoint: String,
    /// BLAKE3 of the canonical request.
    pub request_hash: Hash32,
    /// BLAKE3 of the canonical response (absent when the probe failed).
    #[serde(default)]
    pub response_hash: Option<Hash32>,
    /// When it started, ms.
    pub started_at_ms: u64,
    /// How long it took, ms.
    pub latency_ms: u64,
    /// Whether it succeeded.
    pub ok: bool,
}

/// A Ledger update proposed by a miner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// The subnet concerned.
    pub netuid: u16,
    /// What to change.
    pub change: ProposalChange,
    /// Probes backing the claim.
    #[serde(default)]
    pub evidence: Vec<ProbeEvidence>,
    /// Block at which the proposer first observed the change.
    pub observed_block: u64,
}

/// The content a proposal's id commits to: which subnet and what change, not who saw it when.
#[derive(Serialize)]
struct ProposalContent<'a> {
    netuid: u16,
    change: &'a ProposalChange,
}

impl Proposal {
    /// Content address of the proposed change: equal for every miner proposing the same change,
    /// which is how duplicates (first vs confirmation) are recognised.
    pub fn content_id(&self) -> Result<Hash32, CanonicalError> {
        hash_canonical(&ProposalContent {
            netuid: self.netuid,
            change: &self.change,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_wire_names() {
        for (kind, name) in ProposalKind::ALL.into_iter().zip(ProposalKind::NAMES) {
            assert_eq!(kind.name(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(name));
        }
        let change = ProposalChange::Deprecation {
            reason: "gone".into(),
        };
        let wire = serde_json::to_value(&change).unwrap();
        assert_eq!(wire["kind"], serde_json::json!(change.kind().name()));
    }

    fn metrics_update(p50: u64, observed_block: u64) -> Proposal {
        Proposal {
            netuid: 22,
            change: ProposalChange::MetricsUpdate {
                metrics: Metrics {
                    p50_latency_ms: p50,
                    p95_latency_ms: 900,
                    reliability: 0.97,
                    cost_per_query_rao: 2_000_000,
                },
            },
            evidence: vec![],
            observed_block,
        }
    }

    #[test]
    fn proposal_round_trips_with_kind_tag() {
        let p = metrics_update(340, 7);
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains(r#""kind":"metrics_update""#), "{text}");
        assert_eq!(serde_json::from_str::<Proposal>(&text).unwrap(), p);
    }

    #[test]
    fn content_id_ignores_who_and_when_but_not_what() {
        let a = metrics_update(340, 7);
        let mut b = metrics_update(340, 99);
        b.evidence.push(ProbeEvidence {
            endpoint: "search".into(),
            request_hash: Hash32([1; 32]),
            response_hash: None,
            started_at_ms: 1,
            latency_ms: 2,
            ok: false,
        });
        assert_eq!(a.content_id().unwrap(), b.content_id().unwrap());
        assert_ne!(
            a.content_id().unwrap(),
            metrics_update(341, 7).content_id().unwrap()
        );
    }
}
