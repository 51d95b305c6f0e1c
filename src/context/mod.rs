//! The per-request context: the [`RequestId`] plus the fields bound during
//! the request, kept **per task**, never per thread.
//!
//! tokio moves a task between worker threads at every `.await`, so an id
//! kept in a `thread_local!` is whatever request last ran on that thread.
//! corrlog keeps the context in a tokio task-local that the HTTP layer sets
//! around every poll of the request's future and of its response body. Any
//! code running on the request's task, async or plain sync, at any depth,
//! reads it with [`request_id`](crate::request_id) or [`RequestContext::current`].
//!
//! Outside a request (a background job, a task started with a bare
//! `tokio::spawn`) there is no context: [`request_id`](crate::request_id) returns `None`, never
//! a stale id. To carry the context into new tasks and threads, use the
//! helpers in [`crate::spawn`], [`crate::spawn_blocking`] and [`capture`].
//!
//! ```
//! use corrlog::{RequestContext, RequestId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(corrlog::request_id(), None);
//!
//! let ctx = RequestContext::new(RequestId::new("req-1").unwrap());
//! ctx.scope(async {
//!     corrlog::bind("user_id", 42);
//!     assert_eq!(corrlog::request_id().unwrap().as_str(), "req-1");
//!     deeper_sync_code();
//! })
//! .await;
//!
//! fn deeper_sync_code() {
//!     // No parameter passed down: the id is found from the task.
//!     assert_eq!(corrlog::request_id().unwrap().as_str(), "req-1");
//! }
//! # }
//! ```
//!
//! # Spawning
//!
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
//! | `std::thread::spawn(f)`, `rayon::spawn(f)` | `std::thread::spawn(`[`capture`]`(f))` |
//!
//! Work started without them runs with no request: [`crate::request_id`]
//! returns `None` there and its lines carry no `request_id`. The id is
//! absent, never wrong.
//!
//! ## Catching bare `tokio::spawn` with clippy
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
//! carry the request id only when the HTTP layer makes its `request` span
//! ([`RequestLayer::request_span`](crate::RequestLayer::request_span), off
//! by default without the `opentelemetry` feature), and
//! [`crate::request_id`] returns `None` there either way: prefer the
//! helpers.
//!
//! # Trace context
//!
//! A request's place in a W3C trace is its [`TraceContext`], read from an
//! incoming `traceparent` header ([`TraceParent`]) or started anew. The
//! [`crate::propagate`] module carries both the id and the trace on to the
//! calls and messages a request makes.

pub(crate) mod buffer;
pub(crate) mod id;
pub(crate) mod request;
pub(crate) mod spawn;
pub(crate) mod trace;

pub(crate) use self::id::RequestId;
pub use self::id::{InvalidRequestId, MakeRequestId, UuidV4, UuidV7};
pub(crate) use self::request::X_REQUEST_ID;
pub(crate) use self::request::{
    BoundField, FieldValue, RequestContext, ACCESS_TARGET, REQUEST_SPAN_NAME, REQUEST_SPAN_TARGET,
};
pub use self::spawn::{capture, FutureExt, InRequest};
pub(crate) use self::trace::write_hex;
pub use self::trace::{
    TraceContext, TraceParent, MAX_TRACESTATE_BYTES, MAX_TRACESTATE_MEMBERS, TRACEPARENT,
    TRACESTATE,
};
