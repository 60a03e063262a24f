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

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;

use outcomes::{Outcomes, TestId};
use records::Record;
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
    plan.build()?;
    let record_dir = plan.record_dir.clone();
    let count_leaks = || {
        records::read_dir(&record_dir)
            .map(|records| records.iter().filter(|record| record.is_leak()).count())
            .unwrap_or(0)
    };
    let outcomes = plan.run(count_leaks)?;
    let records = records::read_dir(&plan.record_dir)?;
    let leaks = summary::leaks(&records);
    let keys: BTreeSet<String> = leaks.iter().map(|leak| leak.key.clone()).collect();
    let (new_keys, gone) = match &baseline {
        Some(known) => (
            keys.difference(known).cloned().collect(),
            known.difference(&keys).cloned().collect(),
        ),
        None => (keys, Vec::new()),
    };
    let run = Run {
        tests_run: outcomes.tests.len(),
        tests_failed: outcomes.failed().count(),
        unrelated_failures: unrelated_failures(&outcomes, &records),
        leaks,
        new_keys,
        gone,
        baseline_used: baseline.is_some(),
    };
    let code = if !run.unrelated_failures.is_empty() {
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
        junit::write(path, &tests, &reports_by_test(&records))?;
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

/// Failed tests (and binaries) that no leak explains: they failed on their
/// own, or without a report.
fn unrelated_failures(outcomes: &Outcomes, records: &[Record]) -> Vec<TestId> {
    let failed_by_leak = |binary: &str, name: &str| {
        records.iter().any(|record| {
            record.is_leak()
                && record.leak_fails
                && !record.own_failure
                && record.binary == binary
                && record.test_name() == name
        })
    };
    let mut unrelated: Vec<TestId> = outcomes
        .failed()
        .filter(|test| !failed_by_leak(&test.binary, &test.name))
        .cloned()
        .collect();
    for binary in &outcomes.failed_binaries {
        let has_failed_test = outcomes.failed().any(|test| &test.binary == binary);
        let binary_leaked = records
            .iter()
            .any(|record| record.binary == *binary && record.scope == "binary" && record.leak_fails);
        if !has_failed_test && !binary_leaked {
            unrelated.push(TestId {
                binary: binary.clone(),
                name: "(the binary failed after its tests: see the output log)".to_owned(),
            });
        }
    }
    unrelated
}

/// Each leaking test's report texts.
fn reports_by_test(records: &[Record]) -> BTreeMap<TestId, Vec<String>> {
    let mut reports: BTreeMap<TestId, Vec<String>> = BTreeMap::new();
    for record in records.iter().filter(|record| record.is_leak()) {
        let test = TestId {
            binary: record.binary.clone(),
            name: record.test_name(),
        };
        reports.entry(test).or_default().push(record.report.clone());
    }
    reports
}
