//! OTLP log export (feature `otlp`) against a real OTLP/HTTP receiver
//! started here: an axum server decoding each request with the
//! OpenTelemetry project's generated types (`opentelemetry-proto`). The
//! service is a real axum server whose subscriber comes from the builder,
//! with JSON lines and OTLP export at once.
//!
//! Run with `cargo test --all-features --test otlp`.
#![cfg(feature = "otlp")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use common::{client_runtime, parse_lines, str_field};
use corrlog::output::otlp::Otlp;
use corrlog::output::{Backpressure, ShutdownReport};
use corrlog::testing::TestLogs;
use corrlog::Logging;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use serde_json::Value;
use tokio::runtime::Runtime;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Accept,
    Status(u16),
    /// Answers 200 after this long, too late for the exporter's timeout;
    /// the records count as not received.
    Hang(Duration),
}

#[derive(Default)]
struct ReceiverState {
    /// Replies for the next requests, then `Accept`.
    script: VecDeque<Reply>,
    received: Vec<ExportLogsServiceRequest>,
    traces: Vec<ExportTraceServiceRequest>,
    /// The headers of every logs request.
    headers: Vec<axum::http::HeaderMap>,
    /// Requests answered with an error status, decoded all the same.
    refused: Vec<ExportLogsServiceRequest>,
    attempts: usize,
    hanging: usize,
}

struct Receiver {
    addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    _runtime: Runtime,
}

async fn export(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let reply = {
        let mut st = state.lock().unwrap();
        st.attempts += 1;
        st.headers.push(headers);
        st.script.pop_front().unwrap_or(Reply::Accept)
    };
    match reply {
        Reply::Accept => {
            let request = ExportLogsServiceRequest::decode(body).expect("a valid OTLP request");
            state.lock().unwrap().received.push(request);
            (
                StatusCode::OK,
                ExportLogsServiceResponse::default().encode_to_vec(),
            )
        }
        Reply::Status(code) => {
            let request = ExportLogsServiceRequest::decode(body).expect("a valid OTLP request");
            state.lock().unwrap().refused.push(request);
            (StatusCode::from_u16(code).unwrap(), Vec::new())
        }
        Reply::Hang(wait) => {
            state.lock().unwrap().hanging += 1;
            tokio::time::sleep(wait).await;
            state.lock().unwrap().hanging -= 1;
            (StatusCode::OK, Vec::new())
        }
    }
}

async fn export_traces(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("a valid OTLP trace request");
    state.lock().unwrap().traces.push(request);
    (StatusCode::OK, Vec::new())
}

impl Receiver {
    fn start(script: &[Reply]) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            script: script.iter().copied().collect(),
            ..ReceiverState::default()
        }));
        let runtime = client_runtime();
        let app = Router::new()
            .route("/v1/logs", post(export))
            .route("/v1/traces", post(export_traces))
            .with_state(state.clone());
        let addr = common::serve(&runtime, app);
        Receiver {
            addr,
            state,
            _runtime: runtime,
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn records(&self) -> Vec<(String, LogRecord)> {
        flatten(&self.state.lock().unwrap().received)
    }

    fn refused(&self) -> Vec<(String, LogRecord)> {
        flatten(&self.state.lock().unwrap().refused)
    }

    fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    fn hanging(&self) -> usize {
        self.state.lock().unwrap().hanging
    }
}

/// Every record of `requests`, with its scope's name.
fn flatten(requests: &[ExportLogsServiceRequest]) -> Vec<(String, LogRecord)> {
    {
        let mut out = Vec::new();
        for request in requests {
            for resource in &request.resource_logs {
                for scope in &resource.scope_logs {
                    let name = scope.scope.as_ref().unwrap().name.clone();
                    for record in &scope.log_records {
                        out.push((name.clone(), record.clone()));
                    }
                }
            }
        }
        out
    }
}

/// A service whose subscriber comes from the builder: JSON lines in a
/// capture and OTLP export configured by `otlp`.
struct Service {
    addr: SocketAddr,
    capture: TestLogs,
    logging: Option<Logging>,
    runtime: Option<Runtime>,
}

const HOSTILE: &str = "a\"b\\c\nd\u{202e}e\u{7}f</script>\u{0}";

async fn order(axum::extract::Path(n): axum::extract::Path<u64>) -> &'static str {
    corrlog::bind("order_id", n);
    let span = tracing::info_span!("load", attempt = 2u64, cached = false);
    let _entered = span.enter();
    tracing::warn!(
        target: "orders",
        count = n,
        ratio = 0.5,
        ok = true,
        note = HOSTILE,
        password = "hunter2",
        "loading order"
    );
    "ok"
}

impl Service {
    fn start(otlp: Otlp, backpressure: Backpressure) -> Self {
        let capture = TestLogs::new();
        let (subscriber, logging) = corrlog::builder()
            .format(corrlog::Format::Json)
            .output(corrlog::output::Destination::Writer(Box::new(
                capture.clone(),
            )))
            .service(corrlog::fmt::Service::new("orders-svc").version("1.2.3"))
            .backpressure(backpressure)
            .use_env(false)
            .otlp(otlp)
            .build()
            .unwrap();
        let runtime = corrlog::testing::runtime_with(tracing::Dispatch::new(subscriber), 2);
        let app = Router::new()
            .route("/orders/{n}", get(order))
            .layer(logging.request_layer());
        let addr = common::serve(&runtime, app);
        Service {
            addr,
            capture,
            logging: Some(logging),
            runtime: Some(runtime),
        }
    }

    /// `n` requests at once; returns each one's status.
    fn call(&self, from: u64, n: u64) -> Vec<u16> {
        let client = reqwest::Client::new();
        let base = format!("http://{}", self.addr);
        client_runtime().block_on(async {
            let calls: Vec<_> = (from..from + n)
                .map(|i| {
                    let request = client
                        .get(format!("{base}/orders/{i}"))
                        .header("x-request-id", format!("otlp-{i}"));
                    tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
                })
                .collect();
            let mut statuses = Vec::new();
            for call in calls {
                statuses.push(call.await.unwrap());
            }
            statuses
        })
    }

    fn stop(&mut self) -> ShutdownReport {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
        self.logging
            .take()
            .unwrap()
            .shutdown(Duration::from_secs(30))
    }

    fn lines(&self) -> Vec<Value> {
        parse_lines(&self.capture.bytes())
    }
}

fn fast(receiver_base: &str) -> Otlp {
    Otlp::base(receiver_base)
        .timeout(Duration::from_millis(500))
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .retry_window(Duration::from_secs(10))
}

fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Any> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn string(record: &LogRecord, key: &str) -> Option<String> {
    match attribute(record, key) {
        Some(Any::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn records_arrive_typed_and_joined_to_the_json_lines_by_their_ids() {
    let receiver = Receiver::start(&[]);
    let mut service = Service::start(fast(&receiver.base()), Backpressure::default());
    let statuses = service.call(0, 200);
    assert!(statuses.iter().all(|&s| s == 200));
    let report = service.stop();
    let lines = service.lines();
    let records = receiver.records();
    let otlp = report.otlp.expect("the OTLP output ran");
    assert_eq!(otlp.written as usize, records.len(), "{otlp:?}");
    assert_eq!((otlp.failed, otlp.dropped), (0, 0));
    assert_eq!(records.len(), lines.len(), "every line is a record too");

    // The resource is the service.
    let st = receiver.state.lock().unwrap();
    let resource = st.received[0].resource_logs[0].resource.as_ref().unwrap();
    let resource: Vec<(String, String)> = resource
        .attributes
        .iter()
        .map(
            |kv| match kv.value.as_ref().unwrap().value.as_ref().unwrap() {
                Any::StringValue(s) => (kv.key.clone(), s.clone()),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    drop(st);
    assert!(resource.contains(&("service.name".into(), "orders-svc".into())));
    assert!(resource.contains(&("service.version".into(), "1.2.3".into())));
    assert!(resource.iter().any(|(k, _)| k == "service.instance.id"));

    for i in 0..200u64 {
        let id = format!("otlp-{i}");
        let line = lines
            .iter()
            .find(|l| str_field(l, "request_id") == Some(&id) && l["message"] == "loading order")
            .unwrap();
        let (scope, record) = records
            .iter()
            .find(|(_, r)| {
                string(r, "request_id").as_deref() == Some(&id)
                    && r.body.as_ref().unwrap().value
                        == Some(Any::StringValue("loading order".into()))
            })
            .unwrap_or_else(|| panic!("{id}: no record"));
        assert_eq!(scope, "orders");
        assert_eq!(record.severity_number, 13);
        assert_eq!(record.severity_text, "WARN");
        assert_eq!(hex(&record.trace_id), line["trace_id"].as_str().unwrap());
        assert_eq!(hex(&record.span_id), line["span_id"].as_str().unwrap());
        assert_eq!(record.flags, 1);
        assert!(
            record.time_unix_nano > 0 && record.observed_time_unix_nano >= record.time_unix_nano
        );
        // Numbers stay numbers: the bound field, event and span fields.
        assert_eq!(
            attribute(record, "order_id"),
            Some(&Any::IntValue(i as i64))
        );
        assert_eq!(attribute(record, "count"), Some(&Any::IntValue(i as i64)));
        assert_eq!(attribute(record, "attempt"), Some(&Any::IntValue(2)));
        assert_eq!(attribute(record, "ratio"), Some(&Any::DoubleValue(0.5)));
        assert_eq!(attribute(record, "ok"), Some(&Any::BoolValue(true)));
        assert_eq!(attribute(record, "cached"), Some(&Any::BoolValue(false)));
        // Hostile text arrives intact; secrets are masked as on the line.
        assert_eq!(string(record, "note").as_deref(), Some(HOSTILE));
        assert_eq!(
            string(record, "password"),
            line["password"].as_str().map(str::to_owned)
        );
        assert_ne!(string(record, "password").as_deref(), Some("hunter2"));
        assert!(attribute(record, "service.name").is_none());

        let access = records
            .iter()
            .find(|(scope, r)| {
                scope == "corrlog::access" && string(r, "request_id").as_deref() == Some(&id)
            })
            .unwrap();
        assert_eq!(attribute(&access.1, "status"), Some(&Any::IntValue(200)));
        assert_eq!(access.1.severity_text, "INFO");
    }
}

#[test]
fn a_collector_that_answers_503_then_recovers_loses_nothing() {
    let receiver = Receiver::start(&[Reply::Status(503); 4]);
    let mut service = Service::start(fast(&receiver.base()), Backpressure::default());
    assert!(service.call(0, 50).iter().all(|&s| s == 200));
    let report = service.stop();
    let otlp = report.otlp.unwrap();
    let lines = service.lines().len();
    assert_eq!(receiver.records().len(), lines);
    assert_eq!(
        (otlp.written as usize, otlp.failed, otlp.dropped),
        (lines, 0, 0)
    );
    assert!(receiver.attempts() > 4, "the 503s were retried");
}

#[test]
fn a_collector_hanging_past_the_timeout_is_retried_and_requests_never_wait() {
    let receiver = Receiver::start(&[Reply::Hang(Duration::from_secs(10))]);
    let otlp = fast(&receiver.base()).timeout(Duration::from_secs(1));
    let mut service = Service::start(otlp, Backpressure::default());
    // A first batch reaches the hanging receiver...
    assert!(service.call(0, 1).iter().all(|&s| s == 200));
    for _ in 0..500 {
        if receiver.hanging() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(receiver.hanging(), 1);
    // ...and while the exporter waits on it, the service keeps answering.
    assert!(service.call(1, 100).iter().all(|&s| s == 200));
    assert_eq!(receiver.hanging(), 1, "all answered while the export hung");
    let report = service.stop();
    let otlp = report.otlp.unwrap();
    let lines = service.lines().len();
    assert_eq!((otlp.written as usize, otlp.failed), (lines, 0));
    assert_eq!(receiver.records().len(), lines);
}

#[test]
fn refused_connections_count_every_record_as_failed_and_the_service_keeps_answering() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let otlp = fast(&base).retry_window(Duration::from_millis(300));
    let mut service = Service::start(otlp, Backpressure::Drop);
    assert!(service.call(0, 100).iter().all(|&s| s == 200));
    let report = service.stop();
    let otlp = report.otlp.unwrap();
    assert_eq!(otlp.written, 0);
    assert_eq!(
        otlp.failed + otlp.dropped,
        otlp.submitted,
        "every record accounted for: {otlp:?}"
    );
    assert!(otlp.failed > 0);
    assert!(otlp.write_errors > 0);
    // The JSON lines are all there.
    assert_eq!(report.stats.written, report.stats.submitted);
}

#[test]
fn a_400_is_not_retried_and_later_batches_still_arrive() {
    let receiver = Receiver::start(&[Reply::Status(400)]);
    let mut service = Service::start(fast(&receiver.base()), Backpressure::default());
    assert!(service.call(0, 10).iter().all(|&s| s == 200));
    for _ in 0..500 {
        if receiver.attempts() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(service.call(10, 10).iter().all(|&s| s == 200));
    let report = service.stop();
    let otlp = report.otlp.unwrap();
    let lines = service.lines().len() as u64;
    let refused = receiver.refused();
    let received = receiver.records();
    assert!(!refused.is_empty());
    assert_eq!(otlp.failed, refused.len() as u64, "{otlp:?}");
    assert_eq!(otlp.written, received.len() as u64, "{otlp:?}");
    assert_eq!(otlp.written + otlp.failed, lines, "{otlp:?}");
    // Not retried: no refused record was sent again.
    let key = |r: &LogRecord| {
        (
            string(r, "request_id"),
            format!("{:?}", r.body),
            r.time_unix_nano,
        )
    };
    for (_, record) in &refused {
        assert!(
            !received.iter().any(|(_, r)| key(r) == key(record)),
            "{record:?} sent again"
        );
    }
    assert!(received
        .iter()
        .any(|(_, r)| string(r, "request_id").as_deref() == Some("otlp-15")));
}

#[test]
fn the_exporter_never_logs_into_its_own_pipeline() {
    // The HTTP client logs through `log`; with everything enabled and the
    // `log` bridge on, its records would reach the process-wide subscriber
    // unless the writer thread logs nowhere.
    let receiver = Receiver::start(&[Reply::Status(503)]);
    let capture = TestLogs::new();
    let (subscriber, logging) = corrlog::builder()
        .format(corrlog::Format::Json)
        .level("trace")
        .output(corrlog::output::Destination::Writer(Box::new(
            capture.clone(),
        )))
        .use_env(false)
        .otlp(fast(&receiver.base()))
        .build()
        .unwrap();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let _ = tracing_log::LogTracer::init();
    for n in 0..5 {
        tracing::info!(target: "app", n, "work");
    }

    let report = logging.shutdown(Duration::from_secs(30));
    // Other tests' clients may log into the global subscriber too: look
    // for what only the exporter's thread could have logged.
    let exporter = |target: &str| target.starts_with("ureq") || target.starts_with("rustls");
    let targets: Vec<String> = receiver
        .records()
        .into_iter()
        .map(|(scope, _)| scope)
        .collect();
    assert_eq!(targets.iter().filter(|t| *t == "app").count(), 5);
    assert!(!targets.iter().any(|t| exporter(t)), "{targets:?}");
    assert!(report.otlp.unwrap().written >= 5);
    for line in parse_lines(&capture.bytes()) {
        assert!(!exporter(line["logger"].as_str().unwrap()), "{line}");
    }
}

/// The demo built with OTLP export (`--all-features`, which reuses the
/// dependencies this test was built with); its path.
fn demo_with_otlp() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args([
            "build",
            "--all-features",
            "--example",
            "demo",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "demo")
        .and_then(|m| m["executable"].as_str().map(std::path::PathBuf::from))
        .expect("the demo's executable")
}

#[test]
fn with_one_variable_the_demo_s_logs_reach_the_collector_joined_to_its_traces() {
    let receiver = Receiver::start(&[]);
    let demo = demo_with_otlp();
    let base = receiver.base();
    let (process, stdout, addr) = common::demo::start_binary(
        &demo,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let response = common::demo::get(
        addr,
        "/orders/42",
        "x-request-id: collector-1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (out, err) = common::demo::stop(process, stdout);
    assert!(err.contains("otlp: "), "the demo reports its export: {err}");
    let lines: Vec<Value> = parse_lines(out.as_bytes())
        .into_iter()
        .filter(|l| str_field(l, "request_id") == Some("collector-1"))
        .collect();
    assert!(lines.len() >= 4, "{lines:#?}");

    // The spans: the request span continues the caller's trace.
    let st = receiver.state.lock().unwrap();
    let spans: Vec<_> = st
        .traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .cloned()
        .collect();
    drop(st);
    let request_span = spans
        .iter()
        .find(|s| s.name == "request" && hex(&s.parent_span_id) == "00f067aa0ba902b7")
        .unwrap_or_else(|| panic!("no request span: {spans:#?}"));
    assert_eq!(
        hex(&request_span.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let span_id = hex(&request_span.span_id);

    // The records: one per JSON line of the request, with the exported
    // span's ids as their own.
    let records: Vec<(String, LogRecord)> = receiver
        .records()
        .into_iter()
        .filter(|(_, r)| string(r, "request_id").as_deref() == Some("collector-1"))
        .collect();
    assert_eq!(records.len(), lines.len());
    for line in &lines {
        assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(line["span_id"], span_id.as_str(), "{line}");
    }
    for (_, record) in &records {
        assert_eq!(hex(&record.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&record.span_id), span_id);
    }
    assert!(records.iter().any(|(scope, _)| scope == "corrlog::access"));
}

#[test]
fn the_standard_variables_configure_the_export_and_bad_values_stop_the_start() {
    let receiver = Receiver::start(&[]);
    let demo = demo_with_otlp();
    let endpoint = format!("{}/v1/logs", receiver.base());
    let (process, stdout, addr) = common::demo::start_binary(
        &demo,
        &[
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", endpoint.as_str()),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-tenant=team%20a,authorization=Bearer%20t0k",
            ),
            ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-tenant=team%20b"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    );
    let response = common::demo::get(addr, "/", "x-request-id: env-1\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    common::demo::stop(process, stdout);
    assert!(receiver
        .records()
        .iter()
        .any(|(_, r)| string(r, "request_id").as_deref() == Some("env-1")));
    let st = receiver.state.lock().unwrap();
    assert!(!st.headers.is_empty());
    for headers in &st.headers {
        assert_eq!(headers["x-tenant"], "team b", "the logs variable wins");
        assert_eq!(headers["authorization"], "Bearer t0k");
        assert_eq!(headers["content-type"], "application/x-protobuf");
    }
    drop(st);

    for (var, value) in [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "ten seconds"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "key=%zz"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=1"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-key=line%0Abreak"),
        // Headers hold credentials: the error names the variable and where,
        // never any part of the value.
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=SECRET123,broken"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=SECRET123%"),
        ("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "SECRET123 key=1"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-key=SECRET123%0A"),
    ] {
        let mut child = std::process::Command::new(&demo)
            .args(["--addr", "127.0.0.1:0"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &endpoint)
            .env(var, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // It must stop at once; a server that started is killed and fails
        // the test.
        let mut status = None;
        for _ in 0..1000 {
            status = child.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{var}={value}: the demo started anyway");
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success(), "{var}={value}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        if var.ends_with("_HEADERS") {
            for part in ["SECRET", "broken", "line", "%"] {
                assert!(!stderr.contains(part), "{var}={value}: {stderr}");
            }
            assert!(
                stderr.contains("member ") || stderr.contains("header \""),
                "{var}={value} says where: {stderr}"
            );
        }
    }
}

/// Waits up to 5 s for `done`; a test's own assertions say what a timeout
/// means.
fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An endpoint's credentials (user information, a token in the query)
/// never reach stderr: not in the export's reason lines, not in `Debug`,
/// not in a start error.
#[test]
fn the_endpoint_s_credentials_are_masked_wherever_it_is_printed() {
    let receiver = Receiver::start(&[Reply::Status(401)]);
    let demo = demo_with_otlp();
    let base = receiver.base();
    let endpoint = format!(
        "http://user:EPSECRET@{}/v1/logs?token=QSECRET",
        base.trim_start_matches("http://")
    );
    let (process, stdout, addr) = common::demo::start_binary(
        &demo,
        &[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", endpoint.as_str())],
    );
    let response = common::demo::get(addr, "/", "x-request-id: masked-1\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    wait_for(|| receiver.attempts() > 0);
    let (_, err) = common::demo::stop(process, stdout);
    assert!(
        err.contains("answered HTTP 401"),
        "the reason is printed: {err}"
    );
    assert!(err.contains("/v1/logs"), "{err}");
    for secret in ["EPSECRET", "QSECRET"] {
        assert!(!err.contains(secret), "{err}");
    }

    let debug = format!("{:?}", Otlp::new(endpoint.clone()));
    assert!(!debug.contains("SECRET"), "{debug}");

    let bad = "ftp://user:EPSECRET@collector/v1/logs?token=QSECRET";
    let out = std::process::Command::new(&demo)
        .args(["--addr", "127.0.0.1:0"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"), "{err}");
    assert!(!err.contains("SECRET"), "{err}");
}

/// A TLS server on `127.0.0.1:0` with a self-signed certificate (made by
/// the `openssl` command), which no client trusts; prints its port, then
/// `accept` for each connection.
const TLS_SERVER: &str = r#"
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
def handle(c):
    try:
        with ctx.wrap_socket(c, server_side=True) as t:
            t.recv(1)
    except Exception:
        pass
while True:
    conn, _ = srv.accept()
    print("accept", flush=True)
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"#;

/// A certificate the client refuses is a permanent error: reported at
/// once with the reason, every record counted failed, none retried into
/// the shutdown's deadline and dropped.
#[test]
fn a_refused_certificate_is_reported_at_once_and_not_retried() {
    let dir = std::env::temp_dir().join(format!("corrlog-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command, to make a certificate");
    assert!(made.success());
    let mut server = std::process::Command::new("python3")
        .args(["-c", TLS_SERVER])
        .arg(&cert)
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3, for the TLS server");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(server.stdout.take().unwrap()));
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        for _ in lines.map_while(Result::ok) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });

    let demo = demo_with_otlp();
    let endpoint = format!("https://127.0.0.1:{port}/v1/logs");
    let (process, stdout, addr) = common::demo::start_binary(
        &demo,
        &[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", endpoint.as_str())],
    );
    let response = common::demo::get(addr, "/", "x-request-id: tls-1\r\n");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    wait_for(|| accepted.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let (_, err) = common::demo::stop(process, stdout);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(err.contains("invalid peer certificate"), "{err}");
    assert!(err.contains("not retried"), "{err}");
    let report = err
        .lines()
        .find(|l| l.starts_with("otlp: "))
        .unwrap_or_else(|| panic!("the shutdown report: {err}"));
    let numbers: Vec<u64> = report
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [delivered, dropped, failed] = numbers[..] else {
        panic!("{report}");
    };
    assert_eq!((delivered, dropped), (0, 0), "{report}");
    assert!(failed > 0, "{report}");
}

#[test]
fn otel_sdk_disabled_turns_the_export_off() {
    let receiver = Receiver::start(&[]);
    let demo = demo_with_otlp();
    let endpoint = format!("{}/v1/logs", receiver.base());
    let (process, stdout, addr) = common::demo::start_binary(
        &demo,
        &[
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", endpoint.as_str()),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    );
    common::demo::get(addr, "/", "x-request-id: disabled-1\r\n");
    let (out, err) = common::demo::stop(process, stdout);
    assert!(out.contains("disabled-1"), "the JSON lines are written");
    assert!(!err.contains("otlp: "), "{err}");
    assert_eq!(receiver.attempts(), 0);
}
