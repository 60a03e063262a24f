//! Tokio tasks: the hooks' live-task registry ([`Tracker`]), snapshots and
//! verifying against them with a grace period, async stacks from tokio's
//! task dump, task names, and tasks started where no hook sees them.

mod dump;
#[cfg(all(tokio_unstable, feature = "task-names"))]
mod names;
pub(crate) mod registry;
pub(crate) mod settle;
mod snapshot;
mod task_id;
pub(crate) mod timer;
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
mod unwatched;

pub(crate) use dump::all_stacks;
#[cfg(all(tokio_unstable, feature = "task-names"))]
pub(crate) use names::{capture_on_this_thread, on_runtime_thread_start, on_runtime_thread_stop};
pub(crate) use registry::TaskRecord;
pub use registry::Tracker;
pub use snapshot::Snapshot;
#[cfg(tokio_unstable)]
pub(crate) use unwatched::Window;
pub(crate) use unwatched::{Accounting, Watched};
