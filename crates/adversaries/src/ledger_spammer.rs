//! `ledger_spammer`: answers honestly, and floods every response with false Ledger proposals.
//!
//! The false claims are plausible in shape and aimed at real entries of its view: a new subnet
//! cloned from an existing entry under an unused netuid; a schema change of an endpoint's output
//! schema (the right `old`, an invented `new`); a deprecation of a live subnet; metrics several
//! times off. Each draw varies netuids and values, so they are not mere duplicates of each other.
//!
//! Defence (docs/mechanism.md §5, §6): probes reject them, each rejection is slashed, and the
//! accuracy prior `(accepted + 1) / (accepted + rejected + 2)` sinks.

use crate::forge::stream;
use crate::params::{Knob, KnobKind, ParamError, Params, check_non_empty, check_range};
use orchestra_miner::Strategy;
use orchestra_miner::StrategyCtx;
use orchestra_protocol::ledger::{Change, Entry, Metrics, Proposal, ProposalChange, Status};
use orchestra_protocol::messages::{Challenge, Response};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A Ledger proposal kind, as a knob value (the protocol's one kind tag).
pub use orchestra_protocol::ledger::ProposalKind as Kind;

/// Most proposals a spammer adds to one response.
pub const MAX_PER_RESPONSE: u32 = 64;

/// `ledger_spammer` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerSpammerParams {
    /// False proposals added to each response, `[0, 64]`, default 4.
    pub per_response: u32,
    /// Kinds drawn from (uniformly), a non-empty subset of `new_subnet`, `schema_update`,
    /// `deprecation`, `metrics_update`; default all four.
    pub kinds: Vec<Kind>,
}

impl Default for LedgerSpammerParams {
    fn default() -> Self {
        LedgerSpammerParams {
            per_response: 4,
            kinds: vec![
                Kind::NewSubnet,
                Kind::SchemaUpdate,
                Kind::Deprecation,
                Kind::MetricsUpdate,
            ],
        }
    }
}

impl Params for LedgerSpammerParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "per_response",
            min: 0.0,
            max: MAX_PER_RESPONSE as f64,
            default: 4.0,
            kind: KnobKind::Int,
            doc: "false proposals per response",
        },
        Knob {
            name: "kinds",
            min: 1.0,
            max: 15.0,
            default: 15.0,
            kind: KnobKind::Subset(&Kind::NAMES),
            doc: "proposal kinds drawn from",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range(
            "per_response",
            f64::from(self.per_response),
            0.0,
            f64::from(MAX_PER_RESPONSE),
        )?;
        check_non_empty("kinds", &self.kinds)
    }
}

/// The ledger_spammer strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct LedgerSpammer {
    params: LedgerSpammerParams,
    rng: ChaCha8Rng,
}

impl LedgerSpammer {
    /// A spammer with `params`; `seed` keys its own RNG stream.
    pub fn new(params: LedgerSpammerParams, seed: u64) -> Self {
        let mut params = params;
        params.kinds.sort();
        params.kinds.dedup();
        LedgerSpammer {
            params,
            rng: stream(seed, "ledger_spammer"),
        }
    }

    /// One false proposal of `kind` against `ctx.view` (`None` if the view offers nothing to
    /// lie about).
    fn forge(&mut self, ctx: &StrategyCtx<'_>, kind: Kind) -> Option<Proposal> {
        let live: Vec<&Entry> = ctx
            .view
            .entries()
            .filter(|e| e.status != Status::Deprecated && !e.endpoints.is_empty())
            .collect();
        let target = *live.get(self.rng.random_range(0..live.len().max(1)))?;
        let change = match kind {
            Kind::NewSubnet => {
                // An unused netuid above the view's, cloned from a live entry.
                let top = ctx.view.entries().map(|e| e.netuid).max().unwrap_or(0);
                let netuid = top.saturating_add(self.rng.random_range(1..=64u16));
                if ctx.view.entry(netuid).is_some() {
                    return None;
                }
                let mut entry = target.clone();
                entry.netuid = netuid;
                entry.name = format!("sn{netuid}");
                entry.version = 1;
                entry.verified_by = Vec::new();
                return Some(Proposal {
                    netuid,
                    change: ProposalChange::NewSubnet {
                        entry: Box::new(entry),
                    },
                    evidence: Vec::new(),
                    observed_block: ctx.block,
                });
            }
            Kind::SchemaUpdate => {
                let i = self.rng.random_range(0..target.endpoints.len());
                let old = target.endpoints.get(i)?.output_schema.clone();
                let field = format!("field_{}", self.rng.random_range(0..1_000_000u32));
                ProposalChange::SchemaUpdate {
                    changes: vec![Change {
                        path: format!("/endpoints/{i}/output_schema"),
                        old,
                        new: json!({
                            "type": "object",
                            "required": [field.clone()],
                            "properties": {field: {"type": "string"}}
                        }),
                    }],
                }
            }
            Kind::Deprecation => ProposalChange::Deprecation {
                reason: format!(
                    "unreachable ({} failed probes)",
                    self.rng.random_range(8..=10)
                ),
            },
            Kind::MetricsUpdate => {
                let m = target.metrics;
                let factor = self.rng.random_range(3.0..8.0);
                let p50 = ((m.p50_latency_ms.max(10) as f64) * factor).round() as u64;
                ProposalChange::MetricsUpdate {
                    metrics: Metrics {
                        p50_latency_ms: p50,
                        p95_latency_ms: p50.saturating_mul(2),
                        reliability: self.rng.random_range(0.2..0.6),
                        cost_per_query_rao: m.cost_per_query_rao,
                    },
                }
            }
        };
        Some(Proposal {
            netuid: target.netuid,
            change,
            evidence: Vec::new(),
            observed_block: ctx.block,
        })
    }
}

impl Strategy for LedgerSpammer {
    fn name(&self) -> &str {
        "ledger_spammer"
    }

    fn finalize(
        &mut self,
        ctx: &StrategyCtx<'_>,
        _challenge: &Challenge,
        mut response: Response,
    ) -> Option<Response> {
        for _ in 0..self.params.per_response {
            let Some(&kind) = self
                .params
                .kinds
                .get(self.rng.random_range(0..self.params.kinds.len().max(1)))
            else {
                break;
            };
            if let Some(p) = self.forge(ctx, kind) {
                response.ledger_proposals.push(p);
            }
        }
        Some(response)
    }
}
