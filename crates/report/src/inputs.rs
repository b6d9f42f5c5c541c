//! The simulator's small inputs: `points.json`, `checks.json`, `manifests.jsonl`, `events.csv`,
//! `scenario.toml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use polars::prelude::*;
use serde::Deserialize;

use crate::tables::SummaryRow;
use crate::{ReportError, files};

/// A parameter point of a sweep (`points.json`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PointInfo {
    /// Parameter-point index (the `point` column of the run table).
    pub point: u32,
    /// Swept parameters and their values at this point (empty without a sweep).
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

/// The result of one `[expect]` check (`checks.json`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Check {
    /// Parameter point the check ran on.
    #[serde(default)]
    pub point: u32,
    /// Name of the check.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Human-readable detail (measured value vs threshold).
    #[serde(default)]
    pub detail: String,
}

/// A scenario event (`events.csv`), deduplicated over seeds, for chart markers.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Parameter point.
    pub point: u32,
    /// Epoch (tempo index) of the event.
    pub epoch: i64,
    /// Kind, e.g. `schema_change`, `outage_start`.
    pub kind: String,
}

/// Everything besides the tables that the report shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inputs {
    pub question: String,
    pub scenario_toml: Option<String>,
    pub points: Vec<PointInfo>,
    pub checks: Vec<Check>,
    pub manifests: Vec<serde_json::Value>,
    pub events: Vec<EventRow>,
    /// `tune.json` of an `orchestra-sim tune` run directory.
    pub tune: Option<serde_json::Value>,
}

fn read_opt(path: &Path) -> Result<Option<String>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Io {
            path: path.into(),
            source,
        }),
    }
}

/// The leading `#` comment block of a scenario file, without the `#` markers.
pub(crate) fn question_of(toml: &str) -> String {
    let mut lines = Vec::new();
    for line in toml.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix('#') {
            lines.push(
                rest.strip_prefix(' ')
                    .unwrap_or(rest)
                    .trim_end()
                    .to_string(),
            );
        } else if t.is_empty() && lines.is_empty() {
            continue;
        } else {
            break;
        }
    }
    lines.join("\n").trim().to_string()
}

/// Parses canonical `key=value;key=value` parameters.
pub(crate) fn parse_params(params: &str) -> BTreeMap<String, serde_json::Value> {
    params
        .split(';')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let value = v
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(v.to_string()));
            (k.to_string(), value)
        })
        .collect()
}

impl Inputs {
    pub(crate) fn read(run_dir: &Path, rows: &[SummaryRow]) -> Result<Self, ReportError> {
        let mut inputs = Inputs::default();
        let path = run_dir.join(files::SCENARIO_TOML);
        if let Some(toml) = read_opt(&path)? {
            inputs.question = question_of(&toml);
            inputs.scenario_toml = Some(toml);
        }
        let path = run_dir.join(files::POINTS_JSON);
        inputs.points = match read_opt(&path)? {
            Some(s) => serde_json::from_str(&s).map_err(|e| ReportError::Malformed {
                path: path.clone(),
                message: e.to_string(),
            })?,
            None => {
                let mut seen = BTreeMap::new();
                for r in rows {
                    seen.entry(r.point)
                        .or_insert_with(|| parse_params(&r.params));
                }
                seen.into_iter()
                    .map(|(point, params)| PointInfo { point, params })
                    .collect()
            }
        };
        inputs.points.sort_by_key(|p| p.point);
        let path = run_dir.join(files::CHECKS_JSON);
        if let Some(s) = read_opt(&path)? {
            inputs.checks = serde_json::from_str(&s).map_err(|e| ReportError::Malformed {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
        let path = run_dir.join(files::MANIFESTS_JSONL);
        if let Some(s) = read_opt(&path)? {
            for (i, line) in s.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v = serde_json::from_str(line).map_err(|e| ReportError::Malformed {
                    path: path.clone(),
                    message: format!("line {}: {e}", i + 1),
                })?;
                inputs.manifests.push(v);
            }
        }
        inputs.events = read_events(&run_dir.join(files::EVENTS_CSV))?;
        let path = run_dir.join(files::TUNE_JSON);
        if let Some(s) = read_opt(&path)? {
            inputs.tune = Some(
                serde_json::from_str(&s).map_err(|e| ReportError::Malformed {
                    path: path.clone(),
                    message: e.to_string(),
                })?,
            );
        }
        Ok(inputs)
    }
}

fn read_events(path: &Path) -> Result<Vec<EventRow>, ReportError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let err = |source| ReportError::Table {
        path: path.into(),
        source,
    };
    let schema = Schema::from_iter([
        Field::new("scenario".into(), DataType::String),
        Field::new("point".into(), DataType::UInt32),
        Field::new("seed".into(), DataType::UInt64),
        Field::new("block".into(), DataType::UInt64),
        Field::new("epoch".into(), DataType::Int64),
        Field::new("kind".into(), DataType::String),
        Field::new("detail".into(), DataType::String),
    ]);
    let df = LazyCsvReader::new(PlRefPath::try_from_path(path).map_err(err)?)
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .finish()
        .map_err(err)?
        .select([col("point"), col("epoch"), col("kind").fill_null(lit(""))])
        .unique_stable(None, UniqueKeepStrategy::First)
        .sort(["point", "epoch", "kind"], SortMultipleOptions::default())
        .collect()
        .map_err(err)?;
    let point = df
        .column("point")
        .and_then(|c| c.u32().cloned())
        .map_err(err)?;
    let epoch = df
        .column("epoch")
        .and_then(|c| c.i64().cloned())
        .map_err(err)?;
    let kind = df
        .column("kind")
        .and_then(|c| c.str().cloned())
        .map_err(err)?;
    Ok(point
        .iter()
        .zip(epoch.iter())
        .zip(kind.iter())
        .filter_map(|((p, e), k)| {
            Some(EventRow {
                point: p?,
                epoch: e?,
                kind: k.unwrap_or("").to_string(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_and_params() {
        let q = question_of("# Does X hold?\n#\n# Second line.\n\n[scenario]\n# not this\n");
        assert_eq!(q, "Does X hold?\n\nSecond line.");
        let p = parse_params("a.b=0.3;c=x");
        assert_eq!(p["a.b"], serde_json::json!(0.3));
        assert_eq!(p["c"], serde_json::json!("x"));
        assert!(parse_params("").is_empty());
    }
}
