//! The request path without tower: [`Exchange`], what
//! [`RequestService`](super::service::RequestService) does for a request, as calls
//! any framework's middleware can make (`corrlog-actix` is built on it).
//! It starts the request with [`begin`], as the tower service does.

use std::fmt;

use http::{HeaderName, HeaderValue, Request};
use tracing::Span;

use super::access::Record;
use super::begin::begin;
use super::layer::RequestLayer;
use crate::context::{RequestContext, RequestId};
use crate::panic::{catch_panic, log_caught_panic};

/// One request on its way through a framework that is not tower-based:
/// the same id, context, span, trace context, access line and panic
/// handling as [`RequestLayer`] gives a tower service, driven by calls from
/// the framework's middleware. Made by [`RequestLayer::exchange`].
///
/// An integration
///
/// 1. turns the framework's request head into an `http::Request` and calls
///    [`RequestLayer::exchange`], which rewrites its id headers: the
///    framework's request gets the same ([`RequestLayer::id_headers`] are
///    removed, [`Exchange::id_header`] is set) and the [`RequestId`];
/// 2. polls the handler inside [`Exchange::catch_handler`], which makes the
///    context and span current and turns a panic into an ERROR line and a
///    `None` (answer 500 with the id);
/// 3. reports the response with [`Exchange::responded`], sets
///    [`Exchange::id_header`] on it, and keeps the exchange with the
///    response body;
/// 4. polls the body inside [`Exchange::catch_body`], reports what it sent
///    with [`Exchange::sent`], and its end with [`Exchange::end`] or
///    [`Exchange::end_with_error`].
///
/// Dropped before [`Exchange::end`], the exchange writes the access line
/// with the reason `cancelled` (no response yet) or `client_disconnect`
/// (the body was not all sent).
///
/// ```
/// use corrlog::RequestLayer;
///
/// let layer = RequestLayer::new();
/// let mut req = http::Request::builder()
///     .uri("/orders/7")
///     .header("x-request-id", "abc-123")
///     .body(())
///     .unwrap();
/// let mut exchange = layer.exchange(&mut req);
/// assert_eq!(exchange.id().as_str(), "abc-123");
///
/// // The handler runs inside the request context; a panic is caught.
/// let seen = exchange.catch_handler(|| corrlog::request_id());
/// assert_eq!(seen.flatten().unwrap().as_str(), "abc-123");
/// assert!(exchange.catch_handler(|| panic!("handler bug")).is_none());
///
/// exchange.responded(500, Some(0));
/// let (name, value) = exchange.id_header().unwrap();
/// assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-request-id", "abc-123"));
/// exchange.end(); // the access line: status 500, reason "panic"
/// ```
#[must_use = "an exchange writes the access line when it ends or is dropped"]
pub struct Exchange {
    ctx: RequestContext,
    span: Span,
    header: Option<(HeaderName, HeaderValue)>,
    access: Option<Box<Record>>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("id", self.ctx.id())
            .finish_non_exhaustive()
    }
}

impl RequestLayer {
    /// Starts an [`Exchange`] for a framework that is not tower-based:
    /// picks the id, rewrites `req`'s id headers to the one effective id,
    /// inserts the [`RequestId`] extension, and starts the access record.
    /// The request's extensions may hold its peer's `SocketAddr`, for the
    /// access line's `client_ip`.
    ///
    /// ```
    /// let mut req = http::Request::new(());
    /// let exchange = corrlog::RequestLayer::new().exchange(&mut req);
    /// assert_eq!(req.headers()["x-request-id"], exchange.id().as_str());
    /// # drop(exchange);
    /// ```
    pub fn exchange<B>(&self, req: &mut Request<B>) -> Exchange {
        let mut begun = begin(&self.config, req);
        let (span, access) = begun.in_request(|| Record::start(&self.config, req, false));
        Exchange {
            ctx: begun.ctx,
            span,
            header: begun
                .header_value
                .map(|v| (self.config.response_header.clone(), v)),
            access,
        }
    }

    /// The headers an incoming id is read from. [`RequestLayer::exchange`]
    /// removes them all from the request before it sets
    /// [`Exchange::id_header`]; an integration does the same to its own
    /// request type.
    ///
    /// ```
    /// let layer = corrlog::RequestLayer::new();
    /// assert_eq!(layer.id_headers(), [corrlog::http::X_REQUEST_ID]);
    /// ```
    pub fn id_headers(&self) -> &[HeaderName] {
        &self.config.headers
    }

    /// The header [`Exchange::id_header`] names: the one the effective id
    /// is written to, on the request passed inward and on the response.
    /// Fixed for the layer, so an integration can convert it once.
    ///
    /// ```
    /// use http::HeaderName;
    ///
    /// let layer = corrlog::RequestLayer::new()
    ///     .response_header(HeaderName::from_static("x-correlation-id"));
    /// assert_eq!(layer.id_header_name(), "x-correlation-id");
    /// ```
    pub fn id_header_name(&self) -> &HeaderName {
        &self.config.response_header
    }
}

impl Exchange {
    /// The request's id.
    pub fn id(&self) -> &RequestId {
        self.ctx.id()
    }

    /// The request's context: current inside [`Exchange::catch_handler`]
    /// and [`Exchange::catch_body`].
    pub fn context(&self) -> &RequestContext {
        &self.ctx
    }

    /// The request's span (target `corrlog`, name `request`), or
    /// `Span::none()` when the layer makes none
    /// ([`RequestLayer::request_span`](crate::RequestLayer::request_span)).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// The header carrying the effective id, for the request passed inward
    /// and for the response.
    pub fn id_header(&self) -> Option<(&HeaderName, &HeaderValue)> {
        self.header.as_ref().map(|(name, value)| (name, value))
    }

    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let span = &self.span;
        self.ctx.clone().run(|| span.in_scope(f))
    }

    /// Runs `f` (a poll of the handler, or a synchronous call into the
    /// framework) inside the request's context and span. A panic is caught:
    /// it is logged at ERROR with its message, the access line will have
    /// status 500 and reason `panic`, and `None` is returned, for the
    /// integration to answer 500 (with [`Exchange::id_header`]).
    pub fn catch_handler<R>(&mut self, f: impl FnOnce() -> R) -> Option<R> {
        let outcome = self.run(|| catch_panic(f).map_err(|payload| log_caught_panic(&payload)));
        match outcome {
            Ok(value) => Some(value),
            Err(()) => {
                if let Some(access) = self.access.as_mut() {
                    access.status = Some(500);
                    access.set_reason("panic");
                }
                None
            }
        }
    }

    /// Runs `f` (a poll of the response body) inside the request's context
    /// and span. A panic is caught: it is logged at ERROR, the access line
    /// is written with reason `body_panic`, and `None` is returned, for the
    /// integration to end the body.
    pub fn catch_body<R>(&mut self, f: impl FnOnce() -> R) -> Option<R> {
        let outcome = self.run(|| catch_panic(f).map_err(|payload| log_caught_panic(&payload)));
        match outcome {
            Ok(value) => Some(value),
            Err(()) => {
                self.finish(Some("body_panic"));
                None
            }
        }
    }

    /// The response has begun: its status and, when known, the exact body
    /// length (a body dropped once that much has gone out is complete, not
    /// a disconnect).
    pub fn responded(&mut self, status: u16, body_len: Option<u64>) {
        if let Some(access) = self.access.as_mut() {
            access.status = Some(status);
            access.expected_bytes = body_len;
        }
    }

    /// The matched route, for the access line's `route`, when the
    /// framework knows it (`/orders/{order_id}`).
    pub fn set_route(&mut self, route: &str) {
        if let Some(access) = self.access.as_mut() {
            access.set_route(route);
        }
    }

    /// `bytes` more of the response body went out.
    pub fn sent(&mut self, bytes: u64) {
        if let Some(access) = self.access.as_mut() {
            access.bytes_out += bytes;
        }
    }

    /// The response body ended normally: the access line is written.
    pub fn end(&mut self) {
        self.finish(None);
    }

    /// The response body failed: the access line is written with reason
    /// `body_error`.
    pub fn end_with_error(&mut self) {
        self.finish(Some("body_error"));
    }

    fn finish(&mut self, reason: Option<&'static str>) {
        if let Some(mut access) = self.access.take() {
            access.finish_in(&self.ctx, &self.span, reason);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let reason = match &self.access {
            None => return,
            Some(access) if !access.responded() => Some("cancelled"),
            Some(access) if access.complete_when_dropped() => None,
            Some(_) => Some("client_disconnect"),
        };
        self.finish(reason);
    }
}
