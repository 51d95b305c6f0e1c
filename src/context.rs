//! The per-request context: the [`RequestId`] plus the fields bound during
//! the request, kept **per task**, never per thread.
//!
//! tokio moves a task between worker threads at every `.await`, so an id
//! kept in a `thread_local!` is whatever request last ran on that thread.
//! corrlog keeps the context in a tokio task-local that the middleware sets
//! around every poll of the request's future and of its response body. Any
//! code running on the request's task, async or plain sync, at any depth,
//! reads it with [`request_id`] or [`RequestContext::current`].
//!
//! Outside a request (a background job, a task started with a bare
//! `tokio::spawn`) there is no context: [`request_id`] returns `None`, never
//! a stale id. To carry the context into new tasks and threads, use the
//! helpers in [`crate::task`].
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

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::encoder;
use http::HeaderName;

use crate::id::RequestId;
use crate::redact::{Redaction, Verdict};
use crate::trace_context::TraceContext;

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// A handle to one request's context: its id and its bound fields.
///
/// Cloning is cheap (a reference count); clones share the bound fields, so
/// a field bound in a task spawned with [`crate::spawn`] also shows on the
/// parent's later lines.
#[derive(Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: RequestId,
    trace: Option<TraceContext>,
    /// The header the id travels in, on the way in and out.
    header: HeaderName,
    fields: Mutex<Vec<BoundField>>,
}

/// A bound field, kept ready to write: the key as given and the value
/// already encoded as JSON, so each log line copies bytes and re-parses
/// nothing.
pub(crate) struct BoundField {
    pub(crate) key: Cow<'static, str>,
    pub(crate) json: String,
    /// The raw text of a string value, for cleaning URLs.
    pub(crate) text: Option<Box<str>>,
    /// The redaction verdict for `key` under the last policy that asked,
    /// as `policy id << 2 | verdict`; 0 when not yet known.
    pub(crate) verdict: AtomicU64,
}

impl BoundField {
    /// How this field is written under `policy`, computed once per policy.
    pub(crate) fn verdict(&self, policy: &Redaction) -> Verdict {
        let cached = self.verdict.load(Ordering::Relaxed);
        if cached >> 2 == policy.id() {
            return match cached & 3 {
                1 => Verdict::Secret,
                2 => Verdict::Url,
                _ => Verdict::Plain,
            };
        }
        let v = policy.verdict(&self.key);
        let code = match v {
            Verdict::Plain => 0,
            Verdict::Secret => 1,
            Verdict::Url => 2,
        };
        self.verdict
            .store(policy.id() << 2 | code, Ordering::Relaxed);
        v
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = self.fields();
        let mut map = f.debug_map();
        map.entry(&"request_id", &self.inner.id.as_str());
        if let Some(trace) = &self.inner.trace {
            map.entry(&"trace_id", &trace.trace_id_hex());
            map.entry(&"span_id", &trace.span_id_hex());
        }
        for field in fields.iter() {
            map.entry(&field.key, &field.json);
        }
        map.finish()
    }
}

impl RequestContext {
    /// A new context for the request with this id, with no bound fields.
    ///
    /// The middleware makes one per request; make your own for work that is
    /// not an HTTP request (a queue message, a cron job) and run it with
    /// [`RequestContext::scope`] or [`RequestContext::run`].
    pub fn new(id: RequestId) -> Self {
        RequestContext::with_trace(id, None, crate::middleware::X_REQUEST_ID)
    }

    /// A context that also carries a place in a trace (see
    /// [`crate::trace_context`]) and the header name its id travels in.
    pub fn with_trace(id: RequestId, trace: Option<TraceContext>, header: HeaderName) -> Self {
        RequestContext {
            inner: Arc::new(Inner {
                id,
                trace,
                header,
                fields: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The request's place in a trace, if it has one.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.inner.trace.as_ref()
    }

    /// The header name the id travels in (`x-request-id` by default).
    pub fn header_name(&self) -> &HeaderName {
        &self.inner.header
    }

    /// The context of the request the current task is serving, if any.
    pub fn current() -> Option<RequestContext> {
        CURRENT.try_with(RequestContext::clone).ok()
    }

    /// The request id.
    pub fn id(&self) -> &RequestId {
        &self.inner.id
    }

    /// Binds a field: every later line of this request carries it as a
    /// top-level JSON field. Binding a key again replaces its value.
    ///
    /// ```
    /// use corrlog::{RequestContext, RequestId};
    ///
    /// let ctx = RequestContext::new(RequestId::generate());
    /// ctx.bind("tenant", "acme");
    /// ctx.bind("attempt", 2);
    /// ctx.bind("attempt", 3);
    /// assert_eq!(ctx.field_json("attempt").as_deref(), Some("3"));
    /// ```
    pub fn bind(&self, key: impl Into<Cow<'static, str>>, value: impl Into<FieldValue>) {
        let key = key.into();
        let value = value.into();
        let text = match &value {
            FieldValue::Str(s) => Some(Box::from(s.as_str())),
            _ => None,
        };
        let mut json = Vec::new();
        value.encode(&mut json);
        // The encoder only writes UTF-8, and an error here would mean a bug
        // in it; fall back to a JSON null rather than panic.
        let json = String::from_utf8(json).unwrap_or_else(|_| "null".to_owned());
        let mut fields = self.fields();
        match fields.iter_mut().find(|f| f.key == key) {
            Some(existing) => {
                existing.json = json;
                existing.text = text;
            }
            None => fields.push(BoundField {
                key,
                json,
                text,
                verdict: AtomicU64::new(0),
            }),
        }
    }

    /// The JSON text of a bound field's value, if that key is bound.
    pub fn field_json(&self, key: &str) -> Option<String> {
        self.fields()
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.json.clone())
    }

    /// Runs `fut` with this context as the current one, on every poll.
    ///
    /// ```
    /// # use corrlog::{RequestContext, RequestId};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let ctx = RequestContext::new(RequestId::new("job-7").unwrap());
    /// let seen = ctx.scope(async { corrlog::request_id() }).await;
    /// assert_eq!(seen.unwrap().as_str(), "job-7");
    /// # }
    /// ```
    pub fn scope<F: Future>(self, fut: F) -> tokio::task::futures::TaskLocalFuture<Self, F> {
        CURRENT.scope(self, fut)
    }

    /// Runs the closure with this context as the current one. Works on any
    /// thread, with or without a tokio runtime.
    ///
    /// ```
    /// # use corrlog::{RequestContext, RequestId};
    /// let ctx = RequestContext::new(RequestId::new("batch-1").unwrap());
    /// let id = std::thread::spawn(move || ctx.run(|| corrlog::request_id()))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(id.unwrap().as_str(), "batch-1");
    /// ```
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }

    pub(crate) fn fields(&self) -> MutexGuard<'_, Vec<BoundField>> {
        // A panic while holding the lock leaves the list itself consistent
        // (every mutation is a single push or assignment), so keep using it.
        self.inner
            .fields
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Calls `f` with the current context without touching its reference
    /// count. Used on the logging hot path.
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&RequestContext>) -> R) -> R {
        let mut f = Some(f);
        match CURRENT.try_with(|ctx| (f.take().expect("called once"))(Some(ctx))) {
            Ok(r) => r,
            Err(_) => (f.take().expect("not called by try_with"))(None),
        }
    }
}

/// The id of the request the current task is serving, or `None` outside a
/// request.
///
/// Works at any depth, in async code and in plain sync functions called
/// from it. In tasks and threads you start yourself, propagate the context
/// with [`crate::spawn`], [`crate::spawn_blocking`] or
/// [`crate::task::FutureExt::in_current_request`]; without them the id is
/// absent, never wrong.
///
/// ```
/// assert!(corrlog::request_id().is_none());
/// ```
pub fn request_id() -> Option<RequestId> {
    CURRENT.try_with(|ctx| ctx.inner.id.clone()).ok()
}

/// Binds a field to the current request: its later lines all carry it as a
/// top-level JSON field. Returns `false` (and does nothing) outside a
/// request.
///
/// ```
/// # use corrlog::{RequestContext, RequestId};
/// # let ctx = RequestContext::new(RequestId::generate());
/// # ctx.clone().run(|| {
/// corrlog::bind("user_id", "u-123");
/// corrlog::bind("cart_items", 3);
/// tracing::info!("checkout started"); // carries user_id and cart_items
/// # });
/// # assert_eq!(ctx.field_json("cart_items").as_deref(), Some("3"));
/// assert!(!corrlog::bind("ignored", true)); // not in a request here
/// ```
pub fn bind(key: impl Into<Cow<'static, str>>, value: impl Into<FieldValue>) -> bool {
    match RequestContext::current() {
        Some(ctx) => {
            ctx.bind(key, value);
            true
        }
        None => false,
    }
}

/// A value that can be bound to a request with [`bind`]. Numbers and
/// booleans stay JSON numbers and booleans; everything else is a string.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// A string.
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float; NaN and infinities are written as strings.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl FieldValue {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            FieldValue::Str(s) => encoder::write_str(out, s),
            FieldValue::I64(n) => encoder::write_i64(out, *n),
            FieldValue::U64(n) => encoder::write_u64(out, *n),
            FieldValue::F64(n) => encoder::write_f64(out, *n),
            FieldValue::Bool(b) => encoder::write_bool(out, *b),
        }
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Str(v.to_owned())
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Str(v)
    }
}
impl From<&String> for FieldValue {
    fn from(v: &String) -> Self {
        FieldValue::Str(v.clone())
    }
}
impl From<&RequestId> for FieldValue {
    fn from(v: &RequestId) -> Self {
        FieldValue::Str(v.as_str().to_owned())
    }
}
impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}
impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::F64(v)
    }
}
impl From<f32> for FieldValue {
    fn from(v: f32) -> Self {
        FieldValue::F64(f64::from(v))
    }
}

macro_rules! from_ints {
    ($variant:ident, $wide:ty: $($t:ty),*) => {$(
        impl From<$t> for FieldValue {
            fn from(v: $t) -> Self {
                FieldValue::$variant(<$wide>::from(v))
            }
        }
    )*};
}
from_ints!(I64, i64: i8, i16, i32, i64);
from_ints!(U64, u64: u8, u16, u32, u64);

impl From<usize> for FieldValue {
    fn from(v: usize) -> Self {
        FieldValue::U64(v as u64)
    }
}
impl From<isize> for FieldValue {
    fn from(v: isize) -> Self {
        FieldValue::I64(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_outside_a_request() {
        assert!(request_id().is_none());
        assert!(RequestContext::current().is_none());
        assert!(!bind("k", 1));
    }

    #[test]
    fn run_sets_and_restores() {
        let ctx = RequestContext::new(RequestId::from_validated("r1"));
        let inner = ctx.clone().run(|| {
            bind("a", "x\"y");
            request_id()
        });
        assert_eq!(inner.map(|i| i.to_string()).as_deref(), Some("r1"));
        assert!(request_id().is_none());
        assert_eq!(ctx.field_json("a").as_deref(), Some(r#""x\"y""#));
    }

    #[test]
    fn nested_scopes_restore_the_outer_one() {
        let outer = RequestContext::new(RequestId::from_validated("outer"));
        let inner = RequestContext::new(RequestId::from_validated("inner"));
        outer.run(|| {
            inner.run(|| assert_eq!(request_id().unwrap().as_str(), "inner"));
            assert_eq!(request_id().unwrap().as_str(), "outer");
        });
    }
}
