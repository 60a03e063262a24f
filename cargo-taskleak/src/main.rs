//! `cargo taskleak`: runs a workspace's tests with taskleak's leak checks on
//! and full reports, then prints every leak of the whole run in one summary,
//! grouped by what leaked across tests; writes it as JSON and JUnit for CI;
//! and, with a baseline, fails only on new leaks. See
//! `docs/cargo-taskleak.md`.

mod adopt;
mod args;
mod baseline;
mod inconclusive;
mod json;
mod junit;
mod outcomes;
mod records;
mod runner;
mod summary;
mod unwatched;
mod verdicts;
mod words;

use std::collections::{BTreeMap, BTreeSet};
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
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(args::Stop::Help(help)) => {
            print!("{help}");
            return Ok(CLEAN);
        }
        Err(args::Stop::Invalid(error)) => return Err(error),
    };
    if let Some(args::Command::Adopt(adopt)) = &args.command {
        return adopt::run(adopt);
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
    let timeout = args.timeout.unwrap_or(args::DEFAULT_TIMEOUT);
    let ran = plan.run(timeout, count_leaks)?;
    let mut outcomes = ran.outcomes;
    let mut records = records::read_dir(&plan.record_dir)?;
    let inconclusive = settle_inconclusive(&plan, args.no_rerun, timeout, &mut outcomes, &mut records);
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
        not_watched: unwatched::find(&records),
        inconclusive,
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
        let mut notes: BTreeMap<TestId, String> = run
            .inconclusive
            .iter()
            .map(|check| (check.test.clone(), junit_note(check)))
            .collect();
        for check in &run.not_watched {
            let note = format!("taskleak: not watched: {}", check.describe());
            notes
                .entry(check.test.clone())
                .and_modify(|notes| *notes = format!("{notes}\n{note}"))
                .or_insert(note);
        }
        junit::write(path, &tests, &run.failures, &unchecked, &notes)?;
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

/// Lists the inconclusive checks and, unless `--no-rerun` (or under
/// nextest, which runs each test alone already), re-runs each test alone
/// for a verdict. A leak the re-run finds joins the run's records, and
/// the test counts as failed by it.
fn settle_inconclusive(
    plan: &runner::Plan,
    no_rerun: bool,
    timeout: std::time::Duration,
    outcomes: &mut outcomes::Outcomes,
    records: &mut Vec<records::Record>,
) -> Vec<inconclusive::Inconclusive> {
    use inconclusive::{Inconclusive, Rerun};
    let found = inconclusive::find(records);
    if found.is_empty() {
        return Vec::new();
    }
    let not_run = if no_rerun {
        Some("--no-rerun")
    } else if plan.nextest {
        Some("nextest runs each test alone already")
    } else {
        None
    };
    if let Some(why) = not_run {
        return found
            .into_iter()
            .map(|(test, threads)| Inconclusive {
                test,
                threads,
                rerun: Rerun::NotRun(why.to_owned()),
            })
            .collect();
    }
    eprintln!(
        "taskleak: re-running {} alone (inconclusive thread checks)",
        words::plural(found.len(), "test")
    );
    let reruns = inconclusive::Reruns {
        executables: &outcomes.executables,
        package_dirs: inconclusive::package_dirs(&plan.cargo, &plan.runner_args),
        record_dir: plan.record_dir.clone(),
        timeout,
    };
    let mut settled = Vec::new();
    let mut leaked = Vec::new();
    for (index, (test, threads)) in found.into_iter().enumerate() {
        let (rerun, rerun_records) = reruns.run(&test, index);
        if let Rerun::Leaked(_) = rerun {
            records.extend(rerun_records.into_iter().filter(records::Record::is_leak));
            leaked.push(test.clone());
        }
        settled.push(Inconclusive { test, threads, rerun });
    }
    for test in leaked {
        outcomes.tests.insert(test, false);
    }
    settled
}

/// The JUnit note of an inconclusive check.
fn junit_note(check: &inconclusive::Inconclusive) -> String {
    format!(
        "taskleak: inconclusive: {} not judged (another test may have started them); {}",
        words::plural(check.threads, "thread"),
        check.rerun.describe()
    )
}
