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
//! A tonic server takes the layer marked as serving gRPC
//! (`tonic::transport::Server::builder().layer(RequestLayer::new().grpc(true))`).
//! A call is gRPC when the service answers it as one (`content-type:
//! application/grpc`, alone, `+proto` or any codec), whatever the layer's
//! mark; a call that gets no answer (its handler panicked, or it was
//! cancelled first) is taken as gRPC by its request's `content-type` only
//! under [`RequestLayer::grpc`](crate::RequestLayer::grpc), so a client cannot turn a REST route's
//! 500 into a gRPC answer. A gRPC call:
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
//!   panic (under [`RequestLayer::grpc`](crate::RequestLayer::grpc); without it, HTTP 500); a panic while a response stream is produced ends the stream
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
mod begin;
mod body;
mod exchange;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod grpc;
mod id_policy;
pub(crate) mod layer;
pub mod service;

pub use self::access::{AccessLog, ClientIpHeader};
pub use self::exchange::Exchange;
#[cfg(feature = "axum")]
pub use self::extract::MissingRequestId;
pub use self::id_policy::IdPolicy;
pub(crate) use self::layer::Config;
pub use crate::context::id::DEFAULT_MAX_LEN;
pub use crate::context::request::{ACCESS_TARGET, X_REQUEST_ID};
pub use ipnet::IpNet;

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
