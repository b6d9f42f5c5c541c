//! The `[behaviour]` table of a mock subnet file: everything about a subnet that is not in its
//! Ledger entry but that the simulator and the HTTP mock need to behave like it.
//!
//! Every key is optional; a file with an empty `[behaviour]` (or none) behaves exactly as its
//! `[entry]` metrics say. Defaults that depend on the entry are resolved when the subnet is
//! loaded, so the values here stay what the file says.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// How a mock subnet behaves beyond its Ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Latency distribution. Default: lognormal with the entry's `p50_latency_ms` and
    /// `p95_latency_ms`.
    #[serde(default)]
    pub latency: Option<Latency>,
    /// Share of calls that fail with a server error at nominal load, `0..=1`. Default:
    /// `1 - entry.metrics.reliability`.
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// Calls per second the subnet serves before it degrades. Default: unlimited.
    #[serde(default)]
    pub capacity_per_s: Option<f64>,
    /// How latency and failures grow when offered load exceeds capacity.
    #[serde(default)]
    pub overload: Overload,
    /// Price per successful call, rao. Default: `entry.metrics.cost_per_query_rao`.
    #[serde(default)]
    pub price_rao: Option<u64>,
    /// Whether successful responses carry a signed receipt. Default: `false`.
    #[serde(default)]
    pub receipts: bool,
    /// How far two answers of a non-deterministic endpoint to the same request agree, `0..=1`:
    /// every word of a string and every other value comes from the request's own answer (a
    /// stream keyed by the request, which a caller cannot predict without calling) with this
    /// probability, decided per request, and is drawn afresh per call otherwise. Search results
    /// for one query, a page fetched twice and two samples of one prompt mostly agree; what an
    /// audit's content check (docs/mechanism.md §3, `audit_agreement_min`) compares. Default: 0,
    /// every call draws everything afresh.
    #[serde(default)]
    pub agreement: f64,
    /// Share of requests the subnet's own validators re-verify (SN13-style spot checks),
    /// `0..=1`. Informational for drivers; the model itself does not use it. Default: none.
    #[serde(default)]
    pub spot_check_rate: Option<f64>,
    /// Secret URI of an sr25519 hotkey to sign receipts with (e.g. `//Subnet22`). Default:
    /// none, meaning the deterministic ed25519 dev key [`receipt_dev_key`](crate::receipt_dev_key)
    /// of the netuid. sr25519 signatures are randomised, so runs that must replay byte for byte
    /// keep the default.
    #[serde(default)]
    pub hotkey_uri: Option<String>,
    /// The subnet's own gateway timeout, ms: a call whose latency would exceed it fails with
    /// `Timeout` after this long. Default: 30 000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Upper bound on generated array lengths (a `count = 200` request still gets at most this
    /// many results), because the simulator makes millions of calls. Default: 8.
    #[serde(default = "default_max_items")]
    pub max_items: u32,
    /// Per-endpoint adjustments, by endpoint name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointBehaviour>,
    /// Alternative output schemas (version 2, 3, …); version 1 is always the entry's.
    #[serde(default)]
    pub schema_versions: Vec<SchemaVersion>,
}

impl Default for Behaviour {
    /// What a file without `[behaviour]` gets: the same defaults as each missing key.
    fn default() -> Self {
        Behaviour {
            latency: None,
            failure_rate: None,
            capacity_per_s: None,
            overload: Overload::default(),
            price_rao: None,
            receipts: false,
            agreement: 0.0,
            spot_check_rate: None,
            hotkey_uri: None,
            timeout_ms: default_timeout_ms(),
            max_items: default_max_items(),
            endpoints: BTreeMap::new(),
            schema_versions: Vec::new(),
        }
    }
}

fn default_timeout_ms() -> u64 {
    30_000
}

fn default_max_items() -> u32 {
    8
}

/// A latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// The family; only `lognormal`, which fits service latencies' long right tail.
    #[serde(default)]
    pub distribution: Distribution,
    /// Median, ms.
    pub p50_ms: u64,
    /// 95th percentile, ms (at least `p50_ms`).
    pub p95_ms: u64,
}

/// Latency distribution families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// `exp(N(mu, sigma))` with `mu = ln p50` and `sigma = ln(p95 / p50) / 1.645`.
    #[default]
    Lognormal,
}

/// The load model: with utilisation `u = offered load / capacity`, nothing changes while
/// `u <= 1`; above it latency is multiplied by `u ^ latency_exponent` and the failure rate gains
/// `failure_slope * (u - 1)` (capped at 1), the extra failures being load-shedding 503s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overload {
    /// Default: 1.5 (queues grow faster than linearly past saturation).
    #[serde(default = "default_latency_exponent")]
    pub latency_exponent: f64,
    /// Default: 0.5 (at three times capacity every call is shed).
    #[serde(default = "default_failure_slope")]
    pub failure_slope: f64,
}

impl Default for Overload {
    fn default() -> Self {
        Overload {
            latency_exponent: default_latency_exponent(),
            failure_slope: default_failure_slope(),
        }
    }
}

fn default_latency_exponent() -> f64 {
    1.5
}

fn default_failure_slope() -> f64 {
    0.5
}

/// Per-endpoint adjustments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointBehaviour {
    /// Multiplies the subnet's latency for this endpoint (image generation is slower than
    /// chat on the same subnet). Default: 1.
    #[serde(default)]
    pub latency_scale: Option<f64>,
    /// Price per successful call of this endpoint, rao. Default: the subnet's price.
    #[serde(default)]
    pub price_rao: Option<u64>,
    /// Length of generated embedding vectors (arrays of numbers named `embedding`, `vector`
    /// or `embeddings`), clamped by the schema's `minItems`/`maxItems`. Default: 16.
    #[serde(default)]
    pub embedding_dim: Option<u32>,
}

/// One alternative output schema of an endpoint, what a schema-drift scenario switches to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaVersion {
    /// The endpoint it belongs to.
    pub endpoint: String,
    /// Its number, at least 2 (1 is the entry's schema), unique per endpoint.
    pub version: u32,
    /// What changed, for people reading scenario results.
    #[serde(default)]
    pub note: Option<String>,
    /// The JSON Schema of responses under this version.
    pub output_schema: Value,
    /// Stable fields (JSON pointers) under this version. Default: the entry's, which only
    /// works if the pointers still resolve.
    #[serde(default)]
    pub stable_fields: Option<Vec<String>>,
}
