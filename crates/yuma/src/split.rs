//! Emission splits around the epoch: the per-block alpha split and the mechanism split.

use crate::YumaError;
use crate::epoch::{run_epoch, stake_fits};
use crate::types::{EpochInput, EpochOutput};

/// Default subnet owner cut as a u16 proportion: 11_796 / 65_535 ≈ 18 %, the mainnet value.
pub const DEFAULT_OWNER_CUT: u16 = 11_796;

/// Where one block's alpha emission for a subnet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockSplit {
    /// Paid to the subnet owner immediately.
    pub owner: u64,
    /// Accumulated for the epoch and paid as incentive (server emission).
    pub miners: u64,
    /// Accumulated for the epoch and paid as dividends (validator emission).
    pub validators: u64,
}

/// Splits one block's alpha: the owner takes `owner_cut / 65535` (truncated), the rest is halved
/// between miners and validators (an odd rao goes to validators). The three parts always add up to
/// `alpha`. Use [`DEFAULT_OWNER_CUT`] for mainnet's ≈18 %.
///
/// This is the coinbase's arithmetic in integers, not a bit-exact port of its I96F32 path, which
/// may differ by a rao.
pub fn split_block_emission(alpha: u64, owner_cut: u16) -> BlockSplit {
    let owner = u128::from(alpha) * u128::from(owner_cut) / u128::from(u16::MAX);
    // owner <= alpha because owner_cut <= 65535, so the narrowing cannot truncate.
    let owner = u64::try_from(owner).unwrap_or(alpha);
    let rest = alpha.saturating_sub(owner);
    let miners = rest / 2;
    let split = BlockSplit {
        owner,
        miners,
        validators: rest - miners,
    };
    debug_assert_eq!(
        u128::from(split.owner) + u128::from(split.miners) + u128::from(split.validators),
        u128::from(alpha),
        "the block split does not add up to the block's alpha"
    );
    split
}

/// `GLOBAL_MAX_SUBNET_COUNT`: the stride of the per-mechanism storage index.
pub const GLOBAL_MAX_SUBNET_COUNT: u16 = 4096;
/// `MAX_MECHANISM_COUNT_PER_SUBNET`: the compile-time cap on a subnet's mechanisms
/// (`GLOBAL_MAX_SUBNET_COUNT × 16 = 0x10000`).
pub const MAX_MECHANISM_COUNT_PER_SUBNET: u8 = 16;
/// `MaxMechanismCount`'s default (root may set it to 1..=16 since RaoFoundation/subtensor PR #2183).
pub const DEFAULT_MAX_MECHANISM_COUNT: u8 = 2;
/// `DefaultMaxAllowedUids` (`SubtensorInitialMaxAllowedUids`): `MaxAllowedUids × mechanism count`
/// may not exceed it.
pub const DEFAULT_MAX_ALLOWED_UIDS: u16 = 256;

/// How `split_emissions` treats a stored split whose length is not the mechanism count. The
/// runtimes differ here, and only here (the arithmetic is the same):
///
/// - [`SplitRule::TrimOrPad`]: opentensor/subtensor `pallets/subtensor/src/subnets/mechanism.rs`
///   (commit `0214730b`, the form in runtimes up to spec ≈ 440, 425 included): the vector is
///   truncated or zero-padded to the count.
/// - [`SplitRule::EvenIfMalformed`]: RaoFoundation/subtensor, same file (commit `442b406e`, spec
///   459, after PR #2962 "Fix mechanism emission split"): a wrong-length split counts as unset,
///   so the mechanisms share evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitRule {
    /// Spec ≤ 440: trim or zero-pad to the count; the setter accepts `1 ≤ len ≤ count`.
    TrimOrPad,
    /// Spec 459 (the newest read): a split of the wrong length is an even split; the setter
    /// accepts only `len == count`.
    #[default]
    EvenIfMalformed,
}

/// Why the chain's setters (`sudo_set_mechanism_count`, `sudo_set_mechanism_emission_split`)
/// would refuse a mechanism count or an emission split. The chain reports all but
/// [`MechanismRuleError::TooManyUidsPerMechanism`] as `InvalidValue`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MechanismRuleError {
    /// A subnet has at least one mechanism.
    #[error("a subnet needs at least one mechanism (the chain answers InvalidValue)")]
    ZeroMechanisms,
    /// Above `MaxMechanismCount` (or the compile-time cap of 16).
    #[error("{count} mechanisms, above the limit of {max} (the chain answers InvalidValue)")]
    TooManyMechanisms {
        /// The count asked for.
        count: u8,
        /// `min(MaxMechanismCount, 16)`.
        max: u8,
    },
    /// `MaxAllowedUids × count` above 256.
    #[error(
        "{max_uids} uids × {count} mechanisms is above {limit} (the chain answers TooManyUIDsPerMechanism)"
    )]
    TooManyUidsPerMechanism {
        /// The subnet's `MaxAllowedUids`.
        max_uids: u16,
        /// The count asked for.
        count: u8,
        /// [`DEFAULT_MAX_ALLOWED_UIDS`].
        limit: u16,
    },
    /// An empty split vector.
    #[error("an emission split needs at least one part (the chain answers InvalidValue)")]
    EmptySplit,
    /// A split of a length the runtime's setter refuses.
    #[error(
        "an emission split of {len} parts for {count} mechanisms ({rule:?} needs {need}; the chain answers InvalidValue)"
    )]
    SplitLength {
        /// The split's length.
        len: usize,
        /// The mechanism count.
        count: u8,
        /// The runtime's rule.
        rule: SplitRule,
        /// What that rule needs, in words.
        need: &'static str,
    },
    /// Parts that do not sum to exactly 65535.
    #[error("an emission split's parts sum to {sum}, not 65535 (the chain answers InvalidValue)")]
    SplitSum {
        /// Their sum.
        sum: u64,
    },
}

/// The checks of `do_set_mechanism_count` (RaoFoundation/subtensor `subnets/mechanism.rs`,
/// present since PR #2183): at least one mechanism, at most `min(max_mechanism_count, 16)`, and
/// `max_allowed_uids × count ≤ 256` (`ensure_max_uids_over_all_mechanisms`).
pub fn check_mechanism_count(
    count: u8,
    max_mechanism_count: u8,
    max_allowed_uids: u16,
) -> Result<(), MechanismRuleError> {
    if count == 0 {
        return Err(MechanismRuleError::ZeroMechanisms);
    }
    if count > max_mechanism_count {
        return Err(MechanismRuleError::TooManyMechanisms {
            count,
            max: max_mechanism_count.min(MAX_MECHANISM_COUNT_PER_SUBNET),
        });
    }
    // The chain multiplies saturating in u16 and checks this before the compile-time cap.
    if max_allowed_uids.saturating_mul(u16::from(count)) > DEFAULT_MAX_ALLOWED_UIDS {
        return Err(MechanismRuleError::TooManyUidsPerMechanism {
            max_uids: max_allowed_uids,
            count,
            limit: DEFAULT_MAX_ALLOWED_UIDS,
        });
    }
    if count > MAX_MECHANISM_COUNT_PER_SUBNET {
        return Err(MechanismRuleError::TooManyMechanisms {
            count,
            max: max_mechanism_count.min(MAX_MECHANISM_COUNT_PER_SUBNET),
        });
    }
    Ok(())
}

/// The checks of `do_set_emission_split` for a split of a subnet with `count` mechanisms: not
/// empty, of a length `rule`'s runtime accepts, parts summing to exactly 65535.
pub fn check_emission_split(
    split: &[u16],
    count: u8,
    rule: SplitRule,
) -> Result<(), MechanismRuleError> {
    if split.is_empty() {
        return Err(MechanismRuleError::EmptySplit);
    }
    let (fits, need) = match rule {
        SplitRule::TrimOrPad => (
            split.len() <= usize::from(count),
            "at most one per mechanism",
        ),
        SplitRule::EvenIfMalformed => (split.len() == usize::from(count), "one per mechanism"),
    };
    if !fits {
        return Err(MechanismRuleError::SplitLength {
            len: split.len(),
            count,
            rule,
            need,
        });
    }
    let sum: u64 = split.iter().map(|&s| u64::from(s)).sum();
    if sum != u64::from(u16::MAX) {
        return Err(MechanismRuleError::SplitSum { sum });
    }
    Ok(())
}

/// The per-mechanism storage index `mecid · 4096 + netuid`, in u16 with saturation at each step
/// as `get_mechanism_storage_index` computes it (65535 where it would overflow, a state the
/// chain cannot reach: netuid < 4096, mecid < 16).
pub fn mechanism_storage_index(netuid: u16, mecid: u8) -> u16 {
    u16::from(mecid)
        .saturating_mul(GLOBAL_MAX_SUBNET_COUNT)
        .saturating_add(netuid)
}

/// Splits a subnet's epoch emission among its mechanisms, bit for bit as subtensor's
/// `split_emissions`: with a split vector, mechanism k gets `alpha · split[k] / 65535` (u128,
/// truncated); without one, `alpha / count` each. A vector of the wrong length is trimmed or
/// zero-padded, or ignored (an even split), as `rule` says. Whatever truncation lost is credited
/// to mechanism 0, so the parts add up to `alpha` for any split the setter accepts; like the
/// chain, a stored split summing above 65535 is not corrected and pays out more.
///
/// `mechanisms` of 0 is taken as 1 (the chain's count is at least 1).
pub fn split_mechanism_emission(
    alpha: u64,
    mechanisms: usize,
    split: Option<&[u16]>,
    rule: SplitRule,
) -> Vec<u64> {
    let count = mechanisms.max(1);
    let split = match rule {
        SplitRule::TrimOrPad => split,
        SplitRule::EvenIfMalformed => split.filter(|s| s.len() == count),
    };
    let mut result: Vec<u64> = match split {
        Some(split) => split
            .iter()
            .map(|&s| {
                let v = u128::from(alpha) * u128::from(s) / u128::from(u16::MAX);
                // s ≤ 65535, so v ≤ alpha: the narrowing cannot truncate.
                u64::try_from(v).unwrap_or(u64::MAX)
            })
            .collect(),
        None => vec![alpha / count as u64; count],
    };
    result.resize(count, 0);
    let total = result.iter().fold(0u64, |acc, x| acc.saturating_add(*x));
    let rounding = alpha.saturating_sub(total);
    if let Some(first) = result.first_mut() {
        *first = first.saturating_add(rounding);
    }
    result
}

/// The result of one subnet epoch over several mechanisms.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MechanismsOutput {
    /// Emission handed to each mechanism.
    pub mechanism_emission: Vec<u64>,
    /// Each mechanism's own epoch output (its bonds feed that mechanism's next epoch).
    pub mechanisms: Vec<EpochOutput>,
    /// Per uid, server emission summed over mechanisms.
    pub server_emission: Vec<u64>,
    /// Per uid, validator emission summed over mechanisms.
    pub validator_emission: Vec<u64>,
}

/// Runs one epoch per mechanism on its own weights and bonds, each on its share of `alpha`
/// ([`split_mechanism_emission`] under `rule`); each input's own `emission` field is ignored.
/// All inputs must describe the same uids, and a split must be one the chain can hold: not
/// empty, parts summing to exactly 65535 ([`YumaError::InvalidSplit`]; its length is `rule`'s
/// business, as a legacy split stored under an older runtime may not fit the count). The shares
/// then add up to `alpha` exactly.
pub fn run_mechanisms(
    alpha: u64,
    split: Option<&[u16]>,
    rule: SplitRule,
    inputs: &[EpochInput],
) -> Result<MechanismsOutput, YumaError> {
    let n = inputs.first().map_or(0, |i| i.neurons.len());
    if let Some((k, bad)) = inputs
        .iter()
        .enumerate()
        .find(|(_, i)| i.neurons.len() != n)
    {
        return Err(YumaError::MechanismSizeMismatch {
            mechanism: k,
            n: bad.neurons.len(),
            expected: n,
        });
    }
    if let Some(split) = split {
        // Whatever the runtime, a stored split passed a setter that required this much.
        let lenient = u8::try_from(split.len()).unwrap_or(u8::MAX);
        check_emission_split(split, lenient, SplitRule::TrimOrPad)?;
    }
    let shares = split_mechanism_emission(alpha, inputs.len(), split, rule);
    debug_assert_eq!(
        shares.iter().map(|&s| u128::from(s)).sum::<u128>(),
        u128::from(alpha),
        "mechanism shares do not add up to the epoch's alpha"
    );
    let mut server = vec![0u64; n];
    let mut validator = vec![0u64; n];
    let mut outputs = Vec::with_capacity(inputs.len());
    for (input, &share) in inputs.iter().zip(&shares) {
        let mut input = input.clone();
        input.emission = share;
        let out = run_epoch(&input)?;
        for (acc, e) in server.iter_mut().zip(&out.server_emission) {
            *acc = acc.saturating_add(*e);
        }
        for (acc, e) in validator.iter_mut().zip(&out.validator_emission) {
            *acc = acc.saturating_add(*e);
        }
        outputs.push(out);
    }
    if cfg!(debug_assertions) && inputs.iter().all(stake_fits) {
        let paid: u128 = server
            .iter()
            .chain(&validator)
            .map(|&x| u128::from(x))
            .sum();
        debug_assert!(
            paid <= u128::from(alpha),
            "the mechanisms paid {paid} rao of {alpha}"
        );
    }
    Ok(MechanismsOutput {
        mechanism_emission: shares,
        mechanisms: outputs,
        server_emission: server,
        validator_emission: validator,
    })
}
