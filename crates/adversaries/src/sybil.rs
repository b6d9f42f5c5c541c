//! `sybil`: k identities sharing one pipeline.
//!
//! Each identity is its own [`Strategy`] (its own hotkey, its own lock), but the identities of
//! one group share a [`SybilPool`] the factory hands them through [`GroupState`]: whichever
//! identity executes a step of an objective first publishes the reply, and the others, when they
//! get a challenge with the same objective (a validator round gives every sampled miner the
//! same one), answer that step from the pool instead of paying — re-sealed under their own lock
//! by the execution state machine, since the reply is substituted at the call. `share_rate` is
//! the probability an identity draws from the pool on a challenge; `disguise` rewrites the
//! echoed `request_id` so the shared hash is new (then only audits can tell).
//!
//! Defence (docs/mechanism.md §3 check 4, §8): the copy set, so rewards do not grow super-linearly in
//! k: only one identity per objective gets the pipeline's credit.
//!
//! [`GroupState`]: crate::GroupState

use crate::forge::{disguise, objective_key, stream};
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use crate::track::CallTracker;
use orchestra_miner::{
    Answer, CallAction, CallRef, Strategy, StrategyCtx, SubCall, SubCallOutcome, SubCallReply,
    honest_answer,
};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::Challenge;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Replies a pool keeps (the oldest go first).
pub const POOL_CAPACITY: usize = 1_024;

/// `sybil` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SybilParams {
    /// Probability an identity answers a challenge's steps from the pool when it can, `[0, 1]`,
    /// default 1.
    pub share_rate: f64,
    /// Rewrite the echoed `request_id` of shared replies (default false).
    pub disguise: bool,
}

impl Default for SybilParams {
    fn default() -> Self {
        SybilParams {
            share_rate: 1.0,
            disguise: false,
        }
    }
}

impl Params for SybilParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "share_rate",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Float,
            doc: "probability an identity reuses the group's replies",
        },
        Knob {
            name: "disguise",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Bool,
            doc: "rewrite the echoed request_id of shared replies",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("share_rate", self.share_rate, 0.0, 1.0)
    }
}

#[derive(Debug, Default)]
struct PoolInner {
    replies: BTreeMap<(Hash32, String), (usize, SubCallReply)>,
    order: VecDeque<(Hash32, String)>,
    members: usize,
    shared: u64,
}

/// The pipeline pool one sybil group shares. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct SybilPool(Arc<Mutex<PoolInner>>);

impl SybilPool {
    fn lock(&self) -> MutexGuard<'_, PoolInner> {
        // A panic elsewhere while holding the pool leaves plain data behind; keep using it.
        match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Identities built on this pool so far.
    pub fn members(&self) -> usize {
        self.lock().members
    }

    /// Sub-calls answered from the pool so far, over all identities.
    pub fn shared(&self) -> u64 {
        self.lock().shared
    }

    fn join(&self) -> usize {
        let mut p = self.lock();
        p.members += 1;
        p.members - 1
    }
}

#[derive(Debug, Clone)]
struct ChallengeState {
    objective: Hash32,
    share: bool,
    sent: BTreeSet<String>,
}

/// One sybil identity (see the module docs).
#[derive(Debug)]
pub struct Sybil {
    params: SybilParams,
    pool: SybilPool,
    member: usize,
    tracker: CallTracker<ChallengeState>,
    rng: ChaCha8Rng,
}

impl Sybil {
    /// Identity number `pool.members()` of the group sharing `pool`; `seed` keys its own RNG
    /// stream (the member index is mixed in, so identities built from one seed draw apart).
    pub fn new(params: SybilParams, pool: SybilPool, seed: u64) -> Self {
        let member = pool.join();
        Sybil {
            params,
            pool,
            member,
            tracker: CallTracker::default(),
            rng: stream(seed, &format!("sybil/{member}")),
        }
    }

    /// This identity's index in its group.
    pub fn member(&self) -> usize {
        self.member
    }
}

impl Strategy for Sybil {
    fn name(&self) -> &str {
        "sybil"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let share = self.rng.random_bool(self.params.share_rate);
        self.tracker.register(
            challenge,
            ctx.miner,
            ChallengeState {
                objective: objective_key(&challenge.objective),
                share,
                sent: BTreeSet::new(),
            },
        );
        honest_answer(ctx, challenge)
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        let member = self.member;
        let Some(state) = self.tracker.find(call) else {
            return CallAction::Send;
        };
        if state.share {
            let mut pool = self.pool.lock();
            let found = pool
                .replies
                .get(&(state.objective, call.step_id.clone()))
                .filter(|(owner, _)| *owner != member)
                .map(|(_, r)| r.clone());
            if let Some(reply) = found {
                pool.shared += 1;
                return CallAction::Substitute(if self.params.disguise {
                    disguise(reply, call)
                } else {
                    reply
                });
            }
        }
        if let Some(rid) = call.request.get("request_id").and_then(|v| v.as_str()) {
            state.sent.insert(rid.to_string());
        }
        CallAction::Send
    }

    fn on_subcall_outcome(&mut self, call: CallRef<'_>, outcome: &SubCallOutcome) {
        let Ok(reply) = outcome else {
            return;
        };
        let member = self.member;
        let Some(state) = self.tracker.find_ref(&call) else {
            return;
        };
        let paid = call
            .request
            .get("request_id")
            .and_then(|v| v.as_str())
            .is_some_and(|rid| state.sent.remove(rid));
        if !paid {
            return;
        }
        let key = (state.objective, call.step_id.to_string());
        let mut pool = self.pool.lock();
        if pool.replies.contains_key(&key) {
            return;
        }
        pool.replies.insert(key.clone(), (member, reply.clone()));
        pool.order.push_back(key);
        while pool.order.len() > POOL_CAPACITY {
            if let Some(old) = pool.order.pop_front() {
                pool.replies.remove(&old);
            }
        }
    }
}
