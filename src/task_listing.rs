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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_names_this_thread_and_a_parked_one_as_read_dir_does() {
        let (tid_sender, tid) = std::sync::mpsc::channel();
        let parked = std::thread::spawn(move || {
            tid_sender.send(crate::proc_threads::current_tid()).expect("sent");
            std::thread::park();
        });
        let parked_tid = tid.recv().expect("the parked thread's id");
        let own = crate::proc_threads::current_tid();
        // Twice: the second listing rewinds the directory kept open.
        for _ in 0..2 {
            let listed = list_once().expect("a listing");
            assert!(listed.contains(&own) && listed.contains(&parked_tid), "{listed:?}");
        }
        let by_read_dir: Vec<i32> = std::fs::read_dir("/proc/self/task")
            .expect("read_dir")
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        assert!(by_read_dir.contains(&own) && by_read_dir.contains(&parked_tid));
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
}
