//! The `tracing` layer that writes one flat JSON object per event.
//!
//! # Line schema
//!
//! ```text
//! {"timestamp":"2026-01-21T10:30:00.123Z","level":"INFO","message":"...","logger":"orders","request_id":"...","trace_id":"...","span_id":"...", <bound fields>, <span fields>, <event fields>}
//! ```
//!
//! | key | value |
//! |---|---|
//! | `timestamp` | RFC 3339, UTC, milliseconds, `Z` |
//! | `level` | `TRACE`, `DEBUG`, `INFO`, `WARN` or `ERROR` |
//! | `message` | the event's message (`""` when it has none) |
//! | `logger` | the event's target: the module path, or `target: "orders"` |
//! | `request_id` | the current request's id; **omitted** outside a request |
//! | `trace_id`, `span_id` | the request's W3C trace id and this hop's span id (see [`crate::trace_context`]); omitted when the context has no trace |
//! | bound fields | fields bound with [`crate::bind`] during the request |
//! | span fields | fields of every enclosing span, innermost span first |
//! | event fields | the event's own fields |
//!
//! Rules:
//! - Every field is top level; nothing is nested under `span` or `fields`.
//! - Integers, floats and booleans stay JSON numbers and booleans; NaN and
//!   infinities become strings; everything else is a string (`Debug` or
//!   `Display` output).
//! - When a key appears more than once, the innermost wins: an event field
//!   over a span field, an inner span over an outer one, any of them over a
//!   bound field. Each key is written once.
//! - A user field named like a reserved key (`timestamp`, `level`,
//!   `message`, `logger`, `request_id`, `trace_id`, `span_id`) is written
//!   as `fields.<name>`, so it can never overwrite them.
//! - Each line is valid JSON whatever the input: strings are escaped, and
//!   control, bidi and separator characters are written as `\uXXXX`. If a
//!   field's `Debug` impl panics, a line saying so is written instead and
//!   the next line is unaffected.
//!
//! Span fields are encoded once, when the span is created or recorded, and
//! copied as bytes into each line. In steady state an event allocates
//! nothing: the line is built in a reused per-thread buffer.
//!
//! ```
//! use corrlog::writer::Capture;
//! use corrlog::{LogLayer, RequestContext, RequestId};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let capture = Capture::new();
//! let subscriber = tracing_subscriber::registry().with(LogLayer::json(capture.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     let ctx = RequestContext::new(RequestId::new("req-1").unwrap());
//!     ctx.run(|| tracing::info!(target: "orders", order_id = 42, "order placed"));
//! });
//! let line = &capture.lines()[0];
//! assert!(line.starts_with(r#"{"timestamp":""#));
//! assert!(line.ends_with(
//!     r#","level":"INFO","message":"order placed","logger":"orders","request_id":"req-1","order_id":42}"#
//! ));
//! ```

use std::cell::RefCell;
use std::fmt;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{ExtensionsMut, LookupSpan};

use crate::context::RequestContext;
use crate::encoder::{self, FieldVisitor, Style, TimestampCache, DIM, RESET};
use crate::redact::{redact_url, Redaction, Verdict};
use crate::writer::{Sink, Stdout};

/// The target and name of the span the middleware opens per request.
pub(crate) const REQUEST_SPAN_TARGET: &str = "corrlog";
pub(crate) const REQUEST_SPAN_NAME: &str = "request";

/// Buffers above this size are released after use, so one huge event does
/// not pin its memory in every thread forever.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A `tracing_subscriber` layer writing flat JSON lines with the request id
/// and bound fields at top level. See the [module docs](crate::layer) for
/// the schema.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
///
/// tracing_subscriber::registry()
///     .with(corrlog::LogLayer::stdout())
///     .init();
/// tracing::info!("ready");
/// ```
pub struct LogLayer<W = Stdout> {
    sink: W,
    clock: fn() -> SystemTime,
    style: Style,
    redaction: Redaction,
}

impl<W> fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer").finish_non_exhaustive()
    }
}

impl LogLayer<Stdout> {
    /// A layer writing JSON lines to standard output, synchronously. For
    /// I/O off the request path, use [`crate::builder()`] or a
    /// [`Pipeline`](crate::pipeline::Pipeline) as the sink.
    pub fn stdout() -> Self {
        LogLayer::json(Stdout)
    }
}

impl<W: Sink> LogLayer<W> {
    /// A layer writing JSON lines (the schema above) to `sink`.
    pub fn json(sink: W) -> Self {
        LogLayer {
            sink,
            clock: SystemTime::now,
            style: Style::Json,
            redaction: Redaction::default(),
        }
    }

    /// A layer writing human-readable console lines to `sink`, coloured
    /// with ANSI escapes if `color`:
    ///
    /// ```text
    /// 2026-01-21T10:30:00.123Z  INFO orders: loading order request_id=550e8400-e29b-41d4-a716-446655440000 order_id="42"
    /// ```
    ///
    /// The same fields as the JSON lines, in the same order; values are
    /// written as JSON (strings quoted and escaped, so control characters
    /// never reach the terminal).
    ///
    /// ```
    /// use corrlog::{writer::Capture, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let capture = Capture::new();
    /// let layer = LogLayer::pretty(capture.clone(), false);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(target: "orders", order_id = 42, "loading order");
    /// });
    /// assert!(capture.lines()[0].ends_with("  INFO orders: loading order order_id=42"));
    /// ```
    pub fn pretty(sink: W, color: bool) -> Self {
        LogLayer {
            sink,
            clock: SystemTime::now,
            style: Style::Pretty { color },
            redaction: Redaction::default(),
        }
    }

    /// Replaces the clock, e.g. with a fixed time for exact test output.
    /// Defaults to [`SystemTime::now`].
    ///
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// use corrlog::{writer::Capture, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// fn fixed() -> SystemTime { UNIX_EPOCH + Duration::from_millis(1_768_991_400_123) }
    ///
    /// let capture = Capture::new();
    /// let layer = LogLayer::json(capture.clone()).with_clock(fixed);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::warn!(target: "app", "disk low");
    /// });
    /// assert_eq!(
    ///     capture.lines()[0],
    ///     r#"{"timestamp":"2026-01-21T10:30:00.123Z","level":"WARN","message":"disk low","logger":"app"}"#
    /// );
    /// ```
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The redaction policy applied to every field of every line. Defaults
    /// to [`Redaction::default`]; see [`crate::redact`].
    ///
    /// ```
    /// use corrlog::{redact::Redaction, writer::Capture, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let capture = Capture::new();
    /// let layer = LogLayer::json(capture.clone())
    ///     .with_redaction(Redaction::default().mask_fields_containing(["ssn"]));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(customer_ssn = "078-05-1120", password = "hunter2", "signup");
    /// });
    /// let line = &capture.lines()[0];
    /// assert!(line.ends_with(r#""customer_ssn":"[REDACTED]","password":"[REDACTED]"}"#));
    /// ```
    #[must_use]
    pub fn with_redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// A reference to the sink.
    pub fn sink(&self) -> &W {
        &self.sink
    }
}

/// A span's fields, encoded once as `(key, json value)` pairs.
///
/// Kept per redaction policy: several `LogLayer`s may share one registry
/// (JSON to a file and pretty lines on the console, say), each with its
/// own policy, and the span's extensions are shared between them.
#[derive(Default)]
struct SpanFields {
    by_policy: Vec<(u64, SpanEntries)>,
}

type SpanEntries = Vec<(&'static str, Box<[u8]>)>;

impl SpanFields {
    /// Records `values` as `policy` writes them. Recording a key again
    /// replaces its value, so two layers with the same policy agree.
    fn record(&mut self, values: &Record<'_>, policy: &Redaction) {
        let index = match self.by_policy.iter().position(|(id, _)| *id == policy.id()) {
            Some(index) => index,
            None => {
                self.by_policy.push((policy.id(), Vec::new()));
                self.by_policy.len() - 1
            }
        };
        values.record(&mut SpanVisitor {
            entries: &mut self.by_policy[index].1,
            buf: Vec::new(),
            keys: Vec::new(),
            policy,
        });
    }

    fn entries(&self, policy: &Redaction) -> &[(&'static str, Box<[u8]>)] {
        self.by_policy
            .iter()
            .find(|(id, _)| *id == policy.id())
            .map_or(&[], |(_, entries)| entries.as_slice())
    }
}

/// Records span field values into the span's [`SpanFields`], creating it
/// on first use.
fn record_span(ext: &mut ExtensionsMut<'_>, values: &Record<'_>, policy: &Redaction) {
    match ext.get_mut::<SpanFields>() {
        Some(fields) => fields.record(values, policy),
        None => {
            let mut fields = SpanFields::default();
            fields.record(values, policy);
            ext.insert(fields);
        }
    }
}

/// Encodes span fields one at a time with the event encoder, keeping each
/// value's JSON text under its key. A key recorded again replaces its value.
struct SpanVisitor<'a> {
    entries: &'a mut Vec<(&'static str, Box<[u8]>)>,
    buf: Vec<u8>,
    keys: Vec<&'static str>,
    policy: &'a Redaction,
}

impl SpanVisitor<'_> {
    fn put(&mut self, field: &Field, record: impl FnOnce(&mut FieldVisitor<'_>)) {
        self.buf.clear();
        record(&mut FieldVisitor {
            fields: &mut self.buf,
            message: None,
            keys: &mut self.keys,
            style: Style::Json,
            skip_log_fields: false,
            policy: self.policy,
        });
        let mut prefix = Vec::new();
        encoder::write_key(&mut prefix, field.name());
        let value: Box<[u8]> = self.buf.get(prefix.len()..).unwrap_or_default().into();
        match self.entries.iter_mut().find(|(k, _)| *k == field.name()) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((field.name(), value)),
        }
    }
}

macro_rules! delegate_visit {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method(&mut self, field: &Field, value: $ty) {
            self.put(field, |v| v.$method(field, value));
        }
    )*};
}

impl Visit for SpanVisitor<'_> {
    delegate_visit!(
        record_f64: f64,
        record_i64: i64,
        record_u64: u64,
        record_i128: i128,
        record_u128: u128,
        record_bool: bool,
        record_str: &str,
        record_error: &(dyn std::error::Error + 'static),
        record_debug: &dyn fmt::Debug
    );
}

/// Marks the middleware's request span with the request's context, so that
/// a future propagated with tracing's `.in_current_span()` alone still gets
/// the id onto its lines.
struct SpanRequest(RequestContext);

/// Per-thread scratch space, reused by every event on the thread.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    message: Vec<u8>,
    event_fields: Vec<u8>,
    span_fields: Vec<u8>,
    keys: Vec<&'static str>,
    clock: TimestampCache,
}

impl Scratch {
    fn clear(&mut self) {
        for buf in [
            &mut self.line,
            &mut self.message,
            &mut self.event_fields,
            &mut self.span_fields,
        ] {
            buf.clear();
            if buf.capacity() > KEEP_CAPACITY {
                buf.shrink_to(KEEP_CAPACITY);
            }
        }
        self.keys.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn level_color(level: &Level) -> &'static [u8] {
    match *level {
        Level::TRACE => b"\x1b[35m",
        Level::DEBUG => b"\x1b[34m",
        Level::INFO => b"\x1b[32m",
        Level::WARN => b"\x1b[33m",
        Level::ERROR => b"\x1b[1;31m",
    }
}

fn level_str(level: &Level) -> &'static [u8] {
    match *level {
        Level::TRACE => b"TRACE",
        Level::DEBUG => b"DEBUG",
        Level::INFO => b"INFO",
        Level::WARN => b"WARN",
        Level::ERROR => b"ERROR",
    }
}

impl<W: Sink> LogLayer<W> {
    fn encode<S>(&self, s: &mut Scratch, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        s.clear();
        let Scratch {
            line,
            message,
            event_fields,
            span_fields,
            keys,
            clock,
        } = s;
        let style = self.style;

        // Records bridged from the `log` crate carry their real target in
        // fields; use it as the logger name.
        #[cfg(feature = "log")]
        let normalized = tracing_log::NormalizeEvent::normalized_metadata(event);
        #[cfg(feature = "log")]
        let (meta, from_log) = match &normalized {
            Some(meta) => (meta, true),
            None => (event.metadata(), false),
        };
        #[cfg(not(feature = "log"))]
        let (meta, from_log) = (event.metadata(), false);

        event.record(&mut FieldVisitor {
            fields: event_fields,
            message: Some(message),
            keys,
            style,
            skip_log_fields: from_log,
            policy: &self.redaction,
        });

        // Span fields, innermost first, each key once; remember the request
        // span's context in case the task-local one is absent.
        let mut span_request: Option<RequestContext> = None;
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<SpanFields>() {
                    for (key, value) in fields.entries(&self.redaction) {
                        if !keys.contains(key) {
                            keys.push(key);
                            style.key(span_fields, key);
                            span_fields.extend_from_slice(value);
                        }
                    }
                }
                if span_request.is_none() {
                    if let Some(SpanRequest(rc)) = ext.get::<SpanRequest>() {
                        span_request = Some(rc.clone());
                    }
                }
            }
        }

        let now = (self.clock)();
        match style {
            Style::Json => {
                line.extend_from_slice(b"{\"timestamp\":");
                clock.write(line, now);
                line.extend_from_slice(b",\"level\":\"");
                line.extend_from_slice(level_str(meta.level()));
                line.extend_from_slice(b"\",\"message\":\"");
                line.extend_from_slice(message);
                line.extend_from_slice(b"\",\"logger\":");
                encoder::write_str(line, meta.target());
            }
            Style::Pretty { color } => {
                let start = |line: &mut Vec<u8>, code: &[u8]| {
                    if color {
                        line.extend_from_slice(code);
                    }
                };
                let end = |line: &mut Vec<u8>| {
                    if color {
                        line.extend_from_slice(RESET);
                    }
                };
                start(line, DIM);
                clock.write_raw(line, now);
                end(line);
                line.push(b' ');
                let level = level_str(meta.level());
                line.extend(std::iter::repeat_n(b' ', 5 - level.len()));
                start(line, level_color(meta.level()));
                line.extend_from_slice(level);
                end(line);
                line.push(b' ');
                start(line, DIM);
                encoder::escape_into(line, meta.target());
                line.push(b':');
                end(line);
                line.push(b' ');
                line.extend_from_slice(message);
            }
        }

        let write_request = |line: &mut Vec<u8>, rc: &RequestContext| {
            match style {
                Style::Json => {
                    line.extend_from_slice(b",\"request_id\":");
                    encoder::write_str(line, rc.id().as_str());
                    if let Some(trace) = rc.trace() {
                        line.extend_from_slice(b",\"trace_id\":\"");
                        line.extend_from_slice(trace.trace_hex());
                        line.extend_from_slice(b"\",\"span_id\":\"");
                        line.extend_from_slice(trace.span_hex());
                        line.push(b'"');
                    }
                }
                Style::Pretty { .. } => {
                    line.extend_from_slice(b" request_id=");
                    encoder::escape_into(line, rc.id().as_str());
                    if let Some(trace) = rc.trace() {
                        line.extend_from_slice(b" trace_id=");
                        line.extend_from_slice(trace.trace_hex());
                        line.extend_from_slice(b" span_id=");
                        line.extend_from_slice(trace.span_hex());
                    }
                }
            }
            for field in rc.fields().iter() {
                if !keys.iter().any(|k| *k == field.key) {
                    style.key(line, &field.key);
                    let max = self.redaction.max_bytes();
                    match (field.verdict(&self.redaction), &field.text) {
                        (Verdict::Secret, _) => line.extend_from_slice(b"\"[REDACTED]\""),
                        (Verdict::Url, Some(text)) => encoder::write_str_bounded(
                            line,
                            &redact_url(&self.redaction, text),
                            max,
                        ),
                        // The value was encoded when bound; re-encode only
                        // a string over the size cap.
                        (Verdict::Plain, Some(text)) if text.len() > max => {
                            encoder::write_str_bounded(line, text, max);
                        }
                        _ => line.extend_from_slice(field.json.as_bytes()),
                    }
                }
            }
        };
        RequestContext::with_current(|current| {
            if let Some(rc) = current.or(span_request.as_ref()) {
                write_request(line, rc);
            }
        });

        line.extend_from_slice(span_fields);
        line.extend_from_slice(event_fields);
        if style == Style::Json {
            line.push(b'}');
        }
        line.push(b'\n');
    }

    fn write_fallback(&self, event: &Event<'_>) {
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(b"{\"timestamp\":");
        TimestampCache::default().write(&mut line, (self.clock)());
        line.extend_from_slice(b",\"level\":\"");
        line.extend_from_slice(level_str(event.metadata().level()));
        line.extend_from_slice(
            b"\",\"message\":\"log event dropped: formatting one of its fields panicked\",\"logger\":",
        );
        encoder::write_str(&mut line, event.metadata().target());
        if let Some(id) = crate::context::request_id() {
            line.extend_from_slice(b",\"request_id\":");
            encoder::write_str(&mut line, id.as_str());
        }
        line.extend_from_slice(b"}\n");
        self.sink.write_line(&line);
    }
}

impl<S, W> tracing_subscriber::Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Sink,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let meta = attrs.metadata();
        // Another `LogLayer` in the same registry may have been here first:
        // never insert twice (the registry panics on that).
        if meta.target() == REQUEST_SPAN_TARGET
            && meta.name() == REQUEST_SPAN_NAME
            && ext.get_mut::<SpanRequest>().is_none()
        {
            if let Some(rc) = RequestContext::current() {
                ext.insert(SpanRequest(rc));
            }
        }
        if !attrs.values().is_empty() {
            record_span(&mut ext, &Record::new(attrs.values()), &self.redaction);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        record_span(&mut ext, values, &self.redaction);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let result = crate::pipeline::catch_panic(|| {
            SCRATCH.with(|cell| match cell.try_borrow_mut() {
                Ok(mut scratch) => {
                    self.encode(&mut scratch, event, &ctx);
                    self.sink.write_line(&scratch.line);
                }
                // Re-entered: a field's Debug impl logged. Use a fresh
                // buffer rather than corrupt the outer line.
                Err(_) => {
                    let mut scratch = Scratch::default();
                    self.encode(&mut scratch, event, &ctx);
                    self.sink.write_line(&scratch.line);
                }
            })
        });
        if result.is_err() {
            self.write_fallback(event);
        }
    }
}
