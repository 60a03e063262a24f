//! This process's tests as libtest runs them: the binary's own `--list`, given the process's filters, once per process, bounded.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the listing may take: past it, the tests are unknown.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);

/// The tests (and benchmarks) libtest runs in this process, by name, from
/// one `--list` run of the binary with this process's filters — run once
/// per process, only when a caller asks, with checks off and no records.
/// `None` when the listing fails, is not libtest's, or takes longer than
/// [`LISTING_TIMEOUT`].
///
/// Callers must know the process is a libtest binary first: a
/// `harness = false` binary's `main` would run again instead of listing.
pub(crate) fn listed() -> Option<&'static [String]> {
    static LISTED: OnceLock<Option<Vec<String>>> = OnceLock::new();
    LISTED.get_or_init(list).as_deref()
}

fn list() -> Option<Vec<String>> {
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
    parse(&String::from_utf8_lossy(&text))
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

/// The names of libtest's `NAME: test` / `NAME: bench` lines; `None` if
/// its closing `N tests, M benchmarks` line is missing (not libtest's).
fn parse(stdout: &str) -> Option<Vec<String>> {
    let names = stdout
        .lines()
        .filter_map(|line| {
            [": test", ": bench", ": benchmark"]
                .iter()
                .find_map(|kind| line.strip_suffix(kind))
        })
        .map(str::to_owned)
        .collect();
    stdout
        .lines()
        .any(|line| line.ends_with(" benchmarks") || line.ends_with(" benchmark"))
        .then_some(names)
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
    fn only_libtests_layout_is_a_listing() {
        assert_eq!(
            parse("a::one: test\nb: test\nc: benchmark\n\n2 tests, 1 benchmark\n"),
            Some(vec!["a::one".to_owned(), "b".to_owned(), "c".to_owned()])
        );
        assert_eq!(parse("\n0 tests, 0 benchmarks\n"), Some(Vec::new()));
        assert_eq!(parse("whatever main printed\n"), None);
    }

    #[test]
    fn this_processs_tests_are_listed() {
        // This binary is a libtest binary; the running test is among them.
        let name = std::thread::current().name().map(str::to_owned);
        let listed = listed().expect("a listing");
        if let Some(name) = name {
            assert!(listed.contains(&name), "{name} not in {listed:?}");
        }
    }
}
