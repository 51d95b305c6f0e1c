//! The request's id and trace context in any key-value carrier: the headers
//! of a Kafka, NATS, AMQP or SQS message, a job's metadata. The producer
//! [`inject`]s them; the consumer [`extract`]s a new context from them,
//! with the same validation as an HTTP request's headers, and runs its
//! work in it, so one user action can be followed across a queue.
//!
//! ```
//! use std::collections::HashMap;
//!
//! use corrlog::http::carrier;
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
//!         carrier::inject(&mut headers);
//!         tx.send(Message { headers, body: "order 7".into() }).await.unwrap();
//!     })
//!     .await;
//! drop(tx);
//!
//! // Consumer loop: each message is handled in the context it carries.
//! while let Some(message) = rx.recv().await {
//!     let ctx = carrier::extract(&message.headers);
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

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::id_policy::IdPolicy;
use super::trace_context::{continue_or_start_from, tracestate_of, TraceParent};
use crate::context::{RequestContext, RequestId, X_REQUEST_ID};

/// A carrier corrlog can write keys into: a message's headers.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>`,
/// `Vec<(String, String)>` and `http::HeaderMap`; implement it for your
/// client's header type.
///
/// ```
/// struct KafkaHeaders(Vec<(String, Vec<u8>)>);
///
/// impl corrlog::http::carrier::Injector for KafkaHeaders {
///     fn set(&mut self, key: &str, value: String) {
///         self.0.retain(|(k, _)| k != key);
///         self.0.push((key.to_owned(), value.into_bytes()));
///     }
/// }
/// ```
pub trait Injector {
    /// Sets `key` (lowercase) to `value`, replacing any value it had.
    fn set(&mut self, key: &str, value: String);
}

/// A carrier corrlog can read keys from: a message's headers.
///
/// Implemented for `HashMap<String, String>`, `BTreeMap<String, String>`,
/// `[(String, String)]`, `Vec<(String, String)>` and `http::HeaderMap`.
/// Keys are looked up in lowercase; the maps also find a key stored in
/// other case.
pub trait Extractor {
    /// The value of `key` (lowercase), if the carrier has it.
    fn get(&self, key: &str) -> Option<&str>;
}

impl<S: BuildHasher> Injector for HashMap<String, String, S> {
    fn set(&mut self, key: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
        self.insert(key.to_owned(), value);
    }
}

impl<S: BuildHasher> Extractor for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        match HashMap::get(self, key) {
            Some(value) => Some(value),
            None => find_ignoring_case(self.iter(), key),
        }
    }
}

impl Injector for BTreeMap<String, String> {
    fn set(&mut self, key: &str, value: String) {
        self.retain(|k, _| !k.eq_ignore_ascii_case(key));
        self.insert(key.to_owned(), value);
    }
}

impl Extractor for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        match BTreeMap::get(self, key) {
            Some(value) => Some(value),
            None => find_ignoring_case(self.iter(), key),
        }
    }
}

impl Injector for Vec<(String, String)> {
    fn set(&mut self, key: &str, value: String) {
        self.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.push((key.to_owned(), value));
    }
}

impl Extractor for [(String, String)] {
    fn get(&self, key: &str) -> Option<&str> {
        find_ignoring_case(self.iter().map(|(k, v)| (k, v)), key)
    }
}

impl Extractor for Vec<(String, String)> {
    fn get(&self, key: &str) -> Option<&str> {
        Extractor::get(self.as_slice(), key)
    }
}

impl Injector for HeaderMap {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.insert(name, value);
        }
    }
}

impl Extractor for HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        HeaderMap::get(self, key).and_then(|v| v.to_str().ok())
    }
}

fn find_ignoring_case<'a>(
    mut entries: impl Iterator<Item = (&'a String, &'a String)>,
    key: &str,
) -> Option<&'a str> {
    entries
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Writes the current request's id (under its header name,
/// `x-request-id` by default), `traceparent` (with this hop's span as the
/// parent) and `tracestate` into `carrier`. Returns `false`, writing
/// nothing, outside a request.
///
/// ```
/// use std::collections::HashMap;
///
/// let mut headers: HashMap<String, String> = HashMap::new();
/// assert!(!corrlog::http::carrier::inject(&mut headers)); // not in a request
/// ```
pub fn inject(carrier: &mut impl Injector) -> bool {
    RequestContext::with_current(|ctx| match ctx {
        Some(ctx) => {
            inject_from(ctx, carrier);
            true
        }
        None => false,
    })
}

/// Like [`inject`], for a given context.
///
/// ```
/// use corrlog::{RequestContext, RequestId};
///
/// let ctx = RequestContext::new(RequestId::new("job-9").unwrap());
/// let mut headers: Vec<(String, String)> = Vec::new();
/// corrlog::http::carrier::inject_from(&ctx, &mut headers);
/// assert_eq!(headers, [("x-request-id".to_owned(), "job-9".to_owned())]);
/// ```
pub fn inject_from(ctx: &RequestContext, carrier: &mut impl Injector) {
    carrier.set(ctx.header_name().as_str(), ctx.id().as_str().to_owned());
    if let Some(trace) = ctx.trace() {
        carrier.set("traceparent", trace.traceparent());
        if let Some(state) = trace.tracestate() {
            carrier.set("tracestate", state.to_owned());
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
/// let ctx = corrlog::http::carrier::extract(&headers);
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
/// use corrlog::http::{carrier, IdPolicy};
///
/// let headers = vec![("X-Correlation-Id".to_owned(), "c-1".to_owned())];
/// let header = http::HeaderName::from_static("x-correlation-id");
/// let ctx = carrier::extract_with(&headers, &header, &IdPolicy::default());
/// assert_eq!(ctx.id().as_str(), "c-1");
/// assert_eq!(ctx.header_name(), "x-correlation-id");
/// ```
pub fn extract_with(
    carrier: &(impl Extractor + ?Sized),
    header: &HeaderName,
    policy: &IdPolicy,
) -> RequestContext {
    let id = carrier
        .get(header.as_str())
        .and_then(|value| policy.parse(value.trim().as_bytes()))
        .unwrap_or_else(RequestId::generate);
    let parent = carrier.get("traceparent").and_then(TraceParent::parse);
    let trace = continue_or_start_from(parent, || {
        tracestate_of(carrier.get("tracestate").into_iter())
    });
    RequestContext::with_trace(id, Some(trace), header.clone())
}
