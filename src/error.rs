//! The crate's error type: bad input and misuse, each saying how to fix it.

use std::fmt;

/// Why taskleak could not do what was asked (as opposed to finding a leak,
/// which is a [`LeakReport`](crate::LeakReport)).
///
/// ```
/// let err = taskleak::Options::new().ignore_spawned_at("(").unwrap_err();
/// assert!(matches!(err, taskleak::Error::InvalidRegex { .. }));
/// println!("{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An ignore rule's regex does not compile.
    InvalidRegex {
        /// The option that was given the regex, e.g. `ignore_top_function`.
        option: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The regex engine's explanation.
        reason: String,
    },
    /// `ignore_dependency` was given something that is not a crate name.
    InvalidCrateName {
        /// The name as written.
        name: String,
    },
    /// A snapshot was requested outside a tokio runtime.
    NoRuntime,
    /// The tracker's hooks are not installed on the runtime being checked,
    /// so it would see no task at all.
    NotInstalled,
    /// A [`Monitor`](crate::Monitor) setting that cannot work.
    InvalidMonitor {
        /// What is wrong and what to give instead.
        reason: String,
    },
    /// A thread taskleak needs could not be started.
    Spawn {
        /// The thread's job.
        what: &'static str,
        /// The operating system's explanation.
        reason: String,
    },
    /// A running service's task dump could not be fetched or read
    /// (`taskleak::http::Remote`).
    Remote {
        /// The URL asked for.
        url: String,
        /// What went wrong, and what to check.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRegex { option, pattern, reason } => write!(
                f,
                "invalid regex for `{option}`: `{pattern}`: {reason}; fix the pattern (it is a `regex` crate pattern, searched unanchored)"
            ),
            Error::InvalidCrateName { name } => write!(
                f,
                "`ignore_dependency` takes a crate's name as Cargo.toml spells it (letters, digits, `-`, `_`), \
                 e.g. \"bb8\", not `{name}`"
            ),
            Error::NoRuntime => f.write_str(
                "no tokio runtime is running here; take the snapshot inside the runtime being checked (e.g. inside `block_on`)",
            ),
            Error::NotInstalled => f.write_str(
                "the tracker's task hooks are not installed on this runtime; call `Tracker::install(&mut builder)` before `builder.build()`",
            ),
            Error::InvalidMonitor { reason } => write!(f, "invalid monitor settings: {reason}"),
            Error::Spawn { what, reason } => write!(f, "could not start {what}: {reason}"),
            Error::Remote { url, reason } => write!(f, "could not read the task dump at {url}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}
