//! Tokio tasks started outside every runtime taskleak watches — in a
//! `LocalSet`, or on a runtime it did not build (a global
//! `LazyLock<Runtime>`) — found from tokio's task ids, so that a check says
//! they were not checked instead of passing without a word.
//!
//! tokio hands every task, everywhere in the process, an id from one
//! counter. taskleak marks the ids it accounts for: tasks its spawn hooks
//! saw (on any tracker's runtime), blocking tasks (which run no spawn hook:
//! marked as they end, and counted while in flight on the test's runtime),
//! the workers of a [`SharedRuntime`](crate::SharedRuntime), its own
//! probes. An id handed out while a test's body ran and never marked is a
//! task no tracker watches.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::registry::raw_id;

/// How many recent ids are remembered: a window spanning more ids than
/// half of this is judged on its most recent ones only.
const REMEMBERED: usize = 1 << 14;

/// Each slot holds the last accounted id that maps to it: id `n` is
/// accounted while slot `n % REMEMBERED` holds `n`. 128 KiB, no clearing,
/// no lock on the spawn path.
static ACCOUNTED: [AtomicU64; REMEMBERED] = [const { AtomicU64::new(0) }; REMEMBERED];

/// How long a window that found unmarked ids waits before looking again:
/// a spawn on another thread takes its id a moment before its hook runs,
/// and a short blocking task of another test may be about to end.
const SETTLE: Duration = Duration::from_millis(1);

/// Marks task `id` as one taskleak accounts for.
pub(crate) fn account(id: u64) {
    slot(id).store(id, Ordering::Release);
}

fn is_accounted(id: u64) -> bool {
    slot(id).load(Ordering::Acquire) == id
}

fn slot(id: u64) -> &'static AtomicU64 {
    // The remainder is below REMEMBERED: it fits a usize.
    &ACCOUNTED[(id % REMEMBERED as u64) as usize]
}

/// Marks the ids handed out while `build` ran: a runtime's workers start as
/// blocking tasks, which no hook sees. Ids another thread took meanwhile
/// are marked too: that errs towards saying nothing.
pub(crate) fn accounting_ids_of<T>(build: impl FnOnce() -> T) -> T {
    let first = probe();
    let built = build();
    if let (Some(first), Some(last)) = (first, probe()) {
        account_between(first, last);
    }
    built
}

/// Marks every id handed out after `first` and before `last`.
fn account_between(first: u64, last: u64) {
    (first + 1..last).for_each(account);
}

/// The task ids handed out from [`Window::open`] to [`Window::close`].
#[derive(Debug)]
pub(crate) struct Window {
    first: u64,
}

impl Window {
    /// `None` if no probe could be made (no runtime could be built).
    pub(crate) fn open() -> Option<Self> {
        Some(Window { first: probe()? })
    }

    /// How many tasks were started since [`Window::open`] that no tracker
    /// saw, given `blocking_in_flight` blocking tasks of the test's runtime
    /// that may not have ended yet (they are marked as they end). Ids left
    /// unmarked are looked at again after [`SETTLE`], so that a hook that
    /// runs late still counts; a blocking task of another test still
    /// running then is counted as unwatched.
    pub(crate) fn close(self, blocking_in_flight: u64) -> u64 {
        let Some(last) = probe() else { return 0 };
        let mut unmarked = self.unmarked_before(last);
        if unmarked.len() as u64 > blocking_in_flight {
            std::thread::sleep(SETTLE);
            unmarked.retain(|id| !is_accounted(*id));
        }
        (unmarked.len() as u64).saturating_sub(blocking_in_flight)
    }

    /// The ids handed out since the window opened, before `last`, that no
    /// one marked (of the most recent half of those remembered).
    fn unmarked_before(&self, last: u64) -> Vec<u64> {
        let from = self.first.max(last.saturating_sub(REMEMBERED as u64 / 2));
        (from + 1..last).filter(|id| !is_accounted(*id)).collect()
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
    let id = raw_id(handle.spawn(std::future::ready(())).id());
    account(id);
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_is_never_run_and_takes_one_id() {
        let first = probe().expect("a probe");
        let second = probe().expect("a probe");
        assert!(second > first, "{first} then {second}");
        assert!(is_accounted(first) && is_accounted(second));
    }

    #[test]
    fn a_local_set_task_is_unwatched_until_its_id_is_marked() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let window = Window::open().expect("a window");
        let local = tokio::task::LocalSet::new();
        let id = local.block_on(&runtime, async {
            let task = tokio::task::spawn_local(async {});
            let id = raw_id(task.id());
            task.await.expect("local task");
            id
        });
        let last = probe().expect("a probe");
        assert!(window.unmarked_before(last).contains(&id));
        account(id);
        assert!(!window.unmarked_before(last).contains(&id));
        // Other tests of this binary, running alongside, may add their own.
        assert!(Window::open().expect("a window").close(0) < REMEMBERED as u64);
    }

    #[test]
    fn the_ids_a_build_hands_out_are_accounted() {
        let first = probe().expect("a probe");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let last = probe().expect("a probe");
        let window = Window { first };
        // Its two workers started as blocking tasks, unseen.
        assert!(window.unmarked_before(last).len() >= 2);
        account_between(first, last);
        assert!(window.unmarked_before(last).is_empty());
        drop(runtime);
    }
}
