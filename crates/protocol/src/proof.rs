//! The hash-locked proof of docs/mechanism.md §3.
//!
//! ```text
//! lock0     = blake3::derive_key("orchestra v1 challenge lock",
//!                                challenge_id ‖ salt ‖ validator_ss58 ‖ miner_ss58)
//! L_i       = blake3(L_{i-1} ‖ jcs(step_i without bodies) ‖ request_hash_i ‖ response_hash_i)
//! data_hash = blake3(jcs(standardized_data))
//! root      = blake3(L_n ‖ data_hash)
//! ```
//!
//! A miner feeds a [`ProofBuilder`] step by step as its pipeline executes; a validator runs
//! [`verify`] for checks 1–3 (chain, bodies, time window and dependency order). Checks 4–5
//! (replay set, audits) need state across challenges and live in the validator core.

use crate::body::Body;
use crate::hash::{CanonicalError, Hash32, hash_value, write_step_header_jcs};
use crate::messages::{Challenge, PipelineStep, PlanError, ProofSummary, Response};
use serde_json::Value;
use std::collections::BTreeMap;

/// The `blake3::derive_key` context of the challenge lock.
pub const LOCK_CONTEXT: &str = "orchestra v1 challenge lock";

/// The lock binding a proof to one challenge, one validator and one miner.
pub fn lock0(challenge_id: &Hash32, salt: &Hash32, validator: &str, miner: &str) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(LOCK_CONTEXT);
    hasher.update(&challenge_id.0);
    hasher.update(&salt.0);
    hasher.update(validator.as_bytes());
    hasher.update(miner.as_bytes());
    hasher.finalize().into()
}

/// One link of the chain: `blake3(prev ‖ jcs(header) ‖ request_hash ‖ response_hash)`.
///
/// The header's canonical form is written directly (no `serde_json::Value` in between); it
/// cannot fail, the `Result` stays for callers written against the general path.
pub fn chain_link(prev: &Hash32, step: &PipelineStep) -> Result<Hash32, CanonicalError> {
    let mut buf = Vec::with_capacity(512);
    buf.extend_from_slice(&prev.0);
    write_step_header_jcs(step, &mut buf);
    buf.extend_from_slice(&step.request_hash.0);
    buf.extend_from_slice(&step.response_hash.0);
    Ok(blake3::hash(&buf).into())
}

/// `blake3(head ‖ data_hash)`.
pub fn root(head: &Hash32, data_hash: &Hash32) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&head.0);
    hasher.update(&data_hash.0);
    hasher.finalize().into()
}

/// Builds the proof as a pipeline executes: push each finished step, then finish with the data.
#[derive(Debug, Clone)]
pub struct ProofBuilder {
    lock0: Hash32,
    head: Hash32,
    steps: Vec<PipelineStep>,
}

impl ProofBuilder {
    /// Start the chain for `challenge`, answered by `miner` (ss58).
    pub fn new(challenge: &Challenge, miner: &str) -> Self {
        let lock = lock0(
            &challenge.challenge_id,
            &challenge.salt,
            &challenge.validator,
            miner,
        );
        ProofBuilder {
            lock0: lock,
            head: lock,
            steps: Vec::new(),
        }
    }

    /// Append one executed sub-call; its bodies are hashed here, so the committed hashes always
    /// match what is sent.
    #[allow(clippy::too_many_arguments)]
    pub fn push_call(
        &mut self,
        step_id: &str,
        netuid: u16,
        endpoint: &str,
        subnet_hotkey: &str,
        request: impl Into<Body>,
        response: impl Into<Body>,
        started_at_ms: u64,
        latency_ms: u64,
        cost_rao: u64,
    ) -> Result<&PipelineStep, CanonicalError> {
        let (request, response) = (request.into(), response.into());
        let step = PipelineStep {
            step_id: step_id.to_string(),
            netuid,
            endpoint: endpoint.to_string(),
            subnet_hotkey: subnet_hotkey.to_string(),
            request_hash: request.hash(),
            response_hash: response.hash(),
            request: Some(request),
            response: Some(response),
            started_at_ms,
            latency_ms,
            cost_rao,
            receipt: None,
        };
        self.push_step(step)
    }

    /// Append a step whose hashes are already set (e.g. with a receipt attached, or bodies
    /// omitted because they exceed `max_inline_bytes`).
    pub fn push_step(&mut self, step: PipelineStep) -> Result<&PipelineStep, CanonicalError> {
        self.head = chain_link(&self.head, &step)?;
        self.steps.push(step);
        Ok(&self.steps[self.steps.len() - 1])
    }

    /// The challenge lock the chain started from.
    pub fn lock0(&self) -> Hash32 {
        self.lock0
    }

    /// The chain value so far.
    pub fn head(&self) -> Hash32 {
        self.head
    }

    /// The steps pushed so far, in order.
    pub fn steps(&self) -> &[PipelineStep] {
        &self.steps
    }

    /// Seal the proof over `standardized_data`; returns the summary and the pipeline.
    pub fn finish(
        self,
        standardized_data: &Value,
    ) -> Result<(ProofSummary, Vec<PipelineStep>), CanonicalError> {
        let data_hash = hash_value(standardized_data);
        let summary = ProofSummary {
            lock0: self.lock0,
            head: self.head,
            data_hash,
            root: root(&self.head, &data_hash),
        };
        Ok((summary, self.steps))
    }
}

/// Which body of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// The request.
    Request,
    /// The response.
    Response,
}

/// Why a proof failed checks 1–3. Step indices are positions in the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The response answers another challenge.
    #[error("response names challenge {found}, expected {expected}")]
    WrongChallenge {
        /// The challenge sent.
        expected: Hash32,
        /// The one answered.
        found: Hash32,
    },
    /// `lock0` is not this challenge's lock for this validator and miner.
    #[error("lock0 does not bind this challenge, validator and miner")]
    Lock0Mismatch,
    /// The chain recomputed from the steps does not end at `head`.
    #[error("the step chain does not reproduce the committed head")]
    HeadMismatch,
    /// `data_hash` is not the hash of `standardized_data`.
    #[error("data_hash does not match standardized_data")]
    DataHashMismatch,
    /// `root` is not `blake3(head ‖ data_hash)`.
    #[error("root does not match head and data_hash")]
    RootMismatch,
    /// A body present in the response does not hash to its committed hash.
    #[error("step {index}: {body:?} body does not match its committed hash")]
    BodyHashMismatch {
        /// Pipeline position.
        index: usize,
        /// Which body.
        body: BodyKind,
    },
    /// An integer field is too large to be hashed exactly (above 2^53 − 1).
    #[error("step {index}: integer field exceeds 2^53 - 1")]
    InexactInteger {
        /// Pipeline position.
        index: usize,
    },
    /// The plan is not a valid DAG.
    #[error("invalid plan: {0}")]
    Plan(#[from] PlanError),
    /// A pipeline step names a step id that is not in the plan.
    #[error("step {index}: step id {step_id:?} is not in the plan")]
    UnknownStep {
        /// Pipeline position.
        index: usize,
        /// The id.
        step_id: String,
    },
    /// A step started before the challenge was issued.
    #[error("step {index}: started before the challenge was issued")]
    StartedBeforeIssue {
        /// Pipeline position.
        index: usize,
    },
    /// A step finished after the response was received.
    #[error("step {index}: finished after the response was received")]
    FinishedAfterReceipt {
        /// Pipeline position.
        index: usize,
    },
    /// A step started before a dependency had finished (or without it having run at all).
    #[error("step {index}: started before its dependency {dependency:?} finished")]
    DependencyOrder {
        /// Pipeline position.
        index: usize,
        /// The dependency's step id.
        dependency: String,
    },
    /// A value could not be canonicalised.
    #[error("{0}")]
    Canonical(String),
}

impl From<CanonicalError> for ProofError {
    fn from(e: CanonicalError) -> Self {
        ProofError::Canonical(e.to_string())
    }
}

/// Checks 1–3 of docs/mechanism.md §3 on `response` to `challenge`, received at `received_at_ms`.
///
/// Returns the first failure found, checking in this order: challenge id and lock, plan DAG,
/// per-step bodies and integers, the chain, data hash and root, then time window and dependency
/// order.
pub fn verify(
    challenge: &Challenge,
    response: &Response,
    received_at_ms: u64,
) -> Result<(), ProofError> {
    if response.challenge_id != challenge.challenge_id {
        return Err(ProofError::WrongChallenge {
            expected: challenge.challenge_id,
            found: response.challenge_id,
        });
    }
    let proof = &response.proof;
    let expected_lock = lock0(
        &challenge.challenge_id,
        &challenge.salt,
        &challenge.validator,
        &response.miner,
    );
    if proof.lock0 != expected_lock {
        return Err(ProofError::Lock0Mismatch);
    }
    response.plan.validate()?;

    // Check 2 and the chain of check 1.
    let mut head = expected_lock;
    for (index, step) in response.pipeline.iter().enumerate() {
        if !step.integers_are_exact() {
            return Err(ProofError::InexactInteger { index });
        }
        for (kind, body, committed) in [
            (BodyKind::Request, &step.request, &step.request_hash),
            (BodyKind::Response, &step.response, &step.response_hash),
        ] {
            if let Some(body) = body
                && body.hash() != *committed
            {
                return Err(ProofError::BodyHashMismatch { index, body: kind });
            }
        }
        head = chain_link(&head, step)?;
    }
    if head != proof.head {
        return Err(ProofError::HeadMismatch);
    }
    if hash_value(&response.standardized_data) != proof.data_hash {
        return Err(ProofError::DataHashMismatch);
    }
    if root(&proof.head, &proof.data_hash) != proof.root {
        return Err(ProofError::RootMismatch);
    }

    // Check 3: the window, and dependencies finished before dependents started.
    let mut finished: BTreeMap<&str, u64> = BTreeMap::new();
    for (index, step) in response.pipeline.iter().enumerate() {
        let plan_step =
            response
                .plan
                .step(&step.step_id)
                .ok_or_else(|| ProofError::UnknownStep {
                    index,
                    step_id: step.step_id.clone(),
                })?;
        if step.started_at_ms < challenge.issued_at_ms {
            return Err(ProofError::StartedBeforeIssue { index });
        }
        if step.finished_at_ms() > received_at_ms {
            return Err(ProofError::FinishedAfterReceipt { index });
        }
        for dep in &plan_step.depends_on {
            match finished.get(dep.as_str()) {
                Some(&done) if done <= step.started_at_ms => {}
                _ => {
                    return Err(ProofError::DependencyOrder {
                        index,
                        dependency: dep.clone(),
                    });
                }
            }
        }
        // With retries a step id may run more than once; its earliest finish is what unblocks
        // dependents.
        let done = finished.entry(step.step_id.as_str()).or_insert(u64::MAX);
        *done = (*done).min(step.finished_at_ms());
    }
    Ok(())
}
