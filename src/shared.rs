//! A runtime many tests share (a global `LazyLock`), whose tasks are tied
//! to the test that spawned them, so that each test's check judges its own.

use std::ops::Deref;

use tokio::runtime::{Builder, Runtime};

use crate::registry::Tracker;

/// A tokio runtime for tests to share, with a [`Tracker`] installed: a test
/// checked with `#[verify_no_leaks(runtime = "…")]` is judged only on the
/// tasks it spawned on it, directly or through any chain of spawns — even
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
/// test process says so once. A task spawned from a thread the test started
/// itself (not from a task, nor from the test's own thread) has no owner
/// and is not attributed.
#[derive(Debug)]
pub struct SharedRuntime {
    runtime: Runtime,
    tracker: Tracker,
}

impl SharedRuntime {
    /// Installs a tracker on `builder` and builds the runtime.
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
        Ok(SharedRuntime {
            runtime: builder.build()?,
            tracker,
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

impl Deref for SharedRuntime {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.runtime
    }
}
