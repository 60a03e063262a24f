//! `--junit FILE`: a JUnit XML report for CI systems to display: every test
//! that ran; every failed one a `<failure>` with its reason (its leak
//! report, its own panic or error, a hang); unchecked ones noted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

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
    std::fs::write(path, render(tests, failures, unchecked, inconclusive))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Writes the report of a run whose build failed: no test ran, and the
/// report says so with one failing case (an absent or empty report would
/// read as a pass).
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn write_build_failure(path: &Path, reason: &str) -> Result<(), String> {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<testsuites name=\"taskleak\" tests=\"1\" failures=\"0\" errors=\"1\">\n");
    out.push_str("  <testsuite name=\"build\" tests=\"1\" failures=\"0\" errors=\"1\">\n");
    let _ = writeln!(
        out,
        "    <testcase classname=\"build\" name=\"build\">\n      <error type=\"build\" message=\"{}\"/>\n    </testcase>",
        escape(reason)
    );
    out.push_str("  </testsuite>\n</testsuites>\n");
    std::fs::write(path, out).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn render(
    tests: &[TestId],
    failures: &[Failure],
    unchecked: &BTreeSet<TestId>,
    inconclusive: &BTreeMap<TestId, String>,
) -> String {
    let by_test: BTreeMap<&TestId, &Failure> = failures.iter().map(|failure| (&failure.test, failure)).collect();
    let mut all: BTreeSet<&TestId> = tests.iter().collect();
    // A leaking binary-level check, a hung test or a failed binary has no
    // test line of its own.
    all.extend(by_test.keys().copied());
    let mut by_binary: BTreeMap<&str, Vec<&TestId>> = BTreeMap::new();
    for test in all {
        by_binary.entry(&test.binary).or_default().push(test);
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = by_binary.values().map(Vec::len).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"taskleak\" tests=\"{total}\" failures=\"{}\">",
        by_test.len()
    );
    for (binary, tests) in by_binary {
        let failures = tests.iter().filter(|test| by_test.contains_key(*test)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
            escape(binary),
            tests.len()
        );
        for test in tests {
            let name = escape(&test.name);
            let class = escape(binary);
            let note = if test.binary.ends_with(DOCTESTS_SUFFIX) {
                Some("taskleak: a doctest: not leak-checked")
            } else if let Some(note) = inconclusive.get(test) {
                Some(note.as_str())
            } else if unchecked.contains(test) {
                Some("taskleak: ran without a leak check (no #[taskleak::verify_no_leaks])")
            } else {
                None
            };
            match (by_test.get(test), note) {
                (Some(failure), _) => {
                    let kind = match failure.kind {
                        FailureKind::Leak => "taskleak",
                        FailureKind::Own => "test-failure",
                        FailureKind::Hung => "hung",
                        FailureKind::Binary => "binary-failure",
                    };
                    let _ = writeln!(out, "    <testcase classname=\"{class}\" name=\"{name}\">");
                    let _ = writeln!(
                        out,
                        "      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                        escape(&failure.message),
                        escape(&failure.text)
                    );
                    if let Some(note) = note {
                        let _ = writeln!(out, "      <system-out>{}</system-out>", escape(note));
                    }
                    let _ = writeln!(out, "    </testcase>");
                }
                (None, Some(note)) => {
                    let _ = writeln!(out, "    <testcase classname=\"{class}\" name=\"{name}\">");
                    let _ = writeln!(out, "      <system-out>{}</system-out>", escape(note));
                    let _ = writeln!(out, "    </testcase>");
                }
                (None, None) => {
                    let _ = writeln!(out, "    <testcase classname=\"{class}\" name=\"{name}\"/>");
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text for XML attributes and content; characters XML 1.0 forbids are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
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
        let xml = render(
            &[test("clean"), test("leaky"), test("panics"), test("bare")],
            &failures,
            &unchecked,
            &[(test("clean"), "taskleak: inconclusive: 1 thread not judged".to_owned())].into(),
        );
        assert!(
            xml.contains("<testsuites name=\"taskleak\" tests=\"4\" failures=\"2\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<testsuite name=\"alpha\" tests=\"4\" failures=\"2\">"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<testcase classname=\"alpha\" name=\"clean\">\n      \
                 <system-out>taskleak: inconclusive: 1 thread not judged</system-out>"
            ),
            "{xml}"
        );
        assert!(xml.contains("message=\"taskleak: 1 task leaked by `leaky`\""), "{xml}");
        assert!(xml.contains("&lt;stack&gt; &amp; more</failure>"), "{xml}");
        assert!(
            xml.contains("<failure type=\"test-failure\" message=\"assertion failed: ready\">"),
            "{xml}"
        );
        assert!(xml.contains("ran without a leak check"), "{xml}");
        assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    }
}
