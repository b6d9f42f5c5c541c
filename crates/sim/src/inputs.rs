//! The mock subnets and objective templates a scenario runs on: the ones shipped in `mocks/`
//! (embedded at build time by `orchestra-mocks` and `orchestra-mechanism`), or a directory of
//! mock subnets the scenario names, read by the loader every tool shares
//! ([`MockSet::load_dir_with_overrides`]).

use crate::engine::Inputs;
use orchestra_mechanism::templates::{ObjectiveTemplate, TemplateError};
use orchestra_mocks::MockSet;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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
