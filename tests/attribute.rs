//! `#[verify_no_leaks]` used from outside the crate, as users do: the
//! clean cases, which must compile and pass (leaky cases live in the
//! catalogue fixture, driven by `tests/catalogue.rs`).

use std::time::Duration;

/// Doc comments and other attributes are kept.
#[taskleak::verify_no_leaks]
#[tokio::test]
async fn joined_task() {
    let task = tokio::spawn(async { 2 });
    assert_eq!(task.await.unwrap(), 2);
}

#[taskleak::verify_no_leaks(max_retries = 40, max_sleep = "20ms")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_with_options() {
    tokio::spawn(tokio::time::sleep(Duration::from_millis(10)));
}

#[taskleak::verify_no_leaks]
#[tokio::test(start_paused = true)]
async fn paused_clock() {
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(start.elapsed() >= Duration::from_secs(60));
}

#[taskleak::verify_no_leaks]
#[tokio::test]
async fn result_with_question_mark() -> Result<(), std::num::ParseIntError> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}

#[taskleak::verify_no_leaks(ignore_spawned_at = r"tests/attribute\.rs:", ignore_top_function = "(?i)HYPER")]
#[tokio::test]
async fn ignored_spawn_site() {
    // Ignored with `tokio_unstable`; counted without it, so only leak then.
    if cfg!(tokio_unstable) {
        tokio::spawn(std::future::pending::<()>());
    }
}

#[taskleak::verify_no_leaks]
#[tokio::test]
#[ignore = "kept ignored by the attribute"]
async fn ignored_test() {
    panic!("an ignored test must not run");
}

/// `unhandled_panic` and the runtime `name` are unstable tokio options,
/// passed through to taskleak's runtime as `#[tokio::test]` would.
#[cfg(tokio_unstable)]
#[taskleak::verify_no_leaks]
#[tokio::test(unhandled_panic = "shutdown_runtime", name = "checked-runtime")]
async fn unstable_runtime_options_pass_through() {
    let task = tokio::spawn(async { 1 });
    assert_eq!(task.await.unwrap(), 1);
}
