//! [`RequestLayer`]: the tower layer and its configuration.

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use tower_layer::Layer;

use super::service::RequestService;
use super::{AccessLog, IdPolicy};
#[cfg(doc)]
use crate::context::TraceParent;
use crate::context::{MakeRequestId, RequestId, UuidV4, X_REQUEST_ID};

/// A tower [`Layer`] that gives each request an id and a logging context.
/// See the [module docs](crate::http).
///
/// ```
/// use axum::{routing::get, Router};
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(corrlog::RequestLayer::new());
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequestLayer {
    pub(crate) config: Arc<Config>,
}

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) headers: Vec<HeaderName>,
    pub(crate) response_header: HeaderName,
    pub(crate) policy: IdPolicy,
    pub(crate) make_id: Arc<dyn MakeRequestId>,
    pub(crate) edge: bool,
    /// The service answers gRPC: a call that ends without a response is
    /// answered and logged as gRPC when its request is one.
    pub(crate) grpc: bool,
    pub(crate) access: AccessLog,
    pub(crate) trace_context: bool,
    /// Make the `request` span ([`RequestLayer::request_span`]).
    pub(crate) request_span: bool,
}

impl fmt::Debug for RequestLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLayer")
            .field("headers", &self.config.headers)
            .field("response_header", &self.config.response_header)
            .field("policy", &self.config.policy)
            .field("edge", &self.config.edge)
            .field("grpc", &self.config.grpc)
            .field("trace_context", &self.config.trace_context)
            .field("request_span", &self.config.request_span)
            .field("access", &self.config.access)
            .finish_non_exhaustive()
    }
}

impl Default for RequestLayer {
    fn default() -> Self {
        RequestLayer::new()
    }
}

impl RequestLayer {
    /// The default: trust a valid `x-request-id`, generate UUID v4 ids
    /// otherwise, echo the id as `x-request-id`, continue a valid
    /// `traceparent`, write an access line per request.
    ///
    /// ```
    /// let app: axum::Router = axum::Router::new().layer(corrlog::RequestLayer::new());
    /// ```
    pub fn new() -> Self {
        RequestLayer {
            config: Arc::new(Config {
                headers: vec![X_REQUEST_ID],
                response_header: X_REQUEST_ID,
                policy: IdPolicy::default(),
                make_id: Arc::new(UuidV4),
                edge: false,
                grpc: false,
                access: AccessLog::default(),
                trace_context: true,
                request_span: cfg!(feature = "opentelemetry"),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The headers an incoming id is read from, in order of preference: the
    /// first one holding a valid id wins. Defaults to `x-request-id`.
    ///
    /// ```
    /// use http::HeaderName;
    ///
    /// let layer = corrlog::RequestLayer::new().headers([
    ///     HeaderName::from_static("x-request-id"),
    ///     HeaderName::from_static("x-correlation-id"),
    /// ]);
    /// ```
    pub fn headers(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.config_mut().headers = headers.into_iter().collect();
        self
    }

    /// The header the id is written to, on the response, on the request
    /// passed inward, and on outgoing calls ([`inject`](crate::propagate::inject)). Defaults to
    /// `x-request-id`.
    ///
    /// ```
    /// use http::HeaderName;
    ///
    /// let layer = corrlog::RequestLayer::new()
    ///     .response_header(HeaderName::from_static("x-correlation-id"));
    /// ```
    pub fn response_header(mut self, header: HeaderName) -> Self {
        self.config_mut().response_header = header;
        self
    }

    /// The rule for trusting incoming ids. Defaults to
    /// [`IdPolicy::default`].
    ///
    /// ```
    /// use corrlog::http::IdPolicy;
    ///
    /// let layer = corrlog::RequestLayer::new().policy(IdPolicy::default().max_len(64));
    /// ```
    pub fn policy(mut self, policy: IdPolicy) -> Self {
        self.config_mut().policy = policy;
        self
    }

    /// How new ids are made. Defaults to [`UuidV4`].
    ///
    /// ```
    /// use corrlog::context::UuidV7;
    ///
    /// let layer = corrlog::RequestLayer::new().make_request_id(UuidV7);
    /// ```
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
    /// let layer = corrlog::RequestLayer::new().edge(true);
    /// ```
    pub fn edge(mut self, on: bool) -> Self {
        self.config_mut().edge = on;
        self
    }

    /// The wrapped service is a gRPC server (tonic). What a call is, gRPC
    /// or plain HTTP, is otherwise decided by what the service answers
    /// (the response's `content-type`), never by what the client claims;
    /// a call that ends with no response at all (its handler panicked, or
    /// the client went away first) has only the client's word, so it is
    /// taken only here. With it, a gRPC call whose handler panics is
    /// answered as gRPC (HTTP 200, `grpc-status` 13 `INTERNAL` with the id
    /// in its message); without it, every such call is answered HTTP 500,
    /// which a gRPC client reads as `UNKNOWN`. Off by default, so that a
    /// REST route answers a panic 500 whatever `content-type` a client
    /// sends.
    ///
    /// ```no_run
    /// # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
    /// tonic::transport::Server::builder()
    ///     .layer(corrlog::RequestLayer::new().grpc(true))
    ///     .add_routes(routes)
    ///     .serve("127.0.0.1:50051".parse()?)
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn grpc(mut self, on: bool) -> Self {
        self.config_mut().grpc = on;
        self
    }

    /// W3C Trace Context: continue the caller's trace from a valid
    /// `traceparent` (or start one) and put `trace_id` and `span_id` on
    /// every line of the request. On by default; see [`TraceParent`].
    ///
    /// ```
    /// let layer = corrlog::RequestLayer::new().trace_context(false);
    /// ```
    pub fn trace_context(mut self, on: bool) -> Self {
        self.config_mut().trace_context = on;
        self
    }

    /// Make a `request` span (target `corrlog`) for every request, for the
    /// subscriber's other layers: a `fmt` layer that prints span context,
    /// an error reporter that reads it. corrlog's own lines never need it
    /// (they read the request's context), so the span is off by default,
    /// except with the `opentelemetry` feature: `tracing-opentelemetry`
    /// exports it as the request's span, and the lines carry its ids.
    /// Creating, entering and closing the span costs about an eighth of
    /// corrlog's work per request.
    ///
    /// Without the span, `.in_current_span()` on a future the handler
    /// spawns carries no request: spawn with [`corrlog::spawn`](crate::spawn)
    /// or wrap the future in
    /// [`.in_request(ctx)`](crate::context::FutureExt::in_request), which
    /// carry the request's context with or without it.
    ///
    /// ```
    /// let layer = corrlog::RequestLayer::new().request_span(true);
    /// ```
    pub fn request_span(mut self, on: bool) -> Self {
        self.config_mut().request_span = on;
        self
    }

    /// Access log settings; see [`AccessLog`]. On by default; turn it off
    /// with `AccessLog::default().enabled(false)`.
    ///
    /// ```
    /// use corrlog::http::AccessLog;
    ///
    /// let layer = corrlog::RequestLayer::new()
    ///     .access_log(AccessLog::default().skip_prefix("/health"));
    /// let quiet = corrlog::RequestLayer::new()
    ///     .access_log(AccessLog::default().enabled(false));
    /// ```
    pub fn access_log(mut self, access: AccessLog) -> Self {
        self.config_mut().access = access;
        self
    }
}

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestService::new(inner, self.config.clone())
    }
}

/// Why an incoming id header was not taken. Never the value, which may
/// be hostile.
pub(crate) type Refused<'a> = (&'a HeaderName, &'static str);

impl Config {
    /// The first valid incoming id and its header value, in one walk of the
    /// configured headers. A header present more than once is ambiguous and
    /// counts as invalid. Without one: the first configured header that
    /// came and what was wrong with it, or `None` when none came at all.
    pub(crate) fn incoming_id(
        &self,
        headers: &HeaderMap,
    ) -> Result<(RequestId, HeaderValue), Option<Refused<'_>>> {
        let mut refused = None;
        for name in &self.headers {
            match self.policy.sole(headers.get_all(name).iter()) {
                Ok((id, value)) => return Ok((id, value.clone())),
                Err(None) => {}
                Err(Some(reason)) => refused = refused.or(Some((name, reason))),
            }
        }
        Err(refused)
    }
}
