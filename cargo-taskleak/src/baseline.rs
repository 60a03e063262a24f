//! Baselines for gradual adoption: `--write-baseline` records the leaks of
//! a run by key; `--baseline` fails only on leaks whose key is not in it.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::summary::Leak;

const SCHEMA: &str = "taskleak-baseline";
/// Version 2 keys name a task's spawn site by its file and spawn line's
/// text; version 1 keys by its file alone (still read, matched as such).
const VERSION: u32 = 2;
const LEGACY_VERSION: u32 = 1;

/// A baseline's keys, and which key of a leak they are to be compared with.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Baseline {
    pub(crate) keys: BTreeSet<String>,
    /// Written by a version 1 baseline: compare with [`Leak::legacy_key`].
    pub(crate) legacy: bool,
}

impl Baseline {
    /// The key of `leak` this baseline's entries are comparable with.
    pub(crate) fn key_of<'a>(&self, leak: &'a Leak) -> &'a str {
        if self.legacy { &leak.legacy_key } else { &leak.key }
    }

    /// The keys of `leaks` not in the baseline, and the baseline's entries
    /// no leak matched.
    pub(crate) fn compare(&self, leaks: &[Leak]) -> (BTreeSet<String>, Vec<String>) {
        let new = leaks
            .iter()
            .filter(|leak| !self.keys.contains(self.key_of(leak)))
            .map(|leak| leak.key.clone())
            .collect();
        let seen: BTreeSet<&str> = leaks.iter().map(|leak| self.key_of(leak)).collect();
        let gone = self
            .keys
            .iter()
            .filter(|key| !seen.contains(key.as_str()))
            .cloned()
            .collect();
        (new, gone)
    }
}

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

/// The baseline at `path`. A version 1 baseline is read too, with a note
/// on stderr: its keys cannot tell apart two spawn sites of one file with
/// the same stack, and writing it again upgrades it.
///
/// # Errors
///
/// A missing, unreadable or malformed file, saying which and how to make one.
pub(crate) fn read(path: &Path) -> Result<Baseline, String> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        format!(
            "cannot read the baseline {}: {error}; make one with `cargo taskleak --write-baseline {}`",
            path.display(),
            path.display()
        )
    })?;
    let file: File =
        serde_json::from_str(&text).map_err(|error| format!("{}: not a taskleak baseline: {error}", path.display()))?;
    if file.schema != SCHEMA || (file.version != VERSION && file.version != LEGACY_VERSION) {
        return Err(format!(
            "{}: a baseline of schema {:?} version {}; this cargo-taskleak reads {SCHEMA:?} versions \
             {LEGACY_VERSION} and {VERSION}",
            path.display(),
            file.schema,
            file.version
        ));
    }
    let legacy = file.version == LEGACY_VERSION;
    if legacy {
        eprintln!(
            "taskleak: {} is a version {LEGACY_VERSION} baseline, whose keys name a spawn site by its file \
             alone: it is matched as such (two sites of one file with the same stack count as one); \
             write it again with `--write-baseline` to upgrade it to version {VERSION}",
            path.display()
        );
    }
    Ok(Baseline {
        keys: file.leaks.into_iter().map(|entry| entry.key).collect(),
        legacy,
    })
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
        let baseline = read(&path).expect("read");
        assert!(!baseline.legacy);
        assert_eq!(baseline.keys.into_iter().collect::<Vec<_>>(), [leaks[0].key.clone()]);
        std::fs::write(&path, "{}").expect("write");
        assert!(read(&path).expect_err("malformed").contains("not a taskleak baseline"));
        std::fs::write(&path, r#"{"schema": "taskleak-baseline", "version": 9, "leaks": []}"#).expect("write");
        assert!(read(&path).expect_err("future").contains("versions 1 and 2"));
        std::fs::remove_file(&path).expect("cleanup");
        assert!(read(&path).expect_err("missing").contains("--write-baseline"));
    }

    #[test]
    fn a_version_1_baseline_still_matches_by_its_old_keys() {
        let path = std::env::temp_dir().join(format!("cargo-taskleak-baseline-v1-{}.json", std::process::id()));
        let leaks = crate::summary::leaks(&[
            task_record("tests::one", "src/a.rs:1:1", "tokio::time::sleep"),
            task_record("tests::two", "src/b.rs:1:1", "tokio::time::sleep"),
        ]);
        assert_ne!(leaks[0].key, leaks[0].legacy_key);
        let old = serde_json::json!({
            "schema": "taskleak-baseline", "version": 1,
            "leaks": [{"key": leaks[0].legacy_key}, {"key": "task | gone.rs | gone | sleep"}]
        });
        std::fs::write(&path, old.to_string()).expect("write");
        let baseline = read(&path).expect("a version 1 baseline reads");
        assert!(baseline.legacy);
        let (new, gone) = baseline.compare(&leaks);
        assert_eq!(new.into_iter().collect::<Vec<_>>(), [leaks[1].key.clone()]);
        assert_eq!(gone, ["task | gone.rs | gone | sleep"]);
        std::fs::remove_file(&path).expect("cleanup");
    }
}
