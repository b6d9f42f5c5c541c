#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Full challenges through the miner core and the validator core, with the fake subnets of
//! `support` (a deterministic function of the request, conforming to each endpoint's schema).

#[path = "../../miner/tests/support/mod.rs"]
mod support;

use orchestra_mechanism::MechanismParams;
use orchestra_miner::local::drive;
use orchestra_miner::{
    Answer, CallAction, CallRef, LedgerView, Miner, MinerConfig, Planner, Strategy, StrategyCtx,
    SubCall, SubCallOutcome, SubCallReply,
};
use orchestra_protocol::messages::{Challenge, Response};
use orchestra_validator::{
    AuditReport, Auditor, AuditorConfig, ChallengeConfig, ChallengeGenerator, ChallengeOutcome,
    Scorer, ScorerConfig, StepVerdict,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const BLOCK: u64 = 1_100;
const T0: u64 = 1_700_000_000_000;
const VALIDATOR: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

/// The validator side of the test: generator, auditor, scorer, one RNG stream each.
struct Validator {
    generator: ChallengeGenerator,
    auditor: Auditor,
    scorer: Scorer,
    params: MechanismParams,
    view: LedgerView,
    rng_challenges: ChaCha8Rng,
    rng_audits: ChaCha8Rng,
}

impl Validator {
    fn new(params: MechanismParams) -> Self {
        let templates = support::templates();
        Validator {
            generator: ChallengeGenerator::new(
                VALIDATOR,
                templates.clone(),
                ChallengeConfig::default(),
            )
            .unwrap(),
            auditor: Auditor::new(AuditorConfig::default()),
            scorer: Scorer::new(params.clone(), ScorerConfig::default(), &templates),
            params,
            view: LedgerView::new(support::ledger_entries()),
            rng_challenges: ChaCha8Rng::seed_from_u64(11),
            rng_audits: ChaCha8Rng::seed_from_u64(12),
        }
    }

    fn challenge(&mut self, kind: &str, now_ms: u64) -> Challenge {
        let t = self.generator.template(kind).unwrap().clone();
        let (_, mut objective) = self.generator.objective(&mut self.rng_challenges);
        objective.kind = t.kind.clone();
        self.generator
            .challenge(&t, objective, BLOCK, now_ms, &mut self.rng_challenges)
    }

    /// Audit with the fake subnets answering every re-execution.
    fn audit(&mut self, c: &Challenge, r: &Response, received_at_ms: u64) -> AuditReport {
        let mut audit = self.auditor.begin(
            c,
            r,
            received_at_ms,
            &self.view,
            &self.params,
            &mut self.rng_audits,
        );
        while let Some(call) = audit.poll_call(received_at_ms) {
            let live = support::respond(call.netuid, &call.endpoint, &call.request);
            audit.on_call_result(call.audit_id, Ok(live.into()));
        }
        assert!(audit.is_finished());
        audit.finish()
    }

    fn judge(
        &mut self,
        uid: u16,
        c: &Challenge,
        r: &Response,
        received_at_ms: u64,
    ) -> (AuditReport, orchestra_validator::ChallengeScore) {
        let report = self.audit(c, r, received_at_ms);
        let score = self.scorer.score_challenge(uid, c, Some(r), Some(&report));
        (report, score)
    }
}

fn miner(hotkey: &str, strategy: Option<Box<dyn Strategy>>) -> Miner {
    let m = Miner::new(
        hotkey,
        Planner::new(&support::templates()),
        MinerConfig::default(),
    );
    match strategy {
        Some(s) => m.with_strategy(s),
        None => m,
    }
}

/// Run `c` through `m` with the fake subnets; returns the response and when it was ready.
fn answer(m: &mut Miner, c: &Challenge) -> Option<(Response, u64)> {
    let view = LedgerView::new(support::ledger_entries());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut s = m.start(c, &view, BLOCK, c.issued_at_ms, &mut rng).unwrap();
    let end = drive(m, &mut s, c.issued_at_ms, support::subnets);
    m.finish(s, &view, BLOCK, end).unwrap().map(|r| (r, end))
}

fn params(audit_rate: f64) -> MechanismParams {
    MechanismParams {
        audit_rate,
        ..Default::default()
    }
}

#[test]
fn honest_response_scores_near_the_maximum() {
    let mut v = Validator::new(params(1.0));
    let s = v.params.orchestration_share;
    for (i, kind) in [
        "market_research",
        "competitive_analysis",
        "data_aggregation",
    ]
    .into_iter()
    .enumerate()
    {
        let c = v.challenge(kind, T0 + i as u64 * 60_000);
        let mut m = miner("miner-honest", None);
        let (r, done) = answer(&mut m, &c).unwrap();
        let (report, score) = v.judge(1, &c, &r, done);
        // Every step was re-executed and reproduced (or consistent, for non-deterministic ones).
        assert_eq!(report.steps.len(), r.pipeline.len(), "{kind}");
        assert!(report.hash_verified(), "{kind}: {report:?}");
        assert_eq!(score.outcome, ChallengeOutcome::Scored);
        assert_eq!(score.terms.hash_verified, 1.0);
        assert_eq!(score.terms.schema_valid, 1.0, "{kind}");
        assert_eq!(score.terms.completeness, 1.0, "{kind}");
        assert_eq!(score.terms.latency, 1.0);
        assert!(
            score.terms.routing > 0.95,
            "{kind}: {}",
            score.terms.routing
        );
        assert!(score.score > 0.99 * s, "{kind}: {} of max {s}", score.score);
    }
}

/// Substitutes an invented response for one step instead of calling the subnet.
struct FabricateOne {
    step: &'static str,
}

impl Strategy for FabricateOne {
    fn name(&self) -> &str {
        "fabricator"
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        if call.step_id != self.step {
            return CallAction::Send;
        }
        CallAction::Substitute(SubCallReply {
            response: json!({
                "request_id": call.request["request_id"],
                "items": [{"title": "invented", "url": "https://invented.example", "score": 1.0}]
            })
            .into(),
            subnet_hotkey: format!("subnet-{}-hotkey", call.netuid),
            cost_rao: 300_000,
            receipt: None,
        })
    }
}

#[test]
fn a_fabricated_sub_response_is_caught_and_struck() {
    let mut v = Validator::new(params(1.0));
    // Build up an orchestration EMA honestly first.
    let mut honest = miner("miner-f", None);
    for i in 0..5 {
        let c = v.challenge("market_research", T0 + i * 60_000);
        let (r, done) = answer(&mut honest, &c).unwrap();
        assert_eq!(v.judge(7, &c, &r, done).1.outcome, ChallengeOutcome::Scored);
    }
    let before = *v.scorer.ema().get(7).unwrap();

    let mut fab = miner("miner-f", Some(Box::new(FabricateOne { step: "search" })));
    let c = v.challenge("market_research", T0 + 10 * 60_000);
    let (r, done) = answer(&mut fab, &c).unwrap();
    // The proof itself is fine: fabrication is only visible by re-executing.
    orchestra_protocol::proof::verify(&c, &r, done).unwrap();
    let (report, score) = v.judge(7, &c, &r, done);
    let search = r
        .pipeline
        .iter()
        .position(|s| s.step_id == "search")
        .unwrap();
    let verdict = &report
        .steps
        .iter()
        .find(|s| s.step_index == search)
        .unwrap()
        .verdict;
    assert_eq!(*verdict, StepVerdict::HashMismatch);
    assert!(report.audit_failed());
    assert_eq!(score.outcome, ChallengeOutcome::Struck);
    assert_eq!(score.score, 0.0);

    // Strike: a zero observation, then the orchestration EMA × strike_penalty.
    let after = v.scorer.ema().get(7).unwrap();
    assert_eq!(after.strikes, 1);
    let (alpha, penalty) = (v.params.ema_alpha, v.params.strike_penalty);
    for (b, a) in before
        .orchestration
        .as_array()
        .iter()
        .zip(after.orchestration.as_array())
    {
        assert!(
            (a - b * (1.0 - alpha) * penalty).abs() < 1e-12,
            "{b} -> {a}"
        );
    }
    let o_before = before.orchestration_score(&v.params);
    let o_after = after.orchestration_score(&v.params);
    assert!((o_after - o_before * (1.0 - alpha) * penalty).abs() < 1e-12);
}

/// Answers with the response of another miner it was shown.
struct Copycat {
    stolen: Option<Response>,
    reseal: bool,
}

impl Strategy for Copycat {
    fn name(&self) -> &str {
        "copycat"
    }

    fn answer(&mut self, ctx: &StrategyCtx<'_>, c: &Challenge, _: &mut dyn rand::Rng) -> Answer {
        let Some(mut r) = self.stolen.take() else {
            return Answer::Decline;
        };
        if self.reseal {
            // Re-prove the stolen pipeline under its own lock: the proof verifies, the
            // response hashes do not.
            let sealed = ctx
                .seal(c, r.plan, r.pipeline, r.standardized_data, vec![])
                .unwrap();
            return Answer::Respond(Box::new(sealed));
        }
        r.challenge_id = c.challenge_id;
        r.miner = ctx.miner.to_string();
        Answer::Respond(Box::new(r))
    }

    fn observe_peer(&mut self, _: &Challenge, response: &Response) {
        self.stolen = Some(response.clone());
    }
}

#[test]
fn a_copied_response_fails_the_lock_and_the_replay_set() {
    let mut v = Validator::new(params(0.2));
    // Same round, same objective: two challenges, one per miner.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let round = v.generator.round(&[1, 2, 3], BLOCK, T0, &mut rng);
    let (c_a, c_b, c_c) = (&round[0].1, &round[1].1, &round[2].1);
    assert_eq!(c_a.objective, c_b.objective);
    assert_ne!(c_a.challenge_id, c_b.challenge_id);

    let mut honest = miner("miner-a", None);
    let (r_a, done_a) = answer(&mut honest, c_a).unwrap();
    let (_, s_a) = v.judge(round[0].0, c_a, &r_a, done_a);
    assert_eq!(s_a.outcome, ChallengeOutcome::Scored);

    // Plain copy, relabelled: lock0 binds the original challenge, salt and miner.
    let mut copycat = miner(
        "miner-b",
        Some(Box::new(Copycat {
            stolen: None,
            reseal: false,
        })),
    );
    copycat.observe_peer(c_a, &r_a);
    // A copy can only go out once the original exists.
    let (r_b, _) = answer(&mut copycat, c_b).unwrap();
    let (report, score) = v.judge(round[1].0, c_b, &r_b, done_a + 50);
    assert!(
        report.proof_error.as_deref().unwrap().contains("lock0"),
        "{report:?}"
    );
    assert!(!report.hash_verified());
    assert_eq!(score.outcome, ChallengeOutcome::Unverified);
    assert_eq!(score.score, 0.0);

    // Copy re-sealed under its own lock: the proof holds, the response hashes were already
    // seen in another miner's response.
    let mut resealer = miner(
        "miner-c",
        Some(Box::new(Copycat {
            stolen: None,
            reseal: true,
        })),
    );
    resealer.observe_peer(c_a, &r_a);
    let (r_c, _) = answer(&mut resealer, c_c).unwrap();
    orchestra_protocol::proof::verify(c_c, &r_c, done_a + 50).unwrap();
    let (report, score) = v.judge(round[2].0, c_c, &r_c, done_a + 50);
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

/// Caches every sub-response and serves later calls of the same step from the cache.
#[derive(Default)]
struct Replayer {
    cache: BTreeMap<String, Value>,
}

impl Strategy for Replayer {
    fn name(&self) -> &str {
        "replayer"
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        match self.cache.get(&call.step_id) {
            Some(cached) => CallAction::Substitute(SubCallReply {
                response: cached.clone().into(),
                subnet_hotkey: format!("subnet-{}-hotkey", call.netuid),
                cost_rao: 0,
                receipt: None,
            }),
            None => CallAction::Send,
        }
    }

    fn on_subcall_outcome(&mut self, call: CallRef<'_>, outcome: &SubCallOutcome) {
        if let Ok(reply) = outcome {
            self.cache
                .entry(call.step_id.to_string())
                .or_insert_with(|| reply.response.value().clone());
        }
    }
}

#[test]
fn a_replayed_sub_response_is_caught() {
    let mut v = Validator::new(params(0.0));
    let mut replayer = miner("miner-r", Some(Box::new(Replayer::default())));
    let c1 = v.challenge("data_aggregation", T0);
    let (r1, done1) = answer(&mut replayer, &c1).unwrap();
    assert_eq!(
        v.judge(4, &c1, &r1, done1).1.outcome,
        ChallengeOutcome::Scored
    );

    // An hour later, every step answered from the cache.
    let c2 = v.challenge("data_aggregation", T0 + 3_600_000);
    let (r2, done2) = answer(&mut replayer, &c2).unwrap();
    orchestra_protocol::proof::verify(&c2, &r2, done2).unwrap();
    let (report, score) = v.judge(4, &c2, &r2, done2);
    assert!(!report.replays.is_empty());
    assert!(
        report
            .replays
            .iter()
            .all(|h| !h.copied && h.first_challenge == c1.challenge_id)
    );
    assert!(!report.hash_verified());
    assert_eq!(score.outcome, ChallengeOutcome::Unverified);
    assert_eq!(score.score, 0.0);

    // Outside the replay window the same hashes are no longer remembered.
    let c3 = v.challenge(
        "data_aggregation",
        T0 + v.params.replay_window_ms + 4_000_000,
    );
    let (r3, done3) = answer(&mut replayer, &c3).unwrap();
    let (report, _) = v.judge(4, &c3, &r3, done3);
    assert!(report.replays.is_empty(), "{report:?}");
}

#[test]
fn a_late_response_scores_zero() {
    let mut v = Validator::new(params(1.0));
    let c = v.challenge("competitive_analysis", T0);
    let mut m = miner("miner-l", None);
    let (r, _) = answer(&mut m, &c).unwrap();
    // Received after the deadline plus the grace period.
    let received = c.due_at_ms() + v.params.latency_grace_ms + 1;
    let (report, score) = v.judge(9, &c, &r, received);
    assert!(report.late);
    assert!(
        report.steps.is_empty(),
        "late responses are not re-executed"
    );
    assert_eq!(score.outcome, ChallengeOutcome::Late);
    assert_eq!(score.terms, orchestra_mechanism::OrchestrationTerms::ZERO);
    assert_eq!(score.score, 0.0);
    // Within the grace period it is still scored, minus the latency term.
    let mut v = Validator::new(params(1.0));
    let c = v.challenge("competitive_analysis", T0);
    let (r, _) = answer(&mut m, &c).unwrap();
    let (_, score) = v.judge(9, &c, &r, c.due_at_ms() + 10);
    assert_eq!(score.outcome, ChallengeOutcome::Scored);
    assert_eq!(score.terms.latency, 0.0);
}

#[test]
fn a_missing_response_scores_zero() {
    let mut v = Validator::new(params(1.0));
    let c = v.challenge("market_research", T0);
    let score = v.scorer.score_challenge(3, &c, None, None);
    assert_eq!(score.outcome, ChallengeOutcome::Missing);
    assert_eq!(score.score, 0.0);
    assert_eq!(v.scorer.ema().get(3).unwrap().orchestration_observations, 1);
}

#[test]
fn same_seeds_give_identical_runs() {
    let run = || {
        let mut v = Validator::new(params(0.5));
        let mut m = miner("miner-d", None);
        let mut out = Vec::new();
        for i in 0..3 {
            let c = v.challenge("market_research", T0 + i * 60_000);
            let (r, done) = answer(&mut m, &c).unwrap();
            let (report, score) = v.judge(1, &c, &r, done);
            out.push((r, report, score));
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn an_organic_objective_runs_the_generic_plan() {
    let mut v = Validator::new(params(1.0));
    let schema = json!({
        "type": "object", "required": ["answer", "sources"],
        "properties": {"answer": {"type": "string", "minLength": 1},
                       "sources": {"type": "array", "minItems": 1,
                                   "items": {"type": "object", "required": ["url"],
                                             "properties": {"url": {"type": "string"}}}}}
    });
    let objective = orchestra_protocol::messages::Objective {
        kind: "organic".into(),
        text: "Who makes the best smart rings?".into(),
        params: json!({}),
    };
    let c = v
        .generator
        .organic(objective, schema, BLOCK, T0, &mut v.rng_challenges);
    let mut m = miner("miner-o", None);
    let (r, done) = answer(&mut m, &c).unwrap();
    let caps: Vec<&str> = r.plan.steps.iter().map(|s| s.capability.as_str()).collect();
    assert_eq!(caps, ["web_search", "llm_synthesis"]);
    let (_, score) = v.judge(2, &c, &r, done);
    assert_eq!(score.outcome, ChallengeOutcome::Scored);
    assert!(
        score.score > 0.99 * v.params.orchestration_share,
        "{score:?}"
    );
    // The sources came from the search results, not from defaults.
    assert!(
        r.standardized_data["sources"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://sn22")
    );
}
