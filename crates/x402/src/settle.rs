//! Settlement: does a transfer pay? Behind [`SettlementVerifier`], with the TAO-transfer
//! verifier that reads the chain ([`TaoTransferVerifier`]) and a test double
//! ([`TestSettlement`]); both judge a [`TransferLookup`] with the same rule ([`received`]).

use orchestra_chain::{AccountId, Chain, TransferLookup};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// A boxed `Send` future: what the object-safe verifier trait returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a transfer does not pay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// The chain does not know the block, or could not be read.
    #[error("the chain could not confirm the transfer: {0}")]
    Unavailable(String),
    /// The block is not (yet) finalized on the canonical chain.
    #[error("the transfer's block is not finalized yet; retry once it is")]
    NotFinalized,
    /// The extrinsic failed on chain.
    #[error("the extrinsic at that index did not succeed")]
    ExtrinsicFailed,
    /// The extrinsic moved no TAO from the payer to the payee.
    #[error("the extrinsic at that index transfers nothing from the payer to the payee")]
    NoTransfer,
}

/// A transfer that pays: how much reached the payee, and how old its block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Rao moved from the payer to the payee.
    pub amount_rao: u64,
    /// The block's number.
    pub block_number: u64,
    /// The finalized head's number when it was read.
    pub finalized_head: u64,
}

impl Settled {
    /// Blocks between the transfer and the finalized head.
    pub fn age_blocks(&self) -> u64 {
        self.finalized_head.saturating_sub(self.block_number)
    }
}

/// Checks that a claimed transfer happened.
pub trait SettlementVerifier: Send + Sync + 'static {
    /// What extrinsic `extrinsic_index` of block `block_hash` moved from `payer` to `pay_to`,
    /// once that block is final; a refusal otherwise.
    fn verify<'a>(
        &'a self,
        payer: &'a AccountId,
        pay_to: &'a AccountId,
        block_hash: [u8; 32],
        extrinsic_index: u32,
    ) -> BoxFuture<'a, Result<Settled, SettleError>>;
}

/// The rule both verifiers apply: the extrinsic succeeded in a finalized block, and the sum of
/// its `Balances.Transfer` events from `payer` to `pay_to` (non-zero) is what was paid.
pub fn received(
    lookup: &TransferLookup,
    payer: &AccountId,
    pay_to: &AccountId,
) -> Result<Settled, SettleError> {
    if !lookup.finalized {
        return Err(SettleError::NotFinalized);
    }
    if !lookup.succeeded {
        return Err(SettleError::ExtrinsicFailed);
    }
    let paid = lookup
        .transfers
        .iter()
        .filter(|t| &t.from == payer && &t.to == pay_to)
        .fold(0u64, |sum, t| sum.saturating_add(t.amount_rao));
    if paid == 0 {
        return Err(SettleError::NoTransfer);
    }
    Ok(Settled {
        amount_rao: paid,
        block_number: lookup.block_number,
        finalized_head: lookup.finalized_head,
    })
}

/// Verifies against the chain: reads the block's events through [`Chain::transfer_at`].
pub struct TaoTransferVerifier<C> {
    chain: std::sync::Arc<C>,
}

impl<C> TaoTransferVerifier<C> {
    /// Verify with `chain` (the live subtensor client in production).
    pub fn new(chain: std::sync::Arc<C>) -> Self {
        TaoTransferVerifier { chain }
    }
}

impl<C: Chain + Send + Sync + 'static> SettlementVerifier for TaoTransferVerifier<C> {
    fn verify<'a>(
        &'a self,
        payer: &'a AccountId,
        pay_to: &'a AccountId,
        block_hash: [u8; 32],
        extrinsic_index: u32,
    ) -> BoxFuture<'a, Result<Settled, SettleError>> {
        Box::pin(async move {
            let lookup = self
                .chain
                .transfer_at(block_hash, extrinsic_index)
                .await
                .map_err(|e| SettleError::Unavailable(e.to_string()))?;
            received(&lookup, payer, pay_to)
        })
    }
}

/// A test double: transfers registered by hand; an unregistered one is unknown.
#[derive(Debug, Default)]
pub struct TestSettlement {
    transfers: Mutex<HashMap<([u8; 32], u32), TransferLookup>>,
    calls: Mutex<u64>,
    delay: std::time::Duration,
}

impl TestSettlement {
    /// An empty chain.
    pub fn new() -> Self {
        TestSettlement::default()
    }

    /// Answer every check after `delay` (a slow chain: lets tests overlap two uses).
    pub fn with_delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Record what extrinsic `index` of block `block_hash` did.
    pub fn insert(&self, block_hash: [u8; 32], index: u32, lookup: TransferLookup) {
        self.transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((block_hash, index), lookup);
    }

    /// How many times the double was asked.
    pub fn calls(&self) -> u64 {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SettlementVerifier for TestSettlement {
    fn verify<'a>(
        &'a self,
        payer: &'a AccountId,
        pay_to: &'a AccountId,
        block_hash: [u8; 32],
        extrinsic_index: u32,
    ) -> BoxFuture<'a, Result<Settled, SettleError>> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let found = self
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(block_hash, extrinsic_index))
            .cloned();
        let out = match found {
            None => Err(SettleError::Unavailable(format!(
                "unknown block 0x{}",
                hex::encode(block_hash)
            ))),
            Some(l) => received(&l, payer, pay_to),
        };
        let delay = self.delay;
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            out
        })
    }
}
