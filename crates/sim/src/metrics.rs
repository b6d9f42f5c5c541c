//! What a run measures (docs/mechanism.md §9), as long-format rows: per epoch, and for the whole run
//! (`epoch = -1`). Row and metric names are the contract with `orchestra-report`.

use crate::scenario::ScenarioSpec;
use crate::simchain::Payout;
use orchestra_ledger::LedgerState;
use orchestra_mechanism::ledger::{ProposalRecord, Verdict};
use orchestra_mechanism::params::CombinationMode;
use orchestra_protocol::ledger::{Entry, Status};
use orchestra_stats::{gini, nearest_rank, nearest_rank_counts};
use std::collections::BTreeMap;

/// One row of the run table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Epoch index, or -1 for the whole run.
    pub epoch: i64,
    /// `all`, `strategy:<label>`, `miner:<uid>`, `validator:<uid>`.
    pub entity: String,
    /// The strategy of a `strategy:`/`miner:` row, else empty.
    pub strategy: String,
    /// Metric name.
    pub metric: &'static str,
    /// Value.
    pub value: f64,
}

/// One validator's stake weight and its miners' (orchestration, Ledger) EMA scores.
pub type ValidatorScores = (u64, BTreeMap<u16, (f64, f64)>);

/// One synthetic challenge's outcome.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeStats {
    /// Scored above zero with a verified proof.
    pub success: bool,
    /// Issue to receipt, ms.
    pub latency_ms: u64,
    /// A fabrication strike was applied.
    pub strike: bool,
    /// The miner's group, when the miner is one of the scenario's.
    pub group: Option<usize>,
}

/// What the engine hands over at the end of an epoch.
pub struct EpochInputs<'a> {
    /// Epoch index.
    pub epoch: i64,
    /// What the chain paid.
    pub payout: &'a Payout,
    /// Active miner uid → group.
    pub uid_group: &'a BTreeMap<u16, usize>,
    /// Validator uids.
    pub validator_uids: &'a [u16],
    /// Per validator: (stake weight, miner uid → (O, L) EMA scores).
    pub scores: &'a [ValidatorScores],
    /// True entries of live subnets.
    pub truth: &'a BTreeMap<u16, Entry>,
    /// The canonical Ledger.
    pub ledger: Option<&'a LedgerState>,
    /// Number of live subnets.
    pub live: usize,
    /// TAO rao per alpha.
    pub alpha_price_rao: u64,
}

#[derive(Debug, Default, Clone)]
struct Window {
    challenges: u64,
    successes: u64,
    strikes: u64,
    latencies: Vec<u64>,
    organic_quality: Vec<f64>,
    organic_arrivals: u64,
    lags: Vec<u64>,
    accepted: u64,
    rejected: u64,
}

impl Window {
    /// An empty window that keeps this one's buffers, so each epoch does not grow them afresh.
    fn emptied(mut self) -> Self {
        self.latencies.clear();
        self.organic_quality.clear();
        self.lags.clear();
        Window {
            latencies: self.latencies,
            organic_quality: self.organic_quality,
            lags: self.lags,
            ..Window::default()
        }
    }
}

/// Accumulates rows over a run.
pub struct Metrics {
    labels: Vec<String>,
    strategies: Vec<String>,
    /// Per group, whether the scenario wrote it `honest` (labels change at an `attack_stop`).
    written_honest: Vec<bool>,
    target: f64,
    mode: CombinationMode,
    block_ms: u64,
    tempo: u64,
    window: Window,
    run: Window,
    cost_epoch: BTreeMap<u16, (usize, u64)>,
    emission_total: BTreeMap<u16, (usize, u64)>,
    cost_total: Vec<u64>,
    /// Fabrication strikes per group, whole run.
    strikes_total: Vec<u64>,
    identities_sum: Vec<u64>,
    epochs: u64,
    split_num: f64,
    split_den: f64,
    /// Emission paid to groups while they played honestly (a group counts from its
    /// `attack_stop` on), summed over epochs: the run's honest share is this over all emission.
    honest_emission: u64,
    max_error: f64,
    last_accuracy: f64,
    last_coverage: f64,
    price: f64,
    rows: Vec<Row>,
    /// Whole-run latency distribution (latency → count): exact percentiles in memory bounded
    /// by the number of distinct latencies, not by the number of challenges.
    run_latencies: BTreeMap<u64, u64>,
    /// Whole-run organic quality: running sum (added in arrival order, as a sum over the list
    /// would) and count.
    run_organic: (f64, u64),
}

impl Metrics {
    /// Metrics for a run of `spec` with these miner group labels.
    pub fn new(spec: &ScenarioSpec, labels: Vec<String>) -> Self {
        let strategies: Vec<String> = spec.miners.iter().map(|g| g.strategy.clone()).collect();
        let written_honest = strategies.iter().map(|s| s == "honest").collect();
        let n = labels.len();
        Metrics {
            labels,
            strategies,
            written_honest,
            target: spec.mechanism.orchestration_share,
            mode: spec.mechanism.combination,
            block_ms: spec.chain.block_ms,
            tempo: spec.chain.tempo,
            window: Window::default(),
            run: Window::default(),
            cost_epoch: BTreeMap::new(),
            emission_total: BTreeMap::new(),
            cost_total: vec![0; n],
            strikes_total: vec![0; n],
            identities_sum: vec![0; n],
            epochs: 0,
            split_num: 0.0,
            split_den: 0.0,
            honest_emission: 0,
            max_error: 0.0,
            last_accuracy: f64::NAN,
            last_coverage: f64::NAN,
            price: spec.chain.alpha_price_rao as f64 / 1e9,
            rows: Vec::new(),
            run_latencies: BTreeMap::new(),
            // `Sum for f64` starts from -0.0; so does this.
            run_organic: (-0.0, 0),
        }
    }

    /// A group changed strategy (an attack stopped).
    pub fn set_group_strategy(&mut self, group: usize, strategy: &str) {
        if let Some(s) = self.strategies.get_mut(group) {
            *s = strategy.to_string();
        }
    }

    /// A synthetic challenge finished.
    pub fn challenge(&mut self, c: ChallengeStats) {
        for w in [&mut self.window, &mut self.run] {
            w.challenges += 1;
            w.successes += u64::from(c.success);
            w.strikes += u64::from(c.strike);
        }
        if c.strike
            && let Some(n) = c.group.and_then(|g| self.strikes_total.get_mut(g))
        {
            *n += 1;
        }
        self.window.latencies.push(c.latency_ms);
        *self.run_latencies.entry(c.latency_ms).or_default() += 1;
    }

    /// An organic request was answered with this quality (score ÷ its maximum).
    pub fn organic(&mut self, quality: f64) {
        self.window.organic_quality.push(quality);
        self.run_organic.0 += quality;
        self.run_organic.1 += 1;
    }

    /// Organic requests arrived.
    pub fn organic_arrivals(&mut self, n: u32) {
        self.window.organic_arrivals += u64::from(n);
        self.run.organic_arrivals += u64::from(n);
    }

    /// What miner `uid` of `group` spent on sub-calls.
    pub fn add_cost(&mut self, uid: u16, group: usize, rao: u64) {
        let e = self.cost_epoch.entry(uid).or_insert((group, 0));
        e.1 += rao;
        if let Some(c) = self.cost_total.get_mut(group) {
            *c += rao;
        }
    }

    /// A proposal verdict.
    pub fn proposal(&mut self, record: &ProposalRecord) {
        let accepted = !matches!(record.verdict, Verdict::Rejected);
        for w in [&mut self.window, &mut self.run] {
            w.accepted += u64::from(accepted);
            w.rejected += u64::from(!accepted);
        }
    }

    /// A truth change reached the canonical Ledger after `lag` blocks.
    pub fn detected(&mut self, lag: u64) {
        self.window.lags.push(lag);
        self.run.lags.push(lag);
    }

    fn push(
        &mut self,
        epoch: i64,
        entity: impl Into<String>,
        strategy: impl Into<String>,
        metric: &'static str,
        value: f64,
    ) {
        self.rows.push(Row {
            epoch,
            entity: entity.into(),
            strategy: strategy.into(),
            metric,
            value,
        });
    }

    /// Hand over the rows made so far (a driver streaming them out keeps memory flat).
    pub fn take_rows(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.rows)
    }

    /// Close an epoch.
    pub fn end_epoch(&mut self, x: EpochInputs<'_>) {
        let e = x.epoch;
        let groups = self.labels.len();
        self.epochs += 1;

        // Emission and cost per group.
        let mut emission = vec![0u64; groups];
        let mut identities = vec![0u64; groups];
        let mut cost = vec![0u64; groups];
        for (&uid, &g) in x.uid_group {
            let em = x.payout.server.get(usize::from(uid)).copied().unwrap_or(0);
            emission[g] += em;
            identities[g] += 1;
            let t = self.emission_total.entry(uid).or_insert((g, 0));
            t.1 += em;
        }
        for (_, (g, c)) in std::mem::take(&mut self.cost_epoch) {
            cost[g] += c;
        }
        for (g, n) in identities.iter().enumerate() {
            self.identities_sum[g] += n;
        }
        let miner_total: u64 = emission.iter().sum();
        let price = x.alpha_price_rao as f64 / 1e9;
        let roi = |em: u64, c: u64, n: u64| {
            if n == 0 {
                f64::NAN
            } else {
                (em as f64 * price - c as f64) / n as f64
            }
        };
        let honest: Vec<usize> = (0..groups)
            .filter(|&g| self.strategies[g] == "honest")
            .collect();
        let honest_roi = {
            let em: u64 = honest.iter().map(|&g| emission[g]).sum();
            let c: u64 = honest.iter().map(|&g| cost[g]).sum();
            let n: u64 = honest.iter().map(|&g| identities[g]).sum();
            roi(em, c, n)
        };
        for g in 0..groups {
            let entity = format!("strategy:{}", self.labels[g]);
            let strategy = self.strategies[g].clone();
            let share = ratio(emission[g] as f64, miner_total as f64);
            let r = roi(emission[g], cost[g], identities[g]);
            let n = identities[g].max(1) as f64;
            self.push(e, entity.clone(), strategy.clone(), "emission_share", share);
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "emission_per_identity_rao",
                emission[g] as f64 / n,
            );
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "cost_per_identity_rao",
                cost[g] as f64 / n,
            );
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "roi_per_identity_rao",
                r,
            );
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "roi_vs_honest",
                ratio(r, honest_roi),
            );
            self.push(e, entity, strategy, "identities", identities[g] as f64);
        }

        // Per miner and validator.
        let mech0 = x.payout.outputs.first();
        let u16f = |v: Option<&Vec<u16>>, i: usize| {
            v.and_then(|v| v.get(i))
                .map_or(0.0, |&x| f64::from(x) / 65_535.0)
        };
        let mean_scores = mean_scores(x.scores);
        for (&uid, &g) in x.uid_group {
            let i = usize::from(uid);
            let entity = format!("miner:{uid}");
            let strategy = self.strategies[g].clone();
            let (o, l) = mean_scores.get(&uid).copied().unwrap_or((0.0, 0.0));
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "emission_rao",
                x.payout.server.get(i).copied().unwrap_or(0) as f64,
            );
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "consensus",
                u16f(mech0.map(|o| &o.consensus), i),
            );
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "incentive",
                u16f(mech0.map(|o| &o.incentive), i),
            );
            self.push(
                e,
                entity.clone(),
                strategy.clone(),
                "orchestration_score",
                o,
            );
            self.push(e, entity, strategy, "ledger_score", l);
        }
        for &uid in x.validator_uids {
            let i = usize::from(uid);
            let entity = format!("validator:{uid}");
            self.push(
                e,
                entity.clone(),
                "",
                "dividends",
                u16f(mech0.map(|o| &o.dividends), i),
            );
            self.push(
                e,
                entity.clone(),
                "",
                "validator_trust",
                u16f(mech0.map(|o| &o.validator_trust), i),
            );
            self.push(
                e,
                entity,
                "",
                "emission_rao",
                x.payout.validator.get(i).copied().unwrap_or(0) as f64,
            );
        }

        // Network-wide.
        let honest_em: u64 = honest.iter().map(|&g| emission[g]).sum();
        self.honest_emission += honest_em;
        let miner_em: Vec<f64> = x
            .uid_group
            .keys()
            .map(|&u| x.payout.server.get(usize::from(u)).copied().unwrap_or(0) as f64)
            .collect();
        let split = self.realised_split(&x, &mean_parts(x.scores, self.target, self.mode));
        if let Some((num, den)) = split {
            self.split_num += num;
            self.split_den += den;
        }
        let error = x.payout.unpaid() as f64;
        self.max_error = self.max_error.max(error.abs());
        let (accuracy, coverage) = accuracy(x.truth, x.ledger, x.live);
        self.last_accuracy = accuracy;
        self.last_coverage = coverage;
        let w = std::mem::take(&mut self.window);
        let epoch_secs = (self.tempo * self.block_ms) as f64 / 1000.0;
        let all = [
            ("honest_share", ratio(honest_em as f64, miner_total as f64)),
            ("gini", gini(&miner_em)),
            (
                "split_orchestration",
                split.map_or(f64::NAN, |(n, d)| ratio(n, d)),
            ),
            ("split_target", self.target),
            ("emission_error_rao", error),
            ("ledger_accuracy", accuracy),
            ("detection_lag_blocks", mean_u64(&w.lags)),
            ("ledger_coverage", coverage),
            (
                "success_rate",
                ratio(w.successes as f64, w.challenges as f64),
            ),
            ("latency_p50_ms", nearest_rank(&w.latencies, 0.5)),
            ("latency_p95_ms", nearest_rank(&w.latencies, 0.95)),
            ("organic_quality", mean_f64(&w.organic_quality)),
            ("organic_rps", w.organic_arrivals as f64 / epoch_secs),
            ("challenges", w.challenges as f64),
            ("fabrication_strikes", w.strikes as f64),
            ("proposals_accepted", w.accepted as f64),
            ("proposals_rejected", w.rejected as f64),
        ];
        for (metric, value) in all {
            self.push(e, "all", "", metric, value);
        }
        self.window = w.emptied();
    }

    /// `(orchestration emission, miner emission)` of this epoch.
    fn realised_split(
        &self,
        x: &EpochInputs<'_>,
        parts: &BTreeMap<u16, (f64, f64)>,
    ) -> Option<(f64, f64)> {
        if self.mode == CombinationMode::Mechanisms {
            let m0: u64 = x.payout.server_by_mechanism.first()?.iter().sum();
            let all: u64 = x.payout.server.iter().sum();
            return Some((m0 as f64, all as f64));
        }
        let mut num = 0.0;
        let mut den = 0.0;
        for &uid in x.uid_group.keys() {
            let em = x.payout.server.get(usize::from(uid)).copied().unwrap_or(0) as f64;
            let (o, l) = parts.get(&uid).copied().unwrap_or((0.0, 0.0));
            if o + l > 0.0 {
                num += em * o / (o + l);
                den += em;
            }
        }
        (den > 0.0).then_some((num, den))
    }

    /// The rows so far plus the whole-run aggregates.
    pub fn finish(mut self) -> Vec<Row> {
        let groups = self.labels.len();
        let price_total: Vec<u64> = {
            let mut v = vec![0u64; groups];
            for (g, em) in self.emission_total.values() {
                v[*g] += em;
            }
            v
        };
        let epochs = self.epochs.max(1) as f64;
        let total: u64 = price_total.iter().sum();
        // Whole-run ROI is compared with the groups written honest: a stopped attack's group
        // carries its attack's losses and gains.
        let honest: Vec<usize> = (0..groups).filter(|&g| self.written_honest[g]).collect();
        // Identity counts are averaged over epochs, so churn is weighted by time served.
        let ids: Vec<f64> = self
            .identities_sum
            .iter()
            .map(|&n| n as f64 / epochs)
            .collect();
        let price = self.alpha_price();
        let roi = |em: u64, c: u64, n: f64| {
            if n <= 0.0 {
                f64::NAN
            } else {
                (em as f64 * price - c as f64) / n
            }
        };
        let honest_roi = roi(
            honest.iter().map(|&g| price_total[g]).sum(),
            honest.iter().map(|&g| self.cost_total[g]).sum(),
            honest.iter().map(|&g| ids[g]).sum(),
        );
        for g in 0..groups {
            let entity = format!("strategy:{}", self.labels[g]);
            let strategy = self.strategies[g].clone();
            let r = roi(price_total[g], self.cost_total[g], ids[g]);
            let n = ids[g].max(f64::MIN_POSITIVE);
            self.push(
                -1,
                entity.clone(),
                strategy.clone(),
                "emission_share",
                ratio(price_total[g] as f64, total as f64),
            );
            self.push(
                -1,
                entity.clone(),
                strategy.clone(),
                "emission_per_identity_rao",
                price_total[g] as f64 / n,
            );
            self.push(
                -1,
                entity.clone(),
                strategy.clone(),
                "cost_per_identity_rao",
                self.cost_total[g] as f64 / n,
            );
            self.push(
                -1,
                entity.clone(),
                strategy.clone(),
                "roi_per_identity_rao",
                r,
            );
            self.push(
                -1,
                entity.clone(),
                strategy.clone(),
                "roi_vs_honest",
                ratio(r, honest_roi),
            );
            self.push(
                -1,
                entity.clone(),
                strategy.clone(),
                "fabrication_strikes_per_identity",
                self.strikes_total[g] as f64 / n,
            );
            self.push(-1, entity, strategy, "identities", ids[g]);
        }
        let per_miner: Vec<(u16, usize, u64)> = self
            .emission_total
            .iter()
            .map(|(&u, &(g, em))| (u, g, em))
            .collect();
        for (uid, g, em) in &per_miner {
            let strategy = self.strategies[*g].clone();
            self.push(
                -1,
                format!("miner:{uid}"),
                strategy,
                "emission_rao",
                *em as f64,
            );
        }
        // Not the final labels: a group whose attack stopped is `honest` only from then on.
        let honest_em = self.honest_emission;
        let em: Vec<f64> = per_miner.iter().map(|x| x.2 as f64).collect();
        let run = std::mem::take(&mut self.run);
        let run_secs = epochs * (self.tempo * self.block_ms) as f64 / 1000.0;
        let all = [
            ("honest_share", ratio(honest_em as f64, total as f64)),
            ("gini", gini(&em)),
            ("split_orchestration", ratio(self.split_num, self.split_den)),
            ("split_target", self.target),
            ("emission_error_rao", self.max_error),
            ("ledger_accuracy", self.last_accuracy),
            ("detection_lag_blocks", mean_u64(&run.lags)),
            ("ledger_coverage", self.last_coverage),
            (
                "success_rate",
                ratio(run.successes as f64, run.challenges as f64),
            ),
            (
                "latency_p50_ms",
                nearest_rank_counts(&self.run_latencies, 0.5),
            ),
            (
                "latency_p95_ms",
                nearest_rank_counts(&self.run_latencies, 0.95),
            ),
            ("organic_quality", mean_running(self.run_organic)),
            ("organic_rps", run.organic_arrivals as f64 / run_secs),
            ("challenges", run.challenges as f64),
            ("fabrication_strikes", run.strikes as f64),
            ("proposals_accepted", run.accepted as f64),
            ("proposals_rejected", run.rejected as f64),
        ];
        for (metric, value) in all {
            self.push(-1, "all", "", metric, value);
        }
        self.rows
    }

    fn alpha_price(&self) -> f64 {
        self.price
    }
}

/// Stake-weighted mean (O, L) per miner across validators.
fn mean_scores(scores: &[ValidatorScores]) -> BTreeMap<u16, (f64, f64)> {
    let total: f64 = scores.iter().map(|(w, _)| *w as f64).sum();
    let mut out: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    if total <= 0.0 {
        return out;
    }
    for (w, map) in scores {
        let w = *w as f64 / total;
        for (&uid, &(o, l)) in map {
            let e = out.entry(uid).or_default();
            e.0 += w * o;
            e.1 += w * l;
        }
    }
    out
}

/// Each miner's orchestration and Ledger parts of its weight, averaged over validators.
fn mean_parts(
    scores: &[ValidatorScores],
    s: f64,
    mode: CombinationMode,
) -> BTreeMap<u16, (f64, f64)> {
    let total: f64 = scores.iter().map(|(w, _)| *w as f64).sum();
    let mut out: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    if total <= 0.0 {
        return out;
    }
    for (w, map) in scores {
        let w = *w as f64 / total;
        let so: f64 = map.values().map(|x| x.0.max(0.0)).sum();
        let sl: f64 = map.values().map(|x| x.1.max(0.0)).sum();
        for (&uid, &(o, l)) in map {
            let (po, pl) = match mode {
                CombinationMode::Blended => (o.max(0.0), l.max(0.0)),
                _ => (
                    if so > 0.0 { s * o.max(0.0) / so } else { 0.0 },
                    if sl > 0.0 {
                        (1.0 - s) * l.max(0.0) / sl
                    } else {
                        0.0
                    },
                ),
            };
            let e = out.entry(uid).or_default();
            e.0 += w * po;
            e.1 += w * pl;
        }
    }
    out
}

/// Share of (subnet, field) facts the Ledger has right, and share of live subnets it lists.
fn accuracy(truth: &BTreeMap<u16, Entry>, ledger: Option<&LedgerState>, live: usize) -> (f64, f64) {
    let Some(ledger) = ledger else {
        return (f64::NAN, f64::NAN);
    };
    let mut right = 0u64;
    let mut total = 0u64;
    let mut listed = 0u64;
    for (netuid, t) in truth {
        let known = ledger.get(*netuid);
        listed += u64::from(known.is_some());
        let mut check = |ok: bool| {
            total += 1;
            right += u64::from(ok);
        };
        check(known.is_some_and(|k| {
            k.status == t.status
                || (t.status != Status::Deprecated && k.status != Status::Deprecated)
        }));
        for ep in &t.endpoints {
            check(
                known
                    .and_then(|k| k.endpoints.iter().find(|e| e.name == ep.name))
                    .is_some_and(|e| e.output_schema == ep.output_schema),
            );
        }
        check(known.is_some_and(|k| {
            within(
                k.metrics.p50_latency_ms as f64,
                t.metrics.p50_latency_ms as f64,
                0.3,
            )
        }));
        check(known.is_some_and(|k| {
            within(
                k.metrics.cost_per_query_rao as f64,
                t.metrics.cost_per_query_rao as f64,
                0.3,
            )
        }));
    }
    (
        ratio(right as f64, total as f64),
        ratio(listed as f64, live as f64),
    )
}

/// A change of a subnet's truth that the Ledger should come to reflect (what detection lags are
/// measured on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruthChange {
    /// A subnet launched.
    NewSubnet,
    /// A subnet was deprecated.
    Deprecation,
    /// An endpoint's output schema changed.
    SchemaChange,
    /// The price changed.
    PriceChange,
    /// The latency changed.
    LatencyChange,
}

/// Whether the Ledger's entry `known` reflects `change` of the truth `truth`.
pub fn reflects(change: TruthChange, truth: Option<&Entry>, known: Option<&Entry>) -> bool {
    let (Some(t), Some(k)) = (truth, known) else {
        return false;
    };
    match change {
        TruthChange::NewSubnet => true,
        TruthChange::Deprecation => k.status == Status::Deprecated,
        TruthChange::SchemaChange => t.endpoints.iter().all(|te| {
            k.endpoints
                .iter()
                .any(|ke| ke.name == te.name && ke.output_schema == te.output_schema)
        }),
        TruthChange::PriceChange => within(
            k.metrics.cost_per_query_rao as f64,
            t.metrics.cost_per_query_rao as f64,
            0.3,
        ),
        TruthChange::LatencyChange => within(
            k.metrics.p50_latency_ms as f64,
            t.metrics.p50_latency_ms as f64,
            0.3,
        ),
    }
}

fn within(a: f64, b: f64, tolerance: f64) -> bool {
    if b == 0.0 {
        a == 0.0
    } else {
        ((a - b) / b).abs() <= tolerance
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 || !a.is_finite() || !b.is_finite() {
        f64::NAN
    } else {
        a / b
    }
}

fn mean_u64(v: &[u64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
    }
}

fn mean_f64(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// [`mean_f64`] of a list given as its running sum and length.
fn mean_running((sum, n): (f64, u64)) -> f64 {
    if n == 0 { f64::NAN } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_aggregates_equal_the_list_forms() {
        // A fixed pseudo-random list with repeats, like latencies.
        let v: Vec<u64> = (0..997u64).map(|i| (i * 7919 + 13) % 211).collect();
        let mut counts = BTreeMap::new();
        for &x in &v {
            *counts.entry(x).or_insert(0u64) += 1;
        }
        for q in [0.0, 0.01, 0.5, 0.95, 0.999, 1.0] {
            assert_eq!(nearest_rank_counts(&counts, q), nearest_rank(&v, q));
        }
        assert!(nearest_rank_counts(&BTreeMap::new(), 0.5).is_nan());
        let f: Vec<f64> = v.iter().map(|&x| x as f64 / 211.0).collect();
        let running = f.iter().fold((-0.0, 0u64), |(s, n), &x| (s + x, n + 1));
        assert_eq!(mean_running(running).to_bits(), mean_f64(&f).to_bits());
        assert!(mean_running((-0.0, 0)).is_nan());
    }
}
