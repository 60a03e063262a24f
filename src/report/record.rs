//! Machine-readable leak records for `cargo taskleak`: with
//! `TASKLEAK_RECORD_DIR` set, every check appends one JSON line to a file
//! of its process's in that directory — a clean check too, so that the
//! gate can tell checked tests from tests that ran without a check.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

pub(crate) use taskleak_records::Company;
use taskleak_records::{Frame, Group, Kind, Record, VERSION};

use crate::model::StackFrame;
use crate::model::TaskState;
use crate::report::leak_report::{LeakReport, Scope};
use crate::report::thread_report::ThreadState;

/// The directory records go to; unset, nothing is recorded.
const DIR_VARIABLE: &str = "TASKLEAK_RECORD_DIR";

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

/// Appends `report` to this process's record file, if records are asked
/// for. A record that cannot be written is said on stderr, never a panic:
/// the test's verdict stands.
pub(crate) fn write(report: &LeakReport, verdict: Verdict) {
    append(|binary| of_report(report, verdict, binary));
}

/// Records a check that found nothing: `cargo taskleak` counts the tests
/// that were checked (a test without a record ran without a check). Costs
/// one appended line, and only when records are asked for.
pub(crate) fn write_clean(test: &str, scope: Scope, verdict: Verdict) {
    append(|binary| header(binary, Some(test), scope, verdict));
}

/// A record of who was checked, where, the verdict, and what the check
/// could not see; nothing found yet.
fn header(binary: &str, test: Option<&str>, scope: Scope, verdict: Verdict) -> Record {
    Record {
        version: VERSION,
        binary: binary.to_owned(),
        test: test.map(str::to_owned),
        scope: match scope {
            Scope::Test => taskleak_records::Scope::Test,
            Scope::Binary => taskleak_records::Scope::Binary,
        },
        leak_fails: verdict.leak_fails,
        own_failure: verdict.own_failure,
        process_test: process_test(),
        unwatched_tasks: verdict.unwatched.tasks,
        unwatched_runtime_workers: verdict.unwatched.runtime_workers,
        tasks: 0,
        threads: 0,
        full_detail: None,
        inconclusive: None,
        unjudged_threads: 0,
        groups: Vec::new(),
        report: String::new(),
    }
}

/// Appends the record `make` makes (given the binary's name) to this
/// process's record file, as one JSON line, if records are asked for.
fn append(make: impl FnOnce(&str) -> Record) {
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
    let mut line = match serde_json::to_string(&make(binary)) {
        Ok(line) => line,
        Err(error) => {
            eprintln!("taskleak: could not write the leak record {}: {error}", path.display());
            return;
        }
    };
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

fn of_report(report: &LeakReport, verdict: Verdict, binary: &str) -> Record {
    let tasks = report.groups().iter().map(|group| {
        let state = match group.state() {
            TaskState::Waiting => "waiting",
            TaskState::WaitingUntraced => "waiting-untraced",
            TaskState::Running => "running",
            TaskState::StackUnavailable(_) => "stack-unavailable",
        };
        // The spawn line's text and its occurrence in the file name the
        // site without its line number: the gate's key survives edits above.
        let (spawn_line, spawn_occurrence) = match group.spawn_source() {
            Some(source) if !source.spawn_line().is_empty() => {
                (Some(source.spawn_line().to_owned()), source.occurrence())
            }
            _ => (None, 0),
        };
        // The first branch: where it is stuck; `select!`'s others follow.
        let branches = group.stack().branches();
        Group {
            kind: Kind::Task,
            count: group.count(),
            spawned_at: group.spawned_at().map(str::to_owned),
            spawn_line,
            spawn_occurrence,
            name: None,
            state: state.to_owned(),
            cause: Some(group.cause().label().to_owned()),
            frames: frames(branches.first().map_or(&[][..], Vec::as_slice)),
        }
    });
    let threads = report.thread_groups().iter().map(|group| Group {
        kind: Kind::Thread,
        count: group.count(),
        spawned_at: None,
        spawn_line: None,
        spawn_occurrence: 0,
        name: Some(group.name().to_owned()),
        state: thread_state(group.state()).to_owned(),
        cause: None,
        frames: frames(group.stack()),
    });
    Record {
        tasks: report.leaked(),
        threads: report.leaked_threads(),
        full_detail: Some(report.detail() == crate::report::leak_report::Detail::Full),
        // Why threads were not judged (another test may have started
        // them): the gate re-runs such a test alone for a verdict.
        inconclusive: report.inconclusive().map(str::to_owned),
        unjudged_threads: report.thread_section().unattributed_count(),
        groups: tasks.chain(threads).collect(),
        report: report.to_string(),
        ..header(binary, report.test(), report.scope(), verdict)
    }
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

fn frames(frames: &[StackFrame]) -> Vec<Frame> {
    frames
        .iter()
        .map(|frame| Frame {
            function: frame.function().to_owned(),
            location: frame.location().map(str::to_owned),
            dependency: frame.dependency().map(str::to_owned),
            // The other names of folded code: the gate must not show, nor
            // key on, the one name the symbolizer happened to pick.
            folded: frame.folded().to_vec(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_hashes_are_dropped_from_binary_names() {
        assert_eq!(without_cargo_hash("binary_main-2c679bbe0459b500"), "binary_main");
        assert_eq!(without_cargo_hash("my-tool"), "my-tool");
    }
}
