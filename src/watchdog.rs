//! The last-resort bound on a check: if a task holds the thread the check
//! runs on (a busy task on a current-thread runtime), report and exit the
//! process instead of hanging the test suite forever.

use std::io::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::Wake;
use std::time::{Duration, Instant};

use crate::timer;

/// Extra time allowed past the settle budget and the dump bound, for symbol
/// resolution on large test binaries (its first run can take seconds).
pub(crate) const GRACE: Duration = Duration::from_secs(10);

type Action = Box<dyn FnOnce() + Send>;

struct Alarm {
    action: Mutex<Option<Action>>,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        let action = self.action.lock().ok().and_then(|mut action| action.take());
        if let Some(action) = action {
            action();
        }
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
    let action: Action = Box::new(move || {
        let text = describe();
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{text}");
        let _ = stderr.flush();
        std::process::exit(101);
    });
    let alarm = Arc::new(Alarm {
        action: Mutex::new(Some(action)),
    });
    timer::wake_at(Instant::now() + limit, Arc::clone(&alarm).into());
    Watchdog { alarm }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Ok(mut action) = self.alarm.action.lock() {
            action.take();
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
