#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Adversaries of the routing and per-challenge terms (docs/mechanism.md §4): stale_router and
//! cherry_picker.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

mod harness;

use harness::{T0, Validator, answer, answer_with, miner, params, seed_params, strategy};
use orchestra_adversaries::GroupState;
use orchestra_miner::{LedgerView, SubCall, SubCallFailure, SubCallOutcome, SubCallReply};
use orchestra_protocol::ledger::{Entry, Status};
use orchestra_validator::ChallengeOutcome;

/// The Ledger after subnet 22 went dark (deprecated) and subnet 30, a cheaper web search, launched.
fn fresh_entries() -> Vec<Entry> {
    let mut entries = support::ledger_entries();
    for e in &mut entries {
        if e.netuid == 22 {
            e.status = Status::Deprecated;
            e.version += 1;
        }
    }
    entries.push(support::entry(30, "web_search", 200, 100_000, 0.99));
    entries
}

/// The subnets after that: 22 does not answer, 30 does.
fn fresh_subnets(call: &SubCall) -> (SubCallOutcome, u64) {
    match call.netuid {
        22 => (Err(SubCallFailure::Unavailable("gone".into())), 50),
        30 => (
            Ok(SubCallReply {
                response: support::respond(30, &call.endpoint, &call.request).into(),
                subnet_hotkey: "subnet-30-hotkey".into(),
                cost_rao: 100_000,
                receipt: None,
            }),
            200,
        ),
        _ => support::subnets(call),
    }
}

#[test]
fn stale_router_keeps_routing_to_a_deprecated_subnet() {
    let old = LedgerView::new(support::ledger_entries());
    let fresh = LedgerView::new(fresh_entries());
    let mut v = Validator::with_view(params(1.0), fresh.clone());
    let mut g = GroupState::default();
    let mut stale = miner("miner-s", strategy("stale_router", "", &mut g, 0));
    let mut honest = miner("miner-h", strategy("honest", "", &mut g, 0));

    // Its first challenge hands it the old Ledger, which it keeps.
    let c0 = v.challenge("market_research", T0);
    let (r0, _) = answer_with(&mut stale, &c0, &old, support::subnets);
    assert_eq!(r0.unwrap().0.plan.steps[0].netuid, 22);

    let (mut stale_scores, mut honest_scores) = (Vec::new(), Vec::new());
    for i in 1..=3u64 {
        // data_aggregation's reference cost (1.2 M) is below what the stale route costs; the
        // generous market_research reference (1.8 M) would hide the difference from the term.
        let c = v.challenge("data_aggregation", T0 + i * 60_000);
        let mut to_22 = 0;
        let (r, paid_s) = answer_with(&mut stale, &c, &fresh, |call| {
            to_22 += u32::from(call.netuid == 22);
            fresh_subnets(call)
        });
        let (r_s, done_s) = r.unwrap();
        assert_eq!(to_22, 2, "both attempts on the dead route");
        // It fell back to 23 (its old view's second choice), never to 30.
        assert!(
            r_s.pipeline
                .iter()
                .all(|s| s.netuid != 30 && s.netuid != 22)
        );
        assert!(r_s.pipeline.iter().any(|s| s.netuid == 23));
        let (_, s_s) = v.judge(1, &c, &r_s, done_s);

        let c_h = v.challenge("data_aggregation", T0 + i * 60_000 + 1);
        let (r, paid_h) = answer_with(&mut honest, &c_h, &fresh, fresh_subnets);
        let (r_h, done_h) = r.unwrap();
        assert!(r_h.pipeline.iter().any(|s| s.netuid == 30));
        let (_, s_h) = v.judge(2, &c_h, &r_h, done_h);
        eprintln!(
            "stale_router: {:.4} (routing {:.4}, {} rao, {} ms) vs honest {:.4} (routing {:.4}, {} rao, {} ms)",
            s_s.score,
            s_s.terms.routing,
            paid_s.rao,
            done_s - c.issued_at_ms,
            s_h.score,
            s_h.terms.routing,
            paid_h.rao,
            done_h - c_h.issued_at_ms
        );
        assert!(paid_s.rao > paid_h.rao);
        assert!(s_s.terms.routing < s_h.terms.routing);
        assert!(done_s - c.issued_at_ms > done_h - c_h.issued_at_ms);
        stale_scores.push(s_s.score);
        honest_scores.push(s_h.score);
    }
    assert!(stale_scores.iter().zip(&honest_scores).all(|(s, h)| s < h));
}

#[test]
fn stale_router_refresh_every_takes_a_fresh_view() {
    let old = LedgerView::new(support::ledger_entries());
    let fresh = LedgerView::new(fresh_entries());
    let mut v = Validator::with_view(params(0.0), fresh.clone());
    let mut g = GroupState::default();
    let mut stale = miner(
        "miner-s",
        strategy("stale_router", "refresh_every = 2", &mut g, 0),
    );
    let c = v.challenge("market_research", T0);
    answer_with(&mut stale, &c, &old, support::subnets);
    let firsts: Vec<u16> = (1..=3u64)
        .map(|i| {
            let c = v.challenge("market_research", T0 + i * 60_000);
            let (r, _) = answer_with(&mut stale, &c, &fresh, fresh_subnets);
            r.unwrap().0.plan.steps[0].netuid
        })
        .collect();
    // Answer 2 (0-based) refreshes: from then on it routes search to 30.
    assert_eq!(firsts, [23, 30, 30]);
}

#[test]
fn cherry_picker_scores_zero_on_declined_challenges() {
    let mut v = Validator::new(params(1.0));
    let s = v.params.orchestration_share;
    let mut g = GroupState::default();
    let mut picker = miner("miner-c", strategy("cherry_picker", "", &mut g, 0));
    let mut total = 0.0;
    let kinds = [
        "market_research",
        "competitive_analysis",
        "data_aggregation",
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let c = v.challenge(kind, T0 + i as u64 * 60_000);
        let (r, paid) = answer(&mut picker, &c);
        let score = match r {
            Some((r, done)) => {
                let (_, score) = v.judge(3, &c, &r, done);
                assert_eq!(score.outcome, ChallengeOutcome::Scored, "{kind}");
                assert!(score.score > 0.99 * s, "{kind}");
                score
            }
            None => {
                assert_eq!(kind, "competitive_analysis", "the dear one is declined");
                assert_eq!(paid.calls, 0);
                let score = v.judge_missing(3, &c);
                assert_eq!(score.outcome, ChallengeOutcome::Missing);
                score
            }
        };
        total += score.score;
        eprintln!(
            "cherry_picker {kind}: {:?} {:.4}",
            score.outcome, score.score
        );
    }
    assert!((total - 2.0 * s).abs() < 0.02, "{total}");
    // The EMA counted the declined challenge as a zero observation.
    assert_eq!(v.scorer.ema().get(3).unwrap().orchestration_observations, 3);
}

#[test]
fn cherry_picker_answer_kinds_and_rate() {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut only = miner(
        "miner-c",
        strategy(
            "cherry_picker",
            r#"answer_kinds = ["competitive_analysis"], max_cost_rao = 0"#,
            &mut g,
            0,
        ),
    );
    let answered: Vec<bool> = [
        "market_research",
        "competitive_analysis",
        "data_aggregation",
    ]
    .into_iter()
    .map(|k| {
        let c = v.challenge(k, T0);
        answer(&mut only, &c).0.is_some()
    })
    .collect();
    assert_eq!(answered, [false, true, false]);

    let mut half = miner(
        "miner-h",
        strategy(
            "cherry_picker",
            "max_cost_rao = 0, answer_rate = 0.5",
            &mut g,
            7,
        ),
    );
    let n = (0..40)
        .filter(|i| {
            let c = v.challenge("competitive_analysis", T0 + i * 1_000);
            answer(&mut half, &c).0.is_some()
        })
        .count();
    assert!((10..=30).contains(&n), "{n}");
}

#[test]
fn cherry_picker_shelling_the_hard_ones_beats_declining_them_until_the_execution_gate() {
    let mut v = Validator::new(seed_params(1.0));
    let s = v.params.orchestration_share;
    let mut g = GroupState::default();
    let mut shell = miner(
        "miner-s",
        strategy("cherry_picker", r#"hard = "shell""#, &mut g, 0),
    );
    let c = v.challenge("competitive_analysis", T0);
    let ((r, done), paid) = {
        let (r, p) = answer(&mut shell, &c);
        (r.unwrap(), p)
    };
    assert_eq!(paid.calls, 0);
    let (_, score) = v.judge(3, &c, &r, done);
    eprintln!(
        "cherry_picker shell: {:?} {:.4} of s = {s}",
        score.outcome, score.score
    );
    assert_eq!(score.outcome, ChallengeOutcome::Scored);
    assert_eq!(score.terms.routing, 0.0);
    // A finding, see tests/ledger.rs `an_empty_shell_keeps_most_…`: under the seed's mechanism.
    assert!(score.score > 0.8 * s);
    // Under the defaults (execution gate) the shell is worth what declining is: nothing.
    let mut v2 = Validator::new(params(1.0));
    let (_, gated) = v2.judge(3, &c, &r, done);
    assert_eq!(gated.outcome, ChallengeOutcome::Scored);
    assert_eq!(gated.score, 0.0);
}
