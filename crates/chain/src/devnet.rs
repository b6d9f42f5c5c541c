//! Local devnets on Chopsticks: storage keys computed from the hashers the metadata declares,
//! the storage that creates a subnet with registered neurons, and the `dev_*` RPCs that write it
//! and produce blocks.
//!
//! Chopsticks runs a real subtensor runtime offline; instead of paying for `register_network` and
//! `burned_register` (which need funded coldkeys, rate limits and many blocks), a devnet writes the
//! resulting storage directly with `dev_setStorage`, then talks to the chain through
//! [`SubtensorChain`](crate::SubtensorChain) with real signed extrinsics. The layout written here
//! is the one the runtime reads; on runtimes that keep stake in `TotalHotkeyAlpha` (dTAO) the
//! stake goes there instead of `TotalHotkeyStake`.

use crate::types::{AccountId, AxonInfo, NetUid, StakeItem};
use parity_scale_codec::Encode;
use sp_crypto_hashing::{blake2_128, twox_64, twox_128};
use subxt::rpcs::client::{RpcClient, rpc_params};

/// How one part of a storage key is hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The SCALE bytes as they are (`Identity`).
    Identity(Vec<u8>),
    /// `blake2_128(bytes) ‖ bytes` (`Blake2_128Concat`).
    Blake2_128Concat(Vec<u8>),
    /// `twox_64(bytes) ‖ bytes` (`Twox64Concat`).
    Twox64Concat(Vec<u8>),
}

/// The raw storage key of `pallet.item` under `parts`.
pub fn storage_key(pallet: &str, item: &str, parts: &[KeyPart]) -> Vec<u8> {
    let mut k = twox_128(pallet.as_bytes()).to_vec();
    k.extend_from_slice(&twox_128(item.as_bytes()));
    for p in parts {
        match p {
            KeyPart::Identity(b) => k.extend_from_slice(b),
            KeyPart::Blake2_128Concat(b) => {
                k.extend_from_slice(&blake2_128(b));
                k.extend_from_slice(b);
            }
            KeyPart::Twox64Concat(b) => {
                k.extend_from_slice(&twox_64(b));
                k.extend_from_slice(b);
            }
        }
    }
    k
}

/// A `(key, value)` pair as `dev_setStorage` takes it: both `0x`-hex.
pub type StoragePair = (String, String);

/// The pair that sets `pallet.item[parts]` to the SCALE encoding of `value`.
pub fn pair(pallet: &str, item: &str, parts: &[KeyPart], value: impl Encode) -> StoragePair {
    (
        format!("0x{}", hex::encode(storage_key(pallet, item, parts))),
        format!("0x{}", hex::encode(value.encode())),
    )
}

fn sub(item: &str, parts: &[KeyPart], value: impl Encode) -> StoragePair {
    pair("SubtensorModule", item, parts, value)
}

fn id16(x: u16) -> KeyPart {
    KeyPart::Identity(x.encode())
}

/// One neuron to register on a devnet subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevNeuron {
    /// Hotkey account.
    pub hotkey: AccountId,
    /// Coldkey owning it.
    pub coldkey: AccountId,
    /// Stake, rao.
    pub stake: u64,
    /// Whether it holds a validator permit.
    pub validator_permit: bool,
    /// Its served endpoint, written directly (so loopback addresses work, which `serve_axon`
    /// refuses).
    pub axon: Option<AxonInfo>,
    /// Free balance to give the hotkey account, rao (it pays extrinsic fees).
    pub free_balance: u64,
}

/// A devnet subnet: its hyperparameters and neurons (uid = position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSubnet {
    /// Subnet id.
    pub netuid: NetUid,
    /// Blocks between epochs.
    pub tempo: u16,
    /// `MinAllowedWeights`.
    pub min_allowed_weights: u16,
    /// `WeightsVersionKey`.
    pub weights_version_key: u64,
    /// `WeightsSetRateLimit`, blocks.
    pub weights_rate_limit: u64,
    /// Registration block recorded for every neuron.
    pub registered_at: u64,
    /// The neurons, uid 0 first.
    pub neurons: Vec<DevNeuron>,
}

/// The storage that creates `subnet` with its neurons, in the layout of a runtime whose stake
/// lives in `stake_item`.
pub fn subnet_storage(subnet: &DevSubnet, stake_item: StakeItem) -> Vec<StoragePair> {
    let netuid = subnet.netuid;
    let n = u16::try_from(subnet.neurons.len()).unwrap_or(u16::MAX);
    let ns = &subnet.neurons;
    let zeros16 = vec![0u16; ns.len()];
    let mut s = vec![
        sub("NetworksAdded", &[id16(netuid)], true),
        sub("TotalNetworks", &[], 1u16),
        sub("SubnetworkN", &[id16(netuid)], n),
        sub("Tempo", &[id16(netuid)], subnet.tempo),
        sub(
            "MinAllowedWeights",
            &[id16(netuid)],
            subnet.min_allowed_weights,
        ),
        sub("MaxWeightsLimit", &[id16(netuid)], u16::MAX),
        sub(
            "WeightsVersionKey",
            &[id16(netuid)],
            subnet.weights_version_key,
        ),
        sub(
            "WeightsSetRateLimit",
            &[id16(netuid)],
            subnet.weights_rate_limit,
        ),
        sub(
            "ValidatorPermit",
            &[id16(netuid)],
            ns.iter().map(|n| n.validator_permit).collect::<Vec<_>>(),
        ),
        sub("Active", &[id16(netuid)], vec![true; ns.len()]),
        sub("Incentive", &[id16(netuid)], zeros16.clone()),
        sub("Dividends", &[id16(netuid)], zeros16.clone()),
        sub("Consensus", &[id16(netuid)], zeros16),
        sub("Emission", &[id16(netuid)], vec![0u64; ns.len()]),
        sub("LastUpdate", &[id16(netuid)], vec![0u64; ns.len()]),
    ];
    for (uid, nr) in ns.iter().enumerate() {
        let uid = u16::try_from(uid).unwrap_or(u16::MAX);
        let hk = || KeyPart::Blake2_128Concat(nr.hotkey.encode());
        s.push(sub("Keys", &[id16(netuid), id16(uid)], nr.hotkey));
        s.push(sub("Uids", &[id16(netuid), hk()], uid));
        s.push(sub("IsNetworkMember", &[hk(), id16(netuid)], true));
        s.push(sub("Owner", &[hk()], nr.coldkey));
        match stake_item {
            StakeItem::TotalHotkeyStake => s.push(sub(
                "TotalHotkeyStake",
                &[KeyPart::Identity(nr.hotkey.encode())],
                nr.stake,
            )),
            StakeItem::TotalHotkeyAlpha => {
                s.push(sub("TotalHotkeyAlpha", &[hk(), id16(netuid)], nr.stake))
            }
        }
        s.push(sub(
            "BlockAtRegistration",
            &[id16(netuid), id16(uid)],
            subnet.registered_at,
        ));
        if let Some(a) = nr.axon {
            // AxonInfo { block, version, ip, port, ip_type, protocol, placeholder1, placeholder2 }
            let value = (
                a.block, a.version, a.ip, a.port, a.ip_type, a.protocol, 0u8, 0u8,
            );
            s.push(sub("Axons", &[id16(netuid), hk()], value));
        }
        if nr.free_balance > 0 {
            s.push(account_balance(&nr.hotkey, nr.free_balance));
        }
    }
    s
}

/// `System.Account(account)` with `free` rao, in the `AccountInfo { nonce, consumers, providers,
/// sufficients: u32, data: { free, reserved, misc_frozen, fee_frozen: u64 } }` layout of the
/// test runtime.
pub fn account_balance(account: &AccountId, free: u64) -> StoragePair {
    let info = (0u32, 0u32, 1u32, 0u32, free, 0u64, 0u64, 0u64);
    pair(
        "System",
        "Account",
        &[KeyPart::Blake2_128Concat(account.encode())],
        info,
    )
}

/// Why a `dev_*` call failed.
#[derive(Debug, thiserror::Error)]
#[error("{method}: {reason}")]
pub struct DevRpcError {
    /// The RPC method.
    pub method: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Writes storage with Chopsticks' `dev_setStorage`.
pub async fn set_storage(rpc: &RpcClient, pairs: Vec<StoragePair>) -> Result<(), DevRpcError> {
    rpc.request::<serde_json::Value>("dev_setStorage", rpc_params![pairs])
        .await
        .map(|_| ())
        .map_err(|e| DevRpcError {
            method: "dev_setStorage",
            reason: e.to_string(),
        })
}

/// Builds one block with Chopsticks' `dev_newBlock` (including whatever the pool holds).
pub async fn new_block(rpc: &RpcClient) -> Result<(), DevRpcError> {
    rpc.request::<serde_json::Value>("dev_newBlock", rpc_params![])
        .await
        .map(|_| ())
        .map_err(|e| DevRpcError {
            method: "dev_newBlock",
            reason: e.to_string(),
        })
}

/// Extrinsics waiting in the pool (`author_pendingExtrinsics`).
pub async fn pending_extrinsics(rpc: &RpcClient) -> Result<usize, DevRpcError> {
    rpc.request::<Vec<serde_json::Value>>("author_pendingExtrinsics", rpc_params![])
        .await
        .map(|v| v.len())
        .map_err(|e| DevRpcError {
            method: "author_pendingExtrinsics",
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_hashers() {
        // twox_128("System") ‖ twox_128("Number"), the well-known key of the block number.
        assert_eq!(
            hex::encode(storage_key("System", "Number", &[])),
            "26aa394eea5630e07c48ae0c9558cef702a5c1b19ab7a04f536c519aca4983ac"
        );
        let k = storage_key(
            "SubtensorModule",
            "Uids",
            &[
                KeyPart::Identity(1u16.encode()),
                KeyPart::Blake2_128Concat(vec![7; 32]),
            ],
        );
        assert_eq!(k.len(), 32 + 2 + 16 + 32);
        assert_eq!(&k[32..34], &[1, 0]);
        assert_eq!(&k[34..50], &blake2_128(&[7; 32]));
    }

    #[test]
    fn subnet_storage_writes_every_neuron() {
        let neuron = |b: u8, vp: bool| DevNeuron {
            hotkey: [b; 32],
            coldkey: [9; 32],
            stake: 1,
            validator_permit: vp,
            axon: None,
            free_balance: 0,
        };
        let subnet = DevSubnet {
            netuid: 1,
            tempo: 10,
            min_allowed_weights: 1,
            weights_version_key: 0,
            weights_rate_limit: 0,
            registered_at: 0,
            neurons: vec![neuron(1, true), neuron(2, false)],
        };
        let s = subnet_storage(&subnet, StakeItem::TotalHotkeyStake);
        let keys = |item: &str| {
            let prefix = format!(
                "0x{}",
                hex::encode(storage_key("SubtensorModule", item, &[]))
            );
            s.iter().filter(|(k, _)| k.starts_with(&prefix)).count()
        };
        assert_eq!(keys("Keys"), 2);
        assert_eq!(keys("TotalHotkeyStake"), 2);
        assert_eq!(keys("TotalHotkeyAlpha"), 0);
        assert_eq!(keys("Axons"), 0);
        let alpha = subnet_storage(&subnet, StakeItem::TotalHotkeyAlpha);
        assert_eq!(alpha.len(), s.len());
    }
}
