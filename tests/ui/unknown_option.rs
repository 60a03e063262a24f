#[taskleak::verify_no_leaks(max_retry = 3)]
#[tokio::test]
async fn typo_in_option() {}

fn main() {}
