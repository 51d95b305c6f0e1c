//! Request-correlation logging for tower and axum services, built on
//! `tracing`.
//!
//! Every HTTP request gets one id. Every log line written while serving it
//! carries that id as a top-level JSON field, without anyone passing it
//! around, and it never leaks into another request, however many run at
//! once on however many threads.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use corrlog::Preset;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let logging = corrlog::builder().preset(Preset::Production).init()?;
//!
//!     let app = Router::new()
//!         .route("/", get(|| async {
//!             tracing::info!("hello"); // {"...","message":"hello","request_id":"..."}
//!             "ok"
//!         }))
//!         .layer(logging.layer.clone());
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app)
//!         .with_graceful_shutdown(corrlog::shutdown_signal()) // Ctrl-C or SIGTERM
//!         .await?;
//!     logging.shutdown(std::time::Duration::from_secs(5)); // write out what is queued
//!     Ok(())
//! }
//! ```
//!
//! With a subscriber of your own, add a [`LogLayer`] to it and a
//! [`CorrlogLayer`] to the router:
//!
//! ```no_run
//! use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
//!
//! tracing_subscriber::registry()
//!     .with(corrlog::LogLayer::stdout()) // synchronous; see `pipeline` for a queue
//!     .init();
//! let app: axum::Router = axum::Router::new().layer(corrlog::CorrlogLayer::new());
//! ```
//!
//! # Concepts
//!
//! - [`middleware`]: the tower layer that picks the id (trusting a valid
//!   `x-request-id`, generating one otherwise), keeps the context current
//!   around the handler and the response body, and echoes the id on every
//!   response, panics included.
//! - [`context`]: the per-task [`RequestContext`]; read the id anywhere
//!   with [`request_id()`], add fields to every later line with [`bind()`].
//! - [`task`]: [`spawn`], [`spawn_blocking`] and friends carry the context
//!   into new tasks and threads. Without them the id is absent, never
//!   wrong.
//! - [`layer`]: the [`LogLayer`], a `tracing_subscriber` layer writing one
//!   flat JSON object per line; its docs specify the line schema.
//! - [`writer`]: where lines go ([`writer::Sink`]).
//! - [`id`]: [`RequestId`], the [`IdPolicy`] for incoming ids and the
//!   generators ([`UuidV4`], [`UuidV7`]).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | `RequestId` and `Option<RequestId>` as axum extractors |
//! | `log` | yes | records of crates using `log` go to the same lines, with the request id |
//! | `reqwest` | yes | `propagate::PropagateHeaders`, a `reqwest-middleware` middleware |
//! | `opentelemetry` | no | use the ids of an active OpenTelemetry span context |
//!
//! # Why not a `thread_local!`
//!
//! tokio's multi-thread runtime moves a task between worker threads at
//! every `.await`. A thread-local id is whatever request last ran on that
//! thread, so lines get other requests' ids. corrlog keeps the context per
//! task, and its tests run thousands of overlapping requests to show that
//! no line ever carries another request's id.

#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![forbid(unsafe_code)]

pub mod builder;
pub mod context;
mod encoder;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
pub mod id;
pub mod layer;
pub mod middleware;
pub mod pipeline;
pub mod propagate;
pub mod redact;
pub mod rolling;
pub mod task;
pub mod testing;
pub mod trace_context;
pub mod writer;

pub use builder::{builder, shutdown_signal, Format, Logging, Output, Preset};
pub use context::{bind, request_id, FieldValue, RequestContext};
pub use error::{Error, ErrorKind};
pub use id::{IdPolicy, InvalidRequestId, MakeRequestId, RequestId, UuidV4, UuidV7};
pub use layer::LogLayer;
pub use middleware::CorrlogLayer;
pub use pipeline::Backpressure;
pub use task::{spawn, spawn_blocking};

/// Compiles the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
