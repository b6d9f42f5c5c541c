//! The ranges the mechanism promises, for arbitrary inputs (NaN, infinities and negatives
//! included) and arbitrary valid parameters: every term in `[0, 1]`, the orchestration score in
//! `[0, s]` and the Ledger score in `[0, 1 − s]`, EMAs in `[0, 1]` through any sequence of
//! observations and strikes, and combined weights that sum to 1 (or to one side's share, or are
//! empty). These runs also exercise every `debug_assert!` of the modules' "Invariants".
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_mechanism::combine::{CombinedWeights, combine, normalized_parts};
use orchestra_mechanism::ledger::{
    LedgerTerms, LedgerWindow, ProposalKind, ProposalRecord, Verdict, coverage, demand_shares,
    freshness, update_accuracy,
};
use orchestra_mechanism::orchestration::{
    OrchestrationTerms, fidelity, latency, routing, schema_valid_from_counts,
};
use orchestra_mechanism::params::{
    CombinationMode, ConfirmationScope, LatencyMode, MechanismParams,
};
use orchestra_mechanism::weights::WeightLimits;
use orchestra_mechanism::{EmaBook, emission_split_u16};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Any f64 a broken input could carry.
fn raw() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0f64..=1.0,
        1 => -10.0f64..10.0,
        1 => prop_oneof![
            Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY),
            Just(1e300), Just(-1e-300), Just(f64::MIN_POSITIVE)
        ],
    ]
}

/// Parameters that pass `validate`.
fn params() -> impl Strategy<Value = MechanismParams> {
    (
        prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
        prop::array::uniform6(prop_oneof![Just(0.0), 0.0f64..5.0]),
        prop::array::uniform4(prop_oneof![Just(0.0), 0.0f64..5.0]),
        (0.0f64..=1.0, 0.0f64..=1.0, 0.01f64..=1.0, 0.0f64..4.0),
        prop_oneof![
            Just(CombinationMode::Blended),
            Just(CombinationMode::Normalized),
            Just(CombinationMode::Mechanisms)
        ],
        (
            prop_oneof![
                Just(ConfirmationScope::Discovery),
                Just(ConfirmationScope::AllTerms)
            ],
            prop_oneof![Just(0.0), 0.0f64..=16.0],
            0.0f64..=1.0,
        ),
    )
        .prop_map(
            |(share, o, l, (strike, pstrike, alpha, gamma), combination, (scope, k, cf))| {
                let mut p = MechanismParams {
                    orchestration_share: share,
                    strike_penalty: strike,
                    proposal_strike_penalty: pstrike,
                    ema_alpha: alpha,
                    routing_gamma: gamma,
                    combination,
                    confirmation_scope: scope,
                    ledger_work_exponent: k,
                    confirmation_factor: cf,
                    ..Default::default()
                };
                let w = &mut p.orchestration_weights;
                [
                    w.hash_verified,
                    w.schema_valid,
                    w.completeness,
                    w.routing,
                    w.latency,
                    w.fidelity,
                ] = o;
                let w = &mut p.ledger_weights;
                [w.update_accuracy, w.discovery, w.freshness, w.coverage] = l;
                p
            },
        )
        .prop_filter("valid parameters", |p| p.validate().is_ok())
}

#[derive(Debug, Clone)]
enum Op {
    Orchestration(u16, [f64; 6]),
    Ledger(u16, [f64; 4]),
    Strike(u16),
    ProposalStrike(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let uid = 0u16..4;
    prop_oneof![
        3 => (uid.clone(), prop::array::uniform6(raw())).prop_map(|(u, t)| Op::Orchestration(u, t)),
        2 => (uid.clone(), prop::array::uniform4(raw())).prop_map(|(u, t)| Op::Ledger(u, t)),
        1 => uid.clone().prop_map(Op::Strike),
        1 => uid.prop_map(Op::ProposalStrike),
    ]
}

fn proposal() -> impl Strategy<Value = ProposalRecord> {
    (
        0u16..6,
        0u16..8,
        prop_oneof![
            Just(ProposalKind::NewSubnet),
            Just(ProposalKind::SchemaUpdate),
            Just(ProposalKind::Deprecation),
            Just(ProposalKind::MetricsUpdate)
        ],
        prop_oneof![
            Just(Verdict::First),
            Just(Verdict::Confirmation),
            Just(Verdict::Rejected)
        ],
        prop_oneof![0u64..20_000, any::<u64>()],
    )
        .prop_map(
            |(miner, netuid, kind, verdict, lag_blocks)| ProposalRecord {
                miner,
                netuid,
                kind,
                verdict,
                lag_blocks,
            },
        )
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i32..4).prop_map(|n| json!(n)),
        "[ab]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 10, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn in_unit(x: f64) -> bool {
    (0.0..=1.0).contains(&x)
}

/// `score ∈ [0, share]`, up to the rounding of rescaling the weights to `share`.
fn within(score: f64, share: f64) -> bool {
    (0.0..=share * (1.0 + 1e-12) + 1e-15).contains(&score)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scores_lie_in_their_share(
        p in params(),
        o in prop::array::uniform6(raw()),
        l in prop::array::uniform4(raw()),
    ) {
        let s = p.orchestration_share;
        let o = OrchestrationTerms::from_array(o);
        prop_assert!(o.sanitized().as_array().into_iter().all(in_unit));
        prop_assert!(within(o.score(&p), s), "O = {} for s = {}", o.score(&p), s);
        let l = LedgerTerms::from_array(l);
        prop_assert!(l.sanitized().as_array().into_iter().all(in_unit));
        prop_assert!(within(l.score(&p), 1.0 - s), "L = {} for 1 - s = {}", l.score(&p), 1.0 - s);
        // All ones: exactly the share (the rescaled weights sum to it).
        let full = OrchestrationTerms::from_array([1.0; 6]).score(&p);
        prop_assert!(s == 0.0 || (full - s).abs() <= 1e-12, "{} vs {}", full, s);
        let full = LedgerTerms::from_array([1.0; 4]).score(&p);
        prop_assert!(s == 1.0 || (full - (1.0 - s)).abs() <= 1e-12, "{} vs {}", full, 1.0 - s);
    }

    #[test]
    fn every_term_lies_in_the_unit_interval(
        errors in 0usize..50, leaves in 0usize..50,
        used in prop::collection::btree_set(0u8..8, 0..8),
        reference in prop::collection::btree_set(0u8..8, 0..8),
        costs in (any::<u64>(), prop_oneof![Just(0u64), any::<u64>()]),
        gamma in raw(),
        times in (any::<u64>(), any::<u64>()),
        decay in any::<bool>(),
        votes in (0u64..1_000, 0u64..1_000),
        lags in prop::collection::vec(any::<u64>(), 0..8),
        tau in raw(),
        routed in prop::collection::btree_map(0u16..8, prop_oneof![Just(0u64), 0u64..1_000_000], 0..8),
        covered in prop::collection::btree_set(0u16..10, 0..8),
        data in json_value(),
        subs in prop::collection::vec(json_value(), 0..3),
    ) {
        prop_assert!(in_unit(schema_valid_from_counts(errors, leaves)));
        prop_assert!(in_unit(routing(&used, &reference, costs.0, costs.1, gamma)));
        let mode = if decay { LatencyMode::LinearDecay } else { LatencyMode::Step };
        prop_assert!(in_unit(latency(times.0, times.1, mode)));
        prop_assert!(in_unit(update_accuracy(votes.0, votes.1)));
        prop_assert!(in_unit(freshness(&lags, tau * 10_000.0)));
        let demand = demand_shares(&routed);
        let total: f64 = demand.values().sum();
        prop_assert!(demand.values().all(|&d| in_unit(d)));
        prop_assert!(total == 0.0 || (total - 1.0).abs() <= 1e-9, "demand sums to {}", total);
        prop_assert!(in_unit(coverage(&demand, &covered)));
        prop_assert!(in_unit(fidelity(&data, &subs)));
    }

    /// Any sequence of observations and strikes keeps every EMA in [0, 1] and the scores in
    /// their shares; a strike never raises an EMA.
    #[test]
    fn emas_stay_in_range(p in params(), ops in prop::collection::vec(op(), 0..40)) {
        let mut book = EmaBook::new();
        for op in ops {
            let before = match &op {
                Op::Orchestration(u, _) | Op::Ledger(u, _) | Op::Strike(u) | Op::ProposalStrike(u) => {
                    book.get(*u).copied()
                }
            };
            match op {
                Op::Orchestration(u, t) => {
                    book.observe_orchestration(u, &OrchestrationTerms::from_array(t), p.ema_alpha)
                }
                Op::Ledger(u, t) => book.observe_ledger(u, &LedgerTerms::from_array(t), p.ema_alpha),
                Op::Strike(u) => {
                    book.fabrication_strike(u, &p);
                    let after = book.get(u).unwrap().orchestration.as_array();
                    let before = before.unwrap_or_default().orchestration.as_array();
                    prop_assert!(after.iter().zip(before).all(|(a, b)| *a <= b));
                }
                Op::ProposalStrike(u) => book.proposal_strike(u, &p),
            }
        }
        for (_, m) in book.iter() {
            prop_assert!(m.orchestration.as_array().into_iter().all(in_unit));
            prop_assert!(m.ledger.as_array().into_iter().all(in_unit));
        }
        for (o, l) in book.scores(&p).into_values() {
            prop_assert!(within(o, p.orchestration_share) && within(l, 1.0 - p.orchestration_share));
        }
    }

    #[test]
    fn ledger_window_terms_lie_in_the_unit_interval(
        p in params(),
        window in 1u32..5,
        tempos in prop::collection::vec(
            (prop::collection::vec(proposal(), 0..6),
             prop::collection::btree_map(0u16..8, 0u64..100, 0..6)),
            0..8),
    ) {
        let mut w = LedgerWindow::new(window);
        let seed_scope = MechanismParams {
            confirmation_scope: ConfirmationScope::Discovery,
            ..p.clone()
        };
        for (proposals, routed) in tempos {
            w.push_tempo(proposals, routed);
            let seed_terms = w.terms(&seed_scope);
            for (uid, terms) in w.terms(&p) {
                prop_assert!(terms.as_array().into_iter().all(in_unit), "{:?}", terms);
                prop_assert!(within(terms.score(&p), 1.0 - p.orchestration_share));
                // Discounting confirmations in every term never pays more than the seed's scope.
                let seed = seed_terms[&uid];
                for (a, b) in terms.as_array().into_iter().zip(seed.as_array()) {
                    prop_assert!(a <= b + 1e-12, "{:?} above {:?}", terms, seed);
                }
            }
        }
    }

    /// The work gate never raises a Ledger score, leaves orchestration scores alone, keeps the
    /// best orchestrator's Ledger score, and is the identity at k = 0.
    #[test]
    fn the_work_gate_only_lowers_ledger_scores(
        k in prop_oneof![Just(0.0), 0.0f64..=16.0],
        scores in prop::collection::btree_map(0u16..32, (raw(), raw()), 0..12),
    ) {
        let mut gated = scores.clone();
        orchestra_mechanism::ledger::work_gate(&mut gated, k);
        let best = scores.values().map(|s| if s.0.is_finite() && s.0 > 0.0 { s.0 } else { 0.0 }).fold(0.0, f64::max);
        for (uid, &(o, l)) in &scores {
            let (go, gl) = gated[uid];
            prop_assert_eq!(go.to_bits(), o.to_bits());
            let clean = if l.is_finite() && l > 0.0 { l } else { 0.0 };
            if k == 0.0 {
                prop_assert_eq!(gl.to_bits(), l.to_bits());
                continue;
            }
            prop_assert!(gl >= 0.0 && gl <= clean, "{} -> {}", l, gl);
            if best > 0.0 && o == best {
                prop_assert_eq!(gl, clean);
            }
        }
    }

    /// Normalized weights sum to 1 when both sides pay, to one side's share when only it does,
    /// and to 0 when neither does; every mode quantises to max-upscaled vectors or to nothing.
    #[test]
    fn combined_weights_sum_to_one_or_are_empty(
        p in params(),
        scores in prop::collection::btree_map(any::<u16>(), (raw(), raw()), 0..32),
    ) {
        let s = p.orchestration_share;
        let pays = |side: fn(&(f64, f64)) -> f64| {
            let sum: f64 = scores.values().map(side).filter(|x| x.is_finite() && *x > 0.0).sum();
            sum > 0.0 && sum.is_finite()
        };
        let (pays_o, pays_l) = (pays(|x| x.0), pays(|x| x.1));
        let parts = normalized_parts(&scores, s);
        let want = if pays_o { s } else { 0.0 } + if pays_l { 1.0 - s } else { 0.0 };
        let total: f64 = parts.values().map(|(o, l)| o + l).sum();
        prop_assert!((total - want).abs() <= 1e-9, "sum {} want {}", total, want);
        let combined = combine(&scores, &p);
        if let CombinedWeights::Mechanisms { emission_split, .. } = &combined {
            prop_assert!((emission_split[0] + emission_split[1] - 1.0).abs() <= 1e-12);
        }
        let split = emission_split_u16(s);
        prop_assert_eq!(u32::from(split[0]) + u32::from(split[1]), 65_535);
        for mw in combined.quantize(&WeightLimits::default()).unwrap() {
            prop_assert!(!mw.uids.is_empty());
            prop_assert!(mw.uids.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(mw.values.iter().max(), Some(&u16::MAX));
            prop_assert!(mw.values.iter().all(|&v| v > 0));
        }
    }
}
