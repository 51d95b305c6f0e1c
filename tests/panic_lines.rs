//! A panic as one line, over the real demo service in a process of its own
//! (the panic hook is process-wide): the configured format, the service
//! identity from the OpenTelemetry variables, the request's ids, the
//! backtrace, and no raw panic text on stdout or stderr. Also: a hook the
//! application installed first still runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::demo::{demo_binary, get, start_demo, stop};

use serde_json::Value;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn a_panic_is_one_line_in_the_configured_format() {
    let (demo, stdout, addr) = start_demo(&[
        ("CORRLOG_FORMAT", "gcp"),
        ("GOOGLE_CLOUD_PROJECT", "proj-x"),
        ("OTEL_SERVICE_NAME", "checkout"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=ignored,service.version=3.1.4,service.instance.id=pod%2D7,deployment.environment.name=prod%20eu,team=payments",
        ),
        ("RUST_BACKTRACE", "1"),
    ]);
    let response = get(
        addr,
        "/boom",
        &format!("x-request-id: boom-1\r\ntraceparent: 00-{TRACE_ID}-00f067aa0ba902b7-01\r\n"),
    );
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    assert!(response.contains("x-request-id: boom-1\r\n"), "{response}");
    let (out, err) = stop(demo, stdout);

    for text in [&out, &err] {
        assert!(!text.contains("panicked at"), "raw panic text: {text}");
        assert!(!text.contains("stack backtrace:"), "raw panic text: {text}");
    }
    let lines = common::parse_lines(out.as_bytes());
    let panics: Vec<&Value> = lines
        .iter()
        .filter(|l| l["logger"] == "corrlog::panic")
        .collect();
    assert_eq!(panics.len(), 1, "{out}");
    let panic = panics[0];
    assert_eq!(panic["severity"], "ERROR");
    assert_eq!(panic["message"], "boom: the handler failed");
    assert_eq!(panic["request_id"], "boom-1");
    assert_eq!(
        panic["logging.googleapis.com/trace"],
        format!("projects/proj-x/traces/{TRACE_ID}")
    );
    assert!(panic["panic.location"]
        .as_str()
        .unwrap()
        .starts_with("examples/demo/orders.rs:"));
    let stack = panic["stack_trace"].as_str().unwrap();
    let first_frame = stack.lines().next().unwrap();
    assert!(
        first_frame.contains("boom"),
        "starts at the panic site: {stack}"
    );
    for line in &lines {
        assert_eq!(
            line["serviceContext"],
            serde_json::json!({"service": "checkout", "version": "3.1.4"}),
            "OTEL_SERVICE_NAME wins over service.name: {line}"
        );
        assert_eq!(
            line["logging.googleapis.com/labels"],
            serde_json::json!({"service.instance.id": "pod-7", "deployment.environment.name": "prod eu"})
        );
    }
}

#[test]
fn pretty_lines_keep_the_standard_panic_text() {
    let (demo, stdout, addr) = start_demo(&[("CORRLOG_FORMAT", "pretty")]);
    let response = get(addr, "/boom", "x-request-id: boom-2\r\n");
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    let (out, err) = stop(demo, stdout);
    assert!(err.contains("panicked at"), "never silent: {err}");
    // The log still has the panic as one ERROR line with the request's id
    // (written where corrlog caught it: no location, which stderr has).
    let panics: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("ERROR corrlog::panic: boom: the handler failed"))
        .collect();
    assert_eq!(panics.len(), 1, "{out}");
    assert!(panics[0].contains("request_id=boom-2"), "{out}");
    assert!(!panics[0].contains("panic.location"), "{out}");
    let errors = out.lines().filter(|l| l.contains(" ERROR ")).count();
    assert_eq!(errors, 2, "the panic line and the access line: {out}");
}

#[test]
fn a_malformed_resource_variable_stops_the_start() {
    for bad in [
        "service.version",
        "=1.0",
        "service.version=1%2",
        "service.version=%ZZ",
        "a=%FF",
    ] {
        let out = Command::new(demo_binary())
            .args(["--addr", "127.0.0.1:0"])
            .env("OTEL_RESOURCE_ATTRIBUTES", bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("OTEL_RESOURCE_ATTRIBUTES={bad:?} is not valid")),
            "{err}"
        );
        assert!(
            err.contains("key=value pairs, values percent-encoded"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
}

const CHILD_ENV: &str = "CORRLOG_PANIC_CHILD";

/// Runs in two processes: the child installs its own hook, then corrlog,
/// then panics; both hooks must have run.
#[test]
fn a_hook_installed_before_corrlog_still_runs() {
    if std::env::var_os(CHILD_ENV).is_some() {
        std::panic::set_hook(Box::new(|info| {
            eprintln!(
                "application hook saw: {}",
                info.payload_as_str().unwrap_or("?")
            );
        }));
        let logging = corrlog::builder()
            .format(corrlog::Format::Json)
            .init()
            .unwrap();
        let ctx = corrlog::RequestContext::new(corrlog::RequestId::new("hook-1").unwrap());
        let result = std::panic::catch_unwind(|| ctx.run(|| panic!("in the child")));
        assert!(result.is_err());
        logging.shutdown(Duration::from_secs(5));
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_hook_installed_before_corrlog_still_runs",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env_remove("CORRLOG_FORMAT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("application hook saw: in the child"),
        "{stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("\"corrlog::panic\""))
        .unwrap_or_else(|| panic!("no panic line: {stdout}"));
    // libtest may print on the same line before the JSON.
    let line: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
    assert_eq!(line["message"], "in the child");
    assert_eq!(line["request_id"], "hook-1");
    assert_eq!(line["level"], "ERROR");
}

/// A REST route answers a panic 500 whatever content type the client
/// claims, and the access line says what was sent: the client's
/// `content-type: application/grpc` does not make it a gRPC answer (HTTP
/// 200, `grpc-status` 13) or add gRPC fields. A route that answers plain
/// HTTP to such a request is logged as plain HTTP too.
#[test]
fn a_client_claiming_grpc_gets_the_rest_route_s_answer() {
    let (demo, stdout, addr) = start_demo(&[]);
    let claim = "content-type: application/grpc\r\n";
    let response = get(addr, "/boom", &format!("x-request-id: claim-1\r\n{claim}"));
    assert!(response.starts_with("HTTP/1.1 500"), "{response}");
    assert!(!response.contains("grpc-status"), "{response}");
    let response = get(addr, "/", &format!("x-request-id: claim-2\r\n{claim}"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (out, _) = stop(demo, stdout);
    let access = |id: &str| -> Value {
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["request_id"] == id && l["message"] == "request finished")
            .unwrap_or_else(|| panic!("no access line for {id}: {out}"))
    };
    let boom = access("claim-1");
    assert_eq!(boom["status"], 500, "{boom}");
    assert_eq!(boom["reason"], "panic", "{boom}");
    assert!(boom.get("grpc_status").is_none(), "{boom}");
    let ok = access("claim-2");
    assert_eq!(ok["status"], 200, "{ok}");
    assert_eq!(ok["level"], "INFO", "{ok}");
    assert!(ok.get("grpc_status").is_none(), "{ok}");
    assert!(ok.get("grpc_status_name").is_none(), "{ok}");
}
