#[tokio::test]
#[taskleak::verify_no_leaks]
async fn in_the_wrong_order() {}

fn main() {}
