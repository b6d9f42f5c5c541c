//! `orchestra-sim` end to end: the shipped scenarios validate, bad input is located and runs
//! nothing, runs are byte-for-byte reproducible, and a short honest run and a short attack run
//! behave as the mechanism intends.
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

/// `orchestra-sim --quiet [flags…] --out OUT SCENARIO`.
fn run_to(out: &Path, scenario: &Path, flags: &[&str]) -> Output {
    let mut args = vec!["--quiet"];
    args.extend_from_slice(flags);
    args.extend(["--out", out.to_str().unwrap(), scenario.to_str().unwrap()]);
    sim(&args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small, fast scenario (tempo 60 so a few hours hold several epochs).
fn small(name: &str, extra: &str) -> String {
    format!(
        "# A small test scenario.\n[scenario]\nname = \"{name}\"\nseed = 7\nseeds = 2\ndays = 0.15\n\n[chain]\ntempo = 60\n\n\
         [[miners]]\nstrategy = \"honest\"\ncount = 12\n\n[[validators]]\ncount = 3\nsample = 6\n\n[load]\nrate_per_hour = 240\n{extra}"
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn every_shipped_scenario_validates() {
    let mut args = vec!["check"];
    let files: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(files.len() >= 16, "scenario corpus: {files:?}");
    args.extend(files.iter().map(String::as_str));
    let o = sim(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn bad_input_is_located_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "unknown_key.toml",
            small("u", "\n[mechanism]\naudit_rat = 0.3\n"),
            &["unknown_key.toml:", "`mechanism.audit_rat`", "unknown key"],
        ),
        (
            "wrong_type.toml",
            small("w", "").replace("count = 12", "count = \"twelve\""),
            &[
                "wrong_type.toml:13:9",
                "`miners[0].count`",
                "string \"twelve\"",
            ],
        ),
        (
            "out_of_range.toml",
            small("o", "\n[mechanism]\norchestration_share = 1.4\n"),
            &["`mechanism.orchestration_share`", "found 1.4"],
        ),
        (
            "missing_mocks.toml",
            small("m", "\n[subnets]\ndir = \"no/such/dir\"\n"),
            &["`subnets.dir`", "no/such/dir"],
        ),
        (
            "bad_strategy.toml",
            small("s", "").replace("\"honest\"", "\"hnest\""),
            &["`miners[0].strategy`", "hnest"],
        ),
        (
            "no_miners.toml",
            "[scenario]\nname = \"n\"\n\n[[validators]]\ncount = 1\n".to_string(),
            &["`miners`", "at least one [[miners]] group"],
        ),
        (
            "bad_params.toml",
            small(
                "p",
                "\n[[miners]]\nstrategy = \"fabricator\"\ncount = 2\nparams = { rate = 3.0 }\n",
            ),
            &["`miners[1].params.rate`", "[0, 1]"],
        ),
        (
            "bad_event.toml",
            small(
                "e",
                "\n[[events]]\nat_day = 0.1\nkind = \"schema_change\"\nnetuid = 22\nendpoint = \"web_search\"\nversion = 9\n",
            ),
            &["`events[0].version`", "found 9"],
        ),
    ];
    for (file, body, wanted) in cases {
        let path = write(dir.path(), file, &body);
        let out = dir.path().join(format!("out-{file}"));
        for args in [
            vec!["check", path.to_str().unwrap()],
            vec!["--out", out.to_str().unwrap(), path.to_str().unwrap()],
        ] {
            let o = sim(&args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{file}: {err}");
            for w in wanted {
                assert!(err.contains(w), "{file}: wanted {w:?} in:\n{err}");
            }
        }
        assert!(!out.exists(), "{file}: a run started despite the error");
    }
}

#[test]
fn runs_are_byte_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "det.toml",
        &small(
            "det",
            "\n[[miners]]\nstrategy = \"fabricator\"\ncount = 3\n",
        ),
    );
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    for (out, jobs) in [(&a, "1"), (&b, "2")] {
        let o = run_to(out, &path, &["--no-charts", "--jobs", jobs]);
        assert!(
            o.status.code() == Some(0) || o.status.code() == Some(1),
            "{}",
            text(&o.stderr)
        );
    }
    // `summary.csv` is the report's (the `report` feature).
    let report = cfg!(feature = "report").then_some("summary.csv");
    for file in [
        "runs.csv",
        "events.csv",
        "manifests.jsonl",
        "checks.json",
        "points.json",
    ]
    .into_iter()
    .chain(report)
    {
        let x = std::fs::read(a.join(file)).unwrap();
        let y = std::fs::read(b.join(file)).unwrap();
        assert!(x == y, "{file} differs between runs");
    }
    let manifests = std::fs::read_to_string(a.join("manifests.jsonl")).unwrap();
    let hashes: Vec<String> = manifests
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event_log_hash"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(hashes.len(), 2);
    assert_ne!(
        hashes[0], hashes[1],
        "different seeds must give different runs"
    );
}

fn run_metrics(dir: &Path) -> Vec<(i64, String, String, f64)> {
    let text = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let v = f[8].parse().ok()?;
            Some((f[4].parse().unwrap(), f[5].to_string(), f[7].to_string(), v))
        })
        .collect()
}

#[test]
fn honest_run_splits_as_designed_and_conserves_emission() {
    let dir = tempfile::tempdir().unwrap();
    // Two schema changes give the Ledger something to verify: in a static world nobody earns
    // Ledger credit and normalized mode rightly pays all miner emission for orchestration.
    let events = "\n[[events]]\nat_day = 0.005\nkind = \"schema_change\"\nnetuid = 22\nendpoint = \"web_search\"\nversion = 2\n\n\
                  [[events]]\nat_day = 0.01\nkind = \"schema_change\"\nnetuid = 13\nendpoint = \"on_demand\"\nversion = 2\n\n\
                  [expect]\nhonest_share_min = 0.99\n";
    let path = write(dir.path(), "honest.toml", &small("honest", events));
    let out = dir.path().join("out");
    let o = run_to(&out, &path, &["--no-charts"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let checks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checks.json")).unwrap()).unwrap();
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["emission_conserved", "honest_share_min"]);
    let rows = run_metrics(&out);
    // Once both products have activity, the realised split is the target within 1.5 points in
    // every epoch (Yuma clips the two products' weights differently, so it is not exact; at the
    // default s = 0.497 the first such epoch is 1.2 points off, the rest under 1).
    let splits: Vec<f64> = rows
        .iter()
        .filter(|r| r.0 >= 6 && r.2 == "split_orchestration")
        .map(|r| r.3)
        .collect();
    assert!(splits.len() >= 8, "{splits:?}");
    let target = orchestra_mechanism::MechanismParams::default().orchestration_share;
    assert!(
        splits.iter().all(|s| (s - target).abs() <= 0.015),
        "{splits:?}"
    );
    let accepted: f64 = rows
        .iter()
        .filter(|r| r.0 < 0 && r.2 == "proposals_accepted")
        .map(|r| r.3)
        .sum();
    assert!(accepted > 0.0);
    // Honest miners' consensus is stable once bonds have formed: over the second half of the run
    // each miner's consensus moves by less than a third between consecutive epochs.
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut by_miner: std::collections::BTreeMap<(String, String), Vec<(i64, f64)>> =
        Default::default();
    for f in runs
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
    {
        if f[7] == "consensus" && f[5].starts_with("miner:") && f[4] != "-1" {
            by_miner
                .entry((f[3].to_string(), f[5].to_string()))
                .or_default()
                .push((f[4].parse().unwrap(), f[8].parse().unwrap()));
        }
    }
    let last = rows.iter().map(|r| r.0).max().unwrap();
    for (miner, series) in by_miner {
        let late: Vec<f64> = series
            .iter()
            .filter(|(e, _)| *e >= last / 2)
            .map(|x| x.1)
            .collect();
        for w in late.windows(2) {
            assert!(
                w[1] > 0.0 && (w[1] - w[0]).abs() <= w[0].max(w[1]) / 3.0,
                "{miner:?}: {late:?}"
            );
        }
    }
}

/// Mean of `metric` over the `miner:` rows of `strategy` at the last epoch, all seeds.
fn last_epoch_mean(out: &Path, strategy: &str, metric: &str) -> f64 {
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let rows: Vec<Vec<&str>> = runs
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let last = rows
        .iter()
        .filter_map(|f| f[4].parse::<i64>().ok())
        .max()
        .unwrap();
    let v: Vec<f64> = rows
        .iter()
        .filter(|f| {
            f[4] == last.to_string()
                && f[6] == strategy
                && f[7] == metric
                && f[5].starts_with("miner:")
        })
        .map(|f| f[8].parse().unwrap())
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn fabricators_earn_less_than_honest_miners() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "\n[mechanism]\naudit_rate = 0.5\n\n[[miners]]\nstrategy = \"fabricator\"\ncount = 4\n\n[expect]\nbelow_honest = [\"fabricator\"]\n";
    let path = write(
        dir.path(),
        "fab.toml",
        // Five seeds: with three, the intervals of a 3.6-hour run only just separated.
        &small("fab", extra).replace("seeds = 2", "seeds = 5"),
    );
    let out = dir.path().join("out");
    let o = run_to(&out, &path, &["--no-charts"]);
    let checks = std::fs::read_to_string(out.join("checks.json")).unwrap();
    assert_eq!(o.status.code(), Some(0), "{checks}\n{}", text(&o.stderr));
    assert!(checks.contains("below_honest:fabricator"), "{checks}");
    // Fabricated answers score (next to) nothing: at the last epoch the validators'
    // orchestration scores of fabricators are a small fraction of honest miners'.
    let (fab, honest) = (
        last_epoch_mean(&out, "fabricator", "orchestration_score"),
        last_epoch_mean(&out, "honest", "orchestration_score"),
    );
    assert!(fab < 0.2 * honest, "fabricator {fab} vs honest {honest}");
}

/// The report crate on a real run: a two-point sweep writes every table and chart, and
/// `summary.csv` agrees with a direct computation from the run table. (Without the `report`
/// feature there is no report to check.)
#[test]
#[cfg(feature = "report")]
fn a_small_sweep_is_reported_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let body = small(
        "rep",
        "\n[sweep]\n\"mechanism.orchestration_share\" = [0.5, 0.7]\n",
    )
    .replace("days = 0.15", "days = 0.05");
    let path = write(dir.path(), "rep.toml", &body);
    let out = dir.path().join("out");
    let o = run_to(&out, &path, &[]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        text(&o.stderr)
    );
    for file in [
        "runs.csv",
        "runs.parquet",
        "summary.csv",
        "summary.parquet",
        "timeseries.parquet",
        "index.html",
        "checks.json",
        "manifests.jsonl",
        "points.json",
        "events.csv",
        "scenario.toml",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let charts: Vec<_> = std::fs::read_dir(out.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        charts
            .iter()
            .any(|c| c.to_string_lossy().starts_with("sweep_")),
        "{charts:?}"
    );
    // summary.csv's honest_share mean per point = mean over seeds of the whole-run rows.
    let rows = run_metrics(&out);
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let header: Vec<&str> = summary.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for point in ["0", "1"] {
        let direct: Vec<f64> = runs
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[1] == point && f[4] == "-1" && f[5] == "all" && f[7] == "honest_share")
            .map(|f| f[8].parse().unwrap())
            .collect();
        assert_eq!(direct.len(), 2);
        let mean = direct.iter().sum::<f64>() / 2.0;
        let line = summary
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| {
                f[col("point")] == point
                    && f[col("entity")] == "all"
                    && f[col("metric")] == "honest_share"
            })
            .unwrap();
        let reported: f64 = line[col("mean")].parse().unwrap();
        assert!(
            (reported - mean).abs() < 1e-12,
            "point {point}: {reported} vs {mean}"
        );
    }
    assert!(!rows.is_empty());
}

#[test]
fn organic_requests_move_on_from_miners_that_do_not_answer() {
    // Half the miners decline everything (a cherry picker that finds every plan too dear). In
    // the first epoch nobody has incentive yet, so users' requests are drawn uniformly and half
    // land on a decliner: answered only if the validator tries another miner. (Later, decliners
    // earn no incentive and stop being drawn, so only epoch 0 is compared.)
    let dir = tempfile::tempdir().unwrap();
    let decliners = "\n[[miners]]\nstrategy = \"cherry_picker\"\ncount = 12\n\
                     params = { answer_rate = 0.0, max_cost_rao = 0 }\n\
                     \n[sweep]\n\"load.attempts\" = [1, 3]\n";
    let body = small("organic", decliners).replace("days = 0.15", "days = 0.02");
    let path = write(dir.path(), "organic.toml", &body);
    let out = dir.path().join("out");
    let o = run_to(&out, &path, &[]);
    assert!(o.status.code().is_some(), "{}", text(&o.stderr));
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let mut quality = [Vec::new(), Vec::new()];
    for line in runs.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[4] == "0" && f[5] == "all" && f[7] == "organic_quality" {
            let point: usize = f[1].parse().unwrap();
            if let Ok(v) = f[8].parse::<f64>()
                && v.is_finite()
            {
                quality[point].push(v);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (one, three) = (mean(&quality[0]), mean(&quality[1]));
    assert!(
        quality[0].len() == 2 && quality[1].len() == 2,
        "{quality:?}"
    );
    // One try: about half the requests land on a decliner and get nothing. Three tries: all but
    // one in eight reach an honest miner.
    assert!(
        three > one + 0.2,
        "quality with 1 try {one}, with 3 tries {three}"
    );
    assert!(
        one < 0.75 * three,
        "quality with 1 try {one}, with 3 tries {three}"
    );
}

/// The owner's levers as scenario events: a trigger moves the next epoch (recorded with its
/// block), a tempo outside the owner's bounds is refused and recorded, not applied; a trigger
/// under the legacy scheduler is a located error.
#[test]
fn owner_epoch_events_are_applied_or_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let events = "\n[[events]]\nat_day = 0.0525\nkind = \"trigger_epoch\"\n\n\
                  [[events]]\nat_day = 0.06\nkind = \"set_tempo\"\ntempo = 30\n";
    let scenario = write(dir.path(), "owner.toml", &small("owner", events));
    let out = dir.path().join("out");
    let o = run_to(&out, &scenario, &["--seeds", "1"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let log = std::fs::read_to_string(out.join("events.csv")).unwrap();
    // Day 0.0525 is block 378; the epoch of block 360 ran, so the next automatic one is 420
    // and the trigger's (378 + the 10-block freeze window) comes first.
    assert!(
        log.lines()
            .any(|l| l.contains("trigger_epoch") && l.contains("epoch at block 388")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("set_tempo_refused") && l.contains("TempoOutOfBounds")),
        "{log}"
    );

    let legacy =
        small("legacy", events).replace("tempo = 60\n", "tempo = 60\nepoch_rule = \"legacy\"\n");
    let scenario = write(dir.path(), "legacy.toml", &legacy);
    let o = sim(&["check", scenario.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("`events[0].kind`") && err.contains("epoch_rule = \"stateful\""),
        "{err}"
    );
}
