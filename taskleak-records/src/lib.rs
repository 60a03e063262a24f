//! The leak records `taskleak` writes while tests run and `cargo taskleak`
//! reads back: with `TASKLEAK_RECORD_DIR` set, every check appends one
//! [`Record`] as a JSON line to `<dir>/<binary>-<pid>.jsonl` — a clean check
//! too, so that the gate can tell checked tests from unchecked ones.
//!
//! One definition for both sides, so that they cannot drift apart:
//!
//! ```
//! use taskleak_records::{Record, Scope, VERSION};
//!
//! let line = r#"{"version":1,"binary":"alpha","test":"tests::clean","scope":"test",
//!     "leak_fails":false,"own_failure":false,"process_test":null,"unwatched_tasks":null,
//!     "unwatched_runtime_workers":0,"tasks":0,"threads":0,"groups":[],"report":""}"#;
//! let record: Record = serde_json::from_str(line)?;
//! assert_eq!(record.version, VERSION);
//! assert_eq!(record.scope, Scope::Test);
//! assert!(!record.is_leak());
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};

/// The layout version this crate writes and reads; a record of another
/// version comes from another taskleak version.
///
/// ```
/// assert_eq!(taskleak_records::VERSION, 1);
/// ```
pub const VERSION: u32 = 1;

/// One check's outcome.
///
/// ```
/// # fn show(record: &taskleak_records::Record) {
/// println!("{}: {} tasks, {} threads leaked", record.test_name(), record.tasks, record.threads);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// [`VERSION`] of the writer.
    pub version: u32,
    /// The test binary, as cargo names it (`alpha`, `leaky_tests`).
    pub binary: String,
    /// The test's path (`tests::leaky`), or none for an end-of-binary check.
    pub test: Option<String>,
    /// A test's check, or a whole binary's at its end.
    pub scope: Scope,
    /// The report fails its test (or binary).
    pub leak_fails: bool,
    /// The test failed on its own too: a panic or an `Err`.
    pub own_failure: bool,
    /// The one test the process ran, when it was started for one
    /// (`--exact NAME`, as nextest runs each test).
    pub process_test: Option<String>,
    /// Tokio tasks were started outside every runtime taskleak watches while
    /// the test ran; none in older records.
    #[serde(default)]
    pub unwatched_tasks: Option<Company>,
    /// Worker threads of a tokio runtime the test started that taskleak
    /// does not watch.
    #[serde(default)]
    pub unwatched_runtime_workers: usize,
    /// Tasks leaked.
    pub tasks: usize,
    /// Threads leaked.
    pub threads: usize,
    /// Whether the build had `--cfg tokio_unstable` (spawn sites, stacks);
    /// absent from a clean check's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_detail: Option<bool>,
    /// Why some threads were not judged (another test running at the same
    /// time may have started them).
    #[serde(default)]
    pub inconclusive: Option<String>,
    /// How many threads were not judged.
    #[serde(default)]
    pub unjudged_threads: usize,
    /// Identical leaked tasks or threads, grouped.
    pub groups: Vec<Group>,
    /// The report as the test printed it; empty for a clean check.
    pub report: String,
}

impl Record {
    /// Whether anything leaked (not only an inconclusive note).
    ///
    /// ```
    /// # fn show(record: &taskleak_records::Record) {
    /// if record.is_leak() { println!("{}", record.report); }
    /// # }
    /// ```
    pub fn is_leak(&self) -> bool {
        self.tasks > 0 || self.threads > 0
    }

    /// Whether the record is of a whole binary's check, at its end.
    ///
    /// ```
    /// # fn show(record: &taskleak_records::Record) {
    /// let what = if record.is_binary_check() { "the binary" } else { "a test" };
    /// # let _ = what;
    /// # }
    /// ```
    pub fn is_binary_check(&self) -> bool {
        self.scope == Scope::Binary
    }

    /// The test it belongs to: an end-of-binary check's under nextest is
    /// the test its process ran; otherwise the binary.
    ///
    /// ```
    /// # fn show(record: &taskleak_records::Record) {
    /// println!("{}", record.test_name());
    /// # }
    /// ```
    pub fn test_name(&self) -> String {
        match (self.scope, &self.process_test, &self.test) {
            (Scope::Binary, Some(test), _) => test.clone(),
            (_, _, Some(test)) => test.clone(),
            _ => self.binary.clone(),
        }
    }
}

/// What a check covered.
///
/// ```
/// assert_eq!(serde_json::to_string(&taskleak_records::Scope::Binary)?, "\"binary\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One test, under `#[verify_no_leaks]`.
    Test,
    /// A whole test binary, at its end.
    Binary,
}

/// Whether libtest ran other tests alongside a test.
///
/// ```
/// assert_eq!(serde_json::to_string(&taskleak_records::Company::Alone)?, "\"alone\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Company {
    /// No other test ran then: what happened is the test's.
    Alone,
    /// Other tests ran then: it may be theirs.
    Alongside,
}

/// Identical leaked tasks or threads within one report.
///
/// ```
/// # fn show(group: &taskleak_records::Group) {
/// println!("{} {:?} ({})", group.count, group.kind, group.cause.as_deref().unwrap_or(&group.state));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// Tasks or threads.
    pub kind: Kind,
    /// How many.
    pub count: usize,
    /// A task's spawn site, `file:line:column`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawned_at: Option<String>,
    /// The text of a task's spawn line, trimmed (`tokio::spawn(async {`),
    /// when taskleak could read its file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_line: Option<String>,
    /// Which occurrence of `spawn_line`'s text in its file the site is,
    /// from 1 (0: unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spawn_occurrence: u32,
    /// A thread's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A stable label of what it was doing (`waiting`, `sleeping`, …).
    pub state: String,
    /// A task's cause label (`interval-loop`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Outermost first; the last is where it is stuck.
    pub frames: Vec<Frame>,
}

fn is_zero(number: &u32) -> bool {
    *number == 0
}

/// A leaked task or thread.
///
/// ```
/// assert_eq!(serde_json::to_string(&taskleak_records::Kind::Task)?, "\"task\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A tokio task.
    Task,
    /// An OS thread.
    Thread,
}

impl Kind {
    /// `task` or `thread`, as records write it.
    ///
    /// ```
    /// assert_eq!(taskleak_records::Kind::Thread.as_str(), "thread");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Task => "task",
            Kind::Thread => "thread",
        }
    }
}

/// One frame of a stack, as reports show it.
///
/// ```
/// # fn show(frame: &taskleak_records::Frame) {
/// println!("{} {}", frame.function, frame.location.as_deref().unwrap_or("(no location)"));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The function, cleaned (`my_crate::cache::refresh_loop`).
    pub function: String,
    /// `file:line:column`, short.
    pub location: Option<String>,
    /// The dependency the frame is in (`tokio`), none for the crate's own.
    pub dependency: Option<String>,
    /// The other functions of the same machine code (folded by the
    /// compiler or linker): `function` is then only one of them.
    #[serde(default)]
    pub folded: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_older_ones_still_read() {
        let record = Record {
            version: VERSION,
            binary: "alpha".into(),
            test: Some("tests::leaky".into()),
            scope: Scope::Test,
            leak_fails: true,
            own_failure: false,
            process_test: None,
            unwatched_tasks: Some(Company::Alongside),
            unwatched_runtime_workers: 0,
            tasks: 1,
            threads: 0,
            full_detail: Some(true),
            inconclusive: None,
            unjudged_threads: 0,
            groups: vec![Group {
                kind: Kind::Task,
                count: 1,
                spawned_at: Some("src/lib.rs:3:5".into()),
                spawn_line: Some("tokio::spawn(refresh());".into()),
                spawn_occurrence: 1,
                name: None,
                state: "waiting".into(),
                cause: Some("interval-loop".into()),
                frames: vec![Frame {
                    function: "alpha::refresh".into(),
                    location: Some("src/lib.rs:9:9".into()),
                    dependency: None,
                    folded: Vec::new(),
                }],
            }],
            report: "taskleak: 1 task leaked".into(),
        };
        let line = serde_json::to_string(&record).expect("serializes");
        assert!(line.contains(r#""unwatched_tasks":"alongside""#), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).expect("reads back"), record);
        // Without the fields later versions of the layout added.
        let older = r#"{"version":1,"binary":"a","test":null,"scope":"binary","leak_fails":true,
            "own_failure":false,"process_test":"t::x","tasks":0,"threads":1,"report":"r",
            "groups":[{"kind":"thread","count":1,"name":"w","state":"sleeping","frames":[]}]}"#;
        let older: Record = serde_json::from_str(older).expect("an older record");
        assert!(older.is_binary_check() && older.is_leak());
        assert_eq!(older.test_name(), "t::x");
        assert_eq!(older.unwatched_tasks, None);
    }
}
