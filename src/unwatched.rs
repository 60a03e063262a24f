//! Tokio tasks started outside every runtime taskleak watches — in a
//! `LocalSet`, or on a runtime it did not build (a global
//! `LazyLock<Runtime>`) — counted from tokio's task ids, so that a check
//! says they were not checked instead of passing without a word.
//!
//! tokio hands every task, everywhere in the process, an id from one
//! counter. Of the ids handed out while a test's body ran, taskleak
//! accounts for those its spawn hooks saw (on any tracker's runtime), its
//! own probes, and blocking tasks (which run no spawn hook: counted as they
//! end, or as still in flight on the test's runtime). The rest are tasks
//! no tracker watches.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::runtime::Handle;

use crate::registry::raw_id;

/// Task ids taskleak accounts for: hooked spawns, blocking tasks' ends,
/// probes.
static ACCOUNTED: AtomicU64 = AtomicU64::new(0);

/// A spawn a tracker's hook saw, or a blocking task's end.
pub(crate) fn account_one() {
    account(1);
}

/// `count` task ids of a watched runtime that no hook sees (its workers).
pub(crate) fn account(count: u64) {
    ACCOUNTED.fetch_add(count, Ordering::SeqCst);
}

/// The task ids handed out from [`Window::open`] to [`Window::close`].
#[derive(Debug)]
pub(crate) struct Window {
    first: u64,
    accounted: u64,
}

impl Window {
    /// `None` if no probe could be made (no runtime could be built).
    pub(crate) fn open() -> Option<Self> {
        let first = probe()?;
        Some(Window {
            first,
            accounted: ACCOUNTED.load(Ordering::SeqCst),
        })
    }

    /// How many tasks were started since [`Window::open`] that no tracker
    /// saw, given `blocking_in_flight` blocking tasks of the test's runtime
    /// that may not have ended yet. Exact when the test's tasks are spawned
    /// from its own threads; a spawn on another thread racing the window's
    /// ends can be counted on the wrong side of it.
    pub(crate) fn close(self, blocking_in_flight: u64) -> u64 {
        let Some(last) = probe() else { return 0 };
        // Read after the last probe (whose own count it holds): a hook that
        // ran late still counts.
        let accounted = ACCOUNTED
            .load(Ordering::SeqCst)
            .saturating_sub(self.accounted)
            .saturating_sub(1);
        let handed_out = last.saturating_sub(self.first).saturating_sub(1);
        handed_out.saturating_sub(accounted).saturating_sub(blocking_in_flight)
    }
}

/// The next task id, taken by spawning a no-op task on a runtime that is
/// already shut down: tokio gives it an id and drops it at once, so it is
/// never queued, never run and never seen by anyone's hooks or metrics.
fn probe() -> Option<u64> {
    static CLOSED: OnceLock<Option<Handle>> = OnceLock::new();
    let handle = CLOSED
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().build().ok()?;
            let handle = runtime.handle().clone();
            // Never blocks, so it may run inside a test's runtime.
            runtime.shutdown_background();
            Some(handle)
        })
        .as_ref()?;
    // Before the id is taken: a window closing in between counts one id
    // too few as unwatched, never one too many.
    account_one();
    Some(raw_id(handle.spawn(std::future::ready(())).id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_never_run_and_takes_one_id() {
        let first = probe().expect("a probe");
        let second = probe().expect("a probe");
        assert!(second > first, "{first} then {second}");
    }

    #[test]
    fn a_local_set_task_is_unwatched_and_a_hooked_spawn_is_not() {
        // Hooked spawns are accounted as the registry's hook does.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let window = Window::open().expect("a window");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async {
            tokio::task::spawn_local(async {}).await.expect("local task");
        });
        let unwatched = window.close(0);
        // Tests of this binary running alongside may add their own.
        assert!(unwatched >= 1, "{unwatched}");
    }
}
