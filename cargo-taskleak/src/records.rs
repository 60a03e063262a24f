//! The leak records taskleak writes while the tests run (one JSON line per
//! report, in `TASKLEAK_RECORD_DIR`), read back: the types are
//! `taskleak-records`', the same the library writes.

use std::path::Path;

use taskleak_records::VERSION as RECORD_VERSION;
pub(crate) use taskleak_records::{Frame, Group, Kind, Record};

/// What the gate shows of a frame.
pub(crate) trait FrameNames {
    /// Every name the frame may be, sorted: the same whichever one the
    /// symbolizer picked.
    fn names_sorted(&self) -> Vec<&str>;

    /// The function, or for folded code `one of A | B | C (identical code)`.
    fn display_name(&self) -> String;
}

impl FrameNames for Frame {
    /// Every name the frame may be, sorted: the same whichever one the
    /// symbolizer picked.
    fn names_sorted(&self) -> Vec<&str> {
        let mut names: Vec<&str> = std::iter::once(self.function.as_str())
            .chain(self.folded.iter().map(String::as_str))
            .collect();
        names.sort_unstable();
        names
    }

    /// The function, or for folded code `one of A | B | C (identical code)`.
    fn display_name(&self) -> String {
        if self.folded.is_empty() {
            self.function.clone()
        } else {
            format!("one of {} (identical code)", self.names_sorted().join(" | "))
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
