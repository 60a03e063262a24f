//! Every knob of a leak check, with its default next to it.

use std::fmt;
use std::time::Duration;

use regex::Regex;

use crate::error::Error;

/// See [`Options::DEFAULT_MAX_RETRIES`].
pub(crate) const DEFAULT_MAX_RETRIES: u32 = 20;

/// See [`Options::DEFAULT_MAX_SLEEP`].
pub(crate) const DEFAULT_MAX_SLEEP: Duration = Duration::from_millis(100);

/// See [`Options::FIRST_SLEEP`].
pub(crate) const FIRST_SLEEP: Duration = Duration::from_micros(1);

/// How long a task dump may take when a leaked task looks busy (it was
/// inside one poll across the last wait): long enough for a task that was
/// merely descheduled to yield, short for one that never will.
pub(crate) const SUSPECT_DUMP_TIMEOUT: Duration = Duration::from_millis(500);

/// See [`Options::DUMP_TIMEOUT`].
pub(crate) const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// The options of one leak check: retry budget and ignore rules.
///
/// The attribute's arguments map one to one onto these methods. Each
/// setting is set by a method of its name and read by `get_` and its name
/// (`max_retries` / `get_max_retries`), as `std::process::Command` does.
///
/// ```
/// use std::time::Duration;
///
/// let options = taskleak::Options::new()
///     .max_retries(30)
///     .max_sleep(Duration::from_millis(50))
///     .ignore_spawned_at(r"^/.*/\.cargo/registry/")?   // third-party spawns
///     .ignore_top_function(r"^hyper::")?;
/// assert_eq!(options.get_max_retries(), 30);
/// # Ok::<(), taskleak::Error>(())
/// ```
#[derive(Clone)]
pub struct Options {
    max_retries: u32,
    max_sleep: Duration,
    check_threads: bool,
    serial: bool,
    pub(crate) ignore: IgnoreRules,
}

impl Options {
    /// How many times the settle loop re-checks before judging (goleak's default).
    ///
    /// ```
    /// assert_eq!(taskleak::Options::new().get_max_retries(), taskleak::Options::DEFAULT_MAX_RETRIES);
    /// ```
    pub const DEFAULT_MAX_RETRIES: u32 = DEFAULT_MAX_RETRIES;

    /// The cap on the sleep between two re-checks. Sleeps start at
    /// [`Options::FIRST_SLEEP`] and double up to this, so the default budget is bounded by
    /// about 0.43 s of waiting for stragglers.
    ///
    /// ```
    /// assert_eq!(taskleak::Options::new().get_max_sleep(), taskleak::Options::DEFAULT_MAX_SLEEP);
    /// ```
    pub const DEFAULT_MAX_SLEEP: Duration = DEFAULT_MAX_SLEEP;

    /// The first sleep of the settle loop (goleak's). Sleeps are real time, on
    /// taskleak's own timer thread: tokio's timer cannot sleep under 1 ms.
    ///
    /// ```
    /// assert!(taskleak::Options::FIRST_SLEEP < taskleak::Options::DEFAULT_MAX_SLEEP);
    /// ```
    pub const FIRST_SLEEP: Duration = FIRST_SLEEP;

    /// How long a task dump may take before taskleak gives up on stacks.
    ///
    /// tokio documents that a dump never completes while a worker is blocked;
    /// past this bound the report is built from spawn sites alone.
    ///
    /// ```
    /// assert_eq!(taskleak::Options::DUMP_TIMEOUT, std::time::Duration::from_secs(2));
    /// ```
    pub const DUMP_TIMEOUT: Duration = DUMP_TIMEOUT;

    /// The defaults: [`Options::DEFAULT_MAX_RETRIES`] retries, sleeps capped at
    /// [`Options::DEFAULT_MAX_SLEEP`], no ignore rules.
    ///
    /// ```
    /// let options = taskleak::Options::new();
    /// assert_eq!(options.get_max_retries(), taskleak::Options::DEFAULT_MAX_RETRIES);
    /// ```
    pub fn new() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            max_sleep: DEFAULT_MAX_SLEEP,
            check_threads: true,
            serial: false,
            ignore: IgnoreRules::default(),
        }
    }

    /// How many times to re-check for survivors before reporting them.
    ///
    /// `0` judges right after the body, with no grace period at all: even a
    /// task the body just joined can still count, since tokio releases a
    /// finished task a moment after waking its `JoinHandle`.
    ///
    /// ```
    /// let options = taskleak::Options::new().max_retries(5);
    /// assert_eq!(options.get_max_retries(), 5);
    /// ```
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The cap on the sleep between two re-checks.
    ///
    /// ```
    /// use std::time::Duration;
    /// let options = taskleak::Options::new().max_sleep(Duration::from_millis(10));
    /// assert_eq!(options.get_max_sleep(), Duration::from_millis(10));
    /// ```
    pub fn max_sleep(mut self, max_sleep: Duration) -> Self {
        self.max_sleep = max_sleep;
        self
    }

    /// Ignores a task whose innermost stack frame (after runtime internals
    /// are collapsed: the tokio API it waits in, or your function when it is
    /// stuck outside tokio) matches `regex`. Needs `--cfg tokio_unstable`.
    ///
    /// The regex is searched, not anchored: use `^…$` for an exact match.
    ///
    /// ```
    /// let options = taskleak::Options::new().ignore_top_function(r"^tokio::time::")?;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRegex`] when `regex` does not compile.
    pub fn ignore_top_function(mut self, regex: &str) -> Result<Self, Error> {
        self.ignore.top_function.push(compile("ignore_top_function", regex)?);
        Ok(self)
    }

    /// Ignores a task with any stack frame whose function matches `regex`.
    /// Needs `--cfg tokio_unstable`.
    ///
    /// ```
    /// let options = taskleak::Options::new().ignore_any_function(r"my_pool::reaper")?;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRegex`] when `regex` does not compile.
    pub fn ignore_any_function(mut self, regex: &str) -> Result<Self, Error> {
        self.ignore.any_function.push(compile("ignore_any_function", regex)?);
        Ok(self)
    }

    /// Ignores a task whose spawn site, written `path:line:col` exactly as
    /// the report prints it before shortening (the compiler's path: relative
    /// for your workspace, absolute for registry crates), matches `regex`.
    /// Needs `--cfg tokio_unstable`.
    ///
    /// ```
    /// let options = taskleak::Options::new().ignore_spawned_at(r"src/metrics\.rs:")?;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRegex`] when `regex` does not compile.
    pub fn ignore_spawned_at(mut self, regex: &str) -> Result<Self, Error> {
        self.ignore.spawned_at.push(compile("ignore_spawned_at", regex)?);
        Ok(self)
    }

    /// Ignores everything the crate `name` spawns: tasks whose spawn site is
    /// in that crate's source (its package, wherever cargo has it: the
    /// registry, a git checkout, a path), and threads whose own function
    /// (the outermost frame of their stack) is that crate's. For a
    /// dependency's lingering background work — a pool's reaper, a client's
    /// connection task — that you do not own and cannot stop. `-` and `_`
    /// are the same (`"lingering-pool"` is the crate `lingering_pool`).
    ///
    /// Tasks need `--cfg tokio_unstable` (spawn sites); threads do not.
    ///
    /// ```
    /// let options = taskleak::Options::new().ignore_dependency("bb8")?;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCrateName`] when `name` is not a crate name.
    pub fn ignore_dependency(mut self, name: &str) -> Result<Self, Error> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid {
            return Err(Error::InvalidCrateName { name: name.to_owned() });
        }
        self.ignore.dependencies.push(name.replace('-', "_"));
        Ok(self)
    }

    /// Ignores a leaked thread whose name matches `regex`. The name is the
    /// kernel's: at most 15 bytes of the name given to
    /// `std::thread::Builder::name` (so `"my-background-poller"` is seen as
    /// `"my-background-p"`).
    ///
    /// ```
    /// let options = taskleak::Options::new().ignore_thread_name(r"^metrics-")?;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRegex`] when `regex` does not compile.
    pub fn ignore_thread_name(mut self, regex: &str) -> Result<Self, Error> {
        self.ignore.thread_name.push(compile("ignore_thread_name", regex)?);
        Ok(self)
    }

    /// Whether `#[verify_no_leaks]` checks threads as well as tasks (the
    /// default).
    ///
    /// ```
    /// let options = taskleak::Options::new().check_threads(false);
    /// assert!(!options.get_check_threads());
    /// ```
    pub fn check_threads(mut self, check: bool) -> Self {
        self.check_threads = check;
        self
    }

    /// Makes the test take turns with other `serial` thread-checked tests
    /// (off by default). While libtest runs tests in parallel, a leaked
    /// thread with a name of its own can be tied to its test only when no
    /// other test runs alongside: serial tests can tell when that is so
    /// (every test libtest is running is a serial one waiting for its
    /// turn), and judge such a thread instead of calling the check
    /// inconclusive. It costs the parallelism of those tests.
    ///
    /// ```
    /// let options = taskleak::Options::new().serial(true);
    /// assert!(options.get_serial());
    /// ```
    pub fn serial(mut self, serial: bool) -> Self {
        self.serial = serial;
        self
    }

    /// Whether the test takes turns; see [`Options::serial`].
    ///
    /// ```
    /// assert!(!taskleak::Options::new().get_serial());
    /// ```
    pub fn get_serial(&self) -> bool {
        self.serial
    }

    /// Whether threads are checked; see [`Options::check_threads`].
    ///
    /// ```
    /// assert!(taskleak::Options::new().get_check_threads());
    /// ```
    pub fn get_check_threads(&self) -> bool {
        self.check_threads
    }

    /// The configured retry count.
    ///
    /// ```
    /// assert_eq!(taskleak::Options::new().max_retries(3).get_max_retries(), 3);
    /// ```
    pub fn get_max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The configured cap on one sleep between re-checks.
    ///
    /// ```
    /// assert_eq!(taskleak::Options::new().get_max_sleep(), taskleak::Options::DEFAULT_MAX_SLEEP);
    /// ```
    pub fn get_max_sleep(&self) -> Duration {
        self.max_sleep
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("max_retries", &self.max_retries)
            .field("max_sleep", &self.max_sleep)
            .field("check_threads", &self.check_threads)
            .field("serial", &self.serial)
            .field("ignore", &self.ignore)
            .finish()
    }
}

/// The compiled ignore rules of one check.
#[derive(Clone, Default)]
pub(crate) struct IgnoreRules {
    pub(crate) top_function: Vec<Regex>,
    pub(crate) any_function: Vec<Regex>,
    pub(crate) spawned_at: Vec<Regex>,
    pub(crate) thread_name: Vec<Regex>,
    /// Crate names, `-` written `_`.
    pub(crate) dependencies: Vec<String>,
}

impl IgnoreRules {
    pub(crate) fn is_empty(&self) -> bool {
        self.top_function.is_empty()
            && self.any_function.is_empty()
            && self.spawned_at.is_empty()
            && self.thread_name.is_empty()
            && self.dependencies.is_empty()
    }

    /// Whether any rule needs a task's spawn site to decide (those are
    /// decided before any dump is taken).
    pub(crate) fn by_spawn_site(&self) -> bool {
        !self.spawned_at.is_empty() || !self.dependencies.is_empty()
    }

    /// Whether any rule needs a task's stack (and so a task dump) to decide.
    pub(crate) fn needs_stacks(&self) -> bool {
        !self.top_function.is_empty() || !self.any_function.is_empty()
    }

    /// Whether `ignore_dependency` rules are set (a thread's own function
    /// tells its crate, so they need its stack too).
    pub(crate) fn has_dependencies(&self) -> bool {
        !self.dependencies.is_empty()
    }
}

impl fmt::Debug for IgnoreRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns = |rules: &[Regex]| rules.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>();
        f.debug_struct("IgnoreRules")
            .field("top_function", &patterns(&self.top_function))
            .field("any_function", &patterns(&self.any_function))
            .field("spawned_at", &patterns(&self.spawned_at))
            .field("thread_name", &patterns(&self.thread_name))
            .field("dependencies", &self.dependencies)
            .finish()
    }
}

fn compile(option: &'static str, pattern: &str) -> Result<Regex, Error> {
    Regex::new(pattern).map_err(|source| Error::InvalidRegex {
        option,
        pattern: pattern.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_regex_names_the_option_and_pattern() {
        let err = Options::new().ignore_top_function("(unclosed").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ignore_top_function"), "{text}");
        assert!(text.contains("(unclosed"), "{text}");
    }

    #[test]
    fn rules_accumulate() {
        let options = Options::new()
            .ignore_spawned_at("a")
            .and_then(|o| o.ignore_spawned_at("b"))
            .expect("valid regexes");
        assert_eq!(options.ignore.spawned_at.len(), 2);
        assert!(!options.ignore.needs_stacks());
    }
}
