//! Chained services across frameworks: the actix-web demo and the axum
//! demo call each other (`GET /orders/{id}` with `--downstream`), in both
//! directions, through the shared three-hop suite: one request id and one
//! trace id across every hop.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Both demos include the order service they share.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/actix_demo/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../../examples/demo/app.rs"]
#[allow(dead_code)]
mod axum_app;
#[path = "../../tests/common/mod.rs"]
mod common;
mod support;

use common::{suites, TestServer};
use corrlog::RequestLayer;

fn axum_demo(downstream: Option<String>) -> TestServer {
    let downstream = downstream.as_deref().map(axum_app::Downstream::new);
    TestServer::start(
        2,
        axum_app::routes(axum_app::AppConfig { jitter_ms: 1 }, downstream)
            .layer(RequestLayer::new()),
    )
}

fn actix_demo(downstream: Option<String>) -> TestServer {
    support::start(2, RequestLayer::new(), move || {
        app::routes(
            app::AppConfig { jitter_ms: 1 },
            downstream.as_deref().map(app::Downstream::new),
        )
    })
}

#[test]
fn actix_calls_axum_which_calls_axum() {
    let c = axum_demo(None);
    let b = axum_demo(Some(c.url("")));
    let a = actix_demo(Some(b.url("")));
    suites::three_hops_share_one_request_id_and_trace_id(&a, &b, &c);
}

#[test]
fn axum_calls_actix_which_calls_axum() {
    let c = axum_demo(None);
    let b = actix_demo(Some(c.url("")));
    let a = axum_demo(Some(b.url("")));
    suites::three_hops_share_one_request_id_and_trace_id(&a, &b, &c);
}
