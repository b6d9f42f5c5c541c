//! The middleware on a loopback server: which credential gets through to the handler, and what
//! every refusal looks like on the wire (status, JSON body, `Retry-After`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::Extension;
use axum::routing;
use orchestra_http::clock::now_ns;
use orchestra_http::{
    ApiKeys, AuthConfig, Credential, ErrorBody, KeyCaller, Permits, Refusal, RequestAuth,
    require_auth,
};
use orchestra_protocol::Hotkey;
use orchestra_protocol::btauth;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Key `good` admitted (as key 7, tier `free`) twice, then over quota; `gone` revoked.
#[derive(Default)]
struct Keys {
    used: AtomicU64,
}

impl ApiKeys for Keys {
    fn admit_key(&self, key: &str, _now_secs: u64) -> Result<KeyCaller, Refusal> {
        match key {
            "good" if self.used.fetch_add(1, Ordering::SeqCst) < 2 => Ok(KeyCaller {
                id: 7,
                tier: "free",
            }),
            "good" => Err(Refusal::OverQuota {
                retry_after_s: 42,
                limit: 2,
                window: "minute",
            }),
            "gone" => Err(Refusal::RevokedKey),
            _ => Err(Refusal::UnknownKey),
        }
    }
}

/// Only //Alice may call.
struct OnlyAlice(String);

impl Permits for OnlyAlice {
    fn allows(&self, hotkey: &str) -> bool {
        hotkey == self.0
    }
}

fn key(uri: &str) -> Hotkey {
    Hotkey::from_uri(uri).unwrap()
}

/// The handler echoes who called.
async fn whoami(Extension(c): Extension<Credential>) -> String {
    match c {
        Credential::Hotkey(c) => format!("hotkey {}", c.hotkey),
        Credential::ApiKey(k) => format!("key {} {}", k.id, k.tier),
    }
}

async fn serve(auth: RequestAuth) -> SocketAddr {
    let app = Router::new()
        .route("/call", routing::post(whoami))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(auth),
            require_auth,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn signed(by: &Hotkey, receiver: &str, body: &[u8], nonce: i128) -> Vec<(&'static str, String)> {
    btauth::sign(by, "POST", "/call", body, Some(receiver), nonce).headers
}

async fn post(
    addr: SocketAddr,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("http://{addr}/call"))
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, r.text().await.unwrap(), retry)
}

fn code(text: &str) -> String {
    serde_json::from_str::<ErrorBody>(text).unwrap().error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hotkeys_and_keys_get_through_and_the_rest_is_refused_by_the_table() {
    let server = key("//Bob").ss58();
    let alice = key("//Alice");
    let config = AuthConfig {
        body_limit: 64,
        ..AuthConfig::default()
    };
    let auth = RequestAuth::btauth(server.clone(), &config)
        .with_permits(Arc::new(OnlyAlice(alice.ss58())))
        .with_api_keys(Arc::new(Keys::default()));
    let addr = serve(auth).await;

    let body = b"{}";
    let (s, text, _) = post(addr, &signed(&alice, &server, body, now_ns()), body).await;
    assert_eq!((s, text), (200, format!("hotkey {}", alice.ss58())));
    let bearer = |k: &str| vec![("authorization", format!("Bearer {k}"))];
    let (s, text, _) = post(addr, &bearer("good"), body).await;
    assert_eq!((s, text), (200, "key 7 free".to_string()));

    // A signer without a permit.
    let charlie = key("//Charlie");
    let (s, text, _) = post(addr, &signed(&charlie, &server, body, now_ns()), body).await;
    assert_eq!((s, code(&text)), (403, "not_a_validator".into()));
    // Signed for another server.
    let (s, text, _) = post(addr, &signed(&alice, &charlie.ss58(), body, now_ns()), body).await;
    assert_eq!((s, code(&text)), (403, "wrong_receiver".into()));
    // Keys: quota (with Retry-After), revoked, unknown, malformed.
    let (s, _, _) = post(addr, &bearer("good"), body).await;
    assert_eq!(s, 200);
    let (s, text, retry) = post(addr, &bearer("good"), body).await;
    assert_eq!(
        (s, code(&text), retry),
        (429, "quota_exceeded".into(), Some("42".into()))
    );
    let (s, text, _) = post(addr, &bearer("gone"), body).await;
    assert_eq!((s, code(&text)), (401, "revoked_key".into()));
    let (s, text, _) = post(addr, &bearer("nope"), body).await;
    assert_eq!((s, code(&text)), (401, "unknown_key".into()));
    let (s, text, _) = post(addr, &[("authorization", "Basic x".into())], body).await;
    assert_eq!((s, code(&text)), (401, "malformed_authorization".into()));
    // Nothing at all; a body over the limit.
    let (s, text, _) = post(addr, &[], body).await;
    let e: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!((s, e.error.as_str()), (401, "unauthenticated"));
    assert!(
        e.message.contains("Bearer") && e.message.contains("btauth/1"),
        "{e:?}"
    );
    let big = vec![b' '; 65];
    let (s, text, _) = post(addr, &signed(&alice, &server, &big, now_ns()), &big).await;
    assert_eq!((s, code(&text)), (413, "body_too_large".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_only_route_does_not_take_signatures() {
    let auth = RequestAuth::api_keys(Arc::new(Keys::default()), 1 << 10);
    let addr = serve(auth).await;
    let alice = key("//Alice");
    let (s, text, _) = post(addr, &signed(&alice, "5Anyone", b"", now_ns()), b"").await;
    let e: ErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!((s, e.error.as_str()), (401, "unauthenticated"));
    assert!(!e.message.contains("btauth"), "{e:?}");
    let (s, text, _) = post(addr, &[("authorization", "Bearer good".into())], b"").await;
    assert_eq!((s, text), (200, "key 7 free".to_string()));
}

#[test]
fn unbound_requests_pass_only_where_allowed() {
    let bob = key("//Bob").ss58();
    let alice = key("//Alice");
    let now = 1_764_000_000_000_000_000i128;
    let unbound = btauth::sign(&alice, "POST", "/call", b"", None, now);
    let mut headers = axum::http::HeaderMap::new();
    for (k, v) in &unbound.headers {
        headers.insert(*k, v.parse().unwrap());
    }
    let uri: axum::http::Uri = "/call".parse().unwrap();
    let method = axum::http::Method::POST;
    let strict = RequestAuth::btauth(bob.clone(), &AuthConfig::default());
    let e = strict.check(&headers, &method, &uri, b"", now).unwrap_err();
    assert_eq!((e.status().as_u16(), e.code()), (403, "wrong_receiver"));
    let lax = RequestAuth::btauth(bob, &AuthConfig::default()).allow_unbound();
    let c = lax.check(&headers, &method, &uri, b"", now).unwrap();
    assert_eq!(c.hotkey().unwrap().hotkey, alice.ss58());
}
