//! Canonical JSON (RFC 8785, JCS) and the BLAKE3 hashes Orchestra takes of it.
//!
//! Every hash on the wire is BLAKE3-256 over the JCS form of a JSON value, written as 64 lowercase
//! hex digits. JCS renders every number as an IEEE-754 double (as RFC 8785 requires), so integers
//! above 2^53 lose precision; [`MAX_SAFE_INTEGER`] bounds the integers the protocol accepts in
//! hashed fields.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The largest integer JCS represents exactly (2^53 − 1, JavaScript's `Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A 32-byte digest or random value, written on the wire as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

/// Why text is not a [`Hash32`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The text does not have exactly 64 characters.
    #[error("expected 64 lowercase hex digits, found {0} characters")]
    Length(usize),
    /// A character is not a lowercase hex digit.
    #[error("expected lowercase hex digits, found {0:?}")]
    Digit(char),
}

impl Hash32 {
    /// Hex form, lowercase.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<blake3::Hash> for Hash32 {
    fn from(h: blake3::Hash) -> Self {
        Hash32(*h.as_bytes())
    }
}

impl FromStr for Hash32 {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, HexError> {
        if s.len() != 64 {
            return Err(HexError::Length(s.chars().count()));
        }
        if let Some(c) = s.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(HexError::Digit(c));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| HexError::Length(s.len()))?;
        Ok(Hash32(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A value could not be put in canonical form (a non-finite float, a map with non-string keys).
#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalise value: {0}")]
pub struct CanonicalError(#[from] serde_json::Error);

/// The RFC 8785 (JCS) canonical JSON bytes of `value`.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    Ok(serde_json_canonicalizer::to_vec(value)?)
}

/// BLAKE3-256 of the canonical JSON of `value`: the hash every Orchestra message commits to.
pub fn hash_canonical<T: Serialize>(value: &T) -> Result<Hash32, CanonicalError> {
    let mut hasher = blake3::Hasher::new();
    serde_json_canonicalizer::to_writer(value, &mut HashWriter(&mut hasher))?;
    Ok(hasher.finalize().into())
}

/// Streams canonical bytes straight into the hasher, so large bodies are never buffered twice.
struct HashWriter<'a>(&'a mut blake3::Hasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_round_trips_through_hex() {
        let h: Hash32 = blake3::hash(b"orchestra").into();
        let text = serde_json::to_string(&h).unwrap();
        assert_eq!(text.len(), 66);
        assert_eq!(serde_json::from_str::<Hash32>(&text).unwrap(), h);
    }

    #[test]
    fn hash_rejects_uppercase_and_wrong_length() {
        let upper = "A".repeat(64);
        assert_eq!(upper.parse::<Hash32>(), Err(HexError::Digit('A')));
        assert_eq!("ab".parse::<Hash32>(), Err(HexError::Length(2)));
    }

    #[test]
    fn hash_canonical_equals_hash_of_canonical_bytes() {
        let v = json!({"b": [1, 2.5, "x"], "a": {"z": null, "y": true}});
        let bytes = canonical_json(&v).unwrap();
        assert_eq!(bytes, br#"{"a":{"y":true,"z":null},"b":[1,2.5,"x"]}"#);
        assert_eq!(
            hash_canonical(&v).unwrap(),
            Hash32::from(blake3::hash(&bytes))
        );
    }
}
