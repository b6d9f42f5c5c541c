#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Adversaries of the Subnet Ledger (docs/mechanism.md §5, §6): ledger_spammer, confirmation_farmer,
//! freerider, ledger_only — their proposals go through the validator's ProposalVerifier (probes
//! answered by the support fakes) and the scorer's Ledger terms.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

mod harness;

use harness::{
    BLOCK, T0, Validator, answer, answer_with, live_after_change, miner, params, replica,
    seed_params, strategy, subnets_after_change, verify,
};
use orchestra_adversaries::GroupState;
use orchestra_ledger::{Outcome, RejectReason, VerifyParams};
use orchestra_mechanism::ledger::Verdict;
use orchestra_miner::LedgerView;
use orchestra_protocol::ledger::{Proposal, ProposalChange};
use orchestra_validator::{ChallengeOutcome, ProposalVerifier};
use std::collections::BTreeSet;

#[test]
fn ledger_spammer_proposals_are_rejected_and_slashed() {
    // The seed's accuracy formula (with `confirmation_scope = "all_terms"` a miner with nothing
    // accepted has accuracy 0, not the prior).
    let mut v = Validator::new(seed_params(0.2));
    let mut g = GroupState::default();
    let mut spam = miner(
        "miner-s",
        strategy("ledger_spammer", "per_response = 8", &mut g, 5),
    );
    let entries = support::ledger_entries();
    let mut verifier = ProposalVerifier::new(harness::VALIDATOR, replica(entries.clone()));
    let mut kinds = BTreeSet::new();
    let mut verdicts = Vec::new();
    for i in 0..3u64 {
        let c = v.challenge("market_research", T0 + i * 60_000);
        let (r, done) = answer(&mut spam, &c).0.unwrap();
        // It still orchestrates honestly.
        assert_eq!(v.judge(6, &c, &r, done).1.outcome, ChallengeOutcome::Scored);
        assert_eq!(r.ledger_proposals.len(), 8);
        let subs: Vec<_> = r
            .ledger_proposals
            .iter()
            .map(|p| {
                kinds.insert(p.change.name());
                (6u16, "miner-s", p.clone(), BLOCK + i)
            })
            .collect();
        verdicts.extend(verify(
            &mut verifier,
            &subs,
            &entries,
            BLOCK + i + 1,
            support::respond,
        ));
    }
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert_eq!(verdicts.len(), 24);
    for vp in &verdicts {
        assert!(
            matches!(vp.outcome, Outcome::Rejected { slashed: true, .. }),
            "{}: {:?}",
            vp.proposal.change.name(),
            vp.outcome
        );
        v.scorer.record_proposal(vp.record.unwrap());
    }
    let terms = v.scorer.end_tempo(&[6])[&6];
    eprintln!("ledger_spammer: 24 rejected, terms {terms:?}");
    // The accuracy prior: (0 + 1) / (0 + 24 + 2).
    assert!((terms.update_accuracy - 1.0 / 26.0).abs() < 1e-12);
    assert_eq!(terms.discovery, 0.0);
    assert_eq!(terms.freshness, 0.0);
    assert_eq!(terms.coverage, 0.0);
    // The replica did not move.
    assert_eq!(verifier.ledger().head().tree_size, 0);
}

#[test]
fn ledger_spammer_kinds_restrict_what_it_forges() {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut spam = miner(
        "miner-s",
        strategy(
            "ledger_spammer",
            r#"per_response = 5, kinds = ["deprecation"]"#,
            &mut g,
            5,
        ),
    );
    let c = v.challenge("data_aggregation", T0);
    let (r, _) = answer(&mut spam, &c).0.unwrap();
    assert_eq!(r.ledger_proposals.len(), 5);
    assert!(
        r.ledger_proposals
            .iter()
            .all(|p| matches!(p.change, ProposalChange::Deprecation { .. }))
    );
}

/// Honest miner `a` answers first after subnet 22's schema change; the farmer saw its response.
#[test]
fn confirmation_farmer_gets_only_confirmation_credit() {
    let mut v = Validator::new(params(0.2));
    let round = v.round(&[1, 2], T0);
    let view = LedgerView::new(support::ledger_entries());
    let mut g = GroupState::default();
    let mut honest = miner("miner-a", strategy("honest", "", &mut g, 0));
    let (r_a, done_a) = answer_with(&mut honest, &round[0].1, &view, subnets_after_change)
        .0
        .unwrap();
    assert_eq!(r_a.ledger_proposals.len(), 1, "{:?}", r_a.ledger_proposals);

    let mut farmer = miner(
        "miner-b",
        strategy("confirmation_farmer", "execute = false", &mut g, 0),
    );
    farmer.observe_peer(&round[0].1, &r_a);
    let (r_b, paid) = answer_with(&mut farmer, &round[1].1, &view, subnets_after_change);
    let (r_b, done_b) = r_b.unwrap();
    assert_eq!(paid.calls, 0);
    assert_eq!(r_b.ledger_proposals.len(), 1);
    assert_eq!(
        r_b.ledger_proposals[0].content_id().unwrap(),
        r_a.ledger_proposals[0].content_id().unwrap()
    );

    let entries = support::ledger_entries();
    let judge = |copy: &Proposal, copied_evidence_check: bool| {
        let mut ledger = replica(entries.clone());
        ledger.set_params(VerifyParams {
            reject_copied_evidence: copied_evidence_check,
            ..*ledger.params()
        });
        let mut verifier = ProposalVerifier::new(harness::VALIDATOR, ledger);
        verify(
            &mut verifier,
            &[
                (1, "miner-a", r_a.ledger_proposals[0].clone(), BLOCK),
                (2, "miner-b", copy.clone(), BLOCK + 1),
            ],
            &entries,
            BLOCK + 2,
            live_after_change,
        )
    };
    // The copy carries the first proposer's evidence verbatim: the copied-evidence check (on by
    // default) rejects and slashes it.
    let v2 = judge(&r_b.ledger_proposals[0], true);
    assert_eq!(v2[0].record.unwrap().verdict, Verdict::First);
    assert_eq!(v2[1].record.unwrap().verdict, Verdict::Rejected);
    assert!(
        matches!(
            &v2[1].outcome,
            Outcome::Rejected {
                reason: RejectReason::CopiedEvidence { original },
                slashed: true
            } if original == "miner-a"
        ),
        "{:?}",
        v2[1].outcome
    );
    // A farmer that re-stamps the evidence as its own probes is not caught by it.
    let mut forger = miner(
        "miner-b",
        strategy(
            "confirmation_farmer",
            "execute = false, forge_evidence = true",
            &mut g,
            0,
        ),
    );
    forger.observe_peer(&round[0].1, &r_a);
    let (r_f, _) = answer_with(&mut forger, &round[1].1, &view, subnets_after_change);
    let forged = r_f.unwrap().0.ledger_proposals[0].clone();
    assert_ne!(forged.evidence, r_a.ledger_proposals[0].evidence);
    assert_eq!(
        forged.content_id().unwrap(),
        r_a.ledger_proposals[0].content_id().unwrap()
    );
    let v2_forged = judge(&forged, true);
    assert_eq!(v2_forged[1].record.unwrap().verdict, Verdict::Confirmation);
    // Without the check (the seed's rules) the verbatim copy is a confirmation too; the rest of
    // this test measures what a confirmation earns.
    let verdicts = judge(&r_b.ledger_proposals[0], false);
    let got: Vec<_> = verdicts
        .iter()
        .map(|vp| vp.record.unwrap().verdict)
        .collect();
    assert_eq!(got, [Verdict::First, Verdict::Confirmation]);
    for vp in &verdicts {
        v.scorer.record_proposal(vp.record.unwrap());
    }
    // Orchestration: the honest miner did the work, the farmer sent an empty shell.
    let (_, s_a) = v.judge_with(1, &round[0].1, &r_a, done_a, live_after_change);
    let (_, s_b) = v.judge_with(2, &round[1].1, &r_b, done_b, live_after_change);
    let terms = v.scorer.end_tempo(&[1, 2]);
    let (a, b) = (terms[&1], terms[&2]);
    eprintln!(
        "confirmation_farmer: first {a:?} / farmer {b:?}; orchestration {:.4} vs {:.4}",
        s_a.score, s_b.score
    );
    assert_eq!(a.discovery, 1.0);
    assert!((b.discovery - 0.2).abs() < 1e-12, "{}", b.discovery);
    assert!(b.discovery <= 0.2 * a.discovery + 1e-12);
    // A finding: only `discovery` discounts a confirmation. Accuracy, freshness and coverage
    // credit it like the first, so the farmer's whole Ledger score is most of the discoverer's.
    let (l_a, l_b) = (a.score(&v.params), b.score(&v.params));
    eprintln!(
        "confirmation_farmer: Ledger score {l_b:.4} vs first {l_a:.4} ({:.2})",
        l_b / l_a
    );
    assert!(l_b < l_a);
    // The shell did no routing; see `an_empty_shell_keeps_most_of_the_orchestration_share` for
    // how much it keeps anyway.
    assert_eq!(s_b.terms.routing, 0.0);
    assert!(s_b.score < s_a.score);
}

/// A finding for the mechanism: a response with no sub-calls and the least data the target
/// schema accepts (what `confirmation_farmer` with `execute = false` and `ledger_only` can carry
/// their proposals in, at zero cost) keeps 5/6 of the orchestration share under the seed's
/// mechanism — `hash_verified`, `schema_valid`, `completeness` and `latency` all hold for it. The
/// `fidelity` term takes only its own weight away; the execution gate (on by default since
/// mechanism v2) takes everything.
#[test]
fn an_empty_shell_keeps_most_of_the_orchestration_share_until_the_execution_gate() {
    let shell_score = |p: orchestra_mechanism::MechanismParams| {
        let mut v = Validator::new(p);
        let c = v.challenge("market_research", T0);
        let mut g = GroupState::default();
        let mut shell = miner(
            "miner-e",
            strategy("confirmation_farmer", "execute = false", &mut g, 0),
        );
        let ((r, done), paid) = {
            let (r, p) = answer(&mut shell, &c);
            (r.unwrap(), p)
        };
        assert_eq!(paid.calls, 0);
        let (_, s) = v.judge(1, &c, &r, done);
        (s.score / v.params.orchestration_share, s.terms)
    };
    let (seed_share, terms) = shell_score(seed_params(1.0));
    let mut with_fidelity = seed_params(1.0);
    with_fidelity.orchestration_weights.fidelity = 0.3;
    let (fidelity_share, _) = shell_score(with_fidelity);
    let (v2_share, v2_terms) = shell_score(params(1.0));
    eprintln!(
        "empty shell: {seed_share:.4} of s under the seed, {fidelity_share:.4} with fidelity 0.3, \
         {v2_share:.4} under the defaults; {terms:?}"
    );
    assert!(seed_share > 0.8, "{seed_share}");
    assert!(fidelity_share < seed_share);
    assert_eq!(v2_share, 0.0, "{v2_terms:?}");
    assert_eq!(
        v2_terms,
        orchestra_mechanism::orchestration::OrchestrationTerms::ZERO
    );
}

#[test]
fn confirmation_farmer_executing_does_not_double_its_own_detection() {
    let mut v = Validator::new(params(0.0));
    let round = v.round(&[1, 2], T0);
    let view = LedgerView::new(support::ledger_entries());
    let mut g = GroupState::default();
    let mut honest = miner("miner-a", strategy("honest", "", &mut g, 0));
    let (r_a, _) = answer_with(&mut honest, &round[0].1, &view, subnets_after_change)
        .0
        .unwrap();
    let mut farmer = miner("miner-b", strategy("confirmation_farmer", "", &mut g, 0));
    farmer.observe_peer(&round[0].1, &r_a);
    let (r_b, _) = answer_with(&mut farmer, &round[1].1, &view, subnets_after_change)
        .0
        .unwrap();
    let ids: BTreeSet<_> = r_b
        .ledger_proposals
        .iter()
        .map(|p| p.content_id().unwrap())
        .collect();
    assert_eq!(ids.len(), r_b.ledger_proposals.len());
    assert!(!r_b.pipeline.is_empty());
}

#[test]
fn freerider_makes_no_proposals() {
    let mut v = Validator::new(params(1.0));
    let round = v.round(&[1, 2], T0);
    let view = LedgerView::new(support::ledger_entries());
    let mut g = GroupState::default();
    let mut honest = miner("miner-a", strategy("honest", "", &mut g, 0));
    let (r_a, _) = answer_with(&mut honest, &round[0].1, &view, subnets_after_change)
        .0
        .unwrap();
    assert!(!r_a.ledger_proposals.is_empty());
    let mut free = miner("miner-f", strategy("freerider", "", &mut g, 0));
    let (r_f, done) = answer_with(&mut free, &round[1].1, &view, subnets_after_change)
        .0
        .unwrap();
    assert!(r_f.ledger_proposals.is_empty());
    let (_, score) = v.judge_with(2, &round[1].1, &r_f, done, live_after_change);
    assert_eq!(score.outcome, ChallengeOutcome::Scored);
    let terms = v.scorer.end_tempo(&[2])[&2];
    assert_eq!(terms.as_array(), [0.0; 4]);
    eprintln!(
        "freerider: orchestration {:.4}, ledger terms {terms:?}",
        score.score
    );
}

#[test]
fn ledger_only_earns_first_credit_with_a_lower_orchestration_score_at_a_quarter_of_the_cost() {
    // Subnet 22 is the stalest entry; it changed its schema.
    let mut entries = support::ledger_entries();
    for e in &mut entries {
        if e.netuid == 22 {
            e.last_verified_block = 500;
        }
    }
    let view = LedgerView::new(entries.clone());
    let mut v = Validator::with_view(params(1.0), view.clone());
    let round = v.round(&[1, 2], T0);
    let mut g = GroupState::default();

    let mut lo = miner("miner-l", strategy("ledger_only", "", &mut g, 0));
    let ((r_l, done_l), paid_l) = {
        let (r, p) = answer_with(&mut lo, &round[0].1, &view, subnets_after_change);
        (r.unwrap(), p)
    };
    assert_eq!(paid_l.calls, 1);
    assert_eq!(r_l.pipeline[0].netuid, 22);
    assert_eq!(r_l.ledger_proposals.len(), 1);

    let mut honest = miner("miner-h", strategy("honest", "", &mut g, 0));
    let ((r_h, done_h), paid_h) = {
        let (r, p) = answer_with(&mut honest, &round[1].1, &view, subnets_after_change);
        (r.unwrap(), p)
    };
    let (_, s_l) = v.judge_with(1, &round[0].1, &r_l, done_l, live_after_change);
    let (_, s_h) = v.judge_with(2, &round[1].1, &r_h, done_h, live_after_change);
    eprintln!(
        "ledger_only: orchestration {:.4} ({:?}) vs honest {:.4}; paid {} vs {} rao",
        s_l.score, s_l.terms, s_h.score, paid_l.rao, paid_h.rao
    );
    assert_eq!(s_l.outcome, ChallengeOutcome::Scored);
    // The routing term sees one capability of four; schema and completeness do not notice
    // (see `an_empty_shell_keeps_most_of_the_orchestration_share`).
    assert!(s_l.terms.routing <= 0.4 + 1e-12, "{:?}", s_l.terms);
    assert!(s_l.score < s_h.score, "{} vs {}", s_l.score, s_h.score);
    assert_eq!(4 * paid_l.rao, paid_h.rao);

    let mut verifier = ProposalVerifier::new(harness::VALIDATOR, replica(entries.clone()));
    let verdicts = verify(
        &mut verifier,
        &[(1, "miner-l", r_l.ledger_proposals[0].clone(), BLOCK)],
        &entries,
        BLOCK + 1,
        live_after_change,
    );
    assert_eq!(verdicts[0].record.unwrap().verdict, Verdict::First);
}

#[test]
fn ledger_only_rotates_over_the_ledger_and_objective_mode_probes_the_cheapest_step() {
    let view = LedgerView::new(support::ledger_entries());
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut lo = miner("miner-l", strategy("ledger_only", "steps = 3", &mut g, 0));
    let mut seen = BTreeSet::new();
    for i in 0..3u64 {
        let c = v.challenge("market_research", T0 + i * 60_000);
        let (r, paid) = answer_with(&mut lo, &c, &view, support::subnets);
        assert_eq!(paid.calls, 3);
        seen.extend(r.unwrap().0.pipeline.iter().map(|s| s.netuid));
    }
    assert_eq!(seen.len(), support::ledger_entries().len(), "{seen:?}");

    let mut cheap = miner(
        "miner-c",
        strategy("ledger_only", r#"target = "objective""#, &mut g, 0),
    );
    let c = v.challenge("market_research", T0);
    let (r, paid) = answer_with(&mut cheap, &c, &view, support::subnets);
    assert_eq!(paid.calls, 1);
    // Sentiment (200 000 rao) is market_research's cheapest step.
    assert_eq!(paid.rao, 200_000);
    assert_eq!(r.unwrap().0.pipeline[0].netuid, 25);
    let _ = T0;
}
