//! Hostile input against the real server over raw sockets (no client
//! library to refuse bad bytes). For every class of bad `x-request-id`,
//! path and user agent: the response id is always a valid id, the raw value
//! never appears in a response header or a log line, every line parses as
//! JSON, and the server keeps serving. A request the HTTP parser itself
//! refuses (hyper answers 400/431 before any middleware runs) reaches
//! neither the service nor the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use common::{suites, TestServer};

fn server(jitter_ms: u64, workers: usize) -> TestServer {
    TestServer::start(
        workers,
        app::routes(app::AppConfig { jitter_ms }, None).layer(corrlog::RequestLayer::new()),
    )
}

#[test]
fn hostile_request_ids_are_replaced_and_never_echoed_or_logged() {
    suites::hostile_request_ids_are_replaced(&server(0, 2));
}

#[test]
fn hostile_paths_and_user_agents_stay_inside_their_strings() {
    suites::hostile_paths_and_agents_stay_inside_their_strings(&server(0, 2));
}

#[test]
fn keep_alive_and_pipelined_sequences_mixing_good_bad_ids_and_panics() {
    suites::good_and_bad_ids_and_panics_on_one_connection(&server(1, 4));
}
