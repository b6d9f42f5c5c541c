//! [`Miner`]: the honest machinery plus a [`Strategy`], and the per-challenge [`Session`].
//!
//! Sessions are owned by the driver, not the miner, so one miner can answer many challenges at
//! once; the miner's methods take the session they act on.
//!
//! ```text
//! let mut s = miner.start(&challenge, &view, block, now_ms, &mut rng)?;
//! while let Some(call) = miner.poll_subcall(&mut s, now_ms) { driver.send(call) }
//! miner.on_subcall_result(&mut s, call_id, outcome, now_ms);   // as results arrive
//! if let Some(t) = s.poll_timeout() { /* wake at t, then */ miner.handle_timeout(&mut s, t) }
//! if s.is_finished() { let response = miner.finish(s, &view, block, now_ms)?; }
//! ```

use crate::detector::{DetectorConfig, ProposalDetector};
use crate::execution::{Execution, ExecutionConfig, ExecutionError, SubCall, SubCallOutcome};
use crate::planner::Planner;
use crate::router::{Router, RouterConfig};
use crate::strategy::{Answer, CallAction, EpochReward, Honest, Strategy, StrategyCtx};
use crate::view::LedgerView;
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Response};
use serde::{Deserialize, Serialize};

/// A miner's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MinerConfig {
    /// Routing weights and staleness.
    pub router: RouterConfig,
    /// Retries, timeouts, request shaping.
    pub execution: ExecutionConfig,
    /// Proposal detection thresholds.
    pub detector: DetectorConfig,
}

/// Why a miner could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MinerError {
    /// The execution could not start or finish.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
}

/// Where one challenge stands.
#[derive(Debug)]
pub enum SessionState {
    /// Sub-calls are being made.
    Executing(Box<Execution>),
    /// The strategy answered directly.
    Ready(Box<Response>),
    /// The strategy declined.
    Declined,
}

/// One challenge being answered.
#[derive(Debug)]
pub struct Session {
    challenge_id: Hash32,
    state: SessionState,
}

impl Session {
    /// The challenge answered.
    pub fn challenge_id(&self) -> Hash32 {
        self.challenge_id
    }

    /// Where it stands.
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// The execution, if sub-calls are being made.
    pub fn execution(&self) -> Option<&Execution> {
        match &self.state {
            SessionState::Executing(e) => Some(e),
            _ => None,
        }
    }

    /// Whether [`Miner::finish`] can be called without cutting anything short.
    pub fn is_finished(&self) -> bool {
        match &self.state {
            SessionState::Executing(e) => e.is_finished(),
            _ => true,
        }
    }

    /// When the driver should call [`Miner::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.execution().and_then(Execution::poll_timeout)
    }
}

/// A miner core: honest machinery, stateful proposal detector, and a strategy.
pub struct Miner {
    hotkey: String,
    planner: Planner,
    router: Router,
    detector: ProposalDetector,
    execution: ExecutionConfig,
    strategy: Box<dyn Strategy>,
}

impl std::fmt::Debug for Miner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Miner")
            .field("hotkey", &self.hotkey)
            .field("strategy", &self.strategy.name())
            .finish_non_exhaustive()
    }
}

impl Miner {
    /// An honest miner with hotkey `hotkey` (ss58).
    pub fn new(hotkey: impl Into<String>, planner: Planner, config: MinerConfig) -> Self {
        Miner {
            hotkey: hotkey.into(),
            planner,
            router: Router::new(config.router),
            detector: ProposalDetector::new(config.detector),
            execution: config.execution,
            strategy: Box::new(Honest),
        }
    }

    /// Replace the strategy.
    pub fn with_strategy(mut self, strategy: Box<dyn Strategy>) -> Self {
        self.strategy = strategy;
        self
    }

    /// The miner's ss58 hotkey.
    pub fn hotkey(&self) -> &str {
        &self.hotkey
    }

    /// The strategy's name.
    pub fn strategy_name(&self) -> &str {
        self.strategy.name()
    }

    /// The strategy.
    pub fn strategy_mut(&mut self) -> &mut dyn Strategy {
        self.strategy.as_mut()
    }

    /// The planner.
    pub fn planner(&self) -> &Planner {
        &self.planner
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Begin answering `challenge` at `block`/`now_ms` against `view`.
    pub fn start(
        &mut self,
        challenge: &Challenge,
        view: &LedgerView,
        block: u64,
        now_ms: u64,
        rng: &mut impl rand::Rng,
    ) -> Result<Session, MinerError> {
        let ctx = StrategyCtx {
            miner: &self.hotkey,
            view,
            planner: &self.planner,
            router: &self.router,
            block,
            now_ms,
        };
        let state = match self.strategy.answer(&ctx, challenge, rng) {
            Answer::Execute(plan) => SessionState::Executing(Box::new(Execution::new(
                challenge,
                &self.hotkey,
                plan,
                self.execution,
            )?)),
            Answer::Respond(r) => SessionState::Ready(r),
            Answer::Decline => SessionState::Declined,
        };
        Ok(Session {
            challenge_id: challenge.challenge_id,
            state,
        })
    }

    /// The next sub-call to send at `now_ms` (after the strategy had its say); `None` when
    /// nothing is ready. Call it until `None` after every event.
    pub fn poll_subcall(&mut self, session: &mut Session, now_ms: u64) -> Option<SubCall> {
        let SessionState::Executing(exec) = &mut session.state else {
            return None;
        };
        loop {
            let call = exec.poll_subcall(now_ms)?;
            let outcome: SubCallOutcome = match self.strategy.on_subcall(&call) {
                CallAction::Send => return Some(call),
                CallAction::Substitute(reply) => Ok(reply),
                CallAction::Fail(f) => Err(f),
            };
            if let Some(c) = exec.call(call.call_id) {
                self.strategy.on_subcall_outcome(c, &outcome);
            }
            exec.on_subcall_result(call.call_id, outcome, now_ms);
        }
    }

    /// Report the outcome of call `call_id` at `now_ms`.
    pub fn on_subcall_result(
        &mut self,
        session: &mut Session,
        call_id: u64,
        outcome: SubCallOutcome,
        now_ms: u64,
    ) {
        if let SessionState::Executing(exec) = &mut session.state {
            if let Some(c) = exec.call(call_id) {
                self.strategy.on_subcall_outcome(c, &outcome);
            }
            exec.on_subcall_result(call_id, outcome, now_ms);
        }
    }

    /// Time has reached `now_ms` (see [`Session::poll_timeout`]).
    pub fn handle_timeout(&mut self, session: &mut Session, now_ms: u64) {
        if let SessionState::Executing(exec) = &mut session.state {
            exec.handle_timeout(now_ms);
        }
    }

    /// Seal the answer: assemble, prove, detect proposals (against `view` at `block`), and let
    /// the strategy finalize. `None` if the strategy declined or withheld.
    pub fn finish(
        &mut self,
        session: Session,
        view: &LedgerView,
        block: u64,
        now_ms: u64,
    ) -> Result<Option<Response>, MinerError> {
        match session.state {
            SessionState::Declined => Ok(None),
            SessionState::Ready(r) => Ok(Some(*r)),
            SessionState::Executing(exec) => {
                let out = exec.finish(now_ms)?;
                let challenge = out.challenge;
                let proposals =
                    self.detector
                        .observe(view, &out.observations, &out.pipeline, block);
                let response = Response {
                    challenge_id: challenge.challenge_id,
                    miner: self.hotkey.clone(),
                    plan: out.plan,
                    pipeline: out.pipeline,
                    standardized_data: out.standardized_data,
                    proof: out.proof,
                    ledger_proposals: proposals,
                };
                let ctx = StrategyCtx {
                    miner: &self.hotkey,
                    view,
                    planner: &self.planner,
                    router: &self.router,
                    block,
                    now_ms,
                };
                Ok(self.strategy.finalize(&ctx, &challenge, response))
            }
        }
    }

    /// Show the strategy another miner's response.
    pub fn observe_peer(&mut self, challenge: &Challenge, response: &Response) {
        self.strategy.observe_peer(challenge, response);
    }

    /// Tell the strategy what the chain paid this miner for the epoch that just closed.
    pub fn on_epoch(&mut self, reward: &EpochReward) {
        self.strategy.on_epoch(reward);
    }
}
