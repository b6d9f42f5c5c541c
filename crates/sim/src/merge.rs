//! `orchestra-sim merge <DIR>... --out DIR`: combine the shard directories of one scenario
//! (written with `--shard I/N`, see [`crate::shard`]) into the run directory the unsharded run
//! writes, byte for byte: `runs.csv`, `events.csv` and `manifests.jsonl` are interleaved back into
//! job order, and the `[expect]` checks are evaluated over every seed into `checks.json`.
//!
//! Nothing is re-simulated. The merge refuses shards of different scenarios (file hash), of a
//! different split, duplicates, missing shards, and shards whose tables do not hold exactly the
//! jobs they own.

use crate::runner::{RunResult, RunnerError, write_checks};
use crate::scenario::Scenario;
use crate::shard::{SHARD_JSON, Shard, ShardInfo};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Lines, Write};
use std::path::{Path, PathBuf};

/// Why shards could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The inputs do not form one complete, consistent set of shards.
    #[error("{0}")]
    Inconsistent(String),
    /// A shard's file does not hold what its `shard.json` says.
    #[error("{path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Writing the merged checks failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MergeError + '_ {
    move |error| MergeError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// What a merge produced.
#[derive(Debug)]
pub struct Merged {
    /// The scenario the shards ran.
    pub scenario: String,
    /// Runs merged.
    pub runs: usize,
    /// The `[expect]` results over every run.
    pub checks: Vec<crate::runner::Check>,
}

/// Split one CSV line into fields (RFC 4180 quoting, as the runner writes it).
pub(crate) fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// A table of one shard, read a job's block at a time.
struct Table {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    peeked: Option<String>,
    line_no: usize,
}

impl Table {
    fn open(path: PathBuf) -> Result<(Table, String), MergeError> {
        let file = File::open(&path).map_err(io(&path))?;
        let mut lines = BufReader::new(file).lines();
        let header = lines
            .next()
            .transpose()
            .map_err(io(&path))?
            .ok_or_else(|| MergeError::Malformed {
                path: path.clone(),
                message: "empty file (no header)".into(),
            })?;
        Ok((
            Table {
                path,
                lines,
                peeked: None,
                line_no: 1,
            },
            header,
        ))
    }

    fn peek(&mut self) -> Result<Option<&String>, MergeError> {
        if self.peeked.is_none() {
            self.peeked = self.lines.next().transpose().map_err(io(&self.path))?;
            if self.peeked.is_some() {
                self.line_no += 1;
            }
        }
        Ok(self.peeked.as_ref())
    }

    /// Every following line whose (point, seed) — fields `point_at` and `seed_at` — is `key`.
    fn take_job(
        &mut self,
        key: (u32, u64),
        point_at: usize,
        seed_at: usize,
    ) -> Result<Vec<(String, Vec<String>)>, MergeError> {
        let mut out = Vec::new();
        while let Some(line) = self.peek()? {
            let fields = split_csv(line);
            let parsed = (
                fields.get(point_at).and_then(|f| f.parse::<u32>().ok()),
                fields.get(seed_at).and_then(|f| f.parse::<u64>().ok()),
            );
            let (Some(p), Some(s)) = parsed else {
                return Err(MergeError::Malformed {
                    path: self.path.clone(),
                    message: format!("line {}: no point and seed", self.line_no),
                });
            };
            if (p, s) != key {
                break;
            }
            if let Some(line) = self.peeked.take() {
                out.push((line, fields));
            }
        }
        Ok(out)
    }

    fn expect_end(&mut self) -> Result<(), MergeError> {
        let line_no = self.line_no;
        match self.peek()? {
            None => Ok(()),
            Some(_) => Err(MergeError::Malformed {
                path: self.path.clone(),
                message: format!("line {line_no}: a row of a job this shard does not own"),
            }),
        }
    }
}

fn read(path: &Path) -> Result<String, MergeError> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// Merge the shard directories `dirs` (any order) into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Inconsistent(
            "no shard directories given".into(),
        ));
    }
    // Read and check the shard records.
    let mut by_index: BTreeMap<u32, (PathBuf, ShardInfo)> = BTreeMap::new();
    for dir in dirs {
        let path = dir.join(SHARD_JSON);
        let info: ShardInfo =
            serde_json::from_str(&read(&path)?).map_err(|e| MergeError::Malformed {
                path: path.clone(),
                message: format!("not a shard record ({e}); was this directory run with --shard?"),
            })?;
        if let Some((other, _)) = by_index.get(&info.shard.index) {
            return Err(MergeError::Inconsistent(format!(
                "{} and {} are both shard {}",
                other.display(),
                dir.display(),
                info.shard
            )));
        }
        by_index.insert(info.shard.index, (dir.clone(), info));
    }
    let Some((first_dir, first)) = by_index.values().next().cloned() else {
        return Err(MergeError::Inconsistent(
            "no shard directories given".into(),
        ));
    };
    let count = first.shard.count;
    for (dir, info) in by_index.values() {
        let same = info.shard.count == count
            && info.scenario_file_hash == first.scenario_file_hash
            && info.jobs == first.jobs
            && info.seeds == first.seeds
            && info.days.to_bits() == first.days.to_bits();
        if !same {
            return Err(MergeError::Inconsistent(format!(
                "{} is shard {} of another run than {} (shard {}): scenario file, split, seeds \
                 or days differ",
                dir.display(),
                info.shard,
                first_dir.display(),
                first.shard
            )));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Inconsistent(format!(
            "missing shard(s) {} of {}",
            missing.join(", "),
            first.scenario
        )));
    }
    let shards: Vec<&PathBuf> = by_index.values().map(|(d, _)| d).collect();

    // The scenario and the files every shard holds identically.
    let text = read(&first_dir.join("scenario.toml"))?;
    let points = read(&first_dir.join("points.json"))?;
    for dir in &shards {
        if read(&dir.join("scenario.toml"))? != text || read(&dir.join("points.json"))? != points {
            return Err(MergeError::Inconsistent(format!(
                "{}: scenario.toml or points.json differs from {}",
                dir.display(),
                first_dir.display()
            )));
        }
    }
    let mut scenario = Scenario::from_str(&first_dir.join("scenario.toml"), text.clone())
        .map_err(|e| MergeError::Inconsistent(e.to_string()))?;
    scenario.override_runs(Some(first.seeds), Some(first.days));
    let index_of: BTreeMap<u32, usize> = scenario
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| (p.index, i))
        .collect();

    std::fs::create_dir_all(out).map_err(io(out))?;
    for (name, body) in [("scenario.toml", &text), ("points.json", &points)] {
        let path = out.join(name);
        std::fs::write(&path, body).map_err(io(&path))?;
    }

    let mut runs_in = Vec::new();
    let mut events_in = Vec::new();
    let mut manifests_in = Vec::new();
    let mut headers: Option<(String, String)> = None;
    for dir in &shards {
        let (runs, runs_header) = Table::open(dir.join("runs.csv"))?;
        let (events, events_header) = Table::open(dir.join("events.csv"))?;
        let manifests = BufReader::new(
            File::open(dir.join("manifests.jsonl")).map_err(io(&dir.join("manifests.jsonl")))?,
        )
        .lines();
        match &headers {
            None => headers = Some((runs_header, events_header)),
            Some((r, e)) if *r == runs_header && *e == events_header => {}
            Some(_) => {
                return Err(MergeError::Inconsistent(format!(
                    "{}: table headers differ from the other shards'",
                    dir.display()
                )));
            }
        }
        runs_in.push(runs);
        events_in.push(events);
        manifests_in.push((dir.join("manifests.jsonl"), manifests));
    }
    let (runs_header, events_header) = headers.unwrap_or_default();

    let runs_path = out.join("runs.csv");
    let events_path = out.join("events.csv");
    let manifests_path = out.join("manifests.jsonl");
    let mut runs_out = BufWriter::new(File::create(&runs_path).map_err(io(&runs_path))?);
    let mut events_out = BufWriter::new(File::create(&events_path).map_err(io(&events_path))?);
    let mut manifests_out =
        BufWriter::new(File::create(&manifests_path).map_err(io(&manifests_path))?);
    writeln!(runs_out, "{runs_header}").map_err(io(&runs_path))?;
    writeln!(events_out, "{events_header}").map_err(io(&events_path))?;

    let mut collected: BTreeMap<u32, Vec<RunResult>> = BTreeMap::new();
    for (k, &(point, seed)) in first.jobs.iter().enumerate() {
        let s = (Shard::owner(k, count) - 1) as usize;
        let mut result = RunResult::default();
        // runs.csv: scenario,point,params,seed,epoch,entity,strategy,metric,value
        for (line, f) in runs_in[s].take_job((point, seed), 1, 3)? {
            let epoch = f.get(4).and_then(|x| x.parse::<i64>().ok());
            let value = f.get(8).map(|x| x.parse::<f64>().unwrap_or(f64::NAN));
            let (Some(epoch), Some(value)) = (epoch, value) else {
                return Err(MergeError::Malformed {
                    path: runs_in[s].path.clone(),
                    message: format!("a row of (point {point}, seed {seed}) without epoch/value"),
                });
            };
            result.add_row(epoch, &f[5], &f[7], value);
            writeln!(runs_out, "{line}").map_err(io(&runs_path))?;
        }
        // events.csv: scenario,point,seed,block,epoch,kind,detail
        for (line, f) in events_in[s].take_job((point, seed), 1, 2)? {
            if f.get(5).map(String::as_str) == Some("attack_stop") {
                result.attack_stop_epoch = f.get(4).and_then(|x| x.parse().ok());
            }
            writeln!(events_out, "{line}").map_err(io(&events_path))?;
        }
        let (path, lines) = &mut manifests_in[s];
        let line =
            lines
                .next()
                .transpose()
                .map_err(io(path))?
                .ok_or_else(|| MergeError::Malformed {
                    path: path.clone(),
                    message: format!("no manifest for (point {point}, seed {seed})"),
                })?;
        let m: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| MergeError::Malformed {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if m["point"].as_u64() != Some(u64::from(point)) || m["seed"].as_u64() != Some(seed) {
            return Err(MergeError::Malformed {
                path: path.clone(),
                message: format!("manifest out of order: expected (point {point}, seed {seed})"),
            });
        }
        writeln!(manifests_out, "{line}").map_err(io(&manifests_path))?;
        if index_of.contains_key(&point) {
            collected.entry(point).or_default().push(result);
        }
    }
    for t in runs_in.iter_mut().chain(events_in.iter_mut()) {
        t.expect_end()?;
    }
    for (path, lines) in &mut manifests_in {
        if lines.next().is_some() {
            return Err(MergeError::Malformed {
                path: path.clone(),
                message: "more manifests than jobs".into(),
            });
        }
    }
    for (w, path) in [
        (&mut runs_out, &runs_path),
        (&mut events_out, &events_path),
        (&mut manifests_out, &manifests_path),
    ] {
        w.flush().map_err(io(path))?;
    }
    let checks = write_checks(&scenario, &collected, out)?;
    Ok(Merged {
        scenario: first.scenario,
        runs: first.jobs.len(),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_unquote() {
        assert_eq!(
            split_csv("a,\"b,c\",\"d\"\"e\",,"),
            vec!["a", "b,c", "d\"e", "", ""]
        );
    }
}
