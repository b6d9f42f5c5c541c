//! Interop with the real Python SDK (`bittensor==11.3.0`): requests signed by
//! `bittensor.http_auth.sign` verify in Rust, and requests signed in Rust pass
//! `bittensor.http_auth.verify`. The venv is created under the target dir on first run; when
//! Python or the package cannot be had this test fails — it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sdk_peer.rs"]
mod sdk_peer;

use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth::{AuthError, AuthHeaders, Verifier, sign};
use sdk_peer::Peer;
use serde_json::{Value, json};

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const NOW: i128 = 1_764_000_000_000_000_000;

fn verify_in_rust(
    headers: &Value,
    body: &[u8],
    method: &str,
    path: &str,
) -> Result<String, AuthError> {
    let get = |name: &str| headers.get(name).and_then(Value::as_str);
    let auth = AuthHeaders::from_lookup(get);
    Verifier::new(BOB)
        .verify(&auth, body, method, path, NOW)
        .map(|c| c.hotkey)
}

#[test]
fn python_signed_requests_verify_in_rust_and_back() {
    let mut peer = Peer::start();
    let bodies: [&[u8]; 3] = [b"", br#"{"objective":"test"}"#, &[0xff; 3400]];
    let targets = ["/orchestrate", "/v1/capabilities/web_search?limit=5&x=%20y"];

    for body in bodies {
        for target in targets {
            for method in ["POST", "GET"] {
                // Python signs (sr25519 from //Alice, and ed25519 from a seed), Rust verifies.
                for key in [
                    json!({"uri": "//Alice"}),
                    json!({"ed25519_seed_hex": hex::encode([3u8; 32])}),
                ] {
                    let mut cmd = json!({
                        "op": "sign", "method": method, "path": target,
                        "body_hex": hex::encode(body), "receiver": BOB, "nonce": NOW as u64,
                    });
                    cmd.as_object_mut()
                        .unwrap()
                        .extend(key.as_object().unwrap().clone());
                    let headers = peer.call(cmd)["headers"].clone();
                    let expected_sender =
                        headers["X-Bittensor-Hotkey"].as_str().unwrap().to_string();
                    assert_eq!(
                        verify_in_rust(&headers, body, method, target),
                        Ok(expected_sender)
                    );
                    // A changed body must not verify: the test can fail.
                    let mut tampered = body.to_vec();
                    tampered.push(b' ');
                    assert_eq!(
                        verify_in_rust(&headers, &tampered, method, target),
                        Err(AuthError::BadSignature)
                    );
                }

                // Rust signs, Python verifies.
                for key in [
                    Hotkey::from_uri("//Alice").unwrap(),
                    Hotkey::ed25519_from_seed([3; 32]),
                ] {
                    let signed = sign(&key, method, target, body, Some(BOB), NOW);
                    let headers: serde_json::Map<String, Value> = signed
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), json!(v)))
                        .collect();
                    let verdict = peer.call(json!({
                        "op": "verify", "headers": headers, "body_hex": hex::encode(body),
                        "method": method, "path": target, "self_hotkey": BOB, "now_ns": NOW as u64,
                    }));
                    assert_eq!(
                        verdict,
                        json!({"ok": key.ss58()}),
                        "{method} {target} {:?}",
                        key.scheme()
                    );
                    let wrong_path = peer.call(json!({
                        "op": "verify", "headers": headers, "body_hex": hex::encode(body),
                        "method": method, "path": "/elsewhere", "self_hotkey": BOB, "now_ns": NOW as u64,
                    }));
                    assert_eq!(wrong_path, json!({"error": "BadSignature"}));
                }
            }
        }
    }
    // The SDK's dev keys are the same keys as ours.
    assert_eq!(Hotkey::from_uri("//Alice").unwrap().ss58(), ALICE);
}
