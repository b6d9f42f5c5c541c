//! The messages of docs/mechanism.md §2: a validator's [`Challenge`], a miner's [`Response`], the plan
//! DAG and the executed pipeline.
//!
//! Types a client writes by hand deny unknown fields, so a misspelt key is an error rather than a
//! silently ignored one.

use crate::body::Body;
use crate::hash::{Hash32, MAX_SAFE_INTEGER};
use crate::ledger::Proposal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What a user asks for: a kind (`market_research`, …), the text, and the template parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// The objective template it was drawn from (e.g. `market_research`).
    pub kind: String,
    /// The objective in words.
    pub text: String,
    /// The template parameters (topic, region, time window, …).
    #[serde(default)]
    pub params: Value,
}

/// A task sent by a validator to a miner (`POST /orchestrate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    /// 32 random bytes naming this challenge.
    pub challenge_id: Hash32,
    /// The issuing validator's ss58 hotkey.
    pub validator: String,
    /// Chain block at issue.
    pub issued_block: u64,
    /// Validator clock at issue, ms since the Unix epoch.
    pub issued_at_ms: u64,
    /// 32 random bytes mixed into the proof lock.
    pub salt: Hash32,
    /// What to do.
    pub objective: Objective,
    /// JSON Schema (2020-12) that `standardized_data` must satisfy.
    pub target_schema: Value,
    /// Time allowed, in ms after `issued_at_ms`.
    pub deadline_ms: u64,
    /// Optional spending cap for sub-calls, in rao.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_rao: Option<u64>,
    /// Replay binding (docs/mechanism.md §3, "Replay binding"): every sub-call request must
    /// carry [`call_nonce`] of this challenge and its step under [`NONCE_FIELD`], and the audit
    /// fails a step whose request does not. Left out of the JSON when `false`, so a challenge
    /// without binding is byte-for-byte what it was before the field existed, and miners that
    /// predate it still parse it; a miner that predates it refuses a challenge with binding on
    /// (challenges deny unknown fields), which scores as no response.
    #[serde(default, skip_serializing_if = "is_false")]
    pub replay_binding: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The request-body field that carries a sub-call's nonce under replay binding.
///
/// It travels in the JSON body, next to `request_id`, rather than in an HTTP header, because
/// the body is the only part of a call that everything downstream covers: the proof commits
/// `request_hash` = BLAKE3(JCS(body)), a subnet's [`Receipt`] signs that hash, and an audit
/// re-sends the committed body verbatim. A header would be outside all three. JSON APIs that
/// accept unknown fields (most, and every shipped mock) ignore it as they ignore `request_id`;
/// an endpoint whose input schema says `additionalProperties: false` cannot carry it, so the
/// miner leaves it out there and the audit does not ask for it ([`accepts_nonce`]).
pub const NONCE_FIELD: &str = "orchestra_nonce";

/// The `blake3::derive_key` context of [`call_nonce`].
pub const NONCE_CONTEXT: &str = "orchestra v1 call nonce";

/// The nonce of step `step_id`'s sub-calls in challenge `challenge_id`:
/// `blake3::derive_key("orchestra v1 call nonce", challenge_id ‖ step_id)`, where the challenge
/// id enters as its 32 bytes and the step id as its UTF-8 bytes; sent as lowercase hex under
/// [`NONCE_FIELD`].
///
/// The challenge id is 32 random bytes the validator draws at issue, so no call can carry the
/// nonce before the challenge exists, and a call made for one challenge carries a nonce no other
/// challenge accepts. It is public to the miner (it has to be, to send it), so it binds a
/// request to a challenge, not a response: see docs/mechanism.md §3 for what that catches.
/// Retries and fallbacks of one step share it; the per-call `request_id` still tells them apart.
pub fn call_nonce(challenge_id: &Hash32, step_id: &str) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(NONCE_CONTEXT);
    hasher.update(&challenge_id.0);
    hasher.update(step_id.as_bytes());
    hasher.finalize().into()
}

/// The nonce a request body carries under [`NONCE_FIELD`], if it carries a string there.
pub fn request_nonce(request: &Value) -> Option<&str> {
    request.get(NONCE_FIELD).and_then(Value::as_str)
}

/// Whether an endpoint with `input_schema` can carry [`NONCE_FIELD`]: unless the schema forbids
/// properties it does not declare (`additionalProperties: false`) or declares the field with
/// another type. The miner and the auditor both decide with this, so an honest miner is never
/// asked for a nonce it could not send.
pub fn accepts_nonce(input_schema: &Value) -> bool {
    match input_schema
        .get("properties")
        .and_then(|p| p.get(NONCE_FIELD))
    {
        Some(declared) => declared.get("type").is_none_or(|t| t == "string"),
        None => input_schema.get("additionalProperties") != Some(&Value::Bool(false)),
    }
}

impl Challenge {
    /// The absolute time (ms) by which the response is due.
    pub fn due_at_ms(&self) -> u64 {
        self.issued_at_ms.saturating_add(self.deadline_ms)
    }
}

/// One node of a plan: a capability routed to one subnet endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// Unique id inside the plan.
    pub id: String,
    /// Capability tag (e.g. `web_search`).
    pub capability: String,
    /// The subnet it is routed to.
    pub netuid: u16,
    /// The endpoint name in that subnet's Ledger entry.
    pub endpoint: String,
    /// Ids of the steps whose results this step needs.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// A miner's plan: a DAG of steps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The steps, in any order that respects `depends_on`.
    pub steps: Vec<PlanStep>,
}

/// Why a plan is not a valid DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Two steps share an id.
    #[error("duplicate step id {0:?}")]
    DuplicateId(String),
    /// A step depends on an id that is not in the plan.
    #[error("step {step:?} depends on unknown step {missing:?}")]
    DanglingDependency {
        /// The step.
        step: String,
        /// The id it names.
        missing: String,
    },
    /// The dependencies form a cycle through this step.
    #[error("dependency cycle through step {0:?}")]
    Cycle(String),
}

impl Plan {
    /// Check that ids are unique, every dependency exists and there is no cycle; returns the
    /// step indices in a topological order (ties broken by position, so it is deterministic).
    pub fn validate(&self) -> Result<Vec<usize>, PlanError> {
        let mut index = BTreeMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            if index.insert(step.id.as_str(), i).is_some() {
                return Err(PlanError::DuplicateId(step.id.clone()));
            }
        }
        let mut pending = vec![0usize; self.steps.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.steps.len()];
        for (i, step) in self.steps.iter().enumerate() {
            for dep in &step.depends_on {
                let &j = index
                    .get(dep.as_str())
                    .ok_or_else(|| PlanError::DanglingDependency {
                        step: step.id.clone(),
                        missing: dep.clone(),
                    })?;
                pending[i] += 1;
                dependents[j].push(i);
            }
        }
        // Kahn's algorithm with a sorted ready set.
        let mut ready: BTreeSet<usize> =
            (0..self.steps.len()).filter(|&i| pending[i] == 0).collect();
        let mut order = Vec::with_capacity(self.steps.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &k in &dependents[i] {
                pending[k] -= 1;
                if pending[k] == 0 {
                    ready.insert(k);
                }
            }
        }
        if let Some(stuck) = (0..self.steps.len()).find(|&i| pending[i] > 0) {
            return Err(PlanError::Cycle(self.steps[stuck].id.clone()));
        }
        Ok(order)
    }

    /// The step with id `id`.
    pub fn step(&self, id: &str) -> Option<&PlanStep> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// A subnet's signature over `request_hash ‖ response_hash ‖ started_at_ms` (the last as 8
/// little-endian bytes), checked against that subnet's hotkey; a step with a valid receipt needs
/// no audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// `sr25519` (default) or `ed25519`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// `0x` + 64-byte signature in hex.
    pub signature: String,
}

fn default_scheme() -> String {
    "sr25519".to_string()
}

/// The bytes a subnet signs in a [`Receipt`].
pub fn receipt_message(
    request_hash: &Hash32,
    response_hash: &Hash32,
    started_at_ms: u64,
) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..32].copy_from_slice(&request_hash.0);
    out[32..64].copy_from_slice(&response_hash.0);
    out[64..].copy_from_slice(&started_at_ms.to_le_bytes());
    out
}

/// One executed sub-call, as committed in the proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineStep {
    /// The plan step this call executed.
    pub step_id: String,
    /// The subnet that served it.
    pub netuid: u16,
    /// The endpoint name.
    pub endpoint: String,
    /// The serving subnet neuron's ss58 hotkey.
    pub subnet_hotkey: String,
    /// Request body; may be omitted (`null`) when larger than `max_inline_bytes`.
    #[serde(default)]
    pub request: Option<Body>,
    /// Response body; may be omitted (`null`) when larger than `max_inline_bytes`.
    #[serde(default)]
    pub response: Option<Body>,
    /// BLAKE3 of the canonical request.
    pub request_hash: Hash32,
    /// BLAKE3 of the canonical response.
    pub response_hash: Hash32,
    /// When the call started, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// How long it took, ms.
    pub latency_ms: u64,
    /// What it cost, rao.
    pub cost_rao: u64,
    /// The subnet's signed receipt, if it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
}

/// The part of a [`PipelineStep`] the proof chain commits to: everything but the bodies.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepHeader<'a> {
    /// See [`PipelineStep::step_id`].
    pub step_id: &'a str,
    /// See [`PipelineStep::netuid`].
    pub netuid: u16,
    /// See [`PipelineStep::endpoint`].
    pub endpoint: &'a str,
    /// See [`PipelineStep::subnet_hotkey`].
    pub subnet_hotkey: &'a str,
    /// See [`PipelineStep::request_hash`].
    pub request_hash: &'a Hash32,
    /// See [`PipelineStep::response_hash`].
    pub response_hash: &'a Hash32,
    /// See [`PipelineStep::started_at_ms`].
    pub started_at_ms: u64,
    /// See [`PipelineStep::latency_ms`].
    pub latency_ms: u64,
    /// See [`PipelineStep::cost_rao`].
    pub cost_rao: u64,
    /// See [`PipelineStep::receipt`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<&'a Receipt>,
}

impl PipelineStep {
    /// The step without its bodies, as the proof chain hashes it.
    pub fn header(&self) -> StepHeader<'_> {
        StepHeader {
            step_id: &self.step_id,
            netuid: self.netuid,
            endpoint: &self.endpoint,
            subnet_hotkey: &self.subnet_hotkey,
            request_hash: &self.request_hash,
            response_hash: &self.response_hash,
            started_at_ms: self.started_at_ms,
            latency_ms: self.latency_ms,
            cost_rao: self.cost_rao,
            receipt: self.receipt.as_ref(),
        }
    }

    /// When the call finished (ms).
    pub fn finished_at_ms(&self) -> u64 {
        self.started_at_ms.saturating_add(self.latency_ms)
    }

    /// Whether every integer field is exactly representable in canonical JSON.
    pub fn integers_are_exact(&self) -> bool {
        [self.started_at_ms, self.latency_ms, self.cost_rao]
            .iter()
            .all(|&v| v <= MAX_SAFE_INTEGER)
    }
}

/// The proof summary a response carries (docs/mechanism.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofSummary {
    /// The challenge lock the chain starts from.
    pub lock0: Hash32,
    /// The chain value after the last step.
    pub head: Hash32,
    /// BLAKE3 of the canonical `standardized_data`.
    pub data_hash: Hash32,
    /// BLAKE3(head ‖ data_hash): what the miner signs for.
    pub root: Hash32,
}

/// A miner's answer to a [`Challenge`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// The challenge answered.
    pub challenge_id: Hash32,
    /// The miner's ss58 hotkey.
    pub miner: String,
    /// The plan it followed.
    pub plan: Plan,
    /// The executed sub-calls, in execution order.
    pub pipeline: Vec<PipelineStep>,
    /// The result, meant to satisfy the challenge's target schema.
    pub standardized_data: Value,
    /// The hash-locked proof.
    pub proof: ProofSummary,
    /// Ledger updates the miner noticed while working.
    #[serde(default)]
    pub ledger_proposals: Vec<Proposal>,
}

impl Response {
    /// Total cost of the executed sub-calls, rao.
    pub fn total_cost_rao(&self) -> u64 {
        self.pipeline
            .iter()
            .fold(0u64, |acc, s| acc.saturating_add(s.cost_rao))
    }
}

/// Why a call to a subnet endpoint (a miner's sub-call, a validator's audit re-execution or
/// probe) produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SubCallFailure {
    /// No answer before the timeout.
    #[error("timed out")]
    Timeout,
    /// Could not reach the endpoint (connection, DNS, 5xx …).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The endpoint answered with an error or an unusable body.
    #[error("rejected: {0}")]
    Rejected(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, deps: &[&str]) -> PlanStep {
        PlanStep {
            id: id.into(),
            capability: "web_search".into(),
            netuid: 22,
            endpoint: "search".into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn plan_validation_orders_a_dag() {
        let plan = Plan {
            steps: vec![step("c", &["a", "b"]), step("a", &[]), step("b", &["a"])],
        };
        assert_eq!(plan.validate().unwrap(), vec![1, 2, 0]);
    }

    #[test]
    fn plan_validation_rejects_cycles_dangling_and_duplicates() {
        let cycle = Plan {
            steps: vec![step("a", &["b"]), step("b", &["a"])],
        };
        assert!(matches!(cycle.validate(), Err(PlanError::Cycle(_))));
        let self_loop = Plan {
            steps: vec![step("a", &["a"])],
        };
        assert_eq!(self_loop.validate(), Err(PlanError::Cycle("a".into())));
        let dangling = Plan {
            steps: vec![step("a", &["zz"])],
        };
        assert_eq!(
            dangling.validate(),
            Err(PlanError::DanglingDependency {
                step: "a".into(),
                missing: "zz".into()
            })
        );
        let dup = Plan {
            steps: vec![step("a", &[]), step("a", &[])],
        };
        assert_eq!(dup.validate(), Err(PlanError::DuplicateId("a".into())));
    }

    /// The nonce is pinned: miners and validators of different versions must derive the same
    /// one, so a change here is a wire change.
    #[test]
    fn call_nonce_golden_value() {
        let id = Hash32([0x11; 32]);
        let nonce = call_nonce(&id, "search");
        assert_eq!(
            nonce.to_hex(),
            "6716af9e66741f6b8906dc40c572f42d403e76a12c92f46790e29d5d6a620dd1"
        );
        // The one-shot KDF over the concatenated material agrees with the streamed one.
        let mut material = id.0.to_vec();
        material.extend_from_slice(b"search");
        assert_eq!(nonce.0, blake3::derive_key(NONCE_CONTEXT, &material));
        // Another step or another challenge gives another nonce.
        assert_ne!(nonce, call_nonce(&id, "synthesize"));
        assert_ne!(nonce, call_nonce(&Hash32([0x12; 32]), "search"));
        let request = serde_json::json!({ NONCE_FIELD: nonce.to_hex(), "q": "x" });
        assert_eq!(request_nonce(&request), Some(nonce.to_hex().as_str()));
        assert_eq!(request_nonce(&serde_json::json!({"q": "x"})), None);
    }

    #[test]
    fn only_schemas_that_forbid_it_cannot_carry_the_nonce() {
        use serde_json::json;
        assert!(accepts_nonce(&json!({"type": "object"})));
        assert!(accepts_nonce(
            &json!({"properties": {"q": {"type": "string"}}})
        ));
        assert!(!accepts_nonce(&json!({
            "properties": {"q": {"type": "string"}}, "additionalProperties": false
        })));
        assert!(accepts_nonce(&json!({
            "properties": {"orchestra_nonce": {"type": "string"}}, "additionalProperties": false
        })));
        assert!(!accepts_nonce(&json!({
            "properties": {"orchestra_nonce": {"type": "integer"}}
        })));
    }

    #[test]
    fn a_challenge_without_binding_serialises_as_before() {
        let text = r#"{"challenge_id":"1111111111111111111111111111111111111111111111111111111111111111","validator":"v","issued_block":1,"issued_at_ms":2,"salt":"2222222222222222222222222222222222222222222222222222222222222222","objective":{"kind":"k","text":"t","params":{}},"target_schema":{},"deadline_ms":3}"#;
        let c: Challenge = serde_json::from_str(text).unwrap();
        assert!(!c.replay_binding);
        assert_eq!(serde_json::to_string(&c).unwrap(), text);
        let bound = Challenge {
            replay_binding: true,
            ..c
        };
        let json = serde_json::to_value(&bound).unwrap();
        assert_eq!(json["replay_binding"], true);
        assert_eq!(serde_json::from_value::<Challenge>(json).unwrap(), bound);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = r#"{"id":"a","capability":"x","netuid":1,"endpoint":"e","depends_om":[]}"#;
        let err = serde_json::from_str::<PlanStep>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `depends_om`"), "{err}");
    }
}
