//! A small HTTP service that leaks one task per request, and what finds it
//! in production: the monitor flags the growth, the grouped dump says where.
//!
//! ```sh
//! RUSTFLAGS="--cfg tokio_unstable" cargo run --features http --example leaky_service
//! for i in $(seq 420); do curl -s 127.0.0.1:3000/session >/dev/null; sleep 0.05; done
//! curl 127.0.0.1:3000/debug/tasks            # text; ?format=json for JSON
//! ```
//!
//! The dump shows one line with the count: `420 tasks @ examples/leaky_service.rs:…
//! [oneshot]`, stuck in `watch_session`. `tests/monitoring.rs` runs all of
//! this end to end.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use taskleak::monitor::http::DumpEndpoint;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The service's open sessions. Each has a watcher task that ends when its
/// session closes (its sender is dropped). The bug: nothing ever closes a
/// session, so every watcher waits forever — one leaked task per request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sessions {
    open: Arc<Mutex<Vec<oneshot::Sender<()>>>>,
}

impl Sessions {
    /// Opens a session for one request; returns how many are open.
    pub(crate) fn open(&self) -> usize {
        let (closed, on_close) = oneshot::channel();
        // spawn-site: watcher
        tokio::spawn(watch_session(on_close));
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.push(closed);
        open.len()
    }
}

/// Would tidy up after a session once it closes.
async fn watch_session(on_close: oneshot::Receiver<()>) {
    let _ = on_close.await;
}

/// Builds the service's runtime, with taskleak's tracker installed so that
/// dumps show where each task was spawned. Current-thread: tokio 1.54 dumps
/// those safely, where a multi-thread runtime's dump can leave a worker
/// stuck (see `Dumper::new`).
pub(crate) fn runtime(tracker: &taskleak::Tracker) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    tracker.install(&mut builder);
    builder.enable_all().build()
}

/// Serves `/session` (leaks a task), `/ping` (spawns one that ends) and
/// `/debug/tasks` (the grouped dump) on `listener`, until it fails.
pub(crate) async fn serve(listener: TcpListener, dumper: taskleak::monitor::Dumper) -> std::io::Result<()> {
    let endpoint = DumpEndpoint::new(dumper);
    let sessions = Sessions::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let (endpoint, sessions) = (endpoint.clone(), sessions.clone());
        // spawn-site: connection
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let (endpoint, sessions) = (endpoint.clone(), sessions.clone());
                async move { Ok::<_, Infallible>(route(request, &endpoint, &sessions).await) }
            });
            // A client that goes away mid-request is no concern of ours.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(
    request: Request<hyper::body::Incoming>,
    endpoint: &DumpEndpoint,
    sessions: &Sessions,
) -> Response<String> {
    match request.uri().path() {
        "/session" => Response::new(format!("session {} opened\n", sessions.open())),
        "/ping" => {
            // A task that ends: never a leak, never growth.
            // spawn-site: ping
            let pong = tokio::spawn(async { "pong\n".to_owned() });
            Response::new(pong.await.unwrap_or_default())
        }
        "/debug/tasks" => endpoint.respond(request).await,
        _ => {
            let mut response = Response::new("not found\n".to_owned());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// Starts the monitor the way a service would, printing each growth.
pub(crate) fn monitor(
    handle: &tokio::runtime::Handle,
    interval: Duration,
    window: Duration,
    min_growth: usize,
    on_growth: impl Fn(&taskleak::monitor::Growth) + Send + Sync + 'static,
) -> Result<taskleak::monitor::Monitor, taskleak::Error> {
    taskleak::monitor::Monitor::builder(handle)
        .interval(interval)
        .window(window)
        .min_growth(min_growth)
        .on_growth(on_growth)
        .start()
}

#[allow(dead_code)] // `tests/monitoring.rs` uses the rest of this file.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let tracker = taskleak::Tracker::new();
    let runtime = runtime(&tracker)?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&address).await?;
        println!("listening on http://{}", listener.local_addr()?);
        println!("open sessions with /session, read the dump at /debug/tasks");
        // A 20-second window, for a demo: a service would judge an hour or more.
        let _monitor = monitor(
            &tokio::runtime::Handle::current(),
            Duration::from_secs(1),
            Duration::from_secs(20),
            50,
            |growth| eprintln!("{growth}"),
        )?;
        let dumper = taskleak::monitor::Dumper::new(&tokio::runtime::Handle::current()).tracker(&tracker);
        serve(listener, dumper).await?;
        Ok(())
    })
}
