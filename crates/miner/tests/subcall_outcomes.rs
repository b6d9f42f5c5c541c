//! Property tests of the miner core against arbitrary sub-call outcomes.
//!
//! Whatever the subnets do — answer with any JSON at all, fail in every way the core knows,
//! time out, never answer, answer twice, answer at any latency and in any order, report any
//! cost — a miner driven through [`Miner`] finishes by the challenge's deadline, and the
//! [`Response`] it gives verifies with `orchestra_protocol::proof::verify` (also after a JSON round
//! trip, as it travels on the wire), for every shipped objective template. Changing any
//! committed byte of that response then makes verification fail. In debug builds these runs also
//! exercise every `debug_assert!` of the execution state machine (`execution.rs`, "Invariants").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use orchestra_miner::{
    Execution, ExecutionConfig, LedgerView, Miner, MinerConfig, Planner, Router, SubCall,
    SubCallFailure, SubCallOutcome, SubCallReply,
};
use orchestra_protocol::hash::{Hash32, MAX_SAFE_INTEGER};
use orchestra_protocol::messages::{Challenge, Objective, Receipt, Response};
use orchestra_protocol::proof::verify;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use support::{ledger_entries, respond, subnets, templates};

const BLOCK: u64 = 1_100;
const T0: u64 = 1_700_000_000_000;
const VALIDATOR: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const MINER: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

/// What a subnet does with one call.
#[derive(Debug, Clone)]
enum Kind {
    /// What the fake subnets of `support` answer: echoes the request id, fits the endpoint.
    Honest,
    /// Any JSON at all.
    Body(Value),
    /// Could not be reached.
    Unavailable(String),
    /// Answered with an error.
    Rejected(String),
    /// Reported a timeout itself.
    TimeoutError,
    /// Never answers: the core's own call timeout has to fire.
    Silent,
}

/// One call's fate: the subnets answer call `k` with `plans[k % plans.len()]`.
#[derive(Debug, Clone)]
struct Planned {
    kind: Kind,
    latency_ms: u64,
    cost_rao: u64,
    subnet_hotkey: String,
    receipt: Option<Receipt>,
    /// Deliver the outcome twice (the second must change nothing).
    duplicate: bool,
    /// Order among outcomes due at the same instant.
    tie: u8,
}

#[derive(Debug, Clone)]
struct Case {
    template: usize,
    deadline_ms: u64,
    budget_rao: Option<u64>,
    params: Value,
    plans: Vec<Planned>,
    /// On a tie between an outcome and the core's timeout, deliver the outcome first.
    results_first: bool,
    /// Also report outcomes for call ids the core never issued.
    strays: bool,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(|x| json!(x)),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            // Keys the target schemas use, so arbitrary bodies also reach `standardized_data`.
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,8}",
                    Just("data".to_string()),
                    Just("items".to_string()),
                    Just("title".to_string()),
                    Just("name".to_string()),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => Just(Kind::Honest),
        3 => json_value().prop_map(Kind::Body),
        1 => "\\PC{0,8}".prop_map(Kind::Unavailable),
        1 => "\\PC{0,8}".prop_map(Kind::Rejected),
        1 => Just(Kind::TimeoutError),
        1 => Just(Kind::Silent),
    ]
}

fn planned() -> impl Strategy<Value = Planned> {
    (
        kind(),
        prop_oneof![4 => 0u64..3_000, 1 => 0u64..100_000],
        prop_oneof![8 => 0u64..2_000_000, 1 => any::<u64>()],
        prop_oneof![Just("subnet-hotkey".to_string()), "\\PC{0,10}"],
        prop::option::of(("\\PC{0,8}", "[0-9a-fx]{0,16}")),
        prop::bool::weighted(0.1),
        any::<u8>(),
    )
        .prop_map(
            |(kind, latency_ms, cost_rao, subnet_hotkey, receipt, duplicate, tie)| Planned {
                kind,
                latency_ms,
                cost_rao,
                subnet_hotkey,
                receipt: receipt.map(|(scheme, signature)| Receipt { scheme, signature }),
                duplicate,
                tie,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..3,
        prop_oneof![1 => 0u64..1_000, 4 => 1_000u64..60_000],
        prop::option::of(0u64..3_000_000),
        prop_oneof![
            Just(json!({"topic": "smart rings", "region": "Japan"})),
            json_value()
        ],
        prop::collection::vec(planned(), 1..12),
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(template, deadline_ms, budget_rao, params, plans, results_first, strays)| Case {
                template,
                deadline_ms,
                budget_rao,
                params,
                plans,
                results_first,
                strays,
            },
        )
}

fn challenge(case: &Case) -> Challenge {
    let t = &templates()[case.template];
    Challenge {
        challenge_id: Hash32([7; 32]),
        validator: VALIDATOR.into(),
        issued_block: BLOCK,
        issued_at_ms: T0,
        salt: Hash32([9; 32]),
        objective: Objective {
            kind: t.kind.clone(),
            text: "objective".into(),
            params: case.params.clone(),
        },
        target_schema: t.target_schema.clone(),
        deadline_ms: case.deadline_ms,
        budget_rao: case.budget_rao,
        replay_binding: false,
    }
}

fn outcome(plan: &Planned, call: &SubCall) -> Option<SubCallOutcome> {
    let reply = |response: Value| {
        Ok(SubCallReply {
            response: response.into(),
            subnet_hotkey: plan.subnet_hotkey.clone(),
            cost_rao: plan.cost_rao,
            receipt: plan.receipt.clone(),
        })
    };
    Some(match &plan.kind {
        Kind::Honest => reply(respond(call.netuid, &call.endpoint, &call.request)),
        Kind::Body(v) => reply(v.clone()),
        Kind::Unavailable(why) => Err(SubCallFailure::Unavailable(why.clone())),
        Kind::Rejected(why) => Err(SubCallFailure::Rejected(why.clone())),
        Kind::TimeoutError => Err(SubCallFailure::Timeout),
        Kind::Silent => return None,
    })
}

/// What one driven challenge gave.
struct Run {
    challenge: Challenge,
    response: Response,
    /// When the miner sent the response (virtual time).
    sent_at_ms: u64,
    /// `(request_hash, response_hash)` of every successful outcome delivered to the core.
    delivered: BTreeSet<(Hash32, Hash32)>,
}

/// Drive an honest miner through `case` by hand, in virtual time.
fn run(case: &Case) -> Run {
    let challenge = challenge(case);
    let mut miner = Miner::new(MINER, Planner::new(&templates()), MinerConfig::default());
    let view = LedgerView::new(ledger_entries());
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut session = miner.start(&challenge, &view, BLOCK, T0, &mut rng).unwrap();
    let mut now = T0;
    // (due at, tie order, sequence) → (call id, request hash, outcome)
    let mut pending: BTreeMap<(u64, u8, u64), (u64, Hash32, SubCallOutcome)> = BTreeMap::new();
    let mut delivered = BTreeSet::new();
    let (mut seq, mut calls) = (0u64, 0usize);
    let mut finished = false;
    // Every event either issues nothing new and moves time forward or settles a call, so a
    // finite number of events must finish the execution: a loop that does not is a livelock.
    for _ in 0..10_000 {
        while let Some(call) = miner.poll_subcall(&mut session, now) {
            let plan = &case.plans[calls % case.plans.len()];
            calls += 1;
            let Some(out) = outcome(plan, &call) else {
                continue;
            };
            let at = now.saturating_add(plan.latency_ms);
            let copies = 1 + usize::from(plan.duplicate);
            for _ in 0..copies {
                pending.insert(
                    (at, plan.tie, seq),
                    (call.call_id, call.request_hash, out.clone()),
                );
                seq += 1;
            }
            if case.strays {
                pending.insert(
                    (at, plan.tie, seq),
                    (u64::MAX - call.call_id, call.request_hash, out),
                );
                seq += 1;
            }
        }
        if session.is_finished() {
            finished = true;
            break;
        }
        let next_result = pending.keys().next().map(|k| k.0);
        let timeout = session.poll_timeout();
        let result_first = match (next_result, timeout) {
            (Some(r), Some(t)) => r < t || (r == t && case.results_first),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => panic!("an unfinished execution asks for no timeout"),
        };
        if result_first {
            let ((at, _, _), (id, request_hash, out)) = pending.pop_first().unwrap();
            now = now.max(at);
            if let Ok(reply) = &out {
                delivered.insert((request_hash, reply.response.hash()));
            }
            miner.on_subcall_result(&mut session, id, out, now);
        } else if let Some(t) = timeout {
            now = now.max(t);
            miner.handle_timeout(&mut session, now);
        }
    }
    assert!(finished, "the execution did not finish");
    assert!(
        now <= challenge.due_at_ms(),
        "finished at +{} ms, deadline {} ms",
        now - T0,
        challenge.deadline_ms
    );
    // Outcomes still on their way arrive after the end: they must change nothing.
    let committed = session.execution().map(|e| e.pipeline().len());
    while let Some(((at, _, _), (id, _, out))) = pending.pop_first() {
        miner.on_subcall_result(&mut session, id, out, now.max(at));
    }
    assert_eq!(session.execution().map(|e| e.pipeline().len()), committed);
    let response = miner
        .finish(session, &view, BLOCK, now)
        .unwrap()
        .expect("an honest miner always responds");
    Run {
        challenge,
        response,
        sent_at_ms: now,
        delivered,
    }
}

/// Change a JSON value so that its canonical form differs.
fn perturb(v: &mut Value, selector: usize) {
    match v {
        Value::Null => *v = Value::Bool(false),
        Value::Bool(b) => *b = !*b,
        // Not `n + 1`: above 2^53 that can print the same in canonical JSON.
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::String(s) => s.push('x'),
        Value::Array(items) => {
            if items.is_empty() {
                items.push(Value::Null);
            } else {
                let n = items.len();
                perturb(&mut items[selector % n], selector / n);
            }
        }
        Value::Object(map) => {
            if map.is_empty() {
                map.insert("k".into(), Value::Null);
            } else {
                let n = map.len();
                let key = map.keys().nth(selector % n).unwrap().clone();
                perturb(map.get_mut(&key).unwrap(), selector / n);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Whatever the subnets do, the response verifies, also after a JSON round trip, and commits
    /// only what the subnets actually answered.
    #[test]
    fn any_outcome_sequence_yields_a_proof_that_verifies(case in case()) {
        let Run { challenge, response, sent_at_ms, delivered } = run(&case);
        prop_assert_eq!(verify(&challenge, &response, sent_at_ms), Ok(()));
        let wire: Response =
            serde_json::from_str(&serde_json::to_string(&response).unwrap()).unwrap();
        prop_assert_eq!(verify(&challenge, &wire, sent_at_ms), Ok(()));
        for step in &response.pipeline {
            prop_assert!(
                delivered.contains(&(step.request_hash, step.response_hash)),
                "step {:?} commits a response no subnet gave", step.step_id
            );
        }
        // The followed plan names exactly the steps that ran.
        let ran: BTreeSet<&str> = response.pipeline.iter().map(|s| s.step_id.as_str()).collect();
        let planned: BTreeSet<&str> = response.plan.steps.iter().map(|s| s.id.as_str()).collect();
        prop_assert_eq!(ran, planned);
        let schema = jsonschema::draft202012::new(&challenge.target_schema).unwrap();
        prop_assert!(schema.is_valid(&response.standardized_data), "{}", response.standardized_data);
    }

    /// Changing any committed byte of such a response makes verification fail.
    #[test]
    fn tampering_with_what_the_proof_commits_fails(
        case in case(),
        what in 0usize..13,
        selector in any::<usize>(),
    ) {
        let Run { challenge, mut response, sent_at_ms, .. } = run(&case);
        let n = response.pipeline.len();
        if n == 0 || what >= 11 {
            // The data and the proof summary are committed whatever ran.
            match what % 3 {
                0 => perturb(&mut response.standardized_data, selector),
                1 => response.proof.head.0[selector % 32] ^= 1,
                _ => response.proof.root.0[selector % 32] ^= 1,
            }
        } else {
            let step = &mut response.pipeline[selector % n];
            match what {
                0 => step.step_id.push('x'),
                1 => step.netuid ^= 1,
                2 => step.endpoint.push('x'),
                3 => step.subnet_hotkey.push('x'),
                4 => step.started_at_ms ^= 1,
                5 => step.latency_ms ^= 1,
                6 => step.cost_rao ^= 1,
                7 => perturb(step.request.as_mut().unwrap().make_mut(), selector),
                8 => perturb(step.response.as_mut().unwrap().make_mut(), selector),
                9 => step.response_hash.0[selector % 32] ^= 1,
                _ => match &mut step.receipt {
                    Some(r) => r.signature.push('0'),
                    None => step.request_hash.0[selector % 32] ^= 1,
                },
            }
        }
        prop_assert!(verify(&challenge, &response, sent_at_ms).is_err());
    }
}

fn by_hand(kind: &str) -> (Challenge, Execution) {
    let case = Case {
        template: templates().iter().position(|t| t.kind == kind).unwrap(),
        deadline_ms: 30_000,
        budget_rao: None,
        params: json!({"topic": "smart rings", "region": "Japan"}),
        plans: vec![],
        results_first: true,
        strays: false,
    };
    let c = challenge(&case);
    let view = LedgerView::new(ledger_entries());
    let routed = Planner::new(&templates())
        .plan(&c.objective, &view, &Router::default(), BLOCK)
        .unwrap();
    let exec = Execution::new(&c, MINER, routed, ExecutionConfig::default()).unwrap();
    (c, exec)
}

fn response(c: &Challenge, exec: Execution, now_ms: u64) -> Response {
    let out = exec.finish(now_ms).unwrap();
    Response {
        challenge_id: c.challenge_id,
        miner: MINER.into(),
        plan: out.plan,
        pipeline: out.pipeline,
        standardized_data: out.standardized_data,
        proof: out.proof,
        ledger_proposals: vec![],
    }
}

/// A wall clock stepped back (NTP) between a dependency's result and its dependent's issue: the
/// execution keeps its own time monotonic, so the dependent does not start "before" the
/// dependency finished and the proof still verifies. (Before, check 3 failed:
/// `DependencyOrder { index: 2, dependency: "query" }`.)
#[test]
fn a_clock_stepping_back_does_not_break_dependency_order() {
    let (c, mut exec) = by_hand("data_aggregation");
    let a = exec.poll_subcall(T0).unwrap();
    let b = exec.poll_subcall(T0).unwrap();
    exec.on_subcall_result(a.call_id, subnets(&a).0, T0 + 500);
    exec.on_subcall_result(b.call_id, subnets(&b).0, T0 + 600);
    let t = exec.poll_subcall(T0 + 200).unwrap();
    assert_eq!(t.step_id, "translate");
    assert_eq!(t.started_at_ms, T0 + 600, "issued at the latest time seen");
    exec.on_subcall_result(t.call_id, subnets(&t).0, T0 + 700);
    let r = response(&c, exec, T0 + 700);
    assert_eq!(r.pipeline.len(), 3);
    assert_eq!(verify(&c, &r, T0 + 700), Ok(()));
}

/// A subnet reporting a cost above 2^53 − 1 rao cannot be committed exactly (canonical JSON
/// prints it through a double), so it would fail check 2 for the whole response. The core
/// treats such a reply as rejected and retries; the proof verifies. (Before, the response
/// failed with `InexactInteger`.)
#[test]
fn a_cost_the_proof_cannot_commit_is_a_rejected_reply() {
    let (c, mut exec) = by_hand("data_aggregation");
    let a = exec.poll_subcall(T0).unwrap();
    let b = exec.poll_subcall(T0).unwrap();
    let mut huge = subnets(&a).0.unwrap();
    huge.cost_rao = MAX_SAFE_INTEGER + 1;
    exec.on_subcall_result(a.call_id, Ok(huge), T0 + 100);
    assert!(exec.pipeline().is_empty(), "not committed");
    let obs = exec.observations().last().unwrap();
    assert!(!obs.ok && obs.response_hash.is_some());
    exec.on_subcall_result(b.call_id, subnets(&b).0, T0 + 150);
    // The same step again, attempt 2 on the same route.
    let retry = exec.poll_subcall(T0 + 150).unwrap();
    assert_eq!(
        (retry.step_id.as_str(), retry.attempt),
        (a.step_id.as_str(), 2)
    );
    let mut exact = subnets(&retry).0.unwrap();
    exact.cost_rao = MAX_SAFE_INTEGER;
    exec.on_subcall_result(retry.call_id, Ok(exact), T0 + 200);
    let t = exec.poll_subcall(T0 + 200).unwrap();
    exec.on_subcall_result(t.call_id, subnets(&t).0, T0 + 300);
    let r = response(&c, exec, T0 + 300);
    assert_eq!(r.pipeline.len(), 3);
    assert_eq!(verify(&c, &r, T0 + 300), Ok(()));
}
