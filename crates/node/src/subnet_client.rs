//! Calling subnet endpoints over HTTP, and the small wire convention Orchestra's nodes and the
//! mock subnet server share on top of plain JSON.
//!
//! A call is `METHOD <base URL><endpoint path>` (method and path from the Ledger entry) with the
//! JSON request as body. The answer's body is the JSON response itself, so the response hash in
//! the proof is the hash of exactly what the subnet sent. Metadata travels in headers:
//!
//! | header | direction | meaning |
//! |---|---|---|
//! | `X-Orchestra-Started-At-Ms` | request | the caller's start time (ms), what a receipt signs |
//! | `X-Orchestra-Subnet-Hotkey` | response | ss58 of the serving neuron |
//! | `X-Orchestra-Cost-Rao` | response | price of the call, rao |
//! | `X-Orchestra-Receipt-Scheme` | response | `sr25519` or `ed25519`, when the subnet signs receipts |
//! | `X-Orchestra-Receipt-Signature` | response | `0x…` signature over `request_hash ‖ response_hash ‖ started_at_ms` |
//!
//! Requests are btauth/1-signed by the caller's hotkey, unbound to a receiver (the caller does
//! not know which neuron serves), so subnets that accept btauth/1 can authenticate and meter them;
//! the rest ignore the headers. Errors map to the miner core's [`SubCallFailure`]s the way the
//! simulator maps mock errors: 503/404/connection errors → `Unavailable`, 504/timeouts →
//! `Timeout`, other statuses and unusable bodies → `Rejected`.

use crate::auth::{now_ns, signed_headers};
use orchestra_miner::{SubCallFailure, SubCallOutcome, SubCallReply};
use orchestra_protocol::messages::Receipt;
use orchestra_protocol::{Body, Hotkey};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `X-Orchestra-Started-At-Ms`.
pub const HEADER_STARTED_AT_MS: &str = "X-Orchestra-Started-At-Ms";
/// `X-Orchestra-Subnet-Hotkey`.
pub const HEADER_SUBNET_HOTKEY: &str = "X-Orchestra-Subnet-Hotkey";
/// `X-Orchestra-Cost-Rao`.
pub const HEADER_COST_RAO: &str = "X-Orchestra-Cost-Rao";
/// `X-Orchestra-Receipt-Scheme`.
pub const HEADER_RECEIPT_SCHEME: &str = "X-Orchestra-Receipt-Scheme";
/// `X-Orchestra-Receipt-Signature`.
pub const HEADER_RECEIPT_SIGNATURE: &str = "X-Orchestra-Receipt-Signature";

/// Why a `NETUID=URL` mapping could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("subnet mapping {0:?}: expected NETUID=URL, e.g. 22=http://127.0.0.1:9122")]
pub struct MappingError(pub String);

/// Where each subnet is reached: explicit `NETUID=URL` mappings, else `<fallback>/sn/<netuid>`
/// (a multi-subnet `orchestra-mock-subnet`).
#[derive(Debug, Clone, Default)]
pub struct SubnetDirectory {
    urls: BTreeMap<u16, String>,
    fallback: Option<String>,
}

impl SubnetDirectory {
    /// A directory from `NETUID=URL` strings and an optional multi-subnet base URL.
    pub fn parse<'a>(
        mappings: impl IntoIterator<Item = &'a str>,
        fallback: Option<&str>,
    ) -> Result<Self, MappingError> {
        let mut urls = BTreeMap::new();
        for m in mappings {
            let (n, url) = m.split_once('=').ok_or_else(|| MappingError(m.into()))?;
            let n: u16 = n.trim().parse().map_err(|_| MappingError(m.into()))?;
            let url = url.trim().trim_end_matches('/');
            if reqwest::Url::parse(url).is_err() {
                return Err(MappingError(m.into()));
            }
            urls.insert(n, url.to_string());
        }
        let fallback = match fallback {
            Some(f) => {
                let f = f.trim().trim_end_matches('/');
                reqwest::Url::parse(f).map_err(|_| MappingError(f.into()))?;
                Some(f.to_string())
            }
            None => None,
        };
        Ok(SubnetDirectory { urls, fallback })
    }

    /// The base URL of `netuid`, if known.
    pub fn base(&self, netuid: u16) -> Option<String> {
        self.urls
            .get(&netuid)
            .cloned()
            .or_else(|| self.fallback.as_ref().map(|f| format!("{f}/sn/{netuid}")))
    }

    /// Explicitly mapped subnets.
    pub fn mapped(&self) -> impl Iterator<Item = (u16, &str)> {
        self.urls.iter().map(|(n, u)| (*n, u.as_str()))
    }
}

/// A subnet's successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SubnetReply {
    /// The response body.
    pub response: Value,
    /// The serving neuron's hotkey (empty if the subnet did not say).
    pub subnet_hotkey: String,
    /// What the call cost, rao.
    pub cost_rao: u64,
    /// The subnet's receipt, if it signed one.
    pub receipt: Option<Receipt>,
    /// Wall time of the call.
    pub elapsed: Duration,
}

impl SubnetReply {
    /// As the miner core takes it.
    pub fn into_subcall_reply(self) -> SubCallReply {
        SubCallReply {
            response: Body::new(self.response),
            subnet_hotkey: self.subnet_hotkey,
            cost_rao: self.cost_rao,
            receipt: self.receipt,
        }
    }
}

/// Calls subnet endpoints (cheap to clone: the connection pool is shared).
#[derive(Debug, Clone)]
pub struct SubnetClient {
    http: reqwest::Client,
    hotkey: Option<Arc<Hotkey>>,
}

impl SubnetClient {
    /// A client signing requests with `hotkey` (if any) over `http`.
    pub fn new(http: reqwest::Client, hotkey: Option<Arc<Hotkey>>) -> Self {
        SubnetClient { http, hotkey }
    }

    /// The HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Call `method base+path` with `request`, started at `started_at_ms`, giving up after
    /// `timeout`.
    pub async fn call(
        &self,
        base: &str,
        method: &str,
        path: &str,
        request: &Value,
        started_at_ms: u64,
        timeout: Duration,
    ) -> Result<SubnetReply, SubCallFailure> {
        let url = reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| SubCallFailure::Unavailable(format!("bad URL {base}{path}: {e}")))?;
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| SubCallFailure::Rejected(format!("bad method {method}")))?;
        let body = serde_json::to_vec(request)
            .map_err(|e| SubCallFailure::Rejected(format!("unserialisable request: {e}")))?;
        let mut builder = self
            .http
            .request(method.clone(), url.clone())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(HEADER_STARTED_AT_MS, started_at_ms.to_string());
        if let Some(key) = &self.hotkey {
            builder = builder.headers(signed_headers(
                key,
                method.as_str(),
                &url,
                &body,
                None,
                now_ns(),
            ));
        }
        let start = Instant::now();
        let resp = builder.body(body).send().await.map_err(classify)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(classify)?;
        let elapsed = start.elapsed();
        if !status.is_success() {
            return Err(match status.as_u16() {
                503 | 404 | 502 => SubCallFailure::Unavailable(status.as_u16().to_string()),
                504 | 408 => SubCallFailure::Timeout,
                s => SubCallFailure::Rejected(s.to_string()),
            });
        }
        let response: Value = serde_json::from_slice(&bytes)
            .map_err(|e| SubCallFailure::Rejected(format!("response is not JSON: {e}")))?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let receipt = match (
            header(HEADER_RECEIPT_SCHEME),
            header(HEADER_RECEIPT_SIGNATURE),
        ) {
            (Some(scheme), Some(sig)) => Some(Receipt {
                scheme: scheme.to_string(),
                signature: sig.to_string(),
            }),
            _ => None,
        };
        Ok(SubnetReply {
            response,
            subnet_hotkey: header(HEADER_SUBNET_HOTKEY).unwrap_or("").to_string(),
            cost_rao: header(HEADER_COST_RAO)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            receipt,
            elapsed,
        })
    }

    /// [`SubnetClient::call`] as the miner core's outcome.
    pub async fn subcall(
        &self,
        base: &str,
        method: &str,
        path: &str,
        request: &Value,
        started_at_ms: u64,
        timeout: Duration,
    ) -> SubCallOutcome {
        self.call(base, method, path, request, started_at_ms, timeout)
            .await
            .map(SubnetReply::into_subcall_reply)
    }
}

fn classify(e: reqwest::Error) -> SubCallFailure {
    if e.is_timeout() {
        SubCallFailure::Timeout
    } else {
        SubCallFailure::Unavailable(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn directory_maps_and_falls_back() {
        let d = SubnetDirectory::parse(
            ["22=http://127.0.0.1:9122/", "1=http://h:1"],
            Some("http://m:9100"),
        )
        .unwrap();
        assert_eq!(d.base(22).unwrap(), "http://127.0.0.1:9122");
        assert_eq!(d.base(1).unwrap(), "http://h:1");
        assert_eq!(d.base(5).unwrap(), "http://m:9100/sn/5");
        assert!(SubnetDirectory::parse(["22"], None).is_err());
        assert!(SubnetDirectory::parse(["x=http://a"], None).is_err());
        assert!(SubnetDirectory::parse([], None).unwrap().base(22).is_none());
    }
}
