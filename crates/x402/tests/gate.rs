//! The paywall in front of a route, with the settlement test double: every row of the gate's
//! table, API keys still working beside it, one payment buying exactly one call (also when two
//! uses race), a failed settlement or a failed call serving nothing, and the durable spent set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use orchestra_chain::{Transfer, TransferLookup};
use orchestra_http::{ApiKeys, KeyCaller, Refusal, RequestAuth};
use orchestra_protocol::Hotkey;
use orchestra_x402::types::{PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE};
use orchestra_x402::{
    Gate, MemorySpent, PaymentPayload, PaymentRequired, Paywall, Price, SettlementResponse,
    SpentPayments, SqliteSpent, TestSettlement, auth_or_pay, decode_header, encode_header,
};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower::ServiceExt;

const PRICE: u64 = 1_000;
const NETWORK: &str = "bittensor:45454545454545454545454545454545";

struct Keys;
impl ApiKeys for Keys {
    fn admit_key(&self, key: &str, _now: u64) -> Result<KeyCaller, Refusal> {
        if key == "good" {
            Ok(KeyCaller {
                id: 1,
                tier: "production",
            })
        } else {
            Err(Refusal::UnknownKey)
        }
    }
}

fn account(uri: &str) -> [u8; 32] {
    orchestra_protocol::ss58::decode(&Hotkey::from_uri(uri).unwrap().ss58())
        .unwrap()
        .0
}

struct Rig {
    app: Router,
    settle: Arc<TestSettlement>,
    spent: Arc<dyn SpentPayments>,
    served: Arc<AtomicU64>,
    paywall: Arc<Paywall>,
}

fn rig_with(settle: TestSettlement, spent: Arc<dyn SpentPayments>) -> Rig {
    let settle = Arc::new(settle);
    let price = Price {
        pay_to: Hotkey::from_uri("//Ferdie").unwrap().ss58(),
        network: NETWORK.into(),
        rao: PRICE,
        max_timeout_seconds: 60,
        description: "a test call".into(),
    };
    let paywall = Arc::new(Paywall::new(price, settle.clone(), spent.clone()).unwrap());
    let gate = Gate {
        auth: Arc::new(RequestAuth::api_keys(Arc::new(Keys), 1 << 16)),
        paywall: Some(paywall.clone()),
    };
    let served = Arc::new(AtomicU64::new(0));
    let (s1, s2) = (served.clone(), served.clone());
    let app = Router::new()
        .route(
            "/data",
            get(move || async move {
                s1.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({ "data": 42 }))
            }),
        )
        .route(
            "/broken",
            get(move || async move {
                s2.fetch_add(1, Ordering::SeqCst);
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(gate, auth_or_pay));
    Rig {
        app,
        settle,
        spent,
        served,
        paywall,
    }
}

fn rig() -> Rig {
    rig_with(TestSettlement::new(), Arc::new(MemorySpent::default()))
}

/// A finalized transfer `from` → Ferdie of `amount` in block `[tag; 32]`, index 1.
fn pay(r: &Rig, tag: u8, from: &str, amount: u64) -> ([u8; 32], u32) {
    r.settle.insert(
        [tag; 32],
        1,
        TransferLookup {
            block_number: 10,
            finalized_head: 10,
            finalized: true,
            succeeded: true,
            transfers: vec![Transfer {
                from: account(from),
                to: account("//Ferdie"),
                amount_rao: amount,
            }],
        },
    );
    ([tag; 32], 1)
}

fn header_for(r: &Rig, signer: &str, at: ([u8; 32], u32), path: &str) -> String {
    let p = PaymentPayload::sign(
        &Hotkey::from_uri(signer).unwrap(),
        &r.paywall.requirements(),
        at.0,
        at.1,
        "GET",
        path,
    );
    encode_header(&p)
}

async fn send(
    r: &Rig,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, Vec<(String, String)>) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = r
        .app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let hs = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json, hs)
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_call_without_credentials_gets_a_machine_readable_quote() {
    let r = rig();
    let (status, body, hs) = send(&r, "/data?x=1", &[]).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"], "payment_required");
    let quote: PaymentRequired = decode_header(header(&hs, PAYMENT_REQUIRED).unwrap()).unwrap();
    assert_eq!(quote.x402_version, 2);
    assert_eq!(quote.error, None);
    assert_eq!(quote.resource.url, "/data?x=1");
    assert_eq!(quote.accepts.len(), 1);
    let a = &quote.accepts[0];
    assert_eq!(
        (a.scheme.as_str(), a.asset.as_str()),
        ("tao-transfer", "TAO")
    );
    assert_eq!(a.amount, PRICE.to_string());
    assert_eq!(a.network, NETWORK);
    assert_eq!(a.pay_to, Hotkey::from_uri("//Ferdie").unwrap().ss58());
    // The body carries the same quote.
    assert_eq!(
        serde_json::from_value::<PaymentRequired>(body["x402"].clone()).unwrap(),
        quote
    );
    assert_eq!(r.served.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn api_keys_work_beside_payments_and_a_bad_key_is_not_offered_payment() {
    let r = rig();
    let (status, body, _) = send(&r, "/data", &[("authorization", "Bearer good")]).await;
    assert_eq!((status, body["data"].as_u64()), (StatusCode::OK, Some(42)));
    let (status, body, _) = send(&r, "/data", &[("authorization", "Bearer bad")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unknown_key"))
    );
}

#[tokio::test]
async fn pay_then_call_then_the_same_payment_is_refused() {
    let r = rig();
    let at = pay(&r, 1, "//Alice", PRICE);
    let h = header_for(&r, "//Alice", at, "/data");
    let (status, body, hs) = send(&r, "/data", &[(PAYMENT_SIGNATURE, &h)]).await;
    assert_eq!((status, body["data"].as_u64()), (StatusCode::OK, Some(42)));
    let settled: SettlementResponse =
        decode_header(header(&hs, PAYMENT_RESPONSE).unwrap()).unwrap();
    assert!(settled.success);
    assert_eq!(settled.payer, Hotkey::from_uri("//Alice").unwrap().ss58());
    assert_eq!(settled.amount, PRICE.to_string());
    assert_eq!(settled.transaction, format!("0x{}:1", "01".repeat(32)));
    assert!(r.spent.is_spent(&settled.transaction).unwrap());

    let (status, body, hs) = send(&r, "/data", &[(PAYMENT_SIGNATURE, &h)]).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"], "payment_already_used");
    let quote: PaymentRequired = decode_header(header(&hs, PAYMENT_REQUIRED).unwrap()).unwrap();
    assert_eq!(quote.error.as_deref(), Some("payment_already_used"));
    assert_eq!(r.served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn every_refusal_serves_nothing() {
    let r = rig();
    let short = pay(&r, 2, "//Alice", PRICE - 1);
    let from_bob = pay(&r, 3, "//Bob", PRICE);
    let good = pay(&r, 4, "//Alice", PRICE);
    r.settle.insert(
        [5; 32],
        1,
        TransferLookup {
            block_number: 10,
            finalized_head: 10,
            finalized: false,
            succeeded: true,
            transfers: vec![Transfer {
                from: account("//Alice"),
                to: account("//Ferdie"),
                amount_rao: PRICE,
            }],
        },
    );
    r.settle.insert(
        [6; 32],
        1,
        TransferLookup {
            block_number: 10,
            finalized_head: 10,
            finalized: true,
            succeeded: false,
            transfers: vec![],
        },
    );
    // Six blocks old; the quote's 60 s take five.
    r.settle.insert(
        [11; 32],
        1,
        TransferLookup {
            block_number: 10,
            finalized_head: 16,
            finalized: true,
            succeeded: true,
            transfers: vec![Transfer {
                from: account("//Alice"),
                to: account("//Ferdie"),
                amount_rao: PRICE,
            }],
        },
    );
    let mut tampered: PaymentPayload =
        decode_header(&header_for(&r, "//Alice", good, "/data")).unwrap();
    tampered.accepted.pay_to = Hotkey::from_uri("//Alice").unwrap().ss58();
    let mut other_net: PaymentPayload =
        decode_header(&header_for(&r, "//Alice", good, "/data")).unwrap();
    other_net.accepted.network = "bittensor:00".into();
    let cases: Vec<(String, &str)> = vec![
        ("%%%not base64".into(), "invalid_payment"),
        (
            encode_header(&serde_json::json!({"x402Version": 2})),
            "invalid_payment",
        ),
        (encode_header(&tampered), "invalid_payment"),
        (encode_header(&other_net), "invalid_payment"),
        (
            header_for(&r, "//Alice", good, "/elsewhere"),
            "invalid_payment_signature",
        ),
        (
            header_for(&r, "//Alice", short, "/data"),
            "insufficient_payment",
        ),
        // Bob paid, Alice claims it: no transfer from the signer.
        (
            header_for(&r, "//Alice", from_bob, "/data"),
            "settlement_failed",
        ),
        (
            header_for(&r, "//Alice", ([5; 32], 1), "/data"),
            "settlement_failed",
        ),
        (
            header_for(&r, "//Alice", ([6; 32], 1), "/data"),
            "settlement_failed",
        ),
        (
            header_for(&r, "//Alice", ([7; 32], 1), "/data"),
            "settlement_failed",
        ),
        (
            header_for(&r, "//Alice", ([11; 32], 1), "/data"),
            "payment_expired",
        ),
    ];
    for (h, code) in &cases {
        let (status, body, hs) = send(&r, "/data", &[(PAYMENT_SIGNATURE, h)]).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{code}: {body}");
        assert_eq!(body["error"], *code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
        assert!(header(&hs, PAYMENT_REQUIRED).is_some());
    }
    assert_eq!(r.served.load(Ordering::SeqCst), 0);
    // The refused payments stay unused: the good one still buys its call.
    let (status, _, _) = send(
        &r,
        "/data",
        &[(PAYMENT_SIGNATURE, &header_for(&r, "//Alice", good, "/data"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r.served.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_call_does_not_use_the_payment() {
    let r = rig();
    let at = pay(&r, 8, "//Alice", PRICE);
    let h = header_for(&r, "//Alice", at, "/broken");
    for _ in 0..2 {
        let (status, _, hs) = send(&r, "/broken", &[(PAYMENT_SIGNATURE, &h)]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(header(&hs, PAYMENT_RESPONSE).is_none());
    }
    assert!(
        !r.spent
            .is_spent(&format!("0x{}:1", "08".repeat(32)))
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_uses_of_one_payment_serve_one_call() {
    let r = rig_with(
        TestSettlement::new().with_delay(Duration::from_millis(200)),
        Arc::new(MemorySpent::default()),
    );
    let at = pay(&r, 9, "//Alice", PRICE);
    let h = header_for(&r, "//Alice", at, "/data");
    let hs = [(PAYMENT_SIGNATURE, h.as_str())];
    let (a, b) = tokio::join!(send(&r, "/data", &hs), send(&r, "/data", &hs));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::PAYMENT_REQUIRED]);
    assert_eq!(r.served.load(Ordering::SeqCst), 1);
    // Only one use reached the chain: the other was refused while the first settled.
    assert_eq!(r.settle.calls(), 1);
}

#[tokio::test]
async fn a_payment_stays_spent_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payments.db");
    let h;
    {
        let r = rig_with(
            TestSettlement::new(),
            Arc::new(SqliteSpent::open(&path).unwrap()),
        );
        let at = pay(&r, 10, "//Alice", PRICE);
        h = header_for(&r, "//Alice", at, "/data");
        assert_eq!(
            send(&r, "/data", &[(PAYMENT_SIGNATURE, &h)]).await.0,
            StatusCode::OK
        );
    }
    let r = rig_with(
        TestSettlement::new(),
        Arc::new(SqliteSpent::open(&path).unwrap()),
    );
    pay(&r, 10, "//Alice", PRICE);
    let (status, body, _) = send(&r, "/data", &[(PAYMENT_SIGNATURE, &h)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("payment_already_used"))
    );
    assert_eq!(r.served.load(Ordering::SeqCst), 0);
}

proptest::proptest! {
    /// Whatever arrives in the header, the gate answers 402 with a reason and serves nothing.
    #[test]
    fn arbitrary_payment_headers_are_refused_cleanly(raw in "[ -~]{0,300}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let r = rig();
        let (status, body, _) = rt.block_on(send(&r, "/data", &[(PAYMENT_SIGNATURE, &raw)]));
        proptest::prop_assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
        proptest::prop_assert!(body["error"].as_str().is_some_and(|c| c.starts_with("invalid_payment")));
        proptest::prop_assert_eq!(r.served.load(Ordering::SeqCst), 0);
    }
}
