//! `[sweep]`: axes of values for dotted key paths, expanded into the parameter points of a
//! scenario (their cartesian product), and [`set_path`], which writes a value at such a path
//! (also used by `orchestra-sim tune` for its free parameters).

use super::spec::ScenarioSpec;
use super::{events, validate};
use crate::located::{LocatedError, Seg, SourceDoc, parse_path};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most sweep points a scenario may expand to.
pub const MAX_POINTS: usize = 10_000;

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

/// The parameter points of a scenario: `base` alone without a sweep, else one validated spec
/// per combination of axis values, the last key varying fastest. `table` is the file as a
/// TOML table, into which each point's values are written before it is deserialised again, so a
/// swept value is checked exactly as if it had been written in the file.
pub(super) fn points(
    doc: &SourceDoc,
    table: &toml::Table,
    base: &ScenarioSpec,
) -> Result<Vec<Point>, Box<LocatedError>> {
    let axes = expand_axes(doc, base)?;
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
            let context = values
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let spec: ScenarioSpec = t.clone().try_into().map_err(|e: toml::de::Error| {
                // A swept event key that leaves an event of the wrong shape is reported at
                // the event, as in a file without a sweep.
                events::conversion_error(doc, &t, &e, &context).unwrap_or_else(|| {
                    Box::new(doc.error_at_key(
                        &format!("sweep.{}", values.keys().next().map_or("", String::as_str)),
                        "values valid for the swept key",
                        e.message(),
                    ))
                })
            })?;
            validate::validate(doc, &spec, &context)?;
            spec
        };
        points.push(Point {
            index: index as u32,
            values,
            spec,
        });
    }
    Ok(points)
}

/// Each swept key with the values it takes, in key order.
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

#[cfg(test)]
mod tests {
    use super::super::test_util::{MINIMAL, error, load};
    use super::*;
    use proptest::prelude::*;

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

    /// The values one axis takes, as loaded through a sweep of `load.rate_per_hour`.
    fn axis(spec: &str) -> Vec<f64> {
        let s = load(&format!(
            "{MINIMAL}[sweep]\n\"load.rate_per_hour\" = {spec}\n"
        ))
        .unwrap();
        s.points
            .iter()
            .map(|p| p.values["load.rate_per_hour"].as_float().unwrap())
            .collect()
    }

    #[test]
    fn ranges_include_their_end_and_keep_the_steps_precision() {
        assert_eq!(
            axis("{ from = 0.3, to = 0.9, step = 0.1 }"),
            [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        );
        assert_eq!(
            axis("{ from = 0.05, to = 0.25, step = 0.1 }"),
            [0.05, 0.15, 0.25]
        );
        // The end is included only when a step lands on it.
        assert_eq!(
            axis("{ from = 1, to = 2, step = 0.3 }"),
            [1.0, 1.3, 1.6, 1.9]
        );
        assert_eq!(axis("{ from = 5, to = 5, step = 1 }"), [5.0]);
        assert_eq!(decimals_of(0.1), 1);
        assert_eq!(decimals_of(0.25), 2);
        assert_eq!(decimals_of(3.0), 0);
        assert_eq!(decimals_of(1e-3), 3);
    }

    #[test]
    fn the_last_key_varies_fastest_and_each_point_holds_its_values() {
        let s = load(&format!(
            "{MINIMAL}[sweep]\n\"validators[0].sample\" = [3, 4, 5]\n\"load.rate_per_hour\" = [10.0, 20.0]\n"
        ))
        .unwrap();
        let got: Vec<(u32, String, f64, u32)> = s
            .points
            .iter()
            .map(|p| {
                (
                    p.index,
                    p.params_string(),
                    p.spec.load.rate_per_hour,
                    p.spec.validators[0].sample,
                )
            })
            .collect();
        // Keys in order: `load.rate_per_hour` < `validators[0].sample`, so `sample` is fastest.
        let want: Vec<(u32, String, f64, u32)> = [
            (10.0, 3),
            (10.0, 4),
            (10.0, 5),
            (20.0, 3),
            (20.0, 4),
            (20.0, 5),
        ]
        .iter()
        .enumerate()
        .map(|(i, &(r, k))| {
            (
                i as u32,
                format!("load.rate_per_hour={r:.1};validators[0].sample={k}"),
                r,
                k,
            )
        })
        .collect();
        assert_eq!(got, want);
        // Without a sweep there is one point, with no values.
        let one = load(MINIMAL).unwrap();
        assert_eq!(one.points.len(), 1);
        assert_eq!(one.points[0].index, 0);
        assert_eq!(one.points[0].params_string(), "");
    }

    #[test]
    fn sweep_errors_name_line_key_expected_and_found() {
        // `[sweep]` is line 12 of these files; quoted dotted keys are found by their table.
        let cases = [
            (
                "\"mechanism.orchestration_share\" = []",
                "t.toml:12:1: `sweep.mechanism.orchestration_share`: expected a non-empty list of values, found []",
            ),
            (
                "\"load.rate_per_hour\" = { from = 2, to = 1, step = 0.5 }",
                "t.toml:12:1: `sweep.load.rate_per_hour`: expected from ≤ to and step > 0, found from = 2, to = 1, step = 0.5",
            ),
            (
                "\"load.rate_per_hour\" = { from = 0, to = 1, step = 0 }",
                "t.toml:12:1: `sweep.load.rate_per_hour`: expected from ≤ to and step > 0, found from = 0, to = 1, step = 0",
            ),
            (
                "\"load.rate_per_hour\" = { from = 0, to = 1, step = 0.00001 }",
                "t.toml:12:1: `sweep.load.rate_per_hour`: expected a range of at most 10000 values, found 100001 values",
            ),
            (
                "\"load.rate_per_hour\" = { from = 0, to = 1, step = 0.001 }\n\"load.amplitude\" = { from = 0, to = 1, step = 0.1 }",
                "t.toml:12:1: `sweep`: expected at most 10000 parameter points, found 11011 points",
            ),
            (
                "\"miners.sybil.count\" = [1]",
                "t.toml:12:1: `sweep.miners.sybil.count`: expected a key of this scenario, found no element labelled `sybil`",
            ),
            (
                "\"miners[3].count\" = [1]",
                "t.toml:12:1: `sweep.miners[3].count`: expected a key of this scenario, found index 3 but only 1 elements",
            ),
            (
                "\"scenario.name.x\" = [1]",
                "t.toml:12:1: `sweep.scenario.name.x`: expected a key of this scenario, found `scenario.name.x` does not address a value of this scenario",
            ),
            (
                "\"\" = [1]",
                "t.toml:12:1: `sweep.`: expected a key of this scenario, found an empty key",
            ),
            (
                "\"miners.honest.count\" = [\"many\"]",
                "t.toml:12:1: `sweep.miners.honest.count`: expected values valid for the swept key, found invalid type: string \"many\", expected u32",
            ),
            (
                "\"chain.tempo\" = { from = 100, to = 300, step = 100 }",
                "t.toml:12:1: `sweep.chain.tempo`: expected values valid for the swept key, found invalid type: floating point `100.0`, expected u64",
            ),
            // A swept value that serde accepts but `validate` refuses names the point.
            (
                "\"miners.honest.count\" = [1, 0]",
                "t.toml:8:9: `miners[0].count`: expected at least 1 miner, found 0 (at sweep point miners.honest.count = 0)",
            ),
            (
                "\"load.amplitude\" = [0.5, 1.5]",
                "t.toml:1:1: `load.amplitude`: expected a relative swing in [0, 1], found 1.5 (at sweep point load.amplitude = 1.5)",
            ),
        ];
        for (sweep, want) in cases {
            assert_eq!(error(&format!("{MINIMAL}[sweep]\n{sweep}\n")), want);
        }
    }

    #[test]
    fn labels_are_names_first_and_must_be_unique() {
        let items: Vec<toml::Value> = [
            "strategy = \"honest\"",
            "strategy = \"honest\"\nname = \"calm\"",
            "strategy = \"fabricator\"",
            "strategy = \"fabricator\"",
        ]
        .iter()
        .map(|t| toml::Value::Table(toml::from_str(t).unwrap()))
        .collect();
        assert_eq!(find_labelled(&items, "honest"), Ok(0));
        assert_eq!(find_labelled(&items, "calm"), Ok(1));
        assert_eq!(
            find_labelled(&items, "fabricator"),
            Err("several elements labelled `fabricator`; give each a `name`".to_string())
        );
        assert_eq!(
            find_labelled(&items, "sybil"),
            Err("no element labelled `sybil`".to_string())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any sweep of up to three list axes expands to exactly their cartesian product: one
        /// point per combination, numbered in order, each spec holding its point's values.
        #[test]
        fn a_sweep_is_the_cartesian_product_of_its_axes(
            rates in prop::collection::vec(0u32..1000, 1..4),
            samples in prop::collection::vec(1u32..64, 1..4),
            counts in prop::collection::vec(1u32..50, 0..4),
        ) {
            let list = |v: &[u32]| {
                v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            };
            let mut text = format!(
                "{MINIMAL}[sweep]\n\"load.rate_per_hour\" = [{}]\n\"validators[0].sample\" = [{}]\n",
                list(&rates),
                list(&samples)
            );
            if !counts.is_empty() {
                text.push_str(&format!("\"miners.honest.count\" = [{}]\n", list(&counts)));
            }
            let s = load(&text).unwrap();
            let width = counts.len().max(1);
            prop_assert_eq!(s.points.len(), rates.len() * samples.len() * width);
            // Keys in order: load.rate_per_hour, miners.honest.count, validators[0].sample.
            let mut i = 0;
            for &r in &rates {
                for c in 0..width {
                    for &k in &samples {
                        let p = &s.points[i];
                        prop_assert_eq!(p.index as usize, i);
                        prop_assert_eq!(p.spec.load.rate_per_hour, f64::from(r));
                        prop_assert_eq!(p.spec.validators[0].sample, k);
                        let count = counts.get(c).copied().unwrap_or(4);
                        prop_assert_eq!(p.spec.miners[0].count, count);
                        prop_assert_eq!(p.values.len(), 2 + usize::from(!counts.is_empty()));
                        i += 1;
                    }
                }
            }
        }
    }
}
