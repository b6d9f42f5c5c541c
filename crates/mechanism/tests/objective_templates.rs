//! Every objective template under `mocks/objectives` parses, validates, and instantiates
//! deterministically; its schema feeds the schema/completeness terms sensibly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use orchestra_mechanism::orchestration::{completeness, schema_valid};
use orchestra_mechanism::templates::{
    Capability, ObjectiveTemplate, instantiate, leaf_fields, placeholders, required_leaf_fields,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn objectives_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/objectives")
}

fn load_all() -> Vec<(String, ObjectiveTemplate)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(objectives_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let t = ObjectiveTemplate::from_toml_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), t)
        })
        .collect()
}

#[test]
fn every_template_loads_and_validates() {
    let all = load_all();
    let kinds: Vec<&str> = all.iter().map(|(_, t)| t.kind.as_str()).collect();
    for required in [
        "market_research",
        "competitive_analysis",
        "data_aggregation",
    ] {
        assert!(
            kinds.contains(&required),
            "missing template {required}: {kinds:?}"
        );
    }
    for (file, t) in &all {
        assert_eq!(format!("{}.toml", t.kind), *file, "file name matches kind");
        let leaves = leaf_fields(&t.target_schema);
        let required = required_leaf_fields(&t.target_schema);
        assert!(
            leaves >= 8 && required >= 5 && required <= leaves,
            "{file}: {leaves} / {required}"
        );
        assert!(
            t.reference_plan.len() >= 3,
            "{file}: reference plan too short"
        );
        assert!(
            t.reference_capabilities()
                .contains(&Capability::LlmSynthesis)
        );
        // An empty answer is incomplete and invalid; the schema is usable by both terms.
        let empty = serde_json::json!({});
        assert_eq!(completeness(&t.target_schema, &empty), 0.0, "{file}");
        assert!(
            schema_valid(&t.target_schema, &empty).unwrap() < 1.0,
            "{file}"
        );
    }
}

#[test]
fn instantiation_fills_every_placeholder_deterministically() {
    for (file, t) in load_all() {
        let mut a = ChaCha8Rng::seed_from_u64(42);
        let mut b = ChaCha8Rng::seed_from_u64(42);
        for _ in 0..10 {
            let (text_a, params_a) = instantiate(&t, &mut a);
            let (text_b, params_b) = instantiate(&t, &mut b);
            assert_eq!((&text_a, &params_a), (&text_b, &params_b), "{file}");
            assert!(placeholders(&text_a).is_empty(), "{file}: {text_a}");
            assert_eq!(
                params_a.as_object().unwrap().len(),
                t.params.len(),
                "{file}"
            );
        }
    }
}

#[test]
fn a_full_market_research_answer_scores_one() {
    let text = std::fs::read_to_string(objectives_dir().join("market_research.toml")).unwrap();
    let t = ObjectiveTemplate::from_toml_str(&text).unwrap();
    let answer = serde_json::json!({
        "market": "home solar storage", "region": "India", "period": "2024-2026",
        "size": {"value_usd": 1.2e9, "year": 2025, "cagr_percent": 18.5},
        "players": [{"name": "A", "share_percent": 30}, {"name": "B", "share_percent": 20.5}],
        "sentiment": {"score": 0.4, "sample_size": 1200},
        "sources": [{"url": "https://example.org/report"}]
    });
    assert_eq!(schema_valid(&t.target_schema, &answer).unwrap(), 1.0);
    assert_eq!(completeness(&t.target_schema, &answer), 1.0);
    // Drop one player's share and make the year a string: one required leaf of 11 missing
    // (players[].share_percent), two validation errors (missing share, year type) of 16 leaves.
    let mut worse = answer.clone();
    worse["players"][1]
        .as_object_mut()
        .unwrap()
        .remove("share_percent");
    worse["size"]["year"] = serde_json::json!("2025");
    assert_eq!(leaf_fields(&t.target_schema), 16);
    assert_eq!(required_leaf_fields(&t.target_schema), 11);
    assert!((completeness(&t.target_schema, &worse) - 10.0 / 11.0).abs() < 1e-12);
    assert!((schema_valid(&t.target_schema, &worse).unwrap() - (1.0 - 2.0 / 16.0)).abs() < 1e-12);
}
