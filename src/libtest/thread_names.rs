//! The kernel names a thread inherits rather than sets: libtest's test-thread names and the main thread's.
//!
//! Linux gives a new thread its creator's kernel name (`comm`, 15 bytes);
//! only `std::thread::Builder::name` (or `prctl`) gives it one of its own.
//! A thread started without a name by a test's thread therefore carries
//! libtest's name for that test (`tests::skipped_` for `tests::skipped_test`),
//! and one started from `main` the executable's. Neither is the thread's own:
//! reports show such a thread as unnamed, and nothing keys on that name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The bytes of a name the kernel keeps.
const COMM_BYTES: usize = 15;

/// Kernel names checked tests' threads had before taskleak marked them:
/// libtest's names for those tests, seen as each began.
/// A list with repeats, added to on every check and looked up only for a
/// thread that outlived its test: recording must cost next to nothing.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether this process is a libtest binary, whose `--list` lists its
/// tests without running them (a `harness = false` binary would run).
static LIBTEST: AtomicBool = AtomicBool::new(false);

/// Says this process is a libtest test binary: its tests can be listed.
pub(crate) fn in_libtest() {
    LIBTEST.store(true, Ordering::Relaxed);
}

/// Records the kernel name a checked test's thread had before its mark.
pub(crate) fn record_test_thread(kernel_name: Option<String>) {
    in_libtest();
    let Some(name) = kernel_name.filter(|name| !name.is_empty()) else {
        return;
    };
    SEEN.lock().unwrap_or_else(PoisonError::into_inner).push(name);
}

/// The kernel name `name` becomes: its first 15 bytes, as the kernel and
/// std cut it (bytes, not characters).
fn as_comm(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(COMM_BYTES)]
}

/// Whether `kernel_name` is libtest's name for a test thread of this
/// process: one seen as a checked test began (cheap, no listing).
pub(crate) fn is_seen_test_thread(kernel_name: &str) -> bool {
    SEEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|name| name == kernel_name)
}

/// Whether `kernel_name` is inherited, never set: libtest's name for any
/// test of this binary (seen, or listed with `--list`, once per process
/// and only when asked), or the main thread's.
pub(crate) fn is_inherited(kernel_name: &str) -> bool {
    is_main_thread_name(kernel_name)
        || is_seen_test_thread(kernel_name)
        || listed().iter().any(|test| as_comm(test) == kernel_name.as_bytes())
}

/// Whether `kernel_name` is the main thread's (the executable's name),
/// which threads started from `main` without a name carry.
pub(crate) fn is_main_thread_name(kernel_name: &str) -> bool {
    static MAIN: OnceLock<Option<String>> = OnceLock::new();
    MAIN.get_or_init(main_thread_name)
        .as_deref()
        .is_some_and(|main| main == kernel_name)
}

#[cfg(target_os = "linux")]
fn main_thread_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/self/comm").ok()?;
    Some(name.trim_end_matches('\n').to_owned())
}

#[cfg(not(target_os = "linux"))]
fn main_thread_name() -> Option<String> {
    None
}

/// This process's tests ([`crate::libtest::list::listed`], with its filters:
/// only tests that run can have started its threads): libtest names each
/// test's thread after the test. Empty outside a libtest binary, or if the
/// listing fails.
fn listed() -> &'static [String] {
    if !LIBTEST.load(Ordering::Relaxed) {
        return &[];
    }
    crate::libtest::list::listed().unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_tests_become_their_threads_kernel_names() {
        assert_eq!(as_comm("tests::skipped_test"), b"tests::skipped_");
        assert_eq!(as_comm("short"), b"short");
    }

    #[test]
    fn this_binarys_own_tests_are_listed() {
        in_libtest();
        // The test running now is one of them, its thread named after it.
        let name = std::thread::current().name().map(str::to_owned);
        let comm = crate::threads::proc_threads::current_name();
        if let (Some(name), Some(comm)) = (name, comm) {
            assert_eq!(as_comm(&name), comm.as_bytes());
            assert!(is_inherited(&comm), "{comm} not found among {:?}", listed());
        }
        assert!(!is_inherited("config-watcher"));
    }
}
