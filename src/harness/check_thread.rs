//! A test's check on a thread of its own, for a runtime that can move: a
//! task that never yields then holds that thread, not the test's, and the
//! test fails with a report while libtest goes on with the other tests.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::config::Options;
use crate::report::LeakReport;
use crate::tasks::Snapshot;
use crate::threads::CheckedThread;
use crate::threads::proc_threads;

/// How a check run off the test's thread ended.
#[derive(Debug)]
pub(crate) enum Checked {
    /// It finished: its report, and the runtime, back for the test to shut
    /// down.
    Finished(Option<LeakReport>, Runtime),
    /// It did not finish within its bound: what is known without it. The
    /// runtime stays with the thread a task holds, which is never joined.
    Abandoned(LeakReport),
    /// No thread could be started: the runtime, back for the caller to
    /// check on its own thread.
    NotStarted(Runtime),
}

/// What the check's thread sends back: the check's result (or its panic)
/// and the runtime.
type Finished = (Result<Option<LeakReport>, Box<dyn Any + Send>>, Runtime);

/// Runs `snapshot.check` on `runtime` from a new thread and waits `limit`
/// for it. To the code it runs — the tasks still alive after the body —
/// that thread looks like the test's: libtest's name for the test, the same
/// kernel name (the tag threads started there inherit), output captured as
/// the test's.
///
/// A panic of the check itself is resumed on the caller's thread.
pub(crate) fn check(runtime: Runtime, snapshot: &Snapshot, options: &Options, test: &str, limit: Duration) -> Checked {
    let (hand_over, runtime_in) = mpsc::sync_channel::<Runtime>(1);
    let (send_back, result) = mpsc::sync_channel::<Finished>(1);
    let kernel_name = proc_threads::current_name();
    let mut builder = std::thread::Builder::new();
    if let Some(name) = std::thread::current().name() {
        builder = builder.name(name.to_owned());
    }
    let (checked, settings, label) = (snapshot.clone(), options.clone(), test.to_owned());
    let spawned = builder.spawn(move || {
        // The runtime comes only once this thread is known to exist.
        let Ok(runtime) = runtime_in.recv() else { return };
        if let Some(name) = &kernel_name {
            let _ = proc_threads::set_current_name(name);
        }
        let _registered = CheckedThread::register();
        #[cfg(all(tokio_unstable, feature = "task-names"))]
        let _names = crate::tasks::capture_on_this_thread();
        let found = panic::catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(checked.check(&settings, Some(&label), || ()))
        }));
        let _ = send_back.send((found, runtime));
    });
    let Ok(thread) = spawned else {
        return Checked::NotStarted(runtime);
    };
    if let Err(mpsc::SendError(runtime)) = hand_over.send(runtime) {
        return Checked::NotStarted(runtime);
    }
    match result.recv_timeout(limit) {
        Ok((found, runtime)) => {
            // It has sent all it had: joined, it is gone before the thread
            // check lists threads.
            let _ = thread.join();
            match found {
                Ok(report) => Checked::Finished(report, runtime),
                Err(payload) => panic::resume_unwind(payload),
            }
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            // Panicked outside the check: nothing of taskleak's does.
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => panic!("taskleak: the check's thread ended without a result"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            let reason = format!(
                "the check could not finish within {} s: a task holds the thread the check runs on (it runs \
                 without yielding on a current-thread runtime); the runtime is left to it on a thread of its \
                 own, which keeps running, and the other tests go on",
                limit.as_secs()
            );
            Checked::Abandoned(snapshot.describe_blocked(options, Some(test), &reason, limit))
        }
    }
}
