use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::access::Record;
use super::begin::{begin, Begun};
use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::Config;
use crate::panic::catch_panic;

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
