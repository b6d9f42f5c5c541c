//! `behaviour.agreement`: answers of a non-deterministic endpoint to one request agree in part
//! (what an audit's content check compares), answers to different requests do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_mechanism::agreement::agreement;
use orchestra_mocks::{CallContext, MockSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn ctx(now_ms: u64) -> CallContext {
    CallContext {
        seed: 42,
        now_ms,
        load: 0.0,
    }
}

/// (min, median, max) of `xs`.
fn spread(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[0], xs[xs.len() / 2], xs[xs.len() - 1])
}

/// Agreement of a re-execution with the committed answer to the same request, and with a real
/// answer to another request (what a miner could borrow), over 200 requests of `endpoint` (its
/// probe input, with a nonce, and 32 tokens where it takes `max_tokens`).
fn measure(set: &MockSet, netuid: u16, endpoint: &str) -> (Vec<f64>, Vec<f64>) {
    let subnet = set.get(netuid).unwrap();
    let ep = subnet
        .entry()
        .endpoints
        .iter()
        .find(|e| e.name == endpoint)
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let request = |n: u64| {
        let mut r = ep.minimal_input.clone();
        if let Some(m) = r.as_object_mut() {
            m.insert("orchestra_nonce".into(), json!(format!("{n:064x}")));
            // A probe's one-token answer is all constants; a miner's requests ask for more.
            if m.contains_key("max_tokens") {
                m.insert("max_tokens".into(), json!(32));
            }
        }
        r
    };
    let mut answer = |n: u64, at: u64| -> Value {
        subnet
            .generate(endpoint, 1, &request(n), ctx(at), &mut rng)
            .unwrap()
    };
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for i in 0..200u64 {
        let committed = answer(i, 1_000);
        let audit = answer(i, 60_000);
        let borrowed = answer(i + 10_000, 1_000);
        same.push(agreement(&committed, &audit));
        other.push(agreement(&borrowed, &audit));
    }
    (same, other)
}

/// Every non-deterministic endpoint of `set`, as (netuid, endpoint).
fn nondeterministic(set: &MockSet) -> Vec<(u16, String)> {
    set.iter()
        .flat_map(|s| {
            s.entry()
                .endpoints
                .iter()
                .filter(|e| !e.deterministic)
                .map(|e| (s.netuid(), e.name.clone()))
        })
        .collect()
}

#[test]
fn answers_to_one_request_agree_and_answers_to_others_do_not() {
    let set = MockSet::shipped(&BTreeMap::new()).unwrap();
    let endpoints = nondeterministic(&set);
    assert!(endpoints.len() >= 10, "{endpoints:?}");
    for (netuid, endpoint) in endpoints {
        let a = set.get(netuid).unwrap().behaviour().agreement;
        assert!(a >= 0.6, "{netuid} {endpoint}: shipped agreement {a}");
        let (same, other) = measure(&set, netuid, &endpoint);
        let (same_min, same_median, _) = spread(same);
        let (_, other_median, _) = spread(other);
        eprintln!(
            "{netuid:>3} {endpoint:<14} agreement {a}: same request min {same_min:.3} median \
             {same_median:.3}, another request median {other_median:.3}"
        );
        // Above the default content check (0.2) with a margin: an honest answer is never struck.
        assert!(same_min >= 0.25, "{netuid} {endpoint}: {same_min}");
        // Most borrowed answers show less than any honest one.
        assert!(other_median < same_min, "{netuid} {endpoint}");
    }
}

#[test]
fn without_agreement_every_call_draws_its_content_afresh() {
    let overrides = BTreeMap::from([(22u16, toml::toml! { agreement = 0.0 })]);
    let set = MockSet::shipped(&overrides).unwrap();
    let (same, other) = measure(&set, 22, "web_search");
    let (_, same_median, _) = spread(same);
    let (_, other_median, _) = spread(other);
    // Two answers to one request share no more than answers to two requests.
    assert!(same_median < 0.2, "{same_median}");
    assert!((same_median - other_median).abs() < 0.1);
}

#[test]
fn agreement_outside_zero_to_one_is_refused_by_name() {
    let overrides = BTreeMap::from([(22u16, toml::toml! { agreement = 1.5 })]);
    let err = MockSet::shipped(&overrides).unwrap_err().to_string();
    assert!(err.contains("behaviour.agreement"), "{err}");
    assert!(err.contains("1.5"), "{err}");
}
