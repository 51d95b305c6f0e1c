//! One set of ids with `tracing-opentelemetry` (feature `opentelemetry`):
//! a real axum server whose subscriber has corrlog's JSON layer and
//! `tracing-opentelemetry` exporting to the OpenTelemetry SDK's in-memory
//! exporter. Over concurrent requests, the ids on every line equal those
//! of the exported request span; a valid `traceparent` continues one trace
//! on both sides; the outgoing `traceparent` names the exported span; edge
//! mode starts a new trace on both.
//!
//! Run with `cargo test --all-features --test opentelemetry`.
#![cfg(feature = "opentelemetry")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use common::{client_runtime, parse_lines, str_field};
use corrlog::testing::TestLogs;
use corrlog::{LogLayer, RequestLayer};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Reads propagation headers for OpenTelemetry's propagator.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct Server {
    addr: std::net::SocketAddr,
    capture: TestLogs,
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    runtime: Option<Runtime>,
}

#[tracing::instrument(target = "app")]
async fn load(n: u32) -> u32 {
    tracing::info!(target: "app", "loading");
    n
}

async fn handler() -> Json<Value> {
    tracing::info!(target: "app", "handling");
    load(1).await;
    let mut outgoing = http::HeaderMap::new();
    corrlog::propagate::inject(&mut outgoing);
    Json(json!({
        "request_id": corrlog::request_id().unwrap().to_string(),
        "traceparent": outgoing["traceparent"].to_str().unwrap(),
    }))
}

impl Server {
    /// `otel`: with the tracing-opentelemetry layer.
    fn start(layer: RequestLayer, otel: bool) -> Self {
        Self::start_with(layer, otel, false, true)
    }

    /// `outer`: with an OpenTelemetry middleware outside corrlog's layer,
    /// whose span continues the caller's `traceparent`. `activation`:
    /// whether tracing-opentelemetry makes an entered span's context the
    /// current OpenTelemetry context (its default).
    fn start_with(layer: RequestLayer, otel: bool, outer: bool, activation: bool) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let capture = TestLogs::new();
        let json = LogLayer::new(capture.clone());
        let dispatch = if otel {
            let tracer = provider.tracer("corrlog-test");
            tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(
                        tracing_opentelemetry::layer()
                            .with_context_activation(activation)
                            .with_tracer(tracer),
                    )
                    .with(json),
            )
        } else {
            tracing::Dispatch::new(tracing_subscriber::registry().with(json))
        };
        let runtime = corrlog::testing::runtime_with(dispatch, 4);
        let mut app = Router::new().route("/", get(handler)).layer(layer);
        if outer {
            app = app.layer(TraceLayer::new_for_http().make_span_with(
                |req: &http::Request<axum::body::Body>| {
                    let span = tracing::info_span!(target: "app", "outer");
                    let cx = TraceContextPropagator::new().extract(&Headers(req.headers()));
                    span.set_parent(cx).unwrap();
                    span
                },
            ));
        }
        let addr = common::serve(&runtime, app);
        Server {
            addr,
            capture,
            exporter,
            provider,
            runtime: Some(runtime),
        }
    }

    /// The exported spans, once there are at least `n`: a request span
    /// ends when the server drops the response body, just after the client
    /// has it.
    fn spans(&self, n: usize) -> Vec<SpanData> {
        for _ in 0..500 {
            self.provider.force_flush().unwrap();
            let spans = self.exporter.get_finished_spans().unwrap();
            if spans.len() >= n {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "fewer than {n} spans exported: {}",
            self.exporter.get_finished_spans().unwrap().len()
        );
    }

    fn lines(&self) -> Vec<Value> {
        parse_lines(&self.capture.bytes())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn hex(n: usize, width: usize) -> String {
    format!("{:0width$x}", n + 1, width = width)
}

/// Sends `traceparents` concurrently; returns each response's body.
fn call_all(server: &Server, traceparents: &[Option<String>]) -> Vec<Value> {
    let client = reqwest::Client::new();
    let url = format!("http://{}/", server.addr);
    client_runtime().block_on(async {
        let calls = traceparents.iter().enumerate().map(|(n, tp)| {
            let mut request = client.get(&url).header("x-request-id", format!("otel-{n}"));
            if let Some(tp) = tp {
                request = request.header("traceparent", tp);
            }
            tokio::spawn(
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() },
            )
        });
        let calls: Vec<_> = calls.collect();
        let mut bodies = Vec::new();
        for call in calls {
            bodies.push(call.await.unwrap());
        }
        bodies
    })
}

fn request_spans(spans: &[SpanData]) -> HashMap<String, &SpanData> {
    spans
        .iter()
        .filter(|s| s.name == "request")
        .map(|s| (s.span_context.span_id().to_string(), s))
        .collect()
}

#[test]
fn every_line_carries_the_ids_of_the_exported_request_span() {
    const N: usize = 600;
    let server = Server::start(RequestLayer::new(), true);
    // A third continue a sampled trace, a third bring a broken traceparent,
    // a third none.
    let traceparents: Vec<Option<String>> = (0..N)
        .map(|n| match n % 3 {
            0 => Some(format!("00-{}-{}-01", hex(n, 32), hex(n, 16))),
            1 => Some(format!("00-{}-{}-01", "0".repeat(32), hex(n, 16))),
            _ => None,
        })
        .collect();
    let bodies = call_all(&server, &traceparents);
    // One request span and one `load` span per request.
    let spans = server.spans(2 * N);
    let requests = request_spans(&spans);
    assert_eq!(requests.len(), N);
    let lines = server.lines();
    for (n, body) in bodies.iter().enumerate() {
        let id = format!("otel-{n}");
        assert_eq!(body["request_id"], id.as_str());
        let of_request: Vec<&Value> = lines
            .iter()
            .filter(|l| str_field(l, "request_id") == Some(&id))
            .collect();
        assert_eq!(of_request.len(), 3, "{id}: handling, loading, access line");
        let span_id = str_field(of_request[0], "span_id").unwrap();
        let exported = requests
            .get(span_id)
            .unwrap_or_else(|| panic!("{id}: no exported span {span_id}"));
        let trace_id = exported.span_context.trace_id().to_string();
        for line in &of_request {
            assert_eq!(
                str_field(line, "trace_id"),
                Some(trace_id.as_str()),
                "{line}"
            );
            assert_eq!(str_field(line, "span_id"), Some(span_id), "{line}");
            assert_eq!(str_field(line, "trace_flags"), Some("01"), "{line}");
        }
        // The call the handler makes names the exported span.
        assert_eq!(
            body["traceparent"],
            format!("00-{trace_id}-{span_id}-01"),
            "{id}"
        );
        // The handler's own span is exported as the request span's child.
        assert!(spans.iter().any(|s| s.name == "load"
            && s.parent_span_id == exported.span_context.span_id()
            && s.span_context.trace_id() == exported.span_context.trace_id()));
        let access = of_request
            .iter()
            .find(|l| l["message"] == "request finished")
            .unwrap();
        match &traceparents[n] {
            Some(tp) if n % 3 == 0 => {
                // Continued on both sides: the caller's trace, and the
                // caller's span as the exported span's remote parent.
                assert_eq!(trace_id, tp[3..35], "{id}");
                assert_eq!(exported.parent_span_id.to_string(), tp[36..52], "{id}");
                assert!(exported.parent_span_is_remote);
                assert_eq!(access["parent_span_id"], &tp[36..52], "{id}");
            }
            _ => {
                // A new trace on both sides.
                assert_ne!(trace_id, "0".repeat(32));
                assert_eq!(
                    exported.parent_span_id,
                    opentelemetry::trace::SpanId::INVALID,
                    "{id}"
                );
                assert!(access.get("parent_span_id").is_none(), "{id}");
            }
        }
    }
    // No two requests share a trace unless their caller's did.
    let fresh: std::collections::HashSet<_> = requests
        .values()
        .map(|s| s.span_context.trace_id())
        .collect();
    assert_eq!(fresh.len(), N);
}

#[test]
fn edge_mode_starts_a_new_trace_on_both_sides() {
    let server = Server::start(RequestLayer::new().edge(true), true);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let bodies = call_all(&server, &vec![Some(incoming.to_owned()); 20]);
    let spans = server.spans(40);
    let requests = request_spans(&spans);
    let lines = server.lines();
    for (n, body) in bodies.iter().enumerate() {
        let access = lines
            .iter()
            .find(|l| {
                l["message"] == "request finished"
                    && str_field(l, "correlation_id") == Some(&format!("otel-{n}"))
            })
            .unwrap();
        let span_id = str_field(access, "span_id").unwrap();
        let exported = requests[span_id];
        let trace_id = exported.span_context.trace_id().to_string();
        assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(access["trace_id"], trace_id.as_str());
        assert_eq!(
            exported.parent_span_id,
            opentelemetry::trace::SpanId::INVALID
        );
        assert!(access.get("parent_span_id").is_none());
        assert_eq!(body["traceparent"], format!("00-{trace_id}-{span_id}-01"));
    }
}

#[test]
fn an_unsampled_caller_keeps_its_trace_and_flags_and_nothing_is_exported() {
    let server = Server::start(RequestLayer::new(), true);
    let incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let bodies = call_all(&server, &[Some(incoming.to_owned())]);
    let tp = bodies[0]["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{tp}"
    );
    assert!(tp.ends_with("-00"), "{tp}");
    assert!(!tp.contains("b7ad6b7169203331"), "a span of its own: {tp}");
    std::thread::sleep(Duration::from_millis(100));
    server.provider.force_flush().unwrap();
    assert!(server.exporter.get_finished_spans().unwrap().is_empty());
    for line in server.lines() {
        if str_field(&line, "request_id") == Some("otel-0") {
            assert_eq!(line["trace_id"], "0af7651916cd43dd8448eb211c80319c");
            assert_eq!(line["trace_flags"], "00");
            assert_eq!(line["span_id"], &tp[36..52]);
        }
    }
}

#[test]
fn without_tracing_opentelemetry_nothing_changes() {
    let server = Server::start(RequestLayer::new(), false);
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let bodies = call_all(&server, &[Some(incoming.to_owned()), None]);
    let lines = server.lines();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    assert_eq!(access.len(), 2);
    let continued = access.iter().find(|l| l["request_id"] == "otel-0").unwrap();
    assert_eq!(continued["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(continued["parent_span_id"], "00f067aa0ba902b7");
    let tp = bodies[0]["traceparent"].as_str().unwrap();
    assert_eq!(&tp[36..52], continued["span_id"].as_str().unwrap());
    assert!(server.exporter.get_finished_spans().unwrap().is_empty());
}

#[test]
fn an_enclosing_span_that_continues_the_caller_stays_the_parent_unless_edge_mode() {
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for (edge, activation) in [(false, true), (false, false), (true, true), (true, false)] {
        let server = Server::start_with(RequestLayer::new().edge(edge), true, true, activation);
        let bodies = call_all(&server, &[Some(incoming.to_owned())]);
        let spans = server.spans(3);
        let outer = spans.iter().find(|s| s.name == "outer").unwrap();
        let request = spans.iter().find(|s| s.name == "request").unwrap();
        assert_eq!(
            outer.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let trace_id = request.span_context.trace_id().to_string();
        let span_id = request.span_context.span_id().to_string();
        if edge {
            assert_ne!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(
                request.parent_span_id,
                opentelemetry::trace::SpanId::INVALID
            );
        } else {
            assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(request.parent_span_id, outer.span_context.span_id());
        }
        assert_eq!(
            bodies[0]["traceparent"],
            format!("00-{trace_id}-{span_id}-01"),
            "edge {edge}, activation {activation}"
        );
        let access = server
            .lines()
            .into_iter()
            .find(|l| l["message"] == "request finished")
            .unwrap();
        assert_eq!(access["trace_id"], trace_id.as_str(), "edge {edge}");
        assert_eq!(access["span_id"], span_id.as_str(), "edge {edge}");
    }
}

#[test]
fn the_builder_s_subscriber_takes_the_tracing_opentelemetry_layer() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let capture = TestLogs::new();
    let (subscriber, logging) = corrlog::builder()
        .format(corrlog::Format::Json)
        .output(corrlog::output::Destination::Writer(Box::new(
            capture.clone(),
        )))
        .use_env(false)
        .build()
        .unwrap();
    // What the README shows: the OpenTelemetry layer on top.
    let subscriber =
        subscriber.with(tracing_opentelemetry::layer().with_tracer(provider.tracer("orders")));
    let runtime = corrlog::testing::runtime_with(tracing::Dispatch::new(subscriber), 2);
    let app = Router::new()
        .route("/", get(handler))
        .layer(logging.request_layer());
    let addr = common::serve(&runtime, app);
    let body: Value = client_runtime().block_on(async {
        reqwest::Client::new()
            .get(format!("http://{addr}/"))
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let mut exported = Vec::new();
    for _ in 0..500 {
        provider.force_flush().unwrap();
        exported = exporter.get_finished_spans().unwrap();
        if exported.iter().any(|s| s.name == "request") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    logging.shutdown(Duration::from_secs(5));
    let request = exported.iter().find(|s| s.name == "request").unwrap();
    let span_id = request.span_context.span_id().to_string();
    assert_eq!(
        body["traceparent"],
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{span_id}-01")
    );
    let lines = parse_lines(&capture.bytes());
    let access = lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .unwrap();
    assert_eq!(access["span_id"], span_id.as_str());
    assert_eq!(access["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}
