//! The gate in front of paid routes: API keys and btauth/1 as before, and for a request with
//! neither, pay per call.
//!
//! | request | answer |
//! |---|---|
//! | `Authorization` or btauth/1 headers | checked by [`RequestAuth`] as on every route |
//! | nothing, route is paid | `402`, `PAYMENT-REQUIRED` = the quote |
//! | `PAYMENT-SIGNATURE` not base64 JSON of a v2 payload | `402`, `error` = `invalid_payment` |
//! | another scheme, network, asset or payee than quoted | `402`, `invalid_payment` |
//! | the payer's signature does not cover this call | `402`, `invalid_payment_signature` |
//! | the transfer already bought a call (or is buying one) | `402`, `payment_already_used` |
//! | the chain does not confirm a final, successful transfer | `402`, `settlement_failed` |
//! | the transfer is older than the quote's `maxTimeoutSeconds` (at 12 s a block) | `402`, `payment_expired` |
//! | it confirms less than the price | `402`, `insufficient_payment` |
//! | settled | the route's answer, `PAYMENT-RESPONSE` = the settlement |
//!
//! Ordering is what makes "one payment, one call" hold: the payment is reserved in memory
//! before settlement (two concurrent uses: one waits out the other's outcome as `402`), the
//! route runs only after settlement succeeded, and the payment is written to the durable spent
//! set before the answer leaves. If the route fails (not 2xx) the reservation is released and
//! the payment can buy the retry; if the spent set cannot be written the answer is withheld
//! (`503`), so nothing is served unpaid-for twice.

use crate::settle::{SettleError, SettlementVerifier};
use crate::spent::{SpentPayment, SpentPayments};
use crate::types::{
    ASSET, PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentPayload, PaymentRequired,
    PaymentRequirements, ResourceInfo, SCHEME, SettlementResponse, X402_VERSION, decode_header,
    encode_header,
};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orchestra_http::RequestAuth;
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// What a paid route costs and where the money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// The payee's ss58 address.
    pub pay_to: String,
    /// CAIP-2 network of the chain (see `orchestra_chain::caip2_network`).
    pub network: String,
    /// Rao per call.
    pub rao: u64,
    /// How long a quote stands, seconds: also the oldest transfer accepted, at
    /// [`SECONDS_PER_BLOCK`] a block.
    pub max_timeout_seconds: u64,
    /// What a call returns (shown in the quote).
    pub description: String,
}

/// Bittensor's block time, for turning a quote's seconds into blocks.
pub const SECONDS_PER_BLOCK: u64 = 12;

/// A paid call: put in the request's extensions for the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paid {
    /// Payer ss58.
    pub payer: String,
    /// Rao received.
    pub amount_rao: u64,
    /// The payment's id.
    pub payment_id: String,
}

/// Pay per call: the price, the verifier, the spent set and the in-flight reservations.
pub struct Paywall {
    price: Price,
    /// What the quote offers, built once from `price`.
    requirements: PaymentRequirements,
    pay_to: [u8; 32],
    verifier: Arc<dyn SettlementVerifier>,
    spent: Arc<dyn SpentPayments>,
    reserved: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Paywall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paywall")
            .field("price", &self.price)
            .finish()
    }
}

/// Why a paywall could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaywallError {
    /// The payee is not an ss58 address.
    #[error("pay-to address {0:?} is not a valid ss58 address")]
    BadPayee(String),
    /// A zero price would serve everything free under a payment banner.
    #[error("the price must be at least 1 rao")]
    ZeroPrice,
}

impl Paywall {
    /// A paywall charging `price`, settling with `verifier`, remembering payments in `spent`.
    pub fn new(
        price: Price,
        verifier: Arc<dyn SettlementVerifier>,
        spent: Arc<dyn SpentPayments>,
    ) -> Result<Paywall, PaywallError> {
        let (pay_to, _) = orchestra_protocol::ss58::decode(&price.pay_to)
            .map_err(|_| PaywallError::BadPayee(price.pay_to.clone()))?;
        if price.rao == 0 {
            return Err(PaywallError::ZeroPrice);
        }
        let requirements = PaymentRequirements {
            scheme: SCHEME.into(),
            network: price.network.clone(),
            amount: price.rao.to_string(),
            asset: ASSET.into(),
            pay_to: price.pay_to.clone(),
            max_timeout_seconds: price.max_timeout_seconds,
            extra: json!({
                "unit": "rao",
                "transfer": "Balances.transfer_keep_alive (or transfer_allow_death) of at least `amount` to `payTo`, in a finalized block",
                "signing": "sr25519 by the sender over \"orchestra-x402/1\\0\" + network + \"\\n\" + payTo + \"\\n\" + blockHash (0x, lowercase hex) + \"\\n\" + extrinsicIndex + \"\\n\" + METHOD + \" \" + path-and-query",
            }),
        };
        Ok(Paywall {
            price,
            requirements,
            pay_to,
            verifier,
            spent,
            reserved: Mutex::new(HashSet::new()),
        })
    }

    /// The price.
    pub fn price(&self) -> &Price {
        &self.price
    }

    /// The one way to pay this server accepts.
    pub fn requirements(&self) -> PaymentRequirements {
        self.requirements.clone()
    }

    /// The quote for `url`, with `error` if a payment was offered and refused.
    pub fn quote(&self, url: &str, error: Option<&str>) -> PaymentRequired {
        PaymentRequired {
            x402_version: X402_VERSION,
            error: error.map(str::to_string),
            resource: ResourceInfo {
                url: url.to_string(),
                description: self.price.description.clone(),
                mime_type: "application/json".into(),
            },
            accepts: vec![self.requirements()],
        }
    }

    /// A `402` carrying the quote in `PAYMENT-REQUIRED` and, in the body, the project's error
    /// shape with the quote beside it.
    pub fn payment_required(&self, url: &str, code: &str, message: &str) -> Response {
        let offered = code != "payment_required";
        let quote = self.quote(url, offered.then_some(code));
        let body = json!({ "error": code, "message": message, "x402": quote });
        let mut res = (
            StatusCode::PAYMENT_REQUIRED,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&body).unwrap_or_default(),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&encode_header(&quote)) {
            res.headers_mut().insert(PAYMENT_REQUIRED, v);
        }
        res
    }

    fn release(&self, id: &str) {
        self.reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Settle the payment in `req` and run `next` on it (the module's table).
    pub async fn serve_paid(&self, req: Request, next: Next, now_secs: u64) -> Response {
        let method = req.method().as_str().to_string();
        let target = req.uri().path_and_query().map_or_else(
            || req.uri().path().to_string(),
            |pq| pq.as_str().to_string(),
        );
        let Some(raw) = req.headers().get(PAYMENT_SIGNATURE) else {
            return self.payment_required(
                &target,
                "payment_required",
                &format!(
                    "this route costs {} rao per call: pay with a TAO transfer and send the \
                     proof in PAYMENT-SIGNATURE, or authenticate with an API key",
                    self.price.rao
                ),
            );
        };
        let payload: PaymentPayload = match raw
            .to_str()
            .map_err(|e| e.to_string())
            .and_then(|s| decode_header(s).map_err(|e| e.to_string()))
        {
            Ok(p) => p,
            Err(e) => {
                return self.payment_required(
                    &target,
                    "invalid_payment",
                    &format!("PAYMENT-SIGNATURE: {e}"),
                );
            }
        };
        let want = &self.requirements;
        let a = &payload.accepted;
        let mismatch = if payload.x402_version != X402_VERSION {
            Some(format!("x402Version {} (expected 2)", payload.x402_version))
        } else if a.scheme != want.scheme {
            Some(format!(
                "scheme {:?} (expected {:?})",
                a.scheme, want.scheme
            ))
        } else if a.network != want.network {
            Some(format!(
                "network {:?} (expected {:?})",
                a.network, want.network
            ))
        } else if a.asset != want.asset {
            Some(format!("asset {:?} (expected {:?})", a.asset, want.asset))
        } else if a.pay_to != want.pay_to {
            Some(format!("payTo {:?} (expected {:?})", a.pay_to, want.pay_to))
        } else {
            None
        };
        if let Some(m) = mismatch {
            return self.payment_required(&target, "invalid_payment", &format!("accepted {m}"));
        }
        let proof = &payload.payload;
        let (Some(block_hash), Ok((payer, _))) = (
            proof.block_hash_bytes(),
            orchestra_protocol::ss58::decode(&proof.payer),
        ) else {
            return self.payment_required(
                &target,
                "invalid_payment",
                "payload needs `payer` (ss58) and `blockHash` (0x + 64 hex digits)",
            );
        };
        if !payload.signature_valid(&method, &target) {
            return self.payment_required(
                &target,
                "invalid_payment_signature",
                &format!(
                    "the payer's signature does not cover `{method} {target}` on this network \
                     and payee"
                ),
            );
        }
        let id = proof.payment_id();
        let fresh = self
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone());
        let spent = match self.spent.is_spent(&id) {
            Ok(s) => s,
            Err(e) => {
                self.release(&id);
                tracing::error!("spent-payment store: {e}");
                return orchestra_http::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "payments_unavailable",
                    "the payment store cannot be read; nothing was charged or served",
                );
            }
        };
        if !fresh || spent {
            if fresh {
                self.release(&id);
            }
            return self.payment_required(
                &target,
                "payment_already_used",
                &format!("transfer {id} has already paid for a call"),
            );
        }
        let settled = match self
            .verifier
            .verify(&payer, &self.pay_to, block_hash, proof.extrinsic_index)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                self.release(&id);
                let retry = matches!(e, SettleError::NotFinalized | SettleError::Unavailable(_));
                tracing::debug!(%id, retry, "settlement refused: {e}");
                return self.payment_required(&target, "settlement_failed", &e.to_string());
            }
        };
        let max_age = self
            .price
            .max_timeout_seconds
            .div_ceil(SECONDS_PER_BLOCK)
            .max(1);
        if settled.age_blocks() > max_age {
            self.release(&id);
            return self.payment_required(
                &target,
                "payment_expired",
                &format!(
                    "transfer {id} is {} blocks old; this server takes transfers up to {max_age} \
                     blocks ({} s) old: pay again",
                    settled.age_blocks(),
                    self.price.max_timeout_seconds
                ),
            );
        }
        let amount = settled.amount_rao;
        if amount < self.price.rao {
            self.release(&id);
            return self.payment_required(
                &target,
                "insufficient_payment",
                &format!(
                    "transfer {id} paid {amount} rao; this call costs {} rao",
                    self.price.rao
                ),
            );
        }
        let paid = Paid {
            payer: proof.payer.clone(),
            amount_rao: amount,
            payment_id: id.clone(),
        };
        let mut req = req;
        req.extensions_mut().insert(paid.clone());
        let mut res = next.run(req).await;
        if !res.status().is_success() {
            // The call failed: the payment stays unused and can buy the retry.
            self.release(&id);
            return res;
        }
        let record = SpentPayment {
            id: id.clone(),
            payer: paid.payer.clone(),
            amount_rao: amount,
            call: format!("{method} {target}"),
            at_secs: now_secs,
        };
        let marked = self.spent.mark_spent(&record);
        self.release(&id);
        match marked {
            Ok(true) => {}
            Ok(false) => {
                return self.payment_required(
                    &target,
                    "payment_already_used",
                    &format!("transfer {id} has already paid for a call"),
                );
            }
            Err(e) => {
                tracing::error!("spent-payment store: {e}");
                return orchestra_http::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "payments_unavailable",
                    "the payment could not be recorded, so the answer was withheld; the \
                     payment was not used",
                );
            }
        }
        tracing::info!(payer = %paid.payer, %id, amount, call = %record.call, "paid call served");
        let settlement = SettlementResponse {
            success: true,
            error_reason: None,
            payer: paid.payer,
            transaction: id,
            network: self.price.network.clone(),
            amount: amount.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&encode_header(&settlement)) {
            res.headers_mut().insert(PAYMENT_RESPONSE, v);
        }
        res
    }
}

/// A paywall selling calls at `price`, settled on `chain` (its network set from
/// `network`), with used payments kept in the SQLite file `spent_db`: what a server binary
/// builds from its `--x402.*` flags.
pub fn chain_paywall<C: orchestra_chain::Chain + Send + Sync + 'static>(
    price: Price,
    chain: Arc<C>,
    spent_db: &std::path::Path,
) -> Result<Paywall, String> {
    let spent =
        crate::spent::SqliteSpent::open(spent_db).map_err(|e| format!("payments database: {e}"))?;
    Paywall::new(
        price,
        Arc::new(crate::settle::TaoTransferVerifier::new(chain)),
        Arc::new(spent),
    )
    .map_err(|e| e.to_string())
}

/// The state of [`auth_or_pay`]: the route's credentials, and its price if it has one.
#[derive(Debug, Clone)]
pub struct Gate {
    /// API keys and/or btauth/1, as on every route.
    pub auth: Arc<RequestAuth>,
    /// Pay per call, when the server sells calls.
    pub paywall: Option<Arc<Paywall>>,
}

/// The axum middleware of paid routes (the module's table). Without a paywall it is
/// `orchestra_http::require_auth`.
pub async fn auth_or_pay(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    if let Some(paywall) = &gate.paywall
        && !gate.auth.offers_credential(req.headers())
    {
        return paywall
            .serve_paid(req, next, orchestra_http::clock::now_secs())
            .await;
    }
    match orchestra_http::authenticate(&gate.auth, req).await {
        Ok(req) => next.run(req).await,
        Err(refused) => refused,
    }
}
