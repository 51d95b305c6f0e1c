//! The access line's fields, written straight from its typed
//! [`AccessLine`] rather than through the general field visitor: each
//! key is encoded once per layer, in the layer's format and under its
//! redaction policy, and each value is written by its type. The bytes are
//! the ones the visitor writes for the same event (the tests compare the
//! two for every format).

use std::net::IpAddr;

use super::line::{AccessLine, FIELDS, MESSAGE};
use crate::fmt::escape::write_debug;
use crate::fmt::line::{write_mask, Style, Unit};
use crate::fmt::redact::{Redaction, Verdict, MIN_VALUE_BYTES};
use crate::fmt::visitor::{write_number, write_text, Number};

/// One access field's key, encoded for a layer.
struct Key {
    name: &'static str,
    /// `,"key":` (or ` key=`), renamed as the format names the field.
    bytes: Box<[u8]>,
    /// Goes in the format's nested object.
    nested: bool,
    unit: Option<Unit>,
    verdict: Verdict,
}

/// A layer's encoded access keys, made on its first access line.
pub(crate) struct AccessKeys {
    keys: Vec<Key>,
}

impl AccessKeys {
    pub(crate) fn new(style: Style, policy: &Redaction) -> Self {
        let keys = FIELDS
            .iter()
            .map(|&name| {
                let special = style.access_field(name);
                let mut bytes = Vec::new();
                match special {
                    Some(special) => style.raw_key(&mut bytes, special.key),
                    None => style.key(&mut bytes, name),
                }
                Key {
                    name,
                    bytes: bytes.into_boxed_slice(),
                    nested: special.is_some_and(|s| s.nested),
                    unit: special.map(|s| s.unit),
                    verdict: policy.verdict(name),
                }
            })
            .collect();
        AccessKeys { keys }
    }
}

/// Where an event's parts go (the layer's per-thread buffers).
pub(crate) struct Out<'a> {
    pub(crate) message: &'a mut Vec<u8>,
    pub(crate) fields: &'a mut Vec<u8>,
    pub(crate) nested: &'a mut Vec<u8>,
    pub(crate) keys: &'a mut Vec<&'static str>,
}

/// A field's value, as the event records it.
enum Value<'a> {
    Str(&'a str),
    U64(u64),
    F64(f64),
    Ip(IpAddr),
}

/// Writes `line`'s message and fields as the visitor writes its event's.
pub(crate) fn write(keys: &AccessKeys, policy: &Redaction, line: &AccessLine, out: Out<'_>) {
    let max = policy.max_bytes();
    // Plain ASCII, nothing to escape (the visitor's lines, which escape
    // it, are the same: see the tests), and within any policy's cap.
    const _: () = assert!(MESSAGE.len() <= MIN_VALUE_BYTES);
    out.message.extend_from_slice(MESSAGE.as_bytes());

    let path = line.path();
    let user_agent = line.user_agent();
    let values: [Option<Value<'_>>; FIELDS.len()] = [
        Some(Value::Str(line.method.as_str())),
        Some(Value::Str(&path)),
        line.route().map(Value::Str),
        line.status.map(|s| Value::U64(u64::from(s))),
        Some(Value::F64(line.latency_ms)),
        Some(Value::U64(line.bytes_out)),
        line.client_ip.map(Value::Ip),
        user_agent.as_deref().map(Value::Str),
        line.parent_span_id().map(Value::Str),
        line.grpc_status.map(|s| Value::U64(u64::from(s))),
        line.grpc_status_name.map(Value::Str),
        line.messages_out.map(Value::U64),
        line.reason.map(Value::Str),
        line.buffer_discarded.map(Value::U64),
        line.buffer_evicted.map(Value::U64),
    ];
    for (key, value) in keys.keys.iter().zip(values) {
        let Some(value) = value else { continue };
        out.keys.push(key.name);
        let buf = if key.nested {
            &mut *out.nested
        } else {
            &mut *out.fields
        };
        buf.extend_from_slice(&key.bytes);
        if key.verdict == Verdict::Secret {
            write_mask(buf);
            continue;
        }
        match value {
            Value::Str(text) => write_text(buf, policy, key.verdict, text),
            Value::U64(n) => write_number(buf, key.unit, Number::U64(n)),
            Value::F64(n) => write_number(buf, key.unit, Number::F64(n)),
            // As the event records it: `display(ip)`.
            Value::Ip(ip) => write_debug(buf, &tracing::field::display(ip), max),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use http::{HeaderName, HeaderValue, Method};
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    use crate::context::{RequestContext, RequestId, TraceContext};
    use crate::fmt::access::{dispatch, emit, AccessLine, Route};
    use crate::fmt::Capture;
    use crate::fmt::Redaction;
    use crate::LogLayer;

    fn fixed() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_768_991_400_123)
    }

    fn lines() -> Vec<AccessLine> {
        let plain = AccessLine {
            latency_ms: 0.123,
            bytes_out: 5,
            ..AccessLine::sample("/orders/42")
        };
        let full = AccessLine {
            level: Level::ERROR,
            method: Method::from_bytes(b"PURGE").unwrap(),
            uri: "http://h.example/a%22b/c?token=s3cret&x=%0a1"
                .parse()
                .unwrap(),
            with_query: true,
            route: Some(Route::Text("/a/{id}".into())),
            status: Some(503),
            latency_ms: 1234.5,
            bytes_out: u64::MAX,
            client_ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: Some(HeaderValue::from_bytes(b"curl/8 \xff\"quoted\"").unwrap()),
            parent_span_id: Some(*b"00f067aa0ba902b7"),
            reason: Some("body_error"),
            buffer_discarded: Some(3),
            buffer_evicted: Some(1),
            ..plain.clone()
        };
        let grpc = AccessLine {
            level: Level::WARN,
            method: Method::POST,
            uri: "/pkg.Orders/Get".parse().unwrap(),
            is_grpc: true,
            status: Some(200),
            latency_ms: 0.0,
            client_ip: Some("2001:db8::1".parse().unwrap()),
            grpc_status: Some(5),
            grpc_status_name: Some("NOT_FOUND"),
            messages_out: Some(2),
            ..plain.clone()
        };
        let slow = AccessLine {
            status: None,
            latency_ms: 1.0 / 3.0,
            with_query: true,
            uri: "/search?q=a&code=123".parse().unwrap(),
            reason: Some("cancelled"),
            ..plain.clone()
        };
        vec![plain, full, grpc, slow]
    }

    fn layers(capture: &Capture, policy: &Redaction) -> Vec<LogLayer<Capture>> {
        [
            LogLayer::new(capture.clone()),
            LogLayer::new(capture.clone()).format(crate::Format::Pretty),
            LogLayer::new(capture.clone())
                .format(crate::Format::Pretty)
                .color(true),
            LogLayer::new(capture.clone()).format(crate::Format::Ecs),
            LogLayer::new(capture.clone())
                .format(crate::Format::Gcp)
                .gcp_project("proj"),
            LogLayer::new(capture.clone()).format(crate::Format::Gcp),
            LogLayer::new(capture.clone()).format(crate::Format::Datadog),
        ]
        .into_iter()
        .map(|layer| layer.clock(fixed).redaction(policy.clone()))
        .collect()
    }

    /// The typed path writes, for every format, policy and line, the
    /// bytes the general visitor writes for the same event.
    #[test]
    fn typed_lines_equal_the_visitor_lines() {
        let policies = [
            Redaction::default(),
            Redaction::default().mask_names_containing(["agent", "route", "status"]),
            Redaction::default().markers(["path", "client"]),
            Redaction::default().max_value_bytes(16),
        ];
        let mut compared = 0;
        for policy in &policies {
            let capture = Capture::new();
            for layer in layers(&capture, policy) {
                let subscriber = tracing_subscriber::registry().with(layer);
                tracing::subscriber::with_default(subscriber, || {
                    for line in lines() {
                        let ctx = RequestContext::with_trace(
                            RequestId::new("req-1").unwrap(),
                            Some(TraceContext::new_root()),
                            HeaderName::from_static("x-request-id"),
                        );
                        ctx.bind("status", "bound, shadowed by the field");
                        ctx.bind("route", "bound, shown when no route");
                        ctx.set_access_headers(Box::new([(
                            HeaderName::from_static("authorization"),
                            HeaderValue::from_static("Bearer x"),
                        )]));
                        ctx.clone().run(|| {
                            dispatch(|| line.clone(), emit);
                            emit(&line);
                        });
                    }
                });
            }
            let out = capture.lines();
            assert_eq!(out.len(), 2 * 7 * lines().len());
            for pair in out.chunks(2) {
                assert_eq!(pair[0], pair[1]);
                compared += 1;
            }
        }
        assert_eq!(compared, policies.len() * 7 * 4);
    }

    /// The typed path is taken: a layer that sees no pending line writes
    /// the visitor's output, which the test above compares; here the
    /// values come from the pending line, not from the event.
    #[test]
    fn the_pending_line_is_what_the_layer_writes() {
        let capture = Capture::new();
        let subscriber = tracing_subscriber::registry().with(LogLayer::new(capture.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let line = lines().remove(0);
            let other = AccessLine {
                uri: "/from-the-pending-line".parse().unwrap(),
                ..line.clone()
            };
            dispatch(|| other, |_| emit(&line));
        });
        assert!(capture.lines()[0].contains(r#""path":"/from-the-pending-line""#));
    }
}
