//! What a check found, as people and tools read it: the [`LeakReport`] of
//! leaked tasks and threads grouped and rendered, the source lines at a spawn
//! site, and the JSON records `cargo taskleak` reads.

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
pub(crate) use thread_report::{ThreadSection, write_dump_group};
pub(crate) use words::plural;
