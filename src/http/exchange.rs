//! The request path without tower: what [`RequestService`](super::RequestService)
//! does for a request, as calls any framework's middleware can make.
//! [`RequestService`](super::RequestService) and `corrlog-actix` both start
//! a request with [`begin`]; the id policy, the context, the trace context,
//! the access record and its line, and redaction all live here and below,
//! once.

use std::fmt;

use http::{HeaderName, HeaderValue, Request};
use tracing::{Level, Span};

use super::access::Record;
use super::layer::RequestLayer;
use super::{grpc, Config};
use crate::context::trace as trace_context;
use crate::context::{
    RequestContext, RequestId, TraceContext, REQUEST_SPAN_NAME, REQUEST_SPAN_TARGET,
};
use crate::panic::{catch_panic, log_caught_panic};

/// What [`begin`] settles for a request.
pub(crate) struct Begun {
    pub(crate) ctx: RequestContext,
    /// The effective id as a header value, for the response.
    pub(crate) header_value: Option<HeaderValue>,
    pub(crate) is_grpc: bool,
    /// The trace context, settled once the request span exists.
    #[cfg(feature = "opentelemetry")]
    pending: Option<TraceContext>,
    /// The layer's edge mode, for settling it.
    #[cfg(feature = "opentelemetry")]
    edge: bool,
}

impl Begun {
    /// Makes the request's `request` span inside the request's context,
    /// so the line layer can attach the context to the span (see
    /// `SpanRequest` in the layer) and `.in_current_span()` carries the id;
    /// then runs `f` in both (the caller's access record and handler call).
    /// One scope for the two: they need the context anyway.
    pub(crate) fn in_request<R>(&mut self, f: impl FnOnce() -> R) -> (Span, R) {
        self.ctx.clone().run(|| {
            let span = tracing::info_span!(target: REQUEST_SPAN_TARGET, REQUEST_SPAN_NAME);
            // With the `opentelemetry` feature the trace is settled once the
            // request span exists: tracing-opentelemetry, when installed,
            // gives that span the ids it will be exported with.
            #[cfg(feature = "opentelemetry")]
            if let Some(trace) = self.pending.take() {
                self.ctx
                    .set_trace(trace_context::exported_span_ids(&span, trace, self.edge));
            }
            let out = span.in_scope(f);
            (span, out)
        })
    }
}

/// Picks the request's id (the policy, edge mode), settles its trace
/// context, makes its context, and leaves on the request exactly one id
/// header, the effective id, plus the [`RequestId`] extension. The span
/// comes next, inside the context: [`Begun::in_request`].
pub(crate) fn begin<B>(config: &Config, req: &mut Request<B>) -> Begun {
    let incoming = config.incoming_id(req.headers());
    let taken = incoming.is_some();
    let trusted = !config.edge && taken;
    let (id, header_value, correlation) = match incoming {
        // Reuse the incoming header value: no copy.
        Some((id, value)) if trusted => (id, Some(value), None),
        _ => {
            let id = config.make_id.make_request_id();
            let value = id.header_value();
            (id, value, incoming.map(|(id, _)| id))
        }
    };
    let trace = config.trace_context.then(|| {
        #[cfg(feature = "opentelemetry")]
        if let Some(otel) = trace_context::from_opentelemetry() {
            return otel;
        }
        if config.edge {
            TraceContext::new_root()
        } else {
            trace_context::continue_or_start(req.headers())
        }
    });
    // With the `opentelemetry` feature the trace is settled in
    // `Begun::in_request`.
    #[cfg(feature = "opentelemetry")]
    let (trace, pending) = (None, trace);
    let ctx = RequestContext::with_trace(id.clone(), trace, config.response_header.clone());
    if let Some(correlation) = &correlation {
        ctx.bind("correlation_id", correlation);
    }
    if !taken && tracing::enabled!(target: "corrlog", Level::DEBUG) {
        if let Some((header, reason)) = config.refused_id(req.headers()) {
            ctx.clone().run(|| {
                tracing::debug!(
                    target: "corrlog",
                    header = header.as_str(),
                    reason,
                    "incoming request id replaced"
                );
            });
        }
    }

    // The inner service sees exactly one id header: the effective id.
    // Nothing to change when it already arrived that way.
    let unchanged =
        trusted && config.headers.len() == 1 && config.headers[0] == config.response_header;
    if !unchanged {
        let headers = req.headers_mut();
        for name in &config.headers {
            headers.remove(name);
        }
        if let Some(value) = &header_value {
            headers.insert(config.response_header.clone(), value.clone());
        }
    }
    req.extensions_mut().insert(id);
    let is_grpc = grpc::is_grpc(req.headers());

    Begun {
        ctx,
        header_value,
        is_grpc,
        #[cfg(feature = "opentelemetry")]
        pending,
        #[cfg(feature = "opentelemetry")]
        edge: config.edge,
    }
}

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

    /// The request's span (target `corrlog`, name `request`).
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

#[cfg(test)]
mod tests {
    use http::{HeaderName, Request};
    use serde_json::Value;

    use super::Exchange;
    use crate::context::RequestId;
    use crate::testing::TestLogs;
    use crate::RequestLayer;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut req = Request::builder().uri("/orders/7?x=1");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap()
    }

    /// Runs `f` on an exchange for a request with `headers`, under a
    /// capture; returns the request as the inner service would see it and
    /// the request's lines, parsed.
    fn drive(
        layer: RequestLayer,
        headers: &[(&str, &str)],
        f: impl FnOnce(&mut Exchange),
    ) -> (Request<()>, String, Vec<Value>) {
        let logs = TestLogs::new();
        let mut req = request(headers);
        let id = logs.scope(|| {
            let mut exchange = layer.exchange(&mut req);
            f(&mut exchange);
            let id = exchange.id().to_string();
            drop(exchange);
            id
        });
        let lines = logs
            .lines_for(&id)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (req, id, lines)
    }

    fn access(lines: &[Value]) -> &Value {
        let access: Vec<_> = lines
            .iter()
            .filter(|l| l["message"] == "request finished")
            .collect();
        assert_eq!(access.len(), 1, "{lines:#?}");
        access[0]
    }

    fn header_values<'a>(req: &'a Request<()>, name: &str) -> Vec<&'a str> {
        req.headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn a_trusted_id_is_kept_on_the_request_the_extension_and_the_response() {
        let (req, id, _) = drive(RequestLayer::new(), &[("x-request-id", "ok-1")], |ex| {
            let (name, value) = ex.id_header().unwrap();
            assert_eq!(
                (name.as_str(), value.to_str().unwrap()),
                ("x-request-id", "ok-1")
            );
            assert_eq!(ex.context().id().as_str(), "ok-1");
            assert_eq!(
                format!("{ex:?}"),
                r#"Exchange { id: RequestId("ok-1"), .. }"#
            );
        });
        assert_eq!(id, "ok-1");
        assert_eq!(header_values(&req, "x-request-id"), ["ok-1"]);
        assert_eq!(
            req.extensions().get::<RequestId>().map(RequestId::as_str),
            Some("ok-1")
        );
    }

    #[test]
    fn an_invalid_id_is_replaced_on_the_request_too() {
        let (req, id, lines) = drive(RequestLayer::new(), &[("x-request-id", "bad id")], |ex| {
            ex.responded(200, Some(0));
        });
        assert_eq!(id.len(), 36);
        assert_eq!(header_values(&req, "x-request-id"), [id.as_str()]);
        assert!(access(&lines).get("correlation_id").is_none());
    }

    #[test]
    fn headers_are_rewritten_whenever_the_request_did_not_arrive_as_it_leaves() {
        // Trusted, but read from a header that is not the response header.
        let layer = RequestLayer::new()
            .headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-correlation-id"),
            ])
            .response_header(HeaderName::from_static("x-trace"));
        let (req, id, _) = drive(
            layer.clone(),
            &[
                ("x-request-id", "not valid"),
                ("x-correlation-id", "corr-1"),
            ],
            |_| {},
        );
        assert_eq!(id, "corr-1");
        assert!(header_values(&req, "x-request-id").is_empty());
        assert!(header_values(&req, "x-correlation-id").is_empty());
        assert_eq!(header_values(&req, "x-trace"), ["corr-1"]);
        assert_eq!(
            layer.id_headers(),
            [
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-correlation-id")
            ]
        );
        // One trusted header that is also the response header, but more
        // headers configured: the others are removed.
        let layer = RequestLayer::new().headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-correlation-id"),
        ]);
        let (req, _, _) = drive(
            layer,
            &[("x-request-id", "ok-2"), ("x-correlation-id", "other")],
            |_| {},
        );
        assert!(header_values(&req, "x-correlation-id").is_empty());
        assert_eq!(header_values(&req, "x-request-id"), ["ok-2"]);
    }

    #[test]
    fn edge_mode_generates_and_keeps_the_client_value_as_correlation_id() {
        let (req, id, lines) = drive(
            RequestLayer::new().edge(true),
            &[("x-request-id", "client-1")],
            |ex| ex.responded(204, None),
        );
        assert_ne!(id, "client-1");
        assert_eq!(header_values(&req, "x-request-id"), [id.as_str()]);
        assert_eq!(access(&lines)["correlation_id"], "client-1");
    }

    /// "Why isn't my id kept?" has an answer at DEBUG, without the value.
    #[test]
    fn a_replaced_id_says_why_at_debug() {
        let replaced = |headers: &[(&str, &str)]| {
            let (_, id, lines) = drive(RequestLayer::new(), headers, |ex| ex.end());
            let said: Vec<&Value> = lines
                .iter()
                .filter(|l| l["message"] == "incoming request id replaced")
                .collect();
            assert!(said
                .iter()
                .all(|l| l["level"] == "DEBUG" && l["request_id"] == id.as_str()));
            assert!(
                !lines.iter().any(|l| l.to_string().contains("bad id")),
                "{lines:#?}"
            );
            said.iter()
                .map(|l| l["reason"].as_str().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            replaced(&[("x-request-id", "bad id")]),
            ["not a valid request id"]
        );
        assert_eq!(
            replaced(&[("x-request-id", "bad id"), ("x-request-id", "good-id")]),
            ["sent more than once"]
        );
        // Kept, or never sent: nothing to say.
        assert!(replaced(&[("x-request-id", "good-id")]).is_empty());
        assert!(replaced(&[]).is_empty());
    }

    #[test]
    fn the_handler_runs_in_the_context_and_span_and_a_panic_is_a_500() {
        let (_, _, lines) = drive(RequestLayer::new(), &[("x-request-id", "h-1")], |ex| {
            let seen = ex.catch_handler(|| {
                tracing::info!("in handler");
                (
                    crate::request_id().map(|id| id.to_string()),
                    tracing::Span::current().metadata().map(|m| m.name()),
                )
            });
            assert_eq!(seen, Some((Some("h-1".to_owned()), Some("request"))));
            assert_eq!(ex.span().metadata().map(|m| m.name()), Some("request"));
            assert!(ex.catch_handler(|| panic!("handler bug")).is_none());
            ex.sent(22);
            ex.end();
        });
        assert!(lines.iter().any(|l| l["message"] == "in handler"));
        // One ERROR line for the panic, one for the access line.
        let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0]["message"], "handler bug");
        assert_eq!(errors[0]["logger"], "corrlog::panic");
        assert_eq!(errors[0]["request_id"], "h-1");
        let line = access(&lines);
        assert_eq!(line["status"], 500);
        assert_eq!(line["reason"], "panic");
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["bytes_out"], 22);
    }

    #[test]
    fn a_body_panic_writes_the_line_at_once() {
        let (_, _, lines) = drive(RequestLayer::new(), &[("x-request-id", "b-1")], |ex| {
            ex.responded(200, None);
            assert_eq!(ex.catch_body(|| 5), Some(5));
            assert!(ex.catch_body(|| panic!("body bug")).is_none());
            // Written already: nothing more.
            ex.end_with_error();
        });
        let errors: Vec<_> = lines.iter().filter(|l| l["level"] == "ERROR").collect();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0]["message"], "body bug");
        assert_eq!(errors[0]["logger"], "corrlog::panic");
        assert_eq!(access(&lines)["reason"], "body_panic");
    }

    #[test]
    fn how_the_exchange_ends_names_the_reason() {
        let end = |f: fn(&mut Exchange)| {
            let (_, _, lines) = drive(RequestLayer::new(), &[], f);
            access(&lines).clone()
        };
        // Routed and sent in full, in parts.
        let line = end(|ex| {
            ex.set_route("/orders/{id}");
            ex.responded(200, Some(7));
            ex.sent(3);
            ex.sent(4);
            ex.end();
        });
        assert_eq!(line["route"], "/orders/{id}");
        assert_eq!(line["bytes_out"], 7);
        assert_eq!(line["path"], "/orders/7");
        assert!(line.get("reason").is_none());
        assert_eq!(line["level"], "INFO");
        // A streamed body (no length) that ended.
        let line = end(|ex| {
            ex.responded(200, None);
            ex.sent(5);
            ex.end();
        });
        assert!(line.get("reason").is_none(), "{line}");
        // Dropped once the declared length went out: complete.
        let line = end(|ex| {
            ex.responded(200, Some(4));
            ex.sent(4);
        });
        assert!(line.get("reason").is_none(), "{line}");
        // Dropped short of it: the client went away.
        let line = end(|ex| {
            ex.responded(200, Some(10));
            ex.sent(4);
        });
        assert_eq!(line["reason"], "client_disconnect");
        assert_eq!(line["level"], "WARN");
        // Dropped before any response.
        let line = end(|_| {});
        assert_eq!(line["reason"], "cancelled");
        assert!(line["status"].is_null());
        // A failed body.
        let line = end(|ex| {
            ex.responded(200, None);
            ex.end_with_error();
        });
        assert_eq!(line["reason"], "body_error");
        assert_eq!(line["status"], 200);
    }
}
