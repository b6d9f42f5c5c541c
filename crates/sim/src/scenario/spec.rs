//! The file format's types: one serde struct or enum per table of a scenario file, with the
//! defaults a table takes when a key is absent. Serde checks shape and type here (unknown keys,
//! wrong types); what serde cannot express is checked by `validate`.

use super::events::EventSpec;
use super::sweep::SweepAxis;
use orchestra_mechanism::params::MechanismParams;
use orchestra_yuma::EpochRule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Which runtime's epoch scheduler: `stateful` (spec 459: every `tempo` blocks from
    /// `LastEpochBlock`, owner triggers and `set_tempo` honoured) or `legacy` (the spec-103
    /// test runtime and spec ≤ 440: the block where `(block + netuid + 1) % (tempo + 1) == 0`).
    pub epoch_rule: EpochRule,
    /// `ActivityCutoffFactorMilli` (spec 459): blocks without a weight update after which a
    /// validator counts as inactive are `max(1, factor · tempo / 1000)`, 5000 at tempo 360.
    pub activity_cutoff_factor_milli: u32,
    /// A fixed activity cutoff in blocks, as runtimes before spec 459 hold it
    /// (`ActivityCutoff`); when set it replaces the factor.
    pub activity_cutoff: Option<u64>,
    /// `AdminFreezeWindow`: blocks before an epoch in which the owner may not `set_tempo`, and
    /// the delay of a `trigger_epoch`.
    pub admin_freeze_window: u64,
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
    /// Commit-reveal v2: validators commit at tempo close and reveal in the next tempo (the
    /// validator core's schedule), so weights reach Yuma one tempo after they are computed.
    pub commit_reveal: bool,
    /// `CommitRevealWeightsVersion` with commit-reveal on: 4 (the chain's default) commits
    /// weights timelock-encrypted to a round of the simulated drand beacon and the chain
    /// reveals them itself; 2 commits a hash that validators reveal.
    pub commit_reveal_version: u16,
    /// The uid whose hotkey is the subnet owner's (`SubnetOwnerHotkey`; validators hold uids
    /// 0.. in file order): the epoch keeps its permit and self-weight, and the coinbase burns
    /// its incentive (spec 459). None: the owner holds no uid on the simulated subnet.
    pub owner_uid: Option<u16>,
    /// `BondsResetOn`: a miner's commitment carrying `ResetBondsFlag` (a `reset_bonds` event)
    /// strips every validator's bond to it in every mechanism (spec 459 `do_reset_bonds`); off
    /// (the chain's default), the flag changes nothing.
    pub bonds_reset: bool,
}

impl ChainConfig {
    /// The activity cutoff the epoch at `tempo` uses, in blocks.
    pub fn activity_cutoff_at(&self, tempo: u16) -> u64 {
        self.activity_cutoff.unwrap_or_else(|| {
            orchestra_yuma::activity_cutoff_blocks(self.activity_cutoff_factor_milli, tempo)
        })
    }
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
            epoch_rule: EpochRule::default(),
            activity_cutoff_factor_milli: orchestra_yuma::INITIAL_ACTIVITY_CUTOFF_FACTOR_MILLI,
            activity_cutoff: None,
            admin_freeze_window: orchestra_yuma::DEFAULT_ADMIN_FREEZE_WINDOW,
            max_allowed_validators: 64,
            emission_per_block_rao: 1_000_000_000,
            owner_cut: 0.18,
            alpha_price_rao: 300_000_000,
            commit_reveal: false,
            commit_reveal_version: 4,
            owner_uid: None,
            bonds_reset: false,
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

/// `[expect]`: safety and liveness checks (docs/mechanism.md §9).
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
    /// Strategies whose ROI per identity must not be above honest (docs/mechanism.md §9's safety
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

#[cfg(test)]
mod tests {
    use super::super::Scenario;
    use super::ScenarioSpec;

    /// `orchestra-sim tune` reads a scenario's own values back from its serialised spec, so
    /// every shipped scenario must survive serialising and deserialising unchanged.
    #[test]
    fn shipped_scenarios_round_trip_through_serde() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 16, "{files:?}");
        let mut events = 0;
        for file in &files {
            let scenario = Scenario::load(file).unwrap();
            for point in &scenario.points {
                let value = toml::Value::try_from(&point.spec).unwrap();
                let back: ScenarioSpec = value.try_into().unwrap();
                assert_eq!(back, point.spec, "{}", file.display());
                events += point.spec.events.len();
            }
        }
        assert!(events > 0, "no shipped scenario has events");
    }
}
