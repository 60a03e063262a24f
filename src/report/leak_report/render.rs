//! A leak report as people read it: the headline, each group with its spawn
//! site's source lines, stack, cause and fix, the notes, and a ready ignore
//! rule.

use std::fmt;

use super::{Detail, ENABLE_FULL_REPORTS, LeakGroup, LeakReport, Scope};
use crate::model::{Cause, TaskState};
use crate::report::source::SourceExcerpt;
use crate::report::thread_report;
use crate::report::words::plural;

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self
            .test
            .as_deref()
            .map(|test| format!(" by `{test}`"))
            .unwrap_or_default();
        let threads = &self.threads;
        let waited = self.waited.as_secs_f64();
        if self.leaked == 0 {
            // Threads alone: tell their own grace period.
            let retries = plural(threads.retries as usize, "retry");
            let waited = threads.waited.as_secs_f64();
            if threads.leaked.is_empty() {
                let alive = plural(threads.unattributed_count(), "thread");
                let who = who.replacen(" by ", " for ", 1);
                writeln!(
                    f,
                    "taskleak: inconclusive{who}: {alive} started during the test still alive after {retries} over {waited:.2} s"
                )?;
            } else {
                let leaked = plural(threads.leaked_count(), "thread");
                writeln!(
                    f,
                    "taskleak: {leaked} leaked{who} (still alive after {retries} over {waited:.2} s)"
                )?;
            }
        } else if self.blocked {
            let leaked = plural(self.leaked, "task");
            writeln!(
                f,
                "taskleak: {leaked} leaked{who} (the check was blocked for {waited:.2} s)"
            )?;
        } else {
            let retries = plural(self.retries as usize, "retry");
            let mut leaked = plural(self.leaked, "task");
            if !threads.leaked.is_empty() {
                leaked = format!("{leaked} and {}", plural(threads.leaked_count(), "thread"));
            }
            writeln!(
                f,
                "taskleak: {leaked} leaked{who} (still alive after {retries} over {waited:.2} s)"
            )?;
        }
        for group in &self.groups {
            writeln!(f)?;
            write_group(f, group)?;
        }
        for group in &threads.leaked {
            writeln!(f)?;
            thread_report::write_group(f, group)?;
        }
        if let Some(reason) = &threads.inconclusive {
            writeln!(f)?;
            writeln!(
                f,
                "  {} may belong to another test running at the same time, so {} not judged: {reason}",
                plural(threads.unattributed_count(), "thread"),
                if threads.unattributed_count() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            )?;
            for group in &threads.unattributed {
                writeln!(f)?;
                thread_report::write_group(f, group)?;
            }
        }
        if self.leaked > 0 && self.detail == Detail::CountOnly {
            writeln!(f)?;
            writeln!(
                f,
                "  This build has no `--cfg tokio_unstable`, so taskleak can only count the"
            )?;
            writeln!(
                f,
                "  tasks. For ids, spawn sites, stacks and ignore rules, with no change to your"
            )?;
            writeln!(
                f,
                "  configuration, run `cargo taskleak` (it builds the tests with the cfg in a"
            )?;
            writeln!(f, "  target directory of its own); or add to `.cargo/config.toml`:")?;
            writeln!(f)?;
            for line in ENABLE_FULL_REPORTS.lines() {
                writeln!(f, "      {line}")?;
            }
        }
        for note in self.notes.iter().chain(&threads.notes) {
            writeln!(f)?;
            writeln!(f, "  note: {note}")?;
        }
        if self.scope == Scope::Binary {
            writeln!(f)?;
            writeln!(
                f,
                "  note: checked once, at the end of the test binary, after every test in it ran"
            )?;
        }
        if let Some(site) = self.groups.iter().find_map(|group| group.spawned_at.as_deref()) {
            // Anchored, with the column: exactly this spawn site, nothing else.
            let rule = regex::escape(site);
            writeln!(f)?;
            match self.scope {
                Scope::Test => writeln!(
                    f,
                    "  hint: if such a task is meant to outlive the test, ignore it with\n        \
                     #[taskleak::verify_no_leaks(ignore_spawned_at = r\"^{rule}$\")]"
                )?,
                Scope::Binary => writeln!(
                    f,
                    "  hint: if such a task is meant to outlive the tests, ignore it in `taskleak.toml` beside \
                     `Cargo.toml`:\n        ignore_spawned_at = ['^{rule}$']"
                )?,
            }
        }
        if let Some(group) = threads.leaked.first() {
            writeln!(f)?;
            thread_report::write_hint(f, group, self.scope == Scope::Binary)?;
        }
        Ok(())
    }
}

fn write_group(f: &mut fmt::Formatter<'_>, group: &LeakGroup) -> fmt::Result {
    let site = group.spawned_at.as_deref().unwrap_or("an unknown place");
    let ids = match group.task_ids.as_slice() {
        [id] => format!("task id {id}"),
        ids if ids.len() <= 5 => {
            format!(
                "task ids {}",
                ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            )
        }
        ids => format!("task ids {}, {}, … {}", ids[0], ids[1], ids[ids.len() - 1]),
    };
    let quoted = |names: &[String]| {
        names
            .iter()
            .map(|name| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let names = match group.names.as_slice() {
        [] => String::new(),
        [name] => format!(", name {name:?}"),
        names if names.len() <= 3 => format!(", names {}", quoted(names)),
        names => format!(", names {}, … ({} distinct)", quoted(&names[..2]), names.len()),
    };
    write!(
        f,
        "  {}  spawned at {site}  ({ids}{names})",
        plural(group.count(), "task")
    )?;
    match &group.state {
        TaskState::Running => writeln!(f, " — running, never yielded")?,
        TaskState::StackUnavailable(reason) => writeln!(f, " — stack unavailable: {reason}")?,
        TaskState::Waiting | TaskState::WaitingUntraced => writeln!(f)?,
    }
    if let Some(source) = &group.source {
        write!(f, "{source:6}")?;
    }
    match &group.state {
        TaskState::Waiting => {
            writeln!(f, "    stuck at:")?;
            write!(f, "{}", group.stack)?;
            writeln!(f, "    cause: {}", group.cause)?;
        }
        TaskState::WaitingUntraced => {
            writeln!(f, "    stuck at: no await point that tokio's task dump can see")?;
            let seen = group.source.as_deref().and_then(untraced_clue);
            writeln!(
                f,
                "    cause: {}: {}",
                group.cause,
                seen.unwrap_or(
                    "a `TcpListener::accept`, a future inside `FuturesUnordered`/`join_all`,\n           \
                     or a future from outside tokio such as `std::future::pending()`"
                )
            )?;
        }
        TaskState::Running | TaskState::StackUnavailable(_) => {}
    }
    if group.cause != Cause::Unclassified {
        writeln!(f, "    fix:   {}", group.cause.hint())?;
        writeln!(f, "           ({})", group.cause.docs())?;
    }
    Ok(())
}

/// What the spawned code shows of a wait the dump cannot see, when its
/// source names one: the waits tokio's dump is known to miss.
fn untraced_clue(source: &SourceExcerpt) -> Option<&'static str> {
    const CLUES: &[(&[&str], &str)] = &[
        (
            &[".accept("],
            "the code above calls `accept`, and tokio's `TcpListener::accept` leaves no trace in a dump",
        ),
        (
            &[
                "FuturesUnordered",
                "FuturesOrdered",
                "join_all",
                "select_all",
                "buffer_unordered",
                "buffered(",
            ],
            "the code above drives futures through a combinator (`FuturesUnordered`, `join_all`, …), \
             which the dump does not enter",
        ),
        (
            &["pending()", "pending::<"],
            "the code above awaits a `pending()` future, which never completes",
        ),
    ];
    let code: Vec<&str> = source
        .lines()
        .map(|(_, line)| line.trim_start())
        .filter(|line| !line.starts_with("//"))
        .collect();
    CLUES
        .iter()
        .find(|(marks, _)| marks.iter().any(|mark| code.iter().any(|line| line.contains(mark))))
        .map(|(_, clue)| *clue)
}
