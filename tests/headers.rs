//! Header policy, end to end over raw sockets: valid ids of every gateway
//! format are echoed unchanged; duplicates; several configured headers in
//! both orders; edge mode; custom policies. Hostile values: `hostile.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::HeaderName;
use axum::routing::get;
use axum::Router;
use common::{client_runtime, get_request, is_uuid_v4, str_field, RawConn, TestServer};
use corrlog::RequestLayer;

fn app(layer: RequestLayer) -> Router {
    Router::new()
        .route(
            "/",
            get(|headers: axum::http::HeaderMap| async move {
                tracing::info!("handled");
                // What the handler sees as x-request-id: the effective id only.
                let seen: Vec<String> = headers
                    .get_all("x-request-id")
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                seen.join(",")
            }),
        )
        .layer(layer)
}

/// Sends one request with the given raw header lines; returns the
/// response's id, the body (ids the handler saw) and the raw response.
fn roundtrip(server: &TestServer, headers: &[&[u8]]) -> (String, common::RawResponse) {
    let res = raw(server, headers);
    assert_eq!(res.status, 200);
    assert_eq!(res.header_count("x-request-id"), 1);
    let id = res.header("x-request-id").unwrap();
    (id, res)
}

fn raw(server: &TestServer, headers: &[&[u8]]) -> common::RawResponse {
    client_runtime().block_on(async {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(&get_request("/", headers)).await;
        conn.read_response().await
    })
}

const GATEWAY_IDS: &[&str] = &[
    // nginx $request_id
    "4b0d5c9e8f1a2b3c4d5e6f708192a3b4",
    // UUIDs, v4 and v7, both cases
    "550e8400-e29b-41d4-a716-446655440000",
    "550E8400-E29B-41D4-A716-446655440000",
    "01890a5d-ac96-774b-bcce-b302099a8057",
    // ULID
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    // Cloudflare cf-ray
    "7f2c9b3e4d5a6b1c-CDG",
    // AWS ALB
    "Root=1-67891233-abcdef012345678912345678",
    // Heroku-like base64ish
    "ZGVhZGJlZWYtY2FmZS1iYWJl+/0=-x",
    // HAProxy style
    "C0A80001:D2A4_0A1B2C3D:01BB_5F6E7D8C_0001:1F2E",
    // Envoy
    "b8f3a3c4-0e2e-4a8f-9b8e-3f4a5b6c7d8e",
];

#[test]
fn gateway_id_formats_are_echoed_unchanged() {
    let server = TestServer::start(2, app(RequestLayer::new()));
    for &id in GATEWAY_IDS {
        let header = format!("x-request-id: {id}");
        let (echoed, res) = roundtrip(&server, &[header.as_bytes()]);
        assert_eq!(echoed, id);
        assert_eq!(
            String::from_utf8_lossy(&res.body),
            id,
            "the handler sees the same id"
        );
    }
    let lines = server.lines();
    for &id in GATEWAY_IDS {
        assert!(lines.iter().any(|l| str_field(l, "request_id") == Some(id)));
    }
}

#[test]
fn a_duplicated_header_is_replaced() {
    let server = TestServer::start(2, app(RequestLayer::new()));
    let (id, _) = roundtrip(
        &server,
        &[b"x-request-id: first-1", b"x-request-id: second-2"],
    );
    assert!(is_uuid_v4(&id), "{id}");
    // Header names are case-insensitive: a case variant is the same header.
    let (id, _) = roundtrip(
        &server,
        &[b"X-Request-ID: first-1", b"x-REQUEST-id: second-2"],
    );
    assert!(is_uuid_v4(&id), "{id}");
    let (id, _) = roundtrip(&server, &[b"X-REQUEST-ID: upper-1"]);
    assert_eq!(id, "upper-1");
}

fn two_headers(order: [&'static str; 2]) -> RequestLayer {
    RequestLayer::new().headers(order.map(HeaderName::from_static))
}

#[test]
fn first_valid_configured_header_wins_in_either_order() {
    let forward = TestServer::start(2, app(two_headers(["x-request-id", "x-correlation-id"])));
    let reverse = TestServer::start(2, app(two_headers(["x-correlation-id", "x-request-id"])));
    let both: &[&[u8]] = &[b"x-request-id: rid-1", b"x-correlation-id: cid-1"];
    assert_eq!(roundtrip(&forward, both).0, "rid-1");
    assert_eq!(roundtrip(&reverse, both).0, "cid-1");

    let first_bad: &[&[u8]] = &[b"x-request-id: bad value", b"x-correlation-id: cid-2"];
    assert_eq!(roundtrip(&forward, first_bad).0, "cid-2");
    let second_bad: &[&[u8]] = &[b"x-request-id: rid-2", b"x-correlation-id: bad value"];
    assert_eq!(roundtrip(&reverse, second_bad).0, "rid-2");

    let only_second: &[&[u8]] = &[b"x-correlation-id: cid-3"];
    assert_eq!(roundtrip(&forward, only_second).0, "cid-3");
    // The handler sees one x-request-id: the effective id.
    let (_, res) = roundtrip(&forward, only_second);
    assert_eq!(String::from_utf8_lossy(&res.body), "cid-3");

    let both_bad: &[&[u8]] = &[b"x-request-id: a b", b"x-correlation-id: c d"];
    assert!(is_uuid_v4(&roundtrip(&forward, both_bad).0));
}

#[test]
fn edge_mode_always_generates_and_keeps_the_client_value_as_correlation_id() {
    let server = TestServer::start(2, app(RequestLayer::new().edge(true)));
    let (id, _) = roundtrip(
        &server,
        &[
            b"x-request-id: client-chosen-1",
            b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ],
    );
    assert!(is_uuid_v4(&id), "{id}");
    let (id2, _) = roundtrip(&server, &[b"x-request-id: bad value"]);
    assert!(is_uuid_v4(&id2));
    let lines = server.lines();
    let line = lines
        .iter()
        .find(|l| str_field(l, "request_id") == Some(id.as_str()))
        .unwrap();
    assert_eq!(str_field(line, "correlation_id"), Some("client-chosen-1"));
    // The client's trace is not continued either: a new one starts.
    let trace_id = str_field(line, "trace_id").unwrap();
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    let line2 = lines
        .iter()
        .find(|l| str_field(l, "request_id") == Some(id2.as_str()))
        .unwrap();
    assert!(
        line2.get("correlation_id").is_none(),
        "invalid values are not kept"
    );
}

#[test]
fn custom_policy_and_generator() {
    let layer = RequestLayer::new()
        .policy(corrlog::http::IdPolicy::default().max_len(8))
        .make_request_id(corrlog::context::UuidV7);
    let server = TestServer::start(2, app(layer));
    assert_eq!(roundtrip(&server, &[b"x-request-id: short"]).0, "short");
    let (id, _) = roundtrip(&server, &[b"x-request-id: longer-than-8"]);
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "7", "a UUID v7: {id}");
}
