//! [`LogLayer`]: the `tracing_subscriber` layer that turns each event into
//! one line, with the request's id, trace ids and bound fields at top
//! level.

use std::cell::RefCell;
use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use tracing::span::{Attributes, Record};
use tracing::{Event, Id, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::access::{self, AccessKeys};
use super::buffer::{is_marked, Buffering, LayerTarget};
use super::json::has_key;
use super::line::{Constant, Format, Line, Style};
use super::redact::Redaction;
use super::service::Service;
use super::sink::Sink;
use super::span_fields::{any_live as any_span_fields, record_span, SpanFields};
use super::time::TimestampCache;
use super::visitor::{FieldVisitor, Target};
use crate::context::buffer::{BufferTarget, Offer, Phase};
use crate::context::{RequestContext, ACCESS_TARGET, REQUEST_SPAN_NAME, REQUEST_SPAN_TARGET};
use crate::panic::{catch_panic, install_hook, mark_panic_line_written, HOOK_EVENT, PANIC_TARGET};

/// Buffers above this size are released after use, so one huge event does
/// not pin its memory in every thread forever.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A `tracing_subscriber` layer writing flat JSON lines with the request id
/// and bound fields at top level. See the [module docs](crate::fmt) for
/// the schema.
///
/// ```
/// use corrlog::output::WriterSink;
/// use tracing_subscriber::layer::SubscriberExt;
/// use tracing_subscriber::util::SubscriberInitExt;
///
/// tracing_subscriber::registry()
///     .with(corrlog::LogLayer::new(WriterSink::new(std::io::stdout())))
///     .init();
/// tracing::info!("ready");
/// ```
pub struct LogLayer<W> {
    sink: Arc<W>,
    clock: fn() -> SystemTime,
    style: Style,
    /// Colour for pretty lines (`LogLayer::color`).
    color: bool,
    redaction: Redaction,
    constant: Constant,
    /// The service and project as given: the constant part of the line is
    /// encoded from them whenever either is set.
    service: Option<Service>,
    gcp_project: Option<String>,
    panic_lines: bool,
    buffering: Option<Buffering>,
    /// Where this layer's buffered lines go on a flush; made on first use,
    /// once the layer's settings are final.
    target: OnceLock<Arc<dyn BufferTarget>>,
    /// The access line's keys in this layer's format and policy; made on
    /// the first access line, once the layer's settings are final.
    access_keys: OnceLock<AccessKeys>,
}

impl<W> fmt::Debug for LogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogLayer").finish_non_exhaustive()
    }
}

impl<W: Sink> LogLayer<W> {
    /// A layer writing JSON lines (see the [line schema](crate::fmt)) to
    /// `sink`; [`LogLayer::format`] picks another format. For I/O off the
    /// request path, give it a [`Pipeline`](crate::output::Pipeline), as
    /// [`crate::builder()`] does.
    ///
    /// ```
    /// use corrlog::testing::TestLogs;
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let logs = TestLogs::new();
    /// let layer = corrlog::LogLayer::new(logs.clone());
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(target: "orders", "ready");
    /// });
    /// assert!(logs.lines()[0].ends_with(r#""message":"ready","logger":"orders"}"#));
    /// ```
    pub fn new(sink: W) -> Self {
        LogLayer::with_style(sink, Style::Json)
    }

    /// The line format (see [`Format`] and the [format
    /// table](crate::fmt#formats)). Defaults to [`Format::Json`];
    /// [`Format::Auto`] is pretty when standard output is a terminal.
    ///
    /// ```
    /// use corrlog::{testing::TestLogs, Format, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let logs = TestLogs::new();
    /// let layer = LogLayer::new(logs.clone()).format(Format::Ecs);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::warn!(target: "orders", "disk low");
    /// });
    /// assert!(logs.lines()[0].starts_with(r#"{"@timestamp":""#));
    /// assert!(logs.lines()[0].ends_with(
    ///     r#""log.level":"warn","message":"disk low","ecs.version":"8.11.0","log.logger":"orders"}"#
    /// ));
    ///
    /// let logs = TestLogs::new();
    /// let layer = LogLayer::new(logs.clone()).format(Format::Pretty);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(target: "orders", order_id = 42, "loading order");
    /// });
    /// assert!(logs.lines()[0].ends_with("  INFO orders: loading order order_id=42"));
    /// ```
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.style = format.style(|| std::io::stdout().is_terminal(), self.color);
        self.encode_constant();
        self
    }

    /// Whether pretty lines are coloured with ANSI escapes. Off by
    /// default; other formats ignore it.
    ///
    /// ```
    /// use corrlog::{testing::TestLogs, Format, LogLayer};
    ///
    /// let layer = LogLayer::new(TestLogs::new()).format(Format::Pretty).color(true);
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn color(mut self, on: bool) -> Self {
        self.color = on;
        if let Style::Pretty { color } = &mut self.style {
            *color = on;
        }
        self
    }

    /// The Google Cloud project whose Cloud Trace holds the traces: with
    /// [`Format::Gcp`], lines then carry `logging.googleapis.com/trace` as
    /// `projects/<project_id>/traces/<trace_id>`.
    ///
    /// ```
    /// use corrlog::{testing::TestLogs, Format, LogLayer, RequestContext, RequestId};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let logs = TestLogs::new();
    /// let layer = LogLayer::new(logs.clone()).format(Format::Gcp).gcp_project("my-project");
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::warn!(target: "orders", "slow");
    /// });
    /// assert!(logs.lines()[0].starts_with(r#"{"time":""#));
    /// assert!(logs.lines()[0].ends_with(r#""severity":"WARNING","message":"slow","logger":"orders"}"#));
    /// ```
    #[must_use]
    pub fn gcp_project(mut self, project_id: impl Into<String>) -> Self {
        self.gcp_project = Some(project_id.into());
        self.encode_constant();
        self
    }

    pub(crate) fn with_style(sink: W, style: Style) -> Self {
        LogLayer {
            sink: Arc::new(sink),
            clock: SystemTime::now,
            style,
            color: false,
            redaction: Redaction::default(),
            constant: Constant::default(),
            service: None,
            gcp_project: None,
            panic_lines: true,
            buffering: None,
            target: OnceLock::new(),
            access_keys: OnceLock::new(),
        }
    }

    fn encode_constant(&mut self) {
        self.constant = Constant::new(
            self.style,
            self.service.as_ref(),
            self.gcp_project.as_deref(),
        );
    }

    /// Sets the service and Cloud Logging project, already resolved.
    pub(crate) fn identity(
        mut self,
        service: Option<Service>,
        gcp_project: Option<String>,
    ) -> Self {
        self.service = service;
        self.gcp_project = gcp_project;
        self.encode_constant();
        self
    }

    /// The service identity written on every line (see [`Service`]), in
    /// this layer's format's names. Encoded once, here. A service without
    /// an instance id gets a random one (a UUID, one per call).
    ///
    /// ```
    /// use corrlog::{fmt::Service, testing::TestLogs, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let capture = TestLogs::new();
    /// let layer = LogLayer::new(capture.clone()).format(corrlog::Format::Datadog)
    ///     .service(Service::new("orders").version("1.4.2").environment("staging"));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!("ready");
    /// });
    /// let line: serde_json::Value = serde_json::from_str(&capture.lines()[0]).unwrap();
    /// assert_eq!(line["service"], "orders");
    /// assert_eq!(line["version"], "1.4.2");
    /// assert_eq!(line["env"], "staging");
    /// assert_eq!(line["instance_id"].as_str().unwrap().len(), 36);
    /// ```
    #[must_use]
    pub fn service(mut self, service: Service) -> Self {
        let service = (!service.is_empty()).then(|| service.with_default_instance());
        let project = self.gcp_project.take();
        self.identity(service, project)
    }

    /// Whether a panic on a thread using this layer is written as one
    /// ERROR line (target `corrlog::panic`) with its message, location,
    /// thread, backtrace (when `RUST_BACKTRACE` asks for one) and the
    /// request's ids, instead of the standard library's multi-line text on
    /// stderr. On by default: adding the layer to a subscriber installs
    /// corrlog's panic hook, once per process. The hook calls the hook
    /// that was set before it (other than the standard library's, whose
    /// text the line replaces); a hook set after it replaces it unless it
    /// calls the one it found, so set such hooks before logging starts.
    /// With panic lines off, the standard library's text is printed as
    /// usual, and a panic corrlog catches (a handler's) is still written as
    /// one ERROR line with its message.
    ///
    /// ```
    /// use corrlog::{testing::TestLogs, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let logs = TestLogs::new();
    /// let layer = LogLayer::new(logs.clone()).panic_lines(false);
    /// # drop(tracing_subscriber::registry().with(layer));
    /// ```
    #[must_use]
    pub fn panic_lines(mut self, on: bool) -> Self {
        self.panic_lines = on;
        self
    }

    /// Replaces the clock, e.g. with a fixed time for exact test output.
    /// Defaults to [`SystemTime::now`].
    ///
    /// ```
    /// use std::time::{Duration, SystemTime, UNIX_EPOCH};
    /// use corrlog::{testing::TestLogs, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// fn fixed() -> SystemTime { UNIX_EPOCH + Duration::from_millis(1_768_991_400_123) }
    ///
    /// let capture = TestLogs::new();
    /// let layer = LogLayer::new(capture.clone()).clock(fixed);
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::warn!(target: "app", "disk low");
    /// });
    /// assert_eq!(
    ///     capture.lines()[0],
    ///     r#"{"timestamp":"2026-01-21T10:30:00.123Z","level":"WARN","message":"disk low","logger":"app"}"#
    /// );
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The redaction policy applied to every field of every line, the
    /// access line's path and headers included. Defaults to
    /// [`Redaction::default`].
    ///
    /// ```
    /// use corrlog::{fmt::Redaction, testing::TestLogs, LogLayer};
    /// use tracing_subscriber::layer::SubscriberExt;
    ///
    /// let capture = TestLogs::new();
    /// let layer = LogLayer::new(capture.clone())
    ///     .redaction(Redaction::default().mask_names_containing(["ssn"]));
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info!(customer_ssn = "078-05-1120", password = "hunter2", "signup");
    /// });
    /// let line = &capture.lines()[0];
    /// assert!(line.ends_with(r#""customer_ssn":"[REDACTED]","password":"[REDACTED]"}"#));
    /// ```
    #[must_use]
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// Keeps each request's lines that the level filter would drop, at
    /// `buffering`'s level or less verbose, until the request fails (see
    /// [`Buffering`], which has an example). The level filter must let
    /// those lines through: wrap it in a
    /// [`BufferingFilter`](super::BufferingFilter) with the same
    /// `Buffering`. [`Builder::buffering`](crate::Builder::buffering) does both.
    #[must_use]
    pub fn buffering(mut self, buffering: Buffering) -> Self {
        crate::context::buffer::set_in_use();
        self.buffering = Some(buffering);
        self
    }

    fn target(&self) -> &Arc<dyn BufferTarget> {
        self.target.get_or_init(|| {
            Arc::new(LayerTarget {
                sink: self.sink.clone(),
                style: self.style,
                constant: self.constant.clone(),
                policy: self.redaction.clone(),
                clock: self.clock,
            })
        })
    }

    /// Writes the line, or buffers it: `marked` when the level filter let
    /// the event through only to be buffered.
    fn deliver(&self, line: &[u8], request: Option<&RequestContext>, level: Level, marked: bool) {
        match (request, marked) {
            (Some(rc), true) => {
                let Some(buffering) = &self.buffering else {
                    // Below this layer's level, and it does not buffer.
                    return;
                };
                match rc.buffer().offer(self.target(), line, buffering.caps()) {
                    Offer::WriteNow => {}
                    Offer::Kept | Offer::Evicted | Offer::Drop => return,
                }
            }
            (None, true) => return,
            (Some(rc), false) => {
                if level == Level::ERROR && rc.buffer().phase() == Phase::Buffering {
                    rc.flush_buffer();
                }
            }
            (None, false) => {}
        }
        self.sink.write_line(line);
    }

    /// A reference to the sink.
    ///
    /// ```
    /// let layer = corrlog::LogLayer::new(corrlog::testing::TestLogs::new());
    /// assert!(layer.sink().lines().is_empty());
    /// ```
    pub fn sink(&self) -> &W {
        &self.sink
    }
}

/// Marks the HTTP layer's request span with the request's context, so that
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
    nested: Vec<u8>,
    clock: TimestampCache,
}

impl Scratch {
    fn clear(&mut self) {
        for buf in [
            &mut self.line,
            &mut self.message,
            &mut self.event_fields,
            &mut self.span_fields,
            &mut self.nested,
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

impl<W: Sink> LogLayer<W> {
    fn encode<S>(&self, s: &mut Scratch, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        s.clear();
        // Only a `BufferingFilter` marks events, and making one notes that
        // buffering is in use: without one, no thread-local lookup.
        let marked = crate::context::buffer::in_use() && is_marked(event.metadata());
        let Scratch {
            line,
            message,
            event_fields,
            span_fields,
            keys,
            nested,
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

        // An access line writes the request's headers itself, after the
        // event's fields: no span or bound field may add a second key.
        if meta.target() == ACCESS_TARGET
            && RequestContext::with_current(|rc| {
                rc.and_then(RequestContext::access_headers).is_some()
            })
        {
            keys.push("headers");
        }
        // The access line being dispatched: written from its typed values.
        let typed = meta.target() == ACCESS_TARGET
            && meta.fields().len() == access::FIELDS.len() + 1
            && access::with_pending(|line| {
                let encoded = self
                    .access_keys
                    .get_or_init(|| AccessKeys::new(style, &self.redaction));
                access::write(
                    encoded,
                    &self.redaction,
                    line,
                    access::Out {
                        message,
                        fields: event_fields,
                        nested,
                        keys,
                    },
                );
            })
            .is_some();
        let special = meta.target() == ACCESS_TARGET || meta.target() == PANIC_TARGET;
        if !typed {
            event.record(&mut FieldVisitor {
                fields: event_fields,
                message: Some(message),
                keys,
                style,
                skip_log_fields: from_log,
                policy: &self.redaction,
                special,
                nested: Some(nested),
                target: Target::default(),
            });
        }

        let now = (self.clock)();
        RequestContext::with_current(|current| {
            // Span fields, innermost first, each key once; and the request
            // span's context when the task-local one is absent. Neither to
            // look for: no walk.
            let mut span_request: Option<RequestContext> = None;
            if current.is_none() || any_span_fields() {
                if let Some(scope) = ctx.event_scope(event) {
                    for span in scope {
                        let ext = span.extensions();
                        if let Some(fields) = ext.get::<SpanFields>() {
                            for (key, encoded) in fields.entries(&self.redaction, style) {
                                if !has_key(keys, key) {
                                    keys.push(key);
                                    span_fields.extend_from_slice(encoded);
                                }
                            }
                        }
                        if current.is_none() && span_request.is_none() {
                            if let Some(SpanRequest(rc)) = ext.get::<SpanRequest>() {
                                span_request = Some(rc.clone());
                            }
                        }
                    }
                }
            }
            let parts = Line {
                now,
                level: *meta.level(),
                message,
                logger: meta.target(),
                request: current.or(span_request.as_ref()),
                fields: &[span_fields, event_fields],
                nested,
                keys,
                policy: &self.redaction,
                constant: &self.constant,
            };
            style.write_line(line, clock, &parts);
            self.deliver(line, parts.request, parts.level, marked);
        });
    }

    /// The line written instead of an event whose fields could not be
    /// formatted (a `Debug` impl panicked).
    fn write_fallback(&self, event: &Event<'_>) {
        let mut line = Vec::with_capacity(256);
        let meta = event.metadata();
        RequestContext::with_current(|request| {
            let parts = Line {
                now: (self.clock)(),
                level: *meta.level(),
                message: b"log event dropped: formatting one of its fields panicked",
                logger: meta.target(),
                request,
                fields: &[],
                nested: &[],
                keys: &[],
                policy: &self.redaction,
                constant: &self.constant,
            };
            self.style
                .write_line(&mut line, &mut TimestampCache::default(), &parts);
        });
        self.sink.write_line(&line);
    }
}

impl<S, W> tracing_subscriber::Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Sink,
{
    fn on_layer(&mut self, _subscriber: &mut S) {
        if self.panic_lines {
            install_hook(None);
        }
    }

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
            record_span(
                &mut ext,
                &Record::new(attrs.values()),
                &self.redaction,
                self.style,
            );
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        record_span(&mut ext, values, &self.redaction, self.style);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let panic_line = meta.target() == PANIC_TARGET && meta.name() == HOOK_EVENT;
        if panic_line && !self.panic_lines {
            return;
        }
        let result = catch_panic(|| {
            SCRATCH.with(|cell| match cell.try_borrow_mut() {
                Ok(mut scratch) => self.encode(&mut scratch, event, &ctx),
                // Re-entered: a field's Debug impl logged. Use a fresh
                // buffer rather than corrupt the outer line.
                Err(_) => self.encode(&mut Scratch::default(), event, &ctx),
            })
        });
        if result.is_err() {
            self.write_fallback(event);
        }
        if panic_line {
            mark_panic_line_written();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::Capture;

    #[test]
    fn format_and_color_combine_in_any_order() {
        let style = |layer: LogLayer<Capture>| layer.style;
        let new = || LogLayer::new(Capture::new());
        assert_eq!(style(new()), Style::Json);
        assert_eq!(
            style(new().format(Format::Pretty)),
            Style::Pretty { color: false }
        );
        assert_eq!(
            style(new().format(Format::Pretty).color(true)),
            Style::Pretty { color: true }
        );
        assert_eq!(
            style(new().color(true).format(Format::Pretty)),
            Style::Pretty { color: true }
        );
        // Colour means nothing to the JSON formats.
        assert_eq!(style(new().color(true).format(Format::Ecs)), Style::Ecs);
        assert_eq!(style(new().format(Format::Gcp)), Style::Gcp);
        assert_eq!(style(new().format(Format::Datadog)), Style::Datadog);
        // Auto asks of standard output, which is no terminal under test.
        let auto = style(new().format(Format::Auto));
        let expected = if std::io::stdout().is_terminal() {
            Style::Pretty { color: false }
        } else {
            Style::Json
        };
        assert_eq!(auto, expected);
    }
}
