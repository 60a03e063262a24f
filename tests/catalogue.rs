//! Runs the fixture crate `tests/fixtures/catalogue` as its users would —
//! `cargo test` on a crate whose tests leak on purpose — and checks every
//! outcome and report: each catalogue row's leaky form fails naming its
//! spawn line and await point, its fixed form and the "not leaks" pass, and
//! the test's own panic or error is never masked.
//!
//! The fixture is built in the same mode as this test (`tokio_unstable` or
//! not), so running the suite in both modes covers both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const UNSTABLE: bool = cfg!(tokio_unstable);

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/catalogue")
}

fn cargo_test(args: &[&str]) -> Output {
    cargo_test_with(args, &[])
}

fn cargo_test_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["test", "-p", "taskleak-fixture-catalogue"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "0");
    for name in [
        "TASKLEAK_MODE",
        "TASKLEAK_MIN_RETRIES",
        "TASKLEAK_MIN_SLEEP_CAP",
        "TASKLEAK_CONFIG",
    ] {
        command.env_remove(name);
    }
    // Run under nextest, this test must not hand nextest's settings down.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("NEXTEST")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("cargo runs")
}

/// What a cargo run wrote: stdout, then stderr.
fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Each test of the fixture's lib: passed or not, and its captured output.
struct Outcome {
    passed: bool,
    output: String,
}

fn fixture_run() -> &'static HashMap<String, Outcome> {
    static RUN: OnceLock<HashMap<String, Outcome>> = OnceLock::new();
    RUN.get_or_init(|| {
        let output = cargo_test(&["--lib", "--", "--test-threads=4"]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let outcomes = parse_libtest(&stdout);
        assert!(
            outcomes.len() > 30,
            "the fixture did not run (status {:?}):\n{stdout}\n{stderr}",
            output.status
        );
        outcomes
    })
}

/// Reads libtest's `test NAME ... ok|FAILED|ignored` lines and the
/// `---- NAME stdout ----` sections of failures.
fn parse_libtest(stdout: &str) -> HashMap<String, Outcome> {
    let mut outcomes = HashMap::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, status)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let name = name.trim_end_matches(" - should panic").to_owned();
        let passed = status == "ok";
        if passed || status == "FAILED" {
            outcomes.insert(
                name,
                Outcome {
                    passed,
                    output: String::new(),
                },
            );
        }
    }
    let mut sections = stdout.split("\n---- ").skip(1);
    for section in &mut sections {
        let Some((header, body)) = section.split_once(" stdout ----\n") else {
            continue;
        };
        let body = body.split("\nfailures:\n").next().unwrap_or(body);
        if let Some(outcome) = outcomes.get_mut(header.trim()) {
            outcome.output = body.to_owned();
        }
    }
    outcomes
}

fn outcome(test: &str) -> &'static Outcome {
    fixture_run()
        .get(test)
        .unwrap_or_else(|| panic!("the fixture has no test `{test}`"))
}

/// `path:line:` of the spawn call on the line after the comment
/// `// spawn-site: <marker>` in a fixture file.
fn spawn_site(file: &str, marker: &str) -> String {
    let (line, _) = spawn_line(&fixture_dir().join(file), marker);
    format!("tests/fixtures/catalogue/{file}:{line}:")
}

/// The number (from 1) and text of the spawn call on the line after the
/// comment `// spawn-site: <marker>` in `path`.
fn spawn_line(path: &Path, marker: &str) -> (usize, String) {
    let file = path.display();
    let source = std::fs::read_to_string(path).expect("fixture source");
    let tag = format!("spawn-site: {marker}");
    let lines: Vec<&str> = source.lines().collect();
    let marker_at = lines
        .iter()
        .position(|line| line.trim() == format!("// {tag}"))
        .unwrap_or_else(|| panic!("no `// {tag}` line in {file}"));
    let spawn_line = marker_at + 1;
    assert!(
        lines[spawn_line].contains("spawn"),
        "{file}: the line after `{tag}` spawns nothing"
    );
    (spawn_line + 1, lines[spawn_line].trim().to_owned())
}

/// One leaky catalogue test and what its report must say.
struct Leak {
    test: &'static str,
    file: &'static str,
    marker: &'static str,
    leaked: usize,
    /// Frames the async stack must show, outermost first.
    stuck_at: &'static [&'static str],
    /// The cause label the report must give (its fix links to it).
    cause: &'static str,
}

const CATALOGUE: &[Leak] = &[
    Leak {
        test: "row01_endless_loop::tests::leaky_endless_loop",
        file: "src/row01_endless_loop.rs",
        marker: "row01",
        leaked: 1,
        stuck_at: &[
            "row01_endless_loop::tick_forever",
            "tokio::time::interval::Interval::tick",
        ],
        cause: "interval-loop",
    },
    Leak {
        test: "row02_receiver_never_fed::tests::leaky_receiver_never_fed",
        file: "src/row02_receiver_never_fed.rs",
        marker: "row02",
        leaked: 1,
        stuck_at: &[
            "row02_receiver_never_fed::leaky_worker",
            "tokio::sync::mpsc::bounded::Receiver<T>::recv",
        ],
        cause: "mpsc-receive",
    },
    Leak {
        test: "row03_sender_blocked::tests::leaky_sender_blocked",
        file: "src/row03_sender_blocked.rs",
        marker: "row03",
        leaked: 1,
        stuck_at: &[
            "row03_sender_blocked::leaky_first_result",
            "tokio::sync::mpsc::bounded::Sender<T>::send",
        ],
        cause: "mpsc-send",
    },
    Leak {
        test: "row04_abandoned_result::tests::leaky_abandoned_result",
        file: "src/row04_abandoned_result.rs",
        marker: "row04",
        leaked: 1,
        stuck_at: &[
            "row04_abandoned_result::LeakyClient::fetch",
            "tokio::sync::mpsc::bounded::Sender<T>::send",
        ],
        cause: "mpsc-send",
    },
    Leak {
        test: "row05_wait_never_satisfied::tests::leaky_notify_never_notified",
        file: "src/row05_wait_never_satisfied.rs",
        marker: "row05-notify",
        leaked: 1,
        stuck_at: &[
            "row05_wait_never_satisfied::leaky_notify",
            "tokio::sync::notify::Notified",
        ],
        cause: "notify",
    },
    Leak {
        test: "row05_wait_never_satisfied::tests::leaky_barrier_miscount",
        file: "src/row05_wait_never_satisfied.rs",
        marker: "row05-barrier",
        leaked: 1,
        stuck_at: &[
            "row05_wait_never_satisfied::leaky_barrier",
            "tokio::sync::barrier::Barrier::wait",
        ],
        cause: "barrier",
    },
    Leak {
        test: "row05_wait_never_satisfied::tests::leaky_oneshot_forgotten",
        file: "src/row05_wait_never_satisfied.rs",
        marker: "row05-oneshot",
        leaked: 1,
        stuck_at: &[
            "row05_wait_never_satisfied::leaky_oneshot",
            "tokio::sync::oneshot::Receiver<T>",
        ],
        cause: "oneshot",
    },
    Leak {
        test: "row05_wait_never_satisfied::tests::leaky_pending_forever",
        file: "src/row05_wait_never_satisfied.rs",
        marker: "row05-pending",
        leaked: 1,
        stuck_at: &[],
        cause: "untraced",
    },
    Leak {
        test: "row06_lock_order::tests::leaky_lock_order",
        file: "src/row06_lock_order.rs",
        marker: "row06",
        leaked: 2,
        stuck_at: &["row06_lock_order::leaky_transfer", "tokio::sync::mutex::Mutex<T>::lock"],
        cause: "lock",
    },
    Leak {
        test: "row07_forgotten_permit::tests::leaky_forgotten_permit",
        file: "src/row07_forgotten_permit.rs",
        marker: "row07",
        leaked: 1,
        stuck_at: &[
            "row07_forgotten_permit::serve",
            "row07_forgotten_permit::handle",
            "tokio::sync::semaphore::Semaphore::acquire",
        ],
        cause: "semaphore",
    },
    Leak {
        test: "row08_select_blocked::tests::leaky_select_blocked",
        file: "src/row08_select_blocked.rs",
        marker: "row08",
        leaked: 1,
        stuck_at: &[
            "row08_select_blocked::numbers",
            "tokio::sync::mpsc::bounded::Sender<T>::send",
            "tokio::sync::watch::Receiver<T>::changed",
        ],
        cause: "select",
    },
    Leak {
        test: "row09_io_without_timeout::tests::leaky_io_without_timeout",
        file: "src/row09_io_without_timeout.rs",
        marker: "row09",
        leaked: 1,
        stuck_at: &[
            "row09_io_without_timeout::read_request",
            "tokio::io::util::read::Read<R>",
        ],
        cause: "io-read",
    },
    Leak {
        test: "row10_busy_loop::tests::leaky_busy_loop",
        file: "src/row10_busy_loop.rs",
        marker: "row10",
        leaked: 1,
        stuck_at: &[],
        cause: "running",
    },
    Leak {
        test: "row13_nested_spawns::tests::leaky_nested_spawn",
        file: "src/row13_nested_spawns.rs",
        marker: "row13",
        leaked: 1,
        stuck_at: &[
            "row13_nested_spawns::connection_loop",
            "tokio::sync::mpsc::bounded::Receiver<T>::recv",
        ],
        cause: "mpsc-receive",
    },
    // Found in real suites (issue #13): waits tokio's dump cannot see, a
    // loop that exits late, a `spawn_local` task.
    Leak {
        test: "row14_accept_loop::tests::leaky_accept_loop",
        file: "src/row14_accept_loop.rs",
        marker: "row14",
        leaked: 1,
        stuck_at: &[],
        cause: "untraced",
    },
    Leak {
        test: "row14_accept_loop::tests::leaky_accept_loop_multi_thread",
        file: "src/row14_accept_loop.rs",
        marker: "row14",
        leaked: 1,
        stuck_at: &[],
        cause: "untraced",
    },
    Leak {
        test: "row15_wait_inside_combinator::tests::leaky_sleep_inside_futures_unordered",
        file: "src/row15_wait_inside_combinator.rs",
        marker: "row15",
        leaked: 1,
        stuck_at: &[],
        cause: "untraced",
    },
    Leak {
        test: "row15_wait_inside_combinator::tests::leaky_sleep_inside_join_all",
        file: "src/row15_wait_inside_combinator.rs",
        marker: "row15-join-all",
        leaked: 1,
        stuck_at: &[
            "row15_wait_inside_combinator::leaky_join_all",
            "futures_util::future::join_all::JoinAll<F>",
            "row15_wait_inside_combinator::connect_with_backoff",
            "tokio::time::sleep::Sleep",
        ],
        cause: "sleep",
    },
    Leak {
        test: "row16_late_exit_loop::tests::leaky_late_exit_reaper",
        file: "src/row16_late_exit_loop.rs",
        marker: "row16",
        leaked: 1,
        stuck_at: &["row16_late_exit_loop::reap", "tokio::time::interval::Interval::tick"],
        cause: "interval-loop",
    },
    Leak {
        test: "libtest_shapes::tests::leaky_spawn_local",
        file: "src/libtest_shapes.rs",
        marker: "local-flavor",
        leaked: 1,
        stuck_at: &[],
        cause: "untraced",
    },
    Leak {
        test: "behaviour::leaky_thousand_identical",
        file: "src/behaviour.rs",
        marker: "behaviour-thousand",
        leaked: 1000,
        stuck_at: &[],
        cause: "untraced",
    },
    Leak {
        test: "behaviour::leaky_with_no_grace_period",
        file: "src/behaviour.rs",
        marker: "behaviour-no-grace",
        leaked: 1,
        stuck_at: &["tokio::time::sleep::Sleep"],
        cause: "sleep",
    },
    // Causes stay right when the await is wrapped (issue: classification).
    Leak {
        test: "causes_wrapped::tests::leaky_wrapped_receive",
        file: "src/causes_wrapped.rs",
        marker: "wrapped-receive",
        leaked: 1,
        stuck_at: &[
            "causes_wrapped::next_job",
            "tokio::time::timeout::Timeout<T>",
            "tokio::sync::mpsc::bounded::Receiver<T>::recv",
        ],
        cause: "mpsc-receive",
    },
    Leak {
        test: "causes_wrapped::tests::leaky_join_both_blocked",
        file: "src/causes_wrapped.rs",
        marker: "join-both",
        leaked: 1,
        stuck_at: &[
            "tokio::sync::mpsc::bounded::Receiver<T>::recv",
            "tokio::sync::notify::Notified",
        ],
        cause: "select",
    },
    Leak {
        test: "causes_wrapped::tests::leaky_waiter_of_a_leaked_task",
        file: "src/causes_wrapped.rs",
        marker: "awaited-root",
        leaked: 2,
        // Root cause first, its waiter after.
        stuck_at: &[
            "tokio::sync::notify::Notified",
            "tokio::runtime::task::join::JoinHandle<T>",
        ],
        cause: "notify",
    },
];

fn headline(leak: &Leak) -> String {
    let tasks = if leak.leaked == 1 {
        "1 task".to_owned()
    } else {
        format!("{} tasks", leak.leaked)
    };
    // The report names the test as libtest does: its path in the crate.
    format!("taskleak: {tasks} leaked by `{}`", leak.test)
}

#[test]
fn every_leaky_catalogue_row_fails_with_its_report() {
    for leak in CATALOGUE {
        let outcome = outcome(leak.test);
        let output = &outcome.output;
        assert!(!outcome.passed, "{} passed but leaks", leak.test);
        assert!(
            output.contains(&headline(leak)),
            "{}: no headline `{}` in:\n{output}",
            leak.test,
            headline(leak)
        );
        if UNSTABLE {
            let site = spawn_site(leak.file, leak.marker);
            assert!(
                output.contains(&format!("spawned at {site}")),
                "{}: spawn site {site} not in:\n{output}",
                leak.test
            );
            // The source lines at the spawn site, as a diagnostic shows them.
            let (number, text) = spawn_line(&fixture_dir().join(leak.file), leak.marker);
            assert!(
                output.contains(&format!("{number} | {text}")),
                "{}: the spawn line `{number} | {text}` is not quoted in:\n{output}",
                leak.test
            );
            let mut from = 0;
            for frame in leak.stuck_at {
                let at = output[from..]
                    .find(frame)
                    .unwrap_or_else(|| panic!("{}: frame `{frame}` missing or out of order in:\n{output}", leak.test));
                from += at;
            }
            let fix = format!("/fixes/index.html#{})", leak.cause);
            assert!(
                output.contains(&fix),
                "{}: cause `{}` not given in:\n{output}",
                leak.test,
                leak.cause
            );
        } else {
            assert!(
                output.contains(r#"rustflags = ["--cfg", "tokio_unstable"]"#),
                "{}: no config lines in:\n{output}",
                leak.test
            );
            assert!(!output.contains("spawned at"), "{output}");
        }
    }
}

/// A test meant to leak: its function (or, for generated cases such as
/// rstest's `leaky_x::case_1`, its group) is named `leaky_…`.
fn is_leaky(name: &str) -> bool {
    name.split("::").any(|segment| segment.starts_with("leaky_"))
}

#[test]
fn every_fixed_form_and_non_leak_passes() {
    let must_pass: Vec<&String> = fixture_run()
        .keys()
        .filter(|name| {
            let function = name.rsplit("::").next().unwrap_or(name);
            // Ignore rules need `tokio_unstable`; without it they leak (see below).
            // `parallel_` tests pass or fail by how they are run (see below).
            !is_leaky(name) && !function.starts_with("parallel_") && (UNSTABLE || !function.starts_with("ignored_by_"))
        })
        .collect();
    assert!(must_pass.len() >= 20, "{must_pass:?}");
    for name in must_pass {
        let outcome = outcome(name);
        assert!(outcome.passed, "{name} failed:\n{}", outcome.output);
    }
}

#[test]
fn every_test_marked_leaky_fails() {
    for (name, outcome) in fixture_run() {
        if is_leaky(name) {
            assert!(!outcome.passed, "{name} passed");
        }
    }
}

#[test]
fn ignore_rules_silence_known_tasks_or_say_why_they_cannot() {
    for test in [
        "ignored_by_spawn_site",
        "ignored_by_any_function",
        "ignored_by_top_function",
    ] {
        let outcome = outcome(&format!("row13_nested_spawns::tests::{test}"));
        if UNSTABLE {
            assert!(outcome.passed, "{test}:\n{}", outcome.output);
        } else {
            assert!(!outcome.passed, "{test}");
            assert!(
                outcome.output.contains("ignore rules need `--cfg tokio_unstable`"),
                "{}",
                outcome.output
            );
        }
    }
}

/// What varies from run to run in a report: ids, durations, thread ids.
const REDACTIONS: &[(&str, &str)] = &[
    (r"over \d+\.\d+ s\)", "over [duration] s)"),
    (r"\(task ids [^)]*\)", "(task ids [ids])"),
    (r"\(task id \d+\)", "(task id [id])"),
    (r"\(thread id \d+\)", "(thread id [tid])"),
    (r"\btask \d+ runs", "task [id] runs"),
];

/// The reports a user reads, pinned as they are printed (with what varies
/// redacted), one per shape: a task, a thousand alike, a `select!`, a task
/// that never yields, a thread, a blocking-pool thread. A change to any of
/// them shows in review as a snapshot diff (`tests/snapshots/`).
#[test]
fn rendered_reports_are_pinned() {
    let mode = if UNSTABLE { "unstable" } else { "stable" };
    for (name, test) in [
        ("task", "row01_endless_loop::tests::leaky_endless_loop"),
        ("a-thousand-alike", "behaviour::leaky_thousand_identical"),
        ("select", "row08_select_blocked::tests::leaky_select_blocked"),
        ("never-yields", "row10_busy_loop::tests::leaky_busy_loop"),
        (
            "thread",
            "row12_os_thread_never_exits::tests::leaky_os_thread_never_exits",
        ),
        (
            "blocking-pool-thread",
            "row11_blocking_never_returns::tests::leaky_blocking_never_returns",
        ),
    ] {
        let outcome = outcome(test);
        assert!(!outcome.passed, "{test} passed");
        insta::with_settings!({
            filters => REDACTIONS.iter().copied(),
            snapshot_suffix => mode,
            description => test,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, outcome.output.trim_end());
        });
    }
}

#[test]
fn identical_tasks_are_one_group_with_a_count() {
    let output = &outcome("behaviour::leaky_thousand_identical").output;
    if UNSTABLE {
        assert_eq!(output.matches("spawned at").count(), 1, "{output}");
        assert!(output.contains("1000 tasks  spawned at"), "{output}");
    }
}

#[test]
fn running_and_untraced_tasks_say_so() {
    if UNSTABLE {
        let busy = &outcome("row10_busy_loop::tests::leaky_busy_loop").output;
        assert!(busy.contains("running, never yielded"), "{busy}");
        let pending = &outcome("row05_wait_never_satisfied::tests::leaky_pending_forever").output;
        assert!(
            pending.contains("stuck at: no await point that tokio's task dump can see"),
            "{pending}"
        );
        assert!(pending.contains("awaits a `pending()` future"), "{pending}");
    }
}

#[test]
fn waits_the_dump_cannot_see_are_named_from_the_spawned_code_never_as_pending() {
    if !UNSTABLE {
        return;
    }
    for (test, clue, shown) in [
        (
            "row14_accept_loop::tests::leaky_accept_loop",
            "the code above calls `accept`",
            "listener.accept().await",
        ),
        (
            "row14_accept_loop::tests::leaky_accept_loop_multi_thread",
            "the code above calls `accept`",
            "loop {",
        ),
        (
            "row15_wait_inside_combinator::tests::leaky_sleep_inside_futures_unordered",
            "drives futures through a combinator",
            "FuturesUnordered",
        ),
    ] {
        let output = &outcome(test).output;
        assert!(output.contains("cannot see"), "{test}: {output}");
        assert!(output.contains(clue), "{test}: no `{clue}` in:\n{output}");
        assert!(
            output.contains(shown),
            "{test}: the source `{shown}` is not shown in:\n{output}"
        );
        assert!(
            !output.contains("pending()"),
            "{test}: described as pending() in:\n{output}"
        );
        assert!(
            !output.contains("outside tokio"),
            "{test}: described as outside tokio in:\n{output}"
        );
    }
}

#[test]
fn a_loop_that_exits_late_is_not_said_to_have_no_exit() {
    let output = &outcome("row16_late_exit_loop::tests::leaky_late_exit_reaper").output;
    if UNSTABLE {
        assert!(
            output.contains("cause: waiting for its interval's next tick"),
            "{output}"
        );
        assert!(!output.contains("no exit"), "{output}");
        assert!(output.contains("not at its next tick"), "{output}");
    }
}

#[test]
fn libtest_shapes_are_checked_like_any_test() {
    for test in [
        "libtest_shapes::tests::generic_over_a_lifetime",
        "libtest_shapes::tests::async_generic_over_a_lifetime",
        "libtest_shapes::tests::local_flavor_spawn_local_joined",
        "libtest_shapes::tests::local_flavor_with_a_paused_clock",
    ] {
        assert!(outcome(test).passed, "{test}: {}", outcome(test).output);
    }
    // A `spawn_local` task left running is a leak, like any other.
    assert!(!outcome("libtest_shapes::tests::leaky_spawn_local").passed);
}

#[test]
fn the_code_under_test_observes_no_span_of_taskleak() {
    for test in [
        "unchanged::tests::a_spawned_task_sees_no_span_of_taskleak",
        "unchanged::tests::a_spawned_task_sees_no_span_without_the_attribute",
    ] {
        assert!(outcome(test).passed, "{test}: {}", outcome(test).output);
    }
}

#[test]
fn a_dependencys_lingering_work_is_reported_in_its_source_and_ignored_by_one_rule() {
    let leaky = outcome("row17_dependency_task::tests::leaky_dependency_pool");
    assert!(!leaky.passed);
    let output = &leaky.output;
    assert!(output.contains("1 task and 1 thread leaked by"), "{output}");
    if UNSTABLE {
        // The spawn site is inside the dependency, with its source lines.
        let pool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lingering-pool/src/lib.rs");
        let (number, text) = spawn_line(&pool, "lingering-pool");
        assert!(
            output.contains(&format!(
                "spawned at tests/fixtures/lingering-pool/src/lib.rs:{number}:"
            )),
            "{output}"
        );
        assert!(output.contains(&format!("{number} | {text}")), "{output}");
    }
    // The attribute's rule ignores the task and the thread; the file's too.
    let ignored = outcome("row17_dependency_task::tests::ignored_by_dependency");
    let config = config_file("dependency-ignored.toml");
    let (from_file, text) = run_alone(
        "row17_dependency_task::tests::leaky_dependency_pool",
        &[("TASKLEAK_CONFIG", &config)],
    );
    if UNSTABLE {
        assert!(ignored.passed, "{}", ignored.output);
        assert!(from_file, "{text}");
    } else {
        // Without spawn sites the task is only counted: the report says
        // how to apply the rule with no change to the configuration. The
        // thread is ignored all the same.
        assert!(!ignored.passed);
        assert!(ignored.output.contains("1 task leaked by"), "{}", ignored.output);
        assert!(ignored.output.contains("run `cargo taskleak`"), "{}", ignored.output);
        assert!(!from_file, "{text}");
    }
}

#[test]
fn named_tasks_are_reported_with_their_name_with_the_task_names_feature() {
    if !UNSTABLE {
        return;
    }
    let output = cargo_test(&[
        "--features",
        "task-names",
        "--lib",
        "--",
        "--exact",
        "row01_endless_loop::tests::leaky_named_endless_loop",
    ]);
    let text = text_of(&output);
    assert!(!output.status.success(), "{text}");
    let site = spawn_site("src/row01_endless_loop.rs", "row01-named");
    assert!(
        text.contains("2 tasks leaked by `row01_endless_loop::tests::leaky_named_endless_loop`"),
        "{text}"
    );
    assert!(text.contains(&format!("2 tasks  spawned at {site}")), "{text}");
    assert!(text.contains(r#", name "cache-refresher")"#), "{text}");
    assert!(text.contains("tokio::time::interval::Interval::tick"), "{text}");
}

#[test]
fn a_task_awaiting_another_leaked_task_comes_after_it() {
    if UNSTABLE {
        let output = &outcome("causes_wrapped::tests::leaky_waiter_of_a_leaked_task").output;
        let root = output.find("/fixes/index.html#notify)").expect("root cause");
        let waiter = output.find("/fixes/index.html#join-handle)").expect("waiter");
        assert!(root < waiter, "{output}");
        let waiter_site = spawn_site("src/causes_wrapped.rs", "join-waiter");
        assert!(output.contains(&format!("spawned at {waiter_site}")), "{output}");
    }
}

#[test]
fn a_select_names_the_cause_of_each_blocked_branch() {
    if UNSTABLE {
        let output = &outcome("row08_select_blocked::tests::leaky_select_blocked").output;
        assert!(output.contains("cause: blocked on every branch of a select!/join!: blocked sending on a full mpsc channel that nobody reads; waiting for a change on a watch channel whose sender is still alive"), "{output}");
    }
}

#[test]
fn no_grace_period_reports_a_straggler_after_zero_retries() {
    let output = &outcome("behaviour::leaky_with_no_grace_period").output;
    assert!(output.contains("still alive after 0 retries"), "{output}");
}

#[test]
fn the_tests_own_panic_comes_first_and_the_report_follows() {
    let output = &outcome("behaviour::leaky_and_panics").output;
    let panic_at = output
        .find("the test's own assertion failed")
        .expect("the test's panic message");
    let report_at = output
        .find("taskleak: 1 task leaked by `behaviour::leaky_and_panics`")
        .expect("the leak report");
    assert!(panic_at < report_at, "{output}");
}

#[test]
fn a_leak_fails_a_should_panic_test_and_a_clean_one_behaves_as_without_taskleak() {
    // A leak is not the panic a `#[should_panic]` test expects.
    let no_panic = outcome("behaviour::leaky_should_panic_but_only_leaks");
    assert!(!no_panic.passed);
    assert!(
        no_panic.output.contains("note: test did not panic as expected"),
        "{}",
        no_panic.output
    );
    assert!(
        no_panic.output.contains("taskleak: 1 task leaked by"),
        "{}",
        no_panic.output
    );
    // It panicked as expected, with or without `expected = …`, and leaked:
    // it fails, showing both.
    for (test, message) in [
        ("behaviour::leaky_should_panic_that_panics_as_expected", "expected boom"),
        ("behaviour::leaky_should_panic_without_expected", "any panic"),
    ] {
        let leaked = outcome(test);
        assert!(!leaked.passed, "{test} passed");
        let output = &leaked.output;
        assert!(output.contains("taskleak: 1 task leaked by"), "{output}");
        assert!(output.contains("panicked at"), "{output}");
        assert!(output.contains(message), "{output}");
        assert!(output.contains("panicked as its `#[should_panic]` expects"), "{output}");
    }
    assert!(outcome("behaviour::should_panic_without_leak").passed);
    assert!(outcome("behaviour::plain_should_panic_without_leak_or_expected").passed);
    let wrong = outcome("behaviour::leaky_should_panic_with_the_wrong_message");
    assert!(!wrong.passed);
    assert!(
        wrong.output.contains("panic did not contain expected string"),
        "{}",
        wrong.output
    );
}

#[test]
fn an_err_result_stays_the_failure_and_the_report_follows() {
    let outcome = outcome("behaviour::leaky_and_returns_err");
    assert!(!outcome.passed);
    assert!(
        outcome.output.contains(r#"Error: "the test's own error""#),
        "{}",
        outcome.output
    );
    assert!(
        outcome
            .output
            .contains("taskleak: 1 task leaked by `behaviour::leaky_and_returns_err`"),
        "{}",
        outcome.output
    );
    assert!(
        !outcome.output.contains("panicked at"),
        "an `Err` test must not turn into a panic:\n{}",
        outcome.output
    );
}

#[test]
fn an_err_behind_a_type_alias_is_still_the_failure() {
    let outcome = outcome("behaviour::leaky_and_returns_err_through_an_alias");
    assert!(!outcome.passed);
    assert!(
        outcome.output.contains(r#"Error: "aliased error""#),
        "{}",
        outcome.output
    );
    assert!(!outcome.output.contains("panicked at"), "{}", outcome.output);
}

#[test]
fn ignored_tests_stay_ignored() {
    assert!(!fixture_run().contains_key("behaviour::ignored_test_is_not_run"));
}

/// A busy task on a current-thread runtime holds the thread the check runs
/// on: the test fails with a report and its own panic, and the other tests'
/// results are not lost — whether they run alongside or after it.
#[test]
fn a_task_that_blocks_the_checks_thread_fails_its_test_and_the_others_go_on() {
    for threads in [None, Some("--test-threads=1")] {
        let mut args = vec!["--test", "blocked_runtime"];
        args.extend(threads.map(|threads| ["--", threads]).into_iter().flatten());
        let output = cargo_test(&args);
        let text = text_of(&output);
        assert_eq!(output.status.code(), Some(101), "{text}");
        let outcomes = parse_libtest(&String::from_utf8_lossy(&output.stdout));
        let passed = |test: &str| outcomes.get(test).map(|outcome| outcome.passed);
        assert_eq!(passed("then_the_next_test_runs"), Some(true), "{threads:?}:\n{text}");
        assert_eq!(passed("leaky_busy_loop_on_current_thread"), Some(false), "{text}");
        assert!(text.contains("test result: FAILED. 1 passed; 1 failed"), "{text}");
        assert!(
            text.contains("taskleak: 1 task leaked by `leaky_busy_loop_on_current_thread` (the check was blocked for"),
            "{text}"
        );
        assert!(text.contains("a task holds the thread the check runs on"), "{text}");
        assert!(text.contains("the other tests go on"), "{text}");
        // The test's own panic is its failure, as libtest shows it.
        assert!(text.contains("the test's own assertion failed"), "{text}");
        if UNSTABLE {
            let site = spawn_site("tests/blocked_runtime.rs", "blocked-runtime");
            assert!(text.contains(&format!("spawned at {site}")), "{text}");
            assert!(text.contains("running, never yielded"), "{text}");
        }
    }
}

/// One fixture test, run alone with the given environment.
fn run_alone(test: &str, env: &[(&str, &str)]) -> (bool, String) {
    let output = cargo_test_with(&["--lib", "--", "--exact", test, "--nocapture"], env);
    let text = text_of(&output);
    assert!(text.contains("running 1 test"), "{test} did not run:\n{text}");
    (output.status.success(), text)
}

#[test]
fn failures_point_at_the_test_and_no_backtrace_of_taskleak_follows_a_report() {
    let leaky = "row01_endless_loop::tests::leaky_endless_loop";
    let (passed, text) = run_alone(leaky, &[("RUST_BACKTRACE", "1")]);
    assert!(!passed, "{text}");
    let located = regex::Regex::new(
        r"(?m)^tests/fixtures/catalogue/src/row01_endless_loop\.rs:\d+:\d+: taskleak: 1 task leaked by",
    )
    .expect("regex");
    assert!(
        located.is_match(&text),
        "the report leads with the test's location:\n{text}"
    );
    assert!(
        !text.contains("taskleak::__private"),
        "a backtrace of taskleak's internals:\n{text}"
    );
    assert!(!text.contains("stack backtrace:"), "{text}");
    // taskleak's own errors panic at the test, not inside taskleak.
    let (passed, text) = run_alone(leaky, &[("TASKLEAK_MODE", "loud")]);
    assert!(!passed, "{text}");
    assert!(
        text.contains("panicked at tests/fixtures/catalogue/src/row01_endless_loop.rs:"),
        "{text}"
    );
    assert!(!text.contains("panicked at /"), "{text}");
}

#[test]
fn a_global_runtime_the_check_cannot_see_is_named_on_stderr() {
    let test = "unwatched_runtime::tests::spawns_onto_a_global_runtime";
    let output = cargo_test(&["--lib", "--", "--ignored", "--exact", test]);
    let text = text_of(&output);
    assert!(text.contains("running 1 test"), "{text}");
    // Its task is invisible, so the test passes: the note says so, on the
    // stderr libtest does not capture, with the ways to cover it.
    assert!(output.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "taskleak: note: `{test}` started a tokio runtime taskleak does not watch (2 worker threads"
        )),
        "{text}"
    );
    assert!(stderr.contains("taskleak::SharedRuntime"), "{stderr}");
    assert!(stderr.contains("taskleak::verify_test_binary!()"), "{stderr}");
}

/// Tasks started where taskleak's hooks cannot see them (a `LocalSet`, a
/// global runtime an earlier test started) pass with a note on the
/// uncaptured stderr: per test when tests run one at a time, once per
/// process, as possibly another test's, when they run alongside.
#[test]
fn tasks_started_outside_the_watched_runtimes_are_named_on_stderr() {
    const OUTSIDE: &str = "started outside every runtime taskleak watches";
    let output = cargo_test(&["--test", "unwatched_tasks", "--", "--test-threads=1"]);
    let text = text_of(&output);
    assert!(output.status.success(), "invisible tasks pass:\n{text}");
    assert!(text.contains("test result: ok. 5 passed"), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !UNSTABLE {
        // Without task hooks nothing tells watched tasks from others.
        assert!(!stderr.contains(OUTSIDE), "{stderr}");
        return;
    }
    for test in [
        "b_spawns_onto_the_global_runtime",
        "c_spawns_into_a_local_set",
        "e_plain_test_spawns_onto_the_global_runtime",
    ] {
        assert!(
            stderr.contains(&format!(
                "taskleak: note: while `{test}` ran, tokio tasks {OUTSIDE}: in a `LocalSet`"
            )),
            "{test}:\n{stderr}"
        );
    }
    assert!(stderr.contains("taskleak::SharedRuntime"), "{stderr}");
    assert!(stderr.contains(r#"#[tokio::test(flavor = "local")]"#), "{stderr}");
    // Blocking work on the test's own runtime is watched.
    assert_eq!(stderr.matches(OUTSIDE).count(), 3, "{stderr}");

    // A plain filter that leaves one test: it is named as the only one.
    let output = cargo_test(&["--test", "unwatched_tasks", "c_spawns_into"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(
        stderr.contains(&format!(
            "while `c_spawns_into_a_local_set` ran, tokio tasks {OUTSIDE}: in"
        )),
        "{stderr}"
    );

    // Without the blocking test: while another test's blocking task is in
    // flight, the count alongside errs towards saying nothing.
    let output = cargo_test(&[
        "--test",
        "unwatched_tasks",
        "--",
        "--test-threads=4",
        "--skip",
        "d_blocking",
    ]);
    let text = text_of(&output);
    assert!(output.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches(OUTSIDE).count(), 1, "once per process:\n{stderr}");
    assert!(
        stderr.contains("another test running at the same time may have started them"),
        "{stderr}"
    );
}

/// Checks running alongside, with no task of their own anywhere: never a
/// note about unwatched tasks (taskleak's own probes race each other).
#[test]
fn checks_alongside_never_take_each_others_probes_for_unwatched_tasks() {
    for _ in 0..6 {
        let output = cargo_test(&["--test", "checks_alongside", "--", "--test-threads=8"]);
        let text = text_of(&output);
        assert!(text.contains("test result: ok. 64 passed"), "{text}");
        assert!(!text.contains("outside every runtime taskleak watches"), "{text}");
    }
}

#[test]
fn ci_can_turn_checks_off_or_into_warnings_without_editing_tests() {
    let leaky = "row01_endless_loop::tests::leaky_endless_loop";
    let (passed, text) = run_alone(leaky, &[("TASKLEAK_MODE", "off")]);
    assert!(passed && !text.contains("taskleak:"), "{text}");
    let (passed, text) = run_alone(leaky, &[("TASKLEAK_MODE", "warn")]);
    assert!(passed && text.contains("taskleak: 1 task leaked by"), "{text}");
    let (passed, text) = run_alone(leaky, &[("TASKLEAK_MODE", "loud")]);
    assert!(
        !passed && text.contains(r#"TASKLEAK_MODE="loud" is not a mode; use `fail`, `warn` or `off`"#),
        "{text}"
    );
}

#[test]
fn ci_can_raise_the_retry_budget_of_every_check() {
    // `max_retries = 0` fails on a straggler ending 30 ms later; a floor of
    // 20 retries (and the default 100 ms sleep cap) gives it the time.
    let straggler = "behaviour::leaky_with_no_grace_period";
    let (passed, _) = run_alone(straggler, &[]);
    assert!(!passed);
    let (passed, text) = run_alone(
        straggler,
        &[("TASKLEAK_MIN_RETRIES", "20"), ("TASKLEAK_MIN_SLEEP_CAP", "100ms")],
    );
    assert!(passed, "{text}");
    let (passed, text) = run_alone(straggler, &[("TASKLEAK_MIN_RETRIES", "lots")]);
    assert!(
        !passed && text.contains(r#"TASKLEAK_MIN_RETRIES="lots" is not a whole number"#),
        "{text}"
    );
}

/// One leaky thread test and what its report must say.
struct ThreadLeak {
    test: &'static str,
    /// What the thread is blocked in, as the report words it.
    blocked: &'static str,
    /// The function the leaked thread runs (the closure's), then the
    /// source line it is at, and the call it is blocked in.
    runs: &'static str,
    at: &'static str,
    top: &'static str,
    /// The section of the fixes page its hint links to.
    fix: &'static str,
}

const THREAD_LEAKS: &[ThreadLeak] = &[
    ThreadLeak {
        test: "row11_blocking_never_returns::tests::leaky_blocking_never_returns",
        blocked: "waiting on a channel",
        runs: "row11_blocking_never_returns::leaky_wait_for_config",
        at: "src/row11_blocking_never_returns.rs:12:",
        top: "std::sync::mpsc::Receiver<T>::recv",
        fix: "thread-waiting",
    },
    ThreadLeak {
        test: "row12_os_thread_never_exits::tests::leaky_os_thread_never_exits",
        blocked: "sleeping",
        runs: "row12_os_thread_never_exits::leaky_start_refresher",
        at: "src/row12_os_thread_never_exits.rs:13:",
        top: "std::thread::functions::sleep",
        fix: "thread-sleeping",
    },
    ThreadLeak {
        test: "row12_os_thread_never_exits::tests::leaky_os_thread_from_a_tokio_test",
        blocked: "sleeping",
        runs: "row12_os_thread_never_exits::leaky_start_refresher",
        at: "src/row12_os_thread_never_exits.rs:13:",
        top: "std::thread::functions::sleep",
        fix: "thread-sleeping",
    },
    ThreadLeak {
        test: "threads::tests::leaky_thread_on_a_lock",
        blocked: "waiting to take a lock",
        runs: "threads::lock_waiter",
        at: "src/threads.rs:12:",
        top: "Mutex<T>::lock",
        fix: "thread-lock",
    },
    ThreadLeak {
        test: "threads::tests::leaky_thread_sleeping_in_a_loop",
        blocked: "sleeping",
        runs: "threads::sleeper",
        at: "src/threads.rs:21:",
        top: "std::thread::functions::sleep",
        fix: "thread-sleeping",
    },
    ThreadLeak {
        test: "threads::tests::leaky_thread_reading_a_socket",
        blocked: "reading from TCP 127.0.0.1:",
        runs: "threads::socket_reader",
        at: "src/threads.rs:33:",
        top: "",
        fix: "thread-io",
    },
    ThreadLeak {
        test: "threads::tests::leaky_thread_parked",
        blocked: "parked",
        runs: "threads::parker",
        at: "src/threads.rs:56:",
        top: "std::thread::functions::park",
        fix: "thread-waiting",
    },
    ThreadLeak {
        test: "threads::tests::leaky_thread_busy",
        blocked: "running: on a CPU each time it was looked at",
        runs: "threads::spinner",
        at: "src/threads.rs:4",
        top: "",
        fix: "thread-running",
    },
    ThreadLeak {
        test: "row18_spin_after_peer_closed::tests::leaky_spin_after_peer_closed",
        blocked: "running: it keeps calling read on ",
        runs: "row18_spin_after_peer_closed::leaky_start_reader",
        at: "src/row18_spin_after_peer_closed.rs:36:",
        // Which of std's merged names the symbolizer picks is its choice.
        top: "",
        fix: "thread-running-read",
    },
];

#[test]
fn every_leaked_thread_is_reported_with_what_it_runs_and_waits_for() {
    for leak in THREAD_LEAKS {
        let outcome = outcome(leak.test);
        let output = &outcome.output;
        assert!(!outcome.passed, "{} passed but leaks a thread", leak.test);
        let headline = format!("1 thread leaked by `{}`", leak.test);
        assert!(
            output.contains(&headline),
            "{}: no `{headline}` in:\n{output}",
            leak.test
        );
        // Started without a name, it shows none (not the test's mark).
        assert!(
            output.contains("1 thread started without a name") || output.contains("1 thread of the test's runtime"),
            "{}: {output}",
            leak.test
        );
        assert!(
            output.contains(&format!("blocked: {}", leak.blocked)),
            "{}: not `{}` in:\n{output}",
            leak.test,
            leak.blocked
        );
        // The closure's function and line, then what it is blocked in.
        let stack = output
            .split("stack:")
            .nth(1)
            .unwrap_or_else(|| panic!("{}: no stack in:\n{output}", leak.test));
        let runs = stack
            .find(leak.runs)
            .unwrap_or_else(|| panic!("{}: `{}` not in:\n{output}", leak.test, leak.runs));
        let line = &stack[runs..stack[runs..].find('\n').map_or(stack.len(), |end| runs + end)];
        assert!(
            line.contains(&format!("tests/fixtures/catalogue/{}", leak.at)),
            "{}: `{}` not at {}:\n{output}",
            leak.test,
            leak.runs,
            leak.at
        );
        assert!(
            stack[runs..].contains(leak.top),
            "{}: `{}` not below `{}`:\n{output}",
            leak.test,
            leak.top,
            leak.runs
        );
        assert!(
            output.contains(&format!("/fixes/index.html#{})", leak.fix)),
            "{}: no fix `{}` in:\n{output}",
            leak.test,
            leak.fix
        );
    }
}

/// Row 18, and hyper-util's report behind it: a thread spinning on a read
/// of a socket whose peer closed. std's `<TcpStream as Read>::read` is one
/// body with `UdpSocket::recv` (and `UnixDatagram::recv`), so the read's
/// frame may be named `UdpSocket::recv`: never alone, always with the note
/// that the name is ambiguous.
#[test]
fn a_thread_spinning_on_a_closed_socket_says_so_and_no_folded_name_stands_alone() {
    let leaky = outcome("row18_spin_after_peer_closed::tests::leaky_spin_after_peer_closed");
    let output = &leaky.output;
    assert!(!leaky.passed, "{output}");
    let blocked = output
        .lines()
        .find(|line| line.trim_start().starts_with("blocked:"))
        .unwrap_or_else(|| panic!("no state in:\n{output}"));
    // The socket by name; when tests running alongside hold sockets their
    // peer closed too, nothing says which one the thread reads, and the
    // report names them all.
    assert!(
        blocked.contains("it keeps calling read on TCP 127.0.0.1:")
            || blocked.contains("it keeps calling read on one of "),
        "{output}"
    );
    assert!(
        blocked.contains("closed by its peer") || blocked.contains("closed by their peer"),
        "{output}"
    );
    let stack = output
        .split("stack:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no stack in:\n{output}"));
    let lines: Vec<&str> = stack
        .lines()
        .take_while(|line| !line.trim_start().starts_with("fix:"))
        .collect();
    // The read is there, under one of its names.
    assert!(
        lines
            .iter()
            .any(|line| line.contains("UdpSocket>::recv") || line.contains("TcpStream::read")),
        "{output}"
    );
    // Wherever a name std shares with other functions is shown, the next
    // line says it is ambiguous and names the read among the others.
    for (at, line) in lines.iter().enumerate() {
        let shared = ["UdpSocket>::recv", "UnixDatagram>::recv", "TcpStream::read"]
            .iter()
            .any(|name| line.contains(name));
        if !shared || line.trim_start().starts_with("(ambiguous name") {
            continue;
        }
        let note = lines.get(at + 1).copied().unwrap_or_default();
        assert!(
            note.trim_start()
                .starts_with("(ambiguous name: the same machine code is also "),
            "`{line}` is shown without the note that its name is ambiguous:\n{output}"
        );
        if line.contains("UdpSocket>::recv") {
            assert!(note.contains("std::net::tcp::TcpStream::read"), "{output}");
        }
    }
    assert!(
        outcome("row18_spin_after_peer_closed::tests::fixed_spin_after_peer_closed").passed,
        "the fixed reader must pass"
    );
}

#[test]
fn a_blocking_pool_thread_is_named_as_such() {
    let output = &outcome("row11_blocking_never_returns::tests::leaky_blocking_never_returns").output;
    assert!(
        output.contains("1 thread of the test's runtime still running a `spawn_blocking` closure"),
        "{output}"
    );
}

#[test]
fn a_leaked_thread_never_hides_the_tests_own_panic() {
    // The test's own (expected) panic and the report of the thread it
    // leaked are both shown; the leak fails it.
    let (passed, text) = run_alone("threads::tests::leaky_should_panic_with_a_leaked_thread", &[]);
    assert!(!passed, "{text}");
    assert!(text.contains("the test's own failure"), "{text}");
    assert!(text.contains("1 thread leaked by"), "{text}");
}

const NAMED: &str = "threads::tests::parallel_named_thread_on_a_channel";

#[test]
fn a_named_thread_fails_the_test_when_no_other_test_can_run_alongside() {
    let (passed, text) = run_alone(NAMED, &[]);
    assert!(!passed, "{text}");
    assert!(text.contains("1 thread leaked by"), "{text}");
    assert!(text.contains("named \"config-watcher\""), "{text}");
    assert!(text.contains("blocked: waiting on a channel"), "{text}");
}

#[test]
fn a_named_thread_is_inconclusive_while_unchecked_tests_may_run_alongside() {
    // Two test threads, one of them free for unchecked tests: the named
    // thread could be theirs, so the check says so and does not fail.
    let output = cargo_test(&[
        "--lib",
        "--",
        NAMED,
        "unchecked_churn_1",
        "--test-threads=2",
        "--show-output",
    ]);
    let text = text_of(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("taskleak: inconclusive for `threads::tests::parallel_named_thread_on_a_channel`"),
        "{text}"
    );
    assert!(
        text.contains(
            "run the test alone (`cargo test -- --exact threads::tests::parallel_named_thread_on_a_channel`)"
        ),
        "{text}"
    );
    assert!(
        text.contains("libtest runs 2 tests in this process, up to 2 at once"),
        "{text}"
    );
    assert!(text.contains("named \"config-watcher\""), "{text}");

    // One test at a time, the same two tests: the named thread is judged.
    let output = cargo_test(&["--lib", "--", NAMED, "unchecked_churn_1", "--test-threads=1"]);
    let text = text_of(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("1 thread leaked by `threads::tests::parallel_named_thread_on_a_channel`"),
        "{text}"
    );
    assert!(text.contains("test threads::churn::unchecked_churn_1 ... ok"), "{text}");
}

#[test]
fn an_inconclusive_check_says_so_on_stderr_without_show_output() {
    // The report of a passing test is captured; the one line is not.
    let output = cargo_test(&["--lib", "--", NAMED, "unchecked_churn_1", "--test-threads=2"]);
    let text = text_of(&output);
    assert!(output.status.success(), "{text}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("taskleak: inconclusive: `"))
        .unwrap_or_else(|| panic!("no inconclusive line on stderr:\n{text}"));
    assert_eq!(
        line,
        "taskleak: inconclusive: `threads::tests::parallel_named_thread_on_a_channel` left 1 thread alive \
         (\"config-watcher\") that another test running at the same time may have started, so it was not \
         judged; for a verdict run it alone: `cargo test -- --exact \
         threads::tests::parallel_named_thread_on_a_channel`, or `cargo taskleak` (re-runs it alone), or \
         `cargo nextest run`"
    );
    assert!(
        !text.contains("may belong to another test"),
        "the report is captured:\n{text}"
    );
}

#[test]
fn a_filter_that_selects_one_test_lets_its_named_thread_be_judged() {
    // Default parallelism, a plain filter: libtest runs this test alone.
    let output = cargo_test(&["--lib", "--", "parallel_named_thread_on_a_channel"]);
    let text = text_of(&output);
    assert!(text.contains("running 1 test"), "{text}");
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("1 thread leaked by `threads::tests::parallel_named_thread_on_a_channel`"),
        "{text}"
    );
    assert!(text.contains("named \"config-watcher\""), "{text}");
    assert!(!text.contains("taskleak: inconclusive"), "{text}");
}

#[test]
fn nextest_runs_each_test_alone_so_a_named_thread_is_judged() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "nextest",
            "run",
            "-p",
            "taskleak-fixture-catalogue",
            "--lib",
            "--no-fail-fast",
            "-E",
        ])
        .arg(format!("test(={NAMED}) | test(/churn/)"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let text = text_of(&output);
    assert!(
        !text.contains("no such command"),
        "cargo-nextest is needed for this test (`cargo install cargo-nextest --locked`):\n{text}"
    );
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("1 thread leaked by"), "{text}");
    // Exactly the named-thread test failed; the churn tests all passed.
    assert!(text.contains("11 passed") || text.contains("11 tests passed"), "{text}");
    assert!(text.contains("1 failed"), "{text}");
}

#[test]
fn other_tests_threads_never_fail_a_checked_test_nor_are_disturbed() {
    // Checked and unchecked tests together, at several degrees of
    // parallelism: the checked ones see the others' threads come and go.
    for threads in ["--test-threads=2", "--test-threads=3", "--test-threads=6"] {
        let output = cargo_test(&["--lib", "--", "foreign::", threads]);
        let text = text_of(&output);
        assert!(output.status.success(), "{threads}:\n{text}");
        assert!(text.contains("6 passed"), "{threads}:\n{text}");
    }
}

#[test]
fn a_module_level_check_catches_the_one_leaky_test_of_its_module() {
    // The module's `max_retries = 5` applies to its tests.
    let output = &outcome("module_level::checked::leaky_task_in_a_checked_module").output;
    assert!(
        output.contains(
            "1 task leaked by `module_level::checked::leaky_task_in_a_checked_module` (still alive after 5 retries"
        ),
        "{output}"
    );
    if UNSTABLE {
        let site = spawn_site("src/module_level.rs", "module-level");
        assert!(output.contains(&format!("spawned at {site}")), "{output}");
    }
    let nested = &outcome("module_level::checked::nested::leaky_thread_in_a_nested_module").output;
    assert!(nested.contains("1 thread leaked by"), "{nested}");
    // A test's own budget wins over the module's; a skipped test is not
    // checked; helpers and the other tests pass.
    for test in [
        "module_level::checked::straggler_with_its_own_budget",
        "module_level::checked::skipped_leaks_and_passes",
        "module_level::checked::joined_thread",
        "module_level::checked::joined_task",
        "module_level::checked::nested::uses_a_helper",
    ] {
        assert!(outcome(test).passed, "{test}: {}", outcome(test).output);
    }
}

#[test]
fn serial_tests_judge_named_threads_in_a_parallel_run() {
    // Four serial tests, each leaking a named thread, two at a time: while
    // one holds its turn the other waits, so no other test can run and the
    // thread is judged. Only the last one, with no test left to start
    // alongside it, cannot tell, and is inconclusive.
    let output = cargo_test(&["--lib", "--", "parallel_serial_named_", "--test-threads=2"]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let outcomes = parse_libtest(&stdout);
    assert_eq!(outcomes.len(), 4, "{stdout}");
    let judged = outcomes.values().filter(|outcome| !outcome.passed).count();
    assert!(judged >= 3, "only {judged} of 4 judged:\n{stdout}");
    for outcome in outcomes.values().filter(|outcome| !outcome.passed) {
        assert!(outcome.output.contains("1 thread leaked by"), "{}", outcome.output);
        assert!(outcome.output.contains("named \"serial-named\""), "{}", outcome.output);
    }
}

/// One fixture integration-test binary, run whole.
fn run_binary(test: &str, runner: &[&str]) -> (bool, String) {
    let output = if runner.is_empty() {
        cargo_test(&["--test", test])
    } else {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        Command::new(cargo)
            .args(runner)
            .args(["-p", "taskleak-fixture-catalogue", "--test", test, "--no-fail-fast"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo runs")
    };
    let text = text_of(&output);
    (output.status.success(), text)
}

#[test]
fn a_binary_level_check_fails_the_binary_for_a_leaked_thread() {
    let (passed, text) = run_binary("binary_thread_leak", &[]);
    assert!(!passed, "{text}");
    // Every test passed; the binary failed at its end.
    assert!(text.contains("test result: ok. 3 passed"), "{text}");
    assert!(
        text.contains("taskleak: 1 thread leaked by `binary_thread_leak`"),
        "{text}"
    );
    assert!(text.contains("named \"stray-poller\""), "{text}");
    assert!(text.contains("binary_thread_leak::leaves_a_poller_running"), "{text}");
    assert!(text.contains("at the end of the test binary"), "{text}");
}

#[test]
fn a_binary_level_check_fails_the_binary_for_a_task_left_on_a_global_runtime() {
    let (passed, text) = run_binary("binary_task_leak", &[]);
    assert!(!passed, "{text}");
    assert!(text.contains("test result: ok. 8 passed"), "{text}");
    assert!(text.contains("taskleak: 1 task leaked by `binary_task_leak`"), "{text}");
    if UNSTABLE {
        let site = spawn_site("tests/binary_task_leak.rs", "binary-task");
        assert!(text.contains(&format!("spawned at {site}")), "{text}");
        assert!(text.contains("tokio::sync::oneshot::Receiver<T>"), "{text}");
    }
}

#[test]
fn a_binary_level_check_takes_the_crates_configuration_and_the_environment() {
    // The hint at the binary level is a `taskleak.toml` line.
    let (passed, text) = run_binary("binary_task_leak", &[]);
    assert!(!passed, "{text}");
    if UNSTABLE {
        let site = spawn_site("tests/binary_task_leak.rs", "binary-task");
        assert!(text.contains("in `taskleak.toml`"), "{text}");
        let rule = format!("ignore_spawned_at = ['^{}", regex::escape(&site));
        assert!(text.contains(&rule), "{text}");
        assert!(
            !text.contains("#[taskleak::verify_no_leaks(ignore_spawned_at"),
            "{text}"
        );
    }
    // A rule in the file silences the leaked thread.
    let config = config_file("binary-poller-ignored.toml");
    let output = cargo_test_with(&["--test", "binary_thread_leak"], &[("TASKLEAK_CONFIG", &config)]);
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(!text_of(&output).contains("taskleak:"), "{}", text_of(&output));
    // A malformed file fails the binary, naming file and line.
    let malformed = config_file("malformed.toml");
    let output = cargo_test_with(&["--test", "binary_clean"], &[("TASKLEAK_CONFIG", &malformed)]);
    assert!(!output.status.success(), "{}", text_of(&output));
    assert!(text_of(&output).contains("malformed.toml:2:"), "{}", text_of(&output));
    // `warn` reports and passes; `off` does not check.
    let output = cargo_test_with(&["--test", "binary_thread_leak"], &[("TASKLEAK_MODE", "warn")]);
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(
        text_of(&output).contains("taskleak: 1 thread leaked by `binary_thread_leak`"),
        "{}",
        text_of(&output)
    );
    let output = cargo_test_with(&["--test", "binary_thread_leak"], &[("TASKLEAK_MODE", "off")]);
    assert!(output.status.success(), "{}", text_of(&output));
    assert!(!text_of(&output).contains("taskleak:"), "{}", text_of(&output));
}

#[test]
fn a_binary_that_leaves_nothing_running_passes_its_check() {
    let (passed, text) = run_binary("binary_clean", &[]);
    assert!(passed, "{text}");
    assert!(!text.contains("taskleak:"), "{text}");
}

#[test]
fn a_harness_false_binary_wraps_its_main() {
    let (passed, text) = run_binary("binary_main", &[]);
    assert!(!passed, "{text}");
    assert!(text.contains("own harness: done"), "{text}");
    assert!(text.contains("taskleak: 1 thread leaked by `binary_main`"), "{text}");
    assert!(text.contains("binary_main::main"), "{text}");
}

#[test]
fn under_nextest_the_binary_check_runs_after_each_test() {
    let (passed, text) = run_binary("binary_thread_leak", &["nextest", "run"]);
    assert!(!passed, "{text}");
    assert!(text.contains("2 passed"), "{text}");
    assert!(text.contains("1 failed"), "{text}");
    assert!(text.contains("leaves_a_poller_running"), "{text}");
    assert!(
        text.contains("taskleak: 1 thread leaked by `binary_thread_leak`"),
        "{text}"
    );
}

#[test]
fn on_a_shared_runtime_exactly_the_leaky_test_of_eight_parallel_ones_fails() {
    let output = cargo_test(&["--test", "shared_runtime", "--", "--test-threads=8"]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let outcomes = parse_libtest(&stdout);
    assert_eq!(outcomes.len(), 8, "{stdout}{stderr}");
    if UNSTABLE {
        for (name, outcome) in &outcomes {
            assert_eq!(outcome.passed, name != "leaky_chain", "{name}: {}", outcome.output);
        }
        let report = &outcomes["leaky_chain"].output;
        // Its own task only: not the pool's, not the other tests'.
        assert!(report.contains("1 task leaked by `leaky_chain`"), "{report}");
        let site = spawn_site("tests/shared_runtime.rs", "shared-leak");
        assert!(report.contains(&format!("spawned at {site}")), "{report}");
    } else {
        // Without task hooks nothing ties a task to its test: not checked,
        // and said so.
        assert!(outcomes.values().all(|outcome| outcome.passed), "{stdout}");
        assert!(stderr.contains("need `--cfg tokio_unstable`"), "{stderr}");
    }
}

fn config_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/configs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_project_configuration_applies_to_every_check_of_the_crate() {
    let config = config_file("quiet-sleeper.toml");
    // Its ignore rule silences a known thread...
    let (passed, text) = run_alone(
        "threads::tests::leaky_thread_sleeping_in_a_loop",
        &[("TASKLEAK_CONFIG", &config)],
    );
    assert!(passed, "{text}");
    // ...and its retry budget is every check's.
    let (passed, text) = run_alone(
        "row01_endless_loop::tests::leaky_endless_loop",
        &[("TASKLEAK_CONFIG", &config)],
    );
    assert!(!passed, "{text}");
    assert!(text.contains("still alive after 3 retries"), "{text}");
    // A test's own attribute still wins over the file.
    let (passed, text) = run_alone(
        "module_level::checked::straggler_with_its_own_budget",
        &[("TASKLEAK_CONFIG", &config)],
    );
    assert!(passed, "{text}");
}

#[test]
fn a_malformed_configuration_fails_the_check_naming_file_line_and_problem() {
    let config = config_file("malformed.toml");
    let (passed, text) = run_alone(
        "row01_endless_loop::tests::fixed_endless_loop",
        &[("TASKLEAK_CONFIG", &config)],
    );
    assert!(!passed, "{text}");
    assert!(
        text.contains(&format!("taskleak: {config}:2: unknown key `max_retry`")),
        "{text}"
    );
    let missing = config_file("no-such-file.toml");
    let (passed, text) = run_alone(
        "row01_endless_loop::tests::fixed_endless_loop",
        &[("TASKLEAK_CONFIG", &missing)],
    );
    assert!(!passed, "{text}");
    assert!(text.contains("cannot read it"), "{text}");
}

#[test]
fn a_watchdog_exit_ends_a_binary_with_an_end_of_binary_check() {
    let started = std::time::Instant::now();
    let (passed, text) = run_binary("binary_watchdog", &[]);
    assert!(!passed, "{text}");
    assert!(text.contains("could not finish"), "{text}");
    assert!(text.contains("a task holds the thread the check runs on"), "{text}");
    // The end-of-binary check is skipped on an exit from another thread.
    assert!(!text.contains("at the end of the test binary"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "{text}");
}

#[test]
fn on_a_shared_runtime_a_local_set_task_spawns_for_its_test() {
    let (passed, text) = run_binary("shared_runtime_local_set", &[]);
    if UNSTABLE {
        assert!(!passed, "{text}");
        assert!(
            text.contains("1 task leaked by `leaky_spawn_from_a_local_set`"),
            "{text}"
        );
    } else {
        assert!(passed, "{text}");
    }
}

#[test]
fn stacked_test_attributes_keep_the_check_in_the_supported_orders() {
    let output = cargo_test(&["--test", "compat"]);
    let outcomes = parse_libtest(&String::from_utf8_lossy(&output.stdout));
    // Every generated case counts: none may go missing unchecked.
    assert_eq!(outcomes.len(), 22, "{}", text_of(&output));
    for (test, outcome) in &outcomes {
        let leaky = test.split("::").any(|segment| segment.contains("leaky"));
        if leaky {
            assert!(!outcome.passed, "{test} passed");
            assert!(
                outcome.output.contains(&format!("1 thread leaked by `{test}`")),
                "{test}: {}",
                outcome.output
            );
        } else {
            assert!(outcome.passed, "{test}: {}", outcome.output);
        }
    }
    for case in [
        "tests::leaky_test_cases::test_case_1_one",
        "tests::leaky_test_cases_tokio::test_case_2_two",
        "tests::test_cases_one_of_two::test_case_1_clean",
        "tests::test_cases_one_of_two::test_case_2_leaky",
        "module_frameworks::leaky_module_test_case::test_case_1_one",
        "module_frameworks::leaky_module_test_case_tokio::test_case_2_two",
        "module_frameworks::leaky_module_rstest_tokio::case_1",
    ] {
        assert!(outcomes.contains_key(case), "{case} did not run: {}", text_of(&output));
    }
}

#[test]
fn a_leaked_threads_report_ends_with_the_cheapest_rule_that_matches_it() {
    // Unnamed: a rule on the closure's own function.
    let output = &outcome("shared_fixture::tests::leaky_fixture_without_a_rule").output;
    assert!(output.contains("1 thread leaked by"), "{output}");
    assert!(
        output.contains(
            "  hint: if such a thread is meant to outlive the test (a shared fixture's), ignore it with\n        \
             #[taskleak::verify_no_leaks(ignore_any_function = \
             r\"^taskleak_fixture_catalogue::shared_fixture::start_echo_server$\")]\n"
        ),
        "{output}"
    );
    // Named: its own name, the rule that costs nothing.
    let (passed, text) = run_alone(NAMED, &[]);
    assert!(!passed, "{text}");
    assert!(
        text.contains(
            "  hint: if such a thread is meant to outlive the test (a shared fixture's), ignore it with\n        \
             #[taskleak::verify_no_leaks(ignore_thread_name = r\"^config-watcher$\")]\n"
        ),
        "{text}"
    );
}

/// The six tests sharing the `LazyLock` echo servers, with the rules the
/// docs recommend (by name, and by function for the unnamed one).
const FIXTURE_TESTS: [&str; 6] = [
    "shared_fixture::tests::fixture_by_name_1",
    "shared_fixture::tests::fixture_by_name_2",
    "shared_fixture::tests::fixture_by_name_3",
    "shared_fixture::tests::fixture_by_function_1",
    "shared_fixture::tests::fixture_by_function_2",
    "shared_fixture::tests::fixture_by_function_3",
];

#[test]
fn a_shared_lazily_started_fixture_passes_with_the_recommended_rule_however_tests_are_run() {
    // `cargo test`: libtest's default parallelism, the first test starts it.
    let output = cargo_test(&["--lib", "--", "shared_fixture::tests::fixture_"]);
    let text = text_of(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("6 passed"), "{text}");
    // A process per test, as nextest runs them: each test starts it.
    for test in FIXTURE_TESTS {
        let (passed, text) = run_alone(test, &[]);
        assert!(passed, "{test}:\n{text}");
        assert!(!text.contains("taskleak:"), "{test}:\n{text}");
    }
    // nextest itself.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["nextest", "run", "-p", "taskleak-fixture-catalogue", "--lib", "-E"])
        .arg("test(/shared_fixture::tests::fixture_/)")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    let text = text_of(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("6 passed") || text.contains("6 tests passed"), "{text}");
}

#[test]
fn each_report_names_only_the_tests_own_threads() {
    // Two checked tests leak a thread each while an unchecked one leaks
    // another, all three at once: each report shows its own thread only.
    let output = cargo_test(&["--lib", "--", "own_only::", "--test-threads=3"]);
    let outcomes = parse_libtest(&String::from_utf8_lossy(&output.stdout));
    let own = [
        ("own_only::tests::leaky_own_thread_first", "own_only::first_leaker"),
        ("own_only::tests::leaky_own_thread_second", "own_only::second_leaker"),
    ];
    for (test, function) in own {
        let outcome = outcomes.get(test).unwrap_or_else(|| panic!("{test} did not run"));
        let report = &outcome.output;
        assert!(!outcome.passed, "{report}");
        assert!(report.contains(&format!("1 thread leaked by `{test}`")), "{report}");
        assert!(report.contains(function), "{report}");
        for other in ["first_leaker", "second_leaker", "unchecked_leaker"] {
            assert!(
                function.ends_with(other) || !report.contains(other),
                "{other} in:\n{report}"
            );
        }
        assert!(!report.contains("may belong to another test"), "{report}");
        assert!(!report.contains("named \"own_only::tests"), "{report}");
    }
    let unchecked = outcomes
        .get("own_only::tests::unchecked_neighbour")
        .map(|outcome| outcome.passed);
    assert_eq!(unchecked, Some(true));
}

#[test]
fn an_unnamed_thread_is_shown_unnamed_and_keyed_without_the_name_it_inherited() {
    let records = std::env::temp_dir().join(format!("taskleak-unnamed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&records);
    std::fs::create_dir_all(&records).expect("a records directory");
    let dir = records.display().to_string();
    let output = cargo_test_with(&["--test", "binary_unnamed_thread"], &[("TASKLEAK_RECORD_DIR", &dir)]);
    let text = text_of(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("1 thread started without a name (inherited the kernel name \"leaves_a_flushe\")"),
        "{text}"
    );
    assert!(!text.contains("named \"leaves_a_flushe\""), "{text}");
    assert!(
        text.contains("ignore_any_function = ['^binary_unnamed_thread::leaves_a_flusher_running$']"),
        "{text}"
    );
    // The record (the gate's key) carries no inherited name.
    let written: String = std::fs::read_dir(&records)
        .expect("records written")
        .filter_map(|entry| std::fs::read_to_string(entry.ok()?.path()).ok())
        .collect();
    assert!(
        written.contains("{\"kind\":\"thread\",\"count\":1,\"name\":\"\","),
        "{written}"
    );
    let _ = std::fs::remove_dir_all(&records);
}
