//! Client-side mirror of subtensor's weight rules (`do_set_weights` in `subnets/weights.rs`), so a
//! validator learns why a vector would fail before it pays a fee.
//!
//! The order of checks follows the chain's, so the reason returned is the one the chain would
//! give first.

use crate::types::{AccountId, Hyperparams, Metagraph, WeightsSubmission};

/// Why a weight vector would be refused; the chain's error name is in each variant's doc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightsRejection {
    /// `WeightVecNotEqualSize`.
    #[error("{uids} uids but {values} values (WeightVecNotEqualSize)")]
    LengthMismatch {
        /// Number of uids.
        uids: usize,
        /// Number of values.
        values: usize,
    },
    /// `HotKeyNotRegisteredInSubNet` (`NotRegistered` on old runtimes).
    #[error("the signing hotkey is not registered on this subnet (HotKeyNotRegisteredInSubNet)")]
    NotRegistered,
    /// `NotEnoughStakeToSetWeights`.
    #[error(
        "stake {stake} is below the {required} needed to set weights (NotEnoughStakeToSetWeights)"
    )]
    NotEnoughStake {
        /// The caller's stake.
        stake: u64,
        /// The threshold.
        required: u64,
    },
    /// `UidsLengthExceedUidsInSubNet`.
    #[error("{len} uids but the subnet has only {n} neurons (UidsLengthExceedUidsInSubNet)")]
    TooManyUids {
        /// Number of uids sent.
        len: usize,
        /// Neurons in the subnet.
        n: u16,
    },
    /// `IncorrectWeightVersionKey`.
    #[error("version key {got} is below the subnet's {required} (IncorrectWeightVersionKey)")]
    VersionKeyTooLow {
        /// Sent.
        got: u64,
        /// `WeightsVersionKey`.
        required: u64,
    },
    /// `SettingWeightsTooFast`.
    #[error(
        "last update at block {last_update}, rate limit {rate_limit} blocks: wait until block {next_allowed} (SettingWeightsTooFast)"
    )]
    RateLimited {
        /// `LastUpdate` of the caller.
        last_update: u64,
        /// `WeightsSetRateLimit`.
        rate_limit: u64,
        /// First block at which setting is allowed.
        next_allowed: u64,
    },
    /// `DuplicateUids`.
    #[error("uid {uid} appears more than once (DuplicateUids)")]
    DuplicateUid {
        /// The repeated uid.
        uid: u16,
    },
    /// `UidVecContainInvalidOne`.
    #[error("uid {uid} does not exist: the subnet has {n} neurons (UidVecContainInvalidOne)")]
    InvalidUid {
        /// The bad uid.
        uid: u16,
        /// Neurons in the subnet.
        n: u16,
    },
    /// `WeightVecLengthIsLow`.
    #[error("{len} weights but at least {min} are required (WeightVecLengthIsLow)")]
    TooFewWeights {
        /// Weights sent.
        len: usize,
        /// `min(MinAllowedWeights, n)`.
        min: usize,
    },
    /// `MaxWeightExceeded`.
    #[error(
        "uid {uid} gets {upscaled}/65535 after max-upscaling, above the limit {limit} (MaxWeightExceeded)"
    )]
    MaxWeightExceeded {
        /// The offending destination.
        uid: u16,
        /// Its max-upscaled weight.
        upscaled: u16,
        /// `MaxWeightsLimit`.
        limit: u16,
    },
    /// `NeuronNoValidatorPermit` (`NoValidatorPermit` on old runtimes).
    #[error(
        "the signing neuron has no validator permit and this is not a single self-weight (NeuronNoValidatorPermit)"
    )]
    NoValidatorPermit,
    /// `CommitRevealEnabled`: plain `set_weights` is refused while commit-reveal is on.
    #[error(
        "commit-reveal is enabled on this subnet: commit and reveal instead (CommitRevealEnabled)"
    )]
    CommitRevealEnabled,
}

/// Everything the pre-check needs about the subnet and the caller at the submission block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsContext {
    /// Neurons in the subnet (`SubnetworkN`).
    pub subnet_n: u16,
    /// The caller's uid, or `None` when its hotkey is not registered.
    pub caller_uid: Option<u16>,
    /// Whether the caller holds a validator permit.
    pub caller_permit: bool,
    /// The caller's stake.
    pub caller_stake: u64,
    /// `StakeThreshold` (0 when the runtime has none).
    pub min_stake: u64,
    /// The caller's `LastUpdate` for this mechanism.
    pub last_update: u64,
    /// The block the extrinsic will execute in (use the current block + 1 when unknown).
    pub block: u64,
    /// `MinAllowedWeights`.
    pub min_allowed_weights: u16,
    /// `MaxWeightsLimit`.
    pub max_weights_limit: u16,
    /// `WeightsVersionKey`.
    pub weights_version_key: u64,
    /// `WeightsSetRateLimit`.
    pub rate_limit: u64,
    /// `CommitRevealWeightsEnabled` (the rate limit applies only when it is off).
    pub commit_reveal_enabled: bool,
}

impl WeightsContext {
    /// Builds the context for `hotkey` from a metagraph and the subnet's hyperparameters, for an
    /// extrinsic that will execute at `block`.
    pub fn from_metagraph(
        metagraph: &Metagraph,
        hyperparams: &Hyperparams,
        hotkey: &AccountId,
        block: u64,
    ) -> WeightsContext {
        let me = metagraph.neuron_by_hotkey(hotkey);
        WeightsContext {
            subnet_n: metagraph.n(),
            caller_uid: me.map(|n| n.uid),
            caller_permit: me.is_some_and(|n| n.validator_permit),
            caller_stake: me.map_or(0, |n| n.stake),
            min_stake: 0,
            last_update: me.map_or(0, |n| n.last_update),
            block,
            min_allowed_weights: hyperparams.min_allowed_weights,
            max_weights_limit: hyperparams.max_weights_limit,
            weights_version_key: hyperparams.weights_version_key,
            rate_limit: hyperparams.weights_rate_limit,
            commit_reveal_enabled: hyperparams.commit_reveal_enabled.unwrap_or(false),
        }
    }
}

/// Whether `(uids, values)` is a single weight on the caller itself, which the chain lets
/// through the permit, length and max-weight rules.
fn is_self_weight(caller: u16, uids: &[u16], values: &[u16]) -> bool {
    uids.len() == 1 && values.len() == 1 && uids[0] == caller
}

/// Checks a weight vector against the chain's rules, in the chain's order.
///
/// `plain_set` is true for `set_weights`/`set_mechanism_weights` (refused while commit-reveal is
/// on, and rate-limited) and false when checking what will be revealed.
pub fn check_weights(
    ctx: &WeightsContext,
    sub: &WeightsSubmission,
    plain_set: bool,
) -> Result<(), WeightsRejection> {
    let (uids, values) = (&sub.uids, &sub.values);
    if plain_set && ctx.commit_reveal_enabled {
        return Err(WeightsRejection::CommitRevealEnabled);
    }
    if uids.len() != values.len() {
        return Err(WeightsRejection::LengthMismatch {
            uids: uids.len(),
            values: values.len(),
        });
    }
    let Some(caller) = ctx.caller_uid else {
        return Err(WeightsRejection::NotRegistered);
    };
    if ctx.caller_stake < ctx.min_stake {
        return Err(WeightsRejection::NotEnoughStake {
            stake: ctx.caller_stake,
            required: ctx.min_stake,
        });
    }
    if uids.len() > usize::from(ctx.subnet_n) {
        return Err(WeightsRejection::TooManyUids {
            len: uids.len(),
            n: ctx.subnet_n,
        });
    }
    if sub.version_key < ctx.weights_version_key {
        return Err(WeightsRejection::VersionKeyTooLow {
            got: sub.version_key,
            required: ctx.weights_version_key,
        });
    }
    // The chain skips the rate limit for a neuron that never set weights (LastUpdate 0) and
    // while commit-reveal is on (the reveal schedule limits it instead).
    if plain_set
        && !ctx.commit_reveal_enabled
        && ctx.last_update != 0
        && ctx.block.saturating_sub(ctx.last_update) < ctx.rate_limit
    {
        return Err(WeightsRejection::RateLimited {
            last_update: ctx.last_update,
            rate_limit: ctx.rate_limit,
            next_allowed: ctx.last_update.saturating_add(ctx.rate_limit),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for &uid in uids {
        if !seen.insert(uid) {
            return Err(WeightsRejection::DuplicateUid { uid });
        }
    }
    if let Some(&uid) = uids.iter().find(|&&uid| uid >= ctx.subnet_n) {
        return Err(WeightsRejection::InvalidUid {
            uid,
            n: ctx.subnet_n,
        });
    }
    let self_weight = is_self_weight(caller, uids, values);
    let min = usize::from(ctx.min_allowed_weights.min(ctx.subnet_n));
    if !self_weight && values.len() < min {
        return Err(WeightsRejection::TooFewWeights {
            len: values.len(),
            min,
        });
    }
    if !self_weight && ctx.max_weights_limit != u16::MAX {
        let upscaled = max_upscale(values);
        if let Some((i, &up)) = upscaled
            .iter()
            .enumerate()
            .find(|&(_, &w)| w > ctx.max_weights_limit)
        {
            return Err(WeightsRejection::MaxWeightExceeded {
                uid: uids[i],
                upscaled: up,
                limit: ctx.max_weights_limit,
            });
        }
    }
    if !self_weight && !ctx.caller_permit {
        return Err(WeightsRejection::NoValidatorPermit);
    }
    Ok(())
}

/// Scales weights so the largest becomes `u16::MAX` (subtensor's `vec_u16_max_upscale_to_u16`,
/// in integer arithmetic: the chain's fixed-point rounding can differ by one at the boundary).
pub fn max_upscale(values: &[u16]) -> Vec<u16> {
    let max = values.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return values.to_vec();
    }
    values
        .iter()
        .map(|&w| {
            let scaled = u64::from(w) * u64::from(u16::MAX) / u64::from(max);
            u16::try_from(scaled).unwrap_or(u16::MAX)
        })
        .collect()
}

/// Turns float scores into what the SDK sends: max-normalised to `u16::MAX`, rounded, zeros and
/// non-finite or negative scores dropped, uids ascending.
pub fn normalize_weights(scores: &[(u16, f64)]) -> (Vec<u16>, Vec<u16>) {
    let mut kept: Vec<(u16, f64)> = scores
        .iter()
        .copied()
        .filter(|(_, s)| s.is_finite() && *s > 0.0)
        .collect();
    kept.sort_by_key(|(uid, _)| *uid);
    let max = kept.iter().map(|(_, s)| *s).fold(0.0_f64, f64::max);
    let mut uids = Vec::with_capacity(kept.len());
    let mut values = Vec::with_capacity(kept.len());
    if max <= 0.0 {
        return (uids, values);
    }
    for (uid, s) in kept {
        // In range by construction: 0 < s/max ≤ 1.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let v = (s / max * f64::from(u16::MAX)).round() as u16;
        if v > 0 {
            uids.push(uid);
            values.push(v);
        }
    }
    (uids, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> WeightsContext {
        WeightsContext {
            subnet_n: 4,
            caller_uid: Some(0),
            caller_permit: true,
            caller_stake: 1_000,
            min_stake: 0,
            last_update: 0,
            block: 1_000,
            min_allowed_weights: 2,
            max_weights_limit: u16::MAX,
            weights_version_key: 0,
            rate_limit: 100,
            commit_reveal_enabled: false,
        }
    }

    fn sub(uids: &[u16], values: &[u16]) -> WeightsSubmission {
        WeightsSubmission {
            netuid: 1,
            mecid: 0,
            uids: uids.to_vec(),
            values: values.to_vec(),
            version_key: 0,
        }
    }

    #[test]
    fn valid_vector_passes() {
        assert_eq!(
            check_weights(&ctx(), &sub(&[1, 2], &[10, 20]), true),
            Ok(())
        );
    }

    #[test]
    fn length_mismatch() {
        assert_eq!(
            check_weights(&ctx(), &sub(&[1, 2], &[10]), true),
            Err(WeightsRejection::LengthMismatch { uids: 2, values: 1 })
        );
    }

    #[test]
    fn not_registered() {
        let c = WeightsContext {
            caller_uid: None,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[1, 2], &[1, 1]), true),
            Err(WeightsRejection::NotRegistered)
        );
    }

    #[test]
    fn not_enough_stake() {
        let c = WeightsContext {
            min_stake: 5_000,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[1, 2], &[1, 1]), true),
            Err(WeightsRejection::NotEnoughStake {
                stake: 1_000,
                required: 5_000
            })
        );
    }

    #[test]
    fn too_many_uids() {
        assert_eq!(
            check_weights(&ctx(), &sub(&[0, 1, 2, 3, 4], &[1; 5]), true),
            Err(WeightsRejection::TooManyUids { len: 5, n: 4 })
        );
    }

    #[test]
    fn version_key() {
        let c = WeightsContext {
            weights_version_key: 7,
            ..ctx()
        };
        let mut s = sub(&[1, 2], &[1, 1]);
        s.version_key = 6;
        assert_eq!(
            check_weights(&c, &s, true),
            Err(WeightsRejection::VersionKeyTooLow {
                got: 6,
                required: 7
            })
        );
        s.version_key = 7;
        assert_eq!(check_weights(&c, &s, true), Ok(()));
    }

    #[test]
    fn rate_limit_applies_only_after_a_first_update_and_without_cr() {
        let c = WeightsContext {
            last_update: 950,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[1, 2], &[1, 1]), true),
            Err(WeightsRejection::RateLimited {
                last_update: 950,
                rate_limit: 100,
                next_allowed: 1_050
            })
        );
        // Exactly rate_limit blocks later is allowed.
        let later = WeightsContext { block: 1_050, ..c };
        assert_eq!(check_weights(&later, &sub(&[1, 2], &[1, 1]), true), Ok(()));
        // LastUpdate 0: never set, no limit.
        assert_eq!(check_weights(&ctx(), &sub(&[1, 2], &[1, 1]), true), Ok(()));
        // Checking a reveal: no rate limit.
        assert_eq!(check_weights(&c, &sub(&[1, 2], &[1, 1]), false), Ok(()));
    }

    #[test]
    fn commit_reveal_refuses_plain_set() {
        let c = WeightsContext {
            commit_reveal_enabled: true,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[1, 2], &[1, 1]), true),
            Err(WeightsRejection::CommitRevealEnabled)
        );
        assert_eq!(check_weights(&c, &sub(&[1, 2], &[1, 1]), false), Ok(()));
    }

    #[test]
    fn duplicates() {
        assert_eq!(
            check_weights(&ctx(), &sub(&[1, 1], &[1, 1]), true),
            Err(WeightsRejection::DuplicateUid { uid: 1 })
        );
    }

    #[test]
    fn uid_range() {
        assert_eq!(
            check_weights(&ctx(), &sub(&[1, 4], &[1, 1]), true),
            Err(WeightsRejection::InvalidUid { uid: 4, n: 4 })
        );
    }

    #[test]
    fn min_allowed_weights_is_capped_by_n() {
        assert_eq!(
            check_weights(&ctx(), &sub(&[1], &[1]), true),
            Err(WeightsRejection::TooFewWeights { len: 1, min: 2 })
        );
        // MinAllowedWeights 10 on a 4-neuron subnet needs only 4.
        let c = WeightsContext {
            min_allowed_weights: 10,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[0, 1, 2], &[1; 3]), true),
            Err(WeightsRejection::TooFewWeights { len: 3, min: 4 })
        );
        assert_eq!(
            check_weights(&c, &sub(&[0, 1, 2, 3], &[1; 4]), true),
            Ok(())
        );
    }

    #[test]
    fn max_weight_limit() {
        let c = WeightsContext {
            max_weights_limit: 40_000,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[1, 2], &[10, 20]), true),
            Err(WeightsRejection::MaxWeightExceeded {
                uid: 2,
                upscaled: u16::MAX,
                limit: 40_000
            })
        );
        // The upscaled max is always u16::MAX, so any limit below it refuses every vector but a
        // self-weight; u16::MAX means no limit.
        assert_eq!(check_weights(&c, &sub(&[0], &[5]), true), Ok(()));
        let unlimited = WeightsContext {
            max_weights_limit: u16::MAX,
            ..c
        };
        assert_eq!(
            check_weights(&unlimited, &sub(&[1, 2], &[10, 20]), true),
            Ok(())
        );
    }

    #[test]
    fn validator_permit_unless_single_self_weight() {
        let c = WeightsContext {
            caller_permit: false,
            min_allowed_weights: 1,
            max_weights_limit: 1_000,
            ..ctx()
        };
        assert_eq!(
            check_weights(&c, &sub(&[1], &[1]), true),
            Err(WeightsRejection::MaxWeightExceeded {
                uid: 1,
                upscaled: u16::MAX,
                limit: 1_000
            })
        );
        let c = WeightsContext {
            max_weights_limit: u16::MAX,
            ..c
        };
        assert_eq!(
            check_weights(&c, &sub(&[1, 2], &[1, 1]), true),
            Err(WeightsRejection::NoValidatorPermit)
        );
        // A single weight on itself (uid 0) passes permit, length and max-weight rules.
        let strict = WeightsContext {
            min_allowed_weights: 3,
            max_weights_limit: 10,
            ..c
        };
        assert_eq!(check_weights(&strict, &sub(&[0], &[7]), true), Ok(()));
    }

    #[test]
    fn upscale_and_normalize() {
        assert_eq!(max_upscale(&[0, 1, 2]), vec![0, 32_767, 65_535]);
        assert_eq!(max_upscale(&[0, 0]), vec![0, 0]);
        let (uids, values) = normalize_weights(&[(3, 0.5), (1, 1.0), (2, 0.0), (4, f64::NAN)]);
        assert_eq!(uids, vec![1, 3]);
        assert_eq!(values, vec![65_535, 32_768]);
    }
}
