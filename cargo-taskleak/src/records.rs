//! The leak records taskleak writes while the tests run (one JSON line per
//! report, in `TASKLEAK_RECORD_DIR`), read back.

use std::path::Path;

use serde::Deserialize;

/// The record layout this version reads (taskleak's `src/report/record.rs`).
const RECORD_VERSION: u32 = 1;

/// One check's report.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) version: u32,
    /// The test binary, as cargo names it (`alpha`, `leaky_tests`).
    pub(crate) binary: String,
    /// The test's path (`tests::leaky`), or the binary's name for an
    /// end-of-binary check.
    pub(crate) test: Option<String>,
    /// `test` or `binary`.
    pub(crate) scope: String,
    /// The report fails its test (or binary).
    pub(crate) leak_fails: bool,
    /// The test failed on its own too: a panic or an `Err`.
    pub(crate) own_failure: bool,
    /// The one test the process ran (under nextest).
    pub(crate) process_test: Option<String>,
    pub(crate) tasks: usize,
    pub(crate) threads: usize,
    pub(crate) groups: Vec<Group>,
    /// Why some threads were not judged (another test running at the same
    /// time may have started them); none in older records.
    #[serde(default)]
    pub(crate) inconclusive: Option<String>,
    /// How many threads were not judged.
    #[serde(default)]
    pub(crate) unjudged_threads: usize,
    /// Tokio tasks were started outside every runtime taskleak watches
    /// while the test ran: `alone` (they are the test's) or `alongside`
    /// (other tests ran then); none in older records.
    #[serde(default)]
    pub(crate) unwatched_tasks: Option<String>,
    /// Worker threads of a tokio runtime the test started that taskleak
    /// does not watch.
    #[serde(default)]
    pub(crate) unwatched_runtime_workers: usize,
    /// The report as the test printed it.
    pub(crate) report: String,
}

/// Identical leaked tasks or threads within one report.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Group {
    /// `task` or `thread`.
    pub(crate) kind: String,
    pub(crate) count: usize,
    pub(crate) spawned_at: Option<String>,
    /// The text of a task's spawn line, trimmed (`tokio::spawn(async {`),
    /// when taskleak could read its file; records of older versions of
    /// taskleak have none.
    #[serde(default)]
    pub(crate) spawn_line: Option<String>,
    /// Which occurrence of `spawn_line`'s text in its file the site is,
    /// from 1 (0: unknown).
    #[serde(default)]
    pub(crate) spawn_occurrence: u32,
    /// A thread's name.
    pub(crate) name: Option<String>,
    pub(crate) state: String,
    /// A task's cause label (`interval-loop`).
    pub(crate) cause: Option<String>,
    /// Outermost first; the last is where it is stuck.
    pub(crate) frames: Vec<Frame>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Frame {
    pub(crate) function: String,
    pub(crate) location: Option<String>,
    pub(crate) dependency: Option<String>,
    /// The other functions of the same machine code (folded by the
    /// compiler or linker): `function` is then only one of them.
    #[serde(default)]
    pub(crate) folded: Vec<String>,
}

impl Frame {
    /// Every name the frame may be, sorted: the same whichever one the
    /// symbolizer picked.
    pub(crate) fn names_sorted(&self) -> Vec<&str> {
        let mut names: Vec<&str> = std::iter::once(self.function.as_str())
            .chain(self.folded.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names
    }

    /// The function, or for folded code `one of A | B | C (identical code)`.
    pub(crate) fn display_name(&self) -> String {
        if self.folded.is_empty() {
            self.function.clone()
        } else {
            format!("one of {} (identical code)", self.names_sorted().join(" | "))
        }
    }
}

impl Record {
    /// Whether anything leaked (not only an inconclusive note).
    pub(crate) fn is_leak(&self) -> bool {
        self.tasks > 0 || self.threads > 0
    }

    /// Whether the record is of a whole binary's check, at its end.
    pub(crate) fn is_binary_check(&self) -> bool {
        self.scope == "binary"
    }

    /// The test it belongs to: an end-of-binary check's under nextest is
    /// the test its process ran.
    pub(crate) fn test_name(&self) -> String {
        match (&self.scope[..], &self.process_test, &self.test) {
            ("binary", Some(test), _) => test.clone(),
            (_, _, Some(test)) => test.clone(),
            _ => self.binary.clone(),
        }
    }
}

/// Every record in `dir`, in a stable order.
///
/// # Errors
///
/// The file and line of a record that cannot be read.
pub(crate) fn read_dir(dir: &Path) -> Result<Vec<Record>, String> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|entry| entry.path()).collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("cannot read {}: {error}", dir.display())),
    };
    files.sort();
    let mut records = Vec::new();
    for file in files
        .iter()
        .filter(|file| file.extension().is_some_and(|ext| ext == "jsonl"))
    {
        let text = std::fs::read_to_string(file).map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        for (number, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
            let record: Record = serde_json::from_str(line)
                .map_err(|error| format!("{}:{}: not a taskleak record: {error}", file.display(), number + 1))?;
            if record.version != RECORD_VERSION {
                return Err(format!(
                    "{}:{}: a record of version {}, this cargo-taskleak reads version {RECORD_VERSION}: \
                     use the cargo-taskleak of the taskleak version the tests depend on",
                    file.display(),
                    number + 1,
                    record.version
                ));
            }
            records.push(record);
        }
    }
    Ok(records)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as taskleak writes it, for the other modules' tests.
    pub(crate) fn task_record(test: &str, spawned_at: &str, stuck_in: &str) -> Record {
        let line = serde_json::json!({
            "version": 1, "binary": "alpha", "test": test, "scope": "test", "leak_fails": true,
            "own_failure": false, "process_test": null, "tasks": 1, "threads": 0, "full_detail": true,
            "groups": [{
                "kind": "task", "count": 1, "spawned_at": spawned_at, "state": "waiting",
                "spawn_line": "tokio::spawn(refresh());", "spawn_occurrence": 1,
                "cause": "interval-loop",
                "frames": [
                    {"function": "alpha::start", "location": spawned_at, "dependency": null},
                    {"function": stuck_in, "location": null, "dependency": "tokio"}
                ]
            }],
            "report": format!("taskleak: 1 task leaked by `{test}`")
        });
        serde_json::from_value(line).expect("a record")
    }

    #[test]
    fn records_are_read_back_and_a_bad_line_is_located() {
        let dir = std::env::temp_dir().join(format!("cargo-taskleak-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let record = task_record("tests::leaky", "src/lib.rs:3:5", "tokio::time::sleep");
        let line = serde_json::json!({
            "version": 1, "binary": record.binary, "test": record.test, "scope": "test",
            "leak_fails": true, "own_failure": false, "process_test": null, "tasks": 1, "threads": 0,
            "full_detail": true, "groups": [], "report": "r"
        });
        std::fs::write(dir.join("alpha-1.jsonl"), format!("{line}\n")).expect("write");
        let records = read_dir(&dir).expect("readable");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].test_name(), "tests::leaky");
        std::fs::write(dir.join("alpha-2.jsonl"), "{\"version\": 1}\n").expect("write");
        let error = read_dir(&dir).expect_err("malformed");
        assert!(error.contains("alpha-2.jsonl:1: not a taskleak record"), "{error}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
