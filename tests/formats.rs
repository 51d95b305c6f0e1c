//! Every line format over a real server: the request line, the access line,
//! a line outside any request and a panic line, each checked against the
//! field names and value formats the format documents; hostile values and
//! user fields named like reserved keys in every format.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use corrlog::fmt::Service;
use corrlog::http::AccessLog;
use corrlog::testing::TestLogs;
use corrlog::{LogLayer, RequestLayer};
use serde_json::{Map, Value};
use tracing_subscriber::layer::SubscriberExt;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const HOSTILE: &str = "a\"b\\c\nd\u{202e}e\u{7}f</script>";

fn service() -> Service {
    Service::new("checkout")
        .version("2.0.1")
        .instance_id("node-1")
        .environment("prod")
}

async fn order(Path(id): Path<String>) -> &'static str {
    corrlog::bind("order_id", id.as_str());
    corrlog::bind("hostile_bound", HOSTILE);
    tracing::info!(
        target: "orders",
        severity = "spoof",
        log.level = "spoof",
        status = "spoof",
        service = "spoof",
        level = "spoof",
        trace.id = "spoof",
        password = "hunter2",
        note = HOSTILE,
        "fetching order"
    );
    "ok"
}

async fn boom() -> &'static str {
    corrlog::bind("cart_id", "c-9");
    panic!("boom in handler");
}

/// Serves the routes with `layer` on a two-worker runtime; runs `f` with
/// the address; returns the parsed lines (every one must be JSON).
fn serve(layer: LogLayer<TestLogs>, f: impl FnOnce(SocketAddr)) -> Vec<Value> {
    let capture = layer.sink().clone();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let runtime = corrlog::testing::runtime_with(dispatch.clone(), 2);
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/boom", get(boom))
        .layer(RequestLayer::new().access_log(AccessLog::default().include_query(true)));
    let addr = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    f(addr);
    // A line outside any request, on a thread of the same subscriber.
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::warn!(target: "startup", "outside");
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    common::parse_lines(&capture.bytes())
}

/// Sends the order request (with a trace and an id) and the panicking one.
fn requests(addr: SocketAddr) {
    common::client_runtime().block_on(async {
        let client = reqwest::Client::new();
        let res = client
            .get(format!("http://{addr}/orders/42?token=abc123secret&page=2"))
            .header("x-request-id", "req-fmt-1")
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
            .header("user-agent", "formats-test/1.0")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let res = client
            .get(format!("http://{addr}/boom"))
            .header("x-request-id", "req-fmt-2")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
        assert_eq!(res.headers()["x-request-id"], "req-fmt-2");
    });
}

/// The one line whose `key` is `value`.
fn line_where<'a>(lines: &'a [Value], key: &str, value: &str) -> &'a Map<String, Value> {
    let found: Vec<_> = lines
        .iter()
        .filter(|l| l[key] == value)
        .map(|l| l.as_object().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "one line with {key}={value}: {lines:#?}");
    found[0]
}

fn str_of<'a>(line: &'a Map<String, Value>, key: &str) -> &'a str {
    line.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key} missing or not a string in {line:?}"))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What every format shares: hostile values survive as data, secrets are
/// masked everywhere, user fields never overwrite reserved keys.
fn common_checks(lines: &[Value], raw: &[u8], reserved_renamed: &[&str]) {
    let text = String::from_utf8_lossy(raw);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("abc123secret"), "{text}");
    assert!(!text.contains('\u{202e}'), "bidi control written raw");
    assert!(!text.contains("panicked at"), "{text}");
    let request = lines
        .iter()
        .find(|l| l["message"] == "fetching order")
        .unwrap()
        .as_object()
        .unwrap();
    assert_eq!(request["note"], HOSTILE);
    assert_eq!(request["hostile_bound"], HOSTILE);
    assert_eq!(request["password"], "[REDACTED]");
    assert_eq!(request["order_id"], "42");
    for key in reserved_renamed {
        assert_eq!(
            request.get(&format!("fields.{key}")),
            Some(&Value::from("spoof")),
            "{key} renamed in {request:?}"
        );
        assert_ne!(request.get(*key), Some(&Value::from("spoof")), "{key}");
    }
}

fn run(layer: LogLayer<TestLogs>) -> (Vec<Value>, Vec<u8>) {
    let capture = layer.sink().clone();
    let lines = serve(layer, requests);
    (lines, capture.bytes())
}

#[test]
fn json_lines_carry_the_service_and_the_panic() {
    let (lines, raw) = run(LogLayer::new(TestLogs::new()).service(service()));
    common_checks(&lines, &raw, &["level"]);
    for line in &lines {
        let line = line.as_object().unwrap();
        assert_eq!(str_of(line, "service.name"), "checkout");
        assert_eq!(str_of(line, "service.version"), "2.0.1");
        assert_eq!(str_of(line, "service.instance.id"), "node-1");
        assert_eq!(str_of(line, "deployment.environment.name"), "prod");
    }
    let request = line_where(&lines, "message", "fetching order");
    assert_eq!(str_of(request, "trace_id"), TRACE_ID);
    assert_eq!(str_of(request, "trace_flags"), "01");
    let access = order_access(&lines, "request_id");
    assert_eq!(str_of(access, "method"), "GET");
    assert_eq!(str_of(access, "parent_span_id"), CALLER_SPAN);
    let panic = line_where(&lines, "logger", "corrlog::panic");
    assert_eq!(str_of(panic, "level"), "ERROR");
    assert_eq!(str_of(panic, "message"), "boom in handler");
    assert_eq!(str_of(panic, "request_id"), "req-fmt-2");
    assert_eq!(str_of(panic, "cart_id"), "c-9", "bound fields too");
    assert!(str_of(panic, "panic.location").contains("formats.rs:"));
    assert!(!str_of(panic, "panic.thread").is_empty());
    let outside = line_where(&lines, "message", "outside");
    assert!(outside.get("request_id").is_none());
    assert_eq!(str_of(outside, "service.name"), "checkout");
}

/// The access line that finished the order request.
fn order_access<'a>(lines: &'a [Value], id_key: &str) -> &'a Map<String, Value> {
    lines
        .iter()
        .filter_map(Value::as_object)
        .find(|l| l["message"] == "request finished" && l[id_key] == "req-fmt-1")
        .unwrap_or_else(|| panic!("no access line: {lines:#?}"))
}

#[test]
fn ecs_lines_use_the_elastic_common_schema() {
    let (lines, raw) = run(LogLayer::new(TestLogs::new())
        .format(corrlog::Format::Ecs)
        .service(service()));
    common_checks(&lines, &raw, &["log.level", "trace.id", "service"]);
    // ecs-logging: @timestamp and log.level first, then message and
    // ecs.version, on every line.
    for raw_line in String::from_utf8(raw.clone()).unwrap().lines() {
        let at = |key: &str| raw_line.find(&format!("\"{key}\":")).unwrap();
        assert!(raw_line.starts_with(r#"{"@timestamp":""#), "{raw_line}");
        assert!(at("@timestamp") < at("log.level"), "{raw_line}");
        assert!(at("log.level") < at("message"), "{raw_line}");
        assert!(at("message") < at("ecs.version"), "{raw_line}");
    }
    for line in &lines {
        let line = line.as_object().unwrap();
        assert!(str_of(line, "@timestamp").ends_with('Z'));
        assert_eq!(str_of(line, "ecs.version"), "8.11.0");
        assert_eq!(str_of(line, "service.name"), "checkout");
        assert_eq!(str_of(line, "service.version"), "2.0.1");
        assert_eq!(str_of(line, "service.node.name"), "node-1");
        assert_eq!(str_of(line, "service.environment"), "prod");
        for key in ["timestamp", "logger", "request_id", "trace_id", "span_id"] {
            assert!(!line.contains_key(key), "{key} in {line:?}");
        }
    }
    let request = line_where(&lines, "message", "fetching order");
    assert_eq!(str_of(request, "log.level"), "info");
    assert_eq!(str_of(request, "log.logger"), "orders");
    assert_eq!(str_of(request, "http.request.id"), "req-fmt-1");
    assert_eq!(str_of(request, "trace.id"), TRACE_ID);
    assert!(is_hex(str_of(request, "span.id"), 16));
    assert_ne!(str_of(request, "span.id"), CALLER_SPAN);
    assert_eq!(str_of(request, "trace_flags"), "01");

    let access = order_access(&lines, "http.request.id");
    assert_eq!(str_of(access, "http.request.method"), "GET");
    assert_eq!(
        str_of(access, "url.original"),
        "/orders/42?token=[REDACTED]&page=2"
    );
    assert_eq!(access["http.response.status_code"], 200);
    assert!(access["event.duration"].is_u64(), "nanoseconds: {access:?}");
    assert!(access["http.response.body.bytes"].is_u64());
    assert_eq!(str_of(access, "user_agent.original"), "formats-test/1.0");
    assert_eq!(str_of(access, "parent_span_id"), CALLER_SPAN);
    for key in ["method", "path", "status", "latency_ms", "user_agent"] {
        assert!(!access.contains_key(key), "{key} in {access:?}");
    }

    let panic = line_where(&lines, "log.logger", "corrlog::panic");
    assert_eq!(str_of(panic, "log.level"), "error");
    assert_eq!(str_of(panic, "error.type"), "panic");
    assert_eq!(str_of(panic, "message"), "boom in handler");
    assert_eq!(str_of(panic, "http.request.id"), "req-fmt-2");
    assert_eq!(str_of(panic, "cart_id"), "c-9");
    assert!(!str_of(panic, "process.thread.name").is_empty());

    let outside = line_where(&lines, "message", "outside");
    assert_eq!(str_of(outside, "log.level"), "warn");
    assert!(!outside.contains_key("http.request.id"));
}

#[test]
fn gcp_lines_use_cloud_logging_special_fields() {
    let (lines, raw) = run(LogLayer::new(TestLogs::new())
        .format(corrlog::Format::Gcp)
        .gcp_project("proj-1")
        .service(service()));
    common_checks(&lines, &raw, &["severity"]);
    for line in &lines {
        let line = line.as_object().unwrap();
        assert!(str_of(line, "time").ends_with('Z'));
        assert_eq!(
            line["serviceContext"],
            serde_json::json!({"service": "checkout", "version": "2.0.1"})
        );
        assert_eq!(
            line["logging.googleapis.com/labels"],
            serde_json::json!({"service.instance.id": "node-1", "deployment.environment.name": "prod"})
        );
        assert!(!line.contains_key("timestamp"));
    }
    let request = line_where(&lines, "message", "fetching order");
    assert_eq!(str_of(request, "severity"), "INFO");
    assert_eq!(str_of(request, "request_id"), "req-fmt-1");
    assert_eq!(
        str_of(request, "logging.googleapis.com/trace"),
        format!("projects/proj-1/traces/{TRACE_ID}")
    );
    assert!(is_hex(str_of(request, "logging.googleapis.com/spanId"), 16));
    assert_eq!(request["logging.googleapis.com/trace_sampled"], true);

    let access = order_access(&lines, "request_id");
    let http = access["httpRequest"].as_object().unwrap();
    assert_eq!(http["requestMethod"], "GET");
    assert_eq!(http["requestUrl"], "/orders/42?token=[REDACTED]&page=2");
    assert_eq!(http["status"], 200);
    assert_eq!(http["userAgent"], "formats-test/1.0");
    let latency = http["latency"].as_str().unwrap();
    let (secs, frac) = latency.strip_suffix('s').unwrap().split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok() && frac.len() == 6 && frac.parse::<u32>().is_ok());
    let size = http["responseSize"].as_str().unwrap();
    assert_eq!(size.parse::<u64>().unwrap(), 2, "int64 as a string");
    for key in ["method", "path", "status", "latency_ms", "user_agent"] {
        assert!(!access.contains_key(key), "{key} in {access:?}");
    }

    let panic = line_where(&lines, "logger", "corrlog::panic");
    assert_eq!(str_of(panic, "severity"), "ERROR");
    assert_eq!(
        str_of(panic, "@type"),
        "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
    );
    assert_eq!(str_of(panic, "request_id"), "req-fmt-2");

    let outside = line_where(&lines, "message", "outside");
    assert_eq!(str_of(outside, "severity"), "WARNING");
}

#[test]
fn gcp_without_a_project_keeps_the_trace_id_plain() {
    let (lines, _) = run(LogLayer::new(TestLogs::new()).format(corrlog::Format::Gcp));
    let request = line_where(&lines, "message", "fetching order");
    assert_eq!(str_of(request, "trace_id"), TRACE_ID);
    assert!(!request.contains_key("logging.googleapis.com/trace"));
    assert!(
        !request.contains_key("serviceContext"),
        "no service, none invented"
    );
}

#[test]
fn datadog_lines_use_reserved_and_standard_attributes() {
    let (lines, raw) = run(LogLayer::new(TestLogs::new())
        .format(corrlog::Format::Datadog)
        .service(service()));
    common_checks(&lines, &raw, &["status", "service"]);
    for line in &lines {
        let line = line.as_object().unwrap();
        assert!(str_of(line, "timestamp").ends_with('Z'));
        assert_eq!(str_of(line, "service"), "checkout");
        assert_eq!(str_of(line, "version"), "2.0.1");
        assert_eq!(str_of(line, "env"), "prod");
        assert_eq!(str_of(line, "instance_id"), "node-1");
    }
    let request = line_where(&lines, "message", "fetching order");
    assert_eq!(str_of(request, "status"), "info");
    assert_eq!(str_of(request, "logger.name"), "orders");
    assert_eq!(str_of(request, "request_id"), "req-fmt-1");
    // The low 64 bits of the W3C trace id, in decimal.
    let low = u64::from_str_radix(&TRACE_ID[16..], 16).unwrap();
    assert_eq!(str_of(request, "dd.trace_id"), low.to_string());
    let span: u64 = str_of(request, "dd.span_id").parse().unwrap();
    assert_ne!(span, 0);
    assert_eq!(str_of(request, "trace_flags"), "01");

    let access = order_access(&lines, "request_id");
    assert_eq!(str_of(access, "http.method"), "GET");
    assert_eq!(
        str_of(access, "http.url"),
        "/orders/42?token=[REDACTED]&page=2"
    );
    assert_eq!(str_of(access, "http.route"), "/orders/{id}");
    assert_eq!(access["http.status_code"], 200);
    assert!(access["duration"].is_u64(), "nanoseconds: {access:?}");
    assert_eq!(str_of(access, "http.useragent"), "formats-test/1.0");
    assert_eq!(access["network.bytes_written"], 2);

    let panic = line_where(&lines, "logger.name", "corrlog::panic");
    assert_eq!(str_of(panic, "status"), "error");
    assert_eq!(str_of(panic, "error.kind"), "panic");
    assert_eq!(str_of(panic, "request_id"), "req-fmt-2");
    assert!(!str_of(panic, "logger.thread_name").is_empty());

    let outside = line_where(&lines, "message", "outside");
    assert_eq!(str_of(outside, "status"), "warn");
}

#[test]
fn a_hostile_service_identity_stays_data_in_every_format() {
    let hostile = Service::new(HOSTILE).environment("\"},\"level\":\"x");
    for layer in [
        LogLayer::new(TestLogs::new()),
        LogLayer::new(TestLogs::new()).format(corrlog::Format::Ecs),
        LogLayer::new(TestLogs::new())
            .format(corrlog::Format::Gcp)
            .gcp_project("p\"/x"),
        LogLayer::new(TestLogs::new()).format(corrlog::Format::Datadog),
    ] {
        let capture = layer.sink().clone();
        let layer = layer.service(hostile.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info!("hello");
        });
        let lines = common::parse_lines(&capture.bytes());
        let text = serde_json::to_string(&lines[0]).unwrap();
        assert!(text.contains("a\\\"b\\\\c\\nd"), "{text}");
        // A generated instance id, the same on every line.
        assert_eq!(lines.len(), 1);
    }
}

/// The fields the server tests cannot produce in-process (a client address
/// needs connect-info, a backtrace needs `RUST_BACKTRACE` at start), on
/// lines with the access and panic targets.
#[test]
fn client_address_and_backtrace_take_each_format_s_names() {
    let cases: [(LogLayer<TestLogs>, &str, &str, &str); 4] = [
        (
            LogLayer::new(TestLogs::new()),
            "client_ip",
            "panic.backtrace",
            "panic.thread",
        ),
        (
            LogLayer::new(TestLogs::new()).format(corrlog::Format::Ecs),
            "client.ip",
            "error.stack_trace",
            "process.thread.name",
        ),
        (
            LogLayer::new(TestLogs::new()).format(corrlog::Format::Gcp),
            "httpRequest.remoteIp",
            "stack_trace",
            "panic.thread",
        ),
        (
            LogLayer::new(TestLogs::new()).format(corrlog::Format::Datadog),
            "network.client.ip",
            "error.stack",
            "logger.thread_name",
        ),
    ];
    for (layer, ip_key, stack_key, thread_key) in cases {
        let capture = layer.sink().clone();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info!(target: "corrlog::access", client_ip = "10.0.0.7", "request finished");
            tracing::event!(
                target: "corrlog::panic",
                tracing::Level::ERROR,
                panic.thread = "worker-1",
                panic.backtrace = "0: app::handler",
                "boom"
            );
        });
        let lines = common::parse_lines(&capture.bytes());
        let ip = match ip_key.split_once('.') {
            Some(("httpRequest", inner)) => &lines[0]["httpRequest"][inner],
            _ => &lines[0][ip_key],
        };
        assert_eq!(ip, "10.0.0.7", "{ip_key}: {}", lines[0]);
        assert_eq!(
            lines[1][stack_key], "0: app::handler",
            "{stack_key}: {}",
            lines[1]
        );
        assert_eq!(
            lines[1][thread_key], "worker-1",
            "{thread_key}: {}",
            lines[1]
        );
    }
}
