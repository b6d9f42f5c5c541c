//! The change log's Merkle commitments: record leaf hashes, tree heads and their signatures,
//! and proof bundles a client can check offline.

use crate::merkle::{self, ProofError};
use crate::model::ChangeRecord;
use orchestra_protocol::hash::CanonicalError;
use orchestra_protocol::keys::verify_signature;
use orchestra_protocol::{Hash32, Hotkey, Scheme, canonical_json};
use serde::{Deserialize, Serialize};

/// Domain tag that opens the signed bytes of a tree head.
pub const STH_DOMAIN: &[u8] = b"orchestra-ledger/sth/1\0";

/// `H(0x00 ‖ JCS(record))`: a record's leaf hash.
pub fn record_leaf_hash(record: &ChangeRecord) -> Result<Hash32, CanonicalError> {
    Ok(merkle::leaf_hash(&canonical_json(record)?))
}

/// An unsigned tree head: the log's size, root and the block of its last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// Number of records.
    pub tree_size: u64,
    /// Merkle root (`MTH` of the records' leaves).
    pub root: Hash32,
    /// Block of the last record (0 for the empty log).
    pub block: u64,
}

impl TreeHead {
    /// The head of the empty log.
    pub fn empty() -> TreeHead {
        TreeHead {
            tree_size: 0,
            root: merkle::empty_root(),
            block: 0,
        }
    }

    /// The exact bytes a validator signs:
    /// `"orchestra-ledger/sth/1\0" ‖ tree_size (u64 BE) ‖ block (u64 BE) ‖ root (32 bytes)`.
    /// Fixed-width binary, so there is no encoding ambiguity to argue about.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STH_DOMAIN.len() + 48);
        out.extend_from_slice(STH_DOMAIN);
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.block.to_be_bytes());
        out.extend_from_slice(&self.root.0);
        out
    }

    /// Sign with the validator's hotkey.
    pub fn sign(&self, hotkey: &Hotkey) -> SignedTreeHead {
        SignedTreeHead {
            head: *self,
            signer: hotkey.ss58(),
            scheme: hotkey.scheme().name().to_string(),
            signature: format!("0x{}", hex::encode(hotkey.sign(&self.signing_bytes()))),
        }
    }
}

/// A tree head signed by a validator's hotkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTreeHead {
    /// The head.
    #[serde(flatten)]
    pub head: TreeHead,
    /// Signer ss58.
    pub signer: String,
    /// `sr25519` or `ed25519`.
    pub scheme: String,
    /// `0x` + hex signature over [`TreeHead::signing_bytes`].
    pub signature: String,
}

/// Why a signed tree head does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SthError {
    /// Unknown scheme, bad address or bad signature encoding.
    #[error("malformed signed tree head: {0}")]
    Malformed(&'static str),
    /// The signature does not verify.
    #[error("tree head signature does not verify")]
    BadSignature,
}

impl SignedTreeHead {
    /// Check the signature against the embedded signer.
    pub fn verify(&self) -> Result<(), SthError> {
        let scheme =
            Scheme::from_name(&self.scheme).ok_or(SthError::Malformed("unknown scheme"))?;
        let (pk, _) = orchestra_protocol::ss58::decode(&self.signer)
            .map_err(|_| SthError::Malformed("bad signer address"))?;
        let raw = self.signature.strip_prefix("0x").unwrap_or(&self.signature);
        let sig: [u8; 64] = hex::decode(raw)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(SthError::Malformed("bad signature encoding"))?;
        if verify_signature(scheme, &pk, &self.head.signing_bytes(), &sig) {
            Ok(())
        } else {
            Err(SthError::BadSignature)
        }
    }
}

/// An inclusion proof of one record against a signed head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The record.
    pub record: ChangeRecord,
    /// Its leaf hash.
    pub leaf_hash: Hash32,
    /// Audit path, leaf to root.
    pub path: Vec<Hash32>,
    /// The head it proves against.
    pub head: SignedTreeHead,
}

impl InclusionProof {
    /// Recompute the leaf from the record and check the path against the head's root.
    pub fn verify(&self) -> Result<(), ProofError> {
        let leaf = record_leaf_hash(&self.record)
            .map_err(|_| ProofError::Mismatch("record cannot be canonicalised"))?;
        if leaf != self.leaf_hash {
            return Err(ProofError::Mismatch("leaf hash does not match the record"));
        }
        merkle::verify_inclusion(
            self.record.seq,
            self.head.head.tree_size,
            &leaf,
            &self.path,
            &self.head.head.root,
        )
    }
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub to: u64,
    /// Root at `from`.
    pub from_root: Hash32,
    /// Root at `to`.
    pub to_root: Hash32,
    /// The proof (RFC 6962 §2.1.2).
    pub path: Vec<Hash32>,
}

impl ConsistencyProof {
    /// Check the proof (RFC 9162 §2.1.4.2).
    pub fn verify(&self) -> Result<(), ProofError> {
        merkle::verify_consistency(
            self.from,
            self.to,
            &self.from_root,
            &self.to_root,
            &self.path,
        )
    }
}
