//! `orchestra-pay`: buy one call to an Orchestra server with x402 — ask, read the quote, pay it
//! with a TAO transfer, claim the transfer for the call, and return the answer
//! (docs/agents.md#paying-per-call).

use clap::Parser;
use orchestra_chain::{Chain, SubtensorChain, SubtensorConfig, caip2_network};
use orchestra_protocol::Hotkey;
use orchestra_x402::{
    PAYMENT_REQUIRED, PAYMENT_RESPONSE, PAYMENT_SIGNATURE, PaymentPayload, PaymentRequired,
    SettlementResponse, decode_header, encode_header,
};
use reqwest::Method;
use std::time::Duration;

/// Pay for one call to an Orchestra server (x402 v2: a TAO transfer) and print its answer.
///
/// The answer's body goes to stdout; what was paid, to stderr. A call that needs no payment
/// (the server answered without a 402) is printed as is and costs nothing.
#[derive(Debug, Parser)]
#[command(name = "orchestra-pay", version)]
pub struct PayArgs {
    /// The call, e.g. `http://127.0.0.1:8080/v1/subnets/42`.
    pub url: String,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// JSON request body (sent with `Content-Type: application/json`).
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// Chain to pay on: `finney`, `test`, `local` or a `ws://`/`wss://` URL; it must be the
    /// quote's network.
    #[arg(long, default_value = "finney")]
    pub network: String,
    /// Secret URI of the paying account (mnemonic, `0x` seed or a dev path like `//Alice`);
    /// default: the environment variable `ORCHESTRA_PAYER_URI` (kept out of shell history).
    #[arg(long)]
    pub payer: Option<String>,
    /// Never pay more than this many rao for the call.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_rao: u64,
    /// How long to keep retrying while the transfer's block is not yet final, seconds.
    #[arg(long, default_value_t = 60)]
    pub settle_secs: u64,
}

/// Why the call could not be bought.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// Bad flags.
    #[error("{0}")]
    Usage(String),
    /// The server could not be reached or answered something unreadable.
    #[error("{0}")]
    Http(String),
    /// The quote cannot be paid as asked.
    #[error("{0}")]
    Quote(String),
    /// The chain refused or could not be reached.
    #[error("{0}")]
    Chain(String),
    /// The server refused the payment.
    #[error("the server refused the payment: {0}")]
    Refused(String),
}

/// The bought answer.
#[derive(Debug)]
pub struct Bought {
    /// HTTP status of the answer.
    pub status: u16,
    /// Its body.
    pub body: String,
    /// The settlement, when a payment bought it.
    pub settlement: Option<SettlementResponse>,
}

async fn send(
    http: &reqwest::Client,
    args: &PayArgs,
    method: &Method,
    payment: Option<&str>,
) -> Result<reqwest::Response, PayError> {
    let mut req = http.request(method.clone(), &args.url);
    if let Some(d) = &args.data {
        req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(d.clone());
    }
    if let Some(p) = payment {
        req = req.header(PAYMENT_SIGNATURE, p);
    }
    req.send()
        .await
        .map_err(|e| PayError::Http(format!("{} {}: {e}", args.method, args.url)))
}

async fn error_code(res: reqwest::Response) -> (String, String) {
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (
        body["error"].as_str().unwrap_or("unknown").to_string(),
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Buy the call `args` names (see the module docs).
pub async fn buy(args: &PayArgs) -> Result<Bought, PayError> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
        PayError::Usage(format!("--method {:?} is not an HTTP method", args.method))
    })?;
    let url = reqwest::Url::parse(&args.url)
        .map_err(|e| PayError::Usage(format!("{:?} is not a URL: {e}", args.url)))?;
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let payer_uri = match &args.payer {
        Some(p) => p.clone(),
        None => std::env::var("ORCHESTRA_PAYER_URI").map_err(|_| {
            PayError::Usage("no payer: pass --payer or set ORCHESTRA_PAYER_URI".into())
        })?,
    };
    let payer =
        Hotkey::from_uri(&payer_uri).map_err(|e| PayError::Usage(format!("--payer: {e}")))?;
    let http = reqwest::Client::new();

    let first = send(&http, args, &method, None).await?;
    if first.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
        return answer(first).await;
    }
    let quote: PaymentRequired = first
        .headers()
        .get(PAYMENT_REQUIRED)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| PayError::Quote("a 402 without a PAYMENT-REQUIRED header".into()))
        .and_then(|h| decode_header(h).map_err(|e| PayError::Quote(e.to_string())))?;
    let accepted = quote
        .accepts
        .iter()
        .find(|a| a.scheme == orchestra_x402::types::SCHEME)
        .cloned()
        .ok_or_else(|| {
            PayError::Quote(format!(
                "the server accepts no `{}` payment",
                orchestra_x402::types::SCHEME
            ))
        })?;
    let amount = accepted
        .amount_rao()
        .ok_or_else(|| PayError::Quote(format!("amount {:?} is not a number", accepted.amount)))?;
    if amount > args.max_rao {
        return Err(PayError::Quote(format!(
            "the call costs {amount} rao, more than --max-rao {}",
            args.max_rao
        )));
    }
    let (pay_to, _) = orchestra_protocol::ss58::decode(&accepted.pay_to)
        .map_err(|_| PayError::Quote(format!("payTo {:?} is not ss58", accepted.pay_to)))?;

    let chain_url = orchestra_chain::Network::parse(&args.network)
        .url()
        .to_string();
    let chain = SubtensorChain::connect(SubtensorConfig::new(&chain_url), Some(&payer))
        .await
        .map_err(|e| PayError::Chain(format!("{chain_url}: {e}")))?;
    let network = caip2_network(&chain.genesis_hash());
    if network != accepted.network {
        return Err(PayError::Quote(format!(
            "the quote is for network {}, but {chain_url} is {network}",
            accepted.network
        )));
    }
    let receipt = chain
        .transfer(&pay_to, amount)
        .await
        .map_err(|e| PayError::Chain(format!("paying {amount} rao to {}: {e}", accepted.pay_to)))?;
    eprintln!(
        "paid {amount} rao to {} in block {} (0x{}), extrinsic {}",
        accepted.pay_to,
        receipt.block_number,
        hex::encode(receipt.block_hash),
        receipt.extrinsic_index
    );
    let claim = encode_header(&PaymentPayload::sign(
        &payer,
        &accepted,
        receipt.block_hash,
        receipt.extrinsic_index,
        method.as_str(),
        &target,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.settle_secs);
    loop {
        let res = send(&http, args, &method, Some(&claim)).await?;
        if res.status() == reqwest::StatusCode::PAYMENT_REQUIRED {
            let (code, message) = error_code(res).await;
            // The server reads the transfer from a finalized block; finality may lag a little.
            if code == "settlement_failed" && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            return Err(PayError::Refused(format!("{code}: {message}")));
        }
        return answer(res).await;
    }
}

/// The answer of a call: status, body, and the settlement if a payment bought it.
async fn answer(res: reqwest::Response) -> Result<Bought, PayError> {
    let status = res.status().as_u16();
    let settlement = res
        .headers()
        .get(PAYMENT_RESPONSE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| decode_header(h).ok());
    let body = res
        .text()
        .await
        .map_err(|e| PayError::Http(e.to_string()))?;
    Ok(Bought {
        status,
        body,
        settlement,
    })
}
