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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::tasks::task_id::raw_id;

/// How many recent ids are remembered: a window spanning more ids than
/// half of this is judged on its most recent ones only.
const REMEMBERED: usize = 1 << 14;

/// Each slot holds the last accounted id that maps to it: id `n` is
/// accounted while slot `n % REMEMBERED` holds `n`. 128 KiB, no clearing,
/// no lock on the spawn path.
static ACCOUNTED: [AtomicU64; REMEMBERED] = [const { AtomicU64::new(0) }; REMEMBERED];

/// How long a window that found unmarked ids waits for them, looking each
/// millisecond: a spawn on another thread takes its id a moment before its
/// hook runs, and a blocking task is marked a moment after its thread
/// counts as idle again.
const SETTLE: Duration = Duration::from_millis(20);

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

/// The build of a watched runtime, from [`Accounting::start_if`] to
/// [`Accounting::finish`]. A multi-thread runtime's workers start as
/// blocking tasks, which no hook sees: the ids handed out meanwhile are
/// marked (and those another thread took then too: that errs towards saying
/// nothing).
#[derive(Debug)]
pub(crate) struct Accounting(Option<u64>);

/// The first ids of the watched runtimes being built: ids after one of
/// them may be its workers', not yet marked.
static BUILDING: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Accounting {
    /// Marks the ids of the build if `workers`: a current-thread runtime
    /// starts none.
    pub(crate) fn start_if(workers: bool) -> Self {
        let first = workers.then(probe).flatten();
        if let Some(first) = first {
            BUILDING.lock().unwrap_or_else(PoisonError::into_inner).push(first);
        }
        Accounting(first)
    }

    /// Marks the build's ids, and registers the runtime as
    /// [`Watched`] while the guard lives.
    pub(crate) fn finish(self, runtime: &Handle) -> Watched {
        let watched = Watched::register(runtime);
        if let Some(first) = self.0 {
            if let Some(last) = probe() {
                account_between(first, last);
            }
            let mut building = BUILDING.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = building.iter().position(|started| *started == first) {
                building.swap_remove(at);
            }
        }
        watched
    }
}

/// The first id of the earliest watched runtime still being built.
fn earliest_build() -> Option<u64> {
    BUILDING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .min()
        .copied()
}

/// Marks every id handed out after `first` and before `last`.
fn account_between(first: u64, last: u64) {
    (first + 1..last).for_each(account);
}

/// The runtimes taskleak watches that are alive, by a number of their own:
/// their blocking tasks still running have ids no one marked yet.
static WATCHED: Mutex<Vec<(u64, Handle)>> = Mutex::new(Vec::new());

/// A watched runtime's place in [`WATCHED`], until dropped.
#[derive(Debug)]
pub(crate) struct Watched(u64);

impl Watched {
    pub(crate) fn register(handle: &Handle) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        WATCHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((number, handle.clone()));
        Watched(number)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        WATCHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(number, _)| *number != self.0);
    }
}

/// Blocking tasks queued or running on the watched runtimes: their ids are
/// marked only as they end.
#[cfg(tokio_unstable)]
fn blocking_in_flight() -> u64 {
    let watched = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
    let in_flight: usize = watched
        .iter()
        .map(|(_, handle)| {
            let metrics = handle.metrics();
            let busy = metrics
                .num_blocking_threads()
                .saturating_sub(metrics.num_idle_blocking_threads());
            busy + metrics.blocking_queue_depth()
        })
        .sum();
    in_flight as u64
}

#[cfg(not(tokio_unstable))]
fn blocking_in_flight() -> u64 {
    0
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
    /// saw. Blocking tasks still queued or running on a watched runtime are
    /// marked only as they end: as many unmarked ids are taken for theirs.
    /// Ids left unmarked are waited for, up to [`SETTLE`], so that a hook
    /// that runs late still counts. All of it errs towards saying nothing
    /// while other tests run alongside.
    pub(crate) fn close(self) -> u64 {
        let Some(last) = probe() else { return 0 };
        let mut unmarked = self.unmarked_before(last);
        if unmarked.is_empty() {
            return 0;
        }
        let deadline = Instant::now() + SETTLE;
        loop {
            // In this order: a blocking task is marked before its thread
            // counts as idle again, so one that ends in between is either
            // still in flight here or marked below, never neither.
            let in_flight = blocking_in_flight();
            unmarked.retain(|id| !is_accounted(*id));
            // A watched runtime's build under way: its workers' ids are
            // marked only when it is done, so nothing after its start is
            // judged.
            if let Some(build) = earliest_build() {
                unmarked.retain(|id| *id < build);
            }
            let unwatched = (unmarked.len() as u64).saturating_sub(in_flight);
            if unwatched == 0 || Instant::now() >= deadline {
                return unwatched;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
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
        assert!(Window::open().expect("a window").close() < REMEMBERED as u64);
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
        // Its two workers started as blocking tasks, each taking an id.
        assert!(last - first > 2, "{first}..{last}");
        account_between(first, last);
        assert!(window.unmarked_before(last).is_empty());
        drop(runtime);
    }
}
