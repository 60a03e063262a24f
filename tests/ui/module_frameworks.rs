// A checked module cannot wrap other frameworks' tests: a compile error,
// not a test silently left unchecked.

#[taskleak::verify_no_leaks]
mod with_a_hidden_test {
    #[cfg_attr(all(), test)]
    fn behind_cfg_attr() {}
}

fn main() {}
