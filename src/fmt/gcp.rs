//! The Google Cloud Logging line: the structured-logging special fields
//! (`severity`, `time`, `logging.googleapis.com/trace`, ...) that the
//! logging agent lifts into the log entry, the access line's
//! `httpRequest`, and `serviceContext` and `stack_trace` for Error
//! Reporting.

use super::escape::write_str;
use super::line::{write_json_tail, AccessField, Line, Style, Unit};
use super::time::TimestampCache;
use crate::panic::PANIC_TARGET;

/// Keys written by corrlog. A user field with one of these names, or any
/// `logging.googleapis.com/` key, is renamed `fields.<name>`.
const RESERVED_KEYS: &[&str] = &[
    "time",
    "timestamp",
    "timestampSeconds",
    "timestampNanos",
    "severity",
    "message",
    "logger",
    "request_id",
    "trace_id",
    "trace_flags",
    "httpRequest",
    "serviceContext",
    "stack_trace",
    "@type",
];

const SPECIAL_PREFIX: &str = "logging.googleapis.com/";

pub(crate) fn is_reserved(key: &str) -> bool {
    RESERVED_KEYS.contains(&key) || key.starts_with(SPECIAL_PREFIX)
}

/// Error Reporting takes a line with this `@type` as an error event.
const ERROR_EVENT_TYPE: &str =
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent";

fn severity(level: tracing::Level) -> &'static [u8] {
    match level {
        tracing::Level::TRACE | tracing::Level::DEBUG => b"DEBUG",
        tracing::Level::INFO => b"INFO",
        tracing::Level::WARN => b"WARNING",
        tracing::Level::ERROR => b"ERROR",
    }
}

pub(crate) fn write_line(out: &mut Vec<u8>, clock: &mut TimestampCache, line: &Line<'_>) {
    out.extend_from_slice(b"{\"time\":");
    clock.write(out, line.now);
    out.extend_from_slice(b",\"severity\":\"");
    out.extend_from_slice(severity(line.level));
    out.extend_from_slice(b"\",\"message\":\"");
    out.extend_from_slice(line.message);
    out.extend_from_slice(b"\",\"logger\":");
    write_str(out, line.logger);
    if let Some(rc) = line.request {
        out.extend_from_slice(b",\"request_id\":");
        write_str(out, rc.id().as_str());
        if let Some(trace) = rc.trace() {
            // The trace is a resource name; without a project the id
            // stays an ordinary field.
            if line.constant.trace_prefix.is_empty() {
                out.extend_from_slice(b",\"trace_id\":\"");
            } else {
                out.extend_from_slice(b",\"logging.googleapis.com/trace\":\"");
                out.extend_from_slice(&line.constant.trace_prefix);
            }
            out.extend_from_slice(trace.trace_hex());
            out.extend_from_slice(b"\",\"logging.googleapis.com/spanId\":\"");
            out.extend_from_slice(trace.span_hex());
            out.extend_from_slice(b"\",\"logging.googleapis.com/trace_sampled\":");
            out.extend_from_slice(if trace.sampled() { b"true" } else { b"false" });
        }
    }
    if line.logger == PANIC_TARGET {
        out.extend_from_slice(b",\"@type\":\"");
        out.extend_from_slice(ERROR_EVENT_TYPE.as_bytes());
        out.push(b'"');
    }
    write_json_tail(out, Style::Gcp, line, b"httpRequest");
}

/// The access line's fields in `httpRequest` (Cloud Logging's `HttpRequest`
/// names and value formats), and the panic's backtrace as `stack_trace`.
pub(crate) fn access_field(name: &str) -> Option<AccessField> {
    let (key, unit, nested) = match name {
        "method" => ("requestMethod", Unit::Same, true),
        "path" => ("requestUrl", Unit::Same, true),
        "status" => ("status", Unit::Same, true),
        "latency_ms" => ("latency", Unit::MsToSeconds, true),
        "bytes_out" => ("responseSize", Unit::Quoted, true),
        "client_ip" => ("remoteIp", Unit::Same, true),
        "user_agent" => ("userAgent", Unit::Same, true),
        "panic.backtrace" => ("stack_trace", Unit::Same, false),
        _ => return None,
    };
    Some(AccessField { key, unit, nested })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::Capture;
    use crate::LogLayer;
    use tracing_subscriber::layer::SubscriberExt;

    fn access_line(latency_ms: f64) -> serde_json::Value {
        let capture = Capture::new();
        let layer = LogLayer::new(capture.clone()).format(crate::Format::Gcp);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::info!(
                target: "corrlog::access",
                latency_ms,
                bytes_out = 5_u64,
                "request finished"
            );
        });
        serde_json::from_str(&capture.lines()[0]).unwrap()
    }

    #[test]
    fn latency_is_a_protobuf_duration_and_size_an_int64_string() {
        for (ms, text) in [
            (0.0, "0.000000s"),
            (12.345, "0.012345s"),
            (1_000.0, "1.000000s"),
            (1_234_567.891, "1234.567891s"),
            (0.0004, "0.000000s"),
            (0.0006, "0.000001s"),
        ] {
            let line = access_line(ms);
            assert_eq!(line["httpRequest"]["latency"], text, "{ms}");
            assert_eq!(line["httpRequest"]["responseSize"], "5");
        }
    }

    #[test]
    fn special_keys_cannot_be_written_by_users() {
        assert!(is_reserved("logging.googleapis.com/trace"));
        assert!(is_reserved("logging.googleapis.com/anything"));
        assert!(is_reserved("severity") && is_reserved("httpRequest"));
        assert!(!is_reserved("order_id") && !is_reserved("logging"));
        assert_eq!(severity(tracing::Level::TRACE), b"DEBUG");
        assert_eq!(severity(tracing::Level::WARN), b"WARNING");
    }
}
