//! [`RequestMiddleware`]: the actix-web middleware, its service and its
//! response future.

use std::fmt;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use corrlog::http::Exchange;
use corrlog::RequestLayer;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;
use crate::head;

/// The actix-web middleware: gives each request one id and a logging
/// context, exactly as [`corrlog::RequestLayer`] does for tower services,
/// and with the same configuration (pass a configured layer, or the one
/// [`corrlog::Logging::request_layer`] returns).
///
/// For each request it
///
/// 1. picks the id with the layer's policy (headers, validation, edge
///    mode): a valid `x-request-id` is kept, anything else is replaced by a
///    new id and never logged or echoed;
/// 2. continues a valid W3C `traceparent` or starts a trace;
/// 3. keeps the request context and `request` span current on every poll
///    of the handler *and* of the response body;
/// 4. leaves one id header, the effective id, on the request, and the
///    id in its extensions (the [`RequestId`](crate::RequestId) extractor);
/// 5. sets `x-request-id` on every response: errors, 404s, and panics,
///    which are caught, logged at ERROR and answered with a 500 that
///    carries the id, on a connection that stays open;
/// 6. writes the access line when the body has been sent, with the same
///    fields and reasons as for tower (`route` is actix's match pattern).
///
/// ```
/// use actix_web::{web, App};
/// use corrlog_actix::RequestMiddleware;
///
/// let app = App::new()
///     .wrap(RequestMiddleware::new())
///     .route("/", web::get().to(|| async {
///         tracing::info!("handling"); // carries "request_id"
///         "ok"
///     }));
/// ```
///
/// With the layer's configuration:
///
/// ```
/// use actix_web::App;
/// use corrlog::RequestLayer;
/// use corrlog_actix::RequestMiddleware;
///
/// let app = App::new().wrap(RequestMiddleware::from(RequestLayer::new().edge(true)));
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequestMiddleware {
    shared: Arc<Shared>,
}

/// The layer, and its header names as actix spells them (converted once).
struct Shared {
    layer: RequestLayer,
    incoming: Vec<HeaderName>,
    response: Option<HeaderName>,
}

impl fmt::Debug for RequestMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMiddleware")
            .field("layer", &self.shared.layer)
            .finish()
    }
}

impl Default for RequestMiddleware {
    fn default() -> Self {
        RequestMiddleware::new()
    }
}

impl RequestMiddleware {
    /// With [`RequestLayer::new`]'s defaults.
    ///
    /// ```
    /// let app = actix_web::App::new().wrap(corrlog_actix::RequestMiddleware::new());
    /// ```
    pub fn new() -> Self {
        RequestMiddleware::from(RequestLayer::new())
    }
}

impl From<RequestLayer> for RequestMiddleware {
    fn from(layer: RequestLayer) -> Self {
        let incoming = layer.id_headers().iter().filter_map(head::name).collect();
        let response = head::name(layer.id_header_name());
        RequestMiddleware {
            shared: Arc::new(Shared {
                layer,
                incoming,
                response,
            }),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequestService<S>;
    type InitError = ();
    type Future = Ready<Result<RequestService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestService {
            service: Rc::new(service),
            shared: self.shared.clone(),
        }))
    }
}

/// The service [`RequestMiddleware`] wraps an actix service in.
pub struct RequestService<S> {
    service: Rc<S>,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for RequestService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestService").finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RequestService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<ResponseBody<B>>;
    type Error = actix_web::Error;
    type Future = ResponseFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let mut http_head = head::request_head(&req);
        let mut exchange = self.shared.layer.exchange(&mut http_head);
        // The handler sees what a tower service would: one id header.
        let id_header = exchange
            .id_header()
            .and_then(|(_, value)| Some((self.shared.response.clone()?, head::value(value)?)));
        let headers = req.headers_mut();
        for name in &self.shared.incoming {
            headers.remove(name);
        }
        if let Some((name, value)) = &id_header {
            headers.insert(name.clone(), value.clone());
        }
        req.extensions_mut().insert(exchange.id().clone());
        // From the app's resource map, so it is known even when the handler
        // panics and no response comes back to read it from.
        if let Some(route) = req.match_pattern() {
            exchange.set_route(&route);
        }

        // Routing runs synchronously in `call`: inside the context too,
        // and a panic there is caught like one in the handler.
        let service = &self.service;
        let fut = exchange.catch_handler(|| service.call(req));
        ResponseFuture {
            fut,
            exchange: Some(exchange),
            id_header,
        }
    }
}

pin_project! {
    /// The response future of [`RequestService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        fut: Option<F>,
        exchange: Option<Exchange>,
        id_header: Option<(HeaderName, HeaderValue)>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B> Future for ResponseFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<ResponseBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let Some(exchange) = this.exchange.as_mut() else {
            // Polled after completion.
            return Poll::Pending;
        };
        let outcome = match this.fut.as_mut().as_pin_mut() {
            Some(fut) => match exchange.catch_handler(|| fut.poll(cx)) {
                Some(Poll::Pending) => return Poll::Pending,
                Some(Poll::Ready(result)) => Some(result),
                None => None,
            },
            // `call` panicked.
            None => None,
        };
        // Drop the handler's future inside the request context.
        let mut fut = this.fut;
        exchange.catch_handler(|| fut.set(None));
        let id_header = this.id_header.take();
        let Some(mut exchange) = this.exchange.take() else {
            return Poll::Pending;
        };
        match outcome {
            Some(Ok(mut res)) => {
                if let Some((name, value)) = id_header {
                    res.headers_mut().insert(name, value);
                }
                let status = res.status().as_u16();
                Poll::Ready(Ok(
                    res.map_body(|_, body| ResponseBody::new(body, exchange, status))
                ))
            }
            // An error from an inner middleware: actix makes its response
            // outside this middleware, so the error carries the id header
            // there; its access line (the error's status) is written now.
            Some(Err(err)) => {
                let status = err.as_response_error().status_code().as_u16();
                exchange.responded(status, None);
                exchange.end();
                Poll::Ready(Err(WithId { err, id_header }.into()))
            }
            // A panic, caught and logged: a 500 with the id, made outside
            // this middleware from the error.
            None => {
                exchange.responded(500, Some(INTERNAL_ERROR.len() as u64));
                exchange.sent(INTERNAL_ERROR.len() as u64);
                exchange.end();
                Poll::Ready(Err(Panicked { id_header }.into()))
            }
        }
    }
}

/// What a client gets when the handler panicked.
const INTERNAL_ERROR: &str = "internal server error\n";

/// A handler panic, answered as a 500 that carries the id.
#[derive(Debug)]
struct Panicked {
    id_header: Option<(HeaderName, HeaderValue)>,
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request handler panicked")
    }
}

impl ResponseError for Panicked {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::InternalServerError();
        res.insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"));
        if let Some(id) = &self.id_header {
            res.insert_header(id.clone());
        }
        res.body(INTERNAL_ERROR)
    }
}

/// An inner service's error, answered as actix would, plus the id header.
struct WithId {
    err: actix_web::Error,
    id_header: Option<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for WithId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.err, f)
    }
}

impl fmt::Display for WithId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.err, f)
    }
}

impl ResponseError for WithId {
    fn status_code(&self) -> StatusCode {
        self.err.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = self.err.error_response();
        if let Some((name, value)) = &self.id_header {
            res.headers_mut().insert(name.clone(), value.clone());
        }
        res
    }
}
