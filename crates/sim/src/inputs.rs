//! The mock subnets and objective templates a scenario runs on: the ones embedded in the binary
//! (copied from `mocks/` at build time), or a directory the scenario names.

use crate::engine::Inputs;
use orchestra_mechanism::templates::ObjectiveTemplate;
use orchestra_mocks::MockSet;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
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
    embedded::OBJECTIVES
        .iter()
        .map(|(file, text)| {
            ObjectiveTemplate::from_toml_str(text).map_err(|e| InputsError::Template {
                file: (*file).to_string(),
                error: e.to_string(),
            })
        })
        .collect()
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
        None => MockSet::from_sources(embedded::SUBNETS.iter().copied(), &by_netuid),
        Some(d) => {
            let base = scenario_file.parent().unwrap_or(Path::new("."));
            let dir = base.join(d);
            let mut files = Vec::new();
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| InputsError::Mocks(format!("{}: {e}", dir.display())))?;
            for entry in entries {
                let path = entry
                    .map_err(|e| InputsError::Mocks(format!("{}: {e}", dir.display())))?
                    .path();
                if path.extension().is_some_and(|x| x == "toml") {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| InputsError::Mocks(format!("{}: {e}", path.display())))?;
                    files.push((path.display().to_string(), text));
                }
            }
            if files.is_empty() {
                return Err(InputsError::Mocks(format!(
                    "{}: no mock subnet files (*.toml)",
                    dir.display()
                )));
            }
            MockSet::from_sources(
                files.iter().map(|(n, t)| (n.as_str(), t.as_str())),
                &by_netuid,
            )
        }
    }
    .map_err(|e| InputsError::Mocks(e.to_string()))?;
    Ok(Inputs {
        mocks: Arc::new(mocks),
        templates: templates()?,
        custom: BTreeMap::new(),
    })
}
