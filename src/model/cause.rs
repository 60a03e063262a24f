//! Why a leaked task is stuck: the causes, the rules that tell each from a
//! frame's function, and a short fix for each.

use std::fmt;

/// Where the fix hints point: a page with each cause's leaky and fixed code
/// (the [`fixes`](crate::fixes) module; `docs/fixes.md` in the repository).
///
/// ```
/// assert!(taskleak::report::FIXES_PAGE.ends_with("/taskleak/fixes/index.html"));
/// ```
pub const FIXES_PAGE: &str = "https://docs.rs/taskleak/latest/taskleak/fixes/index.html";

/// Why a leaked task is stuck, one per catalogue pattern.
///
/// ```
/// # fn show(group: &taskleak::report::LeakGroup) {
/// let cause = group.cause();
/// println!("{}: {cause}", cause.label());        // e.g. "mpsc-receive: waiting to receive …"
/// println!("fix: {} ({})", cause.hint(), cause.docs());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// `mpsc::Receiver::recv` while a sender is still alive somewhere.
    MpscReceive,
    /// `mpsc::Sender::send` on a full channel nobody reads.
    MpscSend,
    /// Awaiting a `oneshot::Receiver` whose sender is kept but never used.
    Oneshot,
    /// `Notify::notified()` never notified.
    Notify,
    /// `Barrier::wait` with fewer arrivals than parties.
    Barrier,
    /// Waiting for a `Mutex`/`RwLock` another task holds (or a lock-order deadlock).
    Lock,
    /// Waiting for a `Semaphore` permit that is never released.
    Semaphore,
    /// `watch::Receiver::changed` while the sender lives and never sends.
    WatchChange,
    /// `broadcast::Receiver::recv` while a sender lives and never sends.
    BroadcastReceive,
    /// Waiting for an `Interval`'s next tick (a loop that may exit only at a
    /// later tick, or never).
    IntervalLoop,
    /// Sleeping past the grace period, usually in a loop with no exit.
    Sleep,
    /// Awaiting the `JoinHandle` (or `JoinSet`) of another task.
    JoinHandle,
    /// Reading from a socket, pipe or file with no timeout.
    IoRead,
    /// Writing to a peer that no longer reads.
    IoWrite,
    /// Accepting connections with no shutdown signal.
    Accept,
    /// `select!`/`join!` with every branch blocked, each for its own cause.
    Select(Vec<Cause>),
    /// Running without ever yielding.
    Running,
    /// Waiting on something tokio's task dump cannot see: a
    /// `TcpListener::accept`, a future inside `FuturesUnordered`/`join_all`,
    /// or a future from outside tokio (`std::future::pending()`).
    Untraced,
    /// The frames support no rule.
    Unclassified,
}

/// Innermost-frame rules: a frame whose function starts with the prefix.
const RULES: &[(&str, Cause)] = &[
    ("tokio::sync::mpsc::bounded::Receiver<T>::recv", Cause::MpscReceive),
    (
        "tokio::sync::mpsc::unbounded::UnboundedReceiver<T>::recv",
        Cause::MpscReceive,
    ),
    ("tokio::sync::mpsc::bounded::Sender<T>::send", Cause::MpscSend),
    ("tokio::sync::mpsc::bounded::Sender<T>::reserve", Cause::MpscSend),
    ("tokio::sync::oneshot::Receiver<T>", Cause::Oneshot),
    ("tokio::sync::notify::Notified", Cause::Notify),
    ("tokio::sync::barrier::Barrier::wait", Cause::Barrier),
    ("tokio::sync::mutex::Mutex<T>::lock", Cause::Lock),
    ("tokio::sync::rwlock::RwLock<T>::read", Cause::Lock),
    ("tokio::sync::rwlock::RwLock<T>::write", Cause::Lock),
    ("tokio::sync::semaphore::Semaphore::acquire", Cause::Semaphore),
    ("tokio::sync::watch::Receiver<T>::changed", Cause::WatchChange),
    ("tokio::sync::watch::Receiver<T>::wait_for", Cause::WatchChange),
    ("tokio::sync::broadcast::Receiver<T>::recv", Cause::BroadcastReceive),
    ("tokio::time::interval::Interval::tick", Cause::IntervalLoop),
    ("tokio::time::sleep::Sleep", Cause::Sleep),
    ("tokio::runtime::task::join::JoinHandle<T>", Cause::JoinHandle),
    ("tokio::task::join_set::JoinSet<T>::join_next", Cause::JoinHandle),
    ("tokio::io::util::read", Cause::IoRead),
    ("tokio::net::tcp::stream::TcpStream::readable", Cause::IoRead),
    ("tokio::net::udp::UdpSocket::recv", Cause::IoRead),
    ("tokio::net::unix::stream::UnixStream::readable", Cause::IoRead),
    ("tokio::io::util::write", Cause::IoWrite),
    ("tokio::net::tcp::listener::TcpListener::accept", Cause::Accept),
    ("tokio::net::unix::listener::UnixListener::accept", Cause::Accept),
];

/// The cause a frame's function names, if a rule knows it.
pub(crate) fn of_function(function: &str) -> Option<&'static Cause> {
    RULES
        .iter()
        .find(|(prefix, _)| function.starts_with(prefix))
        .map(|(_, cause)| cause)
}

impl Cause {
    /// A stable identifier for tools and JSON, e.g. `mpsc-receive`; also the
    /// anchor of the cause's section in [`FIXES_PAGE`].
    ///
    /// ```
    /// assert_eq!(taskleak::report::Cause::Notify.label(), "notify");
    /// ```
    pub fn label(&self) -> &'static str {
        match self {
            Cause::MpscReceive => "mpsc-receive",
            Cause::MpscSend => "mpsc-send",
            Cause::Oneshot => "oneshot",
            Cause::Notify => "notify",
            Cause::Barrier => "barrier",
            Cause::Lock => "lock",
            Cause::Semaphore => "semaphore",
            Cause::WatchChange => "watch-change",
            Cause::BroadcastReceive => "broadcast-receive",
            Cause::IntervalLoop => "interval-loop",
            Cause::Sleep => "sleep",
            Cause::JoinHandle => "join-handle",
            Cause::IoRead => "io-read",
            Cause::IoWrite => "io-write",
            Cause::Accept => "accept",
            Cause::Select(_) => "select",
            Cause::Running => "running",
            Cause::Untraced => "untraced",
            Cause::Unclassified => "unclassified",
        }
    }

    /// The fix, in one line (the catalogue's typical fix).
    ///
    /// ```
    /// println!("{}", taskleak::report::Cause::MpscReceive.hint());
    /// ```
    pub fn hint(&self) -> &'static str {
        match self {
            Cause::MpscReceive => "drop every sender when done; a worker must not hold a sender of its own queue",
            Cause::MpscSend => "give the channel room for every message, or select on a cancel signal while sending",
            Cause::Oneshot => "send on (or drop) the oneshot sender on every path",
            Cause::Notify => "notify on every path, including errors; or wait with a timeout",
            Cause::Barrier => "count the parties where they start, so the count matches the arrivals",
            Cause::Lock => {
                "scope guards tightly, never hold one across an await forever, take locks in one global order"
            }
            Cause::Semaphore => "keep permits as RAII guards; never `forget()` one on an error path",
            Cause::WatchChange | Cause::BroadcastReceive => "drop the sender when done, or select on a shutdown signal",
            Cause::IntervalLoop | Cause::Sleep => {
                "stop the loop when its owner goes (not at its next tick): select! on a shutdown signal, or \
                 abort the JoinHandle on drop"
            }
            Cause::JoinHandle => "fix the awaited task first: this one only waits for it",
            Cause::IoRead | Cause::IoWrite => {
                "wrap the I/O in `tokio::time::timeout`, or cancel it when the peer goes away"
            }
            Cause::Accept => "select! on a shutdown signal around `accept`",
            Cause::Select(_) => {
                "make at least one branch finish: close or signal the quit branch when the other side stops"
            }
            Cause::Running => {
                "give the loop an exit and yield (`yield_now`), or move CPU work to `spawn_blocking` with a stop flag"
            }
            Cause::Untraced => {
                "read the spawned code above: give an accept loop a shutdown signal, fix the wait inside a \
                 `FuturesUnordered`/`join_all`, or make the awaited future complete; or abort the task"
            }
            Cause::Unclassified => "read the stack: the innermost frame is what it waits for",
        }
    }

    /// Where the cause's leaky and fixed code are shown side by side.
    ///
    /// ```
    /// assert!(taskleak::report::Cause::Lock.docs().ends_with("/fixes/index.html#lock"));
    /// ```
    pub fn docs(&self) -> String {
        format!("{FIXES_PAGE}#{}", self.label())
    }

    /// Whether the task only waits on another task (so the other one is the
    /// root cause, when it leaked too).
    pub(crate) fn waits_on_another_task(&self) -> bool {
        matches!(self, Cause::JoinHandle | Cause::Lock)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phrase = match self {
            Cause::MpscReceive => "waiting to receive on an mpsc channel whose senders are still alive",
            Cause::MpscSend => "blocked sending on a full mpsc channel that nobody reads",
            Cause::Oneshot => "waiting on a oneshot whose sender is still alive and has not sent",
            Cause::Notify => "waiting for a Notify that has not been notified",
            Cause::Barrier => "waiting at a Barrier for parties that have not arrived",
            Cause::Lock => "waiting for a Mutex/RwLock that is held and not released",
            Cause::Semaphore => "waiting for a Semaphore permit that is not released",
            Cause::WatchChange => "waiting for a change on a watch channel whose sender is still alive",
            Cause::BroadcastReceive => "waiting to receive on a broadcast channel whose senders are still alive",
            Cause::IntervalLoop => "waiting for its interval's next tick",
            Cause::Sleep => "sleeping past the grace period",
            Cause::JoinHandle => "awaiting the JoinHandle of another task that has not ended",
            Cause::IoRead => "waiting to read from a socket or pipe",
            Cause::IoWrite => "blocked writing to a peer that is not reading",
            Cause::Accept => "waiting to accept a connection",
            Cause::Select(causes) => {
                let each: Vec<String> = causes.iter().map(ToString::to_string).collect();
                return write!(f, "blocked on every branch of a select!/join!: {}", each.join("; "));
            }
            Cause::Running => "running, never yielded",
            Cause::Untraced => "waiting on something tokio's task dump cannot see",
            Cause::Unclassified => "unclassified",
        };
        f.write_str(phrase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_a_distinct_label_and_a_section_on_the_fixes_page() {
        let page = include_str!("../../docs/fixes.md");
        let all = [
            Cause::MpscReceive,
            Cause::MpscSend,
            Cause::Oneshot,
            Cause::Notify,
            Cause::Barrier,
            Cause::Lock,
            Cause::Semaphore,
            Cause::WatchChange,
            Cause::BroadcastReceive,
            Cause::IntervalLoop,
            Cause::Sleep,
            Cause::JoinHandle,
            Cause::IoRead,
            Cause::IoWrite,
            Cause::Accept,
            Cause::Select(vec![]),
            Cause::Running,
            Cause::Untraced,
            Cause::Unclassified,
        ];
        let mut labels: Vec<_> = all.iter().map(Cause::label).collect();
        for label in &labels {
            assert!(
                page.contains(&format!("<a id=\"{label}\"></a>")),
                "docs/fixes.md has no section `{label}`"
            );
        }
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), all.len());
    }
}
