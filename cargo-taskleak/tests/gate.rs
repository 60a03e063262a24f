//! `cargo taskleak` end to end, on a fixture workspace of three crates it did
//! not write (`tests/fixtures/gate-workspace`): its summary, JSON, JUnit,
//! baselines and exit codes, under `cargo test` and `cargo nextest`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus};

/// The runs share one build of the fixture: they take turns.
static TURN: Mutex<()> = Mutex::new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gate-workspace")
}

fn scratch(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Runs `cargo taskleak ARGS` in the fixture workspace.
fn gate(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let _turn = TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-taskleak"));
    command
        .arg("taskleak")
        .args(["--target-dir", &scratch("gate-fixture").display().to_string()])
        .args(args)
        .current_dir(workspace());
    // This suite's own settings are not the fixture's.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("NEXTEST") || name.starts_with("TASKLEAK")) {
        command.env_remove(name);
    }
    command.env_remove("GATE_FIXTURE_FAIL").envs(env.iter().copied());
    let Output { status, stdout, stderr } = command.output().expect("cargo-taskleak runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// `alpha/src/lib.rs:LINE:` of the spawn after `// spawn-site: refresher`.
fn refresher_site() -> String {
    let source = std::fs::read_to_string(workspace().join("alpha/src/lib.rs")).expect("fixture source");
    let marker = source
        .lines()
        .position(|line| line.trim() == "// spawn-site: refresher")
        .expect("marker");
    format!("alpha/src/lib.rs:{}:", marker + 2)
}

/// `alpha/src/lib.rs:LINE:` of the three spawns in `start_waiters`.
fn waiter_sites() -> Vec<String> {
    let source = std::fs::read_to_string(workspace().join("alpha/src/lib.rs")).expect("fixture source");
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| line.trim() == "tokio::spawn(std::future::pending::<()>());")
        .map(|(index, _)| format!("alpha/src/lib.rs:{}:", index + 1))
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("written")).expect("valid JSON")
}

/// The JUnit report read back, for the facts that its text spells in
/// quick-junit's order of attributes.
fn read_junit(xml: &str) -> Report {
    Report::deserialize_from_str(xml).expect("valid JUnit")
}

/// The test case `name` of the test suite `binary`, with its class name.
fn case<'a>(report: &'a Report, binary: &str, name: &str) -> &'a TestCase {
    report
        .test_suites
        .iter()
        .filter(|suite| suite.name.as_str() == binary)
        .flat_map(|suite| &suite.test_cases)
        .find(|case| case.name.as_str() == name && case.classname.as_deref() == Some(binary))
        .unwrap_or_else(|| panic!("no test case {binary}: {name}"))
}

/// A passing test case with nothing in it (no note).
fn passes_bare(case: &TestCase) -> bool {
    matches!(case.status, TestCaseStatus::Success { .. }) && case.system_out.is_none()
}

/// `(type, message)` of a test case's `<failure>` (or `<error>`, by `kind`).
fn non_success(case: &TestCase, of_kind: NonSuccessKind) -> Option<(&str, &str)> {
    match &case.status {
        TestCaseStatus::NonSuccess { kind, ty, message, .. } if *kind == of_kind => Some((
            ty.as_deref().unwrap_or_default(),
            message.as_deref().unwrap_or_default(),
        )),
        _ => None,
    }
}

#[test]
fn a_leaky_workspace_is_summarised_as_text_json_and_junit() {
    let (json_file, junit_file) = (scratch("run.json"), scratch("run.xml"));
    let (code, stdout, stderr) = gate(
        &[
            "--json",
            &json_file.display().to_string(),
            "--junit",
            &junit_file.display().to_string(),
        ],
        &[],
    );
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, 1, "{all}");
    // Progress came while the tests ran.
    assert!(stderr.contains("leaks so far"), "{all}");
    // The same leak in two tests is one entry with its count.
    assert!(stdout.contains("taskleak: 6 distinct leaks in 5 tests"), "{all}");
    assert!(
        stdout.contains(&format!("2 tasks  spawned at {}", refresher_site())),
        "{all}"
    );
    assert!(stdout.contains("[interval-loop]"), "{all}");
    // Stuck at the workspace's own line first, tokio's after it.
    assert!(
        stdout.contains("stuck at: alpha::start_refresher  alpha/src/lib.rs:12:"),
        "{all}"
    );
    assert!(
        stdout.contains("in tokio::time::interval::Interval::tick (tokio)"),
        "{all}"
    );
    assert!(
        stdout.contains("stuck at: beta::start_poller  beta/src/lib.rs:"),
        "{all}"
    );
    // Three spawn sites alike in one file, with the same (empty) stack: three leaks.
    let waiters = waiter_sites();
    for site in &waiters {
        assert!(stdout.contains(&format!("1 task  spawned at {site}")), "{site}: {all}");
    }
    assert_eq!(
        stdout.matches("in 1 test: alpha: tests::leaky_waiters").count(),
        3,
        "{all}"
    );
    assert!(
        stdout.contains("in 2 tests: alpha: tests::leaky_cache_one, alpha: tests::leaky_cache_two"),
        "{all}"
    );
    assert!(stdout.contains("in 1 test: beta: tests::leaky_poller"), "{all}");
    // The end-of-binary check's leak, by the binary.
    assert!(stdout.contains("named \"beta-watcher\"  [sleeping]"), "{all}");
    assert!(stdout.contains("in 1 test: whole_binary: whole_binary"), "{all}");
    // Coverage: the unchecked test and the doctest are counted apart.
    assert!(
        stdout.contains(
            "totals: 13 tests run, 11 checked (1 doctest and 1 test ran without a check), 4 failed, 5 leaking; \
             5 tasks and 2 threads leaked"
        ),
        "{all}"
    );
    assert!(stdout.contains("1 test without a check"), "{all}");
    assert!(stdout.contains("    gamma: tests::unchecked_sleeper"), "{all}");
    assert!(!stdout.contains("reasons other than leaks"), "{all}");

    let document = json(&json_file);
    assert_eq!(document["schema"], "taskleak-run");
    assert_eq!(document["version"], 1);
    assert_eq!(document["exit_code"], 1);
    assert_eq!(document["totals"]["tests_run"], 13);
    assert_eq!(document["totals"]["checked_tests"], 11);
    assert_eq!(document["totals"]["unchecked_tests"], 1);
    assert_eq!(document["totals"]["doctests"], 1);
    assert_eq!(document["totals"]["hung_tests"], 0);
    assert_eq!(document["unchecked"][0]["name"], "tests::unchecked_sleeper");
    assert_eq!(document["totals"]["distinct_leaks"], 6);
    assert_eq!(document["totals"]["tasks_leaked"], 5);
    assert_eq!(document["totals"]["threads_leaked"], 2);
    let first = &document["leaks"][0];
    assert_eq!(first["kind"], "task");
    assert_eq!(first["count"], 2);
    assert_eq!(first["why"], "interval-loop");
    assert_eq!(first["tests"].as_array().map(Vec::len), Some(2));
    assert!(
        first["key"].as_str().is_some_and(|key| !key.contains(".rs:")),
        "{first}"
    );
    let waiter_keys: Vec<&str> = document["leaks"]
        .as_array()
        .expect("leaks")
        .iter()
        .filter_map(|leak| leak["key"].as_str())
        .filter(|key| key.contains("pending"))
        .collect();
    assert_eq!(waiter_keys.len(), 3, "{waiter_keys:?}");
    assert!(waiter_keys.iter().all(|key| !key.contains(":2")), "{waiter_keys:?}");

    let xml = std::fs::read_to_string(&junit_file).expect("junit written");
    assert!(xml.starts_with("<?xml"), "{xml}");
    let report = read_junit(&xml);
    assert_eq!(report.name.as_deref(), Some("taskleak"), "{xml}");
    assert_eq!((report.tests, report.failures), (14, 5), "{xml}");
    assert!(passes_bare(case(&report, "alpha", "tests::clean_join")), "{xml}");
    assert!(
        non_success(
            case(&report, "alpha", "tests::leaky_cache_one"),
            NonSuccessKind::Failure
        )
        .is_some(),
        "{xml}"
    );
    assert!(
        xml.contains("message=\"taskleak: 1 task leaked by `tests::leaky_cache_one`"),
        "{xml}"
    );
    assert!(passes_bare(case(&report, "gamma", "tests::doubles")), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 5, "{xml}");
    assert!(xml.contains("ran without a leak check"), "{xml}");
    assert!(xml.contains("a doctest: not leak-checked"), "{xml}");
    assert_eq!(
        xml.matches("<testcase ").count(),
        xml.matches("</testcase>").count() + 7,
        "{xml}"
    );
    // The summary as a CI log shows it, pinned; what varies redacted.
    insta::with_settings!({
        filters => vec![
            (r"\d+(\.\d+)? ?(s|ms)\b", "[duration]"),
        ],
        omit_expression => true,
    }, {
        insta::assert_snapshot!("leaky-workspace-summary", stdout);
    });
}

#[test]
fn an_inconclusive_check_is_listed_and_rerun_alone_to_a_verdict() {
    // Two test threads: the named thread's test runs beside others.
    let runner = ["--", "-p", "gamma", "--features", "flusher", "--", "--test-threads=2"];
    let json_file = scratch("inconclusive.json");
    let junit_file = scratch("inconclusive.xml");
    let mut args = vec!["--json", json_file.to_str().expect("utf-8"), "--junit"];
    args.push(junit_file.to_str().expect("utf-8"));
    args.extend(runner);
    let (code, stdout, stderr) = gate(&args, &[]);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, 1, "the re-run's leak is a new leak:\n{all}");
    // Another test running beside it may see the thread too, and be
    // re-run to `clean`: only the flusher's entry is fixed.
    assert!(
        stdout.contains(
            "    gamma: tests::leaky_named_flusher_thread  — 1 thread not judged; re-run alone: leaked \
             (taskleak: 1 thread leaked by `tests::leaky_named_flusher_thread`"
        ),
        "{all}"
    );
    assert!(
        stdout.contains("inconclusive (threads another test running at the same time may have started):"),
        "{all}"
    );
    assert!(stdout.contains("named \"log-flusher\""), "{all}");
    assert!(stdout.contains("inconclusive\n"), "the totals count them:\n{all}");
    let document = json(&json_file);
    assert!(
        document["totals"]["inconclusive_checks"].as_u64() >= Some(1),
        "{document}"
    );
    let entries = document["inconclusive"].as_array().expect("a list");
    let flusher = entries
        .iter()
        .find(|entry| entry["name"] == "tests::leaky_named_flusher_thread")
        .expect("the flusher's check is listed");
    assert_eq!(flusher["unjudged_threads"], 1);
    assert_eq!(flusher["rerun"], "leaked");
    let xml = std::fs::read_to_string(&junit_file).expect("junit written");
    assert!(
        xml.contains(
            "<system-out>taskleak: inconclusive: 1 thread not judged (another test may have started them); \
             re-run alone: leaked"
        ),
        "{xml}"
    );

    // Without the re-run: listed, with the way to a verdict, and no leak.
    let mut args = vec!["--no-rerun"];
    args.extend(runner);
    let (code, stdout, stderr) = gate(&args, &[]);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, 0, "{all}");
    assert!(
        stdout.contains("gamma: tests::leaky_named_flusher_thread  — 1 thread not judged; not re-run (--no-rerun)"),
        "{all}"
    );
    assert!(stdout.contains("cargo test -- --exact NAME --test-threads=1"), "{all}");
}

#[test]
fn a_baseline_fails_only_on_new_leaks_and_lists_the_gone_ones() {
    let baseline = scratch("baseline.json");
    let (code, stdout, stderr) = gate(&["--write-baseline", &baseline.display().to_string()], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(json(&baseline)["leaks"].as_array().map(Vec::len), Some(6));
    assert_eq!(json(&baseline)["version"], 2);

    // Every leak is known: the run passes.
    let (code, stdout, stderr) = gate(&["--baseline", &baseline.display().to_string()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.matches("(baselined)").count(), 6, "{stdout}");
    assert!(stdout.contains("6 distinct leaks, 0 new"), "{stdout}");

    // A version 1 baseline (task keys without the spawn line) still
    // matches, and says how to upgrade it.
    let mut old = json(&baseline);
    old["version"] = 1.into();
    for entry in old["leaks"].as_array_mut().expect("leaks") {
        let key = entry["key"].as_str().expect("key").to_owned();
        let parts: Vec<&str> = key.split(" | ").collect();
        if parts[0] == "task" {
            let legacy = [parts[0], parts[1], parts[parts.len() - 2], parts[parts.len() - 1]].join(" | ");
            entry["key"] = legacy.into();
        }
    }
    let v1 = scratch("baseline-v1.json");
    std::fs::write(&v1, old.to_string()).expect("write");
    let (code, stdout, stderr) = gate(&["--baseline", &v1.display().to_string()], &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("is a version 1 baseline"), "{stderr}");
    assert!(stderr.contains("--write-baseline"), "{stderr}");
    assert!(stdout.contains("6 distinct leaks, 0 new"), "{stdout}");

    // One leak forgotten, one fixed since: the first is new, the second gone.
    let mut document = json(&baseline);
    let leaks = document["leaks"].as_array_mut().expect("leaks");
    leaks.retain(|entry| {
        !entry["key"]
            .as_str()
            .is_some_and(|key| key.contains("beta::start_poller"))
    });
    leaks.push(serde_json::json!({"key": "task | gone/src/lib.rs | gone::fixed | sleep", "tests": []}));
    let edited = scratch("baseline-edited.json");
    std::fs::write(&edited, document.to_string()).expect("write");
    let (code, stdout, stderr) = gate(&["--baseline", &edited.display().to_string()], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert_eq!(stdout.matches("  NEW").count(), 1, "{stdout}");
    assert!(stdout.contains("in 1 test: beta: tests::leaky_poller"), "{stdout}");
    assert!(stdout.contains("1 baseline entries no longer occur"), "{stdout}");
    assert!(
        stdout.contains("task | gone/src/lib.rs | gone::fixed | sleep"),
        "{stdout}"
    );

    // A baseline that is not one stops the run before it starts.
    std::fs::write(&edited, "[]").expect("write");
    let (code, _, stderr) = gate(&["--baseline", &edited.display().to_string()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a taskleak baseline"), "{stderr}");
}

#[test]
fn failures_other_than_leaks_and_build_errors_exit_with_two() {
    let junit_file = scratch("failing.xml");
    let junit = junit_file.display().to_string();
    let (code, stdout, stderr) = gate(&["--junit", &junit], &[("GATE_FIXTURE_FAIL", "1")]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.contains("1 failed for reasons other than leaks"), "{stdout}");
    // With its own reason, from its panic.
    assert!(
        stdout.contains("alpha: tests::fails_on_request  — failing on request"),
        "{stdout}"
    );
    // The leaks are still summarised.
    assert!(stdout.contains("6 distinct leaks in 5 tests"), "{stdout}");
    // JUnit: the test that failed on its own is a failure too, with its message.
    let xml = std::fs::read_to_string(&junit_file).expect("junit written");
    let report = read_junit(&xml);
    let alpha = report
        .test_suites
        .iter()
        .find(|suite| suite.name.as_str() == "alpha")
        .expect("alpha's suite");
    assert_eq!((alpha.tests, alpha.failures), (5, 4), "{xml}");
    assert_eq!(
        non_success(
            case(&report, "alpha", "tests::fails_on_request"),
            NonSuccessKind::Failure
        ),
        Some(("test-failure", "failing on request")),
        "{xml}"
    );
    assert!(xml.contains("panicked at alpha/src/lib.rs"), "{xml}");

    let (code, stdout, stderr) = gate(&["--junit", &junit, "--", "--features", "gamma/broken"], &[]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("gamma is broken on purpose"), "{stderr}");
    assert!(stderr.contains("the build failed"), "{stderr}");
    // No test ran: the JUnit report says so, and passes nothing.
    let xml = std::fs::read_to_string(&junit_file).expect("junit written");
    let report = read_junit(&xml);
    assert!(
        non_success(case(&report, "build", "build"), NonSuccessKind::Error).is_some_and(|(ty, _)| ty == "build"),
        "{xml}"
    );
    assert!(!xml.contains("tests::"), "{xml}");

    // Output formats that hide the tests from the gate are refused up front.
    for args in [&["--", "-q"][..], &["--", "--", "--format", "terse"]] {
        let (code, _, stderr) = gate(args, &[]);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains("hides the lines `cargo taskleak` reads"), "{stderr}");
    }

    let (code, _, stderr) = gate(&["--jsn", "x"], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("unknown argument `--jsn`"), "{stderr}");
}

#[test]
fn under_nextest_the_same_leaks_are_found() {
    let json_file = scratch("nextest.json");
    let (code, stdout, stderr) = gate(&["--nextest", "--json", &json_file.display().to_string()], &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("taskleak: 6 distinct leaks in 5 tests"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("in 2 tests: alpha: tests::leaky_cache_one, alpha: tests::leaky_cache_two"),
        "{stdout}"
    );
    // Each test in its own process: the end-of-binary check is the test's.
    assert!(stdout.contains("in 1 test: whole_binary: leaves_a_watcher"), "{stdout}");
    assert!(!stdout.contains("reasons other than leaks"), "{stdout}");
    // nextest runs no doctests, and the summary says so.
    assert_eq!(json(&json_file)["totals"]["tests_run"], 12);
    assert_eq!(json(&json_file)["totals"]["checked_tests"], 11);
    assert!(stdout.contains("doctests do not run under nextest"), "{stdout}");
    // The progress counts what the summary counts: nextest prints a failed
    // test again in its own summary, which is not a second failure.
    let totals = &json(&json_file)["totals"];
    let last_progress = stderr
        .lines()
        .rev()
        .find(|line| line.contains("leaks so far"))
        .expect("progress lines");
    let expected = format!(
        "taskleak: {} tests run, {} failed,",
        totals["tests_run"], totals["tests_failed"]
    );
    assert!(last_progress.starts_with(&expected), "{last_progress}\n{totals}");
}

/// Under nextest each test runs in a process of its own: the named thread
/// that libtest's parallel run leaves inconclusive is judged there, and the
/// summary, JSON and JUnit account for the test as leaked.
#[test]
fn under_nextest_a_named_thread_leak_is_judged_not_left_inconclusive() {
    let json_file = scratch("nextest-flusher.json");
    let junit_file = scratch("nextest-flusher.xml");
    let mut args = vec!["--nextest", "--json", json_file.to_str().expect("utf-8"), "--junit"];
    args.push(junit_file.to_str().expect("utf-8"));
    args.extend(["--", "-p", "gamma", "--features", "flusher"]);
    let (code, stdout, stderr) = gate(&args, &[]);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(code, 1, "{all}");
    assert!(stdout.contains("named \"log-flusher\""), "{all}");
    assert!(!stdout.contains("inconclusive"), "{all}");
    let document = json(&json_file);
    let totals = &document["totals"];
    assert_eq!(totals["inconclusive_checks"], 0, "{document}");
    assert_eq!(totals["threads_leaked"], 1, "{document}");
    assert_eq!(totals["leaking_tests"], 1, "{document}");
    let leak = &document["leaks"][0];
    assert_eq!(leak["kind"], "thread", "{document}");
    assert_eq!(leak["thread_name"], "log-flusher", "{document}");
    assert_eq!(
        leak["tests"][0]["name"], "tests::leaky_named_flusher_thread",
        "{document}"
    );
    let xml = std::fs::read_to_string(&junit_file).expect("junit written");
    let flusher = xml
        .split("<testcase ")
        .find(|case| case.contains("name=\"tests::leaky_named_flusher_thread\""))
        .expect("the flusher's test case");
    assert!(flusher.contains("<failure"), "{xml}");
    assert!(!xml.contains("inconclusive"), "{xml}");
}

/// A task in a `LocalSet` runs no hooks: its test passes, and the gate
/// lists the check as not seeing everything, in the summary, JSON and
/// JUnit — under nextest, which would show the test's note only with
/// `--success-output`, and under libtest one test at a time.
#[test]
fn a_check_that_could_not_see_a_local_set_task_is_listed() {
    for runner in [&["--nextest"][..], &[]] {
        let json_file = scratch("local-set.json");
        let junit_file = scratch("local-set.xml");
        let mut args = runner.to_vec();
        args.extend(["--json", json_file.to_str().expect("utf-8"), "--junit"]);
        args.push(junit_file.to_str().expect("utf-8"));
        args.extend(["--", "-p", "gamma", "--features", "local-set"]);
        if runner.is_empty() {
            args.extend(["--", "--test-threads=1"]);
        }
        let (code, stdout, stderr) = gate(&args, &[]);
        let all = format!("{runner:?}\n{stdout}\n{stderr}");
        assert_eq!(code, 0, "{all}");
        assert!(
            stdout.contains("1 check could not see everything the test started (passed, not checked there):"),
            "{all}"
        );
        assert!(
            stdout.contains(
                "    gamma: tests::doubles_in_a_local_set  — tokio tasks started outside every runtime taskleak watches\n"
            ),
            "{all}"
        );
        assert!(stdout.contains("1 not seeing everything"), "{all}");
        let document = json(&json_file);
        assert_eq!(document["totals"]["not_watched_checks"], 1, "{document}");
        assert_eq!(
            document["not_watched"][0]["name"], "tests::doubles_in_a_local_set",
            "{document}"
        );
        assert_eq!(document["not_watched"][0]["what"], "tasks", "{document}");
        let xml = std::fs::read_to_string(&junit_file).expect("junit written");
        assert!(
            xml.contains(
                "<system-out>taskleak: not watched: tokio tasks started outside every runtime taskleak watches"
            ),
            "{xml}"
        );
    }
}

/// Slow (it waits for the bound): run with `-- --ignored`.
#[test]
#[ignore = "waits for the time bound; run with `cargo test -p cargo-taskleak --test gate -- --ignored`"]
fn a_hanging_test_is_stopped_at_the_time_bound_and_reported_as_hung() {
    let (json_file, junit_file) = (scratch("hung.json"), scratch("hung.xml"));
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = gate(
        &[
            "--timeout",
            "8s",
            "--json",
            &json_file.display().to_string(),
            "--junit",
            &junit_file.display().to_string(),
            "--",
            "-p",
            "gamma",
        ],
        &[("GATE_FIXTURE_HANG", "1")],
    );
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(240), "{stderr}");
    assert!(
        stderr.contains("still going after 8s (--timeout): stopping it"),
        "{stderr}"
    );
    assert!(
        stdout.contains("the run was stopped after 8s (--timeout): 1 test had not finished"),
        "{stdout}"
    );
    assert!(stdout.contains("gamma: tests::unchecked_sleeper  — hung"), "{stdout}");
    let document = json(&json_file);
    assert_eq!(document["totals"]["hung_tests"], 1);
    assert_eq!(document["stopped_after"], "8s");
    assert_eq!(document["unrelated_failures"][0]["kind"], "hung");
    let xml = std::fs::read_to_string(&junit_file).expect("junit written");
    let report = read_junit(&xml);
    assert!(
        report
            .test_suites
            .iter()
            .flat_map(|suite| &suite.test_cases)
            .any(|case| non_success(case, NonSuccessKind::Failure).is_some_and(|(ty, _)| ty == "hung")),
        "{xml}"
    );
}
