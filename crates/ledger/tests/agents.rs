//! The agent surface of the Ledger API in process: each tool's answer against its own output
//! schema and against the REST answer it mirrors, the A2A card, and pay per call on the read
//! routes (402 → pay → 200, replay refused) with the settlement test double.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use orchestra_chain::{Transfer, TransferLookup};
use orchestra_ledger::access::hash_key;
use orchestra_ledger::agents::{AgentTools, Catalog};
use orchestra_ledger::log::InclusionProof;
use orchestra_ledger::server::{AppState, ServerConfig, router};
use orchestra_ledger::store::{MemoryStore, Store, Tier};
use orchestra_protocol::Hotkey;
use orchestra_x402::{
    MemorySpent, PAYMENT_REQUIRED, PAYMENT_SIGNATURE, PaymentPayload, PaymentRequired, Paywall,
    Price, TestSettlement, decode_header, encode_header,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    settle: Arc<TestSettlement>,
    paywall: Arc<Paywall>,
    _rt: tokio::runtime::Runtime,
}

fn start() -> Server {
    let mut store = MemoryStore::new();
    store
        .create_key(hash_key("k"), Tier::Production, None, 0)
        .unwrap();
    let store: Box<dyn Store> = Box::new(store);
    let node = seeded_node(store);
    let settle = Arc::new(TestSettlement::new());
    let paywall = Arc::new(
        Paywall::new(
            Price {
                pay_to: Hotkey::from_uri("//Ferdie").unwrap().ss58(),
                network: "bittensor:test".into(),
                rao: 5_000,
                max_timeout_seconds: 60,
                description: "a read".into(),
            },
            settle.clone(),
            Arc::new(MemorySpent::default()),
        )
        .unwrap(),
    );
    let config = ServerConfig {
        paywall: Some(paywall.clone()),
        public_url: Some("https://ledger.example".into()),
        ..ServerConfig::default()
    };
    let state = AppState::new(node, config);
    let (addr, rt) = serve_loopback(router(state.clone()));
    Server {
        addr,
        state,
        settle,
        paywall,
        _rt: rt,
    }
}

fn get(s: &Server, target: &str, headers: &[(&str, String)]) -> Resp {
    http(s.addr, "GET", target, headers, b"").unwrap()
}

fn tool(s: &Server, name: &str, args: Value) -> Result<Value, (String, String)> {
    let tools = AgentTools::new(s.state.clone(), None);
    s._rt
        .block_on(tools.call(name, args))
        .map_err(|f| (f.code, f.message))
}

fn assert_fits(name: &str, out: &Value) {
    let spec = Catalog::embedded().get(name).unwrap();
    let v = jsonschema::draft202012::new(&spec.output).unwrap();
    let errors: Vec<String> = v.iter_errors(out).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}");
}

#[test]
fn each_tool_answers_in_its_schema_and_agrees_with_the_rest_api() {
    let s = start();
    let key = [("Authorization", "Bearer k".to_string())];

    let caps = tool(&s, "list_capabilities", json!({})).unwrap();
    assert_fits("list_capabilities", &caps);
    let tag = caps["capabilities"][0]["capability"]
        .as_str()
        .unwrap()
        .to_string();

    let found = tool(&s, "find_subnets", json!({ "capability": tag })).unwrap();
    assert_fits("find_subnets", &found);
    let rest = get(&s, &format!("/v1/capabilities/{tag}"), &key).json();
    assert_eq!(found["endpoints"], rest["endpoints"]);
    assert_eq!(
        caps["capabilities"][0]["endpoints"].as_u64().unwrap() as usize,
        rest["endpoints"].as_array().unwrap().len()
    );
    let one = tool(&s, "find_subnets", json!({ "capability": tag, "limit": 1 })).unwrap();
    assert_eq!(one["endpoints"].as_array().unwrap().len(), 1);
    assert_eq!(one["endpoints"][0], rest["endpoints"][0]);

    let netuid = found["endpoints"][0]["netuid"].as_u64().unwrap();
    let entry = tool(&s, "get_entry", json!({ "netuid": netuid })).unwrap();
    assert_fits("get_entry", &entry);
    let rest = get(&s, &format!("/v1/subnets/{netuid}"), &key).json();
    assert_eq!(entry["entry"], rest["entry"]);
    let proof: InclusionProof = serde_json::from_value(entry["proof"].clone()).unwrap();
    proof.verify().unwrap();
    proof.head.verify().unwrap();
    assert_eq!(u64::from(proof.record.netuid), netuid);
    // A whole number sent as a float (as protobuf-based clients do) is the same argument.
    let again = tool(&s, "get_entry", json!({ "netuid": netuid as f64 })).unwrap();
    assert_eq!(again, entry);
    assert_eq!(proof.head, s.state.with_node(|n| n.signed_head().clone()));

    let cmp = tool(&s, "compare_subnets", json!({ "capability": tag })).unwrap();
    assert_fits("compare_subnets", &cmp);
    let rows = cmp["rows"].as_array().unwrap();
    let live: Vec<&Value> = rows
        .iter()
        .filter(|r| r["status"] != "deprecated")
        .collect();
    let min_by = |k: &str| {
        live.iter()
            .min_by(|a, b| {
                a[k].as_f64()
                    .unwrap()
                    .total_cmp(&b[k].as_f64().unwrap())
                    .then(a["netuid"].as_u64().cmp(&b["netuid"].as_u64()))
            })
            .map(|r| r["netuid"].clone())
            .unwrap()
    };
    assert_eq!(cmp["cheapest"], min_by("cost_per_query_rao"));
    assert_eq!(cmp["fastest"], min_by("p50_latency_ms"));
    let all: Vec<u64> = s
        .state
        .with_node(|n| n.state().entries.keys().map(|k| u64::from(*k)).collect());
    let pick = json!([all[2], all[0]]);
    let cmp = tool(&s, "compare_subnets", json!({ "netuids": pick })).unwrap();
    assert_fits("compare_subnets", &cmp);
    let got: Vec<u64> = cmp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["netuid"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [all[2], all[0]], "rows keep the asked order");

    let head = tool(&s, "get_head", json!({})).unwrap();
    assert_fits("get_head", &head);
    assert_eq!(head["head"], get(&s, "/v1/head", &key).json()["head"]);
}

#[test]
fn bad_tool_input_names_the_problem() {
    let s = start();
    let cases = [
        (
            "find_subnets",
            json!({ "capability": "" }),
            "invalid_arguments",
            "/capability",
        ),
        (
            "find_subnets",
            json!({ "capability": "nope" }),
            "unknown_capability",
            "known capabilities:",
        ),
        (
            "get_entry",
            json!({ "netuid": -1 }),
            "invalid_arguments",
            "/netuid",
        ),
        (
            "get_entry",
            json!({ "netuid": 999 }),
            "unknown_subnet",
            "999",
        ),
        (
            "compare_subnets",
            json!({ "netuids": [1, 1] }),
            "invalid_arguments",
            "/netuids",
        ),
        (
            "compare_subnets",
            json!({ "netuids": [1], "capability": "x" }),
            "invalid_arguments",
            "oneOf",
        ),
        ("get_head", json!([]), "invalid_arguments", "object"),
        ("submit_objective", json!({}), "unknown_tool", "tools:"),
    ];
    for (name, args, code, needle) in cases {
        let (c, m) = tool(&s, name, args.clone()).unwrap_err();
        assert_eq!(c, code, "{name} {args}: {m}");
        assert!(m.contains(needle), "{name} {args}: {m:?} lacks {needle:?}");
    }
}

#[test]
fn the_agent_card_names_every_skill_the_mcp_endpoint_and_the_price() {
    let s = start();
    let card = get(&s, "/.well-known/agent-card.json", &[]).json();
    let skills: Vec<&str> = card["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        skills,
        [
            "list_capabilities",
            "find_subnets",
            "get_entry",
            "compare_subnets",
            "get_head"
        ]
    );
    let iface = &card["supportedInterfaces"][0];
    assert_eq!(iface["url"], "https://ledger.example/a2a");
    assert_eq!(
        (
            iface["protocolBinding"].as_str(),
            iface["protocolVersion"].as_str()
        ),
        (Some("JSONRPC"), Some("1.0"))
    );
    let ext = card["capabilities"]["extensions"].as_array().unwrap();
    assert_eq!(ext[0]["params"]["endpoint"], "https://ledger.example/mcp");
    let paid = &ext[1]["params"]["paid"][0];
    assert_eq!(paid["accepts"][0]["amount"], "5000");
    assert_eq!(paid["routes"][1], "GET /v1/subnets/{netuid}");
    for k in [
        "name",
        "description",
        "version",
        "supportedInterfaces",
        "defaultInputModes",
        "securitySchemes",
        "securityRequirements",
    ] {
        assert!(!card[k].is_null(), "card lacks {k}");
    }
}

#[test]
fn a_read_is_paid_per_call_and_a_payment_buys_one_read() {
    let s = start();
    let target = "/v1/subnets/42";
    let r = get(&s, target, &[]);
    assert_eq!(r.status, 402);
    let quote: PaymentRequired = decode_header(r.header(PAYMENT_REQUIRED).unwrap()).unwrap();
    let accepted = quote.accepts[0].clone();
    assert_eq!(accepted.amount, "5000");

    let alice = Hotkey::from_uri("//Alice").unwrap();
    let payee = orchestra_protocol::ss58::decode(&accepted.pay_to)
        .unwrap()
        .0;
    let payer = orchestra_protocol::ss58::decode(&alice.ss58()).unwrap().0;
    s.settle.insert(
        [1; 32],
        2,
        TransferLookup {
            block_number: 7,
            finalized_head: 7,
            finalized: true,
            succeeded: true,
            transfers: vec![Transfer {
                from: payer,
                to: payee,
                amount_rao: 5_000,
            }],
        },
    );
    let h = encode_header(&PaymentPayload::sign(
        &alice, &accepted, [1; 32], 2, "GET", target,
    ));
    let paid = get(&s, target, &[(PAYMENT_SIGNATURE, h.clone())]);
    assert_eq!(paid.status, 200);
    assert_eq!(paid.json()["entry"]["netuid"], 42);
    let again = get(&s, target, &[(PAYMENT_SIGNATURE, h)]);
    assert_eq!(again.status, 402);
    assert_eq!(again.json()["error"], "payment_already_used");
    // Keys still work; writes are never for sale; MCP needs a credential.
    assert_eq!(
        get(&s, target, &[("Authorization", "Bearer k".into())]).status,
        200
    );
    assert_eq!(
        http(s.addr, "POST", "/v1/changes", &[], b"{}")
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        http(s.addr, "POST", "/mcp", &[], b"{}").unwrap().status,
        401
    );
    assert_eq!(s.paywall.price().rao, 5_000);
}

#[test]
fn a2a_json_rpc_runs_skills_and_refuses_what_it_does_not_serve() {
    let s = start();
    let rpc = |body: &str, version: Option<&str>| {
        let mut headers = vec![
            ("Authorization", "Bearer k".to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        if let Some(v) = version {
            headers.push(("A2A-Version", v.to_string()));
        }
        let r = http(s.addr, "POST", "/a2a", &headers, body.as_bytes()).unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    let send = |parts: Value| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "SendMessage", "params": {"message": {
            "messageId": "m1", "contextId": "c1", "role": "ROLE_USER", "parts": parts}}})
        .to_string()
    };
    let ok = rpc(
        &send(json!([{"data": {"skill": "get_entry", "arguments": {"netuid": 42}}}])),
        Some("1.0"),
    );
    assert_eq!(ok["id"], 7);
    let msg = &ok["result"]["message"];
    assert_eq!(
        (msg["role"].as_str(), msg["contextId"].as_str()),
        (Some("ROLE_AGENT"), Some("c1"))
    );
    let proof: InclusionProof =
        serde_json::from_value(msg["parts"][0]["data"]["proof"].clone()).unwrap();
    proof.verify().unwrap();

    let code = |v: &Value| v["error"]["code"].as_i64().unwrap();
    let bad = rpc(
        &send(json!([{"data": {"skill": "get_entry", "arguments": {"netuid": -3}}}])),
        Some("1.0"),
    );
    assert_eq!(code(&bad), -32602);
    assert_eq!(
        bad["error"]["data"][0]["metadata"]["error"],
        "invalid_arguments"
    );
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/netuid")
    );
    let text_only = rpc(
        &send(json!([{"text": "find me a search API"}])),
        Some("1.0"),
    );
    assert_eq!(code(&text_only), -32602);
    assert!(
        text_only["error"]["message"]
            .as_str()
            .unwrap()
            .contains("skills: list_capabilities")
    );
    let old = rpc(&send(json!([{"data": {"skill": "get_head"}}])), None);
    assert_eq!(code(&old), -32009);
    let task = rpc(
        r#"{"jsonrpc":"2.0","id":1,"method":"GetTask","params":{"id":"x"}}"#,
        Some("1.0"),
    );
    assert_eq!(code(&task), -32001);
    let stream = rpc(
        r#"{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage","params":{}}"#,
        Some("1.0"),
    );
    assert_eq!(code(&stream), -32004);
    let nope = rpc(r#"{"jsonrpc":"2.0","id":1,"method":"Nope"}"#, Some("1.0"));
    assert_eq!(code(&nope), -32601);
    assert_eq!(code(&rpc("{oops", Some("1.0"))), -32700);
    assert_eq!(
        code(&rpc(r#"{"id":1,"method":"SendMessage"}"#, Some("1.0"))),
        -32600
    );
    // Like /mcp, /a2a needs a credential.
    assert_eq!(
        http(s.addr, "POST", "/a2a", &[], b"{}").unwrap().status,
        401
    );
}
