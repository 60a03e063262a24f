#[taskleak::verify_no_leaks(task_names = true)]
#[tokio::test]
async fn names_are_a_feature_now() {}

#[taskleak::verify_no_leaks(ignore_dependency = "bb8 0.9")]
#[tokio::test]
async fn a_dependency_is_a_crate_name() {}

#[taskleak::verify_no_leaks(crate = "not a path")]
#[tokio::test]
async fn crate_takes_a_path() {}

#[taskleak::verify_no_leaks(max_retries = 1, max_retries = 2)]
#[tokio::test]
async fn given_twice() {}

fn main() {}
