//! The response body: polled inside the request's context, counted, and
//! the end of the access line.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;
use corrlog::http::Exchange;
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of [`RequestService`](crate::RequestService): each
    /// poll of the inner body runs inside the request's context and span,
    /// so lines logged while a streaming body is produced carry the id. The
    /// access line is written when the body ends, fails, or is dropped
    /// before its end (`client_disconnect`). A panic while producing the
    /// body is logged at ERROR and ends the body early (`body_panic`).
    pub struct ResponseBody<B> {
        #[pin]
        body: B,
        exchange: Option<Exchange>,
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl<B: MessageBody> ResponseBody<B> {
    pub(crate) fn new(body: B, mut exchange: Exchange, status: u16) -> Self {
        let len = match body.size() {
            BodySize::None => Some(0),
            BodySize::Sized(n) => Some(n),
            BodySize::Stream => None,
        };
        exchange.responded(status, len);
        ResponseBody {
            body,
            exchange: Some(exchange),
        }
    }
}

impl<B: MessageBody> MessageBody for ResponseBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let body = this.body;
        // `None`: ended already (or panicked): the body stays ended.
        let Some(exchange) = this.exchange.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = exchange.catch_body(|| body.poll_next(cx));
        match polled {
            Some(Poll::Pending) => Poll::Pending,
            Some(Poll::Ready(Some(Ok(bytes)))) => {
                exchange.sent(bytes.len() as u64);
                Poll::Ready(Some(Ok(bytes)))
            }
            Some(Poll::Ready(Some(Err(err)))) => {
                exchange.end_with_error();
                *this.exchange = None;
                Poll::Ready(Some(Err(err)))
            }
            Some(Poll::Ready(None)) => {
                exchange.end();
                *this.exchange = None;
                Poll::Ready(None)
            }
            None => {
                // The panic is logged and the line written: end the body.
                *this.exchange = None;
                Poll::Ready(None)
            }
        }
    }
}
