//! `RequestLayer` on plain tower services, without a server or a
//! framework: the id on the request, its extension and context, panics,
//! errors passing through, a custom header, gRPC answers without a status.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_service::Service;

use http::HeaderName;
use tower_layer::Layer;

use corrlog::RequestLayer;
use corrlog::{RequestContext, RequestId};

type Body = Full<Bytes>;

fn request(id: Option<&str>) -> Request<Body> {
    let mut req = Request::builder().uri("/");
    if let Some(id) = id {
        req = req.header("x-request-id", id);
    }
    req.body(Body::default()).unwrap()
}

/// Echoes what the inner service saw: its id header, extension and
/// context.
async fn echo(req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let header = req.headers().get_all("x-request-id").iter().count();
    let ext = req.extensions().get::<RequestId>().cloned();
    let current = corrlog::request_id();
    assert_eq!(ext, current);
    assert_eq!(RequestContext::current().map(|c| c.id().clone()), current);
    let text = format!(
        "{header} {}",
        current.map(|c| c.to_string()).unwrap_or_default()
    );
    Ok(Response::new(Body::from(text)))
}

async fn body_text<B: http_body::Body>(res: Response<B>) -> String
where
    B::Error: std::fmt::Debug,
{
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A gRPC answer whose body ends without any status, or with trailers
/// that lack one after a status in the headers.
fn grpc_access_line(headers_status: Option<&'static str>) -> serde_json::Value {
    let logs = corrlog::testing::TestLogs::new();
    let svc = ServiceBuilder::new().layer(RequestLayer::new()).service_fn(
        move |_req: Request<Body>| async move {
            let mut res = Response::new(Full::from(Bytes::from_static(b"\0\0\0\0\0")));
            res.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/grpc"),
            );
            if let Some(code) = headers_status {
                res.headers_mut()
                    .insert("grpc-status", http::HeaderValue::from_static(code));
            }
            Ok::<_, Infallible>(res)
        },
    );
    let req = Request::builder()
        .uri("/pkg.Svc/Method")
        .header("content-type", "application/grpc")
        .header("x-request-id", "grpc-unit")
        .body(Body::default())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    logs.scope(|| {
        rt.block_on(async {
            let res = svc.oneshot(req).await.unwrap();
            res.into_body().collect().await.unwrap();
        })
    });
    let line = logs
        .lines_for("grpc-unit")
        .into_iter()
        .find(|l| l.contains("request finished"))
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

#[test]
fn a_grpc_answer_without_a_status_is_unknown_and_a_status_in_the_headers_stays() {
    let line = grpc_access_line(None);
    assert_eq!(line["grpc_status_name"], "UNKNOWN");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["messages_out"], 1);
    let line = grpc_access_line(Some("5"));
    assert_eq!(line["grpc_status_name"], "NOT_FOUND");
    assert_eq!(line["level"], "WARN");
}

#[tokio::test]
async fn works_on_a_plain_tower_service() {
    let svc = ServiceBuilder::new()
        .layer(RequestLayer::new())
        .service_fn(echo);
    let res = svc.clone().oneshot(request(Some("abc-1"))).await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-1");
    assert_eq!(body_text(res).await, "1 abc-1");

    let res = svc.oneshot(request(Some("not valid"))).await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);
    assert_eq!(body_text(res).await, format!("1 {id}"));
}

/// A service that panics inside `call` itself, before any future.
#[derive(Clone)]
struct PanicsInCall;

impl Service<Request<Body>> for PanicsInCall {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        panic!("panicked in call");
    }
}

#[tokio::test]
async fn a_panic_in_call_becomes_a_500_with_the_id() {
    let res = RequestLayer::new()
        .layer(PanicsInCall)
        .oneshot(request(Some("sync-panic")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["x-request-id"], "sync-panic");
    assert_eq!(body_text(res).await, "internal server error\n");
}

#[tokio::test]
async fn service_errors_pass_through_unchanged() {
    let svc = RequestLayer::new().layer(service_fn(|_: Request<Body>| {
        ready(Err::<Response<Body>, _>("inner failure"))
    }));
    let err = svc.oneshot(request(None)).await.unwrap_err();
    assert_eq!(err, "inner failure");
}

#[tokio::test]
async fn a_custom_response_header() {
    let svc = RequestLayer::new()
        .response_header(HeaderName::from_static("x-trace"))
        .layer(service_fn(|req: Request<Body>| async move {
            let seen = req.headers().get("x-trace").cloned();
            let removed = req.headers().get("x-request-id").is_none();
            assert!(removed, "incoming id headers are replaced");
            Ok::<_, Infallible>(Response::new(Body::from(format!("{seen:?}"))))
        }));
    let res = svc.oneshot(request(Some("t-1"))).await.unwrap();
    assert_eq!(res.headers()["x-trace"], "t-1");
    assert!(res.headers().get("x-request-id").is_none());
    assert_eq!(body_text(res).await, "Some(\"t-1\")");
}

#[test]
fn debug_output_names_the_configuration() {
    let text = format!("{:?}", RequestLayer::new().edge(true));
    assert!(text.contains("edge: true"), "{text}");
}
