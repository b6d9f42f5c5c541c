//! Protocol benches: hash-locked proof build and verify (1, 8 and 64 steps, 4 KiB bodies) and
//! btauth/1 sign and verify (3.4 KB body, as the Python SDK figure it is compared with).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orchestra_protocol::btauth::{MemoryReplayStore, Verifier, sign};
use orchestra_protocol::keys::verify_signature;
use orchestra_protocol::messages::{Challenge, Objective, Plan, PlanStep, Response};
use orchestra_protocol::proof::{ProofBuilder, verify};
use orchestra_protocol::{Hash32, Hotkey};
use serde_json::{Value, json};
use std::hint::black_box;

const VALIDATOR: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const MINER: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const ISSUED_AT: u64 = 1_764_000_000_000;

fn challenge() -> Challenge {
    Challenge {
        challenge_id: Hash32([7; 32]),
        validator: VALIDATOR.into(),
        issued_block: 1,
        issued_at_ms: ISSUED_AT,
        salt: Hash32([9; 32]),
        objective: Objective {
            kind: "market_research".into(),
            text: "t".into(),
            params: json!({}),
        },
        target_schema: json!({"type": "object"}),
        deadline_ms: 60_000,
        budget_rao: None,
        replay_binding: false,
    }
}

/// A realistic ~4 KiB JSON body: a list of search results.
fn body(seed: usize) -> Value {
    let results: Vec<Value> = (0..24)
        .map(|i| {
            json!({
                "title": format!("Result {seed}-{i}: market outlook for renewable storage"),
                "url": format!("https://example.com/{seed}/{i}/article"),
                "score": (i as f64) / 24.0,
                "snippet": "Analysts expect the sector to keep growing as costs fall.",
            })
        })
        .collect();
    json!({"results": results})
}

fn build(steps: usize) -> Response {
    let c = challenge();
    let mut builder = ProofBuilder::new(&c, MINER);
    let mut plan = Plan::default();
    for i in 0..steps {
        plan.steps.push(PlanStep {
            id: format!("s{i}"),
            capability: "web_search".into(),
            netuid: 22,
            endpoint: "search".into(),
            depends_on: if i == 0 {
                vec![]
            } else {
                vec![format!("s{}", i - 1)]
            },
        });
        let t = ISSUED_AT + 10 * i as u64;
        builder
            .push_call(
                &format!("s{i}"),
                22,
                "search",
                MINER,
                body(2 * i),
                body(2 * i + 1),
                t,
                10,
                1000,
            )
            .unwrap();
    }
    let data = json!({"summary": "ok", "items": [1, 2, 3]});
    let (proof, pipeline) = builder.finish(&data).unwrap();
    Response {
        challenge_id: c.challenge_id,
        miner: MINER.into(),
        plan,
        pipeline,
        standardized_data: data,
        proof,
        ledger_proposals: vec![],
    }
}

fn proof(c: &mut Criterion) {
    let mut group = c.benchmark_group("proof");
    for steps in [1usize, 8, 64] {
        let bytes = serde_json::to_vec(&body(0)).unwrap().len() * 2 * steps;
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::new("build", steps), &steps, |b, &steps| {
            b.iter(|| black_box(build(steps)))
        });
        let response = build(steps);
        let ch = challenge();
        let received = ISSUED_AT + 10 * steps as u64 + 1;
        group.bench_with_input(BenchmarkId::new("verify", steps), &response, |b, r| {
            b.iter(|| verify(&ch, black_box(r), received).unwrap())
        });
    }
    group.finish();
}

fn btauth(c: &mut Criterion) {
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let body = vec![b'x'; 3400];
    let mut group = c.benchmark_group("btauth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign_3400B", |b| {
        b.iter(|| black_box(sign(&alice, "POST", "/orchestrate", &body, Some(MINER), 1)))
    });
    group.finish();

    // Every request is accepted (fresh nonces, fresh replay store per batch), as under real
    // load: signature check plus replay-store insert, per request.
    const BATCH: usize = 256;
    let now = ISSUED_AT as i128 * 1_000_000;
    let signed: Vec<_> = (0..BATCH as i128)
        .map(|n| sign(&alice, "POST", "/orchestrate", &body, Some(MINER), now - n))
        .collect();
    let mut group = c.benchmark_group("btauth");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("verify_3400B_x256", |b| {
        b.iter_batched(
            || Verifier::with_store(MINER, MemoryReplayStore::default()),
            |verifier| {
                for s in &signed {
                    verifier
                        .verify(&s.as_auth_headers(), &body, "POST", "/orchestrate", now)
                        .unwrap();
                }
                verifier
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("btauth");
    group.throughput(Throughput::Elements(1));
    let message = b"btauth/1 payload of typical length, about two hundred bytes ...";
    let sig = alice.sign(message);
    let public = alice.public_key();
    group.bench_function("raw_sr25519_verify", |b| {
        b.iter(|| black_box(verify_signature(alice.scheme(), &public, message, &sig)))
    });
    group.finish();
}

criterion_group!(benches, proof, btauth);

fn decompress(c: &mut Criterion) {
    let public = Hotkey::from_uri("//Alice").unwrap().public_key();
    c.bench_function("btauth/sr25519_pubkey_decompress", |b| {
        b.iter(|| black_box(schnorrkel::PublicKey::from_bytes(black_box(&public)).is_ok()))
    });
}
criterion_group!(extra, decompress);
criterion_main!(benches, extra);
