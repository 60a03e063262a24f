//! Grouped task dumps on real runtimes: identical tasks in one group with
//! the exact count, groups largest first, spawn sites from a tracker, and
//! what each runtime flavor and cfg mode can and cannot show.

use std::time::Duration;

use taskleak::Tracker;
use taskleak::monitor::Dumper;

mod support;

use support::runtime;

/// `tests/dump.rs:LINE:` of the spawn after `// spawn-site: NAME`.
fn site(name: &str) -> String {
    let marker = include_str!("dump.rs")
        .lines()
        .position(|line| line.trim() == format!("// spawn-site: {name}"))
        .expect("marker");
    format!("tests/dump.rs:{}:", marker + 2)
}

async fn wait_for_notify(notify: std::sync::Arc<tokio::sync::Notify>) {
    notify.notified().await;
}

/// 300 tasks parked on a `Notify`, 20 on a channel: what a dump groups.
fn spawn_two_kinds() -> (std::sync::Arc<tokio::sync::Notify>, Vec<tokio::sync::mpsc::Sender<()>>) {
    let notify = std::sync::Arc::new(tokio::sync::Notify::new());
    for _ in 0..300 {
        // spawn-site: notified
        tokio::spawn(wait_for_notify(notify.clone()));
    }
    let senders = (0..20)
        .map(|_| {
            let (sender, mut receiver) = tokio::sync::mpsc::channel::<()>(1);
            // spawn-site: receiving
            tokio::spawn(async move { receiver.recv().await });
            sender
        })
        .collect();
    (notify, senders)
}

/// The dump of [`spawn_two_kinds`]'s tasks, each parked where it waits.
fn dump_two_kinds(runtime: &tokio::runtime::Runtime, tracker: Option<&Tracker>) -> taskleak::monitor::TaskDump {
    runtime.block_on(async {
        let kept = spawn_two_kinds();
        // Every task polled once, so parked where it waits. A current-thread
        // runtime polls up to 61 tasks before it polls this future again
        // after a yield, however slow the machine: 20 yields reach all 320.
        // The sleep lets a multi-thread runtime's workers get to them.
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut dumper = Dumper::new(&tokio::runtime::Handle::current());
        if let Some(tracker) = tracker {
            dumper = dumper.tracker(tracker);
        }
        let dump = dumper.dump().await.expect("dump");
        drop(kept);
        dump
    })
}

#[test]
fn identical_tasks_are_one_group_with_their_count_largest_first() {
    let tracker = Tracker::new();
    let runtime = runtime(&tracker, false);
    let dump = dump_two_kinds(&runtime, Some(&tracker));
    assert_eq!(dump.tasks(), 320, "{dump}");
    let counts: Vec<usize> = dump.groups().iter().map(|group| group.count()).collect();
    let text = dump.to_string();
    if cfg!(tokio_unstable) {
        assert_eq!(counts, [300, 20], "{dump}");
        let (notified, receiving) = (&dump.groups()[0], &dump.groups()[1]);
        let spawned_at = |group: &taskleak::monitor::TaskGroup, name| {
            group.spawned_at().is_some_and(|at| at.starts_with(&site(name)))
        };
        assert!(spawned_at(notified, "notified"), "{dump}");
        assert!(spawned_at(receiving, "receiving"), "{dump}");
        assert_eq!(notified.task_ids().len(), taskleak::monitor::SAMPLE_IDS);
        assert!(notified.task_ids().is_sorted());
        assert!(text.starts_with("taskleak: 320 live tasks in 2 groups"), "{text}");
        assert_eq!(notified.waits_on(), Some("notify"), "{dump}");
        assert_eq!(receiving.waits_on(), Some("mpsc-receive"), "{dump}");
        let stack = notified.stack().expect("a stack").to_string();
        assert!(stack.contains("dump::wait_for_notify"), "{stack}");
        assert!(text.contains(&format!("300 tasks @ {}", site("notified"))), "{text}");
        assert!(text.contains("[notify]") && text.contains("… (284 more)"), "{text}");
        assert_eq!(dump.groups_matching("wait_for_notify").expect("regex").len(), 1);
        assert!(dump.notes().is_empty(), "{:?}", dump.notes());
    } else {
        // Without tokio's hooks and dumps: the count, and how to get more.
        assert_eq!(counts, [320], "{dump}");
        assert!(text.starts_with("taskleak: 320 live tasks in 1 group"), "{text}");
        assert!(dump.groups()[0].stack().is_none());
        assert!(
            dump.notes().iter().any(|note| note.contains("--cfg tokio_unstable")),
            "{:?}",
            dump.notes()
        );
    }
    assert!(matches!(
        dump.groups_matching("("),
        Err(taskleak::Error::InvalidRegex { .. })
    ));
    // The text a service's operator reads, pinned; what varies redacted.
    insta::with_settings!({
        filters => vec![
            (r"dump took \d+\.\d+ ms", "dump took [duration] ms"),
            (r"task ids: \d+(, \d+)*", "task ids: [ids]"),
        ],
        snapshot_suffix => if cfg!(tokio_unstable) { "unstable" } else { "stable" },
        omit_expression => true,
    }, {
        insta::assert_snapshot!("dump-of-two-kinds", text);
    });
}

#[test]
fn without_a_tracker_tasks_are_grouped_by_stack_and_the_note_says_how_to_get_spawn_sites() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dump = dump_two_kinds(&runtime, None);
    let counts: Vec<usize> = dump.groups().iter().map(|group| group.count()).collect();
    if cfg!(tokio_unstable) {
        assert_eq!(counts, [300, 20], "{dump}");
    } else {
        assert_eq!(counts, [320], "{dump}");
    }
    assert!(dump.groups().iter().all(|group| group.spawned_at().is_none()));
    assert!(
        dump.notes().iter().any(|note| note.contains("taskleak::Tracker")),
        "{:?}",
        dump.notes()
    );
}

#[test]
fn a_multi_thread_runtime_is_grouped_by_spawn_site_without_stacks() {
    let tracker = Tracker::new();
    let runtime = runtime(&tracker, true);
    let dump = dump_two_kinds(&runtime, Some(&tracker));
    let counts: Vec<usize> = dump.groups().iter().map(|group| group.count()).collect();
    assert!(dump.groups().iter().all(|group| group.stack().is_none()), "{dump}");
    if cfg!(tokio_unstable) {
        assert_eq!(counts, [300, 20], "{dump}");
        let first = dump.groups()[0].spawned_at();
        assert!(first.is_some_and(|at| at.starts_with(&site("notified"))), "{dump}");
        assert!(
            dump.notes().iter().any(|note| note.contains("tokio-rs/tokio#8370")),
            "{dump}"
        );
    } else {
        assert_eq!(counts, [320], "{dump}");
    }
}

#[test]
fn threads_are_listed_grouped_when_asked_for() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Sleepers that outlive the dump however long it takes on a loaded
    // machine: they sleep in short naps until released.
    let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let parked: Vec<_> = (0..3)
        .map(|_| {
            let released = released.clone();
            std::thread::Builder::new()
                .name("dump-sleeper".to_owned())
                .spawn(move || {
                    while !released.load(std::sync::atomic::Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                })
                .expect("thread")
        })
        .collect();
    let dump = runtime.block_on(async {
        Dumper::new(&tokio::runtime::Handle::current())
            .threads(taskleak::monitor::ThreadListing::WithStacks)
            .dump()
            .await
            .expect("dump")
    });
    released.store(true, std::sync::atomic::Ordering::Release);
    for thread in parked {
        thread.join().expect("joined");
    }
    let threads = dump.threads().expect("asked for");
    if cfg!(target_os = "linux") {
        let sleepers: Vec<_> = threads.iter().filter(|group| group.name() == "dump-sleeper").collect();
        assert_eq!(sleepers.len(), 1, "identical threads are one group: {dump}");
        assert_eq!(sleepers[0].count(), 3, "{dump}");
        assert_eq!(sleepers[0].state(), &taskleak::report::ThreadState::Sleeping, "{dump}");
        assert!(
            sleepers[0]
                .stack()
                .iter()
                .any(|frame| frame.function().contains("dump::threads_are_listed")),
            "{dump}"
        );
        assert!(dump.to_string().contains("3 threads named \"dump-sleeper\""), "{dump}");
    }
}

#[test]
fn a_current_thread_runtime_dumped_from_elsewhere_says_where_to_dump_it() {
    let tracker = Tracker::new();
    let runtime = runtime(&tracker, false);
    let parked = runtime.spawn(std::future::pending::<()>());
    let dumper = Dumper::new(runtime.handle()).tracker(&tracker);
    // From another runtime: tokio would return an empty dump.
    let elsewhere = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let dump = elsewhere.block_on(dumper.dump()).expect("dump");
    if cfg!(tokio_unstable) {
        assert!(dump.groups().iter().all(|group| group.stack().is_none()), "{dump}");
        assert!(
            dump.notes()
                .iter()
                .any(|note| note.contains("only from one of its own tasks")),
            "{dump}"
        );
        // The spawn sites are still there.
        assert_eq!(
            dump.groups().iter().map(|group| group.count()).sum::<usize>(),
            1,
            "{dump}"
        );
    }
    parked.abort();
}
