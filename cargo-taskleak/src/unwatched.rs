//! Checks that could not see everything their test started: tokio tasks
//! outside every runtime taskleak watches (a `LocalSet`, a global runtime),
//! or a runtime the test started that taskleak does not watch. They pass;
//! the gate lists them so that they are not mistaken for checked.

use std::collections::BTreeMap;

use crate::outcomes::TestId;
use taskleak_records::Company;

use crate::records::Record;

/// One test whose check could not see everything it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NotWatched {
    pub(crate) test: TestId,
    /// Tokio tasks started outside every watched runtime: `Some(true)` when
    /// other tests ran alongside, so they may be theirs.
    pub(crate) tasks_alongside: Option<bool>,
    /// Worker threads of a runtime it started that taskleak does not watch.
    pub(crate) runtime_workers: usize,
}

impl NotWatched {
    /// What the check could not see, in a phrase.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        match self.tasks_alongside {
            Some(false) => parts.push("tokio tasks started outside every runtime taskleak watches".to_owned()),
            Some(true) => parts.push(
                "tokio tasks started outside every runtime taskleak watches, while other tests ran alongside \
                 (maybe theirs)"
                    .to_owned(),
            ),
            None => {}
        }
        if self.runtime_workers > 0 {
            parts.push(format!(
                "started a tokio runtime taskleak does not watch ({} worker thread{})",
                self.runtime_workers,
                if self.runtime_workers == 1 { "" } else { "s" }
            ));
        }
        parts.join("; ")
    }

    /// One word for JSON: `tasks`, `tasks-maybe-another-tests`, `runtime`,
    /// or both joined by `+`.
    pub(crate) fn label(&self) -> String {
        let mut parts = Vec::new();
        match self.tasks_alongside {
            Some(false) => parts.push("tasks"),
            Some(true) => parts.push("tasks-maybe-another-tests"),
            None => {}
        }
        if self.runtime_workers > 0 {
            parts.push("runtime");
        }
        parts.join("+")
    }
}

/// The tests of `records` whose check could not see everything, each once.
pub(crate) fn find(records: &[Record]) -> Vec<NotWatched> {
    let mut found: BTreeMap<TestId, NotWatched> = BTreeMap::new();
    for record in records {
        let tasks_alongside = record.unwatched_tasks.map(|company| company != Company::Alone);
        if tasks_alongside.is_none() && record.unwatched_runtime_workers == 0 {
            continue;
        }
        let test = TestId {
            binary: record.binary.clone(),
            name: record.test_name(),
        };
        let entry = found.entry(test.clone()).or_insert(NotWatched {
            test,
            tasks_alongside: None,
            runtime_workers: 0,
        });
        entry.tasks_alongside = match (entry.tasks_alongside, tasks_alongside) {
            // Seen alone once, the tasks are the test's own.
            (Some(first), Some(then)) => Some(first && then),
            (first, then) => first.or(then),
        };
        entry.runtime_workers = entry.runtime_workers.max(record.unwatched_runtime_workers);
    }
    found.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(test: &str, tasks: Option<&str>, workers: usize) -> Record {
        let line = serde_json::json!({
            "version": 1, "binary": "gamma", "test": test, "scope": "test",
            "leak_fails": false, "own_failure": false, "process_test": null,
            "unwatched_tasks": tasks, "unwatched_runtime_workers": workers,
            "tasks": 0, "threads": 0, "groups": [], "report": ""
        });
        serde_json::from_value(line).expect("a record")
    }

    #[test]
    fn checks_that_saw_everything_are_not_listed() {
        assert!(find(&[record("tests::clean", None, 0)]).is_empty());
    }

    #[test]
    fn each_test_is_listed_once_with_what_was_not_seen() {
        let found = find(&[
            record("tests::local_set", Some("alongside"), 0),
            record("tests::local_set", Some("alone"), 0),
            record("tests::global", None, 2),
        ]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].test.name, "tests::global");
        assert_eq!(
            found[0].describe(),
            "started a tokio runtime taskleak does not watch (2 worker threads)"
        );
        assert_eq!(found[0].label(), "runtime");
        assert_eq!(found[1].tasks_alongside, Some(false));
        assert_eq!(found[1].label(), "tasks");
    }

    #[test]
    fn records_of_older_versions_read_as_seeing_everything() {
        let line = serde_json::json!({
            "version": 1, "binary": "gamma", "test": "tests::old", "scope": "test",
            "leak_fails": false, "own_failure": false, "process_test": null,
            "tasks": 0, "threads": 0, "groups": [], "report": ""
        });
        let old: Record = serde_json::from_value(line).expect("a record");
        assert!(find(&[old]).is_empty());
    }
}
