//! Monitoring running services: live task and thread counts with growth
//! flagged ([`Monitor`]), task dumps grouped by spawn site and stack
//! ([`Dumper`], [`TaskDump`]), and the dump over HTTP (`http`, feature
//! `http`).
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), taskleak::Error> {
//! let dump = taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current()).dump().await?;
//! println!("{dump}");
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "http")]
pub mod http;
mod live;
mod task_dump;

pub use live::{Growth, Monitor, MonitorBuilder, Resource, Sample};
pub use task_dump::{Dumper, SAMPLE_IDS, TaskDump, TaskGroup, ThreadListing};
