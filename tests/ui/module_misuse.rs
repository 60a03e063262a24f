// `#[verify_no_leaks]` on a module, and `#[taskleak::skip]`.

#[taskleak::verify_no_leaks(max_retrys = 3)]
mod misspelled_option {
    #[test]
    fn t() {}
}

#[taskleak::verify_no_leaks]
mod skip_and_verify {
    #[taskleak::skip]
    #[taskleak::verify_no_leaks]
    #[test]
    fn both() {}
}

#[taskleak::verify_no_leaks]
mod skip_with_arguments {
    #[taskleak::skip(reason = "x")]
    #[test]
    fn t() {}
}

fn main() {}
