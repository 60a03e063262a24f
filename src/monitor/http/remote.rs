//! The client side: fetch a running service's JSON dump over plain HTTP/1.1
//! and assert, with a bounded wait, that no task matches a pattern.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Error;
use crate::monitor::task_dump::{TaskDump, TaskGroup};

/// The largest response read: a dump of a million tasks in a thousand
/// groups is far smaller.
const MAX_RESPONSE: usize = 64 << 20;

/// A running service's [`DumpEndpoint`](super::DumpEndpoint), read from a
/// test that drives the service from outside: run a scenario, then assert
/// that none of its tasks is left.
///
/// ```no_run
/// # async fn scenario() -> Result<(), taskleak::Error> {
/// let service = taskleak::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?
///     .within(std::time::Duration::from_secs(10));
/// // … open and close a thousand sessions …
/// service.assert_no_task_matches(r"session::").await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Remote {
    url: String,
    authority: String,
    target: String,
    timeout: Duration,
    within: Duration,
}

impl Remote {
    /// The endpoint at `url`, an `http://host:port/path` URL.
    ///
    /// ```
    /// let service = taskleak::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?;
    /// # let _ = service;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] for a URL that is not `http://host[:port][/path]`.
    pub fn new(url: &str) -> Result<Self, Error> {
        let refuse = |reason: &str| Error::Remote {
            url: url.to_owned(),
            reason: reason.to_owned(),
            source: None,
        };
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            refuse("only `http://host:port/path` URLs are read (serve the dump on a private plain-HTTP port)")
        })?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(refuse("the URL names no host"));
        }
        if rest.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#') {
            return Err(refuse("the URL holds a space, a control character or a `#fragment`"));
        }
        // `host:port`, `[v6]:port`; without a port, HTTP's 80.
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !port.is_empty() && (!host.contains(':') || host.ends_with(']')));
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_owned()
        };
        Ok(Remote {
            url: url.to_owned(),
            authority,
            target,
            timeout: Duration::from_secs(10),
            within: Duration::from_secs(5),
        })
    }

    /// The bound on one request, connection included (default 10 s).
    ///
    /// ```
    /// let service = taskleak::http::Remote::new("http://127.0.0.1:9000/")?
    ///     .timeout(std::time::Duration::from_secs(2));
    /// # let _ = service;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long [`assert_no_task_matches`](Self::assert_no_task_matches)
    /// lets matching tasks finish, dumping again with backoff, before it
    /// fails (default 5 s).
    ///
    /// ```
    /// let service = taskleak::http::Remote::new("http://127.0.0.1:9000/")?
    ///     .within(std::time::Duration::from_secs(30));
    /// # let _ = service;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    pub fn within(mut self, within: Duration) -> Self {
        self.within = within;
        self
    }

    /// Fetches one dump (as JSON).
    ///
    /// ```no_run
    /// # async fn show() -> Result<(), taskleak::Error> {
    /// let dump = taskleak::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?.fetch().await?;
    /// println!("{dump}");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] when the service cannot be reached in time,
    /// answers other than 200, or with something other than a dump.
    pub async fn fetch(&self) -> Result<TaskDump, Error> {
        let fail_with = |reason: String, source: Option<Arc<dyn std::error::Error + Send + Sync>>| Error::Remote {
            url: self.url.clone(),
            reason,
            source,
        };
        let fail = |reason: String| fail_with(reason, None);
        let response = crate::tasks::timer::timeout(self.timeout, self.get())
            .await
            .ok_or_else(|| {
                fail(format!(
                    "no answer within {:.1} s; is the service up, and is this its dump endpoint?",
                    self.timeout.as_secs_f64()
                ))
            })?
            .map_err(|error| {
                fail_with(
                    format!("{error}; is the service listening there?"),
                    Some(Arc::new(error)),
                )
            })?;
        let (status, body) = parse_response(&response).map_err(fail)?;
        if status != 200 {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(fail(format!("the service answered {status}: {excerpt}")));
        }
        serde_json::from_slice(&body).map_err(|error| {
            fail_with(
                format!(
                    "the answer is not a taskleak dump ({error}); point the URL at a `DumpEndpoint` of the same taskleak version"
                ),
                Some(Arc::new(error)),
            )
        })
    }

    /// Fetches one dump and returns its groups that `pattern` matches (see
    /// [`TaskDump::groups_matching`]).
    ///
    /// ```no_run
    /// # async fn show() -> Result<(), taskleak::Error> {
    /// let service = taskleak::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?;
    /// let sessions: usize = service.tasks_matching("session::").await?.iter().map(|g| g.count()).sum();
    /// # let _ = sessions;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`fetch`](Self::fetch), and [`Error::InvalidRegex`].
    pub async fn tasks_matching(&self, pattern: &str) -> Result<Vec<TaskGroup>, Error> {
        let dump = self.fetch().await?;
        Ok(dump.groups_matching(pattern)?.into_iter().cloned().collect())
    }

    /// Panics, with the matching groups and the whole dump, if tasks that
    /// `pattern` matches are still alive once [`within`](Self::within) has
    /// passed; returns as soon as a dump shows none.
    ///
    /// ```no_run
    /// # async fn check() -> Result<(), taskleak::Error> {
    /// taskleak::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?
    ///     .assert_no_task_matches(r"^src/session\.rs:")
    ///     .await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// On matching tasks, as said; when the dump cannot be fetched or
    /// `pattern` is not a valid regex; and when the dump has tasks but no
    /// spawn site, name or stack to match (a service built without
    /// `--cfg tokio_unstable` or a tracker): the message says which.
    pub async fn assert_no_task_matches(&self, pattern: &str) {
        // A bound too far to count in is no bound: a year will do.
        let year = Duration::from_secs(365 * 86_400);
        let deadline = Instant::now() + self.within.min(year);
        let mut pause = Duration::from_millis(10);
        loop {
            let dump = match self.fetch().await {
                Ok(dump) => dump,
                Err(error) => panic!("taskleak: {error}"),
            };
            let matching = match dump.groups_matching(pattern) {
                Ok(matching) => matching,
                Err(error) => panic!("taskleak: {error}"),
            };
            if matching.is_empty() {
                // A pattern matches spawn sites, names and stacks: a dump
                // with none of them cannot show a leak, so cannot clear one.
                let nothing_to_match = dump.tasks() > 0
                    && dump.groups().iter().all(|group| {
                        group.spawned_at().is_none() && group.stack().is_none() && group.names().is_empty()
                    });
                if nothing_to_match {
                    panic!(
                        "taskleak: inconclusive: the dump of {} has {} task(s) but no spawn site, name or stack \
                         to match `{pattern}` against:\n{dump}",
                        self.url,
                        dump.tasks()
                    );
                }
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                let count: usize = matching.iter().map(|group| group.count()).sum();
                let groups: String = matching.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
                panic!(
                    "taskleak: {count} task(s) of {} matching `{pattern}` still alive after {:.1} s:\n\n{groups}\nthe whole dump:\n{dump}",
                    self.url,
                    self.within.as_secs_f64()
                );
            }
            crate::tasks::timer::pause(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// One `GET`, read to the end (the request asks the server to close).
    async fn get(&self) -> std::io::Result<Vec<u8>> {
        let mut stream = tokio::net::TcpStream::connect(&self.authority).await?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: taskleak\r\n\r\n",
            self.target, self.authority
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        let mut limited = (&mut stream).take(MAX_RESPONSE as u64 + 1);
        limited.read_to_end(&mut response).await?;
        if response.len() > MAX_RESPONSE {
            return Err(std::io::Error::other(format!(
                "the answer is over {} MiB",
                MAX_RESPONSE >> 20
            )));
        }
        Ok(response)
    }
}

/// The status and body of a whole HTTP/1.1 response: its body delimited by
/// `Content-Length`, chunked, or the end of the connection.
fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or("the answer is not HTTP: it has no header end")?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| "the answer's headers are not text")?;
    let body = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.strip_prefix("HTTP/1."))
        .and_then(|line| line.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or("the answer is not HTTP/1.x")?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    if header("transfer-encoding").is_some_and(|coding| coding.eq_ignore_ascii_case("chunked")) {
        return Ok((status, dechunk(body)?));
    }
    match header("content-length") {
        Some(length) => {
            let length: usize = length.parse().map_err(|_| format!("bad Content-Length `{length}`"))?;
            let body = body
                .get(..length)
                .ok_or_else(|| format!("the answer ended after {} of its {length} bytes", body.len()))?;
            Ok((status, body.to_vec()))
        }
        None => Ok((status, body.to_vec())),
    }
}

/// Joins a chunked body's chunks.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut joined = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|window| window == b"\r\n")
            .ok_or("a chunk has no size line")?;
        let size_line = std::str::from_utf8(&body[..line_end]).map_err(|_| "a chunk size is not text")?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| format!("bad chunk size `{size_hex}`"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(joined);
        }
        let chunk = body.get(..size).ok_or("the answer ended inside a chunk")?;
        joined.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("the answer ended after a chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_and_others_refused() {
        let remote = Remote::new("http://127.0.0.1:9000/debug/tasks?threads=1").expect("valid");
        assert_eq!(
            (remote.authority.as_str(), remote.target.as_str()),
            ("127.0.0.1:9000", "/debug/tasks?threads=1")
        );
        assert_eq!(Remote::new("http://localhost:80").expect("valid").target, "/");
        assert_eq!(
            Remote::new("http://[::1]:80?format=json").expect("valid").target,
            "/?format=json"
        );
        assert_eq!(
            Remote::new("http://example.test/x").expect("valid").authority,
            "example.test:80"
        );
        assert_eq!(Remote::new("http://[::1]/x").expect("valid").authority, "[::1]:80");
        assert_eq!(Remote::new("http://[::1]:81/x").expect("valid").authority, "[::1]:81");
        for bad in [
            "https://example.com/",
            "127.0.0.1:9000/x",
            "http:///x",
            "http://h/a b",
            "http://h/#top",
        ] {
            let error = Remote::new(bad).expect_err(bad).to_string();
            assert!(error.contains(bad), "{error}");
        }
    }

    #[test]
    fn bodies_by_length_chunks_and_connection_end_are_read() {
        let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-type: x\r\n\r\nhello";
        assert_eq!(parse_response(by_length), Ok((200, b"hello".to_vec())));
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok((200, b"hello world".to_vec())));
        assert_eq!(
            parse_response(b"HTTP/1.0 404 Not Found\r\n\r\nno"),
            Ok((404, b"no".to_vec()))
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
    }
}
