#[taskleak::verify_no_leaks]
async fn no_runtime() {}

fn main() {}
