//! What every line is made of, whatever its layout, and the parts both
//! layouts share: the request's bound fields and the access line's headers.
//! [`Style::write_line`] is the one place a line's head is written: events,
//! the fallback line for an event that could not be formatted, and the
//! pipeline's report of dropped lines all go through it.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tracing::Level;

use super::escape::{escape_into, write_str_bounded};
use super::redact::{redact_url, Redaction, Verdict, MASK};
use super::service::Service;
use super::time::TimestampCache;
use super::{datadog, ecs, gcp, json, pretty};
use crate::context::{BoundField, FieldValue, RequestContext, ACCESS_TARGET};

/// How lines are laid out: the one format choice of the
/// [builder](crate::Builder::format), a [`LogLayer`](crate::LogLayer::format)
/// and `CORRLOG_FORMAT` (`json`, `pretty`, `auto`, `ecs`, `gcp`,
/// `datadog`). See the [format table](crate::fmt#formats).
///
/// ```
/// let builder = corrlog::builder().format(corrlog::Format::Ecs);
/// # drop(builder);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// One JSON object per line (see the [line schema](crate::fmt)).
    Json,
    /// Human-readable console lines, with the same fields in the same
    /// order, values written as JSON:
    ///
    /// ```text
    /// 2026-01-21T10:30:00.123Z  INFO orders: loading order request_id=550e8400-e29b-41d4-a716-446655440000 order_id="42"
    /// ```
    Pretty,
    /// Pretty when the output is a terminal, JSON otherwise: the builder
    /// asks of its [destination](crate::output::Destination) (coloured
    /// unless `NO_COLOR` is set), a [`LogLayer`](crate::LogLayer) of
    /// standard output. The builder's default.
    #[default]
    Auto,
    /// Elastic Common Schema lines, as Elastic's ecs-logging libraries
    /// write them:
    ///
    /// ```text
    /// {"@timestamp":"2026-01-21T10:30:00.123Z","log.level":"info","message":"order placed","ecs.version":"8.11.0","log.logger":"orders","http.request.id":"req-1","trace.id":"4bf92f3577b34da6a3ce929d0e0e4736","span.id":"00f067aa0ba902b7","trace_flags":"01","order_id":42,"service.name":"orders"}
    /// ```
    Ecs,
    /// Google Cloud Logging structured lines. With a project id
    /// ([`Builder::gcp_project`](crate::Builder::gcp_project),
    /// [`LogLayer::gcp_project`](crate::LogLayer::gcp_project)), the trace
    /// is written as `projects/<project>/traces/<trace_id>`, which links
    /// each line to its trace in Cloud Trace:
    ///
    /// ```text
    /// {"time":"2026-01-21T10:30:00.123Z","severity":"WARNING","message":"slow","logger":"orders","request_id":"req-1","logging.googleapis.com/trace":"projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736","logging.googleapis.com/spanId":"00f067aa0ba902b7","logging.googleapis.com/trace_sampled":true,"serviceContext":{"service":"orders","version":"1.4.2"}}
    /// ```
    Gcp,
    /// Datadog lines: its reserved attributes, unified service tags and
    /// `dd.trace_id`/`dd.span_id`, which link each line to its trace:
    ///
    /// ```text
    /// {"timestamp":"2026-01-21T10:30:00.123Z","status":"info","message":"order placed","logger.name":"orders","request_id":"req-1","dd.trace_id":"11803532876627986230","dd.span_id":"67667974448284343","trace_flags":"01","service":"orders","version":"1.4.2","env":"production"}
    /// ```
    Datadog,
}

impl Format {
    /// The layout of this format; `terminal` says whether the output is
    /// one, asked only for [`Format::Auto`].
    pub(crate) fn style(self, terminal: impl FnOnce() -> bool, color: bool) -> Style {
        match self {
            Format::Json => Style::Json,
            Format::Pretty => Style::Pretty { color },
            Format::Auto if terminal() => Style::Pretty { color },
            Format::Auto => Style::Json,
            Format::Ecs => Style::Ecs,
            Format::Gcp => Style::Gcp,
            Format::Datadog => Style::Datadog,
        }
    }
}

/// How a line is laid out: one JSON object (corrlog's own keys or a
/// vendor's), or a human-readable console line (`key=value` pairs with
/// JSON values, optionally coloured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Json,
    Pretty {
        color: bool,
    },
    /// Elastic Common Schema.
    Ecs,
    /// Google Cloud Logging's structured logging.
    Gcp,
    /// Datadog's reserved and standard attributes.
    Datadog,
}

/// What a layer writes on every line, encoded once when it is made.
#[derive(Debug, Clone, Default)]
pub(crate) struct Constant {
    /// The [`Service`](super::Service) fields, in the layer's style.
    pub(crate) service: Box<[u8]>,
    /// Cloud Logging: `projects/<id>/traces/`, escaped; empty when no
    /// project is configured.
    pub(crate) trace_prefix: Box<[u8]>,
}

impl Constant {
    /// The constant part of `style`'s lines.
    pub(crate) fn new(style: Style, service: Option<&Service>, gcp_project: Option<&str>) -> Self {
        Constant {
            service: service.map(|s| s.encode(style)).unwrap_or_default(),
            trace_prefix: match (gcp_project, style) {
                (Some(project), Style::Gcp) => {
                    let mut prefix = b"projects/".to_vec();
                    escape_into(&mut prefix, project);
                    prefix.extend_from_slice(b"/traces/");
                    prefix.into_boxed_slice()
                }
                _ => Box::default(),
            },
        }
    }
}

/// One line's parts, ready to lay out.
pub(crate) struct Line<'a> {
    pub(crate) now: SystemTime,
    pub(crate) level: Level,
    /// The message, already escaped (a JSON string body, no quotes).
    pub(crate) message: &'a [u8],
    pub(crate) logger: &'a str,
    /// The request the line belongs to, if any.
    pub(crate) request: Option<&'a RequestContext>,
    /// Fields already written in this style (`,"key":value` or
    /// ` key=value`), in order.
    pub(crate) fields: &'a [&'a [u8]],
    /// Access-line fields a format nests in one object (Cloud Logging's
    /// `httpRequest`), written like `fields`.
    pub(crate) nested: &'a [u8],
    /// The keys in `fields`: a bound field of the same name is left out.
    pub(crate) keys: &'a [&'static str],
    pub(crate) policy: &'a Redaction,
    pub(crate) constant: &'a Constant,
}

/// How a format writes an access-line field under its own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AccessField {
    pub(crate) key: &'static str,
    pub(crate) unit: Unit,
    /// Goes in the format's nested object ([`Line::nested`]).
    pub(crate) nested: bool,
}

/// How an access-line value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Same,
    /// Milliseconds (a float) to whole nanoseconds.
    MsToNanos,
    /// Milliseconds (a float) to a protobuf duration string, `"0.012345s"`.
    MsToSeconds,
    /// An integer as a string (protobuf's JSON form of an `int64`).
    Quoted,
}

impl Style {
    /// Appends the whole line, ending in a newline.
    pub(crate) fn write_line(self, out: &mut Vec<u8>, clock: &mut TimestampCache, line: &Line<'_>) {
        match self {
            Style::Json => json::write_line(out, clock, line),
            Style::Pretty { color } => pretty::write_line(out, clock, line, color),
            Style::Ecs => ecs::write_line(out, clock, line),
            Style::Gcp => gcp::write_line(out, clock, line),
            Style::Datadog => datadog::write_line(out, clock, line),
        }
    }

    /// Starts a user field: `,"key":` or ` key=`, a key the format
    /// reserves renamed `fields.<key>`.
    pub(crate) fn key(self, out: &mut Vec<u8>, key: &str) {
        match self {
            Style::Json => json::key(out, key, json::is_reserved),
            Style::Pretty { color } => pretty::key(out, key, color, true),
            Style::Ecs => json::key(out, key, ecs::is_reserved),
            Style::Gcp => json::key(out, key, gcp::is_reserved),
            Style::Datadog => json::key(out, key, datadog::is_reserved),
        }
    }

    /// Starts one of corrlog's own fields, never renamed.
    pub(crate) fn raw_key(self, out: &mut Vec<u8>, key: &str) {
        match self {
            Style::Pretty { color } => pretty::key(out, key, color, false),
            _ => json::key(out, key, |_| false),
        }
    }

    /// The name and unit this format gives an access-line field, when it
    /// has one of its own.
    pub(crate) fn access_field(self, name: &str) -> Option<AccessField> {
        match self {
            Style::Json | Style::Pretty { .. } => None,
            Style::Ecs => ecs::access_field(name),
            Style::Gcp => gcp::access_field(name),
            Style::Datadog => datadog::access_field(name),
        }
    }
}

/// Appends what ends every JSON-family line after its ids: the request's
/// bound fields, the fields, the access line's headers, the nested object
/// named `nested_key` if any field went there, the service fields, `}` and
/// a newline.
pub(crate) fn write_json_tail(out: &mut Vec<u8>, style: Style, line: &Line<'_>, nested_key: &[u8]) {
    if let Some(rc) = line.request {
        write_bound_fields(out, style, rc, line.keys, line.policy);
    }
    for fields in line.fields {
        out.extend_from_slice(fields);
    }
    write_access_headers(out, style, line);
    if let Some(body) = line.nested.get(1..) {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(nested_key);
        out.extend_from_slice(b"\":{");
        out.extend_from_slice(body);
        out.push(b'}');
    }
    out.extend_from_slice(&line.constant.service);
    out.extend_from_slice(b"}\n");
}

pub(crate) fn level_name(level: Level) -> &'static [u8] {
    match level {
        Level::TRACE => b"TRACE",
        Level::DEBUG => b"DEBUG",
        Level::INFO => b"INFO",
        Level::WARN => b"WARN",
        Level::ERROR => b"ERROR",
    }
}

/// The level in lowercase, as ECS's `log.level` and Datadog's `status`
/// take it.
pub(crate) fn lowercase_level_name(level: Level) -> &'static [u8] {
    match level {
        Level::TRACE => b"trace",
        Level::DEBUG => b"debug",
        Level::INFO => b"info",
        Level::WARN => b"warn",
        Level::ERROR => b"error",
    }
}

/// Appends the request's bound fields whose keys are not in `keys`.
pub(crate) fn write_bound_fields(
    out: &mut Vec<u8>,
    style: Style,
    rc: &RequestContext,
    keys: &[&'static str],
    policy: &Redaction,
) {
    let max = policy.max_bytes();
    for field in rc.fields().iter() {
        if json::has_key(keys, &field.key) {
            continue;
        }
        style.key(out, &field.key);
        let text = match &field.value {
            FieldValue::Str(s) => Some(s.as_str()),
            _ => None,
        };
        match (bound_verdict(field, policy), text) {
            (Verdict::Secret, _) => write_mask(out),
            (Verdict::Url, Some(text)) => write_str_bounded(out, &redact_url(policy, text), max),
            // The value is encoded once; re-encode only a string over the
            // size cap.
            (Verdict::Plain, Some(text)) if text.len() > max => {
                write_str_bounded(out, text, max);
            }
            _ => out.extend_from_slice(field.encoded.get_or_init(|| {
                let mut json = Vec::new();
                json::write_value(&mut json, &field.value);
                json.into_boxed_slice()
            })),
        }
    }
}

/// Appends `"[REDACTED]"`.
pub(crate) fn write_mask(out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(MASK.as_bytes());
    out.push(b'"');
}

/// How a bound field is written under `policy`: computed once per policy
/// and kept in the field as `policy id << 2 | verdict`.
fn bound_verdict(field: &BoundField, policy: &Redaction) -> Verdict {
    let cached = field.verdict.load(Ordering::Relaxed);
    if cached >> 2 == policy.id() {
        return match cached & 3 {
            1 => Verdict::Secret,
            2 => Verdict::Url,
            _ => Verdict::Plain,
        };
    }
    let verdict = policy.verdict(&field.key);
    let code = match verdict {
        Verdict::Plain => 0,
        Verdict::Secret => 1,
        Verdict::Url => 2,
    };
    field
        .verdict
        .store(policy.id() << 2 | code, Ordering::Relaxed);
    verdict
}

/// On an access line, appends the request headers the access log shows,
/// as one `headers` field (`name: value, ...`), secret ones masked by this
/// layer's policy.
pub(crate) fn write_access_headers(out: &mut Vec<u8>, style: Style, line: &Line<'_>) {
    if line.logger != ACCESS_TARGET {
        return;
    }
    let Some(headers) = line.request.and_then(RequestContext::access_headers) else {
        return;
    };
    let mut text = String::new();
    for (name, value) in headers {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(name.as_str());
        text.push_str(": ");
        if line.policy.is_secret_header(name) {
            text.push_str(MASK);
        } else {
            text.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
    style.key(out, "headers");
    write_str_bounded(out, &text, line.policy.max_bytes());
}
