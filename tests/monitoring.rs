//! Production monitoring end to end, over real HTTP on 127.0.0.1: the
//! example service's leak flagged by the monitor and pinpointed by the
//! grouped dump, the dump endpoint's answers, and the remote check.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use taskleak::Tracker;
use taskleak::monitor::http::Remote;
use taskleak::monitor::{Resource, TaskDump};

#[allow(dead_code)] // its `main` is the example's own
#[path = "../examples/leaky_service.rs"]
mod leaky_service;

/// The example service on its own runtime and thread, listening on
/// 127.0.0.1; stopped and joined when dropped.
struct Service {
    handle: tokio::runtime::Handle,
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    fn start() -> Self {
        let tracker = Tracker::new();
        let runtime = leaky_service::runtime(&tracker).expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let handle = runtime.handle().clone();
        let dumper = taskleak::monitor::Dumper::new(&handle).tracker(&tracker);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("leaky-service".to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        served = leaky_service::serve(listener, dumper) => panic!("the service stopped: {served:?}"),
                        _ = stopped => {}
                    }
                })
            })
            .expect("service thread");
        Service {
            handle,
            address,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
            && !std::thread::panicking()
        {
            panic!("the service's thread panicked");
        }
    }
}

/// Tests that start a monitor take turns: one counts monitor threads.
static MONITORS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn monitor_turn() -> std::sync::MutexGuard<'static, ()> {
    MONITORS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One request with hyper's client on a runtime of its own: the status,
/// the headers as `name: value` lines (lowercase) and the body.
fn get(address: SocketAddr, target: &str, method: &str) -> (u16, String, String) {
    use http_body_util::BodyExt;
    client(async move {
        let stream = tokio::net::TcpStream::connect(address).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
        // On this client's own runtime, dropped with it.
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(target)
            .header(hyper::header::HOST, address.to_string())
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .expect("a request");
        let answer = async {
            let response = sender.send_request(request).await.expect("an HTTP answer");
            let status = response.status().as_u16();
            let head: String = response
                .headers()
                .iter()
                .map(|(name, value)| format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())))
                .collect();
            let body = response.into_body().collect().await.expect("the body").to_bytes();
            (
                status,
                head.to_ascii_lowercase(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        };
        tokio::time::timeout(Duration::from_secs(20), answer)
            .await
            .expect("answered within 20 s")
    })
}

/// Runs `remote`'s future on a client runtime of its own.
fn client<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
        .block_on(future)
}

/// `examples/leaky_service.rs:LINE:` of the spawn after `// spawn-site: NAME`.
fn site(name: &str) -> String {
    let source = include_str!("../examples/leaky_service.rs");
    let marker = source
        .lines()
        .position(|line| line.trim() == format!("// spawn-site: {name}"))
        .expect("marker");
    format!("examples/leaky_service.rs:{}:", marker + 2)
}

fn watcher_site() -> String {
    site("watcher")
}

#[test]
fn the_example_services_leak_is_flagged_by_the_monitor_and_pinpointed_by_the_dump() {
    let _turn = monitor_turn();
    let service = Service::start();
    let (growth_seen, growths) = mpsc::channel();
    let monitor = leaky_service::monitor(
        &service.handle,
        Duration::from_millis(20),
        Duration::from_millis(400),
        20,
        move |growth| {
            let _ = growth_seen.send(growth.clone());
        },
    )
    .expect("monitor");

    // Requests at a steady pace until the monitor speaks (bounded).
    let started = Instant::now();
    let mut sessions = 0;
    let growth = loop {
        let (status, _, body) = get(service.address, "/session", "GET");
        assert_eq!(status, 200, "{body}");
        sessions += 1;
        if let Ok(growth) = growths.try_recv() {
            break growth;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no growth reported after {sessions} leaked tasks: {:?}",
            monitor.history()
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    assert_eq!(growth.resource(), Resource::Tasks);
    assert!(growth.to() >= growth.from() + 20, "{growth}");
    assert!(growth.per_minute() > 0.0, "{growth}");
    assert!(growth.to_string().contains("live tasks keep growing"), "{growth}");
    assert_eq!(monitor.growths().first(), Some(&growth));
    drop(monitor);

    // The dump: one line with the count, where they were spawned, where stuck.
    let (status, head, text) = get(service.address, "/debug/tasks", "GET");
    assert_eq!(status, 200, "{text}");
    assert!(head.contains("content-type: text/plain"), "{head}");
    let dump: TaskDump = client(Remote::new(&service.url("/debug/tasks")).expect("url").fetch()).expect("dump");
    let top = &dump.groups()[0];
    if cfg!(tokio_unstable) {
        assert_eq!(top.count(), sessions, "{dump}");
        assert!(
            top.spawned_at().is_some_and(|at| at.starts_with(&watcher_site())),
            "{dump}"
        );
        assert_eq!(top.waits_on(), Some("oneshot"), "{dump}");
        let stack = top.stack().expect("a stack").to_string();
        assert!(stack.contains("leaky_service::watch_session"), "{stack}");
        // The text says the same, on one headline.
        assert!(
            text.contains(&format!("{sessions} tasks @ {}", watcher_site())),
            "{text}"
        );
        assert!(
            text.lines().nth(2).is_some_and(|line| line.contains("[oneshot]")),
            "{text}"
        );
    } else {
        // Counts only, and the way to get the rest.
        assert!(top.count() >= sessions, "{dump}");
        assert!(top.stack().is_none(), "{dump}");
        assert!(
            dump.notes().iter().any(|note| note.contains("tokio_unstable")),
            "{dump}"
        );
    }

    // The remote check fails on the leak, saying where it is.
    if cfg!(tokio_unstable) {
        let remote = Remote::new(&service.url("/debug/tasks"))
            .expect("url")
            .within(Duration::from_millis(300));
        let failed = std::thread::spawn(move || client(remote.assert_no_task_matches("watch_session")))
            .join()
            .expect_err("the leak fails the check");
        let message = failed.downcast_ref::<String>().expect("a message");
        assert!(
            message.contains(&format!("{sessions} task(s) of http://")) && message.contains("watch_session"),
            "{message}"
        );
        assert!(message.contains(&watcher_site()), "{message}");
    }
}

#[test]
fn tasks_that_end_raise_no_growth_and_pass_the_remote_check() {
    let _turn = monitor_turn();
    let service = Service::start();
    let monitor = leaky_service::monitor(
        &service.handle,
        Duration::from_millis(20),
        Duration::from_millis(400),
        20,
        |growth| panic!("no growth expected: {growth}"),
    )
    .expect("monitor");
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < Duration::from_millis(1200) {
        let (status, _, body) = get(service.address, "/ping", "GET");
        assert_eq!((status, body.as_str()), (200, "pong\n"));
        requests += 1;
    }
    assert!(monitor.history().len() >= 20, "{:?}", monitor.history());
    assert_eq!(monitor.growths(), Vec::new(), "after {requests} requests");
    drop(monitor);
    // No ping task outlives its request: matched by the spawn of `/ping`.
    let ping = regex::escape(&site("ping"));
    if cfg!(tokio_unstable) {
        let remote = Remote::new(&service.url("/debug/tasks")).expect("url");
        let dump = client(remote.fetch()).expect("dump");
        // A spawn site matches as it should: the task serving this very
        // request is found by its own, so a ping task would be too.
        let connection = regex::escape(&site("connection"));
        assert!(!dump.groups_matching(&connection).expect("regex").is_empty(), "{dump}");
        client(remote.assert_no_task_matches(&ping));
    } else {
        // Without spawn sites or stacks there is nothing to match: never a pass.
        let remote = Remote::new(&service.url("/debug/tasks")).expect("url");
        let failed = std::thread::spawn(move || client(remote.assert_no_task_matches(&ping)))
            .join()
            .expect_err("inconclusive");
        let message = failed.downcast_ref::<String>().expect("a message");
        assert!(message.contains("inconclusive"), "{message}");
    }
}

#[test]
fn the_endpoint_serves_json_threads_and_refuses_what_it_does_not_serve() {
    let service = Service::start();
    let (status, head, json) = get(service.address, "/debug/tasks?format=json&threads=1", "GET");
    assert_eq!(status, 200, "{json}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let dump: TaskDump = serde_json::from_str(&json).expect("a TaskDump");
    // The connection serving this request, at least (the accept loop is
    // the runtime's `block_on` future, no task).
    assert!(dump.tasks() >= 1, "{dump}");
    let threads = dump.threads().expect("threads were asked for");
    if cfg!(target_os = "linux") {
        // The thread the service runs on is listed by its name.
        assert!(threads.iter().any(|group| group.name() == "leaky-service"), "{dump}");
    }

    let (status, _, body) = get(service.address, "/debug/tasks?format=xml", "GET");
    assert_eq!(status, 400);
    assert!(body.contains("format=json"), "{body}");
    let (status, _, body) = get(service.address, "/debug/tasks", "POST");
    assert_eq!(status, 405);
    assert!(body.contains("GET"), "{body}");
    let (status, _, body) = get(service.address, "/debug/tasks", "HEAD");
    assert_eq!((status, body.as_str()), (200, ""));

    // What the remote check says when it is pointed at the wrong place.
    let error = client(Remote::new(&service.url("/nowhere")).expect("url").fetch()).expect_err("a 404");
    assert!(error.to_string().contains("answered 404"), "{error}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nobody = closed.local_addr().expect("address");
    drop(closed);
    let error = client(
        Remote::new(&format!("http://{nobody}/"))
            .expect("url")
            .timeout(Duration::from_secs(5))
            .fetch(),
    )
    .expect_err("nobody listens");
    assert!(error.to_string().contains("is the service listening there?"), "{error}");
}

#[test]
fn a_dropped_monitor_leaves_no_thread_and_bad_settings_are_refused() {
    let _turn = monitor_turn();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let monitor_threads = || {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                    .filter(|name| name.trim() == "taskleak-mon")
                    .count()
            })
            .unwrap_or(0)
    };
    let before = monitor_threads();
    let monitor = taskleak::monitor::Monitor::builder(runtime.handle())
        .interval(Duration::from_millis(5))
        .window(Duration::from_millis(100))
        .start()
        .expect("monitor");
    std::thread::sleep(Duration::from_millis(50));
    assert!(monitor.history().len() >= 2, "{:?}", monitor.history());
    if cfg!(target_os = "linux") {
        assert_eq!(monitor_threads(), before + 1);
    }
    monitor.stop();
    assert_eq!(monitor_threads(), before, "the sampling thread ended");

    let refused = taskleak::monitor::Monitor::builder(runtime.handle())
        .interval(Duration::from_secs(10))
        .window(Duration::from_secs(20))
        .start()
        .expect_err("a window of two samples");
    assert!(refused.to_string().contains("at least 40s"), "{refused}");
    let refused = taskleak::monitor::Monitor::builder(runtime.handle())
        .interval(Duration::ZERO)
        .start()
        .expect_err("no interval");
    assert!(refused.to_string().contains("`interval` is zero"), "{refused}");
}
