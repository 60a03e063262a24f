//! Another thread's native stack, captured by a signal and bounded in time:
//! the target thread records its own return addresses in a signal handler,
//! the checking thread waits for them, then symbolizes them.
//!
//! The handler takes no lock and allocates nothing: it writes addresses
//! into a static slot with atomics, and unwinds with the platform unwinder
//! (lock-free with glibc ≥ 2.35, which libgcc uses through
//! `_dl_find_object`). The waiting side gives up after a bound, so a thread
//! that never runs its handler (blocked in the kernel, or with the signal
//! masked) costs a timeout, never a hang.

use std::time::Duration;

use crate::stack::RawFrame;

/// How long one capture may take before the report says it could not.
pub(crate) const CAPTURE_TIMEOUT: Duration = Duration::from_millis(250);

/// Frames kept per thread; deeper stacks are cut at their outermost end.
const MAX_FRAMES: usize = 96;

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
    platform::capture(tid).map(|addresses| symbolize(&addresses))
}

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
            });
        });
        if !resolved {
            frames.push(RawFrame {
                name: format!("{address:#x}"),
                ..RawFrame::default()
            });
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
    use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock, PoisonError};
    use std::time::Instant;

    use super::{CAPTURE_TIMEOUT, MAX_FRAMES};

    /// The one capture in flight: its state, its target and what it found.
    struct Slot {
        state: AtomicU8,
        target: AtomicI32,
        len: AtomicUsize,
        addresses: [AtomicUsize; MAX_FRAMES],
    }

    const IDLE: u8 = 0;
    const REQUESTED: u8 = 1;
    const WRITING: u8 = 2;
    const DONE: u8 = 3;

    static SLOT: Slot = Slot {
        state: AtomicU8::new(IDLE),
        target: AtomicI32::new(0),
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
    /// leaving the program's own signals alone.
    fn install() -> Result<libc::c_int, String> {
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
        let asked = SLOT.target.load(Ordering::Acquire) == me
            && SLOT
                .state
                .compare_exchange(REQUESTED, WRITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if asked {
            let mut len = 0;
            let mut past_handler = false;
            // SAFETY: the unsynchronized variant takes no lock (the
            // synchronized one would, and could deadlock in a handler); no
            // other thread unwinds through this slot, as the state machine
            // admits one writer.
            unsafe {
                backtrace::trace_unsynchronized(|frame| {
                    if !past_handler {
                        // Skip the unwinder, this handler and the signal
                        // trampoline: the stack starts where the thread was.
                        past_handler = std::ptr::eq(frame.symbol_address(), handler as *mut c_void);
                        return true;
                    }
                    SLOT.addresses[len].store(frame.ip() as usize, Ordering::Relaxed);
                    len += 1;
                    len < MAX_FRAMES
                });
            }
            SLOT.len.store(len, Ordering::Relaxed);
            SLOT.state.store(DONE, Ordering::Release);
        }
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = errno };
    }

    pub(super) fn capture(tid: i32) -> Result<Vec<usize>, String> {
        let signal = signal()?;
        let _one_at_a_time = CAPTURING.lock().unwrap_or_else(PoisonError::into_inner);
        if SLOT.state.load(Ordering::Acquire) == WRITING {
            return Err("an earlier capture never finished".to_owned());
        }
        if !still_ours(signal) {
            return Err(format!(
                "the program took over signal {signal}, which taskleak captured stacks with"
            ));
        }
        SLOT.len.store(0, Ordering::Relaxed);
        SLOT.target.store(tid, Ordering::Release);
        SLOT.state.store(REQUESTED, Ordering::Release);
        // SAFETY: `tgkill` only sends a signal, to a thread of this process
        // (`getpid`): at worst the thread is gone (ESRCH), reported below.
        let sent = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) } == 0;
        if !sent {
            let error = std::io::Error::last_os_error();
            abandon();
            return Err(if error.raw_os_error() == Some(libc::ESRCH) {
                "the thread exited before its stack could be captured".to_owned()
            } else {
                format!("could not signal the thread: {error}")
            });
        }
        let deadline = Instant::now() + CAPTURE_TIMEOUT;
        let mut pause = std::time::Duration::from_micros(20);
        loop {
            match SLOT.state.load(Ordering::Acquire) {
                DONE => break,
                REQUESTED if Instant::now() >= deadline && abandon() => {
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
        let addresses = SLOT.addresses[..len]
            .iter()
            .map(|address| address.load(Ordering::Relaxed))
            .collect();
        SLOT.state.store(IDLE, Ordering::Release);
        SLOT.target.store(0, Ordering::Release);
        Ok(addresses)
    }

    /// Withdraws a request the target has not started on; `false` if it has.
    fn abandon() -> bool {
        let withdrawn = SLOT
            .state
            .compare_exchange(REQUESTED, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if withdrawn {
            // A late handler compares its id with this and does nothing.
            SLOT.target.store(0, Ordering::Release);
        }
        withdrawn
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    pub(super) fn capture(_tid: i32) -> Result<Vec<usize>, String> {
        Err("native stacks of other threads are captured on Linux only".to_owned())
    }
}
