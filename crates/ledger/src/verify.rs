//! The validator's verification rules (docs/mechanism.md §5) as pure functions of the current entry,
//! the proposal, the probe results the caller gathered, and blocks.
//!
//! The caller probes (with each endpoint's `minimal_input`) and hands the results in as plain
//! data, so the same rules run in the simulator and in a production validator.

use crate::model::is_schema_path;
use crate::pointer;
use orchestra_protocol::ledger::{Entry, Metrics, Proposal, ProposalChange, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The outcome of one probe of an endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Whether the call succeeded (transport and status).
    pub ok: bool,
    /// How long it took, ms.
    pub latency_ms: u64,
    /// The parsed response body, when there was one.
    #[serde(default)]
    pub response: Option<Value>,
}

/// Probe results per endpoint name. For `schema_update` the names are those of the entry *after*
/// the change (the validator probes the endpoint as proposed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeSet(pub BTreeMap<String, Vec<ProbeResult>>);

impl ProbeSet {
    /// An empty set.
    pub fn new() -> Self {
        ProbeSet::default()
    }

    /// Add results for `endpoint`.
    pub fn with(mut self, endpoint: &str, results: Vec<ProbeResult>) -> Self {
        self.0
            .entry(endpoint.to_string())
            .or_default()
            .extend(results);
        self
    }

    /// Results for one endpoint.
    pub fn get(&self, endpoint: &str) -> &[ProbeResult] {
        self.0.get(endpoint).map_or(&[], Vec::as_slice)
    }

    /// Every result, endpoints in name order.
    pub fn all(&self) -> impl Iterator<Item = &ProbeResult> {
        self.0.values().flatten()
    }
}

/// Thresholds of the rules; defaults are docs/mechanism.md §5's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyParams {
    /// Blocks after arrival within which verification must finish (5).
    pub window_blocks: u64,
    /// Probes a deprecation is judged on (10).
    pub deprecation_probes: usize,
    /// A deprecation holds when fewer than this many of them succeed (3).
    pub deprecation_max_successes: usize,
    /// A probe slower than this counts as failed, ms (5,000).
    pub probe_timeout_ms: u64,
    /// Successful probes a metrics update needs (5).
    pub metrics_min_probes: usize,
    /// Allowed relative gap between probed and proposed p50 (0.30).
    pub metrics_tolerance: f64,
    /// Reject and slash a proposal whose evidence is exactly the evidence of a record another
    /// proposer had accepted (docs/mechanism.md §5 "Defence: copied evidence", mechanism v2;
    /// true).
    pub reject_copied_evidence: bool,
    /// Blocks an accepted record's evidence is remembered for that check (7,200: a day).
    pub evidence_memory_blocks: u64,
}

impl Default for VerifyParams {
    fn default() -> Self {
        VerifyParams {
            window_blocks: 5,
            deprecation_probes: 10,
            deprecation_max_successes: 3,
            probe_timeout_ms: 5_000,
            metrics_min_probes: 5,
            metrics_tolerance: 0.30,
            reject_copied_evidence: true,
            evidence_memory_blocks: 7_200,
        }
    }
}

/// Why a proposal was rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RejectReason {
    /// Verified more than the window after arrival.
    #[error(
        "verified at block {verified_block}, more than the window after arrival at {arrival_block}"
    )]
    Late {
        /// Arrival block.
        arrival_block: u64,
        /// Verification block.
        verified_block: u64,
    },
    /// `new_subnet` for a subnet already in the Ledger.
    #[error("subnet already in the Ledger")]
    AlreadyExists,
    /// An update for a subnet not in the Ledger.
    #[error("subnet not in the Ledger")]
    UnknownSubnet,
    /// The subnet is deprecated; only a new_subnet-free, fresh proposal could revive it.
    #[error("subnet is deprecated")]
    AlreadyDeprecated,
    /// The proposed entry or change is not well formed.
    #[error("malformed proposal: {0}")]
    Malformed(String),
    /// A schema in the proposal does not compile.
    #[error("endpoint {endpoint}: invalid JSON Schema")]
    InvalidSchema {
        /// Endpoint name.
        endpoint: String,
    },
    /// The caller supplied no probe for an endpoint the rule needs.
    #[error("endpoint {endpoint}: no probe result supplied")]
    MissingProbe {
        /// Endpoint name.
        endpoint: String,
    },
    /// The endpoint's probe failed.
    #[error("endpoint {endpoint}: probe failed")]
    ProbeFailed {
        /// Endpoint name.
        endpoint: String,
    },
    /// The live response does not conform to the proposed output schema.
    #[error("endpoint {endpoint}: response does not conform to the proposed schema")]
    NonConforming {
        /// Endpoint name.
        endpoint: String,
    },
    /// A change's `old` differs from the Ledger's value at its path.
    #[error("value at {path} differs from the proposal's old value")]
    OldMismatch {
        /// The pointer.
        path: String,
    },
    /// The live response still conforms to the old schema: nothing changed.
    #[error("endpoint {endpoint}: response still conforms to the old schema")]
    StillFitsOld {
        /// Endpoint name.
        endpoint: String,
    },
    /// A schema update changes nothing or touches a path outside the endpoints.
    #[error("path {path} may not be changed by a schema update")]
    DisallowedPath {
        /// The pointer.
        path: String,
    },
    /// Too few probe results to judge (the validator's shortfall, not the proposer's).
    #[error("need {needed} probe results, have {got}")]
    InsufficientProbes {
        /// Needed.
        needed: usize,
        /// Supplied.
        got: usize,
    },
    /// A deprecation while the subnet still answers.
    #[error("{successes} of {probes} probes succeeded; the subnet still serves")]
    StillServing {
        /// Successful probes.
        successes: usize,
        /// Probes judged.
        probes: usize,
    },
    /// Probed p50 outside the tolerance of the proposed one.
    #[error(
        "probed p50 {measured_p50_ms} ms is outside tolerance of the proposed {proposed_p50_ms} ms"
    )]
    MetricsOutOfTolerance {
        /// Median of probe latencies.
        measured_p50_ms: f64,
        /// Proposed p50.
        proposed_p50_ms: u64,
    },
    /// A duplicate of a change that was applied more than the window ago: no credit, no slash.
    #[error("duplicate of a change already applied outside the window")]
    AlreadyApplied,
    /// The evidence is exactly what another proposer submitted with an accepted record: the
    /// probes it claims were someone else's.
    #[error("evidence copied from {original}'s accepted proposal")]
    CopiedEvidence {
        /// The proposer whose record first carried this evidence.
        original: String,
    },
}

impl RejectReason {
    /// Whether the proposer is slashed. Rejections that are the validator's own shortfall or
    /// timing (late, too few probes, a duplicate after the window) are not the proposer's fault
    /// and are not slashed; a false or stale claim is.
    pub fn slashable(&self) -> bool {
        !matches!(
            self,
            RejectReason::Late { .. }
                | RejectReason::InsufficientProbes { .. }
                | RejectReason::AlreadyApplied
        )
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::Late { .. } => "late",
            RejectReason::AlreadyExists => "already_exists",
            RejectReason::UnknownSubnet => "unknown_subnet",
            RejectReason::AlreadyDeprecated => "already_deprecated",
            RejectReason::Malformed(_) => "malformed",
            RejectReason::InvalidSchema { .. } => "invalid_schema",
            RejectReason::MissingProbe { .. } => "missing_probe",
            RejectReason::ProbeFailed { .. } => "probe_failed",
            RejectReason::NonConforming { .. } => "non_conforming",
            RejectReason::OldMismatch { .. } => "old_mismatch",
            RejectReason::StillFitsOld { .. } => "still_fits_old",
            RejectReason::DisallowedPath { .. } => "disallowed_path",
            RejectReason::InsufficientProbes { .. } => "insufficient_probes",
            RejectReason::StillServing { .. } => "still_serving",
            RejectReason::MetricsOutOfTolerance { .. } => "metrics_out_of_tolerance",
            RejectReason::AlreadyApplied => "already_applied",
            RejectReason::CopiedEvidence { .. } => "copied_evidence",
        }
    }
}

/// The verdict on one proposal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The claim holds.
    Accepted,
    /// The claim does not hold, or could not be judged in time.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
}

impl Verdict {
    fn reject(reason: RejectReason) -> Verdict {
        Verdict::Rejected { reason }
    }
}

/// Compile a JSON Schema; `None` if it is not a valid schema (no remote `$ref` is fetched: the
/// crate is built without resolvers).
fn compile(schema: &Value) -> Option<jsonschema::Validator> {
    jsonschema::validator_for(schema).ok()
}

/// Whether `instance` conforms to `schema` (false when the schema does not compile).
pub fn conforms(schema: &Value, instance: &Value) -> bool {
    compile(schema).is_some_and(|v| v.is_valid(instance))
}

/// The first successful probe's response for `endpoint`, or why there is none.
fn live_response<'a>(probes: &'a ProbeSet, endpoint: &str) -> Result<&'a Value, RejectReason> {
    let results = probes.get(endpoint);
    if results.is_empty() {
        return Err(RejectReason::MissingProbe {
            endpoint: endpoint.into(),
        });
    }
    results
        .iter()
        .find(|r| r.ok)
        .and_then(|r| r.response.as_ref())
        .ok_or_else(|| RejectReason::ProbeFailed {
            endpoint: endpoint.into(),
        })
}

/// Verify `proposal` against the `current` entry of its subnet (`None` if absent), with the
/// caller's probe results, at `current_block`, for a proposal that arrived at `arrival_block`.
pub fn verify(
    current: Option<&Entry>,
    proposal: &Proposal,
    probes: &ProbeSet,
    current_block: u64,
    arrival_block: u64,
    params: &VerifyParams,
) -> Verdict {
    if current_block.saturating_sub(arrival_block) > params.window_blocks {
        return Verdict::reject(RejectReason::Late {
            arrival_block,
            verified_block: current_block,
        });
    }
    let result = match (&proposal.change, current) {
        (ProposalChange::NewSubnet { entry }, None) => {
            verify_new_subnet(proposal.netuid, entry, probes)
        }
        (ProposalChange::NewSubnet { .. }, Some(_)) => Err(RejectReason::AlreadyExists),
        (_, None) => Err(RejectReason::UnknownSubnet),
        (_, Some(cur)) if cur.status == Status::Deprecated => Err(RejectReason::AlreadyDeprecated),
        (ProposalChange::SchemaUpdate { changes }, Some(cur)) => {
            verify_schema_update(cur, changes, probes)
        }
        (ProposalChange::Deprecation { .. }, Some(_)) => verify_deprecation(probes, params),
        (ProposalChange::MetricsUpdate { metrics }, Some(_)) => {
            verify_metrics(metrics, probes, params)
        }
    };
    match result {
        Ok(()) => Verdict::Accepted,
        Err(reason) => Verdict::reject(reason),
    }
}

/// `new_subnet`: well-formed entry; every endpoint probed successfully, and each response
/// conforms to its proposed output schema.
fn verify_new_subnet(netuid: u16, entry: &Entry, probes: &ProbeSet) -> Result<(), RejectReason> {
    check_entry_shape(entry)?;
    if entry.netuid != netuid {
        return Err(RejectReason::Malformed(
            "entry netuid differs from the proposal's".into(),
        ));
    }
    for ep in &entry.endpoints {
        let validator = compile(&ep.output_schema).ok_or_else(|| RejectReason::InvalidSchema {
            endpoint: ep.name.clone(),
        })?;
        let response = live_response(probes, &ep.name)?;
        if !validator.is_valid(response) {
            return Err(RejectReason::NonConforming {
                endpoint: ep.name.clone(),
            });
        }
    }
    Ok(())
}

/// Structural checks an entry must pass before anything is probed.
fn check_entry_shape(entry: &Entry) -> Result<(), RejectReason> {
    if entry.endpoints.is_empty() {
        return Err(RejectReason::Malformed("entry has no endpoints".into()));
    }
    let mut names = std::collections::BTreeSet::new();
    for ep in &entry.endpoints {
        if !names.insert(ep.name.as_str()) {
            return Err(RejectReason::Malformed(format!(
                "duplicate endpoint name {:?}",
                ep.name
            )));
        }
        if compile(&ep.input_schema).is_none() {
            return Err(RejectReason::InvalidSchema {
                endpoint: ep.name.clone(),
            });
        }
    }
    check_metrics(&entry.metrics)
}

fn check_metrics(m: &Metrics) -> Result<(), RejectReason> {
    if !(0.0..=1.0).contains(&m.reliability) || m.p95_latency_ms < m.p50_latency_ms {
        return Err(RejectReason::Malformed(
            "metrics out of range (reliability in 0..=1, p95 >= p50)".into(),
        ));
    }
    Ok(())
}

/// `schema_update`: each `old` equals the Ledger's value; the changed entry is well formed; every
/// endpoint whose output schema changed answers with a response that conforms to the new schema
/// and not to the old one; every other touched endpoint still answers.
fn verify_schema_update(
    current: &Entry,
    changes: &[orchestra_protocol::ledger::Change],
    probes: &ProbeSet,
) -> Result<(), RejectReason> {
    if changes.is_empty() {
        return Err(RejectReason::Malformed(
            "schema update without changes".into(),
        ));
    }
    let mut doc =
        serde_json::to_value(current).map_err(|e| RejectReason::Malformed(e.to_string()))?;
    let mut touched = std::collections::BTreeSet::new();
    for c in changes {
        if !is_schema_path(&c.path) {
            return Err(RejectReason::DisallowedPath {
                path: c.path.clone(),
            });
        }
        let toks = pointer::tokens(&c.path).map_err(|e| RejectReason::Malformed(e.to_string()))?;
        if toks.get(2).is_some_and(|f| f == "name") {
            // Renames would make probe results ambiguous; a rename is a new endpoint.
            return Err(RejectReason::DisallowedPath {
                path: c.path.clone(),
            });
        }
        let at = pointer::get(&doc, &c.path).map_err(|e| RejectReason::Malformed(e.to_string()))?;
        if at != c.old {
            return Err(RejectReason::OldMismatch {
                path: c.path.clone(),
            });
        }
        pointer::set(&mut doc, &c.path, c.new.clone())
            .map_err(|e| RejectReason::Malformed(e.to_string()))?;
        if let Some(i) = toks.get(1).and_then(|t| t.parse::<usize>().ok()) {
            touched.insert(i);
        }
    }
    let next: Entry =
        serde_json::from_value(doc).map_err(|e| RejectReason::Malformed(e.to_string()))?;
    if next == *current {
        return Err(RejectReason::Malformed(
            "schema update changes nothing".into(),
        ));
    }
    check_entry_shape(&next)?;
    for i in touched {
        let (Some(old_ep), Some(new_ep)) = (current.endpoints.get(i), next.endpoints.get(i)) else {
            return Err(RejectReason::Malformed(format!("no endpoint {i}")));
        };
        let response = live_response(probes, &new_ep.name)?;
        if old_ep.output_schema != new_ep.output_schema {
            let new_v =
                compile(&new_ep.output_schema).ok_or_else(|| RejectReason::InvalidSchema {
                    endpoint: new_ep.name.clone(),
                })?;
            if !new_v.is_valid(response) {
                return Err(RejectReason::NonConforming {
                    endpoint: new_ep.name.clone(),
                });
            }
            if conforms(&old_ep.output_schema, response) {
                return Err(RejectReason::StillFitsOld {
                    endpoint: new_ep.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// `deprecation`: judged on the first `deprecation_probes` results (all endpoints, name order);
/// a probe slower than the timeout counts as failed; holds when fewer than
/// `deprecation_max_successes` succeed.
fn verify_deprecation(probes: &ProbeSet, params: &VerifyParams) -> Result<(), RejectReason> {
    let judged: Vec<&ProbeResult> = probes.all().take(params.deprecation_probes).collect();
    if judged.len() < params.deprecation_probes {
        return Err(RejectReason::InsufficientProbes {
            needed: params.deprecation_probes,
            got: judged.len(),
        });
    }
    let successes = judged
        .iter()
        .filter(|r| r.ok && r.latency_ms <= params.probe_timeout_ms)
        .count();
    if successes >= params.deprecation_max_successes {
        return Err(RejectReason::StillServing {
            successes,
            probes: judged.len(),
        });
    }
    Ok(())
}

/// `metrics_update`: the median latency of successful probes (at least `metrics_min_probes`) lies
/// within `metrics_tolerance` of the proposed p50.
fn verify_metrics(
    proposed: &Metrics,
    probes: &ProbeSet,
    params: &VerifyParams,
) -> Result<(), RejectReason> {
    check_metrics(proposed)?;
    let mut lat: Vec<u64> = probes
        .all()
        .filter(|r| r.ok && r.latency_ms <= params.probe_timeout_ms)
        .map(|r| r.latency_ms)
        .collect();
    if lat.len() < params.metrics_min_probes {
        return Err(RejectReason::InsufficientProbes {
            needed: params.metrics_min_probes,
            got: lat.len(),
        });
    }
    let measured = median(&mut lat);
    let p = proposed.p50_latency_ms as f64;
    if (measured - p).abs() > params.metrics_tolerance * p {
        return Err(RejectReason::MetricsOutOfTolerance {
            measured_p50_ms: measured,
            proposed_p50_ms: proposed.p50_latency_ms,
        });
    }
    Ok(())
}

/// Median (mean of the two middle values for an even count). `xs` must be non-empty.
fn median(xs: &mut [u64]) -> f64 {
    xs.sort_unstable();
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2] as f64
    } else {
        (xs[n / 2 - 1] as f64 + xs[n / 2] as f64) / 2.0
    }
}
