//! Who else may be starting threads while a test is checked: each checked
//! test marks the threads it starts, `serial` ones take turns, and a thread
//! no test can be tied to is judged only when no other test can be running
//! alongside.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::threads::proc_threads;

/// How the test process runs its tests, as far as thread checks care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Runner {
    /// One test at a time in this process (nextest, `--test-threads=1`).
    OneTestAtATime(&'static str),
    /// libtest running up to this many tests at once on threads.
    Concurrent(usize),
}

/// Reads how libtest was asked to run: `--test-threads`, then
/// `RUST_TEST_THREADS`, then the machine's parallelism (libtest's default).
/// nextest runs each test in a process of its own, as `--exact <name>`.
pub(crate) fn runner() -> Runner {
    // Read once: the arguments and libtest's setting do not change.
    static RUNNER: std::sync::OnceLock<Runner> = std::sync::OnceLock::new();
    RUNNER
        .get_or_init(|| {
            runner_from(
                std::env::args().skip(1),
                |name| std::env::var(name).ok(),
                || std::thread::available_parallelism().map_or(1, usize::from),
            )
        })
        .clone()
}

fn runner_from(
    args: impl Iterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
    parallelism: impl FnOnce() -> usize,
) -> Runner {
    // No trust in nextest's environment variables: a test binary started
    // from inside a nextest test inherits them. nextest runs each test
    // with `--exact <name>`, which says the same for sure.
    // libtest's options that take a value as the next argument.
    const VALUED: &[&str] = &[
        "--test-threads",
        "--skip",
        "--format",
        "--logfile",
        "--color",
        "-Z",
        "--shuffle-seed",
    ];
    let mut args = args.peekable();
    let mut threads = None;
    let (mut exact, mut filters) = (false, 0);
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--test-threads=") {
            threads = value.parse().ok();
        } else if arg == "--test-threads" {
            threads = args.next().and_then(|value| value.parse().ok());
        } else if VALUED.contains(&arg.as_str()) {
            args.next();
        } else if arg == "--exact" {
            exact = true;
        } else if !arg.starts_with('-') {
            filters += 1;
        }
    }
    if exact && filters == 1 {
        return Runner::OneTestAtATime("libtest runs a single test (`--exact` and one name)");
    }
    let threads = threads
        .or_else(|| env("RUST_TEST_THREADS")?.trim().parse().ok())
        .unwrap_or_else(parallelism);
    if threads <= 1 {
        Runner::OneTestAtATime("libtest runs one test at a time (`--test-threads=1`)")
    } else {
        Runner::Concurrent(threads)
    }
}

/// Serial checked tests started and not yet finished (waiting for their
/// turn or running).
static SERIAL_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The threads thread-checked tests in flight run on: started by libtest,
/// never a leak.
static CHECKED_THREADS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Whether `tid` is the thread of a checked test in flight.
pub(crate) fn is_checked_test_thread(tid: i32) -> bool {
    CHECKED_THREADS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains(&tid)
}

/// How long a serial test waits, with its turn, for libtest to start the
/// test after the one that just finished (a few hundred microseconds).
const REFILL_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Serializes serial checked tests: one never sees another's threads.
static TURN: Mutex<()> = Mutex::new(());

/// A thread-checked test's place among those in flight, and for a `serial`
/// one its turn. Dropped, it leaves the count before it lets the next
/// serial test go, so the next one never counts it.
#[derive(Debug)]
pub(crate) struct Turn {
    thread: Option<CheckedThread>,
    held: Option<MutexGuard<'static, ()>>,
}

/// The calling thread, registered as one a checked test runs on (its own,
/// or the one its check runs on) until dropped: never a leak, for that
/// test or any other. A thread that never gets to drop it (a check
/// abandoned to a task that never yields) stays registered for good.
#[derive(Debug)]
pub(crate) struct CheckedThread {
    tid: i32,
}

impl CheckedThread {
    pub(crate) fn register() -> Self {
        let tid = proc_threads::current_tid();
        CHECKED_THREADS.lock().unwrap_or_else(PoisonError::into_inner).push(tid);
        CheckedThread { tid }
    }
}

impl Drop for CheckedThread {
    fn drop(&mut self) {
        let mut threads = CHECKED_THREADS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = threads.iter().position(|tid| *tid == self.tid) {
            threads.swap_remove(at);
        }
    }
}

impl Turn {
    /// Registers the test's thread; a `serial` test then waits until no
    /// other serial test runs. Unbounded, as a test's own run is: it ends
    /// when the test before it ends.
    pub(crate) fn wait(serial: bool) -> Self {
        let thread = CheckedThread::register();
        let held = serial.then(|| {
            SERIAL_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
            // A test that panicked while holding the turn poisons nothing.
            TURN.lock().unwrap_or_else(PoisonError::into_inner)
        });
        Turn {
            thread: Some(thread),
            held,
        }
    }

    /// Whether no test that could start threads runs alongside: libtest
    /// runs one test at a time, or this serial test holds its turn and
    /// every test libtest is running is a serial one — all the others wait
    /// for the turn and cannot finish, so libtest starts no other test
    /// until this one is done.
    pub(crate) fn alone(&self, runner: &Runner) -> bool {
        match runner {
            Runner::OneTestAtATime(_) => true,
            Runner::Concurrent(threads) => self.held.is_some() && SERIAL_IN_FLIGHT.load(Ordering::SeqCst) >= *threads,
        }
    }

    /// Like [`Turn::alone`], for a serial test that just got its turn: the
    /// test before it has just left, and libtest starts the next one a
    /// moment later. While this turn is held the count can only grow, so
    /// waiting a bounded while for it is enough.
    pub(crate) fn alone_after_refill(&self, runner: &Runner) -> bool {
        let deadline = std::time::Instant::now() + REFILL_WAIT;
        loop {
            if self.alone(runner) {
                return true;
            }
            if self.held.is_none() || std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Before the turn passes on: the next serial test must not count
        // this one.
        drop(self.thread.take());
        if let Some(held) = self.held.take() {
            SERIAL_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            // Only now: the serial test waking up must not count this one.
            drop(held);
        }
    }
}

/// Whether threads can be listed in this process; why not, if not.
pub(crate) fn threads_checkable() -> Result<(), String> {
    static CHECKABLE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECKABLE.get_or_init(|| proc_threads::ids().map(drop)).clone()
}

/// Writes `message` once per process (each distinct message once) to the
/// process's own stderr, which libtest does not capture: a passing test
/// shows it too.
pub(crate) fn say_once(message: &str) {
    use std::io::Write;
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(PoisonError::into_inner);
    if !said.iter().any(|earlier| earlier == message) {
        said.push(message.to_owned());
        let _ = writeln!(std::io::stderr().lock(), "{message}");
    }
}

/// Renames the test's thread, for the kernel only, to a name no other test
/// has: threads it starts without a name of their own inherit it, which
/// ties them to this test through any chain of such spawns. The old name
/// comes back on drop. (Panic messages use Rust's name, which is unchanged.)
#[derive(Debug)]
pub(crate) struct OwnerTag {
    tag: Option<String>,
    previous: Option<String>,
}

/// The number of the next tag handed out in this process.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// The tag's start: `tl`, its number, `~`.
const TAG_PREFIX: &str = "tl";

/// Whether `kernel_name` is the tag of some checked test of this process:
/// `tl`, a number handed out already, `~`. Read from the name, not looked
/// up, as checks run on every test. (A thread a test names so itself
/// would pass for another test's.)
pub(crate) fn is_issued_tag(kernel_name: &str) -> bool {
    kernel_name
        .strip_prefix(TAG_PREFIX)
        .and_then(|rest| rest.split_once('~'))
        // Digits only: `parse` would take a sign too.
        .filter(|(number, _)| number.bytes().all(|byte| byte.is_ascii_digit()))
        .and_then(|(number, _)| number.parse::<u64>().ok())
        .is_some_and(|number| number >= 1 && number < NEXT_TAG.load(Ordering::Relaxed))
}

impl OwnerTag {
    pub(crate) fn mark(test: &str) -> Self {
        let previous = proc_threads::current_name();
        // libtest's name for the test: what threads its thread starts
        // unnamed outside the mark carry, never a name of their own.
        crate::libtest::record_test_thread(previous.clone());
        // The kernel keeps 15 bytes: a unique number, then what fits of the
        // test's own name for whoever reads `top -H`.
        let mut tag = format!("{TAG_PREFIX}{}~", NEXT_TAG.fetch_add(1, Ordering::Relaxed));
        let short = test.rsplit("::").next().unwrap_or(test);
        tag.extend(
            short
                .chars()
                .take_while(char::is_ascii)
                .take(15usize.saturating_sub(tag.len())),
        );
        let tag = proc_threads::set_current_name(&tag).ok().map(|()| tag);
        OwnerTag { tag, previous }
    }

    /// The kernel name threads of this test inherit, if the rename worked.
    pub(crate) fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
}

impl Drop for OwnerTag {
    fn drop(&mut self) {
        if let (Some(_), Some(previous)) = (&self.tag, &self.previous) {
            let _ = proc_threads::set_current_name(previous);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(args: &[&str], env: &[(&str, &str)]) -> Runner {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        runner_from(
            args.iter().map(|arg| arg.to_string()),
            |name| env.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()),
            || 8,
        )
    }

    #[test]
    fn libtest_concurrency_comes_from_args_then_env_then_the_machine() {
        assert_eq!(runner(&[], &[]), Runner::Concurrent(8));
        assert_eq!(
            runner(&["--test-threads=3"], &[("RUST_TEST_THREADS", "1")]),
            Runner::Concurrent(3)
        );
        assert!(matches!(
            runner(&["--test-threads", "1"], &[]),
            Runner::OneTestAtATime(_)
        ));
        assert!(matches!(
            runner(&["filter"], &[("RUST_TEST_THREADS", "1")]),
            Runner::OneTestAtATime(_)
        ));
        // nextest's way to run one test; its environment alone proves nothing.
        assert!(matches!(
            runner(&["--exact", "t", "--nocapture"], &[]),
            Runner::OneTestAtATime(_)
        ));
        assert_eq!(
            runner(&[], &[("NEXTEST_EXECUTION_MODE", "process-per-test")]),
            Runner::Concurrent(8)
        );
        assert!(matches!(
            runner(&["--exact", "a::t", "--nocapture"], &[]),
            Runner::OneTestAtATime(_)
        ));
        assert_eq!(runner(&["--exact", "a::t", "b::t"], &[]), Runner::Concurrent(8));
        assert_eq!(runner(&["--skip", "x", "a::t"], &[]), Runner::Concurrent(8));
    }

    #[test]
    fn a_serial_test_is_alone_when_every_running_test_waits_for_its_turn() {
        let first = Turn::wait(true);
        let (entered, entered_rx) = std::sync::mpsc::channel();
        let second = std::thread::spawn(move || {
            let turn = Turn::wait(true);
            entered.send(()).expect("send");
            drop(turn);
        });
        // The second test is registered and waits for the turn.
        while SERIAL_IN_FLIGHT.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        assert!(
            entered_rx.try_recv().is_err(),
            "a serial test ran during another's turn"
        );
        assert!(first.alone(&Runner::Concurrent(2)));
        assert!(!first.alone(&Runner::Concurrent(3)), "a third test may be unchecked");
        assert!(
            !Turn::wait(false).alone(&Runner::Concurrent(2)),
            "not serial: never alone"
        );
        assert!(Turn::wait(false).alone(&Runner::OneTestAtATime("one")));
        drop(first);
        entered_rx.recv().expect("the second test runs once the first is done");
        second.join().expect("second");
        assert_eq!(SERIAL_IN_FLIGHT.load(Ordering::SeqCst), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn unnamed_threads_inherit_the_tag_and_the_name_comes_back() {
        std::thread::spawn(|| {
            let before = proc_threads::current_name();
            {
                let tag = OwnerTag::mark("module::a_rather_long_test_name");
                let tag = tag.tag().expect("renamed").to_owned();
                assert!(tag.starts_with("tl") && tag.len() <= 15, "{tag}");
                assert!(is_issued_tag(&tag), "{tag}");
                let inherited = std::thread::spawn(proc_threads::current_name).join().expect("child");
                assert_eq!(inherited.as_deref(), Some(tag.as_str()));
            }
            assert_eq!(proc_threads::current_name(), before);
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn only_names_shaped_as_a_tag_handed_out_are_tags() {
        let handed_out = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        assert!(is_issued_tag(&format!("tl{handed_out}~x")));
        assert!(is_issued_tag(&format!("tl{handed_out}~")));
        assert!(!is_issued_tag(&format!("tl{}~x", u64::MAX)), "not handed out yet");
        let signed = format!("tl+{handed_out}~x");
        for other in ["tl0~x", "tl~x", "tl12", "tokio-rt-worker", "tlx~", "", signed.as_str()] {
            assert!(!is_issued_tag(other), "{other}");
        }
    }
}
