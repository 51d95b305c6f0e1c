//! Connection reuse: many requests with different ids over one keep-alive
//! connection, and pipelined requests, never leak into each other, also
//! when bad ids and panics are mixed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::collections::{HashMap, HashSet};

use common::{client_runtime, get_request, is_uuid_v4, str_field, RawConn, TestServer};

/// What request `i` sends as its id: a valid one, none, or a bad one.
fn id_header(i: usize) -> Option<Vec<u8>> {
    match i % 4 {
        0 => Some(format!("x-request-id: conn-{i}").into_bytes()),
        1 => None,
        2 => Some(b"x-request-id: bad id \"with quotes\"".to_vec()),
        _ => Some(format!("x-request-id: conn-{i}-b").into_bytes()),
    }
}

fn request(i: usize) -> Vec<u8> {
    let path = if i % 10 == 9 {
        "/boom".to_owned()
    } else {
        format!("/orders/{i}")
    };
    match id_header(i) {
        Some(h) => get_request(&path, &[&h]),
        None => get_request(&path, &[]),
    }
}

fn check(server: &TestServer, responses: Vec<common::RawResponse>) {
    let mut ids = HashSet::new();
    let mut order_of: HashMap<String, String> = HashMap::new();
    for (i, res) in responses.iter().enumerate() {
        let id = res.header("x-request-id").unwrap();
        match i % 4 {
            0 => assert_eq!(id, format!("conn-{i}")),
            3 => assert_eq!(id, format!("conn-{i}-b")),
            _ => assert!(is_uuid_v4(&id), "{id}"),
        }
        assert!(ids.insert(id.clone()), "id {id} issued twice");
        if i % 10 == 9 {
            assert_eq!(res.status, 500);
        } else {
            assert_eq!(res.status, 200);
            let body = res.json();
            assert_eq!(body["request_id"], id);
            assert_eq!(body["seen"]["sync"], id);
            assert_eq!(body["seen"]["background"], id);
            order_of.insert(i.to_string(), id);
        }
    }
    let lines = server.lines();
    let mut seen_orders = HashSet::new();
    for line in &lines {
        if let Some(order) = str_field(line, "order_id") {
            assert_eq!(
                str_field(line, "request_id"),
                Some(order_of[order].as_str()),
                "{line}"
            );
            seen_orders.insert(order.to_owned());
        }
    }
    assert_eq!(seen_orders.len(), order_of.len());
    assert!(!String::from_utf8_lossy(&server.capture.bytes()).contains("with quotes"));
}

#[test]
fn sequential_requests_on_one_keep_alive_connection_do_not_leak() {
    let server = TestServer::start(
        4,
        app::routes(app::AppConfig { jitter_ms: 1 }, None).layer(corrlog::RequestLayer::new()),
    );
    let responses = client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        let mut out = Vec::new();
        for i in 0..300 {
            conn.send(&request(i)).await;
            out.push(conn.read_response().await);
        }
        out
    });
    check(&server, responses);
}

#[test]
fn pipelined_requests_do_not_leak() {
    let server = TestServer::start(
        4,
        app::routes(app::AppConfig { jitter_ms: 1 }, None).layer(corrlog::RequestLayer::new()),
    );
    let responses = client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        // All requests in one write, before reading any response.
        let all: Vec<u8> = (0..200).flat_map(request).collect();
        conn.send(&all).await;
        let mut out = Vec::new();
        for _ in 0..200 {
            out.push(conn.read_response().await);
        }
        out
    });
    check(&server, responses);
}

#[test]
fn many_keep_alive_connections_in_parallel() {
    let server = TestServer::start(
        4,
        app::routes(app::AppConfig { jitter_ms: 2 }, None).layer(corrlog::RequestLayer::new()),
    );
    let addr = server.addr;
    let per_conn: Vec<Vec<common::RawResponse>> = client_runtime().block_on(async move {
        let mut tasks = Vec::new();
        for c in 0..50 {
            tasks.push(tokio::spawn(async move {
                let mut conn = RawConn::connect(addr).await;
                let mut out = Vec::new();
                for i in 0..40 {
                    let id = format!("x-request-id: c{c}-r{i}");
                    conn.send(&get_request(
                        &format!("/orders/c{c}-r{i}"),
                        &[id.as_bytes()],
                    ))
                    .await;
                    out.push(conn.read_response().await);
                }
                out
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap());
        }
        all
    });
    for (c, responses) in per_conn.iter().enumerate() {
        for (i, res) in responses.iter().enumerate() {
            let expected = format!("c{c}-r{i}");
            assert_eq!(res.header("x-request-id").unwrap(), expected);
            assert_eq!(res.json()["seen"]["background"], expected);
        }
    }
    for line in server.lines() {
        if let Some(order) = str_field(&line, "order_id") {
            assert_eq!(str_field(&line, "request_id"), Some(order));
        }
    }
}
