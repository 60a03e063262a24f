//! How many tests libtest runs in this process: the binary's own `--list`,
//! given the process's filters, counts them as libtest will.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the listing may take: past it, the count is unknown.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);

/// The number of tests libtest runs in this process, if it can be known:
/// a filter selecting one test makes it the only one, and then every
/// thread started during it is its own. Costs one `--list` run of the
/// binary, once per process, and only when a check needs it (threads no
/// test could be tied to). `None` off libtest's harness, or when the
/// listing fails: the caller must then not claim a count.
///
/// `test` is the checked test: only a test libtest runs on a thread named
/// after it is known to run under libtest (a `harness = false` binary's
/// `main` would run again instead of listing).
pub(crate) fn tests_in_process(test: &str) -> Option<usize> {
    if std::thread::current().name() != Some(test) {
        return None;
    }
    static COUNT: OnceLock<Option<usize>> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        let mut child = Command::new(exe)
            .args(list_args(std::env::args().skip(1)))
            // The listing runs no test: no check, no record of one.
            .env("TASKLEAK_MODE", "off")
            .env_remove("TASKLEAK_RECORD_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // Read on a thread of its own, so that the wait below has a bound
        // even if the listing never ends.
        let mut stdout = child.stdout.take()?;
        let reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut stdout, &mut text).map(|_| text)
        });
        let deadline = Instant::now() + LISTING_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        };
        let text = reader.join().ok()?.ok()?;
        if !status.success() {
            return None;
        }
        count_listed(&String::from_utf8_lossy(&text))
    })
}

/// The process's arguments for a listing of the same tests: what selects
/// tests (filters, `--exact`, `--skip`, `--ignored`, `--include-ignored`)
/// stays; what changes the listing's layout or writes files goes.
fn list_args(args: impl Iterator<Item = String>) -> Vec<String> {
    // Options of libtest's whose value is the next argument, dropped with it.
    const DROPPED_WITH_VALUE: &[&str] = &["--format", "--logfile", "--test-threads", "--color", "--shuffle-seed"];
    const DROPPED: &[&str] = &["-q", "--quiet", "--list", "--nocapture", "--show-output", "--shuffle"];
    let mut kept = Vec::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if DROPPED_WITH_VALUE.contains(&arg.as_str()) {
            args.next();
        } else if DROPPED.contains(&arg.as_str())
            || DROPPED_WITH_VALUE
                .iter()
                .any(|option| arg.strip_prefix(option).is_some_and(|rest| rest.starts_with('=')))
        {
        } else {
            kept.push(arg);
        }
    }
    kept.push("--list".to_owned());
    kept
}

/// Counts libtest's `NAME: test` lines; `None` if its closing
/// `N tests, M benchmarks` line is missing (not libtest's listing).
fn count_listed(stdout: &str) -> Option<usize> {
    let tests = stdout
        .lines()
        .filter(|line| {
            [": test", ": bench", ": benchmark"]
                .iter()
                .any(|kind| line.ends_with(kind))
        })
        .count();
    stdout
        .lines()
        .any(|line| line.ends_with(" benchmarks") || line.ends_with(" benchmark"))
        .then_some(tests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list_args(list.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn the_listing_keeps_what_selects_tests_and_drops_the_rest() {
        assert_eq!(args(&[]), ["--list"]);
        assert_eq!(
            args(&["flusher", "--test-threads", "2", "--skip", "slow", "--nocapture"]),
            ["flusher", "--skip", "slow", "--list"]
        );
        assert_eq!(
            args(&["--exact", "a::t", "--format=json", "--ignored", "--logfile", "x"]),
            ["--exact", "a::t", "--ignored", "--list"]
        );
    }

    #[test]
    fn listed_tests_are_counted_only_in_libtests_layout() {
        assert_eq!(
            count_listed("a::one: test\nb: test\n\n2 tests, 0 benchmarks\n"),
            Some(2)
        );
        assert_eq!(count_listed("a::one: test\n\n1 test, 0 benchmarks\n"), Some(1));
        assert_eq!(count_listed("\n0 tests, 0 benchmarks\n"), Some(0));
        assert_eq!(count_listed("whatever main printed\n"), None);
    }

    #[test]
    fn the_tests_of_this_process_are_counted() {
        // libtest runs each test on a thread named after it.
        let name = std::thread::current().name().map(str::to_owned);
        let count = name.as_deref().and_then(tests_in_process);
        assert!(count.is_some_and(|count| count >= 1), "{count:?}");
    }

    #[test]
    fn a_thread_not_named_after_the_test_is_not_listed() {
        // Run on a thread of its own: libtest's is named after this test.
        let count = std::thread::spawn(|| tests_in_process("no::such::test")).join();
        assert_eq!(count.ok(), Some(None));
    }
}
