//! The simulator (`crates/sim`) and the node (`crates/node`) are thin drivers of the validator
//! core: their non-test code reaches scoring, auditing, proposal judging and weights only through
//! [`orchestra_validator::Validator`], and the simulator's engine names no strategy. This is the
//! check `docs/architecture.md` describes; it reads the sources, so it fails the moment a driver
//! grows its own copy of core logic.

use std::path::{Path, PathBuf};

/// Core internals a driver must not use directly (it goes through `Validator`).
const CORE_INTERNALS: &[&str] = &[
    "Scorer::",
    "Auditor::",
    "ProposalVerifier::",
    "ChallengeGenerator::",
    "WeightSetter::",
    "WeightSchedule::",
    "score_challenge(",
    "end_tempo(",
    "record_proposal(",
    "weights_to_set(",
    "combine(",
    ".quantize(",
    "pick_miner(",
    "audit_draw(",
    "fabrication_strike(",
    "strategy_name()",
];

/// Strategy names the engine must not branch on (behaviour lives behind the strategy traits).
const STRATEGY_NAMES: &[&str] = &[
    "\"weight_copier\"",
    "\"colluding_bloc\"",
    "\"stale_router\"",
    "\"fabricator\"",
    "\"copycat\"",
    "\"replayer\"",
    "\"sybil\"",
    "\"cherry_picker\"",
    "\"freerider\"",
    "\"ledger_only\"",
    "\"ledger_spammer\"",
    "\"confirmation_farmer\"",
    "\"shell_responder\"",
    "\"invented_step\"",
    "\"adaptive\"",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The non-test lines of `file`: everything before its first `#[cfg(test)]` item, and nothing
/// of a file that is itself a test module.
fn production_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    if text.starts_with("//! One validator core, two drivers") {
        // The node's equivalence test module (declared `#[cfg(test)]` in its parent).
        return Vec::new();
    }
    text.lines()
        .enumerate()
        .take_while(|(_, l)| !l.starts_with("#[cfg(test)]"))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

fn offences(dirs: &[&str], patterns: &[&str]) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for d in dirs {
        rust_files(&root.join(d), &mut files);
    }
    assert!(!files.is_empty(), "no sources under {dirs:?}");
    let mut out = Vec::new();
    for f in files {
        for (n, line) in production_lines(&f) {
            for p in patterns {
                if line.contains(p) {
                    out.push(format!("{}:{n}: `{p}` in `{}`", f.display(), line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn the_simulator_and_the_node_reach_core_logic_only_through_the_validator() {
    let found = offences(&["crates/sim/src", "crates/node/src"], CORE_INTERNALS);
    assert!(
        found.is_empty(),
        "core logic outside the core:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_engine_names_no_strategy() {
    let found = offences(&["crates/sim/src/engine"], STRATEGY_NAMES);
    assert!(
        found.is_empty(),
        "strategy names in the engine:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    // The scanner itself: it sees the core's own use of its internals.
    let found = offences(&["crates/validator/src"], &["score_challenge("]);
    assert!(!found.is_empty());
}
