//! The types a [`RequestLayer`](crate::RequestLayer) wraps a service in.
//!
//! You name them only in type signatures, for instance a function that
//! returns the wrapped service; everything to configure is on
//! `RequestLayer`.
//!
//! ```
//! use std::convert::Infallible;
//! use corrlog::http::service::RequestService;
//! use tower::{service_fn, Layer};
//!
//! type Inner = tower::util::ServiceFn<fn(http::Request<String>) -> std::future::Ready<Result<http::Response<String>, Infallible>>>;
//!
//! fn wrapped(inner: Inner) -> RequestService<Inner> {
//!     corrlog::RequestLayer::new().layer(inner)
//! }
//! # let _ = wrapped(service_fn(|_| std::future::ready(Ok(http::Response::new(String::new())))));
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::access::Record;
use super::begin::{begin, Begun};
use super::Config;
use crate::panic::catch_panic;

pub use super::body::ResponseBody;
pub use super::future::ResponseFuture;

/// The service made by [`RequestLayer`](crate::RequestLayer). See the
/// [module docs](crate::http).
///
/// ```
/// use tower_layer::Layer;
///
/// let service = corrlog::RequestLayer::new().layer(tower::service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// }));
/// let _inner = service.get_ref();
/// ```
#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for RequestService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestService").finish_non_exhaustive()
    }
}

impl<S> RequestService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        RequestService { inner, config }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let config = &*self.config;
        let mut begun = begin(config, &mut req);
        let is_grpc = begun.is_grpc;

        // Routing and handler set-up may run synchronously inside `call`:
        // do it in the context and span too, and catch a panic there like
        // one in the future.
        let inner = &mut self.inner;
        let (span, (access, called)) = begun.in_request(|| {
            let access = Record::start(&self.config, &req, is_grpc);
            (access, catch_panic(|| inner.call(req)))
        });

        let Begun {
            ctx, header_value, ..
        } = begun;
        ResponseFuture::new(
            called,
            ctx,
            span,
            header_value.map(|v| (config.response_header.clone(), v)),
            access,
            is_grpc,
        )
    }
}
