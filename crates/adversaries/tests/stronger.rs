#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The stronger adversaries of issue 16, driven through the miner core and the validator core:
//! shell_responder, invented_step and adaptive.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

mod harness;

use harness::{
    BLOCK, T0, Validator, answer, answer_with, miner, params, seed_params, strategy, table,
};
use orchestra_adversaries::forge::shell_data;
use orchestra_adversaries::{Adaptive, AdaptiveParams, GroupState, params::parse};
use orchestra_mechanism::orchestration::fidelity;
use orchestra_miner::local::drive;
use orchestra_miner::{EpochReward, LedgerView, SubCall, SubCallOutcome};
use orchestra_protocol::messages::{NONCE_FIELD, Receipt};
use orchestra_protocol::proof::verify;
use orchestra_validator::ChallengeOutcome;
use rand::SeedableRng;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const KINDS: [&str; 3] = [
    "market_research",
    "competitive_analysis",
    "data_aggregation",
];

/// What an honest miner pays for one challenge of `kind`.
fn honest_paid(kind: &str) -> u64 {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut m = miner("miner-h", strategy("honest", "", &mut g, 0));
    let c = v.challenge(kind, T0);
    answer(&mut m, &c).1.rao
}

#[test]
fn shell_responder_pays_nothing_and_its_empty_shell_verifies() {
    // The seed's mechanism, where the shell pays; `v2` judges it under the defaults.
    let mut v = Validator::new(seed_params(1.0));
    let mut v2 = Validator::new(params(1.0));
    let s = v.params.orchestration_share;
    let mut g = GroupState::default();
    let mut shell = miner("miner-s", strategy("shell_responder", "", &mut g, 0));
    for (i, kind) in KINDS.into_iter().enumerate() {
        let c = v.challenge(kind, T0 + i as u64 * 60_000);
        let ((r, done), paid) = {
            let (r, p) = answer(&mut shell, &c);
            (r.unwrap(), p)
        };
        assert_eq!(paid.calls, 0, "{kind}");
        assert!(r.pipeline.is_empty());
        verify(&c, &r, done).unwrap();
        // Placeholders only: nothing in it can be traced to any response.
        assert_eq!(r.standardized_data, shell_data(&c.target_schema));
        assert_eq!(fidelity(&r.standardized_data, []), 0.0, "{kind}");
        let (report, score) = v.judge(5, &c, &r, done);
        assert!(!report.audit_failed());
        assert_eq!(score.outcome, ChallengeOutcome::Scored, "{kind}");
        assert_eq!(score.terms.hash_verified, 1.0);
        assert_eq!(score.terms.schema_valid, 1.0, "{kind}: schema-valid shell");
        assert_eq!(score.terms.routing, 0.0);
        eprintln!(
            "shell_responder {kind}: {:.4} of s, terms {:?}",
            score.score / s,
            score.terms
        );
        // The finding: a free shell keeps most of the orchestration share under the seed…
        assert!(score.score > 0.5 * s, "{kind}");
        // … and nothing under the execution gate.
        let (_, gated) = v2.judge(5, &c, &r, done);
        assert_eq!(gated.score, 0.0, "{kind}");
    }
}

#[test]
fn shell_responder_with_subcalls_makes_the_cheapest_real_calls_and_still_sends_a_shell() {
    let mut v = Validator::new(params(1.0));
    let mut g = GroupState::default();
    let mut shell = miner(
        "miner-s",
        strategy("shell_responder", "subcalls = 2", &mut g, 0),
    );
    let c = v.challenge("market_research", T0);
    let ((r, done), paid) = {
        let (r, p) = answer(&mut shell, &c);
        (r.unwrap(), p)
    };
    // Two real calls: the cheapest dependency-closed pair of the plan (sentiment and its social
    // source at 0.2 M + 0.3 M; search is 0.3 M too but comes later in price order).
    assert_eq!(paid.calls, 2);
    assert_eq!(r.pipeline.len(), 2);
    let used: BTreeSet<&str> = r.plan.steps.iter().map(|s| s.capability.as_str()).collect();
    assert_eq!(used, BTreeSet::from(["sentiment", "social_scrape"]));
    assert!(paid.rao < honest_paid("market_research"));
    // The data is the shell whatever the calls returned.
    assert_eq!(r.standardized_data, shell_data(&c.target_schema));
    verify(&c, &r, done).unwrap();
    // Every committed step is real: audited at rate 1, nothing fails.
    let (report, score) = v.judge(5, &c, &r, done);
    assert!(!report.audit_failed(), "{report:?}");
    assert_eq!(score.outcome, ChallengeOutcome::Scored);
    assert!(score.terms.routing > 0.0);
    eprintln!("shell_responder(subcalls 2): terms {:?}", score.terms);
}

#[test]
fn shell_responder_rate_answers_the_rest_honestly() {
    let mut v = Validator::new(params(0.0));
    let mut g = GroupState::default();
    let mut m = miner(
        "miner-s",
        strategy("shell_responder", "rate = 0.5", &mut g, 3),
    );
    let mut shells = 0;
    for i in 0..24 {
        let c = v.challenge("data_aggregation", T0 + i * 60_000);
        let ((r, _), paid) = {
            let (r, p) = answer(&mut m, &c);
            (r.unwrap(), p)
        };
        if paid.calls == 0 {
            shells += 1;
            assert_eq!(r.standardized_data, shell_data(&c.target_schema));
        } else {
            assert_eq!(paid.calls as usize, r.pipeline.len());
            assert_ne!(r.standardized_data, shell_data(&c.target_schema));
        }
    }
    assert!((6..=18).contains(&shells), "{shells}");
}

/// `support::subnets`, noting which steps were really called.
fn calling(called: &mut Vec<(String, u16)>) -> impl FnMut(&SubCall) -> (SubCallOutcome, u64) {
    move |call| {
        called.push((call.step_id.clone(), call.netuid));
        support::subnets(call)
    }
}

/// A market research challenge answered by `m` on `view` with `subnets`, judged nowhere: what
/// an invented_step miner learns its endpoints' stable fields (and receipts) from. Returns how
/// many steps it invented.
fn teach(
    m: &mut orchestra_miner::Miner,
    view: &LedgerView,
    subnets: impl FnMut(&SubCall) -> (SubCallOutcome, u64),
) -> usize {
    // Each lesson its own challenge stream: equal challenges would share request ids.
    static LESSON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000);
    let mut v = Validator::new(params(0.0));
    v.rng_challenges = rand_chacha::ChaCha8Rng::seed_from_u64(
        LESSON.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    let c = v.challenge("market_research", T0 - 3_600_000);
    let (r, paid) = answer_with(m, &c, view, subnets);
    r.unwrap().0.pipeline.len() - paid.calls as usize
}

#[test]
fn invented_step_invents_only_a_nondeterministic_unreceipted_step_and_passes_the_audit() {
    let view = LedgerView::new(support::ledger_entries());
    let mut v = Validator::new(params(1.0));
    let mut g = GroupState::default();
    let mut m = miner("miner-i", strategy("invented_step", "", &mut g, 0));
    // The support Ledger lists `/request_id` as stable on every non-deterministic endpoint:
    // nothing is invented before a real reply has shown it.
    assert_eq!(teach(&mut m, &view, support::subnets), 0);
    for (i, kind) in KINDS.into_iter().enumerate() {
        let c = v.challenge(kind, T0 + i as u64 * 60_000);
        let mut called = Vec::new();
        let (r, paid) = answer_with(&mut m, &c, &view, calling(&mut called));
        let (r, done) = r.unwrap();
        assert_eq!(paid.calls as usize, r.pipeline.len() - 1, "{kind}");
        let invented: Vec<_> = r
            .pipeline
            .iter()
            .filter(|s| !called.iter().any(|(id, _)| *id == s.step_id))
            .collect();
        assert_eq!(invented.len(), 1, "{kind}");
        let step = invented[0];
        let endpoint = view
            .entry(step.netuid)
            .unwrap()
            .endpoints
            .iter()
            .find(|e| e.name == step.endpoint)
            .unwrap();
        assert!(!endpoint.deterministic, "{kind}: {}", step.endpoint);
        assert!(step.receipt.is_none());
        // `costliest`: synthesis (0.4 M) before social scraping (0.3 M).
        assert_eq!(step.netuid, 26, "{kind}");
        // It claims the Ledger price of the call it never made.
        assert_eq!(step.cost_rao, support::cost(26));
        verify(&c, &r, done).unwrap();
        let (report, score) = v.judge(6, &c, &r, done);
        assert!(!report.audit_failed(), "{kind}: {report:?}");
        assert_eq!(score.outcome, ChallengeOutcome::Scored, "{kind}");
    }
}

#[test]
fn invented_step_steps_and_pick_choose_among_eligible_steps_only() {
    let view = LedgerView::new(support::ledger_entries());
    // The seed's audits: the invented social replies share no content with the real ones, which
    // the content check would catch (`invented_step_borrows_real_content_and_the_content_check
    // _still_fails_it`).
    let mut v = Validator::new(seed_params(1.0));
    let mut g = GroupState::default();
    // Every eligible step: market research has two (social, synthesis), data aggregation one.
    let mut all = miner(
        "miner-a",
        strategy("invented_step", "steps = 16", &mut g, 0),
    );
    teach(&mut all, &view, support::subnets);
    for (kind, eligible) in [("market_research", 2), ("data_aggregation", 1)] {
        let c = v.challenge(kind, T0);
        let (r, paid) = answer_with(&mut all, &c, &view, support::subnets);
        let (r, done) = r.unwrap();
        assert_eq!(r.pipeline.len() - paid.calls as usize, eligible, "{kind}");
        assert!(!v.judge(6, &c, &r, done).0.audit_failed());
    }
    // `first` in plan order: social scraping before synthesis.
    let mut first = miner(
        "miner-f",
        strategy("invented_step", r#"pick = "first""#, &mut g, 0),
    );
    teach(&mut first, &view, support::subnets);
    let c = v.challenge("market_research", T0 + 60_000);
    let mut called = Vec::new();
    let (r, _) = answer_with(&mut first, &c, &view, calling(&mut called));
    assert!(r.is_some());
    assert!(!called.iter().any(|(_, n)| *n == 24), "{called:?}");
    assert!(called.iter().any(|(_, n)| *n == 26), "{called:?}");
}

#[test]
fn invented_step_borrows_real_content_and_the_content_check_still_fails_it() {
    let view = LedgerView::new(support::ledger_entries());
    let mut g = GroupState::default();
    let mut m = miner(
        "miner-b",
        strategy(
            "invented_step",
            r#"pick = "first", content = "borrow""#,
            &mut g,
            0,
        ),
    );
    // Nothing to borrow yet: the first challenge is executed, and teaches.
    assert_eq!(teach(&mut m, &view, wordy_subnets), 0);
    let c = Validator::new(params(0.0)).challenge("market_research", T0);
    let mut called = Vec::new();
    let (r, _) = answer_with(&mut m, &c, &view, |call: &SubCall| {
        called.push((call.step_id.clone(), call.netuid));
        wordy_subnets(call)
    });
    let (r, done) = r.unwrap();
    let step = r.pipeline.iter().find(|s| s.netuid == 24).unwrap();
    assert!(!called.iter().any(|(id, _)| *id == step.step_id));
    // A real reply's content (to the lesson's request), re-addressed to this call.
    let reply = step.response.as_ref().unwrap();
    let request = step.request.as_ref().unwrap();
    assert_eq!(reply["request_id"], request["request_id"]);
    let real = wordy(24, &step.endpoint, request);
    assert_eq!(reply["items"].as_array().unwrap().len(), 3);
    assert_ne!(reply["items"], real["items"]);
    // The seed's audit takes it; the content check does not.
    for (p, fails) in [(seed_params(1.0), false), (params(1.0), true)] {
        let (report, _) = Validator::new(p).judge_with(6, &c, &r, done, wordy);
        assert_eq!(report.audit_failed(), fails, "{report:?}");
    }
}

/// `support::respond`, but social scraping (24) titles its results with words of the request's
/// own (as a real search does), so replies to different requests share little content.
fn wordy(netuid: u16, endpoint: &str, request: &Value) -> Value {
    let mut v = support::respond(netuid, endpoint, request);
    if netuid == 24 {
        let mut fields = request.as_object().cloned().unwrap_or_default();
        fields.remove(NONCE_FIELD);
        let request = Value::Object(fields).to_string();
        for (i, item) in v["items"].as_array_mut().unwrap().iter_mut().enumerate() {
            let h = blake3::hash(format!("{request}/{i}").as_bytes()).to_hex();
            let words: Vec<&str> = (0..16).map(|w| &h[w * 4..][..4]).collect();
            item["title"] = json!(words.join(" "));
        }
    }
    v
}

/// `support::subnets` answering with [`wordy`].
fn wordy_subnets(call: &SubCall) -> (SubCallOutcome, u64) {
    let (mut outcome, latency) = support::subnets(call);
    if let Ok(reply) = &mut outcome {
        reply.response = wordy(call.netuid, &call.endpoint, &call.request).into();
    }
    (outcome, latency)
}

#[test]
fn invented_step_leaves_endpoints_it_saw_sign_receipts_alone() {
    let view = LedgerView::new(support::ledger_entries());
    let mut v = Validator::new(params(0.0));
    // Synthesis (26) signs receipts (a fake signature: nothing here checks it).
    let receipting = |call: &SubCall| {
        let (mut o, l) = support::subnets(call);
        if call.netuid == 26
            && let Ok(reply) = &mut o
        {
            reply.receipt = Some(Receipt {
                scheme: "sr25519".into(),
                signature: format!("0x{}", "00".repeat(64)),
            });
        }
        (o, l)
    };
    let mut run = |avoid: bool| {
        let mut g = GroupState::default();
        let mut m = miner(
            "miner-r",
            strategy(
                "invented_step",
                &format!(r#"pick = "first", avoid_receipted = {avoid}"#),
                &mut g,
                0,
            ),
        );
        // Market research, all real: synthesis is seen signing.
        assert_eq!(teach(&mut m, &view, receipting), 0);
        // Data aggregation's only non-deterministic step is that synthesis.
        let c2 = v.challenge("data_aggregation", T0 + 60_000);
        let (r2, paid2) = answer_with(&mut m, &c2, &view, receipting);
        r2.unwrap().0.pipeline.len() - paid2.calls as usize
    };
    assert_eq!(run(true), 0, "receipted synthesis is really called");
    assert_eq!(run(false), 1, "without the caution it is invented");
}

fn reward(value_rao: u64) -> EpochReward {
    EpochReward {
        block: BLOCK,
        emission_rao: value_rao,
        value_rao,
    }
}

#[test]
fn adaptive_switches_after_its_roi_falls_counting_its_own_spend_and_not_before() {
    let cost = honest_paid("market_research");
    assert!(cost > 0);
    let attacks = r#"attacks = ["honest", "shell_responder"], window = 1, threshold = 0.8"#;
    let run = |second_reward: u64| {
        let mut v = Validator::new(params(1.0));
        let mut g = GroupState::default();
        let mut m = miner("miner-a", strategy("adaptive", attacks, &mut g, 0));
        // Epoch 1: nothing spent, 2·cost earned: the reference.
        m.on_epoch(&reward(2 * cost));
        let c1 = v.challenge("market_research", T0);
        let (_, paid1) = answer(&mut m, &c1);
        assert_eq!(paid1.rao, cost, "still honest after one epoch");
        // Epoch 2: the spend counts against the reward.
        m.on_epoch(&reward(second_reward));
        let c2 = v.challenge("market_research", T0 + 60_000);
        let (r2, paid2) = answer(&mut m, &c2);
        let (r2, done2) = r2.unwrap();
        verify(&c2, &r2, done2).unwrap();
        paid2.calls
    };
    // ROI 2·cost − cost = cost < 0.8 × 2·cost: the fall; the next answer is a shell.
    assert_eq!(run(2 * cost), 0);
    // ROI 3·cost − cost = 2·cost: held, still honest.
    assert!(run(3 * cost) > 0);
}

#[test]
fn adaptive_keeps_a_challenge_with_the_attack_that_answered_it() {
    let view = LedgerView::new(support::ledger_entries());
    let mut v = Validator::new(params(0.0));
    let p: AdaptiveParams = parse(&table(
        r#"attacks = ["invented_step", "honest"], window = 1, threshold = 1.0"#,
    ))
    .unwrap();
    let adaptive = Adaptive::build(p, &mut GroupState::default(), 0).unwrap();
    let mut m = miner("miner-a", Box::new(adaptive));
    m.on_epoch(&reward(100));
    teach(&mut m, &view, support::subnets);
    let c = v.challenge("market_research", T0);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut s = m.start(&c, &view, BLOCK, c.issued_at_ms, &mut rng).unwrap();
    // The ROI falls while the challenge is in flight: the group moves on to honest...
    m.on_epoch(&reward(0));
    let mut calls = 0;
    let end = drive(&mut m, &mut s, c.issued_at_ms, |call| {
        calls += 1;
        support::subnets(call)
    });
    let r = m.finish(s, &view, BLOCK, end).unwrap().unwrap();
    // ...but the challenge invented_step answered keeps its invention.
    assert_eq!(calls, r.pipeline.len() - 1);
    let c2 = v.challenge("market_research", T0 + 60_000);
    let ((r2, _), paid) = {
        let (r, p) = answer(&mut m, &c2);
        (r.unwrap(), p)
    };
    assert_eq!(paid.calls as usize, r2.pipeline.len(), "honest now");
}

#[test]
fn cheapest_subplan_is_dependency_closed_within_budget_and_in_plan_order() {
    use orchestra_adversaries::forge::cheapest_subplan;
    use orchestra_miner::{Planner, Router};
    let view = LedgerView::new(support::ledger_entries());
    let planner = Planner::new(&support::templates());
    let router = Router::default();
    let mut v = Validator::new(params(0.0));
    for kind in KINDS {
        let c = v.challenge(kind, T0);
        let full = planner.plan(&c.objective, &view, &router, BLOCK).unwrap();
        let n = full.plan.steps.len();
        for max in 0..=n + 1 {
            let Some(sub) = cheapest_subplan(&full, max) else {
                assert_eq!(
                    max, 0,
                    "{kind}: some step always fits a budget of one or more"
                );
                continue;
            };
            assert!(sub.plan.steps.len() <= max, "{kind} {max}");
            assert_eq!(sub.plan.steps.len(), sub.routes.len());
            let ids: Vec<&str> = sub.plan.steps.iter().map(|s| s.id.as_str()).collect();
            let order: Vec<usize> = ids
                .iter()
                .map(|id| full.plan.steps.iter().position(|s| s.id == *id).unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{kind}: plan order");
            for s in &sub.plan.steps {
                for d in &s.depends_on {
                    assert!(
                        ids.contains(&d.as_str()),
                        "{kind} {max}: {} needs {d}",
                        s.id
                    );
                }
            }
            if max >= n {
                assert_eq!(sub, full, "{kind}: a budget of the whole plan keeps it");
            }
        }
    }
}

#[test]
fn invented_step_carries_learnt_stable_fields_through_the_audit_and_ignoring_them_is_struck() {
    use serde_json::{Value, json};
    // Synthesis (26) reports a constant `model`, and the Ledger lists it as stable.
    let mut entries = support::ledger_entries();
    for e in &mut entries {
        if e.netuid == 26 {
            let ep = &mut e.endpoints[0];
            ep.stable_fields.push("/model".into());
            ep.output_schema["properties"]["model"] = json!({"type": "string"});
            ep.output_schema["required"] = json!(["request_id", "data", "model"]);
        }
    }
    let view = LedgerView::new(entries);
    let live = |netuid: u16, endpoint: &str, request: &Value| {
        let mut v = support::respond(netuid, endpoint, request);
        if netuid == 26 {
            v["model"] = json!("m-1");
        }
        v
    };
    let subnets = |call: &SubCall| {
        let (mut o, l) = support::subnets(call);
        if let Ok(reply) = &mut o {
            reply.response = live(call.netuid, &call.endpoint, &call.request).into();
        }
        (o, l)
    };
    let run = |stable: &str| {
        let mut v = Validator::with_view(params(1.0), view.clone());
        let mut g = GroupState::default();
        let mut m = miner(
            "miner-l",
            strategy(
                "invented_step",
                &format!(r#"stable = "{stable}""#),
                &mut g,
                0,
            ),
        );
        // Two real replies agreeing on `model` make it predictable.
        let taught = teach(&mut m, &view, subnets) + teach(&mut m, &view, subnets);
        let c = v.challenge("data_aggregation", T0);
        let (r, paid) = answer_with(&mut m, &c, &view, subnets);
        let (r, done) = r.unwrap();
        assert_eq!(paid.calls as usize, r.pipeline.len() - 1, "{stable}");
        let synthesis = r.pipeline.iter().find(|s| s.netuid == 26).unwrap();
        let model = synthesis.response.as_ref().unwrap()["model"].clone();
        verify(&c, &r, done).unwrap();
        let (_, score) = v.judge_with(6, &c, &r, done, live);
        (taught, model, score.outcome)
    };
    // Learning: synthesis is not invented until two real replies showed `model` constant (the
    // second lesson already invents social scraping, whose only stable field echoes the
    // request); then the copied model passes the audit.
    assert_eq!(run("learn"), (1, json!("m-1"), ChallengeOutcome::Scored));
    // Ignoring: invented from the first challenge on, with a made-up model, and struck.
    let (taught, model, outcome) = run("ignore");
    assert!(taught > 0);
    assert_ne!(model, json!("m-1"));
    assert_eq!(outcome, ChallengeOutcome::Struck);
}
