//! The x402 v2 objects this server speaks (`PaymentRequired`, `PaymentRequirements`,
//! `PaymentPayload`, `SettlementResponse`), the `tao-transfer` scheme's payload, and the
//! base64-JSON header codec of the x402 v2 HTTP transport.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use orchestra_protocol::{Hotkey, Scheme};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The x402 protocol version this crate implements.
pub const X402_VERSION: u32 = 2;
/// Response header of a 402: the base64 JSON [`PaymentRequired`].
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// Request header carrying the base64 JSON [`PaymentPayload`].
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// Response header of a paid call: the base64 JSON [`SettlementResponse`].
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// The payment scheme: a finalized native TAO transfer to `payTo`, claimed by a signature of
/// the account that sent it.
pub const SCHEME: &str = "tao-transfer";
/// The asset: native TAO, amounts in rao (1 TAO = 10⁹ rao).
pub const ASSET: &str = "TAO";
/// Domain tag that opens the bytes a payer signs.
pub const SIGNING_DOMAIN: &[u8] = b"orchestra-x402/1\0";

/// What is being paid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInfo {
    /// The resource's URL (path and query as the server received it).
    pub url: String,
    /// What a call returns.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Media type of the answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mime_type: String,
}

/// One way to pay (an element of `accepts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequirements {
    /// [`SCHEME`].
    pub scheme: String,
    /// CAIP-2 network id of the chain (`bittensor:<first 16 bytes of the genesis hash, hex>`).
    pub network: String,
    /// Price in the asset's smallest unit (rao), as a decimal string.
    pub amount: String,
    /// [`ASSET`].
    pub asset: String,
    /// The ss58 account the transfer must reach.
    pub pay_to: String,
    /// How long the quote stands, seconds.
    pub max_timeout_seconds: u64,
    /// Scheme details (`signing`: what the payer signs).
    #[serde(default)]
    pub extra: Value,
}

impl PaymentRequirements {
    /// The price in rao (`None` if `amount` is not a decimal u64).
    pub fn amount_rao(&self) -> Option<u64> {
        self.amount.parse().ok()
    }
}

/// The 402 answer: the resource and the ways to pay for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequired {
    /// [`X402_VERSION`].
    pub x402_version: u32,
    /// Why the request was not served (machine-readable code), if it carried a payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What is being paid for.
    pub resource: ResourceInfo,
    /// The ways to pay; the client satisfies one.
    pub accepts: Vec<PaymentRequirements>,
}

/// The `tao-transfer` scheme's payload: which transfer pays, and the sender's claim on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TransferProof {
    /// The ss58 account that sent the transfer (and signs this claim, sr25519).
    pub payer: String,
    /// `0x` + hex of the block that includes the transfer.
    pub block_hash: String,
    /// The transfer extrinsic's index in that block.
    pub extrinsic_index: u32,
    /// `0x` + hex sr25519 signature over [`claim_bytes`].
    pub signature: String,
}

impl TransferProof {
    /// The payment's identity: one transfer pays for one call.
    pub fn payment_id(&self) -> String {
        format!(
            "{}:{}",
            self.block_hash.to_ascii_lowercase(),
            self.extrinsic_index
        )
    }

    /// The block hash as bytes.
    pub fn block_hash_bytes(&self) -> Option<[u8; 32]> {
        let raw = self.block_hash.strip_prefix("0x")?;
        hex::decode(raw).ok()?.try_into().ok()
    }
}

/// The request header's object: the requirements the client chose and its proof.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentPayload {
    /// [`X402_VERSION`].
    pub x402_version: u32,
    /// What the client paid for (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceInfo>,
    /// The element of `accepts` the client satisfied.
    pub accepted: PaymentRequirements,
    /// The scheme's proof.
    pub payload: TransferProof,
}

/// The paid answer's header: the settlement, on success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementResponse {
    /// Whether the payment settled and the call was served.
    pub success: bool,
    /// Why not, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<String>,
    /// The payer (ss58).
    pub payer: String,
    /// The payment's id (`<block hash>:<extrinsic index>`).
    pub transaction: String,
    /// CAIP-2 network.
    pub network: String,
    /// Rao received.
    pub amount: String,
}

/// The exact bytes a payer signs to claim `transfer` for one call:
/// `"orchestra-x402/1\0" ‖ network ‖ "\n" ‖ pay_to ‖ "\n" ‖ block hash (0x-hex, lowercase) ‖ "\n"
/// ‖ extrinsic index (decimal) ‖ "\n" ‖ METHOD ‖ " " ‖ path-and-query`.
///
/// Binding the method and path means a claim observed in flight cannot buy a different call,
/// and binding the network and `pay_to` means it cannot be spent at another server.
pub fn claim_bytes(
    network: &str,
    pay_to: &str,
    block_hash: &str,
    extrinsic_index: u32,
    method: &str,
    path_and_query: &str,
) -> Vec<u8> {
    let mut out = SIGNING_DOMAIN.to_vec();
    let text = format!(
        "{network}\n{pay_to}\n{}\n{extrinsic_index}\n{} {path_and_query}",
        block_hash.to_ascii_lowercase(),
        method.to_ascii_uppercase()
    );
    out.extend_from_slice(text.as_bytes());
    out
}

impl PaymentPayload {
    /// Build and sign the header object for a transfer `payer` made: the client side of the
    /// scheme (`method` and `path_and_query` of the call it pays for).
    pub fn sign(
        payer: &Hotkey,
        accepted: &PaymentRequirements,
        block_hash: [u8; 32],
        extrinsic_index: u32,
        method: &str,
        path_and_query: &str,
    ) -> PaymentPayload {
        let block_hash = format!("0x{}", hex::encode(block_hash));
        let msg = claim_bytes(
            &accepted.network,
            &accepted.pay_to,
            &block_hash,
            extrinsic_index,
            method,
            path_and_query,
        );
        PaymentPayload {
            x402_version: X402_VERSION,
            resource: Some(ResourceInfo {
                url: path_and_query.to_string(),
                description: String::new(),
                mime_type: String::new(),
            }),
            accepted: accepted.clone(),
            payload: TransferProof {
                payer: payer.ss58(),
                block_hash,
                extrinsic_index,
                signature: format!("0x{}", hex::encode(payer.sign(&msg))),
            },
        }
    }

    /// Check the payer's sr25519 signature for the call `method path_and_query`.
    pub fn signature_valid(&self, method: &str, path_and_query: &str) -> bool {
        let p = &self.payload;
        let Ok((pk, _)) = orchestra_protocol::ss58::decode(&p.payer) else {
            return false;
        };
        let Some(sig) = p
            .signature
            .strip_prefix("0x")
            .and_then(|s| hex::decode(s).ok())
            .and_then(|v| <[u8; 64]>::try_from(v).ok())
        else {
            return false;
        };
        let msg = claim_bytes(
            &self.accepted.network,
            &self.accepted.pay_to,
            &p.block_hash,
            p.extrinsic_index,
            method,
            path_and_query,
        );
        orchestra_protocol::keys::verify_signature(Scheme::Sr25519, &pk, &msg, &sig)
    }
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Not standard base64.
    #[error("the header is not base64: {0}")]
    Base64(String),
    /// Not the expected JSON object.
    #[error("the header's JSON does not match the x402 v2 object: {0}")]
    Json(String),
}

/// Encode an object as an x402 header value (base64 of its JSON).
pub fn encode_header<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    STANDARD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Decode an x402 header value.
pub fn decode_header<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, HeaderError> {
    let bytes = STANDARD
        .decode(value.trim())
        .map_err(|e| HeaderError::Base64(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| HeaderError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req() -> PaymentRequirements {
        PaymentRequirements {
            scheme: SCHEME.into(),
            network: "bittensor:0123".into(),
            amount: "1000".into(),
            asset: ASSET.into(),
            pay_to: Hotkey::from_uri("//Bob").unwrap().ss58(),
            max_timeout_seconds: 300,
            extra: Value::Null,
        }
    }

    #[test]
    fn a_signed_claim_verifies_only_for_its_call() {
        let alice = Hotkey::from_uri("//Alice").unwrap();
        let p = PaymentPayload::sign(&alice, &req(), [7; 32], 3, "GET", "/v1/subnets/1");
        assert!(p.signature_valid("GET", "/v1/subnets/1"));
        assert!(!p.signature_valid("GET", "/v1/subnets/2"));
        assert!(!p.signature_valid("POST", "/v1/subnets/1"));
        let mut other = p.clone();
        other.payload.extrinsic_index = 4;
        assert!(!other.signature_valid("GET", "/v1/subnets/1"));
        let mut other = p.clone();
        other.accepted.pay_to = alice.ss58();
        assert!(!other.signature_valid("GET", "/v1/subnets/1"));
        let mut other = p;
        other.payload.payer = Hotkey::from_uri("//Charlie").unwrap().ss58();
        assert!(!other.signature_valid("GET", "/v1/subnets/1"));
    }

    #[test]
    fn headers_round_trip_and_refuse_garbage() {
        let alice = Hotkey::from_uri("//Alice").unwrap();
        let p = PaymentPayload::sign(&alice, &req(), [7; 32], 3, "GET", "/x");
        let h = encode_header(&p);
        assert_eq!(decode_header::<PaymentPayload>(&h).unwrap(), p);
        assert!(matches!(
            decode_header::<PaymentPayload>("%%%"),
            Err(HeaderError::Base64(_))
        ));
        assert!(matches!(
            decode_header::<PaymentPayload>(&STANDARD.encode(b"{\"x\":1}")),
            Err(HeaderError::Json(_))
        ));
        assert_eq!(p.payload.payment_id(), format!("0x{}:3", "07".repeat(32)));
        assert_eq!(p.payload.block_hash_bytes(), Some([7; 32]));
    }
}
