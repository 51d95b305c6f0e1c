//! The tower middleware: one id per request, a context around the whole
//! request (handler *and* response body), the id on every response.
//!
//! [`CorrlogLayer`] works for any tower service over `http` types: axum,
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
//! 4. inserts the [`RequestId`] into the request's extensions (read it
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
//! use corrlog::{CorrlogLayer, RequestId};
//!
//! async fn handler(id: RequestId) -> String {
//!     tracing::info!("handling"); // carries "request_id"
//!     format!("your request id is {id}")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(CorrlogLayer::new());
//! ```
//!
//! Customised: accept `x-correlation-id` too, and use time-ordered ids.
//!
//! ```
//! use corrlog::{CorrlogLayer, IdPolicy, UuidV7};
//! use http::HeaderName;
//!
//! let layer = CorrlogLayer::new()
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
//! internal systems trust. [`CorrlogLayer::edge`] always generates the
//! request id and keeps a valid client value as the bound field
//! `correlation_id`.
//!
//! # Errors from the inner service
//!
//! axum services never fail (`Error = Infallible`). A tower service that
//! returns `Err` has no response to put a header on: the error is passed
//! through unchanged.

mod access;
mod body;
mod future;
mod service;

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use tower_layer::Layer;

use crate::id::{IdPolicy, MakeRequestId, RequestId, UuidV4};
use crate::redact::Redaction;

pub use self::access::{AccessLog, ACCESS_TARGET};
pub use self::body::CorrlogBody;
pub use self::future::ResponseFuture;
pub use self::service::Corrlog;

/// The default header read and written: `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A tower [`Layer`] that gives each request an id and a logging context.
/// See the [module docs](crate::middleware).
#[derive(Clone)]
#[must_use]
pub struct CorrlogLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) headers: Vec<HeaderName>,
    pub(crate) response_header: HeaderName,
    pub(crate) policy: IdPolicy,
    pub(crate) make_id: Arc<dyn MakeRequestId>,
    pub(crate) edge: bool,
    pub(crate) access: AccessLog,
    pub(crate) redaction: Redaction,
    pub(crate) trace_context: bool,
}

impl fmt::Debug for CorrlogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrlogLayer")
            .field("headers", &self.config.headers)
            .field("response_header", &self.config.response_header)
            .field("policy", &self.config.policy)
            .field("edge", &self.config.edge)
            .field("access", &self.config.access)
            .finish_non_exhaustive()
    }
}

impl Default for CorrlogLayer {
    fn default() -> Self {
        CorrlogLayer::new()
    }
}

impl CorrlogLayer {
    /// The default: trust a valid `x-request-id`, generate UUID v4 ids
    /// otherwise, echo the id as `x-request-id`.
    pub fn new() -> Self {
        CorrlogLayer {
            config: Arc::new(Config {
                headers: vec![X_REQUEST_ID],
                response_header: X_REQUEST_ID,
                policy: IdPolicy::default(),
                make_id: Arc::new(UuidV4),
                edge: false,
                access: AccessLog::default(),
                redaction: Redaction::default(),
                trace_context: true,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The headers an incoming id is read from, in order of preference: the
    /// first one holding a valid id wins. Defaults to `x-request-id`.
    pub fn headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.config_mut().headers = headers.into_iter().collect();
        self
    }

    /// The header the id is written to, on the response and on the request
    /// passed inward. Defaults to `x-request-id`.
    pub fn response_header(mut self, header: HeaderName) -> Self {
        self.config_mut().response_header = header;
        self
    }

    /// The rule for trusting incoming ids. Defaults to
    /// [`IdPolicy::default`].
    pub fn policy(mut self, policy: IdPolicy) -> Self {
        self.config_mut().policy = policy;
        self
    }

    /// How new ids are made. Defaults to [`UuidV4`].
    pub fn make_request_id(mut self, make: impl MakeRequestId) -> Self {
        self.config_mut().make_id = Arc::new(make);
        self
    }

    /// Edge mode: never trust the client. Always generate the request id;
    /// keep a valid incoming value as the bound field `correlation_id`.
    /// An incoming `traceparent`/`tracestate` is ignored too: every request
    /// starts a new trace (an active OpenTelemetry context, which the
    /// service set up itself, is still used). Off by default.
    ///
    /// ```
    /// let layer = corrlog::CorrlogLayer::new().edge();
    /// ```
    pub fn edge(mut self) -> Self {
        self.config_mut().edge = true;
        self
    }
}

impl CorrlogLayer {
    /// Access log settings; see [`AccessLog`]. On by default.
    pub fn access_log(mut self, access: AccessLog) -> Self {
        self.config_mut().access = access;
        self
    }

    /// W3C Trace Context: continue the caller's trace from a valid
    /// `traceparent` (or start one) and put `trace_id` and `span_id` on
    /// every line of the request. On by default; see
    /// [`crate::trace_context`].
    pub fn trace_context(mut self, on: bool) -> Self {
        self.config_mut().trace_context = on;
        self
    }

    /// Turns the access log off.
    pub fn no_access_log(self) -> Self {
        self.access_log(AccessLog::disabled())
    }

    /// The redaction policy for what the access log takes from requests
    /// (query parameters, headers). Defaults to [`Redaction::default`];
    /// [`crate::builder()`] passes its own.
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        self.config_mut().redaction = redaction;
        self
    }
}

impl<S> Layer<S> for CorrlogLayer {
    type Service = Corrlog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Corrlog::new(inner, self.config.clone())
    }
}

impl Config {
    /// The first valid incoming id and its header value. A
    /// header present more than once is ambiguous and counts as invalid.
    pub(crate) fn incoming_id(&self, headers: &HeaderMap) -> Option<(RequestId, HeaderValue)> {
        self.headers.iter().find_map(|name| {
            let mut values = headers.get_all(name).iter();
            let first = values.next()?;
            if values.next().is_some() {
                return None;
            }
            let id = self.policy.parse(first.as_bytes())?;
            Some((id, first.clone()))
        })
    }
}

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

    use super::*;
    use crate::context::RequestContext;

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

    #[tokio::test]
    async fn works_on_a_plain_tower_service() {
        let svc = ServiceBuilder::new()
            .layer(CorrlogLayer::new())
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
        let res = CorrlogLayer::new()
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
        let svc = CorrlogLayer::new().layer(service_fn(|_: Request<Body>| {
            ready(Err::<Response<Body>, _>("inner failure"))
        }));
        let err = svc.oneshot(request(None)).await.unwrap_err();
        assert_eq!(err, "inner failure");
    }

    #[tokio::test]
    async fn a_custom_response_header() {
        let svc = CorrlogLayer::new()
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
        let text = format!("{:?}", CorrlogLayer::new().edge());
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

    use super::*;
    use crate::context::RequestContext;

    #[tokio::test]
    async fn an_active_opentelemetry_span_supplies_the_ids() {
        let mut svc = CorrlogLayer::new().layer(service_fn(|_req: Request<Full<Bytes>>| async {
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
