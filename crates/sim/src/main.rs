//! `orchestra-sim`: run scenario files, or compute one Yuma epoch.

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "report")]
use orchestra_report::ReportOptions;
use orchestra_sim::engine::Inputs;
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
    match &args.out {
        Some(o) if several => o.join(name),
        Some(o) => o.clone(),
        None => PathBuf::from("reports").join(name).join(utc_stamp()),
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
        match orchestra_sim::runner::run_scenario(scenario, inputs, &dir, &opts) {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
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
