//! What generated code and the binary check run: the test template (build
//! the runtime with the hooks, run the body, check, fail the test), the
//! whole-binary check, the shared runtime, and the watchdog that bounds a
//! check.

mod binary;
mod check_thread;
mod shared;
mod test_run;
mod watchdog;

#[doc(hidden)]
pub use test_run::{Flavor, NotAResult, Outcome, TestSpec, binary_start, run_sync_test, run_tokio_test};

pub use binary::{check_at_exit, verify_main};
pub use shared::SharedRuntime;
