//! Carrying the request context into new tasks and threads; see the
//! [`crate::context`] docs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::task::JoinHandle;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use super::RequestContext;

pin_project! {
    /// A future that runs inside a request context (if there was one where
    /// it was made) and inside the span current where it was made. Made by
    /// [`FutureExt::in_current_request`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct InRequest<F> {
        #[pin]
        inner: Scoped<Instrumented<F>>,
    }
}

pin_project! {
    #[project = ScopedProj]
    #[derive(Debug)]
    enum Scoped<F> {
        InContext { #[pin] fut: TaskLocalFuture<RequestContext, F> },
        Bare { #[pin] fut: F },
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project().inner.project() {
            ScopedProj::InContext { fut } => fut.poll(cx),
            ScopedProj::Bare { fut } => fut.poll(cx),
        }
    }
}

fn scoped<F: Future>(ctx: Option<RequestContext>, fut: F) -> InRequest<F> {
    let fut = fut.instrument(Span::current());
    InRequest {
        inner: match ctx {
            Some(ctx) => Scoped::InContext {
                fut: ctx.scope(fut),
            },
            None => Scoped::Bare { fut },
        },
    }
}

/// Extension methods for futures.
///
/// ```
/// use corrlog::context::FutureExt;
/// use corrlog::{RequestContext, RequestId};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let ctx = RequestContext::new(RequestId::new("r-9").unwrap());
/// let seen = async { corrlog::request_id() }.in_request(ctx).await;
/// assert_eq!(seen.unwrap().as_str(), "r-9");
/// # }
/// ```
pub trait FutureExt: Future + Sized {
    /// Binds this future to the current request context and span, so it
    /// keeps them wherever it is polled.
    ///
    /// ```
    /// use corrlog::context::FutureExt;
    /// # use corrlog::{RequestContext, RequestId};
    /// # #[tokio::main]
    /// # async fn main() {
    /// # RequestContext::new(RequestId::new("r-1").unwrap()).scope(async {
    /// let handle = tokio::spawn(async { corrlog::request_id() }.in_current_request());
    /// assert_eq!(handle.await.unwrap().unwrap().as_str(), "r-1");
    /// # }).await;
    /// # }
    /// ```
    fn in_current_request(self) -> InRequest<Self> {
        scoped(RequestContext::current(), self)
    }

    /// Runs this future in the given request context (and the current
    /// span).
    fn in_request(self, ctx: RequestContext) -> InRequest<Self> {
        scoped(Some(ctx), self)
    }
}

impl<F: Future> FutureExt for F {}

/// `tokio::spawn` that keeps the current request context and span.
///
/// ```
/// # use corrlog::{RequestContext, RequestId};
/// # #[tokio::main]
/// # async fn main() {
/// # RequestContext::new(RequestId::new("r-2").unwrap()).scope(async {
/// let seen = corrlog::spawn(async {
///     tokio::task::yield_now().await;
///     corrlog::request_id()
/// })
/// .await
/// .unwrap();
/// assert_eq!(seen.unwrap().as_str(), "r-2");
///
/// // A bare tokio::spawn sees no request, never another request's id.
/// let bare = tokio::spawn(async { corrlog::request_id() }).await.unwrap();
/// assert!(bare.is_none());
/// # }).await;
/// # }
/// ```
///
/// # Panics
///
/// Like `tokio::spawn`, panics outside a tokio runtime.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(fut.in_current_request())
}

/// `tokio::task::spawn_blocking` that keeps the current request context
/// and span, for sync code (a database driver, file I/O, CPU work).
///
/// ```
/// # use corrlog::{RequestContext, RequestId};
/// # #[tokio::main]
/// # async fn main() {
/// # RequestContext::new(RequestId::new("r-3").unwrap()).scope(async {
/// fn load_from_db() -> Option<corrlog::RequestId> {
///     tracing::info!("querying"); // carries the request id
///     corrlog::request_id()
/// }
/// let seen = corrlog::spawn_blocking(load_from_db).await.unwrap();
/// assert_eq!(seen.unwrap().as_str(), "r-3");
/// # }).await;
/// # }
/// ```
///
/// # Panics
///
/// Like `tokio::task::spawn_blocking`, panics outside a tokio runtime.
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(capture(f))
}

/// Wraps a closure so it runs with the request context and span current
/// where it was wrapped, on whatever thread calls it.
///
/// ```
/// # use corrlog::{RequestContext, RequestId};
/// # RequestContext::new(RequestId::new("r-4").unwrap()).run(|| {
/// let job = corrlog::context::capture(|| corrlog::request_id());
/// let seen = std::thread::spawn(job).join().unwrap();
/// assert_eq!(seen.unwrap().as_str(), "r-4");
/// # });
/// ```
pub fn capture<F, R>(f: F) -> impl FnOnce() -> R + Send + 'static
where
    F: FnOnce() -> R + Send + 'static,
{
    let ctx = RequestContext::current();
    let span = Span::current();
    move || {
        span.in_scope(|| match ctx {
            Some(ctx) => ctx.run(f),
            None => f(),
        })
    }
}
