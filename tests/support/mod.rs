//! What the integration tests share: a runtime with a tracker installed.

use taskleak::Tracker;

/// A current-thread runtime, or a multi-thread one with two workers, with
/// `tracker` installed.
pub(crate) fn runtime(tracker: &Tracker, multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    tracker.install(&mut builder);
    builder.enable_all().build().expect("runtime")
}
