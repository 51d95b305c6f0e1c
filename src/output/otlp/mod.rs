//! Log records to an OpenTelemetry Collector, or any OTLP/HTTP receiver
//! (feature `otlp`).
//!
//! [`OtlpWriter`] is an output for a [`Pipeline`](crate::output::Pipeline):
//! the layer writes its JSON lines as usual, and the pipeline's writer
//! thread turns each batch into an OTLP `ExportLogsServiceRequest`
//! (protobuf, `POST <endpoint>`), so a request never waits on the network.
//! The builder sets it up with [`Builder::otlp`](crate::Builder::otlp) or
//! the standard `OTEL_EXPORTER_OTLP_*` variables, beside the JSON lines.
//!
//! # Records
//!
//! | OTLP | from the line |
//! |---|---|
//! | `time_unix_nano` | `timestamp` (milliseconds) |
//! | `observed_time_unix_nano` | when the batch was exported |
//! | `severity_number`, `severity_text` | `level`: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17 |
//! | `body` | `message` |
//! | `trace_id`, `span_id`, `flags` | `trace_id`, `span_id`, `trace_flags` |
//! | instrumentation scope | `logger` (the event's target) |
//! | resource attributes | `service.name`, `service.version`, `service.instance.id`, `deployment.environment.name` |
//! | attributes | everything else: `request_id`, bound fields, span fields, event fields, access-line fields; numbers stay numbers, booleans booleans |
//!
//! The lines are read back after the layer wrote them, so redaction,
//! escaping and size caps are exactly those of every other output.
//!
//! # Delivery
//!
//! Each pipeline batch is sent in requests of at most 512 records. A
//! request that fails in a way worth retrying (connection refused or
//! reset, a timeout, HTTP 429, 502, 503, 504) is retried with exponential
//! backoff and jitter (from 500 ms, at most 5 s apart, never sooner than a
//! `Retry-After` in seconds asks) until the retry window (30 s by default) has passed;
//! other statuses (400, 401, 413, ...) are not retried. Records that could
//! not be delivered count as `failed` in the pipeline's [`Stats`](crate::output::Stats)
//! and the shutdown report, with a reason on stderr (at most once per
//! 10 s); records that were delivered count as `written`. While the
//! exporter retries, lines wait in the pipeline's queue: with
//! [`Backpressure::Block`](crate::output::Backpressure::Block) and a queue
//! large enough for the outage, a collector that comes back within the
//! retry window loses nothing; otherwise the drops are counted and
//! reported in band as for any slow output.
//!
//! The writer thread logs nothing into any subscriber (the HTTP client's
//! own log records included), so the export never feeds itself.
//!
//! # Beside the other output
//!
//! The builder's OTLP layer takes the main layer's filter, redaction,
//! service identity, backpressure policy and buffering. Two differences:
//! with buffering on, the access line's `buffer_discarded` and
//! `buffer_evicted` count the lines of both layers (each keeps its own
//! copy of a request's buffered lines); and with the pretty format, where
//! panic lines are off, panics are not exported as records either.
//!
//! ```
//! use std::time::Duration;
//! use corrlog::output::otlp::Otlp;
//! use corrlog::output::Pipeline;
//!
//! let writer = Otlp::new("http://127.0.0.1:4318/v1/logs")
//!     .header("x-api-key", "secret")
//!     .timeout(Duration::from_secs(5))
//!     .retry_window(Duration::from_secs(60))
//!     .writer();
//! let (pipeline, guard) = Pipeline::builder(writer).fallback_to_stderr(false).start();
//! let layer = corrlog::LogLayer::new(pipeline);
//! # drop(layer);
//! # drop(guard);
//! ```

mod record;

use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;

/// The most records in one export request.
pub const MAX_BATCH_RECORDS: usize = 512;
/// The timeout of one export request, as `OTEL_EXPORTER_OTLP_TIMEOUT`'s
/// default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a batch is retried before its records count as failed.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(30);

/// The largest response body read (a partial-success message).
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// Where and how to export; see the [module docs](self).
#[derive(Clone)]
pub struct Otlp {
    endpoint: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    retry_window: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
}

impl fmt::Debug for Otlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are often credentials: names only.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Otlp")
            .field("endpoint", &shown_endpoint(&self.endpoint))
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("retry_window", &self.retry_window)
            .finish_non_exhaustive()
    }
}

impl Otlp {
    /// Export to `endpoint`, the full URL records are posted to
    /// (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`'s meaning), e.g.
    /// `http://127.0.0.1:4318/v1/logs`.
    ///
    /// ```
    /// let otlp = corrlog::output::otlp::Otlp::new("http://collector:4318/v1/logs");
    /// assert_eq!(otlp.endpoint(), "http://collector:4318/v1/logs");
    /// ```
    pub fn new(endpoint: impl Into<String>) -> Self {
        Otlp {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            retry_window: DEFAULT_RETRY_WINDOW,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// Export under a base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`'s meaning):
    /// records go to `<base>/v1/logs`.
    ///
    /// ```
    /// use corrlog::output::otlp::Otlp;
    ///
    /// assert_eq!(Otlp::base("http://collector:4318").endpoint(), "http://collector:4318/v1/logs");
    /// assert_eq!(Otlp::base("http://collector:4318/").endpoint(), "http://collector:4318/v1/logs");
    /// ```
    pub fn base(base: &str) -> Self {
        Otlp::new(format!("{}/v1/logs", base.trim_end_matches('/')))
    }

    /// The URL records are posted to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// A header sent with every request (an API key, a tenant). Adds to
    /// the list.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The timeout of one request. Defaults to 10 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a batch is retried before its records count as failed.
    /// Defaults to 30 s; zero sends each batch once.
    #[must_use]
    pub fn retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }

    /// The first wait between two attempts and the longest; each wait
    /// doubles the last, with ±25% jitter. Default 500 ms and 5 s.
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// This configuration with `other`'s endpoint.
    pub(crate) fn with_endpoint_of(mut self, other: Otlp) -> Self {
        self.endpoint = other.endpoint;
        self
    }

    /// Sets a header, replacing any of the same name (any case).
    pub(crate) fn replace_header(mut self, name: String, value: String) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value));
        self
    }

    /// The pipeline output that exports to this endpoint.
    pub fn writer(self) -> OtlpWriter {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build();
        OtlpWriter {
            agent: ureq::Agent::new_with_config(config),
            shown: shown_endpoint(&self.endpoint),
            config: self,
            fail_rest: None,
        }
    }
}

/// The [`Pipeline`](crate::output::Pipeline) output made by
/// [`Otlp::writer`]: each `write` is a batch of whole JSON lines, exported
/// as OTLP records. Turn the pipeline's stderr fallback off for it
/// ([`PipelineBuilder::fallback_to_stderr`](crate::output::PipelineBuilder::fallback_to_stderr)),
/// or failed batches are printed there as JSON lines.
pub struct OtlpWriter {
    config: Otlp,
    /// The endpoint as printed: credentials in it masked.
    shown: String,
    agent: ureq::Agent,
    /// Why the rest of the last batch failed, after part of it was
    /// delivered: the next `write` reports it without sending again.
    fail_rest: Option<String>,
}

impl fmt::Debug for OtlpWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpWriter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// `endpoint` as corrlog prints it, in reasons, `Debug` and start errors:
/// its user information and secret-looking query parameters masked as on
/// the access line.
pub(crate) fn shown_endpoint(endpoint: &str) -> String {
    crate::fmt::redact_url(&crate::fmt::Redaction::default(), endpoint).into_owned()
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    /// Worth another try, after at least the server's `Retry-After`.
    Retry(String, Option<Duration>),
    Rejected(String),
}

impl OtlpWriter {
    /// Sends one request's worth of lines, retrying within the window.
    fn export(&self, lines: &[&[u8]]) -> Result<(), String> {
        let observed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let body = record::request(lines, observed).encode_to_vec();
        let started = Instant::now();
        let mut backoff = self.config.first_backoff;
        loop {
            let (reason, retry_after) = match self.attempt(&body) {
                Attempt::Delivered => return Ok(()),
                Attempt::Rejected(reason) => return Err(reason),
                Attempt::Retry(reason, retry_after) => (reason, retry_after),
            };
            // The server's Retry-After is a floor, never a reason to hurry.
            let wait = jitter(backoff).max(retry_after.unwrap_or_default());
            if wait > self.config.retry_window.saturating_sub(started.elapsed()) {
                return Err(format!(
                    "{reason}; gave up after {:.1} s of retries",
                    started.elapsed().as_secs_f64()
                ));
            }
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }

    fn attempt(&self, body: &[u8]) -> Attempt {
        let mut request = self
            .agent
            .post(&self.config.endpoint)
            .header("content-type", "application/x-protobuf");
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        let endpoint = &self.shown;
        // An error's text may quote the URL it was given.
        let error = |err: ureq::Error| err.to_string().replace(&self.config.endpoint, endpoint);
        let mut response = match request.send(body) {
            Ok(response) => response,
            // TLS refused (a certificate not trusted, expired or for
            // another host; a handshake failure) or bytes that are not
            // HTTP: no retry makes them right. rustls reports these as
            // invalid data on the connection.
            Err(ureq::Error::Io(err)) if err.kind() == io::ErrorKind::InvalidData => {
                return Attempt::Rejected(format!(
                    "OTLP export to {endpoint} failed: {}; TLS or protocol error, not retried: \
                     check the collector's certificate and the endpoint's scheme",
                    error(ureq::Error::Io(err))
                ))
            }
            // Refused, reset, unreachable, timed out: the collector may be
            // restarting.
            Err(
                err @ (ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::HostNotFound
                | ureq::Error::ConnectionFailed),
            ) => {
                return Attempt::Retry(
                    format!("OTLP export to {endpoint} failed: {}", error(err)),
                    None,
                )
            }
            Err(err) => {
                return Attempt::Rejected(format!(
                    "OTLP export to {endpoint} failed: {}; check the endpoint URL and the headers",
                    error(err)
                ))
            }
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            // A partial success names records the receiver refused; they
            // reached it, so they count as written, and the reason is
            // reported.
            if let Ok(bytes) = response
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE_BYTES)
                .read_to_vec()
            {
                if let Ok(reply) = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse::decode(&bytes[..]) {
                    if let Some(partial) = reply.partial_success.filter(|p| p.rejected_log_records > 0) {
                        let _ = writeln!(
                            io::stderr().lock(),
                            "corrlog: the OTLP receiver at {endpoint} rejected {} log records: {}",
                            partial.rejected_log_records,
                            partial.error_message.escape_debug()
                        );
                    }
                }
            }
            return Attempt::Delivered;
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let reason = format!("OTLP export to {endpoint} answered HTTP {status}");
        match status {
            429 | 502 | 503 | 504 => Attempt::Retry(reason, retry_after),
            401 | 403 => Attempt::Rejected(format!("{reason}; check the credentials in OTEL_EXPORTER_OTLP_HEADERS")),
            404 => Attempt::Rejected(format!("{reason}; check the endpoint (records go to <OTEL_EXPORTER_OTLP_ENDPOINT>/v1/logs)")),
            _ => Attempt::Rejected(reason),
        }
    }
}

/// ±25% around `wait`, so many processes do not retry in step.
fn jitter(wait: Duration) -> Duration {
    wait.mul_f64(0.75 + fastrand::f64() * 0.5)
}

impl Write for OtlpWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(reason) = self.fail_rest.take() {
            return Err(io::Error::other(reason));
        }
        // Whole lines, as the pipeline writes them; a last line without a
        // newline is sent too.
        let lines: Vec<&[u8]> = buf
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .collect();
        let mut delivered = 0;
        for chunk in lines.chunks(MAX_BATCH_RECORDS) {
            let chunk_end = chunk.last().map_or(delivered, |last| {
                // The end of the last line, and its newline if any.
                let end = last.as_ptr() as usize - buf.as_ptr() as usize + last.len();
                (end + 1).min(buf.len())
            });
            match self.export(chunk) {
                Ok(()) => delivered = chunk_end,
                Err(reason) if delivered == 0 => return Err(io::Error::other(reason)),
                Err(reason) => {
                    // Report what got through; the next call fails the rest.
                    self.fail_rest = Some(reason);
                    return Ok(delivered);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
