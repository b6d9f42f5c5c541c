//! The miner's Ledger view from a Ledger API (a validator's, or `orchestra-ledger serve`):
//! every entry, read with an API key or btauth/1-signed for the Ledger's hotkey.

use crate::auth::{now_ns, signed_headers};
use orchestra_protocol::Hotkey;
use orchestra_protocol::ledger::Entry;
use std::sync::Arc;
use std::time::Duration;

/// How to authenticate to a Ledger API.
#[derive(Debug, Clone)]
pub enum LedgerAuth {
    /// `Authorization: Bearer <key>`.
    ApiKey(String),
    /// btauth/1 signed by `hotkey` for `receiver` (the Ledger's ss58).
    Hotkey {
        /// Our key.
        hotkey: Arc<Hotkey>,
        /// The Ledger API's hotkey.
        receiver: String,
    },
}

async fn ledger_get(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    auth: &LedgerAuth,
) -> anyhow::Result<serde_json::Value> {
    let url = reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))?;
    let mut req = http.get(url.clone()).timeout(Duration::from_secs(10));
    req = match auth {
        LedgerAuth::ApiKey(k) => req.bearer_auth(k),
        LedgerAuth::Hotkey { hotkey, receiver } => req.headers(signed_headers(
            hotkey,
            "GET",
            &url,
            b"",
            Some(receiver),
            now_ns(),
        )),
    };
    let resp = req.send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        anyhow::bail!("GET {url}: {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// Every entry of the Ledger API at `base` (`GET /v1/subnets`, then `/v1/subnets/{netuid}`).
pub async fn fetch_ledger(
    http: &reqwest::Client,
    base: &str,
    auth: &LedgerAuth,
) -> anyhow::Result<Vec<Entry>> {
    let list = ledger_get(http, base, "/v1/subnets", auth).await?;
    let items = list
        .get("subnets")
        .and_then(|v| v.as_array())
        .or_else(|| list.as_array())
        .ok_or_else(|| anyhow::anyhow!("GET /v1/subnets: no subnet list in {list}"))?;
    let mut entries = Vec::new();
    for item in items {
        let Some(n) = item.get("netuid").and_then(|v| v.as_u64()) else {
            continue;
        };
        let one = ledger_get(http, base, &format!("/v1/subnets/{n}"), auth).await?;
        let entry: Entry = serde_json::from_value(one.get("entry").cloned().unwrap_or(one))?;
        entries.push(entry);
    }
    Ok(entries)
}
