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
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::suites::{self, hammer, REQUESTS};
use common::TestServer;

const WORKERS: usize = 4;

#[test]
fn ten_thousand_overlapping_requests_through_every_layer_never_mix_ids() {
    let app = app::routes(app::AppConfig { jitter_ms: 20 }, None);
    let server = TestServer::start(WORKERS, app.layer(corrlog::RequestLayer::new()));
    suites::every_layer_keeps_its_request_id(&server);
}

#[test]
fn lines_logged_while_streaming_a_body_carry_the_id() {
    let server = TestServer::start(
        WORKERS,
        app::routes(app::AppConfig { jitter_ms: 5 }, None).layer(corrlog::RequestLayer::new()),
    );
    suites::streamed_lines_keep_their_request_id(&server);
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
