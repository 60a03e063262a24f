//! Task names (`tokio::task::Builder::name`): tokio shows them only to the
//! `runtime.spawn` tracing span it opens for each task, so a tiny tracing
//! subscriber reads them there.
//!
//! It becomes the default only on threads that have no subscriber at all:
//! it never replaces yours, and swallows nothing you would have seen. With a
//! subscriber of your own on a thread, tasks spawned there have no name in
//! reports.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_core::dispatcher::{self, DefaultGuard, Dispatch};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::subscriber::{Interest, NoSubscriber, Subscriber};
use tracing_core::{Event, LevelFilter, Metadata};

thread_local! {
    /// The last task named on this thread: tokio opens the span, then runs
    /// the spawn hook, both inside `spawn`, on the spawning thread.
    static LAST_NAMED: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
}

/// The name of task `id` if it was just spawned on this thread with one.
pub(crate) fn take(id: u64) -> Option<String> {
    LAST_NAMED
        .try_with(|last| match last.borrow_mut().take() {
            Some((named, name)) if named == id => Some(name),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Makes the name-reading subscriber this thread's default, unless the
/// thread already has a subscriber (its own or the global one).
pub(crate) fn capture_on_this_thread() -> Option<DefaultGuard> {
    let unobserved = dispatcher::get_default(|current| current.is::<NoSubscriber>());
    unobserved.then(|| dispatcher::set_default(shared()))
}

thread_local! {
    static GUARD: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// A test runtime's thread, as it starts: the name-reading subscriber is its
/// default for its life (unless it has one of its own).
pub(crate) fn on_runtime_thread_start() {
    let _ = GUARD.try_with(|guard| *guard.borrow_mut() = capture_on_this_thread());
}

/// A test runtime's thread, as it stops.
pub(crate) fn on_runtime_thread_stop() {
    let _ = GUARD.try_with(|guard| guard.borrow_mut().take());
}

fn shared() -> &'static Dispatch {
    static DISPATCH: OnceLock<Dispatch> = OnceLock::new();
    static SECOND: OnceLock<Dispatch> = OnceLock::new();
    DISPATCH.get_or_init(|| {
        let reader = Dispatch::new(NameReader {
            next_span: AtomicU64::new(1),
        });
        // While one dispatcher is registered, tracing-core decides a
        // callsite's interest from the default of whichever thread first
        // hits it: a thread without this reader would disable tokio's spawn
        // span for good. A second registered dispatcher (which never
        // becomes anyone's default) makes it ask every registered one.
        SECOND.get_or_init(|| Dispatch::new(NoSubscriber::default()));
        tracing_core::callsite::rebuild_interest_cache();
        reader
    })
}

fn is_spawn_span(metadata: &Metadata<'_>) -> bool {
    metadata.name() == "runtime.spawn" && metadata.target() == "tokio::task"
}

/// Enabled for tokio's `runtime.spawn` spans only; everything else is
/// disabled at the callsite, so it costs one cached interest check.
struct NameReader {
    next_span: AtomicU64,
}

impl Subscriber for NameReader {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_spawn_span(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        is_spawn_span(metadata)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // tokio opens the span at TRACE level.
        Some(LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = SpawnFields::default();
        span.record(&mut fields);
        if let (Some(id), Some(name)) = (fields.id, fields.name.filter(|name| !name.is_empty())) {
            let _ = LAST_NAMED.try_with(|last| *last.borrow_mut() = Some((id, name)));
        }
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, _event: &Event<'_>) {}
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

#[derive(Default)]
struct SpawnFields {
    id: Option<u64>,
    name: Option<String>,
}

impl Visit for SpawnFields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "task.id" {
            self.id = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "task.name" {
            self.name = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `task.name = %name` arrives as a Display wrapper through here.
        if field.name() == "task.name" {
            self.name = Some(format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_name_of_a_task_spawned_on_a_capturing_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let _capture = capture_on_this_thread().expect("no subscriber on this thread");
        let _in_runtime = runtime.enter();
        let task = tokio::task::Builder::new()
            .name("refresher")
            .spawn(async {})
            .expect("spawned");
        assert_eq!(
            take(crate::tasks::task_id::raw_id(task.id())).as_deref(),
            Some("refresher")
        );
    }

    #[test]
    fn leaves_a_thread_with_its_own_subscriber_alone() {
        let theirs = Dispatch::new(NoSubscriberButNotNone);
        let _theirs = dispatcher::set_default(&theirs);
        assert!(capture_on_this_thread().is_none());
    }

    struct NoSubscriberButNotNone;
    impl Subscriber for NoSubscriberButNotNone {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            false
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}
