// What libtest refuses stays refused, pointing at the token; lifetime
// parameters, which libtest accepts, are accepted (tests/fixtures).

#[taskleak::verify_no_leaks]
#[test]
fn generic_over_a_type<T: Default>() {}

#[taskleak::verify_no_leaks]
#[tokio::test]
async fn generic_over_a_const<const N: usize>() {}

#[taskleak::verify_no_leaks]
#[test]
fn takes_an_argument(_port: u16) {}

#[taskleak::verify_no_leaks]
#[test]
fn generic_over_a_lifetime_is_fine<'a>() {
    let _: &'a str = "";
}

fn main() {}
