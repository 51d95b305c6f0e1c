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
//! use corrlog::Format;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let logging = corrlog::builder().format(Format::Json).init()?;
//!
//!     let app = Router::new()
//!         .route("/", get(|| async {
//!             tracing::info!("hello"); // {"...","message":"hello","request_id":"..."}
//!             "ok"
//!         }))
//!         .layer(logging.request_layer());
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
//! [`RequestLayer`] to the router:
//!
//! ```no_run
//! use std::time::Duration;
//! use corrlog::output::Pipeline;
//! use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
//!
//! let (pipeline, guard) = Pipeline::builder(std::io::stdout()).start();
//! tracing_subscriber::registry()
//!     .with(corrlog::LogLayer::new(pipeline)) // I/O on the pipeline's thread
//!     .init();
//! let app: axum::Router = axum::Router::new().layer(corrlog::RequestLayer::new());
//! // ... serve ...
//! guard.shutdown(Duration::from_secs(5));
//! ```
//!
//! # How a request becomes a line
//!
//! One module per stage. Dependencies point one way: set-up wires the
//! others; [`fmt`] builds on [`context`]; [`output`] implements the
//! [`fmt::Sink`] the formatting stage writes to; [`http`] builds on
//! [`context`] and hands its access line to [`fmt`]; [`propagate`] builds
//! on [`context`] and the id policy of [`http`]; [`context`] depends on no
//! other stage. ARCHITECTURE.md in the repository follows one request and
//! one line through them.
//!
//! | stage | module | what happens there |
//! |---|---|---|
//! | set-up | [`builder()`] | one call installs the filter, the [`LogLayer`] and the pipeline, and returns the [`RequestLayer`] and a shutdown guard ([`Logging`]) |
//! | HTTP | [`http`] | the [`RequestLayer`] picks the id (a valid `x-request-id`, or a new one), continues the W3C trace, keeps the context around the handler *and* the response body, sets the id on every response (panics included), writes the access line; gRPC calls on tonic get their RPC and status on it ([gRPC](crate::http#grpc)); other frameworks start the same request path with [`http::Exchange`] (actix-web: the `corrlog-actix` crate) |
//! | propagation | [`propagate`] | the id and trace context carried on: HTTP and gRPC clients ([`propagate::inject`], [`propagate::PropagateLayer`], reqwest), queue messages ([`propagate::extract`] on the consumer), SQL comments ([`propagate::tag_sql`]) |
//! | context | [`context`] | the per-task [`RequestContext`]: read the id anywhere with [`request_id()`], add fields to later lines with [`bind()`], carry it into new tasks with [`spawn`], [`spawn_blocking`] and [`context::capture`] |
//! | formatting | [`fmt`] | the [`LogLayer`] turns each event into one flat JSON object (or a console line) with the request's id, trace ids and fields at top level, redacted and escaped; its docs specify the line schema |
//! | output | [`output`] | the [`Pipeline`](output::Pipeline) queues lines for a writer thread (bounded by bytes, a stated [`Backpressure`](output::Backpressure) policy, nothing lost on shutdown); [`RollingFile`](output::RollingFile); OTLP export to a collector (feature `otlp`) |
//!
//! [`testing`] captures a test's lines across every thread of a runtime.
//!
//! The stages' modules are named for them, as in `tracing_subscriber::fmt`:
//! name their items by path (`corrlog::http::IdPolicy`,
//! `corrlog::fmt::Redaction`) rather than importing the modules, since
//! `use corrlog::http;` would hide the `http` crate and `use corrlog::fmt;`
//! `std::fmt`. What most services need is at the root.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | `RequestId` and `Option<RequestId>` as axum extractors, and the matched route on the access line |
//! | `log` | yes | records of crates using `log` go to the same lines, with the request id |
//! | `signal` | yes | [`shutdown_signal`], Ctrl-C or SIGTERM for graceful shutdown (tokio's `signal`) |
//! | `testing` | no | [`testing`]: capture a test's lines across a multi-thread runtime (tokio's `rt-multi-thread`); for `[dev-dependencies]` |
//! | `reqwest` | no | [`propagate::PropagateHeaders`], a `reqwest-middleware` 0.5 middleware for reqwest 0.13 clients |
//! | `opentelemetry` | no | with `tracing-opentelemetry` 0.34, the HTTP layer makes its `request` span by default and lines carry the ids it is exported with (see [`TraceParent`](crate::context::TraceParent)) |
//! | `otlp` | no | `output::otlp`: log records to an OpenTelemetry Collector over OTLP/HTTP, set up by `Builder::otlp` or `OTEL_EXPORTER_OTLP_ENDPOINT` |
//!
//! # Why not a `thread_local!`
//!
//! tokio's multi-thread runtime moves a task between worker threads at
//! every `.await`. A thread-local id is whatever request last ran on that
//! thread, so lines get other requests' ids. corrlog keeps the context per
//! task, and its tests run thousands of overlapping requests to show that
//! no line ever carries another request's id.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod context;
mod error;
pub mod fmt;
pub mod http;
pub mod output;
mod panic;
pub mod propagate;
mod setup;
#[cfg(feature = "testing")]
pub mod testing;

pub use crate::context::id::RequestId;
pub use crate::context::request::{bind, flush_buffer, request_id, FieldValue, RequestContext};
pub use crate::context::spawn::{spawn, spawn_blocking};
pub use crate::error::{Error, ErrorKind};
pub use crate::fmt::layer::LogLayer;
pub use crate::fmt::Format;
pub use crate::http::layer::RequestLayer;
#[cfg(feature = "signal")]
pub use crate::setup::shutdown_signal;
pub use crate::setup::{builder, Builder, BuiltSubscriber, Logging};

/// Compiles the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
