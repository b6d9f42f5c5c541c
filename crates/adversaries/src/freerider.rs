//! `freerider`: does orchestration only — executes honestly and drops every Ledger proposal, so
//! it never pays the slashing risk of proposing.
//!
//! Defence (docs/mechanism.md §7, §8): the orchestration/Ledger split caps what one product earns
//! near `s`.

use crate::params::{Knob, ParamError, Params};
use orchestra_miner::{Strategy, StrategyCtx};
use orchestra_protocol::messages::{Challenge, Response};
use serde::{Deserialize, Serialize};

/// `freerider` parameters: none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreeriderParams {}

impl Params for FreeriderParams {
    const KNOBS: &'static [Knob] = &[];

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// The freerider strategy (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Freerider;

impl Strategy for Freerider {
    fn name(&self) -> &str {
        "freerider"
    }

    fn finalize(
        &mut self,
        _ctx: &StrategyCtx<'_>,
        _challenge: &Challenge,
        mut response: Response,
    ) -> Option<Response> {
        response.ledger_proposals.clear();
        Some(response)
    }
}

/// `honest` parameters: none (the miner core's [`Honest`](orchestra_miner::Honest) strategy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HonestParams {}

impl Params for HonestParams {
    const KNOBS: &'static [Knob] = &[];

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}
