#[taskleak::verify_no_leaks]
#[test]
fn sync_test() {}

fn main() {}
