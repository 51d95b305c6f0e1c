//! What every request goes through when it arrives, whichever way it
//! came in: [`begin`] settles its id (the id policy), its context, its
//! trace context and its access record. [`RequestService`](super::service::RequestService)
//! and [`Exchange`](super::Exchange) (which `corrlog-actix` drives) both
//! start a request here, so the rules live once.

use http::{HeaderValue, Request};
use tracing::{Level, Span};

use super::{grpc, Config};
use crate::context::trace as trace_context;
use crate::context::{RequestContext, TraceContext, REQUEST_SPAN_NAME, REQUEST_SPAN_TARGET};

/// What [`begin`] settles for a request.
pub(crate) struct Begun {
    pub(crate) ctx: RequestContext,
    /// The effective id as a header value, for the response.
    pub(crate) header_value: Option<HeaderValue>,
    /// A gRPC call to a service marked as serving gRPC
    /// ([`RequestLayer::grpc`](crate::RequestLayer::grpc)): until the
    /// service answers, the call is taken to be gRPC.
    pub(crate) is_grpc: bool,
    /// Whether to make the `request` span ([`RequestLayer::request_span`](crate::RequestLayer::request_span)).
    span: bool,
    /// The trace context, settled once the request span exists.
    #[cfg(feature = "opentelemetry")]
    pending: Option<TraceContext>,
    /// The layer's edge mode, for settling it.
    #[cfg(feature = "opentelemetry")]
    edge: bool,
}

impl Begun {
    /// Makes the request's `request` span, when one is wanted, inside the
    /// request's context, so the line layer can attach the context to the
    /// span (see `SpanRequest` in the layer) and `.in_current_span()`
    /// carries the id; then runs `f` in both (the caller's access record
    /// and handler call). One scope for the two: they need the context
    /// anyway. Without the span, `Span::none()`.
    pub(crate) fn in_request<R>(&mut self, f: impl FnOnce() -> R) -> (Span, R) {
        self.ctx.clone().run(|| {
            let span = if self.span {
                tracing::info_span!(target: REQUEST_SPAN_TARGET, REQUEST_SPAN_NAME)
            } else {
                Span::none()
            };
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
    let (incoming, refused) = match config.incoming_id(req.headers()) {
        Ok(incoming) => (Some(incoming), None),
        Err(refused) => (None, refused),
    };
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
    if let Some((header, reason)) = refused {
        if tracing::enabled!(target: "corrlog", Level::DEBUG) {
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
    let is_grpc = config.grpc && grpc::is_grpc(req.headers());

    Begun {
        ctx,
        header_value,
        is_grpc,
        span: config.request_span,
        #[cfg(feature = "opentelemetry")]
        pending,
        #[cfg(feature = "opentelemetry")]
        edge: config.edge,
    }
}
