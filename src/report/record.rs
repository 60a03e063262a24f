//! Machine-readable leak records for `cargo taskleak`: with
//! `TASKLEAK_RECORD_DIR` set, every check appends one JSON line to a file
//! of its process's in that directory — a clean check too, so that the
//! gate can tell checked tests from tests that ran without a check.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use crate::model::StackFrame;
use crate::model::TaskState;
use crate::report::leak_report::{LeakReport, Scope};
use crate::report::thread_report::ThreadState;

/// The directory records go to; unset, nothing is recorded.
const DIR_VARIABLE: &str = "TASKLEAK_RECORD_DIR";

/// The version of a record's layout (`docs/cargo-taskleak.md`).
const VERSION: u32 = 1;

/// How the check's test ended, beside its report.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verdict {
    /// The report fails the test (or the binary).
    pub(crate) leak_fails: bool,
    /// The test failed on its own: a panic or an `Err`.
    pub(crate) own_failure: bool,
    /// What the test started where its check does not look.
    pub(crate) unwatched: Unwatched,
}

/// What a test started where its check does not look: said on stderr as
/// notes, and recorded for the gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Unwatched {
    /// Tokio tasks started outside every watched runtime while the body
    /// ran, and whether other tests ran alongside (then they may be theirs).
    pub(crate) tasks: Option<Company>,
    /// Worker threads of a tokio runtime the test started that taskleak
    /// does not watch.
    pub(crate) runtime_workers: usize,
}

/// Whether libtest ran other tests alongside a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Company {
    Alone,
    Alongside,
}

/// Appends `report` to this process's record file, if records are asked
/// for. A record that cannot be written is said on stderr, never a panic:
/// the test's verdict stands.
pub(crate) fn write(report: &LeakReport, verdict: Verdict) {
    append(|binary| to_json(report, verdict, binary));
}

/// Records a check that found nothing: `cargo taskleak` counts the tests
/// that were checked (a test without a record ran without a check). Costs
/// one appended line, and only when records are asked for.
pub(crate) fn write_clean(test: &str, scope: Scope, verdict: Verdict) {
    append(|binary| {
        let mut out = header(binary, Some(test), scope, verdict);
        out.push_str("\"tasks\":0,\"threads\":0,\"groups\":[],\"report\":\"\"}");
        out
    });
}

/// The fields every record opens with, up to and including the comma after
/// `unwatched_runtime_workers`: who was checked, where, the verdict, and
/// what the check could not see.
fn header(binary: &str, test: Option<&str>, scope: Scope, verdict: Verdict) -> String {
    let scope = match scope {
        Scope::Test => "test",
        Scope::Binary => "binary",
    };
    format!(
        "{{\"version\":{VERSION},\"binary\":{},\"test\":{},\"scope\":\"{scope}\",\"leak_fails\":{},\
         \"own_failure\":{},\"process_test\":{},\"unwatched_tasks\":{},\"unwatched_runtime_workers\":{},",
        string(binary),
        test.map_or("null".to_owned(), string),
        verdict.leak_fails,
        verdict.own_failure,
        process_test().as_deref().map_or("null".to_owned(), string),
        match verdict.unwatched.tasks {
            None => "null",
            Some(Company::Alone) => "\"alone\"",
            Some(Company::Alongside) => "\"alongside\"",
        },
        verdict.unwatched.runtime_workers,
    )
}

/// Appends the line `to_json` makes (given the binary's name) to this
/// process's record file, if records are asked for.
fn append(to_json: impl FnOnce(&str) -> String) {
    // Where, worked out once per process: a record is written per test.
    static FILE: OnceLock<Option<(String, PathBuf)>> = OnceLock::new();
    let Some((binary, path)) = FILE
        .get_or_init(|| {
            let dir = std::env::var_os(DIR_VARIABLE).filter(|dir| !dir.is_empty())?;
            let binary = binary_name();
            let path = PathBuf::from(dir).join(format!("{binary}-{}.jsonl", std::process::id()));
            Some((binary, path))
        })
        .as_ref()
    else {
        return;
    };
    let mut line = to_json(binary);
    line.push('\n');
    // One `write` of the whole line, appended: records of the threads of
    // one process never interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(error) = written {
        eprintln!("taskleak: could not write the leak record {}: {error}", path.display());
    }
}

/// The test binary's name, as cargo prints it: `alpha` for
/// `target/debug/deps/alpha-2c679bbe0459b500`.
pub(crate) fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| Some(path.file_stem()?.to_string_lossy().into_owned()))
        .map(|stem| without_cargo_hash(&stem).to_owned())
        .unwrap_or_else(|| "the binary".to_owned())
}

/// `binary_main-2c679bbe0459b500` is cargo's `binary_main`.
fn without_cargo_hash(stem: &str) -> &str {
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
        _ => stem,
    }
}

fn to_json(report: &LeakReport, verdict: Verdict, binary: &str) -> String {
    let mut out = header(binary, report.test(), report.scope, verdict);
    let _ = write!(
        out,
        "\"tasks\":{},\"threads\":{},\"full_detail\":{},\
         \"inconclusive\":{},\"unjudged_threads\":{},\"groups\":[",
        report.leaked(),
        report.leaked_threads(),
        report.detail() == crate::report::leak_report::Detail::Full,
        // Why threads were not judged (another test may have started
        // them): the gate re-runs such a test alone for a verdict.
        report.inconclusive().map_or("null".to_owned(), string),
        report.threads.unattributed_count(),
    );
    let tasks = report.groups().iter().map(|group| {
        let state = match group.state() {
            TaskState::Waiting => "waiting",
            TaskState::WaitingUntraced => "waiting-untraced",
            TaskState::Running => "running",
            TaskState::StackUnavailable(_) => "stack-unavailable",
        };
        // The spawn line's text and its occurrence in the file name the
        // site without its line number: the gate's key survives edits above.
        let (spawn_line, occurrence) = match group.spawn_source() {
            Some(source) if !source.spawn_line().is_empty() => (string(source.spawn_line()), source.occurrence()),
            _ => ("null".to_owned(), 0),
        };
        let mut item = format!(
            "{{\"kind\":\"task\",\"count\":{},\"spawned_at\":{},\"spawn_line\":{spawn_line},\
             \"spawn_occurrence\":{occurrence},\"state\":\"{state}\",\"cause\":\"{}\",\"frames\":",
            group.count(),
            group.spawned_at().map_or("null".to_owned(), string),
            group.cause().label(),
        );
        // The first branch: where it is stuck; `select!`'s others follow.
        let branches = group.stack().branches();
        frames(&mut item, branches.first().map_or(&[][..], Vec::as_slice));
        item.push('}');
        item
    });
    let threads = report.thread_groups().iter().map(|group| {
        let mut item = format!(
            "{{\"kind\":\"thread\",\"count\":{},\"name\":{},\"state\":\"{}\",\"frames\":",
            group.count(),
            string(group.name()),
            thread_state(group.state()),
        );
        frames(&mut item, group.stack());
        item.push('}');
        item
    });
    let items: Vec<String> = tasks.chain(threads).collect();
    out.push_str(&items.join(","));
    let _ = write!(out, "],\"report\":{}}}", string(&report.to_string()));
    out
}

/// The one test this process runs, when it was started for one test:
/// nextest runs each as `binary --exact NAME …`. Ties an end-of-binary
/// check's record to the test whose process it ended.
fn process_test() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--exact" {
            return args.next().filter(|name| !name.starts_with('-'));
        }
    }
    None
}

/// A stable label for a thread's state: no addresses or numbers in it.
fn thread_state(state: &ThreadState) -> &'static str {
    match state {
        ThreadState::Running => "running",
        ThreadState::RunningInRead(_) => "running-read",
        ThreadState::Sleeping => "sleeping",
        ThreadState::WaitingForLock => "lock",
        ThreadState::WaitingOnChannel => "channel",
        ThreadState::WaitingOnCondvar => "condvar",
        ThreadState::WaitingAtBarrier => "barrier",
        ThreadState::Parked => "parked",
        ThreadState::Joining => "joining",
        ThreadState::WaitingOnFutex => "futex",
        ThreadState::Reading(_) => "reading",
        ThreadState::Writing(_) => "writing",
        ThreadState::Accepting(_) => "accepting",
        ThreadState::Polling => "polling",
        ThreadState::WaitingForChild => "child",
        ThreadState::InSystemCall(_) => "syscall",
        ThreadState::Unknown(_) => "unknown",
    }
}

fn frames(out: &mut String, frames: &[StackFrame]) {
    let items: Vec<String> = frames
        .iter()
        .map(|frame| {
            // The other names of folded code: the gate must not show, nor
            // key on, the one name the symbolizer happened to pick.
            let folded: Vec<String> = frame.folded().iter().map(|name| string(name)).collect();
            format!(
                "{{\"function\":{},\"location\":{},\"dependency\":{},\"folded\":[{}]}}",
                string(frame.function()),
                frame.location().map_or("null".to_owned(), string),
                frame.dependency().map_or("null".to_owned(), string),
                folded.join(","),
            )
        })
        .collect();
    let _ = write!(out, "[{}]", items.join(","));
}

/// A JSON string literal.
fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_json() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(string("µs → ok"), "\"µs → ok\"");
    }

    #[test]
    fn cargo_hashes_are_dropped_from_binary_names() {
        assert_eq!(without_cargo_hash("binary_main-2c679bbe0459b500"), "binary_main");
        assert_eq!(without_cargo_hash("my-tool"), "my-tool");
    }
}
