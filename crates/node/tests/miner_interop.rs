//! Interop with the Python SDK (`bittensor==11.3.0`): a challenge signed by
//! `bittensor.http_auth.sign` is accepted by the miner server; a stale nonce, a replayed nonce,
//! a wrong receiver and a hotkey without a validator permit are refused with 401, 401, 403 and
//! 403 (the shared refusal table of `orchestra-http`). The SDK runs in the venv named by `ORCHESTRA_SDK_PYTHON`, or one created by
//! `scripts/py-venv.sh` under the target dir; when neither can be had the test fails, never
//! skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod miner_support;
#[path = "../../protocol/tests/support/sdk_peer.rs"]
mod sdk_peer;

use miner_support::*;
use orchestra_node::auth::{now_ms, now_ns};
use orchestra_node::miner::MinerSettings;
use orchestra_protocol::messages::Response;
use orchestra_protocol::proof;
use sdk_peer::Peer;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Headers the SDK signs for `POST /orchestrate`.
fn sdk_sign(peer: &mut Peer, uri: &str, body: &[u8], receiver: &str, nonce: i128) -> Value {
    peer.call(json!({
        "op": "sign", "uri": uri, "method": "POST", "path": "/orchestrate",
        "body_hex": hex::encode(body), "receiver": receiver, "nonce": nonce as u64,
    }))["headers"]
        .clone()
}

async fn send(
    http: &reqwest::Client,
    addr: SocketAddr,
    headers: &Value,
    body: &[u8],
) -> reqwest::Response {
    let mut req = http
        .post(format!("http://{addr}/orchestrate"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers.as_object().unwrap() {
        req = req.header(k.as_str(), v.as_str().unwrap());
    }
    req.send().await.unwrap()
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_signed_requests_are_accepted_and_bad_ones_refused() {
    let mut peer = Peer::start();
    let (mocks, _) = start_mocks(0.02).await;
    let (addr, miner) = start_miner(mocks, &[ALICE], MinerSettings::default()).await;
    let http = reqwest::Client::new();
    let alice = hotkey(ALICE).ss58();

    // Accepted: signed by the SDK with //Alice, a permitted validator.
    let c = challenge(&alice, 1, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let headers = sdk_sign(&mut peer, ALICE, &body, miner.ss58(), now_ns());
    assert_eq!(headers["X-Bittensor-Hotkey"], alice.as_str());
    let r = send(&http, addr, &headers, &body).await;
    assert_eq!(r.status(), 200);
    let resp: Response = r.json().await.unwrap();
    proof::verify(&c, &resp, now_ms()).expect("proof verifies");

    // Replayed: the very same signed request again.
    assert_eq!(
        code(send(&http, addr, &headers, &body).await).await,
        (401, "replayed_request".into())
    );

    // Stale: a nonce 30 s old (the window is 10 s).
    let c = challenge(&alice, 2, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let stale = sdk_sign(
        &mut peer,
        ALICE,
        &body,
        miner.ss58(),
        now_ns() - 30_000_000_000,
    );
    assert_eq!(
        code(send(&http, addr, &stale, &body).await).await,
        (401, "stale_request".into())
    );
    // Too far in the future is stale too.
    let ahead = sdk_sign(
        &mut peer,
        ALICE,
        &body,
        miner.ss58(),
        now_ns() + 30_000_000_000,
    );
    assert_eq!(
        code(send(&http, addr, &ahead, &body).await).await,
        (401, "stale_request".into())
    );

    // Wrong receiver: signed for another hotkey.
    let elsewhere = sdk_sign(
        &mut peer,
        ALICE,
        &body,
        &hotkey("//Charlie").ss58(),
        now_ns(),
    );
    assert_eq!(
        code(send(&http, addr, &elsewhere, &body).await).await,
        (403, "wrong_receiver".into())
    );

    // Non-validator: //Bob signs correctly but holds no permit.
    let bob = hotkey("//Bob").ss58();
    let c = challenge(&bob, 3, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let bobs = sdk_sign(&mut peer, "//Bob", &body, miner.ss58(), now_ns());
    assert_eq!(
        code(send(&http, addr, &bobs, &body).await).await,
        (403, "not_a_validator".into())
    );

    // A tampered body fails the signature.
    let c = challenge(&alice, 4, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let good = sdk_sign(&mut peer, ALICE, &body, miner.ss58(), now_ns());
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        code(send(&http, addr, &good, &tampered).await).await,
        (401, "bad_signature".into())
    );
    // And the untampered one still goes through afterwards (nothing was recorded for it).
    assert_eq!(send(&http, addr, &good, &body).await.status(), 200);
}
