//! Task dumps for running services: every live task, identical ones grouped
//! as "N tasks @ spawn site + stack", largest group first, as text and data.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use tokio::runtime::Handle;

use crate::error::Error;
use crate::model::AsyncStack;
use crate::model::Cause;
use crate::model::TaskState;
use crate::report::{ThreadGroup, plural};
use crate::tasks::Tracker;

/// Task ids kept per group: enough to find a few in a debugger or in logs;
/// [`TaskGroup::count`] is exact.
pub const SAMPLE_IDS: usize = 16;

/// Distinct task names kept per group.
const SAMPLE_NAMES: usize = 8;

/// Takes [`TaskDump`]s of one runtime: configure once, dump whenever the
/// service's task count looks wrong (or on every request to a debug
/// endpoint: see `taskleak::monitor::http`, feature `http`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), taskleak::Error> {
/// let dumper = taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current());
/// let parked = tokio::spawn(std::future::pending::<()>());
/// let dump = dumper.dump().await?;
/// assert!(dump.tasks() >= 1);
/// println!("{dump}");
/// # parked.abort();
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Dumper {
    handle: Handle,
    tracker: Option<Tracker>,
    threads: bool,
    thread_stacks: bool,
}

/// Why a multi-thread runtime's tasks get no stacks.
const MULTI_THREAD_HAZARD: &str = "stacks are not taken on a multi-thread runtime: tokio 1.54's dump of one \
     can leave its workers stuck for good (a worker that misses the dump's 250 ms rendezvous corrupts it, \
     tokio-rs/tokio#8370; and a worker can spin in it while tasks are queued); tasks are grouped by spawn site. \
     Current-thread runtimes are dumped with stacks";

impl Dumper {
    /// A dumper of the runtime `handle` belongs to: counts and (with
    /// `--cfg tokio_unstable`, on a current-thread runtime) stacks; spawn
    /// sites need [`Dumper::tracker`].
    ///
    /// A multi-thread runtime's tasks are grouped by spawn site, without
    /// stacks: tokio 1.54 dumps one by stopping every worker at a barrier,
    /// and a worker that misses it by 250 ms (a long poll, a starved CPU)
    /// corrupts it, so that a later dump leaves a worker waiting for good
    /// (tokio-rs/tokio#8370); this crate's own tests also saw a worker spin
    /// in it. A dump endpoint must never wedge the service it watches.
    ///
    /// ```
    /// let runtime = tokio::runtime::Runtime::new()?;
    /// let dumper = taskleak::monitor::Dumper::new(runtime.handle());
    /// # let _ = dumper;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(handle: &Handle) -> Self {
        Dumper {
            handle: handle.clone(),
            tracker: None,
            threads: false,
            thread_stacks: false,
        }
    }

    /// Takes spawn sites and task names from `tracker`, which must be
    /// [installed](Tracker::install) on this runtime.
    ///
    /// ```
    /// let tracker = taskleak::Tracker::new();
    /// let mut builder = tokio::runtime::Builder::new_multi_thread();
    /// tracker.install(&mut builder);
    /// let runtime = builder.enable_all().build()?;
    /// let dumper = taskleak::monitor::Dumper::new(runtime.handle()).tracker(&tracker);
    /// # let _ = dumper;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tracker(mut self, tracker: &Tracker) -> Self {
        self.tracker = Some(tracker.clone());
        self
    }

    /// Lists the process's threads too, grouped by name and what they are
    /// blocked in (Linux); with [`ThreadListing::WithStacks`], also their
    /// native stacks: each thread (up to 32) is signalled once to capture
    /// its own.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// use taskleak::monitor::ThreadListing;
    /// let dumper = taskleak::monitor::Dumper::new(runtime.handle()).threads(ThreadListing::Grouped);
    /// # let _ = dumper;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn threads(mut self, listing: ThreadListing) -> Self {
        self.threads = true;
        self.thread_stacks = listing == ThreadListing::WithStacks;
        self
    }

    /// Dumps the runtime's live tasks, grouped. Call it from any task or
    /// thread; on a `current_thread` runtime, from one of its own tasks
    /// (the runtime must be running for tokio to dump it).
    ///
    /// What could not be had (stacks without `--cfg tokio_unstable` or on a
    /// multi-thread runtime, spawn sites without a tracker) is said in
    /// [`TaskDump::notes`]: a dump never fails for it.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), taskleak::Error> {
    /// let dump = taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current()).dump().await?;
    /// for group in dump.groups() {
    ///     println!("{} tasks @ {:?}", group.count(), group.spawned_at());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] when built with `--cfg tokio_unstable` and
    /// the tracker given is not installed on this runtime.
    pub async fn dump(&self) -> Result<TaskDump, Error> {
        let started = Instant::now();
        // The probe that checks the tracker is a task of ours: not listed.
        #[cfg(tokio_unstable)]
        let probe = match &self.tracker {
            Some(tracker) => Some(tracker.registry.ensure_installed_on(&self.handle)?),
            None => None,
        };
        #[cfg(not(tokio_unstable))]
        let probe: Option<u64> = None;
        let mut notes = Vec::new();
        let multi_thread = self.handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
        let stacks = if multi_thread && cfg!(tokio_unstable) {
            notes.push(MULTI_THREAD_HAZARD.to_owned());
            None
        } else if !multi_thread && !on_own_runtime(&self.handle) {
            notes.push(OFF_RUNTIME.to_owned());
            None
        } else {
            match crate::tasks::all_stacks(&self.handle, crate::config::DUMP_TIMEOUT).await {
                Ok(stacks) => Some(stacks),
                Err(reason) => {
                    notes.push(stacks_unavailable(&reason));
                    None
                }
            }
        };
        // Read after the dump: a task spawned meanwhile is listed without a
        // stack, one that ended meanwhile is not listed at all.
        // Without tokio's hooks a tracker sees nothing: count instead.
        let live = self.tracker.as_ref().filter(|_| cfg!(tokio_unstable)).map(|tracker| {
            let mut live = tracker.registry.live_since(0);
            live.retain(|(id, _)| Some(*id) != probe);
            live
        });
        // The probe's liveness first: one that ends after it is read is
        // at worst left out of the count, never counted twice.
        let probe_alive = probe.is_some_and(|probe| {
            self.tracker
                .as_ref()
                .is_some_and(|tracker| tracker.registry.is_live(probe))
        });
        let tasks = self
            .handle
            .metrics()
            .num_alive_tasks()
            .saturating_sub(usize::from(probe_alive));
        if self.tracker.is_none() {
            notes.push(
                "spawn sites and task names need a `taskleak::Tracker` installed on the runtime's builder, \
                 given to `Dumper::tracker`"
                    .to_owned(),
            );
        } else if cfg!(not(tokio_unstable)) {
            notes.push(format!(
                "spawn sites and task names need `--cfg tokio_unstable` (tokio's task hooks): {}",
                enable_unstable()
            ));
        }
        let groups = group_tasks(tasks, live, stacks, &mut notes);
        let threads = if self.threads {
            // Off the workers: it reads /proc and waits on each capture.
            let stacks = self.thread_stacks;
            let listed = self
                .handle
                .spawn_blocking(move || crate::threads::describe_process(stacks))
                .await
                .unwrap_or_else(|error| Err(format!("listing them failed: {error}")));
            match listed {
                Ok(threads) => Some(threads),
                Err(reason) => {
                    notes.push(format!("threads are not listed: {reason}"));
                    None
                }
            }
        } else {
            None
        };
        Ok(TaskDump {
            tasks,
            groups,
            threads,
            notes,
            took_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        })
    }
}

/// Why a current-thread runtime dumped from elsewhere has no stacks.
const OFF_RUNTIME: &str = "stacks are not shown: tokio dumps a current-thread runtime only from one of its own \
     tasks (or its `block_on`); call `Dumper::dump` there";

/// Whether the caller runs on the runtime of `handle`: where tokio can
/// dump a current-thread runtime (elsewhere it returns an empty dump).
fn on_own_runtime(handle: &Handle) -> bool {
    #[cfg(tokio_unstable)]
    {
        Handle::try_current().is_ok_and(|current| current.id() == handle.id())
    }
    #[cfg(not(tokio_unstable))]
    {
        let _ = handle;
        true
    }
}

fn stacks_unavailable(reason: &str) -> String {
    if cfg!(tokio_unstable) {
        format!("stacks are not shown: {reason}")
    } else {
        format!(
            "stacks are not shown: tokio's task dumps need `--cfg tokio_unstable`: {}",
            enable_unstable()
        )
    }
}

/// The `.cargo/config.toml` lines leak reports give, on one line.
fn enable_unstable() -> String {
    format!(
        "add `{}` to .cargo/config.toml",
        crate::report::ENABLE_FULL_REPORTS.replace('\n', " ")
    )
}

/// What a group is told apart by: where its tasks were spawned, and their
/// stack (interned by the dump, so equal stacks are one pointer), or none.
type GroupKey = (
    Option<&'static std::panic::Location<'static>>,
    Option<*const AsyncStack>,
);

/// A task as a dump saw it: its group's key, id, name and stack.
type TaskSeen<'a> = (GroupKey, u64, Option<&'a str>, Option<&'a Arc<AsyncStack>>);

/// Groups the live tasks: by the tracker's spawn site and the dump's stack
/// when both exist, by what there is otherwise.
fn group_tasks(
    tasks: usize,
    live: Option<Vec<(u64, crate::tasks::TaskRecord)>>,
    stacks: Option<HashMap<u64, Arc<AsyncStack>>>,
    notes: &mut Vec<String>,
) -> Vec<TaskGroup> {
    let mut tasks_seen: Vec<TaskSeen<'_>> = Vec::new();
    let mut without_stack = 0;
    match (&live, &stacks) {
        (Some(live), _) => {
            for (id, record) in live {
                let stack = stacks.as_ref().and_then(|stacks| stacks.get(id));
                without_stack += usize::from(stacks.is_some() && stack.is_none());
                let key = (Some(record.spawned_at), stack.map(Arc::as_ptr));
                tasks_seen.push((key, *id, record.name.as_deref(), stack));
            }
        }
        (None, Some(stacks)) => {
            for (id, stack) in stacks {
                tasks_seen.push(((None, Some(Arc::as_ptr(stack))), *id, None, Some(stack)));
            }
            without_stack = tasks.saturating_sub(stacks.len());
        }
        (None, None) => {}
    }
    let mut groups = crate::model::group_by(
        tasks_seen,
        |(key, ..)| *key,
        |(key, id, name, stack)| {
            let mut group = TaskGroup::new(key.0, stack.map(|stack| AsyncStack::clone(stack)));
            group.add(id, name);
            group
        },
        |group, (_, id, name, _)| group.add(id, name),
    );
    if without_stack > 0 {
        notes.push(format!(
            "{without_stack} task(s) were running or scheduled while the dump was taken, so have no stack"
        ));
    }
    let listed: usize = groups.iter().map(TaskGroup::count).sum();
    if live.is_none() && tasks > listed {
        // Counted by the runtime, with nothing else known about them.
        groups.push(TaskGroup {
            count: tasks - listed,
            ..TaskGroup::new(None, None)
        });
    }
    for group in &mut groups {
        group.task_ids.sort_unstable();
        group.task_ids.truncate(SAMPLE_IDS);
        group.names.sort();
        // An empty trace names nothing to wait on: tokio traces only its own
        // leaf futures, and not all of them (a listener's accept).
        group.waits_on = group
            .stack
            .as_ref()
            .filter(|stack| !stack.is_empty())
            .map(|stack| Cause::of(&TaskState::Waiting, stack))
            .filter(|cause| *cause != Cause::Unclassified)
            .map(|cause| cause.label().to_owned());
    }
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.spawned_at.cmp(&b.spawned_at))
            .then_with(|| a.task_ids.cmp(&b.task_ids))
    });
    groups
}

/// A runtime's live tasks at one moment, identical ones grouped, largest
/// group first; from [`Dumper::dump`]. Its `Display` is the text a debug
/// endpoint serves (like Go's `/debug/pprof/goroutine?debug=1`); with the
/// `serde` feature it is `Serialize` and `Deserialize`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), taskleak::Error> {
/// # let handle = tokio::runtime::Handle::current();
/// let dump = taskleak::monitor::Dumper::new(&handle).dump().await?;
/// if let Some(biggest) = dump.groups().first() {
///     println!("{} tasks look alike: {biggest}", biggest.count());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TaskDump {
    tasks: usize,
    groups: Vec<TaskGroup>,
    threads: Option<Vec<ThreadGroup>>,
    notes: Vec<String>,
    took_micros: u64,
}

impl TaskDump {
    /// The live tasks the runtime counts (its `num_alive_tasks`).
    ///
    /// ```
    /// # fn show(dump: &taskleak::monitor::TaskDump) { println!("{} live tasks", dump.tasks()); }
    /// ```
    pub fn tasks(&self) -> usize {
        self.tasks
    }

    /// The groups of identical tasks, largest first.
    ///
    /// ```
    /// # fn show(dump: &taskleak::monitor::TaskDump) {
    /// let grouped: usize = dump.groups().iter().map(|group| group.count()).sum();
    /// # let _ = grouped;
    /// # }
    /// ```
    pub fn groups(&self) -> &[TaskGroup] {
        &self.groups
    }

    /// The groups with a spawn site, task name or stack frame (function or
    /// location) that `pattern` (a `regex` pattern, unanchored) matches.
    ///
    /// ```
    /// # fn show(dump: &taskleak::monitor::TaskDump) -> Result<(), taskleak::Error> {
    /// let sessions: usize = dump.groups_matching("session::")?.iter().map(|g| g.count()).sum();
    /// # let _ = sessions;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRegex`] when `pattern` does not compile.
    pub fn groups_matching(&self, pattern: &str) -> Result<Vec<&TaskGroup>, Error> {
        let regex = Regex::new(pattern).map_err(|source| Error::InvalidRegex {
            option: "groups_matching",
            pattern: pattern.to_owned(),
            source,
        })?;
        Ok(self.groups.iter().filter(|group| group.matches(&regex)).collect())
    }

    /// The process's threads, grouped, when [`Dumper::threads`] asked for
    /// them and they could be listed.
    ///
    /// ```
    /// # fn show(dump: &taskleak::monitor::TaskDump) {
    /// for group in dump.threads().unwrap_or_default() {
    ///     println!("{} × {}", group.count(), group.name());
    /// }
    /// # }
    /// ```
    pub fn threads(&self) -> Option<&[ThreadGroup]> {
        self.threads.as_deref()
    }

    /// What the dump could not include, and what would add it.
    ///
    /// ```
    /// # fn show(dump: &taskleak::monitor::TaskDump) { dump.notes().iter().for_each(|note| eprintln!("{note}")); }
    /// ```
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// How long the dump took, grouping and symbolizing included.
    ///
    /// ```
    /// # fn show(dump: &taskleak::monitor::TaskDump) { println!("{:?}", dump.took()); }
    /// ```
    pub fn took(&self) -> Duration {
        Duration::from_micros(self.took_micros)
    }
}

impl fmt::Display for TaskDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups = self.groups.len();
        writeln!(
            f,
            "taskleak: {} in {} (dump took {:.1} ms)",
            plural(self.tasks, "live task"),
            plural(groups, "group"),
            self.took().as_secs_f64() * 1e3
        )?;
        for group in &self.groups {
            writeln!(f)?;
            write!(f, "{group}")?;
        }
        if let Some(threads) = &self.threads {
            let count: usize = threads.iter().map(ThreadGroup::count).sum();
            writeln!(f, "\n{}:", plural(count, "thread"))?;
            for group in threads {
                crate::report::write_dump_group(f, group)?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
            for note in &self.notes {
                writeln!(f, "note: {note}")?;
            }
        }
        Ok(())
    }
}

/// `tests/../examples/x.rs` as `examples/x.rs`: a file reached through
/// `#[path]` is one place, written one way.
fn without_dot_dirs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." => {}
            ".." if parts.last().is_some_and(|last| !last.is_empty() && *last != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// How much of the process's threads a [`Dumper::threads`] dump lists.
///
/// ```
/// # let runtime = tokio::runtime::Runtime::new()?;
/// let dumper = taskleak::monitor::Dumper::new(runtime.handle()).threads(taskleak::monitor::ThreadListing::WithStacks);
/// # let _ = dumper;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThreadListing {
    /// Grouped by name and what they are blocked in, from `/proc`.
    Grouped,
    /// Grouped, with each group's native stack: each thread (up to 32) is
    /// signalled once to capture its own.
    WithStacks,
}

/// Tasks of a [`TaskDump`] spawned at the same place and stuck at the same
/// await points.
///
/// ```
/// # fn show(group: &taskleak::monitor::TaskGroup) {
/// println!("{} tasks spawned at {}", group.count(), group.spawned_at().unwrap_or("?"));
/// if let Some(stack) = group.stack() {
///     print!("{stack}");
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TaskGroup {
    count: usize,
    spawned_at: Option<String>,
    stack: Option<AsyncStack>,
    waits_on: Option<String>,
    names: Vec<String>,
    task_ids: Vec<u64>,
}

impl TaskGroup {
    fn new(spawned_at: Option<&'static std::panic::Location<'static>>, stack: Option<AsyncStack>) -> Self {
        TaskGroup {
            count: 0,
            spawned_at: spawned_at.map(|at| format!("{}:{}:{}", without_dot_dirs(at.file()), at.line(), at.column())),
            stack,
            waits_on: None,
            names: Vec::new(),
            task_ids: Vec::new(),
        }
    }

    fn add(&mut self, id: u64, name: Option<&str>) {
        self.count += 1;
        // Every id, sorted and cut to a sample once all are in.
        self.task_ids.push(id);
        if let Some(name) = name
            && self.names.len() < SAMPLE_NAMES
            && !self.names.iter().any(|known| known == name)
        {
            self.names.push(name.to_owned());
        }
    }

    fn matches(&self, regex: &Regex) -> bool {
        self.spawned_at.as_deref().is_some_and(|at| regex.is_match(at))
            || self.names.iter().any(|name| regex.is_match(name))
            || self
                .stack
                .iter()
                .flat_map(|stack| stack.branches().iter().flatten())
                .any(|frame| regex.is_match(frame.function()) || frame.location().is_some_and(|at| regex.is_match(at)))
    }

    /// How many tasks this group stands for (exact).
    ///
    /// ```
    /// # fn show(group: &taskleak::monitor::TaskGroup) { println!("{}", group.count()); }
    /// ```
    pub fn count(&self) -> usize {
        self.count
    }

    /// Where the tasks were spawned, `path:line:col`; `None` without a
    /// tracker (see [`Dumper::tracker`]).
    ///
    /// ```
    /// # fn show(group: &taskleak::monitor::TaskGroup) { println!("{:?}", group.spawned_at()); }
    /// ```
    pub fn spawned_at(&self) -> Option<&str> {
        self.spawned_at.as_deref()
    }

    /// Where the tasks wait; `None` when the dump has no stack for them
    /// (no `--cfg tokio_unstable`, or they were running during the dump).
    /// An empty stack means they wait on something tokio's dump cannot see:
    /// a `TcpListener::accept`, a future inside `FuturesUnordered` or
    /// `join_all`, or a future from outside tokio.
    ///
    /// ```
    /// # fn show(group: &taskleak::monitor::TaskGroup) {
    /// if let Some(stack) = group.stack() { print!("{stack}"); }
    /// # }
    /// ```
    pub fn stack(&self) -> Option<&AsyncStack> {
        self.stack.as_ref()
    }

    /// What the tasks wait on, as a [`Cause`](crate::report::Cause) label
    /// (`oneshot`, `mpsc-receive`, `sleep`, …), when the stack names it.
    ///
    /// ```
    /// # fn show(group: &taskleak::monitor::TaskGroup) { println!("{:?}", group.waits_on()); }
    /// ```
    pub fn waits_on(&self) -> Option<&str> {
        self.waits_on.as_deref()
    }

    /// The distinct names the tasks were given (`tokio::task::Builder::name`,
    /// seen with `task_names`-style capture), at most 8.
    ///
    /// ```
    /// # fn show(group: &taskleak::monitor::TaskGroup) { println!("{:?}", group.names()); }
    /// ```
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The lowest ids of the group's tasks, at most [`SAMPLE_IDS`].
    ///
    /// ```
    /// # fn show(group: &taskleak::monitor::TaskGroup) { println!("{:?}", group.task_ids()); }
    /// ```
    pub fn task_ids(&self) -> &[u64] {
        &self.task_ids
    }
}

impl fmt::Display for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tasks = plural(self.count, "task");
        let at = self.spawned_at.as_deref().unwrap_or("(spawn site unknown)");
        write!(f, "{tasks} @ {at}")?;
        if let Some(waits_on) = &self.waits_on {
            write!(f, "  [{waits_on}]")?;
        }
        writeln!(f)?;
        match &self.stack {
            Some(stack) if stack.is_empty() => writeln!(
                f,
                "      (no await point in the trace: waiting on something tokio's dump cannot see — an accept, \
                 a future inside FuturesUnordered/join_all, or a future from outside tokio)"
            )?,
            Some(stack) => write!(f, "{stack}")?,
            None => {}
        }
        if !self.names.is_empty() {
            writeln!(f, "    names: {}", self.names.join(", "))?;
        }
        if !self.task_ids.is_empty() {
            let ids: Vec<String> = self.task_ids.iter().map(u64::to_string).collect();
            let more = self.count.saturating_sub(self.task_ids.len());
            let more = if more > 0 {
                format!(", … ({more} more)")
            } else {
                String::new()
            };
            writeln!(f, "    task ids: {}{more}", ids.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_through_parent_dirs_are_written_one_way() {
        assert_eq!(without_dot_dirs("tests/../examples/a.rs"), "examples/a.rs");
        assert_eq!(without_dot_dirs("./src/./a.rs"), "src/a.rs");
        assert_eq!(without_dot_dirs("../up/a.rs"), "../up/a.rs");
        assert_eq!(without_dot_dirs("/abs/x/../a.rs"), "/abs/a.rs");
    }
}
