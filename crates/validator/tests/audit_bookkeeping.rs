//! Property tests of the auditor's bookkeeping (`audit.rs`, "Invariants"): through arbitrary
//! responses — known and unknown endpoints, omitted bodies, valid, forged and unknown receipts,
//! copies and replays, late arrivals, clocks that step back — and arbitrary re-execution
//! outcomes — any body, failures, duplicates, results for ids never sent, timeouts, finishing
//! early — every drawn re-execution ends in exactly one verdict, the report's steps are sorted
//! and unique, and the replay set keeps one expiry record per remembered hash. The module's
//! `debug_assert!`s run on every step of these runs as well.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../miner/tests/support/mod.rs"]
mod support;

use orchestra_mechanism::MechanismParams;

use orchestra_protocol::hash::Hash32;
use orchestra_protocol::keys::Hotkey;
use orchestra_protocol::messages::{
    Challenge, Objective, Plan, PlanStep, Receipt, Response, SubCallFailure, receipt_message,
};
use orchestra_protocol::proof::ProofBuilder;
use orchestra_validator::{Auditor, AuditorConfig, LedgerView, StepVerdict};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const T0: u64 = 1_700_000_000_000;
const MINERS: [&str; 2] = ["miner-a", "miner-b"];

#[derive(Debug, Clone, Copy)]
enum ReceiptKind {
    None,
    /// A signature that does not verify.
    Garbage,
    /// Alice's valid signature (known or not, as the case says).
    Alice,
}

/// One pipeline step: which Ledger endpoint (or an unknown one), which response from a small
/// pool (so responses repeat across challenges and miners), whether the request body is kept.
#[derive(Debug, Clone)]
struct StepCase {
    entry: usize,
    response: u8,
    keep_request: bool,
    receipt: ReceiptKind,
}

/// One response reaching the auditor.
#[derive(Debug, Clone)]
struct ResponseCase {
    miner: usize,
    challenge: u8,
    /// Received this long after the previous one (negative: the clock stepped back).
    gap_ms: i64,
    /// How long after the challenge was issued it arrived.
    latency_ms: u64,
    steps: Vec<StepCase>,
    audit_rate: f64,
    /// Change the data after sealing, so the proof fails.
    tampered: bool,
    /// What happens to the re-executions.
    events: Vec<Event>,
}

#[derive(Debug, Clone)]
enum Event {
    /// Send the next re-execution.
    Poll,
    /// Answer the `k`-th sent re-execution (again, if it was answered already).
    Answer(usize, Outcome),
    /// Answer an id never sent.
    Stray(u64),
    /// Let this much time pass, then handle timeouts.
    Wait(u64),
}

#[derive(Debug, Clone)]
enum Outcome {
    /// What the fake subnet answers: reproduces the committed response.
    Same,
    /// Any JSON.
    Other(Value),
    /// The re-execution failed.
    Failed,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        "[a-z0-9_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![Just("request_id".to_string()), "[a-z]{1,5}"],
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn event() -> impl Strategy<Value = Event> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Same),
        1 => json_value().prop_map(Outcome::Other),
        1 => Just(Outcome::Failed),
    ];
    prop_oneof![
        4 => Just(Event::Poll),
        4 => (0usize..6, outcome).prop_map(|(k, o)| Event::Answer(k, o)),
        1 => any::<u64>().prop_map(Event::Stray),
        1 => (0u64..8_000_000).prop_map(Event::Wait),
    ]
}

fn step_case() -> impl Strategy<Value = StepCase> {
    (
        0usize..10,
        0u8..6,
        prop::bool::weighted(0.9),
        prop_oneof![
            6 => Just(ReceiptKind::None),
            1 => Just(ReceiptKind::Garbage),
            1 => Just(ReceiptKind::Alice),
        ],
    )
        .prop_map(|(entry, response, keep_request, receipt)| StepCase {
            entry,
            response,
            keep_request,
            receipt,
        })
}

fn response_case() -> impl Strategy<Value = ResponseCase> {
    (
        0usize..2,
        0u8..4,
        prop_oneof![4 => 0i64..2_000_000, 1 => -2_000_000i64..0],
        prop_oneof![4 => 0u64..30_000, 1 => 30_000u64..40_000],
        prop::collection::vec(step_case(), 0..6),
        (
            prop_oneof![Just(0.0), Just(0.5), Just(1.0)],
            prop::bool::weighted(0.1),
        ),
        prop::collection::vec(event(), 0..16),
    )
        .prop_map(
            |(miner, challenge, gap_ms, latency_ms, steps, (audit_rate, tampered), events)| {
                ResponseCase {
                    miner,
                    challenge,
                    gap_ms,
                    latency_ms,
                    steps,
                    audit_rate,
                    tampered,
                    events,
                }
            },
        )
}

/// Alice's key, derived once (key derivation is slow in a debug build).
fn alice() -> &'static Hotkey {
    static KEY: std::sync::OnceLock<Hotkey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| Hotkey::from_uri("//Alice").unwrap())
}

fn challenge(id: u8, issued_at_ms: u64) -> Challenge {
    Challenge {
        challenge_id: Hash32([id; 32]),
        validator: "validator".into(),
        issued_block: 1_000,
        issued_at_ms,
        salt: Hash32([id ^ 0x55; 32]),
        objective: Objective {
            kind: "market_research".into(),
            text: "t".into(),
            params: json!({}),
        },
        target_schema: json!({"type": "object"}),
        deadline_ms: 30_000,
        budget_rao: None,
        replay_binding: false,
    }
}

/// The subnet at `entry` of the fake Ledger, or subnet 99 that the Ledger does not know.
fn route(entry: usize) -> (u16, String) {
    support::ledger_entries()
        .get(entry)
        .map_or((99, "nowhere".into()), |e| {
            (e.netuid, e.endpoints[0].name.clone())
        })
}

/// A sealed response to `c` with the steps of `case`, one after the other from `c`'s issue.
fn response(c: &Challenge, case: &ResponseCase) -> Response {
    let miner = MINERS[case.miner];
    let mut builder = ProofBuilder::new(c, miner);
    let mut plan = Plan::default();
    let mut clock = c.issued_at_ms;
    let latency = case.latency_ms / (case.steps.len() as u64 + 1);
    for (i, s) in case.steps.iter().enumerate() {
        let (netuid, endpoint) = route(s.entry);
        let id = format!("s{i}");
        plan.steps.push(PlanStep {
            id: id.clone(),
            capability: "web_search".into(),
            netuid,
            endpoint: endpoint.clone(),
            depends_on: vec![],
        });
        let request = json!({"request_id": format!("r{}", s.response), "step": i});
        let response = support::respond(netuid, &endpoint, &request);
        let request = orchestra_protocol::Body::new(request);
        let response = orchestra_protocol::Body::new(response);
        let key = alice();
        let receipt = match s.receipt {
            ReceiptKind::None => None,
            ReceiptKind::Garbage => Some(Receipt {
                scheme: "sr25519".into(),
                signature: "0x1234".into(),
            }),
            ReceiptKind::Alice => Some(Receipt {
                scheme: "sr25519".into(),
                signature: format!(
                    "0x{}",
                    hex::encode(key.sign(&receipt_message(
                        &request.hash(),
                        &response.hash(),
                        clock,
                    )))
                ),
            }),
        };
        let step = orchestra_protocol::messages::PipelineStep {
            step_id: id,
            netuid,
            endpoint,
            subnet_hotkey: key.ss58(),
            request_hash: request.hash(),
            response_hash: response.hash(),
            request: s.keep_request.then_some(request),
            response: Some(response),
            started_at_ms: clock,
            latency_ms: latency,
            cost_rao: 1,
            receipt,
        };
        builder.push_step(step).unwrap();
        clock += latency;
    }
    let data = json!({"n": case.steps.len()});
    let (proof, pipeline) = builder.finish(&data).unwrap();
    Response {
        challenge_id: c.challenge_id,
        miner: miner.into(),
        plan,
        pipeline,
        standardized_data: if case.tampered { json!({}) } else { data },
        proof,
        ledger_proposals: vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_drawn_reexecution_ends_in_exactly_one_verdict(
        responses in prop::collection::vec(response_case(), 1..8),
        window_ms in prop_oneof![1u64..3_000_000, Just(86_400_000u64)],
        alice_known in any::<bool>(),
    ) {
        let view = LedgerView::new(support::ledger_entries());
        let mut auditor = Auditor::new(AuditorConfig::default());
        if alice_known {
            for e in support::ledger_entries() {
                auditor.set_subnet_hotkeys(e.netuid, BTreeSet::from([alice().ss58()]));
            }
        }
        let mut now = T0;
        let mut hashes = BTreeSet::new();
        for (k, case) in responses.iter().enumerate() {
            now = now.saturating_add_signed(case.gap_ms);
            let c = challenge(case.challenge, now);
            let r = response(&c, case);
            let received = now + case.latency_ms;
            hashes.extend(r.pipeline.iter().map(|s| s.response_hash));
            let params = MechanismParams {
                audit_rate: case.audit_rate,
                replay_window_ms: window_ms,
                ..Default::default()
            };
            let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
            let mut audit = auditor.begin(&c, &r, received, &view, &params, &mut rng);
            prop_assert!(auditor.replay_set_len() <= hashes.len());

            // Judged at once (receipts, unknown endpoints, missing bodies), then drawn.
            let judged: Vec<usize> = audit.report().steps.iter().map(|s| s.step_index).collect();
            let mut all = audit.clone();
            let mut drawn = Vec::new();
            while let Some(call) = all.poll_call(received) {
                drawn.push(call.step_index);
            }
            let report = audit.report().clone();
            if report.late || report.proof_error.is_some() || !report.replays.is_empty() {
                prop_assert!(drawn.is_empty(), "a response failing checks 1-4 is re-executed");
            }

            let mut sent = Vec::new();
            let mut t = received;
            for e in &case.events {
                match e {
                    Event::Poll => {
                        if let Some(call) = audit.poll_call(t) {
                            prop_assert!(!judged.contains(&call.step_index));
                            sent.push(call);
                        }
                    }
                    Event::Answer(i, outcome) => {
                        if let Some(call) = sent.get(*i % sent.len().max(1)) {
                            let (netuid, endpoint) = (call.netuid, call.endpoint.as_str());
                            let result = match outcome {
                                Outcome::Same => Ok(support::respond(netuid, endpoint, &call.request).into()),
                                Outcome::Other(v) => Ok(v.clone().into()),
                                Outcome::Failed => Err(SubCallFailure::Unavailable("down".into())),
                            };
                            audit.on_call_result(call.audit_id, result);
                        }
                    }
                    Event::Stray(id) => audit.on_call_result(*id, Err(SubCallFailure::Timeout)),
                    Event::Wait(dt) => {
                        t += dt;
                        audit.handle_timeout(t);
                    }
                }
            }
            let report = audit.finish();
            let positions: Vec<usize> = report.steps.iter().map(|s| s.step_index).collect();
            prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "{:?}", positions);
            prop_assert!(positions.iter().all(|&p| p < r.pipeline.len()));
            prop_assert_eq!(positions.len(), judged.len() + drawn.len());
            let mut expected: Vec<usize> = judged.iter().chain(&drawn).copied().collect();
            expected.sort_unstable();
            prop_assert_eq!(&positions, &expected);
            // Drawn and never answered (or only timed out) is inconclusive.
            let verdicts: BTreeMap<usize, &StepVerdict> =
                report.steps.iter().map(|s| (s.step_index, &s.verdict)).collect();
            for p in drawn.iter().filter(|p| !sent.iter().any(|c| c.step_index == **p)) {
                let inconclusive = matches!(verdicts[p], StepVerdict::Inconclusive { .. });
                prop_assert!(inconclusive);
            }
        }
    }
}
