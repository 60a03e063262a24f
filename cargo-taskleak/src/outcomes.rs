//! Which tests ran and which failed, read line by line from what `cargo
//! test` (libtest) or `cargo nextest run` prints.

use std::collections::BTreeMap;

/// A test, by its binary and its path in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TestId {
    /// As cargo names the executable: `alpha`, `leaky_tests`.
    pub(crate) binary: String,
    pub(crate) name: String,
}

/// What the run's output told so far.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Every test that ran, and whether it passed.
    pub(crate) tests: BTreeMap<TestId, bool>,
    /// Binaries that failed (`error: test failed, to rerun pass …`).
    pub(crate) failed_binaries: Vec<String>,
    /// The binary whose output libtest is printing.
    current_binary: Option<String>,
}

impl Outcomes {
    /// Takes one line of output; returns the test it finished, if any.
    pub(crate) fn take_line(&mut self, line: &str) -> Option<(TestId, bool)> {
        let trimmed = line.trim();
        // cargo: `Running unittests src/lib.rs (target/debug/deps/alpha-0123456789abcdef)`
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            if let Some(path) = rest.rsplit_once(" (").and_then(|(_, path)| path.strip_suffix(')')) {
                self.current_binary = Some(binary_of_path(path));
            }
            return None;
        }
        if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            self.current_binary = Some(format!("{krate} (doctests)"));
            return None;
        }
        if trimmed.starts_with("error: test failed, to rerun pass") {
            if let Some(binary) = &self.current_binary {
                self.failed_binaries.push(binary.clone());
            }
            return None;
        }
        // libtest, unindented (nextest indents the output it captured).
        if let Some(rest) = line.strip_prefix("test ") {
            let (name, status) = rest.rsplit_once(" ... ")?;
            let passed = match status.trim() {
                "ok" => true,
                "FAILED" => false,
                _ => return None, // ignored, bench
            };
            let id = TestId {
                binary: self.current_binary.clone().unwrap_or_default(),
                name: name.trim_end_matches(" - should panic").to_owned(),
            };
            self.tests.insert(id.clone(), passed);
            return Some((id, passed));
        }
        nextest_line(line).map(|(id, passed)| {
            self.tests.insert(id.clone(), passed);
            (id, passed)
        })
    }

    /// The tests that failed.
    pub(crate) fn failed(&self) -> impl Iterator<Item = &TestId> {
        self.tests.iter().filter(|(_, passed)| !**passed).map(|(id, _)| id)
    }
}

/// `target/debug/deps/alpha-0123456789abcdef` is the binary `alpha`.
fn binary_of_path(path: &str) -> String {
    let stem = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let stem = stem.strip_suffix(".exe").unwrap_or(stem);
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem.to_owned(),
    }
}

/// nextest: `        PASS [   0.005s] (3/20) alpha::leaky tests::name`.
fn nextest_line(line: &str) -> Option<(TestId, bool)> {
    // Its status lines are indented by 8 or fewer; captured output by more.
    let indent = line.len() - line.trim_start().len();
    if indent > 12 {
        return None;
    }
    let mut words = line.split_whitespace();
    let status = words.next()?;
    let passed = match status {
        "PASS" | "LEAK" => true,
        "FAIL" | "SIGSEGV" | "SIGABRT" | "SIGBUS" | "SIGILL" | "SIGKILL" | "ABORT" | "TIMEOUT" | "LEAK-FAIL" => false,
        _ => return None,
    };
    let rest = line.trim_start()[status.len()..].trim_start();
    let rest = rest.strip_prefix('[')?.split_once(']')?.1.trim_start();
    // The `(3/20)` counter of newer versions.
    let rest = match rest.strip_prefix('(') {
        Some(counted) => counted.split_once(')')?.1.trim_start(),
        None => rest,
    };
    let (binary_id, name) = rest.split_once(' ')?;
    Some((
        TestId {
            binary: binary_of_nextest_id(binary_id),
            name: name.trim().to_owned(),
        },
        passed,
    ))
}

/// nextest's `my-crate` (unit tests) is cargo's binary `my_crate`;
/// `my-crate::leaky` (an integration test) is `leaky`; `my-crate::bin/tool`
/// is `tool`.
fn binary_of_nextest_id(id: &str) -> String {
    match id.rsplit_once("::") {
        Some((_, binary)) => binary.rsplit('/').next().unwrap_or(binary).replace('-', "_"),
        None => id.replace('-', "_"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_lines_are_tied_to_their_binary() {
        let mut outcomes = Outcomes::default();
        for line in [
            "     Running unittests src/lib.rs (target/taskleak/debug/deps/alpha-0123456789abcdef)",
            "",
            "running 2 tests",
            "test tests::clean ... ok",
            "test tests::leaky ... FAILED",
            "test tests::panics - should panic ... ok",
            "test tests::skipped ... ignored",
            "error: test failed, to rerun pass `-p alpha --lib`",
            "     Running tests/leaky_tests.rs (target/taskleak/debug/deps/leaky_tests-fedcba9876543210)",
            "test leaks ... ok",
        ] {
            outcomes.take_line(line);
        }
        let id = |binary: &str, name: &str| TestId {
            binary: binary.into(),
            name: name.into(),
        };
        assert_eq!(outcomes.tests.get(&id("alpha", "tests::clean")), Some(&true));
        assert_eq!(outcomes.tests.get(&id("alpha", "tests::leaky")), Some(&false));
        assert_eq!(outcomes.tests.get(&id("alpha", "tests::panics")), Some(&true));
        assert_eq!(outcomes.tests.get(&id("leaky_tests", "leaks")), Some(&true));
        assert_eq!(outcomes.tests.len(), 4);
        assert_eq!(outcomes.failed_binaries, ["alpha"]);
    }

    #[test]
    fn nextest_lines_are_read_and_captured_output_is_not() {
        let mut outcomes = Outcomes::default();
        for line in [
            "    Starting 3 tests across 2 binaries",
            "        PASS [   0.005s] (1/3) my-crate tests::clean",
            "        FAIL [   0.136s] (2/3) my-crate::leaky_tests tests::leaky",
            "    test tests::leaky ... FAILED",
            "        SIGSEGV [   0.010s] my-crate::bin/tool crashes",
            "        FAIL [   0.136s] (2/3) my-crate::leaky_tests tests::leaky",
        ] {
            outcomes.take_line(line);
        }
        let id = |binary: &str, name: &str| TestId {
            binary: binary.into(),
            name: name.into(),
        };
        assert_eq!(outcomes.tests.get(&id("my_crate", "tests::clean")), Some(&true));
        assert_eq!(outcomes.tests.get(&id("leaky_tests", "tests::leaky")), Some(&false));
        assert_eq!(outcomes.tests.get(&id("tool", "crashes")), Some(&false));
        assert_eq!(outcomes.tests.len(), 3);
    }
}
