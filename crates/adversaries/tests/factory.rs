#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The factory: names, parameter parsing and errors, knob descriptions, determinism.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

mod harness;

use harness::{T0, Validator, answer, miner, params, table};
use orchestra_adversaries::params::parse;
use orchestra_adversaries::{
    AdaptiveParams, BuildError, CherryPickerParams, ConfirmationFarmerParams, CopycatParams,
    FabricatorParams, GroupState, InventedStepParams, KnobKind, LedgerOnlyParams,
    LedgerSpammerParams, NAMES, Params, ReplayerParams, ShellResponderParams, StaleRouterParams,
    SybilParams, build, knobs, params_at,
};
use proptest::prelude::*;

fn build_err(name: &str, params: &str) -> BuildError {
    match build(name, &table(params), &mut GroupState::default(), 0) {
        Ok(_) => panic!("{name} {{ {params} }} built"),
        Err(e) => e,
    }
}

fn key_of(name: &str, params: &str) -> String {
    build_err(name, params)
        .key()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_name_builds_with_default_params() {
    assert_eq!(NAMES[0], "honest");
    assert_eq!(NAMES.len(), 14);
    for &name in NAMES {
        let s = build(name, &toml::Table::new(), &mut GroupState::default(), 1).unwrap();
        assert_eq!(s.name(), name);
    }
}

#[test]
fn unknown_strategies_and_keys_are_named() {
    assert!(matches!(
        build_err("weight_copier", ""),
        BuildError::UnknownStrategy { name } if name == "weight_copier"
    ));
    for name in NAMES {
        assert_eq!(key_of(name, "bogus = 1"), "bogus", "{name}");
    }
    let e = build_err("fabricator", "rates = 0.5");
    assert!(e.to_string().contains("params.rates"), "{e}");
    assert!(e.to_string().contains("\"rate\""), "{e}");
}

#[test]
fn out_of_range_values_are_named() {
    for (name, params, key) in [
        ("fabricator", "rate = 1.5", "rate"),
        ("fabricator", "rate = -0.1", "rate"),
        ("fabricator", "rate = nan", "rate"),
        ("replayer", "rate = 2.0", "rate"),
        ("replayer", "min_age_ms = 2592000001", "min_age_ms"),
        ("replayer", "max_age_ms = 99999999999999", "max_age_ms"),
        ("ledger_spammer", "per_response = 65", "per_response"),
        ("ledger_spammer", "kinds = []", "kinds"),
        ("confirmation_farmer", "per_response = 0", "per_response"),
        ("stale_router", "refresh_every = 1000001", "refresh_every"),
        ("sybil", "share_rate = 1.01", "share_rate"),
        ("cherry_picker", "answer_rate = -0.5", "answer_rate"),
        ("cherry_picker", "max_cost_rao = 1000000001", "max_cost_rao"),
        ("ledger_only", "steps = 0", "steps"),
        ("ledger_only", "steps = 17", "steps"),
        ("shell_responder", "rate = 1.5", "rate"),
        ("shell_responder", "subcalls = 17", "subcalls"),
        ("invented_step", "steps = 0", "steps"),
        ("invented_step", "rate = -1.0", "rate"),
        ("adaptive", "window = 0", "window"),
        ("adaptive", "threshold = 1.5", "threshold"),
        ("adaptive", "attacks = []", "attacks"),
        ("adaptive", r#"attacks = ["adaptive"]"#, "attacks"),
        (
            "adaptive",
            r#"attacks = ["replayer", "replayer"]"#,
            "attacks",
        ),
        ("adaptive", r#"attacks = ["bogus"]"#, "attacks"),
        (
            "adaptive",
            r#"attacks = ["replayer"], params = { fabricator = {} }"#,
            "params.fabricator",
        ),
        (
            "adaptive",
            r#"attacks = ["replayer"], params = { replayer = { rate = 2.0 } }"#,
            "params.replayer.rate",
        ),
        (
            "adaptive",
            r#"attacks = ["copycat"], params = { copycat = { bogus = 1 } }"#,
            "params.copycat.bogus",
        ),
    ] {
        assert_eq!(key_of(name, params), key, "{name} {{ {params} }}");
    }
}

#[test]
fn ill_typed_values_are_named() {
    for (name, params, key) in [
        ("fabricator", r#"rate = "high""#, "rate"),
        ("fabricator", r#"steps = "two""#, "steps"),
        ("fabricator", r#"pick = 1"#, "pick"),
        ("copycat", "reseal = 1", "reseal"),
        ("copycat", r#"fallback = "retry""#, "fallback"),
        ("replayer", "max_age_ms = -1", "max_age_ms"),
        ("replayer", "max_age_ms = 1.5", "max_age_ms"),
        ("ledger_spammer", r#"kinds = ["bogus"]"#, "kinds"),
        ("ledger_spammer", r#"kinds = "deprecation""#, "kinds"),
        (
            "cherry_picker",
            r#"answer_kinds = "market_research""#,
            "answer_kinds",
        ),
        ("ledger_only", r#"target = "everything""#, "target"),
        ("shell_responder", "subcalls = -1", "subcalls"),
        ("invented_step", r#"pick = "cheapest""#, "pick"),
        ("invented_step", "avoid_receipted = 1", "avoid_receipted"),
        ("invented_step", r#"stable = "copy""#, "stable"),
        ("adaptive", r#"attacks = "replayer""#, "attacks"),
        ("adaptive", "params = 1", "params"),
    ] {
        let e = build_err(name, params);
        assert_eq!(e.key(), Some(key), "{name} {{ {params} }}: {e}");
    }
    let e = build_err("fabricator", r#"steps = "two""#);
    assert!(e.to_string().contains(r#"one of "one", "all""#), "{e}");
}

fn defaults(name: &str) -> Vec<f64> {
    knobs(name).iter().map(|k| k.default).collect()
}

fn same_as_default<P: Params + PartialEq + std::fmt::Debug>(name: &str) {
    let parsed: P = parse(&params_at(name, &defaults(name))).unwrap();
    assert_eq!(parsed, P::default(), "{name}");
}

#[test]
fn knob_defaults_are_the_params_defaults() {
    same_as_default::<FabricatorParams>("fabricator");
    same_as_default::<CopycatParams>("copycat");
    same_as_default::<ReplayerParams>("replayer");
    same_as_default::<LedgerSpammerParams>("ledger_spammer");
    same_as_default::<ConfirmationFarmerParams>("confirmation_farmer");
    same_as_default::<StaleRouterParams>("stale_router");
    same_as_default::<SybilParams>("sybil");
    same_as_default::<CherryPickerParams>("cherry_picker");
    same_as_default::<LedgerOnlyParams>("ledger_only");
    same_as_default::<ShellResponderParams>("shell_responder");
    same_as_default::<InventedStepParams>("invented_step");
    same_as_default::<AdaptiveParams>("adaptive");
    for name in NAMES {
        let ks = knobs(name);
        for k in ks {
            assert!(
                k.min <= k.default && k.default <= k.max,
                "{name}.{}",
                k.name
            );
            if let KnobKind::Choice(names) = k.kind {
                assert_eq!(k.max as usize, names.len() - 1);
            }
            if let KnobKind::Subset(names) = k.kind {
                assert_eq!(k.max as u64, (1 << names.len()) - 1);
            }
        }
        let mut names: Vec<_> = ks.iter().map(|k| k.name).collect();
        names.dedup();
        assert_eq!(names.len(), ks.len());
    }
    assert!(knobs("freerider").is_empty() && knobs("honest").is_empty());
}

#[test]
fn knob_values_map_to_params() {
    let t = params_at("ledger_spammer", &[3.0, 0b1010 as f64]);
    assert_eq!(t["per_response"].as_integer(), Some(3));
    let kinds: Vec<&str> = t["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["schema_update", "metrics_update"]);
    let t = params_at("fabricator", &[7.0, 1.0, 0.4]);
    assert_eq!(t["rate"].as_float(), Some(1.0), "clamped");
    assert_eq!(t["steps"].as_str(), Some("all"));
    assert_eq!(t["pick"].as_str(), Some("first"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every point of every strategy's knob box builds.
    #[test]
    fn every_point_in_the_knob_box_builds(unit in proptest::collection::vec(0.0f64..=1.0, 4), pick in 0usize..16) {
        let names: Vec<&str> = NAMES.iter().copied().filter(|n| !knobs(n).is_empty()).collect();
        let name = names[pick % names.len()];
        let point: Vec<f64> = knobs(name)
            .iter()
            .zip(&unit)
            .map(|(k, u)| k.min + u * (k.max - k.min))
            .collect();
        let t = params_at(name, &point);
        let built = build(name, &t, &mut GroupState::default(), 3);
        prop_assert!(built.is_ok(), "{} {:?}: {:?}", name, t, built.err());
    }
}

#[test]
fn same_seed_same_attack() {
    let run = |seed: u64| {
        let mut v = Validator::new(params(1.0));
        let s = build(
            "fabricator",
            &table("rate = 0.5"),
            &mut GroupState::default(),
            seed,
        )
        .unwrap();
        let mut m = miner("miner-f", s);
        (0..8u64)
            .map(|i| {
                let c = v.challenge("market_research", T0 + i * 60_000);
                let (r, done) = answer(&mut m, &c).0.unwrap();
                (v.judge(1, &c, &r, done).1.outcome, r)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(4), run(4));
    assert_ne!(
        run(4).iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        run(5).iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        "another seed, other draws (for these two seeds)"
    );
}
