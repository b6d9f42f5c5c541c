//! `confirmation_farmer`: re-submits Ledger proposals it saw in other miners' responses, to farm
//! confirmation credit without ever discovering anything.
//!
//! Proposals seen through [`observe_peer`](Strategy::observe_peer) are queued (once per content
//! id) and attached, `per_response` at a time, to its own responses, claiming its own
//! observation block. With `execute = true` it otherwise answers honestly; with `false` it sends
//! the cheapest sealed response (no sub-calls, the least data the schema accepts) as the carrier.
//!
//! With `forge_evidence = true` it re-stamps each copy's evidence as if it had made the probes
//! itself (its own time, request hashes no one else has), which the copied-evidence check cannot
//! tell from an independent observation.
//!
//! Defence (docs/mechanism.md §5, §6): a later valid duplicate is a confirmation worth 0.2 × unit, and
//! only inside the verification window; later still it is neither credited nor slashed. A copy
//! that carries the original's evidence verbatim is rejected and slashed (the copied-evidence
//! check, `reject_copied_evidence`).

use crate::forge::minimal_answer;
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::{Answer, Strategy, StrategyCtx, honest_answer};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::ledger::Proposal;
use orchestra_protocol::messages::{Challenge, Response};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// Most proposals a farmer attaches to one response.
pub const MAX_PER_RESPONSE: u32 = 64;

/// Proposals queued at most (older ones are dropped: their window has closed anyway).
pub const QUEUE: usize = 256;

/// `confirmation_farmer` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfirmationFarmerParams {
    /// Copied proposals attached per response, `[1, 64]`, default 8.
    pub per_response: u32,
    /// Also execute honestly (default true); otherwise answer with the cheapest sealed response.
    pub execute: bool,
    /// Re-stamp copied evidence as its own probes (default false: copies are verbatim).
    pub forge_evidence: bool,
}

impl Default for ConfirmationFarmerParams {
    fn default() -> Self {
        ConfirmationFarmerParams {
            per_response: 8,
            execute: true,
            forge_evidence: false,
        }
    }
}

impl Params for ConfirmationFarmerParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "per_response",
            min: 1.0,
            max: MAX_PER_RESPONSE as f64,
            default: 8.0,
            kind: KnobKind::Int,
            doc: "copied proposals attached per response",
        },
        Knob {
            name: "execute",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Bool,
            doc: "also execute honestly",
        },
        Knob {
            name: "forge_evidence",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Bool,
            doc: "re-stamp copied evidence as its own probes",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range(
            "per_response",
            f64::from(self.per_response),
            1.0,
            f64::from(MAX_PER_RESPONSE),
        )
    }
}

/// The confirmation_farmer strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct ConfirmationFarmer {
    params: ConfirmationFarmerParams,
    queue: VecDeque<Proposal>,
    seen: BTreeSet<Hash32>,
    seen_order: VecDeque<Hash32>,
}

impl ConfirmationFarmer {
    /// A farmer with `params`.
    pub fn new(params: ConfirmationFarmerParams) -> Self {
        ConfirmationFarmer {
            params,
            queue: VecDeque::new(),
            seen: BTreeSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    fn take(&mut self, ctx: &StrategyCtx<'_>) -> Vec<Proposal> {
        let n = (self.params.per_response as usize).min(self.queue.len());
        let forge = self.params.forge_evidence;
        self.queue
            .drain(..n)
            .map(|mut p| {
                p.observed_block = ctx.block;
                if forge {
                    for e in &mut p.evidence {
                        // A request hash bound to this miner, as its own request would be.
                        e.request_hash = Hash32(
                            *blake3::Hasher::new()
                                .update(ctx.miner.as_bytes())
                                .update(&e.request_hash.0)
                                .finalize()
                                .as_bytes(),
                        );
                        e.started_at_ms = ctx.now_ms.saturating_sub(e.latency_ms);
                    }
                }
                p
            })
            .collect()
    }
}

impl Strategy for ConfirmationFarmer {
    fn name(&self) -> &str {
        "confirmation_farmer"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        if self.params.execute {
            return honest_answer(ctx, challenge);
        }
        let proposals = self.take(ctx);
        minimal_answer(ctx, challenge, proposals)
    }

    fn finalize(
        &mut self,
        ctx: &StrategyCtx<'_>,
        _challenge: &Challenge,
        mut response: Response,
    ) -> Option<Response> {
        // Its own detector may have proposed the same change: a duplicate in one response earns
        // nothing more, so keep only copies of what is not there yet.
        let own: BTreeSet<Hash32> = response
            .ledger_proposals
            .iter()
            .filter_map(|p| p.content_id().ok())
            .collect();
        let copied = self.take(ctx);
        response.ledger_proposals.extend(
            copied
                .into_iter()
                .filter(|p| p.content_id().is_ok_and(|id| !own.contains(&id))),
        );
        Some(response)
    }

    fn observe_peer(&mut self, _challenge: &Challenge, response: &Response) {
        for p in &response.ledger_proposals {
            let Ok(id) = p.content_id() else { continue };
            if !self.seen.insert(id) {
                continue;
            }
            self.seen_order.push_back(id);
            if self.seen_order.len() > 4 * QUEUE
                && let Some(old) = self.seen_order.pop_front()
            {
                self.seen.remove(&old);
            }
            self.queue.push_back(p.clone());
            if self.queue.len() > QUEUE {
                self.queue.pop_front();
            }
        }
    }
}
