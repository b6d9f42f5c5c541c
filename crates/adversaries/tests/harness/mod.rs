//! The validator and miner cores wired as in crates/validator/tests/end_to_end.rs, plus a
//! proposal verifier over a replica of the support Ledger, for the adversary tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::support;
use orchestra_adversaries::{GroupState, build};
use orchestra_ledger::{Ledger, LedgerState, ProbeResult, VerifyParams};
use orchestra_mechanism::MechanismParams;
use orchestra_miner::local::drive;
use orchestra_miner::{LedgerView, Miner, MinerConfig, Planner, Strategy, SubCall, SubCallOutcome};
use orchestra_protocol::ledger::{Entry, Proposal};
use orchestra_protocol::messages::{Challenge, Response};
use orchestra_validator::{
    AuditReport, Auditor, AuditorConfig, ChallengeConfig, ChallengeGenerator, ChallengeScore,
    ProposalVerifier, Scorer, ScorerConfig, VerifiedProposal,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const BLOCK: u64 = 1_100;
pub const T0: u64 = 1_700_000_000_000;
pub const VALIDATOR: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

/// Generator, auditor, scorer, one RNG stream each, and the validator's Ledger view.
pub struct Validator {
    pub generator: ChallengeGenerator,
    pub auditor: Auditor,
    pub scorer: Scorer,
    pub params: MechanismParams,
    pub view: LedgerView,
    pub rng_challenges: ChaCha8Rng,
    pub rng_audits: ChaCha8Rng,
}

pub fn params(audit_rate: f64) -> MechanismParams {
    MechanismParams {
        audit_rate,
        ..Default::default()
    }
}

/// The seed's mechanism (every v2 defence off, docs/mechanism.md), for tests that show what an
/// attack earns without them.
#[allow(dead_code)]
pub fn seed_params(audit_rate: f64) -> MechanismParams {
    MechanismParams {
        confirmation_scope: orchestra_mechanism::params::ConfirmationScope::Discovery,
        ledger_work_exponent: 0.0,
        execution_gate: 0.0,
        replay_binding: false,
        audit_agreement_min: 0.0,
        ..params(audit_rate)
    }
}

impl Validator {
    pub fn new(params: MechanismParams) -> Self {
        Self::with_view(params, LedgerView::new(support::ledger_entries()))
    }

    pub fn with_view(params: MechanismParams, view: LedgerView) -> Self {
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
            view,
            rng_challenges: ChaCha8Rng::seed_from_u64(11),
            rng_audits: ChaCha8Rng::seed_from_u64(12),
        }
    }

    pub fn challenge(&mut self, kind: &str, now_ms: u64) -> Challenge {
        let t = self.generator.template(kind).unwrap().clone();
        let (_, mut objective) = self.generator.objective(&mut self.rng_challenges);
        objective.kind = t.kind.clone();
        let mut c =
            self.generator
                .challenge(&t, objective, BLOCK, now_ms, &mut self.rng_challenges);
        // As the validator core does when it sends a challenge.
        c.replay_binding = self.params.replay_binding;
        c
    }

    /// One round: the same objective to every uid, each its own challenge.
    pub fn round(&mut self, uids: &[u16], now_ms: u64) -> Vec<(u16, Challenge)> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut round = self.generator.round(uids, BLOCK, now_ms, &mut rng);
        assert_eq!(round.len(), uids.len());
        for (_, c) in &mut round {
            c.replay_binding = self.params.replay_binding;
        }
        round
    }

    /// Audit with `live` answering every re-execution.
    pub fn audit_with(
        &mut self,
        c: &Challenge,
        r: &Response,
        received_at_ms: u64,
        live: impl Fn(u16, &str, &Value) -> Value,
    ) -> AuditReport {
        let mut audit = self.auditor.begin(
            c,
            r,
            received_at_ms,
            &self.view,
            &self.params,
            &mut self.rng_audits,
        );
        while let Some(call) = audit.poll_call(received_at_ms) {
            let v = live(call.netuid, &call.endpoint, &call.request);
            audit.on_call_result(call.audit_id, Ok(v.into()));
        }
        assert!(audit.is_finished());
        audit.finish()
    }

    pub fn judge(
        &mut self,
        uid: u16,
        c: &Challenge,
        r: &Response,
        received_at_ms: u64,
    ) -> (AuditReport, ChallengeScore) {
        self.judge_with(uid, c, r, received_at_ms, support::respond)
    }

    pub fn judge_with(
        &mut self,
        uid: u16,
        c: &Challenge,
        r: &Response,
        received_at_ms: u64,
        live: impl Fn(u16, &str, &Value) -> Value,
    ) -> (AuditReport, ChallengeScore) {
        let report = self.audit_with(c, r, received_at_ms, live);
        let score = self.scorer.score_challenge(uid, c, Some(r), Some(&report));
        (report, score)
    }

    /// A declined challenge: no response.
    pub fn judge_missing(&mut self, uid: u16, c: &Challenge) -> ChallengeScore {
        self.scorer.score_challenge(uid, c, None, None)
    }
}

/// A miner with `strategy` on the support templates.
pub fn miner(hotkey: &str, strategy: Box<dyn Strategy>) -> Miner {
    Miner::new(
        hotkey,
        Planner::new(&support::templates()),
        MinerConfig::default(),
    )
    .with_strategy(strategy)
}

/// `build` from a TOML inline table body, e.g. `"rate = 0.5, steps = \"one\""`.
pub fn strategy(name: &str, params: &str, group: &mut GroupState, seed: u64) -> Box<dyn Strategy> {
    build(name, &table(params), group, seed).unwrap()
}

pub fn table(params: &str) -> toml::Table {
    let doc: toml::Table = format!("p = {{ {params} }}").parse().unwrap();
    doc["p"].as_table().unwrap().clone()
}

/// What one challenge cost the miner: calls actually sent to subnets and rao paid.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Paid {
    pub calls: u64,
    pub rao: u64,
}

/// Run `c` through `m` against `view` with `subnets`; the response, when it was ready, and
/// what was paid.
pub fn answer_with(
    m: &mut Miner,
    c: &Challenge,
    view: &LedgerView,
    mut subnets: impl FnMut(&SubCall) -> (SubCallOutcome, u64),
) -> (Option<(Response, u64)>, Paid) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut paid = Paid::default();
    let mut s = m.start(c, view, BLOCK, c.issued_at_ms, &mut rng).unwrap();
    let end = drive(m, &mut s, c.issued_at_ms, |call| {
        let (o, l) = subnets(call);
        paid.calls += 1;
        if let Ok(r) = &o {
            paid.rao += r.cost_rao;
        }
        (o, l)
    });
    let r = m.finish(s, view, BLOCK, end).unwrap().map(|r| (r, end));
    (r, paid)
}

/// [`answer_with`] on the support Ledger and fake subnets.
pub fn answer(m: &mut Miner, c: &Challenge) -> (Option<(Response, u64)>, Paid) {
    let view = LedgerView::new(support::ledger_entries());
    answer_with(m, c, &view, support::subnets)
}

/// When a response with no sub-calls made can be delivered: after its last claimed step.
pub fn ready_at(r: &Response, end: u64) -> u64 {
    r.pipeline
        .iter()
        .map(|s| s.finished_at_ms())
        .max()
        .unwrap_or(end)
        .max(end)
}

/// Subnet 22 renamed `items` to `results` (a schema change the Ledger does not know yet).
pub fn changed_22(request: &Value) -> Value {
    let mut v = support::respond(22, "web_search", request);
    let items = v.as_object_mut().unwrap().remove("items").unwrap();
    v["results"] = items;
    v
}

/// The fake subnets after subnet 22's schema change.
pub fn live_after_change(netuid: u16, endpoint: &str, request: &Value) -> Value {
    if netuid == 22 {
        changed_22(request)
    } else {
        support::respond(netuid, endpoint, request)
    }
}

/// [`support::subnets`] after subnet 22's schema change.
pub fn subnets_after_change(call: &SubCall) -> (SubCallOutcome, u64) {
    let (o, l) = support::subnets(call);
    let mut reply = o.unwrap();
    reply.response = live_after_change(call.netuid, &call.endpoint, &call.request).into();
    (Ok(reply), l)
}

/// A replica of `entries` for the proposal verifier.
pub fn replica(entries: Vec<Entry>) -> Ledger {
    let entries: BTreeMap<u16, _> = entries.into_iter().map(|e| (e.netuid, e)).collect();
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

/// Submit `proposals` (uid, hotkey, proposal, arrival block), answer every probe with `live`
/// at the Ledger's p50 (a subnet outside `entries` does not answer), and judge them all at
/// `judge_block`.
pub fn verify(
    verifier: &mut ProposalVerifier,
    proposals: &[(u16, &str, Proposal, u64)],
    entries: &[Entry],
    judge_block: u64,
    live: impl Fn(u16, &str, &Value) -> Value,
) -> Vec<VerifiedProposal> {
    for (uid, hotkey, p, block) in proposals {
        verifier.submit(*uid, *hotkey, p.clone(), *block);
    }
    while let Some(p) = verifier.poll_probe() {
        let known = entries.iter().find(|e| e.netuid == p.netuid);
        let result = match known {
            Some(e) => ProbeResult {
                ok: true,
                latency_ms: e.metrics.p50_latency_ms,
                response: Some(live(p.netuid, &p.endpoint, &p.request)),
            },
            None => ProbeResult {
                ok: false,
                latency_ms: p.timeout_ms,
                response: None,
            },
        };
        verifier.on_probe_result(p.probe_id, result);
    }
    let mut out = Vec::new();
    while let Some(v) = verifier.poll_verdict(judge_block) {
        out.push(v);
    }
    out
}

/// `{}` in the shape the ledger tests' probes return when nothing else matters.
pub fn empty() -> Value {
    json!({})
}
