//! The live-task registry fed by the runtime's task hooks: which tasks are
//! alive, where each was spawned, and which one a thread is polling.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};

#[cfg(tokio_unstable)]
use crate::error::Error;
#[cfg(tokio_unstable)]
use crate::tasks::task_id::raw_id;

/// Watches one tokio runtime's tasks through its task hooks, so that a
/// [`Snapshot`](crate::Snapshot) can later tell which tasks were started after it and never
/// ended, and where each was spawned.
///
/// `#[verify_no_leaks]` does all of this for you; use a tracker when you
/// build the runtime yourself. Install it on the runtime's builder, then take
/// snapshots inside the runtime:
///
/// ```
/// let tracker = taskleak::Tracker::new();
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// tracker.install(&mut builder);
/// let runtime = builder.enable_all().build()?;
///
/// runtime.block_on(async {
///     let snapshot = tracker.snapshot()?;
///     let worker = tokio::spawn(async { 40 + 2 });
///     assert_eq!(worker.await.unwrap(), 42);
///     snapshot.verify(&taskleak::Options::new()).await?;   // nothing leaked
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Without `--cfg tokio_unstable`, tokio has no task hooks: installing is a
/// no-op and checks count the runtime's live tasks instead (see the crate
/// docs, "Stable and unstable mode").
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    pub(crate) registry: Arc<Registry>,
}

impl Tracker {
    /// A tracker that watches nothing until [installed](Tracker::install).
    ///
    /// ```
    /// let tracker = taskleak::Tracker::new();
    /// # let _ = tracker;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs the task hooks on `builder`. Call it before
    /// `builder.build()`; it replaces any `on_task_spawn`,
    /// `on_task_terminate`, `on_before_task_poll` and `on_after_task_poll`
    /// hooks set earlier, and one set later replaces taskleak's.
    ///
    /// ```
    /// let tracker = taskleak::Tracker::new();
    /// let mut builder = tokio::runtime::Builder::new_multi_thread();
    /// tracker.install(builder.worker_threads(2));
    /// let runtime = builder.enable_all().build()?;
    /// # drop(runtime);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn install(&self, builder: &mut tokio::runtime::Builder) {
        #[cfg(tokio_unstable)]
        {
            let on_spawn = Arc::clone(&self.registry);
            let on_terminate = Arc::clone(&self.registry);
            builder
                .on_task_spawn(move |meta| on_spawn.task_spawned(raw_id(meta.id()), meta.spawned_at()))
                .on_task_terminate(move |meta| on_terminate.task_terminated(raw_id(meta.id())))
                .on_before_task_poll(|meta| poll_slots::enter(raw_id(meta.id())))
                .on_after_task_poll(|_| poll_slots::leave());
        }
        #[cfg(not(tokio_unstable))]
        let _ = builder;
    }
}

/// What the hooks know about one live task.
#[derive(Clone, Debug)]
pub(crate) struct TaskRecord {
    /// Position in spawn order; see [`Registry::watermark`].
    pub(crate) seq: u64,
    pub(crate) spawned_at: &'static Location<'static>,
    /// The name given with `tokio::task::Builder::name`, when it was seen.
    pub(crate) name: Option<String>,
    /// The test that spawned it, directly or through a chain of spawns (see
    /// [`owner`]); 0 for none.
    pub(crate) owner: u64,
}

/// Which test a thread is running, so that the spawn hook can tell which
/// test each task belongs to on a runtime many tests share. A task spawned
/// by a task inherits its spawner's owner; one spawned from outside any
/// task (the body of `block_on`) takes its thread's.
pub(crate) mod owner {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};

    thread_local! {
        static CURRENT: Cell<u64> = const { Cell::new(0) };
    }

    /// A fresh owner id, never 0.
    pub(crate) fn next() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// The owner of tasks this thread spawns outside any task.
    pub(crate) fn current() -> u64 {
        CURRENT.try_with(Cell::get).unwrap_or(0)
    }

    /// Makes `owner` this thread's until the guard is dropped.
    pub(crate) fn enter(owner: u64) -> Entered {
        let previous = CURRENT.try_with(|current| current.replace(owner)).unwrap_or(0);
        Entered { previous }
    }

    #[derive(Debug)]
    pub(crate) struct Entered {
        previous: u64,
    }

    impl Drop for Entered {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|current| current.set(self.previous));
        }
    }
}

/// The set of live tasks of the runtime(s) a tracker is installed on.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    live: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    tasks: HashMap<u64, TaskRecord, BuildHasherDefault<IdHasher>>,
    /// Spawn order: the sequence number the next spawned task gets. Given
    /// under this lock, so it orders spawns exactly as the hook saw them.
    next_seq: u64,
    /// Checks waiting for a task spawned after their watermark to end; a
    /// slot per check, freed when the check stops waiting.
    waiting: Vec<Option<EndWaiter>>,
}

#[derive(Debug)]
struct EndWaiter {
    watermark: u64,
    fired: bool,
    waker: Option<Waker>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Live> {
        // A panic inside a hook cannot leave the map half-updated, so a
        // poisoned lock still holds consistent data.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    fn task_spawned(&self, id: u64, spawned_at: &'static Location<'static>) {
        #[cfg(all(tokio_unstable, feature = "task-names"))]
        let name = crate::tasks::names::take(id);
        #[cfg(not(all(tokio_unstable, feature = "task-names")))]
        let name = None;
        // The spawner: the task being polled on this thread, if any.
        #[cfg(tokio_unstable)]
        let parent = tokio::task::try_id().map(raw_id);
        #[cfg(not(tokio_unstable))]
        let parent: Option<u64> = None;
        crate::tasks::unwatched::account(id);
        let mut live = self.lock();
        // A parent this registry does not know (a `LocalSet` task, run on
        // the test's thread) leaves the thread's owner.
        let owner = parent
            .and_then(|parent| live.tasks.get(&parent).map(|record| record.owner))
            .unwrap_or_else(owner::current);
        live.next_seq += 1;
        let seq = live.next_seq;
        live.tasks.insert(
            id,
            TaskRecord {
                seq,
                spawned_at,
                name,
                owner,
            },
        );
        drop(live);
        let _ = LAST_SPAWN.try_with(|last| last.set((self as *const Self as usize, id)));
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    fn task_terminated(&self, id: u64) {
        let mut wake = Vec::new();
        {
            let mut live = self.lock();
            // Blocking tasks end through this hook too, but never started
            // through the spawn hook: they are not ours.
            let Some(ended) = live.tasks.remove(&id) else {
                crate::tasks::unwatched::account(id);
                return;
            };
            for waiter in live.waiting.iter_mut().flatten() {
                if ended.seq > waiter.watermark && !waiter.fired {
                    waiter.fired = true;
                    wake.extend(waiter.waker.take());
                }
            }
        }
        wake.into_iter().for_each(Waker::wake);
    }

    /// Completes once a task spawned after `watermark` ends, counting from
    /// this call (ends of older tasks, which a check does not judge, never
    /// wake it).
    pub(crate) fn next_end(&self, watermark: u64) -> NextEnd<'_> {
        let mut live = self.lock();
        let waiter = Some(EndWaiter {
            watermark,
            fired: false,
            waker: None,
        });
        let slot = match live.waiting.iter().position(Option::is_none) {
            Some(free) => {
                live.waiting[free] = waiter;
                free
            }
            None => {
                live.waiting.push(waiter);
                live.waiting.len() - 1
            }
        };
        NextEnd { registry: self, slot }
    }

    /// Tasks spawned after this point have a higher
    /// [`TaskRecord::seq`]: a snapshot is this one number.
    pub(crate) fn watermark(&self) -> u64 {
        self.lock().next_seq
    }

    /// The live tasks spawned after `watermark`, each with its record.
    /// Unordered: called on every re-check; reports order their groups.
    pub(crate) fn live_since(&self, watermark: u64) -> Vec<(u64, TaskRecord)> {
        self.lock()
            .tasks
            .iter()
            .filter(|(_, record)| record.seq > watermark)
            .map(|(id, record)| (*id, record.clone()))
            .collect()
    }

    pub(crate) fn is_live(&self, id: u64) -> bool {
        self.lock().tasks.contains_key(&id)
    }

    /// Spawns a no-op probe task and checks that this registry's spawn hook
    /// saw that very task (not merely some spawn on another runtime).
    /// Returns the probe's id, for whoever lists live tasks right after.
    #[cfg(tokio_unstable)]
    pub(crate) fn ensure_installed_on(self: &Arc<Self>, handle: &tokio::runtime::Handle) -> Result<u64, Error> {
        // The spawn hook runs synchronously inside `spawn`, on this thread.
        let probe = handle.spawn(async {});
        let probe = raw_id(probe.id());
        let seen = LAST_SPAWN.with(std::cell::Cell::get);
        if seen != (Arc::as_ptr(self) as usize, probe) {
            return Err(Error::NotInstalled);
        }
        Ok(probe)
    }
}

thread_local! {
    /// The last spawn a registry's hook saw on this thread: (registry, task).
    static LAST_SPAWN: std::cell::Cell<(usize, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// See [`Registry::next_end`].
#[derive(Debug)]
pub(crate) struct NextEnd<'a> {
    registry: &'a Registry,
    slot: usize,
}

impl std::future::Future for NextEnd<'_> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut live = self.registry.lock();
        match &mut live.waiting[self.slot] {
            Some(waiter) if !waiter.fired => {
                waiter.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            _ => Poll::Ready(()),
        }
    }
}

impl Drop for NextEnd<'_> {
    fn drop(&mut self) {
        self.registry.lock().waiting[self.slot] = None;
    }
}

/// Hashes task ids, which tokio hands out from one increasing counter: a
/// multiplicative (Fibonacci) hash spreads them well, at a fraction of the
/// cost of the default SipHash on the spawn hot path.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Which task each thread is polling right now, so a check can tell a task
/// that runs without ever yielding (and would hang a task dump) from one
/// that waits.
pub(crate) mod poll_slots {
    use super::*;

    /// One thread's view: the task it polls (0: none) and how many polls it
    /// has started, so two samples can tell "still in the same poll".
    #[derive(Debug, Default)]
    pub(crate) struct PollSlot {
        task: AtomicU64,
        polls: AtomicU64,
    }

    static SLOTS: Mutex<Vec<Weak<PollSlot>>> = Mutex::new(Vec::new());

    thread_local! {
        static SLOT: Arc<PollSlot> = register();
    }

    fn register() -> Arc<PollSlot> {
        let slot = Arc::new(PollSlot::default());
        let mut slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|weak| weak.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        slot
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn enter(task: u64) {
        // Only this thread writes its slot: plain load + store, no RMW.
        let _ = SLOT.try_with(|slot| {
            slot.polls
                .store(slot.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            slot.task.store(task, Ordering::Release);
        });
    }

    #[cfg_attr(not(tokio_unstable), allow(dead_code))]
    pub(crate) fn leave() {
        let _ = SLOT.try_with(|slot| slot.task.store(0, Ordering::Release));
    }

    /// One thread's poll at the moment of a sample.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Polling {
        /// Which thread: its slot's address, stable while the thread lives.
        pub(crate) thread: usize,
        pub(crate) task: u64,
        /// How many polls that thread had started: equal in two samples of
        /// the same thread means no poll started in between.
        pub(crate) poll: u64,
    }

    /// A sample of every thread's current poll.
    pub(crate) fn sample() -> Vec<Polling> {
        let slots = SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        slots
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|slot| {
                let task = slot.task.load(Ordering::Acquire);
                let thread = Arc::as_ptr(&slot) as usize;
                let poll = slot.polls.load(Ordering::Relaxed);
                (task != 0).then_some(Polling { thread, task, poll })
            })
            .collect()
    }

    /// The tasks that were inside the very same poll, on the same thread,
    /// in both samples. (Per thread: a task that migrates between workers
    /// can meet the same poll count on two of them.)
    pub(crate) fn stuck_between(earlier: &[Polling], later: &[Polling]) -> Vec<u64> {
        later
            .iter()
            .filter(|entry| earlier.contains(entry))
            .map(|entry| entry.task)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(tokio_unstable)]
    #[test]
    fn only_tasks_spawned_after_the_watermark_wake_a_waiting_check() {
        use std::future::Future;
        use std::task::{Context, Waker};

        let registry = Registry::default();
        let here = Location::caller();
        registry.task_spawned(1, here);
        let watermark = registry.watermark();
        registry.task_spawned(2, here);
        let mut waiting = std::pin::pin!(registry.next_end(watermark));
        let mut cx = Context::from_waker(Waker::noop());
        registry.task_terminated(1); // older than the watermark
        assert!(waiting.as_mut().poll(&mut cx).is_pending());
        registry.task_terminated(2);
        assert!(waiting.as_mut().poll(&mut cx).is_ready());
        assert_eq!(registry.live_since(watermark).len(), 0);
    }

    #[test]
    fn a_poll_that_never_ends_is_stuck_and_a_finished_one_is_not() {
        use poll_slots::{Polling, stuck_between};
        let at = |thread, task, poll| Polling { thread, task, poll };
        let earlier = vec![at(1, 7, 3), at(2, 9, 1), at(3, 5, 4)];
        // Task 5 moved to another thread whose count happens to match.
        let later = vec![at(1, 7, 3), at(2, 9, 2), at(4, 5, 4)];
        assert_eq!(stuck_between(&earlier, &later), vec![7]);
    }
}
