#[taskleak::verify_no_leaks]
#[tokio::test(worker_threads = 2)]
async fn workers_on_current_thread() {}

#[taskleak::verify_no_leaks]
#[tokio::test(flavor = "local", worker_threads = 2)]
async fn workers_on_local() {}

#[taskleak::verify_no_leaks]
#[tokio::test(flavor = "single")]
async fn unknown_flavor() {}

#[taskleak::verify_no_leaks]
#[tokio::test(flavor = "multi_thread", start_paused = true)]
async fn paused_multi_thread() {}

fn main() {}
