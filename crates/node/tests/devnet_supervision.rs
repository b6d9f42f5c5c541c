#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `orchestra-devnet` killed with SIGKILL (no chance to stop anything) takes its children with it:
//! Chopsticks, the mock subnets, the validator and the miners notice that their parent is gone
//! and exit on their own instead of running on as orphans holding ports.
//!
//! Linux only (reads `/proc`). Needs what the devnet needs: Node.js and the chain spec.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `(parent pid, state)` of process `pid`, or `None` once it no longer exists.
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let mut fields = text.get(text.rfind(')')? + 2..)?.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` is still running (a zombie waiting to be reaped has stopped).
fn running(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| !matches!(state, 'Z' | 'X'))
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|(ppid, _)| ppid == pid))
        .collect()
}

#[test]
fn a_devnet_killed_with_sigkill_leaves_no_children() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir().unwrap();
    let mut devnet = Command::new(env!("CARGO_BIN_EXE_orchestra-devnet"))
        .arg("--repo")
        .arg(&repo)
        .arg("--work-dir")
        .arg(work.path())
        .args(["--duration-s", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(devnet.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("Ctrl-C stops everything") => break,
            Some(Ok(line)) => seen.push(line),
            _ => panic!(
                "the devnet stopped before it was up: {}\n{seen:#?}",
                devnet.wait().unwrap()
            ),
        }
    }
    let kids = children(devnet.id());
    let names: Vec<String> = kids
        .iter()
        .map(|k| {
            std::fs::read_to_string(format!("/proc/{k}/comm"))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect();
    // Chopsticks, the mock subnets, the validator and two miners.
    assert!(kids.len() >= 5, "children of the devnet: {kids:?}");

    devnet.kill().unwrap();
    devnet.wait().unwrap();
    let t0 = Instant::now();
    // They notice within a quarter second (Chopsticks once its event loop is free), then shut
    // down as on SIGTERM: a node finishes what it is serving and gives up on the chain that went
    // with the devnet, which has taken up to ~30 s here. 90 s is systemd's default stop timeout.
    let mut exited: Vec<Option<Duration>> = vec![None; kids.len()];
    loop {
        for (i, &k) in kids.iter().enumerate() {
            if exited[i].is_none() && !running(k) {
                exited[i] = Some(t0.elapsed());
            }
        }
        if exited.iter().all(Option::is_some) || t0.elapsed() > Duration::from_secs(90) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let timeline: Vec<(&String, Option<Duration>)> = names.iter().zip(exited).collect();
    let left: Vec<u32> = kids.iter().copied().filter(|&k| running(k)).collect();
    for k in &left {
        let _ = Command::new("kill").args(["-9", &k.to_string()]).status();
    }
    let logs: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(
        left.is_empty(),
        "still running {:?} after the devnet was killed: {left:?}; exits {timeline:?} \
         (logs: {logs:?})",
        t0.elapsed()
    );
    println!("exits after the devnet's SIGKILL: {timeline:?}");
}
