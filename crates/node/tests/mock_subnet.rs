//! `orchestra-mock-subnet` over HTTP: every endpoint of every shipped mock answers its minimal
//! input with a response valid against its output schema, receipts verify, a schema switch
//! through the admin API changes what is served, errors carry the model's statuses, and the real
//! binary serves a single file at the endpoint's own path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod miner_support;

use miner_support::*;
use orchestra_miner::compile_schema;
use orchestra_node::subnet_client::{
    HEADER_COST_RAO, HEADER_RECEIPT_SCHEME, HEADER_RECEIPT_SIGNATURE, HEADER_STARTED_AT_MS,
    HEADER_SUBNET_HOTKEY,
};
use orchestra_protocol::hash_value;
use orchestra_protocol::keys::{Scheme, verify_signature};
use orchestra_protocol::messages::receipt_message;
use orchestra_protocol::ss58;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: &Value,
    started: u64,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    http.request(method, format!("{base}{path}"))
        .header(HEADER_STARTED_AT_MS, started.to_string())
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_schema_valid_with_receipts() {
    let (addr, server) = start_mocks(0.0).await;
    let http = reqwest::Client::new();
    let set = mock_set();
    let mut receipts = 0;
    let mut served = 0;
    for mock in set.iter() {
        let netuid = mock.netuid();
        let base = format!("http://{addr}/sn/{netuid}");
        for ep in &mock.entry().endpoints {
            let schema = compile_schema(&ep.output_schema).unwrap();
            // Random failures are part of the model: retry until one call is served.
            let mut ok = None;
            for _ in 0..40 {
                let started = orchestra_node::auth::now_ms();
                let r = call(
                    &http,
                    &base,
                    &ep.method,
                    &ep.path,
                    &ep.minimal_input,
                    started,
                )
                .await;
                let status = r.status().as_u16();
                assert!(
                    [200, 500, 503, 504].contains(&status),
                    "{netuid}/{}: {status}",
                    ep.name
                );
                assert_eq!(
                    r.headers()[HEADER_SUBNET_HOTKEY].to_str().unwrap(),
                    server.hotkey(netuid).unwrap()
                );
                if status == 200 {
                    ok = Some((started, r));
                    break;
                }
            }
            let (started, r) = ok.unwrap_or_else(|| panic!("{netuid}/{} never served", ep.name));
            served += 1;
            let h = r.headers().clone();
            let cost: u64 = h[HEADER_COST_RAO].to_str().unwrap().parse().unwrap();
            assert_eq!(Some(cost), mock.price_rao(&ep.name));
            let body: Value = r.json().await.unwrap();
            assert!(
                schema.is_valid(&body),
                "{netuid}/{} response does not fit its schema: {body}",
                ep.name
            );
            if mock.behaviour().receipts {
                receipts += 1;
                let scheme = Scheme::from_name(h[HEADER_RECEIPT_SCHEME].to_str().unwrap()).unwrap();
                let sig = h[HEADER_RECEIPT_SIGNATURE].to_str().unwrap();
                let sig: [u8; 64] = hex::decode(sig.trim_start_matches("0x"))
                    .unwrap()
                    .try_into()
                    .unwrap();
                let (public, _) = ss58::decode(server.hotkey(netuid).unwrap()).unwrap();
                let msg =
                    receipt_message(&hash_value(&ep.minimal_input), &hash_value(&body), started);
                assert!(
                    verify_signature(scheme, &public, &msg, &sig),
                    "{netuid} receipt"
                );
                // The same signature does not cover another start time.
                let other = receipt_message(
                    &hash_value(&ep.minimal_input),
                    &hash_value(&body),
                    started + 1,
                );
                assert!(!verify_signature(scheme, &public, &other, &sig));
            } else {
                assert!(h.get(HEADER_RECEIPT_SIGNATURE).is_none());
            }
        }
    }
    assert!(served >= 12, "served {served} endpoints");
    assert!(receipts >= 1, "no mock signs receipts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_switch_changes_what_is_served_and_errors_have_statuses() {
    let (addr, _server) = start_mocks(0.0).await;
    let http = reqwest::Client::new();
    let set = mock_set();
    // Find an endpoint with a second schema version.
    let (mock, ep) = set
        .iter()
        .find_map(|m| {
            m.entry()
                .endpoints
                .iter()
                .find(|e| m.schema_versions(&e.name).unwrap().len() > 1)
                .map(|e| (m, e.clone()))
        })
        .expect("a mock with schema versions");
    let netuid = mock.netuid();
    let v1 = compile_schema(mock.output_schema(&ep.name, 1).unwrap()).unwrap();
    let v2 = compile_schema(mock.output_schema(&ep.name, 2).unwrap()).unwrap();
    let base = format!("http://{addr}/sn/{netuid}");
    let served = |body: Value| (v1.is_valid(&body), v2.is_valid(&body));
    let get_ok = || async {
        for _ in 0..40 {
            let r = call(&http, &base, &ep.method, &ep.path, &ep.minimal_input, 0).await;
            if r.status() == 200 {
                return r.json::<Value>().await.unwrap();
            }
        }
        panic!("never served");
    };
    assert_eq!(served(get_ok().await), (true, false));

    let r = http
        .post(format!("http://{addr}/admin/schema-version"))
        .json(&json!({"netuid": netuid, "endpoint": ep.name, "version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let state: Value = r.json().await.unwrap();
    assert_eq!(state["state"]["schema_versions"][&ep.name], 2);
    let idx = mock
        .entry()
        .endpoints
        .iter()
        .position(|e| e.name == ep.name)
        .unwrap();
    assert_eq!(
        &state["true_entry"]["endpoints"][idx]["output_schema"],
        mock.output_schema(&ep.name, 2).unwrap()
    );
    assert_eq!(served(get_ok().await), (false, true));

    // An unknown version, or a netuid missing on a multi-subnet server, is refused.
    let r = http
        .post(format!("http://{addr}/admin/schema-version"))
        .json(&json!({"netuid": netuid, "endpoint": ep.name, "version": 99}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http
        .post(format!("http://{addr}/admin/schema-version"))
        .json(&json!({"endpoint": ep.name, "version": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Back to v1 through the generic event route.
    let r = http
        .post(format!("http://{addr}/admin/event"))
        .json(&json!({"netuid": netuid, "event": {"kind": "schema_change", "endpoint": ep.name, "version": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(served(get_ok().await), (true, false));

    // An outage makes every call 503; a request that violates the input schema is a 400; an
    // unknown path a 404.
    let r = http
        .post(format!("http://{addr}/admin/event"))
        .json(&json!({"netuid": netuid, "event": {"kind": "outage_start"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = call(&http, &base, &ep.method, &ep.path, &ep.minimal_input, 0).await;
    assert_eq!(r.status(), 503);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"], "unavailable");
    let other = set.iter().find(|m| m.netuid() != netuid).unwrap();
    let oep = &other.entry().endpoints[0];
    let r = call(
        &http,
        &format!("http://{addr}/sn/{}", other.netuid()),
        &oep.method,
        &oep.path,
        &json!({"nope": []}),
        0,
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = call(&http, &base, "POST", "/no/such/path", &json!({}), 0).await;
    assert_eq!(r.status(), 404);
    // Every endpoint answers the method its Ledger entry names, and only that one.
    let get = mock_set()
        .iter()
        .flat_map(|m| {
            m.entry()
                .endpoints
                .iter()
                .map(move |e| (m.netuid(), e.clone()))
        })
        .find(|(_, e)| e.method == "GET")
        .expect("a GET endpoint among the mocks");
    let base = format!("http://{addr}/sn/{}", get.0);
    let r = call(&http, &base, "POST", &get.1.path, &get.1.minimal_input, 0).await;
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    let r = call(&http, &base, "GET", &get.1.path, &get.1.minimal_input, 0).await;
    assert_ne!(r.status(), 405);
}

#[test]
fn the_binary_serves_one_file_at_its_own_paths() {
    let file = mocks_dir().join("sn001_apex.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra-mock-subnet"))
        .args([
            "--mock",
            file.to_str().unwrap(),
            "--port",
            "0",
            "--latency-scale",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let result = rt.block_on(async {
        let http = reqwest::Client::new();
        let mut ok = 0;
        for _ in 0..20 {
            let r = http
                .post(format!("{url}/v1/chat/completions"))
                .json(&json!({"messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                let body: Value = r.json().await.unwrap();
                assert!(
                    body["choices"][0]["message"]["content"].is_string(),
                    "{body}"
                );
                ok += 1;
            }
        }
        let health: Value = http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let metrics = http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (ok, health, metrics)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (ok, health, metrics) = result;
    assert!(
        ok >= 15,
        "only {ok} of 20 calls served (failure rate is 4 %)"
    );
    assert_eq!(health["status"], "ok");
    assert!(
        metrics.contains(
            "orchestra_mock_calls_total{netuid=\"1\",endpoint=\"synthesize\",outcome=\"ok\"}"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_through_the_subnet_client_when_auth_is_required() {
    use orchestra_node::mock_subnet::{MockServer, MockServerConfig};
    use orchestra_node::subnet_client::SubnetClient;
    use std::sync::Arc;

    let set = mock_set();
    let server = MockServer::new(
        &set,
        MockServerConfig {
            latency_scale: 0.0,
            require_auth: true,
            ..MockServerConfig::default()
        },
    );
    let addr = serve(server.router()).await;
    let mock = set.iter().find(|m| m.behaviour().receipts).unwrap();
    let ep = &mock.entry().endpoints[0];
    let base = format!("http://{addr}/sn/{}", mock.netuid());
    let http = reqwest::Client::new();
    // Unsigned: refused.
    let r = call(&http, &base, &ep.method, &ep.path, &ep.minimal_input, 0).await;
    assert_eq!(r.status(), 401);
    // Signed (unbound) by the client: served, with hotkey, price and a verifying receipt.
    let client = SubnetClient::new(http, Some(Arc::new(hotkey("//Miner1"))));
    let mut served = None;
    for _ in 0..40 {
        let started = orchestra_node::auth::now_ms();
        match client
            .call(
                &base,
                "POST",
                &ep.path,
                &ep.minimal_input,
                started,
                std::time::Duration::from_secs(5),
            )
            .await
        {
            Ok(reply) => {
                served = Some((started, reply));
                break;
            }
            Err(e) => assert!(
                !matches!(e, orchestra_miner::SubCallFailure::Rejected(ref s) if s == "401"),
                "signed call refused"
            ),
        }
    }
    let (started, reply) = served.expect("served once in 40 tries");
    assert_eq!(reply.subnet_hotkey, server.hotkey(mock.netuid()).unwrap());
    assert_eq!(Some(reply.cost_rao), mock.price_rao(&ep.name));
    let receipt = reply.receipt.expect("receipt");
    let step = orchestra_protocol::messages::PipelineStep {
        step_id: "s".into(),
        netuid: mock.netuid(),
        endpoint: ep.name.clone(),
        subnet_hotkey: reply.subnet_hotkey.clone(),
        request: None,
        response: None,
        request_hash: hash_value(&ep.minimal_input),
        response_hash: hash_value(&reply.response),
        started_at_ms: started,
        latency_ms: 1,
        cost_rao: reply.cost_rao,
        receipt: Some(receipt.clone()),
    };
    assert!(orchestra_validator::audit::receipt_valid(&step, &receipt));
}
