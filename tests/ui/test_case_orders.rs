// With test-case, `#[verify_no_leaks]` goes above the `#[test_case]` lines;
// a plain test's case that expects a panic cannot be told from a leak.
use test_case::test_case;

#[taskleak::verify_no_leaks]
#[test_case(1 => panics "boom" ; "boom")]
fn expects_a_panic(_case: u32) {
    panic!("boom")
}

fn main() {}
