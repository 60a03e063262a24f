//! The client side: fetch a running service's JSON dump with hyper's
//! HTTP/1.1 client and assert, with a bounded wait, that no task matches a
//! pattern.

use std::error::Error as StdError;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::error::Error;
use crate::monitor::task_dump::{TaskDump, TaskGroup};

/// The largest answer read: a dump of a million tasks in a thousand groups
/// is far smaller.
const MAX_RESPONSE: usize = 64 << 20;

/// Why a request failed: in words, and the error under it.
type Failure = (String, Option<Arc<dyn StdError + Send + Sync>>);

/// A running service's [`DumpEndpoint`](super::DumpEndpoint), read from a
/// test that drives the service from outside: run a scenario, then assert
/// that none of its tasks is left.
///
/// ```no_run
/// # async fn scenario() -> Result<(), taskleak::Error> {
/// let service = taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?
///     .within(std::time::Duration::from_secs(10));
/// // … open and close a thousand sessions …
/// service.assert_no_task_matches(r"session::").await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Remote {
    url: String,
    /// `host:port` to connect to (port 80 when the URL names none).
    authority: String,
    /// The path and query asked for.
    target: String,
    timeout: Duration,
    within: Duration,
}

impl Remote {
    /// The endpoint at `url`, an `http://host:port/path` URL.
    ///
    /// ```
    /// let service = taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?;
    /// # let _ = service;
    /// # Ok::<(), taskleak::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] for a URL that is not `http://host[:port][/path]`.
    pub fn new(url: &str) -> Result<Self, Error> {
        let refuse = |reason: &str, source: Option<Arc<dyn StdError + Send + Sync>>| Error::Remote {
            url: url.to_owned(),
            reason: reason.to_owned(),
            source,
        };
        // `http::Uri` would drop a `#fragment` and ask for something other
        // than what was written: refused, as spaces and controls are.
        if url.contains('#') || url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(refuse(
                "the URL holds a space, a control character or a `#fragment`",
                None,
            ));
        }
        let uri: Uri = url
            .parse()
            .map_err(|error: http::uri::InvalidUri| refuse(&format!("not a URL: {error}"), Some(Arc::new(error))))?;
        if uri.scheme_str() != Some("http") {
            return Err(refuse(
                "only `http://host:port/path` URLs are read (serve the dump on a private plain-HTTP port)",
                None,
            ));
        }
        let host = uri.host().filter(|host| !host.is_empty());
        let Some(host) = host else {
            return Err(refuse("the URL names no host", None));
        };
        // Without a port, HTTP's 80.
        let authority = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        let target = match uri.query() {
            Some(query) => format!("{}?{query}", uri.path()),
            None => uri.path().to_owned(),
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
    /// let service = taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/")?
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
    /// let service = taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/")?
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
    /// let dump = taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?.fetch().await?;
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
        let fail = |(reason, source): Failure| Error::Remote {
            url: self.url.clone(),
            reason,
            source,
        };
        let (status, body) = crate::tasks::timer::timeout(self.timeout, self.get())
            .await
            .ok_or_else(|| {
                fail((
                    format!(
                        "no answer within {:.1} s; is the service up, and is this its dump endpoint?",
                        self.timeout.as_secs_f64()
                    ),
                    None,
                ))
            })?
            .map_err(fail)?;
        if status != StatusCode::OK {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(fail((
                format!("the service answered {}: {excerpt}", status.as_u16()),
                None,
            )));
        }
        serde_json::from_slice(&body).map_err(|error| {
            fail((
                format!(
                    "the answer is not a taskleak dump ({error}); point the URL at a `DumpEndpoint` of the same taskleak version"
                ),
                Some(Arc::new(error)),
            ))
        })
    }

    /// Fetches one dump and returns its groups that `pattern` matches (see
    /// [`TaskDump::groups_matching`]).
    ///
    /// ```no_run
    /// # async fn show() -> Result<(), taskleak::Error> {
    /// let service = taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?;
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
    /// taskleak::monitor::http::Remote::new("http://127.0.0.1:9000/debug/tasks")?
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

    /// One `GET` on a connection of its own, driven here: taskleak spawns
    /// no task in the caller's runtime (a test's check would see it).
    async fn get(&self) -> Result<(StatusCode, Bytes), Failure> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|error| {
            (
                format!("{error}; is the service listening there?"),
                Some(Arc::new(error) as _),
            )
        })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| (format!("{error}"), Some(Arc::new(error) as _)))?;
        let request = Request::get(&self.target)
            .header(header::HOST, &self.authority)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, "taskleak")
            .body(Empty::<Bytes>::new())
            .map_err(|error| (format!("{error}"), Some(Arc::new(error) as _)))?;
        let exchange = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| (format!("{error}"), Some(Arc::new(error) as _)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|error| {
                    let reason = if error.is::<http_body_util::LengthLimitError>() {
                        format!("the answer is over {} MiB", MAX_RESPONSE >> 20)
                    } else {
                        error.to_string()
                    };
                    (reason, Some(Arc::from(error)))
                })?;
            Ok((status, body.to_bytes()))
        };
        drive(exchange, connection).await
    }
}

/// Runs `exchange` while driving its `connection`, which hyper leaves to
/// the caller; once the connection ends, what it delivered is still read.
async fn drive<T>(
    exchange: impl Future<Output = Result<T, Failure>>,
    connection: impl Future<Output = Result<(), hyper::Error>>,
) -> Result<T, Failure> {
    let mut exchange = pin!(exchange);
    let mut connection = pin!(connection);
    let mut connected = true;
    poll_fn(|cx| {
        if let Poll::Ready(done) = exchange.as_mut().poll(cx) {
            return Poll::Ready(done);
        }
        if connected {
            match connection.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {
                    connected = false;
                    return exchange.as_mut().poll(cx);
                }
                Poll::Ready(Err(error)) => {
                    return Poll::Ready(Err((format!("{error}"), Some(Arc::new(error) as _))));
                }
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await
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

    /// A server on 127.0.0.1 that answers each connection with the next
    /// of `answers`, as written, and closes it.
    async fn serve(answers: Vec<Vec<u8>>) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            for answer in answers {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut request = [0u8; 1024];
                let _ = socket.read(&mut request).await;
                socket.write_all(&answer).await.expect("answer");
            }
        });
        address
    }

    #[tokio::test]
    async fn answers_by_length_chunks_and_connection_end_are_read() {
        let dump = br#"{"tasks":0,"groups":[],"threads":null,"notes":[],"took_micros":0}"#;
        let chunked = [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n".as_slice(),
            &dump[..5],
            b"\r\n",
            format!("{:x}\r\n", dump.len() - 5).as_bytes(),
            &dump[5..],
            b"\r\n0\r\n\r\n",
        ]
        .concat();
        let answers = vec![
            [
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", dump.len()).as_bytes(),
                dump,
            ]
            .concat(),
            chunked,
            [b"HTTP/1.0 200 OK\r\n\r\n".as_slice(), dump].concat(),
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno".to_vec(),
            b"SSH-2.0-OpenSSH\r\n".to_vec(),
        ];
        let address = serve(answers).await;
        let remote = Remote::new(&format!("http://{address}/debug/tasks"))
            .expect("valid")
            .timeout(Duration::from_secs(10));
        for how in ["length", "chunks", "connection end"] {
            let read = remote.fetch().await.unwrap_or_else(|error| panic!("by {how}: {error}"));
            assert_eq!(read.tasks(), 0, "by {how}");
        }
        let not_found = remote.fetch().await.expect_err("404").to_string();
        assert!(not_found.contains("the service answered 404: no"), "{not_found}");
        let not_http = remote.fetch().await.expect_err("not HTTP");
        assert!(not_http.source().is_some(), "{not_http}");
    }
}
