//! [`PropagateLayer`]: a tower layer for clients, injecting into every
//! request it sends.

use super::inject;

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
///     .layer(corrlog::propagate::PropagateLayer)
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
///     .layer(corrlog::propagate::PropagateLayer)
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
