//! btauth/1 conformance: the golden vector from the Python SDK (docs/protocol.md, btauth/1) verifies, and
//! changing any signed part makes verification fail with the matching error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_protocol::btauth::{
    AuthError, AuthHeaders, MemoryReplayStore, SchemeSource, Verifier, sign,
};
use orchestra_protocol::{Hotkey, Scheme};

const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const CHARLIE: &str = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y";
const BODY: &[u8] = br#"{"objective":"test"}"#;
const NONCE: i128 = 1_764_000_000_000_000_000;
const SIGNATURE: &str = "0x324a89a8ed4733c588f608669329c9a10f4b320621429e776fa50cd1763cd212b480521cca41b4703e0190dbfd380b98d5c21b07aa338e91e12878f065857c89";

/// The golden request's headers, with any of them overridden.
#[derive(Clone)]
struct Request {
    method: &'static str,
    target: String,
    body: Vec<u8>,
    nonce: String,
    sender: String,
    receiver: Option<String>,
    signature: String,
    now: i128,
}

impl Request {
    fn golden() -> Self {
        Request {
            method: "POST",
            target: "/orchestrate".into(),
            body: BODY.to_vec(),
            nonce: NONCE.to_string(),
            sender: ALICE.into(),
            receiver: Some(BOB.into()),
            signature: SIGNATURE.into(),
            now: NONCE + 1_000_000_000,
        }
    }

    fn verify_as(&self, me: &str) -> Result<String, AuthError> {
        let headers = AuthHeaders {
            version: Some("1"),
            hotkey: Some(&self.sender),
            receiver: self.receiver.as_deref(),
            nonce: Some(&self.nonce),
            signature: Some(&self.signature),
            crypto: None,
        };
        Verifier::new(me)
            .verify(&headers, &self.body, self.method, &self.target, self.now)
            .map(|caller| caller.hotkey)
    }

    fn verify(&self) -> Result<String, AuthError> {
        self.verify_as(BOB)
    }
}

#[test]
fn golden_vector_verifies() {
    assert_eq!(Request::golden().verify(), Ok(ALICE.to_string()));
}

#[test]
fn the_body_hash_in_the_vector_is_sha256_of_the_body() {
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(BODY)),
        "a0f70a668eb9555fdc1f9b243d9df90f55f83f92aef14f896294a821c568e4e5"
    );
}

#[test]
fn changing_the_method_breaks_the_signature() {
    let mut r = Request::golden();
    r.method = "PUT";
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn lowercase_method_is_the_same_request() {
    let mut r = Request::golden();
    r.method = "post";
    assert_eq!(r.verify(), Ok(ALICE.to_string()));
}

#[test]
fn changing_the_path_breaks_the_signature() {
    let mut r = Request::golden();
    r.target = "/orchestrat".into();
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn adding_a_query_breaks_the_signature() {
    let mut r = Request::golden();
    r.target = "/orchestrate?x=1".into();
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn changing_the_body_breaks_the_signature() {
    let mut r = Request::golden();
    r.body[2] ^= 1;
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn changing_the_nonce_breaks_the_signature() {
    let mut r = Request::golden();
    r.nonce = (NONCE + 1).to_string();
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn changing_the_sender_breaks_the_signature() {
    let mut r = Request::golden();
    r.sender = CHARLIE.into();
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn changing_the_receiver_is_refused() {
    // For a server that is Charlie, the request names Bob: wrong receiver.
    let r = Request::golden();
    let err = r.verify_as(CHARLIE).unwrap_err();
    assert!(matches!(err, AuthError::WrongReceiver(_)));
    assert_eq!(err.code(), "wrong_receiver");
    // Re-addressing the request to Charlie breaks the signature.
    let mut r = Request::golden();
    r.receiver = Some(CHARLIE.into());
    assert_eq!(r.verify_as(CHARLIE), Err(AuthError::BadSignature));
    // Dropping the receiver is refused by a server that requires one.
    let mut r = Request::golden();
    r.receiver = None;
    assert!(matches!(r.verify(), Err(AuthError::WrongReceiver(_))));
}

#[test]
fn changing_the_signature_breaks_it() {
    let mut r = Request::golden();
    let mut bytes = hex::decode(&SIGNATURE[2..]).unwrap();
    bytes[10] ^= 0x01;
    r.signature = format!("0x{}", hex::encode(bytes));
    assert_eq!(r.verify(), Err(AuthError::BadSignature));
}

#[test]
fn stale_and_future_nonces_are_refused() {
    let mut r = Request::golden();
    r.now = NONCE + 10_000_000_001;
    assert!(matches!(r.verify(), Err(AuthError::Stale(_))));
    r.now = NONCE - 2_000_000_001;
    assert!(matches!(r.verify(), Err(AuthError::Stale(_))));
    r.now = NONCE + 10_000_000_000;
    assert_eq!(r.verify(), Ok(ALICE.to_string()));
}

#[test]
fn malformed_headers_are_refused_as_malformed() {
    type Mutation = (&'static str, fn(&mut Request));
    let bad: [Mutation; 4] = [
        ("nonce not an integer", |r| r.nonce = "12abc".into()),
        ("signature not hex", |r| r.signature = "0xzz".into()),
        ("signature too short", |r| r.signature = "0xabcd".into()),
        ("sender not ss58", |r| r.sender = "not-an-address".into()),
    ];
    for (what, mutate) in bad {
        let mut r = Request::golden();
        mutate(&mut r);
        let err = r.verify().unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)), "{what}: {err:?}");
        assert_eq!(err.code(), "malformed_auth", "{what}");
    }
}

#[test]
fn replay_is_refused_after_one_acceptance() {
    let r = Request::golden();
    let verifier = Verifier::with_store(BOB, MemoryReplayStore::default());
    let headers = AuthHeaders {
        version: Some("1"),
        hotkey: Some(ALICE),
        receiver: Some(BOB),
        nonce: Some(&r.nonce),
        signature: Some(SIGNATURE),
        crypto: None,
    };
    assert!(
        verifier
            .verify(&headers, BODY, "POST", "/orchestrate", r.now)
            .is_ok()
    );
    assert_eq!(
        verifier.verify(&headers, BODY, "POST", "/orchestrate", r.now),
        Err(AuthError::Replayed)
    );
}

#[test]
fn a_bad_signature_does_not_poison_the_replay_store() {
    let r = Request::golden();
    let verifier = Verifier::new(BOB);
    let forged = AuthHeaders {
        version: Some("1"),
        hotkey: Some(ALICE),
        receiver: Some(BOB),
        nonce: Some(&r.nonce),
        signature: Some(
            "0x00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ),
        crypto: None,
    };
    assert_eq!(
        verifier.verify(&forged, BODY, "POST", "/orchestrate", r.now),
        Err(AuthError::BadSignature)
    );
    let real = AuthHeaders {
        signature: Some(SIGNATURE),
        ..forged
    };
    assert!(
        verifier
            .verify(&real, BODY, "POST", "/orchestrate", r.now)
            .is_ok()
    );
}

#[test]
fn rust_signed_requests_verify_for_both_schemes() {
    for key in [
        Hotkey::from_uri("//Alice").unwrap(),
        Hotkey::ed25519_from_seed([3; 32]),
    ] {
        let signed = sign(&key, "GET", "/v1/head?x=y", b"", Some(BOB), NONCE);
        // The ed25519 key is pinned: the verifier's trusted source says how to read it.
        let caller = Verifier::new(BOB)
            .with_schemes(SchemeSource::ed25519([
                Hotkey::ed25519_from_seed([3; 32]).ss58()
            ]))
            .verify(&signed.as_auth_headers(), b"", "GET", "/v1/head?x=y", NONCE)
            .unwrap();
        assert_eq!(caller.hotkey, key.ss58());
        assert_eq!(caller.scheme, key.scheme());
    }
}

#[test]
fn the_declared_scheme_is_the_only_one_tried() {
    // An ed25519 signature presented as sr25519 (no crypto header) must fail: with the header
    // trusted (the SDK's way) on the signature; with a trusted source, before it, on the
    // declaration.
    let key = Hotkey::ed25519_from_seed([3; 32]);
    let signed = sign(&key, "GET", "/", b"", Some(BOB), NONCE);
    let headers = AuthHeaders {
        crypto: None,
        ..signed.as_auth_headers()
    };
    assert_eq!(
        Verifier::new(BOB)
            .with_schemes(SchemeSource::Header)
            .verify(&headers, b"", "GET", "/", NONCE),
        Err(AuthError::BadSignature)
    );
    assert_eq!(
        Verifier::new(BOB)
            .with_schemes(SchemeSource::ed25519([key.ss58()]))
            .verify(&headers, b"", "GET", "/", NONCE),
        Err(AuthError::SchemeMismatch {
            declared: Scheme::Sr25519,
            trusted: Scheme::Ed25519
        })
    );
}

#[test]
fn the_scheme_comes_from_the_trusted_source() {
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let signed = sign(&alice, "POST", "/", b"{}", Some(BOB), NONCE);
    let mut forged = signed.as_auth_headers();
    forged.crypto = Some("ed25519");
    // Default: every hotkey sr25519 unless pinned; the declaration is refused, nothing else
    // is tried, and the reason names both schemes.
    let err = Verifier::new(BOB)
        .verify(&forged, b"{}", "POST", "/", NONCE)
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::SchemeMismatch {
            declared: Scheme::Ed25519,
            trusted: Scheme::Sr25519
        }
    );
    assert_eq!(err.code(), "scheme_mismatch");
    assert!(
        err.to_string()
            .contains("signs with sr25519, the request declares ed25519")
    );
    // Trusting the header, the same request fails on its signature instead.
    assert_eq!(
        Verifier::new(BOB)
            .with_schemes(SchemeSource::Header)
            .verify(&forged, b"{}", "POST", "/", NONCE),
        Err(AuthError::BadSignature)
    );
    // Operators' flags: ss58 addresses only, and not both ways at once.
    assert!(SchemeSource::from_flags(&["not-an-address".into()], false).is_err());
    assert!(SchemeSource::from_flags(&[alice.ss58()], true).is_err());
    assert_eq!(
        SchemeSource::from_flags(&[], true),
        Ok(SchemeSource::Header)
    );
    assert_eq!(
        SchemeSource::from_flags(&[alice.ss58()], false),
        Ok(SchemeSource::ed25519([alice.ss58()]))
    );
}
