//! `--junit FILE`: a JUnit XML report for CI systems to display: every test
//! that ran; every failed one a `<failure>` with its reason (its leak
//! report, its own panic or error, a hang); unchecked ones noted. Written
//! by quick-junit, which escapes and counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::outcomes::{DOCTESTS_SUFFIX, TestId};
use crate::verdicts::{Failure, FailureKind};

/// Writes the report: `tests` are every test that ran; `failures` every
/// failed one with its reason; `unchecked` those that ran without a check;
/// `inconclusive` the note of each test whose check could not judge.
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn write(
    path: &Path,
    tests: &[TestId],
    failures: &[Failure],
    unchecked: &BTreeSet<TestId>,
    inconclusive: &BTreeMap<TestId, String>,
) -> Result<(), String> {
    save(path, &report(tests, failures, unchecked, inconclusive))
}

/// Writes the report of a run whose build failed: no test ran, and the
/// report says so with one failing case (an absent or empty report would
/// read as a pass).
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn write_build_failure(path: &Path, reason: &str) -> Result<(), String> {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_type("build").set_message(reason);
    let mut case = TestCase::new("build", status);
    case.set_classname("build");
    let mut suite = TestSuite::new("build");
    suite.add_test_case(case);
    let mut report = Report::new("taskleak");
    report.add_test_suite(suite);
    save(path, &report)
}

fn save(path: &Path, report: &Report) -> Result<(), String> {
    let cannot = |error: &dyn std::fmt::Display| format!("cannot write {}: {error}", path.display());
    let xml = report.to_string().map_err(|error| cannot(&error))?;
    std::fs::write(path, xml).map_err(|error| cannot(&error))
}

/// One test suite per test binary, one test case per test.
fn report(
    tests: &[TestId],
    failures: &[Failure],
    unchecked: &BTreeSet<TestId>,
    inconclusive: &BTreeMap<TestId, String>,
) -> Report {
    let by_test: BTreeMap<&TestId, &Failure> = failures.iter().map(|failure| (&failure.test, failure)).collect();
    let mut all: BTreeSet<&TestId> = tests.iter().collect();
    // A leaking binary-level check, a hung test or a failed binary has no
    // test line of its own.
    all.extend(by_test.keys().copied());
    let mut by_binary: BTreeMap<&str, Vec<&TestId>> = BTreeMap::new();
    for test in all {
        by_binary.entry(&test.binary).or_default().push(test);
    }
    let mut report = Report::new("taskleak");
    for (binary, tests) in by_binary {
        let mut suite = TestSuite::new(binary);
        for test in tests {
            let note = if test.binary.ends_with(DOCTESTS_SUFFIX) {
                Some("taskleak: a doctest: not leak-checked")
            } else if let Some(note) = inconclusive.get(test) {
                Some(note.as_str())
            } else if unchecked.contains(test) {
                Some("taskleak: ran without a leak check (no #[taskleak::verify_no_leaks])")
            } else {
                None
            };
            let status = match by_test.get(test) {
                Some(failure) => {
                    let kind = match failure.kind {
                        FailureKind::Leak => "taskleak",
                        FailureKind::Own => "test-failure",
                        FailureKind::Hung => "hung",
                        FailureKind::Binary => "binary-failure",
                    };
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status
                        .set_type(kind)
                        .set_message(&failure.message)
                        .set_description(&failure.text);
                    status
                }
                None => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(&test.name, status);
            case.set_classname(binary);
            if let Some(note) = note {
                case.set_system_out(note);
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failed_test_fails_with_its_reason_and_unchecked_ones_say_so() {
        let test = |name: &str| TestId {
            binary: "alpha".into(),
            name: name.into(),
        };
        let failures = [
            Failure {
                test: test("leaky"),
                kind: FailureKind::Leak,
                message: "taskleak: 1 task leaked by `leaky`".into(),
                text: "taskleak: 1 task leaked by `leaky`\n  <stack> & more".into(),
            },
            Failure {
                test: test("panics"),
                kind: FailureKind::Own,
                message: "assertion failed: ready".into(),
                text: "thread 'panics' panicked at src/lib.rs:1:1:\nassertion failed: ready".into(),
            },
        ];
        let unchecked: BTreeSet<TestId> = [test("bare")].into_iter().collect();
        let xml = report(
            &[test("clean"), test("leaky"), test("panics"), test("bare")],
            &failures,
            &unchecked,
            &[(test("clean"), "taskleak: inconclusive: 1 thread not judged".to_owned())].into(),
        )
        .to_string()
        .expect("serialized");
        // quick-junit orders attributes its own way: the facts are read
        // back from the XML.
        let read = Report::deserialize_from_str(&xml).expect("valid JUnit");
        assert_eq!(read.name.as_deref(), Some("taskleak"), "{xml}");
        assert_eq!((read.tests, read.failures), (4, 2), "{xml}");
        let [alpha] = &read.test_suites[..] else {
            panic!("one test suite: {xml}")
        };
        assert_eq!(
            (alpha.name.as_str(), alpha.tests, alpha.failures),
            ("alpha", 4, 2),
            "{xml}"
        );
        let case = |name: &str| {
            alpha
                .test_cases
                .iter()
                .find(|case| case.name.as_str() == name)
                .unwrap_or_else(|| panic!("no test case {name}: {xml}"))
        };
        let clean = case("clean");
        assert_eq!(clean.classname.as_deref(), Some("alpha"), "{xml}");
        assert!(matches!(clean.status, TestCaseStatus::Success { .. }), "{xml}");
        assert_eq!(
            clean.system_out.as_deref(),
            Some("taskleak: inconclusive: 1 thread not judged"),
            "{xml}"
        );
        assert!(xml.contains("message=\"taskleak: 1 task leaked by `leaky`\""), "{xml}");
        assert!(xml.contains("&lt;stack&gt; &amp; more</failure>"), "{xml}");
        let TestCaseStatus::NonSuccess { kind, message, ty, .. } = &case("panics").status else {
            panic!("`panics` fails: {xml}")
        };
        assert_eq!(*kind, NonSuccessKind::Failure, "{xml}");
        assert_eq!(
            (ty.as_deref(), message.as_deref()),
            (Some("test-failure"), Some("assertion failed: ready")),
            "{xml}"
        );
        assert!(xml.contains("ran without a leak check"), "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    }
}
