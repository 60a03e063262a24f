//! A cache whose constructor starts a refresher task that nothing ever
//! stops — the classic leak — caught by taskleak, with the report printed.
//!
//! ```text
//! RUSTFLAGS="--cfg tokio_unstable" cargo run --example catch_leak
//! ```
//!
//! Without `--cfg tokio_unstable` it still catches the leak, from the
//! live-task count, and says how to get the full report.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A value refreshed in the background, every `period`.
struct Cache {
    value: Arc<Mutex<u64>>,
}

impl Cache {
    /// The bug: the refresher loops forever and its `JoinHandle` is dropped,
    /// so nothing can stop it when the cache goes away.
    fn start(period: Duration) -> Self {
        let value = Arc::new(Mutex::new(0));
        let shared = Arc::clone(&value);
        tokio::spawn(async move { refresh_loop(shared, period).await });
        Cache { value }
    }

    fn get(&self) -> u64 {
        *self.value.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn refresh_loop(value: Arc<Mutex<u64>>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        *value.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) += 1;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `#[taskleak::verify_no_leaks]` does these steps for a test; an example
    // has no test harness, so it uses the programmatic API.
    let tracker = taskleak::Tracker::new();
    let mut builder = tokio::runtime::Builder::new_current_thread();
    tracker.install(&mut builder);
    let runtime = builder.enable_all().build()?;

    let verdict = runtime.block_on(async {
        let snapshot = tracker.snapshot()?;

        let cache = Cache::start(Duration::from_millis(10));
        tokio::time::sleep(Duration::from_millis(35)).await;
        println!("cache value after 35 ms: {}", cache.get());
        drop(cache); // the refresher keeps running

        Ok::<_, taskleak::Error>(snapshot.verify(&taskleak::Options::new()).await)
    })?;
    runtime.shutdown_background();

    match verdict {
        Err(report) => {
            println!("\ntaskleak caught the leak:\n\n{report}");
            Ok(())
        }
        Ok(()) => Err("taskleak missed the leaked refresher task".into()),
    }
}
