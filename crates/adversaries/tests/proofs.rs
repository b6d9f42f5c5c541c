#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Adversaries against the hash-locked proof (docs/mechanism.md §3): fabricator, copycat, replayer,
//! sybil — each driven through the miner core and the validator core, showing the defence.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

mod harness;

use harness::{BLOCK, T0, Validator, answer, miner, params, ready_at, seed_params, strategy};
use orchestra_adversaries::GroupState;
use orchestra_protocol::messages::{NONCE_FIELD, call_nonce};
use orchestra_protocol::proof::verify;
use orchestra_validator::{ChallengeOutcome, StepVerdict};

const KINDS: [&str; 3] = [
    "market_research",
    "competitive_analysis",
    "data_aggregation",
];

#[test]
fn fabricator_one_step_is_caught_by_audit_and_struck() {
    let mut v = Validator::new(params(1.0));
    let mut g = GroupState::default();
    let mut honest = miner("miner-f", strategy("honest", "", &mut g, 0));
    // An orchestration EMA earned honestly first, so the strike has something to halve.
    let mut honest_paid = 0;
    for i in 0..3 {
        let c = v.challenge("market_research", T0 + i * 60_000);
        let ((r, done), paid) = {
            let (r, p) = answer(&mut honest, &c);
            (r.unwrap(), p)
        };
        honest_paid = paid.rao;
        assert_eq!(v.judge(7, &c, &r, done).1.outcome, ChallengeOutcome::Scored);
    }
    let before = v
        .scorer
        .ema()
        .get(7)
        .unwrap()
        .orchestration_score(&v.params);

    let mut fab = miner(
        "miner-f",
        strategy("fabricator", r#"rate = 1.0, steps = "one""#, &mut g, 9),
    );
    let c = v.challenge("market_research", T0 + 10 * 60_000);
    let (r, paid) = answer(&mut fab, &c);
    let (r, done) = r.unwrap();
    // The proof holds: the fabricator committed to what it claims.
    verify(&c, &r, done).unwrap();
    // One call fewer was paid for, yet the claimed cost is the honest one.
    assert_eq!(paid.calls as usize, r.pipeline.len() - 1);
    assert!(paid.rao < honest_paid);
    assert_eq!(r.total_cost_rao(), honest_paid);
    let (report, score) = v.judge(7, &c, &r, done);
    let first = r
        .pipeline
        .iter()
        .position(|s| s.step_id == r.plan.steps[0].id)
        .unwrap();
    let verdict = &report
        .steps
        .iter()
        .find(|s| s.step_index == first)
        .unwrap()
        .verdict;
    assert_eq!(*verdict, StepVerdict::HashMismatch);
    assert_eq!(score.outcome, ChallengeOutcome::Struck);
    assert_eq!(score.score, 0.0);
    let after = v.scorer.ema().get(7).unwrap();
    assert_eq!(after.strikes, 1);
    let o_after = after.orchestration_score(&v.params);
    let expected = before * (1.0 - v.params.ema_alpha) * v.params.strike_penalty;
    assert!((o_after - expected).abs() < 1e-12, "{before} -> {o_after}");
    eprintln!(
        "fabricator(one): paid {} of {honest_paid} rao; EMA {before:.4} -> {o_after:.4}",
        paid.rao
    );
}

#[test]
fn fabricator_all_steps_pays_nothing_and_is_struck_on_every_kind() {
    let mut v = Validator::new(params(1.0));
    let mut g = GroupState::default();
    let mut fab = miner(
        "miner-f",
        strategy("fabricator", r#"steps = "all""#, &mut g, 9),
    );
    for (i, kind) in KINDS.into_iter().enumerate() {
        let c = v.challenge(kind, T0 + i as u64 * 60_000);
        let (r, paid) = answer(&mut fab, &c);
        let (r, done) = r.unwrap();
        assert_eq!(paid.calls, 0, "{kind}");
        assert!(!r.pipeline.is_empty());
        verify(&c, &r, done).unwrap();
        let (report, score) = v.judge(8, &c, &r, done);
        assert!(report.audit_failed(), "{kind}: {report:?}");
        assert_eq!(score.outcome, ChallengeOutcome::Struck, "{kind}");
    }
    assert_eq!(v.scorer.ema().get(8).unwrap().strikes, 3);
}

#[test]
fn fabricator_rate_decides_per_challenge_and_every_fabrication_is_struck() {
    let mut v = Validator::new(params(1.0));
    let mut g = GroupState::default();
    let mut fab = miner("miner-f", strategy("fabricator", "rate = 0.5", &mut g, 21));
    let (mut fabricated, mut struck) = (0, 0);
    for i in 0..20 {
        let c = v.challenge("data_aggregation", T0 + i * 60_000);
        let (r, paid) = answer(&mut fab, &c);
        let (r, done) = r.unwrap();
        if (paid.calls as usize) < r.pipeline.len() {
            fabricated += 1;
        }
        if v.judge(8, &c, &r, done).1.outcome == ChallengeOutcome::Struck {
            struck += 1;
        }
    }
    eprintln!("fabricator(rate 0.5): {fabricated}/20 fabricated, {struck} struck");
    assert!((5..=15).contains(&fabricated), "{fabricated}");
    assert_eq!(struck, fabricated);
}

/// Under the seed's mechanism an audit of a non-deterministic endpoint only checks the output
/// schema and the `stable` fields, so an invented synthesis that echoes its `request_id` passes
/// it; the content check (`audit_agreement_min`, on by default) compares the committed reply with
/// the re-execution and fails it.
#[test]
fn fabricated_nondeterministic_step_passes_the_seed_audit_but_not_the_content_check() {
    for (label, p) in [("seed", seed_params(1.0)), ("v2", params(1.0))] {
        let mut v = Validator::new(p);
        let mut g = GroupState::default();
        let mut fab = miner(
            "miner-n",
            strategy(
                "fabricator",
                r#"steps = "one", pick = "nondeterministic""#,
                &mut g,
                9,
            ),
        );
        let c = v.challenge("market_research", T0);
        let (r, paid) = answer(&mut fab, &c);
        let (r, done) = r.unwrap();
        assert_eq!(paid.calls as usize, r.pipeline.len() - 1);
        let (report, score) = v.judge(9, &c, &r, done);
        eprintln!(
            "fabricator(nondeterministic, {label}): {:?} score {:.4} terms {:?}",
            score.outcome, score.score, score.terms
        );
        if label == "seed" {
            assert!(!report.audit_failed(), "{report:?}");
            assert_eq!(score.outcome, ChallengeOutcome::Scored);
        } else {
            assert!(
                report
                    .steps
                    .iter()
                    .any(|s| matches!(s.verdict, StepVerdict::Disagrees { .. })),
                "{report:?}"
            );
            assert!(report.audit_failed());
            assert_eq!(score.outcome, ChallengeOutcome::Struck);
        }
    }
}

#[test]
fn copycat_fails_the_lock_as_is_and_the_copy_set_resealed() {
    let mut v = Validator::new(params(0.2));
    let round = v.round(&[1, 2, 3], T0);
    let (c_a, c_b, c_c) = (&round[0].1, &round[1].1, &round[2].1);
    let mut g = GroupState::default();
    let mut honest = miner("miner-a", strategy("honest", "", &mut g, 0));
    let (r_a, _) = answer(&mut honest, c_a);
    let (r_a, done_a) = r_a.unwrap();
    assert_eq!(
        v.judge(1, c_a, &r_a, done_a).1.outcome,
        ChallengeOutcome::Scored
    );

    let mut plain = miner("miner-b", strategy("copycat", "reseal = false", &mut g, 0));
    plain.observe_peer(c_a, &r_a);
    let (r_b, paid) = answer(&mut plain, c_b);
    let (r_b, _) = r_b.unwrap();
    assert_eq!(paid.calls, 0);
    let (report, score) = v.judge(2, c_b, &r_b, done_a + 50);
    assert!(
        report.proof_error.as_deref().unwrap().contains("lock0"),
        "{report:?}"
    );
    assert_eq!(score.outcome, ChallengeOutcome::Unverified);
    assert_eq!(score.score, 0.0);

    let mut resealer = miner("miner-c", strategy("copycat", "reseal = true", &mut g, 0));
    resealer.observe_peer(c_a, &r_a);
    let (r_c, paid) = answer(&mut resealer, c_c);
    let (r_c, end) = r_c.unwrap();
    assert_eq!(paid.calls, 0);
    let at = ready_at(&r_c, end).max(done_a + 50);
    verify(c_c, &r_c, at).unwrap();
    let (report, score) = v.judge(3, c_c, &r_c, at);
    assert_eq!(report.replays.len(), r_a.pipeline.len());
    assert!(
        report
            .replays
            .iter()
            .all(|h| h.copied && h.first_miner == "miner-a")
    );
    assert_eq!(score.outcome, ChallengeOutcome::Unverified);
    assert_eq!(score.score, 0.0);
}

#[test]
fn copycat_reseal_shifts_an_older_pipeline_into_the_new_window() {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let c_old = v.challenge("competitive_analysis", T0);
    let mut honest = miner("miner-a", strategy("honest", "", &mut g, 0));
    let (r_a, _) = answer(&mut honest, &c_old);
    let (r_a, done_a) = r_a.unwrap();
    v.judge(1, &c_old, &r_a, done_a);

    // Ten minutes later, another objective: the copy is of another round entirely.
    let c_new = v.challenge("market_research", T0 + 600_000);
    let mut cat = miner("miner-c", strategy("copycat", "", &mut g, 0));
    cat.observe_peer(&c_old, &r_a);
    let (r_c, _) = answer(&mut cat, &c_new);
    let (r_c, end) = r_c.unwrap();
    assert!(
        r_c.pipeline
            .iter()
            .all(|s| s.started_at_ms >= c_new.issued_at_ms)
    );
    let at = ready_at(&r_c, end);
    // Checks 1–3 hold (the lock, the chain, the window); check 4 does not.
    verify(&c_new, &r_c, at).unwrap();
    let (report, score) = v.judge(3, &c_new, &r_c, at);
    assert!(report.proof_ok());
    assert_eq!(report.replays.len(), r_a.pipeline.len());
    assert_eq!(score.outcome, ChallengeOutcome::Unverified);
}

#[test]
fn copycat_with_nothing_to_copy_falls_back() {
    let mut v = Validator::new(params(1.0));
    let mut g = GroupState::default();
    let c = v.challenge("market_research", T0);
    let mut decliner = miner(
        "miner-d",
        strategy("copycat", r#"fallback = "decline""#, &mut g, 0),
    );
    assert!(answer(&mut decliner, &c).0.is_none());
    let mut fallback = miner(
        "miner-h",
        strategy("copycat", r#"fallback = "honest""#, &mut g, 0),
    );
    let (r, done) = answer(&mut fallback, &c).0.unwrap();
    assert_eq!(v.judge(4, &c, &r, done).1.outcome, ChallengeOutcome::Scored);
}

#[test]
fn replayer_is_caught_by_the_replay_set() {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut rep = miner("miner-r", strategy("replayer", "", &mut g, 1));
    let c1 = v.challenge("data_aggregation", T0);
    let (r1, paid1) = answer(&mut rep, &c1);
    let (r1, done1) = r1.unwrap();
    assert_eq!(
        v.judge(4, &c1, &r1, done1).1.outcome,
        ChallengeOutcome::Scored
    );

    let c2 = v.challenge("data_aggregation", T0 + 3_600_000);
    let (r2, paid2) = answer(&mut rep, &c2);
    let (r2, done2) = r2.unwrap();
    assert_eq!(paid2.calls, 0, "every step served from the cache");
    // It claims the cost it paid the first time.
    assert_eq!(r2.total_cost_rao(), paid1.rao);
    verify(&c2, &r2, done2).unwrap();
    let (report, score) = v.judge(4, &c2, &r2, done2);
    assert_eq!(report.replays.len(), r2.pipeline.len());
    assert!(
        report
            .replays
            .iter()
            .all(|h| !h.copied && h.first_challenge == c1.challenge_id)
    );
    assert_eq!(score.outcome, ChallengeOutcome::Unverified);
    assert_eq!(score.score, 0.0);
    eprintln!("replayer: paid {} then {} rao", paid1.rao, paid2.rao);
}

#[test]
fn replayer_max_age_sends_again_once_the_cache_is_old() {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut rep = miner(
        "miner-r",
        strategy("replayer", "max_age_ms = 600000", &mut g, 1),
    );
    let c1 = v.challenge("data_aggregation", T0);
    let (r1, done1) = answer(&mut rep, &c1).0.unwrap();
    v.judge(4, &c1, &r1, done1);
    let c2 = v.challenge("data_aggregation", T0 + 3_600_000);
    let ((r2, done2), paid) = {
        let (r, p) = answer(&mut rep, &c2);
        (r.unwrap(), p)
    };
    assert_eq!(paid.calls as usize, r2.pipeline.len());
    assert_eq!(
        v.judge(4, &c2, &r2, done2).1.outcome,
        ChallengeOutcome::Scored
    );
}

#[test]
fn replayer_dodging_the_replay_window_is_struck_by_audit() {
    let mut v = Validator::new(params(1.0));
    let window = v.params.replay_window_ms;
    let mut g = GroupState::default();
    let mut rep = miner(
        "miner-r",
        strategy(
            "replayer",
            &format!("min_age_ms = {}", window + 1),
            &mut g,
            1,
        ),
    );
    let c1 = v.challenge("data_aggregation", T0);
    let (r1, done1) = answer(&mut rep, &c1).0.unwrap();
    assert_eq!(
        v.judge(4, &c1, &r1, done1).1.outcome,
        ChallengeOutcome::Scored
    );
    // Too young: sent honestly.
    let c2 = v.challenge("data_aggregation", T0 + 3_600_000);
    let ((r2, done2), paid) = {
        let (r, p) = answer(&mut rep, &c2);
        (r.unwrap(), p)
    };
    assert_eq!(paid.calls as usize, r2.pipeline.len());
    assert_eq!(
        v.judge(4, &c2, &r2, done2).1.outcome,
        ChallengeOutcome::Scored
    );
    // Old enough to be forgotten by the replay set: only the audit is left, and it catches it.
    let c3 = v.challenge("data_aggregation", T0 + window + 4_000_000);
    let ((r3, done3), paid) = {
        let (r, p) = answer(&mut rep, &c3);
        (r.unwrap(), p)
    };
    assert_eq!(paid.calls, 0);
    let (report, score) = v.judge(4, &c3, &r3, done3);
    assert!(report.replays.is_empty(), "{report:?}");
    assert!(report.audit_failed());
    assert_eq!(score.outcome, ChallengeOutcome::Struck);
}

/// Parameters with replay binding on or off.
fn bound(audit_rate: f64, replay_binding: bool) -> orchestra_mechanism::MechanismParams {
    orchestra_mechanism::MechanismParams {
        replay_binding,
        ..params(audit_rate)
    }
}

/// A replayer that answers from its cache while committing this challenge's fresh request
/// (the default) is caught by re-executing deterministic steps, binding or not: the fresh
/// request carries a new `request_id`, so the fakes answer it differently. Under binding the
/// miner core puts this challenge's nonce in the fresh request, so no nonce check fails: the
/// nonce changes nothing for this replayer. `a` issues both challenges; `b`, a validator that
/// never saw the first answer, judges the replay, so its replay set cannot help.
#[test]
fn replayer_with_fresh_requests_is_caught_by_audit_with_or_without_binding() {
    for binding in [false, true] {
        let mut a = Validator::new(bound(1.0, binding));
        let mut b = Validator::new(bound(1.0, binding));
        let mut g = GroupState::default();
        let mut rep = miner("miner-r", strategy("replayer", "", &mut g, 1));
        let c1 = a.challenge("data_aggregation", T0);
        let (r1, done1) = answer(&mut rep, &c1).0.unwrap();
        assert_eq!(
            a.judge(4, &c1, &r1, done1).1.outcome,
            ChallengeOutcome::Scored
        );
        let c2 = a.challenge("data_aggregation", T0 + 3_600_000);
        assert_eq!(c2.replay_binding, binding);
        let ((r2, done2), paid) = {
            let (r, p) = answer(&mut rep, &c2);
            (r.unwrap(), p)
        };
        assert_eq!(paid.calls, 0);
        let (report, score) = b.judge(4, &c2, &r2, done2);
        assert!(report.replays.is_empty(), "{report:?}");
        assert!(
            report
                .steps
                .iter()
                .all(|s| !matches!(s.verdict, StepVerdict::NonceMismatch { .. })),
            "binding {binding}: {report:?}"
        );
        assert!(
            report
                .steps
                .iter()
                .any(|s| s.verdict == StepVerdict::HashMismatch),
            "binding {binding}: {report:?}"
        );
        assert_eq!(score.outcome, ChallengeOutcome::Struck);
    }
}

/// The replayer's best response, binding or not: commit the cached request itself, its nonce
/// rewritten to this challenge's under binding (`request = "rebound"`; the nonce is public to
/// the miner). Re-executing that request reproduces the cached response, because the endpoint
/// ignores the nonce, so a validator that never saw the original cannot tell: this is what
/// binding cannot catch (docs/mechanism.md §3, "Replay binding"). Only the validator whose
/// replay set holds the original response does.
#[test]
fn replayer_rebinding_cached_requests_passes_audits_a_replay_set_misses_even_under_binding() {
    for binding in [false, true] {
        let mut a = Validator::new(bound(1.0, binding));
        let mut b = Validator::new(bound(1.0, binding));
        let mut g = GroupState::default();
        let mut rep = miner(
            "miner-r",
            strategy("replayer", r#"request = "rebound""#, &mut g, 1),
        );
        let c1 = a.challenge("data_aggregation", T0);
        let (r1, done1) = answer(&mut rep, &c1).0.unwrap();
        assert_eq!(
            a.judge(4, &c1, &r1, done1).1.outcome,
            ChallengeOutcome::Scored
        );
        let c2 = a.challenge("data_aggregation", T0 + 3_600_000);
        let ((r2, done2), paid) = {
            let (r, p) = answer(&mut rep, &c2);
            (r.unwrap(), p)
        };
        assert_eq!(paid.calls, 0);
        verify(&c2, &r2, done2).unwrap();
        for (old, new) in r1.pipeline.iter().zip(&r2.pipeline) {
            let (old_req, new_req) = (
                old.request.as_deref().unwrap(),
                new.request.as_deref().unwrap(),
            );
            assert_eq!(
                old_req["request_id"], new_req["request_id"],
                "the cached request"
            );
            assert_eq!(old.response_hash, new.response_hash, "the cached response");
            let nonce = new_req.get(NONCE_FIELD).and_then(|v| v.as_str());
            if binding {
                let expected = call_nonce(&c2.challenge_id, &new.step_id).to_hex();
                assert_eq!(
                    nonce,
                    Some(expected.as_str()),
                    "rewritten to this challenge's"
                );
            } else {
                assert_eq!(nonce, None);
            }
        }
        let (report, score) = b.judge(4, &c2, &r2, done2);
        assert!(report.hash_verified(), "binding {binding}: {report:?}");
        assert_eq!(score.outcome, ChallengeOutcome::Scored);
        // The validator that saw the original catches the repeated response hashes.
        let (report, score) = a.judge(4, &c2, &r2, done2);
        assert_eq!(report.replays.len(), r2.pipeline.len());
        assert_eq!(score.outcome, ChallengeOutcome::Unverified);
    }
}

/// The cached request committed verbatim (`request = "cached"`): without binding it passes
/// every audit a replay set misses, like `rebound`; under binding its nonce names the first
/// challenge and every replayed step fails as fabrication.
#[test]
fn replayer_committing_cached_requests_verbatim_is_struck_under_binding_only() {
    for binding in [false, true] {
        let mut a = Validator::new(bound(0.2, binding));
        let mut b = Validator::new(bound(0.2, binding));
        let mut g = GroupState::default();
        let mut rep = miner(
            "miner-r",
            strategy("replayer", r#"request = "cached""#, &mut g, 1),
        );
        let c1 = a.challenge("data_aggregation", T0);
        let (r1, done1) = answer(&mut rep, &c1).0.unwrap();
        assert_eq!(
            a.judge(4, &c1, &r1, done1).1.outcome,
            ChallengeOutcome::Scored
        );
        let c2 = a.challenge("data_aggregation", T0 + 3_600_000);
        let ((r2, done2), paid) = {
            let (r, p) = answer(&mut rep, &c2);
            (r.unwrap(), p)
        };
        assert_eq!(paid.calls, 0);
        for (old, new) in r1.pipeline.iter().zip(&r2.pipeline) {
            assert_eq!(
                old.request_hash, new.request_hash,
                "the cached request, verbatim"
            );
        }
        let (report, score) = b.judge(4, &c2, &r2, done2);
        if binding {
            assert_eq!(
                report
                    .steps
                    .iter()
                    .filter(|s| s.verdict == StepVerdict::NonceMismatch { present: true })
                    .count(),
                r2.pipeline.len(),
                "{report:?}"
            );
            assert_eq!(score.outcome, ChallengeOutcome::Struck);
        } else {
            assert!(report.hash_verified(), "{report:?}");
            assert_eq!(score.outcome, ChallengeOutcome::Scored);
        }
    }
}

#[test]
fn sybil_identities_after_the_first_hit_the_copy_set() {
    let mut v = Validator::new(params(0.2));
    let uids = [10, 11, 12];
    let round = v.round(&uids, T0);
    let mut g = GroupState::default();
    let mut ids: Vec<_> = (0..3)
        .map(|i| {
            miner(
                &format!("sybil-{i}"),
                strategy("sybil", "", &mut g, 100 + i),
            )
        })
        .collect();
    assert_eq!(g.sybil_pool().unwrap().members(), 3);
    let mut scores = Vec::new();
    for (i, m) in ids.iter_mut().enumerate() {
        let (uid, c) = &round[i];
        let (r, paid) = answer(m, c);
        let (r, done) = r.unwrap();
        verify(c, &r, done).unwrap();
        let (report, score) = v.judge(*uid, c, &r, done);
        if i == 0 {
            assert!(paid.calls > 0);
            assert_eq!(score.outcome, ChallengeOutcome::Scored);
        } else {
            assert_eq!(paid.calls, 0, "identity {i} paid for nothing");
            assert_eq!(report.replays.len(), r.pipeline.len());
            assert!(
                report
                    .replays
                    .iter()
                    .all(|h| h.copied && h.first_miner == "sybil-0")
            );
            assert_eq!(score.outcome, ChallengeOutcome::Unverified);
        }
        scores.push(score.score);
    }
    eprintln!("sybil scores {scores:?}");
    // The group earns what one identity earns: not super-linear (not even linear) in k.
    assert_eq!(scores.iter().sum::<f64>(), scores[0]);
}

#[test]
fn sybil_without_sharing_pays_k_times_and_disguised_sharing_is_struck() {
    // share_rate 0: k honest miners, each paying.
    let mut v = Validator::new(params(1.0));
    let round = v.round(&[10, 11], T0);
    let mut g = GroupState::default();
    for (i, (uid, c)) in round.iter().enumerate() {
        let mut m = miner(
            &format!("s-{i}"),
            strategy("sybil", "share_rate = 0.0", &mut g, i as u64),
        );
        let ((r, done), paid) = {
            let (r, p) = answer(&mut m, c);
            (r.unwrap(), p)
        };
        assert_eq!(paid.calls as usize, r.pipeline.len());
        assert_eq!(
            v.judge(*uid, c, &r, done).1.outcome,
            ChallengeOutcome::Scored
        );
    }
    // Disguised sharing dodges the copy set; the audit does not miss it.
    let mut v = Validator::new(params(1.0));
    let round = v.round(&[20, 21], T0);
    let mut g = GroupState::default();
    let mut outcomes = Vec::new();
    for (i, (uid, c)) in round.iter().enumerate() {
        let mut m = miner(
            &format!("d-{i}"),
            strategy("sybil", "disguise = true", &mut g, i as u64),
        );
        let (r, done) = answer(&mut m, c).0.unwrap();
        let (report, score) = v.judge(*uid, c, &r, done);
        assert!(report.replays.is_empty());
        outcomes.push(score.outcome);
    }
    assert_eq!(
        outcomes,
        [ChallengeOutcome::Scored, ChallengeOutcome::Struck]
    );
    let _ = BLOCK;
}

/// Per-challenge decisions survive interleaved sessions: the tracker finds each sub-call's
/// challenge from its `request_id`, whatever order the driver runs them in.
#[test]
fn fabricator_decisions_follow_their_challenge_when_sessions_interleave() {
    use orchestra_miner::LedgerView;
    use orchestra_miner::local::drive;
    use rand::SeedableRng;

    let mut v = Validator::new(params(0.0));
    let cs: Vec<_> = (0..8u64)
        .map(|i| v.challenge("market_research", T0 + i * 60_000))
        .collect();
    let view = LedgerView::new(support::ledger_entries());
    let calls_per_challenge = |interleave: bool| {
        let mut g = GroupState::default();
        let mut m = miner("miner-f", strategy("fabricator", "rate = 0.5", &mut g, 33));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut out = vec![0u64; cs.len()];
        if interleave {
            let mut sessions: Vec<_> = cs
                .iter()
                .map(|c| m.start(c, &view, BLOCK, c.issued_at_ms, &mut rng).unwrap())
                .collect();
            for (i, s) in sessions.iter_mut().enumerate().rev() {
                drive(&mut m, s, cs[i].issued_at_ms, |call| {
                    out[i] += 1;
                    support::subnets(call)
                });
            }
        } else {
            for (i, c) in cs.iter().enumerate() {
                let mut s = m.start(c, &view, BLOCK, c.issued_at_ms, &mut rng).unwrap();
                drive(&mut m, &mut s, c.issued_at_ms, |call| {
                    out[i] += 1;
                    support::subnets(call)
                });
            }
        }
        out
    };
    let sequential = calls_per_challenge(false);
    assert_eq!(calls_per_challenge(true), sequential);
    assert!(
        sequential.contains(&3) && sequential.contains(&4),
        "{sequential:?}"
    );
}
