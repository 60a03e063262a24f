//! A checked test's verdict: its task report and thread check judged
//! together, the body's own panic or error first and the leak report
//! after, the record for `cargo taskleak`, and the notes that must be seen
//! even when libtest captures the test's output.

use std::any::Any;
use std::panic;

use crate::config::{Mode, Settings};
use crate::report::LeakReport;
use crate::report::ThreadSection;
use crate::report::record::{Company, Unwatched};

/// A test's check, judged: its report, what it could not see, and whether
/// leaks fail the test (`TASKLEAK_MODE`).
pub(crate) struct Judged {
    report: Option<LeakReport>,
    unwatched: Unwatched,
    leaks_fail: bool,
}

/// A test's check from its task report, its thread check and the `tasks`
/// it started outside every watched runtime (see [`UnwatchedTasks`]).
pub(crate) fn judge(
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
        Some(report) => Some(report.with_threads(threads)),
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
pub(crate) fn conclude<T>(
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

/// One line on the process's own stderr for a check that could not judge
/// some threads: libtest captures the report of a passing test, and a
/// check that passes without a verdict must not go unseen.
fn say_inconclusive(test: &str, report: &LeakReport) {
    if report.inconclusive().is_none() {
        return;
    }
    let threads = report.thread_section();
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
        "taskleak: note: `{test}` started a tokio runtime taskleak does not watch ({}, \
         e.g. a global `LazyLock<Runtime>`): tasks spawned on it are not checked, in this test or later \
         ones. To check them, build it with `taskleak::SharedRuntime` and mark the tests \
         `#[taskleak::verify_no_leaks(runtime = \"…\")]`, or check the whole binary at its end with \
         `taskleak::verify_test_binary!()`\n",
        crate::report::plural(workers, "worker thread"),
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
pub(crate) fn say_uncaptured(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string payload)")
}
