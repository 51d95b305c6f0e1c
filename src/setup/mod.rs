//! Set-up: [`builder()`](crate::builder) and what it configures.

mod env;
#[cfg(feature = "signal")]
mod signal;

use std::io::{self, Write};
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

use self::env::invalid_env;
#[cfg(feature = "signal")]
pub use self::signal::shutdown_signal;
use crate::error::{Error, ErrorKind};
use crate::fmt::layer::LogLayer;
use crate::fmt::line::{Constant, Style};
use crate::fmt::{Buffering, BufferingFilter, Format, Redaction, Service};
use crate::http::layer::RequestLayer;
use crate::output::{
    Backpressure, Destination, Pipeline, PipelineGuard, ShutdownReport, Stats, DEFAULT_QUEUE_BYTES,
};

/// Sets up logging in one call: the subscriber (filter + line layer), the
/// writer pipeline, and the tower layer for your router. Made by
/// [`crate::builder()`].
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use corrlog::Format;
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let logging = corrlog::builder().format(Format::Json).init()?;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "ok" }))
///     .layer(logging.request_layer());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(corrlog::shutdown_signal()) // Ctrl-C or SIGTERM
///     .await?;
///
/// // Write out every queued line before exiting.
/// let report = logging.shutdown(std::time::Duration::from_secs(5));
/// eprintln!("{} lines written, {} dropped", report.stats.written, report.stats.dropped);
/// # Ok(())
/// # }
/// ```
///
/// # Defaults
///
/// | setting | default | set with |
/// |---|---|---|
/// | format | pretty on a terminal (coloured), JSON lines otherwise | [`Builder::format`], `CORRLOG_FORMAT` |
/// | level | `info` | [`Builder::level`], `CORRLOG_LEVEL`, `RUST_LOG` |
/// | output | stdout | [`Builder::output`], `CORRLOG_FILE` |
///
/// All outputs go through the [pipeline](crate::output::Pipeline): I/O
/// happens on the writer thread, never on the request path.
///
/// # Environment overrides
///
/// Read by [`Builder::init`] and [`Builder::build`] unless
/// [`Builder::use_env`] is `false`; they win over the code.
///
/// | variable | values | overrides |
/// |---|---|---|
/// | `CORRLOG_FORMAT` | `json`, `pretty`, `auto`, `ecs`, `gcp`, `datadog` | [`Builder::format`] |
/// | `CORRLOG_LEVEL` | a filter: `info`, `warn,orders=debug` | [`Builder::level`] |
/// | `RUST_LOG` | the same, used when `CORRLOG_LEVEL` is unset | [`Builder::level`] |
/// | `CORRLOG_FILE` | a path | output: [`Destination::File`] there (rotating at 100 MiB, 10 old files kept) |
/// | `CORRLOG_BACKPRESSURE` | `block`, `drop` | [`Builder::backpressure`] |
/// | `CORRLOG_QUEUE_BYTES` | a byte count | [`Builder::queue_bytes`] |
/// | `NO_COLOR` | any value | turns colour off in pretty output |
/// | `OTEL_SERVICE_NAME` | a name of at most 255 bytes, UTF-8 | the service name of [`Builder::service`] |
/// | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...`, values percent-encoded, service fields of at most 255 bytes | `service.name` (when `OTEL_SERVICE_NAME` is unset), `service.version`, `service.instance.id` and `deployment.environment.name` of [`Builder::service`]; other keys are ignored |
/// | `GOOGLE_CLOUD_PROJECT` | a project id | [`Builder::gcp_project`] |
/// | `CORRLOG_BUFFER` | `trace`, `debug`, `info`, `warn` (the most verbose level buffered), `off` | [`Builder::buffering`] (keeping its byte caps) |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | a base URL, `http://collector:4318` | (feature `otlp`) export OTLP log records to `<base>/v1/logs` (`Builder::otlp` (feature `otlp`)) |
/// | `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` | a full URL | the same, used as it is; wins over the base |
/// | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_LOGS_HEADERS` | `key=value,...`, values percent-encoded | headers sent with every export request (the logs variable wins for a key in both) |
/// | `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_EXPORTER_OTLP_LOGS_TIMEOUT` | milliseconds | the timeout of one export request (default 10000) |
/// | `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_EXPORTER_OTLP_LOGS_PROTOCOL` | `http/protobuf` | anything else is refused: corrlog exports OTLP/HTTP with protobuf |
/// | `OTEL_SDK_DISABLED` | `true` | no OTLP export |
///
/// A value corrlog cannot use (a typo in `RUST_LOG` too) makes `init` and
/// `build` return an [`Error`] naming the variable, so a misconfigured
/// service fails at start rather than logging at a level nobody chose.
///
/// Every named logger (tracing target) shares the one pipeline, filter and
/// format.
#[must_use]
#[derive(Debug)]
pub struct Builder {
    format: Format,
    level: String,
    /// The variable the level came from, when it came from one.
    level_var: Option<&'static str>,
    output: Destination,
    backpressure: Backpressure,
    queue_bytes: usize,
    fallback_to_stderr: bool,
    layer: RequestLayer,
    redaction: Redaction,
    service: Service,
    gcp_project: Option<String>,
    panic_lines: Option<bool>,
    buffer: Option<Buffering>,
    #[cfg(feature = "otlp")]
    otlp: Option<crate::output::otlp::Otlp>,
    use_env: bool,
}

/// Starts a [`Builder`] with its defaults. See [`Builder`].
///
/// ```no_run
/// let logging = corrlog::builder().init()?;
/// # Ok::<(), corrlog::Error>(())
/// ```
pub fn builder() -> Builder {
    Builder {
        format: Format::Auto,
        level: "info".to_owned(),
        level_var: None,
        output: Destination::Stdout,
        backpressure: Backpressure::default(),
        queue_bytes: DEFAULT_QUEUE_BYTES,
        fallback_to_stderr: false,
        layer: RequestLayer::new(),
        redaction: Redaction::default(),
        service: Service::default(),
        gcp_project: None,
        panic_lines: None,
        buffer: None,
        #[cfg(feature = "otlp")]
        otlp: None,
        use_env: true,
    }
}

/// What [`Builder::init`] and [`Builder::build`] return.
///
/// ```no_run
/// let logging = corrlog::builder().init()?;
/// let app: axum::Router = axum::Router::new().layer(logging.request_layer());
/// // ... serve ...
/// logging.shutdown(std::time::Duration::from_secs(5));
/// # Ok::<(), corrlog::Error>(())
/// ```
#[must_use = "dropping Logging shuts the pipeline down; keep it for the life of the program"]
#[derive(Debug)]
pub struct Logging {
    layer: RequestLayer,
    guard: PipelineGuard,
    /// The OTLP output's pipeline, when one is set up.
    otlp: Option<PipelineGuard>,
}

impl Logging {
    /// The tower layer to add to your router, configured with the builder
    /// (a cheap clone).
    ///
    /// ```no_run
    /// let logging = corrlog::builder().init()?;
    /// let app: axum::Router = axum::Router::new().layer(logging.request_layer());
    /// # Ok::<(), corrlog::Error>(())
    /// ```
    pub fn request_layer(&self) -> RequestLayer {
        self.layer.clone()
    }

    /// The pipeline's counters so far.
    pub fn stats(&self) -> Stats {
        self.guard.stats()
    }

    /// Writes out everything queued and stops the writer thread, waiting
    /// at most `timeout`. Dropping `Logging` does the same with a 5 s
    /// deadline, without the report.
    ///
    /// ```no_run
    /// let logging = corrlog::builder().init()?;
    /// // ... serve until a shutdown signal ...
    /// let report = logging.shutdown(std::time::Duration::from_secs(5));
    /// assert_eq!(report.stats.dropped, 0);
    /// # Ok::<(), corrlog::Error>(())
    /// ```
    pub fn shutdown(self, timeout: Duration) -> ShutdownReport {
        let started = std::time::Instant::now();
        let mut report = self.guard.shutdown(timeout);
        if let Some(otlp) = self.otlp {
            let left = timeout.saturating_sub(started.elapsed());
            let otlp = otlp.shutdown(left);
            report.timed_out |= otlp.timed_out;
            report.otlp = Some(otlp.stats);
        }
        report
    }

    /// The OTLP output's counters so far, when the builder set one up
    /// (feature `otlp`): `written` records were delivered, `failed` ones
    /// were refused or could not be sent within the retry window.
    pub fn otlp_stats(&self) -> Option<Stats> {
        self.otlp.as_ref().map(PipelineGuard::stats)
    }
}

/// A subscriber built by [`Builder::build`], to install yourself (e.g. with
/// `tracing::subscriber::set_default` in a test): the filter, the line
/// layer, and the OTLP output's layer when there is one.
pub type BuiltSubscriber = tracing_subscriber::layer::Layered<
    Option<LogLayer<Pipeline>>,
    tracing_subscriber::layer::Layered<
        LogLayer<Pipeline>,
        tracing_subscriber::layer::Layered<
            BufferingFilter<EnvFilter>,
            tracing_subscriber::Registry,
        >,
    >,
>;

impl Builder {
    /// The line format. Defaults to [`Format::Auto`].
    ///
    /// ```
    /// let builder = corrlog::builder().format(corrlog::Format::Json);
    /// # drop(builder);
    /// ```
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The filter: a level (`"info"`) or `EnvFilter` directives
    /// (`"info,orders=debug,hyper=warn"`). Defaults to `"info"`.
    ///
    /// ```
    /// let builder = corrlog::builder().level("info,orders=debug,hyper=warn");
    /// # drop(builder);
    /// ```
    pub fn level(mut self, directives: impl Into<String>) -> Self {
        self.level = directives.into();
        self
    }

    /// Where lines go. Defaults to [`Destination::Stdout`].
    ///
    /// ```
    /// use corrlog::output::{Destination, RollingFile};
    ///
    /// let builder = corrlog::builder().output(Destination::File(RollingFile::builder("logs/app.log")));
    /// # drop(builder);
    /// ```
    pub fn output(mut self, output: Destination) -> Self {
        self.output = output;
        self
    }

    /// The pipeline's full-queue policy. Defaults to
    /// `Backpressure::Block { max_wait: 50ms }`; see [`Backpressure`].
    ///
    /// ```
    /// use corrlog::output::Backpressure;
    ///
    /// let builder = corrlog::builder().backpressure(Backpressure::Drop);
    /// # drop(builder);
    /// ```
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        self.backpressure = policy;
        self
    }

    /// The pipeline's queue size in bytes. Defaults to
    /// [`DEFAULT_QUEUE_BYTES`] (8 MiB); see
    /// [`PipelineBuilder::queue_bytes`](crate::output::PipelineBuilder::queue_bytes).
    ///
    /// ```
    /// let builder = corrlog::builder().queue_bytes(32 << 20);
    /// # drop(builder);
    /// ```
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Write to stderr when the output fails. Off by default.
    ///
    /// ```
    /// let builder = corrlog::builder().fallback_to_stderr(true);
    /// # drop(builder);
    /// ```
    pub fn fallback_to_stderr(mut self, on: bool) -> Self {
        self.fallback_to_stderr = on;
        self
    }

    /// The tower layer [`Logging::request_layer`] returns, e.g. with other
    /// headers or edge mode. Defaults to [`RequestLayer::new`].
    ///
    /// ```
    /// let builder = corrlog::builder().request_layer(corrlog::RequestLayer::new().edge(true));
    /// # drop(builder);
    /// ```
    pub fn request_layer(mut self, layer: RequestLayer) -> Self {
        self.layer = layer;
        self
    }

    /// The redaction policy for every line, access lines included.
    /// Defaults to [`Redaction::default`]; see [`crate::fmt`].
    ///
    /// ```
    /// use corrlog::fmt::Redaction;
    ///
    /// let builder = corrlog::builder()
    ///     .redaction(Redaction::default().mask_names_containing(["ssn"]));
    /// # drop(builder);
    /// ```
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// Which service, version, instance and environment wrote each line
    /// (see [`Service`]); the `OTEL_SERVICE_NAME` and
    /// `OTEL_RESOURCE_ATTRIBUTES` variables override it field by field.
    /// Unset by default: lines name no service unless one is set here or
    /// in the environment. A service without an instance id gets a random
    /// one, made once at start.
    ///
    /// ```
    /// use corrlog::fmt::Service;
    ///
    /// let builder = corrlog::builder()
    ///     .service(Service::new("orders").version(env!("CARGO_PKG_VERSION")));
    /// # drop(builder);
    /// ```
    pub fn service(mut self, service: Service) -> Self {
        self.service = service;
        self
    }

    /// The Google Cloud project whose Cloud Trace holds the traces: with
    /// [`Format::Gcp`], lines then carry
    /// `logging.googleapis.com/trace` as
    /// `projects/<project_id>/traces/<trace_id>`. `GOOGLE_CLOUD_PROJECT`
    /// overrides it.
    ///
    /// ```
    /// let builder = corrlog::builder().format(corrlog::Format::Gcp).gcp_project("my-project");
    /// # drop(builder);
    /// ```
    pub fn gcp_project(mut self, project_id: impl Into<String>) -> Self {
        self.gcp_project = Some(project_id.into());
        self
    }

    /// Whether a panic is written as one ERROR line in the configured
    /// format, instead of the standard library's multi-line text on stderr
    /// (see [`LogLayer::panic_lines`] for what the line holds and how
    /// other hooks are kept). On by default for JSON and the vendor
    /// formats, off for pretty lines, where the usual text reads better.
    /// Either way, queued lines are flushed when a thread panics (see
    /// [`Pipeline`](crate::output::Pipeline#panics)).
    ///
    /// ```
    /// let builder = corrlog::builder().panic_lines(false);
    /// # drop(builder);
    /// ```
    pub fn panic_lines(mut self, on: bool) -> Self {
        self.panic_lines = Some(on);
        self
    }

    /// Per-request log buffering (see [`Buffering`]): a request's lines
    /// below the level filter, down to `buffering`'s level, are kept and
    /// written only if the request fails. Off by default;
    /// `CORRLOG_BUFFER=debug` (or `trace`, `info`, `warn`, or `off`) overrides it.
    ///
    /// ```
    /// use corrlog::fmt::Buffering;
    /// use tracing::Level;
    ///
    /// let builder = corrlog::builder()
    ///     .level("info")
    ///     .buffering(Buffering::up_to(Level::DEBUG).request_bytes(32 * 1024));
    /// # drop(builder);
    /// ```
    pub fn buffering(mut self, buffering: Buffering) -> Self {
        self.buffer = Some(buffering);
        self
    }

    /// Whether the `CORRLOG_*`, `OTEL_*`, `GOOGLE_CLOUD_PROJECT`,
    /// `RUST_LOG` and `NO_COLOR` variables override the code. On by
    /// default.
    ///
    /// ```
    /// let builder = corrlog::builder().use_env(false);
    /// # drop(builder);
    /// ```
    pub fn use_env(mut self, on: bool) -> Self {
        self.use_env = on;
        self
    }

    /// Also export every line as an OTLP log record (feature `otlp`), to a
    /// collector or any OTLP/HTTP receiver, beside the configured output.
    /// The `OTEL_EXPORTER_OTLP_*` variables set or override it; see the
    /// [`otlp`](crate::output::otlp) module for the records and delivery.
    ///
    /// ```
    /// use corrlog::output::otlp::Otlp;
    ///
    /// let builder = corrlog::builder().otlp(Otlp::base("http://127.0.0.1:4318"));
    /// # drop(builder);
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp(mut self, otlp: crate::output::otlp::Otlp) -> Self {
        self.otlp = Some(otlp);
        self
    }

    /// Builds the subscriber and starts the pipeline without installing
    /// anything globally: for a test's scoped subscriber, or to add a layer
    /// of your own (such as `tracing-opentelemetry`'s, whose exported span
    /// ids the lines then carry; see the `opentelemetry` feature) before
    /// installing it. [`Builder::init`] is this plus installing.
    ///
    /// ```no_run
    /// use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
    ///
    /// let (subscriber, logging) = corrlog::builder().build()?;
    /// // Sets the global default and, with tracing-subscriber's `tracing-log`
    /// // feature (a default one), routes `log` records into it too.
    /// subscriber.with(tracing_subscriber::layer::Identity::new()).init();
    /// # drop(logging);
    /// # Ok::<(), corrlog::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// An invalid filter, environment variable, or log file.
    ///
    /// ```
    /// use corrlog::testing::TestLogs;
    ///
    /// let capture = TestLogs::new();
    /// let (subscriber, logging) = corrlog::builder()
    ///     .format(corrlog::Format::Json)
    ///     .output(corrlog::output::Destination::Writer(Box::new(capture.clone())))
    ///     .use_env(false)
    ///     .build()?;
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("scoped"));
    /// logging.shutdown(std::time::Duration::from_secs(5));
    /// assert!(capture.lines()[0].contains(r#""message":"scoped""#));
    /// # Ok::<(), corrlog::Error>(())
    /// ```
    pub fn build(mut self) -> Result<(BuiltSubscriber, Logging), Error> {
        if self.use_env {
            self.apply_env()?;
        }
        let filter = EnvFilter::builder()
            .parse(&self.level)
            .map_err(|e| match self.level_var {
                Some(var) => invalid_env(
                    var,
                    self.level.clone(),
                    "a level (info) or directives like \"info,orders=debug\"",
                ),
                None => Error::new(ErrorKind::InvalidFilter {
                    directive: self.level.clone(),
                    message: e.to_string(),
                }),
            })?;
        let terminal = self.output.is_terminal();
        let color = terminal && !(self.use_env && std::env::var_os("NO_COLOR").is_some());
        let style = self.format.style(|| terminal, color);
        let panic_lines = self
            .panic_lines
            .unwrap_or(!matches!(style, Style::Pretty { .. }));
        let service = (!self.service.is_empty()).then(|| self.service.with_default_instance());
        let constant = Constant::new(style, service.as_ref(), self.gcp_project.as_deref());
        let output: Box<dyn Write + Send> = match self.output {
            Destination::Stdout => Box::new(io::stdout()),
            Destination::Stderr => Box::new(io::stderr()),
            Destination::File(file) => Box::new(file.open()?),
            Destination::Writer(w) => w,
        };
        let (pipeline, guard) = Pipeline::builder(output)
            .queue_bytes(self.queue_bytes)
            .report_style(style, constant)
            .backpressure(self.backpressure)
            .fallback_to_stderr(self.fallback_to_stderr)
            .start();
        // The OTLP output: its own pipeline (a slow collector never holds
        // up the lines), fed JSON lines with the same redaction and
        // identity, which its writer turns into records.
        #[cfg(feature = "otlp")]
        let (otlp_layer, otlp_guard) = match self.otlp {
            Some(otlp) => {
                let json_constant = Constant::new(Style::Json, service.as_ref(), None);
                let (pipeline, guard) = Pipeline::builder(otlp.writer())
                    .queue_bytes(self.queue_bytes)
                    .report_style(Style::Json, json_constant)
                    .backpressure(self.backpressure)
                    .fallback_to_stderr(false)
                    .start();
                let mut otlp_layer = LogLayer::with_style(pipeline, Style::Json)
                    .redaction(self.redaction.clone())
                    .identity(service.clone(), None)
                    .panic_lines(panic_lines);
                if let Some(buffering) = self.buffer {
                    otlp_layer = otlp_layer.buffering(buffering);
                }
                (Some(otlp_layer), Some(guard))
            }
            None => (None, None),
        };
        #[cfg(not(feature = "otlp"))]
        let (otlp_layer, otlp_guard) = (None, None);
        let mut layer = LogLayer::with_style(pipeline, style)
            .redaction(self.redaction)
            .identity(service, self.gcp_project)
            .panic_lines(panic_lines);
        let filter = match self.buffer {
            Some(buffering) => {
                layer = layer.buffering(buffering);
                BufferingFilter::new(filter, &buffering)
            }
            None => BufferingFilter::off(filter),
        };
        // Span directives (`[span{field=value}]`) are the only ones an
        // `EnvFilter` tracks spans for; without any, its span hooks would
        // take its locks on every span entered and left, for nothing.
        let filter = if has_span_directives(&self.level) {
            filter
        } else {
            filter.without_span_hooks()
        };
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .with(otlp_layer);
        Ok((
            subscriber,
            Logging {
                layer: self.layer,
                guard,
                otlp: otlp_guard,
            },
        ))
    }

    /// Builds everything and installs it as the global subscriber; with the
    /// `log` feature, also routes `log` records into it.
    ///
    /// # Errors
    ///
    /// An invalid filter, environment variable or log file, or a global
    /// subscriber already set.
    ///
    /// ```no_run
    /// let logging = corrlog::builder().format(corrlog::Format::Json).init()?;
    /// # drop(logging);
    /// # Ok::<(), corrlog::Error>(())
    /// ```
    pub fn init(self) -> Result<Logging, Error> {
        let (subscriber, logging) = self.build()?;
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| Error::new(ErrorKind::SubscriberAlreadySet))?;
        #[cfg(feature = "log")]
        {
            // Another logger may own `log` already; tracing still works.
            let _ = tracing_log::LogTracer::init();
        }
        Ok(logging)
    }
}

/// Whether `EnvFilter` directives filter by span (`target[span]=level`,
/// `[{field=value}]=level`): the only ones that make it track spans.
fn has_span_directives(directives: &str) -> bool {
    directives.contains('[')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::Capture;

    #[test]
    fn span_directives_are_told_apart() {
        for plain in ["info", "warn,orders=debug", "orders::db=trace,off", ""] {
            assert!(!has_span_directives(plain), "{plain}");
        }
        for spanned in [
            "warn,[checkout]=debug",
            "orders[req{id=7}]=trace",
            "[{user}]=info",
        ] {
            assert!(has_span_directives(spanned), "{spanned}");
        }
    }

    /// With span directives the filter still sees spans; without, the
    /// lines it lets through are the same as ever.
    #[test]
    fn span_directives_still_work_through_the_builder() {
        for (level, expected) in [
            ("warn,[checkout]=debug", vec!["in checkout", "warned"]),
            ("warn", vec!["warned"]),
            ("debug", vec!["in checkout", "outside", "warned"]),
        ] {
            let capture = Capture::new();
            let (subscriber, logging) = builder()
                .format(Format::Json)
                .level(level)
                .output(Destination::Writer(Box::new(capture.clone())))
                .use_env(false)
                .build()
                .unwrap();
            tracing::subscriber::with_default(subscriber, || {
                tracing::info_span!("checkout").in_scope(|| tracing::debug!("in checkout"));
                tracing::debug!("outside");
                tracing::warn!("warned");
            });
            logging.shutdown(Duration::from_secs(5));
            let messages: Vec<String> = capture
                .lines()
                .iter()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].to_string()
                })
                .map(|m| m.trim_matches('"').to_owned())
                .collect();
            assert_eq!(messages, expected, "{level}");
        }
    }

    #[test]
    fn build_gives_a_working_subscriber() {
        let capture = Capture::new();
        let (subscriber, logging) = builder()
            .format(Format::Json)
            .output(Destination::Writer(Box::new(capture.clone())))
            .use_env(false)
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "orders", "kept");
            tracing::debug!("filtered out at info");
        });
        let report = logging.shutdown(Duration::from_secs(5));
        assert_eq!(report.stats.written, 1);
        assert!(capture.lines()[0].contains(r#""logger":"orders""#));
    }

    #[test]
    fn a_bad_filter_is_a_clear_error() {
        let err = builder()
            .level("info,=[")
            .use_env(false)
            .build()
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidFilter { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("invalid log filter"));
    }
}
