//! [`Execution`]: the sans-IO state machine that runs one routed plan.
//!
//! ```text
//! let mut exec = Execution::new(&challenge, miner_ss58, routed_plan, config)?;
//! loop {
//!     while let Some(call) = exec.poll_subcall(now_ms) { driver.send(call) }
//!     // … a result arrives, or the time poll_timeout() asked for comes …
//!     exec.on_subcall_result(call_id, outcome, now_ms);   // or exec.handle_timeout(now_ms)
//!     if exec.is_finished() { break }
//! }
//! let out = exec.finish(now_ms)?;                          // data + pipeline + proof
//! ```
//!
//! A step is issued once every dependency has settled and at least one succeeded. A failed call is
//! retried on the same route up to `max_attempts_per_route` times, then falls back to the next
//! ranked route, as long as the call can still finish before the challenge's deadline (less a
//! margin). Every successful call goes into the hash-locked proof the moment it completes, so the
//! proof is in completion order, which is what check 3 (dependencies finish before dependents
//! start) needs. Failed calls are not committed, nor is a reply the proof could not commit
//! exactly (a cost above 2^53 − 1 rao, which canonical JSON cannot print exactly): it counts as
//! rejected. The response's plan lists only the steps that succeeded, with dependencies on failed
//! steps rewired to their own dependencies.
//!
//! Time only moves forward: a `now_ms` earlier than one already seen (a wall clock stepped back)
//! is taken as the latest time seen, so a dependent never starts before its dependencies
//! finished in the proof.
//!
//! # Invariants
//!
//! Checked with `debug_assert!` after every input (so in every debug build and test, free in
//! release), and exercised by `tests/subcall_outcomes.rs` with arbitrary outcome sequences:
//!
//! - Each step moves only along `Waiting → Ready | Failed`, `Ready → InFlight | Failed`,
//!   `InFlight → Done | Ready (retry) | Failed`; `Done` and `Failed` are final, so a step
//!   completes at most once. Roots start `Ready`, the others `Waiting`.
//! - A step is `InFlight` exactly when one call for it is in flight, on its current route; no
//!   call is in flight once every step has settled.
//! - Every call issued ends exactly once: `observations + in flight = calls issued`. Results for
//!   calls not in flight (unknown, duplicate, already timed out) change nothing.
//! - A step is issued only when all its dependencies have settled and one of them succeeded, and
//!   never before a succeeded dependency finished; a `Waiting` step has an unsettled dependency.
//! - `Done(p)` steps and pipeline entries correspond one to one (entry `p` is that step's call),
//!   so in the pipeline every dependency comes before, and finished before, its dependents.
//! - No more than `max_attempts_per_route` attempts on one route.
//! - [`finish`](Execution::finish) leaves no step unsettled and no call in flight.

use crate::assemble;
use crate::planner::RoutedPlan;
use crate::router::Route;
use orchestra_protocol::Body;
use orchestra_protocol::hash::{CanonicalError, Hash32};
use orchestra_protocol::messages::{
    Challenge, NONCE_FIELD, PipelineStep, Plan, PlanError, PlanStep, ProofSummary, Receipt,
    call_nonce,
};
use orchestra_protocol::proof::ProofBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Retry, timeout and request-shaping knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionConfig {
    /// Attempts on one route before falling back to the next (default 2).
    pub max_attempts_per_route: u32,
    /// A call times out after `timeout_factor × p95` of its route (default 3).
    pub timeout_factor: f64,
    /// Floor of a call's timeout, ms (default 500).
    pub min_call_timeout_ms: u64,
    /// Stop issuing calls and finish this long before the deadline, ms (default 200), so the
    /// response still arrives in time.
    pub finish_margin_ms: u64,
    /// Send dependency responses inline in a step's request (default true); otherwise only their
    /// hashes, for subnets that fetch by reference.
    pub inline_dependency_bodies: bool,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            max_attempts_per_route: 2,
            timeout_factor: 3.0,
            min_call_timeout_ms: 500,
            finish_margin_ms: 200,
            inline_dependency_bodies: true,
        }
    }
}

/// A sub-call the driver must execute against a subnet endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubCall {
    /// Names this call in [`Execution::on_subcall_result`].
    pub call_id: u64,
    /// The plan step it executes.
    pub step_id: String,
    /// The capability tag of the step.
    pub capability: String,
    /// Target subnet.
    pub netuid: u16,
    /// Target endpoint name.
    pub endpoint: String,
    /// The request body. It carries a `request_id` derived from the challenge lock, which a subnet
    /// echoes; that keeps honest response hashes unique per challenge (check 4) even from
    /// deterministic endpoints. When the challenge asks for replay binding it also carries the
    /// step's nonce under `orchestra_nonce` (`orchestra_protocol::messages::call_nonce`).
    pub request: Body,
    /// BLAKE3 of the canonical request.
    pub request_hash: Hash32,
    /// 1 for the first attempt of this step, then 2, 3, … across retries and fallbacks.
    pub attempt: u32,
    /// When it was issued: the `now_ms` given to `poll_subcall` (or a later time already seen,
    /// see the module docs).
    pub started_at_ms: u64,
    /// After this the call counts as timed out.
    pub timeout_at_ms: u64,
    /// Whether the Ledger marks the endpoint deterministic.
    pub deterministic: bool,
}

/// A subnet's answer to a [`SubCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubCallReply {
    /// The response body.
    pub response: Body,
    /// The serving neuron's ss58 hotkey.
    pub subnet_hotkey: String,
    /// What the call cost, rao.
    pub cost_rao: u64,
    /// The subnet's receipt, if it signs one.
    #[serde(default)]
    pub receipt: Option<Receipt>,
}

pub use orchestra_protocol::messages::SubCallFailure;

/// The result of a sub-call as the driver reports it.
pub type SubCallOutcome = Result<SubCallReply, SubCallFailure>;

/// One sub-call as it went: what the proposal detector learns from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The plan step.
    pub step_id: String,
    /// The subnet.
    pub netuid: u16,
    /// Endpoint name.
    pub endpoint: String,
    /// Index of the endpoint in the Ledger entry the route came from.
    pub endpoint_index: usize,
    /// BLAKE3 of the request.
    pub request_hash: Hash32,
    /// BLAKE3 of the response, when there was one.
    pub response_hash: Option<Hash32>,
    /// When it started, ms.
    pub started_at_ms: u64,
    /// How long it took (until failure or timeout for a failed call), ms.
    pub latency_ms: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Where its step sits in the pipeline, for a success.
    pub pipeline_index: Option<usize>,
}

/// Why an execution could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The plan is not a DAG.
    #[error("invalid plan: {0}")]
    Plan(#[from] PlanError),
    /// `routes` is not parallel to the plan's steps, or a step has no route.
    #[error("step {0:?} has no route")]
    NoRoute(String),
    /// A value could not be canonicalised for the proof.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
}

/// What a finished execution produced: everything a [`Response`](orchestra_protocol::messages::Response)
/// needs except the miner's identity and proposals.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionOutput {
    /// The challenge answered (handed back so the caller need not keep a copy).
    pub challenge: Challenge,
    /// The plan actually followed (succeeded steps, routed where they ran).
    pub plan: Plan,
    /// The committed sub-calls, in completion order.
    pub pipeline: Vec<PipelineStep>,
    /// The assembled result.
    pub standardized_data: Value,
    /// The proof over `pipeline` and `standardized_data`.
    pub proof: ProofSummary,
    /// Every call made, successful or not, in completion order.
    pub observations: Vec<Observation>,
}

/// A call in flight, seen from the outside (for strategies and drivers).
#[derive(Debug, Clone, Copy)]
pub struct CallRef<'a> {
    /// The plan step.
    pub step_id: &'a str,
    /// The subnet.
    pub netuid: u16,
    /// The endpoint.
    pub endpoint: &'a str,
    /// The request body.
    pub request: &'a Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    Ready,
    InFlight,
    Done(usize),
    Failed,
}

impl Status {
    fn settled(self) -> bool {
        matches!(self, Status::Done(_) | Status::Failed)
    }

    /// The transition table of the module docs' "Invariants".
    fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Waiting, Ready | Failed)
                | (Ready, InFlight | Failed)
                | (InFlight, Done(_) | Ready | Failed)
        )
    }
}

#[derive(Debug, Clone)]
struct StepState {
    deps: Vec<usize>,
    dependents: Vec<usize>,
    route: usize,
    attempts_on_route: u32,
    attempts: u32,
    status: Status,
}

#[derive(Debug, Clone)]
struct InFlight {
    step: usize,
    route: usize,
    request: Body,
    request_hash: Hash32,
    started_at_ms: u64,
    timeout_at_ms: u64,
}

/// The state machine running one routed plan (see the module docs).
#[derive(Debug, Clone)]
pub struct Execution {
    challenge: Challenge,
    lock: Hash32,
    plan: Plan,
    routes: Vec<Vec<Route>>,
    steps: Vec<StepState>,
    order: Vec<usize>,
    is_sink: Vec<bool>,
    in_flight: BTreeMap<u64, InFlight>,
    proof: ProofBuilder,
    observations: Vec<Observation>,
    next_call_id: u64,
    spent_rao: u64,
    finish_by_ms: u64,
    /// The latest `now_ms` seen: time as the execution uses it never goes back.
    clock_ms: u64,
    config: ExecutionConfig,
}

impl Execution {
    /// Start executing `routed` for `challenge`, answered by `miner` (ss58).
    pub fn new(
        challenge: &Challenge,
        miner: &str,
        routed: RoutedPlan,
        config: ExecutionConfig,
    ) -> Result<Self, ExecutionError> {
        let RoutedPlan { plan, routes } = routed;
        let order = plan.validate()?;
        for (i, step) in plan.steps.iter().enumerate() {
            if routes.get(i).is_none_or(Vec::is_empty) {
                return Err(ExecutionError::NoRoute(step.id.clone()));
            }
        }
        let index: BTreeMap<&str, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let mut steps: Vec<StepState> = plan
            .steps
            .iter()
            .map(|s| StepState {
                deps: s
                    .depends_on
                    .iter()
                    .filter_map(|d| index.get(d.as_str()).copied())
                    .collect(),
                dependents: Vec::new(),
                route: 0,
                attempts_on_route: 0,
                attempts: 0,
                status: Status::Waiting,
            })
            .collect();
        for i in 0..steps.len() {
            for d in steps[i].deps.clone() {
                steps[d].dependents.push(i);
            }
            if steps[i].deps.is_empty() {
                steps[i].status = Status::Ready;
            }
        }
        let is_sink = steps.iter().map(|s| s.dependents.is_empty()).collect();
        let finish_by_ms = challenge
            .due_at_ms()
            .saturating_sub(config.finish_margin_ms)
            .max(challenge.issued_at_ms);
        let proof = ProofBuilder::new(challenge, miner);
        let exec = Execution {
            lock: proof.lock0(),
            proof,
            challenge: challenge.clone(),
            plan,
            routes,
            steps,
            order,
            is_sink,
            in_flight: BTreeMap::new(),
            observations: Vec::new(),
            next_call_id: 0,
            spent_rao: 0,
            finish_by_ms,
            clock_ms: 0,
            config,
        };
        exec.debug_check();
        Ok(exec)
    }

    /// Time as the execution uses it: `now_ms`, or the latest time already seen if that is later
    /// (see the module docs).
    fn tick(&mut self, now_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(now_ms);
        self.clock_ms
    }

    /// Move step `i` to `to`, along the transition table only.
    fn set_status(&mut self, i: usize, to: Status) {
        let from = self.steps[i].status;
        debug_assert!(
            from.may_become(to),
            "step {:?}: illegal transition {from:?} -> {to:?}",
            self.plan.steps[i].id
        );
        self.steps[i].status = to;
    }

    /// The challenge being answered.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The plan as routed at the start.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// When the execution stops issuing calls and should be finished, ms.
    pub fn finish_by_ms(&self) -> u64 {
        self.finish_by_ms
    }

    /// The sub-calls committed so far, in completion order.
    pub fn pipeline(&self) -> &[PipelineStep] {
        self.proof.steps()
    }

    /// Every call that completed or failed so far.
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// A call still in flight.
    pub fn call(&self, call_id: u64) -> Option<CallRef<'_>> {
        let f = self.in_flight.get(&call_id)?;
        let route = &self.routes[f.step][f.route];
        Some(CallRef {
            step_id: &self.plan.steps[f.step].id,
            netuid: route.netuid,
            endpoint: &route.endpoint,
            request: &f.request,
        })
    }

    /// Whether every step has succeeded or failed: time to [`finish`](Self::finish).
    pub fn is_finished(&self) -> bool {
        self.steps.iter().all(|s| s.status.settled())
    }

    /// The next sub-call to send, issued at `now_ms`; `None` when nothing is ready. Call it
    /// repeatedly until `None` after every event.
    pub fn poll_subcall(&mut self, now_ms: u64) -> Option<SubCall> {
        let now_ms = self.tick(now_ms);
        let call = self.next_subcall(now_ms);
        self.debug_check();
        call
    }

    fn next_subcall(&mut self, now_ms: u64) -> Option<SubCall> {
        if now_ms >= self.finish_by_ms {
            self.expire_all(now_ms);
            return None;
        }
        'scan: loop {
            let i = self
                .order
                .iter()
                .copied()
                .find(|&i| self.steps[i].status == Status::Ready)?;
            // Pick the first remaining route that fits the budget.
            loop {
                let Some(route) = self.routes[i].get(self.steps[i].route) else {
                    self.fail_step(i);
                    continue 'scan;
                };
                let affordable = self
                    .challenge
                    .budget_rao
                    .is_none_or(|b| self.spent_rao.saturating_add(route.cost_rao) <= b);
                if affordable {
                    break;
                }
                self.steps[i].route += 1;
                self.steps[i].attempts_on_route = 0;
            }
            return self.issue(i, now_ms);
        }
    }

    fn issue(&mut self, i: usize, now_ms: u64) -> Option<SubCall> {
        let call_id = self.next_call_id;
        self.next_call_id += 1;
        let route_idx = self.steps[i].route;
        let route = &self.routes[i][route_idx];
        let request = Body::new(self.build_request(i, call_id));
        let request_hash = request.hash();
        let budget_ms = (route.p95_latency_ms as f64 * self.config.timeout_factor).ceil();
        let budget_ms = if budget_ms.is_finite() && budget_ms > 0.0 {
            budget_ms as u64
        } else {
            0
        };
        let timeout_at_ms = now_ms
            .saturating_add(budget_ms.max(self.config.min_call_timeout_ms))
            .min(self.finish_by_ms);
        if cfg!(debug_assertions) {
            self.debug_check_issuable(i, now_ms);
        }
        self.set_status(i, Status::InFlight);
        let route = &self.routes[i][route_idx];
        let step = &mut self.steps[i];
        step.attempts += 1;
        step.attempts_on_route += 1;
        let call = SubCall {
            call_id,
            step_id: self.plan.steps[i].id.clone(),
            capability: self.plan.steps[i].capability.clone(),
            netuid: route.netuid,
            endpoint: route.endpoint.clone(),
            request: request.clone(),
            request_hash,
            attempt: step.attempts,
            started_at_ms: now_ms,
            timeout_at_ms,
            deterministic: route.deterministic,
        };
        let earlier = self.in_flight.insert(
            call_id,
            InFlight {
                step: i,
                route: route_idx,
                request,
                request_hash,
                started_at_ms: now_ms,
                timeout_at_ms,
            },
        );
        debug_assert!(earlier.is_none(), "call id {call_id} issued twice");
        Some(call)
    }

    fn build_request(&self, i: usize, call_id: u64) -> Value {
        let step = &self.plan.steps[i];
        let mut hasher = blake3::Hasher::new_keyed(&self.lock.0);
        hasher.update(step.id.as_bytes());
        hasher.update(&call_id.to_le_bytes());
        let request_id = Hash32::from(hasher.finalize());
        let mut inputs = Map::new();
        for &d in &self.steps[i].deps {
            if let Status::Done(p) = self.steps[d].status
                && let Some(done) = self.proof.steps().get(p)
            {
                let body = match (&done.response, self.config.inline_dependency_bodies) {
                    (Some(r), true) => r.value().clone(),
                    _ => Value::String(done.response_hash.to_hex()),
                };
                inputs.insert(self.plan.steps[d].id.clone(), body);
            }
        }
        let mut req = Map::new();
        req.insert("request_id".into(), Value::String(request_id.to_hex()));
        // Under replay binding the validator checks this on every step (docs/mechanism.md §3);
        // it rides along like `request_id`, so an endpoint that refuses unknown fields does not
        // get it, and `accepts_nonce` makes the auditor not ask for it there.
        if self.challenge.replay_binding {
            let nonce = call_nonce(&self.challenge.challenge_id, &step.id);
            req.insert(NONCE_FIELD.into(), Value::String(nonce.to_hex()));
        }
        req.insert("capability".into(), Value::String(step.capability.clone()));
        req.insert(
            "objective".into(),
            Value::String(self.challenge.objective.text.clone()),
        );
        req.insert("params".into(), self.challenge.objective.params.clone());
        // The last steps shape the answer: tell them what shape.
        if self.is_sink[i] {
            req.insert("target_schema".into(), self.challenge.target_schema.clone());
        }
        let route = &self.routes[i][self.steps[i].route];
        if !inputs.is_empty() {
            req.insert("inputs".into(), Value::Object(inputs));
        }
        match &route.input_shape {
            None => Value::Object(req),
            // Sources: the objective's parameters, then the dependency responses.
            Some(schema) => assemble::shape_request_owned(
                schema,
                req,
                &self.challenge.objective.params,
                &self.challenge.objective.text,
            ),
        }
    }

    /// Report the outcome of call `call_id`, arriving at `now_ms`. Unknown or already timed-out
    /// calls are ignored (a late answer is not used: its step has moved on).
    pub fn on_subcall_result(&mut self, call_id: u64, outcome: SubCallOutcome, now_ms: u64) {
        let now_ms = self.tick(now_ms);
        self.settle_call(call_id, outcome, now_ms);
        self.debug_check();
    }

    fn settle_call(&mut self, call_id: u64, outcome: SubCallOutcome, now_ms: u64) {
        let Some(f) = self.in_flight.remove(&call_id) else {
            return;
        };
        debug_assert_eq!(self.steps[f.step].status, Status::InFlight);
        let route = &self.routes[f.step][f.route];
        let latency_ms = now_ms.saturating_sub(f.started_at_ms);
        let mut obs = Observation {
            step_id: self.plan.steps[f.step].id.clone(),
            netuid: route.netuid,
            endpoint: route.endpoint.clone(),
            endpoint_index: route.endpoint_index,
            request_hash: f.request_hash,
            response_hash: None,
            started_at_ms: f.started_at_ms,
            latency_ms,
            ok: false,
            pipeline_index: None,
        };
        let committed = match outcome {
            Ok(reply) => {
                // Hashing a JSON value cannot fail.
                let response_hash = reply.response.hash();
                obs.response_hash = Some(response_hash);
                let cost = reply.cost_rao;
                let step = PipelineStep {
                    step_id: obs.step_id.clone(),
                    netuid: route.netuid,
                    endpoint: route.endpoint.clone(),
                    subnet_hotkey: reply.subnet_hotkey,
                    request: Some(f.request),
                    response: Some(reply.response),
                    request_hash: f.request_hash,
                    response_hash,
                    started_at_ms: f.started_at_ms,
                    latency_ms,
                    cost_rao: cost,
                    receipt: reply.receipt,
                };
                // A number the proof cannot commit exactly (only `cost_rao` comes from the
                // subnet) would make the whole proof fail check 2: the reply is unusable.
                if !step.integers_are_exact() {
                    None
                } else {
                    match self.proof.push_step(step) {
                        Ok(_) => {
                            self.spent_rao = self.spent_rao.saturating_add(cost);
                            Some(self.proof.steps().len() - 1)
                        }
                        Err(_) => None,
                    }
                }
            }
            Err(_) => None,
        };
        match committed {
            Some(p) => {
                obs.ok = true;
                obs.pipeline_index = Some(p);
                self.observations.push(obs);
                self.set_status(f.step, Status::Done(p));
                self.settle_dependents(f.step);
            }
            None => {
                self.observations.push(obs);
                self.retry_or_fail(f.step, now_ms);
            }
        }
    }

    /// When the driver should call [`handle_timeout`](Self::handle_timeout) next: the earliest
    /// call timeout, or the finish-by time while anything is unsettled.
    pub fn poll_timeout(&self) -> Option<u64> {
        let call = self.in_flight.values().map(|f| f.timeout_at_ms).min();
        if self.is_finished() {
            return call;
        }
        Some(call.map_or(self.finish_by_ms, |t| t.min(self.finish_by_ms)))
    }

    /// Time has reached `now_ms`: calls past their timeout fail (and may be retried), and at
    /// the finish-by time everything still open fails.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let now_ms = self.tick(now_ms);
        if now_ms >= self.finish_by_ms {
            self.expire_all(now_ms);
        } else {
            let expired: Vec<u64> = self
                .in_flight
                .iter()
                .filter(|(_, f)| f.timeout_at_ms <= now_ms)
                .map(|(&id, _)| id)
                .collect();
            for id in expired {
                self.settle_call(id, Err(SubCallFailure::Timeout), now_ms);
            }
        }
        self.debug_check();
    }

    fn expire_all(&mut self, now_ms: u64) {
        let open: Vec<u64> = self.in_flight.keys().copied().collect();
        for id in open {
            if let Some(f) = self.in_flight.remove(&id) {
                let route = &self.routes[f.step][f.route];
                self.observations.push(Observation {
                    step_id: self.plan.steps[f.step].id.clone(),
                    netuid: route.netuid,
                    endpoint: route.endpoint.clone(),
                    endpoint_index: route.endpoint_index,
                    request_hash: f.request_hash,
                    response_hash: None,
                    started_at_ms: f.started_at_ms,
                    latency_ms: now_ms.saturating_sub(f.started_at_ms),
                    ok: false,
                    pipeline_index: None,
                });
            }
        }
        for i in 0..self.steps.len() {
            if !self.steps[i].status.settled() {
                self.set_status(i, Status::Failed);
            }
        }
    }

    fn retry_or_fail(&mut self, i: usize, now_ms: u64) {
        let step = &mut self.steps[i];
        if step.attempts_on_route >= self.config.max_attempts_per_route.max(1) {
            step.route += 1;
            step.attempts_on_route = 0;
        }
        // Only retry if the route's typical latency still fits before the finish-by time.
        let fits = self.routes[i]
            .get(step.route)
            .is_some_and(|r| now_ms.saturating_add(r.p50_latency_ms) < self.finish_by_ms);
        if fits {
            self.set_status(i, Status::Ready);
        } else {
            self.fail_step(i);
        }
    }

    fn fail_step(&mut self, i: usize) {
        self.set_status(i, Status::Failed);
        self.settle_dependents(i);
    }

    /// A step settled: dependents whose dependencies have all settled become ready if at least
    /// one of them succeeded, and fail otherwise.
    fn settle_dependents(&mut self, i: usize) {
        let mut stack = vec![i];
        while let Some(s) = stack.pop() {
            for d in self.steps[s].dependents.clone() {
                if self.steps[d].status != Status::Waiting {
                    continue;
                }
                let deps = &self.steps[d].deps;
                if !deps.iter().all(|&x| self.steps[x].status.settled()) {
                    continue;
                }
                if deps
                    .iter()
                    .any(|&x| matches!(self.steps[x].status, Status::Done(_)))
                {
                    self.set_status(d, Status::Ready);
                } else {
                    self.set_status(d, Status::Failed);
                    stack.push(d);
                }
            }
        }
    }

    /// Assemble the data, seal the proof and hand everything back. Steps still open fail.
    pub fn finish(mut self, now_ms: u64) -> Result<ExecutionOutput, ExecutionError> {
        let now_ms = self.tick(now_ms);
        if !self.is_finished() {
            self.expire_all(now_ms);
        }
        self.debug_check();
        debug_assert!(self.is_finished() && self.in_flight.is_empty());
        let plan = self.followed_plan();
        if cfg!(debug_assertions) {
            self.debug_check_followed(&plan);
        }
        let standardized_data = self.assemble();
        let (proof, pipeline) = self.proof.finish(&standardized_data)?;
        Ok(ExecutionOutput {
            challenge: self.challenge,
            plan,
            pipeline,
            standardized_data,
            proof,
            observations: self.observations,
        })
    }

    /// Succeeded steps, routed where they ran, depending on their nearest succeeded ancestors.
    fn followed_plan(&self) -> Plan {
        let done = |i: usize| matches!(self.steps[i].status, Status::Done(_));
        let mut steps = Vec::new();
        for &i in &self.order {
            let Status::Done(p) = self.steps[i].status else {
                continue;
            };
            let mut deps: Vec<String> = Vec::new();
            let mut stack: Vec<usize> = self.steps[i].deps.clone();
            let mut seen = vec![false; self.steps.len()];
            while let Some(d) = stack.pop() {
                if std::mem::replace(&mut seen[d], true) {
                    continue;
                }
                if done(d) {
                    deps.push(self.plan.steps[d].id.clone());
                } else {
                    stack.extend(self.steps[d].deps.iter().copied());
                }
            }
            deps.sort();
            let ran = &self.proof.steps()[p];
            steps.push(PlanStep {
                id: self.plan.steps[i].id.clone(),
                capability: self.plan.steps[i].capability.clone(),
                netuid: ran.netuid,
                endpoint: ran.endpoint.clone(),
                depends_on: deps,
            });
        }
        Plan { steps }
    }

    /// The data: the last succeeded sink's structured output (its `data` or `result` object if it
    /// has one) conformed to the target schema, gaps filled from the other sub-responses.
    fn assemble(&self) -> Value {
        let pipeline = self.proof.steps();
        let mut primary_step: Option<usize> = None;
        for &i in &self.order {
            if let Status::Done(p) = self.steps[i].status
                && (self.is_sink[i] || primary_step.is_none())
            {
                primary_step = Some(p);
            }
        }
        let primary = primary_step
            .and_then(|p| pipeline[p].response.as_deref())
            .map(|r| {
                r.get("data")
                    .filter(|d| d.is_object())
                    .or_else(|| r.get("result").filter(|d| d.is_object()))
                    .unwrap_or(r)
            });
        let mut sources: Vec<&Value> = Vec::with_capacity(pipeline.len());
        if let Some(p) = primary_step
            && let Some(r) = pipeline[p].response.as_deref()
        {
            sources.push(r);
        }
        sources.extend(
            pipeline
                .iter()
                .enumerate()
                .filter(|(p, _)| Some(*p) != primary_step)
                .filter_map(|(_, s)| s.response.as_deref()),
        );
        assemble::conform(&self.challenge.target_schema, primary, &sources)
    }

    /// The whole-state invariants of the module docs. Linear in the plan's size, which is a
    /// handful of steps; `debug_assert!` only, so free in release builds.
    fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        let pipeline = self.proof.steps();
        let max_attempts = self.config.max_attempts_per_route.max(1);
        let mut done = 0;
        for (i, step) in self.steps.iter().enumerate() {
            let id = &self.plan.steps[i].id;
            let calls = self.in_flight.values().filter(|f| f.step == i).count();
            debug_assert_eq!(
                calls,
                usize::from(step.status == Status::InFlight),
                "step {id:?} ({:?}) has {calls} calls in flight",
                step.status
            );
            debug_assert!(
                step.attempts_on_route <= max_attempts,
                "step {id:?}: {} attempts on one route",
                step.attempts_on_route
            );
            match step.status {
                Status::Waiting => debug_assert!(
                    step.deps.iter().any(|&d| !self.steps[d].status.settled()),
                    "step {id:?} waits on nothing"
                ),
                Status::Ready => debug_assert!(
                    step.route < self.routes[i].len(),
                    "step {id:?} is ready without a route"
                ),
                Status::InFlight | Status::Failed => {}
                Status::Done(p) => {
                    done += 1;
                    debug_assert!(
                        pipeline.get(p).is_some_and(|s| s.step_id == *id),
                        "step {id:?} done at pipeline position {p}, which is not its call"
                    );
                }
            }
        }
        // One pipeline entry per done step (each entry names its step, so positions are distinct).
        debug_assert_eq!(done, pipeline.len(), "done steps vs committed calls");
        for (id, f) in &self.in_flight {
            debug_assert!(*id < self.next_call_id, "call {id} was never issued");
            debug_assert_eq!(
                f.route, self.steps[f.step].route,
                "call {id} is not on its step's route"
            );
        }
        debug_assert_eq!(
            self.observations.len() + self.in_flight.len(),
            usize::try_from(self.next_call_id).unwrap_or(usize::MAX),
            "every call issued ends exactly once"
        );
        debug_assert!(!self.is_finished() || self.in_flight.is_empty());
    }

    /// Step `i` may be issued at `now_ms`: it is ready, no call for it is in flight, its
    /// dependencies have settled, one of them succeeded, and each that succeeded has finished.
    fn debug_check_issuable(&self, i: usize, now_ms: u64) {
        if !cfg!(debug_assertions) {
            return;
        }
        let id = &self.plan.steps[i].id;
        debug_assert_eq!(self.steps[i].status, Status::Ready, "issuing {id:?}");
        debug_assert!(
            !self.in_flight.values().any(|f| f.step == i),
            "issuing {id:?} while a call for it is in flight"
        );
        let deps = &self.steps[i].deps;
        debug_assert!(
            deps.iter().all(|&d| self.steps[d].status.settled()),
            "issuing {id:?} before its dependencies settled"
        );
        debug_assert!(
            deps.is_empty()
                || deps
                    .iter()
                    .any(|&d| matches!(self.steps[d].status, Status::Done(_))),
            "issuing {id:?} although every dependency failed"
        );
        for &d in deps {
            if let Status::Done(p) = self.steps[d].status {
                debug_assert!(
                    self.proof.steps()[p].finished_at_ms() <= now_ms,
                    "issuing {id:?} at {now_ms} before dependency {:?} finished",
                    self.plan.steps[d].id
                );
            }
        }
    }

    /// The followed plan and the pipeline agree: the same steps, and every dependency committed
    /// before its dependent and finished before it started (what check 3 verifies).
    fn debug_check_followed(&self, plan: &Plan) {
        if !cfg!(debug_assertions) {
            return;
        }
        let pipeline = self.proof.steps();
        debug_assert_eq!(plan.steps.len(), pipeline.len());
        let position: BTreeMap<&str, usize> = pipeline
            .iter()
            .enumerate()
            .map(|(p, s)| (s.step_id.as_str(), p))
            .collect();
        debug_assert_eq!(position.len(), pipeline.len(), "a step committed twice");
        for step in &plan.steps {
            let Some(&p) = position.get(step.id.as_str()) else {
                debug_assert!(false, "plan step {:?} never ran", step.id);
                continue;
            };
            for dep in &step.depends_on {
                let q = position.get(dep.as_str()).copied();
                debug_assert!(
                    q.is_some_and(
                        |q| q < p && pipeline[q].finished_at_ms() <= pipeline[p].started_at_ms
                    ),
                    "step {:?} ran before its dependency {dep:?}",
                    step.id
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    /// The transition table of the module docs, entry by entry.
    #[test]
    fn only_the_documented_transitions_are_legal() {
        let all = [Waiting, Ready, InFlight, Done(0), Failed];
        let legal = [
            (Waiting, Ready),
            (Waiting, Failed),
            (Ready, InFlight),
            (Ready, Failed),
            (InFlight, Done(0)),
            (InFlight, Ready),
            (InFlight, Failed),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.may_become(to),
                    legal.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
        // Settled steps never change again: a step completes at most once.
        for to in all {
            assert!(!Done(3).may_become(to) && !Failed.may_become(to));
        }
        assert!(
            all.iter()
                .all(|s| s.settled() == matches!(s, Done(_) | Failed))
        );
    }
}
