//! The dump endpoint: one `http` request in, a text or JSON dump out.

use std::future::Future;

use http::{Method, Request, Response, StatusCode, header};

use crate::monitor::task_dump::{Dumper, ThreadListing};

/// Serves a [`Dumper`]'s dumps: `GET` answers with the grouped dump as
/// text, or as JSON (a serialized [`TaskDump`](crate::monitor::TaskDump)) for
/// `?format=json` or `Accept: application/json`. `?threads=1` adds the
/// process's threads, `?threads=stacks` with their native stacks. `HEAD`
/// answers with the status and content type, taking no dump.
///
/// It takes `http` 1.x requests and gives `http` 1.x responses with a
/// `String` body, which hyper 1.x and axum 0.7+ take as they are.
///
/// With hyper:
///
/// ```
/// use std::convert::Infallible;
/// use hyper::service::service_fn;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = taskleak::monitor::http::DumpEndpoint::new(taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current()));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let address = listener.local_addr()?;
/// let server = tokio::spawn(async move {
///     let (stream, _) = listener.accept().await?;
///     let service = service_fn(move |request| {
///         let endpoint = endpoint.clone();
///         async move { Ok::<_, Infallible>(endpoint.respond(request).await) }
///     });
///     hyper::server::conn::http1::Builder::new()
///         .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
///         .await
///         .map_err(std::io::Error::other)
/// });
/// # let dump = taskleak::monitor::http::Remote::new(&format!("http://{address}/"))?.fetch().await?;
/// # assert!(dump.tasks() >= 1);
/// # server.await??;
/// # Ok(())
/// # }
/// ```
///
/// With axum: `Router::new().route("/debug/tasks", get(move |request:
/// axum::extract::Request| async move { endpoint.respond(request).await }))`.
#[derive(Clone, Debug)]
pub struct DumpEndpoint {
    dumper: Dumper,
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    json: bool,
    threads: Option<bool>,
}

impl DumpEndpoint {
    /// An endpoint serving `dumper`'s dumps.
    ///
    /// ```
    /// # let runtime = tokio::runtime::Runtime::new()?;
    /// let endpoint = taskleak::monitor::http::DumpEndpoint::new(taskleak::monitor::Dumper::new(runtime.handle()));
    /// # let _ = endpoint;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(dumper: Dumper) -> Self {
        DumpEndpoint { dumper }
    }

    /// Answers one request. The request is read before the future is
    /// returned, so the future is `Send` whatever the body type.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() {
    /// # let endpoint = taskleak::monitor::http::DumpEndpoint::new(taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current()));
    /// let request = http::Request::get("/debug/tasks?format=json").body(()).unwrap();
    /// let response = endpoint.respond(request).await;
    /// assert_eq!(response.status(), 200);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// # }
    /// ```
    pub fn respond<B>(&self, request: Request<B>) -> impl Future<Output = Response<String>> + Send + 'static {
        let asked = if request.method() == Method::GET || request.method() == Method::HEAD {
            asked(&request)
        } else {
            Err((
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not served here; ask with GET", request.method()),
            ))
        };
        let head = request.method() == Method::HEAD;
        drop(request);
        let dumper = self.dumper.clone();
        async move {
            let asked = match asked {
                Ok(asked) => asked,
                Err((status, message)) => return text(status, message + "\n"),
            };
            if head {
                // The headers a GET would have, without taking a dump.
                let content_type = if asked.json {
                    "application/json"
                } else {
                    "text/plain; charset=utf-8"
                };
                return with_type(StatusCode::OK, content_type, String::new());
            }
            let dumper = match asked.threads {
                Some(true) => dumper.threads(ThreadListing::WithStacks),
                Some(false) => dumper.threads(ThreadListing::Grouped),
                None => dumper,
            };
            match dumper.dump().await {
                Ok(dump) if asked.json => match serde_json::to_string(&dump) {
                    Ok(json) => with_type(StatusCode::OK, "application/json", json),
                    Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("taskleak: {error}\n")),
                },
                Ok(dump) => text(StatusCode::OK, dump.to_string()),
                Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("taskleak: {error}\n")),
            }
        }
    }
}

/// Reads `format` and `threads` from the query and `Accept`; `Err` with a
/// status and a message for anything else.
fn asked<B>(request: &Request<B>) -> Result<Asked, (StatusCode, String)> {
    let accept_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    let mut asked = Asked {
        json: accept_json,
        threads: None,
    };
    let bad = |message: String| Err((StatusCode::BAD_REQUEST, message));
    for pair in request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (key, value) {
            ("format", "json") => asked.json = true,
            ("format", "text") => asked.json = false,
            ("format", other) => return bad(format!("format={other} is not served: use format=text or format=json")),
            ("threads", "1" | "true") => asked.threads = Some(false),
            ("threads", "stacks") => asked.threads = Some(true),
            ("threads", "0" | "false") => asked.threads = None,
            ("threads", other) => {
                return bad(format!(
                    "threads={other} is not understood: use threads=1 or threads=stacks"
                ));
            }
            (other, _) => {
                return bad(format!(
                    "unknown parameter `{other}`: the parameters are `format` and `threads`"
                ));
            }
        }
    }
    Ok(asked)
}

fn text(status: StatusCode, body: String) -> Response<String> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    // A dump is a moment: never cache it.
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(uri: &str, accept: Option<&str>) -> Result<Asked, (StatusCode, String)> {
        let mut request = Request::get(uri);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        asked(&request.body(()).expect("request"))
    }

    #[test]
    fn the_query_and_accept_choose_what_is_served() {
        assert_eq!(
            ask("/", None),
            Ok(Asked {
                json: false,
                threads: None
            })
        );
        assert_eq!(
            ask("/", Some("application/json")),
            Ok(Asked {
                json: true,
                threads: None
            })
        );
        assert_eq!(
            ask("/?format=text&threads=stacks", Some("application/json")),
            Ok(Asked {
                json: false,
                threads: Some(true)
            })
        );
        assert_eq!(
            ask("/?threads=1&format=json", None),
            Ok(Asked {
                json: true,
                threads: Some(false)
            })
        );
        let (status, message) = ask("/?format=xml", None).expect_err("refused");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("format=json"), "{message}");
        assert!(
            ask("/?debug=2", None)
                .expect_err("refused")
                .1
                .contains("`format` and `threads`")
        );
    }
}
