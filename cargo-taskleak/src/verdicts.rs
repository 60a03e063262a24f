//! What each test came to, from the run's output and the records: why every
//! failed test failed (a leak, its own panic or error, a hang, its binary's
//! crash), and which tests were leak-checked at all.

use std::collections::{BTreeMap, BTreeSet};

use crate::outcomes::{self, DOCTESTS_SUFFIX, Outcomes, TestId};
use crate::records::Record;

/// The reason given when a test failed without a leak and printed nothing
/// that says why.
const NO_REASON: &str = "failed (no leak found): see output";

/// Why a test failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Its leak report failed it, and nothing else did.
    Leak,
    /// It failed on its own: a panic, an `Err`, a crash (maybe beside a leak).
    Own,
    /// It was still running (or had not started) when the time bound
    /// stopped the run.
    Hung,
    /// Its binary failed after its tests, with no test failing.
    Binary,
}

/// A failed test and why, for the summary, the JSON and JUnit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) test: TestId,
    pub(crate) kind: FailureKind,
    /// One line: the leak report's headline, the panic's message, …
    pub(crate) message: String,
    /// All of it: the leak reports, and the test's own output.
    pub(crate) text: String,
}

/// Every failed test, with its reason. `stopped_after` is the time bound
/// that stopped the run, if it did.
pub(crate) fn failures(outcomes: &Outcomes, records: &[Record], stopped_after: Option<&str>) -> Vec<Failure> {
    let mut leaks: BTreeMap<TestId, Vec<&Record>> = BTreeMap::new();
    for record in records.iter().filter(|record| record.is_leak()) {
        let test = TestId {
            binary: record.binary.clone(),
            name: record.test_name(),
        };
        leaks.entry(test).or_default().push(record);
    }
    let mut failures = Vec::new();
    for test in outcomes.failed() {
        let output = outcomes.output.get(test).map(String::as_str);
        let reports = leaks.get(test).map(Vec::as_slice).unwrap_or_default();
        let leak_alone = !reports.is_empty()
            && reports.iter().any(|record| record.leak_fails)
            && reports.iter().all(|record| !record.own_failure);
        let report_text: Vec<&str> = reports.iter().map(|record| record.report.as_str()).collect();
        let failure = if leak_alone {
            Failure {
                test: test.clone(),
                kind: FailureKind::Leak,
                message: headline(&report_text),
                text: report_text.join("\n"),
            }
        } else {
            let message = output
                .and_then(outcomes::reason_in)
                .unwrap_or(if reports.is_empty() {
                    NO_REASON
                } else {
                    "failed on its own, and leaked: see output"
                })
                .to_owned();
            let mut text = output.unwrap_or(NO_REASON).to_owned();
            if !report_text.is_empty() {
                text = format!("{}\n\n{text}", report_text.join("\n"));
            }
            Failure {
                test: test.clone(),
                kind: FailureKind::Own,
                message,
                text,
            }
        };
        failures.push(failure);
    }
    // Leaks that failed no test line of their own: an end-of-binary check's.
    for (test, reports) in &leaks {
        if outcomes.tests.contains_key(test) || !reports.iter().any(|record| record.leak_fails) {
            continue;
        }
        let report_text: Vec<&str> = reports.iter().map(|record| record.report.as_str()).collect();
        failures.push(Failure {
            test: test.clone(),
            kind: FailureKind::Leak,
            message: headline(&report_text),
            text: report_text.join("\n"),
        });
    }
    for binary in &outcomes.failed_binaries {
        let has_failed_test = outcomes.failed().any(|test| &test.binary == binary);
        let binary_leaked = records
            .iter()
            .any(|record| record.binary == *binary && record.is_binary_check() && record.leak_fails);
        if !has_failed_test && !binary_leaked {
            let message = "the binary failed after its tests: see the output log".to_owned();
            failures.push(Failure {
                test: TestId {
                    binary: binary.clone(),
                    name: format!("({message})"),
                },
                kind: FailureKind::Binary,
                text: message.clone(),
                message,
            });
        }
    }
    if let Some(bound) = stopped_after {
        for test in &outcomes.hung {
            let message = format!("hung: not finished when the run was stopped after {bound} (--timeout)");
            failures.push(Failure {
                test: test.clone(),
                kind: FailureKind::Hung,
                text: message.clone(),
                message,
            });
        }
    }
    failures
}

/// The first line of the first report.
fn headline(reports: &[&str]) -> String {
    reports
        .iter()
        .flat_map(|report| report.lines())
        .find(|line| !line.trim().is_empty())
        .unwrap_or("leaked")
        .to_owned()
}

/// Which of the tests that ran were leak-checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// Tests whose check wrote a record (clean or not), or whose binary's
    /// end-of-binary check did.
    pub(crate) checked: usize,
    /// Tests (not doctests) that ran with no check.
    pub(crate) unchecked: Vec<TestId>,
    /// Doctests: they are never checked.
    pub(crate) doctests: usize,
}

impl Coverage {
    /// `104 doctests and 9 tests ran without a check`; empty when every
    /// test was checked.
    pub(crate) fn unchecked_phrase(&self) -> String {
        let mut parts = Vec::new();
        if self.doctests > 0 {
            parts.push(crate::words::plural(self.doctests, "doctest"));
        }
        if !self.unchecked.is_empty() {
            parts.push(crate::words::plural(self.unchecked.len(), "test"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("{} ran without a check", parts.join(" and "))
        }
    }
}

/// Counts the checked, unchecked and doctests among those that ran: a
/// test is checked when a record names it, or its binary has a record of
/// an end-of-binary check (every test in such a binary is checked by it).
pub(crate) fn coverage(tests: &BTreeMap<TestId, bool>, records: &[Record]) -> Coverage {
    let named: BTreeSet<(&str, &str)> = records
        .iter()
        .filter(|record| !record.is_binary_check())
        .filter_map(|record| Some((record.binary.as_str(), record.test.as_deref()?)))
        .collect();
    let whole_binaries: BTreeSet<&str> = records
        .iter()
        .filter(|record| record.is_binary_check())
        .map(|record| record.binary.as_str())
        .collect();
    let mut coverage = Coverage::default();
    for test in tests.keys() {
        if test.binary.ends_with(DOCTESTS_SUFFIX) {
            coverage.doctests += 1;
        } else if whole_binaries.contains(test.binary.as_str()) || named.contains(&(&test.binary, &test.name)) {
            coverage.checked += 1;
        } else {
            coverage.unchecked.push(test.clone());
        }
    }
    coverage
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(binary: &str, test: &str, scope: &str, tasks: usize, own_failure: bool) -> Record {
        serde_json::from_value(serde_json::json!({
            "version": 1, "binary": binary, "test": test, "scope": scope, "leak_fails": tasks > 0,
            "own_failure": own_failure, "process_test": null, "tasks": tasks, "threads": 0,
            "groups": [], "report": format!("taskleak: {tasks} task leaked by `{test}`\n  more")
        }))
        .expect("a record")
    }

    fn id(binary: &str, name: &str) -> TestId {
        TestId {
            binary: binary.into(),
            name: name.into(),
        }
    }

    #[test]
    fn checked_unchecked_and_doctests_are_counted_apart() {
        let tests: BTreeMap<TestId, bool> = [
            (id("alpha", "tests::clean"), true),
            (id("alpha", "tests::leaky"), false),
            (id("alpha", "tests::bare"), true),
            (id("whole", "one"), true),
            (id("whole", "two"), true),
            (id("alpha (doctests)", "src/lib.rs - f (line 3)"), true),
        ]
        .into_iter()
        .collect();
        let records = [
            record("alpha", "tests::clean", "test", 0, false),
            record("alpha", "tests::leaky", "test", 1, false),
            record("whole", "whole", "binary", 0, false),
        ];
        let coverage = coverage(&tests, &records);
        assert_eq!(coverage.checked, 4);
        assert_eq!(coverage.unchecked, [id("alpha", "tests::bare")]);
        assert_eq!(coverage.doctests, 1);
        assert_eq!(coverage.unchecked_phrase(), "1 doctest and 1 test ran without a check");
        assert_eq!(Coverage::default().unchecked_phrase(), "");
    }

    #[test]
    fn every_failed_test_has_a_reason() {
        let mut outcomes = Outcomes::default();
        for line in [
            "     Running unittests src/lib.rs (target/debug/deps/alpha-0123456789abcdef)",
            "test tests::leaky ... FAILED",
            "test tests::panics ... FAILED",
            "test tests::silent ... FAILED",
            "test tests::both ... FAILED",
            "failures:",
            "---- tests::panics stdout ----",
            "thread 'tests::panics' (7) panicked at src/lib.rs:9:5:",
            "assertion failed: ready",
            "failures:",
        ] {
            outcomes.take_line(line);
        }
        outcomes.finish();
        let records = [
            record("alpha", "tests::leaky", "test", 1, false),
            record("alpha", "tests::both", "test", 1, true),
            record("whole", "whole", "binary", 1, false),
        ];
        let failures = failures(&outcomes, &records, None);
        let of = |name: &str| failures.iter().find(|failure| failure.test.name == name).expect(name);
        assert_eq!(of("tests::leaky").kind, FailureKind::Leak);
        assert_eq!(of("tests::leaky").message, "taskleak: 1 task leaked by `tests::leaky`");
        assert_eq!(of("tests::panics").kind, FailureKind::Own);
        assert_eq!(of("tests::panics").message, "assertion failed: ready");
        assert_eq!(of("tests::silent").message, NO_REASON);
        assert_eq!(of("tests::both").kind, FailureKind::Own);
        assert!(of("tests::both").text.contains("leaked by `tests::both`"));
        assert_eq!(of("whole").kind, FailureKind::Leak);
        assert_eq!(failures.len(), 5);
    }
}
