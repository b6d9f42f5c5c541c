//! SS58 addresses: the text form of a 32-byte public key on Substrate chains.
//!
//! Bittensor uses network prefix 42 (addresses start with `5`). Decoding accepts any simple or
//! full-format prefix, as the SDK's verifier does; encoding uses the prefix you ask for.

use blake2::{Blake2b512, Digest};

/// The SS58 network prefix of Bittensor (and generic Substrate) addresses.
pub const BITTENSOR_PREFIX: u16 = 42;

const CHECKSUM_PREFIX: &[u8] = b"SS58PRE";
const CHECKSUM_LEN: usize = 2;

/// Why a string is not a valid SS58 address of a 32-byte key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ss58Error {
    /// The text is not base58.
    #[error("address is not base58")]
    Base58,
    /// The decoded bytes have the wrong length for a 32-byte key.
    #[error("address decodes to {0} bytes, expected a 32-byte key")]
    Length(usize),
    /// The prefix byte(s) are not a valid SS58 prefix.
    #[error("address has an invalid network prefix")]
    Prefix,
    /// The checksum does not match.
    #[error("address checksum does not match")]
    Checksum,
}

fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = Blake2b512::new();
    h.update(CHECKSUM_PREFIX);
    h.update(data);
    let digest = h.finalize();
    [digest[0], digest[1]]
}

/// Encode a 32-byte public key as an SS58 address with the given network prefix (0..16384).
pub fn encode(public: &[u8; 32], prefix: u16) -> String {
    let prefix = prefix & 0x3fff;
    let mut data = Vec::with_capacity(2 + 32 + CHECKSUM_LEN);
    if prefix < 64 {
        data.push(prefix as u8);
    } else {
        // Two-byte form: six low bits of the first byte and the remaining bits split as the
        // SS58 spec lays them out.
        data.push(((prefix & 0b1111_1100) >> 2) as u8 | 0b0100_0000);
        data.push(((prefix >> 8) as u8) | (((prefix & 0b11) as u8) << 6));
    }
    data.extend_from_slice(public);
    let sum = checksum(&data);
    data.extend_from_slice(&sum);
    bs58::encode(data).into_string()
}

/// Decode an SS58 address into its 32-byte public key and network prefix.
pub fn decode(address: &str) -> Result<([u8; 32], u16), Ss58Error> {
    let data = bs58::decode(address)
        .into_vec()
        .map_err(|_| Ss58Error::Base58)?;
    let (prefix, prefix_len) = match data.first() {
        Some(&b) if b < 64 => (u16::from(b), 1),
        Some(&b) if b < 128 => {
            let second = *data.get(1).ok_or(Ss58Error::Length(data.len()))?;
            let lower = (u16::from(b) << 2) | (u16::from(second) >> 6);
            let upper = u16::from(second & 0b0011_1111);
            ((lower & 0xff) | (upper << 8), 2)
        }
        Some(_) => return Err(Ss58Error::Prefix),
        None => return Err(Ss58Error::Length(0)),
    };
    if data.len() != prefix_len + 32 + CHECKSUM_LEN {
        return Err(Ss58Error::Length(
            data.len().saturating_sub(prefix_len + CHECKSUM_LEN),
        ));
    }
    let body_end = prefix_len + 32;
    if checksum(&data[..body_end]) != data[body_end..] {
        return Err(Ss58Error::Checksum);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&data[prefix_len..body_end]);
    Ok((key, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    const ALICE_HEX: &str = "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d";

    #[test]
    fn alice_round_trips() {
        let (key, prefix) = decode(ALICE).unwrap();
        assert_eq!(hex::encode(key), ALICE_HEX);
        assert_eq!(prefix, BITTENSOR_PREFIX);
        assert_eq!(encode(&key, 42), ALICE);
    }

    #[test]
    fn two_byte_prefix_round_trips() {
        let key = [7u8; 32];
        for prefix in [64u16, 255, 1284, 16383] {
            let text = encode(&key, prefix);
            assert_eq!(decode(&text).unwrap(), (key, prefix), "prefix {prefix}");
        }
    }

    #[test]
    fn corruption_is_detected() {
        let mut chars: Vec<char> = ALICE.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let bad: String = chars.into_iter().collect();
        assert_eq!(decode(&bad), Err(Ss58Error::Checksum));
        assert_eq!(decode("0OIl"), Err(Ss58Error::Base58));
        let short = bs58::encode([42u8, 1, 2, 3]).into_string();
        assert!(matches!(decode(&short), Err(Ss58Error::Length(_))));
    }
}
