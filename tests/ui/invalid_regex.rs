#[taskleak::verify_no_leaks(ignore_top_function = "tokio::(unclosed")]
#[tokio::test]
async fn bad_regex() {}

fn main() {}
