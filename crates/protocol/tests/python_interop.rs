//! Interop with the real Python SDK (`bittensor==11.3.0`): requests signed by
//! `bittensor.http_auth.sign` verify in Rust, and requests signed in Rust pass
//! `bittensor.http_auth.verify`. The venv is created under the target dir on first run; when
//! Python or the package cannot be had this test fails — it never skips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/sdk_peer.rs"]
mod sdk_peer;

use orchestra_protocol::btauth::{AuthError, AuthHeaders, SchemeSource, Verifier, sign};
use orchestra_protocol::{Hotkey, Scheme};
use sdk_peer::Peer;
use serde_json::{Value, json};

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const NOW: i128 = 1_764_000_000_000_000_000;

/// The ed25519 test key (seed `[3; 32]`), which the Rust verifier pins as ed25519: its trusted
/// scheme source.
fn ed25519_key() -> Hotkey {
    Hotkey::ed25519_from_seed([3; 32])
}

fn verify_with(
    schemes: SchemeSource,
    headers: &Value,
    body: &[u8],
    method: &str,
    path: &str,
) -> Result<String, AuthError> {
    let get = |name: &str| headers.get(name).and_then(Value::as_str);
    let auth = AuthHeaders::from_lookup(get);
    Verifier::new(BOB)
        .with_schemes(schemes)
        .verify(&auth, body, method, path, NOW)
        .map(|c| c.hotkey)
}

/// Verified by a server that knows the ed25519 test key signs with ed25519.
fn verify_in_rust(
    headers: &Value,
    body: &[u8],
    method: &str,
    path: &str,
) -> Result<String, AuthError> {
    let schemes = SchemeSource::ed25519([ed25519_key().ss58()]);
    verify_with(schemes, headers, body, method, path)
}

/// What the SDK's `verify` says of `headers`.
fn verify_in_python(peer: &mut Peer, headers: &Value, body: &[u8]) -> Value {
    peer.call(json!({
        "op": "verify", "headers": headers, "body_hex": hex::encode(body),
        "method": "POST", "path": "/orchestrate", "self_hotkey": BOB, "now_ns": NOW as u64,
    }))
}

fn python_signed(peer: &mut Peer, key: Value, body: &[u8]) -> Value {
    let mut cmd = json!({
        "op": "sign", "method": "POST", "path": "/orchestrate",
        "body_hex": hex::encode(body), "receiver": BOB, "nonce": NOW as u64,
    });
    cmd.as_object_mut()
        .unwrap()
        .extend(key.as_object().unwrap().clone());
    peer.call(cmd)["headers"].clone()
}

/// A forged `X-Bittensor-Crypto` is refused both ways: the SDK (which trusts the header) finds
/// the signature bad under the declared scheme, and the Rust verifier refuses the declaration
/// itself, before any signature, because its trusted source says otherwise. The header values
/// the SDK accepts besides the canonical names (any case, padding, the wallet codes `0`/`1`)
/// are accepted here too, and `ecdsa` is refused by both.
#[test]
fn a_forged_scheme_is_refused_both_ways_and_the_sdks_spellings_are_read_alike() {
    let mut peer = Peer::start();
    let body = br#"{"objective":"test"}"#;
    let sr_alice = json!({"uri": "//Alice"});
    let ed = json!({"ed25519_seed_hex": hex::encode([3u8; 32])});
    let post =
        |schemes: SchemeSource, h: &Value| verify_with(schemes, h, body, "POST", "/orchestrate");

    // 1. An sr25519 request re-labelled ed25519.
    let mut forged = python_signed(&mut peer, sr_alice.clone(), body);
    forged["X-Bittensor-Crypto"] = json!("ed25519");
    assert_eq!(
        verify_in_python(&mut peer, &forged, body),
        json!({"error": "BadSignature"})
    );
    assert_eq!(
        post(SchemeSource::default(), &forged),
        Err(AuthError::SchemeMismatch {
            declared: Scheme::Ed25519,
            trusted: Scheme::Sr25519
        })
    );
    assert_eq!(
        post(SchemeSource::Header, &forged),
        Err(AuthError::BadSignature)
    );

    // 2. An ed25519 request with its scheme header stripped (so it claims sr25519).
    let mut stripped = python_signed(&mut peer, ed.clone(), body);
    stripped
        .as_object_mut()
        .unwrap()
        .remove("X-Bittensor-Crypto");
    assert_eq!(
        verify_in_python(&mut peer, &stripped, body),
        json!({"error": "BadSignature"})
    );
    let pinned = SchemeSource::ed25519([ed25519_key().ss58()]);
    assert_eq!(
        post(pinned.clone(), &stripped),
        Err(AuthError::SchemeMismatch {
            declared: Scheme::Sr25519,
            trusted: Scheme::Ed25519
        })
    );
    // An ed25519 sender nobody pinned is refused even with an honest header.
    let honest_ed = python_signed(&mut peer, ed.clone(), body);
    assert_eq!(
        verify_in_python(&mut peer, &honest_ed, body),
        json!({"ok": ed25519_key().ss58()})
    );
    assert_eq!(
        post(SchemeSource::default(), &honest_ed),
        Err(AuthError::SchemeMismatch {
            declared: Scheme::Ed25519,
            trusted: Scheme::Sr25519
        })
    );

    // 3. Rust-signed requests with a forged header: the SDK refuses them.
    for (key, forged_scheme) in [
        (Hotkey::from_uri("//Alice").unwrap(), Some("ed25519")),
        (ed25519_key(), None),
    ] {
        let signed = sign(&key, "POST", "/orchestrate", body, Some(BOB), NOW);
        let mut headers: serde_json::Map<String, Value> = signed
            .headers
            .iter()
            .filter(|(k, _)| *k != "X-Bittensor-Crypto")
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        if let Some(s) = forged_scheme {
            headers.insert("X-Bittensor-Crypto".into(), json!(s));
        }
        assert_eq!(
            verify_in_python(&mut peer, &Value::Object(headers), body),
            json!({"error": "BadSignature"}),
            "{:?} sent as {forged_scheme:?}",
            key.scheme()
        );
    }

    // 4. The SDK's other spellings of a scheme.
    for (spelling, key) in [
        (" ED25519 ", ed.clone()),
        ("0", ed.clone()),
        ("Sr25519", sr_alice.clone()),
        ("1", sr_alice.clone()),
    ] {
        let mut h = python_signed(&mut peer, key, body);
        h["X-Bittensor-Crypto"] = json!(spelling);
        let sender = h["X-Bittensor-Hotkey"].as_str().unwrap().to_string();
        assert_eq!(
            verify_in_python(&mut peer, &h, body),
            json!({"ok": sender}),
            "{spelling:?}"
        );
        assert_eq!(post(pinned.clone(), &h), Ok(sender), "{spelling:?}");
    }
    for spelling in ["ecdsa", "2", "secp256k1"] {
        let mut h = python_signed(&mut peer, sr_alice.clone(), body);
        h["X-Bittensor-Crypto"] = json!(spelling);
        assert_eq!(
            verify_in_python(&mut peer, &h, body),
            json!({"error": "MalformedAuth"}),
            "{spelling:?}"
        );
        assert!(
            matches!(post(pinned.clone(), &h), Err(AuthError::Malformed(why)) if why.contains("X-Bittensor-Crypto")),
            "{spelling:?}"
        );
    }
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
