//! `--junit FILE`: a JUnit XML report for CI systems to display: every test
//! that ran, the leaking ones failing with their report as the message.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::outcomes::TestId;

/// Writes the report: `tests` are every test that ran; `reports` the leak
/// report text of each leaking test.
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn write(path: &Path, tests: &[TestId], reports: &BTreeMap<TestId, Vec<String>>) -> Result<(), String> {
    std::fs::write(path, render(tests, reports)).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

fn render(tests: &[TestId], reports: &BTreeMap<TestId, Vec<String>>) -> String {
    let mut all: Vec<&TestId> = tests.iter().collect();
    // A leaking binary-level check has no test line of its own.
    all.extend(reports.keys().filter(|test| !tests.contains(test)));
    all.sort();
    let mut by_binary: BTreeMap<&str, Vec<&TestId>> = BTreeMap::new();
    for test in all {
        by_binary.entry(&test.binary).or_default().push(test);
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = by_binary.values().map(Vec::len).sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"taskleak\" tests=\"{total}\" failures=\"{}\">",
        reports.len()
    );
    for (binary, tests) in by_binary {
        let failures = tests.iter().filter(|test| reports.contains_key(test)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
            escape(binary),
            tests.len()
        );
        for test in tests {
            let name = escape(&test.name);
            let class = escape(binary);
            match reports.get(test) {
                Some(texts) => {
                    let text = texts.join("\n");
                    let first = text.lines().next().unwrap_or("leaked");
                    let _ = writeln!(out, "    <testcase classname=\"{class}\" name=\"{name}\">");
                    let _ = writeln!(
                        out,
                        "      <failure type=\"taskleak\" message=\"{}\">{}</failure>",
                        escape(first),
                        escape(&text)
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
                None => {
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
    fn leaking_tests_fail_with_their_report_and_others_pass() {
        let test = |name: &str| TestId {
            binary: "alpha".into(),
            name: name.into(),
        };
        let mut reports = BTreeMap::new();
        reports.insert(
            test("leaky"),
            vec!["taskleak: 1 task leaked by `leaky`\n  <stack> & more".to_owned()],
        );
        let xml = render(&[test("clean"), test("leaky")], &reports);
        assert!(
            xml.contains("<testsuites name=\"taskleak\" tests=\"2\" failures=\"1\">"),
            "{xml}"
        );
        assert!(xml.contains("<testcase classname=\"alpha\" name=\"clean\"/>"), "{xml}");
        assert!(xml.contains("message=\"taskleak: 1 task leaked by `leaky`\""), "{xml}");
        assert!(xml.contains("&lt;stack&gt; &amp; more</failure>"), "{xml}");
    }
}
