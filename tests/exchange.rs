//! The framework-neutral request path, `RequestLayer::exchange`: what an
//! integration without tower (actix-web's) starts from. Driven directly,
//! without a server, to see each step's effect on the request, the
//! response and the lines.
#![allow(clippy::unwrap_used)]

use http::{HeaderName, Request};
use serde_json::Value;

use corrlog::http::Exchange;
use corrlog::testing::TestLogs;
use corrlog::RequestId;
use corrlog::RequestLayer;

fn request(headers: &[(&str, &str)]) -> Request<()> {
    let mut req = Request::builder().uri("/orders/7?x=1");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(()).unwrap()
}

/// Runs `f` on an exchange for a request with `headers`, under a
/// capture; returns the request as the inner service would see it and
/// the request's lines, parsed.
fn drive(
    layer: RequestLayer,
    headers: &[(&str, &str)],
    f: impl FnOnce(&mut Exchange),
) -> (Request<()>, String, Vec<Value>) {
    let logs = TestLogs::new();
    let mut req = request(headers);
    let id = logs.scope(|| {
        let mut exchange = layer.exchange(&mut req);
        f(&mut exchange);
        let id = exchange.id().to_string();
        drop(exchange);
        id
    });
    let lines = logs
        .lines_for(&id)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (req, id, lines)
}

fn access(lines: &[Value]) -> &Value {
    let access: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    assert_eq!(access.len(), 1, "{lines:#?}");
    access[0]
}

fn header_values<'a>(req: &'a Request<()>, name: &str) -> Vec<&'a str> {
    req.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn a_trusted_id_is_kept_on_the_request_the_extension_and_the_response() {
    let (req, id, _) = drive(RequestLayer::new(), &[("x-request-id", "ok-1")], |ex| {
        let (name, value) = ex.id_header().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-request-id", "ok-1")
        );
        assert_eq!(ex.context().id().as_str(), "ok-1");
        assert_eq!(
            format!("{ex:?}"),
            r#"Exchange { id: RequestId("ok-1"), .. }"#
        );
    });
    assert_eq!(id, "ok-1");
    assert_eq!(header_values(&req, "x-request-id"), ["ok-1"]);
    assert_eq!(
        req.extensions().get::<RequestId>().map(RequestId::as_str),
        Some("ok-1")
    );
}

#[test]
fn an_invalid_id_is_replaced_on_the_request_too() {
    let (req, id, lines) = drive(RequestLayer::new(), &[("x-request-id", "bad id")], |ex| {
        ex.responded(200, Some(0));
    });
    assert_eq!(id.len(), 36);
    assert_eq!(header_values(&req, "x-request-id"), [id.as_str()]);
    assert!(access(&lines).get("correlation_id").is_none());
}

#[test]
fn headers_are_rewritten_whenever_the_request_did_not_arrive_as_it_leaves() {
    // Trusted, but read from a header that is not the response header.
    let layer = RequestLayer::new()
        .headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-correlation-id"),
        ])
        .response_header(HeaderName::from_static("x-trace"));
    let (req, id, _) = drive(
        layer.clone(),
        &[
            ("x-request-id", "not valid"),
            ("x-correlation-id", "corr-1"),
        ],
        |_| {},
    );
    assert_eq!(id, "corr-1");
    assert!(header_values(&req, "x-request-id").is_empty());
    assert!(header_values(&req, "x-correlation-id").is_empty());
    assert_eq!(header_values(&req, "x-trace"), ["corr-1"]);
    assert_eq!(
        layer.id_headers(),
        [
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-correlation-id")
        ]
    );
    // One trusted header that is also the response header, but more
    // headers configured: the others are removed.
    let layer = RequestLayer::new().headers([
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("x-correlation-id"),
    ]);
    let (req, _, _) = drive(
        layer,
        &[("x-request-id", "ok-2"), ("x-correlation-id", "other")],
        |_| {},
    );
    assert!(header_values(&req, "x-correlation-id").is_empty());
    assert_eq!(header_values(&req, "x-request-id"), ["ok-2"]);
}

#[test]
fn edge_mode_generates_and_keeps_the_client_value_as_correlation_id() {
    let (req, id, lines) = drive(
        RequestLayer::new().edge(true),
        &[("x-request-id", "client-1")],
        |ex| ex.responded(204, None),
    );
    assert_ne!(id, "client-1");
    assert_eq!(header_values(&req, "x-request-id"), [id.as_str()]);
    assert_eq!(access(&lines)["correlation_id"], "client-1");
}

/// "Why isn't my id kept?" has an answer at DEBUG, without the value.
#[test]
fn a_replaced_id_says_why_at_debug() {
    let replaced = |headers: &[(&str, &str)]| {
        let (_, id, lines) = drive(RequestLayer::new(), headers, |ex| ex.end());
        let said: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == "incoming request id replaced")
            .collect();
        assert!(said
            .iter()
            .all(|l| l["level"] == "DEBUG" && l["request_id"] == id.as_str()));
        assert!(
            !lines.iter().any(|l| l.to_string().contains("bad id")),
            "{lines:#?}"
        );
        said.iter()
            .map(|l| l["reason"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        replaced(&[("x-request-id", "bad id")]),
        ["not a valid request id"]
    );
    assert_eq!(
        replaced(&[("x-request-id", "bad id"), ("x-request-id", "good-id")]),
        ["sent more than once"]
    );
    // Kept, or never sent: nothing to say.
    assert!(replaced(&[("x-request-id", "good-id")]).is_empty());
    assert!(replaced(&[]).is_empty());
}

/// With several id headers, the first valid one is taken; when none is,
/// the reason names the first that came.
#[test]
fn the_first_valid_id_header_wins_and_the_first_refused_one_is_named() {
    let layer = || {
        RequestLayer::new().headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-correlation-id"),
            HeaderName::from_static("x-amzn-trace-id"),
        ])
    };
    let (req, id, lines) = drive(
        layer(),
        &[("x-request-id", "bad id"), ("x-correlation-id", "corr-7")],
        |ex| ex.end(),
    );
    assert_eq!(id, "corr-7");
    assert_eq!(req.headers()["x-request-id"], "corr-7");
    assert!(!lines
        .iter()
        .any(|l| l["message"] == "incoming request id replaced"));

    let (_, id, lines) = drive(
        layer(),
        &[
            ("x-correlation-id", "a"),
            ("x-correlation-id", "b"),
            ("x-amzn-trace-id", "bad id"),
        ],
        |ex| ex.end(),
    );
    assert_ne!(id, "a");
    let said: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "incoming request id replaced")
        .collect();
    assert_eq!(said.len(), 1, "{lines:#?}");
    assert_eq!(said[0]["header"], "x-correlation-id");
    assert_eq!(said[0]["reason"], "sent more than once");
}

#[test]
fn the_handler_runs_in_the_context_and_span_and_a_panic_is_a_500() {
    let layer = RequestLayer::new().request_span(true);
    let (_, _, lines) = drive(layer, &[("x-request-id", "h-1")], |ex| {
        let seen = ex.catch_handler(|| {
            tracing::info!("in handler");
            (
                corrlog::request_id().map(|id| id.to_string()),
                tracing::Span::current().metadata().map(|m| m.name()),
            )
        });
        assert_eq!(seen, Some((Some("h-1".to_owned()), Some("request"))));
        assert_eq!(ex.span().metadata().map(|m| m.name()), Some("request"));
        assert!(ex.catch_handler(|| panic!("handler bug")).is_none());
        ex.sent(22);
        ex.end();
    });
    assert!(lines.iter().any(|l| l["message"] == "in handler"));
    // One ERROR line for the panic, one for the access line.
    let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0]["message"], "handler bug");
    assert_eq!(errors[0]["logger"], "corrlog::panic");
    assert_eq!(errors[0]["request_id"], "h-1");
    let line = access(&lines);
    assert_eq!(line["status"], 500);
    assert_eq!(line["reason"], "panic");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["bytes_out"], 22);
}

#[test]
fn without_the_request_span_the_handler_still_runs_in_the_context() {
    let layer = RequestLayer::new().request_span(false);
    let (_, _, lines) = drive(layer, &[("x-request-id", "n-1")], |ex| {
        let seen = ex.catch_handler(|| {
            tracing::info!("in handler");
            (
                corrlog::request_id().map(|id| id.to_string()),
                tracing::Span::current().is_none(),
            )
        });
        assert_eq!(seen, Some((Some("n-1".to_owned()), true)));
        assert!(ex.span().is_none());
        ex.responded(200, None);
        ex.end();
    });
    let line = lines.iter().find(|l| l["message"] == "in handler").unwrap();
    assert_eq!(line["request_id"], "n-1");
    assert_eq!(access(&lines)["request_id"], "n-1");
    // The default: a span only with the `opentelemetry` feature.
    let (_, _, _) = drive(RequestLayer::new(), &[], |ex| {
        assert_eq!(ex.span().is_none(), !cfg!(feature = "opentelemetry"));
        ex.end();
    });
}

#[test]
fn a_body_panic_writes_the_line_at_once() {
    let (_, _, lines) = drive(RequestLayer::new(), &[("x-request-id", "b-1")], |ex| {
        ex.responded(200, None);
        assert_eq!(ex.catch_body(|| 5), Some(5));
        assert!(ex.catch_body(|| panic!("body bug")).is_none());
        // Written already: nothing more.
        ex.end_with_error();
    });
    let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0]["message"], "body bug");
    assert_eq!(errors[0]["logger"], "corrlog::panic");
    assert_eq!(access(&lines)["reason"], "body_panic");
}

#[test]
fn how_the_exchange_ends_names_the_reason() {
    let end = |f: fn(&mut Exchange)| {
        let (_, _, lines) = drive(RequestLayer::new(), &[], f);
        access(&lines).clone()
    };
    // Routed and sent in full, in parts.
    let line = end(|ex| {
        ex.set_route("/orders/{id}");
        ex.responded(200, Some(7));
        ex.sent(3);
        ex.sent(4);
        ex.end();
    });
    assert_eq!(line["route"], "/orders/{id}");
    assert_eq!(line["bytes_out"], 7);
    assert_eq!(line["path"], "/orders/7");
    assert!(line.get("reason").is_none());
    assert_eq!(line["level"], "INFO");
    // A streamed body (no length) that ended.
    let line = end(|ex| {
        ex.responded(200, None);
        ex.sent(5);
        ex.end();
    });
    assert!(line.get("reason").is_none(), "{line}");
    // Dropped once the declared length went out: complete.
    let line = end(|ex| {
        ex.responded(200, Some(4));
        ex.sent(4);
    });
    assert!(line.get("reason").is_none(), "{line}");
    // Dropped short of it: the client went away.
    let line = end(|ex| {
        ex.responded(200, Some(10));
        ex.sent(4);
    });
    assert_eq!(line["reason"], "client_disconnect");
    assert_eq!(line["level"], "WARN");
    // Dropped before any response.
    let line = end(|_| {});
    assert_eq!(line["reason"], "cancelled");
    assert!(line["status"].is_null());
    // A failed body.
    let line = end(|ex| {
        ex.responded(200, None);
        ex.end_with_error();
    });
    assert_eq!(line["reason"], "body_error");
    assert_eq!(line["status"], 200);
}
