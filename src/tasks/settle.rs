//! The grace period: re-check for survivors with exponential backoff while
//! the runtime keeps running, so work that is about to end is not a leak.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::config::{FIRST_SLEEP, Options};
use crate::tasks::timer;

/// The least time between two early checks (see [`settle`]).
const EARLY_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// What was still alive when the retry budget ran out (or nothing).
#[derive(Debug)]
pub(crate) struct Settled<T> {
    pub(crate) survivors: Vec<T>,
    /// Re-checks made after the first check.
    pub(crate) retries: u32,
    pub(crate) waited: Duration,
}

/// Calls `survivors` until it returns nothing or `options.get_max_retries()`
/// re-checks have been made, pausing between them with sleeps that start at
/// [`FIRST_SLEEP`] and double up to `options.get_max_sleep()`.
///
/// `between` runs after each pause, before the re-check: the caller samples
/// what it needs to observe across the waits (e.g. which task is polled).
///
/// `ended` makes a future that completes when some task ends after it was
/// made: a pause is then cut short for an extra check, so a straggler passes
/// as soon as it ends, not at the next backoff step. Such checks are free:
/// they spend no retry and do not move the backoff, so a runtime busy ending
/// other tasks cannot shorten the grace period.
///
/// `before_waiting` runs once if the first look finds survivors.
pub(crate) async fn settle<T, E: Future<Output = ()>>(
    options: &Options,
    mut survivors: impl FnMut() -> Vec<T>,
    mut between: impl FnMut(),
    mut ended: impl FnMut() -> E,
    before_waiting: impl FnOnce(),
) -> Settled<T> {
    let start = Instant::now();
    let mut sleep = FIRST_SLEEP;
    let mut retries = 0;
    let mut next_end = ended();
    let mut left = survivors();
    if !left.is_empty() {
        // Whatever the retry budget: even with none, the check goes on to
        // dump stacks, which yields to the runtime.
        before_waiting();
    }
    while !left.is_empty() && retries < options.get_max_retries() {
        tokio::task::yield_now().await;
        let deadline = Instant::now() + sleep;
        loop {
            let cut_short = timer::until_or(deadline, next_end).await;
            next_end = ended();
            if !cut_short || Instant::now() >= deadline {
                break;
            }
            left = survivors();
            if left.is_empty() {
                return Settled {
                    survivors: left,
                    retries,
                    waited: start.elapsed(),
                };
            }
            // Tasks the test spawned may be ending in a stream: re-check at
            // most once a millisecond, and let the runtime run meanwhile.
            timer::pause(EARLY_CHECK_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
        between();
        sleep = (sleep * 2).min(options.get_max_sleep());
        retries += 1;
        left = survivors();
    }
    Settled {
        survivors: left,
        retries,
        waited: start.elapsed(),
    }
}

/// The longest a full settle can take with these options (pauses only),
/// for bounding the watchdog.
pub(crate) fn budget(options: &Options) -> Duration {
    let mut total = Duration::ZERO;
    let mut sleep = FIRST_SLEEP;
    for _ in 0..options.get_max_retries() {
        total += sleep.max(Duration::from_millis(1));
        sleep = (sleep * 2).min(options.get_max_sleep());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budget_is_well_under_a_second() {
        let budget = budget(&Options::new());
        assert!(budget > Duration::from_millis(300), "{budget:?}");
        assert!(budget < Duration::from_millis(800), "{budget:?}");
    }

    #[test]
    fn stops_as_soon_as_nothing_survives_and_counts_retries() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let mut calls = 0;
        let settled = runtime.block_on(settle(
            &Options::new(),
            || {
                calls += 1;
                if calls < 4 { vec![()] } else { vec![] }
            },
            || {},
            std::future::pending::<()>,
            || {},
        ));
        assert!(settled.survivors.is_empty());
        assert_eq!(settled.retries, 3);
    }

    #[test]
    fn survivors_are_guarded_even_with_no_retry_to_spend() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let mut armed = false;
        let options = Options::new().max_retries(0);
        let settled = runtime.block_on(settle(
            &options,
            || vec![1],
            || {},
            std::future::pending::<()>,
            || armed = true,
        ));
        assert_eq!(settled.retries, 0);
        assert!(armed, "the watchdog must be armed before the dump that follows");
    }

    #[test]
    fn gives_up_after_the_retry_budget() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let options = Options::new().max_retries(5).max_sleep(Duration::from_millis(2));
        let settled = runtime.block_on(settle(&options, || vec![1], || {}, std::future::pending::<()>, || {}));
        assert_eq!(settled.survivors, vec![1]);
        assert_eq!(settled.retries, 5);
    }
}
