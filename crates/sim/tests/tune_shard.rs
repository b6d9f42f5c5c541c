//! `orchestra-sim tune --state DIR [--shard I/N]`: a tune run as 3 concurrent shards sharing a
//! state directory, and a tune resumed from an interrupted, partial state directory, both write
//! exactly the unsharded tune's output; stored results never run twice; a corrupt result and a
//! state directory of a different tune are refused with errors naming the file and what differs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orchestra-sim"));
    c.args(args).current_dir(root());
    c
}

fn sim(args: &[&str]) -> Output {
    command(args).output().unwrap()
}

fn spawn(args: &[&str]) -> Child {
    command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tune small enough for a debug build: 3 candidates × 2 probes (as written, 1 refinement) × 2
/// seeds, then racing. The free parameter (the replay window) does not matter when nobody
/// replays, so the finalists tie exactly and racing adds a round on a third seed: every kind of
/// batch (probes, refinement, racing) is exercised.
const TUNE: &str = "# Sharded tune.\n[scenario]\nname = \"shard_tune\"\nseed = 3\ndays = 0.02\n\n\
[chain]\ntempo = 60\n\n[[miners]]\nstrategy = \"honest\"\ncount = 4\n\n\
[[miners]]\nstrategy = \"ledger_spammer\"\ncount = 2\n\n[[validators]]\ncount = 2\nsample = 4\n\n\
[tune]\nseed = 5\nbudget = 2\npopulation = 2\nseeds = 2\nmax_seeds = 3\nfinalists = 2\n\
inner_probes = 0\ninner_refine = 1\n\
[tune.free]\n\"mechanism.replay_window_ms\" = { min = 60000, max = 100000000, integer = true }\n";

/// Files a tune writes that must not depend on sharding or resuming.
const COMPARED: &[&str] = &[
    "scenario.toml",
    "runs.csv",
    "events.csv",
    "manifests.jsonl",
    "points.json",
    "tune.json",
    "recommended.toml",
];

fn same_output(a: &Path, b: &Path, what: &str) {
    for f in COMPARED {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(!x.is_empty(), "{f} is empty");
        assert!(x == y, "{f} differs between the unsharded tune and {what}");
    }
}

fn results(state: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(state.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    v.sort();
    v
}

/// "… N simulation(s) run here, M taken from …" → (N, M).
fn counts(stderr: &str) -> (usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains("simulation(s) run here"))
        .unwrap_or_else(|| panic!("no summary line in {stderr}"));
    let num = |before: &str| -> usize {
        let head = &line[..line.find(before).unwrap()];
        head.split_whitespace().last().unwrap().parse().unwrap()
    };
    (num(" simulation(s) run here"), num(" taken from"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("results")).unwrap();
    std::fs::copy(from.join("state.json"), to.join("state.json")).unwrap();
    for f in results(from) {
        std::fs::copy(&f, to.join("results").join(f.file_name().unwrap())).unwrap();
    }
}

#[test]
fn sharded_and_resumed_tunes_write_the_unsharded_output() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("shard_tune.toml");
    std::fs::write(&scenario, TUNE).unwrap();
    let s = scenario.to_str().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    // The reference: an ordinary tune.
    let whole = path("whole");
    let o = sim(&["tune", s, "--quiet", "--no-charts", "--out", &whole]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let runs = std::fs::read_to_string(Path::new(&whole).join("manifests.jsonl"))
        .unwrap()
        .lines()
        .count();
    let t: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&whole).join("tune.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(t["final_seeds"], 3, "racing ran: {}", t["finalists"]);

    // Three shards at once, sharing one state directory and one --out (shard 1 writes it).
    let state = path("state");
    let sharded = path("sharded");
    let shards: Vec<Child> = (1..=3)
        .map(|i| {
            let shard = format!("{i}/3");
            spawn(&[
                "tune",
                s,
                "--no-charts",
                "-j",
                "1",
                "--shard",
                &shard,
                "--state",
                &state,
                "--wait-timeout",
                "300",
                "--out",
                &sharded,
            ])
        })
        .collect();
    let outputs: Vec<Output> = shards
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (i, o) in outputs.iter().enumerate() {
        assert!(o.status.success(), "shard {}: {}", i + 1, text(&o.stderr));
    }
    same_output(Path::new(&whole), Path::new(&sharded), "the 3-shard tune");
    // One result per simulation, each simulated by exactly one shard.
    assert_eq!(results(Path::new(&state)).len(), runs);
    let simulated: usize = outputs.iter().map(|o| counts(&text(&o.stderr)).0).sum();
    assert_eq!(simulated, runs, "every simulation ran exactly once");
    assert!(
        outputs.iter().all(|o| counts(&text(&o.stderr)).0 > 0),
        "every shard did some of the work"
    );
    // Progress names the shard, the batch and what is done and pending.
    let log = text(&outputs[1].stderr);
    for want in [
        "shard 2/3 · baseline · probes:",
        "shard 2/3 · generation 1/1 · refinement 1/1:",
        "shard 2/3 · racing round 1 (3 seeds):",
        "stored,",
        "pending",
    ] {
        assert!(log.contains(want), "{want:?} not in\n{log}");
    }
    assert!(
        text(&outputs[2].stdout).contains("shard 1 writes the output"),
        "{}",
        text(&outputs[2].stdout)
    );

    // A finished state directory replays without simulating anything.
    let again = path("again");
    let o = sim(&["tune", s, "--no-charts", "--state", &state, "--out", &again]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(counts(&text(&o.stderr)), (0, runs));
    same_output(
        Path::new(&whole),
        Path::new(&again),
        "a replay of the state",
    );

    // An interrupted tune: half the results, and a temporary a killed process left behind.
    let partial = dir.path().join("partial");
    copy_dir(Path::new(&state), &partial);
    for f in results(&partial).iter().step_by(2) {
        std::fs::remove_file(f).unwrap();
    }
    std::fs::write(
        partial
            .join("results")
            .join(".p0-s3-0123.json.0123456789abcdef.tmp"),
        "{\"header\": {",
    )
    .unwrap();
    let p = partial.to_str().unwrap();
    // Shard 2 alone, not waiting: stores its part of the first incomplete batch and stops.
    let o = sim(&[
        "tune",
        s,
        "--no-charts",
        "--shard",
        "2/3",
        "--state",
        p,
        "--wait-timeout",
        "0",
        "--out",
        &path("never"),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--wait-timeout 0"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !Path::new(&path("never")).exists(),
        "only a complete search writes output"
    );
    // Then one unsharded process finishes the tune, simulating only what is missing.
    let before = results(&partial).len();
    assert!(before < runs);
    let resumed = path("resumed");
    let o = sim(&["tune", s, "--no-charts", "--state", p, "--out", &resumed]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(counts(&text(&o.stderr)), (runs - before, before));
    same_output(Path::new(&whole), Path::new(&resumed), "the resumed tune");

    // A corrupt result is an error naming the file.
    let corrupt = dir.path().join("corrupt");
    copy_dir(Path::new(&state), &corrupt);
    let victim = results(&corrupt)[0].clone();
    std::fs::write(&victim, "{\"header\": {\"format\": 1").unwrap();
    let o = sim(&[
        "tune",
        s,
        "--no-charts",
        "--state",
        corrupt.to_str().unwrap(),
        "--out",
        &path("c"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains(&victim.display().to_string()) && err.contains("not a complete tune result"),
        "{err}"
    );

    // Results of a different tune are refused, naming what differs.
    for (extra, want) in [
        (vec!["--days", "0.03"], "--days: stored 0.02, this run 0.03"),
        (vec!["--budget", "4"], "--budget: stored 2, this run 4"),
    ] {
        let mut args = vec!["tune", s, "--state", &state, "--out", "x"];
        args.extend(extra);
        let o = sim(&args);
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert!(err.contains(want) && err.contains("state.json"), "{err}");
    }
    let other = dir.path().join("other");
    copy_dir(Path::new(&state), &other);
    let state_json = other.join("state.json");
    let mut h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_json).unwrap()).unwrap();
    h["git_commit"] = "0000000".into();
    std::fs::write(&state_json, h.to_string()).unwrap();
    let o = sim(&["tune", s, "--state", other.to_str().unwrap(), "--out", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("git commit: stored 0000000"),
        "{}",
        text(&o.stderr)
    );
    // --shard needs --state.
    let o = sim(&["tune", s, "--shard", "1/2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--state"), "{}", text(&o.stderr));
}
