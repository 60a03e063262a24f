//! Inconclusive checks: threads a check could not judge because another
//! test may have started them; each such test is re-run alone in its own
//! binary (`--exact NAME --test-threads=1`) for a verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::outcomes::TestId;
use crate::records::{self, Record};
use crate::runner;

/// How long `cargo metadata` may take.
const METADATA_BOUND: Duration = Duration::from_secs(120);

/// A test whose thread check could not judge some threads, and what its
/// re-run alone found.
#[derive(Clone, Debug)]
pub(crate) struct Inconclusive {
    pub(crate) test: TestId,
    /// Threads the check could not judge.
    pub(crate) threads: usize,
    pub(crate) rerun: Rerun,
}

/// What re-running an inconclusive test alone came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rerun {
    /// It leaked: the first line of its report.
    Leaked(String),
    /// Its check found nothing.
    Clean,
    /// Not re-run, and why (`--no-rerun`, nextest, no executable).
    NotRun(String),
    /// The re-run gave no verdict, and why (its own failure, no record).
    NoVerdict(String),
}

impl Rerun {
    /// One word for JSON and JUnit.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Rerun::Leaked(_) => "leaked",
            Rerun::Clean => "clean",
            Rerun::NotRun(_) => "not-run",
            Rerun::NoVerdict(_) => "no-verdict",
        }
    }

    /// For the summary: `leaked (taskleak: 1 thread leaked by …)`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Rerun::Leaked(headline) => format!("re-run alone: leaked ({headline})"),
            Rerun::Clean => "re-run alone: clean".to_owned(),
            Rerun::NotRun(why) => format!("not re-run ({why})"),
            Rerun::NoVerdict(why) => format!("re-run alone: no verdict ({why})"),
        }
    }
}

/// The tests of `records` whose check was inconclusive, each once.
pub(crate) fn find(records: &[Record]) -> BTreeMap<TestId, usize> {
    let mut found = BTreeMap::new();
    for record in records.iter().filter(|record| record.inconclusive.is_some()) {
        let test = TestId {
            binary: record.binary.clone(),
            name: record.test_name(),
        };
        *found.entry(test).or_insert(0) += record.unjudged_threads;
    }
    found
}

/// How to re-run tests alone: each binary's executable, and where the
/// re-runs' records go.
#[derive(Debug)]
pub(crate) struct Reruns<'a> {
    pub(crate) executables: &'a BTreeMap<String, String>,
    /// Each binary's package directory: cargo runs tests from there.
    pub(crate) package_dirs: BTreeMap<String, PathBuf>,
    pub(crate) record_dir: PathBuf,
    /// How long one re-run may take (`--timeout`).
    pub(crate) timeout: Duration,
}

impl Reruns<'_> {
    /// Re-runs `test` alone; returns its verdict and the records it wrote.
    pub(crate) fn run(&self, test: &TestId, index: usize) -> (Rerun, Vec<Record>) {
        let Some(executable) = self.executables.get(&test.binary) else {
            return (
                Rerun::NotRun(format!("no executable seen for `{}`", test.binary)),
                Vec::new(),
            );
        };
        // The path cargo printed is relative to where it ran: here.
        let executable = std::path::absolute(executable).unwrap_or_else(|_| PathBuf::from(executable));
        let dir = self.record_dir.join(format!("rerun-{index}"));
        if let Err(error) = std::fs::create_dir_all(&dir) {
            return (
                Rerun::NotRun(format!("cannot create {}: {error}", dir.display())),
                Vec::new(),
            );
        }
        let mut command = Command::new(&executable);
        command
            .args(["--exact", &test.name, "--test-threads=1"])
            .env("TASKLEAK_RECORD_DIR", &dir)
            .env("TASKLEAK_MODE", "fail")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(package) = self.package_dirs.get(&test.binary) {
            command.current_dir(package).env("CARGO_MANIFEST_DIR", package);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return (
                    Rerun::NotRun(format!("cannot run {}: {error}", executable.display())),
                    Vec::new(),
                );
            }
        };
        if let Err(why) = runner::wait_within(&mut child, self.timeout) {
            return (Rerun::NoVerdict(format!("the re-run was {why}")), Vec::new());
        }
        let records = match records::read_dir(&dir) {
            Ok(records) => records,
            Err(error) => return (Rerun::NoVerdict(error), Vec::new()),
        };
        (verdict(&records), records)
    }
}

/// The verdict of a re-run's records.
fn verdict(records: &[Record]) -> Rerun {
    if let Some(leak) = records.iter().find(|record| record.is_leak()) {
        let headline = leak.report.lines().next().unwrap_or("leaked").to_owned();
        return Rerun::Leaked(headline);
    }
    if records.iter().any(|record| record.inconclusive.is_some()) {
        return Rerun::NoVerdict("still inconclusive: something else started threads in its process".to_owned());
    }
    if records.iter().any(|record| record.own_failure) {
        return Rerun::NoVerdict("the test failed on its own".to_owned());
    }
    if records.is_empty() {
        return Rerun::NoVerdict("it wrote no record: it did not run".to_owned());
    }
    Rerun::Clean
}

/// Each binary's package directory, from `cargo metadata`: an integration
/// test or a binary by its target's name, a library's unit tests by its
/// crate name (`-` as `_`). Empty if metadata cannot be read: the re-run
/// then runs from here.
pub(crate) fn package_dirs(cargo: &str, runner_args: &[String]) -> BTreeMap<String, PathBuf> {
    let mut command = Command::new(cargo);
    command.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(at) = runner_args.iter().position(|arg| arg == "--manifest-path") {
        command.args(&runner_args[at..(at + 2).min(runner_args.len())]);
    }
    command.stdin(Stdio::null()).stderr(Stdio::null());
    let Ok(stdout) = runner::stdout_within(&mut command, METADATA_BOUND) else {
        return BTreeMap::new();
    };
    let Ok(metadata) = serde_json::from_slice::<serde_json::Value>(&stdout) else {
        return BTreeMap::new();
    };
    let mut dirs = BTreeMap::new();
    let packages = metadata["packages"].as_array().map(Vec::as_slice).unwrap_or_default();
    for package in packages {
        let Some(dir) = package["manifest_path"]
            .as_str()
            .and_then(|path| Path::new(path).parent())
        else {
            continue;
        };
        for target in package["targets"].as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(name) = target["name"].as_str() {
                dirs.entry(name.to_owned()).or_insert_with(|| dir.to_owned());
                dirs.entry(name.replace('-', "_")).or_insert_with(|| dir.to_owned());
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(inconclusive: bool, tasks: usize, own_failure: bool) -> Record {
        let line = serde_json::json!({
            "version": 1, "binary": "gamma", "test": "tests::flusher", "scope": "test",
            "leak_fails": tasks > 0, "own_failure": own_failure, "process_test": null,
            "tasks": tasks, "threads": 0, "groups": [],
            "inconclusive": if inconclusive { serde_json::json!("libtest may run other tests") } else { serde_json::Value::Null },
            "unjudged_threads": usize::from(inconclusive),
            "report": "taskleak: 1 task leaked by `tests::flusher`\n\n  more"
        });
        serde_json::from_value(line).expect("a record")
    }

    #[test]
    fn inconclusive_records_are_found_once_per_test() {
        let found = find(&[record(true, 0, false), record(false, 0, false), record(true, 0, false)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found.values().next(), Some(&2));
    }

    #[test]
    fn a_reruns_records_give_its_verdict() {
        assert_eq!(
            verdict(&[record(false, 1, false)]),
            Rerun::Leaked("taskleak: 1 task leaked by `tests::flusher`".to_owned())
        );
        assert_eq!(verdict(&[record(false, 0, false)]), Rerun::Clean);
        assert_eq!(verdict(&[record(true, 0, false)]).label(), "no-verdict");
        assert_eq!(verdict(&[record(false, 0, true)]).label(), "no-verdict");
        assert_eq!(verdict(&[]).label(), "no-verdict");
    }
}
