//! Bounded waits that need no tokio time driver: a delay future and a
//! timeout, served by one lazily started timer thread.
//!
//! Checks must work on runtimes built without `enable_time`, and their
//! bounds must hold in real time even when the test pauses tokio's clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

struct Timers {
    queue: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
}

struct Entry {
    deadline: Instant,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.deadline.cmp(&other.deadline)
    }
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<&'static Timers> = OnceLock::new();
    TIMERS.get_or_init(|| {
        let timers: &'static Timers = Box::leak(Box::new(Timers {
            queue: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        // Without this thread no wait of taskleak's could ever end: fail the
        // test loudly instead of hanging.
        if let Err(error) = std::thread::Builder::new()
            .name("taskleak-timer".into())
            .spawn(move || run(timers))
        {
            panic!("taskleak: cannot start its timer thread: {error}");
        }
        timers
    })
}

fn run(timers: &'static Timers) -> ! {
    let mut queue = timers.queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while queue.peek().is_some_and(|Reverse(entry)| entry.deadline <= now) {
            due.extend(queue.pop().map(|Reverse(entry)| entry.waker));
        }
        if !due.is_empty() {
            // Woken without the lock: a wake may take it again (a watchdog
            // whose exit runs a check that sets a timer).
            drop(queue);
            due.into_iter().for_each(Waker::wake);
            queue = timers.queue.lock().unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        queue = match queue.peek() {
            Some(Reverse(next)) => {
                let wait = next.deadline.saturating_duration_since(now);
                timers
                    .changed
                    .wait_timeout(queue, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => timers.changed.wait(queue).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Has the timer thread wake `waker` once `deadline` has passed.
pub(crate) fn wake_at(deadline: Instant, waker: Waker) {
    let timers = timers();
    timers
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Reverse(Entry { deadline, waker }));
    timers.changed.notify_one();
}

/// A future that completes once `duration` of real time has passed.
#[derive(Debug)]
pub(crate) struct Delay {
    deadline: Instant,
    /// The waker the timer thread holds, so a re-poll registers only when
    /// the task to wake has changed.
    registered: Option<Waker>,
}

pub(crate) fn delay(duration: Duration) -> Delay {
    Delay {
        deadline: Instant::now() + duration,
        registered: None,
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        if !self
            .registered
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()))
        {
            wake_at(self.deadline, cx.waker().clone());
            self.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Runs `future` for at most `limit`; `None` when the limit passed first.
pub(crate) async fn timeout<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut deadline = delay(limit);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        Pin::new(&mut deadline).poll(cx).map(|()| None)
    })
    .await
}

/// Waits until `deadline`, or until `early` completes if it does first;
/// `true` when `early` cut the wait short.
pub(crate) async fn until_or(deadline: Instant, early: impl Future<Output = ()>) -> bool {
    let mut early = std::pin::pin!(early);
    let mut until = Delay {
        deadline,
        registered: None,
    };
    std::future::poll_fn(|cx| {
        if early.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        Pin::new(&mut until).poll(cx).map(|()| false)
    })
    .await
}

/// Lets the runtime run other tasks for at least `duration` of real time.
/// Yields first, so that a current-thread runtime runs its ready tasks even
/// when `duration` has passed by the time the delay is polled.
pub(crate) async fn pause(duration: Duration) {
    tokio::task::yield_now().await;
    delay(duration).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_and_timeout_work_without_a_time_driver() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            let start = Instant::now();
            delay(Duration::from_millis(20)).await;
            assert!(start.elapsed() >= Duration::from_millis(20));
            assert_eq!(
                timeout(Duration::from_millis(10), std::future::pending::<()>()).await,
                None
            );
            assert_eq!(timeout(Duration::from_secs(5), async { 7 }).await, Some(7));
            let start = Instant::now();
            pause(Duration::from_micros(300)).await;
            assert!(
                start.elapsed() >= Duration::from_micros(300),
                "sub-millisecond pauses are real waits"
            );
        });
    }
}
