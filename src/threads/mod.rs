//! OS threads: the threads a test started and left running, found from the
//! kernel's view (`/proc/self/task`), judged, tied to the test that started
//! them while other tests run alongside, and their native stacks.

mod describe;
mod folding;
pub(crate) mod isolation;
mod native_stack;
pub(crate) mod proc_threads;
#[cfg(target_os = "linux")]
mod task_listing;
mod thread_check;

pub(crate) use describe::describe_process;
pub(crate) use isolation::{CheckedThread, Runner, say_once};
pub(crate) use proc_threads::set_current_name;
pub(crate) use thread_check::{RuntimeThreads, ThreadSnapshot};
