//! Pay per call for Orchestra's HTTP APIs, following the x402 v2 HTTP transport: a paid route
//! answers `402 Payment Required` with a machine-readable quote in `PAYMENT-REQUIRED`; the
//! client pays with a native TAO transfer, signs a claim on it for that one call, and retries
//! with `PAYMENT-SIGNATURE`; the server settles (reads the transfer from the chain), serves, and
//! answers with `PAYMENT-RESPONSE`. API keys and btauth/1 keep working beside it.
//!
//! - [`types`]: the v2 objects, the `tao-transfer` scheme's payload and the header codec;
//! - [`settle`]: [`SettlementVerifier`] with the chain's [`TaoTransferVerifier`] and the
//!   [`TestSettlement`] double;
//! - [`spent`]: the durable set of used payments;
//! - [`gate`]: [`Paywall`] and the [`auth_or_pay`] middleware (its table lists every answer).
//!
//! The wire format is in `docs/agents.md#paying-per-call`.

pub mod gate;
pub mod settle;
pub mod spent;
pub mod types;

pub use gate::{Gate, Paid, Paywall, PaywallError, Price, auth_or_pay, chain_paywall};
pub use settle::{
    SettleError, Settled, SettlementVerifier, TaoTransferVerifier, TestSettlement, received,
};
pub use spent::{MemorySpent, SpentPayment, SpentPayments, SqliteSpent};
pub use types::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentPayload, PaymentRequired,
    PaymentRequirements, SettlementResponse, TransferProof, decode_header, encode_header,
};
