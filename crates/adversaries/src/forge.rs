//! Helpers several strategies share: invented sub-responses, minimal sealed answers, objective
//! fingerprints and per-strategy RNG streams.

use orchestra_miner::assemble::{conform, example};
use orchestra_miner::{Answer, StrategyCtx, SubCall, SubCallReply};
use orchestra_protocol::hash::{Hash32, hash_canonical};
use orchestra_protocol::ledger::Proposal;
use orchestra_protocol::messages::{Challenge, Objective, Plan};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

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
    let data = example(&challenge.target_schema);
    match ctx.seal(challenge, Plan::default(), Vec::new(), data, proposals) {
        Ok(r) => Answer::Respond(Box::new(r)),
        Err(_) => Answer::Decline,
    }
}
