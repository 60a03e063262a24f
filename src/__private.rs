//! What `#[verify_no_leaks]` and `verify_test_binary!` expand to: re-exports
//! only, so generated code names one path. Not public API.

pub use tokio;

pub use crate::harness::{Flavor, NotAResult, Outcome, TestSpec, binary_start, run_sync_test, run_tokio_test};
