//! `orchestra-sim tune`: the search finds a known optimum deterministically, a tiny scenario
//! tune is reproducible whatever the thread count, and bad `[tune]` tables are located.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use orchestra_sim::scenario::Scenario;
use orchestra_sim::tune::{
    Bound, Dim, Evaluation, Evaluator, Goal, Goals, Objective, Outcome, Settings, TuneError,
    optimise,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A synthetic objective with a known optimum at x = 0.3, y = −0.5, mode = "b", plus seed noise
/// common to all candidates (what common random numbers cancel) and a little candidate-specific
/// noise.
struct Synthetic;

fn hash01(a: u64, b: &str) -> f64 {
    let h = blake3::hash(format!("{a}/{b}").as_bytes());
    let v = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap());
    (v >> 11) as f64 / (1u64 << 53) as f64
}

impl Evaluator for Synthetic {
    fn evaluate(
        &self,
        values: &[toml::Value],
        key: &str,
        seeds: &[u64],
    ) -> Result<Evaluation, TuneError> {
        let x = values[0].as_float().unwrap();
        let y = values[1].as_float().unwrap();
        let mode = values[2].as_str().unwrap();
        let base = 1.0
            - (x - 0.3).powi(2)
            - 0.25 * (y + 0.5).powi(2)
            - if mode == "b" { 0.0 } else { 0.2 };
        let f: Vec<f64> = seeds
            .iter()
            .map(|&s| base + 0.05 * (hash01(s, "common") - 0.5) + 0.002 * (hash01(s, key) - 0.5))
            .collect();
        let mut kpis = BTreeMap::new();
        kpis.insert("f".to_string(), f);
        // A constraint that holds at the optimum but cuts off part of the box: x + y ≤ 0.2.
        kpis.insert("sum".to_string(), seeds.iter().map(|_| x + y).collect());
        Ok(Evaluation {
            kpis,
            ..Evaluation::default()
        })
    }
}

fn synthetic_tune(threads: usize) -> Outcome {
    let dims = vec![
        Dim {
            key: "x".into(),
            min: 0.0,
            max: 1.0,
            integer: false,
            choices: vec![],
        },
        Dim {
            key: "y".into(),
            min: -2.0,
            max: 2.0,
            integer: false,
            choices: vec![],
        },
        Dim {
            key: "mode".into(),
            min: 0.0,
            max: 1.0,
            integer: false,
            choices: vec!["a".into(), "b".into(), "c".into()],
        },
    ];
    let goals = Goals {
        objectives: vec![Objective {
            metric: "f".into(),
            goal: Goal::Max,
        }],
        constraints: vec![Bound {
            metric: "sum".into(),
            kind: Goal::Max,
            bound: 0.2,
        }],
    };
    let settings = Settings {
        budget: 200,
        population: 10,
        seed: 42,
        seeds: vec![1, 2, 3],
        extra_seeds: (4..=12).collect(),
        finalists: 3,
        sigma: 0.3,
    };
    let baseline = vec![
        toml::Value::Float(0.9),
        toml::Value::Float(1.5),
        toml::Value::from("a"),
    ];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| optimise(&dims, &baseline, &goals, &settings, &Synthetic, |_| {}).unwrap())
}

#[test]
fn finds_a_known_optimum_deterministically() {
    let a = synthetic_tune(1);
    let b = synthetic_tune(2);
    let best = a.best();
    let x = best.params["x"].as_float().unwrap();
    let y = best.params["y"].as_float().unwrap();
    assert!((x - 0.3).abs() < 0.05, "x = {x}");
    assert!((y + 0.5).abs() < 0.15, "y = {y}");
    assert_eq!(best.params["mode"].as_str(), Some("b"));
    assert!(best.feasible, "{:?}", best.violations);
    // Intervals come with the result.
    assert!(best.score.lo <= best.score.mean && best.score.mean <= best.score.hi);
    assert!(best.score.n >= 3);
    // The baseline is candidate 0 and is far worse.
    assert!(a.candidates[0].score.mean < best.score.mean - 0.3);
    // Same result twice, whatever the thread count.
    let keys = |o: &Outcome| {
        o.candidates
            .iter()
            .map(|c| c.key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&a), keys(&b));
    assert_eq!(a.recommended, b.recommended);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    // Sensitivity: f falls with y above the optimum, and most candidates sit above it early on.
    assert_eq!(a.sensitivity.len(), 3);
    assert!(
        a.sensitivity
            .iter()
            .all(|s| s.score.is_nan() || s.score.abs() <= 1.0)
    );
}

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

const TINY: &str = "# Tiny tune.\n[scenario]\nname = \"tiny_tune\"\nseed = 3\ndays = 0.04\n\n[chain]\ntempo = 60\n\n\
[[miners]]\nstrategy = \"honest\"\ncount = 6\n\n[[miners]]\nstrategy = \"ledger_spammer\"\ncount = 2\n\n\
[[validators]]\ncount = 2\nsample = 4\n\n\
[tune]\nseed = 5\nbudget = 2\npopulation = 2\nseeds = 2\nmax_seeds = 2\nfinalists = 1\ninner_probes = 1\ninner_refine = 1\n\
[tune.free]\n\"mechanism.orchestration_share\" = { min = 0.4, max = 0.8 }\n\
[tune.knobs.ledger_spammer]\nper_response = { min = 3, max = 5 }\n";

#[test]
fn a_scenario_tune_is_reproducible_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let run = |name: &str, jobs: &str| {
        let out = dir.path().join(name);
        let o = sim(&[
            "tune",
            scenario.to_str().unwrap(),
            "--quiet",
            "--no-charts",
            "-j",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        (out, text(&o.stdout))
    };
    let (a, stdout) = run("a", "1");
    let (b, _) = run("b", "2");
    for f in [
        "runs.csv",
        "events.csv",
        "manifests.jsonl",
        "points.json",
        "tune.json",
        "recommended.toml",
    ] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(!x.is_empty(), "{f} empty");
        assert!(x == y, "{f} differs between -j 1 and -j 2");
    }
    assert!(stdout.contains("[mechanism]"), "{stdout}");
    let snippet = std::fs::read_to_string(a.join("recommended.toml")).unwrap();
    assert!(
        snippet.contains("[mechanism]\norchestration_share = "),
        "{snippet}"
    );
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("tune.json")).unwrap()).unwrap();
    let cands = t["candidates"].as_array().unwrap();
    assert!(
        cands.len() >= 2,
        "baseline and at least one searched candidate"
    );
    // The baseline is the defaults.
    assert_eq!(
        cands[0]["params"]["mechanism.orchestration_share"],
        orchestra_mechanism::MechanismParams::default().orchestration_share
    );
    // The inner search ran for the spammer group: 1 design + 1 refinement probe + as written.
    let r = &cands[0]["details"]["best_responses"][0];
    assert_eq!(r["group"], "ledger_spammer");
    assert_eq!(cands[0]["details"]["probes"], 3);
    assert!(r["knobs"]["per_response"].is_number(), "{r}");
    // Every run is in the table: 3 probes × 2 seeds per candidate, one manifest per run.
    let manifests = std::fs::read_to_string(a.join("manifests.jsonl")).unwrap();
    assert_eq!(manifests.lines().count(), cands.len() * 3 * 2);
    let runs = std::fs::read_to_string(a.join("runs.csv")).unwrap();
    assert!(runs.contains("miners.ledger_spammer.params.per_response="));
    // `[tune.knobs]` narrows the probes: every probe's per_response lies in [3, 5] (probe 0 runs
    // the group as written, with no per_response set).
    let tried: BTreeSet<i64> = runs
        .split("miners.ledger_spammer.params.per_response=")
        .skip(1)
        .map(|rest| {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            n.parse().unwrap()
        })
        .collect();
    assert!(
        !tried.is_empty() && tried.iter().all(|n| (3..=5).contains(n)),
        "{tried:?}"
    );
    if cfg!(feature = "report") {
        let html = std::fs::read_to_string(a.join("index.html")).unwrap();
        assert!(html.contains("<h2>Tuning</h2>") && html.contains("Recommendation"));
    }
}

fn load(text: &str) -> Result<Scenario, String> {
    Scenario::from_str(Path::new("t.toml"), text.to_string()).map_err(|e| e.to_string())
}

#[test]
fn bad_tune_tables_are_located() {
    let base = "# t\n[scenario]\nname = \"t\"\n[[miners]]\nstrategy = \"honest\"\ncount = 4\n[[miners]]\nstrategy = \"fabricator\"\ncount = 1\n[[validators]]\ncount = 1\n";
    let ok = format!(
        "{base}[tune]\n[tune.free]\n\"mechanism.orchestration_share\" = {{ min = 0.3, max = 0.9 }}\n"
    );
    let s = load(&ok).unwrap();
    assert!(s.points[0].spec.tune.is_some());
    let cases: Vec<(String, &str, &str)> = vec![
        (
            ok.replace("[tune]\n", "[tune]\nbudgt = 3\n"),
            "t.toml:13:1: `tune.budgt`",
            "unknown key",
        ),
        (
            ok.replace("orchestration_share\"", "orchestration_shar\""),
            "`tune.free.\"mechanism.orchestration_shar\"`",
            "stays valid",
        ),
        (
            ok.replace("min = 0.3", "min = 0.95"),
            "`tune.free.\"mechanism.orchestration_share\"`",
            "min < max",
        ),
        (
            ok.replace("max = 0.9", "max = 1.5"),
            "`tune.free.\"mechanism.orchestration_share\"`",
            "mechanism.orchestration_share",
        ),
        (
            ok.replace("[tune]\n", "[tune]\npopulation = 1\n"),
            "`tune.population`",
            "between 2 and 1000",
        ),
        (
            ok.replace("[tune]\n", "[tune]\nseeds = 1\n"),
            "`tune.seeds`",
            "intervals need two",
        ),
        (
            ok.replace(
                "[tune]\n",
                "[tune]\nobjectives = [{ metric = \"honesty\", goal = \"max\" }]\n",
            ),
            "`tune.objectives`",
            "honest_share",
        ),
        (
            format!("{ok}[tune.constraints]\nsplit_tolerance = 2.0\n"),
            "`tune.constraints.split_tolerance`",
            "found 2",
        ),
        (
            format!("{ok}[tune.constraints.max]\nlag = 5\n"),
            "`tune.constraints.max.lag`",
            "detection_lag_blocks",
        ),
        (
            format!("{ok}[sweep]\n\"mechanism.audit_rate\" = [0.1, 0.2]\n"),
            "`tune`",
            "either [tune] or [sweep]",
        ),
        (
            format!("{ok}[tune.knobs.fabricatr]\nrate = {{ min = 0.5, max = 1.0 }}\n"),
            "`tune.knobs.fabricatr`",
            "an adversary [[miners]] group label (fabricator)",
        ),
        (
            format!("{ok}[tune.knobs.fabricator]\nrat = {{ min = 0.5, max = 1.0 }}\n"),
            "`tune.knobs.fabricator.rat`",
            "a knob of `fabricator` (rate, steps, pick)",
        ),
        (
            format!("{ok}[tune.knobs.fabricator]\nrate = {{ min = 0.5, max = 1.5 }}\n"),
            "`tune.knobs.fabricator.rate`",
            "min ≤ max within the knob's range [0, 1]",
        ),
        (
            ok.replace("{ min = 0.3, max = 0.9 }", "{ min = 0.3 }"),
            "`tune.free.\"mechanism.orchestration_share\"`",
            "choices",
        ),
    ];
    for (text, place, what) in cases {
        let err = load(&text).unwrap_err();
        assert!(
            err.contains(place) && err.contains(what),
            "{err}\n  wanted {place} … {what}"
        );
    }
}
