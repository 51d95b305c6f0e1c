use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use tower_service::Service;

use super::access::Record;
use super::body::ResponseBody;
use super::future::ResponseFuture;
use super::{grpc, trace_context, Config};
use crate::context::{RequestContext, TraceContext, REQUEST_SPAN_NAME, REQUEST_SPAN_TARGET};
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
        let incoming = config.incoming_id(req.headers());
        let trusted = !config.edge && incoming.is_some();
        let (id, header_value, correlation) = match incoming {
            // Reuse the incoming header value: no copy.
            Some((id, value)) if trusted => (id, Some(value), None),
            _ => {
                let id = config.make_id.make_request_id();
                let value = HeaderValue::from_str(id.as_str()).ok();
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
        // With the `opentelemetry` feature the trace is settled once the
        // request span exists: tracing-opentelemetry, when installed, gives
        // that span the ids it will be exported with.
        #[cfg(feature = "opentelemetry")]
        let (trace, pending) = (None, trace);
        let ctx = RequestContext::with_trace(id.clone(), trace, config.response_header.clone());
        if let Some(correlation) = &correlation {
            ctx.bind("correlation_id", correlation);
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

        // Created inside the context so the JSON layer can attach it to the
        // span (see `SpanRequest` in the layer).
        let span = ctx
            .clone()
            .run(|| tracing::info_span!(target: REQUEST_SPAN_TARGET, REQUEST_SPAN_NAME));
        #[cfg(feature = "opentelemetry")]
        if let Some(trace) = pending {
            ctx.set_trace(trace_context::exported_span_ids(&span, trace, config.edge));
        }

        // Routing and handler set-up may run synchronously inside `call`:
        // do it in the context too, and catch a panic there like one in the
        // future.
        let inner = &mut self.inner;
        let (access, called) = ctx.clone().run(|| {
            span.in_scope(|| {
                let access = Record::start(&self.config, &req, is_grpc);
                (access, catch_panic(|| inner.call(req)))
            })
        });

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
