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

/// Splits a subnet's epoch emission among its mechanisms, as subtensor's `split_emissions`:
/// with a split vector, mechanism k gets `alpha · split[k] / 65535` (u128, truncated); without
/// one, an even split. The vector is trimmed or zero-padded to `mechanisms`, and whatever
/// truncation lost is credited to mechanism 0, so the parts add up to `alpha`.
pub fn split_mechanism_emission(alpha: u64, mechanisms: usize, split: Option<&[u16]>) -> Vec<u64> {
    let count = mechanisms.max(1);
    let mut result: Vec<u64> = match split {
        Some(split) => split
            .iter()
            .map(|&s| {
                let v = u128::from(alpha) * u128::from(s) / u128::from(u16::MAX);
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
/// ([`split_mechanism_emission`]); each input's own `emission` field is ignored. All inputs
/// must describe the same uids, and the split entries used (one per mechanism) must not sum
/// above 65535 ([`YumaError::SplitAboveWhole`]): the shares then add up to `alpha` exactly.
pub fn run_mechanisms(
    alpha: u64,
    split: Option<&[u16]>,
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
        let sum: u64 = split
            .iter()
            .take(inputs.len().max(1))
            .map(|&s| u64::from(s))
            .sum();
        if sum > u64::from(u16::MAX) {
            return Err(YumaError::SplitAboveWhole { sum });
        }
    }
    let shares = split_mechanism_emission(alpha, inputs.len(), split);
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
