//! Property tests of the hash-locked proof: whatever a pipeline looks like, what the builder makes
//! verifies, and changing any part of any step, body, the data, the salt, the challenge id or
//! either hotkey makes verification fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_protocol::Hash32;
use orchestra_protocol::messages::{Challenge, Objective, Plan, PlanStep, Response};
use orchestra_protocol::proof::{ProofBuilder, ProofError, verify};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};

const VALIDATOR: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const MINER: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
const ISSUED_AT: u64 = 1_764_000_000_000;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z0-9 ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A generated pipeline: each step depends on a subset of earlier ones and runs after them.
#[derive(Debug, Clone)]
struct Case {
    challenge: Challenge,
    response: Response,
    received_at_ms: u64,
}

fn case() -> impl Strategy<Value = Case> {
    let step = (
        json_value(),
        json_value(),
        1u64..5_000,
        0u64..100,
        0u64..10_000_000,
        any::<u16>(),
    );
    (
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        prop::collection::vec((step, any::<u8>()), 1..8),
        json_value(),
    )
        .prop_map(|(id, salt, steps, data)| {
            let challenge = Challenge {
                challenge_id: Hash32(id),
                validator: VALIDATOR.into(),
                issued_block: 7,
                issued_at_ms: ISSUED_AT,
                salt: Hash32(salt),
                objective: Objective {
                    kind: "market_research".into(),
                    text: "t".into(),
                    params: json!({}),
                },
                target_schema: json!({"type": "object"}),
                deadline_ms: 60_000,
                budget_rao: None,
                replay_binding: false,
            };
            let mut builder = ProofBuilder::new(&challenge, MINER);
            let mut plan = Plan::default();
            let mut clock = ISSUED_AT;
            for (i, ((request, response, latency, gap, cost, netuid), deps)) in
                steps.into_iter().enumerate()
            {
                let depends_on = (0..i)
                    .filter(|j| deps & (1 << (j % 8)) != 0)
                    .map(|j| format!("s{j}"))
                    .collect();
                plan.steps.push(PlanStep {
                    id: format!("s{i}"),
                    capability: "web_search".into(),
                    netuid,
                    endpoint: "search".into(),
                    depends_on,
                });
                clock += gap;
                builder
                    .push_call(
                        &format!("s{i}"),
                        netuid,
                        "search",
                        MINER,
                        request,
                        response,
                        clock,
                        latency,
                        cost,
                    )
                    .unwrap();
                clock += latency;
            }
            let (proof, pipeline) = builder.finish(&data).unwrap();
            let response = Response {
                challenge_id: challenge.challenge_id,
                miner: MINER.into(),
                plan,
                pipeline,
                standardized_data: data,
                proof,
                ledger_proposals: vec![],
            };
            Case {
                challenge,
                response,
                received_at_ms: clock + 1,
            }
        })
}

/// Change a JSON value so its canonical form differs.
fn perturb(v: &mut Value, selector: usize) {
    match v {
        Value::Null => *v = Value::Bool(false),
        Value::Bool(b) => *b = !*b,
        Value::Number(n) => *v = json!(n.as_i64().unwrap_or(0).wrapping_add(1)),
        Value::String(s) => {
            if s.is_empty() {
                s.push('x');
            } else {
                let i = selector % s.len();
                let c = (s.as_bytes()[i] ^ 1) as char;
                s.replace_range(i..i + 1, &c.to_string());
            }
        }
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

fn flip(s: &mut String, selector: usize) {
    let i = selector % s.len();
    let c = (s.as_bytes()[i] ^ 1) as char;
    s.replace_range(i..i + 1, &c.to_string());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn built_proofs_verify(c in case()) {
        prop_assert_eq!(verify(&c.challenge, &c.response, c.received_at_ms), Ok(()));
        // And survive a JSON round trip, as they would over the wire.
        let wire: Response = serde_json::from_str(&serde_json::to_string(&c.response).unwrap()).unwrap();
        prop_assert_eq!(verify(&c.challenge, &wire, c.received_at_ms), Ok(()));
    }

    #[test]
    fn any_tampering_fails(c in case(), what in 0usize..14, selector in any::<usize>(), byte in 0usize..32) {
        let Case { mut challenge, mut response, received_at_ms } = c;
        let n = response.pipeline.len();
        let step = &mut response.pipeline[selector % n];
        match what {
            0 => flip(&mut step.step_id, selector),
            1 => step.netuid ^= 1,
            2 => flip(&mut step.endpoint, selector),
            3 => flip(&mut step.subnet_hotkey, selector),
            4 => step.started_at_ms ^= 1,
            5 => step.latency_ms ^= 1,
            6 => step.cost_rao ^= 1,
            7 => perturb(step.request.as_mut().unwrap().make_mut(), selector),
            8 => perturb(step.response.as_mut().unwrap().make_mut(), selector),
            9 => perturb(&mut response.standardized_data, selector),
            10 => challenge.salt.0[byte] ^= 1,
            11 => { challenge.challenge_id.0[byte] ^= 1; response.challenge_id = challenge.challenge_id; }
            12 => flip(&mut challenge.validator, selector),
            _ => flip(&mut response.miner, selector),
        }
        prop_assert!(verify(&challenge, &response, received_at_ms).is_err());
    }

    #[test]
    fn a_copied_response_fails_for_another_miner(c in case()) {
        let mut copy = c.response.clone();
        copy.miner = "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y".into();
        prop_assert_eq!(verify(&c.challenge, &copy, c.received_at_ms), Err(ProofError::Lock0Mismatch));
    }
}

#[test]
fn omitted_bodies_still_verify_and_window_is_enforced() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let c = case().new_tree(&mut runner).unwrap().current();
    let mut response = c.response.clone();
    response.pipeline[0].response = None;
    response.pipeline[0].request = None;
    assert_eq!(verify(&c.challenge, &response, c.received_at_ms), Ok(()));
    let last = response.pipeline.last().unwrap().finished_at_ms();
    assert_eq!(
        verify(&c.challenge, &response, last - 1),
        Err(ProofError::FinishedAfterReceipt {
            index: response.pipeline.len() - 1
        })
    );
}

#[test]
fn dependency_order_is_enforced() {
    let challenge = Challenge {
        challenge_id: Hash32([1; 32]),
        validator: VALIDATOR.into(),
        issued_block: 1,
        issued_at_ms: ISSUED_AT,
        salt: Hash32([2; 32]),
        objective: Objective {
            kind: "k".into(),
            text: "t".into(),
            params: json!({}),
        },
        target_schema: json!({}),
        deadline_ms: 10_000,
        budget_rao: None,
        replay_binding: false,
    };
    let plan = Plan {
        steps: vec![
            PlanStep {
                id: "a".into(),
                capability: "x".into(),
                netuid: 1,
                endpoint: "e".into(),
                depends_on: vec![],
            },
            PlanStep {
                id: "b".into(),
                capability: "y".into(),
                netuid: 2,
                endpoint: "e".into(),
                depends_on: vec!["a".into()],
            },
        ],
    };
    // b starts at +50 while a runs +0..+100: b started before its dependency finished.
    let mut builder = ProofBuilder::new(&challenge, MINER);
    builder
        .push_call("a", 1, "e", MINER, json!(1), json!(2), ISSUED_AT, 100, 0)
        .unwrap();
    builder
        .push_call(
            "b",
            2,
            "e",
            MINER,
            json!(3),
            json!(4),
            ISSUED_AT + 50,
            100,
            0,
        )
        .unwrap();
    let (proof, pipeline) = builder.finish(&json!({})).unwrap();
    let response = Response {
        challenge_id: challenge.challenge_id,
        miner: MINER.into(),
        plan,
        pipeline,
        standardized_data: json!({}),
        proof,
        ledger_proposals: vec![],
    };
    assert_eq!(
        verify(&challenge, &response, ISSUED_AT + 1_000),
        Err(ProofError::DependencyOrder {
            index: 1,
            dependency: "a".into()
        })
    );
}
