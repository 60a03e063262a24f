//! What a check is allowed and told: [`Options`](options::Options) with their
//! defaults, filled in from the attribute, `taskleak.toml` and the
//! `TASKLEAK_*` environment, and the ignore rules applied to survivors.

mod env;
mod file;
mod filter;
mod options;

pub(crate) use env::{Mode, Settings};
pub(crate) use file::options_for_crate;
pub use options::Options;
#[cfg(tokio_unstable)]
pub(crate) use options::SUSPECT_DUMP_TIMEOUT;
pub(crate) use options::{DUMP_TIMEOUT, FIRST_SLEEP};
