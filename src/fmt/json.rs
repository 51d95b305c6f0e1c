//! The JSON line: one object per line, keys in schema order.

use super::escape::{escape_into, write_str};
use super::line::{level_name, write_json_tail, Line, Style};
use super::time::TimestampCache;
use crate::context::FieldValue;

/// Keys corrlog writes itself. A user field with one of these names is
/// written as `fields.<name>` instead, so it can never overwrite them.
pub(crate) const RESERVED_KEYS: &[&str] = &[
    "timestamp",
    "level",
    "message",
    "logger",
    "request_id",
    "trace_id",
    "span_id",
    "trace_flags",
    "service.name",
    "service.version",
    "service.instance.id",
    "deployment.environment.name",
];

/// Whether corrlog's JSON lines reserve `key`.
pub(crate) fn is_reserved(key: &str) -> bool {
    RESERVED_KEYS.contains(&key)
}

/// Writes a whole line: the head (`timestamp`, `level`, `message`,
/// `logger`), the request's ids and bound fields, the fields, `}` and a
/// newline.
pub(crate) fn write_line(out: &mut Vec<u8>, clock: &mut TimestampCache, line: &Line<'_>) {
    out.extend_from_slice(b"{\"timestamp\":");
    clock.write(out, line.now);
    out.extend_from_slice(b",\"level\":\"");
    out.extend_from_slice(level_name(line.level));
    out.extend_from_slice(b"\",\"message\":\"");
    out.extend_from_slice(line.message);
    out.extend_from_slice(b"\",\"logger\":");
    write_str(out, line.logger);
    if let Some(rc) = line.request {
        out.extend_from_slice(b",\"request_id\":");
        write_str(out, rc.id().as_str());
        if let Some(trace) = rc.trace() {
            out.extend_from_slice(b",\"trace_id\":\"");
            out.extend_from_slice(trace.trace_hex());
            out.extend_from_slice(b"\",\"span_id\":\"");
            out.extend_from_slice(trace.span_hex());
            out.extend_from_slice(b"\",\"trace_flags\":\"");
            out.extend_from_slice(trace.flags_hex());
            out.push(b'"');
        }
    }
    write_json_tail(out, Style::Json, line, b"");
}

/// Appends a bound value as JSON.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &FieldValue) {
    match value {
        FieldValue::Str(s) => write_str(out, s),
        FieldValue::I64(n) => write_i64(out, *n),
        FieldValue::U64(n) => write_u64(out, *n),
        FieldValue::F64(n) => write_f64(out, *n),
        FieldValue::Bool(b) => write_bool(out, *b),
    }
}

/// Appends an integer.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends an unsigned integer.
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends a float; NaN and the infinities, which JSON lacks, as strings.
pub(crate) fn write_f64(out: &mut Vec<u8>, n: f64) {
    if n.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(n).as_bytes());
    } else if n.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if n > 0.0 {
        out.extend_from_slice(b"\"inf\"");
    } else {
        out.extend_from_slice(b"\"-inf\"");
    }
}

/// Appends `true` or `false`.
pub(crate) fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Appends `,"key":` for a field, renaming keys the format reserves to
/// `fields.<key>`.
pub(crate) fn key(out: &mut Vec<u8>, key: &str, reserved: impl Fn(&str) -> bool) {
    out.extend_from_slice(b",\"");
    if reserved(key) {
        out.extend_from_slice(b"fields.");
    }
    escape_into(out, key);
    out.extend_from_slice(b"\":");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_stay_valid_json() {
        let mut v = Vec::new();
        for f in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            v.clear();
            write_f64(&mut v, f);
            assert!(serde_json::from_slice::<serde_json::Value>(&v).is_ok());
        }
    }

    #[test]
    fn reserved_keys_are_renamed() {
        let mut v = Vec::new();
        key(&mut v, "level", is_reserved);
        key(&mut v, "user", is_reserved);
        assert_eq!(v, b",\"fields.level\":,\"user\":");
    }
}
