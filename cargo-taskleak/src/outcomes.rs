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

/// The binary name doctests of a crate are listed under: `alpha (doctests)`.
pub(crate) const DOCTESTS_SUFFIX: &str = " (doctests)";

/// What the run's output told so far.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    /// Every test that ran, and whether it passed.
    pub(crate) tests: BTreeMap<TestId, bool>,
    /// Binaries that failed (`error: test failed, to rerun pass …`).
    pub(crate) failed_binaries: Vec<String>,
    /// What each failed test printed (libtest's `---- NAME stdout ----`
    /// section, nextest's `stdout ───`/`stderr ───` under its `FAIL` line):
    /// the reason a test that did not leak failed.
    pub(crate) output: BTreeMap<TestId, String>,
    /// Tests still running (or not yet started) in the binary that was
    /// running when the time bound stopped the run.
    pub(crate) hung: Vec<TestId>,
    /// The binary whose output libtest is printing.
    current_binary: Option<String>,
    /// Its executable, from cargo's `Running … (PATH)` line: listed to find
    /// the tests that never finished when the run is stopped.
    pub(crate) current_executable: Option<String>,
    /// Every binary's executable, to re-run one of its tests alone.
    pub(crate) executables: BTreeMap<String, String>,
    /// The failed test whose output lines are being gathered.
    capturing: Option<(TestId, Vec<String>)>,
    /// Tests libtest reported `ignored`: they finished, without running.
    ignored: std::collections::BTreeSet<(String, String)>,
    /// A test whose status line was cut by a line the test wrote straight
    /// to stderr (taskleak's notes, under `--test-threads=1`): its `ok` or
    /// `FAILED` comes on a line of its own.
    cut_short: Option<String>,
}

impl Outcomes {
    /// Takes one line of output; returns the test it finished, if any.
    pub(crate) fn take_line(&mut self, line: &str) -> Option<(TestId, bool)> {
        let finished = self.take_status_line(line);
        if finished.is_none() {
            self.capture(line);
        }
        finished
    }

    /// Gathers the output of a failed test: libtest prints it after the
    /// binary's tests, under `---- NAME stdout ----`; nextest right after
    /// the test's `FAIL` line, indented.
    fn capture(&mut self, line: &str) {
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            self.end_capture();
            let test = TestId {
                binary: self.current_binary.clone().unwrap_or_default(),
                name: name.to_owned(),
            };
            self.capturing = Some((test, Vec::new()));
            return;
        }
        let ends = trimmed == "failures:"
            || trimmed == "successes:"
            || trimmed.starts_with("test result:")
            || trimmed.starts_with("────")
            || trimmed.starts_with("Running ")
            || trimmed.starts_with("Doc-tests ");
        if ends {
            self.end_capture();
            return;
        }
        if let Some((_, lines)) = &mut self.capturing {
            lines.push(line.to_owned());
        }
    }

    fn end_capture(&mut self) {
        if let Some((test, lines)) = self.capturing.take() {
            let text = tidy_output(&lines);
            if !text.is_empty() {
                self.output.insert(test, text);
            }
        }
    }

    /// Ends the output gathered last, at the end of the run.
    pub(crate) fn finish(&mut self) {
        self.end_capture();
    }

    /// The test binary running last, as cargo names it.
    pub(crate) fn current_binary(&self) -> Option<&str> {
        self.current_binary.as_deref()
    }

    fn take_status_line(&mut self, line: &str) -> Option<(TestId, bool)> {
        let trimmed = line.trim();
        // cargo: `Running unittests src/lib.rs (target/debug/deps/alpha-0123456789abcdef)`
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            if let Some(path) = rest.rsplit_once(" (").and_then(|(_, path)| path.strip_suffix(')')) {
                self.current_binary = Some(binary_of_path(path));
                self.current_executable = Some(path.to_owned());
                self.executables.insert(binary_of_path(path), path.to_owned());
            }
            return None;
        }
        if let Some(krate) = trimmed.strip_prefix("Doc-tests ") {
            self.current_binary = Some(format!("{krate}{DOCTESTS_SUFFIX}"));
            self.current_executable = None;
            return None;
        }
        if trimmed.starts_with("error: test failed, to rerun pass") {
            if let Some(binary) = &self.current_binary {
                self.failed_binaries.push(binary.clone());
            }
            return None;
        }
        // libtest, unindented (nextest indents the output it captured).
        let status_line = match (&self.cut_short, trimmed) {
            (Some(_), "ok" | "FAILED") => self.cut_short.take().map(|name| (name, trimmed.to_owned())),
            _ => line.strip_prefix("test ").and_then(|rest| {
                // A test's name never holds ` ... `; what follows may.
                let (name, status) = rest.split_once(" ... ")?;
                Some((name.to_owned(), status.to_owned()))
            }),
        };
        if let Some((name, status)) = status_line {
            let name = name.as_str();
            let passed = match status.trim() {
                "ok" => true,
                "FAILED" => false,
                status if status.is_empty() || status.starts_with("taskleak: ") => {
                    self.cut_short = Some(name.to_owned());
                    return None;
                }
                status => {
                    // ignored (maybe with a reason), bench
                    if status.starts_with("ignored") {
                        let binary = self.current_binary.clone().unwrap_or_default();
                        self.ignored.insert((binary, name.to_owned()));
                    }
                    return None;
                }
            };
            let id = TestId {
                binary: self.current_binary.clone().unwrap_or_default(),
                name: name.trim_end_matches(" - should panic").to_owned(),
            };
            self.tests.insert(id.clone(), passed);
            return Some((id, passed));
        }
        let (id, passed) = nextest_line(line)?;
        self.tests.insert(id.clone(), passed);
        // What a failed test printed follows its status line.
        self.end_capture();
        if !passed {
            self.capturing = Some((id.clone(), Vec::new()));
        }
        Some((id, passed))
    }

    /// Whether `name` of the current binary has finished (passed, failed
    /// or was ignored).
    pub(crate) fn finished(&self, binary: &str, name: &str) -> bool {
        self.tests.contains_key(&TestId {
            binary: binary.to_owned(),
            name: name.to_owned(),
        }) || self.ignored.contains(&(binary.to_owned(), name.to_owned()))
    }

    /// The tests that failed.
    pub(crate) fn failed(&self) -> impl Iterator<Item = &TestId> {
        self.tests.iter().filter(|(_, passed)| !**passed).map(|(id, _)| id)
    }
}

/// A failed test's output without the lines around it: nextest's indent,
/// blank lines at either end, and libtest's backtrace hint.
fn tidy_output(lines: &[String]) -> String {
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let kept: Vec<&str> = lines
        .iter()
        .map(|line| line.get(indent..).unwrap_or_else(|| line.trim_start()))
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE=1`"))
        .collect();
    kept.join("\n").trim_matches('\n').trim_end().to_owned()
}

/// The one-line reason in a failed test's output: the message of its panic
/// (the line after `thread '…' panicked at …:`), or the `Error: …` its
/// `Result` returned.
pub(crate) fn reason_in(output: &str) -> Option<&str> {
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.starts_with("thread '") && line.contains(" panicked at ") {
            return lines.next().map(str::trim).filter(|message| !message.is_empty());
        }
        if line.starts_with("Error: ") {
            return Some(line);
        }
    }
    None
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
        "FAIL" | "SIGSEGV" | "SIGABRT" | "SIGBUS" | "SIGILL" | "SIGKILL" | "SIGTERM" | "SIGINT" | "ABORT"
        | "TIMEOUT" | "LEAK-FAIL" => false,
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
    fn a_status_line_cut_by_a_note_on_stderr_still_counts() {
        // Under `--test-threads=1` libtest prints `test NAME ... ` before
        // running the test; a note written straight to stderr lands there.
        let mut outcomes = Outcomes::default();
        for line in [
            "     Running unittests src/lib.rs (target/taskleak/debug/deps/gamma-0123456789abcdef)",
            "test tests::local ... taskleak: note: while `tests::local` ran, tokio tasks started outside … ... more",
            "ok",
            "test tests::flusher ... taskleak: inconclusive: `tests::flusher` left 1 thread alive",
            "taskleak: note: a second line",
            "FAILED",
            "test tests::after ... ok",
        ] {
            outcomes.take_line(line);
        }
        let id = |name: &str| TestId {
            binary: "gamma".into(),
            name: name.into(),
        };
        assert_eq!(outcomes.tests.get(&id("tests::local")), Some(&true));
        assert_eq!(outcomes.tests.get(&id("tests::flusher")), Some(&false));
        assert_eq!(outcomes.tests.get(&id("tests::after")), Some(&true));
        assert_eq!(outcomes.tests.len(), 3);
    }

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
    fn a_failed_tests_output_is_kept_with_its_reason() {
        let mut outcomes = Outcomes::default();
        for line in [
            "     Running unittests src/lib.rs (target/taskleak/debug/deps/alpha-0123456789abcdef)",
            "test tests::fails ... FAILED",
            "test tests::errs ... FAILED",
            "test tests::later ... ignored, needs a network",
            "",
            "failures:",
            "",
            "---- tests::fails stdout ----",
            "",
            "thread 'tests::fails' (123) panicked at alpha/src/lib.rs:41:9:",
            "failing on request",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
            "",
            "---- tests::errs stdout ----",
            "Error: \"no such file\"",
            "",
            "failures:",
            "    tests::fails",
            "",
            "test result: FAILED. 0 passed; 2 failed; 1 ignored",
        ] {
            outcomes.take_line(line);
        }
        outcomes.finish();
        let id = |name: &str| TestId {
            binary: "alpha".into(),
            name: name.into(),
        };
        let fails = &outcomes.output[&id("tests::fails")];
        assert!(fails.starts_with("thread 'tests::fails'"), "{fails}");
        assert!(!fails.contains("RUST_BACKTRACE"), "{fails}");
        assert_eq!(reason_in(fails), Some("failing on request"));
        assert_eq!(
            reason_in(&outcomes.output[&id("tests::errs")]),
            Some("Error: \"no such file\"")
        );
        assert!(outcomes.finished("alpha", "tests::later"));
        assert!(!outcomes.finished("alpha", "tests::other"));
        assert_eq!(
            outcomes.current_executable.as_deref(),
            Some("target/taskleak/debug/deps/alpha-0123456789abcdef")
        );
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
        assert!(
            outcomes.output[&id("leaky_tests", "tests::leaky")].starts_with("test tests::leaky ... FAILED"),
            "{:?}",
            outcomes.output
        );
    }
}
