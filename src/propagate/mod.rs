//! Propagation: the request's id and W3C trace context carried on to what
//! the request starts elsewhere, so one user action can be followed across
//! services, queues and databases.
//!
//! | carrier | how |
//! |---|---|
//! | any `http::HeaderMap` (hyper, tonic, any client) | [`inject`] |
//! | a tower client over `http` types (tonic's `Channel`, hyper) | [`PropagateLayer`] |
//! | a `reqwest_middleware` client (feature `reqwest`) | [`PropagateHeaders`] |
//! | a message's headers (Kafka, NATS, AMQP, SQS, a job's metadata) | [`inject`] on the producer, [`extract`] on the consumer |
//! | your own header type | implement [`Injector`] / [`Extractor`] |
//! | a SQL statement | [`tag_sql`] |
//!
//! Every one of them goes through [`inject_from`]: the id under the header
//! the service reads it from (`x-request-id` by default; see
//! [`RequestLayer::response_header`](crate::RequestLayer::response_header)),
//! `traceparent` with this hop's span as the parent, and `tracestate` when
//! the request has one (a stale one is removed). Outside a request nothing
//! is added.
//!
//! ```
//! use corrlog::{RequestContext, RequestId};
//! use http::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! assert!(!corrlog::propagate::inject(&mut headers)); // not in a request
//!
//! RequestContext::new(RequestId::new("req-42").unwrap()).run(|| {
//!     corrlog::propagate::inject(&mut headers);
//! });
//! assert_eq!(headers["x-request-id"], "req-42");
//! ```
//!
//! # Across a queue
//!
//! The producer [`inject`]s; the consumer [`extract`]s a new context, with
//! the same validation as an HTTP request's headers, and runs its work in
//! it:
//!
//! ```
//! use std::collections::HashMap;
//!
//! use corrlog::propagate;
//! use corrlog::{RequestContext, RequestId};
//!
//! struct Message {
//!     headers: HashMap<String, String>,
//!     body: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<Message>(16);
//!
//! // Producer, serving a request: the message carries its id and trace.
//! let request = RequestContext::new(RequestId::new("req-42").unwrap());
//! request
//!     .scope(async {
//!         let mut headers = HashMap::new();
//!         propagate::inject(&mut headers);
//!         tx.send(Message { headers, body: "order 7".into() }).await.unwrap();
//!     })
//!     .await;
//! drop(tx);
//!
//! // Consumer loop: each message is handled in the context it carries.
//! while let Some(message) = rx.recv().await {
//!     let ctx = propagate::extract(&message.headers);
//!     ctx.scope(async {
//!         tracing::info!(body = %message.body, "processing"); // request_id "req-42"
//!         assert_eq!(corrlog::request_id().unwrap().as_str(), "req-42");
//!     })
//!     .await;
//! }
//! # }
//! ```
//!
//! What [`extract`] trusts: an id the [`IdPolicy`] accepts (otherwise a
//! new one is made, and the rejected value is not kept), and a valid
//! `traceparent` (continued with a new span id; otherwise a new trace),
//! with the valid members of its `tracestate`, as for HTTP requests.

mod carrier;
mod layer;
#[cfg(feature = "reqwest")]
mod reqwest;
mod sql;

use http::HeaderName;

pub use self::carrier::{Extractor, Injector};
pub use self::layer::{PropagateLayer, PropagateService};
#[cfg(feature = "reqwest")]
pub use self::reqwest::PropagateHeaders;
pub use self::sql::tag_sql;
use crate::context::trace::{continue_or_start_from, tracestate_of};
use crate::context::{RequestContext, RequestId, TraceParent, X_REQUEST_ID};
use crate::http::IdPolicy;

/// Writes the current request's id (under its header name,
/// `x-request-id` by default), `traceparent` (with this hop's span as the
/// parent) and `tracestate` into `carrier`, replacing what was there.
/// Returns `false`, writing nothing, outside a request.
///
/// ```
/// use std::collections::HashMap;
///
/// let mut headers: HashMap<String, String> = HashMap::new();
/// assert!(!corrlog::propagate::inject(&mut headers)); // not in a request
/// ```
pub fn inject(carrier: &mut (impl Injector + ?Sized)) -> bool {
    RequestContext::with_current(|ctx| match ctx {
        Some(ctx) => {
            inject_from(ctx, carrier);
            true
        }
        None => false,
    })
}

/// Like [`inject`], for a given context. A `tracestate` already in the
/// carrier is removed when the context has none: it belongs to another
/// trace.
///
/// ```
/// use corrlog::{RequestContext, RequestId};
///
/// let ctx = RequestContext::new(RequestId::new("job-9").unwrap());
/// let mut headers: Vec<(String, String)> = vec![("X-Request-Id".into(), "old".into())];
/// corrlog::propagate::inject_from(&ctx, &mut headers);
/// assert_eq!(headers, [("x-request-id".to_owned(), "job-9".to_owned())]);
/// ```
pub fn inject_from(ctx: &RequestContext, carrier: &mut (impl Injector + ?Sized)) {
    carrier.set(ctx.header_name().as_str(), ctx.id().as_str());
    if let Some(trace) = ctx.trace() {
        carrier.set("traceparent", &trace.traceparent());
        match trace.tracestate() {
            Some(state) => carrier.set("tracestate", state),
            None => carrier.remove("tracestate"),
        }
    }
}

/// A new context for work on a message: the id from `carrier`'s
/// `x-request-id` when the default [`IdPolicy`] accepts it (a new id
/// otherwise), and its trace continued from a valid `traceparent` (a new
/// trace otherwise). See [`extract_with`] for another header or policy.
///
/// ```
/// use std::collections::HashMap;
///
/// let headers = HashMap::from([("x-request-id".to_owned(), "bad id\n".to_owned())]);
/// let ctx = corrlog::propagate::extract(&headers);
/// assert_ne!(ctx.id().as_str(), "bad id\n"); // replaced by a new id
/// assert_eq!(ctx.trace().unwrap().trace_id_hex().len(), 32); // a new trace
/// ```
pub fn extract(carrier: &(impl Extractor + ?Sized)) -> RequestContext {
    extract_with(carrier, &X_REQUEST_ID, &IdPolicy::default())
}

/// Like [`extract`], reading the id from `header` and accepting it by
/// `policy`.
///
/// ```
/// use corrlog::http::IdPolicy;
/// use corrlog::propagate;
///
/// let headers = vec![("X-Correlation-Id".to_owned(), "c-1".to_owned())];
/// let header = http::HeaderName::from_static("x-correlation-id");
/// let ctx = propagate::extract_with(&headers, &header, &IdPolicy::default());
/// assert_eq!(ctx.id().as_str(), "c-1");
/// assert_eq!(ctx.header_name(), "x-correlation-id");
/// ```
pub fn extract_with(
    carrier: &(impl Extractor + ?Sized),
    header: &HeaderName,
    policy: &IdPolicy,
) -> RequestContext {
    // The rules of the HTTP layer: one value per key (a duplicated id or
    // `traceparent` is refused), only the spaces and tabs an HTTP parser
    // strips are trimmed, every `tracestate` value is joined.
    let values = |key: &str| {
        carrier
            .get_all(key)
            .into_iter()
            .map(|value| value.trim_matches([' ', '\t']))
    };
    let id = match policy.sole(values(header.as_str())) {
        Ok((id, _)) => id,
        Err(_) => RequestId::generate(),
    };
    let parent = TraceParent::sole(values("traceparent"));
    let trace = continue_or_start_from(parent, || tracestate_of(values("tracestate")));
    RequestContext::with_trace(id, Some(trace), header.clone())
}
