//! Commit-reveal v2 hashing and per-mechanism storage indices, exactly as subtensor computes them.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use parity_scale_codec::Encode;

use crate::types::{AccountId, MECHANISM_STRIDE, MechId, NetUid, WeightsCommit, WeightsReveal};

/// The storage index of a mechanism's per-mechanism items (`Incentive`, `LastUpdate`,
/// `Weights`, `Bonds`, …): `mecid * 4096 + netuid`, or `None` if it overflows `u16` (the chain
/// never creates such a mechanism).
pub fn netuid_index(netuid: NetUid, mecid: MechId) -> Option<u16> {
    let idx = u32::from(mecid) * MECHANISM_STRIDE + u32::from(netuid);
    u16::try_from(idx).ok()
}

/// BlakeTwo256 (blake2b with a 32-byte output), the runtime's `Hashing`.
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// The commit-reveal v2 commit hash: `BlakeTwo256(SCALE(hotkey, netuid_index, uids, values, salt,
/// version_key))`, which `reveal_weights` recomputes from the revealed data.
///
/// `netuid_index` is the plain netuid on runtimes without mechanisms (see [`netuid_index`]).
pub fn commit_hash_v2(
    hotkey: &AccountId,
    netuid_index: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    let encoded = (hotkey, netuid_index, uids, values, salt, version_key).encode();
    blake2_256(&encoded)
}

/// The commit `commit_weights` takes for `reveal` by `hotkey`: [`commit_hash_v2`] under the
/// mechanism's netuid index on runtimes that key commits by it
/// (`RuntimeShape::indexed_by_netuid_index`), under the bare netuid on older ones.
pub fn commit_for(
    hotkey: &AccountId,
    reveal: &WeightsReveal,
    indexed_by_netuid_index: bool,
) -> WeightsCommit {
    let w = &reveal.weights;
    let index = if indexed_by_netuid_index {
        netuid_index(w.netuid, w.mecid).unwrap_or(w.netuid)
    } else {
        w.netuid
    };
    WeightsCommit {
        netuid: w.netuid,
        mecid: w.mecid,
        hash: commit_hash_v2(
            hotkey,
            index,
            &w.uids,
            &w.values,
            &reveal.salt,
            w.version_key,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netuid_index_is_mecid_times_4096_plus_netuid() {
        assert_eq!(netuid_index(1, 0), Some(1));
        assert_eq!(netuid_index(1, 1), Some(4097));
        assert_eq!(netuid_index(119, 2), Some(2 * 4096 + 119));
        assert_eq!(netuid_index(4095, 15), Some(65_535));
        assert_eq!(netuid_index(0, 16), None);
    }

    /// The SCALE layout spelled out byte by byte, hashed with blake2b-256 independently of
    /// parity-scale-codec, so a change in how we encode shows up here.
    #[test]
    fn commit_hash_matches_explicit_layout() {
        let hotkey: AccountId = std::array::from_fn(|i| u8::try_from(i).unwrap_or(0) + 1);
        let (uids, values, salt) = ([0u16, 1, 300], [65_535u16, 2, 0x1234], [7u16, 8]);
        let mut bytes = hotkey.to_vec();
        bytes.extend_from_slice(&[0x01, 0x10]); // netuid_index 4097 (mecid 1, netuid 1), LE
        bytes.push(3 << 2); // compact(3)
        bytes.extend_from_slice(&[0, 0, 1, 0, 0x2c, 0x01]);
        bytes.push(3 << 2);
        bytes.extend_from_slice(&[0xff, 0xff, 2, 0, 0x34, 0x12]);
        bytes.push(2 << 2);
        bytes.extend_from_slice(&[7, 0, 8, 0]);
        bytes.extend_from_slice(&42u64.to_le_bytes());
        let mut h = Blake2b::<U32>::new();
        h.update(&bytes);
        let expected: [u8; 32] = h.finalize().into();
        let got = commit_hash_v2(&hotkey, 4097, &uids, &values, &salt, 42);
        assert_eq!(got, expected);
        // Committed vector: catches a change in the hash function or layout.
        assert_eq!(hex::encode(got), COMMIT_VECTOR);
    }

    // Cross-checked with Python: hashlib.blake2b(layout, digest_size=32).
    const COMMIT_VECTOR: &str = "98607d32d32b72872bbe344b3a151cfddae10123a5c271d396209c779f4760d4";
}
