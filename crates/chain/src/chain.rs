//! The `Chain` trait: every read and write a miner or validator makes, implemented by the live
//! subtensor client and by the simulator.
//!
//! Methods return `impl Future + Send` (return-position impl trait in trait) rather than boxed
//! futures: the tokio client writes `async move { … }` and the futures are `Send` so the node can
//! spawn them; the synchronous simulator returns `std::future::ready(result)` and resolves it with
//! [`resolve_ready`] without an executor. Nothing is allocated per call, and no subxt type shows
//! in a signature. The price is that the trait is not object-safe: code is generic over
//! `C: Chain`, which is what the sans-IO cores want anyway.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use crate::error::ChainError;
use crate::types::{
    AccountId, AxonServe, Hyperparams, MechId, Metagraph, NetUid, RuntimeShape, TempoSchedule,
    TimelockedCommit, TransferLookup, TransferReceipt, TxOutcome, WeightsCommit, WeightsReveal,
    WeightsSubmission,
};

/// Result type of every chain operation.
pub type ChainResult<T> = Result<T, ChainError>;

/// Reads and writes against a subtensor-like chain.
pub trait Chain {
    /// What the runtime supports (fixed per connection; re-detected after a reconnect).
    fn runtime_shape(&self) -> RuntimeShape;

    /// The account that signs extrinsics (the wallet hotkey), if writes are configured.
    fn signer(&self) -> Option<AccountId>;

    /// The latest block number the chain reports (finalized for the live client).
    fn current_block(&self) -> impl Future<Output = ChainResult<u64>> + Send;

    /// Where `netuid` is in its tempo cycle now.
    fn tempo_schedule(
        &self,
        netuid: NetUid,
    ) -> impl Future<Output = ChainResult<TempoSchedule>> + Send;

    /// The neurons of one mechanism of a subnet.
    fn metagraph(
        &self,
        netuid: NetUid,
        mecid: MechId,
    ) -> impl Future<Output = ChainResult<Metagraph>> + Send;

    /// The subnet's hyperparameters.
    fn hyperparams(&self, netuid: NetUid) -> impl Future<Output = ChainResult<Hyperparams>> + Send;

    /// Sets weights with `set_weights` (mecid 0 on runtimes without mechanisms) or
    /// `set_mechanism_weights`.
    fn set_weights(
        &self,
        weights: &WeightsSubmission,
    ) -> impl Future<Output = ChainResult<TxOutcome>> + Send;

    /// Commits a commit-reveal v2 hash (`commit_weights` / `commit_mechanism_weights`).
    fn commit_weights(
        &self,
        commit: &WeightsCommit,
    ) -> impl Future<Output = ChainResult<TxOutcome>> + Send;

    /// Commits timelock-encrypted weights (commit-reveal v4: `commit_timelocked_weights` /
    /// `commit_timelocked_mechanism_weights`); the chain reveals them itself. A runtime without
    /// the call (the default) answers [`ChainError::MissingCall`].
    fn commit_timelocked_weights(
        &self,
        commit: &TimelockedCommit,
    ) -> impl Future<Output = ChainResult<TxOutcome>> + Send {
        let _ = commit;
        std::future::ready(Err(ChainError::MissingCall {
            pallet: "SubtensorModule",
            call: "commit_timelocked_weights",
            spec_version: self.runtime_shape().spec_version,
        }))
    }

    /// Reveals committed weights (`reveal_weights` / `reveal_mechanism_weights`).
    fn reveal_weights(
        &self,
        reveal: &WeightsReveal,
    ) -> impl Future<Output = ChainResult<TxOutcome>> + Send;

    /// Publishes the neuron's endpoint (`serve_axon`).
    fn serve_axon(&self, axon: &AxonServe) -> impl Future<Output = ChainResult<TxOutcome>> + Send;

    /// Anchors up to 128 bytes (e.g. the Ledger head) with `Commitments.set_commitment`, where the
    /// runtime has that pallet.
    fn anchor_commitment(
        &self,
        netuid: NetUid,
        data: &[u8],
    ) -> impl Future<Output = ChainResult<TxOutcome>> + Send;

    /// Transfers `amount_rao` from the signer to `dest` with `Balances.transfer_keep_alive` (the
    /// chain refuses a transfer that would reap the signer's account), waiting as the other
    /// writes do. A chain without TAO transfers (the default) answers
    /// [`ChainError::MissingCall`].
    fn transfer(
        &self,
        dest: &AccountId,
        amount_rao: u64,
    ) -> impl Future<Output = ChainResult<TransferReceipt>> + Send {
        let _ = (dest, amount_rao);
        std::future::ready(Err(ChainError::MissingCall {
            pallet: "Balances",
            call: "transfer_keep_alive",
            spec_version: self.runtime_shape().spec_version,
        }))
    }

    /// The `Balances.Transfer` events of extrinsic `extrinsic_index` of block `block_hash`,
    /// whether that extrinsic succeeded, and whether the block is finalized on the canonical
    /// chain: what a payee checks before honouring a payment. An index without events gives an
    /// empty lookup; a block the node does not know gives [`ChainError::UnknownBlock`]. A chain
    /// that cannot look transfers up (the default) answers [`ChainError::Unsupported`].
    fn transfer_at(
        &self,
        block_hash: [u8; 32],
        extrinsic_index: u32,
    ) -> impl Future<Output = ChainResult<TransferLookup>> + Send {
        let _ = (block_hash, extrinsic_index);
        std::future::ready(Err(ChainError::Unsupported(
            "transfer lookups (transfer_at) on this chain".into(),
        )))
    }
}

/// Polls a future once with a no-op waker and returns its output if it is already complete.
///
/// A synchronous [`Chain`] (the simulator) returns `std::future::ready(..)`; callers in
/// synchronous code get the value with this instead of running an executor.
pub fn resolve_ready<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_futures_resolve_without_an_executor() {
        assert_eq!(resolve_ready(std::future::ready(7)), Some(7));
        assert_eq!(resolve_ready(std::future::pending::<u8>()), None);
    }
}
