//! The miner adversaries of docs/mechanism.md §8, each a [`Strategy`] of the miner core, and the
//! factory the simulator builds them with from scenario files:
//!
//! ```toml
//! [[miners]]
//! strategy = "fabricator"
//! count = 4
//! params = { rate = 0.5, steps = "one" }
//! ```
//!
//! ```text
//! let mut group = GroupState::default();            // one per [[miners]] block
//! for i in 0..count {
//!     let s = orchestra_adversaries::build(name, &params, &mut group, seed_i)?;
//!     miners.push(Miner::new(hotkey_i, planner, config).with_strategy(s));
//! }
//! ```
//!
//! Every strategy's parameters are a serde struct with defaults (`deny_unknown_fields`); the
//! numeric view of them, for the tuner, is [`knobs`]. Strategies that need randomness outside
//! [`Strategy::answer`] keep their own `ChaCha8Rng`, keyed by the factory's `seed` and the
//! strategy's name, so a run is reproducible and adding one adversary never shifts another's
//! draws. No strategy reads a clock or iterates a hash map.
//!
//! | name | attack | knobs (range, default) | defence it meets |
//! |---|---|---|---|
//! | `honest` | none | — | — |
//! | `fabricator` | invents sub-responses | `rate` \[0,1\] 1; `steps` one\|all one; `pick` first\|nondeterministic first | audits, strikes |
//! | `copycat` | copies a peer's response | `reseal` bool true; `fallback` honest\|decline honest; `same_objective_only` bool false | `lock0`, copy set |
//! | `replayer` | reuses its cached sub-responses | `rate` \[0,1\] 1; `max_age_ms` \[0,30 d\] 0 = ∞; `min_age_ms` \[0,30 d\] 0; `disguise` bool false; `request` fresh\|cached\|rebound fresh | replay set, audits, replay binding |
//! | `ledger_spammer` | false proposals | `per_response` \[0,64\] 4; `kinds` ⊆ {new_subnet, schema_update, deprecation, metrics_update} all | probes, slashing, accuracy prior |
//! | `confirmation_farmer` | re-submits peers' proposals | `per_response` \[1,64\] 8; `execute` bool true; `forge_evidence` bool false | confirmation credit, copied-evidence check |
//! | `stale_router` | never refreshes its Ledger view | `refresh_every` \[0,1e6\] 0 = never | routing, latency terms |
//! | `sybil` | k identities, one pipeline | `share_rate` \[0,1\] 1; `disguise` bool false | copy set, audits |
//! | `cherry_picker` | answers only cheap objectives | `max_cost_rao` \[0,1e9\] 1.3 M; `answer_rate` \[0,1\] 0; `hard` decline\|shell decline; `answer_kinds` list [] | zero per missing challenge |
//! | `freerider` | orchestration only, no proposals | — | the split |
//! | `ledger_only` | Ledger only: probes instead of orchestrating | `target` stalest\|objective stalest; `steps` \[1,16\] 1 | routing term, the split |
//! | `shell_responder` | schema-valid placeholder data, few or no sub-calls | `rate` \[0,1\] 1; `subcalls` \[0,16\] 0 | routing, completeness, fidelity |
//! | `invented_step` | invents non-deterministic, unreceipted sub-responses | `rate` \[0,1\] 1; `steps` \[1,16\] 1; `pick` costliest\|first\|last costliest; `avoid_receipted` bool true; `stable` learn\|ignore learn | receipts; audits via `stable_fields` only |
//! | `adaptive` | switches attacks when its ROI falls | `window` \[1,100\] 3 epochs; `threshold` \[0,1\] 0.8; `attacks` list, `params` table (not knobs) | each inner attack's defence |
//!
//! The validator-side adversaries (`weight_copier`, `colluding_bloc`) are
//! [`ValidatorStrategy`](orchestra_validator::ValidatorStrategy)s of the validator core, built by
//! [`build_validator`] (see [`validators`]).

pub mod adaptive;
pub mod cherry_picker;
pub mod confirmation_farmer;
pub mod copycat;
pub mod fabricator;
pub mod forge;
pub mod freerider;
pub mod invented_step;
pub mod ledger_only;
pub mod ledger_spammer;
pub mod params;
pub mod replayer;
pub mod shell_responder;
pub mod stale_router;
pub mod sybil;
pub mod track;
pub mod validators;

pub use adaptive::{Adaptive, AdaptiveParams};
pub use cherry_picker::{CherryPicker, CherryPickerParams};
pub use confirmation_farmer::{ConfirmationFarmer, ConfirmationFarmerParams};
pub use copycat::{Copycat, CopycatParams};
pub use fabricator::{Fabricator, FabricatorParams};
pub use freerider::{Freerider, FreeriderParams, HonestParams};
pub use invented_step::{InventedStep, InventedStepParams};
pub use ledger_only::{LedgerOnly, LedgerOnlyParams};
pub use ledger_spammer::{LedgerSpammer, LedgerSpammerParams};
pub use params::{Knob, KnobKind, ParamError, Params};
pub use replayer::{ReplayRequest, Replayer, ReplayerParams};
pub use shell_responder::{ShellResponder, ShellResponderParams};
pub use stale_router::{StaleRouter, StaleRouterParams};
pub use sybil::{Sybil, SybilParams, SybilPool};
pub use validators::{
    ColludingBloc, ColludingBlocParams, VALIDATOR_NAMES, ValidatorBuildError, WeightCopier,
    build_validator,
};

use orchestra_miner::{Honest, Strategy};

/// Every strategy name [`build`] accepts: `honest` first, then the §8 miner adversaries.
pub const NAMES: &[&str] = &[
    "honest",
    "fabricator",
    "copycat",
    "replayer",
    "ledger_spammer",
    "confirmation_farmer",
    "stale_router",
    "sybil",
    "cherry_picker",
    "freerider",
    "ledger_only",
    "shell_responder",
    "invented_step",
    "adaptive",
];

/// What the strategies built for one scenario group (`[[miners]]` block) share. Create one per
/// group and pass it to every [`build`] of that group: the `count` identities of a `sybil` group
/// then share one pipeline pool.
#[derive(Debug, Clone, Default)]
pub struct GroupState {
    sybil: Option<SybilPool>,
}

impl GroupState {
    /// The group's sybil pool, if a sybil was built on it.
    pub fn sybil_pool(&self) -> Option<&SybilPool> {
        self.sybil.as_ref()
    }
}

/// Why [`build`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// No strategy of that name.
    #[error("unknown strategy {name:?} (expected one of {})", NAMES.join(", "))]
    UnknownStrategy {
        /// The name asked for.
        name: String,
    },
    /// A bad `params` entry.
    #[error(transparent)]
    Param(#[from] ParamError),
}

impl BuildError {
    /// The offending key inside `params`, if the error is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            BuildError::Param(e) if !e.key.is_empty() => Some(&e.key),
            _ => None,
        }
    }
}

/// Build strategy `strategy` from its scenario `params`, as a member of `group`, with RNG
/// streams keyed by `seed` (give each identity its own seed).
pub fn build(
    strategy: &str,
    params: &toml::Table,
    group: &mut GroupState,
    seed: u64,
) -> Result<Box<dyn Strategy>, BuildError> {
    use params::parse;
    Ok(match strategy {
        "honest" => {
            parse::<HonestParams>(params)?;
            Box::new(Honest)
        }
        "fabricator" => Box::new(Fabricator::new(parse(params)?, seed)),
        "copycat" => Box::new(Copycat::new(parse(params)?)),
        "replayer" => Box::new(Replayer::new(parse(params)?, seed)),
        "ledger_spammer" => Box::new(LedgerSpammer::new(parse(params)?, seed)),
        "confirmation_farmer" => Box::new(ConfirmationFarmer::new(parse(params)?)),
        "stale_router" => Box::new(StaleRouter::new(parse(params)?)),
        "sybil" => {
            let p: SybilParams = parse(params)?;
            let pool = group.sybil.get_or_insert_with(SybilPool::default).clone();
            Box::new(Sybil::new(p, pool, seed))
        }
        "cherry_picker" => Box::new(CherryPicker::new(parse(params)?, seed)),
        "freerider" => {
            parse::<FreeriderParams>(params)?;
            Box::new(Freerider)
        }
        "ledger_only" => Box::new(LedgerOnly::new(parse(params)?)),
        "shell_responder" => Box::new(ShellResponder::new(parse(params)?, seed)),
        "invented_step" => Box::new(InventedStep::new(parse(params)?, seed)),
        // The inner attacks are built here too, on this group and seed.
        "adaptive" => Box::new(Adaptive::build(parse(params)?, group, seed)?),
        other => {
            return Err(BuildError::UnknownStrategy {
                name: other.to_string(),
            });
        }
    })
}

/// The numeric knobs of `strategy` (empty for strategies without any, and for unknown names):
/// what the tuner's inner search varies to find an adversary's best response.
pub fn knobs(strategy: &str) -> &'static [Knob] {
    match strategy {
        "fabricator" => FabricatorParams::KNOBS,
        "copycat" => CopycatParams::KNOBS,
        "replayer" => ReplayerParams::KNOBS,
        "ledger_spammer" => LedgerSpammerParams::KNOBS,
        "confirmation_farmer" => ConfirmationFarmerParams::KNOBS,
        "stale_router" => StaleRouterParams::KNOBS,
        "sybil" => SybilParams::KNOBS,
        "cherry_picker" => CherryPickerParams::KNOBS,
        "ledger_only" => LedgerOnlyParams::KNOBS,
        "shell_responder" => ShellResponderParams::KNOBS,
        "invented_step" => InventedStepParams::KNOBS,
        "adaptive" => AdaptiveParams::KNOBS,
        _ => &[],
    }
}

/// The `params` table that sets `strategy`'s knobs to `point` (one number per knob, in
/// [`knobs`] order; missing trailing numbers keep their defaults): how a tuner turns a point of
/// its search into a scenario entry.
pub fn params_at(strategy: &str, point: &[f64]) -> toml::Table {
    knobs(strategy)
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.name.to_string(),
                k.to_toml(point.get(i).copied().unwrap_or(k.default)),
            )
        })
        .collect()
}
