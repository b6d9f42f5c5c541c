#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end on a devnet of the real binaries: Chopsticks (subtensor test runtime), the mock
//! subnets, an honest and a fabricating `orchestra-miner`, and `orchestra-validator`.
//!
//! Checks: challenges flow to both miners; the validator scores the honest miner above the
//! fabricator and sets weights that land on the chain (read back from chain storage); a schema
//! change on a mock subnet is proposed by the honest miner, verified by the validator, committed
//! to its change log and served by its Ledger API with an inclusion proof that verifies; an
//! organic request through `POST /v1/objectives` is answered; an agent using the official
//! Python MCP SDK lists and calls every tool at `/mcp` (including `submit_objective`); the A2A
//! agent card names the same skills; a caller without an API key buys one objective per call
//! with x402, paying with real TAO transfers on the chain (and is refused when it reuses a
//! payment, underpays, or signs for another call); `/metrics` counts all of it.
//!
//! Needs Node.js (Chopsticks) and the chain spec (`ORCHESTRA_CHAIN_SPEC`, default
//! `../shared/chain/raw_spec_testfinney.json`); fails with how to install them otherwise.

mod devnet_support;
#[path = "../../ledger/tests/support/mcp_agent.rs"]
mod mcp_agent;

use devnet_support::{binaries, wait_for};
use orchestra_chain::devnet::{account_balance, set_storage};
use orchestra_chain::{Chain, SubtensorChain, SubtensorConfig, WaitFor, caip2_network};
use orchestra_ledger::access::hash_key;
use orchestra_ledger::log::InclusionProof;
use orchestra_ledger::model::{ChangeRecord, ProposalKind};
use orchestra_ledger::server::{AppState, ReadSale, ServerConfig, router};
use orchestra_ledger::sqlite::SqliteStore;
use orchestra_ledger::store::{MemoryStore, Store, Tier};
use orchestra_ledger::{LedgerNode, VerifyParams};
use orchestra_node::devnet::{Devnet, DevnetConfig};
use orchestra_node::validator::OrganicAnswer;
use orchestra_protocol::Hotkey;
use orchestra_x402::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentPayload, PaymentRequired,
    PaymentRequirements, SettlementResponse, decode_header, encode_header,
};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn score(status: &Value, uid: u64) -> Option<(f64, f64, u64, u64)> {
    status["scores"].as_array()?.iter().find_map(|s| {
        (s["uid"].as_u64()? == uid).then(|| {
            (
                s["orchestration"].as_f64().unwrap_or(0.0),
                s["ledger"].as_f64().unwrap_or(0.0),
                s["observations"].as_u64().unwrap_or(0),
                s["strikes"].as_u64().unwrap_or(0),
            )
        })
    })
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The validator's Prometheus text.
async fn validator_metrics(http: &reqwest::Client, devnet: &Devnet) -> String {
    http.get(format!("{}/metrics", devnet.validator_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A user's `POST /v1/objectives` with API key `key`.
async fn post_objective(
    http: &reqwest::Client,
    devnet: &Devnet,
    key: &str,
    body: &Value,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{}/v1/objectives", devnet.validator_url))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
}

/// The x402 price of one objective, rao.
const PRICE_RAO: u64 = 1_000_000;
/// The objective kind the organic requests use.
const KIND: &str = "market_research";

/// A `POST /v1/objectives` without credentials, with `payment` in `PAYMENT-SIGNATURE` if
/// given: `(status, headers, JSON body)`.
async fn post_unauthenticated(
    http: &reqwest::Client,
    devnet: &Devnet,
    body: &Value,
    payment: Option<&str>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = http.post(format!("{}/v1/objectives", devnet.validator_url));
    if let Some(p) = payment {
        req = req.header(PAYMENT_SIGNATURE, p);
    }
    let r = req.json(body).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
    (status, headers, json)
}

/// A paid `POST /v1/objectives`, retried while the validator cannot settle it yet (`402
/// settlement_failed`: its view of the chain has not reached the transfer's finalized block).
async fn post_paid(
    http: &reqwest::Client,
    devnet: &Devnet,
    body: &Value,
    payment: &str,
    what: &str,
) -> (StatusCode, HeaderMap, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, headers, json) = post_unauthenticated(http, devnet, body, Some(payment)).await;
        if status != StatusCode::PAYMENT_REQUIRED || json["error"] != "settlement_failed" {
            return (status, headers, json);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the validator could not settle the transfer within 30 s: {json}\n{}",
            devnet.logs(25)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The x402 error code of a `402` (the body's `error`; the `PAYMENT-REQUIRED` quote repeats
/// it when a payment was offered and refused).
fn refusal(what: &str, (status, headers, json): &(StatusCode, HeaderMap, Value)) -> String {
    assert_eq!(*status, StatusCode::PAYMENT_REQUIRED, "{what}: {json}");
    let quote: PaymentRequired =
        decode_header(headers[PAYMENT_REQUIRED].to_str().unwrap()).unwrap();
    let code = json["error"].as_str().unwrap_or_default().to_string();
    let offered = (code != "payment_required").then_some(code.as_str());
    assert_eq!(quote.error.as_deref(), offered, "{what}: {json}");
    code
}

/// Pay `amount` rao to the quote's payee from `wallet` (signed by `payer`), in a finalized
/// block, and claim the transfer for `method path`: the `PAYMENT-SIGNATURE` value.
async fn pay(
    wallet: &SubtensorChain,
    payer: &Hotkey,
    quote: &PaymentRequirements,
    amount: u64,
    (method, path): (&str, &str),
) -> (String, String) {
    let (to, _) = orchestra_protocol::ss58::decode(&quote.pay_to).unwrap();
    let receipt = wallet
        .transfer(&to, amount)
        .await
        .unwrap_or_else(|e| panic!("transferring {amount} rao: {e}"));
    assert!(receipt.finalized, "{receipt:?}");
    let payload = PaymentPayload::sign(
        payer,
        quote,
        receipt.block_hash,
        receipt.extrinsic_index,
        method,
        path,
    );
    (
        encode_header(&payload),
        format!(
            "0x{}:{}",
            hex::encode(receipt.block_hash),
            receipt.extrinsic_index
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_end_to_end() {
    let t0 = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let mut config = DevnetConfig::new(binaries(), repo(), work.path().to_path_buf());
    // Sell objectives per call to callers without an API key, paid to //Ferdie.
    let pay_to = Hotkey::from_uri("//Ferdie").unwrap().ss58();
    config.validator_args.extend([
        "--x402.pay-to".to_string(),
        pay_to.clone(),
        "--x402.price-rao".to_string(),
        PRICE_RAO.to_string(),
    ]);
    let mut devnet = Devnet::start(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let up = t0.elapsed();
    let honest = devnet
        .miners
        .iter()
        .find(|m| m.strategy == "honest")
        .cloned()
        .unwrap();
    let fabricator = devnet
        .miners
        .iter()
        .find(|m| m.strategy == "fabricator")
        .cloned()
        .unwrap();
    let (h, f) = (u64::from(honest.uid), u64::from(fabricator.uid));

    // 1. Challenges flow to both miners.
    wait_for(
        &devnet,
        "3 challenges to each miner",
        Duration::from_secs(40),
        || async {
            let s = devnet.status().await.ok()?;
            let (a, b) = (score(&s, h)?, score(&s, f)?);
            (a.2 >= 3 && b.2 >= 3).then_some(())
        },
    )
    .await;

    // 2. A subnet changes its output schema: sn22's web_search (the only web_search, which every
    // objective uses) moves to version 2.
    let size_before = devnet.status().await.unwrap()["ledger_tree_size"]
        .as_u64()
        .unwrap();
    devnet
        .set_schema_version(22, "web_search", 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seeded = devnet.ledger_get("/v1/subnets/22").await.unwrap()["entry"].clone();
    let endpoint = seeded["endpoints"][0].clone();
    assert_eq!(endpoint["name"], "web_search");

    // The honest miner proposes it, the validator probes and commits it.
    let record: ChangeRecord = wait_for(
        &devnet,
        "the schema change in the Ledger change log",
        Duration::from_secs(40),
        || async {
            let log = devnet
                .ledger_get(&format!("/v1/log?since={size_before}"))
                .await
                .ok()?;
            let records: Vec<ChangeRecord> = serde_json::from_value(log["records"].clone()).ok()?;
            records
                .into_iter()
                .find(|r| r.kind == ProposalKind::SchemaUpdate && r.netuid == 22)
        },
    )
    .await;
    assert_eq!(record.path, "/endpoints/0/output_schema", "{record:?}");
    assert_eq!(
        record.old, endpoint["output_schema"],
        "it replaces the seeded schema"
    );
    // The new schema describes what the subnet serves now and the old one does not: check it on
    // a live call, as the validator's probe did.
    let live: Value = reqwest::Client::new()
        .post(format!(
            "{}/sn/22{}",
            devnet.mock_url,
            endpoint["path"].as_str().unwrap()
        ))
        .json(&endpoint["minimal_input"])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jsonschema::draft202012::is_valid(&record.new, &live),
        "{live}"
    );
    assert!(
        !jsonschema::draft202012::is_valid(&record.old, &live),
        "{live}"
    );
    assert_eq!(
        record.proposer, honest.hotkey,
        "credited to the honest miner"
    );
    assert_eq!(record.verifiers, vec![devnet.validator_hotkey.clone()]);

    // Served with an inclusion proof that verifies against the validator's signed head.
    let proof: InclusionProof = serde_json::from_value(
        devnet
            .ledger_get(&format!("/v1/proof/{}", record.seq))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap();
    assert_eq!(proof.record, record);
    proof.verify().expect("inclusion proof verifies");
    proof.head.verify().expect("tree head signature verifies");
    assert_eq!(proof.head.signer, devnet.validator_hotkey);
    assert!(proof.head.head.tree_size > record.seq);
    let entry = devnet.ledger_get("/v1/subnets/22").await.unwrap();
    assert_eq!(entry["entry"]["endpoints"][0]["output_schema"], record.new);

    // 3. Scores favour the honest miner, and the validator's weights land on chain.
    let (status, weights) = wait_for(
        &devnet,
        "a tempo closed with honest > 2 × fabricator and weights on chain",
        Duration::from_secs(40),
        || async {
            let s = devnet.status().await.ok()?;
            let (ho, hl, _, _) = score(&s, h)?;
            let (fo, fl, _, _) = score(&s, f)?;
            let w = devnet.weights_on_chain(0).await.ok()?;
            // Audits are sampled: after one tempo the fabricator may not have been caught
            // yet, so wait for the tempo where the scores have separated.
            (s["weights_set"].as_u64()? >= 1 && ho + hl > fo + fl && ho > 2.0 * fo && !w.is_empty())
                .then_some((s, w))
        },
    )
    .await;
    let (ho, _, hn, hs) = score(&status, h).unwrap();
    let (fo, _, fn_, fs) = score(&status, f).unwrap();
    println!(
        "honest O {ho:.4} ({hn} challenges, {hs} strikes); fabricator O {fo:.4} ({fn_} challenges, {fs} strikes)"
    );
    assert!(ho > 2.0 * fo, "honest {ho} vs fabricator {fo}");
    // (No claim that the honest miner is never struck: a step executed just before the schema
    // switch and re-executed just after it fails its audit — the drift the Ledger then fixes.)
    let weight = |uid: u64| {
        weights
            .iter()
            .find(|(u, _)| u64::from(*u) == uid)
            .map_or(0, |(_, w)| *w)
    };
    assert!(
        weight(h) > weight(f),
        "on-chain weights {weights:?} must favour the honest miner"
    );
    // The chain holds what the validator submitted (spec 103 stores sum-normalised u16s).
    let last = &status["last_weights"];
    let uids: Vec<u16> = serde_json::from_value(last["uids"].clone()).unwrap();
    let values: Vec<u64> = serde_json::from_value(last["values"].clone()).unwrap();
    let sum: u64 = values.iter().sum();
    let expected: Vec<(u16, u16)> = uids
        .iter()
        .zip(&values)
        .map(|(&u, &v)| (u, u16::try_from(v * 65_535 / sum).unwrap()))
        .collect();
    let on_chain_now = devnet.weights_on_chain(0).await.unwrap();
    assert_eq!(
        on_chain_now, expected,
        "stored weights = submitted, normalised"
    );

    // 4. An organic request through the user-facing API, with an API key.
    let key = orchestra_ledger::access::generate_key();
    let mut store = SqliteStore::open(&devnet.validator_state.join("ledger.db")).unwrap();
    store
        .create_key(hash_key(&key), Tier::Production, Some("e2e"), 0)
        .unwrap();
    drop(store);
    let http = reqwest::Client::new();
    let body = serde_json::json!({
        "objective": {"kind": KIND, "text": "Research the market for GPU cloud in Europe",
                      "params": {}},
    });
    let answer: Value = wait_for(
        &devnet,
        "an organic answer (the key is picked up within a second)",
        Duration::from_secs(30),
        || async {
            let r = post_objective(&http, &devnet, &key, &body).await.ok()?;
            if r.status().is_success() {
                r.json().await.ok()
            } else {
                None
            }
        },
    )
    .await;
    assert!(answer["standardized_data"].is_object(), "{answer}");
    assert!(
        answer["miner_uid"] == h || answer["miner_uid"] == f,
        "{answer}"
    );
    let refused = post_objective(&http, &devnet, "olk_not_a_key", &body)
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let t_agents = Instant::now();

    // 5. An agent over MCP, with the official Python SDK and the same key: it lists the six
    // tools, calls each (checking every result against its outputSchema), verifies a Ledger
    // inclusion proof offline, and submits an objective whose proof the validator verified.
    let summary = {
        let (url, key) = (format!("{}/mcp", devnet.validator_url), key.clone());
        tokio::task::spawn_blocking(move || {
            mcp_agent::run_mcp_client(&url, &key, "validator", Some(KIND))
        })
        .await
        .unwrap()
    };
    // Either miner may answer (no incentive yet): the honest one's proof holds, the
    // fabricator's does not, and the validator says which.
    let answered = &summary["objective"];
    if answered["miner_uid"] == h {
        assert_eq!(answered["proof_verified"], true, "{summary}");
    } else {
        assert_eq!(answered["miner_uid"], f, "{summary}");
        assert_eq!(answered["proof_verified"], false, "{summary}");
    }
    let tool_names = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    let all_tools: BTreeSet<String> = [
        "compare_subnets",
        "find_subnets",
        "get_entry",
        "get_head",
        "list_capabilities",
        "submit_objective",
    ]
    .map(String::from)
    .into();
    assert_eq!(tool_names(&summary["tools"]), all_tools, "{summary}");
    assert!(
        summary["objective"]["steps"].as_u64().unwrap_or(0) >= 1,
        "{summary}"
    );
    assert!(
        summary["inclusion_proof"]["seq"].is_u64(),
        "an inclusion proof was verified: {summary}"
    );
    let mcp_time = t_agents.elapsed();

    // 6. The A2A agent card, public: one skill per tool, and the MCP endpoint.
    let r = http
        .get(format!(
            "{}/.well-known/agent-card.json",
            devnet.validator_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let card: Value = r.json().await.unwrap();
    let skills: BTreeSet<String> = card["skills"]
        .as_array()
        .unwrap_or_else(|| panic!("{card}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skills, all_tools, "{card}");
    let mcp_endpoint = format!("{}/mcp", devnet.validator_url);
    assert!(
        card["capabilities"]["extensions"]
            .as_array()
            .unwrap_or_else(|| panic!("{card}"))
            .iter()
            .any(|e| e["params"]["endpoint"] == mcp_endpoint.as_str()),
        "the card names {mcp_endpoint}: {card}"
    );
    // The same skills over A2A 1.0, with the official Python A2A SDK reading this card.
    let a2a = {
        let (url, key) = (devnet.validator_url.clone(), key.clone());
        tokio::task::spawn_blocking(move || mcp_agent::run_a2a_client(&url, &key, "validator"))
            .await
            .unwrap()
    };
    assert_eq!(tool_names(&a2a["skills"]), all_tools, "{a2a}");
    assert!(a2a["inclusion_proof"]["seq"].is_u64(), "{a2a}");
    // The card sells objectives per call, at the validator's price.
    let paid = card["capabilities"]["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["params"]["paid"].as_array())
        .unwrap_or_else(|| panic!("no x402 extension: {card}"));
    assert_eq!(
        paid[0]["routes"],
        serde_json::json!(["POST /v1/objectives"]),
        "{card}"
    );
    assert_eq!(
        paid[0]["accepts"][0]["amount"],
        PRICE_RAO.to_string(),
        "{card}"
    );
    assert_eq!(paid[0]["accepts"][0]["payTo"], pay_to.as_str(), "{card}");

    // 7. x402: a caller without an API key buys one objective per call with a TAO transfer.
    let t_x402 = Instant::now();
    let network = caip2_network(&devnet.chain.genesis_hash());
    // (a) No credential, no payment: 402 and the quote.
    let unpaid = post_unauthenticated(&http, &devnet, &body, None).await;
    assert_eq!(refusal("unpaid", &unpaid), "payment_required");
    let quote: PaymentRequired =
        decode_header(unpaid.1[PAYMENT_REQUIRED].to_str().unwrap()).unwrap();
    assert_eq!(quote.x402_version, 2);
    assert_eq!(quote.resource.url, "/v1/objectives");
    let accepted = quote.accepts[0].clone();
    assert_eq!(accepted.amount, PRICE_RAO.to_string(), "{quote:?}");
    assert_eq!(accepted.pay_to, pay_to, "{quote:?}");
    assert_eq!(accepted.network, network, "{quote:?}");
    assert_eq!(
        (accepted.scheme.as_str(), accepted.asset.as_str()),
        ("tao-transfer", "TAO")
    );
    assert_eq!(unpaid.2["x402"]["accepts"][0]["payTo"], pay_to.as_str());

    // A payer with funds of its own (not //Alice: the validator signs its weights with it,
    // and two clients racing for one account's nonces would make this flaky). Each transfer
    // costs a fee of about 0.1 TAO.
    let payer = Hotkey::from_uri("//Eve").unwrap();
    set_storage(
        &devnet.chain.rpc(),
        vec![account_balance(&payer.public_key(), 100_000_000_000)],
    )
    .await
    .unwrap();
    let mut wcfg = SubtensorConfig::new(&devnet.chain_url);
    wcfg.wait_for = WaitFor::Finalized;
    wcfg.tx_timeout = Duration::from_secs(60);
    let wallet = SubtensorChain::connect(wcfg, Some(&payer))
        .await
        .unwrap_or_else(|e| panic!("the payer's chain client: {e}"));
    assert_eq!(caip2_network(&wallet.genesis_hash()), network);

    // (b) Pay the price, claim it for this call, retry: served, with the settlement.
    let (payment, payment_id) = pay(
        &wallet,
        &payer,
        &accepted,
        PRICE_RAO,
        ("POST", "/v1/objectives"),
    )
    .await;
    let (status, headers, answer) = post_paid(&http, &devnet, &body, &payment, "paid").await;
    assert_eq!(status, 200, "{answer}");
    let paid: OrganicAnswer = serde_json::from_value(answer.clone())
        .unwrap_or_else(|e| panic!("not an OrganicAnswer ({e}): {answer}"));
    assert!([h, f].contains(&u64::from(paid.miner_uid)), "{answer}");
    // The fabricator's invented sub-responses fail the check; the honest miner's pass it.
    assert!(
        paid.proof_verified || u64::from(paid.miner_uid) == f,
        "{answer}"
    );
    assert!(paid.standardized_data.is_object(), "{answer}");
    assert!(!paid.pipeline.is_empty(), "{answer}");
    let settlement: SettlementResponse = decode_header(
        headers
            .get(PAYMENT_RESPONSE)
            .expect("a PAYMENT-RESPONSE header")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    assert!(settlement.success, "{settlement:?}");
    assert_eq!(settlement.payer, payer.ss58());
    assert_eq!(settlement.transaction, payment_id);
    assert_eq!(settlement.network, network);
    assert_eq!(settlement.amount, PRICE_RAO.to_string());

    // (c) The same payment again: one transfer buys one call.
    let again = post_unauthenticated(&http, &devnet, &body, Some(&payment)).await;
    assert_eq!(refusal("reused", &again), "payment_already_used");

    // (d) One rao short: refused, and no objective runs for it.
    let organic = |text: &str| metric(text, "orchestra_validator_organic_requests_total{");
    let organic_before = organic(&validator_metrics(&http, &devnet).await);
    let (short, _) = pay(
        &wallet,
        &payer,
        &accepted,
        PRICE_RAO - 1,
        ("POST", "/v1/objectives"),
    )
    .await;
    let underpaid = post_paid(&http, &devnet, &body, &short, "underpaid").await;
    assert_eq!(refusal("underpaid", &underpaid), "insufficient_payment");
    let organic_after = organic(&validator_metrics(&http, &devnet).await);
    assert_eq!(
        organic_after, organic_before,
        "an underpaid request ran an objective"
    );

    // (e) A full payment claimed for another call: refused, and not used up by the refusal —
    // the same transfer, claimed for this call, then buys it.
    let (elsewhere, _) = pay(&wallet, &payer, &accepted, PRICE_RAO, ("POST", "/v1/other")).await;
    let misdirected = post_unauthenticated(&http, &devnet, &body, Some(&elsewhere)).await;
    assert_eq!(
        refusal("signed for another path", &misdirected),
        "invalid_payment_signature"
    );
    let mut claim: PaymentPayload = decode_header(&elsewhere).unwrap();
    let hash: [u8; 32] = claim.payload.block_hash_bytes().unwrap();
    claim = PaymentPayload::sign(
        &payer,
        &accepted,
        hash,
        claim.payload.extrinsic_index,
        "POST",
        "/v1/objectives",
    );
    let (status, headers, answer) =
        post_paid(&http, &devnet, &body, &encode_header(&claim), "re-claimed").await;
    assert_eq!(status, 200, "{answer}");
    assert!(headers.contains_key(PAYMENT_RESPONSE));
    // (f) The same, as a user would do it: `orchestra-pay` asks, pays and prints the answer.
    let pay_cli = |max_rao: u64| {
        let url = format!("{}/v1/objectives", devnet.validator_url);
        let args = [
            "-X".to_string(),
            "POST".into(),
            "-d".into(),
            body.to_string(),
            "--network".into(),
            devnet.chain_url.clone(),
            "--max-rao".into(),
            max_rao.to_string(),
            url,
        ];
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_orchestra-pay"))
                .args(args)
                .env("ORCHESTRA_PAYER_URI", "//Eve")
                .output()
                .unwrap()
        })
    };
    let out = pay_cli(PRICE_RAO).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "orchestra-pay: {stderr}");
    let bought: OrganicAnswer = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("orchestra-pay printed no answer ({e}): {stderr}"));
    assert!(!bought.pipeline.is_empty());
    assert!(
        stderr.contains(&format!("settled: {PRICE_RAO} rao from {}", payer.ss58())),
        "{stderr}"
    );
    let out = pay_cli(PRICE_RAO - 1).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("more than --max-rao"), "{stderr}");
    // (g) A standalone Ledger (what `orchestra-ledger serve --x402.*` builds) sells its reads on
    // the same chain: a GET is bought with its own transfer, once.
    let sale = ReadSale {
        chain_url: devnet.chain_url.clone(),
        pay_to: Hotkey::from_uri("//Dave").unwrap().ss58(),
        price_rao: 100_000,
        quote_secs: 300,
        payments_db: work.path().join("ledger.payments.db"),
    };
    let paywall = Arc::new(sale.connect().await.unwrap());
    assert_eq!(paywall.price().network, network);
    let store: Box<dyn Store> = Box::new(MemoryStore::new());
    let mut node = LedgerNode::open(
        store,
        Hotkey::from_uri("//Dave").unwrap(),
        VerifyParams::default(),
    )
    .unwrap();
    let me = node.ss58();
    let seeds = orchestra_mocks::MockSet::load_dir(repo().join("mocks/subnets"))
        .unwrap()
        .entries()
        .values()
        .map(|e| orchestra_ledger::mocks::seed_change(e, &me, 0).unwrap())
        .collect();
    node.append(seeds).unwrap();
    let ledger = AppState::new(
        node,
        ServerConfig {
            paywall: Some(paywall),
            ..ServerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ledger_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(ledger)).await });
    let read = |payment: Option<String>| {
        let mut req = http.get(format!("{ledger_url}/v1/subnets/22"));
        if let Some(p) = payment {
            req = req.header(PAYMENT_SIGNATURE, p);
        }
        req.send()
    };
    let unpaid = read(None).await.unwrap();
    assert_eq!(unpaid.status(), 402);
    let quote: PaymentRequired =
        decode_header(unpaid.headers()[PAYMENT_REQUIRED].to_str().unwrap()).unwrap();
    let (claim, _) = pay(
        &wallet,
        &payer,
        &quote.accepts[0],
        100_000,
        ("GET", "/v1/subnets/22"),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let bought = loop {
        let r = read(Some(claim.clone())).await.unwrap();
        if r.status() == 402 && Instant::now() < deadline {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "settlement_failed", "{body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        break r;
    };
    assert_eq!(bought.status(), 200);
    assert!(bought.headers().contains_key(PAYMENT_RESPONSE));
    let entry: Value = bought.json().await.unwrap();
    assert_eq!(entry["entry"]["netuid"], 22, "{entry}");
    let again: Value = read(Some(claim)).await.unwrap().json().await.unwrap();
    assert_eq!(again["error"], "payment_already_used", "{again}");
    let x402_time = t_x402.elapsed();
    println!("MCP client {mcp_time:?}; x402 round trips {x402_time:?}");

    // 8. The metrics say the same.
    let text = validator_metrics(&http, &devnet).await;
    assert!(
        metric(
            &text,
            "orchestra_validator_challenges_total{result=\"scored\"}"
        ) >= 3.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "orchestra_validator_weights_set_total{result=\"ok\"}"
        ) >= 1.0,
        "{text}"
    );
    let caught = metric(
        &text,
        "orchestra_validator_challenges_total{result=\"struck\"}",
    ) + metric(
        &text,
        "orchestra_validator_challenges_total{result=\"unverified\"}",
    );
    assert!(caught >= 1.0, "the fabricator was caught: {text}");
    assert!(
        metric(
            &text,
            "orchestra_validator_proposals_total{result=\"first\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "orchestra_validator_organic_requests_total{result=\"ok\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "orchestra_validator_anchors_total{result=\"unsupported\"}"
        ) >= 1.0,
        "{text}"
    );

    // 9. The honest miner crashes. Users' requests, drawn mostly to it by incentive (each at
    // least half the time), are sent on to the miner that still answers rather than failing.
    devnet.kill_miner(honest.uid);
    for i in 0..12 {
        let r = post_objective(&http, &devnet, &key, &body).await.unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap();
        assert!(status.is_success(), "request {i}: {status} {answer}");
        assert_eq!(answer["miner_uid"], f, "request {i}: {answer}");
    }
    let text = validator_metrics(&http, &devnet).await;
    assert!(
        metric(&text, "orchestra_validator_organic_retries_total") >= 1.0,
        "{text}"
    );
    println!(
        "devnet up in {up:?}; whole test {:?}; on-chain weights {weights:?}",
        t0.elapsed()
    );
}
