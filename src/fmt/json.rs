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
    if write_short_decimal(out, n) {
        return;
    }
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

/// Writes `n` when it is a decimal of at most three places below 10^12
/// (a latency in milliseconds, say), as the shortest round-trip form would
/// write it (`12.5`, `0.001`, `3.0`), without the general algorithm;
/// returns whether it did.
fn write_short_decimal(out: &mut Vec<u8>, n: f64) -> bool {
    let abs = n.abs();
    // Zero keeps its sign through the general path.
    if !(abs > 0.0 && abs < 1e12) {
        return false;
    }
    let thousandths = (abs * 1000.0).round();
    // The nearest double to thousandths/1000 is `n` itself: that decimal is
    // the shortest text that reads back as `n` (any other decimal of at
    // most three places is 0.001 away, far more than `n`'s precision).
    if thousandths / 1000.0 != abs {
        return false;
    }
    let thousandths = thousandths as u64;
    if n.is_sign_negative() {
        out.push(b'-');
    }
    write_u64(out, thousandths / 1000);
    out.push(b'.');
    let frac = thousandths % 1000;
    if frac == 0 {
        out.push(b'0');
    } else {
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let len = if !frac.is_multiple_of(10) {
            3
        } else if !frac.is_multiple_of(100) {
            2
        } else {
            1
        };
        out.extend_from_slice(&digits[..len]);
    }
    true
}

/// Appends `true` or `false`.
pub(crate) fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Whether `key` is one of `keys`. Keys are short and rarely equal: the
/// length and the first byte settle almost every comparison without a
/// call to `memcmp`.
#[inline]
pub(crate) fn has_key(keys: &[&str], key: &str) -> bool {
    let first = key.as_bytes().first();
    keys.iter()
        .any(|k| k.len() == key.len() && k.as_bytes().first() == first && *k == key)
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
    fn has_key_finds_exactly_the_equal_keys() {
        let keys = ["user", "order_id", "cart", ""];
        for key in ["user", "order_id", "cart", ""] {
            assert!(has_key(&keys, key), "{key}");
        }
        // Same length, same first byte, same length and first byte.
        for key in ["uses", "order_ix", "care", "u", "users", "xart"] {
            assert!(!has_key(&keys, key), "{key}");
        }
        assert!(!has_key(&[], "user"));
    }

    #[test]
    fn floats_stay_valid_json() {
        let mut v = Vec::new();
        for f in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            v.clear();
            write_f64(&mut v, f);
            assert!(serde_json::from_slice::<serde_json::Value>(&v).is_ok());
        }
    }

    fn general(n: f64) -> String {
        ryu::Buffer::new().format_finite(n).to_owned()
    }

    fn written(n: f64) -> String {
        let mut v = Vec::new();
        write_f64(&mut v, n);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn short_decimals_read_as_the_general_algorithm_writes_them() {
        let mut seen_fast = 0;
        let mut check = |n: f64| {
            let mut v = Vec::new();
            if write_short_decimal(&mut v, n) {
                seen_fast += 1;
                assert_eq!(String::from_utf8(v).unwrap(), general(n), "{n:?}");
            }
            assert_eq!(written(n), general(n), "{n:?}");
        };
        for n in [
            0.001,
            0.01,
            0.1,
            1.0,
            1.5,
            2.25,
            0.125,
            12.345,
            999.999,
            1000.0,
            0.0005,
            1e-7,
            123_456_789.012,
            999_999_999_999.999,
            1e12,
            1e15,
            0.1 + 0.2,
            1.0 / 3.0,
            -0.0,
            0.0,
        ] {
            check(n);
            check(-n);
        }
        // Latencies as the access line rounds them, and random doubles.
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200_000 {
            let ms = rng.f64() * 10f64.powi(rng.i32(-4..10));
            check((ms * 1000.0).round() / 1000.0);
            check(ms);
            let bits = f64::from_bits(rng.u64(..));
            if bits.is_finite() {
                check(bits.clamp(-1e13, 1e13));
            }
        }
        assert!(seen_fast > 100_000, "{seen_fast}");
        // Only below 10^12, where a double still holds every thousandth.
        let mut v = Vec::new();
        assert!(write_short_decimal(&mut v, 999_999_999_999.999));
        assert!(!write_short_decimal(&mut v, 1e12));
    }

    #[test]
    fn reserved_keys_are_renamed() {
        let mut v = Vec::new();
        key(&mut v, "level", is_reserved);
        key(&mut v, "user", is_reserved);
        assert_eq!(v, b",\"fields.level\":,\"user\":");
    }
}
