//! The live-task monitor for running services: samples task and thread
//! counts, keeps a short history, and reports sustained growth.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::error::Error;

/// The callback [`MonitorBuilder::on_growth`] takes.
type OnGrowth = Arc<dyn Fn(&Growth) + Send + Sync>;

/// Watches a runtime's live tasks (and the process's threads) from a thread
/// of its own and reports sustained growth — the shape of a leak — through
/// `tracing` (a `warn` event, target `taskleak::monitor`) and an optional
/// callback. Stops, and joins its thread, when dropped.
///
/// Growth is judged on the *floor* of the count: the window is cut into
/// four quarters, and the count grows when each quarter's lowest sample is
/// above the one before and the last is at least
/// [`min_growth`](MonitorBuilder::min_growth) above the first. Bursts of
/// load raise the peaks; a leak raises the floor.
///
/// ```
/// use std::time::Duration;
///
/// let runtime = tokio::runtime::Runtime::new()?;
/// let monitor = taskleak::monitor::Monitor::builder(runtime.handle())
///     .interval(Duration::from_secs(10))
///     .window(Duration::from_secs(600))
///     .min_growth(100)
///     .on_growth(|growth| eprintln!("{growth}"))
///     .start()?;
/// // … serve …
/// println!("{:?}", monitor.latest());
/// drop(monitor); // stops sampling
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// It needs no `--cfg tokio_unstable`: counts come from tokio's stable
/// `num_alive_tasks` and, on Linux, `/proc/self/status`.
pub struct Monitor {
    shared: Arc<Shared>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("settings", &self.shared.settings)
            .field("latest", &self.latest())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Monitor`]; from [`Monitor::builder`].
///
/// ```
/// # let runtime = tokio::runtime::Runtime::new()?;
/// let builder = taskleak::monitor::Monitor::builder(runtime.handle()).min_growth(50);
/// # drop(builder);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MonitorBuilder {
    handles: Vec<Handle>,
    settings: Settings,
    on_growth: Option<OnGrowth>,
}

impl fmt::Debug for MonitorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorBuilder")
            .field("runtimes", &self.handles.len())
            .field("settings", &self.settings)
            .field("on_growth", &self.on_growth.is_some())
            .finish()
    }
}

#[derive(Clone, Debug)]
struct Settings {
    interval: Duration,
    window: Duration,
    min_growth: usize,
    min_thread_growth: usize,
    history: usize,
}

/// What the monitor counts.
///
/// ```
/// assert_eq!(taskleak::monitor::Resource::Tasks.to_string(), "tasks");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Resource {
    /// Live tokio tasks of the monitored runtimes.
    Tasks,
    /// The process's OS threads.
    Threads,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Tasks => "tasks",
            Resource::Threads => "threads",
        })
    }
}

/// One sample of the monitor's history.
///
/// ```
/// # fn show(sample: &taskleak::monitor::Sample) {
/// println!("{:?} after start: {} tasks, {:?} threads", sample.at(), sample.tasks(), sample.threads());
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    at: Duration,
    tasks: usize,
    threads: Option<usize>,
}

impl Sample {
    /// When it was taken, counted from the monitor's start.
    ///
    /// ```
    /// # fn show(sample: &taskleak::monitor::Sample) { println!("{:?}", sample.at()); }
    /// ```
    pub fn at(&self) -> Duration {
        self.at
    }

    /// Live tasks, summed over the monitored runtimes.
    ///
    /// ```
    /// # fn show(sample: &taskleak::monitor::Sample) { println!("{}", sample.tasks()); }
    /// ```
    pub fn tasks(&self) -> usize {
        self.tasks
    }

    /// The process's threads; `None` where they cannot be counted (off Linux).
    ///
    /// ```
    /// # fn show(sample: &taskleak::monitor::Sample) { println!("{:?}", sample.threads()); }
    /// ```
    pub fn threads(&self) -> Option<usize> {
        self.threads
    }

    fn count(&self, resource: Resource) -> Option<usize> {
        match resource {
            Resource::Tasks => Some(self.tasks),
            Resource::Threads => self.threads,
        }
    }
}

/// Sustained growth the monitor found; what the callback is given and the
/// `tracing` event says.
///
/// ```
/// # fn show(growth: &taskleak::monitor::Growth) {
/// println!("{} grew from {} to {} ({:+.1}/min)", growth.resource(), growth.from(), growth.to(), growth.per_minute());
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Growth {
    resource: Resource,
    from: usize,
    to: usize,
    over: Duration,
    per_minute: f64,
    current: usize,
}

impl Growth {
    /// What grew.
    ///
    /// ```
    /// # fn show(growth: &taskleak::monitor::Growth) { println!("{}", growth.resource()); }
    /// ```
    pub fn resource(&self) -> Resource {
        self.resource
    }

    /// The lowest count in the first quarter of the window.
    ///
    /// ```
    /// # fn show(growth: &taskleak::monitor::Growth) { println!("{}", growth.from()); }
    /// ```
    pub fn from(&self) -> usize {
        self.from
    }

    /// The lowest count in the last quarter of the window.
    ///
    /// ```
    /// # fn show(growth: &taskleak::monitor::Growth) { println!("{}", growth.to()); }
    /// ```
    pub fn to(&self) -> usize {
        self.to
    }

    /// The count at the latest sample.
    ///
    /// ```
    /// # fn show(growth: &taskleak::monitor::Growth) { println!("{}", growth.current()); }
    /// ```
    pub fn current(&self) -> usize {
        self.current
    }

    /// The time the samples judged span.
    ///
    /// ```
    /// # fn show(growth: &taskleak::monitor::Growth) { println!("{:?}", growth.over()); }
    /// ```
    pub fn over(&self) -> Duration {
        self.over
    }

    /// The trend: the least-squares slope of the window's samples, per minute.
    ///
    /// ```
    /// # fn show(growth: &taskleak::monitor::Growth) { println!("{:.1}", growth.per_minute()); }
    /// ```
    pub fn per_minute(&self) -> f64 {
        self.per_minute
    }
}

impl fmt::Display for Growth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "taskleak: live {} keep growing: the floor rose from {} to {} over {:.0} s ({:+.1}/min, {} now); \
             a leak? dump them grouped by stack (taskleak::monitor::Dumper) to see where",
            self.resource,
            self.from,
            self.to,
            self.over.as_secs_f64(),
            self.per_minute,
            self.current
        )
    }
}

impl Monitor {
    /// A monitor of `handle`'s runtime, with defaults: a sample every 10 s,
    /// growth judged over 10 minutes, reported from 100 more tasks (or 16
    /// more threads).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let monitor = taskleak::monitor::Monitor::builder(runtime.handle()).start()?;
    /// # drop(monitor);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(handle: &Handle) -> MonitorBuilder {
        MonitorBuilder {
            handles: vec![handle.clone()],
            settings: Settings {
                interval: Duration::from_secs(10),
                window: Duration::from_secs(600),
                min_growth: 100,
                min_thread_growth: 16,
                history: 360,
            },
            on_growth: None,
        }
    }

    /// The samples kept, oldest first.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// # let monitor = taskleak::monitor::Monitor::builder(runtime.handle()).start()?;
    /// for sample in monitor.history() {
    ///     println!("{:?}: {}", sample.at(), sample.tasks());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn history(&self) -> Vec<Sample> {
        self.shared.state().samples.iter().copied().collect()
    }

    /// The latest sample (one is taken as the monitor starts).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let monitor = taskleak::monitor::Monitor::builder(runtime.handle()).start()?;
    /// assert!(monitor.latest().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn latest(&self) -> Option<Sample> {
        self.shared.state().samples.back().copied()
    }

    /// Every growth reported so far, oldest first (at most 64 kept).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// # let monitor = taskleak::monitor::Monitor::builder(runtime.handle()).start()?;
    /// assert!(monitor.growths().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn growths(&self) -> Vec<Growth> {
        self.shared.state().growths.iter().cloned().collect()
    }

    /// Stops sampling and waits for the sampling thread to end (at most one
    /// sample, or a callback in progress). Dropping the monitor does this.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let monitor = taskleak::monitor::Monitor::builder(runtime.handle()).start()?;
    /// monitor.stop();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stop(mut self) {
        self.stop_sampling();
    }

    fn stop_sampling(&mut self) {
        self.shared.state().stopped = true;
        self.shared.wake.notify_all();
        if let Some(sampler) = self.sampler.take()
            && sampler.thread().id() != std::thread::current().id()
        {
            // A callback that panicked already said so; nothing to add.
            let _ = sampler.join();
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop_sampling();
    }
}

impl MonitorBuilder {
    /// Also counts the tasks of `handle`'s runtime (counts are summed).
    ///
    /// ```
    /// # let (one, two) = (tokio::runtime::Runtime::new()?, tokio::runtime::Runtime::new()?);
    /// let builder = taskleak::monitor::Monitor::builder(one.handle()).runtime(two.handle());
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn runtime(mut self, handle: &Handle) -> Self {
        self.handles.push(handle.clone());
        self
    }

    /// Time between samples (default 10 s). A sample reads one atomic
    /// counter per runtime and one `/proc` file.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let builder = taskleak::monitor::Monitor::builder(runtime.handle()).interval(std::time::Duration::from_secs(5));
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.settings.interval = interval;
        self
    }

    /// The span growth is judged over (default 10 minutes): at least four
    /// samples must fit in it.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let builder = taskleak::monitor::Monitor::builder(runtime.handle()).window(std::time::Duration::from_secs(300));
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn window(mut self, window: Duration) -> Self {
        self.settings.window = window;
        self
    }

    /// How many more live tasks the floor must reach over the window to be
    /// reported (default 100); reported again each time it climbs as much
    /// again.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let builder = taskleak::monitor::Monitor::builder(runtime.handle()).min_growth(20);
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn min_growth(mut self, tasks: usize) -> Self {
        self.settings.min_growth = tasks;
        self
    }

    /// As [`min_growth`](Self::min_growth), for threads (default 16).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let builder = taskleak::monitor::Monitor::builder(runtime.handle()).min_thread_growth(4);
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn min_thread_growth(mut self, threads: usize) -> Self {
        self.settings.min_thread_growth = threads;
        self
    }

    /// Samples kept in [`Monitor::history`] (default 360); at least those
    /// the window spans are kept whatever this says.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let builder = taskleak::monitor::Monitor::builder(runtime.handle()).history(1000);
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn history(mut self, samples: usize) -> Self {
        self.settings.history = samples;
        self
    }

    /// Calls `callback` on the sampling thread for each growth reported,
    /// after the `tracing` event.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let builder = taskleak::monitor::Monitor::builder(runtime.handle())
    ///     .on_growth(|growth| eprintln!("{growth}"));
    /// # drop(builder);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_growth(mut self, callback: impl Fn(&Growth) + Send + Sync + 'static) -> Self {
        self.on_growth = Some(Arc::new(callback));
        self
    }

    /// Takes a first sample and starts sampling on a thread named
    /// `taskleak-mon` (kernel names keep 15 bytes).
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let monitor = taskleak::monitor::Monitor::builder(runtime.handle()).start()?;
    /// # drop(monitor);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidMonitor`] for a zero interval or growth threshold,
    /// or a window shorter than four intervals; [`Error::Spawn`] when the
    /// thread cannot be started.
    pub fn start(self) -> Result<Monitor, Error> {
        let settings = &self.settings;
        let invalid = |reason: String| Err(Error::InvalidMonitor { reason });
        if settings.interval.is_zero() {
            return invalid("`interval` is zero; give it the time between samples, e.g. 10 s".to_owned());
        }
        if settings.min_growth == 0 || settings.min_thread_growth == 0 {
            return invalid("a growth threshold is zero, so every sample would be growth; use 1 or more".to_owned());
        }
        match settings.interval.checked_mul(4) {
            Some(four) if settings.window >= four => {}
            four => {
                let fix = four.map_or("shorten the interval".to_owned(), |four| {
                    format!("make it at least {four:?}")
                });
                return invalid(format!(
                    "`window` ({:?}) holds fewer than four samples at `interval` {:?}; {fix}",
                    settings.window, settings.interval
                ));
            }
        }
        if Instant::now().checked_add(settings.window).is_none() {
            return invalid(format!("`window` ({:?}) is too long to count time in", settings.window));
        }
        let shared = Arc::new(Shared {
            settings: self.settings,
            handles: self.handles,
            on_growth: self.on_growth,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        shared.sample();
        let sampler = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("taskleak-mon".to_owned())
                .spawn(move || shared.run())
                .map_err(|error| Error::Spawn {
                    what: "the monitor's sampling thread",
                    source: Arc::new(error),
                })?
        };
        Ok(Monitor {
            shared,
            sampler: Some(sampler),
        })
    }
}

struct Shared {
    settings: Settings,
    handles: Vec<Handle>,
    on_growth: Option<OnGrowth>,
    started: Instant,
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    samples: VecDeque<Sample>,
    growths: VecDeque<Growth>,
    /// The floor last reported, per resource: the next report needs as
    /// much growth again.
    reported_tasks: Option<usize>,
    reported_threads: Option<usize>,
    stopped: bool,
}

/// Growths kept for [`Monitor::growths`].
const KEPT_GROWTHS: usize = 64;

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        // `start` checked that a window (four intervals or more) fits.
        let mut next = Instant::now() + self.settings.interval;
        loop {
            let mut state = self.state();
            // Sleeps until the next sample is due, or the monitor stops.
            loop {
                if state.stopped {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                state = self
                    .wake
                    .wait_timeout(state, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            drop(state);
            next += self.settings.interval;
            // Behind (a slow callback, a suspended process): skip, never burst.
            next = next.max(Instant::now());
            for growth in self.sample() {
                tracing::warn!(
                    target: "taskleak::monitor",
                    resource = %growth.resource,
                    from = growth.from,
                    to = growth.to,
                    current = growth.current,
                    window_secs = growth.over.as_secs_f64(),
                    per_minute = growth.per_minute,
                    "{growth}"
                );
                if let Some(callback) = &self.on_growth {
                    // A callback that panics must not end the monitoring.
                    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(&growth)));
                    if called.is_err() {
                        tracing::error!(target: "taskleak::monitor", "the monitor's growth callback panicked");
                    }
                }
            }
        }
    }

    /// Takes a sample, keeps it, and returns the growth it shows.
    fn sample(&self) -> Vec<Growth> {
        let sample = Sample {
            at: self.started.elapsed(),
            tasks: self
                .handles
                .iter()
                .map(|handle| handle.metrics().num_alive_tasks())
                .sum(),
            threads: crate::threads::proc_threads::count(),
        };
        let settings = &self.settings;
        let mut state = self.state();
        state.samples.push_back(sample);
        let spanned = (settings.window.as_nanos() / settings.interval.as_nanos().max(1)) as usize + 1;
        while state.samples.len() > settings.history.max(spanned) {
            state.samples.pop_front();
        }
        let mut found = Vec::new();
        for (resource, threshold) in [
            (Resource::Tasks, settings.min_growth),
            (Resource::Threads, settings.min_thread_growth),
        ] {
            let growth = growth_in(&state.samples, resource, settings.window, threshold);
            let reported = match resource {
                Resource::Tasks => &mut state.reported_tasks,
                Resource::Threads => &mut state.reported_threads,
            };
            let Some(growth) = growth else {
                // Fallen back below the floor last reported: a new rise
                // from here is news again.
                if reported.is_some_and(|floor| sample.count(resource).is_some_and(|now| now < floor)) {
                    *reported = None;
                }
                continue;
            };
            if reported.is_some_and(|floor| growth.to < floor.saturating_add(threshold)) {
                continue;
            }
            *reported = Some(growth.to);
            found.push(growth);
        }
        for growth in &found {
            if state.growths.len() == KEPT_GROWTHS {
                state.growths.pop_front();
            }
            state.growths.push_back(growth.clone());
        }
        found
    }
}

/// The growth of `resource` over the last `window` of `samples`, if its
/// floor rises quarter after quarter by `threshold` in all.
fn growth_in(samples: &VecDeque<Sample>, resource: Resource, window: Duration, threshold: usize) -> Option<Growth> {
    let last = samples.back()?;
    // The window must be covered: judge nothing on a service just started.
    // From the last sample at or before its start, so that it always is,
    // however late each sample woke.
    let start = last.at.checked_sub(window)?;
    let first = samples.iter().rposition(|sample| sample.at <= start)?;
    let judged: Vec<(Duration, usize)> = samples
        .iter()
        .skip(first)
        .map(|sample| Some((sample.at, sample.count(resource)?)))
        .collect::<Option<_>>()?;
    let span = judged.last()?.0.saturating_sub(judged.first()?.0);
    if judged.len() < 4 {
        return None;
    }
    let quarter = judged.len() / 4;
    let floors: Vec<usize> = (0..4)
        .map(|index| {
            let end = if index == 3 {
                judged.len()
            } else {
                (index + 1) * quarter
            };
            judged[index * quarter..end]
                .iter()
                .map(|(_, count)| *count)
                .min()
                .unwrap_or(0)
        })
        .collect();
    let rising = floors.windows(2).all(|pair| pair[1] > pair[0]);
    let (from, to) = (floors[0], floors[3]);
    if !rising || to < from.saturating_add(threshold) {
        return None;
    }
    Some(Growth {
        resource,
        from,
        to,
        over: span,
        per_minute: slope_per_second(&judged) * 60.0,
        current: judged.last()?.1,
    })
}

/// The least-squares slope of the counts, per second.
fn slope_per_second(points: &[(Duration, usize)]) -> f64 {
    let n = points.len() as f64;
    let mean_t = points.iter().map(|(at, _)| at.as_secs_f64()).sum::<f64>() / n;
    let mean_c = points.iter().map(|(_, count)| *count as f64).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (at, count) in points {
        let dt = at.as_secs_f64() - mean_t;
        covariance += dt * (*count as f64 - mean_c);
        variance += dt * dt;
    }
    if variance == 0.0 { 0.0 } else { covariance / variance }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(counts: &[usize]) -> VecDeque<Sample> {
        counts
            .iter()
            .enumerate()
            .map(|(index, tasks)| Sample {
                at: Duration::from_secs(index as u64),
                tasks: *tasks,
                threads: Some(10),
            })
            .collect()
    }

    const WINDOW: Duration = Duration::from_secs(7);

    #[test]
    fn a_rising_floor_is_growth_with_its_trend() {
        let growth =
            growth_in(&series(&[10, 12, 20, 22, 30, 32, 40, 42]), Resource::Tasks, WINDOW, 20).expect("growth");
        assert_eq!((growth.from(), growth.to(), growth.current()), (10, 40, 42));
        assert_eq!(growth.over(), WINDOW);
        assert!(
            (growth.per_minute() - 4.6 * 60.0).abs() < 30.0,
            "{}",
            growth.per_minute()
        );
        // Threads did not move.
        assert_eq!(growth_in(&series(&[10; 8]), Resource::Threads, WINDOW, 1), None);
    }

    #[test]
    fn bursts_that_fall_back_short_windows_and_small_rises_are_not_growth() {
        // Peaks rise, the floor does not: load, not a leak.
        assert_eq!(
            growth_in(
                &series(&[10, 50, 10, 90, 10, 130, 10, 170]),
                Resource::Tasks,
                WINDOW,
                20
            ),
            None
        );
        // Rising, but by less than the threshold.
        assert_eq!(
            growth_in(&series(&[10, 11, 12, 13, 14, 15, 16, 17]), Resource::Tasks, WINDOW, 20),
            None
        );
        // Not yet a window's worth of history.
        assert_eq!(growth_in(&series(&[10, 20, 30, 40]), Resource::Tasks, WINDOW, 1), None);
        // A dip in the third quarter breaks the rise.
        assert_eq!(
            growth_in(&series(&[10, 12, 20, 22, 5, 32, 40, 42]), Resource::Tasks, WINDOW, 20),
            None
        );
    }

    #[test]
    fn only_the_window_is_judged() {
        // An old rise, flat since.
        let mut samples = series(&[0, 100, 200, 300]);
        samples.extend(series(&[300; 8]).into_iter().map(|sample| Sample {
            at: sample.at + Duration::from_secs(4),
            ..sample
        }));
        assert_eq!(growth_in(&samples, Resource::Tasks, WINDOW, 1), None);
    }

    #[test]
    fn a_window_of_four_intervals_is_judged_however_late_samples_wake() {
        let samples: VecDeque<Sample> = [(0, 10), (1100, 40), (2200, 70), (3300, 100), (4400, 130)]
            .into_iter()
            .map(|(ms, tasks)| Sample {
                at: Duration::from_millis(ms),
                tasks,
                threads: None,
            })
            .collect();
        let growth = growth_in(&samples, Resource::Tasks, Duration::from_secs(4), 20).expect("growth");
        assert_eq!((growth.from(), growth.to()), (10, 100));
        // No thread count: nothing to judge.
        assert_eq!(growth_in(&samples, Resource::Threads, Duration::from_secs(4), 1), None);
        // Thresholds as large as the type: no overflow, no growth.
        assert_eq!(
            growth_in(&samples, Resource::Tasks, Duration::from_secs(4), usize::MAX),
            None
        );
    }

    #[test]
    fn a_flat_series_has_no_slope() {
        assert_eq!(
            slope_per_second(&[(Duration::ZERO, 3), (Duration::from_secs(1), 3)]),
            0.0
        );
        assert_eq!(slope_per_second(&[(Duration::ZERO, 3)]), 0.0);
    }
}
