//! Scenario files: what a mechanism designer writes and `orchestra-sim` runs.
//!
//! A scenario is TOML with the tables `[scenario]`, `[chain]`, `[mechanism]`, `[subnets]`,
//! `[[miners]]`, `[[validators]]`, `[load]`, `[[events]]`, `[sweep]`, `[expect]` and `[tune]`
//! (what `orchestra-sim tune` searches, [`crate::tune::spec`]); every key is documented in
//! `scenarios/README.md`. Loading is all-or-nothing: any unknown key, wrong type or
//! out-of-range value is a [`LocatedError`] naming file, line, column, key, expected and found,
//! and nothing runs.
//!
//! Loading goes through the submodules in order: `spec` holds the serde types of the file,
//! `events` types each `[[events]]` entry as it is deserialised, `validate` checks what serde
//! cannot, and `sweep` expands `[sweep]` into parameter points, each checked again. Everything
//! public is re-exported here.

mod events;
mod spec;
mod sweep;
mod validate;

pub use events::{EVENT_KINDS, EventError, EventKind, EventSpec};
pub use orchestra_yuma::EpochRule;
pub use spec::{
    ChainConfig, DAY_MS, Expect, LoadConfig, LoadProfile, Meta, MinerGroup, Recovery, ScenarioSpec,
    Spike, StakeDistribution, SubnetsConfig, ValidatorGroup, YumaVariant,
};
pub use sweep::{MAX_POINTS, Point, SweepAxis, set_path};
pub(crate) use validate::validate;

use crate::located::{LocatedError, SourceDoc};
use std::path::Path;

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
        let base: ScenarioSpec = toml::from_str(&doc.text).map_err(|e| {
            events::conversion_error(&doc, &table, &e, "")
                .unwrap_or_else(|| Box::new(doc.from_toml_error(&e)))
        })?;
        validate(&doc, &base, "")?;
        crate::tune::spec::validate(&doc, &table, &base)?;
        let points = sweep::points(&doc, &table, &base)?;
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

/// What the tests of every submodule load.
#[cfg(test)]
pub(crate) mod test_util {
    use super::Scenario;
    use crate::located::LocatedError;
    use std::path::Path;

    /// The smallest valid scenario: 4 honest miners (lines 6–8), 2 validators (lines 10–11).
    pub const MINIMAL: &str = "# What does it do?\n# Second line.\n[scenario]\nname = \"t\"\n\n[[miners]]\nstrategy = \"honest\"\ncount = 4\n\n[[validators]]\ncount = 2\n";

    /// Load `text` as the file `t.toml`.
    pub fn load(text: &str) -> Result<Scenario, Box<LocatedError>> {
        Scenario::from_str(Path::new("t.toml"), text.to_string())
    }

    /// The error `text` is refused with, as printed.
    pub fn error(text: &str) -> String {
        match load(text) {
            Ok(_) => panic!("loaded, but should have been refused:\n{text}"),
            Err(e) => e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{MINIMAL, load};
    use orchestra_mechanism::params::MechanismParams;

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
    fn the_question_is_the_leading_comment_block() {
        let text = "\n#  Indented?\n#\n# Yes.\n[scenario]\n# Not this.\n";
        assert_eq!(super::leading_comment(text), "Indented?\n\nYes.");
        assert_eq!(super::leading_comment("[scenario]\n# Late.\n"), "");
    }

    #[test]
    fn an_unreadable_file_is_a_located_error() {
        let err = super::Scenario::load(std::path::Path::new("/no/such/dir/s.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "/no/such/dir/s.toml:1:1: `(file)`: expected a readable scenario file, found "
            ),
            "{err}"
        );
    }

    #[test]
    fn overrides_apply_to_every_point() {
        let mut s = load(&format!(
            "{MINIMAL}[sweep]\n\"load.rate_per_hour\" = [1, 2, 3]\n"
        ))
        .unwrap();
        s.override_runs(Some(0), Some(0.5));
        assert_eq!(s.points.len(), 3);
        for p in &s.points {
            assert_eq!(p.spec.scenario.seeds, 1, "at least one seed");
            assert_eq!(p.spec.scenario.days, 0.5);
        }
        assert_eq!(s.name(), "t");
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
