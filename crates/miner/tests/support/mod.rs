//! Test fixtures shared by the miner and validator test suites (the validator's tests include
//! this file by path): the objective templates, a small Ledger, and fake subnets that answer
//! with a deterministic function of the request.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_miner::assemble::conform;
use orchestra_miner::{SubCall, SubCallOutcome, SubCallReply};
use orchestra_protocol::hash::hash_canonical;
use orchestra_protocol::ledger::{Access, Endpoint, Entry, Metrics, Status};
use orchestra_protocol::messages::NONCE_FIELD;
use serde_json::{Value, json};

/// The objective templates shipped under mocks/objectives (the one embedded list).
pub fn templates() -> Vec<ObjectiveTemplate> {
    orchestra_mechanism::templates::shipped().unwrap()
}

/// The output schema of every non-synthesis fake endpoint.
pub fn items_schema() -> Value {
    json!({
        "type": "object",
        "required": ["request_id", "items"],
        "properties": {
            "request_id": {"type": "string"},
            "items": {"type": "array", "items": {
                "type": "object", "required": ["title", "url", "score"],
                "properties": {"title": {"type": "string"}, "url": {"type": "string"},
                               "score": {"type": "number"}}}}
        }
    })
}

/// The output schema of the synthesis endpoint.
pub fn synthesis_schema() -> Value {
    json!({
        "type": "object",
        "required": ["request_id", "data"],
        "properties": {"request_id": {"type": "string"}, "data": {"type": "object"}}
    })
}

/// One fake endpoint.
pub fn endpoint(name: &str, capability: &str, deterministic: bool) -> Endpoint {
    Endpoint {
        name: name.into(),
        capability: capability.into(),
        access: Access::Gateway,
        method: "POST".into(),
        path: format!("/{name}"),
        auth_required: false,
        input_schema: json!({"type": "object"}),
        output_schema: if capability == "llm_synthesis" {
            synthesis_schema()
        } else {
            items_schema()
        },
        minimal_input: json!({"request_id": "probe", "objective": "ping", "params": {}}),
        deterministic,
        stable_fields: if deterministic {
            vec![]
        } else {
            vec!["/request_id".into()]
        },
    }
}

/// One fake entry serving `capability` at `p50` ms and `cost` rao.
pub fn entry(netuid: u16, capability: &str, p50: u64, cost: u64, reliability: f64) -> Entry {
    let deterministic = capability != "llm_synthesis" && capability != "social_scrape";
    Entry {
        netuid,
        name: format!("sn{netuid}"),
        description: format!("fake {capability}"),
        capabilities: vec![capability.into()],
        endpoints: vec![endpoint(capability, capability, deterministic)],
        metrics: Metrics {
            p50_latency_ms: p50,
            p95_latency_ms: p50 * 2,
            reliability,
            cost_per_query_rao: cost,
        },
        status: Status::Active,
        version: 1,
        last_verified_block: 1_000,
        verified_by: vec![],
    }
}

/// A Ledger serving every capability the templates use; web_search twice (22 is the better).
pub fn ledger_entries() -> Vec<Entry> {
    vec![
        entry(22, "web_search", 300, 300_000, 0.99),
        entry(23, "web_search", 900, 900_000, 0.90),
        entry(24, "social_scrape", 400, 300_000, 0.98),
        entry(25, "sentiment", 200, 200_000, 0.99),
        entry(26, "llm_synthesis", 1_500, 400_000, 0.97),
        entry(27, "web_scrape", 500, 400_000, 0.97),
        entry(28, "data_query", 300, 300_000, 0.99),
        entry(29, "translation", 250, 200_000, 0.99),
    ]
}

/// The fake subnets' answer to `request` at `netuid`/`endpoint`: a deterministic function of the
/// request (without its replay-binding nonce), echoing its `request_id`, conforming to the endpoint's output schema. Synthesis
/// fills the request's `target_schema` from its inputs.
pub fn respond(netuid: u16, endpoint: &str, request: &Value) -> Value {
    let request_id = request.get("request_id").cloned().unwrap_or(Value::Null);
    if endpoint == "llm_synthesis" {
        let inputs: Vec<&Value> = request
            .get("inputs")
            .and_then(Value::as_object)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        let schema = request
            .get("target_schema")
            .cloned()
            .unwrap_or(json!({"type": "object"}));
        let data = conform(&schema, request.get("params"), &inputs);
        return json!({"request_id": request_id, "data": data});
    }
    // Like a real endpoint, the fakes ignore replay binding's nonce, a field they do not know
    // (docs/mechanism.md §3): a request's output depends on everything else in it.
    let h = match request.as_object() {
        Some(fields) if fields.contains_key(NONCE_FIELD) => {
            let mut without = fields.clone();
            without.remove(NONCE_FIELD);
            hash_canonical(&without).unwrap().to_hex()
        }
        _ => hash_canonical(request).unwrap().to_hex(),
    };
    let items: Vec<Value> = (0..3)
        .map(|i| {
            json!({"title": format!("{endpoint} result {i} {}", &h[..8]),
                   "url": format!("https://sn{netuid}.example/{}/{i}", &h[8..16]),
                   "score": (i as f64) / 4.0,
                   "name": format!("Entity {}", &h[i * 4..i * 4 + 4])})
        })
        .collect();
    json!({"request_id": request_id, "items": items})
}

/// Cost per call of the fake subnets (their Ledger price).
pub fn cost(netuid: u16) -> u64 {
    ledger_entries()
        .iter()
        .find(|e| e.netuid == netuid)
        .map_or(0, |e| e.metrics.cost_per_query_rao)
}

/// The fake subnets as a [`orchestra_miner::local::drive`] closure: every call succeeds after
/// the entry's p50.
pub fn subnets(call: &SubCall) -> (SubCallOutcome, u64) {
    let p50 = ledger_entries()
        .iter()
        .find(|e| e.netuid == call.netuid)
        .map_or(100, |e| e.metrics.p50_latency_ms);
    let reply = SubCallReply {
        response: respond(call.netuid, &call.endpoint, &call.request).into(),
        subnet_hotkey: format!("subnet-{}-hotkey", call.netuid),
        cost_rao: cost(call.netuid),
        receipt: None,
    };
    (Ok(reply), p50)
}
