//! Scenario files: what a mechanism designer writes and `orchestra-sim` runs.
//!
//! A scenario is TOML with the tables `[scenario]`, `[chain]`, `[mechanism]`, `[subnets]`,
//! `[[miners]]`, `[[validators]]`, `[load]`, `[[events]]`, `[sweep]`, `[expect]` and `[tune]`
//! (what `orchestra-sim tune` searches, [`crate::tune::spec`]); every key is documented in
//! `scenarios/README.md`. Loading is all-or-nothing: any unknown key, wrong type or
//! out-of-range value is a [`LocatedError`] naming file, line, column, key, expected and found,
//! and nothing runs.

use crate::located::{LocatedError, Seg, SourceDoc, parse_path};
use orchestra_mechanism::params::{MechanismParams, ParamsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Milliseconds per simulated day.
pub const DAY_MS: u64 = 86_400_000;

/// `[scenario]`: name, seeds and duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Short name, used for the report directory.
    pub name: String,
    /// Root seed of the first run; run `i` uses `seed + i`.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// How many seeds (runs) per parameter point.
    #[serde(default = "default_seeds")]
    pub seeds: u32,
    /// Simulated duration, days.
    #[serde(default = "default_days")]
    pub days: f64,
}

fn default_seed() -> u64 {
    1
}
fn default_seeds() -> u32 {
    5
}
fn default_days() -> f64 {
    30.0
}

/// Which Yuma the simulated chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YumaVariant {
    /// Original Yuma (mainnet default while `Yuma3On` is off).
    #[default]
    Original,
    /// Yuma 3.
    Yuma3,
}

/// `[chain]`: the simulated subtensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Block time, ms.
    pub block_ms: u64,
    /// Blocks per epoch.
    pub tempo: u64,
    /// Yuma variant.
    pub yuma: YumaVariant,
    /// Liquid alpha (Yuma 3 only).
    pub liquid_alpha: bool,
    /// Consensus quantile, u16 (32767 = 0.5).
    pub kappa: u16,
    /// Bonds penalty, u16.
    pub bonds_penalty: u16,
    /// Bonds moving average, parts per million.
    pub bonds_moving_average: u64,
    /// Blocks without a weight update after which a validator counts as inactive.
    pub activity_cutoff: u64,
    /// Validator permits.
    pub max_allowed_validators: u16,
    /// Alpha emitted by the subnet per block, rao.
    pub emission_per_block_rao: u64,
    /// Subnet owner's cut of emission, 0..1.
    pub owner_cut: f64,
    /// Value of one alpha in TAO rao, to set emission against sub-call costs (ROI). The default,
    /// 0.3 TAO, is where honest mining pays under the default challenge load (8 validators × 16
    /// miners every 20 blocks ≈ 720 challenges per miner per day at ≈ 0.009 TAO of sub-calls
    /// each); at 0.1 TAO honest miners lose money and doing nothing beats honest work on ROI.
    pub alpha_price_rao: u64,
    /// Commit-reveal: weights become visible to the chain one tempo after they are set.
    pub commit_reveal: bool,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            block_ms: 12_000,
            tempo: 360,
            yuma: YumaVariant::Original,
            liquid_alpha: false,
            kappa: 32_767,
            bonds_penalty: 65_535,
            bonds_moving_average: 900_000,
            activity_cutoff: 5_000,
            max_allowed_validators: 64,
            emission_per_block_rao: 1_000_000_000,
            owner_cut: 0.18,
            alpha_price_rao: 300_000_000,
            commit_reveal: false,
        }
    }
}

/// `[subnets]`: which mock subnets exist, and overrides of their behaviour.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubnetsConfig {
    /// A directory of mock subnet files, relative to the scenario file; the mocks embedded in the
    /// binary when absent.
    pub dir: Option<String>,
    /// Netuids to include (all when empty).
    pub include: Vec<u16>,
    /// Netuids present in the world but not yet in the Ledger (launched later by a
    /// `new_subnet` event, or discovered by miners).
    pub unlisted: Vec<u16>,
    /// Per-netuid overrides merged onto the mock's `[behaviour]` table.
    pub overrides: BTreeMap<String, toml::Table>,
}

/// `[[miners]]`: a group of miners sharing a strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerGroup {
    /// Strategy name (`honest`, `fabricator`, `copycat`, …).
    pub strategy: String,
    /// How many miners.
    pub count: u32,
    /// Label in reports (defaults to the strategy name; must be unique).
    #[serde(default)]
    pub name: Option<String>,
    /// Strategy parameters (each strategy documents its own; unknown keys are errors).
    #[serde(default)]
    pub params: toml::Table,
}

impl MinerGroup {
    /// The group's label.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.strategy)
    }
}

/// `[[validators]]`: a group of validators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorGroup {
    /// How many validators.
    pub count: u32,
    /// Stake of each, TAO (or the largest one with `distribution = "zipf"`).
    #[serde(default = "default_stake")]
    pub stake_tao: f64,
    /// `equal` or `zipf` (validator `i` gets `stake / (i+1)^zipf_s`).
    #[serde(default)]
    pub distribution: StakeDistribution,
    /// Exponent of the zipf distribution.
    #[serde(default = "default_zipf")]
    pub zipf_s: f64,
    /// Behaviour: a validator strategy name (`honest`, `weight_copier`, `colluding_bloc`;
    /// `orchestra_adversaries::VALIDATOR_NAMES`).
    #[serde(default = "default_behaviour")]
    pub behaviour: String,
    /// The strategy's parameters.
    #[serde(default)]
    pub params: toml::Table,
    /// A miner group label the strategy boosts (given to it as that group's coldkey,
    /// `favourite_coldkey`; `colluding_bloc` needs one).
    #[serde(default)]
    pub favourite: Option<String>,
    /// Miners challenged per round (`k`).
    #[serde(default = "default_sample")]
    pub sample: u32,
    /// Blocks between challenge rounds.
    #[serde(default = "default_every")]
    pub challenge_every_blocks: u64,
}

fn default_behaviour() -> String {
    "honest".into()
}
fn default_stake() -> f64 {
    10_000.0
}
fn default_zipf() -> f64 {
    1.0
}
fn default_sample() -> u32 {
    16
}
fn default_every() -> u64 {
    20
}

/// How stake is spread inside a validator group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StakeDistribution {
    /// Everyone the same.
    #[default]
    Equal,
    /// Decreasing as a power law.
    Zipf,
}

/// `[load]`: organic requests from users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadConfig {
    /// Shape over time.
    pub profile: LoadProfile,
    /// Mean organic requests per hour, network-wide.
    pub rate_per_hour: f64,
    /// `diurnal`: relative swing, 0..1.
    pub amplitude: f64,
    /// `diurnal`: hour of day of the peak.
    pub peak_hour: f64,
    /// `spikes`: bursts of extra load.
    pub spikes: Vec<Spike>,
    /// How many miners one request tries before it fails (the validator moves on to another
    /// miner when one gives no response).
    pub attempts: u32,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            profile: LoadProfile::Constant,
            rate_per_hour: 120.0,
            amplitude: 0.5,
            peak_hour: 15.0,
            spikes: Vec::new(),
            attempts: orchestra_validator::DEFAULT_ORGANIC_ATTEMPTS,
        }
    }
}

/// Shape of organic load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadProfile {
    /// No organic requests.
    None,
    /// A constant rate.
    #[default]
    Constant,
    /// A daily sine wave.
    Diurnal,
    /// A constant rate with bursts.
    Spikes,
}

/// One burst of load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Start, days from the beginning.
    pub at_day: f64,
    /// Duration, hours.
    pub hours: f64,
    /// Rate multiplier during the burst.
    pub multiplier: f64,
}

/// `[[events]]` as written: `at_day`, `kind` and the keys that kind takes (checked by
/// [`EventSpec::kind`], so a missing or misplaced key is reported at its own line).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// When, days from the beginning.
    pub at_day: f64,
    /// Which kind of event.
    pub kind: String,
    /// Subnet (`schema_change`, `outage`, `new_subnet`, `deprecation`, `price_change`,
    /// `latency_change`).
    #[serde(default)]
    pub netuid: Option<u16>,
    /// Endpoint name (`schema_change`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Schema version (`schema_change`).
    #[serde(default)]
    pub version: Option<u32>,
    /// Duration, hours (`outage`, `validator_down`).
    #[serde(default)]
    pub hours: Option<f64>,
    /// Multiplier (`price_change`, `latency_change`).
    #[serde(default)]
    pub multiplier: Option<f64>,
    /// Validator indices in file order (`validator_down`).
    #[serde(default)]
    pub validators: Option<Vec<u32>>,
    /// Miner group label (`miner_churn`, `attack_stop`).
    #[serde(default)]
    pub group: Option<String>,
    /// Miners leaving (`miner_churn`).
    #[serde(default)]
    pub leave: Option<u32>,
    /// Miners joining (`miner_churn`).
    #[serde(default)]
    pub join: Option<u32>,
}

/// The event kinds and the keys each takes besides `at_day` and `kind`.
pub const EVENT_KINDS: &[(&str, &[&str])] = &[
    ("schema_change", &["netuid", "endpoint", "version"]),
    ("outage", &["netuid", "hours"]),
    ("new_subnet", &["netuid"]),
    ("deprecation", &["netuid"]),
    ("price_change", &["netuid", "multiplier"]),
    ("latency_change", &["netuid", "multiplier"]),
    ("validator_down", &["validators", "hours"]),
    ("miner_churn", &["group", "leave", "join"]),
    ("attack_stop", &["group"]),
];

impl EventSpec {
    /// Which keys are set.
    fn present(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let flags = [
            ("netuid", self.netuid.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("version", self.version.is_some()),
            ("hours", self.hours.is_some()),
            ("multiplier", self.multiplier.is_some()),
            ("validators", self.validators.is_some()),
            ("group", self.group.is_some()),
            ("leave", self.leave.is_some()),
            ("join", self.join.is_some()),
        ];
        for (k, set) in flags {
            if set {
                keys.push(k);
            }
        }
        keys
    }

    /// The typed event, or `(key, expected, found)` saying what is wrong with the keys.
    pub fn kind(&self) -> Result<EventKind, (String, String, String)> {
        let Some((_, allowed)) = EVENT_KINDS.iter().find(|(k, _)| *k == self.kind) else {
            let names: Vec<&str> = EVENT_KINDS.iter().map(|(k, _)| *k).collect();
            return Err((
                "kind".into(),
                format!("one of {}", names.join(", ")),
                format!("{:?}", self.kind),
            ));
        };
        if let Some(extra) = self.present().into_iter().find(|k| !allowed.contains(k)) {
            return Err((
                extra.into(),
                format!("only {} with kind = {:?}", allowed.join(", "), self.kind),
                format!("`{extra}`"),
            ));
        }
        let need = |key: &str| {
            (
                key.to_string(),
                format!("`{key}` with kind = {:?}", self.kind),
                "nothing".to_string(),
            )
        };
        let netuid = || self.netuid.ok_or_else(|| need("netuid"));
        let hours = || self.hours.ok_or_else(|| need("hours"));
        let multiplier = || self.multiplier.ok_or_else(|| need("multiplier"));
        let group = || self.group.clone().ok_or_else(|| need("group"));
        Ok(match self.kind.as_str() {
            "schema_change" => EventKind::SchemaChange {
                netuid: netuid()?,
                endpoint: self.endpoint.clone().ok_or_else(|| need("endpoint"))?,
                version: self.version.ok_or_else(|| need("version"))?,
            },
            "outage" => EventKind::Outage {
                netuid: netuid()?,
                hours: hours()?,
            },
            "new_subnet" => EventKind::NewSubnet { netuid: netuid()? },
            "deprecation" => EventKind::Deprecation { netuid: netuid()? },
            "price_change" => EventKind::PriceChange {
                netuid: netuid()?,
                multiplier: multiplier()?,
            },
            "latency_change" => EventKind::LatencyChange {
                netuid: netuid()?,
                multiplier: multiplier()?,
            },
            "validator_down" => EventKind::ValidatorDown {
                validators: self.validators.clone().ok_or_else(|| need("validators"))?,
                hours: hours()?,
            },
            "miner_churn" => EventKind::MinerChurn {
                group: group()?,
                leave: self.leave.unwrap_or(0),
                join: self.join.unwrap_or(0),
            },
            _ => EventKind::AttackStop { group: group()? },
        })
    }
}

/// The kinds of scenario event, typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A subnet switches an endpoint's output schema to another version.
    SchemaChange {
        /// Subnet.
        netuid: u16,
        /// Endpoint name.
        endpoint: String,
        /// Schema version to switch to.
        version: u32,
    },
    /// A subnet stops answering for a while.
    Outage {
        /// Subnet.
        netuid: u16,
        /// Duration, hours.
        hours: f64,
    },
    /// An unlisted subnet starts serving.
    NewSubnet {
        /// Subnet.
        netuid: u16,
    },
    /// A subnet shuts down for good.
    Deprecation {
        /// Subnet.
        netuid: u16,
    },
    /// A subnet's price changes.
    PriceChange {
        /// Subnet.
        netuid: u16,
        /// Multiplier on the current price.
        multiplier: f64,
    },
    /// A subnet's latency changes (e.g. it scales down).
    LatencyChange {
        /// Subnet.
        netuid: u16,
        /// Multiplier on the current latency.
        multiplier: f64,
    },
    /// Validators go offline for a while.
    ValidatorDown {
        /// Validator indices (in file order across groups).
        validators: Vec<u32>,
        /// Duration, hours.
        hours: f64,
    },
    /// Miners of a group leave and/or new ones join.
    MinerChurn {
        /// Group label.
        group: String,
        /// How many leave (deregister).
        leave: u32,
        /// How many join (register fresh identities).
        join: u32,
    },
    /// A group stops attacking and behaves honestly from now on.
    AttackStop {
        /// Group label.
        group: String,
    },
}

/// One axis of a sweep: a list of values, or a range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SweepAxis {
    /// Explicit values.
    List(Vec<toml::Value>),
    /// `from`, `to` (inclusive) and `step`.
    Range {
        /// First value.
        from: f64,
        /// Last value (inclusive, within rounding).
        to: f64,
        /// Increment.
        step: f64,
    },
}

/// `[expect]`: safety and liveness checks (MECHANISM.md §9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    /// Every epoch pays out what was emitted, within rounding.
    pub emission_conserved: bool,
    /// Realised orchestration share of miner emission within this of the target (absolute).
    pub split_tolerance: Option<f64>,
    /// Honest miners' share of miner emission at least this (whole run).
    pub honest_share_min: Option<f64>,
    /// Strategies whose ROI per identity must be below honest, confidence intervals separated.
    pub below_honest: Vec<String>,
    /// Strategies whose ROI per identity must not be above honest (MECHANISM.md §9's safety
    /// check): fails only when its 95 % interval lies entirely above honest's.
    pub not_above_honest: Vec<String>,
    /// Ledger accuracy at the end of the run at least this.
    pub ledger_accuracy_min: Option<f64>,
    /// Orchestration success rate at least this.
    pub success_rate_min: Option<f64>,
    /// After the last `attack_stop`, honest share recovers above `honest_share` within
    /// `within_epochs`.
    pub recovery: Option<Recovery>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            emission_conserved: true,
            split_tolerance: None,
            honest_share_min: None,
            below_honest: Vec::new(),
            not_above_honest: Vec::new(),
            ledger_accuracy_min: None,
            success_rate_min: None,
            recovery: None,
        }
    }
}

/// The liveness check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Honest share threshold.
    pub honest_share: f64,
    /// Epochs allowed after the attack stops.
    pub within_epochs: u32,
}

/// The whole file, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// `[scenario]`.
    pub scenario: Meta,
    /// `[chain]`.
    #[serde(default)]
    pub chain: ChainConfig,
    /// `[mechanism]`: any `MechanismParams` field.
    #[serde(default)]
    pub mechanism: MechanismParams,
    /// `[subnets]`.
    #[serde(default)]
    pub subnets: SubnetsConfig,
    /// `[[miners]]`.
    #[serde(default)]
    pub miners: Vec<MinerGroup>,
    /// `[[validators]]`.
    #[serde(default)]
    pub validators: Vec<ValidatorGroup>,
    /// `[load]`.
    #[serde(default)]
    pub load: LoadConfig,
    /// `[[events]]`.
    #[serde(default)]
    pub events: Vec<EventSpec>,
    /// `[sweep]`: dotted key → values.
    #[serde(default)]
    pub sweep: BTreeMap<String, SweepAxis>,
    /// `[expect]`.
    #[serde(default)]
    pub expect: Expect,
    /// `[tune]`: what `orchestra-sim tune` searches (ignored by a plain run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<crate::tune::TuneSpec>,
}

/// One point of a sweep: the scenario with the swept keys set.
#[derive(Debug, Clone)]
pub struct Point {
    /// Index of the point (0 without a sweep).
    pub index: u32,
    /// Swept key → value, in key order.
    pub values: BTreeMap<String, toml::Value>,
    /// The scenario at this point.
    pub spec: ScenarioSpec,
}

impl Point {
    /// Canonical `key=value;key=value` of the swept values ("" without a sweep).
    pub fn params_string(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// A loaded, validated scenario with its sweep expanded.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The source, kept to locate errors found later (e.g. in strategy parameters).
    pub doc: SourceDoc,
    /// The leading comment block: the question the scenario answers.
    pub question: String,
    /// BLAKE3 of the file bytes.
    pub file_hash: String,
    /// The parameter points (one without a sweep).
    pub points: Vec<Point>,
}

/// The most sweep points a scenario may expand to.
pub const MAX_POINTS: usize = 10_000;

impl Scenario {
    /// Read and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, Box<LocatedError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Box::new(SourceDoc::new(path, String::new()).error_at(
                0..0,
                "(file)",
                "a readable scenario file",
                &e.to_string(),
            ))
        })?;
        Scenario::from_str(path, text)
    }

    /// Validate scenario `text` that came from `path`.
    pub fn from_str(path: &Path, text: String) -> Result<Scenario, Box<LocatedError>> {
        let doc = SourceDoc::new(path, text);
        let table: toml::Table =
            toml::from_str(&doc.text).map_err(|e| Box::new(doc.from_toml_error(&e)))?;
        let base: ScenarioSpec =
            toml::from_str(&doc.text).map_err(|e| Box::new(doc.from_toml_error(&e)))?;
        validate(&doc, &base, "")?;
        crate::tune::spec::validate(&doc, &table, &base)?;

        let axes = expand_axes(&doc, &base)?;
        let total: usize = axes.iter().map(|(_, v)| v.len()).product();
        if total > MAX_POINTS {
            return Err(Box::new(doc.error_at_key(
                "sweep",
                &format!("at most {MAX_POINTS} parameter points"),
                &format!("{total} points"),
            )));
        }
        let mut points = Vec::with_capacity(total.max(1));
        for index in 0..total.max(1) {
            let mut values = BTreeMap::new();
            let mut rest = index;
            for (key, axis) in axes.iter().rev() {
                values.insert(key.clone(), axis[rest % axis.len()].clone());
                rest /= axis.len();
            }
            let spec = if values.is_empty() {
                base.clone()
            } else {
                let mut t = table.clone();
                t.remove("sweep");
                for (key, value) in &values {
                    set_path(&mut t, key, value.clone()).map_err(|why| {
                        Box::new(doc.error_at_key(
                            &format!("sweep.{key}"),
                            "a key of this scenario",
                            &why,
                        ))
                    })?;
                }
                let spec: ScenarioSpec = t.try_into().map_err(|e: toml::de::Error| {
                    Box::new(doc.error_at_key(
                        &format!("sweep.{}", values.keys().next().map_or("", String::as_str)),
                        "values valid for the swept key",
                        e.message(),
                    ))
                })?;
                let context = values
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                validate(&doc, &spec, &context)?;
                spec
            };
            points.push(Point {
                index: index as u32,
                values,
                spec,
            });
        }
        Ok(Scenario {
            question: leading_comment(&doc.text),
            file_hash: blake3::hash(doc.text.as_bytes()).to_hex().to_string(),
            doc,
            points,
        })
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.points[0].spec.scenario.name
    }

    /// Override seeds and duration for every point (the CLI's `--seeds` and `--days`).
    pub fn override_runs(&mut self, seeds: Option<u32>, days: Option<f64>) {
        for p in &mut self.points {
            if let Some(s) = seeds {
                p.spec.scenario.seeds = s.max(1);
            }
            if let Some(d) = days {
                p.spec.scenario.days = d;
            }
        }
    }
}

/// The comment lines at the top of a file, without `#`.
fn leading_comment(text: &str) -> String {
    text.lines()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn expand_axes(
    doc: &SourceDoc,
    spec: &ScenarioSpec,
) -> Result<Vec<(String, Vec<toml::Value>)>, Box<LocatedError>> {
    let mut axes = Vec::new();
    for (key, axis) in &spec.sweep {
        let at = format!("sweep.{key}");
        let values = match axis {
            SweepAxis::List(v) if v.is_empty() => {
                return Err(Box::new(doc.error_at_key(
                    &at,
                    "a non-empty list of values",
                    "[]",
                )));
            }
            SweepAxis::List(v) => v.clone(),
            SweepAxis::Range { from, to, step } => {
                if !(step.is_finite()
                    && *step > 0.0
                    && from.is_finite()
                    && to.is_finite()
                    && to >= from)
                {
                    return Err(Box::new(doc.error_at_key(
                        &at,
                        "from ≤ to and step > 0",
                        &format!("from = {from}, to = {to}, step = {step}"),
                    )));
                }
                let n = ((to - from) / step + 1e-9).floor() as usize + 1;
                if n > MAX_POINTS {
                    return Err(Box::new(doc.error_at_key(
                        &at,
                        "a range of at most 10000 values",
                        &format!("{n} values"),
                    )));
                }
                // Round to the step's decimals so 0.1-steps print as 0.3, not 0.30000000000000004.
                let decimals = decimals_of(*step).max(decimals_of(*from));
                let scale = 10f64.powi(decimals as i32);
                (0..n)
                    .map(|i| toml::Value::Float(((from + step * i as f64) * scale).round() / scale))
                    .collect()
            }
        };
        axes.push((key.clone(), values));
    }
    Ok(axes)
}

fn decimals_of(x: f64) -> u32 {
    (0..10)
        .find(|&d| ((x * 10f64.powi(d)).round() - x * 10f64.powi(d)).abs() < 1e-9)
        .unwrap_or(10) as u32
}

/// Set `value` at dotted `path` in a TOML table, creating missing tables. Array elements are
/// addressed by index (`miners[1]`) or by label (`miners.fabricator`: the element whose `name`,
/// or else `strategy`, is that label).
pub fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let segs = parse_path(path);
    if segs.is_empty() {
        return Err("an empty key".into());
    }
    let mut root = toml::Value::Table(std::mem::take(table));
    let result = set_in(&mut root, &segs, value, path);
    if let toml::Value::Table(t) = root {
        *table = t;
    }
    result
}

fn set_in(
    node: &mut toml::Value,
    segs: &[Seg],
    new: toml::Value,
    path: &str,
) -> Result<(), String> {
    let Some((seg, rest)) = segs.split_first() else {
        *node = new;
        return Ok(());
    };
    let child = match (seg, node) {
        (Seg::Key(k), toml::Value::Table(t)) => {
            if rest.is_empty() {
                t.insert(k.clone(), new);
                return Ok(());
            }
            t.entry(k.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        }
        (Seg::Key(k), toml::Value::Array(items)) => {
            let i = find_labelled(items, k)?;
            &mut items[i]
        }
        (Seg::Index(i), toml::Value::Array(items)) => {
            let n = items.len();
            items
                .get_mut(*i)
                .ok_or_else(|| format!("index {i} but only {n} elements"))?
        }
        _ => {
            return Err(format!(
                "`{path}` does not address a value of this scenario"
            ));
        }
    };
    set_in(child, rest, new, path)
}

/// The index of the array element labelled `label` (by `name`, else `strategy`).
fn find_labelled(items: &[toml::Value], label: &str) -> Result<usize, String> {
    let matches: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            let name = v.get("name").and_then(toml::Value::as_str);
            let strategy = v.get("strategy").and_then(toml::Value::as_str);
            name.or(strategy) == Some(label)
        })
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Ok(*i),
        [] => Err(format!("no element labelled `{label}`")),
        _ => Err(format!(
            "several elements labelled `{label}`; give each a `name`"
        )),
    }
}

/// Semantic checks serde cannot express. `context` names the sweep point, if any.
pub(crate) fn validate(
    doc: &SourceDoc,
    spec: &ScenarioSpec,
    context: &str,
) -> Result<(), Box<LocatedError>> {
    let at = |key: &str, expected: &str, found: String| {
        let found = if context.is_empty() {
            found
        } else {
            format!("{found} (at sweep point {context})")
        };
        Err(Box::new(doc.error_at_key(key, expected, &found)))
    };
    let m = &spec.scenario;
    if m.name.trim().is_empty() || m.name.contains(['/', '\\']) {
        return at(
            "scenario.name",
            "a non-empty name without slashes",
            format!("{:?}", m.name),
        );
    }
    if !(m.days.is_finite() && m.days > 0.0 && m.days <= 3660.0) {
        return at(
            "scenario.days",
            "a duration in (0, 3660] days",
            m.days.to_string(),
        );
    }
    if m.seeds == 0 || m.seeds > 10_000 {
        return at(
            "scenario.seeds",
            "between 1 and 10000 seeds",
            m.seeds.to_string(),
        );
    }
    let c = &spec.chain;
    if c.block_ms == 0 {
        return at("chain.block_ms", "a block time > 0 ms", "0".into());
    }
    if c.tempo == 0 || c.tempo > 100_000 {
        return at(
            "chain.tempo",
            "a tempo between 1 and 100000 blocks",
            c.tempo.to_string(),
        );
    }
    if c.bonds_moving_average > 1_000_000 {
        return at(
            "chain.bonds_moving_average",
            "at most 1000000 (parts per million)",
            c.bonds_moving_average.to_string(),
        );
    }
    if !(c.owner_cut.is_finite() && (0.0..1.0).contains(&c.owner_cut)) {
        return at(
            "chain.owner_cut",
            "a share in [0, 1)",
            c.owner_cut.to_string(),
        );
    }
    if c.liquid_alpha && c.yuma != YumaVariant::Yuma3 {
        return at(
            "chain.liquid_alpha",
            "liquid alpha only with yuma = \"yuma3\"",
            "true".into(),
        );
    }
    if let Err(e) = spec.mechanism.validate() {
        return match e {
            ParamsError::OutOfRange {
                field,
                value,
                expected,
            } => at(&format!("mechanism.{field}"), expected, value),
            ParamsError::Parse(why) => at("mechanism", "valid mechanism parameters", why),
        };
    }
    if spec.miners.is_empty() {
        return at("miners", "at least one [[miners]] group", "none".into());
    }
    let mut labels = BTreeMap::new();
    let mut total_miners = 0u64;
    for (i, g) in spec.miners.iter().enumerate() {
        // Strategy names and parameters are checked by `engine::validate`, which also knows the
        // custom strategies a library user registered.
        if g.count == 0 {
            return at(
                &format!("miners[{i}].count"),
                "at least 1 miner",
                "0".into(),
            );
        }
        total_miners += u64::from(g.count);
        if labels.insert(g.label().to_string(), i).is_some() {
            return at(
                &format!("miners[{i}]"),
                "a unique group label (set `name`)",
                format!("a second group labelled {:?}", g.label()),
            );
        }
    }
    if spec.validators.is_empty() {
        return at(
            "validators",
            "at least one [[validators]] group",
            "none".into(),
        );
    }
    let mut total_validators = 0u64;
    for (i, g) in spec.validators.iter().enumerate() {
        if g.count == 0 {
            return at(
                &format!("validators[{i}].count"),
                "at least 1 validator",
                "0".into(),
            );
        }
        total_validators += u64::from(g.count);
        if !(g.stake_tao.is_finite() && g.stake_tao > 0.0) {
            return at(
                &format!("validators[{i}].stake_tao"),
                "a stake > 0 TAO",
                g.stake_tao.to_string(),
            );
        }
        if !(g.zipf_s.is_finite() && g.zipf_s >= 0.0) {
            return at(
                &format!("validators[{i}].zipf_s"),
                "an exponent ≥ 0",
                g.zipf_s.to_string(),
            );
        }
        if g.sample == 0 {
            return at(
                &format!("validators[{i}].sample"),
                "at least 1 miner per round",
                "0".into(),
            );
        }
        if g.challenge_every_blocks == 0 {
            return at(
                &format!("validators[{i}].challenge_every_blocks"),
                "at least 1 block",
                "0".into(),
            );
        }
        if let Some(f) = &g.favourite
            && !labels.contains_key(f)
        {
            return at(
                &format!("validators[{i}].favourite"),
                "a miner group label",
                format!("{f:?}"),
            );
        }
    }
    if total_miners + total_validators > 4096 {
        return at(
            "miners",
            "at most 4096 neurons in all",
            format!("{} neurons", total_miners + total_validators),
        );
    }
    let l = &spec.load;
    if !(l.rate_per_hour.is_finite() && l.rate_per_hour >= 0.0) {
        return at(
            "load.rate_per_hour",
            "a rate ≥ 0",
            l.rate_per_hour.to_string(),
        );
    }
    if !(l.amplitude.is_finite() && (0.0..=1.0).contains(&l.amplitude)) {
        return at(
            "load.amplitude",
            "a relative swing in [0, 1]",
            l.amplitude.to_string(),
        );
    }
    if !(1..=16).contains(&l.attempts) {
        return at(
            "load.attempts",
            "between 1 and 16 miners per request",
            l.attempts.to_string(),
        );
    }
    for (i, s) in l.spikes.iter().enumerate() {
        if !(s.at_day >= 0.0 && s.hours > 0.0 && s.multiplier >= 0.0 && s.multiplier.is_finite()) {
            return at(
                &format!("load.spikes[{i}]"),
                "at_day ≥ 0, hours > 0, multiplier ≥ 0",
                format!("{s:?}"),
            );
        }
    }
    for (i, e) in spec.events.iter().enumerate() {
        if !(e.at_day.is_finite() && e.at_day >= 0.0) {
            return at(
                &format!("events[{i}].at_day"),
                "a time ≥ 0 days",
                e.at_day.to_string(),
            );
        }
        let kind = match e.kind() {
            Ok(k) => k,
            Err((key, expected, found)) => {
                let key = if found == "nothing" {
                    format!("events[{i}]")
                } else {
                    format!("events[{i}].{key}")
                };
                return at(&key, &expected, found);
            }
        };
        let bad_hours = |h: f64| !(h.is_finite() && h > 0.0);
        match &kind {
            EventKind::Outage { hours, .. } | EventKind::ValidatorDown { hours, .. }
                if bad_hours(*hours) =>
            {
                return at(
                    &format!("events[{i}].hours"),
                    "a duration > 0 hours",
                    hours.to_string(),
                );
            }
            EventKind::PriceChange { multiplier, .. }
            | EventKind::LatencyChange { multiplier, .. }
                if !(multiplier.is_finite() && *multiplier > 0.0) =>
            {
                return at(
                    &format!("events[{i}].multiplier"),
                    "a multiplier > 0",
                    multiplier.to_string(),
                );
            }
            EventKind::ValidatorDown { validators, .. } => {
                if let Some(v) = validators
                    .iter()
                    .find(|&&v| u64::from(v) >= total_validators)
                {
                    return at(
                        &format!("events[{i}].validators"),
                        &format!("validator indices below {total_validators}"),
                        v.to_string(),
                    );
                }
            }
            EventKind::MinerChurn { group, .. } | EventKind::AttackStop { group }
                if !labels.contains_key(group) =>
            {
                return at(
                    &format!("events[{i}].group"),
                    "a miner group label",
                    format!("{group:?}"),
                );
            }
            _ => {}
        }
    }
    let compared = [
        ("expect.below_honest", &spec.expect.below_honest),
        ("expect.not_above_honest", &spec.expect.not_above_honest),
    ];
    for (key, s) in compared
        .iter()
        .flat_map(|(k, list)| list.iter().map(move |s| (*k, s)))
    {
        let is_strategy = spec.miners.iter().any(|g| &g.strategy == s);
        if !labels.contains_key(s) && !is_strategy {
            return at(
                key,
                "miner group labels or strategy names",
                format!("{s:?}"),
            );
        }
    }
    for (key, value) in [
        ("expect.split_tolerance", spec.expect.split_tolerance),
        ("expect.honest_share_min", spec.expect.honest_share_min),
        (
            "expect.ledger_accuracy_min",
            spec.expect.ledger_accuracy_min,
        ),
        ("expect.success_rate_min", spec.expect.success_rate_min),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && (0.0..=1.0).contains(&v))
        {
            return at(key, "a share in [0, 1]", v.to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "# What does it do?\n# Second line.\n[scenario]\nname = \"t\"\n\n[[miners]]\nstrategy = \"honest\"\ncount = 4\n\n[[validators]]\ncount = 2\n";

    fn load(text: &str) -> Result<Scenario, Box<LocatedError>> {
        Scenario::from_str(Path::new("t.toml"), text.to_string())
    }

    #[test]
    fn minimal_scenario_loads_with_defaults() {
        let s = load(MINIMAL).unwrap();
        assert_eq!(s.question, "What does it do?\nSecond line.");
        assert_eq!(s.points.len(), 1);
        let spec = &s.points[0].spec;
        assert_eq!(spec.chain.tempo, 360);
        assert_eq!(spec.mechanism, MechanismParams::default());
        assert_eq!(spec.scenario.seeds, 5);
    }

    #[test]
    fn sweeps_expand_to_the_cartesian_product() {
        let text = format!(
            "{MINIMAL}\n[sweep]\n\"mechanism.orchestration_share\" = {{ from = 0.3, to = 0.9, step = 0.1 }}\n\"miners.honest.count\" = [2, 8]\n"
        );
        let s = load(&text).unwrap();
        assert_eq!(s.points.len(), 14);
        let p = &s.points[13];
        assert_eq!(p.spec.mechanism.orchestration_share, 0.9);
        assert_eq!(p.spec.miners[0].count, 8);
        assert_eq!(
            p.params_string(),
            "mechanism.orchestration_share=0.9;miners.honest.count=8"
        );
        assert_eq!(
            s.points[1].params_string(),
            "mechanism.orchestration_share=0.3;miners.honest.count=8"
        );
    }

    #[test]
    fn errors_name_file_line_key_expected_and_found() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[scenario]\nname = \"t\"\nsedes = 3\n",
                "t.toml:3:1: `scenario.sedes`",
                "unknown key",
            ),
            (
                "[scenario]\nname = \"t\"\nseeds = \"five\"\n",
                "t.toml:3:9: `scenario.seeds`",
                "expected u32",
            ),
            (
                &MINIMAL.replace("count = 4", "count = 0"),
                "`miners[0].count`",
                "expected at least 1 miner",
            ),
            (
                &format!("{MINIMAL}[mechanism]\naudit_rate = 1.5\n"),
                "`mechanism.audit_rate`",
                "found 1.5",
            ),
            (
                &format!("{MINIMAL}[mechanism]\naudit_rat = 0.5\n"),
                "`mechanism.audit_rat`",
                "unknown key",
            ),
            (
                "[scenario]\nname = \"t\"\n[[validators]]\ncount = 1\n",
                "`miners`",
                "at least one [[miners]] group",
            ),
            (
                &format!(
                    "{MINIMAL}[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 22\nhours = -1\n"
                ),
                "`events[0].hours`",
                "found -1",
            ),
            (
                &format!("{MINIMAL}[[events]]\nat_day = 1\nkind = \"eclipse\"\n"),
                "`events[0].kind`",
                "found \"eclipse\"",
            ),
            (
                &format!(
                    "{MINIMAL}[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 1\nversion = 2\nhours = 1\n"
                ),
                "`events[0].version`",
                "only netuid, hours",
            ),
            (
                &format!("{MINIMAL}[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 1\n"),
                "`events[0]`",
                "expected `hours`",
            ),
            (
                &format!("{MINIMAL}[sweep]\n\"mechanism.orchestration_share\" = [0.5, 2.0]\n"),
                "`mechanism.orchestration_share`",
                "sweep point",
            ),
            ("name = [", "t.toml:1:", "found"),
        ];
        for (text, place, what) in cases {
            let err = load(text).unwrap_err().to_string();
            assert!(
                err.contains(place) && err.contains(what),
                "{err}\n  wanted {place} … {what}"
            );
        }
    }

    #[test]
    fn set_path_addresses_tables_arrays_and_labels() {
        let mut t: toml::Table = toml::from_str(MINIMAL).unwrap();
        set_path(
            &mut t,
            "mechanism.ledger_weights.discovery",
            toml::Value::Float(0.2),
        )
        .unwrap();
        set_path(&mut t, "miners[0].count", toml::Value::Integer(9)).unwrap();
        set_path(&mut t, "miners.honest.params.rate", toml::Value::Float(0.5)).unwrap();
        assert_eq!(
            t["mechanism"]["ledger_weights"]["discovery"].as_float(),
            Some(0.2)
        );
        assert_eq!(t["miners"][0]["count"].as_integer(), Some(9));
        assert_eq!(t["miners"][0]["params"]["rate"].as_float(), Some(0.5));
        assert!(set_path(&mut t, "miners.sybil.count", toml::Value::Integer(1)).is_err());
    }

    use proptest::prelude::*;

    /// Lines a scenario is made of, valid and not, to combine at random.
    const FRAGMENTS: &[&str] = &[
        "[scenario]",
        "name = \"x\"",
        "seeds = 3",
        "seeds = -1",
        "days = 0",
        "days = 1e400",
        "seed = 18446744073709551615",
        "[chain]",
        "tempo = 0",
        "tempo = 360",
        "kappa = 70000",
        "yuma = \"yuma3\"",
        "liquid_alpha = true",
        "[mechanism]",
        "orchestration_share = 0.7",
        "orchestration_share = nan",
        "audit_rate = inf",
        "combination = \"mechanisms\"",
        "[[miners]]",
        "strategy = \"honest\"",
        "strategy = \"sybil\"",
        "count = 2",
        "count = 0",
        "params = { rate = 2 }",
        "name = \"honest\"",
        "[[validators]]",
        "count = 1",
        "stake_tao = -5",
        "behaviour = \"colluding_bloc\"",
        "favourite = \"nobody\"",
        "sample = 0",
        "[[events]]",
        "at_day = 1",
        "at_day = -1",
        "kind = \"outage\"",
        "kind = \"miner_churn\"",
        "hours = 0",
        "group = \"honest\"",
        "netuid = 22",
        "[sweep]",
        "\"mechanism.orchestration_share\" = [0.1, 0.2]",
        "\"miners[9].count\" = [1]",
        "\"x\" = { from = 1, to = 0, step = 0 }",
        "[expect]",
        "below_honest = [\"ghost\"]",
        "recovery = { honest_share = 2, within_epochs = 1 }",
        "[load]",
        "profile = \"spikes\"",
        "spikes = [{ at_day = 1, hours = -1, multiplier = 2 }]",
        "= =",
        "[[[",
        "\"unterminated",
        "key.with.dots = 1",
        "",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any arrangement of scenario fragments loads or is refused with a located error; it
        /// never panics.
        #[test]
        fn arbitrary_documents_never_panic(picks in prop::collection::vec(0..FRAGMENTS.len(), 0..40)) {
            let text: String = picks.iter().map(|&i| FRAGMENTS[i]).collect::<Vec<_>>().join("\n");
            match load(&text) {
                Ok(s) => prop_assert!(!s.points.is_empty()),
                Err(e) => prop_assert!(e.to_string().starts_with("t.toml:")),
            }
        }

        /// Raw bytes never panic the loader either.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = load(&text);
        }
    }
}
