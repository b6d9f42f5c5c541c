//! Shared test fixtures: a small entry with a versioned output schema, probe helpers, the mock
//! files, and a tiny blocking HTTP/1.1 client for loopback tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use orchestra_ledger::store::Store;
use orchestra_ledger::{LedgerNode, ProbeResult, ProbeSet, VerifyParams, mocks};
use orchestra_protocol::Hotkey;
use orchestra_protocol::ledger::{
    Access, Endpoint, Entry, Metrics, Proposal, ProposalChange, Status,
};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// Output schema v1: `{"results": [...]}`.
pub fn schema_v1() -> Value {
    json!({"type": "object", "required": ["results"], "properties": {"results": {"type": "array"}}})
}

/// Output schema v2: `{"items": [...], "total": n}`.
pub fn schema_v2() -> Value {
    json!({"type": "object", "required": ["items", "total"], "properties": {"items": {"type": "array"}, "total": {"type": "integer"}}})
}

pub fn response_v1() -> Value {
    json!({"results": [1, 2]})
}

pub fn response_v2() -> Value {
    json!({"items": [1], "total": 1})
}

pub fn entry(netuid: u16) -> Entry {
    Entry {
        netuid,
        name: format!("SN{netuid}"),
        description: "test subnet".into(),
        capabilities: vec!["web_search".into()],
        endpoints: vec![Endpoint {
            name: "search".into(),
            capability: "web_search".into(),
            access: Access::ValidatorApi,
            method: "POST".into(),
            path: "/search".into(),
            auth_required: true,
            input_schema: json!({"type": "object"}),
            output_schema: schema_v1(),
            minimal_input: json!({"q": "x"}),
            deterministic: false,
            stable_fields: vec![],
        }],
        metrics: Metrics {
            p50_latency_ms: 340,
            p95_latency_ms: 900,
            reliability: 0.97,
            cost_per_query_rao: 2_000_000,
        },
        status: Status::Active,
        version: 0,
        last_verified_block: 0,
        verified_by: vec![],
    }
}

pub fn ok(latency_ms: u64, response: Value) -> ProbeResult {
    ProbeResult {
        ok: true,
        latency_ms,
        response: Some(response),
    }
}

pub fn fail() -> ProbeResult {
    ProbeResult {
        ok: false,
        latency_ms: 5_000,
        response: None,
    }
}

pub fn probes(results: Vec<ProbeResult>) -> ProbeSet {
    ProbeSet::new().with("search", results)
}

pub fn proposal(netuid: u16, change: ProposalChange, observed_block: u64) -> Proposal {
    Proposal {
        netuid,
        change,
        evidence: vec![],
        observed_block,
    }
}

pub fn mocks_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../mocks/subnets")
}

/// The shipped mock subnets' entries, read with the loader every tool shares, by netuid.
pub fn mock_entries() -> Vec<Entry> {
    orchestra_mocks::MockSet::load_dir(mocks_dir())
        .unwrap()
        .entries()
        .into_values()
        .collect()
}

/// A Ledger over `store`, signed by //Alice and seeded with the shipped mock subnets at block 100.
pub fn seeded_node<S: Store>(store: S) -> LedgerNode<S> {
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let mut node = LedgerNode::open(store, alice, VerifyParams::default()).unwrap();
    let me = node.ss58();
    let seeds: Vec<_> = mock_entries()
        .iter()
        .map(|e| mocks::seed_change(e, &me, 100).unwrap())
        .collect();
    node.append(seeds).unwrap();
    node
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a fresh connection (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A server may answer (e.g. 413) and close before reading a large body; ignore that.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no response head in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

/// btauth/1 headers signed by `hotkey` for `receiver`, with a fresh nonce.
pub fn signed(
    hotkey: &orchestra_protocol::Hotkey,
    receiver: &str,
    method: &str,
    target: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    orchestra_protocol::btauth::sign(hotkey, method, target, body, Some(receiver), nonce).headers
}

/// Serve `app` on a free loopback port from a 2-thread runtime of its own (kept alive by the
/// caller for as long as the server should run).
pub fn serve_loopback(app: axum::Router) -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rt)
}
