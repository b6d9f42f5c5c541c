#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The one rule (DESIGN.md): the miner and validator cores read no clock, open no socket, touch
//! no file, draw from no unseeded RNG and iterate no hash map. This scans their sources and
//! manifests, so a violation fails CI rather than a code review.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[(&str, &str)] = &[
    ("std::time", "a clock"),
    ("SystemTime", "a clock"),
    ("Instant::", "a clock"),
    ("std::net", "a socket"),
    ("TcpStream", "a socket"),
    ("UdpSocket", "a socket"),
    ("std::fs", "the filesystem"),
    ("File::", "the filesystem"),
    ("std::env", "the environment"),
    ("std::thread", "thread timing"),
    ("thread_rng", "an unseeded RNG"),
    ("rand::rng(", "an unseeded RNG"),
    ("OsRng", "an unseeded RNG"),
    ("from_os_rng", "an unseeded RNG"),
    ("from_entropy", "an unseeded RNG"),
    ("getrandom", "an unseeded RNG"),
    ("HashMap", "hash-map iteration order"),
    ("HashSet", "hash-set iteration order"),
    ("tokio", "an async runtime"),
];

const FORBIDDEN_DEPS: &[&str] = &["tokio", "axum", "rusqlite", "polars", "subxt", "reqwest"];

fn crate_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn cores_use_no_clock_socket_file_or_unseeded_rng() {
    let mut violations = Vec::new();
    for name in ["miner", "validator"] {
        let mut files = Vec::new();
        rust_files(&crate_dir(name).join("src"), &mut files);
        assert!(!files.is_empty());
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (pat, what) in FORBIDDEN {
                    if code.contains(pat) {
                        violations.push(format!("{}:{}: {pat} ({what})", f.display(), i + 1));
                    }
                }
            }
        }
        let manifest = std::fs::read_to_string(crate_dir(name).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or("");
        let deps = deps.split("\n[").next().unwrap_or("");
        for line in deps.lines() {
            let dep = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
            if FORBIDDEN_DEPS.contains(&dep) {
                violations.push(format!("{name}/Cargo.toml depends on {dep}"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
