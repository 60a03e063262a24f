//! What taskleak costs, each figure beside its baseline in the same run:
//!
//! - `whole_test`: a trivial `#[tokio::test]` (build the runtime, run the
//!   body, drop the runtime) with and without taskleak's check, with and
//!   without its thread check;
//! - `sync_test`: a trivial `#[test]` that starts and joins one thread, with
//!   and without the thread check;
//! - `check`: one clean check (snapshot + verify) on a runtime that already
//!   has 0, 10 or 1 000 tasks, against running the same body unchecked;
//! - `spawn`: spawning and joining 1 000 tasks with and without the hooks;
//! - `report`: building the leak report for N leaked tasks against tokio's
//!   own `Handle::dump()` of the same tasks (needs `--cfg tokio_unstable`);
//! - `straggler`: how long a check takes to pass when a task ends T ms after
//!   the body, against sleeping T ms.
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" cargo bench --bench overhead
//! ```
//!
//! Figures and how they compare with the targets: docs/performance.md.

use std::future::Future;
use std::time::Duration;

use divan::Bencher;
use taskleak::__private::{Flavor, TestSpec, run_sync_test, run_tokio_test};
use taskleak::{Options, Tracker};

#[cfg(tokio_unstable)]
mod support;

fn main() {
    divan::main();
}

/// A trivial test body: spawn one task and join it.
async fn trivial_body() {
    let task = tokio::spawn(async { 1 + 1 });
    assert_eq!(task.await.ok(), Some(2));
}

fn builder(multi_thread: bool) -> tokio::runtime::Builder {
    if multi_thread {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
}

fn spec(multi_thread: bool) -> TestSpec {
    spec_with_threads(multi_thread, true)
}

fn spec_with_threads(multi_thread: bool, check_threads: bool) -> TestSpec {
    TestSpec {
        module: "bench",
        name: "trivial",
        flavor: if multi_thread {
            Flavor::MultiThread
        } else {
            Flavor::CurrentThread
        },
        max_retries: None,
        max_sleep: None,
        ignore_top_function: &[],
        ignore_any_function: &[],
        ignore_spawned_at: &[],
        ignore_thread_name: &[],
        ignore_dependency: &[],
        check_threads,
        serial: false,
        shared_runtime: None,
        manifest_dir: env!("CARGO_MANIFEST_DIR"),
    }
}

mod whole_test {
    use super::*;

    const FLAVORS: [bool; 2] = [false, true];

    /// What `#[tokio::test]` does.
    #[divan::bench(args = FLAVORS)]
    fn plain(multi_thread: bool) {
        let runtime = builder(multi_thread).enable_all().build().expect("runtime");
        runtime.block_on(trivial_body());
    }

    /// What `#[taskleak::verify_no_leaks] #[tokio::test]` does.
    #[divan::bench(args = FLAVORS)]
    fn checked(multi_thread: bool) {
        run_checked(multi_thread, true);
    }

    /// The same with `threads = false`: tasks only.
    #[divan::bench(args = FLAVORS)]
    fn checked_tasks_only(multi_thread: bool) {
        run_checked(multi_thread, false);
    }

    fn run_checked(multi_thread: bool, check_threads: bool) {
        let body = std::pin::pin!(trivial_body());
        let body: std::pin::Pin<&mut dyn Future<Output = ()>> = body;
        run_tokio_test(
            spec_with_threads(multi_thread, check_threads),
            |builder| {
                if multi_thread {
                    builder.worker_threads(2);
                }
            },
            |_: &()| false,
            None,
            body,
        );
    }
}

mod sync_test {
    use super::*;

    fn body() {
        let thread = std::thread::spawn(|| 1 + 1);
        assert_eq!(thread.join().ok(), Some(2));
    }

    /// What `#[test]` does.
    #[divan::bench]
    fn plain() {
        body();
    }

    /// What `#[taskleak::verify_no_leaks] #[test]` does.
    #[divan::bench]
    fn checked() {
        run_sync_test(spec(false), |_: &()| false, None, body);
    }
}

mod check {
    use super::*;

    const PRE_EXISTING: [usize; 3] = [0, 10, 1000];

    /// A runtime with `tasks` long-lived tasks on it, and its tracker.
    fn busy_runtime(multi_thread: bool, tasks: usize) -> (tokio::runtime::Runtime, Tracker) {
        let tracker = Tracker::new();
        let mut builder = builder(multi_thread);
        tracker.install(&mut builder);
        let runtime = builder.enable_all().build().expect("runtime");
        for _ in 0..tasks {
            runtime.spawn(std::future::pending::<()>());
        }
        (runtime, tracker)
    }

    fn plain(bencher: Bencher<'_, '_>, multi_thread: bool, tasks: usize) {
        let (runtime, _tracker) = busy_runtime(multi_thread, tasks);
        bencher.bench_local(|| runtime.block_on(trivial_body()));
    }

    fn checked(bencher: Bencher<'_, '_>, multi_thread: bool, tasks: usize) {
        let (runtime, tracker) = busy_runtime(multi_thread, tasks);
        let options = Options::new();
        bencher.bench_local(|| {
            runtime.block_on(async {
                let snapshot = tracker.snapshot().expect("snapshot");
                trivial_body().await;
                snapshot.verify(&options).await.expect("clean");
            })
        });
    }

    #[divan::bench(args = PRE_EXISTING)]
    fn current_thread_plain(bencher: Bencher<'_, '_>, tasks: usize) {
        plain(bencher, false, tasks);
    }

    #[divan::bench(args = PRE_EXISTING)]
    fn current_thread_checked(bencher: Bencher<'_, '_>, tasks: usize) {
        checked(bencher, false, tasks);
    }

    #[divan::bench(args = PRE_EXISTING)]
    fn multi_thread_plain(bencher: Bencher<'_, '_>, tasks: usize) {
        plain(bencher, true, tasks);
    }

    #[divan::bench(args = PRE_EXISTING)]
    fn multi_thread_checked(bencher: Bencher<'_, '_>, tasks: usize) {
        checked(bencher, true, tasks);
    }
}

mod spawn {
    use super::*;

    const TASKS: usize = 1000;

    fn spawn_and_join(runtime: &tokio::runtime::Runtime) {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..TASKS).map(|n| tokio::spawn(async move { n })).collect();
            for task in tasks {
                let _ = task.await;
            }
        });
    }

    #[divan::bench(args = [false, true])]
    fn plain(bencher: Bencher<'_, '_>, multi_thread: bool) {
        let runtime = builder(multi_thread).enable_all().build().expect("runtime");
        bencher.counter(TASKS).bench_local(|| spawn_and_join(&runtime));
    }

    /// tokio's own cost of having the four hooks taskleak sets, doing
    /// nothing: what any hook-based tracker pays before doing any work.
    #[cfg(tokio_unstable)]
    #[divan::bench(args = [false, true])]
    fn empty_hooks(bencher: Bencher<'_, '_>, multi_thread: bool) {
        let mut builder = builder(multi_thread);
        builder
            .on_task_spawn(|_| {})
            .on_task_terminate(|_| {})
            .on_before_task_poll(|_| {})
            .on_after_task_poll(|_| {});
        let runtime = builder.enable_all().build().expect("runtime");
        bencher.counter(TASKS).bench_local(|| spawn_and_join(&runtime));
    }

    #[divan::bench(args = [false, true])]
    fn hooked(bencher: Bencher<'_, '_>, multi_thread: bool) {
        let tracker = Tracker::new();
        let mut builder = builder(multi_thread);
        tracker.install(&mut builder);
        let runtime = builder.enable_all().build().expect("runtime");
        bencher.counter(TASKS).bench_local(|| spawn_and_join(&runtime));
    }
}

#[cfg(tokio_unstable)]
mod report {
    use super::*;
    use crate::support::wait_at;

    const LEAKED: [usize; 4] = [1, 100, 10_000, 100_000];

    fn leaky_runtime(leaked: usize, distinct: bool) -> (tokio::runtime::Runtime, Tracker, taskleak::Snapshot) {
        let tracker = Tracker::new();
        let mut builder = tokio::runtime::Builder::new_current_thread();
        tracker.install(&mut builder);
        let runtime = builder.enable_all().build().expect("runtime");
        let snapshot = runtime.block_on(async {
            let snapshot = tracker.snapshot().expect("snapshot");
            for n in 0..leaked {
                tokio::spawn(wait_at(if distinct { n % 64 + 1 } else { 2 }));
            }
            tokio::task::yield_now().await;
            snapshot
        });
        (runtime, tracker, snapshot)
    }

    /// tokio's own dump of the leaked tasks: the baseline.
    fn dump(bencher: Bencher<'_, '_>, leaked: usize, distinct: bool) {
        let (runtime, _tracker, _snapshot) = leaky_runtime(leaked, distinct);
        bencher.bench_local(|| runtime.block_on(async { tokio::runtime::Handle::current().dump().await }));
        runtime.shutdown_background();
    }

    /// taskleak's whole report for the same tasks.
    fn report(bencher: Bencher<'_, '_>, leaked: usize, distinct: bool) {
        let (runtime, _tracker, snapshot) = leaky_runtime(leaked, distinct);
        let options = Options::new().max_retries(0);
        bencher.bench_local(|| runtime.block_on(snapshot.verify(&options)).expect_err("leaks"));
        runtime.shutdown_background();
    }

    #[divan::bench(args = LEAKED, sample_count = 10, sample_size = 1)]
    fn tokio_dump(bencher: Bencher<'_, '_>, leaked: usize) {
        dump(bencher, leaked, false);
    }

    #[divan::bench(args = LEAKED, sample_count = 10, sample_size = 1)]
    fn identical_stacks(bencher: Bencher<'_, '_>, leaked: usize) {
        report(bencher, leaked, false);
    }

    #[divan::bench(args = LEAKED, sample_count = 10, sample_size = 1)]
    fn tokio_dump_distinct(bencher: Bencher<'_, '_>, leaked: usize) {
        dump(bencher, leaked, true);
    }

    #[divan::bench(args = LEAKED, sample_count = 10, sample_size = 1)]
    fn distinct_stacks(bencher: Bencher<'_, '_>, leaked: usize) {
        report(bencher, leaked, true);
    }
}

mod straggler {
    use super::*;

    const AFTER_MS: [u64; 3] = [0, 5, 50];

    /// The floor: the straggler's own lifetime.
    #[divan::bench(args = AFTER_MS, sample_count = 20, sample_size = 1)]
    fn sleep_alone(bencher: Bencher<'_, '_>, after_ms: u64) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        bencher.bench_local(|| runtime.block_on(async { tokio::time::sleep(Duration::from_millis(after_ms)).await }));
    }

    /// A check that passes once a task ending `after_ms` after the body has ended.
    #[divan::bench(args = AFTER_MS, sample_count = 20, sample_size = 1)]
    fn check_passes(bencher: Bencher<'_, '_>, after_ms: u64) {
        let tracker = Tracker::new();
        let mut builder = tokio::runtime::Builder::new_current_thread();
        tracker.install(&mut builder);
        let runtime = builder.enable_all().build().expect("runtime");
        let options = Options::new();
        bencher.bench_local(|| {
            runtime.block_on(async {
                let snapshot = tracker.snapshot().expect("snapshot");
                tokio::spawn(tokio::time::sleep(Duration::from_millis(after_ms)));
                snapshot.verify(&options).await.expect("the straggler ends in time");
            })
        });
    }
}
