//! A resumable, shardable tune: `orchestra-sim tune --state DIR [--shard I/N]`.
//!
//! Every simulation of a tune is a *job* — (candidate, probe, seed), [`JobId`] — whose result
//! depends on nothing but the scenario file, `--days` and the code. The state directory holds
//! one file per finished job under `results/` (the KPIs the search reads, as f64 bits, and the
//! run's `runs.csv`/`events.csv` lines and event-log hash, so the final tables can be written
//! from it), plus `state.json` naming the tune the results belong to ([`Header`]).
//!
//! [`run`] drives the search in *passes*. A pass replays the whole search (CMA-ES, racing) from
//! the stored results; the search is deterministic, so the same candidates come up every time.
//! It stops at the first evaluations whose results are missing: the *batch* — every job of one
//! stage (the design probes, or one refinement probe, of every candidate of the generation; or
//! one racing round) in canonical order. Job `k` of batch number `b` (fixed by its phase and
//! stage) belongs to shard `(k + b) mod N + 1` — round-robin, as `--shard` deals a sweep's
//! jobs, from a start that rotates so small batches do not always land on the first shards —
//! which depends only on the batch, never on
//! which results happen to be stored already, so shards that see the directory at different
//! moments still agree. A shard simulates its missing jobs of the batch (in parallel, `-j`),
//! stores each as soon as it finishes, waits until the other shards' files appear, and starts
//! the next pass. When a pass completes, the search is over; shard 1 (or an unsharded run)
//! replays it once more, writing the output directory from the stored runs — byte-identical to
//! an unsharded tune's, whatever `N` and `-j`.
//!
//! Files are written to a temporary name and renamed, so a reader never sees half a result; a
//! process killed mid-run leaves at most dot-prefixed temporaries, which are ignored. A result
//! that does not parse, or belongs to a different job, is an error naming the file (delete it
//! to have it simulated again) — never silently recomputed, since it means something else
//! wrote into the directory.

use super::sim::{Job, ScenarioEvaluator};
use super::{Outcome, Settings, TuneError, optimise};
use crate::engine::RunOutput;
use crate::runner::{EventTail, RowTail};
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The state directory's record of which tune its results belong to.
pub const STATE_JSON: &str = "state.json";
/// The state directory's sub-directory of results, one file per job.
pub const RESULTS: &str = "results";
/// Version of the result file format.
const FORMAT: u32 = 1;

/// What a stored result must match to be used: everything a job's result depends on besides
/// the job itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Result file format.
    pub format: u32,
    /// Scenario name (for people; the hash decides).
    pub scenario: String,
    /// BLAKE3 of the scenario file.
    pub scenario_file_hash: String,
    /// Simulated days (after `--days`), in Rust's shortest round-trip notation.
    pub days: String,
    /// Search budget (after `--budget`).
    pub budget: u32,
    /// The crate version of the binary.
    pub crate_version: String,
    /// The git commit of the binary.
    pub git_commit: String,
}

impl Header {
    /// The header of a tune of `scenario` run with `days` and `budget`, by this binary.
    pub fn new(scenario: &crate::scenario::Scenario, days: f64, budget: u32) -> Header {
        Header {
            format: FORMAT,
            scenario: scenario.name().to_string(),
            scenario_file_hash: scenario.file_hash.clone(),
            days: format!("{days}"),
            budget,
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("ORCHESTRA_GIT_COMMIT").to_string(),
        }
    }

    /// What differs from `this` (the running tune), in words; empty when they match.
    pub fn differences(&self, this: &Header) -> Vec<String> {
        let mut d = Vec::new();
        let mut cmp = |what: &str, stored: String, now: String| {
            if stored != now {
                d.push(format!("{what}: stored {stored}, this run {now}"));
            }
        };
        cmp("format", self.format.to_string(), this.format.to_string());
        cmp(
            "scenario file hash",
            self.scenario_file_hash.clone(),
            this.scenario_file_hash.clone(),
        );
        cmp("--days", self.days.clone(), this.days.clone());
        cmp("--budget", self.budget.to_string(), this.budget.to_string());
        cmp(
            "crate version",
            self.crate_version.clone(),
            this.crate_version.clone(),
        );
        cmp(
            "git commit",
            self.git_commit.clone(),
            this.git_commit.clone(),
        );
        d
    }
}

/// One simulation of a tune: candidate (canonical key), probe index, seed. Probe indices are
/// the evaluator's (0 as written, then the design, then the refinements), which the search
/// reproduces exactly from the stored results.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobId {
    /// The candidate's canonical parameters ([`super::params_key`]).
    pub candidate: String,
    /// Probe index.
    pub probe: usize,
    /// Simulation seed.
    pub seed: u64,
}

impl JobId {
    /// The job's file name under `results/`: readable probe and seed, and a hash of the whole
    /// identity (candidate keys are long and full of characters file systems dislike).
    pub fn file_name(&self) -> String {
        let h =
            blake3::hash(format!("{}\n{}\n{}", self.candidate, self.probe, self.seed).as_bytes());
        format!(
            "p{}-s{}-{}.json",
            self.probe,
            self.seed,
            &h.to_hex().as_str()[..24]
        )
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "candidate {}, probe {}, seed {}",
            self.candidate, self.probe, self.seed
        )
    }
}

/// What one run contributes to a candidate's KPIs: the whole-run network KPIs (plus
/// `split_error`) and each group's ROI per identity.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RunKpis {
    /// `entity = all` whole-run metrics.
    pub(crate) all: BTreeMap<String, f64>,
    /// Group label → ROI per identity.
    pub(crate) roi: BTreeMap<String, f64>,
}

/// A stored result file. Floats the search reads are kept as their bits: JSON numbers do not
/// promise a bit-exact round trip, and one flipped last bit would change the search.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRun {
    header: Header,
    job: JobId,
    /// The run table's `params` column of the job, checked on load.
    params: String,
    /// [`RunKpis::all`] as f64 bits.
    all: BTreeMap<String, u64>,
    /// [`RunKpis::roi`] as f64 bits.
    roi: BTreeMap<String, u64>,
    event_log_hash: String,
    /// `runs.csv` lines after their `scenario,point,params,seed,` prefix ([`RowTail`]).
    rows: Vec<String>,
    /// `events.csv` lines after their `scenario,point,seed,` prefix ([`EventTail`]).
    events: Vec<String>,
}

/// A stored run as the output needs it.
#[derive(Debug)]
pub(crate) struct StoredLines {
    /// See [`RowTail`].
    pub(crate) rows: Vec<String>,
    /// See [`EventTail`].
    pub(crate) events: Vec<String>,
    /// BLAKE3 of the run's event log.
    pub(crate) event_log_hash: String,
}

/// A tune's state directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    results: PathBuf,
    header: Header,
    /// KPIs of the results read or written so far (each file is parsed once per process).
    cache: Mutex<HashMap<JobId, RunKpis>>,
    simulated: AtomicUsize,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> TuneError + '_ {
    move |error| TuneError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Write `bytes` to `path` atomically: a unique temporary in the same directory, flushed to
/// disk, then renamed over `path`. Readers (other shards, on other machines) see the whole file
/// or none; the temporary's name is unique across processes and hosts, so two processes that
/// happen to store the same job never write into one file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TuneError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let nonce = blake3::hash(
        format!(
            "{host}/{}/{nanos}/{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
        .as_bytes(),
    );
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", &nonce.to_hex().as_str()[..16]));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

impl Store {
    /// Open (creating if needed) the state directory `dir` for the tune `header` describes.
    /// Refuses a directory holding another tune's results, naming what differs.
    pub fn open(dir: &Path, header: Header) -> Result<Store, TuneError> {
        let results = dir.join(RESULTS);
        std::fs::create_dir_all(&results).map_err(io_err(&results))?;
        let state = dir.join(STATE_JSON);
        if !state.exists() {
            let text = serde_json::to_string_pretty(&header)
                .map_err(|e| TuneError::Search(format!("state.json: {e}")))?;
            // Shards starting together all write the same bytes; whichever rename lands last
            // wins, harmlessly. A shard started with other settings is caught just below.
            write_atomic(&state, (text + "\n").as_bytes())?;
        }
        let text = std::fs::read_to_string(&state).map_err(io_err(&state))?;
        let stored: Header = serde_json::from_str(&text).map_err(|e| TuneError::Store {
            path: state.clone(),
            message: format!("not a tune state file ({e})"),
        })?;
        let diff = stored.differences(&header);
        if !diff.is_empty() {
            return Err(TuneError::Store {
                path: state,
                message: format!(
                    "the directory holds results of a different tune — {}; use another --state \
                     directory, or rerun with the stored settings at the stored commit",
                    diff.join("; ")
                ),
            });
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            results,
            header,
            cache: Mutex::new(HashMap::new()),
            simulated: AtomicUsize::new(0),
        })
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `job`.
    pub fn path(&self, job: &JobId) -> PathBuf {
        self.results.join(job.file_name())
    }

    /// Whether `job`'s result is stored (a cheap check: the file exists; it is read and checked
    /// when the search uses it).
    pub fn contains(&self, job: &JobId) -> bool {
        self.cache.lock().is_ok_and(|c| c.contains_key(job)) || self.path(job).exists()
    }

    /// Results this process simulated and stored.
    pub fn simulated(&self) -> usize {
        self.simulated.load(Ordering::Relaxed)
    }

    /// Results this process has read or written.
    pub fn known(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.len())
    }

    fn read(&self, job: &JobId, params: &str) -> Result<Option<StoredRun>, TuneError> {
        let path = self.path(job);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let bad = |message: String| TuneError::Store {
            path: path.clone(),
            message,
        };
        let run: StoredRun = serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not a complete tune result ({e}); delete it and rerun to simulate it again"
            ))
        })?;
        let diff = run.header.differences(&self.header);
        if !diff.is_empty() {
            return Err(bad(format!(
                "a result of a different tune — {}",
                diff.join("; ")
            )));
        }
        if run.job != *job {
            return Err(bad(format!(
                "holds {} where {job} belongs; delete it and rerun",
                run.job
            )));
        }
        if run.params != params {
            return Err(bad(format!(
                "{job} was simulated with parameters {} but this tune asks for {params}; \
                 delete the state directory's results and rerun",
                run.params
            )));
        }
        Ok(Some(run))
    }

    /// The KPIs of `job` (whose run table `params` must be as stored), if stored.
    pub(crate) fn kpis(&self, job: &JobId, params: &str) -> Result<Option<RunKpis>, TuneError> {
        if let Some(k) = self.cache.lock().ok().and_then(|c| c.get(job).cloned()) {
            return Ok(Some(k));
        }
        let Some(run) = self.read(job, params)? else {
            return Ok(None);
        };
        let bits = |m: &BTreeMap<String, u64>| -> BTreeMap<String, f64> {
            m.iter()
                .map(|(k, b)| (k.clone(), f64::from_bits(*b)))
                .collect()
        };
        let k = RunKpis {
            all: bits(&run.all),
            roi: bits(&run.roi),
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(job.clone(), k.clone());
        }
        Ok(Some(k))
    }

    /// The stored run of `job`, for the output tables.
    pub(crate) fn lines(&self, job: &JobId, params: &str) -> Result<StoredLines, TuneError> {
        let run = self.read(job, params)?.ok_or_else(|| TuneError::Store {
            path: self.path(job),
            message: format!("{job}: the result disappeared while the output was written"),
        })?;
        Ok(StoredLines {
            rows: run.rows,
            events: run.events,
            event_log_hash: run.event_log_hash,
        })
    }

    /// Store the result of `job`.
    pub(crate) fn save(
        &self,
        job: &JobId,
        params: &str,
        kpis: &RunKpis,
        out: &RunOutput,
    ) -> Result<(), TuneError> {
        let bits = |m: &BTreeMap<String, f64>| -> BTreeMap<String, u64> {
            m.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
        };
        let run = StoredRun {
            header: self.header.clone(),
            job: job.clone(),
            params: params.to_string(),
            all: bits(&kpis.all),
            roi: bits(&kpis.roi),
            event_log_hash: out.event_log_hash.clone(),
            rows: out.rows.iter().map(|r| RowTail(r).to_string()).collect(),
            events: out
                .events
                .iter()
                .map(|(b, e, k, d)| EventTail(*b, *e, k, d).to_string())
                .collect(),
        };
        let bytes = serde_json::to_vec(&run)
            .map_err(|e| TuneError::Search(format!("storing {job}: {e}")))?;
        write_atomic(&self.path(job), &bytes)?;
        self.simulated.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.cache.lock() {
            c.insert(job.clone(), kpis.clone());
        }
        Ok(())
    }
}

/// How a resumable or sharded tune runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// This process's shard (`1/1`: unsharded, resumable).
    pub shard: Shard,
    /// Give up when no other shard has stored a result of the batch for this long (zero: do
    /// not wait at all — store this shard's part of the batch and stop).
    pub wait_timeout: Duration,
}

/// What a resumable or sharded tune ended with.
#[derive(Debug)]
pub struct Finished {
    /// The search's result.
    pub outcome: Outcome,
    /// The recommended snippet, when this process wrote the output directory.
    pub snippet: Option<String>,
    /// Results this process simulated.
    pub simulated: usize,
    /// Results this process took from the state directory.
    pub reused: usize,
}

/// One batch of a pass: its jobs in canonical order with their owners, and what is missing.
struct Split {
    label: String,
    total: usize,
    stored: usize,
    mine: Vec<Job>,
    /// Missing jobs of other shards, with their owners.
    others: Vec<(JobId, u32)>,
}

fn owners(jobs: &[(JobId, u32)]) -> String {
    let set: BTreeSet<u32> = jobs.iter().map(|(_, o)| *o).collect();
    set.iter()
        .map(|o| o.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Run the tune `eval` describes from its state directory (see the module docs): replay,
/// simulate this shard's part of each batch, wait for the others', until the search completes;
/// then, when `out` is given, write the output directory there (`out` = (directory, the
/// command line to name in `recommended.toml`)).
pub fn run(
    eval: &ScenarioEvaluator<'_>,
    settings: &Settings,
    opts: &Options,
    out: Option<(&Path, &str)>,
    mut progress: impl FnMut(&str),
) -> Result<Finished, TuneError> {
    let store = eval
        .store()
        .ok_or_else(|| TuneError::Search("a resumable tune needs a state directory".into()))?;
    let shard = opts.shard;
    let who = if shard.count > 1 {
        format!("shard {shard} · ")
    } else {
        String::new()
    };
    let dims = eval.dims().to_vec();
    let goals = eval.goals().clone();
    let baseline = eval.baseline();
    // Each pass repeats the search's progress lines up to where it stops; print each once.
    let mut printed = 0usize;
    let outcome = loop {
        eval.reset();
        let mut seen = 0usize;
        let result = optimise(&dims, &baseline, &goals, settings, eval, |m| {
            if seen >= printed {
                progress(&format!("{who}{m}"));
                printed += 1;
            }
            seen += 1;
        });
        match result {
            Ok(outcome) => break outcome,
            Err(TuneError::Pending) => {}
            Err(e) => return Err(e),
        }
        let split = split_batch(eval, shard)?;
        let pending = split.mine.len() + split.others.len();
        progress(&format!(
            "{who}{}: {} evaluation(s), {} stored, {pending} pending — {} to simulate here{}",
            split.label,
            split.total,
            split.stored,
            split.mine.len(),
            if split.others.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} from shard(s) {}",
                    split.others.len(),
                    owners(&split.others)
                )
            }
        ));
        if !split.mine.is_empty() {
            let started = Instant::now();
            eval.simulate_jobs(&split.mine)?;
            progress(&format!(
                "{who}{}: simulated and stored {} evaluation(s) in {:.1} s",
                split.label,
                split.mine.len(),
                started.elapsed().as_secs_f64()
            ));
        }
        wait(store, &split, opts, &who, &mut progress)?;
    };
    let snippet = match out {
        Some((dir, command)) => {
            // The search is complete: replay it once more, now writing every stored run into
            // the output tables in the order an unsharded tune writes them.
            eval.reset();
            eval.open_output(dir)?;
            let again = optimise(&dims, &baseline, &goals, settings, eval, |_| {})?;
            Some(eval.finish(&again, command)?)
        }
        None => None,
    };
    let simulated = store.simulated();
    Ok(Finished {
        outcome,
        snippet,
        simulated,
        reused: store.known().saturating_sub(simulated),
    })
}

/// The first incomplete batch of the pass that just stopped, dealt to the shards.
fn split_batch(eval: &ScenarioEvaluator<'_>, shard: Shard) -> Result<Split, TuneError> {
    let batch = eval.take_batch().ok_or_else(|| {
        TuneError::Search("the search stopped for results but named none (a bug)".into())
    })?;
    let total = batch.jobs.len();
    let mut stored = 0;
    let mut mine = Vec::new();
    let mut others = Vec::new();
    for (k, (job, done)) in batch.jobs.into_iter().enumerate() {
        if done {
            stored += 1;
            continue;
        }
        // Round-robin from a batch-specific start: small batches (a refinement probe on two
        // seeds) would otherwise always land on the first shards.
        let owner = Shard::owner(k + batch.ordinal, shard.count);
        if owner == shard.index {
            mine.push(job);
        } else {
            others.push((job.id, owner));
        }
    }
    Ok(Split {
        label: batch.label,
        total,
        stored,
        mine,
        others,
    })
}

/// Wait until every other shard's missing job of the batch is stored.
fn wait(
    store: &Store,
    split: &Split,
    opts: &Options,
    who: &str,
    progress: &mut impl FnMut(&str),
) -> Result<(), TuneError> {
    let mut left: Vec<(JobId, u32)> = split.others.clone();
    let mut last_new = Instant::now();
    let mut last_report = Instant::now();
    // Poll quickly at first (the other shards are usually about done), then back off so that
    // many idle shards do not hammer a shared file system.
    let mut interval = Duration::from_millis(20);
    let mut reported_waiting = false;
    loop {
        let before = left.len();
        left.retain(|(j, _)| !store.contains(j));
        if left.is_empty() {
            return Ok(());
        }
        if left.len() < before {
            last_new = Instant::now();
            interval = Duration::from_millis(20);
        }
        if !reported_waiting || last_report.elapsed() >= Duration::from_secs(30) {
            if !opts.wait_timeout.is_zero() {
                progress(&format!(
                    "{who}{}: waiting for {} of {} evaluation(s) from shard(s) {}",
                    split.label,
                    left.len(),
                    split.total,
                    owners(&left)
                ));
            }
            reported_waiting = true;
            last_report = Instant::now();
        }
        if last_new.elapsed() >= opts.wait_timeout {
            let message = if opts.wait_timeout.is_zero() {
                format!(
                    "{who}{}: stopped without waiting (--wait-timeout 0): {} evaluation(s) of \
                     shard(s) {} are not in {} yet; run again once they are stored",
                    split.label,
                    left.len(),
                    owners(&left),
                    store.results.display()
                )
            } else {
                format!(
                    "{who}{}: no new result in {} for {} s; {} evaluation(s) of shard(s) {} \
                     still pending — are those shards running? A restarted shard continues \
                     from the stored results; raise --wait-timeout for longer simulations",
                    split.label,
                    store.results.display(),
                    opts.wait_timeout.as_secs(),
                    left.len(),
                    owners(&left)
                )
            };
            return Err(TuneError::Timeout(message));
        }
        std::thread::sleep(interval.min(opts.wait_timeout.saturating_sub(last_new.elapsed())));
        interval = (interval * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT,
            scenario: "s".into(),
            scenario_file_hash: "abc".into(),
            days: "0.5".into(),
            budget: 12,
            crate_version: "0.1.0".into(),
            git_commit: "c0ffee".into(),
        }
    }

    #[test]
    fn header_differences_name_what_differs() {
        let a = header();
        assert!(a.differences(&a).is_empty());
        let b = Header {
            days: "1".into(),
            git_commit: "beef".into(),
            ..header()
        };
        assert_eq!(
            a.differences(&b),
            vec![
                "--days: stored 0.5, this run 1".to_string(),
                "git commit: stored c0ffee, this run beef".to_string()
            ]
        );
    }

    #[test]
    fn atomic_writes_leave_only_the_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("x.json");
        write_atomic(&path, b"one").unwrap_or_else(|e| panic!("{e}"));
        write_atomic(&path, b"two").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&path).ok(), Some(b"two".to_vec()));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names, vec![std::ffi::OsString::from("x.json")]);
    }

    #[test]
    fn job_file_names_are_stable_and_distinct() {
        let j = |c: &str, p, s| JobId {
            candidate: c.into(),
            probe: p,
            seed: s,
        };
        let a = j("mechanism.orchestration_share=0.6", 0, 3);
        assert_eq!(a.file_name(), a.clone().file_name());
        assert!(a.file_name().starts_with("p0-s3-"));
        assert_ne!(
            a.file_name(),
            j("mechanism.orchestration_share=0.61", 0, 3).file_name()
        );
        assert_ne!(
            a.file_name(),
            j("mechanism.orchestration_share=0.6", 1, 3).file_name()
        );
    }
}
