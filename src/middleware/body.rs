use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracing::Span;

use super::future::panic_message;
use crate::context::RequestContext;

pin_project! {
    /// The response body of [`Corrlog`](super::Corrlog): polls the inner
    /// body inside the request context and span, so lines logged while a
    /// streaming body is produced carry the request id.
    ///
    /// A panic while producing the body is logged at ERROR and ends the
    /// body early.
    pub struct CorrlogBody<B> {
        #[pin]
        kind: Kind<B>,
        ctx: Option<RequestContext>,
        span: Span,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> fmt::Debug for CorrlogBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrlogBody").finish_non_exhaustive()
    }
}

impl<B> CorrlogBody<B> {
    pub(crate) fn new(body: B, ctx: RequestContext, span: Span) -> Self {
        CorrlogBody {
            kind: Kind::Inner { body },
            ctx: Some(ctx),
            span,
        }
    }

    pub(crate) fn full(data: Bytes) -> Self {
        CorrlogBody {
            kind: Kind::Full { data: Some(data) },
            ctx: None,
            span: Span::none(),
        }
    }
}

impl<B> Body for CorrlogBody<B>
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
        let body = match this.kind.as_mut().project() {
            KindProj::Full { data } => {
                return Poll::Ready(
                    data.take()
                        .filter(|d| !d.is_empty())
                        .map(|d| Ok(Frame::data(d))),
                )
            }
            KindProj::Inner { body } => body,
        };
        let span = &*this.span;
        let poll = move || {
            span.in_scope(
                || match catch_unwind(AssertUnwindSafe(|| body.poll_frame(cx))) {
                    Ok(poll) => Some(poll),
                    Err(payload) => {
                        tracing::error!(
                            target: "corrlog",
                            panic = panic_message(&payload),
                            "response body panicked; ending the body early"
                        );
                        None
                    }
                },
            )
        };
        let polled = match this.ctx {
            Some(ctx) => ctx.clone().run(poll),
            None => poll(),
        };
        match polled {
            Some(poll) => poll,
            None => {
                this.kind.set(Kind::Full { data: None });
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.as_ref().is_none_or(Bytes::is_empty),
        }
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
