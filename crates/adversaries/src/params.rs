//! Parameter plumbing shared by every strategy: [`ParamError`], the [`Knob`] descriptions the
//! tuner searches over, and the parser that turns a scenario's `params = { … }` table into a
//! strategy's `Params` while naming the offending key.

use serde::de::DeserializeOwned;
use std::fmt::Write as _;

/// A bad entry in a strategy's `params` table. `key` is the key inside that table, so the
/// simulator can point at `miners[i].params.<key>` in the scenario file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("params.{key}: expected {expected}, found {found}")]
pub struct ParamError {
    /// The key inside `params` (`""` when the error is not about one key).
    pub key: String,
    /// What would have been accepted.
    pub expected: String,
    /// What was there.
    pub found: String,
}

impl ParamError {
    /// An error about `key`.
    pub fn new(key: &str, expected: impl Into<String>, found: impl Into<String>) -> Self {
        ParamError {
            key: key.to_string(),
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// How a knob's numeric value maps to a `params` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnobKind {
    /// A real number in `[min, max]`.
    Float,
    /// An integer in `[min, max]` (the tuner rounds).
    Int,
    /// `false` (0) or `true` (1).
    Bool,
    /// One of the listed names, by index `0..len`.
    Choice(&'static [&'static str]),
    /// A subset of the listed names, as a bit mask (bit `i` = name `i`), `1..2^len`.
    Subset(&'static [&'static str]),
}

/// One tunable parameter of a strategy: its key in `params`, its range and its default, all as
/// numbers so the tuner's inner search can treat every strategy alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knob {
    /// The key in `params`.
    pub name: &'static str,
    /// Smallest accepted value.
    pub min: f64,
    /// Largest accepted value.
    pub max: f64,
    /// The value a missing key takes.
    pub default: f64,
    /// How the number maps to a `params` value.
    pub kind: KnobKind,
    /// What it does, for reports.
    pub doc: &'static str,
}

impl Knob {
    /// The `params` value for numeric point `x` (clamped to `[min, max]`; integers, choices and
    /// masks rounded), so a tuner can write a scenario table from a parameter vector.
    pub fn to_toml(&self, x: f64) -> toml::Value {
        let x = if x.is_nan() {
            self.default
        } else {
            x.clamp(self.min, self.max)
        };
        match self.kind {
            KnobKind::Float => toml::Value::Float(x),
            KnobKind::Int => toml::Value::Integer(x.round() as i64),
            KnobKind::Bool => toml::Value::Boolean(x >= 0.5),
            KnobKind::Choice(names) => {
                let i = (x.round() as usize).min(names.len().saturating_sub(1));
                toml::Value::String(names.get(i).copied().unwrap_or_default().to_string())
            }
            KnobKind::Subset(names) => {
                let mask = x.round() as u64;
                toml::Value::Array(
                    names
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, n)| toml::Value::String((*n).to_string()))
                        .collect(),
                )
            }
        }
    }

    /// What the knob accepts, in words (for [`ParamError::expected`]).
    pub fn expected(&self) -> String {
        match self.kind {
            KnobKind::Float => format!("a number in [{}, {}]", self.min, self.max),
            KnobKind::Int => format!("an integer in [{}, {}]", self.min, self.max),
            KnobKind::Bool => "true or false".to_string(),
            KnobKind::Choice(names) => format!("one of {}", quoted(names)),
            KnobKind::Subset(names) => format!("a non-empty list drawn from {}", quoted(names)),
        }
    }
}

fn quoted(names: &[&str]) -> String {
    let mut s = String::new();
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "\"{n}\"");
    }
    s
}

/// A strategy's parameters: parsed by [`parse`], then checked against their ranges.
pub trait Params: DeserializeOwned + Default {
    /// The knobs, in `params` key order (what [`crate::knobs`] returns).
    const KNOBS: &'static [Knob];

    /// Keys accepted besides the knobs, with what they take (scenario data such as lists of
    /// names, which a tuner does not search over).
    const EXTRA_KEYS: &'static [(&'static str, &'static str)] = &[];

    /// Check ranges; the error names the offending key.
    fn validate(&self) -> Result<(), ParamError>;
}

/// Parse `table` into `P`: unknown keys, ill-typed values and out-of-range values are all
/// reported with the key they sit under. Keys are checked one at a time (each alone over the
/// defaults) before the whole table, because serde's own error for a table does not reliably
/// say which key it choked on.
pub fn parse<P: Params>(table: &toml::Table) -> Result<P, ParamError> {
    for (key, value) in table {
        let expected = match (
            P::KNOBS.iter().find(|k| k.name == key),
            P::EXTRA_KEYS.iter().find(|(k, _)| k == key),
        ) {
            (Some(knob), _) => knob.expected(),
            (None, Some((_, what))) => (*what).to_string(),
            (None, None) => {
                let names: Vec<&str> = P::KNOBS
                    .iter()
                    .map(|k| k.name)
                    .chain(P::EXTRA_KEYS.iter().map(|(k, _)| *k))
                    .collect();
                let expected = if names.is_empty() {
                    "no parameters (this strategy has no knobs)".to_string()
                } else {
                    format!("a key among {}", quoted(&names))
                };
                return Err(ParamError::new(key, expected, "an unknown key"));
            }
        };
        let mut one = toml::Table::new();
        one.insert(key.clone(), value.clone());
        let parsed: P = toml::Value::Table(one)
            .try_into()
            .map_err(|_| ParamError::new(key, expected.clone(), value.to_string()))?;
        parsed
            .validate()
            .map_err(|e| ParamError::new(key, e.expected, value.to_string()))?;
    }
    let all: P = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| ParamError::new("", "a valid params table", e.message()))?;
    all.validate()?;
    Ok(all)
}

/// `Err` naming `key` unless `lo ≤ v ≤ hi` (NaN is out of range).
pub fn check_range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), ParamError> {
    if v >= lo && v <= hi {
        Ok(())
    } else {
        Err(ParamError::new(
            key,
            format!("a value in [{lo}, {hi}]"),
            v.to_string(),
        ))
    }
}

/// `Err` naming `key` when `items` is empty.
pub fn check_non_empty<T>(key: &str, items: &[T]) -> Result<(), ParamError> {
    if items.is_empty() {
        Err(ParamError::new(key, "a non-empty list", "[]"))
    } else {
        Ok(())
    }
}
