//! Semantic checks of a scenario that serde cannot express: ranges, counts, cross-references
//! between tables (group labels, validator indices, favourites). Each failure is a
//! [`LocatedError`] naming file, line, key, what was expected and what was found; at a sweep
//! point, `found` also names the point's values. What only the engine knows (strategy
//! parameters, mock subnets' netuids, endpoints and schema versions) is checked by
//! `engine::validate`.

use super::events::EventKind;
use super::spec::{ScenarioSpec, YumaVariant};
use crate::located::{LocatedError, SourceDoc};
use orchestra_mechanism::params::ParamsError;
use std::collections::BTreeMap;

/// An error at `key` of `doc`; `context` names the sweep point, if any.
pub(super) fn error_at(
    doc: &SourceDoc,
    key: &str,
    expected: &str,
    found: &str,
    context: &str,
) -> Box<LocatedError> {
    let found = if context.is_empty() {
        found.to_string()
    } else {
        format!("{found} (at sweep point {context})")
    };
    Box::new(doc.error_at_key(key, expected, &found))
}

/// Semantic checks serde cannot express. `context` names the sweep point, if any (empty
/// without a sweep). The event keys each kind takes are already checked when the file is
/// deserialised ([`super::EventSpec`]).
pub(crate) fn validate(
    doc: &SourceDoc,
    spec: &ScenarioSpec,
    context: &str,
) -> Result<(), Box<LocatedError>> {
    let at = |key: &str, expected: &str, found: String| {
        Err(error_at(doc, key, expected, &found, context))
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
    if c.tempo == 0 || c.tempo > u64::from(u16::MAX) {
        return at(
            "chain.tempo",
            "a tempo between 1 and 65535 blocks (the chain's u16)",
            c.tempo.to_string(),
        );
    }
    let factors = orchestra_yuma::MIN_ACTIVITY_CUTOFF_FACTOR_MILLI
        ..=orchestra_yuma::MAX_ACTIVITY_CUTOFF_FACTOR_MILLI;
    if !factors.contains(&c.activity_cutoff_factor_milli) {
        return at(
            "chain.activity_cutoff_factor_milli",
            "a factor between 1000 and 50000 per mille of tempo (the chain's bounds)",
            c.activity_cutoff_factor_milli.to_string(),
        );
    }
    let total_validators: u64 = spec.validators.iter().map(|g| u64::from(g.count)).sum();
    if let Some(owner) = c.owner_uid
        && u64::from(owner) >= total_validators
    {
        return at(
            "chain.owner_uid",
            &format!("a validator's uid (0..{total_validators}, in file order)"),
            owner.to_string(),
        );
    }
    if !matches!(c.commit_reveal_version, 2 | 4) {
        return at(
            "chain.commit_reveal_version",
            "2 (hash commits revealed by validators) or 4 (timelocked commits the chain reveals)",
            c.commit_reveal_version.to_string(),
        );
    }
    if c.activity_cutoff == Some(0) {
        return at(
            "chain.activity_cutoff",
            "a cutoff of at least 1 block",
            "0".into(),
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
        let bad_hours = |h: f64| !(h.is_finite() && h > 0.0);
        match &e.kind {
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
            EventKind::TriggerEpoch
                if spec.chain.epoch_rule == orchestra_yuma::EpochRule::Legacy =>
            {
                return at(
                    &format!("events[{i}].kind"),
                    "trigger_epoch only with [chain] epoch_rule = \"stateful\" (the legacy runtime has no such call)",
                    "\"trigger_epoch\"".into(),
                );
            }
            EventKind::SetTempo { tempo: 0 } => {
                return at(
                    &format!("events[{i}].tempo"),
                    "a tempo of at least 1 block",
                    "0".into(),
                );
            }
            EventKind::MinerChurn { group, .. }
            | EventKind::AttackStop { group }
            | EventKind::ResetBonds { group }
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
    use super::super::test_util::{MINIMAL, error, load};

    /// MINIMAL with `extra` from line 12 on (inside `[[validators]]` unless it opens a table).
    fn with(extra: &str) -> String {
        format!("{MINIMAL}{extra}\n")
    }

    /// MINIMAL with `[scenario]` given `extra` keys from line 5 on.
    fn meta(extra: &str) -> String {
        MINIMAL.replace("name = \"t\"\n", &format!("name = \"t\"\n{extra}\n"))
    }

    #[test]
    fn each_check_names_line_key_expected_and_found() {
        let cases: Vec<(String, &str)> = vec![
            (
                MINIMAL.replace("\"t\"", "\"a/b\""),
                "t.toml:4:8: `scenario.name`: expected a non-empty name without slashes, found \"a/b\"",
            ),
            (
                meta("days = 0"),
                "t.toml:5:8: `scenario.days`: expected a duration in (0, 3660] days, found 0",
            ),
            (
                meta("seeds = 20000"),
                "t.toml:5:9: `scenario.seeds`: expected between 1 and 10000 seeds, found 20000",
            ),
            (
                with("[chain]\nblock_ms = 0"),
                "t.toml:13:12: `chain.block_ms`: expected a block time > 0 ms, found 0",
            ),
            (
                with("[chain]\ntempo = 100001"),
                "t.toml:13:9: `chain.tempo`: expected a tempo between 1 and 65535 blocks (the chain's u16), found 100001",
            ),
            (
                with("[chain]\nbonds_moving_average = 1000001"),
                "t.toml:13:24: `chain.bonds_moving_average`: expected at most 1000000 (parts per million), found 1000001",
            ),
            (
                with("[chain]\nowner_cut = 1"),
                "t.toml:13:13: `chain.owner_cut`: expected a share in [0, 1), found 1",
            ),
            (
                with("[chain]\nliquid_alpha = true"),
                "t.toml:13:16: `chain.liquid_alpha`: expected liquid alpha only with yuma = \"yuma3\", found true",
            ),
            (
                with("[mechanism]\naudit_rate = 1.5"),
                "t.toml:13:14: `mechanism.audit_rate`: expected a finite number in [0, 1], found 1.5",
            ),
            (
                "[scenario]\nname = \"t\"\n[[validators]]\ncount = 1\n".to_string(),
                "t.toml:1:1: `miners`: expected at least one [[miners]] group, found none",
            ),
            (
                MINIMAL.replace("count = 4", "count = 0"),
                "t.toml:8:9: `miners[0].count`: expected at least 1 miner, found 0",
            ),
            (
                with("[[miners]]\nstrategy = \"honest\"\ncount = 1"),
                "t.toml:12:1: `miners[1]`: expected a unique group label (set `name`), found a second group labelled \"honest\"",
            ),
            (
                "[scenario]\nname = \"t\"\n[[miners]]\nstrategy = \"honest\"\ncount = 1\n"
                    .to_string(),
                "t.toml:1:1: `validators`: expected at least one [[validators]] group, found none",
            ),
            (
                MINIMAL.replace("count = 2", "count = 0"),
                "t.toml:11:9: `validators[0].count`: expected at least 1 validator, found 0",
            ),
            (
                with("stake_tao = -5"),
                "t.toml:12:13: `validators[0].stake_tao`: expected a stake > 0 TAO, found -5",
            ),
            (
                with("zipf_s = -1"),
                "t.toml:12:10: `validators[0].zipf_s`: expected an exponent ≥ 0, found -1",
            ),
            (
                with("sample = 0"),
                "t.toml:12:10: `validators[0].sample`: expected at least 1 miner per round, found 0",
            ),
            (
                with("challenge_every_blocks = 0"),
                "t.toml:12:26: `validators[0].challenge_every_blocks`: expected at least 1 block, found 0",
            ),
            (
                with("favourite = \"ghost\""),
                "t.toml:12:13: `validators[0].favourite`: expected a miner group label, found \"ghost\"",
            ),
            (
                MINIMAL.replace("count = 4", "count = 4095"),
                "t.toml:6:1: `miners`: expected at most 4096 neurons in all, found 4097 neurons",
            ),
            (
                with("[load]\nrate_per_hour = -1"),
                "t.toml:13:17: `load.rate_per_hour`: expected a rate ≥ 0, found -1",
            ),
            (
                with("[load]\namplitude = 1.5"),
                "t.toml:13:13: `load.amplitude`: expected a relative swing in [0, 1], found 1.5",
            ),
            (
                with("[load]\nattempts = 0"),
                "t.toml:13:12: `load.attempts`: expected between 1 and 16 miners per request, found 0",
            ),
            (
                with("[load]\nspikes = [{ at_day = 1, hours = 0, multiplier = 2 }]"),
                "t.toml:13:11: `load.spikes[0]`: expected at_day ≥ 0, hours > 0, multiplier ≥ 0, found Spike { at_day: 1.0, hours: 0.0, multiplier: 2.0 }",
            ),
            (
                with("[[events]]\nat_day = -1\nkind = \"deprecation\"\nnetuid = 1"),
                "t.toml:13:10: `events[0].at_day`: expected a time ≥ 0 days, found -1",
            ),
            (
                with("[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 1\nhours = 0"),
                "t.toml:16:9: `events[0].hours`: expected a duration > 0 hours, found 0",
            ),
            (
                with(
                    "[[events]]\nat_day = 1\nkind = \"validator_down\"\nvalidators = [0]\nhours = -1",
                ),
                "t.toml:16:9: `events[0].hours`: expected a duration > 0 hours, found -1",
            ),
            (
                with("[[events]]\nat_day = 1\nkind = \"price_change\"\nnetuid = 1\nmultiplier = 0"),
                "t.toml:16:14: `events[0].multiplier`: expected a multiplier > 0, found 0",
            ),
            (
                with(
                    "[[events]]\nat_day = 1\nkind = \"latency_change\"\nnetuid = 1\nmultiplier = inf",
                ),
                "t.toml:16:14: `events[0].multiplier`: expected a multiplier > 0, found inf",
            ),
            (
                with(
                    "[[events]]\nat_day = 1\nkind = \"validator_down\"\nvalidators = [0, 2]\nhours = 1",
                ),
                "t.toml:15:14: `events[0].validators`: expected validator indices below 2, found 2",
            ),
            (
                with(
                    "[[events]]\nat_day = 1\nkind = \"miner_churn\"\ngroup = \"ghost\"\nleave = 1",
                ),
                "t.toml:15:9: `events[0].group`: expected a miner group label, found \"ghost\"",
            ),
            (
                with("[[events]]\nat_day = 1\nkind = \"attack_stop\"\ngroup = \"ghost\""),
                "t.toml:15:9: `events[0].group`: expected a miner group label, found \"ghost\"",
            ),
            (
                with("[expect]\nbelow_honest = [\"ghost\"]"),
                "t.toml:13:16: `expect.below_honest`: expected miner group labels or strategy names, found \"ghost\"",
            ),
            (
                with("[expect]\nnot_above_honest = [\"honest\", \"ghost\"]"),
                "t.toml:13:20: `expect.not_above_honest`: expected miner group labels or strategy names, found \"ghost\"",
            ),
            (
                with("[expect]\nsplit_tolerance = 1.5"),
                "t.toml:13:19: `expect.split_tolerance`: expected a share in [0, 1], found 1.5",
            ),
            (
                with("[expect]\nhonest_share_min = -0.1"),
                "t.toml:13:20: `expect.honest_share_min`: expected a share in [0, 1], found -0.1",
            ),
            (
                with("[expect]\nledger_accuracy_min = nan"),
                "t.toml:13:23: `expect.ledger_accuracy_min`: expected a share in [0, 1], found NaN",
            ),
            (
                with("[expect]\nsuccess_rate_min = 2"),
                "t.toml:13:20: `expect.success_rate_min`: expected a share in [0, 1], found 2",
            ),
        ];
        for (text, want) in &cases {
            assert_eq!(&error(text), want, "in:\n{text}");
        }
    }

    #[test]
    fn labels_strategies_and_favourites_resolve() {
        // A group with a `name` is addressed by it; `[expect]` may also name its strategy.
        let text = format!(
            "{}\n[[miners]]\nstrategy = \"fabricator\"\ncount = 2\nname = \"fab\"\n\n[[validators]]\ncount = 1\nbehaviour = \"colluding_bloc\"\nfavourite = \"fab\"\n\n[[events]]\nat_day = 0\nkind = \"attack_stop\"\ngroup = \"fab\"\n\n[expect]\nbelow_honest = [\"fab\", \"fabricator\"]\n",
            MINIMAL.trim_end()
        );
        let s = load(&text).unwrap();
        assert_eq!(s.points[0].spec.miners[1].label(), "fab");
        let err = error(&text.replace("group = \"fab\"", "group = \"fabricator\""));
        assert!(
            err.contains("`events[0].group`: expected a miner group label, found \"fabricator\""),
            "{err}"
        );
    }
}
