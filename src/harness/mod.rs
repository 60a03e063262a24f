//! What generated code and the binary check run: the one test template
//! for tokio and plain tests (`test_run`: the body, its checks, the
//! verdict), the whole-binary check, the shared runtime, and the watchdog
//! and check thread that bound a check.

mod binary;
mod check_thread;
mod shared;
mod spec;
mod test_run;
mod test_runtime;
mod verdict;
mod watchdog;

#[doc(hidden)]
pub use spec::{Flavor, NotAResult, Outcome, TestSpec};
#[doc(hidden)]
pub use test_run::{binary_start, run_sync_test, run_tokio_test};

pub use binary::{check_at_exit, verify_main};
pub use shared::SharedRuntime;
