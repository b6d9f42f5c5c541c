//! Mutable world state of one mock subnet, kept apart from its static model so a driver (the
//! simulator's event loop, the HTTP mock's admin API) applies scenario events to it while the
//! compiled model stays shared and immutable.

use crate::error::StateError;
use crate::model::MockSubnet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What is true of a subnet right now, beyond its static model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubnetState {
    /// Every call fails with `Unavailable` while set.
    pub outage: bool,
    /// The subnet stopped serving: every call fails with `Unavailable` and the true status is
    /// `deprecated`.
    pub deprecated: bool,
    /// Multiplies every price (1 = the file's price).
    pub price_multiplier: f64,
    /// Multiplies every latency (a slow-down short of an outage).
    pub latency_multiplier: f64,
    /// Added to the failure rate, then capped at 1.
    pub extra_failure_rate: f64,
    /// Current output schema version per endpoint; an endpoint not listed serves version 1.
    pub schema_versions: BTreeMap<String, u32>,
    /// Endpoints that disappeared (calls get `UnknownEndpoint`).
    pub removed_endpoints: BTreeSet<String>,
    /// Count of applied events that change the true Ledger entry; the true entry's `version`
    /// is `1 + revision`.
    pub revision: u64,
}

impl Default for SubnetState {
    fn default() -> Self {
        SubnetState {
            outage: false,
            deprecated: false,
            price_multiplier: 1.0,
            latency_multiplier: 1.0,
            extra_failure_rate: 0.0,
            schema_versions: BTreeMap::new(),
            removed_endpoints: BTreeSet::new(),
            revision: 0,
        }
    }
}

impl SubnetState {
    /// The output schema version `endpoint` serves now.
    pub fn schema_version(&self, endpoint: &str) -> u32 {
        self.schema_versions.get(endpoint).copied().unwrap_or(1)
    }
}

/// A scenario event that changes one subnet. Serde-tagged so scenario files can list them
/// (`{ kind = "schema_change", endpoint = "search", version = 2 }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubnetEvent {
    /// Switch an endpoint's output schema.
    SchemaChange {
        /// The endpoint.
        endpoint: String,
        /// The version to serve (1 = the entry's).
        version: u32,
    },
    /// The subnet goes down.
    OutageStart,
    /// The subnet comes back.
    OutageEnd,
    /// Set the price multiplier.
    PriceMultiplier {
        /// New multiplier, finite and `>= 0`.
        multiplier: f64,
    },
    /// Set the latency multiplier.
    LatencyMultiplier {
        /// New multiplier, finite and `> 0`.
        multiplier: f64,
    },
    /// Set the extra failure rate.
    ExtraFailureRate {
        /// New rate, `0..=1`.
        rate: f64,
    },
    /// The subnet is deprecated for good.
    Deprecate,
    /// An endpoint disappears.
    RemoveEndpoint {
        /// The endpoint.
        endpoint: String,
    },
    /// A removed endpoint comes back.
    RestoreEndpoint {
        /// The endpoint.
        endpoint: String,
    },
}

impl MockSubnet {
    /// The state a run starts from: the file's entry as is (deprecated if its status says so).
    pub fn initial_state(&self) -> SubnetState {
        SubnetState {
            deprecated: self.entry().status == orchestra_protocol::ledger::Status::Deprecated,
            ..SubnetState::default()
        }
    }

    /// Apply one scenario event, checking it against this subnet (endpoint and version exist,
    /// numbers in range). On error the state is unchanged.
    pub fn apply(&self, state: &mut SubnetState, event: &SubnetEvent) -> Result<(), StateError> {
        let netuid = self.entry().netuid;
        let unknown = |endpoint: &str| StateError::UnknownEndpoint {
            netuid,
            endpoint: endpoint.to_string(),
        };
        match event {
            SubnetEvent::SchemaChange { endpoint, version } => {
                let versions = self
                    .schema_versions(endpoint)
                    .ok_or_else(|| unknown(endpoint))?;
                if !versions.contains(version) {
                    return Err(StateError::UnknownVersion {
                        netuid,
                        endpoint: endpoint.clone(),
                        version: *version,
                    });
                }
                if state.schema_version(endpoint) != *version {
                    state.schema_versions.insert(endpoint.clone(), *version);
                    state.revision += 1;
                }
            }
            SubnetEvent::OutageStart => state.outage = true,
            SubnetEvent::OutageEnd => state.outage = false,
            SubnetEvent::PriceMultiplier { multiplier } => {
                check(*multiplier, "price multiplier", ">= 0 and finite", |m| {
                    m >= 0.0
                })?;
                state.price_multiplier = *multiplier;
                state.revision += 1;
            }
            SubnetEvent::LatencyMultiplier { multiplier } => {
                check(*multiplier, "latency multiplier", "> 0 and finite", |m| {
                    m > 0.0
                })?;
                state.latency_multiplier = *multiplier;
            }
            SubnetEvent::ExtraFailureRate { rate } => {
                check(*rate, "extra failure rate", "in 0..=1", |r| {
                    (0.0..=1.0).contains(&r)
                })?;
                state.extra_failure_rate = *rate;
            }
            SubnetEvent::Deprecate => {
                if !state.deprecated {
                    state.deprecated = true;
                    state.revision += 1;
                }
            }
            SubnetEvent::RemoveEndpoint { endpoint } => {
                if self.schema_versions(endpoint).is_none() {
                    return Err(unknown(endpoint));
                }
                if state.removed_endpoints.insert(endpoint.clone()) {
                    state.revision += 1;
                }
            }
            SubnetEvent::RestoreEndpoint { endpoint } => {
                if self.schema_versions(endpoint).is_none() {
                    return Err(unknown(endpoint));
                }
                if state.removed_endpoints.remove(endpoint) {
                    state.revision += 1;
                }
            }
        }
        Ok(())
    }
}

fn check(
    value: f64,
    what: &'static str,
    range: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Result<(), StateError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(StateError::OutOfRange { what, range, value })
    }
}
