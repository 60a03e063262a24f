//! A snapshot of the live task set, and verifying against it: settle, diff,
//! take stacks for the survivors, filter, group.

#[cfg(tokio_unstable)]
use std::collections::HashSet;

use tokio::runtime::Handle;

use crate::config::Options;
use crate::error::Error;
use crate::report::{Detail, GracePeriod, LeakReport};
use crate::tasks::registry::Tracker;
use crate::tasks::settle::settle;

/// The tasks alive on a runtime at one moment; see [`Tracker::snapshot`].
///
/// ```
/// # let tracker = taskleak::Tracker::new();
/// # let mut builder = tokio::runtime::Builder::new_current_thread();
/// # tracker.install(&mut builder);
/// # let runtime = builder.enable_all().build()?;
/// runtime.block_on(async {
///     let snapshot = tracker.snapshot()?;
///     // A task that ends within the grace period is not a leak.
///     tokio::spawn(async { tokio::time::sleep(std::time::Duration::from_millis(5)).await });
///     snapshot.verify(&taskleak::Options::new()).await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    tracker: Tracker,
    handle: Handle,
    /// Tasks with a higher spawn sequence number were spawned after it.
    watermark: u64,
    before_count: usize,
    /// On a runtime tests share: only this test's tasks count.
    owner: Option<u64>,
}

impl Snapshot {
    pub(crate) fn new(tracker: Tracker, handle: Handle) -> Self {
        let watermark = tracker.registry.watermark();
        let before_count = handle.metrics().num_alive_tasks();
        Self {
            tracker,
            handle,
            watermark,
            before_count,
            owner: None,
        }
    }

    /// Waits for tasks started since the snapshot to end (re-checking with
    /// backoff, within the options' retry budget), then reports those still
    /// alive that no ignore rule matches. Await it inside the runtime the
    /// snapshot was taken on: on a current-thread runtime, that is what lets
    /// the stragglers run.
    ///
    /// ```
    /// # let tracker = taskleak::Tracker::new();
    /// # let mut builder = tokio::runtime::Builder::new_current_thread();
    /// # tracker.install(&mut builder);
    /// # let runtime = builder.enable_all().build()?;
    /// runtime.block_on(async {
    ///     let snapshot = tracker.snapshot()?;
    ///     let forgotten = tokio::spawn(std::future::pending::<()>());
    ///     let report = snapshot
    ///         .verify(&taskleak::Options::new().max_retries(2))
    ///         .await
    ///         .expect_err("the pending task leaked");
    ///     assert_eq!(report.leaked(), 1);
    ///     forgotten.abort();
    ///     Ok::<(), taskleak::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// When tasks leaked, shut the runtime down with
    /// `Runtime::shutdown_background` rather than dropping it: dropping waits
    /// for every task, and a leaked task that never yields never ends (nor
    /// does a worker left waiting by a task dump that could not finish,
    /// tokio issue #7478). `#[verify_no_leaks]` does this for you.
    ///
    /// # Errors
    ///
    /// The [`LeakReport`] of the tasks that leaked.
    pub async fn verify(&self, options: &Options) -> Result<(), LeakReport> {
        match self.check(options, None, || ()).await {
            Some(report) => Err(report),
            None => Ok(()),
        }
    }

    /// The check behind [`Snapshot::verify`], naming the test in the report.
    ///
    /// `guard_waits` runs once, only if something survives the first look,
    /// right before the check starts waiting; what it returns is kept until
    /// the check ends (the harness arms its watchdog there, so a clean test
    /// never pays for one).
    pub(crate) async fn check<G>(
        &self,
        options: &Options,
        test: Option<&str>,
        guard_waits: impl FnOnce() -> G,
    ) -> Option<LeakReport> {
        #[cfg(tokio_unstable)]
        let report = self.check_tasks(options, guard_waits).await?;
        #[cfg(not(tokio_unstable))]
        let report = self.check_count(options, guard_waits).await?;
        Some(report.for_test(test))
    }

    /// Judges only the tasks of test `owner` (see [`crate::tasks::registry::owner`]).
    pub(crate) fn owned_by(mut self, owner: u64) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Live tasks spawned since the snapshot (by its test, if it has one).
    #[cfg(tokio_unstable)]
    fn fresh(&self) -> Vec<(u64, crate::tasks::registry::TaskRecord)> {
        let mut fresh = self.tracker.registry.live_since(self.watermark);
        if let Some(owner) = self.owner {
            fresh.retain(|(_, record)| record.owner == owner);
        }
        fresh
    }

    /// What the grace period waits for: live tasks spawned since the
    /// snapshot (by its test, if it has one) that no spawn-site rule ignores.
    #[cfg(tokio_unstable)]
    fn unsettled(&self, options: &Options) -> Vec<(u64, crate::tasks::registry::TaskRecord)> {
        let mut fresh = self.fresh();
        if options.ignore.by_spawn_site() {
            fresh.retain(|(_, record)| !options.ignore.ignores_spawn_site(Some(&record.spawned_at.to_string())));
        }
        fresh
    }

    /// Without task hooks: how many more tasks are alive than at the
    /// snapshot.
    #[cfg_attr(tokio_unstable, allow(dead_code))]
    fn surplus(&self) -> usize {
        self.handle
            .metrics()
            .num_alive_tasks()
            .saturating_sub(self.before_count)
    }

    /// The check's first look, taken without yielding to the runtime:
    /// whether anything it would wait for is alive. When nothing is, the
    /// check finds nothing and never runs the runtime.
    pub(crate) fn anything_unsettled(&self, options: &Options) -> bool {
        #[cfg(tokio_unstable)]
        return !self.unsettled(options).is_empty();
        #[cfg(not(tokio_unstable))]
        {
            let _ = options;
            self.surplus() > 0
        }
    }

    /// The check at the end of a test binary, from a thread outside the
    /// runtime, with no test running.
    pub(crate) fn check_at_exit(&self, options: &Options, label: &str) -> Option<LeakReport> {
        use std::time::Duration;
        use tokio::runtime::RuntimeFlavor;
        /// The most the whole check may take, dumps included.
        const LIMIT: Duration = Duration::from_secs(10);
        if self.handle.runtime_flavor() == RuntimeFlavor::MultiThread {
            // Its workers run the stragglers and the dump; this thread waits.
            let check = crate::tasks::timer::timeout(LIMIT, self.check(options, Some(label), || ()));
            return match self.handle.block_on(check) {
                Some(report) => report,
                None => Some(self.describe_blocked(options, Some(label), "the check did not finish in time", LIMIT)),
            };
        }
        // Nothing drives a current-thread runtime any more: its tasks alive
        // now stay so.
        let report = self.describe_blocked(
            options,
            Some(label),
            "seen at exit, from outside the current-thread runtime, which nothing drives any more: no stacks",
            Duration::ZERO,
        );
        (report.leaked() > 0).then_some(report)
    }

    /// Without task hooks: compare live-task counts.
    #[cfg_attr(tokio_unstable, allow(dead_code))]
    async fn check_count<G>(&self, options: &Options, guard_waits: impl FnOnce() -> G) -> Option<LeakReport> {
        let mut _guard = None;
        let settled = settle(
            options,
            || vec![(); self.surplus()],
            || {},
            // Without hooks nothing says when a task ends: plain backoff.
            std::future::pending::<()>,
            || _guard = Some(guard_waits()),
        )
        .await;
        if settled.survivors.is_empty() {
            return None;
        }
        let mut notes = Vec::new();
        if !options.ignore.is_empty() {
            notes.push(
                "ignore rules need `--cfg tokio_unstable` (they match spawn sites and stacks); none was applied \
                 to these tasks. `cargo taskleak` builds the tests with it, in a target directory of its own, and \
                 applies them"
                    .to_owned(),
            );
        }
        Some(LeakReport::of_tasks(
            settled.survivors.len(),
            Vec::new(),
            Detail::CountOnly,
            GracePeriod {
                retries: settled.retries,
                waited: settled.waited,
            },
            notes,
        ))
    }

    /// What leaked, told without the runtime's help: for when a task holds
    /// the thread the check runs on, so the check itself cannot go on.
    pub(crate) fn describe_blocked(
        &self,
        options: &Options,
        test: Option<&str>,
        reason: &str,
        waited: std::time::Duration,
    ) -> LeakReport {
        #[cfg(tokio_unstable)]
        let (leaked, groups, detail) = {
            use crate::model::TaskState;
            use crate::report::leak_report::{self, Survivor};
            use crate::tasks::registry::poll_slots;

            let polled: HashSet<u64> = poll_slots::sample().into_iter().map(|polling| polling.task).collect();
            let survivors: Vec<Survivor> = self
                .fresh()
                .into_iter()
                .map(|(id, record)| Survivor {
                    id,
                    name: record.name,
                    spawned_at: Some(record.spawned_at.to_string()),
                    state: if polled.contains(&id) {
                        TaskState::Running
                    } else {
                        TaskState::StackUnavailable("the check was blocked before it could dump stacks".to_owned())
                    },
                    stack: std::sync::Arc::default(),
                })
                .filter(|survivor| !options.ignore.ignores(survivor))
                .collect();
            (survivors.len(), leak_report::group(survivors), Detail::Full)
        };
        #[cfg(not(tokio_unstable))]
        let (leaked, groups, detail) = {
            let _ = options;
            (self.surplus(), Vec::new(), Detail::CountOnly)
        };
        LeakReport::of_blocked_check(test, leaked, groups, detail, waited, reason)
    }

    /// With task hooks: diff task ids, then describe each survivor.
    #[cfg(tokio_unstable)]
    async fn check_tasks<G>(&self, options: &Options, guard_waits: impl FnOnce() -> G) -> Option<LeakReport> {
        use crate::config::{DUMP_TIMEOUT, SUSPECT_DUMP_TIMEOUT};
        use crate::model::TaskState;
        use crate::report::leak_report::{self, Survivor};
        use crate::tasks::dump;
        use crate::tasks::registry::poll_slots;
        use std::sync::Arc;

        let registry = &self.tracker.registry;
        let mut _guard = None;
        let mut samples = (Vec::new(), poll_slots::sample());
        let settled = settle(
            options,
            || self.unsettled(options),
            || samples = (std::mem::take(&mut samples.1), poll_slots::sample()),
            || registry.next_end(self.watermark),
            || _guard = Some(guard_waits()),
        )
        .await;
        if settled.survivors.is_empty() {
            return None;
        }

        // A task inside one poll across the last wait is suspected of never
        // yielding. tokio's dump waits for every worker, so it cannot finish
        // while one is busy: with suspects, give the dump only a short
        // while — a suspect that was merely descheduled will have yielded.
        let suspects: HashSet<u64> = poll_slots::stuck_between(&samples.0, &samples.1)
            .into_iter()
            .filter(|id| registry.is_live(*id))
            .collect();
        let wanted: HashSet<u64> = settled.survivors.iter().map(|(id, _)| *id).collect();
        let limit = if suspects.is_empty() {
            DUMP_TIMEOUT
        } else {
            SUSPECT_DUMP_TIMEOUT
        };
        let mut stacks = dump::stacks_of(&self.handle, wanted, limit, |id| registry.is_live(id)).await;
        if let (Some(reason), Some(blocker)) = (&mut stacks.unavailable, suspects.iter().min()) {
            *reason = format!("{reason}: task {blocker} runs without yielding, and the dump waits for every worker");
        }

        let mut notes = Vec::new();
        if let Some(reason) = &stacks.unavailable {
            notes.push(format!("no async stacks: {reason}"));
        }
        let mut unjudged = 0;
        let survivors: Vec<Survivor> = settled
            .survivors
            .into_iter()
            .filter_map(|(id, record)| {
                let (state, stack) = match stacks.found.get(&id) {
                    Some(stack) if stack.is_empty() => (TaskState::WaitingUntraced, Arc::default()),
                    Some(stack) => (TaskState::Waiting, Arc::clone(stack)),
                    // It ended while the dumps ran: not a leak after all.
                    None if !registry.is_live(id) => return None,
                    None if suspects.contains(&id) => (TaskState::Running, Arc::default()),
                    None => {
                        let reason = match stacks.unavailable {
                            Some(_) => "see the note below",
                            None => "it was scheduled to run during every task dump",
                        };
                        (TaskState::StackUnavailable(reason.to_owned()), Arc::default())
                    }
                };
                let survivor = Survivor {
                    id,
                    name: record.name,
                    spawned_at: Some(record.spawned_at.to_string()),
                    state,
                    stack,
                };
                let ignored = options.ignore.ignores(&survivor);
                if !ignored && survivor.stack.is_empty() && options.ignore.needs_stacks() {
                    // Running, outside tokio, or undumped: no frame to match.
                    unjudged += 1;
                }
                (!ignored).then_some(survivor)
            })
            .collect();
        if unjudged > 0 {
            notes.push(format!(
                "{unjudged} task(s) could not be matched against the function ignore rules without a stack"
            ));
        }
        if survivors.is_empty() {
            return None;
        }
        Some(LeakReport::of_tasks(
            survivors.len(),
            leak_report::group(survivors),
            Detail::Full,
            GracePeriod {
                retries: settled.retries,
                waited: settled.waited,
            },
            notes,
        ))
    }
}

/// How a tracker takes snapshots (here, beside what they are: the
/// registry knows nothing of snapshots).
impl Tracker {
    /// Records the tasks alive right now on the current runtime. Later,
    /// [`Snapshot::verify`] reports those started since that never ended.
    ///
    /// ```
    /// # let tracker = taskleak::Tracker::new();
    /// # let mut builder = tokio::runtime::Builder::new_current_thread();
    /// # tracker.install(&mut builder);
    /// # let runtime = builder.enable_all().build()?;
    /// runtime.block_on(async {
    ///     let snapshot = tracker.snapshot()?;
    ///     # let _ = snapshot;
    ///     Ok::<(), taskleak::Error>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a runtime; [`Error::NotInstalled`] when
    /// built with `--cfg tokio_unstable` and this tracker was not installed on
    /// the current runtime (it would see nothing, so every check would pass).
    pub fn snapshot(&self) -> Result<Snapshot, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        self.snapshot_of(&handle)
    }

    /// [`Tracker::snapshot`] of the runtime `handle` belongs to, from
    /// anywhere (e.g. a global runtime, before any test uses it).
    ///
    /// ```
    /// # let tracker = taskleak::Tracker::new();
    /// # let mut builder = tokio::runtime::Builder::new_multi_thread();
    /// # tracker.install(&mut builder);
    /// # let runtime = builder.enable_all().build()?;
    /// let snapshot = tracker.snapshot_of(runtime.handle())?;
    /// # let _ = snapshot;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] as for [`Tracker::snapshot`].
    pub fn snapshot_of(&self, handle: &tokio::runtime::Handle) -> Result<Snapshot, Error> {
        #[cfg(tokio_unstable)]
        self.registry.ensure_installed_on(handle)?;
        Ok(Snapshot::new(self.clone(), handle.clone()))
    }
}
