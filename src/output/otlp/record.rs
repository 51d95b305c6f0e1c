//! corrlog's JSON lines as OTLP log records: the lines the layer wrote
//! (redacted, escaped, capped) are read back on the writer thread, off the
//! request path, so the records hold exactly what every other output holds.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

/// Keys of the JSON line that describe the process, not the event: they
/// become resource attributes.
const RESOURCE_KEYS: [&str; 4] = [
    "service.name",
    "service.version",
    "service.instance.id",
    "deployment.environment.name",
];

/// The logger of a line without one (never written by corrlog, but the
/// pipeline takes any line).
const DEFAULT_SCOPE: &str = "corrlog";

/// A resource's attributes as the lines wrote them.
type ResourceKey = Vec<(String, String)>;

/// One export request for `lines` (JSON lines without their newlines),
/// grouped by resource and then by logger, in order within each. `observed` is the time of the
/// export, in nanoseconds since the epoch.
pub(crate) fn request(lines: &[&[u8]], observed: u64) -> ExportLogsServiceRequest {
    let mut groups: BTreeMap<ResourceKey, BTreeMap<String, Vec<LogRecord>>> = BTreeMap::new();
    for line in lines {
        let (resource, scope, record) = convert(line, observed);
        groups
            .entry(resource)
            .or_default()
            .entry(scope)
            .or_default()
            .push(record);
    }
    let resource_logs = groups
        .into_iter()
        .map(|(resource, scopes)| ResourceLogs {
            resource: Some(Resource {
                attributes: resource
                    .into_iter()
                    .map(|(key, value)| key_value(key, Value::String(value)))
                    .collect(),
                ..Resource::default()
            }),
            scope_logs: scopes
                .into_iter()
                .map(|(name, log_records)| ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name,
                        ..InstrumentationScope::default()
                    }),
                    log_records,
                    ..ScopeLogs::default()
                })
                .collect(),
            ..ResourceLogs::default()
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

/// One line as its resource attributes, its logger and its record.
fn convert(line: &[u8], observed: u64) -> (Vec<(String, String)>, String, LogRecord) {
    let mut record = LogRecord {
        observed_time_unix_nano: observed,
        ..LogRecord::default()
    };
    let Ok(mut fields) = serde_json::from_slice::<Map<String, Value>>(line) else {
        // Not a JSON object: kept whole as the body, so nothing is lost.
        let text = String::from_utf8_lossy(line).into_owned();
        record.body = Some(any(Value::String(text)));
        return (Vec::new(), DEFAULT_SCOPE.to_owned(), record);
    };
    if let Some(Value::String(time)) = fields.remove("timestamp") {
        record.time_unix_nano = parse_timestamp(&time).unwrap_or(0);
    }
    if let Some(Value::String(level)) = fields.remove("level") {
        record.severity_number = severity_number(&level);
        record.severity_text = level;
    }
    if let Some(message) = fields.remove("message") {
        record.body = Some(any(message));
    }
    let scope = match fields.remove("logger") {
        Some(Value::String(logger)) => logger,
        _ => DEFAULT_SCOPE.to_owned(),
    };
    // The ids are the record's own fields; a field that does not parse
    // stays an attribute rather than being lost.
    if let Some(bytes) = take_hex(&mut fields, "trace_id", 16) {
        record.trace_id = bytes;
    }
    if let Some(bytes) = take_hex(&mut fields, "span_id", 8) {
        record.span_id = bytes;
    }
    if let Some(flags) = take_hex(&mut fields, "trace_flags", 1) {
        record.flags = u32::from(flags[0]);
    }
    let mut resource = Vec::new();
    for key in RESOURCE_KEYS {
        if let Some(Value::String(value)) = fields.remove(key) {
            resource.push((key.to_owned(), value));
        }
    }
    record.attributes = fields
        .into_iter()
        .map(|(key, value)| key_value(key, value))
        .collect();
    (resource, scope, record)
}

/// Removes `key` when it is `len` bytes of lowercase hex, not all zero.
fn take_hex(fields: &mut Map<String, Value>, key: &str, len: usize) -> Option<Vec<u8>> {
    let bytes = match fields.get(key) {
        Some(Value::String(hex)) if hex.len() == 2 * len => decode_hex(hex)?,
        _ => return None,
    };
    // All-zero trace and span ids are invalid in OTLP (flags may be 0).
    if len > 1 && bytes.iter().all(|&b| b == 0) {
        return None;
    }
    fields.remove(key);
    Some(bytes)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    hex.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The OTLP severity number of a level name: the first number of its
/// range (TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17).
fn severity_number(level: &str) -> i32 {
    match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" => 13,
        "ERROR" => 17,
        _ => 0,
    }
}

fn key_value(key: String, value: Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(any(value)),
        ..KeyValue::default()
    }
}

/// A JSON value as an OTLP value: numbers stay numbers (integers as
/// int64; an integer beyond int64 as its decimal digits, exact), objects
/// become key-value lists.
fn any(value: Value) -> AnyValue {
    let value = match value {
        Value::Null => None,
        Value::Bool(b) => Some(Any::BoolValue(b)),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Any::IntValue(i),
            (None, Some(u), _) => Any::StringValue(u.to_string()),
            (None, None, Some(f)) => Any::DoubleValue(f),
            (None, None, None) => Any::StringValue(n.to_string()),
        }),
        Value::String(s) => Some(Any::StringValue(s)),
        Value::Array(items) => Some(Any::ArrayValue(ArrayValue {
            values: items.into_iter().map(any).collect(),
        })),
        Value::Object(map) => Some(Any::KvlistValue(KeyValueList {
            values: map.into_iter().map(|(k, v)| key_value(k, v)).collect(),
        })),
    };
    AnyValue { value }
}

/// `2026-01-21T10:30:00.123Z` (the layer's timestamps: UTC, 0 to 9
/// fraction digits) as nanoseconds since the epoch.
pub(crate) fn parse_timestamp(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let fraction = &b[19..b.len() - 1];
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] if !digits.is_empty() && digits.len() <= 9 => {
            let value = num(20..20 + digits.len())?;
            value * 10u64.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    // Past 2554 nanoseconds no longer fit in 64 bits.
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_back_to_the_nanosecond() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-01-21T10:30:00.123Z"),
            Some(1_768_991_400_123_000_000)
        );
        assert_eq!(
            parse_timestamp("2000-02-29T23:59:59.000000001Z"),
            Some(951_868_799_000_000_001)
        );
        // A leap second reads as the next second's start.
        assert_eq!(
            parse_timestamp("1970-01-01T23:59:60Z"),
            Some(86_400_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2026-12-31T23:59:59Z"),
            Some(1_798_761_599_000_000_000)
        );
        for bad in [
            "",
            "2026-01-21 10:30:00Z",
            "2026-01-21T10:30:00",
            "2026-13-01T00:00:00Z",
            "2026-01-21T24:00:00Z",
            "2026-01-21T10:30:00.Z",
            "2026-01-21T10:30:00.1234567890Z",
            "2026-01-21T10:30:0x.1Z",
            "1969-12-31T23:59:59Z",
            // One separator wrong at a time.
            "2026/01-21T10:30:00.123Z",
            "2026-01/21T10:30:00.123Z",
            "2026-01-21x10:30:00.123Z",
            "2026-01-21T10-30:00.123Z",
            "2026-01-21T10:30-00.123Z",
            "2026-01-21T10:30:00.123X",
            // Each field one past its range.
            "2026-00-21T10:30:00Z",
            "2026-01-00T10:30:00Z",
            "2026-01-32T10:30:00Z",
            "2026-01-21T10:60:00Z",
            "2026-01-21T10:30:61Z",
            "2600-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn agrees_with_the_layer_s_own_clock_formatting() {
        let mut cache = crate::fmt::time::TimestampCache::default();
        for millis in [
            0u64,
            1,
            999,
            86_399_999,
            951_868_799_123,
            1_768_991_400_123,
            4_102_444_800_000,
        ] {
            let now = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis);
            let mut out = Vec::new();
            cache.write_raw(&mut out, now);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(parse_timestamp(&text), Some(millis * 1_000_000), "{text}");
        }
    }

    fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a Any> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn a_line_becomes_a_typed_record() {
        let line = br#"{"timestamp":"1970-01-01T00:00:01.000Z","level":"WARN","message":"m\"x","logger":"orders","request_id":"r-1","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":"01","n":-3,"big":18446744073709551615,"f":1.5,"ok":true,"nil":null,"obj":{"a":1},"service.name":"svc","deployment.environment.name":"prod"}"#;
        let (resource, scope, record) = convert(line, 7);
        assert_eq!(
            resource,
            vec![
                ("service.name".to_owned(), "svc".to_owned()),
                ("deployment.environment.name".to_owned(), "prod".to_owned())
            ]
        );
        assert_eq!(scope, "orders");
        assert_eq!(record.time_unix_nano, 1_000_000_000);
        assert_eq!(record.observed_time_unix_nano, 7);
        assert_eq!(record.severity_number, 13);
        assert_eq!(record.severity_text, "WARN");
        assert_eq!(
            record.body.as_ref().unwrap().value,
            Some(Any::StringValue("m\"x".into()))
        );
        assert_eq!(hex_of(&record.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex_of(&record.span_id), "00f067aa0ba902b7");
        assert_eq!(record.flags, 1);
        assert_eq!(
            attribute(&record, "request_id"),
            Some(&Any::StringValue("r-1".into()))
        );
        assert_eq!(attribute(&record, "n"), Some(&Any::IntValue(-3)));
        assert_eq!(
            attribute(&record, "big"),
            Some(&Any::StringValue("18446744073709551615".into()))
        );
        assert_eq!(attribute(&record, "f"), Some(&Any::DoubleValue(1.5)));
        assert_eq!(attribute(&record, "ok"), Some(&Any::BoolValue(true)));
        assert_eq!(attribute(&record, "nil"), None);
        assert!(matches!(
            attribute(&record, "obj"),
            Some(Any::KvlistValue(_))
        ));
        for moved in [
            "timestamp",
            "level",
            "message",
            "logger",
            "trace_id",
            "service.name",
        ] {
            assert!(
                record.attributes.iter().all(|kv| kv.key != moved),
                "{moved}"
            );
        }
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn ids_that_do_not_parse_stay_attributes() {
        let line = br#"{"trace_id":"00000000000000000000000000000000","span_id":"XYZ","trace_flags":"0g"}"#;
        let (_, scope, record) = convert(line, 0);
        assert_eq!(scope, DEFAULT_SCOPE);
        assert!(record.trace_id.is_empty() && record.span_id.is_empty());
        assert_eq!(record.flags, 0);
        assert_eq!(record.attributes.len(), 3);
        let (_, _, record) = convert(br#"{"trace_flags":"00"}"#, 0);
        assert!(record.attributes.is_empty(), "flags 00 are valid");
        // Hex of the wrong length is no id, however it decodes.
        let line =
            br#"{"trace_id":"4bf92f3577b34da6","span_id":"00f067aa0ba902b700","trace_flags":"1"}"#;
        let (_, _, record) = convert(line, 0);
        assert!(record.trace_id.is_empty() && record.span_id.is_empty());
        assert_eq!(record.flags, 0);
        assert_eq!(record.attributes.len(), 3);
    }

    #[test]
    fn a_line_that_is_not_json_is_kept_as_the_body() {
        let (_, _, record) = convert(b"not json \xff", 0);
        assert_eq!(
            record.body.unwrap().value,
            Some(Any::StringValue("not json \u{fffd}".into()))
        );
    }

    #[test]
    fn records_group_by_resource_then_logger() {
        let lines: [&[u8]; 4] = [
            br#"{"logger":"a","message":"1","service.name":"s"}"#,
            br#"{"logger":"b","message":"2","service.name":"s"}"#,
            br#"{"logger":"a","message":"3","service.name":"s"}"#,
            br#"{"logger":"a","message":"4"}"#,
        ];
        let request = request(&lines, 0);
        assert_eq!(request.resource_logs.len(), 2);
        let with_service = request
            .resource_logs
            .iter()
            .find(|r| !r.resource.as_ref().unwrap().attributes.is_empty())
            .unwrap();
        let scopes: Vec<(&str, usize)> = with_service
            .scope_logs
            .iter()
            .map(|s| (s.scope.as_ref().unwrap().name.as_str(), s.log_records.len()))
            .collect();
        assert_eq!(scopes, [("a", 2), ("b", 1)]);
    }

    #[test]
    fn severity_numbers_follow_the_data_model() {
        for (level, number) in [
            ("TRACE", 1),
            ("DEBUG", 5),
            ("INFO", 9),
            ("WARN", 13),
            ("ERROR", 17),
            ("x", 0),
        ] {
            assert_eq!(severity_number(level), number);
        }
    }
}
