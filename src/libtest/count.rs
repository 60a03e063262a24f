//! How many tests libtest runs in this process, from its own listing.

/// The number of tests libtest runs in this process, if it can be known:
/// a filter selecting one test makes it the only one, and then every
/// thread started during it is its own. Costs one `--list` run of the
/// binary, once per process ([`crate::libtest::list::listed`]), and only when
/// a check needs it (threads no test could be tied to). `None` off
/// libtest's harness, or when the listing fails: the caller must then not
/// claim a count.
///
/// `test` is the checked test: only a test libtest runs on a thread named
/// after it is known to run under libtest (a `harness = false` binary's
/// `main` would run again instead of listing).
pub(crate) fn tests_in_process(test: &str) -> Option<usize> {
    if std::thread::current().name() != Some(test) {
        return None;
    }
    crate::libtest::list::listed().map(<[String]>::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_of_this_process_are_counted() {
        // libtest runs each test on a thread named after it.
        let name = std::thread::current().name().map(str::to_owned);
        let count = name.as_deref().and_then(tests_in_process);
        assert!(count.is_some_and(|count| count >= 1), "{count:?}");
    }

    #[test]
    fn a_thread_not_named_after_the_test_is_not_listed() {
        // Run on a thread of its own: libtest's is named after this test.
        let count = std::thread::spawn(|| tests_in_process("no::such::test")).join();
        assert_eq!(count.ok(), Some(None));
    }
}
