//! The mock subnets and objective templates a scenario runs on: the ones shipped in `mocks/`
//! (embedded at build time by `orchestra-mocks` and `orchestra-mechanism`), or a directory of
//! mock subnets the scenario names, read by the loader every tool shares
//! ([`MockSet::load_dir_with_overrides`]).

use crate::engine::{RunError, scenario_err};
use orchestra_adversaries::GroupState;
use orchestra_mechanism::templates::{ObjectiveTemplate, TemplateError};
use orchestra_mocks::MockSet;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Builds a custom miner strategy from its scenario `params` and a seed: how a miner plugs its own
/// [`orchestra_miner::Strategy`] into the simulator (see `examples/custom-strategy`).
pub type StrategyFactory = Arc<
    dyn Fn(&toml::Table, u64) -> Result<Box<dyn orchestra_miner::Strategy>, String> + Send + Sync,
>;

/// What every run of a scenario shares: the mock subnets, objective templates and any custom
/// strategies.
#[derive(Clone)]
pub struct Inputs {
    /// Mock subnets.
    pub mocks: Arc<MockSet>,
    /// Objective templates.
    pub templates: Vec<ObjectiveTemplate>,
    /// Custom strategies by name, usable in `[[miners]] strategy = "<name>"` next to the
    /// built-in ones.
    pub custom: BTreeMap<String, StrategyFactory>,
}

impl Inputs {
    /// Register a custom strategy under `name`.
    pub fn with_strategy(mut self, name: &str, factory: StrategyFactory) -> Self {
        self.custom.insert(name.to_string(), factory);
        self
    }

    /// Build the strategy of miner group `group` for the identity seeded with `seed`.
    pub(crate) fn build_strategy(
        &self,
        group: usize,
        g: &crate::scenario::MinerGroup,
        state: &mut GroupState,
        seed: u64,
    ) -> Result<Box<dyn orchestra_miner::Strategy>, RunError> {
        if let Some(factory) = self.custom.get(&g.strategy) {
            return factory(&g.params, seed).map_err(|why| {
                scenario_err(
                    &format!("miners[{group}].params"),
                    "valid strategy parameters",
                    &why,
                )
            });
        }
        orchestra_adversaries::build(&g.strategy, &g.params, state, seed).map_err(|e| match &e {
            orchestra_adversaries::BuildError::Param(p) => {
                let key = e.key().map_or_else(
                    || format!("miners[{group}].params"),
                    |k| format!("miners[{group}].params.{k}"),
                );
                scenario_err(&key, &p.expected, &p.found)
            }
            other => scenario_err(
                &format!("miners[{group}].strategy"),
                &format!(
                    "one of {} or a registered custom strategy",
                    orchestra_adversaries::NAMES.join(", ")
                ),
                &other.to_string(),
            ),
        })
    }
}

/// Why inputs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    /// A mock subnet file or directory is bad.
    #[error("{0}")]
    Mocks(String),
    /// An objective template is bad.
    #[error("objective template {file}: {error}")]
    Template {
        /// The file.
        file: String,
        /// What is wrong.
        error: String,
    },
}

/// The templates shipped in `mocks/objectives/`.
pub fn templates() -> Result<Vec<ObjectiveTemplate>, InputsError> {
    orchestra_mechanism::templates::shipped().map_err(|e| match e {
        TemplateError::InFile { file, error } => InputsError::Template {
            file,
            error: error.to_string(),
        },
        other => InputsError::Template {
            file: "mocks/objectives".into(),
            error: other.to_string(),
        },
    })
}

/// Inputs for a scenario: the mock subnets in `dir` (relative to the scenario file) or the
/// embedded ones, with `[subnets.overrides]` merged onto their `[behaviour]` tables.
pub fn load(
    scenario_file: &Path,
    dir: Option<&str>,
    overrides: &BTreeMap<String, toml::Table>,
) -> Result<Inputs, InputsError> {
    let mut by_netuid = BTreeMap::new();
    for (key, table) in overrides {
        let netuid: u16 = key.parse().map_err(|_| {
            InputsError::Mocks(format!(
                "subnets.overrides.{key}: expected a netuid, found {key:?}"
            ))
        })?;
        by_netuid.insert(netuid, table.clone());
    }
    let mocks = match dir {
        None => MockSet::shipped(&by_netuid),
        Some(d) => {
            let base = scenario_file.parent().unwrap_or(Path::new("."));
            MockSet::load_dir_with_overrides(base.join(d), &by_netuid)
        }
    }
    .map_err(|e| InputsError::Mocks(e.to_string()))?;
    Ok(Inputs {
        mocks: Arc::new(mocks),
        templates: templates()?,
        custom: BTreeMap::new(),
    })
}
