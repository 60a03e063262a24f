//! A runtime many tests share (a global `LazyLock`), whose tasks are tied
//! to the test that spawned them, so that each test's check judges its own.

use std::ops::Deref;

use tokio::runtime::{Builder, Runtime};

use crate::tasks::Tracker;
use crate::threads::RuntimeThreads;

/// A tokio runtime for tests to share, with a [`Tracker`] installed: a test
/// checked with `#[verify_no_leaks(runtime = "…")]` is judged only on the
/// tasks it spawned on it, directly or through chains of task spawns — even
/// while other tests run on it in parallel. Tasks spawned before the test
/// (a connection pool's background task) are not its.
///
/// ```
/// use std::sync::LazyLock;
///
/// static RUNTIME: LazyLock<taskleak::SharedRuntime> = LazyLock::new(|| {
///     taskleak::SharedRuntime::new(tokio::runtime::Builder::new_multi_thread().enable_all())
///         .expect("the shared test runtime")
/// });
///
/// #[taskleak::verify_no_leaks(runtime = "RUNTIME")]
/// #[test]
/// fn fetches() {
///     RUNTIME.block_on(async {
///         tokio::spawn(async { 1 + 1 }).await.unwrap();
///     });
/// }
/// # fn main() {}
/// ```
///
/// It dereferences to the [`Runtime`]. Attribution needs tokio's task hooks
/// (`--cfg tokio_unstable`); without them the tasks are not checked, and the
/// test process says so once. A task is the test's when spawned from the
/// test's thread (in `block_on`, or a `LocalSet` there) or from a task that
/// is the test's; one spawned from a `spawn_blocking` closure or from a
/// thread the test started has no owner and is not judged. The runtime's
/// own threads are left out of the tests' thread checks.
#[derive(Debug)]
pub struct SharedRuntime {
    runtime: Runtime,
    tracker: Tracker,
    threads: RuntimeThreads,
    /// Its blocking tasks in flight are watched ones.
    _watched: crate::tasks::Watched,
}

impl SharedRuntime {
    /// Installs a tracker on `builder` and builds the runtime. It also sets
    /// the builder's `on_thread_start` hook, to know the runtime's threads
    /// (thread checks leave them out: they serve every test).
    ///
    /// ```
    /// let shared = taskleak::SharedRuntime::new(tokio::runtime::Builder::new_multi_thread().enable_all())?;
    /// assert_eq!(shared.block_on(async { 2 }), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The error of `builder.build()`.
    pub fn new(builder: &mut Builder) -> std::io::Result<Self> {
        let tracker = Tracker::new();
        tracker.install(builder);
        let threads = RuntimeThreads::default();
        let recorder = threads.clone();
        builder.on_thread_start(move || recorder.record_current());
        // Its workers start as blocking tasks, which no spawn hook sees:
        // their task ids are watched ones.
        let accounting = crate::tasks::Accounting::start_if(true);
        let runtime = builder.build()?;
        let watched = accounting.finish(runtime.handle());
        Ok(SharedRuntime {
            runtime,
            tracker,
            threads,
            _watched: watched,
        })
    }

    /// The tracker installed on it, e.g. for
    /// [`check_at_exit`](crate::check_at_exit).
    ///
    /// ```
    /// # let shared = taskleak::SharedRuntime::new(tokio::runtime::Builder::new_multi_thread().enable_all())?;
    /// taskleak::check_at_exit(shared.tracker(), shared.handle())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }
}

impl SharedRuntime {
    pub(crate) fn threads(&self) -> &RuntimeThreads {
        &self.threads
    }
}

impl Deref for SharedRuntime {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}
