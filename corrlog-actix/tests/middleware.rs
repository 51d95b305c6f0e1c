//! What `RequestMiddleware` does beyond the shared suites, against real
//! actix-web servers: the layer's configuration (headers, edge mode, trace
//! context), what the handler sees, errors from inner middleware, panics
//! before the handler's future exists, the extractor without the
//! middleware, and the access line's route and fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod support;

use actix_web::dev::Service;
use actix_web::{web, HttpRequest, HttpResponse};
use common::suites::{access_for, access_lines, one};
use common::{client_runtime, get_request, str_field, TestServer};
use corrlog::http::AccessLog;
use corrlog::RequestLayer;
use corrlog_actix::RequestId;

/// What the handler saw: its `RequestId`, `corrlog::request_id()`, and the
/// id headers on the request.
async fn echo(req: HttpRequest, id: RequestId) -> HttpResponse {
    tracing::info!(target: "api", "echo");
    let header = |name: &str| -> Vec<String> {
        req.headers()
            .get_all(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    HttpResponse::Ok().json(serde_json::json!({
        "extracted": id.to_string(),
        "current": corrlog::request_id().map(|id| id.to_string()),
        "x-request-id": header("x-request-id"),
        "x-correlation-id": header("x-correlation-id"),
        "trace_id": corrlog::RequestContext::current()
            .and_then(|ctx| ctx.trace().map(|t| t.trace_id_hex())),
    }))
}

fn echo_server(layer: RequestLayer) -> TestServer {
    support::start(1, layer, || {
        |cfg: &mut web::ServiceConfig| {
            cfg.route("/echo/{name}", web::get().to(echo));
        }
    })
}

#[test]
fn the_handler_sees_one_id_header_and_the_same_id_everywhere() {
    let server = echo_server(RequestLayer::new());
    let res = one(
        &server,
        &get_request("/echo/a", &[b"x-request-id: given-1"]),
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-request-id").as_deref(), Some("given-1"));
    let body = res.json();
    assert_eq!(body["extracted"], "given-1");
    assert_eq!(body["current"], "given-1");
    assert_eq!(body["x-request-id"], serde_json::json!(["given-1"]));

    // A bad id: replaced on the request too, never seen by the handler.
    let res = one(
        &server,
        &get_request("/echo/b", &[b"x-request-id: bad id", b"x-request-id: two"]),
    );
    let id = res.header("x-request-id").unwrap();
    assert!(common::is_uuid_v4(&id), "{id}");
    let body = res.json();
    assert_eq!(body["extracted"], id.as_str());
    assert_eq!(body["x-request-id"], serde_json::json!([id]));

    let lines = access_lines(&server);
    let line = access_for(&lines, "given-1")[0];
    assert_eq!(line["route"], "/echo/{name}");
    assert_eq!(line["path"], "/echo/a");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["status"], 200);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert!(line["bytes_out"].as_u64().unwrap() > 0);
    assert!(line["latency_ms"].as_f64().is_some());
}

#[test]
fn the_layer_configuration_applies_headers_and_edge_mode() {
    let layer = RequestLayer::new()
        .headers([
            http::HeaderName::from_static("x-request-id"),
            http::HeaderName::from_static("x-correlation-id"),
        ])
        .response_header(http::HeaderName::from_static("x-correlation-id"));
    let server = echo_server(layer);
    let res = one(
        &server,
        &get_request(
            "/echo/c",
            &[b"x-request-id: not valid", b"x-correlation-id: corr-7"],
        ),
    );
    assert_eq!(res.header("x-correlation-id").as_deref(), Some("corr-7"));
    assert!(res.header("x-request-id").is_none());
    let body = res.json();
    assert_eq!(body["x-correlation-id"], serde_json::json!(["corr-7"]));
    assert_eq!(body["x-request-id"], serde_json::json!([]));
    drop(server);

    // Edge mode: the client's id is kept as correlation_id only, and its
    // traceparent is not continued.
    let server = echo_server(RequestLayer::new().edge(true));
    let res = one(
        &server,
        &get_request(
            "/echo/d",
            &[
                b"x-request-id: client-chosen",
                b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ],
        ),
    );
    let id = res.header("x-request-id").unwrap();
    assert!(common::is_uuid_v4(&id), "{id}");
    let body = res.json();
    assert_ne!(body["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    let lines = server.lines();
    let echo = lines
        .iter()
        .find(|l| str_field(l, "message") == Some("echo"))
        .unwrap();
    assert_eq!(echo["request_id"], id.as_str());
    assert_eq!(echo["correlation_id"], "client-chosen");
}

#[test]
fn a_valid_traceparent_is_continued() {
    let server = echo_server(RequestLayer::new());
    let res = one(
        &server,
        &get_request(
            "/echo/e",
            &[
                b"x-request-id: traced-1",
                b"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ],
        ),
    );
    assert_eq!(res.json()["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    let lines = access_lines(&server);
    let line = access_for(&lines, "traced-1")[0];
    assert_eq!(line["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(line["parent_span_id"], "b7ad6b7169203331");
    assert_ne!(line["span_id"], "b7ad6b7169203331");
}

#[test]
fn errors_from_inner_middleware_and_panics_in_call_carry_the_id() {
    let server = support::start(1, RequestLayer::new(), || {
        |cfg: &mut web::ServiceConfig| {
            cfg.service(
                web::scope("/guarded")
                    .wrap_fn(|req, srv| {
                        let refuse = req.path().ends_with("/refuse");
                        let fut = srv.call(req);
                        async move {
                            if refuse {
                                return Err(actix_web::error::ErrorForbidden("refused\n"));
                            }
                            fut.await
                        }
                    })
                    .wrap_fn(|req, srv| {
                        // Synchronously, before any future: in `call`.
                        assert!(!req.path().ends_with("/sync-panic"), "panicked in call");
                        srv.call(req)
                    })
                    .route("/refuse", web::get().to(|| async { "never" }))
                    .route("/sync-panic", web::get().to(|| async { "never" })),
            );
        }
    });
    let res = one(
        &server,
        &get_request("/guarded/refuse", &[b"x-request-id: refused-1"]),
    );
    assert_eq!(res.status, 403);
    assert_eq!(res.header("x-request-id").as_deref(), Some("refused-1"));
    assert_eq!(res.body, b"refused\n");
    let res = one(
        &server,
        &get_request("/guarded/sync-panic", &[b"x-request-id: sync-panic-1"]),
    );
    assert_eq!(res.status, 500);
    assert_eq!(res.header("x-request-id").as_deref(), Some("sync-panic-1"));
    // 404s too.
    let res = one(&server, &get_request("/nowhere", &[b"x-request-id: nf-1"]));
    assert_eq!(res.status, 404);
    assert_eq!(res.header("x-request-id").as_deref(), Some("nf-1"));

    let lines = access_lines(&server);
    let refused = access_for(&lines, "refused-1");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["status"], 403);
    assert_eq!(refused[0]["level"], "WARN");
    let panicked = access_for(&lines, "sync-panic-1");
    assert_eq!(panicked.len(), 1);
    assert_eq!(panicked[0]["status"], 500);
    assert_eq!(panicked[0]["reason"], "panic");
    assert_eq!(access_for(&lines, "nf-1")[0]["status"], 404);
    let all = server.lines();
    assert!(all.iter().any(|l| {
        str_field(l, "request_id") == Some("sync-panic-1")
            && l["logger"] == "corrlog::panic"
            && l["message"] == "panicked in call"
    }));
}

#[test]
fn head_requests_and_quiet_access_logs() {
    let server = support::start(
        1,
        RequestLayer::new().access_log(AccessLog::default().skip_path("/echo/skip")),
        || {
            |cfg: &mut web::ServiceConfig| {
                cfg.route("/echo/{name}", web::get().to(echo));
            }
        },
    );
    let res = one(
        &server,
        b"HEAD /echo/h HTTP/1.1\r\nhost: t\r\nx-request-id: head-1\r\nconnection: close\r\n\r\n",
    );
    assert_eq!(res.header("x-request-id").as_deref(), Some("head-1"));
    let res = one(
        &server,
        &get_request("/echo/skip", &[b"x-request-id: skip-1"]),
    );
    assert_eq!(res.header("x-request-id").as_deref(), Some("skip-1"));
    let lines = access_lines(&server);
    let head = access_for(&lines, "head-1");
    assert_eq!(head.len(), 1, "{head:#?}");
    assert_eq!(str_field(head[0], "reason"), None, "{}", head[0]);
    assert_eq!(head[0]["method"], "HEAD");
    assert!(access_for(&lines, "skip-1").is_empty());
}

#[test]
fn the_extractor_without_the_middleware_names_the_fix() {
    let res = client_runtime().block_on(async {
        let app = actix_web::test::init_service(actix_web::App::new().route(
            "/",
            web::get().to(|id: RequestId| async move { id.to_string() }),
        ))
        .await;
        let req = actix_web::test::TestRequest::get().uri("/").to_request();
        let res = actix_web::test::call_service(&app, req).await;
        let status = res.status();
        let body = actix_web::test::read_body(res).await;
        (status, body)
    });
    assert_eq!(res.0, 500);
    let text = String::from_utf8(res.1.to_vec()).unwrap();
    assert!(text.contains("RequestMiddleware"), "{text}");
}
