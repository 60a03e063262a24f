//! The one template every checked test runs through, tokio and plain
//! alike: settings, the thread snapshot, the body with what its kind checks
//! of tasks, the thread check, the verdict. Reached only through
//! [`crate::__private`].

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::config::{DUMP_TIMEOUT, Mode, Options, Settings};
use crate::harness::check_thread::Checked;
use crate::harness::spec::{Flavor, TestSpec};
use crate::harness::test_runtime::TestRuntime;
use crate::harness::verdict::{conclude, judge, panic_message};
use crate::harness::watchdog;
use crate::report::LeakReport;
use crate::tasks::settle;
use crate::tasks::{Snapshot, Tracker};
use crate::threads::{RuntimeThreads, ThreadSnapshot};

/// How long a clean test's runtime may take to shut down (blocking work
/// still running); past it, the runtime is left to finish in the background.
const CLEAN_SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

/// The least a thread-checked test's runtime is given to shut down, so its
/// idle blocking-pool threads are joined even with `max_retries = 0`.
const MIN_SHUTDOWN_WAIT: Duration = Duration::from_millis(100);

/// How long a multi-thread test's tasks, alive when its body ends, are
/// given to end on the workers before its check moves the runtime to a
/// thread of its own: long enough for a worker to finish a task the body
/// just awaited, a fraction of what starting that thread costs.
const WORKERS_SETTLE: Duration = Duration::from_micros(200);

/// What differs between a tokio test and a plain one: how the body runs
/// unchecked, and how it runs checked with what its kind checks of tasks.
/// Everything else is [`run_test`]'s, the same for both.
trait TestBody<T> {
    /// Whether a check has anything to look at with these options.
    fn is_checked(&self, spec: &TestSpec, options: &Options) -> bool;

    /// Runs the body exactly as it would run without taskleak.
    fn run_unchecked(self) -> T;

    /// Runs the body, then checks the tasks it started; `threads` is the
    /// thread snapshot taken before, when threads are checked.
    fn run_checked(
        self,
        run: &Run<'_>,
        threads: Option<&mut ThreadSnapshot>,
        is_failure: &dyn Fn(&T) -> bool,
    ) -> Ran<T>;
}

/// What a checked body's run knows: its spec, options and path.
struct Run<'a> {
    spec: &'a TestSpec,
    options: &'a Options,
    test: &'a str,
}

/// A checked body's run, ready for the thread check and the verdict.
struct Ran<T> {
    outcome: Result<T, Box<dyn Any + Send>>,
    report: Option<LeakReport>,
    /// The threads of the runtime taskleak built for the test, if any.
    runtime_threads: RuntimeThreads,
    /// Tokio tasks the body started outside every watched runtime.
    unwatched_tasks: u64,
}

/// The template: settings and options, the thread snapshot, the body (see
/// [`TestBody`]), the thread check, the verdict.
#[track_caller]
fn run_test<T>(
    spec: TestSpec,
    is_failure: impl Fn(&T) -> bool,
    expected_panic: Option<fn() -> T>,
    body: impl TestBody<T>,
) -> T {
    let (settings, options) = settings_and_options(&spec);
    if settings.mode == Mode::Off || !body.is_checked(&spec, &options) {
        return body.run_unchecked();
    }
    let test = spec.test_path();
    let mut threads = options
        .get_check_threads()
        .then(|| ThreadSnapshot::begin(&test, options.get_serial()))
        .flatten();
    let run = Run {
        spec: &spec,
        options: &options,
        test: &test,
    };
    let ran = body.run_checked(&run, threads.as_mut(), &is_failure);
    let found = threads
        .as_ref()
        .map(|threads| threads.check(&options, &ran.runtime_threads));
    let judged = judge(&test, ran.report, found, ran.unwatched_tasks, &settings);
    // `threads` outlives the verdict (dropped on return or unwind): a
    // serial test's turn passes on once its failure is written.
    conclude(&test, ran.outcome, judged, is_failure, expected_panic)
}

/// Runs one `#[verify_no_leaks] #[tokio::test]` body.
///
/// `configure` applies the `#[tokio::test]` arguments other than the flavor;
/// `is_failure` tells whether the body's output already fails the test (an
/// `Err`), in which case a leak is reported beside it, not instead of it.
/// `expected_panic` is `Some(|| ())` for a `#[should_panic]` test: how to
/// end it *without* the panic it expects, so that a leak fails it.
#[track_caller]
pub fn run_tokio_test<T>(
    spec: TestSpec,
    configure: impl FnOnce(&mut tokio::runtime::Builder),
    is_failure: impl Fn(&T) -> bool,
    expected_panic: Option<fn() -> T>,
    body: Pin<&mut dyn Future<Output = T>>,
) -> T {
    let flavor = spec.flavor;
    run_test(
        spec,
        is_failure,
        expected_panic,
        TokioBody {
            flavor,
            configure,
            body,
        },
    )
}

/// Runs one `#[verify_no_leaks] #[test]` body: a thread check, and its
/// tasks on a [`SharedRuntime`](crate::SharedRuntime) when it names one.
/// `is_failure` and `expected_panic` are as for [`run_tokio_test`].
#[track_caller]
pub fn run_sync_test<T>(
    spec: TestSpec,
    is_failure: impl Fn(&T) -> bool,
    expected_panic: Option<fn() -> T>,
    body: impl FnOnce() -> T,
) -> T {
    run_test(spec, is_failure, expected_panic, PlainBody(body))
}

/// A `#[tokio::test]` body and how to build its runtime.
struct TokioBody<'a, T, C> {
    flavor: Flavor,
    configure: C,
    body: Pin<&'a mut dyn Future<Output = T>>,
}

impl<T, C: FnOnce(&mut tokio::runtime::Builder)> TokioBody<'_, T, C> {
    fn builder(flavor: Flavor, configure: C) -> tokio::runtime::Builder {
        let mut builder = match flavor {
            Flavor::CurrentThread | Flavor::Local => tokio::runtime::Builder::new_current_thread(),
            Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        };
        configure(&mut builder);
        builder
    }
}

impl<T, C: FnOnce(&mut tokio::runtime::Builder)> TestBody<T> for TokioBody<'_, T, C> {
    fn is_checked(&self, _: &TestSpec, _: &Options) -> bool {
        // Its runtime's tasks are always checked.
        true
    }

    #[track_caller]
    fn run_unchecked(self) -> T {
        // Exactly what `#[tokio::test]` would have done.
        let mut builder = Self::builder(self.flavor, self.configure);
        TestRuntime::build(&mut builder, self.flavor).block_on(self.body)
    }

    #[track_caller]
    fn run_checked(
        self,
        run: &Run<'_>,
        threads: Option<&mut ThreadSnapshot>,
        is_failure: &dyn Fn(&T) -> bool,
    ) -> Ran<T> {
        let Run { options, test, .. } = *run;
        let flavor = self.flavor;
        let mut builder = Self::builder(flavor, self.configure);
        let tracker = Tracker::new();
        tracker.install(&mut builder);
        #[cfg(all(tokio_unstable, feature = "task-names"))]
        let _names = crate::tasks::capture_on_this_thread();
        let thread_checked = threads.is_some();
        let runtime_threads = RuntimeThreads::default();
        let tag = threads.as_deref().and_then(ThreadSnapshot::tag).map(str::to_owned);
        // `#[tokio::test]` has no thread hooks of its own to preserve.
        runtime_thread_hooks(&mut builder, &runtime_threads, tag);
        #[cfg(tokio_unstable)]
        let accounting = crate::tasks::Accounting::start_if(matches!(flavor, Flavor::MultiThread));
        let runtime = TestRuntime::build(&mut builder, flavor);
        // Its blocking tasks, workers included, are watched ones.
        #[cfg(tokio_unstable)]
        let _watched = accounting.finish(runtime.handle());

        let body = self.body;
        let (outcome, snapshot, unsettled, unwatched_tasks) = runtime.block_on(async {
            // The tracker is ours and installed: no need for the probe spawn
            // `Tracker::snapshot` makes to check that.
            let snapshot = Snapshot::new(tracker.clone(), tokio::runtime::Handle::current());
            let window = UnwatchedTasks::open();
            let outcome = CatchUnwind(body).await;
            let unwatched = window.close();
            let unsettled = snapshot.anything_unsettled(options);
            (outcome, snapshot, unsettled, unwatched)
        });
        // A clean test is judged by that first look: it never runs the
        // runtime again, nor pays for a thread or a watchdog.
        let unsettled = unsettled && !settles_on_workers(flavor, &snapshot, options);
        let (report, runtime) = if unsettled {
            let own_failure = || own_failure(&outcome, is_failure);
            check_tasks(runtime, &snapshot, options, test, own_failure)
        } else {
            (None, Some(runtime))
        };

        match runtime {
            // Abandoned to a task that never yields.
            None => {}
            // A leaked task may never yield or end: do not wait for it.
            Some(runtime) if report.is_some() => runtime.shutdown_background(),
            // Blocking-pool threads still running a closure past the grace
            // period are leaks the thread check reports. At least a moment, so
            // that idle ones are joined even with no grace period.
            Some(runtime) if thread_checked => {
                runtime.shutdown_timeout(settle::budget(options).max(MIN_SHUTDOWN_WAIT));
            }
            Some(runtime) => runtime.shutdown_timeout(CLEAN_SHUTDOWN_LIMIT),
        }
        Ran {
            outcome,
            report,
            runtime_threads,
            unwatched_tasks,
        }
    }
}

/// A plain `#[test]` body.
struct PlainBody<F>(F);

impl<T, F: FnOnce() -> T> TestBody<T> for PlainBody<F> {
    fn is_checked(&self, spec: &TestSpec, options: &Options) -> bool {
        options.get_check_threads() || spec.shared_runtime.is_some()
    }

    fn run_unchecked(self) -> T {
        (self.0)()
    }

    fn run_checked(
        self,
        run: &Run<'_>,
        threads: Option<&mut ThreadSnapshot>,
        is_failure: &dyn Fn(&T) -> bool,
    ) -> Ran<T> {
        let Run { spec, options, test } = *run;
        if let (Some(threads), Some(shared)) = (threads, spec.shared_runtime) {
            threads.exclude_shared(shared.threads().clone());
        }
        let tasks = spec.shared_runtime.and_then(SharedTasks::begin);
        let window = UnwatchedTasks::open();
        let outcome = {
            // Tasks the body spawns on the shared runtime are this test's.
            let _owner = tasks
                .as_ref()
                .map(|tasks| crate::tasks::registry::owner::enter(tasks.owner));
            panic::catch_unwind(AssertUnwindSafe(self.0))
        };
        let unwatched_tasks = window.close();
        let report = tasks.and_then(|tasks| tasks.check(options, test, own_failure(&outcome, is_failure)));
        Ran {
            outcome,
            report,
            runtime_threads: RuntimeThreads::default(),
            unwatched_tasks,
        }
    }
}

/// Whether a multi-thread runtime's tasks, alive at the first look, end
/// within [`WORKERS_SETTLE`] while this thread only waits: a worker may
/// still be finishing the task whose result the body just awaited. The
/// runtime is not run here, so a task that never yields cannot hold this
/// thread; what is still alive after gets the full check.
fn settles_on_workers(flavor: Flavor, snapshot: &Snapshot, options: &Options) -> bool {
    if !matches!(flavor, Flavor::MultiThread) {
        // A current-thread runtime runs its tasks only inside `block_on`.
        return false;
    }
    let deadline = std::time::Instant::now() + WORKERS_SETTLE;
    while std::time::Instant::now() < deadline {
        std::thread::yield_now();
        if !snapshot.anything_unsettled(options) {
            return true;
        }
    }
    false
}

/// The environment's settings and the test's options, or a panic located
/// at the test (`match`, not closures: `#[track_caller]` reaches through).
#[track_caller]
fn settings_and_options(spec: &TestSpec) -> (Settings, Options) {
    let settings = match Settings::of_process() {
        Ok(settings) => settings,
        Err(error) => panic!("taskleak: {error}"),
    };
    let options = match spec.options() {
        Ok(options) => settings.apply(options),
        Err(error) => panic!("taskleak: {error}"),
    };
    (settings, options)
}

/// The grace period and the report of a test whose tasks outlived its
/// body. A runtime that can move is checked from a thread of its own, so a
/// task that never yields holds that thread, not libtest's: past the
/// check's bound the test fails and the runtime is abandoned (`None`). A
/// `LocalRuntime` cannot move: its check runs here, under the watchdog.
fn check_tasks(
    runtime: TestRuntime,
    snapshot: &Snapshot,
    options: &Options,
    test: &str,
    own_failure: impl FnOnce() -> Option<String>,
) -> (Option<LeakReport>, Option<TestRuntime>) {
    let runtime = match runtime {
        TestRuntime::Runtime(runtime) => {
            match crate::harness::check_thread::check(runtime, snapshot, options, test, check_limit(options)) {
                Checked::Finished(report, runtime) => return (report, Some(TestRuntime::Runtime(runtime))),
                Checked::Abandoned(report) => return (Some(report), None),
                // No thread could be started: check here.
                Checked::NotStarted(runtime) => TestRuntime::Runtime(runtime),
            }
        }
        local @ TestRuntime::Local(_) => local,
    };
    let arm_watchdog = || arm_watchdog(snapshot, options, test, own_failure());
    let report = runtime.block_on(snapshot.check(options, Some(test), arm_watchdog));
    (report, Some(runtime))
}

/// How long a check that found survivors may take: its grace period, the
/// dump's bound, and [`watchdog::GRACE`] for symbol resolution.
fn check_limit(options: &Options) -> Duration {
    settle::budget(options) + DUMP_TIMEOUT + watchdog::GRACE
}

/// Arms the watchdog of a check that found survivors: if a task holds the
/// thread the check runs on, it reports what it can and exits the process.
fn arm_watchdog(snapshot: &Snapshot, options: &Options, test: &str, own_failure: Option<String>) -> watchdog::Watchdog {
    let limit = check_limit(options);
    let (snapshot, options, test) = (snapshot.clone(), options.clone(), test.to_owned());
    watchdog::arm(limit, move || {
        let reason = format!(
            "the check could not finish within {} s: a task holds the thread the check runs on \
             (it runs without yielding on a current-thread runtime); exiting the test process",
            limit.as_secs()
        );
        let report = snapshot.describe_blocked(&options, Some(&test), &reason, limit);
        let verdict = crate::report::record::Verdict {
            leak_fails: true,
            own_failure: own_failure.is_some(),
            unwatched: Default::default(),
        };
        crate::report::record::write(&report, verdict);
        let text = if report.leaked() == 0 {
            format!("taskleak: the check of `{test}` could not finish: {reason}")
        } else {
            report.to_string()
        };
        match own_failure {
            Some(failure) => format!("{text}\n  note: {failure}"),
            None => text,
        }
    })
}

/// The test's own failure, in words, if it failed.
fn own_failure<T>(outcome: &Result<T, Box<dyn Any + Send>>, is_failure: &dyn Fn(&T) -> bool) -> Option<String> {
    match outcome {
        Err(payload) => Some(format!("the test itself panicked: {}", panic_message(payload.as_ref()))),
        Ok(output) if is_failure(output) => Some("the test itself returned an `Err`".to_owned()),
        Ok(_) => None,
    }
}

/// What [`verify_test_binary!`](crate::verify_test_binary) runs before `main`.
pub fn binary_start(binary: &'static str, manifest_dir: &'static str) {
    crate::harness::binary::start(binary, manifest_dir);
}

/// The tokio tasks a test body starts outside every runtime taskleak
/// watches; counted only with `--cfg tokio_unstable`, where taskleak's
/// hooks see every task of the runtimes it watches.
struct UnwatchedTasks {
    #[cfg(tokio_unstable)]
    window: Option<crate::tasks::Window>,
}

impl UnwatchedTasks {
    fn open() -> Self {
        UnwatchedTasks {
            #[cfg(tokio_unstable)]
            window: crate::tasks::Window::open(),
        }
    }

    /// How many there were.
    fn close(self) -> u64 {
        #[cfg(tokio_unstable)]
        return self.window.map_or(0, crate::tasks::Window::close);
        #[cfg(not(tokio_unstable))]
        {
            let _ = self;
            0
        }
    }
}

/// A test's tasks on a [`SharedRuntime`](crate::SharedRuntime).
struct SharedTasks {
    runtime: &'static crate::harness::shared::SharedRuntime,
    snapshot: Snapshot,
    owner: u64,
}

impl SharedTasks {
    fn begin(runtime: &'static crate::harness::shared::SharedRuntime) -> Option<Self> {
        if !cfg!(tokio_unstable) {
            crate::threads::say_once(
                "taskleak: tasks on a SharedRuntime are tied to their tests through tokio's task hooks, which \
                 need `--cfg tokio_unstable`: they are not checked in this build",
            );
            return None;
        }
        let owner = crate::tasks::registry::owner::next();
        let snapshot = Snapshot::new(runtime.tracker().clone(), runtime.handle().clone()).owned_by(owner);
        Some(SharedTasks {
            runtime,
            snapshot,
            owner,
        })
    }

    /// Checks the test's tasks from the test's thread, driving the runtime.
    fn check(self, options: &Options, test: &str, own_failure: Option<String>) -> Option<LeakReport> {
        let snapshot = &self.snapshot;
        let arm = || arm_watchdog(snapshot, options, test, own_failure);
        self.runtime.block_on(snapshot.check(options, Some(test), arm))
    }
}

/// Records the runtime's threads as they start, gives them the test's
/// kernel name (`tag`: threads they start without a name inherit it; Rust's
/// name for them, in panic messages, stays tokio's), and, with feature
/// `task-names`, has them read task names.
fn runtime_thread_hooks(builder: &mut tokio::runtime::Builder, threads: &RuntimeThreads, tag: Option<String>) {
    let threads = threads.clone();
    builder.on_thread_start(move || {
        threads.record_current();
        if let Some(tag) = &tag {
            let _ = crate::threads::set_current_name(tag);
        }
        #[cfg(all(tokio_unstable, feature = "task-names"))]
        crate::tasks::on_runtime_thread_start();
    });
    #[cfg(all(tokio_unstable, feature = "task-names"))]
    builder.on_thread_stop(crate::tasks::on_runtime_thread_stop);
}

/// Polls the body, turning a panic into a value so the check still runs.
struct CatchUnwind<'a, T>(Pin<&'a mut dyn Future<Output = T>>);

impl<T> Future for CatchUnwind<'_, T> {
    type Output = Result<T, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let body = &mut self.0;
        match panic::catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
