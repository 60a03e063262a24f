//! The leaf layer: what a report says about a task, whoever found it —
//! its async stack and frames, its state, and why it is stuck (the cause
//! rules and their fixes). Imports nothing else of the crate.

mod cause;
mod diagnosis;
mod grouping;
mod stack;
mod task_state;

pub use cause::{Cause, FIXES_PAGE};
pub(crate) use grouping::group_by;
pub use stack::{AsyncStack, StackFrame};
pub(crate) use stack::{RawFrame, clean_symbol, native_frames, source_root, write_frame};
pub use task_state::TaskState;
