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
        let mut out = [0u8; 64];
        hex_into(&self.0, &mut out);
        // Hex digits are ASCII, so this never falls back.
        String::from_utf8(out.to_vec()).unwrap_or_default()
    }

    /// Append the 64 hex digits to `buf` without allocating (what the canonical writers use).
    pub fn write_hex(&self, buf: &mut Vec<u8>) {
        let mut out = [0u8; 64];
        hex_into(&self.0, &mut out);
        buf.extend_from_slice(&out);
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Lowercase hex of 32 bytes (a table lookup per nibble: `hex::encode` goes through a char
/// iterator and showed up in profiles of the proof hot path).
fn hex_into(bytes: &[u8; 32], out: &mut [u8; 64]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
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
    Ok(hash_value(&serde_json::to_value(value)?))
}

/// BLAKE3-256 of the JCS form of a JSON value, streamed into the hasher without building the
/// canonical document (the hot path of proofs: every sub-call body is hashed this way).
///
/// Equal to `blake3(canonical_json(value))` for every value (a property test holds it to that).
pub fn hash_value(value: &serde_json::Value) -> Hash32 {
    let mut hasher = blake3::Hasher::new();
    update_jcs(&mut hasher, value);
    hasher.finalize().into()
}

/// Feed the JCS bytes of `value` into `hasher` (for hashes over several parts, like a proof
/// chain link).
pub fn update_jcs(hasher: &mut blake3::Hasher, value: &serde_json::Value) {
    let mut buf = Vec::with_capacity(1024);
    write_jcs(value, &mut buf, hasher);
    hasher.update(&buf);
}

/// Flush the buffer into the hasher once it holds this much.
const FLUSH_AT: usize = 8 * 1024;

fn write_jcs(value: &serde_json::Value, buf: &mut Vec<u8>, hasher: &mut blake3::Hasher) {
    use serde_json::Value;
    if buf.len() >= FLUSH_AT {
        hasher.update(buf);
        buf.clear();
    }
    match value {
        Value::Null => buf.extend_from_slice(b"null"),
        Value::Bool(true) => buf.extend_from_slice(b"true"),
        Value::Bool(false) => buf.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, buf),
        Value::String(s) => write_string(s, buf),
        Value::Array(items) => {
            buf.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_jcs(item, buf, hasher);
            }
            buf.push(b']');
        }
        Value::Object(map) => {
            buf.push(b'{');
            // JCS orders keys by UTF-16 code units. The map iterates in its own order (sorted by
            // UTF-8 bytes, or insertion order with serde_json's `preserve_order`); when that is
            // already the JCS order — always, for ASCII keys in a sorted map — no sort is needed.
            if keys_in_jcs_order(map) {
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    write_string(k, buf);
                    buf.push(b':');
                    write_jcs(v, buf, hasher);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| utf16_cmp(a.0, b.0));
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    write_string(k, buf);
                    buf.push(b':');
                    write_jcs(v, buf, hasher);
                }
            }
            buf.push(b'}');
        }
    }
}

/// Whether `map` iterates in JCS key order. Each key is scanned once for non-ASCII bytes (ASCII
/// keys compare the same in UTF-16 and UTF-8), instead of twice per adjacent pair.
fn keys_in_jcs_order(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    let mut prev: Option<(&str, bool)> = None;
    for k in map.keys() {
        let ascii = k.is_ascii();
        if let Some((p, p_ascii)) = prev {
            let ordered = if ascii && p_ascii {
                p.as_bytes() < k.as_bytes()
            } else {
                utf16_cmp(p, k).is_lt()
            };
            if !ordered {
                return false;
            }
        }
        prev = Some((k, ascii));
    }
    true
}

fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// Numbers as ECMAScript prints a double (RFC 8785 §3.2.2.3).
fn write_number(n: &serde_json::Number, buf: &mut Vec<u8>) {
    // Integers up to 2^53 print as themselves; anything else goes through the double.
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER) {
        buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else if let Some(u) = n.as_u64().filter(|u| *u <= MAX_SAFE_INTEGER) {
        buf.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        if f == 0.0 {
            buf.push(b'0');
        } else {
            buf.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
        }
    }
}

/// Strings with JCS escaping: `"` and `\`, the short escapes `\b \t \n \f \r`, other control
/// characters as lowercase `\u00xx`, everything else as UTF-8 (serde_json's escaping is exactly
/// this).
fn write_string(s: &str, buf: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    if needs_escape(bytes) {
        write_escaped(bytes, buf);
    } else {
        // The common case (keys, hex, words): one copy.
        buf.extend_from_slice(bytes);
    }
    buf.push(b'"');
}

/// Whether any byte needs escaping; branch-free per 16-byte block so it vectorises.
fn needs_escape(bytes: &[u8]) -> bool {
    let special = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &b| acc | special(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| special(b))
}

/// Escaping as serde_json (and ECMAScript's `JSON.stringify`) does it.
fn write_escaped(bytes: &[u8], buf: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.push(b'\\');
        buf.push(short);
        if short == b'u' {
            buf.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// A `u64` as JCS prints it: exactly up to 2^53 − 1, through the double beyond (what
/// `serde_json::to_value` followed by [`write_number`] gives).
fn write_u64(n: u64, buf: &mut Vec<u8>) {
    if n <= MAX_SAFE_INTEGER {
        buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    } else {
        buf.extend_from_slice(ryu_js::Buffer::new().format_finite(n as f64).as_bytes());
    }
}

/// The JCS bytes of a pipeline step's header (the step without its bodies: what the proof chain
/// commits to), written directly instead of through a `serde_json::Value`. Equal to
/// `canonical_json(&step.header())` for every step (a property test holds it to that).
pub fn write_step_header_jcs(step: &crate::messages::PipelineStep, buf: &mut Vec<u8>) {
    // Keys in JCS (UTF-16) order: cost_rao, endpoint, latency_ms, netuid, receipt, request_hash,
    // response_hash, started_at_ms, step_id, subnet_hotkey.
    buf.extend_from_slice(b"{\"cost_rao\":");
    write_u64(step.cost_rao, buf);
    buf.extend_from_slice(b",\"endpoint\":");
    write_string(&step.endpoint, buf);
    buf.extend_from_slice(b",\"latency_ms\":");
    write_u64(step.latency_ms, buf);
    buf.extend_from_slice(b",\"netuid\":");
    write_u64(u64::from(step.netuid), buf);
    if let Some(r) = &step.receipt {
        buf.extend_from_slice(b",\"receipt\":{\"scheme\":");
        write_string(&r.scheme, buf);
        buf.extend_from_slice(b",\"signature\":");
        write_string(&r.signature, buf);
        buf.push(b'}');
    }
    buf.extend_from_slice(b",\"request_hash\":\"");
    step.request_hash.write_hex(buf);
    buf.extend_from_slice(b"\",\"response_hash\":\"");
    step.response_hash.write_hex(buf);
    buf.extend_from_slice(b"\",\"started_at_ms\":");
    write_u64(step.started_at_ms, buf);
    buf.extend_from_slice(b",\"step_id\":");
    write_string(&step.step_id, buf);
    buf.extend_from_slice(b",\"subnet_hotkey\":");
    write_string(&step.subnet_hotkey, buf);
    buf.push(b'}');
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

    fn arbitrary_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "\\PC{0,8}".prop_map(serde_json::Value::String),
            "[\\x00-\\x1f\"\\\\/a\u{80}\u{fb33}\u{1f600}\u{e000}]{0,6}"
                .prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
                proptest::collection::btree_map(
                    "(\\PC{0,4}|[a\u{e000}\u{1f600}\u{fb33}\r1]{1,3})",
                    inner,
                    0..6
                )
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 2000, ..Default::default() })]

        /// The streaming hasher agrees with the reference JCS implementation on any value.
        #[test]
        fn hash_value_equals_hash_of_reference_jcs(v in arbitrary_value()) {
            let reference = blake3::hash(&serde_json_canonicalizer::to_vec(&v).unwrap());
            proptest::prop_assert_eq!(hash_value(&v), Hash32::from(reference));
        }
    }

    fn arbitrary_u64() -> impl proptest::strategy::Strategy<Value = u64> {
        use proptest::prelude::*;
        prop_oneof![
            0..1000u64,
            (MAX_SAFE_INTEGER - 2)..(MAX_SAFE_INTEGER + 3),
            any::<u64>()
        ]
    }

    fn arbitrary_text() -> impl proptest::strategy::Strategy<Value = String> {
        "[\\x00-\\x1f\"\\\\/a_z0\u{7f}\u{80}\u{2028}\u{fb33}\u{1f600}\u{e000}]{0,12}"
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 2000, ..Default::default() })]

        /// The direct header writer agrees with the reference JCS of the serialised header.
        #[test]
        fn step_header_writer_equals_reference_jcs(
            step_id in arbitrary_text(),
            endpoint in arbitrary_text(),
            subnet_hotkey in arbitrary_text(),
            netuid in proptest::prelude::any::<u16>(),
            hashes in proptest::prelude::any::<([u8; 32], [u8; 32])>(),
            times in (arbitrary_u64(), arbitrary_u64(), arbitrary_u64()),
            receipt in proptest::option::of((arbitrary_text(), arbitrary_text())),
        ) {
            let step = crate::messages::PipelineStep {
                step_id,
                netuid,
                endpoint,
                subnet_hotkey,
                request: None,
                response: None,
                request_hash: Hash32(hashes.0),
                response_hash: Hash32(hashes.1),
                started_at_ms: times.0,
                latency_ms: times.1,
                cost_rao: times.2,
                receipt: receipt.map(|(scheme, signature)| crate::messages::Receipt {
                    scheme,
                    signature,
                }),
            };
            let mut fast = Vec::new();
            write_step_header_jcs(&step, &mut fast);
            proptest::prop_assert_eq!(fast, canonical_json(&step.header()).unwrap());
        }
    }

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        let h = Hash32(std::array::from_fn(|i| (i * 37 + 5) as u8));
        assert_eq!(h.to_hex(), hex::encode(h.0));
        let mut buf = Vec::new();
        h.write_hex(&mut buf);
        assert_eq!(buf, h.to_hex().into_bytes());
        assert_eq!(h.to_hex().parse::<Hash32>().unwrap(), h);
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
