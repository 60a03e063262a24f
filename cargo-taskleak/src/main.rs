//! `cargo taskleak`: runs a workspace's tests with taskleak's leak checks on
//! and full reports, then prints every leak of the whole run in one summary,
//! grouped by what leaked across tests; writes it as JSON and JUnit for CI;
//! and, with a baseline, fails only on new leaks. See
//! `docs/cargo-taskleak.md`.

mod adopt;
mod args;
mod baseline;
mod json;
mod junit;
mod outcomes;
mod records;
mod runner;
mod summary;
mod verdicts;

use std::collections::BTreeSet;
use std::process::ExitCode;

use outcomes::TestId;
use summary::Run;

/// No leaks, or only baselined ones.
const CLEAN: u8 = 0;
/// Leaks not in the baseline.
const NEW_LEAKS: u8 = 1;
/// The run itself failed: arguments, build, or tests failing for other reasons.
const RUN_FAILED: u8 = 2;

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("cargo-taskleak: {error}");
            ExitCode::from(RUN_FAILED)
        }
    }
}

fn run() -> Result<u8, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // `cargo taskleak adopt …` is a subcommand of its own.
    if let Some(rest) = adopt::subcommand(&argv) {
        return adopt::run(rest);
    }
    let args = args::parse(argv)?;
    if args.help {
        println!("{}", args::USAGE);
        return Ok(CLEAN);
    }
    // A bad baseline is found before the tests run, not after.
    let baseline = args.baseline.as_deref().map(baseline::read).transpose()?;
    let plan = runner::Plan::new(args.nextest, args.runner, args.test_binary, args.target_dir)?;
    eprintln!("taskleak: building the tests in {}", plan.target_dir.display());
    if let Err(error) = plan.build() {
        // No test ran: a CI system must not read the JUnit file of an
        // earlier run, or an empty one, as a pass.
        if let Some(path) = &args.junit {
            junit::write_build_failure(path, &error)?;
        }
        return Err(error);
    }
    let record_dir = plan.record_dir.clone();
    let count_leaks = || {
        records::read_dir(&record_dir)
            .map(|records| records.iter().filter(|record| record.is_leak()).count())
            .unwrap_or(0)
    };
    let ran = plan.run(args.timeout.unwrap_or(args::DEFAULT_TIMEOUT), count_leaks)?;
    let outcomes = ran.outcomes;
    let records = records::read_dir(&plan.record_dir)?;
    let leaks = summary::leaks(&records);
    let (new_keys, gone) = match &baseline {
        Some(known) => known.compare(&leaks),
        None => (leaks.iter().map(|leak| leak.key.clone()).collect(), Vec::new()),
    };
    let run = Run {
        tests_run: outcomes.tests.len(),
        tests_failed: outcomes.failed().count(),
        failures: verdicts::failures(&outcomes, &records, ran.stopped_after.as_deref()),
        coverage: verdicts::coverage(&outcomes.tests, &records),
        stopped_after: ran.stopped_after,
        doctests_not_run: args.nextest,
        leaks,
        new_keys,
        gone,
        baseline_used: baseline.is_some(),
    };
    let code = if run.unrelated_failures().next().is_some() {
        RUN_FAILED
    } else if !run.new_keys.is_empty() {
        NEW_LEAKS
    } else {
        CLEAN
    };
    print!("{}", summary::render(&run));
    eprintln!("taskleak: the tests' output is in {}", plan.log.display());
    if let Some(path) = &args.json {
        json::write(path, &run, i32::from(code))?;
    }
    if let Some(path) = &args.junit {
        let tests: Vec<TestId> = outcomes.tests.keys().cloned().collect();
        let unchecked: BTreeSet<TestId> = run.coverage.unchecked.iter().cloned().collect();
        junit::write(path, &tests, &run.failures, &unchecked)?;
    }
    if let Some(path) = &args.write_baseline {
        baseline::write(path, &run.leaks)?;
        eprintln!(
            "taskleak: wrote {} leaks to the baseline {}",
            run.leaks.len(),
            path.display()
        );
    }
    Ok(code)
}
