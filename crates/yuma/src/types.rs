//! Plain input and output records of one epoch (serde, JSON-friendly).

use serde::{Deserialize, Serialize};

/// Mainnet defaults of the epoch hyperparameters (subtensor runtime; see `YUMA.md`).
pub mod defaults {
    /// Blocks per epoch.
    pub const TEMPO: u64 = 360;
    /// Blocks after its last weight update before a validator counts as inactive.
    pub const ACTIVITY_CUTOFF: u64 = 5000;
    /// Consensus majority, as a u16 proportion (32767 ≈ 0.5).
    pub const KAPPA: u16 = 32_767;
    /// Bonds penalty, as a u16 proportion (65535 = bonds follow clipped weights).
    pub const BONDS_PENALTY: u16 = 65_535;
    /// Bonds moving average, in millionths (900_000 ⇒ EMA alpha 0.1).
    pub const BONDS_MOVING_AVERAGE: u64 = 900_000;
    /// Liquid alpha lower bound, u16 proportion (≈0.7).
    pub const ALPHA_LOW: u16 = 45_875;
    /// Liquid alpha upper bound, u16 proportion (≈0.9).
    pub const ALPHA_HIGH: u16 = 58_982;
    /// Liquid alpha sigmoid steepness (divided by 100 on the chain).
    pub const ALPHA_SIGMOID_STEEPNESS: i16 = 1000;
    /// Validator permits handed out per epoch.
    pub const MAX_ALLOWED_VALIDATORS: u16 = 128;
    /// Minimum stake (rao) to keep a non-zero stake weight.
    pub const STAKE_THRESHOLD: u64 = 0;

    pub(crate) fn tempo() -> u64 {
        TEMPO
    }
    pub(crate) fn activity_cutoff() -> u64 {
        ACTIVITY_CUTOFF
    }
    pub(crate) fn kappa() -> u16 {
        KAPPA
    }
    pub(crate) fn bonds_penalty() -> u16 {
        BONDS_PENALTY
    }
    pub(crate) fn bonds_moving_average() -> u64 {
        BONDS_MOVING_AVERAGE
    }
    pub(crate) fn alpha_low() -> u16 {
        ALPHA_LOW
    }
    pub(crate) fn alpha_high() -> u16 {
        ALPHA_HIGH
    }
    pub(crate) fn alpha_sigmoid_steepness() -> i16 {
        ALPHA_SIGMOID_STEEPNESS
    }
    pub(crate) fn max_allowed_validators() -> u16 {
        MAX_ALLOWED_VALIDATORS
    }
}

/// Everything one epoch of one mechanism reads from chain state.
///
/// Only `block`, `emission` and `neurons` are required in JSON; the rest default to mainnet values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochInput {
    /// Current block number.
    pub block: u64,
    /// Subnet tempo in blocks (used for the bond mask when `last_mechanism_step_block` is 0).
    #[serde(default = "defaults::tempo")]
    pub tempo: u64,
    /// Activity cutoff in blocks.
    #[serde(default = "defaults::activity_cutoff")]
    pub activity_cutoff: u64,
    /// Alpha (rao) to distribute this epoch.
    pub emission: u64,
    /// Consensus majority as a u16 proportion.
    #[serde(default = "defaults::kappa")]
    pub kappa: u16,
    /// Bonds penalty as a u16 proportion.
    #[serde(default = "defaults::bonds_penalty")]
    pub bonds_penalty: u16,
    /// Bonds moving average in millionths.
    #[serde(default = "defaults::bonds_moving_average")]
    pub bonds_moving_average: u64,
    /// Yuma 3 (per-validator relative bonds) instead of original Yuma.
    #[serde(default)]
    pub yuma3: bool,
    /// Liquid alpha (only read by Yuma 3, as on the chain).
    #[serde(default)]
    pub liquid_alpha: bool,
    /// Liquid alpha lower bound (u16 proportion).
    #[serde(default = "defaults::alpha_low")]
    pub alpha_low: u16,
    /// Liquid alpha upper bound (u16 proportion).
    #[serde(default = "defaults::alpha_high")]
    pub alpha_high: u16,
    /// Liquid alpha sigmoid steepness.
    #[serde(default = "defaults::alpha_sigmoid_steepness")]
    pub alpha_sigmoid_steepness: i16,
    /// Number of validator permits.
    #[serde(default = "defaults::max_allowed_validators")]
    pub max_allowed_validators: u16,
    /// Minimum stake (rao); smaller stakes are zeroed (except the owner's).
    #[serde(default)]
    pub stake_threshold: u64,
    /// The subnet owner's uid, if the owner hotkey is registered: keeps its self-weight and permit.
    #[serde(default)]
    pub owner_uid: Option<u16>,
    /// Block of the previous successful epoch (0 = unknown: use `block - tempo`).
    #[serde(default)]
    pub last_mechanism_step_block: u64,
    /// One record per uid, indexed by uid.
    pub neurons: Vec<NeuronInput>,
}

/// Per-uid chain state read by the epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronInput {
    /// Combined stake weight in rao (alpha + tao_weight·root, as the chain computes it).
    pub stake: u64,
    /// Stored validator permit (the one from the previous epoch).
    #[serde(default)]
    pub validator_permit: bool,
    /// Block at which this uid was (last) registered.
    #[serde(default)]
    pub registered_at: u64,
    /// Block of this uid's last weight update.
    #[serde(default)]
    pub last_update: u64,
    /// Stored weights row: `(uid, weight)` max-upscaled to u16, in stored order.
    #[serde(default)]
    pub weights: Vec<(u16, u16)>,
    /// Stored bonds row from the previous epoch: `(uid, bond)` as u16.
    #[serde(default)]
    pub bonds: Vec<(u16, u16)>,
    /// Earliest live commit-reveal commit block, if any (masks weights to later registrations).
    #[serde(default)]
    pub commit_block: Option<u64>,
}

/// What the chain persists (and pays out) after one epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochOutput {
    /// Active mask (updated within the activity cutoff).
    pub active: Vec<bool>,
    /// New validator permits (store them as next epoch's `validator_permit`).
    pub validator_permit: Vec<bool>,
    /// Normalised stake weight as u16 (`StakeWeight`).
    pub stake: Vec<u16>,
    /// Consensus as u16.
    pub consensus: Vec<u16>,
    /// Incentive as u16.
    pub incentive: Vec<u16>,
    /// Dividends as u16.
    pub dividends: Vec<u16>,
    /// Validator trust as u16.
    pub validator_trust: Vec<u16>,
    /// New bonds rows (feed back as next epoch's `bonds`); empty for uids without a new permit.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Rao to each uid as a miner.
    pub server_emission: Vec<u64>,
    /// Rao to each uid as a validator.
    pub validator_emission: Vec<u64>,
    /// Combined emission (rao) as recorded in `Emission` storage.
    pub emission: Vec<u64>,
    /// The fixed-point vectors behind the u16 values, as f64 for inspection.
    pub normalized: NormalizedOutput,
}

/// Fixed-point intermediate vectors converted to f64 (informational, not stored on chain).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizedOutput {
    /// Normalised stake.
    pub stake: Vec<f64>,
    /// Normalised active stake.
    pub active_stake: Vec<f64>,
    /// Consensus.
    pub consensus: Vec<f64>,
    /// Incentive.
    pub incentive: Vec<f64>,
    /// Dividends.
    pub dividends: Vec<f64>,
    /// Normalised combined emission.
    pub combined_emission: Vec<f64>,
}
