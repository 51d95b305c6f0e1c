//! Error paths: panics, handler errors, extractor rejections and 404s all
//! carry the id on the response; panics and 5xx are logged at ERROR with
//! the id; the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/demo/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use common::{client_runtime, is_uuid_v4, str_field, TestServer};
use serde_json::Value;

/// A body that yields one chunk, then panics.
struct PanickingBody {
    sent: bool,
}

impl http_body::Body for PanickingBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if self.sent {
            panic!("body exploded");
        }
        self.sent = true;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"first\n",
        )))))
    }
}

fn app() -> Router {
    app::routes(app::AppConfig::default(), None)
        .route(
            "/fail",
            get(|| async {
                tracing::warn!("database unavailable");
                Err::<(), _>((StatusCode::INTERNAL_SERVER_ERROR, "db down"))
            }),
        )
        .route(
            "/typed/{n}",
            get(|Path(n): Path<u32>| async move { n.to_string() }),
        )
        .route(
            "/body-panic",
            get(|| async { Body::new(PanickingBody { sent: false }) }),
        )
        .layer(corrlog::RequestLayer::new())
}

struct Res {
    status: u16,
    id: String,
    body: String,
}

fn fetch(server: &TestServer, path: &str, id: Option<&str>) -> Res {
    client_runtime().block_on(async {
        let mut req = reqwest::Client::new().get(server.url(path));
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        // A body cut short by a panic is an error for the client: keep
        // what arrived.
        let body = res.text().await.unwrap_or_default();
        Res { status, id, body }
    })
}

fn lines_of(server: &TestServer, id: &str) -> Vec<Value> {
    server
        .lines()
        .into_iter()
        .filter(|l| str_field(l, "request_id") == Some(id))
        .collect()
}

fn error_line<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| {
            str_field(l, "level") == Some("ERROR") && str_field(l, "message") == Some(message)
        })
        .unwrap_or_else(|| panic!("no ERROR line {message:?} in {lines:#?}"))
}

#[test]
fn a_panicking_handler_gets_a_500_with_the_id_and_an_error_line() {
    let server = TestServer::start(2, app());
    let res = fetch(&server, "/boom", Some("panic-1"));
    assert_eq!(res.status, 500);
    assert_eq!(res.id, "panic-1");
    let lines = lines_of(&server, "panic-1");
    let line = error_line(&lines, "boom: the handler failed");
    assert_eq!(str_field(line, "logger"), Some("corrlog::panic"));
    assert!(str_field(line, "panic.location").is_some(), "{line}");
    // One panic, one ERROR line, besides the access line.
    let errors = lines
        .iter()
        .filter(|l| str_field(l, "level") == Some("ERROR"));
    assert_eq!(errors.count(), 2, "{lines:#?}");
    assert!(lines
        .iter()
        .any(|l| str_field(l, "message") == Some("about to panic")));

    // Generated ids too, and the server keeps serving.
    let res = fetch(&server, "/boom", None);
    assert_eq!(res.status, 500);
    assert!(is_uuid_v4(&res.id));
    error_line(&lines_of(&server, &res.id), "boom: the handler failed");
    let ok = fetch(&server, "/", None);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, r#"{"status":"ok"}"#);
}

#[test]
fn handler_errors_carry_the_id_and_log_at_error() {
    let server = TestServer::start(2, app());
    let res = fetch(&server, "/fail", Some("fail-1"));
    assert_eq!(res.status, 500);
    assert_eq!(res.id, "fail-1");
    let lines = lines_of(&server, "fail-1");
    let line = error_line(&lines, "request finished");
    assert_eq!(line["status"], 500);
    assert_eq!(str_field(line, "logger"), Some("corrlog::access"));
    assert!(line.get("reason").is_none());
    assert!(lines.iter().any(|l| str_field(l, "level") == Some("WARN")));
}

#[test]
fn rejections_and_404s_carry_the_id() {
    let server = TestServer::start(2, app());
    let res = fetch(&server, "/typed/not-a-number", Some("reject-1"));
    assert_eq!(res.status, 400);
    assert_eq!(res.id, "reject-1");
    let res = fetch(&server, "/no/such/route", None);
    assert_eq!(res.status, 404);
    assert!(is_uuid_v4(&res.id));
    // 4xx are the client's doing: no ERROR line.
    assert!(server
        .lines()
        .iter()
        .all(|l| str_field(l, "level") != Some("ERROR")));
}

#[test]
fn a_panicking_body_is_cut_short_and_logged_with_the_id() {
    let server = TestServer::start(2, app());
    let res = fetch(&server, "/body-panic", Some("body-panic-1"));
    assert_eq!(res.status, 200);
    assert_eq!(res.id, "body-panic-1");
    let lines = lines_of(&server, "body-panic-1");
    let line = error_line(&lines, "body exploded");
    assert_eq!(str_field(line, "logger"), Some("corrlog::panic"));
    let errors = lines
        .iter()
        .filter(|l| str_field(l, "level") == Some("ERROR"));
    assert_eq!(errors.count(), 2, "{lines:#?}");
    assert_eq!(fetch(&server, "/", None).status, 200);
}
