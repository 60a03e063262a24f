//! Async stacks from tokio's task dump, taken with a bound on how long the
//! dump may take (it never completes while a worker is blocked).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::model::AsyncStack;
use crate::tasks::timer;

/// How many dumps to take for tasks a dump missed: a dump traces idle
/// tasks only, so one that was scheduled to run at that moment is missing.
const ATTEMPTS: usize = 3;

/// The stacks found, by task id, and why none could be taken, if so.
#[derive(Debug, Default)]
pub(crate) struct Stacks {
    pub(crate) found: HashMap<u64, Arc<AsyncStack>>,
    pub(crate) unavailable: Option<String>,
}

/// Dumps until every task of `wanted` still alive has a stack, at most
/// [`ATTEMPTS`] times, each dump bounded by `limit`.
pub(crate) async fn stacks_of(
    handle: &tokio::runtime::Handle,
    mut wanted: HashSet<u64>,
    limit: Duration,
    is_live: impl Fn(u64) -> bool,
) -> Stacks {
    let mut stacks = Stacks::default();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Let the scheduled tasks run and park again.
            timer::pause(Duration::from_millis(1)).await;
        }
        match platform::take(handle, &|id| wanted.contains(&id), limit).await {
            Ok(found) => stacks.found.extend(found),
            Err(reason) => {
                stacks.unavailable = Some(reason);
                break;
            }
        }
        wanted.retain(|id| !stacks.found.contains_key(id) && is_live(*id));
        if wanted.is_empty() {
            break;
        }
    }
    stacks
}

/// The stacks of every task idle at the moment of one dump, by task id:
/// what [`TaskDump`](crate::monitor::TaskDump) groups. `Err` says why there are none.
pub(crate) async fn all_stacks(
    handle: &tokio::runtime::Handle,
    limit: Duration,
) -> Result<HashMap<u64, Arc<AsyncStack>>, String> {
    platform::take_all_off_workers(handle, limit).await
}

/// Task dumps exist with `tokio_unstable`, on these platforms only.
#[cfg(all(
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
))]
mod platform {
    use super::*;

    pub(super) async fn take(
        handle: &tokio::runtime::Handle,
        wanted: &(dyn Fn(u64) -> bool + Sync),
        limit: Duration,
    ) -> Result<HashMap<u64, Arc<AsyncStack>>, String> {
        let dump = dump_within(handle, limit).await?;
        Ok(stacks_in(&dump, wanted))
    }

    /// Every task's stack, resolved on the runtime's blocking pool: symbols
    /// take long (seconds, the first time, in a debug build), and a worker
    /// busy that long would miss the next dump's rendezvous, which tokio
    /// 1.54 does not survive (tokio-rs/tokio#8370).
    pub(super) async fn take_all_off_workers(
        handle: &tokio::runtime::Handle,
        limit: Duration,
    ) -> Result<HashMap<u64, Arc<AsyncStack>>, String> {
        let dump = dump_within(handle, limit).await?;
        handle
            .spawn_blocking(move || stacks_in(&dump, &|_| true))
            .await
            .map_err(|error| format!("resolving the dump's symbols failed: {error}"))
    }

    async fn dump_within(handle: &tokio::runtime::Handle, limit: Duration) -> Result<tokio::runtime::Dump, String> {
        crate::tasks::timer::timeout(limit, handle.dump())
            .await
            .ok_or_else(|| format!("tokio's task dump did not finish within {:.1} s", limit.as_secs_f64()))
    }

    fn stacks_in(dump: &tokio::runtime::Dump, wanted: &(dyn Fn(u64) -> bool + Sync)) -> HashMap<u64, Arc<AsyncStack>> {
        use crate::tasks::task_id::raw_id;

        let cwd = crate::model::source_root();
        // Resolving symbols is the expensive part, and leaks come in crowds of
        // identical tasks: resolve one task per distinct unresolved trace, and
        // share the result. The trace's `Debug` lists its frames' instruction
        // pointers, unresolved; it is hashed as it is written, never stored.
        // Should it ever stop listing them, every task is resolved on its own.
        let keyed = dump
            .tasks()
            .iter()
            .map(|task| format!("{:?}", task.trace()))
            .find(|shown| !shown.contains("backtraces: []"))
            .is_none_or(|shown| shown.contains("ip:"));
        let mut resolved: HashMap<u64, Arc<AsyncStack>> = HashMap::new();
        let mut interned: HashSet<Arc<AsyncStack>> = HashSet::new();
        let mut stacks = HashMap::new();
        for task in dump.tasks().iter() {
            let id = raw_id(task.id());
            if !wanted(id) {
                continue;
            }
            let key = keyed.then(|| trace_key(task.trace()));
            let stack = match key.and_then(|key| resolved.get(&key)) {
                Some(stack) => Arc::clone(stack),
                None => {
                    // Equal stacks from different traces share one value too.
                    let stack = Arc::new(resolve(task.trace(), cwd.as_deref()));
                    let stack = match interned.get(&stack) {
                        Some(known) => Arc::clone(known),
                        None => {
                            interned.insert(Arc::clone(&stack));
                            stack
                        }
                    };
                    if let Some(key) = key {
                        resolved.insert(key, Arc::clone(&stack));
                    }
                    stack
                }
            };
            stacks.insert(id, stack);
        }
        stacks
    }

    fn trace_key(trace: &tokio::runtime::dump::Trace) -> u64 {
        use std::fmt::Write;
        use std::hash::{DefaultHasher, Hasher};

        struct HashWriter(DefaultHasher);
        impl Write for HashWriter {
            fn write_str(&mut self, text: &str) -> std::fmt::Result {
                self.0.write(text.as_bytes());
                Ok(())
            }
        }
        let mut writer = HashWriter(DefaultHasher::new());
        let _ = write!(writer, "{trace:?}");
        writer.0.finish()
    }

    fn resolve(trace: &tokio::runtime::dump::Trace, cwd: Option<&str>) -> AsyncStack {
        use crate::model::RawFrame;

        let backtraces = trace
            .resolve_backtraces()
            .iter()
            .map(|backtrace| {
                backtrace
                    .frames()
                    .flat_map(|frame| frame.symbols())
                    .map(|symbol| RawFrame {
                        name: symbol.name_demangled().unwrap_or("<unknown>").to_owned(),
                        file: symbol.filename().map(|path| path.display().to_string()),
                        line: symbol.lineno(),
                        column: symbol.colno(),
                        // Thread stacks only: see `folding`.
                        folded: Vec::new(),
                    })
                    .collect()
            })
            .collect();
        AsyncStack::from_raw(backtraces, cwd)
    }
}

#[cfg(not(all(
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "s390x"
    )
)))]
mod platform {
    use super::*;

    pub(super) async fn take(
        _handle: &tokio::runtime::Handle,
        _wanted: &(dyn Fn(u64) -> bool + Sync),
        _limit: Duration,
    ) -> Result<HashMap<u64, Arc<AsyncStack>>, String> {
        Err(UNSUPPORTED.to_owned())
    }

    pub(super) async fn take_all_off_workers(
        _handle: &tokio::runtime::Handle,
        _limit: Duration,
    ) -> Result<HashMap<u64, Arc<AsyncStack>>, String> {
        Err(UNSUPPORTED.to_owned())
    }

    const UNSUPPORTED: &str = "tokio's task dumps need Linux on aarch64, x86, x86_64 or s390x";
}
