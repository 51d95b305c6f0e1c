//! One call that sets up logging: the subscriber (filter + line layer), the
//! writer pipeline, and the tower layer for your router.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use corrlog::Preset;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let logging = corrlog::builder().preset(Preset::Production).init()?;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "ok" }))
//!     .layer(logging.layer.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(corrlog::shutdown_signal()) // Ctrl-C or SIGTERM
//!     .await?;
//!
//! // Write out every queued line before exiting.
//! let report = logging.shutdown(std::time::Duration::from_secs(5));
//! eprintln!("{} lines written, {} dropped", report.stats.written, report.stats.dropped);
//! # Ok(())
//! # }
//! ```
//!
//! # Presets
//!
//! | preset | format | level | output |
//! |---|---|---|---|
//! | [`Preset::Production`] | JSON lines | `info` | stdout |
//! | [`Preset::Dev`] | pretty, coloured on a terminal | `debug` | stdout |
//! | [`Preset::Auto`] (default) | pretty on a terminal, JSON otherwise | `info` | stdout |
//!
//! All outputs go through the [pipeline](crate::pipeline): I/O happens on
//! the writer thread, never on the request path.
//!
//! # Environment overrides
//!
//! Read by [`Builder::init`] and [`Builder::build`] unless
//! [`Builder::ignore_env`] is set; they win over the code.
//!
//! | variable | values | overrides |
//! |---|---|---|
//! | `CORRLOG_FORMAT` | `json`, `pretty`, `auto` | [`Builder::format`] |
//! | `CORRLOG_LEVEL` | a filter: `info`, `warn,orders=debug` | [`Builder::level`] |
//! | `RUST_LOG` | the same, used when `CORRLOG_LEVEL` is unset | [`Builder::level`] |
//! | `CORRLOG_FILE` | a path | output: a [`RollingFile`] there |
//! | `CORRLOG_BACKPRESSURE` | `block`, `drop` | [`Builder::backpressure`] |
//! | `CORRLOG_QUEUE_BYTES` | a byte count | [`Builder::queue_bytes`] |
//! | `NO_COLOR` | any value | turns colour off in pretty output |
//!
//! A value corrlog cannot use (a typo in `RUST_LOG` too) makes `init` and
//! `build` return an [`Error`] naming the variable, so a misconfigured
//! service fails at start rather than logging at a level nobody chose.
//!
//! Every named logger (tracing target) shares the one pipeline, filter and
//! format.

use std::env;
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

use crate::error::{Error, ErrorKind};
use crate::layer::LogLayer;
use crate::middleware::CorrlogLayer;
use crate::pipeline::{Backpressure, Pipeline, PipelineGuard, ShutdownReport, Stats};
use crate::redact::Redaction;
use crate::rolling::{Period, RollingFile};

/// A starting configuration. See the [module docs](mod@crate::builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Preset {
    /// JSON lines to stdout at `info`.
    Production,
    /// Pretty console lines (coloured on a terminal) to stdout at `debug`.
    Dev,
    /// Pretty on a terminal, JSON otherwise, at `info`.
    #[default]
    Auto,
}

/// How lines are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line (see [`crate::layer`]).
    Json,
    /// Human-readable console lines.
    Pretty,
    /// Pretty when the output is a terminal, JSON otherwise.
    Auto,
}

/// Where lines go.
#[non_exhaustive]
pub enum Output {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A [`RollingFile`] at this path.
    File {
        /// The active file.
        path: PathBuf,
        /// Rotate past this size.
        max_bytes: Option<u64>,
        /// Rotate at these boundaries.
        period: Option<Period>,
        /// Rotated files to keep.
        max_files: usize,
    },
    /// Any writer.
    Writer(Box<dyn Write + Send>),
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Stdout => f.write_str("Stdout"),
            Output::Stderr => f.write_str("Stderr"),
            Output::File { path, .. } => f.debug_struct("File").field("path", path).finish(),
            Output::Writer(_) => f.write_str("Writer(..)"),
        }
    }
}

impl Output {
    /// A file at `path`, rotated at 100 MiB, keeping 10 old files.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Output::File {
            path: path.into(),
            max_bytes: Some(100 * 1024 * 1024),
            period: None,
            max_files: 10,
        }
    }

    fn is_terminal(&self) -> bool {
        match self {
            Output::Stdout => io::stdout().is_terminal(),
            Output::Stderr => io::stderr().is_terminal(),
            _ => false,
        }
    }
}

/// Sets up logging in one call. Made by [`crate::builder()`].
#[must_use]
#[derive(Debug)]
pub struct Builder {
    format: Format,
    level: String,
    /// The variable the level came from, when it came from one.
    level_var: Option<&'static str>,
    output: Output,
    backpressure: Backpressure,
    queue_bytes: usize,
    fallback_to_stderr: bool,
    flush_on_panic: bool,
    layer: CorrlogLayer,
    redaction: Redaction,
    use_env: bool,
}

/// Starts a [`Builder`] with [`Preset::Auto`].
pub fn builder() -> Builder {
    Builder {
        format: Format::Auto,
        level: "info".to_owned(),
        level_var: None,
        output: Output::Stdout,
        backpressure: Backpressure::default(),
        queue_bytes: crate::pipeline::DEFAULT_CAPACITY_BYTES,
        fallback_to_stderr: false,
        flush_on_panic: true,
        layer: CorrlogLayer::new(),
        redaction: Redaction::default(),
        use_env: true,
    }
}

/// What [`Builder::init`] and [`Builder::build`] return.
#[must_use = "dropping Logging shuts the pipeline down; keep it for the life of the program"]
#[derive(Debug)]
pub struct Logging {
    /// The tower layer to add to your router, configured with the builder.
    pub layer: CorrlogLayer,
    /// The pipeline's guard: shut down (or drop) it last.
    pub guard: PipelineGuard,
}

impl Logging {
    /// The pipeline's counters so far.
    pub fn stats(&self) -> Stats {
        self.guard.stats()
    }

    /// Writes out everything queued and stops the writer thread, waiting
    /// at most `timeout`.
    pub fn shutdown(self, timeout: Duration) -> ShutdownReport {
        self.guard.shutdown(timeout)
    }
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix
/// (what container orchestrators send). Pass it to axum's
/// `with_graceful_shutdown`, then call [`Logging::shutdown`], so in-flight
/// requests finish and every queued line is written before the process
/// exits. Without it, SIGTERM ends the process at once and whatever is
/// still queued is lost.
///
/// ```no_run
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let logging = corrlog::builder().init()?;
/// let app: axum::Router = axum::Router::new().layer(logging.layer.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(corrlog::shutdown_signal())
///     .await?;
/// logging.shutdown(std::time::Duration::from_secs(5));
/// # Ok(())
/// # }
/// ```
pub async fn shutdown_signal() {
    let ctrl_c = async {
        // Without a signal handler there is nothing to wait for.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A subscriber built by [`Builder::build`], to install yourself (e.g. with
/// `tracing::subscriber::set_default` in a test).
pub type BuiltSubscriber = tracing_subscriber::layer::Layered<
    LogLayer<Pipeline>,
    tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>,
>;

impl Builder {
    /// Applies a preset's format and level. See the
    /// [module docs](mod@crate::builder).
    pub fn preset(mut self, preset: Preset) -> Self {
        let (format, level) = match preset {
            Preset::Production => (Format::Json, "info"),
            Preset::Dev => (Format::Pretty, "debug"),
            Preset::Auto => (Format::Auto, "info"),
        };
        self.format = format;
        self.level = level.to_owned();
        self
    }

    /// The line format. Defaults to [`Format::Auto`].
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The filter: a level (`"info"`) or `EnvFilter` directives
    /// (`"info,orders=debug,hyper=warn"`). Defaults to `"info"`.
    pub fn level(mut self, directives: impl Into<String>) -> Self {
        self.level = directives.into();
        self
    }

    /// Where lines go. Defaults to [`Output::Stdout`].
    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// The pipeline's full-queue policy. Defaults to
    /// `Backpressure::Block { max_wait: 50ms }`; see [`crate::pipeline`].
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        self.backpressure = policy;
        self
    }

    /// The pipeline's queue size. Defaults to 8 MiB.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Write to stderr when the output fails. Off by default.
    pub fn fallback_to_stderr(mut self, on: bool) -> Self {
        self.fallback_to_stderr = on;
        self
    }

    /// Flush queued lines from a panic hook. On by default.
    pub fn flush_on_panic(mut self, on: bool) -> Self {
        self.flush_on_panic = on;
        self
    }

    /// The tower layer to return, e.g. with other headers or edge mode.
    /// Defaults to [`CorrlogLayer::new`].
    pub fn request_layer(mut self, layer: CorrlogLayer) -> Self {
        self.layer = layer;
        self
    }

    /// The redaction policy for every line (and the access log). Defaults
    /// to [`Redaction::default`]; see [`crate::redact`].
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        self.redaction = redaction;
        self
    }

    /// Ignore the `CORRLOG_*`, `RUST_LOG` and `NO_COLOR` variables.
    pub fn ignore_env(mut self) -> Self {
        self.use_env = false;
        self
    }

    fn apply_env(&mut self) -> Result<(), Error> {
        if let Some(v) = env_var("CORRLOG_FORMAT") {
            self.format = match v.to_ascii_lowercase().as_str() {
                "json" => Format::Json,
                "pretty" => Format::Pretty,
                "auto" => Format::Auto,
                _ => return Err(invalid_env("CORRLOG_FORMAT", v, "json, pretty or auto")),
            };
        }
        for var in ["CORRLOG_LEVEL", "RUST_LOG"] {
            if let Some(v) = env_var(var) {
                self.level = v;
                self.level_var = Some(var);
                break;
            }
        }
        if let Some(path) = env_var("CORRLOG_FILE") {
            self.output = Output::file(path);
        }
        if let Some(v) = env_var("CORRLOG_BACKPRESSURE") {
            self.backpressure = match v.to_ascii_lowercase().as_str() {
                "block" => Backpressure::default(),
                "drop" => Backpressure::Drop,
                _ => return Err(invalid_env("CORRLOG_BACKPRESSURE", v, "block or drop")),
            };
        }
        if let Some(v) = env_var("CORRLOG_QUEUE_BYTES") {
            self.queue_bytes = v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .ok_or_else(|| invalid_env("CORRLOG_QUEUE_BYTES", v, "a positive byte count"))?;
        }
        Ok(())
    }

    /// Builds the subscriber and starts the pipeline without installing
    /// anything globally.
    ///
    /// # Errors
    ///
    /// An invalid filter, environment variable, or log file.
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
        let color = terminal && !(self.use_env && env::var_os("NO_COLOR").is_some());
        let pretty = match self.format {
            Format::Json => false,
            Format::Pretty => true,
            Format::Auto => terminal,
        };
        let output: Box<dyn Write + Send> = match self.output {
            Output::Stdout => Box::new(io::stdout()),
            Output::Stderr => Box::new(io::stderr()),
            Output::File {
                path,
                max_bytes,
                period,
                max_files,
            } => {
                let mut file = RollingFile::builder(path).max_files(max_files);
                if let Some(max) = max_bytes {
                    file = file.max_bytes(max);
                }
                if let Some(period) = period {
                    file = file.period(period);
                }
                Box::new(file.open()?)
            }
            Output::Writer(w) => w,
        };
        let (pipeline, guard) = Pipeline::builder(output)
            .capacity_bytes(self.queue_bytes)
            .backpressure(self.backpressure)
            .fallback_to_stderr(self.fallback_to_stderr)
            .flush_on_panic(self.flush_on_panic)
            .start();
        let layer = if pretty {
            LogLayer::pretty(pipeline, color)
        } else {
            LogLayer::json(pipeline)
        }
        .with_redaction(self.redaction.clone());
        let subscriber = tracing_subscriber::registry().with(filter).with(layer);
        Ok((
            subscriber,
            Logging {
                layer: self.layer.redaction(self.redaction),
                guard,
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

fn env_var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn invalid_env(var: &'static str, value: String, expected: &'static str) -> Error {
    Error::new(ErrorKind::InvalidEnv {
        var,
        value,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::Capture;

    #[test]
    fn build_gives_a_working_subscriber() {
        let capture = Capture::new();
        let (subscriber, logging) = builder()
            .preset(Preset::Production)
            .output(Output::Writer(Box::new(capture.clone())))
            .flush_on_panic(false)
            .ignore_env()
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
        let err = builder().level("info,=[").ignore_env().build().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::InvalidFilter { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("invalid log filter"));
    }
}
