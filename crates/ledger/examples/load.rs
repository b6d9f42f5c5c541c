//! Loopback load test of the read path: `GET /v1/subnets/{netuid}` and
//! `/v1/capabilities/{tag}` on a 128-subnet Ledger, with API-key auth and metering on; with
//! `--mcp`, the same reads as MCP tool calls (`POST /mcp`: `get_entry` with its inclusion proof,
//! and `find_subnets`), each answer checked for a tool error.
//!
//! Self-hosts the real router over a real SQLite store (seeded from `mocks/subnets`, widened to
//! 128 subnets), with the usage flusher running, then drives it with `--connections` keep-alive
//! HTTP/1.1 clients for at most `--requests` requests or `--seconds` seconds.
//!
//! ```text
//! cargo run --release -p orchestra-ledger --example load -- --requests 400000 --connections 32
//! cargo run --release -p orchestra-ledger --example load -- --mcp --requests 100000 --connections 32
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::{Context, Result, bail};
use clap::Parser;
use orchestra_ledger::access::{Limits, generate_key, hash_key};
use orchestra_ledger::mocks;
use orchestra_ledger::server::{AppState, ServerConfig, router};
use orchestra_ledger::sqlite::SqliteStore;
use orchestra_ledger::store::{Store, Tier};
use orchestra_ledger::{LedgerNode, VerifyParams};
use orchestra_protocol::Hotkey;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Load-test the Ledger read API over loopback.
#[derive(Debug, Parser)]
struct Args {
    /// Total requests (upper bound).
    #[arg(long, default_value_t = 200_000)]
    requests: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: u64,
    /// Time limit, seconds (upper bound).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Client worker threads.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Call the MCP tools instead of the REST routes.
    #[arg(long)]
    mcp: bool,
    /// With `--mcp`, call only this tool (`get_entry` or `find_subnets`) instead of alternating.
    #[arg(long, requires = "mcp", value_parser = ["get_entry", "find_subnets"])]
    tool: Option<String>,
    /// Directory of mock subnet files.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../mocks/subnets"))]
    mocks: PathBuf,
}

const TAGS: &[&str] = &[
    "web_search",
    "social_scrape",
    "web_scrape",
    "llm_synthesis",
    "llm_inference",
    "embedding",
    "image_generation",
    "data_query",
    "sentiment",
    "translation",
];

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("ledger.db");
    // Seed 128 subnets: the 12 mocks, repeated with varied metrics.
    let base: Vec<_> = orchestra_mocks::MockSet::load_dir(&args.mocks)?
        .entries()
        .into_values()
        .collect();
    if base.is_empty() {
        bail!("no mock subnets in {}", args.mocks.display());
    }
    let mut store = SqliteStore::open(&db)?;
    let key = generate_key();
    store.create_key(hash_key(&key), Tier::Production, Some("load"), 0)?;
    let store: Box<dyn Store> = Box::new(store);
    let mut node = LedgerNode::open(store, Hotkey::from_uri("//Alice")?, VerifyParams::default())?;
    let me = node.ss58();
    let mut seeds = Vec::new();
    for n in 0..128u16 {
        let mut e = base[usize::from(n) % base.len()].clone();
        e.netuid = n;
        e.name = format!("{} #{n}", e.name);
        e.metrics.p50_latency_ms += u64::from(n) * 7 % 300;
        e.metrics.p95_latency_ms += u64::from(n) * 7 % 300;
        e.metrics.cost_per_query_rao += u64::from(n) * 13_000;
        seeds.push(mocks::seed_change(&e, &me, 1)?);
    }
    node.append(seeds)?;
    let config = ServerConfig {
        limits: Limits::default(),
        ..ServerConfig::default()
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.server_threads)
        .enable_all()
        .build()?;
    let state = AppState::new(node, config);
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    {
        let st = state.clone();
        server_rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let st = st.clone();
                let _ = tokio::task::spawn_blocking(move || st.flush_usage()).await;
            }
        });
    }
    server_rt.spawn(async move { axum::serve(listener, router(state)).await });

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let t0 = Instant::now();
    let lat: Vec<Vec<u32>> = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..args.connections {
            let (issued, errors, key) = (issued.clone(), errors.clone(), key.clone());
            let total = args.requests;
            let args_mcp = args.mcp;
            let only = args.tool.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut s = TcpStream::connect(addr).await.context("connect")?;
                s.set_nodelay(true)?;
                let mut buf = vec![0u8; 64 * 1024];
                let mut i = c;
                let mcp = args_mcp;
                while issued.fetch_add(1, Ordering::Relaxed) < total && Instant::now() < deadline {
                    let target = if i % 2 == 0 {
                        format!("/v1/subnets/{}", (i / 2) % 128)
                    } else {
                        format!("/v1/capabilities/{}", TAGS[(i / 2) as usize % TAGS.len()])
                    };
                    i += 1;
                    let req = if mcp {
                        let entry = match only.as_deref() {
                            Some("get_entry") => true,
                            Some(_) => false,
                            None => i % 2 == 0,
                        };
                        let call = if entry {
                            format!(r#""name":"get_entry","arguments":{{"netuid":{}}}"#, (i / 2) % 128)
                        } else {
                            format!(
                                r#""name":"find_subnets","arguments":{{"capability":"{}","limit":10}}"#,
                                TAGS[(i / 2) as usize % TAGS.len()]
                            )
                        };
                        let body = format!(
                            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{{call}}}}}"#
                        );
                        format!(
                            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
                             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else {
                        format!(
                            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\r\n"
                        )
                    };
                    let start = Instant::now();
                    s.write_all(req.as_bytes()).await?;
                    let (status, tool_error) = read_response(&mut s, &mut buf).await?;
                    lat.push(start.elapsed().as_micros() as u32);
                    if status != 200 || tool_error {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                anyhow::Ok(lat)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("client task").expect("client io"));
        }
        out
    });
    let elapsed = t0.elapsed();
    let mut all: Vec<u32> = lat.into_iter().flatten().collect();
    all.sort_unstable();
    let n = all.len();
    let pct = |p: f64| all[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0;
    println!(
        "requests {n}  errors {}  elapsed {:.2}s  throughput {:.0} req/s",
        errors.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        all[n - 1] as f64 / 1000.0
    );
    Ok(())
}

/// Read one HTTP/1.1 response with a Content-Length body; returns the status and whether the
/// body is an MCP tool error.
async fn read_response(s: &mut TcpStream, buf: &mut [u8]) -> Result<(u16, bool)> {
    let mut have = 0usize;
    loop {
        let n = s.read(&mut buf[have..]).await?;
        if n == 0 {
            bail!("server closed the connection");
        }
        have += n;
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            let status: u16 = head.get(9..12).context("status")?.parse()?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .context("no content-length")?;
            let total = end + 4 + len;
            if total > buf.len() {
                bail!("response larger than the buffer");
            }
            while have < total {
                let n = s.read(&mut buf[have..]).await?;
                if n == 0 {
                    bail!("server closed mid-body");
                }
                have += n;
            }
            let body = &buf[end + 4..total];
            let tool_error = body.windows(14).any(|w| w == br#""isError":true"#);
            return Ok((status, tool_error));
        }
    }
}
