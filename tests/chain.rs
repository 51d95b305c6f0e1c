//! One id across services: three real demo services chained A -> B -> C,
//! a capture service that shows exactly which headers travel, and hostile
//! trace headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderName};
use axum::routing::get;
use axum::Router;
use common::suites::{self, get_json, hop};
use common::{client_runtime, get_request, RawConn, TestServer};
use corrlog::context::TraceParent;
use corrlog::RequestLayer;
use serde_json::Value;

fn demo(downstream: Option<String>) -> TestServer {
    let downstream = downstream.as_deref().map(app::Downstream::new);
    TestServer::start(
        2,
        app::routes(app::AppConfig { jitter_ms: 1 }, downstream).layer(RequestLayer::new()),
    )
}

#[test]
fn three_services_share_one_request_id_and_trace_id() {
    let c = demo(None);
    let b = demo(Some(c.url("")));
    let a = demo(Some(b.url("")));
    suites::three_hops_share_one_request_id_and_trace_id(&a, &b, &c);
}

/// A downstream that records the headers it receives.
fn header_capture() -> (TestServer, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let record = seen.clone();
    let server = TestServer::start(
        1,
        Router::new().route(
            "/orders/{id}",
            get(move |headers: HeaderMap| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(headers);
                    axum::Json(serde_json::json!({ "ok": true }))
                }
            }),
        ),
    );
    (server, seen)
}

#[test]
fn the_propagated_headers_are_exactly_what_the_intake_accepts() {
    let (capture, seen) = header_capture();
    let a = demo(Some(capture.url("")));
    let (id, _) = get_json(
        &a.url("/orders/1"),
        &[
            ("x-request-id", "hdr-1"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        ],
    );
    let (_, span_a, _) = hop(&a, &id);
    let got = seen.lock().unwrap()[0].clone();
    assert_eq!(got["x-request-id"], "hdr-1");
    let tp = TraceParent::parse(got["traceparent"].to_str().unwrap()).unwrap();
    assert_eq!(tp.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(tp.parent_id_hex(), span_a, "the parent is this hop's span");
    assert_eq!(got["tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    // And the intake side takes them: a corrlog service keeps that id.
    let intake = demo(None);
    let mut headers = vec![];
    for name in ["x-request-id", "traceparent", "tracestate"] {
        headers.push((name, got[name].to_str().unwrap()));
    }
    let (intake_id, body) = get_json(&intake.url("/orders/1"), &headers);
    assert_eq!(intake_id, "hdr-1");
    assert_eq!(body["trace_id"], "0af7651916cd43dd8448eb211c80319c");
}

#[test]
fn the_id_travels_in_the_configured_header() {
    let (capture, seen) = header_capture();
    let name = HeaderName::from_static("x-correlation-id");
    let a = TestServer::start(
        2,
        app::routes(
            app::AppConfig::default(),
            Some(app::Downstream::new(&capture.url(""))),
        )
        .layer(
            RequestLayer::new()
                .headers([name.clone()])
                .response_header(name),
        ),
    );
    client_runtime().block_on(async {
        reqwest::Client::new()
            .get(a.url("/orders/3"))
            .header("x-correlation-id", "corr-7")
            .send()
            .await
            .unwrap();
    });
    let got = seen.lock().unwrap()[0].clone();
    assert_eq!(got["x-correlation-id"], "corr-7");
    assert!(got.get("x-request-id").is_none());
}

#[test]
fn outside_a_request_nothing_is_propagated() {
    assert!(!corrlog::propagate::inject(&mut http::HeaderMap::new()));
}

#[test]
fn hostile_trace_headers_never_break_a_request_or_reach_the_output() {
    let a = demo(None);
    let long_state = format!("k={}", "v".repeat(600));
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "uppercase",
            vec![b"traceparent: 00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01".to_vec()],
        ),
        (
            "zero trace",
            vec![b"traceparent: 00-00000000000000000000000000000000-b7ad6b7169203331-01".to_vec()],
        ),
        (
            "zero parent",
            vec![b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01".to_vec()],
        ),
        (
            "version ff",
            vec![b"traceparent: ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec()],
        ),
        (
            "too long",
            vec![
                b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-00".to_vec(),
            ],
        ),
        (
            "too short",
            vec![b"traceparent: 00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01".to_vec()],
        ),
        (
            "junk",
            vec![b"traceparent: \",\"level\":\"ERROR\"".to_vec()],
        ),
        (
            "duplicates",
            vec![
                b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
                b"traceparent: 00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-01".to_vec(),
            ],
        ),
        (
            "oversized tracestate",
            vec![
                b"traceparent: 00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
                format!("tracestate: {long_state}").into_bytes(),
            ],
        ),
        (
            "tracestate injection",
            vec![
                b"traceparent: 00-2af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_vec(),
                b"tracestate: a=\xff\xfe,\"level\":\"ERROR".to_vec(),
            ],
        ),
    ];
    let rt = client_runtime();
    for (name, headers) in &cases {
        let refs: Vec<&[u8]> = headers.iter().map(Vec::as_slice).collect();
        let res = rt.block_on(async {
            let mut conn = RawConn::connect(a.addr).await;
            conn.send(&get_request("/orders/5", &refs)).await;
            conn.read_response().await
        });
        assert_eq!(res.status, 200, "{name}");
        let body = res.json();
        let trace = body["trace_id"].as_str().unwrap();
        assert_eq!(trace.len(), 32, "{name}");
        if !name.contains("tracestate") {
            assert!(
                ![
                    "0af7651916cd43dd8448eb211c80319c",
                    "0af7651916cd43dd8448eb211c80319d"
                ]
                .contains(&trace),
                "{name}: an invalid traceparent must start a new trace"
            );
        }
    }
    let raw = String::from_utf8_lossy(&a.capture.bytes()).into_owned();
    common::parse_lines(a.capture.bytes().as_slice());
    assert!(!raw.contains("0AF7651916"), "raw header logged");
    assert!(!raw.contains(&long_state));
    assert!(a.lines().iter().all(|l| l["level"] != "ERROR"));
}

/// Only valid `tracestate` members reach the next service; a list with
/// none is not sent at all.
#[test]
fn malformed_tracestate_members_are_not_passed_on() {
    let (capture, seen) = header_capture();
    let a = demo(Some(capture.url("")));
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let many: Vec<String> = (0..40).map(|i| format!("k{i}=v")).collect();
    let first_32 = many[..32].join(",");
    let many = many.join(",");
    let cases: [(&str, Option<&str>); 4] = [
        (",,,,", None),
        ("a=1,Bad=2,c=x=y,b=2", Some("a=1,b=2")),
        ("a=1,a=2", Some("a=1")),
        (&many, Some(&first_32)),
    ];
    for (i, (state, _)) in cases.iter().enumerate() {
        let id = format!("ts-{i}");
        get_json(
            &a.url("/orders/1"),
            &[
                ("x-request-id", id.as_str()),
                ("traceparent", traceparent),
                ("tracestate", state),
            ],
        );
    }
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), cases.len());
    for (i, (_, expected)) in cases.iter().enumerate() {
        let headers = got
            .iter()
            .find(|h| h["x-request-id"] == format!("ts-{i}").as_str())
            .unwrap();
        let sent = headers.get("tracestate").map(|v| v.to_str().unwrap());
        assert_eq!(sent, *expected, "case {i}");
    }
}

/// The demo logs the URL it calls next as `url`: every way the outside
/// review smuggled a credential past URL redaction is masked there.
#[test]
fn credentials_in_the_called_url_are_masked() {
    let (capture, _) = header_capture();
    let a = demo(Some(capture.url("")));
    let smuggled = [
        "x%23access_token=abc123",         // fragment
        "x%3Bpage=1%3Btoken=abc123",       // `;` path parameters
        "x%3Faccess_token%5B%5D=abc123",   // array-style name
        "x%3FX-Amz-Security-Token=abc123", // marker inside a longer name
        "x%3Fpage=2%3Bapi-key=abc123",     // `;` in the query, `-` for `_`
        "x%3Fprivate_token=abc123%23k=v",  // marker, then a fragment
    ];
    for (i, order) in smuggled.iter().enumerate() {
        get_json(
            &a.url(&format!("/orders/{order}")),
            &[("x-request-id", format!("url-{i}").as_str())],
        );
    }
    let calls: Vec<_> = a
        .lines()
        .into_iter()
        .filter(|l| l["message"] == "calling downstream")
        .collect();
    assert_eq!(calls.len(), smuggled.len());
    for call in calls {
        let url = call["url"].as_str().unwrap();
        assert!(!url.contains("abc123"), "{url}");
        assert!(url.contains("[REDACTED]"), "{url}");
    }
}

/// Each access line names the span that called it (`parent_span_id`), and
/// every line carries the trace flags, so the hops of one user action can
/// be rebuilt from logs alone.
#[test]
fn access_lines_name_the_calling_span_and_lines_carry_the_flags() {
    let b = demo(None);
    let a = demo(Some(b.url("")));
    let access = |server: &TestServer, id: &str| -> Value {
        server
            .lines()
            .into_iter()
            .find(|l| l["request_id"] == id && l["message"] == "request finished")
            .unwrap()
    };
    get_json(
        &a.url("/orders/1"),
        &[
            ("x-request-id", "hops-1"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            ),
        ],
    );
    let (_, span_a, _) = hop(&a, "hops-1");
    let line_a = access(&a, "hops-1");
    assert_eq!(line_a["parent_span_id"], "b7ad6b7169203331");
    assert_eq!(line_a["trace_flags"], "00", "the caller did not sample");
    let line_b = access(&b, "hops-1");
    assert_eq!(
        line_b["parent_span_id"],
        span_a.as_str(),
        "b was called by a"
    );
    assert_eq!(line_b["trace_flags"], "00");
    // Every line of a traced request has the flags.
    assert!(a
        .lines()
        .iter()
        .filter(|l| l["request_id"] == "hops-1")
        .all(|l| l["trace_flags"] == "00"));

    // A request that starts the trace has no parent.
    get_json(&a.url("/orders/2"), &[("x-request-id", "hops-2")]);
    let root = access(&a, "hops-2");
    assert!(root.get("parent_span_id").is_none(), "{root}");
    assert_eq!(root["trace_flags"], "01");
}
