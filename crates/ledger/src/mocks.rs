//! Loading seed entries from `mocks/subnets/*.toml`.
//!
//! Each file has an `[entry]` table (the Ledger entry without its bookkeeping fields) and may
//! have a `[behaviour]` table the simulator reads (latency distribution, schema versions, …);
//! this loader ignores `[behaviour]` but rejects unknown keys inside `[entry]`, so a typo never
//! silently drops a field.

use crate::model::{Credit, ProposalKind};
use crate::node::ChangeInput;
use orchestra_protocol::hash_canonical;
use orchestra_protocol::ledger::{
    Endpoint, Entry, Metrics, ProbeEvidence, Proposal, ProposalChange, Status,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why a mock file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A file is not valid for the layout (the message has line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message, with position.
        message: String,
    },
    /// Two files declare the same netuid.
    #[error("netuid {netuid} is declared by both {first} and {second}")]
    Duplicate {
        /// The netuid.
        netuid: u16,
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
}

/// The `[entry]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MockEntry {
    netuid: u16,
    name: String,
    description: String,
    capabilities: Vec<String>,
    #[serde(default = "active")]
    status: Status,
    metrics: Metrics,
    endpoints: Vec<Endpoint>,
}

fn active() -> Status {
    Status::Active
}

/// A whole mock file: `[entry]` plus the simulator's `[behaviour]`, which is not ours to read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MockFile {
    entry: MockEntry,
    #[serde(default)]
    #[allow(dead_code)]
    behaviour: Option<toml::Value>,
}

/// Parse one mock file's text (`path` only names it in errors).
pub fn parse_mock(text: &str, path: &Path) -> Result<Entry, MockError> {
    let f: MockFile = toml::from_str(text).map_err(|e| MockError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let m = f.entry;
    Ok(Entry {
        netuid: m.netuid,
        name: m.name,
        description: m.description,
        capabilities: m.capabilities,
        endpoints: m.endpoints,
        metrics: m.metrics,
        status: m.status,
        version: 0,
        last_verified_block: 0,
        verified_by: Vec::new(),
    })
}

/// Load every `*.toml` in `dir`, sorted by netuid.
pub fn load_dir(dir: &Path) -> Result<Vec<Entry>, MockError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MockError::Io { path, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .map(|d| d.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out: Vec<(Entry, PathBuf)> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(io(&f))?;
        let e = parse_mock(&text, &f)?;
        if let Some((_, first)) = out.iter().find(|(x, _)| x.netuid == e.netuid) {
            return Err(MockError::Duplicate {
                netuid: e.netuid,
                first: first.clone(),
                second: f,
            });
        }
        out.push((e, f));
    }
    out.sort_by_key(|(e, _)| e.netuid);
    Ok(out.into_iter().map(|(e, _)| e).collect())
}

/// The `new_subnet` change that seeds `entry`, attributed to `validator` at `block`.
pub fn seed_change(
    entry: &Entry,
    validator: &str,
    block: u64,
) -> Result<ChangeInput, orchestra_protocol::hash::CanonicalError> {
    let proposal = Proposal {
        netuid: entry.netuid,
        change: ProposalChange::NewSubnet {
            entry: Box::new(entry.clone()),
        },
        evidence: Vec::new(),
        observed_block: block,
    };
    let new =
        serde_json::to_value(entry).map_err(orchestra_protocol::hash::CanonicalError::from)?;
    Ok(ChangeInput {
        block,
        proposal_id: proposal.content_id()?,
        kind: ProposalKind::NewSubnet,
        netuid: entry.netuid,
        path: String::new(),
        old: serde_json::Value::Null,
        new,
        proposer: validator.to_string(),
        credit: Credit::First,
        verifiers: vec![validator.to_string()],
        evidence_hash: hash_canonical(&Vec::<ProbeEvidence>::new())?,
    })
}
