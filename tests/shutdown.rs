//! A clean stop, end to end, in a child process: a service set up as the
//! quickstart shows gets SIGTERM while requests are in flight; they
//! finish, every line (theirs, their access lines, the last line after
//! serving stops) is written, and the process exits 0.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use corrlog::output::Destination;
use corrlog::Format;

const LINES_PER_REQUEST: usize = 200;
const REQUESTS: usize = 4;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// A request that logs, then stays in flight until the shutdown signal
/// has arrived, and logs once more.
async fn work() -> &'static str {
    for i in 0..LINES_PER_REQUEST {
        tracing::info!(target: "work", i, "working");
    }
    if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1 == REQUESTS {
        println!("in-flight {REQUESTS}");
        std::io::stdout().flush().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !SIGNALLED.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::info!(target: "work", "finishing after the signal");
    "done"
}

/// Set in the child process: where it writes its lines.
const CHILD_ENV: &str = "CORRLOG_SHUTDOWN_CHILD";

/// The child's side: JSON lines to a file, serving until
/// `corrlog::shutdown_signal()` resolves.
fn serve_until_sigterm(path: std::ffi::OsString) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let logging = corrlog::builder()
        .format(Format::Json)
        .output(Destination::File(corrlog::output::RollingFile::builder(
            std::path::PathBuf::from(path),
        )))
        .use_env(false)
        .init()
        .unwrap();
    let layer = logging.request_layer();
    rt.block_on(async move {
        let app = Router::new().route("/work", get(work)).layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // `shutdown_signal` installs its handlers when first polled: poll it
        // once here, before announcing the address, so a SIGTERM sent after
        // that is always seen by it. Nothing else handles SIGTERM: if
        // `shutdown_signal` never resolved, the server would never stop and
        // the parent would fail.
        let mut signal = Box::pin(corrlog::shutdown_signal());
        tokio::select! {
            biased;
            () = &mut signal => panic!("a shutdown signal before serving"),
            () = std::future::ready(()) => {}
        }
        println!("listening {}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                signal.await;
                SIGNALLED.store(true, Ordering::SeqCst);
            })
            .await
            .unwrap();
        tracing::info!(target: "work", "stopped serving");
    });
    let report = logging.shutdown(Duration::from_secs(10));
    assert!(!report.timed_out);
    assert_eq!(report.stats.dropped, 0);
}

/// Kills the child when the test ends, however it ends, unless it has
/// exited already.
struct Reaper(Arc<Mutex<Child>>);

impl Drop for Reaper {
    fn drop(&mut self) {
        let mut child = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads stdout lines until one contains `marker`; returns that line.
fn read_until(stdout: &mut impl BufRead, marker: &str) -> String {
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "child exited before printing {marker:?}"
        );
        // libtest may print `test ... ` on the same line.
        if line.contains(marker) {
            return line;
        }
    }
}

/// Runs in two processes: the test re-runs its own binary for this test
/// alone with `CHILD_ENV` set, and that child serves.
#[test]
fn sigterm_finishes_requests_and_writes_every_line() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        return serve_until_sigterm(path);
    }
    let dir = std::env::temp_dir().join(format!("corrlog-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.log");
    // The file is appended to: never count a stale run's lines.
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_finishes_requests_and_writes_every_line",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr_pipe = child.stderr.take().unwrap();
    let pid = child.id();
    let child = Arc::new(Mutex::new(child));
    let _reaper = Reaper(child.clone());
    // Never hang the test run: a child still running after a minute is
    // killed, and the reads below then fail.
    let watchdog = child.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        drop(Reaper(watchdog));
    });

    let line = read_until(&mut stdout, "listening ");
    let addr: std::net::SocketAddr = line
        .split("listening ")
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                write!(
                    stream,
                    "GET /work HTTP/1.1\r\nhost: t\r\nx-request-id: stop-{i}\r\nconnection: close\r\n\r\n"
                )
                .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).unwrap();
                response
            })
        })
        .collect();
    // Every request is inside its handler (so the server is serving and
    // its signal handler is installed): now stop it.
    read_until(&mut stdout, &format!("in-flight {REQUESTS}"));
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    for request in requests {
        let response = request.join().unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("done"), "{response}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.lock().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the child did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    stderr_pipe.read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for i in 0..REQUESTS {
        let id = format!("stop-{i}");
        let mine = |message: &str| {
            lines
                .iter()
                .filter(|l| l["request_id"] == id.as_str() && l["message"] == message)
                .count()
        };
        assert_eq!(mine("working"), LINES_PER_REQUEST, "{id}");
        assert_eq!(mine("finishing after the signal"), 1, "{id}");
        assert_eq!(mine("request finished"), 1, "{id}: no access line");
    }
    assert_eq!(lines.last().unwrap()["message"], "stopped serving");
    let _ = std::fs::remove_dir_all(&dir);
}
