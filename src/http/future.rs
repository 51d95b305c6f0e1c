use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tracing::Span;

use super::access::{Record, Rpc};
use super::body::ResponseBody;
use super::grpc;
use crate::context::RequestContext;
use crate::panic::{catch_panic, log_caught_panic, PanicPayload};

pin_project! {
    /// The response future of [`RequestService`](super::service::RequestService): polls the inner
    /// future inside the request context and span, catches panics, and sets
    /// the id header on the response.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RequestContext, Guarded<F>>,
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// Runs inside the context and the request span: everything it logs
    /// carries the id.
    struct Guarded<F> {
        #[pin]
        fut: Option<F>,
        call_panic: Option<PanicPayload>,
        ctx: RequestContext,
        span: Span,
        header: Option<(HeaderName, HeaderValue)>,
        access: Option<Box<Record>>,
        is_grpc: bool,
    }

    impl<F> PinnedDrop for Guarded<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before a response: the client went away, or an outer
            // timeout gave up.
            if let Some(mut access) = this.access.take() {
                access.finish_in(this.ctx, this.span, Some("cancelled"));
            }
        }
    }
}

impl<F, B, E> ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes>,
{
    pub(crate) fn new(
        called: Result<F, PanicPayload>,
        ctx: RequestContext,
        span: Span,
        header: Option<(HeaderName, HeaderValue)>,
        access: Option<Box<Record>>,
        is_grpc: bool,
    ) -> Self {
        let (fut, call_panic) = match called {
            Ok(fut) => (Some(fut), None),
            Err(payload) => (None, Some(payload)),
        };
        let guarded = Guarded {
            fut,
            call_panic,
            ctx: ctx.clone(),
            span,
            header,
            access,
            is_grpc,
        };
        ResponseFuture {
            inner: ctx.scope(guarded),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F, B, E> Future for Guarded<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let outcome = {
            // Inside the request span, like `Instrument`, without a second
            // handle to it.
            let _entered = this.span.enter();
            let outcome = match this.fut.as_mut().as_pin_mut() {
                Some(fut) => match catch_panic(|| fut.poll(cx)) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(result)) => Ok(result),
                    Err(payload) => Err(payload),
                },
                None => match this.call_panic.take() {
                    Some(payload) => Err(payload),
                    // Polled after completion: keep failing loudly like any
                    // future would, but through a 500, not a panic.
                    None => {
                        Err(Box::new("response future polled after completion") as PanicPayload)
                    }
                },
            };
            // Drop the inner future here, inside the request context.
            this.fut.set(None);
            if let Err(payload) = &outcome {
                log_caught_panic(payload);
            }
            outcome
        };
        let mut access = this.access.take();
        // The future is done with its span: hand it on to the body rather
        // than cloning it (a clone and a close fewer per request).
        let span = std::mem::replace(this.span, Span::none());

        let mut response = match outcome {
            Ok(Ok(response)) => {
                if let Some(access) = access.as_mut() {
                    access.status = Some(response.status().as_u16());
                    access.expected_bytes = response
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok());
                }
                // What the service answered decides whether the call is
                // gRPC, not what the client claimed.
                let is_grpc = grpc::is_grpc(response.headers());
                if let Some(access) = access.as_mut() {
                    access.grpc = is_grpc.then(|| Rpc {
                        // A trailers-only response: the call ended here.
                        status: grpc::status(response.headers()),
                        ..access.grpc.take().unwrap_or_default()
                    });
                }
                let ctx = this.ctx.clone();
                response.map(|body| ResponseBody::new(body, ctx, span, access, is_grpc))
            }
            Ok(Err(err)) => {
                if let Some(mut access) = access {
                    span.in_scope(|| access.finish(Some("service_error")));
                }
                return Poll::Ready(Err(err));
            }
            Err(_) if *this.is_grpc => {
                // gRPC answers 200 with the status in a trailers-only
                // response.
                if let Some(access) = access.as_mut() {
                    access.status = Some(200);
                    access.set_reason("panic");
                    if let Some(rpc) = access.grpc.as_mut() {
                        rpc.status = Some(grpc::INTERNAL);
                    }
                }
                let mut response =
                    Response::new(ResponseBody::empty(this.ctx.clone(), span, access));
                let headers = response.headers_mut();
                headers.extend(grpc::internal_error(this.ctx.id().as_str()));
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/grpc"),
                );
                response
            }
            Err(_) => {
                if let Some(access) = access.as_mut() {
                    access.status = Some(500);
                    access.set_reason("panic");
                }
                let mut response = Response::new(ResponseBody::full(
                    Bytes::from_static(b"internal server error\n"),
                    this.ctx.clone(),
                    span,
                    access,
                ));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                response
            }
        };
        if let Some((name, value)) = this.header.take() {
            response.headers_mut().insert(name, value);
        }
        Poll::Ready(Ok(response))
    }
}
