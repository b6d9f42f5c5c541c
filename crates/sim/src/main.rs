//! `orchestra-sim`: run scenario files, or compute one Yuma epoch.

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "report")]
use orchestra_report::ReportOptions;
use orchestra_sim::inputs::Inputs;
use orchestra_sim::runner::RunnerOptions;
use orchestra_sim::scenario::Scenario;

// A simulation allocates and frees millions of small JSON values; mimalloc makes that about a
// third cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Simulate an Orchestra subnet from scenario files: validators, miners with adversarial
/// strategies, mock subnets and a Yuma chain, deterministic for a given seed.
///
/// Each scenario runs every parameter point × seed (in parallel across runs) and writes a run
/// directory with the long-format run table, manifests and the `[expect]` results.
/// Exit codes: 0 all checks passed, 1 an `[expect]` check failed, 2 bad input.
#[derive(Parser)]
#[command(
    name = "orchestra-sim",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    after_help = "Each scenario runs every parameter point x seed and writes a run directory: runs.csv/.parquet, \
summary.csv/.parquet, timeseries.parquet, charts/, checks.json, manifests.jsonl and index.html.
\
Exit codes: 0 every [expect] check passed, 1 a check failed, 2 bad input (nothing ran).
\
Scenario format: scenarios/README.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Scenario files to run (e.g. `scenarios/baseline.toml`).
    scenarios: Vec<PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone, Default)]
struct RunArgs {
    /// Seeds per parameter point (overrides `[scenario] seeds`).
    #[arg(long)]
    seeds: Option<u32>,
    /// Simulated days (overrides `[scenario] days`).
    #[arg(long)]
    days: Option<f64>,
    /// Runs in parallel (default: one per core). Each run is single-threaded.
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Output directory (default `reports/<scenario>/<UTC timestamp>/`; with several scenarios,
    /// one sub-directory per scenario).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip charts (tables, checks and index.html are still written).
    #[arg(long)]
    no_charts: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Run only shard I of N of the job matrix (jobs whose index mod N is I−1) into a shard
    /// directory; `orchestra-sim merge` combines the shards (see docs/tuning.md).
    #[arg(long, value_name = "I/N")]
    shard: Option<orchestra_sim::shard::Shard>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate scenario files without running them.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Regenerate a run directory's charts and index.html from its stored tables (building the
    /// tables first if the run was written without them).
    #[cfg(feature = "report")]
    Report {
        /// A run directory written by `orchestra-sim`.
        run_dir: PathBuf,
        /// Skip charts.
        #[arg(long)]
        no_charts: bool,
    },
    /// Combine shard directories (written with `--shard I/N`) into one run directory,
    /// byte-identical to the unsharded run, and evaluate the `[expect]` checks.
    Merge {
        /// The shard directories, one per shard, in any order.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output run directory.
        #[arg(long)]
        out: PathBuf,
        /// Skip charts.
        #[arg(long)]
        no_charts: bool,
    },
    /// Tune the free parameters of a scenario's `[tune]` table: CMA-ES over the candidates,
    /// each scored at the worst case over its adversaries' best responses (see docs/tuning.md).
    Tune {
        /// A scenario with a `[tune]` table.
        scenario: PathBuf,
        /// Candidates evaluated by the search (overrides `[tune] budget`).
        #[arg(long)]
        budget: Option<u32>,
        /// Simulated days (overrides `[scenario] days`).
        #[arg(long)]
        days: Option<f64>,
        /// Runs in parallel (default: one per core).
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Output directory (default `reports/<scenario>-tune/<UTC timestamp>/`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Skip charts.
        #[arg(long)]
        no_charts: bool,
        /// No progress lines.
        #[arg(long)]
        quiet: bool,
        /// Keep every simulation's result in DIR (created if absent) and take results already
        /// there instead of simulating them again: an interrupted tune rerun with the same
        /// --state continues where it stopped. DIR must belong to this tune (same scenario
        /// file, --days, --budget and binary); anything else is refused.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// Run shard I of N of every batch of simulations, sharing --state DIR (a shared file
        /// system) with the other shards, which run at the same time: each shard simulates its
        /// part of a batch, waits for the others' results, and continues. Shard 1 writes the
        /// output directory, identical to the unsharded tune's (see docs/tuning.md).
        #[arg(long, value_name = "I/N", requires = "state")]
        shard: Option<orchestra_sim::shard::Shard>,
        /// With --state: give up (exit code 3) when no other shard has stored a result for
        /// this many seconds; 0 stores this shard's part of the current batch and stops at once.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        wait_timeout: u64,
    },
    /// Run one Yuma epoch: read its input JSON, print the output JSON.
    Epoch {
        /// Input file, or `-` for stdin.
        input: String,
    },
}

fn read_input(name: &str) -> Result<String, orchestra_sim::epoch_cmd::EpochCmdError> {
    let mut text = String::new();
    let res = if name == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(name).map(|t| text = t)
    };
    res.map_err(|error| orchestra_sim::epoch_cmd::EpochCmdError::Read {
        source_name: name.to_string(),
        error,
    })?;
    Ok(text)
}

fn epoch(name: &str) -> ExitCode {
    let result = read_input(name).and_then(|t| orchestra_sim::epoch_cmd::run_epoch_json(&t));
    match result {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(json.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Load and fully validate a scenario, including what only the engine checks (strategy
/// parameters, mock subnets); a located error on failure.
fn load(path: &std::path::Path, args: &RunArgs) -> Result<(Scenario, Inputs), miette::Report> {
    let mut scenario = Scenario::load(path).map_err(|e| miette::Report::new(*e))?;
    scenario.override_runs(args.seeds, args.days);
    let subnets = scenario.points[0].spec.subnets.clone();
    let inputs = orchestra_sim::inputs::load(path, subnets.dir.as_deref(), &subnets.overrides)
        .map_err(|e| {
            miette::Report::new(scenario.doc.error_at_key(
                "subnets.dir",
                "loadable mock subnets",
                &e.to_string(),
            ))
        })?;
    orchestra_sim::engine::validate(&scenario, &inputs).map_err(|e| miette::Report::new(*e))?;
    Ok((scenario, inputs))
}

fn out_dir(args: &RunArgs, name: &str, several: bool) -> PathBuf {
    let dir = match &args.out {
        Some(o) if several => o.join(name),
        Some(o) => o.clone(),
        None => PathBuf::from("reports").join(name).join(utc_stamp()),
    };
    match (&args.shard, &args.out) {
        (Some(s), None) => dir.join(format!("shard-{}-of-{}", s.index, s.count)),
        _ => dir,
    }
}

/// `YYYYmmdd-HHMMSS` in UTC, for run directory names only (never inside outputs).
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}{mo:02}{d:02}-{h:02}{m:02}{s:02}")
}

fn run_all(paths: &[PathBuf], args: &RunArgs) -> ExitCode {
    // Validate everything first: nothing runs if any file is bad.
    let mut loaded = Vec::new();
    for path in paths {
        match load(path, args) {
            Ok(x) => loaded.push(x),
            Err(report) => {
                eprintln!("{report:?}");
                return ExitCode::from(2);
            }
        }
    }
    let opts = RunnerOptions {
        jobs: args.jobs.unwrap_or(0),
        progress: !args.quiet,
    };
    #[cfg(feature = "report")]
    let report_opts = ReportOptions {
        charts: !args.no_charts,
        ..ReportOptions::default()
    };
    let mut failed = false;
    for (scenario, inputs) in &loaded {
        let dir = out_dir(args, scenario.name(), loaded.len() > 1);
        let started = std::time::Instant::now();
        let result =
            orchestra_sim::runner::run_scenario_shard(scenario, inputs, &dir, &opts, args.shard);
        if let (Some(shard), Ok(outcome)) = (args.shard, &result) {
            println!(
                "\n{}: shard {shard}: {} run(s) simulated in {:.1} s → {}\n\
                 (no report and no checks for a shard: `orchestra-sim merge <shard dirs> --out DIR`)",
                scenario.name(),
                outcome.runs,
                started.elapsed().as_secs_f64(),
                outcome.dir.display()
            );
            continue;
        }
        match result {
            Ok(outcome) => {
                let simulated = started.elapsed();
                println!(
                    "\n{}: {} run(s) simulated in {:.1} s → {}",
                    scenario.name(),
                    outcome.runs,
                    simulated.as_secs_f64(),
                    outcome.dir.display()
                );
                #[cfg(feature = "report")]
                match orchestra_report::finalize(&outcome.dir, &report_opts) {
                    Ok(summary) => {
                        println!(
                            "reported in {:.1} s → {}",
                            (started.elapsed() - simulated).as_secs_f64(),
                            outcome.dir.join("index.html").display()
                        );
                        print!("{}", orchestra_report::terminal_summary(&summary));
                    }
                    Err(e) => {
                        eprintln!("error: report for {}: {e}", outcome.dir.display());
                        return ExitCode::from(2);
                    }
                }
                #[cfg(not(feature = "report"))]
                for c in &outcome.checks {
                    println!(
                        "  [{}] {}: {}",
                        if c.passed { "pass" } else { "FAIL" },
                        c.name,
                        c.detail
                    );
                }
                failed |= outcome.checks.iter().any(|c| !c.passed);
            }
            Err(e) => {
                eprintln!("error: {}: {e}", scenario.name());
                return ExitCode::from(2);
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_all(paths: &[PathBuf]) -> ExitCode {
    let mut bad = false;
    for path in paths {
        match load(path, &RunArgs::default()) {
            Ok((s, _)) => {
                let runs: u64 = s
                    .points
                    .iter()
                    .map(|p| u64::from(p.spec.scenario.seeds))
                    .sum();
                println!(
                    "ok  {}: {} point(s), {runs} run(s)",
                    path.display(),
                    s.points.len()
                );
            }
            Err(report) => {
                eprintln!("{report:?}");
                bad = true;
            }
        }
    }
    if bad {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn merge(dirs: &[PathBuf], out: &std::path::Path, no_charts: bool) -> ExitCode {
    let started = std::time::Instant::now();
    let merged = match orchestra_sim::merge::merge(dirs, out) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: merge: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{}: {} run(s) from {} shard(s) merged in {:.1} s → {}",
        merged.scenario,
        merged.runs,
        dirs.len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    #[cfg(feature = "report")]
    {
        let opts = ReportOptions {
            charts: !no_charts,
            ..ReportOptions::default()
        };
        match orchestra_report::finalize(out, &opts) {
            Ok(summary) => print!("{}", orchestra_report::terminal_summary(&summary)),
            Err(e) => {
                eprintln!("error: report for {}: {e}", out.display());
                return ExitCode::from(2);
            }
        }
    }
    #[cfg(not(feature = "report"))]
    {
        let _ = no_charts;
        for c in &merged.checks {
            println!(
                "  [{}] {}: {}",
                if c.passed { "pass" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
    }
    if merged.checks.iter().any(|c| !c.passed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `orchestra-sim tune`.
struct TuneArgs {
    scenario: PathBuf,
    budget: Option<u32>,
    days: Option<f64>,
    jobs: Option<usize>,
    out: Option<PathBuf>,
    no_charts: bool,
    quiet: bool,
    state: Option<PathBuf>,
    shard: Option<orchestra_sim::shard::Shard>,
    wait_timeout: u64,
}

fn tune(a: &TuneArgs) -> ExitCode {
    use orchestra_sim::tune::{Settings, optimise, sim::ScenarioEvaluator};
    let run_args = RunArgs {
        days: a.days,
        ..RunArgs::default()
    };
    let (mut scenario, inputs) = match load(&a.scenario, &run_args) {
        Ok(x) => x,
        Err(report) => {
            eprintln!("{report:?}");
            return ExitCode::from(2);
        }
    };
    let Some(mut spec) = scenario.points[0].spec.tune.clone() else {
        eprintln!(
            "error: {}: no [tune] table (see scenarios/README.md, `[tune]`)",
            a.scenario.display()
        );
        return ExitCode::from(2);
    };
    if let Some(b) = a.budget {
        spec.budget = b.max(1);
        scenario.points[0].spec.tune = Some(spec.clone());
    }
    let dir = a.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports")
            .join(format!("{}-tune", scenario.name()))
            .join(utc_stamp())
    });
    let mut command = format!("orchestra-sim tune {}", a.scenario.display());
    if let Some(b) = a.budget {
        command.push_str(&format!(" --budget {b}"));
    }
    if let Some(d) = a.days {
        command.push_str(&format!(" --days {d}"));
    }
    let started = std::time::Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.unwrap_or(0))
        .build();
    let quiet = a.quiet;
    let say = |msg: &str| {
        if !quiet {
            eprintln!("[{:>6.1} s] {msg}", started.elapsed().as_secs_f64());
        }
    };
    let first_seed = scenario.points[0].spec.scenario.seed;
    // Only shard 1 (or an unsharded run) writes the output directory: the shards share --out
    // in a cluster job, and one complete copy is what is wanted.
    let writes_output = a.shard.is_none_or(|s| s.index == 1);
    let work = || -> Result<
        (orchestra_sim::tune::Outcome, Option<String>),
        orchestra_sim::tune::TuneError,
    > {
        let Some(state) = &a.state else {
            let eval = ScenarioEvaluator::new(&scenario, &inputs, &dir, a.days)?;
            let settings = Settings::from_spec(eval.tune(), eval.dims().len(), first_seed);
            let dims = eval.dims().to_vec();
            let goals = eval.goals().clone();
            let outcome = optimise(&dims, &eval.baseline(), &goals, &settings, &eval, say)?;
            let snippet = eval.finish(&outcome, &command)?;
            return Ok((outcome, Some(snippet)));
        };
        use orchestra_sim::tune::store;
        let days = a.days.unwrap_or(scenario.points[0].spec.scenario.days);
        let header = store::Header::new(&scenario, days, spec.budget);
        let st = store::Store::open(state, header)?;
        let eval = ScenarioEvaluator::with_store(&scenario, &inputs, a.days, &st)?;
        let settings = Settings::from_spec(eval.tune(), eval.dims().len(), first_seed);
        let opts = store::Options {
            shard: a.shard.unwrap_or(orchestra_sim::shard::Shard { index: 1, count: 1 }),
            wait_timeout: std::time::Duration::from_secs(a.wait_timeout),
        };
        let out = writes_output.then_some((dir.as_path(), command.as_str()));
        let done = store::run(&eval, &settings, &opts, out, say)?;
        say(&format!(
            "{}{} simulation(s) run here, {} taken from {}",
            a.shard.map_or_else(String::new, |s| format!("shard {s} · ")),
            done.simulated,
            done.reused,
            state.display()
        ));
        Ok((done.outcome, done.snippet))
    };
    let result = match &pool {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    };
    let (outcome, snippet) = match result {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: tune {}: {e}", scenario.name());
            // Exit 3: waiting for other shards ran out (nothing is wrong with the inputs;
            // rerunning continues from the stored results).
            let code = if matches!(e, orchestra_sim::tune::TuneError::Timeout(_)) {
                3
            } else {
                2
            };
            return ExitCode::from(code);
        }
    };
    let Some(snippet) = snippet else {
        println!(
            "\n{}: shard {}: search complete ({} candidate(s)); shard 1 writes the output directory",
            scenario.name(),
            a.shard.map_or_else(|| "?".to_string(), |s| s.to_string()),
            outcome.candidates.len()
        );
        return ExitCode::SUCCESS;
    };
    let simulated = started.elapsed();
    let best = outcome.best();
    println!(
        "\n{}: {} candidate(s) in {} generation(s), {} finalist(s) raced to {} seeds{} in {:.1} s → {}",
        scenario.name(),
        outcome.candidates.len(),
        outcome.generations,
        outcome.finalists.len(),
        outcome.final_seeds,
        if outcome.separated {
            " (leader separated)"
        } else {
            " (leader not separated at the seed cap)"
        },
        simulated.as_secs_f64(),
        dir.display()
    );
    println!(
        "recommended: candidate {} — score {:.4} [{:.4}, {:.4}] (n = {}){}",
        best.id,
        best.score.mean,
        best.score.lo,
        best.score.hi,
        best.score.n,
        if best.feasible { "" } else { " — INFEASIBLE" }
    );
    for (k, s) in &best.kpis {
        println!("  {k}: {:.4} [{:.4}, {:.4}]", s.mean, s.lo, s.hi);
    }
    print!("{snippet}");
    #[cfg(feature = "report")]
    {
        let opts = ReportOptions {
            charts: !a.no_charts,
            ..ReportOptions::default()
        };
        match orchestra_report::finalize(&dir, &opts) {
            Ok(_) => println!(
                "reported in {:.1} s → {}",
                (started.elapsed() - simulated).as_secs_f64(),
                dir.join("index.html").display()
            ),
            Err(e) => {
                eprintln!("error: report for {}: {e}", dir.display());
                return ExitCode::from(2);
            }
        }
    }
    #[cfg(not(feature = "report"))]
    let _ = a.no_charts;
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Merge {
            dirs,
            out,
            no_charts,
        }) => merge(&dirs, &out, no_charts),
        Some(Command::Tune {
            scenario,
            budget,
            days,
            jobs,
            out,
            no_charts,
            quiet,
            state,
            shard,
            wait_timeout,
        }) => tune(&TuneArgs {
            scenario,
            budget,
            days,
            jobs,
            out,
            no_charts,
            quiet,
            state,
            shard,
            wait_timeout,
        }),
        Some(Command::Epoch { input }) => epoch(&input),
        Some(Command::Check { scenarios }) => check_all(&scenarios),
        #[cfg(feature = "report")]
        Some(Command::Report { run_dir, no_charts }) => {
            let opts = ReportOptions {
                charts: !no_charts,
                ..ReportOptions::default()
            };
            // A run written without the report feature has only the CSV run table: build the
            // tables first; otherwise re-render from the stored tables.
            let result = if run_dir.join("summary.parquet").exists() {
                orchestra_report::render(&run_dir, &opts)
            } else {
                orchestra_report::finalize(&run_dir, &opts)
            };
            match result {
                Ok(summary) => {
                    print!("{}", orchestra_report::terminal_summary(&summary));
                    println!("→ {}", run_dir.join("index.html").display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        None if cli.scenarios.is_empty() => {
            eprintln!(
                "error: no scenario given; try `orchestra-sim scenarios/baseline.toml` (see --help)"
            );
            ExitCode::from(2)
        }
        None => run_all(&cli.scenarios, &cli.run),
    }
}
