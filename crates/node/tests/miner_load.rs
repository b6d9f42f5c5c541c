//! Bounded load test of the real `orchestra-miner` binary on loopback: 40 concurrent clients
//! (10× its `--max-concurrency 4`) send a fixed number of signed challenges. Some are shed with
//! 503 + `Retry-After`, every other one succeeds with a verifying proof, the server keeps serving
//! afterwards, and its peak RSS (`VmHWM`) stays bounded and does not grow with a second burst.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod miner_support;

use miner_support::*;
use orchestra_node::auth::{now_ms, now_ns};
use orchestra_protocol::messages::Response;
use orchestra_protocol::proof;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const LIMIT: usize = 4;
const CLIENTS: usize = 10 * LIMIT;
const REQUESTS: usize = 300;

struct Miner(Child);

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    shed: usize,
    other: Vec<u16>,
}

async fn burst(addr: SocketAddr, miner_ss58: &str, seed: u64) -> Tally {
    let http = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, next, miner) = (http.clone(), next.clone(), miner_ss58.to_string());
        tasks.push(tokio::spawn(async move {
            let alice = hotkey(ALICE);
            let mut t = Tally::default();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= REQUESTS {
                    return t;
                }
                let c = challenge(&alice.ss58(), seed * 100_000 + i as u64, 15_000);
                let body = serde_json::to_vec(&c).unwrap();
                let r = post_signed(&http, addr, &alice, &miner, &body, now_ns()).await;
                match r.status().as_u16() {
                    200 => {
                        let resp: Response = r.json().await.unwrap();
                        proof::verify(&c, &resp, now_ms()).expect("proof verifies under load");
                        t.ok += 1;
                    }
                    503 => {
                        assert_eq!(r.headers()["retry-after"], "1");
                        t.shed += 1;
                        // A short pause instead of the advertised second keeps the pressure at
                        // 10x while letting the admitted requests finish.
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    s => t.other.push(s),
                }
            }
        }));
    }
    let mut total = Tally::default();
    for t in tasks {
        let t = t.await.unwrap();
        total.ok += t.ok;
        total.shed += t.shed;
        total.other.extend(t.other);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sheds_at_ten_times_the_limit_and_keeps_serving() {
    let (mocks, _) = start_mocks(0.05).await;
    let alice = hotkey(ALICE).ss58();
    let miner_key = hotkey("//Miner1").ss58();
    let child = Command::new(env!("CARGO_BIN_EXE_orchestra-miner"))
        .args([
            "--wallet.hotkey",
            "//Miner1",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--offline",
            "--allow-validator",
            &alice,
            "--mocks",
            mocks_dir().to_str().unwrap(),
            "--subnets-url",
            &format!("http://{mocks}"),
            "--max-concurrency",
            &LIMIT.to_string(),
            "--seed",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut miner = Miner(child);
    let mut line = String::new();
    BufReader::new(miner.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    let pid = miner.0.id();

    let start = std::time::Instant::now();
    let first = burst(addr, &miner_key, 1).await;
    let first_secs = start.elapsed().as_secs_f64();
    assert!(
        first.other.is_empty(),
        "unexpected statuses {:?}",
        first.other
    );
    assert_eq!(first.ok + first.shed, REQUESTS);
    assert!(
        first.shed > 0,
        "nothing was shed at 10x the limit: {first:?}"
    );
    assert!(first.ok >= LIMIT, "too few served: {first:?}");
    let hwm1 = vm_hwm_kib(pid);

    // Still serving, one request at a time.
    let http = reqwest::Client::new();
    let hk = hotkey(ALICE);
    for i in 0..3 {
        let c = challenge(&alice, 900_000 + i, 15_000);
        let r = post_challenge(&http, addr, &hk, &miner_key, &c).await;
        assert_eq!(r.status(), 200);
    }

    // A second burst: memory does not keep growing.
    let second = burst(addr, &miner_key, 2).await;
    assert!(second.other.is_empty(), "{:?}", second.other);
    assert!(second.shed > 0 && second.ok >= LIMIT, "{second:?}");
    let hwm2 = vm_hwm_kib(pid);
    eprintln!(
        "load: first {first:?} in {first_secs:.1} s, second {second:?}, VmHWM {hwm1} kB then {hwm2} kB"
    );
    assert!(hwm1 < 256 * 1024, "peak RSS {hwm1} kB");
    assert!(
        hwm2 <= hwm1 + hwm1 / 4 + 8 * 1024,
        "peak RSS grew from {hwm1} to {hwm2} kB"
    );

    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shed_line = format!(
        "orchestra_miner_requests_total{{outcome=\"shed\"}} {}",
        first.shed + second.shed
    );
    assert!(
        metrics.contains(&shed_line),
        "{shed_line} not in\n{metrics}"
    );
}
