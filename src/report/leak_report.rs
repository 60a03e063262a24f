//! The leak report: survivors grouped by spawn site and stack, exposed as
//! data for tools, and rendered for humans (`Display`, in `render`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::model::AsyncStack;
use crate::model::Cause;
use crate::model::TaskState;
use crate::report::source::SourceExcerpt;
use crate::report::thread_report::{ThreadGroup, ThreadSection};

mod render;

/// The tasks a check found still alive, grouped. This is the error of
/// [`Snapshot::verify`](crate::Snapshot::verify); `#[verify_no_leaks]`
/// fails the test with its `Display` text.
///
/// ```
/// # async fn check(snapshot: taskleak::Snapshot) {
/// if let Err(report) = snapshot.verify(&taskleak::Options::new()).await {
///     eprintln!("{report}");                       // for humans
///     for group in report.groups() {               // for tools
///         println!("{} x {:?}", group.count(), group.spawned_at());
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct LeakReport {
    test: Option<String>,
    leaked: usize,
    retries: u32,
    waited: Duration,
    /// Told by the watchdog: a task held the thread the check ran on.
    blocked: bool,
    groups: Vec<LeakGroup>,
    detail: Detail,
    notes: Vec<String>,
    threads: ThreadSection,
    scope: Scope,
}

/// What a report's check covered, for what it suggests at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One test, under `#[verify_no_leaks]` (or a check of one's own).
    Test,
    /// A whole test binary, at its end: ignore rules come from
    /// `taskleak.toml` there.
    Binary,
}

/// How much a report could say about each task.
///
/// ```
/// # fn show(report: &taskleak::LeakReport) {
/// if report.detail() == taskleak::report::Detail::CountOnly {
///     eprintln!("build with --cfg tokio_unstable for spawn sites and stacks");
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detail {
    /// Built with `--cfg tokio_unstable`: ids, spawn sites and (where the
    /// platform has task dumps) stacks.
    Full,
    /// Built without it: only how many tasks leaked.
    CountOnly,
}

/// Identical leaked tasks: same spawn site, same state, same stack.
///
/// ```
/// # fn show(group: &taskleak::report::LeakGroup) {
/// println!("{} task(s) spawned at {}", group.count(), group.spawned_at().unwrap_or("?"));
/// println!("ids: {:?}, state: {:?}", group.task_ids(), group.state());
/// print!("{}", group.stack());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct LeakGroup {
    pub(crate) task_ids: Vec<u64>,
    pub(crate) names: Vec<String>,
    pub(crate) spawned_at: Option<String>,
    pub(crate) state: TaskState,
    pub(crate) stack: Arc<AsyncStack>,
    pub(crate) cause: Cause,
    pub(crate) source: Option<Arc<SourceExcerpt>>,
}

/// What a check waited before judging: its re-checks and the time they took.
///
/// ```
/// # fn show(report: &taskleak::LeakReport) {
/// let taskleak::report::GracePeriod { retries, waited, .. } = report.grace_period();
/// println!("{retries} retries over {waited:?}");
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GracePeriod {
    /// Re-checks made after the first look.
    pub retries: u32,
    /// The time they took.
    pub waited: Duration,
}

impl LeakReport {
    /// The test that leaked, when the check ran under `#[verify_no_leaks]`.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { println!("{:?}", report.test()); }
    /// ```
    pub fn test(&self) -> Option<&str> {
        self.test.as_deref()
    }

    /// How many tasks leaked (after ignore rules).
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { assert!(report.leaked() > 0); }
    /// ```
    pub fn leaked(&self) -> usize {
        self.leaked
    }

    /// The groups of identical leaked tasks, largest first. Empty in
    /// [`Detail::CountOnly`] reports.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { println!("{}", report.groups().len()); }
    /// ```
    pub fn groups(&self) -> &[LeakGroup] {
        &self.groups
    }

    /// How much the report could say; see [`Detail`].
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { println!("{:?}", report.detail()); }
    /// ```
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// Re-checks made, and the time waited for stragglers, before judging.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) {
    /// let grace = report.grace_period();
    /// println!("{} retries over {:?}", grace.retries, grace.waited);
    /// # }
    /// ```
    pub fn grace_period(&self) -> GracePeriod {
        GracePeriod {
            retries: self.retries,
            waited: self.waited,
        }
    }

    /// How many threads the test leaked (after ignore rules).
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { println!("{}", report.leaked_threads()); }
    /// ```
    pub fn leaked_threads(&self) -> usize {
        self.threads.leaked_count()
    }

    /// The groups of identical leaked threads, largest first.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) {
    /// for group in report.thread_groups() {
    ///     println!("{} x {}: {}", group.count(), group.name(), group.state());
    /// }
    /// # }
    /// ```
    pub fn thread_groups(&self) -> &[ThreadGroup] {
        &self.threads.leaked
    }

    /// Threads still alive that another test running at the same time may
    /// have started: shown, but never a failure.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { println!("{}", report.unattributed_threads().len()); }
    /// ```
    pub fn unattributed_threads(&self) -> &[ThreadGroup] {
        &self.threads.unattributed
    }

    /// Why the thread part of the check is inconclusive, when it is: some
    /// threads could not be tied to the test (see
    /// [`LeakReport::unattributed_threads`]).
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) {
    /// if let Some(reason) = report.inconclusive() {
    ///     eprintln!("not judged: {reason}");
    /// }
    /// # }
    /// ```
    pub fn inconclusive(&self) -> Option<&str> {
        self.threads.inconclusive.as_deref()
    }

    /// Whether the report shows a leak of the test's own: leaked tasks or
    /// threads. An inconclusive report alone does not.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { assert!(report.is_leak() || report.inconclusive().is_some()); }
    /// ```
    pub fn is_leak(&self) -> bool {
        self.leaked > 0 || self.leaked_threads() > 0
    }

    /// Remarks on what the report could not include, and why.
    ///
    /// ```
    /// # fn show(report: &taskleak::LeakReport) { for note in report.notes() { println!("{note}"); } }
    /// ```
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl LeakReport {
    /// Tasks still alive after the grace period: `leaked` of them, in
    /// `groups` (none when `detail` is count-only).
    pub(crate) fn of_tasks(
        leaked: usize,
        groups: Vec<LeakGroup>,
        detail: Detail,
        grace: GracePeriod,
        notes: Vec<String>,
    ) -> Self {
        LeakReport {
            test: None,
            leaked,
            retries: grace.retries,
            waited: grace.waited,
            blocked: false,
            groups,
            detail,
            notes,
            threads: ThreadSection::default(),
            scope: Scope::Test,
        }
    }

    /// What a check could tell when a task held the thread it ran on, for
    /// `waited`: `reason` says so.
    pub(crate) fn of_blocked_check(
        test: Option<&str>,
        leaked: usize,
        groups: Vec<LeakGroup>,
        detail: Detail,
        waited: Duration,
        reason: &str,
    ) -> Self {
        LeakReport {
            test: test.map(str::to_owned),
            leaked,
            retries: 0,
            waited,
            blocked: true,
            groups,
            detail,
            notes: vec![reason.to_owned()],
            threads: ThreadSection::default(),
            scope: Scope::Test,
        }
    }

    /// The same report, of test `test`.
    pub(crate) fn for_test(mut self, test: Option<&str>) -> Self {
        self.test = test.map(str::to_owned);
        self
    }

    /// The same report, with what the thread check found.
    pub(crate) fn with_threads(mut self, threads: ThreadSection) -> Self {
        self.threads = threads;
        self
    }

    /// The same report, of a whole binary's check at its end.
    pub(crate) fn of_whole_binary(mut self) -> Self {
        self.scope = Scope::Binary;
        self
    }

    /// What the check covered.
    pub(crate) fn scope(&self) -> Scope {
        self.scope
    }

    /// What the thread check found.
    pub(crate) fn thread_section(&self) -> &ThreadSection {
        &self.threads
    }

    /// A report of leaked threads only.
    pub(crate) fn of_threads(test: &str, threads: ThreadSection) -> Self {
        LeakReport {
            test: Some(test.to_owned()),
            leaked: 0,
            retries: threads.retries,
            waited: threads.waited,
            blocked: false,
            groups: Vec::new(),
            detail: if cfg!(tokio_unstable) {
                Detail::Full
            } else {
                Detail::CountOnly
            },
            notes: Vec::new(),
            threads,
            scope: Scope::Test,
        }
    }
}

impl LeakGroup {
    /// How many identical tasks this group stands for.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) { println!("{}", group.count()); }
    /// ```
    pub fn count(&self) -> usize {
        self.task_ids.len()
    }

    /// The tasks' ids (tokio's `task::Id`, as numbers), ascending.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) { println!("{:?}", group.task_ids()); }
    /// ```
    pub fn task_ids(&self) -> &[u64] {
        &self.task_ids
    }

    /// The distinct names of the group's tasks (`tokio::task::Builder::name`),
    /// sorted; empty when none was named or names could not be seen.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) { println!("{:?}", group.names()); }
    /// ```
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The innermost spawn site, `path:line:col` as the compiler wrote it.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) { println!("{:?}", group.spawned_at()); }
    /// ```
    pub fn spawned_at(&self) -> Option<&str> {
        self.spawned_at.as_deref()
    }

    /// What the tasks were doing; see [`TaskState`].
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) { println!("{:?}", group.state()); }
    /// ```
    pub fn state(&self) -> &TaskState {
        &self.state
    }

    /// Why the tasks are stuck, derived from their state and stack; see
    /// [`Cause`].
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) {
    /// println!("{} ({})", group.cause(), group.cause().label());
    /// # }
    /// ```
    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// The source lines at the spawn site, read from the file the compiler
    /// named (your workspace's, or a dependency's in the cargo registry);
    /// `None` when it cannot be read. They say what the task runs even when
    /// its stack is empty ([`TaskState::WaitingUntraced`], `Running`).
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) {
    /// if let Some(source) = group.spawn_source() {
    ///     print!("{source:4}");
    /// }
    /// # }
    /// ```
    pub fn spawn_source(&self) -> Option<&SourceExcerpt> {
        self.source.as_deref()
    }

    /// Where the tasks are stuck (empty unless [`TaskState::Waiting`]).
    ///
    /// ```
    /// # fn show(group: &taskleak::report::LeakGroup) { print!("{}", group.stack()); }
    /// ```
    pub fn stack(&self) -> &AsyncStack {
        &self.stack
    }
}

/// One leaked task before grouping.
#[derive(Debug)]
pub(crate) struct Survivor {
    pub(crate) id: u64,
    pub(crate) name: Option<String>,
    pub(crate) spawned_at: Option<String>,
    pub(crate) state: TaskState,
    /// Shared: identical tasks point at one resolved stack.
    pub(crate) stack: Arc<AsyncStack>,
}

/// Groups identical survivors, largest group first, then by spawn site.
pub(crate) fn group(survivors: Vec<Survivor>) -> Vec<LeakGroup> {
    let root = crate::model::source_root();
    let mut sources: HashMap<String, Option<Arc<SourceExcerpt>>> = HashMap::new();
    let mut source_at = |site: &Option<String>| {
        let site = site.as_deref()?;
        sources
            .entry(site.to_owned())
            .or_insert_with(|| crate::report::source::excerpt_at(site, root.as_deref()).map(Arc::new))
            .clone()
    };
    let mut groups = crate::model::group_by(
        survivors,
        |survivor| {
            (
                survivor.spawned_at.clone(),
                survivor.state.clone(),
                survivor.stack.clone(),
            )
        },
        |survivor| LeakGroup {
            task_ids: vec![survivor.id],
            names: survivor.name.into_iter().collect(),
            source: source_at(&survivor.spawned_at),
            spawned_at: survivor.spawned_at,
            cause: Cause::of(&survivor.state, &survivor.stack),
            state: survivor.state,
            stack: survivor.stack,
        },
        |group, survivor| {
            group.task_ids.push(survivor.id);
            group.names.extend(survivor.name);
        },
    );
    for group in &mut groups {
        group.task_ids.sort_unstable();
        group.names.sort_unstable();
        group.names.dedup();
    }
    // Root causes first: a task that only waits on another task (its
    // JoinHandle, a lock) comes after the tasks it may be waiting on.
    groups.sort_by(|a, b| {
        let waiter = |group: &LeakGroup| group.cause.waits_on_another_task();
        waiter(a)
            .cmp(&waiter(b))
            .then_with(|| b.count().cmp(&a.count()))
            .then_with(|| a.spawned_at.cmp(&b.spawned_at))
            // Ids are sorted within each group: the lowest decides ties, so
            // the order never depends on how survivors were collected.
            .then_with(|| a.task_ids.first().cmp(&b.task_ids.first()))
    });
    groups
}

/// The lines that turn on full reports, quoted in count-only reports.
pub(crate) const ENABLE_FULL_REPORTS: &str = "[build]\nrustflags = [\"--cfg\", \"tokio_unstable\"]";

impl std::error::Error for LeakReport {}

#[cfg(test)]
mod tests {
    use super::*;

    fn survivor(id: u64, site: &str) -> Survivor {
        Survivor {
            id,
            name: None,
            spawned_at: Some(site.into()),
            state: TaskState::Running,
            stack: Arc::default(),
        }
    }

    #[test]
    fn groups_identical_survivors_largest_first() {
        let groups = group(vec![
            survivor(3, "a.rs:1:1"),
            survivor(1, "b.rs:2:2"),
            survivor(2, "b.rs:2:2"),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].task_ids(), [1, 2]);
        assert_eq!(groups[1].spawned_at(), Some("a.rs:1:1"));
    }

    #[test]
    fn names_are_shown_once_per_distinct_name() {
        let named = |id, name: &str| Survivor {
            name: Some(name.into()),
            ..survivor(id, "a.rs:1:1")
        };
        let groups = group(vec![named(1, "refresher"), named(2, "refresher")]);
        assert_eq!(groups[0].names(), ["refresher"]);
        let mut text = String::new();
        let report = LeakReport {
            test: None,
            leaked: 2,
            retries: 0,
            waited: Duration::ZERO,
            blocked: false,
            groups,
            detail: Detail::Full,
            notes: vec![],
            threads: Default::default(),
            scope: Scope::Test,
        };
        std::fmt::write(&mut text, format_args!("{report}")).expect("rendered");
        assert!(text.contains(r#"(task ids 1, 2, name "refresher")"#), "{text}");
    }

    #[test]
    fn renders_headline_groups_and_hint() {
        let report = LeakReport {
            test: Some("handles_request".into()),
            leaked: 3,
            retries: 20,
            waited: Duration::from_millis(430),
            blocked: false,
            groups: group(vec![
                survivor(7, "src/worker.rs:12:5"),
                survivor(8, "src/worker.rs:12:5"),
                survivor(9, "src/a.rs:1:2"),
            ]),
            detail: Detail::Full,
            notes: vec![],
            threads: Default::default(),
            scope: Scope::Test,
        };
        let text = report.to_string();
        assert!(
            text.starts_with(
                "taskleak: 3 tasks leaked by `handles_request` (still alive after 20 retries over 0.43 s)"
            ),
            "{text}"
        );
        assert!(
            text.contains("2 tasks  spawned at src/worker.rs:12:5  (task ids 7, 8) — running, never yielded"),
            "{text}"
        );
        assert!(
            text.contains(r#"ignore_spawned_at = r"^src/worker\.rs:12:5$""#),
            "{text}"
        );
    }

    /// The whole rendering, pinned: any change to it is a reviewed change.
    #[test]
    fn renders_a_full_report_exactly() {
        use crate::model::RawFrame;
        let frame = |name: &str, file: &str, line| RawFrame::at(name, file, line, 9);
        let tokio = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src";
        let stack = AsyncStack::from_raw(
            vec![vec![
                frame(
                    "tokio::sync::notify::Notified::poll_notified",
                    &format!("{tokio}/sync/notify.rs"),
                    900,
                ),
                frame(
                    "<tokio::sync::notify::Notified as core::future::future::Future>::poll",
                    &format!("{tokio}/sync/notify.rs"),
                    1100,
                ),
                frame("my_crate::cache::Cache::refresh_loop::{{closure}}", "src/cache.rs", 48),
                frame("my_crate::cache::Cache::start::{{closure}}", "src/cache.rs", 41),
            ]],
            None,
        );
        let waiting = |id, name: Option<&str>| Survivor {
            id,
            name: name.map(str::to_owned),
            spawned_at: Some("src/cache.rs:41:9".into()),
            state: TaskState::Waiting,
            stack: Arc::new(stack.clone()),
        };
        let report = LeakReport {
            test: Some("handles_request".into()),
            leaked: 3,
            retries: 20,
            waited: Duration::from_millis(431),
            blocked: false,
            groups: group(vec![
                waiting(7, Some("cache-refresher")),
                waiting(8, Some("cache-refresher")),
                survivor(9, "src/worker.rs:12:5"),
            ]),
            detail: Detail::Full,
            notes: vec!["no async stacks: an example note".into()],
            threads: Default::default(),
            scope: Scope::Test,
        };
        let expected = r#"taskleak: 3 tasks leaked by `handles_request` (still alive after 20 retries over 0.43 s)

  2 tasks  spawned at src/cache.rs:41:9  (task ids 7, 8, name "cache-refresher")
    stuck at:
      my_crate::cache::Cache::start         src/cache.rs:41:9
      my_crate::cache::Cache::refresh_loop  src/cache.rs:48:9
      tokio::sync::notify::Notified         (tokio)
    cause: waiting for a Notify that has not been notified
    fix:   notify on every path, including errors; or wait with a timeout
           (https://docs.rs/taskleak/latest/taskleak/fixes/index.html#notify)

  1 task  spawned at src/worker.rs:12:5  (task id 9) — running, never yielded
    fix:   give the loop an exit and yield (`yield_now`), or move CPU work to `spawn_blocking` with a stop flag
           (https://docs.rs/taskleak/latest/taskleak/fixes/index.html#running)

  note: no async stacks: an example note

  hint: if such a task is meant to outlive the test, ignore it with
        #[taskleak::verify_no_leaks(ignore_spawned_at = r"^src/cache\.rs:41:9$")]
"#;
        assert_eq!(report.to_string(), expected);
    }

    /// A thread report, pinned: the group, then the cheapest ignore rule.
    #[test]
    fn renders_a_thread_report_with_its_ignore_hint_exactly() {
        use crate::model::RawFrame;
        use crate::report::thread_report::{LeakedThread, ThreadKind, ThreadState, group};
        let stack = crate::model::native_frames(
            &[
                RawFrame::at(
                    "std::net::tcp::TcpListener::accept",
                    "/rustc/x/library/std/src/net/tcp.rs",
                    1,
                    1,
                ),
                RawFrame::at(
                    "my_crate::fixture::start_echo_server::{{closure}}",
                    "src/fixture.rs",
                    12,
                    9,
                ),
                RawFrame::at(
                    "std::sys::backtrace::__rust_begin_short_backtrace",
                    "/rustc/x/library/std/src/sys/backtrace.rs",
                    1,
                    1,
                ),
            ],
            None,
        );
        let thread = |name: &str, inherited: Option<&str>| LeakedThread {
            tid: 41,
            name: name.to_owned(),
            inherited_name: inherited.map(str::to_owned),
            state: ThreadState::Accepting("TCP listener 127.0.0.1:4000".to_owned()),
            stack: stack.clone(),
            stack_unavailable: None,
            kind: ThreadKind::Plain,
        };
        let report = |leaked: LeakedThread| {
            let mut threads = crate::report::thread_report::ThreadSection {
                leaked: group(vec![leaked]),
                retries: 20,
                waited: Duration::from_millis(431),
                ..Default::default()
            };
            threads.notes.clear();
            LeakReport::of_threads("tests::serves", threads).to_string()
        };
        let unnamed = r#"taskleak: 1 thread leaked by `tests::serves` (still alive after 20 retries over 0.43 s)

  1 thread started without a name (inherited the kernel name "tests::serves")  (thread id 41)
    blocked: accepting connections on TCP listener 127.0.0.1:4000
    stack:
      my_crate::fixture::start_echo_server  src/fixture.rs:12:9
      std::net::tcp::TcpListener::accept    (std)
    fix:   stop accepting on shutdown: a non-blocking listener polled with a stop flag
           (https://docs.rs/taskleak/latest/taskleak/fixes/index.html#thread-io)

  hint: if such a thread is meant to outlive the test (a shared fixture's), ignore it with
        #[taskleak::verify_no_leaks(ignore_any_function = r"^my_crate::fixture::start_echo_server$")]
        (a function rule waits for the thread's stack, a few ms after the body; naming the thread
        with `std::thread::Builder::name` and ignoring it with `ignore_thread_name` costs nothing)
"#;
        assert_eq!(report(thread("", Some("tests::serves"))), unnamed);
        let named = report(thread("log-flusher", None));
        assert!(
            named.contains(r#"  1 thread named "log-flusher"  (thread id 41)"#),
            "{named}"
        );
        assert!(
            named.ends_with(
                "  hint: if such a thread is meant to outlive the test (a shared fixture's), ignore it with\n        \
                 #[taskleak::verify_no_leaks(ignore_thread_name = r\"^log-flusher$\")]\n"
            ),
            "{named}"
        );
    }

    #[test]
    fn count_only_reports_quote_the_config_lines() {
        let report = LeakReport {
            test: None,
            leaked: 1,
            retries: 1,
            waited: Duration::ZERO,
            blocked: false,
            groups: vec![],
            detail: Detail::CountOnly,
            notes: vec![],
            threads: Default::default(),
            scope: Scope::Test,
        };
        let text = report.to_string();
        assert!(
            text.contains("taskleak: 1 task leaked (still alive after 1 retry"),
            "{text}"
        );
        assert!(text.contains(r#"rustflags = ["--cfg", "tokio_unstable"]"#), "{text}");
    }
}
