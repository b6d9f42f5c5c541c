//! [`Body`]: a JSON request or response body that is shared rather than copied, and hashed at
//! most once.
//!
//! One sub-call's bodies pass through many hands: the miner hashes the request it sends and the
//! response it gets back, the subnet hashes both to sign a receipt, the proof carries them, and
//! the validator hashes them again to check the proof. Across processes each side must hash what
//! it received, and does: a deserialized `Body` starts without a hash. Inside one process (a node
//! forwarding bodies, or the simulator passing messages between actors) the same immutable value
//! is behind every handle, so its canonical hash is computed once and remembered.
//!
//! This is memoisation of a pure function of an immutable value, not trust: there is no way to
//! change a `Body`'s value while keeping its hash. Changing one (as a tampering adversary does)
//! goes through [`Body::make_mut`] or [`Body::new`], and either starts without a hash.

use crate::hash::{Hash32, hash_value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// An immutable JSON body, cheap to clone, whose canonical BLAKE3 hash is computed at most once.
///
/// Serializes and deserializes exactly as the [`Value`] it holds.
#[derive(Clone)]
pub struct Body(Arc<Inner>);

struct Inner {
    value: Value,
    hash: OnceLock<Hash32>,
}

impl Body {
    /// Wrap `value`; its hash is computed on the first [`Body::hash`].
    pub fn new(value: Value) -> Self {
        Body(Arc::new(Inner {
            value,
            hash: OnceLock::new(),
        }))
    }

    /// The JSON value.
    pub fn value(&self) -> &Value {
        &self.0.value
    }

    /// BLAKE3 of the value's canonical JSON ([`hash_value`]), computed on first use.
    pub fn hash(&self) -> Hash32 {
        *self.0.hash.get_or_init(|| hash_value(&self.0.value))
    }

    /// The value, to change in place: this handle becomes a body of its own (the value is copied
    /// if other handles share it) whose hash is computed afresh. Other handles are unaffected.
    pub fn make_mut(&mut self) -> &mut Value {
        if Arc::get_mut(&mut self.0).is_none() {
            *self = Body::new(self.0.value.clone());
        }
        let inner =
            Arc::get_mut(&mut self.0).unwrap_or_else(|| unreachable!("a fresh Arc is unique"));
        inner.hash = OnceLock::new();
        &mut inner.value
    }

    /// The value, moved out when this is the only handle and copied otherwise.
    pub fn into_value(self) -> Value {
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner.value,
            Err(shared) => shared.value.clone(),
        }
    }
}

impl Deref for Body {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0.value
    }
}

impl From<Value> for Body {
    fn from(value: Value) -> Self {
        Body::new(value)
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.value == other.0.value
    }
}

impl PartialEq<Value> for Body {
    fn eq(&self, other: &Value) -> bool {
        self.0.value == *other
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl fmt::Display for Body {
    /// The value as compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Body::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_is_the_canonical_hash_and_survives_clones() {
        let v = json!({"b": [1, 2.5, "x"], "a": {"z": null, "y": true}});
        let body = Body::new(v.clone());
        let copy = body.clone();
        assert_eq!(body.hash(), hash_value(&v));
        // The clone shares the computed hash and the value.
        assert!(copy.0.hash.get().is_some());
        assert_eq!(copy.hash(), hash_value(&v));
        assert_eq!(copy, v);
    }

    #[test]
    fn serde_is_the_value_and_a_decoded_body_hashes_afresh() {
        let v = json!({"k": [1, {"n": "é"}]});
        let body = Body::new(v.clone());
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text, serde_json::to_string(&v).unwrap());
        let back: Body = serde_json::from_str(&text).unwrap();
        assert!(back.0.hash.get().is_none());
        assert_eq!(back.hash(), body.hash());
        assert_eq!(back, body);
    }

    #[test]
    fn a_different_value_is_a_different_body() {
        let body = Body::new(json!({"n": 1}));
        let _ = body.hash();
        let mut v = body.clone().into_value();
        v["n"] = json!(2);
        let tampered = Body::new(v.clone());
        assert_ne!(tampered.hash(), body.hash());
        assert_eq!(tampered.hash(), hash_value(&v));
        assert_ne!(tampered, body);
    }

    #[test]
    fn make_mut_forgets_the_hash_and_leaves_other_handles_alone() {
        let mut body = Body::new(json!({"n": 1}));
        let before = body.hash();
        let shared = body.clone();
        body.make_mut()["n"] = json!(2);
        assert_eq!(body.hash(), hash_value(&json!({"n": 2})));
        assert_eq!(shared.hash(), before);
        assert_eq!(*shared, json!({"n": 1}));
        // Unique handle: changed in place, hash forgotten.
        body.make_mut()["n"] = json!(3);
        assert_eq!(body.hash(), hash_value(&json!({"n": 3})));
    }

    #[test]
    fn into_value_moves_or_copies() {
        let body = Body::new(json!([1, 2, 3]));
        let other = body.clone();
        assert_eq!(body.into_value(), json!([1, 2, 3]));
        assert_eq!(other.into_value(), json!([1, 2, 3]));
    }
}
