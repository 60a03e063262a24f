//! A whole test binary checked once, at its end (goleak's `VerifyTestMain`):
//! the threads it started and the tasks on the runtimes registered for it,
//! still alive after every test ran.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::options::Options;
use crate::proc_threads;
use crate::registry::Tracker;
use crate::report::LeakReport;
use crate::snapshot::Snapshot;
use crate::thread_check::{RuntimeThreads, ThreadSnapshot};

/// The exit code of a binary that leaked, as libtest's for a failure.
const LEAKED_EXIT_CODE: i32 = 101;

/// Runtimes whose tasks the end-of-binary check covers.
static REGISTERED: Mutex<Vec<Snapshot>> = Mutex::new(Vec::new());

/// What the binary was started as, and the threads alive before `main`.
struct Start {
    binary: String,
    threads: HashSet<i32>,
}

static START: OnceLock<Start> = OnceLock::new();

/// Has the end of this test binary check the tasks of the runtime `handle`
/// belongs to: those spawned from now on and still alive when every test
/// has run are leaks. For a runtime shared by the tests (a global
/// `LazyLock<Runtime>`), with [`verify_test_binary!`](crate::verify_test_binary)
/// in the test file.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tracker = taskleak::Tracker::new();
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// tracker.install(&mut builder);
/// let runtime = builder.enable_all().build()?;
/// taskleak::check_at_exit(&tracker, runtime.handle())?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::NotInstalled`](crate::Error::NotInstalled) when built with
/// `--cfg tokio_unstable` and `tracker` was not installed on that runtime.
pub fn check_at_exit(tracker: &Tracker, handle: &tokio::runtime::Handle) -> Result<(), crate::Error> {
    let snapshot = tracker.snapshot_of(handle)?;
    REGISTERED.lock().unwrap_or_else(PoisonError::into_inner).push(snapshot);
    Ok(())
}

/// Runs `main` and then checks what it left running: threads it started and
/// tasks on runtimes registered with [`check_at_exit`]. For test binaries
/// with `harness = false`, which have a `main` of their own. If anything
/// leaked, prints the report and exits the process with code 101.
///
/// ```
/// // `fn main` of a `harness = false` test binary:
/// taskleak::verify_main(|| {
///     // … the binary's own tests …
///     std::thread::spawn(|| 1 + 1).join().unwrap();
/// });
/// ```
pub fn verify_main<T>(main: impl FnOnce() -> T) -> T {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|path| Some(path.file_stem()?.to_string_lossy().into_owned()))
        .map(|stem| without_cargo_hash(&stem).to_owned())
        .unwrap_or_else(|| "the binary".to_owned());
    let before: HashSet<i32> = proc_threads::ids()
        .map(|ids| ids.into_iter().collect())
        .unwrap_or_default();
    let output = main();
    if let Some(text) = check(&binary, before) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
        std::process::exit(LEAKED_EXIT_CODE);
    }
    output
}

/// `binary_main-2c679bbe0459b500` is cargo's `binary_main`.
fn without_cargo_hash(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => stem,
    }
}

/// Called before `main` by [`verify_test_binary!`](crate::verify_test_binary):
/// records the threads alive and has the check run at exit.
pub(crate) fn start(binary: &'static str) {
    let threads = proc_threads::ids()
        .map(|ids| ids.into_iter().collect())
        .unwrap_or_default();
    let first = START
        .set(Start {
            binary: binary.to_owned(),
            threads,
        })
        .is_ok();
    #[cfg(unix)]
    if first {
        // SAFETY: `at_exit` is an `extern "C" fn()` that lives as long as
        // the program; registering it has no other precondition.
        unsafe { libc::atexit(at_exit) };
    }
    #[cfg(not(unix))]
    if first {
        crate::isolation::say_once("taskleak: the end-of-binary check runs on Unix only; this binary is not checked");
    }
}

/// Runs as the process exits, after libtest has reported every test.
#[cfg_attr(not(unix), allow(dead_code))]
extern "C" fn at_exit() {
    let Some(start) = START.get() else { return };
    // libtest exits from the main thread once every test has run; an exit
    // from any other thread (a watchdog, a test calling `exit`) comes while
    // tests may still run, and while that thread may hold what the check
    // needs.
    #[cfg(unix)]
    // SAFETY: `getpid` has no preconditions.
    if proc_threads::current_tid() != unsafe { libc::getpid() } {
        return;
    }
    // On a thread of its own: this one's thread-locals (tokio's, std's) are
    // already destroyed when exit handlers run.
    let checked = std::thread::Builder::new()
        .name("taskleak-final".into())
        .spawn(|| check(&start.binary, start.threads.clone()));
    let report = match checked.map(std::thread::JoinHandle::join) {
        Ok(Ok(report)) => report,
        Ok(Err(_)) => Some("taskleak: the end-of-binary check panicked; see above".to_owned()),
        Err(error) => Some(format!("taskleak: could not run the end-of-binary check: {error}")),
    };
    if let Some(text) = report {
        let _ = writeln!(std::io::stderr().lock(), "\n{text}");
        // SAFETY: ends the process at once with the failure code; the
        // other exit handlers are skipped, as a failed test binary's are.
        #[cfg(unix)]
        unsafe {
            libc::_exit(LEAKED_EXIT_CODE)
        };
    }
}

/// The report of what the binary left running, if anything.
fn check(binary: &str, before: HashSet<i32>) -> Option<String> {
    let options = Options::new();
    let label = binary.to_owned();
    let note = "checked once, at the end of the test binary, after every test in it ran".to_owned();
    let mut reports: Vec<LeakReport> = Vec::new();
    let registered = std::mem::take(&mut *REGISTERED.lock().unwrap_or_else(PoisonError::into_inner));
    for snapshot in registered {
        if let Some(report) = snapshot.check_at_exit(&options, &label) {
            reports.push(report);
        }
    }
    if proc_threads::ids().is_ok() {
        let threads = ThreadSnapshot::of_process(before, "every test of the binary has run");
        let found = threads.check(&options, &RuntimeThreads::default());
        if !found.leaked.is_empty() {
            reports.push(LeakReport::of_threads(&label, found));
        }
    }
    for report in &mut reports {
        report.notes.push(note.clone());
    }
    let text: Vec<String> = reports.iter().map(ToString::to_string).collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_hashes_are_dropped_from_binary_names() {
        assert_eq!(without_cargo_hash("binary_main-2c679bbe0459b500"), "binary_main");
        assert_eq!(without_cargo_hash("my-tool"), "my-tool");
    }
}
