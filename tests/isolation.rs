//! Isolation under load: thousands of overlapping requests on a 4-worker
//! multi-thread runtime, through every layer of the demo (handler, async
//! service, spawn_blocking, spawn) and through streaming bodies. Every
//! line must carry the id of the request it belongs to.
//!
//! A control experiment runs a `thread_local!` design in the same harness
//! and shows it mixes ids, so we know the harness can see a leak.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::{client_runtime, is_uuid_v4, str_field, TestServer};
use serde_json::Value;
use tokio::sync::Semaphore;

const WORKERS: usize = 4;
const REQUESTS: usize = 10_000;
const IN_FLIGHT: usize = 1_250;

/// Counts requests inside the server at once.
#[derive(Clone, Default)]
struct InFlight {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl InFlight {
    fn layer(&self, router: Router) -> Router {
        let me = self.clone();
        router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let me = me.clone();
            async move {
                let n = me.now.fetch_add(1, Ordering::SeqCst) + 1;
                me.peak.fetch_max(n, Ordering::SeqCst);
                let res = next.run(req).await;
                me.now.fetch_sub(1, Ordering::SeqCst);
                res
            }
        }))
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

struct Outcome {
    sent_id: Option<String>,
    /// The response's `x-request-id` (the naive design sends none).
    header_id: String,
    body: String,
}

/// Sends `REQUESTS` GETs, `IN_FLIGHT` at a time, request `i` to
/// `path(i)` with `x-request-id: id(i)` when that returns one.
fn hammer(
    server: &TestServer,
    path: impl Fn(usize) -> String,
    id: impl Fn(usize) -> Option<String>,
) -> Vec<Outcome> {
    let rt = client_runtime();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    rt.block_on(async {
        let mut handles = Vec::with_capacity(REQUESTS);
        for i in 0..REQUESTS {
            let client = client.clone();
            let permits = permits.clone();
            let url = server.url(&path(i));
            let sent_id = id(i);
            handles.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                let mut req = client.get(&url);
                if let Some(id) = &sent_id {
                    req = req.header("x-request-id", id);
                }
                let res = req.send().await.unwrap();
                assert!(res.status().is_success(), "{url}: {}", res.status());
                let header_id = res
                    .headers()
                    .get("x-request-id")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let body = res.text().await.unwrap();
                Outcome {
                    sent_id,
                    header_id,
                    body,
                }
            }));
        }
        let mut out = Vec::with_capacity(REQUESTS);
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    })
}

#[test]
fn ten_thousand_overlapping_requests_through_every_layer_never_mix_ids() {
    let in_flight = InFlight::default();
    let app = in_flight.layer(app::routes(app::AppConfig { jitter_ms: 20 }, None));
    let server = TestServer::start(WORKERS, app.layer(corrlog::RequestLayer::new()));

    // Half the requests bring their own id, half get a generated one.
    let outcomes = hammer(
        &server,
        |i| format!("/orders/{i}"),
        |i| (i % 2 == 0).then(|| format!("client-{i}")),
    );

    let mut expected: HashMap<String, String> = HashMap::new();
    for (i, o) in outcomes.iter().enumerate() {
        match &o.sent_id {
            Some(sent) => assert_eq!(&o.header_id, sent),
            None => assert!(is_uuid_v4(&o.header_id), "{}", o.header_id),
        }
        let body: Value = serde_json::from_str(&o.body).unwrap();
        assert_eq!(body["order_id"], i.to_string());
        assert_eq!(body["request_id"], o.header_id);
        for layer in ["handler", "service", "sync", "background"] {
            assert_eq!(
                body["seen"][layer], o.header_id,
                "layer {layer} of request {i}"
            );
        }
        expected.insert(i.to_string(), o.header_id.clone());
    }
    assert_eq!(
        expected
            .values()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        REQUESTS
    );

    let lines = server.lines();
    let mut per_order: HashMap<&str, usize> = HashMap::new();
    let mut loggers: HashMap<&str, usize> = HashMap::new();
    for line in &lines {
        let Some(order) = str_field(line, "order_id") else {
            continue;
        };
        let id = str_field(line, "request_id").expect("order line without request_id");
        assert_eq!(
            id, expected[order],
            "line {line} carries another request's id"
        );
        *per_order.entry(order).or_default() += 1;
        *loggers
            .entry(str_field(line, "logger").unwrap())
            .or_default() += 1;
    }
    assert_eq!(per_order.len(), REQUESTS);
    // Five INFO and four DEBUG lines from the demo's layers (no level
    // filter here), and one access line.
    assert!(
        per_order.values().all(|&n| n == 10),
        "each request logs 10 lines"
    );
    for logger in ["orders", "db", "audit", "corrlog::access"] {
        assert!(loggers[logger] >= REQUESTS, "{logger}: {loggers:?}");
    }
    let peak = in_flight.peak();
    eprintln!("peak requests in flight in the server: {peak}");
    assert!(peak >= 1_000, "only {peak} requests overlapped");
}

#[test]
fn lines_logged_while_streaming_a_body_carry_the_id() {
    let server = TestServer::start(
        WORKERS,
        app::routes(app::AppConfig { jitter_ms: 5 }, None).layer(corrlog::RequestLayer::new()),
    );
    let outcomes = hammer(&server, |_| "/stream/5".to_owned(), |_| None);

    for o in &outcomes {
        // The body reports the id current while each chunk was produced.
        let chunks: Vec<&str> = o.body.lines().collect();
        assert_eq!(chunks, vec![o.header_id.as_str(); 5]);
    }
    let lines = server.lines();
    let groups = common::by_request_id(&lines);
    assert_eq!(groups.len(), REQUESTS);
    for o in &outcomes {
        let group = &groups[&o.header_id];
        let chunks = group
            .iter()
            .filter(|l| str_field(l, "message") == Some("streaming chunk"))
            .count();
        assert_eq!(chunks, 5, "request {}", o.header_id);
        // "starting stream", five chunks, and the access line written when
        // the body ended.
        assert_eq!(group.len(), 7);
        let access = group.last().unwrap();
        assert_eq!(str_field(access, "logger"), Some("corrlog::access"));
        assert_eq!(access["bytes_out"], 5 * 37);
    }
    assert!(lines
        .iter()
        .filter(|l| str_field(l, "message") == Some("streaming chunk"))
        .all(|l| l.get("request_id").is_some()));
}

thread_local! {
    /// The classic mistake: the request id in a thread-local.
    static THREAD_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

async fn awaits() {
    for _ in 0..3 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_micros(fastrand::u64(0..5_000))).await;
    }
}

/// The control experiment: a `thread_local!` design in the same harness
/// mixes ids; the corrlog design, in the same harness, never does.
#[test]
fn control_thread_local_design_mixes_ids_and_corrlog_does_not() {
    // thread_local!: set in a middleware, read by the handler after awaits.
    let naive = Router::new()
        .route(
            "/",
            get(|| async {
                awaits().await;
                THREAD_ID.with(|id| id.borrow().clone()).unwrap_or_default()
            }),
        )
        .layer(middleware::from_fn(|req: Request, next: Next| async move {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            THREAD_ID.with(|slot| *slot.borrow_mut() = id);
            let res: Response = next.run(req).await;
            res
        }));
    let corrlog_app = Router::new()
        .route(
            "/",
            get(|| async {
                awaits().await;
                corrlog::request_id()
                    .map(|id| id.to_string())
                    .unwrap_or_default()
            }),
        )
        .layer(corrlog::RequestLayer::new());

    let mismatches = |app: Router| {
        let server = TestServer::start(WORKERS, app);
        hammer(&server, |_| "/".to_owned(), |i| Some(format!("req-{i}")))
            .iter()
            .filter(|o| o.body != *o.sent_id.as_ref().unwrap())
            .count()
    };
    let naive_mixed = mismatches(naive);
    let corrlog_mixed = mismatches(corrlog_app);
    eprintln!(
        "requests whose handler saw another request's id: thread_local {naive_mixed}, corrlog {corrlog_mixed} (of {REQUESTS})"
    );
    assert!(
        naive_mixed > 0,
        "the harness failed to provoke a leak in the thread_local design"
    );
    assert_eq!(corrlog_mixed, 0);
}
