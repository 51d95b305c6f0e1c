//! A clean stop, end to end, in a child process: a service set up as the
//! quickstart shows gets SIGTERM while requests are in flight; they
//! finish, every line (theirs, their access lines, the last line after
//! serving stops) is written, and the process exits 0.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use corrlog::{Output, Preset};

const LINES_PER_REQUEST: usize = 200;

/// The child: JSON lines to a file, serving until SIGTERM.
#[test]
fn sigterm_child() {
    let Some(path) = std::env::var_os("CORRLOG_SHUTDOWN_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let logging = corrlog::builder()
        .preset(Preset::Production)
        .output(Output::file(std::path::PathBuf::from(path)))
        .ignore_env()
        .init()
        .unwrap();
    let layer = logging.layer.clone();
    rt.block_on(async move {
        let app = Router::new()
            .route(
                "/work",
                get(|| async {
                    for i in 0..LINES_PER_REQUEST {
                        tracing::info!(target: "work", i, "working");
                    }
                    // Still running when the signal arrives.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .layer(layer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        std::io::stdout().flush().unwrap();
        axum::serve(listener, app)
            .with_graceful_shutdown(corrlog::shutdown_signal())
            .await
            .unwrap();
        tracing::info!(target: "work", "stopped serving");
    });
    let report = logging.shutdown(Duration::from_secs(10));
    assert!(!report.timed_out);
    assert_eq!(report.stats.dropped, 0);
}

/// Kills the child process when the test ends, however it ends.
struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn sigterm_finishes_requests_and_writes_every_line() {
    let dir = std::env::temp_dir().join(format!("corrlog-sigterm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.log");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CORRLOG_SHUTDOWN_CHILD", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Never leave the child behind if an assertion fails.
    let pid = child.id();
    let _reaper = Reaper(pid);
    // And never hang the test run if the child does not stop.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        drop(Reaper(pid));
    });
    let addr = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "child exited early"
        );
        // libtest may print `test sigterm_child ... ` on the same line.
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|word| word.parse::<std::net::SocketAddr>().ok())
        {
            break addr;
        }
    };

    // Four requests in flight, then SIGTERM while their handlers sleep.
    let requests: Vec<_> = (0..4)
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
    std::thread::sleep(Duration::from_millis(100));
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
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status}: {stderr}");

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for i in 0..4 {
        let id = format!("stop-{i}");
        let work = lines
            .iter()
            .filter(|l| l["request_id"] == id.as_str() && l["message"] == "working")
            .count();
        assert_eq!(work, LINES_PER_REQUEST, "{id}");
        assert!(
            lines
                .iter()
                .any(|l| l["request_id"] == id.as_str() && l["logger"] == "corrlog::access"),
            "{id}: no access line"
        );
    }
    assert_eq!(lines.last().unwrap()["message"], "stopped serving");
    let _ = std::fs::remove_dir_all(&dir);
}
