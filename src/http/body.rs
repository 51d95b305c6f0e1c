use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use super::access::Record;
use super::grpc;
use crate::context::RequestContext;
use crate::panic::{catch_panic, log_caught_panic};

pin_project! {
    /// The response body of [`RequestService`](super::service::RequestService): polls the inner
    /// body inside the request context and span, so lines logged while a
    /// streaming body is produced carry the request id, and writes the
    /// access line when the body ends (or fails, or is dropped unfinished).
    ///
    /// A panic while producing the body is logged at ERROR and ends the
    /// body early.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
        ctx: RequestContext,
        span: Span,
        access: Option<Box<Record>>,
        is_grpc: bool,
    }

    impl<B> PinnedDrop for ResponseBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut access) = this.access.take() {
                let reason = (!access.complete_when_dropped()).then_some("client_disconnect");
                access.finish_in(this.ctx, this.span, reason);
            }
        }
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B: Body> Kind<B> {
    /// The body has ended: its next poll returns `None` (an inner body's
    /// `is_end_stream` promises that).
    fn is_ended(&self) -> bool {
        match self {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(
        body: B,
        ctx: RequestContext,
        span: Span,
        mut access: Option<Box<Record>>,
        is_grpc: bool,
    ) -> Self {
        // An empty body may never be polled: it has ended already.
        if body.is_end_stream() {
            if let Some(mut record) = access.take() {
                record.finish_in(&ctx, &span, None);
            }
        }
        if let (Some(record), Some(exact)) = (access.as_mut(), body.size_hint().exact()) {
            record.expected_bytes = Some(exact);
        }
        ResponseBody {
            kind: Kind::Inner { body },
            ctx,
            span,
            access,
            is_grpc,
        }
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn full(
        data: Bytes,
        ctx: RequestContext,
        span: Span,
        access: Option<Box<Record>>,
    ) -> Self {
        ResponseBody {
            kind: Kind::Full { data: Some(data) },
            ctx,
            span,
            access,
            is_grpc: false,
        }
    }

    /// A body with nothing in it, ended already: its access line is
    /// written now.
    pub(crate) fn empty(ctx: RequestContext, span: Span, access: Option<Box<Record>>) -> Self {
        if let Some(mut record) = access {
            record.finish_in(&ctx, &span, None);
        }
        ResponseBody {
            kind: Kind::Full { data: None },
            ctx,
            span,
            access: None,
            is_grpc: false,
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        // The last poll of a body that has ended, its access line written:
        // nothing will run that could log, so skip entering the context
        // and span (a task-local scope and a span enter and exit).
        if this.access.is_none() && this.kind.is_ended() {
            return Poll::Ready(None);
        }
        let span = &*this.span;
        let access = this.access;
        let kind = this.kind.as_mut();
        let polled = this.ctx.clone().run(|| {
            span.in_scope(|| {
                let (poll, ended) = match kind.project() {
                    KindProj::Full { data } => {
                        let frame = data.take().map(|d| Ok(Frame::data(d)));
                        (Poll::Ready(frame), true)
                    }
                    KindProj::Inner { mut body } => {
                        match catch_panic(|| body.as_mut().poll_frame(cx)) {
                            Ok(poll) => {
                                let ended =
                                    matches!(poll, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
                                        || body.is_end_stream();
                                (poll, ended)
                            }
                            Err(payload) => {
                                log_caught_panic(&payload);
                                if let Some(mut record) = access.take() {
                                    if let Some(rpc) = record.grpc.as_mut() {
                                        rpc.status = Some(grpc::INTERNAL);
                                    }
                                    record.finish(Some("body_panic"));
                                }
                                return None;
                            }
                        }
                    }
                };
                if let Some(record) = access.as_mut() {
                    if let Poll::Ready(Some(Ok(frame))) = &poll {
                        if let Some(data) = frame.data_ref() {
                            record.bytes_out += data.len() as u64;
                            if let Some(rpc) = record.grpc.as_mut() {
                                rpc.messages.feed(data);
                            }
                        } else if let (Some(trailers), Some(rpc)) =
                            (frame.trailers_ref(), record.grpc.as_mut())
                        {
                            if let Some(code) = grpc::status(trailers) {
                                rpc.status = Some(code);
                            }
                        }
                    }
                    if ended {
                        let reason = match &poll {
                            Poll::Ready(Some(Err(_))) => Some("body_error"),
                            _ => None,
                        };
                        if let Some(mut record) = access.take() {
                            record.finish(reason);
                        }
                    }
                }
                Some(poll)
            })
        });
        match polled {
            Some(poll) => poll,
            None => {
                this.kind.set(Kind::Full { data: None });
                if *this.is_grpc {
                    // The stream ends with a status the client can read.
                    let trailers = grpc::internal_error(this.ctx.id().as_str());
                    Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                } else {
                    Poll::Ready(None)
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.kind.is_ended()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
