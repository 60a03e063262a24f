//! Task dumps over HTTP (feature `http`): an endpoint to mount in a hyper
//! or axum server, and a client that checks a running service's dump.
//!
//! The dump shows your code's internals — function names, source paths,
//! task names. Serve it on a port only operators can reach (localhost, an
//! admin listener), never on the public one.
//!
//! ```no_run
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! // In the service: answer `GET /debug/tasks` (text; `?format=json` for JSON).
//! let dumper = taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current());
//! let endpoint = taskleak::monitor::http::DumpEndpoint::new(dumper);
//! // hyper: service_fn(move |request| { let endpoint = endpoint.clone(); async move {
//! //     Ok::<_, std::convert::Infallible>(endpoint.respond(request).await) } })
//! # let _ = endpoint;
//!
//! // In a test that drives the service from outside:
//! let service = taskleak::monitor::http::Remote::new("http://127.0.0.1:8080/debug/tasks")?;
//! service.assert_no_task_matches("session::watch").await;
//! # Ok(())
//! # }
//! ```

mod endpoint;
mod remote;

pub use endpoint::DumpEndpoint;
pub use remote::Remote;
