//! A whole test binary checked once, at its end (goleak's `VerifyTestMain`):
//! the threads it started and the tasks on the runtimes registered for it,
//! still alive after every test ran.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::config::Options;
use crate::config::{Mode, Settings};
use crate::report::{LeakReport, Scope};
use crate::tasks::Snapshot;
use crate::tasks::Tracker;
use crate::threads::proc_threads;
use crate::threads::{RuntimeThreads, ThreadSnapshot};

/// The exit code of a binary that leaked, as libtest's for a failure.
const LEAKED_EXIT_CODE: i32 = 101;

/// Runtimes whose tasks the end-of-binary check covers.
static REGISTERED: Mutex<Vec<Snapshot>> = Mutex::new(Vec::new());

/// What the binary was started as, and the threads alive before `main`.
struct Start {
    binary: String,
    /// Where its crate's `taskleak.toml` is.
    manifest_dir: &'static str,
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
pub fn check_at_exit(tracker: &Tracker, handle: &tokio::runtime::Handle) -> Result<(), crate::error::Error> {
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
    let binary = crate::report::record::binary_name();
    let before: HashSet<i32> = proc_threads::ids()
        .map(|ids| ids.into_iter().collect())
        .unwrap_or_default();
    // Cargo runs test binaries with the package's manifest directory set.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").ok();
    let output = main();
    if let Some(verdict) = check(&binary, manifest_dir.as_deref(), before) {
        let _ = writeln!(std::io::stderr().lock(), "{}", verdict.text);
        if verdict.fails {
            std::process::exit(LEAKED_EXIT_CODE);
        }
    }
    output
}

/// Called before `main` by [`verify_test_binary!`](crate::verify_test_binary):
/// records the threads alive and has the check run at exit.
pub(crate) fn start(binary: &'static str, manifest_dir: &'static str) {
    // `verify_test_binary!` is for libtest binaries only.
    crate::libtest::in_libtest();
    let threads = proc_threads::ids()
        .map(|ids| ids.into_iter().collect())
        .unwrap_or_default();
    let first = START
        .set(Start {
            binary: binary.to_owned(),
            manifest_dir,
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
        crate::threads::say_once("taskleak: the end-of-binary check runs on Unix only; this binary is not checked");
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
        .spawn(|| check(&start.binary, Some(start.manifest_dir), start.threads.clone()));
    let verdict = match checked.map(std::thread::JoinHandle::join) {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(_)) => Some(Verdict::failure(
            "taskleak: the end-of-binary check panicked; see above".to_owned(),
        )),
        Err(error) => Some(Verdict::failure(format!(
            "taskleak: could not run the end-of-binary check: {error}"
        ))),
    };
    let Some(verdict) = verdict else { return };
    let _ = writeln!(std::io::stderr().lock(), "\n{}", verdict.text);
    if verdict.fails {
        // SAFETY: ends the process at once with the failure code; the
        // other exit handlers are skipped, as a failed test binary's are.
        #[cfg(unix)]
        unsafe {
            libc::_exit(LEAKED_EXIT_CODE)
        };
    }
}

/// What the end-of-binary check has to say: a report, or why it could not
/// run; and whether that fails the binary.
struct Verdict {
    text: String,
    fails: bool,
}

impl Verdict {
    fn failure(text: String) -> Self {
        Verdict { text, fails: true }
    }
}

/// The binary's options: its crate's `taskleak.toml`, under the
/// environment's settings (`TASKLEAK_MODE=off` means no check).
fn options(manifest_dir: Option<&str>) -> Result<Option<(Options, Mode)>, crate::error::Error> {
    let settings = Settings::from_env()?;
    if settings.mode == Mode::Off {
        return Ok(None);
    }
    let options = match manifest_dir {
        Some(dir) => crate::config::options_for_crate(dir)?,
        None => Options::new(),
    };
    Ok(Some((settings.apply(options), settings.mode)))
}

/// What the binary left running, if anything.
fn check(binary: &str, manifest_dir: Option<&str>, before: HashSet<i32>) -> Option<Verdict> {
    let (options, mode) = match options(manifest_dir) {
        Ok(Some(found)) => found,
        Ok(None) => return None,
        Err(error) => return Some(Verdict::failure(format!("taskleak: {error}"))),
    };
    let label = binary.to_owned();
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
    let reports: Vec<LeakReport> = reports.into_iter().map(LeakReport::of_whole_binary).collect();
    for report in &reports {
        let verdict = crate::report::record::Verdict {
            leak_fails: mode == Mode::Fail && report.is_leak(),
            own_failure: false,
            unwatched: Default::default(),
        };
        crate::report::record::write(report, verdict);
    }
    if reports.is_empty() {
        let verdict = crate::report::record::Verdict {
            leak_fails: false,
            own_failure: false,
            unwatched: Default::default(),
        };
        crate::report::record::write_clean(&label, Scope::Binary, verdict);
    }
    let text: Vec<String> = reports.iter().map(ToString::to_string).collect();
    let fails = mode == Mode::Fail && reports.iter().any(LeakReport::is_leak);
    (!text.is_empty()).then(|| Verdict {
        text: text.join("\n"),
        fails,
    })
}
