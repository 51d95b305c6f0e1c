//! The Datadog line: its reserved attributes (`status`, `service`, ...),
//! unified service tags (`env`, `version`), standard attributes for HTTP
//! and errors, and `dd.trace_id`/`dd.span_id` for trace correlation.

use super::escape::write_str;
use super::json::write_u64;
use super::line::{lowercase_level_name, write_json_tail, AccessField, Line, Style, Unit};
use super::time::TimestampCache;
use crate::panic::PANIC_TARGET;

/// Keys written by corrlog. A user field with one of these names, or one
/// that would make an object of a key written here (`dd`, `logger`,
/// `error`), is renamed `fields.<name>`.
const RESERVED_KEYS: &[&str] = &[
    "timestamp",
    "date",
    "status",
    "message",
    "logger.name",
    "request_id",
    "dd.trace_id",
    "dd.span_id",
    "trace_id",
    "trace_flags",
    "service",
    "version",
    "env",
    "host",
    "instance_id",
    "error.kind",
    "dd",
    "logger",
];

pub(crate) fn is_reserved(key: &str) -> bool {
    RESERVED_KEYS.contains(&key)
}

pub(crate) fn write_line(out: &mut Vec<u8>, clock: &mut TimestampCache, line: &Line<'_>) {
    out.extend_from_slice(b"{\"timestamp\":");
    clock.write(out, line.now);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(lowercase_level_name(line.level));
    out.extend_from_slice(b"\",\"message\":\"");
    out.extend_from_slice(line.message);
    out.extend_from_slice(b"\",\"logger.name\":");
    write_str(out, line.logger);
    if let Some(rc) = line.request {
        out.extend_from_slice(b",\"request_id\":");
        write_str(out, rc.id().as_str());
        if let Some(trace) = rc.trace() {
            // Datadog's ids are 64-bit numbers, written as decimal
            // strings: the span id, and the low half of the W3C trace id
            // (where its randomness is).
            out.extend_from_slice(b",\"dd.trace_id\":\"");
            write_u64(out, trace.trace_id_low_u64());
            out.extend_from_slice(b"\",\"dd.span_id\":\"");
            write_u64(out, trace.span_id_u64());
            out.extend_from_slice(b"\",\"trace_flags\":\"");
            out.extend_from_slice(trace.flags_hex());
            out.push(b'"');
        }
    }
    if line.logger == PANIC_TARGET {
        out.extend_from_slice(b",\"error.kind\":\"panic\"");
    }
    write_json_tail(out, Style::Datadog, line, b"");
}

/// Datadog's standard attribute names for the access line's and the panic
/// line's fields.
pub(crate) fn access_field(name: &str) -> Option<AccessField> {
    let (key, unit) = match name {
        "method" => ("http.method", Unit::Same),
        "path" => ("http.url", Unit::Same),
        "route" => ("http.route", Unit::Same),
        "status" => ("http.status_code", Unit::Same),
        "latency_ms" => ("duration", Unit::MsToNanos),
        "bytes_out" => ("network.bytes_written", Unit::Same),
        "client_ip" => ("network.client.ip", Unit::Same),
        "user_agent" => ("http.useragent", Unit::Same),
        "panic.backtrace" => ("error.stack", Unit::Same),
        "panic.thread" => ("logger.thread_name", Unit::Same),
        _ => return None,
    };
    Some(AccessField {
        key,
        unit,
        nested: false,
    })
}
