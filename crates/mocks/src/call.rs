//! Calling a mock subnet: validation, latency, failures, load, price, responses, receipts, and
//! the ground truth a Ledger is measured against.

use crate::model::{CompiledEndpoint, CompiledVersion, MockSubnet, Z95};
use crate::plan::{self, GenCtx};
use crate::state::SubnetState;
use orchestra_protocol::Body;
use orchestra_protocol::hash_value;
use orchestra_protocol::ledger::{Entry, Metrics, Status};
use orchestra_protocol::messages::{NONCE_FIELD, Receipt, receipt_message};
use rand::{Rng, RngExt};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything about a call that comes from the driver rather than the subnet.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CallContext {
    /// The world seed deterministic responses derive from (one per run and subnet, say).
    pub seed: u64,
    /// When the call starts, ms (virtual in the simulator); receipts sign it and
    /// non-deterministic responses date their results back from it.
    pub now_ms: u64,
    /// Offered load on the subnet, calls per second, as the driver measures it.
    pub load: f64,
}

/// Why a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Down, deprecated or shedding load.
    Unavailable,
    /// Took longer than the subnet's own timeout.
    Timeout,
    /// Failed while serving (the random failure rate).
    ServerError,
    /// The request does not match the input schema.
    BadRequest,
    /// No such endpoint (or it was removed).
    UnknownEndpoint,
}

impl ErrorKind {
    /// The HTTP status the HTTP mock answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::ServerError => 500,
            ErrorKind::BadRequest => 400,
            ErrorKind::UnknownEndpoint => 404,
        }
    }
}

/// What a call gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// Served.
    Ok {
        /// The response body, conforming to the endpoint's current output schema.
        response: Body,
        /// How long it took, ms.
        latency_ms: u64,
        /// What it cost, rao.
        cost_rao: u64,
        /// The subnet's signature, when it signs receipts.
        receipt: Option<Receipt>,
    },
    /// Failed; failed calls are not charged.
    Err {
        /// Why.
        kind: ErrorKind,
        /// How long until the failure was known, ms.
        latency_ms: u64,
    },
}

impl CallOutcome {
    /// Latency of either outcome, ms.
    pub fn latency_ms(&self) -> u64 {
        match self {
            CallOutcome::Ok { latency_ms, .. } | CallOutcome::Err { latency_ms, .. } => *latency_ms,
        }
    }

    /// The response, if served.
    pub fn response(&self) -> Option<&Value> {
        match self {
            CallOutcome::Ok { response, .. } => Some(response),
            CallOutcome::Err { .. } => None,
        }
    }

    /// The failure kind, if failed.
    pub fn error(&self) -> Option<ErrorKind> {
        match self {
            CallOutcome::Ok { .. } => None,
            CallOutcome::Err { kind, .. } => Some(*kind),
        }
    }
}

impl MockSubnet {
    /// Serve one call. Randomness (latency, failures, non-deterministic content) comes from
    /// `rng` only; deterministic content depends only on `(ctx.seed, request, schema version)`.
    pub fn call<R: Rng + ?Sized>(
        &self,
        state: &SubnetState,
        endpoint: &str,
        request: &Body,
        ctx: CallContext,
        rng: &mut R,
    ) -> CallOutcome {
        let reject = self.reject_latency_ms();
        let Some(ep) = self
            .endpoint(endpoint)
            .filter(|_| !state.removed_endpoints.contains(endpoint))
        else {
            return CallOutcome::Err {
                kind: ErrorKind::UnknownEndpoint,
                latency_ms: reject,
            };
        };
        if state.outage || state.deprecated {
            return CallOutcome::Err {
                kind: ErrorKind::Unavailable,
                latency_ms: reject,
            };
        }
        if !ep.input.is_valid(request) {
            return CallOutcome::Err {
                kind: ErrorKind::BadRequest,
                latency_ms: reject,
            };
        }
        // Both draws happen on every served call, so one call's outcome never shifts how many
        // numbers the next call sees.
        let z: f64 = rng.sample(StandardNormal);
        let roll: f64 = rng.random();
        let (load_mult, shed) = self.overload(ctx.load);
        let latency = (ep.mu + self.sigma * z).exp() * load_mult * state.latency_multiplier;
        let latency_ms = (latency.round() as u64).max(1);
        let fail = (self.failure_rate + state.extra_failure_rate).min(1.0);
        if roll < shed {
            return CallOutcome::Err {
                kind: ErrorKind::Unavailable,
                latency_ms: reject,
            };
        }
        if roll < shed + (1.0 - shed) * fail {
            return CallOutcome::Err {
                kind: ErrorKind::ServerError,
                latency_ms: latency_ms.min(self.behaviour().timeout_ms),
            };
        }
        if latency_ms > self.behaviour().timeout_ms {
            return CallOutcome::Err {
                kind: ErrorKind::Timeout,
                latency_ms: self.behaviour().timeout_ms,
            };
        }
        let version = state.schema_version(endpoint);
        let v = ep
            .versions
            .iter()
            .find(|v| v.version == version)
            .unwrap_or(&ep.versions[0]);
        let mut seed = [0u8; 32];
        if !ep.deterministic {
            rng.fill_bytes(&mut seed);
        }
        let response = Body::new(self.respond(ep, v, request, ctx.seed, ctx.now_ms, seed));
        let cost_rao = (ep.price_rao as f64 * state.price_multiplier).round() as u64;
        let receipt = self.sign_receipt(request, &response, ctx.now_ms);
        CallOutcome::Ok {
            response,
            latency_ms,
            cost_rao,
            receipt,
        }
    }

    /// Call `endpoint` with its `minimal_input`, what a validator probes with.
    pub fn probe<R: Rng + ?Sized>(
        &self,
        state: &SubnetState,
        endpoint: &str,
        ctx: CallContext,
        rng: &mut R,
    ) -> CallOutcome {
        match self.entry().endpoints.iter().find(|e| e.name == endpoint) {
            Some(e) => self.call(
                state,
                endpoint,
                &Body::new(e.minimal_input.clone()),
                ctx,
                rng,
            ),
            None => CallOutcome::Err {
                kind: ErrorKind::UnknownEndpoint,
                latency_ms: self.reject_latency_ms(),
            },
        }
    }

    /// The response `endpoint` gives under output schema `version`, without latency, failures
    /// or validation: what an auditor re-running a deterministic call expects, and what tests
    /// check every version with. `None` for an unknown endpoint or version.
    pub fn generate<R: Rng + ?Sized>(
        &self,
        endpoint: &str,
        version: u32,
        request: &Value,
        ctx: CallContext,
        rng: &mut R,
    ) -> Option<Value> {
        let ep = self.endpoint(endpoint)?;
        let v = ep.versions.iter().find(|v| v.version == version)?;
        let mut seed = [0u8; 32];
        if !ep.deterministic {
            rng.fill_bytes(&mut seed);
        }
        Some(self.respond(
            ep,
            v,
            &Body::new(request.clone()),
            ctx.seed,
            ctx.now_ms,
            seed,
        ))
    }

    /// Build a response. Deterministic endpoints draw everything from a stream keyed by
    /// `(world seed, netuid, endpoint, version, request)`; others draw from `call_seed` (mixed
    /// with the keyed stream's answer at the subnet's `agreement`) and then overwrite their
    /// stable fields from that keyed stream.
    pub(crate) fn respond(
        &self,
        ep: &CompiledEndpoint,
        v: &CompiledVersion,
        request: &Body,
        world_seed: u64,
        now_ms: u64,
        call_seed: [u8; 32],
    ) -> Value {
        let max_items = self.behaviour().max_items as usize;
        let agreement = self.behaviour().agreement;
        let needs_key = ep.deterministic || !v.stable.is_empty() || agreement > 0.0;
        let key = if needs_key {
            self.response_key(ep, v.version, request, world_seed)
        } else {
            [0; 32]
        };
        if ep.deterministic {
            let ctx = GenCtx::new(request, plan::BASE_MS, max_items);
            return plan::generate(&v.plan, &ctx, &mut plan::rng_from(key), 0);
        }
        let ctx = GenCtx::new(request, now_ms, max_items);
        let mut response = if agreement > 0.0 {
            // Streams far from the stable fields' (1, 2, …) so the two never share draws.
            let keyed_stream = |stream: u64| {
                let mut rng = plan::rng_from(key);
                rng.set_stream(stream);
                rng
            };
            let mut mix = plan::Mix {
                keyed: keyed_stream(u64::MAX),
                fresh: plan::rng_from(call_seed),
                offset: keyed_stream(u64::MAX - 1).random::<f64>(),
                decided: 0,
                agreement,
            };
            plan::generate_mixed(&v.plan, &ctx, &mut mix, 0)
        } else {
            plan::generate(&v.plan, &ctx, &mut plan::rng_from(call_seed), 0)
        };
        if !v.stable.is_empty() {
            let stable_ctx = GenCtx::new(request, plan::BASE_MS, max_items);
            let mut rng = plan::rng_from(key);
            for (i, (pointer, node, idx)) in v.stable.iter().enumerate() {
                rng.set_stream(i as u64 + 1);
                if let Some(slot) = response.pointer_mut(pointer) {
                    *slot = plan::generate(node, &stable_ctx, &mut rng, *idx);
                }
            }
        }
        response
    }

    /// Key of the deterministic stream for one request: derived from the request's canonical
    /// hash, so equal JSON gives equal keys whatever the field order on the wire, and the hash
    /// the caller and the receipt need anyway is computed once.
    ///
    /// Replay binding's nonce (`orchestra_nonce`): a deterministic endpoint ignores it, as a real
    /// one ignores a field it does not know, so its output depends only on the rest of the
    /// request and an audit's re-execution reproduces it exactly. A non-deterministic endpoint's
    /// stable fields are keyed by the full request, nonce included, so honest calls for
    /// different challenges differ there and a response replayed under another challenge's
    /// nonce does not agree with a re-execution (docs/mechanism.md §3, "Replay binding"). A
    /// request without the nonce is keyed exactly as before the nonce existed.
    fn response_key(
        &self,
        ep: &CompiledEndpoint,
        version: u32,
        request: &Body,
        world_seed: u64,
    ) -> [u8; 32] {
        let request_hash = match request.as_object() {
            Some(fields) if ep.deterministic && fields.contains_key(NONCE_FIELD) => {
                let mut without = fields.clone();
                without.remove(NONCE_FIELD);
                hash_value(&Value::Object(without))
            }
            _ => request.hash(),
        };
        let mut hasher = blake3::Hasher::new_derive_key("orchestra mocks response v2");
        hasher.update(&world_seed.to_le_bytes());
        hasher.update(&self.netuid().to_le_bytes());
        hasher.update(&version.to_le_bytes());
        hasher.update(&(ep.name.len() as u64).to_le_bytes());
        hasher.update(ep.name.as_bytes());
        hasher.update(&request_hash.0);
        hasher.finalize().into()
    }

    fn sign_receipt(&self, request: &Body, response: &Body, started_at_ms: u64) -> Option<Receipt> {
        let key = self.hotkey.as_ref()?;
        let req = request.hash();
        let resp = response.hash();
        let sig = key.sign(&receipt_message(&req, &resp, started_at_ms));
        Some(Receipt {
            scheme: key.scheme().name().to_string(),
            signature: format!("0x{}", hex::encode(sig)),
        })
    }

    /// Rejections (unknown endpoint, bad request, down) come back fast: a tenth of the median.
    fn reject_latency_ms(&self) -> u64 {
        ((self.mu.exp() / 10.0).round() as u64).max(1)
    }

    /// Latency multiplier and load-shedding probability at `load` calls per second.
    fn overload(&self, load: f64) -> (f64, f64) {
        let Some(capacity) = self.behaviour().capacity_per_s else {
            return (1.0, 0.0);
        };
        let u = load / capacity;
        // NaN load (a driver bug) counts as no load rather than poisoning every latency.
        if u.is_nan() || u <= 1.0 {
            return (1.0, 0.0);
        }
        let o = self.behaviour().overload;
        (
            u.powf(o.latency_exponent),
            (o.failure_slope * (u - 1.0)).min(1.0),
        )
    }

    /// True metrics at `load` calls per second: latency quantiles of the model, reliability
    /// counting random failures, shedding and timeouts, and the current price.
    pub fn true_metrics(&self, state: &SubnetState, load: f64) -> Metrics {
        let (load_mult, shed) = self.overload(load);
        let mult = load_mult * state.latency_multiplier;
        let p50 = self.mu.exp() * mult;
        let p95 = (self.mu + Z95 * self.sigma).exp() * mult;
        let reliability = if state.outage || state.deprecated {
            0.0
        } else {
            let fail = (self.failure_rate + state.extra_failure_rate).min(1.0);
            let timeout = self.behaviour().timeout_ms as f64;
            let p_timeout = if self.sigma > 0.0 {
                1.0 - normal_cdf(((timeout / mult).ln() - self.mu) / self.sigma)
            } else if p50 > timeout {
                1.0
            } else {
                0.0
            };
            (1.0 - shed) * (1.0 - fail) * (1.0 - p_timeout)
        };
        Metrics {
            p50_latency_ms: p50.round() as u64,
            p95_latency_ms: p95.round() as u64,
            reliability,
            cost_per_query_rao: (self.price_rao as f64 * state.price_multiplier).round() as u64,
        }
    }

    /// The Ledger entry as it really is now, at nominal load: current output schemas and
    /// stable fields, removed endpoints gone, true metrics and status, `version` counting the
    /// entry-visible events applied. What Ledger accuracy is scored against.
    pub fn true_entry(&self, state: &SubnetState) -> Entry {
        self.true_entry_under_load(state, 0.0)
    }

    /// [`MockSubnet::true_entry`] at `load` calls per second.
    pub fn true_entry_under_load(&self, state: &SubnetState, load: f64) -> Entry {
        let mut entry = self.entry().clone();
        entry
            .endpoints
            .retain(|e| !state.removed_endpoints.contains(&e.name));
        for e in &mut entry.endpoints {
            let version = state.schema_version(&e.name);
            if let Some(schema) = self.output_schema(&e.name, version) {
                e.output_schema = schema.clone();
            }
            if let Some(stable) = self.stable_fields(&e.name, version) {
                e.stable_fields = stable.to_vec();
            }
        }
        let metrics = self.true_metrics(state, load);
        let nominal = self.true_metrics(&SubnetState::default(), 0.0);
        entry.status = if state.deprecated {
            Status::Deprecated
        } else if state.outage
            || entry.status == Status::Degraded
            || metrics.reliability < nominal.reliability - 0.1
            || metrics.p95_latency_ms > 2 * nominal.p95_latency_ms
        {
            Status::Degraded
        } else {
            Status::Active
        };
        entry.metrics = metrics;
        entry.version += state.revision;
        entry
    }
}

/// Standard normal CDF (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7: plenty for metrics).
fn normal_cdf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}
