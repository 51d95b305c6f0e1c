//! The JSON layer: schema and key order, flattening rules, typed values,
//! reserved keys, hostile content, panics in formatting, and a property
//! test that any content gives one line that parses and round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corrlog::context::TraceContext;
use corrlog::testing::TestLogs;
use corrlog::{LogLayer, RequestContext, RequestId};
use proptest::prelude::*;
use serde_json::{Map, Value};
use tracing_subscriber::layer::SubscriberExt;

fn fixed_clock() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_768_991_400_123)
}

/// Runs `f` under a JSON layer writing to a fresh capture; returns the raw
/// lines.
fn capture(f: impl FnOnce()) -> Vec<String> {
    let capture = TestLogs::new();
    let layer = LogLayer::new(capture.clone()).clock(fixed_clock);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    capture.lines()
}

fn parse(line: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        other => panic!("not a JSON object line: {line:?} ({other:?})"),
    }
}

fn in_request<R>(id: &str, f: impl FnOnce() -> R) -> R {
    RequestContext::new(RequestId::new(id).unwrap()).run(f)
}

#[test]
fn the_line_schema_in_order() {
    let lines = capture(|| {
        in_request("550e8400-e29b-41d4-a716-446655440000", || {
            corrlog::bind("user_id", "u-1");
            let span = tracing::info_span!("handler", route = "/orders/{id}");
            let _g = span.enter();
            tracing::info!(target: "orders", order_id = 42, paid = true, "processing order");
        })
    });
    assert_eq!(
        lines,
        vec![concat!(
            r#"{"timestamp":"2026-01-21T10:30:00.123Z","level":"INFO","message":"processing order","#,
            r#""logger":"orders","request_id":"550e8400-e29b-41d4-a716-446655440000","user_id":"u-1","#,
            r#""route":"/orders/{id}","order_id":42,"paid":true}"#
        )]
    );
}

#[test]
fn request_id_is_omitted_outside_a_request() {
    let lines = capture(|| tracing::error!(code = 7, "startup failed"));
    let line = parse(&lines[0]);
    assert!(!line.contains_key("request_id"));
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["code"], 7);
    assert_eq!(line["logger"], "json");
}

#[test]
fn innermost_wins_and_each_key_is_written_once() {
    let lines = capture(|| {
        in_request("r-1", || {
            corrlog::bind("who", "bound");
            corrlog::bind("only_bound", 1);
            let outer = tracing::info_span!("outer", who = "outer", depth = 1, only_outer = true);
            let _o = outer.enter();
            let inner = tracing::info_span!("inner", who = "inner", depth = 2);
            let _i = inner.enter();
            tracing::info!(depth = 3, "event");
            tracing::info!("no event fields");
        })
    });
    for line in &lines {
        // Duplicate keys would be silently merged by the parser: count them.
        assert_eq!(line.matches("\"who\":").count(), 1, "{line}");
        assert_eq!(line.matches("\"depth\":").count(), 1, "{line}");
    }
    let first = parse(&lines[0]);
    assert_eq!(first["who"], "inner");
    assert_eq!(first["depth"], 3);
    assert_eq!(first["only_outer"], true);
    assert_eq!(first["only_bound"], 1);
    let second = parse(&lines[1]);
    assert_eq!(second["depth"], 2);
}

#[test]
fn recorded_span_fields_replace_their_value() {
    let lines = capture(|| {
        let span = tracing::info_span!("work", state = "start", rows = tracing::field::Empty);
        let _g = span.enter();
        tracing::info!("one");
        span.record("state", "done");
        span.record("rows", 12u64);
        tracing::info!("two");
    });
    let one = parse(&lines[0]);
    assert_eq!(one["state"], "start");
    assert!(!one.contains_key("rows"));
    let two = parse(&lines[1]);
    assert_eq!(two["state"], "done");
    assert_eq!(two["rows"], 12);
}

#[test]
fn reserved_keys_are_never_overwritten() {
    let lines = capture(|| {
        in_request("real-id", || {
            corrlog::bind("request_id", "bound-fake");
            let span = tracing::info_span!("s", level = "span-fake", message = "span-msg");
            let _g = span.enter();
            tracing::info!(
                timestamp = 1,
                logger = "fake",
                request_id = "event-fake",
                "real message"
            );
        })
    });
    let line = parse(&lines[0]);
    assert_eq!(line["request_id"], "real-id");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["message"], "real message");
    assert_eq!(line["logger"], "json");
    assert_eq!(line["timestamp"], "2026-01-21T10:30:00.123Z");
    assert_eq!(line["fields.request_id"], "event-fake");
    assert_eq!(line["fields.level"], "span-fake");
    assert_eq!(line["fields.message"], "span-msg");
    assert_eq!(line["fields.timestamp"], 1);
    assert_eq!(line["fields.logger"], "fake");
}

#[test]
fn trace_keys_are_reserved_too() {
    let lines = capture(|| {
        let ctx = RequestContext::with_trace(
            RequestId::new("trace-req").unwrap(),
            Some(TraceContext::new_root()),
            http::HeaderName::from_static("x-request-id"),
        );
        ctx.run(|| {
            corrlog::bind("span_id", "bound-fake");
            corrlog::bind("trace_flags", "bound-flags");
            let span = tracing::info_span!("s", trace_id = "span-fake");
            let _g = span.enter();
            tracing::info!(span_id = 7, "traced");
        })
    });
    // Each key once in the raw line: a parser keeping the last duplicate
    // would otherwise see the user's value.
    for key in ["\"trace_id\":", "\"span_id\":", "\"trace_flags\":"] {
        assert_eq!(lines[0].matches(key).count(), 1, "{}", lines[0]);
    }
    let line = parse(&lines[0]);
    assert_eq!(line["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(line["span_id"].as_str().unwrap().len(), 16);
    assert_eq!(line["fields.trace_id"], "span-fake");
    assert_eq!(line["fields.span_id"], 7);
    // A new trace is sampled; the flags follow the ids.
    assert_eq!(line["trace_flags"], "01");
    assert!(
        lines[0].contains(r#"","trace_flags":"01","#),
        "{}",
        lines[0]
    );
    assert_eq!(line["fields.trace_flags"], "bound-flags");
}

#[test]
fn values_keep_their_json_types() {
    let lines = capture(|| {
        tracing::info!(
            int = -5i64,
            uint = 7u64,
            big = u128::MAX,
            float = 1.5f64,
            nan = f64::NAN,
            inf = f64::INFINITY,
            yes = true,
            text = "t",
            debug = ?vec![1, 2],
            display = %"shown",
            "typed"
        )
    });
    let line = parse(&lines[0]);
    assert_eq!(line["int"], -5);
    assert_eq!(line["uint"], 7);
    assert!(lines[0].contains(&format!(r#""big":{}"#, u128::MAX)));
    assert_eq!(line["float"], 1.5);
    assert_eq!(line["nan"], "NaN");
    assert_eq!(line["inf"], "inf");
    assert_eq!(line["yes"], true);
    assert_eq!(line["text"], "t");
    assert_eq!(line["debug"], "[1, 2]");
    assert_eq!(line["display"], "shown");
}

#[test]
fn hostile_content_stays_inside_its_string() {
    let nasty = "\",\"level\":\"ERROR\"}\n{\"injected\":true,\u{0}\u{1b}[2J\u{7f}\u{85}\u{2028}\u{202e}\u{feff}\\";
    let lines = capture(|| {
        in_request("r-2", || {
            corrlog::bind(nasty, nasty);
            tracing::info!(field = nasty, "{nasty}");
        })
    });
    assert_eq!(lines.len(), 1);
    let line = parse(&lines[0]);
    assert_eq!(line["message"], nasty);
    assert_eq!(line["field"], nasty);
    assert_eq!(line[nasty], nasty);
    assert_eq!(line["level"], "INFO");
    assert!(!line.contains_key("injected"));
    // Deceptive characters are escaped, not written raw.
    for raw in [
        '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{202e}', '\u{feff}',
    ] {
        assert!(!lines[0].contains(raw), "{raw:?} written raw");
    }
}

#[test]
fn invisible_and_bidi_characters_are_escaped_in_every_field_and_layout() {
    struct Shown(String);
    impl fmt::Debug for Shown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }
    for &c in common::INVISIBLE.iter().chain(&['\u{1b}']) {
        let text = format!("pay{c}lah");
        let log = || {
            in_request("inv-1", || {
                corrlog::bind("bound", text.as_str());
                let span = tracing::info_span!("work", spanned = text.as_str());
                let _g = span.enter();
                tracing::info!(
                    field = text.as_str(),
                    shown = ?Shown(text.clone()),
                    shown_display = %text,
                    "{text}"
                );
            })
        };
        let json = capture(log);
        let pretty = TestLogs::new();
        let layer = LogLayer::new(pretty.clone())
            .format(corrlog::Format::Pretty)
            .clock(fixed_clock);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log);
        let escaped = format!("pay\\u{:04x}lah", u32::from(c));
        for line in json.iter().chain(pretty.lines().iter()) {
            assert!(!line.contains(c), "{c:?} raw in {line}");
            // message, bound, span, event, Debug and Display fields
            assert_eq!(line.matches(&escaped).count(), 6, "{c:?}: {line}");
        }
        let line = parse(&json[0]);
        for key in [
            "message",
            "bound",
            "spanned",
            "field",
            "shown",
            "shown_display",
        ] {
            assert_eq!(line[key], text.as_str(), "{c:?} in {key} round-trips");
        }
    }
}

/// A value cap bounds what the value takes in the line, however much its
/// characters grow when escaped.
#[test]
fn the_value_cap_bounds_escaped_output() {
    let controls = "\u{1}".repeat(64 * 1024);
    let lines = capture(|| tracing::info!(controls = controls.as_str(), "x"));
    assert!(lines[0].len() < 17 * 1024, "{} bytes", lines[0].len());
    let v = parse(&lines[0])["controls"].as_str().unwrap().to_owned();
    assert!(v.ends_with("…[truncated, 65536 bytes in all]"));
}

#[test]
fn huge_values_are_cut_to_the_bound_in_one_valid_line() {
    let big = "x".repeat(1 << 20);
    let multibyte = "é".repeat(20_000);
    let lines = capture(|| {
        in_request("big-1", || {
            corrlog::bind("bound", big.as_str());
            corrlog::bind("callback_url", format!("https://a.example/{big}"));
            tracing::info!(display = %big, text = big.as_str(), debug = ?multibyte, "{big}");
        })
    });
    assert_eq!(lines.len(), 1);
    assert!(lines[0].len() < 120 * 1024, "{} bytes", lines[0].len());
    let line = parse(&lines[0]);
    let note = "…[truncated, 1048576 bytes in all]";
    for key in ["display", "text", "message", "bound"] {
        let v = line[key].as_str().unwrap();
        assert!(v.starts_with(&"x".repeat(16 * 1024)), "{key}");
        assert!(v.ends_with(note), "{key}: ...{}", &v[v.len() - 60..]);
        assert_eq!(v.len(), 16 * 1024 + note.len());
    }
    // Cut on a character boundary: still valid UTF-8 (it parsed) and
    // whole characters only.
    let debug = line["debug"].as_str().unwrap();
    assert!(debug.trim_start_matches('"').starts_with('é'));
    assert!(
        debug.contains("[truncated, 40002 bytes in all]"),
        "{}",
        &debug[debug.len() - 60..]
    );
    let url = line["callback_url"].as_str().unwrap();
    assert!(url.starts_with("https://a.example/xxx"));
    assert!(
        url.ends_with("…[truncated, 1048594 bytes in all]"),
        "{}",
        &url[url.len() - 60..]
    );
}

#[test]
fn secret_fields_are_masked_in_events_spans_and_bound_fields() {
    let lines = capture(|| {
        in_request("r-secret", || {
            corrlog::bind("session_id", "s-123");
            corrlog::bind("callback_url", "https://u:p@hooks.example.com/x?token=abc");
            let span = tracing::info_span!("login", api_key = "k-1", user = "alice");
            let _g = span.enter();
            tracing::info!(
                password = "hunter2",
                Authorization = "Bearer xyz",
                pin_token = 1234,
                url = "https://bob:pw@example.com/cb?access_token=t&page=2",
                path = "/reset?sig=s&x=1",
                "login attempt"
            );
        })
    });
    let line = parse(&lines[0]);
    for key in [
        "password",
        "Authorization",
        "pin_token",
        "api_key",
        "session_id",
    ] {
        assert_eq!(line[key], "[REDACTED]", "{key}");
    }
    assert_eq!(line["user"], "alice");
    assert_eq!(
        line["url"],
        "https://[REDACTED]@example.com/cb?access_token=[REDACTED]&page=2"
    );
    assert_eq!(line["path"], "/reset?sig=[REDACTED]&x=1");
    assert_eq!(
        line["callback_url"],
        "https://[REDACTED]@hooks.example.com/x?token=[REDACTED]"
    );
    for secret in ["hunter2", "xyz", "1234", "k-1", "s-123", "bob:pw", "u:p@"] {
        assert!(!lines[0].contains(secret), "{secret} leaked: {}", lines[0]);
    }
}

struct PanickingDebug;
impl fmt::Debug for PanickingDebug {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Debug impl panicked")
    }
}

struct FailingDebug;
impl fmt::Debug for FailingDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("partial \"quoted")?;
        Err(fmt::Error)
    }
}

struct LoggingDebug;
impl fmt::Debug for LoggingDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        tracing::info!("logged from inside Debug");
        f.write_str("logging-debug")
    }
}

#[test]
fn a_panicking_debug_impl_never_corrupts_the_next_line() {
    let lines = capture(|| {
        in_request("r-3", || {
            tracing::info!(bad = ?PanickingDebug, "first");
            tracing::info!(ok = 1, "second");
        })
    });
    assert_eq!(lines.len(), 2);
    let first = parse(&lines[0]);
    assert_eq!(first["request_id"], "r-3");
    assert_eq!(
        first["message"],
        "log event dropped: formatting one of its fields panicked"
    );
    let second = parse(&lines[1]);
    assert_eq!(second["message"], "second");
    assert_eq!(second["ok"], 1);
}

#[test]
fn failing_and_reentrant_debug_impls_still_give_valid_lines() {
    let lines = capture(|| {
        tracing::info!(partial = ?FailingDebug, "failing");
        tracing::info!(nested = ?LoggingDebug, "outer");
    });
    let parsed: Vec<_> = lines.iter().map(|l| parse(l)).collect();
    assert_eq!(parsed[0]["partial"], "partial \"quoted");
    // tracing drops an event raised while the subscriber is handling
    // another on the same thread; the outer line is whole.
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[1]["nested"], "logging-debug");
}

#[test]
fn the_request_span_carries_the_id_into_in_current_span_futures() {
    use tracing::Instrument;
    let lines = capture(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ctx = RequestContext::new(RequestId::new("span-carried").unwrap());
        // The middleware opens this span inside the context.
        let span = ctx.run(|| tracing::info_span!(target: "corrlog", "request"));
        let fut = async {
            // Not a corrlog helper: the task-local is gone, the span is not.
            assert!(corrlog::request_id().is_none());
            tracing::info!("in a span-propagated future");
        };
        rt.block_on(fut.instrument(span));
    });
    assert_eq!(parse(&lines[0])["request_id"], "span-carried");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_content_gives_one_line_that_round_trips(
        message in any::<String>(),
        text in any::<String>(),
        key in "[a-z_]{1,12}",
        bound in any::<String>(),
        int in any::<i64>(),
        float in any::<f64>(),
        flag in any::<bool>(),
    ) {
        let lines = capture(|| {
            in_request("prop-1", || {
                corrlog::bind(key.clone(), bound.as_str());
                tracing::info!(text = text.as_str(), int, float, flag, "{message}");
            })
        });
        prop_assert_eq!(lines.len(), 1);
        let line = parse(&lines[0]);
        prop_assert_eq!(line["message"].as_str().unwrap(), message.as_str());
        prop_assert_eq!(line["text"].as_str().unwrap(), text.as_str());
        prop_assert_eq!(line["int"].as_i64().unwrap(), int);
        prop_assert_eq!(line["flag"].as_bool().unwrap(), flag);
        if float.is_finite() {
            prop_assert_eq!(line["float"].as_f64().unwrap(), float);
        } else {
            prop_assert!(line["float"].is_string());
        }
        let reserved = ["timestamp", "level", "message", "logger", "request_id"];
        let shadowed = ["text", "int", "float", "flag"];
        if reserved.contains(&key.as_str()) {
            let renamed = format!("fields.{key}");
            prop_assert_eq!(line[renamed.as_str()].as_str().unwrap(), bound.as_str());
        } else if !shadowed.contains(&key.as_str()) {
            prop_assert_eq!(line[key.as_str()].as_str().unwrap(), bound.as_str());
        }
        prop_assert_eq!(line["request_id"].as_str().unwrap(), "prop-1");
    }
}
