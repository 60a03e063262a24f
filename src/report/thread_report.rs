//! Leaked threads as reports show them: what each is blocked in, from the
//! kernel's view and its native stack, and identical threads grouped.

use std::fmt;
use std::time::Duration;

use crate::model::StackFrame;
use crate::report::words::{counted, plural};

/// What a leaked thread was doing: the kernel's view of it (its scheduler
/// state and the system call it is in), made precise by its stack.
///
/// ```
/// # fn show(group: &taskleak::report::ThreadGroup) {
/// match group.state() {
///     taskleak::report::ThreadState::Running => println!("busy, never blocks"),
///     taskleak::report::ThreadState::WaitingForLock => println!("deadlocked?"),
///     other => println!("{other}"),
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ThreadState {
    /// On a CPU or ready for one: it computes and never blocks.
    Running,
    /// On a CPU each time it was looked at, inside a read of the named
    /// socket or file that returns at once: a loop that keeps reading a
    /// stream at its end (`read` returns `Ok(0)` once the peer has closed,
    /// and a loop that ignores `Ok(0)` spins). The socket is named when the
    /// process has one whose peer closed it (e.g. `TCP 127.0.0.1:40000 ->
    /// 127.0.0.1:8080 (closed by its peer)`).
    RunningInRead(String),
    /// In `std::thread::sleep` (or another sleep call).
    Sleeping,
    /// Waiting to take a `Mutex` or `RwLock`.
    WaitingForLock,
    /// Waiting to receive on (or send into) a channel.
    WaitingOnChannel,
    /// Waiting on a `Condvar`.
    WaitingOnCondvar,
    /// Waiting at a `Barrier`.
    WaitingAtBarrier,
    /// In `std::thread::park`.
    Parked,
    /// Joining another thread.
    Joining,
    /// Waiting on a futex (a lock, condvar or channel) the stack does not name.
    WaitingOnFutex,
    /// Reading from the named file or socket (e.g. `TCP 127.0.0.1:40000 -> 127.0.0.1:8080`).
    Reading(String),
    /// Writing to the named file or socket.
    Writing(String),
    /// Accepting connections on the named listener.
    Accepting(String),
    /// Waiting in `poll`, `select` or `epoll` for file descriptors.
    Polling,
    /// Waiting for a child process.
    WaitingForChild,
    /// In another system call, named.
    InSystemCall(String),
    /// The kernel's view could not be read; the reason says why.
    Unknown(String),
}

impl fmt::Display for ThreadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadState::Running => f.write_str("running: on a CPU each time it was looked at"),
            // The kernel showed the peer closed: no need to ask.
            ThreadState::RunningInRead(what) if what.contains("closed by") => write!(
                f,
                "running: it keeps calling read on {what}, which returns at once: read returns \
                 Ok(0) at end of stream, and a loop that ignores Ok(0) spins"
            ),
            ThreadState::RunningInRead(what) => write!(
                f,
                "running: it keeps calling read on {what}, which returns at once (the peer closed? \
                 read returns Ok(0) at end of stream, and a loop that ignores Ok(0) spins)"
            ),
            ThreadState::Sleeping => f.write_str("sleeping"),
            ThreadState::WaitingForLock => f.write_str("waiting to take a lock (Mutex/RwLock)"),
            ThreadState::WaitingOnChannel => f.write_str("waiting on a channel (a sender or receiver is still alive)"),
            ThreadState::WaitingOnCondvar => f.write_str("waiting on a Condvar"),
            ThreadState::WaitingAtBarrier => f.write_str("waiting at a Barrier"),
            ThreadState::Parked => f.write_str("parked (std::thread::park)"),
            ThreadState::Joining => f.write_str("joining another thread"),
            ThreadState::WaitingOnFutex => f.write_str("waiting on a futex (a lock, condvar or channel)"),
            ThreadState::Reading(what) => write!(f, "reading from {what}"),
            ThreadState::Writing(what) => write!(f, "writing to {what}"),
            ThreadState::Accepting(what) => write!(f, "accepting connections on {what}"),
            ThreadState::Polling => f.write_str("polling file descriptors"),
            ThreadState::WaitingForChild => f.write_str("waiting for a child process"),
            ThreadState::InSystemCall(call) => write!(f, "in the system call `{call}`"),
            ThreadState::Unknown(reason) => write!(f, "unknown ({reason})"),
        }
    }
}

impl ThreadState {
    /// One line on how to fix a thread stuck like this, or `None`.
    ///
    /// ```
    /// assert!(taskleak::report::ThreadState::Sleeping.hint().is_some());
    /// ```
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            ThreadState::Running => {
                "give the loop an exit: check a stop flag (`AtomicBool`) each round and `join()` the thread"
            }
            ThreadState::RunningInRead(_) => {
                "treat `Ok(0)` from `read` as end of stream: leave the loop (and close the socket), \
                 and `join()` the thread from its owner"
            }
            ThreadState::Sleeping => {
                "a sleeping loop needs a way out: wait on a stop channel with `recv_timeout` instead of \
                 `sleep`, and `join()` the thread in `Drop`"
            }
            ThreadState::WaitingForLock => "scope lock guards tightly and take locks in one global order",
            ThreadState::WaitingOnChannel | ThreadState::WaitingOnFutex | ThreadState::WaitingOnCondvar => {
                "drop every sender when done (or use `recv_timeout`), so the blocked call returns"
            }
            ThreadState::Reading(_) | ThreadState::Writing(_) => {
                "set a timeout (`set_read_timeout`) or shut the socket down from the owner on stop"
            }
            ThreadState::Accepting(_) => "stop accepting on shutdown: a non-blocking listener polled with a stop flag",
            ThreadState::Parked => "unpark the thread on every path that should let it go on",
            ThreadState::WaitingAtBarrier => "count the parties where they start: a Barrier needs all of them",
            _ => return None,
        })
    }

    /// The section of the fixes page on this state, when it has a fix.
    ///
    /// ```
    /// let url = taskleak::report::ThreadState::Running.docs().unwrap();
    /// assert!(url.ends_with("#thread-running"));
    /// ```
    pub fn docs(&self) -> Option<String> {
        self.hint()
            .map(|_| format!("{}#{}", crate::model::FIXES_PAGE, self.docs_anchor()))
    }

    /// The anchor of the fixes page's section on this state.
    fn docs_anchor(&self) -> &'static str {
        match self {
            ThreadState::Running => "thread-running",
            ThreadState::RunningInRead(_) => "thread-running-read",
            ThreadState::Sleeping => "thread-sleeping",
            ThreadState::WaitingForLock => "thread-lock",
            ThreadState::Reading(_) | ThreadState::Writing(_) | ThreadState::Accepting(_) => "thread-io",
            _ => "thread-waiting",
        }
    }
}

/// Identical leaked threads: same name, same state, same stack.
///
/// ```
/// # fn show(report: &taskleak::LeakReport) {
/// for group in report.thread_groups() {
///     println!("{} x {:?}: {}", group.count(), group.name(), group.state());
///     for frame in group.stack() {
///         println!("  {}", frame.function());
///     }
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ThreadGroup {
    pub(crate) thread_ids: Vec<i32>,
    pub(crate) name: String,
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) inherited_name: Option<String>,
    pub(crate) state: ThreadState,
    pub(crate) stack: Vec<StackFrame>,
    pub(crate) stack_unavailable: Option<String>,
    // Whose thread it is means something only in a check's report.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub(crate) kind: ThreadKind,
}

/// Whose thread it is, as far as the check can tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum ThreadKind {
    /// A thread the test (or something it called) started.
    #[default]
    Plain,
    /// The test's runtime's blocking-pool thread, still running a
    /// `spawn_blocking` closure.
    TestRuntimeBlocking,
    /// The test's runtime's thread, alive after shutdown, stack unknown.
    TestRuntimeUnknown,
}

impl ThreadGroup {
    /// How many identical threads this group stands for.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) { println!("{}", group.count()); }
    /// ```
    pub fn count(&self) -> usize {
        self.thread_ids.len()
    }

    /// The threads' kernel ids (as `gettid` returns them), ascending.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) { println!("{:?}", group.thread_ids()); }
    /// ```
    pub fn thread_ids(&self) -> &[i32] {
        &self.thread_ids
    }

    /// The threads' own name as the kernel keeps it: at most 15 bytes of
    /// the name given to `std::thread::Builder::name`. Empty for threads
    /// started without a name, whatever kernel name they inherited (see
    /// [`ThreadGroup::inherited_name`]).
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) { println!("{}", group.name()); }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel name threads started without a name inherited from the
    /// thread that started them, when it says something: libtest's name
    /// for the test that started them (`"tests::skipped_"`), or the
    /// executable's for threads started from `main`. `None` for named
    /// threads and for those carrying the checked test's own mark.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) {
    /// if let Some(inherited) = group.inherited_name() {
    ///     println!("unnamed, started by a thread named {inherited:?}");
    /// }
    /// # }
    /// ```
    pub fn inherited_name(&self) -> Option<&str> {
        self.inherited_name.as_deref()
    }

    /// What the threads are blocked in.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) { println!("{}", group.state()); }
    /// ```
    pub fn state(&self) -> &ThreadState {
        &self.state
    }

    /// The native stack, outermost first: the thread's own function (your
    /// closure) first, the call it is blocked in last. Empty when it could
    /// not be captured; see [`ThreadGroup::stack_unavailable`].
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) {
    /// if let Some(own) = group.stack().first() {
    ///     println!("runs {} at {:?}", own.function(), own.location());
    /// }
    /// # }
    /// ```
    pub fn stack(&self) -> &[StackFrame] {
        &self.stack
    }

    /// Why the stack could not be captured, if it could not.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) { println!("{:?}", group.stack_unavailable()); }
    /// ```
    pub fn stack_unavailable(&self) -> Option<&str> {
        self.stack_unavailable.as_deref()
    }

    /// Whether these are threads of the test's own tokio runtime still
    /// running a `spawn_blocking` closure after it shut down.
    ///
    /// ```
    /// # fn show(group: &taskleak::report::ThreadGroup) { println!("{}", group.is_blocking_pool()); }
    /// ```
    pub fn is_blocking_pool(&self) -> bool {
        self.kind == ThreadKind::TestRuntimeBlocking
    }
}

/// What a thread check found: the threads part of a [`LeakReport`](crate::LeakReport).
#[derive(Clone, Debug, Default)]
pub(crate) struct ThreadSection {
    /// Threads of this test still alive.
    pub(crate) leaked: Vec<ThreadGroup>,
    /// Threads still alive that another test running alongside may have
    /// started: reported, never failed on.
    pub(crate) unattributed: Vec<ThreadGroup>,
    /// Why threads could not be tied to the test, when some could not.
    pub(crate) inconclusive: Option<String>,
    pub(crate) retries: u32,
    pub(crate) waited: Duration,
    pub(crate) notes: Vec<String>,
    /// Worker threads of a tokio runtime the test started but taskleak does
    /// not watch (a global `LazyLock<Runtime>`): its tasks go unchecked.
    pub(crate) unwatched_runtime_workers: Vec<i32>,
}

impl ThreadSection {
    pub(crate) fn leaked_count(&self) -> usize {
        self.leaked.iter().map(ThreadGroup::count).sum()
    }

    pub(crate) fn unattributed_count(&self) -> usize {
        self.unattributed.iter().map(ThreadGroup::count).sum()
    }
}

/// One leaked thread before grouping.
#[derive(Debug)]
pub(crate) struct LeakedThread {
    pub(crate) tid: i32,
    /// Its own name; empty when it only inherited one.
    pub(crate) name: String,
    pub(crate) inherited_name: Option<String>,
    pub(crate) state: ThreadState,
    pub(crate) stack: Vec<StackFrame>,
    pub(crate) stack_unavailable: Option<String>,
    pub(crate) kind: ThreadKind,
}

/// Groups identical threads, largest group first. An inherited name does
/// not split a group: only the threads' own names, states and stacks do.
pub(crate) fn group(threads: Vec<LeakedThread>) -> Vec<ThreadGroup> {
    let mut groups = crate::model::group_by(
        threads,
        |thread| {
            (
                thread.name.clone(),
                thread.state.clone(),
                thread.stack.clone(),
                thread.kind,
            )
        },
        |thread| ThreadGroup {
            thread_ids: vec![thread.tid],
            name: thread.name,
            inherited_name: thread.inherited_name,
            state: thread.state,
            stack: thread.stack,
            stack_unavailable: thread.stack_unavailable,
            kind: thread.kind,
        },
        |group, thread| group.thread_ids.push(thread.tid),
    );
    for group in &mut groups {
        group.thread_ids.sort_unstable();
    }
    groups.sort_by(|a, b| {
        b.count()
            .cmp(&a.count())
            .then_with(|| a.thread_ids.first().cmp(&b.thread_ids.first()))
    });
    groups
}

/// `N threads` and `thread ids 1, 2, …` for a group's headline.
fn headline(group: &ThreadGroup) -> (String, String) {
    let ids = group
        .thread_ids
        .iter()
        .take(5)
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let more = if group.count() > 5 { ", …" } else { "" };
    let count = group.count();
    (
        plural(count, "thread"),
        format!("{} {ids}{more}", counted(count, "thread id")),
    )
}

/// Writes one group: a headline, what it is blocked in, its stack, a fix.
pub(crate) fn write_group(f: &mut fmt::Formatter<'_>, group: &ThreadGroup) -> fmt::Result {
    let (threads, ids) = headline(group);
    match group.kind {
        ThreadKind::TestRuntimeBlocking => writeln!(
            f,
            "  {threads} of the test's runtime still running a `spawn_blocking` closure  ({ids})"
        )?,
        ThreadKind::TestRuntimeUnknown => writeln!(
            f,
            "  {threads} of the test's runtime still alive after it shut down  ({ids})"
        )?,
        ThreadKind::Plain if group.name.is_empty() => match &group.inherited_name {
            Some(inherited) => writeln!(
                f,
                "  {threads} started without a name (inherited the kernel name {inherited:?})  ({ids})"
            )?,
            None => writeln!(f, "  {threads} started without a name  ({ids})")?,
        },
        ThreadKind::Plain => writeln!(f, "  {threads} named {:?}  ({ids})", group.name)?,
    }
    write_state_and_stack(f, group)?;
    if let (Some(hint), Some(docs)) = (group.state.hint(), group.state.docs()) {
        writeln!(f, "    fix:   {hint}")?;
        writeln!(f, "           ({docs})")?;
    }
    Ok(())
}

/// The cheapest ignore rule that matches a group, as `(key, regex)`: its
/// own name, decided before the grace period; else its own function (the
/// stack's outermost frame), decided once its stack is captured. `None`
/// for unnamed threads without a stack.
pub(crate) fn cheapest_rule(group: &ThreadGroup) -> Option<(&'static str, String)> {
    if !group.name.is_empty() {
        return Some(("ignore_thread_name", format!("^{}$", escape(&group.name))));
    }
    let own = group.stack.first()?;
    Some(("ignore_any_function", format!("^{}$", escape(own.function()))))
}

/// `regex::escape`, without the escapes only character classes and
/// verbose mode need (`-`, `&`, `~`, `#`), so `log-flusher` stays readable.
fn escape(text: &str) -> String {
    regex::escape(text)
        .replace("\\-", "-")
        .replace("\\&", "&")
        .replace("\\~", "~")
        .replace("\\#", "#")
}

/// Writes the ignore hint for a leaked group: the cheapest rule that
/// matches it, for the attribute or (`binary`) for `taskleak.toml`, and for
/// an unnamed thread how to get the cheaper rule.
pub(crate) fn write_hint(f: &mut fmt::Formatter<'_>, group: &ThreadGroup, binary: bool) -> fmt::Result {
    let Some((key, rule)) = cheapest_rule(group) else {
        return writeln!(
            f,
            "  hint: if such a thread is meant to outlive the test (a shared fixture's), name it with\n        \
             `std::thread::Builder::name` and ignore it by name (`ignore_thread_name`)"
        );
    };
    if binary {
        writeln!(
            f,
            "  hint: if such a thread is meant to outlive the tests, ignore it in `taskleak.toml` beside \
             `Cargo.toml`:\n        {key} = ['{rule}']"
        )?;
    } else {
        writeln!(
            f,
            "  hint: if such a thread is meant to outlive the test (a shared fixture's), ignore it with\n        \
             #[taskleak::verify_no_leaks({key} = r\"{rule}\")]"
        )?;
    }
    if group.name.is_empty() {
        writeln!(
            f,
            "        (a function rule waits for the thread's stack, a few ms after the body; naming the thread\n        \
             with `std::thread::Builder::name` and ignoring it with `ignore_thread_name` costs nothing)"
        )?;
    }
    Ok(())
}

/// Writes one group of a [`TaskDump`](crate::monitor::TaskDump): no fix, since a
/// live thread of a running service is no leak by itself.
pub(crate) fn write_dump_group(f: &mut fmt::Formatter<'_>, group: &ThreadGroup) -> fmt::Result {
    let (threads, ids) = headline(group);
    if group.name.is_empty() {
        writeln!(f, "  {threads} without a name  ({ids})")?;
    } else {
        writeln!(f, "  {threads} named {:?}  ({ids})", group.name)?;
    }
    write_state_and_stack(f, group)
}

fn write_state_and_stack(f: &mut fmt::Formatter<'_>, group: &ThreadGroup) -> fmt::Result {
    writeln!(f, "    blocked: {}", group.state)?;
    match &group.stack_unavailable {
        Some(reason) => writeln!(f, "    stack unavailable: {reason}")?,
        None if group.stack.is_empty() => writeln!(f, "    stack: only runtime and standard-library frames")?,
        None => {
            writeln!(f, "    stack:")?;
            let width = group
                .stack
                .iter()
                .map(|frame| frame.function().len())
                .max()
                .unwrap_or(0);
            for frame in &group.stack {
                crate::model::write_frame(f, frame, width)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_with_a_fix_links_to_a_section_of_the_fixes_page() {
        let page = include_str!("../../docs/fixes.md");
        let text = || "x".to_owned();
        let all = [
            ThreadState::Running,
            ThreadState::RunningInRead(text()),
            ThreadState::Sleeping,
            ThreadState::WaitingForLock,
            ThreadState::WaitingOnChannel,
            ThreadState::WaitingOnCondvar,
            ThreadState::WaitingAtBarrier,
            ThreadState::Parked,
            ThreadState::Joining,
            ThreadState::WaitingOnFutex,
            ThreadState::Reading(text()),
            ThreadState::Writing(text()),
            ThreadState::Accepting(text()),
            ThreadState::Polling,
            ThreadState::WaitingForChild,
            ThreadState::InSystemCall(text()),
            ThreadState::Unknown(text()),
        ];
        for state in all.iter().filter(|state| state.hint().is_some()) {
            let anchor = state.docs_anchor();
            assert!(
                page.contains(&format!("<a id=\"{anchor}\"></a>")),
                "docs/fixes.md has no section `{anchor}` (for {state:?})"
            );
        }
        assert_eq!(
            ThreadState::RunningInRead(text()).docs().as_deref(),
            Some("https://docs.rs/taskleak/latest/taskleak/fixes/index.html#thread-running-read")
        );
    }
}
