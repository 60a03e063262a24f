//! The programmatic API on real runtimes: snapshots, verify, errors, and
//! tasks that existed before the snapshot.

use std::time::Duration;

use taskleak::report::Detail;
use taskleak::{Error, Options, Tracker};

mod support;

use support::runtime;

fn quick() -> Options {
    Options::new().max_retries(5).max_sleep(Duration::from_millis(5))
}

#[test]
fn tasks_alive_before_the_snapshot_are_not_leaks() {
    for multi_thread in [false, true] {
        let tracker = Tracker::new();
        let runtime = runtime(&tracker, multi_thread);
        // A shared runtime's long-lived task, e.g. a pool's reaper.
        let reaper = runtime.spawn(std::future::pending::<()>());
        let verdict = runtime.block_on(async {
            let snapshot = tracker.snapshot().expect("snapshot");
            let worker = tokio::spawn(async { 21 * 2 });
            assert_eq!(worker.await.expect("joined"), 42);
            // A joined task is released by its worker a moment after the
            // join: the default grace period covers that.
            snapshot.verify(&Options::new()).await
        });
        assert!(verdict.is_ok(), "multi_thread={multi_thread}: {verdict:?}");
        reaper.abort();
        runtime.shutdown_background();
    }
}

#[test]
fn a_leak_after_the_snapshot_is_reported_with_its_spawn_site() {
    for multi_thread in [false, true] {
        let tracker = Tracker::new();
        let runtime = runtime(&tracker, multi_thread);
        let report = runtime.block_on(async {
            let snapshot = tracker.snapshot().expect("snapshot");
            let (line, _leaked) = (line!(), tokio::spawn(std::future::pending::<()>()));
            let report = snapshot.verify(&quick()).await.expect_err("a leak");
            (report, line)
        });
        runtime.shutdown_background();
        let (report, line) = report;
        assert_eq!(report.leaked(), 1);
        assert_eq!(report.test(), None);
        assert_eq!(report.grace_period().retries, 5);
        if cfg!(tokio_unstable) {
            assert_eq!(report.detail(), Detail::Full);
            let group = &report.groups()[0];
            assert_eq!(group.count(), 1);
            let site = group.spawned_at().expect("spawn site");
            assert!(site.starts_with(&format!("tests/api.rs:{line}:")), "{site}");
        } else {
            assert_eq!(report.detail(), Detail::CountOnly);
            assert!(report.groups().is_empty());
        }
        let text = report.to_string();
        assert!(
            text.starts_with("taskleak: 1 task leaked (still alive after 5 retries"),
            "{text}"
        );
    }
}

#[test]
fn snapshot_outside_a_runtime_is_an_error_that_says_what_to_do() {
    let error = Tracker::new().snapshot().expect_err("no runtime here");
    assert!(matches!(error, Error::NoRuntime), "{error}");
    assert!(error.to_string().contains("inside the runtime"), "{error}");
}

#[test]
fn a_tracker_not_installed_on_the_runtime_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(async { Tracker::new().snapshot().map(drop) });
    if cfg!(tokio_unstable) {
        let error = outcome.expect_err("not installed");
        assert!(matches!(error, Error::NotInstalled), "{error}");
        assert!(error.to_string().contains("Tracker::install"), "{error}");
    } else {
        // Without hooks there is nothing to install: checks count tasks.
        assert!(outcome.is_ok());
    }
}

#[test]
fn checks_need_no_time_driver() {
    let tracker = Tracker::new();
    let mut builder = tokio::runtime::Builder::new_current_thread();
    tracker.install(&mut builder);
    let runtime = builder.build().expect("runtime without enable_time");
    let report = runtime.block_on(async {
        let snapshot = tracker.snapshot().expect("snapshot");
        let _leaked = tokio::spawn(std::future::pending::<()>());
        snapshot.verify(&quick()).await
    });
    assert_eq!(report.expect_err("a leak").leaked(), 1);
}

#[test]
fn stragglers_within_the_grace_period_pass() {
    let tracker = Tracker::new();
    let runtime = runtime(&tracker, false);
    let verdict = runtime.block_on(async {
        let snapshot = tracker.snapshot().expect("snapshot");
        tokio::spawn(tokio::time::sleep(Duration::from_millis(30)));
        snapshot.verify(&Options::new()).await
    });
    assert!(verdict.is_ok(), "{verdict:?}");
}

#[test]
fn invalid_ignore_rules_are_errors_naming_option_and_pattern() {
    let error = Options::new().ignore_any_function("a[").expect_err("invalid");
    match &error {
        Error::InvalidRegex { option, pattern, .. } => {
            assert_eq!(*option, "ignore_any_function");
            assert_eq!(pattern, "a[");
        }
        other => panic!("unexpected {other:?}"),
    }
}
