//! Connection reuse: many requests with different ids over one keep-alive
//! connection, and pipelined requests, never leak into each other, also
//! when bad ids and panics are mixed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use common::{suites, TestServer};

fn server(jitter_ms: u64) -> TestServer {
    TestServer::start(
        4,
        app::routes(app::AppConfig { jitter_ms }, None).layer(corrlog::RequestLayer::new()),
    )
}

#[test]
fn sequential_requests_on_one_keep_alive_connection_do_not_leak() {
    suites::keep_alive_requests_do_not_leak(&server(1));
}

#[test]
fn pipelined_requests_do_not_leak() {
    suites::pipelined_requests_do_not_leak(&server(1));
}

#[test]
fn many_keep_alive_connections_in_parallel() {
    suites::many_keep_alive_connections_in_parallel(&server(2));
}
