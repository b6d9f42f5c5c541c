#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The behaviour model: latency distribution, failures, outages, load, prices, receipts, state
//! events and ground truth.

use orchestra_mocks::{
    Behaviour, CallContext, CallOutcome, ErrorKind, MockSet, MockSubnet, StateError, SubnetEvent,
    SubnetState, receipt_dev_key,
};
use orchestra_protocol::hash_canonical;
use orchestra_protocol::keys::{Scheme, verify_signature};
use orchestra_protocol::ledger::Status;
use orchestra_protocol::messages::receipt_message;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::path::PathBuf;
use std::sync::OnceLock;

fn set() -> &'static MockSet {
    static SET: OnceLock<MockSet> = OnceLock::new();
    SET.get_or_init(|| {
        MockSet::load_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/subnets"))
            .unwrap()
    })
}

fn ctx(load: f64) -> CallContext {
    CallContext {
        seed: 1,
        now_ms: 1_764_000_000_000,
        load,
    }
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64
}

/// Probe `n` times; latencies of successes (sorted) and the share of failures by kind.
fn sample(
    s: &MockSubnet,
    state: &SubnetState,
    endpoint: &str,
    load: f64,
    n: usize,
) -> (Vec<u64>, f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let (mut ok, mut server, mut unavailable) = (Vec::new(), 0, 0);
    for _ in 0..n {
        match s.probe(state, endpoint, ctx(load), &mut rng) {
            CallOutcome::Ok { latency_ms, .. } => ok.push(latency_ms),
            CallOutcome::Err {
                kind: ErrorKind::ServerError,
                ..
            } => server += 1,
            CallOutcome::Err {
                kind: ErrorKind::Unavailable,
                ..
            } => unavailable += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    ok.sort_unstable();
    (ok, server as f64 / n as f64, unavailable as f64 / n as f64)
}

#[test]
fn latency_and_failures_match_the_configuration() {
    for (netuid, endpoint) in [
        (22, "web_search"),
        (13, "on_demand"),
        (41, "score"),
        (1, "synthesize"),
    ] {
        let s = set().get(netuid).unwrap();
        let lat = s.behaviour().latency.unwrap();
        let (ok, server, _) = sample(s, &s.initial_state(), endpoint, 0.0, 20_000);
        let p50 = quantile(&ok, 0.5);
        let p95 = quantile(&ok, 0.95);
        assert!(
            (p50 / lat.p50_ms as f64 - 1.0).abs() < 0.03,
            "{netuid}: p50 {p50} vs {}",
            lat.p50_ms
        );
        assert!(
            (p95 / lat.p95_ms as f64 - 1.0).abs() < 0.06,
            "{netuid}: p95 {p95} vs {}",
            lat.p95_ms
        );
        let want = s.failure_rate();
        assert!(
            (server - want).abs() < 4.0 * (want / 20_000.0).sqrt() + 0.002,
            "{netuid}: {server} vs {want}"
        );
    }
}

#[test]
fn endpoint_latency_scale_applies() {
    let s = set().get(19).unwrap();
    let (ok, _, _) = sample(s, &s.initial_state(), "text_to_image", 0.0, 10_000);
    let p50 = quantile(&ok, 0.5);
    assert!((p50 / (310.0 * 4.0) - 1.0).abs() < 0.04, "{p50}");
}

#[test]
fn overload_slows_and_sheds() {
    let s = set().get(22).unwrap(); // capacity 50/s, exponent 1.5, slope 0.5
    let state = s.initial_state();
    let (ok, server, shed) = sample(s, &state, "web_search", 100.0, 20_000);
    let p50 = quantile(&ok, 0.5);
    let want = 340.0 * 2f64.powf(1.5);
    assert!((p50 / want - 1.0).abs() < 0.04, "{p50} vs {want}");
    assert!((shed - 0.5).abs() < 0.02, "shed {shed}");
    assert!((server - 0.5 * 0.03).abs() < 0.006, "server {server}");
    // The ground truth predicts what the calls show.
    let truth = s.true_metrics(&state, 100.0);
    let empirical = ok.len() as f64 / 20_000.0;
    assert!(
        (truth.reliability - empirical).abs() < 0.02,
        "{} vs {empirical}",
        truth.reliability
    );
    assert!((truth.p50_latency_ms as f64 / p50 - 1.0).abs() < 0.04);
    // Under capacity nothing changes.
    assert_eq!(s.true_metrics(&state, 49.0), s.true_metrics(&state, 0.0));
}

#[test]
fn outages_and_deprecation_fail_every_call() {
    let s = set().get(22).unwrap();
    let mut state = s.initial_state();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    s.apply(&mut state, &SubnetEvent::OutageStart).unwrap();
    for e in ["web_search", "x_search"] {
        for _ in 0..200 {
            assert_eq!(
                s.probe(&state, e, ctx(0.0), &mut rng).error(),
                Some(ErrorKind::Unavailable)
            );
        }
    }
    assert_eq!(s.true_entry(&state).metrics.reliability, 0.0);
    assert_eq!(s.true_entry(&state).status, Status::Degraded);
    s.apply(&mut state, &SubnetEvent::OutageEnd).unwrap();
    assert!((0..50).any(|_| {
        s.probe(&state, "web_search", ctx(0.0), &mut rng)
            .response()
            .is_some()
    }));
    s.apply(&mut state, &SubnetEvent::Deprecate).unwrap();
    assert!((0..200).all(
        |_| s.probe(&state, "web_search", ctx(0.0), &mut rng).error()
            == Some(ErrorKind::Unavailable)
    ));
    assert_eq!(s.true_entry(&state).status, Status::Deprecated);
}

#[test]
fn bad_requests_and_unknown_endpoints_are_rejected() {
    let s = set().get(22).unwrap();
    let mut state = s.initial_state();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for bad in [
        json!({}),
        json!({"prompt": ""}),
        json!({"prompt": 5}),
        json!({"prompt": "x", "count": 0}),
        json!("prompt"),
    ] {
        let out = s.call(
            &state,
            "web_search",
            &bad.clone().into(),
            ctx(0.0),
            &mut rng,
        );
        assert_eq!(out.error(), Some(ErrorKind::BadRequest), "{bad}");
    }
    let out = s.call(&state, "nope", &json!({}).into(), ctx(0.0), &mut rng);
    assert_eq!(out.error(), Some(ErrorKind::UnknownEndpoint));
    assert_eq!(ErrorKind::UnknownEndpoint.http_status(), 404);
    s.apply(
        &mut state,
        &SubnetEvent::RemoveEndpoint {
            endpoint: "x_search".into(),
        },
    )
    .unwrap();
    assert_eq!(
        s.probe(&state, "x_search", ctx(0.0), &mut rng).error(),
        Some(ErrorKind::UnknownEndpoint)
    );
    assert_eq!(s.true_entry(&state).endpoints.len(), 1);
}

#[test]
fn receipts_verify_against_the_subnet_key() {
    let mut signed = 0;
    for s in set().iter().filter(|s| s.behaviour().receipts) {
        let key = s.receipt_key().unwrap();
        assert_eq!(key.public_key(), receipt_dev_key(s.netuid()).public_key());
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let state = s.initial_state();
        for e in s.endpoint_names() {
            let request = s
                .entry()
                .endpoints
                .iter()
                .find(|x| x.name == e)
                .unwrap()
                .minimal_input
                .clone();
            for _ in 0..10 {
                let CallOutcome::Ok {
                    response, receipt, ..
                } = s.call(&state, e, &request.clone().into(), ctx(0.0), &mut rng)
                else {
                    continue;
                };
                let r = receipt.unwrap();
                let scheme = Scheme::from_name(&r.scheme).unwrap();
                let sig: [u8; 64] = hex::decode(r.signature.trim_start_matches("0x"))
                    .unwrap()
                    .try_into()
                    .unwrap();
                let msg = receipt_message(
                    &hash_canonical(&request).unwrap(),
                    &hash_canonical(&response).unwrap(),
                    ctx(0.0).now_ms,
                );
                assert!(verify_signature(scheme, &key.public_key(), &msg, &sig));
                let forged = receipt_message(
                    &hash_canonical(&request).unwrap(),
                    &hash_canonical(&json!({})).unwrap(),
                    ctx(0.0).now_ms,
                );
                assert!(!verify_signature(scheme, &key.public_key(), &forged, &sig));
                signed += 1;
            }
        }
    }
    assert!(signed > 10);
    // Subnets that do not sign give no receipt.
    let s = set().get(22).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let outs: Vec<_> = (0..20)
        .map(|_| s.probe(&s.initial_state(), "web_search", ctx(0.0), &mut rng))
        .collect();
    assert!(outs.iter().all(|o| !matches!(
        o,
        CallOutcome::Ok {
            receipt: Some(_),
            ..
        }
    )));
}

#[test]
fn prices_follow_the_state() {
    let s = set().get(19).unwrap();
    let mut state = s.initial_state();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let cost = |state: &SubnetState, e: &str, rng: &mut ChaCha8Rng| {
        (0..50).find_map(|_| match s.probe(state, e, ctx(0.0), rng) {
            CallOutcome::Ok { cost_rao, .. } => Some(cost_rao),
            _ => None,
        })
    };
    assert_eq!(cost(&state, "chat", &mut rng), Some(1_200_000));
    assert_eq!(
        cost(&state, "text_to_image", &mut rng),
        Some(3_000_000),
        "per-endpoint price"
    );
    s.apply(
        &mut state,
        &SubnetEvent::PriceMultiplier { multiplier: 1.5 },
    )
    .unwrap();
    assert_eq!(cost(&state, "chat", &mut rng), Some(1_800_000));
    assert_eq!(s.true_entry(&state).metrics.cost_per_query_rao, 1_800_000);
}

#[test]
fn true_entry_tracks_schema_versions_and_revisions() {
    let s = set().get(22).unwrap();
    let mut state = s.initial_state();
    let t0 = s.true_entry(&state);
    assert_eq!(t0.status, Status::Active);
    assert_eq!(t0.version, 1);
    assert_eq!(
        t0.endpoints,
        s.entry().endpoints,
        "initially the truth is the file's entry"
    );
    assert_eq!(t0.metrics.p50_latency_ms, 340);
    assert_eq!(t0.metrics.p95_latency_ms, 900);
    assert!((t0.metrics.reliability - 0.97).abs() < 1e-3);
    s.apply(
        &mut state,
        &SubnetEvent::SchemaChange {
            endpoint: "web_search".into(),
            version: 2,
        },
    )
    .unwrap();
    let t1 = s.true_entry(&state);
    assert_eq!(t1.version, 2);
    assert_eq!(
        &t1.endpoints[0].output_schema,
        s.output_schema("web_search", 2).unwrap()
    );
    assert_eq!(t1.endpoints[1], s.entry().endpoints[1]);
    // Re-applying the same version is not a change.
    s.apply(
        &mut state,
        &SubnetEvent::SchemaChange {
            endpoint: "web_search".into(),
            version: 2,
        },
    )
    .unwrap();
    assert_eq!(s.true_entry(&state).version, 2);
    // A slow-down degrades the status.
    s.apply(
        &mut state,
        &SubnetEvent::LatencyMultiplier { multiplier: 3.0 },
    )
    .unwrap();
    assert_eq!(s.true_entry(&state).status, Status::Degraded);
    assert_eq!(s.true_entry(&state).metrics.p50_latency_ms, 1020);
}

#[test]
fn events_are_checked_and_leave_state_alone_on_error() {
    let s = set().get(22).unwrap();
    let mut state = s.initial_state();
    let before = state.clone();
    let e = s.apply(
        &mut state,
        &SubnetEvent::SchemaChange {
            endpoint: "web_search".into(),
            version: 9,
        },
    );
    assert!(matches!(
        e,
        Err(StateError::UnknownVersion { version: 9, .. })
    ));
    let e = s.apply(
        &mut state,
        &SubnetEvent::SchemaChange {
            endpoint: "nope".into(),
            version: 1,
        },
    );
    assert!(matches!(e, Err(StateError::UnknownEndpoint { .. })));
    let e = s.apply(
        &mut state,
        &SubnetEvent::PriceMultiplier {
            multiplier: f64::NAN,
        },
    );
    assert!(matches!(e, Err(StateError::OutOfRange { .. })));
    let e = s.apply(&mut state, &SubnetEvent::ExtraFailureRate { rate: 1.5 });
    assert!(matches!(e, Err(StateError::OutOfRange { .. })));
    assert_eq!(state, before);
    // Events read from scenario files.
    let ev: SubnetEvent =
        toml::from_str("kind = \"schema_change\"\nendpoint = \"web_search\"\nversion = 2").unwrap();
    assert_eq!(
        ev,
        SubnetEvent::SchemaChange {
            endpoint: "web_search".into(),
            version: 2
        }
    );
}

#[test]
fn extra_failures_and_timeouts() {
    let s = set().get(41).unwrap();
    let mut state = s.initial_state();
    s.apply(&mut state, &SubnetEvent::ExtraFailureRate { rate: 1.0 })
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    assert!(
        (0..100).all(|_| s.probe(&state, "score", ctx(0.0), &mut rng).error()
            == Some(ErrorKind::ServerError))
    );
    let mut state = s.initial_state();
    // 90 ms p50 × 1000 is far past the 30 s gateway timeout.
    s.apply(
        &mut state,
        &SubnetEvent::LatencyMultiplier { multiplier: 1000.0 },
    )
    .unwrap();
    let outs: Vec<_> = (0..100)
        .map(|_| s.probe(&state, "score", ctx(0.0), &mut rng))
        .collect();
    assert!(
        outs.iter()
            .filter(|o| o.error() == Some(ErrorKind::Timeout))
            .count()
            > 90
    );
    assert!(outs.iter().all(|o| o.latency_ms() <= 30_000));
    assert!(s.true_metrics(&state, 0.0).reliability < 0.05);
}

#[test]
fn an_empty_behaviour_table_means_the_defaults() {
    let b: Behaviour = toml::from_str("").unwrap();
    assert_eq!(b, Behaviour::default());
    assert_eq!(b.timeout_ms, 30_000);
    assert_eq!(b.max_items, 8);
}

/// A receipt over a request carrying the replay-binding nonce signs the hash of the whole
/// request, nonce included: it verifies for that request and not for the same request under
/// another challenge's nonce (or none), so it cannot be reused for another challenge.
#[test]
fn receipts_over_nonce_bearing_requests_verify_and_bind_the_nonce() {
    use orchestra_protocol::hash::Hash32;
    use orchestra_protocol::messages::{NONCE_FIELD, call_nonce};
    let s = set().iter().find(|s| s.behaviour().receipts).unwrap();
    let key = s.receipt_key().unwrap();
    let ep = &s.entry().endpoints[0];
    let mut request = ep.minimal_input.clone();
    request[NONCE_FIELD] = json!(call_nonce(&Hash32([7; 32]), "step").to_hex());
    let mut other = request.clone();
    other[NONCE_FIELD] = json!(call_nonce(&Hash32([8; 32]), "step").to_hex());
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let state = s.initial_state();
    let (response, receipt) = (0..20)
        .find_map(|_| {
            match s.call(
                &state,
                &ep.name,
                &request.clone().into(),
                ctx(0.0),
                &mut rng,
            ) {
                CallOutcome::Ok {
                    response, receipt, ..
                } => Some((response, receipt.unwrap())),
                CallOutcome::Err { .. } => None,
            }
        })
        .unwrap();
    let scheme = Scheme::from_name(&receipt.scheme).unwrap();
    let sig: [u8; 64] = hex::decode(receipt.signature.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap();
    let signs = |req: &serde_json::Value| {
        let msg = receipt_message(
            &hash_canonical(req).unwrap(),
            &hash_canonical(&response).unwrap(),
            ctx(0.0).now_ms,
        );
        verify_signature(scheme, &key.public_key(), &msg, &sig)
    };
    assert!(signs(&request));
    assert!(!signs(&other));
    assert!(!signs(&ep.minimal_input));
}
