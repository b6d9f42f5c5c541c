//! `--shard I/N`: a deterministic slice of a scenario's job matrix, so a large study spreads over
//! the machines of a batch scheduler (Kubernetes indexed Jobs, Slurm arrays) and
//! [`crate::merge`] puts the pieces back together.
//!
//! The job matrix is every (parameter point, seed) pair in output order ([`crate::runner::jobs`]);
//! shard `I` of `N` runs the jobs whose 0-based index `k` satisfies `k mod N = I − 1`. Dealing
//! jobs round-robin rather than in blocks keeps the shards' costs even when points differ in cost
//! (a sweep over miner counts, say). Each shard writes a normal run directory restricted to its
//! jobs, plus `shard.json` naming the shard, the scenario file hash and the whole matrix.

use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// File a shard directory carries besides the run tables.
pub const SHARD_JSON: &str = "shard.json";

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 1-based shard number, `1..=count`.
    pub index: u32,
    /// How many shards the matrix is split into.
    pub count: u32,
}

impl Shard {
    /// Whether job number `k` (0-based, in output order) belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k as u64 % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The jobs of `all` this shard runs, in order.
    pub fn select<T: Clone>(&self, all: &[T]) -> Vec<T> {
        all.iter()
            .enumerate()
            .filter(|(k, _)| self.owns(*k))
            .map(|(_, j)| j.clone())
            .collect()
    }

    /// The shard that owns job `k`.
    pub fn owner(k: usize, count: u32) -> u32 {
        (k as u64 % u64::from(count)) as u32 + 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parse `I/N` with `1 ≤ I ≤ N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected I/N with 1 ≤ I ≤ N (e.g. 2/8), found {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What `shard.json` records: enough for `merge` to check that its inputs belong together and
/// cover the matrix exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard.
    pub shard: Shard,
    /// Scenario name.
    pub scenario: String,
    /// BLAKE3 of the scenario file the shard ran.
    pub scenario_file_hash: String,
    /// Seeds per point actually run (after `--seeds`).
    pub seeds: u32,
    /// Simulated days actually run (after `--days`).
    pub days: f64,
    /// The whole job matrix as (point index, seed), in output order.
    pub jobs: Vec<(u32, u64)>,
}

impl ShardInfo {
    /// The record for `shard` of `scenario`, whose whole matrix is `all`.
    pub fn new(shard: Shard, scenario: &Scenario, all: &[(usize, u64)]) -> Self {
        let spec = &scenario.points[0].spec.scenario;
        ShardInfo {
            shard,
            scenario: scenario.name().to_string(),
            scenario_file_hash: scenario.file_hash.clone(),
            seeds: spec.seeds,
            days: spec.days,
            jobs: all
                .iter()
                .map(|(p, seed)| (scenario.points[*p].index, *seed))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_the_matrix() {
        let all: Vec<usize> = (0..10).collect();
        let mut seen: Vec<usize> = (1..=3)
            .flat_map(|i| Shard { index: i, count: 3 }.select(&all))
            .collect();
        assert_eq!(Shard { index: 1, count: 3 }.select(&all), vec![0, 3, 6, 9]);
        seen.sort_unstable();
        assert_eq!(seen, all);
        assert_eq!(Shard::owner(4, 3), 2);
    }
}
