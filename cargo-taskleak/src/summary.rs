//! Every leak of the run, grouped across tests by what leaked (spawn site
//! and stack), with a key that survives edits shifting line numbers; and
//! the summary table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::outcomes::TestId;
use crate::records::{Frame, FrameNames, Group, Kind, Record};
use crate::verdicts::{Coverage, Failure, FailureKind};
use crate::words::plural;

/// One distinct leak, and everywhere it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leak {
    /// Stable across runs and unrelated edits: no line numbers, ids or
    /// addresses (see [`key_of`]).
    pub(crate) key: String,
    /// The key as version 1 baselines wrote it (no spawn line), to match
    /// their entries.
    pub(crate) legacy_key: String,
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
            found.push((key_of(group), legacy_key_of(group), group.count, Some(group)));
        }
        // A build without task dumps counts tasks only.
        let grouped_tasks: usize = record
            .groups
            .iter()
            .filter(|g| g.kind == Kind::Task)
            .map(|g| g.count)
            .sum();
        if record.tasks > grouped_tasks {
            let key = format!("task | uncounted in {}", test.binary);
            found.push((key.clone(), key, record.tasks - grouped_tasks, None));
        }
        for (key, legacy_key, count, group) in found {
            let leak = by_key.entry(key.clone()).or_insert_with(|| Leak {
                key,
                legacy_key,
                kind: group.map_or("task".to_owned(), |group| group.kind.as_str().to_owned()),
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
            .then_with(|| a.kind.cmp(&b.kind))
            // Sites of one file in the file's order, not their keys'.
            .then_with(|| site_order(a).cmp(&site_order(b)))
            .then(a.key.cmp(&b.key))
    });
    leaks
}

/// `(file, line)` of a leak's spawn site, to sort sites by.
fn site_order(leak: &Leak) -> Option<(&str, u64)> {
    let site = leak.spawned_at.as_deref()?;
    let file = file_of(site);
    let line = site[file.len()..].trim_start_matches(':').split(':').next()?;
    Some((file, line.parse().unwrap_or(0)))
}

/// What identifies a leak: its kind, its spawn site named without its line
/// number (the file, the text of the spawn line and which occurrence of
/// that text in the file it is), its stack's functions (not their lines)
/// and its cause or state. A thread's name goes in unless it is taskleak's
/// per-test mark.
///
/// Distinct spawn sites never share a key, even when their tasks have the
/// same (or an empty) stack; edits that move the spawn up or down keep it.
/// Only when taskleak could not read the spawn line does the line number
/// stand in for it.
pub(crate) fn key_of(group: &Group) -> String {
    let place = match (&group.spawned_at, &group.name) {
        (Some(site), _) => site_key(site, group.spawn_line.as_deref(), group.spawn_occurrence),
        (None, Some(name)) if is_real_name(name) => format!("named {name}"),
        _ => String::new(),
    };
    format!(
        "{} | {place} | {} | {}",
        group.kind.as_str(),
        functions_of(group),
        why_of(group)
    )
}

/// The key of version 1 baselines: the spawn site's file alone, which
/// merged distinct sites of one file with the same stack.
pub(crate) fn legacy_key_of(group: &Group) -> String {
    let place = match (&group.spawned_at, &group.name) {
        (Some(site), _) => file_of(site).to_owned(),
        (None, Some(name)) if is_real_name(name) => format!("named {name}"),
        _ => String::new(),
    };
    format!(
        "{} | {place} | {} | {}",
        group.kind.as_str(),
        functions_of(group),
        why_of(group)
    )
}

fn functions_of(group: &Group) -> String {
    // A folded frame by all its names: the key survives a build whose
    // symbolizer picks another of them.
    let functions: Vec<String> = group
        .frames
        .iter()
        .map(|frame| frame.names_sorted().join(" | "))
        .collect();
    functions.join(" > ")
}

fn why_of(group: &Group) -> &str {
    group.cause.as_deref().unwrap_or(&group.state)
}

/// `alpha/src/lib.rs | tokio::spawn(async {`, with ` #2` for the second
/// line of that text in the file; `alpha/src/lib.rs | line 9` when the
/// text is unknown.
fn site_key(site: &str, spawn_line: Option<&str>, occurrence: u32) -> String {
    let file = file_of(site);
    match spawn_line.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) if occurrence > 1 => format!("{file} | {text} #{occurrence}"),
        Some(text) => format!("{file} | {text}"),
        None => {
            let line = site[file.len()..].trim_start_matches(':');
            let line = line.split(':').next().unwrap_or(line);
            format!("{file} | line {line}")
        }
    }
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

/// Where it is stuck: the innermost frame of the workspace's own code —
/// the line to look at — then, when the stack goes deeper (into tokio, std
/// or another dependency), the innermost frame as `in function (crate)`.
/// The innermost frame alone when none is the workspace's.
fn stuck_at(group: &Group) -> Option<String> {
    let innermost = group.frames.last()?;
    let own = group.frames.iter().rev().find(|frame| is_own_frame(frame));
    let describe = |frame: &Frame| match (&frame.location, &frame.dependency) {
        (Some(location), _) => format!("{}  {location}", frame.display_name()),
        (None, Some(dependency)) => format!("{}  ({dependency})", frame.display_name()),
        (None, None) => frame.display_name(),
    };
    Some(match own {
        Some(own) if std::ptr::eq(own, innermost) => describe(own),
        Some(own) => {
            let krate = innermost
                .dependency
                .clone()
                .unwrap_or_else(|| innermost.function.split("::").next().unwrap_or_default().to_owned());
            format!("{}  in {} ({krate})", describe(own), innermost.display_name())
        }
        None => describe(innermost),
    })
}

/// A frame of the workspace's code: taskleak names no dependency for it,
/// and its file is relative to the workspace (not std's `library/…`, nor a
/// registry crate's `name-1.2.3/…`, nor an absolute path outside).
fn is_own_frame(frame: &Frame) -> bool {
    let Some(location) = frame.location.as_deref() else {
        return false;
    };
    if frame.dependency.is_some() || location.starts_with('/') || location.starts_with("library/") {
        return false;
    }
    let first = location.split('/').next().unwrap_or(location);
    let versioned = first
        .rsplit_once('-')
        .is_some_and(|(_, version)| version.starts_with(|c: char| c.is_ascii_digit()) && version.contains('.'));
    !versioned
}

/// The whole run, for the summary, the JSON and the JUnit report.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) tests_run: usize,
    pub(crate) tests_failed: usize,
    /// Every failed test (and binary), with why.
    pub(crate) failures: Vec<Failure>,
    /// Which tests were checked.
    pub(crate) coverage: Coverage,
    /// The time bound, when it stopped the run (`30m`).
    pub(crate) stopped_after: Option<String>,
    /// Under nextest, which runs no doctests.
    pub(crate) doctests_not_run: bool,
    pub(crate) leaks: Vec<Leak>,
    /// Keys of `leaks` not in the baseline (all of them without one).
    pub(crate) new_keys: BTreeSet<String>,
    /// Baseline entries no leak matched any more.
    pub(crate) gone: Vec<String>,
    pub(crate) baseline_used: bool,
    /// Checks that could not judge some threads, and their re-runs.
    pub(crate) inconclusive: Vec<crate::inconclusive::Inconclusive>,
    /// Checks that could not see everything their test started.
    pub(crate) not_watched: Vec<crate::unwatched::NotWatched>,
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

    /// Tests (and binaries) that failed for reasons other than leaks.
    pub(crate) fn unrelated_failures(&self) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(|failure| failure.kind != FailureKind::Leak)
    }

    pub(crate) fn hung(&self) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(|failure| failure.kind == FailureKind::Hung)
    }
}

/// The most unchecked tests the summary names; the JSON has them all.
const UNCHECKED_SHOWN: usize = 10;

/// The summary table and totals, for the terminal.
pub(crate) fn render(run: &Run) -> String {
    let mut out = String::new();
    let unchecked = run.coverage.unchecked_phrase();
    let unchecked_note = if unchecked.is_empty() {
        String::new()
    } else {
        format!(" ({unchecked})")
    };
    if run.leaks.is_empty() {
        let _ = writeln!(
            out,
            "taskleak: no leaks in {}{unchecked_note}",
            plural(run.coverage.checked, "checked test")
        );
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
    if let Some(bound) = &run.stopped_after {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  the run was stopped after {bound} (--timeout): {} had not finished; later tests did not run",
            plural(run.hung().count(), "test")
        );
    }
    let unrelated: Vec<&Failure> = run.unrelated_failures().collect();
    if !unrelated.is_empty() {
        test_section(
            &mut out,
            &format!("{} failed for reasons other than leaks:", unrelated.len()),
            unrelated.iter().map(|failure| (&failure.test, failure.message.clone())),
        );
    }
    if !run.inconclusive.is_empty() {
        test_section(
            &mut out,
            &format!(
                "{} inconclusive (threads another test running at the same time may have started):",
                plural(run.inconclusive.len(), "check")
            ),
            run.inconclusive.iter().map(|check| {
                let detail = format!(
                    "{} not judged; {}",
                    plural(check.threads, "thread"),
                    check.rerun.describe()
                );
                (&check.test, detail)
            }),
        );
        if run
            .inconclusive
            .iter()
            .any(|check| matches!(check.rerun, crate::inconclusive::Rerun::NotRun(_)))
        {
            let _ = writeln!(
                out,
                "    for a verdict: `cargo test -- --exact NAME --test-threads=1`, or `cargo taskleak --nextest`"
            );
        }
    }
    if !run.not_watched.is_empty() {
        test_section(
            &mut out,
            &format!(
                "{} could not see everything the test started (passed, not checked there):",
                plural(run.not_watched.len(), "check")
            ),
            run.not_watched.iter().map(|check| (&check.test, check.describe())),
        );
        let _ = writeln!(
            out,
            "    to check them: `spawn_local` on `#[tokio::test(flavor = \"local\")]` instead of a `LocalSet`; \
             `taskleak::SharedRuntime` for a runtime the tests share"
        );
    }
    if !run.coverage.unchecked.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {} without a check (add #[taskleak::verify_no_leaks], or run `cargo taskleak adopt`):",
            plural(run.coverage.unchecked.len(), "test")
        );
        for test in run.coverage.unchecked.iter().take(UNCHECKED_SHOWN) {
            let _ = writeln!(out, "    {}: {}", test.binary, test.name);
        }
        if run.coverage.unchecked.len() > UNCHECKED_SHOWN {
            let _ = writeln!(
                out,
                "    … and {} more (all in the JSON's `unchecked`)",
                run.coverage.unchecked.len() - UNCHECKED_SHOWN
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "totals: {} run, {} checked{unchecked_note}, {} failed, {} leaking; {} and {} leaked; {}, {} new{}",
        plural(run.tests_run, "test"),
        run.coverage.checked,
        run.tests_failed,
        run.leaking_tests().len(),
        plural(run.leaked("task"), "task"),
        plural(run.leaked("thread"), "thread"),
        plural(run.leaks.len(), "distinct leak"),
        run.new_keys.len(),
        match (run.inconclusive.len(), run.not_watched.len()) {
            (0, 0) => String::new(),
            (inconclusive, 0) => format!("; {} inconclusive", plural(inconclusive, "check")),
            (0, not_watched) => format!("; {not_watched} not seeing everything"),
            (inconclusive, not_watched) => format!(
                "; {} inconclusive, {not_watched} not seeing everything",
                plural(inconclusive, "check")
            ),
        },
    );
    if run.doctests_not_run {
        let _ = writeln!(
            out,
            "        (doctests do not run under nextest: `cargo test --doc` runs them, never leak-checked)"
        );
    }
    out
}

/// A blank line, `heading`, and one line per test: `binary: name  — detail`.
fn test_section<'a>(out: &mut String, heading: &str, rows: impl Iterator<Item = (&'a TestId, String)>) {
    let _ = writeln!(out);
    let _ = writeln!(out, "  {heading}");
    for (test, detail) in rows {
        let _ = writeln!(out, "    {}: {}  — {detail}", test.binary, test.name);
    }
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
    fn identical_spawn_lines_of_one_file_are_distinct_leaks_that_survive_moves() {
        let at = |test: &str, site: &str, line: Option<&str>, occurrence: u32| {
            let mut record = task_record(test, site, "tokio::time::sleep");
            record.groups[0].spawn_line = line.map(str::to_owned);
            record.groups[0].spawn_occurrence = occurrence;
            record.groups[0].frames.clear();
            record
        };
        let pending = Some("tokio::spawn(std::future::pending::<()>());");
        let records = [
            at("tests::w", "src/a.rs:186:5", pending, 1),
            at("tests::w", "src/a.rs:210:5", pending, 2),
            at("tests::w", "src/a.rs:259:5", pending, 3),
        ];
        let found = leaks(&records);
        assert_eq!(found.len(), 3, "{found:#?}");
        let sites: BTreeSet<_> = found.iter().filter_map(|leak| leak.spawned_at.clone()).collect();
        assert_eq!(sites.len(), 3);
        // Lines added above: the same three keys.
        let moved = at("tests::w", "src/a.rs:200:5", pending, 2);
        assert_eq!(key_of(&moved.groups[0]), key_of(&records[1].groups[0]));
        assert!(key_of(&moved.groups[0]).contains("pending::<()>()); #2"));
        // Version 1 keys merged them: all three map to the one old key.
        let legacy: BTreeSet<_> = found.iter().map(|leak| leak.legacy_key.clone()).collect();
        assert_eq!(legacy.len(), 1);
        // No text known: the line number tells the sites apart.
        let unknown = at("tests::w", "src/a.rs:186:5", None, 0);
        assert_eq!(
            key_of(&unknown.groups[0]),
            "task | src/a.rs | line 186 |  | interval-loop"
        );
    }

    #[test]
    fn stuck_at_leads_with_the_workspaces_innermost_frame() {
        let frame = |function: &str, location: Option<&str>, dependency: Option<&str>| Frame {
            function: function.into(),
            location: location.map(str::to_owned),
            dependency: dependency.map(str::to_owned),
            folded: Vec::new(),
        };
        let mut record = task_record("tests::one", "src/inner.rs:250:9", "tokio::time::sleep");
        record.groups[0].frames = vec![
            frame("bb8::inner::Reaper<M>::run", Some("src/inner.rs:266:42"), None),
            frame(
                "tokio::time::interval::Interval::tick",
                Some("tokio-1.54.1/src/time/interval.rs:442:17"),
                Some("tokio"),
            ),
        ];
        assert_eq!(
            stuck_at(&record.groups[0]).as_deref(),
            Some("bb8::inner::Reaper<M>::run  src/inner.rs:266:42  in tokio::time::interval::Interval::tick (tokio)")
        );
        // No frame of the workspace's: the innermost.
        record.groups[0].frames.remove(0);
        assert_eq!(
            stuck_at(&record.groups[0]).as_deref(),
            Some("tokio::time::interval::Interval::tick  tokio-1.54.1/src/time/interval.rs:442:17")
        );
        let std_frame = frame("std::thread::sleep", Some("library/std/src/thread/mod.rs:1:1"), None);
        assert!(!is_own_frame(&std_frame));
    }

    #[test]
    fn a_folded_frame_is_shown_and_keyed_by_all_its_names() {
        // hyper-util's thread read a TcpStream; the symbolizer said
        // `UdpSocket::recv`, one of three identical functions.
        let folded = |picked: &str, others: [&str; 2]| Frame {
            function: picked.into(),
            location: None,
            dependency: Some("std".into()),
            folded: others.iter().map(|name| (*name).to_owned()).collect(),
        };
        let mut record = task_record("tests::one", "tests/a.rs:10:5", "unused");
        record.groups[0].frames = vec![folded(
            "<std::net::udp::UdpSocket>::recv",
            [
                "std::net::tcp::TcpStream::read",
                "<std::os::unix::net::UnixDatagram>::recv",
            ],
        )];
        let shown = stuck_at(&record.groups[0]).expect("a frame");
        assert_eq!(
            shown,
            "one of <std::net::udp::UdpSocket>::recv | <std::os::unix::net::UnixDatagram>::recv | \
             std::net::tcp::TcpStream::read (identical code)  (std)"
        );
        let key = key_of(&record.groups[0]);
        record.groups[0].frames = vec![folded(
            "std::net::tcp::TcpStream::read",
            [
                "<std::os::unix::net::UnixDatagram>::recv",
                "<std::net::udp::UdpSocket>::recv",
            ],
        )];
        assert_eq!(key_of(&record.groups[0]), key, "another pick, the same key");
    }

    #[test]
    fn files_lose_line_and_column_and_test_marks_are_not_names() {
        assert_eq!(file_of("src/cache.rs:25:9"), "src/cache.rs");
        assert_eq!(file_of("C:/x.rs:1:2"), "C:/x.rs");
        assert!(is_test_mark("tl12~tests::leaky"));
        assert!(!is_test_mark("tls-worker"));
    }
}
