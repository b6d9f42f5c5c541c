//! Plain data exchanged through the [`Chain`](crate::Chain) trait.
//!
//! Nothing here depends on subxt: the simulator builds these with
//! `orchestra-chain = { default-features = false }` and fills them from its own state.

use serde::{Deserialize, Serialize};

/// A subnet id (`NetUid` on chain).
pub type NetUid = u16;
/// A mechanism id inside a subnet (`MechId` on chain); 0 is the main mechanism.
pub type MechId = u8;
/// A raw 32-byte account id (sr25519 or ed25519 public key).
pub type AccountId = [u8; 32];

/// Subtensor's `GLOBAL_MAX_SUBNET_COUNT`: the stride between mechanisms in a storage index.
pub const MECHANISM_STRIDE: u32 = 4096;

/// Which storage item holds a hotkey's stake on this runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StakeItem {
    /// dTAO runtimes: `TotalHotkeyAlpha(hotkey, netuid)`, stake in the subnet's alpha.
    TotalHotkeyAlpha,
    /// Pre-dTAO runtimes: `TotalHotkeyStake(hotkey)`, one TAO stake across subnets.
    TotalHotkeyStake,
}

/// What the connected runtime offers, detected from its metadata at connect time.
///
/// Callers print it (`orchestra-chain info`) and branch on it instead of finding out through a
/// failed extrinsic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeShape {
    /// `spec_name` of the runtime (e.g. `node-subtensor`).
    pub spec_name: String,
    /// `spec_version` of the runtime.
    pub spec_version: u32,
    /// `transaction_version` of the runtime.
    pub transaction_version: u32,
    /// Call index of the `SubtensorModule` pallet (7 on current runtimes, 8 on old ones).
    pub subtensor_pallet_index: u8,
    /// Where stake lives.
    pub stake_item: StakeItem,
    /// Whether `set_mechanism_weights` (and per-mechanism storage) exists.
    pub has_mechanisms: bool,
    /// Whether `Incentive`/`LastUpdate`/`Weights`/`Bonds` are keyed by `mecid * 4096 + netuid`
    /// rather than by plain netuid.
    pub indexed_by_netuid_index: bool,
    /// Whether commit-reveal v2 (`commit_weights`/`reveal_weights`) exists.
    pub has_commit_reveal: bool,
    /// Whether timelocked commit-reveal v4 (`commit_timelocked_weights`) exists.
    pub has_timelocked_commits: bool,
    /// Whether the `Commitments` pallet with `set_commitment` exists.
    pub has_commitments: bool,
    /// Whether the `SubnetInfoRuntimeApi` runtime API exists.
    pub has_subnet_info_api: bool,
    /// The epoch-related features the runtime has (what `orchestra-chain info` reports).
    #[serde(default)]
    pub features: RuntimeFeatures,
}

/// Epoch, mechanism and weight features that changed since the spec-103 test runtime, each
/// detected from the metadata item that carries it (RaoFoundation/subtensor spec 459
/// `pallets/subtensor/src/lib.rs` names them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeFeatures {
    /// `MechanismCountCurrent`: sub-subnet mechanisms.
    pub mechanism_count: bool,
    /// `MechanismEmissionSplit`: a split of emission among mechanisms.
    pub mechanism_emission_split: bool,
    /// `MaxMechanismCount` in storage (root-settable, RaoFoundation/subtensor PR #2183) rather
    /// than a constant.
    pub max_mechanism_count_storage: bool,
    /// `LastEpochBlock`: the stateful epoch scheduler (dynamic tempo).
    pub stateful_epochs: bool,
    /// `trigger_epoch`: the owner may trigger an epoch.
    pub trigger_epoch: bool,
    /// `ActivityCutoffFactorMilli`: the activity cutoff is a factor of tempo.
    pub activity_cutoff_factor: bool,
    /// `Yuma3On`.
    pub yuma3: bool,
    /// `LiquidAlphaOn`.
    pub liquid_alpha: bool,
    /// `BondsResetOn`.
    pub bonds_reset: bool,
    /// `CommitRevealWeightsVersion`: the commit-reveal version is a runtime setting.
    pub commit_reveal_version: bool,
    /// `SubnetOwnerHotkey`: the owner's uid is permitted and keeps its self-weight.
    pub owner_hotkey: bool,
    /// `Rank` and `Trust` are still stored (spec 459 no longer computes them).
    pub rank_and_trust: bool,
}

/// Where a subnet is in its tempo cycle at some block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TempoSchedule {
    /// The block this was read at.
    pub block: u64,
    /// The subnet.
    pub netuid: NetUid,
    /// Blocks between epochs (`Tempo`).
    pub tempo: u16,
    /// The next block at which the subnet's epoch runs (≥ `block`; `u64::MAX` at tempo 0).
    pub next_epoch_block: u64,
    /// The subnet's epoch index as of `block`, its epoch counted if it ran in `block`:
    /// `SubnetEpochIndex` on runtimes with the stateful scheduler, the number of legacy epoch
    /// blocks up to `block` otherwise. Commit-reveal keys on it.
    pub epoch_index: u64,
    /// Whether the runtime runs the stateful scheduler (`LastEpochBlock + tempo`, owner
    /// triggers) rather than the legacy modulo rule.
    pub stateful: bool,
    /// `LastEpochBlock` (stateful runtimes; 0 otherwise).
    pub last_epoch_block: u64,
    /// `PendingEpochAt` (0: none).
    pub pending_epoch_at: u64,
    /// `BlocksSinceLastStep`.
    pub blocks_since_last_step: u64,
}

impl TempoSchedule {
    /// The schedule of `netuid` at `block` under the legacy rule (the spec-103 test runtime and
    /// spec ≤ 440): the epoch runs in the block where `(block + netuid + 1) % (tempo + 1) == 0`.
    pub fn at(block: u64, netuid: NetUid, tempo: u16) -> TempoSchedule {
        let until = blocks_until_next_epoch(netuid, tempo, block);
        TempoSchedule {
            block,
            netuid,
            tempo,
            next_epoch_block: block.saturating_add(until),
            epoch_index: if tempo == 0 {
                0
            } else {
                (block + u64::from(netuid) + 1) / (u64::from(tempo) + 1)
            },
            stateful: false,
            last_epoch_block: 0,
            pending_epoch_at: 0,
            blocks_since_last_step: 0,
        }
    }

    /// The schedule under spec 459's stateful scheduler (RaoFoundation/subtensor
    /// `coinbase/run_coinbase/drain_pending_emissions.rs`): the next epoch is
    /// `LastEpochBlock + tempo`, or an owner-triggered `PendingEpochAt` if sooner.
    pub fn stateful(
        block: u64,
        netuid: NetUid,
        tempo: u16,
        last_epoch_block: u64,
        pending_epoch_at: u64,
        epoch_index: u64,
        blocks_since_last_step: u64,
    ) -> TempoSchedule {
        let next_epoch_block = if tempo == 0 {
            u64::MAX
        } else {
            let auto = last_epoch_block.saturating_add(u64::from(tempo));
            let next = if pending_epoch_at > 0 {
                auto.min(pending_epoch_at)
            } else {
                auto
            };
            // Overdue (the safety net fires it in the next block).
            next.max(block)
        };
        TempoSchedule {
            block,
            netuid,
            tempo,
            next_epoch_block,
            epoch_index,
            stateful: true,
            last_epoch_block,
            pending_epoch_at,
            blocks_since_last_step,
        }
    }

    /// The scheduler state commit-reveal v4 predicts its reveal from.
    pub fn crv4_state(&self) -> crate::crv4::ScheduleState {
        crate::crv4::ScheduleState {
            tempo: self.tempo,
            last_epoch_block: self.last_epoch_block,
            pending_epoch_at: self.pending_epoch_at,
            epoch_index: self.epoch_index,
            blocks_since_last_step: self.blocks_since_last_step,
        }
    }
}

/// Blocks until the next epoch of `netuid` (0 if it runs in `block`), mirroring subtensor's
/// `blocks_until_next_epoch`; a tempo of 0 means the subnet never runs an epoch (`u64::MAX`).
pub fn blocks_until_next_epoch(netuid: NetUid, tempo: u16, block: u64) -> u64 {
    if tempo == 0 {
        return u64::MAX;
    }
    let period = u64::from(tempo) + 1;
    let phase = (block + u64::from(netuid) + 1) % period;
    if phase == 0 { 0 } else { period - phase }
}

/// A served endpoint (`AxonInfo` on chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxonInfo {
    /// Block at which it was served.
    pub block: u64,
    /// Software version the neuron advertised.
    pub version: u32,
    /// IPv4 in the low 32 bits, or IPv6.
    pub ip: u128,
    /// TCP port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    /// Protocol tag (0 = TCP in the SDK).
    pub protocol: u8,
}

impl AxonInfo {
    /// The endpoint as `ip:port` (`[ip]:port` for IPv6), or `None` when the IP type is neither
    /// 4 nor 6 or the IPv4 value does not fit in 32 bits.
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        let ip: std::net::IpAddr = match self.ip_type {
            4 => std::net::Ipv4Addr::from(u32::try_from(self.ip).ok()?).into(),
            6 => std::net::Ipv6Addr::from(self.ip).into(),
            _ => return None,
        };
        Some(std::net::SocketAddr::new(ip, self.port))
    }
}

/// What a neuron asks to serve (`serve_axon` arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxonServe {
    /// Subnet to serve on.
    pub netuid: NetUid,
    /// Software version to advertise.
    pub version: u32,
    /// IP address (the chain refuses loopback, private ranges are accepted as data).
    pub ip: std::net::IpAddr,
    /// TCP port.
    pub port: u16,
    /// Protocol tag (0 = TCP in the SDK).
    pub protocol: u8,
}

impl AxonServe {
    /// The IP as the chain stores it (`u128`) and its type (4 or 6).
    pub fn ip_and_type(&self) -> (u128, u8) {
        match self.ip {
            std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)), 4),
            std::net::IpAddr::V6(v6) => (u128::from(v6), 6),
        }
    }
}

/// One neuron of a metagraph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neuron {
    /// Position in the subnet.
    pub uid: u16,
    /// Hotkey account.
    pub hotkey: AccountId,
    /// Coldkey owning the hotkey, when the runtime records it (`Owner`).
    pub coldkey: Option<AccountId>,
    /// Stake in rao (alpha on dTAO runtimes, TAO before).
    pub stake: u64,
    /// Whether the neuron holds a validator permit.
    pub validator_permit: bool,
    /// Whether the neuron is active (`Active`).
    pub active: bool,
    /// Served endpoint, if any.
    pub axon: Option<AxonInfo>,
    /// Block of its last weight update for this mechanism (`LastUpdate`).
    pub last_update: u64,
    /// Block at which it registered (`BlockAtRegistration`).
    pub registered_at: u64,
    /// Its weights for this mechanism as `(uid, weight)` (`Weights`).
    pub weights: Vec<(u16, u16)>,
    /// Its bonds for this mechanism as `(uid, bond)` (`Bonds`).
    pub bonds: Vec<(u16, u16)>,
    /// Incentive for this mechanism, u16-normalised (`Incentive`).
    pub incentive: u16,
    /// Dividends, u16-normalised (`Dividends`).
    pub dividends: u16,
    /// Consensus, u16-normalised (`Consensus`).
    pub consensus: u16,
    /// Last epoch emission in rao (`Emission`).
    pub emission: u64,
}

/// A subnet mechanism's neurons at one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metagraph {
    /// Subnet.
    pub netuid: NetUid,
    /// Mechanism (0 on runtimes without mechanisms).
    pub mecid: MechId,
    /// Block the snapshot was read at.
    pub block: u64,
    /// Neurons ordered by uid; `neurons[i].uid == i`.
    pub neurons: Vec<Neuron>,
}

impl Metagraph {
    /// The neuron registered with `hotkey`, if any.
    pub fn neuron_by_hotkey(&self, hotkey: &AccountId) -> Option<&Neuron> {
        self.neurons.iter().find(|n| &n.hotkey == hotkey)
    }

    /// Number of neurons (`SubnetworkN`).
    pub fn n(&self) -> u16 {
        u16::try_from(self.neurons.len()).unwrap_or(u16::MAX)
    }
}

/// Subnet hyperparameters a validator needs; optional ones are absent on older runtimes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hyperparams {
    /// Subnet.
    pub netuid: NetUid,
    /// Blocks between epochs.
    pub tempo: u16,
    /// `Rho`.
    pub rho: u16,
    /// `Kappa` (u16-normalised).
    pub kappa: u16,
    /// `ImmunityPeriod` in blocks.
    pub immunity_period: u16,
    /// `MinAllowedWeights`.
    pub min_allowed_weights: u16,
    /// `MaxWeightsLimit` (u16-normalised; `u16::MAX` means no limit).
    pub max_weights_limit: u16,
    /// `WeightsVersionKey`: a submission's version key must be at least this.
    pub weights_version_key: u64,
    /// `WeightsSetRateLimit` in blocks.
    pub weights_rate_limit: u64,
    /// `ActivityCutoff` in blocks.
    pub activity_cutoff: u16,
    /// `MaxAllowedUids`.
    pub max_allowed_uids: u16,
    /// `MaxAllowedValidators`.
    pub max_allowed_validators: u16,
    /// `BondsMovingAverage`.
    pub bonds_moving_average: u64,
    /// `ServingRateLimit` in blocks.
    pub serving_rate_limit: u64,
    /// `CommitRevealWeightsEnabled`, when the runtime has commit-reveal.
    pub commit_reveal_enabled: Option<bool>,
    /// `RevealPeriodEpochs`, when present.
    pub reveal_period_epochs: Option<u64>,
    /// `LiquidAlphaOn`, when present.
    pub liquid_alpha_on: Option<bool>,
    /// `Yuma3On`, when present.
    pub yuma3_on: Option<bool>,
    /// `MechanismCountCurrent` (1 on runtimes without mechanisms).
    pub mechanism_count: u8,
    /// `ActivityCutoffFactorMilli`, when present (spec 459): the cutoff is
    /// `max(1, factor · tempo / 1000)` blocks and `activity_cutoff` is a legacy value.
    pub activity_cutoff_factor_milli: Option<u32>,
    /// `BondsResetOn`, when present.
    pub bonds_reset_on: Option<bool>,
    /// `CommitRevealWeightsVersion`, when present (4: timelocked commits).
    pub commit_reveal_version: Option<u16>,
    /// `MechanismEmissionSplit`, when set (absent: an even split).
    pub mechanism_emission_split: Option<Vec<u16>>,
}

impl Hyperparams {
    /// The activity cutoff the epoch uses, in blocks: from the factor where the runtime has
    /// one (`get_activity_cutoff_blocks`), else `ActivityCutoff`.
    pub fn activity_cutoff_blocks(&self) -> u64 {
        match self.activity_cutoff_factor_milli {
            Some(f) => (u64::from(f) * u64::from(self.tempo) / 1000).max(1),
            None => u64::from(self.activity_cutoff),
        }
    }
}

/// A plain or per-mechanism weight vector to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsSubmission {
    /// Subnet.
    pub netuid: NetUid,
    /// Mechanism; 0 sends `set_weights` where `set_mechanism_weights` does not exist.
    pub mecid: MechId,
    /// Destination uids.
    pub uids: Vec<u16>,
    /// u16 weights, one per uid.
    pub values: Vec<u16>,
    /// The validator's software version key.
    pub version_key: u64,
}

/// A commit-reveal v2 commit (`commit_weights` / `commit_mechanism_weights`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsCommit {
    /// Subnet.
    pub netuid: NetUid,
    /// Mechanism.
    pub mecid: MechId,
    /// [`commit_hash_v2`](crate::commit_hash_v2) of the weights to reveal later.
    pub hash: [u8; 32],
}

/// A commit-reveal v4 commit (`commit_timelocked_weights` /
/// `commit_timelocked_mechanism_weights`): weights timelock-encrypted to a drand round
/// ([`crate::crv4::encrypt`]), which the chain opens itself in the reveal epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelockedCommit {
    /// Subnet.
    pub netuid: NetUid,
    /// Mechanism.
    pub mecid: MechId,
    /// The encrypted `WeightsTlockPayload`, in the chain's layout.
    pub commit: Vec<u8>,
    /// The drand round it opens at.
    pub reveal_round: u64,
    /// `CommitRevealWeightsVersion` (4); the chain refuses any other.
    pub commit_reveal_version: u16,
}

/// A commit-reveal v2 reveal (`reveal_weights` / `reveal_mechanism_weights`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsReveal {
    /// The weights, exactly as hashed at commit time.
    pub weights: WeightsSubmission,
    /// The salt, exactly as hashed at commit time.
    pub salt: Vec<u16>,
}

/// How long to wait for a submitted extrinsic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WaitFor {
    /// Until it is in a best block (fast; may be reorganised away).
    InBlock,
    /// Until its block is finalized.
    #[default]
    Finalized,
}

/// An event emitted by a submitted extrinsic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainEvent {
    /// Pallet name, e.g. `SubtensorModule`.
    pub pallet: String,
    /// Event name, e.g. `WeightsSet`.
    pub name: String,
}

/// The result of an extrinsic the chain accepted and executed successfully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// Extrinsic hash.
    pub tx_hash: [u8; 32],
    /// Hash of the block that includes it.
    pub block_hash: [u8; 32],
    /// Whether that block was reported finalized when we stopped waiting.
    pub finalized: bool,
    /// Events emitted by the extrinsic, in order.
    pub events: Vec<ChainEvent>,
}

/// A TAO transfer the client signed and the chain included (`Balances.transfer_keep_alive`):
/// where to find it again with [`Chain::transfer_at`](crate::Chain::transfer_at), e.g. as the
/// proof of an x402 pay-per-call payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferReceipt {
    /// Hash of the block that includes the transfer.
    pub block_hash: [u8; 32],
    /// Number of that block (from its header).
    pub block_number: u64,
    /// Position of the transfer extrinsic in the block (the events' `ApplyExtrinsic` phase).
    pub extrinsic_index: u32,
    /// Whether the block was reported finalized when the client stopped waiting (always with
    /// [`WaitFor::Finalized`]; with [`WaitFor::InBlock`] it may still be reorganised away).
    pub finalized: bool,
}

/// One `Balances.Transfer` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The paying account.
    pub from: AccountId,
    /// The receiving account.
    pub to: AccountId,
    /// Amount moved, rao.
    pub amount_rao: u64,
}

/// What one extrinsic of one block did with balances, as read back from the block's events by
/// [`Chain::transfer_at`](crate::Chain::transfer_at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferLookup {
    /// Number of the block.
    pub block_number: u64,
    /// Number of the finalized head when the block was looked up (how old the block is).
    pub finalized_head: u64,
    /// Whether the block is finalized and on the canonical chain: its number is at most the
    /// finalized head's and the canonical hash at that number is this block's.
    pub finalized: bool,
    /// Whether the extrinsic emitted `System.ExtrinsicSuccess` (false for a failed extrinsic and
    /// for an index the block has no events for).
    pub succeeded: bool,
    /// The `Balances.Transfer` events the extrinsic emitted, in order.
    pub transfers: Vec<Transfer>,
}

/// The CAIP-2 chain id of a Bittensor chain, `bittensor:` followed by the first 16 bytes of its
/// genesis hash in lowercase hex (the convention CAIP-13 uses for Substrate chains), e.g. the
/// network an x402 payment requirement names.
pub fn caip2_network(genesis_hash: &[u8; 32]) -> String {
    format!("bittensor:{}", hex::encode(&genesis_hash[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_runs_when_block_plus_netuid_plus_one_divides_tempo_plus_one() {
        // netuid 1, tempo 10: epochs at blocks 9, 20, 31, …
        assert_eq!(blocks_until_next_epoch(1, 10, 9), 0);
        assert_eq!(blocks_until_next_epoch(1, 10, 10), 10);
        assert_eq!(TempoSchedule::at(12, 1, 10).next_epoch_block, 20);
        assert_eq!(blocks_until_next_epoch(1, 0, 5), u64::MAX);
    }

    #[test]
    fn axon_addresses() {
        let serve = AxonServe {
            netuid: 1,
            version: 1,
            ip: "10.1.2.3".parse().unwrap(),
            port: 8091,
            protocol: 0,
        };
        let (ip, ip_type) = serve.ip_and_type();
        assert_eq!((ip, ip_type), (0x0a01_0203, 4));
        let info = AxonInfo {
            block: 0,
            version: 1,
            ip,
            port: 8091,
            ip_type,
            protocol: 0,
        };
        assert_eq!(info.socket_addr(), Some("10.1.2.3:8091".parse().unwrap()));
        let v6 = AxonInfo {
            ip: u128::from(std::net::Ipv6Addr::LOCALHOST),
            ip_type: 6,
            ..info
        };
        assert_eq!(v6.socket_addr(), Some("[::1]:8091".parse().unwrap()));
        assert_eq!(AxonInfo { ip_type: 5, ..info }.socket_addr(), None);
    }

    #[test]
    fn caip2_network_is_the_first_16_genesis_bytes() {
        // 00 11 22 … ff, then bytes that must not show.
        let mut genesis = [0x99u8; 32];
        for (i, b) in genesis.iter_mut().take(16).enumerate() {
            *b = u8::try_from(i).unwrap() * 0x11;
        }
        assert_eq!(
            caip2_network(&genesis),
            "bittensor:00112233445566778899aabbccddeeff"
        );
        assert_eq!(caip2_network(&[0xAB; 32]).len(), "bittensor:".len() + 32);
    }

    #[test]
    fn transfer_types_round_trip_through_json() {
        let receipt = TransferReceipt {
            block_hash: [1; 32],
            block_number: 7,
            extrinsic_index: 2,
            finalized: true,
        };
        let json = serde_json::to_string(&receipt).unwrap();
        assert_eq!(
            serde_json::from_str::<TransferReceipt>(&json).unwrap(),
            receipt
        );
        let lookup = TransferLookup {
            block_number: 7,
            finalized_head: 9,
            finalized: false,
            succeeded: true,
            transfers: vec![Transfer {
                from: [2; 32],
                to: [3; 32],
                amount_rao: 5,
            }],
        };
        let json = serde_json::to_string(&lookup).unwrap();
        assert_eq!(
            serde_json::from_str::<TransferLookup>(&json).unwrap(),
            lookup
        );
    }
}
