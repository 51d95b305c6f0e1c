//! The request context itself: [`RequestContext`], [`request_id`],
//! [`bind`] and the names the HTTP and line layers share.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use http::{HeaderName, HeaderValue};

use super::buffer::Buffer;
use super::id::RequestId;
use super::trace::TraceContext;

/// The default header a request id is read from and written to:
/// `x-request-id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The target and name of the span the HTTP layer opens per request (when
/// asked to: `RequestLayer::request_span`); the line layer recognises it
/// to find the request of a future propagated with tracing's
/// `.in_current_span()` alone.
pub(crate) const REQUEST_SPAN_TARGET: &str = "corrlog";
pub(crate) const REQUEST_SPAN_NAME: &str = "request";

/// The target (logger name) of access lines: filter them with
/// `corrlog::access=warn` and the like.
pub const ACCESS_TARGET: &str = "corrlog::access";

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// A handle to one request's context: its id and its bound fields.
///
/// Cloning is cheap (a reference count); clones share the bound fields, so
/// a field bound in a task spawned with [`crate::spawn`] also shows on the
/// parent's later lines.
///
/// ```
/// use corrlog::{RequestContext, RequestId};
///
/// let ctx = RequestContext::new(RequestId::new("job-42").unwrap());
/// ctx.run(|| {
///     corrlog::bind("queue", "emails");
///     tracing::info!("sending"); // carries request_id "job-42" and queue "emails"
///     assert_eq!(corrlog::request_id().unwrap().as_str(), "job-42");
/// });
/// ```
#[derive(Clone)]
pub struct RequestContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: RequestId,
    /// Set at creation (a plain field: a `OnceLock` made full takes its
    /// initialisation path on every request).
    trace: Option<TraceContext>,
    /// Or set once just after, when the ids come from the request's
    /// OpenTelemetry span (which needs the context to exist).
    #[cfg(feature = "opentelemetry")]
    late_trace: OnceLock<TraceContext>,
    /// The header the id travels in, on the way in and out.
    header: HeaderName,
    fields: Mutex<Vec<BoundField>>,
    /// Request headers the access line shows, raw: the line layer masks
    /// them with its own redaction policy when it writes the line.
    access_headers: OnceLock<Box<[(HeaderName, HeaderValue)]>>,
    /// Lines kept back while the request may still succeed (see
    /// [`Buffering`](crate::fmt::Buffering)).
    buffer: Buffer,
}

/// A bound field. The line layer keeps the value's encoded form and its
/// redaction verdict here, computed on first use, so each line copies
/// bytes and re-parses nothing.
pub(crate) struct BoundField {
    pub(crate) key: Cow<'static, str>,
    pub(crate) value: FieldValue,
    /// The value as JSON, filled by the line layer.
    pub(crate) encoded: OnceLock<Box<[u8]>>,
    /// The redaction verdict for `key` under the last policy that asked,
    /// as the line layer packs it; 0 when not yet known.
    pub(crate) verdict: AtomicU64,
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = self.fields();
        let mut map = f.debug_map();
        map.entry(&"request_id", &self.inner.id.as_str());
        if let Some(trace) = self.trace() {
            map.entry(&"trace_id", &trace.trace_id_hex());
            map.entry(&"span_id", &trace.span_id_hex());
        }
        for field in fields.iter() {
            map.entry(&field.key, &field.value);
        }
        map.finish()
    }
}

impl RequestContext {
    /// A new context for the request with this id, with no bound fields.
    ///
    /// The HTTP layer makes one per request; make your own for work that is
    /// not an HTTP request (a queue message, a cron job) and run it with
    /// [`RequestContext::scope`] or [`RequestContext::run`].
    ///
    /// ```
    /// use corrlog::{RequestContext, RequestId};
    ///
    /// let ctx = RequestContext::new(RequestId::new("job-1").unwrap());
    /// assert_eq!(ctx.id().as_str(), "job-1");
    /// assert!(ctx.trace().is_none());
    /// ```
    pub fn new(id: RequestId) -> Self {
        RequestContext::with_trace(id, None, X_REQUEST_ID)
    }

    /// A context that also carries a place in a trace (see
    /// [`TraceContext`]) and the header name its id travels in.
    ///
    /// ```
    /// use corrlog::context::TraceContext;
    /// use corrlog::{RequestContext, RequestId};
    /// use http::HeaderName;
    ///
    /// let ctx = RequestContext::with_trace(
    ///     RequestId::generate(),
    ///     Some(TraceContext::new_root()),
    ///     HeaderName::from_static("x-correlation-id"),
    /// );
    /// assert_eq!(ctx.header_name(), "x-correlation-id");
    /// assert_eq!(ctx.trace().unwrap().trace_id_hex().len(), 32);
    /// ```
    pub fn with_trace(id: RequestId, trace: Option<TraceContext>, header: HeaderName) -> Self {
        RequestContext {
            inner: Arc::new(Inner {
                id,
                trace,
                #[cfg(feature = "opentelemetry")]
                late_trace: OnceLock::new(),
                header,
                fields: Mutex::new(Vec::new()),
                access_headers: OnceLock::new(),
                buffer: Buffer::default(),
            }),
        }
    }

    /// The request's place in a trace, if it has one.
    pub fn trace(&self) -> Option<&TraceContext> {
        #[cfg(feature = "opentelemetry")]
        if self.inner.trace.is_none() {
            return self.inner.late_trace.get();
        }
        self.inner.trace.as_ref()
    }

    /// Gives a context made without a trace its trace; no effect on one
    /// that has a trace already.
    #[cfg(feature = "opentelemetry")]
    pub(crate) fn set_trace(&self, trace: TraceContext) {
        if self.inner.trace.is_none() {
            let _ = self.inner.late_trace.set(trace);
        }
    }

    /// The header name the id travels in (`x-request-id` by default).
    pub fn header_name(&self) -> &HeaderName {
        &self.inner.header
    }

    /// The context of the request the current task is serving, if any.
    ///
    /// ```
    /// assert!(corrlog::RequestContext::current().is_none());
    /// ```
    pub fn current() -> Option<RequestContext> {
        CURRENT.try_with(RequestContext::clone).ok()
    }

    /// The request id.
    pub fn id(&self) -> &RequestId {
        &self.inner.id
    }

    /// Binds a field: every later line of this request carries it as a
    /// top-level JSON field. Binding a key again replaces its value. The
    /// public way is [`crate::bind`], on the current request.
    pub(crate) fn bind(&self, key: impl Into<Cow<'static, str>>, value: impl Into<FieldValue>) {
        let field = BoundField {
            key: key.into(),
            value: value.into(),
            encoded: OnceLock::new(),
            verdict: AtomicU64::new(0),
        };
        let mut fields = self.fields();
        match fields.iter_mut().find(|f| f.key == field.key) {
            Some(existing) => *existing = field,
            None => fields.push(field),
        }
    }

    /// The value of a bound field, if that key is bound.
    ///
    /// ```
    /// use corrlog::{FieldValue, RequestContext, RequestId};
    ///
    /// let ctx = RequestContext::new(RequestId::generate());
    /// ctx.clone().run(|| corrlog::bind("user", "u-1"));
    /// assert_eq!(ctx.field("user"), Some(FieldValue::Str("u-1".into())));
    /// assert_eq!(ctx.field("absent"), None);
    /// ```
    pub fn field(&self, key: &str) -> Option<FieldValue> {
        self.fields()
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.value.clone())
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

    /// Keeps the request headers its access line shows (set once, by the
    /// HTTP layer).
    pub(crate) fn set_access_headers(&self, headers: Box<[(HeaderName, HeaderValue)]>) {
        let _ = self.inner.access_headers.set(headers);
    }

    /// The request's buffered lines.
    pub(crate) fn buffer(&self) -> &Buffer {
        &self.inner.buffer
    }

    /// Writes out the lines this request has buffered so far (see
    /// [`Buffering`](crate::fmt::Buffering)); its later lines then go
    /// straight out. Returns whether any line was written. The public way
    /// is [`crate::flush_buffer`], on the current request.
    pub(crate) fn flush_buffer(&self) -> bool {
        self.inner.buffer.flush(self)
    }

    /// The request headers its access line shows, raw.
    pub(crate) fn access_headers(&self) -> Option<&[(HeaderName, HeaderValue)]> {
        self.inner.access_headers.get().map(|h| &**h)
    }

    /// Calls `f` with the current context without touching its reference
    /// count. Used on the logging hot path.
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&RequestContext>) -> R) -> R {
        let mut f = Some(f);
        match CURRENT.try_with(|ctx| f.take().map(|f| f(Some(ctx)))) {
            Ok(Some(r)) => r,
            _ => match f.take() {
                Some(f) => f(None),
                None => unreachable!("the closure runs once, inside try_with or here"),
            },
        }
    }
}

/// The id of the request the current task is serving, or `None` outside a
/// request.
///
/// Works at any depth, in async code and in plain sync functions called
/// from it. In tasks and threads you start yourself, propagate the context
/// with [`crate::spawn`], [`crate::spawn_blocking`] or
/// [`FutureExt::in_current_request`](super::FutureExt::in_current_request); without them the id is
/// absent, never wrong.
///
/// ```
/// assert!(corrlog::request_id().is_none());
/// ```
pub fn request_id() -> Option<RequestId> {
    CURRENT.try_with(|ctx| ctx.inner.id.clone()).ok()
}

/// Writes out the lines the current request has buffered so far, when
/// [`Buffering`](crate::fmt::Buffering) is on: for a failure the request
/// handles itself (a 4xx it wants detail for, a retry given up). Its later
/// lines then go straight out. Returns whether any line was written;
/// `false` outside a request.
///
/// ```
/// assert!(!corrlog::flush_buffer());
/// ```
pub fn flush_buffer() -> bool {
    CURRENT
        .try_with(RequestContext::flush_buffer)
        .unwrap_or(false)
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
/// # assert_eq!(ctx.field("cart_items"), Some(corrlog::FieldValue::I64(3)));
/// assert!(!corrlog::bind("ignored", true)); // not in a request here
///
/// // Binding a key again replaces its value.
/// # ctx.clone().run(|| {
/// corrlog::bind("cart_items", 4);
/// # });
/// # assert_eq!(ctx.field("cart_items"), Some(corrlog::FieldValue::I64(4)));
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
///
/// ```
/// use corrlog::FieldValue;
///
/// assert_eq!(FieldValue::from(3_u8), FieldValue::U64(3));
/// assert_eq!(FieldValue::from("acme"), FieldValue::Str("acme".into()));
/// ```
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
        assert_eq!(ctx.field("a"), Some(FieldValue::Str("x\"y".into())));
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
