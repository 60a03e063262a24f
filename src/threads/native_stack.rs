//! Another thread's native stack, captured by a signal and bounded in time:
//! the target thread records its own return addresses in a signal handler,
//! the checking thread waits for them, then symbolizes them.
//!
//! The handler takes no lock and allocates nothing: it writes addresses
//! into a static slot with atomics, and unwinds with the platform unwinder,
//! which is lock-free only with glibc 2.35 or later (libgcc finds unwind
//! tables through its `_dl_find_object`); elsewhere (older glibc, musl)
//! unwinding takes loader locks the interrupted code may hold, so stacks are
//! not captured there at all. The waiting side gives up after a bound, so a
//! thread that never runs its handler (blocked in the kernel, or with the
//! signal masked) costs a timeout, never a hang.

// Off Linux only the fallbacks remain.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::time::Duration;

use crate::model::RawFrame;

/// How long one capture may take before the report says it could not.
pub(crate) const CAPTURE_TIMEOUT: Duration = Duration::from_millis(250);

/// Frames kept per thread; deeper stacks are cut at their outermost end
/// (where a blocking-pool thread shows tokio's frames: keep it deep).
const MAX_FRAMES: usize = 256;

/// A captured stack, innermost frame first, symbolized.
pub(crate) type Frames = Vec<RawFrame>;

/// Captures the native stack of thread `tid` of this process.
///
/// # Errors
///
/// Why it could not: the platform has no capture, the signal is taken by the
/// program, the thread exited, or it did not answer within
/// [`CAPTURE_TIMEOUT`].
pub(crate) fn capture(tid: i32) -> Result<Frames, String> {
    match platform::capture(tid) {
        Ok(addresses) => Ok(symbolize(&addresses)),
        // A thread that is exiting can still be signalled, and never answers.
        Err(_) if crate::threads::proc_threads::read(tid).is_none() => Err(EXITED.to_owned()),
        Err(reason) => Err(reason),
    }
}

pub(crate) const EXITED: &str = "the thread exited before its stack could be captured";

/// Symbol names and source lines for return addresses, innermost first.
#[cfg(target_os = "linux")]
fn symbolize(addresses: &[usize]) -> Frames {
    let mut frames = Vec::with_capacity(addresses.len());
    for &address in addresses {
        let mut resolved = false;
        // Inlined functions resolve to several symbols, innermost first.
        backtrace::resolve(address as *mut std::ffi::c_void, |symbol| {
            resolved = true;
            frames.push(RawFrame {
                // `#`: without the crate hashes of v0 symbols (`std[…]::`).
                name: symbol.name().map(|name| format!("{name:#}")).unwrap_or_default(),
                file: symbol.filename().map(|path| path.display().to_string()),
                line: symbol.lineno(),
                column: symbol.colno(),
                folded: Vec::new(),
            });
        });
        if !resolved {
            frames.push(RawFrame {
                name: format!("{address:#x}"),
                ..RawFrame::default()
            });
        }
        // A merged body has several names and the symbolizer gives one:
        // the others go with the address's outermost (not inlined) frame,
        // the one the symbol table names.
        let folded = crate::threads::folding::names_at(address);
        if let (false, Some(outermost)) = (folded.is_empty(), frames.last_mut()) {
            outermost.folded = folded;
        }
    }
    frames
}

#[cfg(not(target_os = "linux"))]
fn symbolize(_addresses: &[usize]) -> Frames {
    Vec::new()
}

#[cfg(target_os = "linux")]
mod platform {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::Instant;

    use super::{CAPTURE_TIMEOUT, MAX_FRAMES};

    /// The one capture in flight: which thread it is for and how far it
    /// got (one word, so the handler checks both in one compare-exchange),
    /// and what it found.
    struct Slot {
        request: AtomicU64,
        len: AtomicUsize,
        addresses: [AtomicUsize; MAX_FRAMES],
    }

    const IDLE: u64 = 0;
    const REQUESTED: u64 = 1;
    const WRITING: u64 = 2;
    const DONE: u64 = 3;

    /// The length written when the walk never reached the handler's frame.
    const NOT_FOUND: usize = usize::MAX;

    /// The request word: the target thread's id, then the state.
    fn request(tid: i32, state: u64) -> u64 {
        (u64::from(tid as u32) << 32) | state
    }

    fn state_of(request: u64) -> u64 {
        request & 0xff
    }

    static SLOT: Slot = Slot {
        request: AtomicU64::new(IDLE),
        len: AtomicUsize::new(0),
        addresses: [const { AtomicUsize::new(0) }; MAX_FRAMES],
    };

    /// One capture at a time: the slot is shared.
    static CAPTURING: Mutex<()> = Mutex::new(());

    /// The signal the handler is installed on, or why there is none.
    fn signal() -> Result<libc::c_int, String> {
        static SIGNAL: OnceLock<Result<libc::c_int, String>> = OnceLock::new();
        SIGNAL.get_or_init(install).clone()
    }

    /// Installs the handler on the highest real-time signal nobody handles,
    /// leaving the program's own signals alone — if unwinding in a handler
    /// is safe here.
    fn install() -> Result<libc::c_int, String> {
        lock_free_unwinding()?;
        let (low, high) = (libc::SIGRTMIN() + 4, libc::SIGRTMAX() - 1);
        for signal in (low..=high).rev() {
            // SAFETY: `sigaction` with a null new action only reads the
            // current one into `current`, a zeroed, valid `sigaction`.
            let current = unsafe {
                let mut current: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
                    continue;
                }
                current
            };
            if current.sa_sigaction != libc::SIG_DFL {
                continue;
            }
            // SAFETY: the action is fully initialized (zeroed, then the
            // handler, flags and an emptied mask); `handler` is
            // async-signal-safe (see its comment).
            let installed = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as libc::sighandler_t;
                // SA_RESTART: the interrupted `read` or `accept` goes on as
                // if nothing happened.
                action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
            };
            if installed {
                return Ok(signal);
            }
        }
        Err("every real-time signal taskleak could use is handled by the program".to_owned())
    }

    /// Unwinding takes no lock only with glibc's `_dl_find_object` (2.35).
    #[cfg(target_env = "gnu")]
    fn lock_free_unwinding() -> Result<(), String> {
        // SAFETY: returns a pointer to a static, NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        let version = version.to_string_lossy();
        let mut parts = version.split('.').map(|part| part.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if (major, minor) >= (2, 35) {
            Ok(())
        } else {
            Err(format!(
                "native stacks need glibc 2.35 or later, whose unwinder takes no lock in a signal handler; \
                 this is glibc {version}"
            ))
        }
    }

    #[cfg(not(target_env = "gnu"))]
    fn lock_free_unwinding() -> Result<(), String> {
        Err(
            "native stacks are captured with glibc 2.35 or later only: elsewhere unwinding in a signal \
             handler can take a lock the interrupted thread holds"
                .to_owned(),
        )
    }

    /// Whether our handler is still the one installed on `signal`: a
    /// program may have taken it since, or reset it to the default, whose
    /// action would kill the process.
    fn still_ours(signal: libc::c_int) -> bool {
        // SAFETY: as in `install`, a read-only query into a valid struct.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut current) == 0
                && current.sa_sigaction == handler as *const () as libc::sighandler_t
        }
    }

    /// Runs on the target thread. Async-signal-safe: atomics, `gettid`, and
    /// the unwinder, which neither locks nor allocates here.
    extern "C" fn handler(_signal: libc::c_int, _info: *mut libc::siginfo_t, _context: *mut c_void) {
        // SAFETY: `__errno_location` returns this thread's errno slot,
        // valid for the thread's life; it is restored before returning so
        // the interrupted code never sees our system calls' errors.
        let errno = unsafe { *libc::__errno_location() };
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
        // Only a request for this very thread, still unanswered: a late
        // signal from an abandoned request finds none and does nothing.
        let asked = SLOT
            .request
            .compare_exchange(
                request(me, REQUESTED),
                request(me, WRITING),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok();
        if asked {
            let mut len = 0;
            let mut past_handler = false;
            // SAFETY: the unsynchronized variant takes no lock (the
            // synchronized one would, and could deadlock in a handler); the
            // compare-exchange above admits one writer to the slot.
            unsafe {
                backtrace::trace_unsynchronized(|frame| {
                    if !past_handler {
                        // Skip the unwinder and this handler. (The signal
                        // trampoline, next, is a C frame reports drop.)
                        past_handler = std::ptr::eq(frame.symbol_address(), handler as *mut c_void);
                        return true;
                    }
                    SLOT.addresses[len].store(frame.ip() as usize, Ordering::Relaxed);
                    len += 1;
                    len < MAX_FRAMES
                });
            }
            // No handler frame seen: the walk says nothing about the thread.
            SLOT.len
                .store(if past_handler { len } else { NOT_FOUND }, Ordering::Relaxed);
            SLOT.request.store(request(me, DONE), Ordering::Release);
        }
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
    }

    pub(super) fn capture(tid: i32) -> Result<Vec<usize>, String> {
        let signal = signal()?;
        let _one_at_a_time = CAPTURING.lock().unwrap_or_else(PoisonError::into_inner);
        if state_of(SLOT.request.load(Ordering::Acquire)) == WRITING {
            return Err("an earlier capture never finished".to_owned());
        }
        if !still_ours(signal) {
            return Err(format!(
                "the program took over signal {signal}, which taskleak captured stacks with"
            ));
        }
        SLOT.len.store(0, Ordering::Relaxed);
        SLOT.request.store(request(tid, REQUESTED), Ordering::Release);
        // SAFETY: `tgkill` only sends a signal, to a thread of this process
        // (`getpid`): at worst the thread is gone (ESRCH), reported below.
        let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) } == 0;
        if !sent {
            let error = std::io::Error::last_os_error();
            abandon(tid);
            return Err(if error.raw_os_error() == Some(libc::ESRCH) {
                super::EXITED.to_owned()
            } else {
                format!("could not signal the thread: {error}")
            });
        }
        let deadline = Instant::now() + CAPTURE_TIMEOUT;
        let mut pause = std::time::Duration::from_micros(20);
        loop {
            match state_of(SLOT.request.load(Ordering::Acquire)) {
                DONE => break,
                REQUESTED if Instant::now() >= deadline && abandon(tid) => {
                    return Err(format!(
                        "the thread did not answer within {} ms (it may be blocked in the kernel \
                         or have the signal masked)",
                        CAPTURE_TIMEOUT.as_millis()
                    ));
                }
                // A walk under way is bounded: give it as long again.
                WRITING if Instant::now() >= deadline + CAPTURE_TIMEOUT => {
                    return Err("the thread's stack walk did not finish".to_owned());
                }
                _ => {}
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(5));
        }
        let len = SLOT.len.load(Ordering::Relaxed);
        if len == NOT_FOUND {
            SLOT.request.store(IDLE, Ordering::Release);
            return Err("the unwinder could not walk the stack from the signal handler".to_owned());
        }
        let addresses = SLOT.addresses[..len]
            .iter()
            .map(|address| address.load(Ordering::Relaxed))
            .collect();
        SLOT.request.store(IDLE, Ordering::Release);
        Ok(addresses)
    }

    /// Withdraws a request the target has not started on; `false` if it has.
    fn abandon(tid: i32) -> bool {
        SLOT.request
            .compare_exchange(request(tid, REQUESTED), IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    pub(super) fn capture(_tid: i32) -> Result<Vec<usize>, String> {
        Err("native stacks of other threads are captured on Linux only".to_owned())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::threads::proc_threads::current_tid;
    use std::sync::mpsc;

    /// Parks a thread in `function` until the returned sender is dropped.
    fn blocked_thread() -> (i32, mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            ready_tx.send(current_tid()).expect("ready");
            waits_for_release(&release_rx);
        });
        let tid = ready_rx.recv().expect("tid");
        (tid, release_tx, handle)
    }

    #[inline(never)]
    fn waits_for_release(release: &mpsc::Receiver<()>) {
        let _ = release.recv();
    }

    #[test]
    fn captures_the_stack_of_a_blocked_thread_and_leaves_it_running() {
        let (tid, release, handle) = blocked_thread();
        // Let it block in `recv` before the capture interrupts it.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let frames = capture(tid).expect("captured");
        let names: Vec<&str> = frames.iter().map(|frame| frame.name.as_str()).collect();
        assert!(
            names.iter().any(|name| name.contains("waits_for_release")),
            "{names:#?}"
        );
        // The handler and the signal trampoline are cut off.
        assert!(
            !names
                .iter()
                .any(|name| name.contains("native_stack::platform::handler")),
            "{names:#?}"
        );
        // Interrupted, the wait goes on as if nothing happened.
        drop(release);
        handle.join().expect("the thread ends normally");
    }

    #[test]
    fn a_thread_that_is_gone_is_an_error_not_a_hang() {
        let tid = std::thread::spawn(current_tid).join().expect("thread");
        let error = capture(tid).expect_err("gone");
        assert!(error.contains("exited"), "{error}");
    }

    #[test]
    fn a_thread_that_never_answers_costs_the_timeout() {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            // SAFETY: blocks every signal on this thread only; the sets are
            // valid, zero-initialized `sigset_t`s filled by `sigfillset`.
            unsafe {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigfillset(&mut all);
                libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
            }
            ready_tx.send(current_tid()).expect("ready");
            let _ = release_rx.recv();
        });
        let tid = ready_rx.recv().expect("tid");
        let started = std::time::Instant::now();
        let error = capture(tid).expect_err("masked");
        assert!(error.contains("did not answer"), "{error}");
        assert!(started.elapsed() < CAPTURE_TIMEOUT * 4, "{:?}", started.elapsed());
        // The pending signal reaches the handler once unblocked; it finds no
        // request for it and returns.
        drop(release_tx);
        handle.join().expect("the thread ends normally");
        // And the next capture works.
        let (tid, release, handle) = blocked_thread();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(capture(tid).is_ok());
        drop(release);
        handle.join().expect("thread");
    }
}
