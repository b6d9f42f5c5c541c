//! Synthetic run directories (runs.csv, events.csv, points.json, checks.json, manifests.jsonl,
//! scenario.toml) for the report tests: realistic shapes, deterministic values.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

/// Deterministic PRNG (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal (sum of uniforms), mean 0, sd `sd`.
    pub fn n(&mut self, sd: f64) -> f64 {
        (self.f() + self.f() + self.f() + self.f() - 2.0) * sd * 1.732
    }
}

/// What to generate.
#[derive(Clone)]
pub struct Synth {
    pub name: String,
    pub question: String,
    /// Strategy → number of miners using it.
    pub strategies: Vec<(String, usize)>,
    /// Parameter points (empty map without a sweep).
    pub points: Vec<BTreeMap<String, f64>>,
    pub seeds: u64,
    pub epochs: i64,
    pub validators: usize,
    /// Write per-epoch miner rows (big).
    pub miner_epochs: bool,
    /// Events (epoch, kind).
    pub events: Vec<(i64, String)>,
    /// Metrics of the `all` entity to leave out (to test skipped charts).
    pub omit: Vec<String>,
}

impl Synth {
    pub fn baseline() -> Self {
        Synth {
            name: "baseline".into(),
            question: "Does an honest-only subnet pay its miners evenly and keep the 60/40 split?"
                .into(),
            strategies: vec![("honest".into(), 12)],
            points: vec![BTreeMap::new()],
            seeds: 5,
            epochs: 40,
            validators: 4,
            miner_epochs: true,
            events: vec![(15, "schema_change".into())],
            omit: vec![],
        }
    }
    pub fn attack() -> Self {
        Synth {
            name: "attack".into(),
            question: "Do fabricators and sybils earn less than honest miners, and does honest share recover after the attack stops?".into(),
            strategies: vec![("honest".into(), 10), ("fabricator".into(), 4), ("sybil".into(), 6)],
            points: vec![BTreeMap::new()],
            seeds: 6,
            epochs: 60,
            validators: 4,
            miner_epochs: true,
            events: vec![
                (12, "schema_change".into()),
                (25, "outage_start".into()),
                (30, "outage_end".into()),
                (40, "attack_stop".into()),
            ],
            omit: vec![],
        }
    }
    pub fn sweep1() -> Self {
        Synth {
            name: "split_sweep".into(),
            question: "How does the orchestration share s trade Ledger quality against orchestration quality?".into(),
            strategies: vec![("honest".into(), 8), ("fabricator".into(), 2)],
            points: [0.3, 0.45, 0.6, 0.75, 0.9]
                .iter()
                .map(|s| BTreeMap::from([("mechanism.orchestration_share".to_string(), *s)]))
                .collect(),
            seeds: 4,
            epochs: 20,
            validators: 3,
            miner_epochs: false,
            events: vec![],
            omit: vec![],
        }
    }
    pub fn sweep2() -> Self {
        let mut points = Vec::new();
        for s in [0.3, 0.6, 0.9] {
            for a in [0.05, 0.1, 0.2, 0.4] {
                points.push(BTreeMap::from([
                    ("mechanism.orchestration_share".to_string(), s),
                    ("validator.audit_rate".to_string(), a),
                ]));
            }
        }
        Synth {
            name: "split_audit_grid".into(),
            question: "Which combination of split and audit rate keeps fabricators unprofitable?"
                .into(),
            strategies: vec![("honest".into(), 8), ("fabricator".into(), 3)],
            points,
            seeds: 3,
            epochs: 10,
            validators: 3,
            miner_epochs: false,
            events: vec![],
            omit: vec![],
        }
    }

    /// Number of rows `write` produces in runs.csv.
    pub fn rows(&self) -> usize {
        let miners: usize = self.strategies.iter().map(|s| s.1).sum();
        let per_epoch = 15
            + 6 * self.strategies.len()
            + if self.miner_epochs { 5 * miners } else { 0 }
            + 3 * self.validators;
        let whole = 15 + 6 * self.strategies.len() + 5 * miners + 3 * self.validators;
        self.points.len() * self.seeds as usize * (per_epoch * self.epochs as usize + whole)
    }
}

fn params_str(p: &BTreeMap<String, f64>) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Writes a complete simulator run directory for `s` into `dir`.
pub fn write(dir: &Path, s: &Synth) {
    std::fs::create_dir_all(dir).unwrap();
    let mut toml = String::new();
    for line in s.question.lines() {
        writeln!(toml, "# {line}").unwrap();
    }
    writeln!(
        toml,
        "\n[scenario]\nname = \"{}\"\nseeds = {}\n",
        s.name, s.seeds
    )
    .unwrap();
    std::fs::write(dir.join("scenario.toml"), toml).unwrap();

    let points: Vec<serde_json::Value> = s
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| serde_json::json!({"point": i, "params": p}))
        .collect();
    std::fs::write(
        dir.join("points.json"),
        serde_json::to_string_pretty(&points).unwrap(),
    )
    .unwrap();

    let mut runs = std::io::BufWriter::new(std::fs::File::create(dir.join("runs.csv")).unwrap());
    writeln!(
        runs,
        "scenario,point,params,seed,epoch,entity,strategy,metric,value"
    )
    .unwrap();
    let mut events = String::from("scenario,point,seed,block,epoch,kind,detail\n");
    let mut checks = Vec::new();
    let mut manifests = String::new();
    let miners: Vec<(usize, &str)> = s
        .strategies
        .iter()
        .flat_map(|(name, k)| std::iter::repeat_n(name.as_str(), *k))
        .enumerate()
        .collect();
    for (pi, params) in s.points.iter().enumerate() {
        let ps = params_str(params);
        let share = params
            .get("mechanism.orchestration_share")
            .copied()
            .unwrap_or(0.6);
        let audit = params.get("validator.audit_rate").copied().unwrap_or(0.1);
        let mut honest_final = 0.0;
        for seed in 1..=s.seeds {
            let mut rng = Rng::new(seed * 1000 + pi as u64);
            let mut row = |epoch: i64, entity: &str, strategy: &str, metric: &str, value: f64| {
                writeln!(
                    runs,
                    "{},{pi},{ps},{seed},{epoch},{entity},{strategy},{metric},{value}",
                    s.name
                )
                .unwrap();
            };
            let attack_stop = s
                .events
                .iter()
                .find(|e| e.1 == "attack_stop")
                .map(|e| e.0)
                .unwrap_or(i64::MAX);
            let schema = s
                .events
                .iter()
                .find(|e| e.1 == "schema_change")
                .map(|e| e.0);
            let outage = (
                s.events
                    .iter()
                    .find(|e| e.1 == "outage_start")
                    .map(|e| e.0)
                    .unwrap_or(i64::MAX),
                s.events
                    .iter()
                    .find(|e| e.1 == "outage_end")
                    .map(|e| e.0)
                    .unwrap_or(i64::MAX),
            );
            let mut acc: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
            let mut miner_total = vec![0.0; miners.len()];
            let emission_per_epoch = 1.0e12; // rao to miners per epoch
            for epoch in 0..s.epochs {
                let t = epoch as f64;
                // Strategy weights: fabricators decay as strikes accumulate (faster with audits).
                let mut weights: Vec<f64> = miners
                    .iter()
                    .map(|(uid, strat)| {
                        let base = 1.0 + 0.15 * ((*uid as f64) * 0.7).sin() + rng.n(0.05);
                        match *strat {
                            "fabricator" if epoch < attack_stop => {
                                base * (1.6 * (-t * audit * 0.6).exp()).max(0.05)
                            }
                            "fabricator" => base * 0.02,
                            "sybil" => base * 0.45,
                            _ => base,
                        }
                        .max(0.0)
                    })
                    .collect();
                let total: f64 = weights.iter().sum();
                for w in &mut weights {
                    *w /= total;
                }
                let mut all: Vec<(&str, f64)> = Vec::new();
                let honest_share: f64 = miners
                    .iter()
                    .zip(&weights)
                    .filter(|(m, _)| m.1 == "honest")
                    .map(|(_, w)| w)
                    .sum();
                let mut sorted = weights.clone();
                sorted.sort_by(f64::total_cmp);
                let n = sorted.len() as f64;
                let gini = sorted
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (2.0 * (i as f64 + 1.0) - n - 1.0) * a)
                    .sum::<f64>()
                    / n;
                let since_schema = schema.map(|e| t - e as f64).filter(|d| *d >= 0.0);
                let dip = since_schema.map(|d| 0.35 * (-d / 3.0).exp()).unwrap_or(0.0);
                let in_outage = epoch >= outage.0 && epoch < outage.1;
                all.push(("honest_share", honest_share));
                all.push(("gini", gini));
                all.push((
                    "split_orchestration",
                    share + rng.n(0.01) + if in_outage { -0.08 } else { 0.0 },
                ));
                all.push(("split_target", share));
                all.push(("emission_error_rao", (rng.f() * 3.0).floor()));
                all.push((
                    "ledger_accuracy",
                    (0.97 - 0.15 * (share - 0.3) - dip + rng.n(0.01)).clamp(0.0, 1.0),
                ));
                all.push((
                    "detection_lag_blocks",
                    (60.0 + 400.0 * dip + 80.0 * share + rng.n(8.0)).max(0.0),
                ));
                all.push((
                    "ledger_coverage",
                    (0.6 + 0.35 * (1.0 - (-t / 8.0).exp()) - 0.1 * share + rng.n(0.01))
                        .clamp(0.0, 1.0),
                ));
                all.push((
                    "success_rate",
                    (0.85 + 0.1 * share - if in_outage { 0.35 } else { 0.0 } + rng.n(0.01))
                        .clamp(0.0, 1.0),
                ));
                let load = 40.0 + 15.0 * (t / 6.0).sin() + rng.n(2.0);
                let p50 = 180.0 + 1.5 * load + if in_outage { 250.0 } else { 0.0 } + rng.n(5.0);
                all.push(("latency_p50_ms", p50));
                all.push(("latency_p95_ms", p50 * 2.4 + rng.n(20.0)));
                all.push(("organic_quality", 0.7 + 0.2 * share + rng.n(0.02)));
                all.push(("organic_rps", load));
                all.push(("challenges", (30.0 + rng.f() * 10.0).floor()));
                let fab: f64 = miners.iter().filter(|m| m.1 == "fabricator").count() as f64;
                all.push((
                    "fabrication_strikes",
                    (fab * audit * 10.0 * rng.f()).floor(),
                ));
                for (m, v) in &all {
                    if s.omit.iter().any(|o| o == m) {
                        continue;
                    }
                    row(epoch, "all", "", m, *v);
                    acc.entry(("all".into(), m.to_string()))
                        .or_default()
                        .push(*v);
                }
                let honest_per_id =
                    honest_share / miners.iter().filter(|m| m.1 == "honest").count().max(1) as f64;
                for (name, k) in &s.strategies {
                    let sh: f64 = miners
                        .iter()
                        .zip(&weights)
                        .filter(|(m, _)| m.1 == name)
                        .map(|(_, w)| w)
                        .sum();
                    let per_id = sh / *k as f64;
                    let em = per_id * emission_per_epoch;
                    let cost = match name.as_str() {
                        "fabricator" => 0.1,
                        "sybil" => 0.35,
                        _ => 0.5,
                    } * emission_per_epoch
                        / miners.len() as f64;
                    let honest_roi = honest_per_id * emission_per_epoch
                        - 0.5 * emission_per_epoch / miners.len() as f64;
                    let roi = em - cost;
                    let entity = format!("strategy:{name}");
                    let vals = [
                        ("emission_share", sh),
                        ("emission_per_identity_rao", em),
                        ("cost_per_identity_rao", cost),
                        ("roi_per_identity_rao", roi),
                        ("roi_vs_honest", roi / honest_roi),
                        ("identities", *k as f64),
                    ];
                    for (m, v) in vals {
                        row(epoch, &entity, name, m, v);
                        acc.entry((entity.clone(), m.to_string()))
                            .or_default()
                            .push(v);
                    }
                }
                for ((uid, strat), w) in miners.iter().zip(&weights) {
                    miner_total[*uid] += w * emission_per_epoch;
                    if s.miner_epochs {
                        let entity = format!("miner:{uid}");
                        for (m, v) in [
                            ("emission_rao", w * emission_per_epoch),
                            ("consensus", w * n),
                            ("incentive", *w),
                            ("orchestration_score", w * n * share),
                            ("ledger_score", w * n * (1.0 - share)),
                        ] {
                            row(epoch, &entity, strat, m, v);
                        }
                    }
                }
                for v in 0..s.validators {
                    let entity = format!("validator:{}", 100 + v);
                    for (m, val) in [
                        ("dividends", 0.25 + rng.n(0.01)),
                        ("validator_trust", 0.9 + rng.n(0.01)),
                        ("emission_rao", 1.0e11 + rng.n(1.0e9)),
                    ] {
                        row(epoch, &entity, "", m, val);
                    }
                }
                if epoch == s.epochs - 1 {
                    honest_final += honest_share / s.seeds as f64;
                }
            }
            // Whole-run aggregates (epoch = -1).
            for ((entity, metric), vals) in &acc {
                let strategy = entity.strip_prefix("strategy:").unwrap_or("");
                let v = vals.iter().sum::<f64>() / vals.len() as f64;
                row(-1, entity, strategy, metric, v);
            }
            for ((uid, strat), total) in miners.iter().zip(&miner_total) {
                let entity = format!("miner:{uid}");
                let w = total / (emission_per_epoch * s.epochs as f64);
                for (m, v) in [
                    ("emission_rao", *total),
                    ("consensus", w * miners.len() as f64),
                    ("incentive", w),
                    ("orchestration_score", w * share),
                    ("ledger_score", w * (1.0 - share)),
                ] {
                    row(-1, &entity, strat, m, v);
                }
            }
            for v in 0..s.validators {
                let entity = format!("validator:{}", 100 + v);
                for (m, val) in [
                    ("dividends", 0.25 + rng.n(0.01)),
                    ("validator_trust", 0.9 + rng.n(0.01)),
                    ("emission_rao", 1.0e11 * s.epochs as f64),
                ] {
                    row(-1, &entity, "", m, val);
                }
            }
            for (epoch, kind) in &s.events {
                writeln!(
                    events,
                    "{},{pi},{seed},{},{epoch},{kind},\"synthetic {kind}, seed {seed}\"",
                    s.name,
                    epoch * 360
                )
                .unwrap();
            }
            writeln!(
                manifests,
                "{}",
                serde_json::json!({"scenario_hash": "b3:00ff", "root_seed": seed, "point": pi, "params": params, "crate_version": "0.1.0", "git_commit": "deadbeef", "event_log_hash": format!("b3:{seed:04x}")})
            )
            .unwrap();
        }
        checks.push(serde_json::json!({"point": pi, "name": "emission_conserved", "passed": true, "detail": "max error 2 rao ≤ 10"}));
        checks.push(serde_json::json!({"point": pi, "name": "honest_share_recovers", "passed": honest_final > 0.7, "detail": format!("final honest share {honest_final:.3} (threshold 0.7)")}));
    }
    runs.flush().unwrap();
    std::fs::write(dir.join("events.csv"), events).unwrap();
    std::fs::write(
        dir.join("checks.json"),
        serde_json::to_string_pretty(&checks).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("manifests.jsonl"), manifests).unwrap();
}
