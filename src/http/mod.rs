//! The HTTP stage: [`RequestLayer`](crate::RequestLayer), the tower
//! middleware that gives each request one id, keeps a context around the
//! whole request (handler *and* response body), sets the id on every
//! response and writes the access line; and outgoing propagation.
//!
//! `RequestLayer` works for any tower service over `http` types: axum,
//! tonic, plain hyper. For each request it
//!
//! 1. picks the id: the first configured header (default `x-request-id`)
//!    whose value passes the [`IdPolicy`]; a header sent
//!    twice counts as invalid. Otherwise a new id is generated (UUID v4 by
//!    default). A rejected value is never logged or echoed;
//! 2. makes a [`RequestContext`](crate::RequestContext) and keeps it
//!    current on every poll of the inner service's future and of the
//!    response body, so lines logged while a streaming body is produced
//!    carry the id too;
//! 3. opens a `request` span (target `corrlog`) carrying the context, so
//!    futures propagated with tracing's `in_current_span()` keep the id;
//! 4. inserts the [`RequestId`](crate::RequestId) into the request's extensions (read it
//!    with the axum extractor, or anywhere with [`crate::request_id`]), and
//!    replaces the incoming id headers with one header holding the
//!    effective id;
//! 5. sets the response header (default `x-request-id`) on **every**
//!    response: handler errors, rejections, 404s, and panics, which are
//!    caught, logged at ERROR with the panic message and turned into a
//!    `500` so the server keeps serving.
//!
//! When the response body has been sent (or failed, or the client went
//! away), one access line is logged; see [`AccessLog`].
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use corrlog::{RequestLayer, RequestId};
//!
//! async fn handler(id: RequestId) -> String {
//!     tracing::info!("handling"); // carries "request_id"
//!     format!("your request id is {id}")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(RequestLayer::new());
//! ```
//!
//! Customised: accept `x-correlation-id` too, and use time-ordered ids.
//!
//! ```
//! use corrlog::context::UuidV7;
//! use corrlog::http::IdPolicy;
//! use corrlog::RequestLayer;
//! use http::HeaderName;
//!
//! let layer = RequestLayer::new()
//!     .headers([
//!         HeaderName::from_static("x-request-id"),
//!         HeaderName::from_static("x-correlation-id"),
//!     ])
//!     .policy(IdPolicy::default().max_len(64))
//!     .make_request_id(UuidV7);
//! ```
//!
//! # Edge mode
//!
//! A service facing the internet should not let clients choose ids that
//! internal systems trust. [`RequestLayer::edge`](crate::RequestLayer::edge) always generates the
//! request id and keeps a valid client value as the bound field
//! `correlation_id`.
//!
//! # Trace context
//!
//! A valid incoming W3C `traceparent` is continued (same trace id, a new
//! span id for this hop); anything else starts a new trace. Every line of
//! the request carries `trace_id` and `span_id`. Parsing rules:
//! [`TraceParent`](crate::context::TraceParent).
//!
//! # Across services
//!
//! Calls the service makes carry the request id (in the header it reads it
//! from) and a `traceparent` naming this hop: see [`crate::propagate`]
//! for HTTP clients, tower and tonic clients, reqwest, queue messages and
//! SQL statements.
//!
//! # gRPC
//!
//! A tonic server takes the layer as it is
//! (`tonic::transport::Server::builder().layer(RequestLayer::new())`), and
//! a request with `content-type: application/grpc` (alone, `+proto` or any
//! codec) is treated as a gRPC call:
//!
//! - the id comes from and goes back in the `x-request-id` metadata, with
//!   the same policy as any header; it is on error statuses too, so
//!   `status.metadata()` has it on the client;
//! - the access line's `route` is the RPC, `/package.Service/Method`, and
//!   it adds `grpc_status` (the code, from the trailers or a trailers-only
//!   response), `grpc_status_name` (`NOT_FOUND`) and `messages_out` (the
//!   messages in the response: 1 for a unary call, the count for a
//!   stream). `status` stays the HTTP status, 200;
//! - the line's level follows the gRPC status through the HTTP status it
//!   corresponds to (the `google.rpc.Code` mapping), so
//!   [`AccessLog::levels`] applies as for HTTP:
//!
//! | gRPC status | as HTTP | level by default |
//! |---|---|---|
//! | `OK` | 200 | INFO |
//! | `CANCELLED` | 499 | WARN |
//! | `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, `OUT_OF_RANGE` | 400 | WARN |
//! | `UNAUTHENTICATED` | 401 | WARN |
//! | `PERMISSION_DENIED` | 403 | WARN |
//! | `NOT_FOUND` | 404 | WARN |
//! | `ALREADY_EXISTS`, `ABORTED` | 409 | WARN |
//! | `RESOURCE_EXHAUSTED` | 429 | WARN |
//! | `UNKNOWN`, `INTERNAL`, `DATA_LOSS`, codes beyond 16 | 500 | ERROR |
//! | `UNIMPLEMENTED` | 501 | ERROR |
//! | `UNAVAILABLE` | 503 | ERROR |
//! | `DEADLINE_EXCEEDED` | 504 | ERROR |
//!
//!   A `grpc-status` that is not one of the codes 0 to 16, or a call
//!   answered 200 that ends without one, counts as `UNKNOWN`;
//! - a panic in a handler is logged at ERROR and answered with `INTERNAL`
//!   (HTTP 200, trailers-only) whose message names the request id, not the
//!   panic; a panic while a response stream is produced ends the stream
//!   with `INTERNAL` trailers the same way. A stream the client cancels
//!   gets the `client_disconnect` reason, as for HTTP;
//! - the context is current while the response stream is polled, so the
//!   lines of a server-streaming handler's items carry the id.
//!
//! A tonic client propagates the id and `traceparent` with
//! [`PropagateLayer`](crate::propagate::PropagateLayer) around its channel. gRPC-Web (`application/grpc-web`)
//! carries its status in the body and is treated as plain HTTP. See
//! `examples/grpc_demo.rs`.
//!
//! # Other frameworks
//!
//! A framework that is not tower-based gets the same request path through
//! [`Exchange`]: [`RequestLayer::exchange`](crate::RequestLayer::exchange)
//! picks the id, settles the trace context and starts the access record
//! from an `http::Request`; the integration then runs the handler and the
//! body inside [`Exchange::catch_handler`] and [`Exchange::catch_body`] and
//! reports the response. The `corrlog-actix` crate does this for
//! actix-web.
//!
//! # Errors from the inner service
//!
//! axum services never fail (`Error = Infallible`). A tower service that
//! returns `Err` has no response to put a header on: the error is passed
//! through unchanged.

pub(crate) mod access;
mod body;
mod exchange;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod grpc;
mod id_policy;
pub(crate) mod layer;
mod service;

pub use self::access::{AccessLog, ClientIpHeader};
pub use self::body::ResponseBody;
pub use self::exchange::Exchange;
#[cfg(feature = "axum")]
pub use self::extract::MissingRequestId;
pub use self::future::ResponseFuture;
pub use self::id_policy::IdPolicy;
pub(crate) use self::layer::Config;
pub use self::service::RequestService;
pub use crate::context::id::DEFAULT_MAX_LEN;
pub use crate::context::request::{ACCESS_TARGET, X_REQUEST_ID};
pub use ipnet::IpNet;

#[cfg(test)]
mod tests {
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

    use super::layer::RequestLayer;
    use crate::context::{RequestContext, RequestId};

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
        let current = crate::request_id();
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
        let logs = crate::testing::TestLogs::new();
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
}

#[cfg(all(test, feature = "opentelemetry"))]
mod otel_tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::Full;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use tower::{service_fn, ServiceExt};

    use tower_layer::Layer;

    use super::layer::RequestLayer;
    use crate::context::RequestContext;

    #[tokio::test]
    async fn an_active_opentelemetry_span_supplies_the_ids() {
        let mut svc = RequestLayer::new().layer(service_fn(|_req: Request<Full<Bytes>>| async {
            let ctx = RequestContext::current().unwrap();
            let trace = ctx.trace().unwrap();
            let text = format!("{} {}", trace.trace_id_hex(), trace.span_id_hex());
            Ok::<_, Infallible>(Response::new(Full::from(text)))
        }));
        let sc = SpanContext::new(
            TraceId::from_bytes([7; 16]),
            SpanId::from_bytes([9; 8]),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = opentelemetry::Context::current().with_remote_span_context(sc);
        let req = Request::builder()
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(Full::default())
            .unwrap();
        // The OpenTelemetry context is active while the request arrives.
        let svc = svc.ready().await.unwrap();
        let fut = {
            let _guard = cx.attach();
            tower_service::Service::call(svc, req)
        };
        let res = fut.await.unwrap();
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(
            body,
            format!("{} {}", "07".repeat(16), "09".repeat(8)).as_bytes()
        );
    }
}
