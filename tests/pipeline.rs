//! The writer pipeline against real outputs: a slow sink with Drop (the
//! request path is unaffected, drops are counted exactly) and with Block
//! (nothing lost), /dev/full and a closed pipe (the service keeps
//! answering), shutdown under load, and the panic hook flushing what is
//! queued. The idle writer has its own test binary (`tests/idle_writer.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use corrlog::output::{Backpressure, Pipeline, Stats};
use corrlog::testing::TestLogs;
use corrlog::LogLayer;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

/// An output that takes `delay` per write call.
struct Slow {
    inner: TestLogs,
    delay: Duration,
    writes: Arc<AtomicU64>,
}

impl Write for Slow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        std::thread::sleep(self.delay);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lines the handler logs; the access log adds one per request.
const HANDLER_LINES: usize = 5;
const LINES_PER_REQUEST: usize = HANDLER_LINES + 1;

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                for i in 0..HANDLER_LINES {
                    tracing::info!(i, "working");
                }
                "ok"
            }),
        )
        .layer(corrlog::RequestLayer::new())
}

/// Serves `app()` with logs going into `pipeline`; sends `n` requests, 8
/// at a time; returns each request's latency.
fn serve_and_load(pipeline: Pipeline, n: usize) -> Vec<Duration> {
    let dispatch =
        tracing::Dispatch::new(tracing_subscriber::registry().with(LogLayer::new(pipeline)));
    let server_rt = corrlog::testing::runtime_with(dispatch, 2);
    let addr = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app()).await });
        addr
    });
    let client_rt = common::client_runtime();
    let latencies = client_rt.block_on(async move {
        let client = reqwest::Client::new();
        let mut latencies = Vec::new();
        for _ in 0..n / 8 {
            let batch: Vec<_> = (0..8)
                .map(|_| {
                    let client = client.clone();
                    tokio::spawn(async move {
                        let start = Instant::now();
                        let res = client.get(format!("http://{addr}/")).send().await.unwrap();
                        assert_eq!(res.status(), 200);
                        assert_eq!(res.text().await.unwrap(), "ok");
                        start.elapsed()
                    })
                })
                .collect();
            for h in batch {
                latencies.push(h.await.unwrap());
            }
        }
        latencies
    });
    server_rt.shutdown_timeout(Duration::from_secs(5));
    latencies
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Lines in the output, and the sum of the in-band drop reports.
fn account(capture: &TestLogs) -> (u64, u64, u64) {
    let mut lines = 0;
    let mut reports = 0;
    let mut reported = 0;
    for line in capture.lines() {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["message"] == "dropped log lines" {
            assert_eq!(v["level"], "WARN");
            reports += 1;
            reported += v["dropped"].as_u64().unwrap();
        } else {
            lines += 1;
        }
    }
    (lines, reports, reported)
}

#[test]
fn slow_sink_with_drop_never_slows_requests_and_counts_every_drop() {
    let capture = TestLogs::new();
    let writes = Arc::new(AtomicU64::new(0));
    let slow = Slow {
        inner: capture.clone(),
        delay: Duration::from_millis(100),
        writes: writes.clone(),
    };
    let (pipeline, guard) = Pipeline::builder(slow)
        .queue_bytes(4 * 1024)
        .backpressure(Backpressure::Drop)
        .start();
    let latencies = serve_and_load(pipeline, 400);
    let report = guard.shutdown(Duration::from_secs(30));
    assert!(!report.timed_out);
    let stats = report.stats;

    // Had a logging call waited for the sink, each request would take at
    // least 100 ms per line.
    let med = median(latencies.clone());
    let max = latencies.iter().max().copied().unwrap();
    eprintln!("latency with a 100 ms/write sink: median {med:?}, max {max:?}; {stats:?}");
    assert!(med < Duration::from_millis(50), "median {med:?}");
    assert!(max < Duration::from_secs(1), "max {max:?}");

    let submitted = 400 * LINES_PER_REQUEST as u64;
    let (lines, reports, reported) = account(&capture);
    assert!(stats.dropped > 0, "the test must overflow the queue");
    assert_eq!(stats.submitted, submitted);
    assert_eq!(
        lines + stats.dropped,
        submitted,
        "every missing line is counted"
    );
    assert_eq!(
        reported, stats.dropped,
        "in-band reports add up to the drops"
    );
    assert_eq!(stats.written, lines + reports);
    assert_eq!(stats.failed, 0);
}

#[test]
fn slow_sink_with_block_loses_nothing() {
    let capture = TestLogs::new();
    let slow = Slow {
        inner: capture.clone(),
        delay: Duration::from_millis(5),
        writes: Arc::new(AtomicU64::new(0)),
    };
    let (pipeline, guard) = Pipeline::builder(slow)
        .queue_bytes(4 * 1024)
        .backpressure(Backpressure::Block {
            max_wait: Duration::from_secs(10),
        })
        .start();
    serve_and_load(pipeline, 400);
    let report = guard.shutdown(Duration::from_secs(30));
    let submitted = 400 * LINES_PER_REQUEST as u64;
    assert_eq!(report.stats.submitted, submitted);
    assert_eq!(report.stats.dropped, 0);
    assert_eq!(report.stats.written, submitted);
    assert!(report.stats.high_water_bytes > 0);
    assert_eq!(account(&capture), (submitted, 0, 0));
}

fn keeps_answering_with(output: impl Write + Send + 'static) -> Stats {
    let (pipeline, guard) = Pipeline::builder(output).start();
    let stats_handle = guard.pipeline();
    let latencies = serve_and_load(pipeline, 200);
    assert_eq!(latencies.len(), 200, "every request answered");
    let _ = stats_handle;
    guard.shutdown(Duration::from_secs(10)).stats
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_never_stops_the_service() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let stats = keeps_answering_with(full);
    eprintln!("/dev/full: {stats:?}");
    assert!(stats.write_errors > 0);
    assert_eq!(stats.written, 0);
    assert_eq!(stats.failed + stats.dropped, stats.submitted);
}

#[cfg(target_os = "linux")]
#[test]
fn a_failing_output_can_fall_back_to_stderr() {
    use corrlog::fmt::Sink;
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (pipeline, guard) = Pipeline::builder(full).fallback_to_stderr(true).start();
    for i in 0..3 {
        pipeline.write_line(format!("{{\"fallback_line\":{i}}}\n").as_bytes());
    }
    let stats = guard.shutdown(Duration::from_secs(5)).stats;
    assert!(stats.write_errors > 0);
    assert_eq!(stats.written, 3, "written to stderr instead");
    assert_eq!(stats.failed, 0);
}

#[test]
fn a_closed_pipe_never_stops_the_service() {
    let (reader, writer) = io::pipe().unwrap();
    drop(reader);
    let stats = keeps_answering_with(writer);
    eprintln!("closed pipe: {stats:?}");
    assert!(stats.write_errors > 0);
    assert_eq!(stats.written, 0);
}

#[test]
fn shutdown_under_load_reports_what_reached_the_sink() {
    let capture = TestLogs::new();
    let (pipeline, guard) = Pipeline::builder(capture.clone())
        .queue_bytes(64 * 1024)
        .start();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(LogLayer::new(pipeline.clone())),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let dispatch = dispatch.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) && i < 2_000_000 {
                        tracing::info!(t, i, "busy");
                        i += 1;
                    }
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Shut down while the threads are still logging.
    let report = guard.shutdown(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(!report.timed_out);
    let (lines, reports, _) = account(&capture);
    assert_eq!(
        report.stats.written,
        lines + reports,
        "the report matches the sink"
    );
    assert!(lines > 1000);
    // Lines from one thread arrive in order.
    let mut last = [None::<u64>; 4];
    for line in capture.lines() {
        let v: Value = serde_json::from_str(&line).unwrap();
        if let (Some(t), Some(i)) = (v["t"].as_u64(), v["i"].as_u64()) {
            if let Some(prev) = last[t as usize] {
                assert!(i > prev, "thread {t}: {i} after {prev}");
            }
            last[t as usize] = Some(i);
        }
    }
    // After shutdown, lines are counted as dropped, never lost silently.
    let after = pipeline.stats();
    assert_eq!(after.submitted, after.written - reports + after.dropped);
}

/// Set in the child process of `the_panic_hook_flushes_queued_lines`.
const PANIC_CHILD_ENV: &str = "CORRLOG_PANIC_CHILD";

/// The child's side: queue lines behind a slow output, drop the guard
/// without shutting down, panic, and exit.
fn queue_then_panic() -> ! {
    let slow = Slow {
        inner: TestLogs::new(),
        delay: Duration::from_millis(20),
        writes: Arc::new(AtomicU64::new(0)),
    };
    // The slow output only delays; lines go to stdout via a second writer.
    struct Tee(Slow);
    impl Write for Tee {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)?;
            io::stdout().write_all(buf)?;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            io::stdout().flush()
        }
    }
    let (pipeline, guard) = Pipeline::builder(Tee(slow)).start();
    // No guard: only the panic hook can write these lines out.
    std::mem::forget(guard);
    use corrlog::fmt::Sink;
    for i in 0..1000 {
        pipeline.write_line(format!("{{\"child_line\":{i}}}\n").as_bytes());
    }
    let _ = std::panic::catch_unwind(|| panic!("child panics"));
    std::process::exit(0)
}

/// Runs in two processes: the test re-runs its own binary for this test
/// alone with `PANIC_CHILD_ENV` set, and that child panics.
#[test]
fn the_panic_hook_flushes_queued_lines() {
    if std::env::var_os(PANIC_CHILD_ENV).is_some() {
        queue_then_panic();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_panic_hook_flushes_queued_lines",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PANIC_CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The harness prints "test ... " before the first line.
    let lines = stdout.matches("{\"child_line\":").count();
    assert_eq!(
        lines,
        1000,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
