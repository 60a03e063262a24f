//! What libtest does in this process that a check must know: which tests it
//! runs, how many, and the names it gives its test threads.

mod count;
mod list;
mod thread_names;

pub(crate) use count::tests_in_process;
pub(crate) use thread_names::{in_libtest, is_inherited, is_main_thread_name, is_seen_test_thread, record_test_thread};
