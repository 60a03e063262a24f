//! Cheap looks at the process's threads for a check that runs on every
//! test: one listing of `/proc/self/task` from a directory kept open, and
//! the kernel's last-handed-out pid, which says whether any thread started.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Room for about 680 threads per `getdents64` call; more take more calls.
const BUFFER: usize = 16 * 1024;

/// What a directory entry of `/proc/self/task` takes at the most: the
/// 19-byte header, a 10-digit id and its NUL, rounded up to 8 bytes.
const LARGEST_ENTRY: usize = 32;

/// `/proc/self/task`, opened once per process (`pid`): each listing
/// rewinds it rather than opening, checking and closing it again.
struct TaskDir {
    pid: u32,
    dir: File,
    buffer: Vec<u64>,
}

static TASK_DIR: Mutex<Option<TaskDir>> = Mutex::new(None);

/// One listing of the process's thread ids, in the kernel's order.
///
/// # Errors
///
/// When `/proc/self/task` cannot be opened or read.
pub(crate) fn list_once() -> Result<Vec<i32>, String> {
    let mut task_dir = TASK_DIR.lock().unwrap_or_else(PoisonError::into_inner);
    // A forked child would list its parent's threads through the old one.
    if task_dir.as_ref().is_none_or(|open| open.pid != std::process::id()) {
        *task_dir = Some(TaskDir {
            pid: std::process::id(),
            dir: File::open("/proc/self/task").map_err(cannot_list)?,
            buffer: vec![0; BUFFER / 8],
        });
    }
    let Some(TaskDir { dir, buffer, .. }) = task_dir.as_mut() else {
        unreachable!("opened above")
    };
    dir.seek(SeekFrom::Start(0)).map_err(cannot_list)?;
    let mut ids = Vec::new();
    loop {
        let capacity = buffer.len() * 8;
        // SAFETY: `getdents64` writes at most `capacity` bytes into the
        // buffer, which is `capacity` bytes long (u64s, so aligned for the
        // entries' 8-byte fields), from an open directory descriptor.
        let filled = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buffer.as_mut_ptr().cast::<u8>(),
                capacity,
            )
        };
        let Ok(filled) = usize::try_from(filled) else {
            return Err(cannot_list(std::io::Error::last_os_error()));
        };
        if filled == 0 {
            break;
        }
        // SAFETY: the kernel initialized `filled` bytes of the buffer, and
        // `filled <= capacity`, its length in bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), filled) };
        ids.extend(thread_ids(bytes));
        // The kernel fills the buffer until the list ends: room left for
        // another entry means it has.
        if capacity - filled >= LARGEST_ENTRY {
            break;
        }
    }
    Ok(ids)
}

/// Whether this process has a thread `tid`: one `tgkill` with signal 0,
/// which sends nothing — the kernel only looks the id up among this
/// process's threads. No path is walked and nothing allocated: cheaper
/// than a look in `/proc/self/task`, and than a listing for a few ids. A
/// thread that has just ended may still be found; its `stat` says so.
///
/// # Errors
///
/// When the kernel refuses the look-up (an id that is no thread id).
pub(crate) fn has_thread(tid: i32) -> Result<bool, String> {
    // SAFETY: `getpid` has no preconditions; `tgkill` with signal 0 delivers
    // no signal and has no other effect.
    let looked_up = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) };
    if looked_up == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(format!("cannot look up thread {tid}: {error}")),
    }
}

fn cannot_list(error: std::io::Error) -> String {
    format!("cannot list the process's threads in /proc/self/task: {error}")
}

/// The numeric names among `linux_dirent64` records (`.` and `..` are not).
fn thread_ids(mut records: &[u8]) -> impl Iterator<Item = i32> + '_ {
    std::iter::from_fn(move || {
        loop {
            // d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
            let length = usize::from(u16::from_ne_bytes([*records.get(16)?, *records.get(17)?]));
            let record = records.get(..length).filter(|_| length > 19)?;
            records = &records[length..];
            let name = &record[19..];
            let name = &name[..name.iter().position(|byte| *byte == 0).unwrap_or(name.len())];
            if let Some(id) = std::str::from_utf8(name).ok().and_then(|name| name.parse().ok()) {
                return Some(id);
            }
        }
    })
}

/// The last pid the kernel handed out in this pid namespace
/// (`/proc/sys/kernel/ns_last_pid`). Every thread or process started
/// anywhere in the namespace moves it, so while it reads the same, no
/// thread was started — unless the kernel handed out every pid it has
/// (`pid_max`, 32 768 at the least) in between and came back to the same
/// one. `None` where it cannot be read.
pub(crate) fn last_pid() -> Option<i32> {
    static FILE: OnceLock<Option<File>> = OnceLock::new();
    let file = FILE
        .get_or_init(|| File::open("/proc/sys/kernel/ns_last_pid").ok())
        .as_ref()?;
    let mut text = [0u8; 16];
    let read = file.read_at(&mut text, 0).ok()?;
    std::str::from_utf8(&text[..read]).ok()?.trim().parse().ok()
}

/// The pids the kernel handed out after `before` up to `now` (two reads of
/// [`last_pid`]), when they are at most `limit`: the kernel hands pids out
/// in increasing order and wraps from `pid_max` back to the low ones.
/// `None` when there are more (probing each would cost more than a listing)
/// or `pid_max` cannot be read.
pub(crate) fn handed_out(before: i32, now: i32, limit: usize) -> Option<Vec<i32>> {
    // Up to `now`, or up to `pid_max` (never handed out itself) and on
    // from 1 to `now`.
    let (high_end, low_end) = if now >= before { (now, 0) } else { (pid_max()? - 1, now) };
    let count = (high_end - before).max(0) + low_end;
    (usize::try_from(count).ok()? <= limit).then(|| (before + 1..=high_end).chain(1..=low_end).collect())
}

/// Whether `pid` is among those [`handed_out`] after `before` up to `now`.
pub(crate) fn is_handed_out(pid: i32, before: i32, now: i32) -> bool {
    if now >= before {
        pid > before && pid <= now
    } else {
        pid > before || pid <= now
    }
}

/// The kernel's `pid_max`, read once: where it wraps back to low pids.
fn pid_max() -> Option<i32> {
    static PID_MAX: OnceLock<Option<i32>> = OnceLock::new();
    *PID_MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()?
            .trim()
            .parse()
            .ok()
    })
}

/// Clock ticks since boot, as `/proc/<pid>/task/<tid>/stat` counts a
/// thread's start (`starttime`: `CLOCK_BOOTTIME` in `USER_HZ` ticks, cut
/// down): a thread started after this call shows a start no earlier.
pub(crate) fn boot_ticks() -> Option<u64> {
    static NANOS_PER_TICK: OnceLock<Option<u64>> = OnceLock::new();
    let nanos_per_tick = (*NANOS_PER_TICK.get_or_init(|| {
        // SAFETY: `sysconf` has no preconditions.
        let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        1_000_000_000u64.checked_div(ticks_per_second)
    }))?;
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes one `timespec` into `now`, which is one.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0 {
        return None;
    }
    let nanos = u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?;
    Some(nanos / nanos_per_tick)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread that waits to be unparked, and its id.
    fn parked_thread() -> (std::thread::JoinHandle<()>, i32) {
        let (sender, tid) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            sender.send(crate::threads::proc_threads::current_tid()).expect("sent");
            std::thread::park();
        });
        (thread, tid.recv().expect("the thread's id"))
    }

    #[test]
    fn a_listing_names_this_thread_and_a_parked_one_as_read_dir_does() {
        let (parked, parked_tid) = parked_thread();
        let own = crate::threads::proc_threads::current_tid();
        // A thread of another test exiting during a listing can make it
        // skip a live one (hence `proc_threads::ids`): each kind of listing
        // is taken until one shows both, which one soon does.
        let shows_both = |listed: &[i32]| listed.contains(&own) && listed.contains(&parked_tid);
        // More than once: later listings rewind the directory kept open.
        let showing = (0..100)
            .filter(|_| shows_both(&list_once().expect("a listing")))
            .take(2)
            .count();
        assert_eq!(showing, 2);
        let by_read_dir = || -> Vec<i32> {
            std::fs::read_dir("/proc/self/task")
                .expect("read_dir")
                .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        };
        assert!((0..100).any(|_| shows_both(&by_read_dir())));
        parked.thread().unpark();
        parked.join().expect("joined");
    }

    #[test]
    fn entries_are_read_whatever_their_length_and_dots_are_skipped() {
        fn record(name: &str) -> Vec<u8> {
            let length = (19 + name.len() + 1).div_ceil(8) * 8;
            let mut record = vec![0u8; length];
            record[16..18].copy_from_slice(&u16::try_from(length).expect("short").to_ne_bytes());
            record[19..19 + name.len()].copy_from_slice(name.as_bytes());
            record
        }
        let records: Vec<u8> = [".", "..", "7", "1234567890", "42"]
            .iter()
            .flat_map(|name| record(name))
            .collect();
        assert_eq!(thread_ids(&records).collect::<Vec<_>>(), [7, 1234567890, 42]);
        // A truncated record ends the list rather than reading past it.
        assert_eq!(thread_ids(&records[..records.len() - 3]).count(), 2);
    }

    #[test]
    fn starting_a_thread_moves_the_last_pid() {
        let Some(before) = last_pid() else {
            return; // not readable here: checks fall back to listings
        };
        std::thread::spawn(|| ()).join().expect("joined");
        assert_ne!(last_pid(), Some(before));
    }
    #[test]
    fn a_thread_is_found_while_alive_and_not_after_it_is_joined() {
        let (thread, tid) = parked_thread();
        assert_eq!(has_thread(tid), Ok(true));
        assert_eq!(has_thread(crate::threads::proc_threads::current_tid()), Ok(true));
        thread.thread().unpark();
        thread.join().expect("joined");
        // Joined: the kernel has cleared its id; it forgets the thread a
        // moment later.
        let mut gone = false;
        for _ in 0..1000 {
            gone = has_thread(tid) == Ok(false);
            if gone {
                break;
            }
            std::thread::yield_now();
        }
        assert!(gone, "thread {tid} still listed");
        assert_eq!(has_thread(i32::MAX), Ok(false));
        assert!(has_thread(-1).is_err());
    }

    #[test]
    fn pids_handed_out_are_counted_across_the_wrap() {
        assert_eq!(handed_out(10, 13, 8), Some(vec![11, 12, 13]));
        assert_eq!(handed_out(10, 30, 8), None);
        assert!(is_handed_out(11, 10, 13) && is_handed_out(13, 10, 13));
        assert!(!is_handed_out(10, 10, 13) && !is_handed_out(14, 10, 13));
        let Some(max) = pid_max() else { return };
        assert_eq!(handed_out(max - 2, 2, 8), Some(vec![max - 1, 1, 2]));
        assert!(is_handed_out(max - 1, max - 2, 2) && is_handed_out(1, max - 2, 2));
        assert!(!is_handed_out(max - 2, max - 2, 2) && !is_handed_out(3, max - 2, 2));
    }

    #[test]
    fn a_thread_started_after_a_boot_tick_reading_shows_no_earlier_start() {
        let Some(before) = boot_ticks() else { return };
        let (thread, tid) = parked_thread();
        let started = crate::threads::proc_threads::read(tid).expect("alive").key.started;
        thread.thread().unpark();
        thread.join().expect("joined");
        let own = crate::threads::proc_threads::read(crate::threads::proc_threads::current_tid()).expect("alive");
        assert!(started >= before, "started {started}, reading {before}");
        // This thread started before the reading.
        assert!(own.key.started <= before);
        assert!(boot_ticks().expect("again") >= started);
    }
}
