#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Generated responses: schema conformance for every subnet, endpoint and schema version,
//! determinism, stable fields, request-driven sizes.

use orchestra_mocks::{CallContext, CallOutcome, MockSet, SubnetEvent};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::OnceLock;

fn set() -> &'static MockSet {
    static SET: OnceLock<MockSet> = OnceLock::new();
    SET.get_or_init(|| {
        MockSet::load_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/subnets"))
            .unwrap()
    })
}

/// Every (subnet, endpoint, version) with its output validator and the endpoint's input
/// schema and minimal input, compiled once.
struct Case {
    netuid: u16,
    endpoint: String,
    version: u32,
    output: jsonschema::Validator,
    input_schema: Value,
    minimal: Value,
}

fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut out = Vec::new();
        for s in set().iter() {
            for ep in &s.entry().endpoints {
                for v in s.schema_versions(&ep.name).unwrap() {
                    out.push(Case {
                        netuid: s.netuid(),
                        endpoint: ep.name.clone(),
                        version: v,
                        output: jsonschema::validator_for(s.output_schema(&ep.name, v).unwrap())
                            .unwrap(),
                        input_schema: ep.input_schema.clone(),
                        minimal: ep.minimal_input.clone(),
                    });
                }
            }
        }
        out
    })
}

const WORDS: &[&str] = &[
    "tao",
    "subnet",
    "Ünïcode ✓",
    "a",
    "market research 2026",
    "x y z",
];

/// A variation of `minimal` that stays inside `schema`: strings replaced, integers moved
/// within their bounds, arrays resized, enums re-picked.
fn vary(v: &Value, schema: &Value, rng: &mut ChaCha8Rng) -> Value {
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        return e[rng.random_range(0..e.len())].clone();
    }
    match v {
        Value::String(s) if schema.get("format").and_then(Value::as_str) == Some("uri") => {
            Value::String(format!("{s}/page/{}", rng.random_range(0..1000)))
        }
        Value::String(_) => Value::String(WORDS[rng.random_range(0..WORDS.len())].to_string()),
        Value::Number(n) if n.is_i64() => {
            let lo = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let hi = schema
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(lo + 500)
                .min(lo + 500);
            json!(rng.random_range(lo..=hi))
        }
        Value::Array(items) if !items.is_empty() => {
            let item_schema = schema.get("items").cloned().unwrap_or(json!({}));
            let lo = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let hi = schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(6)
                .min(6) as usize;
            let n = rng.random_range(lo.max(1)..=hi.max(lo.max(1)));
            (0..n)
                .map(|i| vary(&items[i % items.len()], &item_schema, rng))
                .collect()
        }
        Value::Object(m) => {
            let props = schema.get("properties").cloned().unwrap_or(json!({}));
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                out.insert(k.clone(), vary(x, props.get(k).unwrap_or(&json!({})), rng));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn ctx(seed: u64, now_ms: u64) -> CallContext {
    CallContext {
        seed,
        now_ms,
        load: 0.0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every generated response validates against its version's schema; deterministic
    /// endpoints repeat byte for byte; stable fields repeat on the others.
    #[test]
    fn responses_conform_and_repeat(seed in any::<u64>(), vary_seed in any::<u64>(),
                                    now_ms in 1_600_000_000_000u64..1_900_000_000_000) {
        let mut vr = ChaCha8Rng::seed_from_u64(vary_seed);
        for c in cases() {
            let s = set().get(c.netuid).unwrap();
            let request = vary(&c.minimal, &c.input_schema, &mut vr);
            prop_assert!(jsonschema::is_valid(&c.input_schema, &request), "bad test input {request}");
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
            let a = s.generate(&c.endpoint, c.version, &request, ctx(seed, now_ms), &mut rng).unwrap();
            if let Err(e) = c.output.validate(&a) {
                prop_assert!(false, "{} {} v{}: {e}\nrequest {request}\nresponse {a}", s.entry().name, c.endpoint, c.version);
            }
            let size = serde_json::to_vec(&a).unwrap().len();
            prop_assert!(size <= 4096, "{} {} v{}: {size} bytes", s.entry().name, c.endpoint, c.version);
            // A later call, another RNG state, another clock.
            let b = s.generate(&c.endpoint, c.version, &request, ctx(seed, now_ms + 60_000), &mut rng).unwrap();
            let deterministic = s.entry().endpoints.iter().find(|e| e.name == c.endpoint).unwrap().deterministic;
            if deterministic {
                prop_assert_eq!(serde_json::to_vec(&a).unwrap(), serde_json::to_vec(&b).unwrap());
            } else {
                for p in s.stable_fields(&c.endpoint, c.version).unwrap() {
                    let (x, y) = (a.pointer(p), b.pointer(p));
                    prop_assert!(x.is_some(), "stable field {p} missing in {a}");
                    prop_assert_eq!(x, y, "stable field {} differs", p);
                }
            }
        }
    }

    /// Through `call`, after a schema change, successful responses follow the new version.
    #[test]
    fn calls_follow_the_current_schema_version(seed in any::<u64>()) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for c in cases() {
            let s = set().get(c.netuid).unwrap();
            let mut state = s.initial_state();
            s.apply(&mut state, &SubnetEvent::SchemaChange { endpoint: c.endpoint.clone(), version: c.version }).unwrap();
            for _ in 0..4 {
                if let CallOutcome::Ok { response, .. } = s.probe(&state, &c.endpoint, ctx(seed, 0), &mut rng) {
                    prop_assert!(c.output.is_valid(&response), "{} {} v{}: {response}", s.entry().name, c.endpoint, c.version);
                }
            }
        }
    }
}

#[test]
fn deterministic_content_depends_on_seed_request_and_version_only() {
    let s = set().get(5).unwrap(); // OpenKaito embed: deterministic.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let r1 = json!({"input": ["hello", "world"], "model": "m"});
    // Same JSON, other key order on the wire.
    let r1b: Value = serde_json::from_str(r#"{"model":"m","input":["hello","world"]}"#).unwrap();
    let a = s.generate("embed", 1, &r1, ctx(9, 1), &mut rng).unwrap();
    let b = s.generate("embed", 1, &r1b, ctx(9, 2), &mut rng).unwrap();
    assert_eq!(a, b);
    assert_ne!(
        a,
        s.generate("embed", 1, &r1, ctx(10, 1), &mut rng).unwrap(),
        "seed ignored"
    );
    assert_ne!(
        a,
        s.generate(
            "embed",
            1,
            &json!({"input": ["hello", "there"]}),
            ctx(9, 1),
            &mut rng
        )
        .unwrap(),
        "request ignored"
    );
    // The embedding has the declared dimension and one item per input.
    let data = a["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 64);
    let norm: f64 = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum();
    assert!((norm - 1.0).abs() < 0.01, "not unit length: {norm}");
}

#[test]
fn non_deterministic_endpoints_vary() {
    let s = set().get(22).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let req = json!({"prompt": "bittensor subnets", "count": 3});
    let a = s
        .generate("web_search", 1, &req, ctx(1, 1), &mut rng)
        .unwrap();
    let b = s
        .generate("web_search", 1, &req, ctx(1, 1), &mut rng)
        .unwrap();
    assert_ne!(a, b);
}

#[test]
fn sizes_follow_the_request_within_caps() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let desearch = set().get(22).unwrap();
    let n = |v: Value, key: &str| v[key].as_array().unwrap().len();
    let five = desearch.generate(
        "web_search",
        1,
        &json!({"prompt": "p", "count": 5}),
        ctx(1, 1),
        &mut rng,
    );
    assert_eq!(n(five.unwrap(), "search_results"), 5);
    let many = desearch.generate(
        "web_search",
        1,
        &json!({"prompt": "p", "count": 200}),
        ctx(1, 1),
        &mut rng,
    );
    assert_eq!(
        n(many.unwrap(), "search_results"),
        8,
        "max_items caps big counts"
    );
    let v2 = desearch.generate(
        "web_search",
        2,
        &json!({"prompt": "p", "count": 4}),
        ctx(1, 1),
        &mut rng,
    );
    assert_eq!(
        v2.unwrap()["data"]["results"].as_array().unwrap().len(),
        4,
        "count reaches nested lists"
    );
    let sentio = set().get(41).unwrap();
    let r = sentio.generate(
        "score",
        1,
        &json!({"texts": ["good", "bad", "meh"]}),
        ctx(1, 1),
        &mut rng,
    );
    assert_eq!(n(r.unwrap(), "scores"), 3);
    // Chat honours max_tokens as a word budget and echoes the model asked for.
    let targon = set().get(4).unwrap();
    let req =
        json!({"model": "m/x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5});
    let r = targon
        .generate("chat", 1, &req, ctx(1, 1), &mut rng)
        .unwrap();
    assert_eq!(r["model"], "m/x");
    let content = r["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.split_whitespace().count(), 5, "{content}");
}

#[test]
fn responses_look_realistic() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let desearch = set().get(22).unwrap();
    let r = desearch
        .generate(
            "web_search",
            2,
            &json!({"prompt": "solar storage", "count": 2}),
            ctx(1, 1_764_000_000_000),
            &mut rng,
        )
        .unwrap();
    let item = &r["data"]["results"][0];
    assert!(item["url"].as_str().unwrap().starts_with("https://"));
    assert!(item["title"].as_str().unwrap().starts_with("Solar storage"));
    let date = item["published_at"].as_str().unwrap();
    assert!(
        date.starts_with("2025-1") && date.ends_with('Z') && date.len() == 20,
        "{date}"
    );
    let sentio = set().get(41).unwrap();
    for _ in 0..20 {
        let r = sentio
            .generate(
                "score",
                1,
                &json!({"texts": ["x"]}),
                ctx(rng.random(), 1),
                &mut rng,
            )
            .unwrap();
        let (label, score) = (
            r["scores"][0]["label"].as_str().unwrap(),
            r["scores"][0]["score"].as_f64().unwrap(),
        );
        match label {
            "positive" => assert!(score >= 0.0),
            "negative" => assert!(score <= 0.0),
            _ => assert!(score.abs() <= 0.1),
        }
    }
}

#[test]
fn equal_rng_seeds_give_equal_call_sequences() {
    let run = || {
        let mut rng = ChaCha8Rng::seed_from_u64(77);
        let mut out = Vec::new();
        for s in set().iter() {
            let state = s.initial_state();
            for e in s.endpoint_names() {
                for i in 0..5 {
                    out.push(s.probe(&state, e, ctx(1, 1_000 * i), &mut rng));
                }
            }
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn counts_agree_with_their_lists() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let du = set().get(13).unwrap();
    for _ in 0..20 {
        let r = du
            .generate(
                "on_demand",
                2,
                &json!({"source": "X", "limit": 4}),
                ctx(1, 1),
                &mut rng,
            )
            .unwrap();
        assert_eq!(r["meta"]["items_returned"], 4);
        let q = du
            .generate(
                "dataset_query",
                1,
                &json!({"label": "x", "limit": 2}),
                ctx(rng.random(), 1),
                &mut rng,
            )
            .unwrap();
        assert!(q["total"].as_i64().unwrap() >= 2);
    }
}

/// Replay binding (docs/mechanism.md §3): a deterministic endpoint ignores the nonce, so an
/// audit re-executing a bound request reproduces it and the output depends only on the rest of
/// the request; a non-deterministic endpoint's stable fields are keyed by the full request,
/// nonce included, so they agree on a re-execution of the same bound request and differ for
/// another challenge's nonce.
#[test]
fn deterministic_endpoints_ignore_the_nonce_and_stable_fields_follow_it() {
    use orchestra_protocol::hash::Hash32;
    use orchestra_protocol::messages::{NONCE_FIELD, call_nonce};
    let nonce = |i: u8| call_nonce(&Hash32([i; 32]), "step").to_hex();
    let mut rng = ChaCha8Rng::seed_from_u64(4);

    let embed = set().get(5).unwrap();
    let plain = json!({"input": ["hello", "world"], "model": "m", "request_id": "r1"});
    let mut bound = plain.clone();
    bound[NONCE_FIELD] = json!(nonce(1));
    let mut other = plain.clone();
    other[NONCE_FIELD] = json!(nonce(2));
    let a = embed.generate("embed", 1, &plain, ctx(9, 1), &mut rng);
    assert_eq!(a, embed.generate("embed", 1, &bound, ctx(9, 1), &mut rng));
    assert_eq!(a, embed.generate("embed", 1, &other, ctx(9, 1), &mut rng));

    // The shipped stable fields are constants or echoes ("assistant", "success", the request's
    // url), which no key moves; a web search whose first title is stable shows the keying.
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/subnets/sn022_desearch.toml"),
    )
    .unwrap();
    // Only version 1: the other versions rename the field.
    let text = text
        .split("[[behaviour.schema_versions]]")
        .next()
        .unwrap()
        .replacen(
            "stable_fields = []",
            r#"stable_fields = ["/search_results/0/title"]"#,
            1,
        );
    let search = orchestra_mocks::MockSubnet::from_toml_str("sn022", &text).unwrap();
    let title = |request: &Value, rng: &mut ChaCha8Rng| {
        search
            .generate("web_search", 1, request, ctx(9, 1), rng)
            .unwrap()["search_results"][0]["title"]
            .clone()
    };
    let base = json!({"prompt": "bittensor subnets", "count": 3, "request_id": "r1"});
    let with = |i: u8| {
        let mut r = base.clone();
        r[NONCE_FIELD] = json!(nonce(i));
        r
    };
    // The same bound request always agrees on its stable field (what an audit compares).
    assert_eq!(title(&with(1), &mut rng), title(&with(1), &mut rng));
    // Other challenges' nonces move it.
    let mine = title(&with(1), &mut rng);
    let moved = (2..12u8)
        .filter(|&i| title(&with(i), &mut rng) != mine)
        .count();
    assert!(
        moved >= 8,
        "only {moved} of 10 nonces changed the stable field"
    );
}
