//! Mock subnet benches: one simulated call (input validation, latency and failure draws,
//! response generation) for typical endpoints, a deterministic call, a signed call, and loading
//! every file of `mocks/subnets`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use orchestra_mocks::{CallContext, MockSet};
use orchestra_protocol::Body;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::hint::black_box;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mocks/subnets")
}

fn calls(c: &mut Criterion) {
    let set = MockSet::load_dir(dir()).unwrap();
    let cases: [(&str, u16, &str, Value); 5] = [
        // ~500 B: three search results (the typical call the target is about).
        (
            "desearch_web_search_3",
            22,
            "web_search",
            json!({"prompt": "bittensor subnets", "tools": ["web"], "count": 3}),
        ),
        (
            "data_universe_on_demand_3",
            13,
            "on_demand",
            json!({"source": "X", "keywords": ["bittensor"], "limit": 3}),
        ),
        (
            "apex_synthesize",
            1,
            "synthesize",
            json!({"messages": [{"role": "user", "content": "Summarise the findings."}], "max_tokens": 32}),
        ),
        // Deterministic: response keyed by (seed, request, version).
        (
            "openkaito_embed_64d",
            5,
            "embed",
            json!({"input": ["hello world"]}),
        ),
        // Signs an ed25519 receipt over canonical hashes of request and response.
        (
            "targon_chat_receipt",
            4,
            "chat",
            json!({"model": "unsloth/Llama-3.2-3B-Instruct", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}),
        ),
    ];
    let mut group = c.benchmark_group("mocks/call");
    group.throughput(Throughput::Elements(1));
    for (name, netuid, endpoint, request) in cases {
        let s = set.get(netuid).unwrap();
        let state = s.initial_state();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut now = 1_764_000_000_000u64;
        group.bench_function(name, |b| {
            // A fresh body per call, as a miner sends: its hash is not cached yet.
            b.iter_batched(
                || Body::new(request.clone()),
                |request| {
                    now += 1;
                    let ctx = CallContext {
                        seed: 7,
                        now_ms: now,
                        load: 10.0,
                    };
                    black_box(s.call(&state, endpoint, black_box(&request), ctx, &mut rng))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    c.bench_function("mocks/load_dir_12_files", |b| {
        b.iter(|| black_box(MockSet::load_dir(dir()).unwrap()))
    });
}

criterion_group!(benches, calls, load);
criterion_main!(benches);
