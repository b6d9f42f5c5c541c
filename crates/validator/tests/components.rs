#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Unit tests of the validator components.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

use orchestra_ledger::{Ledger, LedgerState, Outcome, ProbeResult, VerifyParams};
use orchestra_mechanism::ledger::{ProposalRecord, Verdict};
use orchestra_mechanism::weights::WeightLimits;
use orchestra_mechanism::{CombinationMode, MechanismParams};
use orchestra_miner::local::drive;
use orchestra_miner::{
    LedgerView, Miner, MinerConfig, Planner, SubCall, SubCallFailure, SubCallOutcome, seal_response,
};
use orchestra_protocol::Body;
use orchestra_protocol::hash::{Hash32, hash_canonical};
use orchestra_protocol::keys::Hotkey;
use orchestra_protocol::ledger::{Metrics, Proposal, ProposalChange};
use orchestra_protocol::messages::{Challenge, Receipt, Response, receipt_message};
use orchestra_validator::{
    AuditReport, Auditor, AuditorConfig, ChallengeConfig, ChallengeGenerator, ChallengeOutcome,
    ProposalVerifier, Scorer, ScorerConfig, StepVerdict, WeightSetter, weights_to_set,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const BLOCK: u64 = 1_100;
const T0: u64 = 1_700_000_000_000;

fn generator() -> ChallengeGenerator {
    ChallengeGenerator::new(
        "validator",
        support::templates(),
        ChallengeConfig {
            sample_size: 4,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn challenge_generator_is_seeded_and_samples_without_replacement() {
    let g = generator();
    let miners: Vec<u16> = (0..10).collect();
    let a = g.round(&miners, BLOCK, T0, &mut ChaCha8Rng::seed_from_u64(42));
    let b = g.round(&miners, BLOCK, T0, &mut ChaCha8Rng::seed_from_u64(42));
    assert_eq!(a, b, "same seed, same round");
    let c = g.round(&miners, BLOCK, T0, &mut ChaCha8Rng::seed_from_u64(43));
    assert_ne!(a, c);
    assert_eq!(a.len(), 4);
    let uids: BTreeSet<u16> = a.iter().map(|(u, _)| *u).collect();
    assert_eq!(uids.len(), 4);
    let ids: BTreeSet<Hash32> = a.iter().map(|(_, c)| c.challenge_id).collect();
    assert_eq!(ids.len(), 4);
    for (_, ch) in &a {
        assert_eq!(ch.objective, a[0].1.objective);
        assert_eq!(ch.validator, "validator");
        assert_eq!(ch.deadline_ms, 30_000);
        let t = g.template(&ch.objective.kind).unwrap();
        assert_eq!(ch.target_schema, t.target_schema);
        assert!(!ch.objective.text.contains('{'), "{}", ch.objective.text);
    }
    // Over many rounds every template is drawn.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let kinds: BTreeSet<String> = (0..30).map(|_| g.objective(&mut rng).1.kind).collect();
    assert_eq!(kinds.len(), 3);
    assert_eq!(g.sample_miners(&[5, 5, 6], &mut rng).len(), 2);
    assert!(ChallengeGenerator::new("v", vec![], ChallengeConfig::default()).is_err());
}

fn challenge(kind: &str) -> Challenge {
    let g = generator();
    let t = g.template(kind).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (_, mut o) = g.objective(&mut rng);
    o.kind = kind.into();
    g.challenge(t, o, BLOCK, T0, &mut rng)
}

fn respond_with(
    c: &Challenge,
    subnet: impl FnMut(&SubCall) -> (SubCallOutcome, u64),
) -> (Response, u64) {
    let view = LedgerView::new(support::ledger_entries());
    let mut m = Miner::new(
        "miner",
        Planner::new(&support::templates()),
        MinerConfig::default(),
    );
    let mut s = m
        .start(c, &view, BLOCK, T0, &mut ChaCha8Rng::seed_from_u64(1))
        .unwrap();
    let end = drive(&mut m, &mut s, T0, subnet);
    (m.finish(s, &view, BLOCK, end).unwrap().unwrap(), end)
}

fn audit_with(
    auditor: &mut Auditor,
    c: &Challenge,
    r: &Response,
    received: u64,
    audit_rate: f64,
    subnet: impl FnMut(u16, &str, &Value) -> Result<Value, SubCallFailure>,
) -> (AuditReport, usize) {
    let params = MechanismParams {
        audit_rate,
        ..Default::default()
    };
    audit_under(auditor, c, r, received, &params, subnet)
}

/// [`audit_with`] under `params`.
fn audit_under(
    auditor: &mut Auditor,
    c: &Challenge,
    r: &Response,
    received: u64,
    params: &MechanismParams,
    mut subnet: impl FnMut(u16, &str, &Value) -> Result<Value, SubCallFailure>,
) -> (AuditReport, usize) {
    let view = LedgerView::new(support::ledger_entries());
    let mut a = auditor.begin(
        c,
        r,
        received,
        &view,
        params,
        &mut ChaCha8Rng::seed_from_u64(2),
    );
    let mut calls = 0;
    while let Some(call) = a.poll_call(received) {
        calls += 1;
        a.on_call_result(
            call.audit_id,
            subnet(call.netuid, &call.endpoint, &call.request).map(Body::new),
        );
    }
    (a.finish(), calls)
}

fn alice() -> Hotkey {
    Hotkey::from_uri("//Alice").unwrap()
}

/// The fake subnets, but every reply carries Alice's receipt.
fn receipted(call: &SubCall) -> (SubCallOutcome, u64) {
    let (outcome, latency) = support::subnets(call);
    let mut reply = outcome.unwrap();
    let key = alice();
    reply.subnet_hotkey = key.ss58();
    let response_hash = hash_canonical(&reply.response).unwrap();
    let sig = key.sign(&receipt_message(
        &call.request_hash,
        &response_hash,
        call.started_at_ms,
    ));
    reply.receipt = Some(Receipt {
        scheme: "sr25519".into(),
        signature: format!("0x{}", hex::encode(sig)),
    });
    (Ok(reply), latency)
}

#[test]
fn a_valid_receipt_exempts_a_step_from_audit_and_a_forged_one_fails() {
    let c = challenge("market_research");
    let (r, end) = respond_with(&c, receipted);
    let mut auditor = Auditor::new(AuditorConfig::default());
    // Alice is not known as a neuron of these subnets yet: her receipts are ignored and every
    // step is re-executed.
    let (report, calls) = audit_with(&mut auditor, &c, &r, end, 1.0, |n, e, q| {
        Ok(support::respond(n, e, q))
    });
    assert_eq!(calls, r.pipeline.len());
    assert!(report.hash_verified());

    let c = challenge("market_research");
    let (r, end) = respond_with(&c, receipted);
    let mut auditor = Auditor::new(AuditorConfig::default());
    for netuid in 22..30 {
        auditor.set_subnet_hotkeys(netuid, BTreeSet::from([alice().ss58()]));
    }
    let (report, calls) = audit_with(&mut auditor, &c, &r, end, 1.0, |_, _, _| {
        panic!("no audit call expected")
    });
    assert_eq!(calls, 0);
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.verdict == StepVerdict::Receipted)
    );
    assert!(report.hash_verified());

    // Forge one receipt (the proof is re-sealed, so only the signature is wrong).
    let c = challenge("market_research");
    let (r, end) = respond_with(&c, receipted);
    let mut pipeline = r.pipeline.clone();
    let sig = &mut pipeline[0].receipt.as_mut().unwrap().signature;
    let last = if sig.ends_with('0') { '1' } else { '0' };
    sig.pop();
    sig.push(last);
    let forged = seal_response(
        &c,
        &r.miner,
        r.plan.clone(),
        pipeline,
        r.standardized_data.clone(),
        vec![],
    )
    .unwrap();
    let mut auditor = Auditor::new(AuditorConfig::default());
    let (report, _) = audit_with(
        &mut auditor,
        &c,
        &forged,
        end,
        0.0,
        |_, _, _| unreachable!(),
    );
    assert_eq!(report.steps[0].verdict, StepVerdict::ForgedReceipt);
    assert!(report.audit_failed());
}

#[test]
fn non_deterministic_steps_are_checked_on_schema_and_stable_fields() {
    // market_research's social (24) and synthesis (26) endpoints are non-deterministic with
    // stable field /request_id.
    let c = challenge("market_research");
    let (r, end) = respond_with(&c, support::subnets);
    let social = r.pipeline.iter().position(|s| s.netuid == 24).unwrap();

    // A live answer that differs in non-stable content is consistent.
    let mut auditor = Auditor::new(AuditorConfig::default());
    let (report, _) = audit_with(&mut auditor, &c, &r, end, 1.0, |n, e, q| {
        let mut v = support::respond(n, e, q);
        if n == 24 {
            v["items"][0]["title"] = json!("something else today");
        }
        Ok(v)
    });
    let verdict = |rep: &AuditReport| {
        rep.steps
            .iter()
            .find(|s| s.step_index == social)
            .unwrap()
            .verdict
            .clone()
    };
    assert_eq!(verdict(&report), StepVerdict::Consistent);
    assert!(report.hash_verified());

    // A different stable field fails.
    let mut auditor = Auditor::new(AuditorConfig::default());
    let (report, _) = audit_with(&mut auditor, &c, &r, end, 1.0, |n, e, q| {
        let mut v = support::respond(n, e, q);
        if n == 24 {
            v["request_id"] = json!("not the committed one");
        }
        Ok(v)
    });
    assert_eq!(
        verdict(&report),
        StepVerdict::StableFieldMismatch {
            pointer: "/request_id".into()
        }
    );
    assert!(report.audit_failed());

    // The content check (`audit_agreement_min`): a live answer that keeps the stable field but
    // shares little else with the committed one (an invented or borrowed reply, seen from the
    // other side) fails; one differing in a single title agrees enough. Off (the seed's), both
    // are consistent.
    let other_content = |n: u16, e: &str, q: &Value| {
        let mut v = support::respond(n, e, q);
        if n == 24 {
            for (i, item) in v["items"].as_array_mut().unwrap().iter_mut().enumerate() {
                item["title"] = json!(format!("quite another answer {i}"));
                item["url"] = json!(format!("https://elsewhere.example/{i}"));
                item["name"] = json!(format!("Someone {i}"));
            }
        }
        Ok(v)
    };
    let one_title = |n: u16, e: &str, q: &Value| {
        let mut v = support::respond(n, e, q);
        if n == 24 {
            v["items"][0]["title"] = json!("something else today");
        }
        Ok(v)
    };
    for min in [0.0, 0.5] {
        let params = MechanismParams {
            audit_rate: 1.0,
            audit_agreement_min: min,
            ..Default::default()
        };
        type Live<'a> = &'a dyn Fn(u16, &str, &Value) -> Result<Value, SubCallFailure>;
        let judge = |live: Live<'_>| {
            let auditor = &mut Auditor::new(AuditorConfig::default());
            audit_under(auditor, &c, &r, end, &params, live).0
        };
        let report = judge(&other_content);
        match verdict(&report) {
            StepVerdict::Disagrees { agreement } => {
                assert!(min > 0.0 && agreement < 0.3, "{agreement}");
                assert!(report.audit_failed());
            }
            v => assert_eq!((min, v), (0.0, StepVerdict::Consistent)),
        }
        assert_eq!(
            verdict(&judge(&one_title)),
            StepVerdict::Consistent,
            "at {min}"
        );
    }

    // Not fitting the Ledger's output schema fails.
    let mut auditor = Auditor::new(AuditorConfig::default());
    let (report, _) = audit_with(&mut auditor, &c, &r, end, 1.0, |n, e, q| {
        let v = support::respond(n, e, q);
        Ok(if n == 24 {
            json!({"request_id": v["request_id"]})
        } else {
            v
        })
    });
    assert_eq!(verdict(&report), StepVerdict::SchemaMismatch);

    // A subnet outage during the audit is inconclusive: no strike.
    let mut auditor = Auditor::new(AuditorConfig::default());
    let (report, _) = audit_with(&mut auditor, &c, &r, end, 1.0, |n, e, q| {
        if n == 24 {
            Err(SubCallFailure::Unavailable("down".into()))
        } else {
            Ok(support::respond(n, e, q))
        }
    });
    assert!(matches!(verdict(&report), StepVerdict::Inconclusive { .. }));
    assert!(!report.audit_failed());
    let mut scorer = Scorer::new(
        MechanismParams::default(),
        ScorerConfig::default(),
        &support::templates(),
    );
    assert_eq!(
        scorer
            .score_challenge(1, &c, Some(&r), Some(&report))
            .outcome,
        ChallengeOutcome::Scored
    );
}

#[test]
fn audit_calls_time_out_as_inconclusive() {
    let c = challenge("data_aggregation");
    let (r, end) = respond_with(&c, support::subnets);
    let view = LedgerView::new(support::ledger_entries());
    let params = MechanismParams {
        audit_rate: 1.0,
        ..Default::default()
    };
    let mut auditor = Auditor::new(AuditorConfig::default());
    let mut a = auditor.begin(
        &c,
        &r,
        end,
        &view,
        &params,
        &mut ChaCha8Rng::seed_from_u64(2),
    );
    let first = a.poll_call(end).unwrap();
    assert_eq!(a.poll_timeout(), Some(end + 5_000));
    a.handle_timeout(end + 5_000);
    assert!(a.poll_timeout().is_none());
    a.on_call_result(first.audit_id, Ok(json!({}).into()));
    let report = a.finish();
    assert_eq!(report.steps.len(), r.pipeline.len());
    assert!(
        report
            .steps
            .iter()
            .all(|s| matches!(s.verdict, StepVerdict::Inconclusive { .. }))
    );
    assert!(!report.audit_failed());
}

fn replica() -> Ledger {
    let entries: BTreeMap<u16, _> = support::ledger_entries()
        .into_iter()
        .map(|e| (e.netuid, e))
        .collect();
    Ledger::from_parts(
        LedgerState {
            entries,
            fields: BTreeMap::new(),
        },
        vec![],
        0,
        VerifyParams::default(),
    )
}

#[test]
fn proposal_verifier_probes_then_applies_the_ledger_rules() {
    // Subnet 22 renamed `items` to `results`; the miner's detector notices and proposes.
    let changed = |request: &Value| {
        let mut v = support::respond(22, "web_search", request);
        let items = v.as_object_mut().unwrap().remove("items").unwrap();
        v["results"] = items;
        v
    };
    let c = challenge("market_research");
    let (r, _) = respond_with(&c, |call| {
        let (o, l) = support::subnets(call);
        let mut reply = o.unwrap();
        if call.netuid == 22 {
            reply.response = changed(&call.request).into();
        }
        (Ok(reply), l)
    });
    let proposal = r
        .ledger_proposals
        .iter()
        .find(|p| matches!(p.change, ProposalChange::SchemaUpdate { .. }))
        .cloned()
        .unwrap();
    assert_eq!(proposal.netuid, 22);

    // Miner b saw the same change through its own probe: same content, its own evidence (the
    // same evidence would be a copy, docs/mechanism.md §5).
    let mut own = proposal.clone();
    for e in &mut own.evidence {
        e.started_at_ms += 1_000;
    }
    let mut verifier = ProposalVerifier::new("validator", replica());
    let first = verifier.submit(1, "miner-a", proposal.clone(), BLOCK);
    let confirm = verifier.submit(2, "miner-b", own, BLOCK + 1);
    assert!(verifier.poll_verdict(BLOCK).is_none(), "probes outstanding");
    let mut probes = 0;
    while let Some(p) = verifier.poll_probe() {
        probes += 1;
        assert_eq!((p.netuid, p.endpoint.as_str()), (22, "web_search"));
        verifier.on_probe_result(
            p.probe_id,
            ProbeResult {
                ok: true,
                latency_ms: 300,
                response: Some(changed(&p.request)),
            },
        );
    }
    assert_eq!(probes, 2);
    let v1 = verifier.poll_verdict(BLOCK + 2).unwrap();
    assert_eq!(v1.ticket, first);
    assert_eq!(v1.record.unwrap().verdict, Verdict::First);
    assert!(v1.change.is_some());
    let v2 = verifier.poll_verdict(BLOCK + 2).unwrap();
    assert_eq!(v2.ticket, confirm);
    assert_eq!(v2.record.unwrap().verdict, Verdict::Confirmation);
    assert_eq!(v2.record.unwrap().lag_blocks, 1);
    // The replica now holds the new schema.
    let view = verifier.view();
    assert!(
        view.output_schema(22, 0)
            .unwrap()
            .is_valid(&changed(&json!({"request_id": "x"})))
    );

    // A false metrics claim is rejected and slashed; an unjudgeable one (no probe answered in
    // the window) is neither credited nor slashed.
    let false_metrics = Proposal {
        netuid: 28,
        change: ProposalChange::MetricsUpdate {
            metrics: Metrics {
                p50_latency_ms: 2_000,
                p95_latency_ms: 4_000,
                reliability: 0.9,
                cost_per_query_rao: 1,
            },
        },
        evidence: vec![],
        observed_block: BLOCK,
    };
    verifier.submit(3, "miner-c", false_metrics.clone(), BLOCK);
    while let Some(p) = verifier.poll_probe() {
        verifier.on_probe_result(
            p.probe_id,
            ProbeResult {
                ok: true,
                latency_ms: 300,
                response: Some(json!({})),
            },
        );
    }
    let v3 = verifier.poll_verdict(BLOCK + 1).unwrap();
    assert!(
        matches!(v3.outcome, Outcome::Rejected { slashed: true, .. }),
        "{:?}",
        v3.outcome
    );
    assert_eq!(v3.record.unwrap().verdict, Verdict::Rejected);
    verifier.submit(4, "miner-d", false_metrics, BLOCK + 10);
    assert!(verifier.poll_verdict(BLOCK + 11).is_none());
    let v4 = verifier.poll_verdict(BLOCK + 15).unwrap();
    assert!(v4.record.is_none(), "{:?}", v4.outcome);
    assert_eq!(verifier.pending(), 0);
}

#[test]
fn scorer_folds_tempos_and_weight_setter_emits_per_mode() {
    let templates = support::templates();
    let c = challenge("market_research");
    let (r, end) = respond_with(&c, support::subnets);
    let mut auditor = Auditor::new(AuditorConfig::default());
    let (report, _) = audit_with(&mut auditor, &c, &r, end, 0.0, |_, _, _| unreachable!());
    for mode in [
        CombinationMode::Blended,
        CombinationMode::Normalized,
        CombinationMode::Mechanisms,
    ] {
        // Without the Ledger work gate, so a miner that only proposes keeps Ledger credit and
        // both halves reach the weights (the gate is `ledger.rs`'s and the sim's to test).
        let params = MechanismParams {
            combination: mode,
            ledger_work_exponent: 0.0,
            ..Default::default()
        };
        let mut scorer = Scorer::new(params.clone(), ScorerConfig::default(), &templates);
        // uid 1 orchestrates, uid 2 only proposes.
        assert_eq!(
            scorer
                .score_challenge(1, &c, Some(&r), Some(&report))
                .outcome,
            ChallengeOutcome::Scored
        );
        scorer.record_proposal(ProposalRecord {
            miner: 2,
            netuid: 22,
            kind: orchestra_protocol::ledger::ProposalKind::SchemaUpdate,
            verdict: Verdict::First,
            lag_blocks: 0,
        });
        let terms = scorer.end_tempo(&[1, 2]);
        assert_eq!(terms[&1], Default::default());
        assert!(terms[&2].update_accuracy > 0.6 && terms[&2].discovery == 1.0);
        let scores = scorer.scores();
        assert!(scores[&1].0 > 0.0 && scores[&1].1 == 0.0);
        assert!(scores[&2].0 == 0.0 && scores[&2].1 > 0.0);
        // With the default work gate (k = 2) the proposer-only miner keeps none of it.
        let mut gated = Scorer::new(
            MechanismParams {
                combination: mode,
                ..Default::default()
            },
            ScorerConfig::default(),
            &templates,
        );
        gated.score_challenge(1, &c, Some(&r), Some(&report));
        gated.record_proposal(ProposalRecord {
            miner: 2,
            netuid: 22,
            kind: orchestra_protocol::ledger::ProposalKind::SchemaUpdate,
            verdict: Verdict::First,
            lag_blocks: 0,
        });
        gated.end_tempo(&[1, 2]);
        assert_eq!(gated.scores()[&2].1, 0.0);

        // Every second tempo.
        let mut setter = WeightSetter::new(WeightLimits::default(), 2);
        let w = setter.poll_weights(7, BLOCK, &scorer).unwrap().unwrap();
        assert_eq!(w.block, BLOCK);
        assert!(
            setter
                .poll_weights(8, BLOCK + 360, &scorer)
                .unwrap()
                .is_none(),
            "not due in the next tempo"
        );
        assert!(
            setter
                .poll_weights(9, BLOCK + 720, &scorer)
                .unwrap()
                .is_some()
        );
        match mode {
            CombinationMode::Mechanisms => {
                assert_eq!(w.weights.len(), 2);
                assert_eq!(
                    (w.weights[0].mechanism, w.weights[0].uids.clone()),
                    (0, vec![1])
                );
                assert_eq!(
                    (w.weights[1].mechanism, w.weights[1].uids.clone()),
                    (1, vec![2])
                );
                assert_eq!(
                    w.emission_split
                        .unwrap()
                        .iter()
                        .map(|&x| u32::from(x))
                        .sum::<u32>(),
                    65_535
                );
            }
            _ => {
                assert_eq!(w.weights.len(), 1);
                assert_eq!(w.weights[0].uids, [1, 2]);
                assert!(w.emission_split.is_none());
            }
        }
        assert_eq!(
            w,
            weights_to_set(&scorer.scores(), &params, &WeightLimits::default(), BLOCK).unwrap()
        );
    }
}
