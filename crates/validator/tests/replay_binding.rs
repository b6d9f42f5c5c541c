#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Replay binding (docs/mechanism.md §3): with it on, every sub-call request carries the nonce
//! of its challenge and step, and the audit fails a step whose request does not. Driven through
//! the real miner core and auditor with the fake subnets of `support`.

#[path = "../../miner/tests/support/mod.rs"]
mod support;

use orchestra_mechanism::MechanismParams;
use orchestra_miner::local::drive;
use orchestra_miner::{
    LedgerView, Miner, MinerConfig, Planner, SubCall, SubCallOutcome, seal_response,
};
use orchestra_protocol::hash_value;
use orchestra_protocol::keys::Hotkey;
use orchestra_protocol::ledger::Entry;
use orchestra_protocol::messages::{
    Challenge, NONCE_FIELD, PipelineStep, Receipt, Response, call_nonce, receipt_message,
    request_nonce,
};
use orchestra_validator::{
    AuditReport, Auditor, AuditorConfig, ChallengeConfig, ChallengeGenerator, StepVerdict,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const BLOCK: u64 = 1_100;
const T0: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

/// A challenge of `kind` issued at `at_ms`, its ids drawn from `seed`, with binding as the
/// validator core would set it from its parameters.
fn challenge(kind: &str, seed: u64, at_ms: u64, bound: bool) -> Challenge {
    let g = ChallengeGenerator::new(
        "validator",
        support::templates(),
        ChallengeConfig::default(),
    )
    .unwrap();
    let t = g.template(kind).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (_, mut o) = g.objective(&mut rng);
    o.kind = kind.into();
    let mut c = g.challenge(t, o, BLOCK, at_ms, &mut rng);
    c.replay_binding = bound;
    c
}

/// An honest miner's answer on the Ledger `entries`, with `subnet` answering its calls.
fn respond_with(
    c: &Challenge,
    entries: Vec<Entry>,
    subnet: impl FnMut(&SubCall) -> (SubCallOutcome, u64),
) -> (Response, u64) {
    let view = LedgerView::new(entries);
    let mut m = Miner::new(
        "miner",
        Planner::new(&support::templates()),
        MinerConfig::default(),
    );
    let mut s = m
        .start(
            c,
            &view,
            BLOCK,
            c.issued_at_ms,
            &mut ChaCha8Rng::seed_from_u64(1),
        )
        .unwrap();
    let end = drive(&mut m, &mut s, c.issued_at_ms, subnet);
    (m.finish(s, &view, BLOCK, end).unwrap().unwrap(), end)
}

fn respond(c: &Challenge) -> (Response, u64) {
    respond_with(c, support::ledger_entries(), support::subnets)
}

/// Every step re-executed against the fake subnets by a validator that has seen no earlier
/// response (the replay set is per validator, so a replay sent to another one misses it);
/// `receipt_keys` are the subnet hotkeys it knows.
fn audit(
    c: &Challenge,
    r: &Response,
    received: u64,
    entries: Vec<Entry>,
    receipt_keys: &[String],
) -> AuditReport {
    let mut auditor = Auditor::new(AuditorConfig::default());
    for netuid in 22..30 {
        auditor.set_subnet_hotkeys(netuid, receipt_keys.iter().cloned().collect());
    }
    let view = LedgerView::new(entries);
    let params = MechanismParams {
        audit_rate: 1.0,
        replay_binding: c.replay_binding,
        ..Default::default()
    };
    let mut a = auditor.begin(
        c,
        r,
        received,
        &view,
        &params,
        &mut ChaCha8Rng::seed_from_u64(2),
    );
    while let Some(call) = a.poll_call(received) {
        let live = support::respond(call.netuid, &call.endpoint, &call.request);
        a.on_call_result(call.audit_id, Ok(live.into()));
    }
    a.finish()
}

fn failures(report: &AuditReport) -> Vec<&StepVerdict> {
    report
        .steps
        .iter()
        .filter(|s| s.verdict.failed(false))
        .map(|s| &s.verdict)
        .collect()
}

/// `r` with its step `index` replaced by `from` (a call made for another challenge), keeping
/// the step's timing unless `keep_time` is false, re-sealed so the proof itself holds.
fn splice(
    c: &Challenge,
    r: &Response,
    index: usize,
    from: &PipelineStep,
    keep_time: bool,
) -> Response {
    let mut pipeline = r.pipeline.clone();
    let mine = &pipeline[index];
    assert_eq!(mine.step_id, from.step_id, "the same step of the same plan");
    let (started, latency) = if keep_time {
        (mine.started_at_ms, mine.latency_ms)
    } else {
        (from.started_at_ms, from.latency_ms)
    };
    pipeline[index] = PipelineStep {
        started_at_ms: started,
        latency_ms: latency,
        ..from.clone()
    };
    seal_response(
        c,
        &r.miner,
        r.plan.clone(),
        pipeline,
        r.standardized_data.clone(),
        vec![],
    )
    .unwrap()
}

fn alice() -> Hotkey {
    Hotkey::from_uri("//Alice").unwrap()
}

/// The fake subnets, but every reply carries Alice's receipt over the request (nonce and all).
fn receipted(call: &SubCall) -> (SubCallOutcome, u64) {
    let (outcome, latency) = support::subnets(call);
    let mut reply = outcome.unwrap();
    let key = alice();
    reply.subnet_hotkey = key.ss58();
    let sig = key.sign(&receipt_message(
        &call.request_hash,
        &reply.response.hash(),
        call.started_at_ms,
    ));
    reply.receipt = Some(Receipt {
        scheme: "sr25519".into(),
        signature: format!("0x{}", hex::encode(sig)),
    });
    (Ok(reply), latency)
}

#[test]
fn bound_honest_pipelines_carry_their_nonces_and_pass_the_audit() {
    for (i, kind) in [
        "market_research",
        "competitive_analysis",
        "data_aggregation",
    ]
    .into_iter()
    .enumerate()
    {
        let c = challenge(kind, 10 + i as u64, T0, true);
        let (r, end) = respond(&c);
        assert!(!r.pipeline.is_empty());
        for step in &r.pipeline {
            let expected = call_nonce(&c.challenge_id, &step.step_id).to_hex();
            let request = step.request.as_deref().unwrap();
            assert_eq!(request_nonce(request), Some(expected.as_str()), "{kind}");
        }
        let report = audit(&c, &r, end, support::ledger_entries(), &[]);
        assert!(report.hash_verified(), "{kind}: {report:?}");
        assert_eq!(
            report.steps.len(),
            r.pipeline.len(),
            "every step re-executed"
        );

        // Without binding the requests are what they always were: no nonce on the wire.
        let c = challenge(kind, 10 + i as u64, T0, false);
        let (r, end) = respond(&c);
        assert!(
            r.pipeline
                .iter()
                .all(|s| s.request.as_deref().unwrap().get(NONCE_FIELD).is_none())
        );
        assert!(audit(&c, &r, end, support::ledger_entries(), &[]).hash_verified());
    }
}

/// An endpoint whose input schema refuses unknown fields cannot carry the nonce: the miner
/// leaves it out and the audit does not ask for it, so an honest miner still passes.
#[test]
fn bound_honest_pipeline_passes_where_an_endpoint_cannot_carry_the_nonce() {
    let mut entries = support::ledger_entries();
    let strict = entries.iter_mut().find(|e| e.netuid == 22).unwrap();
    strict.endpoints[0].input_schema = json!({
        "type": "object",
        "properties": {"objective": {"type": "string"}, "params": {"type": "object"}},
        "additionalProperties": false
    });
    let c = challenge("market_research", 20, T0, true);
    let (r, end) = respond_with(&c, entries.clone(), support::subnets);
    let on_22: Vec<_> = r.pipeline.iter().filter(|s| s.netuid == 22).collect();
    assert!(!on_22.is_empty(), "the plan routes to subnet 22");
    for s in &on_22 {
        assert_eq!(request_nonce(s.request.as_deref().unwrap()), None);
    }
    assert!(
        r.pipeline
            .iter()
            .filter(|s| s.netuid != 22)
            .all(|s| request_nonce(s.request.as_deref().unwrap()).is_some())
    );
    let report = audit(&c, &r, end, entries, &[]);
    assert!(report.hash_verified(), "{report:?}");
}

/// The whole step of an earlier challenge — its request, response and hashes — committed in a
/// later one. Re-executing that request reproduces the response, so without binding only the
/// replay set could tell, and a validator that never saw the original cannot. With binding
/// the request names another challenge (or none) and the audit fails it as fabrication.
#[test]
fn a_step_replayed_from_another_challenge_fails_under_binding_and_passes_without() {
    for earlier_bound in [false, true] {
        let c1 = challenge("data_aggregation", 30, T0, earlier_bound);
        let (r1, _) = respond(&c1);
        for bound in [false, true] {
            let c2 = challenge("data_aggregation", 31, T0 + HOUR, bound);
            assert_ne!(c1.challenge_id, c2.challenge_id);
            let (r2, end2) = respond(&c2);
            let replayed = splice(&c2, &r2, 0, &r1.pipeline[0], true);
            let report = audit(&c2, &replayed, end2, support::ledger_entries(), &[]);
            assert!(report.proof_ok() && report.replays.is_empty(), "{report:?}");
            if bound {
                assert_eq!(
                    failures(&report),
                    vec![&StepVerdict::NonceMismatch {
                        present: earlier_bound
                    }],
                    "earlier bound {earlier_bound}"
                );
                assert!(!report.hash_verified());
            } else {
                assert!(
                    report.hash_verified(),
                    "earlier bound {earlier_bound}: {report:?}"
                );
                assert_eq!(report.steps[0].verdict, StepVerdict::Reproduced);
            }
            // The honest answer to the same challenge passes either way.
            assert!(
                audit(&c2, &r2, end2, support::ledger_entries(), &[]).hash_verified(),
                "bound {bound}"
            );
        }
    }
}

/// Receipts sign the request hash, nonce included: a bound honest pipeline's receipts verify
/// and exempt their steps. Without binding one receipted call could serve two challenges that
/// are open at the same time (both windows contain it, each validator's replay set sees the
/// response once); with binding the receipt still verifies but its request names the other
/// challenge.
#[test]
fn receipts_over_bound_requests_verify_and_cannot_serve_another_challenge() {
    let known = [alice().ss58()];
    for bound in [false, true] {
        let c1 = challenge("market_research", 40, T0, bound);
        let (r1, end1) = respond_with(&c1, support::ledger_entries(), receipted);
        let report = audit(&c1, &r1, end1, support::ledger_entries(), &known);
        assert!(
            report
                .steps
                .iter()
                .all(|s| s.verdict == StepVerdict::Receipted),
            "{report:?}"
        );
        assert!(report.hash_verified());
        // The receipt covers the nonce: it is over the hash of the request as sent.
        let step = &r1.pipeline[0];
        assert_eq!(
            step.request_hash,
            hash_value(step.request.as_deref().unwrap())
        );

        // A concurrent challenge to the same miner from another validator.
        let c2 = challenge("market_research", 41, T0, bound);
        let (r2, end2) = respond_with(&c2, support::ledger_entries(), receipted);
        let shared = splice(&c2, &r2, 0, &r1.pipeline[0], false);
        let report = audit(
            &c2,
            &shared,
            end1.max(end2),
            support::ledger_entries(),
            &known,
        );
        assert!(report.proof_ok() && report.replays.is_empty(), "{report:?}");
        if bound {
            assert_eq!(
                report.steps[0].verdict,
                StepVerdict::NonceMismatch { present: true }
            );
            assert!(report.audit_failed());
        } else {
            assert_eq!(report.steps[0].verdict, StepVerdict::Receipted);
            assert!(report.hash_verified());
        }
    }
}
