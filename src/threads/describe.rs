//! A thread described for a report: its native stack captured (bounded,
//! retried for a running thread) and classified with the kernel's view —
//! what it is blocked in, and what part of a tokio runtime it is; and every
//! thread of the process described, for a task dump.

use std::time::Duration;

use crate::model::{RawFrame, clean_symbol, native_frames, source_root};
use crate::report::thread_report::{self, LeakedThread, ThreadKind, ThreadState};
use crate::threads::native_stack;
use crate::threads::proc_threads::{self, KernelThread};

/// Stacks captured per check at most: each can take up to the capture
/// bound, so a test that leaks a thousand threads still ends in time.
pub(crate) const MAX_CAPTURES: usize = 32;

/// One frame's cleaned names, for classification: the symbolizer's, then
/// the other names of its code when identical functions were merged into
/// it. A rule trusts a frame only when all of them agree (see [`frame_is`]).
pub(crate) type FrameNames = Vec<String>;

/// A thread's native stack as reports show it, the cleaned function names
/// that classify it, or why there is none.
pub(crate) struct Captured {
    pub(crate) stack: Vec<crate::model::StackFrame>,
    pub(crate) functions: Vec<FrameNames>,
    pub(crate) stack_unavailable: Option<String>,
}

impl Captured {
    /// `None` when the thread exited before it could be captured.
    pub(crate) fn from(captured: Result<native_stack::Frames, String>, cwd: Option<&str>) -> Option<Self> {
        match captured {
            Ok(raw) => Some(Captured {
                functions: raw.iter().map(frame_names).collect(),
                stack: native_frames(&raw, cwd),
                stack_unavailable: None,
            }),
            Err(reason) if reason == native_stack::EXITED => None,
            Err(reason) => Some(Captured {
                stack: Vec::new(),
                functions: Vec::new(),
                stack_unavailable: Some(reason),
            }),
        }
    }
}

fn frame_names(frame: &RawFrame) -> FrameNames {
    let mut names: FrameNames = vec![clean_symbol(&frame.name)];
    for name in frame.folded.iter().map(|name| clean_symbol(name)) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// Whether a frame is what `is` says, by all its names: a folded frame
/// (one body, several functions) is trusted only when every function it
/// may be agrees, so one name the symbolizer happened to pick never
/// decides alone; the kernel's view then does.
fn frame_is(frame: &[String], is: impl Fn(&str) -> bool) -> bool {
    !frame.is_empty() && frame.iter().all(|name| is(name))
}

/// Every thread of the process, described and grouped, for a
/// [`TaskDump`](crate::monitor::TaskDump): what each is blocked in, with the native
/// stacks of the first [`MAX_CAPTURES`] when `stacks` (each thread is
/// signalled once for it). The calling thread is listed, never signalled.
pub(crate) fn describe_process(stacks: bool) -> Result<Vec<thread_report::ThreadGroup>, String> {
    let own = proc_threads::current_tid();
    let cwd = source_root();
    let mut captures = 0;
    let mut threads = Vec::new();
    for tid in proc_threads::ids()? {
        let capture = stacks && tid != own && captures < MAX_CAPTURES;
        let view = if capture {
            blocked_view(tid)
        } else {
            proc_threads::read(tid).map(|kernel| (kernel, proc_threads::blocked_call(tid)))
        };
        let Some((kernel, call)) = view.filter(|(kernel, _)| !is_gone(kernel.state)) else {
            continue;
        };
        let captured = if tid == own {
            Err("the thread that took the dump".to_owned())
        } else if capture {
            captures += 1;
            capture_stack(tid, kernel.state)
        } else if stacks {
            Err(format!("only the first {MAX_CAPTURES} threads' stacks are captured"))
        } else {
            Err("stacks were not asked for".to_owned())
        };
        let Some(Captured {
            stack,
            functions,
            stack_unavailable,
        }) = Captured::from(captured, cwd.as_deref())
        else {
            continue;
        };
        let state = if tid == own {
            ThreadState::Running
        } else {
            classify(kernel.state, call, &functions, proc_threads::peer_closed_sockets)
        };
        threads.push(LeakedThread {
            tid,
            name: kernel.name,
            inherited_name: None,
            state,
            stack,
            stack_unavailable,
            kind: ThreadKind::Plain,
        });
    }
    Ok(thread_report::group(threads))
}

/// Captures a thread's stack. A running thread is caught at whatever
/// instruction it was at, so one that shows no read is captured again, a
/// few times at most: a loop spinning on a read that returns at once spends
/// nearly all its time in it, and is caught there.
pub(crate) fn capture_stack(tid: i32, state: char) -> Result<native_stack::Frames, String> {
    const RUNNING_CAPTURES: usize = 5;
    let in_read = |raw: &native_stack::Frames| {
        raw.iter()
            .any(|frame| frame_names(frame).iter().any(|name| is_read(name)))
    };
    let mut captured = native_stack::capture(tid);
    for _ in 1..RUNNING_CAPTURES {
        match &captured {
            Ok(raw) if state == 'R' && !in_read(raw) => {}
            _ => break,
        }
        match native_stack::capture(tid) {
            Ok(again) => captured = Ok(again),
            Err(_) => break,
        }
    }
    captured
}

/// `Z` (zombie) and `X` (dead): a thread that has exited.
pub(crate) fn is_gone(state: char) -> bool {
    matches!(state, 'Z' | 'X')
}

/// The kernel's view of a thread, looked at a few times: a thread that
/// wakes now and then (a sleeping loop) is caught blocked, and only one
/// that is on a CPU every time counts as running.
pub(crate) fn blocked_view(tid: i32) -> Option<(KernelThread, Option<proc_threads::BlockedCall>)> {
    const LOOKS: u32 = 5;
    for look in 1..=LOOKS {
        let kernel = proc_threads::read(tid)?;
        if kernel.state != 'R' {
            let call = proc_threads::blocked_call(tid);
            // A call read as it returns is no call: look again.
            if call.is_some() || look == LOOKS {
                return Some((kernel, call));
            }
        } else if look == LOOKS {
            return Some((kernel, None));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// What a thread is to tokio, told from its stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuntimeRole {
    /// A multi-thread runtime's worker, or the thread tokio starts to take
    /// a task dump of one: the runtime's, never a leak.
    Worker,
    /// A blocking-pool thread waiting for work: never a leak.
    Idle,
    /// A blocking-pool thread running a `spawn_blocking` closure.
    Blocking,
    /// Not a runtime thread, as far as the stack shows.
    None,
}

impl RuntimeRole {
    pub(crate) fn of(functions: &[FrameNames]) -> Self {
        let has = |needle: &str| {
            functions
                .iter()
                .any(|frame| frame_is(frame, |function| function.contains(needle)))
        };
        if has("tokio::runtime::scheduler::multi_thread::worker::") || has("tokio::runtime::handle::spawn_thread") {
            RuntimeRole::Worker
        } else if has("tokio::runtime::blocking::task::BlockingTask") {
            RuntimeRole::Blocking
        } else if has("tokio::runtime::blocking::pool::Inner::run") {
            RuntimeRole::Idle
        } else {
            RuntimeRole::None
        }
    }
}

/// What a thread is blocked in: the kernel's view first (scheduler state,
/// system call), the stack's frames to name the primitive behind a futex.
/// `peer_closed` lists the process's sockets whose peer has closed them,
/// asked only for a running thread caught in a read.
pub(crate) fn classify(
    state: char,
    call: Option<proc_threads::BlockedCall>,
    functions: &[FrameNames],
    peer_closed: impl FnOnce() -> Vec<String>,
) -> ThreadState {
    let has = |needles: &[&str]| {
        functions
            .iter()
            .any(|frame| frame_is(frame, |function| needles.iter().any(|n| function.contains(n))))
    };
    if state == 'R' {
        return running(functions, peer_closed);
    }
    let name = call.and_then(|call| proc_threads::syscall_name(call.number));
    let fd = || {
        call.and_then(|call| proc_threads::describe_fd(call.first_argument))
            .unwrap_or_else(|| "a file descriptor".to_owned())
    };
    match name {
        Some("futex") | None if has(&["Mutex", "RwLock", "futex_mutex", "futex_rwlock"]) && !has(&["Condvar"]) => {
            ThreadState::WaitingForLock
        }
        Some("futex") | None if has(&["mpsc", "mpmc", "sync_channel", "crossbeam_channel"]) => {
            ThreadState::WaitingOnChannel
        }
        Some("futex") | None if has(&["Barrier::wait"]) => ThreadState::WaitingAtBarrier,
        Some("futex") | None if has(&["Condvar"]) => ThreadState::WaitingOnCondvar,
        Some("futex") | None if has(&["JoinHandle", "JoinInner"]) && has(&["join"]) => ThreadState::Joining,
        Some("futex") | None if in_std_thread(functions, &["::park", "::park_timeout"]) => ThreadState::Parked,
        Some("futex") => ThreadState::WaitingOnFutex,
        Some("nanosleep" | "clock_nanosleep") => ThreadState::Sleeping,
        None if in_std_thread(functions, &["::sleep", "::sleep_ms", "::sleep_until"]) => ThreadState::Sleeping,
        Some("read" | "readv" | "pread64" | "recvfrom" | "recvmsg") => ThreadState::Reading(fd()),
        Some("write" | "sendto") => ThreadState::Writing(fd()),
        Some("accept" | "accept4") => ThreadState::Accepting(fd()),
        Some("poll" | "ppoll" | "select" | "pselect6" | "epoll_wait" | "epoll_pwait") => ThreadState::Polling,
        Some("wait4" | "waitid") => ThreadState::WaitingForChild,
        Some(other) => ThreadState::InSystemCall(other.to_owned()),
        None => match call {
            Some(call) => ThreadState::InSystemCall(format!("#{}", call.number)),
            None => ThreadState::Unknown(format!("kernel state `{state}`, no system call readable")),
        },
    }
}

/// A thread on a CPU each time it was looked at. One caught inside a read
/// (that read returns at once, or the thread would sleep in it) spins on a
/// stream at its end: which socket comes from the kernel, the one whose
/// peer closed it. A folded frame only some of whose names are reads
/// counts only if the kernel shows such a socket.
fn running(functions: &[FrameNames], peer_closed: impl FnOnce() -> Vec<String>) -> ThreadState {
    let Some(frame) = functions
        .iter()
        .find(|frame| frame.iter().any(|function| is_read(function)))
    else {
        return ThreadState::Running;
    };
    let unanimous = frame_is(frame, is_read);
    match peer_closed().as_slice() {
        [] if unanimous => ThreadState::RunningInRead("a file descriptor".to_owned()),
        [] => ThreadState::Running,
        [socket] => ThreadState::RunningInRead(socket.clone()),
        // Tests running alongside (or earlier ones' leaks) can hold such
        // sockets too, and nothing in `/proc` says which one this thread
        // reads: all are named.
        sockets => ThreadState::RunningInRead(format!(
            "one of {} sockets closed by their peer ({})",
            sockets.len(),
            sockets
                .iter()
                .map(|socket| socket.trim_end_matches(" (closed by its peer)"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether a function reads a socket, pipe or file: the calls a loop that
/// ignores `Ok(0)` (end of stream) spins on.
fn is_read(function: &str) -> bool {
    let function = function.trim_start_matches(['<', '&']);
    let reader = [
        "std::net::",
        "std::os::unix::net::",
        "std::fs::",
        "std::io::stdio::",
        "std::process::",
    ]
    .iter()
    .any(|prefix| function.starts_with(prefix));
    let read = [
        "::read",
        "::read_vectored",
        "::read_buf",
        "::recv",
        "::recv_from",
        "::peek",
    ]
    .iter()
    .any(|suffix| function.ends_with(suffix));
    reader && read
}

/// Whether a frame is a `std::thread` function ending in one of `suffixes`
/// (`std::thread::functions::park`, `<std::thread::thread::Thread>::park`).
fn in_std_thread(functions: &[FrameNames], suffixes: &[&str]) -> bool {
    functions.iter().any(|frame| {
        frame_is(frame, |function| {
            let function = function.trim_start_matches('<');
            function.starts_with("std::thread::") && suffixes.iter().any(|suffix| function.ends_with(suffix))
        })
    })
}

/// The frames of a raw stack as names, for tests of the classification.
#[cfg(test)]
fn names(raw: &[RawFrame]) -> Vec<FrameNames> {
    raw.iter().map(frame_names).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classification of a process with no socket closed by its peer.
    fn classify(state: char, call: Option<proc_threads::BlockedCall>, functions: &[FrameNames]) -> ThreadState {
        super::classify(state, call, functions, Vec::new)
    }

    fn frames(names: &[&str]) -> Vec<FrameNames> {
        super::names(
            &names
                .iter()
                .map(|name| RawFrame::at(name, "/rustc/x/library/std/src/x.rs", 1, 1))
                .collect::<Vec<_>>(),
        )
    }

    fn blocked(number: i64) -> Option<proc_threads::BlockedCall> {
        Some(proc_threads::BlockedCall {
            number,
            first_argument: u64::MAX,
        })
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn futex_waits_are_named_by_the_stack() {
        const FUTEX: i64 = 202;
        let lock = frames(&[
            "std::sys::sync::mutex::futex::Mutex::lock_contended",
            "std::sync::poison::mutex::Mutex<T>::lock",
        ]);
        assert_eq!(classify('S', blocked(FUTEX), &lock), ThreadState::WaitingForLock);
        let channel = frames(&[
            "std::sync::mpmc::array::Channel<T>::recv",
            "std::sync::mpsc::Receiver<T>::recv",
        ]);
        assert_eq!(classify('S', blocked(FUTEX), &channel), ThreadState::WaitingOnChannel);
        let condvar = frames(&[
            "std::sys::sync::condvar::futex::Condvar::wait",
            "std::sync::poison::condvar::Condvar::wait",
        ]);
        assert_eq!(classify('S', blocked(FUTEX), &condvar), ThreadState::WaitingOnCondvar);
        assert_eq!(classify('S', blocked(FUTEX), &[]), ThreadState::WaitingOnFutex);
        assert_eq!(classify('R', blocked(FUTEX), &lock), ThreadState::Running);
        assert_eq!(classify('S', blocked(230), &[]), ThreadState::Sleeping);
        assert_eq!(
            classify('S', blocked(0), &[]),
            ThreadState::Reading("a file descriptor".to_owned())
        );
        assert_eq!(classify('S', blocked(7), &[]), ThreadState::Polling);
        assert_eq!(
            classify('S', blocked(39), &[]),
            ThreadState::InSystemCall("#39".to_owned())
        );
    }

    #[test]
    fn without_a_readable_system_call_the_stack_still_tells() {
        // As std 1.95 names them.
        let sleep = frames(&["std::thread::functions::sleep"]);
        assert_eq!(classify('S', None, &sleep), ThreadState::Sleeping);
        let park = frames(&["std::thread::functions::park"]);
        assert_eq!(classify('S', None, &park), ThreadState::Parked);
        let park = frames(&["<std::thread::thread::Thread>::park"]);
        assert_eq!(classify('S', None, &park), ThreadState::Parked);
        assert!(matches!(classify('S', None, &[]), ThreadState::Unknown(_)));
    }

    /// A frame of merged code: the symbolizer's name, then the others.
    fn folded(name: &str, others: &[&str]) -> RawFrame {
        RawFrame {
            folded: std::iter::once(name)
                .chain(others.iter().copied())
                .map(str::to_owned)
                .collect(),
            ..RawFrame::at(name, "/rustc/x/library/std/src/net/udp.rs", 1, 1)
        }
    }

    #[test]
    fn a_running_thread_in_a_read_keeps_reading_a_stream_at_its_end() {
        let closed = || vec!["TCP 127.0.0.1:2 -> 127.0.0.1:1 (closed by its peer)".to_owned()];
        let read = frames(&["<std::net::tcp::TcpStream as std::io::Read>::read", "my::reader"]);
        assert_eq!(
            super::classify('R', None, &read, closed),
            ThreadState::RunningInRead("TCP 127.0.0.1:2 -> 127.0.0.1:1 (closed by its peer)".to_owned())
        );
        // No socket closed by its peer: the read is still a read.
        assert_eq!(
            classify('R', None, &read),
            ThreadState::RunningInRead("a file descriptor".to_owned())
        );
        // Several: the report cannot pick one.
        let two = || {
            vec![
                "TCP a -> b (closed by its peer)".to_owned(),
                "TCP c -> d (closed by its peer)".to_owned(),
            ]
        };
        assert_eq!(
            super::classify('R', None, &read, two),
            ThreadState::RunningInRead("one of 2 sockets closed by their peer (TCP a -> b, TCP c -> d)".to_owned())
        );
        // Computing, no read: running.
        assert_eq!(classify('R', None, &frames(&["my::crunch"])), ThreadState::Running);
        // Sleeping in a read is a blocked read, not a spin.
        assert!(matches!(classify('S', blocked_read(), &read), ThreadState::Reading(_)));
    }

    /// hyper-util's case: the read's code is also `UdpSocket::recv`'s, and
    /// the symbolizer picked that name.
    #[test]
    fn a_folded_frame_is_trusted_only_when_all_its_names_agree() {
        let recv = names(&[
            folded(
                "<std::net::udp::UdpSocket>::recv",
                &["<std::net::tcp::TcpStream as std::io::Read>::read"],
            ),
            RawFrame::at("my::reader::{{closure}}", "src/reader.rs", 3, 9),
        ]);
        assert_eq!(
            recv[0],
            ["<std::net::udp::UdpSocket>::recv", "std::net::tcp::TcpStream::read"]
        );
        // Every name is a read: a read, whichever ran.
        assert_eq!(
            classify('R', None, &recv),
            ThreadState::RunningInRead("a file descriptor".to_owned())
        );
        // One name a read, the other not: only the kernel can tell.
        let mixed = names(&[folded("<std::net::udp::UdpSocket>::recv", &["my::checksum"])]);
        assert_eq!(classify('R', None, &mixed), ThreadState::Running);
        let closed = || vec!["TCP x -> y (closed by its peer)".to_owned()];
        assert_eq!(
            super::classify('R', None, &mixed, closed),
            ThreadState::RunningInRead("TCP x -> y (closed by its peer)".to_owned())
        );
        // A futex wait in code that is a Mutex's lock or a channel's: the
        // kernel's view (a futex), not one of the names.
        let lock_or_channel = names(&[folded(
            "std::sys::sync::mutex::futex::Mutex::lock_contended",
            &["std::sync::mpmc::list::Channel<T>::recv"],
        )]);
        assert_eq!(
            classify('S', blocked(202), &lock_or_channel),
            ThreadState::WaitingOnFutex
        );
        let lock = names(&[folded(
            "std::sys::sync::mutex::futex::Mutex::lock_contended",
            &["std::sys::sync::rwlock::futex::RwLock::write_contended"],
        )]);
        assert_eq!(classify('S', blocked(202), &lock), ThreadState::WaitingForLock);
    }

    fn blocked_read() -> Option<proc_threads::BlockedCall> {
        #[cfg(target_arch = "x86_64")]
        const READ: i64 = 0;
        #[cfg(not(target_arch = "x86_64"))]
        const READ: i64 = 63;
        blocked(READ)
    }

    #[test]
    fn runtime_roles_come_from_tokio_frames() {
        let worker = frames(&[
            "tokio::runtime::scheduler::multi_thread::worker::Context::park",
            "tokio::runtime::blocking::task::BlockingTask<T>::poll",
            "tokio::runtime::blocking::pool::Inner::run",
        ]);
        assert_eq!(RuntimeRole::of(&worker), RuntimeRole::Worker);
        let busy = frames(&["my::closure", "tokio::runtime::blocking::task::BlockingTask<T>::poll"]);
        assert_eq!(RuntimeRole::of(&busy), RuntimeRole::Blocking);
        let idle = frames(&[
            "std::sync::Condvar::wait_timeout",
            "tokio::runtime::blocking::pool::Inner::run",
        ]);
        assert_eq!(RuntimeRole::of(&idle), RuntimeRole::Idle);
        assert_eq!(RuntimeRole::of(&frames(&["my::thread"])), RuntimeRole::None);
    }
}
