//! [`Buffering`]: a request's lines below the output level, kept until the
//! request fails, and [`BufferingFilter`], the level filter that lets those
//! lines reach the line layer.

use std::cell::Cell;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::line::{Constant, Line, Style};
use super::redact::Redaction;
use super::sink::Sink;
use super::time::TimestampCache;
use crate::context::buffer::{BufferTarget, Caps, Phase};
use crate::context::RequestContext;

/// The default cap on one request's buffered bytes: 64 KiB.
pub const DEFAULT_REQUEST_BUFFER_BYTES: usize = 64 * 1024;

/// The default cap on the bytes buffered by all requests together: 64 MiB.
pub const DEFAULT_TOTAL_BUFFER_BYTES: usize = 64 * 1024 * 1024;

/// Per-request log buffering: a service logging at INFO keeps each
/// request's DEBUG lines in memory, already formatted, and writes them only
/// if the request fails.
///
/// A line is buffered when the level filter would drop it, its level is
/// `level` or less verbose, and it belongs to a request. It is encoded
/// like any line (its own timestamp, the request id, trace ids and
/// fields) and kept in the request's context. What happens next:
///
/// | the request | its buffered lines |
/// |---|---|
/// | logs an ERROR line (a panic line included) | written first, in order, then the ERROR line; later lines go straight out |
/// | ends with a 5xx, a panic, a client disconnect or a body error | written before the access line |
/// | calls [`crate::flush_buffer`] | written; later lines go straight out |
/// | ends well | dropped; the access line says how many (`buffer_discarded`) |
///
/// Bounds: a request keeps at most [`request_bytes`](Buffering::request_bytes)
/// (64 KiB by default), all requests together at most
/// [`total_bytes`](Buffering::total_bytes) (64 MiB); past a cap the
/// request's oldest lines are evicted. The caps bound the memory the
/// lines take, as allocated, not only the bytes still live (each request
/// keeps its lines in one ring that never outgrows its cap; the lines'
/// lengths add 4 bytes a line beside it). A flush starts with one WARN line
/// giving the exact number evicted, and the access line counts them
/// (`buffer_evicted`). A single line larger than the request's cap is
/// written at once.
///
/// Once the request has ended (its access line is written), buffering
/// stops: lines of tasks that outlive it (started with [`crate::spawn`])
/// are written if the level filter lets them through, and dropped
/// otherwise, like lines outside any request.
///
/// Turn it on with [`Builder::buffering`](crate::Builder::buffering) or
/// `CORRLOG_BUFFER=debug`. By hand, give the layer the same `Buffering`
/// as the filter around your level filter:
///
/// ```
/// use corrlog::fmt::{Buffering, BufferingFilter};
/// use corrlog::testing::TestLogs;
/// use corrlog::{LogLayer, RequestContext, RequestId};
/// use tracing::Level;
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::EnvFilter;
///
/// let buffering = Buffering::up_to(Level::DEBUG);
/// let capture = TestLogs::new();
/// let subscriber = tracing_subscriber::registry()
///     .with(BufferingFilter::new(EnvFilter::new("info"), &buffering))
///     .with(LogLayer::new(capture.clone()).buffering(buffering));
/// tracing::subscriber::with_default(subscriber, || {
///     let ok = RequestContext::new(RequestId::new("ok-1").unwrap());
///     ok.run(|| tracing::debug!("detail nobody needs"));
///     let failed = RequestContext::new(RequestId::new("failed-1").unwrap());
///     failed.run(|| {
///         tracing::debug!("the detail that explains it");
///         tracing::error!("payment failed");
///     });
/// });
/// let lines = capture.lines();
/// assert_eq!(lines.len(), 2);
/// assert!(lines[0].contains(r#""level":"DEBUG","message":"the detail that explains it""#));
/// assert!(lines[1].contains(r#""message":"payment failed""#));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffering {
    level: Level,
    request_bytes: usize,
    total_bytes: usize,
}

impl Buffering {
    /// Buffers lines at `level` and the levels between it and the output
    /// level: `Level::DEBUG` keeps DEBUG lines of a service at INFO,
    /// `Level::TRACE` keeps DEBUG and TRACE lines.
    pub fn up_to(level: Level) -> Self {
        Buffering {
            level,
            request_bytes: DEFAULT_REQUEST_BUFFER_BYTES,
            total_bytes: DEFAULT_TOTAL_BUFFER_BYTES,
        }
    }

    /// The same caps with another level.
    pub(crate) fn with_level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The most one request keeps, in bytes of encoded lines as allocated. Defaults to
    /// [`DEFAULT_REQUEST_BUFFER_BYTES`].
    #[must_use]
    pub fn request_bytes(mut self, bytes: usize) -> Self {
        self.request_bytes = bytes;
        self
    }

    /// The most all requests keep together, as allocated. Defaults to
    /// [`DEFAULT_TOTAL_BUFFER_BYTES`].
    #[must_use]
    pub fn total_bytes(mut self, bytes: usize) -> Self {
        self.total_bytes = bytes;
        self
    }

    /// The most verbose level buffered.
    pub fn level(&self) -> Level {
        self.level
    }

    pub(crate) fn caps(&self) -> Caps {
        Caps {
            request_bytes: self.request_bytes,
            total_bytes: self.total_bytes,
        }
    }
}

/// How many events the filter can have let through for buffering on one
/// thread before their line layers see them (nested when a field's value
/// logs).
const MARKS: usize = 8;

thread_local! {
    /// The callsites (their metadata's address) whose latest event the
    /// filter let through only to be buffered. A callsite's mark is set or
    /// cleared each time the filter is asked about it, so it is never
    /// stale when its event reaches a line layer.
    static MARKED: Cell<([usize; MARKS], usize)> = const { Cell::new(([0; MARKS], 0)) };
}

fn address(meta: &Metadata<'_>) -> usize {
    std::ptr::from_ref(meta) as usize
}

fn set_mark(meta: &Metadata<'_>, on: bool) {
    let addr = address(meta);
    let _ = MARKED.try_with(|cell| {
        let (mut marks, mut next) = cell.get();
        let found = marks.iter().position(|&m| m == addr);
        match (found, on) {
            (Some(_), true) | (None, false) => return,
            (Some(i), false) => marks[i] = 0,
            (None, true) => {
                marks[next] = addr;
                next = (next + 1) % MARKS;
            }
        }
        cell.set((marks, next));
    });
}

/// Whether the filter let `meta`'s event through only to be buffered.
pub(crate) fn is_marked(meta: &Metadata<'_>) -> bool {
    let addr = address(meta);
    MARKED
        .try_with(|cell| cell.get().0.contains(&addr))
        .unwrap_or(false)
}

/// Wraps a level filter (an `EnvFilter`, a `LevelFilter`, any filtering
/// layer) so that, besides what it lets through, events of a request still
/// buffering at [`Buffering`]'s level or less verbose reach the line layer,
/// marked to be buffered rather than written. Everything else is the
/// wrapped filter's decision.
///
/// Other layers in the same subscriber see those events too.
///
/// ```
/// use corrlog::fmt::{Buffering, BufferingFilter};
/// use tracing::Level;
///
/// let filter = BufferingFilter::new(
///     tracing_subscriber::EnvFilter::new("info"),
///     &Buffering::up_to(Level::DEBUG),
/// );
/// # drop(filter);
/// ```
#[derive(Debug)]
pub struct BufferingFilter<F> {
    inner: F,
    level: Option<Level>,
    /// Whether `inner` is told of spans. An `EnvFilter` without span
    /// directives does nothing with them but take locks: the builder,
    /// which knows its directives, turns this off for it.
    span_hooks: bool,
}

impl<F> BufferingFilter<F> {
    /// `inner`, widened for `buffering`.
    pub fn new(inner: F, buffering: &Buffering) -> Self {
        crate::context::buffer::set_in_use();
        BufferingFilter {
            inner,
            level: Some(buffering.level),
            span_hooks: true,
        }
    }

    /// `inner` alone: what the builder uses when buffering is off.
    pub(crate) fn off(inner: F) -> Self {
        BufferingFilter {
            inner,
            level: None,
            span_hooks: true,
        }
    }

    /// Stops telling `inner` of spans: for a filter whose decisions never
    /// depend on them (an `EnvFilter` without span directives), whose span
    /// hooks then only cost locks on every span entered and left.
    pub(crate) fn without_span_hooks(mut self) -> Self {
        self.span_hooks = false;
        self
    }

    fn may_buffer(&self, meta: &Metadata<'_>) -> bool {
        self.level
            .is_some_and(|level| meta.is_event() && *meta.level() <= level)
    }
}

/// Whether the current request still buffers.
fn in_buffering_request() -> bool {
    RequestContext::with_current(|rc| rc.is_some_and(|rc| rc.buffer().phase() != Phase::Ended))
}

impl<S, F> Layer<S> for BufferingFilter<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    F: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        let interest = self.inner.register_callsite(meta);
        if interest.is_never() && self.may_buffer(meta) {
            Interest::sometimes()
        } else {
            interest
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if self.inner.enabled(meta, ctx) {
            // Only events this filter may buffer are ever marked.
            if self.may_buffer(meta) {
                set_mark(meta, false);
            }
            return true;
        }
        if self.may_buffer(meta) && in_buffering_request() {
            set_mark(meta, true);
            return true;
        }
        false
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let inner = self.inner.max_level_hint();
        match (self.level, inner) {
            (Some(level), Some(inner)) => Some(inner.max(LevelFilter::from_level(level))),
            (Some(_), None) | (None, _) => inner,
        }
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if self.span_hooks {
            self.inner.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if self.span_hooks {
            self.inner.on_record(span, values, ctx);
        }
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        if self.span_hooks {
            self.inner.on_follows_from(span, follows, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if self.span_hooks {
            self.inner.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if self.span_hooks {
            self.inner.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if self.span_hooks {
            self.inner.on_close(id, ctx);
        }
    }
}

/// Where a line layer's buffered lines go on a flush: its sink, and what
/// it needs to write the WARN line about evictions in its own format.
pub(crate) struct LayerTarget<W> {
    pub(crate) sink: Arc<W>,
    pub(crate) style: Style,
    pub(crate) constant: Constant,
    pub(crate) policy: Redaction,
    pub(crate) clock: fn() -> SystemTime,
}

impl<W: Sink> BufferTarget for LayerTarget<W> {
    fn write_line(&self, line: &[u8]) {
        self.sink.write_line(line);
    }

    fn write_evicted(&self, request: &RequestContext, evicted: u64) {
        let mut count = Vec::with_capacity(32);
        self.style.raw_key(&mut count, "buffer_evicted");
        super::json::write_u64(&mut count, evicted);
        let mut line = Vec::with_capacity(256);
        let parts = Line {
            now: (self.clock)(),
            level: Level::WARN,
            message: b"buffered log lines evicted to stay within the buffer caps",
            logger: "corrlog",
            request: Some(request),
            fields: &[&count],
            nested: &[],
            keys: &["buffer_evicted"],
            policy: &self.policy,
            constant: &self.constant,
        };
        self.style
            .write_line(&mut line, &mut TimestampCache::default(), &parts);
        self.sink.write_line(&line);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Counts the span hooks a filter is given.
    #[derive(Clone, Default)]
    struct SpanHooks(Arc<AtomicUsize>);

    impl SpanHooks {
        fn hit(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl<S: Subscriber> Layer<S> for SpanHooks {
        fn on_new_span(&self, _: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            self.hit();
        }
        fn on_record(&self, _: &Id, _: &Record<'_>, _: Context<'_, S>) {
            self.hit();
        }
        fn on_follows_from(&self, _: &Id, _: &Id, _: Context<'_, S>) {
            self.hit();
        }
        fn on_enter(&self, _: &Id, _: Context<'_, S>) {
            self.hit();
        }
        fn on_exit(&self, _: &Id, _: Context<'_, S>) {
            self.hit();
        }
        fn on_close(&self, _: Id, _: Context<'_, S>) {
            self.hit();
        }
    }

    #[test]
    fn a_filter_without_span_hooks_is_not_told_of_spans() {
        // New (two spans), record, follows-from, enter, exit, close (two).
        for (hooks, expected) in [(true, 8), (false, 0)] {
            let counter = SpanHooks::default();
            let filter = BufferingFilter::off(counter.clone());
            let filter = if hooks {
                filter
            } else {
                filter.without_span_hooks()
            };
            let subscriber = tracing_subscriber::registry().with(filter);
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!("s", n = tracing::field::Empty);
                span.record("n", 1);
                span.follows_from(&tracing::info_span!("other"));
                span.in_scope(|| {});
            });
            assert_eq!(counter.0.load(Ordering::Relaxed), expected, "{hooks}");
        }
    }
}
