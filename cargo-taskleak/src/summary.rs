//! Every leak of the run, grouped across tests by what leaked (spawn site
//! and stack), with a key that survives edits shifting line numbers; and
//! the summary table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::outcomes::TestId;
use crate::records::{Group, Record};

/// One distinct leak, and everywhere it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leak {
    /// Stable across runs and unrelated edits: no line numbers, ids or
    /// addresses (see [`key_of`]).
    pub(crate) key: String,
    /// `task` or `thread`.
    pub(crate) kind: String,
    /// Tasks or threads, summed over every test.
    pub(crate) count: usize,
    pub(crate) tests: BTreeSet<TestId>,
    /// `file:line:col`, as first seen.
    pub(crate) spawned_at: Option<String>,
    pub(crate) thread_name: Option<String>,
    /// The innermost frame: where it is stuck.
    pub(crate) stuck_at: Option<String>,
    /// A task's cause label, or a thread's state.
    pub(crate) why: String,
}

/// Groups the leaks of `records` (those that leaked), largest first.
pub(crate) fn leaks(records: &[Record]) -> Vec<Leak> {
    let mut by_key: BTreeMap<String, Leak> = BTreeMap::new();
    for record in records.iter().filter(|record| record.is_leak()) {
        let test = TestId {
            binary: record.binary.clone(),
            name: record.test_name(),
        };
        let mut found = Vec::new();
        for group in &record.groups {
            found.push((key_of(group), group.count, Some(group)));
        }
        // A build without task dumps counts tasks only.
        let grouped_tasks: usize = record.groups.iter().filter(|g| g.kind == "task").map(|g| g.count).sum();
        if record.tasks > grouped_tasks {
            found.push((
                format!("task | uncounted in {}", test.binary),
                record.tasks - grouped_tasks,
                None,
            ));
        }
        for (key, count, group) in found {
            let leak = by_key.entry(key.clone()).or_insert_with(|| Leak {
                key,
                kind: group.map_or("task".to_owned(), |group| group.kind.clone()),
                count: 0,
                tests: BTreeSet::new(),
                spawned_at: group.and_then(|group| group.spawned_at.clone()),
                thread_name: group.and_then(|group| group.name.clone()),
                stuck_at: group.and_then(stuck_at),
                why: group.map_or("no stack (built without task dumps)".to_owned(), |group| {
                    group.cause.clone().unwrap_or_else(|| group.state.clone())
                }),
            });
            leak.count += count;
            leak.tests.insert(test.clone());
        }
    }
    let mut leaks: Vec<Leak> = by_key.into_values().collect();
    leaks.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.tests.len().cmp(&a.tests.len()))
            .then(a.key.cmp(&b.key))
    });
    leaks
}

/// What identifies a leak: its kind, the file it was spawned from (not
/// the line), its stack's functions (not their lines) and its cause or
/// state. A thread's name goes in unless it is taskleak's per-test mark.
pub(crate) fn key_of(group: &Group) -> String {
    let functions: Vec<&str> = group.frames.iter().map(|frame| frame.function.as_str()).collect();
    let place = match (&group.spawned_at, &group.name) {
        (Some(site), _) => file_of(site).to_owned(),
        (None, Some(name)) if is_real_name(name) => format!("named {name}"),
        _ => String::new(),
    };
    let why = group.cause.as_deref().unwrap_or(&group.state);
    format!("{} | {place} | {} | {why}", group.kind, functions.join(" > "))
}

/// `src/cache.rs:25:9` is in `src/cache.rs`.
fn file_of(site: &str) -> &str {
    let mut file = site;
    for _ in 0..2 {
        match file.rsplit_once(':') {
            Some((head, tail)) if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) => file = head,
            _ => break,
        }
    }
    file
}

/// A name a thread was given: not empty, nor taskleak's mark of a
/// checked test's threads, which unnamed threads inherit.
fn is_real_name(name: &str) -> bool {
    !name.is_empty() && !is_test_mark(name)
}

/// The kernel name taskleak gives a checked test's threads, `tl<n>~<test>`.
fn is_test_mark(name: &str) -> bool {
    name.strip_prefix("tl")
        .and_then(|rest| rest.split_once('~'))
        .is_some_and(|(number, _)| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
}

fn stuck_at(group: &Group) -> Option<String> {
    let frame = group.frames.last()?;
    Some(match (&frame.location, &frame.dependency) {
        (Some(location), _) => format!("{}  {location}", frame.function),
        (None, Some(dependency)) => format!("{}  ({dependency})", frame.function),
        (None, None) => frame.function.clone(),
    })
}

/// The whole run, for the summary, the JSON and the JUnit report.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) tests_run: usize,
    pub(crate) tests_failed: usize,
    /// Tests (and binaries) that failed for reasons other than leaks.
    pub(crate) unrelated_failures: Vec<TestId>,
    pub(crate) leaks: Vec<Leak>,
    /// Keys of `leaks` not in the baseline (all of them without one).
    pub(crate) new_keys: BTreeSet<String>,
    /// Baseline entries no leak matched any more.
    pub(crate) gone: Vec<String>,
    pub(crate) baseline_used: bool,
}

impl Run {
    pub(crate) fn leaking_tests(&self) -> BTreeSet<&TestId> {
        self.leaks.iter().flat_map(|leak| &leak.tests).collect()
    }

    pub(crate) fn leaked(&self, kind: &str) -> usize {
        self.leaks
            .iter()
            .filter(|leak| leak.kind == kind)
            .map(|leak| leak.count)
            .sum()
    }
}

/// `1 task`, `2 tasks`.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The summary table and totals, for the terminal.
pub(crate) fn render(run: &Run) -> String {
    let mut out = String::new();
    if run.leaks.is_empty() {
        let _ = writeln!(out, "taskleak: no leaks in {}", plural(run.tests_run, "test"));
    } else {
        let _ = writeln!(
            out,
            "taskleak: {} in {}",
            plural(run.leaks.len(), "distinct leak"),
            plural(run.leaking_tests().len(), "test"),
        );
        let _ = writeln!(out);
        for (index, leak) in run.leaks.iter().enumerate() {
            let mark = if !run.baseline_used {
                ""
            } else if run.new_keys.contains(&leak.key) {
                "  NEW"
            } else {
                "  (baselined)"
            };
            let what = match (&leak.spawned_at, &leak.thread_name) {
                (Some(site), _) => format!("spawned at {site}"),
                (None, Some(name)) if is_real_name(name) => format!("named {name:?}"),
                _ => "unnamed".to_owned(),
            };
            let _ = writeln!(
                out,
                "  #{:<3} {}  {what}  [{}]{mark}",
                index + 1,
                plural(leak.count, &leak.kind),
                leak.why
            );
            if let Some(stuck) = &leak.stuck_at {
                let _ = writeln!(out, "        stuck at: {stuck}");
            }
            let tests: Vec<String> = leak
                .tests
                .iter()
                .map(|test| format!("{}: {}", test.binary, test.name))
                .collect();
            let _ = writeln!(out, "        in {}: {}", plural(tests.len(), "test"), tests.join(", "));
        }
    }
    if !run.gone.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {} baseline entries no longer occur; remove them from the baseline:",
            run.gone.len()
        );
        for key in &run.gone {
            let _ = writeln!(out, "    {key}");
        }
    }
    if !run.unrelated_failures.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {} failed for reasons other than leaks:",
            run.unrelated_failures.len()
        );
        for test in &run.unrelated_failures {
            let _ = writeln!(out, "    {}: {}", test.binary, test.name);
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "totals: {} run, {} failed, {} leaking; {} and {} leaked; {}, {} new",
        plural(run.tests_run, "test"),
        run.tests_failed,
        run.leaking_tests().len(),
        plural(run.leaked("task"), "task"),
        plural(run.leaked("thread"), "thread"),
        plural(run.leaks.len(), "distinct leak"),
        run.new_keys.len(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::tests::task_record;

    #[test]
    fn the_same_leak_in_two_tests_is_one_entry_and_its_key_ignores_lines() {
        let records = [
            task_record("tests::one", "src/cache.rs:25:9", "tokio::time::sleep"),
            task_record("tests::two", "src/cache.rs:25:9", "tokio::time::sleep"),
            task_record("tests::three", "src/other.rs:3:1", "tokio::sync::Notify::notified"),
        ];
        let leaks = leaks(&records);
        assert_eq!(leaks.len(), 2);
        assert_eq!(leaks[0].count, 2);
        assert_eq!(leaks[0].tests.len(), 2);
        assert_eq!(leaks[0].spawned_at.as_deref(), Some("src/cache.rs:25:9"));
        // An edit above the spawn moves it: the key stays.
        let moved = task_record("tests::one", "src/cache.rs:31:9", "tokio::time::sleep");
        assert_eq!(key_of(&moved.groups[0]), leaks[0].key);
        assert!(!leaks[0].key.contains(":25"), "{}", leaks[0].key);
    }

    #[test]
    fn files_lose_line_and_column_and_test_marks_are_not_names() {
        assert_eq!(file_of("src/cache.rs:25:9"), "src/cache.rs");
        assert_eq!(file_of("C:/x.rs:1:2"), "C:/x.rs");
        assert!(is_test_mark("tl12~tests::leaky"));
        assert!(!is_test_mark("tls-worker"));
    }
}
