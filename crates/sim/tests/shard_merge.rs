//! `--shard I/N` and `orchestra-sim merge`: a sweep run as 3 shards and merged is byte-identical
//! to the unsharded run; inconsistent shard sets are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra-sim"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small sweep with an attack that stops (so checks include `below_honest` and `recovery`):
/// 2 points × 2 seeds = 4 jobs, dealt 2/1/1 to three shards.
const SWEEP: &str = "# Shard test.\n[scenario]\nname = \"shardy\"\nseed = 5\nseeds = 2\ndays = 0.08\n\n\
[chain]\ntempo = 60\n\n[[miners]]\nstrategy = \"honest\"\ncount = 8\n\n[[miners]]\nstrategy = \"fabricator\"\ncount = 2\n\n\
[[validators]]\ncount = 2\nsample = 5\n\n[[events]]\nat_day = 0.05\nkind = \"attack_stop\"\ngroup = \"fabricator\"\n\n\
[sweep]\n\"mechanism.orchestration_share\" = [0.5, 0.7]\n\n\
[expect]\nbelow_honest = [\"fabricator\"]\nrecovery = { honest_share = 0.5, within_epochs = 20 }\n";

const COMPARED: &[&str] = &[
    "scenario.toml",
    "points.json",
    "runs.csv",
    "events.csv",
    "manifests.jsonl",
    "checks.json",
    // Written only with the `report` feature; compared when both runs have them.
    "summary.csv",
];

#[test]
fn three_shards_merge_to_the_unsharded_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("shardy.toml");
    std::fs::write(&scenario, SWEEP).unwrap();
    let s = scenario.to_str().unwrap();
    let whole = dir.path().join("whole");
    let o = sim(&[
        "--quiet",
        "--no-charts",
        "--out",
        whole.to_str().unwrap(),
        s,
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        text(&o.stderr)
    );
    let mut shards = Vec::new();
    for i in 1..=3 {
        let out = dir.path().join(format!("shard{i}"));
        let shard = format!("{i}/3");
        let o = sim(&[
            "--quiet",
            "--no-charts",
            "--shard",
            &shard,
            "--out",
            out.to_str().unwrap(),
            s,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(out.join("shard.json").exists());
        assert!(!out.join("checks.json").exists(), "a shard has no checks");
        shards.push(out);
    }
    // Shard 1 owns jobs 0 and 3, shards 2 and 3 one job each: manifests count the runs.
    let lines = |p: &Path| {
        std::fs::read_to_string(p.join("manifests.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        shards.iter().map(|d| lines(d)).collect::<Vec<_>>(),
        vec![2, 1, 1]
    );
    let merged = dir.path().join("merged");
    // Shards in any order.
    let o = sim(&[
        "merge",
        "--no-charts",
        shards[2].to_str().unwrap(),
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        text(&o.stderr)
    );
    let mut compared = 0;
    for f in COMPARED {
        let (a, b) = (whole.join(f), merged.join(f));
        if *f == "summary.csv" && !(a.exists() && b.exists()) {
            let report_feature = cfg!(feature = "report");
            assert!(
                !report_feature,
                "summary.csv missing with the report feature on"
            );
            continue;
        }
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(!a.is_empty(), "{f} is empty");
        assert!(
            a == b,
            "{f} differs between the unsharded and the merged run"
        );
        compared += 1;
    }
    assert!(compared >= 6);
    // The checks are real: both below_honest and recovery were evaluated at both points.
    let checks = std::fs::read_to_string(merged.join("checks.json")).unwrap();
    assert_eq!(
        checks.matches("below_honest:fabricator").count(),
        2,
        "{checks}"
    );
    assert_eq!(checks.matches("\"recovery\"").count(), 2, "{checks}");

    // A missing shard, and a duplicate, are refused.
    let o = sim(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[1].to_str().unwrap(),
        "--out",
        dir.path().join("bad").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("missing shard(s) 3/3"),
        "{}",
        text(&o.stderr)
    );
    let o = sim(&[
        "merge",
        shards[0].to_str().unwrap(),
        shards[0].to_str().unwrap(),
        "--out",
        dir.path().join("bad2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("both shard 1/3"),
        "{}",
        text(&o.stderr)
    );
    // A bad --shard is a usage error.
    let o = sim(&["--shard", "4/3", s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("1 ≤ I ≤ N"), "{}", text(&o.stderr));
}
