//! Baselines for gradual adoption: `--write-baseline` records the leaks of
//! a run by key; `--baseline` fails only on leaks whose key is not in it.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::summary::Leak;

const SCHEMA: &str = "taskleak-baseline";
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct File {
    schema: String,
    version: u32,
    leaks: Vec<Entry>,
}

/// One known leak. Only `key` is compared; the rest is for the reader.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spawned_at: Option<String>,
    #[serde(default)]
    tests: Vec<String>,
}

/// Writes the keys of `leaks` to `path`.
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn write(path: &Path, leaks: &[Leak]) -> Result<(), String> {
    let file = File {
        schema: SCHEMA.to_owned(),
        version: VERSION,
        leaks: leaks
            .iter()
            .map(|leak| Entry {
                key: leak.key.clone(),
                spawned_at: leak.spawned_at.clone(),
                tests: leak
                    .tests
                    .iter()
                    .map(|test| format!("{}: {}", test.binary, test.name))
                    .collect(),
            })
            .collect(),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|error| error.to_string())?;
    std::fs::write(path, text + "\n").map_err(|error| format!("cannot write the baseline {}: {error}", path.display()))
}

/// The keys in the baseline at `path`.
///
/// # Errors
///
/// A missing, unreadable or malformed file, saying which and how to make one.
pub(crate) fn read(path: &Path) -> Result<BTreeSet<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        format!(
            "cannot read the baseline {}: {error}; make one with `cargo taskleak --write-baseline {}`",
            path.display(),
            path.display()
        )
    })?;
    let file: File =
        serde_json::from_str(&text).map_err(|error| format!("{}: not a taskleak baseline: {error}", path.display()))?;
    if file.schema != SCHEMA || file.version != VERSION {
        return Err(format!(
            "{}: a baseline of schema {:?} version {}; this cargo-taskleak reads {SCHEMA:?} version {VERSION}",
            path.display(),
            file.schema,
            file.version
        ));
    }
    Ok(file.leaks.into_iter().map(|entry| entry.key).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::task_record;

    #[test]
    fn a_written_baseline_reads_back_as_its_keys() {
        let path = std::env::temp_dir().join(format!("cargo-taskleak-baseline-{}.json", std::process::id()));
        let leaks = crate::summary::leaks(&[task_record("tests::one", "src/a.rs:1:1", "tokio::time::sleep")]);
        write(&path, &leaks).expect("written");
        let keys = read(&path).expect("read");
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), [leaks[0].key.clone()]);
        std::fs::write(&path, "{}").expect("write");
        assert!(read(&path).expect_err("malformed").contains("not a taskleak baseline"));
        std::fs::remove_file(&path).expect("cleanup");
        assert!(read(&path).expect_err("missing").contains("--write-baseline"));
    }
}
