#[taskleak::verify_no_leaks(task_names = "yes")]
#[tokio::test]
async fn names_take_a_bool() {}

#[taskleak::verify_no_leaks(crate = "not a path")]
#[tokio::test]
async fn crate_takes_a_path() {}

#[taskleak::verify_no_leaks(max_retries = 1, max_retries = 2)]
#[tokio::test]
async fn given_twice() {}

fn main() {}
