//! The process's threads as the kernel shows them in `/proc/self/task`:
//! identity, name, scheduler state, and the system call each is blocked in.

// Off Linux only the fallbacks remain.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::fmt;

/// A thread's identity: the kernel's id, and when the thread started (ids
/// are reused once a thread exits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ThreadKey {
    pub(crate) tid: i32,
    pub(crate) started: u64,
}

/// One thread as `/proc/self/task/<tid>/stat` shows it.
#[derive(Clone, Debug)]
pub(crate) struct KernelThread {
    pub(crate) key: ThreadKey,
    /// The kernel's name for it (`comm`): at most 15 bytes of the name the
    /// thread set, or its creator's name if it set none.
    pub(crate) name: String,
    /// `R` running, `S` sleeping, `D` uninterruptible, `T` stopped, …
    pub(crate) state: char,
}

/// The system call a thread is blocked in, from `/proc/self/task/<tid>/syscall`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockedCall {
    pub(crate) number: i64,
    pub(crate) first_argument: u64,
}

/// Parses a `stat` line: `tid (comm) S ppid … starttime …`. The name may
/// hold spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(line: &str) -> Option<KernelThread> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let tid = line[..open].trim().parse().ok()?;
    let name = line.get(open + 1..close)?.to_owned();
    let mut fields = line.get(close + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `starttime` is field 22 of the line; `state` is field 3.
    let started = fields.nth(22 - 3 - 1)?.parse().ok()?;
    Some(KernelThread {
        key: ThreadKey { tid, started },
        name,
        state,
    })
}

/// Parses a `syscall` line: `number arg1 … arg6 sp pc`, or `running`, or
/// `-1 sp pc` outside any system call.
pub(crate) fn parse_syscall(line: &str) -> Option<BlockedCall> {
    let mut fields = line.split_whitespace();
    let number: i64 = fields.next()?.parse().ok()?;
    if number < 0 {
        return None;
    }
    let first_argument = u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok()?;
    Some(BlockedCall { number, first_argument })
}

/// A TCP endpoint pair from `/proc/net/tcp*`: `local -> remote`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TcpEnds {
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) listening: bool,
    /// In `CLOSE_WAIT`: the peer closed its end, this one is still open, and
    /// a read returns `Ok(0)` (end of stream) at once.
    pub(crate) peer_closed: bool,
}

impl fmt::Display for TcpEnds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.listening {
            write!(f, "TCP listener {}", self.local)
        } else if self.peer_closed {
            write!(f, "TCP {} -> {} (closed by its peer)", self.local, self.remote)
        } else {
            write!(f, "TCP {} -> {}", self.local, self.remote)
        }
    }
}

/// Finds socket `inode` in the text of `/proc/net/tcp` or `tcp6`.
pub(crate) fn find_tcp(table: &str, inode: u64) -> Option<TcpEnds> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        Some(TcpEnds {
            local: decode_endpoint(fields.get(1)?)?,
            remote: decode_endpoint(fields.get(2)?)?,
            // State 0A is LISTEN, 08 CLOSE_WAIT.
            listening: *fields.get(3)? == "0A",
            peer_closed: *fields.get(3)? == "08",
        })
    })
}

/// `0100007F:1F90` is 127.0.0.1:8080: the address is stored as 32-bit words
/// in host (little-endian) order, the port in big-endian hex.
fn decode_endpoint(hex: &str) -> Option<String> {
    let (address, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..address.len() / 8)
        .map(|index| u32::from_str_radix(&address[index * 8..index * 8 + 8], 16).map(u32::from_be))
        .collect::<Result<_, _>>()
        .ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_be_bytes()).collect();
    let ip: std::net::IpAddr = match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
        16 => {
            let v6 = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(v6.into(), Into::into)
        }
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port).to_string())
}

#[cfg(target_os = "linux")]
mod platform {
    use super::{BlockedCall, KernelThread, TcpEnds, find_tcp, parse_stat, parse_syscall};

    /// Listings taken at most, while threads keep exiting between them: two
    /// when none does.
    const LISTINGS: usize = 8;

    /// The ids of the process's threads; some may have exited since. The
    /// kernel lists `/proc/self/task` by position, and a thread that exits
    /// during a listing shifts those after it, so one listing can skip a
    /// live thread. A listing that skipped one holds the thread whose exit
    /// caused it, which the next listing lacks: listings are taken until two
    /// in a row are the same (at most [`LISTINGS`]), and every thread any
    /// of them saw is returned.
    pub(crate) fn ids() -> Result<Vec<i32>, String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut previous = listed_set()?;
        seen.extend(&previous);
        for _ in 1..LISTINGS {
            let listed = listed_set()?;
            seen.extend(&listed);
            if listed == previous {
                break;
            }
            previous = listed;
        }
        Ok(seen.into_iter().collect())
    }

    fn listed_set() -> Result<std::collections::BTreeSet<i32>, String> {
        Ok(list_once()?.into_iter().collect())
    }

    use crate::threads::task_listing::list_once;

    pub(crate) use crate::threads::task_listing::{boot_ticks, handed_out, has_thread, is_handed_out, last_pid};

    #[cfg(test)]
    pub(crate) fn list() -> Result<Vec<KernelThread>, String> {
        // A thread that exits between the listing and the read is gone.
        Ok(ids()?.into_iter().filter_map(read).collect())
    }

    /// The process's thread count, from one read of `/proc/self/status`
    /// (cheaper than listing them): what the monitor samples.
    pub(crate) fn count() -> Option<usize> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|count| count.trim().parse().ok())
    }

    pub(crate) fn read(tid: i32) -> Option<KernelThread> {
        parse_stat(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)
    }

    pub(crate) fn blocked_call(tid: i32) -> Option<BlockedCall> {
        parse_syscall(&std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?)
    }

    /// What file descriptor `fd` is: a path, a TCP connection, or the
    /// kernel's `socket:[…]`/`pipe:[…]` tag.
    pub(crate) fn describe_fd(fd: u64) -> Option<String> {
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
        let target = target.display().to_string();
        let inode = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|inode| inode.parse().ok());
        let Some(inode) = inode else {
            return Some(target);
        };
        let tcp = ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .find_map(|table| find_tcp(&table, inode));
        Some(tcp.map_or(target, |ends: TcpEnds| ends.to_string()))
    }

    /// The process's TCP sockets whose peer has closed them (`CLOSE_WAIT`),
    /// described, in fd order: what a thread spinning on a read that
    /// returns 0 reads.
    pub(crate) fn peer_closed_sockets() -> Vec<String> {
        let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
            return Vec::new();
        };
        let mut sockets: Vec<(u64, u64)> = entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let fd = entry.file_name().to_str()?.parse().ok()?;
                let target = std::fs::read_link(entry.path()).ok()?;
                let inode = target
                    .to_str()?
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()?;
                Some((fd, inode))
            })
            .collect();
        if sockets.is_empty() {
            return Vec::new();
        }
        sockets.sort_unstable();
        // Both tables read once, for every socket.
        let tables: Vec<String> = ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
            .iter()
            .filter_map(|table| std::fs::read_to_string(table).ok())
            .collect();
        sockets
            .into_iter()
            .filter_map(|(_, inode)| tables.iter().find_map(|table| find_tcp(table, inode)))
            .filter(|ends| ends.peer_closed)
            .map(|ends| ends.to_string())
            .collect()
    }

    pub(crate) fn current_tid() -> i32 {
        // SAFETY: `gettid` has no preconditions.
        unsafe { libc::syscall(libc::SYS_gettid) as i32 }
    }

    pub(crate) fn current_name() -> Option<String> {
        let mut name = [0u8; 16];
        // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, into
        // the buffer, which has 16.
        let read = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } == 0;
        let len = name.iter().position(|byte| *byte == 0).unwrap_or(name.len());
        read.then(|| String::from_utf8_lossy(&name[..len]).into_owned())
    }

    /// Renames the calling thread for the kernel (not for Rust: panic
    /// messages keep `Thread::name`). Threads it starts without a name of
    /// their own inherit this one. Longer names are cut to 15 bytes.
    pub(crate) fn set_current_name(name: &str) -> std::io::Result<()> {
        let mut bytes = [0u8; 16];
        let len = name.len().min(15);
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16
        // bytes; `bytes` has 16 and ends in NUL.
        match unsafe { libc::prctl(libc::PR_SET_NAME, bytes.as_ptr()) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// The name of a system call threads commonly block in.
    pub(crate) fn syscall_name(number: i64) -> Option<&'static str> {
        let known: &[(libc::c_long, &str)] = &[
            (libc::SYS_futex, "futex"),
            (libc::SYS_nanosleep, "nanosleep"),
            (libc::SYS_clock_nanosleep, "clock_nanosleep"),
            (libc::SYS_read, "read"),
            (libc::SYS_readv, "readv"),
            (libc::SYS_pread64, "pread64"),
            (libc::SYS_recvfrom, "recvfrom"),
            (libc::SYS_recvmsg, "recvmsg"),
            (libc::SYS_write, "write"),
            (libc::SYS_sendto, "sendto"),
            (libc::SYS_accept, "accept"),
            (libc::SYS_accept4, "accept4"),
            (libc::SYS_connect, "connect"),
            (libc::SYS_ppoll, "ppoll"),
            (libc::SYS_pselect6, "pselect6"),
            (libc::SYS_epoll_pwait, "epoll_pwait"),
            (libc::SYS_wait4, "wait4"),
            (libc::SYS_waitid, "waitid"),
            #[cfg(target_arch = "x86_64")]
            (libc::SYS_poll, "poll"),
            #[cfg(target_arch = "x86_64")]
            (libc::SYS_select, "select"),
            #[cfg(target_arch = "x86_64")]
            (libc::SYS_epoll_wait, "epoll_wait"),
        ];
        // `c_long` is 32 bits wide on some targets.
        #[allow(clippy::useless_conversion)]
        let wide = |number: libc::c_long| i64::from(number);
        known
            .iter()
            .find(|(known, _)| wide(*known) == number)
            .map(|(_, name)| *name)
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::{BlockedCall, KernelThread};

    pub(crate) fn last_pid() -> Option<i32> {
        None
    }

    pub(crate) fn ids() -> Result<Vec<i32>, String> {
        Err("threads are listed from /proc, which only Linux has".to_owned())
    }
    pub(crate) fn boot_ticks() -> Option<u64> {
        None
    }
    pub(crate) fn handed_out(_before: i32, _now: i32, _limit: usize) -> Option<Vec<i32>> {
        None
    }
    pub(crate) fn is_handed_out(_pid: i32, _before: i32, _now: i32) -> bool {
        false
    }
    pub(crate) fn has_thread(_tid: i32) -> Result<bool, String> {
        Err("threads are listed from /proc, which only Linux has".to_owned())
    }
    pub(crate) fn count() -> Option<usize> {
        None
    }
    pub(crate) fn read(_tid: i32) -> Option<KernelThread> {
        None
    }
    pub(crate) fn blocked_call(_tid: i32) -> Option<BlockedCall> {
        None
    }
    pub(crate) fn describe_fd(_fd: u64) -> Option<String> {
        None
    }
    pub(crate) fn peer_closed_sockets() -> Vec<String> {
        Vec::new()
    }
    pub(crate) fn current_tid() -> i32 {
        0
    }
    pub(crate) fn current_name() -> Option<String> {
        None
    }
    pub(crate) fn set_current_name(_name: &str) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }
    pub(crate) fn syscall_name(_number: i64) -> Option<&'static str> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) use platform::list;
pub(crate) use platform::{
    blocked_call, boot_ticks, count, current_name, current_tid, describe_fd, handed_out, has_thread, ids,
    is_handed_out, last_pid, peer_closed_sockets, read, set_current_name, syscall_name,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        let line = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        let thread = parse_stat(line).expect("parses");
        assert_eq!(
            thread.key,
            ThreadKey {
                tid: 4242,
                started: 987654
            }
        );
        assert_eq!(thread.name, "a (weird) name");
        assert_eq!(thread.state, 'S');
    }

    #[test]
    fn syscall_lines_parse_only_when_blocked() {
        let blocked = parse_syscall("202 0x7f00 0x80 0x0 0x0 0x0 0x0 0x7ffd 0x7f12").expect("blocked");
        assert_eq!(
            blocked,
            BlockedCall {
                number: 202,
                first_argument: 0x7f00
            }
        );
        assert_eq!(parse_syscall("running"), None);
        assert_eq!(parse_syscall("-1 0x7ffd 0x7f12"), None);
    }

    /// The kernel lists `/proc/self/task` by position, so a listing taken
    /// while threads before a live one exit can skip it: `ids` must not.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_listing_taken_while_threads_exit_misses_no_live_thread() {
        use std::sync::mpsc::channel;
        const ROUNDS: usize = 300;
        let (stop, stopped) = channel::<()>();
        let stopped = std::sync::Arc::new(std::sync::Mutex::new(stopped));
        let mut survivors = Vec::new();
        let mut missed = 0;
        for _ in 0..ROUNDS {
            // Threads that exit all at once, listed before the survivor.
            let (release, released) = channel::<()>();
            let released = std::sync::Arc::new(std::sync::Mutex::new(released));
            let doomed: Vec<_> = (0..16)
                .map(|_| {
                    let released = std::sync::Arc::clone(&released);
                    std::thread::spawn(move || drop(released.lock().map(|receiver| receiver.recv())))
                })
                .collect();
            let (tid_of, tid) = channel();
            let stopped = std::sync::Arc::clone(&stopped);
            survivors.push(std::thread::spawn(move || {
                tid_of.send(current_tid()).expect("the test listens");
                drop(stopped.lock().map(|receiver| receiver.recv()));
            }));
            let survivor = tid.recv().expect("the survivor started");
            drop(release);
            if !ids().expect("listable").contains(&survivor) {
                missed += 1;
            }
            for thread in doomed {
                thread.join().expect("joins");
            }
        }
        drop(stop);
        for thread in survivors {
            thread.join().expect("joins");
        }
        assert_eq!(missed, 0, "listings that missed a live thread, of {ROUNDS}");
    }

    #[test]
    fn tcp_tables_decode_v4_and_mapped_v6() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 5551 1\n   \
            1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5552 1\n   \
            2: 0100007F:D432 0100007F:1F90 08 00000000:00000000 00:00000000 00000000  1000        0 5553 1\n";
        let ends = find_tcp(table, 5551).expect("found");
        assert_eq!(ends.to_string(), "TCP 127.0.0.1:8080 -> 127.0.0.1:54321");
        assert_eq!(
            find_tcp(table, 5552).expect("found").to_string(),
            "TCP listener 127.0.0.1:8081"
        );
        assert_eq!(
            find_tcp(table, 5553).expect("found").to_string(),
            "TCP 127.0.0.1:54322 -> 127.0.0.1:8080 (closed by its peer)"
        );
        assert_eq!(find_tcp(table, 1), None);
        let mapped =
            "header\n 0: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 x x x x x 77\n";
        assert_eq!(find_tcp(mapped, 77).expect("found").local, "127.0.0.1:8080");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_socket_whose_peer_closed_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let ours = client.local_addr().expect("address").to_string();
        assert!(!peer_closed_sockets().iter().any(|socket| socket.contains(&ours)));
        drop(listener.accept().expect("accept"));
        // The peer's FIN arrives over loopback at once; give it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let closed = loop {
            let closed = peer_closed_sockets();
            if closed.iter().any(|socket| socket.contains(&ours)) || std::time::Instant::now() > deadline {
                break closed;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let expected = format!("TCP {ours} -> ");
        assert!(
            closed
                .iter()
                .any(|socket| socket.starts_with(&expected) && socket.ends_with("(closed by its peer)")),
            "{closed:?}"
        );
        drop(client);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_thread_is_listed_and_can_be_renamed() {
        let me = current_tid();
        let handle = std::thread::spawn(move || {
            let mine = current_tid();
            set_current_name("tl-test-rename").expect("rename");
            let listed = list().expect("list");
            assert!(listed.iter().any(|thread| thread.key.tid == me));
            let me_listed = listed.iter().find(|thread| thread.key.tid == mine).expect("listed");
            assert_eq!(me_listed.name, "tl-test-rename");
            assert_eq!(current_name().as_deref(), Some("tl-test-rename"));
            // An unnamed thread inherits the kernel name of its creator.
            std::thread::spawn(current_name).join().expect("child")
        });
        assert_eq!(handle.join().expect("thread").as_deref(), Some("tl-test-rename"));
    }
}
