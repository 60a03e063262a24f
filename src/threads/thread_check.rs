//! Thread checks: the threads alive before a test, and after it the ones it
//! started that are still alive — settled, tied to the test, classified
//! from the kernel's view and their native stacks, filtered and grouped.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{FIRST_SLEEP, Options};
use crate::libtest::{is_inherited, is_main_thread_name, is_seen_test_thread};
use crate::model::source_root;
use crate::report::thread_report::{self, LeakedThread, ThreadKind, ThreadSection};
use crate::threads::describe::{Captured, MAX_CAPTURES, RuntimeRole, blocked_view, capture_stack, classify, is_gone};
use crate::threads::isolation::{OwnerTag, Runner, Turn, is_checked_test_thread, is_issued_tag};
use crate::threads::proc_threads::{self, KernelThread, ThreadKey};

/// How long after the body threads are judged by their stacks when rules
/// need them: a thread joined at the end of the body is gone by then, and
/// one still alive is worth a capture (taskleak signals it once).
const EARLY_JUDGEMENT: Duration = Duration::from_millis(2);

/// The name of taskleak's own timer thread, never a test's.
const OWN_TIMER_THREAD: &str = "taskleak-timer";

/// The kernel names tokio gives its threads: `tokio-rt-worker`, and 15
/// bytes of `tokio-runtime-worker` before tokio 1.50.
const TOKIO_THREADS: [&str; 2] = ["tokio-rt-worker", "tokio-runtime-w"];

/// The threads of the test's own tokio runtime, recorded as each starts.
/// A list: a runtime has a few, and a hash set would cost each new test
/// thread a `getrandom` call for its keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct RuntimeThreads(Arc<Mutex<Vec<i32>>>);

impl RuntimeThreads {
    /// Call on each runtime thread as it starts (`on_thread_start`).
    pub(crate) fn record_current(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(proc_threads::current_tid());
    }

    pub(crate) fn contains(&self, tid: i32) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).contains(&tid)
    }
}

/// The threads alive before a test body, with what it takes to tie the
/// threads started after to the test. Holds the test's place among
/// thread-checked tests (its turn, if `serial`), and its thread's kernel
/// name, until dropped.
#[derive(Debug)]
pub(crate) struct ThreadSnapshot {
    /// What tells the threads started since the snapshot from the others.
    before: Before,
    own_tid: i32,
    tag: Option<OwnerTag>,
    /// Whether no unchecked test can start a thread during this test.
    alone: bool,
    runner: Runner,
    /// The test's path, as libtest names its thread.
    test: String,
    /// Threads of a runtime the test shares with others: never judged here.
    shared: Option<RuntimeThreads>,
    // Last: released after the name is restored.
    _turn: Option<Turn>,
}

/// The most pids handed out since a snapshot that are looked up one by
/// one: past that, one listing of the process's threads costs less.
const PROBES: usize = 16;

/// What tells the threads started since a snapshot from those alive
/// before it.
#[derive(Debug)]
enum Before {
    /// The ids of every thread alive then, listed.
    Listed(HashSet<i32>),
    /// Nothing listed: the kernel's last-handed-out pid then, and the clock
    /// tick it was read in. A thread started since has a pid handed out
    /// since, and started no earlier than that tick. A thread alive before
    /// can hold such a pid only if the kernel has wrapped around `pid_max`
    /// since it started; its start time rules it out.
    Since { last_pid: i32, tick: u64 },
}

impl Before {
    /// The cheapest snapshot that works here; `None` when threads cannot
    /// be listed.
    fn now() -> Option<Self> {
        // The tick first: a thread with a pid handed out after the read
        // below started after it.
        if let Some(tick) = proc_threads::boot_ticks()
            && let Some(last_pid) = proc_threads::last_pid()
        {
            return Some(Before::Since { last_pid, tick });
        }
        Some(Before::Listed(proc_threads::ids().ok()?.into_iter().collect()))
    }

    /// Ids of threads that may have started since, some of them perhaps
    /// not this process's or already gone: with no pid handed out since,
    /// none; with a few, those of them this process has a thread for;
    /// otherwise the listed threads with such pids.
    fn started_since(&self) -> Vec<i32> {
        let listed = || proc_threads::ids().unwrap_or_default();
        match self {
            Before::Listed(before) => listed().into_iter().filter(|tid| !before.contains(tid)).collect(),
            Before::Since { last_pid, .. } => match proc_threads::last_pid() {
                Some(now) if now == *last_pid => Vec::new(),
                Some(now) => match proc_threads::handed_out(*last_pid, now, PROBES) {
                    // Mostly other processes' pids, or threads gone already.
                    Some(pids) => pids
                        .into_iter()
                        .filter(|tid| proc_threads::has_thread(*tid) != Ok(false))
                        .collect(),
                    None => {
                        let handed_out = |tid: &i32| proc_threads::is_handed_out(*tid, *last_pid, now);
                        listed().into_iter().filter(handed_out).collect()
                    }
                },
                // Unreadable since: every thread, judged by start time.
                None => listed(),
            },
        }
    }

    /// Whether `thread`, one of [`Before::started_since`], started after
    /// the snapshot rather than holding a pid from before a wrap.
    fn started_since_snapshot(&self, thread: &KernelThread) -> bool {
        match self {
            Before::Listed(_) => true,
            Before::Since { tick, .. } => thread.key.started >= *tick,
        }
    }
}

impl ThreadSnapshot {
    /// Waits for the test's turn if it is `serial`, marks the test's thread
    /// (see [`OwnerTag`]) and notes what tells the threads started from now
    /// on from the others ([`Before`]). `None`, said once on stderr, where
    /// threads cannot be listed.
    pub(crate) fn begin(test: &str, serial: bool) -> Option<Self> {
        if let Err(reason) = crate::threads::isolation::threads_checkable() {
            crate::threads::isolation::say_once(&format!(
                "taskleak: threads are not checked in this process: {reason}"
            ));
            return None;
        }
        let turn = Turn::wait(serial);
        let runner = crate::threads::isolation::runner();
        let tag = OwnerTag::mark(test);
        let before = Before::now()?;
        Some(ThreadSnapshot {
            before,
            own_tid: proc_threads::current_tid(),
            tag: Some(tag),
            alone: turn.alone_after_refill(&runner),
            runner,
            test: test.to_owned(),
            shared: None,
            _turn: Some(turn),
        })
    }

    /// A snapshot of a whole process, judged when nothing else runs: every
    /// thread started since `before` and still alive is a leak. Taken on
    /// the thread that checks.
    pub(crate) fn of_process(before: HashSet<i32>, reason: &'static str) -> Self {
        ThreadSnapshot {
            before: Before::Listed(before),
            own_tid: proc_threads::current_tid(),
            tag: None,
            alone: true,
            runner: Runner::OneTestAtATime(reason),
            test: String::new(),
            shared: None,
            _turn: None,
        }
    }

    /// Leaves the threads of a runtime the test shares with others out of
    /// the check: they serve every test, and signalling one could disturb
    /// another test's blocking work.
    pub(crate) fn exclude_shared(&mut self, threads: RuntimeThreads) {
        self.shared = Some(threads);
    }

    /// The kernel name the test's threads inherit: give it to the threads
    /// of the test's runtime too, so that threads they start carry it.
    pub(crate) fn tag(&self) -> Option<&str> {
        self.tag.as_ref().and_then(OwnerTag::tag)
    }

    /// Waits for threads started since the snapshot to end, within the
    /// options' retry budget, then describes those still alive. `runtime`
    /// holds the threads of the test's runtime, already shut down.
    ///
    /// With rules that need a thread's stack (function rules, dependencies),
    /// the test's own threads still alive [`EARLY_JUDGEMENT`] after the body
    /// are captured then, once: those a rule ignores (or that are a
    /// runtime's idle threads) are no longer waited for, so the rest of the
    /// grace period waits only for the others. An ignored thread passes
    /// whether it would have ended or not, so judging it early changes no
    /// verdict; the stack captured then is the one reported.
    pub(crate) fn check(&self, options: &Options, runtime: &RuntimeThreads) -> ThreadSection {
        let mut findings = ThreadSection::default();
        let start = Instant::now();
        let mut sleep = FIRST_SLEEP;
        // Read only to describe a thread that survived.
        let cwd = std::cell::OnceCell::new();
        let cwd = || cwd.get_or_init(source_root).as_deref();
        let mut captures = 0;
        // Judged early: not leaks (`None`), or leaks described then.
        // Ordered, not hashed: a hash map would cost each test thread a
        // `getrandom` call for its keys.
        let mut early: BTreeMap<ThreadKey, Option<(LeakedThread, bool)>> = BTreeMap::new();
        let mut judge_early = options.ignore.needs_stacks() || options.ignore.has_dependencies();
        let mut left = self.fresh(options);
        while !left.is_empty() && findings.retries < options.get_max_retries() {
            // A sleep this short would take the timer slack (50 µs) anyway;
            // a joined thread's last moments need only a yield.
            if sleep < Duration::from_micros(50) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(sleep);
            }
            sleep = (sleep * 2).min(options.get_max_sleep());
            findings.retries += 1;
            left = self.fresh(options);
            if judge_early && start.elapsed() >= EARLY_JUDGEMENT {
                judge_early = false;
                for thread in left.iter().filter(|thread| self.owns(thread, runtime)) {
                    let judged = self
                        .describe(thread.clone(), runtime, self.alone, &mut captures, cwd(), &mut findings)
                        .filter(|(described, _)| !options.ignore.ignores_thread(&described.name, &described.stack));
                    early.insert(thread.key, judged);
                }
            }
            left.retain(|thread| !matches!(early.get(&thread.key), Some(None)));
        }
        findings.waited = start.elapsed();
        if left.is_empty() {
            return findings;
        }

        // A filter may leave this test the only one libtest runs: then no
        // other test can have started these threads. Listed only now, when
        // a thread is left that nothing else ties to the test.
        let count = match (self.alone, &self.runner) {
            (false, Runner::Concurrent(_)) => crate::libtest::tests_in_process(&self.test),
            _ => None,
        };
        let alone = self.alone || count == Some(1);
        let mut leaked = Vec::new();
        let mut unattributed = Vec::new();
        let mut unjudged = 0;
        for thread in left {
            if self.tag().is_some() && self.is_other_tests(&thread.name) {
                continue;
            }
            let described = match early.remove(&thread.key) {
                Some(judged) => judged,
                None => self.describe(thread, runtime, alone, &mut captures, cwd(), &mut findings),
            };
            let Some((described, owned)) = described else {
                continue;
            };
            if options.ignore.ignores_thread(&described.name, &described.stack) {
                continue;
            }
            if owned && described.stack.is_empty() && options.ignore.needs_stacks() {
                unjudged += 1;
            }
            if owned {
                leaked.push(described)
            } else {
                unattributed.push(described)
            }
        }
        if unjudged > 0 {
            findings.notes.push(format!(
                "{unjudged} thread(s) could not be matched against the function ignore rules without a stack"
            ));
        }
        if !unattributed.is_empty() {
            findings.inconclusive = Some(inconclusive_reason(&self.test, &self.runner, count));
        }
        findings.leaked = thread_report::group(leaked);
        findings.unattributed = thread_report::group(unattributed);
        findings
    }

    /// Threads started since the snapshot that are still alive, other than
    /// the test's own thread, checked tests' threads, taskleak's, and those
    /// ignored by name.
    fn fresh(&self, options: &Options) -> Vec<KernelThread> {
        self.before
            .started_since()
            .into_iter()
            .filter(|tid| {
                *tid != self.own_tid
                    && !is_checked_test_thread(*tid)
                    && !self.shared.as_ref().is_some_and(|shared| shared.contains(*tid))
            })
            // Only new threads are read: a clean test reads no thread's file.
            .filter_map(proc_threads::read)
            .filter(|thread| {
                self.before.started_since_snapshot(thread)
                    && thread.name != OWN_TIMER_THREAD
                    && !is_gone(thread.state)
                    // Another checked test's (or what it left behind).
                    && (self.tag() == Some(thread.name.as_str()) || !is_issued_tag(&thread.name))
                    // Started unnamed by a checked test's thread outside its mark.
                    && (self.tag().is_none() || !is_seen_test_thread(&thread.name))
                    && !options.ignore.ignores_thread_name(&self.own_name(&thread.name, false).0)
            })
            .collect()
    }

    /// Whether a thread's kernel name is one another test's thread gave it:
    /// libtest's name for a test (started unnamed by a test's thread while
    /// it was not marked, so not during this test's body), or another
    /// checked test's mark.
    fn is_other_tests(&self, kernel_name: &str) -> bool {
        self.tag() != Some(kernel_name)
            && (is_issued_tag(kernel_name) || (is_inherited(kernel_name) && !is_main_thread_name(kernel_name)))
    }

    /// Whether the thread is tied to this test: its runtime's, carrying its
    /// mark, or started while no other test could run.
    fn owns(&self, thread: &KernelThread, runtime: &RuntimeThreads) -> bool {
        runtime.contains(thread.key.tid) || self.tag() == Some(thread.name.as_str()) || self.alone
    }

    /// A thread's own name, and the kernel name it inherited instead when
    /// that says something: none for the test's mark, libtest's test name
    /// or the main thread's name for a thread started from those. `listed`
    /// also asks libtest for the binary's test names (once per process).
    fn own_name(&self, kernel_name: &str, listed: bool) -> (String, Option<String>) {
        let inherited = || {
            if listed {
                is_inherited(kernel_name)
            } else {
                is_seen_test_thread(kernel_name) || is_main_thread_name(kernel_name)
            }
        };
        if self.tag() == Some(kernel_name) {
            (String::new(), None)
        } else if is_issued_tag(kernel_name) || inherited() {
            (String::new(), Some(kernel_name.to_owned()))
        } else {
            (kernel_name.to_owned(), None)
        }
    }

    /// Describes a surviving thread, and says whether it is the test's.
    /// `None` if it is a runtime's idle or worker thread, another checked
    /// test's, or it exited meanwhile.
    fn describe(
        &self,
        thread: KernelThread,
        runtime: &RuntimeThreads,
        alone: bool,
        captures: &mut usize,
        cwd: Option<&str>,
        // Notes, and the workers of runtimes taskleak does not watch.
        findings: &mut ThreadSection,
    ) -> Option<(LeakedThread, bool)> {
        let tid = thread.key.tid;
        if is_checked_test_thread(tid) {
            return None;
        }
        let ours_in_runtime = runtime.contains(tid);
        let owned = self.owns(&thread, runtime) || alone;
        // Only the test's own threads are signalled: another test's could
        // see an interrupted call fail.
        let capture = owned && *captures < MAX_CAPTURES;
        // Read before the capture, which wakes the thread for a moment.
        let (kernel, call) = if capture {
            blocked_view(tid)?
        } else {
            (proc_threads::read(tid)?, proc_threads::blocked_call(tid))
        };
        if is_gone(kernel.state) {
            return None;
        }
        let captured = if capture {
            *captures += 1;
            capture_stack(tid, kernel.state)
        } else if owned {
            Err(format!("only the first {MAX_CAPTURES} threads' stacks are captured"))
        } else {
            Err("not captured: the thread may be another test's".to_owned())
        };
        let Captured {
            stack,
            functions,
            stack_unavailable,
        } = Captured::from(captured, cwd)?;
        let role = RuntimeRole::of(&functions);
        let kind = match role {
            RuntimeRole::Worker if owned && !ours_in_runtime => {
                // A runtime of the test's own that taskleak did not build:
                // not a leak (its workers idle), but its tasks are unseen.
                findings.unwatched_runtime_workers.push(tid);
                return None;
            }
            RuntimeRole::Worker | RuntimeRole::Idle => return None,
            RuntimeRole::Blocking if ours_in_runtime => ThreadKind::TestRuntimeBlocking,
            // Between two closures, or exiting: the test's runtime is shut down.
            RuntimeRole::None if ours_in_runtime && stack_unavailable.is_none() => return None,
            RuntimeRole::None if ours_in_runtime => ThreadKind::TestRuntimeUnknown,
            RuntimeRole::None
                if owned
                    && !ours_in_runtime
                    && stack_unavailable.is_some()
                    && TOKIO_THREADS.contains(&thread.name.as_str()) =>
            {
                // Another runtime's thread, and no stack to tell busy from idle.
                findings.notes.push(format!(
                    "thread {tid} of another tokio runtime was not judged: without its stack, an idle \
                     thread cannot be told from one running a `spawn_blocking` closure"
                ));
                return None;
            }
            _ => ThreadKind::Plain,
        };
        let state = classify(kernel.state, call, &functions, proc_threads::peer_closed_sockets);
        let (name, inherited_name) = self.own_name(&kernel.name, true);
        let leaked = LeakedThread {
            tid,
            name,
            inherited_name,
            state,
            stack,
            stack_unavailable,
            kind,
        };
        Some((leaked, owned))
    }
}

/// Why threads no test could be tied to are not judged, claiming no more
/// than is known: how many tests this process runs only when listed.
fn inconclusive_reason(test: &str, runner: &Runner, count: Option<usize>) -> String {
    let others = match (runner, count) {
        (Runner::Concurrent(threads), Some(count)) => {
            format!(
                "libtest runs {count} tests in this process, up to {} at once",
                (*threads).min(count)
            )
        }
        // Not listed: how many of them match its filters is not known.
        _ => "libtest may run other tests at the same time in this process".to_owned(),
    };
    format!(
        "{others}, and nothing ties these threads to this test (a thread started without a name inherits \
         the test's mark; these were named, or started by a thread that was); their stacks were not \
         captured, so as not to disturb another test. For an exact result run the test alone \
         (`cargo test -- --exact {test}`), `cargo taskleak` (it re-runs it alone) or `cargo nextest run`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parks for the life of the process, as a shared fixture's thread.
    #[inline(never)]
    fn lingering_fixture_thread() {
        loop {
            std::thread::park();
        }
    }

    /// A thread a function rule ignores is judged from its stack 2 ms after
    /// the body, not after the whole grace period.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_function_rule_ignores_a_lingering_thread_without_waiting_out_the_grace_period()
    -> Result<(), crate::error::Error> {
        let options = Options::new()
            .max_retries(40)
            .max_sleep(Duration::from_millis(200))
            .ignore_any_function("lingering_fixture_thread")?;
        let finding = std::thread::spawn(move || {
            let snapshot = ThreadSnapshot::begin("tests::lingering", false)?;
            std::thread::spawn(lingering_fixture_thread);
            Some(snapshot.check(&options, &RuntimeThreads::default()))
        })
        .join()
        .expect("the check's thread");
        // No stacks here (old glibc, musl): nothing to judge early.
        let Some(found) = finding.filter(|found| !found.notes.iter().any(|note| note.contains("stack"))) else {
            return Ok(());
        };
        assert!(found.leaked.is_empty(), "{:?}", found.leaked);
        // Judged early and no longer waited for: the grace period stopped
        // short of its 40 retries (about 4.5 s). Counted, not timed: the
        // capture's symbolization takes seconds on a loaded machine.
        assert!(
            found.retries < 40,
            "{} retries, waited {:?}",
            found.retries,
            found.waited
        );
        Ok(())
    }
}
