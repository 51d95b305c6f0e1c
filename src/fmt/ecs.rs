//! The Elastic Common Schema line, as the ecs-logging libraries write it:
//! `@timestamp` and `log.level` first, then `message` and `ecs.version`,
//! dotted keys at top level.

use super::escape::write_str;
use super::line::{lowercase_level_name, write_json_tail, AccessField, Line, Style, Unit};
use super::time::TimestampCache;
use crate::panic::PANIC_TARGET;

/// The ECS version whose field names these lines follow.
pub(crate) const ECS_VERSION: &str = "8.11.0";

/// Keys written by corrlog. A user field with one of these names, or one
/// that would make an object of a key written here (`log`, `trace`, ...),
/// is renamed `fields.<name>`.
const RESERVED_KEYS: &[&str] = &[
    "@timestamp",
    "log.level",
    "message",
    "ecs.version",
    "log.logger",
    "http.request.id",
    "trace.id",
    "span.id",
    "trace_flags",
    "service.name",
    "service.version",
    "service.node.name",
    "service.environment",
    "error.type",
    "log",
    "ecs",
    "trace",
    "span",
    "service",
];

pub(crate) fn is_reserved(key: &str) -> bool {
    RESERVED_KEYS.contains(&key)
}

pub(crate) fn write_line(out: &mut Vec<u8>, clock: &mut TimestampCache, line: &Line<'_>) {
    out.extend_from_slice(b"{\"@timestamp\":");
    clock.write(out, line.now);
    out.extend_from_slice(b",\"log.level\":\"");
    out.extend_from_slice(lowercase_level_name(line.level));
    out.extend_from_slice(b"\",\"message\":\"");
    out.extend_from_slice(line.message);
    out.extend_from_slice(b"\",\"ecs.version\":\"");
    out.extend_from_slice(ECS_VERSION.as_bytes());
    out.extend_from_slice(b"\",\"log.logger\":");
    write_str(out, line.logger);
    if let Some(rc) = line.request {
        out.extend_from_slice(b",\"http.request.id\":");
        write_str(out, rc.id().as_str());
        if let Some(trace) = rc.trace() {
            out.extend_from_slice(b",\"trace.id\":\"");
            out.extend_from_slice(trace.trace_hex());
            out.extend_from_slice(b"\",\"span.id\":\"");
            out.extend_from_slice(trace.span_hex());
            out.extend_from_slice(b"\",\"trace_flags\":\"");
            out.extend_from_slice(trace.flags_hex());
            out.push(b'"');
        }
    }
    if line.logger == PANIC_TARGET {
        out.extend_from_slice(b",\"error.type\":\"panic\"");
    }
    write_json_tail(out, Style::Ecs, line, b"");
}

/// ECS names for the access line's and the panic line's fields.
pub(crate) fn access_field(name: &str) -> Option<AccessField> {
    let (key, unit) = match name {
        "method" => ("http.request.method", Unit::Same),
        "path" => ("url.original", Unit::Same),
        "status" => ("http.response.status_code", Unit::Same),
        "latency_ms" => ("event.duration", Unit::MsToNanos),
        "bytes_out" => ("http.response.body.bytes", Unit::Same),
        "client_ip" => ("client.ip", Unit::Same),
        "user_agent" => ("user_agent.original", Unit::Same),
        "panic.backtrace" => ("error.stack_trace", Unit::Same),
        "panic.thread" => ("process.thread.name", Unit::Same),
        _ => return None,
    };
    Some(AccessField {
        key,
        unit,
        nested: false,
    })
}
