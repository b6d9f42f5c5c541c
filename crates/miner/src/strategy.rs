//! The [`Strategy`] trait: how a miner answers, given the honest machinery.
//!
//! The [`Miner`](crate::Miner) owns the honest machinery (planner, router, execution state
//! machine, proof builder, proposal detector) and consults its strategy at four points:
//!
//! | hook | honest default | what an adversary can do there |
//! |---|---|---|
//! | [`answer`](Strategy::answer) | plan with the reference decomposition and execute | decline (cherry_picker, ledger_only), answer with a ready-made response (copycat, full fabricator, freerider, shell_responder), execute a cheaper or stale plan (stale_router, shell_responder) |
//! | [`on_subcall`](Strategy::on_subcall) | send it | substitute an invented or cached reply (fabricator, invented_step, replayer), or pretend it failed |
//! | [`on_subcall_outcome`](Strategy::on_subcall_outcome) | nothing | cache responses for later replay, learn which endpoints sign receipts, count spend (adaptive) |
//! | [`finalize`](Strategy::finalize) | send as built | add, drop or copy proposals (ledger_spammer, confirmation_farmer), re-seal over other data (shell_responder), tamper, withhold |
//!
//! and [`observe_peer`](Strategy::observe_peer) lets a driver show a strategy other miners'
//! responses (what a copycat or confirmation farmer feeds on), while
//! [`on_epoch`](Strategy::on_epoch) tells it, when a driver learns it, what the chain paid this
//! miner for the epoch just closed (what an adaptive attacker measures its ROI with). The trait is dyn-compatible, so a
//! driver holds `Box<dyn Strategy>`; randomness arrives in [`answer`](Strategy::answer), and a
//! strategy that needs it elsewhere keeps its own stream, seeded by its driver.

use crate::execution::{CallRef, SubCall, SubCallFailure, SubCallOutcome, SubCallReply};
use crate::planner::{Planner, PlanningError, RoutedPlan};
use crate::router::Router;
use crate::view::LedgerView;
use orchestra_protocol::hash::CanonicalError;
use orchestra_protocol::ledger::Proposal;
use orchestra_protocol::messages::{Challenge, PipelineStep, Plan, Response};
use orchestra_protocol::proof::ProofBuilder;
use serde_json::Value;

/// What the honest machinery offers a strategy deciding how to answer.
#[derive(Debug, Clone, Copy)]
pub struct StrategyCtx<'a> {
    /// The miner's ss58 hotkey.
    pub miner: &'a str,
    /// The Ledger view the miner was handed.
    pub view: &'a LedgerView,
    /// The honest planner.
    pub planner: &'a Planner,
    /// The honest router.
    pub router: &'a Router,
    /// Current chain block.
    pub block: u64,
    /// Current time, ms.
    pub now_ms: u64,
}

impl StrategyCtx<'_> {
    /// The honest routed plan for `challenge`.
    pub fn honest_plan(&self, challenge: &Challenge) -> Result<RoutedPlan, PlanningError> {
        self.planner
            .plan(&challenge.objective, self.view, self.router, self.block)
    }

    /// A response with a valid proof over `pipeline` (pushed in order) and `data`, as this miner:
    /// the way to answer without the execution state machine. The proof verifies; whether the
    /// pipeline survives the replay set and audits is another matter.
    pub fn seal(
        &self,
        challenge: &Challenge,
        plan: Plan,
        pipeline: Vec<PipelineStep>,
        data: Value,
        proposals: Vec<Proposal>,
    ) -> Result<Response, CanonicalError> {
        seal_response(challenge, self.miner, plan, pipeline, data, proposals)
    }
}

/// Build a response with a valid proof over `pipeline` and `data` for `miner`.
pub fn seal_response(
    challenge: &Challenge,
    miner: &str,
    plan: Plan,
    pipeline: Vec<PipelineStep>,
    data: Value,
    proposals: Vec<Proposal>,
) -> Result<Response, CanonicalError> {
    let mut builder = ProofBuilder::new(challenge, miner);
    for step in pipeline {
        builder.push_step(step)?;
    }
    let (proof, pipeline) = builder.finish(&data)?;
    Ok(Response {
        challenge_id: challenge.challenge_id,
        miner: miner.to_string(),
        plan,
        pipeline,
        standardized_data: data,
        proof,
        ledger_proposals: proposals,
    })
}

/// How to answer a challenge.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Run this plan through the execution state machine.
    Execute(RoutedPlan),
    /// Send this response as it is (no sub-calls are made).
    Respond(Box<Response>),
    /// Do not answer.
    Decline,
}

/// What to do with one sub-call about to leave.
#[derive(Debug, Clone, PartialEq)]
pub enum CallAction {
    /// Send it to the subnet.
    Send,
    /// Do not send it; treat this as the subnet's reply, completing now.
    Substitute(SubCallReply),
    /// Do not send it; treat it as failed now.
    Fail(SubCallFailure),
}

/// A miner's behaviour (see the module docs). Every method has the honest default.
pub trait Strategy: Send {
    /// A short name for reports (`honest`, `fabricator`, …).
    fn name(&self) -> &str {
        "honest"
    }

    /// Decide how to answer `challenge`.
    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        rng: &mut dyn rand::Rng,
    ) -> Answer {
        let _ = rng;
        honest_answer(ctx, challenge)
    }

    /// Decide what to do with `call` before it leaves.
    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        let _ = call;
        CallAction::Send
    }

    /// See how a call went (including substituted ones), before the execution takes it.
    fn on_subcall_outcome(&mut self, call: CallRef<'_>, outcome: &SubCallOutcome) {
        let _ = (call, outcome);
    }

    /// The last word on an executed response (already proven, detected proposals attached);
    /// `None` withholds it. Proposals are not covered by the proof, so they can be edited freely;
    /// anything else changed breaks the proof.
    fn finalize(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        response: Response,
    ) -> Option<Response> {
        let _ = (ctx, challenge);
        Some(response)
    }

    /// Another miner's response, as a driver chooses to show it.
    fn observe_peer(&mut self, challenge: &Challenge, response: &Response) {
        let _ = (challenge, response);
    }

    /// An epoch closed and the chain paid this miner `reward`. Drivers call it once per epoch
    /// when they know the miner's emission (the simulator does; a node that does not read its
    /// incentive never calls it), so a strategy must not rely on it arriving.
    fn on_epoch(&mut self, reward: &EpochReward) {
        let _ = reward;
    }
}

/// What a miner learns about itself when an epoch closes: the emission the chain paid it, which
/// anyone can read from the metagraph. Sub-call spend is not included: a strategy sees its own
/// through [`Strategy::on_subcall_outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EpochReward {
    /// The block the epoch closed at.
    pub block: u64,
    /// Alpha emitted to this miner (its incentive share) over the epoch, rao.
    pub emission_rao: u64,
    /// The same emission in TAO rao at the subnet's alpha price: the unit sub-calls are paid in,
    /// so `value_rao − spend` is the epoch's ROI.
    pub value_rao: u64,
}

/// The honest answer: execute the honest plan; if nothing can be routed, answer with no
/// sub-calls and the least data the target schema accepts (some schema credit, no routing
/// credit) rather than not at all.
pub fn honest_answer(ctx: &StrategyCtx<'_>, challenge: &Challenge) -> Answer {
    match ctx.honest_plan(challenge) {
        Ok(plan) => Answer::Execute(plan),
        Err(_) => {
            let data = crate::assemble::example(&challenge.target_schema);
            match ctx.seal(challenge, Plan::default(), Vec::new(), data, Vec::new()) {
                Ok(r) => Answer::Respond(Box::new(r)),
                Err(_) => Answer::Decline,
            }
        }
    }
}

/// The honest strategy: every hook at its default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Honest;

impl Strategy for Honest {}
