//! Bit-exact agreement with the Bittensor Python SDK (`bittensor==11.3.0`) on weight quantisation,
//! max-weight clipping and `_conform`, over every case of `fixtures/sdk_weights.json`
//! (regenerate with `fixtures/gen_sdk_weights.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_mechanism::weights::{WeightLimits, clip_to_max_weight, conform, normalize};
use serde_json::Value;

fn fixture() -> Value {
    let text = include_str!("fixtures/sdk_weights.json");
    serde_json::from_str(text).unwrap()
}

fn f64_from_bits(v: &Value) -> f64 {
    f64::from_bits(u64::from_str_radix(v.as_str().unwrap(), 16).unwrap())
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f64_from_bits).collect()
}

fn u16s(v: &Value) -> Vec<u16> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| u16::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

fn cases<'a>(doc: &'a Value, key: &str) -> &'a Vec<Value> {
    let c = doc[key].as_array().unwrap();
    assert!(!c.is_empty(), "{key} has no cases");
    c
}

#[test]
fn normalize_matches_sdk() {
    let doc = fixture();
    for (i, case) in cases(&doc, "normalize").iter().enumerate() {
        let uids = u16s(&case["uids"]);
        let weights = floats(&case["weights_bits"]);
        let got = normalize(&uids, &weights);
        if case.get("error").is_some() {
            assert!(
                got.is_err(),
                "normalize case {i}: SDK errs ({}), we gave {got:?}",
                case["error"]
            );
        } else {
            let (u, v) = got.unwrap_or_else(|e| panic!("normalize case {i}: {e}"));
            assert_eq!(u, u16s(&case["expect"]["uids"]), "normalize case {i} uids");
            assert_eq!(
                v,
                u16s(&case["expect"]["values"]),
                "normalize case {i} values"
            );
        }
    }
}

#[test]
fn clip_to_max_weight_matches_sdk_bit_for_bit() {
    let doc = fixture();
    for (i, case) in cases(&doc, "clip_to_max_weight").iter().enumerate() {
        let weights = floats(&case["weights_bits"]);
        let limit = f64_from_bits(&case["limit_bits"]);
        let got = clip_to_max_weight(&weights, limit);
        if case.get("error").is_some() {
            assert!(got.is_err(), "clip case {i}: SDK errs, we gave {got:?}");
        } else {
            let got = got.unwrap_or_else(|e| panic!("clip case {i}: {e}"));
            let want = floats(&case["expect_bits"]);
            let got_bits: Vec<u64> = got.iter().map(|x| x.to_bits()).collect();
            let want_bits: Vec<u64> = want.iter().map(|x| x.to_bits()).collect();
            assert_eq!(
                got_bits, want_bits,
                "clip case {i} (limit {limit}): {got:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn conform_matches_sdk() {
    let doc = fixture();
    for (i, case) in cases(&doc, "conform").iter().enumerate() {
        let uids = u16s(&case["uids"]);
        let weights = floats(&case["weights_bits"]);
        let limits = WeightLimits {
            self_uid: Some(u16::try_from(doc["self_uid"].as_u64().unwrap()).unwrap()),
            min_allowed_weights: u16::try_from(case["min_allowed_weights"].as_u64().unwrap())
                .unwrap(),
            max_weight_limit: u16::try_from(case["max_weight_limit"].as_u64().unwrap()).unwrap(),
        };
        let got = conform(&uids, &weights, &limits);
        if case.get("error").is_some() {
            assert!(
                got.is_err(),
                "conform case {i}: SDK errs ({}), we gave {got:?}",
                case["error"]
            );
        } else {
            let (u, v) = got.unwrap_or_else(|e| panic!("conform case {i}: {e}"));
            assert_eq!(u, u16s(&case["expect"]["uids"]), "conform case {i} uids");
            assert_eq!(
                v,
                u16s(&case["expect"]["values"]),
                "conform case {i} values"
            );
        }
    }
}
