//! What a leaked task was doing when its check gave up on it.

/// What a leaked task was doing when the check gave up on it.
///
/// ```
/// # fn show(group: &taskleak::report::LeakGroup) {
/// match group.state() {
///     taskleak::report::TaskState::Waiting => println!("parked at an await"),
///     taskleak::report::TaskState::Running => println!("busy, never yields"),
///     other => println!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskState {
    /// Parked at the await points in its stack.
    Waiting,
    /// Parked, but tokio's task dump recorded no await point for it: it waits
    /// on something the dump cannot see — a `TcpListener::accept` (tokio's
    /// accept leaves no trace), a future inside `FuturesUnordered` or
    /// `join_all` (the dump does not enter them), or a future from outside
    /// tokio (`std::future::pending()`, another crate's primitive). The
    /// report's spawn-site source lines show what the task runs.
    WaitingUntraced,
    /// Inside one poll for the whole grace period: it never yields.
    Running,
    /// Alive, but its stack could not be taken; the reason says why.
    StackUnavailable(String),
}
