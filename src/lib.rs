//! Fail tests that leak tokio tasks or OS threads, and say where each leaked
//! task was spawned and where each task or thread is stuck — Go's `goleak`,
//! for Rust.
//!
//! A leaked task was started expecting to end and never does: it keeps its
//! memory, sockets and locks for the life of the process. `taskleak` checks,
//! after each test body, that every task and thread the test started has
//! ended.
//!
//! # Quickstart
//!
//! ```toml
//! [dev-dependencies]
//! taskleak = "0.1"
//! ```
//!
//! ```
//! #[taskleak::verify_no_leaks]
//! #[tokio::test]
//! async fn handles_request() {
//!     let worker = tokio::spawn(async { 1 + 1 });
//!     assert_eq!(worker.await.unwrap(), 2);   // joined: nothing leaks
//! }
//! # fn main() {}
//! ```
//!
//! On a plain `#[test]`, it checks the threads the test starts (Linux):
//!
//! ```
//! #[taskleak::verify_no_leaks]
//! #[test]
//! fn stops_its_worker() {
//!     let worker = std::thread::spawn(|| 1 + 1);
//!     assert_eq!(worker.join().unwrap(), 2);   // joined: nothing leaks
//! }
//! # fn main() {}
//! ```
//!
//! A test whose code leaves a task running fails with a report like:
//!
//! ```text
//! taskleak: 1 task leaked by `handles_request` (still alive after 20 retries over 0.43 s)
//!
//!   1 task  spawned at src/cache.rs:41:9  (task id 7)
//!       41 | tokio::spawn(refresh_loop(notify.clone()));
//!     stuck at:
//!       my_crate::cache::Cache::refresh_loop  src/cache.rs:48:31
//!       tokio::sync::notify::Notified         (tokio)
//!     cause: waiting for a Notify that has not been notified
//!     fix:   notify on every path, including errors; or wait with a timeout
//!            (https://docs.rs/taskleak/latest/taskleak/fixes/index.html#notify)
//! ```
//!
//! Spawn sites and stacks need tokio's unstable hooks. Add to
//! `.cargo/config.toml` (without it, tests still fail on leaks, from the
//! live-task count alone):
//!
//! ```toml
//! [build]
//! rustflags = ["--cfg", "tokio_unstable"]
//! ```
//!
//! # Writing tests
//!
//! Put `#[taskleak::verify_no_leaks]` **above** `#[tokio::test]`: it takes
//! over the runtime that `#[tokio::test]` would build (same flavor,
//! `worker_threads`, `start_paused`, …) so that it can watch every task
//! spawned on it. Below `#[tokio::test]` it is a compile error.
//!
//! The check, after the body returns:
//!
//! 1. tasks alive before the body are not the test's;
//! 2. the others get a grace period: re-checked up to `max_retries` times
//!    (20), sleeping from 1 µs doubling up to `max_sleep` (100 ms), so at
//!    most about 0.43 s — work that ends shortly after the body passes;
//! 3. survivors are described from tokio's task dump (only if some
//!    survive: a clean test takes no dump), filtered by the ignore rules and
//!    grouped by spawn site and stack;
//! 4. the test fails with the report. If the body itself panicked or
//!    returned `Err`, that stays the test's failure and the report follows
//!    it on stderr. A `#[should_panic]` test that leaks fails too, with its
//!    expected panic and the report both shown (a leak is never the panic
//!    it expects); one that does not leak behaves as without taskleak.
//!
//! Equivalent code without the attribute, with the programmatic API:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tracker = taskleak::Tracker::new();
//! let mut builder = tokio::runtime::Builder::new_current_thread();
//! tracker.install(&mut builder);
//! let runtime = builder.enable_all().build()?;
//! runtime.block_on(async {
//!     let snapshot = tracker.snapshot()?;
//!     // … the test body …
//!     snapshot.verify(&taskleak::Options::new()).await?;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! # Options
//!
//! | attribute argument | [`Options`] method | default | needs `tokio_unstable` |
//! |---|---|---|---|
//! | `max_retries = 20` | [`Options::max_retries`] | [`Options::DEFAULT_MAX_RETRIES`] | no |
//! | `max_sleep = "100ms"` | [`Options::max_sleep`] | [`Options::DEFAULT_MAX_SLEEP`] | no |
//! | `ignore_top_function = "regex"` | [`Options::ignore_top_function`] | none | yes |
//! | `ignore_any_function = "regex"` | [`Options::ignore_any_function`] | none | yes |
//! | `ignore_spawned_at = "regex"` | [`Options::ignore_spawned_at`] | none | yes |
//! | `ignore_thread_name = "regex"` | [`Options::ignore_thread_name`] | none | no |
//! | `ignore_dependency = "crate"` | [`Options::ignore_dependency`] | none | for tasks |
//! | `threads = false` | [`Options::check_threads`] | `true` | no |
//! | `serial = true` | [`Options::serial`] | `false` | no |
//! | `runtime = "PATH"` (plain tests) | — (a [`SharedRuntime`]) | none | yes |
//! | `crate = "path"` | — (attribute only) | `::taskleak` | no |
//!
//! An invalid regex or unknown argument is a compile error pointing at it.
//! Task names are the cargo feature `task-names` (off by default: it turns
//! on tokio's `tracing` feature, which wraps every task in a span).
//!
//! For a `#[test]` in `src/` outside `#[cfg(test)]`, where the dev-dependency
//! does not exist in a normal build, write
//! `#[cfg_attr(test, taskleak::verify_no_leaks)]`. Lifetime-generic tests
//! and `#[tokio::test(flavor = "local")]` (with `spawn_local`) are checked
//! like any other.
//!
//! A `taskleak.toml` beside `Cargo.toml` sets defaults and ignore rules for
//! every check in the crate (see `docs/options.md`).
//!
//! For CI, environment variables change every check without editing tests:
//! `TASKLEAK_MODE=warn` (report, don't fail) or `off`, and the floors
//! `TASKLEAK_MIN_RETRIES=40` and `TASKLEAK_MIN_SLEEP_CAP=200ms` for slow
//! machines (see `docs/options.md`).
//! Without `tokio_unstable` the ignore rules cannot be evaluated; a leak is
//! then reported with a note saying so.
//!
//! # Stable and unstable mode
//!
//! | | `--cfg tokio_unstable` | without |
//! |---|---|---|
//! | detects leaked tasks | yes, by task id | yes, by live-task count |
//! | task ids, spawn sites | yes | no |
//! | async stacks | Linux on x86, x86_64, aarch64, s390x | no |
//! | "running, never yielded" | yes | no |
//! | ignore rules | yes | no (thread rules: yes) |
//! | leaked threads, native stacks | yes (Linux) | yes (Linux) |
//!
//! # Monitoring a running service
//!
//! Leaks that tests miss show in production as a task count that only
//! grows. A [`Monitor`](monitor::Monitor) samples it (and the thread count) and warns through
//! `tracing` when its floor keeps rising; a [`Dumper`](monitor::Dumper) groups the live
//! tasks as "N tasks @ spawn site + stack", largest first, to say where;
//! with the `http` feature, `taskleak::monitor::http` serves that dump and checks it
//! from a test. See `docs/monitoring.md`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tracker = taskleak::Tracker::new();
//! let mut builder = tokio::runtime::Builder::new_current_thread();
//! tracker.install(&mut builder);
//! let runtime = builder.enable_all().build()?;
//!
//! let monitor = taskleak::monitor::Monitor::builder(runtime.handle())
//!     .on_growth(|growth| eprintln!("{growth}"))
//!     .start()?;
//! let dumper = taskleak::monitor::Dumper::new(runtime.handle()).tracker(&tracker);
//! let dump = runtime.block_on(async {
//!     tokio::spawn(std::future::pending::<()>());
//!     tokio::task::yield_now().await;
//!     dumper.dump().await
//! })?;
//! assert_eq!(dump.groups()[0].count(), 1);
//! print!("{dump}");
//! # drop(monitor);
//! # Ok(()) }
//! ```
//!
//! # Limitations
//!
//! - Tasks of a `LocalSet` and futures inside `FuturesUnordered` are not
//!   tokio tasks of the runtime: they are not checked as tasks of their own.
//!   With `--cfg tokio_unstable`, a test body that starts tokio tasks no
//!   watched runtime sees (in a `LocalSet`, on a global runtime) gets a note
//!   on the process's stderr saying they were not checked.
//!   tokio's dump cannot see waits inside such combinators, nor in
//!   `TcpListener::accept`: those tasks are reported as waiting on what the
//!   dump cannot see, with the source lines at their spawn site.
//! - A task that runs without ever yielding is reported as running, with its
//!   spawn site but no stack (a dump cannot see inside a running poll). On a
//!   current-thread runtime such a task also holds the thread the check runs
//!   on: that check runs from a thread of its own, so after the grace period
//!   plus about 12 s the test fails with what is known, the runtime is left
//!   to the task, and the other tests go on. A `LocalRuntime` cannot move
//!   off the test's thread: there taskleak prints what it knows and exits the
//!   test process with code 101 rather than hang.
//! - Task names (`tokio::task::Builder::name`) reach only tokio's tracing
//!   span for the task: with the `task-names` feature, taskleak turns on
//!   tokio's `tracing` feature and reads them with a tiny tracing
//!   subscriber it makes the default of the test's threads that have none.
//!   Off by default: every task then runs inside tokio's span, and a global
//!   subscriber your test installs *after* that (`fmt().try_init()` in the
//!   body) would not receive events from those threads.
//! - In count mode (no `tokio_unstable`), a pre-existing task that ends
//!   during the test can hide a leak one for one.
//! - Threads are checked on Linux only. A thread with a name of its own,
//!   while other tests run alongside, cannot be tied to its test: the
//!   check is then *inconclusive* and passes, saying how to get an exact
//!   result (`cargo nextest run`, `--test-threads=1`, or `serial = true`).
//!   See `docs/threads.md`.
//! - A [`Dumper`](monitor::Dumper) groups a multi-thread runtime's tasks by spawn site,
//!   without stacks: tokio 1.54's dump of such a runtime can leave a worker
//!   stuck for good (tokio-rs/tokio#8370), which a service must never risk
//!   for a debug page. Current-thread runtimes are dumped with stacks.
#![doc(test(attr(deny(warnings, rust_2018_idioms), allow(dead_code, unused_variables))))]
// The examples show a test as users write it: the attribute expands (and is
// checked) in the doctest, the test itself runs in tests/.
#![allow(clippy::test_attr_in_doctest)]
// Spawn sites, stacks and ignore rules are compiled (and unit tested) in
// both modes but only called with `tokio_unstable`, whose build is where
// dead code is checked.
#![cfg_attr(not(tokio_unstable), allow(dead_code))]
// Off Linux there are no task dumps, threads or native stacks to report.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

mod config;
mod error;
mod harness;
mod libtest;
mod model;
pub mod monitor;
pub mod report;
mod tasks;
mod threads;

/// Why a task leaked, and how to fix it: the page each report's `fix:` line
/// links to, one section per [`Cause`](report::Cause).
#[doc = include_str!("../docs/fixes.md")]
pub mod fixes {}

#[doc(hidden)]
pub mod __private;

pub use config::Options;
pub use error::Error;
pub use harness::{SharedRuntime, check_at_exit, verify_main};
pub use report::LeakReport;
pub use tasks::{Snapshot, Tracker};

/// Fails the test if it leaves tokio tasks or threads running; goes
/// **above** `#[tokio::test]` or `#[test]`.
///
/// ```
/// #[taskleak::verify_no_leaks(max_retries = 30, ignore_spawned_at = r"src/metrics\.rs:")]
/// #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// async fn serves_one_request() {
///     let (tx, rx) = tokio::sync::oneshot::channel();
///     tokio::spawn(async move { tx.send(42).unwrap() });
///     assert_eq!(rx.await.unwrap(), 42);
/// }
/// # fn main() {}
/// ```
///
/// On a module, it checks every test function inside (nested modules too),
/// each with the module's options merged with its own attribute's (its own
/// win; ignore rules add up); [`skip`] opts a test out:
///
/// ```
/// #[taskleak::verify_no_leaks(max_retries = 40)]
/// mod tests {
///     #[tokio::test]
///     async fn joined() {
///         tokio::spawn(async {}).await.unwrap();
///     }
///
///     #[taskleak::verify_no_leaks(ignore_thread_name = "^metrics$")]
///     #[test]
///     fn with_a_rule_of_its_own() {}
/// }
/// # fn main() {}
/// ```
///
/// On a plain test it checks threads:
///
/// ```
/// #[taskleak::verify_no_leaks(ignore_thread_name = "^metrics-")]
/// #[test]
/// fn flushes_on_drop() {
///     let flusher = std::thread::spawn(|| ());
///     flusher.join().unwrap();
/// }
/// # fn main() {}
/// ```
///
/// Arguments: `max_retries = N`, `max_sleep = "100ms"` (units `us`, `ms`,
/// `s`), any number of `ignore_top_function`, `ignore_any_function`,
/// `ignore_spawned_at` and `ignore_thread_name` regexes, `threads = false`,
/// `serial = true`, any number of `ignore_dependency = "crate"`,
/// `crate = "path"`; see the crate docs, "Options".
pub use taskleak_macros::verify_no_leaks;

/// Opts one test out of the check of the module it is in.
///
/// ```
/// #[taskleak::verify_no_leaks]
/// mod tests {
///     #[test]
///     fn checked() {}
///
///     #[taskleak::skip] // starts a process-wide logger thread on purpose
///     #[test]
///     fn installs_the_global_logger() {}
/// }
/// # fn main() {}
/// ```
///
/// Outside a checked module there is nothing to skip, and it does nothing.
pub use taskleak_macros::skip;

/// Checks the whole test binary once, after every test in it has run:
/// threads it started and tasks on runtimes registered with
/// [`check_at_exit`], still alive. If anything leaked, it prints the report
/// and makes the binary exit with code 101, so `cargo test` fails. One line
/// at the top of a test file (goleak's `VerifyTestMain`):
///
/// ```
/// taskleak::verify_test_binary!();
///
/// #[test]
/// fn starts_and_stops_a_worker() {
///     std::thread::spawn(|| ()).join().unwrap();
/// }
/// # fn main() {}
/// ```
///
/// Under `cargo nextest`, which runs each test in a process of its own, the
/// check runs after each test. It runs on Linux, the BSDs, illumos and
/// macOS; threads are checked on Linux; on Windows the binary says once that
/// it is not checked. For a test binary with `harness = false`, wrap its
/// `main` in [`verify_main`] instead. Only libtest's own exit, on the main
/// thread, runs the check: a test that calls `std::process::exit` from
/// another thread ends the binary unchecked.
///
/// The check takes its budget and ignore rules from the crate's
/// `taskleak.toml`, and honours `TASKLEAK_MODE` (`off`: no check; `warn`:
/// the report is printed, the binary's exit code kept) and the other
/// variables of the crate docs' [Options](crate#options).
#[macro_export]
macro_rules! verify_test_binary {
    () => {
        // Runs before `main`, as a static constructor; in an anonymous
        // const, so that a second invocation is harmless.
        const _: () = {
            #[used]
            #[cfg_attr(
                any(
                    target_os = "linux",
                    target_os = "android",
                    target_os = "freebsd",
                    target_os = "netbsd",
                    target_os = "openbsd",
                    target_os = "dragonfly",
                    target_os = "illumos",
                    target_os = "solaris"
                ),
                unsafe(link_section = ".init_array")
            )]
            #[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__mod_init_func"))]
            #[cfg_attr(windows, unsafe(link_section = ".CRT$XCU"))]
            static __TASKLEAK_VERIFY_TEST_BINARY: extern "C" fn() = {
                extern "C" fn __taskleak_start() {
                    $crate::__private::binary_start(
                        ::core::env!("CARGO_CRATE_NAME"),
                        ::core::env!("CARGO_MANIFEST_DIR"),
                    );
                }
                __taskleak_start
            };
        };
    };
}
