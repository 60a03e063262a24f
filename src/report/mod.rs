//! What a check found, as data: the [`LeakReport`]'s groups of leaked
//! tasks ([`LeakGroup`]: spawn site, [`TaskState`], [`AsyncStack`],
//! [`Cause`]) and threads ([`ThreadGroup`]), the source lines at a spawn
//! site; inside the crate, also its rendering and the records `cargo
//! taskleak` reads.
//!
//! ```
//! # fn show(report: &taskleak::LeakReport) {
//! use taskleak::report::{Cause, TaskState};
//! for group in report.groups() {
//!     if group.state() == &TaskState::Waiting && group.cause() == &Cause::Notify {
//!         println!("{} tasks wait for a notify that never comes", group.count());
//!     }
//! }
//! # }
//! ```

pub(crate) mod leak_report;
pub(crate) mod record;
mod source;
pub(crate) mod thread_report;
mod words;

pub use leak_report::{Detail, GracePeriod, LeakGroup, LeakReport};
pub(crate) use leak_report::{ENABLE_FULL_REPORTS, Scope, Survivor};
pub use source::SourceExcerpt;
pub(crate) use source::crate_of_site;
pub use thread_report::{ThreadGroup, ThreadState};

pub use crate::model::{AsyncStack, Cause, FIXES_PAGE, StackFrame, TaskState};
pub(crate) use thread_report::{ThreadSection, write_dump_group};
pub(crate) use words::plural;
