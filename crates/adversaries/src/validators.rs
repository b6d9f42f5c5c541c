//! The validator adversaries of docs/mechanism.md §8, each a [`ValidatorStrategy`] of the validator
//! core, and the factory that builds them from scenario files:
//!
//! ```toml
//! [[validators]]
//! behaviour = "colluding_bloc"
//! favourite = "favourites"      # a miner group; the simulator passes its coldkey
//! ```
//!
//! | name | attack | params | defence it meets |
//! |---|---|---|---|
//! | `honest` | none | — | — |
//! | `weight_copier` | sets last epoch's consensus instead of its own scores | — | bonds, commit-reveal |
//! | `colluding_bloc` | puts all its weight on one operator's miners | `favourite_coldkey` (ss58, required) | kappa clipping |
//!
//! Both only change the weights a validator sets; its challenges, audits and Ledger work stay
//! honest (that is what makes them cheap, and what the harness measures).

use crate::params::{Knob, ParamError, Params, parse};
use orchestra_mechanism::combine::MechanismWeights;
use orchestra_validator::{HonestValidator, ValidatorStrategy, WeightsCtx};
use serde::{Deserialize, Serialize};

/// Every validator strategy name [`build_validator`] accepts, `honest` first.
pub const VALIDATOR_NAMES: &[&str] = &["honest", "weight_copier", "colluding_bloc"];

/// Why [`build_validator`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorBuildError {
    /// No validator strategy of that name.
    #[error("unknown validator behaviour {name:?} (expected one of {})", VALIDATOR_NAMES.join(", "))]
    UnknownStrategy {
        /// The name asked for.
        name: String,
    },
    /// A bad `params` entry.
    #[error(transparent)]
    Param(#[from] ParamError),
}

/// Build validator strategy `name` from its `params`.
pub fn build_validator(
    name: &str,
    params: &toml::Table,
) -> Result<Box<dyn ValidatorStrategy>, ValidatorBuildError> {
    Ok(match name {
        "honest" => {
            parse::<NoParams>(params)?;
            Box::new(HonestValidator)
        }
        "weight_copier" => {
            parse::<NoParams>(params)?;
            Box::new(WeightCopier)
        }
        "colluding_bloc" => Box::new(ColludingBloc::new(parse(params)?)),
        other => {
            return Err(ValidatorBuildError::UnknownStrategy {
                name: other.to_string(),
            });
        }
    })
}

/// Parameters of a strategy that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NoParams {}

impl Params for NoParams {
    const KNOBS: &'static [Knob] = &[];

    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// `weight_copier`: sets, on every mechanism, last epoch's consensus weights as the metagraph
/// shows them, instead of its own scores (its own where there is no consensus yet). Under
/// commit-reveal the consensus it sees is a tempo old by the time its copy counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeightCopier;

impl ValidatorStrategy for WeightCopier {
    fn name(&self) -> &str {
        "weight_copier"
    }

    fn weights(
        &mut self,
        ctx: &WeightsCtx<'_>,
        honest: Vec<MechanismWeights>,
    ) -> Vec<MechanismWeights> {
        honest
            .into_iter()
            .map(|own| {
                let Some(consensus) = ctx
                    .consensus
                    .get(usize::from(own.mechanism))
                    .filter(|c| c.iter().any(|&x| x > 0))
                else {
                    return own;
                };
                let (uids, values) = consensus
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x > 0)
                    .map(|(uid, x)| (uid as u16, *x))
                    .unzip();
                MechanismWeights {
                    mechanism: own.mechanism,
                    uids,
                    values,
                }
            })
            .collect()
    }
}

/// `colluding_bloc` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColludingBlocParams {
    /// The coldkey (ss58) whose miners the bloc boosts.
    pub favourite_coldkey: String,
}

impl Params for ColludingBlocParams {
    const KNOBS: &'static [Knob] = &[];
    const EXTRA_KEYS: &'static [(&'static str, &'static str)] = &[(
        "favourite_coldkey",
        "the ss58 coldkey of the miners to boost",
    )];

    fn validate(&self) -> Result<(), ParamError> {
        if self.favourite_coldkey.is_empty() {
            return Err(ParamError::new(
                "favourite_coldkey",
                "the ss58 coldkey of the miners to boost",
                "nothing",
            ));
        }
        Ok(())
    }
}

/// `colluding_bloc`: puts the maximum weight on every miner of one coldkey and none on anyone
/// else, on every mechanism (its own scores while that coldkey has no miner).
#[derive(Debug, Clone, Default)]
pub struct ColludingBloc {
    params: ColludingBlocParams,
}

impl ColludingBloc {
    /// A bloc boosting `params.favourite_coldkey`.
    pub fn new(params: ColludingBlocParams) -> Self {
        ColludingBloc { params }
    }
}

impl ValidatorStrategy for ColludingBloc {
    fn name(&self) -> &str {
        "colluding_bloc"
    }

    fn weights(
        &mut self,
        ctx: &WeightsCtx<'_>,
        honest: Vec<MechanismWeights>,
    ) -> Vec<MechanismWeights> {
        let mut favourites: Vec<u16> = ctx
            .miners
            .iter()
            .filter(|m| m.coldkey.as_deref() == Some(self.params.favourite_coldkey.as_str()))
            .map(|m| m.uid)
            .collect();
        favourites.sort_unstable();
        favourites.dedup();
        if favourites.is_empty() {
            return honest;
        }
        honest
            .into_iter()
            .map(|own| MechanismWeights {
                mechanism: own.mechanism,
                values: vec![u16::MAX; favourites.len()],
                uids: favourites.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use orchestra_validator::MinerInfo;

    fn miner(uid: u16, coldkey: &str) -> MinerInfo {
        MinerInfo {
            uid,
            hotkey: format!("hot{uid}"),
            coldkey: Some(coldkey.to_string()),
            incentive: 0,
        }
    }

    fn own(mechanism: u8) -> MechanismWeights {
        MechanismWeights {
            mechanism,
            uids: vec![1, 2],
            values: vec![65535, 100],
        }
    }

    #[test]
    fn weight_copier_copies_consensus_per_mechanism_and_falls_back_to_its_own() {
        let consensus = vec![vec![0, 0, 7, 0, 9], vec![0; 5]];
        let ctx = WeightsCtx {
            tempo: 3,
            block: 1080,
            miners: &[],
            consensus: &consensus,
        };
        let out = WeightCopier.weights(&ctx, vec![own(0), own(1)]);
        assert_eq!(
            (out[0].uids.clone(), out[0].values.clone()),
            (vec![2, 4], vec![7, 9])
        );
        assert_eq!(out[1], own(1), "no consensus on mechanism 1 yet");
    }

    #[test]
    fn colluding_bloc_boosts_its_coldkeys_miners_only() {
        let miners = [miner(5, "bloc"), miner(3, "other"), miner(2, "bloc")];
        let ctx = WeightsCtx {
            tempo: 0,
            block: 0,
            miners: &miners,
            consensus: &[],
        };
        let mut s = ColludingBloc::new(ColludingBlocParams {
            favourite_coldkey: "bloc".into(),
        });
        let out = s.weights(&ctx, vec![own(0)]);
        assert_eq!(out[0].uids, vec![2, 5]);
        assert_eq!(out[0].values, vec![u16::MAX; 2]);
        let none = ColludingBloc::new(ColludingBlocParams {
            favourite_coldkey: "nobody".into(),
        })
        .weights(&ctx, vec![own(0)]);
        assert_eq!(none, vec![own(0)]);
    }

    #[test]
    fn the_factory_names_bad_input() {
        assert!(matches!(
            build_validator("weight_copyer", &toml::Table::new()),
            Err(ValidatorBuildError::UnknownStrategy { .. })
        ));
        let Err(e) = build_validator("colluding_bloc", &toml::Table::new()) else {
            panic!("a bloc without a favourite must be refused");
        };
        assert!(e.to_string().contains("favourite_coldkey"), "{e}");
        let mut t = toml::Table::new();
        t.insert("rate".into(), toml::Value::Float(0.5));
        assert!(build_validator("weight_copier", &t).is_err());
        assert_eq!(
            build_validator("honest", &toml::Table::new())
                .unwrap()
                .name(),
            "honest"
        );
    }
}
