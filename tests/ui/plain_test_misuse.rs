// A plain `#[test]` is checked for threads only.

#[taskleak::verify_no_leaks(threads = false)]
#[test]
fn checks_nothing() {}

#[taskleak::verify_no_leaks(threads = "no")]
#[test]
fn threads_takes_a_bool() {}

#[taskleak::verify_no_leaks]
#[test]
async fn async_with_plain_test() {}

#[taskleak::verify_no_leaks(ignore_thread_name = "worker-(")]
#[test]
fn bad_thread_name_regex() {}

#[taskleak::verify_no_leaks]
fn not_a_test() {}

#[taskleak::verify_no_leaks(serial = true, threads = false)]
#[tokio::test]
async fn serial_without_threads() {}

#[taskleak::verify_no_leaks(runtime = "RUNTIME")]
#[tokio::test]
async fn shared_runtime_on_a_tokio_test() {}

#[taskleak::verify_no_leaks(runtime = "not a path")]
#[test]
fn runtime_takes_a_path() {}

fn main() {}
