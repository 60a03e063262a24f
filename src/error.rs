//! The crate's error type: bad input and misuse, each saying how to fix it.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why taskleak could not do what was asked (as opposed to finding a leak,
/// which is a [`LeakReport`](crate::LeakReport)).
///
/// ```
/// let err = taskleak::Options::new().ignore_spawned_at("(").unwrap_err();
/// assert!(matches!(err, taskleak::Error::InvalidRegex { .. }));
/// println!("{err}");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// An ignore rule's regex does not compile.
    InvalidRegex {
        /// The option that was given the regex, e.g. `ignore_top_function`.
        option: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The regex engine's explanation (also [`source`](StdError::source)).
        source: regex::Error,
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
    /// A [`Monitor`](crate::monitor::Monitor) setting that cannot work.
    InvalidMonitor {
        /// What is wrong and what to give instead.
        reason: String,
    },
    /// A thread taskleak needs could not be started.
    Spawn {
        /// The thread's job.
        what: &'static str,
        /// The operating system's refusal.
        source: Arc<io::Error>,
    },
    /// A running service's task dump could not be fetched or read
    /// (`taskleak::monitor::http::Remote`).
    Remote {
        /// The URL asked for.
        url: String,
        /// What went wrong, and what to check.
        reason: String,
        /// The underlying error, when there is one (a refused connection, a
        /// malformed JSON body).
        source: Option<Arc<dyn StdError + Send + Sync>>,
    },
    /// The crate's `taskleak.toml` (or the file `TASKLEAK_CONFIG` names)
    /// cannot be read or says something no check can do.
    Config {
        /// The file.
        path: PathBuf,
        /// The line the problem is on (from 1), when it is about one line.
        line: Option<usize>,
        /// What is wrong, and what to write instead.
        problem: String,
        /// The I/O error, when the file cannot be read.
        source: Option<Arc<io::Error>>,
    },
    /// A `TASKLEAK_*` environment variable holds a value it does not take.
    Environment {
        /// The variable, e.g. `TASKLEAK_MODE`.
        variable: &'static str,
        /// Its value, as set.
        value: String,
        /// What it takes instead.
        expected: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRegex { option, pattern, source } => write!(
                f,
                "invalid regex for `{option}`: `{pattern}`: {source}; fix the pattern (it is a `regex` crate pattern, searched unanchored)"
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
            Error::Spawn { what, source } => write!(f, "could not start {what}: {source}"),
            Error::Remote { url, reason, .. } => write!(f, "could not read the task dump at {url}: {reason}"),
            Error::Config { path, line: Some(line), problem, .. } => write!(f, "{}:{line}: {problem}", path.display()),
            Error::Config { path, line: None, problem, .. } => write!(f, "{}: {problem}", path.display()),
            Error::Environment { variable, value, expected } => write!(f, "{variable}={value:?} {expected}"),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::InvalidRegex { source, .. } => Some(source),
            Error::Spawn { source, .. } => Some(source.as_ref()),
            Error::Remote { source, .. } => source.as_deref().map(|source| source as &(dyn StdError + 'static)),
            Error::Config { source, .. } => source.as_deref().map(|source| source as &(dyn StdError + 'static)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_underlying_error_is_kept_as_the_source() {
        let unclosed = String::from("(");
        let regex = regex::Regex::new(&unclosed).expect_err("unclosed group");
        let error = Error::InvalidRegex {
            option: "ignore_top_function",
            pattern: "(".into(),
            source: regex.clone(),
        };
        assert_eq!(error.source().map(ToString::to_string), Some(regex.to_string()));
        let refused = Error::Spawn {
            what: "a thread",
            source: Arc::new(io::Error::new(io::ErrorKind::WouldBlock, "no more threads")),
        };
        assert_eq!(refused.to_string(), "could not start a thread: no more threads");
        assert!(refused.source().is_some());
        let config = Error::Config {
            path: "taskleak.toml".into(),
            line: Some(2),
            problem: "unknown key `max_retry`".into(),
            source: None,
        };
        assert_eq!(config.to_string(), "taskleak.toml:2: unknown key `max_retry`");
        assert!(config.source().is_none());
    }
}
