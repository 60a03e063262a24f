//! Monitoring running services: live task and thread counts with growth
//! flagged, task dumps grouped by spawn site and stack, and the dump over
//! HTTP.

#[cfg(feature = "http")]
pub mod http;
mod live;
mod task_dump;

pub use live::{Growth, Monitor, MonitorBuilder, Resource, Sample};
pub use task_dump::{Dumper, SAMPLE_IDS, TaskDump, TaskGroup, ThreadListing};
