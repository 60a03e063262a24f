//! The last-resort bound on a check: if a task holds the thread the check
//! runs on (a busy task on a current-thread runtime), report and exit the
//! process instead of hanging the test suite forever.

use std::io::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::Wake;
use std::time::{Duration, Instant};

use crate::tasks::timer;

/// Extra time allowed past the settle budget and the dump bound, for symbol
/// resolution on large test binaries (its first run can take seconds).
pub(crate) const GRACE: Duration = Duration::from_secs(10);

type Describe = Box<dyn FnOnce() -> String + Send>;

/// Shared by the timer thread (which may fire it) and the check (which
/// disarms it when it finishes).
struct Alarm {
    describe: Mutex<Option<Describe>>,
    /// Set when the check finished; checked again, under its lock, right
    /// before exiting, so a check that finished while the report was being
    /// written still wins.
    finished: Mutex<bool>,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        let describe = self.describe.lock().ok().and_then(|mut describe| describe.take());
        let Some(describe) = describe else { return };
        let text = describe();
        let finished = self.finished.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *finished {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{text}");
        let _ = stderr.flush();
        // Exits while holding `finished`: a check finishing now cannot
        // think it disarmed the watchdog.
        std::process::exit(101);
    }
}

/// Runs its action at the deadline unless dropped first.
pub(crate) struct Watchdog {
    alarm: Arc<Alarm>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watchdog")
    }
}

/// Arms a watchdog that, after `limit`, prints `describe()` straight to the
/// process's stderr (the test's captured output would never be shown) and
/// exits with libtest's failure code.
pub(crate) fn arm(limit: Duration, describe: impl FnOnce() -> String + Send + 'static) -> Watchdog {
    let alarm = Arc::new(Alarm {
        describe: Mutex::new(Some(Box::new(describe))),
        finished: Mutex::new(false),
    });
    timer::wake_at(Instant::now() + limit, Arc::clone(&alarm).into());
    Watchdog { alarm }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        *self
            .alarm
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        if let Ok(mut describe) = self.alarm.describe.lock() {
            describe.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_watchdog_never_fires() {
        // Firing would exit this test process with code 101 and fail the run.
        let watchdog = arm(Duration::from_millis(5), || "fired although disarmed".to_owned());
        drop(watchdog);
        std::thread::sleep(Duration::from_millis(30));
    }
}
