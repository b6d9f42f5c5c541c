//! `replayer`: reuses cached sub-responses from earlier challenges instead of calling (and
//! paying) again.
//!
//! Every successful reply it really received is cached under (subnet, endpoint, step); a later
//! call of the same step is answered from the cache with probability `rate`, if the cached
//! reply's age lies in `[min_age_ms, max_age_ms]`. The reply keeps its original `cost_rao`, so
//! the routing term sees an honest-looking cost. A `min_age_ms` beyond the validator's replay
//! window (1 day) dodges the replay set, leaving only audits; `disguise` rewrites the echoed
//! `request_id` so the hash is new, which also leaves only audits.
//!
//! Which request the proof commits next to the cached response is the `request` knob:
//!
//! - `fresh` (default): this challenge's own request, as the miner core built it, so an audit
//!   re-executes a request the response never answered.
//! - `cached`: the whole cached step — the request the response answered, verbatim (the proof
//!   is re-sealed in [`Strategy::finalize`]) — so a re-execution reproduces the response.
//!   Without replay binding that passes every audit; under binding the request carries another
//!   challenge's nonce (or none) and fails.
//! - `rebound`: the cached request with its nonce rewritten to this challenge's (the nonce is
//!   public to the miner): it passes the nonce check, and an endpoint that ignores the nonce
//!   still reproduces the response. Only an endpoint whose output depends on the nonce in a way
//!   an audit compares (a non-deterministic endpoint's stable fields, in the mocks) tells. The
//!   replayer's best response under binding (docs/mechanism.md §3, "Replay binding").
//!
//! With `cached` and `rebound` the cached receipt is dropped: it signs the original request and
//! start time, so kept it would be a forged receipt.
//!
//! Defence (docs/mechanism.md §3 checks 3–5): challenge window, replay set, audits, replay
//! binding.

use crate::forge::{disguise, stream};
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{
    CallAction, CallRef, Strategy, StrategyCtx, SubCall, SubCallOutcome, SubCallReply,
};
use orchestra_protocol::Body;
use orchestra_protocol::messages::{Challenge, NONCE_FIELD, Response};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Thirty days, ms: the ceiling of the age knobs.
pub const MAX_AGE_CEILING_MS: u64 = 30 * 86_400_000;

/// `replayer` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayerParams {
    /// Probability a call with a usable cached reply is answered from the cache, `[0, 1]`,
    /// default 1.
    pub rate: f64,
    /// Oldest cached reply used, ms, `[0, 30 days]`; 0 (default) means no limit.
    pub max_age_ms: u64,
    /// Youngest cached reply used, ms, `[0, 30 days]`, default 0. Not checked against
    /// `max_age_ms`, so the knobs form a box for the tuner: an empty age range replays nothing.
    pub min_age_ms: u64,
    /// Rewrite the echoed `request_id` so the replayed hash is new (default false). Only with
    /// `request = "fresh"`: a cached request keeps the `request_id` the response echoes.
    pub disguise: bool,
    /// Which request is committed with a replayed response: `fresh`, `cached` or `rebound`
    /// (default `fresh`; see the module docs).
    pub request: ReplayRequest,
}

/// Which request a replayed step commits (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayRequest {
    /// This challenge's own request.
    #[default]
    Fresh,
    /// The cached request, verbatim.
    Cached,
    /// The cached request with this challenge's nonce.
    Rebound,
}

impl Default for ReplayerParams {
    fn default() -> Self {
        ReplayerParams {
            rate: 1.0,
            max_age_ms: 0,
            min_age_ms: 0,
            disguise: false,
            request: ReplayRequest::Fresh,
        }
    }
}

impl Params for ReplayerParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "rate",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Float,
            doc: "probability a cacheable call is replayed",
        },
        Knob {
            name: "max_age_ms",
            min: 0.0,
            max: MAX_AGE_CEILING_MS as f64,
            default: 0.0,
            kind: KnobKind::Int,
            doc: "oldest cached reply used (0 = no limit)",
        },
        Knob {
            name: "min_age_ms",
            min: 0.0,
            max: MAX_AGE_CEILING_MS as f64,
            default: 0.0,
            kind: KnobKind::Int,
            doc: "youngest cached reply used",
        },
        Knob {
            name: "disguise",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Bool,
            doc: "rewrite the echoed request_id",
        },
        Knob {
            name: "request",
            min: 0.0,
            max: 2.0,
            default: 0.0,
            kind: KnobKind::Choice(&["fresh", "cached", "rebound"]),
            doc: "request committed with a replayed response",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("rate", self.rate, 0.0, 1.0)?;
        check_range(
            "max_age_ms",
            self.max_age_ms as f64,
            0.0,
            MAX_AGE_CEILING_MS as f64,
        )?;
        check_range(
            "min_age_ms",
            self.min_age_ms as f64,
            0.0,
            MAX_AGE_CEILING_MS as f64,
        )?;
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct Cached {
    reply: SubCallReply,
    /// The request the reply answered, for `request = "cached"` or `"rebound"`.
    request: Value,
    at_ms: u64,
}

/// The replayer strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct Replayer {
    params: ReplayerParams,
    cache: BTreeMap<(u16, String, String), Cached>,
    sent: BTreeMap<String, u64>,
    /// Fresh `request_id` of a replayed call → the cached request to commit instead.
    swaps: BTreeMap<String, Value>,
    rng: ChaCha8Rng,
    replayed: u64,
}

/// Calls remembered between `on_subcall` and their outcome.
const MAX_IN_FLIGHT: usize = 1_024;

fn request_id(request: &Value) -> Option<&str> {
    request.get("request_id").and_then(|v| v.as_str())
}

/// `cached` with the replay-binding nonce of `fresh` (this challenge's, for this step), or
/// without one if `fresh` carries none: the nonce is public to the miner, so rewriting it is
/// the cheapest way past the nonce check.
fn rebind(cached: &Value, fresh: &Value) -> Value {
    let mut out = cached.clone();
    if let Some(obj) = out.as_object_mut() {
        match fresh.get(NONCE_FIELD) {
            Some(nonce) => {
                obj.insert(NONCE_FIELD.to_string(), nonce.clone());
            }
            None => {
                obj.remove(NONCE_FIELD);
            }
        }
    }
    out
}

impl Replayer {
    /// A replayer with `params`; `seed` keys its own RNG stream.
    pub fn new(params: ReplayerParams, seed: u64) -> Self {
        Replayer {
            params,
            cache: BTreeMap::new(),
            sent: BTreeMap::new(),
            swaps: BTreeMap::new(),
            rng: stream(seed, "replayer"),
            replayed: 0,
        }
    }

    fn send(&mut self, call: &SubCall) -> CallAction {
        if let Some(rid) = request_id(&call.request) {
            self.sent.insert(rid.to_string(), call.started_at_ms);
            // Calls that never report back (a driver dropping them) must not pile up.
            while self.sent.len() > MAX_IN_FLIGHT {
                self.sent.pop_first();
            }
        }
        CallAction::Send
    }

    /// Calls answered from the cache so far.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }
}

impl Strategy for Replayer {
    fn name(&self) -> &str {
        "replayer"
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        let key = (call.netuid, call.endpoint.clone(), call.step_id.clone());
        let Some(c) = self.cache.get(&key) else {
            return self.send(call);
        };
        let age = call.started_at_ms.saturating_sub(c.at_ms);
        let fresh_enough = self.params.max_age_ms == 0 || age <= self.params.max_age_ms;
        if !fresh_enough || age < self.params.min_age_ms {
            return self.send(call);
        }
        if !self.rng.random_bool(self.params.rate) {
            return self.send(call);
        }
        self.replayed += 1;
        let mut reply = c.reply.clone();
        if self.params.request != ReplayRequest::Fresh {
            let commit = match self.params.request {
                ReplayRequest::Rebound => rebind(&c.request, &call.request),
                _ => c.request.clone(),
            };
            if let Some(rid) = request_id(&call.request) {
                self.swaps.insert(rid.to_string(), commit);
                // Calls of a challenge never finalized (withheld, dropped) must not pile up.
                while self.swaps.len() > MAX_IN_FLIGHT {
                    self.swaps.pop_first();
                }
            }
            reply.receipt = None;
            return CallAction::Substitute(reply);
        }
        CallAction::Substitute(if self.params.disguise {
            disguise(reply, call)
        } else {
            reply
        })
    }

    fn finalize(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        response: Response,
    ) -> Option<Response> {
        if self.swaps.is_empty() {
            return Some(response);
        }
        let mut pipeline = response.pipeline.clone();
        let mut swapped = false;
        for step in &mut pipeline {
            let commit = step
                .request
                .as_deref()
                .and_then(request_id)
                .and_then(|rid| self.swaps.remove(rid));
            if let Some(commit) = commit {
                let body = Body::new(commit);
                step.request_hash = body.hash();
                step.request = Some(body);
                step.receipt = None;
                swapped = true;
            }
        }
        if !swapped {
            return Some(response);
        }
        // The bodies changed, so the chain must be recomputed: the proof stays valid.
        let Response {
            plan,
            standardized_data,
            ledger_proposals,
            ..
        } = response;
        ctx.seal(
            challenge,
            plan,
            pipeline,
            standardized_data,
            ledger_proposals,
        )
        .ok()
    }

    fn on_subcall_outcome(&mut self, call: CallRef<'_>, outcome: &SubCallOutcome) {
        // Only replies that really came from a subnet are cached: a replayed one is not in
        // `sent`, so the cache keeps the original's age (or it would never pass `min_age_ms`).
        let Some(at_ms) = request_id(call.request).and_then(|rid| self.sent.remove(rid)) else {
            return;
        };
        let Ok(reply) = outcome else {
            return;
        };
        let key = (
            call.netuid,
            call.endpoint.to_string(),
            call.step_id.to_string(),
        );
        self.cache.insert(
            key,
            Cached {
                reply: reply.clone(),
                request: call.request.clone(),
                at_ms,
            },
        );
    }
}
