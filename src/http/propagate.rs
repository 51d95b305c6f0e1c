//! Outgoing propagation: the current request's id (and `traceparent`) on
//! the calls the service makes, so one user action can be followed across
//! services.
//!
//! [`inject`] fills any `http::HeaderMap` (hyper, tonic, any client); with
//! the `reqwest` feature, [`PropagateHeaders`] does it for every request of
//! a `reqwest_middleware` client. Outside a request nothing is added. The
//! id travels in the header the service reads it from (`x-request-id` by
//! default; see [`RequestLayer::response_header`](crate::RequestLayer::response_header)).
//!
//! ```
//! use corrlog::{RequestContext, RequestId};
//! use http::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! assert!(!corrlog::http::inject(&mut headers)); // not in a request
//!
//! RequestContext::new(RequestId::new("req-42").unwrap()).run(|| {
//!     corrlog::http::inject(&mut headers);
//! });
//! assert_eq!(headers["x-request-id"], "req-42");
//! ```

use http::{HeaderMap, HeaderValue};

use super::trace_context::{TRACEPARENT, TRACESTATE};
use crate::context::RequestContext;

/// Adds the current request's propagation headers to `headers`: its id,
/// and `traceparent` (and `tracestate`) when the request has a trace.
/// Replaces values already there. Returns `false`, adding nothing, outside
/// a request.
pub fn inject(headers: &mut HeaderMap) -> bool {
    match RequestContext::current() {
        Some(ctx) => {
            inject_from(&ctx, headers);
            true
        }
        None => false,
    }
}

/// Like [`inject`], for a given context.
///
/// ```
/// use corrlog::{RequestContext, RequestId};
///
/// let ctx = RequestContext::new(RequestId::new("req-7").unwrap());
/// let mut headers = http::HeaderMap::new();
/// corrlog::http::inject_from(&ctx, &mut headers);
/// assert_eq!(headers["x-request-id"], "req-7");
/// ```
pub fn inject_from(ctx: &RequestContext, headers: &mut HeaderMap) {
    if let Some(value) = ctx.id().header_value() {
        headers.insert(ctx.header_name().clone(), value);
    }
    if let Some(trace) = ctx.trace() {
        if let Ok(value) = HeaderValue::from_str(&trace.traceparent()) {
            headers.insert(TRACEPARENT, value);
        }
        match trace.tracestate().map(HeaderValue::from_str) {
            Some(Ok(value)) => {
                headers.insert(TRACESTATE, value);
            }
            _ => {
                headers.remove(TRACESTATE);
            }
        }
    }
}

/// The current request's propagation headers, empty outside a request.
///
/// ```
/// assert!(corrlog::http::propagation_headers().is_empty()); // not in a request
/// ```
pub fn propagation_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    inject(&mut headers);
    headers
}

/// A tower layer for clients over `http` types (tonic's `Channel`, a hyper
/// client): every request it sends carries the current request's id and
/// `traceparent`, as [`inject`] adds them, read on the caller's task when
/// the request is handed to the client. Outside a request nothing is added.
///
/// A tonic client wraps its channel (any generated client takes it):
///
/// ```
/// use tonic_health::pb::health_client::HealthClient;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let channel = tower::ServiceBuilder::new()
///     .layer(corrlog::http::PropagateLayer)
///     .service(channel);
/// let client = HealthClient::new(channel);
/// # drop(client);
/// # }
/// ```
///
/// Any tower service over `http::Request`:
///
/// ```
/// use tower::{Service, ServiceExt};
/// use corrlog::{RequestContext, RequestId};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = tower::service_fn(|req: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(req.headers()["x-request-id"].clone())
/// });
/// let mut client = tower::ServiceBuilder::new()
///     .layer(corrlog::http::PropagateLayer)
///     .service(client);
/// let ctx = RequestContext::new(RequestId::new("req-9").unwrap());
/// let sent = ctx
///     .scope(async { client.ready().await?.call(http::Request::new(())).await })
///     .await
///     .unwrap();
/// assert_eq!(sent, "req-9");
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateLayer;

impl<S> tower_layer::Layer<S> for PropagateLayer {
    type Service = PropagateService<S>;

    fn layer(&self, inner: S) -> PropagateService<S> {
        PropagateService { inner }
    }
}

/// The service made by [`PropagateLayer`].
#[derive(Debug, Clone)]
pub struct PropagateService<S> {
    inner: S,
}

impl<S> PropagateService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for PropagateService<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        inject(req.headers_mut());
        self.inner.call(req)
    }
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_support::PropagateHeaders;

#[cfg(feature = "reqwest")]
mod reqwest_support {
    use std::future::Future;
    use std::pin::Pin;

    use http::Extensions;
    use reqwest_middleware::{Middleware, Next, Result};

    use crate::context::RequestContext;

    /// A `reqwest_middleware` middleware that adds the current request's
    /// id and `traceparent` to every outgoing request (feature `reqwest`).
    ///
    /// ```
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(corrlog::http::PropagateHeaders)
    ///     .build();
    /// # drop(client);
    /// ```
    #[derive(Debug, Clone, Copy, Default)]
    pub struct PropagateHeaders;

    impl Middleware for PropagateHeaders {
        fn handle<'a, 'b, 'c, 'd>(
            &'a self,
            mut req: reqwest::Request,
            extensions: &'b mut Extensions,
            next: Next<'c>,
        ) -> Pin<Box<dyn Future<Output = Result<reqwest::Response>> + Send + 'd>>
        where
            'a: 'd,
            'b: 'd,
            'c: 'd,
            Self: 'd,
        {
            // Read the context now, on the caller's task.
            if let Some(ctx) = RequestContext::current() {
                super::inject_from(&ctx, req.headers_mut());
            }
            Box::pin(next.run(req, extensions))
        }
    }
}
