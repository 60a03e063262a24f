//! `--json FILE`: the run as one JSON document (`docs/cargo-taskleak.md`
//! documents the schema; `version` changes with any incompatible change).

use std::path::Path;

use serde::Serialize;

use crate::summary::Run;
use crate::verdicts::FailureKind;

const SCHEMA: &str = "taskleak-run";
const VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    version: u32,
    exit_code: i32,
    totals: Totals,
    leaks: Vec<LeakEntry<'a>>,
    gone_from_baseline: &'a [String],
    unrelated_failures: Vec<FailureRef<'a>>,
    /// Tests (not doctests) that ran without a leak check.
    unchecked: Vec<TestRef<'a>>,
    /// Checks that could not judge some threads, with their re-runs.
    inconclusive: Vec<InconclusiveEntry<'a>>,
    /// Checks that could not see everything their test started.
    not_watched: Vec<NotWatchedEntry<'a>>,
    /// The time bound that stopped the run (`"30m"`), or `null`.
    stopped_after: Option<&'a str>,
}

#[derive(Serialize)]
struct Totals {
    tests_run: usize,
    /// Tests a check ran on (whose record the gate read).
    checked_tests: usize,
    /// Tests that ran without a check, doctests not counted.
    unchecked_tests: usize,
    doctests: usize,
    tests_failed: usize,
    /// Tests still running (or not started) when the time bound hit.
    hung_tests: usize,
    leaking_tests: usize,
    distinct_leaks: usize,
    new_leaks: usize,
    tasks_leaked: usize,
    threads_leaked: usize,
    inconclusive_checks: usize,
    /// Checks that could not see everything their test started.
    not_watched_checks: usize,
}

#[derive(Serialize)]
struct NotWatchedEntry<'a> {
    binary: &'a str,
    name: &'a str,
    /// `tasks`, `tasks-maybe-another-tests`, `runtime`, or two joined by `+`.
    what: String,
    /// What the check could not see, in words.
    detail: String,
}

#[derive(Serialize)]
struct InconclusiveEntry<'a> {
    binary: &'a str,
    name: &'a str,
    /// Threads the check could not judge.
    unjudged_threads: usize,
    /// `leaked`, `clean`, `no-verdict` or `not-run`.
    rerun: &'static str,
    /// The re-run's verdict in words.
    rerun_detail: String,
}

#[derive(Serialize)]
struct LeakEntry<'a> {
    key: &'a str,
    kind: &'a str,
    count: usize,
    new: bool,
    spawned_at: Option<&'a str>,
    thread_name: Option<&'a str>,
    stuck_at: Option<&'a str>,
    why: &'a str,
    tests: Vec<TestRef<'a>>,
}

#[derive(Serialize)]
struct TestRef<'a> {
    binary: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct FailureRef<'a> {
    binary: &'a str,
    name: &'a str,
    /// `own` (its panic, error or crash), `hung`, or `binary`.
    kind: &'static str,
    /// One line: its panic's message, say.
    reason: &'a str,
}

fn test_ref(test: &crate::outcomes::TestId) -> TestRef<'_> {
    TestRef {
        binary: &test.binary,
        name: &test.name,
    }
}

/// Writes `run` to `path`.
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn write(path: &Path, run: &Run, exit_code: i32) -> Result<(), String> {
    let document = Document {
        schema: SCHEMA,
        version: VERSION,
        exit_code,
        totals: Totals {
            tests_run: run.tests_run,
            checked_tests: run.coverage.checked,
            unchecked_tests: run.coverage.unchecked.len(),
            doctests: run.coverage.doctests,
            tests_failed: run.tests_failed,
            hung_tests: run.hung().count(),
            leaking_tests: run.leaking_tests().len(),
            distinct_leaks: run.leaks.len(),
            new_leaks: run.new_keys.len(),
            tasks_leaked: run.leaked("task"),
            threads_leaked: run.leaked("thread"),
            inconclusive_checks: run.inconclusive.len(),
            not_watched_checks: run.not_watched.len(),
        },
        leaks: run
            .leaks
            .iter()
            .map(|leak| LeakEntry {
                key: &leak.key,
                kind: &leak.kind,
                count: leak.count,
                new: run.new_keys.contains(&leak.key),
                spawned_at: leak.spawned_at.as_deref(),
                thread_name: leak.thread_name.as_deref(),
                stuck_at: leak.stuck_at.as_deref(),
                why: &leak.why,
                tests: leak.tests.iter().map(test_ref).collect(),
            })
            .collect(),
        gone_from_baseline: &run.gone,
        unrelated_failures: run
            .unrelated_failures()
            .map(|failure| FailureRef {
                binary: &failure.test.binary,
                name: &failure.test.name,
                kind: match failure.kind {
                    FailureKind::Hung => "hung",
                    FailureKind::Binary => "binary",
                    FailureKind::Own | FailureKind::Leak => "own",
                },
                reason: &failure.message,
            })
            .collect(),
        unchecked: run.coverage.unchecked.iter().map(test_ref).collect(),
        inconclusive: run
            .inconclusive
            .iter()
            .map(|check| InconclusiveEntry {
                binary: &check.test.binary,
                name: &check.test.name,
                unjudged_threads: check.threads,
                rerun: check.rerun.label(),
                rerun_detail: check.rerun.describe(),
            })
            .collect(),
        not_watched: run
            .not_watched
            .iter()
            .map(|check| NotWatchedEntry {
                binary: &check.test.binary,
                name: &check.test.name,
                what: check.label(),
                detail: check.describe(),
            })
            .collect(),
        stopped_after: run.stopped_after.as_deref(),
    };
    let text = serde_json::to_string_pretty(&document).map_err(|error| error.to_string())?;
    std::fs::write(path, text + "\n").map_err(|error| format!("cannot write {}: {error}", path.display()))
}
