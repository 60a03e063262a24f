//! What `#[verify_no_leaks]` expands to: build the test's runtime with the
//! tracker installed, run the body, check, and fail the test without ever
//! masking the body's own panic or error; one template for tokio and plain
//! tests. Reached only through [`crate::__private`].

use std::any::Any;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::config::{DUMP_TIMEOUT, Options};
use crate::config::{Mode, Settings};
use crate::harness::check_thread::Checked;
use crate::harness::watchdog;
use crate::report::LeakReport;
use crate::report::ThreadSection;
use crate::report::record::{Company, Unwatched};
use crate::tasks::Snapshot;
use crate::tasks::Tracker;
use crate::tasks::settle;
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

/// The runtime flavor of `#[tokio::test(flavor = …)]`.
#[derive(Clone, Copy, Debug)]
pub enum Flavor {
    /// `flavor = "current_thread"`, tokio's default for tests.
    CurrentThread,
    /// `flavor = "multi_thread"`.
    MultiThread,
    /// `flavor = "local"`: a `LocalRuntime`, where `spawn_local` works.
    Local,
}

/// The runtime a tokio test runs on: a `Runtime`, or a `LocalRuntime` for
/// `flavor = "local"`.
enum TestRuntime {
    Runtime(tokio::runtime::Runtime),
    Local(tokio::runtime::LocalRuntime),
}

impl TestRuntime {
    #[track_caller]
    fn build(builder: &mut tokio::runtime::Builder, flavor: Flavor) -> Self {
        builder.enable_all();
        let built = match flavor {
            Flavor::Local => builder.build_local(Default::default()).map(TestRuntime::Local),
            Flavor::CurrentThread | Flavor::MultiThread => builder.build().map(TestRuntime::Runtime),
        };
        // `match`, not a closure: `#[track_caller]` then points at the test.
        match built {
            Ok(runtime) => runtime,
            Err(error) => panic!("taskleak: failed building the test's tokio runtime: {error}"),
        }
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            TestRuntime::Runtime(runtime) => runtime.handle(),
            TestRuntime::Local(runtime) => runtime.handle(),
        }
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            TestRuntime::Runtime(runtime) => runtime.block_on(future),
            TestRuntime::Local(runtime) => runtime.block_on(future),
        }
    }

    fn shutdown_background(self) {
        match self {
            TestRuntime::Runtime(runtime) => runtime.shutdown_background(),
            TestRuntime::Local(runtime) => runtime.shutdown_background(),
        }
    }

    fn shutdown_timeout(self, limit: Duration) {
        match self {
            TestRuntime::Runtime(runtime) => runtime.shutdown_timeout(limit),
            TestRuntime::Local(runtime) => runtime.shutdown_timeout(limit),
        }
    }
}

/// The attribute's arguments, as literals the macro validated.
#[derive(Debug)]
pub struct TestSpec {
    /// `module_path!()` where the test is defined.
    pub module: &'static str,
    /// The test function's name.
    pub name: &'static str,
    /// The runtime flavor.
    pub flavor: Flavor,
    /// `max_retries = N`.
    pub max_retries: Option<u32>,
    /// `max_sleep = "…"`.
    pub max_sleep: Option<Duration>,
    /// `ignore_top_function = "…"`, each.
    pub ignore_top_function: &'static [&'static str],
    /// `ignore_any_function = "…"`, each.
    pub ignore_any_function: &'static [&'static str],
    /// `ignore_spawned_at = "…"`, each.
    pub ignore_spawned_at: &'static [&'static str],
    /// `ignore_thread_name = "…"`, each.
    pub ignore_thread_name: &'static [&'static str],
    /// `ignore_dependency = "…"`, each.
    pub ignore_dependency: &'static [&'static str],
    /// `threads = false` turns thread checks off.
    pub check_threads: bool,
    /// `serial = true`: take turns with other serial thread-checked tests.
    pub serial: bool,
    /// `runtime = "PATH"`: the shared runtime whose tasks of this test count.
    pub shared_runtime: Option<&'static crate::harness::shared::SharedRuntime>,
    /// `env!("CARGO_MANIFEST_DIR")` of the test's crate: where its
    /// `taskleak.toml` is.
    pub manifest_dir: &'static str,
}

impl TestSpec {
    /// The crate's `taskleak.toml`, then the attribute's own options.
    fn options(&self) -> Result<Options, crate::error::Error> {
        let base = crate::config::options_for_crate(self.manifest_dir)?;
        self.options_over(base)
    }

    fn options_over(&self, mut options: Options) -> Result<Options, crate::error::Error> {
        if let Some(retries) = self.max_retries {
            options = options.max_retries(retries);
        }
        if let Some(sleep) = self.max_sleep {
            options = options.max_sleep(sleep);
        }
        for rule in self.ignore_top_function {
            options = options.ignore_top_function(rule)?;
        }
        for rule in self.ignore_any_function {
            options = options.ignore_any_function(rule)?;
        }
        for rule in self.ignore_spawned_at {
            options = options.ignore_spawned_at(rule)?;
        }
        for rule in self.ignore_thread_name {
            options = options.ignore_thread_name(rule)?;
        }
        for name in self.ignore_dependency {
            options = options.ignore_dependency(name)?;
        }
        Ok(options.check_threads(self.check_threads).serial(self.serial))
    }

    /// The test's path as libtest prints it: the module path without the
    /// crate, then the function. A function that `test-case`'s cases call
    /// is named by the case running it: libtest names the test's thread.
    fn test_path(&self) -> String {
        let function = match self.module.split_once("::") {
            Some((_crate, module)) => format!("{module}::{}", self.name),
            None => self.name.to_owned(),
        };
        match std::thread::current().name() {
            Some(case)
                if case
                    .strip_prefix(function.as_str())
                    .is_some_and(|rest| rest.starts_with("::")) =>
            {
                case.to_owned()
            }
            _ => function,
        }
    }
}

/// Whether a test's output is already a failure: `Err` for any `Result`
/// (whatever alias names it), never for anything else. Generated code calls
/// `(&Outcome(&output)).is_failure()`: the inherent method wins for
/// `Result`, the [`NotAResult`] fallback for every other type.
#[derive(Debug)]
pub struct Outcome<'a, T>(pub &'a T);

impl<T, E> Outcome<'_, Result<T, E>> {
    /// `true` for `Err`.
    pub fn is_failure(&self) -> bool {
        self.0.is_err()
    }
}

/// The fallback of [`Outcome::is_failure`] for outputs that are not `Result`.
pub trait NotAResult {
    /// Always `false`.
    fn is_failure(&self) -> bool {
        false
    }
}

impl<T> NotAResult for &Outcome<'_, T> {}

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
    let (settings, options) = settings_and_options(&spec);
    let test = spec.test_path();
    let mut builder = match spec.flavor {
        Flavor::CurrentThread | Flavor::Local => tokio::runtime::Builder::new_current_thread(),
        Flavor::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    configure(&mut builder);
    if settings.mode == Mode::Off {
        // Exactly what `#[tokio::test]` would have done.
        return TestRuntime::build(&mut builder, spec.flavor).block_on(body);
    }
    let tracker = Tracker::new();
    tracker.install(&mut builder);
    #[cfg(all(tokio_unstable, feature = "task-names"))]
    let _names = crate::tasks::capture_on_this_thread();
    let threads = options
        .checks_threads()
        .then(|| ThreadSnapshot::begin(&test, options.is_serial()))
        .flatten();
    let runtime_threads = RuntimeThreads::default();
    let tag = threads.as_ref().and_then(ThreadSnapshot::tag).map(str::to_owned);
    // `#[tokio::test]` has no thread hooks of its own to preserve.
    runtime_thread_hooks(&mut builder, &runtime_threads, tag);
    #[cfg(tokio_unstable)]
    let accounting = crate::tasks::Accounting::start_if(matches!(spec.flavor, Flavor::MultiThread));
    let runtime = TestRuntime::build(&mut builder, spec.flavor);
    // Its blocking tasks, workers included, are watched ones.
    #[cfg(tokio_unstable)]
    let _watched = accounting.finish(runtime.handle());

    let (outcome, snapshot, unsettled, unwatched) = runtime.block_on(async {
        // The tracker is ours and installed: no need for the probe spawn
        // `Tracker::snapshot` makes to check that.
        let snapshot = Snapshot::new(tracker.clone(), tokio::runtime::Handle::current());
        let window = UnwatchedTasks::open();
        let outcome = CatchUnwind(body).await;
        let unwatched = window.close();
        let unsettled = snapshot.anything_unsettled(&options);
        (outcome, snapshot, unsettled, unwatched)
    });
    // A clean test is judged by that first look: it never runs the
    // runtime again, nor pays for a thread or a watchdog.
    let unsettled = unsettled && !settles_on_workers(spec.flavor, &snapshot, &options);
    let (report, runtime) = if unsettled {
        let own_failure = || own_failure(&outcome, &is_failure);
        check_tasks(runtime, &snapshot, &options, &test, own_failure)
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
        Some(runtime) if threads.is_some() => runtime.shutdown_timeout(settle::budget(&options).max(MIN_SHUTDOWN_WAIT)),
        Some(runtime) => runtime.shutdown_timeout(CLEAN_SHUTDOWN_LIMIT),
    }
    let found = threads
        .as_ref()
        .map(|threads| threads.check(&options, &runtime_threads));
    let judged = judge(&test, report, found, unwatched, &settings);
    conclude(&test, outcome, judged, is_failure, expected_panic)
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

/// Fails the test with its leak report, at the test's location, without
/// running the panic hook: the report is the message, and a backtrace
/// (with `RUST_BACKTRACE=1`) would only show taskleak's own frames.
#[track_caller]
fn fail_with(report: &LeakReport) -> ! {
    let location = panic::Location::caller();
    let text = format!("{location}: {report}");
    eprintln!("{text}");
    panic::resume_unwind(Box::new(text))
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
fn own_failure<T>(outcome: &Result<T, Box<dyn Any + Send>>, is_failure: impl Fn(&T) -> bool) -> Option<String> {
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

/// Runs one `#[verify_no_leaks] #[test]` body: a thread check.
/// `is_failure` and `expected_panic` are as for [`run_tokio_test`].
#[track_caller]
pub fn run_sync_test<T>(
    spec: TestSpec,
    is_failure: impl Fn(&T) -> bool,
    expected_panic: Option<fn() -> T>,
    body: impl FnOnce() -> T,
) -> T {
    let (settings, options) = settings_and_options(&spec);
    if settings.mode == Mode::Off || (!options.checks_threads() && spec.shared_runtime.is_none()) {
        return body();
    }
    let test = spec.test_path();
    let mut threads = options
        .checks_threads()
        .then(|| ThreadSnapshot::begin(&test, options.is_serial()))
        .flatten();
    if let (Some(threads), Some(shared)) = (&mut threads, spec.shared_runtime) {
        threads.exclude_shared(shared.threads().clone());
    }
    let tasks = spec.shared_runtime.and_then(SharedTasks::begin);
    let window = UnwatchedTasks::open();
    let outcome = {
        // Tasks the body spawns on the shared runtime are this test's.
        let _owner = tasks
            .as_ref()
            .map(|tasks| crate::tasks::registry::owner::enter(tasks.owner));
        panic::catch_unwind(AssertUnwindSafe(body))
    };
    let unwatched = window.close();
    let report = tasks.and_then(|tasks| tasks.check(&options, &test, own_failure(&outcome, &is_failure)));
    let found = threads
        .as_ref()
        .map(|threads| threads.check(&options, &RuntimeThreads::default()));
    let judged = judge(&test, report, found, unwatched, &settings);
    // `threads` outlives the verdict (dropped on return or unwind): a
    // serial test's turn passes on once its failure is written.
    conclude(&test, outcome, judged, is_failure, expected_panic)
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

/// A test's check, judged: its report, what it could not see, and whether
/// leaks fail the test (`TASKLEAK_MODE`).
struct Judged {
    report: Option<LeakReport>,
    unwatched: Unwatched,
    leaks_fail: bool,
}

/// A test's check from its task report, its thread check and the `tasks`
/// it started outside every watched runtime (see [`UnwatchedTasks`]).
fn judge(
    test: &str,
    report: Option<LeakReport>,
    threads: Option<ThreadSection>,
    tasks: u64,
    settings: &Settings,
) -> Judged {
    let unwatched = unwatched_of(test, tasks, threads.as_ref());
    Judged {
        report: with_threads(report, threads, test),
        unwatched,
        leaks_fail: settings.mode == Mode::Fail,
    }
}

/// What the test started where its check does not look: `tasks` started
/// outside every watched runtime, and the workers of a runtime it started
/// that taskleak does not watch.
fn unwatched_of(test: &str, tasks: u64, threads: Option<&ThreadSection>) -> Unwatched {
    let company = || {
        // A filter may leave this test the only one libtest runs.
        let alone = matches!(
            crate::threads::isolation::runner(),
            crate::threads::Runner::OneTestAtATime(_)
        ) || crate::libtest::tests_in_process(test) == Some(1);
        if alone { Company::Alone } else { Company::Alongside }
    };
    Unwatched {
        tasks: (tasks > 0).then(company),
        runtime_workers: threads.map_or(0, |threads| threads.unwatched_runtime_workers.len()),
    }
}

/// Adds what the thread check found to the task report, or makes a report
/// of it alone.
fn with_threads(report: Option<LeakReport>, threads: Option<ThreadSection>, test: &str) -> Option<LeakReport> {
    let Some(threads) = threads else {
        return report;
    };
    let found = !threads.leaked.is_empty() || !threads.unattributed.is_empty();
    match report {
        Some(mut report) => {
            report.threads = threads;
            Some(report)
        }
        None if found => Some(LeakReport::of_threads(test, threads)),
        None => None,
    }
}

/// The test's verdict: its own panic or error first, the leak report after;
/// a leak fails the test only if `leaks_fail`.
///
/// A `#[should_panic]` test (`expected_panic` given) is failed by a leak
/// without ever panicking for it — a panic would satisfy the attribute: when
/// the body panicked as expected, the check returns normally instead, and
/// libtest fails the test as one that did not panic, beside the report and
/// the expected panic's own message.
#[track_caller]
fn conclude<T>(
    test: &str,
    outcome: Result<T, Box<dyn Any + Send>>,
    judged: Judged,
    is_failure: impl Fn(&T) -> bool,
    expected_panic: Option<fn() -> T>,
) -> T {
    let Judged {
        report,
        unwatched,
        leaks_fail,
    } = judged;
    // A should_panic test's own failure is *not* panicking.
    let own_failure = match expected_panic {
        Some(_) => outcome.is_ok(),
        None => outcome.as_ref().map_or(true, &is_failure),
    };
    if let Some(report) = &report {
        say_inconclusive(test, report);
    }
    say_unwatched_runtime(test, unwatched.runtime_workers);
    say_unwatched_tasks(test, unwatched.tasks);
    let verdict = crate::report::record::Verdict {
        leak_fails: leaks_fail && report.as_ref().is_some_and(LeakReport::is_leak),
        own_failure,
        unwatched,
    };
    match &report {
        Some(report) => crate::report::record::write(report, verdict),
        None => crate::report::record::write_clean(test, crate::report::Scope::Test, verdict),
    }
    let leak_fails = |report: &LeakReport| leaks_fail && report.is_leak();
    match (outcome, report) {
        (Ok(output), None) => output,
        // Not panicking fails a should_panic test already; a panic here
        // would pass it.
        (Ok(output), Some(report)) if expected_panic.is_some() || !leak_fails(&report) || is_failure(&output) => {
            eprintln!("{report}");
            output
        }
        (Ok(_), Some(report)) => fail_with(&report),
        (Err(payload), Some(report)) if leak_fails(&report) && expected_panic.is_some() => {
            eprintln!("{report}");
            eprintln!(
                "taskleak: `{test}` panicked as its `#[should_panic]` expects ({}), but it leaked: \
                 it fails, as a test that does not panic",
                panic_message(payload.as_ref())
            );
            match expected_panic {
                Some(end_without_panic) => end_without_panic(),
                None => panic::resume_unwind(payload),
            }
        }
        (Err(payload), report) => {
            if let Some(report) = report {
                eprintln!("{report}");
            }
            panic::resume_unwind(payload)
        }
    }
}

/// One line on the process's own stderr for a check that could not judge
/// some threads: libtest captures the report of a passing test, and a
/// check that passes without a verdict must not go unseen.
fn say_inconclusive(test: &str, report: &LeakReport) {
    if report.inconclusive().is_none() {
        return;
    }
    let threads = &report.threads;
    let names: Vec<String> = threads
        .unattributed
        .iter()
        .map(|group| match group.name() {
            "" => "unnamed".to_owned(),
            name => format!("{name:?}"),
        })
        .collect();
    let count = threads.unattributed_count();
    let (noun, judged) = if count == 1 {
        ("thread", "it was")
    } else {
        ("threads", "they were")
    };
    say_uncaptured(&format!(
        "taskleak: inconclusive: `{test}` left {count} {noun} alive ({}) that another test running at \
         the same time may have started, so {judged} not judged; for a verdict run it alone: \
         `cargo test -- --exact {test}`, or `cargo taskleak` (re-runs it alone), or `cargo nextest run`\n",
        names.join(", ")
    ));
}

/// One line on the process's own stderr (not captured) when the test
/// started a tokio runtime taskleak does not watch: the check passes, and
/// must not claim that the tasks spawned there were checked.
fn say_unwatched_runtime(test: &str, workers: usize) {
    if workers == 0 {
        return;
    }
    say_uncaptured(&format!(
        "taskleak: note: `{test}` started a tokio runtime taskleak does not watch ({} worker thread{}, \
         e.g. a global `LazyLock<Runtime>`): tasks spawned on it are not checked, in this test or later \
         ones. To check them, build it with `taskleak::SharedRuntime` and mark the tests \
         `#[taskleak::verify_no_leaks(runtime = \"…\")]`, or check the whole binary at its end with \
         `taskleak::verify_test_binary!()`\n",
        workers,
        if workers == 1 { "" } else { "s" },
    ));
}

/// One line on the process's own stderr (not captured) when the test body
/// started tokio tasks outside every runtime taskleak watches: the check
/// passes, and must not claim that they were checked. No count: a
/// multi-thread runtime's workers are tasks too. When libtest may run
/// other tests alongside, they may have started them: said once per
/// process, as such.
fn say_unwatched_tasks(test: &str, company: Option<Company>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID_UNSURE: AtomicBool = AtomicBool::new(false);
    let Some(company) = company else { return };
    let alone = company == Company::Alone;
    if !alone && SAID_UNSURE.swap(true, Ordering::Relaxed) {
        return;
    }
    let unsure = if alone {
        ""
    } else {
        " (another test running at the same time may have started them: run with `--test-threads=1` to see \
         which test did; said once per process)"
    };
    say_uncaptured(&format!(
        "taskleak: note: while `{test}` ran, tokio tasks started outside every runtime taskleak watches{unsure}: \
         in a `LocalSet` (tokio runs no task hooks there) or on a runtime taskleak did not build (e.g. a \
         global `LazyLock<Runtime>`). They are not checked. To check them, use `#[tokio::test(flavor = \
         \"local\")]` and `spawn_local` instead of a `LocalSet`, and build a runtime the tests share with \
         `taskleak::SharedRuntime`, marking the tests `#[taskleak::verify_no_leaks(runtime = \"…\")]`\n"
    ));
}

/// Writes `line` on the process's stderr itself, where a passing test's
/// output is not hidden: libtest captures only the print macros
/// (`eprintln!`), not `write_all` on `std::io::stderr()`.
fn say_uncaptured(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string payload)")
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
