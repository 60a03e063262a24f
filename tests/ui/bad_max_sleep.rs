#[taskleak::verify_no_leaks(max_sleep = "100")]
#[tokio::test]
async fn no_unit() {}

#[taskleak::verify_no_leaks(max_retries = "many")]
#[tokio::test]
async fn not_a_number() {}

fn main() {}
