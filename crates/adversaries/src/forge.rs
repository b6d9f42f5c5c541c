//! Helpers several strategies share: invented sub-responses and the per-challenge bookkeeping
//! that serves them ([`Inventions`]), minimal and shell answers, objective fingerprints and
//! per-strategy RNG streams.

use crate::track::CallTracker;
use orchestra_miner::assemble::{conform, example};
use orchestra_miner::{Answer, CallAction, Route, RoutedPlan, StrategyCtx, SubCall, SubCallReply};
use orchestra_protocol::hash::{Hash32, hash_canonical};
use orchestra_protocol::ledger::Proposal;
use orchestra_protocol::messages::{Challenge, Objective, Plan};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The RNG stream of one strategy instance, keyed by purpose so that two strategies built from
/// one seed never share draws.
pub fn stream(seed: u64, purpose: &str) -> ChaCha8Rng {
    let mut h = blake3::Hasher::new_derive_key("orchestra adversaries rng v1");
    h.update(&seed.to_le_bytes());
    h.update(purpose.as_bytes());
    ChaCha8Rng::from_seed(*h.finalize().as_bytes())
}

/// A fingerprint of what was asked (kind, text, params), equal across the challenges of one
/// validator round, which all carry the same objective.
pub fn objective_key(objective: &Objective) -> Hash32 {
    hash_canonical(objective).unwrap_or_default()
}

/// A schema-shaped reply invented for `call` without calling anything: the endpoint's output
/// schema filled from the request itself (so `request_id` is echoed, as a real subnet does) and
/// from its inputs, claiming `cost_rao`.
pub fn invent_reply(call: &SubCall, output_schema: &Value, cost_rao: u64) -> SubCallReply {
    let inputs: Vec<&Value> = call
        .request
        .get("inputs")
        .and_then(Value::as_object)
        .map(|m| m.values().collect())
        .unwrap_or_default();
    let mut response = conform(output_schema, Some(&call.request), &inputs);
    // A synthesis-style endpoint returns the target shape under some key; fill it too.
    if let (Some(target), Some(obj)) = (call.request.get("target_schema"), response.as_object_mut())
    {
        for v in obj.values_mut() {
            if v.as_object().is_some_and(serde_json::Map::is_empty) {
                *v = conform(target, call.request.get("params"), &inputs);
            }
        }
    }
    SubCallReply {
        response: response.into(),
        subnet_hotkey: format!("subnet-{}-hotkey", call.netuid),
        cost_rao,
        receipt: None,
    }
}

/// `reply` with the echoed `request_id` replaced by `call`'s own, so a reused response no longer
/// hashes like the original (the replay set misses it; only an audit can tell).
pub fn disguise(mut reply: SubCallReply, call: &SubCall) -> SubCallReply {
    if let Some(rid) = call.request.get("request_id")
        && reply.response.get("request_id").is_some()
        && let Some(obj) = reply.response.make_mut().as_object_mut()
    {
        obj.insert("request_id".into(), rid.clone());
    }
    reply
}

/// The cheapest answer that still carries `proposals`: no sub-calls, the least data the target
/// schema accepts, a valid proof. `Decline` if even that cannot be sealed.
pub fn minimal_answer(
    ctx: &StrategyCtx<'_>,
    challenge: &Challenge,
    proposals: Vec<Proposal>,
) -> Answer {
    sealed_without_calls(ctx, challenge, example(&challenge.target_schema), proposals)
}

/// `data` sealed with no sub-calls: a valid proof over an empty pipeline. `Decline` if it cannot
/// be sealed (data JCS cannot hash).
pub fn sealed_without_calls(
    ctx: &StrategyCtx<'_>,
    challenge: &Challenge,
    data: Value,
    proposals: Vec<Proposal>,
) -> Answer {
    match ctx.seal(challenge, Plan::default(), Vec::new(), data, proposals) {
        Ok(r) => Answer::Respond(Box::new(r)),
        Err(_) => Answer::Decline,
    }
}

/// A "shell" for `schema`: data the target schema accepts and nothing a sub-response supplied —
/// placeholder strings, the least numbers, the first enum choice, arrays at `minItems` — which is
/// [`example`](orchestra_miner::assemble::example).
pub fn shell_data(schema: &Value) -> Value {
    example(schema)
}

/// The sub-plan of `routed` with at most `max_steps` steps, closed under dependencies, that
/// favours cheap steps: steps are taken by their primary route's Ledger price (ties by plan
/// order), each with whatever dependencies it still lacks, while the total stays within
/// `max_steps`. `None` when not even one step fits. Steps keep their plan order.
pub fn cheapest_subplan(routed: &RoutedPlan, max_steps: usize) -> Option<RoutedPlan> {
    let steps = &routed.plan.steps;
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let cost = |i: usize| {
        routed
            .routes
            .get(i)
            .and_then(|r| r.first())
            .map_or(u64::MAX, |r| r.cost_rao)
    };
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| (cost(i), i));
    let mut keep = BTreeSet::new();
    for i in order {
        // The step and its transitive dependencies not kept yet.
        let mut need = BTreeSet::new();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            if keep.contains(&j) || !need.insert(j) {
                continue;
            }
            if let Some(s) = steps.get(j) {
                stack.extend(s.depends_on.iter().filter_map(|d| index.get(d.as_str())));
            }
        }
        if keep.len() + need.len() <= max_steps {
            keep.extend(need);
        }
    }
    if keep.is_empty() {
        return None;
    }
    let mut out = RoutedPlan {
        plan: Plan::default(),
        routes: Vec::new(),
    };
    for i in keep {
        if let (Some(s), Some(r)) = (steps.get(i), routed.routes.get(i)) {
            out.plan.steps.push(s.clone());
            out.routes.push(r.clone());
        }
    }
    Some(out)
}

/// Which steps of one challenge are answered with invented replies, and what each of their
/// routes claims.
#[derive(Debug, Clone)]
struct Invention {
    /// Step ids to invent.
    steps: BTreeSet<String>,
    /// (netuid, endpoint) → what an invented reply there is made from, for every accepted route
    /// of those steps.
    endpoints: BTreeMap<(u16, String), InventedEndpoint>,
}

/// What an invented reply on one endpoint is made from: the Ledger's description of it.
#[derive(Debug, Clone)]
pub struct InventedEndpoint {
    /// The Ledger's output schema, which the reply is filled from.
    pub output_schema: Value,
    /// The Ledger price the reply claims, rao.
    pub cost_rao: u64,
    /// The Ledger's `stable_fields` pointers, which an audit compares.
    pub stable_fields: Vec<String>,
}

/// Per-challenge invented sub-responses, shared by `fabricator` and `invented_step`: a strategy
/// [`register`](Self::register)s the steps of a challenge it will invent when it answers, and
/// hands every sub-call to [`on_subcall`](Self::on_subcall), which answers the chosen ones with
/// [`invent_reply`] at the route's Ledger price (the driver sends the rest). The challenge a
/// call serves is found again through its `request_id` ([`CallTracker`]), so concurrent
/// challenges keep their own decisions.
#[derive(Debug, Clone, Default)]
pub struct Inventions {
    tracker: CallTracker<Invention>,
    invented: u64,
}

impl Inventions {
    /// Invent the replies of steps `chosen` (indices into `routed.plan.steps`) of `challenge`,
    /// answered by `miner`, on those of their routes `accept` takes (a rejected route, say a
    /// deterministic fallback, is really called). Returns how many chosen steps have an
    /// accepted route in the miner's view.
    pub fn register(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        routed: &RoutedPlan,
        chosen: impl IntoIterator<Item = usize>,
        accept: impl Fn(&Route) -> bool,
    ) -> usize {
        let mut invention = Invention {
            steps: BTreeSet::new(),
            endpoints: BTreeMap::new(),
        };
        let mut covered = 0;
        for i in chosen {
            let (Some(step), Some(routes)) = (routed.plan.steps.get(i), routed.routes.get(i))
            else {
                continue;
            };
            invention.steps.insert(step.id.clone());
            let mut any = false;
            for r in routes.iter().filter(|r| accept(r)) {
                if let Some(ep) = ctx
                    .view
                    .entry(r.netuid)
                    .and_then(|e| e.endpoints.get(r.endpoint_index))
                {
                    invention.endpoints.insert(
                        (r.netuid, r.endpoint.clone()),
                        InventedEndpoint {
                            output_schema: ep.output_schema.clone(),
                            cost_rao: r.cost_rao,
                            stable_fields: ep.stable_fields.clone(),
                        },
                    );
                    any = true;
                }
            }
            covered += usize::from(any);
        }
        self.tracker.register(challenge, ctx.miner, invention);
        covered
    }

    /// The invented reply for `call` if its challenge registered its step and route, else
    /// [`CallAction::Send`].
    pub fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        self.on_subcall_patched(call, |_, _, _| {})
    }

    /// [`on_subcall`](Self::on_subcall), with `patch` given the call, the endpoint and the
    /// invented response to touch up before it is committed (say, to carry the stable fields a
    /// real reply showed).
    pub fn on_subcall_patched(
        &mut self,
        call: &SubCall,
        patch: impl FnOnce(&SubCall, &InventedEndpoint, &mut Value),
    ) -> CallAction {
        let Some(inv) = self.tracker.find(call) else {
            return CallAction::Send;
        };
        if !inv.steps.contains(&call.step_id) {
            return CallAction::Send;
        }
        let Some(ep) = inv.endpoints.get(&(call.netuid, call.endpoint.clone())) else {
            return CallAction::Send;
        };
        let mut reply = invent_reply(call, &ep.output_schema, ep.cost_rao);
        patch(call, ep, reply.response.make_mut());
        self.invented += 1;
        CallAction::Substitute(reply)
    }

    /// Sub-responses invented so far.
    pub fn invented(&self) -> u64 {
        self.invented
    }
}
