//! Formatting: [`LogLayer`](crate::LogLayer), the `tracing_subscriber`
//! layer that writes one flat JSON object (or one console line) per event,
//! and the [`Redaction`] policy it applies to every field.
//!
//! The stage in one sentence: an event's fields go through the field
//! visitor (redacted, escaped, bounded), the span fields and the request's
//! id, trace ids and bound fields are added, the line is laid out as JSON
//! or pretty text, and the whole line goes to a [`Sink`] in one call.
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
//! | `trace_id`, `span_id` | the request's W3C trace id and this hop's span id (see [`TraceParent`](crate::context::TraceParent)); omitted when the context has no trace |
//! | `trace_flags` | the W3C trace flags as two hex digits (`01` sampled, `00` not), with the ids |
//! | `service.name`, `service.version`, `service.instance.id`, `deployment.environment.name` | the [`Service`], when one is set; last on the line |
//! | bound fields | fields bound with [`crate::bind`] during the request |
//! | span fields | fields of every enclosing span, innermost span first |
//! | event fields | the event's own fields |
//! | `headers` | access lines only, when [`AccessLog::log_headers`](crate::http::AccessLog::log_headers) names some |
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
//!   `message`, `logger`, `request_id`, `trace_id`, `span_id`,
//!   `trace_flags` and the four service keys) is written
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
//! use corrlog::testing::TestLogs;
//! use corrlog::{LogLayer, RequestContext, RequestId};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let capture = TestLogs::new();
//! let subscriber = tracing_subscriber::registry().with(LogLayer::new(capture.clone()));
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
//!
//! # Formats
//!
//! Beside corrlog's JSON and pretty lines, a [`LogLayer`](crate::LogLayer)
//! writes three vendors' layouts: [`Format::Ecs`], [`Format::Gcp`] and
//! [`Format::Datadog`], chosen with [`LogLayer::format`](crate::LogLayer::format),
//! [`Builder::format`](crate::Builder::format) or `CORRLOG_FORMAT`. The same request id,
//! bound, span and event fields, redaction, escaping and size caps apply in
//! each; only the names (and a few value formats) of corrlog's own fields
//! change, and each format's reserved keys are renamed `fields.<name>` when
//! a user field takes them.
//!
//! | | JSON | Elastic Common Schema | Google Cloud Logging | Datadog |
//! |---|---|---|---|---|
//! | time | `timestamp` | `@timestamp` | `time` | `timestamp` |
//! | level | `level`: `INFO`, `WARN`, ... | `log.level`: `info`, `warn`, ... | `severity`: `DEBUG` (TRACE too), `INFO`, `WARNING`, `ERROR` | `status`: `info`, `warn`, ... |
//! | message | `message` | `message`, then `ecs.version` (`8.11.0`) | `message` | `message` |
//! | logger | `logger` | `log.logger` | `logger` | `logger.name` |
//! | request id | `request_id` | `http.request.id` | `request_id` | `request_id` |
//! | trace | `trace_id`, `span_id`, `trace_flags` | `trace.id`, `span.id`, `trace_flags` | `logging.googleapis.com/trace` (`projects/<project>/traces/<trace_id>`, with a project; otherwise `trace_id`), `logging.googleapis.com/spanId`, `logging.googleapis.com/trace_sampled` (a boolean) | `dd.trace_id` (the low 64 bits of the trace id, decimal, as a string), `dd.span_id` (decimal string), `trace_flags` |
//! | [`Service`] | `service.name`, `service.version`, `service.instance.id`, `deployment.environment.name` | `service.name`, `service.version`, `service.node.name`, `service.environment` | `serviceContext`: `{"service", "version"}`; `logging.googleapis.com/labels`: `{"service.instance.id", "deployment.environment.name"}` | `service`, `version`, `instance_id`, `env` |
//! | access line | `method`, `path`, `route`, `status`, `latency_ms`, `bytes_out`, `client_ip`, `user_agent` | `http.request.method`, `url.original`, `route`, `http.response.status_code`, `event.duration` (ns), `http.response.body.bytes`, `client.ip`, `user_agent.original` | `httpRequest`: `{requestMethod, requestUrl, status, latency ("0.012345s"), responseSize (a string), remoteIp, userAgent}`, `route` | `http.method`, `http.url`, `http.route`, `http.status_code`, `duration` (ns), `network.bytes_written`, `network.client.ip`, `http.useragent` |
//! | panic line | `panic.location`, `panic.thread`, `panic.backtrace` | `error.type: "panic"`, `panic.location`, `process.thread.name`, `error.stack_trace` | `@type` (Error Reporting's `ReportedErrorEvent`), `panic.location`, `panic.thread`, `stack_trace` | `error.kind: "panic"`, `panic.location`, `logger.thread_name`, `error.stack` |
//!
//! Service fields come last on every line, after the event's fields;
//! they are encoded once when the layer is made.
//!
//! ```
//! use corrlog::{fmt::Service, testing::TestLogs, LogLayer, RequestContext, RequestId};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let capture = TestLogs::new();
//! let layer = LogLayer::new(capture.clone()).format(corrlog::Format::Gcp).gcp_project("my-project")
//!     .service(Service::new("orders").version("1.4.2"));
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     let ctx = RequestContext::new(RequestId::new("req-1").unwrap());
//!     ctx.run(|| tracing::warn!(target: "orders", severity = "low", "slow"));
//! });
//! let line: serde_json::Value = serde_json::from_str(&capture.lines()[0]).unwrap();
//! assert_eq!(line["severity"], "WARNING");
//! assert_eq!(line["fields.severity"], "low");
//! assert_eq!(line["request_id"], "req-1");
//! assert_eq!(line["serviceContext"]["version"], "1.4.2");
//! ```
//!
//! # Redaction
//!
//! One [`Redaction`] policy per `LogLayer` covers everything it writes:
//! event, span and bound fields, the access line's `path` and its
//! `headers`. The HTTP layer hands the access line the raw request data and
//! masks nothing itself, so two layers wired by hand cannot disagree: each
//! `LogLayer` masks by its own policy.
//!
//! One rule decides which **names** are secret, for fields, URL
//! parameters and headers alike: a name holding a **marker**, compared in
//! ASCII lowercase with `-`, `.` and space the same as `_`.
//!
//! | what | masked when |
//! |---|---|
//! | field (event, span, bound) | its name holds a marker: `password`, `passwd`, `passphrase`, `pwd`, `secret`, `token`, `api_key`, `apikey`, `authorization`, `cookie`, `session_id`, `sessionid`, `credential`, `private_key`, `privatekey`, `signature`, `jwt`, `bearer` ([`Redaction::mask_names_containing`] adds, [`Redaction::markers`] replaces) |
//! | URL parameter, in the query, the fragment (`#access_token=`) and path segments (`;jsessionid=`); `&` and `;` both separate | its name (percent-decoded) holds a marker, or, without a trailing `[...]`, is one of `sig`, `key`, `code`, `auth`, `pass`, `pw`, `otp` ([`Redaction::mask_query_params`] adds) |
//! | URL user info | always: `scheme://user:pass@`, `//user:pass@`, and `user:pass@host` |
//! | header, on access lines (opt-in) | its name holds a marker (`authorization`, `proxy-authorization`, `cookie`, `set-cookie`, `x-api-key`, `x-auth-token`, `x-vault-token`, `x-amz-security-token`, `private-token`, ...), or was added with [`Redaction::mask_headers`] |
//! | size | every string value (the message and bound fields too) is cut once its escaped form reaches [`Redaction::max_value_bytes`] (16 KiB by default), on a character boundary, and ends with `…[truncated, N bytes in all]` (N the original length in bytes) |
//!
//! URL rules apply to fields whose name has a URL word (`url`, `uri`,
//! `href`, `path`, `referer`, `referrer`, `location`, `endpoint`, `dsn`,
//! `link`, `callback`, `redirect`) among its parts: `url`, `url.full`,
//! `http.url`, `databaseUrl`, `redirect_uri` (see
//! [`Redaction::is_url_field`]), and to the access line's `path`.
//!
//! ```
//! use corrlog::fmt::{redact_url, Redaction};
//!
//! let policy = Redaction::default();
//! assert_eq!(
//!     redact_url(&policy, "https://bob:hunter2@api.example.com/v1?access_token=abc&page=2"),
//!     "https://[REDACTED]@api.example.com/v1?access_token=[REDACTED]&page=2"
//! );
//! assert!(policy.is_secret_field("X-Session-Id"));
//! assert!(!policy.is_secret_field("order_id"));
//! ```

pub(crate) mod access;
mod buffer;
mod datadog;
mod ecs;
pub(crate) mod escape;
mod gcp;
pub(crate) mod json;
pub(crate) mod layer;
pub(crate) mod line;
mod pretty;
mod redact;
mod service;
mod sink;
mod span_fields;
pub(crate) mod time;
mod visitor;

pub use self::buffer::{
    Buffering, BufferingFilter, DEFAULT_REQUEST_BUFFER_BYTES, DEFAULT_TOTAL_BUFFER_BYTES,
};
pub use self::line::Format;
pub use self::redact::{redact_url, Redaction, DEFAULT_MAX_VALUE_BYTES, MASK};
pub use self::service::Service;
#[cfg(any(test, feature = "testing"))]
pub(crate) use self::sink::Capture;
pub use self::sink::Sink;
