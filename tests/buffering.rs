//! Per-request log buffering over a real server: each flush trigger, the
//! order of flushed lines, eviction counts, isolation under load, lines of
//! tasks that outlive their request, both backpressure modes, and the
//! demo's behaviour with `CORRLOG_BUFFER=debug` in effect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use corrlog::fmt::Buffering;
use corrlog::http::AccessLog;
use corrlog::output::Backpressure;
use corrlog::output::Destination;
use corrlog::testing::TestLogs;
use corrlog::{Format, Logging, RequestLayer};
use serde_json::Value;
use tokio::runtime::Runtime;

struct Server {
    addr: SocketAddr,
    capture: TestLogs,
    logging: Option<Logging>,
    runtime: Option<Runtime>,
}

impl Server {
    /// Serves `app` with the builder's set-up at `info`, buffering DEBUG
    /// lines under `buffering`.
    fn start(app: Router, buffering: Buffering, backpressure: Backpressure) -> Server {
        Server::start_with(app, buffering, backpressure, RequestLayer::new())
    }

    fn start_with(
        app: Router,
        buffering: Buffering,
        backpressure: Backpressure,
        layer: RequestLayer,
    ) -> Server {
        let capture = TestLogs::new();
        let (subscriber, logging) = corrlog::builder()
            .request_layer(layer)
            .format(Format::Json)
            .level("info")
            .buffering(buffering)
            .backpressure(backpressure)
            .output(Destination::Writer(Box::new(capture.clone())))
            .use_env(false)
            .build()
            .unwrap();
        let runtime = corrlog::testing::runtime_with(tracing::Dispatch::new(subscriber), 2);
        let app = app.layer(logging.request_layer());
        let addr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        });
        Server {
            addr,
            capture,
            logging: Some(logging),
            runtime: Some(runtime),
        }
    }

    /// Stops the server, writes out every line, and returns them.
    fn finish(mut self) -> Vec<Value> {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        let report = self
            .logging
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(10));
        assert_eq!(report.stats.dropped, 0);
        common::parse_lines(&self.capture.bytes())
    }
}

/// GET `path` with `x-request-id: id`; returns the status.
async fn get_status(client: &reqwest::Client, addr: SocketAddr, path: &str, id: &str) -> u16 {
    client
        .get(format!("http://{addr}{path}"))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn messages(lines: &[&Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["level"].as_str().unwrap(),
                l["message"].as_str().unwrap()
            )
        })
        .collect()
}

fn of<'a>(lines: &'a [Value], id: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["request_id"] == id).collect()
}

/// Lets the `/outlive` request's task log, after its response.
static RESPONDED: tokio::sync::Notify = tokio::sync::Notify::const_new();

fn routes() -> Router {
    Router::new()
        .route(
            "/ok",
            get(|| async {
                tracing::debug!(step = 1, "ok detail");
                tracing::debug!(step = 2, "ok detail");
                tracing::info!("ok done");
                "ok"
            }),
        )
        .route(
            "/error",
            get(|| async {
                tracing::debug!("before the error 1");
                tracing::info!("between");
                tracing::debug!("before the error 2");
                tracing::error!("it failed");
                tracing::debug!("after the error");
                "handled"
            }),
        )
        .route(
            "/unavailable",
            get(|| async {
                tracing::debug!("why it is unavailable");
                (StatusCode::SERVICE_UNAVAILABLE, "later")
            }),
        )
        .route(
            "/not-found",
            get(|| async {
                tracing::debug!("looked everywhere");
                (StatusCode::NOT_FOUND, "no")
            }),
        )
        .route(
            "/flush",
            get(|| async {
                tracing::debug!("kept until the flush");
                assert!(corrlog::flush_buffer());
                tracing::debug!("straight out");
                "flushed"
            }),
        )
        .route(
            "/panic",
            get(|| async {
                tracing::debug!("about to panic");
                if std::hint::black_box(true) {
                    panic!("handler panicked");
                }
                "unreachable"
            }),
        )
        .route(
            "/slow-body",
            get(|| async {
                tracing::debug!("the body starts");
                Body::new(Slow(false))
            }),
        )
        .route(
            "/outlive",
            get(|| async {
                tracing::debug!("in the request");
                corrlog::spawn(async {
                    // Logs only once the client has its response.
                    RESPONDED.notified().await;
                    tracing::debug!("after the end, below the level");
                    tracing::info!("after the end, at the level");
                });
                "ok"
            }),
        )
        .route(
            "/big/{n}",
            get(|path: axum::extract::Path<u32>| async move {
                for i in 0..path.0 {
                    tracing::debug!(i, pad = "x".repeat(900).as_str(), "bulky detail");
                }
                (StatusCode::BAD_GATEWAY, "upstream broke")
            }),
        )
}

/// A body that sends one chunk and then never ends: the client hangs up.
struct Slow(bool);

impl http_body::Body for Slow {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.0 {
            std::task::Poll::Pending
        } else {
            self.0 = true;
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
                b"first",
            )))))
        }
    }
}

fn up_to_debug() -> Buffering {
    Buffering::up_to(tracing::Level::DEBUG)
}

#[test]
fn each_trigger_writes_the_buffer_in_order_before_its_line() {
    for backpressure in [Backpressure::default(), Backpressure::Drop] {
        let server = Server::start(routes(), up_to_debug(), backpressure);
        let addr = server.addr;
        common::client_runtime().block_on(async {
            let client = reqwest::Client::new();
            assert_eq!(get_status(&client, addr, "/ok", "ok-1").await, 200);
            assert_eq!(get_status(&client, addr, "/error", "error-1").await, 200);
            assert_eq!(
                get_status(&client, addr, "/unavailable", "5xx-1").await,
                503
            );
            assert_eq!(get_status(&client, addr, "/not-found", "4xx-1").await, 404);
            assert_eq!(get_status(&client, addr, "/flush", "flush-1").await, 200);
            assert_eq!(get_status(&client, addr, "/panic", "panic-1").await, 500);
            // The client reads the first chunk and hangs up.
            let mut res = client
                .get(format!("http://{addr}/slow-body"))
                .header("x-request-id", "body-1")
                .send()
                .await
                .unwrap();
            assert_eq!(res.chunk().await.unwrap().unwrap(), "first");
            drop(res);
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        let lines = server.finish();

        // A request that ends well writes none of its DEBUG lines; its
        // access line says how many it dropped.
        let ok = of(&lines, "ok-1");
        assert_eq!(messages(&ok), ["INFO ok done", "INFO request finished"]);
        assert_eq!(ok[1]["buffer_discarded"], 2);
        let not_found = of(&lines, "4xx-1");
        assert_eq!(messages(&not_found), ["WARN request finished"]);
        assert_eq!(not_found[0]["buffer_discarded"], 1);

        // An ERROR line: the buffered lines first, in their order, with
        // their own timestamps; later lines go straight out.
        let error = of(&lines, "error-1");
        assert_eq!(
            messages(&error),
            [
                "INFO between",
                "DEBUG before the error 1",
                "DEBUG before the error 2",
                "ERROR it failed",
                "DEBUG after the error",
                "INFO request finished",
            ]
        );
        assert!(error[1]["timestamp"].as_str() <= error[0]["timestamp"].as_str());
        assert!(error[4].get("buffer_discarded").is_none());

        // A 5xx, flush_buffer(), a panic and a client hang-up.
        assert_eq!(
            messages(&of(&lines, "5xx-1")),
            ["DEBUG why it is unavailable", "ERROR request finished"]
        );
        assert_eq!(
            messages(&of(&lines, "flush-1")),
            [
                "DEBUG kept until the flush",
                "DEBUG straight out",
                "INFO request finished"
            ]
        );
        let panic = messages(&of(&lines, "panic-1"));
        assert_eq!(panic[0], "DEBUG about to panic");
        assert!(
            panic.contains(&"ERROR handler panicked".to_owned()),
            "{panic:?}"
        );
        let body = messages(&of(&lines, "body-1"));
        assert_eq!(body[0], "DEBUG the body starts", "{body:?}");
        assert!(
            body.last().unwrap().ends_with(" request finished"),
            "{body:?}"
        );
        // Every flushed line keeps its request's ids and level.
        for line in &lines {
            if line["level"] == "DEBUG" {
                assert!(line["request_id"].is_string(), "{line}");
                assert!(line["trace_id"].is_string(), "{line}");
            }
        }
    }
}

#[test]
fn evictions_are_counted_exactly_under_the_request_cap() {
    // Each line is about 1.2 KiB; 16 KiB holds 12 or 13 of them.
    let buffering = up_to_debug().request_bytes(16 * 1024);
    let server = Server::start(routes(), buffering, Backpressure::default());
    let addr = server.addr;
    common::client_runtime().block_on(async {
        let client = reqwest::Client::new();
        assert_eq!(get_status(&client, addr, "/big/40", "big-1").await, 502);
        assert_eq!(get_status(&client, addr, "/big/3", "small-1").await, 502);
    });
    let lines = server.finish();
    let big = of(&lines, "big-1");
    assert_eq!(big[0]["level"], "WARN");
    let evicted = big[0]["buffer_evicted"].as_u64().unwrap();
    let kept: Vec<u64> = big[1..]
        .iter()
        .filter(|l| l["message"] == "bulky detail")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    // The oldest went: what is left is the newest, in order, and the
    // counts add up to every line logged.
    assert_eq!(evicted + kept.len() as u64, 40);
    assert_eq!(kept, (evicted..40).collect::<Vec<_>>());
    let kept_bytes: usize = big[1..big.len() - 1]
        .iter()
        .map(|l| serde_json::to_string(l).unwrap().len() + 1)
        .sum();
    assert!(kept_bytes <= 16 * 1024 + 1024, "{kept_bytes}");
    let access = big.last().unwrap();
    assert_eq!(access["message"], "request finished");
    assert_eq!(access["buffer_evicted"], evicted);
    // Under the cap: nothing evicted, no WARN line.
    let small = of(&lines, "small-1");
    assert_eq!(small.len(), 4);
    assert!(small[3].get("buffer_evicted").is_none());
}

#[test]
fn evictions_are_counted_exactly_under_the_process_wide_cap() {
    // A request may keep 64 KiB, but all requests together only 4 KiB:
    // the process-wide cap is the one that binds.
    let buffering = up_to_debug().total_bytes(4 * 1024);
    let server = Server::start(routes(), buffering, Backpressure::default());
    let addr = server.addr;
    common::client_runtime().block_on(async {
        let client = reqwest::Client::new();
        assert_eq!(get_status(&client, addr, "/big/40", "global-1").await, 502);
    });
    let lines = server.finish();
    let big = of(&lines, "global-1");
    let evicted = big[0]["buffer_evicted"].as_u64().unwrap();
    let kept: Vec<u64> = big
        .iter()
        .filter(|l| l["message"] == "bulky detail")
        .map(|l| l["i"].as_u64().unwrap())
        .collect();
    // Other tests of this binary buffer at the same time, so fewer may
    // fit; never more than 4 KiB.
    assert!(kept.len() <= 4, "{kept:?}");
    assert_eq!(evicted + kept.len() as u64, 40);
    assert_eq!(kept, (evicted..40).collect::<Vec<_>>());
    assert_eq!(big.last().unwrap()["buffer_evicted"], evicted);
}

#[test]
fn with_the_access_log_off_a_request_still_flushes_or_drops_its_lines() {
    let layer = RequestLayer::new().access_log(AccessLog::default().enabled(false));
    let server = Server::start_with(routes(), up_to_debug(), Backpressure::default(), layer);
    let addr = server.addr;
    common::client_runtime().block_on(async {
        let client = reqwest::Client::new();
        assert_eq!(
            get_status(&client, addr, "/unavailable", "off-5xx").await,
            503
        );
        assert_eq!(get_status(&client, addr, "/ok", "off-ok").await, 200);
    });
    let lines = server.finish();
    assert_eq!(
        messages(&of(&lines, "off-5xx")),
        ["DEBUG why it is unavailable"]
    );
    assert_eq!(messages(&of(&lines, "off-ok")), ["INFO ok done"]);
}

#[test]
fn a_task_that_outlives_its_request_is_filtered_as_usual() {
    let server = Server::start(routes(), up_to_debug(), Backpressure::default());
    let addr = server.addr;
    common::client_runtime().block_on(async {
        let client = reqwest::Client::new();
        assert_eq!(get_status(&client, addr, "/outlive", "late-1").await, 200);
        // The response is out, so the request has ended (its access line
        // is written as the body ends): now let its task log.
        tokio::time::sleep(Duration::from_millis(50)).await;
        RESPONDED.notify_one();
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&server.capture.bytes()).contains("after the end, at the level")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the task never logged"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines = server.finish();
    assert_eq!(
        messages(&of(&lines, "late-1")),
        ["INFO request finished", "INFO after the end, at the level"]
    );
}

#[test]
fn failing_requests_get_exactly_their_own_debug_lines() {
    const REQUESTS: usize = 2_000;
    let server = Server::start(
        app::routes(app::AppConfig::default(), None),
        up_to_debug(),
        Backpressure::default(),
    );
    let addr = server.addr;
    common::client_runtime().block_on(async {
        let client = reqwest::Client::new();
        let tasks: Vec<_> = (0..REQUESTS)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let (path, want) = if i % 2 == 0 {
                        (format!("/orders/{i}"), 200)
                    } else {
                        (format!("/orders/fail-{i}"), 503)
                    };
                    let status = get_status(&client, addr, &path, &format!("iso-{i}")).await;
                    assert_eq!(status, want);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let lines = server.finish();
    let by_id = common::by_request_id(&lines);
    assert_eq!(by_id.len(), REQUESTS);
    for i in 0..REQUESTS {
        let mine = &by_id[&format!("iso-{i}")];
        let debug: Vec<&str> = mine
            .iter()
            .filter(|l| l["level"] == "DEBUG")
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        let access = mine.last().unwrap();
        assert_eq!(access["message"], "request finished");
        if i % 2 == 0 {
            assert!(debug.is_empty(), "iso-{i}: {debug:?}");
            assert_eq!(access["buffer_discarded"], 4);
        } else {
            // Handler, service, blocking call, spawned task: in order.
            assert_eq!(
                debug,
                [
                    "order request parsed",
                    "order cache miss",
                    "query plan: index scan on orders_pkey",
                    "audit record prepared",
                ],
                "iso-{i}"
            );
            assert_eq!(access["status"], 503);
            let order_id = format!("fail-{i}");
            assert!(mine.iter().all(|l| l["order_id"] == order_id.as_str()));
        }
    }
}

/// The demo binary with `CORRLOG_BUFFER=debug` at its default `info`: a
/// good order writes no DEBUG line, a failed one (503, no ERROR line) all
/// of its DEBUG lines before its access line, and `/boom` its DEBUG line
/// before the panic line.
#[test]
fn the_demo_writes_debug_lines_only_for_failed_requests() {
    use common::demo::{get, start_demo, stop};

    let (demo, stdout, addr) = start_demo(&[("CORRLOG_BUFFER", "debug")]);
    assert!(get(addr, "/orders/42", "x-request-id: good-1\r\n").starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/orders/fail-7", "x-request-id: bad-1\r\n").starts_with("HTTP/1.1 503"));
    assert!(get(addr, "/boom", "x-request-id: boom-1\r\n").starts_with("HTTP/1.1 500"));
    let (out, _) = stop(demo, stdout);
    let lines = common::parse_lines(out.as_bytes());

    let good = of(&lines, "good-1");
    assert!(good.iter().all(|l| l["level"] != "DEBUG"), "{good:?}");
    assert_eq!(good.last().unwrap()["buffer_discarded"], 4);

    let bad = messages(&of(&lines, "bad-1"));
    let debug: Vec<&String> = bad.iter().filter(|m| m.starts_with("DEBUG")).collect();
    assert_eq!(debug.len(), 4, "{bad:?}");
    assert!(!bad
        .iter()
        .any(|m| m.starts_with("ERROR ") && !m.ends_with("request finished")));
    assert_eq!(bad.last().unwrap(), "ERROR request finished");
    let first_debug = bad.iter().position(|m| m.starts_with("DEBUG")).unwrap();
    assert!(bad[first_debug..bad.len() - 1]
        .iter()
        .all(|m| m.starts_with("DEBUG")));

    let boom = messages(&of(&lines, "boom-1"));
    let debug_at = boom
        .iter()
        .position(|m| m == "DEBUG boom handler entered")
        .unwrap();
    let panic_at = boom
        .iter()
        .position(|m| m == "ERROR boom: the handler failed")
        .unwrap();
    assert!(debug_at < panic_at, "{boom:?}");
}
