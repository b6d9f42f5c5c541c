//! Interop with the Python SDK (`bittensor==11.3.0`): a challenge signed by
//! `bittensor.http_auth.sign` is accepted by the miner server; a stale nonce, a replayed nonce,
//! a wrong receiver and a hotkey without a validator permit are refused with 401, 401, 421 and
//! 403. The SDK runs in the venv named by `ORCHESTRA_SDK_PYTHON`, or one created by
//! `scripts/py-venv.sh` under the target dir; when neither can be had the test fails, never
//! skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod miner_support;

use miner_support::*;
use orchestra_node::auth::{now_ms, now_ns};
use orchestra_node::miner::MinerSettings;
use orchestra_protocol::messages::Response;
use orchestra_protocol::proof;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The SDK venv's python: `ORCHESTRA_SDK_PYTHON` if set (it must exist), else created by
/// scripts/py-venv.sh (needs python3 and PyPI).
fn sdk_python() -> PathBuf {
    if let Some(p) = std::env::var_os("ORCHESTRA_SDK_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "ORCHESTRA_SDK_PYTHON={} does not exist; create the venv with scripts/py-venv.sh DIR",
            p.display()
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("venv-bittensor-11.3.0");
    let out = Command::new("bash")
        .arg(workspace().join("scripts/py-venv.sh"))
        .arg(&venv)
        .output()
        .expect("run scripts/py-venv.sh");
    assert!(
        out.status.success(),
        "could not create the bittensor==11.3.0 venv (needs python3 and PyPI; or set \
         ORCHESTRA_SDK_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The protocol crate's Python btauth peer (one JSON command per line).
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start() -> Peer {
        let script = workspace().join("crates/protocol/tests/python/btauth_peer.py");
        let mut child = Command::new(sdk_python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Python btauth peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Peer {
            child,
            stdin,
            stdout,
        }
    }

    /// Headers the SDK signs for POST /orchestrate.
    fn sign(&mut self, uri: &str, body: &[u8], receiver: &str, nonce: i128) -> Value {
        let cmd = json!({
            "op": "sign", "uri": uri, "method": "POST", "path": "/orchestrate",
            "body_hex": hex::encode(body), "receiver": receiver, "nonce": nonce as u64,
        });
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer said {line:?}: {e}"));
        v["headers"].clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let headers = peer.sign(ALICE, &body, miner.ss58(), now_ns());
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
    let stale = peer.sign(ALICE, &body, miner.ss58(), now_ns() - 30_000_000_000);
    assert_eq!(
        code(send(&http, addr, &stale, &body).await).await,
        (401, "stale_request".into())
    );
    // Too far in the future is stale too.
    let ahead = peer.sign(ALICE, &body, miner.ss58(), now_ns() + 30_000_000_000);
    assert_eq!(
        code(send(&http, addr, &ahead, &body).await).await,
        (401, "stale_request".into())
    );

    // Wrong receiver: signed for another hotkey.
    let elsewhere = peer.sign(ALICE, &body, &hotkey("//Charlie").ss58(), now_ns());
    assert_eq!(
        code(send(&http, addr, &elsewhere, &body).await).await,
        (421, "wrong_receiver".into())
    );

    // Non-validator: //Bob signs correctly but holds no permit.
    let bob = hotkey("//Bob").ss58();
    let c = challenge(&bob, 3, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let bobs = peer.sign("//Bob", &body, miner.ss58(), now_ns());
    assert_eq!(
        code(send(&http, addr, &bobs, &body).await).await,
        (403, "not_a_validator".into())
    );

    // A tampered body fails the signature.
    let c = challenge(&alice, 4, 12_000);
    let body = serde_json::to_vec(&c).unwrap();
    let good = peer.sign(ALICE, &body, miner.ss58(), now_ns());
    let mut tampered = body.clone();
    tampered.push(b' ');
    assert_eq!(
        code(send(&http, addr, &good, &tampered).await).await,
        (401, "bad_signature".into())
    );
    // And the untampered one still goes through afterwards (nothing was recorded for it).
    assert_eq!(send(&http, addr, &good, &body).await.status(), 200);
}
