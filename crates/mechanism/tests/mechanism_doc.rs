//! `docs/mechanism.md` states the defaults `MechanismParams::default()` has.
//!
//! The document is normative and the code cites it by section, so a default changed in one place
//! and not the other is a bug. This test reads the machine-readable table of Appendix A (between
//! the `mechanism-params` markers: one row per field, the default as a TOML literal) and every
//! `` `field` = `value` `` mention in the prose, and compares them with the serialised defaults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use orchestra_mechanism::MechanismParams;

const BEGIN: &str = "<!-- mechanism-params:begin -->";
const END: &str = "<!-- mechanism-params:end -->";

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/mechanism.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every leaf of the default parameters, by dotted path (`orchestration_weights.routing`).
fn default_leaves() -> BTreeMap<String, toml::Value> {
    fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            leaf => {
                out.insert(prefix.to_string(), leaf.clone());
            }
        }
    }
    let value = toml::Value::try_from(MechanismParams::default()).unwrap();
    let mut out = BTreeMap::new();
    walk("", &value, &mut out);
    out
}

/// A TOML literal (`0.2`, `"step"`, `86400000`) as a value, or why it is not one.
fn literal(text: &str) -> Result<toml::Value, String> {
    let mut table: toml::Table =
        toml::from_str(&format!("v = {text}")).map_err(|e| format!("`{text}`: {e}"))?;
    table
        .remove("v")
        .ok_or_else(|| format!("`{text}`: no value"))
}

/// `(field, default literal)` of each row of the parameter table.
fn table_rows(doc: &str) -> Vec<(String, String)> {
    let start = doc.find(BEGIN).expect("the parameter table's begin marker") + BEGIN.len();
    let len = doc[start..]
        .find(END)
        .expect("the parameter table's end marker");
    doc[start..start + len]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert!(cells.len() >= 4, "short table row: {row}");
            let unquote = |c: &str| c.trim_matches('`').to_string();
            (unquote(cells[1]), unquote(cells[2]))
        })
        .collect()
}

/// Every `` `name` = `literal` `` in `text`, in order.
fn mentions(text: &str) -> Vec<(String, String)> {
    let spans: Vec<&str> = text.split('`').collect();
    // Inside code spans are the odd pieces; a mention is span, " = ", span.
    let mut out = Vec::new();
    let mut i = 1;
    while i + 2 < spans.len() {
        if spans[i + 1] == " = " {
            out.push((spans[i].to_string(), spans[i + 2].to_string()));
        }
        i += 2;
    }
    out
}

/// Mentions of known fields whose value is not the default, as messages.
fn wrong_mentions(text: &str, defaults: &BTreeMap<String, toml::Value>) -> Vec<String> {
    mentions(text)
        .into_iter()
        .filter_map(|(field, value)| {
            let expected = defaults.get(&field)?;
            match literal(&value) {
                Ok(v) if &v == expected => None,
                Ok(v) => Some(format!(
                    "`{field}` = `{value}`: the default is {expected}, not {v}"
                )),
                Err(e) => Some(format!("`{field}` = {e}")),
            }
        })
        .collect()
}

#[test]
fn the_table_lists_every_field_once_with_its_default() {
    let defaults = default_leaves();
    let rows = table_rows(&doc());
    let mut seen = BTreeMap::new();
    let mut problems = Vec::new();
    for (field, value) in &rows {
        if seen.insert(field.clone(), ()).is_some() {
            problems.push(format!("`{field}` is listed twice"));
        }
        match (defaults.get(field), literal(value)) {
            (None, _) => problems.push(format!("`{field}` is not a MechanismParams field")),
            (Some(_), Err(e)) => problems.push(format!("`{field}`: {e}")),
            (Some(d), Ok(v)) if &v != d => {
                problems.push(format!("`{field}`: the table says {v}, the code {d}"))
            }
            _ => {}
        }
    }
    for field in defaults.keys() {
        if !seen.contains_key(field) {
            problems.push(format!("`{field}` is missing from the table"));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/mechanism.md Appendix A disagrees with MechanismParams::default():\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_table_loads_as_a_mechanism_table_equal_to_the_defaults() {
    // Dotted keys are plain TOML, so the rows are a `[mechanism]` table as written.
    let text: String = table_rows(&doc())
        .iter()
        .map(|(f, v)| format!("{f} = {v}\n"))
        .collect();
    let params = MechanismParams::from_toml_str(&text).unwrap();
    assert_eq!(params, MechanismParams::default());
}

#[test]
fn every_field_is_mentioned_in_the_text_with_its_default() {
    let defaults = default_leaves();
    let doc = doc();
    let prose = &doc[..doc.find(BEGIN).unwrap()];
    let wrong = wrong_mentions(prose, &defaults);
    assert!(
        wrong.is_empty(),
        "docs/mechanism.md states a wrong default:\n{}",
        wrong.join("\n")
    );
    let mentioned: Vec<String> = mentions(prose).into_iter().map(|(f, _)| f).collect();
    let missing: Vec<&String> = defaults.keys().filter(|f| !mentioned.contains(f)).collect();
    assert!(
        missing.is_empty(),
        "fields without a `field` = `default` mention in §1–§9: {missing:?}"
    );
}

#[test]
fn the_scanner_finds_mentions_and_flags_wrong_defaults() {
    let defaults = default_leaves();
    let text = "x `audit_rate` = `0.3` y `ema_alpha` = `0.1` and `combination` = `\"blended\"`; \
                `not_a_field` = `7`; `slash`=`9`; `latency_mode` = `step`";
    assert_eq!(
        mentions(text),
        [
            ("audit_rate", "0.3"),
            ("ema_alpha", "0.1"),
            ("combination", "\"blended\""),
            ("not_a_field", "7"),
            ("latency_mode", "step"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let wrong = wrong_mentions(text, &defaults);
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(wrong[0].starts_with("`audit_rate`"));
    assert!(wrong[1].starts_with("`combination`"));
    // An unquoted string is not a TOML literal.
    assert!(wrong[2].starts_with("`latency_mode`"));
    // The walk reaches into the nested tables.
    assert!(defaults.contains_key("credits.metrics_update"));
    assert!(defaults.contains_key("orchestration_weights.fidelity"));
    assert_eq!(defaults["combination"], toml::Value::from("normalized"));
}
