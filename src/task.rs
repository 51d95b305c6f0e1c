//! Carrying the request context into new tasks and threads.
//!
//! tokio does not pass task-locals on to the tasks a task spawns, and a new
//! thread starts with nothing. These helpers capture the current request
//! context **and** the current `tracing` span where the work is created and
//! restore both where it runs:
//!
//! | instead of | use |
//! |---|---|
//! | `tokio::spawn(fut)` | [`crate::spawn`]`(fut)` |
//! | `tokio::task::spawn_blocking(f)` | [`crate::spawn_blocking`]`(f)` |
//! | a future you hand to something else | `fut.`[`in_current_request()`](FutureExt::in_current_request) |
//! | `std::thread::spawn(f)`, `rayon::spawn(f)` | `std::thread::spawn(`[`crate::task::capture`]`(f))` |
//!
//! Work started without them runs with no request: [`crate::request_id`]
//! returns `None` there and its lines carry no `request_id`. The id is
//! absent, never wrong.
//!
//! # Catching bare `tokio::spawn` with clippy
//!
//! Add to your crate's `clippy.toml`:
//!
//! ```toml
//! disallowed-methods = [
//!     { path = "tokio::spawn", reason = "use corrlog::spawn to keep the request id" },
//!     { path = "tokio::task::spawn", reason = "use corrlog::spawn to keep the request id" },
//!     { path = "tokio::task::spawn_blocking", reason = "use corrlog::spawn_blocking to keep the request id" },
//! ]
//! ```
//!
//! If you propagate with tracing's `.in_current_span()` instead, the lines
//! still carry the request id (the middleware's request span holds it), but
//! [`crate::request_id`] returns `None` there: prefer the helpers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::task::JoinHandle;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use crate::context::RequestContext;

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
pub trait FutureExt: Future + Sized {
    /// Binds this future to the current request context and span, so it
    /// keeps them wherever it is polled.
    ///
    /// ```
    /// use corrlog::task::FutureExt;
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
/// let job = corrlog::task::capture(|| corrlog::request_id());
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
