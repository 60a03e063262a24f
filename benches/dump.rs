//! What production monitoring costs, each figure beside its baseline in the
//! same run:
//!
//! - `task_dump`: a grouped [`taskleak::monitor::Dumper::dump`] of N live tasks (with
//!   a tracker: spawn sites too) against tokio's own `Handle::dump()` of the
//!   same tasks, for identical and for 64 distinct stacks (needs
//!   `--cfg tokio_unstable`);
//! - `spawn`: spawning and joining 1 000 tasks with a monitor sampling every
//!   millisecond against none;
//! - and, printed before divan's table, the CPU time the monitor's thread
//!   spends per sample, read from the kernel's account of that thread.
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" cargo bench --bench dump
//! ```
//!
//! Figures: docs/monitoring.md.

use std::time::Duration;

use divan::Bencher;
use taskleak::monitor::Monitor;

#[cfg(tokio_unstable)]
mod support;

fn main() {
    monitor_cpu_per_sample();
    divan::main();
}

/// Runs a monitor sampling every millisecond for two seconds and prints
/// the CPU time its thread used per sample (Linux: `/proc/.../stat`).
fn monitor_cpu_per_sample() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let _parked: Vec<_> = (0..1000).map(|_| runtime.spawn(std::future::pending::<()>())).collect();
    let monitor = Monitor::builder(runtime.handle())
        .interval(Duration::from_millis(1))
        .window(Duration::from_millis(100))
        // Every sample kept, so that they can be counted.
        .history(100_000)
        .start()
        .expect("monitor");
    std::thread::sleep(Duration::from_secs(2));
    let cpu = monitor_thread_cpu();
    let samples = monitor.history().len().max(1);
    drop(monitor);
    match cpu {
        Some(cpu) => println!(
            "monitor: {:.1} µs of CPU per sample ({} samples at a 1 ms interval, 1 000 live tasks)",
            cpu.as_secs_f64() * 1e6 / samples as f64,
            samples
        ),
        None => println!("monitor: its thread's CPU time cannot be read here"),
    }
}

/// The CPU time of the thread named `taskleak-mon`, in nanoseconds from
/// the scheduler's account (`/proc/.../schedstat`, first field).
fn monitor_thread_cpu() -> Option<Duration> {
    std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
        let task = task.ok()?.path();
        let name = std::fs::read_to_string(task.join("comm")).ok()?;
        if name.trim() != "taskleak-mon" {
            return None;
        }
        let schedstat = std::fs::read_to_string(task.join("schedstat")).ok()?;
        let nanos: u64 = schedstat.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    })
}

// tokio's `Handle::dump`, the baseline, exists only with `tokio_unstable`.
#[cfg(tokio_unstable)]
mod task_dump {
    use taskleak::Tracker;
    use taskleak::monitor::Dumper;

    use super::*;
    use crate::support::wait_at;

    const LIVE: [usize; 3] = [1_000, 10_000, 100_000];

    fn busy_runtime(live: usize, distinct: bool) -> (tokio::runtime::Runtime, Tracker) {
        let tracker = Tracker::new();
        let mut builder = tokio::runtime::Builder::new_current_thread();
        tracker.install(&mut builder);
        let runtime = builder.enable_all().build().expect("runtime");
        runtime.block_on(async {
            for n in 0..live {
                tokio::spawn(wait_at(if distinct { n % 64 + 1 } else { 2 }));
            }
            // The scheduler polls 61 tasks between two polls of this
            // future: yield until every task has been polled once, so that
            // each waits where its stack says.
            for _ in 0..live / 32 + 8 {
                tokio::task::yield_now().await;
            }
        });
        (runtime, tracker)
    }

    fn tokio_dump(bencher: Bencher<'_, '_>, live: usize, distinct: bool) {
        let (runtime, _tracker) = busy_runtime(live, distinct);
        bencher.bench_local(|| runtime.block_on(async { tokio::runtime::Handle::current().dump().await }));
        runtime.shutdown_background();
    }

    fn grouped_dump(bencher: Bencher<'_, '_>, live: usize, distinct: bool) {
        let (runtime, tracker) = busy_runtime(live, distinct);
        let dumper = Dumper::new(runtime.handle()).tracker(&tracker);
        bencher.bench_local(|| {
            let dump = runtime.block_on(dumper.dump()).expect("dump");
            // Every task is in a group; identical ones in one.
            let grouped: usize = dump.groups().iter().map(|group| group.count()).sum();
            assert_eq!(grouped, live, "{dump}");
            assert!(distinct || dump.groups().len() == 1, "{dump}");
            dump
        });
        runtime.shutdown_background();
    }

    #[divan::bench(args = LIVE, sample_count = 10, sample_size = 1)]
    fn tokio_identical(bencher: Bencher<'_, '_>, live: usize) {
        tokio_dump(bencher, live, false);
    }

    #[divan::bench(args = LIVE, sample_count = 10, sample_size = 1)]
    fn taskleak_identical(bencher: Bencher<'_, '_>, live: usize) {
        grouped_dump(bencher, live, false);
    }

    #[divan::bench(args = LIVE, sample_count = 10, sample_size = 1)]
    fn tokio_distinct(bencher: Bencher<'_, '_>, live: usize) {
        tokio_dump(bencher, live, true);
    }

    #[divan::bench(args = LIVE, sample_count = 10, sample_size = 1)]
    fn taskleak_distinct(bencher: Bencher<'_, '_>, live: usize) {
        grouped_dump(bencher, live, true);
    }
}

mod spawn {
    use super::*;

    fn spawn_and_join(runtime: &tokio::runtime::Runtime) {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..1000).map(|n| tokio::spawn(async move { n * 2 })).collect();
            for task in tasks {
                let _ = task.await;
            }
        });
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[divan::bench(sample_count = 200)]
    fn unmonitored(bencher: Bencher<'_, '_>) {
        let runtime = runtime();
        bencher.bench_local(|| spawn_and_join(&runtime));
    }

    #[divan::bench(sample_count = 200)]
    fn monitored_every_ms(bencher: Bencher<'_, '_>) {
        let runtime = runtime();
        let _monitor = Monitor::builder(runtime.handle())
            .interval(Duration::from_millis(1))
            .window(Duration::from_millis(100))
            .start()
            .expect("monitor");
        bencher.bench_local(|| spawn_and_join(&runtime));
    }
}
