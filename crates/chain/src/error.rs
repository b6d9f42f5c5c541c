//! Errors shared by every [`Chain`](crate::Chain) implementation (no subxt types inside, so the
//! simulator returns the same errors the live client does).

use crate::precheck::WeightsRejection;

/// A runtime module error decoded from a failed extrinsic (`DispatchError::Module`) or from the
/// transaction pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    /// Pallet name, e.g. `SubtensorModule`.
    pub pallet: String,
    /// Error variant name, e.g. `DuplicateUids`.
    pub name: String,
    /// The error's doc comment from the metadata, if any.
    pub docs: String,
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}::{}", self.pallet, self.name)?;
        if !self.docs.is_empty() {
            write!(f, " ({})", self.docs)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Could not (re)connect to the node.
    #[error("cannot connect to {url} after {attempts} attempt(s): {reason}")]
    Connect {
        /// Endpoint.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        reason: String,
    },
    /// An RPC or transport failure while doing `what`.
    #[error("RPC failure during {what}: {reason}")]
    Rpc {
        /// The operation (call or storage item).
        what: String,
        /// The underlying error.
        reason: String,
    },
    /// The runtime has no such call.
    #[error("this runtime (spec {spec_version}) has no call {pallet}.{call}")]
    MissingCall {
        /// Pallet name.
        pallet: &'static str,
        /// Call name.
        call: &'static str,
        /// Runtime spec version.
        spec_version: u32,
    },
    /// The runtime has no such storage item.
    #[error("this runtime (spec {spec_version}) has no storage item {pallet}.{item}")]
    MissingStorage {
        /// Pallet name.
        pallet: &'static str,
        /// Storage item name.
        item: &'static str,
        /// Runtime spec version.
        spec_version: u32,
    },
    /// A value read from the chain did not decode as expected.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// The storage item or event.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// The node knows no block with this hash (never produced, pruned, or not yet imported).
    #[error("unknown block 0x{}", hex::encode(block_hash))]
    UnknownBlock {
        /// The hash asked for.
        block_hash: [u8; 32],
    },
    /// A request the runtime cannot express (e.g. a mechanism other than 0 on a runtime without
    /// mechanisms).
    #[error("unsupported on this runtime: {0}")]
    Unsupported(String),
    /// The client-side pre-check refused a weight vector before paying a fee.
    #[error("weights refused before submission: {0}")]
    Rejected(#[from] WeightsRejection),
    /// No signing key was configured, or it cannot sign for this chain.
    #[error("signer: {0}")]
    Signer(String),
    /// The transaction pool refused the extrinsic (bad nonce, insufficient balance to pay fees,
    /// signature, …) before it reached a block.
    #[error("transaction {call} refused by the pool: {reason}")]
    Invalid {
        /// Call name.
        call: String,
        /// The node's message.
        reason: String,
    },
    /// The extrinsic was included but failed with a module error.
    #[error(
        "{call} failed on chain in block 0x{}: {error}",
        hex::encode(block_hash)
    )]
    Dispatch {
        /// Call name.
        call: String,
        /// Block that included it.
        block_hash: [u8; 32],
        /// The decoded module error (boxed to keep `ChainError` small on the happy path).
        error: Box<ModuleError>,
    },
    /// The extrinsic was included but failed with a non-module dispatch error.
    #[error("{call} failed on chain: {reason}")]
    DispatchOther {
        /// Call name.
        call: String,
        /// The dispatch error.
        reason: String,
    },
}

impl ChainError {
    /// The module error name if the chain refused an extrinsic with one (e.g. `DuplicateUids`).
    pub fn module_error(&self) -> Option<&ModuleError> {
        match self {
            ChainError::Dispatch { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether retrying after a reconnect may help (transport trouble, not a refusal).
    pub fn is_transient(&self) -> bool {
        matches!(self, ChainError::Rpc { .. } | ChainError::Connect { .. })
    }
}
